/* Tests for arguments, urlencoded bodies, media types and
 * multipart/form-data (include/gust/http.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gust/http.h"

#include "http_test.h"

/* ------------------------------------------------------------------ */

static void test_args_multimap(void **state)
{
    gust_http_args args;
    gust_http_args_init(&args, *state);
    assert_null(gust_http_args_get_first(&args, S("a")).ptr);
    gust_http_args_add(&args, S("a"), S("1"));
    gust_http_args_add(&args, S("b"), S("2"));
    gust_http_args_add(&args, S("a"), S("3"));
    gust_http_args_add(&args, S("A"), S("4"));
    assert_int_equal(args.count, 4);
    assert_str(gust_http_args_get_first(&args, S("a")), "1");
    assert_str(gust_http_args_get_last(&args, S("a")), "3");
    assert_int_equal(gust_http_args_count_name(&args, S("a")), 2); /* case matters */
    assert_null(gust_http_args_get_last(&args, S("c")).ptr);
    size_t cur = 0;
    gust_str v;
    assert_true(gust_http_args_next(&args, S("a"), &cur, &v));
    assert_str(v, "1");
    assert_true(gust_http_args_next(&args, S("a"), &cur, &v));
    assert_str(v, "3");
    assert_false(gust_http_args_next(&args, S("a"), &cur, &v));
}

static void test_urlencoded(void **state)
{
    gust_http_args args;
    gust_http_args_init(&args, *state);
    gust_str in = S("a=1&b=2&a=3&empty=&flag&&=anon&q=caf%C3%A9+au+lait&semi=1;x=2&");
    assert_int_equal(gust_http_args_parse_urlencoded(&args, in), 0);
    assert_int_equal(args.count, 8);
    assert_str(args.items[0].name, "a");
    assert_str(args.items[0].value, "1");
    assert_ptr_equal(args.items[0].value.ptr, in.ptr + 2); /* zero-copy */
    assert_str(args.items[1].name, "b");
    assert_str(args.items[2].value, "3");
    assert_str(args.items[3].name, "empty");
    assert_str(args.items[3].value, "");
    assert_str(args.items[4].name, "flag");
    assert_str(args.items[4].value, "");
    assert_str(args.items[5].name, "");
    assert_str(args.items[5].value, "anon");
    assert_str(args.items[6].value, "caf\xc3\xa9 au lait");
    assert_str(args.items[7].name, "semi");
    assert_str(args.items[7].value, "1;x=2"); /* ';' is not a separator */
    assert_int_equal(gust_http_args_count_name(&args, S("a")), 2);
}

static void test_urlencoded_lenient_escapes(void **state)
{
    gust_http_args args;
    gust_http_args_init(&args, *state);
    assert_int_equal(gust_http_args_parse_urlencoded(&args, S("%zz=%&a%3Db=c%26d&%2B=+")), 0);
    assert_int_equal(args.count, 3);
    assert_str(args.items[0].name, "%zz");
    assert_str(args.items[0].value, "%");
    assert_str(args.items[1].name, "a=b");
    assert_str(args.items[1].value, "c&d");
    assert_str(args.items[2].name, "+");
    assert_str(args.items[2].value, " ");
    assert_int_equal(gust_http_args_parse_urlencoded(&args, S("")), 0);
    assert_int_equal(gust_http_args_parse_urlencoded(&args, S("&&&")), 0);
    assert_int_equal(args.count, 3);
}

/* ------------------------------------------------------------------ */

static void test_content_type_rfc9110_equivalents(void **state)
{
    /* RFC 9110 section 8.3.1: these four are equivalent (the value's case
     * is kept: "UTF-8" and "utf-8" are the parameter's business). */
    const char *forms[] = {"text/html;charset=utf-8",
                           "Text/HTML;Charset=\"utf-8\"",
                           "text/html; charset=\"utf-8\"",
                           "text/html;charset=UTF-8"};
    for (size_t i = 0; i < 4; i++) {
        gust_http_content_type ct;
        assert_int_equal(gust_http_parse_content_type(*state, gust_str_cstr(forms[i]), &ct), 0);
        assert_str(ct.type, "text/html");
        assert_int_equal(ct.nparams, 1);
        assert_str(ct.params[0].name, "charset");
        gust_str cs = gust_http_content_type_param(&ct, S("CHARSET"));
        assert_true(gust_str_eq_nocase(cs, S("utf-8")));
    }
}

static void test_content_type_params(void **state)
{
    gust_http_content_type ct;
    assert_int_equal(gust_http_parse_content_type(
                         *state, S("multipart/form-data; boundary=\"--a b\\\"c\\\\\" ;; x=1;"),
                         &ct), 0);
    assert_str(ct.type, "multipart/form-data");
    assert_int_equal(ct.nparams, 2);
    assert_str(gust_http_content_type_param(&ct, S("boundary")), "--a b\"c\\");
    assert_str(gust_http_content_type_param(&ct, S("x")), "1");
    assert_null(gust_http_content_type_param(&ct, S("y")).ptr);
    assert_int_equal(gust_http_parse_content_type(*state, S("application/json"), &ct), 0);
    assert_int_equal(ct.nparams, 0);
    assert_int_equal(gust_http_parse_content_type(*state, S("a/b; e=\"\""), &ct), 0);
    assert_str(ct.params[0].value, "");
}

static void test_content_type_invalid(void **state)
{
    const char *bad[] = {
        "", "text", "/html", "text/", "text/html x", "text/html; charset",
        "text/html; charset =utf-8", "text/html; charset= utf-8",
        "text/html; charset=\"utf-8", "text/html; a=1; A=2",
        "text/html; a=b c", "text/html; a=\"\x01\"", "te xt/html",
        "text/html; =x", "text/html; a=\"b\"c", "text/html; a=b\"",
        "text/html; a=\"x\\",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gust_http_content_type ct;
        if (gust_http_parse_content_type(*state, gust_str_cstr(bad[i]), &ct) != -EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void test_boundary_valid(void **state)
{
    (void)state;
    assert_true(gust_http_boundary_valid(S("AaB03x")));
    assert_true(gust_http_boundary_valid(S("----WebKitFormBoundary7MA4YWxkTrZu0gW")));
    assert_true(gust_http_boundary_valid(S("a b'()+_,-./:=?")));
    char b70[71];
    memset(b70, 'x', 70);
    b70[70] = '\0';
    assert_true(gust_http_boundary_valid(gust_str_make(b70, 70)));
    assert_false(gust_http_boundary_valid(gust_str_make(b70, 0)));
    char b71[72];
    memset(b71, 'x', 71);
    assert_false(gust_http_boundary_valid(gust_str_make(b71, 71)));
    assert_false(gust_http_boundary_valid(S("ends with space ")));
    assert_false(gust_http_boundary_valid(S("semi;colon")));
    assert_false(gust_http_boundary_valid(S("quote\"")));
    assert_false(gust_http_boundary_valid(S("cr\r")));
}

/* ------------------------------------------------------------------ */

#define BASIC                                                                  \
    "--AaB03x\r\n"                                                             \
    "Content-Disposition: form-data; name=\"submit-name\"\r\n"                \
    "\r\n"                                                                     \
    "Larry\r\n"                                                                \
    "--AaB03x\r\n"                                                             \
    "Content-Disposition: form-data; name=\"files\"; filename=\"file1.txt\"\r\n" \
    "Content-Type: text/plain\r\n"                                             \
    "\r\n"                                                                     \
    "... contents of file1.txt ...\r\n"                                        \
    "--AaB03x--\r\n"

static int parse(gust_arena *a, const char *body, size_t len,
                 gust_http_args *args, gust_http_files *files)
{
    gust_http_args_init(args, a);
    gust_http_files_init(files, a);
    return gust_http_parse_multipart(S("AaB03x"), gust_str_make(body, len), args, files);
}

static void test_multipart_basic(void **state)
{
    gust_http_args args;
    gust_http_files files;
    const char *body = BASIC;
    assert_int_equal(parse(*state, body, strlen(body), &args, &files), 0);
    assert_int_equal(args.count, 1);
    assert_str(args.items[0].name, "submit-name");
    assert_str(args.items[0].value, "Larry");
    assert_int_equal(files.count, 1);
    const gust_http_file *f = gust_http_files_get(&files, S("files"));
    assert_non_null(f);
    assert_str(f->filename, "file1.txt");
    assert_str(f->content_type, "text/plain");
    assert_str(f->body, "... contents of file1.txt ...");
    /* Zero-copy: the content points into the body. */
    assert_true(f->body.ptr > body && f->body.ptr < body + strlen(body));
    assert_null(gust_http_files_get(&files, S("nope")));
}

static void test_multipart_rfc7578_example(void **state)
{
    /* RFC 7578 section 4.5: lower-case header names, a charset, a
     * Content-Transfer-Encoding that is kept as is (not decoded). */
    const char *body =
        "--AaB03x\r\n"
        "content-disposition: form-data; name=\"field1\"\r\n"
        "content-type: text/plain;charset=UTF-8\r\n"
        "content-transfer-encoding: quoted-printable\r\n"
        "\r\n"
        "Joe owes =E2=82=AC100.\r\n"
        "--AaB03x--";
    gust_http_args args;
    gust_http_files files;
    assert_int_equal(parse(*state, body, strlen(body), &args, &files), 0);
    assert_int_equal(args.count, 1);
    assert_str(args.items[0].name, "field1");
    assert_str(args.items[0].value, "Joe owes =E2=82=AC100.");
    assert_int_equal(files.count, 0);
}

static void test_multipart_preamble_padding_epilogue(void **state)
{
    const char *body =
        "This is the preamble.\r\n--AaB03x \t\r\n"
        "Content-Disposition: form-data; name=a\r\n\r\n"
        "x\r\n--AaB03 not a delimiter\r\n--AaB03xz-less\r\n"
        "\r\n--AaB03x  \r\n"
        "Content-Disposition: form-data; name=\"b\"\r\n\r\n"
        "\r\n--AaB03x-- \r\nThis is the epilogue. --AaB03x\r\n";
    gust_http_args args;
    gust_http_files files;
    /* "\r\n--AaB03xz" is a delimiter followed by junk: refused. */
    assert_int_equal(parse(*state, body, strlen(body), &args, &files), -EINVAL);

    const char *ok =
        "This is the preamble.\r\n--AaB03x \t\r\n"
        "Content-Disposition: form-data; name=a\r\n\r\n"
        "x\r\n--AaB03 not a delimiter\r\n-AaB03x\r\n"
        "\r\n--AaB03x  \r\n"
        "Content-Disposition: form-data; name=\"b\"\r\n\r\n"
        "\r\n--AaB03x-- \r\nThis is the epilogue. --AaB03x\r\n";
    assert_int_equal(parse(*state, ok, strlen(ok), &args, &files), 0);
    assert_int_equal(args.count, 2);
    assert_str(args.items[0].value, "x\r\n--AaB03 not a delimiter\r\n-AaB03x\r\n");
    assert_str(args.items[1].name, "b");
    assert_str(args.items[1].value, ""); /* the CRLF belongs to the delimiter */
}

static void test_multipart_edge_cases(void **state)
{
    gust_http_args args;
    gust_http_files files;
    /* No parts at all. */
    assert_int_equal(parse(*state, "--AaB03x--", 10, &args, &files), 0);
    assert_int_equal(args.count + files.count, 0);

    /* An empty file input, escaped quotes, a file without Content-Type,
     * binary content with NUL and CR LF, headers with no content. */
    static const char body[] =
        "--AaB03x\r\n"
        "Content-Disposition: form-data; name=\"upload\"; filename=\"\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
        "\r\n--AaB03x\r\n"
        "Content-Disposition: form-data; name=\"a\\\"b\"; filename=\"C:\\\\x \\\"y\\\".bin\"\r\n"
        "\r\n"
        "\0\1\r\n\r\n--AaB\r\n"
        "\r\n--AaB03x\r\n"
        "CONTENT-DISPOSITION:form-data;name=bare;filename*=UTF-8''x\r\n"
        "X-Other: ignored\r\n"
        "\r\n--AaB03x--";
    assert_int_equal(parse(*state, body, sizeof(body) - 1, &args, &files), 0);
    assert_int_equal(args.count, 2);
    assert_str(args.items[0].name, "upload");
    assert_str(args.items[0].value, "");
    assert_str(args.items[1].name, "bare");
    assert_str(args.items[1].value, "");
    assert_int_equal(files.count, 1);
    assert_str(files.items[0].name, "a\"b");
    assert_str(files.items[0].filename, "C:\\x \"y\".bin");
    assert_str(files.items[0].content_type, "text/plain");
    assert_int_equal(files.items[0].body.len, 13);
    assert_memory_equal(files.items[0].body.ptr, "\0\1\r\n\r\n--AaB\r\n", 13);
}

static void test_multipart_invalid(void **state)
{
#define PART "Content-Disposition: form-data; name=\"a\"\r\n\r\nv\r\n"
    const char *bad[] = {
        "",                                                  /* nothing */
        "no delimiter at all",
        "--AaB03x\r\n" PART,                                  /* no close */
        "--AaB03x\r\n" PART "--AaB03x\r\n",                   /* no close */
        "--AaB03x\r\n" PART "--AaB03x-",
        "--AaB03x\r\n" PART "--AaB03x--junk",
        "--AaB03xjunk\r\n" PART "--AaB03x--",
        "--AaB03x\n" PART "--AaB03x--",                       /* bare LF */
        "--AaB03x\r\n\r\nv\r\n--AaB03x--",                    /* no headers */
        "--AaB03x\r\n\r\n--AaB03x--",                         /* empty part */
        "--AaB03x\r\nContent-Type: text/plain\r\n\r\nv\r\n--AaB03x--",
        "--AaB03x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--AaB03x--",
        "--AaB03x\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n--AaB03x--",
        "--AaB03x\r\nContent-Disposition: form-data; name=a b\r\n\r\nv\r\n--AaB03x--",
        "--AaB03x\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--AaB03x--",
        "--AaB03x\r\nContent-Disposition: form-data; name=a; name=b\r\n\r\nv\r\n--AaB03x--",
        "--AaB03x\r\nContent-Disposition: form-data; name=a\r\n"
        "Content-Disposition: form-data; name=b\r\n\r\nv\r\n--AaB03x--",
        "--AaB03x\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nv\r\n--AaB03x--",
        "--AaB03x\r\nContent-Disposition : form-data; name=a\r\n\r\nv\r\n--AaB03x--",
        "--AaB03x\r\nNoColon\r\n" PART "--AaB03x--",
        "--AaB03x\r\nX: a\rb\r\n" PART "--AaB03x--",
        "--AaB03x\r\nContent-Disposition: form-data; name=a", /* truncated */
        "--AaB03x\r\nContent-Disposition: form-data; name=a\r\n--AaB03x--",
    };
#undef PART
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        gust_http_args args;
        gust_http_files files;
        if (parse(*state, bad[i], strlen(bad[i]), &args, &files) != -EINVAL)
            fail_msg("accepted #%zu \"%s\"", i, bad[i]);
    }
}

static void test_multipart_headers_only_part(void **state)
{
    /* RFC 2046: body-part := headers [CRLF *OCTET]; content may be absent. */
    const char *body = "--AaB03x\r\nContent-Disposition: form-data; name=a\r\n"
                       "\r\n--AaB03x--";
    gust_http_args args;
    gust_http_files files;
    assert_int_equal(parse(*state, body, strlen(body), &args, &files), 0);
    assert_int_equal(args.count, 1);
    assert_str(args.items[0].value, "");
}

static void test_multipart_bad_boundary(void **state)
{
    gust_http_args args;
    gust_http_args_init(&args, *state);
    gust_http_files files;
    gust_http_files_init(&files, *state);
    assert_int_equal(gust_http_parse_multipart(S(""), S("----"), &args, &files), -EINVAL);
    assert_int_equal(gust_http_parse_multipart(S("a;b"), S("--a;b--"), &args, &files), -EINVAL);
}

static void test_body_arguments(void **state)
{
    gust_arena *a = *state;
    gust_http_args args;
    gust_http_files files;
    gust_http_args_init(&args, a);
    gust_http_files_init(&files, a);
    assert_int_equal(gust_http_parse_body_arguments(
                         a, S("application/x-www-form-urlencoded; charset=utf-8"),
                         S("x=1&y=2"), &args, &files), 0);
    assert_int_equal(args.count, 2);
    assert_int_equal(gust_http_parse_body_arguments(
                         a, S("Multipart/Form-Data; boundary=\"AaB03x\""),
                         gust_str_cstr(BASIC), &args, &files), 0);
    assert_int_equal(args.count, 3);
    assert_int_equal(files.count, 1);
    /* Not a form: untouched. */
    assert_int_equal(gust_http_parse_body_arguments(a, S("application/json"),
                                                    S("{\"a\":1}"), &args, &files), 0);
    assert_int_equal(gust_http_parse_body_arguments(a, GUST_STR_NULL, S("a=1"),
                                                    &args, &files), 0);
    assert_int_equal(gust_http_parse_body_arguments(a, S("text/plain; x"), S("a=1"),
                                                    &args, &files), 0);
    assert_int_equal(args.count, 3);
    /* Broken forms: errors. */
    assert_int_equal(gust_http_parse_body_arguments(a, S("multipart/form-data"),
                                                    gust_str_cstr(BASIC), &args, &files),
                     -EINVAL);
    assert_int_equal(gust_http_parse_body_arguments(a, S("multipart/form-data; boundary"),
                                                    gust_str_cstr(BASIC), &args, &files),
                     -EINVAL);
    assert_int_equal(gust_http_parse_body_arguments(
                         a, S("multipart/form-data; boundary=AaB03x"),
                         gust_str_cstr(BASIC), &args, NULL), -EINVAL);
}


/* ------------------------------------------------------------------ */
/* Incremental parser: must agree with the buffered one for any split. */

typedef struct rec_part {
    char name[64], filename[64], ctype[64];
    bool has_filename;
    char body[256];
    size_t body_len;
    bool ended;
} rec_part;

typedef struct recorder {
    rec_part parts[16];
    size_t n;
    int stop_at_begin; /* stop with this code in part_begin when non-zero */
} recorder;

static void copy_str(char *dst, size_t cap, gust_str s)
{
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n)
        memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

static int on_begin(gust_multipart *mp, const gust_http_part *part, void *data)
{
    (void)mp;
    recorder *r = data;
    if (r->stop_at_begin)
        return r->stop_at_begin;
    assert_true(r->n < 16);
    rec_part *p = &r->parts[r->n++];
    memset(p, 0, sizeof(*p));
    copy_str(p->name, sizeof(p->name), part->name);
    copy_str(p->filename, sizeof(p->filename), part->filename);
    copy_str(p->ctype, sizeof(p->ctype), part->content_type);
    p->has_filename = part->filename.ptr != NULL;
    assert_true(part->headers.len >= 2);
    assert_memory_equal(part->headers.ptr + part->headers.len - 2, "\r\n", 2);
    return 0;
}

static int on_data(gust_multipart *mp, const char *buf, size_t len, void *data)
{
    (void)mp;
    recorder *r = data;
    rec_part *p = &r->parts[r->n - 1];
    assert_false(p->ended);
    assert_true(len > 0);
    assert_true(p->body_len + len <= sizeof(p->body));
    memcpy(p->body + p->body_len, buf, len);
    p->body_len += len;
    return 0;
}

static int on_end(gust_multipart *mp, void *data)
{
    (void)mp;
    recorder *r = data;
    r->parts[r->n - 1].ended = true;
    return 0;
}

static const gust_multipart_callbacks rec_cb = {on_begin, on_data, on_end};

/* Parses body in pieces of size step (each piece its own heap block). */
static int stream(gust_arena *a, const char *body, size_t len, size_t step,
                  recorder *r)
{
    gust_multipart mp;
    memset(r, 0, sizeof(*r));
    assert_int_equal(gust_multipart_init(&mp, S("AaB03x"), 0, a, &rec_cb, r), 0);
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        char *piece = malloc(n);
        memcpy(piece, body + i, n);
        int rc = gust_multipart_feed(&mp, piece, n);
        free(piece);
        if (rc < 0)
            return rc;
    }
    return gust_multipart_finish(&mp);
}

static void compare_with_buffered(gust_arena *a, const char *body, size_t len)
{
    gust_http_args args;
    gust_http_files files;
    int expect = parse(a, body, len, &args, &files);
    size_t steps[] = {1, 2, 3, 5, 7, 11, 64, len ? len : 1};
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        recorder r;
        int rc = stream(a, body, len, steps[k], &r);
        if (rc != expect)
            fail_msg("step %zu: %d, buffered %d, body \"%s\"", steps[k], rc, expect, body);
        if (rc < 0)
            continue;
        assert_int_equal(r.n, args.count + files.count);
        size_t ai = 0, fi = 0;
        for (size_t i = 0; i < r.n; i++) {
            rec_part *p = &r.parts[i];
            assert_true(p->ended);
            gust_str content;
            if (p->filename[0]) {
                const gust_http_file *f = &files.items[fi++];
                assert_str(f->name, p->name);
                assert_str(f->filename, p->filename);
                content = f->body;
            } else {
                assert_str(args.items[ai].name, p->name);
                content = args.items[ai++].value;
            }
            assert_int_equal(content.len, p->body_len);
            assert_memory_equal(content.ptr, p->body, p->body_len);
        }
    }
}

static void test_streaming_matches_buffered(void **state)
{
    static const char edge[] =
        "--AaB03x\r\n"
        "Content-Disposition: form-data; name=\"upload\"; filename=\"\"\r\n"
        "Content-Type: application/octet-stream\r\n\r\n"
        "\r\n--AaB03x\r\n"
        "Content-Disposition: form-data; name=\"a\\\"b\"; filename=\"x.bin\"\r\n"
        "\r\n"
        "\0\1\r\n\r\n--AaB\r\n\r\r\n-\r\n--AaB03\r\n"
        "\r\n--AaB03x\r\n"
        "CONTENT-DISPOSITION:form-data;name=bare\r\n"
        "\r\n--AaB03x--";
    compare_with_buffered(*state, edge, sizeof(edge) - 1);
    const char *bodies[] = {
        BASIC,
        "--AaB03x--",
        "preamble\r\n--AaB03x \t\r\nContent-Disposition: form-data; name=a\r\n\r\n"
        "x\r\n-AaB03x\r\n\r\n--AaB03x  \r\n"
        "Content-Disposition: form-data; name=\"b\"\r\n\r\n"
        "\r\n--AaB03x-- \r\nepilogue --AaB03x\r\n",
        "--AaB03x\r\nContent-Disposition: form-data; name=a\r\n\r\n--AaB03x--",
        /* failures */
        "",
        "--AaB03x\r\nContent-Disposition: form-data; name=a\r\n\r\nv",
        "--AaB03x\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--AaB03x-",
        "--AaB03x\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--AaB03x--x",
        "--AaB03x\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--AaB03x-- \r",
        "--AaB03xjunk\r\n",
        "--AaB03x\r\n\r\nv\r\n--AaB03x--",
        "--AaB03x\r\n\r\n--AaB03x--",
        "--AaB03x\r\nContent-Disposition: form-data; name=a\r\n--AaB03x--",
        "--AaB03x\r\nX: y\r\n--AaB03x\r\n\r\n\r\n--AaB03x--",
        "--AaB03x\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n--AaB03x--",
        "--AaB03x\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nv\r\n--AaB03x--",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        compare_with_buffered(*state, bodies[i], strlen(bodies[i]));
}

static void test_streaming_callback_stops(void **state)
{
    recorder r;
    gust_multipart mp;
    memset(&r, 0, sizeof(r));
    r.stop_at_begin = -ECANCELED;
    assert_int_equal(gust_multipart_init(&mp, S("AaB03x"), 0, *state, &rec_cb, &r), 0);
    assert_int_equal(gust_multipart_feed(&mp, BASIC, strlen(BASIC)), -ECANCELED);
    assert_int_equal(gust_multipart_feed(&mp, "x", 1), -ECANCELED); /* sticky */
    assert_int_equal(gust_multipart_finish(&mp), -ECANCELED);
}

static void test_streaming_header_limit(void **state)
{
    gust_multipart mp;
    assert_int_equal(gust_multipart_init(&mp, S("AaB03x"), 64, *state, NULL, NULL), 0);
    const char *head = "--AaB03x\r\nContent-Disposition: form-data; name=\"";
    assert_int_equal(gust_multipart_feed(&mp, head, strlen(head)), 0);
    char name[100];
    memset(name, 'n', sizeof(name));
    assert_int_equal(gust_multipart_feed(&mp, name, sizeof(name)), -E2BIG);
    assert_int_equal(gust_multipart_init(&mp, S(""), 0, *state, NULL, NULL), -EINVAL);
    /* Within the limit, no callbacks: fine. */
    assert_int_equal(gust_multipart_init(&mp, S("AaB03x"), 0, *state, NULL, NULL), 0);
    assert_int_equal(gust_multipart_feed(&mp, BASIC, strlen(BASIC)), 0);
    assert_int_equal(gust_multipart_finish(&mp), 0);
}

/* A server's request path after the first requests: headers, query,
 * cookies, a form body and a Set-Cookie, all with no malloc once the
 * arena has settled. */
static void one_request(gust_arena *a)
{
    static const char *const names[] = {
        "Host", "User-Agent", "Accept", "Accept-Language", "Accept-Encoding",
        "Connection", "Cookie", "Content-Type", "Content-Length", "Referer",
        "X-Forwarded-For", "X-Real-Ip", "Cache-Control", "Pragma", "Origin",
        "Sec-Fetch-Mode", "Sec-Fetch-Site", "Sec-Fetch-Dest", "Upgrade-Insecure-Requests",
        "DNT"};
    gust_http_headers h;
    gust_http_headers_init(&h, a);
    for (size_t i = 0; i < 20; i++)
        assert_int_equal(gust_http_headers_add(&h, gust_str_cstr(names[i]),
                                               S("some value"), GUST_HTTP_HEADER_TRUSTED), 0);
    assert_true(gust_http_headers_has(&h, S("dnt")));
    gust_http_target t;
    assert_int_equal(gust_http_target_split(S("/search?q=caf%C3%A9+au+lait&page=2&x"), &t), 0);
    gust_http_args args;
    gust_http_args_init(&args, a);
    assert_int_equal(gust_http_args_parse_urlencoded(&args, t.query), 0);
    gust_str path;
    assert_int_equal(gust_url_unescape(a, t.path, GUST_URL_NO_NUL, &path), 0);
    assert_int_equal(gust_http_parse_cookie(S("_xsrf=2|abc|def|123; session=\"xyz\"; lang=en"),
                                            &args), 0);
    gust_http_files files;
    gust_http_files_init(&files, a);
    assert_int_equal(gust_http_parse_body_arguments(
                         a, S("multipart/form-data; boundary=AaB03x"),
                         gust_str_cstr(BASIC), &args, &files), 0);
    gust_str sc;
    gust_http_cookie_options o = {.path = "/", .httponly = true, .has_max_age = true,
                                  .max_age = 3600};
    assert_int_equal(gust_http_format_set_cookie(a, S("session"), S("v1"), &o, &sc), 0);
    assert_int_equal(args.count, 7);
}

static void test_request_steady_state_no_malloc(void **state)
{
    gust_arena *a = *state;
    for (int i = 0; i < 3; i++) {
        one_request(a);
        gust_arena_reset(a);
    }
    gust_arena_stats st;
    gust_arena_get_stats(a, &st);
    size_t before = st.mallocs;
    for (int i = 0; i < 100; i++) {
        one_request(a);
        gust_arena_reset(a);
    }
    gust_arena_get_stats(a, &st);
    assert_int_equal(st.mallocs, before);
    assert_int_equal(st.blocks, 1);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_args_multimap),
        T(test_urlencoded),
        T(test_urlencoded_lenient_escapes),
        T(test_content_type_rfc9110_equivalents),
        T(test_content_type_params),
        T(test_content_type_invalid),
        T(test_boundary_valid),
        T(test_multipart_basic),
        T(test_multipart_rfc7578_example),
        T(test_multipart_preamble_padding_epilogue),
        T(test_multipart_edge_cases),
        T(test_multipart_invalid),
        T(test_multipart_headers_only_part),
        T(test_multipart_bad_boundary),
        T(test_body_arguments),
        T(test_streaming_matches_buffered),
        T(test_streaming_callback_stops),
        T(test_streaming_header_limit),
        T(test_request_steady_state_no_malloc),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
