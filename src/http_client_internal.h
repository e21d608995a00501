/* Internal to the HTTP client (http_client.c: client, queue, pool, fetch
 * lifecycle and redirects; http_client_conn.c: one connection, the request
 * on the wire and the response parser; http_client_h2.c: HTTP/2 sessions
 * and streams on libnghttp2). Not installed.
 *
 * Lifetimes. A fetch lives from gust_http_client_fetch() until it ends
 * (success, error, timeout, cancel, client freed); a connection lives until
 * its stream's close callback (or, while it resolves a name, until the
 * resolver answers), so it may outlive both its fetch and its client: the
 * back pointers are cleared then and every stream callback checks them.
 */
#ifndef GUST_HTTP_CLIENT_INTERNAL_H
#define GUST_HTTP_CLIENT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#include "gust/http_client.h"
#include "gust/net.h"
#include "gust/stream.h"
#include "http1_parser.h"
#include "net_internal.h"

typedef struct gust__http_client_conn gust__http_client_conn;
typedef struct gust__http_client_fetch gust__http_client_fetch;
/* http_client_h2.c: an HTTP/2 session on a connection, and one stream. */
typedef struct gust__http_client_h2 gust__http_client_h2;
typedef struct gust__http_client_h2_stream gust__http_client_h2_stream;

/* Results of the body and header helpers besides 0 and negative codes: the
 * fetch ended inside a user callback and is gone. */
#define GUST__HTTP_CLIENT_GONE 1

/* How the body of the response being read is delimited. */
typedef enum gust__http_client_body {
    GUST__HTTP_CLIENT_BODY_NONE,
    GUST__HTTP_CLIENT_BODY_LENGTH,
    GUST__HTTP_CLIENT_BODY_CHUNKED,
    GUST__HTTP_CLIENT_BODY_CLOSE
} gust__http_client_body;

typedef enum gust__http_client_conn_state {
    GUST__HTTP_CLIENT_CONN_CONNECTING,
    GUST__HTTP_CLIENT_CONN_BUSY,
    GUST__HTTP_CLIENT_CONN_IDLE,
    GUST__HTTP_CLIENT_CONN_H2,    /* an HTTP/2 session: conn->h2, no fetch */
    GUST__HTTP_CLIENT_CONN_CLOSED
} gust__http_client_conn_state;

struct gust__http_client_conn {
    gust_http_client *client; /* NULL once the client is freed */
    gust_loop *loop;
    gust__http_client_fetch *fetch; /* the fetch using it, or NULL */
    gust_stream *stream;      /* NULL while connecting */
    gust__http_client_conn_state state;
    gust__http_client_conn *prev, *next; /* client's list of connections */
    gust__http_client_conn *idle_prev, *idle_next; /* client's idle list */
    gust_timer idle_timer;
    /* The key: scheme, host, port. */
    bool tls;
    int port;
    char *host;
    /* TLS settings the connection was made with (part of the key). */
    bool insecure;
    char *tls_key; /* ca_file, client_cert, client_key joined; NULL: none */
    gust__connect *connect;   /* the connect request while connecting */
    unsigned requests; /* sent on this connection */
    /* HTTP/2 (client option http2, https only). While a connection that
     * may turn out HTTP/2 is being made (h2_probe), other fetches to the
     * same origin wait on it (waiters, FIFO) instead of opening their own;
     * once ALPN has spoken they are sent on it or start over. */
    bool h2_probe;
    bool offer_h2;             /* ALPN offered h2 (made for an http2 fetch) */
    gust__http_client_fetch *wait_head, *wait_tail;
    gust__http_client_h2 *h2;  /* state H2 */
};

struct gust__http_client_fetch {
    gust_http_client *client;
    gust_future *future;          /* holds one reference while running */
    gust__http_client_fetch *prev, *next; /* client's queue or active list */
    enum {
        GUST__HTTP_CLIENT_QUEUED,
        GUST__HTTP_CLIENT_ACTIVE,
        GUST__HTTP_CLIENT_DONE
    } state;
    int busy;                     /* inside a user callback: free later */
    gust_arena arena;             /* copies of the request */
    /* The request. */
    const char *method;
    const char *url;              /* current URL (changes on redirects) */
    const char *original_url;
    const gust_http_header *headers;
    size_t num_headers;
    const char *body;
    size_t body_len;
    double connect_timeout, request_timeout, queue_timeout;
    int max_redirects;            /* < 0: do not follow */
    bool decompress, raise_error, insecure;
    const char *tls_key;
    const char *ca_file, *client_cert, *client_key;
    const char *authorization;    /* "Basic ..." or NULL */
    const char *user_agent;
    void (*header_callback)(gust_http_client_response *, const char *, size_t,
                            void *);
    void (*streaming_callback)(gust_http_client_response *, const char *,
          size_t,
                               void *);
    void *callback_data;
    /* Where the current attempt goes. */
    gust_url target;
    const char *host;             /* NUL-terminated copy of target.host */
    bool tls;
    /* Timers and times. */
    gust_timer queue_timer, connect_timer, request_timer;
    double t_created, t_started;
    /* Progress of the current attempt. */
    gust__http_client_conn *conn;
    gust_http_client_response *resp;
    int redirects;
    bool retried;                 /* resent once after a stale connection */
    bool head_request;
    gust__http_client_body body_mode;
    uint64_t content_length;
    bool keep_alive;              /* the server lets the connection live */
    bool discard_body;            /* a redirect about to be followed */
    bool too_many_redirects;      /* a redirect past max_redirects */
    const char *location;         /* where the redirect goes (f->arena) */
    bool stream_body;             /* through streaming_callback */
    bool gzip;
    bool z_ready;
    bool z_end;                   /* the gzip stream ended */
    bool z_input;                 /* some gzip input was seen */
    z_stream z;
    gust__http1_chunked chunked;
    char *scratch;                /* chunked decoding, in place */
    size_t scratch_cap;
    const char *error_detail;     /* for error_message */
    /* HTTP/2: the stream carrying the current attempt (then conn is NULL),
     * or the connection it waits on (conn's waiters list). */
    gust__http_client_h2_stream *h2;
    gust__http_client_conn *waiting_on;
    gust__http_client_fetch *wait_prev, *wait_next;
    bool h2_no_wait;              /* do not wait on a probing connection */
    bool http2;                   /* offer HTTP/2 (request or client) */
};

/* ---- http_client.c: what the connection side calls -------------------- */

/* The client's loop and options. */
gust_loop *gust__http_client_loop(const gust_http_client *c);
size_t gust__http_client_max_header(const gust_http_client *c);
size_t gust__http_client_max_body(const gust_http_client *c);
const char *gust__http_client_user_agent(const gust_http_client *c);
bool gust__http_client_keep_alive_wanted(const gust_http_client *c);
double gust__http_client_idle_timeout(const gust_http_client *c);

/* The connection of fetch f is connected (TLS done): stops the connect
 * timer and sends the request. */
void gust__http_client_connected(gust__http_client_fetch *f);

/* The response is complete; conn may go back to the pool if keep_alive. */
void gust__http_client_response_done(gust__http_client_fetch *f);

/* The attempt failed with code (detail: static text or in f->arena, may be
 * NULL). Retries a stale keep-alive connection once, else ends f. */
void gust__http_client_attempt_failed(gust__http_client_fetch *f, int code,
                                      const char *detail);

/* Calls a user callback (header or streaming) on f; returns false if f
 * ended meanwhile (cancelled, client freed), in which case f is gone and
 * the caller must return at once without touching f or its connection. */
bool gust__http_client_user_enter(gust__http_client_fetch *f);
bool gust__http_client_user_leave(gust__http_client_fetch *f);

/* HTTP/2 support of the client side (http_client.c). */
/* conn (h2_probe) finished its TLS handshake; h2: ALPN chose "h2". Sends
 * its fetch and its waiters on the new session, or lets its fetch go on
 * over HTTP/1 and starts the waiters over. */
void gust__http_client_handshake_done(gust__http_client_conn *conn, bool h2);
/* conn failed or closed before it was ready: its waiters start over (each
 * opening its own connection). */
void gust__http_client_release_waiters(gust__http_client_conn *conn);
/* A new attempt for f (GOAWAY or REFUSED_STREAM: the server did not
 * process the request, so it is safe to send again). Once per fetch; the
 * second time f fails with code and detail. */
void gust__http_client_retry(gust__http_client_fetch *f, int code,
                             const char *detail);

/* Client bookkeeping for connections. */
void gust__http_client_pool_add(gust_http_client *c,
                                gust__http_client_conn *conn);
void gust__http_client_pool_remove(gust__http_client_conn *conn);

/* ---- http_client_conn.c ------------------------------------------------ */

/* Opens a new connection for f's target and attaches it to f: resolve,
 * TCP, TLS, then gust__http_client_connected(f), or gust__http_client_attempt_failed(f).
 * Returns 0, or -ENOMEM (nothing attached, nothing called). */
int gust__http_client_conn_open(gust_http_client *c,
                                gust__http_client_fetch *f);

/* The TLS client context for f's settings (cached by the client), or NULL
 * with f->error_detail set. */
struct gust_tls_context *
gust__http_client_tls_context(gust_http_client *c, gust__http_client_fetch *f);

/* Sends f's request on its connection and reads the response. */
void gust__http_client_conn_send_request(gust__http_client_fetch *f);

/* Closes conn (no-op if closed); it is freed once its stream is closed. */
void gust__http_client_conn_close(gust__http_client_conn *conn);

/* Makes conn idle (pool) / takes it out of the pool. */
void gust__http_client_pool_set_idle(gust__http_client_conn *conn,
                                     double idle_timeout);
void gust__http_client_pool_take(gust__http_client_conn *conn,
                                 gust__http_client_fetch *f);

/* Frees f's decoders (zlib, scratch). */
void gust__http_client_conn_body_reset(gust__http_client_fetch *f);

/* The response-side steps the HTTP/2 code shares with HTTP/1:
 * header_line calls the header callback (false: f is gone);
 * body_prepare takes the framing (redirect, gzip, body buffer) and returns
 * 0 or a negative code with f->error_detail; body_deliver takes raw body
 * bytes (0, GUST__HTTP_CLIENT_GONE, or a negative code with
 * f->error_detail); body_done ends the response (gzip check, then
 * gust__http_client_response_done or a failure). */
bool gust__http_client_header_line(gust__http_client_fetch *f, const char *p,
                                   size_t n);
int gust__http_client_body_prepare(gust__http_client_fetch *f,
                                   const gust__http1_framing *fr);
int gust__http_client_body_deliver(gust__http_client_fetch *f, const char *p,
                                   size_t n);
void gust__http_client_body_done(gust__http_client_fetch *f);

/* ---- http_client_h2.c --------------------------------------------------- */

/* Starts an HTTP/2 session on conn (TLS done, ALPN "h2"): sends the
 * preface and SETTINGS and reads. conn becomes state H2. Returns 0 or
 * -ENOMEM (conn untouched). */
int gust__http_client_h2_open(gust__http_client_conn *conn);
/* Whether conn can take a new stream (H2, no GOAWAY, ids left). */
bool gust__http_client_h2_usable(const gust__http_client_conn *conn);
/* Sends f's request on a new stream of conn; f->h2 is set. Returns 0,
 * -EAGAIN (conn takes no new stream: GOAWAY, closed, ids used up) or
 * another negative code (nothing sent, f untouched). After 0, f may have
 * ended already (the write failed and the connection failed its fetches):
 * the caller must not touch f again. */
int gust__http_client_h2_submit(gust__http_client_conn *conn,
                                gust__http_client_fetch *f);
/* f ends while its stream is open: the stream is reset (CANCEL) unless it
 * is complete, and forgets f. */
void gust__http_client_h2_detach(gust__http_client_fetch *f);
/* conn is closing: every fetch still on it fails with code and detail. */
void gust__http_client_h2_fail_all(gust__http_client_conn *conn, int code,
                                   const char *detail);
/* Frees conn's session (from conn_free). */
void gust__http_client_h2_free(gust__http_client_conn *conn);

#endif /* GUST_HTTP_CLIENT_INTERNAL_H */
