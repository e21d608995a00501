/* Cookie header parsing and Set-Cookie formatting (RFC 6265). See
 * include/gust/http.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gust/http.h"
#include "http_internal.h"

static gust_str trim(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    return gust_str_make(p, (size_t)(end - p));
}

int gust_http_parse_cookie(gust_str header, gust_http_args *out)
{
    const char *p = header.ptr, *end = header.ptr + header.len;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *seg_end = semi ? semi : end;
        const char *eq = memchr(p, '=', (size_t)(seg_end - p));
        if (eq) {
            gust_str name = trim(p, eq);
            gust_str value = trim(eq + 1, seg_end);
            /* cookie-value may be wrapped in DQUOTEs (RFC 6265 4.1.1); the
             * quotes are not part of the value. */
            if (value.len >= 2 && value.ptr[0] == '"' &&
                value.ptr[value.len - 1] == '"') {
                value.ptr++;
                value.len -= 2;
            }
            if (name.len > 0) {
                int rc = gust_http_args_add(out, name, value);
                if (rc < 0)
                    return rc;
            }
        }
        p = seg_end + (semi != NULL);
    }
    return 0;
}

static bool valid_cookie_value(gust_str v)
{
    if (v.len >= 2 && v.ptr[0] == '"' && v.ptr[v.len - 1] == '"') {
        v.ptr++;
        v.len -= 2;
    }
    for (size_t i = 0; i < v.len; i++) {
        if (!gust__http_is((unsigned char)v.ptr[i], GUST__CC_COOKIE))
            return false;
    }
    return true;
}

/* Domain and Path values: any CHAR but CTLs and ';' (RFC 6265 4.1.1), and
 * no ',' either, since some agents split Set-Cookie on commas. */
static bool valid_attr(const char *s)
{
    if (!s || !*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x7f || c == ';' || c == ',')
            return false;
    }
    return true;
}

static bool has_prefix(gust_str s, const char *prefix)
{
    size_t n = strlen(prefix);
    return s.len >= n && memcmp(s.ptr, prefix, n) == 0;
}

int gust_http_format_set_cookie(gust_arena *arena, gust_str name,
                                gust_str value,
                                const gust_http_cookie_options *opts,
                                gust_str *out)
{
    static const gust_http_cookie_options none;
    if (!opts)
        opts = &none;
    if (!value.ptr)
        value = GUST_STR("");
    if (!gust_http_token_valid(name) || !valid_cookie_value(value))
        return -EINVAL;
    if ((opts->domain && !valid_attr(opts->domain)) ||
        (opts->path && !valid_attr(opts->path)))
        return -EINVAL;
    if (opts->has_max_age && opts->max_age < 0)
        return -EINVAL;
    if (opts->samesite == GUST_SAMESITE_NONE && !opts->secure)
        return -EINVAL;
    if (opts->samesite < GUST_SAMESITE_UNSET || opts->samesite > GUST_SAMESITE_NONE)
        return -EINVAL;
    /* Cookie prefixes: browsers drop such cookies without these properties. */
    if (has_prefix(name, "__Secure-") && !opts->secure)
        return -EINVAL;
    if (has_prefix(name, "__Host-") &&
        (!opts->secure || opts->domain || !opts->path ||
         strcmp(opts->path, "/") != 0))
        return -EINVAL;
    char date[GUST_HTTP_DATE_SIZE];
    if (opts->has_expires && gust_http_date_format(opts->expires, date) < 0)
        return -EINVAL;

    size_t size = name.len + 1 + value.len + 1;
    if (opts->domain)
        size += strlen(opts->domain) + 9;   /* "; Domain=" */
    if (opts->path)
        size += strlen(opts->path) + 7;     /* "; Path=" */
    size += 128; /* Expires, Max-Age, Secure, HttpOnly, SameSite: 103 */
    char *buf = gust_arena_alloc(arena, size);
    if (!buf)
        return -ENOMEM;
    char *p = buf;
    memcpy(p, name.ptr, name.len);
    p += name.len;
    *p++ = '=';
    if (value.len)
        memcpy(p, value.ptr, value.len);
    p += value.len;
    size_t left = size - (size_t)(p - buf);
    int n = 0;
#define APPEND(...)                                                            \
    do {                                                                       \
        n = snprintf(p, left, __VA_ARGS__);                                    \
        p += n;                                                                \
        left -= (size_t)n;                                                     \
    } while (0)
    if (opts->domain)
        APPEND("; Domain=%s", opts->domain);
    if (opts->path)
        APPEND("; Path=%s", opts->path);
    if (opts->has_expires)
        APPEND("; Expires=%s", date);
    if (opts->has_max_age)
        APPEND("; Max-Age=%lld", opts->max_age);
    if (opts->secure)
        APPEND("; Secure");
    if (opts->httponly)
        APPEND("; HttpOnly");
    if (opts->samesite != GUST_SAMESITE_UNSET) {
        static const char *const names[] = {"", "Strict", "Lax", "None"};
        APPEND("; SameSite=%s", names[opts->samesite]);
    }
#undef APPEND
    *p = '\0';
    *out = gust_str_make(buf, (size_t)(p - buf));
    return 0;
}
