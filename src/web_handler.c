/* The handler lifecycle (Tornado's RequestHandler._execute and the
 * _HandlerDelegate of web.py): route at headers_received, create the
 * handler in the request arena, initialize, XSRF check, prepare, method,
 * finish; the three styles; errors and error pages; the access log. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gust/log.h"
#include "http_server_contract.h"
#include "web_internal.h"

#define LOG_MODULE "web"

static const char *class_name(const gust_handler *h)
{
    return h->cls && h->cls->name ? h->cls->name : "handler";
}

/* ---- What a handler knows ------------------------------------------------ */

gust_http_request *gust_handler_request(gust_handler *h) { return h->req; }
gust_app *gust_handler_app(gust_handler *h) { return h->app; }
const gust_handler_class *gust_handler_get_class(gust_handler *h)
{
    return h->cls;
}
const gust_handler_class *gust_handler_declared_class(gust_handler *h)
{
    if (h->route)
        return h->route->declared;
    if (h->app->default_merged && h->cls == h->app->default_merged)
        return h->app->default_declared;
    return h->cls;
}
void *gust_handler_route_data(gust_handler *h) { return h->route_data; }
void *gust_handler_state(gust_handler *h) { return h->state; }
gust_arena *gust_handler_arena(gust_handler *h) { return h->req->arena; }
/* Looked up on first use: most requests never need it. */
gust_loop *gust_handler_loop(gust_handler *h)
{
    if (!h->loop)
        h->loop = gust_loop_current();
    return h->loop;
}

size_t gust_handler_path_arg_count(gust_handler *h)
{
    return h->match.nargs;
}

const char *gust_handler_path_arg(gust_handler *h, size_t index)
{
    return index < h->match.nargs ? h->match.args[index] : NULL;
}

const char *gust_handler_path_kwarg(gust_handler *h, const char *name)
{
    return gust__web_route_kwarg(h->route, &h->match, name);
}

char *gust_handler_reverse_url(gust_handler *h, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    char *url = gust__web_router_reverse(&h->app->router, h->req->arena, name,
                                         ap);
    va_end(ap);
    return url;
}

/* ---- Classes made from a base ------------------------------------------ */

/* Deep enough for any real hierarchy; a longer chain is a cycle. */
#define MAX_BASES 16

static void inherit(gust_handler_class *d, const gust_handler_class *b)
{
#define INHERIT(field)                                                         \
    if (!d->field)                                                             \
    d->field = b->field
    INHERIT(name);
    INHERIT(initialize);
    INHERIT(prepare);
    INHERIT(get);
    INHERIT(head);
    INHERIT(post);
    INHERIT(put);
    INHERIT(delete_);
    INHERIT(patch);
    INHERIT(options);
    INHERIT(data_received);
    INHERIT(on_finish);
    INHERIT(on_connection_close);
    INHERIT(write_error);
    INHERIT(set_default_headers);
    INHERIT(get_current_user);
#undef INHERIT
    d->flags |= b->flags;
    d->authenticated_methods |= b->authenticated_methods;
    if (d->state_size < b->state_size)
        d->state_size = b->state_size;
}

gust_handler_class *gust__handler_class_merge(const gust_handler_class *cls)
{
    gust_handler_class *m = malloc(sizeof *m);
    if (!m)
        return NULL;
    *m = *cls;
    int depth = 0;
    for (const gust_handler_class *b = cls->base; b && depth < MAX_BASES;
         b = b->base, depth++)
        inherit(m, b);
    m->base = NULL;
    return m;
}

/* ---- The current user ---------------------------------------------------- */

const char *gust_handler_current_user(gust_handler *h)
{
    if (!h->user_known) {
        h->user_known = true;
        if (h->cls && h->cls->get_current_user) {
            h->busy++;
            h->current_user = h->cls->get_current_user(h);
            h->busy--;
        }
    }
    return h->current_user;
}

int gust_handler_set_current_user(gust_handler *h, const char *user)
{
    const char *copy = user ? gust_arena_strdup(h->req->arena, user) : NULL;
    if (user && !copy)
        return -ENOMEM;
    h->user_known = true;
    h->current_user = copy;
    return 0;
}

static inline bool needs_user(const gust_handler *h)
{
    return (h->cls->flags & GUST_HANDLER_AUTHENTICATED) ||
           (h->cls->authenticated_methods &
            GUST_HTTP_METHOD_BIT(h->req->method_id));
}

/* urlsplit(url).scheme is not empty: letters, digits, + - . then ':'. */
static bool has_scheme(const char *url)
{
    const char *p = url;
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
        return false;
    while (*p && *p != ':' && (strchr("+-.", *p) ||
                               (*p >= '0' && *p <= '9') ||
                               (*p >= 'a' && *p <= 'z') ||
                               (*p >= 'A' && *p <= 'Z')))
        p++;
    return *p == ':';
}

/* Tornado's @authenticated, for a method that needs a user: true when
 * there is one. Otherwise the request was redirected to the login page or
 * answered 403. */
static bool user_allowed(gust_handler *h)
{
    if (gust_handler_current_user(h) || h->finished)
        return !h->finished;
    gust_http_method m = h->req->method_id;
    if (m != GUST_HTTP_METHOD_GET && m != GUST_HTTP_METHOD_HEAD) {
        gust_handler_send_error(h, 403, "%s needs a signed-in user",
                                h->req->method);
        return false;
    }
    const char *login = h->app->settings.login_url;
    if (!login) {
        gust_handler_send_error(h, 500, "%s is authenticated but the app "
                                "has no login_url setting", class_name(h));
        return false;
    }
    const char *url = login;
    if (!strchr(login, '?')) {
        gust_arena *a = h->req->arena;
        const gust_http_request *r = h->req;
        /* An absolute login URL (another host) gets an absolute next. */
        const char *next =
            has_scheme(login)
                ? gust_arena_sprintf(a, "%s://%s%s",
                                     r->protocol ? r->protocol : "http",
                                     r->host ? r->host : "", r->uri)
                : r->uri;
        gust_str esc;
        if (!next ||
            gust_url_escape(a, gust_str_cstr(next), GUST_URL_PLUS, &esc) < 0 ||
            !(url = gust_arena_sprintf(a, "%s?next=%.*s", login,
                                       (int)esc.len, esc.ptr))) {
            gust_handler_send_error(h, 500, "out of memory");
            return false;
        }
    }
    if (gust_handler_redirect(h, url, 0) < 0 && !h->finished)
        gust_handler_send_error(h, 500, "bad login_url");
    return false;
}

/* True when the method may run (most classes need no user). */
static inline bool user_check(gust_handler *h)
{
    return !needs_user(h) || user_allowed(h);
}

static void set_default_headers(gust_handler *h)
{
    if (h->cls && h->cls->set_default_headers) {
        h->busy++;
        h->cls->set_default_headers(h);
        h->busy--;
    }
}

/* ---- Access log -------------------------------------------------------- */

static void log_request(gust_handler *h)
{
    if (h->app->settings.log_function)
        h->app->settings.log_function(h, h->app->settings.log_data);
    else
        gust_handler_log_request(h);
}

/* ---- Finishing ----------------------------------------------------------- */

/* The handler lives in the request's arena: the request goes back to the
 * server only once no call into the class is on the stack. */
void gust__handler_maybe_release(gust_handler *h)
{
    if (!h->finished || h->released || h->busy > 0)
        return;
    h->released = true;
    if (h->aborted)
        gust_http_request_abort(h->req);
    else /* what finish left in the body goes out without another copy */
        gust__http_request_finish_with(h->req, h->body, h->body_len);
}

void gust__handler_finish_hooks(gust_handler *h)
{
    h->finished = true;
    h->phase = GUST__PHASE_DONE;
    if (h->cls && h->cls->on_finish) {
        h->busy++;
        h->cls->on_finish(h);
        h->busy--;
    }
    log_request(h);
}

bool gust_handler_finished(const gust_handler *h)
{
    return h->finished;
}

/* ---- Errors -------------------------------------------------------------- */

static char *html_escape(gust_arena *a, const char *s)
{
    size_t n = 0;
    for (const char *p = s; *p; p++)
        n += strchr("<>&\"'", *p) ? 6 : 1;
    char *out = gust_arena_alloc(a, n + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = s; *p; p++) {
        const char *e = *p == '<'   ? "&lt;"
                        : *p == '>' ? "&gt;"
                        : *p == '&' ? "&amp;"
                        : *p == '"' ? "&quot;"
                        : *p == '\'' ? "&#39;"
                                     : NULL;
        if (e) {
            strcpy(o, e);
            o += strlen(e);
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

static void default_write_error(gust_handler *h, int status,
                                const char *message)
{
    const char *reason = gust_http_reason(status);
    if (!reason)
        reason = "Unknown";
    gust_handler_printf(h, "<html><title>%d: %s</title><body>%d: %s", status,
                        reason, status, reason);
    if (h->app->settings.debug) {
        /* Debug mode says where the error came from, as Tornado's
         * traceback page does. */
        gust_arena *a = h->req->arena;
        const char *route = h->route ? h->route->pattern : "(no route)";
        char *r = html_escape(a, route), *c = html_escape(a, class_name(h));
        char *m = message ? html_escape(a, message) : NULL;
        gust_handler_printf(h, "<pre>handler: %s\nroute: %s\nmessage: %s</pre>",
                            c ? c : "", r ? r : "", m ? m : "");
    }
    gust_handler_write_str(h, "</body></html>");
}

static void clear_for_error(gust_handler *h)
{
    /* Cookies survive the error page, as in Tornado (XSRF, sessions). */
    const gust_http_headers *hd = h->resp_headers;
    for (;;) {
        gust_str victim = GUST_STR_NULL;
        for (size_t i = 0; i < hd->count; i++) {
            if (!gust_str_eq_nocase(hd->items[i].name,
                                    GUST_STR("Set-Cookie"))) {
                victim = hd->items[i].name;
                break;
            }
        }
        if (!victim.ptr)
            break;
        char name[128];
        size_t n = victim.len < sizeof name - 1 ? victim.len
                                                : sizeof name - 1;
        memcpy(name, victim.ptr, n);
        name[n] = '\0';
        if (gust_http_response_clear_header(h->req, name) < 0)
            break;
    }
    gust__handler_discard_body(h);
}

static int send_error_v(gust_handler *h, int status, const char *fmt,
                        va_list ap)
{
    if (h->finished)
        return 0;
    char *message = fmt ? gust_arena_vsprintf(h->req->arena, NULL, fmt, ap)
                        : NULL;
    if (h->conn_closed) {
        gust_handler_finish(h);
        return 0;
    }
    if (h->headers_sent) {
        /* Too late for an error page. Tornado finishes the response here,
         * which hands the client a truncated body that looks complete;
         * cutting the connection lets it see the failure. */
        gust_log_error(LOG_MODULE, "%d %s %s (%s) after the headers were "
                       "sent; closing the connection%s%s", status,
                       h->req->method, h->req->uri, class_name(h),
                       message ? ": " : "", message ? message : "");
        h->aborted = true;
        gust__handler_finish_hooks(h);
        gust__handler_maybe_release(h);
        return 0;
    }
    clear_for_error(h);
    /* The page is a new response: its own type and gzip decision. */
    h->headers_ready = false;
    h->gzipping = false;
    h->error_sent = false;
    if (status < 100 || status > 599)
        status = 500;
    gust_http_response_set_status(h->req, status, NULL);
    /* As Tornado's clear(): the class's own headers come back. */
    set_default_headers(h);
    if (status == 405 && h->allow)
        gust_http_response_set_header(h->req, "Allow", h->allow);
    /* As Tornado's log_exception: the reason of a 4xx (a missing
     * argument, a failed XSRF check) is worth a warning. */
    if (message && status >= 400)
        gust_log(status >= 500 ? GUST_LOG_ERROR : GUST_LOG_WARNING,
                 LOG_MODULE, "%d %s %s (%s): %s", status, h->req->method,
                 h->req->uri, class_name(h), message);
    h->busy++;
    if (h->cls && h->cls->write_error)
        h->cls->write_error(h, status, message);
    else
        default_write_error(h, status, message);
    h->busy--;
    h->error_sent = true;
    if (!h->finished)
        gust_handler_finish(h);
    gust__handler_maybe_release(h);
    return 0;
}

int gust_handler_send_error(gust_handler *h, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = send_error_v(h, status, fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- Running the class ------------------------------------------------- */

static gust_handler_fn method_fn(const gust_handler_class *c,
                                 gust_http_method m)
{
    switch (m) {
    case GUST_HTTP_METHOD_GET: return c->get;
    case GUST_HTTP_METHOD_HEAD: return c->head;
    case GUST_HTTP_METHOD_POST: return c->post;
    case GUST_HTTP_METHOD_PUT: return c->put;
    case GUST_HTTP_METHOD_DELETE: return c->delete_;
    case GUST_HTTP_METHOD_PATCH: return c->patch;
    case GUST_HTTP_METHOD_OPTIONS: return c->options;
    default: return NULL;
    }
}

static const char *allow_list(gust_handler *h)
{
    /* The enum's order, GET to OPTIONS, is the Allow list's. */
    char buf[64] = "";
    for (gust_http_method m = GUST_HTTP_METHOD_GET;
         m <= GUST_HTTP_METHOD_OPTIONS; m++) {
        if (method_fn(h->cls, m)) {
            if (buf[0])
                strcat(buf, ", ");
            strcat(buf, gust__http_method_name(m));
        }
    }
    return gust_arena_strdup(h->req->arena, buf);
}

/* What a prepare or method return value means for the request. Returns
 * true when the request goes on (to the method). */
static bool after_call(gust_handler *h, int rc, bool is_prepare)
{
    if (h->finished)
        return false;
    if (h->missing_arg) {
        gust_handler_send_error(h, 400, "Missing argument %s",
                                h->missing_arg);
        return false;
    }
    if (rc < 0) {
        /* send_error logs it, with the handler's name. */
        gust_handler_send_error(h, 500, "%s returned %s",
                                is_prepare ? "prepare" : "the method",
                                gust_strerror(rc));
        return false;
    }
    if (is_prepare) {
        if (rc == GUST_HANDLER_ASYNC) {
            gust_log_error(LOG_MODULE, "%s: prepare returned "
                           "GUST_HANDLER_ASYNC", class_name(h));
            gust_handler_send_error(h, 500, "prepare cannot be asynchronous");
            return false;
        }
        return true;
    }
    if (rc != GUST_HANDLER_ASYNC)
        gust_handler_finish(h);
    return false;
}

/* Checks that may answer before prepare: 405 and XSRF. True: go on. */
static bool precheck(gust_handler *h)
{
    h->method = method_fn(h->cls, h->req->method_id);
    if (!h->method) {
        h->allow = allow_list(h);
        gust_handler_send_error(h, 405, NULL);
        return false;
    }
    return !h->app->settings.xsrf_cookies || gust__handler_check_xsrf(h) == 0;
}

static int call_prepare(gust_handler *h)
{
    h->prepared = true;
    if (!h->cls->prepare)
        return 0;
    h->busy++;
    int rc = h->cls->prepare(h);
    h->busy--;
    return rc;
}

static int call_method(gust_handler *h)
{
    h->busy++;
    int rc = h->method(h);
    h->busy--;
    return rc;
}

static int coro_body(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    (void)result;
    gust_handler *h = data;
    if (!h->prepared) {
        int rc = call_prepare(h);
        if (!after_call(h, rc, true))
            return 0;
    }
    if (!user_check(h))
        return 0;
    after_call(h, call_method(h), false);
    return 0;
}

static void coro_done(gust_future *f, void *data)
{
    gust_handler *h = data;
    int st = gust_future_status(f);
    gust_future_unref(f);
    h->busy--;
    if (st < 0 && !h->finished) {
        gust_log_error(LOG_MODULE, "%s %s: coroutine of %s failed: %s",
                       h->req->method, h->req->uri, class_name(h),
                       gust_strerror(st));
        gust_handler_send_error(h, 500, "coroutine failed: %s",
                                gust_strerror(st));
    }
    if (h->body_held) { /* coro_prepare is done: let the body flow */
        h->body_held = false;
        if (!h->finished && !h->conn_closed)
            gust_http_request_resume_body(h->req);
    }
    gust__handler_maybe_release(h);
}

/* Runs fn(h) as a coroutine; coro_done follows. False if it cannot. */
static bool spawn(gust_handler *h, gust_coro_fn fn)
{
    gust_future *f = gust_spawn(gust_handler_loop(h), fn, h);
    if (!f)
        return false;
    /* busy keeps the arena (and h) alive until the coroutine ends. */
    h->busy++;
    if (gust_future_add_done_callback(f, coro_done, h) < 0) {
        /* Cannot learn when it ends: cancel it before it starts. */
        gust_future_cancel(f);
        gust_future_unref(f);
        h->busy--;
        return false;
    }
    return true;
}

/* Prepare (unless done already) and the method, in the class's style. */
static void execute(gust_handler *h)
{
    h->phase = GUST__PHASE_RUNNING;
    if (h->cls->flags & GUST_HANDLER_COROUTINE) {
        if (!spawn(h, coro_body))
            gust_handler_send_error(h, 500, "cannot start a coroutine");
        return;
    }
    /* Without prepare (the usual class) nothing can have stopped the
     * request since precheck but a missing argument in initialize. */
    if (!h->prepared && (h->cls->prepare || h->missing_arg) &&
        !after_call(h, call_prepare(h), true)) {
        gust__handler_maybe_release(h);
        return;
    }
    h->prepared = true;
    if (user_check(h))
        after_call(h, call_method(h), false);
    gust__handler_maybe_release(h);
}

/* A streaming coroutine class's prepare: the body is paused until it has
 * returned, so the first chunk never finds it half done. */
static int coro_prepare(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    (void)result;
    gust_handler *h = data;
    if (after_call(h, call_prepare(h), true))
        user_check(h); /* before the body is read */
    return 0;
}

/* ---- The delegate ------------------------------------------------------ */

static const gust_handler_class not_found_class = {.name = "not found"};

static int on_headers(gust_http_request *req, void *data)
{
    gust_app *app = data;
    gust_handler *h = gust_arena_calloc(req->arena, 1, sizeof *h);
    if (!h) {
        gust_http_respond(req, 500, NULL, NULL, 0);
        return 1;
    }
    h->app = app;
    h->req = req;
    gust__http_response_view v = gust__http_response_view_of(req);
    h->resp_status = v.status;
    h->resp_headers = v.headers;
    req->data = h;
    int rc = gust__web_router_match(&app->router, req->arena, req->path,
                                    req->host_name, &h->match);
    if (rc < 0) {
        h->cls = &not_found_class;
        gust_handler_send_error(h, 500, "out of memory");
        return 1;
    }
    if (h->match.route) {
        h->route = h->match.route;
        h->cls = h->route->cls;
        h->route_data = h->route->data;
    } else if (app->settings.default_handler) {
        h->cls = app->settings.default_handler;
        h->route_data = app->settings.default_handler_data;
    } else {
        h->cls = &not_found_class;
        gust_handler_send_error(h, 404, NULL);
        return 1;
    }
    if (h->cls->state_size) {
        h->state = gust_arena_calloc(req->arena, 1, h->cls->state_size);
        if (!h->state) {
            gust_handler_send_error(h, 500, "out of memory");
            return 1;
        }
    }
    set_default_headers(h);
    if (h->cls->initialize) {
        h->busy++;
        rc = h->cls->initialize(h, h->route_data);
        h->busy--;
        if (rc < 0 && !h->finished)
            gust_handler_send_error(h, 500, "initialize failed: %s",
                                    gust_strerror(rc));
        if (h->finished) {
            gust__handler_maybe_release(h);
            return 1;
        }
    }
    if (!(h->cls->flags & GUST_HANDLER_STREAM_BODY))
        return 0;
    /* Streaming classes prepare now, so that data_received finds them
     * ready (Tornado's stream_request_body). A coroutine prepare holds the
     * body back (gust_http_request_pause_body) until it returns. */
    if (gust_http_request_stream_body(req) < 0 || !precheck(h)) {
        if (!h->finished)
            gust_handler_send_error(h, 500, "cannot stream the body");
        gust__handler_maybe_release(h);
        return 1;
    }
    if ((h->cls->flags & GUST_HANDLER_COROUTINE) && h->cls->prepare) {
        h->prepared = true;
        h->body_held = gust_http_request_pause_body(req) == 0;
        if (!h->body_held || !spawn(h, coro_prepare)) {
            gust_handler_send_error(h, 500, "cannot start a coroutine");
            gust__handler_maybe_release(h);
            return 1;
        }
        return 0;
    }
    if (!after_call(h, call_prepare(h), true) || !user_check(h)) {
        gust__handler_maybe_release(h);
        return 1;
    }
    return 0;
}

static int on_data(gust_http_request *req, const char *chunk, size_t len,
                   void *data)
{
    (void)data;
    gust_handler *h = req->data;
    if (h->finished || !h->cls->data_received)
        return 0;
    h->busy++;
    int rc = h->cls->data_received(h, chunk, len);
    h->busy--;
    if (rc < 0 && !h->finished) {
        gust_handler_send_error(h, 400, "data_received refused the body");
        return rc;
    }
    return 0;
}

static void on_finish(gust_http_request *req, void *data)
{
    (void)data;
    gust_handler *h = req->data;
    if (h->finished) {
        gust__handler_maybe_release(h);
        return;
    }
    if (!(h->cls->flags & GUST_HANDLER_STREAM_BODY) && !precheck(h)) {
        gust__handler_maybe_release(h);
        return;
    }
    execute(h);
}

/* The server's on_connection_close must not see its request released
 * under it: a release decided there is done on the next loop turn. */
static void release_later(gust_loop *loop, void *data)
{
    (void)loop;
    gust_handler *h = data;
    h->busy--;
    gust__handler_maybe_release(h);
}

static void defer_release(gust_handler *h)
{
    if (!h->finished || h->released)
        return;
    h->busy++;
    if (gust_loop_add_callback(gust_handler_loop(h), release_later, h) < 0) {
        /* Out of memory: the request stays until the server closes. */
        h->busy--;
        gust_log_error(LOG_MODULE, "cannot release a closed request");
    }
}

static void on_close(gust_http_request *req, void *data)
{
    (void)data;
    gust_handler *h = req->data;
    if (!h || h->released)
        return;
    h->conn_closed = true;
    if (h->finished) {
        defer_release(h);
        return;
    }
    if (h->phase == GUST__PHASE_HEAD) {
        /* The body never came: nothing will run the method. */
        if (h->cls->on_connection_close && h->prepared) {
            h->busy++;
            h->cls->on_connection_close(h);
            h->busy--;
        }
        if (!h->finished)
            gust__handler_finish_hooks(h);
        defer_release(h);
        return;
    }
    if (h->cls->on_connection_close) {
        h->busy++;
        h->cls->on_connection_close(h);
        h->busy--;
    }
    defer_release(h);
}

const gust_http_delegate gust__web_delegate = {on_headers, on_data,
                                               on_finish, on_close};

/* ---- RedirectHandler ---------------------------------------------------- */

static int redirect_get(gust_handler *h)
{
    const char *to = gust_handler_route_data(h);
    return gust_handler_redirect(h, to ? to : "/", 301);
}

const gust_handler_class gust_redirect_handler = {
    .name = "redirect",
    .get = redirect_get,
    .head = redirect_get,
};
