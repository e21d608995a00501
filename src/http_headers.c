/* Slices, token and value checks, and the header collection (Tornado's
 * HTTPHeaders). See include/gust/http.h. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "gust/http.h"
#include "http_internal.h"

bool gust_str_eq(gust_str a, gust_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool gust_str_eq_nocase(gust_str a, gust_str b)
{
    if (a.len != b.len)
        return false;
    const unsigned char *x = (const unsigned char *)a.ptr;
    const unsigned char *y = (const unsigned char *)b.ptr;
    size_t i = 0;
    /* Names are mostly compared with the case they were written in: eight
     * equal bytes at a time, then byte by byte from the first difference. */
    for (; i + 8 <= a.len; i += 8) {
        uint64_t u, v;
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        if (u != v)
            break;
    }
    for (; i < a.len; i++) {
        if (x[i] != y[i] && gust__http_lower(x[i]) != gust__http_lower(y[i]))
            return false;
    }
    return true;
}

char *gust_str_dup(gust_arena *arena, gust_str s)
{
    if (s.len == (size_t)-1)
        return NULL;
    char *d = gust_arena_alloc(arena, s.len + 1);
    if (!d)
        return NULL;
    if (s.len)
        memcpy(d, s.ptr, s.len);
    d[s.len] = '\0';
    return d;
}

bool gust_http_token_valid(gust_str s)
{
    if (s.len == 0 || !s.ptr)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        if (!gust__http_is((unsigned char)s.ptr[i], GUST__CC_TCHAR))
            return false;
    }
    return true;
}

bool gust_http_method_valid(gust_str s)
{
    return gust_http_token_valid(s);
}

bool gust_http_header_value_valid(gust_str s)
{
    for (size_t i = 0; i < s.len; i++) {
        if (!gust__http_is((unsigned char)s.ptr[i], GUST__CC_VALUE))
            return false;
    }
    return true;
}

int gust__http_grow(gust_arena *arena, void **items, size_t *cap, size_t elem,
                    size_t need)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > ((size_t)-1 >> 2) / elem)
            return -ENOMEM;
        ncap *= 2;
    }
    if (ncap > ((size_t)-1 >> 1) / elem)
        return -ENOMEM;
    void *p = gust_arena_realloc(arena, *items, *cap * elem, ncap * elem);
    if (!p)
        return -ENOMEM;
    *items = p;
    *cap = ncap;
    return 0;
}

int gust__http_lower_str(gust_arena *arena, gust_str s, gust_str *out)
{
    size_t i = 0;
    while (i < s.len && !(s.ptr[i] >= 'A' && s.ptr[i] <= 'Z'))
        i++;
    if (i == s.len) {
        *out = s;
        return 0;
    }
    char *d = gust_arena_memdup(arena, s.ptr, s.len);
    if (!d)
        return -ENOMEM;
    for (; i < s.len; i++)
        d[i] = (char)gust__http_lower((unsigned char)d[i]);
    *out = gust_str_make(d, s.len);
    return 0;
}

void gust_http_headers_init(gust_http_headers *h, gust_arena *arena)
{
    h->arena = arena;
    h->items = NULL;
    h->count = 0;
    h->cap = 0;
}

int gust_http_headers_reserve(gust_http_headers *h, size_t n)
{
    return gust__http_grow(h->arena, (void **)&h->items, &h->cap,
                           sizeof(*h->items), n);
}

/* Validates and, with GUST_HEADER_COPY, copies a field line. */
static int prepare(gust_http_headers *h, gust_str *name, gust_str *value,
                   unsigned flags)
{
    if (!value->ptr)
        *value = GUST_STR("");
    if (!(flags & GUST_HEADER_TRUSTED) &&
        (!gust_http_token_valid(*name) || !gust_http_header_value_valid(*value)))
        return -EINVAL;
    if (flags & GUST_HEADER_COPY) {
        /* One allocation for both, name first. */
        char *d = gust_arena_alloc(h->arena, name->len + value->len);
        if (!d)
            return -ENOMEM;
        memcpy(d, name->ptr, name->len);
        if (value->len)
            memcpy(d + name->len, value->ptr, value->len);
        *name = gust_str_make(d, name->len);
        *value = gust_str_make(d + name->len, value->len);
    }
    return 0;
}

int gust_http_headers_add(gust_http_headers *h, gust_str name, gust_str value,
                          unsigned flags)
{
    int rc = prepare(h, &name, &value, flags);
    if (rc < 0)
        return rc;
    if (h->count == h->cap) {
        rc = gust_http_headers_reserve(h, h->count + 1);
        if (rc < 0)
            return rc;
    }
    h->items[h->count].name = name;
    h->items[h->count].value = value;
    h->count++;
    return 0;
}

int gust_http_headers_set(gust_http_headers *h, gust_str name, gust_str value,
                          unsigned flags)
{
    size_t i = 0;
    while (i < h->count && !gust_str_eq_nocase(h->items[i].name, name))
        i++;
    if (i == h->count)
        return gust_http_headers_add(h, name, value, flags);
    int rc = prepare(h, &name, &value, flags);
    if (rc < 0)
        return rc;
    h->items[i].name = name;
    h->items[i].value = value;
    /* Drop the later occurrences, keeping the others in order. */
    size_t w = i + 1;
    for (size_t r = i + 1; r < h->count; r++) {
        if (!gust_str_eq_nocase(h->items[r].name, name))
            h->items[w++] = h->items[r];
    }
    h->count = w;
    return 0;
}

size_t gust_http_headers_remove(gust_http_headers *h, gust_str name)
{
    size_t w = 0;
    for (size_t r = 0; r < h->count; r++) {
        if (!gust_str_eq_nocase(h->items[r].name, name))
            h->items[w++] = h->items[r];
    }
    size_t removed = h->count - w;
    h->count = w;
    return removed;
}

void gust_http_headers_clear(gust_http_headers *h)
{
    h->count = 0;
}

gust_str gust_http_headers_get_first(const gust_http_headers *h, gust_str name)
{
    /* The length first: most fields are passed over without a call. */
    for (size_t i = 0; i < h->count; i++) {
        if (h->items[i].name.len == name.len &&
            gust_str_eq_nocase(h->items[i].name, name))
            return h->items[i].value;
    }
    return GUST_STR_NULL;
}

bool gust_http_headers_has(const gust_http_headers *h, gust_str name)
{
    return gust_http_headers_get_first(h, name).ptr != NULL;
}

size_t gust_http_headers_count_name(const gust_http_headers *h, gust_str name)
{
    size_t n = 0;
    for (size_t i = 0; i < h->count; i++)
        n += gust_str_eq_nocase(h->items[i].name, name);
    return n;
}

bool gust_http_headers_next(const gust_http_headers *h, gust_str name,
                            size_t *cursor, gust_str *value)
{
    for (size_t i = *cursor; i < h->count; i++) {
        if (gust_str_eq_nocase(h->items[i].name, name)) {
            *value = h->items[i].value;
            *cursor = i + 1;
            return true;
        }
    }
    *cursor = h->count;
    return false;
}

int gust_http_headers_get_joined(const gust_http_headers *h, gust_str name,
                                 gust_str *out)
{
    size_t n = 0, total = 0, first = 0;
    for (size_t i = 0; i < h->count; i++) {
        if (gust_str_eq_nocase(h->items[i].name, name)) {
            if (n++ == 0)
                first = i;
            total += h->items[i].value.len + 2;
        }
    }
    if (n == 0) {
        *out = GUST_STR_NULL;
        return -ENOENT;
    }
    if (n == 1) {
        *out = h->items[first].value;
        return 0;
    }
    char *d = gust_arena_alloc(h->arena, total - 1);
    if (!d)
        return -ENOMEM;
    char *p = d;
    for (size_t i = first; i < h->count; i++) {
        if (!gust_str_eq_nocase(h->items[i].name, name))
            continue;
        if (p != d) {
            *p++ = ',';
            *p++ = ' ';
        }
        memcpy(p, h->items[i].value.ptr, h->items[i].value.len);
        p += h->items[i].value.len;
    }
    *p = '\0';
    *out = gust_str_make(d, (size_t)(p - d));
    return 0;
}

size_t gust_http_headers_wire_size(const gust_http_headers *h)
{
    size_t n = 0;
    for (size_t i = 0; i < h->count; i++)
        n += h->items[i].name.len + h->items[i].value.len + 4;
    return n;
}

char *gust_http_headers_serialize(const gust_http_headers *h, char *dst)
{
    for (size_t i = 0; i < h->count; i++) {
        const gust_http_header *f = &h->items[i];
        memcpy(dst, f->name.ptr, f->name.len);
        dst += f->name.len;
        *dst++ = ':';
        *dst++ = ' ';
        if (f->value.len)
            memcpy(dst, f->value.ptr, f->value.len);
        dst += f->value.len;
        *dst++ = '\r';
        *dst++ = '\n';
    }
    return dst;
}
