/* HTTP/1 parser: valid and malformed tables (RFC 9110/9112 and
 * request-smuggling classics), split-invariance properties, guard-page
 * over-read checks, and the chunked decoder, for requests; the same for
 * response heads and their framing (the HTTP client's side). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http1_parser.h"

#define S(lit) lit, sizeof(lit) - 1
#define MAX_HEAD 8192
/* A request head with GUST_HTTP1_MAX_HEADERS field slots on the stack. */
#define REQ(r)                                                                 \
    gust__http1_header r##_slots[GUST_HTTP1_MAX_HEADERS];                      \
    gust__http1_request r = {.headers = r##_slots,                             \
                             .max_headers = GUST_HTTP1_MAX_HEADERS}
#define BROWSER_GET                                                            \
    "GET /search?q=gust+http&lang=en HTTP/1.1\r\n"                             \
    "Host: www.example.com\r\n"                                                \
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 "    \
    "Firefox/120.0\r\n"                                                        \
    "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,"           \
    "image/avif,image/webp,*/*;q=0.8\r\n"                                      \
    "Accept-Language: en-US,en;q=0.5\r\n"                                      \
    "Accept-Encoding: gzip, deflate, br\r\n"                                   \
    "Referer: https://www.example.com/\r\n"                                    \
    "Connection: keep-alive\r\n"                                               \
    "Cookie: session=6f1d2a9e0b8c4d7f; theme=dark; _ga=GA1.2.12345.67890\r\n"  \
    "Upgrade-Insecure-Requests: 1\r\n"                                         \
    "Sec-Fetch-Dest: document\r\n"                                             \
    "\r\n"

/* ------------------------------------------------------------------------ */
/* Tables */

struct valid_case {
    const char *raw;
    size_t len;
    const char *method, *target;
    int minor;
    size_t num_headers;
    const char *headers[12][2];
};

static const struct valid_case valid_cases[] = {
    {S("GET / HTTP/1.1\r\nHost: example.com\r\n\r\n"), "GET", "/", 1, 1,
     {{"Host", "example.com"}}},
    {S("GET /index.html HTTP/1.0\r\n\r\n"), "GET", "/index.html", 0, 0, {{0}}},
    {S("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), "GET", "/", 1, 1,
     {{"Host", "a"}}},
    {S("GET / HTTP/1.1\r\nHost: \t a \t \r\nX-Empty:\r\nX-Blank:  \t \r\n"
       "X-In:a  b\r\n\r\n"),
     "GET", "/", 1, 4, {{"Host", "a"}, {"X-Empty", ""}, {"X-Blank", ""},
                        {"X-In", "a  b"}}},
    {S("GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9 \x80\xff\r\n\r\n"), "GET", "/",
     1, 2, {{"Host", "a"}, {"X", "caf\xc3\xa9 \x80\xff"}}},
    {S("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n"), "OPTIONS", "*", 1, 1,
     {{"Host", "a"}}},
    {S("GET http://a.example/b?c HTTP/1.1\r\nHost: a.example\r\n\r\n"), "GET",
     "http://a.example/b?c", 1, 1, {{"Host", "a.example"}}},
    {S("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n"),
     "CONNECT", "a.example:443", 1, 1, {{"Host", "a.example:443"}}},
    {S("GET / HTTP/1.2\r\nHost: a\r\n\r\n"), "GET", "/", 1, 1, {{"Host", "a"}}},
    {S("M-SEARCH /a HTTP/1.1\r\nHost: [::1]:80\r\n"
       "X-!#$%&'*+.^_`|~09az: v\r\n\r\n"),
     "M-SEARCH", "/a", 1, 2,
     {{"Host", "[::1]:80"}, {"X-!#$%&'*+.^_`|~09az", "v"}}},
    {S("GET /a?b=c&d=%20;e@f:g!$'()*+,~[]{}|\\^`\"<> HTTP/1.1\r\n"
       "host: a\r\nX: a:b: c\r\n\r\n"),
     "GET", "/a?b=c&d=%20;e@f:g!$'()*+,~[]{}|\\^`\"<>", 1, 2,
     {{"host", "a"}, {"X", "a:b: c"}}},
    {S("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n"), "POST",
     "/upload", 1, 2, {{"Host", "a"}, {"Content-Length", "5"}}},
    {S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\t chunked \r\n\r\n"),
     "POST", "/", 1, 2, {{"Host", "a"}, {"Transfer-Encoding", "chunked"}}},
    {S(BROWSER_GET), "GET", "/search?q=gust+http&lang=en", 1, 10,
     {{"Host", "www.example.com"},
      {"User-Agent",
       "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"},
      {"Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,"
                 "image/avif,image/webp,*/*;q=0.8"},
      {"Accept-Language", "en-US,en;q=0.5"},
      {"Accept-Encoding", "gzip, deflate, br"},
      {"Referer", "https://www.example.com/"},
      {"Connection", "keep-alive"},
      {"Cookie", "session=6f1d2a9e0b8c4d7f; theme=dark; _ga=GA1.2.12345.67890"},
      {"Upgrade-Insecure-Requests", "1"},
      {"Sec-Fetch-Dest", "document"}}},
};

/* Expected status of the whole request (head, framing, chunked body):
 * 0 when it is accepted. */
struct bad_case {
    const char *raw;
    size_t len;
    int status;
};

#define H11 "GET / HTTP/1.1\r\nHost: a\r\n"
#define POST11 "POST / HTTP/1.1\r\nHost: a\r\n"
#define CHUNKED POST11 "Transfer-Encoding: chunked\r\n\r\n"

static const struct bad_case bad_cases[] = {
    /* line endings (RFC 9112 2.2) */
    {S("GET / HTTP/1.1\rHost: a\r\n\r\n"), 400},
    {S(H11 "X: a\rb\r\n\r\n"), 400},
    {S(H11 "X: a\r\r\n\r\n"), 400},
    {S(H11 "\r\r\n"), 400},
    {S("GET / HTTP/1.1\nHost: a\n\n"), 400},
    {S(H11 "X: a\nY: b\r\n\r\n"), 400},
    {S(H11 "\n"), 400},
    {S("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("\r\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n"
       "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    /* field values: no CTL but HTAB (RFC 9110 5.5) */
    {S(H11 "X: a\0b\r\n\r\n"), 400},
    {S(H11 "X: \0\r\n\r\n"), 400},
    {S(H11 "X: a\x01\r\n\r\n"), 400},
    {S(H11 "X: a\x7f\r\n\r\n"), 400},
    {S(H11 "X: 0123456789abcdef0123456789\x1b\r\n\r\n"), 400},
    {S(H11 "Transfer-Encoding:\x0b" "chunked\r\n\r\n"), 400},
    {S(H11 "Transfer-Encoding:\x0c" "chunked\r\n\r\n"), 400},
    /* obs-fold and whitespace at line start (RFC 9112 5.2, 2.2) */
    {S(H11 "X: a\r\n b\r\n\r\n"), 400},
    {S(H11 "X: a\r\n\tb\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), 400},
    /* field names (RFC 9112 5.1, RFC 9110 5.6.2) */
    {S("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost\t: a\r\n\r\n"), 400},
    {S(H11 "Transfer-Encoding : chunked\r\n\r\n"), 400},
    {S(H11 ": a\r\n\r\n"), 400},
    {S(H11 "X(y): a\r\n\r\n"), 400},
    {S(H11 "X\"y: a\r\n\r\n"), 400},
    {S(H11 "X\0: a\r\n\r\n"), 400},
    {S(H11 "X\xc3\xa9: a\r\n\r\n"), 400},
    {S(H11 "Host a\r\n\r\n"), 400},
    {S(H11 "NoColon\r\n\r\n"), 400},
    /* request line (RFC 9112 3) */
    {S("G(ET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GE\0T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("G\xc3\x89T / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S(" / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET /  HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.1 \r\nHost: a\r\n\r\n"), 400},
    {S("GET /a\x01" "b HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET /\t HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET /a\0 HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET /\r\n\r\n"), 400},
    {S("GET\r\n\r\n"), 400},
    {S("GET ?a HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("OPTIONS ** HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET * HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("OPTIONS2 * HTTP/1.1\r\nHost: a\r\n\r\n"), 400},
    /* HTTP version (RFC 9112 2.3) */
    {S("GET / http/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.10\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/11.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.x\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/a.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1,1\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTPS/1.1\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/2.0\r\nHost: a\r\n\r\n"), 505},
    {S("GET / HTTP/0.9\r\nHost: a\r\n\r\n"), 505},
    {S("GET / HTTP/3.1\r\nHost: a\r\n\r\n"), 505},
    /* Host (RFC 9112 3.2) */
    {S("GET / HTTP/1.1\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a b\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n"), 400},
    {S("GET / HTTP/1.1\r\nHost: user@a\r\n\r\n"), 400},
    /* Transfer-Encoding (RFC 9112 6.1) */
    {S(POST11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n0\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: chunked, identity\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: identity\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: xchunked\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: chunkedx\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: chunked x\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: chunked;q=1\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: \"chunked\"\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: chunked, chunked\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: gzip\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding:\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: ,\r\n\r\n"), 400},
    {S("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 400},
    {S(POST11 "Transfer-Encoding: gzip, chunked\r\n\r\n"), 501},
    {S(POST11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n"), 501},
    {S(POST11 "Transfer-Encoding: deflate;x=1, chunked\r\n\r\n"), 501},
    /* Content-Length (RFC 9110 8.6, RFC 9112 6.3) */
    {S(POST11 "Content-Length: +5\r\n\r\n"), 400},
    {S(POST11 "Content-Length: -5\r\n\r\n"), 400},
    {S(POST11 "Content-Length: 0x5\r\n\r\n"), 400},
    {S(POST11 "Content-Length: 5a\r\n\r\n"), 400},
    {S(POST11 "Content-Length: 5 6\r\n\r\n"), 400},
    {S(POST11 "Content-Length: 5, 6\r\n\r\n"), 400},
    {S(POST11 "Content-Length: 5,\r\n\r\n"), 400},
    {S(POST11 "Content-Length: ,5\r\n\r\n"), 400},
    {S(POST11 "Content-Length: 5,,5\r\n\r\n"), 400},
    {S(POST11 "Content-Length:\r\n\r\n"), 400},
    {S(POST11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), 400},
    {S(POST11 "Content-Length: 5\r\nContent-Length: 5, 7\r\n\r\n"), 400},
    {S(POST11 "Content-Length: 99999999999999999999\r\n\r\n"), 400},
    {S(POST11 "Content-Length: 4611686018427387905\r\n\r\n"), 400},
    {S(POST11 "Content-Length: 5.0\r\n\r\n"), 400},
    {S(POST11 "Content-Length: 18446744073709551620\r\n\r\n"), 400},
    {S(POST11 "Content-Length: 1844674407370955162\r\n\r\n"), 0},
    /* Connection */
    {S(H11 "Connection: close, x y\r\n\r\n"), 400},
    /* limits */
    {S(POST11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello"), 0},
    {S(POST11 "Content-Length: 5, 5\r\n\r\nhello"), 0},
    {S(POST11 "Content-Length: 4611686018427387904\r\n\r\n"), 0},
    /* chunk size line (RFC 9112 7.1, 7.1.1) */
    {S(CHUNKED "0x5\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "5 ;ext\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "5 \r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED " 5\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "-5\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "+5\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED ";a\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "g\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "10000000000000005\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "ffffffffffffffffffff\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "4000000000000001\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "5\rhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "5\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "5;\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "5; a=b\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "5;a =b\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "5;a=\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "5;a\x01\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "5;a=\"b\x01\"\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "5;a=\"b\rc\"\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "5;a=\"b\"c\r\nhello\r\n0\r\n\r\n"), 400},
    {S(CHUNKED "5;a=b\rc\r\nhello\r\n0\r\n\r\n"), 400},
    /* chunk data and its CRLF */
    {S(CHUNKED "5\r\nhelloX0\r\n\r\n"), 400},
    {S(CHUNKED "5\r\nhello\n0\r\n\r\n"), 400},
    {S(CHUNKED "5\r\nhello\r0\r\n\r\n"), 400},
    {S(CHUNKED "3\r\nhello\r\n0\r\n\r\n"), 400},
    /* trailer section (RFC 9112 7.1.2) and the end */
    {S(CHUNKED "0\r\nA: b\r\n c\r\n\r\n"), 400},
    {S(CHUNKED "0\r\nA : b\r\n\r\n"), 400},
    {S(CHUNKED "0\r\n: b\r\n\r\n"), 400},
    {S(CHUNKED "0\r\nA: b\0\r\n\r\n"), 400},
    {S(CHUNKED "0\r\nA: b\nC: d\r\n\r\n"), 400},
    {S(CHUNKED "0\r\nA: b\r\r\n"), 400},
    {S(CHUNKED "0\r\n\r\r"), 400},
    {S(CHUNKED "0\r\n\n"), 400},
    {S(CHUNKED "0\r\nAb\r\n\r\n"), 400},
    /* accepted bodies, to show the rules above are not blanket refusals */
    {S(CHUNKED "5;a=b;c;d=\"x\\\"y\"\r\nhello\r\n0\r\nA: b\r\nC:\r\n\r\n"), 0},
    {S(CHUNKED "000005\r\nhello\r\nA\r\n0123456789\r\n00\r\n\r\n"), 0},
    {S(CHUNKED "4000000000000000\r\n"), -1},
};

/* ------------------------------------------------------------------------ */
/* Helpers */

/* Status of a whole request: head, framing, then the chunked body (which
 * must be complete in buf). 0 accepted, -1 incomplete. */
static int request_status(const char *buf, size_t len, uint64_t max_body)
{
    REQ(req);
    gust__http1_framing fr;
    gust__http1_chunked ch;
    char *body;
    size_t data_len;
    ssize_t rc;
    int n = gust__http1_parse_request(buf, len, 0, MAX_HEAD, &req);

    if (n == GUST_HTTP1_INCOMPLETE)
        return -1;
    if (n == GUST_HTTP1_ERROR) {
        assert_non_null(req.error_reason);
        return req.error_status;
    }
    if (gust__http1_request_framing(&req, &fr) == GUST_HTTP1_ERROR) {
        assert_non_null(fr.error_reason);
        return fr.error_status;
    }
    if (fr.body != GUST_HTTP1_BODY_CHUNKED)
        return 0;
    body = malloc(len - (size_t)n + 1);
    assert_non_null(body);
    memcpy(body, buf + n, len - (size_t)n);
    gust__http1_chunked_init(&ch, max_body, 1024);
    rc = gust__http1_chunked_decode(&ch, body, len - (size_t)n, &data_len);
    free(body);
    if (rc == GUST_HTTP1_ERROR) {
        assert_non_null(ch.error_reason);
        return ch.error_status;
    }
    return rc == GUST_HTTP1_INCOMPLETE ? -1 : 0;
}

/* Same parse result, with slices compared as offsets into their buffers. */
static void assert_same_request(int n1, const gust__http1_request *a,
                                const char *abuf, int n2,
                                const gust__http1_request *b, const char *bbuf)
{
    assert_int_equal(n1, n2);
    if (n1 == GUST_HTTP1_ERROR) {
        assert_int_equal(a->error_status, b->error_status);
        assert_int_equal(a->error_offset, b->error_offset);
        assert_string_equal(a->error_reason, b->error_reason);
    }
    if (n1 <= 0)
        return;
    assert_int_equal(a->method.ptr - abuf, b->method.ptr - bbuf);
    assert_int_equal(a->method.len, b->method.len);
    assert_int_equal(a->target.ptr - abuf, b->target.ptr - bbuf);
    assert_int_equal(a->target.len, b->target.len);
    assert_int_equal(a->minor_version, b->minor_version);
    assert_int_equal(a->num_headers, b->num_headers);
    for (size_t i = 0; i < a->num_headers; i++) {
        assert_int_equal(a->headers[i].name.ptr - abuf, b->headers[i].name.ptr - bbuf);
        assert_int_equal(a->headers[i].name.len, b->headers[i].name.len);
        assert_int_equal(a->headers[i].value.ptr - abuf, b->headers[i].value.ptr - bbuf);
        assert_int_equal(a->headers[i].value.len, b->headers[i].value.len);
    }
}

static void assert_slice(gust__http1_slice s, const char *expect)
{
    assert_int_equal(s.len, strlen(expect));
    assert_memory_equal(s.ptr, expect, s.len);
}

/* Deterministic xorshift PRNG for the random-piece tests. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* ------------------------------------------------------------------------ */
/* Head: tables */

static void test_valid_requests(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof valid_cases / sizeof valid_cases[0]; c++) {
        const struct valid_case *vc = &valid_cases[c];
        REQ(req);
        int n = gust__http1_parse_request(vc->raw, vc->len, 0, MAX_HEAD, &req);

        if (n != (int)vc->len)
            fail_msg("case %zu: got %d (%s), want %zu", c, n,
                     n == GUST_HTTP1_ERROR ? req.error_reason : "", vc->len);
        assert_slice(req.method, vc->method);
        assert_slice(req.target, vc->target);
        assert_int_equal(req.minor_version, vc->minor);
        assert_int_equal(req.num_headers, vc->num_headers);
        for (size_t i = 0; i < vc->num_headers && vc->headers[i][0]; i++) {
            assert_slice(req.headers[i].name, vc->headers[i][0]);
            assert_slice(req.headers[i].value, vc->headers[i][1]);
        }
        /* Pipelined bytes after the head do not change the result. */
        {
            char *more = malloc(vc->len + 20);
            REQ(req2);
            assert_non_null(more);
            memcpy(more, vc->raw, vc->len);
            memcpy(more + vc->len, "GET / HTTP/1.1\r\n\r\n", 18);
            n = gust__http1_parse_request(more, vc->len + 18, 0, MAX_HEAD, &req2);
            assert_same_request((int)vc->len, &req, vc->raw, n, &req2, more);
            free(more);
        }
    }
}

static void test_browser_request_headers(void **state)
{
    const char raw[] = BROWSER_GET;
    REQ(req);
    (void)state;
    assert_int_equal(gust__http1_parse_request(raw, sizeof raw - 1, 0, MAX_HEAD, &req),
                     (int)sizeof raw - 1);
    assert_int_equal(req.num_headers, 10);
    assert_slice(req.headers[9].name, "Sec-Fetch-Dest");
    assert_slice(req.headers[9].value, "document");
}

static void test_bad_requests(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof bad_cases / sizeof bad_cases[0]; c++) {
        const struct bad_case *bc = &bad_cases[c];
        int status = request_status(bc->raw, bc->len, UINT64_MAX);
        if (status != bc->status)
            fail_msg("bad case %zu (%.*s): status %d, want %d", c,
                     (int)(bc->len > 60 ? 60 : bc->len), bc->raw, status,
                     bc->status);
    }
}

static void test_too_many_headers(void **state)
{
    char buf[4096];
    size_t len;
    REQ(req);
    (void)state;

    for (int count = 99; count <= 101; count++) {
        len = (size_t)snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\n");
        for (int i = 0; i < count; i++)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "X%d: v\r\n", i);
        len += (size_t)snprintf(buf + len, sizeof buf - len, "\r\n");
        int n = gust__http1_parse_request(buf, len, 0, MAX_HEAD, &req);
        if (count <= GUST_HTTP1_MAX_HEADERS) {
            assert_int_equal(n, (int)len);
            assert_int_equal(req.num_headers, (size_t)count);
        } else {
            assert_int_equal(n, GUST_HTTP1_ERROR);
            assert_int_equal(req.error_status, 431);
        }
    }
}

static void test_head_size_limit(void **state)
{
    const char raw[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    size_t len = sizeof raw - 1;
    REQ(req);
    (void)state;

    /* Exactly max_head fits; one byte less is 431, whether or not more
     * bytes follow in the buffer. */
    assert_int_equal(gust__http1_parse_request(raw, len, 0, len, &req), (int)len);
    assert_int_equal(gust__http1_parse_request(raw, len, 0, len - 1, &req),
                     GUST_HTTP1_ERROR);
    assert_int_equal(req.error_status, 431);
    assert_int_equal(gust__http1_parse_request(raw, len - 1, 0, len - 1, &req),
                     GUST_HTTP1_ERROR);
    assert_int_equal(req.error_status, 431);
    assert_int_equal(gust__http1_parse_request(raw, len - 2, 0, len - 1, &req),
                     GUST_HTTP1_INCOMPLETE);
    /* The limit running out inside the request-target is 414, not 431. */
    const char longtarget[] = "GET /aaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n\r\n";
    assert_int_equal(gust__http1_parse_request(longtarget, sizeof longtarget - 1,
                                               0, 12, &req), GUST_HTTP1_ERROR);
    assert_int_equal(req.error_status, 414);
    assert_int_equal(gust__http1_parse_request(longtarget, 12, 0, 12, &req),
                     GUST_HTTP1_ERROR);
    assert_int_equal(req.error_status, 414);
    assert_int_equal(gust__http1_parse_request(longtarget, 11, 0, 12, &req),
                     GUST_HTTP1_INCOMPLETE);
    /* An error before the limit wins over the limit. */
    assert_int_equal(gust__http1_parse_request("G(ET / HTTP/1.1", 15, 0, 5, &req),
                     GUST_HTTP1_ERROR);
    assert_int_equal(req.error_status, 400);
}

/* ------------------------------------------------------------------------ */
/* Framing */

struct framing_case {
    const char *raw;
    size_t len;
    gust__http1_body body;
    uint64_t content_length;
    int keep_alive, close, expect_continue, expect_other, has_host;
};

static const struct framing_case framing_cases[] = {
    {S("GET / HTTP/1.1\r\nHost: a\r\n\r\n"), GUST_HTTP1_BODY_NONE, 0, 1, 0, 0, 0, 1},
    {S("GET / HTTP/1.1\r\nHost: a\r\nConnection: Close\r\n\r\n"),
     GUST_HTTP1_BODY_NONE, 0, 0, 1, 0, 0, 1},
    {S("GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade, ,CLOSE\r\n\r\n"),
     GUST_HTTP1_BODY_NONE, 0, 0, 1, 0, 0, 1},
    {S("GET / HTTP/1.0\r\n\r\n"), GUST_HTTP1_BODY_NONE, 0, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), GUST_HTTP1_BODY_NONE,
     0, 1, 0, 0, 0, 0},
    {S("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"),
     GUST_HTTP1_BODY_NONE, 0, 0, 1, 0, 0, 0},
    {S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"),
     GUST_HTTP1_BODY_LENGTH, 0, 1, 0, 0, 0, 1},
    {S("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0042\r\n\r\n"),
     GUST_HTTP1_BODY_LENGTH, 42, 1, 0, 0, 0, 1},
    {S("POST / HTTP/1.1\r\nHost: a\r\ncontent-length: 7\r\nContent-Length: 7 ,\t7\r\n\r\n"),
     GUST_HTTP1_BODY_LENGTH, 7, 1, 0, 0, 0, 1},
    {S("POST / HTTP/1.1\r\nHost: a\r\nTRANSFER-ENCODING: Chunked\r\n"
       "Expect: 100-Continue\r\n\r\n"),
     GUST_HTTP1_BODY_CHUNKED, 0, 1, 0, 1, 0, 1},
    {S("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked,\r\n\r\n"),
     GUST_HTTP1_BODY_CHUNKED, 0, 1, 0, 0, 0, 1},
    {S("POST / HTTP/1.1\r\nHost: a\r\nExpect: x-other\r\nContent-Length: 3\r\n\r\n"),
     GUST_HTTP1_BODY_LENGTH, 3, 1, 0, 0, 1, 1},
    {S("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"),
     GUST_HTTP1_BODY_LENGTH, 3, 0, 0, 0, 0, 0},
    {S("GET / HTTP/1.1\r\nHost:\r\n\r\n"), GUST_HTTP1_BODY_NONE, 0, 1, 0, 0, 0, 1},
};

static void test_framing(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof framing_cases / sizeof framing_cases[0]; c++) {
        const struct framing_case *fc = &framing_cases[c];
        REQ(req);
        gust__http1_framing fr;

        assert_int_equal(gust__http1_parse_request(fc->raw, fc->len, 0, MAX_HEAD, &req),
                         (int)fc->len);
        if (gust__http1_request_framing(&req, &fr) != 0)
            fail_msg("framing case %zu: %s", c, fr.error_reason);
        assert_int_equal(fr.body, fc->body);
        assert_int_equal(fr.content_length, fc->content_length);
        assert_int_equal(fr.keep_alive, fc->keep_alive);
        assert_int_equal(fr.connection_close, fc->close);
        assert_int_equal(fr.expect_continue, fc->expect_continue);
        assert_int_equal(fr.expect_other, fc->expect_other);
        assert_int_equal(fr.host.ptr != NULL, fc->has_host);
    }
}

/* ------------------------------------------------------------------------ */
/* Head: split invariance. A prefix gives INCOMPLETE or the final result
 * (errors never wait for later bytes); feeding pieces with the prev_len hint
 * gives the same final result as the whole buffer. */

static int parse_in_pieces(const char *buf, size_t len, const size_t *cuts,
                           size_t ncuts, gust__http1_request *req)
{
    size_t prev = 0;
    int n = GUST_HTTP1_INCOMPLETE;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t upto = i < ncuts ? cuts[i] : len;
        n = gust__http1_parse_request(buf, upto, prev, MAX_HEAD, req);
        if (n != GUST_HTTP1_INCOMPLETE)
            return n;
        prev = upto;
    }
    return n;
}

static void check_splits(const char *buf, size_t len)
{
    REQ(whole);
    REQ(part);
    int n = gust__http1_parse_request(buf, len, 0, MAX_HEAD, &whole);

    for (size_t k = 0; k < len; k++) {
        int m = gust__http1_parse_request(buf, k, 0, MAX_HEAD, &part);
        if (m != GUST_HTTP1_INCOMPLETE)
            assert_same_request(n, &whole, buf, m, &part, buf);
        /* two pieces, hint given */
        m = parse_in_pieces(buf, len, &k, 1, &part);
        assert_same_request(n, &whole, buf, m, &part, buf);
    }
    {
        /* one byte at a time, as a slow client sends it */
        size_t cuts[4096], ncuts = 0;
        for (size_t k = 1; k < len && ncuts < 4096; k++)
            cuts[ncuts++] = k;
        int m = parse_in_pieces(buf, len, cuts, ncuts, &part);
        assert_same_request(n, &whole, buf, m, &part, buf);
    }
    for (int round = 0; round < 20; round++) {
        size_t cuts[4096], ncuts = 0, at = 0;
        while (ncuts < 4096) {
            at += 1 + rng() % 7;
            if (at >= len)
                break;
            cuts[ncuts++] = at;
        }
        int m = parse_in_pieces(buf, len, cuts, ncuts, &part);
        assert_same_request(n, &whole, buf, m, &part, buf);
    }
}

static void test_splits_valid(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof valid_cases / sizeof valid_cases[0]; c++)
        check_splits(valid_cases[c].raw, valid_cases[c].len);
}

static void test_splits_bad(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof bad_cases / sizeof bad_cases[0]; c++)
        check_splits(bad_cases[c].raw, bad_cases[c].len);
}

/* ------------------------------------------------------------------------ */
/* Guard page: the input's last byte sits just before a PROT_NONE page, so
 * reading one byte too far crashes the test. */

struct guard {
    char *page;
    size_t size;
};

static struct guard guard_open(void)
{
    struct guard g;
    g.size = (size_t)sysconf(_SC_PAGESIZE);
    g.page = mmap(NULL, 2 * g.size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(g.page != MAP_FAILED);
    assert_int_equal(mprotect(g.page + g.size, g.size, PROT_NONE), 0);
    return g;
}

static char *guard_place(struct guard *g, const char *data, size_t len)
{
    char *at = g->page + g->size - len;
    assert_true(len <= g->size);
    memcpy(at, data, len);
    return at;
}

static void guard_close(struct guard *g)
{
    munmap(g->page, 2 * g->size);
}

static void guard_all_prefixes(struct guard *g, const char *raw, size_t len)
{
    REQ(req);
    REQ(ref);
    gust__http1_framing fr;
    for (size_t k = 0; k <= len; k++) {
        const char *at = guard_place(g, raw, k);
        int n = gust__http1_parse_request(at, k, 0, MAX_HEAD, &req);
        int m = gust__http1_parse_request(raw, k, 0, MAX_HEAD, &ref);
        assert_same_request(m, &ref, raw, n, &req, at);
        if (n > 0)
            (void)gust__http1_request_framing(&req, &fr);
        if (k > 0)
            (void)gust__http1_parse_request(at, k, k - 1, MAX_HEAD, &req);
    }
}

static void test_guard_page(void **state)
{
    struct guard g = guard_open();
    (void)state;
    for (size_t c = 0; c < sizeof valid_cases / sizeof valid_cases[0]; c++)
        guard_all_prefixes(&g, valid_cases[c].raw, valid_cases[c].len);
    for (size_t c = 0; c < sizeof bad_cases / sizeof bad_cases[0]; c++)
        guard_all_prefixes(&g, bad_cases[c].raw, bad_cases[c].len);
    guard_close(&g);
}

/* ------------------------------------------------------------------------ */
/* Responses: status line, the shared field rules, obs-fold, framing */

#define RESP_SLOTS 16
#define FOLD GUST_HTTP1_FIELDS_OBS_FOLD

typedef struct resp_buf {
    gust__http1_response r;
    gust__http1_header slots[RESP_SLOTS];
} resp_buf;

static int parse_resp(const char *buf, size_t len, size_t prev, size_t max_head,
                      unsigned flags, resp_buf *rb)
{
    rb->r.headers = rb->slots;
    rb->r.max_headers = RESP_SLOTS;
    return gust__http1_parse_response(buf, len, prev, max_head, flags, &rb->r);
}

static void assert_same_response(int n1, const gust__http1_response *a,
                                 const char *abuf, int n2,
                                 const gust__http1_response *b,
                                 const char *bbuf)
{
    assert_int_equal(n1, n2);
    if (n1 == GUST_HTTP1_ERROR) {
        assert_int_equal(a->error_status, b->error_status);
        assert_int_equal(a->error_offset, b->error_offset);
        assert_string_equal(a->error_reason, b->error_reason);
    }
    if (n1 <= 0)
        return;
    assert_int_equal(a->minor_version, b->minor_version);
    assert_int_equal(a->status, b->status);
    assert_int_equal(a->reason.ptr - abuf, b->reason.ptr - bbuf);
    assert_int_equal(a->reason.len, b->reason.len);
    assert_int_equal(a->num_headers, b->num_headers);
    assert_int_equal(a->num_folded, b->num_folded);
    for (size_t i = 0; i < a->num_headers; i++) {
        assert_int_equal(a->headers[i].name.ptr - abuf, b->headers[i].name.ptr - bbuf);
        assert_int_equal(a->headers[i].name.len, b->headers[i].name.len);
        assert_int_equal(a->headers[i].value.ptr - abuf, b->headers[i].value.ptr - bbuf);
        assert_int_equal(a->headers[i].value.len, b->headers[i].value.len);
    }
}

struct resp_case {
    const char *raw;
    size_t len;
    unsigned flags;
    int minor, status;
    const char *reason;
    size_t num_headers, num_folded;
    const char *headers[8][2]; /* values as interpreted (unfolded) */
};

#define NGINX_200                                                              \
    "HTTP/1.1 200 OK\r\n"                                                      \
    "Server: nginx/1.24.0\r\n"                                                 \
    "Date: Mon, 23 Nov 2026 12:00:00 GMT\r\n"                                  \
    "Content-Type: text/html; charset=utf-8\r\n"                               \
    "Content-Length: 615\r\n"                                                  \
    "Last-Modified: Tue, 11 Apr 2023 01:45:34 GMT\r\n"                         \
    "Connection: keep-alive\r\n"                                               \
    "ETag: \"6434bbbe-267\"\r\n"                                               \
    "Accept-Ranges: bytes\r\n"                                                 \
    "\r\n"

static const struct resp_case resp_cases[] = {
    {S("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"), 0, 1, 200, "OK", 1, 0,
     {{"Content-Length", "2"}}},
    {S("HTTP/1.0 404 Not Found\r\n\r\n"), 0, 0, 404, "Not Found", 0, 0, {{0}}},
    {S("HTTP/1.1 204 \r\n\r\n"), 0, 1, 204, "", 0, 0, {{0}}},
    {S("HTTP/1.1 200\r\nX: a\r\n\r\n"), 0, 1, 200, "", 1, 0, {{"X", "a"}}},
    {S("HTTP/1.1 599 caf\xc3\xa9 \t x \r\n\r\n"), 0, 1, 599, "caf\xc3\xa9 \t x ", 0,
     0, {{0}}},
    {S("HTTP/1.1 100 Continue\r\n\r\n"), 0, 1, 100, "Continue", 0, 0, {{0}}},
    {S("HTTP/1.2 999 Later\r\n\r\n"), 0, 2, 999, "Later", 0, 0, {{0}}},
    {S("HTTP/1.1 200 OK\r\nX:  \t a b\t \r\nY:\r\nZ: a:b\r\n\r\n"), 0, 1, 200,
     "OK", 3, 0, {{"X", "a b"}, {"Y", ""}, {"Z", "a:b"}}},
    {S(NGINX_200), 0, 1, 200, "OK", 8, 0,
     {{"Server", "nginx/1.24.0"}, {"Date", "Mon, 23 Nov 2026 12:00:00 GMT"},
      {"Content-Type", "text/html; charset=utf-8"}, {"Content-Length", "615"},
      {"Last-Modified", "Tue, 11 Apr 2023 01:45:34 GMT"},
      {"Connection", "keep-alive"}, {"ETag", "\"6434bbbe-267\""},
      {"Accept-Ranges", "bytes"}}},
    /* obs-fold, accepted as a user agent must (RFC 9112 5.2): each fold
     * becomes SP octets, the folds at either end are trimmed. */
    {S("HTTP/1.1 200 OK\r\nX: a\r\n  b\r\n\tc \r\nY: d\r\n\r\n"), FOLD, 1, 200,
     "OK", 2, 1, {{"X", "a    b  \tc"}, {"Y", "d"}}},
    {S("HTTP/1.1 200 OK\r\nX:\r\n b\r\n\r\n"), FOLD, 1, 200, "OK", 1, 1,
     {{"X", "b"}}},
    {S("HTTP/1.1 200 OK\r\nX: a\r\n \r\nY: b\r\n \t\r\n\r\n"), FOLD, 1, 200, "OK",
     2, 2, {{"X", "a"}, {"Y", "b"}}},
    {S("HTTP/1.1 200 OK\r\nX: a\r\nY: b\r\n\r\n"), FOLD, 1, 200, "OK", 2, 0,
     {{"X", "a"}, {"Y", "b"}}},
};

struct resp_bad_case {
    const char *raw;
    size_t len;
    unsigned flags; /* FOLD, or 0 to check both with and without it */
    int status;
};

#define R11 "HTTP/1.1 200 OK\r\n"
static const struct resp_bad_case resp_bad_cases[] = {
    /* status line (RFC 9112 4) */
    {S("HTTP/2 200 OK\r\n\r\n"), 0, 400},
    {S("HTTP/2.0 200 OK\r\n\r\n"), 0, 505},
    {S("HTTP/0.9 200 OK\r\n\r\n"), 0, 505},
    {S("HTTP/1.10 200 OK\r\n\r\n"), 0, 400},
    {S("http/1.1 200 OK\r\n\r\n"), 0, 400},
    {S("HTTP/1.1  200 OK\r\n\r\n"), 0, 400},
    {S("HTTP/1.1 20 OK\r\n\r\n"), 0, 400},
    {S("HTTP/1.1 2000 OK\r\n\r\n"), 0, 400},
    {S("HTTP/1.1 099 Low\r\n\r\n"), 0, 400},
    {S("HTTP/1.1 2x0 OK\r\n\r\n"), 0, 400},
    {S("HTTP/1.1 200\tOK\r\n\r\n"), 0, 400},
    {S("HTTP/1.1 200 O\0K\r\n\r\n"), 0, 400},
    {S("HTTP/1.1 200 O\x7fK\r\n\r\n"), 0, 400},
    {S("HTTP/1.1 200 OK\rX: a\r\n\r\n"), 0, 400},
    {S("HTTP/1.1 200 OK\nX: a\r\n\r\n"), 0, 400},
    {S("HTTP/1.1 200 OK\n\n"), 0, 400},
    {S("\r\nHTTP/1.1 200 OK\r\n\r\n"), 0, 400},
    {S(" HTTP/1.1 200 OK\r\n\r\n"), 0, 400},
    /* fields: the request rules, with and without obs-fold accepted */
    {S(R11 "Bad Header: x\r\n\r\n"), 0, 400},
    {S(R11 "X : a\r\n\r\n"), 0, 400},
    {S(R11 "X\t: a\r\n\r\n"), 0, 400},
    {S(R11 ": a\r\n\r\n"), 0, 400},
    {S(R11 "X(y): a\r\n\r\n"), 0, 400},
    {S(R11 "X\xc3\xa9: a\r\n\r\n"), 0, 400},
    {S(R11 "NoColon\r\n\r\n"), 0, 400},
    {S(R11 "X: a\0b\r\n\r\n"), 0, 400},
    {S(R11 "X: a\x01\r\n\r\n"), 0, 400},
    {S(R11 "X: a\x7f\r\n\r\n"), 0, 400},
    {S(R11 "X: a\rb\r\n\r\n"), 0, 400},
    {S(R11 "X: a\r\r\n\r\n"), 0, 400},
    {S(R11 "X: a\nY: b\r\n\r\n"), 0, 400},
    {S(R11 "X: a\r\n\n"), 0, 400},
    {S(R11 "\r\r\n"), 0, 400},
    /* whitespace right after the status line is never a fold (2.2) */
    {S(R11 " X: a\r\n\r\n"), 0, 400},
    {S(R11 "\tX: a\r\n\r\n"), 0, 400},
    /* inside a fold, the same byte rules */
    {S(R11 "X: a\r\n b\rc\r\n\r\n"), FOLD, 400},
    {S(R11 "X: a\r\n b\0\r\n\r\n"), FOLD, 400},
    {S(R11 "X: a\r\n b\nY: c\r\n\r\n"), FOLD, 400},
    {S(R11 "X: a\r\n \r\r\n"), FOLD, 400},
};

/* The fold cases are errors without the flag. */
static const char *const fold_only[] = {
    R11 "X: a\r\n b\r\n\r\n",
    R11 "X: a\r\n\tb\r\n\r\n",
    R11 "X:\r\n b\r\n\r\n",
};

static void test_valid_responses(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof resp_cases / sizeof resp_cases[0]; c++) {
        const struct resp_case *rc = &resp_cases[c];
        resp_buf rb;
        char *copy = malloc(rc->len + 20);
        assert_non_null(copy);
        memcpy(copy, rc->raw, rc->len);
        /* a body after the head does not change the result */
        memcpy(copy + rc->len, "HTTP/1.1 200 OK\r\n", 17);
        int n = parse_resp(copy, rc->len + 17, 0, MAX_HEAD, rc->flags, &rb);
        if (n != (int)rc->len)
            fail_msg("response case %zu: got %d (%s), want %zu", c, n,
                     n == GUST_HTTP1_ERROR ? rb.r.error_reason : "", rc->len);
        assert_int_equal(rb.r.minor_version, rc->minor);
        assert_int_equal(rb.r.status, rc->status);
        assert_slice(rb.r.reason, rc->reason);
        assert_int_equal(rb.r.num_headers, rc->num_headers);
        assert_int_equal(rb.r.num_folded, rc->num_folded);
        for (size_t i = 0; i < rc->num_headers; i++) {
            gust__http1_header *h = &rb.r.headers[i];
            assert_slice(h->name, rc->headers[i][0]);
            if (rb.r.num_folded)
                gust__http1_unfold(copy + (h->value.ptr - copy), h->value.len);
            else
                assert_null(memchr(h->value.ptr, '\r', h->value.len));
            assert_slice(h->value, rc->headers[i][1]);
        }
        free(copy);
    }
}

static void test_bad_responses(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof resp_bad_cases / sizeof resp_bad_cases[0]; c++) {
        const struct resp_bad_case *bc = &resp_bad_cases[c];
        for (unsigned flags = 0; flags <= FOLD; flags++) {
            resp_buf rb;
            if (bc->flags && flags != bc->flags)
                continue;
            int n = parse_resp(bc->raw, bc->len, 0, MAX_HEAD, flags, &rb);
            if (n != GUST_HTTP1_ERROR || rb.r.error_status != bc->status)
                fail_msg("bad response %zu flags %u: got %d/%d, want %d", c,
                         flags, n, rb.r.error_status, bc->status);
            assert_non_null(rb.r.error_reason);
            assert_true(rb.r.error_offset < bc->len);
        }
    }
    for (size_t c = 0; c < sizeof fold_only / sizeof fold_only[0]; c++) {
        resp_buf rb;
        size_t len = strlen(fold_only[c]);
        assert_int_equal(parse_resp(fold_only[c], len, 0, MAX_HEAD, 0, &rb),
                         GUST_HTTP1_ERROR);
        assert_int_equal(rb.r.error_status, 400);
        assert_int_equal(parse_resp(fold_only[c], len, 0, MAX_HEAD, FOLD, &rb),
                         (int)len);
        assert_int_equal(rb.r.num_folded, 1);
    }
}

/* The caller's slot count bounds the fields (431 beyond), and so does
 * max_head; gust__http1_parse_fields() is the same loop on its own. */
static void test_response_limits(void **state)
{
    const char raw[] = R11 "A: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    size_t len = sizeof raw - 1;
    gust__http1_header slots[3];
    gust__http1_response r = {.headers = slots, .max_headers = 3};
    gust__http1_fields f = {.headers = slots, .max_headers = 2};
    (void)state;

    assert_int_equal(gust__http1_parse_response(raw, len, 0, MAX_HEAD, 0, &r),
                     (int)len);
    r.max_headers = 2;
    assert_int_equal(gust__http1_parse_response(raw, len, 0, MAX_HEAD, 0, &r),
                     GUST_HTTP1_ERROR);
    assert_int_equal(r.error_status, 431);
    r.max_headers = 3;
    assert_int_equal(gust__http1_parse_response(raw, len, 0, len, 0, &r), (int)len);
    assert_int_equal(gust__http1_parse_response(raw, len, 0, len - 1, 0, &r),
                     GUST_HTTP1_ERROR);
    assert_int_equal(r.error_status, 431);
    assert_int_equal(gust__http1_parse_response(raw, len - 2, 0, len - 1, 0, &r),
                     GUST_HTTP1_INCOMPLETE);

    /* fields alone, from the end of the status line */
    assert_int_equal(gust__http1_parse_fields(raw, len, 17, MAX_HEAD, &f),
                     GUST_HTTP1_ERROR);
    assert_int_equal(f.error_status, 431);
    assert_int_equal(f.error_offset, 30); /* the colon after the third name */
    f.max_headers = 3;
    assert_int_equal(gust__http1_parse_fields(raw, len, 17, MAX_HEAD, &f), (int)len);
    assert_int_equal(f.num_headers, 3);
    assert_slice(slots[2].name, "C");
    assert_slice(slots[2].value, "3");
    assert_int_equal(gust__http1_parse_fields(raw, len - 1, 17, MAX_HEAD, &f),
                     GUST_HTTP1_INCOMPLETE);
    assert_int_equal(gust__http1_parse_fields(raw, len, 17, len - 1, &f),
                     GUST_HTTP1_ERROR);
    assert_int_equal(f.error_status, 431);
    f.flags = FOLD;
    assert_int_equal(gust__http1_parse_fields(S(R11 "X: a\r\n b\r\n\r\n"), 17,
                                              MAX_HEAD, &f), 29);
    assert_int_equal(f.num_folded, 1);
    f.flags = 0;
    assert_int_equal(gust__http1_parse_fields(S(R11 "X: a\r\n b\r\n\r\n"), 17,
                                              MAX_HEAD, &f), GUST_HTTP1_ERROR);
    assert_int_equal(f.error_status, 400);
}

struct resp_framing_case {
    const char *raw;
    size_t len;
    const char *method;
    int error;          /* 0, or the error status expected */
    gust__http1_body body;
    uint64_t content_length;
    unsigned char keep_alive;
};

#define R10 "HTTP/1.0 200 OK\r\n"
static const struct resp_framing_case resp_framing_cases[] = {
    {S(R11 "Content-Length: 5\r\n\r\n"), "GET", 0, GUST_HTTP1_BODY_LENGTH, 5, 1},
    {S(R11 "Content-Length: 0\r\n\r\n"), "GET", 0, GUST_HTTP1_BODY_LENGTH, 0, 1},
    {S(R11 "Content-Length: 5\r\ncontent-length: 5\r\n\r\n"), "GET", 0,
     GUST_HTTP1_BODY_LENGTH, 5, 1},
    {S(R11 "Content-Length: 5, 5\r\n\r\n"), "GET", 0, GUST_HTTP1_BODY_LENGTH, 5, 1},
    {S(R11 "Content-Length: 5\r\nContent-Length: 6\r\n\r\n"), "GET", 400, 0, 0, 0},
    {S(R11 "Content-Length: 5, 6\r\n\r\n"), "GET", 400, 0, 0, 0},
    {S(R11 "Content-Length: x\r\n\r\n"), "GET", 400, 0, 0, 0},
    {S(R11 "Content-Length: +5\r\n\r\n"), "GET", 400, 0, 0, 0},
    {S(R11 "Content-Length: 99999999999999999999\r\n\r\n"), "GET", 400, 0, 0, 0},
    {S(R11 "Transfer-Encoding: chunked\r\n\r\n"), "GET", 0,
     GUST_HTTP1_BODY_CHUNKED, 0, 1},
    {S(R11 "Transfer-Encoding: gzip, chunked\r\n\r\n"), "GET", 0,
     GUST_HTTP1_BODY_CHUNKED, 0, 1},
    {S(R11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: Chunked\r\n\r\n"),
     "GET", 0, GUST_HTTP1_BODY_CHUNKED, 0, 1},
    {S(R11 "Transfer-Encoding: gzip\r\n\r\n"), "GET", 0, GUST_HTTP1_BODY_CLOSE, 0, 0},
    {S(R11 "Transfer-Encoding: chunked, gzip\r\n\r\n"), "GET", 0,
     GUST_HTTP1_BODY_CLOSE, 0, 0},
    {S(R11 "Transfer-Encoding: chunked;q=1\r\n\r\n"), "GET", 0,
     GUST_HTTP1_BODY_CLOSE, 0, 0},
    {S(R11 "Transfer-Encoding:\r\n\r\n"), "GET", 0, GUST_HTTP1_BODY_CLOSE, 0, 0},
    /* CL with TE: TE wins (6.3 item 3), the connection is not reused */
    {S(R11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), "GET", 0,
     GUST_HTTP1_BODY_CHUNKED, 0, 0},
    {S(R11 "Transfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n"), "GET", 0,
     GUST_HTTP1_BODY_CHUNKED, 0, 0},
    {S(R10 "Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n"), "GET",
     0, GUST_HTTP1_BODY_CHUNKED, 0, 0},
    /* neither: until close */
    {S(R11 "X: y\r\n\r\n"), "GET", 0, GUST_HTTP1_BODY_CLOSE, 0, 0},
    {S(R11 "X: y\r\n\r\n"), "POST", 0, GUST_HTTP1_BODY_CLOSE, 0, 0},
    /* no body whatever the fields say (6.3 items 1, 2) */
    {S(R11 "Content-Length: 5\r\n\r\n"), "HEAD", 0, GUST_HTTP1_BODY_NONE, 0, 1},
    {S(R11 "Content-Length: x\r\n\r\n"), "HEAD", 0, GUST_HTTP1_BODY_NONE, 0, 1},
    {S(R11 "Transfer-Encoding: chunked\r\n\r\n"), "HEAD", 0, GUST_HTTP1_BODY_NONE, 0, 1},
    {S("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"), "GET", 0,
     GUST_HTTP1_BODY_NONE, 0, 1},
    {S("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"), "GET",
     0, GUST_HTTP1_BODY_NONE, 0, 1},
    {S("HTTP/1.1 304 Not Modified\r\nContent-Length: 5, 6\r\n\r\n"), "GET", 0,
     GUST_HTTP1_BODY_NONE, 0, 1},
    {S("HTTP/1.1 100 Continue\r\n\r\n"), "POST", 0, GUST_HTTP1_BODY_NONE, 0, 1},
    {S("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"), "GET", 0,
     GUST_HTTP1_BODY_NONE, 0, 1},
    {S(R11 "\r\n"), "CONNECT", 0, GUST_HTTP1_BODY_NONE, 0, 1},
    {S("HTTP/1.1 407 Auth\r\nContent-Length: 3\r\n\r\n"), "CONNECT", 0,
     GUST_HTTP1_BODY_LENGTH, 3, 1},
    /* "HEAD" is case-sensitive: "head" is another method */
    {S(R11 "Content-Length: 5\r\n\r\n"), "head", 0, GUST_HTTP1_BODY_LENGTH, 5, 1},
    /* keep-alive (RFC 9112 9.3) */
    {S(R11 "Connection: close\r\nContent-Length: 1\r\n\r\n"), "GET", 0,
     GUST_HTTP1_BODY_LENGTH, 1, 0},
    {S(R11 "Connection: x y, Close\r\nContent-Length: 1\r\n\r\n"), "GET", 0,
     GUST_HTTP1_BODY_LENGTH, 1, 0},
    {S(R10 "Content-Length: 1\r\n\r\n"), "GET", 0, GUST_HTTP1_BODY_LENGTH, 1, 0},
    {S(R10 "Connection: keep-alive\r\nContent-Length: 1\r\n\r\n"), "GET", 0,
     GUST_HTTP1_BODY_LENGTH, 1, 1},
    {S(R10 "Connection: keep-alive, close\r\nContent-Length: 1\r\n\r\n"), "GET", 0,
     GUST_HTTP1_BODY_LENGTH, 1, 0},
    {S(R10 "Connection: keep-alive\r\n\r\n"), "GET", 0, GUST_HTTP1_BODY_CLOSE, 0, 0},
};

static void test_response_framing(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof resp_framing_cases / sizeof resp_framing_cases[0];
         c++) {
        const struct resp_framing_case *fc = &resp_framing_cases[c];
        gust__http1_slice method = {fc->method, strlen(fc->method)};
        gust__http1_framing fr;
        resp_buf rb;

        assert_int_equal(parse_resp(fc->raw, fc->len, 0, MAX_HEAD, 0, &rb),
                         (int)fc->len);
        int rc = gust__http1_response_framing(&rb.r, method, &fr);
        if (fc->error) {
            if (rc != GUST_HTTP1_ERROR || fr.error_status != fc->error)
                fail_msg("response framing %zu: rc %d, want error %d", c, rc,
                         fc->error);
            assert_non_null(fr.error_reason);
            continue;
        }
        if (rc != 0)
            fail_msg("response framing %zu: %s", c, fr.error_reason);
        if (fr.body != fc->body || fr.content_length != fc->content_length ||
            fr.keep_alive != fc->keep_alive)
            fail_msg("response framing %zu: body %d len %llu keep %d", c,
                     (int)fr.body, (unsigned long long)fr.content_length,
                     fr.keep_alive);
        assert_null(fr.host.ptr);
    }
}

/* A whole response, head then chunked body, as the client reads it. */
static void test_response_chunked_body(void **state)
{
    char raw[] = R11 "Transfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nT: v\r\n\r\n"
                     "HTTP/1.1";
    gust__http1_framing fr;
    gust__http1_chunked ch;
    resp_buf rb;
    size_t data_len;
    (void)state;

    int n = parse_resp(raw, sizeof raw - 1, 0, MAX_HEAD, 0, &rb);
    assert_int_equal(n, 47);
    assert_int_equal(gust__http1_response_framing(&rb.r,
                         (gust__http1_slice){"GET", 3}, &fr), 0);
    assert_int_equal(fr.body, GUST_HTTP1_BODY_CHUNKED);
    gust__http1_chunked_init(&ch, UINT64_MAX, 1024);
    ssize_t used = gust__http1_chunked_decode(&ch, raw + n, sizeof raw - 1 - (size_t)n,
                                              &data_len);
    assert_int_equal(used, (ssize_t)(sizeof raw - 1 - (size_t)n - 8));
    assert_int_equal(data_len, 11);
    assert_memory_equal(raw + n, "hello world", 11);
}

/* Split invariance, as for requests: any prefix is INCOMPLETE or the final
 * answer, and pieces fed with the prev_len hint reach the same answer. */
static int parse_resp_pieces(const char *buf, size_t len, const size_t *cuts,
                             size_t ncuts, unsigned flags, resp_buf *rb)
{
    size_t prev = 0;
    int n = GUST_HTTP1_INCOMPLETE;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t upto = i < ncuts ? cuts[i] : len;
        n = parse_resp(buf, upto, prev, MAX_HEAD, flags, rb);
        if (n != GUST_HTTP1_INCOMPLETE)
            return n;
        prev = upto;
    }
    return n;
}

static void check_resp_splits(const char *buf, size_t len, unsigned flags)
{
    resp_buf whole, part;
    int n = parse_resp(buf, len, 0, MAX_HEAD, flags, &whole);

    for (size_t k = 0; k < len; k++) {
        int m = parse_resp(buf, k, 0, MAX_HEAD, flags, &part);
        if (m != GUST_HTTP1_INCOMPLETE)
            assert_same_response(n, &whole.r, buf, m, &part.r, buf);
        m = parse_resp_pieces(buf, len, &k, 1, flags, &part);
        assert_same_response(n, &whole.r, buf, m, &part.r, buf);
    }
    {
        size_t cuts[4096], ncuts = 0;
        for (size_t k = 1; k < len && ncuts < 4096; k++)
            cuts[ncuts++] = k;
        int m = parse_resp_pieces(buf, len, cuts, ncuts, flags, &part);
        assert_same_response(n, &whole.r, buf, m, &part.r, buf);
    }
    for (int round = 0; round < 20; round++) {
        size_t cuts[4096], ncuts = 0, at = 0;
        while (ncuts < 4096) {
            at += 1 + rng() % 7;
            if (at >= len)
                break;
            cuts[ncuts++] = at;
        }
        int m = parse_resp_pieces(buf, len, cuts, ncuts, flags, &part);
        assert_same_response(n, &whole.r, buf, m, &part.r, buf);
    }
}

static void test_response_splits(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof resp_cases / sizeof resp_cases[0]; c++)
        for (unsigned flags = 0; flags <= FOLD; flags++)
            check_resp_splits(resp_cases[c].raw, resp_cases[c].len, flags);
    for (size_t c = 0; c < sizeof resp_bad_cases / sizeof resp_bad_cases[0]; c++)
        for (unsigned flags = 0; flags <= FOLD; flags++)
            check_resp_splits(resp_bad_cases[c].raw, resp_bad_cases[c].len, flags);
    for (size_t c = 0; c < sizeof resp_framing_cases / sizeof resp_framing_cases[0];
         c++)
        check_resp_splits(resp_framing_cases[c].raw, resp_framing_cases[c].len, 0);
}

static void resp_guard_prefixes(struct guard *g, const char *raw, size_t len)
{
    gust__http1_framing fr;
    for (unsigned flags = 0; flags <= FOLD; flags++) {
        for (size_t k = 0; k <= len; k++) {
            resp_buf at_guard, ref;
            const char *at = guard_place(g, raw, k);
            int n = parse_resp(at, k, 0, MAX_HEAD, flags, &at_guard);
            int m = parse_resp(raw, k, 0, MAX_HEAD, flags, &ref);
            assert_same_response(m, &ref.r, raw, n, &at_guard.r, at);
            if (n > 0)
                (void)gust__http1_response_framing(&at_guard.r,
                                                   (gust__http1_slice){"GET", 3}, &fr);
            if (k > 0)
                (void)parse_resp(at, k, k - 1, MAX_HEAD, flags, &at_guard);
        }
    }
}

static void test_response_guard_page(void **state)
{
    struct guard g = guard_open();
    (void)state;
    for (size_t c = 0; c < sizeof resp_cases / sizeof resp_cases[0]; c++)
        resp_guard_prefixes(&g, resp_cases[c].raw, resp_cases[c].len);
    for (size_t c = 0; c < sizeof resp_bad_cases / sizeof resp_bad_cases[0]; c++)
        resp_guard_prefixes(&g, resp_bad_cases[c].raw, resp_bad_cases[c].len);
    guard_close(&g);
}

/* ------------------------------------------------------------------------ */
/* Chunked decoder */

struct chunked_case {
    const char *raw;     /* body, then the next request */
    size_t len;
    const char *data;    /* decoded data */
    size_t consumed;     /* length of the chunked body in raw */
};

#define NEXT "GET / HTTP/1.1\r\n"
static const struct chunked_case chunked_cases[] = {
    {S("0\r\n\r\n"), "", 5},
    {S("5\r\nhello\r\n0\r\n\r\n" NEXT), "hello", 15},
    {S("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"), "hello world", 26},
    {S("a\r\n0123456789\r\nA;ext=1\r\nabcdefghij\r\n0\r\n\r\n" NEXT),
     "0123456789abcdefghij", 41},
    {S("3;a;b=c;d=\"q\\\"\\\\ \t\x80\"\r\nabc\r\n0;z\r\nTrailer: v\r\nX:\r\n\r\n"),
     "abc", 50},
    {S("001\r\n\r\r\n0000\r\n\r\n\r\n"), "\r", 16},
    {S("F\r\n0123456789abcde\r\n0\r\n\r\n"), "0123456789abcde", 25},
};

/* Decodes raw in the given pieces (each copied to a fresh buffer, as a
 * stream hands them out) and checks data, result and consumed length. */
static void decode_in_pieces(const struct chunked_case *cc, const size_t *cuts,
                             size_t ncuts)
{
    gust__http1_chunked st;
    char *data = malloc(cc->len + 1), *piece = malloc(cc->len + 1);
    size_t data_total = 0, start = 0, consumed = 0;
    ssize_t rc = GUST_HTTP1_INCOMPLETE;

    assert_non_null(data);
    assert_non_null(piece);
    gust__http1_chunked_init(&st, UINT64_MAX, 1024);
    for (size_t i = 0; i <= ncuts && rc == GUST_HTTP1_INCOMPLETE; i++) {
        size_t upto = i < ncuts ? cuts[i] : cc->len, n;
        memcpy(piece, cc->raw + start, upto - start);
        rc = gust__http1_chunked_decode(&st, piece, upto - start, &n);
        memcpy(data + data_total, piece, n);
        data_total += n;
        if (rc >= 0) {
            consumed = start + (size_t)rc;
            /* the next request is untouched */
            assert_memory_equal(piece + rc, cc->raw + consumed, upto - consumed);
        }
        start = upto;
    }
    if (rc < 0)
        fail_msg("chunked '%s': rc %zd (%s)", cc->data, rc,
                 rc == GUST_HTTP1_ERROR ? st.error_reason : "incomplete");
    assert_int_equal(consumed, cc->consumed);
    assert_int_equal(data_total, strlen(cc->data));
    assert_memory_equal(data, cc->data, data_total);
    /* after the end, nothing more is consumed */
    assert_int_equal(gust__http1_chunked_decode(&st, piece, 1, &data_total), 0);
    assert_int_equal(data_total, 0);
    free(data);
    free(piece);
}

static void test_chunked_splits(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof chunked_cases / sizeof chunked_cases[0]; c++) {
        const struct chunked_case *cc = &chunked_cases[c];
        size_t cuts[512];

        decode_in_pieces(cc, NULL, 0);
        for (size_t k = 0; k <= cc->len; k++)
            decode_in_pieces(cc, &k, 1);
        for (size_t k = 1; k < cc->len; k++)
            cuts[k - 1] = k;
        decode_in_pieces(cc, cuts, cc->len - 1);
        for (int round = 0; round < 50; round++) {
            size_t ncuts = 0, at = 0;
            while (ncuts < 512) {
                at += 1 + rng() % 5;
                if (at >= cc->len)
                    break;
                cuts[ncuts++] = at;
            }
            decode_in_pieces(cc, cuts, ncuts);
        }
    }
}

/* Malformed bodies fail with the same status for every two-piece split, and
 * decode without over-read against a guard page. */
static void test_chunked_errors_split_and_guard(void **state)
{
    struct guard g = guard_open();
    (void)state;
    for (size_t c = 0; c < sizeof bad_cases / sizeof bad_cases[0]; c++) {
        const struct bad_case *bc = &bad_cases[c];
        const char *body = strstr(bc->raw, "chunked\r\n\r\n");
        gust__http1_chunked whole, st;
        size_t n, blen;
        ssize_t want, rc;
        char *copy;

        if (!body || strncmp(bc->raw, CHUNKED, sizeof CHUNKED - 1) != 0)
            continue;
        body += 11;
        blen = bc->len - (size_t)(body - bc->raw);
        copy = malloc(blen + 1);
        assert_non_null(copy);
        memcpy(copy, body, blen);
        gust__http1_chunked_init(&whole, UINT64_MAX, 1024);
        want = gust__http1_chunked_decode(&whole, copy, blen, &n);
        for (size_t k = 0; k <= blen; k++) {
            gust__http1_chunked_init(&st, UINT64_MAX, 1024);
            memcpy(copy, body, blen);
            rc = gust__http1_chunked_decode(&st, copy, k, &n);
            if (rc == GUST_HTTP1_INCOMPLETE) {
                rc = gust__http1_chunked_decode(&st, copy + k, blen - k, &n);
                if (rc >= 0)
                    rc += (ssize_t)k;
            }
            assert_int_equal(rc, want);
            if (rc == GUST_HTTP1_ERROR)
                assert_int_equal(st.error_status, whole.error_status);
            /* every prefix, against the guard page */
            gust__http1_chunked_init(&st, UINT64_MAX, 1024);
            (void)gust__http1_chunked_decode(&st, guard_place(&g, body, k), k, &n);
        }
        free(copy);
    }
    guard_close(&g);
}

static void test_chunked_limits(void **state)
{
    gust__http1_chunked st;
    char buf[256];
    size_t n;
    (void)state;

    /* max_body: 10 bytes allowed, the second chunk goes over */
    strcpy(buf, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    gust__http1_chunked_init(&st, 10, 1024);
    assert_int_equal(gust__http1_chunked_decode(&st, buf, strlen(buf), &n),
                     GUST_HTTP1_ERROR);
    assert_int_equal(st.error_status, 413);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "hello", 5);
    /* and stays failed */
    assert_int_equal(gust__http1_chunked_decode(&st, buf, 3, &n), GUST_HTTP1_ERROR);
    assert_int_equal(n, 0);

    /* a size that does not fit 62 bits is malformed, whatever max_body */
    strcpy(buf, "1ffffffffffffffffffff\r\n");
    gust__http1_chunked_init(&st, 10, 1024);
    assert_int_equal(gust__http1_chunked_decode(&st, buf, strlen(buf), &n),
                     GUST_HTTP1_ERROR);
    assert_int_equal(st.error_status, 400);
    /* one that fits but passes max_body is too large, even with an extension */
    strcpy(buf, "ffffffff;a=b\r\n");
    gust__http1_chunked_init(&st, 10, 1024);
    assert_int_equal(gust__http1_chunked_decode(&st, buf, strlen(buf), &n),
                     GUST_HTTP1_ERROR);
    assert_int_equal(st.error_status, 413);

    /* exactly max_body is fine */
    strcpy(buf, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
    gust__http1_chunked_init(&st, 11, 1024);
    assert_int_equal(gust__http1_chunked_decode(&st, buf, strlen(buf), &n),
                     (ssize_t)strlen(buf));
    assert_int_equal(n, 11);

    /* trailer section bound: "A: bc\r\n\r\n" is 9 bytes */
    strcpy(buf, "0\r\nA: bc\r\n\r\n");
    gust__http1_chunked_init(&st, UINT64_MAX, 9);
    assert_int_equal(gust__http1_chunked_decode(&st, buf, strlen(buf), &n),
                     (ssize_t)strlen(buf));
    strcpy(buf, "0\r\nA: bcd\r\n\r\n");
    gust__http1_chunked_init(&st, UINT64_MAX, 9);
    assert_int_equal(gust__http1_chunked_decode(&st, buf, strlen(buf), &n),
                     GUST_HTTP1_ERROR);
    assert_int_equal(st.error_status, 431);

    /* chunk-size line bound */
    memset(buf, '0', sizeof buf);
    gust__http1_chunked_init(&st, UINT64_MAX, 1024);
    for (int i = 0; i < GUST_HTTP1_MAX_CHUNK_LINE / (int)sizeof buf; i++)
        assert_int_equal(gust__http1_chunked_decode(&st, buf, sizeof buf, &n),
                         GUST_HTTP1_INCOMPLETE);
    assert_int_equal(gust__http1_chunked_decode(&st, buf, 1, &n), GUST_HTTP1_ERROR);
    assert_int_equal(st.error_status, 400);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_requests),
        cmocka_unit_test(test_browser_request_headers),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_too_many_headers),
        cmocka_unit_test(test_head_size_limit),
        cmocka_unit_test(test_framing),
        cmocka_unit_test(test_splits_valid),
        cmocka_unit_test(test_splits_bad),
        cmocka_unit_test(test_guard_page),
        cmocka_unit_test(test_valid_responses),
        cmocka_unit_test(test_bad_responses),
        cmocka_unit_test(test_response_limits),
        cmocka_unit_test(test_response_framing),
        cmocka_unit_test(test_response_chunked_body),
        cmocka_unit_test(test_response_splits),
        cmocka_unit_test(test_response_guard_page),
        cmocka_unit_test(test_chunked_splits),
        cmocka_unit_test(test_chunked_errors_split_and_guard),
        cmocka_unit_test(test_chunked_limits),
    };
    alarm(120);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
