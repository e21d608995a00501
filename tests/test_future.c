/* Unit tests for futures and their combinators (include/gust/future.h);
 * coroutines are in test_coro.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "gust_test.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gust/future.h"
#include "gust/log.h"
#include "gust/loop.h"

/* A few idle iterations, so queued callbacks run. */
/* ---- Log capture ------------------------------------------------------- */

static int log_count;
static char log_last[512];

static void capture_log(int level, const char *module, const char *msg,
                        void *data)
{
    (void)level;
    (void)module;
    (void)data;
    log_count++;
    snprintf(log_last, sizeof log_last, "%s", msg);
}

static void capture_start(void)
{
    log_count = 0;
    log_last[0] = '\0';
    gust_log_set_handler(capture_log, NULL);
}

static void capture_stop(void)
{
    gust_log_set_handler(NULL, NULL);
}

/* ---- Values ------------------------------------------------------------ */

static int frees;

static void count_free(void *p)
{
    frees++;
    free(p);
}

static gust_value owned_int(int v)
{
    int *p = malloc(sizeof *p);
    assert_non_null(p);
    *p = v;
    return (gust_value){p, count_free};
}

/* ---- Done-callbacks ---------------------------------------------------- */

static int order[16];
static int norder;

static void record_cb(gust_future *f, void *data)
{
    (void)f;
    order[norder++] = (int)(intptr_t)data;
}

static void test_callbacks_in_order(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *f = gust_future_new(loop);
    assert_non_null(f);
    norder = 0;
    for (int i = 1; i <= 3; i++)
        assert_int_equal(gust_future_add_done_callback(f, record_cb,
                                                       (void *)(intptr_t)i), 0);
    spin(loop, 2);
    assert_int_equal(norder, 0); /* pending: nothing runs */
    assert_false(gust_future_done(f));
    assert_int_equal(gust_future_status(f), -EINPROGRESS);
    assert_int_equal(gust_future_set_result(f, GUST_VALUE_INT(42)), 0);
    assert_int_equal(norder, 0); /* never inside set_result */
    assert_true(gust_future_done(f));
    spin(loop, 1);
    assert_int_equal(norder, 3);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 3);
    assert_int_equal(gust_future_status(f), 0);
    assert_int_equal((intptr_t)gust_future_result(f), 42);
    gust_future_unref(f);
    assert_int_equal(gust_loop_free(loop), 0);
}

static gust_future *added_inside;

static void add_more_cb(gust_future *f, void *data)
{
    (void)data;
    order[norder++] = 10;
    added_inside = f;
    assert_int_equal(gust_future_add_done_callback(f, record_cb,
                                                   (void *)(intptr_t)11), 0);
}

static void test_callback_after_completion(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *f = gust_future_new(loop);
    assert_non_null(f);
    norder = 0;
    assert_int_equal(gust_future_set_error(f, -ECONNRESET), 0);
    spin(loop, 1);
    /* Added to a done future: not inline, in the next iteration, and those
     * added together stay in order. */
    assert_int_equal(gust_future_add_done_callback(f, record_cb,
                                                   (void *)(intptr_t)1), 0);
    assert_int_equal(gust_future_add_done_callback(f, add_more_cb, NULL), 0);
    assert_int_equal(gust_future_add_done_callback(f, record_cb,
                                                   (void *)(intptr_t)2), 0);
    assert_int_equal(norder, 0);
    spin(loop, 1);
    /* The one added from inside a callback waits for the next iteration. */
    assert_int_equal(norder, 3);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 10);
    assert_int_equal(order[2], 2);
    spin(loop, 1);
    assert_int_equal(norder, 4);
    assert_int_equal(order[3], 11);
    assert_int_equal(gust_future_status(f), -ECONNRESET);
    assert_null(gust_future_result(f));
    gust_future_unref(f);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* The future keeps itself alive while its callbacks are queued. */
static void test_unref_before_callbacks(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *f = gust_future_new(loop);
    norder = 0;
    frees = 0;
    assert_int_equal(gust_future_add_done_callback(f, record_cb,
                                                   (void *)(intptr_t)7), 0);
    assert_int_equal(gust_future_set_result(f, owned_int(5)), 0);
    gust_future_unref(f);
    assert_int_equal(frees, 0);
    spin(loop, 1);
    assert_int_equal(norder, 1);
    assert_int_equal(frees, 1); /* the value went with the future */
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_values_ownership(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    frees = 0;
    gust_future *f = gust_future_new(loop);
    assert_int_equal(gust_future_set_result(f, owned_int(9)), 0);
    assert_int_equal(*(int *)gust_future_result(f), 9);
    gust_value v = gust_future_take(f);
    assert_non_null(v.ptr);
    assert_null(gust_future_result(f)); /* taken */
    gust_value again = gust_future_take(f);
    assert_null(again.ptr);
    gust_future_unref(f);
    assert_int_equal(frees, 0); /* ours now */
    assert_int_equal(*(int *)v.ptr, 9);
    gust_value_free(&v);
    assert_int_equal(frees, 1);
    assert_null(v.ptr);
    gust_value_free(NULL);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_set_twice_reported(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    frees = 0;
    gust_future *f = gust_future_new(loop);
    assert_int_equal(gust_future_set_result(f, owned_int(1)), 0);
    capture_start();
    /* The second value is freed at once: the producer never cleans up. */
    assert_int_equal(gust_future_set_result(f, owned_int(2)), -EALREADY);
    assert_int_equal(frees, 1);
    assert_int_equal(log_count, 1);
    assert_non_null(strstr(log_last, "completed twice"));
    assert_int_equal(gust_future_set_error(f, -EIO), -EALREADY);
    assert_int_equal(log_count, 2);
    capture_stop();
    assert_int_equal(*(int *)gust_future_result(f), 1); /* first one kept */
    gust_future_unref(f);
    assert_int_equal(frees, 2);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_unretrieved_error_logged(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    capture_start();
    gust_future *f = gust_future_new(loop);
    gust_future_set_error(f, -ECONNREFUSED);
    gust_future_unref(f);
    assert_int_equal(log_count, 1);
    assert_non_null(strstr(log_last, "never retrieved"));
    assert_non_null(strstr(log_last, "ECONNREFUSED"));
    /* Read: no warning. Cancelled: no warning. */
    f = gust_future_new(loop);
    gust_future_set_error(f, -EIO);
    assert_int_equal(gust_future_status(f), -EIO);
    gust_future_unref(f);
    f = gust_future_new(loop);
    assert_true(gust_future_cancel(f));
    gust_future_unref(f);
    assert_int_equal(log_count, 1);
    capture_stop();
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_cancel(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    frees = 0;
    norder = 0;
    gust_future *f = gust_future_new(loop);
    gust_future_add_done_callback(f, record_cb, (void *)(intptr_t)1);
    assert_true(gust_future_cancel(f));
    assert_true(gust_future_done(f));
    assert_true(gust_future_cancelled(f));
    assert_int_equal(gust_future_status(f), GUST_ECANCELED);
    assert_false(gust_future_cancel(f)); /* done: a no-op */
    /* A producer finishing late is told quietly, its value freed. */
    capture_start();
    assert_int_equal(gust_future_set_result(f, owned_int(3)), GUST_ECANCELED);
    assert_int_equal(log_count, 0);
    capture_stop();
    assert_int_equal(frees, 1);
    assert_int_equal(norder, 0);
    spin(loop, 1);
    assert_int_equal(norder, 1);
    /* Cancel of a completed future. */
    gust_future *g = gust_future_new(loop);
    gust_future_set_result(g, GUST_VALUE_INT(1));
    assert_false(gust_future_cancel(g));
    assert_false(gust_future_cancelled(g));
    assert_int_equal(gust_future_status(g), 0);
    gust_future_unref(g);
    gust_future_unref(f);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- sleep ------------------------------------------------------------- */

static void test_sleep(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    double t0 = now_s();
    gust_future *f = gust_sleep(loop, 0.05);
    assert_non_null(f);
    assert_int_equal(gust_loop_run_sync(loop, f, 10, NULL), 0);
    double dt = now_s() - t0;
    assert_true(dt >= 0.049);
    assert_true(dt < 5);
    /* sleep_until, on the loop clock. */
    gust_loop_update_time(loop);
    f = gust_sleep_until(loop, gust_loop_time(loop) + 0.02);
    assert_int_equal(gust_loop_run_sync(loop, f, 10, NULL), 0);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_sleep_cancel(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *f = gust_sleep(loop, 3600);
    assert_int_equal(gust_loop_free(loop), -EBUSY); /* its timer */
    assert_true(gust_future_cancel(f));
    assert_int_equal(gust_future_status(f), GUST_ECANCELED);
    gust_future_unref(f);
    /* The timer is gone: the loop frees with nothing left. */
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Dropping the last user reference never stops the producer. */
static void test_sleep_unref_early(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *f = gust_sleep(loop, 0.01);
    norder = 0;
    gust_future_add_done_callback(f, record_cb, (void *)(intptr_t)5);
    gust_future_unref(f);
    for (int i = 0; i < 1000 && norder == 0; i++)
        gust_loop_run_once(loop, 0.05);
    assert_int_equal(norder, 1);
    spin(loop, 1);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- all / any --------------------------------------------------------- */

static void test_all_in_order(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    frees = 0;
    gust_future *a = gust_future_new(loop), *b = gust_future_new(loop),
                *c = gust_future_new(loop);
    gust_future *all = gust_all(loop, (gust_future *[]){gust_future_ref(a),
                                                        gust_future_ref(b),
                                                        gust_future_ref(c)}, 3);
    assert_non_null(all);
    /* Complete in reverse order; results come back in the order given. */
    gust_future_set_result(c, owned_int(3));
    spin(loop, 2);
    gust_future_set_result(b, owned_int(2));
    spin(loop, 2);
    assert_false(gust_future_done(all));
    gust_future_set_result(a, owned_int(1));
    gust_future_unref(a);
    gust_future_unref(b);
    gust_future_unref(c);
    gust_value v;
    assert_int_equal(gust_loop_run_sync(loop, all, 10, &v), 0);
    gust_value *vals = v.ptr;
    assert_non_null(vals);
    for (int i = 0; i < 3; i++)
        assert_int_equal(*(int *)vals[i].ptr, i + 1);
    /* Take one entry out; the rest go with the array. */
    gust_value second = vals[1];
    vals[1] = GUST_VALUE_NONE;
    gust_value_free(&v);
    assert_int_equal(frees, 2);
    gust_value_free(&second);
    assert_int_equal(frees, 3);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_all_fails_fast(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *slow = gust_sleep(loop, 3600);
    gust_future *bad = gust_future_new(loop);
    gust_future *all = gust_all(loop, (gust_future *[]){
                                          gust_future_ref(slow),
                                          gust_future_ref(bad),
                                          gust_sleep(loop, 0)}, 3);
    gust_future_set_error(bad, -EPIPE);
    gust_future_unref(bad);
    double t0 = now_s();
    assert_int_equal(gust_loop_run_sync(loop, gust_future_ref(all), 10, NULL),
                     -EPIPE);
    assert_true(now_s() - t0 < 5);
    /* The others are not cancelled by a failure. */
    assert_false(gust_future_done(slow));
    assert_true(gust_future_cancel(slow));
    gust_future_unref(slow);
    spin(loop, 2);
    gust_future_unref(all);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_all_empty_and_inline(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_value v = GUST_VALUE_INT(1);
    assert_int_equal(gust_loop_run_sync(loop, gust_all(loop, NULL, 0), 10, &v),
                     0);
    assert_null(v.ptr);
    /* Futures created inline: all references consumed, nothing leaks. */
    assert_int_equal(gust_loop_run_sync(loop,
                         gust_all(loop, (gust_future *[]){
                             gust_sleep(loop, 0.01), gust_sleep(loop, 0.02),
                             gust_sleep(loop, 0)}, 3), 10, &v), 0);
    assert_non_null(v.ptr);
    gust_value_free(&v);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_all_cancel(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *a = gust_sleep(loop, 3600);
    gust_future *all = gust_all(loop, (gust_future *[]){
                                          gust_future_ref(a),
                                          gust_sleep(loop, 3600)}, 2);
    assert_true(gust_future_cancel(all));
    assert_true(gust_future_cancelled(a)); /* children cancelled too */
    spin(loop, 2);
    gust_future_unref(a);
    gust_future_unref(all);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_any(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    frees = 0;
    gust_future *slow = gust_sleep(loop, 3600);
    gust_future *fast = gust_future_new(loop);
    size_t winner = 99;
    gust_future *any = gust_any(loop, (gust_future *[]){
                                          gust_future_ref(slow),
                                          gust_future_ref(fast)}, 2, &winner);
    gust_future_set_result(fast, owned_int(8));
    gust_future_unref(fast);
    gust_value v;
    assert_int_equal(gust_loop_run_sync(loop, any, 10, &v), 0);
    assert_int_equal(winner, 1);
    assert_int_equal(*(int *)v.ptr, 8);
    gust_value_free(&v);
    assert_int_equal(frees, 1);
    /* The losers are cancelled. */
    assert_true(gust_future_cancelled(slow));
    gust_future_unref(slow);
    spin(loop, 2);
    /* An error wins as well. */
    gust_future *bad = gust_future_new(loop);
    any = gust_any(loop, (gust_future *[]){gust_sleep(loop, 3600),
                                           gust_future_ref(bad)}, 2, &winner);
    gust_future_set_error(bad, -EHOSTUNREACH);
    gust_future_unref(bad);
    assert_int_equal(gust_loop_run_sync(loop, any, 10, NULL), -EHOSTUNREACH);
    assert_int_equal(winner, 1);
    spin(loop, 2);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- with_timeout ------------------------------------------------------ */

static void test_with_timeout_expires(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *inner = gust_future_new(loop);
    double t0 = now_s();
    gust_future *w = gust_with_timeout(loop, gust_future_ref(inner), 0.05);
    assert_int_equal(gust_loop_run_sync(loop, w, 10, NULL), GUST_ETIMEOUT);
    double dt = now_s() - t0;
    assert_true(dt >= 0.049 && dt < 5);
    /* The inner future is not cancelled. */
    assert_false(gust_future_done(inner));
    frees = 0;
    gust_future_set_result(inner, owned_int(1));
    gust_future_unref(inner);
    spin(loop, 2);
    assert_int_equal(frees, 1); /* dropped once nobody holds it */
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_with_timeout_completes(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *inner = gust_future_new(loop);
    gust_future *w = gust_with_timeout(loop, gust_future_ref(inner), 3600);
    gust_future_set_result(inner, GUST_VALUE_INT(77));
    gust_future_unref(inner);
    gust_value v;
    assert_int_equal(gust_loop_run_sync(loop, w, 10, &v), 0);
    assert_int_equal((intptr_t)v.ptr, 77);
    /* Its timer was stopped: nothing left on the loop. */
    assert_int_equal(gust_loop_free(loop), 0);

    loop = new_loop();
    w = gust_with_timeout(loop, gust_sleep(loop, 0), 3600);
    assert_int_equal(gust_loop_run_sync(loop, w, 10, NULL), 0);
    /* Cancelling the wrapper cancels the inner one. */
    inner = gust_future_new(loop);
    w = gust_with_timeout(loop, gust_future_ref(inner), 3600);
    assert_true(gust_future_cancel(w));
    assert_true(gust_future_cancelled(inner));
    gust_future_unref(w);
    gust_future_unref(inner);
    spin(loop, 2);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- gather ------------------------------------------------------------ */

static void test_gather_every_outcome(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    frees = 0;
    gust_future *ok = gust_future_new(loop), *bad = gust_future_new(loop);
    capture_start();
    gust_future *g = gust_gather(loop, (gust_future *[]){
                                           gust_future_ref(ok),
                                           gust_future_ref(bad),
                                           gust_sleep(loop, 0.01),
                                           gust_future_new(loop)}, 4);
    assert_non_null(g);
    /* A failure does not finish it early: the others are waited for. */
    gust_future_set_error(bad, -ECONNREFUSED);
    spin(loop, 3);
    assert_false(gust_future_done(g));
    gust_future_set_result(ok, owned_int(5));
    gust_future_unref(ok);
    gust_future_unref(bad);
    gust_value v;
    /* The fourth never completes: gather waits for it, and cancelling
     * gather cancels it. */
    spin(loop, 3);
    assert_false(gust_future_done(g));
    assert_true(gust_future_cancel(g));
    assert_int_equal(gust_future_status(g), GUST_ECANCELED);
    gust_future_unref(g);
    spin(loop, 3);

    /* Every outcome, in order, each with its own error. */
    ok = gust_future_new(loop);
    bad = gust_future_new(loop);
    g = gust_gather(loop, (gust_future *[]){gust_future_ref(ok),
                                            gust_future_ref(bad),
                                            gust_sleep(loop, 0)}, 3);
    gust_future_set_error(bad, GUST_ETIMEOUT);
    gust_future_set_result(ok, owned_int(7));
    gust_future_unref(ok);
    gust_future_unref(bad);
    assert_int_equal(gust_loop_run_sync(loop, g, 10, &v), 0);
    gust_outcome *outs = v.ptr;
    assert_non_null(outs);
    assert_int_equal(outs[0].status, 0);
    assert_int_equal(*(int *)outs[0].value.ptr, 7);
    assert_int_equal(outs[1].status, GUST_ETIMEOUT);
    assert_null(outs[1].value.ptr);
    assert_int_equal(outs[2].status, 0);
    gust_value_free(&v);
    assert_int_equal(frees, 2); /* the 5 above (cancelled gather) and the 7 */
    /* No child error was reported as never retrieved. */
    assert_int_equal(log_count, 0);
    /* Nothing to gather. */
    v = GUST_VALUE_INT(1);
    assert_int_equal(gust_loop_run_sync(loop, gust_gather(loop, NULL, 0), 10,
                                        &v), 0);
    assert_null(v.ptr);
    capture_stop();
    spin(loop, 2);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* with_timeout around all: the wrapper's timeout is handled; the inner
 * future failing later with its own timeout is not reported again. */
static void test_with_timeout_all_quiet(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    capture_start();
    gust_future *up1 = gust_future_new(loop), *up2 = gust_future_new(loop);
    gust_future *w = gust_with_timeout(
        loop, gust_all(loop, (gust_future *[]){gust_future_ref(up1),
                                               gust_future_ref(up2)}, 2),
        0.02);
    assert_int_equal(gust_loop_run_sync(loop, w, 10, NULL), GUST_ETIMEOUT);
    gust_future_set_error(up1, GUST_ETIMEOUT); /* an upstream's own deadline */
    gust_future_set_result(up2, GUST_VALUE_NONE);
    gust_future_unref(up1);
    gust_future_unref(up2);
    spin(loop, 4);
    assert_int_equal(log_count, 0);

    /* Another late error still warns... */
    up1 = gust_future_new(loop);
    w = gust_with_timeout(loop, gust_all(loop, (gust_future *[]){
                                                   gust_future_ref(up1)}, 1),
                          0.01);
    assert_int_equal(gust_loop_run_sync(loop, w, 10, NULL), GUST_ETIMEOUT);
    gust_future_set_error(up1, -ECONNRESET);
    gust_future_unref(up1);
    spin(loop, 4);
    assert_int_equal(log_count, 1);
    assert_non_null(strstr(log_last, "never retrieved"));
    assert_non_null(strstr(log_last, "ECONNRESET"));

    /* ...unless it was marked as expected. */
    up1 = gust_future_new(loop);
    w = gust_with_timeout(
        loop,
        gust_future_expect_error(
            gust_all(loop, (gust_future *[]){gust_future_ref(up1)}, 1)),
        0.01);
    assert_int_equal(gust_loop_run_sync(loop, w, 10, NULL), GUST_ETIMEOUT);
    gust_future_set_error(up1, -ECONNRESET);
    gust_future_unref(up1);
    spin(loop, 4);
    assert_int_equal(log_count, 1);
    /* An expected error is still the status of whoever reads it. */
    gust_future *f = gust_future_expect_error(gust_future_new(loop));
    gust_future_set_error(f, -EIO);
    assert_int_equal(gust_future_status(f), -EIO);
    gust_future_unref(f);
    f = gust_future_new(loop);
    gust_future_set_error(f, -EIO);
    gust_future_unref(gust_future_expect_error(f));
    assert_int_equal(log_count, 1);
    capture_stop();
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Executor ---------------------------------------------------------- */

static int square_work(gust_value *result, void *data)
{
    int *p = malloc(sizeof *p);
    if (!p)
        return -ENOMEM;
    *p = (int)(intptr_t)data * (int)(intptr_t)data;
    *result = (gust_value){p, count_free};
    return 0;
}

static int failing_work(gust_value *result, void *data)
{
    (void)data;
    *result = owned_int(1); /* set, then failed: freed by the future */
    return -EACCES;
}

static void test_executor(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    frees = 0;
    gust_value v;
    gust_future *f = gust_run_in_executor(loop, square_work, (void *)7);
    assert_non_null(f);
    assert_int_equal(gust_loop_run_sync(loop, f, 20, &v), 0);
    assert_int_equal(*(int *)v.ptr, 49);
    gust_value_free(&v);
    assert_int_equal(gust_loop_run_sync(loop,
                         gust_run_in_executor(loop, failing_work, NULL), 20,
                         NULL), -EACCES);
    assert_int_equal(frees, 2);
    /* Cancelled while the work runs: the work's value is dropped. */
    f = gust_run_in_executor(loop, square_work, (void *)3);
    assert_true(gust_future_cancel(f));
    gust_future_unref(f);
    for (int i = 0; i < 400 && frees < 3; i++)
        gust_loop_run_once(loop, 0.05);
    assert_int_equal(frees, 3);
    /* Several at once, through all. */
    gust_future *fs[8];
    for (int i = 0; i < 8; i++)
        fs[i] = gust_run_in_executor(loop, square_work, (void *)(intptr_t)i);
    assert_int_equal(gust_loop_run_sync(loop, gust_all(loop, fs, 8), 20, &v),
                     0);
    gust_value *vals = v.ptr;
    for (int i = 0; i < 8; i++)
        assert_int_equal(*(int *)vals[i].ptr, i * i);
    gust_value_free(&v);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- run_sync ---------------------------------------------------------- */

static void test_run_sync_timeout(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *f = gust_future_new(loop);
    double t0 = now_s();
    assert_int_equal(gust_loop_run_sync(loop, gust_future_ref(f), 0.05, NULL),
                     GUST_ETIMEOUT);
    assert_true(now_s() - t0 < 5);
    assert_true(gust_future_cancelled(f)); /* timed out: cancelled */
    gust_future_unref(f);
    /* An already-done future returns at once. */
    f = gust_future_new(loop);
    gust_future_set_error(f, -ENOENT);
    assert_int_equal(gust_loop_run_sync(loop, f, 0.05, NULL), -ENOENT);
    spin(loop, 1);
    assert_int_equal(gust_loop_free(loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_callbacks_in_order, test_setup),
        cmocka_unit_test_setup(test_callback_after_completion, test_setup),
        cmocka_unit_test_setup(test_unref_before_callbacks, test_setup),
        cmocka_unit_test_setup(test_values_ownership, test_setup),
        cmocka_unit_test_setup(test_set_twice_reported, test_setup),
        cmocka_unit_test_setup(test_unretrieved_error_logged, test_setup),
        cmocka_unit_test_setup(test_cancel, test_setup),
        cmocka_unit_test_setup(test_sleep, test_setup),
        cmocka_unit_test_setup(test_sleep_cancel, test_setup),
        cmocka_unit_test_setup(test_sleep_unref_early, test_setup),
        cmocka_unit_test_setup(test_all_in_order, test_setup),
        cmocka_unit_test_setup(test_all_fails_fast, test_setup),
        cmocka_unit_test_setup(test_all_empty_and_inline, test_setup),
        cmocka_unit_test_setup(test_all_cancel, test_setup),
        cmocka_unit_test_setup(test_any, test_setup),
        cmocka_unit_test_setup(test_with_timeout_expires, test_setup),
        cmocka_unit_test_setup(test_with_timeout_completes, test_setup),
        cmocka_unit_test_setup(test_gather_every_outcome, test_setup),
        cmocka_unit_test_setup(test_with_timeout_all_quiet, test_setup),
        cmocka_unit_test_setup(test_executor, test_setup),
        cmocka_unit_test_setup(test_run_sync_timeout, test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
