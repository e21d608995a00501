/* Helpers shared by Gust's unit tests (include after <cmocka.h>).
 *
 * Tests that run once per loop backend use setup_default / setup_poll as
 * group setups and teardown_env as the group teardown; test_setup arms an
 * alarm so a hang fails the test instead of stalling CI. */
#ifndef GUST_TEST_H
#define GUST_TEST_H

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gust/http_server.h"
#include "gust/loop.h"
#include "gust/stream.h"

/* Generous: the suite runs two programs at once under ASan on 2 cores. */
#define GUST_TEST_ALARM_SECONDS 120
#define GUST_TEST_WAIT_SECONDS 60

static inline int setup_default(void **state)
{
    (void)state;
    unsetenv("GUST_LOOP_BACKEND");
    return 0;
}

static inline int setup_poll(void **state)
{
    (void)state;
    setenv("GUST_LOOP_BACKEND", "poll", 1);
    return 0;
}

static inline int teardown_env(void **state)
{
    (void)state;
    unsetenv("GUST_LOOP_BACKEND");
    return 0;
}

static inline int test_setup(void **state)
{
    (void)state;
    alarm(GUST_TEST_ALARM_SECONDS);
    return 0;
}

/* A fresh loop; the test frees it (gust_loop_free() fails on a leaked
 * handle). */
static inline gust_loop *new_loop(void)
{
    gust_loop *loop = gust_loop_new();
    assert_non_null(loop);
    return loop;
}

/* new_loop(), made the thread's current loop, for the calls that take
 * the current one (servers, clients). */
static inline gust_loop *new_current_loop(void)
{
    gust_loop *loop = new_loop();
    gust_loop_make_current(loop);
    return loop;
}

/* n loop iterations that do not wait, so that queued callbacks and
 * coroutines run. */
static inline void spin(gust_loop *loop, int n)
{
    while (n--)
        assert_int_equal(gust_loop_run_once(loop, 0), 0);
}

/* A non-blocking unix socketpair. */
static inline void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK |
                                             SOCK_CLOEXEC, 0, sv), 0);
}

static inline bool int_reached(gust_loop *loop, void *data)
{
    (void)loop;
    return *(int *)data > 0;
}

/* Runs the loop until *counter > 0; fails the test if that takes longer
 * than GUST_TEST_WAIT_SECONDS. */
static inline void run_until_set(gust_loop *loop, int *counter)
{
    assert_int_equal(gust_loop_run_until(loop, int_reached, counter,
                                         GUST_TEST_WAIT_SECONDS), 0);
}

/* A close callback that counts how often it ran in *(int *)user. */
static inline void count_close_cb(gust_stream *s, void *user)
{
    (void)s;
    (*(int *)user)++;
}

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void test_on_all_closed(gust_http_server *srv, void *data)
{
    (void)srv;
    *(bool *)data = true;
}

/* Graceful shutdown of an HTTP server on loop: close_all, run the loop
 * until its done callback (5 s at most), check that no connection is
 * left, free the server. */
static inline void close_http_server(gust_loop *loop, gust_http_server *srv)
{
    bool done = false;
    assert_int_equal(
        gust_http_server_close_all(srv, test_on_all_closed, &done), 0);
    for (int i = 0; i < 500 && !done; i++)
        gust_loop_run_once(loop, 0.01);
    assert_true(done);
    assert_int_equal(gust_http_server_connection_count(srv), 0);
    gust_http_server_free(srv);
}

#endif /* GUST_TEST_H */
