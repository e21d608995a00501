/* libFuzzer target: the request head parser and the framing decision.
 * Checks that the parser never reads outside its input (the input sits in a
 * heap block of exactly its size), that every slice lies inside the head,
 * that parsed values are what the grammar allows, that feeding the bytes
 * in two pieces, with or without the prev_len hint, gives the same result,
 * and that gust__http1_parse_fields() alone reads the same fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http1_parser.h"
#include "fuzz.h"

static void check_slice(gust__http1_slice s, const char *buf, int head)
{
    CHECK(s.ptr >= buf && s.len <= (size_t)head &&
          (size_t)(s.ptr - buf) <= (size_t)head - s.len);
}

static void check_same(int n1, const gust__http1_request *a, int n2,
                       const gust__http1_request *b)
{
    CHECK(n1 == n2);
    if (n1 == GUST_HTTP1_ERROR)
        CHECK(a->error_status == b->error_status &&
              a->error_offset == b->error_offset);
    if (n1 <= 0)
        return;
    CHECK(a->method.ptr == b->method.ptr && a->method.len == b->method.len);
    CHECK(a->target.ptr == b->target.ptr && a->target.len == b->target.len);
    CHECK(a->minor_version == b->minor_version);
    CHECK(a->num_headers == b->num_headers);
    for (size_t i = 0; i < a->num_headers; i++)
        CHECK(memcmp(&a->headers[i], &b->headers[i], sizeof a->headers[i]) == 0);
}

static void check_request(const char *buf, size_t size, int n,
                          const gust__http1_request *req, size_t max_head)
{
    if (n == GUST_HTTP1_INCOMPLETE) {
        CHECK(size < max_head);
        return;
    }
    if (n == GUST_HTTP1_ERROR) {
        CHECK(req->error_reason != NULL);
        CHECK(req->error_status == 400 || req->error_status == 414 ||
              req->error_status == 431 ||
              req->error_status == 505);
        CHECK(req->error_offset <= size);
        return;
    }
    CHECK(n > 0 && (size_t)n <= size && (size_t)n <= max_head);
    CHECK(memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    check_slice(req->method, buf, n);
    check_slice(req->target, buf, n);
    CHECK(req->method.len > 0 && req->target.len > 0);
    CHECK(req->minor_version == 0 || req->minor_version == 1);
    CHECK(req->num_headers <= GUST_HTTP1_MAX_HEADERS);
    for (size_t i = 0; i < req->target.len; i++) {
        unsigned char c = (unsigned char)req->target.ptr[i];
        CHECK(c > 0x20 && c < 0x7f);
    }
    for (size_t i = 0; i < req->num_headers; i++) {
        const gust__http1_header *h = &req->headers[i];
        check_slice(h->name, buf, n);
        check_slice(h->value, buf, n);
        CHECK(h->name.len > 0);
        CHECK(memchr(h->name.ptr, ':', h->name.len) == NULL);
        for (size_t k = 0; k < h->value.len; k++) {
            unsigned char c = (unsigned char)h->value.ptr[k];
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (h->value.len > 0) {
            char first = h->value.ptr[0], last = h->value.ptr[h->value.len - 1];
            CHECK(first != ' ' && first != '\t' && last != ' ' && last != '\t');
        }
    }
}

/* The field section on its own (after " HTTP/x.y" CRLF) gives the same
 * fields as the request parser, which inlines the same loop. */
static void check_fields_alone(const char *buf, size_t size, int n,
                               const gust__http1_request *req, size_t max_head)
{
    static gust__http1_header slots[GUST_HTTP1_MAX_HEADERS];
    gust__http1_fields f = {slots, GUST_HTTP1_MAX_HEADERS, 0, 0, 0, 0, NULL, 0};
    size_t off = (size_t)(req->target.ptr + req->target.len - buf) + 11;

    CHECK(gust__http1_parse_fields(buf, size, off, max_head, &f) == n);
    CHECK(f.num_headers == req->num_headers && f.num_folded == 0);
    CHECK(memcmp(slots, req->headers, f.num_headers * sizeof *slots) == 0);
}

/* An accepted Content-Length field holds only digits, commas and OWS, and
 * every number in it is the length the framing reports. */
static void check_content_length(gust__http1_slice v, uint64_t want)
{
    size_t i = 0;
    while (i < v.len) {
        unsigned char c = (unsigned char)v.ptr[i];
        if (c >= '0' && c <= '9') {
            uint64_t n = 0;
            while (i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9') {
                CHECK(n <= (UINT64_MAX - 9) / 10);
                n = n * 10 + (uint64_t)(v.ptr[i++] - '0');
            }
            CHECK(n == want);
        } else {
            CHECK(c == ',' || c == ' ' || c == '\t');
            i++;
        }
    }
}

static void check_framing(const char *buf, size_t size, int n,
                          const gust__http1_request *req)
{
    gust__http1_framing fr;
    size_t rest = size - (size_t)n;

    /* Smuggling guards, checked independently of the parser's own logic. */
    size_t te = 0, cl = 0, host = 0;
    for (size_t i = 0; i < req->num_headers; i++) {
        const gust__http1_slice *nm = &req->headers[i].name;
        te += nm->len == 17 && strncasecmp(nm->ptr, "transfer-encoding", 17) == 0;
        cl += nm->len == 14 && strncasecmp(nm->ptr, "content-length", 14) == 0;
        host += nm->len == 4 && strncasecmp(nm->ptr, "host", 4) == 0;
    }
    if (gust__http1_request_framing(req, &fr) == 0) {
        CHECK(!(te && cl));
        CHECK(!(te && req->minor_version == 0));
        CHECK(host <= 1 && (host == 1 || req->minor_version == 0));
        CHECK((te > 0) == (fr.body == GUST_HTTP1_BODY_CHUNKED));
        CHECK((cl > 0) == (fr.body == GUST_HTTP1_BODY_LENGTH));
        for (size_t i = 0; i < req->num_headers; i++) {
            const gust__http1_header *h = &req->headers[i];
            if (h->name.len == 14 && strncasecmp(h->name.ptr, "content-length", 14) == 0)
                check_content_length(h->value, fr.content_length);
        }
    } else {
        CHECK(fr.error_reason != NULL);
        CHECK(fr.error_status == 400 || fr.error_status == 501);
        return;
    }
    CHECK(fr.body != GUST_HTTP1_BODY_LENGTH ||
          fr.content_length <= GUST_HTTP1_MAX_CONTENT_LENGTH);
    CHECK(req->minor_version == 0 || fr.host.ptr != NULL);
    if (fr.body != GUST_HTTP1_BODY_CHUNKED)
        return;
    CHECK(req->minor_version == 1);
    fuzz_check_chunked(buf + n, rest);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static gust__http1_header whole_slots[GUST_HTTP1_MAX_HEADERS];
    static gust__http1_header part_slots[GUST_HTTP1_MAX_HEADERS];
    gust__http1_request *whole = malloc(sizeof *whole);
    gust__http1_request *part = malloc(sizeof *part);
    if (whole)
        *whole = (gust__http1_request){.headers = whole_slots,
                                       .max_headers = GUST_HTTP1_MAX_HEADERS};
    if (part)
        *part = (gust__http1_request){.headers = part_slots,
                                      .max_headers = GUST_HTTP1_MAX_HEADERS};
    char *buf = malloc(size ? size : 1);
    size_t max_head = 8192, step;
    int n, m;

    if (!whole || !part || !buf)
        goto out;
    memcpy(buf, data, size);

    n = gust__http1_parse_request(buf, size, 0, max_head, whole);
    check_request(buf, size, n, whole, max_head);
    if (n > 0) {
        check_framing(buf, size, n, whole);
        check_fields_alone(buf, size, n, whole, max_head);
    }

    /* Any split: the prefix is INCOMPLETE or already the final answer, and
     * continuing with the hint reaches the same answer. Long inputs are
     * sampled to keep the fuzzer fast. */
    step = size <= 256 ? 1 : size / 128;
    for (size_t k = 0; k < size; k += step) {
        m = gust__http1_parse_request(buf, k, 0, max_head, part);
        if (m != GUST_HTTP1_INCOMPLETE) {
            check_same(n, whole, m, part);
            continue;
        }
        m = gust__http1_parse_request(buf, size, k, max_head, part);
        /* the hint may defer an error until the head ends (documented) */
        if (n == GUST_HTTP1_ERROR && m == GUST_HTTP1_INCOMPLETE)
            continue;
        check_same(n, whole, m, part);
    }

    /* A smaller head limit: same answer when the head fits, else 431 unless
     * an error comes first. */
    if (size > 1) {
        size_t small = size / 2;
        m = gust__http1_parse_request(buf, size, 0, small, part);
        check_request(buf, size, m, part, small);
        if (n > 0 && (size_t)n <= small)
            check_same(n, whole, m, part);
        if (n == GUST_HTTP1_ERROR && whole->error_offset < small)
            check_same(n, whole, m, part);
    }
out:
    free(whole);
    free(part);
    free(buf);
    return 0;
}
