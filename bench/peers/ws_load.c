/* ws_load: WebSocket load generator for bench/ws_compare.sh.
 *
 * Opens N WebSocket connections to ws://127.0.0.1:PORT/ws (the RFC 6455
 * handshake, optionally offering permessage-deflate), then runs one of:
 *
 *   --mode=echo       each connection keeps --pipeline masked text messages
 *                     of --size bytes in flight, checks every echoed byte and
 *                     records the latency of each; bounded by --duration and
 *                     --max-messages.
 *   --mode=broadcast  --rounds times: connection 0 sends one text message of
 *                     --size bytes starting with "broadcast:", which the
 *                     server (started with its broadcast switch) must send to
 *                     every open connection; the time from the send until the
 *                     last of the N connections has the whole message.
 *   --mode=idle       the server's resident memory (VmRSS of --server-pid)
 *                     before the connections and after they are all open and
 *                     have sat idle for --settle seconds; the growth per
 *                     connection. With --warm, each connection first sends
 *                     one 32-byte text message (compressed, if
 *                     permessage-deflate was negotiated, so that the server
 *                     has used both its inflater and its deflater) and
 *                     waits for the echo: a socket that has talked and now
 *                     idles, as in a chat.
 *
 * Plain epoll and nothing from Gust or any WebSocket library, so that a bug
 * in either cannot hide in the instrument. Frames from the client are masked
 * (RFC 6455 5.3) with one random key per connection: the servers cannot tell
 * the difference, and the generator spends its core on system calls rather
 * than on masking. zlib (for --warm's compressed message) is the only
 * library. Only 127.0.0.1 is ever contacted.
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
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "cpu_time.h"

/* Latency histogram: 1 µs buckets up to about 1 s, as in echo_load. */
#define HIST_US (1u << 20)
/* The RFC 6455 section 1.3 example: every connection sends this key, so
 * the expected Sec-WebSocket-Accept is a constant. */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define BROADCAST_MARKER "broadcast:"

enum { MAX_CONNECTIONS = 60000, MAX_PIPELINE = 1024, MAX_SIZE = 65535,
       MAX_HANDSHAKING = 128, HS_BUF = 2048 };
enum { MODE_ECHO, MODE_BROADCAST, MODE_IDLE };
enum { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_DEAD };

typedef struct conn {
    int fd;
    int state;
    int want_out;
    int deflate;           /* the server accepted permessage-deflate */
    char *hs;              /* handshake response so far (HS_BUF bytes) */
    size_t hs_len, req_off;
    /* frame parser */
    uint8_t hdr[14];
    unsigned hdr_len, hdr_need;
    uint64_t left;         /* payload bytes of the current frame to come */
    uint64_t msg_off;      /* payload bytes of the current message so far */
    uint8_t opcode;        /* of the current frame */
    int fin, compressed, in_payload;
    /* echo */
    uint64_t *sent_ns;
    unsigned head, count;
    size_t out_pending, out_offset;
    uint8_t *frame;        /* this connection's masked message frame */
} conn;

typedef struct config {
    int port, mode, connections, deflate, rounds, warm;
    unsigned pipeline;
    size_t size;
    double duration, settle;
    uint64_t max_messages;
    long server_pid;
} config;

static config cfg = {.mode = MODE_ECHO, .connections = 100, .size = 32,
                     .pipeline = 1, .duration = 5, .settle = 2, .rounds = 5,
                     .max_messages = 100000000};
static int epfd;
static conn *conns;
static uint8_t *g_payload; /* what every message carries (echo) */
static size_t frame_len;   /* header + mask + payload */
static char req[512];
static size_t req_len;
static uint64_t errors, messages, sum_ns, max_ns;
static uint32_t *hist;
static int handshaking, open_count;
static int bcast_received; /* connections that have this round's message */
static int warm_replies;   /* idle --warm: echoes received */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void usage(FILE *out)
{
    fprintf(out,
        "usage: ws_load --port=P [--mode=echo|broadcast|idle] [--connections=100]\n"
        "               [--size=32] [--pipeline=1] [--duration=5] [--max-messages=N]\n"
        "               [--rounds=5] [--settle=2] [--deflate] [--warm]\n"
        "               [--server-pid=PID]\n"
        "Prints one line of key=value pairs:\n"
        "  echo:      messages seconds rps mean_us p50_us p99_us max_us errors\n"
        "             client_cpu_s [server_cpu_s msgs_per_server_cpu_s]\n"
        "  broadcast: clients rounds median_ms min_ms max_ms delivered_per_s\n"
        "             errors [server_cpu_s_per_round]\n"
        "  idle:      connections deflate rss_before_kb rss_after_kb bytes_per_conn\n"
        "--deflate offers permessage-deflate in the handshake; --warm (idle)\n"
        "exchanges one message on each connection before measuring.\n");
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

static int parse_args(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"mode", required_argument, NULL, 'M'},
        {"connections", required_argument, NULL, 'c'},
        {"size", required_argument, NULL, 's'},
        {"pipeline", required_argument, NULL, 'l'},
        {"duration", required_argument, NULL, 'd'},
        {"max-messages", required_argument, NULL, 'm'},
        {"rounds", required_argument, NULL, 'r'},
        {"settle", required_argument, NULL, 'S'},
        {"deflate", no_argument, NULL, 'D'},
        {"warm", no_argument, NULL, 'W'},
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
            if (parse_long(optarg, 1, 65535, &v)) return -1;
            cfg.port = (int)v;
            break;
        case 'M':
            if (!strcmp(optarg, "echo")) cfg.mode = MODE_ECHO;
            else if (!strcmp(optarg, "broadcast")) cfg.mode = MODE_BROADCAST;
            else if (!strcmp(optarg, "idle")) cfg.mode = MODE_IDLE;
            else return -1;
            break;
        case 'c':
            if (parse_long(optarg, 1, MAX_CONNECTIONS, &v)) return -1;
            cfg.connections = (int)v;
            break;
        case 's':
            if (parse_long(optarg, 16, MAX_SIZE, &v)) return -1;
            cfg.size = (size_t)v;
            break;
        case 'l':
            if (parse_long(optarg, 1, MAX_PIPELINE, &v)) return -1;
            cfg.pipeline = (unsigned)v;
            break;
        case 'd':
            cfg.duration = strtod(optarg, &end);
            if (*end || !(cfg.duration > 0 && cfg.duration <= 600)) return -1;
            break;
        case 'S':
            cfg.settle = strtod(optarg, &end);
            if (*end || !(cfg.settle >= 0 && cfg.settle <= 60)) return -1;
            break;
        case 'm':
            if (parse_long(optarg, 1, 1000000000000L, &v)) return -1;
            cfg.max_messages = (uint64_t)v;
            break;
        case 'r':
            if (parse_long(optarg, 1, 1000, &v)) return -1;
            cfg.rounds = (int)v;
            break;
        case 'D':
            cfg.deflate = 1;
            break;
        case 'W':
            cfg.warm = 1;
            break;
        case 'P':
            if (parse_long(optarg, 1, 1L << 30, &v)) return -1;
            cfg.server_pid = v;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    return (optind == argc && cfg.port) ? 0 : -1;
}

static long rss_kb(long pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static void conn_kill(conn *c, const char *why)
{
    if (c->state == ST_DEAD)
        return;
    if (errors < 5)
        fprintf(stderr, "ws_load: connection %td: %s\n", c - conns, why);
    else if (errors == 5)
        fprintf(stderr, "ws_load: further errors only counted\n");
    errors++;
    if (c->state == ST_OPEN)
        open_count--;
    if (c->state == ST_CONNECTING || c->state == ST_HANDSHAKE)
        handshaking--;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->state = ST_DEAD;
}

static void set_events(conn *c, int want_out)
{
    if (c->want_out == want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0u),
                             .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = want_out;
}

/* Builds a masked text frame of payload into out; returns its length. */
static size_t build_frame(uint8_t *out, const uint8_t *payload, size_t len)
{
    size_t h = 0;
    uint8_t mask[4];
    if (getrandom(mask, sizeof mask, 0) != (ssize_t)sizeof mask)
        memset(mask, 0x5a, sizeof mask);
    out[h++] = 0x81; /* FIN, text */
    if (len < 126) {
        out[h++] = (uint8_t)(0x80 | len);
    } else {
        out[h++] = 0x80 | 126;
        out[h++] = (uint8_t)(len >> 8);
        out[h++] = (uint8_t)len;
    }
    memcpy(out + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < len; i++)
        out[h + i] = payload[i] ^ mask[i & 3];
    return h + len;
}

static void start_connect(conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        perror("ws_load: socket");
        exit(1);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)cfg.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    c->state = ST_CONNECTING;
    c->hs = malloc(HS_BUF);
    handshaking++;
    if (!c->hs) {
        fprintf(stderr, "ws_load: out of memory\n");
        exit(1);
    }
    struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = c};
    c->want_out = 1;
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 &&
        errno != EINPROGRESS) {
        conn_kill(c, strerror(errno));
        return;
    }
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void on_message(conn *c, uint64_t t);

/* Feeds received frame bytes to the parser. */
static void feed(conn *c, const uint8_t *p, size_t n, uint64_t t)
{
    while (n && c->state == ST_OPEN) {
        if (!c->in_payload) {
            if (c->hdr_len < 2) {
                c->hdr[c->hdr_len++] = *p++;
                n--;
                if (c->hdr_len < 2)
                    continue;
                uint8_t l7 = c->hdr[1] & 0x7f;
                if (c->hdr[1] & 0x80) {
                    conn_kill(c, "masked frame from the server");
                    return;
                }
                c->hdr_need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
            }
            while (n && c->hdr_len < c->hdr_need && c->hdr_len < sizeof c->hdr) {
                c->hdr[c->hdr_len++] = *p++;
                n--;
            }
            if (c->hdr_len < c->hdr_need)
                return;
            uint8_t l7 = c->hdr[1] & 0x7f;
            uint64_t len = l7;
            if (l7 == 126)
                len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
            else if (l7 == 127)
                for (int i = 0; i < 8; i++)
                    len = len << 8 | c->hdr[2 + i];
            uint8_t op = c->hdr[0] & 0x0f;
            c->fin = c->hdr[0] >> 7;
            if (op == 8) {
                conn_kill(c, "closed by the server (close frame)");
                return;
            }
            if (op < 8) { /* data: text, binary or continuation */
                if (op != 0) {
                    c->msg_off = 0;
                    c->compressed = (c->hdr[0] & 0x40) != 0;
                }
                c->opcode = op;
            } else {
                c->opcode = op; /* ping or pong: skipped (no reply) */
            }
            c->left = len;
            c->in_payload = 1;
            c->hdr_len = 0;
        }
        size_t chunk = c->left < n ? (size_t)c->left : n;
        if (c->opcode < 8 && !c->compressed && cfg.mode == MODE_ECHO) {
            /* An echo server must return exactly what it got. */
            if (c->msg_off + chunk > cfg.size ||
                memcmp(p, g_payload + c->msg_off, chunk) != 0) {
                conn_kill(c, "echo differs from the message sent");
                return;
            }
        } else if (c->opcode < 8 && cfg.mode == MODE_BROADCAST) {
            if (c->msg_off + chunk > cfg.size ||
                memcmp(p, g_payload + c->msg_off, chunk) != 0) {
                conn_kill(c, "broadcast differs from the message sent");
                return;
            }
        }
        if (c->opcode < 8)
            c->msg_off += chunk;
        c->left -= chunk;
        p += chunk;
        n -= chunk;
        if (c->left == 0) {
            c->in_payload = 0;
            if (c->opcode < 8 && c->fin) {
                if (c->msg_off != cfg.size && !c->compressed) {
                    conn_kill(c, "message of the wrong length");
                    return;
                }
                on_message(c, t);
            }
        }
    }
}

static void flush(conn *c)
{
    while (c->out_pending) {
        uint8_t stage[16 * 1024];
        size_t len = c->out_pending < sizeof stage ? c->out_pending : sizeof stage;
        size_t off = c->out_offset, filled = 0;
        while (filled < len) {
            size_t chunk = frame_len - off;
            if (chunk > len - filled)
                chunk = len - filled;
            memcpy(stage + filled, c->frame + off, chunk);
            filled += chunk;
            off = (off + chunk) % frame_len;
        }
        ssize_t n = send(c->fd, stage, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) {
                set_events(c, 1);
                return;
            }
            if (errno == EINTR)
                continue;
            conn_kill(c, strerror(errno));
            return;
        }
        c->out_pending -= (size_t)n;
        c->out_offset = (c->out_offset + (size_t)n) % frame_len;
    }
    set_events(c, 0);
}

static void queue_msg(conn *c, uint64_t t)
{
    unsigned slot = (c->head + c->count) % cfg.pipeline;
    c->sent_ns[slot] = t;
    c->count++;
    c->out_pending += frame_len;
}

static int sending = 1;

static void on_message(conn *c, uint64_t t)
{
    if (cfg.mode == MODE_ECHO) {
        if (c->count == 0) {
            conn_kill(c, "a message nobody sent");
            return;
        }
        uint64_t ns = t - c->sent_ns[c->head];
        messages++;
        sum_ns += ns;
        if (ns > max_ns)
            max_ns = ns;
        uint64_t us = ns / 1000;
        hist[us < HIST_US ? us : HIST_US - 1]++;
        c->head = (c->head + 1) % cfg.pipeline;
        c->count--;
        if (sending && messages < cfg.max_messages)
            queue_msg(c, t);
    } else if (cfg.mode == MODE_BROADCAST) {
        bcast_received++;
    } else if (cfg.warm && c->count == 1) {
        c->count = 0;
        warm_replies++;
    } else {
        conn_kill(c, "a message on an idle connection");
    }
}

/* The handshake response: status 101, the expected accept value, and
 * whether permessage-deflate was accepted. Bytes after the head are frames. */
static void handshake_read(conn *c, uint64_t t)
{
    for (;;) {
        ssize_t n = recv(c->fd, c->hs + c->hs_len, HS_BUF - 1 - c->hs_len, 0);
        if (n == 0) {
            conn_kill(c, "closed during the handshake");
            return;
        }
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR)
                conn_kill(c, strerror(errno));
            return;
        }
        c->hs_len += (size_t)n;
        c->hs[c->hs_len] = '\0';
        char *end = strstr(c->hs, "\r\n\r\n");
        if (!end) {
            if (c->hs_len >= HS_BUF - 1)
                conn_kill(c, "handshake response too long");
            continue;
        }
        size_t head = (size_t)(end + 4 - c->hs);
        *end = '\0';
        for (char *s = c->hs; *s; s++)
            if (*s >= 'A' && *s <= 'Z')
                *s = (char)(*s - 'A' + 'a');
        if (strncmp(c->hs, "http/1.1 101", 12) != 0) {
            char line[80];
            snprintf(line, sizeof line, "handshake refused: %.60s", c->hs);
            conn_kill(c, line);
            return;
        }
        /* The accept value is base64 and case-sensitive: compare the lowered
         * copy against the lowered constant. */
        if (!strstr(c->hs, "sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=") &&
            !strstr(c->hs, "sec-websocket-accept:s3pplmbitxaq9kygzzhzrbk+xoo=")) {
            conn_kill(c, "wrong or missing Sec-WebSocket-Accept");
            return;
        }
        c->deflate = strstr(c->hs, "permessage-deflate") != NULL;
        size_t rest = c->hs_len - head;
        uint8_t extra[HS_BUF];
        memcpy(extra, c->hs + head, rest);
        free(c->hs);
        c->hs = NULL;
        c->state = ST_OPEN;
        handshaking--;
        open_count++;
        set_events(c, 0);
        if (rest)
            feed(c, extra, rest, t);
        return;
    }
}

static void handshake_write(conn *c)
{
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            conn_kill(c, strerror(err));
            return;
        }
        c->state = ST_HANDSHAKE;
    }
    while (c->req_off < req_len) {
        ssize_t n = send(c->fd, req + c->req_off, req_len - c->req_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN)
                return;
            conn_kill(c, strerror(errno));
            return;
        }
        c->req_off += (size_t)n;
    }
    set_events(c, 0);
}

static void on_event(conn *c, uint32_t events, uint64_t t)
{
    if (c->state == ST_DEAD)
        return;
    if (c->state != ST_OPEN) {
        if (events & EPOLLOUT)
            handshake_write(c);
        if (c->state == ST_HANDSHAKE && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
            handshake_read(c, t);
        else if (c->state == ST_CONNECTING && (events & (EPOLLERR | EPOLLHUP)))
            handshake_write(c); /* reports the connect error */
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        uint8_t buf[64 * 1024];
        for (;;) {
            ssize_t n = recv(c->fd, buf, sizeof buf, 0);
            if (n == 0) {
                conn_kill(c, "closed by the server");
                return;
            }
            if (n < 0) {
                if (errno != EAGAIN && errno != EINTR)
                    conn_kill(c, strerror(errno));
                break;
            }
            feed(c, buf, (size_t)n, t);
            if (c->state != ST_OPEN || (size_t)n < sizeof buf)
                break;
        }
    }
    if (c->state == ST_OPEN && c->out_pending)
        flush(c);
}

/* One epoll_wait and its events; returns the time after it. */
static uint64_t poll_once(int timeout_ms)
{
    struct epoll_event evs[512];
    int n = epoll_wait(epfd, evs, 512, timeout_ms);
    uint64_t t = now_ns();
    for (int i = 0; i < n; i++)
        on_event(evs[i].data.ptr, evs[i].events, t);
    return t;
}

/* Opens every connection, at most MAX_HANDSHAKING handshakes at a time so
 * that a server's listen backlog is not overrun; at most 120 s. */
static int open_all(void)
{
    int next = 0;
    uint64_t deadline = now_ns() + 120000000000ull;
    while (open_count + (int)errors < cfg.connections) {
        while (next < cfg.connections && handshaking < MAX_HANDSHAKING)
            start_connect(&conns[next++]);
        if (now_ns() > deadline) {
            fprintf(stderr, "ws_load: %d of %d connections open after 120 s\n",
                    open_count, cfg.connections);
            return -1;
        }
        poll_once(100);
    }
    return errors ? -1 : 0;
}

static uint64_t percentile_us(double q)
{
    if (!messages)
        return 0;
    uint64_t rank = (uint64_t)((double)messages * q), seen = 0;
    if (rank >= messages)
        rank = messages - 1;
    for (uint64_t us = 0; us < HIST_US; us++) {
        seen += hist[us];
        if (seen > rank)
            return us;
    }
    return HIST_US - 1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int run_echo(void)
{
    uint64_t start = now_ns(), end = start + (uint64_t)(cfg.duration * 1e9);
    double server0 = cfg.server_pid ? proc_cpu_seconds(cfg.server_pid) : 0;
    double client0 = self_cpu_seconds();
    for (int i = 0; i < cfg.connections; i++) {
        for (unsigned k = 0; k < cfg.pipeline; k++)
            queue_msg(&conns[i], start);
        flush(&conns[i]);
    }
    uint64_t t = start;
    while (t < end && messages < cfg.max_messages && open_count > 0)
        t = poll_once((int)((end - t) / 1000000) + 1);
    double elapsed = (double)(now_ns() - start) / 1e9;
    double server = cfg.server_pid ? proc_cpu_seconds(cfg.server_pid) - server0 : 0;
    double client = self_cpu_seconds() - client0;
    printf("messages=%" PRIu64 " seconds=%.3f rps=%.0f mean_us=%.1f p50_us=%" PRIu64
           " p99_us=%" PRIu64 " max_us=%.0f errors=%" PRIu64 " client_cpu_s=%.2f",
           messages, elapsed, (double)messages / elapsed,
           messages ? (double)sum_ns / (double)messages / 1e3 : 0.0,
           percentile_us(0.50), percentile_us(0.99), (double)max_ns / 1e3,
           errors, client);
    if (cfg.server_pid)
        printf(" server_cpu_s=%.2f msgs_per_server_cpu_s=%.0f", server,
               server > 0 ? (double)messages / server : 0.0);
    printf("\n");
    return errors ? 1 : 0;
}

static int run_broadcast(void)
{
    uint64_t *times = calloc((size_t)cfg.rounds, sizeof *times);
    double server0 = cfg.server_pid ? proc_cpu_seconds(cfg.server_pid) : 0;
    int done = 0;
    for (int r = 0; r < cfg.rounds && !errors; r++) {
        /* A new payload per round, so a late copy of the last one fails. */
        int k = snprintf((char *)g_payload, cfg.size, BROADCAST_MARKER "%06d:", r);
        for (size_t i = (size_t)k; i < cfg.size; i++)
            g_payload[i] = (uint8_t)('a' + (i + (size_t)r) % 26);
        conn *s = &conns[0];
        frame_len = build_frame(s->frame, g_payload, cfg.size);
        bcast_received = 0;
        uint64_t t0 = now_ns(), deadline = t0 + 30000000000ull, t = t0;
        s->out_pending = frame_len;
        s->out_offset = 0;
        flush(s);
        uint64_t last = t0;
        while (bcast_received < cfg.connections && !errors && t < deadline) {
            int before = bcast_received;
            t = poll_once(100);
            if (bcast_received > before)
                last = t;
        }
        if (bcast_received < cfg.connections) {
            fprintf(stderr, "ws_load: round %d: %d of %d clients got the message\n",
                    r, bcast_received, cfg.connections);
            errors++;
            break;
        }
        times[done++] = last - t0;
        /* Let the server settle between rounds (bounded: 200 ms). */
        uint64_t quiet = now_ns() + 200000000ull;
        while (now_ns() < quiet)
            poll_once(20);
    }
    double server = cfg.server_pid ? proc_cpu_seconds(cfg.server_pid) - server0 : 0;
    if (done) {
        qsort(times, (size_t)done, sizeof *times, cmp_u64);
        double med = (double)times[done / 2] / 1e6;
        printf("clients=%d rounds=%d median_ms=%.2f min_ms=%.2f max_ms=%.2f"
               " delivered_per_s=%.0f errors=%" PRIu64,
               cfg.connections, done, med, (double)times[0] / 1e6,
               (double)times[done - 1] / 1e6,
               med > 0 ? cfg.connections / (med / 1e3) : 0.0, errors);
        if (cfg.server_pid)
            printf(" server_cpu_s_per_round=%.4f", server / done);
        printf("\n");
    }
    free(times);
    return errors || !done ? 1 : 0;
}

/* The --warm message as a masked frame: plain, or compressed with raw
 * deflate (RFC 7692 7.2.1: the flush's trailing 00 00 ff ff removed, RSV1
 * set). Returns its length, 0 on a zlib failure. */
static size_t warm_frame(uint8_t *out, size_t cap, int compressed)
{
    static const char text[] = "idle:abcdefghijklmnopqrstuvwxyz0";
    uint8_t payload[128];
    size_t len = sizeof text - 1;
    if (!compressed)
        return build_frame(out, (const uint8_t *)text, len);
    z_stream z = {0};
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return 0;
    z.next_in = (Bytef *)text;
    z.avail_in = (uInt)len;
    z.next_out = payload;
    z.avail_out = sizeof payload;
    int rc = deflate(&z, Z_SYNC_FLUSH);
    size_t n = sizeof payload - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_OK || n < 4 || n + 14 > cap)
        return 0;
    size_t f = build_frame(out, payload, n - 4);
    out[0] |= 0x40; /* RSV1: compressed */
    return f;
}

/* --warm: one message on each connection, and its echo, at most 60 s. */
static int warm_all(void)
{
    uint8_t plain[64], packed[160];
    size_t plain_len = warm_frame(plain, sizeof plain, 0);
    size_t packed_len = warm_frame(packed, sizeof packed, 1);
    if (!packed_len) {
        fprintf(stderr, "ws_load: zlib failed\n");
        return -1;
    }
    for (int i = 0; i < cfg.connections; i++) {
        conn *c = &conns[i];
        const uint8_t *f = c->deflate ? packed : plain;
        size_t len = c->deflate ? packed_len : plain_len;
        /* A few dozen bytes on a fresh socket: the kernel takes them whole. */
        if (send(c->fd, f, len, MSG_NOSIGNAL) != (ssize_t)len) {
            conn_kill(c, "could not send the warm-up message");
            return -1;
        }
        c->count = 1;
    }
    uint64_t deadline = now_ns() + 60000000000ull;
    while (warm_replies < cfg.connections && !errors && now_ns() < deadline)
        poll_once(100);
    return warm_replies == cfg.connections ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) < 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (cfg.mode == MODE_IDLE && !cfg.server_pid) {
        fprintf(stderr, "ws_load: --mode=idle needs --server-pid\n");
        return 2;
    }
    req_len = (size_t)snprintf(req, sizeof req,
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
        "Sec-WebSocket-Version: 13\r\n%s\r\n", cfg.port,
        cfg.deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                      "client_max_window_bits\r\n" : "");
    epfd = epoll_create1(EPOLL_CLOEXEC);
    conns = calloc((size_t)cfg.connections, sizeof *conns);
    g_payload = malloc(cfg.size);
    hist = calloc(HIST_US, sizeof *hist);
    if (epfd < 0 || !conns || !g_payload || !hist) {
        fprintf(stderr, "ws_load: out of memory\n");
        return 1;
    }
    /* Printable text (valid UTF-8), not all alike, so that a server that
     * shuffles bytes is caught. */
    for (size_t i = 0; i < cfg.size; i++)
        g_payload[i] = (uint8_t)('a' + i % 26);
    if (cfg.mode == MODE_ECHO)
        memcpy(g_payload, "echo:", 5); /* never the broadcast marker */
    for (int i = 0; i < cfg.connections; i++) {
        conns[i].fd = -1;
        if (cfg.mode == MODE_ECHO || (cfg.mode == MODE_BROADCAST && i == 0)) {
            conns[i].frame = malloc(cfg.size + 8);
            conns[i].sent_ns = calloc(cfg.pipeline, sizeof(uint64_t));
            if (!conns[i].frame || !conns[i].sent_ns) {
                fprintf(stderr, "ws_load: out of memory\n");
                return 1;
            }
            frame_len = build_frame(conns[i].frame, g_payload, cfg.size);
        }
    }

    long rss0 = cfg.server_pid ? rss_kb(cfg.server_pid) : -1;
    if (open_all() < 0) {
        fprintf(stderr, "ws_load: could not open %d connections (%" PRIu64
                " failed)\n", cfg.connections, errors);
        return 1;
    }
    int status;
    if (cfg.mode == MODE_ECHO) {
        status = run_echo();
    } else if (cfg.mode == MODE_BROADCAST) {
        status = run_broadcast();
    } else {
        if (cfg.warm && warm_all() < 0) {
            fprintf(stderr, "ws_load: %d of %d warm-up echoes\n", warm_replies,
                    cfg.connections);
            return 1;
        }
        uint64_t end = now_ns() + (uint64_t)(cfg.settle * 1e9);
        while (now_ns() < end && !errors)
            poll_once(50);
        long rss1 = rss_kb(cfg.server_pid);
        int deflated = 0;
        for (int i = 0; i < cfg.connections; i++)
            deflated += conns[i].deflate;
        printf("connections=%d deflate=%d warm=%d rss_before_kb=%ld rss_after_kb=%ld"
               " bytes_per_conn=%.0f errors=%" PRIu64 "\n",
               open_count, deflated, warm_replies, rss0, rss1,
               (double)(rss1 - rss0) * 1024.0 / cfg.connections, errors);
        status = errors ? 1 : 0;
    }
    for (int i = 0; i < cfg.connections; i++) {
        if (conns[i].fd >= 0)
            close(conns[i].fd);
        free(conns[i].hs);
        free(conns[i].frame);
        free(conns[i].sent_ns);
    }
    close(epfd);
    free(conns);
    free(g_payload);
    free(hist);
    return status;
}
