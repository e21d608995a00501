/* hello_http: "Hello, world" with a structured response: the server adds
 * Date, Server, Content-Length and keep-alive handling.
 *
 *   hello_http [--port=8888] [--address=127.0.0.1] [--processes=1]
 *              [--shutdown_timeout=10] [--write_timeout=60]
 *              [--idle_connection_timeout=60] [--header_timeout=30]
 *              [--http2_header_table_size=4096] [--http2_hibernate_after=1]
 *
 * With --processes=N (0: one per CPU) the socket is bound first and the
 * process forks (the bind + start form of tcp_server.h).
 *
 * POST /upload with a multipart body answers every uploaded file as
 * "<field> <filename> <size>\n" followed by the file's bytes, so that a test
 * can check an upload byte for byte; any request to /echo is answered with
 * its body, and /version with the request's HTTP version ("HTTP/1.1",
 * "HTTP/2.0"), which is what a handler sees behind a proxy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/gust.h"
#include "gust/http_server.h"

static gust_http_server *server;

static void handle_upload(gust_http_request *req)
{
    gust_http_response_set_header(req, "Content-Type",
                                  "application/octet-stream");
    for (size_t i = 0; i < req->files.count; i++) {
        const gust_http_file *f = &req->files.items[i];
        char line[512];
        int n = snprintf(line, sizeof line, "%.*s %.*s %zu\n",
                         (int)f->name.len, f->name.ptr, (int)f->filename.len,
                         f->filename.ptr, f->body.len);
        gust_http_response_write(req, line, (size_t)n);
        gust_http_response_write(req, f->body.ptr, f->body.len);
    }
    gust_http_request_finish(req);
}

static void handle_request(gust_http_request *req, void *data)
{
    (void)data;
    if (strcmp(req->path, "/upload") == 0) {
        handle_upload(req);
        return;
    }
    if (strcmp(req->path, "/version") == 0) {
        gust_http_respond(req, 200, "text/plain", req->version,
                          strlen(req->version));
        return;
    }
    if (strcmp(req->path, "/echo") == 0) {
        gust_http_respond(req, 200, "application/octet-stream",
                          req->body.ptr, req->body.len);
        return;
    }
    static const char hello[] = "Hello, world";
    gust_http_respond(req, 200, "text/plain", hello, sizeof hello - 1);
}

int main(int argc, char **argv)
{
    int port, processes;
    const char *address;
    gust_options_define_int(NULL, "port", &port, 8888,
                            "run on the given port", NULL);
    gust_options_define_string(NULL, "address", &address, "127.0.0.1",
                               "listen on this address", NULL);
    gust_options_define_int(NULL, "processes", &processes, 1,
                            "worker processes (0: one per CPU)", NULL);
    gust_http_server_options so = {0};
    gust_options_define_duration(NULL, "shutdown_timeout", &so.shutdown_timeout,
                                 10, "on SIGTERM, seconds connections get to "
                                 "finish before the rest are closed", NULL);
    gust_options_define_duration(NULL, "write_timeout", &so.write_timeout, 60,
                                 "close a client that reads none of its "
                                 "pending responses for this long", NULL);
    gust_options_define_duration(NULL, "idle_connection_timeout",
                                 &so.idle_connection_timeout, 60,
                                 "close a connection with no request in "
                                 "progress after this long", NULL);
    gust_options_define_duration(NULL, "header_timeout", &so.header_timeout, 30,
                                 "close a connection whose request does not "
                                 "come within this long", NULL);
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
    server = gust_http_server_new(gust_http_callback(handle_request, NULL),
                                  &so);
    int rc = server ? gust_http_server_bind(server, port, address) : -ENOMEM;
    if (rc == 0)
        rc = gust_http_server_start(server, processes);
    if (rc < 0) {
        gust_log_error("http", "cannot start: %s", gust_strerror(rc));
        gust_http_server_free(server);
        gust_options_free(gust_options_default());
        return 1;
    }
    gust_loop *loop = gust_loop_current();
    gust_http_server_close_on_signals(server);
    gust_http_server_log_stats_on_sigusr1(server); /* kill -USR1: a line */
    gust_log_info("http", "listening on %s:%d", address,
                  gust_http_server_port(server));
    gust_loop_start(loop);
    gust_http_server_free(server);
    gust_options_free(gust_options_default());
    return gust_loop_free(loop) == 0 ? 0 : 1;
}
