/* Asynchronous HTTP client (Tornado's AsyncHTTPClient and
 * SimpleAsyncHTTPClient), with keep-alive connection reuse.
 *
 *     gust_http_client *c = gust_http_client_new(loop, NULL);
 *     gust_value v;
 *     int rc = gust_await(gust_http_fetch(c, "http://127.0.0.1:8888/"), &v);
 *     if (rc == 0) {
 *         gust_http_client_response *resp = v.ptr;
 *         printf("%d %.*s\n", resp->code, (int)resp->body_len, resp->body);
 *         gust_value_free(&v);              (frees the response)
 *     }
 *     gust_http_client_free(c);
 *
 * CONNECTIONS. HTTP/1.1, one request at a time per connection (no
 * pipelining); with the http2 option, HTTP/2 to https servers that choose
 * it (see HTTP/2 below). A connection whose response was completely read
 * and that the server lets live (no "Connection: close", known body
 * length) goes back to an idle pool keyed by scheme, host and port, and the
 * next fetch to the same place reuses it. At most max_clients fetches run at once; the
 * others wait in a FIFO queue. A request sent on a reused connection that
 * the server had meanwhile closed (no byte of response received) is sent
 * once more on a new connection.
 *
 * TIMEOUTS, each with its own error code and each counted separately, so
 * time spent in one phase never eats the budget of the next:
 *   queue_timeout    waiting in the queue for a free slot
 *                    (GUST_ETIMEOUT_QUEUE);
 *   connect_timeout  resolving the name, connecting and the TLS handshake
 *                    (GUST_ETIMEOUT_CONNECT);
 *   request_timeout  from leaving the queue to the end of the response,
 *                    redirects included (GUST_ETIMEOUT).
 *
 * ERRORS are values. A fetch fails with one of:
 *   GUST_EDNS              the host name could not be resolved;
 *   -ECONNREFUSED, -ECONNRESET, -ENETUNREACH, ...  connecting or the
 *                          connection failed;
 *   GUST_ETIMEOUT_QUEUE, GUST_ETIMEOUT_CONNECT, GUST_ETIMEOUT;
 *   GUST_ETLS, GUST_ETLSVERIFY  TLS handshake, certificate or host name;
 *   GUST_EPROTO            a malformed response (status line, headers,
 *                          chunked or gzip framing), or one that ended early;
 *   GUST_EBUFFERFULL       head or body larger than the client's limits;
 *   GUST_ETOOMANYREDIRECTS more than max_redirects redirects (the last 3xx
 *                          response is readable);
 *   GUST_EHTTP             a status >= 400 with raise_error on (the
 *                          default); the response is readable;
 *   GUST_ECANCELED         the future was cancelled or the client freed;
 *   -EINVAL                a bad URL, method or header in the request.
 * Every failed fetch still has a response (code 599 when nothing usable was
 * received, as Tornado) whose error and error_message say what happened:
 * through gust_http_client_error_response() for a future, or given to the
 * callback of gust_http_client_fetch_cb().
 *
 * HTTP/2. With options.http2 set (or a request's http2 flag), https
 * connections offer "h2" then "http/1.1" by ALPN. When the server picks
 * h2, every fetch to that origin
 * (scheme, host, port and TLS settings) shares that one connection, each on
 * its own stream, as many at once as the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS allows (the others wait for a free stream;
 * all still count against max_clients). While the first connection to an
 * origin is being made, other fetches to it wait for it rather than open
 * their own. Each fetch behaves as over HTTP/1 (status, headers, body,
 * callbacks, gzip, redirects, the three timeouts) and its response says
 * version_major 2, version_minor 0. A fetch that times out or is cancelled
 * resets only its own stream (RST_STREAM CANCEL). After a GOAWAY, streams
 * the server accepted finish; the others are sent once more on a new
 * connection (failing with -ECONNRESET if refused again); a lost connection
 * fails each of its fetches (the socket's error, -ECONNRESET, -EPIPE...,
 * or GUST_EPROTO; "HTTP/2 connection lost"); a stream the server resets
 * fails its fetch with -ECONNRESET, a response that breaks the protocol
 * with GUST_EPROTO. A server that picks http/1.1 or no ALPN gets the
 * HTTP/1 path unchanged, and is remembered so that later fetches do not
 * wait for one connection. Plain http:// URLs always use HTTP/1.1 (no h2c).
 *
 * THREADS. A client belongs to its loop and is used on that loop's thread.
 */
#ifndef GUST_HTTP_CLIENT_H
#define GUST_HTTP_CLIENT_H

#include "gust/common.h"

#include <stdbool.h>
#include <stddef.h>

#include "gust/arena.h"
#include "gust/future.h"
#include "gust/http.h"
#include "gust/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gust_http_client gust_http_client;
typedef struct gust_http_client_response gust_http_client_response;

/* A yes/no setting whose zero value means "the default" (the default is
 * named for each field), so that a zero-initialised request is Tornado's
 * default request. */
typedef enum gust_http_flag {
    GUST_HTTP_DEFAULT = 0,
    GUST_HTTP_YES = 1,
    GUST_HTTP_NO = -1
} gust_http_flag;

/* Settings of a client; every field may be left zero. */
typedef struct gust_http_client_options {
    /* Fetches running at once; more wait in a queue. 0: 10 (Tornado). */
    int max_clients;
    /* Idle keep-alive connections kept, over all hosts. 0: max_clients;
     * < 0: none (every connection closes after its response). */
    int max_idle_connections;
    /* Seconds an idle connection is kept before it is closed. 0: 30 s. */
    double idle_timeout;
    /* Largest response head (status line and headers). 0: 64 KiB. */
    size_t max_header_size;
    /* Largest response body, after decompression. 0: 100 MiB. */
    size_t max_body_size;
    /* Default User-Agent when a request sets none. NULL: "Gust/<version>". */
    const char *user_agent;
    /* Offer HTTP/2 by ALPN on https connections and use it when the server
     * picks it (see HTTP/2 above). Default false: HTTP/1.1 only. */
    bool http2;
} gust_http_client_options;

/* What to fetch. Only url is required; every other field may be left zero.
 * The request is copied by the fetch call (strings, headers and body), so
 * it may live on the caller's stack. */
typedef struct gust_http_client_request {
    /* Absolute http:// or https:// URL. A fragment is dropped. */
    const char *url;
    /* NULL: "GET". Any token is accepted. */
    const char *method;
    /* Extra request headers, in order; names must be tokens and values
     * clean (no CR, LF or NUL), else the fetch fails with -EINVAL. A header
     * given here replaces the client's own Host, User-Agent, Accept-Encoding
     * or Authorization. */
    const gust_http_header *headers;
    size_t num_headers;
    /* Body (copied); NULL: none. POST, PUT and PATCH without one send
     * Content-Length: 0. */
    const void *body;
    size_t body_len;
    /* Seconds; 0: 20 s each (Tornado); < 0: no limit. queue_timeout 0:
     * the connect_timeout value. See TIMEOUTS above. */
    double connect_timeout;
    double request_timeout;
    double queue_timeout;
    /* Follow 301, 302, 303, 307 and 308 (default yes). 301/302/303 turn
     * into a GET without body (a HEAD stays HEAD); 307/308 resend the same
     * method and body. */
    gust_http_flag follow_redirects;
    /* Most redirects followed. 0: 5; < 0: none followed (as
     * follow_redirects no). */
    int max_redirects;
    /* Send Accept-Encoding: gzip and decode a gzip body (default yes). The
     * decoded response has no Content-Encoding header; its former value is
     * in X-Consumed-Content-Encoding (as Tornado). */
    gust_http_flag decompress;
    /* Fail the fetch with GUST_EHTTP on a status >= 400 (default yes, as
     * Tornado). With no, such a response is a success. */
    gust_http_flag raise_error;
    /* https: verify the server's certificate and host name (default yes),
     * against ca_file (PEM) or the system's CAs when NULL. */
    gust_http_flag validate_cert;
    const char *ca_file;
    /* https: client certificate and key (PEM files), or NULL. */
    const char *client_cert;
    const char *client_key;
    /* HTTP basic authentication when auth_username is not NULL (the
     * password may be NULL: empty). */
    const char *auth_username;
    const char *auth_password;
    /* User-Agent; NULL: the client's. */
    const char *user_agent;
    /* Called on the loop with each line of each response head as received
     * (the status line, each header line, then the empty line; CRLF
     * included), redirects and 1xx responses too, as Tornado's
     * header_callback. line is valid during the call. resp is the response
     * being received, with code and reason set. Over HTTP/2 the lines are
     * made up from the HEADERS frames: "HTTP/2.0 200 OK\r\n", then
     * "name: value\r\n" (names in lower case, as sent), then "\r\n". */
    void (*header_callback)(gust_http_client_response *resp, const char *line,
                            size_t len, void *data);
    /* When set, the body (decoded) is given to it chunk by chunk instead of
     * being kept in resp->body (which stays empty). Only the final
     * response's body is streamed (not that of a redirect). */
    void (*streaming_callback)(gust_http_client_response *resp,
          const char *chunk,
                               size_t len, void *data);
    /* Passed to both callbacks. */
    void *callback_data;
    /* https: offer HTTP/2 for this fetch (see HTTP/2 above). Default: the
     * client's http2 option. A fetch with no never uses an HTTP/2
     * connection; one with yes may, on a client without the option. */
    gust_http_flag http2;
} gust_http_client_request;

/* A response (Tornado's HTTPResponse). Everything it points to lives as
 * long as it does; free it with gust_http_client_response_free(). Fields are
 * read-only; strings are NUL-terminated. */
struct gust_http_client_response {
    /* Status code, or 599 when no response was received. */
    int code;
    const char *reason;          /* "OK"; "" when none */
    int version_minor;           /* 1 for HTTP/1.1, 0 for HTTP/1.0 and 2.0 */
    /* 1 for HTTP/1.x, 2 for HTTP/2; 0 when no response was received. */
    int version_major;
    gust_http_headers headers;   /* in order received */
    /* Body (decoded), NUL-terminated (the NUL is not counted). Empty (not
     * NULL) when there is none or it was streamed. */
    const char *body;
    size_t body_len;
    /* The URL asked for, and the one that answered after redirects. */
    const char *request_url;
    const char *effective_url;
    /* 0 for a success; else the code the fetch failed with (see ERRORS) and
     * a message with details, e.g. "connect to 127.0.0.1:1: Connection
     * refused". error_message is "" on success. */
    int error;
    const char *error_message;
    /* Seconds (loop clock): waiting in the queue, and from leaving it to
     * the end (connect, request, redirects). */
    double queue_time;
    double request_time;
    /* Redirects followed to get here. */
    int redirects;
    /* Whether the response came on a reused keep-alive connection. */
    bool reused_connection;
    /* Owns every string, the headers and the body. Private. */
    gust_arena arena;
    char *body_buf;
    size_t body_cap;
    bool body_in_arena;
};

/* Creates a client on loop. opts may be NULL (defaults); it is copied.
 * Returns NULL with errno set (ENOMEM, EINVAL for a negative max_clients). */
GUST_EXTERN gust_http_client *gust_http_client_new(
    gust_loop *loop, const gust_http_client_options *opts);

/* Fails every queued and running fetch with GUST_ECANCELED (their futures
 * complete and callbacks run on the loop later, as always), closes every
 * connection and frees the client. Connections still resolving a name
 * finish in the background (the loop cannot be freed until the executor
 * work is done). Safe from inside a fetch callback. NULL: no-op. */
GUST_EXTERN void gust_http_client_free(gust_http_client *c);

/* Starts fetching r and returns a future, the caller's reference. On
 * success its result is the gust_http_client_response * (value freed with
 * gust_http_client_response_free(), which the future does if nobody takes it).
 * On failure the future's error is the code (see ERRORS) and the response
 * stays readable through gust_http_client_error_response() while the
 * future lives. Cancelling the future stops the fetch and closes its
 * connection. Returns NULL if out of memory (errno set); every other
 * problem, a bad URL included, comes through the future. */
GUST_EXTERN GUST_MUST_USE gust_future *
gust_http_client_fetch(gust_http_client *c, const gust_http_client_request *r);

/* GET url with the default settings: gust_http_client_fetch with
 * {.url = url}. For coroutines: gust_await(gust_http_fetch(c, url), &v). */
GUST_EXTERN GUST_MUST_USE gust_future *gust_http_fetch(gust_http_client *c,
                                                       const char *url);

/* The response of a failed fetch future (GUST_EHTTP: the server's
 * response; GUST_ETOOMANYREDIRECTS: the last redirect; others: code 599
 * with error and error_message set), borrowed: valid while f lives. NULL
 * while f is pending, after a success (use the result), or when f was
 * cancelled. */
GUST_EXTERN gust_http_client_response *gust_http_client_error_response(
    gust_future *f);

/* Callback form: cb(resp, data) runs once on the loop when the fetch ends,
 * never inside this call, with resp->error 0 or the failure (see ERRORS;
 * raise_error is applied the same way). resp is borrowed: it is freed when
 * cb returns. Returns 0, or -ENOMEM (cb is then never called). */
GUST_EXTERN int gust_http_client_fetch_cb(
    gust_http_client *c, const gust_http_client_request *r,
    void (*cb)(gust_http_client_response *resp, void *data), void *data);

/* Frees a response and everything it points to. NULL: no-op. */
GUST_EXTERN void gust_http_client_response_free(
    gust_http_client_response *resp);

/* Counters, for tests and monitoring. */
typedef struct gust_http_client_stats {
    size_t active;        /* fetches holding a slot */
    size_t queued;        /* fetches waiting for one */
    size_t idle;          /* idle keep-alive connections */
    size_t connections;   /* connections opened since the client began */
    size_t reused;        /* requests sent on a reused connection */
} gust_http_client_stats;
GUST_EXTERN void gust_http_client_get_stats(const gust_http_client *c,
                                            gust_http_client_stats *out);

/* Deprecated names, kept so that code written against them still compiles:
 * the client's response was gust_http_response, which read as the server's
 * gust_http_response_*() calls (those take a server request). */
typedef gust_http_client_response gust_http_response;
#define gust_http_response_free gust_http_client_response_free

#ifdef __cplusplus
}
#endif

#endif /* GUST_HTTP_CLIENT_H */
