/* Unit tests for streams (include/gust/stream.h): writing, sendfile,
 * connect and write-side errors. Reading is in test_stream.c.
 * Every test runs with the default backend and again with poll. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gust/loop.h"
#include "gust/stream.h"
#include "gust_test.h"

static int listen_local(struct sockaddr_in *sin)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)sin, sizeof *sin), 0);
    assert_int_equal(listen(l, 4), 0);
    socklen_t len = sizeof *sin;
    assert_int_equal(getsockname(l, (struct sockaddr *)sin, &len), 0);
    return l;
}

/* Closes s, runs until its close callback, and frees the loop. */
static void finish(gust_loop *loop, gust_stream *s, int *closes)
{
    if (!*closes && !gust_stream_closed(s))
        gust_stream_close(s);
    run_until_set(loop, closes);
    assert_int_equal(*closes, 1);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Reads everything available on a raw non-blocking fd into buf. */
static size_t drain(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    while (got < cap) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    return got;
}

static unsigned char pattern_byte(uint64_t i)
{
    return (unsigned char)((i * 131) ^ (i >> 13));
}

/* ---- Write completion ---------------------------------------------------- */

typedef struct wlog {
    int order[16];
    int status[16];
    int n;
    bool in_call;
    int inline_calls;
} wlog;

static void wlog_cb(gust_stream *s, int status, void *user)
{
    (void)s;
    wlog *w = user;
    if (w->in_call)
        w->inline_calls++;
    w->status[w->n] = status;
    w->order[w->n++] = 0;
}

typedef struct tagged {
    wlog *log;
    int tag;
} tagged;

static void tagged_cb(gust_stream *s, int status, void *user)
{
    tagged *t = user;
    wlog_cb(s, status, t->log);
    t->log->order[t->log->n - 1] = t->tag;
}

static void test_write_completion_order(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    gust_stream *s = gust_stream_new(loop, sv[0], NULL);
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    wlog w = { 0 };
    tagged t[6];
    static char big[4 << 20];
    memset(big, 'B', sizeof big);
    w.in_call = true;
    for (int i = 0; i < 6; i++) {
        t[i].log = &w;
        t[i].tag = i + 1;
    }
    /* Small (sent at once), big (queued), small (coalesced), empty. */
    assert_int_equal(gust_stream_write(s, "a", 1, tagged_cb, &t[0]), 0);
    assert_int_equal(gust_stream_write(s, big, sizeof big, tagged_cb, &t[1]), 0);
    assert_true(gust_stream_writing(s));
    assert_true(gust_stream_write_buffer_size(s) > 0);
    assert_int_equal(gust_stream_write(s, "c", 1, tagged_cb, &t[2]), 0);
    assert_int_equal(gust_stream_write(s, NULL, 0, tagged_cb, &t[3]), 0);
    assert_int_equal(gust_stream_write(s, "e", 1, NULL, NULL), 0);
    struct iovec v = { "f", 1 };
    assert_int_equal(gust_stream_write_ref(s, &v, 1, tagged_cb, &t[4]), 0);
    w.in_call = false;
    assert_int_equal(w.n, 0);
    static char sink[(4 << 20) + 64];
    size_t got = 0;
    while (w.n < 5) {
        assert_int_equal(gust_loop_run_once(loop, 0.01), 0);
        got += drain(sv[1], sink + got, sizeof sink - got);
    }
    got += drain(sv[1], sink + got, sizeof sink - got);
    assert_int_equal(got, sizeof big + 4);
    assert_int_equal(sink[0], 'a');
    assert_int_equal(sink[1 + sizeof big], 'c');
    assert_memory_equal(sink + sizeof big + 2, "ef", 2);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(w.order[i], i + 1);
        assert_int_equal(w.status[i], 0);
    }
    assert_int_equal(w.inline_calls, 0);
    assert_false(gust_stream_writing(s));
    assert_int_equal(gust_stream_write_buffer_size(s), 0);
    finish(loop, s, &closes);
    close(sv[1]);
}

/* ---- 64 MiB to a slow reader ---------------------------------------------- */

#define BIG_TOTAL ((uint64_t)64 << 20)
#define BIG_CHUNK ((size_t)256 << 10)

typedef struct bigw {
    gust_stream *s;
    char *chunk;
    uint64_t written, received;
    size_t max_queued;
    bool bad_pattern;
    int done;
    int rfd;
    gust_timer timer;
} bigw;

static void big_write_next(bigw *b);

static void big_written(gust_stream *s, int status, void *user)
{
    (void)s;
    bigw *b = user;
    assert_int_equal(status, 0);
    big_write_next(b);
}

static void big_write_next(bigw *b)
{
    if (b->written == BIG_TOTAL)
        return;
    for (size_t i = 0; i < BIG_CHUNK; i++)
        b->chunk[i] = (char)pattern_byte(b->written + i);
    b->written += BIG_CHUNK;
    assert_int_equal(gust_stream_write(b->s, b->chunk, BIG_CHUNK, big_written, b), 0);
    size_t q = gust_stream_write_buffer_size(b->s);
    if (q > b->max_queued)
        b->max_queued = q;
}

/* The slow reader: at most 64 KiB per tick. */
static void big_read_tick(gust_timer *t, void *data)
{
    bigw *b = data;
    static char buf[64 << 10];
    ssize_t n = read(b->rfd, buf, sizeof buf);
    for (ssize_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] != pattern_byte(b->received + (uint64_t)i))
            b->bad_pattern = true;
    if (n > 0)
        b->received += (uint64_t)n;
    size_t q = gust_stream_write_buffer_size(b->s);
    if (q > b->max_queued)
        b->max_queued = q;
    if (b->received == BIG_TOTAL) {
        gust_timer_stop(t);
        b->done = 1;
    }
}

static void test_write_64mib_to_slow_reader(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    bigw b = { .rfd = sv[1] };
    b.chunk = malloc(BIG_CHUNK);
    assert_non_null(b.chunk);
    b.s = gust_stream_new(loop, sv[0], NULL);
    gust_stream_set_close_callback(b.s, count_close_cb, &closes);
    gust_timer_init(loop, &b.timer);
    assert_int_equal(gust_timer_start(&b.timer, 0.0001, 0.0001, big_read_tick, &b), 0);
    big_write_next(&b);
    assert_int_equal(gust_loop_run_until(loop, int_reached, &b.done, 100), 0);
    assert_int_equal(b.received, BIG_TOTAL);
    assert_false(b.bad_pattern);
    /* Never more than one chunk queued: memory stays bounded. */
    assert_true(b.max_queued <= BIG_CHUNK);
    assert_true(b.max_queued > 0);
    /* The last callback may still be due. */
    while (gust_stream_writing(b.s))
        assert_int_equal(gust_loop_run_once(loop, 0.01), 0);
    finish(loop, b.s, &closes);
    close(sv[1]);
    free(b.chunk);
}

static void test_max_write_buffer_size(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    gust_stream_options o = { .max_write_buffer_size = 100000 };
    gust_stream *s = gust_stream_new(loop, sv[0], &o);
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    char buf[50000];
    memset(buf, 'w', sizeof buf);
    /* Fill the socket until writes are queued, then up to the limit. */
    int rc;
    int accepted = 0;
    while ((rc = gust_stream_write(s, buf, sizeof buf, NULL, NULL)) == 0)
        assert_true(++accepted < 10000);
    assert_int_equal(rc, GUST_EBUFFERFULL);
    assert_true(gust_stream_write_buffer_size(s) <= 100000);
    assert_true(gust_stream_write_buffer_size(s) > 100000 - sizeof buf);
    size_t before = gust_stream_write_buffer_size(s);
    assert_int_equal(gust_stream_write(s, buf, 200000, NULL, NULL), GUST_EBUFFERFULL);
    assert_int_equal(gust_stream_write_buffer_size(s), before);
    finish(loop, s, &closes);
    close(sv[1]);
}

/* ---- write_ref and sendfile ---------------------------------------------- */

typedef struct sink {
    gust_stream *s;
    char *data;
    size_t len, cap;
    int eof;
} sink;

static void sink_read_cb(gust_stream *s, int status, const char *data,
                         size_t len, void *user)
{
    (void)s;
    sink *k = user;
    assert_true(k->len + len <= k->cap);
    memcpy(k->data + k->len, data, len);
    k->len += len;
    if (status != GUST_STREAM_CHUNK)
        k->eof = 1;
}

static int done_status = 1;
static int done_calls;

static void done_cb(gust_stream *s, int status, void *user)
{
    (void)s;
    (void)user;
    done_status = status;
    done_calls++;
}

static void test_write_ref_large(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    int closes = 0, rcloses = 0;
    size_t n1 = 3 << 20, n2 = 5 << 20;
    char *b1 = malloc(n1), *b2 = malloc(n2);
    assert_non_null(b1);
    assert_non_null(b2);
    for (size_t i = 0; i < n1; i++)
        b1[i] = (char)pattern_byte(i);
    for (size_t i = 0; i < n2; i++)
        b2[i] = (char)pattern_byte(i + 7);
    gust_stream *w = gust_stream_new(loop, sv[0], NULL);
    gust_stream_set_close_callback(w, count_close_cb, &closes);
    sink k = { .cap = n1 + n2 };
    k.data = malloc(k.cap);
    k.s = gust_stream_new(loop, sv[1], NULL);
    gust_stream_set_close_callback(k.s, count_close_cb, &rcloses);
    assert_int_equal(gust_stream_read_until_close(k.s, GUST_READ_STREAMING,
                                                  sink_read_cb, &k), 0);
    struct iovec iov[3] = { { b1, n1 }, { NULL, 0 }, { b2, n2 } };
    assert_int_equal(gust_stream_write_ref(w, iov, 3, NULL, NULL), -EINVAL);
    done_calls = 0;
    assert_int_equal(gust_stream_write_ref(w, iov, 3, done_cb, NULL), 0);
    memset(iov, 0, sizeof iov); /* the array itself is copied */
    assert_int_equal(gust_stream_write_buffer_size(w) > 0, true);
    run_until_set(loop, &done_calls);
    assert_int_equal(done_status, 0);
    gust_stream_close(w);
    run_until_set(loop, &k.eof);
    assert_int_equal(k.len, n1 + n2);
    assert_memory_equal(k.data, b1, n1);
    assert_memory_equal(k.data + n1, b2, n2);
    run_until_set(loop, &rcloses);
    assert_int_equal(closes, 1);
    assert_int_equal(gust_loop_free(loop), 0);
    free(b1);
    free(b2);
    free(k.data);
}

static int temp_file(size_t size)
{
    char path[] = "/tmp/gust_sendfile_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    char buf[4096];
    for (size_t off = 0; off < size; off += sizeof buf) {
        for (size_t i = 0; i < sizeof buf; i++)
            buf[i] = (char)pattern_byte(off + i);
        size_t n = size - off < sizeof buf ? size - off : sizeof buf;
        assert_int_equal(write(fd, buf, n), (ssize_t)n);
    }
    return fd;
}

/* Sends [off, off + len) of a pattern file through a stream on wfd and
 * checks what comes out of rfd. */
static void check_sendfile(int wfd, int rfd)
{
    gust_loop *loop = gust_loop_new();
    int closes = 0, rcloses = 0;
    size_t fsize = 3 << 20, off = 1000, len = (2 << 20) + 12345;
    int ffd = temp_file(fsize);
    gust_stream *w = gust_stream_new(loop, wfd, NULL);
    gust_stream_set_close_callback(w, count_close_cb, &closes);
    sink k = { .cap = len + 10 };
    k.data = malloc(k.cap);
    k.s = gust_stream_new(loop, rfd, NULL);
    gust_stream_set_close_callback(k.s, count_close_cb, &rcloses);
    assert_int_equal(gust_stream_read_until_close(k.s, GUST_READ_STREAMING,
                                                  sink_read_cb, &k), 0);
    done_calls = 0;
    assert_int_equal(gust_stream_write(w, "<", 1, NULL, NULL), 0);
    assert_int_equal(gust_stream_sendfile(w, ffd, (off_t)off, len, done_cb, NULL), 0);
    assert_int_equal(gust_stream_write(w, ">", 1, NULL, NULL), 0);
    assert_int_equal(done_calls, 0);
    run_until_set(loop, &done_calls);
    assert_int_equal(done_status, 0);
    while (gust_stream_writing(w))
        assert_int_equal(gust_loop_run_once(loop, 0.01), 0);
    gust_stream_close(w);
    run_until_set(loop, &k.eof);
    assert_int_equal(k.len, len + 2);
    assert_int_equal(k.data[0], '<');
    assert_int_equal(k.data[len + 1], '>');
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)k.data[1 + i] != pattern_byte(off + i))
            fail_msg("byte %zu differs", i);
    run_until_set(loop, &rcloses);
    assert_int_equal(closes, 1);
    assert_int_equal(gust_loop_free(loop), 0);
    close(ffd);
    free(k.data);
}

/* With no max_write_buffer_size, a stream whose peer reads nothing queues
 * at most 64 MiB of copies: then writes fail with GUST_EBUFFERFULL and queue
 * nothing. A queued file range holds no memory and does not count. */
static void test_default_write_cap(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    gust_stream *s = gust_stream_new(loop, sv[0], NULL);
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    size_t chunk = 1 << 20;
    char *buf = malloc(chunk);
    memset(buf, 'c', chunk);
    int rc, n = 0;
    while ((rc = gust_stream_write(s, buf, chunk, NULL, NULL)) == 0)
        assert_true(++n < 200);
    assert_int_equal(rc, GUST_EBUFFERFULL);
    size_t queued = gust_stream_write_buffer_size(s);
    assert_true(queued <= (size_t)64 << 20);
    assert_true(queued > ((size_t)64 << 20) - chunk);
    assert_int_equal(gust_stream_write(s, buf, 1, NULL, NULL) == 0,
                     queued < (size_t)64 << 20);
    finish(loop, s, &closes);
    close(sv[1]);

    /* 80 MiB of a (sparse) file queued, then small copies are still taken. */
    loop = gust_loop_new();
    make_pair(sv);
    closes = 0;
    s = gust_stream_new(loop, sv[0], NULL);
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    char path[] = "/tmp/gust_cap_XXXXXX";
    int ffd = mkstemp(path);
    assert_true(ffd >= 0);
    unlink(path);
    assert_int_equal(ftruncate(ffd, (off_t)80 << 20), 0);
    done_calls = 0;
    assert_int_equal(gust_stream_sendfile(s, ffd, 0, (size_t)80 << 20, done_cb,
                                          NULL), 0);
    assert_true(gust_stream_write_buffer_size(s) > (size_t)64 << 20);
    assert_int_equal(gust_stream_write(s, buf, 1000, NULL, NULL), 0);
    assert_int_equal(gust_stream_write(s, buf, chunk, NULL, NULL), 0);
    finish(loop, s, &closes);
    assert_int_equal(done_calls, 1);
    close(ffd);
    close(sv[1]);
    free(buf);
}

static void test_sendfile_socket(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    check_sendfile(sv[0], sv[1]);
}

static void test_sendfile_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    check_sendfile(p[1], p[0]);
}

/* sendfile from a pipe: sendfile() refuses it, pread() too; the stream
 * must fail cleanly, with the callback told. */
static void test_sendfile_bad_source(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2], p[2];
    make_pair(sv);
    assert_int_equal(pipe(p), 0);
    int closes = 0;
    gust_stream *w = gust_stream_new(loop, sv[0], NULL);
    gust_stream_set_close_callback(w, count_close_cb, &closes);
    done_calls = 0;
    assert_int_equal(gust_stream_sendfile(w, p[0], 0, 10, done_cb, NULL), 0);
    run_until_set(loop, &closes);
    assert_int_equal(done_calls, 1);
    assert_int_equal(done_status, GUST_ESTREAMCLOSED);
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
}

/* ---- Write errors -------------------------------------------------------- */

typedef struct errc {
    int error;
    int calls;
} errc;

static void err_close_cb(gust_stream *s, void *user)
{
    errc *e = user;
    e->error = gust_stream_error(s);
    e->calls++;
}

static void check_write_to_gone_reader(int wfd, int rfd)
{
    gust_loop *loop = gust_loop_new();
    errc e = { 0 };
    gust_stream *s = gust_stream_new(loop, wfd, NULL);
    gust_stream_set_close_callback(s, err_close_cb, &e);
    close(rfd);
    done_calls = 0;
    /* No SIGPIPE may kill us here, whatever the disposition. */
    assert_int_equal(gust_stream_write(s, "data", 4, done_cb, NULL), 0);
    assert_true(gust_stream_closed(s));
    assert_int_equal(gust_stream_write(s, "more", 4, done_cb, NULL), GUST_ESTREAMCLOSED);
    run_until_set(loop, &e.calls);
    assert_int_equal(done_calls, 1);
    assert_int_equal(done_status, GUST_ESTREAMCLOSED);
    assert_int_equal(e.error, -EPIPE);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_write_epipe_socket(void **state)
{
    (void)state;
    int sv[2];
    make_pair(sv);
    check_write_to_gone_reader(sv[0], sv[1]);
}

static void test_write_epipe_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    check_write_to_gone_reader(p[1], p[0]);
    /* The SIGPIPE the write raised was consumed, not left pending. */
    sigset_t pending;
    assert_int_equal(sigpending(&pending), 0);
    assert_false(sigismember(&pending, SIGPIPE));
}

static void test_queued_writes_get_closed_status(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    gust_stream *s = gust_stream_new(loop, sv[0], NULL);
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    static char big[2 << 20];
    wlog w = { 0 };
    assert_int_equal(gust_stream_write(s, big, sizeof big, wlog_cb, &w), 0);
    assert_int_equal(gust_stream_write(s, "x", 1, wlog_cb, &w), 0);
    gust_stream_close(s);
    assert_int_equal(gust_stream_write_buffer_size(s), 0);
    assert_false(gust_stream_writing(s));
    run_until_set(loop, &closes);
    assert_int_equal(w.n, 2);
    assert_int_equal(w.status[0], GUST_ESTREAMCLOSED);
    assert_int_equal(w.status[1], GUST_ESTREAMCLOSED);
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
}

/* ---- connect ------------------------------------------------------------- */

typedef struct conn {
    int calls;
    int status;
    bool closed_in_cb;
    int closes;
    int order_connect, order_close, seq;
} conn;

static void conn_cb(gust_stream *s, int status, void *user)
{
    conn *c = user;
    c->calls++;
    c->status = status;
    c->closed_in_cb = gust_stream_closed(s);
    c->order_connect = ++c->seq;
}

static void conn_close_cb(gust_stream *s, void *user)
{
    (void)s;
    conn *c = user;
    c->closes++;
    c->order_close = ++c->seq;
}

static void test_connect_success(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    struct sockaddr_in sin;
    int l = listen_local(&sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    gust_stream *s = gust_stream_new(loop, fd, NULL);
    conn c = { 0 };
    gust_stream_set_close_callback(s, conn_close_cb, &c);
    assert_int_equal(gust_stream_connect(s, (struct sockaddr *)&sin, sizeof sin,
                                         conn_cb, &c), 0);
    assert_int_equal(c.calls, 0);
    assert_int_equal(gust_stream_connect(s, (struct sockaddr *)&sin, sizeof sin,
                                         conn_cb, &c), -EALREADY);
    /* Queued during the connect, sent once it is up. */
    done_calls = 0;
    assert_int_equal(gust_stream_write(s, "hello", 5, done_cb, NULL), 0);
    run_until_set(loop, &c.calls);
    assert_int_equal(c.status, 0);
    assert_false(c.closed_in_cb);
    assert_int_equal(gust_stream_set_nodelay(s, true), 0);
    run_until_set(loop, &done_calls);
    int a = accept(l, NULL, NULL);
    assert_true(a >= 0);
    char buf[8];
    assert_int_equal(read(a, buf, sizeof buf), 5);
    assert_memory_equal(buf, "hello", 5);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(c.calls, 1);
    finish(loop, s, &c.closes);
    close(a);
    close(l);
}

static void test_connect_refused(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    struct sockaddr_in sin;
    int l = listen_local(&sin);
    close(l); /* nothing listens on that port now */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    gust_stream *s = gust_stream_new(loop, fd, NULL);
    conn c = { 0 };
    gust_stream_set_close_callback(s, conn_close_cb, &c);
    done_calls = 0;
    assert_int_equal(gust_stream_connect(s, (struct sockaddr *)&sin, sizeof sin,
                                         conn_cb, &c), 0);
    assert_int_equal(gust_stream_write(s, "lost", 4, done_cb, NULL), 0);
    run_until_set(loop, &c.closes);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.status, -ECONNREFUSED);
    assert_true(c.closed_in_cb);
    assert_true(c.order_connect < c.order_close);
    assert_int_equal(done_calls, 1);
    assert_int_equal(done_status, GUST_ESTREAMCLOSED);
    assert_int_equal(gust_loop_free(loop), 0);
}

#define T(fn) cmocka_unit_test_setup(fn, test_setup)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_write_completion_order),
        T(test_write_64mib_to_slow_reader),
        T(test_max_write_buffer_size),
        T(test_default_write_cap),
        T(test_write_ref_large),
        T(test_sendfile_socket),
        T(test_sendfile_pipe),
        T(test_sendfile_bad_source),
        T(test_write_epipe_socket),
        T(test_write_epipe_pipe),
        T(test_queued_writes_get_closed_status),
        T(test_connect_success),
        T(test_connect_refused),
    };
    int failed = cmocka_run_group_tests_name("stream_write_epoll", tests,
                                             setup_default, teardown_env);
    failed += cmocka_run_group_tests_name("stream_write_poll", tests,
                                          setup_poll, teardown_env);
    return failed;
}
