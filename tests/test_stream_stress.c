/* Stream tests that mix operations: random reads checked against a known
 * byte stream, TCP round trips, hang-ups while idle, streaming past
 * max_buffer_size. Every test runs with the default backend and with poll. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "gust/loop.h"
#include "gust/stream.h"
#include "stream_internal.h"
#include "gust_test.h"

/* A small deterministic generator, so failures reproduce. */
static uint64_t rng_state;
/* The random-reads writer draws from its own sequence: its ticks interleave
 * with the reads as timing decides, and sharing one sequence made the
 * reads (and whether any of them is unsatisfiable) differ from run to run. */
static uint64_t writer_rng_state;

static uint32_t rnd_from(uint64_t *state, uint32_t n)
{
    *state = *state * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(*state >> 33) % n;
}

static uint32_t rnd(uint32_t n)
{
    return rnd_from(&rng_state, n);
}

/* ---- Random reads against a known stream ---------------------------------- */

#define RAND_TOTAL ((size_t)1 << 20)

typedef struct fuzz {
    gust_loop *loop;
    gust_stream *s;
    char *data;       /* the whole stream the peer sends */
    size_t sent, got; /* bytes written by the peer, bytes consumed by reads */
    int wfd;
    gust_timer timer;
    /* the pending read and what it must produce */
    int op;
    size_t want;      /* exact result length, or the bound for PARTIAL */
    bool unsat;       /* expect GUST_EUNSATISFIABLE */
    size_t chunked;   /* bytes seen in streamed chunks of this read */
    int reads, unsats, closes, done;
    bool failed;
} fuzz;

enum { OP_BYTES, OP_PARTIAL, OP_STREAM, OP_LINE, OP_HEAD, OP_REGEX, OP_LINE_MAX, OP_COUNT };

static void fuzz_next(fuzz *f);

static void fuzz_check(fuzz *f, bool ok, const char *what)
{
    if (!ok && !f->failed) {
        f->failed = true;
        print_error("random reads: %s (op %d, got %zu, want %zu)\n", what,
                    f->op, f->got, f->want);
    }
}

static void fuzz_read_cb(gust_stream *s, int status, const char *data,
                         size_t len, void *user)
{
    (void)s;
    fuzz *f = user;
    if (f->op == -1) { /* read_until_close at the end */
        fuzz_check(f, status == 0 && len == 0, "final read_until_close");
        f->done = 1;
        return;
    }
    if (f->unsat) {
        fuzz_check(f, status == GUST_EUNSATISFIABLE, "expected unsatisfiable");
        f->unsats++;
        fuzz_next(f);
        return;
    }
    fuzz_check(f, status == 0 || status == GUST_STREAM_CHUNK, "bad status");
    fuzz_check(f, f->got + len <= RAND_TOTAL, "beyond the end");
    if (f->failed)
        return;
    fuzz_check(f, memcmp(data, f->data + f->got, len) == 0, "wrong bytes");
    f->got += len;
    if (status == GUST_STREAM_CHUNK) {
        f->chunked += len;
        return;
    }
    size_t total = f->chunked + len;
    if (f->op == OP_PARTIAL)
        fuzz_check(f, total >= 1 && total <= f->want, "partial length");
    else
        fuzz_check(f, total == f->want, "length");
    f->reads++;
    fuzz_next(f);
}

/* Distance to the end of the first match of delim at or after got, or 0. */
static size_t until_len(const fuzz *f, const char *delim)
{
    size_t dl = strlen(delim);
    const char *p = memmem(f->data + f->got, RAND_TOTAL - f->got, delim, dl);
    return p ? (size_t)(p - (f->data + f->got)) + dl : 0;
}

static size_t regex_len(const fuzz *f)
{
    /* "[0-9]{3}": the first run of three digits. */
    const char *d = f->data + f->got;
    size_t left = RAND_TOTAL - f->got;
    for (size_t i = 0; i + 3 <= left; i++)
        if (d[i] >= '0' && d[i] <= '9' && d[i + 1] >= '0' && d[i + 1] <= '9' &&
            d[i + 2] >= '0' && d[i + 2] <= '9')
            return i + 3;
    return 0;
}

static void fuzz_next(fuzz *f)
{
    if (f->failed)
        return;
    size_t left = RAND_TOTAL - f->got;
    f->chunked = 0;
    f->unsat = false;
    int rc;
    if (left == 0) {
        f->op = -1;
        rc = gust_stream_read_until_close(f->s, rnd(2) ? GUST_READ_STREAMING : 0,
                                          fuzz_read_cb, f);
        fuzz_check(f, rc == 0, "read_until_close refused");
        return;
    }
    for (;;) {
        f->op = (int)rnd(OP_COUNT);
        size_t n = 1 + rnd(rnd(4) ? 300 : 20000);
        if (n > left)
            n = left;
        switch (f->op) {
        case OP_BYTES:
            f->want = n;
            rc = gust_stream_read_bytes(f->s, n, 0, fuzz_read_cb, f);
            break;
        case OP_PARTIAL:
            f->want = n;
            rc = gust_stream_read_bytes(f->s, n, GUST_READ_PARTIAL, fuzz_read_cb, f);
            break;
        case OP_STREAM:
            f->want = n;
            rc = gust_stream_read_bytes(f->s, n, GUST_READ_STREAMING, fuzz_read_cb, f);
            break;
        case OP_LINE:
            if (!(f->want = until_len(f, "\n")))
                continue;
            rc = gust_stream_read_until(f->s, "\n", 1, 0, fuzz_read_cb, f);
            break;
        case OP_HEAD:
            if (!(f->want = until_len(f, "\r\n\r\n")))
                continue;
            rc = gust_stream_read_until(f->s, "\r\n\r\n", 4, 0, fuzz_read_cb, f);
            break;
        case OP_REGEX:
            if (!(f->want = regex_len(f)))
                continue;
            rc = gust_stream_read_until_regex(f->s, "[0-9]{3}", 0, fuzz_read_cb, f);
            break;
        default: /* OP_LINE_MAX */
            if (!(f->want = until_len(f, "\n")))
                continue;
            f->unsat = f->want > n;
            rc = gust_stream_read_until(f->s, "\n", 1, n, fuzz_read_cb, f);
            break;
        }
        fuzz_check(f, rc == 0, "read refused");
        return;
    }
}

static void fuzz_write_tick(gust_timer *t, void *data)
{
    fuzz *f = data;
    size_t n = rnd_from(&writer_rng_state, 3) ? 1 + rnd_from(&writer_rng_state, 64)
                                              : 1 + rnd_from(&writer_rng_state, 40000);
    if (n > RAND_TOTAL - f->sent)
        n = RAND_TOTAL - f->sent;
    ssize_t w = write(f->wfd, f->data + f->sent, n);
    if (w > 0)
        f->sent += (size_t)w;
    if (f->sent == RAND_TOTAL) {
        gust_timer_stop(t);
        close(f->wfd);
    }
}

static void run_random_reads(size_t chunk, uint64_t seed, bool use_pipe)
{
    rng_state = seed;
    writer_rng_state = seed ^ 0x9e3779b97f4a7c15u;
    fuzz f = { 0 };
    f.loop = gust_loop_new();
    f.data = malloc(RAND_TOTAL);
    assert_non_null(f.data);
    static const char alphabet[] = "abcdefghij0123456789\n\r ";
    for (size_t i = 0; i < RAND_TOTAL; i++)
        f.data[i] = alphabet[rnd(sizeof alphabet - 1)];
    for (int i = 0; i < 200; i++) /* some HTTP-like heads */
        memcpy(f.data + rnd(RAND_TOTAL - 4), "\r\n\r\n", 4);
    int sv[2];
    if (use_pipe) {
        int p[2];
        assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
        sv[0] = p[0];
        sv[1] = p[1];
    } else {
        make_pair(sv);
    }
    f.wfd = sv[1];
    gust_stream_options o = { .read_chunk_size = chunk };
    f.s = gust_stream_new(f.loop, sv[0], &o);
    assert_non_null(f.s);
    gust_stream_set_close_callback(f.s, count_close_cb, &f.closes);
    gust_timer_init(f.loop, &f.timer);
    assert_int_equal(gust_timer_start(&f.timer, 0.0001, 0.0001, fuzz_write_tick, &f), 0);
    fuzz_next(&f);
    assert_int_equal(gust_loop_run_until(f.loop, int_reached, &f.done, 100), 0);
    assert_false(f.failed);
    assert_int_equal(f.got, RAND_TOTAL);
    assert_true(f.reads > 100);
    assert_true(f.unsats > 0);
    run_until_set(f.loop, &f.closes);
    assert_int_equal(gust_loop_free(f.loop), 0);
    free(f.data);
}

static void test_random_reads_small_chunks(void **state)
{
    (void)state;
    run_random_reads(7, 1, false);
}

static void test_random_reads_default_chunks(void **state)
{
    (void)state;
    run_random_reads(0, 2, false);
}

static void test_random_reads_pipe(void **state)
{
    (void)state;
    run_random_reads(100, 4, true);
}

/* ---- TCP round trips ------------------------------------------------------ */

#define ROUNDS 2000

typedef struct echo {
    gust_stream *client, *server;
    int round, done, connected, closes;
    char expect[32];
} echo;

static void server_line_cb(gust_stream *s, int status, const char *data,
                           size_t len, void *user)
{
    echo *e = user;
    if (status != 0)
        return; /* the client closed at the end */
    /* Answer, and wait for the next request in the same callback. */
    assert_int_equal(gust_stream_write(s, data, len, NULL, NULL), 0);
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, server_line_cb, e), 0);
}

static void client_send(echo *e);

static void client_line_cb(gust_stream *s, int status, const char *data,
                           size_t len, void *user)
{
    (void)s;
    echo *e = user;
    assert_int_equal(status, 0);
    assert_int_equal(len, strlen(e->expect));
    assert_memory_equal(data, e->expect, len);
    if (++e->round == ROUNDS) {
        e->done = 1;
        return;
    }
    client_send(e);
}

static void client_send(echo *e)
{
    snprintf(e->expect, sizeof e->expect, "ping %d\n", e->round);
    /* Half the requests are written in two pieces. */
    size_t len = strlen(e->expect), cut = e->round % 2 ? len / 2 : len;
    assert_int_equal(gust_stream_write(e->client, e->expect, cut, NULL, NULL), 0);
    if (cut < len)
        assert_int_equal(gust_stream_write(e->client, e->expect + cut, len - cut,
                                           NULL, NULL), 0);
    assert_int_equal(gust_stream_read_until(e->client, "\n", 1, 0,
                                            client_line_cb, e), 0);
}

static void client_connected(gust_stream *s, int status, void *user)
{
    (void)s;
    echo *e = user;
    assert_int_equal(status, 0);
    e->connected = 1;
}

static void test_tcp_round_trips(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(l, 4), 0);
    socklen_t sl = sizeof sin;
    assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &sl), 0);
    echo e = { 0 };
    e.client = gust_stream_new(loop, socket(AF_INET, SOCK_STREAM, 0), NULL);
    assert_non_null(e.client);
    gust_stream_set_close_callback(e.client, count_close_cb, &e.closes);
    /* Without it, the split requests would wait for delayed ACKs (Nagle). */
    assert_int_equal(gust_stream_set_nodelay(e.client, true), 0);
    assert_int_equal(gust_stream_connect(e.client, (struct sockaddr *)&sin,
                                         sizeof sin, client_connected, &e), 0);
    /* The first request is queued before the connect completes. */
    client_send(&e);
    int a = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    assert_true(a >= 0);
    close(l);
    e.server = gust__stream_new_accepted(loop, a, NULL);
    assert_non_null(e.server);
    gust_stream_set_close_callback(e.server, count_close_cb, &e.closes);
    assert_int_equal(gust_stream_set_nodelay(e.server, true), 0);
    assert_int_equal(gust_stream_read_until(e.server, "\n", 1, 0, server_line_cb, &e), 0);
    double t0 = now_s();
    assert_int_equal(gust_loop_run_until(loop, int_reached, &e.done, 60), 0);
    double dt = now_s() - t0;
    print_message("  %d TCP round trips in %.3f s\n", ROUNDS, dt);
    assert_true(e.connected);
    gust_stream_close(e.client);
    /* The server sees the EOF and closes too. */
    assert_int_equal(gust_loop_run_until(loop, int_reached, &e.closes, 20), 0);
    while (e.closes < 2)
        assert_int_equal(gust_loop_run_once(loop, 1), 0);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Many TCP clients, pipelined bursts ------------------------------------ */

#define NCLIENTS 40
#define NREQ 60

typedef struct mclient {
    gust_stream *s;
    int sent, answered, closes;
    uint32_t id;
} mclient;

typedef struct mserver {
    int lfd;
    int accepted, closes, served;
    gust_stream *conns[NCLIENTS];
} mserver;

static mserver msrv;
static mclient mcli[NCLIENTS];
static int mdone;

static void mserver_read(gust_stream *s, int status, const char *data,
                         size_t len, void *user)
{
    (void)user;
    if (status != 0)
        return; /* the client went away */
    /* "req <client> <n>\n" -> "resp <client> <n>\n" */
    char out[64];
    int n = snprintf(out, sizeof out, "resp%.*s", (int)(len - 3), data + 3);
    assert_int_equal(gust_stream_write(s, out, (size_t)n, NULL, NULL), 0);
    msrv.served++;
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, mserver_read, NULL), 0);
}

static void mserver_closed(gust_stream *s, void *user)
{
    (void)s;
    (void)user;
    msrv.closes++;
}

static void maccept(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)events;
    (void)data;
    int c;
    while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        gust_stream *s = gust__stream_new_accepted(loop, c, NULL);
        assert_non_null(s);
        msrv.conns[msrv.accepted++] = s;
        gust_stream_set_close_callback(s, mserver_closed, NULL);
        assert_int_equal(gust_stream_set_nodelay(s, true), 0);
        assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, mserver_read, NULL), 0);
    }
}

static void mclient_burst(mclient *c);

static void mclient_read(gust_stream *s, int status, const char *data,
                         size_t len, void *user)
{
    mclient *c = user;
    assert_int_equal(status, 0);
    char want[64];
    int n = snprintf(want, sizeof want, "resp %u %d\n", c->id, c->answered);
    assert_int_equal(len, (size_t)n);
    assert_memory_equal(data, want, len);
    c->answered++;
    if (c->answered == NREQ) {
        gust_stream_close(s);
        return;
    }
    if (c->answered == c->sent)
        mclient_burst(c);
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, mclient_read, c), 0);
}

/* 1 to 4 requests at once, in one write (pipelined). */
static void mclient_burst(mclient *c)
{
    char buf[256];
    size_t off = 0;
    int k = 1 + (int)rnd(4);
    for (int i = 0; i < k && c->sent < NREQ; i++)
        off += (size_t)snprintf(buf + off, sizeof buf - off, "req %u %d\n",
                                c->id, c->sent++);
    assert_int_equal(gust_stream_write(c->s, buf, off, NULL, NULL), 0);
}

static void mclient_closed(gust_stream *s, void *user)
{
    (void)s;
    mclient *c = user;
    c->closes++;
    mdone++;
}

static bool all_done(gust_loop *loop, void *data)
{
    (void)loop;
    (void)data;
    return mdone == NCLIENTS && msrv.closes == NCLIENTS;
}

static void test_many_clients_pipelined(void **state)
{
    (void)state;
    rng_state = 9;
    memset(&msrv, 0, sizeof msrv);
    memset(mcli, 0, sizeof mcli);
    mdone = 0;
    gust_loop *loop = gust_loop_new();
    msrv.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(msrv.lfd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(msrv.lfd, 128), 0);
    socklen_t sl = sizeof sin;
    assert_int_equal(getsockname(msrv.lfd, (struct sockaddr *)&sin, &sl), 0);
    assert_int_equal(gust_loop_add_handler(loop, msrv.lfd, GUST_READ, maccept, NULL), 0);
    for (int i = 0; i < NCLIENTS; i++) {
        mclient *c = &mcli[i];
        c->id = (uint32_t)i;
        c->s = gust_stream_new(loop, socket(AF_INET, SOCK_STREAM, 0), NULL);
        assert_non_null(c->s);
        gust_stream_set_close_callback(c->s, mclient_closed, c);
        assert_int_equal(gust_stream_set_nodelay(c->s, true), 0);
        assert_int_equal(gust_stream_connect(c->s, (struct sockaddr *)&sin,
                                             sizeof sin, NULL, NULL), 0);
        mclient_burst(c);
        assert_int_equal(gust_stream_read_until(c->s, "\n", 1, 0, mclient_read, c), 0);
    }
    assert_int_equal(gust_loop_run_until(loop, all_done, NULL, 60), 0);
    assert_int_equal(msrv.accepted, NCLIENTS);
    assert_int_equal(msrv.served, NCLIENTS * NREQ);
    for (int i = 0; i < NCLIENTS; i++) {
        assert_int_equal(mcli[i].answered, NREQ);
        assert_int_equal(mcli[i].closes, 1);
    }
    assert_int_equal(gust_loop_remove_handler(loop, msrv.lfd), 0);
    close(msrv.lfd);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Hang-up while idle ---------------------------------------------------- */

static void keep_cb(gust_stream *s, int status, const char *data, size_t len,
                    void *user)
{
    (void)s;
    int *st = user;
    st[0]++;
    st[1] = status;
    st[2] = len ? data[0] : 0;
}

static void test_hangup_while_idle_does_not_spin(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    gust_stream *s = gust_stream_new(loop, sv[0], NULL);
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    int st[3] = { 0 };
    assert_int_equal(gust_stream_read_bytes(s, 1, 0, keep_cb, st), 0);
    assert_int_equal(write(sv[1], "ab", 2), 2);
    run_until_set(loop, &st[0]);
    assert_int_equal(st[2], 'a');
    /* No read pending: the peer's data and hang-up must not wake the loop
     * over and over. */
    close(sv[1]);
    for (int i = 0; i < 3; i++) {
        double t0 = now_s();
        assert_int_equal(gust_loop_run_once(loop, 0.05), 0);
        if (i > 0)
            assert_true(now_s() - t0 >= 0.04);
    }
    assert_false(gust_stream_closed(s));
    /* The data is still there for the next read, then the end. */
    st[0] = 0;
    assert_int_equal(gust_stream_read_bytes(s, 1, 0, keep_cb, st), 0);
    run_until_set(loop, &st[0]);
    assert_int_equal(st[1], 0);
    assert_int_equal(st[2], 'b');
    st[0] = 0;
    assert_int_equal(gust_stream_read_bytes(s, 1, 0, keep_cb, st), 0);
    run_until_set(loop, &closes);
    assert_int_equal(st[0], 1);
    assert_int_equal(st[1], GUST_ESTREAMCLOSED);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Streaming is not bounded by max_buffer_size --------------------------- */

typedef struct counter {
    size_t bytes;
    int chunks, finals, status;
} counter;

static void count_cb(gust_stream *s, int status, const char *data, size_t len,
                     void *user)
{
    (void)s;
    (void)data;
    counter *c = user;
    c->bytes += len;
    if (status == GUST_STREAM_CHUNK) {
        c->chunks++;
    } else {
        c->finals++;
        c->status = status;
    }
}

static void test_streaming_past_max_buffer_size(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    gust_stream_options o = { .max_buffer_size = 4096 };
    gust_stream *s = gust_stream_new(loop, sv[0], &o);
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    counter c = { 0 };
    assert_int_equal(gust_stream_read_bytes(s, 100000, GUST_READ_STREAMING, count_cb, &c), 0);
    static char buf[100000 + 5];
    memset(buf, 'z', sizeof buf);
    size_t off = 0;
    while (c.finals == 0) {
        if (off < sizeof buf) {
            ssize_t n = write(sv[1], buf + off, sizeof buf - off);
            if (n > 0)
                off += (size_t)n;
        }
        assert_int_equal(gust_loop_run_once(loop, 0.01), 0);
    }
    assert_int_equal(c.status, 0);
    assert_int_equal(c.bytes, 100000);
    assert_true(c.chunks >= 100000 / 4096);
    assert_false(gust_stream_closed(s));
    /* The same with read_until_close. */
    counter d = { 0 };
    assert_int_equal(gust_stream_read_until_close(s, GUST_READ_STREAMING, count_cb, &d), 0);
    while (off < sizeof buf) {
        ssize_t n = write(sv[1], buf + off, sizeof buf - off);
        if (n > 0)
            off += (size_t)n;
        assert_int_equal(gust_loop_run_once(loop, 0.01), 0);
    }
    close(sv[1]);
    run_until_set(loop, &closes);
    assert_int_equal(d.finals, 1);
    assert_int_equal(d.status, 0);
    assert_int_equal(d.bytes, 5);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Random writes ---------------------------------------------------------- */

#define WSRC_LEN ((size_t)1 << 20)
#define WOPS 600

typedef struct wfuzz {
    gust_stream *w, *r;
    char *src;      /* pattern; write_ref slices and the file share it */
    int file_fd;
    char *expect, *recv;
    size_t expect_len, recv_len, cap;
    int issued_ids, fired_ids, ops;
    bool bad_order, bad_status;
    int eof, wcloses, rcloses;
    size_t max_queued;
    gust_timer timer;
} wfuzz;

static void wfuzz_done(gust_stream *s, int status, void *user);

typedef struct wid {
    wfuzz *f;
    int id;
} wid;

static wid wids[WOPS];

static void wfuzz_done(gust_stream *s, int status, void *user)
{
    (void)s;
    wid *w = user;
    if (status != 0)
        w->f->bad_status = true;
    if (w->id != w->f->fired_ids)
        w->f->bad_order = true;
    w->f->fired_ids++;
}

static void wfuzz_expect(wfuzz *f, const char *data, size_t len)
{
    assert_true(f->expect_len + len <= f->cap);
    memcpy(f->expect + f->expect_len, data, len);
    f->expect_len += len;
}

static size_t rand_len(size_t max)
{
    switch (rnd(4)) {
    case 0: return 0;
    case 1: return rnd(64) < max ? rnd(64) : max;
    default: return rnd((uint32_t)max + 1);
    }
}

static void wfuzz_issue(wfuzz *f)
{
    wid *id = NULL;
    if (rnd(5)) {
        id = &wids[f->issued_ids];
        id->f = f;
        id->id = f->issued_ids;
    }
    int op = (int)rnd(3);
    if (op == 0) {
        /* A copy: scribbled over right after the call. */
        static char scratch[70000];
        size_t len = rand_len(sizeof scratch);
        size_t off = rnd((uint32_t)(WSRC_LEN - len));
        memcpy(scratch, f->src + off, len);
        assert_int_equal(gust_stream_write(f->w, scratch, len,
                                           id ? wfuzz_done : NULL, id), 0);
        memset(scratch, '#', len);
        wfuzz_expect(f, f->src + off, len);
    } else if (op == 1) {
        if (!id)
            id = &wids[f->issued_ids], id->f = f, id->id = f->issued_ids;
        struct iovec iov[5];
        int cnt = 1 + (int)rnd(5);
        for (int i = 0; i < cnt; i++) {
            size_t len = rand_len(100000);
            size_t off = rnd((uint32_t)(WSRC_LEN - len));
            iov[i].iov_base = f->src + off;
            iov[i].iov_len = len;
            wfuzz_expect(f, f->src + off, len);
        }
        assert_int_equal(gust_stream_write_ref(f->w, iov, cnt, wfuzz_done, id), 0);
    } else {
        if (!id)
            id = &wids[f->issued_ids], id->f = f, id->id = f->issued_ids;
        size_t len = rand_len(200000);
        size_t off = rnd((uint32_t)(WSRC_LEN - len));
        assert_int_equal(gust_stream_sendfile(f->w, f->file_fd, (off_t)off, len,
                                              wfuzz_done, id), 0);
        wfuzz_expect(f, f->src + off, len);
    }
    if (id)
        f->issued_ids++;
    f->ops++;
}

static void wfuzz_tick(gust_timer *t, void *data)
{
    wfuzz *f = data;
    while (f->ops < WOPS && gust_stream_write_buffer_size(f->w) < (512u << 10))
        wfuzz_issue(f);
    size_t q = gust_stream_write_buffer_size(f->w);
    if (q > f->max_queued)
        f->max_queued = q;
    if (f->ops == WOPS)
        gust_timer_stop(t);
}

static void wfuzz_read_cb(gust_stream *s, int status, const char *data,
                          size_t len, void *user)
{
    (void)s;
    wfuzz *f = user;
    assert_true(f->recv_len + len <= f->cap);
    memcpy(f->recv + f->recv_len, data, len);
    f->recv_len += len;
    if (status != GUST_STREAM_CHUNK) {
        assert_int_equal(status, 0);
        f->eof = 1;
    }
}

static bool wfuzz_all_fired(gust_loop *loop, void *data)
{
    (void)loop;
    wfuzz *f = data;
    return f->ops == WOPS && f->fired_ids == f->issued_ids &&
           !gust_stream_writing(f->w);
}

static void test_random_writes(void **state)
{
    (void)state;
    rng_state = 3;
    gust_loop *loop = gust_loop_new();
    wfuzz f = { 0 };
    f.src = malloc(WSRC_LEN);
    for (size_t i = 0; i < WSRC_LEN; i++)
        f.src[i] = (char)(rnd(256));
    char path[] = "/tmp/gust_wfuzz_XXXXXX";
    f.file_fd = mkstemp(path);
    assert_true(f.file_fd >= 0);
    unlink(path);
    assert_int_equal(write(f.file_fd, f.src, WSRC_LEN), (ssize_t)WSRC_LEN);
    f.cap = (size_t)WOPS * 500000;
    f.expect = malloc(f.cap);
    f.recv = malloc(f.cap);
    assert_non_null(f.expect);
    assert_non_null(f.recv);
    int sv[2];
    make_pair(sv);
    f.w = gust_stream_new(loop, sv[0], NULL);
    f.r = gust_stream_new(loop, sv[1], NULL);
    gust_stream_set_close_callback(f.w, count_close_cb, &f.wcloses);
    gust_stream_set_close_callback(f.r, count_close_cb, &f.rcloses);
    assert_int_equal(gust_stream_read_until_close(f.r, GUST_READ_STREAMING,
                                                  wfuzz_read_cb, &f), 0);
    gust_timer_init(loop, &f.timer);
    assert_int_equal(gust_timer_start(&f.timer, 0.0002, 0.0002, wfuzz_tick, &f), 0);
    assert_int_equal(gust_loop_run_until(loop, wfuzz_all_fired, &f, 100), 0);
    assert_false(f.bad_order);
    assert_false(f.bad_status);
    gust_stream_close(f.w);
    run_until_set(loop, &f.eof);
    assert_int_equal(f.recv_len, f.expect_len);
    assert_true(memcmp(f.recv, f.expect, f.expect_len) == 0);
    run_until_set(loop, &f.rcloses);
    assert_int_equal(f.wcloses, 1);
    assert_int_equal(gust_loop_free(loop), 0);
    close(f.file_fd);
    free(f.src);
    free(f.expect);
    free(f.recv);
}

/* ---- connect() failing at once --------------------------------------------- */

typedef struct cres {
    int calls, status, closes;
} cres;

static void cres_cb(gust_stream *s, int status, void *user)
{
    (void)s;
    cres *c = user;
    c->calls++;
    c->status = status;
}

static void test_connect_unix_no_listener(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    snprintf(sun.sun_path, sizeof sun.sun_path, "/tmp/gust-no-such-%d", (int)getpid());
    gust_stream *s = gust_stream_new(loop, socket(AF_UNIX, SOCK_STREAM, 0), NULL);
    assert_non_null(s);
    cres c = { 0 };
    gust_stream_set_close_callback(s, count_close_cb, &c.closes);
    assert_int_equal(gust_stream_connect(s, (struct sockaddr *)&sun, sizeof sun,
                                         cres_cb, &c), 0);
    assert_int_equal(c.calls, 0); /* never inside the call */
    run_until_set(loop, &c.closes);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.status, -ENOENT);
    assert_int_equal(gust_loop_free(loop), 0);
}

#define T(fn) cmocka_unit_test_setup(fn, test_setup)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_random_reads_small_chunks),
        T(test_random_reads_default_chunks),
        T(test_random_reads_pipe),
        T(test_tcp_round_trips),
        T(test_hangup_while_idle_does_not_spin),
        T(test_streaming_past_max_buffer_size),
        T(test_connect_unix_no_listener),
        T(test_random_writes),
        T(test_many_clients_pipelined),
    };
    int failed = cmocka_run_group_tests_name("stream_stress_epoll", tests,
                                             setup_default, teardown_env);
    failed += cmocka_run_group_tests_name("stream_stress_poll", tests,
                                          setup_poll, teardown_env);
    return failed;
}
