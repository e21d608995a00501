/* XSRF tokens in Tornado's formats (web_parts.h).
 *
 * Version 2, "2|<mask>|<masked token>|<timestamp>": the 16 token bytes
 * XORed with a fresh 4-byte mask (repeated), both in hex. A new mask per
 * page means the token's bytes differ in every response, so compression
 * side channels (BREACH) cannot recover it from compressed pages. Version
 * 1 is the token in plain hex, still read because Tornado applications
 * may have set such cookies. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "web_parts.h"

#define MASK_BYTES 4

static const char hexdigits[] = "0123456789abcdef";

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Exactly 2 * n hex digits (either case, as Python's a2b_hex) into out. */
static bool unhex(gust_str s, unsigned char *out, size_t n)
{
    if (s.len != 2 * n)
        return false;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval(s.ptr[2 * i]), lo = hexval(s.ptr[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

static char *put_hex(char *dst, const unsigned char *src, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *dst++ = hexdigits[src[i] >> 4];
        *dst++ = hexdigits[src[i] & 15];
    }
    return dst;
}

int gust__xsrf_random(unsigned char token[GUST__XSRF_TOKEN_BYTES])
{
    return RAND_bytes(token, GUST__XSRF_TOKEN_BYTES) == 1 ? 0 : -EIO;
}

char *gust__xsrf_encode(gust_arena *arena,
                        const unsigned char token[GUST__XSRF_TOKEN_BYTES],
                        time_t timestamp)
{
    unsigned char mask[MASK_BYTES], masked[GUST__XSRF_TOKEN_BYTES];
    if (RAND_bytes(mask, MASK_BYTES) != 1)
        return NULL;
    for (size_t i = 0; i < GUST__XSRF_TOKEN_BYTES; i++)
        masked[i] = token[i] ^ mask[i % MASK_BYTES];
    /* "2|" 8 "|" 32 "|" timestamp */
    char buf[2 + 2 * MASK_BYTES + 1 + 2 * GUST__XSRF_TOKEN_BYTES + 1 + 24];
    char *p = buf;
    *p++ = '2';
    *p++ = '|';
    p = put_hex(p, mask, MASK_BYTES);
    *p++ = '|';
    p = put_hex(p, masked, GUST__XSRF_TOKEN_BYTES);
    *p++ = '|';
    int n = snprintf(p, sizeof buf - (size_t)(p - buf), "%lld",
                     (long long)timestamp);
    return gust_arena_strndup(arena, buf, (size_t)(p - buf) + (size_t)n);
}

/* Splits s on '|' into exactly n parts; false for any other count. */
static bool split_bars(gust_str s, gust_str *parts, size_t n)
{
    const char *p = s.ptr, *end = s.ptr + s.len;
    for (size_t i = 0; i < n; i++) {
        const char *bar = memchr(p, '|', (size_t)(end - p));
        if ((bar == NULL) != (i == n - 1))
            return false;
        const char *stop = bar ? bar : end;
        parts[i] = gust_str_make(p, (size_t)(stop - p));
        p = bar ? bar + 1 : end;
    }
    return true;
}

static bool parse_timestamp(gust_str s, time_t *out)
{
    size_t i = s.len > 0 && s.ptr[0] == '-';
    if (i == s.len || s.len - i > 18)
        return false;
    long long v = 0;
    for (size_t j = i; j < s.len; j++) {
        if (s.ptr[j] < '0' || s.ptr[j] > '9')
            return false;
        v = v * 10 + (s.ptr[j] - '0');
    }
    *out = (time_t)(i ? -v : v);
    return true;
}

int gust__xsrf_decode(gust_str s, unsigned char token[GUST__XSRF_TOKEN_BYTES],
                      time_t *timestamp)
{
    if (!s.ptr)
        return -EINVAL;
    /* Tornado tells the versions apart by a leading "<digits>|"; a version
     * 1 token is hex, so it never has a '|'. */
    size_t d = 0;
    while (d < s.len && s.ptr[d] >= '0' && s.ptr[d] <= '9')
        d++;
    if (d > 0 && d < s.len && s.ptr[d] == '|' && s.ptr[0] != '0') {
        gust_str part[4]; /* version, mask, masked token, timestamp */
        unsigned char mask[MASK_BYTES], masked[GUST__XSRF_TOKEN_BYTES];
        time_t t;
        if (!split_bars(s, part, 4) || !gust_str_eq(part[0], GUST_STR("2")) ||
            !unhex(part[1], mask, MASK_BYTES) ||
            !unhex(part[2], masked, GUST__XSRF_TOKEN_BYTES) ||
            !parse_timestamp(part[3], &t))
            return -EINVAL;
        for (size_t i = 0; i < GUST__XSRF_TOKEN_BYTES; i++)
            token[i] = masked[i] ^ mask[i % MASK_BYTES];
        if (timestamp)
            *timestamp = t;
        return 0;
    }
    if (!unhex(s, token, GUST__XSRF_TOKEN_BYTES))
        return -EINVAL;
    if (timestamp)
        *timestamp = 0;
    return 0;
}

bool gust__xsrf_equal(const unsigned char a[GUST__XSRF_TOKEN_BYTES],
                      const unsigned char b[GUST__XSRF_TOKEN_BYTES])
{
    return CRYPTO_memcmp(a, b, GUST__XSRF_TOKEN_BYTES) == 0;
}
