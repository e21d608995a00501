/* Tests for HTTP dates (include/gust/http.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gust/http.h"

#define S(lit) GUST_STR(lit)

static time_t parse_ok(const char *s)
{
    time_t t = -12345;
    int rc = gust_http_date_parse(gust_str_cstr(s), &t);
    if (rc != 0)
        fail_msg("refused \"%s\" (%d)", s, rc);
    return t;
}

static void test_rfc9110_three_forms(void **state)
{
    (void)state;
    /* RFC 9110 section 5.6.7: the same instant three ways. */
    assert_int_equal(parse_ok("Sun, 06 Nov 1994 08:49:37 GMT"), 784111777);
    assert_int_equal(parse_ok("Sunday, 06-Nov-94 08:49:37 GMT"), 784111777);
    assert_int_equal(parse_ok("Sun Nov  6 08:49:37 1994"), 784111777);
}

static void test_parse_more(void **state)
{
    (void)state;
    assert_int_equal(parse_ok("Thu, 01 Jan 1970 00:00:00 GMT"), 0);
    assert_int_equal(parse_ok("Tue, 29 Feb 2000 00:00:00 GMT"), 951782400);
    assert_int_equal(parse_ok("Wed, 31 Dec 1969 23:59:59 GMT"), -1);
    assert_int_equal(parse_ok("Fri, 31 Dec 9999 23:59:59 GMT"), 253402300799);
    assert_int_equal(parse_ok("Wed Nov 16 08:49:37 1994"), 784111777 + 10 * 86400);
    assert_int_equal(parse_ok("Sun Nov 06 08:49:37 1994"), 784111777); /* 2DIGIT */
    assert_int_equal(parse_ok("Wednesday, 09-Jun-21 10:18:14 GMT"), 1623233894);
    assert_int_equal(parse_ok("Saturday, 01-Jan-00 00:00:00 GMT"), 946684800);
    /* A leap second reads as the second before it. */
    assert_int_equal(parse_ok("Sat, 31 Dec 2016 23:59:60 GMT"), 1483228799);
    /* The day name is not checked against the date. */
    assert_int_equal(parse_ok("Mon, 06 Nov 1994 08:49:37 GMT"), 784111777);
}

static void test_parse_two_digit_year_window(void **state)
{
    (void)state;
    /* Years within 50 years ahead stay in this century, beyond go back. */
    struct tm now;
    time_t t = time(NULL);
    gmtime_r(&t, &now);
    int year = now.tm_year + 1900;
    char buf[64];
    for (int ahead = 45; ahead <= 55; ahead++) {
        int y = year + ahead;
        snprintf(buf, sizeof(buf), "Monday, 01-Jan-%02d 00:00:00 GMT", y % 100);
        time_t got = parse_ok(buf);
        struct tm tm;
        gmtime_r(&got, &tm);
        int expect = ahead <= 50 ? y : y - 100;
        assert_int_equal(tm.tm_year + 1900, expect);
    }
}

static void test_parse_invalid(void **state)
{
    (void)state;
    const char *bad[] = {
        "", "Sun, 06 Nov 1994 08:49:37 UTC", "sun, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 nov 1994 08:49:37 GMT", "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT ", " Sun, 06 Nov 1994 08:49:37 GMT",
        "Sun,  06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 29 Feb 1900 08:49:37 GMT",
        "Sun, 00 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 24:00:00 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT", "Sun, 06 Nov 1994 08:49:61 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT", "Sun, 06 Nov 1994 08-49-37 GMT",
        "Sunday, 06-Nov-1994 08:49:37 GMT", "Sunday, 06 Nov 94 08:49:37 GMT",
        "Sundae, 06-Nov-94 08:49:37 GMT", "Sun, 06-Nov-94 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 UTC", "Sunday, 31-Apr-94 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994", "Sun Nov  6 08:49:37 94",
        "Sun Nov  6 08:49:37 1994 ", "Sun Nov 31 08:49:37 1994",
        "Sun Nov  0 08:49:37 1994", "Sun Nov 6  08:49:37 1994",
        "Sun, 06 Nov 1994 08:49:37 GMT\r\n", "1994-11-06T08:49:37Z",
        "784111777", "Sun, +6 Nov 1994 08:49:37 GMT",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        time_t t;
        if (gust_http_date_parse(gust_str_cstr(bad[i]), &t) != -EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    }
    time_t t;
    assert_int_equal(gust_http_date_parse(GUST_STR_NULL, &t), -EINVAL);
    assert_int_equal(gust_http_date_parse(
                         gust_str_make("Sun, 06 Nov 1994 08:49:37 GM\0", 29), &t), -EINVAL);
}

static void test_format(void **state)
{
    (void)state;
    char buf[GUST_HTTP_DATE_SIZE];
    assert_int_equal(gust_http_date_format(784111777, buf), 0);
    assert_string_equal(buf, "Sun, 06 Nov 1994 08:49:37 GMT");
    assert_int_equal(strlen(buf), GUST_HTTP_DATE_LEN);
    assert_int_equal(gust_http_date_format(0, buf), 0);
    assert_string_equal(buf, "Thu, 01 Jan 1970 00:00:00 GMT");
    assert_int_equal(gust_http_date_format(-1, buf), 0);
    assert_string_equal(buf, "Wed, 31 Dec 1969 23:59:59 GMT");
    assert_int_equal(gust_http_date_format(951782400, buf), 0);
    assert_string_equal(buf, "Tue, 29 Feb 2000 00:00:00 GMT");
    assert_int_equal(gust_http_date_format(253402300799, buf), 0);
    assert_string_equal(buf, "Fri, 31 Dec 9999 23:59:59 GMT");
    assert_int_equal(gust_http_date_format(-62167219200, buf), 0);
    assert_string_equal(buf, "Sat, 01 Jan 0000 00:00:00 GMT");
    assert_int_equal(gust_http_date_format(253402300800, buf), -EINVAL);
    assert_string_equal(buf, "");
    assert_int_equal(gust_http_date_format(-62167219201, buf), -EINVAL);
}

/* Cross-check against the C library over a wide sweep of instants. */
static void test_format_matches_libc_and_roundtrips(void **state)
{
    (void)state;
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        /* Years 1601 to 9999. */
        time_t t = (time_t)((int64_t)(x % 266000000000ULL) - 11644473600LL);
        if (t > 253402300799)
            continue;
        char buf[GUST_HTTP_DATE_SIZE], expect[64];
        assert_int_equal(gust_http_date_format(t, buf), 0);
        struct tm tm;
        assert_non_null(gmtime_r(&t, &tm));
        snprintf(expect, sizeof(expect), "%s, %02d %s %04d %02d:%02d:%02d GMT",
                 days[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
                 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
        assert_string_equal(buf, expect);
        time_t back;
        assert_int_equal(gust_http_date_parse(gust_str_cstr(buf), &back), 0);
        assert_int_equal(back, t);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc9110_three_forms),
        cmocka_unit_test(test_parse_more),
        cmocka_unit_test(test_parse_two_digit_year_window),
        cmocka_unit_test(test_parse_invalid),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_format_matches_libc_and_roundtrips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
