/* echo_epoll: the floor of the echo benchmark.
 *
 * A bare single-threaded epoll line echo server with no library at all: on
 * each readable event it reads until EAGAIN and writes back every complete
 * line at once, registering EPOLLOUT only when the socket would block. That
 * is the least work the kernel lets an echo server do (one read, one write,
 * an amortised epoll_wait per message), so Gust's distance from it is what
 * its loop and streams cost.
 *
 * Options: --port=P (required). Listens on 127.0.0.1 only. Stops on SIGINT
 * or SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BUF_SIZE = 64 * 1024 };

/* Per connection: bytes received but not yet echoed (a partial line, or
 * lines the socket would not take). */
typedef struct conn {
    int fd;
    int want_out; /* EPOLLOUT registered */
    size_t len;
    char buf[BUF_SIZE];
} conn;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void conn_close(conn *c)
{
    close(c->fd); /* also removes it from the epoll set */
    free(c);
}

/* Writes the complete lines at the front of c->buf; returns 1 if all of them
 * went out, 0 if the socket is full, -1 on error. */
static int conn_echo(conn *c)
{
    char *end = memrchr(c->buf, '\n', c->len);
    size_t lines = end ? (size_t)(end - c->buf) + 1 : 0, off = 0;
    while (off < lines) {
        ssize_t n = send(c->fd, c->buf + off, lines - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -1;
            break;
        }
        off += (size_t)n;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    return off == lines ? 1 : 0;
}

static void conn_handle(int epfd, conn *c, unsigned events)
{
    int rc = 1; /* as conn_echo: 1 all echoed, 0 socket full, -1 error */
    if (events & EPOLLOUT)
        rc = conn_echo(c);
    /* Level-triggered: read until a short read, and only while the echoes
     * go out, so a client that stops reading stops being read. */
    while (rc == 1) {
        size_t room = BUF_SIZE - c->len;
        if (room == 0) {
            rc = -1; /* a line longer than the buffer */
            break;
        }
        ssize_t n = recv(c->fd, c->buf + c->len, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            rc = -1;
            break;
        }
        c->len += (size_t)n;
        rc = conn_echo(c);
        if ((size_t)n < room)
            break;
    }
    if (rc < 0) {
        conn_close(c);
        return;
    }
    /* Watch for writability only while echoes are waiting. */
    int want_out = rc == 0;
    if (want_out != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0u),
                                 .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_out = want_out;
    }
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    long port = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1)
        port = opt == 'p' ? strtol(optarg, NULL, 10) : -1;
    if (port <= 0 || port > 65535 || optind != argc) {
        fprintf(stderr, "usage: echo_epoll --port=P\n");
        return 2;
    }
    /* The stop signals stay blocked except inside epoll_pwait, so one that
     * arrives between the g_stop check and the wait cannot be lost. */
    struct sigaction sa = {.sa_handler = on_signal};
    sigset_t stop, unblocked;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop, &unblocked);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int one = 1;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((unsigned short)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (lfd < 0 || epfd < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        listen(lfd, 1024) < 0 ||
        epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) {
        perror("echo_epoll: listen");
        return 1;
    }

    struct epoll_event evs[256];
    while (!g_stop) {
        int n = epoll_pwait(epfd, evs, 256, -1, &unblocked);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr) {
                conn_handle(epfd, evs[i].data.ptr, evs[i].events);
                continue;
            }
            int fd;
            while ((fd = accept4(lfd, NULL, NULL,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                conn *c = malloc(sizeof *c);
                struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                if (!c || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                    free(c);
                    close(fd);
                    continue;
                }
                c->fd = fd;
                c->want_out = 0;
                c->len = 0;
            }
        }
    }
    /* Open connections are left to exit(): this is a benchmark peer. */
    close(epfd);
    close(lfd);
    return 0;
}
