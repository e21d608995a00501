/* http_load: closed-loop HTTP/1.1 load generator on io_uring.
 *
 *   http_load -c CONNS -d SECONDS [-n MAX_REQUESTS] [-p PIPELINE]
 *             [-H 'Name: value']... [--cpu-pid PID] http://127.0.0.1:PORT/path
 *
 * Why it exists: `wrk -t1` saturates its own core at about 80k keep-alive
 * requests/s on this machine, below what nginx or Gust serve on one core,
 * so a wrk run measures wrk. Syscalls are what a load generator mostly pays
 * for here, so this one never makes a syscall per request: every send and
 * receive of one loop turn goes to the kernel in a single io_uring_enter.
 *
 * Each connection keeps PIPELINE identical GET requests in flight and has one
 * receive outstanding at all times: a multishot recv fed from a ring of
 * provided buffers, armed once per connection, not once per response (a
 * plain recv re-armed per response measured about 5% more CPU per response). Responses are parsed for real: status line, headers,
 * Content-Length or chunked bodies (sizes decoded, trailers skipped), split
 * anywhere across receives. A non-2xx status, a malformed response or a
 * socket error counts as an error; `Connection: close` or an end of file
 * makes it reconnect and go on (the old socket is cancelled and closed and
 * the new one connected through the ring: two syscalls per reconnect,
 * socket and setsockopt). More than 1% errors fails the run.
 *
 * The output imitates wrk's, so that scripts written for wrk read it
 * (`Requests/sec:`, the latency percentiles), and adds `requests:`,
 * `errors:`, `self_cpu_s:` and, with --cpu-pid, `server_cpu_s:`.
 *
 * Like every program in bench/peers/, it does not link Gust: a bug in Gust
 * must not hide in the instrument. It only ever connects to 127.0.0.1 or
 * ::1, and every run is bounded in time (at most 600 s) and optionally in
 * requests.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cpu_time.h"

/* Latency histogram: 1 µs buckets up to HIST_US (2^20 µs, about 1 s); a
 * slower response lands in the last bucket but still counts in mean and max. */
#define HIST_US (1u << 20)

enum {
    MAX_CONNECTIONS = 20000,
    MAX_PIPELINE = 1024,
    MAX_REQUEST = 16384,  /* request line plus all headers */
    MAX_HEAD = 16384,     /* a longer response head is counted as malformed */
    RECV_SIZE = 4096,     /* one provided buffer */
    SQ_ENTRIES = 4096,
    BUF_GROUP = 0,
    ERRORS_SHOWN = 5,     /* a dying server fails everything: name a few */
};

/* What a completion is for, in the low 3 bits of its user_data. Receives,
 * sends and connects carry the connection's index and generation, so a late
 * completion for a connection that has since been replaced is recognised
 * and dropped. The deadline timer's user_data is 0. */
enum op {
    OP_DEADLINE = 0,
    OP_RECV = 1,
    OP_SEND = 2,
    OP_CONNECT = 3,
    OP_IGNORE = 4,  /* cancel and close of a dropped socket */
};
#define OP_MASK 7u

typedef enum parse_state {
    P_HEAD,          /* status line and headers, until CRLF CRLF */
    P_BODY_LENGTH,   /* Content-Length bytes to skip */
    P_BODY_EOF,      /* no length: the body ends when the server closes */
    P_CHUNK_SIZE,    /* hex digits of a chunk size */
    P_CHUNK_EXT,     /* ";ext" after the size, skipped up to CR */
    P_CHUNK_SIZE_LF, /* LF after the size line */
    P_CHUNK_DATA,    /* chunk bytes to skip */
    P_CHUNK_DATA_CR, /* CRLF after the chunk data */
    P_CHUNK_DATA_LF,
    P_TRAILER_START, /* after the last chunk: a trailer field or the end */
    P_TRAILER_LINE,  /* a trailer field, skipped up to LF */
    P_END_LF,        /* LF of the final empty line */
} parse_state;

typedef enum error_kind { ERR_MALFORMED, ERR_SOCKET } error_kind;

typedef struct conn {
    int fd;              /* -1 between a failed reconnect and the end */
    uint32_t idx;
    uint32_t gen;        /* bumped on every reconnect */
    uint64_t *sent_ns;   /* ring of send times, one per request in flight */
    unsigned head;       /* oldest request in the ring */
    unsigned inflight;   /* requests queued or sent, response not complete */
    size_t out_bytes;    /* bytes of queued requests the kernel has not taken */
    bool send_busy;      /* a send is outstanding */
    bool dirty;          /* listed in the loop's dirty array */
    /* Response parser. */
    parse_state state;
    int status;
    bool close_after;    /* Connection: close, or HTTP/1.0 without keep-alive */
    uint64_t remaining;  /* body or chunk bytes still to skip */
    unsigned digits;     /* hex digits seen in the current chunk size */
    size_t head_len;     /* bytes of a split response head kept in head_buf */
    char *head_buf;      /* MAX_HEAD bytes, allocated on the first split head */
} conn;

typedef struct config {
    int connections;
    double duration;
    uint64_t max_requests; /* 0: no limit */
    unsigned pipeline;
    long cpu_pid;
    unsigned batch;        /* completions to wait for; 0: automatic */
    unsigned wait_us;      /* longest wait for a batch */
    const char *url;
    int family;            /* AF_INET or AF_INET6 */
    uint16_t port;
    char authority[64];    /* host[:port] as written in the URL */
    const char *path;
    char headers[MAX_REQUEST]; /* the -H lines, each ending in CRLF */
    size_t headers_len;
    bool user_host;        /* a -H gave Host: do not add ours */
} config;

typedef struct stats {
    uint64_t requests;     /* complete responses */
    uint64_t non2xx, malformed, socket_errors;
    uint64_t closes, eofs, failed_closes, reconnects;
    uint64_t bytes;
    uint64_t turns, rearms; /* loop turns; multishot receives re-armed */
    uint64_t sum_ns, max_ns;
    uint32_t *hist;
} stats;

typedef struct loadgen {
    config cfg;
    struct io_uring ring;
    const char *setup_name;
    conn *conns;
    conn **dirty;          /* connections with bytes to send */
    unsigned ndirty;
    struct sockaddr_storage addr; /* the server */
    socklen_t addr_len;
    char *reqs;            /* the request, pipeline times in a row */
    size_t req_len;
    struct io_uring_buf_ring *br;
    size_t br_size;
    char *bufs;
    unsigned nbufs, br_added;
    struct __kernel_timespec deadline;
    uint64_t now, issued;
    unsigned sends;        /* sends prepared since the last wait */
    bool stopping;
    bool quiet;            /* --self-test: errors are expected, not shown */
    char fatal[256];       /* why the run stopped early, if it did */
    stats st;
} loadgen;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t conn_tag(const conn *c, enum op op)
{
    return (uint64_t)c->gen << 32 | (uint64_t)c->idx << 3 | (uint64_t)op;
}

static void usage(FILE *out)
{
    fprintf(out,
        "usage: http_load -c CONNS -d SECONDS [-n MAX_REQUESTS] [-p PIPELINE]\n"
        "                 [-H 'Name: value']... [--cpu-pid PID] URL\n"
        "Closed-loop HTTP/1.1 GET load on io_uring. URL is http://127.0.0.1:PORT/path,\n"
        "http://[::1]:PORT/path or http://localhost:PORT/path; no other host.\n"
        "  -c, --connections N  connections (default 100, at most %d)\n"
        "  -d, --duration T     seconds, 's' or 'm' suffix allowed (default 5, max 600)\n"
        "  -n, --requests N     stop after N responses\n"
        "  -p, --pipeline N     requests in flight per connection (default 1)\n"
        "  -H, --header H       extra request header, repeatable\n"
        "      --cpu-pid PID    report that process's CPU time during the run\n"
        "      --batch=N        completions to wait for per turn (0: automatic)\n"
        "      --wait-us=N      longest wait for them (default 1000)\n"
        "  -t 1, --latency      accepted and ignored, for wrk command lines\n"
        "      --self-test      check the response parser on canned input, no network\n"
        "Prints wrk-style Requests/sec and latency percentiles, then requests:,\n"
        "errors:, reconnects:, self_cpu_s: and with --cpu-pid server_cpu_s:.\n"
        "Exit status 1 if more than 1%% of responses were errors or the server\n"
        "could not be reached, 2 for a bad command line.\n",
        MAX_CONNECTIONS);
}

static int parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "5", "5s", "1.5s", "2m" (wrk writes durations with a unit). */
static int parse_duration(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s)
        return -1;
    if (strcmp(end, "m") == 0)
        v *= 60;
    else if (*end && strcmp(end, "s") != 0)
        return -1;
    /* Bounded on purpose: a benchmark run never lasts more than 10 min. */
    if (!(v > 0 && v <= 600))
        return -1;
    *out = v;
    return 0;
}

/* Prints "http_load: <why>" and exits with status 2 (a bad command line). */
static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("http_load: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* Accepts only loopback URLs; exits with status 2 on anything else, so that
 * a typo can never point the load at another machine. */
static void parse_url(config *cfg, const char *url)
{
    const char *p = url, *host, *host_end, *auth_end;
    if (strncmp(p, "http://", 7) != 0)
        usage_error("%s: only http:// URLs are supported", url);
    p += 7;
    auth_end = p + strcspn(p, "/?#");
    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (!host_end)
            usage_error("%s: bad IPv6 address", url);
        p = host_end + 1;
    } else {
        host = p;
        host_end = memchr(host, ':', (size_t)(auth_end - host));
        if (!host_end)
            host_end = auth_end;
        p = host_end;
    }
    size_t hlen = (size_t)(host_end - host);
    if ((hlen == 9 && memcmp(host, "127.0.0.1", 9) == 0) ||
        (hlen == 9 && strncasecmp(host, "localhost", 9) == 0))
        cfg->family = AF_INET;
    else if (hlen == 3 && memcmp(host, "::1", 3) == 0 && host[-1] == '[')
        cfg->family = AF_INET6;
    else
        usage_error("refusing host '%.*s': only 127.0.0.1, [::1] and localhost "
                    "may be loaded", (int)hlen, host);
    cfg->port = 80;
    if (p < auth_end) {
        uint64_t port;
        char buf[8];
        size_t n = (size_t)(auth_end - p - 1);
        if (*p != ':' || n == 0 || n >= sizeof buf)
            usage_error("%s: bad port", url);
        memcpy(buf, p + 1, n);
        buf[n] = '\0';
        if (parse_u64(buf, 1, 65535, &port) < 0)
            usage_error("%s: bad port", url);
        cfg->port = (uint16_t)port;
    }
    size_t alen = (size_t)(auth_end - (url + 7));
    if (alen >= sizeof cfg->authority)
        usage_error("%s: host too long", url);
    memcpy(cfg->authority, url + 7, alen);
    cfg->authority[alen] = '\0';
    cfg->path = *auth_end ? auth_end : "/";
    if (*cfg->path != '/')
        usage_error("%s: the path must start with '/'", url);
    for (const char *q = cfg->path; *q; q++) {
        if ((unsigned char)*q <= ' ' || *q == 0x7f)
            usage_error("%s: no spaces or control characters in the path", url);
    }
}

static int add_header(config *cfg, const char *h)
{
    const char *colon = strchr(h, ':');
    size_t len = strlen(h);
    if (!colon || colon == h || strpbrk(h, "\r\n"))
        return -1;
    if (cfg->headers_len + len + 2 > sizeof cfg->headers)
        return -1;
    if ((size_t)(colon - h) == 4 && strncasecmp(h, "host", 4) == 0)
        cfg->user_host = true;
    memcpy(cfg->headers + cfg->headers_len, h, len);
    memcpy(cfg->headers + cfg->headers_len + len, "\r\n", 2);
    cfg->headers_len += len + 2;
    return 0;
}

static int self_test(void);

static void parse_args(int argc, char **argv, config *cfg)
{
    static const struct option opts[] = {
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"requests", required_argument, NULL, 'n'},
        {"pipeline", required_argument, NULL, 'p'},
        {"header", required_argument, NULL, 'H'},
        {"threads", required_argument, NULL, 't'},
        {"cpu-pid", required_argument, NULL, 'P'},
        {"batch", required_argument, NULL, 'B'},
        {"wait-us", required_argument, NULL, 'W'},
        {"latency", no_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {"self-test", no_argument, NULL, 'T'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    uint64_t v;
    while ((ch = getopt_long(argc, argv, "c:d:n:p:H:t:h", opts, NULL)) != -1) {
        const char *bad = NULL;
        switch (ch) {
        case 'c':
            if (parse_u64(optarg, 1, MAX_CONNECTIONS, &v) < 0)
                bad = "-c wants 1 to 20000";
            cfg->connections = (int)v;
            break;
        case 'd':
            if (parse_duration(optarg, &cfg->duration) < 0)
                bad = "-d wants a duration above 0 and at most 600 s";
            break;
        case 'n':
            if (parse_u64(optarg, 1, UINT64_C(1) << 40, &cfg->max_requests) < 0)
                bad = "-n wants a positive count";
            break;
        case 'p':
            if (parse_u64(optarg, 1, MAX_PIPELINE, &v) < 0)
                bad = "-p wants 1 to 1024";
            cfg->pipeline = (unsigned)v;
            break;
        case 'H':
            if (add_header(cfg, optarg) < 0)
                bad = "-H wants 'Name: value' (no CR or LF, 16 KiB in all)";
            break;
        case 't':
            if (strcmp(optarg, "1") != 0)
                bad = "http_load is single-threaded: only -t 1";
            break;
        case 'P':
            if (parse_u64(optarg, 1, 1u << 30, &v) < 0)
                bad = "--cpu-pid wants a process id";
            cfg->cpu_pid = (long)v;
            break;
        case 'B':
            if (parse_u64(optarg, 0, 4096, &v) < 0)
                bad = "--batch wants 0 (automatic) to 4096";
            cfg->batch = (unsigned)v;
            break;
        case 'W':
            if (parse_u64(optarg, 1, 1000000, &v) < 0)
                bad = "--wait-us wants 1 to 1000000";
            cfg->wait_us = (unsigned)v;
            break;
        case 'L':
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'T':
            exit(self_test());
        default:
            usage(stderr);
            exit(2);
        }
        if (bad)
            usage_error("%s", bad);
    }
    if (optind != argc - 1) {
        usage(stderr);
        exit(2);
    }
    cfg->url = argv[optind];
    parse_url(cfg, cfg->url);
}

static void set_address(loadgen *g)
{
    memset(&g->addr, 0, sizeof g->addr);
    if (g->cfg.family == AF_INET) {
        struct sockaddr_in *sa = (struct sockaddr_in *)&g->addr;
        sa->sin_family = AF_INET;
        sa->sin_port = htons(g->cfg.port);
        sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        g->addr_len = sizeof *sa;
    } else {
        struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&g->addr;
        sa->sin6_family = AF_INET6;
        sa->sin6_port = htons(g->cfg.port);
        sa->sin6_addr = in6addr_loopback;
        g->addr_len = sizeof *sa;
    }
}

/* A TCP socket with TCP_NODELAY (set before connecting: it carries over).
 * Returns the fd or -errno. */
static int new_socket(const loadgen *g)
{
    int fd = socket(g->cfg.family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

/* A blocking connect, for the connections opened before the clock starts:
 * the kernel completes the handshake against the listen backlog, without
 * waiting for the server's loop. Returns the fd or -errno. */
static int connect_one(const loadgen *g)
{
    int fd = new_socket(g);
    if (fd >= 0 && connect(fd, (const struct sockaddr *)&g->addr, g->addr_len) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

/* ---- submission helpers -------------------------------------------------- */

static struct io_uring_sqe *get_sqe(loadgen *g)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&g->ring);
    if (!sqe) {
        /* The queue is full (thousands of connections in one turn): hand
         * it to the kernel now; this is the only extra io_uring_enter. */
        io_uring_submit(&g->ring);
        sqe = io_uring_get_sqe(&g->ring);
    }
    if (!sqe && !g->fatal[0]) {
        snprintf(g->fatal, sizeof g->fatal, "io_uring submission queue full");
        g->stopping = true;
    }
    return sqe;
}

static void mark_dirty(loadgen *g, conn *c)
{
    if (!c->dirty) {
        c->dirty = true;
        g->dirty[g->ndirty++] = c;
    }
}

static void conn_arm_recv(loadgen *g, conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(g);
    if (!sqe)
        return;
    io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = BUF_GROUP;
    io_uring_sqe_set_data64(sqe, conn_tag(c, OP_RECV));
}

/* Sends everything queued on c in one send from the shared request buffer.
 * All requests are alike, so the pending bytes are always the tail of a run
 * of whole requests, and the buffer holds `pipeline` of them in a row. */
static void conn_send(loadgen *g, conn *c)
{
    struct io_uring_sqe *sqe = get_sqe(g);
    if (!sqe)
        return;
    size_t off = (g->req_len - c->out_bytes % g->req_len) % g->req_len;
    io_uring_prep_send(sqe, c->fd, g->reqs + off, c->out_bytes, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, conn_tag(c, OP_SEND));
    c->send_busy = true;
    g->sends++;
}

static bool can_issue(const loadgen *g)
{
    return !g->stopping &&
           (g->cfg.max_requests == 0 || g->issued < g->cfg.max_requests);
}

/* Queues one request, stamped with this loop turn's time: its latency runs
 * from here to the turn in which its response is complete. */
static void conn_queue(loadgen *g, conn *c)
{
    unsigned slot = c->head + c->inflight;
    if (slot >= g->cfg.pipeline)
        slot -= g->cfg.pipeline;
    c->sent_ns[slot] = g->now;
    c->inflight++;
    c->out_bytes += g->req_len;
    g->issued++;
    mark_dirty(g, c);
}

/* A fresh connection: one receive armed, the pipeline filled. */
static void conn_start(loadgen *g, conn *c)
{
    conn_arm_recv(g, c);
    while (c->inflight < g->cfg.pipeline && can_issue(g))
        conn_queue(g, c);
}

/* Drops a socket through the ring: cancel what is outstanding on it (the
 * receive), then close it. Both run in order in the next submit, after any
 * operation already prepared for this fd, and until then the number stays
 * taken, so no new socket can be mistaken for it. No syscall here: with
 * Connection: close this happens once per request. */
static void drop_socket(loadgen *g, int fd)
{
    struct io_uring_sqe *sqe = get_sqe(g);
    if (!sqe)
        return;
    io_uring_prep_cancel_fd(sqe, fd, IORING_ASYNC_CANCEL_ALL);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, OP_IGNORE);
    if (!(sqe = get_sqe(g)))
        return;
    io_uring_prep_close(sqe, fd);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(sqe, OP_IGNORE);
}

/* Drops c's socket and connects a new one in its place, through the ring;
 * the new one starts when its connect completes (on_connect). Requests in
 * flight on the old socket are forgotten (not counted as sent). */
static void conn_reconnect(loadgen *g, conn *c)
{
    if (c->fd >= 0) {
        drop_socket(g, c->fd);
        c->fd = -1;
    }
    g->issued -= c->inflight;
    c->inflight = 0;
    c->head = 0;
    c->out_bytes = 0;
    c->send_busy = false;
    c->state = P_HEAD;
    c->head_len = 0;
    c->gen++;
    if (g->stopping)
        return;
    int fd = new_socket(g);
    struct io_uring_sqe *sqe = fd >= 0 ? get_sqe(g) : NULL;
    if (!sqe) {
        if (fd >= 0)
            close(fd);
        snprintf(g->fatal, sizeof g->fatal, "reconnect to %s failed: %s",
                 g->cfg.authority, fd < 0 ? strerror(-fd) : "no SQE");
        g->stopping = true;
        return;
    }
    c->fd = fd;
    io_uring_prep_connect(sqe, fd, (const struct sockaddr *)&g->addr, g->addr_len);
    io_uring_sqe_set_data64(sqe, conn_tag(c, OP_CONNECT));
}

static void on_connect(loadgen *g, conn *c, int res)
{
    if (res < 0) {
        snprintf(g->fatal, sizeof g->fatal, "reconnect to %s failed: %s",
                 g->cfg.authority, strerror(-res));
        g->stopping = true;
        return;
    }
    g->st.reconnects++;
    conn_start(g, c);
}

/* Names the first few errors on stderr (call before counting this one). */
static void note_error(const loadgen *g, const conn *c, const char *why)
{
    uint64_t errors = g->st.non2xx + g->st.malformed + g->st.socket_errors;
    if (g->quiet)
        return;
    if (errors < ERRORS_SHOWN)
        fprintf(stderr, "http_load: connection %u: %s\n", c->idx, why);
    else if (errors == ERRORS_SHOWN)
        fprintf(stderr, "http_load: further errors only counted\n");
}

static void conn_fail(loadgen *g, conn *c, error_kind kind, const char *why)
{
    note_error(g, c, why);
    if (kind == ERR_MALFORMED)
        g->st.malformed++;
    else
        g->st.socket_errors++;
    g->st.failed_closes++;
    conn_reconnect(g, c);
}

/* ---- response parsing --------------------------------------------------- */

static void record(stats *st, uint64_t ns)
{
    st->requests++;
    st->sum_ns += ns;
    if (ns > st->max_ns)
        st->max_ns = ns;
    uint64_t us = ns / 1000;
    st->hist[us < HIST_US ? us : HIST_US - 1]++;
}

/* The response to c's oldest request is complete. */
static void response_done(loadgen *g, conn *c)
{
    if (c->inflight == 0) {
        conn_fail(g, c, ERR_MALFORMED, "a response nobody asked for");
        return;
    }
    record(&g->st, g->now - c->sent_ns[c->head]);
    if (++c->head == g->cfg.pipeline)
        c->head = 0;
    c->inflight--;
    if (c->status < 200 || c->status > 299) {
        char why[32];
        snprintf(why, sizeof why, "status %d", c->status);
        note_error(g, c, why);
        g->st.non2xx++;
    }
    c->state = P_HEAD;
    if (g->cfg.max_requests && g->st.requests >= g->cfg.max_requests)
        g->stopping = true;
    if (c->close_after) {
        g->st.closes++;
        conn_reconnect(g, c);
        return;
    }
    if (can_issue(g))
        conn_queue(g, c);
}

static bool name_is(const char *name, size_t len, const char *want, size_t wlen)
{
    return len == wlen && strncasecmp(name, want, wlen) == 0;
}

/* True if the comma-separated list [v, v+len) holds token tok. */
static bool has_token(const char *v, size_t len, const char *tok, size_t tlen)
{
    const char *end = v + len;
    while (v < end) {
        while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        const char *s = v;
        while (v < end && *v != ',')
            v++;
        const char *e = v;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (name_is(s, (size_t)(e - s), tok, tlen))
            return true;
    }
    return false;
}

/* Parses a complete response head [h, h+len), len including the final
 * CRLF CRLF, and sets the body state. Returns 0, or -1 if malformed. */
static int parse_head(conn *c, const char *h, size_t len)
{
    const char *end = h + len - 2; /* the final empty line's CRLF */
    if (len < 16 || memcmp(h, "HTTP/1.", 7) != 0 ||
        (h[7] != '0' && h[7] != '1') || h[8] != ' ' ||
        !isdigit((unsigned char)h[9]) || !isdigit((unsigned char)h[10]) ||
        !isdigit((unsigned char)h[11]) || (h[12] != ' ' && h[12] != '\r'))
        return -1;
    c->status = (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
    bool http10 = h[7] == '0', close = false, keep_alive = false;
    bool chunked = false, has_length = false, other_coding = false;
    uint64_t length = 0;
    const char *line = memchr(h, '\n', len);
    if (!line || line[-1] != '\r')
        return -1;
    line++;
    while (line < end) {
        const char *nl = memchr(line, '\n', (size_t)(end + 2 - line));
        if (!nl || nl[-1] != '\r')
            return -1;
        const char *colon = memchr(line, ':', (size_t)(nl - line));
        if (!colon || colon == line)
            return -1;
        size_t nlen = (size_t)(colon - line);
        const char *v = colon + 1, *ve = nl - 1;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vlen = (size_t)(ve - v);
        switch (line[0] | 0x20) {
        case 'c':
            if (name_is(line, nlen, "content-length", 14)) {
                uint64_t n = 0;
                if (vlen == 0 || vlen > 15)
                    return -1;
                for (size_t i = 0; i < vlen; i++) {
                    if (!isdigit((unsigned char)v[i]))
                        return -1;
                    n = n * 10 + (uint64_t)(v[i] - '0');
                }
                if (has_length && n != length)
                    return -1; /* two different lengths: refuse to guess */
                has_length = true;
                length = n;
            } else if (name_is(line, nlen, "connection", 10)) {
                close |= has_token(v, vlen, "close", 5);
                keep_alive |= has_token(v, vlen, "keep-alive", 10);
            }
            break;
        case 't':
            if (name_is(line, nlen, "transfer-encoding", 17)) {
                /* Only a final "chunked" delimits the body (RFC 9112 6.3). */
                const char *last = ve;
                while (last > v && last[-1] != ',')
                    last--;
                while (last < ve && (*last == ' ' || *last == '\t'))
                    last++;
                if (name_is(last, (size_t)(ve - last), "chunked", 7))
                    chunked = true;
                else
                    other_coding = true;
            }
            break;
        default:
            break;
        }
        line = nl + 1;
    }
    c->close_after = close || (http10 && !keep_alive);
    if (c->status < 200 || c->status == 204 || c->status == 304) {
        c->state = P_HEAD; /* no body; a 1xx is followed by the real one */
    } else if (chunked) {
        c->state = P_CHUNK_SIZE;
        c->remaining = 0;
        c->digits = 0;
    } else if (has_length && !other_coding) {
        c->state = P_BODY_LENGTH;
        c->remaining = length;
    } else {
        c->state = P_BODY_EOF;
        c->close_after = true;
    }
    return 0;
}

/* A head is complete: parse it and finish the response if it has no body. */
static void head_done(loadgen *g, conn *c, const char *h, size_t len)
{
    if (parse_head(c, h, len) < 0) {
        conn_fail(g, c, ERR_MALFORMED, "malformed response head");
        return;
    }
    if (c->status >= 100 && c->status < 200)
        return; /* interim response: the final one follows */
    if (c->state == P_HEAD ||
        (c->state == P_BODY_LENGTH && c->remaining == 0))
        response_done(g, c);
}

static int hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    ch |= 0x20;
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* Feeds n received bytes to c's parser. Stops early if c is replaced (a
 * malformed response, or Connection: close): the rest belongs to the old
 * socket and is dropped. */
static void conn_parse(loadgen *g, conn *c, const char *p, size_t n)
{
    const uint32_t gen = c->gen;
    while (n > 0 && c->gen == gen) {
        switch (c->state) {
        case P_HEAD:
            if (c->head_len == 0) {
                /* The usual case: the whole head is in this buffer. */
                const char *e = memmem(p, n, "\r\n\r\n", 4);
                if (e) {
                    size_t used = (size_t)(e + 4 - p);
                    p += used;
                    n -= used;
                    head_done(g, c, p - used, used);
                    break;
                }
            }
            if (!c->head_buf && !(c->head_buf = malloc(MAX_HEAD))) {
                snprintf(g->fatal, sizeof g->fatal, "out of memory");
                g->stopping = true;
                return;
            }
            {
                size_t old = c->head_len;
                size_t take = MAX_HEAD - old < n ? MAX_HEAD - old : n;
                memcpy(c->head_buf + old, p, take);
                c->head_len += take;
                size_t from = old > 3 ? old - 3 : 0;
                const char *e = memmem(c->head_buf + from, c->head_len - from,
                                       "\r\n\r\n", 4);
                if (e) {
                    size_t hlen = (size_t)(e + 4 - c->head_buf);
                    p += hlen - old;
                    n -= hlen - old;
                    c->head_len = 0;
                    head_done(g, c, c->head_buf, hlen);
                } else if (c->head_len == MAX_HEAD) {
                    conn_fail(g, c, ERR_MALFORMED, "response head over 16 KiB");
                    return;
                } else {
                    p += take;
                    n -= take;
                }
            }
            break;
        case P_BODY_LENGTH: {
            size_t k = c->remaining < n ? (size_t)c->remaining : n;
            c->remaining -= k;
            p += k;
            n -= k;
            if (c->remaining == 0)
                response_done(g, c);
            break;
        }
        case P_BODY_EOF:
            return; /* everything up to the close is body */
        case P_CHUNK_SIZE: {
            int d = hex_value(*p);
            if (d >= 0) {
                if (++c->digits > 15) {
                    conn_fail(g, c, ERR_MALFORMED, "chunk size too large");
                    return;
                }
                c->remaining = c->remaining * 16 + (uint64_t)d;
            } else if (c->digits && (*p == ';' || *p == ' ' || *p == '\t')) {
                c->state = P_CHUNK_EXT;
            } else if (c->digits && *p == '\r') {
                c->state = P_CHUNK_SIZE_LF;
            } else {
                conn_fail(g, c, ERR_MALFORMED, "bad chunk size");
                return;
            }
            p++;
            n--;
            break;
        }
        case P_CHUNK_EXT: {
            const char *cr = memchr(p, '\r', n);
            size_t k = cr ? (size_t)(cr - p) + 1 : n;
            if (cr)
                c->state = P_CHUNK_SIZE_LF;
            p += k;
            n -= k;
            break;
        }
        case P_CHUNK_SIZE_LF:
            if (*p != '\n') {
                conn_fail(g, c, ERR_MALFORMED, "bad chunk size line");
                return;
            }
            p++;
            n--;
            c->state = c->remaining ? P_CHUNK_DATA : P_TRAILER_START;
            break;
        case P_CHUNK_DATA: {
            size_t k = c->remaining < n ? (size_t)c->remaining : n;
            c->remaining -= k;
            p += k;
            n -= k;
            if (c->remaining == 0)
                c->state = P_CHUNK_DATA_CR;
            break;
        }
        case P_CHUNK_DATA_CR:
        case P_CHUNK_DATA_LF:
            if (*p != (c->state == P_CHUNK_DATA_CR ? '\r' : '\n')) {
                conn_fail(g, c, ERR_MALFORMED, "chunk data not followed by CRLF");
                return;
            }
            p++;
            n--;
            if (c->state == P_CHUNK_DATA_CR) {
                c->state = P_CHUNK_DATA_LF;
            } else {
                c->state = P_CHUNK_SIZE;
                c->digits = 0;
            }
            break;
        case P_TRAILER_START:
            c->state = *p == '\r' ? P_END_LF : P_TRAILER_LINE;
            p++;
            n--;
            break;
        case P_TRAILER_LINE: {
            const char *lf = memchr(p, '\n', n);
            size_t k = lf ? (size_t)(lf - p) + 1 : n;
            if (lf)
                c->state = P_TRAILER_START;
            p += k;
            n -= k;
            break;
        }
        case P_END_LF:
            if (*p != '\n') {
                conn_fail(g, c, ERR_MALFORMED, "bad end of chunked body");
                return;
            }
            p++;
            n--;
            response_done(g, c);
            break;
        }
    }
}

/* The server closed c. A body delimited by the close is now complete;
 * a close inside any other response is an error; a close between responses
 * is the server's right (it may close an idle or a busy keep-alive
 * connection): count it and reconnect. */
static void conn_eof(loadgen *g, conn *c)
{
    if (c->state == P_BODY_EOF) {
        c->close_after = true;
        response_done(g, c);
    } else if (c->state != P_HEAD || c->head_len) {
        conn_fail(g, c, ERR_MALFORMED, "connection closed inside a response");
    } else {
        g->st.eofs++;
        conn_reconnect(g, c);
    }
}

/* ---- completions -------------------------------------------------------- */

static void recycle_buffer(loadgen *g, unsigned bid)
{
    io_uring_buf_ring_add(g->br, g->bufs + (size_t)bid * RECV_SIZE, RECV_SIZE,
                          (unsigned short)bid, io_uring_buf_ring_mask(g->nbufs),
                          (int)g->br_added);
    g->br_added++;
}

static void on_recv_result(loadgen *g, conn *c, int res, const char *data,
                           bool more)
{
    if (res > 0) {
        g->st.bytes += (uint64_t)res;
        uint32_t gen = c->gen;
        conn_parse(g, c, data, (size_t)res);
        if (c->gen != gen)
            return; /* replaced: the new socket has its own receive */
        if (!more && !g->stopping)
            conn_arm_recv(g, c);
    } else if (res == 0) {
        conn_eof(g, c);
    } else if (res == -ENOBUFS || res == -EINTR || res == -EAGAIN) {
        /* Out of provided buffers: the multishot receive ended; the buffers
         * come back at the end of this turn, before it is re-armed. */
        if (!more && !g->stopping) {
            g->st.rearms++;
            conn_arm_recv(g, c);
        }
    } else {
        conn_fail(g, c, ERR_SOCKET, strerror(-res));
    }
}

static void on_send(loadgen *g, conn *c, int res)
{
    c->send_busy = false;
    if (res < 0) {
        if (res == -EAGAIN || res == -EINTR) {
            mark_dirty(g, c);
            return;
        }
        conn_fail(g, c, ERR_SOCKET, strerror(-res));
        return;
    }
    c->out_bytes -= (size_t)res < c->out_bytes ? (size_t)res : c->out_bytes;
    if (c->out_bytes)
        mark_dirty(g, c); /* a short send: the rest goes next turn */
}

static void on_cqe(loadgen *g, const struct io_uring_cqe *cqe)
{
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    enum op op = (enum op)(ud & OP_MASK);
    if (op == OP_DEADLINE) {
        g->stopping = true;
        return;
    }
    if (op == OP_IGNORE)
        return; /* a cancel that found nothing left to cancel */
    conn *c = &g->conns[(ud >> 3) & 0x1fffffff];
    bool current = (uint32_t)(ud >> 32) == c->gen && c->fd >= 0;
    if (op == OP_CONNECT) {
        if (current)
            on_connect(g, c, cqe->res);
        return;
    }
    if (op == OP_SEND) {
        if (current)
            on_send(g, c, cqe->res);
        return;
    }
    /* OP_RECV: the buffer goes back to the ring whatever happens, even for
     * a connection that no longer exists. */
    const char *data = NULL;
    if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        data = g->bufs + (size_t)bid * RECV_SIZE;
        if (current)
            on_recv_result(g, c, cqe->res, data,
                           cqe->flags & IORING_CQE_F_MORE);
        recycle_buffer(g, bid);
    } else if (current) {
        on_recv_result(g, c, cqe->res, NULL, cqe->flags & IORING_CQE_F_MORE);
    }
}

/* ---- setup -------------------------------------------------------------- */

static void setup_ring(loadgen *g)
{
    /* Task work deferred to our own io_uring_enter batches best: coop
     * mode measured about 1.5x the CPU per response at -c100. */
    static const struct {
        unsigned flags;
        const char *name;
    } modes[] = {
        {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
         "single-issuer, defer-taskrun"},
        {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
         "single-issuer, coop-taskrun"},
        {0, "default"},
    };
    unsigned cq = 4096;
    while (cq < 4u * (unsigned)g->cfg.connections && cq < 65536)
        cq *= 2;
    /* Fall back, one step at a time, to what the kernel accepts. */
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        struct io_uring_params p = {0};
        p.flags = modes[i].flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP |
                  IORING_SETUP_SUBMIT_ALL;
        p.cq_entries = cq;
        int rc = io_uring_queue_init_params(SQ_ENTRIES, &g->ring, &p);
        if (rc == -EINVAL && modes[i].flags)
            continue;
        if (rc == -EINVAL) /* an old kernel: no extra flag at all */
            rc = io_uring_queue_init(SQ_ENTRIES, &g->ring, 0);
        if (rc < 0) {
            fprintf(stderr, "http_load: io_uring_setup: %s\n", strerror(-rc));
            exit(1);
        }
        g->setup_name = modes[i].name;
        return;
    }
}

/* The provided-buffer ring the multishot receives draw from: enough
 * buffers that every connection can have a few completions waiting. */
static void setup_buffers(loadgen *g)
{
    unsigned n = 1024;
    while (n < 4u * (unsigned)g->cfg.connections && n < 16384)
        n *= 2;
    g->nbufs = n;
    g->br_size = n * sizeof(struct io_uring_buf);
    g->br = mmap(NULL, g->br_size, PROT_READ | PROT_WRITE,
                 MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    g->bufs = malloc((size_t)n * RECV_SIZE);
    if (g->br == MAP_FAILED || !g->bufs) {
        fprintf(stderr, "http_load: out of memory for receive buffers\n");
        exit(1);
    }
    struct io_uring_buf_reg reg = {.ring_addr = (uint64_t)(uintptr_t)g->br,
                                   .ring_entries = n, .bgid = BUF_GROUP};
    int rc = io_uring_register_buf_ring(&g->ring, &reg, 0);
    if (rc < 0) {
        fprintf(stderr, "http_load: provided buffer ring: %s\n", strerror(-rc));
        exit(1);
    }
    io_uring_buf_ring_init(g->br);
    for (unsigned i = 0; i < n; i++)
        recycle_buffer(g, i);
    io_uring_buf_ring_advance(g->br, (int)g->br_added);
    g->br_added = 0;
}

static void build_requests(loadgen *g)
{
    const config *cfg = &g->cfg;
    char one[MAX_REQUEST + 512];
    int len = snprintf(one, sizeof one, "GET %s HTTP/1.1\r\n%s%s%s", cfg->path,
                       cfg->user_host ? "" : "Host: ",
                       cfg->user_host ? "" : cfg->authority,
                       cfg->user_host ? "" : "\r\n");
    if (len < 0 || (size_t)len + cfg->headers_len + 2 >= sizeof one)
        usage_error("request too long (at most %d bytes)", MAX_REQUEST);
    memcpy(one + len, cfg->headers, cfg->headers_len);
    len += (int)cfg->headers_len;
    memcpy(one + len, "\r\n", 2);
    g->req_len = (size_t)len + 2;
    if (!(g->reqs = malloc(g->req_len * cfg->pipeline))) {
        fprintf(stderr, "http_load: out of memory\n");
        exit(1);
    }
    for (unsigned i = 0; i < cfg->pipeline; i++)
        memcpy(g->reqs + i * g->req_len, one, g->req_len);
}

/* ---- report ------------------------------------------------------------- */

static double percentile_us(const stats *st, double q)
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
            return (double)us;
    }
    return HIST_US - 1;
}

/* As wrk prints times: 612.00us, 1.23ms, 1.05s. */
static const char *fmt_time(double us, char *buf, size_t len)
{
    if (us < 1000)
        snprintf(buf, len, "%.2fus", us);
    else if (us < 1e6)
        snprintf(buf, len, "%.2fms", us / 1e3);
    else
        snprintf(buf, len, "%.2fs", us / 1e6);
    return buf;
}

static void report(const loadgen *g, double elapsed, double self_cpu,
                   double server_cpu)
{
    const config *cfg = &g->cfg;
    const stats *st = &g->st;
    char b1[32], b2[32];
    static const struct { double q; const char *label; } pct[] = {
        {0.50, "50%"}, {0.75, "75%"}, {0.90, "90%"}, {0.99, "99%"},
        {0.999, "99.9%"},
    };
    printf("Running %.0fs test @ %s\n", cfg->duration, cfg->url);
    printf("  io_uring (%s, multishot recv), %d connections, pipeline %u\n",
           g->setup_name, cfg->connections, cfg->pipeline);
    printf("  Latency: mean %s, max %s\n",
           fmt_time(st->requests ? (double)st->sum_ns / (double)st->requests / 1e3 : 0,
                    b1, sizeof b1),
           fmt_time((double)st->max_ns / 1e3, b2, sizeof b2));
    printf("  Latency Distribution\n");
    for (size_t i = 0; i < sizeof pct / sizeof pct[0]; i++)
        printf("  %5s  %s\n", pct[i].label,
               fmt_time(percentile_us(st, pct[i].q), b1, sizeof b1));
    printf("  %" PRIu64 " requests in %.2fs, %.2fMB read\n", st->requests,
           elapsed, (double)st->bytes / 1048576.0);
    printf("  %" PRIu64 " loop turns (%.1f responses each), %" PRIu64
           " receives re-armed for want of buffers\n", st->turns,
           st->turns ? (double)st->requests / (double)st->turns : 0.0, st->rearms);
    printf("Requests/sec: %.2f\n", elapsed > 0 ? (double)st->requests / elapsed : 0);
    printf("requests: %" PRIu64 "\n", st->requests);
    printf("errors: %" PRIu64 " (non-2xx %" PRIu64 ", malformed %" PRIu64
           ", socket %" PRIu64 ")\n",
           st->non2xx + st->malformed + st->socket_errors, st->non2xx,
           st->malformed, st->socket_errors);
    printf("reconnects: %" PRIu64 " (Connection: close %" PRIu64
           ", server EOF %" PRIu64 ", after errors %" PRIu64 ")\n",
           st->reconnects, st->closes, st->eofs, st->failed_closes);
    printf("self_cpu_s: %.2f (%.1f%% of one core)\n", self_cpu,
           elapsed > 0 ? 100 * self_cpu / elapsed : 0);
    if (cfg->cpu_pid)
        printf("server_cpu_s: %.2f (%.1f%% of one core)\n", server_cpu,
               elapsed > 0 ? 100 * server_cpu / elapsed : 0);
}

/* ---- self-test ---------------------------------------------------------- */

/* Canned server output for --self-test: what it must count. */
static const struct {
    const char *name, *text;
    unsigned responses, non2xx, malformed;
    bool eof; /* the server closes after the text */
} self_cases[] = {
    {"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
     "HTTP/1.1 201 Created\r\ncontent-length:0\r\n\r\n", 2, 0, 0, false},
    {"chunked, extension, trailer",
     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n"
     "1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\n", 1, 0, 0, false},
    {"gzip then chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked"
     "\r\n\r\n4\r\n\r\n\r\n\r\n0\r\n\r\n", 1, 0, 0, false},
    {"1xx, 204, 304, 404", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content"
     "\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\nHTTP/1.0 404"
     " Not Found\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx", 3, 2, 0,
     false},
    {"body until close", "HTTP/1.0 200 OK\r\n\r\nall of it", 1, 0, 0, true},
    {"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", 0, 0, 1, false},
    {"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
     0, 0, 1, false},
    {"two lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2"
     "\r\n\r\n", 0, 0, 1, false},
    {"truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", 0, 0, 1,
     true},
};

/* --self-test: feeds each case to the parser whole, split in two at every
 * offset, and one byte at a time, and checks what it counted. No network. */
static int self_test(void)
{
    static loadgen lg;
    static uint64_t stamps[64];
    loadgen *g = &lg;
    conn c = {.fd = -1, .sent_ns = stamps};
    int failed = 0;
    g->cfg.pipeline = 64;
    g->stopping = true; /* parse only: queue nothing, reconnect nothing */
    g->quiet = true;
    if (!(g->st.hist = calloc(HIST_US, sizeof(uint32_t))))
        return 1;
    for (size_t i = 0; i < sizeof self_cases / sizeof self_cases[0]; i++) {
        const char *t = self_cases[i].text;
        size_t len = strlen(t);
        for (size_t split = 0; split <= len + 1; split++) {
            g->st.requests = g->st.non2xx = g->st.malformed = 0;
            c.state = P_HEAD;
            c.head_len = 0;
            c.head = 0;
            c.inflight = 64;
            c.gen = 0;
            if (split > len) { /* one byte at a time */
                for (size_t k = 0; k < len && c.gen == 0; k++)
                    conn_parse(g, &c, t + k, 1);
            } else {
                conn_parse(g, &c, t, split);
                if (c.gen == 0)
                    conn_parse(g, &c, t + split, len - split);
            }
            if (self_cases[i].eof && c.gen == 0)
                conn_eof(g, &c);
            if (g->st.requests != self_cases[i].responses ||
                g->st.non2xx != self_cases[i].non2xx ||
                g->st.malformed != self_cases[i].malformed ||
                (c.gen == 0 && (c.state != P_HEAD || c.head_len))) {
                printf("self-test: %s, split at %zu: %" PRIu64 " responses, %"
                       PRIu64 " non-2xx, %" PRIu64 " malformed\n", self_cases[i].name,
                       split, g->st.requests, g->st.non2xx, g->st.malformed);
                failed++;
                break;
            }
        }
    }
    printf("self-test: %zu cases %s\n", sizeof self_cases / sizeof self_cases[0],
           failed ? "FAILED" : "passed");
    free(c.head_buf);
    free(g->st.hist);
    return failed ? 1 : 0;
}

/* ---- main --------------------------------------------------------------- */

/* How many completions to wait for. A send to a loopback socket completes
 * inside the submit, so those are counted in first; beyond them, waiting
 * for a few responses rather than one means fewer, larger loop turns (a
 * sleep and a wake-up cost more than a response does). The timeout bounds
 * the wait when fewer come. */
static unsigned wait_nr(loadgen *g)
{
    unsigned batch = g->cfg.batch;
    if (batch == 0) {
        /* A quarter of the connections: measured on this machine, 1 costs
         * 1.6x the CPU per response of 25 at -c100, and the other three
         * quarters keep the server busy meanwhile. */
        batch = (unsigned)g->cfg.connections / 4;
        batch = batch < 1 ? 1 : batch > 64 ? 64 : batch;
    }
    unsigned n = g->sends + batch;
    g->sends = 0;
    return n;
}

static uint64_t error_count(const stats *st)
{
    return st->non2xx + st->malformed + st->socket_errors;
}

int main(int argc, char **argv)
{
    static loadgen lg; /* large (the config's header buffer): not on the stack */
    loadgen *g = &lg;
    g->cfg = (config){.connections = 100, .duration = 5, .pipeline = 1,
                      .wait_us = 1000};
    parse_args(argc, argv, &g->cfg);
    const config *cfg = &g->cfg;
    signal(SIGPIPE, SIG_IGN);

    /* Thousands of connections need more descriptors than the usual 1,024. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (cfg->cpu_pid && proc_cpu_seconds(cfg->cpu_pid) < 0) {
        fprintf(stderr, "http_load: --cpu-pid %ld: no such process\n", cfg->cpu_pid);
        return 2;
    }

    build_requests(g);
    set_address(g);
    setup_ring(g);
    setup_buffers(g);
    unsigned nconn = (unsigned)cfg->connections;
    g->st.hist = calloc(HIST_US, sizeof(uint32_t));
    g->conns = calloc(nconn, sizeof *g->conns);
    g->dirty = calloc(nconn, sizeof *g->dirty);
    if (!g->st.hist || !g->conns || !g->dirty) {
        fprintf(stderr, "http_load: out of memory\n");
        return 1;
    }
    for (unsigned i = 0; i < nconn; i++) {
        conn *c = &g->conns[i];
        c->idx = i;
        c->sent_ns = calloc(cfg->pipeline, sizeof(uint64_t));
        c->fd = connect_one(g);
        if (c->fd < 0 || !c->sent_ns) {
            fprintf(stderr, "http_load: connect to %s: %s\n", cfg->authority,
                    c->fd < 0 ? strerror(-c->fd) : "out of memory");
            return 1;
        }
    }

    /* Everything is connected: the measured window starts now. */
    uint64_t start = now_ns();
    uint64_t end = start + (uint64_t)(cfg->duration * 1e9);
    double server_cpu0 = cfg->cpu_pid ? proc_cpu_seconds(cfg->cpu_pid) : 0;
    double self_cpu0 = self_cpu_seconds();
    g->now = start;
    g->deadline.tv_sec = (long long)cfg->duration;
    g->deadline.tv_nsec = (long long)((cfg->duration - (double)g->deadline.tv_sec) * 1e9);
    struct io_uring_sqe *sqe = get_sqe(g);
    if (sqe) {
        io_uring_prep_timeout(sqe, &g->deadline, 0, 0);
        io_uring_sqe_set_data64(sqe, OP_DEADLINE);
    }
    for (unsigned i = 0; i < nconn; i++)
        conn_start(g, &g->conns[i]);

    struct io_uring_cqe *cqe;
    struct __kernel_timespec wait_ts = {.tv_sec = cfg->wait_us / 1000000,
                                        .tv_nsec = cfg->wait_us % 1000000 * 1000};
    while (!g->stopping) {
        for (unsigned i = 0; i < g->ndirty; i++) {
            conn *c = g->dirty[i];
            c->dirty = false;
            if (c->fd >= 0 && c->out_bytes && !c->send_busy)
                conn_send(g, c);
        }
        g->ndirty = 0;
        int rc = io_uring_submit_and_wait_timeout(&g->ring, &cqe, wait_nr(g), &wait_ts, NULL);
        if (rc == -ETIME)
            rc = 0;
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
            snprintf(g->fatal, sizeof g->fatal, "io_uring_enter: %s", strerror(-rc));
            break;
        }
        g->now = now_ns();
        g->st.turns++;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&g->ring, head, cqe) {
            on_cqe(g, cqe);
            seen++;
        }
        io_uring_cq_advance(&g->ring, seen);
        if (g->br_added) {
            io_uring_buf_ring_advance(g->br, (int)g->br_added);
            g->br_added = 0;
        }
        if (g->now >= end)
            g->stopping = true;
        uint64_t errors = error_count(&g->st);
        if (errors >= 100 && errors * 100 > g->st.requests + g->st.malformed +
                                                 g->st.socket_errors) {
            snprintf(g->fatal, sizeof g->fatal,
                     "over 1%% errors (%" PRIu64 " of %" PRIu64 " responses)",
                     errors, g->st.requests + g->st.malformed + g->st.socket_errors);
            g->stopping = true;
        }
    }
    double elapsed = (double)(now_ns() - start) / 1e9;
    double self_cpu = self_cpu_seconds() - self_cpu0;
    double server_cpu = cfg->cpu_pid ? proc_cpu_seconds(cfg->cpu_pid) - server_cpu0 : 0;

    report(g, elapsed, self_cpu, server_cpu);

    int status = 0;
    uint64_t errors = error_count(&g->st);
    uint64_t answered = g->st.requests + g->st.malformed + g->st.socket_errors;
    if (g->fatal[0]) {
        fprintf(stderr, "http_load: stopped: %s\n", g->fatal);
        status = 1;
    } else if (errors * 100 > answered) {
        fprintf(stderr, "http_load: failed: %" PRIu64 " errors in %" PRIu64
                        " responses (over 1%%)\n", errors, answered);
        status = 1;
    } else if (g->st.requests == 0) {
        fprintf(stderr, "http_load: failed: no response in %.2fs\n", elapsed);
        status = 1;
    }

    /* Tearing down the ring cancels what is outstanding; then nothing the
     * kernel holds points into our buffers any more. */
    io_uring_queue_exit(&g->ring);
    for (unsigned i = 0; i < nconn; i++) {
        conn *c = &g->conns[i];
        if (c->fd >= 0)
            close(c->fd);
        free(c->sent_ns);
        free(c->head_buf);
    }
    munmap(g->br, g->br_size);
    free(g->bufs);
    free(g->conns);
    free(g->dirty);
    free(g->st.hist);
    free(g->reqs);
    return status;
}
