/* Tests for the parts the web core uses (src/web_parts.h) and for signed
 * values (include/gust/web.h): signed values (cross-checked with Tornado
 * when /usr/bin/python3 has it), XSRF tokens, gzip, Accept-Encoding,
 * content types. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "gust/web.h"
#include "web_parts.h"

#define S(lit) GUST_STR(lit)
#define NOW ((time_t)1700000000)
#define DAY 86400

static int setup(void **state)
{
    gust_arena *a = malloc(sizeof(*a));
    gust_arena_init(a, 0);
    *state = a;
    return 0;
}

static int teardown(void **state)
{
    gust_arena_close(*state);
    free(*state);
    return 0;
}

/* ---- Signed values ------------------------------------------------------ */

static const char *const one_secret[] = {"it's a secret", NULL};

static void test_signed_round_trip(void **state)
{
    gust_arena *a = *state;
    const char *values[] = {"", "x", "hello", "a|b:c 2|", "caf\xc3\xa9",
                            "0123456789012345678901234567890123456789"};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char *sv = gust_create_signed_value(a, one_secret, 0, "session",
                                            values[i], NOW);
        assert_non_null(sv);
        char *back = gust_decode_signed_value(a, one_secret, "session", sv, 31,
                                              NOW + 60);
        assert_non_null(back);
        assert_string_equal(back, values[i]);
    }
}

static void test_signed_format(void **state)
{
    gust_arena *a = *state;
    char *sv = gust_create_signed_value(a, one_secret, 0, "name", "value", NOW);
    assert_non_null(sv);
    /* base64("value") is "dmFsdWU=" */
    const char *prefix = "2|1:0|10:1700000000|4:name|8:dmFsdWU=|";
    assert_int_equal(strncmp(sv, prefix, strlen(prefix)), 0);
    const char *sig = sv + strlen(prefix);
    assert_int_equal(strlen(sig), 64);
    assert_int_equal(strspn(sig, "0123456789abcdef"), 64);
}

static void test_signed_tampered(void **state)
{
    gust_arena *a = *state;
    char *sv = gust_create_signed_value(a, one_secret, 0, "name", "value", NOW);
    assert_non_null(sv);
    size_t n = strlen(sv);
    char *copy = gust_arena_strdup(a, sv);
    /* Every single changed byte is refused, wherever it is. */
    for (size_t i = 0; i < n; i++) {
        char saved = copy[i];
        copy[i] = saved == 'a' ? 'b' : 'a';
        assert_null(gust_decode_signed_value(a, one_secret, "name", copy, 31,
                                             NOW + 1));
        copy[i] = saved;
    }
    assert_non_null(gust_decode_signed_value(a, one_secret, "name", copy, 31,
                                             NOW + 1));
    /* Truncated, extended, another name, another secret. */
    copy[n - 1] = '\0';
    assert_null(gust_decode_signed_value(a, one_secret, "name", copy, 31, NOW));
    char *longer = gust_arena_sprintf(a, "%s0", sv);
    assert_null(gust_decode_signed_value(a, one_secret, "name", longer, 31, NOW));
    assert_null(gust_decode_signed_value(a, one_secret, "other", sv, 31, NOW));
    const char *const other[] = {"it's a secreT", NULL};
    assert_null(gust_decode_signed_value(a, other, "name", sv, 31, NOW));
}

static void test_signed_garbage(void **state)
{
    gust_arena *a = *state;
    const char *bad[] = {"",
                         "2",
                         "2|",
                         "1|1:0|10:1700000000|4:name|8:dmFsdWU=|",
                         "2|1:0|10:1700000000|4:name|8:dmFsdWU=",
                         "2|9:0|10:1700000000|4:name|8:dmFsdWU=|",
                         "2|1:0|99999999999999999999999:1|",
                         "2|1:0|10:1700000000|4:name|0:|",
                         "dmFsdWU=|1700000000|abcdef",
                         "2|1:x|1:1|1:n|0:|" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_null(gust_decode_signed_value(a, one_secret, "name", bad[i], 31,
                                             NOW));
    assert_null(gust_decode_signed_value(a, one_secret, "name", NULL, 31, NOW));
}

static void test_signed_key_versions(void **state)
{
    gust_arena *a = *state;
    const char *const keys[] = {"key zero", "key one", "key two", NULL};
    char *sv = gust_create_signed_value(a, keys, 1, "n", "v", NOW);
    assert_non_null(sv);
    assert_int_equal(strncmp(sv, "2|1:1|", 6), 0);
    char *back = gust_decode_signed_value(a, keys, "n", sv, 31, NOW);
    assert_non_null(back);
    assert_string_equal(back, "v");
    /* Unknown version (only key 0 known), or another key at version 1. */
    const char *const only_zero[] = {"key zero", NULL};
    assert_null(gust_decode_signed_value(a, only_zero, "n", sv, 31, NOW));
    const char *const rotated[] = {"key zero", "another", NULL};
    assert_null(gust_decode_signed_value(a, rotated, "n", sv, 31, NOW));
    /* Creating with a version that has no key fails. */
    errno = 0;
    assert_null(gust_create_signed_value(a, keys, 3, "n", "v", NOW));
    assert_int_equal(errno, EINVAL);
    assert_null(gust_create_signed_value(a, keys, -1, "n", "v", NOW));
}

static void test_signed_age(void **state)
{
    gust_arena *a = *state;
    char *sv = gust_create_signed_value(a, one_secret, 0, "n", "v", NOW);
    assert_non_null(sv);
    /* Default max age (<= 0) is 31 days. */
    assert_non_null(gust_decode_signed_value(a, one_secret, "n", sv, 0,
                                             NOW + 31 * DAY));
    assert_null(gust_decode_signed_value(a, one_secret, "n", sv, 0,
                                         NOW + 31 * DAY + 1));
    assert_non_null(gust_decode_signed_value(a, one_secret, "n", sv, 0.5,
                                             NOW + DAY / 2));
    assert_null(gust_decode_signed_value(a, one_secret, "n", sv, 0.5,
                                         NOW + DAY / 2 + 1));
    /* A timestamp ahead of the clock is refused, beyond the skew of five
     * minutes allowed between the servers of one site. */
    assert_non_null(gust_decode_signed_value(a, one_secret, "n", sv, 31,
                                             NOW - 300));
    assert_null(gust_decode_signed_value(a, one_secret, "n", sv, 31,
                                         NOW - 301));
    assert_non_null(gust_decode_signed_value(a, one_secret, "n", sv, 31, NOW));
}

/* Runs /usr/bin/python3 -c script; returns its first output line (in the
 * arena, without the newline), or NULL when Python or Tornado is missing. */
static char *python(gust_arena *a, const char *script)
{
    if (access("/usr/bin/python3", X_OK) != 0)
        return NULL;
    char path[] = "/tmp/gust_test_web_parts_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(script, f);
    fclose(f);
    char *cmd = gust_arena_sprintf(a, "/usr/bin/python3 %s 2>/dev/null", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[4096] = "";
    char *got = fgets(line, sizeof line, p);
    int rc = pclose(p);
    unlink(path);
    if (!got || rc != 0)
        return NULL;
    line[strcspn(line, "\n")] = '\0';
    return gust_arena_strdup(a, line);
}

static void test_signed_tornado_compat(void **state)
{
    gust_arena *a = *state;
    char *ok = python(a, "import tornado.web\nprint('yes')\n");
    if (!ok)
        skip();
    const char *const keys[] = {"old key", "new key", NULL};
    /* Gust's value is byte for byte Tornado's. */
    char *sv = gust_create_signed_value(a, keys, 1, "user", "J\xc3\xa9r\xc3\xb4me|42",
                                        NOW);
    assert_non_null(sv);
    char *tv = python(
        a, "import tornado.web as w\n"
           "v = w.create_signed_value({0: 'old key', 1: 'new key'}, 'user',\n"
           "    'J\\u00e9r\\u00f4me|42', clock=lambda: 1700000000, key_version=1)\n"
           "print(v.decode())\n");
    assert_non_null(tv);
    assert_string_equal(sv, tv);
    /* Tornado decodes Gust's value... */
    char *script = gust_arena_sprintf(
        a, "import tornado.web as w\n"
           "v = w.decode_signed_value({0: 'old key', 1: 'new key'}, 'user',\n"
           "    '%s', clock=lambda: 1700000100)\n"
           "print(v.decode() if v is not None else 'None')\n",
        sv);
    char *decoded = python(a, script);
    assert_non_null(decoded);
    assert_string_equal(decoded, "J\xc3\xa9r\xc3\xb4me|42");
    /* ...and Gust decodes Tornado's, made at another time and key. */
    tv = python(a, "import tornado.web as w\n"
                   "v = w.create_signed_value('old key', 'sess', 'abc=def',\n"
                   "    clock=lambda: 1699990000)\n"
                   "print(v.decode())\n");
    assert_non_null(tv);
    char *back = gust_decode_signed_value(a, keys, "sess", tv, 31, NOW);
    assert_non_null(back);
    assert_string_equal(back, "abc=def");
    assert_null(gust_decode_signed_value(a, keys, "sess", tv, 0.1, NOW));
}

/* ---- XSRF ---------------------------------------------------------------- */

static void test_xsrf_round_trip(void **state)
{
    gust_arena *a = *state;
    unsigned char tok[GUST__XSRF_TOKEN_BYTES], back[GUST__XSRF_TOKEN_BYTES];
    assert_int_equal(gust__xsrf_random(tok), 0);
    char *e1 = gust__xsrf_encode(a, tok, NOW);
    char *e2 = gust__xsrf_encode(a, tok, NOW);
    assert_non_null(e1);
    assert_non_null(e2);
    /* "2|" 8 hex "|" 32 hex "|" timestamp */
    assert_int_equal(strlen(e1), 2 + 8 + 1 + 32 + 1 + 10);
    assert_int_equal(strncmp(e1, "2|", 2), 0);
    assert_int_equal(strspn(e1 + 2, "0123456789abcdef"), 8);
    assert_int_equal(e1[10], '|');
    assert_int_equal(strspn(e1 + 11, "0123456789abcdef"), 32);
    assert_string_equal(e1 + 43, "|1700000000");
    /* A fresh mask each time, the same token underneath. */
    assert_string_not_equal(e1, e2);
    time_t ts = 0;
    assert_int_equal(gust__xsrf_decode(gust_str_cstr(e1), back, &ts), 0);
    assert_memory_equal(back, tok, sizeof tok);
    assert_int_equal(ts, NOW);
    assert_true(gust__xsrf_equal(back, tok));
    assert_int_equal(gust__xsrf_decode(gust_str_cstr(e2), back, NULL), 0);
    assert_true(gust__xsrf_equal(back, tok));
    back[15] ^= 1;
    assert_false(gust__xsrf_equal(back, tok));
}

static void test_xsrf_version1(void **state)
{
    (void)state;
    unsigned char tok[GUST__XSRF_TOKEN_BYTES];
    time_t ts = 99;
    assert_int_equal(gust__xsrf_decode(S("00112233445566778899AABBccddeeff"),
                                       tok, &ts), 0);
    assert_int_equal(ts, 0);
    for (int i = 0; i < 16; i++)
        assert_int_equal(tok[i], i * 0x11);
}

static void test_xsrf_invalid(void **state)
{
    (void)state;
    unsigned char tok[GUST__XSRF_TOKEN_BYTES];
    const gust_str bad[] = {
        S(""),
        S("0011223344556677"),                  /* short v1 */
        S("00112233445566778899aabbccddeeffgg"), /* long v1 */
        S("00112233445566778899aabbccddeefg"),  /* not hex */
        S("3|00000000|00112233445566778899aabbccddeeff|1"),
        S("2|0000000|00112233445566778899aabbccddeeff|1"),
        S("2|00000000|00112233445566778899aabbccddee|1"),
        S("2|00000000|00112233445566778899aabbccddeeff|"),
        S("2|00000000|00112233445566778899aabbccddeeff|1|2"),
        S("2|00000000|00112233445566778899aabbccddeeff|x"),
        S("2|00000000|00112233445566778899aabbccddeeff"),
        GUST_STR_NULL,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(gust__xsrf_decode(bad[i], tok, NULL), -EINVAL);
}

static void test_xsrf_tornado_compat(void **state)
{
    gust_arena *a = *state;
    /* A token masked by Tornado's own _websocket_mask. */
    char *t = python(a, "from tornado.util import _websocket_mask\n"
                        "tok = bytes(range(16)); mask = b'\\x01\\x02\\xfe\\xff'\n"
                        "print('2|' + mask.hex() + '|' + "
                        "_websocket_mask(mask, tok).hex() + '|1700000000')\n");
    if (!t)
        skip();
    unsigned char tok[GUST__XSRF_TOKEN_BYTES];
    time_t ts;
    assert_int_equal(gust__xsrf_decode(gust_str_cstr(t), tok, &ts), 0);
    assert_int_equal(ts, NOW);
    for (int i = 0; i < 16; i++)
        assert_int_equal(tok[i], i);
}

/* ---- gzip ---------------------------------------------------------------- */

typedef struct {
    z_stream zs;
    unsigned char *out; /* what inflated so far */
    size_t len, cap;
    bool ended;
    int emits;
    int fail_at; /* emit returns -EPIPE at this call (0: never) */
} inflater;

static int inflate_emit(const void *in, size_t len, void *data)
{
    inflater *f = data;
    if (++f->emits == f->fail_at)
        return -EPIPE;
    f->zs.next_in = (unsigned char *)(uintptr_t)in;
    f->zs.avail_in = (uInt)len;
    while (f->zs.avail_in > 0 && !f->ended) {
        if (f->cap - f->len < 65536) {
            f->cap = f->cap * 2 + 65536;
            f->out = realloc(f->out, f->cap);
            assert_non_null(f->out);
        }
        f->zs.next_out = f->out + f->len;
        f->zs.avail_out = (uInt)(f->cap - f->len);
        int rc = inflate(&f->zs, Z_SYNC_FLUSH);
        assert_true(rc == Z_OK || rc == Z_STREAM_END || rc == Z_BUF_ERROR);
        f->len = f->cap - f->zs.avail_out;
        if (rc == Z_STREAM_END)
            f->ended = true;
    }
    return 0;
}

static void inflater_init(inflater *f)
{
    memset(f, 0, sizeof *f);
    assert_int_equal(inflateInit2(&f->zs, 15 + 16), Z_OK); /* gzip only */
}

static void inflater_end(inflater *f)
{
    inflateEnd(&f->zs);
    free(f->out);
}

static void test_gzip_stream(void **state)
{
    (void)state;
    /* Compressible but not trivial: words from a small generator. */
    size_t total = 300000;
    char *src = malloc(total);
    assert_non_null(src);
    uint32_t x = 12345;
    for (size_t i = 0; i < total; i++) {
        x = x * 1103515245u + 12345u;
        src[i] = (char)("abcdefgh ijklmn\n"[(x >> 16) & 15]);
    }
    gust__gzip *z = gust__gzip_new();
    assert_non_null(z);
    inflater f;
    inflater_init(&f);
    size_t off = 0, step = 7000;
    while (off < total) {
        size_t n = total - off < step ? total - off : step;
        bool flush = (off / step) % 3 == 0;
        assert_int_equal(gust__gzip_write(z, src + off, n, flush, false,
                                          inflate_emit, &f), 0);
        off += n;
        if (flush) {
            /* Everything written so far can be decoded now. */
            assert_int_equal(f.len, off);
            assert_memory_equal(f.out, src, off);
        }
    }
    assert_false(f.ended);
    assert_int_equal(gust__gzip_write(z, NULL, 0, false, true, inflate_emit, &f),
                     0);
    assert_true(f.ended);
    assert_int_equal(f.len, total);
    assert_memory_equal(f.out, src, total);
    /* The stream is over. */
    assert_int_equal(gust__gzip_write(z, "x", 1, false, false, inflate_emit, &f),
                     -EINVAL);
    gust__gzip_free(z);
    inflater_end(&f);
    free(src);
}

static void test_gzip_small_and_empty(void **state)
{
    (void)state;
    gust__gzip *z = gust__gzip_new();
    inflater f;
    inflater_init(&f);
    assert_int_equal(gust__gzip_write(z, NULL, 0, false, true, inflate_emit, &f),
                     0);
    assert_true(f.ended);
    assert_int_equal(f.len, 0);
    gust__gzip_free(z);
    inflater_end(&f);

    z = gust__gzip_new();
    inflater_init(&f);
    assert_int_equal(gust__gzip_write(z, "Hello, world", 12, false, true,
                                      inflate_emit, &f), 0);
    assert_true(f.ended);
    assert_int_equal(f.len, 12);
    assert_memory_equal(f.out, "Hello, world", 12);
    gust__gzip_free(z);
    inflater_end(&f);
    gust__gzip_free(NULL);
}

static void test_gzip_emit_error(void **state)
{
    (void)state;
    gust__gzip *z = gust__gzip_new();
    inflater f;
    inflater_init(&f);
    f.fail_at = 1;
    assert_int_equal(gust__gzip_write(z, "abc", 3, true, false, inflate_emit,
                                      &f), -EPIPE);
    gust__gzip_free(z);
    inflater_end(&f);
}

static void test_gzip_types(void **state)
{
    (void)state;
    assert_true(gust__gzip_type_compressible(S("text/html")));
    assert_true(gust__gzip_type_compressible(S("text/plain; charset=UTF-8")));
    assert_true(gust__gzip_type_compressible(S("Text/CSS")));
    assert_true(gust__gzip_type_compressible(S("application/json")));
    assert_true(gust__gzip_type_compressible(S("application/json;charset=utf-8")));
    assert_true(gust__gzip_type_compressible(S("application/javascript")));
    assert_true(gust__gzip_type_compressible(S("application/x-javascript")));
    assert_true(gust__gzip_type_compressible(S("application/xml")));
    assert_true(gust__gzip_type_compressible(S("application/atom+xml")));
    assert_true(gust__gzip_type_compressible(S("application/xhtml+xml")));
    assert_true(gust__gzip_type_compressible(S("image/svg+xml")));
    assert_false(gust__gzip_type_compressible(S("image/png")));
    assert_false(gust__gzip_type_compressible(S("application/octet-stream")));
    assert_false(gust__gzip_type_compressible(S("application/gzip")));
    assert_false(gust__gzip_type_compressible(S("text/")));
    assert_false(gust__gzip_type_compressible(S("")));
    assert_false(gust__gzip_type_compressible(GUST_STR_NULL));
}

static bool accepts(gust_arena *a, const char *v1, const char *v2)
{
    gust_http_headers h;
    gust_http_headers_init(&h, a);
    if (v1)
        assert_int_equal(gust_http_headers_add(&h, S("Accept-Encoding"),
                                               gust_str_cstr(v1), 0), 0);
    if (v2)
        assert_int_equal(gust_http_headers_add(&h, S("accept-encoding"),
                                               gust_str_cstr(v2), 0), 0);
    return gust__gzip_accepted(&h);
}

static void test_gzip_accept_encoding(void **state)
{
    gust_arena *a = *state;
    assert_false(accepts(a, NULL, NULL));
    assert_true(accepts(a, "gzip", NULL));
    assert_true(accepts(a, "gzip, deflate, br", NULL));
    assert_true(accepts(a, "br;q=1.0, GZIP;q=0.5", NULL));
    assert_true(accepts(a, "x-gzip", NULL));
    assert_true(accepts(a, "*", NULL));
    assert_true(accepts(a, "deflate", "gzip"));
    assert_true(accepts(a, " gzip ; q=0.001 ", NULL));
    assert_false(accepts(a, "", NULL));
    assert_false(accepts(a, "identity", NULL));
    assert_false(accepts(a, "deflate, br", NULL));
    assert_false(accepts(a, "gzip;q=0", NULL));
    assert_false(accepts(a, "gzip;q=0.000", NULL));
    assert_false(accepts(a, "gzip;Q=0, deflate", NULL));
    assert_false(accepts(a, "*;q=1, gzip;q=0", NULL));
    assert_false(accepts(a, "*;q=0", NULL));
    assert_false(accepts(a, "gzipx, xgzip", NULL));
    /* A malformed q does not count as acceptance. */
    assert_false(accepts(a, "gzip;q=2", NULL));
    assert_false(accepts(a, "gzip;q=abc", NULL));
    assert_false(accepts(a, "gzip;q=0.1234", NULL));
    assert_true(accepts(a, "gzip;q=1.", NULL));
}

/* ---- Content types ------------------------------------------------------ */

static void test_mime_types(void **state)
{
    (void)state;
    assert_string_equal(gust__mime_type("index.html"), "text/html; charset=UTF-8");
    assert_string_equal(gust__mime_type("/a/b/INDEX.HTM"),
                        "text/html; charset=UTF-8");
    assert_string_equal(gust__mime_type("style.css"), "text/css; charset=UTF-8");
    assert_string_equal(gust__mime_type("app.min.js"),
                        "text/javascript; charset=UTF-8");
    assert_string_equal(gust__mime_type("data.json"), "application/json");
    assert_string_equal(gust__mime_type("logo.PNG"), "image/png");
    assert_string_equal(gust__mime_type("photo.jpg"), "image/jpeg");
    assert_string_equal(gust__mime_type("photo.jpeg"), "image/jpeg");
    assert_string_equal(gust__mime_type("icon.svg"), "image/svg+xml");
    assert_string_equal(gust__mime_type("doc.pdf"), "application/pdf");
    assert_string_equal(gust__mime_type("font.woff2"), "font/woff2");
    assert_string_equal(gust__mime_type("a.tar.gz"), "application/gzip");
    assert_string_equal(gust__mime_type("readme.txt"), "text/plain; charset=UTF-8");
    assert_string_equal(gust__mime_type("z.zip"), "application/zip");
    assert_string_equal(gust__mime_type("7.7z"), "application/x-7z-compressed");
    assert_string_equal(gust__mime_type("site.webmanifest"),
                        "application/manifest+json");
    assert_string_equal(gust__mime_type("a.yml"), "application/yaml");
    /* Unknown, none, a dot file, a dot in a directory name. */
    const char *octet = "application/octet-stream";
    assert_string_equal(gust__mime_type("file.unknownext"), octet);
    assert_string_equal(gust__mime_type("Makefile"), octet);
    assert_string_equal(gust__mime_type(".html"), octet);
    assert_string_equal(gust__mime_type("dir.html/file"), octet);
    assert_string_equal(gust__mime_type("file."), octet);
    assert_string_equal(gust__mime_type(""), octet);
}

/* ---- Range ----------------------------------------------------------------- */

static gust__range_result range(const char *h, uint64_t size, uint64_t *start,
                                uint64_t *len)
{
    *start = *len = 777; /* untouched unless PARTIAL */
    return gust__static_parse_range(h ? gust_str_cstr(h) : GUST_STR_NULL, size,
                                    start, len);
}

static void expect_partial(const char *h, uint64_t size, uint64_t s,
                           uint64_t n)
{
    uint64_t start, len;
    if (range(h, size, &start, &len) != GUST__RANGE_PARTIAL)
        fail_msg("%s on %" PRIu64 " bytes: not partial", h, size);
    if (start != s || len != n)
        fail_msg("%s on %" PRIu64 " bytes: %" PRIu64 "+%" PRIu64
                 ", expected %" PRIu64 "+%" PRIu64, h, size, start, len, s, n);
}

static void expect_result(const char *h, uint64_t size, gust__range_result r)
{
    uint64_t start, len;
    if (range(h, size, &start, &len) != r)
        fail_msg("%s on %" PRIu64 " bytes: expected %d", h ? h : "(none)",
                 size, (int)r);
    assert_int_equal(start, 777);
    assert_int_equal(len, 777);
}

static void test_range_parse(void **state)
{
    (void)state;
    expect_partial("bytes=0-9", 100, 0, 10);
    expect_partial("bytes=10-19", 100, 10, 10);
    expect_partial("bytes=90-", 100, 90, 10);
    expect_partial("bytes=-10", 100, 90, 10);
    expect_partial("bytes=99-99", 100, 99, 1);
    expect_partial("bytes=50-1000", 100, 50, 50);     /* end cut to size */
    expect_partial("bytes=0-98", 100, 0, 99);
    expect_partial("BYTES = 1 - 2 ", 100, 1, 2);
    expect_partial("bytes=1-99999999999999999999999", 100, 1, 99);
    /* The whole file: 200, as Tornado answers. */
    expect_result("bytes=0-", 100, GUST__RANGE_FULL);
    expect_result("bytes=0-99", 100, GUST__RANGE_FULL);
    expect_result("bytes=-100", 100, GUST__RANGE_FULL);
    expect_result("bytes=-1000", 100, GUST__RANGE_FULL);
    /* Ignored: absent, another unit, bad syntax, several ranges. */
    expect_result(NULL, 100, GUST__RANGE_FULL);
    expect_result("", 100, GUST__RANGE_FULL);
    expect_result("items=0-5", 100, GUST__RANGE_FULL);
    expect_result("bytes=", 100, GUST__RANGE_FULL);
    expect_result("bytes=-", 100, GUST__RANGE_FULL);
    expect_result("bytes=5", 100, GUST__RANGE_FULL);
    expect_result("bytes=a-b", 100, GUST__RANGE_FULL);
    expect_result("bytes=+1-2", 100, GUST__RANGE_FULL);
    expect_result("bytes=5-1", 100, GUST__RANGE_FULL);
    expect_result("bytes=1-2-3", 100, GUST__RANGE_FULL);
    expect_result("bytes=0-1,5-6", 100, GUST__RANGE_FULL);
    expect_result("bytes 0-1", 100, GUST__RANGE_FULL);
    /* Unsatisfiable. */
    expect_result("bytes=100-", 100, GUST__RANGE_UNSATISFIABLE);
    expect_result("bytes=100-200", 100, GUST__RANGE_UNSATISFIABLE);
    expect_result("bytes=99999999999999999999999-", 100,
                  GUST__RANGE_UNSATISFIABLE);
    expect_result("bytes=-0", 100, GUST__RANGE_UNSATISFIABLE);
    expect_result("bytes=0-", 0, GUST__RANGE_UNSATISFIABLE);
    expect_result("bytes=-5", 0, GUST__RANGE_UNSATISFIABLE);
}

/* ---- Static file versions ------------------------------------------------ */

static void write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void test_static_cache_version(void **state)
{
    gust_arena *a = *state;
    char root[] = "/tmp/gust_static_XXXXXX";
    assert_non_null(mkdtemp(root));
    char *file = gust_arena_sprintf(a, "%s/app.js", root);
    char *sub = gust_arena_sprintf(a, "%s/css", root);
    char *nested = gust_arena_sprintf(a, "%s/css/site.css", root);
    char *outside = gust_arena_sprintf(a, "%s.secret", root);
    char *link = gust_arena_sprintf(a, "%s/leak", root);
    assert_int_equal(mkdir(sub, 0700), 0);
    write_file(file, "hello");
    write_file(nested, "body{}");
    write_file(outside, "secret");
    assert_int_equal(symlink(outside, link), 0);

    gust__static_cache *c = gust__static_cache_new(root);
    assert_non_null(c);
    /* sha256("hello") = 2cf24dba... */
    const char *v = gust__static_cache_version(c, "app.js");
    assert_non_null(v);
    assert_string_equal(v, "2cf24dba");
    assert_string_equal(gust__static_cache_version(c, "app.js"), "2cf24dba");
    assert_non_null(gust__static_cache_version(c, "css/site.css"));
    /* The version follows the content. */
    write_file(file, "hello, world, longer");
    v = gust__static_cache_version(c, "app.js");
    assert_non_null(v);
    assert_string_not_equal(v, "2cf24dba");
    /* Missing, a directory, outside root. */
    assert_null(gust__static_cache_version(c, "missing.js"));
    assert_null(gust__static_cache_version(c, "css"));
    assert_null(gust__static_cache_version(c, "leak"));
    assert_null(gust__static_cache_version(c, "../x"));
    assert_null(gust__static_cache_version(c, "css/../../x"));
    gust__static_cache_free(c);
    gust__static_cache_free(NULL);

    unlink(link);
    unlink(outside);
    unlink(nested);
    rmdir(sub);
    unlink(file);
    rmdir(root);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_signed_round_trip),    T(test_signed_format),
        T(test_signed_tampered),      T(test_signed_garbage),
        T(test_signed_key_versions),  T(test_signed_age),
        T(test_signed_tornado_compat), T(test_xsrf_round_trip),
        T(test_xsrf_version1),        T(test_xsrf_invalid),
        T(test_xsrf_tornado_compat),  T(test_gzip_stream),
        T(test_gzip_small_and_empty), T(test_gzip_emit_error),
        T(test_gzip_types),           T(test_gzip_accept_encoding),
        T(test_mime_types),           T(test_range_parse),
        T(test_static_cache_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
