/* Tests for request targets, percent-encoding and URLs (include/gust/http.h). */
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

static void test_target_origin(void **state)
{
    (void)state;
    gust_http_target t;
    assert_int_equal(gust_http_target_split(S("/"), &t), 0);
    assert_int_equal(t.form, GUST_HTTP_TARGET_ORIGIN);
    assert_str(t.path, "/");
    assert_null(t.query.ptr);
    assert_null(t.authority.ptr);

    gust_str in = S("/where?q=now&x");
    assert_int_equal(gust_http_target_split(in, &t), 0);
    assert_str(t.path, "/where");
    assert_str(t.query, "q=now&x");
    assert_ptr_equal(t.path.ptr, in.ptr); /* slices of the input */

    assert_int_equal(gust_http_target_split(S("/a?"), &t), 0);
    assert_str(t.query, ""); /* present but empty */
    assert_int_equal(gust_http_target_split(S("/a?b?c"), &t), 0);
    assert_str(t.query, "b?c");
    assert_int_equal(gust_http_target_split(S("//double"), &t), 0);
    assert_int_equal(gust_http_target_split(S("/caf\xc3\xa9"), &t), 0);
}

static void test_target_other_forms(void **state)
{
    (void)state;
    gust_http_target t;
    assert_int_equal(gust_http_target_split(S("*"), &t), 0);
    assert_int_equal(t.form, GUST_HTTP_TARGET_ASTERISK);
    assert_str(t.path, "*");

    /* RFC 9112 section 3.2.2 example */
    assert_int_equal(gust_http_target_split(
                         S("http://www.example.org/pub/WWW/TheProject.html"), &t), 0);
    assert_int_equal(t.form, GUST_HTTP_TARGET_ABSOLUTE);
    assert_str(t.scheme, "http");
    assert_str(t.authority, "www.example.org");
    assert_str(t.path, "/pub/WWW/TheProject.html");
    assert_null(t.query.ptr);

    assert_int_equal(gust_http_target_split(S("http://h:8080?x=1"), &t), 0);
    assert_str(t.authority, "h:8080");
    assert_str(t.path, "/");
    assert_str(t.query, "x=1");

    /* RFC 9112 section 3.2.3 example */
    assert_int_equal(gust_http_target_split(S("www.example.com:80"), &t), 0);
    assert_int_equal(t.form, GUST_HTTP_TARGET_AUTHORITY);
    assert_str(t.authority, "www.example.com:80");
    assert_null(t.path.ptr);
    assert_int_equal(gust_http_target_split(S("[2001:db8::1]:443"), &t), 0);
    assert_int_equal(t.form, GUST_HTTP_TARGET_AUTHORITY);
}

static void test_target_invalid(void **state)
{
    (void)state;
    gust_http_target t;
    const char *bad[] = {
        "", "a b", "/a b", "/a#frag", "/a\x01", "/a\x7f", "/a\tb",
        "**", "www.example.com", "host:", "host:99999", "user@host:80",
        "http://", "http://h/a#f", "http:/x", "http://h/\x80", "?x",
        "[::1", "../etc/passwd",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = gust_http_target_split(gust_str_cstr(bad[i]), &t);
        if (rc != -EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    assert_int_equal(gust_http_target_split(gust_str_make("/a\0b", 4), &t), -EINVAL);
}

static void unescape_is(gust_arena *a, const char *in, unsigned flags,
                        const char *expect, size_t expect_len)
{
    gust_str out;
    int rc = gust_url_unescape(a, gust_str_cstr(in), flags, &out);
    if (rc != 0)
        fail_msg("\"%s\" -> %d", in, rc);
    assert_int_equal(out.len, expect_len);
    assert_memory_equal(out.ptr, expect, expect_len);
}

static void test_unescape(void **state)
{
    gust_arena *a = *state;
    unescape_is(a, "a%20b", 0, "a b", 3);
    unescape_is(a, "%41%42%43", 0, "ABC", 3);
    unescape_is(a, "%c3%A9", 0, "\xc3\xa9", 2);   /* either hex case */
    unescape_is(a, "a+b", 0, "a+b", 3);
    unescape_is(a, "a+b", GUST_URL_PLUS, "a b", 3);
    unescape_is(a, "%2B+", GUST_URL_PLUS, "+ ", 2);
    unescape_is(a, "%2541", 0, "%41", 3);           /* decoded once only */
    /* Invalid escapes stay literal (as Python's unquote). */
    unescape_is(a, "%", 0, "%", 1);
    unescape_is(a, "%4", 0, "%4", 2);
    unescape_is(a, "100%", 0, "100%", 4);
    unescape_is(a, "%zz", 0, "%zz", 3);
    unescape_is(a, "%%41", 0, "%A", 2);
    unescape_is(a, "%4g", 0, "%4g", 3);
    unescape_is(a, "%00", 0, "\0", 1);
    unescape_is(a, "", 0, "", 0);

    gust_str in = S("/plain/path"), out;
    assert_int_equal(gust_url_unescape(a, in, GUST_URL_PLUS, &out), 0);
    assert_ptr_equal(out.ptr, in.ptr); /* nothing to decode: zero-copy */
    in = S("x%41y");
    assert_int_equal(gust_url_unescape(a, in, 0, &out), 0);
    assert_int_equal(out.ptr[out.len], '\0'); /* copies are terminated */
}

static void test_unescape_strict_and_nul(void **state)
{
    gust_arena *a = *state;
    gust_str out;
    assert_int_equal(gust_url_unescape(a, S("%zz"), GUST_URL_STRICT, &out), -EINVAL);
    assert_int_equal(gust_url_unescape(a, S("a%4"), GUST_URL_STRICT, &out), -EINVAL);
    assert_int_equal(gust_url_unescape(a, S("a%"), GUST_URL_STRICT, &out), -EINVAL);
    assert_int_equal(gust_url_unescape(a, S("%41"), GUST_URL_STRICT, &out), 0);
    assert_int_equal(gust_url_unescape(a, S("/a%00.txt"), GUST_URL_NO_NUL, &out),
                     -EINVAL);
    assert_int_equal(gust_url_unescape(a, S("/a%01"), GUST_URL_NO_NUL, &out), 0);
    assert_int_equal(gust_url_unescape(a, gust_str_make("/a\0b", 4), GUST_URL_NO_NUL, &out),
                     -EINVAL);
    assert_int_equal(gust_url_unescape(a, gust_str_make("%41\0", 4), GUST_URL_NO_NUL, &out),
                     -EINVAL);
}

static void test_unescape_inplace(void **state)
{
    (void)state;
    char buf[] = "a%2Fb+c%";
    long n = gust_url_unescape_inplace(buf, strlen(buf), GUST_URL_PLUS);
    assert_int_equal(n, 6);
    assert_memory_equal(buf, "a/b c%", 6);
    char bad[] = "%G0";
    assert_int_equal(gust_url_unescape_inplace(bad, 3, GUST_URL_STRICT), -EINVAL);
}

static void test_escape(void **state)
{
    gust_arena *a = *state;
    gust_str out;
    assert_int_equal(gust_url_escape(a, S("a b/c~-._"), 0, &out), 0);
    assert_str(out, "a%20b%2Fc~-._");
    assert_int_equal(gust_url_escape(a, S("a b/c"), GUST_URL_PLUS, &out), 0);
    assert_str(out, "a+b%2Fc");
    assert_int_equal(gust_url_escape(a, S("a b/c"), GUST_URL_KEEP_SLASH, &out), 0);
    assert_str(out, "a%20b/c");
    assert_int_equal(gust_url_escape(a, S("caf\xc3\xa9&=+"), 0, &out), 0);
    assert_str(out, "caf%C3%A9%26%3D%2B");
    gust_str in = S("Plain-1.0_~");
    assert_int_equal(gust_url_escape(a, in, 0, &out), 0);
    assert_ptr_equal(out.ptr, in.ptr);
}

static void test_escape_roundtrip_all_bytes(void **state)
{
    gust_arena *a = *state;
    char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (char)i;
    unsigned modes[] = {0, GUST_URL_PLUS};
    for (size_t m = 0; m < 2; m++) {
        gust_str enc, dec;
        assert_int_equal(gust_url_escape(a, gust_str_make(all, 256), modes[m], &enc), 0);
        for (size_t i = 0; i < enc.len; i++)
            assert_true(enc.ptr[i] > 0x20 && enc.ptr[i] < 0x7f);
        assert_int_equal(gust_url_unescape(a, enc, modes[m] | GUST_URL_STRICT, &dec), 0);
        assert_int_equal(dec.len, 256);
        assert_memory_equal(dec.ptr, all, 256);
    }
}

static void test_url_parse(void **state)
{
    (void)state;
    gust_url u;
    assert_int_equal(gust_url_parse(S("http://example.com"), &u), 0);
    assert_str(u.scheme, "http");
    assert_str(u.host, "example.com");
    assert_int_equal(u.port, 80);
    assert_false(u.port_explicit);
    assert_str(u.path, "");
    assert_null(u.query.ptr);
    assert_null(u.fragment.ptr);
    assert_null(u.userinfo.ptr);

    assert_int_equal(gust_url_parse(
                         S("HTTPS://user:p%40ss@Example.COM:8443/a/b;p?c=d&e=/?#frag/?"),
                         &u), 0);
    assert_str(u.scheme, "HTTPS");
    assert_str(u.userinfo, "user:p%40ss");
    assert_str(u.host, "Example.COM");
    assert_int_equal(u.port, 8443);
    assert_true(u.port_explicit);
    assert_str(u.path, "/a/b;p");
    assert_str(u.query, "c=d&e=/?");
    assert_str(u.fragment, "frag/?");

    assert_int_equal(gust_url_parse(S("https://[2001:db8::7]/c=GB?objectClass?one"), &u), 0);
    assert_true(u.host_ipv6);
    assert_str(u.host, "2001:db8::7");
    assert_int_equal(u.port, 443);
    assert_str(u.query, "objectClass?one");

    assert_int_equal(gust_url_parse(S("ws://[::ffff:192.0.2.1]:9000"), &u), 0);
    assert_str(u.host, "::ffff:192.0.2.1");
    assert_int_equal(u.port, 9000);
    assert_int_equal(gust_url_parse(S("wss://h/"), &u), 0);
    assert_int_equal(u.port, 443);
    assert_int_equal(gust_url_parse(S("ftp://ftp.is.co.za/rfc/rfc1808.txt"), &u), 0);
    assert_int_equal(u.port, 0);
    assert_int_equal(gust_url_parse(S("http://h:/x"), &u), 0); /* empty port */
    assert_int_equal(u.port, 80);
    assert_false(u.port_explicit);
    assert_int_equal(gust_url_parse(S("http://127.0.0.1:65535?"), &u), 0);
    assert_int_equal(u.port, 65535);
    assert_str(u.query, "");
    assert_str(u.path, "");
}

static void test_url_parse_invalid(void **state)
{
    (void)state;
    const char *bad[] = {
        "", "example.com/x", "http:/x", "http:x", "http://", "http://:80/",
        "http://host:65536/", "http://host:0/", "http://host:12a/",
        "http://host:123456/", "http://ho st/", "http://host/a b",
        "http://host/%zz", "http://host/%4", "http://a@b@c/", "1http://x/",
        "ht tp://x/", "http://host/\x80", "http://[::1/", "http://[::1]x/",
        "http://[fe80::1%25eth0]/", "http://[v1.x]/", "http://[1.2.3.4]/",
        "http://::1/", "http://h/a\"b", "http://h/<a>", "http://h/a\\b",
        "http://h/{x}", "http://h/a|b", "http://h/a^b", "http://h/`",
        "http://h/#a#b", "http://h\x01/", "http://h/\r\n",
    };
    gust_url u;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gust_url_parse(gust_str_cstr(bad[i]), &u) != -EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void test_split_host_port(void **state)
{
    (void)state;
    gust_str host;
    int port;
    assert_int_equal(gust_http_split_host_port(S("example.com"), &host, &port), 0);
    assert_str(host, "example.com");
    assert_int_equal(port, -1);
    assert_int_equal(gust_http_split_host_port(S("example.com:8080"), &host, &port), 0);
    assert_str(host, "example.com");
    assert_int_equal(port, 8080);
    assert_int_equal(gust_http_split_host_port(S("[::1]:80"), &host, &port), 0);
    assert_str(host, "::1");
    assert_int_equal(port, 80);
    assert_int_equal(gust_http_split_host_port(S("[::1]"), &host, &port), 0);
    assert_int_equal(port, -1);
    assert_int_equal(gust_http_split_host_port(S("h:"), &host, &port), 0);
    assert_int_equal(port, -1);
    const char *bad[] = {"", ":80", "a:b", "[::1", "::1", "host:99999",
                         "[::1]x", "a b", "h:1:2", "[]:80"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gust_http_split_host_port(gust_str_cstr(bad[i]), &host, &port) != -EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

static void test_url_concat(void **state)
{
    gust_arena *a = *state;
    gust_http_arg args[] = {{S("q"), S("a b&c")}, {S("x"), S("")}};
    gust_str out;
    assert_int_equal(gust_url_concat(a, S("http://h/p"), args, 2, &out), 0);
    assert_str(out, "http://h/p?q=a+b%26c&x=");
    assert_int_equal(out.ptr[out.len], '\0');
    assert_int_equal(gust_url_concat(a, S("http://h/p?y=1"), args, 1, &out), 0);
    assert_str(out, "http://h/p?y=1&q=a+b%26c");
    assert_int_equal(gust_url_concat(a, S("/p?"), args, 1, &out), 0);
    assert_str(out, "/p?q=a+b%26c");
    assert_int_equal(gust_url_concat(a, S("/p?y=1&"), args, 1, &out), 0);
    assert_str(out, "/p?y=1&q=a+b%26c");
    assert_int_equal(gust_url_concat(a, S("/p#frag?x"), args, 1, &out), 0);
    assert_str(out, "/p?q=a+b%26c#frag?x");
    gust_str in = S("/same");
    assert_int_equal(gust_url_concat(a, in, args, 0, &out), 0);
    assert_ptr_equal(out.ptr, in.ptr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_target_origin),
        cmocka_unit_test(test_target_other_forms),
        cmocka_unit_test(test_target_invalid),
        cmocka_unit_test_setup_teardown(test_unescape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unescape_strict_and_nul, setup, teardown),
        cmocka_unit_test(test_unescape_inplace),
        cmocka_unit_test_setup_teardown(test_escape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_escape_roundtrip_all_bytes, setup, teardown),
        cmocka_unit_test(test_url_parse),
        cmocka_unit_test(test_url_parse_invalid),
        cmocka_unit_test(test_split_host_port),
        cmocka_unit_test_setup_teardown(test_url_concat, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
