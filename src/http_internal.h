/* Shared internals of the HTTP utilities (http_chars.c, http_cookie.c,
 * http_form.c, http_headers.c, http_multipart.c, http_status.c,
 * http_url.c), also used by the HTTP server (http_server.c) and, for its
 * inlined header lookups, by the web layer through http_server_contract.h.
 * Not installed. */
#ifndef GUST_HTTP_INTERNAL_H
#define GUST_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "gust/http.h"

/* Whether the field name n is the literal lit (ignoring case). The exact
 * spelling, by far the most common, is a few inlined compares; only other
 * spellings with the same length and first letter (lit starts with a
 * letter) take gust_str_eq_nocase's call. */
#define GUST__NAME_IS(n, lit)                                              \
    ((n).len == sizeof(lit) - 1 &&                                         \
     (memcmp((n).ptr, lit, sizeof(lit) - 1) == 0 ||                        \
      (((n).ptr[0] | 0x20) == (lit[0] | 0x20) &&                           \
       gust_str_eq_nocase((n), GUST_STR(lit)))))

/* gust_http_headers_add(h, name, value, GUST_HEADER_TRUSTED), inlined for
 * the usual case of a free slot: for fields a layer built itself, valid
 * and living as long as the headers. */
static inline int gust__http_headers_push(gust_http_headers *h, gust_str name,
                                          gust_str value)
{
    if (h->count == h->cap || !value.ptr)
        return gust_http_headers_add(h, name, value, GUST_HEADER_TRUSTED);
    h->items[h->count].name = name;
    h->items[h->count].value = value;
    h->count++;
    return 0;
}

/* gust_http_headers_get_first, inlined for the per-request lookups of a
 * literal name: fields of another length cost a compare each, and the
 * usual spelling needs no case folding. */
#define GUST__HEADERS_FIND(hd, lit)                                        \
    gust__http_headers_find((hd), GUST_STR(lit))
static inline gust_str gust__http_headers_find(const gust_http_headers *h,
                                               gust_str name)
{
    for (size_t i = 0; i < h->count; i++) {
        gust_str n = h->items[i].name;
        if (n.len == name.len && (memcmp(n.ptr, name.ptr, name.len) == 0 ||
                                  gust_str_eq_nocase(n, name)))
            return h->items[i].value;
    }
    return GUST_STR_NULL;
}

/* Character classes, one bit each, in gust__http_cc[byte]. */
enum {
    GUST__CC_TCHAR = 0x01,    /* token character (RFC 9110 section 5.6.2) */
    GUST__CC_VALUE = 0x02,    /* field value byte: VCHAR, SP, HTAB, obs-text */
    GUST__CC_UNRES = 0x04,    /* unreserved (RFC 3986 section 2.3) */
    GUST__CC_URI = 0x08,      /* any byte allowed in a URI, '%' included */
    GUST__CC_COOKIE = 0x10,   /* cookie-octet (RFC 6265 section 4.1.1) */
    GUST__CC_BCHAR = 0x20,    /* boundary bchars (RFC 2046 section 5.1.1) */
    GUST__CC_HEX = 0x40,      /* HEXDIG, either case */
    GUST__CC_TARGET = 0x80    /* request-target byte: 0x21-0x7E but '#', 0x80+ */
};

extern const unsigned char gust__http_cc[256];

static inline int gust__http_is(unsigned char c, unsigned cls)
{
    return (gust__http_cc[c] & cls) != 0;
}

static inline unsigned char gust__http_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
}

/* Value of a hex digit known to be one (GUST__CC_HEX). */
static inline int gust__http_hexval(unsigned char c)
{
    return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
}

/* Grows a (items, cap) array of elem-byte elements in arena so that it holds
 * at least need elements (doubling, 16 at first). Returns 0 or -ENOMEM. */
int gust__http_grow(gust_arena *arena, void **items, size_t *cap, size_t elem,
                    size_t need);

/* Lower-cases s: returns s itself when it has no upper-case letter, else a
 * lower-cased copy in arena. Returns 0 or -ENOMEM. */
int gust__http_lower_str(gust_arena *arena, gust_str s, gust_str *out);

/* Parses a parameter list "*( OWS ';' OWS [ token '=' ( token /
 * quoted-string ) ] )" from p[0..len) (RFC 9110 section 5.6.6), appending
 * to (*params, *n, *cap). Names are lower-cased; quoted values unquoted.
 * Duplicated names are an error. Returns 0, -EINVAL or -ENOMEM. */
int gust__http_parse_params(gust_arena *arena, const char *p, size_t len,
                            gust_http_param **params, size_t *n, size_t *cap);

/* Parameter array reused across the parts of one multipart body. */
typedef struct gust__http_part_scratch {
    gust_http_param *params;
    size_t cap;
} gust__http_part_scratch;

/* Parses the header lines p[0..hdr_end) of a multipart/form-data part
 * (each line ending in CRLF; the empty line excluded): token names, clean
 * values, no obs-fold, exactly one Content-Disposition of type form-data
 * with a name parameter, at most one Content-Type. Sets *name, *filename
 * (absent without a filename parameter) and *ctype (absent without a
 * Content-Type). Returns 0, -EINVAL or -ENOMEM. */
int gust__http_part_headers(gust_arena *arena, const char *p,
                            const char *hdr_end, gust__http_part_scratch *sc,
                            gust_str *name, gust_str *filename,
                            gust_str *ctype);

#endif /* GUST_HTTP_INTERNAL_H */
