/* Coroutine handlers (web.h, GUST_HANDLER_COROUTINE) under load and on
 * their error paths: a real app on 127.0.0.1 and a Gust HTTP client on the
 * same loop, driven by a coroutine through gust_loop_run_sync(). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "gust/gust.h"
#include "gust/http_client.h"
#include "gust/web.h"
#include "gust_test.h"

static gust_http_client *client;
static int app_port, dead_port;
static int in_flight, peak, finished, conn_closed;

/* ---- The handlers under test -------------------------------------------- */

/* Sleeps 10 ms and echoes ?n=. Counts how many run at once. */
static int sleep_get(gust_handler *h)
{
    if (++in_flight > peak)
        peak = in_flight;
    int rc = gust_await(gust_sleep(gust_handler_loop(h), 0.01), NULL);
    in_flight--;
    if (rc < 0)
        return rc;
    return gust_handler_printf(h, "slept %s",
                               gust_handler_get_argument(h, "n", "?"));
}

static void count_finish(gust_handler *h)
{
    (void)h;
    finished++;
}

static void count_close(gust_handler *h)
{
    (void)h;
    conn_closed++;
}

static const gust_handler_class sleep_handler = {
    .name = "sleep", .flags = GUST_HANDLER_COROUTINE, .get = sleep_get,
    .on_finish = count_finish, .on_connection_close = count_close};

static int eio_get(gust_handler *h)
{
    gust_handler_write_str(h, "partial, never sent");
    int rc = gust_await(gust_sleep(gust_handler_loop(h), 0.001), NULL);
    return rc < 0 ? rc : -EIO;
}

static const gust_handler_class eio_handler = {
    .name = "eio", .flags = GUST_HANDLER_COROUTINE, .get = eio_get};

static char dead_url[64];

/* A fetch to a closed port, answered as the handler chooses: 502 with the
 * reason, or (?raw=1) the fetch's error returned as is, which is a 500. */
static int fetch_get(gust_handler *h)
{
    gust_value v;
    int rc = gust_await(gust_http_fetch(client, dead_url), &v);
    if (rc == 0) {
        gust_value_free(&v);
        return gust_handler_write_str(h, "unexpected success");
    }
    if (gust_handler_get_argument(h, "raw", NULL))
        return rc;
    return gust_handler_send_error(h, 502, "upstream: %s", gust_strerror(rc));
}

static const gust_handler_class fetch_handler = {
    .name = "fetch", .flags = GUST_HANDLER_COROUTINE, .get = fetch_get};

/* Asynchronous, never answers: finishes when the client leaves, from
 * on_connection_close (a regression test: that finish freed the connection
 * inside its own close callback). */
static int hang_get(gust_handler *h)
{
    (void)h;
    in_flight++;
    return GUST_HANDLER_ASYNC;
}

static void hang_closed(gust_handler *h)
{
    conn_closed++;
    in_flight--;
    gust_handler_finish(h);
}

static const gust_handler_class hang_handler = {
    .name = "hang", .get = hang_get, .on_finish = count_finish,
    .on_connection_close = hang_closed};

static const gust_route routes[] = {
    GUST_ROUTE("/sleep", &sleep_handler),
    GUST_ROUTE("/eio", &eio_handler),
    GUST_ROUTE("/fetch", &fetch_handler),
    GUST_ROUTE("/hang", &hang_handler),
    GUST_ROUTES_END,
};

/* ---- Harness ------------------------------------------------------------ */

typedef struct logged {
    int errors;
    char last[512];
} logged;

static void capture_log(int level, const char *module, const char *msg,
                        void *data)
{
    logged *l = data;
    if (level >= GUST_LOG_ERROR && strcmp(module, "web") == 0) {
        l->errors++;
        snprintf(l->last, sizeof l->last, "%s", msg);
    }
}

static int pick_dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd); /* never listened on: connecting is refused */
    return ntohs(a.sin_port);
}

static gust_app *start_app(gust_loop *loop)
{
    gust_app *app = gust_app_new(routes, NULL);
    assert_non_null(app);
    assert_int_equal(gust_app_listen(app, 0, "127.0.0.1"), 0);
    app_port = gust_http_server_port(gust_app_server(app));
    gust_http_client_options o = {.max_clients = 50};
    client = gust_http_client_new(loop, &o);
    assert_non_null(client);
    dead_port = pick_dead_port();
    snprintf(dead_url, sizeof dead_url, "http://127.0.0.1:%d/", dead_port);
    in_flight = peak = finished = conn_closed = 0;
    return app;
}

static bool never(gust_loop *loop, void *data)
{
    (void)loop, (void)data;
    return false;
}

static void stop_app(gust_loop *loop, gust_app *app)
{
    gust_http_client_free(client);
    client = NULL;
    gust_app_free(app);
    /* The close callbacks of the connections run before the loop is freed. */
    gust_loop_run_until(loop, never, NULL, 0.1);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* GET path with raise_error off; returns the status, body copied to body. */
static int get(const char *path, char *body, size_t size)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", app_port, path);
    gust_http_client_request r = {.url = url, .raise_error = GUST_HTTP_NO};
    gust_value v;
    int rc = gust_await(gust_http_client_fetch(client, &r), &v);
    if (rc < 0)
        return rc;
    gust_http_client_response *resp = v.ptr;
    int code = resp->code;
    snprintf(body, size, "%s", resp->body);
    gust_value_free(&v);
    return code;
}

/* ---- 200 requests, 50 at a time ----------------------------------------- */

typedef struct load {
    int ok;
    int next;
} load;

static int load_worker(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop, (void)result;
    load *l = data;
    for (int i = 0; i < 4; i++) {
        int n = l->next++;
        char path[32], want[32], body[64];
        snprintf(path, sizeof path, "/sleep?n=%d", n);
        snprintf(want, sizeof want, "slept %d", n);
        if (get(path, body, sizeof body) == 200 && strcmp(body, want) == 0)
            l->ok++;
    }
    return 0;
}

static int load_main(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    gust_future *workers[50];
    for (int i = 0; i < 50; i++)
        workers[i] = gust_spawn(loop, load_worker, data);
    return gust_await(gust_all(loop, workers, 50), NULL);
}

static void test_200_requests_50_at_once(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_app *app = start_app(loop);
    load l = {0};
    double t0 = now_s();
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, load_main, &l),
                                        GUST_TEST_WAIT_SECONDS, NULL), 0);
    double took = now_s() - t0;
    assert_int_equal(l.ok, 200);
    assert_int_equal(finished, 200);
    assert_int_equal(in_flight, 0);
    /* The handlers overlapped: one at a time would be 200 x 10 ms. */
    assert_true(peak >= 10);
    assert_true(took < 2.0);
    stop_app(loop, app);
}

/* ---- Error paths --------------------------------------------------------- */

typedef struct errors_seen {
    int eio, fetch502, fetch500;
    char body502[512];
} errors_seen;

static int errors_main(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop, (void)result;
    errors_seen *e = data;
    char body[512];
    e->eio = get("/eio", body, sizeof body);
    if (strstr(body, "partial"))
        e->eio = -1; /* the buffered output must have been discarded */
    e->fetch502 = get("/fetch", e->body502, sizeof e->body502);
    e->fetch500 = get("/fetch?raw=1", body, sizeof body);
    return 0;
}

static void test_coroutine_errors(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_app *app = start_app(loop);
    logged log = {0};
    gust_log_set_handler(capture_log, &log);
    errors_seen e = {0};
    int rc = gust_loop_run_sync(loop, gust_spawn(loop, errors_main, &e),
                                GUST_TEST_WAIT_SECONDS, NULL);
    gust_log_set_handler(NULL, NULL);
    assert_int_equal(rc, 0);
    /* -EIO from the coroutine: 500, logged with the handler and the code. */
    assert_int_equal(e.eio, 500);
    /* The handler's own choice for a failed fetch, then the raw error. */
    assert_int_equal(e.fetch502, 502);
    assert_non_null(strstr(e.body502, "502: Bad Gateway"));
    assert_int_equal(e.fetch500, 500);
    /* One error line for each 5xx: the two errors returned and the 502
     * the handler chose (send_error logs a 5xx with its message). */
    assert_int_equal(log.errors, 3);
    stop_app(loop, app);
}

static void test_eio_log_line(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_app *app = start_app(loop);
    logged log = {0};
    gust_log_set_handler(capture_log, &log);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/eio", app_port);
    gust_http_client_request r = {.url = url, .raise_error = GUST_HTTP_NO};
    gust_value v;
    int rc = gust_loop_run_sync(loop, gust_http_client_fetch(client, &r),
                                GUST_TEST_WAIT_SECONDS, &v);
    gust_log_set_handler(NULL, NULL);
    assert_int_equal(rc, 0);
    gust_http_client_response *resp = v.ptr;
    assert_int_equal(resp->code, 500);
    assert_null(strstr(resp->body, "partial"));
    gust_value_free(&v);
    assert_int_equal(log.errors, 1);
    char want[256];
    snprintf(want, sizeof want, "500 GET /eio (eio): the method returned %s",
             gust_strerror(-EIO));
    assert_string_equal(log.last, want);
    stop_app(loop, app);
}

/* ---- The client leaves while the coroutine waits ------------------------- */

static int leave_main(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    const char *path = data;
    gust_value conn;
    int rc = gust_await(gust_tcp_connect_f(loop, "127.0.0.1", app_port, NULL),
                        &conn);
    if (rc < 0)
        return rc;
    gust_stream *s = conn.ptr;
    char req[128];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n",
                     path);
    rc = gust_await(gust_stream_write_f(s, req, (size_t)n), NULL);
    /* Wait until the handler runs, then leave before its 10 ms sleep ends. */
    for (int i = 0; rc == 0 && in_flight == 0 && i < 1000; i++)
        rc = gust_await(gust_sleep(loop, 0.0005), NULL);
    gust_stream_close(s);
    if (rc < 0)
        return rc;
    /* The handler finishes anyway; the server goes on serving. */
    for (int i = 0; finished == 0 && i < 1000; i++)
        gust_await(gust_sleep(loop, 0.005), NULL);
    char body[64];
    return get("/sleep?n=2", body, sizeof body) == 200 ? 0 : -EPROTO;
}

static void test_client_leaves_during_await(void **state)
{
    (void)state;
    gust_log_set_level(GUST_LOG_WARNING);
    gust_loop *loop = gust_loop_current();
    gust_app *app = start_app(loop);
    assert_int_equal(gust_loop_run_sync(loop,
                                        gust_spawn(loop, leave_main,
                                                   "/sleep?n=1"),
                                        GUST_TEST_WAIT_SECONDS, NULL), 0);
    assert_int_equal(conn_closed, 1);
    assert_int_equal(finished, 2);
    stop_app(loop, app);
}

static void test_async_finishes_in_on_connection_close(void **state)
{
    (void)state;
    gust_log_set_level(GUST_LOG_WARNING);
    gust_loop *loop = gust_loop_current();
    gust_app *app = start_app(loop);
    assert_int_equal(gust_loop_run_sync(loop,
                                        gust_spawn(loop, leave_main, "/hang"),
                                        GUST_TEST_WAIT_SECONDS, NULL), 0);
    assert_int_equal(conn_closed, 1);
    assert_int_equal(in_flight, 0);
    assert_int_equal(finished, 2); /* /hang, then /sleep?n=2 */
    stop_app(loop, app);
}

int main(void)
{
    gust_log_set_level(GUST_LOG_WARNING);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_200_requests_50_at_once, test_setup),
        cmocka_unit_test_setup(test_coroutine_errors, test_setup),
        cmocka_unit_test_setup(test_eio_log_line, test_setup),
        cmocka_unit_test_setup(test_client_leaves_during_await, test_setup),
        cmocka_unit_test_setup(test_async_finishes_in_on_connection_close,
                               test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
