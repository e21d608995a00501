/* The long-polling chat of docs/web.md ("Recipe: a long-polling chat"),
 * tested with testing.h as a user would test it: a poll waits on a
 * condition until a message is posted; a poll whose client goes away has
 * its wait cancelled in on_connection_close and finishes. The handler
 * functions are the recipe's (the class here also counts on_finish). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/gust.h"
#include "gust/testing.h"
#include "gust/web.h"

/* ---- The recipe ---------------------------------------------------------- */

typedef struct chat {
    gust_condition *cond;
    json_t *messages; /* array of strings; a cursor is an index in it */
} chat;

typedef struct poll_state {
    gust_future *wait; /* the condition wait in progress, or NULL */
} poll_state;

/* GET /updates?cursor=N: the messages after the N first, waiting for one
 * when there are none yet. */
static int updates_get(gust_handler *h)
{
    chat *c = gust_handler_route_data(h);
    poll_state *st = gust_handler_state(h);
    const char *arg = gust_handler_get_argument(h, "cursor", "0");
    size_t cursor = (size_t)strtoul(arg, NULL, 10);
    while (json_array_size(c->messages) <= cursor) {
        st->wait = gust_condition_wait(c->cond, 0);
        if (!st->wait)
            return -ENOMEM;
        int rc = gust_await(gust_future_ref(st->wait), NULL);
        gust_future_unref(st->wait);
        st->wait = NULL;
        if (rc == GUST_ECANCELED)
            return 0; /* the client left: finish quietly */
        if (rc < 0)
            return rc;
    }
    json_t *out = json_pack("{s:I, s:[]}", "cursor",
                            (json_int_t)json_array_size(c->messages),
                            "messages");
    for (size_t i = cursor; i < json_array_size(c->messages); i++)
        json_array_append(json_object_get(out, "messages"),
                          json_array_get(c->messages, i));
    int rc = gust_handler_write_json(h, out);
    json_decref(out);
    return rc;
}

/* The client went away while the poll waits: stop waiting. */
static void updates_closed(gust_handler *h)
{
    poll_state *st = gust_handler_state(h);
    if (st->wait)
        gust_future_cancel(st->wait);
}

/* POST /new (body argument "body"): adds a message, wakes every poll. */
static int new_post(gust_handler *h)
{
    chat *c = gust_handler_route_data(h);
    const char *body = gust_handler_get_argument(h, "body", GUST_REQUIRED);
    if (!body)
        return 0; /* 400 Missing argument body */
    json_array_append_new(c->messages, json_string(body));
    gust_condition_notify_all(c->cond);
    return gust_handler_write_str(h, "ok");
}

static int polls_finished; /* for the test: every poll ends */

static void updates_finished(gust_handler *h)
{
    (void)h;
    polls_finished++;
}

static const gust_handler_class updates_handler = {
    .flags = GUST_HANDLER_COROUTINE,
    .state_size = sizeof(poll_state),
    .get = updates_get,
    .on_connection_close = updates_closed,
    .on_finish = updates_finished,
};
static const gust_handler_class new_handler = {.post = new_post};

/* ---- Tests --------------------------------------------------------------- */

typedef struct fixture {
    chat chat;
    gust_app *app;
    gust_testing_server *t;
} fixture;

static void start(fixture *fx)
{
    fx->chat.cond = gust_condition_new(gust_loop_current());
    fx->chat.messages = json_array();
    assert_non_null(fx->chat.cond);
    const gust_route routes[] = {
        GUST_ROUTE("/updates", &updates_handler, .data = &fx->chat),
        GUST_ROUTE("/new", &new_handler, .data = &fx->chat),
        GUST_ROUTES_END,
    };
    fx->app = gust_app_new(routes, NULL);
    assert_non_null(fx->app);
    fx->t = gust_testing_start_app(fx->app);
    assert_non_null(fx->t);
    polls_finished = 0;
}

static void stop(fixture *fx)
{
    gust_testing_stop(fx->t);
    gust_app_free(fx->app);
    gust_condition_free(fx->chat.cond);
    json_decref(fx->chat.messages);
    assert_int_equal(gust_loop_free(gust_loop_current()), 0);
}

static gust_future *post_message(fixture *fx, const char *form)
{
    static const gust_http_header form_type[] = {
        {GUST_STR("Content-Type"),
         GUST_STR("application/x-www-form-urlencoded")}};
    gust_http_client_request r = {.url = gust_testing_url(fx->t, "/new"),
                                  .method = "POST",
                                  .headers = form_type,
                                  .num_headers = 1,
                                  .body = form,
                                  .body_len = strlen(form)};
    return gust_http_client_fetch(gust_testing_client(fx->t), &r);
}

/* Two polls wait; a message posted 0.1 s later reaches both. */
static int poll_then_post(gust_loop *loop, gust_value *result, void *data)
{
    fixture *fx = data;
    gust_http_client *cl = gust_testing_client(fx->t);
    gust_future *polls[2] = {
        gust_http_fetch(cl, gust_testing_url(fx->t, "/updates?cursor=0")),
        gust_http_fetch(cl, gust_testing_url(fx->t, "/updates")),
    };
    gust_future *all = gust_all(loop, polls, 2);
    int rc = gust_await(gust_sleep(loop, 0.1), NULL);
    if (rc == 0 && gust_future_done(all))
        rc = -EALREADY; /* a poll answered before anything was posted */
    if (rc == 0)
        rc = gust_await(post_message(fx, "body=hello"), NULL);
    if (rc < 0)
        gust_future_cancel(all); /* do not wait for polls that cannot end */
    gust_value v = GUST_VALUE_NONE;
    int polled = gust_await(all, &v);
    if (rc == 0)
        rc = polled;
    if (rc == 0) {
        gust_value *rs = v.ptr;
        intptr_t ok = 0;
        for (int i = 0; i < 2; i++)
            ok += strcmp(((gust_http_client_response *)rs[i].ptr)->body,
                         "{\"cursor\":1,\"messages\":[\"hello\"]}") == 0;
        *result = GUST_VALUE_INT(ok);
    }
    gust_value_free(&v);
    return rc;
}

static void test_poll_gets_posted_message(void **state)
{
    (void)state;
    fixture fx;
    start(&fx);
    gust_value v;
    assert_int_equal(gust_testing_run(gust_spawn(gust_loop_current(),
                                                 poll_then_post, &fx),
                                      0, &v),
                     0);
    assert_int_equal((intptr_t)v.ptr, 2);
    assert_int_equal(polls_finished, 2);
    /* A poll with a cursor behind answers at once. */
    gust_http_client_response *r;
    assert_int_equal(gust_testing_fetch(fx.t, "/updates?cursor=0", NULL, 0, &r),
                     0);
    assert_string_equal(r->body, "{\"cursor\":1,\"messages\":[\"hello\"]}");
    gust_http_client_response_free(r);
    stop(&fx);
}

static void test_poll_cancelled_when_client_leaves(void **state)
{
    (void)state;
    fixture fx;
    start(&fx);
    /* The client gives up after 0.2 s: the server's wait is cancelled by
     * on_connection_close and the handler finishes. */
    gust_http_client_request r = {.request_timeout = 0.2};
    gust_http_client_response *resp;
    assert_int_equal(gust_testing_fetch(fx.t, "/updates", &r, 0, &resp),
                     GUST_ETIMEOUT);
    gust_testing_settle(0.1);
    assert_int_equal(polls_finished, 1);
    /* Nobody waits any more: a new message wakes no one. */
    assert_int_equal(gust_condition_notify_all(fx.chat.cond), 0);
    /* And the chat still works. */
    gust_value v;
    assert_int_equal(gust_testing_run(post_message(&fx, "body=later"), 0, &v),
                     0);
    gust_value_free(&v);
    assert_int_equal(gust_testing_fetch(fx.t, "/updates?cursor=0", NULL, 0,
                                        &resp),
                     0);
    assert_string_equal(resp->body, "{\"cursor\":1,\"messages\":[\"later\"]}");
    gust_http_client_response_free(resp);
    stop(&fx);
}

int main(void)
{
    gust_log_set_level(GUST_LOG_WARNING);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll_gets_posted_message),
        cmocka_unit_test(test_poll_cancelled_when_client_leaves),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
