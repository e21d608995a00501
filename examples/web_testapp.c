/* web_testapp: an application exercising the web framework for
 * tests/integration/test_web.py (and a tour of web.h):
 *
 *   web_testapp [--port=8888] [--address=127.0.0.1] [--debug]
 *               [--cookie_secret=S] [--static_path=DIR]
 *
 *   /                      "Hello, world"
 *   /args?name=..          the last value of name; /args/many?name=..: all
 *   /need?q=..             q is required (400 without)
 *   /item/([0-9]+)         the item's id; named route "item"
 *   /user/(?<name>[a-z]+)  the named group; reverse_url of item 42
 *   /cookie/set?name=&value=, /cookie/get?name=, /cookie/clear?name=
 *   /signed/set?value=     a signed cookie "user"
 *   /signed/get?days=      its value if valid, else 403
 *   /xsrf                  GET: the XSRF token; POST/PUT: "ok" (checked)
 *   /redirect?to=&status=  redirect; /moved: gust_redirect_handler to /
 *   /big                   a large compressible text (gzip when accepted)
 *   /json                  {"message": "Hello, World!"}
 *   /stream                three flushed parts (chunked; gzip if accepted)
 *   /error                 a method failing (500; details with --debug)
 *   /teapot                send_error(418) with a message
 *   /coro                  a coroutine awaiting gust_sleep
 *   /async                 finishes from a timer
 *   /template?name=        renders examples/templates/page.html
 *   /static/...            files under --static_path, if given
 *   /static_url?path=      gust_handler_static_url(path)
 *   /methods               every method, each answering its name
 *   /status?code=&reason=  set_status with or without a reason
 *   /headers?bad=          set_header, add_header, clear_header
 *   /cookie/attrs?...      set_cookie with every attribute from the query
 *   /args/split?name=      query and body arguments apart
 *   /upload                the files of a multipart POST
 *   /sink                  PUT: a streamed body, counted and hashed
 *   /slowsink              the same after a coroutine prepare that sleeps
 *                          0.3 s (the body is held back meanwhile)
 *   /template/broken       a template with a render error (500);
 *                          ?syntax=1: one with a syntax error
 *   / with Host api.example.com   "api host" (a host-based route)
 *   /greet/en, /greet/fr   one class, route data through initialize;
 *                          /greet/none: initialize fails (500)
 *
 *   More options, for the audit tests:
 *   --form=app|explicit|sockets   start form: gust_app_listen, or
 *       gust_http_server_new + listen, or bind_sockets + fork_processes(2)
 *       + add_sockets
 *   --default_handler      unmatched paths go to a handler of ours
 *   --custom_log           settings.log_function instead of the default line
 *   --key_secrets=a,b --key_version=1   cookie_secrets with key versions
 *   --static_url_prefix=/s/  --compress_response=false   those settings
 * Exits 0 on SIGTERM, freeing everything.
 */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/gust.h"
#include "gust/options.h"
#include "gust/web.h"

static int hello_get(gust_handler *h)
{
    return gust_handler_write_str(h, "Hello, world");
}

static int args_get(gust_handler *h)
{
    const char *v = gust_handler_get_argument(h, "name", "(none)");
    return gust_handler_write_str(h, v);
}

static int many_get(gust_handler *h)
{
    const char **vals;
    size_t n = gust_handler_get_arguments(h, "name", &vals);
    for (size_t i = 0; i < n; i++)
        gust_handler_printf(h, "%s%s", i ? "," : "", vals[i]);
    return 0;
}

static int need_get(gust_handler *h)
{
    const char *q = gust_handler_get_argument(h, "q", GUST_REQUIRED);
    return q ? gust_handler_printf(h, "q=%s", q) : 0;
}

static int item_get(gust_handler *h)
{
    return gust_handler_printf(h, "item %s", gust_handler_path_arg(h, 0));
}

static int user_get(gust_handler *h)
{
    return gust_handler_printf(h, "user %s, see %s",
                               gust_handler_path_kwarg(h, "name"),
                               gust_handler_reverse_url(h, "item", "42",
                                                        NULL));
}

static int cookie_set(gust_handler *h)
{
    int rc = gust_handler_set_cookie(
        h, gust_handler_get_argument(h, "name", "c"),
        gust_handler_get_argument(h, "value", ""), NULL);
    if (rc == -EINVAL)
        return gust_handler_send_error(h, 400, "refused cookie");
    return rc < 0 ? rc : gust_handler_write_str(h, "set");
}

static int cookie_get(gust_handler *h)
{
    return gust_handler_write_str(
        h, gust_handler_get_cookie(
               h, gust_handler_get_argument(h, "name", "c"), "(none)"));
}

static int cookie_clear(gust_handler *h)
{
    int rc = gust_handler_clear_cookie(
        h, gust_handler_get_argument(h, "name", "c"), NULL, NULL);
    return rc < 0 ? rc : gust_handler_write_str(h, "cleared");
}

static int signed_set(gust_handler *h)
{
    int rc = gust_handler_set_signed_cookie(
        h, "user", gust_handler_get_argument(h, "value", "anon"), NULL);
    return rc < 0 ? rc : gust_handler_write_str(h, "signed");
}

static int signed_get(gust_handler *h)
{
    const char *days = gust_handler_get_argument(h, "days", "31");
    const char *v = gust_handler_get_signed_cookie(h, "user", atof(days));
    if (!v)
        return gust_handler_send_error(h, 403, "no valid signed cookie");
    return gust_handler_write_str(h, v);
}

static int xsrf_get(gust_handler *h)
{
    const char *t = gust_handler_xsrf_token(h);
    return t ? gust_handler_write_str(h, t) : -EIO;
}

static int xsrf_post(gust_handler *h)
{
    return gust_handler_write_str(h, "ok");
}

static int redirect_get(gust_handler *h)
{
    const char *to = gust_handler_get_argument(h, "to", "/");
    int status = atoi(gust_handler_get_argument(h, "status", "302"));
    int rc = gust_handler_redirect(h, to, status);
    return rc == -EINVAL ? gust_handler_send_error(h, 400, "bad redirect")
                         : rc;
}

static int big_get(gust_handler *h)
{
    gust_handler_set_header(h, "Content-Type", "text/plain; charset=UTF-8");
    for (int i = 0; i < 2000; i++)
        gust_handler_printf(h, "line %d of a compressible body\n", i);
    return 0;
}

static void stream_next(gust_handler *h, int status, void *data)
{
    intptr_t part = (intptr_t)data;
    if (status < 0 || part >= 3) {
        gust_handler_finish(h);
        return;
    }
    gust_handler_printf(h, "part %d of a streamed body\n", (int)part);
    if (gust_handler_flush(h, stream_next, (void *)(part + 1)) < 0)
        gust_handler_finish(h);
}

static int stream_get(gust_handler *h)
{
    gust_handler_set_header(h, "Content-Type", "text/plain; charset=UTF-8");
    gust_handler_write_str(h, "part 0 of a streamed body\n");
    int rc = gust_handler_flush(h, stream_next, (void *)(intptr_t)1);
    return rc < 0 ? rc : GUST_HANDLER_ASYNC;
}

static int json_get(gust_handler *h)
{
    json_t *j = json_pack("{s:s}", "message", "Hello, World!");
    int rc = j ? gust_handler_write_json(h, j) : -ENOMEM;
    json_decref(j);
    return rc;
}

static int error_get(gust_handler *h)
{
    gust_handler_write_str(h, "never seen");
    return -EIO;
}

static int teapot_get(gust_handler *h)
{
    return gust_handler_send_error(h, 418, "I'm a <teapot>");
}

static int coro_get(gust_handler *h)
{
    int rc = gust_await(gust_sleep(gust_handler_loop(h), 0.05), NULL);
    return rc < 0 ? rc : gust_handler_write_str(h, "coroutine done");
}

static void async_done(gust_loop *loop, void *data)
{
    (void)loop;
    gust_handler *h = data;
    gust_handler_write_str(h, "async done");
    gust_handler_finish(h);
}

static int async_get(gust_handler *h)
{
    if (!gust_loop_call_later(gust_handler_loop(h), 0.05, async_done, h))
        return -ENOMEM;
    return GUST_HANDLER_ASYNC;
}

static int template_get(gust_handler *h)
{
    json_t *ctx = json_pack("{s:s, s:[s,s,s]}", "name",
                            gust_handler_get_argument(h, "name", "world"),
                            "items", "one", "<two>", "three");
    if (!ctx)
        return -ENOMEM;
    int rc = gust_handler_render(h, "page.html", ctx);
    json_decref(ctx);
    return rc;
}

static int static_url_get(gust_handler *h)
{
    return gust_handler_write_str(
        h, gust_handler_static_url(h, gust_handler_get_argument(h, "path",
                                                                "x")));
}

static int method_name(gust_handler *h)
{
    const char *m = gust_handler_request(h)->method;
    gust_handler_set_header(h, "X-Method", m);
    return gust_handler_write_str(h, m);
}

static int status_get(gust_handler *h)
{
    int code = atoi(gust_handler_get_argument(h, "code", "200"));
    int rc = gust_handler_set_status(h, code,
                                     gust_handler_get_argument(h, "reason",
                                                               NULL));
    if (rc == -EINVAL)
        return gust_handler_send_error(h, 400, "bad status");
    return rc < 0 ? rc : gust_handler_write_str(h, "status set");
}

static int headers_get(gust_handler *h)
{
    gust_handler_set_header(h, "X-Set", "first");
    gust_handler_set_header(h, "X-Set", "second"); /* replaces */
    gust_handler_add_header(h, "X-Multi", "one");
    gust_handler_add_header(h, "X-Multi", "two");  /* another line */
    gust_handler_set_header(h, "X-Gone", "soon");
    gust_handler_clear_header(h, "X-Gone");
    const char *bad = gust_handler_get_argument(h, "bad", NULL);
    if (bad)
        return gust_handler_printf(h, "set=%d add=%d",
                                   gust_handler_set_header(h, "X-Bad", bad),
                                   gust_handler_add_header(h, "X-Bad", bad));
    return gust_handler_write_str(h, "headers");
}

/* Every attribute of gust_http_cookie_options from the query. */
static int cookie_attrs(gust_handler *h)
{
    gust_http_cookie_options o = {0};
    o.domain = gust_handler_get_argument(h, "domain", NULL);
    o.path = gust_handler_get_argument(h, "path", NULL);
    const char *expires = gust_handler_get_argument(h, "expires", NULL);
    if (expires) {
        o.has_expires = true;
        o.expires = (time_t)atoll(expires);
    }
    const char *max_age = gust_handler_get_argument(h, "max_age", NULL);
    if (max_age) {
        o.has_max_age = true;
        o.max_age = atoll(max_age);
    }
    o.secure = gust_handler_get_argument(h, "secure", NULL) != NULL;
    o.httponly = gust_handler_get_argument(h, "httponly", NULL) != NULL;
    const char *ss = gust_handler_get_argument(h, "samesite", "");
    o.samesite = !strcmp(ss, "strict") ? GUST_HTTP_SAMESITE_STRICT
                 : !strcmp(ss, "lax")  ? GUST_HTTP_SAMESITE_LAX
                 : !strcmp(ss, "none") ? GUST_HTTP_SAMESITE_NONE
                                       : GUST_HTTP_SAMESITE_UNSET;
    int rc = gust_handler_set_cookie(
        h, gust_handler_get_argument(h, "name", "c"),
        gust_handler_get_argument(h, "value", "v"), &o);
    if (rc == -EINVAL)
        return gust_handler_send_error(h, 400, "refused cookie");
    return rc < 0 ? rc : gust_handler_write_str(h, "set");
}

static void join_args(gust_handler *h, const char **vals, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gust_handler_printf(h, "%s%s", i ? "," : "", vals[i]);
}

static int split_args(gust_handler *h)
{
    const char **vals;
    size_t n;
    gust_handler_printf(
        h, "query=%s body=%s any=%s",
        gust_handler_get_query_argument(h, "name", "-"),
        gust_handler_get_body_argument(h, "name", "-"),
        gust_handler_get_argument(h, "name", "-"));
    gust_handler_write_str(h, " queries=");
    n = gust_handler_get_query_arguments(h, "name", &vals);
    join_args(h, vals, n);
    gust_handler_write_str(h, " bodies=");
    n = gust_handler_get_body_arguments(h, "name", &vals);
    join_args(h, vals, n);
    gust_handler_write_str(h, " all=");
    n = gust_handler_get_arguments(h, "name", &vals);
    join_args(h, vals, n);
    return 0;
}

static int upload_post(gust_handler *h)
{
    gust_handler_set_header(h, "Content-Type", "text/plain; charset=UTF-8");
    const gust_http_file *f = gust_handler_get_file(h, "doc");
    if (!f)
        return gust_handler_send_error(h, 400, "no file");
    gust_handler_printf(h, "%.*s|%.*s|%zu|", (int)f->filename.len,
                        f->filename.ptr, (int)f->content_type.len,
                        f->content_type.ptr, f->body.len);
    gust_handler_write(h, f->body.ptr, f->body.len);
    gust_handler_printf(h, "|files=%zu|note=%s",
                        gust_handler_request(h)->files.count,
                        gust_handler_get_body_argument(h, "note", "-"));
    return 0;
}

static int broken_template_get(gust_handler *h)
{
    const char *which = gust_handler_get_argument(h, "syntax", NULL);
    return gust_handler_render(h, which ? "unclosed.html" : "broken.html",
                               NULL);
}

/* One class, several routes: the route data (Tornado's kwargs) reaches
 * initialize, which keeps what the method needs in the handler's state. */
typedef struct greet_state {
    const char *greeting;
} greet_state;

static int greet_initialize(gust_handler *h, void *route_data)
{
    if (!route_data)
        return -EINVAL;
    greet_state *st = gust_handler_state(h);
    st->greeting = route_data;
    return 0;
}

static int greet_get(gust_handler *h)
{
    greet_state *st = gust_handler_state(h);
    return gust_handler_printf(h, "%s, %s", st->greeting,
                               gust_handler_get_argument(h, "who", "you"));
}

/* A streaming body (Tornado's stream_request_body): chunks are counted
 * and hashed (FNV-1a, 32 bits) as they come; nothing is buffered. */
typedef struct sink_state {
    size_t bytes, chunks;
    uint32_t fnv;
} sink_state;

static int sink_prepare(gust_handler *h)
{
    sink_state *st = gust_handler_state(h);
    st->fnv = 2166136261u;
    return 0;
}

static int sink_data(gust_handler *h, const char *chunk, size_t len)
{
    sink_state *st = gust_handler_state(h);
    for (size_t i = 0; i < len; i++) {
        st->fnv ^= (unsigned char)chunk[i];
        st->fnv *= 16777619u;
    }
    st->bytes += len;
    st->chunks++;
    return 0;
}

static int slowsink_prepare(gust_handler *h)
{
    sink_prepare(h);
    return gust_await(gust_sleep(gust_handler_loop(h), 0.3), NULL);
}

static int sink_put(gust_handler *h)
{
    sink_state *st = gust_handler_state(h);
    return gust_handler_printf(h, "bytes=%zu chunks=%zu buffered=%zu "
                               "fnv=%08x", st->bytes, st->chunks,
                               gust_handler_request(h)->body.len,
                               (unsigned)st->fnv);
}

static int api_host_get(gust_handler *h)
{
    return gust_handler_write_str(h, "api host");
}

static int fallback_get(gust_handler *h)
{
    gust_handler_set_status(h, 404, NULL);
    return gust_handler_printf(h, "no route for %s",
                               gust_handler_request(h)->path);
}

static void custom_log(gust_handler *h, void *data)
{
    gust_http_request *r = gust_handler_request(h);
    gust_log_info("custom", "%s custom-log %d %s %s", (const char *)data,
                  gust_handler_get_status(h), r->method, r->uri);
}

#define CLASS(n, ...)                                                        \
    static const gust_handler_class n = {.name = #n, __VA_ARGS__}
CLASS(hello, .get = hello_get, .head = hello_get);
CLASS(args, .get = args_get, .post = args_get);
CLASS(many, .get = many_get);
CLASS(need, .get = need_get);
CLASS(item, .get = item_get);
CLASS(user, .get = user_get);
CLASS(cset, .get = cookie_set);
CLASS(cget, .get = cookie_get);
CLASS(cclear, .get = cookie_clear);
CLASS(sset, .get = signed_set);
CLASS(sget, .get = signed_get);
CLASS(xsrf, .get = xsrf_get, .post = xsrf_post, .put = xsrf_post);
CLASS(redirect, .get = redirect_get);
CLASS(big, .get = big_get);
CLASS(json, .get = json_get);
CLASS(stream, .get = stream_get);
CLASS(error, .get = error_get);
CLASS(teapot, .get = teapot_get);
CLASS(coro, .flags = GUST_HANDLER_COROUTINE, .get = coro_get);
CLASS(async, .get = async_get);
CLASS(templ, .get = template_get);
CLASS(surl, .get = static_url_get);
CLASS(methods, .get = method_name, .head = method_name, .post = method_name,
      .put = method_name, .delete_ = method_name, .patch = method_name,
      .options = method_name);
CLASS(status, .get = status_get);
CLASS(headers, .get = headers_get);
CLASS(cattrs, .get = cookie_attrs);
CLASS(split, .get = split_args, .post = split_args);
CLASS(upload, .post = upload_post);
CLASS(broken, .get = broken_template_get);
CLASS(fallback, .get = fallback_get);
CLASS(api, .get = api_host_get);
CLASS(sink, .flags = GUST_HANDLER_STREAM_BODY,
      .state_size = sizeof(sink_state), .prepare = sink_prepare,
      .data_received = sink_data, .put = sink_put);
CLASS(slowsink, .flags = GUST_HANDLER_STREAM_BODY | GUST_HANDLER_COROUTINE,
      .state_size = sizeof(sink_state), .prepare = slowsink_prepare,
      .data_received = sink_data, .put = sink_put);
CLASS(greet, .state_size = sizeof(greet_state),
      .initialize = greet_initialize, .get = greet_get);

static gust_app *app;
static gust_http_server *server; /* the one serving app, whatever the form */

static void on_all_closed(gust_http_server *srv, void *data)
{
    (void)srv;
    gust_loop_stop(data);
}

static void on_signal(gust_loop *loop, int signum, void *data)
{
    (void)data;
    (void)signum;
    gust_http_server_close_all(server, on_all_closed, loop);
}

/* Starts serving app the way --form says. */
static int start(const char *form, int port, const char *address)
{
    if (!strcmp(form, "app")) {
        int rc = gust_app_listen(app, port, address);
        server = gust_app_server(app);
        return rc;
    }
    if (!strcmp(form, "explicit")) {
        server = gust_http_server_new(gust_app_http_handler(app), NULL);
        if (!server)
            return -errno;
        return gust_http_server_listen(server, port, address);
    }
    if (!strcmp(form, "sockets")) {
        /* Start form 3: bind, fork two workers, each with its own server. */
        gust_socket_list *socks = gust_bind_sockets(port, address, NULL);
        if (!socks)
            return -errno;
        int rc = gust_fork_processes(2, 0);
        if (rc < 0) {
            gust_socket_list_free(socks);
            return rc;
        }
        server = gust_http_server_new(gust_app_http_handler(app), NULL);
        if (!server) {
            gust_socket_list_free(socks);
            return -errno;
        }
        return gust_http_server_add_sockets(server, socks);
    }
    return -EINVAL;
}

int main(int argc, char **argv)
{
    int port, key_version;
    bool debug, default_handler, log_custom, compress;
    const char *address, *secret, *static_path, *static_prefix, *form;
    gust_string_list key_secrets;
    gust_options_define_int(NULL, "port", &port, 8888, "port", NULL);
    gust_options_define_string(NULL, "address", &address, "127.0.0.1",
                               "address", NULL);
    gust_options_define_bool(NULL, "debug", &debug, false, "debug pages",
                             NULL);
    gust_options_define_string(NULL, "cookie_secret", &secret,
                               "gust-test-secret", "cookie secret", NULL);
    gust_options_define_string(NULL, "static_path", &static_path, NULL,
                               "static files", NULL);
    gust_options_define_string(NULL, "static_url_prefix", &static_prefix,
                               NULL, "URL prefix of static files", NULL);
    gust_options_define_bool(NULL, "compress_response", &compress, true,
                             "gzip for clients that accept it", NULL);
    gust_options_define_string(NULL, "form", &form, "app",
                               "start form: app, explicit or sockets", NULL);
    gust_options_define_bool(NULL, "default_handler", &default_handler, false,
                             "a handler of ours for unmatched paths", NULL);
    gust_options_define_bool(NULL, "custom_log", &log_custom, false,
                             "settings.log_function", NULL);
    gust_options_define_string_list(NULL, "key_secrets", &key_secrets, NULL,
                                    "cookie secrets by key version", NULL);
    gust_options_define_int(NULL, "key_version", &key_version, 0,
                            "key version of new signed values", NULL);
    gust_options_parse_command_line(NULL, argc, argv);

    /* The templates sit next to this source file. */
    char src[] = __FILE__;
    char templates[4096];
    snprintf(templates, sizeof templates, "%s/templates", dirname(src));

    const gust_route routes[] = {
        /* Host-based: only for api.example.com; others fall through. */
        GUST_ROUTE("/", &api, .host = "api\\.example\\.com"),
        GUST_ROUTE("/", &hello, .name = "home"),
        GUST_ROUTE("/args", &args),
        GUST_ROUTE("/args/many", &many),
        GUST_ROUTE("/args/split", &split),
        GUST_ROUTE("/need", &need),
        GUST_ROUTE("/item/([0-9]+)", &item, .name = "item"),
        GUST_ROUTE("/user/(?<name>[a-z]+)", &user),
        GUST_ROUTE("/cookie/set", &cset),
        GUST_ROUTE("/cookie/get", &cget),
        GUST_ROUTE("/cookie/clear", &cclear),
        GUST_ROUTE("/cookie/attrs", &cattrs),
        GUST_ROUTE("/signed/set", &sset),
        GUST_ROUTE("/signed/get", &sget),
        GUST_ROUTE("/xsrf", &xsrf),
        GUST_ROUTE("/redirect", &redirect),
        GUST_ROUTE("/moved", &gust_redirect_handler, .data = (void *)"/"),
        GUST_ROUTE("/big", &big),
        GUST_ROUTE("/json", &json),
        GUST_ROUTE("/stream", &stream),
        GUST_ROUTE("/error", &error),
        GUST_ROUTE("/teapot", &teapot),
        GUST_ROUTE("/coro", &coro),
        GUST_ROUTE("/async", &async),
        GUST_ROUTE("/template", &templ),
        GUST_ROUTE("/template/broken", &broken),
        GUST_ROUTE("/static_url", &surl),
        GUST_ROUTE("/methods", &methods),
        GUST_ROUTE("/status", &status),
        GUST_ROUTE("/headers", &headers),
        GUST_ROUTE("/upload", &upload),
        GUST_ROUTE("/sink", &sink),
        GUST_ROUTE("/slowsink", &slowsink),
        GUST_ROUTE("/greet/en", &greet, .data = (void *)"Hello"),
        GUST_ROUTE("/greet/fr", &greet, .data = (void *)"Bonjour"),
        GUST_ROUTE("/greet/none", &greet),
        GUST_ROUTES_END};
    /* cookie_secrets is NULL-terminated. */
    const char *secrets[9] = {NULL};
    for (size_t i = 0; i < key_secrets.count && i < 8; i++)
        secrets[i] = key_secrets.items[i];
    gust_app_settings s = {
        .debug = debug,
        .cookie_secret = secret,
        .cookie_secrets = key_secrets.count ? secrets : NULL,
        .key_version = key_version,
        .xsrf_cookies = true,
        .compress_response = compress,
        .template_path = templates,
        .static_path = static_path,
        .static_url_prefix = static_prefix,
        .default_handler = default_handler ? &fallback : NULL,
        .log_function = log_custom ? custom_log : NULL,
        .log_data = (void *)"data-ok",
    };
    app = gust_app_new(routes, &s);
    int rc = app ? start(form, port, address) : -errno;
    if (rc < 0) {
        gust_log_error("web", "cannot start: %s", gust_strerror(rc));
        if (server != gust_app_server(app))
            gust_http_server_free(server);
        gust_app_free(app);
        gust_options_free(NULL);
        return 1;
    }
    gust_loop *loop = gust_loop_current();
    gust_loop_add_signal(loop, SIGTERM, on_signal, NULL);
    gust_log_info("web", "listening on %s:%d", address,
                  gust_http_server_port(server));
    gust_loop_start(loop);
    gust_loop_remove_signal(loop, SIGTERM);
    if (server != gust_app_server(app))
        gust_http_server_free(server);
    gust_app_free(app);
    gust_options_free(NULL);
    return gust_loop_free(loop) == 0 ? 0 : 1;
}
