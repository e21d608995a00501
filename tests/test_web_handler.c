/* Unit tests for handlers (web.h: the lifecycle, the three styles, errors,
 * output, arguments): an application on the test's loop over real sockets
 * on 127.0.0.1, a blocking client in a thread that records the raw
 * responses; the main thread asserts once it has joined. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

#include "gust/future.h"
#include "gust/log.h"
#include "gust/web.h"
#include "gust_test.h"

/* ---- Client (thread) -------------------------------------------------- */

#define MAX_REQ 16
#define RESP_CAP 16384

typedef struct job {
    gust_loop *loop;
    int port;
    const char *reqs[MAX_REQ];
    char resp[MAX_REQ][RESP_CAP];
} job;

static void exchange(int port, const char *req, char *out)
{
    out[0] = '\0';
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t n = strlen(req), off = 0;
    while (off < n) {
        ssize_t k = send(fd, req + off, n - off, MSG_NOSIGNAL);
        if (k <= 0)
            break;
        off += (size_t)k;
    }
    size_t len = 0;
    for (;;) {
        ssize_t k = recv(fd, out + len, RESP_CAP - 1 - len, 0);
        if (k <= 0)
            break;
        len += (size_t)k;
        if (len >= RESP_CAP - 1)
            break;
    }
    out[len] = '\0';
    close(fd);
}

static void hang_up(int port, const char *req)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        (void)!send(fd, req, strlen(req), MSG_NOSIGNAL);
    if (fd >= 0) {
        usleep(100 * 1000);
        close(fd);
        usleep(100 * 1000);
    }
}

static void *client_main(void *p)
{
    job *j = p;
    for (int i = 0; i < MAX_REQ && j->reqs[i]; i++) {
        if (j->reqs[i][0] == '!') {
            /* Send and hang up without reading. */
            hang_up(j->port, j->reqs[i] + 1);
            continue;
        }
        exchange(j->port, j->reqs[i], j->resp[i]);
    }
    gust_loop_stop_threadsafe(j->loop);
    return NULL;
}

/* Serves app (made on loop) until the client has sent every request, then
 * frees both. */
static void serve(gust_loop *loop, gust_app *app, job *j)
{
    assert_int_equal(gust_app_listen(app, 0, "127.0.0.1"), 0);
    j->loop = loop;
    j->port = gust_http_server_port(gust_app_server(app));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client_main, j), 0);
    assert_int_equal(gust_loop_start(loop), 0);
    pthread_join(t, NULL);
    /* Let the last connection's close be seen, then free everything. */
    for (int i = 0; i < 20; i++)
        gust_loop_run_once(loop, 0.005);
    /* Handlers still working for a client that left finish too. */
    gust_http_server *srv = gust_app_server(app);
    for (int i = 0; i < 400 && gust_http_server_connection_count(srv); i++)
        gust_loop_run_once(loop, 0.01);
    assert_int_equal(gust_http_server_connection_count(srv), 0);
    gust_app_free(app);
    for (int i = 0; i < 5; i++)
        gust_loop_run_once(loop, 0.001);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Serves routes with settings until the client has sent every request. */
static void run(const gust_route *routes, const gust_app_settings *settings,
                job *j)
{
    gust_loop *loop = new_current_loop();
    gust_app *app = gust_app_new(routes, settings);
    assert_non_null(app);
    serve(loop, app, j);
}

static int status_of(const char *resp)
{
    return strncmp(resp, "HTTP/1.1 ", 9) == 0 ? atoi(resp + 9) : -1;
}

static const char *body_of(const char *resp)
{
    const char *b = strstr(resp, "\r\n\r\n");
    return b ? b + 4 : "";
}

/* The value of header name in resp (copied into a static buffer), or
 * NULL. */
static const char *header_of(const char *resp, const char *name)
{
    static char v[512];
    char pat[128];
    snprintf(pat, sizeof pat, "\r\n%s: ", name);
    const char *p = strcasestr(resp, pat), *end = strstr(resp, "\r\n\r\n");
    if (!p || (end && p > end))
        return NULL;
    p += strlen(pat);
    size_t n = strcspn(p, "\r");
    snprintf(v, sizeof v, "%.*s", (int)n, p);
    return v;
}

#define GET(path) "GET " path " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"

/* ---- Handlers ------------------------------------------------------------- */

static char events[256];

static void event(const char *e)
{
    strncat(events, e, sizeof events - strlen(events) - 1);
}

static int plain_get(gust_handler *h)
{
    event("get,");
    return gust_handler_write_str(h, "plain");
}

/* 2,000 bytes of text: over gzip's 1 KiB threshold. */
static int big_get(gust_handler *h)
{
    for (int i = 0; i < 100; i++)
        gust_handler_write_str(h, "0123456789abcdefghi\n");
    return 0;
}

static const gust_handler_class big_class = {.name = "big", .get = big_get};

static int plain_prepare(gust_handler *h)
{
    (void)h;
    event("prepare,");
    return 0;
}

static void plain_on_finish(gust_handler *h)
{
    /* Writing is over by now. */
    event(gust_handler_write_str(h, "x") == -EINVAL ? "finish," : "BAD,");
}

static const gust_handler_class plain_class = {
    .name = "Plain", .prepare = plain_prepare, .get = plain_get,
    .put = plain_get, .on_finish = plain_on_finish};

static void async_later(gust_loop *loop, void *data)
{
    (void)loop;
    gust_handler *h = data;
    gust_handler_write_str(h, "async done");
    gust_handler_finish(h);
}

static int async_get(gust_handler *h)
{
    if (!gust_loop_call_later(gust_handler_loop(h), 0.05, async_later, h))
        return -ENOMEM;
    return GUST_HANDLER_ASYNC;
}

static const gust_handler_class async_class = {.get = async_get};

static int coro_get(gust_handler *h)
{
    if (!gust_in_coroutine())
        return -EINVAL;
    int rc = gust_await(gust_sleep(gust_handler_loop(h), 0.05), NULL);
    if (rc < 0)
        return rc;
    const char *fail = gust_handler_get_argument(h, "fail", NULL);
    if (fail)
        return -EIO;
    return gust_handler_write_str(h, "coro done");
}

static const gust_handler_class coro_class = {
    .flags = GUST_HANDLER_COROUTINE, .get = coro_get};

static void teapot_error(gust_handler *h, int status, const char *message)
{
    gust_handler_printf(h, "custom %d %s", status, message ? message : "-");
}

static int teapot_get(gust_handler *h)
{
    gust_handler_write_str(h, "discarded");
    gust_handler_set_header(h, "X-Dropped", "1");
    gust_handler_send_error(h, 418, "short and %s", "stout");
    /* After the error page, writes are refused. */
    return gust_handler_write_str(h, "late") == -EINVAL ? 0 : -EIO;
}

static const gust_handler_class teapot_class = {.get = teapot_get,
                                                .write_error = teapot_error};

static int inject_get(gust_handler *h)
{
    int a = gust_handler_set_header(h, "X-A", "v\r\nX-Injected: 1");
    int b = gust_handler_set_header(h, "Bad Name", "v");
    int c = gust_handler_add_header(h, "X-C", "nul\x01ok");
    int d = gust_handler_set_status(h, 99, NULL);
    int e = gust_handler_redirect(h, "/x\r\nSet-Cookie: a=b", 302);
    int f = gust_handler_redirect(h, "/x", 200);
    int g = gust_handler_set_header(h, "X-Ok", "fine");
    return gust_handler_printf(h, "%d %d %d %d %d %d %d", a, b, c == -EINVAL,
                               d, e, f, g);
}

static const gust_handler_class inject_class = {.get = inject_get};

static int redirect_get(gust_handler *h)
{
    const char *s = gust_handler_get_argument(h, "s", "0");
    return gust_handler_redirect(h, "/plain?from=redirect", atoi(s));
}

static const gust_handler_class redirect_class = {.get = redirect_get};

static int args_get(gust_handler *h)
{
    const char **all;
    size_t n = gust_handler_get_arguments(h, "a", &all);
    const char *b = gust_handler_get_argument(h, "b", "def");
    const char *q = gust_handler_get_argument(h, "q", GUST_REQUIRED);
    const char *body = gust_handler_get_body_argument(h, "f", "none");
    const char *qonly = gust_handler_get_query_argument(h, "f", "none");
    return gust_handler_printf(h, "n=%zu first=%s last=%s b=[%s] q=%s f=%s/%s",
                               n, n ? all[0] : "-",
                               gust_handler_get_argument(h, "a", "-"), b,
                               q ? q : "(null)", body, qonly);
}

static const gust_handler_class args_class = {.get = args_get,
                                              .post = args_get};

static int json_get(gust_handler *h)
{
    json_t *j = json_pack("{s:s}", "message", "Hello, World!");
    int rc = gust_handler_write_json(h, j);
    json_decref(j);
    return rc;
}

static const gust_handler_class json_class = {.get = json_get};

static void flushed(gust_handler *h, int status, void *data)
{
    (void)data;
    gust_handler_write_str(h, status == 0 ? "second" : "fail");
    gust_handler_finish(h);
}

static int flush_get(gust_handler *h)
{
    gust_handler_write_str(h, "first");
    int rc = gust_handler_flush(h, flushed, NULL);
    if (rc < 0)
        return rc;
    /* Headers are gone: setting one now is refused. */
    if (gust_handler_set_header(h, "X-Late", "1") != -EINVAL)
        return -EIO;
    return GUST_HANDLER_ASYNC;
}

static const gust_handler_class flush_class = {.get = flush_get};

static void midfail_flushed(gust_handler *h, int status, void *data)
{
    (void)status, (void)data;
    gust_handler_send_error(h, 500, "the data source failed");
}

static void midfail_finish(gust_handler *h)
{
    (void)h;
    event("midfail-finish");
}

/* Fails after the headers and a first chunk went out. */
static int midfail_get(gust_handler *h)
{
    gust_handler_write_str(h, "first");
    int rc = gust_handler_flush(h, midfail_flushed, NULL);
    return rc < 0 ? rc : GUST_HANDLER_ASYNC;
}

static const gust_handler_class midfail_class = {.get = midfail_get,
                                                 .on_finish = midfail_finish};

typedef struct counter_state {
    int calls;
} counter_state;

static int state_get(gust_handler *h)
{
    counter_state *st = gust_handler_state(h);
    st->calls++;
    gust_http_request *req = gust_handler_request(h);
    bool same_arena = gust_handler_arena(h) == req->arena;
    char *copy = gust_arena_strdup(gust_handler_arena(h), "arena-string");
    return gust_handler_printf(h, "calls=%d arena=%d %s id=%s n=%zu", st->calls,
                               same_arena, copy,
                               gust_handler_path_kwarg(h, "id"),
                               gust_handler_path_arg_count(h));
}

static const gust_handler_class state_class = {
    .state_size = sizeof(counter_state), .get = state_get};

static int gate_prepare(gust_handler *h)
{
    event("gate-prepare,");
    return gust_handler_send_error(h, 401, NULL);
}

static int gate_get(gust_handler *h)
{
    event("gate-get,");
    return gust_handler_write_str(h, "should not run");
}

static void gate_finish(gust_handler *h)
{
    (void)h;
    event("gate-finish,");
}

static const gust_handler_class gate_class = {
    .prepare = gate_prepare, .get = gate_get, .on_finish = gate_finish};

static int fail_get(gust_handler *h)
{
    gust_handler_write_str(h, "partial");
    return -EIO;
}

static const gust_handler_class fail_class = {.name = "Failing",
                                              .get = fail_get};

typedef struct stream_state {
    size_t bytes, chunks;
} stream_state;

static int stream_prepare(gust_handler *h)
{
    (void)h;
    event("stream-prepare,");
    return 0;
}

static int stream_data(gust_handler *h, const char *chunk, size_t len)
{
    stream_state *st = gust_handler_state(h);
    for (size_t i = 0; i < len; i++)
        if (chunk[i] != 'z')
            return -EINVAL;
    st->bytes += len;
    st->chunks++;
    return 0;
}

static int stream_post(gust_handler *h)
{
    stream_state *st = gust_handler_state(h);
    event("stream-post,");
    /* Streamed, so nothing was buffered. */
    return gust_handler_printf(h, "bytes=%zu chunks>0=%d buffered=%zu",
                               st->bytes, st->chunks > 0,
                               gust_handler_request(h)->body.len);
}

static const gust_handler_class stream_class = {
    .flags = GUST_HANDLER_STREAM_BODY, .state_size = sizeof(stream_state),
    .prepare = stream_prepare, .data_received = stream_data,
    .post = stream_post};

typedef struct cstream_state {
    bool ready; /* prepare came back from its await */
    size_t bytes;
} cstream_state;

/* A coroutine prepare that waits before the body may flow. */
static int cstream_prepare(gust_handler *h)
{
    event("cstream-prepare,");
    int rc = gust_await(gust_sleep(gust_handler_loop(h), 0.02), NULL);
    cstream_state *st = gust_handler_state(h);
    st->ready = true;
    return rc;
}

static int cstream_data(gust_handler *h, const char *chunk, size_t len)
{
    (void)chunk;
    cstream_state *st = gust_handler_state(h);
    if (!st->ready)
        return -EINVAL; /* a chunk before prepare finished: 400 */
    st->bytes += len;
    return 0;
}

static int cstream_post(gust_handler *h)
{
    cstream_state *st = gust_handler_state(h);
    return gust_handler_printf(h, "ready=%d bytes=%zu", st->ready, st->bytes);
}

static const gust_handler_class cstream_class = {
    .flags = GUST_HANDLER_STREAM_BODY | GUST_HANDLER_COROUTINE,
    .state_size = sizeof(cstream_state), .prepare = cstream_prepare,
    .data_received = cstream_data, .post = cstream_post};

static void slow_later(gust_loop *loop, void *data)
{
    (void)loop;
    gust_handler *h = data;
    int rc = gust_handler_write_str(h, "too late");
    event(rc == GUST_ESTREAMCLOSED ? "write-closed," : "write-other,");
    gust_handler_finish(h);
}

static int slow_get(gust_handler *h)
{
    if (!gust_loop_call_later(gust_handler_loop(h), 0.5, slow_later, h))
        return -ENOMEM;
    return GUST_HANDLER_ASYNC;
}

static void slow_close(gust_handler *h)
{
    (void)h;
    event("conn-close,");
}

static void slow_finish(gust_handler *h)
{
    (void)h;
    event("slow-finish,");
}

static const gust_handler_class slow_class = {
    .get = slow_get, .on_connection_close = slow_close,
    .on_finish = slow_finish};

static const gust_route routes[] = {
    {"/stream", &stream_class, NULL, NULL, NULL},
    {"/cstream", &cstream_class, NULL, NULL, NULL},
    {"/slow", &slow_class, NULL, NULL, NULL},
    {"/plain", &plain_class, NULL, NULL, NULL},
    {"/big", &big_class, NULL, NULL, NULL},
    {"/async", &async_class, NULL, NULL, NULL},
    {"/coro", &coro_class, NULL, NULL, NULL},
    {"/teapot", &teapot_class, NULL, NULL, NULL},
    {"/inject", &inject_class, NULL, NULL, NULL},
    {"/redirect", &redirect_class, NULL, NULL, NULL},
    {"/args", &args_class, NULL, NULL, NULL},
    {"/json", &json_class, NULL, NULL, NULL},
    {"/flush", &flush_class, NULL, NULL, NULL},
    {"/midfail", &midfail_class, NULL, NULL, NULL},
    {"/state/(?<id>[0-9]+)", &state_class, NULL, NULL, NULL},
    {"/gate", &gate_class, NULL, NULL, NULL},
    {"/fail", &fail_class, NULL, NULL, NULL},
    {"/moved", &gust_redirect_handler, (void *)"/plain", NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL}};

static int quiet(void **state)
{
    (void)state;
    alarm(GUST_TEST_ALARM_SECONDS);
    gust_log_set_level(GUST_LOG_NONE);
    events[0] = '\0';
    return 0;
}

/* ---- Tests ---------------------------------------------------------------- */

static void test_three_styles(void **state)
{
    (void)state;
    static job j = {.reqs = {GET("/plain"), GET("/async"), GET("/coro"),
                             GET("/coro?fail=1")}};
    run(routes, NULL, &j);
    assert_int_equal(status_of(j.resp[0]), 200);
    assert_string_equal(body_of(j.resp[0]), "plain");
    assert_string_equal(header_of(j.resp[0], "Content-Type"),
                        "text/html; charset=UTF-8");
    assert_int_equal(status_of(j.resp[1]), 200);
    assert_string_equal(body_of(j.resp[1]), "async done");
    assert_int_equal(status_of(j.resp[2]), 200);
    assert_string_equal(body_of(j.resp[2]), "coro done");
    assert_int_equal(status_of(j.resp[3]), 500);
    assert_string_equal(body_of(j.resp[3]),
                        "<html><title>500: Internal Server Error</title>"
                        "<body>500: Internal Server Error</body></html>");
}

static void test_lifecycle_order(void **state)
{
    (void)state;
    static job j = {.reqs = {GET("/plain"), GET("/gate")}};
    run(routes, NULL, &j);
    assert_string_equal(body_of(j.resp[0]), "plain");
    assert_int_equal(status_of(j.resp[1]), 401);
    /* prepare, method, on_finish; a prepare that answers stops the method
     * but on_finish still runs. */
    assert_string_equal(events,
                        "prepare,get,finish,gate-prepare,gate-finish,");
}

static void test_405_and_404(void **state)
{
    (void)state;
    static job j = {
        .reqs = {"POST /plain HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n\r\n",
                 GET("/nowhere"),
                 "DELETE /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "\r\n"}};
    run(routes, NULL, &j);
    assert_int_equal(status_of(j.resp[0]), 405);
    assert_string_equal(header_of(j.resp[0], "Allow"), "GET, PUT");
    assert_int_equal(status_of(j.resp[1]), 404);
    assert_string_equal(body_of(j.resp[1]),
                        "<html><title>404: Not Found</title>"
                        "<body>404: Not Found</body></html>");
    assert_int_equal(status_of(j.resp[2]), 405);
    assert_string_equal(header_of(j.resp[2], "Allow"), "GET");
}

static void test_send_error_pages(void **state)
{
    (void)state;
    static job j = {.reqs = {GET("/teapot"), GET("/fail")}};
    run(routes, NULL, &j);
    assert_int_equal(status_of(j.resp[0]), 418);
    /* The class's write_error got the message; what was written before
     * and headers set before are gone. */
    assert_string_equal(body_of(j.resp[0]), "custom 418 short and stout");
    assert_null(header_of(j.resp[0], "X-Dropped"));
    assert_int_equal(status_of(j.resp[1]), 500);
    assert_null(strstr(j.resp[1], "partial"));
}

static void test_debug_error_page(void **state)
{
    (void)state;
    static job j = {.reqs = {GET("/fail"), GET("/args")}};
    gust_app_settings s = {.debug = true};
    run(routes, &s, &j);
    assert_int_equal(status_of(j.resp[0]), 500);
    assert_non_null(strstr(body_of(j.resp[0]), "handler: Failing"));
    assert_non_null(strstr(body_of(j.resp[0]), "route: /fail"));
    /* A missing GUST_REQUIRED argument: 400 naming it. */
    assert_int_equal(status_of(j.resp[1]), 400);
    assert_non_null(strstr(body_of(j.resp[1]), "Missing argument q"));
}

static void test_header_injection_refused(void **state)
{
    (void)state;
    static job j = {.reqs = {GET("/inject")}};
    run(routes, NULL, &j);
    assert_int_equal(status_of(j.resp[0]), 200);
    char want[128];
    snprintf(want, sizeof want, "%d %d 1 %d %d %d 0", -EINVAL, -EINVAL,
             -EINVAL, -EINVAL, -EINVAL);
    assert_string_equal(body_of(j.resp[0]), want);
    assert_null(strstr(j.resp[0], "X-Injected"));
    assert_null(header_of(j.resp[0], "Location"));
    assert_string_equal(header_of(j.resp[0], "X-Ok"), "fine");
}

static void test_redirects(void **state)
{
    (void)state;
    static job j = {.reqs = {GET("/redirect"), GET("/redirect?s=301"),
                             GET("/redirect?s=307"), GET("/moved"),
                             GET("/redirect?s=200")}};
    run(routes, NULL, &j);
    assert_int_equal(status_of(j.resp[0]), 302);
    assert_string_equal(header_of(j.resp[0], "Location"),
                        "/plain?from=redirect");
    assert_int_equal(status_of(j.resp[1]), 301);
    assert_int_equal(status_of(j.resp[2]), 307);
    assert_int_equal(status_of(j.resp[3]), 301);
    assert_string_equal(header_of(j.resp[3], "Location"), "/plain");
    /* An invalid status is refused: the method's error becomes a 500. */
    assert_int_equal(status_of(j.resp[4]), 500);
}

static void test_arguments(void **state)
{
    (void)state;
    static job j = {
        .reqs = {GET("/args?a=1&a=%202%20&b=+x+&q=here&f=fromquery"),
                 GET("/args?b="),
                 "POST /args?q=1&f=q HTTP/1.1\r\nHost: t\r\nConnection: close"
                 "\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 "Content-Length: 8\r\n\r\nf=b&a=bd"}};
    run(routes, NULL, &j);
    assert_int_equal(status_of(j.resp[0]), 200);
    /* Stripped, last value wins, every value in order. */
    assert_string_equal(body_of(j.resp[0]),
                        "n=2 first=1 last=2 b=[x] q=here f=none/fromquery");
    assert_int_equal(status_of(j.resp[1]), 400);
    assert_int_equal(status_of(j.resp[2]), 200);
    assert_string_equal(body_of(j.resp[2]),
                        "n=1 first=bd last=bd b=[def] q=1 f=b/q");
}

static void test_write_json_and_flush(void **state)
{
    (void)state;
    static job j = {.reqs = {GET("/json"), GET("/flush")}};
    run(routes, NULL, &j);
    assert_int_equal(status_of(j.resp[0]), 200);
    assert_string_equal(header_of(j.resp[0], "Content-Type"),
                        "application/json; charset=UTF-8");
    assert_string_equal(body_of(j.resp[0]), "{\"message\":\"Hello, World!\"}");
    assert_int_equal(status_of(j.resp[1]), 200);
    assert_string_equal(header_of(j.resp[1], "Transfer-Encoding"), "chunked");
    assert_null(header_of(j.resp[1], "Content-Length"));
    assert_string_equal(body_of(j.resp[1]),
                        "5\r\nfirst\r\n6\r\nsecond\r\n0\r\n\r\n");
}

static void test_error_after_flush_cuts_connection(void **state)
{
    (void)state;
    /* Keep-alive: only the close can tell the client the body is cut. */
    static job j = {.reqs = {"GET /midfail HTTP/1.1\r\nHost: t\r\n\r\n"}};
    run(routes, NULL, &j);
    assert_int_equal(status_of(j.resp[0]), 200);
    assert_string_equal(header_of(j.resp[0], "Transfer-Encoding"), "chunked");
    /* The first chunk, and no last chunk: the response is visibly broken. */
    assert_string_equal(body_of(j.resp[0]), "5\r\nfirst\r\n");
    assert_non_null(strstr(events, "midfail-finish"));
}

static void test_app_owns_server_option_strings(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    char name[32];
    strcpy(name, "Mine/1.0");
    gust_http_server_options o = {.server_header = name};
    gust_app_settings settings = {.server_options = &o};
    gust_app *app = gust_app_new(routes, &settings);
    assert_non_null(app);
    /* The caller's strings may be gone before the app listens. */
    strcpy(name, "Clobbered");
    o.server_header = NULL;
    static job j = {.reqs = {GET("/plain")}};
    serve(loop, app, &j);
    assert_int_equal(status_of(j.resp[0]), 200);
    assert_string_equal(header_of(j.resp[0], "Server"), "Mine/1.0");
}

static void test_per_request_state(void **state)
{
    (void)state;
    static job j = {.reqs = {GET("/state/7"), GET("/state/8")}};
    run(routes, NULL, &j);
    /* Each request gets its own zeroed state in its own arena. */
    assert_string_equal(body_of(j.resp[0]),
                        "calls=1 arena=1 arena-string id=7 n=1");
    assert_string_equal(body_of(j.resp[1]),
                        "calls=1 arena=1 arena-string id=8 n=1");
}

static void test_gzip(void **state)
{
    (void)state;
    static job j = {
        .reqs = {"GET /big HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip"
                 "\r\n\r\n",
                 "GET /plain HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip"
                 "\r\n\r\n",
                 GET("/big")}};
    gust_app_settings s = {.compress_response = true};
    run(routes, &s, &j);
    assert_int_equal(status_of(j.resp[0]), 200);
    assert_string_equal(header_of(j.resp[0], "Content-Encoding"), "gzip");
    assert_string_equal(header_of(j.resp[0], "Vary"), "Accept-Encoding");
    /* The gzip magic number starts the body. */
    assert_memory_equal(body_of(j.resp[0]), "\x1f\x8b", 2);
    /* Under 1 KiB a whole body is not worth compressing (Tornado's
     * MIN_LENGTH); it still varies with Accept-Encoding. */
    assert_null(header_of(j.resp[1], "Content-Encoding"));
    assert_string_equal(header_of(j.resp[1], "Vary"), "Accept-Encoding");
    assert_string_equal(body_of(j.resp[1]), "plain");
    assert_null(header_of(j.resp[2], "Content-Encoding"));
    assert_string_equal(header_of(j.resp[2], "Vary"), "Accept-Encoding");
    assert_int_equal(strlen(body_of(j.resp[2])), 2000);
}

static void test_client_gone_during_body(void **state)
{
    (void)state;
    static job j = {
        .reqs = {"!PUT /plain HTTP/1.1\r\nHost: t\r\nContent-Length: 100"
                 "\r\n\r\nshort",
                 GET("/plain")}};
    run(routes, NULL, &j);
    /* The method never ran for the first request, on_finish did; the
     * server still answers the next one. */
    assert_string_equal(events, "finish,prepare,get,finish,");
    assert_string_equal(body_of(j.resp[1]), "plain");
}

static char big_post[300 * 1024];

/* A POST to path with 200,000 bytes of 'z', sent with its head. */
static const char *big_z_post(const char *path)
{
    size_t body = 200 * 1000;
    int n = snprintf(big_post, sizeof big_post,
                     "POST %s HTTP/1.1\r\nHost: t\r\nConnection: close"
                     "\r\nContent-Length: %zu\r\n\r\n", path, body);
    memset(big_post + n, 'z', body);
    big_post[(size_t)n + body] = '\0';
    return big_post;
}

static void test_stream_body(void **state)
{
    (void)state;
    static job j;
    memset(&j, 0, sizeof j);
    j.reqs[0] = big_z_post("/stream");
    j.reqs[1] = "POST /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                "Content-Length: 3\r\n\r\nzaz";
    run(routes, NULL, &j);
    assert_int_equal(status_of(j.resp[0]), 200);
    assert_string_equal(body_of(j.resp[0]), "bytes=200000 chunks>0=1 "
                                            "buffered=0");
    /* data_received refusing a chunk gives 400; the method never runs. */
    assert_int_equal(status_of(j.resp[1]), 400);
    assert_string_equal(events, "stream-prepare,stream-post,"
                                "stream-prepare,");
}

static void test_stream_body_coroutine_prepare(void **state)
{
    (void)state;
    static job j;
    memset(&j, 0, sizeof j);
    j.reqs[0] = big_z_post("/cstream"); /* the body arrives with the head */
    j.reqs[1] = "POST /cstream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                "Content-Length: 0\r\n\r\n";
    run(routes, NULL, &j);
    assert_int_equal(status_of(j.resp[0]), 200);
    assert_string_equal(body_of(j.resp[0]), "ready=1 bytes=200000");
    /* No body at all: the method still waits for prepare. */
    assert_int_equal(status_of(j.resp[1]), 200);
    assert_string_equal(body_of(j.resp[1]), "ready=1 bytes=0");
    assert_string_equal(events, "cstream-prepare,cstream-prepare,");
}

static void test_async_client_gone(void **state)
{
    (void)state;
    static job j = {.reqs = {"!" GET("/slow"), GET("/plain")}};
    run(routes, NULL, &j);
    assert_string_equal(body_of(j.resp[1]), "plain");
    /* The handler heard of the close, went on, found writes refused,
     * finished, and on_finish ran. */
    assert_string_equal(events, "conn-close,prepare,get,finish,"
                                "write-closed,slow-finish,");
}

static void test_etag_304(void **state)
{
    (void)state;
    /* XXH3-64 of "plain", in hex: where Tornado's compute_etag has SHA-1. */
    char want[64], inm[160];
    snprintf(want, sizeof want, "\"%016llx\"",
             (unsigned long long)XXH3_64bits("plain", 5));
    snprintf(inm, sizeof inm,
             "GET /plain HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
             "If-None-Match: \"x\", W/%s\r\n\r\n", want);
    static job j = {
        .reqs = {GET("/plain"), NULL,
                 "GET /plain HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "If-None-Match: \"other\"\r\n\r\n",
                 GET("/flush")}};
    j.reqs[1] = inm;
    run(routes, NULL, &j);
    const char *etag = header_of(j.resp[0], "Etag");
    assert_non_null(etag);
    char first[64];
    snprintf(first, sizeof first, "%s", etag);
    assert_int_equal(status_of(j.resp[1]), 304);
    assert_string_equal(body_of(j.resp[1]), "");
    assert_int_equal(status_of(j.resp[2]), 200);
    assert_string_equal(body_of(j.resp[2]), "plain");
    /* A flushed response has no automatic ETag. */
    assert_null(header_of(j.resp[3], "Etag"));
    assert_string_equal(first, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_three_styles, quiet),
        cmocka_unit_test_setup(test_lifecycle_order, quiet),
        cmocka_unit_test_setup(test_405_and_404, quiet),
        cmocka_unit_test_setup(test_send_error_pages, quiet),
        cmocka_unit_test_setup(test_debug_error_page, quiet),
        cmocka_unit_test_setup(test_header_injection_refused, quiet),
        cmocka_unit_test_setup(test_redirects, quiet),
        cmocka_unit_test_setup(test_arguments, quiet),
        cmocka_unit_test_setup(test_write_json_and_flush, quiet),
        cmocka_unit_test_setup(test_error_after_flush_cuts_connection, quiet),
        cmocka_unit_test_setup(test_app_owns_server_option_strings, quiet),
        cmocka_unit_test_setup(test_per_request_state, quiet),
        cmocka_unit_test_setup(test_gzip, quiet),
        cmocka_unit_test_setup(test_client_gone_during_body, quiet),
        cmocka_unit_test_setup(test_stream_body, quiet),
        cmocka_unit_test_setup(test_stream_body_coroutine_prepare, quiet),
        cmocka_unit_test_setup(test_async_client_gone, quiet),
        cmocka_unit_test_setup(test_etag_304, quiet),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
