/* HTTP/1.0 and 1.1 server (Tornado's HTTPServer, HTTP1ServerConnection,
 * HTTP1Connection and HTTPServerRequest).
 *
 * E1 of shared/TORNADO_EXAMPLES.md, in C:
 *
 *     static void handle_request(gust_http_request *req, void *data)
 *     {
 *         char msg[256];
 *         int n = snprintf(msg, sizeof msg, "You requested %s\n", req->uri);
 *         gust_http_request_printf(req, "HTTP/1.1 200 OK\r\n"
 *                                  "Content-Length: %d\r\n\r\n%s", n, msg);
 *         gust_http_request_finish(req);
 *     }
 *
 *     gust_http_server *srv =
 *         gust_http_server_new(gust_http_callback(handle_request, NULL), NULL);
 *     gust_http_server_listen(srv, 8888, NULL);
 *     gust_loop_start(gust_loop_current());
 *
 * The three start forms of tcp_server.h work the same way with the
 * gust_http_server_* names (listen; bind + start(n); add_sockets).
 *
 * THE DATA PATH. Each accepted stream gets one HTTP/1 connection, which reads
 * a request head, parses it (src/http1_parser.c: strict RFC 9112), reads the
 * body (Content-Length or chunked; Expect: 100-continue answered), then hands
 * the request to the handler. The next request on the connection is read
 * only after the current response is finished (pipelined requests are
 * answered in order); requests already buffered are parsed at once, and the
 * responses of one batch go out in one write.
 *
 * HTTP/2 (RFC 9113, framing by libnghttp2) carries the same requests: over
 * TLS when the client picks "h2" by ALPN, in clear text when a connection
 * opens with the HTTP/2 preface (prior knowledge) or upgrades with
 * `Upgrade: h2c` (a request without a body; the request is then answered
 * as stream 1). Each stream is one gust_http_request, handled while the
 * others go on; every call below works on it unchanged (its version is
 * "HTTP/2.0"), except gust_http_request_detach(), which returns -EINVAL.
 * Responses lose their HTTP/1 connection fields (Connection, Keep-Alive,
 * Transfer-Encoding) and get lowercase field names; a raw response
 * (gust_http_request_write_raw) is parsed as the HTTP/1 head and body it
 * is, and sent as frames. A streamed body's flow-control window follows
 * what data_received has taken (pause_body holds it). Options (below) turn
 * each way in off and set HTTP/2's own limits.
 *
 * LIFETIME OF A REQUEST. The gust_http_request and everything it points to
 * (strings, headers, arguments, files, body, and the request's arena) stay
 * valid from the moment the handler receives it until the handler has called
 * gust_http_request_finish(), even if the client disconnects before: writes
 * then fail with GUST_ESTREAMCLOSED and finish() only releases the request.
 * After finish() returns, the request must not be touched.
 *
 * BAD INPUT from the network never reaches the handler: the server answers
 * 400 (malformed, smuggling attempts, a chunk size no 64-bit number holds),
 * 413 (body over max_body_size), 417 (an Expect other than 100-continue),
 * 431 (head over max_header_size bytes, or more than max_header_count
 * fields), 501 (unknown
 * transfer coding) or 505 (HTTP version), logs one warning line with the
 * peer address and the reason, and closes: it half-closes after the answer
 * and discards input for up to 2 s, so the client reads the answer instead
 * of a reset.
 *
 * TIMEOUTS close the connection without an answer: a head not complete
 * within header_timeout of its first byte, a keep-alive connection idle for
 * idle_connection_timeout, a body with no progress for body_timeout.
 */
#ifndef GUST_HTTP_SERVER_H
#define GUST_HTTP_SERVER_H

#include "gust/common.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gust/arena.h"
#include "gust/http.h"
#include "gust/loop.h"
#include "gust/net.h"
#include "gust/stream.h"
#include "gust/tcp_server.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gust_http_server gust_http_server;
typedef struct gust_http_connection gust_http_connection;

/* The request methods of RFC 9110 (and PATCH), as a number: compare
 * req->method_id rather than strcmp the method on a hot path. Any other
 * method (methods are case-sensitive tokens) is GUST_HTTP_METHOD_OTHER. */
typedef enum gust_http_method {
    GUST_HTTP_METHOD_OTHER = 0,
    GUST_HTTP_METHOD_GET,
    GUST_HTTP_METHOD_HEAD,
    GUST_HTTP_METHOD_POST,
    GUST_HTTP_METHOD_PUT,
    GUST_HTTP_METHOD_DELETE,
    GUST_HTTP_METHOD_PATCH,
    GUST_HTTP_METHOD_OPTIONS,
    GUST_HTTP_METHOD_CONNECT,
    GUST_HTTP_METHOD_TRACE,
} gust_http_method;
/* Older names, kept as aliases. */
#define GUST_HTTP_OTHER GUST_HTTP_METHOD_OTHER
#define GUST_HTTP_GET GUST_HTTP_METHOD_GET
#define GUST_HTTP_HEAD GUST_HTTP_METHOD_HEAD
#define GUST_HTTP_POST GUST_HTTP_METHOD_POST
#define GUST_HTTP_PUT GUST_HTTP_METHOD_PUT
#define GUST_HTTP_DELETE GUST_HTTP_METHOD_DELETE
#define GUST_HTTP_PATCH GUST_HTTP_METHOD_PATCH
#define GUST_HTTP_OPTIONS GUST_HTTP_METHOD_OPTIONS
#define GUST_HTTP_CONNECT GUST_HTTP_METHOD_CONNECT
#define GUST_HTTP_TRACE GUST_HTTP_METHOD_TRACE

/* A request as the handler sees it (Tornado's HTTPServerRequest). Fields are
 * read-only for the handler; strings are NUL-terminated. */
typedef struct gust_http_request {
    const char *method;   /* "GET" */
    gust_http_method method_id; /* GUST_HTTP_METHOD_GET; _OTHER if unknown */
    const char *uri;      /* the request-target as sent: "/a/b?x=1" */
    const char *path;     /* "/a/b": the target up to '?', not decoded */
    const char *query;    /* "x=1": after '?', "" when none */
    const char *version;  /* "HTTP/1.1", "HTTP/1.0" or "HTTP/2.0" */
    int version_minor;    /* 1 or 0 (1 for HTTP/2, which has 1.1's semantics) */
    gust_http_headers headers;

    /* The body, buffered (empty when there is none or it was streamed to a
     * delegate's data_received). */
    gust_str body;
    /* Arguments from the query string, from an urlencoded or multipart
     * body, and both together (query first), as Tornado's request has.
     * Files from a multipart body. Body arguments and files are parsed for
     * every method that has a body. */
    gust_http_args query_arguments;
    gust_http_args body_arguments;
    gust_http_args arguments;
    gust_http_files files;

    /* The peer's IP address ("127.0.0.1", "::1"), or with xheaders the
     * address given by X-Real-Ip or the last hop of X-Forwarded-For. */
    const char *remote_ip;
    /* "http" or "https"; with xheaders, X-Scheme or X-Forwarded-Proto. */
    const char *protocol;
    /* The Host header (or the authority of an absolute-form target), with
     * its port if given; host_name without the port, lowercased. */
    const char *host;
    const char *host_name;
    /* Loop time when the head was complete (gust_loop_time()). */
    double start_time;

    /* Request-scoped memory, freed when the request is finished. */
    gust_arena *arena;
    /* For the application (the web layer keeps its handler here). */
    void *data;
    /* The connection this request arrived on. */
    gust_http_connection *connection;

    /* strlen(uri) and strlen(remote_ip) as the server measured them, for
     * code that runs for every request (the access log). Each holds for
     * the string it was measured on (uri_len_of, remote_ip_len_of): an
     * application that points uri or remote_ip at another string need
     * not touch these; a reader compares the pointers first. */
    size_t uri_len;
    size_t remote_ip_len;
    const char *uri_len_of;
    const char *remote_ip_len_of;
} gust_http_request;

/* ---- What the server calls: a callback, or a delegate ------------------ */

/* The plain form (E1): called once per request with the whole body read. */
typedef void (*gust_http_request_cb)(gust_http_request *req, void *data);

/* The full form (Tornado's HTTPMessageDelegate), for applications that
 * stream request bodies or take over the connection (WebSocket). Every
 * member may be NULL. For each request, in order:
 *   headers_received  once, when the head is parsed. Return 0 to go on, or
 *                     call gust_http_request_stream_body() inside it to get
 *                     the body through data_received instead of buffered,
 *                     or answer (e.g. 401) and return > 0 to skip the body:
 *                     finish is then not called, the delegate finishes the
 *                     request itself (inside or later). The body is then
 *                     read and dropped so that the connection can be kept,
 *                     if it is at most 64 KiB (and max_body_size): a
 *                     larger Content-Length closes the connection after
 *                     the response (with Connection: close), and so does
 *                     a chunked body once it passes that bound, or a body
 *                     the client holds back for a 100 Continue.
 *   data_received     for each body chunk when streaming (borrowed bytes,
 *                     valid during the call). Return < 0 to abort: the
 *                     server answers 400 if nothing was sent, then closes.
 *                     A delegate may also answer and finish the request
 *                     here (or later, before the body is complete): finish
 *                     is then not called, and the rest of the body is read
 *                     and dropped to keep the connection, under the same
 *                     bounds as for headers_received below.
 *   finish            once the body is complete: the handler runs here.
 *   on_connection_close  if the connection closes after headers_received
 *                     and before gust_http_request_finish(): while the body
 *                     is read (finish is then never called), or while an
 *                     asynchronous handler is still working (after finish).
 *                     The application must still call
 *                     gust_http_request_finish() (writes fail harmlessly).
 * The request stays valid until gust_http_request_finish(). While a
 * request is handled the connection keeps reading (pipelined bytes are
 * buffered), so that a client that goes away is noticed at once; a client
 * that half-closes its side (shutdown(SHUT_WR)) before an asynchronous
 * handler has answered is therefore treated as gone: on_connection_close
 * runs and the late answer is not sent. Tornado behaves the same way (its
 * stream listens for the close while the application answers). A handler
 * that answers before returning is always heard by such a client, since
 * its response is written before the end of input is read. The plain
 * callback form is the delegate
 * {NULL, NULL, callback, NULL}: a callback that finishes late learns of a
 * disconnect only through writes failing with GUST_ESTREAMCLOSED. */
typedef struct gust_http_delegate {
    int (*headers_received)(gust_http_request *req, void *data);
    int (*data_received)(gust_http_request *req, const char *chunk,
                         size_t len, void *data);
    void (*finish)(gust_http_request *req, void *data);
    void (*on_connection_close)(gust_http_request *req, void *data);
} gust_http_delegate;

/* What gust_http_server_new() is given: a callback or a delegate. */
typedef struct gust_http_handler {
    const gust_http_delegate *delegate; /* NULL: use callback */
    gust_http_request_cb callback;
    void *data;
} gust_http_handler;

static inline gust_http_handler gust_http_callback(gust_http_request_cb cb,
                                                   void *data)
{
    gust_http_handler h = {NULL, cb, data};
    return h;
}

static inline gust_http_handler
gust_http_delegate_handler(const gust_http_delegate *delegate, void *data)
{
    gust_http_handler h = {delegate, NULL, data};
    return h;
}

/* ---- Server ------------------------------------------------------------ */

typedef struct gust_http_server_options {
    /* Accepted streams, bind options and max_connections (stop accepting
     * at the cap, resume below it). */
    gust_tcp_server_options tcp;
    /* Trust X-Real-Ip / X-Forwarded-For / X-Scheme / X-Forwarded-Proto
     * (only behind a proxy you control). */
    bool xheaders;
    /* Close the connection after every response. */
    bool no_keep_alive;
    /* "https" when TLS is terminated in front of the server; NULL: "https"
     * on the server's own TLS connections (tcp.tls), else "http". */
    const char *protocol;
    /* Largest request head in bytes (request line, fields, final empty
     * line); larger gets 431. The main guard on a head. 0: 64 KiB. */
    size_t max_header_size;
    /* Largest request body; larger gets 413. 0: 100 MiB (as Tornado). */
    size_t max_body_size;
    /* Seconds a client has to send a complete head once it started one
     * (slowloris). 0: 30 s; < 0: none. */
    double header_timeout;
    /* Seconds an idle keep-alive connection is kept. 0: 60 s; < 0: none. */
    double idle_connection_timeout;
    /* Seconds allowed between two reads of a body. 0: 60 s; < 0: none. */
    double body_timeout;
    /* Value of the Server header. NULL: "Gust/<version>"; "": none. */
    const char *server_header;
    /* Back-pressure: while more than this many response bytes wait to be
     * sent to a client (queued in the stream beyond what the kernel took),
     * its connection stops reading and parsing requests, and goes on once
     * they are all sent; a client that pipelines requests without reading
     * the answers is held back by TCP instead of filling memory. 0: 64 KiB;
     * SIZE_MAX: no back-pressure. */
    size_t max_unsent_output;
    /* Seconds a connection held back by back-pressure may go without the
     * client taking any of its unsent output; it is then closed (a log
     * line says so). 0: 60 s; < 0: none. */
    double write_timeout;
    /* Seconds gust_http_server_close_all() (and so close_on_signals) lets
     * connections finish before it closes those still open, with one log
     * line saying how many were cut. 0: 10 s; < 0: none (wait for them). */
    double shutdown_timeout;
    /* Most header fields a request head may carry; one more gets 431 too
     * (a head within max_header_size made of many tiny fields). Each
     * request being handled holds this many 32-byte slots. 0: 256 (nginx
     * limits only the head's size, which admits a few hundred). */
    size_t max_header_count;

    /* HTTP/2 (RFC 9113, through libnghttp2). Each way in is on unless
     * turned off here; a handler sees the same request either way, with
     * version "HTTP/2.0". The limits above apply per request (stream):
     * max_header_size bounds the decoded header list (431, or a stream
     * reset when it cannot be answered), max_header_count its fields,
     * max_body_size the body, header_timeout a connection that sends no
     * request, idle_connection_timeout one with no open stream (GOAWAY,
     * then close), body_timeout a connection whose unfinished requests
     * send nothing, and write_timeout one whose output makes no progress
     * (the client's window or TCP stays shut). */
    /* Over TLS: no "h2" by ALPN. Otherwise, when the server's TLS
     * context sets no ALPN list of its own, it is given {"h2",
     * "http/1.1"}. */
    bool no_http2_tls;
    /* In clear text: no HTTP/2 by prior knowledge (a connection opening
     * with the preface "PRI * HTTP/2.0..." gets 505 from HTTP/1). */
    bool no_http2_prior_knowledge;
    /* In clear text: `Upgrade: h2c` is ignored (served over HTTP/1). */
    bool no_http2_upgrade;
    /* Streams a client may have open at once (SETTINGS). 0: 100. */
    uint32_t http2_max_concurrent_streams;
    /* Flow-control window each stream starts with (SETTINGS): how many
     * body bytes a client may send ahead of what the handler consumed.
     * 0: 256 KiB. */
    uint32_t http2_initial_window_size;
    /* Rapid reset (CVE-2023-44487): a client may reset streams in bursts
     * of http2_reset_burst, refilled at http2_reset_rate per second; past
     * that it gets GOAWAY ENHANCE_YOUR_CALM. 0: 1000 and 33. */
    uint32_t http2_reset_burst;
    uint32_t http2_reset_rate;
    /* SETTINGS_HEADER_TABLE_SIZE: bytes of HPACK dynamic table the client's
     * request headers may fill on each connection. 0: 4096 (the protocol's
     * default, what clients index into); at most 4096; < 0: none (0 is
     * advertised: clients index no request field, which costs decoding
     * per request but lets every idle connection hibernate, below). */
    int32_t http2_header_table_size;
    /* Seconds a connection with no open stream and nothing to send waits
     * before it hibernates: its nghttp2 session (about 10 KB) is freed,
     * keeping only the client's settings and the send window, and rebuilt
     * when the client sends again or the server must send (GOAWAY). A
     * connection whose client has entries in its HPACK dynamic table
     * keeps its session (a table cannot be rebuilt): with the default
     * http2_header_table_size, those that made a request; with
     * http2_header_table_size < 0, none. The metrics gauge
     * gust_http2_connections_hibernated counts them. 0: 1 s; < 0: never. */
    double http2_hibernate_after;
} gust_http_server_options;

/* Creates a server that passes requests to handler. opts may be NULL (all
 * defaults); it is copied, strings included. Returns NULL with errno set. */
GUST_EXTERN gust_http_server *gust_http_server_new(
    gust_http_handler handler, const gust_http_server_options *opts);

/* As gust_tcp_server_listen / _bind / _start / _add_sockets / _stop / _port
 * (tcp_server.h), for HTTP. */
GUST_EXTERN int gust_http_server_listen(gust_http_server *srv, int port,
                                        const char *address);
GUST_EXTERN int gust_http_server_bind(gust_http_server *srv, int port,
                                      const char *address);
GUST_EXTERN int gust_http_server_start(gust_http_server *srv,
                                       int num_processes);
GUST_EXTERN int gust_http_server_add_sockets(gust_http_server *srv,
                                             gust_socket_list *sockets);
GUST_EXTERN int gust_http_server_stop(gust_http_server *srv);
GUST_EXTERN int gust_http_server_port(const gust_http_server *srv);

/* Graceful shutdown: stops accepting; a request in progress is finished
 * and its response says Connection: close; an idle keep-alive connection
 * has 2 s for one more request (its client may have sent it already: it
 * is answered with Connection: close too, rather than lost in a race
 * with our close). Each connection then half-closes and reads what the
 * client still sends until it closes (at most 2 s), so no unread request
 * turns the close into a reset. At shutdown_timeout the connections left
 * are closed (logged with their number). done(srv, data) runs on the loop
 * once no connection is left. */
GUST_EXTERN int gust_http_server_close_all(gust_http_server *srv,
                                           void (*done)(gust_http_server *srv,
                                                        void *data),
                                           void *data);

/* The graceful stop every server program wants, in one call: on SIGTERM or
 * SIGINT the server stops accepting and closes its connections as
 * gust_http_server_close_all() does (current responses finish first),
 * then stops the current loop, so that gust_loop_start() returns and the
 * program frees what it made. A second signal stops the loop at once.
 * Watches both signals on the current loop (gust_loop_add_signal: one
 * loop per signal in the process); gust_http_server_free() stops
 * watching them. Returns 0, -EINVAL if already called for this server, or
 * gust_loop_add_signal()'s error. */
GUST_EXTERN int gust_http_server_close_on_signals(gust_http_server *srv);

/* What one server (one worker) has done: to watch each worker of a
 * multi-process server on its own. */
typedef struct gust_http_server_stats {
    size_t connections;          /* open now */
    uint64_t connections_total;  /* accepted since the server started */
    uint64_t requests_total;     /* request heads parsed since then */
} gust_http_server_stats;

GUST_EXTERN void gust_http_server_get_stats(const gust_http_server *srv,
                                            gust_http_server_stats *out);

/* Logs one line of srv's statistics each time the process receives
 * SIGUSR1, with the worker's task id and pid in the log prefix (log.h):
 * "stats: 12 connections open, 3456 accepted, 78901 requests". The parent
 * of gust_fork_processes() passes SIGUSR1 on to every worker, so one
 * `kill -USR1 <parent>` gives a line per worker. Watches SIGUSR1 on the
 * current loop; gust_http_server_free() stops. Returns 0, -EINVAL if
 * already called for this server, or gust_loop_add_signal()'s error. */
GUST_EXTERN int gust_http_server_log_stats_on_sigusr1(gust_http_server *srv);

/* Number of open connections. */
GUST_EXTERN size_t
gust_http_server_connection_count(const gust_http_server *srv);

/* Frees the server. Call it once no connection is left (after close_all's
 * done callback); connections still open are closed first. NULL: no-op. */
GUST_EXTERN void gust_http_server_free(gust_http_server *srv);

/* ---- Requests: reading ------------------------------------------------- */

/* Cookies from the Cookie header(s), parsed on first call. Never NULL. */
GUST_EXTERN const gust_http_args *gust_http_request_cookies(
    gust_http_request *req);

/* The peer address, for logs. */
GUST_EXTERN const struct sockaddr *gust_http_request_peer(
    const gust_http_request *req, socklen_t *len);

/* Inside headers_received: deliver the body through data_received instead
 * of buffering it (Tornado's stream_request_body). Returns 0 or -EINVAL
 * outside headers_received. */
GUST_EXTERN int gust_http_request_stream_body(gust_http_request *req);

/* Flow control for a streamed body (after gust_http_request_stream_body):
 * pause stops reading from the client and calling data_received, and the
 * body timeout, until resume; the client is then held back by TCP itself,
 * so a slow consumer costs no memory. Use it from headers_received to do
 * asynchronous work before the first chunk, or from data_received while a
 * chunk is being written somewhere slow. resume delivers again from a
 * later loop turn, never inside the call. Both return 0, or -EINVAL for a
 * request that does not stream its body or is finished; pause also
 * returns -EINVAL once the whole body was delivered. */
GUST_EXTERN int gust_http_request_pause_body(gust_http_request *req);
GUST_EXTERN int gust_http_request_resume_body(gust_http_request *req);

/* ---- Requests: responding ---------------------------------------------- *
 *
 * Two ways, not to be mixed in one response:
 *
 * RAW (E1): gust_http_request_write_raw() sends bytes as they are; the handler
 * writes the status line, headers and body itself. The server adds nothing;
 * keep-alive follows the request's headers (E2), so the raw response must
 * carry a Content-Length for the connection to be kept.
 *
 * STRUCTURED: set the status and headers, write body bytes, finish. The
 * server adds Date, Server and Content-Length (or Transfer-Encoding:
 * chunked when the handler flushes before finishing without a length), and
 * Connection: close when it will close; it sends no body for HEAD, 204 and
 * 304. Body bytes are buffered until flush or finish. */

/* Raw write: copies len bytes to the connection. Returns 0,
 * GUST_ESTREAMCLOSED, or -EINVAL after a structured response started. */
GUST_EXTERN int gust_http_request_write_raw(gust_http_request *req,
                                            const void *data, size_t len);
/* Deprecated name of gust_http_request_write_raw(), kept so that code
 * written against it still compiles: beside gust_http_response_write()
 * (body bytes) it did not say that it writes wire bytes. */
#define gust_http_request_write gust_http_request_write_raw
GUST_EXTERN int gust_http_request_printf(gust_http_request *req,
                                         const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Structured response. set_status: reason NULL uses the standard phrase
 * (gust_http_reason). Header names must be tokens and values free of CR,
 * LF and NUL: -EINVAL otherwise (no header injection). Setting status or
 * headers after they were sent returns -EINVAL. */
GUST_EXTERN int gust_http_response_set_status(gust_http_request *req, int code,
                                              const char *reason);
GUST_EXTERN int gust_http_response_set_header(gust_http_request *req,
                                              const char *name,
                                              const char *value);
GUST_EXTERN int gust_http_response_add_header(gust_http_request *req,
                                              const char *name,
                                              const char *value);
GUST_EXTERN int gust_http_response_clear_header(gust_http_request *req,
                                                const char *name);
/* The response headers set so far (read-only). */
GUST_EXTERN const gust_http_headers *gust_http_response_headers(
    const gust_http_request *req);
GUST_EXTERN int gust_http_response_status(const gust_http_request *req);

/* Appends body bytes (copied). Returns 0, GUST_ESTREAMCLOSED, or -ENOMEM.
 *
 * A Content-Length set by the application is held to: body bytes beyond it
 * are not sent and flush/sendfile/finish return -EMSGSIZE; a body short
 * of it at finish is logged. Either way the connection is closed after the
 * response, since the client would otherwise misread the next one. */
GUST_EXTERN int gust_http_response_write(gust_http_request *req,
                                         const void *data, size_t len);

/* Sends what is buffered (headers first if not sent yet; chunked framing
 * from then on unless a Content-Length was set). cb (may be NULL) runs once
 * the bytes are handed to the kernel, for flow control of large bodies.
 * Returns 0 or GUST_ESTREAMCLOSED. */
GUST_EXTERN int gust_http_response_flush(gust_http_request *req,
                                         void (*cb)(gust_http_request *req,
                                                    int status, void *data),
                                         void *data);

/* Queues len bytes of file_fd, from offset, as body bytes of a structured
 * response, after whatever was written before: sent with sendfile(2), so
 * they are not copied through user space (on a TLS stream they are read
 * with pread() and written). The headers go out first if they have not:
 * set a Content-Length covering every body byte before the first call, or
 * the body is sent chunked (HTTP/1.1; HTTP/1.0 closes the connection after
 * it). For HEAD, 204 and 304 nothing of the file is sent.
 * The fd is borrowed only during the call: Gust dup()s it, so the caller
 * may close file_fd as soon as this returns; the duplicate is closed once
 * its bytes are out or the connection closes. The file must not be
 * truncated meanwhile: a file shorter than offset + len closes the
 * connection. cb (may be NULL) runs once, after this call, when the bytes
 * have all been handed to the kernel (status 0) or with GUST_ESTREAMCLOSED
 * if the connection closed first, but only while the request is not
 * finished: a request finished before cb is due drops it (use cb for flow
 * control, before finishing, not for cleanup). Returns 0, GUST_ESTREAMCLOSED,
 * -EINVAL (file_fd < 0, offset < 0, or a raw response), -ENOMEM, or the
 * negated errno of dup(). */
GUST_EXTERN int gust_http_response_sendfile(
    gust_http_request *req, int file_fd, off_t offset, size_t len,
    void (*cb)(gust_http_request *req, int status, void *data), void *data);

/* Ends the request: sends the rest of a structured response (or nothing
 * for a raw one; a request answered with no call at all gets an empty 200),
 * then the connection reads the next request or closes, following the
 * keep-alive rules. The request is released. Returns 0 or
 * GUST_ESTREAMCLOSED (the request is released all the same), -EMSGSIZE
 * for a body longer than the Content-Length the application set (the
 * connection is closed), or -EINVAL for a request already finished. */
GUST_EXTERN int gust_http_request_finish(gust_http_request *req);

/* For a handler that cannot complete its response (an error after the
 * headers went out): sends nothing more, drops body bytes not yet flushed,
 * closes the connection once the bytes already sent are out, and releases
 * the request. The client sees a response cut short (a short body, or no
 * last chunk), never one that looks complete; a request aborted before
 * anything was sent gets no response at all. Returns 0, or -EINVAL for a
 * request already finished. */
GUST_EXTERN int gust_http_request_abort(gust_http_request *req);

/* ---- Taking the connection over (Tornado's detach()) --------------------
 *
 * A handler that answers a protocol upgrade (WebSocket's 101, later h2c)
 * takes the connection away from the HTTP server:
 *
 *     gust_http_response_set_status(req, 101, NULL);
 *     gust_http_response_set_header(req, "Upgrade", "websocket"); ...
 *     gust_stream *s;
 *     gust_str rest;
 *     if (gust_http_request_detach(req, &proto->slot, &ops, proto, &s,
 *                                  &rest) == 0) ...
 *
 * The connection sends the response written so far (a structured one: its
 * status line and headers, with Date and Server but no Content-Length nor
 * body; a raw one as written), then hands over its stream and forgets it:
 * it reads no more from it, writes nothing more, sets no timer, and sets
 * the stream's close callback and data to NULL for the new owner to set.
 * *leftover gets the bytes the client sent after the request (pipelined
 * bytes after an upgrade request belong to the new protocol), borrowed:
 * valid until gust_http_request_finish() of req, so copy or consume them
 * first. The request itself stays valid until the handler finishes it as
 * usual (its writes then fail with GUST_ESTREAMCLOSED and finish sends
 * nothing); finish it soon: the request's memory is held until then.
 *
 * The server keeps counting the connection (gust_http_server_connection_count,
 * close_all's done, free) through slot, a gust_http_detached the new owner
 * embeds in its own memory and keeps valid until it calls
 * gust_http_detached_done(slot), once the stream is closed. ops (may be
 * NULL; borrowed, must outlive the slot) lets the server ask the protocol
 * to close: ops->close_all(data) runs (never inside the detach call) when
 * gust_http_server_close_all() or gust_http_server_free() is called while
 * the slot is in use; the protocol then closes the connection its own way
 * (a WebSocket sends 1001 Going Away), and calls gust_http_detached_done()
 * once it is gone. It is called again if the connection is still there
 * when close_all's shutdown_timeout runs out, or when the server is
 * freed: the protocol then closes the connection at once.
 *
 * While an upgrade request (Connection: upgrade) is handled the server does
 * not read from the stream, so that every byte after its head is left for
 * the new protocol; a client that disconnects meanwhile is noticed by the
 * new protocol's first read.
 * Returns 0; -EINVAL for a request finished already, detached already, or
 * whose body is not all read (a request with a body cannot be upgraded);
 * -EBUSY if a read of the server's was already pending (an upgrade
 * pipelined behind a request answered asynchronously: the handler should
 * answer 400); GUST_ESTREAMCLOSED if the client is gone; -ENOMEM. On
 * failure nothing changed. */
typedef struct gust_http_detach_ops {
    void (*close_all)(void *data);
} gust_http_detach_ops;

/* A detached connection as the server counts it (fields private). */
typedef struct gust_http_detached {
    struct gust_http_detached *prev, *next;
    gust_http_server *srv;
    const gust_http_detach_ops *ops;
    void *data;
} gust_http_detached;

GUST_EXTERN int gust_http_request_detach(gust_http_request *req,
                                         gust_http_detached *slot,
                                         const gust_http_detach_ops *ops,
                                         void *data, gust_stream **stream,
                                         gust_str *leftover);

/* The new owner of a detached connection is done with it (its stream is
 * closed): the server stops counting it (and may call close_all's done).
 * A second call, or NULL, is a no-op. */
GUST_EXTERN void gust_http_detached_done(gust_http_detached *slot);

/* Convenience: status, Content-Type (NULL: none) and a whole body, then
 * finish. Returns the first error of those steps (the request is finished
 * in any case). */
GUST_EXTERN int gust_http_respond(gust_http_request *req, int status,
                                  const char *content_type, const void *body,
                                  size_t len);

#ifdef __cplusplus
}
#endif

#endif /* GUST_HTTP_SERVER_H */
