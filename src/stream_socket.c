/* Streams: the plain transport (sockets and pipes, no TLS).
 *
 * SIGPIPE. A write to a socket or pipe whose reader is gone raises SIGPIPE,
 * which kills the process by default. Sockets are written with
 * sendmsg(MSG_NOSIGNAL), which never raises it. writev() on a pipe and
 * sendfile() (to either) have no such flag: around those calls SIGPIPE is
 * blocked in the calling thread and, if the call failed with EPIPE, the
 * signal it raised is taken off the pending set before the mask is restored.
 * So the process does not need to ignore SIGPIPE; only these rarer calls pay
 * the two or three extra syscalls.
 */
#define GUST__STREAM_PRIVATE
#include <errno.h>
#include <signal.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stream_internal.h"

typedef struct sigpipe_guard {
    sigset_t old;
    bool was_pending; /* a SIGPIPE that is not ours must stay pending */
} sigpipe_guard;

static void guard_begin(sigpipe_guard *g)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &g->old);
    g->was_pending = sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE);
}

static void guard_end(sigpipe_guard *g, bool epipe)
{
    if (epipe && !g->was_pending) {
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGPIPE);
        const struct timespec zero = { 0, 0 };
        while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
            ;
    }
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

static ssize_t neg_errno(void)
{
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

static ssize_t plain_read(gust_stream *s, void *buf, size_t len)
{
    ssize_t n = read(s->fd, buf, len);
    return n >= 0 ? n : neg_errno();
}

static ssize_t plain_writev(gust_stream *s, const struct iovec *iov, int iovcnt)
{
    ssize_t n;
    if (s->is_socket) {
        struct msghdr m = { 0 };
        m.msg_iov = (struct iovec *)iov;
        m.msg_iovlen = (size_t)iovcnt;
        n = sendmsg(s->fd, &m, MSG_NOSIGNAL);
        return n >= 0 ? n : neg_errno();
    }
    sigpipe_guard g;
    guard_begin(&g);
    n = writev(s->fd, iov, iovcnt);
    ssize_t r = n >= 0 ? n : neg_errno();
    guard_end(&g, r == -EPIPE);
    return r;
}

static ssize_t plain_sendfile(gust_stream *s, int file_fd, off_t *offset,
                              size_t len)
{
    sigpipe_guard g;
    guard_begin(&g);
    ssize_t n = sendfile(s->fd, file_fd, offset, len);
    ssize_t r = n >= 0 ? n : neg_errno();
    guard_end(&g, r == -EPIPE);
    return r;
}

const gust__stream_transport gust__stream_plain_transport = {
    .name = "plain",
    .read = plain_read,
    .writev = plain_writev,
    .sendfile = plain_sendfile,
    .close = NULL,
};
