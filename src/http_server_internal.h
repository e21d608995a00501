/* Private layout of the HTTP/1 server and its connections, shared by
 * http_server.c (the server object and its public calls), and the
 * connection's three files: http1_connection.c (lifecycle: buffers,
 * timers, keep-alive, closing, drain, detach), http1_read.c (reading,
 * parsing and dispatching requests, the back-pressure gate) and
 * http1_write.c (output gathering, response head serialisation, body
 * framing); and http2_connection.c, the HTTP/2 connection, whose streams
 * each carry a request in a gust_http_connection of their own (proto
 * GUST__PROTO_H2) so that the status and header state of a response is
 * shared and only the output calls of http_server.c branch.
 * The layers above use http_server_contract.h instead; fuzz/fuzz_http2.c
 * includes this header to drive connections directly. Not installed. */
#ifndef GUST_HTTP_SERVER_INTERNAL_H
#define GUST_HTTP_SERVER_INTERNAL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "gust/http_server.h"
#include "gust/stream.h"
#include "http1_parser.h"
#include "http_server_contract.h"

/* Where a connection is in its request cycle. */
enum gust__http_state {
    GUST__HTTP_HEAD,    /* waiting for (the rest of) a request head */
    GUST__HTTP_BODY,    /* head parsed, reading the body */
    GUST__HTTP_HANDLER, /* request handed over, not finished yet */
    GUST__HTTP_CLOSING, /* last response going out; no more requests */
    GUST__HTTP_DETACHED, /* handed over (gust_http_request_detach) */
};

/* Response style of the current request. */
enum gust__http_resp { GUST__RESP_NONE, GUST__RESP_RAW, GUST__RESP_STRUCT };

struct gust_http_server {
    gust_tcp_server *tcp;
    gust_http_handler handler;
    gust_http_server_options opts;
    char *protocol;      /* owned copies of the option strings */
    char *server_header; /* "Server: ...\r\n" or "" */
    size_t server_header_len;
    gust_http_connection *conns; /* open connections, doubly linked */
    gust_http_detached *detached; /* handed over, still counted in count */
    size_t count;
    uint64_t requests_total;    /* gust_http_server_get_stats() */
    uint64_t connections_total;
    bool closing_all;
    bool free_pending;   /* freed once the last connection is gone */
    void (*done)(gust_http_server *srv, void *data);
    void *done_data;
    gust_timer done_timer;
    bool done_timer_set;
    gust_timer deadline_timer; /* close_all(): shutdown_timeout */
    bool deadline_set;
    gust_loop *signal_loop; /* close_on_signals() watches SIGTERM/SIGINT here */
    gust_loop *stats_loop;  /* log_stats_on_sigusr1() watches SIGUSR1 here */
    int signals_seen;
};

/* Everything a connection needs only while a request is under way: the
 * input buffer, the parsed head with its header slots, the request and its
 * arena, the body, the response and the gathered output. A connection takes
 * one when bytes arrive and gives it back when it goes idle, to a
 * per-thread free list, so that an idle keep-alive connection costs only
 * its small gust_http_connection (and the next request takes a context
 * whose arena and buffers are already allocated). */
typedef struct gust__http_rq {
    struct gust__http_rq *next_free;
    char peer_ip[64];    /* for logs and remote_ip, formatted when taken */
    uint8_t peer_ip_len;

    /* Input: bytes buf[off, len) not yet consumed; cap is fixed while a
     * request lives, so the slices of its head stay valid. NULL when empty. */
    char *buf;
    size_t off, len, cap;
    size_t parsed_len;   /* head bytes seen by the last INCOMPLETE parse */
    gust_timer resume;   /* resumes parsing after an asynchronous finish */

    /* The current request. */
    gust_arena arena;
    gust_http_request req;
    gust__http1_request head;
    size_t head_slots;   /* head.headers' length (>= head.max_headers) */
    gust__http1_framing framing;
    size_t head_end;     /* offset in buf where the body starts */
    size_t req_end;      /* offset in buf just past this request's bytes */
    uint64_t body_left;  /* LENGTH: body bytes still to read */
    gust__http1_chunked chunked;
    char *body;          /* body assembled in the arena (NULL: in buf) */
    size_t body_len, body_cap;
    bool streaming;      /* body goes to data_received */
    bool body_paused;    /* gust_http_request_pause_body: no reads, no data_received */
    bool body_started;   /* body_left / chunked describe the body being read */
    bool in_headers_received;
    bool skip_body;      /* the delegate answered from headers_received */
    bool discard_failed; /* skipped body too large to read and drop */
    bool finish_called;  /* the delegate's finish (or callback) ran */
    bool cookies_parsed;
    gust_http_args cookies;

    /* The response. */
    int resp_mode;
    int status;
    const char *reason;
    gust_http_headers resp_headers;
    const char *head_line; /* gust__http_response_put_line's, or NULL */
    size_t head_line_len;
    bool headers_sent;
    bool resp_chunked;   /* body sent with chunked framing */
    bool resp_no_body;   /* HEAD, 204, 304 */
    bool resp_close;     /* Connection: close was (to be) sent */
    bool aborted;        /* cut short: the connection closes after it */
    bool resp_len_set;   /* the application set a Content-Length */
    uint64_t resp_len_left; /* body bytes that Content-Length still owes */
    char *sbody;         /* structured body not sent yet (malloc'd) */
    size_t sbody_len, sbody_cap;

    /* Output gathered during a batch, sent with one write. */
    char *out;
    size_t out_len, out_cap;
    /* Back-pressure: no parsing nor reading until the output queued when
     * it began is sent; unsent_seen is what was left at the last check of
     * the write timeout. */
    bool out_blocked;
    size_t unsent_seen;
    /* What the stream held at the last look, and whether it was written
     * since (then it must be asked again). */
    bool queue_stale;
    size_t queue_seen;
} gust__http_rq;

/* What an idle keep-alive connection holds: kept small (see DESIGN.md,
 * "Idle connections hold no buffers"). */
struct gust_http_connection {
    gust_http_connection *prev, *next;
    gust_http_server *srv;
    gust_stream *stream; /* NULL once its close callback has run */
    gust__http_rq *rq;   /* NULL while idle */
    /* The peer address: inline for IPv4/IPv6, else peer_big (malloc'd). */
    union {
        struct sockaddr sa;
        struct sockaddr_in in4;
        struct sockaddr_in6 in6;
    } peer;
    uint8_t peer_len;    /* <= sizeof(struct sockaddr_storage) */
    uint8_t state;       /* enum gust__http_state */
    uint8_t timer_kind;  /* what the timer measures (enum in the .c) */
    bool reading;        /* a stream read is pending */
    bool in_batch;       /* inside process(): responses are gathered */
    bool closed;         /* the stream is closed or closing */
    bool lingering;      /* error sent: discarding input until EOF */
    bool app_owns;       /* the application holds the request until finish() */
    uint8_t proto;       /* GUST__PROTO_H1, or _H2: one HTTP/2 stream */
    bool h2_maybe;       /* no request yet: the HTTP/2 preface may come */
    /* Counts requests, so that a callback due after its request finished
     * can tell it is stale (wrapping is harmless: only the current request
     * is compared). Here, and peer_len in 8 bits, to pack the struct. */
    uint32_t req_seq;
    struct sockaddr *peer_big;
    /* While timer_kind is not T_NONE: the links of the server's deadline
     * queue for that kind (see http1_connection.c), the deadline
     * (INFINITY: suspended while a request is handled) and when the entry
     * is due in its queue (never later than the deadline). */
    gust_http_connection *tprev, *tnext;
    double deadline;     /* loop time when timer_kind runs out */
    double due;
};

/* Grows the malloc'd *buf (*cap bytes) to hold need bytes, doubling from
 * first: the response body and the gathered output. 0 or -ENOMEM (the
 * buffer is then unchanged). */
static inline int gust__http_buf_reserve(char **buf, size_t *cap, size_t need,
                                         size_t first)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? *cap : first;
    while (ncap < need)
        ncap *= 2;
    char *b = realloc(*buf, ncap);
    if (!b)
        return -ENOMEM;
    *buf = b;
    *cap = ncap;
    return 0;
}

/* http1_connection.c */
/* Writes a's IP address (or "unix") to out (n bytes, >= 64), without
 * inet_ntop() for IPv4 (it runs for every request). Returns its length. */
size_t gust__http_format_addr(const struct sockaddr *a, char *out, size_t n);
gust_http_connection *gust__http_conn_new(gust_http_server *srv,
                                          gust_stream *stream,
                                          const struct sockaddr *addr,
                                          socklen_t addrlen);
/* Closes the stream (the connection goes away from its close callback). */
void gust__http_conn_close(gust_http_connection *c);
/* close_all() on an idle connection: a request that arrives within a
 * short grace is answered with Connection: close; then, or at the end of
 * the grace, the connection half-closes and reads to EOF (no reset). */
void gust__http_conn_close_idle(gust_http_connection *c);
/* gust_http_request_pause_body / resume_body. */
int gust__http_conn_pause_body(gust_http_connection *c, bool pause);
/* gust_http_request_detach() once the switching head is gathered. */
int gust__http_conn_detach(gust_http_connection *c, gust_http_detached *slot,
                           const gust_http_detach_ops *ops, void *data,
                           gust_stream **stream, gust_str *leftover);
/* Called by gust_http_request_finish() once the response is complete. */
void gust__http_conn_request_done(gust_http_connection *c);
/* Whether the connection is kept after the current response (E2). */
bool gust__http_conn_will_keep(gust_http_connection *c);
/* Queues bytes for the connection; sent at the end of the batch or now. */
int gust__http_conn_out(gust_http_connection *c, const void *p, size_t n);
int gust__http_conn_flush(gust_http_connection *c);
/* Bytes built in place, after what is gathered: *at gets room for n bytes
 * (0, GUST_ESTREAMCLOSED or -ENOMEM), and _commit adds the first n written
 * there to the output (sent at once outside a batch, as
 * gust__http_conn_out). A response head is built this way: in a buffer on
 * the stack, then copied, its place depended on how deep the call was,
 * and so did its cost. */
int gust__http_conn_out_room(gust_http_connection *c, size_t n, char **at);
int gust__http_conn_out_commit(gust_http_connection *c, size_t n);
/* Writes the start of a structured response (status line and headers);
 * present: which of Date, Server and Content-Length the application set
 * (GUST__HAS_* bits; one pass over the headers finds them all). */
enum { GUST__HAS_DATE = 1, GUST__HAS_SERVER = 2, GUST__HAS_LENGTH = 4 };
int gust__http_conn_write_head(gust_http_connection *c, bool chunked,
                               size_t content_length, bool has_length,
                               unsigned present);
/* gust__http_response_put_header, gust__http_response_put_line,
 * gust__http_request_finish_with (http_server.c) and
 * gust__http_method_name (http1_read.c): the web-to-server contract,
 * declared in http_server_contract.h. */
/* Freed from the server once it has no connections. */
void gust__http_server_conn_gone(gust_http_server *srv);

/* ---- Between the connection's files ------------------------------------
 * http1_connection.c (lifecycle: buffers, timers, closing, keep-alive,
 * detach), http1_read.c (reading and dispatching requests) and
 * http1_write.c (output, response head and body framing). */

/* http1_connection.c */
char *gust__http_conn_buf_get(size_t cap);
bool gust__http_conn_rq_take(gust_http_connection *c);
void gust__http_conn_rq_give_back(gust_http_connection *c);
void gust__http_conn_clear_timer(gust_http_connection *c);
void gust__http_conn_pause_timer(gust_http_connection *c);
void gust__http_conn_set_timer_slow(gust_http_connection *c, int kind);
void gust__http_conn_free(gust_http_connection *c);
void gust__http_conn_on_linger_read(gust_stream *s, int status,
                                    const char *data, size_t len, void *user);
void gust__http_conn_close_after_write(gust_http_connection *c, bool linger);
void gust__http_conn_send_error(gust_http_connection *c, int status,
                                const char *why);

/* http1_read.c */
void gust__http_conn_start_read(gust_http_connection *c);
bool gust__http_conn_can_discard(gust_http_connection *c);
void gust__http_conn_begin_skip(gust_http_connection *c);
void gust__http_conn_next_request(gust_http_connection *c);
void gust__http_conn_process(gust_http_connection *c);
void gust__http_conn_on_resume(gust_timer *t, void *data);

/* http1_write.c */
int gust__http_conn_count_body(gust_http_connection *c, uint64_t n);
int gust__http_conn_send_structured(gust_http_connection *c, bool final);
int gust__http_conn_write_switch_head(gust_http_connection *c);

/* ---- HTTP/2 (http2_connection.c) --------------------------------------
 * An HTTP/2 connection is counted by the server as a detached connection
 * (its gust_http_detached slot, whose close_all sends GOAWAY). Each of its
 * streams is a gust_http_connection with proto GUST__PROTO_H2 whose rq is
 * the request context (taken from the same per-thread cache); the public
 * request and response calls of http_server.c that write or end send
 * through the calls below when c->proto says so. */
enum { GUST__PROTO_H1 = 0, GUST__PROTO_H2 = 1 };

/* A new HTTP/2 connection on stream (ALPN "h2"): counts it. 0 or -ENOMEM
 * (the caller closes the stream). */
int gust__h2_conn_new(gust_http_server *srv, gust_stream *stream,
                      const struct sockaddr *addr, socklen_t addrlen);
/* Prior knowledge: called by gust__http_conn_process() on the first bytes
 * of an HTTP/1 connection (c->h2_maybe). Returns 0 when they are not the
 * HTTP/2 preface (c->h2_maybe is cleared), 1 when more bytes are needed to
 * tell, 2 when c was handed over (c->state is GUST__HTTP_DETACHED: the
 * caller frees it). */
int gust__h2_sniff(gust_http_connection *c);
/* Upgrade: h2c. Called from start_request() with the head of c's request
 * set up; returns 1 when c was handed over (101 sent; the request is
 * stream 1 of the new connection, c is GUST__HTTP_DETACHED), 0 when the
 * request is not an acceptable upgrade (served over HTTP/1). */
int gust__h2_try_upgrade(gust_http_connection *c);
/* The per-stream output calls (c->proto == GUST__PROTO_H2). */
int gust__h2_write_raw(gust_http_connection *c, const void *p, size_t n);
int gust__h2_flush(gust_http_connection *c,
                   void (*cb)(gust_http_request *, int, void *), void *data);
int gust__h2_sendfile(gust_http_connection *c, int fd, off_t offset,
                      size_t len, void (*cb)(gust_http_request *, int, void *),
                      void *data);
int gust__h2_finish(gust_http_connection *c);
int gust__h2_abort(gust_http_connection *c);
int gust__h2_pause_body(gust_http_connection *c, bool pause);
const struct sockaddr *gust__h2_peer(const gust_http_connection *c,
                                     socklen_t *len);

/* http1_read.c, shared with http2_connection.c: X-Real-Ip & co. into
 * c->rq->req (xheaders). */
void gust__http_conn_apply_xheaders(gust_http_connection *c);
/* r->host from the Host field or authority (NULL: none, ""), and
 * r->host_name, its name without the port, lowercased in a. Shared with
 * HTTP/2 (:authority). */
void gust__http_request_set_host(gust_http_request *r, gust_arena *a,
                                 const char *host);
/* Once q's body is complete (q->req.body set, unless streamed): form
 * arguments and files from the body, then arguments = query + body
 * arguments. An unparsable form is logged under module and ignored. */
void gust__http_request_collect_args(gust__http_rq *q, const char *module);
/* Hands r to the server's handler: the delegate's finish, the callback,
 * or a 404 when there is neither. */
void gust__http_server_run_handler(gust_http_server *srv, gust_http_request *r);

/* What the connection timer measures. */
enum {
    GUST__T_NONE, GUST__T_IDLE, GUST__T_HEAD, GUST__T_BODY, GUST__T_LINGER,
    GUST__T_GRACE, GUST__T_WRITE
};

/* Room after the largest head for body bytes and pipelined requests. */
#define GUST__HTTP_BUF_SLACK (16 * 1024)

static inline const gust_http_server_options *
gust__http_conn_opts_of(gust_http_connection *c)
{
    return &c->srv->opts;
}

static inline void gust__http_conn_set_timer(gust_http_connection *c, int kind)
{
    /* The keep-alive case: still queued from the last idle period, the
     * deadline moves in place (later, so `due` stays no later than it). */
    if (kind == GUST__T_IDLE && c->timer_kind == GUST__T_IDLE && c->stream) {
        double d = gust_loop_time(gust_stream_loop(c->stream)) +
                   gust__http_conn_opts_of(c)->idle_connection_timeout;
        if (d >= c->due) {
            c->deadline = d;
            return;
        }
    }
    gust__http_conn_set_timer_slow(c, kind);
}

#endif /* GUST_HTTP_SERVER_INTERNAL_H */
