/* Arguments, application/x-www-form-urlencoded, media types and
 * multipart/form-data (RFC 9110 section 8.3, RFC 7578, RFC 2046 section
 * 5.1). See include/gust/http.h. */
#include <errno.h>
#include <string.h>

#include "gust/http.h"
#include "http_internal.h"

/* ------------------------------------------------------------------ */
/* Arguments */

void gust_http_args_init(gust_http_args *args, gust_arena *arena)
{
    args->arena = arena;
    args->items = NULL;
    args->count = 0;
    args->cap = 0;
}

int gust_http_args_add(gust_http_args *args, gust_str name, gust_str value)
{
    if (args->count == args->cap) {
        int rc = gust__http_grow(args->arena, (void **)&args->items,
                                 &args->cap, sizeof(*args->items),
                                 args->count + 1);
        if (rc < 0)
            return rc;
    }
    args->items[args->count].name = name.ptr ? name : GUST_STR("");
    args->items[args->count].value = value.ptr ? value : GUST_STR("");
    args->count++;
    return 0;
}

gust_str gust_http_args_get_first(const gust_http_args *args, gust_str name)
{
    for (size_t i = 0; i < args->count; i++) {
        if (gust_str_eq(args->items[i].name, name))
            return args->items[i].value;
    }
    return GUST_STR_NULL;
}

gust_str gust_http_args_get_last(const gust_http_args *args, gust_str name)
{
    for (size_t i = args->count; i > 0; i--) {
        if (gust_str_eq(args->items[i - 1].name, name))
            return args->items[i - 1].value;
    }
    return GUST_STR_NULL;
}

size_t gust_http_args_count_name(const gust_http_args *args, gust_str name)
{
    size_t n = 0;
    for (size_t i = 0; i < args->count; i++)
        n += gust_str_eq(args->items[i].name, name);
    return n;
}

bool gust_http_args_next(const gust_http_args *args, gust_str name,
                         size_t *cursor, gust_str *value)
{
    for (size_t i = *cursor; i < args->count; i++) {
        if (gust_str_eq(args->items[i].name, name)) {
            *value = args->items[i].value;
            *cursor = i + 1;
            return true;
        }
    }
    *cursor = args->count;
    return false;
}

int gust_http_args_parse_urlencoded(gust_http_args *args, gust_str data)
{
    const char *p = data.ptr, *end = data.ptr + data.len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *seg_end = amp ? amp : end;
        if (seg_end > p) {
            const char *eq = memchr(p, '=', (size_t)(seg_end - p));
            gust_str name, value;
            if (eq) {
                name = gust_str_make(p, (size_t)(eq - p));
                value = gust_str_make(eq + 1, (size_t)(seg_end - eq - 1));
            } else {
                name = gust_str_make(p, (size_t)(seg_end - p));
                value = gust_str_make(seg_end, 0);
            }
            /* Lenient decoding cannot fail but for OOM. */
            int rc = gust_url_unescape(args->arena, name, GUST_URL_PLUS, &name);
            if (rc == 0)
                rc = gust_url_unescape(args->arena, value, GUST_URL_PLUS, &value);
            if (rc == 0)
                rc = gust_http_args_add(args, name, value);
            if (rc < 0)
                return rc;
        }
        p = seg_end + (amp != NULL);
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Parameters and media types (RFC 9110 sections 5.6.4, 5.6.6, 8.3.1) */

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Parses a quoted-string starting at *pp (on the opening quote) and ending
 * before end. Sets *out (a slice of the input when it has no quoted-pair,
 * else an unescaped copy in arena) and advances *pp past the closing quote.
 * Returns 0, -EINVAL or -ENOMEM. */
static int parse_quoted(gust_arena *arena, const char **pp, const char *end,
                        gust_str *out)
{
    const char *p = *pp + 1, *start = p;
    size_t escapes = 0;
    while (p < end && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c == '\\') {
            /* quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text ) */
            if (p + 1 >= end || !gust__http_is((unsigned char)p[1], GUST__CC_VALUE))
                return -EINVAL;
            escapes++;
            p += 2;
            continue;
        }
        if (!gust__http_is(c, GUST__CC_VALUE))
            return -EINVAL;
        p++;
    }
    if (p >= end)
        return -EINVAL;
    *pp = p + 1;
    if (escapes == 0) {
        *out = gust_str_make(start, (size_t)(p - start));
        return 0;
    }
    char *d = gust_arena_alloc(arena, (size_t)(p - start) - escapes + 1);
    if (!d)
        return -ENOMEM;
    size_t n = 0;
    for (const char *q = start; q < p; q++) {
        if (*q == '\\')
            q++;
        d[n++] = *q;
    }
    d[n] = '\0';
    *out = gust_str_make(d, n);
    return 0;
}

static const char *scan_token(const char *p, const char *end)
{
    while (p < end && gust__http_is((unsigned char)*p, GUST__CC_TCHAR))
        p++;
    return p;
}

int gust__http_parse_params(gust_arena *arena, const char *p, size_t len,
                            gust_http_param **params, size_t *n, size_t *cap)
{
    const char *end = p + len;
    size_t first = *n;
    for (;;) {
        while (p < end && is_ows(*p))
            p++;
        if (p == end)
            return 0;
        if (*p != ';')
            return -EINVAL;
        p++;
        while (p < end && is_ows(*p))
            p++;
        if (p == end || *p == ';')
            continue; /* an empty parameter is allowed */
        const char *name_end = scan_token(p, end);
        if (name_end == p || name_end == end || *name_end != '=')
            return -EINVAL;
        gust_str name = gust_str_make(p, (size_t)(name_end - p)), value;
        p = name_end + 1;
        int rc;
        if (p < end && *p == '"') {
            rc = parse_quoted(arena, &p, end, &value);
            if (rc < 0)
                return rc;
        } else {
            const char *v_end = scan_token(p, end);
            if (v_end == p)
                return -EINVAL;
            value = gust_str_make(p, (size_t)(v_end - p));
            p = v_end;
        }
        rc = gust__http_lower_str(arena, name, &name);
        if (rc < 0)
            return rc;
        for (size_t i = first; i < *n; i++) {
            if (gust_str_eq((*params)[i].name, name))
                return -EINVAL;
        }
        if (*n == *cap) {
            rc = gust__http_grow(arena, (void **)params, cap, sizeof(**params),
                                 *n + 1);
            if (rc < 0)
                return rc;
        }
        (*params)[*n].name = name;
        (*params)[*n].value = value;
        (*n)++;
    }
}

int gust_http_parse_content_type(gust_arena *arena, gust_str in,
                                 gust_http_content_type *out)
{
    memset(out, 0, sizeof(*out));
    const char *p = in.ptr, *end = in.ptr + in.len;
    while (p < end && is_ows(*p))
        p++;
    const char *start = p;
    const char *slash = scan_token(p, end);
    if (slash == p || slash == end || *slash != '/')
        return -EINVAL;
    const char *type_end = scan_token(slash + 1, end);
    if (type_end == slash + 1)
        return -EINVAL;
    int rc = gust__http_lower_str(arena, gust_str_make(start, (size_t)(type_end - start)),
                                  &out->type);
    if (rc < 0)
        return rc;
    size_t cap = 0;
    return gust__http_parse_params(arena, type_end, (size_t)(end - type_end),
                                   &out->params, &out->nparams, &cap);
}

gust_str gust_http_content_type_param(const gust_http_content_type *ct,
                                      gust_str name)
{
    for (size_t i = 0; i < ct->nparams; i++) {
        if (gust_str_eq_nocase(ct->params[i].name, name))
            return ct->params[i].value;
    }
    return GUST_STR_NULL;
}

bool gust_http_boundary_valid(gust_str b)
{
    if (b.len < 1 || b.len > 70 || b.ptr[b.len - 1] == ' ')
        return false;
    for (size_t i = 0; i < b.len; i++) {
        if (!gust__http_is((unsigned char)b.ptr[i], GUST__CC_BCHAR))
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------ */
/* multipart/form-data */

void gust_http_files_init(gust_http_files *files, gust_arena *arena)
{
    files->arena = arena;
    files->items = NULL;
    files->count = 0;
    files->cap = 0;
}

const gust_http_file *gust_http_files_get(const gust_http_files *files,
                                          gust_str name)
{
    for (size_t i = 0; i < files->count; i++) {
        if (gust_str_eq(files->items[i].name, name))
            return &files->items[i];
    }
    return NULL;
}

static int files_add(gust_http_files *files, const gust_http_file *f)
{
    if (files->count == files->cap) {
        int rc = gust__http_grow(files->arena, (void **)&files->items,
                                 &files->cap, sizeof(*files->items),
                                 files->count + 1);
        if (rc < 0)
            return rc;
    }
    files->items[files->count++] = *f;
    return 0;
}

int gust__http_part_headers(gust_arena *arena, const char *p,
                            const char *hdr_end, gust__http_part_scratch *sc,
                            gust_str *name, gust_str *filename,
                            gust_str *ctype)
{
    gust_str disposition = GUST_STR_NULL;
    *ctype = GUST_STR_NULL;
    const char *line = p;
    while (line < hdr_end) {
        const char *eol = memchr(line, '\r', (size_t)(hdr_end - line));
        if (!eol || eol + 1 >= hdr_end || eol[1] != '\n')
            return -EINVAL;
        const char *colon = scan_token(line, eol);
        if (colon == line || colon == eol || *colon != ':')
            return -EINVAL; /* obs-fold, space before ':', bad name */
        const char *v = colon + 1, *v_end = eol;
        while (v < v_end && is_ows(*v))
            v++;
        while (v_end > v && is_ows(v_end[-1]))
            v_end--;
        gust_str hname = gust_str_make(line, (size_t)(colon - line));
        gust_str value = gust_str_make(v, (size_t)(v_end - v));
        if (!gust_http_header_value_valid(value))
            return -EINVAL;
        if (gust_str_eq_nocase(hname, GUST_STR("Content-Disposition"))) {
            if (disposition.ptr)
                return -EINVAL;
            disposition = value;
        } else if (gust_str_eq_nocase(hname, GUST_STR("Content-Type"))) {
            if (ctype->ptr)
                return -EINVAL;
            *ctype = value;
        }
        line = eol + 2;
    }
    if (!disposition.ptr)
        return -EINVAL;

    /* disposition = "form-data" *( OWS ";" OWS parameter ) (RFC 7578 4.2) */
    const char *d = disposition.ptr, *d_end = d + disposition.len;
    const char *type_end = scan_token(d, d_end);
    if (!gust_str_eq_nocase(gust_str_make(d, (size_t)(type_end - d)),
                            GUST_STR("form-data")))
        return -EINVAL;
    size_t n = 0;
    int rc = gust__http_parse_params(arena, type_end, (size_t)(d_end - type_end),
                                     &sc->params, &n, &sc->cap);
    if (rc < 0)
        return rc;
    *name = GUST_STR_NULL;
    *filename = GUST_STR_NULL;
    for (size_t i = 0; i < n; i++) {
        if (gust_str_eq(sc->params[i].name, GUST_STR("name")))
            *name = sc->params[i].value;
        else if (gust_str_eq(sc->params[i].name, GUST_STR("filename")))
            *filename = sc->params[i].value;
    }
    return name->ptr ? 0 : -EINVAL;
}

/* Parses one part p[0..len): header lines, an empty line, the content. */
static int parse_part(gust__http_part_scratch *sc, gust_arena *arena,
                      const char *p, size_t len, gust_http_args *args,
                      gust_http_files *files)
{
    const char *end = p + len;
    const char *body;
    const char *hdr_end; /* end of the last header line's CRLF */
    if (len >= 2 && p[0] == '\r' && p[1] == '\n') {
        hdr_end = p;
        body = p + 2;
    } else {
        const char *blank = memmem(p, len, "\r\n\r\n", 4);
        if (blank) {
            hdr_end = blank + 2;
            body = blank + 4;
        } else if (len >= 2 && end[-2] == '\r' && end[-1] == '\n') {
            /* Header lines only, no content (RFC 2046: [CRLF *OCTET]). */
            hdr_end = end;
            body = end;
        } else {
            return -EINVAL;
        }
    }
    gust_str name, filename, ctype;
    int rc = gust__http_part_headers(arena, p, hdr_end, sc, &name, &filename,
                                     &ctype);
    if (rc < 0)
        return rc;
    gust_str content = gust_str_make(body, (size_t)(end - body));
    if (filename.len == 0)
        return gust_http_args_add(args, name, content);
    if (!files)
        return -EINVAL;
    gust_http_file f = {
        .name = name,
        .filename = filename,
        .content_type = ctype.ptr ? ctype : GUST_STR("text/plain"),
        .body = content,
    };
    return files_add(files, &f);
}

/* Skips transport-padding (RFC 2046: LWSP after a delimiter) and the CRLF
 * that must follow. Returns the position after the CRLF, or NULL. */
static const char *after_padding_crlf(const char *p, const char *end)
{
    while (p < end && is_ows(*p))
        p++;
    if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
        return NULL;
    return p + 2;
}

int gust_http_parse_multipart(gust_str boundary, gust_str body,
                              gust_http_args *args, gust_http_files *files)
{
    if (!gust_http_boundary_valid(boundary))
        return -EINVAL;
    /* delimiter = CRLF "--" boundary; the first one may lack the CRLF. */
    char delim[4 + 70];
    size_t dlen = 4 + boundary.len;
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary.ptr, boundary.len);

    const char *p = body.ptr, *end = body.ptr + body.len;
    const char *d;
    if (body.len >= dlen - 2 && memcmp(p, delim + 2, dlen - 2) == 0) {
        d = p + dlen - 2;
    } else {
        const char *f = memmem(p, body.len, delim, dlen);
        if (!f)
            return -EINVAL;
        d = f + dlen; /* what came before was the preamble */
    }
    gust__http_part_scratch sc = {NULL, 0};
    for (;;) {
        /* d is just past a delimiter. */
        if (end - d >= 2 && d[0] == '-' && d[1] == '-') {
            d += 2;
            while (d < end && is_ows(*d))
                d++;
            if (d == end || after_padding_crlf(d, end))
                return 0; /* the rest is the epilogue */
            return -EINVAL;
        }
        const char *part = after_padding_crlf(d, end);
        if (!part)
            return -EINVAL;
        const char *f = memmem(part, (size_t)(end - part), delim, dlen);
        if (!f)
            return -EINVAL; /* no final delimiter */
        int rc = parse_part(&sc, args->arena, part, (size_t)(f - part), args,
                            files);
        if (rc < 0)
            return rc;
        d = f + dlen;
    }
}

int gust_http_parse_body_arguments(gust_arena *arena, gust_str content_type,
                                   gust_str body, gust_http_args *args,
                                   gust_http_files *files)
{
    if (!content_type.ptr)
        return 0;
    gust_http_content_type ct;
    int rc = gust_http_parse_content_type(arena, content_type, &ct);
    if (rc == -EINVAL) {
        /* A malformed form type is an error; another malformed type is
         * simply not a form, as for Tornado. */
        gust_str t = content_type;
        while (t.len && is_ows(*t.ptr)) {
            t.ptr++;
            t.len--;
        }
        static const char *const forms[] = {
            "application/x-www-form-urlencoded", "multipart/form-data"};
        for (size_t i = 0; i < 2; i++) {
            gust_str f = gust_str_cstr(forms[i]);
            if (t.len >= f.len &&
                gust_str_eq_nocase(gust_str_make(t.ptr, f.len), f))
                return -EINVAL;
        }
        return 0;
    }
    if (rc < 0)
        return rc;
    if (gust_str_eq(ct.type, GUST_STR("application/x-www-form-urlencoded")))
        return gust_http_args_parse_urlencoded(args, body);
    if (gust_str_eq(ct.type, GUST_STR("multipart/form-data"))) {
        gust_str b = gust_http_content_type_param(&ct, GUST_STR("boundary"));
        if (!b.ptr)
            return -EINVAL;
        return gust_http_parse_multipart(b, body, args, files);
    }
    return 0;
}
