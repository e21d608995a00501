/* file_server: serves a directory with gust_static_file_handler, as
 * Tornado's StaticFileHandler would:
 *
 *   file_server [--root=DIR] [--port=8888] [--address=127.0.0.1]
 *               [--prefix=/] [--default-filename=index.html]
 *               [--cert=server.pem --key=server.key]
 *
 * GET and HEAD on <prefix><path> answer the file root/<path>: Content-Type
 * by extension, ETag and Last-Modified, 304 for If-None-Match and
 * If-Modified-Since, one Range (206, 416), Cache-Control for URLs with ?v=,
 * and the bytes by sendfile. A directory serves its default file
 * (--default-filename= with an empty value: directories get 403). Paths
 * leaving root, through ".." or a symlink, get 403. Logs "listening on"
 * once the port is open, one access line per request, and exits 0 on
 * SIGTERM or SIGINT after the open connections are done.
 *
 * With --cert and --key it serves HTTPS, offering HTTP/2 ("h2") and
 * HTTP/1.1 by ALPN (docs/http2.md), so that a browser loads a page and
 * its assets over one HTTP/2 connection.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/gust.h"
#include "gust/options.h"
#include "gust/tls.h"
#include "gust/web.h"

static gust_app *app;

static void on_all_closed(gust_http_server *srv, void *data)
{
    (void)srv;
    gust_loop_stop(data);
}

static void on_signal(gust_loop *loop, int signum, void *data)
{
    (void)data;
    gust_log_info("file_server", "signal %d: shutting down", signum);
    gust_http_server_close_all(gust_app_server(app), on_all_closed, loop);
}

/* The route pattern for prefix: regex metacharacters escaped, a trailing
 * '/' added, then the capture that becomes the file path. */
static char *route_pattern(const char *prefix)
{
    size_t n = strlen(prefix);
    char *out = malloc(2 * n + 8), *o = out;
    if (!out)
        return NULL;
    if (prefix[0] != '/')
        *o++ = '/';
    for (const char *p = prefix; *p; p++) {
        if (strchr("\\^$.|?*+()[]{}", *p))
            *o++ = '\\';
        *o++ = *p;
    }
    if (o == out || o[-1] != '/')
        *o++ = '/';
    strcpy(o, "(.*)");
    return out;
}

int main(int argc, char **argv)
{
    int port;
    const char *root, *address, *prefix, *default_filename;
    gust_options_define_string(NULL, "root", &root, ".",
                               "directory to serve", NULL);
    gust_options_define_int(NULL, "port", &port, 8888,
                            "run on the given port", NULL);
    gust_options_define_string(NULL, "address", &address, "127.0.0.1",
                               "address to listen on", NULL);
    gust_options_define_string(NULL, "prefix", &prefix, "/",
                               "URL path under which files are served", NULL);
    gust_options_define_string(NULL, "default-filename", &default_filename,
                               "index.html",
                               "file served for a directory (empty: none)",
                               NULL);
    const char *cert, *key;
    gust_options_define_string(NULL, "cert", &cert, NULL,
                               "PEM certificate chain (HTTPS)", NULL);
    gust_options_define_string(NULL, "key", &key, NULL,
                               "PEM private key (HTTPS)", NULL);
    gust_options_parse_command_line(NULL, argc, argv);
    if (!cert != !key) {
        fprintf(stderr, "%s: --cert and --key go together\n", argv[0]);
        gust_options_free(gust_options_default());
        return 2;
    }
    gust_tls_context *tls = NULL;
    if (cert) {
        /* No ALPN list of our own: the server offers h2, then http/1.1. */
        gust_tls_options tls_opts = {.cert_file = cert, .key_file = key};
        tls = gust_tls_context_new_server(&tls_opts);
        if (!tls) {
            gust_options_free(gust_options_default());
            return 1; /* the reason is logged */
        }
    }
    gust_http_server_options server_opts = {.tcp.tls = tls};
    gust_app_settings settings = {.server_options = &server_opts};

    gust_static_options files = {
        .root = root,
        .default_filename =
            default_filename && *default_filename ? default_filename : NULL,
    };
    char *pattern = route_pattern(prefix ? prefix : "/");
    if (!pattern) {
        gust_log_error("file_server", "out of memory");
        return 1;
    }
    const gust_route routes[] = {
        GUST_ROUTE(pattern, &gust_static_file_handler, .data = &files,
                   .name = "static"),
        GUST_ROUTES_END,
    };
    app = gust_app_new(routes, &settings);
    free(pattern); /* the app copied it */
    gust_tls_context_free(tls); /* the app holds its own reference */
    int rc = app ? gust_app_listen(app, port, address) : -errno;
    if (rc < 0) {
        gust_log_error("file_server", "cannot start: %s", gust_strerror(rc));
        gust_app_free(app);
        gust_options_free(gust_options_default());
        return 1;
    }
    gust_loop *loop = gust_loop_current();
    gust_loop_add_signal(loop, SIGTERM, on_signal, NULL);
    gust_loop_add_signal(loop, SIGINT, on_signal, NULL);
    gust_log_info("file_server", "listening on %s://%s:%d, serving %s at %s",
                  tls ? "https" : "http", address, gust_http_server_port(gust_app_server(app)), root,
                  prefix);
    gust_loop_start(loop);
    gust_app_free(app);
    gust_loop_remove_signal(loop, SIGTERM);
    gust_loop_remove_signal(loop, SIGINT);
    gust_options_free(gust_options_default());
    return gust_loop_free(loop) == 0 ? 0 : 1;
}
