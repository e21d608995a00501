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

enum { IN_CAP = 8192, OUT_CAP = 64 * 1024, MAX_EVENTS = 512 };

typedef struct conn {
    int fd;
    size_t in_len;
    size_t out_len;
    bool want_out; /* EPOLLOUT registered */
    char in[IN_CAP];
    char out[OUT_CAP];
} conn;

/* "HTTP/1.1 200 OK\r\nDate: <29 chars>\r\n..." with the date patched in. */
static char response[] = "HTTP/1.1 200 OK\r\n"
                         "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
                         "Server: Gust/0.1.0\r\n"
                         "Content-Type: text/plain\r\n"
                         "Content-Length: 12\r\n"
                         "\r\n"
                         "Hello, world";
enum { DATE_AT = 23, DATE_LEN = 29 };
static time_t date_sec = -1;

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void update_date(void)
{
    time_t now = time(NULL);
    if (now == date_sec)
        return;
    date_sec = now;
    struct tm tm;
    gmtime_r(&now, &tm);
    char d[DATE_LEN + 1];
    strftime(d, sizeof d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    memcpy(response + DATE_AT, d, DATE_LEN);
}

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
    char *p = c->in, *end = c->in + c->in_len, *e;
    while ((e = memmem(p, (size_t)(end - p), "\r\n\r\n", 4))) {
        if (c->out_len + sizeof response - 1 > OUT_CAP)
            return false; /* a client that never reads: not our case */
        memcpy(c->out + c->out_len, response, sizeof response - 1);
        c->out_len += sizeof response - 1;
        p = e + 4;
    }
    c->in_len = (size_t)(end - p);
    memmove(c->in, p, c->in_len);
    if (c->in_len == IN_CAP)
        return false; /* a head larger than the buffer */
    return flush_out(ep, c);
}

int main(int argc, char **argv)
{
    int port = 0;
    const char *address = "127.0.0.1";
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--port=", 7) == 0)
            port = atoi(argv[i] + 7);
        else if (strncmp(argv[i], "--address=", 10) == 0)
            address = argv[i] + 10;
        else {
            fprintf(stderr, "usage: %s --port=N [--address=A]\n", argv[0]);
            return 2;
        }
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, address, &a.sin_addr) != 1) {
        fprintf(stderr, "http_floor: need --port=N and an IPv4 --address\n");
        return 2;
    }
    int one = 1;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0) {
        perror("http_floor: listen");
        return 1;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    struct epoll_event evs[MAX_EVENTS];
    while (!stopping) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (n < 0 && errno == EINTR)
            continue;
        update_date();
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
