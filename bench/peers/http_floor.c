/* http_floor: the least an epoll HTTP/1.1 server can do per request.
 *
 * Not a server anyone should run: it reads, looks for the blank line that
 * ends each request head, and answers every head with the same canned
 * 134-byte response (the size of Gust's hello_http answer, with a Date that
 * changes each second). No parsing, no validation, no bodies, no timeouts.
 *
 * It makes exactly the system calls a real event-loop server makes for a
 * keep-alive request (one epoll_wait per batch, one read and one sendmsg
 * per request), so whatever it reaches is the ceiling for Gust, nginx or
 * any other server built on epoll on this machine: the rest of a real
 * server's time is its own work on top. bench/compare.sh runs it as the
 * "floor" row.
 *
 *   http_floor --port=N [--address=127.0.0.1]
 *
 * Only listens on the address given (default 127.0.0.1). Stops on SIGTERM
 * or SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_floor.h"

enum { IN_CAP = 8192, OUT_CAP = 64 * 1024, MAX_EVENTS = 512 };

typedef struct conn {
    int fd;
    size_t in_len;
    size_t out_len;
    bool want_out; /* EPOLLOUT registered */
    char in[IN_CAP];
    char out[OUT_CAP];
} conn;

static void drop(int ep, conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Sends what is queued; false when the connection is to be dropped. */
static bool flush_out(int ep, conn *c)
{
    if (!c->out_len)
        return true;
    struct iovec iov = {c->out, c->out_len};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t k = sendmsg(c->fd, &m, MSG_NOSIGNAL);
    if (k < 0 && errno != EAGAIN)
        return false;
    if (k > 0) {
        memmove(c->out, c->out + k, c->out_len - (size_t)k);
        c->out_len -= (size_t)k;
    }
    bool want = c->out_len > 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = want ? EPOLLIN | EPOLLOUT : EPOLLIN,
                                 .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want;
    }
    return true;
}

static bool on_readable(int ep, conn *c)
{
    ssize_t k = read(c->fd, c->in + c->in_len, IN_CAP - c->in_len);
    if (k == 0 || (k < 0 && errno != EAGAIN))
        return false;
    if (k < 0)
        return true;
    c->in_len += (size_t)k;
    if (floor_answer(c->in, &c->in_len, c->out, &c->out_len, OUT_CAP) < 0 ||
        c->in_len == IN_CAP)
        return false; /* a head larger than the buffer */
    return flush_out(ep, c);
}

int main(int argc, char **argv)
{
    int ls = floor_listen(argc, argv, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (ls < 0)
        return -ls;
    int one = 1;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    struct epoll_event evs[MAX_EVENTS];
    while (!floor_stopping) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (n < 0 && errno == EINTR)
            continue;
        floor_update_date();
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    c = malloc(sizeof *c);
                    if (!c) {
                        close(fd);
                        continue;
                    }
                    c->fd = fd;
                    c->in_len = c->out_len = 0;
                    c->want_out = false;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            bool ok = true;
            if (evs[i].events & EPOLLOUT)
                ok = flush_out(ep, c);
            if (ok && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                ok = on_readable(ep, c);
            if (!ok)
                drop(ep, c);
        }
    }
    close(ep);
    close(ls);
    return 0;
}
