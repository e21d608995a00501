/* The octet classes of the HTTP grammars, written as the RFCs define them,
 * as constant expressions: the HTTP utilities' table (http_chars.c) and
 * the HTTP/1 parser's (http1_parser.c) are spelled out from these at
 * compile time, so no table of raw numbers needs a generator, and
 * tests/test_http_chars.c checks every byte of both against the ABNF text
 * of the RFCs. Internal to http_chars.c and http1_parser.c; not installed.
 *
 * c is an int in 0..255 (evaluated more than once). */
#ifndef GUST_HTTP_ABNF_H
#define GUST_HTTP_ABNF_H

/* RFC 5234 appendix B.1 (core rules). HEXDIG's letters are quoted strings,
 * which ABNF matches ignoring case. */
#define GUST__ABNF_ALPHA(c) \
    (((c) >= 0x41 && (c) <= 0x5A) || ((c) >= 0x61 && (c) <= 0x7A))
#define GUST__ABNF_DIGIT(c) ((c) >= 0x30 && (c) <= 0x39)
#define GUST__ABNF_HEXDIG(c) \
    (GUST__ABNF_DIGIT(c) || ((c) >= 'A' && (c) <= 'F') || \
     ((c) >= 'a' && (c) <= 'f'))
#define GUST__ABNF_VCHAR(c) ((c) >= 0x21 && (c) <= 0x7E)
#define GUST__ABNF_WSP(c) ((c) == 0x20 || (c) == 0x09) /* SP / HTAB */

/* RFC 9110 section 5.5: obs-text = %x80-FF; field-vchar = VCHAR / obs-text;
 * a field value is field-vchar with SP / HTAB between them. */
#define GUST__ABNF_OBS_TEXT(c) ((c) >= 0x80 && (c) <= 0xFF)
#define GUST__ABNF_FIELD_VCHAR(c) (GUST__ABNF_VCHAR(c) || GUST__ABNF_OBS_TEXT(c))
#define GUST__ABNF_FIELD_VALUE_OCTET(c) \
    (GUST__ABNF_FIELD_VCHAR(c) || GUST__ABNF_WSP(c))

/* RFC 9110 section 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*"
 * / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA. */
#define GUST__ABNF_TCHAR(c) \
    ((c) == '!' || (c) == '#' || (c) == '$' || (c) == '%' || (c) == '&' || \
     (c) == '\'' || (c) == '*' || (c) == '+' || (c) == '-' || (c) == '.' || \
     (c) == '^' || (c) == '_' || (c) == '`' || (c) == '|' || (c) == '~' || \
     GUST__ABNF_DIGIT(c) || GUST__ABNF_ALPHA(c))

/* RFC 3986 sections 2.2 and 2.3. */
#define GUST__ABNF_UNRESERVED(c) \
    (GUST__ABNF_ALPHA(c) || GUST__ABNF_DIGIT(c) || (c) == '-' || \
     (c) == '.' || (c) == '_' || (c) == '~')
#define GUST__ABNF_GEN_DELIMS(c) \
    ((c) == ':' || (c) == '/' || (c) == '?' || (c) == '#' || (c) == '[' || \
     (c) == ']' || (c) == '@')
#define GUST__ABNF_SUB_DELIMS(c) \
    ((c) == '!' || (c) == '$' || (c) == '&' || (c) == '\'' || (c) == '(' || \
     (c) == ')' || (c) == '*' || (c) == '+' || (c) == ',' || (c) == ';' || \
     (c) == '=')
/* Any octet of a URI: unreserved / reserved, and "%" of pct-encoded. */
#define GUST__ABNF_URI_OCTET(c) \
    (GUST__ABNF_UNRESERVED(c) || GUST__ABNF_GEN_DELIMS(c) || \
     GUST__ABNF_SUB_DELIMS(c) || (c) == '%')
/* Any octet of uri-host [ ":" port ] (RFC 9110 section 7.2): reg-name is
 * unreserved / pct-encoded / sub-delims, IP-literal adds "[" ":" "]". */
#define GUST__ABNF_HOST_OCTET(c) \
    (GUST__ABNF_UNRESERVED(c) || GUST__ABNF_SUB_DELIMS(c) || (c) == '%' || \
     (c) == ':' || (c) == '[' || (c) == ']')

/* RFC 6265 section 4.1.1: cookie-octet = %x21 / %x23-2B / %x2D-3A /
 * %x3C-5B / %x5D-7E (no CTL, whitespace, DQUOTE, comma, semicolon or
 * backslash). */
#define GUST__ABNF_COOKIE_OCTET(c) \
    ((c) == 0x21 || ((c) >= 0x23 && (c) <= 0x2B) || \
     ((c) >= 0x2D && (c) <= 0x3A) || ((c) >= 0x3C && (c) <= 0x5B) || \
     ((c) >= 0x5D && (c) <= 0x7E))

/* RFC 2046 section 5.1.1: bchars = bcharsnospace / " ";
 * bcharsnospace = DIGIT / ALPHA / "'" / "(" / ")" / "+" / "_" / "," / "-"
 * / "." / "/" / ":" / "=" / "?". */
#define GUST__ABNF_BCHARS(c) \
    (GUST__ABNF_DIGIT(c) || GUST__ABNF_ALPHA(c) || (c) == '\'' || \
     (c) == '(' || (c) == ')' || (c) == '+' || (c) == '_' || (c) == ',' || \
     (c) == '-' || (c) == '.' || (c) == '/' || (c) == ':' || (c) == '=' || \
     (c) == '?' || (c) == ' ')

/* A 256-entry initializer: f(0), f(1), ..., f(255). */
#define GUST__ABNF_ROW4(f, b) f(b), f((b) + 1), f((b) + 2), f((b) + 3)
#define GUST__ABNF_ROW16(f, b) \
    GUST__ABNF_ROW4(f, b), GUST__ABNF_ROW4(f, (b) + 4), \
    GUST__ABNF_ROW4(f, (b) + 8), GUST__ABNF_ROW4(f, (b) + 12)
#define GUST__ABNF_ROW64(f, b) \
    GUST__ABNF_ROW16(f, b), GUST__ABNF_ROW16(f, (b) + 16), \
    GUST__ABNF_ROW16(f, (b) + 32), GUST__ABNF_ROW16(f, (b) + 48)
#define GUST__ABNF_TABLE(f) \
    GUST__ABNF_ROW64(f, 0), GUST__ABNF_ROW64(f, 64), \
    GUST__ABNF_ROW64(f, 128), GUST__ABNF_ROW64(f, 192)

#endif /* GUST_HTTP_ABNF_H */
