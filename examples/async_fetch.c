/* async_fetch: E6 of shared/TORNADO_EXAMPLES.md, handlers that call another
 * server, in the three styles:
 *
 *   /callback    the handler stays open until on_fetch() finishes it;
 *   /coroutine   get() awaits one fetch, then writes;
 *   /parallel    get() awaits two fetches at once with gust_all().
 *
 *   async_fetch [--port=8888] [--upstream=URL] [--upstream-delay=0.2]
 *               [--http2] (--help: the options)
 *
 * Each route answers with the body it fetched from URL/a (and URL/b for
 * /parallel); a failed fetch answers 502. Without --upstream the program is
 * its own upstream: /upstream/a and /upstream/b answer after 0.2 s
 * (--upstream-delay), so /parallel takes 0.2 s, not 0.4 s. SIGTERM or
 * SIGINT: graceful stop. --http2: an https upstream that offers h2 is
 * fetched over HTTP/2, all fetches sharing one connection.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>

#include "gust/gust.h"
#include "gust/http_client.h"
#include "gust/web.h"

static gust_http_client *client;
static char url_a[512], url_b[512];

/* ---- Callback style (Tornado's @asynchronous) -------------------------- */

static void on_fetch(gust_http_client_response *resp, void *data)
{
    gust_handler *h = data;
    if (resp->error) {
        gust_handler_send_error(h, 502, "%s", resp->error_message);
        return;
    }
    gust_handler_write(h, resp->body, resp->body_len);
    gust_handler_finish(h);
}

static int callback_get(gust_handler *h)
{
    gust_http_client_request r = {.url = url_a};
    int rc = gust_http_client_fetch_cb(client, &r, on_fetch, h);
    return rc < 0 ? rc : GUST_HANDLER_ASYNC;
}

static const gust_handler_class callback_handler = {
    .name = "callback", .get = callback_get};

/* ---- Coroutine yielding a future (Tornado's @gen.coroutine) ----------- */

static int coroutine_get(gust_handler *h)
{
    gust_value v;
    int rc = gust_await(gust_http_fetch(client, url_a), &v);
    if (rc < 0)
        return gust_handler_send_error(h, 502, "%s", gust_strerror(rc));
    gust_http_client_response *resp = v.ptr;
    gust_handler_write(h, resp->body, resp->body_len);
    gust_value_free(&v);
    return 0;
}

static const gust_handler_class coroutine_handler = {
    .name = "coroutine", .flags = GUST_HANDLER_COROUTINE, .get = coroutine_get};

/* ---- Two fetches at once ---------------------------------------------- */

static int parallel_get(gust_handler *h)
{
    gust_future *fetches[] = {gust_http_fetch(client, url_a),
                              gust_http_fetch(client, url_b)};
    gust_value v;
    int rc = gust_await(gust_all(gust_handler_loop(h), fetches, 2), &v);
    if (rc < 0)
        return gust_handler_send_error(h, 502, "%s", gust_strerror(rc));
    gust_value *responses = v.ptr;
    for (int i = 0; i < 2; i++) {
        gust_http_client_response *resp = responses[i].ptr;
        gust_handler_write(h, resp->body, resp->body_len);
    }
    gust_value_free(&v); /* frees both responses and the array */
    return 0;
}

static const gust_handler_class parallel_handler = {
    .name = "parallel", .flags = GUST_HANDLER_COROUTINE, .get = parallel_get};

/* ---- The built-in upstream: a slow server ----------------------------- */

static double upstream_delay;

static int upstream_get(gust_handler *h)
{
    int rc = gust_await(gust_sleep(gust_handler_loop(h), upstream_delay),
                        NULL);
    if (rc < 0)
        return rc;
    gust_handler_set_header(h, "Content-Type", "text/plain");
    return gust_handler_printf(h, "upstream %s\n", gust_handler_path_arg(h, 0));
}

static const gust_handler_class upstream_handler = {
    .name = "upstream", .flags = GUST_HANDLER_COROUTINE, .get = upstream_get};

/* ---- Main ------------------------------------------------------------- */

static void on_all_closed(gust_http_server *srv, void *data)
{
    (void)srv;
    gust_http_client_free(client); /* closes its idle connections */
    client = NULL;
    gust_loop_stop(data);
}

static void on_signal(gust_loop *loop, int signum, void *data)
{
    gust_log_info("app", "signal %d: shutting down", signum);
    gust_http_server_close_all(gust_app_server(data), on_all_closed, loop);
}

static bool never(gust_loop *loop, void *data)
{
    (void)loop, (void)data;
    return false;
}

int main(int argc, char **argv)
{
    int port;
    const char *upstream;
    bool http2;
    gust_options_define_int(NULL, "port", &port, 8888,
                            "run on the given port (127.0.0.1)", NULL);
    gust_options_define_string(NULL, "upstream", &upstream, NULL,
                               "base URL fetched (URL/a, URL/b); default: "
                               "this server's own /upstream", NULL);
    gust_options_define_double(NULL, "upstream_delay", &upstream_delay, 0.2,
                               "seconds the own /upstream takes to answer",
                               NULL);
    gust_options_define_bool(NULL, "http2", &http2, false,
                             "fetch https upstreams over HTTP/2 when they "
                             "offer it (ALPN h2)", NULL);
    gust_options_parse_command_line(NULL, argc, argv);
    if (upstream) {
        snprintf(url_a, sizeof url_a, "%s/a", upstream);
        snprintf(url_b, sizeof url_b, "%s/b", upstream);
    } else {
        snprintf(url_a, sizeof url_a, "http://127.0.0.1:%d/upstream/a", port);
        snprintf(url_b, sizeof url_b, "http://127.0.0.1:%d/upstream/b", port);
    }

    const gust_route routes[] = {
        GUST_ROUTE("/callback", &callback_handler),
        GUST_ROUTE("/coroutine", &coroutine_handler),
        GUST_ROUTE("/parallel", &parallel_handler),
        GUST_ROUTE("/upstream/(a|b)", &upstream_handler),
        GUST_ROUTES_END,
    };
    gust_loop *loop = gust_loop_current();
    gust_app *app = gust_app_new(routes, NULL);
    gust_http_client_options copts = {.http2 = http2};
    client = gust_http_client_new(loop, &copts);
    int rc = app && client ? gust_app_listen(app, port, "127.0.0.1") : -ENOMEM;
    if (rc < 0) {
        gust_log_error("app", "cannot start: %s", gust_strerror(rc));
        gust_http_client_free(client);
        gust_app_free(app);
        gust_options_free(gust_options_default());
        return 1;
    }
    gust_loop_add_signal(loop, SIGTERM, on_signal, app);
    gust_loop_add_signal(loop, SIGINT, on_signal, app);
    gust_log_info("app", "async_fetch listening on 127.0.0.1:%d, upstream %s",
                  port, url_a);
    gust_loop_start(loop);

    gust_loop_remove_signal(loop, SIGTERM);
    gust_loop_remove_signal(loop, SIGINT);
    gust_app_free(app);
    /* The close callbacks of the last connections run before the free. */
    gust_loop_run_until(loop, never, NULL, 0.1);
    gust_options_free(gust_options_default());
    return gust_loop_free(loop) == 0 ? 0 : 1;
}
