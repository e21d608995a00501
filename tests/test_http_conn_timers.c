/* Unit tests for the HTTP server's connection deadlines (idle, header and
 * body timeouts), which share one timer per server and a deadline queue
 * per duration (src/http1_connection.c): many connections at once, a
 * deadline moved later by each keep-alive request, timeouts of different
 * lengths side by side, and two servers on one loop. Real sockets on
 * 127.0.0.1, the servers on the test's loop, a blocking client in a thread
 * that records when each connection was closed; the main thread asserts. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gust/http_server.h"
#include "gust/log.h"
#include "gust/loop.h"
#include "gust_test.h"

#define MAX_CONNS 64

static const char REQ[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";

static int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* Sends one request and reads its whole (short, Content-Length) answer.
 * True if it came back complete. */
static bool request(int fd)
{
    if (send(fd, REQ, sizeof REQ - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof REQ - 1))
        return false;
    char buf[4096];
    size_t len = 0;
    while (len < sizeof buf - 1) {
        ssize_t k = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (k <= 0)
            return false;
        len += (size_t)k;
        buf[len] = 0;
        const char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strstr(buf, "Content-Length: ");
        if (end && cl && len >= (size_t)(end + 4 - buf) + (size_t)atol(cl + 16))
            return strncmp(buf, "HTTP/1.1 200 ", 13) == 0;
    }
    return false;
}

/* True if fd shows the server's close (EOF or reset) now. */
static bool is_closed(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0)
        return false;
    char tmp[256];
    return recv(fd, tmp, sizeof tmp, MSG_DONTWAIT) <= 0;
}

typedef struct job {
    gust_loop *loop;
    int port[2];
    void (*fn)(struct job *j);
    /* results: seconds from the start until each connection was closed
     * (-1: not closed before the client gave up) */
    double closed_at[MAX_CONNS];
    int tries, answered;
    bool ok;
} job;

static void *client_main(void *p)
{
    job *j = p;
    j->fn(j);
    gust_loop_stop_threadsafe(j->loop);
    return NULL;
}

static void run_client(gust_loop *loop, job *j)
{
    j->loop = loop;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client_main, j), 0);
    assert_int_equal(gust_loop_start(loop), 0);
    pthread_join(t, NULL);
}

/* Polls the n fds until all are closed or limit seconds have passed,
 * recording each close time (relative to t0) in closed_at. */
static void watch(job *j, const int *fds, int n, double t0, double limit)
{
    for (;;) {
        int open = 0;
        for (int i = 0; i < n; i++) {
            if (j->closed_at[i] >= 0)
                continue;
            if (is_closed(fds[i]))
                j->closed_at[i] = now_s() - t0;
            else
                open++;
        }
        if (open == 0 || now_s() - t0 > limit)
            return;
        usleep(10 * 1000);
    }
}

static void hello(gust_http_request *req, void *data)
{
    (void)data;
    gust_http_request_printf(req, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    gust_http_request_finish(req);
}

static gust_http_server *start(const gust_http_server_options *o)
{
    gust_http_server *srv = gust_http_server_new(gust_http_callback(hello, NULL), o);
    assert_non_null(srv);
    assert_int_equal(gust_http_server_listen(srv, 0, "127.0.0.1"), 0);
    return srv;
}

static void reset_job(job *j)
{
    memset(j, 0, sizeof *j);
    for (int i = 0; i < MAX_CONNS; i++)
        j->closed_at[i] = -1;
}

/* ---- Deadlines of one server's connections ------------------------------- */

/* 0: idle after one request. 1: a request every 0.2 s for 2 s, then
 * idle. 2: a head that never ends (header_timeout, 2 s). 3: idle after
 * one request, opened last. */
static void mixed_client(job *j)
{
    int fds[4];
    double t0 = now_s();
    j->ok = true;
    for (int i = 0; i < 4; i++) {
        fds[i] = client_connect(j->port[0]);
        j->ok &= fds[i] >= 0;
    }
    if (!j->ok)
        return;
    j->ok &= request(fds[0]);
    j->ok &= send(fds[2], REQ, 20, MSG_NOSIGNAL) == 20; /* no blank line */
    j->ok &= request(fds[3]);
    while (now_s() - t0 < 2.0) {
        j->tries++;
        if (request(fds[1]))
            j->answered++;
        watch(j, fds, 4, t0, 0); /* one pass: record what closed */
        usleep(200 * 1000);
    }
    watch(j, fds, 4, t0, 8.0);
    for (int i = 0; i < 4; i++)
        close(fds[i]);
}

static void test_mixed_deadlines(void **state)
{
    (void)state;
    gust_log_set_level(GUST_LOG_ERROR); /* the head timeout warns */
    gust_loop *loop = gust_loop_new();
    assert_non_null(loop);
    gust_loop_make_current(loop); /* the servers run on it */
    gust_http_server_options o = {.idle_connection_timeout = 0.8,
                                  .header_timeout = 2.0};
    gust_http_server *srv = start(&o);
    job j;
    reset_job(&j);
    j.fn = mixed_client;
    j.port[0] = gust_http_server_port(srv);
    run_client(loop, &j);
    assert_true(j.ok);
    /* The idle ones go after about 0.8 s, not before. */
    assert_true(j.closed_at[0] >= 0.7 && j.closed_at[0] < 4.0);
    assert_true(j.closed_at[3] >= 0.7 && j.closed_at[3] < 4.0);
    /* Each request moved the busy one's deadline later: every request was
     * answered, and it closed only about 0.8 s after the last one (sent
     * 1.8 s or more after the start). */
    assert_true(j.tries >= 3);
    assert_int_equal(j.answered, j.tries);
    assert_true(j.closed_at[1] >= 2.5 && j.closed_at[1] < 7.0);
    /* The trickled head has its own, longer deadline. */
    assert_true(j.closed_at[2] >= 1.9 && j.closed_at[2] < 7.0);
    close_http_server(loop, srv);
    assert_int_equal(gust_loop_free(loop), 0);
    gust_log_set_level(GUST_LOG_INFO);
}

/* ---- Many idle connections ----------------------------------------------- */

static void many_client(job *j)
{
    int fds[MAX_CONNS];
    double t0 = now_s();
    j->ok = true;
    for (int i = 0; i < MAX_CONNS; i++) {
        fds[i] = client_connect(j->port[0]);
        j->ok &= fds[i] >= 0 && request(fds[i]);
    }
    if (j->ok)
        watch(j, fds, MAX_CONNS, t0, 6.0);
    for (int i = 0; i < MAX_CONNS; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static void test_many_idle(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    assert_non_null(loop);
    gust_loop_make_current(loop); /* the servers run on it */
    gust_http_server_options o = {.idle_connection_timeout = 0.3};
    gust_http_server *srv = start(&o);
    job j;
    reset_job(&j);
    j.fn = many_client;
    j.port[0] = gust_http_server_port(srv);
    run_client(loop, &j);
    assert_true(j.ok);
    for (int i = 0; i < MAX_CONNS; i++)
        assert_true(j.closed_at[i] >= 0.2 && j.closed_at[i] < 4.0);
    /* Gone by themselves, with nothing left on the loop but the listener. */
    for (int i = 0; i < 100 && gust_http_server_connection_count(srv) > 0; i++)
        gust_loop_run_once(loop, 0.01);
    assert_int_equal(gust_http_server_connection_count(srv), 0);
    close_http_server(loop, srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Two servers, two idle timeouts, one loop ---------------------------- */

static void two_servers_client(job *j)
{
    int fds[2];
    double t0 = now_s();
    fds[0] = client_connect(j->port[0]);
    fds[1] = client_connect(j->port[1]);
    j->ok = fds[0] >= 0 && fds[1] >= 0 && request(fds[0]) && request(fds[1]);
    if (j->ok)
        watch(j, fds, 2, t0, 8.0);
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

static void test_two_servers(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    assert_non_null(loop);
    gust_loop_make_current(loop); /* the servers run on it */
    gust_http_server_options fast = {.idle_connection_timeout = 0.3};
    gust_http_server_options slow = {.idle_connection_timeout = 3.0};
    gust_http_server *a = start(&fast);
    gust_http_server *b = start(&slow);
    job j;
    reset_job(&j);
    j.fn = two_servers_client;
    j.port[0] = gust_http_server_port(a);
    j.port[1] = gust_http_server_port(b);
    run_client(loop, &j);
    assert_true(j.ok);
    assert_true(j.closed_at[0] >= 0.2 && j.closed_at[0] < 2.5);
    assert_true(j.closed_at[1] >= 2.9 && j.closed_at[1] < 7.0);
    close_http_server(loop, a);
    close_http_server(loop, b);
    assert_int_equal(gust_loop_free(loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_mixed_deadlines, test_setup),
        cmocka_unit_test_setup(test_many_idle, test_setup),
        cmocka_unit_test_setup(test_two_servers, test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
