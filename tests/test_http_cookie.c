/* Tests for Cookie parsing and Set-Cookie formatting (include/gust/http.h). */
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

static void test_parse_rfc6265_example(void **state)
{
    /* RFC 6265 section 5.4 / 3.1 */
    gust_http_args c;
    gust_http_args_init(&c, *state);
    gust_str h = S("SID=31d4d96e407aad42; lang=en-US");
    assert_int_equal(gust_http_parse_cookie(h, &c), 0);
    assert_int_equal(c.count, 2);
    assert_str(gust_http_args_get_first(&c, S("SID")), "31d4d96e407aad42");
    assert_str(gust_http_args_get_first(&c, S("lang")), "en-US");
    assert_ptr_equal(c.items[0].value.ptr, h.ptr + 4); /* zero-copy */
}

static void test_parse_lenient(void **state)
{
    gust_http_args c;
    gust_http_args_init(&c, *state);
    assert_int_equal(gust_http_parse_cookie(
                         S(" a = 1 ;b=2;\tc=\"quoted val\" ; d=; novalue ;=anon; e=x=y;;"
                           " a=again; q=\""),
                         &c), 0);
    assert_int_equal(c.count, 7);
    assert_str(c.items[0].name, "a");
    assert_str(c.items[0].value, "1");
    assert_str(c.items[1].value, "2");
    assert_str(c.items[2].name, "c");
    assert_str(c.items[2].value, "quoted val");
    assert_str(c.items[3].name, "d");
    assert_str(c.items[3].value, "");
    assert_str(c.items[4].name, "e");
    assert_str(c.items[4].value, "x=y");
    assert_str(c.items[5].value, "again");
    assert_str(c.items[6].value, "\""); /* a lone quote is kept */
    /* The first of duplicate names is the most specific (RFC 6265 5.4). */
    assert_str(gust_http_args_get_first(&c, S("a")), "1");
    assert_int_equal(gust_http_args_count_name(&c, S("a")), 2);

    gust_http_args_init(&c, *state);
    assert_int_equal(gust_http_parse_cookie(S(""), &c), 0);
    assert_int_equal(gust_http_parse_cookie(S(";;; ;"), &c), 0);
    assert_int_equal(c.count, 0);
}

static gust_str fmt(gust_arena *a, const char *name, const char *value,
                    const gust_http_cookie_options *o, int expect_rc)
{
    gust_str out = GUST_STR_NULL;
    int rc = gust_http_format_set_cookie(a, gust_str_cstr(name), gust_str_cstr(value),
                                         o, &out);
    if (rc != expect_rc)
        fail_msg("%s=%s: rc %d, expected %d", name, value, rc, expect_rc);
    return out;
}

static void test_format_rfc6265_examples(void **state)
{
    gust_arena *a = *state;
    assert_str(fmt(a, "SID", "31d4d96e407aad42", NULL, 0), "SID=31d4d96e407aad42");
    gust_http_cookie_options o = {.path = "/", .domain = "example.com"};
    assert_str(fmt(a, "SID", "31d4d96e407aad42", &o, 0),
               "SID=31d4d96e407aad42; Domain=example.com; Path=/");
    o = (gust_http_cookie_options){.path = "/", .secure = true, .httponly = true};
    assert_str(fmt(a, "SID", "31d4d96e407aad42", &o, 0),
               "SID=31d4d96e407aad42; Path=/; Secure; HttpOnly");
    /* Expires=Wed, 09 Jun 2021 10:18:14 GMT */
    o = (gust_http_cookie_options){.has_expires = true, .expires = 1623233894};
    assert_str(fmt(a, "lang", "en-US", &o, 0),
               "lang=en-US; Expires=Wed, 09 Jun 2021 10:18:14 GMT");
    /* Deleting a cookie. */
    o = (gust_http_cookie_options){.has_expires = true, .expires = 0,
                                   .has_max_age = true, .max_age = 0};
    assert_str(fmt(a, "lang", "", &o, 0),
               "lang=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0");
}

static void test_format_all_attributes(void **state)
{
    gust_arena *a = *state;
    gust_http_cookie_options o = {
        .domain = ".example.com", .path = "/app", .has_expires = true,
        .expires = 253402300799, .has_max_age = true,
        .max_age = 9223372036854775807LL, .secure = true, .httponly = true,
        .samesite = GUST_HTTP_SAMESITE_STRICT};
    gust_str s = fmt(a, "__Secure-id", "\"q\"", &o, 0);
    assert_str(s, "__Secure-id=\"q\"; Domain=.example.com; Path=/app; "
                  "Expires=Fri, 31 Dec 9999 23:59:59 GMT; "
                  "Max-Age=9223372036854775807; Secure; HttpOnly; SameSite=Strict");
    assert_int_equal(s.ptr[s.len], '\0');
    o = (gust_http_cookie_options){.samesite = GUST_HTTP_SAMESITE_LAX};
    assert_str(fmt(a, "a", "b", &o, 0), "a=b; SameSite=Lax");
    o = (gust_http_cookie_options){.samesite = GUST_HTTP_SAMESITE_NONE, .secure = true};
    assert_str(fmt(a, "a", "b", &o, 0), "a=b; Secure; SameSite=None");
    o = (gust_http_cookie_options){.secure = true, .path = "/"};
    assert_str(fmt(a, "__Host-x", "1", &o, 0), "__Host-x=1; Path=/; Secure");
    /* Every cookie-octet is accepted. */
    assert_str(fmt(a, "k", "!#$%&'()*+-./09:<=>?@AZ[]^_`az{|}~", NULL, 0),
               "k=!#$%&'()*+-./09:<=>?@AZ[]^_`az{|}~");
}

static void test_format_rejects_injection(void **state)
{
    gust_arena *a = *state;
    const char *bad_names[] = {"", "a b", "a;b", "a=b", "a,b", "a\r\nX", "\"a\"", "caf\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++)
        fmt(a, bad_names[i], "v", NULL, -EINVAL);
    const char *bad_values[] = {"a;b", "a,b", "a b", "a\r\nSet-Cookie: x=y", "\"",
                                "a\"b", "\"a", "caf\xc3\xa9", "a\\b", "a\x7f", "a\tb"};
    for (size_t i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++)
        fmt(a, "n", bad_values[i], NULL, -EINVAL);
    const char *bad_attrs[] = {"", "x;y", "x\r\nSet-Cookie: a=b", "a,b", "x\x01"};
    for (size_t i = 0; i < sizeof(bad_attrs) / sizeof(bad_attrs[0]); i++) {
        gust_http_cookie_options o = {.domain = bad_attrs[i]};
        fmt(a, "n", "v", &o, -EINVAL);
        o = (gust_http_cookie_options){.path = bad_attrs[i]};
        fmt(a, "n", "v", &o, -EINVAL);
    }
    gust_http_cookie_options o = {.has_max_age = true, .max_age = -1};
    fmt(a, "n", "v", &o, -EINVAL);
    o = (gust_http_cookie_options){.samesite = GUST_HTTP_SAMESITE_NONE};
    fmt(a, "n", "v", &o, -EINVAL);
    o = (gust_http_cookie_options){.has_expires = true, .expires = 253402300800};
    fmt(a, "n", "v", &o, -EINVAL);
    o = (gust_http_cookie_options){0};
    fmt(a, "__Secure-n", "v", &o, -EINVAL);
    o = (gust_http_cookie_options){.secure = true, .path = "/", .domain = "example.com"};
    fmt(a, "__Host-n", "v", &o, -EINVAL);
    o = (gust_http_cookie_options){.secure = true, .path = "/a"};
    fmt(a, "__Host-n", "v", &o, -EINVAL);
    o = (gust_http_cookie_options){.secure = true};
    fmt(a, "__Host-n", "v", &o, -EINVAL);
}

/* The names from before every enum constant carried its type's prefix
 * still compile and mean the same. */
static void test_old_enum_names(void **state)
{
    gust_arena *a = *state;
    gust_http_cookie_options o = {.samesite = GUST_SAMESITE_LAX};
    assert_str(fmt(a, "a", "b", &o, 0), "a=b; SameSite=Lax");
    assert_int_equal(GUST_SAMESITE_STRICT, GUST_HTTP_SAMESITE_STRICT);
    assert_int_equal(GUST_SAMESITE_NONE, GUST_HTTP_SAMESITE_NONE);
    assert_int_equal(GUST_SAMESITE_UNSET, GUST_HTTP_SAMESITE_UNSET);
    assert_int_equal(GUST_HEADER_COPY, GUST_HTTP_HEADER_COPY);
    assert_int_equal(GUST_HEADER_TRUSTED, GUST_HTTP_HEADER_TRUSTED);
    assert_int_equal(GUST_TARGET_ABSOLUTE, GUST_HTTP_TARGET_ABSOLUTE);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_parse_rfc6265_example),
        T(test_parse_lenient),
        T(test_format_rfc6265_examples),
        T(test_format_all_attributes),
        T(test_format_rejects_injection),
        T(test_old_enum_names),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
