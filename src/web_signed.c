/* Signed values in Tornado's version 2 format (web.h): the format behind
 * signed cookies, so that Gust and Tornado applications sharing a secret
 * read each other's values.
 *
 *   2|1:0|10:1700000000|4:name|8:dmFsdWU=|<64 hex digits>
 *
 * version, then length-prefixed fields (key version, timestamp, name,
 * base64 value), then the HMAC-SHA256 (lower-case hex) of everything
 * before it, final '|' included. Only version 2 is read: version 1 used
 * HMAC-SHA1 over fields without separators (forgeable by moving digits
 * between them) and Tornado itself has written version 2 since 3.2. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "gust/web.h"

#define SIG_HEX_LEN 64 /* SHA-256 in hex */

static const char hexdigits[] = "0123456789abcdef";

/* Seconds a signed value's timestamp may be ahead of our clock. */
#define SIGNED_SKEW 300

/* Lower-case hex HMAC-SHA256 of msg under secret into out (65 bytes). */
static int sign(const char *secret, const char *msg, size_t len,
                char out[SIG_HEX_LEN + 1])
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    size_t slen = strlen(secret);
    if (slen > INT_MAX ||
        !HMAC(EVP_sha256(), secret, (int)slen, (const unsigned char *)msg,
              len, mac, &maclen) ||
        maclen * 2 != SIG_HEX_LEN)
        return -EIO;
    for (unsigned i = 0; i < maclen; i++) {
        out[2 * i] = hexdigits[mac[i] >> 4];
        out[2 * i + 1] = hexdigits[mac[i] & 15];
    }
    out[SIG_HEX_LEN] = '\0';
    return 0;
}

/* The secret of key version kv, or NULL when the list has no such entry. */
static const char *secret_for(const char *const *secrets, long long kv)
{
    if (kv < 0)
        return NULL;
    for (long long i = 0; secrets[i]; i++) {
        if (i == kv)
            return secrets[i];
    }
    return NULL;
}

char *gust_create_signed_value(gust_arena *arena, const char *const *secrets,
                               int key_version, const char *name,
                               const char *value, time_t now)
{
    assert(arena && secrets && name && value);
    const char *secret = secret_for(secrets, key_version);
    if (!secret) {
        errno = EINVAL;
        return NULL;
    }
    size_t vlen = strlen(value);
    /* base64 grows by 4/3; EVP_EncodeBlock takes an int length. */
    if (vlen > (size_t)INT_MAX / 4 * 3 - 3) {
        errno = EINVAL;
        return NULL;
    }
    char *b64 = gust_arena_alloc(arena, (vlen + 2) / 3 * 4 + 1);
    if (!b64) {
        errno = ENOMEM;
        return NULL;
    }
    int b64len = EVP_EncodeBlock((unsigned char *)b64,
                                 (const unsigned char *)value, (int)vlen);
    /* The same bytes as Tornado's format_field(): a decimal length, ':',
     * the field; the signature covers everything up to the last '|'. */
    char kv[24], ts[24];
    int kvlen = snprintf(kv, sizeof kv, "%d", key_version);
    int tslen = snprintf(ts, sizeof ts, "%lld", (long long)now);
    size_t len = 0;
    char *out = gust_arena_sprintf(arena, "2|%d:%s|%d:%s|%zu:%s|%d:%s|", kvlen,
                                   kv, tslen, ts, strlen(name), name, b64len,
                                   b64);
    if (!out) {
        errno = ENOMEM;
        return NULL;
    }
    len = strlen(out);
    char sig[SIG_HEX_LEN + 1];
    if (sign(secret, out, len, sig) < 0) {
        errno = EIO;
        return NULL;
    }
    /* out is the arena's latest allocation: this usually grows in place. */
    char *res = gust_arena_realloc(arena, out, len + 1, len + SIG_HEX_LEN + 1);
    if (!res) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(res + len, sig, SIG_HEX_LEN + 1);
    return res;
}

/* Reads "<len>:<bytes>|" at *p (before end): sets *field and moves *p past
 * the '|'. Lengths are plain decimal digits, as Tornado writes them. */
static bool consume_field(const char **p, const char *end, gust_str *field)
{
    const char *q = *p;
    size_t n = 0;
    if (q == end || *q < '0' || *q > '9')
        return false;
    while (q < end && *q >= '0' && *q <= '9') {
        if (n > (size_t)(end - q))
            return false; /* longer than what is left: also stops overflow */
        n = n * 10 + (size_t)(*q++ - '0');
    }
    if (q == end || *q++ != ':' || n >= (size_t)(end - q) || q[n] != '|')
        return false;
    *field = gust_str_make(q, n);
    *p = q + n + 1;
    return true;
}

/* An optionally negative decimal integer filling the whole of s. */
static bool parse_int(gust_str s, long long *out)
{
    size_t i = 0;
    bool neg = s.len > 0 && s.ptr[0] == '-';
    i = neg;
    if (i == s.len || s.len - i > 18)
        return false;
    long long v = 0;
    for (; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
        v = v * 10 + (s.ptr[i] - '0');
    }
    *out = neg ? -v : v;
    return true;
}

/* Strict base64 (standard alphabet, padded) into a NUL-terminated arena
 * string. EVP_DecodeBlock counts padding as zero bytes, so the '='s are
 * checked and subtracted here. */
static char *base64_decode(gust_arena *arena, gust_str in)
{
    if (in.len % 4 != 0 || in.len > (size_t)INT_MAX)
        return NULL;
    size_t pad = 0;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.ptr[i];
        if (c == '=') {
            if (i + 2 < in.len)
                return NULL;
            pad++;
        } else if (pad || !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '+' || c == '/')) {
            return NULL;
        }
    }
    char *out = gust_arena_alloc(arena, in.len / 4 * 3 + 1);
    if (!out)
        return NULL;
    int n = EVP_DecodeBlock((unsigned char *)out,
                            (const unsigned char *)in.ptr, (int)in.len);
    if (n < 0 || (size_t)n < pad)
        return NULL;
    out[(size_t)n - pad] = '\0';
    return out;
}

char *gust_decode_signed_value(gust_arena *arena, const char *const *secrets,
                               const char *name, const char *signed_value,
                               double max_age_days, time_t now)
{
    assert(arena && secrets && name);
    if (!signed_value)
        return NULL;
    size_t total = strlen(signed_value);
    const char *p = signed_value, *end = signed_value + total;
    if (total < 2 || p[0] != '2' || p[1] != '|')
        return NULL;
    p += 2;
    /* The fields are parsed first only to find where the signature starts;
     * nothing in them is trusted before it verifies. */
    gust_str kv, ts, nm, val;
    if (!consume_field(&p, end, &kv) || !consume_field(&p, end, &ts) ||
        !consume_field(&p, end, &nm) || !consume_field(&p, end, &val))
        return NULL;
    long long key_version, timestamp;
    if (!parse_int(kv, &key_version) || !parse_int(ts, &timestamp))
        return NULL;
    const char *secret = secret_for(secrets, key_version);
    if (!secret)
        return NULL;
    char expected[SIG_HEX_LEN + 1];
    if ((size_t)(end - p) != SIG_HEX_LEN ||
        sign(secret, signed_value, (size_t)(p - signed_value), expected) < 0)
        return NULL;
    /* Constant time: the position of the first wrong digit must not leak. */
    if (CRYPTO_memcmp(p, expected, SIG_HEX_LEN) != 0)
        return NULL;
    if (!gust_str_eq(nm, gust_str_cstr(name)))
        return NULL;
    /* The name is signed too, so a value cannot be replayed under another
     * cookie name. A timestamp far ahead of our clock is refused (Tornado's
     * version 2 does not check): the servers behind one balancer may
     * differ by seconds, so up to SIGNED_SKEW is allowed. */
    if (max_age_days <= 0)
        max_age_days = 31;
    if ((double)timestamp < (double)now - max_age_days * 86400.0 ||
        timestamp > (long long)now + SIGNED_SKEW)
        return NULL;
    return base64_decode(arena, val);
}
