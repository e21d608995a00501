/* Unit tests for streams (include/gust/stream.h): reading, closing and the
 * callback rules. Writes, sendfile and connect are in test_stream_write.c.
 * Every test runs with the default backend and again with poll. */
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
#include <unistd.h>

#include "gust/loop.h"
#include "gust/stream.h"
#define GUST__STREAM_PRIVATE
#include "stream_internal.h"
#include "gust_test.h"

/* A connected TCP pair over 127.0.0.1. */
static void tcp_pair(int *a, int *b)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(l >= 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(l, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(l, 4), 0);
    socklen_t len = sizeof sin;
    assert_int_equal(getsockname(l, (struct sockaddr *)&sin, &len), 0);
    *a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(*a >= 0);
    assert_int_equal(connect(*a, (struct sockaddr *)&sin, sizeof sin), 0);
    *b = accept(l, NULL, NULL);
    assert_true(*b >= 0);
    close(l);
}

static void write_all(int fd, const void *data, size_t len)
{
    assert_int_equal(write(fd, data, len), (ssize_t)len);
}

/* What a read callback saw. */
typedef struct rec {
    int calls;  /* final calls (status != GUST_STREAM_CHUNK) */
    int chunks;
    int status;
    char *data;
    size_t len;
    int closes;
    int order;  /* sequence number of the last final call */
} rec;

static int seq;

static void rec_append(rec *r, const char *data, size_t len)
{
    if (!len)
        return;
    r->data = realloc(r->data, r->len + len + 1);
    assert_non_null(r->data);
    memcpy(r->data + r->len, data, len);
    r->len += len;
    r->data[r->len] = '\0';
}

static void rec_cb(gust_stream *s, int status, const char *data, size_t len,
                   void *user)
{
    (void)s;
    rec *r = user;
    rec_append(r, data, len);
    if (status == GUST_STREAM_CHUNK) {
        r->chunks++;
    } else {
        r->calls++;
        r->status = status;
        r->order = ++seq;
    }
}

static void rec_close_cb(gust_stream *s, void *user)
{
    (void)s;
    rec *r = user;
    r->closes++;
    r->order = ++seq;
}

static void rec_reset(rec *r)
{
    free(r->data);
    memset(r, 0, sizeof *r);
}

static gust_stream *new_stream(gust_loop *loop, int fd,
                               const gust_stream_options *opts, rec *closes)
{
    gust_stream *s = gust_stream_new(loop, fd, opts);
    assert_non_null(s);
    if (closes)
        gust_stream_set_close_callback(s, rec_close_cb, closes);
    return s;
}

/* Closes s (if open), runs until its close callback, checks the loop is
 * left with nothing registered, and frees it. */
static void finish(gust_loop *loop, gust_stream *s, rec *closes)
{
    if (s && !closes->closes && !gust_stream_closed(s))
        gust_stream_close(s);
    run_until_set(loop, &closes->closes);
    assert_int_equal(closes->closes, 1);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- read_until ---------------------------------------------------------- */

typedef struct drip {
    int fd;
    const char *data;
    size_t len, pos;
    gust_timer timer;
} drip;

/* Feeds one byte per timer tick. */
static void drip_tick(gust_timer *t, void *data)
{
    drip *d = data;
    write_all(d->fd, d->data + d->pos++, 1);
    if (d->pos == d->len)
        gust_timer_stop(t);
}

static void test_read_until_one_byte_at_a_time(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec r = { 0 }, c = { 0 };
    gust_stream *s = new_stream(loop, sv[0], NULL, &c);
    drip d = { .fd = sv[1], .data = "GET / HTTP/1.1\r\nHost: a\r\n\r\nnext" };
    d.len = strlen(d.data);
    gust_timer_init(loop, &d.timer);
    assert_int_equal(gust_timer_start(&d.timer, 0.001, 0.001, drip_tick, &d), 0);
    assert_int_equal(gust_stream_read_until(s, "\r\n\r\n", 4, 0, rec_cb, &r), 0);
    assert_true(gust_stream_reading(s));
    run_until_set(loop, &r.calls);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.data, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_false(gust_stream_reading(s));
    /* The rest keeps arriving: the next read gets exactly it. */
    rec r2 = { 0 };
    assert_int_equal(gust_stream_read_bytes(s, 4, 0, rec_cb, &r2), 0);
    run_until_set(loop, &r2.calls);
    assert_string_equal(r2.data, "next");
    assert_false(gust_timer_active(&d.timer));
    /* Idle: the stream holds no read buffer. */
    assert_null(s->rbuf);
    finish(loop, s, &c);
    close(sv[1]);
    rec_reset(&r);
    rec_reset(&r2);
}

static void test_read_until_delimiter_straddles_chunks(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec c = { 0 };
    /* 3-byte reads: every multi-byte delimiter lands across reads. */
    gust_stream_options o = { .read_chunk_size = 3 };
    gust_stream *s = new_stream(loop, sv[0], &o, &c);
    const char *delim = "--boundary-of-twenty"; /* longer than inline */
    char msg[256];
    snprintf(msg, sizeof msg, "aaaaXYZbbbbbbbb%sccXYZ", delim);
    write_all(sv[1], msg, strlen(msg));
    rec r1 = { 0 }, r2 = { 0 }, r3 = { 0 };
    assert_int_equal(gust_stream_read_until(s, "XYZ", 3, 0, rec_cb, &r1), 0);
    run_until_set(loop, &r1.calls);
    assert_string_equal(r1.data, "aaaaXYZ");
    assert_int_equal(gust_stream_read_until(s, delim, strlen(delim), 0, rec_cb,
                                            &r2), 0);
    run_until_set(loop, &r2.calls);
    char want[64];
    snprintf(want, sizeof want, "bbbbbbbb%s", delim);
    assert_string_equal(r2.data, want);
    assert_int_equal(gust_stream_read_until(s, "XYZ", 3, 0, rec_cb, &r3), 0);
    run_until_set(loop, &r3.calls);
    assert_string_equal(r3.data, "ccXYZ");
    finish(loop, s, &c);
    close(sv[1]);
    rec_reset(&r1);
    rec_reset(&r2);
    rec_reset(&r3);
}

static void test_read_until_max_bytes(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec c = { 0 }, r = { 0 }, r2 = { 0 }, r3 = { 0 };
    gust_stream *s = new_stream(loop, sv[0], NULL, &c);
    write_all(sv[1], "0123456789", 10);
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 5, rec_cb, &r), 0);
    run_until_set(loop, &r.calls);
    assert_int_equal(r.status, GUST_EUNSATISFIABLE);
    assert_int_equal(r.len, 0);
    assert_false(gust_stream_closed(s));
    assert_false(gust_stream_reading(s));
    /* The delimiter is there but would end past max_bytes. */
    write_all(sv[1], "\n", 1);
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 10, rec_cb, &r2), 0);
    run_until_set(loop, &r2.calls);
    assert_int_equal(r2.status, GUST_EUNSATISFIABLE);
    /* The data stayed buffered. */
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 11, rec_cb, &r3), 0);
    run_until_set(loop, &r3.calls);
    assert_int_equal(r3.status, 0);
    assert_string_equal(r3.data, "0123456789\n");
    assert_int_equal(gust_stream_read_until(s, "", 0, 0, rec_cb, &r3), -EINVAL);
    finish(loop, s, &c);
    close(sv[1]);
    rec_reset(&r);
    rec_reset(&r2);
    rec_reset(&r3);
}

static void test_read_until_regex(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec c = { 0 }, r = { 0 }, r2 = { 0 }, r3 = { 0 };
    gust_stream_options o = { .read_chunk_size = 5 };
    gust_stream *s = new_stream(loop, sv[0], &o, &c);
    assert_int_equal(gust_stream_read_until_regex(s, "([", 0, rec_cb, &r), -EINVAL);
    assert_false(gust_stream_reading(s));
    write_all(sv[1], "HEAD\r\n\r\nabc1234;def", 19);
    assert_int_equal(gust_stream_read_until_regex(s, "\r?\n\r?\n", 0, rec_cb, &r), 0);
    run_until_set(loop, &r.calls);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.data, "HEAD\r\n\r\n");
    assert_int_equal(gust_stream_read_until_regex(s, "[0-9]+;", 0, rec_cb, &r2), 0);
    run_until_set(loop, &r2.calls);
    assert_string_equal(r2.data, "abc1234;");
    /* No match within max_bytes. */
    assert_int_equal(gust_stream_read_until_regex(s, "z", 3, rec_cb, &r3), 0);
    run_until_set(loop, &r3.calls);
    assert_int_equal(r3.status, GUST_EUNSATISFIABLE);
    finish(loop, s, &c);
    close(sv[1]);
    rec_reset(&r);
    rec_reset(&r2);
    rec_reset(&r3);
}

/* ---- read_bytes ---------------------------------------------------------- */

static void test_read_bytes_exact_and_partial(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec c = { 0 }, r = { 0 }, r2 = { 0 }, r3 = { 0 };
    gust_stream *s = new_stream(loop, sv[0], NULL, &c);
    assert_int_equal(gust_stream_read_bytes(s, 0, 0, rec_cb, &r), -EINVAL);
    assert_int_equal(gust_stream_read_bytes(s, 6, 0, rec_cb, &r), 0);
    write_all(sv[1], "abc", 3);
    /* Three bytes are not six: several iterations pass without a call. */
    for (int i = 0; i < 5; i++)
        assert_int_equal(gust_loop_run_once(loop, 0.01), 0);
    assert_int_equal(r.calls, 0);
    write_all(sv[1], "defgh", 5);
    run_until_set(loop, &r.calls);
    assert_string_equal(r.data, "abcdef");
    /* Partial: what is there ("gh"), not the 100 asked for. */
    assert_int_equal(gust_stream_read_bytes(s, 100, GUST_READ_PARTIAL, rec_cb, &r2), 0);
    run_until_set(loop, &r2.calls);
    assert_int_equal(r2.status, 0);
    assert_string_equal(r2.data, "gh");
    /* Partial with more available than n. */
    write_all(sv[1], "ijklmn", 6);
    assert_int_equal(gust_stream_read_bytes(s, 4, GUST_READ_PARTIAL, rec_cb, &r3), 0);
    run_until_set(loop, &r3.calls);
    assert_string_equal(r3.data, "ijkl");
    finish(loop, s, &c);
    close(sv[1]);
    rec_reset(&r);
    rec_reset(&r2);
    rec_reset(&r3);
}

static void test_read_bytes_streaming(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec c = { 0 }, r = { 0 };
    gust_stream *s = new_stream(loop, sv[0], NULL, &c);
    assert_int_equal(gust_stream_read_bytes(s, 10, GUST_READ_STREAMING, rec_cb, &r), 0);
    write_all(sv[1], "0123", 4);
    while (r.chunks == 0)
        assert_int_equal(gust_loop_run_once(loop, 1), 0);
    assert_int_equal(r.calls, 0);
    write_all(sv[1], "456", 3);
    while (r.len < 7)
        assert_int_equal(gust_loop_run_once(loop, 1), 0);
    write_all(sv[1], "789tail", 7);
    run_until_set(loop, &r.calls);
    assert_int_equal(r.status, 0);
    assert_true(r.chunks >= 2);
    assert_string_equal(r.data, "0123456789"); /* not the tail */
    rec r2 = { 0 };
    assert_int_equal(gust_stream_read_bytes(s, 4, 0, rec_cb, &r2), 0);
    run_until_set(loop, &r2.calls);
    assert_string_equal(r2.data, "tail");
    finish(loop, s, &c);
    close(sv[1]);
    rec_reset(&r);
    rec_reset(&r2);
}

/* ---- read_until_close ---------------------------------------------------- */

static void test_read_until_close(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec c = { 0 }, r = { 0 };
    gust_stream_options o = { .read_chunk_size = 7 };
    gust_stream *s = new_stream(loop, sv[0], &o, &c);
    assert_int_equal(gust_stream_read_until_close(s, 0, rec_cb, &r), 0);
    write_all(sv[1], "all of ", 7);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gust_loop_run_once(loop, 0.01), 0);
    assert_int_equal(r.calls, 0);
    write_all(sv[1], "the data", 8);
    close(sv[1]);
    run_until_set(loop, &c.closes);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.chunks, 0);
    assert_string_equal(r.data, "all of the data");
    assert_true(r.order < c.order);
    assert_int_equal(gust_loop_free(loop), 0);
    rec_reset(&r);
}

static void test_read_until_close_streaming(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec c = { 0 }, r = { 0 };
    gust_stream *s = new_stream(loop, sv[0], NULL, &c);
    write_all(sv[1], "one ", 4);
    assert_int_equal(gust_stream_read_until_close(s, GUST_READ_STREAMING, rec_cb, &r), 0);
    while (r.chunks == 0)
        assert_int_equal(gust_loop_run_once(loop, 1), 0);
    assert_string_equal(r.data, "one ");
    write_all(sv[1], "two", 3);
    close(sv[1]);
    run_until_set(loop, &c.closes);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.data, "one two");
    assert_int_equal(gust_loop_free(loop), 0);
    rec_reset(&r);
}

static void test_read_until_close_ended_locally(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec c = { 0 }, r = { 0 };
    gust_stream *s = new_stream(loop, sv[0], NULL, &c);
    write_all(sv[1], "kept", 4);
    assert_int_equal(gust_stream_read_until_close(s, 0, rec_cb, &r), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gust_loop_run_once(loop, 0.01), 0);
    assert_int_equal(r.calls, 0);
    /* A local close completes it with what was buffered. */
    gust_stream_close(s);
    run_until_set(loop, &c.closes);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.data, "kept");
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
    rec_reset(&r);
}

static void test_regex_pending_at_close(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec c = { 0 }, r = { 0 };
    gust_stream *s = new_stream(loop, sv[0], NULL, &c);
    write_all(sv[1], "no match here", 13);
    assert_int_equal(gust_stream_read_until_regex(s, "x{3}", 0, rec_cb, &r), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gust_loop_run_once(loop, 0.01), 0);
    assert_true(gust_stream_reading(s));
    /* The compiled pattern is freed with the read (ASan checks). */
    gust_stream_close(s);
    run_until_set(loop, &c.closes);
    assert_int_equal(r.status, GUST_ESTREAMCLOSED);
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
    rec_reset(&r);
}

static void test_read_until_close_after_reset(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int a, b;
    tcp_pair(&a, &b);
    rec c = { 0 }, r = { 0 };
    gust_stream *s = new_stream(loop, a, NULL, &c);
    assert_int_equal(gust_stream_read_until_close(s, 0, rec_cb, &r), 0);
    write_all(b, "partial", 7);
    while (s->rend - s->rstart < 7)
        assert_int_equal(gust_loop_run_once(loop, 1), 0);
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    assert_int_equal(setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(b);
    run_until_set(loop, &c.closes);
    /* The error, with what had arrived before it. */
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, -ECONNRESET);
    assert_string_equal(r.data, "partial");
    assert_int_equal(gust_loop_free(loop), 0);
    rec_reset(&r);
}

/* ---- Limits and errors --------------------------------------------------- */

static void test_max_buffer_size(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec c = { 0 }, r = { 0 };
    gust_stream_options o = { .max_buffer_size = 1000, .read_chunk_size = 256 };
    gust_stream *s = new_stream(loop, sv[0], &o, &c);
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, rec_cb, &r), 0);
    char junk[4096];
    memset(junk, 'x', sizeof junk);
    write_all(sv[1], junk, sizeof junk);
    run_until_set(loop, &c.closes);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, GUST_EBUFFERFULL);
    assert_int_equal(r.len, 0);
    assert_true(r.order < c.order);
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
    rec_reset(&r);
}

static void test_max_buffer_size_read_until_close(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec c = { 0 }, r = { 0 }, e = { 0 };
    gust_stream_options o = { .max_buffer_size = 100 };
    gust_stream *s = new_stream(loop, sv[0], &o, &c);
    char junk[300];
    memset(junk, 'y', sizeof junk);
    write_all(sv[1], junk, sizeof junk);
    assert_int_equal(gust_stream_read_until_close(s, 0, rec_cb, &r), 0);
    run_until_set(loop, &c.closes);
    assert_int_equal(r.status, GUST_EBUFFERFULL);
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
    rec_reset(&r);
    rec_reset(&e);
}

static void test_second_read_is_refused(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec c = { 0 }, r = { 0 }, r2 = { 0 };
    gust_stream *s = new_stream(loop, sv[0], NULL, &c);
    assert_int_equal(gust_stream_read_bytes(s, 2, 0, rec_cb, &r), 0);
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, rec_cb, &r2),
                     GUST_EREADPENDING);
    assert_int_equal(gust_stream_read_until_close(s, 0, rec_cb, &r2),
                     GUST_EREADPENDING);
    write_all(sv[1], "ok", 2);
    run_until_set(loop, &r.calls);
    assert_string_equal(r.data, "ok");
    finish(loop, s, &c);
    assert_int_equal(r2.calls, 0);
    close(sv[1]);
    rec_reset(&r);
}

static void test_peer_eof(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec c = { 0 }, r = { 0 }, r2 = { 0 };
    gust_stream *s = new_stream(loop, sv[0], NULL, &c);
    /* Data that arrives with the EOF still completes a read. */
    write_all(sv[1], "line\npartial", 12);
    close(sv[1]);
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, rec_cb, &r), 0);
    run_until_set(loop, &r.calls);
    assert_string_equal(r.data, "line\n");
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, rec_cb, &r2), 0);
    run_until_set(loop, &c.closes);
    assert_int_equal(r2.calls, 1);
    assert_int_equal(r2.status, GUST_ESTREAMCLOSED);
    assert_int_equal(r2.len, 0);
    assert_true(r2.order < c.order);
    assert_int_equal(gust_loop_free(loop), 0);
    rec_reset(&r);
    rec_reset(&r2);
}

typedef struct err_check {
    int error;
    bool closed;
    int calls;
} err_check;

static void err_close_cb(gust_stream *s, void *user)
{
    err_check *e = user;
    e->error = gust_stream_error(s);
    e->closed = gust_stream_closed(s);
    e->calls++;
}

static void test_peer_eof_error_is_zero(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    rec r = { 0 };
    err_check e = { .error = 1 };
    gust_stream *s = gust_stream_new(loop, sv[0], NULL);
    gust_stream_set_close_callback(s, err_close_cb, &e);
    assert_int_equal(gust_stream_read_until(s, "\r\n\r\n", 4, 0, rec_cb, &r), 0);
    close(sv[1]);
    run_until_set(loop, &e.calls);
    assert_int_equal(r.status, GUST_ESTREAMCLOSED);
    assert_int_equal(e.error, 0);
    assert_true(e.closed);
    assert_int_equal(gust_loop_free(loop), 0);
    rec_reset(&r);
}

static void test_peer_reset(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int a, b;
    tcp_pair(&a, &b);
    rec r = { 0 };
    err_check e = { 0 };
    gust_stream *s = gust_stream_new(loop, a, NULL);
    gust_stream_set_close_callback(s, err_close_cb, &e);
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, rec_cb, &r), 0);
    assert_int_equal(gust_loop_run_once(loop, 0.01), 0);
    /* Linger 0: close() sends RST instead of FIN. */
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    assert_int_equal(setsockopt(b, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(b);
    run_until_set(loop, &e.calls);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.status, -ECONNRESET);
    assert_int_equal(e.error, -ECONNRESET);
    assert_int_equal(gust_loop_free(loop), 0);
    rec_reset(&r);
}

/* ---- Callback rules ------------------------------------------------------ */

typedef struct reentry {
    rec first, second, c;
    int queued_order; /* when the callback queued before close ran */
    int close_cb_before_return;
    bool in_register;
    int inline_calls;
} reentry;

static void queued_cb(gust_loop *loop, void *data)
{
    (void)loop;
    reentry *t = data;
    t->queued_order = ++seq;
}

static void second_cb(gust_stream *s, int status, const char *data,
                      size_t len, void *user)
{
    reentry *t = user;
    if (t->in_register)
        t->inline_calls++;
    rec_cb(s, status, data, len, &t->second);
}

static void first_cb(gust_stream *s, int status, const char *data, size_t len,
                     void *user)
{
    reentry *t = user;
    rec_cb(s, status, data, len, &t->first);
    /* "cd" is already buffered: the new read must not complete inside. */
    t->in_register = true;
    assert_int_equal(gust_stream_read_bytes(s, 2, 0, second_cb, t), 0);
    t->in_register = false;
}

static void test_buffered_data_not_delivered_inline(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    reentry t = { 0 };
    gust_stream *s = new_stream(loop, sv[0], NULL, &t.c);
    write_all(sv[1], "abcdef", 6);
    assert_int_equal(gust_stream_read_bytes(s, 2, 0, first_cb, &t), 0);
    run_until_set(loop, &t.second.calls);
    assert_int_equal(t.inline_calls, 0);
    assert_string_equal(t.first.data, "ab");
    assert_string_equal(t.second.data, "cd");
    /* From outside any callback too. */
    rec r = { 0 };
    assert_int_equal(gust_stream_read_bytes(s, 2, 0, rec_cb, &r), 0);
    assert_int_equal(r.calls, 0);
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(r.calls, 1);
    assert_string_equal(r.data, "ef");
    finish(loop, s, &t.c);
    close(sv[1]);
    rec_reset(&t.first);
    rec_reset(&t.second);
    rec_reset(&r);
}

static void closing_read_cb(gust_stream *s, int status, const char *data,
                            size_t len, void *user)
{
    reentry *t = user;
    rec_cb(s, status, data, len, &t->first);
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, second_cb, t), 0);
    assert_int_equal(gust_loop_add_callback(gust_stream_loop(s), queued_cb, t), 0);
    gust_stream_close(s);
    assert_true(gust_stream_closed(s));
    assert_int_equal(gust_stream_fd(s), -1);
    gust_stream_close(s); /* a second close is a no-op */
    /* Nothing ran inside close(). */
    t->close_cb_before_return = t->c.closes + t->second.calls;
    assert_int_equal(gust_stream_read_bytes(s, 1, 0, rec_cb, &t->c),
                     GUST_ESTREAMCLOSED);
    assert_int_equal(gust_stream_write(s, "x", 1, NULL, NULL), GUST_ESTREAMCLOSED);
}

static void test_close_inside_read_callback(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    reentry t = { 0 };
    gust_stream *s = new_stream(loop, sv[0], NULL, &t.c);
    assert_int_equal(gust_stream_read_bytes(s, 3, 0, closing_read_cb, &t), 0);
    write_all(sv[1], "abc", 3);
    run_until_set(loop, &t.c.closes);
    assert_int_equal(t.close_cb_before_return, 0);
    assert_string_equal(t.first.data, "abc");
    assert_int_equal(t.second.calls, 1);
    assert_int_equal(t.second.status, GUST_ESTREAMCLOSED);
    /* Order: the callback queued before close, the read, then close. */
    assert_true(t.queued_order > 0);
    assert_true(t.queued_order < t.second.order);
    assert_true(t.second.order < t.c.order);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(t.c.closes, 1);
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
    rec_reset(&t.first);
    rec_reset(&t.second);
}

typedef struct closer {
    int closes;
    int hook_calls;
    int hook_after_close;
} closer;

static void close_again_cb(gust_stream *s, void *user)
{
    closer *k = user;
    k->closes++;
    gust_stream_close(s); /* no-op */
    assert_int_equal(gust_stream_write(s, "x", 1, NULL, NULL), GUST_ESTREAMCLOSED);
}

static void free_hook(gust_stream *s, void *data)
{
    (void)s;
    closer *k = data;
    k->hook_calls++;
    k->hook_after_close = k->closes;
}

static void test_close_inside_close_callback(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int sv[2];
    make_pair(sv);
    closer k = { 0 };
    gust_stream *s = gust_stream_new(loop, sv[0], NULL);
    gust_stream_set_close_callback(s, close_again_cb, &k);
    gust__stream_set_free_hook(s, free_hook, &k);
    gust_stream_close(s);
    assert_int_equal(k.closes, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(k.closes, 1);
    assert_int_equal(k.hook_calls, 1);
    assert_int_equal(k.hook_after_close, 1);
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
}

static void test_new_rejects_bad_fds(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    errno = 0;
    assert_null(gust_stream_new(loop, -1, NULL));
    assert_int_equal(errno, EBADF);
    char path[] = "/tmp/gust_stream_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_null(gust_stream_new(loop, fd, NULL));
    assert_int_equal(errno, EINVAL);
    assert_true(fcntl(fd, F_GETFD) >= 0); /* left open */
    close(fd);
    /* A stream that never read nor wrote leaves nothing on the loop. */
    int sv[2];
    make_pair(sv);
    rec c = { 0 };
    gust_stream *s = new_stream(loop, sv[0], NULL, &c);
    assert_int_equal(gust_stream_fd(s), sv[0]);
    assert_ptr_equal(gust_stream_loop(s), loop);
    gust_stream_set_data(s, &c);
    assert_ptr_equal(gust_stream_data(s), &c);
    assert_int_equal(gust_stream_set_nodelay(s, true), 0); /* unix: ignored */
    finish(loop, s, &c);
    close(sv[1]);
}

#define T(fn) cmocka_unit_test_setup(fn, test_setup)

/* A plain fd handler that reads what arrives itself. */
static void raw_reader(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop, (void)events;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0)
        *(int *)data += (int)n;
}

/* A stream's fd number reused by a plain handler: the loop must not treat
 * the newcomer as a stream (its batched reads are the stream's). */
static void test_fd_reused_by_plain_handler(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    int a, b;
    tcp_pair(&a, &b);
    rec r = {0}, closes = {0};
    gust_stream *s = new_stream(loop, a, NULL, &closes);
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, rec_cb, &r), 0);
    write_all(b, "one\n", 4);
    run_until_set(loop, &r.calls);
    assert_int_equal(gust_stream_read_until(s, "\n", 1, 0, rec_cb, &r), 0);
    gust_stream_close(s);
    run_until_set(loop, &closes.closes);
    /* a's number is free again: a new socket takes it. */
    int c, peer;
    tcp_pair(&c, &peer);
    int e = dup2(c, a);
    assert_int_equal(e, a);
    close(c);
    int got = 0;
    assert_int_equal(gust_loop_add_handler(loop, e, GUST_READ, raw_reader, &got), 0);
    write_all(peer, "two\n", 4);
    for (int i = 0; i < 100 && got < 4; i++)
        gust_loop_run_once(loop, 0.01);
    assert_int_equal(got, 4);
    assert_int_equal(gust_loop_remove_handler(loop, e), 0);
    close(e), close(peer), close(b);
    assert_int_equal(gust_loop_free(loop), 0);
    rec_reset(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_read_until_one_byte_at_a_time),
        T(test_read_until_delimiter_straddles_chunks),
        T(test_read_until_max_bytes),
        T(test_read_until_regex),
        T(test_read_bytes_exact_and_partial),
        T(test_read_bytes_streaming),
        T(test_read_until_close),
        T(test_read_until_close_streaming),
        T(test_read_until_close_ended_locally),
        T(test_regex_pending_at_close),
        T(test_read_until_close_after_reset),
        T(test_max_buffer_size),
        T(test_max_buffer_size_read_until_close),
        T(test_second_read_is_refused),
        T(test_peer_eof),
        T(test_peer_eof_error_is_zero),
        T(test_peer_reset),
        T(test_buffered_data_not_delivered_inline),
        T(test_close_inside_read_callback),
        T(test_close_inside_close_callback),
        T(test_new_rejects_bad_fds),
        T(test_fd_reused_by_plain_handler),
    };
    int failed = cmocka_run_group_tests_name("stream_epoll", tests,
                                             setup_default, teardown_env);
    failed += cmocka_run_group_tests_name("stream_poll", tests, setup_poll,
                                          teardown_env);
    return failed;
}
