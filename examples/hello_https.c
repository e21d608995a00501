/* hello_https: "Hello, world" over HTTPS.
 *
 *   hello_https --cert=server.pem --key=server.key [--port=8443]
 *               [--address=127.0.0.1]
 *
 * GET /protocol answers the request's protocol ("https"), as a handler
 * behind a proxy or on a TLS server would check it.
 *
 * The certificate file holds the server's certificate followed by any
 * intermediate CAs (PEM). Clients verify it as usual, e.g.
 *     curl --cacert ca.pem https://localhost:8443/
 * See docs/tls.md.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/gust.h"
#include "gust/http_server.h"
#include "gust/options.h"
#include "gust/tls.h"

static gust_http_server *server;

static void handle_request(gust_http_request *req, void *data)
{
    (void)data;
    static const char hello[] = "Hello, world";
    if (strcmp(req->path, "/protocol") == 0)
        gust_http_respond(req, 200, "text/plain", req->protocol,
                          strlen(req->protocol));
    else
        gust_http_respond(req, 200, "text/plain", hello, sizeof hello - 1);
}

static void on_all_closed(gust_http_server *srv, void *data)
{
    (void)srv;
    gust_loop_stop(data);
}

static void on_signal(gust_loop *loop, int signum, void *data)
{
    (void)data;
    gust_log_info("http", "signal %d: shutting down", signum);
    gust_http_server_close_all(server, on_all_closed, loop);
}

int main(int argc, char **argv)
{
    int port;
    const char *address, *cert, *key;
    gust_options_define_int(NULL, "port", &port, 8443, "run on the given port",
                            NULL);
    gust_options_define_string(NULL, "address", &address, "127.0.0.1",
                               "address to listen on", NULL);
    gust_options_define_string(NULL, "cert", &cert, NULL,
                               "PEM certificate chain (required)", NULL);
    gust_options_define_string(NULL, "key", &key, NULL,
                               "PEM private key (required)", NULL);
    gust_options_parse_command_line(NULL, argc, argv);
    if (!cert || !key) {
        fprintf(stderr, "%s: --cert and --key are required (see --help)\n",
                argv[0]);
        gust_options_free(gust_options_default());
        return 2;
    }

    /* No ALPN list: the HTTP server offers "h2", then "http/1.1"
     * (gust_http_server_options.no_http2_tls turns HTTP/2 off). */
    gust_tls_options tls_opts = { .cert_file = cert, .key_file = key };
    gust_tls_context *tls = gust_tls_context_new_server(&tls_opts);
    if (!tls) {
        gust_options_free(gust_options_default());
        return 1; /* the reason is logged */
    }
    gust_http_server_options opts = { .tcp.tls = tls };
    server = gust_http_server_new(gust_http_callback(handle_request, NULL),
                                  &opts);
    gust_tls_context_free(tls); /* the server holds its own reference */
    int rc = server ? gust_http_server_listen(server, port, address) : -ENOMEM;
    if (rc < 0) {
        gust_log_error("http", "cannot start: %s", gust_strerror(rc));
        gust_http_server_free(server);
        gust_options_free(gust_options_default());
        return 1;
    }
    gust_loop *loop = gust_loop_current();
    gust_loop_add_signal(loop, SIGTERM, on_signal, NULL);
    gust_loop_add_signal(loop, SIGINT, on_signal, NULL);
    gust_log_info("http", "listening on https://%s:%d/", address,
                  gust_http_server_port(server));
    gust_loop_start(loop);
    /* Freeing the server closes connections still in their TLS handshake;
     * their last callbacks run on the next iterations. */
    gust_http_server_free(server);
    for (int i = 0; i < 3; i++)
        gust_loop_run_once(loop, 0);
    gust_loop_remove_signal(loop, SIGTERM);
    gust_loop_remove_signal(loop, SIGINT);
    gust_options_free(gust_options_default());
    return gust_loop_free(loop) == 0 ? 0 : 1;
}
