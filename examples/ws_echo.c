/* ws_echo: Tornado's EchoWebSocket. Every message sent to /ws comes back
 * as it was (text as text, binary as binary); / serves a page whose
 * JavaScript opens the socket and echoes what the user types.
 *
 *   ws_echo [--port=8888] [--address=127.0.0.1] [--compression]
 *           [--no-context-takeover] [--max-message-size=N]
 *           [--ping-interval=SECONDS] [--broadcast]
 *           [--cert=PEM --key=PEM]     (wss:// and https://)
 *
 * The "echo" subprotocol is chosen when the client offers it. With
 * --broadcast, a text message that starts with "broadcast:" is sent to
 * every open socket (the sender included) instead of echoed.
 *
 *   $ ./ws_echo --port=8888 &
 *   $ ./ws_client --url=ws://127.0.0.1:8888/ws hello
 *   hello
 *
 * SIGTERM or SIGINT closes every socket with 1001 Going Away, waits for the
 * close handshakes, frees everything and exits 0.
 */
#include <errno.h>
#include <string.h>

#include "gust/gust.h"

static const char page[] =
    "<!DOCTYPE html>\n"
    "<html><head><meta charset=\"utf-8\"><title>Gust WebSocket echo</title>"
    "</head><body>\n"
    "<h1>WebSocket echo</h1>\n"
    "<form id=\"f\"><input id=\"line\" autocomplete=\"off\" autofocus>"
    "<button>Send</button></form>\n"
    "<pre id=\"log\"></pre>\n"
    "<script>\n"
    "var log = document.getElementById('log');\n"
    "function show(s) { log.textContent += s + '\\n'; }\n"
    "var proto = location.protocol === 'https:' ? 'wss://' : 'ws://';\n"
    "var ws = new WebSocket(proto + location.host + '/ws');\n"
    "ws.binaryType = 'arraybuffer';\n"
    "ws.onopen = function () { show('open'); };\n"
    "ws.onmessage = function (e) {\n"
    "  show(typeof e.data === 'string' ? '< ' + e.data\n"
    "       : '< binary ' + e.data.byteLength + ' bytes');\n"
    "};\n"
    "ws.onclose = function (e) { show('closed ' + e.code); };\n"
    "document.getElementById('f').onsubmit = function (ev) {\n"
    "  ev.preventDefault();\n"
    "  var input = document.getElementById('line');\n"
    "  ws.send(input.value);\n"
    "  show('> ' + input.value);\n"
    "  input.value = '';\n"
    "};\n"
    "</script></body></html>\n";

static int page_get(gust_handler *h)
{
    return gust_handler_write(h, page, sizeof page - 1);
}

/* --broadcast: every open socket, so that a message can go to all. */
typedef struct peer {
    struct peer *prev, *next;
    gust_websocket *ws;
} peer;

static peer peers = {&peers, &peers, NULL};
static bool broadcast;

static int echo_open(gust_websocket *ws, gust_handler *h)
{
    (void)h;
    if (broadcast) {
        peer *p = gust_websocket_state(ws);
        p->ws = ws;
        p->next = &peers;
        p->prev = peers.prev;
        peers.prev->next = p;
        peers.prev = p;
    }
    return 0;
}

static void echo_close(gust_websocket *ws, int code, const char *reason,
                       bool clean)
{
    (void)code, (void)reason, (void)clean;
    peer *p = gust_websocket_state(ws);
    if (p->ws) {
        p->prev->next = p->next;
        p->next->prev = p->prev;
        p->ws = NULL;
    }
}

static int echo_message(gust_websocket *ws, const char *data, size_t len,
                        bool binary)
{
    if (broadcast && !binary && len >= 10 && memcmp(data, "broadcast:", 10) == 0) {
        /* To everyone, the sender included; a socket that cannot take it
         * (closing, or over its queue cap) is skipped. */
        for (peer *p = peers.next; p != &peers; p = p->next)
            gust_websocket_write_message(p->ws, data, len, false);
        return 0;
    }
    return gust_websocket_write_message(ws, data, len, binary);
}

/* Speaks the "echo" subprotocol when the client asks for it. */
static const char *pick_protocol(gust_handler *h, const char *const *offered,
                                 size_t count)
{
    (void)h;
    for (size_t i = 0; i < count; i++)
        if (strcmp(offered[i], "echo") == 0)
            return offered[i];
    return NULL;
}

static gust_websocket_settings settings;

static const gust_handler_class page_handler = {.name = "page",
                                                .get = page_get};
static const gust_websocket_class echo_socket = GUST_WEBSOCKET_CLASS(
    .handler.name = "EchoWebSocket", .state_size = sizeof(peer),
    .open = echo_open, .on_message = echo_message, .on_close = echo_close,
    .select_subprotocol = pick_protocol, .settings = &settings);

int main(int argc, char **argv)
{
    int port, max_message;
    const char *address;
    double ping_interval;
    gust_options_define_int(NULL, "port", &port, 8888, "run on the given port",
                            NULL);
    gust_options_define_string(NULL, "address", &address, NULL,
                               "listen on this address (default: all)", NULL);
    gust_options_define_bool(NULL, "compression", &settings.compression, false,
                             "accept permessage-deflate", NULL);
    gust_options_define_bool(NULL, "no_context_takeover",
                             &settings.no_context_takeover, false,
                             "compress each message on its own", NULL);
    gust_options_define_int(NULL, "max_message_size", &max_message, 0,
                            "largest message in bytes (0: 10 MiB)", NULL);
    gust_options_define_bool(NULL, "broadcast", &broadcast, false,
                             "a text message starting with \"broadcast:\" "
                             "goes to every open socket", NULL);
    gust_options_define_duration(NULL, "ping_interval", &ping_interval, 0,
                                 "seconds between pings (0: none)", NULL);
    const char *cert, *key;
    gust_options_define_string(NULL, "cert", &cert, NULL,
                               "PEM certificate chain: serve wss:// (with --key)",
                               NULL);
    gust_options_define_string(NULL, "key", &key, NULL, "PEM private key", NULL);
    gust_options_parse_command_line(NULL, argc, argv);
    gust_tls_context *tls = NULL;
    if (cert || key) {
        gust_tls_options tls_opts = {.cert_file = cert, .key_file = key};
        if (!cert || !key || !(tls = gust_tls_context_new_server(&tls_opts))) {
            gust_log_error("websocket", "--cert and --key: cannot load them");
            gust_options_free(NULL);
            return 1;
        }
    }
    gust_http_server_options server_opts = {.tcp.tls = tls};
    gust_app_settings app_settings = {.server_options = &server_opts};
    settings.max_message_size = max_message > 0 ? (size_t)max_message : 0;
    settings.ping_interval = ping_interval;

    const gust_route routes[] = {
        GUST_ROUTE("/", &page_handler),
        GUST_ROUTE("/ws", &echo_socket.handler),
        GUST_ROUTES_END,
    };
    gust_app *app = gust_app_new(routes, &app_settings);
    gust_tls_context_free(tls); /* the app holds its own reference */
    int rc = app ? gust_app_listen(app, port, address) : -errno;
    if (rc == 0)
        rc = gust_http_server_close_on_signals(gust_app_server(app));
    if (rc < 0) {
        gust_log_error("websocket", "cannot start: %s", gust_strerror(rc));
    } else {
        gust_log_info("websocket", "listening on %s:%d", address ? address : "*",
                      gust_http_server_port(gust_app_server(app)));
        gust_loop_start(gust_loop_current());
    }
    gust_app_free(app);
    gust_options_free(NULL);
    int busy = gust_loop_free(gust_loop_current());
    return rc == 0 && busy == 0 ? 0 : 1;
}
