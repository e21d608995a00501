/* libFuzzer target: the chunked body decoder. The input is a chunked body
 * (maybe followed by a next request); it is decoded whole, then again in
 * pieces whose sizes come from a PRNG seeded by the input, each piece in a
 * heap block of exactly its size. Both runs must agree on the data, the
 * result, the status and the consumed length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http1_parser.h"
#include "fuzz.h"

#define MAX_BODY ((uint64_t)1 << 16)
#define MAX_TRAILER 512

struct run {
    ssize_t rc;          /* final result */
    size_t consumed;     /* bytes of input up to the end of the body */
    size_t data_len;
    int status;
};

static void decode(const uint8_t *in, size_t size, uint64_t seed, char *out,
                   struct run *r)
{
    gust__http1_chunked st;
    size_t at = 0;

    gust__http1_chunked_init(&st, MAX_BODY, MAX_TRAILER);
    r->rc = GUST_HTTP1_INCOMPLETE;
    r->data_len = 0;
    r->consumed = 0;
    r->status = 0;
    do {
        size_t len = size - at, n;
        char *piece;
        if (seed) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            len = seed % 9 == 0 ? 0 : 1 + seed % 17; /* empty pieces too */
            if (len > size - at)
                len = size - at;
        }
        piece = malloc(len ? len : 1);
        if (!piece)
            abort();
        memcpy(piece, in + at, len);
        r->rc = gust__http1_chunked_decode(&st, piece, len, &n);
        CHECK(n <= len);
        CHECK(r->rc == GUST_HTTP1_INCOMPLETE || r->rc == GUST_HTTP1_ERROR ||
              (r->rc >= 0 && (size_t)r->rc <= len && n <= (size_t)r->rc));
        if (r->rc >= 0) /* bytes after the body are untouched */
            CHECK(memcmp(piece + r->rc, in + at + r->rc, len - (size_t)r->rc) == 0);
        memcpy(out + r->data_len, piece, n);
        r->data_len += n;
        free(piece);
        if (r->rc >= 0)
            r->consumed = at + (size_t)r->rc;
        at += len;
    } while (r->rc == GUST_HTTP1_INCOMPLETE && at < size);
    if (r->rc == GUST_HTTP1_ERROR) {
        CHECK(st.error_reason != NULL);
        CHECK(st.error_status == 400 || st.error_status == 413 ||
              st.error_status == 431);
        r->status = st.error_status;
    }
    CHECK(r->data_len <= MAX_BODY);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *out1 = malloc(size + 1), *out2 = malloc(size + 1);
    struct run whole, parts;
    uint64_t seed = 0x2545f4914f6cdd1du;

    if (!out1 || !out2)
        abort();
    for (size_t i = 0; i < size && i < 8; i++)
        seed = seed * 131 + data[i];
    decode(data, size, 0, out1, &whole);
    decode(data, size, seed | 1, out2, &parts);
    /* a body that ended must have ended at the same byte with the same data;
     * errors are found at the same byte, so with the same data before them */
    CHECK(whole.rc == parts.rc || (whole.rc >= 0 && parts.rc >= 0));
    CHECK(whole.consumed == parts.consumed);
    CHECK(whole.status == parts.status);
    CHECK(whole.data_len == parts.data_len);
    CHECK(memcmp(out1, out2, whole.data_len) == 0);
    free(out1);
    free(out2);
    return 0;
}
