/* Handler output (Tornado's RequestHandler.write/flush/finish/redirect and
 * its GZipContentEncoding transform): the body is buffered by the handler,
 * so that an error page can discard it, and compressed on its way to the
 * server's structured response. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "gust/log.h"
#include "http_server_contract.h"
#include "template_internal.h"
#include "web_internal.h"

#define LOG_MODULE "web"

/* ---- Status and headers --------------------------------------------------- */

int gust_handler_set_status(gust_handler *h, int status, const char *reason)
{
    if (h->headers_sent || h->finished || status < 100 || status > 599)
        return -EINVAL;
    return gust_http_response_set_status(h->req, status, reason);
}

int gust_handler_get_status(gust_handler *h)
{
    return *h->resp_status;
}

int gust_handler_set_header(gust_handler *h, const char *name,
                            const char *value)
{
    if (h->headers_sent || h->finished)
        return -EINVAL;
    return gust_http_response_set_header(h->req, name, value);
}

int gust_handler_add_header(gust_handler *h, const char *name,
                            const char *value)
{
    if (h->headers_sent || h->finished)
        return -EINVAL;
    return gust_http_response_add_header(h->req, name, value);
}

int gust_handler_clear_header(gust_handler *h, const char *name)
{
    if (h->headers_sent || h->finished)
        return -EINVAL;
    return gust_http_response_clear_header(h->req, name);
}

void gust__handler_no_compression(gust_handler *h)
{
    h->no_compression = true;
}

static void free_gzip(void *p)
{
    gust__gzip_free(p);
}

/* What the handler set among the headers finish and the gzip decision
 * look at, found in one pass over the response headers. */
typedef struct seen_headers {
    bool etag;
    bool content_encoding;
    gust_str content_type; /* GUST_STR_NULL: not set */
} seen_headers;

static inline void scan_headers(gust_handler *h, seen_headers *s)
{
    const gust_http_headers *hd = h->resp_headers;
    *s = (seen_headers){false, false, GUST_STR_NULL};
    for (size_t i = 0; i < hd->count; i++) {
        gust_str n = hd->items[i].name;
        if (GUST__NAME_IS(n, "Etag")) {
            s->etag = true;
        } else if (GUST__NAME_IS(n, "Content-Type")) {
            if (!s->content_type.ptr)
                s->content_type = hd->items[i].value;
        } else if (GUST__NAME_IS(n, "Content-Encoding")) {
            s->content_encoding = true;
        }
    }
}

/* Below this a whole body is not compressed: the gzip header and trailer
 * and Content-Encoding would eat the gain (Tornado's MIN_LENGTH). A body
 * that is flushed in parts is compressed whatever its size. */
#define GZIP_MIN_LENGTH 1024

/* Default Content-Type and the gzip decision, once, before any byte;
 * finishing: the buffered body is the whole body. */
static inline int prepare_headers(gust_handler *h, seen_headers *s,
                                  bool finishing)
{
    h->headers_ready = true;
    int status = *h->resp_status;
    if (status < 200 || status == 204 || status == 304) {
        /* No body, so no representation metadata (RFC 9110 section 15.4.5;
         * Tornado's _clear_representation_headers). */
        if (s->content_type.ptr)
            gust_http_response_clear_header(h->req, "Content-Type");
        if (s->content_encoding)
            gust_http_response_clear_header(h->req, "Content-Encoding");
        gust_http_response_clear_header(h->req, "Content-Language");
        return 0;
    }
    if (!s->content_type.ptr) {
        s->content_type = GUST_STR("text/html; charset=UTF-8");
        gust__http_response_put_header(h->req, GUST_STR("Content-Type"),
                                       s->content_type,
                                       GUST_HTTP_HEADER_TRUSTED | GUST__PUT_APPEND);
    }
    if (!h->app->settings.compress_response || h->no_compression ||
        !gust__gzip_type_compressible(s->content_type))
        return 0;
    int rc = gust_http_response_add_header(h->req, "Vary", "Accept-Encoding");
    if (rc < 0)
        return rc;
    if (!gust__gzip_accepted(&h->req->headers) || s->content_encoding ||
        (finishing && h->body_len < GZIP_MIN_LENGTH))
        return 0;
    h->gz = gust__gzip_new();
    if (!h->gz)
        return -ENOMEM;
    if (gust_arena_add_cleanup(h->req->arena, free_gzip, h->gz) < 0) {
        gust__gzip_free(h->gz);
        h->gz = NULL;
        return -ENOMEM;
    }
    h->gzipping = true;
    gust_http_response_clear_header(h->req, "Content-Length");
    return gust_http_response_set_header(h->req, "Content-Encoding", "gzip");
}

int gust__handler_prepare_headers(gust_handler *h)
{
    if (h->headers_ready)
        return 0;
    seen_headers s;
    scan_headers(h, &s);
    return prepare_headers(h, &s, false);
}

/* ---- Body ------------------------------------------------------------------ */

void gust__handler_discard_body(gust_handler *h)
{
    h->body_len = 0;
}

/* Makes room for extra more bytes after the body. */
static int reserve(gust_handler *h, size_t extra)
{
    if (h->body_len + extra <= h->body_cap)
        return 0;
    size_t cap = h->body_cap ? h->body_cap : 1024;
    while (cap < h->body_len + extra)
        cap *= 2;
    /* The request arena is reset, not freed, between the requests of a
     * connection: a small body costs no malloc after the first. */
    char *nb = h->body ? gust_arena_realloc(h->req->arena, h->body,
                                            h->body_cap, cap)
                       : gust__arena_alloc(h->req->arena, cap);
    if (!nb)
        return -ENOMEM;
    h->body = nb;
    h->body_cap = cap;
    return 0;
}

static int append(gust_handler *h, const void *data, size_t len)
{
    int rc = reserve(h, len);
    if (rc < 0)
        return rc;
    if (len)
        memcpy(h->body + h->body_len, data, len);
    h->body_len += len;
    return 0;
}

int gust_handler_write(gust_handler *h, const void *data, size_t len)
{
    if (h->finished || h->error_sent)
        return -EINVAL;
    if (h->conn_closed)
        return GUST_ESTREAMCLOSED;
    return append(h, data, len);
}

int gust_handler_write_str(gust_handler *h, const char *s)
{
    return gust_handler_write(h, s, strlen(s));
}

int gust_handler_printf(gust_handler *h, const char *fmt, ...)
{
    if (h->finished || h->error_sent)
        return -EINVAL;
    if (h->conn_closed)
        return GUST_ESTREAMCLOSED;
    /* Formatted straight into the body's free space; when it does not fit,
     * the space is made and the text formatted again. */
    size_t room = h->body_cap - h->body_len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? h->body + h->body_len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n >= room) {
        int rc = reserve(h, (size_t)n + 1);
        if (rc < 0)
            return rc;
        va_start(ap, fmt);
        vsnprintf(h->body + h->body_len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    h->body_len += (size_t)n;
    return 0;
}

/* Jansson prints every real with 17 significant digits (0.3 as
 * 0.29999999999999999): each number with a '.' or an exponent in the
 * dump of s is rewritten as the shortest text that reads back the same,
 * as Python's json.dumps prints it. Returns s itself when there is no
 * real (the usual case: nothing is copied), else a new string (s freed),
 * NULL when out of memory (s freed). */
static char *shortest_reals(char *s)
{
    char *out = NULL;
    size_t n = strlen(s), o = 0, done = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"') {
            in_str = true;
            continue;
        }
        if (c != '-' && (c < '0' || c > '9'))
            continue;
        size_t j = i;
        bool real = false;
        while (j < n && strchr("0123456789+-.eE", s[j])) {
            real |= s[j] == '.' || s[j] == 'e' || s[j] == 'E';
            j++;
        }
        if (real) {
            char num[40];
            gust__template_filters_format_real(strtod(s + i, NULL), num, sizeof num);
            size_t k = strlen(num);
            /* At most 2 bytes longer than Jansson's (its exponent has no
             * '+' and no leading zero, Python's "e+05" has), and a real
             * takes 3 bytes at least: 2n is room. */
            if (!out && !(out = malloc(2 * n + 1))) {
                free(s);
                return NULL;
            }
            memcpy(out + o, s + done, i - done);
            o += i - done;
            memcpy(out + o, num, k);
            o += k;
            done = j;
        }
        i = j - 1;
    }
    if (!out)
        return s;
    memcpy(out + o, s + done, n - done);
    out[o + n - done] = '\0';
    free(s);
    return out;
}

/* Whether v holds a real: walking the values costs less than scanning the
 * text of a dump made mostly of strings. Past Jansson's own depth limit
 * the answer is "maybe" (true). */
static bool has_real(const json_t *v, int depth)
{
    if (depth > 2048)
        return true;
    if (json_is_real(v))
        return true;
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (has_real(json_array_get(v, i), depth + 1))
                return true;
    } else if (json_is_object(v)) {
        const char *k;
        const json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            if (has_real(x, depth + 1))
                return true;
        }
    }
    return false;
}

int gust_handler_write_json(gust_handler *h, const struct json_t *json)
{
    if (h->finished || h->error_sent)
        return -EINVAL;
    char *s = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY |
                                   JSON_REAL_PRECISION(17));
    if (s && has_real(json, 0))
        s = shortest_reals(s);
    if (!s)
        return -ENOMEM;
    int rc = 0;
    if (!h->headers_sent)
        rc = gust__http_response_put_header(
            h->req, GUST_STR("Content-Type"),
            GUST_STR("application/json; charset=UTF-8"), GUST_HTTP_HEADER_TRUSTED);
    if (rc == 0)
        rc = gust_handler_write_str(h, s);
    free(s);
    return rc;
}

static int emit(const void *out, size_t len, void *data)
{
    gust_handler *h = data;
    return gust_http_response_write(h->req, out, len);
}

/* Hands the buffered body to the server (compressed when gzipping); last
 * ends the gzip stream. */
int gust__handler_push(gust_handler *h, bool last)
{
    int rc;
    if (h->gzipping) {
        if (h->body_len == 0 && !last)
            return 0;
        rc = gust__gzip_write(h->gz, h->body ? h->body : "", h->body_len,
                              !last, last, emit, h);
    } else {
        rc = h->body_len ? gust_http_response_write(h->req, h->body,
                                                    h->body_len)
                         : 0;
    }
    h->body_len = 0;
    return rc;
}

struct flush_cb {
    gust_handler *h;
    void (*cb)(gust_handler *h, int status, void *data);
    void *data;
};

static void flushed(gust_http_request *req, int status, void *data)
{
    (void)req;
    struct flush_cb *f = data;
    f->h->busy++;
    f->cb(f->h, status, f->data);
    f->h->busy--;
    gust__handler_maybe_release(f->h);
}

int gust_handler_flush(gust_handler *h,
                       void (*cb)(gust_handler *h, int status, void *data),
                       void *data)
{
    if (h->finished)
        return -EINVAL;
    if (h->conn_closed)
        return GUST_ESTREAMCLOSED;
    int rc = gust__handler_prepare_headers(h);
    if (rc == 0)
        rc = gust__handler_push(h, false);
    if (rc < 0)
        return rc;
    struct flush_cb *f = NULL;
    if (cb) {
        f = gust_arena_alloc(h->req->arena, sizeof *f);
        if (!f)
            return -ENOMEM;
        *f = (struct flush_cb){h, cb, data};
    }
    h->headers_sent = true;
    return gust_http_response_flush(h->req, f ? flushed : NULL, f);
}

int gust__handler_sendfile(gust_handler *h, int fd, off_t offset, size_t len)
{
    if (h->finished)
        return -EINVAL;
    if (h->conn_closed)
        return GUST_ESTREAMCLOSED;
    h->no_compression = true;
    int rc = gust__handler_prepare_headers(h);
    if (rc == 0)
        rc = gust__handler_push(h, false);
    if (rc == 0)
        rc = gust_http_response_sendfile(h->req, fd, offset, len, NULL, NULL);
    if (rc == 0)
        h->headers_sent = true;
    return rc;
}

/* ---- ETag ------------------------------------------------------------------ */

/* Whether an If-None-Match list names etag (weak comparison, "*" matches
 * anything; a malformed list matches nothing). */
static bool none_match(gust_str inm, gust_str mine)
{
    const char *p = inm.ptr, *end = inm.ptr + inm.len;
    while (p < end) {
        if (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
            continue;
        }
        if (*p == '*')
            return true;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        const char *q = p < end && *p == '"'
                            ? memchr(p + 1, '"', (size_t)(end - p - 1))
                            : NULL;
        if (!q)
            return false;
        if (gust_str_eq(gust_str_make(p, (size_t)(q - p + 1)), mine))
            return true;
        p = q + 1;
    }
    return false;
}

/* Tornado's finish(): a whole 200 answer to GET or HEAD gets an ETag (a
 * hash of its body) unless the handler set one, and becomes a 304 when the
 * client already has that version. Tornado hashes with SHA-1; an ETag is
 * opaque to clients, so any hash that changes with the body will do, and
 * XXH3 costs a few nanoseconds where SHA-1 through OpenSSL's EVP cost more
 * than the rest of a small response (and 0.6 us per KiB of body). It is
 * the same on every machine and process, so the servers behind one
 * balancer agree on a body's ETag. 64 bits, not collision resistant: a
 * validator only has to notice that a representation changed (nginx's
 * are its file's mtime and size). */
#define ETAG_HEX 16

/* Sixteen lower-case hex digits of v, most significant first, without a
 * loop per digit: each nibble gets its own byte, and bytes over 9 get the
 * distance from '9' + 1 to 'a'. */
static void hex64(uint64_t v, char out[16])
{
#ifdef __SSE2__
    /* x86 (little-endian): the bytes in printing order, then each byte's
     * high nibble before its low one. */
    uint64_t be = __builtin_bswap64(v);
    __m128i b = _mm_loadl_epi64((const __m128i *)(const void *)&be);
    __m128i mask = _mm_set1_epi8(0x0f);
    __m128i n = _mm_unpacklo_epi8(_mm_and_si128(_mm_srli_epi16(b, 4), mask),
                                  _mm_and_si128(b, mask));
    __m128i over9 = _mm_cmpgt_epi8(n, _mm_set1_epi8(9));
    n = _mm_add_epi8(n, _mm_set1_epi8('0'));
    n = _mm_add_epi8(n, _mm_and_si128(over9, _mm_set1_epi8('a' - '9' - 1)));
    _mm_storeu_si128((__m128i *)(void *)out, n);
#else
    for (int half = 0; half < 2; half++) {
        uint64_t n = (uint32_t)(v >> (32 - 32 * half));
        n = (n | n << 16) & 0x0000FFFF0000FFFFull;
        n = (n | n << 8) & 0x00FF00FF00FF00FFull;
        n = (n | n << 4) & 0x0F0F0F0F0F0F0F0Full;
        uint64_t over9 =
            ((n + 0x0606060606060606ull) >> 4) & 0x0101010101010101ull;
        n += 0x3030303030303030ull + over9 * ('a' - '9' - 1);
        /* The lowest nibble is in the lowest byte, which a little-endian
         * store writes first: reverse them. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        n = __builtin_bswap64(n);
#endif
        memcpy(out + 8 * half, &n, 8);
    }
#endif
}

static int set_etag(gust_handler *h, const seen_headers *s)
{
    gust_http_method m = h->req->method_id;
    if (h->headers_sent || s->etag ||
        *h->resp_status != 200 ||
        (m != GUST_HTTP_METHOD_GET && m != GUST_HTTP_METHOD_HEAD))
        return 0;
    uint64_t x = XXH3_64bits(h->body ? h->body : "", h->body_len);
    /* The whole field line, built in the handler (which lives as long as
     * the request): the server writes it as it is, with no check, no copy
     * and no walk of the header list. */
    char *line = h->etag_line;
    _Static_assert(sizeof h->etag_line == 6 + ETAG_HEX + 4, "Etag line");
    memcpy(line, "Etag: \"", 7);
    hex64(x, line + 7);
    memcpy(line + 7 + ETAG_HEX, "\"\r\n", 3);
    int rc = gust__http_response_put_line(h->req, line, sizeof h->etag_line);
    if (rc < 0)
        return rc;
    gust_str inm = GUST__HEADERS_FIND(&h->req->headers, "If-None-Match");
    if (inm.ptr && none_match(inm, gust_str_make(line + 6, ETAG_HEX + 2))) {
        h->body_len = 0;
        rc = gust_http_response_set_status(h->req, 304, NULL);
    }
    return rc;
}

/* gust_handler_finish's headers: with etag, the automatic ETag of a whole
 * 200 GET/HEAD answer (a 304 when If-None-Match names it); then
 * prepare_headers's work, if not done yet. */
static int finish_headers(gust_handler *h, bool etag)
{
    if (h->headers_ready && (!etag || h->headers_sent))
        return 0;
    seen_headers s;
    scan_headers(h, &s);
    int rc = etag ? set_etag(h, &s) : 0;
    if (rc == 0 && !h->headers_ready)
        rc = prepare_headers(h, &s, true);
    return rc;
}

int gust_handler_finish(gust_handler *h)
{
    if (h->finished)
        return -EINVAL;
    int rc = 0;
    if (!h->conn_closed) {
        rc = finish_headers(h, !h->error_sent);
        /* Unless it is compressed, the body is handed over on release. */
        if (rc == 0 && h->gzipping)
            rc = gust__handler_push(h, true);
        if (rc < 0)
            gust__handler_discard_body(h);
    }
    gust__handler_finish_hooks(h);
    gust__handler_maybe_release(h);
    return rc == GUST_ESTREAMCLOSED ? 0 : rc;
}

/* ---- Redirects ------------------------------------------------------------- */

int gust_handler_redirect(gust_handler *h, const char *url, int status)
{
    if (status == 0)
        status = 302;
    if (h->headers_sent || h->finished || !url ||
        (status != 301 && status != 302 && status != 303 && status != 307 &&
         status != 308) ||
        !gust_http_header_value_valid(gust_str_cstr(url)))
        return -EINVAL;
    int rc = gust_http_response_set_status(h->req, status, NULL);
    if (rc == 0)
        rc = gust_http_response_set_header(h->req, "Location", url);
    if (rc < 0)
        return rc;
    gust__handler_discard_body(h);
    return gust_handler_finish(h);
}

/* ---- Templates --------------------------------------------------------- */

/* The names every template of a handler sees (Tornado's
 * get_template_namespace), made only when a template uses one that its
 * context does not have: no copy of the context, nothing built for the
 * names a template does not use. */
static json_t *hook_lookup(void *data, const char *name)
{
    gust_handler *h = data;
    gust_http_request *r = h->req;
    if (strcmp(name, "request") == 0)
        return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "method",
                         r->method, "uri", r->uri, "path", r->path, "query",
                         r->query, "host", r->host ? r->host : "",
                         "remote_ip", r->remote_ip ? r->remote_ip : "",
                         "protocol", r->protocol ? r->protocol : "http");
    if (strcmp(name, "current_user") == 0) {
        const char *user = gust_handler_current_user(h);
        return user ? json_string(user) : json_null();
    }
    if (strcmp(name, "static_url_prefix") == 0)
        return json_string(h->app->settings.static_url_prefix);
    if (strcmp(name, "xsrf_form_html") == 0 && h->app->settings.xsrf_cookies) {
        const char *form = gust_handler_xsrf_form_html(h);
        return form ? json_string(form) : NULL;
    }
    return NULL;
}

static const char *hook_static_url(void *data, const char *path)
{
    return gust_handler_static_url(data, path);
}

static const char *hook_reverse_url(void *data, const char *name,
                                    const char *const *args, size_t nargs)
{
    gust_handler *h = data;
    return gust__web_router_reverse_argv(&h->app->router, h->req->arena, name,
                                         args, nargs);
}

char *gust_handler_render_string(gust_handler *h, const char *name,
                                 struct json_t *context, size_t *len)
{
    if (!h->app->loader) {
        errno = ENOENT;
        return NULL;
    }
    char *out = NULL;
    size_t n = 0;
    const gust_template_hooks hooks = {hook_static_url, hook_reverse_url,
                                       hook_lookup, h};
    int rc = gust_template_loader_render_with(h->app->loader, name, context,
                                              &hooks, &out, &n);
    if (rc < 0) {
        gust_log_error(LOG_MODULE, "template %s: %s", name,
                       gust_template_loader_error(h->app->loader));
        h->render_error = rc;
        errno = -rc;
        return NULL;
    }
    char *copy = gust_arena_memdup(h->req->arena, out, n + 1);
    free(out);
    if (!copy) {
        h->render_error = -ENOMEM;
        errno = ENOMEM;
        return NULL;
    }
    if (len)
        *len = n;
    return copy;
}

int gust_handler_render(gust_handler *h, const char *name,
                        struct json_t *context)
{
    if (!h->app->loader)
        return -ENOENT;
    h->render_error = 0;
    size_t n;
    char *s = gust_handler_render_string(h, name, context, &n);
    if (!s)
        return h->render_error ? h->render_error : -ENOMEM;
    return gust_handler_write(h, s, n);
}

int gust_handler_render_pack(gust_handler *h, const char *name,
                             const char *fmt, ...)
{
    if (!h->app->loader)
        return -ENOENT;
    json_error_t err;
    va_list ap;
    va_start(ap, fmt);
    json_t *ctx = json_vpack_ex(&err, 0, fmt, ap);
    va_end(ap);
    if (!ctx || !json_is_object(ctx)) {
        gust_log_error(LOG_MODULE, "template %s: context %s: %s", name, fmt,
                       ctx ? "not an object" : err.text);
        json_decref(ctx);
        return -EINVAL;
    }
    int rc = gust_handler_render(h, name, ctx);
    json_decref(ctx);
    return rc;
}

/* ---- Static URLs -------------------------------------------------------- */

char *gust_handler_static_url(gust_handler *h, const char *path)
{
    const char *prefix = h->app->settings.static_url_prefix;
    const char *v = h->app->static_cache
                        ? gust__static_cache_version(h->app->static_cache,
                                                     path)
                        : NULL;
    if (v)
        return gust_arena_sprintf(h->req->arena, "%s%s?v=%s", prefix, path,
                                  v);
    return gust_arena_sprintf(h->req->arena, "%s%s", prefix, path);
}
