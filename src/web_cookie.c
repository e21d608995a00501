/* A handler's cookies: plain and signed, read and set, and the XSRF glue
 * (Tornado's get_cookie, set_secure_cookie, xsrf_token and
 * check_xsrf_cookie). Arguments and files are in web_arguments.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gust/log.h"
#include "web_internal.h"

/* ---- Cookies ------------------------------------------------------------- */

const char *gust_handler_get_cookie(gust_handler *h, const char *name,
                                    const char *def)
{
    gust_str v = gust_http_args_get_first(gust_http_request_cookies(h->req),
                                          gust_str_cstr(name));
    return v.ptr ? gust_str_dup(h->req->arena, v) : def;
}

int gust_handler_set_cookie(gust_handler *h, const char *name,
                            const char *value,
                            const gust_http_cookie_options *opts)
{
    if (h->headers_sent || h->finished)
        return -EINVAL;
    gust_http_cookie_options o = {0};
    if (opts)
        o = *opts;
    if (!o.path)
        o.path = "/";
    gust_str line;
    int rc = gust_http_format_set_cookie(h->req->arena, gust_str_cstr(name),
                                         gust_str_cstr(value ? value : ""), &o,
                                         &line);
    if (rc < 0)
        return rc;
    return gust_http_response_add_header(h->req, "Set-Cookie", line.ptr);
}

int gust_handler_clear_cookie(gust_handler *h, const char *name,
                              const char *path, const char *domain)
{
    gust_http_cookie_options o = {0};
    o.path = path ? path : "/";
    o.domain = domain;
    o.has_expires = true;
    o.expires = time(NULL) - 365 * 24 * 3600;
    o.has_max_age = true;
    o.max_age = 0;
    /* A prefixed cookie is only replaced by one with Secure (browsers
     * ignore the others, and set_cookie refuses to make them). */
    o.secure = name && (strncmp(name, "__Secure-", 9) == 0 ||
                        strncmp(name, "__Host-", 7) == 0);
    return gust_handler_set_cookie(h, name, "", &o);
}

/* ---- Signed cookies ------------------------------------------------------ */

int gust_handler_set_signed_cookie(gust_handler *h, const char *name,
                                   const char *value,
                                   const gust_http_cookie_options *opts)
{
    const gust_app_settings *s = &h->app->settings;
    if (!s->cookie_secrets)
        return -EINVAL;
    char *signed_value =
        gust_create_signed_value(h->req->arena, s->cookie_secrets,
                                 s->key_version, name, value, time(NULL));
    if (!signed_value)
        return -ENOMEM;
    if (!opts) {
        /* Tornado's set_signed_cookie default: expires in 30 days. */
        gust_http_cookie_options o = {.has_expires = true,
                                      .expires = time(NULL) + 30 * 86400};
        return gust_handler_set_cookie(h, name, signed_value, &o);
    }
    return gust_handler_set_cookie(h, name, signed_value, opts);
}

const char *gust_handler_get_signed_cookie(gust_handler *h, const char *name,
                                           double max_age_days)
{
    const gust_app_settings *s = &h->app->settings;
    const char *v = gust_handler_get_cookie(h, name, NULL);
    if (!v || !s->cookie_secrets)
        return NULL;
    return gust_decode_signed_value(h->req->arena, s->cookie_secrets, name, v,
                                    max_age_days > 0 ? max_age_days : 31,
                                    time(NULL));
}

/* ---- XSRF ------------------------------------------------------------------ */

/* The token bytes of this client: from its _xsrf cookie, or new ones sent
 * back in that cookie. */
static int xsrf_bytes(gust_handler *h)
{
    if (h->xsrf_token)
        return 0;
    const char *c = gust_handler_get_cookie(h, "_xsrf", NULL);
    if (c && gust__xsrf_decode(gust_str_cstr(c), h->xsrf_bytes,
                               &h->xsrf_time) == 0) {
        h->xsrf_have_cookie_token = true;
    } else {
        if (gust__xsrf_random(h->xsrf_bytes) < 0)
            return -EIO;
        h->xsrf_time = time(NULL);
    }
    char *tok = gust__xsrf_encode(h->req->arena, h->xsrf_bytes, h->xsrf_time);
    if (!tok)
        return -ENOMEM;
    h->xsrf_token = tok;
    if (!h->xsrf_have_cookie_token && !h->headers_sent && !h->finished)
        gust_handler_set_cookie(h, "_xsrf", tok, NULL);
    return 0;
}

const char *gust_handler_xsrf_token(gust_handler *h)
{
    return xsrf_bytes(h) == 0 ? h->xsrf_token : NULL;
}

const char *gust_handler_xsrf_form_html(gust_handler *h)
{
    const char *t = gust_handler_xsrf_token(h);
    if (!t)
        return NULL;
    /* The token holds only hex digits, '|' and digits: nothing to escape. */
    return gust_arena_sprintf(h->req->arena,
                              "<input type=\"hidden\" name=\"_xsrf\" "
                              "value=\"%s\"/>",
                              t);
}

int gust__handler_check_xsrf(gust_handler *h)
{
    gust_http_method m = h->req->method_id;
    if (!h->app->settings.xsrf_cookies || m == GUST_HTTP_GET ||
        m == GUST_HTTP_HEAD || m == GUST_HTTP_OPTIONS)
        return 0;
    const char *given = gust_handler_get_argument(h, "_xsrf", NULL);
    gust_str hv;
    if (!given) {
        hv = gust_http_headers_get_first(&h->req->headers,
                                         GUST_STR("X-Xsrftoken"));
        if (!hv.ptr)
            hv = gust_http_headers_get_first(&h->req->headers,
                                             GUST_STR("X-Csrftoken"));
        if (hv.ptr)
            given = gust_str_dup(h->req->arena, hv);
    }
    if (!given) {
        gust_handler_send_error(h, 403, "'_xsrf' argument missing from %s",
                                h->req->method);
        return -EACCES;
    }
    unsigned char want[GUST__XSRF_TOKEN_BYTES], got[GUST__XSRF_TOKEN_BYTES];
    time_t ts;
    const char *c = gust_handler_get_cookie(h, "_xsrf", NULL);
    if (!c || gust__xsrf_decode(gust_str_cstr(c), want, &ts) < 0) {
        gust_handler_send_error(h, 403, "'_xsrf' cookie missing or invalid");
        return -EACCES;
    }
    if (gust__xsrf_decode(gust_str_cstr(given), got, &ts) < 0 ||
        !gust__xsrf_equal(want, got)) {
        gust_handler_send_error(h, 403, "XSRF cookie does not match %s "
                                "argument", h->req->method);
        return -EACCES;
    }
    return 0;
}
