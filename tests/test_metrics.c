/* metrics.h: what the HTTP server counts, read with gust_metrics_get() and
 * through gust_metrics_handler (the Prometheus text itself is checked by
 * tests/integration/test_metrics.py with a real parser). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "gust/gust.h"
#include "gust/testing.h"
#include "gust_test.h"

static int hello_get(gust_handler *h)
{
    return gust_handler_write_str(h, "Hello, world");
}

static int fail_get(gust_handler *h)
{
    (void)h;
    return -EIO; /* a 500 */
}

static const gust_handler_class hello = {.get = hello_get};
static const gust_handler_class fail = {.get = fail_get};

static void fetch(gust_testing_server *t, const char *path, int code,
                  gust_http_client_response **keep)
{
    gust_http_client_response *r;
    assert_int_equal(gust_testing_fetch(t, path, NULL, 0, &r), 0);
    assert_int_equal(r->code, code);
    if (keep)
        *keep = r;
    else
        gust_http_client_response_free(r);
}

static void test_counts(void **state)
{
    (void)state;
    const gust_route routes[] = {GUST_ROUTE("/", &hello),
                                 GUST_ROUTE("/fail", &fail),
                                 GUST_ROUTE("/metrics", &gust_metrics_handler),
                                 GUST_ROUTES_END};
    gust_app *app = gust_app_new(routes, NULL);
    assert_non_null(app);
    gust_testing_server *t = gust_testing_start_app(app);
    assert_non_null(t);
    gust_metrics_worker before, after;
    gust_metrics_get(&before);
    fetch(t, "/", 200, NULL);
    fetch(t, "/", 200, NULL);
    fetch(t, "/missing", 404, NULL);
    fetch(t, "/fail", 500, NULL);
    gust_metrics_get(&after);
    assert_int_equal(after.task_id, -1);
    assert_int_equal(after.requests[2] - before.requests[2], 2);
    assert_int_equal(after.requests[4] - before.requests[4], 1);
    assert_int_equal(after.requests[5] - before.requests[5], 1);
    assert_true(after.bytes_in - before.bytes_in > 4 * 20);
    assert_true(after.bytes_out - before.bytes_out > 2 * 12);
    assert_true(after.connections_open >= 1); /* the client keeps it */
    uint64_t counted = 0, counted_before = 0;
    for (int i = 0; i <= GUST_METRICS_BUCKETS; i++) {
        counted += after.duration_buckets[i];
        counted_before += before.duration_buckets[i];
    }
    assert_int_equal(counted - counted_before, 4);

    gust_metrics_websocket_opened();
    gust_metrics_websocket_opened();
    gust_metrics_websocket_closed();
    gust_http_client_response *r;
    fetch(t, "/metrics", 200, &r);
    gust_str ct = gust_http_headers_get_first(&r->headers,
                                              GUST_STR("Content-Type"));
    assert_non_null(ct.ptr);
    assert_memory_equal(ct.ptr, GUST_METRICS_CONTENT_TYPE, ct.len);
    assert_non_null(strstr(r->body, "\ngust_websockets_open{worker=\"main\"} 1\n"));
    assert_non_null(strstr(r->body, "# TYPE gust_http_request_duration_seconds "
                                    "histogram\n"));
    gust_http_client_response_free(r);
    gust_metrics_websocket_closed();
    gust_metrics_get(&after);
    assert_int_equal(after.websockets_open, 0);

    gust_testing_stop(t);
    gust_app_free(app);
    assert_int_equal(gust_loop_free(gust_loop_current()), 0);
    gust_metrics_get(&after);
    assert_int_equal(after.connections_open, 0);
}

static void test_render(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = gust_metrics_render(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    assert_non_null(strstr(text, "gust_http_requests_total{worker=\"main\","
                                 "code=\"2xx\"} "));
    assert_non_null(strstr(text, "le=\"+Inf\"} "));
    assert_int_equal(text[len - 1], '\n');
    free(text);
}

int main(void)
{
    gust_log_set_level(GUST_LOG_ERROR + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_counts, test_setup),
        cmocka_unit_test_setup(test_render, test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
