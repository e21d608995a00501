/* Unit tests for sockets (include/gust/net.h): binding, accepting,
 * resolving and connecting. Only 127.0.0.1, ::1 and unix sockets. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/loop.h"
#include "gust/net.h"
#include "gust/stream.h"

/* ---- Helpers ------------------------------------------------------------- */

static int test_setup(void **state)
{
    (void)state;
    alarm(60);
    return 0;
}

typedef struct goal {
    const int *count;
    int target;
} goal;

static bool goal_reached(gust_loop *loop, void *data)
{
    (void)loop;
    const goal *g = data;
    return *g->count >= g->target;
}

/* Runs the loop until *count reaches target, for at most timeout seconds.
 * Returns 0 or GUST_ETIMEOUT. */
static int run_until_count(gust_loop *loop, int *count, int target,
                           double timeout)
{
    goal g = {count, target};
    return gust_loop_run_until(loop, goal_reached, &g, timeout);
}

static bool ipv6_loopback_available(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6,
                                .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    bool ok = bind(fd, (struct sockaddr *)&sin6, sizeof sin6) == 0;
    close(fd);
    return ok;
}

/* A blocking client connected to family's loopback at port. */
static int connect_loopback(int family, int port)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_storage ss = {0};
    socklen_t len;
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *sin;
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        sin6->sin6_addr = in6addr_loopback;
        len = sizeof *sin6;
    }
    assert_int_equal(connect(fd, (struct sockaddr *)&ss, len), 0);
    return fd;
}

static int socket_family(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    return ss.ss_family;
}

/* ---- Binding ------------------------------------------------------------- */

static void test_bind_localhost_shares_port(void **state)
{
    (void)state;
    gust_socket_list *list = gust_bind_sockets(0, "localhost", NULL);
    assert_non_null(list);
    bool v6 = ipv6_loopback_available();
    assert_int_equal(list->count, v6 ? 2 : 1);
    int port = gust_socket_port(list->fds[0]);
    assert_true(port > 0);
    bool seen4 = false, seen6 = false;
    for (size_t i = 0; i < list->count; i++) {
        assert_int_equal(gust_socket_port(list->fds[i]), port);
        int fam = socket_family(list->fds[i]);
        seen4 |= fam == AF_INET;
        seen6 |= fam == AF_INET6;
    }
    assert_true(seen4);
    assert_int_equal(seen6, v6);
    /* Each family answers on the shared port. */
    int c4 = connect_loopback(AF_INET, port);
    close(c4);
    if (v6) {
        int c6 = connect_loopback(AF_INET6, port);
        close(c6);
    }
    gust_socket_list_free(list);
}

static void test_bind_ipv6_loopback(void **state)
{
    (void)state;
    if (!ipv6_loopback_available())
        skip();
    gust_socket_list *list = gust_bind_sockets(0, "::1", NULL);
    assert_non_null(list);
    assert_int_equal(list->count, 1);
    assert_int_equal(socket_family(list->fds[0]), AF_INET6);
    int on = 0;
    socklen_t len = sizeof on;
    assert_int_equal(getsockopt(list->fds[0], IPPROTO_IPV6, IPV6_V6ONLY, &on,
                                &len), 0);
    assert_true(on);
    int c = connect_loopback(AF_INET6, gust_socket_port(list->fds[0]));
    close(c);
    gust_socket_list_free(list);
}

static void test_bind_ipv4_one_socket(void **state)
{
    (void)state;
    gust_socket_list *list = gust_bind_sockets(0, "127.0.0.1", NULL);
    assert_non_null(list);
    assert_int_equal(list->count, 1);
    int fd = list->fds[0];
    assert_int_equal(socket_family(fd), AF_INET);
    assert_true(gust_socket_port(fd) > 0);
    assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    int on = 0;
    socklen_t len = sizeof on;
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, &len), 0);
    assert_true(on);
    gust_socket_list_free(list);
    gust_socket_list_free(NULL);
}

static void test_bind_port_in_use(void **state)
{
    (void)state;
    gust_socket_list *first = gust_bind_sockets(0, "127.0.0.1", NULL);
    assert_non_null(first);
    int port = gust_socket_port(first->fds[0]);
    errno = 0;
    assert_null(gust_bind_sockets(port, "127.0.0.1", NULL));
    assert_int_equal(errno, EADDRINUSE);
    /* With SO_REUSEPORT on both, a second listener may share the port. */
    gust_socket_list_free(first);
    gust_bind_options opts = {.reuse_port = true, .family = AF_INET};
    first = gust_bind_sockets(0, "127.0.0.1", &opts);
    assert_non_null(first);
    port = gust_socket_port(first->fds[0]);
    gust_socket_list *second = gust_bind_sockets(port, "127.0.0.1", &opts);
    assert_non_null(second);
    assert_int_equal(gust_socket_port(second->fds[0]), port);
    gust_socket_list_free(second);
    gust_socket_list_free(first);
    errno = 0;
    assert_null(gust_bind_sockets(70000, "127.0.0.1", NULL));
    assert_int_equal(errno, EINVAL);
}

static void test_bind_unix_socket(void **state)
{
    (void)state;
    char dir[] = "/tmp/gust-net-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/sock", dir);

    gust_socket_list *list = gust_bind_unix_socket(path, 0600, 0);
    assert_non_null(list);
    assert_int_equal(list->count, 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);

    int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    strcpy(sun.sun_path, path);
    assert_int_equal(connect(c, (struct sockaddr *)&sun, sizeof sun), 0);
    int s = accept4(list->fds[0], NULL, NULL, SOCK_CLOEXEC);
    assert_true(s >= 0);
    assert_int_equal(write(c, "x", 1), 1);
    char b;
    assert_int_equal(read(s, &b, 1), 1);
    assert_int_equal(b, 'x');
    close(s);
    close(c);
    gust_socket_list_free(list);

    /* The socket file is left behind; binding again replaces it. */
    assert_int_equal(stat(path, &st), 0);
    list = gust_bind_unix_socket(path, 0660, 0);
    assert_non_null(list);
    gust_socket_list_free(list);
    unlink(path);

    /* A regular file is never removed. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    errno = 0;
    assert_null(gust_bind_unix_socket(path, 0600, 0));
    assert_int_equal(errno, EEXIST);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    unlink(path);
    rmdir(dir);
}

/* ---- Accepting ----------------------------------------------------------- */

typedef struct accepted {
    int count;
    int nodelay;  /* how many had TCP_NODELAY */
    int nonblock; /* ... and O_NONBLOCK */
    int free_after; /* > 0: free the acceptor after this many */
} accepted;

static void on_accept(gust_acceptor *a, int fd, const struct sockaddr *addr,
                      socklen_t addrlen, void *data)
{
    accepted *acc = data;
    assert_int_equal(addr->sa_family, AF_INET);
    assert_int_equal(addrlen, sizeof(struct sockaddr_in));
    int on = 0;
    socklen_t len = sizeof on;
    if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, &len) == 0 && on)
        acc->nodelay++;
    if (fcntl(fd, F_GETFL) & O_NONBLOCK)
        acc->nonblock++;
    close(fd);
    if (++acc->count == acc->free_after)
        gust_acceptor_free(a);
}

static void test_acceptor_burst(void **state)
{
    (void)state;
    enum { N = 100 };
    gust_loop *loop = gust_loop_new();
    gust_socket_list *list = gust_bind_sockets(0, "127.0.0.1", NULL);
    assert_non_null(list);
    int port = gust_socket_port(list->fds[0]);
    accepted acc = {0};
    gust_acceptor *a = gust_acceptor_new(loop, list->fds[0], on_accept, &acc);
    assert_non_null(a);
    assert_int_equal(gust_acceptor_fd(a), list->fds[0]);

    int clients[N];
    for (int i = 0; i < N; i++)
        clients[i] = connect_loopback(AF_INET, port);
    /* One readable event accepts a bounded batch, not the whole backlog. */
    assert_int_equal(gust_loop_run_once(loop, 1.0), 0);
    assert_true(acc.count > 0);
    assert_true(acc.count < N);
    assert_int_equal(run_until_count(loop, &acc.count, N, 10.0), 0);
    assert_int_equal(acc.count, N);
    assert_int_equal(acc.nodelay, N);
    assert_int_equal(acc.nonblock, N);

    for (int i = 0; i < N; i++)
        close(clients[i]);
    gust_acceptor_free(a);
    gust_socket_list_free(list);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_acceptor_pause_resume(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    gust_socket_list *list = gust_bind_sockets(0, "127.0.0.1", NULL);
    int port = gust_socket_port(list->fds[0]);
    accepted acc = {0};
    gust_acceptor *a = gust_acceptor_new(loop, list->fds[0], on_accept, &acc);
    assert_non_null(a);

    gust_acceptor_pause(a);
    int c = connect_loopback(AF_INET, port);
    assert_int_equal(run_until_count(loop, &acc.count, 1, 0.3), GUST_ETIMEOUT);
    assert_int_equal(acc.count, 0);
    gust_acceptor_resume(a);
    assert_int_equal(run_until_count(loop, &acc.count, 1, 5.0), 0);
    close(c);

    gust_acceptor_free(a);
    gust_socket_list_free(list);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_acceptor_free_in_callback(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    gust_socket_list *list = gust_bind_sockets(0, "127.0.0.1", NULL);
    int port = gust_socket_port(list->fds[0]);
    accepted acc = {.free_after = 1};
    assert_non_null(gust_acceptor_new(loop, list->fds[0], on_accept, &acc));
    int c[3];
    for (int i = 0; i < 3; i++)
        c[i] = connect_loopback(AF_INET, port);
    assert_int_equal(run_until_count(loop, &acc.count, 1, 5.0), 0);
    /* Nothing more is accepted once the acceptor is gone. */
    run_until_count(loop, &acc.count, 2, 0.2);
    assert_int_equal(acc.count, 1);
    for (int i = 0; i < 3; i++)
        close(c[i]);
    gust_socket_list_free(list);
    assert_int_equal(gust_loop_free(loop), 0);
}

typedef struct captured {
    int fd_warnings; /* "out of file descriptors" lines */
    int again;       /* "accepting ... again" lines */
} captured;

static void capture_log(int level, const char *module, const char *msg,
                        void *data)
{
    captured *cap = data;
    if (strcmp(module, "net") != 0)
        return;
    if (level == GUST_LOG_WARNING && strstr(msg, "out of file descriptors"))
        cap->fd_warnings++;
    if (strstr(msg, "again"))
        cap->again++;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* Out of descriptors: the acceptor logs once, backs off without spinning,
 * and accepts the waiting connections once descriptors are free again. */
static void test_acceptor_emfile_backs_off(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    gust_socket_list *list = gust_bind_sockets(0, "127.0.0.1", NULL);
    int port = gust_socket_port(list->fds[0]);
    accepted acc = {0};
    gust_acceptor *a = gust_acceptor_new(loop, list->fds[0], on_accept, &acc);
    assert_non_null(a);
    int c1 = connect_loopback(AF_INET, port);
    int c2 = connect_loopback(AF_INET, port);

    captured cap = {0};
    gust_log_set_handler(capture_log, &cap);
    /* Fill the descriptor table up to a lowered soft limit. */
    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int top = dup(0);
    close(top);
    struct rlimit low = {(rlim_t)top + 64, old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fillers[128], nfill = 0;
    while (nfill < 128) {
        int fd = dup(0);
        if (fd < 0)
            break;
        fillers[nfill++] = fd;
    }
    assert_int_equal(errno, EMFILE);

    double cpu0 = cpu_seconds();
    assert_int_equal(run_until_count(loop, &acc.count, 1, 0.5), GUST_ETIMEOUT);
    double used = cpu_seconds() - cpu0;
    assert_int_equal(acc.count, 0);
    assert_int_equal(cap.fd_warnings, 1);
    assert_true(used < 0.25);

    for (int i = 0; i < nfill; i++)
        close(fillers[i]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    assert_int_equal(run_until_count(loop, &acc.count, 2, 5.0), 0);
    assert_int_equal(cap.fd_warnings, 1);
    assert_int_equal(cap.again, 1);
    gust_log_set_handler(NULL, NULL);

    close(c1);
    close(c2);
    gust_acceptor_free(a);
    gust_socket_list_free(list);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Resolving and connecting ------------------------------------------ */

typedef struct resolved {
    int done;
    int status;
    size_t count;
    int loopback; /* addresses that are 127.0.0.1 or ::1 with the port */
} resolved;

static void on_resolved(gust_loop *loop, int status, const gust_address *addrs,
                        size_t count, void *data)
{
    (void)loop;
    resolved *r = data;
    r->done++;
    r->status = status;
    r->count = count;
    for (size_t i = 0; i < count; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&addrs[i].addr;
        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *sin = (const void *)sa;
            if (sin->sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
                ntohs(sin->sin_port) == 8888)
                r->loopback++;
        } else if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const void *)sa;
            if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) &&
                ntohs(sin6->sin6_port) == 8888)
                r->loopback++;
        }
    }
}

static void test_resolve_localhost(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    resolved r = {0};
    assert_int_equal(gust_resolve(loop, "localhost", 8888, AF_UNSPEC,
                                  on_resolved, &r), 0);
    assert_int_equal(r.done, 0); /* never inside the call */
    assert_int_equal(run_until_count(loop, &r.done, 1, 10.0), 0);
    assert_int_equal(r.status, 0);
    assert_true(r.count >= 1);
    assert_int_equal(r.loopback, (int)r.count);

    resolved r4 = {0};
    assert_int_equal(gust_resolve(loop, "127.0.0.1", 8888, AF_INET,
                                  on_resolved, &r4), 0);
    assert_int_equal(run_until_count(loop, &r4.done, 1, 10.0), 0);
    assert_int_equal(r4.status, 0);
    assert_int_equal(r4.count, 1);
    assert_int_equal(r4.loopback, 1);
    assert_int_equal(gust_loop_free(loop), 0);
}

typedef struct connected {
    int done;
    int status;
    gust_stream *stream;
    int closed;
} connected;

static void on_connect(gust_loop *loop, int status, gust_stream *stream,
                       void *data)
{
    (void)loop;
    connected *c = data;
    c->done++;
    c->status = status;
    c->stream = stream;
}

static void on_stream_close(gust_stream *stream, void *data)
{
    (void)stream;
    ((connected *)data)->closed++;
}

static void test_tcp_connect(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    gust_socket_list *list = gust_bind_sockets(0, "localhost", NULL);
    assert_non_null(list);
    int port = gust_socket_port(list->fds[0]);
    connected c = {0};
    assert_int_equal(gust_tcp_connect(loop, "localhost", port, NULL, on_connect,
                                      &c), 0);
    assert_int_equal(run_until_count(loop, &c.done, 1, 10.0), 0);
    assert_int_equal(c.status, 0);
    assert_non_null(c.stream);

    /* The connection is real: bytes reach whichever listener took it. */
    assert_int_equal(gust_stream_write(c.stream, "ping", 4, NULL, NULL), 0);
    int server = -1;
    for (int i = 0; i < 100 && server < 0; i++) {
        for (size_t k = 0; k < list->count && server < 0; k++)
            server = accept4(list->fds[k], NULL, NULL, SOCK_CLOEXEC);
        if (server < 0)
            gust_loop_run_once(loop, 0.05);
    }
    assert_true(server >= 0);
    char buf[8] = {0};
    for (int i = 0; i < 100; i++) {
        gust_loop_run_once(loop, 0.01);
        if (recv(server, buf, sizeof buf, MSG_DONTWAIT) == 4)
            break;
    }
    assert_string_equal(buf, "ping");
    close(server);

    gust_stream_set_close_callback(c.stream, on_stream_close, &c);
    gust_stream_close(c.stream);
    assert_int_equal(run_until_count(loop, &c.closed, 1, 5.0), 0);
    gust_socket_list_free(list);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_tcp_connect_refused(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    /* A port bound but not listening: connections to it are refused, and
     * nobody else can take it while the test runs. */
    int hold = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(hold, (struct sockaddr *)&sin, sizeof sin), 0);
    int port = gust_socket_port(hold);

    connected c = {0};
    assert_int_equal(gust_tcp_connect(loop, "127.0.0.1", port, NULL, on_connect,
                                      &c), 0);
    /* A numeric host is tried at once, without the resolver, but the
     * callback still comes from the loop, never from inside the call. */
    assert_int_equal(c.done, 0);
    assert_int_equal(run_until_count(loop, &c.done, 1, 10.0), 0);
    assert_int_equal(c.status, -ECONNREFUSED);
    assert_null(c.stream);
    /* Let the failed stream finish closing. */
    for (int i = 0; i < 5; i++)
        gust_loop_run_once(loop, 0);
    close(hold);
    assert_int_equal(gust_loop_free(loop), 0);
}

#define T(fn) cmocka_unit_test_setup(fn, test_setup)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_bind_localhost_shares_port),
        T(test_bind_ipv6_loopback),
        T(test_bind_ipv4_one_socket),
        T(test_bind_port_in_use),
        T(test_bind_unix_socket),
        T(test_acceptor_burst),
        T(test_acceptor_pause_resume),
        T(test_acceptor_free_in_callback),
        T(test_acceptor_emfile_backs_off),
        T(test_resolve_localhost),
        T(test_tcp_connect),
        T(test_tcp_connect_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
