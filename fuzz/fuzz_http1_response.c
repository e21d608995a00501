/* libFuzzer target: the response head parser (both obs-fold modes), the
 * response framing for a few request methods, and the chunked body that
 * follows when the framing says so. Checks that the parser never reads
 * outside its input (a heap block of exactly its size), that every slice
 * lies inside the head and holds what the grammar allows, that the obs-fold
 * mode changes nothing for a head without folds, that the framing follows
 * RFC 9112 section 6.3, and that feeding the bytes in two pieces, with or
 * without the prev_len hint, gives the same result. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http1_parser.h"
#include "fuzz.h"

#define SLOTS 64

typedef struct resp_buf {
    gust__http1_response r;
    gust__http1_header slots[SLOTS];
} resp_buf;

static int parse(const char *buf, size_t len, size_t prev, size_t max_head,
                 unsigned flags, resp_buf *rb)
{
    rb->r.headers = rb->slots;
    rb->r.max_headers = SLOTS;
    return gust__http1_parse_response(buf, len, prev, max_head, flags, &rb->r);
}

static void check_slice(gust__http1_slice s, const char *buf, int head)
{
    CHECK(s.ptr >= buf && s.len <= (size_t)head &&
          (size_t)(s.ptr - buf) <= (size_t)head - s.len);
}

static void check_same(int n1, const resp_buf *a, int n2, const resp_buf *b)
{
    CHECK(n1 == n2);
    if (n1 == GUST_HTTP1_ERROR)
        CHECK(a->r.error_status == b->r.error_status &&
              a->r.error_offset == b->r.error_offset);
    if (n1 <= 0)
        return;
    CHECK(a->r.minor_version == b->r.minor_version);
    CHECK(a->r.status == b->r.status);
    CHECK(a->r.reason.ptr == b->r.reason.ptr && a->r.reason.len == b->r.reason.len);
    CHECK(a->r.num_headers == b->r.num_headers);
    CHECK(a->r.num_folded == b->r.num_folded);
    for (size_t i = 0; i < a->r.num_headers; i++)
        CHECK(memcmp(&a->r.headers[i], &b->r.headers[i], sizeof a->r.headers[i]) == 0);
}

static int is_ows(unsigned char c) { return c == ' ' || c == '\t'; }

static void check_response(const char *buf, size_t size, int n,
                           const resp_buf *rb, size_t max_head, unsigned flags)
{
    const gust__http1_response *r = &rb->r;
    size_t folded = 0;

    if (n == GUST_HTTP1_INCOMPLETE) {
        CHECK(size < max_head);
        return;
    }
    if (n == GUST_HTTP1_ERROR) {
        CHECK(r->error_reason != NULL);
        CHECK(r->error_status == 400 || r->error_status == 431 ||
              r->error_status == 505);
        CHECK(r->error_offset <= size);
        return;
    }
    CHECK(n > 0 && (size_t)n <= size && (size_t)n <= max_head);
    CHECK(memcmp(buf, "HTTP/1.", 7) == 0);
    CHECK(memcmp(buf + n - 4, "\r\n\r\n", 4) == 0);
    CHECK(r->minor_version >= 0 && r->minor_version <= 9);
    CHECK(r->status >= 100 && r->status <= 999);
    check_slice(r->reason, buf, n);
    for (size_t i = 0; i < r->reason.len; i++) {
        unsigned char c = (unsigned char)r->reason.ptr[i];
        CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
    }
    CHECK(r->num_headers <= SLOTS);
    for (size_t i = 0; i < r->num_headers; i++) {
        const gust__http1_header *h = &r->headers[i];
        int has_crlf = 0;
        check_slice(h->name, buf, n);
        check_slice(h->value, buf, n);
        CHECK(h->name.len > 0);
        CHECK(memchr(h->name.ptr, ':', h->name.len) == NULL);
        for (size_t k = 0; k < h->name.len; k++)
            CHECK((unsigned char)h->name.ptr[k] > 0x20 &&
                  (unsigned char)h->name.ptr[k] < 0x7f);
        for (size_t k = 0; k < h->value.len; k++) {
            unsigned char c = (unsigned char)h->value.ptr[k];
            if (c == '\r' || c == '\n') {
                has_crlf = 1;
                /* only inside an obs-fold: CRLF then SP or HTAB */
                CHECK(flags & GUST_HTTP1_FIELDS_OBS_FOLD);
                if (c == '\r')
                    CHECK(k + 2 < h->value.len && h->value.ptr[k + 1] == '\n' &&
                          is_ows((unsigned char)h->value.ptr[k + 2]));
                continue;
            }
            CHECK(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        folded += (size_t)has_crlf;
        if (h->value.len > 0) {
            unsigned char first = (unsigned char)h->value.ptr[0];
            unsigned char last = (unsigned char)h->value.ptr[h->value.len - 1];
            CHECK(!is_ows(first) && !is_ows(last) && first != '\r' &&
                  first != '\n' && last != '\r' && last != '\n');
        }
    }
    /* a fold holding only whitespace leaves no CR in the value */
    CHECK(folded <= r->num_folded);
    CHECK((flags & GUST_HTTP1_FIELDS_OBS_FOLD) || r->num_folded == 0);
}

static size_t count_fields(const gust__http1_response *r, const char *name,
                           size_t len)
{
    size_t k = 0;
    for (size_t i = 0; i < r->num_headers; i++)
        k += r->headers[i].name.len == len &&
             strncasecmp(r->headers[i].name.ptr, name, len) == 0;
    return k;
}

/* RFC 9112 6.3, checked from the outside, then the chunked body. */
static void check_framing(const char *buf, size_t size, int n,
                          const gust__http1_response *r)
{
    static const char *const methods[] = {"GET", "HEAD", "CONNECT"};
    size_t te = count_fields(r, "transfer-encoding", 17);
    size_t cl = count_fields(r, "content-length", 14);

    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
        gust__http1_slice method = {methods[m], strlen(methods[m])};
        gust__http1_framing fr;
        int no_body = m == 1 || r->status < 200 || r->status == 204 ||
                      r->status == 304 || (m == 2 && r->status < 300);
        int rc = gust__http1_response_framing(r, method, &fr);

        if (rc != 0) {
            CHECK(rc == GUST_HTTP1_ERROR && fr.error_status == 400);
            CHECK(fr.error_reason != NULL);
            CHECK(!no_body && te == 0 && cl > 0);
            continue;
        }
        CHECK(fr.host.ptr == NULL && !fr.expect_continue && !fr.expect_other);
        if (no_body) {
            CHECK(fr.body == GUST_HTTP1_BODY_NONE);
            continue;
        }
        CHECK(fr.body != GUST_HTTP1_BODY_NONE);
        CHECK((te > 0) == (fr.body == GUST_HTTP1_BODY_CHUNKED ||
                           (fr.body == GUST_HTTP1_BODY_CLOSE && te > 0)));
        if (fr.body == GUST_HTTP1_BODY_LENGTH)
            CHECK(te == 0 && cl > 0 &&
                  fr.content_length <= GUST_HTTP1_MAX_CONTENT_LENGTH);
        if (fr.body == GUST_HTTP1_BODY_CLOSE || (te > 0 && cl > 0))
            CHECK(!fr.keep_alive);
        if (fr.keep_alive)
            CHECK(!fr.connection_close);

        if (fr.body == GUST_HTTP1_BODY_CHUNKED && m == 0)
            fuzz_check_chunked(buf + n, size - (size_t)n);
    }
}

/* Unfolding a copy leaves no CR or LF in any value. */
static void check_unfold(const char *buf, int n, const gust__http1_response *r)
{
    char *copy = malloc((size_t)n);
    if (!copy)
        return;
    memcpy(copy, buf, (size_t)n);
    for (size_t i = 0; i < r->num_headers; i++) {
        char *v = copy + (r->headers[i].value.ptr - buf);
        size_t len = r->headers[i].value.len;
        gust__http1_unfold(v, len);
        CHECK(memchr(v, '\r', len) == NULL && memchr(v, '\n', len) == NULL);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    resp_buf *whole = malloc(sizeof *whole), *part = malloc(sizeof *part);
    resp_buf *other = malloc(sizeof *other);
    char *buf = malloc(size ? size : 1);
    size_t max_head = 8192, step;

    if (!whole || !part || !other || !buf)
        goto out;
    memcpy(buf, data, size);

    for (unsigned flags = 0; flags <= GUST_HTTP1_FIELDS_OBS_FOLD; flags++) {
        int n = parse(buf, size, 0, max_head, flags, whole), m;

        check_response(buf, size, n, whole, max_head, flags);
        if (n > 0) {
            check_framing(buf, size, n, &whole->r);
            check_unfold(buf, n, &whole->r);
            /* A head without folds parses the same in the other mode. */
            if (whole->r.num_folded == 0) {
                m = parse(buf, size, 0, max_head, flags ^ GUST_HTTP1_FIELDS_OBS_FOLD,
                          other);
                check_same(n, whole, m, other);
            }
        }

        /* Any split: the prefix is INCOMPLETE or already the final answer,
         * and continuing with the hint reaches the same answer. */
        step = size <= 256 ? 1 : size / 128;
        for (size_t k = 0; k < size; k += step) {
            m = parse(buf, k, 0, max_head, flags, part);
            if (m != GUST_HTTP1_INCOMPLETE) {
                check_same(n, whole, m, part);
                continue;
            }
            m = parse(buf, size, k, max_head, flags, part);
            /* the hint may defer an error until the head ends (documented) */
            if (n == GUST_HTTP1_ERROR && m == GUST_HTTP1_INCOMPLETE)
                continue;
            check_same(n, whole, m, part);
        }

        /* A smaller head limit: same answer when the head fits, else 431
         * unless an error comes first. */
        if (size > 1) {
            size_t small = size / 2;
            m = parse(buf, size, 0, small, flags, part);
            check_response(buf, size, m, part, small, flags);
            if (n > 0 && (size_t)n <= small)
                check_same(n, whole, m, part);
            if (n == GUST_HTTP1_ERROR && whole->r.error_offset < small)
                check_same(n, whole, m, part);
        }
    }
out:
    free(whole);
    free(part);
    free(other);
    free(buf);
    return 0;
}
