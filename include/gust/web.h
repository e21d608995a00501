/* The web framework: applications, routes and request handlers (Tornado's
 * tornado.web and tornado.routing).
 *
 * E4 of shared/TORNADO_EXAMPLES.md, in C:
 *
 *     static int main_get(gust_handler *h)
 *     {
 *         return gust_handler_write_str(h, "Hello, world");
 *     }
 *     static const gust_handler_class main_handler = {.get = main_get};
 *
 *     int main(void)
 *     {
 *         const gust_route routes[] = {GUST_ROUTE("/", &main_handler),
 *                                      GUST_ROUTES_END};
 *         gust_app *app = gust_app_new(routes, NULL);
 *         gust_app_listen(app, 8888, NULL);
 *         gust_loop_start(gust_loop_current());
 *     }
 *
 * The explicit form E4 recommends learning first, and the other start forms
 * of tcp_server.h, take the application as the server's handler:
 *
 *     gust_http_server *srv = gust_http_server_new(gust_app_http_handler(app), NULL);
 *     gust_http_server_listen(srv, 8000, NULL);   (or bind + start(0))
 *
 * ROUTING. Each route's pattern is a PCRE2 regex (compiled once, with JIT)
 * matched against the whole request path, anchored at both ends as Tornado
 * anchors it (a trailing '$' is added when missing). Capture groups are the
 * handler's path arguments, percent-decoded: positional in order, or by
 * name for named groups ((?<id>[0-9]+)). Routes are tried in order; a route
 * with a host pattern only matches requests whose Host name matches it. No
 * match gives the default handler, or a 404.
 *
 * A HANDLER is a gust_handler_class: per-method functions plus hooks. For
 * each request the application creates a gust_handler (in the request's
 * arena), then calls, in order: prepare (if any), the method function, and
 * on_finish once the response is finished. A missing method function gives
 * 405 with an Allow header listing the methods the class has. A class may
 * need a signed-in user for its methods (Tornado's @authenticated and
 * get_current_user: GUST_HANDLER_AUTHENTICATED, authenticated_methods,
 * settings.login_url) and may extend another class, a built-in one
 * included (.base).
 *
 * THREE STYLES, all first-class, chosen by what a method function returns:
 *   - plain: it returns 0 and the response is finished for it (if the
 *     function did not finish it);
 *   - asynchronous: it returns GUST_HANDLER_ASYNC and finishes later, from
 *     a callback (timer, future, fetch), with gust_handler_finish();
 *   - coroutine: the class has flags GUST_HANDLER_COROUTINE; prepare and the
 *     method run on their own stack (future.h) and may gust_await() any
 *     future; they return 0 (finish for me) or GUST_HANDLER_ASYNC as above.
 * A streaming-body class (GUST_HANDLER_STREAM_BODY, Tornado's
 * stream_request_body) gets prepare when the head arrives, then
 * data_received per chunk, then the method once the body is complete.
 * The first chunk never arrives before prepare has returned: with
 * GUST_HANDLER_COROUTINE, prepare is a coroutine too and the body is held
 * back (gust_http_request_pause_body) while it awaits. Its XSRF check can
 * only use the X-Xsrftoken / X-Csrftoken headers.
 * A handler finished from inside one of its own functions (a plain method
 * calling gust_handler_finish) stays valid until that function returns.
 *
 * ERRORS. A method returning < 0 (or a coroutine failing) is logged with
 * the code and answered 500. gust_handler_send_error() answers any status
 * through the class's write_error (default: a small HTML page; in debug
 * mode it also names the handler, the route and the message). Errors
 * raised by the framework itself (400 for a missing argument, 403 for a
 * failed XSRF check, 405) go through the same path. Once an error page is
 * sent, later writes return -EINVAL and the method's return value is
 * ignored.
 *
 * MEMORY. A handler, everything it returns (arguments, cookies, URLs...)
 * and its class state live in the request's arena and are freed when the
 * request ends (after on_finish). Nothing a gust_handler_* call returns
 * needs free().
 */
#ifndef GUST_WEB_H
#define GUST_WEB_H

#include "gust/common.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "gust/arena.h"
#include "gust/future.h"
#include "gust/http.h"
#include "gust/http_server.h"
#include "gust/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Jansson's value type, without pulling jansson.h into every user. */
struct json_t;

typedef struct gust_app gust_app;
typedef struct gust_handler gust_handler;

/* A method function's return value for "I will finish later". */
#define GUST_HANDLER_ASYNC 1

/* gust_handler_class.flags */
#define GUST_HANDLER_COROUTINE 0x1u   /* prepare and methods run as coroutines */
#define GUST_HANDLER_STREAM_BODY 0x2u /* body goes to data_received */
/* Every method needs a user (Tornado's @authenticated on each): see
 * gust_handler_class.authenticated_methods for what happens without one. */
#define GUST_HANDLER_AUTHENTICATED 0x4u

/* A method's bit in gust_handler_class.authenticated_methods:
 * GUST_HTTP_METHOD_BIT(GUST_HTTP_METHOD_POST). */
#define GUST_HTTP_METHOD_BIT(m) (1u << (unsigned)(m))

/* A method function, prepare: 0, GUST_HANDLER_ASYNC, or < 0 (500). A
 * prepare that finishes the request (or sends an error) stops the method
 * from running; a prepare returning GUST_HANDLER_ASYNC is an error
 * (prepare waits by being a coroutine instead). */
typedef int (*gust_handler_fn)(gust_handler *h);

typedef struct gust_handler_class {
    const char *name; /* for logs and debug pages; NULL: "handler" */
    unsigned flags;
    /* Bytes of per-request state, zeroed, at gust_handler_state(). */
    size_t state_size;

    /* Called first, with the route's data (Tornado's initialize(**kwargs)).
     * Return < 0 to answer 500. */
    int (*initialize)(gust_handler *h, void *route_data);
    gust_handler_fn prepare;
    gust_handler_fn get, head, post, put, delete_, patch, options;
    /* Streaming body (GUST_HANDLER_STREAM_BODY): each chunk, borrowed.
     * Return < 0 to abort with 400. */
    int (*data_received)(gust_handler *h, const char *chunk, size_t len);
    /* Once the response is finished (also after an error page), or the
     * client went away: for logging and cleanup, not for writing. */
    void (*on_finish)(gust_handler *h);
    /* The client closed the connection while an asynchronous or coroutine
     * handler still works on it. The handler must still finish (writes
     * then fail harmlessly). */
    void (*on_connection_close)(gust_handler *h);
    /* Writes the body of an error page. status is set already; message is
     * the one given to send_error (may be NULL). NULL: default page. */
    void (*write_error)(gust_handler *h, int status, const char *message);

    /* Extending a class (Tornado's subclassing): every hook, method and
     * name this class leaves NULL (0 for state_size) is base's; flags and
     * authenticated_methods add to base's. Resolved once, when the route
     * is added (so gust_handler_get_class() returns the merged copy the
     * app keeps). state_size is the larger of the two: a class that
     * extends one with state must begin its own state with the base's.
     * Protecting the static files of a directory, for instance:
     *     static const gust_handler_class private_files = {
     *         .base = &gust_static_file_handler,
     *         .flags = GUST_HANDLER_AUTHENTICATED,
     *         .get_current_user = user_from_cookie};
     * (a static initializer cannot copy gust_static_file_handler's fields,
     * but it can point at it). */
    const struct gust_handler_class *base;
    /* Called when the handler is created, before initialize, and again
     * when an error page discards the headers (Tornado's
     * set_default_headers): set headers every response of the class
     * has, such as Server or Access-Control-Allow-Origin. */
    void (*set_default_headers)(gust_handler *h);
    /* Tornado's get_current_user: the signed-in user (e.g. the value of a
     * signed cookie, in the arena), or NULL. Called at most once per
     * request, by gust_handler_current_user(). NULL: nobody is signed in
     * (unless prepare calls gust_handler_set_current_user()). */
    const char *(*get_current_user)(gust_handler *h);
    /* Methods that need a user (as Tornado's @authenticated), besides all
     * of them with GUST_HANDLER_AUTHENTICATED: GUST_HTTP_METHOD_BIT(...)
     * ORed. Checked after prepare returns (for GUST_HANDLER_STREAM_BODY
     * classes that is before the body is read): with no current user, GET
     * and HEAD are redirected (302) to the app's login_url with
     * ?next=<the request URI, url-encoded> added when login_url has no '?'
     * (an absolute login_url gets an absolute next URL), other methods get
     * 403; no login_url set gives 500. */
    unsigned authenticated_methods;
} gust_handler_class;

/* A route (Tornado's URLSpec). An array of them ends with GUST_ROUTES_END
 * (a NULL pattern). */
typedef struct gust_route {
    const char *pattern;              /* "/item/([0-9]+)" */
    const gust_handler_class *handler;
    void *data;                       /* route data: initialize(), route_data() */
    const char *name;                 /* for reverse_url; NULL: none */
    const char *host;                 /* host-name regex; NULL: any host */
} gust_route;

/* A route with designated fields, so that -Wextra stays quiet about the
 * ones left out: GUST_ROUTE("/item/([0-9]+)", &item, .name = "item"). */
#define GUST_ROUTE(pattern_, handler_, ...)                                    \
    {.pattern = (pattern_), .handler = (handler_), __VA_ARGS__}
#define GUST_ROUTES_END {.pattern = NULL}

/* Per-request access-log hook; default (gust_handler_log_request): one
 * INFO line per request on module "access": "200 GET /path?q (127.0.0.1)
 * 0.42ms" (WARNING for 4xx, ERROR for 5xx), as Tornado's log_request, or
 * the line of settings.access_log_format. */
typedef void (*gust_log_request_fn)(gust_handler *h, void *data);

/* The line the access log writes (settings.access_log_format). */
typedef enum gust_access_log_format {
    /* Tornado's, after the usual log prefix:
     * "[I 261207 16:24:38 4711 - access] 200 GET /a?b (127.0.0.1) 0.42ms" */
    GUST_ACCESS_LOG_TORNADO = 0,
    /* NCSA common log format, no prefix:
     * 127.0.0.1 - - [07/Dec/2026:16:24:38 +0000] "GET /a?b HTTP/1.1" 200 12 */
    GUST_ACCESS_LOG_COMMON,
    /* Combined: common plus "referer" "user-agent" (nginx's default). */
    GUST_ACCESS_LOG_COMBINED,
    /* One JSON object per line, no prefix: time (RFC 3339, UTC), remote_ip,
     * method, uri, version, status, bytes, request_time_us, referer,
     * user_agent, user, handler, worker (task id or null). */
    GUST_ACCESS_LOG_JSON,
} gust_access_log_format;

/* Flags of gust_access_log_format_line(). MICROSECONDS: Tornado's line
 * ends "421us" instead of "0.42ms"; common and combined get the request
 * time in microseconds as a last field (Apache's %D). JSON always has it. */
#define GUST_ACCESS_LOG_MICROSECONDS 1u

/* What the access log knows of a finished request, for log functions that
 * add to the default line (issue 16) or build their own. Strings are
 * borrowed from the request (valid until the log function returns); NULL
 * when absent. */
typedef struct gust_access_log_entry {
    int status;
    const char *method;
    const char *uri;       /* the request-target as sent */
    const char *version;   /* "HTTP/1.1" */
    const char *remote_ip; /* with xheaders, X-Real-Ip / X-Forwarded-For */
    const char *user;      /* for the application to set; NULL: "-" */
    const char *referer;
    const char *user_agent;
    /* Response body bytes: 0 for HEAD, 204, 304; -1 when unknown (a body
     * flushed in parts without Content-Length, or gzipped). */
    long long bytes;
    uint64_t request_time_us; /* from the complete head to now */
    double start_time;        /* wall clock (seconds since the epoch) */
    const char *handler;      /* the handler class's name, or NULL */
    /* strlen(uri) and strlen(remote_ip) when known; 0: measured when the
     * line is formatted (an entry made by hand can leave them out). */
    size_t uri_len;
    size_t remote_ip_len;
} gust_access_log_entry;

/* Fills e for h (from a log function or on_finish). */
GUST_EXTERN void gust_handler_access_log_entry(gust_handler *h,
                                               gust_access_log_entry *e);

/* Formats e as format (a gust_access_log_format) with flags into buf
 * (size bytes, NUL-terminated, cut if too small) and returns its length.
 * The Tornado format is the message without the log prefix: pass it to
 * gust_log_message() (or gust_log("%s")); the others are whole lines for
 * gust_log_raw_line(). */
GUST_EXTERN size_t gust_access_log_format_line(const gust_access_log_entry *e,
                                               int format, unsigned flags,
                                               char *buf, size_t size);

/* The level Tornado logs a status at: INFO below 400, WARNING for 4xx,
 * ERROR for 5xx. */
GUST_EXTERN int gust_access_log_level(int status);

/* The default access log: the line of the app's access_log_format, at
 * gust_access_log_level(status) on module "access". A log function may
 * call it and log more of its own. */
GUST_EXTERN void gust_handler_log_request(gust_handler *h);

typedef struct gust_app_settings {
    bool debug;              /* error pages say where they came from */
    /* Key for signed cookies and XSRF tokens. For key rotation give
     * cookie_secrets instead: NULL-terminated, the secret of version i at
     * index i, new values signed with key_version. */
    const char *cookie_secret;
    const char *const *cookie_secrets;
    int key_version;
    bool xsrf_cookies;       /* check _xsrf on POST/PUT/PATCH/DELETE... */
    /* Static files: static_path adds the route static_url_prefix + "(.*)"
     * to gust_static_file_handler. Prefix NULL: "/static/". */
    const char *static_path;
    const char *static_url_prefix;
    /* Templates for gust_handler_render(); NULL: render is -ENOENT. */
    const char *template_path;
    /* gzip compressible responses for clients that accept it (a whole
     * body under 1 KiB is sent as it is, as Tornado does). */
    bool compress_response;
    /* Used when no route matches; NULL: 404. */
    const gust_handler_class *default_handler;
    void *default_handler_data;
    /* Access log; NULL: the default line (gust_handler_log_request). */
    gust_log_request_fn log_function;
    void *log_data;
    int access_log_format;        /* gust_access_log_format; 0: Tornado's */
    bool access_log_microseconds; /* GUST_ACCESS_LOG_MICROSECONDS */
    /* Options of the server made by gust_app_listen(). NULL: defaults. */
    const gust_http_server_options *server_options;
    /* Where authenticated methods send visitors who are not signed in
     * (Tornado's login_url): "/login", or an absolute URL. */
    const char *login_url;
} gust_app_settings;

/* ---- Application -------------------------------------------------------- */

/* Creates an application from routes (GUST_ROUTES_END-terminated; copied, strings
 * included; handler classes and route data are borrowed and must outlive
 * the app) and settings (may be NULL; copied, strings included, also those
 * of server_options, whose TLS context gets a reference of the app's own).
 * Returns NULL with errno set:
 * EINVAL for a pattern that does not compile (logged with the pattern and
 * PCRE2's message), ENOMEM. */
GUST_EXTERN gust_app *gust_app_new(const gust_route *routes,
                                   const gust_app_settings *settings);

/* Appends routes matched after the existing ones. Returns 0 or -EINVAL
 * (bad pattern, logged), -ENOMEM. */
GUST_EXTERN int gust_app_add_routes(gust_app *app, const gust_route *routes);

/* Shorthand for form 1 of the start forms: creates the app's HTTP server
 * (settings.server_options) and listens on port (address NULL: all). The
 * app owns that server. Returns 0 or a negative code. */
GUST_EXTERN int gust_app_listen(gust_app *app, int port, const char *address);

/* The server made by gust_app_listen(), or NULL. */
GUST_EXTERN gust_http_server *gust_app_server(const gust_app *app);

/* What gust_http_server_new() takes to serve the app. */
GUST_EXTERN gust_http_handler gust_app_http_handler(gust_app *app);

/* The URL path of the route named name, its capture groups replaced by
 * args (percent-escaped; a NULL-terminated list of strings), in arena.
 * Returns NULL when no route has that name, the route cannot be reversed
 * (a group that is not a simple capture) or the argument count differs. */
GUST_EXTERN char *gust_app_reverse_url(gust_app *app, gust_arena *arena,
                                       const char *name, ...);

GUST_EXTERN const gust_app_settings *gust_app_get_settings(const gust_app *app);

/* Frees the app and the server gust_app_listen() made (closing its
 * connections). Servers made with gust_http_server_new() must be freed
 * first. NULL: no-op. */
GUST_EXTERN void gust_app_free(gust_app *app);

/* ---- Handler: what it knows -------------------------------------------- */

GUST_EXTERN gust_http_request *gust_handler_request(gust_handler *h);
GUST_EXTERN gust_app *gust_handler_app(gust_handler *h);
GUST_EXTERN const gust_handler_class *gust_handler_get_class(gust_handler *h);
/* The class exactly as the route (or default_handler) named it. It differs
 * from gust_handler_get_class() only for a class with a base, which is
 * routed as a merged copy: a class that embeds gust_handler_class as its
 * first member (gust_websocket_class does) finds its own fields from this
 * one, never from the copy. Valid while the app lives. */
GUST_EXTERN const gust_handler_class *gust_handler_declared_class(
    gust_handler *h);
GUST_EXTERN void *gust_handler_route_data(gust_handler *h);
/* The class's state_size bytes (zeroed at creation); NULL when 0. */
GUST_EXTERN void *gust_handler_state(gust_handler *h);
GUST_EXTERN gust_arena *gust_handler_arena(gust_handler *h);
GUST_EXTERN gust_loop *gust_handler_loop(gust_handler *h);

/* Path arguments from the route's capture groups, percent-decoded:
 * positional (index from 0) and named. NULL when absent (an optional group
 * that did not match, or an index out of range). */
GUST_EXTERN size_t gust_handler_path_arg_count(gust_handler *h);
GUST_EXTERN const char *gust_handler_path_arg(gust_handler *h, size_t index);
GUST_EXTERN const char *gust_handler_path_kwarg(gust_handler *h,
                                                const char *name);

/* ---- Handler: the current user ------------------------------------------ */

/* The signed-in user (Tornado's current_user): what the class's
 * get_current_user returned, called on the first use and cached for the
 * request; or what gust_handler_set_current_user() set. NULL: nobody.
 * Templates rendered by the handler see it as current_user (None when
 * NULL). */
GUST_EXTERN const char *gust_handler_current_user(gust_handler *h);
/* Sets the current user (copied into the arena; NULL: nobody), as
 * assigning self.current_user in Tornado's prepare does. Returns 0 or
 * -ENOMEM. */
GUST_EXTERN int gust_handler_set_current_user(gust_handler *h,
                                              const char *user);

/* ---- Handler: arguments, files, cookies -------------------------------- */

/* Pass as a default to make an argument required: when it is missing the
 * request gets 400 "Missing argument <name>" once the method returns, and
 * the call returns NULL. */
GUST_EXTERN extern const char gust_argument_required[];
#define GUST_REQUIRED gust_argument_required

/* The last value of argument name from the query and the body (Tornado's
 * get_argument), stripped of surrounding whitespace; def when missing
 * (NULL is a fine default). */
GUST_EXTERN const char *gust_handler_get_argument(gust_handler *h,
                                                  const char *name,
                                                  const char *def);
GUST_EXTERN const char *gust_handler_get_query_argument(gust_handler *h,
                                                        const char *name,
                                                        const char *def);
GUST_EXTERN const char *gust_handler_get_body_argument(gust_handler *h,
                                                       const char *name,
                                                       const char *def);

/* Every value of argument name, in order: sets *values to an array of
 * count strings (in the arena) and returns count (0: *values NULL). */
GUST_EXTERN size_t gust_handler_get_arguments(gust_handler *h, const char *name,
                                              const char ***values);
GUST_EXTERN size_t gust_handler_get_query_arguments(gust_handler *h,
                                                    const char *name,
                                                    const char ***values);
GUST_EXTERN size_t gust_handler_get_body_arguments(gust_handler *h,
                                                   const char *name,
                                                   const char ***values);

/* The first uploaded file of form field name, or NULL. All files are in
 * gust_handler_request(h)->files. */
GUST_EXTERN const gust_http_file *gust_handler_get_file(gust_handler *h,
                                                        const char *name);

/* A request cookie's value, or def. */
GUST_EXTERN const char *gust_handler_get_cookie(gust_handler *h,
                                                const char *name,
                                                const char *def);

/* Adds a Set-Cookie header (opts may be NULL: Path=/). Returns 0, or
 * -EINVAL for a name, value or attribute that could inject (http.h's
 * gust_http_format_set_cookie rules). */
GUST_EXTERN int gust_handler_set_cookie(gust_handler *h, const char *name,
                                        const char *value,
                                        const gust_http_cookie_options *opts);
/* Expires the cookie (path and domain must match how it was set; NULL
 * path: "/"). A __Secure- or __Host- name is cleared with Secure, without
 * which browsers ignore the Set-Cookie. */
GUST_EXTERN int gust_handler_clear_cookie(gust_handler *h, const char *name,
                                          const char *path, const char *domain);

/* Signed cookies, in Tornado's version 2 format (HMAC-SHA256 over the
 * name, value and a timestamp, with the key version), so that Gust and
 * Tornado applications sharing a secret read each other's cookies.
 * set: signs with the app's cookie secret (-EINVAL when none is set);
 * opts NULL: Path=/ and Expires in 30 days (Tornado's expires_days=30).
 * get: the value if the signature verifies (constant-time comparison)
 * under the key version it names and the timestamp is at most
 * max_age_days old (<= 0: 31 days) and at most 5 minutes in the future
 * (clock skew between servers); NULL otherwise
 * (tampered, expired, unknown key version, missing). */
GUST_EXTERN int gust_handler_set_signed_cookie(
    gust_handler *h, const char *name, const char *value,
    const gust_http_cookie_options *opts);
GUST_EXTERN const char *gust_handler_get_signed_cookie(gust_handler *h,
                                                       const char *name,
                                                       double max_age_days);

/* The same signing without a handler (Tornado's create_signed_value and
 * decode_signed_value). secrets: NULL-terminated, by key version. now:
 * seconds since the epoch. Results in arena; create returns NULL on
 * -ENOMEM or a bad version, decode NULL for any invalid value. Decoding
 * reads version 2 only; max_age_days <= 0 means 31; a value holding a NUL
 * byte is cut at it. */
GUST_EXTERN char *gust_create_signed_value(gust_arena *arena,
                                           const char *const *secrets,
                                           int key_version, const char *name,
                                           const char *value, time_t now);
GUST_EXTERN char *gust_decode_signed_value(gust_arena *arena,
                                           const char *const *secrets,
                                           const char *name,
                                           const char *signed_value,
                                           double max_age_days, time_t now);

/* XSRF (settings.xsrf_cookies): the token for this client (sets the
 * _xsrf cookie when it has none), Tornado's masked version 2 format; and
 * the hidden form field carrying it. A non-GET/HEAD/OPTIONS request
 * without a matching _xsrf argument or X-Xsrftoken / X-Csrftoken header
 * gets 403 before prepare runs. */
GUST_EXTERN const char *gust_handler_xsrf_token(gust_handler *h);
GUST_EXTERN const char *gust_handler_xsrf_form_html(gust_handler *h);

/* ---- Handler: output ---------------------------------------------------- *
 * The body is buffered until flush or finish. Header calls made after the
 * headers were sent (after a flush) return -EINVAL. Values with CR, LF or
 * NUL, and names that are not tokens, are refused with -EINVAL. */

/* reason NULL: the standard phrase; a code outside 100-599 is -EINVAL. */
GUST_EXTERN int gust_handler_set_status(gust_handler *h, int status,
                                        const char *reason);
GUST_EXTERN int gust_handler_get_status(gust_handler *h);
GUST_EXTERN int gust_handler_set_header(gust_handler *h, const char *name,
                                        const char *value);
GUST_EXTERN int gust_handler_add_header(gust_handler *h, const char *name,
                                        const char *value);
GUST_EXTERN int gust_handler_clear_header(gust_handler *h, const char *name);

/* Body bytes (copied). Default Content-Type: text/html; charset=UTF-8.
 * Return 0, -EINVAL after finish or an error page, GUST_ESTREAMCLOSED
 * when the client is gone, -ENOMEM. */
GUST_EXTERN int gust_handler_write(gust_handler *h, const void *data,
                                   size_t len);
GUST_EXTERN int gust_handler_write_str(gust_handler *h, const char *s);
GUST_EXTERN int gust_handler_printf(gust_handler *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes json (borrowed) compactly and sets Content-Type:
 * application/json; charset=UTF-8. Reals are printed the shortest way that
 * reads back the same, as Python's json.dumps: 0.3, 1.0, 1e+20. */
GUST_EXTERN int gust_handler_write_json(gust_handler *h,
                                        const struct json_t *json);

/* Sends headers and what is buffered; the response goes on chunked (or
 * within a Content-Length the handler set). cb (may be NULL) runs once the
 * bytes reached the kernel. */
GUST_EXTERN int gust_handler_flush(gust_handler *h,
                                   void (*cb)(gust_handler *h, int status,
                                              void *data),
                                   void *data);

/* Finishes the response (sending what is left), runs on_finish, logs the
 * request and frees the handler with the request: h must not be used
 * after. Safe to call once; -EINVAL after. As Tornado's finish, a 200
 * answer to GET or HEAD that was not flushed gets an Etag header (a hash
 * of its body, unless the handler set one: Tornado uses SHA-1, Gust the
 * faster 64-bit XXH3, 16 hex digits) and becomes a 304 with no body when
 * the request's If-None-Match names it. That Etag is written straight into
 * the head: on_finish and the log function do not find it among
 * gust_http_response_headers(). */
GUST_EXTERN int gust_handler_finish(gust_handler *h);
GUST_EXTERN bool gust_handler_finished(const gust_handler *h);

/* Redirects to url (relative URLs are sent as given) with status 301, 302
 * (status 0), 303, 307 or 308, then finishes. -EINVAL for another status,
 * a URL with CR/LF, or after the headers were sent. */
GUST_EXTERN int gust_handler_redirect(gust_handler *h, const char *url,
                                      int status);

/* Discards what was buffered and headers set, answers status through the
 * class's write_error with message (may be NULL; printf-style), finishes.
 * After a flush the headers are gone: it logs the error and closes the
 * connection without ending the body (no last chunk), so the client sees
 * a failed response rather than a short one that looks whole. Returns 0. */
GUST_EXTERN int gust_handler_send_error(gust_handler *h, int status,
                                        const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Renders template name (settings.template_path, loaded once and cached)
 * with context (borrowed, only read; may be NULL) and writes the result.
 * The template also sees these names when its context does not have them
 * (Tornado's template namespace; each made only if the template uses it):
 * "request" {method, uri, path, query, host, remote_ip, protocol},
 * "xsrf_form_html" (when xsrf_cookies is on), "current_user" (the
 * string, or None) and "static_url_prefix"; and it may call
 * static_url(path) and reverse_url(name, args...), which are
 * gust_handler_static_url() and gust_handler_reverse_url() below.
 * Returns 0, -ENOENT (no such template or no template_path), or the
 * template's error code (logged with file and line; the request gets 500
 * when the method returns that code). */
GUST_EXTERN int gust_handler_render(gust_handler *h, const char *name,
                                    struct json_t *context);
/* The same into a string in the arena (*len may be NULL). NULL on error. */
GUST_EXTERN char *gust_handler_render_string(gust_handler *h, const char *name,
                                             struct json_t *context,
                                             size_t *len);

/* The common case in one call, as Tornado's render("page.html", title=t,
 * n=3): the context is built from fmt and the values after it as
 * Jansson's json_pack builds it, and freed before the call returns:
 *     gust_handler_render_pack(h, "page.html", "{s:s, s:i, s:[s,s]}",
 *                              "title", t, "n", 3, "tags", "a", "b");
 * ("s?" takes a string that may be NULL, "O" a json_t * and adds a
 * reference, "o" steals one). Returns as gust_handler_render(), or
 * -EINVAL when the format and values do not make an object (logged with
 * Jansson's message). */
GUST_EXTERN int gust_handler_render_pack(gust_handler *h, const char *name,
                                         const char *fmt, ...);

/* The URL of a static file: static_url_prefix + path + "?v=" + the first
 * 8 hex digits of the file's SHA-256 (cached per path, recomputed when the
 * file's mtime changes). Without static_path, or for a missing file, the
 * URL has no ?v=. In the arena. */
GUST_EXTERN char *gust_handler_static_url(gust_handler *h, const char *path);

/* reverse_url into the handler's arena. */
GUST_EXTERN char *gust_handler_reverse_url(gust_handler *h, const char *name,
                                           ...);

/* ---- Static files (Tornado's StaticFileHandler) ------------------------- *
 * Route data: a gust_static_options. Serves files under root with
 * sendfile: Content-Type by extension, a strong ETag (a hash of device,
 * inode, size and mtime),
 * Last-Modified, If-None-Match / If-Modified-Since (304), Range with one
 * range (206, 416 with Content-Range: bytes * /size), HEAD, Cache-Control
 * max-age=31536000 when the URL has ?v=; paths with "..", NUL, encoded
 * dots, or resolving outside root (symlinks included) get 403; missing
 * files 404; a directory serves default_filename if set (a directory URL
 * without a trailing '/' is first redirected 301 to add it, as Tornado
 * does), else 403. If-Range is honoured; a range covering the whole file
 * gets 200. */
typedef struct gust_static_options {
    const char *root;             /* directory served */
    const char *default_filename; /* e.g. "index.html"; NULL: none */
} gust_static_options;

GUST_EXTERN extern const gust_handler_class gust_static_file_handler;

/* Redirects to the route data (a const char * URL) with 301, Tornado's
 * RedirectHandler. */
GUST_EXTERN extern const gust_handler_class gust_redirect_handler;

#ifdef __cplusplus
}
#endif

#endif /* GUST_WEB_H */
