/* Streams: the write queue.
 *
 * Data and callbacks are kept apart. The data is a list of segments (copies,
 * borrowed iovecs, file ranges) sent in order with writev()/sendfile(). Each
 * callback is a "mark": the stream's running count of bytes accepted when
 * the write was made. A callback is due once the count of bytes handed to the
 * kernel reaches its mark, so many small copied writes can share one buffer
 * and still complete one by one, in order.
 */
#define GUST__STREAM_PRIVATE
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gust/stream.h"
#include "stream_internal.h"

/* Segments gathered into one writev(). */
#define GATHER_MAX 64
/* Smallest copy buffer, so that small writes coalesce. */
#define COPY_MIN ((size_t)16 * 1024)
/* Writes up to this size made inside a read callback are gathered and sent
 * together when the callback returns (see gust__stream_uncork). */
#define CORK_MAX ((size_t)16 * 1024)
/* pread() buffer when sendfile() cannot be used. */
#define FILE_CHUNK ((size_t)32 * 1024)
/* One sendfile() call at most (Linux caps a call near 2 GiB anyway). */
#define SENDFILE_MAX ((size_t)1 << 30)
/* Copied bytes a stream queues when max_write_buffer_size is not set
 * (stream.h, WRITES). */
#define DEFAULT_MAX_COPIED ((size_t)64 * 1024 * 1024)
/* Heap given back to the system (malloc_trim) once the copies of this
 * thread's write queues fall under TRIM_LOW after having passed TRIM_HIGH:
 * a client that read nothing for a while leaves no peak behind. */
#define TRIM_HIGH ((size_t)8 * 1024 * 1024)
#define TRIM_LOW ((size_t)1024 * 1024)

/* Bytes in this thread's malloc'd copy segments (cached ones included). */
static _Thread_local struct {
    size_t live, peak;
} copies;

static void copies_add(size_t n)
{
    copies.live += n;
    if (copies.live > copies.peak)
        copies.peak = copies.live;
}

static void copies_sub(size_t n)
{
    copies.live -= n;
    if (copies.peak >= TRIM_HIGH && copies.live < TRIM_LOW) {
        copies.peak = copies.live;
        malloc_trim(0);
    }
}

bool gust_stream_writing(const gust_stream *stream)
{
    return stream->whead != NULL;
}

size_t gust_stream_write_buffer_size(const gust_stream *stream)
{
    return stream->closed ? 0 : (size_t)stream->wbuffered;
}

bool gust__stream_write_pending(const gust_stream *s)
{
    return s->whead != NULL;
}

/* ---- Marks (pending callbacks), a ring ---------------------------------- */

/* Makes room for one more mark, so a write never fails after its data has
 * gone out. */
static int marks_reserve(gust_stream *s)
{
    gust__wmarks *r = s->marks;
    if (r && r->count < r->cap)
        return 0;
    if (r && r->cap > UINT32_MAX / 2)
        return -ENOMEM; /* the ring's indexes are 32-bit */
    size_t cap = r ? (size_t)r->cap * 2 : 4;
    gust__wmarks *n = malloc(sizeof *n + cap * sizeof n->m[0]);
    if (!n)
        return -ENOMEM;
    n->cap = (uint32_t)cap;
    n->head = 0;
    n->count = r ? r->count : 0;
    n->sent = r ? r->sent : 0;
    for (size_t i = 0; i < n->count; i++)
        n->m[i] = r->m[(r->head + i) & (r->cap - 1)];
    free(r);
    s->marks = n;
    return 0;
}

static void marks_push(gust_stream *s, gust_stream_write_cb cb, void *user)
{
    gust__wmarks *r = s->marks;
    assert(r && r->count < r->cap);
    gust__wmark *m = &r->m[(r->head + r->count) & (r->cap - 1)];
    m->at = r->sent + s->wbuffered; /* every byte accepted so far */
    m->cb = cb;
    m->user = user;
    r->count++;
}

static size_t marks_count(const gust_stream *s)
{
    return s->marks ? s->marks->count : 0;
}

static bool marks_due(const gust_stream *s)
{
    const gust__wmarks *r = s->marks;
    return r && r->count > 0 && r->m[r->head].at <= r->sent;
}

static gust__wmark marks_pop(gust_stream *s)
{
    gust__wmarks *r = s->marks;
    gust__wmark m = r->m[r->head];
    r->head = (r->head + 1) & (r->cap - 1);
    r->count--;
    return m;
}

void gust__stream_fire_marks(gust_stream *s)
{
    /* Only marks that existed on entry: one made by a write inside these
     * callbacks is run by the dispatch, never inside its own write call. */
    size_t n = marks_count(s);
    while (n-- > 0 && !s->closed && marks_due(s)) {
        gust__wmark m = marks_pop(s);
        m.cb(s, 0, m.user);
    }
    if (!s->closed && marks_due(s))
        gust__stream_schedule(s);
}

/* Called from the close dispatch: every callback still owed. */
void gust__stream_write_on_close(gust_stream *s)
{
    while (marks_count(s) > 0) {
        gust__wmark m = marks_pop(s);
        m.cb(s, m.at <= s->marks->sent ? 0 : GUST_ESTREAMCLOSED, m.user);
    }
}

/* ---- Segments ------------------------------------------------------------ */

static void seg_append(gust_stream *s, gust__wseg *g)
{
    g->next = NULL;
    if (s->wtail)
        s->wtail->next = g;
    else
        s->whead = g;
    s->wtail = g;
}

static void seg_free(gust__wseg *g)
{
    if (g->kind == GUST__WSEG_TURN)
        return; /* in the loop's turn memory, with its bytes */
    if (g->kind == GUST__WSEG_COPY && g->u.copy.cap == COPY_MIN &&
        gust__stream_cache_put(GUST__CACHE_WSEG, g))
        return;
    size_t cap = g->kind == GUST__WSEG_COPY ? g->u.copy.cap : 0;
    free(g);
    if (cap)
        copies_sub(cap);
}

static void seg_pop(gust_stream *s)
{
    gust__wseg *g = s->whead;
    s->whead = g->next;
    if (!s->whead)
        s->wtail = NULL;
    seg_free(g);
}

static void segs_free(gust_stream *s)
{
    while (s->whead)
        seg_pop(s);
}

void gust__stream_write_drop(gust_stream *s)
{
    segs_free(s);
}

void gust__stream_write_free(gust_stream *s)
{
    segs_free(s);
    free(s->marks);
    s->marks = NULL;
}

/* Appends a copy of data, into the tail copy buffer when it fits. */
static int append_copy(gust_stream *s, const char *data, size_t len);

/* Appends data for a send waiting in the loop's batch: into the loop's turn
 * memory when it has room (no malloc'd copy; see settle_turn), else as a
 * copy. */
static int append_deferred(gust_stream *s, const char *data, size_t len)
{
    /* The segment too: a broadcast makes one per socket per message. */
    gust__wseg *g = s->in_batch && len <= SIZE_MAX - sizeof *g
                        ? gust__loop_turn_alloc(s->loop, sizeof *g + len)
                        : NULL;
    if (!g)
        return append_copy(s, data, len);
    char *mem = (char *)(g + 1);
    memcpy(mem, data, len);
    g->kind = GUST__WSEG_TURN;
    g->u.copy.buf = mem;
    g->u.copy.cap = g->u.copy.len = len;
    g->u.copy.off = 0;
    seg_append(s, g);
    return 0;
}

/* After the batched send: bytes it did not send move out of the turn
 * memory, which the loop reuses. Returns false if out of memory. */
static bool settle_turn(gust_stream *s)
{
    for (gust__wseg **p = &s->whead; *p; p = &(*p)->next) {
        gust__wseg *g = *p;
        if (g->kind != GUST__WSEG_TURN)
            continue;
        size_t n = g->u.copy.len - g->u.copy.off;
        gust__wseg *c = malloc(sizeof *c + n);
        if (!c)
            return false;
        *c = *g;
        c->kind = GUST__WSEG_COPY;
        c->u.copy.buf = (char *)(c + 1);
        memcpy(c->u.copy.buf, g->u.copy.buf + g->u.copy.off, n);
        c->u.copy.off = 0;
        c->u.copy.len = c->u.copy.cap = n;
        copies_add(n);
        if (s->wtail == g)
            s->wtail = c;
        *p = c; /* g stays in the turn memory */
    }
    return true;
}

static int append_copy(gust_stream *s, const char *data, size_t len)
{
    gust__wseg *t = s->wtail;
    if (t && t->kind == GUST__WSEG_COPY && t->u.copy.cap - t->u.copy.len >= len) {
        memcpy(t->u.copy.buf + t->u.copy.len, data, len);
        t->u.copy.len += len;
        return 0;
    }
    size_t cap = len < COPY_MIN ? COPY_MIN : len;
    if (cap > SIZE_MAX - sizeof *t)
        return -ENOMEM;
    gust__wseg *g = cap == COPY_MIN ? gust__stream_cache_get(GUST__CACHE_WSEG) : NULL;
    if (!g) {
        g = malloc(sizeof *g + cap);
        if (!g)
            return -ENOMEM;
        copies_add(cap);
    }
    g->kind = GUST__WSEG_COPY;
    g->u.copy.buf = (char *)(g + 1);
    g->u.copy.cap = cap;
    g->u.copy.len = len;
    g->u.copy.off = 0;
    memcpy(g->u.copy.buf, data, len);
    seg_append(s, g);
    return 0;
}

/* Accounts n bytes accepted, of which sent went to the kernel at once. */
static void accepted(gust_stream *s, size_t n, size_t sent)
{
    s->wbuffered += n - sent;
    if (s->marks)
        s->marks->sent += sent;
}

/* Accounts n bytes of gathered segments as sent. */
static void consume(gust_stream *s, size_t n)
{
    s->wbuffered -= n;
    if (s->marks)
        s->marks->sent += n;
    while (n > 0) {
        gust__wseg *g = s->whead;
        assert(g && g->kind != GUST__WSEG_FILE);
        if (g->kind == GUST__WSEG_COPY || g->kind == GUST__WSEG_TURN) {
            size_t take = g->u.copy.len - g->u.copy.off;
            if (take > n)
                take = n;
            g->u.copy.off += take;
            n -= take;
            if (g->u.copy.off == g->u.copy.len)
                seg_pop(s);
            continue;
        }
        while (n > 0 && g->u.ref.idx < g->u.ref.cnt) {
            size_t rem = g->u.ref.iov[g->u.ref.idx].iov_len - g->u.ref.off;
            if (n >= rem) {
                n -= rem;
                g->u.ref.idx++;
                g->u.ref.off = 0;
            } else {
                g->u.ref.off += n;
                n = 0;
            }
        }
        while (g->u.ref.idx < g->u.ref.cnt && g->u.ref.iov[g->u.ref.idx].iov_len == 0)
            g->u.ref.idx++;
        if (g->u.ref.idx == g->u.ref.cnt)
            seg_pop(s);
    }
}

/* Fills iov from the head segments up to the first file segment. */
static int gather(gust_stream *s, struct iovec *iov, int max, size_t *total)
{
    int cnt = 0;
    *total = 0;
    for (gust__wseg *g = s->whead; g && g->kind != GUST__WSEG_FILE && cnt < max;
         g = g->next) {
        if (g->kind == GUST__WSEG_COPY || g->kind == GUST__WSEG_TURN) {
            iov[cnt].iov_base = g->u.copy.buf + g->u.copy.off;
            iov[cnt].iov_len = g->u.copy.len - g->u.copy.off;
            *total += iov[cnt++].iov_len;
            continue;
        }
        for (int i = g->u.ref.idx; i < g->u.ref.cnt && cnt < max; i++) {
            size_t off = i == g->u.ref.idx ? g->u.ref.off : 0;
            if (g->u.ref.iov[i].iov_len == off)
                continue;
            iov[cnt].iov_base = (char *)g->u.ref.iov[i].iov_base + off;
            iov[cnt].iov_len = g->u.ref.iov[i].iov_len - off;
            *total += iov[cnt++].iov_len;
        }
    }
    return cnt;
}

/* Sends some of the file segment at the head. Returns bytes sent or a
 * negated errno. */
static ssize_t send_file_seg(gust_stream *s, gust__wseg *g)
{
    size_t want = g->u.file.left < SENDFILE_MAX ? g->u.file.left : SENDFILE_MAX;
    ssize_t n;
    const gust__stream_transport *tp = gust__stream_tp(s);
    if (!g->u.file.no_sendfile && tp->sendfile) {
        off_t off = g->u.file.off;
        n = tp->sendfile(s, g->u.file.fd, &off, want);
        if (n == -EINVAL || n == -ENOSYS)
            g->u.file.no_sendfile = true; /* e.g. the source is a pipe */
        else if (n == 0)
            return -EIO; /* the file is shorter than the range promised */
        else if (n < 0)
            return n;
    }
    if (g->u.file.no_sendfile || !tp->sendfile) {
        /* On the heap: this may run on a coroutine's small stack. */
        size_t k = want < FILE_CHUNK ? want : FILE_CHUNK;
        char *buf = malloc(k);
        if (!buf)
            return -ENOMEM;
        ssize_t got = pread(g->u.file.fd, buf, k, g->u.file.off);
        if (got <= 0) {
            int e = got < 0 ? errno : 0;
            free(buf);
            if (got == 0)
                return -EIO;
            return e == EINTR ? -EINTR : -e;
        }
        struct iovec v = { buf, (size_t)got };
        n = tp->writev(s, &v, 1);
        free(buf);
        if (n <= 0)
            return n == 0 ? -EAGAIN : n;
    }
    g->u.file.off += n;
    g->u.file.left -= (size_t)n;
    s->wbuffered -= (uint64_t)n;
    if (s->marks)
        s->marks->sent += (uint64_t)n;
    if (g->u.file.left == 0)
        seg_pop(s);
    return n;
}

ssize_t gust__stream_flush(gust_stream *s)
{
    ssize_t total = 0;
    while (s->whead) {
        ssize_t n;
        bool short_write = false;
        if (s->whead->kind == GUST__WSEG_FILE) {
            n = send_file_seg(s, s->whead);
        } else {
            struct iovec iov[GATHER_MAX];
            size_t want;
            int cnt = gather(s, iov, GATHER_MAX, &want);
            n = gust__stream_tp(s)->writev(s, iov, cnt);
            if (n > 0) {
                consume(s, (size_t)n);
                /* A short write means the kernel buffer is full: skip the
                 * syscall that would only say EAGAIN. */
                short_write = (size_t)n < want;
            } else if (n == 0) {
                n = -EAGAIN;
            }
        }
        if (n > 0) {
            total += n;
            if (short_write)
                break;
            continue;
        }
        if (n == -EINTR)
            continue;
        if (n == -EAGAIN)
            break;
        gust__stream_close_with(s, (int)n);
        return n;
    }
    return total;
}

/* ---- Corking ---------------------------------------------------------------
 *
 * Inside a read callback with more input already buffered, small writes are
 * queued rather than written at once: the delivery loop will run several
 * callbacks from one read (pipelined requests), and their answers then leave
 * in one writev() when the loop ends.
 * Anything that cannot wait (a big write, write_ref, sendfile, close) sends
 * the gathered data first, so the order never changes. */

/* ---- Batched sends (the loop's io_uring batch) ----------------------------
 *
 * Inside a loop turn, a send on a plain socket is queued and left to the
 * loop, which hands every such send of the turn to the kernel in one call
 * when the handlers are done (before it waits again). The bytes wait in the
 * write queue as they would for a full socket; the stream holds a reference
 * until write_done. */

static bool defer_send(gust_stream *s)
{
    if (s->in_batch)
        return true;
    if (!s->is_socket || s->custom_tp ||
        s->connecting || s->closed ||
        !gust__loop_defer_write(s->loop, s->fd, s, &gust__stream_io_ops))
        return false;
    s->in_batch = true;
    s->refs++;
    return true;
}

int gust__stream_write_gather(void *data, struct iovec *iov, int max)
{
    gust_stream *s = data;
    size_t total;
    return s->closed ? 0 : gather(s, iov, max, &total);
}

void gust__stream_write_done(void *data, ssize_t res)
{
    gust_stream *s = data;
    s->in_batch = false;
    if (!s->closed) {
        if (res < 0 && res != -EAGAIN && res != -EWOULDBLOCK && res != -EINTR) {
            gust__stream_close_with(s, (int)res);
        } else {
            if (res > 0)
                consume(s, (size_t)res);
            /* What the batch did not take (a file, more pieces than it
             * gathers, or a full socket) goes the usual way. */
            if (s->whead)
                gust__stream_flush(s);
            if (!s->closed && s->whead && !settle_turn(s))
                gust__stream_close_with(s, -ENOMEM);
            if (!s->closed && marks_due(s))
                gust__stream_fire_marks(s);
            if (!s->closed)
                gust__stream_update_events(s, true);
        }
    }
    gust__stream_release(s);
}

void gust__stream_uncork(gust_stream *s)
{
    if (!s->corked)
        return;
    s->corked = false;
    if (!s->closed && !s->connecting && s->whead && !defer_send(s))
        gust__stream_flush(s);
}

/* ---- Public calls -------------------------------------------------------- */

/* After a write call: completions are run by the dispatch (never here), and
 * WRITE is watched only while data is left. */
static void after_write(gust_stream *s)
{
    if (s->closed)
        return;
    if (marks_due(s))
        gust__stream_schedule(s);
    gust__stream_update_events(s, true);
}

/* Try-first: a write to an empty queue goes straight to the kernel. Returns
 * bytes taken, or a negated errno other than EAGAIN. */
static ssize_t try_writev(gust_stream *s, const struct iovec *iov, int cnt)
{
    gust__stream_uncork(s);
    if (s->closed)
        return -EPIPE; /* the flush above failed; the stream has its error */
    if (s->whead || s->connecting || s->fd < 0 || defer_send(s))
        return 0;
    for (;;) {
        ssize_t n = gust__stream_tp(s)->writev(s, iov, cnt);
        if (n >= 0)
            return n;
        if (n == -EAGAIN)
            return 0;
        if (n != -EINTR)
            return n;
    }
}

/* The default cap counts only the bytes the queue holds in memory: a
 * queued file range or borrowed buffers cost nothing here. Walked only
 * when the whole queue is near the cap. */
static bool over_default_cap(const gust_stream *s, size_t len)
{
    if (len > DEFAULT_MAX_COPIED)
        return true;
    size_t held = 0;
    for (const gust__wseg *g = s->whead; g; g = g->next)
        if (g->kind == GUST__WSEG_COPY || g->kind == GUST__WSEG_TURN)
            held += g->u.copy.len - g->u.copy.off;
    return held > DEFAULT_MAX_COPIED - len;
}

int gust_stream_write(gust_stream *stream, const void *data, size_t len,
                      gust_stream_write_cb cb, void *user)
{
    gust_stream *s = stream;
    assert(s && (data || len == 0));
    if (s->closed)
        return GUST_ESTREAMCLOSED;
    if (s->wlimit) {
        size_t max = s->rare->max_write_buffer_size;
        if (len > max || s->wbuffered > max - len)
            return GUST_EBUFFERFULL;
    } else if ((len > DEFAULT_MAX_COPIED ||
                s->wbuffered > DEFAULT_MAX_COPIED - len) &&
               over_default_cap(s, len)) {
        return GUST_EBUFFERFULL;
    }
    if (cb && marks_reserve(s) < 0)
        return -ENOMEM;
    ssize_t sent = 0;
    int err = 0;
    /* Gather only when more input is already buffered (more pipelined
     * requests to answer) or gathering has begun: a lone request's answer
     * goes out at once, without the copy. */
    if (len > 0 && s->delivering && len <= CORK_MAX && !s->connecting &&
        (s->corked || (!s->whead && s->rend > s->rstart))) {
        if (append_copy(s, data, len) < 0)
            return -ENOMEM;
        s->corked = true;
    } else if (len > 0) {
        struct iovec v = { (void *)data, len };
        sent = try_writev(s, &v, 1);
        if (sent < 0) {
            err = (int)sent;
            sent = 0;
        } else if ((size_t)sent < len &&
                   append_deferred(s, (const char *)data + sent, len - (size_t)sent) < 0) {
            if (sent == 0)
                return -ENOMEM;
            err = -ENOMEM; /* part went out: cannot take the call back */
        }
    }
    accepted(s, len, (size_t)sent);
    if (cb)
        marks_push(s, cb, user);
    if (err) {
        /* Accepted: the callback hears of the error from the close. */
        gust__stream_close_with(s, err);
        return 0;
    }
    after_write(s);
    return 0;
}

int gust_stream_write_ref(gust_stream *stream, const struct iovec *iov,
                          int iovcnt, gust_stream_write_cb cb, void *user)
{
    gust_stream *s = stream;
    assert(s);
    if (!cb || iovcnt < 0 || (iovcnt > 0 && !iov))
        return -EINVAL;
    if (s->closed)
        return GUST_ESTREAMCLOSED;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len > SIZE_MAX - total)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    if (marks_reserve(s) < 0)
        return -ENOMEM;
    ssize_t sent = 0;
    int err = 0;
    if (total > 0) {
        sent = try_writev(s, iov, iovcnt < IOV_MAX ? iovcnt : IOV_MAX);
        if (sent < 0) {
            err = (int)sent;
            sent = 0;
        }
    }
    if (!err && (size_t)sent < total) {
        /* Borrow what is left: skip the iovecs already sent. */
        int first = 0;
        size_t off = (size_t)sent;
        while (off >= iov[first].iov_len) {
            off -= iov[first].iov_len;
            first++;
        }
        int cnt = iovcnt - first;
        gust__wseg *g = malloc(sizeof *g + (size_t)cnt * sizeof *iov);
        if (!g) {
            if (sent == 0)
                return -ENOMEM;
            err = -ENOMEM;
        } else {
            g->kind = GUST__WSEG_REF;
            g->u.ref.iov = (struct iovec *)(g + 1);
            memcpy(g->u.ref.iov, iov + first, (size_t)cnt * sizeof *iov);
            g->u.ref.cnt = cnt;
            g->u.ref.idx = 0;
            g->u.ref.off = off;
            seg_append(s, g);
        }
    }
    accepted(s, total, (size_t)sent);
    marks_push(s, cb, user);
    if (err) {
        gust__stream_close_with(s, err);
        return 0;
    }
    after_write(s);
    return 0;
}

int gust_stream_sendfile(gust_stream *stream, int file_fd, off_t offset,
                         size_t len, gust_stream_write_cb cb, void *user)
{
    gust_stream *s = stream;
    assert(s);
    if (!cb || file_fd < 0 || offset < 0)
        return -EINVAL;
    if (s->closed)
        return GUST_ESTREAMCLOSED;
    if (marks_reserve(s) < 0)
        return -ENOMEM;
    gust__stream_uncork(s);
    if (s->closed) {
        /* Accepted: the flush failed, the callback hears of it at close. */
        accepted(s, len, 0);
        marks_push(s, cb, user);
        return 0;
    }
    if (len > 0) {
        gust__wseg *g = malloc(sizeof *g);
        if (!g)
            return -ENOMEM;
        g->kind = GUST__WSEG_FILE;
        g->u.file.fd = file_fd;
        g->u.file.no_sendfile = false;
        g->u.file.off = offset;
        g->u.file.left = len;
        bool was_empty = s->whead == NULL;
        seg_append(s, g);
        accepted(s, len, 0);
        marks_push(s, cb, user);
        if (was_empty && !s->connecting && gust__stream_flush(s) < 0)
            return 0; /* closed: the callback gets the error */
    } else {
        marks_push(s, cb, user);
    }
    after_write(s);
    return 0;
}
