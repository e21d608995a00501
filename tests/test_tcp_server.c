/* Unit tests for the TCP server (include/gust/tcp_server.h): echoing over
 * real connections on 127.0.0.1, the connection cap, the missing
 * handle_stream, and freeing the server while connections live on. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/loop.h"
#include "gust/net.h"
#include "gust/stream.h"
#include "gust/tcp_server.h"

/* ---- Helpers ------------------------------------------------------------- */

static int test_setup(void **state)
{
    (void)state;
    alarm(60);
    return 0;
}

typedef struct goal {
    bool (*done)(void *arg);
    void *arg;
} goal;

static bool goal_reached(gust_loop *loop, void *data)
{
    (void)loop;
    goal *g = data;
    return g->done(g->arg);
}

static int run_until(gust_loop *loop, bool (*done)(void *), void *arg,
                     double timeout)
{
    goal g = {done, arg};
    return gust_loop_run_until(loop, goal_reached, &g, timeout);
}

/* A blocking client socket connected to 127.0.0.1:port (the kernel
 * completes the handshake from the backlog, accepted or not). */
static int connect_client(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    return fd;
}

/* Runs the loop while waiting for up to want bytes on fd (or EOF), at most
 * timeout seconds. Returns the bytes read (0 on EOF), or -1 on timeout. */
static ssize_t pump_recv(gust_loop *loop, int fd, char *buf, size_t want,
                         double timeout)
{
    size_t got = 0;
    for (double t = 0; t < timeout; t += 0.01) {
        ssize_t n = recv(fd, buf + got, want - got, MSG_DONTWAIT);
        if (n == 0)
            return (ssize_t)got;
        if (n > 0) {
            got += (size_t)n;
            if (got == want)
                return (ssize_t)got;
        }
        gust_loop_run_once(loop, 0.01);
    }
    return got ? (ssize_t)got : -1;
}

/* ---- An echo server, as handle_stream -------------------------------- */

typedef struct echo {
    int family; /* of the peers' addresses; 0: AF_INET */
    int accepted;
    int closed;
    gust_stream *streams[8];
} echo;

static void echo_read(gust_stream *s, echo *e);

static void on_echo_line(gust_stream *s, int status, const char *data,
                         size_t len, void *user)
{
    if (status < 0) {
        gust_stream_close(s);
        return;
    }
    gust_stream_write(s, data, len, NULL, NULL);
    echo_read(s, user);
}

static void echo_read(gust_stream *s, echo *e)
{
    if (gust_stream_read_until(s, "\n", 1, 0, on_echo_line, e) < 0)
        gust_stream_close(s);
}

static void on_echo_close(gust_stream *s, void *user)
{
    echo *e = user;
    e->closed++;
    for (int i = 0; i < 8; i++)
        if (e->streams[i] == s)
            e->streams[i] = NULL;
}

static void handle_echo(gust_tcp_server *srv, gust_stream *s,
                        const struct sockaddr *addr, socklen_t addrlen,
                        void *data)
{
    (void)srv;
    echo *e = data;
    assert_int_equal(addr->sa_family, e->family ? e->family : AF_INET);
    if (addr->sa_family == AF_INET)
        assert_int_equal(addrlen, sizeof(struct sockaddr_in));
    if (e->accepted < 8)
        e->streams[e->accepted] = s;
    e->accepted++;
    gust_stream_set_close_callback(s, on_echo_close, e);
    echo_read(s, e);
}

static bool no_connections(void *arg)
{
    return gust_tcp_server_connection_count(arg) == 0;
}

/* ---- Tests --------------------------------------------------------------- */

typedef struct client {
    int connected;
    int status;
    char line[32];
    size_t len;
    int closed;
} client;

static void on_client_connect(gust_stream *s, int status, void *user)
{
    (void)s;
    client *c = user;
    c->connected = 1;
    c->status = status;
}

static void on_client_line(gust_stream *s, int status, const char *data,
                           size_t len, void *user)
{
    (void)s;
    client *c = user;
    assert_int_equal(status, 0);
    assert_true(len < sizeof c->line);
    memcpy(c->line, data, len);
    c->len = len;
}

static void on_client_close(gust_stream *s, void *user)
{
    (void)s;
    ((client *)user)->closed = 1;
}

static bool client_connected(void *arg)
{
    return ((client *)arg)->connected;
}

static bool client_has_line(void *arg)
{
    return ((client *)arg)->len > 0;
}

static bool client_closed(void *arg)
{
    return ((client *)arg)->closed;
}

static void test_listen_echo_stop(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    echo e = {0};
    gust_tcp_server *srv = gust_tcp_server_new(handle_echo, NULL, &e);
    assert_non_null(srv);
    assert_int_equal(gust_tcp_server_port(srv), GUST_ENOTSTARTED);
    assert_int_equal(gust_tcp_server_listen(srv, 0, "127.0.0.1"), 0);
    int port = gust_tcp_server_port(srv);
    assert_true(port > 0);

    /* A client stream connects, sends a line, gets it back. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    gust_stream *cs = gust_stream_new(loop, fd, NULL);
    assert_non_null(cs);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    client c = {0};
    assert_int_equal(gust_stream_connect(cs, (struct sockaddr *)&sin, sizeof sin,
                                         on_client_connect, &c), 0);
    gust_stream_set_close_callback(cs, on_client_close, &c);
    assert_int_equal(run_until(loop, client_connected, &c, 5.0), 0);
    assert_int_equal(c.status, 0);
    assert_int_equal(gust_stream_write(cs, "hello\n", 6, NULL, NULL), 0);
    assert_int_equal(gust_stream_read_until(cs, "\n", 1, 0, on_client_line, &c),
                     0);
    assert_int_equal(run_until(loop, client_has_line, &c, 5.0), 0);
    assert_int_equal(c.len, 6);
    assert_memory_equal(c.line, "hello\n", 6);
    assert_int_equal(e.accepted, 1);
    assert_int_equal(gust_tcp_server_connection_count(srv), 1);

    /* stop: no new connections, but the open one keeps working. */
    assert_int_equal(gust_tcp_server_stop(srv), 0);
    assert_int_equal(gust_tcp_server_port(srv), GUST_ENOTSTARTED);
    int refused = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(refused, (struct sockaddr *)&sin, sizeof sin), -1);
    assert_int_equal(errno, ECONNREFUSED);
    close(refused);
    c.len = 0;
    assert_int_equal(gust_stream_write(cs, "again\n", 6, NULL, NULL), 0);
    assert_int_equal(gust_stream_read_until(cs, "\n", 1, 0, on_client_line, &c),
                     0);
    assert_int_equal(run_until(loop, client_has_line, &c, 5.0), 0);
    assert_memory_equal(c.line, "again\n", 6);

    /* The client closes; the server side sees EOF and closes too. */
    gust_stream_close(cs);
    assert_int_equal(run_until(loop, client_closed, &c, 5.0), 0);
    assert_int_equal(run_until(loop, no_connections, srv, 5.0), 0);
    assert_int_equal(e.closed, 1);
    gust_tcp_server_free(srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_max_connections(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    echo e = {0};
    gust_tcp_server_options opts = {.max_connections = 2};
    gust_tcp_server *srv = gust_tcp_server_new(handle_echo, &opts, &e);
    assert_int_equal(gust_tcp_server_bind(srv, 0, "127.0.0.1"), 0);
    assert_int_equal(gust_tcp_server_start(srv, 1), 0);
    int port = gust_tcp_server_port(srv);

    int c[3];
    for (int i = 0; i < 3; i++)
        c[i] = connect_client(port);
    for (double t = 0; t < 5 && e.accepted < 2; t += 0.05)
        gust_loop_run_once(loop, 0.05);
    assert_int_equal(e.accepted, 2);
    /* At the cap: the third waits in the backlog, unanswered. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(send(c[i], "x\n", 2, 0), 2);
    char buf[4];
    assert_int_equal(pump_recv(loop, c[0], buf, 2, 5.0), 2);
    assert_int_equal(pump_recv(loop, c[1], buf, 2, 5.0), 2);
    assert_int_equal(pump_recv(loop, c[2], buf, 2, 0.3), -1);
    assert_int_equal(e.accepted, 2);
    assert_int_equal(gust_tcp_server_connection_count(srv), 2);

    /* One closes: the server resumes and answers the third. */
    close(c[0]);
    assert_int_equal(pump_recv(loop, c[2], buf, 2, 5.0), 2);
    assert_memory_equal(buf, "x\n", 2);
    assert_int_equal(e.accepted, 3);
    assert_int_equal(gust_tcp_server_connection_count(srv), 2);

    close(c[1]);
    close(c[2]);
    assert_int_equal(run_until(loop, no_connections, srv, 5.0), 0);
    gust_tcp_server_free(srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static int not_implemented_lines;

static void capture_log(int level, const char *module, const char *msg,
                        void *data)
{
    (void)module, (void)data;
    if (level >= GUST_LOG_ERROR && strstr(msg, "handle_stream not implemented"))
        not_implemented_lines++;
}

static void test_no_handle_stream_closes(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_tcp_server *srv = gust_tcp_server_new(NULL, NULL, NULL);
    assert_int_equal(gust_tcp_server_listen(srv, 0, "127.0.0.1"), 0);
    gust_log_set_handler(capture_log, NULL);
    not_implemented_lines = 0;
    int c1 = connect_client(gust_tcp_server_port(srv));
    int c2 = connect_client(gust_tcp_server_port(srv));
    char buf[4];
    /* EOF: the server closed each connection. */
    assert_int_equal(pump_recv(loop, c1, buf, sizeof buf, 5.0), 0);
    assert_int_equal(pump_recv(loop, c2, buf, sizeof buf, 5.0), 0);
    assert_int_equal(not_implemented_lines, 2);
    gust_log_set_handler(NULL, NULL);
    close(c1);
    close(c2);
    assert_int_equal(run_until(loop, no_connections, srv, 5.0), 0);
    gust_tcp_server_free(srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Connections handed out stay usable after the server is freed, and their
 * closing does not touch it (ASan would catch a use after free). */
static void test_free_with_open_connections(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    echo e = {0};
    gust_tcp_server_options opts = {.max_connections = 1};
    gust_tcp_server *srv = gust_tcp_server_new(handle_echo, &opts, &e);
    assert_int_equal(gust_tcp_server_listen(srv, 0, "127.0.0.1"), 0);
    int c = connect_client(gust_tcp_server_port(srv));
    for (double t = 0; t < 5 && e.accepted < 1; t += 0.05)
        gust_loop_run_once(loop, 0.05);
    assert_int_equal(e.accepted, 1);
    gust_tcp_server_free(srv);

    char buf[4];
    assert_int_equal(send(c, "y\n", 2, 0), 2);
    assert_int_equal(pump_recv(loop, c, buf, 2, 5.0), 2);
    assert_memory_equal(buf, "y\n", 2);
    close(c);
    for (double t = 0; t < 5 && e.closed < 1; t += 0.05)
        gust_loop_run_once(loop, 0.05);
    assert_int_equal(e.closed, 1);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Freed from inside its own handle_stream. */
static void handle_and_free(gust_tcp_server *srv, gust_stream *s,
                            const struct sockaddr *addr, socklen_t addrlen,
                            void *data)
{
    (void)addr, (void)addrlen;
    (*(int *)data)++;
    gust_stream_close(s);
    gust_tcp_server_free(srv);
}

static void test_free_inside_handle_stream(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    int calls = 0;
    gust_tcp_server *srv = gust_tcp_server_new(handle_and_free, NULL, &calls);
    assert_int_equal(gust_tcp_server_listen(srv, 0, "127.0.0.1"), 0);
    int port = gust_tcp_server_port(srv);
    int c[3];
    for (int i = 0; i < 3; i++)
        c[i] = connect_client(port);
    char buf[4];
    assert_int_equal(pump_recv(loop, c[0], buf, sizeof buf, 5.0), 0);
    for (int i = 0; i < 5; i++)
        gust_loop_run_once(loop, 0.02);
    assert_int_equal(calls, 1);
    for (int i = 0; i < 3; i++)
        close(c[i]);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Several binds (here two ports) all accept once started; start() with
 * nothing bound is an error. */
static void test_bind_twice_and_start(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    echo e = {0};
    gust_tcp_server *srv = gust_tcp_server_new(handle_echo, NULL, &e);
    assert_int_equal(gust_tcp_server_start(srv, 1), -EINVAL);
    gust_socket_list *a = gust_bind_sockets(0, "127.0.0.1", NULL);
    gust_socket_list *b = gust_bind_sockets(0, "127.0.0.1", NULL);
    int pa = gust_socket_port(a->fds[0]), pb = gust_socket_port(b->fds[0]);
    assert_int_equal(gust_tcp_server_add_sockets(srv, a), 0);
    assert_int_equal(gust_tcp_server_add_sockets(srv, b), 0);
    assert_int_equal(gust_tcp_server_port(srv), pa);
    int ca = connect_client(pa), cb = connect_client(pb);
    char buf[4];
    assert_int_equal(send(ca, "a\n", 2, 0), 2);
    assert_int_equal(send(cb, "b\n", 2, 0), 2);
    assert_int_equal(pump_recv(loop, ca, buf, 2, 5.0), 2);
    assert_memory_equal(buf, "a\n", 2);
    assert_int_equal(pump_recv(loop, cb, buf, 2, 5.0), 2);
    assert_memory_equal(buf, "b\n", 2);
    close(ca);
    close(cb);
    assert_int_equal(run_until(loop, no_connections, srv, 5.0), 0);
    gust_tcp_server_free(srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* A unix socket from gust_bind_unix_socket() serves like a TCP one. */
static void test_unix_socket(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    char dir[] = "/tmp/gust-tcp-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/sock", dir);
    echo e = {.family = AF_UNIX};
    gust_tcp_server *srv = gust_tcp_server_new(handle_echo, NULL, &e);
    gust_socket_list *list = gust_bind_unix_socket(path, 0600, 0);
    assert_non_null(list);
    assert_int_equal(gust_tcp_server_add_sockets(srv, list), 0);
    assert_int_equal(gust_tcp_server_port(srv), GUST_ENOTSTARTED);

    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, path);
    assert_int_equal(connect(c, (struct sockaddr *)&sun, sizeof sun), 0);
    char buf[4];
    assert_int_equal(send(c, "u\n", 2, 0), 2);
    assert_int_equal(pump_recv(loop, c, buf, 2, 5.0), 2);
    assert_memory_equal(buf, "u\n", 2);
    close(c);
    assert_int_equal(run_until(loop, no_connections, srv, 5.0), 0);
    gust_tcp_server_free(srv);
    unlink(path);
    rmdir(dir);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* start(n != 1) forks; with the current loop already watching fds it must
 * refuse (the children would share its epoll set) and return, not fork. */
static void test_start_refuses_fork_with_loop_in_use(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    echo e = {0};
    gust_tcp_server *first = gust_tcp_server_new(handle_echo, NULL, &e);
    assert_int_equal(gust_tcp_server_listen(first, 0, "127.0.0.1"), 0);
    gust_tcp_server *second = gust_tcp_server_new(handle_echo, NULL, &e);
    assert_int_equal(gust_tcp_server_bind(second, 0, "127.0.0.1"), 0);
    int level = gust_log_level();
    gust_log_set_level(GUST_LOG_NONE);
    assert_int_equal(gust_tcp_server_start(second, 2), GUST_ELOOPINUSE);
    gust_log_set_level(level);
    gust_tcp_server_free(second);
    gust_tcp_server_free(first);
    assert_int_equal(gust_loop_free(loop), 0);
}

#define T(fn) cmocka_unit_test_setup(fn, test_setup)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_listen_echo_stop),
        T(test_max_connections),
        T(test_no_handle_stream_closes),
        T(test_free_with_open_connections),
        T(test_free_inside_handle_stream),
        T(test_bind_twice_and_start),
        T(test_unix_socket),
        T(test_start_refuses_fork_with_loop_in_use),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
