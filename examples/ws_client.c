/* ws_client: Tornado's websocket_connect from a coroutine. Connects to
 * --url, sends each remaining argument as a text message (or binary with
 * --binary), prints each reply on its own line, then closes with 1000.
 *
 *   ws_client --url=ws://127.0.0.1:8888/ws [--binary] [--compression]
 *             [--subprotocol=NAME] [--ca-file=PEM] [--insecure]
 *             [--timeout=SECONDS]
 *             [--port=N] message...
 *
 *   $ ./ws_client --url=ws://127.0.0.1:8888/ws hello world
 *   hello
 *   world
 *
 * --port=N replaces the port of --url (every example takes --port). Exits
 * 0 when every message got its reply, 1 otherwise.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gust/gust.h"

static struct {
    const char *url;
    int port;
    bool binary, compression, insecure;
    const char *subprotocol;
    const char *ca_file;
    double timeout;
    const char *const *messages;
    int count;
} cfg;

static char url_buf[2048];

static int run(gust_loop *loop, gust_value *result, void *data)
{
    (void)result, (void)data;
    gust_websocket_settings set = {.compression = cfg.compression};
    const char *protos[] = {cfg.subprotocol, NULL};
    gust_tls_options topts = {.insecure = cfg.insecure, .ca_file = cfg.ca_file};
    gust_tls_context *tls = NULL;
    if (strncmp(cfg.url, "wss:", 4) == 0 && (cfg.insecure || cfg.ca_file) &&
        !(tls = gust_tls_context_new_client(&topts))) {
        fprintf(stderr, "cannot make a TLS context\n");
        return -EINVAL;
    }
    gust_websocket_connect_options o = {
        .subprotocols = cfg.subprotocol ? protos : NULL,
        .connect_timeout = cfg.timeout,
        .settings = &set,
        .tls = tls,
    };
    gust_value v;
    int rc = gust_await(gust_websocket_connect(loop, cfg.url, &o), &v);
    gust_tls_context_free(tls);
    if (rc < 0) {
        fprintf(stderr, "cannot connect to %s: %s\n", cfg.url, gust_strerror(rc));
        return rc;
    }
    gust_websocket *ws = v.ptr;
    if (gust_websocket_subprotocol(ws))
        fprintf(stderr, "subprotocol: %s\n", gust_websocket_subprotocol(ws));
    if (*gust_websocket_extensions(ws))
        fprintf(stderr, "extensions: %s\n", gust_websocket_extensions(ws));
    for (int i = 0; i < cfg.count && rc == 0; i++) {
        const char *m = cfg.messages[i];
        rc = gust_await(gust_websocket_write_message_f(ws, m, strlen(m),
                                                       cfg.binary), NULL);
        gust_value reply;
        if (rc == 0)
            rc = gust_await(gust_with_timeout(loop, gust_websocket_read_message(ws),
                                              cfg.timeout), &reply);
        if (rc == 0) {
            gust_websocket_message *msg = reply.ptr;
            fwrite(msg->data, 1, msg->len, stdout);
            fputc('\n', stdout);
            fflush(stdout);
            gust_value_free(&reply);
        }
    }
    if (rc < 0)
        fprintf(stderr, "error: %s\n", gust_strerror(rc));
    gust_websocket_close(ws, GUST_WS_CLOSE_NORMAL, "done");
    /* Reads on until the server's close ends the socket. */
    gust_value last;
    while (gust_await(gust_with_timeout(loop, gust_websocket_read_message(ws),
                                        cfg.timeout), &last) == 0)
        gust_value_free(&last);
    gust_value_free(&v);
    return rc;
}

int main(int argc, char **argv)
{
    gust_options_define_string(NULL, "url", &cfg.url, "ws://127.0.0.1:8888/ws",
                               "the WebSocket URL", NULL);
    gust_options_define_int(NULL, "port", &cfg.port, 0,
                            "port to use instead of the URL's (0: the URL's)", NULL);
    gust_options_define_bool(NULL, "binary", &cfg.binary, false,
                             "send binary messages", NULL);
    gust_options_define_bool(NULL, "compression", &cfg.compression, false,
                             "offer permessage-deflate", NULL);
    gust_options_define_bool(NULL, "insecure", &cfg.insecure, false,
                             "wss: do not verify the certificate", NULL);
    gust_options_define_string(NULL, "subprotocol", &cfg.subprotocol, NULL,
                               "subprotocol to offer", NULL);
    gust_options_define_string(NULL, "ca_file", &cfg.ca_file, NULL,
                               "wss: PEM file of trusted CAs (default: the "
                               "system's)", NULL);
    gust_options_define_duration(NULL, "timeout", &cfg.timeout, 10,
                                 "seconds to wait for each step", NULL);
    gust_options_parse_command_line(NULL, argc, argv);
    cfg.messages = gust_options_args(NULL, &cfg.count);
    if (cfg.port > 0) {
        /* scheme://host[:port]/path with the port replaced */
        const char *h = strstr(cfg.url, "//");
        const char *path = h ? strchr(h + 2, '/') : NULL;
        const char *colon = h ? memchr(h + 2, ':', (size_t)((path ? path : h + strlen(h)) - (h + 2))) : NULL;
        const char *host_end = colon ? colon : path ? path : cfg.url + strlen(cfg.url);
        if (h)
            snprintf(url_buf, sizeof url_buf, "%.*s:%d%s",
                     (int)(host_end - cfg.url), cfg.url, cfg.port, path ? path : "/");
        cfg.url = url_buf;
    }
    gust_loop *loop = gust_loop_current();
    int rc = gust_loop_run_sync(loop, gust_spawn(loop, run, NULL),
                                cfg.timeout * (cfg.count + 3), NULL);
    gust_options_free(NULL);
    int busy = gust_loop_free(loop);
    return rc == 0 && busy == 0 ? 0 : 1;
}
