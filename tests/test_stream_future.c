/* Unit tests for the stream futures (last section of include/gust/stream.h):
 * reads, writes and connects as futures, over socketpairs and over a
 * coroutine echo server on 127.0.0.1. Checks made inside coroutines are
 * recorded and asserted on the test's own stack. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/future.h"
#include "gust/loop.h"
#include "gust/net.h"
#include "gust/stream.h"
#include "gust_test.h"

/* Awaits f from the test's stack; its bytes, or NULL on error (*status). */
static gust_bytes *run_bytes(gust_loop *loop, gust_future *f, int *status,
                             gust_value *hold)
{
    assert_non_null(f);
    *status = gust_loop_run_sync(loop, f, GUST_TEST_WAIT_SECONDS, hold);
    return *status == 0 ? hold->ptr : NULL;
}

/* ---- Over a socketpair ------------------------------------------------- */

static void test_reads_and_write(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    gust_stream *a = gust_stream_new(loop, sv[0], NULL);
    gust_stream *b = gust_stream_new(loop, sv[1], NULL);
    assert_non_null(a);
    assert_non_null(b);
    gust_stream_set_close_callback(a, count_close_cb, &closes);
    gust_stream_set_close_callback(b, count_close_cb, &closes);

    const char msg[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nhello world";
    gust_future *w = gust_stream_write_f(a, msg, sizeof msg - 1);
    assert_non_null(w);
    assert_int_equal(gust_loop_run_sync(loop, w, GUST_TEST_WAIT_SECONDS, NULL),
                     0);

    int st;
    gust_value v;
    gust_bytes *head = run_bytes(loop, gust_stream_read_until_f(b, "\r\n\r\n",
                                                                4, 1024),
                                 &st, &v);
    assert_int_equal(st, 0);
    assert_int_equal(head->len, 27);
    assert_memory_equal(head->data, msg, 27);
    assert_int_equal(head->data[head->len], '\0');
    gust_value_free(&v);

    gust_bytes *word = run_bytes(loop, gust_stream_read_bytes_f(b, 5, 0), &st,
                                 &v);
    assert_int_equal(st, 0);
    assert_string_equal(word->data, "hello");
    gust_value_free(&v);

    gust_bytes *re = run_bytes(loop, gust_stream_read_until_regex_f(b, "o+", 0),
                               &st, &v);
    assert_int_equal(st, 0);
    assert_string_equal(re->data, " wo");
    gust_value_free(&v);

    /* Partial: whatever is there, up to n. */
    gust_bytes *rest = run_bytes(loop,
                                 gust_stream_read_bytes_f(b, 100,
                                                          GUST_READ_PARTIAL),
                                 &st, &v);
    assert_int_equal(st, 0);
    assert_string_equal(rest->data, "rld");
    gust_value_free(&v);

    /* Streaming has no future form. */
    assert_int_equal(gust_loop_run_sync(loop,
                                        gust_stream_read_bytes_f(
                                            b, 1, GUST_READ_STREAMING),
                                        5, NULL),
                     -EINVAL);

    /* A second read while one is pending fails at once, as a future. */
    gust_future *pending = gust_stream_read_until_f(b, "\n", 1, 0);
    assert_false(gust_future_done(pending));
    gust_future *second = gust_stream_read_bytes_f(b, 1, 0);
    assert_true(gust_future_done(second));
    assert_int_equal(gust_future_status(second), GUST_EREADPENDING);
    gust_future_unref(second);

    /* Read until close: the peer writes and closes. */
    gust_future_unref(gust_stream_write_f(a, "tail\nend", 8));
    gust_value line;
    assert_int_equal(gust_loop_run_sync(loop, pending, 10, &line), 0);
    assert_string_equal(((gust_bytes *)line.ptr)->data, "tail\n");
    gust_value_free(&line);
    gust_future *all = gust_stream_read_until_close_f(b);
    spin(loop, 2);
    gust_stream_close(a);
    gust_bytes *end = run_bytes(loop, all, &st, &v);
    assert_int_equal(st, 0);
    assert_int_equal(end->len, 3);
    assert_string_equal(end->data, "end");
    gust_value_free(&v);

    /* b closed itself at the peer's close: both close callbacks run. */
    while (closes < 2)
        assert_int_equal(gust_loop_run_once(loop, 1), 0);

    /* Writing to a closed stream fails, as a future. */
    int sv2[2];
    make_pair(sv2);
    close(sv2[1]);
    gust_stream *c = gust_stream_new(loop, sv2[0], NULL);
    gust_stream_set_close_callback(c, count_close_cb, &closes);
    gust_stream_close(c); /* valid until its close callback has run */
    assert_int_equal(gust_loop_run_sync(loop, gust_stream_write_f(c, "x", 1),
                                        5, NULL),
                     GUST_ESTREAMCLOSED);
    while (closes < 3)
        assert_int_equal(gust_loop_run_once(loop, 1), 0);
    assert_int_equal(closes, 3);
    spin(loop, 2); /* stream futures release their stream a turn later */
    assert_int_equal(gust_loop_free(loop), 0);
}

/* A pending read ends with the stream's error when the peer goes away; a
 * cancelled read's data is dropped without harm. */
static void test_read_errors(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    gust_stream *a = gust_stream_new(loop, sv[0], NULL);
    gust_future *closed = gust_stream_closed_f(a);
    assert_non_null(closed);

    gust_future *r = gust_stream_read_until_f(a, "\n", 1, 0);
    gust_future_cancel(r);
    assert_int_equal(write(sv[1], "abc\n", 4), 4);
    spin(loop, 3);
    assert_int_equal(gust_future_status(r), GUST_ECANCELED);
    gust_future_unref(r);
    /* The read was served (and dropped): the stream takes another. */
    gust_future *r2 = gust_stream_read_until_f(a, "\n", 1, 5);
    assert_int_equal(write(sv[1], "0123456789", 10), 10);
    assert_int_equal(gust_loop_run_sync(loop, r2, 10, NULL),
                     GUST_EUNSATISFIABLE);

    gust_future *r3 = gust_stream_read_bytes_f(a, 100, 0);
    close(sv[1]);
    assert_int_equal(gust_loop_run_sync(loop, r3, 10, NULL),
                     GUST_ESTREAMCLOSED);
    /* The close future: done before the stream is freed, with its error
     * (0: the peer closed cleanly). */
    assert_true(gust_future_done(closed));
    gust_value err;
    assert_int_equal(gust_loop_run_sync(loop, closed, 10, &err), 0);
    assert_null(err.ptr);
    spin(loop, 2); /* stream futures release their stream a turn later */
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Connecting -------------------------------------------------------- */

static int free_port(void)
{
    gust_socket_list *l = gust_bind_sockets(0, "127.0.0.1", NULL);
    assert_non_null(l);
    int port = gust_socket_port(l->fds[0]);
    gust_socket_list_free(l); /* nobody listens there now */
    return port;
}

static void test_connect_refused(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    int port = free_port();
    assert_int_equal(gust_loop_run_sync(loop,
                                        gust_tcp_connect_f(loop, "127.0.0.1",
                                                           port, NULL),
                                        GUST_TEST_WAIT_SECONDS, NULL),
                     -ECONNREFUSED);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    gust_stream *s = gust_stream_new(loop, fd, NULL);
    int closes = 0;
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(gust_loop_run_sync(loop,
                                        gust_stream_connect_f(
                                            s, (struct sockaddr *)&sin,
                                            sizeof sin),
                                        GUST_TEST_WAIT_SECONDS, NULL),
                     -ECONNREFUSED);
    run_until_set(loop, &closes);
    spin(loop, 2); /* stream futures release their stream a turn later */
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Coroutine echo client and server over 127.0.0.1 ------------------- */

#define NLINES 200
static int server_conns, server_closed, server_lines, server_errors;
static int client_errors, client_lines, client_conns_done;
static char client_failure[128];

/* One coroutine per accepted connection: echo lines until the peer
 * closes. */
static int echo_conn(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    (void)result;
    gust_stream *s = data;
    /* Done once s is closed: s must not be touched after that. */
    gust_future *closed = gust_stream_closed_f(s);
    if (!closed) {
        server_errors++;
        gust_stream_close(s);
        return -ENOMEM;
    }
    while (!gust_future_done(closed)) {
        gust_value line;
        int r = gust_await(gust_stream_read_until_f(s, "\n", 1, 4096), &line);
        if (r == GUST_ESTREAMCLOSED)
            break; /* the client is done */
        if (r != 0) {
            server_errors++;
            break;
        }
        gust_bytes *b = line.ptr;
        server_lines++;
        r = gust_await(gust_stream_write_f(s, b->data, b->len), NULL);
        gust_value_free(&line);
        if (r != 0) {
            server_errors++;
            break;
        }
    }
    if (!gust_future_done(closed))
        gust_stream_close(s);
    gust_value err;
    if (gust_await(closed, &err) != 0 || err.ptr != NULL)
        server_errors++; /* the client closes cleanly */
    server_closed++;
    return 0;
}

static void on_accept(gust_acceptor *acc, int fd, const struct sockaddr *addr,
                      socklen_t addrlen, void *data)
{
    (void)acc;
    (void)addr;
    (void)addrlen;
    gust_loop *loop = data;
    gust_stream *s = gust_stream_new(loop, fd, NULL);
    if (!s) {
        close(fd);
        server_errors++;
        return;
    }
    server_conns++;
    gust_future *co = gust_spawn(loop, echo_conn, s);
    if (!co) {
        server_errors++;
        gust_stream_close(s);
    }
    gust_future_unref(co);
}

static void client_fail(const char *what, int r)
{
    client_errors++;
    snprintf(client_failure, sizeof client_failure, "%s: %s", what,
             gust_strerror(r));
}

static int echo_client(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    int port = (int)(intptr_t)data;
    gust_value conn;
    int r = gust_await(gust_tcp_connect_f(loop, "127.0.0.1", port, NULL),
                       &conn);
    if (r != 0) {
        client_fail("connect", r);
        return r;
    }
    gust_stream *s = conn.ptr; /* ours now */
    gust_future *closed = gust_stream_closed_f(s);
    char line[64];
    for (int i = 0; i < NLINES && r == 0 && !gust_future_done(closed); i++) {
        int n = snprintf(line, sizeof line, "line %d from the client\n", i);
        /* Write without waiting, then await the echo. */
        gust_future_unref(gust_stream_write_f(s, line, (size_t)n));
        gust_value echo;
        r = gust_await(gust_stream_read_until_f(s, "\n", 1, 0), &echo);
        if (r != 0) {
            client_fail("read", r);
            break;
        }
        gust_bytes *b = echo.ptr;
        if (b->len != (size_t)n || memcmp(b->data, line, (size_t)n) != 0)
            client_fail("echo differs", 0);
        else
            client_lines++;
        gust_value_free(&echo);
    }
    if (!gust_future_done(closed))
        gust_stream_close(s);
    gust_future_unref(closed);
    client_conns_done++;
    return r;
}

static void test_echo_coroutines(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    server_conns = server_closed = server_lines = server_errors = 0;
    client_errors = client_lines = client_conns_done = 0;
    client_failure[0] = '\0';
    gust_socket_list *socks = gust_bind_sockets(0, "127.0.0.1", NULL);
    assert_non_null(socks);
    int port = gust_socket_port(socks->fds[0]);
    gust_acceptor *acc = gust_acceptor_new(loop, socks->fds[0], on_accept,
                                           loop);
    assert_non_null(acc);

    /* Three clients at once. */
    gust_future *clients[3];
    for (int i = 0; i < 3; i++)
        clients[i] = gust_spawn(loop, echo_client, (void *)(intptr_t)port);
    int r = gust_loop_run_sync(loop, gust_all(loop, clients, 3),
                               GUST_TEST_WAIT_SECONDS, NULL);
    if (r != 0)
        print_message("client: %s\n", client_failure);
    assert_int_equal(r, 0);
    assert_int_equal(client_errors, 0);
    assert_int_equal(client_lines, 3 * NLINES);
    assert_int_equal(client_conns_done, 3);

    /* The server coroutines see the clients close, and close too. */
    int want = 3;
    while (server_closed < want) {
        assert_int_equal(gust_loop_run_once(loop, 1), 0);
    }
    assert_int_equal(server_conns, 3);
    assert_int_equal(server_lines, 3 * NLINES);
    assert_int_equal(server_errors, 0);
    gust_acceptor_free(acc);
    gust_socket_list_free(socks);
    spin(loop, 2);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* A connected stream nobody takes is closed with its future. */
static void test_connect_result_not_taken(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    server_conns = server_closed = server_errors = 0;
    gust_socket_list *socks = gust_bind_sockets(0, "127.0.0.1", NULL);
    int port = gust_socket_port(socks->fds[0]);
    gust_acceptor *acc = gust_acceptor_new(loop, socks->fds[0], on_accept,
                                           loop);
    /* run_sync without a result: the future frees the stream, closing it,
     * and the server's echo coroutine sees the close. */
    assert_int_equal(gust_loop_run_sync(loop,
                                        gust_tcp_connect_f(loop, "127.0.0.1",
                                                           port, NULL),
                                        GUST_TEST_WAIT_SECONDS, NULL),
                     0);
    double t0 = now_s();
    while (server_closed < 1 && now_s() - t0 < GUST_TEST_WAIT_SECONDS)
        assert_int_equal(gust_loop_run_once(loop, 0.5), 0);
    assert_int_equal(server_closed, 1);
    assert_int_equal(server_errors, 0);
    gust_acceptor_free(acc);
    gust_socket_list_free(socks);
    spin(loop, 3);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Lifetime: a coroutine resumed after its stream closed -------------- */

typedef struct after_close {
    gust_stream *s;
    bool wrap;          /* await through gust_with_timeout */
    int read_status;
    bool closed;
    int error, write_status, read_again;
} after_close;

/* Awaits a read the peer answers by closing; then looks at the stream,
 * which its close dispatch completed and would have freed at once. */
static int reader_after_close(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    after_close *ac = data;
    gust_future *f = gust_stream_read_until_f(ac->s, "\n", 1, 0);
    if (ac->wrap)
        f = gust_with_timeout(loop, f, GUST_TEST_WAIT_SECONDS);
    ac->read_status = gust_await(f, NULL);
    ac->closed = gust_stream_closed(ac->s);
    ac->error = gust_stream_error(ac->s);
    ac->write_status = gust_stream_write(ac->s, "x", 1, NULL, NULL);
    ac->read_again = gust_await(gust_stream_read_bytes_f(ac->s, 1, 0), NULL);
    gust_stream_close(ac->s); /* a no-op now */
    return 0;
}

static void run_after_close(bool wrap)
{
    gust_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    after_close ac = {.wrap = wrap};
    ac.s = gust_stream_new(loop, sv[0], NULL);
    assert_non_null(ac.s);
    gust_stream_set_close_callback(ac.s, count_close_cb, &closes);
    gust_future *co = gust_spawn(loop, reader_after_close, &ac);
    spin(loop, 2); /* the coroutine waits in its read */
    assert_false(gust_future_done(co));
    close(sv[1]); /* EOF: the stream closes, the read fails */
    assert_int_equal(gust_loop_run_sync(loop, co, GUST_TEST_WAIT_SECONDS, NULL),
                     0);
    assert_int_equal(closes, 1);
    assert_int_equal(ac.read_status, GUST_ESTREAMCLOSED);
    assert_true(ac.closed);
    assert_int_equal(ac.error, 0);
    assert_int_equal(ac.write_status, GUST_ESTREAMCLOSED);
    assert_int_equal(ac.read_again, GUST_ESTREAMCLOSED);
    spin(loop, 2); /* the last reference goes: freed (ASan: no leak) */
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_resumed_after_close(void **state)
{
    (void)state;
    run_after_close(false);
}

static void test_resumed_after_close_through_timeout(void **state)
{
    (void)state;
    run_after_close(true);
}

static void never_read(gust_stream *s, int status, const char *data,
                       size_t len, void *user)
{
    (void)s, (void)status, (void)data, (void)len, (void)user;
    fail_msg("a read on a closed stream was accepted");
}

/* gust_stream_ref() from plain callback code: the memory outlives the
 * close callback until the unref; a ref dropped before the close changes
 * nothing. */
static void test_ref_unref(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    int closes = 0;
    gust_stream *s = gust_stream_new(loop, sv[0], NULL);
    gust_stream_set_close_callback(s, count_close_cb, &closes);
    gust_stream_ref(s);
    gust_stream_ref(s);
    gust_stream_unref(s); /* still open: nothing happens */
    assert_false(gust_stream_closed(s));
    gust_stream_close(s);
    run_until_set(loop, &closes);
    spin(loop, 2);
    /* After the close callback, through the reference. */
    assert_true(gust_stream_closed(s));
    assert_int_equal(gust_stream_error(s), 0);
    assert_int_equal(gust_stream_fd(s), -1);
    assert_int_equal(gust_stream_write(s, "x", 1, NULL, NULL),
                     GUST_ESTREAMCLOSED);
    assert_int_equal(gust_stream_read_bytes(s, 1, 0, never_read, NULL),
                     GUST_ESTREAMCLOSED);
    gust_stream_close(s);
    assert_int_equal(closes, 1);
    /* A close future on it answers at once with the close's error. */
    gust_future *cf = gust_stream_closed_f(s);
    assert_true(gust_future_done(cf));
    assert_int_equal(gust_future_status(cf), 0);
    assert_null(gust_future_result(cf));
    gust_future_unref(cf);
    gust_stream_unref(s); /* freed here */
    assert_int_equal(gust_loop_free(loop), 0);
    close(sv[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_reads_and_write, test_setup),
        cmocka_unit_test_setup(test_resumed_after_close, test_setup),
        cmocka_unit_test_setup(test_resumed_after_close_through_timeout,
                               test_setup),
        cmocka_unit_test_setup(test_ref_unref, test_setup),
        cmocka_unit_test_setup(test_read_errors, test_setup),
        cmocka_unit_test_setup(test_connect_refused, test_setup),
        cmocka_unit_test_setup(test_echo_coroutines, test_setup),
        cmocka_unit_test_setup(test_connect_result_not_taken, test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
