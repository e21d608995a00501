/* ws_floor: the least work a WebSocket echo server can do over epoll, the
 * "floor" row of bench/ws_compare.sh (as echo_epoll and http_floor are for
 * the line echo and HTTP tables).
 *
 *   ws_floor --port=N
 *
 * Answers the handshake of bench/peers/ws_load only: it does not parse the
 * request (it waits for the blank line) and sends a canned 101 whose
 * Sec-WebSocket-Accept is the one for ws_load's fixed key (the RFC 6455
 * example key). Then, per readable socket: one recv(), every complete
 * masked frame in it unmasked into one reply buffer (unmasked frames, same
 * opcode), one send(). No UTF-8 check, no fragmentation, no extension, no
 * queue when the socket is full (the reply would be dropped: ws_load would
 * report a wrong echo). Level-triggered epoll, 127.0.0.1 only.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BUF = 64 * 1024 };

typedef struct client {
    int fd;
    int open;          /* handshake answered */
    size_t len;        /* bytes in buf not yet consumed */
    uint8_t buf[BUF];
} client;

static const char response[] =
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void drop(int epfd, client *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
}

/* Unmasks every complete frame of c->buf into out; returns the bytes of
 * out, or -1 for a close frame or a frame this floor does not handle. */
static ssize_t echo_frames(client *c, uint8_t *out, size_t cap)
{
    size_t pos = 0, o = 0;
    while (c->len - pos >= 6) {
        const uint8_t *f = c->buf + pos;
        size_t len = f[1] & 0x7f, h = 2;
        if (!(f[1] & 0x80) || len == 127 || (f[0] & 0x0f) == 8)
            return -1;
        if (len == 126) {
            if (c->len - pos < 8)
                break;
            len = (size_t)f[2] << 8 | f[3];
            h = 4;
        }
        if (c->len - pos < h + 4 + len)
            break;
        if (o + 4 + len > cap)
            return -1;
        const uint8_t *mask = f + h, *p = f + h + 4;
        out[o++] = f[0];
        if (len < 126) {
            out[o++] = (uint8_t)len;
        } else {
            out[o++] = 126;
            out[o++] = (uint8_t)(len >> 8);
            out[o++] = (uint8_t)len;
        }
        for (size_t i = 0; i < len; i++)
            out[o + i] = p[i] ^ mask[i & 3];
        o += len;
        pos += h + 4 + len;
    }
    memmove(c->buf, c->buf + pos, c->len - pos);
    c->len -= pos;
    return (ssize_t)o;
}

int main(int argc, char **argv)
{
    int port = 0;
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "--port=", 7))
            port = atoi(argv[i] + 7);
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: ws_floor --port=N\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) {
        perror("ws_floor: bind/listen");
        return 1;
    }
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev);
    printf("ws_floor listening on 127.0.0.1:%d\n", port);
    fflush(stdout);

    static uint8_t out[BUF + BUF / 2];
    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(epfd, evs, 256, 1000);
        for (int i = 0; i < n; i++) {
            client *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    client *nc = calloc(1, sizeof *nc);
                    if (!nc) {
                        close(fd);
                        continue;
                    }
                    nc->fd = fd;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = nc};
                    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            ssize_t r = recv(c->fd, c->buf + c->len, BUF - c->len, 0);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                drop(epfd, c);
                continue;
            }
            c->len += (size_t)r;
            if (!c->open) {
                uint8_t *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
                if (!end)
                    continue;
                size_t head = (size_t)(end + 4 - c->buf);
                memmove(c->buf, c->buf + head, c->len - head);
                c->len -= head;
                c->open = 1;
                if (send(c->fd, response, sizeof response - 1, MSG_NOSIGNAL) < 0) {
                    drop(epfd, c);
                    continue;
                }
            }
            ssize_t o = echo_frames(c, out, sizeof out);
            if (o < 0 || (o > 0 && send(c->fd, out, (size_t)o, MSG_NOSIGNAL) != o))
                drop(epfd, c);
        }
    }
    close(epfd);
    close(lfd);
    return 0;
}
