/* HTTP/1 request parser: valid and malformed tables (RFC 9110/9112 and
 * request-smuggling classics), split-invariance properties, guard-page
 * over-read checks, and the chunked decoder. */
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
    gust__http1_request req;
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
        gust__http1_request req;
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
            gust__http1_request req2;
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
    gust__http1_request req;
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
    gust__http1_request req;
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
    gust__http1_request req;
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
        gust__http1_request req;
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
    gust__http1_request whole, part;
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
    gust__http1_request req, ref;
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
        cmocka_unit_test(test_chunked_splits),
        cmocka_unit_test(test_chunked_errors_split_and_guard),
        cmocka_unit_test(test_chunked_limits),
    };
    alarm(120);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
