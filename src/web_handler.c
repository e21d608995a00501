/* The request lifecycle (Tornado's RequestHandler._execute): route, create
 * the handler in the request's arena, initialize, 405, XSRF, prepare, the
 * method (plain, asynchronous or coroutine), then finish, on_finish and the
 * access log; error pages for everything that goes wrong. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gust/log.h"
#include "gust/loop.h"
#include "http_server_internal.h"
#include "web_internal.h"

const char gust_argument_required[] = "<required>";

/* ---- Accessors ----------------------------------------------------------- */

gust_http_request *gust_handler_request(gust_handler *h) { return h->req; }
gust_app *gust_handler_app(gust_handler *h) { return h->app; }
const gust_handler_class *gust_handler_get_class(gust_handler *h) { return h->cls; }
void *gust_handler_route_data(gust_handler *h) { return h->route_data; }
void *gust_handler_state(gust_handler *h) { return h->state; }
gust_arena *gust_handler_arena(gust_handler *h) { return h->req->arena; }
bool gust_handler_finished(const gust_handler *h) { return h->finished; }

gust_loop *gust_handler_loop(gust_handler *h)
{
    (void)h;
    return gust_loop_current();
}

size_t gust_handler_path_arg_count(gust_handler *h) { return h->nargs; }

const char *gust_handler_path_arg(gust_handler *h, size_t index)
{
    return index < h->nargs ? h->args[index] : NULL;
}

const char *gust_handler_path_kwarg(gust_handler *h, const char *name)
{
    for (size_t i = 0; h->arg_names && i < h->nargs; i++)
        if (h->arg_names[i] && strcmp(h->arg_names[i], name) == 0)
            return h->args[i];
    return NULL;
}

char *gust_handler_reverse_url(gust_handler *h, const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    char *url = gust__router_reverse(h->app, h->req->arena, name, ap);
    va_end(ap);
    return url;
}

static const char *class_name(const gust_handler *h)
{
    return h->cls && h->cls->name ? h->cls->name : "handler";
}

/* ---- Access log ---------------------------------------------------------- */

static void log_request(gust_handler *h)
{
    const gust_app_settings *s = &h->app->settings;
    if (s->log_function) {
        s->log_function(h, s->log_data);
        return;
    }
    int status = gust_http_response_status(h->req);
    int level = status < 400   ? GUST_LOG_INFO
                : status < 500 ? GUST_LOG_WARNING
                               : GUST_LOG_ERROR;
    if (level < gust_log_level())
        return; /* no formatting for a line nobody sees */
    gust_http_request *req = h->req;
    double ms = (gust_loop_time(gust_loop_current()) - req->start_time) * 1e3;
    gust_log(level, "access", "%d %s %s (%s) %.2fms", status, req->method,
             req->uri, req->remote_ip, ms);
}

/* ---- Finishing ----------------------------------------------------------- */

/* The end of a request: log, on_finish, then the request (and h, which
 * lives in its arena) is released. */
static void release(gust_handler *h)
{
    /* A request whose method never ran (the client left during the body)
     * has nothing to log. */
    if (!(h->conn_closed && !h->prepared))
        log_request(h);
    if (h->cls && h->cls->on_finish)
        h->cls->on_finish(h);
    gust__output_release(h);
    gust_http_request *req = h->req;
    req->data = NULL;
    gust_http_request_finish(req);
}

int gust_handler_finish(gust_handler *h)
{
    if (h->finished)
        return -EINVAL;
    int rc = gust__output_send(h, true);
    h->finished = true;
    /* Inside prepare or the method, h must outlive the call: the release
     * waits until the method has returned (complete()). */
    if (!h->in_method)
        release(h);
    return rc;
}

/* ---- Error pages --------------------------------------------------------- */

static const char *html_escape(gust_arena *a, const char *s)
{
    size_t extra = 0;
    for (const char *p = s; *p; p++)
        extra += *p == '<' || *p == '>' ? 3 : *p == '&' ? 4 : *p == '"' ? 5 : 0;
    if (!extra)
        return s;
    char *out = gust_arena_alloc(a, strlen(s) + extra + 1), *o = out;
    if (!out)
        return "";
    for (const char *p = s; *p; p++) {
        const char *rep = *p == '<' ? "&lt;" : *p == '>' ? "&gt;"
                        : *p == '&' ? "&amp;" : *p == '"' ? "&quot;" : NULL;
        if (rep) {
            size_t n = strlen(rep);
            memcpy(o, rep, n);
            o += n;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

/* Tornado's page, plus the message for client errors (it is about their
 * request) and, in debug mode, where the error came from. */
static void default_error_page(gust_handler *h, int status, const char *message)
{
    const char *reason = gust_http_reason(status);
    gust_arena *a = h->req->arena;
    gust_handler_printf(h, "<html><title>%d: %s</title><body>%d: %s", status,
                        reason, status, reason);
    if (message && (status < 500 || h->app->settings.debug))
        gust_handler_printf(h, "<p>%s</p>", html_escape(a, message));
    if (h->app->settings.debug)
        gust_handler_printf(h, "<p>handler %s, route %s, %s %s</p>",
                            html_escape(a, class_name(h)),
                            html_escape(a, h->route ? h->route->pattern : "(none)"),
                            html_escape(a, h->req->method),
                            html_escape(a, h->req->uri));
    gust_handler_write_str(h, "</body></html>");
}

void gust__handler_error_page(gust_handler *h, int status, const char *message)
{
    if (h->finished || h->error_sent)
        return;
    if (message)
        gust_log_warning("web", "%d %s %s (%s): %s", status, h->req->method,
                         h->req->uri, h->req->remote_ip, message);
    if (h->headers_sent) {
        /* Part of the response is out: the only honest signal left is to
         * cut the connection, so the client sees a truncated body. */
        gust_log_error("web", "error %d after the headers were sent by %s: "
                       "closing the connection", status, class_name(h));
        gust_http_connection *conn = h->req->connection;
        h->error_sent = true;
        gust_handler_finish(h);
        if (conn)
            gust__http_conn_close(conn);
        return;
    }
    gust__output_clear(h);
    gust_http_response_set_status(h->req, status, NULL);
    if (h->cls && h->cls->write_error)
        h->cls->write_error(h, status, message);
    else
        default_error_page(h, status, message);
    h->error_sent = true;
    gust_handler_finish(h);
}

int gust_handler_send_error(gust_handler *h, int status, const char *fmt, ...)
{
    if (status < 400 || status > 599)
        status = 500;
    const char *message = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        message = gust_arena_vsprintf(h->req->arena, NULL, fmt, ap);
        va_end(ap);
    }
    gust__handler_error_page(h, status, message);
    return 0;
}

/* ---- Running the method -------------------------------------------------- */

static gust_handler_fn method_fn(const gust_handler_class *c, const char *m)
{
    switch (m[0]) {
    case 'G': return strcmp(m, "GET") == 0 ? c->get : NULL;
    case 'H': return strcmp(m, "HEAD") == 0 ? (c->head ? c->head : c->get) : NULL;
    case 'P':
        if (strcmp(m, "POST") == 0) return c->post;
        if (strcmp(m, "PUT") == 0) return c->put;
        if (strcmp(m, "PATCH") == 0) return c->patch;
        return NULL;
    case 'D': return strcmp(m, "DELETE") == 0 ? c->delete_ : NULL;
    case 'O': return strcmp(m, "OPTIONS") == 0 ? c->options : NULL;
    default: return NULL;
    }
}

static void answer_405(gust_handler *h)
{
    const gust_handler_class *c = h->cls;
    char allow[64] = "";
    const struct { gust_handler_fn fn; const char *name; } m[] = {
        {c->get, "GET"}, {c->head ? c->head : c->get, "HEAD"}, {c->post, "POST"},
        {c->put, "PUT"}, {c->delete_, "DELETE"}, {c->patch, "PATCH"},
        {c->options, "OPTIONS"},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (m[i].fn) {
            if (allow[0])
                strcat(allow, ", ");
            strcat(allow, m[i].name);
        }
    gust__output_clear(h);
    gust_http_response_set_status(h->req, 405, NULL);
    gust_http_response_set_header(h->req, "Allow", allow);
    if (h->cls->write_error)
        h->cls->write_error(h, 405, NULL);
    else
        default_error_page(h, 405, NULL);
    h->error_sent = true;
    gust_handler_finish(h);
}

/* What a method's return value means, once it has returned. */
static void complete(gust_handler *h, int rc)
{
    h->in_method = false;
    if (h->finished) {
        release(h);
        return;
    }
    if (h->pending_status) {
        gust__handler_error_page(h, h->pending_status, h->pending_message);
        return;
    }
    if (rc == GUST_HANDLER_ASYNC) {
        h->is_async = true;
        return;
    }
    if (rc < 0) {
        gust_log_error("web", "%s failed on %s %s: %s", class_name(h),
                       h->req->method, h->req->uri, gust_strerror(rc));
        gust__handler_error_page(h, 500, gust_strerror(rc));
        return;
    }
    gust_handler_finish(h);
}

/* prepare (unless done already) then the method. Returns the method's
 * code; h is still alive (in_method holds its release). */
static int run_method(gust_handler *h)
{
    gust_handler_fn fn = method_fn(h->cls, h->req->method);
    h->in_method = true;
    if (!h->prepared) {
        h->prepared = true;
        if (h->cls->prepare) {
            int rc = h->cls->prepare(h);
            if (h->finished || h->pending_status)
                return 0;
            if (rc == GUST_HANDLER_ASYNC) {
                gust_log_error("web", "%s: prepare returned GUST_HANDLER_ASYNC "
                               "(make the class a coroutine to wait in "
                               "prepare)", class_name(h));
                return -EINVAL;
            }
            if (rc < 0)
                return rc;
        }
    }
    return fn(h);
}

static int coro_main(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    gust_handler *h = data;
    *result = GUST_VALUE_INT(run_method(h));
    return 0;
}

static void coro_done(gust_future *f, void *data)
{
    gust_handler *h = data;
    int rc = gust_future_status(f);
    if (rc == 0)
        rc = (int)(intptr_t)gust_future_result(f);
    gust_future_unref(f);
    complete(h, rc);
}

static void start_method(gust_handler *h)
{
    if (!(h->cls->flags & GUST_HANDLER_COROUTINE)) {
        complete(h, run_method(h));
        return;
    }
    h->in_method = true; /* the coroutine holds h until coro_done */
    gust_future *f = gust_spawn(gust_loop_current(), coro_main, h);
    if (!f || gust_future_add_done_callback(f, coro_done, h) < 0) {
        if (f) {
            gust_future_cancel(f);
            gust_future_unref(f);
        }
        h->in_method = false;
        gust__handler_error_page(h, 500, "cannot start a coroutine");
    }
}

/* Everything before prepare: route data, method support, XSRF. Returns 0
 * to go on, or 1 when the request was answered. */
static int before_prepare(gust_handler *h)
{
    if (!h->cls) {
        gust__handler_error_page(h, 404, NULL);
        return 1;
    }
    if (h->cls->initialize) {
        h->in_method = true;
        int rc = h->cls->initialize(h, h->route_data);
        h->in_method = false;
        if (h->finished) {
            release(h);
            return 1;
        }
        if (rc < 0) {
            gust__handler_error_page(h, 500, "initialize failed");
            return 1;
        }
    }
    if (!method_fn(h->cls, h->req->method)) {
        answer_405(h);
        return 1;
    }
    if (gust__xsrf_check(h) != 0)
        return 1;
    return 0;
}

/* ---- The delegate the HTTP server calls ---------------------------------- */

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
    req->data = h;
    if (gust__router_match(app, h) < 0) {
        gust__handler_error_page(h, 500, "out of memory");
        return 1;
    }
    if (!h->route && app->settings.default_handler) {
        h->cls = app->settings.default_handler;
        h->route_data = app->settings.default_handler_data;
    }
    if (h->cls && h->cls->state_size &&
        !(h->state = gust_arena_calloc(req->arena, 1, h->cls->state_size))) {
        gust__handler_error_page(h, 500, "out of memory");
        return 1;
    }
    if (!h->cls || !(h->cls->flags & GUST_HANDLER_STREAM_BODY))
        return 0;
    /* Streaming: everything up to prepare runs now, on the head alone. */
    gust_http_request_stream_body(req);
    if (before_prepare(h))
        return 1;
    h->prepared = true;
    if (h->cls->prepare) {
        h->in_method = true;
        int rc = h->cls->prepare(h);
        h->in_method = false;
        if (h->finished) {
            release(h);
            return 1;
        }
        if (h->pending_status || rc < 0 || rc == GUST_HANDLER_ASYNC) {
            gust__handler_error_page(h, h->pending_status ? h->pending_status : 500,
                                     h->pending_message);
            return 1;
        }
    }
    return 0;
}

static int on_data(gust_http_request *req, const char *chunk, size_t len,
                   void *data)
{
    (void)data;
    gust_handler *h = req->data;
    if (!h || !h->cls->data_received)
        return 0;
    return h->cls->data_received(h, chunk, len) < 0 ? -1 : 0;
}

static void on_body_done(gust_http_request *req, void *data)
{
    (void)data;
    gust_handler *h = req->data;
    if (!(h->cls && (h->cls->flags & GUST_HANDLER_STREAM_BODY)) &&
        before_prepare(h))
        return;
    start_method(h);
}

static void on_close(gust_http_request *req, void *data)
{
    (void)data;
    gust_handler *h = req->data;
    if (!h) {
        gust_http_request_finish(req);
        return;
    }
    h->conn_closed = true;
    if (h->is_async || h->in_method) {
        /* The handler is at work (a callback or a coroutine will finish
         * it): tell it, it must still finish. */
        if (h->cls && h->cls->on_connection_close)
            h->cls->on_connection_close(h);
        return;
    }
    /* The body never completed: nobody else will finish this request. */
    if (h->cls && h->cls->on_connection_close)
        h->cls->on_connection_close(h);
    h->finished = true;
    release(h);
}

const gust_http_delegate gust__app_delegate = {
    .headers_received = on_headers,
    .data_received = on_data,
    .finish = on_body_done,
    .on_connection_close = on_close,
};

/* ---- Redirect handler ---------------------------------------------------- */

static int redirect_get(gust_handler *h)
{
    return gust_handler_redirect(h, gust_handler_route_data(h), 301);
}

const gust_handler_class gust_redirect_handler = {
    .name = "redirect",
    .get = redirect_get,
    .head = redirect_get,
};
