/* Tests for tcp_server.h: a server on 127.0.0.1 with Gust streams as clients
 * on the same loop: echo through handle_stream, the connection cap, the
 * missing handle_stream, and streams outliving their server. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gust/tcp_server.h"

typedef struct ctx {
    gust_loop *loop;
    gust_tcp_server *srv;
    int accepted;
    gust_stream *server_side[8];
} ctx;

static void echo_line(gust_stream *s, int status, const char *data, size_t len,
                      void *user);

static void server_read(gust_stream *s, void *user)
{
    if (gust_stream_read_until(s, "\n", 1, 0, echo_line, user) < 0)
        gust_stream_close(s);
}

static void echo_line(gust_stream *s, int status, const char *data, size_t len,
                      void *user)
{
    if (status < 0) {
        gust_stream_close(s);
        return;
    }
    gust_stream_write(s, data, len, NULL, NULL);
    server_read(s, user);
}

static void handle_stream(gust_tcp_server *srv, gust_stream *s,
                          const struct sockaddr *addr, socklen_t len, void *data)
{
    ctx *c = data;
    assert_ptr_equal(srv, c->srv);
    assert_int_equal(addr->sa_family, AF_INET);
    assert_true(len >= sizeof(struct sockaddr_in));
    if (c->accepted < 8)
        c->server_side[c->accepted] = s;
    c->accepted++;
    server_read(s, c);
}

/* A client: a Gust stream connected to 127.0.0.1:port. */
typedef struct client {
    gust_stream *s;
    bool connected, got_reply, closed;
    int connect_status;
    char reply[64];
} client;

static void on_client_close(gust_stream *s, void *user)
{
    (void)s;
    ((client *)user)->closed = true;
}

static void on_connect(gust_stream *s, int status, void *user)
{
    (void)s;
    client *cl = user;
    cl->connected = true;
    cl->connect_status = status;
}

static void on_reply(gust_stream *s, int status, const char *data, size_t len,
                     void *user)
{
    (void)s;
    client *cl = user;
    if (status == 0 && len < sizeof cl->reply) {
        memcpy(cl->reply, data, len);
        cl->reply[len] = 0;
    }
    cl->got_reply = status == 0;
}

static void client_open(gust_loop *loop, client *cl, int port)
{
    memset(cl, 0, sizeof *cl);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    cl->s = gust_stream_new(loop, fd, NULL);
    assert_non_null(cl->s);
    gust_stream_set_close_callback(cl->s, on_client_close, cl);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(gust_stream_connect(cl->s, (struct sockaddr *)&a, sizeof a,
                                         on_connect, cl), 0);
}

static void client_ask(client *cl, const char *line)
{
    cl->got_reply = false;
    assert_int_equal(gust_stream_write(cl->s, line, strlen(line), NULL, NULL), 0);
    assert_int_equal(gust_stream_read_until(cl->s, "\n", 1, 0, on_reply, cl), 0);
}

static bool got_reply(gust_loop *loop, void *data)
{
    (void)loop;
    return ((client *)data)->got_reply;
}

static bool is_true(gust_loop *loop, void *data)
{
    (void)loop;
    return *(bool *)data;
}

static void finish(gust_loop *loop)
{
    for (int i = 0; i < 10; i++)
        gust_loop_run_once(loop, 0.01);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_listen_echo_stop(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    gust_loop_make_current(loop);
    ctx c = {.loop = loop};
    c.srv = gust_tcp_server_new(handle_stream, NULL, &c);
    assert_non_null(c.srv);
    assert_int_equal(gust_tcp_server_port(c.srv), GUST_ENOTSTARTED);
    assert_int_equal(gust_tcp_server_listen(c.srv, 0, "127.0.0.1"), 0);
    int port = gust_tcp_server_port(c.srv);
    assert_true(port > 0);

    client cl;
    client_open(loop, &cl, port);
    client_ask(&cl, "hello\n");
    assert_int_equal(gust_loop_run_until(loop, got_reply, &cl, 10), 0);
    assert_string_equal(cl.reply, "hello\n");
    assert_int_equal(c.accepted, 1);
    assert_int_equal(gust_tcp_server_connection_count(c.srv), 1);

    /* Stopping closes the listener, not the open connection. */
    assert_int_equal(gust_tcp_server_stop(c.srv), 0);
    client_ask(&cl, "again\n");
    assert_int_equal(gust_loop_run_until(loop, got_reply, &cl, 10), 0);
    assert_string_equal(cl.reply, "again\n");
    client refused;
    client_open(loop, &refused, port);
    assert_int_equal(gust_loop_run_until(loop, is_true, &refused.connected, 10), 0);
    assert_int_equal(refused.connect_status, -ECONNREFUSED);

    /* The client closes; the server side sees EOF and closes too. */
    gust_stream_close(cl.s);
    for (int i = 0; i < 50 && gust_tcp_server_connection_count(c.srv); i++)
        gust_loop_run_once(loop, 0.05);
    assert_int_equal(gust_tcp_server_connection_count(c.srv), 0);
    gust_tcp_server_free(c.srv);
    finish(loop);
}

static void test_max_connections(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    gust_loop_make_current(loop);
    ctx c = {.loop = loop};
    gust_tcp_server_options o = {.max_connections = 2};
    c.srv = gust_tcp_server_new(handle_stream, &o, &c);
    assert_int_equal(gust_tcp_server_listen(c.srv, 0, "127.0.0.1"), 0);
    int port = gust_tcp_server_port(c.srv);

    client cl[3];
    for (int i = 0; i < 3; i++)
        client_open(loop, &cl[i], port);
    for (int i = 0; i < 3; i++)
        client_ask(&cl[i], "x\n");
    assert_int_equal(gust_loop_run_until(loop, got_reply, &cl[0], 10), 0);
    assert_int_equal(gust_loop_run_until(loop, got_reply, &cl[1], 10), 0);
    /* The third waits in the backlog: connected by the kernel, not served. */
    for (int i = 0; i < 20; i++)
        gust_loop_run_once(loop, 0.01);
    assert_false(cl[2].got_reply);
    assert_int_equal(c.accepted, 2);

    /* One closes: the server resumes accepting and serves the third. */
    gust_stream_close(cl[0].s);
    assert_int_equal(gust_loop_run_until(loop, got_reply, &cl[2], 10), 0);
    assert_int_equal(c.accepted, 3);

    gust_stream_close(cl[1].s);
    gust_stream_close(cl[2].s);
    for (int i = 0; i < 50 && gust_tcp_server_connection_count(c.srv); i++)
        gust_loop_run_once(loop, 0.05);
    gust_tcp_server_free(c.srv);
    finish(loop);
}

static void test_no_handle_stream_closes(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    gust_loop_make_current(loop);
    gust_tcp_server *srv = gust_tcp_server_new(NULL, NULL, NULL);
    assert_int_equal(gust_tcp_server_listen(srv, 0, "127.0.0.1"), 0);
    client cl;
    client_open(loop, &cl, gust_tcp_server_port(srv));
    client_ask(&cl, "anyone?\n");
    assert_int_equal(gust_loop_run_until(loop, is_true, &cl.closed, 10), 0);
    assert_false(cl.got_reply);
    gust_tcp_server_free(srv);
    finish(loop);
}

static void test_streams_outlive_server(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    gust_loop_make_current(loop);
    ctx c = {.loop = loop};
    gust_tcp_server_options o = {.max_connections = 5};
    c.srv = gust_tcp_server_new(handle_stream, &o, &c);
    assert_int_equal(gust_tcp_server_listen(c.srv, 0, "127.0.0.1"), 0);
    client cl;
    client_open(loop, &cl, gust_tcp_server_port(c.srv));
    client_ask(&cl, "one\n");
    assert_int_equal(gust_loop_run_until(loop, got_reply, &cl, 10), 0);

    /* Free the server with the connection open: it keeps working, and its
     * close later must not touch the freed server. */
    gust_tcp_server_free(c.srv);
    client_ask(&cl, "two\n");
    assert_int_equal(gust_loop_run_until(loop, got_reply, &cl, 10), 0);
    assert_string_equal(cl.reply, "two\n");
    gust_stream_close(cl.s);
    finish(loop);
}

int main(void)
{
    alarm(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_echo_stop),
        cmocka_unit_test(test_max_connections),
        cmocka_unit_test(test_no_handle_stream_closes),
        cmocka_unit_test(test_streams_outlive_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
