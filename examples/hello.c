/* hello: E4 of shared/TORNADO_EXAMPLES.md, Tornado's "Hello, world"
 * application, with its second handler:
 *
 *     class MainHandler(tornado.web.RequestHandler):
 *         def get(self):
 *             self.write("Hello, world")
 *     class IndexHandler(tornado.web.RequestHandler):
 *         def get(self):
 *             self.write("Hello Itcast!")
 *     app = tornado.web.Application([(r"/", MainHandler),
 *                                    (r"/index", IndexHandler)])
 *
 *   hello [--port=8888] [--address=A] [--processes=1] [--logging=info]
 *         [--shutdown_timeout=10]
 *         [--access_log=tornado|common|combined|json] [--access_log_us]
 *         [--xheaders] [--metrics_path=/metrics] [--sockets]
 *         [--http2_header_table_size=4096] [--http2_hibernate_after=1]
 *
 * The port comes from options.h (E5's define("port", default=8888)). With
 * --processes=1 the app listens itself (start form 1, gust_app_listen);
 * any other value goes through an explicit server, as E4 recommends
 * learning first: bind, then fork that many processes (0: one per CPU;
 * start form 2). With --sockets the sockets are bound, the process forks
 * and each worker makes its own server on them (start form 3). SIGTERM
 * or SIGINT closes the connections, frees everything and exits 0.
 *
 * Production flags: --access_log picks the access line (Tornado's, the
 * common or combined log format, JSON), --access_log_us gives request
 * times in microseconds, --xheaders trusts X-Real-Ip / X-Forwarded-For
 * and X-Scheme from a proxy in front (docs/deployment.md), and
 * --metrics_path serves every worker's metrics in Prometheus's format.
 * Under systemd socket activation (LISTEN_FDS) the port's socket comes
 * from systemd.
 */
#include <errno.h>
#include <string.h>

#include "gust/gust.h"

static int main_get(gust_handler *h)
{
    return gust_handler_write_str(h, "Hello, world");
}

static int index_get(gust_handler *h)
{
    return gust_handler_write_str(h, "Hello Itcast!");
}

static const gust_handler_class main_handler = {.name = "MainHandler",
                                                .get = main_get};
static const gust_handler_class index_handler = {.name = "IndexHandler",
                                                 .get = index_get};

int main(int argc, char **argv)
{
    int port, processes;
    const char *address;
    gust_options_define_int(NULL, "port", &port, 8888,
                            "run on the given port", NULL);
    gust_options_define_string(NULL, "address", &address, NULL,
                               "listen on this address (default: all)", NULL);
    gust_options_define_int(NULL, "processes", &processes, 1,
                            "processes to fork (0: one per CPU)", NULL);
    gust_http_server_options so = {0};
    gust_options_define_duration(NULL, "shutdown_timeout", &so.shutdown_timeout,
                                 10, "on SIGTERM, seconds connections get to "
                                 "finish before the rest are closed", NULL);
    const char *access_log, *metrics_path;
    bool access_log_us, xheaders, form3;
    gust_options_define_string(NULL, "access_log", &access_log, "tornado",
                               "access line: tornado, common, combined, json",
                               NULL);
    gust_options_define_bool(NULL, "access_log_us", &access_log_us, false,
                             "request times in microseconds", NULL);
    gust_options_define_bool(NULL, "xheaders", &xheaders, false,
                             "client address from X-Real-Ip (behind a proxy)",
                             NULL);
    gust_options_define_string(NULL, "metrics_path", &metrics_path, NULL,
                               "serve Prometheus metrics at this path", NULL);
    gust_options_define_bool(NULL, "sockets", &form3, false,
                             "bind, fork, then a server per worker (form 3)",
                             NULL);
    int h2_table;
    gust_options_define_int(NULL, "http2_header_table_size", &h2_table, 4096,
                            "HTTP/2 HPACK table for request fields (0: none, "
                            "so idle connections hibernate)", NULL);
    gust_options_define_duration(NULL, "http2_hibernate_after",
                                 &so.http2_hibernate_after, 1,
                                 "free an idle HTTP/2 connection's session "
                                 "after this long (-1: never)", NULL);
    gust_options_parse_command_line(NULL, argc, argv);
    so.http2_header_table_size = h2_table > 0 ? h2_table : -1;

    static const char *const formats[] = {"tornado", "common", "combined",
                                          "json"};
    gust_app_settings settings = {.access_log_microseconds = access_log_us};
    for (int i = 0; i < 4; i++)
        if (strcmp(access_log, formats[i]) == 0)
            settings.access_log_format = i;
    so.xheaders = xheaders;
    settings.server_options = &so;
    gust_route routes[] = {
        GUST_ROUTE("/", &main_handler, .name = "main"),
        GUST_ROUTE("/index", &index_handler, .name = "index"),
        GUST_ROUTE(metrics_path ? metrics_path : "/metrics", &gust_metrics_handler),
        GUST_ROUTES_END,
    };
    if (!metrics_path || !*metrics_path)
        routes[2] = (gust_route)GUST_ROUTES_END;
    gust_app *app = gust_app_new(routes, &settings);
    gust_http_server *server = NULL, *own = NULL;
    int rc = app ? 0 : -errno;
    if (rc == 0 && form3) {
        gust_socket_list *socks = gust_bind_sockets(port, address, NULL);
        rc = socks ? gust_fork_processes(processes, 0) : -errno;
        if (rc > 0)
            rc = 0; /* a worker's task id */
        if (rc == 0)
            server = own = gust_http_server_new(gust_app_http_handler(app), &so);
        if (rc == 0 && !own)
            rc = -errno;
        if (rc == 0) {
            rc = gust_http_server_add_sockets(own, socks);
            socks = NULL; /* the server's now */
        }
        gust_socket_list_free(socks);
    } else if (rc == 0 && processes == 1) {
        rc = gust_app_listen(app, port, address);
        server = gust_app_server(app);
    } else if (rc == 0) {
        server = own = gust_http_server_new(gust_app_http_handler(app), &so);
        rc = own ? gust_http_server_bind(own, port, address) : -errno;
        if (rc == 0)
            rc = gust_http_server_start(own, processes);
    }
    if (rc == 0)
        rc = gust_http_server_close_on_signals(server);
    if (rc < 0) {
        gust_log_error("web", "cannot start: %s", gust_strerror(rc));
    } else {
        gust_log_info("web", "listening on %s:%d", address ? address : "*",
                      gust_http_server_port(server));
        gust_loop_start(gust_loop_current());
    }
    gust_http_server_free(own);
    gust_app_free(app);
    gust_options_free(NULL);
    int busy = gust_loop_free(gust_loop_current());
    return rc == 0 && busy == 0 ? 0 : 1;
}
