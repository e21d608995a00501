/* testing.h, used the way a Gust user tests an application: a small app
 * started on an ephemeral port, synchronous fetches from the test, a
 * coroutine run with a timeout. Doubles as an example (docs/testing.md). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/gust.h"
#include "gust/testing.h"
#include "gust/web.h"
#include "gust_test.h"

/* ---- The application under test ---------------------------------------- */

static int hello_get(gust_handler *h)
{
    const char *name = gust_handler_path_arg(h, 0);
    return gust_handler_printf(h, "Hello, %s", name ? name : "world");
}

static int echo_post(gust_handler *h)
{
    gust_http_request *req = gust_handler_request(h);
    gust_handler_set_header(h, "Content-Type", "application/octet-stream");
    return gust_handler_write(h, req->body.ptr, req->body.len);
}

static int slow_get(gust_handler *h)
{
    int rc = gust_await(gust_sleep(gust_handler_loop(h), 0.05), NULL);
    return rc < 0 ? rc : gust_handler_write_str(h, "slow");
}

/* Never answers; finishes when the client gives up. */
static int hang_get(gust_handler *h)
{
    (void)h;
    return GUST_HANDLER_ASYNC;
}

static void hang_closed(gust_handler *h)
{
    gust_handler_finish(h);
}

static const gust_handler_class hello = {.get = hello_get, .post = echo_post};
static const gust_handler_class slow = {
    .flags = GUST_HANDLER_COROUTINE, .get = slow_get};
static const gust_handler_class hang = {
    .get = hang_get, .on_connection_close = hang_closed};

static gust_app *make_app(void)
{
    const gust_route routes[] = {
        GUST_ROUTE("/", &hello),
        GUST_ROUTE("/hello/(\\w+)", &hello),
        GUST_ROUTE("/slow", &slow),
        GUST_ROUTE("/hang", &hang),
        GUST_ROUTES_END,
    };
    gust_app *app = gust_app_new(routes, NULL);
    assert_non_null(app);
    return app;
}

static void finish(gust_testing_server *t, gust_app *app)
{
    gust_testing_stop(t);
    gust_app_free(app);
    assert_int_equal(gust_loop_free(gust_loop_current()), 0);
}

/* ---- Tests --------------------------------------------------------------- */

static void test_fetch(void **state)
{
    (void)state;
    gust_app *app = make_app();
    gust_testing_server *t = gust_testing_start_app(app);
    assert_non_null(t);
    assert_true(gust_testing_port(t) > 0);
    char want[64];
    snprintf(want, sizeof want, "http://127.0.0.1:%d/x?y=1",
             gust_testing_port(t));
    assert_string_equal(gust_testing_url(t, "/x?y=1"), want);

    gust_http_client_response *r;
    assert_int_equal(gust_testing_fetch(t, "/", NULL, 0, &r), 0);
    assert_int_equal(r->code, 200);
    assert_string_equal(r->body, "Hello, world");
    gust_http_client_response_free(r);

    assert_int_equal(gust_testing_fetch(t, "/hello/gust", NULL, 0, &r), 0);
    assert_string_equal(r->body, "Hello, gust");
    assert_true(r->reused_connection); /* one client for the whole test */
    gust_http_client_response_free(r);

    /* A 404 or a 405 is a response to look at, not an error. */
    assert_int_equal(gust_testing_fetch(t, "/missing", NULL, 0, &r), 0);
    assert_int_equal(r->code, 404);
    gust_http_client_response_free(r);
    gust_http_client_request del = {.method = "DELETE"};
    assert_int_equal(gust_testing_fetch(t, "/", &del, 0, &r), 0);
    assert_int_equal(r->code, 405);
    gust_http_client_response_free(r);

    /* Any request: method, body, headers. */
    gust_http_client_request post = {.method = "POST", .body = "a\0b",
                                     .body_len = 3};
    assert_int_equal(gust_testing_fetch(t, "/", &post, 0, &r), 0);
    assert_int_equal(r->code, 200);
    assert_int_equal(r->body_len, 3);
    assert_memory_equal(r->body, "a\0b", 3);
    gust_http_client_response_free(r);

    /* Unless the test asks for raise_error. */
    gust_http_client_request strict = {.raise_error = GUST_HTTP_YES};
    assert_int_equal(gust_testing_fetch(t, "/missing", &strict, 0, &r),
                     GUST_EHTTP);
    assert_null(r);
    finish(t, app);
}

static void test_fetch_timeout(void **state)
{
    (void)state;
    gust_log_set_level(GUST_LOG_NONE);
    gust_app *app = make_app();
    gust_testing_server *t = gust_testing_start_app(app);
    gust_http_client_response *r = (gust_http_client_response *)&r;
    double t0 = now_s();
    assert_int_equal(gust_testing_fetch(t, "/hang", NULL, 0.3, &r),
                     GUST_ETIMEOUT);
    double took = now_s() - t0;
    assert_null(r);
    assert_true(took >= 0.25 && took < 5.0);
    /* The server is fine afterwards. */
    assert_int_equal(gust_testing_fetch(t, "/slow", NULL, 0, &r), 0);
    assert_string_equal(r->body, "slow");
    gust_http_client_response_free(r);
    gust_log_set_level(GUST_LOG_WARNING);
    finish(t, app);
}

/* Inside the loop: ten fetches at once from a coroutine. */
static int ten_at_once(gust_loop *loop, gust_value *result, void *data)
{
    gust_testing_server *t = data;
    gust_future *fs[10];
    for (int i = 0; i < 10; i++)
        fs[i] = gust_http_fetch(gust_testing_client(t),
                                gust_testing_url(t, "/slow"));
    gust_value v;
    int rc = gust_await(gust_all(loop, fs, 10), &v);
    if (rc < 0)
        return rc;
    intptr_t ok = 0;
    gust_value *rs = v.ptr;
    for (int i = 0; i < 10; i++)
        ok += strcmp(((gust_http_client_response *)rs[i].ptr)->body,
                     "slow") == 0;
    gust_value_free(&v);
    *result = GUST_VALUE_INT(ok);
    return 0;
}

static void test_run_coroutine(void **state)
{
    (void)state;
    gust_app *app = make_app();
    gust_testing_server *t = gust_testing_start_app(app);
    gust_loop *loop = gust_loop_current();
    gust_value v;
    double t0 = now_s();
    assert_int_equal(gust_testing_run(gust_spawn(loop, ten_at_once, t), 0, &v),
                     0);
    assert_int_equal((intptr_t)v.ptr, 10);
    /* Ten 50 ms handlers side by side, not one after the other. */
    assert_true(now_s() - t0 < 0.5);
    finish(t, app);
}

static int sleeps_long(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    int *unwound = data;
    gust_future *nap = gust_sleep(loop, 30);
    int rc = gust_await(gust_future_ref(nap), NULL);
    /* Cancelling a coroutine leaves what it awaits running: stop it. */
    gust_future_cancel(nap);
    gust_future_unref(nap);
    *unwound = rc == GUST_ECANCELED;
    return rc;
}

static void test_run_timeout(void **state)
{
    (void)state;
    gust_log_set_level(GUST_LOG_NONE);
    gust_loop *loop = gust_loop_current();
    int unwound = 0;
    double t0 = now_s();
    assert_int_equal(gust_testing_run(gust_spawn(loop, sleeps_long, &unwound),
                                      0.1, NULL),
                     GUST_ETIMEOUT);
    assert_true(now_s() - t0 < 5.0);
    assert_int_equal(unwound, 1); /* cancelled, and it ran to its end */
    gust_log_set_level(GUST_LOG_WARNING);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_default_timeout(void **state)
{
    (void)state;
    unsetenv("GUST_TEST_TIMEOUT");
    assert_true(gust_testing_timeout() == 5.0);
    setenv("GUST_TEST_TIMEOUT", "12.5", 1);
    assert_true(gust_testing_timeout() == 12.5);
    setenv("GUST_TEST_TIMEOUT", "soon", 1);
    assert_true(gust_testing_timeout() == 5.0);
    unsetenv("GUST_TEST_TIMEOUT");
}

/* A plain callback server works the same way. */
static void answer(gust_http_request *req, void *data)
{
    (void)data;
    gust_http_respond(req, 201, "text/plain", req->path, strlen(req->path));
}

static void test_bare_server(void **state)
{
    (void)state;
    gust_testing_server *t = gust_testing_start(gust_http_callback(answer, NULL),
                                                NULL);
    assert_non_null(t);
    gust_http_client_response *r;
    assert_int_equal(gust_testing_fetch(t, "/p/q", NULL, 0, &r), 0);
    assert_int_equal(r->code, 201);
    assert_string_equal(r->body, "/p/q");
    gust_http_client_response_free(r);
    gust_testing_stop(t);
    assert_int_equal(gust_loop_free(gust_loop_current()), 0);
}

/* Code written against the names before issue 17 still compiles and
 * works: gust_http_request_write (now _write_raw), gust_http_response and
 * gust_http_response_free (now gust_http_client_response, _free). */
static void answer_raw_old_name(gust_http_request *req, void *data)
{
    (void)data;
    static const char wire[] = "HTTP/1.1 202 Accepted\r\n"
                               "Content-Length: 3\r\n\r\nold";
    gust_http_request_write(req, wire, sizeof wire - 1);
    gust_http_request_finish(req);
}

static void test_deprecated_names(void **state)
{
    (void)state;
    gust_testing_server *t = gust_testing_start(
        gust_http_callback(answer_raw_old_name, NULL), NULL);
    assert_non_null(t);
    gust_http_response *r;
    assert_int_equal(gust_testing_fetch(t, "/", NULL, 0, &r), 0);
    assert_int_equal(r->code, 202);
    assert_string_equal(r->body, "old");
    gust_http_response_free(r);
    gust_testing_stop(t);
    assert_int_equal(gust_loop_free(gust_loop_current()), 0);
}

int main(void)
{
    gust_log_set_level(GUST_LOG_WARNING);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_fetch, test_setup),
        cmocka_unit_test_setup(test_fetch_timeout, test_setup),
        cmocka_unit_test_setup(test_run_coroutine, test_setup),
        cmocka_unit_test_setup(test_run_timeout, test_setup),
        cmocka_unit_test_setup(test_default_timeout, test_setup),
        cmocka_unit_test_setup(test_bare_server, test_setup),
        cmocka_unit_test_setup(test_deprecated_names, test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
