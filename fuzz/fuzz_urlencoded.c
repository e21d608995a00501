/* libFuzzer target: urlencoded arguments, percent-coding, cookies, request
 * targets, URLs, status lines and HTTP dates: the small parsers that see
 * raw network bytes. The input is copied into a heap block of exactly its
 * size so that any over-read is caught; the arena is closed each run (leaks
 * are caught by LeakSanitizer). Invariants:
 *   - urlencoded: names and values are slices of the input or terminated
 *     arena copies, no longer than the input; escaping every pair and
 *     parsing again gives the same pairs (round trip);
 *   - unescape: never longer than the input; escape then strict unescape
 *     gives the input back;
 *   - cookie, target, URL and status-line slices lie inside the input;
 *   - a parsed date formats and parses back to the same instant. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gust/http.h"
#include "fuzz.h"

static const char *g_buf;
static size_t g_len;

/* Inside the input, or absent. */
static int inside(gust_str s)
{
    if (!s.ptr)
        return s.len == 0;
    return s.ptr >= g_buf && s.len <= g_len && (size_t)(s.ptr - g_buf) <= g_len - s.len;
}

static void check_urlencoded(gust_arena *a, gust_str in)
{
    gust_http_args args;
    gust_http_args_init(&args, a);
    CHECK(gust_http_args_parse_urlencoded(&args, in) == 0);
    CHECK(args.count <= in.len);
    for (size_t i = 0; i < args.count; i++) {
        gust_str n = args.items[i].name, v = args.items[i].value;
        CHECK(n.ptr && v.ptr && n.len + v.len <= in.len);
        CHECK(inside(n) || n.ptr[n.len] == '\0');
        CHECK(inside(v) || v.ptr[v.len] == '\0');
    }
    /* Round trip: escape with '+', join with '&', parse again. Pairs with
     * an empty name and value vanish ("=" is kept, "" is skipped), so the
     * '=' is always written. */
    size_t cap = 1;
    for (size_t i = 0; i < args.count; i++)
        cap += 3 * (args.items[i].name.len + args.items[i].value.len) + 2;
    char *joined = gust_arena_alloc(a, cap);
    CHECK(joined != NULL);
    size_t len = 0;
    for (size_t i = 0; i < args.count; i++) {
        gust_str en, ev;
        CHECK(gust_url_escape(a, args.items[i].name, GUST_URL_PLUS, &en) == 0);
        CHECK(gust_url_escape(a, args.items[i].value, GUST_URL_PLUS, &ev) == 0);
        if (i)
            joined[len++] = '&';
        memcpy(joined + len, en.ptr, en.len);
        len += en.len;
        joined[len++] = '=';
        memcpy(joined + len, ev.ptr, ev.len);
        len += ev.len;
    }
    gust_http_args again;
    gust_http_args_init(&again, a);
    CHECK(gust_http_args_parse_urlencoded(&again, gust_str_make(joined, len)) == 0);
    CHECK(again.count == args.count);
    for (size_t i = 0; i < args.count; i++) {
        CHECK(gust_str_eq(again.items[i].name, args.items[i].name));
        CHECK(gust_str_eq(again.items[i].value, args.items[i].value));
    }
}

static void check_escaping(gust_arena *a, gust_str in)
{
    gust_str out, enc, dec;
    CHECK(gust_url_unescape(a, in, GUST_URL_PLUS, &out) == 0);
    CHECK(out.len <= in.len);
    int rc = gust_url_unescape(a, in, GUST_URL_STRICT | GUST_URL_NO_NUL, &out);
    CHECK(rc == 0 || rc == -EINVAL);
    if (rc == 0)
        CHECK(memchr(out.ptr, '\0', out.len) == NULL);
    CHECK(gust_url_escape(a, in, 0, &enc) == 0);
    CHECK(gust_url_unescape(a, enc, GUST_URL_STRICT, &dec) == 0);
    CHECK(gust_str_eq(dec, in));
}

static void check_cookie(gust_arena *a, gust_str in)
{
    gust_http_args c;
    gust_http_args_init(&c, a);
    CHECK(gust_http_parse_cookie(in, &c) == 0);
    for (size_t i = 0; i < c.count; i++) {
        CHECK(inside(c.items[i].name) && c.items[i].name.len > 0);
        CHECK(inside(c.items[i].value));
        CHECK(!memchr(c.items[i].name.ptr, ';', c.items[i].name.len));
    }
    /* Whatever formats must parse back as one pair with the same name. */
    if (c.count > 0) {
        gust_str line;
        if (gust_http_format_set_cookie(a, c.items[0].name, c.items[0].value,
                                        NULL, &line) == 0) {
            CHECK(gust_http_header_value_valid(line));
            gust_http_args back;
            gust_http_args_init(&back, a);
            CHECK(gust_http_parse_cookie(line, &back) == 0);
            CHECK(back.count == 1);
            CHECK(gust_str_eq(back.items[0].name, c.items[0].name));
        }
    }
}

static void check_target_and_url(gust_str in)
{
    gust_http_target t;
    if (gust_http_target_split(in, &t) == 0) {
        CHECK(inside(t.scheme) && inside(t.authority) && inside(t.query));
        CHECK(inside(t.path) || (t.path.len == 1 && t.path.ptr[0] == '/'));
    }
    gust_url u;
    if (gust_url_parse(in, &u) == 0) {
        CHECK(inside(u.scheme) && inside(u.userinfo) && inside(u.host));
        CHECK(inside(u.path) && inside(u.query) && inside(u.fragment));
        CHECK(u.host.len > 0 && u.scheme.len > 0);
    }
    int minor, code;
    gust_str reason;
    if (gust_http_parse_response_start_line(in, &minor, &code, &reason) == 0)
        CHECK(inside(reason) && minor >= 0 && minor <= 9 && code >= 100 &&
              code <= 999);
    gust_str host;
    int port;
    if (gust_http_split_host_port(in, &host, &port) == 0)
        CHECK(inside(host) && host.len > 0 && port >= -1 && port <= 65535);
}

static void check_date(gust_str in)
{
    time_t t;
    if (gust_http_date_parse(in, &t) == 0) {
        char buf[GUST_HTTP_DATE_SIZE];
        CHECK(gust_http_date_format(t, buf) == 0);
        time_t back;
        CHECK(gust_http_date_parse(gust_str_make(buf, GUST_HTTP_DATE_LEN), &back) == 0);
        CHECK(back == t);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        abort();
    memcpy(buf, data, size);
    g_buf = buf;
    g_len = size;
    gust_str in = gust_str_make(buf, size);

    gust_arena arena;
    gust_arena_init(&arena, 256);
    check_urlencoded(&arena, in);
    check_escaping(&arena, in);
    check_cookie(&arena, in);
    check_target_and_url(in);
    check_date(in);
    gust_arena_close(&arena);
    free(buf);
    return 0;
}
