/* A handler's response: status and headers (straight to the HTTP layer),
 * the body gathered until flush or finish, gzip, JSON, redirects,
 * templates and static URLs. */
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gust/log.h"
#include "web_internal.h"

/* Tornado's GZipContentEncoding.MIN_LENGTH: smaller finished bodies are
 * not worth a gzip header. */
#define GZIP_MIN_LENGTH 1024

static bool closed_for_output(const gust_handler *h)
{
    return h->finished || h->error_sent;
}

static bool is_name(const char *a, const char *b)
{
    return gust_str_eq_nocase(gust_str_cstr(a), gust_str_cstr(b));
}

/* ---- Status and headers -------------------------------------------------- */

int gust_handler_set_status(gust_handler *h, int status, const char *reason)
{
    if (h->headers_sent || closed_for_output(h) || status < 100 || status > 599)
        return -EINVAL;
    return gust_http_response_set_status(h->req, status, reason);
}

int gust_handler_get_status(gust_handler *h)
{
    return gust_http_response_status(h->req);
}

int gust_handler_set_header(gust_handler *h, const char *name, const char *value)
{
    if (h->headers_sent || closed_for_output(h) || !name || !value)
        return -EINVAL;
    int rc = gust_http_response_set_header(h->req, name, value);
    if (rc == 0 && is_name(name, "Content-Type"))
        h->ctype_set = true;
    return rc;
}

int gust_handler_add_header(gust_handler *h, const char *name, const char *value)
{
    if (h->headers_sent || closed_for_output(h) || !name || !value)
        return -EINVAL;
    int rc = gust_http_response_add_header(h->req, name, value);
    if (rc == 0 && is_name(name, "Content-Type"))
        h->ctype_set = true;
    return rc;
}

int gust_handler_clear_header(gust_handler *h, const char *name)
{
    if (h->headers_sent || closed_for_output(h) || !name)
        return -EINVAL;
    if (is_name(name, "Content-Type"))
        h->ctype_set = false;
    return gust_http_response_clear_header(h->req, name);
}

void gust__output_clear(gust_handler *h)
{
    h->body_len = 0;
    h->ctype_set = false;
    const gust_http_headers *hs = gust_http_response_headers(h->req);
    while (hs->count > 0) {
        /* The name is copied: clearing frees nothing, but the slot moves. */
        gust_str n = hs->items[0].name;
        char name[128];
        if (n.len >= sizeof name)
            n.len = sizeof name - 1;
        memcpy(name, n.ptr, n.len);
        name[n.len] = '\0';
        if (gust_http_response_clear_header(h->req, name) < 0)
            break;
    }
    gust_http_response_set_status(h->req, 200, NULL);
}

/* ---- Body ---------------------------------------------------------------- */

int gust_handler_write(gust_handler *h, const void *data, size_t len)
{
    if (closed_for_output(h))
        return -EINVAL;
    if (h->body_len + len > h->body_cap) {
        size_t cap = h->body_cap ? h->body_cap : 256;
        while (cap < h->body_len + len)
            cap *= 2;
        char *b = gust_arena_realloc(h->req->arena, h->body, h->body_cap, cap);
        if (!b)
            return -ENOMEM;
        h->body = b;
        h->body_cap = cap;
    }
    memcpy(h->body + h->body_len, data, len);
    h->body_len += len;
    return 0;
}

int gust_handler_write_str(gust_handler *h, const char *s)
{
    return gust_handler_write(h, s, strlen(s));
}

int gust_handler_printf(gust_handler *h, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof small)
        return gust_handler_write(h, small, (size_t)n);
    va_start(ap, fmt);
    char *big = gust_arena_vsprintf(h->req->arena, NULL, fmt, ap);
    va_end(ap);
    return big ? gust_handler_write(h, big, (size_t)n) : -ENOMEM;
}

/* Jansson's output with "</" written "<\/", as Tornado's json_encode, so
 * that JSON inside a <script> cannot close it. */
static int write_json_cb(const char *buf, size_t size, void *data)
{
    gust_handler *h = data;
    size_t start = 0;
    for (size_t i = 0; i + 1 < size; i++)
        if (buf[i] == '<' && buf[i + 1] == '/') {
            if (gust_handler_write(h, buf + start, i + 1 - start) < 0 ||
                gust_handler_write(h, "\\", 1) < 0)
                return -1;
            start = i + 1;
        }
    return gust_handler_write(h, buf + start, size - start) < 0 ? -1 : 0;
}

int gust_handler_write_json(gust_handler *h, const struct json_t *json)
{
    if (closed_for_output(h) || !json)
        return -EINVAL;
    if (!h->ctype_set)
        gust_handler_set_header(h, "Content-Type",
                                "application/json; charset=UTF-8");
    /* A chunk boundary can split "</": the callback sees whole dumps in
     * practice (Jansson buffers), and a split one is still valid JSON. */
    return json_dump_callback(json, write_json_cb, h,
                              JSON_COMPACT | JSON_ENCODE_ANY) == 0
               ? 0
               : -ENOMEM;
}

/* ---- Sending ------------------------------------------------------------- */

static int emit_gzip(const void *out, size_t len, void *data)
{
    gust_handler *h = data;
    return gust_http_response_write(h->req, out, len);
}

/* Decided once, when the headers go out. */
static void decide_headers(gust_handler *h, bool last)
{
    gust_http_request *req = h->req;
    const gust_http_headers *rh = gust_http_response_headers(req);
    int status = gust_http_response_status(req);
    bool bodyless = status == 204 || status == 304 || (status >= 100 && status < 200);
    if (!h->ctype_set && !bodyless &&
        !gust_http_headers_has(rh, GUST_STR("Content-Type")))
        gust_http_response_set_header(req, "Content-Type",
                                      "text/html; charset=UTF-8");
    if (!h->app->settings.compress_response || h->no_compression || bodyless ||
        status == 206 || h->sendfile_used)
        return;
    gust_str ctype = gust_http_headers_get_first(rh, GUST_STR("Content-Type"));
    if (!ctype.ptr || !gust__gzip_type_compressible(ctype))
        return;
    /* Caches must know the answer depends on Accept-Encoding, whether or
     * not this one is compressed. */
    gust_http_response_add_header(req, "Vary", "Accept-Encoding");
    if (gust_http_headers_has(rh, GUST_STR("Content-Encoding")) ||
        !gust__gzip_accepted(&req->headers) ||
        (last && h->body_len < GZIP_MIN_LENGTH) ||
        !(h->gz = gust__gzip_new()))
        return;
    h->gzip_on = true;
    gust_http_response_set_header(req, "Content-Encoding", "gzip");
    gust_http_response_clear_header(req, "Content-Length");
}

int gust__output_send(gust_handler *h, bool last)
{
    if (!h->headers_sent && !h->sendfile_used)
        decide_headers(h, last);
    int rc = 0;
    if (h->gzip_on)
        rc = gust__gzip_write(h->gz, h->body, h->body_len, !last, last,
                              emit_gzip, h);
    else if (h->body_len)
        rc = gust_http_response_write(h->req, h->body, h->body_len);
    h->body_len = 0;
    return rc;
}

typedef struct flush_wait {
    gust_handler *h;
    void (*cb)(gust_handler *h, int status, void *data);
    void *data;
} flush_wait;

static void on_flushed(gust_http_request *req, int status, void *data)
{
    (void)req;
    flush_wait *w = data;
    w->cb(w->h, status, w->data);
}

int gust_handler_flush(gust_handler *h,
                       void (*cb)(gust_handler *h, int status, void *data),
                       void *data)
{
    if (closed_for_output(h))
        return -EINVAL;
    int rc = gust__output_send(h, false);
    h->headers_sent = true;
    if (rc < 0)
        return rc;
    flush_wait *w = NULL;
    if (cb) {
        if (!(w = gust_arena_alloc(h->req->arena, sizeof *w)))
            return -ENOMEM;
        *w = (flush_wait){h, cb, data};
    }
    return gust_http_response_flush(h->req, cb ? on_flushed : NULL, w);
}

void gust__output_release(gust_handler *h)
{
    gust__gzip_free(h->gz);
    h->gz = NULL;
}

void gust__handler_no_compression(gust_handler *h)
{
    h->no_compression = true;
}

int gust__handler_sendfile(gust_handler *h, int fd, off_t offset, size_t len)
{
    if (closed_for_output(h))
        return -EINVAL;
    h->no_compression = true; /* decided by output_send, just below */
    int rc = gust__output_send(h, false);
    h->sendfile_used = true;
    if (rc < 0)
        return rc;
    return gust_http_response_sendfile(h->req, fd, offset, len, NULL, NULL);
}

/* ---- Redirects ----------------------------------------------------------- */

int gust_handler_redirect(gust_handler *h, const char *url, int status)
{
    if (status == 0)
        status = 302;
    if (h->headers_sent || closed_for_output(h) || !url ||
        (status != 301 && status != 302 && status != 303 && status != 307 &&
         status != 308))
        return -EINVAL;
    int rc = gust_http_response_set_header(h->req, "Location", url);
    if (rc < 0)
        return rc;
    gust_http_response_set_status(h->req, status, NULL);
    return gust_handler_finish(h);
}

/* ---- Templates ----------------------------------------------------------- */

/* The context as the template sees it: the caller's keys (shared, not
 * copied) plus request, xsrf_form_html and static_url_prefix. */
static json_t *render_context(gust_handler *h, json_t *context)
{
    json_t *ctx = context ? json_copy(context) : json_object();
    if (!ctx || !json_is_object(ctx)) {
        json_decref(ctx);
        return NULL;
    }
    gust_http_request *r = h->req;
    if (!json_object_get(ctx, "request"))
        json_object_set_new(ctx, "request",
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
                      "method", r->method, "uri", r->uri, "path", r->path,
                      "query", r->query, "host", r->host ? r->host : "",
                      "remote_ip", r->remote_ip, "protocol", r->protocol));
    if (h->app->settings.xsrf_cookies && !json_object_get(ctx, "xsrf_form_html")) {
        const char *form = gust_handler_xsrf_form_html(h);
        if (form)
            json_object_set_new(ctx, "xsrf_form_html", json_string(form));
    }
    if (!json_object_get(ctx, "static_url_prefix"))
        json_object_set_new(ctx, "static_url_prefix",
                            json_string(h->app->settings.static_url_prefix));
    return ctx;
}

char *gust_handler_render_string(gust_handler *h, const char *name,
                                 struct json_t *context, size_t *len)
{
    gust_template_loader *l = h->app->templates;
    if (!l) {
        gust_log_error("web", "render %s: no template_path in the settings",
                       name);
        errno = ENOENT;
        return NULL;
    }
    json_t *ctx = render_context(h, context);
    if (!ctx) {
        errno = EINVAL;
        return NULL;
    }
    char *out = NULL;
    size_t n = 0;
    int rc = gust_template_loader_render(l, name, ctx, &out, &n);
    json_decref(ctx);
    if (rc < 0) {
        gust_log_error("web", "template %s: %s", name,
                       gust_template_loader_error(l));
        errno = -rc;
        return NULL;
    }
    char *copy = gust_arena_memdup(h->req->arena, out, n + 1);
    free(out);
    if (copy && len)
        *len = n;
    return copy;
}

int gust_handler_render(gust_handler *h, const char *name,
                        struct json_t *context)
{
    size_t n;
    char *s = gust_handler_render_string(h, name, context, &n);
    if (!s)
        return errno ? -errno : -EINVAL;
    return gust_handler_write(h, s, n);
}

/* ---- Static URLs --------------------------------------------------------- */

char *gust_handler_static_url(gust_handler *h, const char *path)
{
    const gust_app_settings *s = &h->app->settings;
    gust__static_cache *c = h->app->static_cache;
    const char *v = c ? gust__static_cache_version(c, path) : NULL;
    while (*path == '/')
        path++;
    return v ? gust_arena_sprintf(h->req->arena, "%s%s?v=%s",
                                  s->static_url_prefix, path, v)
             : gust_arena_sprintf(h->req->arena, "%s%s", s->static_url_prefix,
                                  path);
}
