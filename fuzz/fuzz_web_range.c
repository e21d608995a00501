/* libFuzzer target: the web parts that read request bytes: Range headers,
 * Accept-Encoding, signed values and XSRF tokens. The input is copied into
 * a heap block of exactly its size so that any over-read is caught; the
 * arena is closed each run (leaks are caught by LeakSanitizer).
 * Invariants:
 *   - a partial range is non-empty, lies inside the representation and is
 *     not the whole of it; the same header on a representation of size 0
 *     is never partial;
 *   - decoding a signed value never crashes, and whatever decodes is in
 *     the version 2 format;
 *   - a value created from the input decodes back to the input (up to its
 *     first NUL);
 *   - an XSRF token that decodes re-encodes and decodes to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gust/web.h"
#include "web_parts.h"
#include "fuzz.h"

static const char *const secrets[] = {"fuzz secret", "second", NULL};

static void check_range(gust_str in, uint64_t rep_size)
{
    uint64_t start = 0, len = 0;
    gust__range_result r = gust__static_parse_range(in, rep_size, &start, &len);
    CHECK(r == GUST__RANGE_FULL || r == GUST__RANGE_PARTIAL ||
          r == GUST__RANGE_UNSATISFIABLE);
    if (r == GUST__RANGE_PARTIAL) {
        CHECK(len > 0 && start < rep_size && len <= rep_size - start);
        CHECK(!(start == 0 && len == rep_size));
    }
    CHECK(gust__static_parse_range(in, 0, &start, &len) !=
          GUST__RANGE_PARTIAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    gust_str in = gust_str_make(buf, size);
    gust_arena arena;
    gust_arena_init(&arena, 0);

    /* Range, against a few sizes, one taken from the input. */
    uint64_t sz = 0;
    for (size_t i = 0; i < size && i < 8; i++)
        sz = sz << 8 | (uint8_t)buf[i];
    check_range(in, 1);
    check_range(in, 1000);
    check_range(in, sz);
    check_range(in, UINT64_MAX);

    /* Accept-Encoding: the whole input as one header value (only valid
     * field values can be added). */
    gust_http_headers h;
    gust_http_headers_init(&h, &arena);
    if (gust_http_headers_add(&h, GUST_STR("Accept-Encoding"), in, 0) == 0)
        (void)gust__gzip_accepted(&h);
    (void)gust__gzip_type_compressible(in);

    /* Signed values and XSRF tokens take C strings. */
    char *cstr = gust_str_dup(&arena, in);
    CHECK(cstr != NULL);
    char *dec = gust_decode_signed_value(&arena, secrets, "n", cstr, 31,
                                         (time_t)2000000000);
    if (dec)
        CHECK(strncmp(cstr, "2|", 2) == 0);
    char *sv = gust_create_signed_value(&arena, secrets, 1, "n", cstr,
                                        (time_t)1700000000);
    CHECK(sv != NULL);
    char *back = gust_decode_signed_value(&arena, secrets, "n", sv, 31,
                                          (time_t)1700000000);
    CHECK(back != NULL && strcmp(back, cstr) == 0);

    unsigned char tok[GUST__XSRF_TOKEN_BYTES], tok2[GUST__XSRF_TOKEN_BYTES];
    time_t ts = 0, ts2 = 0;
    if (gust__xsrf_decode(in, tok, &ts) == 0) {
        char *enc = gust__xsrf_encode(&arena, tok, ts);
        CHECK(enc != NULL);
        CHECK(gust__xsrf_decode(gust_str_cstr(enc), tok2, &ts2) == 0);
        CHECK(gust__xsrf_equal(tok, tok2) && ts == ts2);
    }
    (void)gust__mime_type(cstr);

    gust_arena_close(&arena);
    free(buf);
    return 0;
}
