/* Issue 4 audit, the point no client can see from outside: "per-request
 * arena memory, freed when the request ends". A handler hangs a cleanup on
 * its request's arena; a client on one keep-alive connection reads the
 * response and then waits for that cleanup to have run before it sends the
 * next request. If the arena were only released when the next request
 * arrives, or when the connection closes, the client would wait in vain.
 * Both a plain handler and one finishing later from a timer are checked. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/web.h"
#include "gust_test.h"

/* Shared with the client thread. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char events[512];
static int freed; /* cleanups run so far */
static int next_id; /* ids of the tracked requests, from 1 per test */

static void event(const char *what)
{
    pthread_mutex_lock(&lock);
    strncat(events, what, sizeof events - strlen(events) - 1);
    pthread_mutex_unlock(&lock);
}

static void event_id(const char *what, int id)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%s%d,", what, id);
    event(buf);
}

static int freed_count(void)
{
    pthread_mutex_lock(&lock);
    int n = freed;
    pthread_mutex_unlock(&lock);
    return n;
}

typedef struct tracked {
    int id;
} tracked;

static void arena_freed(void *p)
{
    tracked *t = p;
    event_id("free", t->id);
    pthread_mutex_lock(&lock);
    freed++;
    pthread_mutex_unlock(&lock);
}

/* Something of the request's own in its arena, with a cleanup. */
static int track(gust_handler *h)
{
    tracked *t = gust_arena_alloc(gust_handler_arena(h), sizeof *t);
    if (!t)
        return -ENOMEM;
    t->id = ++next_id;
    /* A large allocation too, as a real handler's body would be. */
    if (!gust_arena_alloc(gust_handler_arena(h), 256 * 1024))
        return -ENOMEM;
    if (gust_arena_add_cleanup(gust_handler_arena(h), arena_freed, t) < 0)
        return -ENOMEM;
    event_id("get", t->id);
    return 0;
}

static void on_finish(gust_handler *h)
{
    (void)h;
    event("finish,");
}

static int plain_get(gust_handler *h)
{
    int rc = track(h);
    return rc < 0 ? rc : gust_handler_write_str(h, "plain");
}

static void later(gust_loop *loop, void *data)
{
    (void)loop;
    gust_handler *h = data;
    gust_handler_write_str(h, "later");
    gust_handler_finish(h);
}

static int async_get(gust_handler *h)
{
    int rc = track(h);
    if (rc < 0)
        return rc;
    if (!gust_loop_call_later(gust_handler_loop(h), 0.05, later, h))
        return -ENOMEM;
    return GUST_HANDLER_ASYNC;
}

static const gust_handler_class plain_class = {.get = plain_get,
                                               .on_finish = on_finish};
static const gust_handler_class async_class = {.get = async_get,
                                               .on_finish = on_finish};

static const gust_route routes[] = {
    GUST_ROUTE("/plain", &plain_class), GUST_ROUTE("/async", &async_class),
    GUST_ROUTES_END};

/* ---- Client ------------------------------------------------------------- */

typedef struct client {
    gust_loop *loop;
    int port;
    const char *paths[4];
    int waited_ok;   /* requests after which the cleanup was seen in time */
    int answered;    /* complete responses read */
} client;

/* Reads one response with a Content-Length body. */
static bool read_response(int fd)
{
    char buf[4096];
    size_t len = 0;
    for (;;) {
        ssize_t k = recv(fd, buf + len, sizeof buf - 1 - len, 0);
        if (k <= 0)
            return false;
        len += (size_t)k;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        char *cl = strcasestr(buf, "\r\nContent-Length: ");
        if (end && cl && cl < end) {
            size_t body = (size_t)atoi(cl + 18);
            if (len >= (size_t)(end + 4 - buf) + body)
                return strncmp(buf, "HTTP/1.1 200", 12) == 0;
        }
        if (len >= sizeof buf - 1)
            return false;
    }
}

static void *client_main(void *p)
{
    client *c = p;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)c->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {10, 0};
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        for (int i = 0; i < 4 && c->paths[i]; i++) {
            char req[256];
            int n = snprintf(req, sizeof req,
                             "GET %s HTTP/1.1\r\nHost: t\r\n\r\n",
                             c->paths[i]);
            if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n ||
                !read_response(fd))
                break;
            c->answered++;
            /* The connection stays open and idle: the request's arena
             * must be released anyway (2 s is generous under ASan). */
            for (int t = 0; t < 200 && freed_count() < i + 1; t++)
                usleep(10 * 1000);
            if (freed_count() == i + 1)
                c->waited_ok++;
        }
    }
    if (fd >= 0)
        close(fd);
    gust_loop_stop_threadsafe(c->loop);
    return NULL;
}

static void run(client *c)
{
    gust_loop *loop = gust_loop_new();
    assert_non_null(loop);
    gust_loop_make_current(loop);
    gust_app *app = gust_app_new(routes, NULL);
    assert_non_null(app);
    assert_int_equal(gust_app_listen(app, 0, "127.0.0.1"), 0);
    c->loop = loop;
    c->port = gust_http_server_port(gust_app_server(app));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client_main, c), 0);
    assert_int_equal(gust_loop_start(loop), 0);
    pthread_join(t, NULL);
    gust_http_server *srv = gust_app_server(app);
    for (int i = 0; i < 400 && gust_http_server_connection_count(srv); i++)
        gust_loop_run_once(loop, 0.01);
    gust_app_free(app);
    for (int i = 0; i < 5; i++)
        gust_loop_run_once(loop, 0.001);
    assert_int_equal(gust_loop_free(loop), 0);
}

static int setup(void **state)
{
    (void)state;
    alarm(GUST_TEST_ALARM_SECONDS);
    gust_log_set_level(GUST_LOG_NONE);
    events[0] = '\0';
    freed = 0;
    next_id = 0;
    return 0;
}

static void test_arena_freed_when_plain_request_ends(void **state)
{
    (void)state;
    client c = {.paths = {"/plain", "/plain", "/plain"}};
    run(&c);
    assert_int_equal(c.answered, 3);
    /* Each request's arena went before the next request was even sent. */
    assert_int_equal(c.waited_ok, 3);
    assert_string_equal(events, "get1,finish,free1,get2,finish,free2,"
                                "get3,finish,free3,");
}

static void test_arena_freed_when_async_request_ends(void **state)
{
    (void)state;
    client c = {.paths = {"/async", "/plain"}};
    run(&c);
    assert_int_equal(c.answered, 2);
    assert_int_equal(c.waited_ok, 2);
    /* on_finish first, then the arena, for the timer-finished one too. */
    assert_string_equal(events, "get1,finish,free1,get2,finish,free2,");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_arena_freed_when_plain_request_ends,
                               setup),
        cmocka_unit_test_setup(test_arena_freed_when_async_request_ends,
                               setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
