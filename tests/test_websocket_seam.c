/* The hand-over seam every upgrade uses (http_server.h,
 * gust_http_request_detach), tested with a toy protocol rather than
 * WebSocket: after a 101 the connection's stream, and the bytes pipelined
 * behind the upgrade request, belong to the new protocol; the server keeps
 * counting the connection until gust_http_detached_done; close_all asks
 * the protocol to close. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/gust.h"
#include "gust_test.h"

/* The toy protocol: echoes bytes upper-cased; "q" closes. */
typedef struct toy {
    gust_stream *stream;
    gust_http_detached slot;
    int asked_to_close;
} toy;

static int detach_rc, second_detach_rc, toys_gone, all_done;
static toy *last_toy;

static void toy_read(gust_stream *s, int status, const char *data, size_t len,
                     void *user);

static void toy_feed(toy *t, const char *data, size_t len)
{
    char out[256];
    for (size_t i = 0; i < len; i++) {
        if (data[i] == 'q') {
            gust_stream_close(t->stream);
            return;
        }
        out[i % sizeof out] = (char)toupper((unsigned char)data[i]);
        if (i % sizeof out == sizeof out - 1 || i == len - 1)
            gust_stream_write(t->stream, out, i % sizeof out + 1, NULL, NULL);
    }
}

static void toy_read(gust_stream *s, int status, const char *data, size_t len,
                     void *user)
{
    toy *t = user;
    if (status < 0)
        return;
    toy_feed(t, data, len);
    if (!gust_stream_closed(s))
        gust_stream_read_bytes(s, 4096, GUST_READ_PARTIAL, toy_read, t);
}

static void toy_closed(gust_stream *s, void *user)
{
    (void)s;
    toy *t = user;
    gust_http_detached_done(&t->slot);
    toys_gone++;
    if (last_toy == t)
        last_toy = NULL;
    free(t);
}

static void toy_close_all(void *data)
{
    toy *t = data;
    t->asked_to_close++;
    gust_stream_write(t->stream, "BYE", 3, NULL, NULL);
    gust_stream_close(t->stream);
}

static const gust_http_detach_ops toy_ops = {toy_close_all};

static gust_timer late_timer;

static void answer_late(gust_timer *t, void *data)
{
    (void)t;
    gust_http_respond(data, 200, "text/plain", "late", 4);
}

static void handle(gust_http_request *req, void *data)
{
    (void)data;
    if (strcmp(req->path, "/late") == 0) { /* answered asynchronously */
        gust_timer_init(gust_loop_current(), &late_timer);
        gust_timer_start(&late_timer, 0.05, 0, answer_late, req);
        return;
    }
    if (strcmp(req->path, "/upgrade") != 0) {
        gust_http_respond(req, 200, "text/plain", "plain", 5);
        return;
    }
    gust_http_response_set_status(req, 101, NULL);
    gust_http_response_set_header(req, "Upgrade", "toy");
    gust_http_response_set_header(req, "Connection", "Upgrade");
    toy *t = calloc(1, sizeof *t);
    gust_stream *s;
    gust_str rest;
    detach_rc = gust_http_request_detach(req, &t->slot, &toy_ops, t, &s, &rest);
    if (detach_rc < 0) {
        free(t);
        gust_http_respond(req, 400, NULL, NULL, 0);
        return;
    }
    gust_http_detached other;
    second_detach_rc = gust_http_request_detach(req, &other, &toy_ops, t, &s,
                                                &rest);
    t->stream = s;
    last_toy = t;
    gust_stream_set_close_callback(s, toy_closed, t);
    toy_feed(t, rest.ptr, rest.len); /* the pipelined bytes first */
    if (!gust_stream_closed(s))
        gust_stream_read_bytes(s, 4096, GUST_READ_PARTIAL, toy_read, t);
    gust_http_request_finish(req); /* writes nothing more */
}

static gust_http_server *srv;

static char *read_all_until(gust_stream *s, const char *delim, char *buf,
                            size_t size)
{
    gust_value v;
    if (gust_await(gust_stream_read_until_f(s, delim, strlen(delim), 4096),
                   &v) < 0)
        return NULL;
    gust_bytes *b = v.ptr;
    snprintf(buf, size, "%.*s", (int)b->len, b->data);
    gust_value_free(&v);
    return buf;
}

/* A stream connected to srv, with a reference of ours. */
static gust_stream *dial(gust_loop *loop)
{
    gust_value v;
    assert_int_equal(gust_await(gust_tcp_connect_f(loop, "127.0.0.1",
                                                   gust_http_server_port(srv),
                                                   NULL), &v), 0);
    gust_stream *s = v.ptr;
    gust_stream_ref(s);
    return s;
}

static int client_main(gust_loop *loop, gust_value *result, void *data)
{
    (void)result, (void)data;
    gust_value v;
    gust_stream *s = dial(loop);
    /* A plain request, then the upgrade with bytes behind it, in one write. */
    const char req[] = "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                       "Upgrade: toy\r\n\r\nhello.";
    assert_int_equal(gust_await(gust_stream_write_f(s, req, sizeof req - 1), NULL), 0);
    char buf[1024];
    assert_non_null(read_all_until(s, "\r\n\r\nplain", buf, sizeof buf));
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_non_null(read_all_until(s, "\r\n\r\n", buf, sizeof buf));
    assert_true(strncmp(buf, "HTTP/1.1 101 ", 13) == 0);
    assert_non_null(strstr(buf, "\r\nUpgrade: toy\r\n"));
    assert_null(strstr(buf, "Content-Length"));
    assert_null(strstr(buf, "Transfer-Encoding"));
    assert_non_null(read_all_until(s, ".", buf, sizeof buf));
    assert_string_equal(buf, "HELLO."); /* leftover went to the toy */
    assert_int_equal(detach_rc, 0);
    assert_int_equal(second_detach_rc, -EINVAL);
    /* Still counted while detached. */
    assert_int_equal(gust_http_server_connection_count(srv), 1);
    assert_int_equal(gust_await(gust_stream_write_f(s, "more!", 5), NULL), 0);
    assert_non_null(read_all_until(s, "!", buf, sizeof buf));
    assert_string_equal(buf, "MORE!");
    assert_int_equal(gust_await(gust_stream_write_f(s, "q", 1), NULL), 0);
    assert_int_equal(gust_await(gust_stream_read_until_close_f(s), &v), 0);
    gust_value_free(&v);
    gust_stream_close(s);
    gust_stream_unref(s);
    return 0;
}

static bool never(gust_loop *loop, void *data)
{
    (void)loop, (void)data;
    return false;
}

static bool gone(gust_loop *loop, void *data)
{
    (void)loop, (void)data;
    return toys_gone > 0 && gust_http_server_connection_count(srv) == 0;
}

static void test_detach_hands_over_stream_and_leftover(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    srv = gust_http_server_new(gust_http_callback(handle, NULL), NULL);
    assert_int_equal(gust_http_server_listen(srv, 0, "127.0.0.1"), 0);
    toys_gone = 0;
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, client_main, NULL),
                                        30, NULL), 0);
    assert_int_equal(gust_loop_run_until(loop, gone, NULL, 10), 0);
    gust_http_server_free(srv);
    gust_loop_run_until(loop, never, NULL, 0.1); /* last close callbacks */
    assert_int_equal(gust_loop_free(loop), 0);
}

static void on_all_closed(gust_http_server *s, void *data)
{
    (void)s, (void)data;
    all_done++;
}

static int close_all_main(gust_loop *loop, gust_value *result, void *data)
{
    (void)result, (void)data;
    gust_value v;
    gust_stream *s = dial(loop);
    const char req[] = "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n"
                       "Upgrade: toy\r\n\r\n";
    assert_int_equal(gust_await(gust_stream_write_f(s, req, sizeof req - 1), NULL), 0);
    char buf[512];
    assert_non_null(read_all_until(s, "\r\n\r\n", buf, sizeof buf));
    assert_int_equal(gust_await(gust_stream_write_f(s, "x", 1), NULL), 0);
    assert_non_null(read_all_until(s, "X", buf, sizeof buf));
    assert_non_null(last_toy);
    toy *t = last_toy;
    assert_int_equal(gust_http_server_close_all(srv, on_all_closed, NULL), 0);
    assert_int_equal(t->asked_to_close, 1); /* asked, and it closed */
    assert_int_equal(gust_await(gust_stream_read_until_close_f(s), &v), 0);
    gust_bytes *b = v.ptr;
    assert_int_equal(b->len, 3);
    assert_memory_equal(b->data, "BYE", 3);
    gust_value_free(&v);
    gust_stream_unref(s);
    return 0;
}

static int busy_main(gust_loop *loop, gust_value *result, void *data)
{
    (void)result, (void)data;
    gust_stream *s = dial(loop);
    /* The server reads on while /late is handled, so the upgrade behind it
     * finds a read of the server's pending: refused, not half handed over. */
    const char req[] = "GET /late HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /upgrade HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                       "Upgrade: toy\r\n\r\n";
    assert_int_equal(gust_await(gust_stream_write_f(s, req, sizeof req - 1), NULL), 0);
    char buf[512];
    assert_non_null(read_all_until(s, "late", buf, sizeof buf));
    assert_non_null(strstr(buf, "HTTP/1.1 200"));
    assert_non_null(read_all_until(s, "\r\n\r\n", buf, sizeof buf));
    assert_non_null(strstr(buf, "HTTP/1.1 400"));
    assert_int_equal(detach_rc, -EBUSY);
    gust_stream_close(s);
    gust_stream_unref(s);
    return 0;
}

static void test_upgrade_behind_async_request_refused(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    srv = gust_http_server_new(gust_http_callback(handle, NULL), NULL);
    assert_int_equal(gust_http_server_listen(srv, 0, "127.0.0.1"), 0);
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, busy_main, NULL),
                                        30, NULL), 0);
    gust_http_server_free(srv);
    gust_loop_run_until(loop, never, NULL, 0.1);
    assert_int_equal(gust_loop_free(loop), 0);
}

static bool all_closed(gust_loop *loop, void *data)
{
    (void)loop, (void)data;
    return all_done > 0;
}

static void test_close_all_asks_the_new_owner(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    srv = gust_http_server_new(gust_http_callback(handle, NULL), NULL);
    assert_int_equal(gust_http_server_listen(srv, 0, "127.0.0.1"), 0);
    all_done = toys_gone = 0;
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, close_all_main,
                                                         NULL), 30, NULL), 0);
    assert_int_equal(gust_loop_run_until(loop, all_closed, NULL, 10), 0);
    assert_int_equal(toys_gone, 1);
    assert_int_equal(gust_http_server_connection_count(srv), 0);
    gust_http_server_free(srv);
    gust_loop_run_until(loop, never, NULL, 0.1); /* last close callbacks */
    assert_int_equal(gust_loop_free(loop), 0);
}

int main(void)
{
    gust_log_set_level(GUST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_detach_hands_over_stream_and_leftover,
                               test_setup),
        cmocka_unit_test_setup(test_close_all_asks_the_new_owner, test_setup),
        cmocka_unit_test_setup(test_upgrade_behind_async_request_refused,
                               test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
