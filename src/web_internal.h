/* Private layout of the web framework, shared by web_app.c (application,
 * settings, server), web_router.c (routes, matching, reverse URLs),
 * web_handler.c (request lifecycle, the three styles, errors, access log),
 * web_output.c (response, gzip, render) and web_input.c (arguments,
 * cookies, signed cookies, XSRF). Not installed. */
#ifndef GUST_WEB_INTERNAL_H
#define GUST_WEB_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>

#include "gust/http_server.h"
#include "gust/template.h"
#include "gust/web.h"
#include "web_parts.h"

/* One compiled route. */
typedef struct gust__route {
    char *pattern;       /* as given (owned) */
    char *name;          /* owned, or NULL */
    const gust_handler_class *cls;
    void *data;
    pcre2_code *re;
    pcre2_code *host_re; /* NULL: any host */
    uint32_t groups;     /* capture groups */
    char **group_names;  /* [groups], NULL entries for unnamed (owned) */
    /* reverse_url: the fixed parts between groups, unescaped ([groups + 1],
     * owned), or NULL when the pattern cannot be reversed. */
    char **fixed;
} gust__route;

struct gust_app {
    gust__route *routes;
    size_t nroutes, cap;
    uint32_t max_groups;
    pcre2_match_data *md; /* sized for max_groups; the app runs on one loop */

    gust_app_settings settings; /* strings below are owned copies */
    char **secrets;             /* NULL-terminated copy, or NULL */
    gust_template_loader *templates;
    gust__static_cache *static_cache;
    gust_static_options static_opts;
    gust_http_server *server;   /* made by gust_app_listen() */
    gust_http_server_options server_opts;
};

/* Why the handler runs: a matched route, the default handler, or none. */
struct gust_handler {
    gust_app *app;
    const gust__route *route;      /* NULL for the default handler / 404 */
    const gust_handler_class *cls; /* NULL: answer 404 */
    void *route_data;
    gust_http_request *req;
    void *state;

    size_t nargs;
    const char **args;             /* decoded, NULL for unmatched groups */
    char *const *arg_names;

    /* Output. The body is gathered here until flush or finish, so that an
     * error page can discard it and gzip can be decided at the first
     * send. In the request arena. */
    char *body;
    size_t body_len, body_cap;
    bool headers_sent;     /* flushed at least once */
    bool finished;
    bool error_sent;       /* an error page answered this request */
    bool ctype_set;        /* the handler set Content-Type */
    bool no_compression;
    bool gzip_on;          /* decided at the first send */
    gust__gzip *gz;
    bool sendfile_used;

    /* Lifecycle. */
    bool prepared;
    bool in_method;        /* running prepare or the method */
    bool is_async;         /* the method returned GUST_HANDLER_ASYNC */
    bool conn_closed;
    int pending_status;    /* framework error to answer once the method
                              returns (400 missing argument), or 0 */
    const char *pending_message;
    const char *xsrf_token; /* encoded, this request's */
    bool xsrf_cookie_checked;
    bool xsrf_cookie_ok;
    unsigned char xsrf_raw[GUST__XSRF_TOKEN_BYTES];
};

/* web_router.c */
int gust__router_add(gust_app *app, const gust_route *r);
void gust__router_free_route(gust__route *r);
/* Finds the route for req; fills h->route, cls, route_data and path
 * arguments. Returns 0, or -ENOMEM. A miss leaves h->route NULL. */
int gust__router_match(gust_app *app, gust_handler *h);
char *gust__router_reverse(gust_app *app, gust_arena *arena,
                           const char *name, va_list ap);

/* web_handler.c */
extern const gust_http_delegate gust__app_delegate;
/* Runs send_error's page for status (message may be NULL). */
void gust__handler_error_page(gust_handler *h, int status,
                              const char *message);

/* web_output.c */
/* Sends what is gathered (headers first). last: finishing. */
int gust__output_send(gust_handler *h, bool last);
/* Forgets the body and the headers the handler set. */
void gust__output_clear(gust_handler *h);
/* Releases the gzip encoder (at finish). */
void gust__output_release(gust_handler *h);

/* web_input.c */
/* The XSRF check for a request that needs one: 0, or answers 403 and
 * returns 403. */
int gust__xsrf_check(gust_handler *h);
/* The app's secrets (NULL-terminated) and key version for signing. */
const char *const *gust__app_secrets(const gust_app *app, int *key_version);

#endif /* GUST_WEB_INTERNAL_H */
