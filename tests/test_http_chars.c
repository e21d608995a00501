/* The octet classes of the HTTP utilities (gust__http_cc) and of the HTTP/1
 * parser (gust__http1_cc), byte by byte against the RFCs' ABNF.
 *
 * The rules below are the RFCs' text, copied as written (only the rules
 * that define one octet). A small evaluator reads them here, apart from
 * the C macros the tables are built from (src/http_abnf.h), so that a
 * mistake in a macro is not repeated in the test. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "http1_parser.h"
#include "http_internal.h"

static const char *const rules[] = {
    /* RFC 5234 appendix B.1 */
    "ALPHA = %x41-5A / %x61-7A",
    "DIGIT = %x30-39",
    "HEXDIG = DIGIT / \"A\" / \"B\" / \"C\" / \"D\" / \"E\" / \"F\"",
    "VCHAR = %x21-7E",
    "SP = %x20",
    "HTAB = %x09",
    /* RFC 9110 section 5.5 */
    "obs-text = %x80-FF",
    "field-vchar = VCHAR / obs-text",
    /* RFC 9110 section 5.6.2 */
    "tchar = \"!\" / \"#\" / \"$\" / \"%\" / \"&\" / \"'\" / \"*\" / \"+\" / "
    "\"-\" / \".\" / \"^\" / \"_\" / \"`\" / \"|\" / \"~\" / DIGIT / ALPHA",
    /* RFC 3986 sections 2.1, 2.2, 2.3 */
    "unreserved = ALPHA / DIGIT / \"-\" / \".\" / \"_\" / \"~\"",
    "gen-delims = \":\" / \"/\" / \"?\" / \"#\" / \"[\" / \"]\" / \"@\"",
    "sub-delims = \"!\" / \"$\" / \"&\" / \"'\" / \"(\" / \")\" / \"*\" / "
    "\"+\" / \",\" / \";\" / \"=\"",
    "reserved = gen-delims / sub-delims",
    /* RFC 6265 section 4.1.1 */
    "cookie-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E",
    /* RFC 2046 section 5.1.1 */
    "bcharsnospace = DIGIT / ALPHA / \"'\" / \"(\" / \")\" / \"+\" / \"_\" / "
    "\",\" / \"-\" / \".\" / \"/\" / \":\" / \"=\" / \"?\"",
    "bchars = bcharsnospace / \" \"",

    /* The octets of longer rules, which is what a table of classes holds: */
    /* field-value = *field-content; field-content = field-vchar
     * [ 1*( SP / HTAB / field-vchar ) field-vchar ] (RFC 9110 5.5) */
    "field-value-octet = field-vchar / SP / HTAB",
    /* URI-reference: unreserved / reserved, and pct-encoded's "%" */
    "uri-octet = unreserved / reserved / \"%\"",
    /* Host = uri-host [ ":" port ] (RFC 9110 7.2); uri-host = IP-literal /
     * IPv4address / reg-name; reg-name = *( unreserved / pct-encoded /
     * sub-delims ); IP-literal = "[" ( IPv6address / IPvFuture ) "]" */
    "host-octet = unreserved / \"%\" / sub-delims / \":\" / \"[\" / \"]\"",
    /* gust_http_target_split() (http.h): VCHAR but "#", and obs-text */
    "target-octet = %x21-22 / %x24-7E / obs-text",
};

/* Whether octet c matches the rule called name (case-insensitive, as ABNF
 * rule names are). */
static bool matches(const char *name, size_t name_len, int c);

/* One alternative: a rule name, a quoted one-character string (matched
 * ignoring case, as ABNF strings are), %xHH or %xHH-HH. */
static bool alt_matches(const char *a, size_t len, int c)
{
    if (len >= 3 && a[0] == '"' && a[len - 1] == '"') {
        assert_int_equal(len, 3); /* one octet per string here */
        return tolower(a[1]) == tolower(c);
    }
    if (len > 2 && a[0] == '%' && a[1] == 'x') {
        char range[16];
        unsigned lo = 0, hi = 0;
        char tail;
        assert_true(len < sizeof range);
        memcpy(range, a, len);
        range[len] = '\0';
        int n = sscanf(range + 2, "%x-%x%c", &lo, &hi, &tail);
        if (n < 2)
            hi = lo;
        assert_true(n == 1 || n == 2);
        return (unsigned)c >= lo && (unsigned)c <= hi;
    }
    return matches(a, len, c);
}

static bool matches(const char *name, size_t name_len, int c)
{
    for (size_t r = 0; r < sizeof rules / sizeof *rules; r++) {
        const char *eq = strstr(rules[r], " = ");
        assert_non_null(eq);
        if ((size_t)(eq - rules[r]) != name_len ||
            strncasecmp(rules[r], name, name_len) != 0)
            continue;
        /* Alternatives are separated by " / " (a "/" inside quotes is
         * the string "/"). */
        const char *p = eq + 3;
        for (;;) {
            const char *end = p;
            while (*end && !(end[0] == ' ' && end[1] == '/' && end[2] == ' '))
                end++;
            if (alt_matches(p, (size_t)(end - p), c))
                return true;
            if (!*end)
                return false;
            p = end + 3;
        }
    }
    fail_msg("no rule %.*s", (int)name_len, name);
    return false;
}

static bool rule(const char *name, int c)
{
    return matches(name, strlen(name), c);
}

/* Every byte of table has bit set exactly when it matches name. */
static void check(const unsigned char *table, unsigned bit, const char *name)
{
    int n = 0;
    for (int c = 0; c < 256; c++) {
        bool want = rule(name, c), got = (table[c] & bit) != 0;
        if (want != got)
            print_error("byte 0x%02x: %s says %d, the table %d\n", c, name,
                        want, got);
        n += want;
        assert_int_equal(want, got);
    }
    assert_true(n > 0);
}

/* The evaluator itself, on bytes whose classes are known by heart. */
static void test_evaluator(void **state)
{
    (void)state;
    assert_true(rule("tchar", '!'));
    assert_false(rule("tchar", ':'));
    assert_true(rule("HEXDIG", 'f'));
    assert_false(rule("HEXDIG", 'g'));
    assert_true(rule("cookie-octet", 0x5d));
    assert_false(rule("cookie-octet", ';'));
    assert_true(rule("bchars", ' '));
    assert_false(rule("field-value-octet", 0x7f));
    assert_true(rule("field-value-octet", 0xff));
}

static void test_utilities_table(void **state)
{
    (void)state;
    check(gust__http_cc, GUST__CC_TCHAR, "tchar");
    check(gust__http_cc, GUST__CC_VALUE, "field-value-octet");
    check(gust__http_cc, GUST__CC_UNRES, "unreserved");
    check(gust__http_cc, GUST__CC_URI, "uri-octet");
    check(gust__http_cc, GUST__CC_COOKIE, "cookie-octet");
    check(gust__http_cc, GUST__CC_BCHAR, "bchars");
    check(gust__http_cc, GUST__CC_HEX, "HEXDIG");
    check(gust__http_cc, GUST__CC_TARGET, "target-octet");
}

static void test_parser_table(void **state)
{
    (void)state;
    check(gust__http1_cc, GUST__HTTP1_C_TCHAR, "tchar");
    check(gust__http1_cc, GUST__HTTP1_C_VALUE, "field-value-octet");
    check(gust__http1_cc, GUST__HTTP1_C_HEX, "HEXDIG");
    check(gust__http1_cc, GUST__HTTP1_C_HOST, "host-octet");
    check(gust__http1_cc, GUST__HTTP1_C_TARGET, "VCHAR");
}

/* Each class holds exactly the bits named: no byte has a bit no class
 * claims (a stray bit would be read as some class by a later change). */
static void test_no_stray_bits(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        assert_int_equal(gust__http1_cc[c] & ~0x1f, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_evaluator),
        cmocka_unit_test(test_utilities_table),
        cmocka_unit_test(test_parser_table),
        cmocka_unit_test(test_no_stray_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
