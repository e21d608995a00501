/* Tests for net.h: listening sockets (TCP on both families, unix), the
 * acceptor (bursts, pause/resume, freeing itself), resolving and
 * connecting. All traffic stays on 127.0.0.1 / ::1. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "gust/net.h"

static bool have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
    bool ok = bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static int family_of(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    return ss.ss_family;
}

/* A blocking client connection to 127.0.0.1:port. */
static int connect_v4(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    return fd;
}

static void test_bind_localhost_both_families_one_port(void **state)
{
    (void)state;
    gust_socket_list *l = gust_bind_sockets(0, "localhost", NULL);
    assert_non_null(l);
    assert_true(l->count >= 1);
    int port = gust_socket_port(l->fds[0]);
    assert_true(port > 0);
    bool v4 = false, v6 = false;
    for (size_t i = 0; i < l->count; i++) {
        assert_int_equal(gust_socket_port(l->fds[i]), port);
        v4 |= family_of(l->fds[i]) == AF_INET;
        v6 |= family_of(l->fds[i]) == AF_INET6;
    }
    /* One socket per family that "localhost" resolves to here (some hosts
     * files list no ::1). */
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *res;
    assert_int_equal(getaddrinfo("localhost", "0", &hints, &res), 0);
    bool want4 = false, want6 = false;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        want4 |= ai->ai_family == AF_INET;
        want6 |= ai->ai_family == AF_INET6 && have_ipv6();
    }
    freeaddrinfo(res);
    assert_int_equal(v4, want4);
    assert_int_equal(v6, want6);
    /* Connecting to the chosen port works. */
    int c = connect_v4(port);
    close(c);
    gust_socket_list_free(l);
}

static void test_bind_ipv6_loopback(void **state)
{
    (void)state;
    if (!have_ipv6())
        skip();
    gust_socket_list *l = gust_bind_sockets(0, "::1", NULL);
    assert_non_null(l);
    assert_int_equal(l->count, 1);
    assert_int_equal(family_of(l->fds[0]), AF_INET6);
    int c = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback,
                             .sin6_port = htons((uint16_t)gust_socket_port(l->fds[0]))};
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
    close(c);
    gust_socket_list_free(l);
}

static void test_bind_ipv4_address_gives_one_socket(void **state)
{
    (void)state;
    gust_bind_options o = {.backlog = 16, .reuse_port = true};
    gust_socket_list *l = gust_bind_sockets(0, "127.0.0.1", &o);
    assert_non_null(l);
    assert_int_equal(l->count, 1);
    assert_int_equal(family_of(l->fds[0]), AF_INET);
    int port = gust_socket_port(l->fds[0]);
    /* SO_REUSEPORT lets a second listener share the port. */
    gust_socket_list *l2 = gust_bind_sockets(port, "127.0.0.1", &o);
    assert_non_null(l2);
    gust_socket_list_free(l2);
    /* Without it, the port is taken. */
    assert_null(gust_bind_sockets(port, "127.0.0.1", NULL));
    assert_int_equal(errno, EADDRINUSE);
    gust_socket_list_free(l);
}

static void test_bind_bad_port_fails(void **state)
{
    (void)state;
    assert_null(gust_bind_sockets(70000, "127.0.0.1", NULL));
    assert_int_equal(errno, EINVAL);
}

typedef struct accepted {
    int count;
    int fds[256];
    int stop_at;
    gust_acceptor *free_me;
} accepted;

static void on_accept(gust_acceptor *a, int fd, const struct sockaddr *addr,
                      socklen_t len, void *data)
{
    (void)a;
    accepted *acc = data;
    assert_true(len > 0);
    assert_int_equal(addr->sa_family, AF_INET);
    acc->fds[acc->count++] = fd;
    if (acc->free_me) {
        gust_acceptor_free(acc->free_me);
        acc->free_me = NULL;
    }
}

static bool reached(gust_loop *loop, void *data)
{
    (void)loop;
    accepted *acc = data;
    return acc->count >= acc->stop_at;
}

static void test_acceptor_burst_and_pause(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    gust_socket_list *l = gust_bind_sockets(0, "127.0.0.1", NULL);
    assert_non_null(l);
    int port = gust_socket_port(l->fds[0]);
    accepted acc = {.stop_at = 100};
    gust_acceptor *a = gust_acceptor_new(loop, l->fds[0], on_accept, &acc);
    assert_non_null(a);
    assert_int_equal(gust_acceptor_fd(a), l->fds[0]);

    int clients[150];
    for (int i = 0; i < 100; i++)
        clients[i] = connect_v4(port);
    assert_int_equal(gust_loop_run_until(loop, reached, &acc, 10), 0);
    assert_int_equal(acc.count, 100);

    /* Paused: connections wait in the backlog. */
    gust_acceptor_pause(a);
    for (int i = 100; i < 150; i++)
        clients[i] = connect_v4(port);
    gust_loop_run_once(loop, 0.2);
    assert_int_equal(acc.count, 100);
    gust_acceptor_resume(a);
    acc.stop_at = 150;
    assert_int_equal(gust_loop_run_until(loop, reached, &acc, 10), 0);
    assert_int_equal(acc.count, 150);

    for (int i = 0; i < 150; i++) {
        close(clients[i]);
        close(acc.fds[i]);
    }
    gust_acceptor_free(a);
    gust_socket_list_free(l);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_acceptor_frees_itself_in_callback(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    gust_socket_list *l = gust_bind_sockets(0, "127.0.0.1", NULL);
    int port = gust_socket_port(l->fds[0]);
    accepted acc = {.stop_at = 1};
    gust_acceptor *a = gust_acceptor_new(loop, l->fds[0], on_accept, &acc);
    acc.free_me = a;
    int c1 = connect_v4(port), c2 = connect_v4(port);
    assert_int_equal(gust_loop_run_until(loop, reached, &acc, 10), 0);
    gust_loop_run_once(loop, 0.05);
    /* Freed after the first: the second stays in the backlog. */
    assert_int_equal(acc.count, 1);
    close(acc.fds[0]);
    close(c1);
    close(c2);
    gust_socket_list_free(l);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_unix_socket(void **state)
{
    (void)state;
    char path[64];
    snprintf(path, sizeof path, "/tmp/gust-test-%ld.sock", (long)getpid());
    /* A stale socket file is replaced. */
    gust_socket_list *old = gust_bind_unix_socket(path, 0600, 0);
    assert_non_null(old);
    gust_socket_list_free(old);
    gust_socket_list *l = gust_bind_unix_socket(path, 0600, 0);
    assert_non_null(l);

    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, path);
    assert_int_equal(connect(c, (struct sockaddr *)&sun, sizeof sun), 0);
    close(c);
    gust_socket_list_free(l);
    unlink(path);

    /* A regular file at the path is never removed. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_null(gust_bind_unix_socket(path, 0600, 0));
    assert_int_equal(errno, EEXIST);
    assert_int_equal(access(path, F_OK), 0);
    unlink(path);
}

typedef struct resolved {
    bool done;
    int status;
    bool saw_v4;
    size_t count;
} resolved;

static void on_resolved(gust_loop *loop, int status, const gust_address *addrs,
                        size_t count, void *data)
{
    (void)loop;
    resolved *r = data;
    r->done = true;
    r->status = status;
    r->count = count;
    for (size_t i = 0; i < count; i++)
        if (addrs[i].addr.ss_family == AF_INET) {
            const struct sockaddr_in *in = (const struct sockaddr_in *)&addrs[i].addr;
            r->saw_v4 |= in->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
                         ntohs(in->sin_port) == 8080;
        }
}

static bool is_done(gust_loop *loop, void *data)
{
    (void)loop;
    return *(bool *)data;
}

static void test_resolve_localhost(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    resolved r = {0};
    assert_int_equal(gust_resolve(loop, "127.0.0.1", 8080, AF_INET, on_resolved, &r), 0);
    assert_false(r.done); /* never inside the call */
    assert_int_equal(gust_loop_run_until(loop, is_done, &r.done, 10), 0);
    assert_int_equal(r.status, 0);
    assert_true(r.count >= 1);
    assert_true(r.saw_v4);

    resolved bad = {0};
    assert_int_equal(gust_resolve(loop, "no-such-host.invalid", 80, AF_UNSPEC,
                                  on_resolved, &bad), 0);
    assert_int_equal(gust_loop_run_until(loop, is_done, &bad.done, 30), 0);
    assert_true(bad.status < 0);
    assert_int_equal(bad.count, 0);
    assert_int_equal(gust_loop_free(loop), 0);
}

typedef struct connected {
    bool done;
    int status;
    gust_stream *stream;
} connected;

static void on_connected(gust_loop *loop, int status, gust_stream *s, void *data)
{
    (void)loop;
    connected *c = data;
    c->done = true;
    c->status = status;
    c->stream = s;
}

static void test_tcp_connect(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    gust_socket_list *l = gust_bind_sockets(0, "127.0.0.1", NULL);
    int port = gust_socket_port(l->fds[0]);

    connected ok = {0};
    assert_int_equal(gust_tcp_connect(loop, "127.0.0.1", port, NULL, on_connected, &ok), 0);
    assert_int_equal(gust_loop_run_until(loop, is_done, &ok.done, 10), 0);
    assert_int_equal(ok.status, 0);
    assert_non_null(ok.stream);
    gust_stream_close(ok.stream);

    /* Nothing listens once the socket is closed. */
    gust_socket_list_free(l);
    connected refused = {0};
    assert_int_equal(gust_tcp_connect(loop, "127.0.0.1", port, NULL, on_connected,
                                      &refused), 0);
    assert_int_equal(gust_loop_run_until(loop, is_done, &refused.done, 10), 0);
    assert_int_equal(refused.status, -ECONNREFUSED);
    assert_null(refused.stream);

    /* Let the closed streams finish closing. */
    for (int i = 0; i < 5; i++)
        gust_loop_run_once(loop, 0);
    assert_int_equal(gust_loop_free(loop), 0);
}

int main(void)
{
    alarm(120);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bind_localhost_both_families_one_port),
        cmocka_unit_test(test_bind_ipv6_loopback),
        cmocka_unit_test(test_bind_ipv4_address_gives_one_socket),
        cmocka_unit_test(test_bind_bad_port_fails),
        cmocka_unit_test(test_acceptor_burst_and_pause),
        cmocka_unit_test(test_acceptor_frees_itself_in_callback),
        cmocka_unit_test(test_unix_socket),
        cmocka_unit_test(test_resolve_localhost),
        cmocka_unit_test(test_tcp_connect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
