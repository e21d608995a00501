/* Tests for slices, tokens, the header collection and status reasons
 * (include/gust/http.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/http.h"

#include "http_test.h"

static void test_str_compare(void **state)
{
    (void)state;
    assert_true(gust_str_eq(S("abc"), S("abc")));
    assert_false(gust_str_eq(S("abc"), S("abC")));
    assert_false(gust_str_eq(S("abc"), S("ab")));
    assert_true(gust_str_eq(S(""), GUST_STR_NULL));
    assert_true(gust_str_eq_nocase(S("Content-Type"), S("content-TYPE")));
    assert_false(gust_str_eq_nocase(S("Content-Type"), S("Content-Typf")));
    /* '@' and '`' differ from letters by the 0x20 bit only: not equal. */
    assert_false(gust_str_eq_nocase(S("@"), S("`")));
    assert_false(gust_str_eq_nocase(S("["), S("{")));
    /* Non-ASCII bytes compare exactly, no locale folding. */
    assert_false(gust_str_eq_nocase(S("\xc3\xa9"), S("\xc3\x89")));
    /* Long names: equal words are skipped eight bytes at a time, and a
     * difference in any position, before or after them, still counts. */
    assert_true(gust_str_eq_nocase(S("Access-Control-Allow-Origin"),
                                   S("Access-Control-Allow-Origin")));
    assert_true(gust_str_eq_nocase(S("Access-Control-Allow-Origin"),
                                   S("access-control-allow-origin")));
    assert_true(gust_str_eq_nocase(S("Access-Control-Allow-Origin"),
                                   S("Access-Control-ALLOW-Origin")));
    assert_false(gust_str_eq_nocase(S("Access-Control-Allow-Origin"),
                                    S("Access-Control-Allow-Origio")));
    assert_false(gust_str_eq_nocase(S("Access-Control-Allow-Origin"),
                                    S("Access_Control-Allow-Origin")));
    assert_false(gust_str_eq_nocase(S("Access-Control-Allow-Origin"),
                                    S("Access-Control@Allow-Origin")));
    assert_false(gust_str_eq_nocase(S("If-None-Matcx"), S("If-None-Match")));
}

static void test_str_dup(void **state)
{
    char *s = gust_str_dup(*state, gust_str_make("hello", 4));
    assert_string_equal(s, "hell");
    assert_string_equal(gust_str_dup(*state, GUST_STR_NULL), "");
    char *z = gust_str_dup(*state, gust_str_make("a\0b", 3));
    assert_memory_equal(z, "a\0b", 4); /* embedded NUL kept, NUL added */
    assert_int_equal(gust_str_cstr("abc").len, 3);
    assert_null(gust_str_cstr(NULL).ptr);
}

static void test_token_and_method(void **state)
{
    (void)state;
    assert_true(gust_http_token_valid(S("Content-Type")));
    assert_true(gust_http_token_valid(S("!#$%&'*+-.^_`|~09azAZ")));
    assert_false(gust_http_token_valid(S("")));
    assert_false(gust_http_token_valid(GUST_STR_NULL));
    assert_false(gust_http_token_valid(S("Bad Name")));
    assert_false(gust_http_token_valid(S("Name:")));
    assert_false(gust_http_token_valid(S("X\r\nY")));
    assert_false(gust_http_token_valid(S("a\"b")));
    assert_false(gust_http_token_valid(S("caf\xc3\xa9")));
    assert_true(gust_http_method_valid(S("GET")));
    assert_true(gust_http_method_valid(S("M-SEARCH")));
    assert_false(gust_http_method_valid(S("GET ")));
    assert_false(gust_http_method_valid(S("G(T")));
}

static void test_value_valid(void **state)
{
    (void)state;
    assert_true(gust_http_header_value_valid(S("")));
    assert_true(gust_http_header_value_valid(S("text/html; charset=\"utf-8\"")));
    assert_true(gust_http_header_value_valid(S("a\tb c")));
    assert_true(gust_http_header_value_valid(S("caf\xc3\xa9"))); /* obs-text */
    assert_false(gust_http_header_value_valid(S("a\rb")));
    assert_false(gust_http_header_value_valid(S("a\nb")));
    assert_false(gust_http_header_value_valid(gust_str_make("a\0b", 3)));
    assert_false(gust_http_header_value_valid(S("a\x7f")));
    assert_false(gust_http_header_value_valid(S("a\x01")));
}

static void test_add_get_case_insensitive_in_order(void **state)
{
    gust_http_headers h;
    gust_http_headers_init(&h, *state);
    assert_int_equal(gust_http_headers_add(&h, S("Host"), S("example.com"), 0), 0);
    assert_int_equal(gust_http_headers_add(&h, S("Accept"), S("text/html"), 0), 0);
    assert_int_equal(gust_http_headers_add(&h, S("ACCEPT"), S("*/*"), 0), 0);
    assert_int_equal(gust_http_headers_add(&h, S("X-Empty"), S(""), 0), 0);
    assert_int_equal(h.count, 4);
    assert_str(gust_http_headers_get_first(&h, S("host")), "example.com");
    assert_str(gust_http_headers_get_first(&h, S("accept")), "text/html");
    assert_true(gust_http_headers_has(&h, S("x-empty")));
    assert_str(gust_http_headers_get_first(&h, S("X-EMPTY")), "");
    assert_false(gust_http_headers_has(&h, S("Cookie")));
    assert_null(gust_http_headers_get_first(&h, S("Cookie")).ptr);
    assert_int_equal(gust_http_headers_count_name(&h, S("Accept")), 2);
    /* Names keep their case; order is kept. */
    assert_str(h.items[2].name, "ACCEPT");
    assert_str(h.items[3].name, "X-Empty");

    size_t cur = 0;
    gust_str v;
    assert_true(gust_http_headers_next(&h, S("accept"), &cur, &v));
    assert_str(v, "text/html");
    assert_true(gust_http_headers_next(&h, S("accept"), &cur, &v));
    assert_str(v, "*/*");
    assert_false(gust_http_headers_next(&h, S("accept"), &cur, &v));
}

static void test_borrow_and_copy(void **state)
{
    gust_http_headers h;
    gust_http_headers_init(&h, *state);
    char name[] = "X-Name", value[] = "value";
    assert_int_equal(gust_http_headers_add(&h, gust_str_cstr(name),
                                           gust_str_cstr(value), GUST_HTTP_HEADER_COPY), 0);
    assert_int_equal(gust_http_headers_add(&h, gust_str_cstr(name),
                                           gust_str_cstr(value), GUST_HTTP_HEADER_BORROW), 0);
    assert_ptr_equal(h.items[1].value.ptr, value); /* zero-copy */
    assert_ptr_not_equal(h.items[0].value.ptr, value);
    name[0] = 'Y';
    value[0] = 'V';
    assert_str(h.items[0].name, "X-Name");
    assert_str(h.items[0].value, "value");
    assert_str(h.items[1].value, "Value");
}

static void test_injection_rejected(void **state)
{
    gust_http_headers h;
    gust_http_headers_init(&h, *state);
    assert_int_equal(gust_http_headers_add(&h, S("Location"),
                                           S("/x\r\nSet-Cookie: a=b"), 0), -EINVAL);
    assert_int_equal(gust_http_headers_add(&h, S("Location"), S("/x\nX: y"), 0),
                     -EINVAL);
    assert_int_equal(gust_http_headers_add(&h, S("X"), gust_str_make("a\0b", 3), 0),
                     -EINVAL);
    assert_int_equal(gust_http_headers_add(&h, S("X\r\nY"), S("v"), 0), -EINVAL);
    assert_int_equal(gust_http_headers_add(&h, S("X Y"), S("v"), 0), -EINVAL);
    assert_int_equal(gust_http_headers_add(&h, S(""), S("v"), 0), -EINVAL);
    assert_int_equal(gust_http_headers_add(&h, S("X"), S("v"), 0), 0);
    assert_int_equal(gust_http_headers_set(&h, S("X"), S("a\r\nb"), 0), -EINVAL);
    assert_int_equal(gust_http_headers_set(&h, S("New"), S("a\rb"), 0), -EINVAL);
    assert_int_equal(h.count, 1);
    assert_str(h.items[0].value, "v"); /* a failed set changes nothing */
    /* TRUSTED skips the check: for the parser's own validated slices. */
    assert_int_equal(gust_http_headers_add(&h, S("T"), S("a b"), GUST_HTTP_HEADER_TRUSTED), 0);
}

static void test_set_replaces_at_first_position(void **state)
{
    gust_http_headers h;
    gust_http_headers_init(&h, *state);
    gust_http_headers_add(&h, S("A"), S("1"), 0);
    gust_http_headers_add(&h, S("Vary"), S("x"), 0);
    gust_http_headers_add(&h, S("B"), S("2"), 0);
    gust_http_headers_add(&h, S("vary"), S("y"), 0);
    assert_int_equal(gust_http_headers_set(&h, S("VARY"), S("z"), 0), 0);
    assert_int_equal(h.count, 3);
    assert_str(h.items[0].name, "A");
    assert_str(h.items[1].name, "VARY");
    assert_str(h.items[1].value, "z");
    assert_str(h.items[2].name, "B");
    assert_int_equal(gust_http_headers_set(&h, S("C"), S("3"), 0), 0);
    assert_str(h.items[3].value, "3");
}

static void test_remove_and_clear(void **state)
{
    gust_http_headers h;
    gust_http_headers_init(&h, *state);
    gust_http_headers_add(&h, S("A"), S("1"), 0);
    gust_http_headers_add(&h, S("B"), S("2"), 0);
    gust_http_headers_add(&h, S("a"), S("3"), 0);
    assert_int_equal(gust_http_headers_remove(&h, S("A")), 2);
    assert_int_equal(h.count, 1);
    assert_str(h.items[0].name, "B");
    assert_int_equal(gust_http_headers_remove(&h, S("A")), 0);
    gust_http_headers_clear(&h);
    assert_int_equal(h.count, 0);
    assert_false(gust_http_headers_has(&h, S("B")));
}

static void test_get_joined(void **state)
{
    gust_http_headers h;
    gust_http_headers_init(&h, *state);
    gust_str out;
    assert_int_equal(gust_http_headers_get_joined(&h, S("Accept"), &out), -ENOENT);
    assert_null(out.ptr);
    gust_http_headers_add(&h, S("Accept"), S("text/html"), 0);
    assert_int_equal(gust_http_headers_get_joined(&h, S("accept"), &out), 0);
    assert_ptr_equal(out.ptr, h.items[0].value.ptr); /* one value: no copy */
    gust_http_headers_add(&h, S("Other"), S("x"), 0);
    gust_http_headers_add(&h, S("accept"), S("application/json"), 0);
    gust_http_headers_add(&h, S("Accept"), S(""), 0);
    assert_int_equal(gust_http_headers_get_joined(&h, S("Accept"), &out), 0);
    assert_str(out, "text/html, application/json, ");
}

static void test_many_headers_grow(void **state)
{
    gust_http_headers h;
    gust_http_headers_init(&h, *state);
    char names[100][8];
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof(names[i]), "H%d", i);
        assert_int_equal(gust_http_headers_add(&h, gust_str_cstr(names[i]),
                                               S("v"), 0), 0);
    }
    assert_int_equal(h.count, 100);
    assert_str(gust_http_headers_get_first(&h, S("h99")), "v");
    assert_str(h.items[57].name, "H57");
}

static void test_serialize(void **state)
{
    gust_http_headers h;
    gust_http_headers_init(&h, *state);
    gust_http_headers_add(&h, S("Content-Type"), S("text/plain"), 0);
    gust_http_headers_add(&h, S("Set-Cookie"), S("a=1"), 0);
    gust_http_headers_add(&h, S("Set-Cookie"), S("b=2"), 0);
    const char *expect = "Content-Type: text/plain\r\nSet-Cookie: a=1\r\n"
                         "Set-Cookie: b=2\r\n";
    assert_int_equal(gust_http_headers_wire_size(&h), strlen(expect));
    char buf[128];
    char *end = gust_http_headers_serialize(&h, buf);
    assert_int_equal(end - buf, strlen(expect));
    assert_memory_equal(buf, expect, strlen(expect));
}

static void test_headers_after_arena_reset(void **state)
{
    gust_arena *a = *state;
    gust_http_headers h;
    gust_http_headers_init(&h, a);
    gust_http_headers_add(&h, S("A"), S("1"), GUST_HTTP_HEADER_COPY);
    gust_arena_reset(a);
    size_t before;
    gust_arena_stats st;
    gust_arena_get_stats(a, &st);
    before = st.mallocs;
    gust_http_headers_init(&h, a);
    for (int i = 0; i < 16; i++)
        gust_http_headers_add(&h, S("Name"), S("value"), 0);
    gust_arena_get_stats(a, &st);
    assert_int_equal(st.mallocs, before); /* reused the kept block */
}

static void test_reason(void **state)
{
    (void)state;
    assert_string_equal(gust_http_reason(200), "OK");
    assert_string_equal(gust_http_reason(404), "Not Found");
    assert_string_equal(gust_http_reason(413), "Content Too Large");
    assert_string_equal(gust_http_reason(422), "Unprocessable Content");
    assert_string_equal(gust_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(gust_http_reason(308), "Permanent Redirect");
    assert_string_equal(gust_http_reason(505), "HTTP Version Not Supported");
    assert_null(gust_http_reason(299));
    assert_null(gust_http_reason(306)); /* "(Unused)" in RFC 9110 */
    assert_null(gust_http_reason(0));
    assert_null(gust_http_reason(-1));
    assert_null(gust_http_reason(1000));
}

static void test_response_start_line(void **state)
{
    (void)state;
    int minor, code;
    gust_str reason;
    assert_int_equal(gust_http_parse_response_start_line(S("HTTP/1.1 200 OK"), &minor,
                                                         &code, &reason), 0);
    assert_int_equal(minor, 1);
    assert_int_equal(code, 200);
    assert_str(reason, "OK");
    assert_int_equal(gust_http_parse_response_start_line(
                         S("HTTP/1.0 404 Not \tFound \xe9"), &minor, &code, &reason), 0);
    assert_int_equal(minor, 0);
    assert_int_equal(code, 404);
    assert_str(reason, "Not \tFound \xe9");
    assert_int_equal(gust_http_parse_response_start_line(S("HTTP/1.1 204 "), &minor,
                                                         &code, &reason), 0);
    assert_str(reason, "");
    assert_int_equal(gust_http_parse_response_start_line(S("HTTP/1.1 599"), &minor,
                                                         &code, &reason), 0);
    assert_int_equal(code, 599);
    assert_str(reason, "");
    const char *bad[] = {"", "HTTP/1.1", "HTTP/2.0 200 OK", "HTTP/1.1 20 OK",
                         "HTTP/1.1 099 X", "HTTP/1.1 2000 OK", "HTTP/1.1  200 OK",
                         "http/1.1 200 OK", "HTTP/1.x 200 OK", "HTTP/1.1 200\tOK",
                         "HTTP/1.1 200 O\rK", "HTTP/1.1 200 OK\r\n", "ICY 200 OK"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (gust_http_parse_response_start_line(gust_str_cstr(bad[i]), &minor, &code,
                                                &reason) != -EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str_compare),
        cmocka_unit_test_setup_teardown(test_str_dup, setup, teardown),
        cmocka_unit_test(test_token_and_method),
        cmocka_unit_test(test_value_valid),
        cmocka_unit_test_setup_teardown(test_add_get_case_insensitive_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_borrow_and_copy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_injection_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_set_replaces_at_first_position, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remove_and_clear, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_joined, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_headers_grow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_serialize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_headers_after_arena_reset, setup, teardown),
        cmocka_unit_test(test_reason),
        cmocka_unit_test(test_response_start_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
