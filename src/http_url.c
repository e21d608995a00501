/* Request targets, percent-encoding and absolute URLs (RFC 9112 section 3.2,
 * RFC 3986). See include/gust/http.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "gust/http.h"
#include "http_internal.h"

/* ------------------------------------------------------------------ */
/* Percent-decoding */

/* Decodes in[0..len) into out (which may be in itself: the write position
 * never passes the read position). Returns the output length or -EINVAL. */
static long decode(const char *in, size_t len, char *out, unsigned flags)
{
    size_t w = 0;
    for (size_t r = 0; r < len; r++) {
        unsigned char c = (unsigned char)in[r];
        if (c == '%') {
            if (r + 2 < len && gust__http_is((unsigned char)in[r + 1], GUST__CC_HEX) &&
                gust__http_is((unsigned char)in[r + 2], GUST__CC_HEX)) {
                c = (unsigned char)(gust__http_hexval((unsigned char)in[r + 1]) * 16 +
                                    gust__http_hexval((unsigned char)in[r + 2]));
                if (c == 0 && (flags & GUST_URL_NO_NUL))
                    return -EINVAL;
                r += 2;
            } else if (flags & GUST_URL_STRICT) {
                return -EINVAL;
            }
        } else if (c == '+' && (flags & GUST_URL_PLUS)) {
            c = ' ';
        } else if (c == 0 && (flags & GUST_URL_NO_NUL)) {
            return -EINVAL;
        }
        out[w++] = (char)c;
    }
    return (long)w;
}

int gust_url_unescape(gust_arena *arena, gust_str in, unsigned flags,
                      gust_str *out)
{
    bool plus = (flags & GUST_URL_PLUS) != 0;
    size_t i = 0;
    for (; i < in.len; i++) {
        if (in.ptr[i] == '%' || (plus && in.ptr[i] == '+'))
            break;
    }
    if (i == in.len) {
        if ((flags & GUST_URL_NO_NUL) && in.len && memchr(in.ptr, '\0', in.len))
            return -EINVAL;
        *out = in.ptr ? in : GUST_STR("");
        return 0;
    }
    if (in.len == (size_t)-1)
        return -ENOMEM;
    char *buf = gust_arena_alloc(arena, in.len + 1);
    if (!buf)
        return -ENOMEM;
    long n = decode(in.ptr, in.len, buf, flags);
    if (n < 0)
        return (int)n;
    buf[n] = '\0';
    *out = gust_str_make(buf, (size_t)n);
    return 0;
}

long gust_url_unescape_inplace(char *buf, size_t len, unsigned flags)
{
    return decode(buf, len, buf, flags);
}

static const char hexdigits[] = "0123456789ABCDEF";

int gust_url_escape(gust_arena *arena, gust_str in, unsigned flags,
                    gust_str *out)
{
    size_t extra = 0;
    bool change = false;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.ptr[i];
        if (gust__http_is(c, GUST__CC_UNRES) ||
            (c == '/' && (flags & GUST_URL_KEEP_SLASH)))
            continue;
        change = true;
        if (!(c == ' ' && (flags & GUST_URL_PLUS)))
            extra += 2;
    }
    if (!change) {
        *out = in.ptr ? in : GUST_STR("");
        return 0;
    }
    if (in.len > ((size_t)-1 - 1) / 3)
        return -ENOMEM;
    char *d = gust_arena_alloc(arena, in.len + extra + 1);
    if (!d)
        return -ENOMEM;
    char *p = d;
    for (size_t i = 0; i < in.len; i++) {
        unsigned char c = (unsigned char)in.ptr[i];
        if (gust__http_is(c, GUST__CC_UNRES) ||
            (c == '/' && (flags & GUST_URL_KEEP_SLASH))) {
            *p++ = (char)c;
        } else if (c == ' ' && (flags & GUST_URL_PLUS)) {
            *p++ = '+';
        } else {
            *p++ = '%';
            *p++ = hexdigits[c >> 4];
            *p++ = hexdigits[c & 15];
        }
    }
    *p = '\0';
    *out = gust_str_make(d, (size_t)(p - d));
    return 0;
}

/* ------------------------------------------------------------------ */
/* URL components (RFC 3986 section 3) */

static bool is_subdelim(unsigned char c)
{
    return c != 0 && strchr("!$&'()*+,;=", c) != NULL;
}

/* unreserved / sub-delims / extra (one of the characters in extra). */
static bool is_in(unsigned char c, const char *extra)
{
    return gust__http_is(c, GUST__CC_UNRES) || is_subdelim(c) ||
           (c != 0 && strchr(extra, c) != NULL);
}

/* Checks that p[0..len) holds only unreserved, sub-delims, the characters
 * of extra and well-formed %XX escapes. */
static bool valid_run(const char *p, size_t len, const char *extra)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '%') {
            if (i + 2 >= len || !gust__http_is((unsigned char)p[i + 1], GUST__CC_HEX) ||
                !gust__http_is((unsigned char)p[i + 2], GUST__CC_HEX))
                return false;
            i += 2;
        } else if (!is_in(c, extra)) {
            return false;
        }
    }
    return true;
}

static bool valid_ipv6(const char *p, size_t len)
{
    /* Longest form: eight groups, or six and a dotted quad (45 bytes). A
     * zone identifier ("%25eth0") and IPvFuture ("v1.x") are refused. */
    char buf[48];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, p, len);
    buf[len] = '\0';
    struct in6_addr a;
    return inet_pton(AF_INET6, buf, &a) == 1;
}

/* Parses an optional port: digits in p[0..len), 1-5 of them, value <= 65535
 * (len 0 gives -1). Returns the port, -1 for none, or -2 when invalid. */
static long parse_port(const char *p, size_t len)
{
    if (len == 0)
        return -1;
    if (len > 5)
        return -2;
    long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -2;
        v = v * 10 + (p[i] - '0');
    }
    return v <= 65535 ? v : -2;
}

/* Splits host[:port] in p[0..len). Returns 0 or -EINVAL. */
static int split_host_port(const char *p, size_t len, gust_str *host,
                           long *port, bool *ipv6)
{
    const char *end = p + len;
    const char *colon;
    *ipv6 = false;
    if (len > 0 && p[0] == '[') {
        const char *rb = memchr(p, ']', len);
        if (!rb || !valid_ipv6(p + 1, (size_t)(rb - p - 1)))
            return -EINVAL;
        *host = gust_str_make(p + 1, (size_t)(rb - p - 1));
        *ipv6 = true;
        colon = rb + 1;
        if (colon != end && *colon != ':')
            return -EINVAL;
    } else {
        colon = memchr(p, ':', len);
        if (!colon)
            colon = end;
        *host = gust_str_make(p, (size_t)(colon - p));
        if (host->len == 0 || !valid_run(host->ptr, host->len, ""))
            return -EINVAL;
    }
    *port = -1;
    if (colon != end) {
        *port = parse_port(colon + 1, (size_t)(end - colon - 1));
        if (*port == -2)
            return -EINVAL;
    }
    return 0;
}

int gust_http_split_host_port(gust_str in, gust_str *host, int *port)
{
    long p;
    bool v6;
    int rc = split_host_port(in.ptr, in.len, host, &p, &v6);
    if (rc < 0)
        return rc;
    *port = (int)p;
    return 0;
}

int gust_url_parse(gust_str in, gust_url *out)
{
    memset(out, 0, sizeof(*out));
    const char *p = in.ptr, *end = in.ptr + in.len;
    if (in.len == 0 || !((p[0] | 0x20) >= 'a' && (p[0] | 0x20) <= 'z'))
        return -EINVAL;
    const char *s = p;
    while (s < end && *s != ':') {
        unsigned char c = (unsigned char)*s;
        if (!(((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
              (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.'))
            return -EINVAL;
        s++;
    }
    if (end - s < 3 || s[1] != '/' || s[2] != '/')
        return -EINVAL;
    out->scheme = gust_str_make(p, (size_t)(s - p));

    const char *auth = s + 3;
    const char *auth_end = auth;
    while (auth_end < end && *auth_end != '/' && *auth_end != '?' &&
           *auth_end != '#')
        auth_end++;
    const char *hp = auth;
    for (const char *q = auth_end; q > auth; q--) {
        if (q[-1] == '@') {
            out->userinfo = gust_str_make(auth, (size_t)(q - 1 - auth));
            if (!valid_run(out->userinfo.ptr, out->userinfo.len, ":"))
                return -EINVAL;
            hp = q;
            break;
        }
    }
    long port;
    if (split_host_port(hp, (size_t)(auth_end - hp), &out->host, &port,
                        &out->host_ipv6) < 0 || port == 0)
        return -EINVAL;
    if (port > 0) {
        out->port = (uint16_t)port;
        out->port_explicit = true;
    } else if (gust_str_eq_nocase(out->scheme, GUST_STR("http")) ||
               gust_str_eq_nocase(out->scheme, GUST_STR("ws"))) {
        out->port = 80;
    } else if (gust_str_eq_nocase(out->scheme, GUST_STR("https")) ||
               gust_str_eq_nocase(out->scheme, GUST_STR("wss"))) {
        out->port = 443;
    }

    const char *q = auth_end;
    while (q < end && *q != '?' && *q != '#')
        q++;
    out->path = gust_str_make(auth_end, (size_t)(q - auth_end));
    if (!valid_run(out->path.ptr, out->path.len, ":@/"))
        return -EINVAL;
    if (q < end && *q == '?') {
        const char *f = memchr(q, '#', (size_t)(end - q));
        if (!f)
            f = end;
        out->query = gust_str_make(q + 1, (size_t)(f - q - 1));
        if (!valid_run(out->query.ptr, out->query.len, ":@/?"))
            return -EINVAL;
        q = f;
    }
    if (q < end) { /* '#' */
        out->fragment = gust_str_make(q + 1, (size_t)(end - q - 1));
        if (!valid_run(out->fragment.ptr, out->fragment.len, ":@/?"))
            return -EINVAL;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Request targets (RFC 9112 section 3.2) */

int gust_http_target_split(gust_str target, gust_http_target *out)
{
    memset(out, 0, sizeof(*out));
    if (target.len == 0)
        return -EINVAL;
    for (size_t i = 0; i < target.len; i++) {
        if (!gust__http_is((unsigned char)target.ptr[i], GUST__CC_TARGET))
            return -EINVAL;
    }
    if (target.ptr[0] == '/') {
        out->form = GUST_TARGET_ORIGIN;
        const char *qm = memchr(target.ptr, '?', target.len);
        if (!qm) {
            out->path = target;
        } else {
            out->path = gust_str_make(target.ptr, (size_t)(qm - target.ptr));
            out->query = gust_str_make(qm + 1,
                                       target.len - out->path.len - 1);
        }
        return 0;
    }
    if (target.len == 1 && target.ptr[0] == '*') {
        out->form = GUST_TARGET_ASTERISK;
        out->path = target;
        return 0;
    }
    const char *colon = memchr(target.ptr, ':', target.len);
    if (colon && target.ptr + target.len - colon >= 3 && colon[1] == '/' &&
        colon[2] == '/') {
        gust_url u;
        if (gust_url_parse(target, &u) < 0 || u.fragment.ptr)
            return -EINVAL;
        out->form = GUST_TARGET_ABSOLUTE;
        out->scheme = u.scheme;
        const char *a = u.scheme.ptr + u.scheme.len + 3;
        const char *path_start = u.path.ptr;
        out->authority = gust_str_make(a, (size_t)(path_start - a));
        out->path = u.path.len ? u.path : GUST_STR("/");
        out->query = u.query;
        return 0;
    }
    /* authority-form: uri-host ":" port, the port being required. */
    gust_str host;
    long port;
    bool v6;
    if (split_host_port(target.ptr, target.len, &host, &port, &v6) < 0 ||
        port < 0)
        return -EINVAL;
    out->form = GUST_TARGET_AUTHORITY;
    out->authority = target;
    return 0;
}

int gust_url_concat(gust_arena *arena, gust_str url, const gust_http_arg *args,
                    size_t n, gust_str *out)
{
    if (n == 0) {
        *out = url;
        return 0;
    }
    const char *hash = url.len ? memchr(url.ptr, '#', url.len) : NULL;
    size_t base = hash ? (size_t)(hash - url.ptr) : url.len;
    bool has_query = base && memchr(url.ptr, '?', base) != NULL;
    char last = base ? url.ptr[base - 1] : '\0';
    char sep = !has_query ? '?' : (last == '?' || last == '&') ? '\0' : '&';

    /* Escape first (zero-copy when nothing needs it), then size and copy. */
    if (n > ((size_t)-1 / 4) / sizeof(gust_str))
        return -ENOMEM;
    gust_str *enc = gust_arena_alloc(arena, 2 * n * sizeof(*enc));
    if (!enc)
        return -ENOMEM;
    size_t total = url.len + 2 + n * 2;
    for (size_t i = 0; i < n; i++) {
        if (gust_url_escape(arena, args[i].name, GUST_URL_PLUS, &enc[2 * i]) < 0 ||
            gust_url_escape(arena, args[i].value, GUST_URL_PLUS, &enc[2 * i + 1]) < 0)
            return -ENOMEM;
        total += enc[2 * i].len + enc[2 * i + 1].len;
    }
    char *d = gust_arena_alloc(arena, total);
    if (!d)
        return -ENOMEM;
    char *p = d;
    if (base)
        memcpy(p, url.ptr, base);
    p += base;
    if (sep)
        *p++ = sep;
    for (size_t i = 0; i < n; i++) {
        if (i)
            *p++ = '&';
        memcpy(p, enc[2 * i].ptr, enc[2 * i].len);
        p += enc[2 * i].len;
        *p++ = '=';
        memcpy(p, enc[2 * i + 1].ptr, enc[2 * i + 1].len);
        p += enc[2 * i + 1].len;
    }
    if (hash) {
        memcpy(p, hash, url.len - base);
        p += url.len - base;
    }
    *p = '\0';
    *out = gust_str_make(d, (size_t)(p - d));
    return 0;
}
