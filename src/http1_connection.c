/* One HTTP/1 server connection (Tornado's HTTP1ServerConnection and
 * HTTP1Connection): reads request heads and bodies into a buffer of its own,
 * parses every request already buffered before returning to the loop,
 * gathers the responses of one batch into one write, and applies the
 * keep-alive rules (shared/TORNADO_EXAMPLES.md E2) and the limits. */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "gust/error.h"
#include "gust/log.h"
#include "gust/tls.h"
#include "http_server_internal.h"
#include "metrics_internal.h"

/* What the connection timer measures. */
enum { T_NONE, T_IDLE, T_HEAD, T_BODY, T_LINGER, T_GRACE, T_WRITE };

/* close_all(): how long an idle connection gets to send one more request,
 * answered with Connection: close. Its client may have written it already
 * (it crosses our close on the wire): a new connection about to send its
 * first request, a keep-alive one its next. Closing at once loses it. */
#define DRAIN_GRACE 2.0

/* How long a connection that sent an error keeps reading (and discarding)
 * so that closing does not reset the connection before the client has
 * read the answer. */
#define LINGER_SECONDS 2.0

/* Largest body read and dropped after the delegate answered from
 * headers_received, to keep the connection (bounded by max_body_size too). */
#define DISCARD_MAX (64 * 1024)

/* Room after the largest head for body bytes and pipelined requests. */
#define BUF_SLACK (16 * 1024)

/* Input buffers are reused across connections of this thread, so that a
 * keep-alive connection that goes idle gives its buffer back and takes one
 * again without malloc. */
#define BUF_CACHE 16
static _Thread_local struct {
    char *buf[BUF_CACHE];
    size_t cap[BUF_CACHE];
    int n;
} buf_cache;

static char *buf_get(size_t cap)
{
    for (int i = buf_cache.n - 1; i >= 0; i--) {
        if (buf_cache.cap[i] == cap) {
            char *b = buf_cache.buf[i];
            buf_cache.n--;
            buf_cache.buf[i] = buf_cache.buf[buf_cache.n];
            buf_cache.cap[i] = buf_cache.cap[buf_cache.n];
            return b;
        }
    }
    return malloc(cap);
}

static void buf_put(char *b, size_t cap)
{
    if (buf_cache.n < BUF_CACHE) {
        buf_cache.buf[buf_cache.n] = b;
        buf_cache.cap[buf_cache.n++] = cap;
    } else {
        free(b);
    }
}

/* Request contexts given back by idle connections, reused by the next
 * request of any connection of this thread: their arena's first block, the
 * response body and output buffers come along, so a keep-alive request
 * normally costs no malloc. Bounded: a burst of busy connections does not
 * leave its contexts behind forever. */
#define RQ_CACHE 32
#define RQ_KEEP_BUF (16 * 1024)
static _Thread_local struct {
    gust__http_rq *free;
    int n;
} rq_cache;

/* Formatted for every request (the context is not the connection's for
 * long), so IPv4 avoids inet_ntop(), whose sprintf() cost as much as the
 * rest of a keep-alive request. */
static void format_ipv4(const unsigned char *b, char *out)
{
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            *out++ = (char)('0' + v / 100);
        if (v >= 10)
            *out++ = (char)('0' + v / 10 % 10);
        *out++ = (char)('0' + v % 10);
        *out++ = i < 3 ? '.' : 0;
    }
}

static void format_peer(const gust_http_connection *c, char *out, size_t n)
{
    const struct sockaddr *a = c->peer_big ? c->peer_big : &c->peer.sa;
    if (a->sa_family == AF_INET && n >= INET_ADDRSTRLEN)
        format_ipv4((const unsigned char *)&((const struct sockaddr_in *)a)->sin_addr,
                    out);
    else if (a->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, out,
                  (socklen_t)n);
    else if (a->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, out,
                  (socklen_t)n);
    else
        snprintf(out, n, "unix");
}

/* Takes a request context for c (c->rq). Returns false if out of memory. */
static bool rq_take(gust_http_connection *c)
{
    gust__http_rq *q = rq_cache.free;
    if (q) {
        rq_cache.free = q->next_free;
        rq_cache.n--;
    } else {
        q = calloc(1, sizeof *q);
        if (!q)
            return false;
        gust_arena_init(&q->arena, 0);
    }
    /* Field slots for this server's max_header_count (the cache serves
     * every server of the thread: grown, never shrunk). */
    size_t slots = c->srv->opts.max_header_count;
    if (q->head_slots < slots) {
        gust__http1_header *h = realloc(q->head.headers, slots * sizeof *h);
        if (!h) {
            q->next_free = rq_cache.free;
            rq_cache.free = q;
            rq_cache.n++;
            return false;
        }
        q->head.headers = h;
        q->head_slots = slots;
    }
    q->head.max_headers = slots;
    q->next_free = NULL;
    q->buf = NULL;
    q->off = q->len = q->parsed_len = 0;
    q->cap = c->srv->opts.max_header_size + BUF_SLACK;
    q->out_len = q->sbody_len = 0;
    q->req.connection = NULL; /* no request yet: send_error checks it */
    q->resp_mode = GUST__RESP_NONE;
    q->headers_sent = q->aborted = q->resp_len_set = false;
    q->out_blocked = false;
    q->queue_stale = true;
    gust_timer_init(gust_stream_loop(c->stream), &q->resume);
    format_peer(c, q->peer_ip, sizeof q->peer_ip);
    c->rq = q;
    return true;
}

/* Gives c's context back: the request is over and nothing is buffered. */
static void rq_give_back(gust_http_connection *c)
{
    gust__http_rq *q = c->rq;
    if (!q)
        return;
    c->rq = NULL;
    gust_timer_stop(&q->resume);
    if (q->buf)
        buf_put(q->buf, q->cap);
    q->buf = NULL;
    if (rq_cache.n < RQ_CACHE) {
        gust_arena_reset(&q->arena); /* runs the request's cleanups */
        /* A large response leaves no large buffer parked in the cache. */
        if (q->out_cap > RQ_KEEP_BUF) {
            free(q->out);
            q->out = NULL;
            q->out_cap = 0;
        }
        if (q->sbody_cap > RQ_KEEP_BUF) {
            free(q->sbody);
            q->sbody = NULL;
            q->sbody_cap = 0;
        }
        q->next_free = rq_cache.free;
        rq_cache.free = q;
        rq_cache.n++;
        return;
    }
    gust_arena_close(&q->arena);
    free(q->out);
    free(q->sbody);
    free(q->head.headers);
    free(q);
}

static void process(gust_http_connection *c);
static void start_read(gust_http_connection *c);

static const gust_http_server_options *opts_of(gust_http_connection *c)
{
    return &c->srv->opts;
}

/* ---- Timers ------------------------------------------------------------
 *
 * A connection waiting with a deadline (idle, a head or body trickling in,
 * lingering) is in one of its server's deadline queues, one per duration.
 * Every entry of a queue was given the same duration, later entries later,
 * so each queue is in deadline order by construction and one timer per
 * server, armed for the earliest head, serves them all: an idle connection
 * holds two links and two times instead of a timer of its own, and the
 * loop's timer heap one entry per server instead of one per connection.
 *
 * Keep-alive requests cost no queue change: a request starting suspends
 * the idle deadline (deadline = INFINITY) and going idle again moves it
 * later, both in place. So a queue is ordered by `due`, when the entry was
 * last placed (plus its duration), which is never later than its deadline;
 * when the timer finds a head due but not expired, it places it again,
 * by its deadline now (or drops it, if suspended). */

enum { Q_IDLE, Q_HEAD, Q_BODY, Q_SHORT, Q_WRITE, Q_COUNT };

typedef struct conn_queue {
    gust_http_connection *head, *tail;
} conn_queue;

/* A server's queues, made when one of its connections first needs a
 * deadline and freed with its last connection. The server struct is not
 * this file's: they are found by server, in a short per-thread list. */
typedef struct conn_timers {
    struct conn_timers *next;
    gust_http_server *srv;
    conn_queue q[Q_COUNT];
    double timer_at;     /* when the timer is armed for */
    gust_timer timer;
} conn_timers;

static _Thread_local conn_timers *tl_timers;

/* The queue of each kind of deadline (T_LINGER and T_GRACE: both 2 s). */
static const uint8_t queue_of[] = {
    [T_NONE] = Q_IDLE, [T_IDLE] = Q_IDLE, [T_HEAD] = Q_HEAD,
    [T_BODY] = Q_BODY, [T_LINGER] = Q_SHORT, [T_GRACE] = Q_SHORT,
    [T_WRITE] = Q_WRITE,
};

static conn_timers *timers_find(const gust_http_server *srv)
{
    conn_timers *t = tl_timers;
    while (t && t->srv != srv)
        t = t->next;
    return t;
}

static void on_timers(gust_timer *timer, void *data);

static conn_timers *timers_get(gust_http_connection *c)
{
    conn_timers *t = timers_find(c->srv);
    if (t || !c->stream)
        return t;
    t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->srv = c->srv;
    gust_timer_init(gust_stream_loop(c->stream), &t->timer);
    t->next = tl_timers;
    tl_timers = t;
    return t;
}

/* Frees srv's queues (it has no connection left). */
static void timers_free(const gust_http_server *srv)
{
    for (conn_timers **p = &tl_timers; *p; p = &(*p)->next) {
        if ((*p)->srv == srv) {
            conn_timers *t = *p;
            *p = t->next;
            gust_timer_stop(&t->timer);
            free(t);
            return;
        }
    }
}

static void timers_arm(conn_timers *t, double at)
{
    if (gust_timer_active(&t->timer) && t->timer_at <= at)
        return;
    t->timer_at = at;
    if (gust_timer_start_at(&t->timer, at, 0, on_timers, t) < 0)
        t->timer_at = 0; /* retried by the next deadline set */
}

static void unlink_timer(gust_http_connection *c, conn_timers *t)
{
    conn_queue *q = &t->q[queue_of[c->timer_kind]];
    if (c->tprev)
        c->tprev->tnext = c->tnext;
    else
        q->head = c->tnext;
    if (c->tnext)
        c->tnext->tprev = c->tprev;
    else
        q->tail = c->tprev;
    c->tprev = c->tnext = NULL;
    c->timer_kind = T_NONE;
}

/* Links c into its kind's queue, due at its deadline, after every entry
 * due no later. */
static void link_timer(gust_http_connection *c, conn_timers *t, int kind)
{
    conn_queue *q = &t->q[queue_of[kind]];
    c->due = c->deadline;
    /* Usually last: entries are placed in time order with one duration.
     * An idle head placed again (on_timers) may go a little before. */
    gust_http_connection *after = q->tail;
    while (after && after->due > c->due)
        after = after->tprev;
    c->tprev = after;
    c->tnext = after ? after->tnext : q->head;
    if (c->tnext)
        c->tnext->tprev = c;
    else
        q->tail = c;
    if (after)
        after->tnext = c;
    else
        q->head = c;
    c->timer_kind = (uint8_t)kind;
    if (!after)
        timers_arm(t, c->deadline);
}

static void close_after_write(gust_http_connection *c, bool linger);
static void set_timer_slow(gust_http_connection *c, int kind);

static void timeout(gust_http_connection *c, int kind)
{
    char ip[64];
    format_peer(c, ip, sizeof ip);
    if (kind == T_HEAD) {
        gust_log_warning("http", "%s: request head not complete in time, "
                         "closing", ip);
    } else if (kind == T_BODY) {
        gust_log_warning("http", "%s: request body timed out, closing", ip);
    } else if (kind == T_WRITE) {
        /* Nothing new is queued while the connection is held back, so
         * less left unsent means the client reads, however slowly. */
        size_t left = c->stream ? gust_stream_write_buffer_size(c->stream) : 0;
        if (c->rq && left < c->rq->unsent_seen) {
            c->rq->unsent_seen = left;
            set_timer_slow(c, T_WRITE);
            return;
        }
        gust_log_warning("http", "%s: client read none of %zu unsent response "
                         "bytes in %g s, closing", ip, left,
                         opts_of(c)->write_timeout);
    } else if (kind == T_GRACE) {
        /* Draining and no request came: a half-close, then reading to EOF,
         * so that a request crossing our FIN gets no reset. */
        close_after_write(c, true);
        return;
    }
    gust__http_conn_close(c);
}

static void on_timers(gust_timer *timer, void *data)
{
    conn_timers *t = data;
    double now = gust_loop_time(timer->loop);
    double next = 0;
    bool any = false;
    /* Closing only starts here (the connections go away later, from their
     * close callbacks), so t and the queues stay valid throughout. */
    for (int i = 0; i < Q_COUNT; i++) {
        gust_http_connection *c;
        while ((c = t->q[i].head) && c->due <= now) {
            int kind = c->timer_kind;
            unlink_timer(c, t);
            if (c->deadline <= now)
                timeout(c, kind);
            else if (c->deadline != INFINITY)
                link_timer(c, t, kind); /* moved later since: wait on */
            /* else suspended: a request is under way, it leaves the queue */
        }
        if (c && (!any || c->due < next)) {
            next = c->due;
            any = true;
        }
    }
    if (any)
        timers_arm(t, next);
}

/* Ends c's deadline, if it has one. */
static void clear_timer(gust_http_connection *c)
{
    if (c->timer_kind != T_NONE)
        unlink_timer(c, timers_find(c->srv));
}

/* A request head arrived: no deadline while it is handled. An idle one is
 * only suspended, in place (see above). */
static void pause_timer(gust_http_connection *c)
{
    if (c->timer_kind == T_IDLE)
        c->deadline = INFINITY;
    else
        clear_timer(c);
}

/* Gives c a deadline of kind (T_NONE: none), replacing the one it had. */
static void set_timer_slow(gust_http_connection *c, int kind)
{
    /* A trickled head keeps its first deadline: that is the point of it. */
    if (kind == T_HEAD && c->timer_kind == T_HEAD)
        return;
    double secs;
    const gust_http_server_options *o = opts_of(c);
    switch (kind) {
    case T_IDLE: secs = o->idle_connection_timeout; break;
    case T_HEAD: secs = o->header_timeout; break;
    case T_BODY: secs = o->body_timeout; break;
    case T_LINGER: secs = LINGER_SECONDS; break;
    case T_GRACE: secs = DRAIN_GRACE; break;
    case T_WRITE: secs = o->write_timeout; break;
    default: secs = -1; break;
    }
    clear_timer(c);
    if (secs < 0)
        return;
    conn_timers *t = timers_get(c);
    if (!t)
        return; /* out of memory: no deadline, as with no timeout */
    c->deadline = gust_loop_time(t->timer.loop) + secs;
    link_timer(c, t, kind);
}

static inline void set_timer(gust_http_connection *c, int kind)
{
    /* The keep-alive case: still queued from the last idle period, the
     * deadline moves in place (later, so `due` stays no later than it). */
    if (kind == T_IDLE && c->timer_kind == T_IDLE && c->stream) {
        double d = gust_loop_time(gust_stream_loop(c->stream)) +
                   opts_of(c)->idle_connection_timeout;
        if (d >= c->due) {
            c->deadline = d;
            return;
        }
    }
    set_timer_slow(c, kind);
}

void gust__http_conn_close_idle(gust_http_connection *c)
{
    if (!c->closed)
        set_timer(c, T_GRACE);
}

/* ---- Output ------------------------------------------------------------ */

/* Makes room for n more gathered bytes. */
static int out_reserve(gust_http_connection *c, size_t n)
{
    return gust__http_buf_reserve(&c->rq->out, &c->rq->out_cap,
                                  c->rq->out_len + n, 4096);
}

int gust__http_conn_out(gust_http_connection *c, const void *p, size_t n)
{
    if (c->closed || !c->stream || !c->rq)
        return GUST_ESTREAMCLOSED;
    if (n == 0)
        return 0;
    gust__metrics_bytes_out(n);
    /* Outside a batch, with nothing gathered, the stream takes it at once;
     * so does a large body, after what was gathered before it. */
    if ((!c->in_batch && c->rq->out_len == 0) || n >= 64 * 1024) {
        int rc = gust__http_conn_flush(c);
        if (rc < 0)
            return rc;
        c->rq->queue_stale = true;
        return gust_stream_write(c->stream, p, n, NULL, NULL);
    }
    int rc = out_reserve(c, n);
    if (rc < 0)
        return rc;
    memcpy(c->rq->out + c->rq->out_len, p, n);
    c->rq->out_len += n;
    return 0;
}

int gust__http_conn_out_room(gust_http_connection *c, size_t n, char **at)
{
    if (c->closed || !c->stream || !c->rq)
        return GUST_ESTREAMCLOSED;
    int rc = out_reserve(c, n);
    if (rc < 0)
        return rc;
    *at = c->rq->out + c->rq->out_len;
    return 0;
}

int gust__http_conn_out_commit(gust_http_connection *c, size_t n)
{
    c->rq->out_len += n;
    gust__metrics_bytes_out(n);
    return c->in_batch ? 0 : gust__http_conn_flush(c);
}

int gust__http_conn_flush(gust_http_connection *c)
{
    if (!c->rq || c->rq->out_len == 0)
        return 0;
    if (c->closed || !c->stream) {
        c->rq->out_len = 0;
        return GUST_ESTREAMCLOSED;
    }
    int rc = gust_stream_write(c->stream, c->rq->out, c->rq->out_len, NULL, NULL);
    c->rq->out_len = 0;
    c->rq->queue_stale = true;
    /* A large gathered buffer is not worth keeping on an idle connection. */
    if (c->rq->out_cap > 256 * 1024) {
        free(c->rq->out);
        c->rq->out = NULL;
        c->rq->out_cap = 0;
    }
    return rc;
}

/* ---- Back-pressure -------------------------------------------------------
 *
 * A client that pipelines requests and reads none of the answers would
 * otherwise have them pile up in the stream's write queue without bound.
 * Past max_unsent_output bytes not yet taken by the kernel, the connection
 * stops parsing and reading (TCP then holds the client back), and goes on
 * once all of them are out; while held, write_timeout closes a client
 * that takes none of them. */

static bool output_over(gust_http_connection *c)
{
    gust__http_rq *q = c->rq;
    q->queue_seen = gust_stream_write_buffer_size(c->stream);
    q->queue_stale = false;
    return q->out_len + q->queue_seen > opts_of(c)->max_unsent_output;
}

/* output_over() without asking the stream again while nothing was written
 * to it since (a pipelined batch only gathers): per request, that call
 * cost about 1% of hello_http's instructions. */
static inline bool output_maybe_over(gust_http_connection *c)
{
    gust__http_rq *q = c->rq;
    return q->queue_stale ||
           q->out_len + q->queue_seen > opts_of(c)->max_unsent_output;
}

static void on_drained(gust_stream *s, int status, void *user)
{
    (void)s;
    gust_http_connection *c = user;
    c->rq->out_blocked = false;
    if (status < 0 || c->closed)
        return; /* the close callback follows */
    if (c->timer_kind == T_WRITE)
        clear_timer(c);
    process(c);
}

/* Holds c back until what is queued now has all been sent. c->rq is set. */
static void hold_output(gust_http_connection *c)
{
    if (c->rq->out_blocked)
        return;
    gust__http_conn_flush(c);
    if (c->closed)
        return;
    if (gust_stream_write(c->stream, "", 0, on_drained, c) < 0) {
        gust__http_conn_close(c);
        return;
    }
    c->rq->out_blocked = true;
    c->rq->unsent_seen = gust_stream_write_buffer_size(c->stream);
    set_timer(c, T_WRITE);
}

/* ---- Closing ----------------------------------------------------------- */

static void conn_free(gust_http_connection *c)
{
    gust_http_server *srv = c->srv;
    bool detached = c->state == GUST__HTTP_DETACHED;
    clear_timer(c);
    rq_give_back(c);
    free(c->peer_big);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
    if (detached)
        return; /* counted by its gust_http_detached from now on */
    srv->count--;
    gust__metrics_conn(-1);
    if (srv->count == 0)
        timers_free(srv);
    gust__http_server_conn_gone(srv);
}

static bool request_alive(const gust_http_connection *c)
{
    return c->app_owns;
}

static void on_close(gust_stream *stream, void *data)
{
    (void)stream;
    gust_http_connection *c = data;
    c->closed = true;
    c->reading = false;
    clear_timer(c);
    if (c->rq)
        gust_timer_stop(&c->rq->resume);
    /* c->stream stays set during the delegate's call: a request finished
     * from in there (a handler finishing in on_connection_close) sees
     * c->closed and leaves the free to the code below. */
    if (request_alive(c)) {
        const gust_http_delegate *d = c->srv->handler.delegate;
        if (d && d->on_connection_close)
            d->on_connection_close(&c->rq->req, c->srv->handler.data);
    }
    c->stream = NULL;
    /* The request lives until the application finishes it. */
    if (request_alive(c))
        return;
    conn_free(c);
}

void gust__http_conn_close(gust_http_connection *c)
{
    if (c->state == GUST__HTTP_DETACHED)
        return; /* the stream is not ours (see gust_http_detached) */
    if (c->stream && !c->closed) {
        c->closed = true;
        gust_stream_close(c->stream);
    }
}

static void on_linger_read(gust_stream *s, int status, const char *data,
                           size_t len, void *user)
{
    (void)s, (void)data, (void)len;
    gust_http_connection *c = user;
    c->reading = false;
    if (status < 0 || c->closed)
        return;
    if (gust_stream_read_bytes(c->stream, 64 * 1024, GUST_READ_PARTIAL,
                               on_linger_read, c) == 0)
        c->reading = true;
    else
        gust__http_conn_close(c);
}

/* Once the last response is out: half-close, then read until the client
 * closes (or LINGER_SECONDS), so unread input does not turn our close into
 * a reset that destroys the response in flight. */
static void on_last_written(gust_stream *s, int status, void *user)
{
    gust_http_connection *c = user;
    if (status < 0 || c->closed)
        return;
    if (!c->lingering) { /* a normal close with no input left unread */
        gust__http_conn_close(c);
        return;
    }
    shutdown(gust_stream_fd(s), SHUT_WR);
    set_timer(c, T_LINGER);
    if (!c->reading) {
        if (gust_stream_read_bytes(s, 64 * 1024, GUST_READ_PARTIAL,
                                   on_linger_read, c) == 0)
            c->reading = true;
        else
            gust__http_conn_close(c);
    }
}

/* Sends what is gathered and closes once it is out; lingers (see
 * on_last_written) after an error or when input is left unread, the cases
 * where the client may still be sending. */
static void close_after_write(gust_http_connection *c, bool linger)
{
    c->state = GUST__HTTP_CLOSING;
    c->lingering = linger;
    if (c->closed || !c->stream)
        return;
    clear_timer(c);
    if (c->rq && c->rq->out_len) {
        gust_stream_write(c->stream, c->rq->out, c->rq->out_len, NULL, NULL);
        c->rq->out_len = 0;
    }
    if (gust_stream_write(c->stream, "", 0, on_last_written, c) < 0)
        gust__http_conn_close(c);
}

/* Bad input: one log line, a short answer, close. */
static void send_error(gust_http_connection *c, int status, const char *why)
{
    gust_log_warning("http", "%s: %d %s", c->rq->peer_ip, status,
                     why ? why : "bad request");
    gust__metrics_request(NULL, status, 0);
    if (c->rq->req.connection) {
        /* A delegate saw the head: it learns of the close instead. */
        c->rq->resp_close = true;
    }
    if (!c->rq->headers_sent && c->rq->resp_mode == GUST__RESP_NONE) {
        char line[160];
        const char *reason = gust_http_reason(status);
        int n = snprintf(line, sizeof line,
                         "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n"
                         "Connection: close\r\n\r\n",
                         status, reason ? reason : "Error");
        gust__http_conn_out(c, line, (size_t)n);
    }
    close_after_write(c, true);
}

/* ---- Reading ----------------------------------------------------------- */

static void on_read(gust_stream *s, int status, const char *data, size_t len,
                    void *user)
{
    gust_http_connection *c = user;
    c->reading = false;
    if (status < 0 || c->closed)
        return; /* the close callback follows */
    if (c->lingering) {
        on_linger_read(s, status, data, len, user);
        return;
    }
    if (c->state == GUST__HTTP_CLOSING)
        return; /* input after the last request is dropped */
    if (!c->rq && !rq_take(c)) {
        gust__http_conn_close(c);
        return;
    }
    if (!c->rq->buf) {
        /* Taken only when bytes arrive: an idle connection holds none. */
        c->rq->buf = buf_get(c->rq->cap);
        if (!c->rq->buf) {
            gust__http_conn_close(c);
            return;
        }
        c->rq->off = c->rq->len = 0;
    }
    if (len > c->rq->cap - c->rq->len)
        len = c->rq->cap - c->rq->len; /* cannot happen: we asked for at most that */
    memcpy(c->rq->buf + c->rq->len, data, len);
    c->rq->len += len;
    gust__metrics_bytes_in(len);
    if (c->state == GUST__HTTP_HANDLER) {
        start_read(c); /* pipelined input waits in buf */
        return;
    }
    if (c->state == GUST__HTTP_BODY)
        clear_timer(c); /* restarted if the body is still short */
    process(c);
}

static void start_read(gust_http_connection *c)
{
    if (c->reading || c->closed || !c->stream ||
        c->state == GUST__HTTP_CLOSING)
        return;
    /* A paused body is held back by TCP flow control, not buffered. */
    if (c->state == GUST__HTTP_BODY && c->rq && c->rq->body_paused)
        return;
    /* Bytes after an upgrade request may belong to the next protocol
     * (gust_http_request_detach): they stay in the stream. */
    if (c->state == GUST__HTTP_HANDLER && c->rq->framing.connection_upgrade)
        return;
    if (c->rq && (c->rq->out_blocked || output_over(c))) {
        hold_output(c); /* reads again once the client has read */
        return;
    }
    size_t room = c->rq ? c->rq->cap - c->rq->len
                        : c->srv->opts.max_header_size + BUF_SLACK;
    if (room == 0)
        return; /* full while a request runs: resumes after it */
    int rc = gust_stream_read_bytes(c->stream, room, GUST_READ_PARTIAL,
                                    on_read, c);
    if (rc == 0)
        c->reading = true;
    else
        gust__http_conn_close(c);
}

/* ---- Requests ---------------------------------------------------------- */

static char *dup_slice(gust_http_connection *c, gust__http1_slice s)
{
    return gust_arena_strndup(&c->rq->arena, s.ptr, s.len);
}

/* Validated X-headers (xheaders option). */
static void apply_xheaders(gust_http_connection *c)
{
    gust_http_request *r = &c->rq->req;
    gust_str v = gust_http_headers_get_first(&r->headers, GUST_STR("X-Real-Ip"));
    if (!v.ptr) {
        v = gust_http_headers_get_first(&r->headers,
                                        GUST_STR("X-Forwarded-For"));
        if (v.ptr) { /* the last hop */
            const char *comma = memrchr(v.ptr, ',', v.len);
            if (comma) {
                v.len -= (size_t)(comma + 1 - v.ptr);
                v.ptr = comma + 1;
            }
        }
    }
    if (v.ptr) {
        while (v.len && (*v.ptr == ' ' || *v.ptr == '\t'))
            v.ptr++, v.len--;
        while (v.len && (v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t'))
            v.len--;
        char ip[INET6_ADDRSTRLEN + 1];
        unsigned char bin[sizeof(struct in6_addr)];
        if (v.len && v.len < sizeof ip) {
            memcpy(ip, v.ptr, v.len);
            ip[v.len] = 0;
            if (inet_pton(AF_INET, ip, bin) == 1 ||
                inet_pton(AF_INET6, ip, bin) == 1) {
                char *cp = gust_arena_strdup(&c->rq->arena, ip);
                if (cp)
                    r->remote_ip = cp;
            }
        }
    }
    gust_str p = gust_http_headers_get_first(&r->headers, GUST_STR("X-Scheme"));
    if (!p.ptr) {
        p = gust_http_headers_get_first(&r->headers,
                                        GUST_STR("X-Forwarded-Proto"));
        if (p.ptr) {
            const char *comma = memrchr(p.ptr, ',', p.len);
            if (comma) {
                p.len -= (size_t)(comma + 1 - p.ptr);
                p.ptr = comma + 1;
            }
            while (p.len && *p.ptr == ' ')
                p.ptr++, p.len--;
            while (p.len && p.ptr[p.len - 1] == ' ')
                p.len--;
        }
    }
    if (gust_str_eq_nocase(p, GUST_STR("http")))
        r->protocol = "http";
    else if (gust_str_eq_nocase(p, GUST_STR("https")))
        r->protocol = "https";
}

static const char *const method_names[] = {
    [GUST_HTTP_GET] = "GET",         [GUST_HTTP_HEAD] = "HEAD",
    [GUST_HTTP_POST] = "POST",       [GUST_HTTP_PUT] = "PUT",
    [GUST_HTTP_DELETE] = "DELETE",   [GUST_HTTP_PATCH] = "PATCH",
    [GUST_HTTP_OPTIONS] = "OPTIONS", [GUST_HTTP_CONNECT] = "CONNECT",
    [GUST_HTTP_TRACE] = "TRACE",
};

const char *gust__http_method_name(gust_http_method m)
{
    return m > GUST_HTTP_OTHER && m <= GUST_HTTP_TRACE ? method_names[m]
                                                        : NULL;
}

/* The method as a number, and a constant string for the known ones, so
 * that neither needs a copy nor a strcmp later. */
static gust_http_method method_of(gust__http1_slice m, const char **name)
{
    gust_http_method id = GUST_HTTP_OTHER;
    switch (m.len) {
    case 3:
        id = m.ptr[0] == 'G' ? GUST_HTTP_GET : GUST_HTTP_PUT;
        break;
    case 4:
        id = m.ptr[0] == 'H' ? GUST_HTTP_HEAD : GUST_HTTP_POST;
        break;
    case 5:
        id = m.ptr[0] == 'P' ? GUST_HTTP_PATCH : GUST_HTTP_TRACE;
        break;
    case 6:
        id = GUST_HTTP_DELETE;
        break;
    case 7:
        id = m.ptr[0] == 'O' ? GUST_HTTP_OPTIONS : GUST_HTTP_CONNECT;
        break;
    }
    if (id != GUST_HTTP_OTHER && memcmp(m.ptr, method_names[id], m.len) != 0)
        id = GUST_HTTP_OTHER;
    *name = method_names[id];
    return id;
}

/* Fills c->rq->req from the parsed head. Returns 0 or -ENOMEM. */
static int setup_request(gust_http_connection *c)
{
    gust_http_request *r = &c->rq->req;
    gust__http1_request *h = &c->rq->head;
    gust_arena_reset(&c->rq->arena);
    memset(r, 0, sizeof *r);
    c->req_seq++;
    c->srv->requests_total++;
    r->arena = &c->rq->arena;
    r->method_id = method_of(h->method, &r->method);
    if (r->method_id == GUST_HTTP_OTHER)
        r->method = dup_slice(c, h->method);
    r->uri = dup_slice(c, h->target);
    if (!r->method || !r->uri)
        return -ENOMEM;
    const char *q = memchr(r->uri, '?', h->target.len);
    if (q) {
        r->path = gust_arena_strndup(&c->rq->arena, r->uri, (size_t)(q - r->uri));
        r->query = q + 1;
    } else {
        r->path = r->uri;
        r->query = "";
    }
    r->version_minor = h->minor_version ? 1 : 0;
    r->version = r->version_minor ? "HTTP/1.1" : "HTTP/1.0";
    gust_http_headers_init(&r->headers, &c->rq->arena);
    if (gust_http_headers_reserve(&r->headers, h->num_headers ? h->num_headers : 1))
        return -ENOMEM;
    for (size_t i = 0; i < h->num_headers; i++) {
        gust__http1_header *f = &h->headers[i];
        gust_http_headers_add(&r->headers, gust_str_make(f->name.ptr, f->name.len),
                              gust_str_make(f->value.ptr, f->value.len),
                              GUST_HEADER_TRUSTED);
    }
    gust_http_args_init(&r->query_arguments, &c->rq->arena);
    gust_http_args_init(&r->body_arguments, &c->rq->arena);
    gust_http_args_init(&r->arguments, &c->rq->arena);
    gust_http_files_init(&r->files, &c->rq->arena);
    if (*r->query) {
        if (gust_http_args_parse_urlencoded(&r->query_arguments,
                                            gust_str_cstr(r->query)))
            return -ENOMEM;
    }
    r->remote_ip = c->rq->peer_ip;
    r->protocol = c->srv->protocol ? c->srv->protocol
                  : c->stream && gust_stream_is_tls(c->stream) ? "https"
                                                               : "http";
    if (c->srv->opts.xheaders)
        apply_xheaders(c);
    gust__http1_slice host = c->rq->framing.host;
    if (!host.ptr && h->target.len > 7 &&
        (strncasecmp(r->uri, "http://", 7) == 0 ||
         strncasecmp(r->uri, "https://", 8) == 0)) {
        /* absolute-form: the authority names the host */
        const char *a = strstr(r->uri, "//") + 2;
        size_t n = strcspn(a, "/?");
        host.ptr = a;
        host.len = n;
    }
    r->host = host.ptr ? dup_slice(c, host) : "";
    gust_str hn = gust_str_cstr(r->host);
    int port;
    if (host.ptr && gust_http_split_host_port(hn, &hn, &port) == 0) {
        char *lower = gust_arena_strndup(&c->rq->arena, hn.ptr, hn.len);
        if (lower)
            for (char *p = lower; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p + 32);
        r->host_name = lower ? lower : "";
    } else {
        r->host_name = r->host;
    }
    r->start_time = gust_loop_time(gust_stream_loop(c->stream));
    r->connection = c;
    r->body = gust_str_make("", 0);

    c->rq->resp_mode = GUST__RESP_NONE;
    c->rq->status = 200;
    c->rq->reason = NULL;
    c->rq->head_line = NULL;
    c->rq->head_line_len = 0;
    gust_http_headers_init(&c->rq->resp_headers, &c->rq->arena);
    c->rq->headers_sent = c->rq->resp_chunked = c->rq->resp_no_body = c->rq->resp_close = false;
    c->rq->aborted = c->rq->resp_len_set = false;
    c->rq->sbody_len = 0;
    c->rq->body = NULL;
    c->rq->body_len = c->rq->body_cap = 0;
    c->rq->streaming = c->rq->skip_body = c->rq->finish_called = false;
    c->rq->body_paused = false;
    c->rq->body_started = false;
    c->rq->discard_failed = false;
    c->rq->cookies_parsed = false;
    return 0;
}

static size_t discard_bound(gust_http_connection *c)
{
    size_t m = opts_of(c)->max_body_size;
    return m < DISCARD_MAX ? m : DISCARD_MAX;
}

/* Whether the body of a request the delegate answered from
 * headers_received can be read and dropped (the connection is then kept):
 * a known length up to the bound, or chunked (bounded while decoded); not
 * when the client waits for a 100 Continue it will not get. */
static bool can_discard(gust_http_connection *c)
{
    if (c->rq->framing.body == GUST_HTTP1_BODY_NONE)
        return true;
    if (c->rq->framing.body == GUST_HTTP1_BODY_LENGTH) {
        /* Finished in the middle of a streamed body: what is left counts. */
        uint64_t left = c->rq->body_started ? c->rq->body_left
                                            : c->rq->framing.content_length;
        if (left == 0)
            return true;
        if (left > discard_bound(c))
            return false;
    }
    if (c->rq->discard_failed)
        return false;
    return c->rq->body_started ||
           !(c->rq->framing.expect_continue && c->rq->len == c->rq->head_end);
}

/* The delegate answered from headers_received, or finished while its
 * body was streamed to it: drop the (rest of the) body from now on. */
static void begin_skip(gust_http_connection *c)
{
    gust__http_rq *q = c->rq;
    if (q->skip_body)
        return;
    q->skip_body = true;
    if (!can_discard(c)) {
        q->discard_failed = true;
    } else if (q->body_started) {
        /* Mid-body: the decoder goes on; at most the bound more. */
        if (q->framing.body == GUST_HTTP1_BODY_CHUNKED &&
            q->chunked.max_body - q->chunked.total > discard_bound(c))
            q->chunked.max_body = q->chunked.total + discard_bound(c);
        return;
    } else if (q->framing.body == GUST_HTTP1_BODY_CHUNKED) {
        gust__http1_chunked_init(&q->chunked, discard_bound(c),
                                 opts_of(c)->max_header_size);
    }
    q->body_left = q->framing.body == GUST_HTTP1_BODY_LENGTH
                       ? q->framing.content_length : 0;
}

/* Drops body bytes buf[req_end, len). Returns 1 when the body is over, 0
 * when more is needed, -1 when it is malformed or over the bound. */
static int discard_step(gust_http_connection *c)
{
    size_t pos = c->rq->req_end;
    size_t avail = c->rq->len - pos;
    size_t used;
    int done;
    if (c->rq->framing.body == GUST_HTTP1_BODY_NONE)
        return 1;
    if (c->rq->framing.body == GUST_HTTP1_BODY_LENGTH) {
        used = avail < c->rq->body_left ? avail : (size_t)c->rq->body_left;
        c->rq->body_left -= used;
        done = c->rq->body_left == 0;
    } else {
        size_t dlen = 0;
        ssize_t r = gust__http1_chunked_decode(&c->rq->chunked, c->rq->buf + pos,
                                               avail, &dlen);
        if (r == GUST_HTTP1_ERROR)
            return -1;
        used = r == GUST_HTTP1_INCOMPLETE ? avail : (size_t)r;
        done = r >= 0;
    }
    memmove(c->rq->buf + pos, c->rq->buf + pos + used, avail - used);
    c->rq->len -= used;
    return done;
}

/* The body is complete: parse form arguments and run the handler. */
static void dispatch(gust_http_connection *c)
{
    gust_http_request *r = &c->rq->req;
    if (!c->rq->streaming) {
        if (c->rq->body)
            r->body = gust_str_make(c->rq->body, c->rq->body_len);
        else if (c->rq->framing.body == GUST_HTTP1_BODY_LENGTH)
            r->body = gust_str_make(c->rq->buf + c->rq->head_end,
                                    (size_t)c->rq->framing.content_length);
        if (r->body.len) {
            gust_str ct = gust_http_headers_get_first(&r->headers,
                                                      GUST_STR("Content-Type"));
            bool encoded = gust_http_headers_has(&r->headers,
                                                 GUST_STR("Content-Encoding"));
            if (ct.ptr && !encoded &&
                gust_http_parse_body_arguments(&c->rq->arena, ct, r->body,
                                               &r->body_arguments, &r->files) < 0)
                gust_log_warning("http", "%s: invalid form body ignored",
                                 c->rq->peer_ip);
        }
    }
    for (size_t i = 0; i < r->query_arguments.count; i++)
        gust_http_args_add(&r->arguments, r->query_arguments.items[i].name,
                           r->query_arguments.items[i].value);
    for (size_t i = 0; i < r->body_arguments.count; i++)
        gust_http_args_add(&r->arguments, r->body_arguments.items[i].name,
                           r->body_arguments.items[i].value);
    c->state = GUST__HTTP_HANDLER;
    c->rq->finish_called = true;
    c->app_owns = true;
    pause_timer(c);
    const gust_http_delegate *d = c->srv->handler.delegate;
    if (d) {
        if (d->finish)
            d->finish(r, c->srv->handler.data);
    } else if (c->srv->handler.callback) {
        c->srv->handler.callback(r, c->srv->handler.data);
    } else {
        gust_http_respond(r, 404, NULL, NULL, 0);
    }
}

/* Body bytes buf[req_end, len): move them where they belong. Returns 1
 * when the body is complete, 0 when more is needed, -1 after an error
 * (answered), 2 when a streaming delegate finished the request before the
 * end of its body (the rest is then dropped, see begin_skip). */
static int body_step(gust_http_connection *c)
{
    const gust_http_delegate *d = c->srv->handler.delegate;
    void *hd = c->srv->handler.data;
    size_t pos = c->rq->req_end;
    size_t avail = c->rq->len - pos;
    if (c->rq->framing.body == GUST_HTTP1_BODY_NONE)
        return 1;
    if (c->rq->framing.body == GUST_HTTP1_BODY_LENGTH) {
        size_t take = avail < c->rq->body_left ? avail : (size_t)c->rq->body_left;
        if (!c->rq->streaming && !c->rq->body) { /* the body stays in buf */
            c->rq->req_end += take;
            c->rq->body_left -= take;
            return c->rq->body_left == 0;
        }
        if (take) {
            if (c->rq->streaming) {
                if (d->data_received &&
                    d->data_received(&c->rq->req, c->rq->buf + pos, take, hd) < 0) {
                    send_error(c, 400, "body refused by the handler");
                    return -1;
                }
                if (c->state != GUST__HTTP_BODY)
                    return -1;
            } else {
                memcpy(c->rq->body + c->rq->body_len, c->rq->buf + pos, take);
                c->rq->body_len += take;
            }
            memmove(c->rq->buf + pos, c->rq->buf + pos + take, avail - take);
            c->rq->len -= take;
            c->rq->body_left -= take;
        }
        if (c->rq->skip_body)
            return 2; /* finished from data_received: drop the rest */
        return c->rq->body_left == 0;
    }
    /* chunked: decoded in place, then handed over or appended */
    size_t dlen = 0;
    ssize_t r = gust__http1_chunked_decode(&c->rq->chunked, c->rq->buf + pos, avail,
                                           &dlen);
    if (dlen) {
        if (c->rq->streaming) {
            if (d->data_received &&
                d->data_received(&c->rq->req, c->rq->buf + pos, dlen, hd) < 0) {
                send_error(c, 400, "body refused by the handler");
                return -1;
            }
            if (c->state != GUST__HTTP_BODY)
                return -1;
        } else {
            if (c->rq->body_len + dlen > c->rq->body_cap) {
                size_t cap = c->rq->body_cap ? c->rq->body_cap * 2 : 4096;
                while (cap < c->rq->body_len + dlen)
                    cap *= 2;
                char *nb = gust_arena_realloc(&c->rq->arena, c->rq->body, c->rq->body_cap,
                                              cap);
                if (!nb) {
                    send_error(c, 413, "out of memory for the body");
                    return -1;
                }
                c->rq->body = nb;
                c->rq->body_cap = cap;
            }
            memcpy(c->rq->body + c->rq->body_len, c->rq->buf + pos, dlen);
            c->rq->body_len += dlen;
        }
    }
    if (r == GUST_HTTP1_ERROR) {
        send_error(c, c->rq->chunked.error_status, c->rq->chunked.error_reason);
        return -1;
    }
    size_t used = r == GUST_HTTP1_INCOMPLETE ? avail : (size_t)r;
    memmove(c->rq->buf + pos, c->rq->buf + pos + used, avail - used);
    c->rq->len -= used;
    if (c->rq->skip_body) {
        /* Finished from data_received: drop the rest, if any. */
        if (r >= 0)
            c->rq->framing.body = GUST_HTTP1_BODY_NONE;
        return 2;
    }
    if (r >= 0 && !c->rq->body)
        c->rq->body = gust_arena_alloc(&c->rq->arena, 1); /* empty, but not in buf */
    return r >= 0;
}

/* A complete head is at buf[off, off + n). */
static int start_request(gust_http_connection *c, size_t n)
{
    const gust_http_server_options *o = opts_of(c);
    if (gust__http1_request_framing(&c->rq->head, &c->rq->framing) < 0) {
        send_error(c, c->rq->framing.error_status, c->rq->framing.error_reason);
        return -1;
    }
    if (c->rq->framing.expect_other) {
        send_error(c, 417, "unsupported Expect");
        return -1;
    }
    if (c->rq->framing.body == GUST_HTTP1_BODY_LENGTH &&
        c->rq->framing.content_length > o->max_body_size) {
        send_error(c, 413, "Content-Length over max_body_size");
        return -1;
    }
    c->rq->head_end = c->rq->req_end = c->rq->off + n;
    if (setup_request(c) < 0) {
        send_error(c, 503, "out of memory");
        return -1;
    }
    c->state = GUST__HTTP_BODY;
    const gust_http_delegate *d = c->srv->handler.delegate;
    if (d && d->headers_received) {
        c->rq->in_headers_received = true;
        c->app_owns = true;
        int rc = d->headers_received(&c->rq->req, c->srv->handler.data);
        c->rq->in_headers_received = false;
        if (c->state != GUST__HTTP_BODY)
            return -1; /* failed, or finished and closing */
        if (rc > 0 || !c->app_owns) { /* answered: the body is dropped */
            begin_skip(c);
            if (!c->rq->discard_failed)
                return 0; /* process() reads and drops it */
            c->state = GUST__HTTP_HANDLER; /* closes after the answer */
            return -1;
        }
    }
    bool has_body = c->rq->framing.body == GUST_HTTP1_BODY_CHUNKED ||
                    (c->rq->framing.body == GUST_HTTP1_BODY_LENGTH &&
                     c->rq->framing.content_length > 0);
    if (c->rq->framing.body == GUST_HTTP1_BODY_CHUNKED)
        gust__http1_chunked_init(&c->rq->chunked, o->max_body_size, o->max_header_size);
    c->rq->body_left = c->rq->framing.body == GUST_HTTP1_BODY_LENGTH
                       ? c->rq->framing.content_length : 0;
    c->rq->body_started = true;
    if (has_body && !c->rq->streaming &&
        c->rq->framing.body == GUST_HTTP1_BODY_LENGTH &&
        c->rq->head_end + c->rq->framing.content_length > c->rq->cap) {
        c->rq->body = gust_arena_alloc(&c->rq->arena,
                                   (size_t)c->rq->framing.content_length);
        if (!c->rq->body) {
            send_error(c, 413, "out of memory for the body");
            return -1;
        }
    }
    if (has_body && c->rq->framing.expect_continue && c->rq->len == c->rq->head_end) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        gust__http_conn_out(c, cont, sizeof cont - 1);
        gust__http_conn_flush(c);
    }
    if (!has_body)
        c->rq->req_end = c->rq->head_end;
    return 0;
}

/* Parses and runs every request already buffered. */
/* The request's bytes are done with: the next head starts after them. A
 * head rejected before setup_request() still gets its error answer. */
static void next_request(gust_http_connection *c)
{
    c->rq->off = c->rq->req_end;
    c->rq->resp_mode = GUST__RESP_NONE;
    c->rq->headers_sent = c->rq->aborted = c->rq->resp_len_set = false;
    c->state = GUST__HTTP_HEAD;
}

static void process(gust_http_connection *c)
{
    const gust_http_server_options *o = opts_of(c);
    if (c->in_batch)
        return;
    c->in_batch = true;
    if (c->rq)
        c->rq->queue_stale = true;
    while (!c->closed && c->state != GUST__HTTP_CLOSING) {
        if (c->state == GUST__HTTP_HANDLER || c->state == GUST__HTTP_DETACHED)
            break;
        if (c->state == GUST__HTTP_HEAD) {
            if (c->rq && c->rq->out_blocked)
                break; /* on_drained goes on */
            if (!c->rq || c->rq->off == c->rq->len) {
                /* Idle: the context goes back once the output is out. */
                if (c->srv->closing_all)
                    close_after_write(c, true);
                else
                    set_timer(c, T_IDLE);
                break;
            }
            if (output_maybe_over(c) && output_over(c)) {
                gust__http_conn_flush(c); /* what the kernel takes is not held */
                if (output_over(c)) {
                    hold_output(c);
                    break;
                }
            }
            int n = gust__http1_parse_request(c->rq->buf + c->rq->off, c->rq->len - c->rq->off,
                                              c->rq->parsed_len, o->max_header_size,
                                              &c->rq->head);
            if (n == GUST_HTTP1_INCOMPLETE) {
                if (c->rq->off) {
                    memmove(c->rq->buf, c->rq->buf + c->rq->off, c->rq->len - c->rq->off);
                    c->rq->len -= c->rq->off;
                    c->rq->off = 0;
                }
                c->rq->parsed_len = c->rq->len;
                set_timer(c, T_HEAD);
                break;
            }
            c->rq->parsed_len = 0;
            if (n < 0) {
                send_error(c, c->rq->head.error_status, c->rq->head.error_reason);
                break;
            }
            pause_timer(c);
            if (start_request(c, (size_t)n) < 0)
                continue; /* answered, closing, or the delegate took it */
        }
        /* GUST__HTTP_BODY */
        if (c->rq->skip_body) {
            int r = discard_step(c);
            if (r == 0) {
                set_timer(c, T_BODY);
                break;
            }
            if (r < 0) {
                gust_log_warning("http", "%s: skipped request body malformed "
                                 "or over %zu bytes, closing", c->rq->peer_ip,
                                 discard_bound(c));
                c->rq->discard_failed = true;
            }
            if (c->app_owns) {
                c->state = GUST__HTTP_HANDLER; /* finish() goes on */
            } else if (c->rq->discard_failed) {
                close_after_write(c, true);
            } else {
                next_request(c);
            }
            continue;
        }
        if (c->rq->body_paused) {
            clear_timer(c); /* the application is the slow one */
            break;
        }
        int r = body_step(c);
        if (r < 0 || r == 2)
            continue; /* answered or closing; or now dropping the body */
        if (r == 0) {
            set_timer(c, T_BODY);
            break;
        }
        dispatch(c);
    }
    c->in_batch = false;
    if (c->state == GUST__HTTP_DETACHED) {
        if (!c->app_owns) /* finished inside the batch */
            conn_free(c);
        return;
    }
    gust__http_conn_flush(c);
    if (!c->closed && c->state == GUST__HTTP_HEAD && !c->app_owns && c->rq &&
        c->rq->off == c->rq->len && !c->rq->out_blocked)
        rq_give_back(c);
    if (!c->closed && c->state != GUST__HTTP_CLOSING)
        start_read(c);
}

static void on_resume(gust_timer *t, void *data)
{
    (void)t;
    process(data);
}

int gust__http_conn_pause_body(gust_http_connection *c, bool pause)
{
    if (c->state != GUST__HTTP_BODY || c->rq->skip_body || c->closed)
        return pause ? -EINVAL : 0; /* nothing left to hold back */
    if (c->rq->body_paused == pause)
        return 0;
    c->rq->body_paused = pause;
    /* Never inside the caller's call: process() runs on a later turn. */
    if (!pause && !c->in_batch)
        gust_timer_start(&c->rq->resume, 0, 0, on_resume, c);
    return 0;
}

/* E2: whether the connection is kept after this request. */
static bool keep_alive(gust_http_connection *c)
{
    if (c->srv->opts.no_keep_alive || c->srv->closing_all ||
        c->rq->resp_close || c->rq->aborted)
        return false;
    /* Answered from headers_received: kept if the body can be dropped. */
    if ((c->rq->skip_body || c->rq->in_headers_received) &&
        (c->rq->discard_failed || !can_discard(c)))
        return false;
    if (c->rq->req.version_minor >= 1)
        return !c->rq->framing.connection_close;
    if (gust_http_headers_has(&c->rq->req.headers, GUST_STR("Content-Length")) ||
        c->rq->req.method_id == GUST_HTTP_HEAD || c->rq->req.method_id == GUST_HTTP_GET)
        return c->rq->framing.connection_keep_alive && !c->rq->framing.connection_close;
    return false;
}

bool gust__http_conn_will_keep(gust_http_connection *c)
{
    return keep_alive(c);
}

void gust__http_conn_request_done(gust_http_connection *c)
{
    if (c->state == GUST__HTTP_DETACHED) {
        c->app_owns = false;
        if (!c->in_batch) /* else process() frees it on its way out */
            conn_free(c); /* the request was all it still held */
        return;
    }
    if (c->state == GUST__HTTP_BODY &&
        (c->rq->in_headers_received || c->rq->streaming))
        begin_skip(c); /* finished before the body was all read */
    bool dropping = c->state == GUST__HTTP_BODY && c->rq->skip_body;
    bool keep = keep_alive(c) &&
                (c->state == GUST__HTTP_HANDLER || dropping);
    gust__metrics_request(&c->rq->req, c->rq->status,
                          c->rq->req.start_time);
    c->app_owns = false; /* released */
    if (!c->stream) { /* closed under the request */
        conn_free(c);
        return;
    }
    if (c->closed)
        return; /* the close callback frees it */
    if (!keep) {
        /* Draining, the client may be writing its next request already:
         * reading it to the end spares the answer just sent a reset. */
        close_after_write(c, c->rq->req_end != c->rq->len ||
                                 c->state == GUST__HTTP_BODY ||
                                 c->srv->closing_all);
        return;
    }
    if (dropping) { /* the body is still being dropped: process() goes on */
        if (!c->in_batch)
            gust__http_conn_flush(c);
        return;
    }
    next_request(c);
    if (c->in_batch)
        return; /* process() goes on with the next request */
    gust__http_conn_flush(c);
    if (c->rq->off < c->rq->len)
        gust_timer_start(&c->rq->resume, 0, 0, on_resume, c);
    else
        process(c); /* idle: arms the timer and the read */
}

gust_http_connection *gust__http_conn_new(gust_http_server *srv,
                                          gust_stream *stream,
                                          const struct sockaddr *addr,
                                          socklen_t addrlen)
{
    gust_http_connection *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    srv->connections_total++;
    c->srv = srv;
    c->stream = stream;
    if (addrlen > sizeof(struct sockaddr_storage))
        addrlen = sizeof(struct sockaddr_storage);
    if (addrlen > sizeof c->peer) {
        c->peer_big = malloc(addrlen);
        if (!c->peer_big) {
            free(c);
            return NULL;
        }
        memcpy(c->peer_big, addr, addrlen);
    } else {
        memcpy(&c->peer, addr, addrlen);
    }
    c->peer_len = (uint8_t)addrlen;
    c->state = GUST__HTTP_HEAD;
    c->timer_kind = T_NONE;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->count++;
    gust__metrics_conn(1);
    gust_stream_set_data(stream, c);
    gust_stream_set_close_callback(stream, on_close, c);
    set_timer(c, T_IDLE);
    start_read(c);
    return c;
}

int gust__http_conn_detach(gust_http_connection *c, gust_http_detached *slot,
                           const gust_http_detach_ops *ops, void *data,
                           gust_stream **stream, gust_str *leftover)
{
    int rc = gust__http_conn_flush(c);
    if (rc < 0)
        return rc;
    clear_timer(c);
    gust_stream *s = c->stream;
    gust_stream_set_close_callback(s, NULL, NULL);
    gust_stream_set_data(s, NULL);
    c->stream = NULL;
    c->state = GUST__HTTP_DETACHED;
    /* The slot takes over the connection's place in srv->count: c itself
     * goes when the request is finished. */
    gust_http_server *srv = c->srv;
    *slot = (gust_http_detached){NULL, srv->detached, srv, ops, data};
    if (srv->detached)
        srv->detached->prev = slot;
    srv->detached = slot;
    *stream = s;
    *leftover = gust_str_make(c->rq->buf + c->rq->req_end,
                              c->rq->len - c->rq->req_end);
    return 0;
}

void gust_http_detached_done(gust_http_detached *slot)
{
    gust_http_server *srv = slot ? slot->srv : NULL;
    if (!srv)
        return;
    if (slot->prev)
        slot->prev->next = slot->next;
    else
        srv->detached = slot->next;
    if (slot->next)
        slot->next->prev = slot->prev;
    slot->srv = NULL;
    srv->count--;
    gust__metrics_conn(-1);
    if (srv->count == 0)
        timers_free(srv);
    gust__http_server_conn_gone(srv);
}
