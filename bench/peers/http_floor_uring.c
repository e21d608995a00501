/* http_floor_uring: http_floor's work, with io_uring instead of epoll.
 *
 * Same canned 134-byte answer to every request head as http_floor.c, and
 * nothing else (not a server: no parsing, no validation, no timeouts). The
 * system calls differ: one multishot accept, one multishot receive per
 * connection fed from a ring of provided buffers, and every send of a loop
 * turn handed to the kernel with that turn's single io_uring_enter. So it
 * shows what a server loses to one read and one sendmsg per request, the
 * cost http_floor (and Gust, and nginx) pays: the headroom an io_uring
 * event loop could have on this machine.
 *
 *   http_floor_uring --port=N [--address=127.0.0.1]
 *
 * Only listens on the address given. Stops on SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_floor.h"

enum {
    IN_CAP = 8192,
    OUT_CAP = 64 * 1024,
    RING_ENTRIES = 4096,
    NBUF = 4096,  /* provided receive buffers (a power of two) */
    BUF_SIZE = 2048,
    GROUP = 0,
};

/* What a completion is for, in the low bits of its user_data. */
enum { OP_ACCEPT = 1, OP_RECV = 2, OP_SEND = 3, OP_MASK = 3 };

typedef struct conn {
    int fd;
    bool sending;    /* a send is in flight: out[0, out_len) is the kernel's */
    bool recv_armed; /* the multishot receive may still complete */
    bool closing;    /* freed once neither is in flight */
    size_t in_len, out_len, out_more;
    char in[IN_CAP];
    char out[OUT_CAP]; /* [0, out_len) sending; [out_len, out_more) queued */
} conn;

static struct io_uring ring;
static struct io_uring_buf_ring *bufs;
static char *buf_mem;

static struct io_uring_sqe *sqe(void)
{
    struct io_uring_sqe *s = io_uring_get_sqe(&ring);
    if (!s) { /* full: hand what is queued to the kernel first */
        io_uring_submit(&ring);
        s = io_uring_get_sqe(&ring);
    }
    return s;
}

static void *tag(void *p, int op)
{
    return (void *)((uintptr_t)p | (uintptr_t)op);
}

static void arm_recv(conn *c)
{
    struct io_uring_sqe *s = sqe();
    io_uring_prep_recv_multishot(s, c->fd, NULL, 0, 0);
    s->flags |= IOSQE_BUFFER_SELECT;
    s->buf_group = GROUP;
    io_uring_sqe_set_data(s, tag(c, OP_RECV));
    c->recv_armed = true;
}

static void send_queued(conn *c)
{
    if (c->sending || c->out_more == 0)
        return;
    c->out_len = c->out_more;
    struct io_uring_sqe *s = sqe();
    io_uring_prep_send(s, c->fd, c->out, c->out_len, MSG_NOSIGNAL);
    io_uring_sqe_set_data(s, tag(c, OP_SEND));
    c->sending = true;
}

static void maybe_free(conn *c)
{
    if (c->closing && !c->sending && !c->recv_armed)
        free(c);
}

static void drop(conn *c)
{
    if (!c->closing) {
        c->closing = true;
        /* A request in flight holds the socket open past close():
         * shutdown ends the multishot receive. */
        shutdown(c->fd, SHUT_RDWR);
        close(c->fd);
    }
    maybe_free(c);
}

static void give_back(int bid)
{
    io_uring_buf_ring_add(bufs, buf_mem + (size_t)bid * BUF_SIZE, BUF_SIZE,
                          (unsigned short)bid, io_uring_buf_ring_mask(NBUF), 0);
    io_uring_buf_ring_advance(bufs, 1);
}

static void on_recv(conn *c, struct io_uring_cqe *cqe)
{
    bool more = cqe->flags & IORING_CQE_F_MORE;
    if (!more)
        c->recv_armed = false;
    if (cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER) &&
        (c->closing || (size_t)cqe->res > IN_CAP - c->in_len)) {
        give_back((int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
        drop(c);
        return;
    }
    if (c->closing) {
        maybe_free(c);
        return;
    }
    if (cqe->res == -ENOBUFS) {
        if (!more)
            arm_recv(c); /* out of buffers for a moment: ask again */
        return;
    }
    if (cqe->res <= 0) {
        drop(c); /* end of file or an error */
        return;
    }
    int bid = (int)(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    size_t n = (size_t)cqe->res;
    memcpy(c->in + c->in_len, buf_mem + (size_t)bid * BUF_SIZE, n);
    give_back(bid);
    c->in_len += n;
    if (floor_answer(c->in, &c->in_len, c->out, &c->out_more, OUT_CAP) < 0) {
        drop(c);
        return;
    }
    send_queued(c);
    if (!more)
        arm_recv(c);
}

static void on_send(conn *c, struct io_uring_cqe *cqe)
{
    c->sending = false;
    if (c->closing) {
        maybe_free(c);
        return;
    }
    if (cqe->res <= 0) {
        drop(c);
        return;
    }
    size_t sent = (size_t)cqe->res;
    memmove(c->out, c->out + sent, c->out_more - sent);
    c->out_more -= sent;
    c->out_len = 0;
    send_queued(c);
}

static int setup_ring(void)
{
    struct io_uring_params p = {0};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(RING_ENTRIES, &ring, &p) < 0) {
        memset(&p, 0, sizeof p); /* an older kernel */
        int rc = io_uring_queue_init_params(RING_ENTRIES, &ring, &p);
        if (rc < 0)
            return rc;
    }
    /* liburing 2.3 has no io_uring_setup_buf_ring: map and register it. */
    size_t ring_bytes = NBUF * sizeof(struct io_uring_buf);
    bufs = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    buf_mem = malloc((size_t)NBUF * BUF_SIZE);
    if (bufs == MAP_FAILED || !buf_mem)
        return -ENOMEM;
    struct io_uring_buf_reg reg = {.ring_addr = (uintptr_t)bufs,
                                   .ring_entries = NBUF, .bgid = GROUP};
    int rc = io_uring_register_buf_ring(&ring, &reg, 0);
    if (rc < 0)
        return rc;
    io_uring_buf_ring_init(bufs);
    for (int i = 0; i < NBUF; i++)
        io_uring_buf_ring_add(bufs, buf_mem + (size_t)i * BUF_SIZE, BUF_SIZE,
                              (unsigned short)i, io_uring_buf_ring_mask(NBUF), i);
    io_uring_buf_ring_advance(bufs, NBUF);
    return 0;
}

int main(int argc, char **argv)
{
    int ls = floor_listen(argc, argv, SOCK_CLOEXEC);
    if (ls < 0)
        return -ls;
    int one = 1;
    int rc = setup_ring();
    if (rc < 0) {
        fprintf(stderr, "http_floor_uring: io_uring: %s\n", strerror(-rc));
        return 1;
    }
    struct io_uring_sqe *s = sqe();
    io_uring_prep_multishot_accept(s, ls, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data(s, tag(NULL, OP_ACCEPT));
    while (!floor_stopping) {
        rc = io_uring_submit_and_wait(&ring, 1);
        if (rc < 0 && rc != -EINTR && rc != -ETIME) {
            fprintf(stderr, "http_floor_uring: %s\n", strerror(-rc));
            break;
        }
        floor_update_date();
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            seen++;
            uintptr_t u = (uintptr_t)io_uring_cqe_get_data(cqe);
            conn *c = (conn *)(u & ~(uintptr_t)OP_MASK);
            switch ((int)(u & OP_MASK)) {
            case OP_ACCEPT:
                if (cqe->res >= 0) {
                    c = malloc(sizeof *c);
                    if (!c) {
                        close(cqe->res);
                        break;
                    }
                    c->fd = cqe->res;
                    c->sending = c->closing = c->recv_armed = false;
                    c->in_len = c->out_len = c->out_more = 0;
                    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    arm_recv(c);
                }
                if (!(cqe->flags & IORING_CQE_F_MORE)) {
                    s = sqe();
                    io_uring_prep_multishot_accept(s, ls, NULL, NULL, SOCK_CLOEXEC);
                    io_uring_sqe_set_data(s, tag(NULL, OP_ACCEPT));
                }
                break;
            case OP_RECV:
                on_recv(c, cqe);
                break;
            case OP_SEND:
                on_send(c, cqe);
                break;
            }
        }
        io_uring_cq_advance(&ring, seen);
    }
    io_uring_queue_exit(&ring);
    close(ls);
    return 0;
}
