/* Internal contract of the web core (web_app.c, web_router.c,
 * web_handler.c, web_output.c, web_arguments.c, web_cookie.c,
 * web_access_log.c). Not installed. */
#ifndef GUST_WEB_INTERNAL_H
#define GUST_WEB_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "gust/template.h"
#include "gust/web.h"
#include "web_parts.h"

/* ---- Router (web_router.c) ---------------------------------------------- */

/* One piece of a reversible pattern: literal text followed by a group
 * (the last piece has no group). */
typedef struct gust__web_piece {
    char *text;
    bool group;
} gust__web_piece;

typedef struct gust__web_route {
    char *pattern;
    pcre2_code *re;
    char *host;
    pcre2_code *host_re; /* NULL: any host */
    const gust_handler_class *cls;
    gust_handler_class *merged; /* cls, when made from a base: owned */
    const gust_handler_class *declared; /* the class the route named */
    void *data;
    char *name;
    uint32_t groups;      /* capture groups in re */
    /* Named groups: PCRE2's name table (entry size and count). */
    uint32_t name_count, name_entry;
    PCRE2_SPTR name_table;
    /* Reverse form; NULL pieces: cannot be reversed. */
    gust__web_piece *pieces;
    size_t npieces;
    /* The whole pattern is this literal text (pieces[0]): matched with
     * strcmp. NULL for a real regex. */
    const char *literal;
} gust__web_route;

typedef struct gust__web_router {
    gust__web_route *routes;
    size_t count, cap;
    /* Match data sized for the route with most groups, kept for the app:
     * a match allocates nothing. */
    pcre2_match_data *md;
    uint32_t md_groups;
} gust__web_router;

/* The result of a match: path arguments decoded into the request arena. */
typedef struct gust__web_match {
    const gust__web_route *route; /* NULL: no match */
    const char **args;            /* groups, NULL for unset ones */
    size_t nargs;
} gust__web_match;

void gust__web_router_init(gust__web_router *r);
void gust__web_router_close(gust__web_router *r);
/* Compiles and appends routes; on failure nothing is appended. Returns 0,
 * -EINVAL (bad pattern, logged) or -ENOMEM. */
int gust__web_router_add(gust__web_router *r, const gust_route *routes);
/* Finds the route for path on host_name (may be NULL). Returns 0 (m->route
 * NULL when nothing matched) or -ENOMEM. */
int gust__web_router_match(gust__web_router *r, gust_arena *arena,
                           const char *path, const char *host_name,
                           gust__web_match *m);
/* A named group's value, from m's args. NULL when absent. */
const char *gust__web_route_kwarg(const gust__web_route *route,
                                  const gust__web_match *m, const char *name);
char *gust__web_router_reverse(const gust__web_router *r, gust_arena *arena,
                               const char *name, va_list ap);
/* The same with nargs arguments in an array. */
char *gust__web_router_reverse_argv(const gust__web_router *r,
                                    gust_arena *arena, const char *name,
                                    const char *const *args, size_t nargs);

/* ---- Application (web_app.c) -------------------------------------------- */

struct gust_app {
    gust__web_router router;
    gust_app_settings settings; /* strings point into owned copies */
    char **owned;               /* copied strings, freed with the app */
    size_t nowned;
    const char **secrets;       /* NULL-terminated copy, or NULL */
    gust_http_server *server;   /* made by gust_app_listen() */
    gust_http_server_options server_options;
    gust_template_loader *loader;
    gust__static_cache *static_cache;
    gust_static_options static_opts;
    gust_handler_class *default_merged; /* default_handler made from a base */
    const gust_handler_class *default_declared; /* the one the settings named */
};

/* ---- Handler (web_handler.c, web_output.c, web_cookie.c) ---------------- */

enum gust__handler_phase {
    GUST__PHASE_HEAD,    /* headers received, body not complete */
    GUST__PHASE_RUNNING, /* prepare / method called */
    GUST__PHASE_DONE,    /* finished */
};

struct gust_handler {
    gust_app *app;
    gust_http_request *req;
    /* The response's status and headers (gust__http_response_view_of()),
     * read without a call into the server each time. */
    const int *resp_status;
    const gust_http_headers *resp_headers;
    const gust_handler_class *cls;
    gust_handler_fn method; /* cls's function for the request's method */
    void *route_data;
    const gust__web_route *route; /* NULL for the default handler / 404 */
    gust__web_match match;
    void *state;
    gust_loop *loop;       /* NULL until gust_handler_loop() */
    enum gust__handler_phase phase;
    int busy;              /* calls into the class in progress */
    bool finished;         /* gust_handler_finish() done */
    bool released;         /* the request was given back to the server */
    bool headers_ready;    /* Content-Type and gzip decided */
    bool headers_sent;
    int render_error;
    bool error_sent;
    bool aborted;          /* an error after the headers: the connection is cut */
    bool conn_closed;
    bool no_compression;
    bool gzipping;
    bool prepared;         /* prepare ran */
    bool body_held;        /* the body waits for a coroutine prepare */
    bool user_known;       /* current_user asked for (or set) already */
    const char *current_user;
    const char *missing_arg; /* first GUST_REQUIRED argument missing */
    /* Buffered body, in the request arena. */
    char *body;
    size_t body_len, body_cap;
    gust__gzip *gz;
    const char *xsrf_token;
    bool xsrf_have_cookie_token;
    unsigned char xsrf_bytes[GUST__XSRF_TOKEN_BYTES];
    time_t xsrf_time;
    const char *allow;     /* Allow header of a 405 */
    char etag_line[26];    /* the automatic ETag's field line:
                              Etag: "<16 hex digits>"\r\n */
};

/* A class with a base, merged with its bases into one malloc'ed class
 * (free() it); NULL when out of memory. */
gust_handler_class *gust__handler_class_merge(const gust_handler_class *cls);

/* on_finish and the access log line, once, whether the response was sent
 * or the client went away first. */
void gust__handler_finish_hooks(gust_handler *h);
/* Releases the request if the handler finished and nothing runs in it. */
void gust__handler_maybe_release(gust_handler *h);
/* Headers and gzip decision before the first bytes go out. */
int gust__handler_prepare_headers(gust_handler *h);
/* Checks the XSRF token of a request that needs one: 0 when fine, else the
 * 403 was sent. */
int gust__handler_check_xsrf(gust_handler *h);
/* Hands the buffered body to the server; last ends a gzip stream. */
int gust__handler_push(gust_handler *h, bool last);
/* Drops the buffered body (for error pages). */
void gust__handler_discard_body(gust_handler *h);

/* The delegate the app gives to its server. */
extern const gust_http_delegate gust__web_delegate;

#endif /* GUST_WEB_INTERNAL_H */
