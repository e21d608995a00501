/* Tests of the stream's transport seam (src/stream_internal.h) with two
 * fake transports: one that holds data back like TLS records (pending), one
 * that must read before it can write like a TLS handshake (events). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gust/loop.h"
#include "gust/stream.h"
#include "stream_internal.h"

static int setup_default(void **state)
{
    (void)state;
    unsetenv("GUST_LOOP_BACKEND");
    return 0;
}

static int setup_poll(void **state)
{
    (void)state;
    setenv("GUST_LOOP_BACKEND", "poll", 1);
    return 0;
}

static int teardown_env(void **state)
{
    (void)state;
    unsetenv("GUST_LOOP_BACKEND");
    return 0;
}

static int test_setup(void **state)
{
    (void)state;
    alarm(60);
    return 0;
}

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
                                             SOCK_CLOEXEC, 0, sv), 0);
}

static bool int_reached(gust_loop *loop, void *data)
{
    (void)loop;
    return *(int *)data > 0;
}

static void run_until_set(gust_loop *loop, int *counter)
{
    assert_int_equal(gust_loop_run_until(loop, int_reached, counter, 20), 0);
}

static void count_close_cb(gust_stream *s, void *user)
{
    (void)s;
    (*(int *)user)++;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int wdone, wstatus;

static void wdone_cb(gust_stream *s, int status, void *user)
{
    (void)s;
    (void)user;
    wstatus = status;
    wdone++;
}

/* ---- A transport that holds data back --------------------------------------
 * Drains the fd into its own buffer and hands out at most 10 bytes per read,
 * XOR-ed with 0x20 (so the test sees the data went through it). */

typedef struct trickle {
    char buf[65536];
    size_t off, len;
    int closes;
} trickle;

static ssize_t trickle_read(gust_stream *s, void *out, size_t len)
{
    trickle *t = gust__stream_transport_state(s);
    if (t->off == t->len) {
        ssize_t n = read(gust_stream_fd(s), t->buf, sizeof t->buf);
        if (n <= 0)
            return n == 0 ? 0 : -errno;
        t->off = 0;
        t->len = (size_t)n;
    }
    size_t k = t->len - t->off;
    if (k > 10)
        k = 10;
    if (k > len)
        k = len;
    for (size_t i = 0; i < k; i++)
        ((char *)out)[i] = (char)(t->buf[t->off + i] ^ 0x20);
    t->off += k;
    return (ssize_t)k;
}

static ssize_t trickle_writev(gust_stream *s, const struct iovec *iov, int cnt)
{
    char tmp[4096];
    size_t k = 0;
    for (int i = 0; i < cnt && k < sizeof tmp; i++)
        for (size_t j = 0; j < iov[i].iov_len && k < sizeof tmp; j++)
            tmp[k++] = (char)(((const char *)iov[i].iov_base)[j] ^ 0x20);
    ssize_t n = write(gust_stream_fd(s), tmp, k);
    return n >= 0 ? n : -errno;
}

static size_t trickle_pending(gust_stream *s)
{
    trickle *t = gust__stream_transport_state(s);
    return t->len - t->off;
}

static void trickle_close(gust_stream *s)
{
    trickle *t = gust__stream_transport_state(s);
    t->closes++;
}

static const gust__stream_transport trickle_tp = {
    .name = "trickle",
    .read = trickle_read,
    .writev = trickle_writev,
    .close = trickle_close,
    .pending = trickle_pending,
};

typedef struct got {
    int calls, status;
    char data[2048];
    size_t len;
} got_t;

static void got_cb(gust_stream *s, int status, const char *data, size_t len,
                   void *user)
{
    (void)s;
    got_t *g = user;
    memcpy(g->data, data, len);
    g->len = len;
    g->status = status;
    g->calls++;
}

static void test_transport_pending_data(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    trickle *t = calloc(1, sizeof *t);
    gust_stream *s = gust_stream_new(loop, sv[0], NULL);
    gust__stream_set_transport(s, &trickle_tp, t);
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    char msg[1000];
    for (size_t i = 0; i < sizeof msg; i++)
        msg[i] = (char)('a' + i % 26);
    char wire[sizeof msg];
    for (size_t i = 0; i < sizeof msg; i++)
        wire[i] = (char)(msg[i] ^ 0x20);
    assert_int_equal(write(sv[1], wire, sizeof wire), (ssize_t)sizeof wire);
    /* One read() of the fd takes all 1000 bytes; the stream gets them 10 at
     * a time and must not wait for a readiness event that never comes. */
    got_t g = { 0 };
    assert_int_equal(gust_stream_read_bytes(s, sizeof msg, 0, got_cb, &g), 0);
    run_until_set(loop, &g.calls);
    assert_int_equal(g.status, 0);
    assert_int_equal(g.len, sizeof msg);
    assert_memory_equal(g.data, msg, sizeof msg);
    /* Writes go through it too. */
    assert_int_equal(gust_stream_write(s, "HELLO", 5, NULL, NULL), 0);
    char out[8];
    assert_int_equal(read(sv[1], out, sizeof out), 5);
    assert_memory_equal(out, "hello", 5);
    gust_stream_close(s);
    assert_int_equal(t->closes, 1);
    run_until_set(loop, &closes);
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
    free(t);
}

/* Without a sendfile hook the core reads the file and writes it through the
 * transport. */
static void test_transport_sendfile_fallback(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    trickle *t = calloc(1, sizeof *t);
    gust_stream *s = gust_stream_new(loop, sv[0], NULL);
    gust__stream_set_transport(s, &trickle_tp, t);
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    char path[] = "/tmp/gust_tp_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    static char content[300000];
    for (size_t i = 0; i < sizeof content; i++)
        content[i] = (char)(i * 7 + (i >> 9));
    assert_int_equal(write(fd, content, sizeof content), (ssize_t)sizeof content);
    size_t off = 777, len = 250000;
    wdone = 0;
    assert_int_equal(gust_stream_sendfile(s, fd, (off_t)off, len, wdone_cb, NULL), 0);
    static char recv_buf[300000];
    size_t got_len = 0;
    double deadline = now_s() + 20;
    while ((wdone == 0 || got_len < len) && now_s() < deadline) {
        assert_int_equal(gust_loop_run_once(loop, 0.001), 0);
        ssize_t n;
        while ((n = read(sv[1], recv_buf + got_len, sizeof recv_buf - got_len)) > 0)
            got_len += (size_t)n;
    }
    assert_int_equal(wdone, 1);
    assert_int_equal(wstatus, 0);
    assert_int_equal(got_len, len);
    for (size_t i = 0; i < len; i++)
        if ((char)(recv_buf[i] ^ 0x20) != content[off + i])
            fail_msg("byte %zu differs", i);
    gust_stream_close(s);
    run_until_set(loop, &closes);
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
    close(fd);
    free(t);
}

/* ---- A transport that must read before it writes ----------------------------
 * Its writev() first needs a one-byte "handshake" from the peer, which it
 * reads itself, as SSL_write() does during a TLS handshake. Until then it
 * asks the core to watch READ instead of WRITE. */

typedef struct shake {
    bool done;
    int events_calls;
} shake;

static ssize_t shake_read(gust_stream *s, void *buf, size_t len)
{
    ssize_t n = read(gust_stream_fd(s), buf, len);
    return n >= 0 ? n : -errno;
}

static ssize_t shake_writev(gust_stream *s, const struct iovec *iov, int cnt)
{
    shake *h = gust__stream_transport_state(s);
    if (!h->done) {
        char c;
        ssize_t n = read(gust_stream_fd(s), &c, 1);
        if (n != 1)
            return -EAGAIN;
        assert_int_equal(c, 'H');
        h->done = true;
    }
    ssize_t n = writev(gust_stream_fd(s), iov, cnt);
    return n >= 0 ? n : -errno;
}

static unsigned shake_events(gust_stream *s, unsigned want)
{
    shake *h = gust__stream_transport_state(s);
    h->events_calls++;
    if (!h->done && (want & GUST_WRITE))
        return (want & ~(unsigned)GUST_WRITE) | GUST_READ;
    return want;
}

static const gust__stream_transport shake_tp = {
    .name = "shake",
    .read = shake_read,
    .writev = shake_writev,
    .events = shake_events,
};


static void test_transport_write_needs_read(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    shake h = { 0 };
    gust_stream *s = gust_stream_new(loop, sv[0], NULL);
    gust__stream_set_transport(s, &shake_tp, &h);
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    wdone = 0;
    assert_int_equal(gust_stream_write(s, "payload", 7, wdone_cb, NULL), 0);
    assert_true(gust_stream_writing(s));
    assert_true(h.events_calls > 0);
    /* The socket is writable all along, but the transport cannot write:
     * the loop must sleep, not spin on WRITE. */
    for (int i = 0; i < 3; i++) {
        double t0 = now_s();
        assert_int_equal(gust_loop_run_once(loop, 0.05), 0);
        assert_true(now_s() - t0 >= 0.04);
    }
    assert_int_equal(wdone, 0);
    /* The peer's handshake byte arrives: a READ event, and the write goes. */
    assert_int_equal(write(sv[1], "H", 1), 1);
    run_until_set(loop, &wdone);
    assert_int_equal(wstatus, 0);
    char out[16];
    assert_int_equal(read(sv[1], out, sizeof out), 7);
    assert_memory_equal(out, "payload", 7);
    gust_stream_close(s);
    run_until_set(loop, &closes);
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
}

/* ---- Answers to pipelined requests leave in one writev() -------------------- */

static int writev_calls;

static ssize_t counting_writev(gust_stream *s, const struct iovec *iov, int cnt)
{
    writev_calls++;
    return gust__stream_plain_transport.writev(s, iov, cnt);
}

static ssize_t plain_read(gust_stream *s, void *buf, size_t len)
{
    return gust__stream_plain_transport.read(s, buf, len);
}

static const gust__stream_transport counting_tp = {
    .name = "counting",
    .read = plain_read,
    .writev = counting_writev,
};

typedef struct pipeline {
    int answered;
    int mode; /* 0: answer each; 1: answer then close; 2: small, big, small */
    size_t gathered;
    char big[100000];
} pipeline;

static void pipeline_cb(gust_stream *s, int status, const char *data,
                        size_t len, void *user)
{
    pipeline *p = user;
    if (status != 0)
        return;
    char out[8];
    snprintf(out, sizeof out, "a%c\n", data[1]);
    if (p->mode == 2) {
        assert_int_equal(gust_stream_write(s, "x", 1, NULL, NULL), 0);
        p->gathered = gust_stream_write_buffer_size(s);
        assert_int_equal(gust_stream_write(s, p->big, sizeof p->big, NULL, NULL), 0);
        assert_int_equal(gust_stream_write(s, "z", 1, NULL, NULL), 0);
        p->answered++;
        return;
    }
    assert_int_equal(gust_stream_write(s, out, 3, NULL, NULL), 0);
    p->answered++;
    (void)len;
    if (p->mode == 1) {
        gust_stream_close(s);
        return;
    }
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, pipeline_cb, p), 0);
}

static size_t read_some(int fd, char *buf, size_t cap, size_t want)
{
    size_t got = 0;
    double deadline = now_s() + 10;
    while (got < want && now_s() < deadline) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0)
            break;
    }
    return got;
}

static void test_pipelined_answers_one_writev(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    static pipeline p;
    memset(&p, 0, sizeof p);
    gust_stream *s = gust_stream_new(loop, sv[0], NULL);
    gust__stream_set_transport(s, &counting_tp, NULL);
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    const char *reqs = "r0\nr1\nr2\nr3\nr4\nr5\nr6\nr7\nr8\nr9\n";
    assert_int_equal(write(sv[1], reqs, strlen(reqs)), (ssize_t)strlen(reqs));
    writev_calls = 0;
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, pipeline_cb, &p), 0);
    while (p.answered < 10)
        assert_int_equal(gust_loop_run_once(loop, 1), 0);
    char buf[64];
    const char *want = "a0\na1\na2\na3\na4\na5\na6\na7\na8\na9\n";
    assert_int_equal(read_some(sv[1], buf, sizeof buf, 30), 30);
    assert_memory_equal(buf, want, 30);
    assert_int_equal(writev_calls, 1);
    gust_stream_close(s);
    run_until_set(loop, &closes);
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
}

static void test_write_then_close_in_read_callback(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    static pipeline p;
    memset(&p, 0, sizeof p);
    p.mode = 1;
    gust_stream *s = gust_stream_new(loop, sv[0], NULL);
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    assert_int_equal(write(sv[1], "r7\n", 3), 3);
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, pipeline_cb, &p), 0);
    run_until_set(loop, &closes);
    char buf[16];
    assert_int_equal(read_some(sv[1], buf, sizeof buf, 4), 3); /* then EOF */
    assert_memory_equal(buf, "a7\n", 3);
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
}

static void test_gathered_writes_keep_order(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    static pipeline p;
    memset(&p, 0, sizeof p);
    p.mode = 2;
    memset(p.big, 'y', sizeof p.big);
    gust_stream *s = gust_stream_new(loop, sv[0], NULL);
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    /* Two requests: "x" is gathered (the second is buffered), then the big
     * write must send it first. */
    assert_int_equal(write(sv[1], "r1\nr2\n", 6), 6);
    writev_calls = 0;
    gust__stream_set_transport(s, &counting_tp, NULL);
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, pipeline_cb, &p), 0);
    static char buf[sizeof p.big + 16];
    size_t got = 0;
    double deadline = now_s() + 10;
    while (got < sizeof p.big + 2 && now_s() < deadline) {
        assert_int_equal(gust_loop_run_once(loop, 0.001), 0);
        ssize_t n;
        while ((n = read(sv[1], buf + got, sizeof buf - got)) > 0)
            got += (size_t)n;
    }
    assert_int_equal(got, sizeof p.big + 2);
    assert_int_equal(buf[0], 'x');
    assert_int_equal(buf[1], 'y');
    assert_int_equal(buf[sizeof p.big], 'y');
    assert_int_equal(buf[sizeof p.big + 1], 'z');
    assert_int_equal(p.gathered, 1); /* "x" waited... */
    assert_true(writev_calls >= 2); /* ...and went first, on its own */
    gust_stream_close(s);
    run_until_set(loop, &closes);
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
}

#define T(fn) cmocka_unit_test_setup(fn, test_setup)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_transport_pending_data),
        T(test_transport_sendfile_fallback),
        T(test_transport_write_needs_read),
        T(test_pipelined_answers_one_writev),
        T(test_write_then_close_in_read_callback),
        T(test_gathered_writes_keep_order),
    };
    int failed = cmocka_run_group_tests_name("stream_transport_epoll", tests,
                                             setup_default, teardown_env);
    failed += cmocka_run_group_tests_name("stream_transport_poll", tests,
                                          setup_poll, teardown_env);
    return failed;
}
