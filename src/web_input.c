/* What a handler reads: arguments, files, cookies, signed cookies, and the
 * XSRF token and check (Tornado's get_argument, get_cookie,
 * get_signed_cookie, xsrf_token, check_xsrf_cookie). */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "gust/log.h"
#include "web_internal.h"

/* ---- Arguments ----------------------------------------------------------- */

/* Tornado strips surrounding whitespace from argument values. */
static const char *stripped(gust_arena *a, gust_str v)
{
    while (v.len && (v.ptr[0] == ' ' || (v.ptr[0] >= '\t' && v.ptr[0] <= '\r')))
        v.ptr++, v.len--;
    while (v.len && (v.ptr[v.len - 1] == ' ' ||
                     (v.ptr[v.len - 1] >= '\t' && v.ptr[v.len - 1] <= '\r')))
        v.len--;
    return gust_str_dup(a, v);
}

static const char *one_argument(gust_handler *h, const gust_http_args *args,
                                const char *name, const char *def)
{
    gust_str v = gust_http_args_get_last(args, gust_str_cstr(name));
    if (v.ptr)
        return stripped(h->req->arena, v);
    if (def == GUST_REQUIRED) {
        if (!h->pending_status) {
            h->pending_status = 400;
            h->pending_message = gust_arena_sprintf(h->req->arena,
                                                    "Missing argument %s", name);
        }
        return NULL;
    }
    return def;
}

const char *gust_handler_get_argument(gust_handler *h, const char *name,
                                      const char *def)
{
    return one_argument(h, &h->req->arguments, name, def);
}

const char *gust_handler_get_query_argument(gust_handler *h, const char *name,
                                            const char *def)
{
    return one_argument(h, &h->req->query_arguments, name, def);
}

const char *gust_handler_get_body_argument(gust_handler *h, const char *name,
                                           const char *def)
{
    return one_argument(h, &h->req->body_arguments, name, def);
}

static size_t all_arguments(gust_handler *h, const gust_http_args *args,
                            const char *name, const char ***values)
{
    gust_str n = gust_str_cstr(name);
    size_t count = gust_http_args_count_name(args, n);
    *values = NULL;
    if (!count)
        return 0;
    const char **out = gust_arena_alloc(h->req->arena, count * sizeof *out);
    if (!out)
        return 0;
    size_t cursor = 0, i = 0;
    gust_str v;
    while (i < count && gust_http_args_next(args, n, &cursor, &v))
        if (!(out[i++] = stripped(h->req->arena, v)))
            return 0;
    *values = out;
    return i;
}

size_t gust_handler_get_arguments(gust_handler *h, const char *name,
                                  const char ***values)
{
    return all_arguments(h, &h->req->arguments, name, values);
}

size_t gust_handler_get_query_arguments(gust_handler *h, const char *name,
                                        const char ***values)
{
    return all_arguments(h, &h->req->query_arguments, name, values);
}

size_t gust_handler_get_body_arguments(gust_handler *h, const char *name,
                                       const char ***values)
{
    return all_arguments(h, &h->req->body_arguments, name, values);
}

const gust_http_file *gust_handler_get_file(gust_handler *h, const char *name)
{
    return gust_http_files_get(&h->req->files, gust_str_cstr(name));
}

/* ---- Cookies ------------------------------------------------------------- */

const char *gust_handler_get_cookie(gust_handler *h, const char *name,
                                    const char *def)
{
    const gust_http_args *c = gust_http_request_cookies(h->req);
    gust_str v = gust_http_args_get_first(c, gust_str_cstr(name));
    return v.ptr ? gust_str_dup(h->req->arena, v) : def;
}

int gust_handler_set_cookie(gust_handler *h, const char *name, const char *value,
                            const gust_http_cookie_options *opts)
{
    gust_http_cookie_options o = {.path = "/"};
    if (opts)
        o = *opts;
    gust_str line;
    int rc = gust_http_format_set_cookie(h->req->arena, gust_str_cstr(name),
                                         gust_str_cstr(value), &o, &line);
    if (rc < 0)
        return rc;
    return gust_handler_add_header(h, "Set-Cookie", line.ptr);
}

int gust_handler_clear_cookie(gust_handler *h, const char *name,
                              const char *path, const char *domain)
{
    gust_http_cookie_options o = {
        .path = path ? path : "/",
        .domain = domain,
        .has_expires = true,
        .expires = time(NULL) - 365 * 24 * 3600,
        .has_max_age = true,
        .max_age = 0,
    };
    return gust_handler_set_cookie(h, name, "", &o);
}

int gust_handler_set_signed_cookie(gust_handler *h, const char *name,
                                   const char *value,
                                   const gust_http_cookie_options *opts)
{
    int version;
    const char *const *secrets = gust__app_secrets(h->app, &version);
    if (!secrets) {
        gust_log_error("web", "set_signed_cookie: no cookie_secret in the "
                       "settings");
        return -EINVAL;
    }
    char *signed_value = gust_create_signed_value(h->req->arena, secrets,
                                                  version, name, value,
                                                  time(NULL));
    if (!signed_value)
        return -EINVAL;
    return gust_handler_set_cookie(h, name, signed_value, opts);
}

const char *gust_handler_get_signed_cookie(gust_handler *h, const char *name,
                                           double max_age_days)
{
    int version;
    const char *const *secrets = gust__app_secrets(h->app, &version);
    const char *raw = gust_handler_get_cookie(h, name, NULL);
    if (!secrets || !raw)
        return NULL;
    if (max_age_days <= 0)
        max_age_days = 31;
    return gust_decode_signed_value(h->req->arena, secrets, name, raw,
                                    max_age_days, time(NULL));
}

/* ---- XSRF ---------------------------------------------------------------- */

/* The token from the _xsrf cookie, once per request: 0 when there is a
 * valid one. */
static int cookie_token(gust_handler *h)
{
    if (!h->xsrf_cookie_checked) {
        h->xsrf_cookie_checked = true;
        const char *c = gust_handler_get_cookie(h, "_xsrf", NULL);
        time_t ts;
        h->xsrf_cookie_ok = c && gust__xsrf_decode(gust_str_cstr(c),
                                                   h->xsrf_raw, &ts) == 0;
    }
    return h->xsrf_cookie_ok ? 0 : -EINVAL;
}

const char *gust_handler_xsrf_token(gust_handler *h)
{
    if (h->xsrf_token)
        return h->xsrf_token;
    bool fresh = cookie_token(h) != 0;
    if (fresh) {
        if (gust__xsrf_random(h->xsrf_raw) < 0)
            return NULL;
        h->xsrf_cookie_ok = true;
    }
    /* A fresh mask each time the token is shown (BREACH); the cookie keeps
     * whichever encoding it was set with. */
    h->xsrf_token = gust__xsrf_encode(h->req->arena, h->xsrf_raw, time(NULL));
    if (fresh && h->xsrf_token)
        gust_handler_set_cookie(h, "_xsrf", h->xsrf_token, NULL);
    return h->xsrf_token;
}

const char *gust_handler_xsrf_form_html(gust_handler *h)
{
    const char *t = gust_handler_xsrf_token(h);
    return t ? gust_arena_sprintf(h->req->arena,
                                  "<input type=\"hidden\" name=\"_xsrf\" "
                                  "value=\"%s\"/>", t)
             : NULL;
}

int gust__xsrf_check(gust_handler *h)
{
    const char *m = h->req->method;
    if (!h->app->settings.xsrf_cookies || strcmp(m, "GET") == 0 ||
        strcmp(m, "HEAD") == 0 || strcmp(m, "OPTIONS") == 0)
        return 0;
    const char *given = NULL;
    gust_str hv;
    if (!(h->cls->flags & GUST_HANDLER_STREAM_BODY))
        given = gust_handler_get_argument(h, "_xsrf", NULL);
    if (!given && (hv = gust_http_headers_get_first(&h->req->headers,
                                                    GUST_STR("X-Xsrftoken"))).ptr)
        given = gust_str_dup(h->req->arena, hv);
    if (!given && (hv = gust_http_headers_get_first(&h->req->headers,
                                                    GUST_STR("X-Csrftoken"))).ptr)
        given = gust_str_dup(h->req->arena, hv);
    const char *why = NULL;
    unsigned char token[GUST__XSRF_TOKEN_BYTES];
    time_t ts;
    if (!given)
        why = "'_xsrf' argument missing from the request";
    else if (gust__xsrf_decode(gust_str_cstr(given), token, &ts) < 0)
        why = "'_xsrf' argument has an invalid format";
    else if (cookie_token(h) < 0)
        why = "'_xsrf' cookie missing or invalid";
    else if (!gust__xsrf_equal(token, h->xsrf_raw))
        why = "XSRF cookie does not match the request's token";
    if (!why)
        return 0;
    gust__handler_error_page(h, 403, why);
    return 403;
}
