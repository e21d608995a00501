/* gzip for responses (web_parts.h): which types to compress, whether the
 * client accepts it, and a streaming encoder on zlib. Tornado's
 * GZipContentEncoding, with Accept-Encoding read properly (q-values)
 * instead of looking for the substring "gzip". */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "web_parts.h"

/* Tornado's CONTENT_TYPES: types outside text/ that compress well. */
static const gust_str compressible[] = {
    GUST_STR("application/javascript"), GUST_STR("application/x-javascript"),
    GUST_STR("application/xml"),        GUST_STR("application/atom+xml"),
    GUST_STR("application/json"),       GUST_STR("application/xhtml+xml"),
    GUST_STR("image/svg+xml"),
};

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static gust_str trim(gust_str s)
{
    while (s.len && is_ows(s.ptr[0])) {
        s.ptr++;
        s.len--;
    }
    while (s.len && is_ows(s.ptr[s.len - 1]))
        s.len--;
    return s;
}

bool gust__gzip_type_compressible(gust_str content_type)
{
    if (!content_type.ptr)
        return false;
    const char *semi = memchr(content_type.ptr, ';', content_type.len);
    gust_str type = trim(gust_str_make(
        content_type.ptr,
        semi ? (size_t)(semi - content_type.ptr) : content_type.len));
    if (type.len > 5 && gust_str_eq_nocase(gust_str_make(type.ptr, 5),
                                           GUST_STR("text/")))
        return true;
    for (size_t i = 0; i < sizeof compressible / sizeof compressible[0]; i++) {
        if (gust_str_eq_nocase(type, compressible[i]))
            return true;
    }
    return false;
}

/* A qvalue (RFC 9110 section 12.4.2): "0", "0.5", "1", "1.000"... in
 * thousandths, or -1 when malformed. */
static int parse_qvalue(gust_str v)
{
    if (v.len == 0 || (v.ptr[0] != '0' && v.ptr[0] != '1'))
        return -1;
    int whole = v.ptr[0] - '0', frac = 0, digits = 0;
    if (v.len > 1) {
        if (v.ptr[1] != '.' || v.len > 5)
            return -1;
        for (size_t i = 2; i < v.len; i++) {
            if (v.ptr[i] < '0' || v.ptr[i] > '9')
                return -1;
            frac = frac * 10 + (v.ptr[i] - '0');
            digits++;
        }
    }
    while (digits++ < 3)
        frac *= 10;
    if (whole == 1 && frac != 0)
        return -1;
    return whole * 1000 + frac;
}

/* The q of one list member "coding;q=0.5;x=y" (1000 when none is given,
 * -1 when the q parameter is malformed), and its coding name. */
static int member_q(gust_str member, gust_str *coding)
{
    const char *semi = memchr(member.ptr, ';', member.len);
    *coding = trim(gust_str_make(
        member.ptr, semi ? (size_t)(semi - member.ptr) : member.len));
    int q = 1000;
    while (semi) {
        const char *start = semi + 1, *end = member.ptr + member.len;
        semi = memchr(start, ';', (size_t)(end - start));
        gust_str param =
            trim(gust_str_make(start, (size_t)((semi ? semi : end) - start)));
        if (param.len >= 2 && (param.ptr[0] == 'q' || param.ptr[0] == 'Q') &&
            param.ptr[1] == '=')
            q = parse_qvalue(trim(gust_str_make(param.ptr + 2, param.len - 2)));
        if (q < 0)
            return -1;
    }
    return q;
}

bool gust__gzip_accepted(const gust_http_headers *request_headers)
{
    /* gzip (or its alias x-gzip) when listed with q > 0; else "*" with
     * q > 0 when gzip is not listed at all (RFC 9110 section 12.5.3). */
    int gzip_q = -1, star_q = -1;
    size_t cursor = 0;
    gust_str value;
    while (gust_http_headers_next(request_headers, GUST_STR("Accept-Encoding"),
                                  &cursor, &value)) {
        const char *p = value.ptr, *end = value.ptr + value.len;
        while (p < end) {
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *stop = comma ? comma : end;
            gust_str coding;
            int q = member_q(gust_str_make(p, (size_t)(stop - p)), &coding);
            if (q >= 0) {
                if (gust_str_eq_nocase(coding, GUST_STR("gzip")) ||
                    gust_str_eq_nocase(coding, GUST_STR("x-gzip"))) {
                    if (q > gzip_q)
                        gzip_q = q;
                } else if (gust_str_eq(coding, GUST_STR("*"))) {
                    if (q > star_q)
                        star_q = q;
                }
            }
            p = comma ? comma + 1 : end;
        }
    }
    if (gzip_q >= 0)
        return gzip_q > 0;
    return star_q > 0;
}

struct gust__gzip {
    z_stream zs;
    bool done; /* the trailer was written */
};

gust__gzip *gust__gzip_new(void)
{
    gust__gzip *z = calloc(1, sizeof *z);
    if (!z)
        return NULL;
    /* windowBits 15 + 16: a gzip header and trailer instead of zlib's. */
    if (deflateInit2(&z->zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK) {
        free(z);
        return NULL;
    }
    return z;
}

int gust__gzip_write(gust__gzip *z, const void *in, size_t len, bool flush,
                     bool last, gust__gzip_emit emit, void *data)
{
    if (z->done)
        return -EINVAL;
    unsigned char out[16384];
    int mode = last ? Z_FINISH : flush ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    const unsigned char *src = in;
    /* avail_in is a uInt: feed huge inputs in slices. */
    do {
        uInt slice = len > (size_t)UINT32_MAX / 2 ? UINT32_MAX / 2 : (uInt)len;
        z->zs.next_in = (unsigned char *)(uintptr_t)src;
        z->zs.avail_in = slice;
        src += slice;
        len -= slice;
        int m = len ? Z_NO_FLUSH : mode;
        int rc;
        do {
            z->zs.next_out = out;
            z->zs.avail_out = sizeof out;
            rc = deflate(&z->zs, m);
            if (rc == Z_STREAM_ERROR)
                return -EINVAL;
            size_t n = sizeof out - z->zs.avail_out;
            if (n) {
                int erc = emit(out, n, data);
                if (erc < 0)
                    return erc;
            }
            if (rc == Z_BUF_ERROR && n == 0)
                break; /* nothing left to do for this call */
            /* Output filled up: deflate has more for the same call. */
        } while (z->zs.avail_out == 0 || (m == Z_FINISH && rc != Z_STREAM_END));
    } while (len);
    if (last)
        z->done = true;
    return 0;
}

void gust__gzip_free(gust__gzip *z)
{
    if (!z)
        return;
    deflateEnd(&z->zs);
    free(z);
}
