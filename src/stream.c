/* Streams: lifetime, loop registration, the fd handler, connect and close.
 * Reads live in stream_read.c, writes in stream_write.c, the plain socket
 * transport in stream_socket.c.
 *
 * Lifetime. Everything that runs user code later goes through one of two
 * loop callbacks: the "dispatch" (buffered data for a new read, completed
 * writes, an immediate connect) and the "close dispatch". Each scheduled
 * callback holds a reference; the stream is freed when the close dispatch
 * has run and no reference is left (gust_stream_ref() adds one too, so a
 * coroutine can outlive the close). The fd handler needs no reference: the
 * handler is removed at close and the loop drops stale events, and the only
 * places that free, a loop callback and the last gust_stream_unref() after
 * the close, cannot run inside the handler.
 */
#define GUST__STREAM_PRIVATE
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/stream.h"
#include "stream_internal.h"

#define DEFAULT_MAX_BUFFER ((size_t)100 * 1024 * 1024)
#define DEFAULT_CHUNK ((size_t)64 * 1024)

static void on_io(gust_loop *loop, int fd, unsigned events, void *data);
static void dispatch(gust_loop *loop, void *data);
static void close_dispatch(gust_loop *loop, void *data);

/* ---- Creation ------------------------------------------------------------ */

static int prepare_fd(int fd, bool *is_socket)
{
    int type;
    socklen_t tlen = sizeof type;
    *is_socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0;
    if (!*is_socket) {
        struct stat st;
        if (fstat(fd, &st) < 0)
            return -errno;
        /* Regular files are always "ready": epoll refuses them and poll
         * would spin, so they have no place in a stream. */
        if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode))
            return -EINVAL;
    }
    /* Accepted sockets usually come non-blocking and CLOEXEC already:
     * read the flags first so that case costs no extra write. */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    int fdfl = fcntl(fd, F_GETFD);
    if (fdfl < 0)
        return -errno;
    if (!(fdfl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
        return -errno;
    return 0;
}

static uint32_t clamp32(size_t v)
{
    return v > UINT32_MAX - 1 ? UINT32_MAX - 1 : (uint32_t)v;
}

/* See the layout's comment in stream_internal.h. */
_Static_assert(sizeof(gust_stream) <= 184, "an idle stream should fit a 192-byte malloc chunk");

static gust_stream *stream_alloc(gust_loop *loop, int fd, bool is_socket,
                                 const gust_stream_options *opts)
{
    gust_stream *s = calloc(1, sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    s->loop = loop;
    s->fd = fd;
    s->is_socket = is_socket;
    s->max_buffer_size = DEFAULT_MAX_BUFFER;
    s->read_chunk_size = DEFAULT_CHUNK;
    if (opts) {
        if (opts->max_buffer_size)
            s->max_buffer_size = clamp32(opts->max_buffer_size);
        if (opts->read_chunk_size)
            s->read_chunk_size = clamp32(opts->read_chunk_size);
        if (opts->max_write_buffer_size) {
            if (!gust__stream_rare_get(s)) {
                free(s);
                errno = ENOMEM;
                return NULL;
            }
            s->rare->max_write_buffer_size = clamp32(opts->max_write_buffer_size);
            s->wlimit = true;
        }
    }
    return s;
}

gust_stream *gust_stream_new(gust_loop *loop, int fd,
                             const gust_stream_options *opts)
{
    assert(loop);
    if (fd < 0) {
        errno = EBADF;
        return NULL;
    }
    bool is_socket;
    int r = prepare_fd(fd, &is_socket);
    if (r < 0) {
        errno = -r;
        return NULL;
    }
    return stream_alloc(loop, fd, is_socket, opts);
}

gust_stream *gust__stream_new_accepted(gust_loop *loop, int fd,
                                       const gust_stream_options *opts)
{
    assert(loop && fd >= 0);
    return stream_alloc(loop, fd, true, opts);
}

/* ---- Accessors ----------------------------------------------------------- */

gust_loop *gust_stream_loop(const gust_stream *stream)
{
    return stream->loop;
}

int gust_stream_fd(const gust_stream *stream)
{
    return stream->fd;
}

void gust_stream_set_data(gust_stream *stream, void *data)
{
    stream->data = data;
}

void *gust_stream_data(const gust_stream *stream)
{
    return stream->data;
}

bool gust_stream_closed(const gust_stream *stream)
{
    return stream->closed;
}

int gust_stream_error(const gust_stream *stream)
{
    /* While open, error may hold a batched read's failure not taken yet. */
    return stream->closed ? stream->error : 0;
}

void gust_stream_set_close_callback(gust_stream *stream,
                                    gust_stream_close_cb cb, void *user)
{
    stream->close_cb = cb;
    stream->close_user = user;
}

void gust__stream_set_free_hook(gust_stream *stream, gust__stream_free_hook fn,
                                void *data)
{
    stream->free_hook = fn;
    stream->free_hook_data = data;
}

gust__stream_rare *gust__stream_rare_get(gust_stream *s)
{
    if (!s->rare)
        s->rare = calloc(1, sizeof *s->rare);
    return s->rare;
}

int gust__stream_set_transport(gust_stream *stream,
                               const gust__stream_transport *tp, void *state)
{
    bool plain = !tp || tp == &gust__stream_plain_transport;
    if (plain && !state && !stream->rare) {
        stream->custom_tp = false;
        return 0;
    }
    gust__stream_rare *r = gust__stream_rare_get(stream);
    if (!r)
        return -ENOMEM;
    r->tp = plain ? NULL : tp;
    r->tp_state = state;
    stream->custom_tp = !plain;
    return 0;
}

void *gust__stream_transport_state(const gust_stream *stream)
{
    return stream->rare ? stream->rare->tp_state : NULL;
}

int gust_stream_set_nodelay(gust_stream *stream, bool on)
{
    if (stream->closed)
        return GUST_ESTREAMCLOSED;
    if (!stream->is_socket)
        return 0;
    int v = on ? 1 : 0;
    if (setsockopt(stream->fd, IPPROTO_TCP, TCP_NODELAY, &v, sizeof v) < 0) {
        /* Unix-domain sockets have no Nagle to turn off. */
        if (errno == EOPNOTSUPP || errno == ENOPROTOOPT || errno == EINVAL)
            return 0;
        return -errno;
    }
    return 0;
}

/* ---- Scheduling ---------------------------------------------------------- */

static void maybe_free(gust_stream *s)
{
    if (!s->close_done || s->refs > 0)
        return;
    if (s->free_hook)
        s->free_hook(s, s->free_hook_data);
    gust__stream_read_clear(s);
    gust__stream_rbuf_release(s);
    gust__stream_write_free(s);
    if (s->rare) {
        free(s->rare->timer); /* not active: it holds a reference while it is */
        free(s->rare);
    }
    free(s);
}

/* A user reference holds the memory like a scheduled callback does; with
 * the fd closed and the close callback run, nothing else can touch it, so
 * every public call sees `closed` and fails or does nothing. */
void gust_stream_ref(gust_stream *stream)
{
    assert(stream);
    stream->refs++;
    stream->user_refs++;
}

void gust__stream_release(gust_stream *s)
{
    s->refs--;
    maybe_free(s);
}

const gust__io_ops gust__stream_io_ops = {
    .read_target = gust__stream_read_target,
    .read_done = gust__stream_read_done,
    .read_finish = gust__stream_read_finish,
    .write_gather = gust__stream_write_gather,
    .write_done = gust__stream_write_done,
};

void gust_stream_unref(gust_stream *stream)
{
    assert(stream && stream->user_refs > 0 && "unref without a matching ref");
    stream->user_refs--;
    stream->refs--;
    maybe_free(stream);
}

bool gust__stream_close_delivered(const gust_stream *stream)
{
    return stream->close_running;
}

/* Timer fallback for when the loop cannot queue a callback (out of memory):
 * whichever dispatch is due runs from here. */
static void on_timer(gust_timer *timer, void *data)
{
    (void)timer;
    gust_stream *s = data;
    if (s->closed && !s->close_running)
        close_dispatch(s->loop, s);
    else
        dispatch(s->loop, s);
}

static bool schedule_fn(gust_stream *s, gust_callback_fn fn)
{
    if (gust_loop_add_callback(s->loop, fn, s) == 0) {
        s->refs++;
        return true;
    }
    gust__stream_rare *r = gust__stream_rare_get(s);
    if (r && r->timer && gust_timer_active(r->timer))
        return true; /* on_timer will see what is due */
    if (r && !r->timer) {
        r->timer = malloc(sizeof *r->timer);
        if (r->timer)
            gust_timer_init(s->loop, r->timer);
    }
    if (r && r->timer && gust_timer_start(r->timer, 0, 0, on_timer, s) == 0) {
        s->refs++;
        return true;
    }
    gust_log_error("stream", "out of memory: cannot schedule callbacks of "
                   "stream fd %d", s->fd);
    return false;
}

void gust__stream_schedule(gust_stream *s)
{
    if (s->closed || s->dispatch_queued)
        return;
    if (schedule_fn(s, dispatch))
        s->dispatch_queued = true;
}

/* Runs what became due outside an fd event: a connect that succeeded at
 * once, buffered data for a read started earlier, writes completed in the
 * call that queued them. */
static void dispatch(gust_loop *loop, void *data)
{
    (void)loop;
    gust_stream *s = data;
    s->refs--;
    s->dispatch_queued = false;
    if (s->closed) {
        maybe_free(s);
        return;
    }
    if (s->connect_ready) {
        s->connect_ready = false;
        gust_stream_connect_cb cb = s->rare->connect_cb;
        s->rare->connect_cb = NULL;
        if (cb)
            cb(s, 0, s->rare->connect_user);
    }
    if (!s->closed && s->read_again) {
        s->read_again = false;
        if (s->rkind != GUST__READ_NONE)
            gust__stream_handle_read(s); /* delivers too */
    }
    if (!s->closed)
        gust__stream_deliver(s);
    if (!s->closed)
        gust__stream_fire_marks(s);
    if (!s->closed)
        gust__stream_update_events(s, true);
}

/* ---- Loop registration --------------------------------------------------- */

void gust__stream_update_events(gust_stream *s, bool keep_read)
{
    if (s->closed)
        return;
    unsigned want = 0;
    if (s->connecting) {
        want = GUST_WRITE;
    } else {
        /* READ stays on after a read completes (keep_read) so that the
         * next read, usually started soon, costs no epoll_ctl; it is
         * dropped when a READ event finds no read pending. */
        if (s->rkind != GUST__READ_NONE || (keep_read && (s->events & GUST_READ)))
            want |= GUST_READ;
        /* A send in the loop's batch is not waiting for the fd. */
        if (s->whead && !s->corked && !s->in_batch)
            want |= GUST_WRITE;
        if (s->custom_tp) {
            const gust__stream_transport *tp = s->rare->tp;
            if (tp->events)
                want = tp->events(s, want) & (GUST_READ | GUST_WRITE);
            /* Data the transport already holds brings no fd event: a read
             * started or left pending now must be served by the dispatch. */
            if (s->rkind != GUST__READ_NONE && tp->pending && !s->read_again &&
                tp->pending(s) > 0) {
                s->read_again = true;
                gust__stream_schedule(s);
            }
        }
    }
    int r = 0;
    if (!s->registered) {
        if (want == 0)
            return;
        r = gust_loop_add_handler(s->loop, s->fd, want, on_io, s);
        if (r == 0) {
            if (s->is_socket)
                gust__loop_set_io_ops(s->loop, s->fd, &gust__stream_io_ops);
            s->registered = true;
            s->hup_parked = false;
            s->events = (uint8_t)want;
        }
    } else if (want != s->events) {
        r = gust_loop_update_handler(s->loop, s->fd, want);
        if (r == 0)
            s->events = (uint8_t)want;
    }
    if (r < 0)
        gust__stream_close_with(s, r);
}

static int socket_error(gust_stream *s)
{
    if (!s->is_socket)
        return 0;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    return -err;
}

static void finish_connect(gust_stream *s)
{
    int err = socket_error(s);
    s->connecting = false;
    if (err < 0) {
        /* The connect callback gets err from the close dispatch. */
        gust__stream_close_with(s, err);
        return;
    }
    /* Data queued during the connect goes first. */
    if (s->whead && gust__stream_flush(s) < 0)
        return;
    gust_stream_connect_cb cb = s->rare->connect_cb;
    s->rare->connect_cb = NULL;
    if (cb)
        cb(s, 0, s->rare->connect_user);
}

/* A hang-up or error event that reading and writing did not consume. */
static void handle_hangup(gust_stream *s, bool progress)
{
    int err = socket_error(s);
    if (err < 0) {
        gust__stream_close_with(s, err);
        return;
    }
    if (progress)
        return; /* level-triggered: we come back for the rest */
    if (s->rkind == GUST__READ_NONE && !s->whead) {
        /* Nobody needs the fd now, and the loop cannot mask a hang-up:
         * park it off the loop until a read or write wants it again, which
         * will then see the hang-up and end the stream properly. */
        gust_loop_remove_handler(s->loop, s->fd);
        s->registered = false;
        s->hup_parked = true;
        s->events = 0;
        return;
    }
    /* A read or write is pending but the fd gives neither data nor an
     * error: treat it as the end of the stream rather than spin. */
    gust__stream_close_with(s, 0);
}

static void on_io(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    gust_stream *s = data;
    bool hangup = (events & GUST_ERROR) != 0;
    bool progress = false;

    if (s->connecting) {
        if (!(events & (GUST_WRITE | GUST_ERROR)))
            return;
        finish_connect(s);
        if (s->closed)
            return;
        progress = true;
    }
    /* A transport that remaps events (TLS) may need a read to write or a
     * write to read: then any event retries both. */
    bool any = false;
    if (s->custom_tp) {
        const gust__stream_transport *tp = s->rare->tp;
        if (tp->on_event) {
            progress |= tp->on_event(s, events);
            if (s->closed)
                return;
        }
        any = tp->events != NULL;
    }
    bool was_reading = s->rkind != GUST__READ_NONE;
    if (was_reading && (any || (events & (GUST_READ | GUST_ERROR))))
        progress |= gust__stream_handle_read(s);
    if (s->closed)
        return;
    if (s->whead && (any || (events & (GUST_WRITE | GUST_ERROR)))) {
        ssize_t n = gust__stream_flush(s);
        if (s->closed)
            return;
        progress |= n > 0;
    }
    /* Writes completed here or by the connect: run their callbacks now. */
    if (s->marks && s->marks->count > 0) {
        gust__stream_fire_marks(s);
        if (s->closed)
            return;
    }
    if (hangup) {
        handle_hangup(s, progress);
        if (s->closed || !s->registered)
            return;
    }
    gust__stream_update_events(s, was_reading || !(events & GUST_READ));
}

/* ---- Connecting ---------------------------------------------------------- */

int gust_stream_connect(gust_stream *stream, const struct sockaddr *addr,
                        socklen_t addrlen, gust_stream_connect_cb cb,
                        void *user)
{
    gust_stream *s = stream;
    assert(s && addr);
    if (s->closed)
        return GUST_ESTREAMCLOSED;
    if (s->connecting || s->connect_ready)
        return -EALREADY;
    gust__stream_rare *r = gust__stream_rare_get(s);
    if (!r)
        return -ENOMEM;
    if (connect(s->fd, addr, addrlen) == 0) {
        r->connect_cb = cb;
        r->connect_user = user;
        s->connect_ready = true;
        gust__stream_schedule(s);
        return 0;
    }
    int err = errno;
    switch (err) {
    case EINPROGRESS:
    case EINTR: /* the connect goes on asynchronously */
        r->connect_cb = cb;
        r->connect_user = user;
        s->connecting = true;
        gust__stream_update_events(s, true);
        return 0;
    case EBADF:
    case EFAULT:
    case EINVAL:
    case ENOTSOCK:
    case EAFNOSUPPORT:
    case EPROTOTYPE:
    case EISCONN:
    case EALREADY:
        return -err; /* misuse: nothing starts, nothing is called */
    default:
        /* The connection itself failed (ECONNREFUSED on a unix socket,
         * ENETUNREACH...): report it like an asynchronous failure. */
        r->connect_cb = cb;
        r->connect_user = user;
        gust__stream_close_with(s, -err);
        return 0;
    }
}

/* ---- Closing ------------------------------------------------------------- */

void gust__stream_close_with(gust_stream *s, int err)
{
    if (s->closed)
        return;
    s->closed = true;
    s->error = err;
    s->connecting = false;
    if (s->registered) {
        gust_loop_remove_handler(s->loop, s->fd);
        s->registered = false;
    }
    if (s->custom_tp && s->rare->tp->close)
        s->rare->tp->close(s);
    close(s->fd);
    s->fd = -1;
    /* Unsent data goes now; the callbacks owed are kept for the dispatch. */
    gust__stream_write_drop(s);
    schedule_fn(s, close_dispatch);
}

void gust_stream_close(gust_stream *stream)
{
    /* Writes gathered in this read callback would have been sent by now
     * without the gathering: give them their try. */
    gust__stream_uncork(stream);
    /* So does a send waiting in the loop's batch. */
    if (stream->in_batch && !stream->closed && stream->whead)
        gust__stream_flush(stream);
    gust__stream_close_with(stream, 0);
}

/* Runs every callback still owed, in the documented order, then frees. */
static void close_dispatch(gust_loop *loop, void *data)
{
    (void)loop;
    gust_stream *s = data;
    s->refs--;
    if (s->close_running) {
        maybe_free(s); /* a stale timer fallback */
        return;
    }
    s->close_running = true;
    s->connect_ready = false;
    gust_stream_connect_cb ccb = s->rare ? s->rare->connect_cb : NULL;
    if (ccb) {
        s->rare->connect_cb = NULL;
        ccb(s, s->error ? s->error : GUST_ESTREAMCLOSED, s->rare->connect_user);
    }
    gust__stream_read_on_close(s);
    gust__stream_write_on_close(s);
    gust_stream_close_cb cb = s->close_cb;
    s->close_cb = NULL;
    if (cb)
        cb(s, s->close_user);
    s->close_done = true;
    maybe_free(s);
}
