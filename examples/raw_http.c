/* raw_http: Tornado's first HTTP example (E1), the handler writing the
 * whole response itself.
 *
 *   raw_http [--port=8888] [--address=127.0.0.1]
 *
 *   $ curl http://127.0.0.1:8888/hello
 *   You requested /hello
 *
 * SIGTERM / SIGINT: stop accepting, finish the connections, free everything
 * and exit 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/gust.h"
#include "gust/http_server.h"

static gust_http_server *server;

static void handle_request(gust_http_request *req, void *data)
{
    (void)data;
    char msg[256];
    int n = snprintf(msg, sizeof msg, "You requested %s\n", req->uri);
    if (n >= (int)sizeof msg)
        n = (int)sizeof msg - 1;
    gust_http_request_printf(req, "HTTP/1.1 200 OK\r\n"
                             "Content-Length: %d\r\n\r\n%.*s", n, n, msg);
    gust_http_request_finish(req);
}

int main(int argc, char **argv)
{
    int port;
    const char *address;
    gust_options_define_int(NULL, "port", &port, 8888,
                            "run on the given port", NULL);
    gust_options_define_string(NULL, "address", &address, "127.0.0.1",
                               "listen on this address", NULL);
    gust_options_parse_command_line(NULL, argc, argv);
    server = gust_http_server_new(gust_http_callback(handle_request, NULL),
                                  NULL);
    int rc = server ? gust_http_server_listen(server, port, address) : -ENOMEM;
    if (rc < 0) {
        gust_log_error("http", "cannot listen: %s", gust_strerror(rc));
        gust_http_server_free(server);
        gust_options_free(gust_options_default());
        return 1;
    }
    gust_loop *loop = gust_loop_current();
    gust_http_server_close_on_signals(server);
    gust_log_info("http", "listening on %s:%d", address,
                  gust_http_server_port(server));
    gust_loop_start(loop);
    gust_http_server_free(server);
    gust_options_free(gust_options_default());
    return gust_loop_free(loop) == 0 ? 0 : 1;
}
