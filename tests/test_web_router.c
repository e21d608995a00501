/* Routing (web.h): anchoring, capture groups and their decoding, named
 * groups, host patterns, the default handler, reverse URLs. Requests go
 * over real sockets on 127.0.0.1 from a client thread while the loop runs
 * in the test's thread. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "gust/gust.h"
#include "gust/web.h"
#include "gust_test.h"

/* Each handler answers "<name> arg0|arg1|... kw=<name group>". */
static int echo_args(gust_handler *h)
{
    const gust_handler_class *c = gust_handler_get_class(h);
    gust_handler_printf(h, "%s", c->name);
    for (size_t i = 0; i < gust_handler_path_arg_count(h); i++) {
        const char *a = gust_handler_path_arg(h, i);
        gust_handler_printf(h, "%s%s", i ? "|" : " ", a ? a : "(none)");
    }
    const char *kw = gust_handler_path_kwarg(h, "name");
    if (kw)
        gust_handler_printf(h, " kw=%s", kw);
    return 0;
}

static const gust_handler_class root = {.name = "root", .get = echo_args};
static const gust_handler_class item = {.name = "item", .get = echo_args};
static const gust_handler_class named = {.name = "named", .get = echo_args};
static const gust_handler_class opt = {.name = "opt", .get = echo_args};
static const gust_handler_class api = {.name = "api", .get = echo_args};
static const gust_handler_class fallback = {.name = "fallback", .get = echo_args};

static const gust_route routes[] = {
    GUST_ROUTE("/", &root, .name = "root"),
    GUST_ROUTE("/item/([0-9]+)", &item, .name = "item"),
    GUST_ROUTE("/user/(?<name>[^/]+)/(\\w+)", &named),
    GUST_ROUTE("/opt/(a)?(b)", &opt),
    GUST_ROUTE("/", &api, .host = "api\\.example\\.com"),
    GUST_ROUTE("/file/(.*)", &item, .name = "file"),
    GUST_ROUTES_END,
};

typedef struct client {
    int port;
    const char *const *requests; /* raw request heads, NULL-terminated */
    char answers[16][512];
    gust_loop *loop;
} client;

/* One request per connection; keeps status line + body. */
static void *client_main(void *arg)
{
    client *c = arg;
    for (int i = 0; c->requests[i]; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET,
                                .sin_port = htons((uint16_t)c->port)};
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        char buf[4096];
        size_t got = 0;
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
            write(fd, c->requests[i], strlen(c->requests[i])) > 0) {
            ssize_t n;
            while (got < sizeof buf - 1 &&
                   (n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
                got += (size_t)n;
        }
        buf[got] = '\0';
        close(fd);
        const char *eol = strstr(buf, "\r\n");
        const char *body = strstr(buf, "\r\n\r\n");
        snprintf(c->answers[i], sizeof c->answers[i], "%.*s: %s",
                 eol ? (int)(eol - buf - 9) : 0, eol ? buf + 9 : "",
                 body ? body + 4 : "");
    }
    gust_loop_stop_threadsafe(c->loop);
    return NULL;
}

static bool never(gust_loop *loop, void *data)
{
    (void)loop, (void)data;
    return false;
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n"

static void run_requests(const gust_app_settings *s, const char *const *reqs,
                         client *c)
{
    gust_loop *loop = gust_loop_current();
    gust_app *app = gust_app_new(routes, s);
    assert_non_null(app);
    assert_int_equal(gust_app_listen(app, 0, "127.0.0.1"), 0);
    memset(c, 0, sizeof *c);
    c->port = gust_http_server_port(gust_app_server(app));
    c->requests = reqs;
    c->loop = loop;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client_main, c), 0);
    assert_int_equal(gust_loop_start(loop), 0);
    pthread_join(t, NULL);
    gust_app_free(app);
    /* Close callbacks of the connections run before the loop is freed. */
    gust_loop_run_until(loop, never, NULL, 0.05);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_routing(void **state)
{
    (void)state;
    gust_log_set_level(GUST_LOG_WARNING);
    static const char *const reqs[] = {
        GET("/"),
        GET("/item/42"),
        GET("/item/42/"),          /* anchored at the end */
        GET("/x/item/42"),         /* anchored at the start */
        GET("/item/4a"),
        GET("/user/j%C3%B6rg%20x/profile"), /* decoded, named group */
        GET("/opt/b"),             /* an optional group that did not match */
        GET("/opt/ab"),
        "GET / HTTP/1.1\r\nHost: API.example.com:8080\r\nConnection: close\r\n\r\n",
        GET("/file/a%2Fb%3Fc"),    /* %2F decoded in the argument only */
        GET("/item/1%0a"),         /* no newline sneaks past '$' */
        NULL,
    };
    client c;
    run_requests(NULL, reqs, &c);
    assert_string_equal(c.answers[0], "200 OK: root");
    assert_string_equal(c.answers[1], "200 OK: item 42");
    assert_string_equal(c.answers[2], "404 Not Found: <html><title>404: Not Found"
                                      "</title><body>404: Not Found</body></html>");
    assert_string_equal(c.answers[3], c.answers[2]);
    assert_string_equal(c.answers[4], c.answers[2]);
    assert_string_equal(c.answers[5], "200 OK: named j\xc3\xb6rg x|profile kw=j\xc3\xb6rg x");
    assert_string_equal(c.answers[6], "200 OK: opt (none)|b");
    assert_string_equal(c.answers[7], "200 OK: opt a|b");
    assert_string_equal(c.answers[8], "200 OK: root"); /* host routes come later */
    assert_string_equal(c.answers[9], "200 OK: item a/b?c");
    assert_string_equal(c.answers[10], c.answers[2]);
}

static const gust_route host_first[] = {
    GUST_ROUTE("/", &api, .host = "api\\.example\\.com"),
    GUST_ROUTE("/", &root),
    GUST_ROUTES_END,
};

static void test_host_routing_and_default(void **state)
{
    (void)state;
    gust_log_set_level(GUST_LOG_WARNING);
    gust_loop *loop = gust_loop_current();
    gust_app_settings s = {.default_handler = &fallback};
    gust_app *app = gust_app_new(host_first, &s);
    assert_non_null(app);
    assert_int_equal(gust_app_listen(app, 0, "127.0.0.1"), 0);
    static const char *const reqs[] = {
        "GET / HTTP/1.1\r\nHost: API.Example.com:8080\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: api.example.com.evil\r\nConnection: close\r\n\r\n",
        GET("/nowhere"),
        NULL,
    };
    client c = {.port = gust_http_server_port(gust_app_server(app)),
                .requests = reqs, .loop = loop};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client_main, &c), 0);
    assert_int_equal(gust_loop_start(loop), 0);
    pthread_join(t, NULL);
    gust_app_free(app);
    gust_loop_run_until(loop, never, NULL, 0.05);
    assert_int_equal(gust_loop_free(loop), 0);
    assert_string_equal(c.answers[0], "200 OK: api");
    assert_string_equal(c.answers[1], "200 OK: root");
    assert_string_equal(c.answers[2], "200 OK: root");
    assert_string_equal(c.answers[3], "200 OK: fallback");
}

static void test_reverse_url(void **state)
{
    (void)state;
    gust_app *app = gust_app_new(routes, NULL);
    assert_non_null(app);
    gust_arena a;
    gust_arena_init(&a, 0);
    assert_string_equal(gust_app_reverse_url(app, &a, "root", NULL), "/");
    assert_string_equal(gust_app_reverse_url(app, &a, "item", "7", NULL), "/item/7");
    assert_string_equal(gust_app_reverse_url(app, &a, "file", "a b/c?", NULL),
                        "/file/a%20b%2Fc%3F");
    assert_null(gust_app_reverse_url(app, &a, "item", NULL));         /* too few */
    assert_null(gust_app_reverse_url(app, &a, "item", "1", "2", NULL)); /* too many */
    assert_null(gust_app_reverse_url(app, &a, "nope", NULL));
    gust_arena_close(&a);
    gust_app_free(app);
}

static void test_reverse_needs_simple_pattern(void **state)
{
    (void)state;
    static const gust_route r[] = {
        GUST_ROUTE("/a\\.b/(?:x|y)/([0-9]+)", &item, .name = "complex"),
        GUST_ROUTE("/v1\\.0/([a-z]+)$", &item, .name = "dotted"),
        GUST_ROUTE("/\\d+/(x)", &item, .name = "class"),
        GUST_ROUTES_END,
    };
    gust_app *app = gust_app_new(r, NULL);
    assert_non_null(app);
    gust_arena a;
    gust_arena_init(&a, 0);
    assert_null(gust_app_reverse_url(app, &a, "complex", "1", NULL));
    assert_string_equal(gust_app_reverse_url(app, &a, "dotted", "abc", NULL),
                        "/v1.0/abc");
    assert_null(gust_app_reverse_url(app, &a, "class", "x", NULL));
    gust_arena_close(&a);
    gust_app_free(app);
}

static void test_bad_pattern(void **state)
{
    (void)state;
    gust_log_set_level(GUST_LOG_NONE);
    static const gust_route bad[] = {GUST_ROUTE("/(unclosed", &item),
                                     GUST_ROUTES_END};
    errno = 0;
    assert_null(gust_app_new(bad, NULL));
    assert_int_equal(errno, EINVAL);
    static const gust_route bad_host[] = {
        GUST_ROUTE("/", &item, .host = "[z-a]"), GUST_ROUTES_END};
    assert_null(gust_app_new(bad_host, NULL));
    gust_app *app = gust_app_new(routes, NULL);
    static const gust_route more[] = {GUST_ROUTE("/ok", &item),
                                      GUST_ROUTE("*", &item), GUST_ROUTES_END};
    assert_int_equal(gust_app_add_routes(app, more), -EINVAL);
    gust_app_free(app);
    gust_log_set_level(GUST_LOG_WARNING);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_routing, test_setup),
        cmocka_unit_test_setup(test_host_routing_and_default, test_setup),
        cmocka_unit_test_setup(test_reverse_url, test_setup),
        cmocka_unit_test_setup(test_reverse_needs_simple_pattern, test_setup),
        cmocka_unit_test_setup(test_bad_pattern, test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
