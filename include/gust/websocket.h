/* WebSockets (Tornado's tornado.websocket): the server handler, routed like
 * any handler of web.h, and the client (gust_websocket_connect). RFC 6455,
 * with RFC 7692 permessage-deflate.
 *
 * THE SERVER, as Tornado's EchoWebSocket:
 *
 *     static int echo_message(gust_websocket *ws, const char *data,
 *                             size_t len, bool binary)
 *     {
 *         return gust_websocket_write_message(ws, data, len, binary);
 *     }
 *     static const gust_websocket_class echo_socket = GUST_WEBSOCKET_CLASS(
 *         .on_message = echo_message);
 *     const gust_route routes[] = {GUST_ROUTE("/ws", &echo_socket.handler),
 *                                  GUST_ROUTES_END};
 *
 * A WebSocket class embeds a gust_handler_class (`.handler`): its
 * initialize, prepare, state_size and flags work as for any handler, so
 * arguments, cookies and signed cookies are read before the upgrade (a
 * prepare can refuse with gust_handler_send_error(h, 403, ...)). Its get is
 * gust_websocket_get, which checks the handshake (RFC 6455 section 4.2):
 * GET over HTTP/1.1, `Upgrade: websocket`, `Connection: upgrade`,
 * `Sec-WebSocket-Key` (base64 of 16 bytes) or 400; `Sec-WebSocket-Version: 13`
 * or 426 with `Sec-WebSocket-Version: 13`; check_origin or 403. It then
 * answers 101 (with the headers and cookies the handler set), takes the
 * connection over (http_server.h, gust_http_request_detach) and calls open.
 *
 * CALLBACKS of one socket, in order: open once; then on_message for each
 * whole message (text is valid UTF-8), on_ping and on_pong, in the order
 * the frames came; on_close exactly once, when the connection is gone (with
 * the code and reason of the peer's close frame, 1005 when it had none,
 * 1006 when the connection dropped without one; clean when close frames
 * went both ways). The next message is not parsed before on_message
 * returns.
 *
 * COROUTINES. With GUST_WEBSOCKET_COROUTINE in the class's flags,
 * on_message runs on its own stack (future.h) and may gust_await(); the
 * next message is delivered only once it has returned (as Tornado 5+ does),
 * and meanwhile nothing more is read from the socket (TCP holds the peer
 * back). With GUST_HANDLER_COROUTINE in .handler.flags, prepare and open
 * are coroutines too (open runs inside the handler's get); messages wait
 * until open has returned.
 *
 * LIFETIME. The gust_websocket is valid from open until on_close has
 * returned, and after that for as long as one of its on_message coroutines
 * runs (calls then fail with GUST_ESTREAMCLOSED). Its state
 * (gust_websocket_state, the class's state_size bytes, zeroed) lives as
 * long. The upgrade request and its handler (gust_websocket_handler) are
 * valid until open returns, then finished: copy what you need from them
 * into the state.
 *
 * BACK-PRESSURE. gust_websocket_write_message() queues (copying what the
 * kernel does not take at once); its _f form returns a future done when the
 * bytes were handed to the kernel, so a producer can await it. A peer that
 * does not read, leaving more than max_queued_bytes queued, is closed
 * (logged).
 *
 * LIMITS (gust_websocket_settings): messages over max_message_size (10 MiB,
 * as Tornado), also after decompression, close with 1009; protocol errors
 * with 1002, invalid UTF-8 with 1007 as soon as a byte cannot begin a valid
 * sequence (across fragments); a close frame is answered and the TCP
 * connection closed by the server; a close that is not answered within
 * close_timeout (5 s) cuts the connection.
 *
 * GRACEFUL STOP. gust_http_server_close_all() (and close_on_signals) sends
 * 1001 Going Away to every open socket of the server and waits for the
 * close handshakes (at most close_timeout) before calling its done.
 */
#ifndef GUST_WEBSOCKET_H
#define GUST_WEBSOCKET_H

#include "gust/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gust/future.h"
#include "gust/http.h"
#include "gust/loop.h"
#include "gust/stream.h"
#include "gust/tls.h"
#include "gust/web.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gust_websocket gust_websocket;

/* Close codes (RFC 6455 section 7.4.1). */
enum {
    GUST_WS_CLOSE_NORMAL = 1000,
    GUST_WS_CLOSE_GOING_AWAY = 1001,
    GUST_WS_CLOSE_PROTOCOL_ERROR = 1002,
    GUST_WS_CLOSE_UNSUPPORTED = 1003,
    GUST_WS_CLOSE_NO_STATUS = 1005, /* received: no code in the frame */
    GUST_WS_CLOSE_ABNORMAL = 1006,  /* received: no close frame at all */
    GUST_WS_CLOSE_INVALID_DATA = 1007,
    GUST_WS_CLOSE_POLICY = 1008,
    GUST_WS_CLOSE_TOO_BIG = 1009,
    GUST_WS_CLOSE_EXTENSION = 1010,
    GUST_WS_CLOSE_INTERNAL = 1011,
};

/* gust_websocket_class.flags */
#define GUST_WEBSOCKET_COROUTINE 0x1u /* on_message runs as a coroutine */

typedef struct gust_websocket_settings {
    /* Largest message (after decompression); larger closes with 1009.
     * 0: 10 MiB. */
    size_t max_message_size;
    /* Bytes queued for a peer that does not read before it is closed.
     * 0: 16 MiB. */
    size_t max_queued_bytes;
    /* Seconds between pings (0: no pings), and how long a pong may take
     * before the connection is failed with 1011 (0: 3 * ping_interval). */
    double ping_interval;
    double ping_timeout;
    /* Seconds the close handshake may take. 0: 5 s. */
    double close_timeout;
    /* permessage-deflate (RFC 7692): accepted when the client offers it
     * (the client: offered). Off unless set. */
    bool compression;
    /* zlib level 1..9 (0: 6) and memLevel 1..9 (0: 5, as Python's
     * websockets: 16 KiB of hash tables instead of zlib's 128 KiB). */
    int compression_level;
    int compression_mem_level;
    /* Ask for no context takeover of our side's compressor (the state is
     * then made per message and freed after it: an idle socket holds no
     * zlib memory) and window bits 9..15 (0: 12, as Python's websockets;
     * the peer's limit, if lower, applies) of our compressor. */
    bool no_context_takeover;
    int max_window_bits;
} gust_websocket_settings;

typedef struct gust_websocket_class {
    /* The routed handler: give &cls.handler to GUST_ROUTE. Its get must be
     * gust_websocket_get (GUST_WEBSOCKET_CLASS sets it). */
    gust_handler_class handler;
    unsigned flags;
    /* Bytes of per-socket state at gust_websocket_state(), zeroed. */
    size_t state_size;
    const gust_websocket_settings *settings; /* NULL: defaults */

    /* The socket is open (the 101 is sent). Return < 0 to close it with
     * 1011. h is the upgrade's handler (also gust_websocket_handler). */
    int (*open)(gust_websocket *ws, gust_handler *h);
    /* A whole message: data valid until the function returns (not
     * NUL-terminated: an unfragmented message is handed over where it was
     * read, unmasked in place). Return < 0 to close with 1011. */
    int (*on_message)(gust_websocket *ws, const char *data, size_t len,
                      bool binary);
    /* Once, when the connection is gone (see CALLBACKS). reason is
     * NUL-terminated. */
    void (*on_close)(gust_websocket *ws, int code, const char *reason,
                     bool clean);
    /* A ping (answered with a pong already) and a pong. */
    void (*on_ping)(gust_websocket *ws, const char *data, size_t len);
    void (*on_pong)(gust_websocket *ws, const char *data, size_t len);
    /* Picks one of the subprotocols the client offered (in its order), or
     * NULL for none. NULL: none is picked. The string must outlive the
     * request (one of protocols[] does). */
    const char *(*select_subprotocol)(gust_handler *h,
                                      const char *const *protocols,
                                      size_t count);
    /* Whether a browser page from origin may open this socket. NULL: same
     * origin only (the Origin's host and port are the Host's), as Tornado;
     * a request without Origin (not a browser) is always allowed. */
    bool (*check_origin)(gust_handler *h, const char *origin);
} gust_websocket_class;

/* The handler's get of every WebSocket class. */
GUST_EXTERN int gust_websocket_get(gust_handler *h);

/* A class with its get set: GUST_WEBSOCKET_CLASS(.on_message = f, ...);
 * other handler members as .handler.prepare = p, .handler.name = "chat". */
#define GUST_WEBSOCKET_CLASS(...)                                              \
    { .handler.get = gust_websocket_get, __VA_ARGS__ }

/* ---- A socket ------------------------------------------------------------ */

/* Sends one message (text: valid UTF-8 is the caller's promise). Copies what
 * cannot be sent at once. Returns 0, GUST_ESTREAMCLOSED once closing or
 * closed, -EMSGSIZE over the queue cap (the socket is then closed), or
 * -ENOMEM. */
GUST_EXTERN int gust_websocket_write_message(gust_websocket *ws,
                                             const void *data, size_t len,
                                             bool binary);

/* The same as a future, done (status 0) once the bytes reached the kernel,
 * or failed with GUST_ESTREAMCLOSED. NULL only when out of memory. */
GUST_EXTERN GUST_MUST_USE gust_future *gust_websocket_write_message_f(
    gust_websocket *ws, const void *data, size_t len, bool binary);

/* Sends a ping (data up to 125 bytes). 0, -EINVAL, GUST_ESTREAMCLOSED. */
GUST_EXTERN int gust_websocket_ping(gust_websocket *ws, const void *data,
                                    size_t len);

/* Starts the close handshake: sends code (0: no code) and reason (NULL or
 * up to 123 bytes of UTF-8), then waits for the peer's close at most
 * close_timeout. on_close follows. A second call is a no-op. Returns 0 or
 * -EINVAL (a code that may not be sent, a reason too long). */
GUST_EXTERN int gust_websocket_close(gust_websocket *ws, int code,
                                     const char *reason);

GUST_EXTERN void *gust_websocket_state(gust_websocket *ws);
/* The upgrade request's handler, until open returns; then NULL. */
GUST_EXTERN gust_handler *gust_websocket_handler(gust_websocket *ws);
/* The subprotocol chosen (NULL: none); extensions accepted ("" : none). */
GUST_EXTERN const char *gust_websocket_subprotocol(const gust_websocket *ws);
GUST_EXTERN const char *gust_websocket_extensions(const gust_websocket *ws);
/* Bytes written and not yet handed to the kernel. */
GUST_EXTERN size_t gust_websocket_queued_bytes(const gust_websocket *ws);
/* True once closing started (a close frame sent or received) or closed. */
GUST_EXTERN bool gust_websocket_closing(const gust_websocket *ws);
GUST_EXTERN gust_loop *gust_websocket_loop(const gust_websocket *ws);

/* ---- The client (Tornado's websocket_connect) ---------------------------- */

typedef struct gust_websocket_connect_options {
    /* Extra request headers, "Name: value" each, NULL-terminated. */
    const char *const *headers;
    /* Subprotocols offered, NULL-terminated. */
    const char *const *subprotocols;
    /* Seconds for TCP + TLS + handshake. 0: 20 s. */
    double connect_timeout;
    /* wss://: the TLS context (NULL: verifying one made for the call). */
    gust_tls_context *tls;
    const gust_websocket_settings *settings; /* NULL: defaults */
} gust_websocket_connect_options;

/* Connects to url (ws://host[:port]/path or wss://...), a future whose
 * result's ptr is the gust_websocket * (owned by the taker: close it with
 * gust_websocket_close and free it with gust_websocket_free once closed).
 * Fails with the connect error (-ECONNREFUSED, -ENOENT for an unknown
 * host, GUST_ETLSVERIFY...), -ETIMEDOUT after connect_timeout, -EINVAL for
 * a URL that is not ws:// or wss://, or -EPROTO for a handshake the server
 * refused (not 101, a wrong Sec-WebSocket-Accept, a subprotocol or an
 * extension we did not offer; logged). opts may be NULL. The socket's
 * callbacks: none but the messages (read_message or on_message). */
GUST_EXTERN GUST_MUST_USE gust_future *gust_websocket_connect(
    gust_loop *loop, const char *url,
    const gust_websocket_connect_options *opts);

/* A client socket's next message, as a future whose result's ptr is a
 * gust_websocket_message (free with gust_value_free), or failed with
 * GUST_ESTREAMCLOSED once the socket is closed. One read at a time (a
 * second, or one after gust_websocket_on_message, fails with -EINVAL).
 * Messages are pulled: the socket is not read further until asked (TCP
 * holds the server back), except once closing has started. After
 * gust_websocket_close, read on until the future fails to see the
 * server's close code, or just free the socket. */
typedef struct gust_websocket_message {
    bool binary;
    size_t len;
    char data[]; /* NUL-terminated */
} gust_websocket_message;

GUST_EXTERN GUST_MUST_USE gust_future *gust_websocket_read_message(
    gust_websocket *ws);

/* The callback form: cb runs for each message (msg NULL once closed, with
 * the close code), never inside this call. */
GUST_EXTERN int gust_websocket_on_message(
    gust_websocket *ws,
    void (*cb)(gust_websocket *ws, const gust_websocket_message *msg, int code,
               void *data),
    void *data);

/* Drops the caller's hold on a client socket, closing it abruptly if it is
 * still open (no close frame: close first for a clean end). Pending
 * futures fail with GUST_ESTREAMCLOSED. NULL: no-op. Server sockets are
 * the server's: never free them. */
GUST_EXTERN void gust_websocket_free(gust_websocket *ws);

/* The close code and reason received ("" and 1006 before any). */
GUST_EXTERN int gust_websocket_close_code(const gust_websocket *ws);
GUST_EXTERN const char *gust_websocket_close_reason(const gust_websocket *ws);

#ifdef __cplusplus
}
#endif

#endif /* GUST_WEBSOCKET_H */
