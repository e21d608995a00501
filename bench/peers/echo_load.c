/* echo_load: closed-loop load generator for line echo servers.
 *
 * Opens N connections to 127.0.0.1:PORT. Each connection keeps `pipeline`
 * messages of `size` bytes (ending in '\n') in flight: it sends them, and
 * each time a whole echo comes back it checks the bytes, records the latency
 * of the oldest message in flight and sends the next one. It stops after
 * `duration` seconds or `max_requests` echoes, whichever comes first, and
 * prints one line of key=value pairs (see usage()).
 *
 * It uses plain epoll and nothing from Gust, so that a bug in Gust's loop or
 * streams cannot hide in the tool that measures them. Only 127.0.0.1 is ever
 * contacted.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cpu_time.h"

/* Latency histogram: 1 µs buckets up to HIST_US; slower echoes go into the
 * last bucket (and still count in the mean and the max). 2^20 µs ≈ 1 s. */
#define HIST_US (1u << 20)

enum { MAX_CONNECTIONS = 10000, MAX_PIPELINE = 1024, MAX_SIZE = 1 << 20 };

typedef struct conn {
    int fd;
    uint64_t *sent_ns;   /* ring of send times, one per message in flight */
    unsigned head, count; /* oldest message in the ring, messages in flight */
    size_t out_pending;  /* bytes of queued messages not yet written */
    size_t out_offset;   /* offset within the current message being written */
    size_t in_offset;    /* bytes of the current echo already received */
    int want_out;        /* EPOLLOUT registered */
    int dead;
} conn;

typedef struct config {
    int port;
    int connections;
    double duration;
    size_t size;
    unsigned pipeline;
    uint64_t max_requests;
    long server_pid;
} config;

typedef struct stats {
    uint64_t requests;
    uint64_t errors;
    uint64_t sum_ns;
    uint64_t max_ns;
    uint32_t *hist;
} stats;

static char *g_msg; /* the message every connection sends, size bytes */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: echo_load --port=P [--connections=100] [--duration=5]\n"
            "                 [--size=64] [--pipeline=1] [--max-requests=N]\n"
            "                 [--server-pid=PID]\n"
            "Closed-loop echo load against 127.0.0.1:P. Prints one line:\n"
            "  requests= seconds= rps= mean_us= p50_us= p99_us= max_us= errors=\n"
            "  client_cpu_s= [server_cpu_s= rps_per_server_cpu_s=]\n"
            "server_cpu_s is the utime+stime of --server-pid during the\n"
            "measured window, read from /proc/PID/stat.\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, config *cfg)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"size", required_argument, NULL, 's'},
        {"pipeline", required_argument, NULL, 'l'},
        {"max-requests", required_argument, NULL, 'm'},
        {"server-pid", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    long v;
    char *end;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            if (parse_long(optarg, 1, 65535, &v))
                return -1;
            cfg->port = (int)v;
            break;
        case 'c':
            if (parse_long(optarg, 1, MAX_CONNECTIONS, &v))
                return -1;
            cfg->connections = (int)v;
            break;
        case 'd':
            cfg->duration = strtod(optarg, &end);
            /* Bounded on purpose: a benchmark run never lasts an hour. */
            if (*end || !(cfg->duration > 0 && cfg->duration <= 3600))
                return -1;
            break;
        case 's':
            if (parse_long(optarg, 2, MAX_SIZE, &v))
                return -1;
            cfg->size = (size_t)v;
            break;
        case 'l':
            if (parse_long(optarg, 1, MAX_PIPELINE, &v))
                return -1;
            cfg->pipeline = (unsigned)v;
            break;
        case 'm':
            if (parse_long(optarg, 1, 1000000000000L, &v))
                return -1;
            cfg->max_requests = (uint64_t)v;
            break;
        case 'P':
            if (parse_long(optarg, 1, 1L << 30, &v))
                return -1;
            cfg->server_pid = v;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    return (optind == argc && cfg->port) ? 0 : -1;
}

static int connect_one(int port)
{
    /* Blocking connect: the kernel completes the handshake against the
     * listen backlog, so this does not depend on the server's loop. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void conn_kill(conn *c, int epfd, stats *st, const char *why)
{
    if (c->dead)
        return;
    /* A dying server fails every connection at once: name the first few. */
    if (st->errors < 5)
        fprintf(stderr, "echo_load: connection fd %d: %s\n", c->fd, why);
    else if (st->errors == 5)
        fprintf(stderr, "echo_load: further errors only counted\n");
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->dead = 1;
    st->errors++;
}

static void set_want_out(conn *c, int epfd, int want)
{
    if (c->want_out == want)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0u),
                             .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want;
}

/* Writes the queued messages. They are all copies of g_msg, so the queue is
 * only a byte count; with pipeline > 1 the messages go out back to back in
 * one send() through a staging buffer, as a pipelining client would. */
static void conn_flush(conn *c, int epfd, stats *st, const config *cfg,
                       char *stage, size_t stage_len)
{
    while (c->out_pending) {
        /* Fill the staging buffer with the pending bytes, which start at
         * out_offset inside a message. */
        size_t len = c->out_pending < stage_len ? c->out_pending : stage_len;
        size_t off = c->out_offset, filled = 0;
        while (filled < len) {
            size_t chunk = cfg->size - off;
            if (chunk > len - filled)
                chunk = len - filled;
            memcpy(stage + filled, g_msg + off, chunk);
            filled += chunk;
            off = (off + chunk) % cfg->size;
        }
        ssize_t n = send(c->fd, stage, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_want_out(c, epfd, 1);
                return;
            }
            if (errno == EINTR)
                continue;
            conn_kill(c, epfd, st, strerror(errno));
            return;
        }
        c->out_pending -= (size_t)n;
        c->out_offset = (c->out_offset + (size_t)n) % cfg->size;
    }
    set_want_out(c, epfd, 0);
}

/* Queues one message and stamps its send time (the time it is handed to
 * the kernel, or queued if the socket is full: both count as latency). */
static void conn_queue(conn *c, const config *cfg, uint64_t t)
{
    unsigned slot = (c->head + c->count) % cfg->pipeline;
    c->sent_ns[slot] = t;
    c->count++;
    c->out_pending += cfg->size;
}

static void record(stats *st, uint64_t ns)
{
    st->requests++;
    st->sum_ns += ns;
    if (ns > st->max_ns)
        st->max_ns = ns;
    uint64_t us = ns / 1000;
    st->hist[us < HIST_US ? us : HIST_US - 1]++;
}

/* Reads everything available, checks it, records one latency per whole
 * echo and, while `sending`, queues the next message in its place. */
static void conn_read(conn *c, int epfd, stats *st, const config *cfg,
                      char *buf, size_t buf_len, int sending)
{
    for (;;) {
        ssize_t n = recv(c->fd, buf, buf_len, 0);
        if (n == 0) {
            conn_kill(c, epfd, st, "closed by the server");
            return;
        }
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            conn_kill(c, epfd, st, strerror(errno));
            return;
        }
        size_t pos = 0;
        uint64_t t = now_ns();
        while (pos < (size_t)n) {
            size_t chunk = cfg->size - c->in_offset;
            if (chunk > (size_t)n - pos)
                chunk = (size_t)n - pos;
            /* An echo server must return exactly what it got. */
            if (c->count == 0 ||
                memcmp(buf + pos, g_msg + c->in_offset, chunk) != 0) {
                conn_kill(c, epfd, st, "echo differs from the message sent");
                return;
            }
            pos += chunk;
            c->in_offset += chunk;
            if (c->in_offset < cfg->size)
                break;
            c->in_offset = 0;
            record(st, t - c->sent_ns[c->head]);
            c->head = (c->head + 1) % cfg->pipeline;
            c->count--;
            if (sending)
                conn_queue(c, cfg, t);
        }
        if ((size_t)n < buf_len)
            return; /* short read: the socket is drained */
    }
}

static uint64_t percentile_us(const stats *st, double q)
{
    if (st->requests == 0)
        return 0;
    uint64_t rank = (uint64_t)((double)st->requests * q);
    if (rank >= st->requests)
        rank = st->requests - 1;
    uint64_t seen = 0;
    for (uint64_t us = 0; us < HIST_US; us++) {
        seen += st->hist[us];
        if (seen > rank)
            return us;
    }
    return HIST_US - 1;
}

int main(int argc, char **argv)
{
    config cfg = {.connections = 100, .duration = 5, .size = 64,
                  .pipeline = 1, .max_requests = 100000000};
    if (parse_args(argc, argv, &cfg) < 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    g_msg = malloc(cfg.size);
    stats st = {.hist = calloc(HIST_US, sizeof(uint32_t))};
    conn *conns = calloc((size_t)cfg.connections, sizeof *conns);
    size_t io_len = 64 * 1024;
    if (cfg.size * cfg.pipeline > io_len)
        io_len = cfg.size * cfg.pipeline;
    char *iobuf = malloc(io_len), *stage = malloc(io_len);
    if (!g_msg || !st.hist || !conns || !iobuf || !stage) {
        fprintf(stderr, "echo_load: out of memory\n");
        return 1;
    }
    /* Printable, not all alike, so a server that shuffles bytes is caught. */
    for (size_t i = 0; i + 1 < cfg.size; i++)
        g_msg[i] = (char)('a' + i % 26);
    g_msg[cfg.size - 1] = '\n';

    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) {
        perror("echo_load: epoll_create1");
        return 1;
    }
    for (int i = 0; i < cfg.connections; i++) {
        conn *c = &conns[i];
        c->fd = connect_one(cfg.port);
        c->sent_ns = calloc(cfg.pipeline, sizeof(uint64_t));
        if (c->fd < 0 || !c->sent_ns) {
            fprintf(stderr, "echo_load: connect to 127.0.0.1:%d: %s\n",
                    cfg.port, strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
            perror("echo_load: epoll_ctl");
            return 1;
        }
    }

    /* Everything is connected: the measured window starts now. */
    uint64_t start = now_ns();
    uint64_t end = start + (uint64_t)(cfg.duration * 1e9);
    double server_cpu0 = cfg.server_pid ? proc_cpu_seconds(cfg.server_pid) : 0;
    double client_cpu0 = self_cpu_seconds();
    for (int i = 0; i < cfg.connections; i++) {
        for (unsigned k = 0; k < cfg.pipeline; k++)
            conn_queue(&conns[i], &cfg, start);
        conn_flush(&conns[i], epfd, &st, &cfg, stage, io_len);
    }

    enum { MAX_EVENTS = 256 };
    struct epoll_event evs[MAX_EVENTS];
    int alive = cfg.connections;
    uint64_t t = start;
    while (t < end && st.requests < cfg.max_requests && alive > 0) {
        int timeout_ms = (int)((end - t) / 1000000) + 1;
        int n = epoll_wait(epfd, evs, MAX_EVENTS, timeout_ms);
        if (n < 0 && errno != EINTR) {
            perror("echo_load: epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->dead)
                continue;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                conn_read(c, epfd, &st, &cfg, iobuf, io_len,
                          st.requests < cfg.max_requests);
            if (!c->dead && c->out_pending)
                conn_flush(c, epfd, &st, &cfg, stage, io_len);
            if (c->dead)
                alive--;
        }
        t = now_ns();
    }
    double elapsed = (double)(now_ns() - start) / 1e9;
    double server_cpu = cfg.server_pid
                            ? proc_cpu_seconds(cfg.server_pid) - server_cpu0
                            : 0;
    double client_cpu = self_cpu_seconds() - client_cpu0;

    double rps = (double)st.requests / elapsed;
    printf("requests=%" PRIu64 " seconds=%.3f rps=%.0f mean_us=%.1f"
           " p50_us=%" PRIu64 " p99_us=%" PRIu64 " max_us=%.0f errors=%" PRIu64
           " client_cpu_s=%.2f",
           st.requests, elapsed, rps,
           st.requests ? (double)st.sum_ns / (double)st.requests / 1e3 : 0.0,
           percentile_us(&st, 0.50), percentile_us(&st, 0.99),
           (double)st.max_ns / 1e3, st.errors, client_cpu);
    if (cfg.server_pid)
        printf(" server_cpu_s=%.2f rps_per_server_cpu_s=%.0f", server_cpu,
               server_cpu > 0 ? (double)st.requests / server_cpu : 0.0);
    printf("\n");

    for (int i = 0; i < cfg.connections; i++) {
        close(conns[i].fd);
        free(conns[i].sent_ns);
    }
    close(epfd);
    free(conns);
    free(st.hist);
    free(iobuf);
    free(stage);
    free(g_msg);
    return st.errors ? 1 : 0;
}
