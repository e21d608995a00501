/* One HTTP/1 server connection (Tornado's HTTP1ServerConnection and
 * HTTP1Connection), its lifecycle: the input buffers it takes and gives
 * back, its timers, closing and lingering, the keep-alive rules
 * (shared/TORNADO_EXAMPLES.md E2), drain and detach. Reading and
 * dispatching requests is in http1_read.c, writing responses in
 * http1_write.c. */
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

/* close_all(): how long an idle connection gets to send one more request,
 * answered with Connection: close. Its client may have written it already
 * (it crosses our close on the wire): a new connection about to send its
 * first request, a keep-alive one its next. Closing at once loses it. */
#define DRAIN_GRACE 2.0

/* How long a connection that sent an error keeps reading (and discarding)
 * so that closing does not reset the connection before the client has
 * read the answer. */
#define LINGER_SECONDS 2.0

/* Input buffers are reused across connections of this thread, so that a
 * keep-alive connection that goes idle gives its buffer back and takes one
 * again without malloc. */
#define BUF_CACHE 16
static _Thread_local struct {
    char *buf[BUF_CACHE];
    size_t cap[BUF_CACHE];
    int n;
} buf_cache;

char *gust__http_conn_buf_get(size_t cap)
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
static size_t format_ipv4(const unsigned char *b, char *out)
{
    char *start = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            *out++ = (char)('0' + v / 100);
        if (v >= 10)
            *out++ = (char)('0' + v / 10 % 10);
        *out++ = (char)('0' + v % 10);
        *out++ = i < 3 ? '.' : 0;
    }
    return (size_t)(out - start - 1);
}

/* Inlined into format_peer (every request context); HTTP/2 calls the
 * wrapper. */
static inline size_t format_addr(const struct sockaddr *a, char *out, size_t n)
{
    if (a->sa_family == AF_INET && n >= INET_ADDRSTRLEN)
        return format_ipv4(
            (const unsigned char *)&((const struct sockaddr_in *)a)->sin_addr, out);
    if (a->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr, out,
                  (socklen_t)n);
    else if (a->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr, out,
                  (socklen_t)n);
    else
        snprintf(out, n, "unix");
    return strlen(out);
}

size_t gust__http_format_addr(const struct sockaddr *a, char *out, size_t n)
{
    return format_addr(a, out, n);
}

static size_t format_peer(const gust_http_connection *c, char *out, size_t n)
{
    return format_addr(c->peer_big ? c->peer_big : &c->peer.sa, out, n);
}

/* Takes a request context for c (c->rq). Returns false if out of memory. */
bool gust__http_conn_rq_take(gust_http_connection *c)
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
    q->cap = c->srv->opts.max_header_size + GUST__HTTP_BUF_SLACK;
    q->out_len = q->sbody_len = 0;
    q->req.connection = NULL; /* no request yet: gust__http_conn_send_error checks it */
    q->resp_mode = GUST__RESP_NONE;
    q->headers_sent = q->aborted = q->resp_len_set = false;
    q->out_blocked = false;
    q->queue_stale = true;
    gust_timer_init(gust_stream_loop(c->stream), &q->resume);
    if (c->proto == GUST__PROTO_H1) /* an HTTP/2 stream copies its connection's */
        q->peer_ip_len = (uint8_t)format_peer(c, q->peer_ip, sizeof q->peer_ip);
    c->rq = q;
    return true;
}

/* Gives c's context back: the request is over and nothing is buffered. */
void gust__http_conn_rq_give_back(gust_http_connection *c)
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

/* The queue of each kind of deadline (GUST__T_LINGER and GUST__T_GRACE: both 2 s). */
static const uint8_t queue_of[] = {
    [GUST__T_NONE] = Q_IDLE, [GUST__T_IDLE] = Q_IDLE, [GUST__T_HEAD] = Q_HEAD,
    [GUST__T_BODY] = Q_BODY, [GUST__T_LINGER] = Q_SHORT, [GUST__T_GRACE] = Q_SHORT,
    [GUST__T_WRITE] = Q_WRITE,
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
    c->timer_kind = GUST__T_NONE;
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


static void timeout(gust_http_connection *c, int kind)
{
    char ip[64];
    format_peer(c, ip, sizeof ip);
    if (kind == GUST__T_HEAD) {
        gust_log_warning("http", "%s: request head not complete in time, "
                         "closing", ip);
    } else if (kind == GUST__T_BODY) {
        gust_log_warning("http", "%s: request body timed out, closing", ip);
    } else if (kind == GUST__T_WRITE) {
        /* Nothing new is queued while the connection is held back, so
         * less left unsent means the client reads, however slowly. */
        size_t left = c->stream ? gust_stream_write_buffer_size(c->stream) : 0;
        if (c->rq && left < c->rq->unsent_seen) {
            c->rq->unsent_seen = left;
            gust__http_conn_set_timer_slow(c, GUST__T_WRITE);
            return;
        }
        gust_log_warning("http", "%s: client read none of %zu unsent response "
                         "bytes in %g s, closing", ip, left,
                         gust__http_conn_opts_of(c)->write_timeout);
    } else if (kind == GUST__T_GRACE) {
        /* Draining and no request came: a half-close, then reading to EOF,
         * so that a request crossing our FIN gets no reset. */
        gust__http_conn_close_after_write(c, true);
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
void gust__http_conn_clear_timer(gust_http_connection *c)
{
    if (c->timer_kind != GUST__T_NONE)
        unlink_timer(c, timers_find(c->srv));
}

/* A request head arrived: no deadline while it is handled. An idle one is
 * only suspended, in place (see above). */
void gust__http_conn_pause_timer(gust_http_connection *c)
{
    if (c->timer_kind == GUST__T_IDLE)
        c->deadline = INFINITY;
    else
        gust__http_conn_clear_timer(c);
}

/* Gives c a deadline of kind (GUST__T_NONE: none), replacing the one it had. */
void gust__http_conn_set_timer_slow(gust_http_connection *c, int kind)
{
    /* A trickled head keeps its first deadline: that is the point of it. */
    if (kind == GUST__T_HEAD && c->timer_kind == GUST__T_HEAD)
        return;
    double secs;
    const gust_http_server_options *o = gust__http_conn_opts_of(c);
    switch (kind) {
    case GUST__T_IDLE: secs = o->idle_connection_timeout; break;
    case GUST__T_HEAD: secs = o->header_timeout; break;
    case GUST__T_BODY: secs = o->body_timeout; break;
    case GUST__T_LINGER: secs = LINGER_SECONDS; break;
    case GUST__T_GRACE: secs = DRAIN_GRACE; break;
    case GUST__T_WRITE: secs = o->write_timeout; break;
    default: secs = -1; break;
    }
    gust__http_conn_clear_timer(c);
    if (secs < 0)
        return;
    conn_timers *t = timers_get(c);
    if (!t)
        return; /* out of memory: no deadline, as with no timeout */
    c->deadline = gust_loop_time(t->timer.loop) + secs;
    link_timer(c, t, kind);
}

void gust__http_conn_close_idle(gust_http_connection *c)
{
    if (!c->closed)
        gust__http_conn_set_timer(c, GUST__T_GRACE);
}

/* ---- Closing ----------------------------------------------------------- */

void gust__http_conn_free(gust_http_connection *c)
{
    gust_http_server *srv = c->srv;
    bool detached = c->state == GUST__HTTP_DETACHED;
    gust__http_conn_clear_timer(c);
    gust__http_conn_rq_give_back(c);
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
    gust__http_conn_clear_timer(c);
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
    gust__http_conn_free(c);
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

void gust__http_conn_on_linger_read(gust_stream *s, int status,
                                    const char *data, size_t len, void *user)
{
    (void)s, (void)data, (void)len;
    gust_http_connection *c = user;
    c->reading = false;
    if (status < 0 || c->closed)
        return;
    if (gust_stream_read_bytes(c->stream, 64 * 1024, GUST_READ_PARTIAL,
                               gust__http_conn_on_linger_read, c) == 0)
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
    gust__http_conn_set_timer(c, GUST__T_LINGER);
    if (!c->reading) {
        if (gust_stream_read_bytes(s, 64 * 1024, GUST_READ_PARTIAL,
                                   gust__http_conn_on_linger_read, c) == 0)
            c->reading = true;
        else
            gust__http_conn_close(c);
    }
}

/* Sends what is gathered and closes once it is out; lingers (see
 * on_last_written) after an error or when input is left unread, the cases
 * where the client may still be sending. */
void gust__http_conn_close_after_write(gust_http_connection *c, bool linger)
{
    c->state = GUST__HTTP_CLOSING;
    c->lingering = linger;
    if (c->closed || !c->stream)
        return;
    gust__http_conn_clear_timer(c);
    if (c->rq && c->rq->out_len) {
        gust_stream_write(c->stream, c->rq->out, c->rq->out_len, NULL, NULL);
        c->rq->out_len = 0;
    }
    if (gust_stream_write(c->stream, "", 0, on_last_written, c) < 0)
        gust__http_conn_close(c);
}

/* Bad input: one log line, a short answer, close. */
void gust__http_conn_send_error(gust_http_connection *c, int status,
                                const char *why)
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
    gust__http_conn_close_after_write(c, true);
}

/* E2: whether the connection is kept after this request. */
static bool keep_alive(gust_http_connection *c)
{
    if (c->srv->opts.no_keep_alive || c->srv->closing_all ||
        c->rq->resp_close || c->rq->aborted)
        return false;
    /* Answered from headers_received: kept if the body can be dropped. */
    if ((c->rq->skip_body || c->rq->in_headers_received) &&
        (c->rq->discard_failed || !gust__http_conn_can_discard(c)))
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
        if (!c->in_batch) /* else gust__http_conn_process() frees it on its way out */
            gust__http_conn_free(c); /* the request was all it still held */
        return;
    }
    if (c->state == GUST__HTTP_BODY &&
        (c->rq->in_headers_received || c->rq->streaming))
        gust__http_conn_begin_skip(c); /* finished before the body was all read */
    bool dropping = c->state == GUST__HTTP_BODY && c->rq->skip_body;
    bool keep = keep_alive(c) &&
                (c->state == GUST__HTTP_HANDLER || dropping);
    gust__metrics_request(&c->rq->req, c->rq->status,
                          c->rq->req.start_time);
    c->app_owns = false; /* released */
    if (!c->stream) { /* closed under the request */
        gust__http_conn_free(c);
        return;
    }
    if (c->closed)
        return; /* the close callback frees it */
    if (!keep) {
        /* Draining, the client may be writing its next request already:
         * reading it to the end spares the answer just sent a reset. */
        gust__http_conn_close_after_write(c, c->rq->req_end != c->rq->len ||
                                 c->state == GUST__HTTP_BODY ||
                                 c->srv->closing_all);
        return;
    }
    if (dropping) { /* the body is still being dropped: gust__http_conn_process() goes on */
        if (!c->in_batch)
            gust__http_conn_flush(c);
        return;
    }
    gust__http_conn_next_request(c);
    if (c->in_batch)
        return; /* gust__http_conn_process() goes on with the next request */
    gust__http_conn_flush(c);
    if (c->rq->off < c->rq->len)
        gust_timer_start(&c->rq->resume, 0, 0, gust__http_conn_on_resume, c);
    else
        gust__http_conn_process(c); /* idle: arms the timer and the read */
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
    c->h2_maybe = !srv->opts.no_http2_prior_knowledge;
    c->timer_kind = GUST__T_NONE;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->count++;
    gust__metrics_conn(1);
    gust_stream_set_data(stream, c);
    gust_stream_set_close_callback(stream, on_close, c);
    gust__http_conn_set_timer(c, GUST__T_IDLE);
    gust__http_conn_start_read(c);
    return c;
}

int gust__http_conn_detach(gust_http_connection *c, gust_http_detached *slot,
                           const gust_http_detach_ops *ops, void *data,
                           gust_stream **stream, gust_str *leftover)
{
    int rc = gust__http_conn_flush(c);
    if (rc < 0)
        return rc;
    gust__http_conn_clear_timer(c);
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
