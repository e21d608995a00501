/* One HTTP/2 server connection (RFC 9113) on libnghttp2, beside
 * http1_connection.c and under the same request/response interface:
 * nghttp2 does the framing, HPACK and flow control; this file turns its
 * streams into gust_http_request objects and their responses into HEADERS
 * and DATA frames.
 *
 * Each stream owns an h2_stream whose first member is a
 * gust_http_connection (proto GUST__PROTO_H2) holding a request context
 * (gust__http_rq, from the per-thread cache of http1_connection.c): the
 * status and header calls of http_server.c work on it unchanged, and the
 * calls that write or end a response come here (gust__h2_*).
 *
 * The connection is counted by the server as a detached connection (a
 * gust_http_detached slot), whose close_all sends GOAWAY.
 *
 * Output: every frame nghttp2 has for a loop turn is gathered with
 * nghttp2_session_mem_send() into one buffer and written with one stream
 * write. Input windows follow consumption: the connection window is given
 * back as bytes arrive, a stream's once its handler has taken them
 * (buffered bodies: at once; streamed ones: after data_received, and not
 * while paused), so a slow consumer holds at most one window per stream. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <nghttp2/nghttp2.h>

#include "gust/error.h"
#include "gust/http_server.h"
#include "gust/log.h"
#include "gust/tls.h"
#include "http_server_internal.h"
#include "metrics_internal.h"

#define LOG "http2"
#define PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define PREFACE_LEN 24
/* Gathered output written once it reaches this, and no more frames asked
 * of nghttp2 while the stream holds more than this unsent. */
#define OUT_BATCH (64 * 1024)
#define OUT_HIGH (256 * 1024)
/* The connection's receive window: refilled as bytes arrive. */
#define CONN_WINDOW (1 << 20)
#define LINGER_SECONDS 2.0
#define LINGER_MAX_BYTES (32 * 1024)
#define DRAIN_GRACE 1.0

typedef struct h2_conn h2_conn;
typedef struct h2_stream h2_stream;

/* Queued response body: memory (data[]) or a file range (fd >= 0); a
 * flush's callback rides on the chunk that ends it. Also held request
 * body bytes of a paused stream. */
typedef struct h2_chunk {
    struct h2_chunk *next;
    int fd;
    off_t off;
    size_t len, pos;
    void (*cb)(gust_http_request *, int, void *);
    void *cb_data;
    char data[];
} h2_chunk;

/* A flush or sendfile callback due once its bytes are written. */
typedef struct h2_cb {
    struct h2_cb *next;
    h2_stream *st;
    void (*cb)(gust_http_request *, int, void *);
    void *data;
} h2_cb;

struct h2_stream {
    gust_http_connection hc; /* request->connection; hc.rq the context */
    h2_conn *h;              /* NULL once the connection is gone */
    h2_stream *prev, *next;  /* in h->streams */
    int32_t id;
    bool open;               /* nghttp2 knows the stream */
    bool head_done;          /* request head complete and set up */
    bool remote_done;        /* END_STREAM received */
    bool dispatched;         /* finish (or the callback) ran */
    bool skip;               /* body no longer wanted: dropped */
    bool final;              /* the response is complete: END_STREAM */
    bool deferred;           /* the data provider waits for more */
    bool tail_sbody;         /* after the queue, rq->sbody[tail_pos..) */
    bool counted;            /* metrics and requests_total done */
    bool reset_sent;
    bool raw_head;           /* raw response: its HTTP/1 head is parsed */
    bool raw_chunked;        /* and its body is chunked (decoded) */
    int err_status;          /* head refused (431, 400): answered so */
    const char *err_reason;
    size_t head_bytes, head_fields;
    size_t tail_pos;
    unsigned pending_cbs;    /* h2_cb nodes pointing here */
    h2_chunk *out, *out_tail;
    h2_chunk *held, *held_tail; /* streamed body held while paused */
    /* The pseudo-headers, in the arena. */
    const char *method, *path, *authority, *scheme;
    char *cookie;
    size_t cookie_len;
};

/* What a hibernated connection keeps of its nghttp2 session: the
 * client's settings and the connection's send window. */
#define SAVED_SETTINGS 9     /* ids 1..9 (7 is not defined) */
typedef struct h2_saved {
    uint32_t settings[SAVED_SETTINGS];
    int32_t send_window;
} h2_saved;

struct h2_conn {
    gust_http_detached slot;
    gust_http_server *srv;
    gust_stream *stream;     /* NULL once closed */
    nghttp2_session *sess;
    struct h2_region *region; /* the session's memory */
    h2_stream *streams;
    size_t nstreams;         /* h2_stream objects with h set */
    size_t nrecv;            /* of those, still receiving their request */
    union {
        struct sockaddr sa;
        struct sockaddr_storage ss;
    } peer;
    socklen_t peer_len;
    char peer_ip[64];
    uint8_t peer_ip_len;
    struct h2_obuf *ob;      /* output being gathered (out_len bytes) */
    size_t out_len;
    unsigned inflight;       /* gathered buffers the stream still sends */
    h2_cb *cbs, *cbs_tail;   /* due once the next batch is written */
    gust_timer timer;        /* idle, head, body and write deadlines */
    gust_timer kick;         /* sends what calls outside a read queued */
    gust_timer grace;        /* close_all: the last GOAWAY, then close */
    double last_in;          /* loop time of the last input */
    double last_out;         /* last output progress */
    double started;
    double reset_tokens;     /* rapid reset: RST_STREAMs still allowed */
    double reset_at;         /* when the bucket was last refilled */
    double timer_at;         /* when the timer is armed for */
    size_t linger_bytes;     /* discarded after our last frame */
    bool reading, in_recv, sending, closed, closing, lingering;
    bool draining;           /* the client sent GOAWAY */
    bool stopping;           /* close_all() sent ours */
    bool goaway_sent, got_request;
    bool write_waiting;      /* a write callback will call send again */
    /* The input's framing, followed byte by byte count (in_track), so
     * that the session is known to be between two frames. */
    bool in_block;           /* a header block waits for CONTINUATION */
    uint8_t in_hdr_len;      /* bytes of a frame header seen so far */
    uint8_t in_hdr[9];
    uint32_t in_skip;        /* bytes of the preface or a payload left */
    int32_t max_sid;         /* highest stream id a client HEADERS named */
    bool hpack_used;         /* the client sent a header block */
    bool peer_settings;      /* the client's SETTINGS came */
    bool settings_acked;     /* the client acknowledged ours */
    /* Hibernation (conn_hibernate): the session given back while idle. */
    bool hibernated;
    bool rebuilding;         /* nghttp2 is fed synthesized frames */
    bool no_hibernate;       /* never (the HPACK table has entries) */
    bool trim_owner;         /* its timer runs the thread's heap trim */
    int32_t floor_sid;       /* streams up to it were closed then */
    h2_saved saved;          /* what rebuilds it */
};

static void conn_send(h2_conn *h);
static void conn_close(h2_conn *h);
static void conn_start_read(h2_conn *h);
static void stream_maybe_free(h2_stream *st);
static int stream_submit(h2_stream *st, bool final);
static void conn_idle_check(h2_conn *h);
static void conn_arm_busy(h2_conn *h);
static void conn_arm_write(h2_conn *h);
static bool conn_awake(h2_conn *h);
static int session_new(h2_conn *h, bool rebuild);
static void session_del(h2_conn *h);
static void conn_arm(h2_conn *h, double at);
static inline nghttp2_nv make_nv(gust_str n, gust_str v);

static inline h2_stream *stream_of(gust_http_connection *c)
{
    return (h2_stream *)c;
}

static inline gust_loop *conn_loop(h2_conn *h)
{
    return h->timer.loop;
}

/* ---- nghttp2 setup, once per process ----------------------------------- */

/* nghttp2 gives each session a 16 KiB buffer for the frame it is
 * serialising, kept for the session's life (4 KB of an idle connection's
 * resident memory, measured). A frame's bytes are copied out (conn_send)
 * before the next call to nghttp2_session_mem_send() of any session of
 * this thread, and no session sends while another is inside that call
 * (framebuf.sending), so the first buffer of that size each session asks
 * for, at its creation, is one shared per thread; any later one (a header
 * block over 16 KiB) is its own. */
#define FRAMEBUF_LEN (16384 + 9 + 1) /* frame header, pad length, payload */
static _Thread_local struct {
    char *buf;
    bool armed; /* the next FRAMEBUF_LEN allocation is the shared one */
    /* Inside nghttp2_session_mem_send(): its callbacks run before the
     * bytes it returns are copied, so no other session may send then. */
    bool sending;
} framebuf;

static void framebuf_session_start(void)
{
    framebuf.armed = true;
}

/* Each session's memory is a region of its own (mmap'd, 64 KiB of
 * address space, touched as used), so that freeing a session (its
 * connection hibernates, or closes) gives all of it back to the system
 * at once: in the shared heap, sessions freed between the connections'
 * long-lived objects (stream, h2_conn) left each of those pinning a page,
 * ~5 KB an idle connection. Blocks of up to 512 B are reused by size
 * (16-byte classes, lists kept in the region), larger ones from a list
 * (first fit, at most twice the size asked); a region that is full sends
 * the rest to malloc. nghttp2
 * allocates a few sizes again and again (streams, frames, header
 * entries), so a busy session reuses its blocks. */
#define REGION_SIZE (64 * 1024)
#define REGION_SMALL 512
typedef struct h2_region {
    char *next, *end;              /* bump pointer, end of the region */
    void *free[REGION_SMALL / 16 + 1];
    void *big;                     /* larger free blocks, first fit */
} h2_region;
#define REGION_HDR 16 /* a block's size, before it */

#if defined(__SANITIZE_ADDRESS__)
#define H2_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define H2_ASAN 1
#endif
#endif
#ifdef H2_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Each region may be a mapping of its own (adjacent ones merge, freed
 * ones split them): bounded per thread, far below the kernel's default
 * vm.max_map_count (65,530), so that the process's other mappings (thread
 * stacks, malloc's large blocks) never run out. Past it, sessions are in
 * malloc's heap as before. */
#define REGION_MAX 16384
static _Thread_local unsigned regions_live;

static h2_region *region_new(void)
{
    if (regions_live >= REGION_MAX)
        return NULL;
    void *m = mmap(NULL, REGION_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        return NULL;
    regions_live++;
    h2_region *r = m;
    r->next = (char *)m + ((sizeof *r + 15) & ~(size_t)15);
    r->end = (char *)m + REGION_SIZE;
    POISON(r->next, (size_t)(r->end - r->next));
    return r;
}

static void region_del(h2_region *r)
{
    if (r) {
        UNPOISON(r, REGION_SIZE);
        munmap(r, REGION_SIZE);
        regions_live--;
    }
}

static inline bool in_region(const h2_region *r, const void *p)
{
    return r && (const char *)p > (const char *)r && (const char *)p < r->end;
}

static inline size_t *block_size(void *p)
{
    return (size_t *)((char *)p - REGION_HDR);
}

/* The next-block link a free block holds in its first word. */
static void *link_get(void *p)
{
    UNPOISON(p, sizeof(void *));
    void *next = *(void **)p;
    POISON(p, sizeof(void *));
    return next;
}

static void link_set(void *p, void *next)
{
    UNPOISON(p, sizeof(void *));
    *(void **)p = next;
    POISON(p, sizeof(void *));
}

static size_t region_size(void *p);

static void *region_alloc(h2_region *r, size_t n)
{
    size_t sz = n ? (n + 15) & ~(size_t)15 : 16;
    if (sz <= REGION_SMALL && r->free[sz / 16]) {
        void *p = r->free[sz / 16];
        UNPOISON(p, sizeof(void *));
        r->free[sz / 16] = *(void **)p;
        POISON(p, sz);
        UNPOISON(p, n);
        return p;
    }
    if (sz > REGION_SMALL) {
        /* A large block freed before (a header field's buffer each
         * request, say) is reused, or the region would fill with them. */
        void *prev = NULL;
        for (void *q = r->big; q;) {
            void *next = link_get(q);
            size_t qs = region_size(q);
            if (qs >= sz && qs <= 2 * sz) {
                if (prev)
                    link_set(prev, next);
                else
                    r->big = next;
                UNPOISON(q, n);
                return q;
            }
            prev = q;
            q = next;
        }
    }
    if ((size_t)(r->end - r->next) < sz + REGION_HDR)
        return NULL;
    char *b = r->next;
    r->next += sz + REGION_HDR;
    UNPOISON(b, REGION_HDR);
    *(size_t *)b = sz;
    POISON(b, REGION_HDR);
    UNPOISON(b + REGION_HDR, n);
    return b + REGION_HDR;
}

static size_t region_size(void *p)
{
    size_t *h = block_size(p);
    UNPOISON(h, sizeof *h);
    size_t sz = *h;
    POISON(h, sizeof *h);
    return sz;
}

static void region_free(h2_region *r, void *p)
{
    size_t sz = region_size(p);
    POISON(p, sz);
    if (sz <= REGION_SMALL) {
        UNPOISON(p, sizeof(void *));
        *(void **)p = r->free[sz / 16];
        POISON(p, sizeof(void *));
        r->free[sz / 16] = p;
    } else if ((char *)p + sz == r->next) {
        r->next = (char *)p - REGION_HDR;
    } else {
        link_set(p, r->big);
        r->big = p;
    }
}

static void *h2_malloc(size_t n, void *u)
{
    if (n == FRAMEBUF_LEN && framebuf.armed) {
        framebuf.armed = false;
        if (!framebuf.buf)
            framebuf.buf = malloc(FRAMEBUF_LEN);
        if (framebuf.buf)
            return framebuf.buf;
    }
    void *p = u ? region_alloc(u, n) : NULL;
    return p ? p : malloc(n);
}

static void h2_free(void *p, void *u)
{
    if (!p || p == framebuf.buf)
        return; /* (the thread's, kept) */
    if (in_region(u, p))
        region_free(u, p);
    else
        free(p);
}

static void *h2_calloc(size_t n, size_t m, void *u)
{
    if (m && n > SIZE_MAX / m)
        return NULL;
    void *p = u ? region_alloc(u, n * m) : NULL;
    if (p) {
        memset(p, 0, n * m);
        return p;
    }
    return calloc(n, m);
}

static void *h2_realloc(void *p, size_t n, void *u)
{
    if (!p) /* how nghttp2 allocates the frame buffer */
        return h2_malloc(n, u);
    if (p == framebuf.buf) { /* not done by nghttp2; kept correct */
        void *q = malloc(n);
        if (q)
            memcpy(q, p, n < FRAMEBUF_LEN ? n : FRAMEBUF_LEN);
        return q;
    }
    if (in_region(u, p)) {
        size_t old = region_size(p);
        if (n <= old) {
            UNPOISON(p, n);
            return p;
        }
        h2_region *r = u;
        size_t sz = (n + 15) & ~(size_t)15;
        if ((char *)p + old == r->next &&
            (size_t)(r->end - (char *)p) >= sz) { /* the last: grown */
            r->next = (char *)p + sz;
            size_t *hd = block_size(p);
            UNPOISON(hd, sizeof *hd);
            *hd = sz;
            POISON(hd, sizeof *hd);
            UNPOISON(p, n);
            return p;
        }
        void *q = region_alloc(u, n);
        if (!q)
            q = malloc(n);
        if (q) {
            memcpy(q, p, old);
            region_free(u, p);
        }
        return q;
    }
    return realloc(p, n);
}


static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f,
                            void *u);
static int on_header(nghttp2_session *s, const nghttp2_frame *f,
                     const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *u);
static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *u);
static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *u);
static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code,
                           void *u);
static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *u);
static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *f,
                            int err, void *u);
static int on_error(nghttp2_session *s, int code, const char *msg,
                    size_t len, void *u);

static nghttp2_session_callbacks *callbacks(void)
{
    static nghttp2_session_callbacks *_Atomic cbs;
    nghttp2_session_callbacks *c = cbs;
    if (c)
        return c;
    if (nghttp2_session_callbacks_new(&c) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(c, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(c, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(c, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(c, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(c, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_send_callback(c, on_frame_send);
    nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(c,
                                                                 on_invalid_frame);
    nghttp2_session_callbacks_set_error_callback2(c, on_error);
    nghttp2_session_callbacks *none = NULL;
    if (!atomic_compare_exchange_strong(&cbs, &none, c)) {
        nghttp2_session_callbacks_del(c); /* another thread was first */
        return none;
    }
    return c;
}

/* ---- Date and small helpers -------------------------------------------- */

static _Thread_local struct {
    time_t sec;
    char value[GUST_HTTP_DATE_SIZE];
} h2_date;

static const char *date_value(void)
{
    time_t now = time(NULL);
    if (now != h2_date.sec || !h2_date.value[0]) {
        gust_http_date_format(now, h2_date.value);
        h2_date.sec = now;
    }
    return h2_date.value;
}

static bool no_body_status(int s)
{
    return s == 204 || s == 304 || (s >= 100 && s < 200);
}

/* Fields HTTP/2 forbids (RFC 9113 8.2.2): never sent. */
static bool connection_specific(gust_str n)
{
    switch (n.len) {
    case 2:
        return strncasecmp(n.ptr, "te", 2) == 0;
    case 7:
        return strncasecmp(n.ptr, "upgrade", 7) == 0;
    case 10:
        return strncasecmp(n.ptr, "connection", 10) == 0 ||
               strncasecmp(n.ptr, "keep-alive", 10) == 0;
    case 16:
        return strncasecmp(n.ptr, "proxy-connection", 16) == 0;
    case 17:
        return strncasecmp(n.ptr, "transfer-encoding", 17) == 0;
    }
    return false;
}

static void chunk_free(h2_chunk *k)
{
    if (k->fd >= 0)
        close(k->fd);
    free(k);
}

static void chunks_free(h2_chunk **head, h2_chunk **tail)
{
    h2_chunk *k = *head, *next;
    for (; k; k = next) {
        next = k->next;
        chunk_free(k);
    }
    *head = *tail = NULL;
}

static h2_chunk *chunk_new(size_t len)
{
    h2_chunk *k = malloc(sizeof *k + len);
    if (k) {
        k->next = NULL;
        k->fd = -1;
        k->off = 0;
        k->len = len;
        k->pos = 0;
        k->cb = NULL;
        k->cb_data = NULL;
    }
    return k;
}

static void chunk_push(h2_chunk **head, h2_chunk **tail, h2_chunk *k)
{
    if (*tail)
        (*tail)->next = k;
    else
        *head = k;
    *tail = k;
}

/* ---- Streams ----------------------------------------------------------- */

static h2_stream *stream_new(h2_conn *h, int32_t id)
{
    h2_stream *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    gust_http_connection *c = &st->hc;
    c->srv = h->srv;
    c->stream = h->stream;
    c->proto = GUST__PROTO_H2;
    c->state = GUST__HTTP_BODY;
    memcpy(&c->peer, &h->peer, h->peer_len < sizeof c->peer ? h->peer_len
                                                             : sizeof c->peer);
    c->peer_len = (uint8_t)(h->peer_len < sizeof c->peer ? h->peer_len
                                                         : sizeof c->peer);
    if (!gust__http_conn_rq_take(c)) {
        free(st);
        return NULL;
    }
    gust__http_rq *q = c->rq;
    memcpy(q->peer_ip, h->peer_ip, sizeof q->peer_ip);
    q->peer_ip_len = h->peer_ip_len;
    gust_arena_reset(&q->arena);
    memset(&q->req, 0, sizeof q->req);
    q->streaming = q->body_paused = q->skip_body = q->finish_called = false;
    q->in_headers_received = q->cookies_parsed = false;
    q->body = NULL;
    q->body_len = q->body_cap = 0;
    q->status = 200;
    q->reason = NULL;
    q->head_line = NULL;
    q->head_line_len = 0;
    q->resp_chunked = q->resp_no_body = q->resp_close = false;
    gust_http_headers_init(&q->resp_headers, &q->arena);
    gust_http_headers_init(&q->req.headers, &q->arena);
    st->h = h;
    st->id = id;
    st->open = true;
    st->next = h->streams;
    if (h->streams)
        h->streams->prev = st;
    h->streams = st;
    h->nstreams++;
    h->nrecv++;
    conn_arm_busy(h);
    return st;
}

/* Detaches st from its connection (the connection is going, or st is). */
static void stream_unlink(h2_stream *st)
{
    h2_conn *h = st->h;
    if (!h)
        return;
    if (st->prev)
        st->prev->next = st->next;
    else
        h->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    st->prev = st->next = NULL;
    h->nstreams--;
    if (!st->dispatched && !st->skip)
        h->nrecv--;
    st->h = NULL;
    st->hc.stream = NULL;
    st->hc.closed = true;
}

static void stream_free(h2_stream *st)
{
    stream_unlink(st);
    chunks_free(&st->out, &st->out_tail);
    chunks_free(&st->held, &st->held_tail);
    gust__http_conn_rq_give_back(&st->hc);
    free(st);
}

/* Freed once nghttp2 has closed it, the application has finished it and
 * no callback of its own is due. */
static void stream_maybe_free(h2_stream *st)
{
    if (!st->open && !st->hc.app_owns && !st->pending_cbs)
        stream_free(st);
}

/* The stream no longer receives (its request is dispatched, dropped or
 * refused): the body deadline stops counting it. */
static void stream_recv_done(h2_stream *st)
{
    if (st->h && !st->dispatched && !st->skip)
        st->h->nrecv--;
}

static void stream_count(h2_stream *st)
{
    if (st->counted)
        return;
    st->counted = true;
    gust__metrics_request(st->head_done ? &st->hc.rq->req : NULL,
                          st->hc.rq->status,
                          st->head_done ? st->hc.rq->req.start_time : 0);
}

/* The connection or the stream is gone under a request the application
 * holds: it learns of it (as HTTP/1's on_connection_close). */
static void stream_lost(h2_stream *st)
{
    st->hc.closed = true;
    st->pending_cbs++; /* not freed by a finish from in there */
    if (st->hc.app_owns) {
        const gust_http_delegate *d = st->hc.srv->handler.delegate;
        if (d && d->on_connection_close)
            d->on_connection_close(&st->hc.rq->req, st->hc.srv->handler.data);
    }
    /* Flush and sendfile callbacks still due learn of it too. */
    h2_chunk *k;
    while ((k = st->out)) {
        st->out = k->next;
        if (!st->out)
            st->out_tail = NULL;
        if (k->cb && st->hc.app_owns)
            k->cb(&st->hc.rq->req, GUST_ESTREAMCLOSED, k->cb_data);
        chunk_free(k);
    }
    st->pending_cbs--;
}

static void stream_reset(h2_stream *st, uint32_t code)
{
    h2_conn *h = st->h;
    if (!h || !st->open || st->reset_sent)
        return;
    st->reset_sent = true;
    nghttp2_submit_rst_stream(h->sess, NGHTTP2_FLAG_NONE, st->id, code);
}

/* ---- Requests ---------------------------------------------------------- */

static gust_http_method method_id_of(const char *m, const char **name)
{
    gust_http_method id = GUST_HTTP_OTHER;
    switch (m[0]) {
    case 'G': id = GUST_HTTP_GET; break;
    case 'H': id = GUST_HTTP_HEAD; break;
    case 'P': id = m[1] == 'O' ? GUST_HTTP_POST
                   : m[1] == 'U' ? GUST_HTTP_PUT : GUST_HTTP_PATCH; break;
    case 'D': id = GUST_HTTP_DELETE; break;
    case 'O': id = GUST_HTTP_OPTIONS; break;
    case 'C': id = GUST_HTTP_CONNECT; break;
    case 'T': id = GUST_HTTP_TRACE; break;
    }
    const char *n = id ? gust__http_method_name(id) : NULL;
    if (n && strcmp(n, m) == 0) {
        *name = n;
        return id;
    }
    *name = m;
    return GUST_HTTP_OTHER;
}

/* Fills st's gust_http_request once its head is complete. 0 or -ENOMEM. */
static int stream_setup(h2_stream *st)
{
    h2_conn *h = st->h;
    gust__http_rq *q = st->hc.rq;
    gust_http_request *r = &q->req;
    gust_arena *a = &q->arena;
    h->srv->requests_total++;
    h->got_request = true;
    r->arena = a;
    r->method_id = method_id_of(st->method ? st->method : "GET", &r->method);
    r->uri = r->uri_len_of = st->path ? st->path : "/";
    r->uri_len = strlen(r->uri);
    const char *qm = strchr(r->uri, '?');
    if (qm) {
        r->path = gust_arena_strndup(a, r->uri, (size_t)(qm - r->uri));
        r->query = qm + 1;
    } else {
        r->path = r->uri;
        r->query = "";
    }
    if (!r->path)
        return -ENOMEM;
    r->version = "HTTP/2.0";
    r->version_minor = 1;
    if (st->cookie &&
        gust_http_headers_add(&r->headers, GUST_STR("cookie"),
                              gust_str_make(st->cookie, st->cookie_len),
                              GUST_HEADER_TRUSTED) < 0)
        return -ENOMEM;
    gust_http_args_init(&r->query_arguments, a);
    gust_http_args_init(&r->body_arguments, a);
    gust_http_args_init(&r->arguments, a);
    gust_http_files_init(&r->files, a);
    if (*r->query &&
        gust_http_args_parse_urlencoded(&r->query_arguments,
                                        gust_str_cstr(r->query)))
        return -ENOMEM;
    r->remote_ip = r->remote_ip_len_of = q->peer_ip;
    r->remote_ip_len = q->peer_ip_len;
    r->protocol = h->srv->protocol ? h->srv->protocol
                  : h->stream && gust_stream_is_tls(h->stream) ? "https"
                                                               : "http";
    const char *host = st->authority;
    if (!host) {
        gust_str hv = gust_http_headers_get_first(&r->headers, GUST_STR("host"));
        if (hv.ptr)
            host = gust_arena_strndup(a, hv.ptr, hv.len);
    } else if (!gust_http_headers_has(&r->headers, GUST_STR("host"))) {
        /* Handlers (and the web layer) read Host like HTTP/1's. */
        gust_http_headers_add(&r->headers, GUST_STR("host"),
                              gust_str_cstr(host), GUST_HEADER_TRUSTED);
    }
    gust__http_request_set_host(r, a, host);
    if (h->srv->opts.xheaders)
        gust__http_conn_apply_xheaders(&st->hc);
    r->start_time = gust_loop_time(conn_loop(h));
    r->connection = &st->hc;
    r->body = gust_str_make("", 0);
    q->resp_mode = GUST__RESP_NONE;
    q->headers_sent = q->aborted = q->resp_len_set = false;
    q->sbody_len = 0;
    q->out_len = 0;
    st->head_done = true;
    return 0;
}

/* A request refused before the handler saw it: a short answer, then the
 * stream is reset if the client is still sending. */
static void stream_refuse(h2_stream *st, int status, const char *why)
{
    h2_conn *h = st->h;
    gust_log_warning(LOG, "%s: stream %d: %d %s", h->peer_ip, st->id, status,
                     why);
    stream_recv_done(st);
    st->skip = true;
    gust__http_rq *q = st->hc.rq;
    if (q->headers_sent || st->final) {
        stream_reset(st, NGHTTP2_INTERNAL_ERROR);
        return;
    }
    q->status = status;
    q->resp_mode = GUST__RESP_STRUCT;
    q->sbody_len = 0;
    gust_http_headers_clear(&q->resp_headers);
    st->counted = false;
    stream_count(st);
    if (stream_submit(st, true) < 0)
        stream_reset(st, NGHTTP2_INTERNAL_ERROR);
}

/* The body is complete (END_STREAM): the handler runs. */
static void stream_dispatch(h2_stream *st)
{
    gust__http_rq *q = st->hc.rq;
    gust_http_request *r = &q->req;
    gust_http_server *srv = st->hc.srv;
    if (st->dispatched || st->skip || st->err_status)
        return;
    if (!q->streaming && q->body)
        r->body = gust_str_make(q->body, q->body_len);
    gust__http_request_collect_args(q, LOG);
    stream_recv_done(st);
    st->dispatched = true;
    q->finish_called = true;
    st->hc.app_owns = true;
    st->hc.state = GUST__HTTP_HANDLER;
    gust__http_server_run_handler(srv, r);
}

/* Head complete: set up, headers_received, and dispatched at once when
 * there is no body. */
static void stream_head_done(h2_stream *st, bool end_stream)
{
    gust_http_server *srv = st->hc.srv;
    if (st->err_status) {
        stream_refuse(st, st->err_status, st->err_reason);
        return;
    }
    if (stream_setup(st) < 0) {
        stream_refuse(st, 503, "out of memory");
        return;
    }
    gust__http_rq *q = st->hc.rq;
    gust_str cl = gust_http_headers_get_first(&q->req.headers,
                                              GUST_STR("content-length"));
    if (cl.ptr) {
        uint64_t n = 0;
        bool seen = false;
        if (gust__http1_parse_content_length((gust__http1_slice){cl.ptr, cl.len},
                                             &n, &seen) == NULL &&
            n > srv->opts.max_body_size) {
            stream_refuse(st, 413, "content-length over max_body_size");
            return;
        }
    }
    const gust_http_delegate *d = srv->handler.delegate;
    if (d && d->headers_received) {
        q->in_headers_received = true;
        st->hc.app_owns = true;
        int rc = d->headers_received(&q->req, srv->handler.data);
        q->in_headers_received = false;
        if (rc > 0 || !st->hc.app_owns) { /* answered: the body is dropped */
            stream_recv_done(st);
            st->skip = true;
            return;
        }
    }
    if (end_stream) {
        st->remote_done = true;
        if (!q->body_paused) /* else resume_body dispatches */
            stream_dispatch(st);
        return;
    }
    gust_str ex = gust_http_headers_get_first(&q->req.headers,
                                              GUST_STR("expect"));
    if (ex.ptr && gust_str_eq_nocase(ex, GUST_STR("100-continue")) &&
        !q->headers_sent && st->h) {
        /* The client waits for it before sending the body. */
        nghttp2_nv nv = make_nv(GUST_STR(":status"), GUST_STR("100"));
        nghttp2_submit_headers(st->h->sess, NGHTTP2_FLAG_NONE, st->id, NULL,
                               &nv, 1, NULL);
    }
}

/* Hands body bytes to a streaming delegate; false when it refused them
 * (answered) or finished meanwhile. */
static bool stream_deliver(h2_stream *st, const char *p, size_t n)
{
    const gust_http_delegate *d = st->hc.srv->handler.delegate;
    gust__http_rq *q = st->hc.rq;
    if (d && d->data_received &&
        d->data_received(&q->req, p, n, st->hc.srv->handler.data) < 0) {
        stream_refuse(st, 400, "body refused by the handler");
        return false;
    }
    if (st->h && st->open)
        nghttp2_session_consume_stream(st->h->sess, st->id, n);
    return true;
}

/* resume_body: what was held is delivered, from a later loop turn. */
static void on_stream_resume(gust_timer *t, void *data)
{
    (void)t;
    h2_stream *st = data;
    gust__http_rq *q = st->hc.rq;
    while (st->held && !q->body_paused && !st->skip && st->h) {
        h2_chunk *k = st->held;
        st->held = k->next;
        if (!st->held)
            st->held_tail = NULL;
        bool ok = stream_deliver(st, k->data, k->len);
        free(k);
        if (!ok)
            break;
    }
    if (!st->held && !q->body_paused && st->remote_done && st->h)
        stream_dispatch(st);
    if (st->h)
        conn_send(st->h);
}

/* ---- nghttp2 callbacks: input ------------------------------------------ */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f,
                            void *u)
{
    h2_conn *h = u;
    if (f->hd.type != NGHTTP2_HEADERS ||
        f->headers.cat != NGHTTP2_HCAT_REQUEST || h->rebuilding)
        return 0;
    h2_stream *st = stream_new(h, f->hd.stream_id);
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
    return 0;
}

static char *arena_copy(gust_arena *a, const uint8_t *p, size_t n)
{
    return gust_arena_strndup(a, (const char *)p, n);
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f,
                     const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *u)
{
    (void)flags, (void)u;
    if (f->hd.type != NGHTTP2_HEADERS)
        return 0;
    h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
    if (!st)
        return 0;
    if (st->head_done)
        return 0; /* trailers: checked by nghttp2, not kept */
    const gust_http_server_options *o = &st->hc.srv->opts;
    st->head_bytes += namelen + valuelen + 32;
    st->head_fields++;
    if (st->err_status) {
        /* Refused already: a decoded list far past the bound is not
         * worth answering (an HPACK bomb). */
        if (st->head_bytes > 4 * o->max_header_size + 65536)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        return 0;
    }
    if (st->head_bytes > o->max_header_size + 32) {
        st->err_status = 431;
        st->err_reason = "header list over max_header_size";
        return 0;
    }
    if (st->head_fields > o->max_header_count + 4) {
        st->err_status = 431;
        st->err_reason = "more fields than max_header_count";
        return 0;
    }
    gust_arena *a = &st->hc.rq->arena;
    if (namelen && name[0] == ':') {
        char *v = arena_copy(a, value, valuelen);
        if (!v)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (namelen == 7 && memcmp(name, ":method", 7) == 0)
            st->method = v;
        else if (namelen == 5 && memcmp(name, ":path", 5) == 0)
            st->path = v;
        else if (namelen == 10 && memcmp(name, ":authority", 10) == 0)
            st->authority = v;
        else if (namelen == 7 && memcmp(name, ":scheme", 7) == 0)
            st->scheme = v;
        return 0;
    }
    if (namelen == 6 && memcmp(name, "cookie", 6) == 0) {
        /* RFC 9113 8.2.3: crumbs are joined with "; " for HTTP/1 code. */
        size_t n = st->cookie_len + (st->cookie ? 2 : 0) + valuelen;
        char *c = gust_arena_realloc(a, st->cookie,
                                     st->cookie ? st->cookie_len + 1 : 0,
                                     n + 1);
        if (!c)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        if (st->cookie) {
            c[st->cookie_len] = ';';
            c[st->cookie_len + 1] = ' ';
        }
        memcpy(c + n - valuelen, value, valuelen);
        c[n] = 0;
        st->cookie = c;
        st->cookie_len = n;
        return 0;
    }
    char *nm = arena_copy(a, name, namelen);
    char *v = arena_copy(a, value, valuelen);
    if (!nm || !v ||
        gust_http_headers_add(&st->hc.rq->req.headers,
                              gust_str_make(nm, namelen),
                              gust_str_make(v, valuelen),
                              GUST_HEADER_TRUSTED) < 0)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
    h2_conn *h = u;
    bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (h->rebuilding)
        return 0;
    switch (f->hd.type) {
    case NGHTTP2_SETTINGS:
        if (f->hd.flags & NGHTTP2_FLAG_ACK)
            h->settings_acked = true;
        else
            h->peer_settings = true;
        break;
    case NGHTTP2_HEADERS: {
        h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (!st)
            return 0;
        if (f->headers.cat == NGHTTP2_HCAT_REQUEST) {
            stream_head_done(st, end);
        } else if (end && st->head_done) { /* trailers end the body */
            st->remote_done = true;
            if (!st->held && !st->hc.rq->body_paused)
                stream_dispatch(st);
        }
        break;
    }
    case NGHTTP2_DATA: {
        if (!end)
            break;
        h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (!st || !st->head_done)
            break;
        st->remote_done = true;
        if (!st->held && !st->hc.rq->body_paused)
            stream_dispatch(st);
        break;
    }
    case NGHTTP2_GOAWAY:
        h->draining = true;
        break;
    case NGHTTP2_RST_STREAM: {
        /* Rapid reset (CVE-2023-44487): a token bucket of
         * http2_reset_burst, refilled at http2_reset_rate per second. */
        const gust_http_server_options *o = &h->srv->opts;
        double now = gust_loop_time(conn_loop(h));
        h->reset_tokens = fmin((double)o->http2_reset_burst,
                               h->reset_tokens +
                                   (now - h->reset_at) * o->http2_reset_rate);
        h->reset_at = now;
        if (h->reset_tokens < 1) {
            gust_log_warning(LOG, "%s: rapid reset (more than %u stream "
                             "resets at once, %u/s after), GOAWAY",
                             h->peer_ip, o->http2_reset_burst,
                             o->http2_reset_rate);
            nghttp2_session_terminate_session(s, NGHTTP2_ENHANCE_YOUR_CALM);
            break;
        }
        h->reset_tokens -= 1;
        break;
    }
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *u)
{
    (void)flags;
    h2_conn *h = u;
    nghttp2_session_consume_connection(s, len);
    h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || st->skip || st->err_status || !st->head_done ||
        st->dispatched) {
        nghttp2_session_consume_stream(s, id, len);
        return 0;
    }
    gust__http_rq *q = st->hc.rq;
    if (q->streaming) {
        if (q->body_paused || st->held) {
            h2_chunk *k = chunk_new(len);
            if (!k)
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            memcpy(k->data, data, len);
            chunk_push(&st->held, &st->held_tail, k);
            return 0; /* the window stays shut until delivered */
        }
        stream_deliver(st, (const char *)data, len);
        return 0;
    }
    nghttp2_session_consume_stream(s, id, len);
    if (q->body_len + len > h->srv->opts.max_body_size) {
        stream_refuse(st, 413, "body over max_body_size");
        return 0;
    }
    if (q->body_len + len > q->body_cap) {
        size_t cap = q->body_cap ? q->body_cap * 2 : 4096;
        while (cap < q->body_len + len)
            cap *= 2;
        char *nb = gust_arena_realloc(&q->arena, q->body, q->body_cap, cap);
        if (!nb) {
            stream_refuse(st, 413, "out of memory for the body");
            return 0;
        }
        q->body = nb;
        q->body_cap = cap;
    }
    memcpy(q->body + q->body_len, data, len);
    q->body_len += len;
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t code,
                           void *u)
{
    (void)code;
    h2_conn *h = u;
    h2_stream *st = nghttp2_session_get_stream_user_data(s, id);
    if (!st || h->rebuilding)
        return 0;
    nghttp2_session_set_stream_user_data(s, id, NULL);
    st->open = false;
    if (!st->counted && !st->hc.app_owns && !st->dispatched && st->head_done &&
        !st->final)
        st->counted = true; /* reset before any answer: not a request served */
    if (!st->final || st->hc.app_owns)
        stream_lost(st);
    stream_unlink(st);
    stream_maybe_free(st);
    if (h->nstreams == 0)
        conn_idle_check(h);
    return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *f, void *u)
{
    h2_conn *h = u;
    if (h->rebuilding)
        return 0;
    if (f->hd.type == NGHTTP2_GOAWAY) {
        if (f->goaway.error_code != NGHTTP2_NO_ERROR)
            gust_log_warning(LOG, "%s: GOAWAY %s, closing", h->peer_ip,
                             nghttp2_http2_strerror(f->goaway.error_code));
        if (f->goaway.last_stream_id != (1u << 31) - 1)
            h->goaway_sent = true;
        return 0;
    }
    if ((f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS) &&
        (f->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        /* Answered while the client still sends: RFC 9113 8.1 says stop
         * it with NO_ERROR once the response is complete. */
        h2_stream *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
        if (st && !nghttp2_session_get_stream_remote_close(s, f->hd.stream_id))
            stream_reset(st, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_invalid_frame(nghttp2_session *s, const nghttp2_frame *f,
                            int err, void *u)
{
    (void)s;
    h2_conn *h = u;
    if (h->rebuilding) { /* a bug: conn_rebuild fails, conn_awake closes */
        gust_log_error(LOG, "%s: rebuilding the session: frame %d refused "
                       "(%s)", h->peer_ip, f->hd.type, nghttp2_strerror(err));
        return 0;
    }
    gust_log_warning(LOG, "%s: invalid frame (type %d, stream %d): %s",
                     h->peer_ip, f->hd.type, f->hd.stream_id,
                     nghttp2_strerror(err));
    return 0;
}

static int on_error(nghttp2_session *s, int code, const char *msg,
                    size_t len, void *u)
{
    (void)s, (void)code;
    h2_conn *h = u;
    gust_log_warning(LOG, "%s: %.*s", h->peer_ip, (int)len, msg);
    return 0;
}

/* ---- Responses --------------------------------------------------------- */

/* The data provider: the queued chunks, then the tail of sbody. */
static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf,
                         size_t length, uint32_t *flags,
                         nghttp2_data_source *src, void *u)
{
    (void)s, (void)id, (void)u;
    h2_stream *st = src->ptr;
    h2_conn *h = st->h;
    size_t n = 0;
    while (n < length && st->out) {
        h2_chunk *k = st->out;
        size_t take = k->len - k->pos;
        if (take > length - n)
            take = length - n;
        if (take && k->fd >= 0) {
            ssize_t r = pread(k->fd, buf + n, take, k->off + (off_t)k->pos);
            if (r <= 0) {
                gust_log_error(LOG, "%s: stream %d: file shorter than sent, "
                               "resetting", h->peer_ip, st->id);
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
            }
            take = (size_t)r;
        } else if (take) {
            memcpy(buf + n, k->data + k->pos, take);
        }
        k->pos += take;
        n += take;
        if (k->pos < k->len)
            continue;
        st->out = k->next;
        if (!st->out)
            st->out_tail = NULL;
        if (k->cb && h) {
            /* Run once this batch is written (conn_send). */
            h2_cb *w = malloc(sizeof *w);
            if (w) {
                *w = (h2_cb){NULL, st, k->cb, k->cb_data};
                st->pending_cbs++;
                if (h->cbs_tail)
                    h->cbs_tail->next = w;
                else
                    h->cbs = w;
                h->cbs_tail = w;
            }
        }
        chunk_free(k);
    }
    if (!st->out && st->tail_sbody && n < length) {
        gust__http_rq *q = st->hc.rq;
        size_t take = q->sbody_len - st->tail_pos;
        if (take > length - n)
            take = length - n;
        memcpy(buf + n, q->sbody + st->tail_pos, take);
        st->tail_pos += take;
        n += take;
        if (st->tail_pos == q->sbody_len) {
            st->tail_sbody = false;
            q->sbody_len = 0;
            st->tail_pos = 0;
        }
    }
    if (!st->out && !st->tail_sbody && st->final) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        return (ssize_t)n;
    }
    if (n == 0) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

/* Lowercased in the arena when it has capitals (HTTP/2 field names are
 * lowercase on the wire, RFC 9113 8.2.1). */
static gust_str lower_name(gust_arena *a, gust_str n)
{
    size_t i = 0;
    while (i < n.len && !(n.ptr[i] >= 'A' && n.ptr[i] <= 'Z'))
        i++;
    if (i == n.len)
        return n;
    char *p = gust_arena_alloc(a, n.len ? n.len : 1);
    if (!p)
        return gust_str_make(NULL, 0);
    for (i = 0; i < n.len; i++) {
        char ch = n.ptr[i];
        p[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
    }
    return gust_str_make(p, n.len);
}

static inline nghttp2_nv make_nv(gust_str n, gust_str v)
{
    return (nghttp2_nv){(uint8_t *)n.ptr, (uint8_t *)v.ptr, n.len, v.len,
                        NGHTTP2_NV_FLAG_NO_COPY_NAME |
                            NGHTTP2_NV_FLAG_NO_COPY_VALUE};
}

static char *arena_u64(gust_arena *a, uint64_t v, size_t *len)
{
    char d[24];
    size_t n = 0;
    do {
        d[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    char *p = gust_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    for (size_t i = 0; i < n; i++)
        p[i] = d[n - 1 - i];
    p[n] = 0;
    *len = n;
    return p;
}

/* HEADERS of st's response: :status, Date and Server unless set, the
 * application's fields lowercased and without the connection-specific
 * ones, content-length when the whole body is known. */
static int submit_head(h2_stream *st, bool final)
{
    h2_conn *h = st->h;
    gust__http_rq *q = st->hc.rq;
    gust_arena *a = &q->arena;
    gust_http_server *srv = st->hc.srv;
    gust_http_headers *hd = &q->resp_headers;
    q->resp_no_body = no_body_status(q->status) ||
                      q->req.method_id == GUST_HTTP_HEAD;
    nghttp2_nv *nv = gust_arena_alloc(a, (hd->count + 6) * sizeof *nv);
    char *status = gust_arena_alloc(a, 4);
    if (!nv || !status)
        return -ENOMEM;
    int sc = q->status;
    status[0] = (char)('0' + sc / 100 % 10);
    status[1] = (char)('0' + sc / 10 % 10);
    status[2] = (char)('0' + sc % 10);
    status[3] = 0;
    size_t n = 0;
    nv[n++] = make_nv(GUST_STR(":status"), gust_str_make(status, 3));
    bool has_date = false, has_server = false, has_len = false;
    for (size_t i = 0; i < hd->count; i++) {
        gust_str name = hd->items[i].name;
        if (connection_specific(name))
            continue;
        if (GUST__NAME_IS(name, "Date"))
            has_date = true;
        else if (GUST__NAME_IS(name, "Server"))
            has_server = true;
        else if (GUST__NAME_IS(name, "Content-Length"))
            has_len = true;
        gust_str ln = lower_name(a, name);
        if (!ln.ptr)
            return -ENOMEM;
        nv[n++] = make_nv(ln, hd->items[i].value);
    }
    if (q->head_line_len > 2) {
        /* put_line's "Name: value\r\n" */
        const char *l = q->head_line;
        const char *colon = memchr(l, ':', q->head_line_len);
        if (colon) {
            gust_str ln = lower_name(a, gust_str_make(l, (size_t)(colon - l)));
            const char *v = colon + 1;
            const char *e = l + q->head_line_len;
            while (e > v && (e[-1] == '\n' || e[-1] == '\r'))
                e--;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            if (!ln.ptr)
                return -ENOMEM;
            nv[n++] = make_nv(ln, gust_str_make(v, (size_t)(e - v)));
        }
    }
    if (!has_date) {
        char *d = gust_arena_strdup(a, date_value());
        if (!d)
            return -ENOMEM;
        nv[n++] = make_nv(GUST_STR("date"), gust_str_cstr(d));
    }
    if (!has_server && srv->server_header_len > 10)
        nv[n++] = make_nv(GUST_STR("server"),
                          gust_str_make(srv->server_header + 8,
                                        srv->server_header_len - 10));
    if (has_len && !q->resp_no_body) {
        gust_str v = gust_http_headers_get_first(hd, GUST_STR("Content-Length"));
        uint64_t len = 0;
        bool seen = false;
        if (gust__http1_parse_content_length((gust__http1_slice){v.ptr, v.len},
                                             &len, &seen) == NULL) {
            q->resp_len_set = true;
            q->resp_len_left = len;
        }
    } else if (!has_len && final && !no_body_status(sc)) {
        size_t ll;
        char *lv = arena_u64(a, q->sbody_len, &ll);
        if (!lv)
            return -ENOMEM;
        nv[n++] = make_nv(GUST_STR("content-length"), gust_str_make(lv, ll));
    }
    bool body = !(final && (q->resp_no_body || q->sbody_len == 0) && !st->out);
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
    int rv = nghttp2_submit_response(h->sess, st->id, nv, n,
                                     body ? &prd : NULL);
    if (rv < 0) {
        gust_log_error(LOG, "%s: stream %d: cannot submit response: %s",
                       h->peer_ip, st->id, nghttp2_strerror(rv));
        return rv == NGHTTP2_ERR_NOMEM ? -ENOMEM : GUST_ESTREAMCLOSED;
    }
    q->headers_sent = true;
    if (!body)
        st->final = true;
    return 0;
}

static void conn_kick(h2_conn *h);

/* Sends the head if not yet, and queues the buffered body (final: the
 * response is complete, END_STREAM after it). */
static int stream_submit(h2_stream *st, bool final)
{
    h2_conn *h = st->h;
    gust__http_rq *q = st->hc.rq;
    if (!h || !st->open || st->reset_sent || st->final) {
        q->sbody_len = 0;
        return GUST_ESTREAMCLOSED;
    }
    int rc = 0;
    if (!q->headers_sent && (rc = submit_head(st, final)) < 0)
        return rc;
    if (q->resp_no_body || q->aborted)
        q->sbody_len = 0;
    if (q->sbody_len && gust__http_conn_count_body(&st->hc, q->sbody_len) < 0) {
        q->sbody_len = 0;
        stream_reset(st, NGHTTP2_INTERNAL_ERROR);
        return -EMSGSIZE;
    }
    if (final) {
        if (q->resp_len_set && q->resp_len_left > q->sbody_len &&
            !q->resp_no_body) {
            gust_log_error(LOG, "%s %s: response body %" PRIu64 " bytes short "
                           "of its content-length; resetting the stream",
                           q->req.method, q->req.uri,
                           q->resp_len_left - q->sbody_len);
            q->sbody_len = 0;
            stream_reset(st, NGHTTP2_INTERNAL_ERROR);
            return 0;
        }
        if (q->sbody_len && !st->final) {
            st->tail_sbody = true; /* sbody is not written to again */
            st->tail_pos = 0;
        }
        st->final = true;
    } else if (q->sbody_len) {
        h2_chunk *k = chunk_new(q->sbody_len);
        if (!k)
            return -ENOMEM;
        memcpy(k->data, q->sbody, q->sbody_len);
        chunk_push(&st->out, &st->out_tail, k);
        q->sbody_len = 0;
    }
    if (st->deferred) {
        st->deferred = false;
        nghttp2_session_resume_data(h->sess, st->id);
    }
    conn_kick(h);
    return rc;
}

/* ---- Raw responses: the HTTP/1 head the handler wrote, as frames ------- */

/* Parses what write_raw gathered in q->out: the head once, then body
 * bytes (de-chunked) into sbody. Returns 0, 1 while the head is not
 * complete, or < 0 (malformed: the stream is reset). */
static int raw_parse(h2_stream *st)
{
    gust__http_rq *q = st->hc.rq;
    if (!st->raw_head) {
        if (!q->out_len) /* nothing written yet (a write of 0 bytes) */
            return 1;
        gust__http1_response resp = {0};
        resp.headers = q->head.headers;
        resp.max_headers = q->head_slots;
        int n = gust__http1_parse_response(q->out, q->out_len, 0,
                                           st->hc.srv->opts.max_header_size +
                                               GUST__HTTP_BUF_SLACK,
                                           0, &resp);
        if (n == GUST_HTTP1_INCOMPLETE)
            return 1;
        if (n < 0) {
            gust_log_error(LOG, "%s %s: raw response head unusable (%s); "
                           "resetting the stream", q->req.method, q->req.uri,
                           resp.error_reason ? resp.error_reason : "?");
            return -EINVAL;
        }
        gust__http1_framing fr;
        gust__http1_slice m = {q->req.method, strlen(q->req.method)};
        if (gust__http1_response_framing(&resp, m, &fr) < 0)
            return -EINVAL;
        q->status = resp.status;
        for (size_t i = 0; i < resp.num_headers; i++) {
            gust__http1_header *f = &resp.headers[i];
            gust_str name = gust_str_make(f->name.ptr, f->name.len);
            if (connection_specific(name))
                continue;
            if (gust_http_headers_add(&q->resp_headers, name,
                                      gust_str_make(f->value.ptr, f->value.len),
                                      GUST_HEADER_COPY | GUST_HEADER_TRUSTED) < 0)
                return -ENOMEM;
        }
        st->raw_head = true;
        st->raw_chunked = fr.body == GUST_HTTP1_BODY_CHUNKED; /* de-chunk */
        if (st->raw_chunked)
            gust__http1_chunked_init(&q->chunked, UINT64_MAX,
                                     st->hc.srv->opts.max_header_size);
        memmove(q->out, q->out + n, q->out_len - (size_t)n);
        q->out_len -= (size_t)n;
    }
    if (!q->out_len)
        return 0;
    size_t dlen = q->out_len;
    if (st->raw_chunked) {
        ssize_t r = gust__http1_chunked_decode(&q->chunked, q->out, q->out_len,
                                               &dlen);
        if (r == GUST_HTTP1_ERROR)
            return -EINVAL;
        /* INCOMPLETE: the decoder took every byte (it keeps its state);
         * >= 0: the body ended, what follows is not part of it. */
    }
    q->out_len = 0;
    if (dlen == 0)
        return 0;
    int rc = gust__http_buf_reserve(&q->sbody, &q->sbody_cap,
                                    q->sbody_len + dlen, 1024);
    if (rc < 0)
        return rc;
    memcpy(q->sbody + q->sbody_len, q->out, dlen);
    q->sbody_len += dlen;
    return 0;
}

int gust__h2_write_raw(gust_http_connection *c, const void *p, size_t n)
{
    h2_stream *st = stream_of(c);
    gust__http_rq *q = c->rq;
    if (!st->h || !st->open || c->closed)
        return GUST_ESTREAMCLOSED;
    if (n == 0)
        return 0; /* p may be NULL */
    int rc = gust__http_buf_reserve(&q->out, &q->out_cap, q->out_len + n, 4096);
    if (rc < 0)
        return rc;
    memcpy(q->out + q->out_len, p, n);
    q->out_len += n;
    rc = raw_parse(st);
    if (rc < 0) {
        stream_reset(st, NGHTTP2_INTERNAL_ERROR);
        return rc;
    }
    /* A whole body of known length waits for finish (one HEADERS with
     * END_STREAM or a DATA after it); streamed ones go now. */
    if (rc == 0 && st->raw_head &&
        (q->sbody_len >= 64 * 1024 ||
         !gust_http_headers_has(&q->resp_headers, GUST_STR("Content-Length"))))
        return stream_submit(st, false);
    return 0;
}

/* ---- The per-stream calls of http_server.c ----------------------------- */

int gust__h2_flush(gust_http_connection *c,
                   void (*cb)(gust_http_request *, int, void *), void *data)
{
    h2_stream *st = stream_of(c);
    if (!st->h || !st->open || st->reset_sent)
        return GUST_ESTREAMCLOSED;
    int rc = 0;
    if (c->rq->resp_mode == GUST__RESP_RAW)
        rc = raw_parse(st) < 0 ? -EINVAL : 0;
    if (rc == 0 && (c->rq->resp_mode != GUST__RESP_RAW || st->raw_head))
        rc = stream_submit(st, false);
    if (rc == 0 && cb) {
        h2_chunk *k = chunk_new(0);
        if (!k)
            return -ENOMEM;
        k->cb = cb;
        k->cb_data = data;
        chunk_push(&st->out, &st->out_tail, k);
        if (st->deferred) {
            st->deferred = false;
            nghttp2_session_resume_data(st->h->sess, st->id);
        }
        conn_kick(st->h);
    }
    return rc;
}

int gust__h2_sendfile(gust_http_connection *c, int fd, off_t offset,
                      size_t len, void (*cb)(gust_http_request *, int, void *),
                      void *data)
{
    h2_stream *st = stream_of(c);
    gust__http_rq *q = c->rq;
    if (!st->h || !st->open || st->reset_sent)
        return GUST_ESTREAMCLOSED;
    int rc = stream_submit(st, false);
    if (rc < 0)
        return rc;
    bool skip = q->resp_no_body || len == 0;
    if (!skip && (q->aborted || gust__http_conn_count_body(c, len) < 0)) {
        stream_reset(st, NGHTTP2_INTERNAL_ERROR);
        return -EMSGSIZE;
    }
    h2_chunk *k = chunk_new(0);
    if (!k)
        return -ENOMEM;
    k->cb = cb;
    k->cb_data = data;
    if (!skip) {
        k->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (k->fd < 0) {
            rc = -errno;
            free(k);
            return rc;
        }
        k->off = offset;
        k->len = len;
        gust__metrics_bytes_out(len);
    }
    chunk_push(&st->out, &st->out_tail, k);
    if (st->deferred) {
        st->deferred = false;
        nghttp2_session_resume_data(st->h->sess, st->id);
    }
    conn_kick(st->h);
    return 0;
}

/* The application let go of the request. */
static void stream_release(h2_stream *st)
{
    h2_conn *h = st->h;
    stream_count(st);
    st->hc.app_owns = false;
    if (!st->dispatched && !st->skip) {
        /* Finished before its body was all read: the rest is dropped. */
        stream_recv_done(st);
        st->skip = true;
        chunks_free(&st->held, &st->held_tail);
    }
    stream_maybe_free(st);
    if (h)
        conn_kick(h);
}

int gust__h2_finish(gust_http_connection *c)
{
    h2_stream *st = stream_of(c);
    gust__http_rq *q = c->rq;
    int rc = 0;
    if (!st->h || !st->open || st->reset_sent || c->closed) {
        rc = GUST_ESTREAMCLOSED;
    } else if (q->resp_mode == GUST__RESP_RAW) {
        rc = raw_parse(st);
        if (rc != 0) {
            gust_log_error(LOG, "%s %s: raw response %s; resetting the stream",
                           q->req.method, q->req.uri,
                           rc > 0 ? "head incomplete" : "unusable");
            stream_reset(st, NGHTTP2_INTERNAL_ERROR);
            rc = -EINVAL;
        } else {
            rc = stream_submit(st, true);
        }
    } else {
        q->resp_mode = GUST__RESP_STRUCT;
        rc = stream_submit(st, true);
    }
    stream_release(st);
    return rc;
}

int gust__h2_abort(gust_http_connection *c)
{
    h2_stream *st = stream_of(c);
    c->rq->sbody_len = 0;
    c->rq->aborted = true;
    st->tail_sbody = false;
    chunks_free(&st->out, &st->out_tail);
    stream_reset(st, NGHTTP2_INTERNAL_ERROR);
    stream_release(st);
    return 0;
}

int gust__h2_pause_body(gust_http_connection *c, bool pause)
{
    h2_stream *st = stream_of(c);
    gust__http_rq *q = c->rq;
    if (st->dispatched || st->skip || c->closed || !st->h)
        return pause ? -EINVAL : 0;
    if (q->body_paused == pause)
        return 0;
    q->body_paused = pause;
    if (!pause)
        gust_timer_start(&q->resume, 0, 0, on_stream_resume, st);
    return 0;
}

const struct sockaddr *gust__h2_peer(const gust_http_connection *c,
                                     socklen_t *len)
{
    if (len)
        *len = c->peer_len;
    return &c->peer.sa;
}

/* ---- The connection: output ------------------------------------------- */

static void on_cb_written(gust_stream *s, int status, void *user)
{
    (void)s;
    h2_cb *w = user;
    h2_stream *st = w->st;
    st->pending_cbs--;
    if (st->hc.app_owns && w->cb)
        w->cb(&st->hc.rq->req, status < 0 ? GUST_ESTREAMCLOSED : 0, w->data);
    free(w);
    stream_maybe_free(st);
}

static void on_written(gust_stream *s, int status, void *user)
{
    (void)s;
    h2_conn *h = user;
    h->write_waiting = false;
    if (status < 0 || h->closed)
        return;
    h->last_out = gust_loop_time(conn_loop(h));
    conn_send(h);
    conn_start_read(h);
}

/* Output buffers: written by reference (the stream copies nothing, even
 * when the socket is full) and reused, from a per-thread cache, so that
 * a large response costs no allocation per write. */
#define OBUF_CAP (96 * 1024)
#define OBUF_INFLIGHT 4
#define OBUF_CACHE 32
typedef struct h2_obuf {
    struct h2_obuf *next;
    h2_conn *h;
    char data[OBUF_CAP];
} h2_obuf;

static _Thread_local struct {
    h2_obuf *free;
    int n;
} obuf_cache;

static h2_obuf *obuf_get(void)
{
    h2_obuf *b = obuf_cache.free;
    if (b) {
        obuf_cache.free = b->next;
        obuf_cache.n--;
        return b;
    }
    return malloc(sizeof *b);
}

static void obuf_put(h2_obuf *b)
{
    if (!b)
        return;
    if (obuf_cache.n < OBUF_CACHE) {
        b->next = obuf_cache.free;
        obuf_cache.free = b;
        obuf_cache.n++;
    } else {
        free(b);
    }
}

static void on_obuf_written(gust_stream *s, int status, void *user)
{
    (void)s;
    h2_obuf *b = user;
    h2_conn *h = b->h;
    obuf_put(b);
    h->inflight--;
    if (status < 0 || h->closed)
        return;
    h->last_out = gust_loop_time(conn_loop(h));
    if (h->write_waiting) {
        h->write_waiting = false;
        conn_send(h);
        conn_start_read(h);
    }
}

static void conn_write_out(h2_conn *h)
{
    if (!h->out_len)
        return;
    gust__metrics_bytes_out(h->out_len);
    struct iovec iov = {h->ob->data, h->out_len};
    h->ob->h = h;
    if (gust_stream_write_ref(h->stream, &iov, 1, on_obuf_written, h->ob) == 0) {
        h->inflight++;
        h->ob = NULL;
    }
    h->out_len = 0;
    h->last_out = gust_loop_time(conn_loop(h));
}

static void on_last_written(gust_stream *s, int status, void *user);

/* Sends the GOAWAY and what is queued, then closes (lingering). */
static void conn_close_after_write(h2_conn *h)
{
    if (h->closing || h->closed)
        return;
    h->closing = true;
    if (gust_stream_write(h->stream, "", 0, on_last_written, h) < 0)
        conn_close(h);
}

/* Every frame nghttp2 has now, gathered into one write. */
static void conn_send(h2_conn *h)
{
    if (h->sending || h->in_recv || h->closed || !h->stream || !h->sess)
        return; /* (no session: hibernated, nothing to send) */
    if (framebuf.sending) { /* another session's frame is in the buffer */
        conn_kick(h);
        return;
    }
    h->sending = true;
    for (;;) {
        if (h->inflight >= OBUF_INFLIGHT) {
            /* The client reads slower than we produce: go on once the
             * stream has sent a buffer. */
            h->write_waiting = true;
            conn_arm_write(h);
            break;
        }
        if (gust_stream_write_buffer_size(h->stream) >= OUT_HIGH) {
            conn_write_out(h);
            if (!h->write_waiting &&
                gust_stream_write(h->stream, "", 0, on_written, h) == 0)
                h->write_waiting = true;
            break;
        }
        const uint8_t *d;
        framebuf.sending = true;
        ssize_t n = nghttp2_session_mem_send(h->sess, &d);
        framebuf.sending = false;
        if (n < 0) {
            gust_log_warning(LOG, "%s: %s, closing", h->peer_ip,
                             nghttp2_strerror((int)n));
            h->sending = false;
            conn_close(h);
            return;
        }
        if (n == 0)
            break;
        if (h->out_len + (size_t)n > OBUF_CAP)
            conn_write_out(h);
        if ((size_t)n > OBUF_CAP) { /* a huge HEADERS: copied by the stream */
            gust__metrics_bytes_out((size_t)n);
            gust_stream_write(h->stream, d, (size_t)n, NULL, NULL);
            continue;
        }
        if (!h->ob && !(h->ob = obuf_get())) {
            h->sending = false;
            conn_close(h);
            return;
        }
        memcpy(h->ob->data + h->out_len, d, (size_t)n);
        h->out_len += (size_t)n;
        if (h->out_len >= OUT_BATCH)
            conn_write_out(h);
    }
    conn_write_out(h);
    /* Flush callbacks whose bytes are in what was just written. */
    h2_cb *w;
    while ((w = h->cbs)) {
        h->cbs = w->next;
        if (!h->cbs)
            h->cbs_tail = NULL;
        if (h->closed || gust_stream_write(h->stream, "", 0, on_cb_written, w) < 0)
            on_cb_written(NULL, GUST_ESTREAMCLOSED, w);
    }
    h->sending = false;
    if (!h->closed && !nghttp2_session_want_read(h->sess) &&
        !nghttp2_session_want_write(h->sess))
        conn_close_after_write(h);
}

static void on_kick(gust_timer *t, void *data)
{
    (void)t;
    h2_conn *h = data;
    conn_send(h);
    conn_start_read(h);
}

/* Output queued from outside a read (an asynchronous handler): sent at
 * the end of this loop turn with whatever else the turn queues. */
static void conn_kick(h2_conn *h)
{
    if (h->in_recv || h->sending || h->closed || gust_timer_active(&h->kick))
        return;
    gust_timer_start(&h->kick, 0, 0, on_kick, h);
}

/* ---- The connection: input -------------------------------------------- */

static void on_read(gust_stream *s, int status, const char *data, size_t len,
                    void *user);

static void conn_start_read(h2_conn *h)
{
    if (h->reading || h->closed || !h->stream || (h->closing && !h->lingering))
        return;
    if (!h->lingering && h->write_waiting)
        return; /* on_written reads again: input waits while output does */
    if (gust_stream_read_bytes(h->stream, 64 * 1024, GUST_READ_PARTIAL,
                               on_read, h) == 0)
        h->reading = true;
    else
        conn_close(h);
}

/* Follows the framing of n input bytes on their way to nghttp2 (the
 * preface, then 9-byte frame headers and their payloads), so that
 * conn_hibernate knows the session is between two frames. Returns how
 * many of them may go to nghttp2: all, or those before a HEADERS on a
 * stream that was closed when the connection hibernated (RFC 9113
 * 5.1.1: a connection error PROTOCOL_ERROR, which the rebuilt session
 * would not see, as it never knew those streams). Costs a few
 * instructions per frame. */
static size_t in_track(h2_conn *h, const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (h->in_skip) {
            size_t k = n - i < h->in_skip ? n - i : h->in_skip;
            h->in_skip -= (uint32_t)k;
            i += k;
            continue;
        }
        size_t start = i;
        while (i < n && h->in_hdr_len < 9)
            h->in_hdr[h->in_hdr_len++] = p[i++];
        if (h->in_hdr_len < 9)
            break;
        h->in_hdr_len = 0;
        const uint8_t *f = h->in_hdr;
        h->in_skip = (uint32_t)f[0] << 16 | (uint32_t)f[1] << 8 | f[2];
        uint8_t type = f[3], flags = f[4];
        int32_t sid = (int32_t)(((uint32_t)f[5] << 24 | (uint32_t)f[6] << 16 |
                                 (uint32_t)f[7] << 8 | f[8]) & 0x7fffffff);
        if (type == NGHTTP2_HEADERS) {
            h->hpack_used = true;
            h->in_block = !(flags & NGHTTP2_FLAG_END_HEADERS);
            if (sid && sid <= h->floor_sid)
                return start;
            if ((sid & 1) && sid > h->max_sid)
                h->max_sid = sid;
        } else if (type == NGHTTP2_CONTINUATION ||
                   type == NGHTTP2_PUSH_PROMISE) {
            h->in_block = !(flags & NGHTTP2_FLAG_END_HEADERS);
        }
    }
    return n;
}

static void recv_bytes(h2_conn *h, const char *data, size_t len)
{
    if (!conn_awake(h))
        return;
    size_t ok = in_track(h, (const uint8_t *)data, len);
    h->in_recv = true;
    ssize_t r = nghttp2_session_mem_recv(h->sess, (const uint8_t *)data, ok);
    h->in_recv = false;
    if (r >= 0 && ok < len) {
        gust_log_warning(LOG, "%s: HEADERS on stream %d or lower, closed "
                         "before the connection hibernated, closing",
                         h->peer_ip, h->floor_sid);
        nghttp2_session_terminate_session(h->sess, NGHTTP2_PROTOCOL_ERROR);
        conn_send(h);
        conn_close_after_write(h);
        return;
    }
    if (r < 0) {
        gust_log_warning(LOG, "%s: %s, closing", h->peer_ip,
                         nghttp2_strerror((int)r));
        if (r != NGHTTP2_ERR_BAD_CLIENT_MAGIC)
            nghttp2_session_terminate_session(h->sess,
                                              r == NGHTTP2_ERR_FLOODED
                                                  ? NGHTTP2_ENHANCE_YOUR_CALM
                                                  : NGHTTP2_PROTOCOL_ERROR);
        conn_send(h);
        conn_close_after_write(h);
        return;
    }
    conn_send(h);
}

static void on_read(gust_stream *s, int status, const char *data, size_t len,
                    void *user)
{
    (void)s;
    h2_conn *h = user;
    h->reading = false;
    if (status < 0 || h->closed)
        return;
    if (h->lingering) {
        /* Discarded until the client closes, within a bound: a client
         * that goes on sending after our GOAWAY (a flood) is cut. */
        h->linger_bytes += len;
        if (h->linger_bytes > LINGER_MAX_BYTES)
            conn_close(h);
        else
            conn_start_read(h);
        return;
    }
    gust__metrics_bytes_in(len);
    h->last_in = gust_loop_time(conn_loop(h));
    recv_bytes(h, data, len);
    conn_start_read(h);
}

/* ---- Timers and closing ----------------------------------------------- */

static void on_linger_end(gust_timer *t, void *data)
{
    (void)t;
    conn_close(data);
}

static void on_last_written(gust_stream *s, int status, void *user)
{
    h2_conn *h = user;
    if (status < 0 || h->closed)
        return;
    /* Half-close and read to EOF, so that input in flight does not turn
     * our close into a reset that destroys the GOAWAY. */
    shutdown(gust_stream_fd(s), SHUT_WR);
    h->lingering = true;
    gust_timer_stop(&h->timer);
    gust_timer_start(&h->timer, LINGER_SECONDS, 0, on_linger_end, h);
    conn_start_read(h);
}

static bool pending_output(h2_conn *h)
{
    if (h->write_waiting ||
        (h->stream && gust_stream_write_buffer_size(h->stream)))
        return true;
    for (h2_stream *st = h->streams; st; st = st->next)
        if (st->out || st->tail_sbody)
            return true;
    return false;
}


/* The HPACK dynamic table size Gust advertises (SETTINGS_HEADER_TABLE_SIZE);
 * 4096 is the protocol's default, so it is not sent. */
static uint32_t header_table_size(const gust_http_server_options *o)
{
    if (o->http2_header_table_size < 0)
        return 0;
    if (o->http2_header_table_size == 0 || o->http2_header_table_size > 4096)
        return 4096;
    return (uint32_t)o->http2_header_table_size;
}

/* ---- Hibernation ------------------------------------------------------- */

/* An idle HTTP/2 connection costs its nghttp2 session, ~10 KB that no
 * option shrinks (the session struct, HPACK buffers, inbound buffers).
 * Once a connection has been idle for http2_hibernate_after seconds, the
 * session is freed (conn_hibernate), keeping in h2_saved what the client
 * set, and rebuilt when bytes arrive or the server must send (conn_rebuild):
 * a new session is fed, in place of the client, the frames that put it in
 * the state the old one was in, and what it answers is dropped. Only a
 * state that frames can rebuild is given back, hence the conditions of
 * conn_can_hibernate; the HPACK decoder's dynamic table in particular
 * cannot be (nghttp2 has no way in), so a connection hibernates only
 * while it is empty. */

/* Sessions in malloc's heap (past REGION_MAX, or when mmap fails) and
 * what requests left there are freed in the middle of the heap, where
 * malloc keeps them resident: a burst of connections that all go idle
 * would give little back to the system. Half a second after a connection of this thread
 * hibernates, the heap's free pages are returned (glibc's malloc_trim,
 * which walks the heap: at most twice a second, and only while
 * connections hibernate), from that connection's timer. */
#define TRIM_DELAY 0.5
static _Thread_local struct {
    bool pending;
    double due;
} heap_trim;

static void trim_after_hibernation(h2_conn *h)
{
#ifdef __GLIBC__
    if (heap_trim.pending)
        return;
    heap_trim.pending = true;
    heap_trim.due = gust_loop_time(conn_loop(h)) + TRIM_DELAY;
    h->trim_owner = true;
#else
    (void)h;
#endif
}

/* From h's timer: the trim, if due; else when it is. */
static double trim_check(h2_conn *h, double now)
{
    if (!h->trim_owner)
        return INFINITY;
    if (now < heap_trim.due)
        return heap_trim.due;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
    heap_trim.pending = false;
    h->trim_owner = false;
    return INFINITY;
}

static void trim_owner_gone(h2_conn *h)
{
    if (h->trim_owner)
        heap_trim.pending = false; /* the next hibernation arms it again */
    h->trim_owner = false;
}

static double hibernate_delay(h2_conn *h)
{
    double d = h->srv->opts.http2_hibernate_after;
    return d < 0 || h->no_hibernate ? INFINITY : d;
}

static bool conn_can_hibernate(h2_conn *h)
{
    nghttp2_session *s = h->sess;
    if (h->hibernated || h->closed || h->closing || h->stopping ||
        h->draining || h->goaway_sent || !h->stream || h->in_recv ||
        h->sending || h->nstreams || h->streams || h->cbs || h->inflight ||
        h->out_len || pending_output(h) || gust_timer_active(&h->kick) ||
        gust_timer_active(&h->grace))
        return false;
    /* Between two frames, SETTINGS exchanged both ways: the rebuilt
     * session starts from there. */
    if (h->in_skip || h->in_hdr_len || h->in_block || !h->peer_settings ||
        !h->settings_acked)
        return false;
    if (nghttp2_session_want_write(s) || !nghttp2_session_want_read(s))
        return false;
    if (nghttp2_session_get_hd_inflate_dynamic_table_size(s) != 0) {
        /* The table only empties when the client evicts all of it, which
         * clients do not do: not looked at again. */
        h->no_hibernate = true;
        return false;
    }
    /* A send window below the initial one is spent again on the stream
     * conn_rebuild replays (there is one: DATA went out), within 65535. */
    int32_t w = nghttp2_session_get_remote_window_size(s);
    if (w < 0 || (w < NGHTTP2_INITIAL_WINDOW_SIZE && h->max_sid <= 0))
        return false;
    return true;
}

/* Frees h's session if it may (see above). */
static void conn_hibernate(h2_conn *h)
{
    if (!conn_can_hibernate(h))
        return;
    nghttp2_session *s = h->sess;
    int32_t unacked = nghttp2_session_get_effective_recv_data_length(s);
    if (unacked > 0) {
        /* Body bytes consumed but not yet given back in a WINDOW_UPDATE
         * (less than half the window): a rebuilt session would believe
         * the client's window full, and the client would go on with less
         * each time, down to nothing. Given back now; hibernated later. */
        nghttp2_submit_window_update(s, NGHTTP2_FLAG_NONE, 0, unacked);
        conn_send(h);
        return;
    }
    for (int id = 1; id <= SAVED_SETTINGS; id++)
        h->saved.settings[id - 1] =
            id == 7 ? 0 : nghttp2_session_get_remote_settings(s, id);
    h->saved.send_window = nghttp2_session_get_remote_window_size(s);
    h->floor_sid = h->max_sid;
    session_del(h);
    obuf_put(h->ob);
    h->ob = NULL;
    h->hibernated = true;
    gust__metrics_h2_hibernated(1);
    trim_after_hibernation(h);
    gust_log_debug(LOG, "%s: idle, session given back (hibernated)",
                   h->peer_ip);
}

/* conn_rebuild's dropped answer: source.fd zero bytes. */
static ssize_t read_zeros(nghttp2_session *s, int32_t id, uint8_t *buf,
                          size_t length, uint32_t *flags,
                          nghttp2_data_source *src, void *u)
{
    (void)s, (void)id, (void)u;
    size_t n = (size_t)src->fd < length ? (size_t)src->fd : length;
    memset(buf, 0, n);
    src->fd -= (int)n;
    if (src->fd == 0)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static uint8_t *put_frame_head(uint8_t *p, uint32_t len, uint8_t type,
                               uint8_t flags, int32_t sid)
{
    p[0] = (uint8_t)(len >> 16);
    p[1] = (uint8_t)(len >> 8);
    p[2] = (uint8_t)len;
    p[3] = type;
    p[4] = flags;
    p[5] = (uint8_t)((uint32_t)sid >> 24);
    p[6] = (uint8_t)(sid >> 16);
    p[7] = (uint8_t)(sid >> 8);
    p[8] = (uint8_t)sid;
    return p + 9;
}

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
    return p + 4;
}

/* Rebuilds the session of a hibernated connection (no-op otherwise).
 * Returns 0, or -1 (out of memory, or a bug: the caller closes).
 *
 * The new session is fed, as if from the client: the preface; a
 * SETTINGS with the client's settings that differ from what a fresh
 * session assumes once a SETTINGS has come; the ACK of ours (acknowledged
 * before it hibernated); a WINDOW_UPDATE on stream 0 bringing the send
 * window from 65535 to what it was; and, when the client had opened
 * streams, a request HEADERS on the highest one (static-table fields and
 * a literal not indexed: the dynamic table stays empty) and its
 * RST_STREAM, so that nghttp2 counts every stream up to it as closed, not
 * idle: a late WINDOW_UPDATE or RST_STREAM on one of them is ignored as
 * before, not a connection error. A send window below 65535 is brought
 * down by answering that request instead of resetting it. What the session answers (our SETTINGS
 * and WINDOW_UPDATE again, the ACK of the synthesized SETTINGS) is
 * dropped: the client had the first two long ago and must not see the
 * third. Our callbacks ignore all of it (h->rebuilding).
 *
 * HPACK (RFC 7541). The decoder starts empty, as the old one was, with
 * the same limit (SETTINGS_HEADER_TABLE_SIZE, acknowledged): if it is
 * below 4096, a client that has not sent a header block still owes the
 * size update and the new decoder asks for it as the old one did; one
 * that has sent it is replayed in the synthesized request, so the
 * decoder's maximum is the client's again (a client that indexes fields
 * into a table of 0, as python-hpack does, fills nothing). Where it
 * cannot be (no stream id to carry it) the decoder keeps 4096, larger
 * than the client encoder's maximum, which is safe: the encoder and
 * decoder insert the same entries, and
 * each evicts from the oldest end (4.4) only what no longer fits its own
 * maximum, so the decoder holds every entry the encoder does, at the same
 * index. The same argument makes a fresh encoder safe without signalling
 * anything (4.3 asks for a size update only when the maximum changes,
 * and it does not): it starts empty while the client's decoder still
 * holds what the old encoder inserted; the encoder only references
 * entries it inserted itself, which are the newest in both tables (index
 * 62 up, 2.3.3), and the client's decoder, whose maximum is the same,
 * evicts its older entries first, so it keeps all of the encoder's. */
static int conn_rebuild(h2_conn *h)
{
    if (session_new(h, true) != 0) {
        gust_log_warning(LOG, "%s: out of memory to wake a hibernated "
                         "connection, closing", h->peer_ip);
        return -1;
    }
    h->hibernated = false;
    gust__metrics_h2_hibernated(-1);
    /* What a fresh session assumes once the client's first SETTINGS has
     * come (ids 1..9; 7 is not defined): not sent. */
    static const uint32_t fresh[SAVED_SETTINGS] = {
        4096, 1, UINT32_MAX, 65535, 16384, UINT32_MAX, 0, 0, 0};
    int deficit = h->saved.send_window < NGHTTP2_INITIAL_WINDOW_SIZE
                      ? NGHTTP2_INITIAL_WINDOW_SIZE - h->saved.send_window
                      : 0;
    uint8_t in[PREFACE_LEN + 9 + 6 * SAVED_SETTINGS + 9 + 9 + 4 + 9 + 6 + 6 +
               9 + 4];
    uint8_t *p = in;
    memcpy(p, PREFACE, PREFACE_LEN);
    p += PREFACE_LEN;
    uint8_t *settings = p;
    p += 9;
    for (int id = 1; id <= SAVED_SETTINGS; id++) {
        uint32_t v = h->saved.settings[id - 1];
        if (id == 7 || v == fresh[id - 1])
            continue;
        *p++ = 0;
        *p++ = (uint8_t)id;
        p = put32(p, v);
    }
    put_frame_head(settings, (uint32_t)(p - settings - 9), NGHTTP2_SETTINGS,
                   NGHTTP2_FLAG_NONE, 0);
    p = put_frame_head(p, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0);
    if (h->saved.send_window > NGHTTP2_INITIAL_WINDOW_SIZE) {
        p = put_frame_head(p, 4, NGHTTP2_WINDOW_UPDATE, NGHTTP2_FLAG_NONE, 0);
        p = put32(p, (uint32_t)(h->saved.send_window -
                                NGHTTP2_INITIAL_WINDOW_SIZE));
    }
    if (h->floor_sid > 0) {
        /* :method GET, :scheme http, :path /, :authority "x" (literal
         * without indexing, name 1), after the table size update the
         * client sent once it had our SETTINGS (RFC 7541 6.3, a 5-bit
         * prefix integer) if the table is smaller than the default. A
         * client that has not sent it yet (stream 1 came by Upgrade: h2c)
         * may still send it: a size update within the limit is allowed
         * at the start of any header block. */
        static const uint8_t block[] = {0x82, 0x86, 0x84, 0x01, 0x01, 'x'};
        uint8_t upd[6];
        size_t nupd = 0;
        uint32_t hts = header_table_size(&h->srv->opts);
        if (hts < 4096) {
            if (hts < 31) {
                upd[nupd++] = (uint8_t)(0x20 | hts);
            } else {
                upd[nupd++] = 0x20 | 31;
                uint32_t v = hts - 31;
                while (v >= 128) {
                    upd[nupd++] = (uint8_t)(0x80 | (v & 0x7f));
                    v >>= 7;
                }
                upd[nupd++] = (uint8_t)v;
            }
        }
        p = put_frame_head(p, (uint32_t)(nupd + sizeof block), NGHTTP2_HEADERS,
                           NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_END_HEADERS,
                           h->floor_sid);
        memcpy(p, upd, nupd);
        p += nupd;
        memcpy(p, block, sizeof block);
        p += sizeof block;
        if (deficit) { /* the stream's window must cover it */
            p = put_frame_head(p, 4, NGHTTP2_WINDOW_UPDATE, NGHTTP2_FLAG_NONE,
                               h->floor_sid);
            p = put32(p, (uint32_t)deficit);
        } else {
            p = put_frame_head(p, 4, NGHTTP2_RST_STREAM, NGHTTP2_FLAG_NONE,
                               h->floor_sid);
            p = put32(p, NGHTTP2_CANCEL);
        }
    }
    h->rebuilding = true;
    h->in_recv = true;
    ssize_t r = nghttp2_session_mem_recv(h->sess, in, (size_t)(p - in));
    h->in_recv = false;
    if (r >= 0 && deficit) {
        /* A send window below 65535 (DATA the client has not given back)
         * is spent again: that stream's answer carries deficit bytes, and
         * is dropped like the rest. Its one field is never indexed, so
         * our encoder's table stays as empty as the client believes. */
        static const nghttp2_nv nv[] = {
            {(uint8_t *)":status", (uint8_t *)"200", 7, 3,
             NGHTTP2_NV_FLAG_NO_INDEX}};
        nghttp2_data_provider prd = {.source.fd = deficit,
                                     .read_callback = read_zeros};
        int rv = nghttp2_submit_response(h->sess, h->floor_sid, nv, 1, &prd);
        if (rv != 0)
            r = rv;
    }
    while (r >= 0) {
        const uint8_t *d;
        framebuf.sending = true;
        ssize_t n = nghttp2_session_mem_send(h->sess, &d);
        framebuf.sending = false;
        if (n <= 0) {
            if (n < 0)
                r = n;
            break;
        }
    }
    h->rebuilding = false;
    if (r < 0 || !nghttp2_session_want_read(h->sess) ||
        nghttp2_session_get_remote_window_size(h->sess) !=
            h->saved.send_window) {
        gust_log_error(LOG, "%s: cannot rebuild the hibernated session (%s), "
                       "closing", h->peer_ip,
                       r < 0 ? nghttp2_strerror((int)r)
                             : !nghttp2_session_want_read(h->sess)
                                 ? "it ended" : "send window");
        return -1;
    }
    gust_log_debug(LOG, "%s: woke, session rebuilt", h->peer_ip);
    /* Woken by a frame that opens no stream (PING, SETTINGS): the timer
     * still waits for the idle deadline; hibernation is looked at again
     * after the delay. */
    double at = gust_loop_time(conn_loop(h)) + hibernate_delay(h);
    if (at < INFINITY && (!gust_timer_active(&h->timer) || h->timer_at > at))
        conn_arm(h, at);
    return 0;
}

/* h has a session (a hibernated one is rebuilt first); false when that
 * failed, and h is closed. */
static bool conn_awake(h2_conn *h)
{
    if (!h->hibernated || conn_rebuild(h) == 0)
        return true;
    conn_close(h);
    return false;
}

static void on_timer(gust_timer *t, void *data);

static void conn_arm(h2_conn *h, double at)
{
    h->timer_at = at;
    gust_timer_start_at(&h->timer, at, 0, on_timer, h);
}

/* Output is held back: the write deadline counts from the last progress. */
static void conn_arm_write(h2_conn *h)
{
    double secs = h->srv->opts.write_timeout;
    if (secs <= 0 || h->closing)
        return;
    double at = h->last_out + secs;
    if (!gust_timer_active(&h->timer) || h->timer_at > at)
        conn_arm(h, at);
}

/* A stream opened: the body and write deadlines count from now on, so
 * the timer must not wait for a longer one armed while idle. */
static void conn_arm_busy(h2_conn *h)
{
    const gust_http_server_options *o = &h->srv->opts;
    double secs = INFINITY;
    if (o->body_timeout > 0)
        secs = o->body_timeout;
    if (o->write_timeout > 0 && o->write_timeout < secs)
        secs = o->write_timeout;
    if (secs == INFINITY)
        return;
    double at = gust_loop_time(conn_loop(h)) + secs;
    if (!gust_timer_active(&h->timer) || h->timer_at > at)
        conn_arm(h, at);
}

/* GOAWAY (NO_ERROR, the last stream id processed), sent now; false if
 * h could not be woken (and is closed). */
static bool send_goaway(h2_conn *h)
{
    if (!conn_awake(h))
        return false;
    nghttp2_submit_goaway(h->sess, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h->sess),
                          NGHTTP2_NO_ERROR, NULL, 0);
    conn_send(h);
    return true;
}

static void goaway_close(h2_conn *h)
{
    if (send_goaway(h))
        conn_close_after_write(h);
}

static void on_timer(gust_timer *t, void *data)
{
    (void)t;
    h2_conn *h = data;
    if (h->closed || h->closing)
        return;
    const gust_http_server_options *o = &h->srv->opts;
    double now = gust_loop_time(conn_loop(h));
    bool stalled = o->write_timeout > 0 && pending_output(h);
    if (stalled && now >= h->last_out + o->write_timeout) {
        gust_log_warning(LOG, "%s: client took none of the response in %g s "
                         "(flow-control window or TCP shut), closing",
                         h->peer_ip, o->write_timeout);
        conn_close(h);
        return;
    }
    if (h->nstreams == 0) {
        double secs = h->got_request ? o->idle_connection_timeout
                                     : o->header_timeout;
        double since = h->got_request ? fmax(h->last_in, h->last_out)
                                      : h->started;
        double at = secs < 0 ? INFINITY : since + secs;
        if (stalled && h->last_out + o->write_timeout < at) {
            conn_arm(h, h->last_out + o->write_timeout);
            return;
        }
        if (now >= at) {
            if (!h->got_request)
                gust_log_warning(LOG, "%s: no request within %g s, closing",
                                 h->peer_ip, secs);
            goaway_close(h);
            return;
        }
        at = fmin(at, trim_check(h, now));
        /* Hibernation: once idle for its delay, and looked at again
         * after any later activity (conn_idle_check). */
        if (!h->hibernated) {
            double hib = fmax(h->last_in, h->last_out) + hibernate_delay(h);
            if (now >= hib) {
                conn_hibernate(h);
                if (h->closed || h->closing)
                    return;
                hib = fmax(h->last_in, h->last_out) + hibernate_delay(h);
                if (hib <= now)
                    hib = INFINITY; /* not now, and nothing changed */
            }
            at = fmin(at, hib);
            at = fmin(at, h->trim_owner ? heap_trim.due : INFINITY);
        }
        if (at < INFINITY)
            conn_arm(h, at);
        return;
    }
    double next = trim_check(h, now);
    if (h->nrecv && o->body_timeout > 0) {
        if (now >= h->last_in + o->body_timeout) {
            gust_log_warning(LOG, "%s: request body timed out (%g s), closing",
                             h->peer_ip, o->body_timeout);
            goaway_close(h);
            return;
        }
        next = fmin(next, h->last_in + o->body_timeout);
    }
    if (o->write_timeout > 0)
        next = fmin(next, stalled ? h->last_out + o->write_timeout
                                  : now + o->write_timeout);
    if (next == INFINITY) {
        double idle = o->idle_connection_timeout;
        if (idle < 0)
            return;
        next = now + idle; /* to look at idleness once the streams are done */
    }
    conn_arm(h, next);
}

/* The last stream is gone: idleness counts from now. */
static void conn_idle_check(h2_conn *h)
{
    double idle = h->srv->opts.idle_connection_timeout;
    if (idle <= 0)
        idle = INFINITY;
    idle = fmin(idle, hibernate_delay(h));
    if (h->closed || h->closing || h->nstreams || idle == INFINITY)
        return;
    /* An earlier deadline looks again when it fires (idleness counts
     * from the last input or output): no timer change per request. */
    double at = gust_loop_time(conn_loop(h)) + idle;
    if (!gust_timer_active(&h->timer) || h->timer_at > at)
        conn_arm(h, at);
}

static void conn_close(h2_conn *h)
{
    if (h->closed)
        return;
    h->closed = true;
    if (h->stream)
        gust_stream_close(h->stream);
}

static void on_close(gust_stream *s, void *data)
{
    (void)s;
    h2_conn *h = data;
    h->closed = true;
    h->reading = false;
    gust_timer_stop(&h->timer);
    gust_timer_stop(&h->kick);
    gust_timer_stop(&h->grace);
    /* Every request still held learns of it; each lives on until the
     * application finishes it. */
    h2_stream *st;
    while ((st = h->streams)) {
        st->pending_cbs++;
        if (st->open && st->id)
            nghttp2_session_set_stream_user_data(h->sess, st->id, NULL);
        st->open = false;
        stream_lost(st);
        stream_unlink(st);
        st->pending_cbs--;
        stream_maybe_free(st);
    }
    h2_cb *w;
    while ((w = h->cbs)) {
        h->cbs = w->next;
        on_cb_written(NULL, GUST_ESTREAMCLOSED, w);
    }
    h->stream = NULL;
    session_del(h);
    if (h->hibernated)
        gust__metrics_h2_hibernated(-1);
    trim_owner_gone(h);
    obuf_put(h->ob);
    gust_http_detached_done(&h->slot);
    free(h);
}

/* close_all(): GOAWAY announcing the shutdown now, the last stream id a
 * moment later (requests already on their way are still served), then
 * the connection closes once its streams are done. Called again (the
 * shutdown deadline, or the server freed): cut. */
static void on_grace(gust_timer *t, void *data)
{
    (void)t;
    h2_conn *h = data;
    if (h->closed || h->closing)
        return;
    send_goaway(h);
}

static void conn_close_all(void *data)
{
    h2_conn *h = data;
    if (h->closed)
        return;
    if (h->stopping || h->srv->free_pending || h->closing) {
        conn_close(h);
        return;
    }
    h->stopping = true;
    if (h->nstreams == 0 && !h->in_recv) {
        goaway_close(h);
        return;
    }
    if (!conn_awake(h))
        return;
    nghttp2_submit_shutdown_notice(h->sess);
    conn_kick(h);
    gust_timer_start(&h->grace, DRAIN_GRACE, 0, on_grace, h);
}

static const gust_http_detach_ops conn_ops = {conn_close_all};

/* ---- Making connections ------------------------------------------------ */

/* Frees h's session and the memory it was in. */
static void session_del(h2_conn *h)
{
    nghttp2_session_del(h->sess);
    h->sess = NULL;
    region_del(h->region);
    h->region = NULL;
}

/* h's nghttp2 session, with Gust's SETTINGS and connection window
 * submitted (not yet sent): at the connection's start, and again when a
 * hibernated connection wakes (rebuild). Returns 0 or -1. */
static int session_new(h2_conn *h, bool rebuild)
{
    nghttp2_session_callbacks *cbs = callbacks();
    if (!cbs)
        return -1;
    const gust_http_server_options *o = &h->srv->opts;
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0)
        return -1;
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_continuations(opt, 8);
    /* Ours (on_frame_recv) answers ENHANCE_YOUR_CALM first; nghttp2's
     * own bucket, twice as large, is a backstop. */
    nghttp2_option_set_stream_reset_rate_limit(opt,
                                               2 * (uint64_t)o->http2_reset_burst,
                                               2 * (uint64_t)o->http2_reset_rate);
    /* Decoded header lists are bounded by on_header; this bounds what the
     * peer may make us send. */
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    h->region = region_new(); /* NULL: malloc's heap, as before */
    nghttp2_mem mem = {h->region, h2_malloc, h2_free, h2_calloc, h2_realloc};
    framebuf_session_start();
    int rv = nghttp2_session_server_new3(&h->sess, cbs, h, opt, &mem);
    nghttp2_option_del(opt);
    framebuf.armed = false;
    if (rv != 0) {
        h->sess = NULL;
        region_del(h->region);
        h->region = NULL;
        return -1;
    }
    nghttp2_settings_entry iv[4] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o->http2_max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o->http2_initial_window_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
         (uint32_t)(o->max_header_size > UINT32_MAX ? UINT32_MAX
                                                    : o->max_header_size)},
    };
    size_t niv = 3;
    /* A smaller table than 4096 makes the client's encoder signal it at
     * the start of its next header block (RFC 7541 4.2), which nghttp2
     * then insists on. A client that has sent a header block has
     * signalled it already: conn_rebuild's synthesized request starts with
     * that signal (without a stream to carry it, which only a client
     * whose HEADERS were all refused leaves, the default stays, a decoder
     * table larger than the encoder's: safe, see conn_rebuild). */
    uint32_t hts = header_table_size(o);
    if (hts < 4096 && !(rebuild && h->hpack_used && !h->floor_sid))
        iv[niv++] = (nghttp2_settings_entry){NGHTTP2_SETTINGS_HEADER_TABLE_SIZE,
                                             hts};
    if (nghttp2_submit_settings(h->sess, NGHTTP2_FLAG_NONE, iv, niv) != 0 ||
        nghttp2_session_set_local_window_size(h->sess, NGHTTP2_FLAG_NONE, 0,
                                              CONN_WINDOW) != 0) {
        session_del(h);
        return -1;
    }
    return 0;
}

/* A connection with its session, not yet attached to a stream. */
static h2_conn *conn_alloc(gust_http_server *srv, gust_loop *loop,
                           const struct sockaddr *addr, socklen_t addrlen)
{
    h2_conn *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->srv = srv;
    if (addrlen > sizeof h->peer)
        addrlen = sizeof h->peer;
    memcpy(&h->peer, addr, addrlen);
    h->peer_len = addrlen;
    h->peer_ip_len =
        (uint8_t)gust__http_format_addr(&h->peer.sa, h->peer_ip, sizeof h->peer_ip);
    if (session_new(h, false) != 0) {
        free(h);
        return NULL;
    }
    const gust_http_server_options *o = &srv->opts;
    h->in_skip = PREFACE_LEN; /* every way in starts with the preface */
    gust_timer_init(loop, &h->timer);
    gust_timer_init(loop, &h->kick);
    gust_timer_init(loop, &h->grace);
    h->started = h->last_in = h->last_out = gust_loop_time(loop);
    h->reset_tokens = o->http2_reset_burst;
    h->reset_at = h->started;
    return h;
}

static void conn_free_unattached(h2_conn *h)
{
    session_del(h);
    free(h);
}

/* Takes the stream; counted: a new connection (else it takes over the
 * count of the HTTP/1 connection it replaces). */
static void conn_attach(h2_conn *h, gust_stream *stream, bool counted)
{
    gust_http_server *srv = h->srv;
    h->stream = stream;
    if (counted) {
        srv->count++;
        srv->connections_total++;
        gust__metrics_conn(1);
    }
    h->slot = (gust_http_detached){NULL, srv->detached, srv, &conn_ops, h};
    if (srv->detached)
        srv->detached->prev = &h->slot;
    srv->detached = &h->slot;
    gust_stream_set_data(stream, h);
    gust_stream_set_close_callback(stream, on_close, h);
    double secs = srv->opts.header_timeout;
    secs = fmin(secs > 0 ? secs : INFINITY, hibernate_delay(h));
    if (secs < INFINITY)
        conn_arm(h, h->started + secs);
}

int gust__h2_conn_new(gust_http_server *srv, gust_stream *stream,
                      const struct sockaddr *addr, socklen_t addrlen)
{
    h2_conn *h = conn_alloc(srv, gust_stream_loop(stream), addr, addrlen);
    if (!h)
        return -ENOMEM;
    conn_attach(h, stream, true);
    conn_send(h);
    conn_start_read(h);
    return 0;
}

/* The HTTP/1 connection c gives its stream (and its place in the count)
 * to h. */
static void take_stream(gust_http_connection *c, h2_conn *h)
{
    gust_stream *s = c->stream;
    gust__http_conn_clear_timer(c);
    gust_stream_set_close_callback(s, NULL, NULL);
    c->stream = NULL;
    c->state = GUST__HTTP_DETACHED;
    conn_attach(h, s, false);
}

int gust__h2_sniff(gust_http_connection *c)
{
    gust__http_rq *q = c->rq;
    size_t n = q->len - q->off;
    if (memcmp(q->buf + q->off, PREFACE, n < PREFACE_LEN ? n : PREFACE_LEN)) {
        c->h2_maybe = false;
        return 0;
    }
    if (n < PREFACE_LEN)
        return 1;
    c->h2_maybe = false;
    if (c->reading)
        return 0; /* cannot happen: called from the read callback */
    const struct sockaddr *pa = c->peer_big ? c->peer_big : &c->peer.sa;
    h2_conn *h = conn_alloc(c->srv, gust_stream_loop(c->stream), pa,
                            c->peer_len);
    if (!h) {
        gust__http_conn_close(c);
        return 2;
    }
    memcpy(h->peer_ip, q->peer_ip, sizeof h->peer_ip);
    take_stream(c, h);
    h->last_in = gust_loop_time(conn_loop(h));
    recv_bytes(h, q->buf + q->off, n);
    conn_start_read(h);
    return 2;
}

/* ---- Upgrade: h2c ------------------------------------------------------ */

static bool has_token(gust_str v, const char *tok)
{
    size_t tl = strlen(tok);
    size_t i = 0;
    while (i < v.len) {
        while (i < v.len && (v.ptr[i] == ' ' || v.ptr[i] == '\t' ||
                             v.ptr[i] == ','))
            i++;
        size_t s = i;
        while (i < v.len && v.ptr[i] != ',')
            i++;
        size_t e = i;
        while (e > s && (v.ptr[e - 1] == ' ' || v.ptr[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(v.ptr + s, tok, tl) == 0)
            return true;
    }
    return false;
}

/* base64url without padding (RFC 9113's HTTP2-Settings, token68).
 * Returns the decoded length or -1. */
static ssize_t b64url_decode(gust_str in, uint8_t *out, size_t cap)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < in.len; i++) {
        char ch = in.ptr[i];
        int v;
        if (ch >= 'A' && ch <= 'Z')
            v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z')
            v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9')
            v = ch - '0' + 52;
        else if (ch == '-' || ch == '+')
            v = 62;
        else if (ch == '_' || ch == '/')
            v = 63;
        else if (ch == '=')
            break;
        else
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o == cap)
                return -1;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    return (ssize_t)o;
}

int gust__h2_try_upgrade(gust_http_connection *c)
{
    gust__http_rq *q = c->rq;
    gust_http_request *r = &q->req;
    if (!c->stream || gust_stream_is_tls(c->stream) || c->reading)
        return 0;
    gust_str up = gust_http_headers_get_first(&r->headers, GUST_STR("Upgrade"));
    if (!up.ptr || !has_token(up, "h2c"))
        return 0;
    if (q->framing.body == GUST_HTTP1_BODY_CHUNKED ||
        (q->framing.body == GUST_HTTP1_BODY_LENGTH &&
         q->framing.content_length > 0))
        return 0; /* a body would have to be read first: HTTP/1 serves it */
    size_t cur = 0, count = 0;
    gust_str sv = {0}, v;
    while (gust_http_headers_next(&r->headers, GUST_STR("HTTP2-Settings"), &cur,
                                  &v)) {
        sv = v;
        count++;
    }
    if (count != 1)
        return 0;
    uint8_t settings[1024];
    ssize_t sl = b64url_decode(sv, settings, sizeof settings);
    if (sl < 0 || sl % 6) {
        gust_log_warning(LOG, "%s: bad HTTP2-Settings, upgrade ignored",
                         q->peer_ip);
        return 0;
    }
    const struct sockaddr *pa = c->peer_big ? c->peer_big : &c->peer.sa;
    h2_conn *h = conn_alloc(c->srv, gust_stream_loop(c->stream), pa,
                            c->peer_len);
    if (!h)
        return 0;
    memcpy(h->peer_ip, q->peer_ip, sizeof h->peer_ip);
    int rv = nghttp2_session_upgrade2(h->sess, settings, (size_t)sl,
                                      r->method_id == GUST_HTTP_HEAD, NULL);
    if (rv != 0) {
        gust_log_warning(LOG, "%s: HTTP2-Settings refused (%s), upgrade "
                         "ignored", q->peer_ip, nghttp2_strerror(rv));
        conn_free_unattached(h);
        return 0;
    }
    /* The 101 goes before the server's SETTINGS, after any pipelined
     * answer gathered before it. */
    static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\n"
                             "Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    gust__http_conn_out(c, sw, sizeof sw - 1);
    gust__http_conn_flush(c);
    c->srv->requests_total--; /* counted again as stream 1 */
    size_t left_off = q->req_end, left_len = q->len - q->req_end;
    take_stream(c, h);
    h->max_sid = 1;
    h2_stream *st = stream_new(h, 1);
    if (!st) {
        conn_close(h);
        return 1;
    }
    /* Stream 1 carries the request, copied out of the HTTP/1 buffers. */
    gust_arena *a = &st->hc.rq->arena;
    st->method = gust_arena_strdup(a, r->method);
    st->path = gust_arena_strdup(a, r->uri);
    if (*r->host)
        st->authority = gust_arena_strdup(a, r->host);
    for (size_t i = 0; i < r->headers.count; i++) {
        gust_str n = r->headers.items[i].name;
        if (connection_specific(n) || GUST__NAME_IS(n, "HTTP2-Settings"))
            continue;
        gust_http_headers_add(&st->hc.rq->req.headers, n,
                              r->headers.items[i].value,
                              GUST_HEADER_COPY | GUST_HEADER_TRUSTED);
    }
    nghttp2_session_set_stream_user_data(h->sess, 1, st);
    h->in_recv = true; /* the handler's answer goes out with the SETTINGS */
    st->remote_done = true;
    stream_head_done(st, true);
    h->in_recv = false;
    if (left_len)
        recv_bytes(h, q->buf + left_off, left_len);
    else
        conn_send(h);
    conn_start_read(h);
    return 1;
}
