/* Unit tests for coroutine queues (include/gust/queue.h): FIFO, LIFO and
 * priority order, waiting puts and gets, timeouts, cancellation, join and
 * task_done, and producer/consumer runs through coroutines and through
 * callbacks. Checks made inside coroutines are recorded and asserted on the
 * test's own stack. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/future.h"
#include "gust/loop.h"
#include "gust/queue.h"
#include "gust_test.h"

/* Owned items: a heap int whose frees are counted, so a leak or a double
 * free shows (ASan catches the rest). */
static int frees;

static void count_free(void *p)
{
    frees++;
    free(p);
}

static gust_value boxed(int n)
{
    int *p = malloc(sizeof *p);
    assert_non_null(p);
    *p = n;
    return (gust_value){p, count_free};
}

static int unbox(gust_value *v)
{
    assert_non_null(v->ptr);
    int n = *(int *)v->ptr;
    gust_value_free(v);
    return n;
}

static int get_now(gust_queue *q)
{
    gust_value v;
    assert_int_equal(gust_queue_get_nowait(q, &v), 0);
    return unbox(&v);
}

/* ---- Order ------------------------------------------------------------- */

static void test_fifo_nowait(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_queue *q = gust_queue_new(loop, 3);
    assert_non_null(q);
    frees = 0;
    assert_true(gust_queue_empty(q));
    assert_int_equal(gust_queue_maxsize(q), 3);
    gust_value v;
    assert_int_equal(gust_queue_get_nowait(q, &v), -EAGAIN);
    assert_null(v.ptr);

    /* Wrap the ring several times. */
    int next_in = 0, next_out = 0;
    for (int round = 0; round < 5; round++) {
        while (!gust_queue_full(q))
            assert_int_equal(gust_queue_put_nowait(q, boxed(next_in++)), 0);
        assert_int_equal(gust_queue_qsize(q), 3);
        gust_value extra = boxed(99);
        assert_int_equal(gust_queue_put_nowait(q, extra), -EAGAIN);
        gust_value_free(&extra); /* still the caller's */
        assert_int_equal(get_now(q), next_out++);
        assert_int_equal(get_now(q), next_out++);
    }
    while (!gust_queue_empty(q))
        assert_int_equal(get_now(q), next_out++);
    assert_int_equal(next_out, next_in);
    assert_int_equal(frees, next_in + 5);
    assert_int_equal(gust_queue_unfinished(q), (size_t)next_in);

    /* Freeing a queue frees the items left in it. */
    frees = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(gust_queue_put_nowait(q, boxed(i)), 0);
    gust_queue_free(q);
    assert_int_equal(frees, 3);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_lifo_order(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_queue *q = gust_lifo_queue_new(loop, 0);
    for (int i = 1; i <= 3; i++)
        assert_int_equal(gust_queue_put_nowait(q, GUST_VALUE_INT(i)), 0);
    assert_false(gust_queue_full(q)); /* unbounded */
    gust_value v;
    for (int i = 3; i >= 1; i--) {
        assert_int_equal(gust_queue_get_nowait(q, &v), 0);
        assert_int_equal((intptr_t)v.ptr, i);
    }
    gust_queue_free(q);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Items of a PriorityQueue: a priority and an id, compared by priority. */
typedef struct job {
    int priority;
    int id;
} job;

static int cmp_job(const void *a, const void *b, void *data)
{
    (void)data;
    const job *x = a, *y = b;
    return (x->priority > y->priority) - (x->priority < y->priority);
}

static gust_value new_job(int priority, int id)
{
    job *j = malloc(sizeof *j);
    assert_non_null(j);
    j->priority = priority;
    j->id = id;
    return (gust_value){j, count_free};
}

static void test_priority_order(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_queue *q = gust_priority_queue_new(loop, 0, cmp_job, NULL);
    assert_non_null(q);
    frees = 0;
    /* Pseudo-random priorities 0..9, each id once; equal priorities must
     * come out in the order they went in. */
    int n = 200;
    for (int i = 0; i < n; i++)
        assert_int_equal(gust_queue_put_nowait(q, new_job((i * 7 + 3) % 10, i)),
                         0);
    int last_p = -1, last_id = -1;
    for (int i = 0; i < n; i++) {
        gust_value v;
        assert_int_equal(gust_queue_get_nowait(q, &v), 0);
        job *j = v.ptr;
        assert_true(j->priority >= last_p);
        if (j->priority == last_p)
            assert_true(j->id > last_id);
        last_p = j->priority;
        last_id = j->id;
        gust_value_free(&v);
    }
    assert_int_equal(frees, n);

    /* Integer items with the built-in comparison. */
    gust_queue *iq = gust_priority_queue_new(loop, 0, gust_queue_cmp_int, NULL);
    int in[] = {5, -2, 9, 0, 5, 1};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(gust_queue_put_nowait(iq, GUST_VALUE_INT(in[i])), 0);
    int want[] = {-2, 0, 1, 5, 5, 9};
    for (size_t i = 0; i < 6; i++) {
        gust_value v;
        assert_int_equal(gust_queue_get_nowait(iq, &v), 0);
        assert_int_equal((intptr_t)v.ptr, want[i]);
    }
    gust_queue_free(iq);
    gust_queue_free(q);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Waiting ----------------------------------------------------------- */

static void test_get_waits_for_put(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_queue *q = gust_queue_new(loop, 2);
    frees = 0;
    gust_future *g1 = gust_queue_get(q, 0);
    gust_future *g2 = gust_queue_get(q, 0);
    assert_false(gust_future_done(g1));
    assert_int_equal(gust_queue_put_nowait(q, boxed(1)), 0);
    /* Straight to the first getter: nothing stays in the queue. */
    assert_true(gust_future_done(g1));
    assert_false(gust_future_done(g2));
    assert_int_equal(gust_queue_qsize(q), 0);
    assert_int_equal(gust_queue_unfinished(q), 1);
    gust_value v = gust_future_take(g1);
    assert_int_equal(unbox(&v), 1);

    gust_future *p = gust_queue_put(q, boxed(2), 0);
    assert_true(gust_future_done(p));
    assert_int_equal(gust_future_status(p), 0);
    assert_int_equal(gust_loop_run_sync(loop, gust_future_ref(g2), 10, &v), 0);
    assert_int_equal(unbox(&v), 2);
    gust_future_unref(g1);
    gust_future_unref(g2);
    gust_future_unref(p);
    gust_queue_free(q);
    assert_int_equal(frees, 2);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_put_waits_for_get(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    frees = 0;
    gust_queue *q = gust_queue_new(loop, 2);
    assert_int_equal(gust_queue_put_nowait(q, boxed(0)), 0);
    assert_int_equal(gust_queue_put_nowait(q, boxed(1)), 0);
    gust_future *p2 = gust_queue_put(q, boxed(2), 0);
    gust_future *p3 = gust_queue_put(q, boxed(3), 0);
    assert_false(gust_future_done(p2));
    assert_int_equal(gust_queue_qsize(q), 2);
    /* Each get lets the first waiting put in, in order. */
    for (int i = 0; i < 4; i++) {
        assert_int_equal(get_now(q), i);
        if (i == 0) {
            assert_true(gust_future_done(p2));
            assert_false(gust_future_done(p3));
        }
    }
    assert_int_equal(gust_future_status(p3), 0);
    assert_true(gust_queue_empty(q));
    gust_future_unref(p2);
    gust_future_unref(p3);
    spin(loop, 2);

    /* A LifoQueue gives the waiting put's item; a PriorityQueue the
     * smaller of it and the best inside. */
    gust_queue *lq = gust_lifo_queue_new(loop, 1);
    assert_int_equal(gust_queue_put_nowait(lq, GUST_VALUE_INT(1)), 0);
    gust_future *lp = gust_queue_put(lq, GUST_VALUE_INT(2), 0);
    gust_value v;
    assert_int_equal(gust_queue_get_nowait(lq, &v), 0);
    assert_int_equal((intptr_t)v.ptr, 2);
    assert_int_equal(gust_queue_qsize(lq), 1);
    gust_future_unref(lp);
    gust_queue *pq = gust_priority_queue_new(loop, 1, gust_queue_cmp_int, NULL);
    assert_int_equal(gust_queue_put_nowait(pq, GUST_VALUE_INT(5)), 0);
    gust_future *pp = gust_queue_put(pq, GUST_VALUE_INT(3), 0);
    assert_int_equal(gust_queue_get_nowait(pq, &v), 0);
    assert_int_equal((intptr_t)v.ptr, 3);
    assert_int_equal(gust_queue_get_nowait(pq, &v), 0);
    assert_int_equal((intptr_t)v.ptr, 5);
    gust_future_unref(pp);
    spin(loop, 2);
    gust_queue_free(lq);
    gust_queue_free(pq);
    gust_queue_free(q);
    assert_int_equal(frees, 4);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_timeouts(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    frees = 0;
    gust_queue *q = gust_queue_new(loop, 1);
    double t0 = now_s();
    assert_int_equal(gust_loop_run_sync(loop, gust_queue_get(q, 0.03), 10,
                                        NULL), GUST_ETIMEOUT);
    assert_true(now_s() - t0 >= 0.025);

    assert_int_equal(gust_queue_put_nowait(q, boxed(1)), 0);
    gust_future *p = gust_queue_put(q, boxed(2), 0.03);
    assert_int_equal(gust_loop_run_sync(loop, p, 10, NULL), GUST_ETIMEOUT);
    assert_int_equal(frees, 1); /* the timed-out put's item */
    /* It left the line: the next get takes the queued item only. */
    assert_int_equal(get_now(q), 1);
    gust_value v;
    assert_int_equal(gust_queue_get_nowait(q, &v), -EAGAIN);
    /* A timed-out get took nothing: the next put stays in the queue. */
    assert_int_equal(gust_queue_put_nowait(q, boxed(3)), 0);
    assert_int_equal(gust_queue_qsize(q), 1);
    gust_queue_free(q);
    assert_int_equal(frees, 3);
    assert_int_equal(gust_loop_free(loop), 0);
}

static int co_get_status;

static int get_one(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    co_get_status = gust_await(gust_queue_get(data, 0), result);
    return co_get_status;
}

static void test_cancelled_getters_skipped(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    frees = 0;
    gust_queue *q = gust_queue_new(loop, 0);
    /* A cancelled get future, a get whose coroutine was cancelled, and a
     * live one: the item must reach the live one. */
    gust_future *cancelled = gust_queue_get(q, 0);
    co_get_status = 1;
    gust_future *co = gust_spawn(loop, get_one, q);
    gust_future *live = gust_queue_get(q, 0);
    spin(loop, 2);
    assert_int_equal(co_get_status, 1);
    assert_true(gust_future_cancel(cancelled));
    assert_true(gust_future_cancel(co));
    spin(loop, 3);
    assert_int_equal(co_get_status, GUST_ECANCELED);

    assert_int_equal(gust_queue_put_nowait(q, boxed(7)), 0);
    assert_true(gust_future_done(live));
    gust_value v = gust_future_take(live);
    assert_int_equal(unbox(&v), 7);
    /* Nobody waits now: the next item stays in the queue. */
    assert_int_equal(gust_queue_put_nowait(q, boxed(8)), 0);
    assert_int_equal(gust_queue_qsize(q), 1);
    gust_future_unref(cancelled);
    gust_future_unref(co);
    gust_future_unref(live);
    spin(loop, 2);
    gust_queue_free(q);
    assert_int_equal(frees, 2);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* A put whose references were all dropped still puts its item. */
static void test_fire_and_forget_put(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    frees = 0;
    gust_queue *q = gust_queue_new(loop, 1);
    gust_future_unref(gust_queue_put(q, boxed(1), 0));
    gust_future_unref(gust_queue_put(q, boxed(2), 0));
    assert_int_equal(gust_queue_qsize(q), 1);
    assert_int_equal(get_now(q), 1);
    assert_int_equal(get_now(q), 2);
    spin(loop, 2);
    gust_queue_free(q);
    assert_int_equal(frees, 2);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_free_fails_waiters(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    frees = 0;
    gust_queue *q = gust_queue_new(loop, 1);
    gust_future *g = gust_queue_get(q, 5);
    gust_queue *full = gust_queue_new(loop, 1);
    assert_int_equal(gust_queue_put_nowait(full, boxed(1)), 0);
    gust_future *p = gust_queue_put(full, boxed(2), 5);
    gust_future *j = gust_queue_join(full, 0);
    gust_queue_free(q);
    gust_queue_free(full);
    assert_int_equal(frees, 2);
    assert_int_equal(gust_future_status(g), GUST_ECANCELED);
    assert_int_equal(gust_future_status(p), GUST_ECANCELED);
    assert_int_equal(gust_future_status(j), GUST_ECANCELED);
    gust_future_unref(g);
    gust_future_unref(p);
    gust_future_unref(j);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- join and task_done ------------------------------------------------ */

static void test_join_after_task_done(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_queue *q = gust_queue_new(loop, 0);
    assert_int_equal(gust_queue_task_done(q), -EINVAL);
    gust_future *j0 = gust_queue_join(q, 0);
    assert_true(gust_future_done(j0)); /* nothing unfinished */
    gust_future_unref(j0);

    for (int i = 0; i < 3; i++)
        assert_int_equal(gust_queue_put_nowait(q, GUST_VALUE_INT(i)), 0);
    gust_future *j = gust_queue_join(q, 0);
    gust_value v;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(gust_queue_get_nowait(q, &v), 0);
        spin(loop, 1);
        /* Taking the items out is not enough: each must be marked done. */
        assert_false(gust_future_done(j));
    }
    assert_int_equal(gust_queue_unfinished(q), 3);
    assert_int_equal(gust_queue_task_done(q), 0);
    assert_int_equal(gust_queue_task_done(q), 0);
    spin(loop, 1);
    assert_false(gust_future_done(j));
    assert_int_equal(gust_queue_task_done(q), 0);
    assert_int_equal(gust_loop_run_sync(loop, j, 10, NULL), 0);
    assert_int_equal(gust_queue_task_done(q), -EINVAL);

    /* join with a timeout. */
    assert_int_equal(gust_queue_put_nowait(q, GUST_VALUE_INT(9)), 0);
    assert_int_equal(gust_loop_run_sync(loop, gust_queue_join(q, 0.02), 10,
                                        NULL), GUST_ETIMEOUT);
    gust_queue_free(q);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Producer / consumer ----------------------------------------------- */

#define NITEMS 1000
static gust_queue *pc_q;
static int taken[NITEMS], ntaken, pc_errors, max_qsize;

static void note_taken(int n)
{
    if (ntaken < NITEMS)
        taken[ntaken++] = n;
    else
        pc_errors++;
}

static int producer(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    (void)result;
    (void)data;
    for (int i = 0; i < NITEMS; i++) {
        if (gust_await(gust_queue_put(pc_q, boxed(i), 0), NULL) != 0)
            pc_errors++;
        if ((int)gust_queue_qsize(pc_q) > max_qsize)
            max_qsize = (int)gust_queue_qsize(pc_q);
    }
    /* Wait until the consumers have processed everything. */
    return gust_await(gust_queue_join(pc_q, 0), NULL);
}

static int consumer(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    (void)data;
    for (;;) {
        gust_value v;
        int r = gust_await(gust_queue_get(pc_q, 0), &v);
        if (r == GUST_ECANCELED)
            return 0; /* the test is over */
        if (r != 0) {
            pc_errors++;
            return r;
        }
        note_taken(*(int *)v.ptr);
        gust_value_free(&v);
        /* Some work, so that the producer has to wait for room. */
        if (gust_await(gust_sleep(loop, 0), NULL) != 0)
            return 0;
        gust_queue_task_done(pc_q);
    }
}

static void check_all_taken(void)
{
    assert_int_equal(pc_errors, 0);
    assert_int_equal(ntaken, NITEMS);
    for (int i = 0; i < NITEMS; i++)
        assert_int_equal(taken[i], i); /* FIFO: in put order */
    assert_int_equal(frees, NITEMS);
}

static void test_producer_consumer_coroutines(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    pc_q = gust_queue_new(loop, 5);
    frees = ntaken = pc_errors = max_qsize = 0;
    gust_future *consumers[3];
    for (int i = 0; i < 3; i++)
        consumers[i] = gust_spawn(loop, consumer, NULL);
    assert_int_equal(gust_loop_run_sync(loop,
                                        gust_spawn(loop, producer, NULL), 60,
                                        NULL), 0);
    check_all_taken();
    assert_true(max_qsize <= 5);
    assert_true(max_qsize >= 1);
    assert_int_equal(gust_queue_unfinished(pc_q), 0);
    /* Stop the consumers, waiting in get. */
    for (int i = 0; i < 3; i++) {
        gust_future_cancel(consumers[i]);
        gust_future_unref(consumers[i]);
    }
    spin(loop, 3);
    gust_queue_free(pc_q);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* The same through done-callbacks only: the producer puts the next item
 * when the previous put completes; the consumer gets the next item when the
 * previous get completes. */
static int cb_next_put, cb_done;

static void cb_put_next(gust_future *f, void *data);

static void cb_start_put(gust_loop *loop)
{
    (void)loop;
    gust_future *p = gust_queue_put(pc_q, boxed(cb_next_put++), 0);
    if (!p || gust_future_add_done_callback(p, cb_put_next, NULL) < 0)
        pc_errors++;
    gust_future_unref(p);
}

static void cb_put_next(gust_future *f, void *data)
{
    (void)data;
    if (gust_future_status(f) != 0)
        pc_errors++;
    else if (cb_next_put < NITEMS)
        cb_start_put(gust_future_loop(f));
}

static void cb_got(gust_future *f, void *data)
{
    (void)data;
    gust_value v = gust_future_take(f);
    if (gust_future_status(f) != 0 || !v.ptr) {
        pc_errors++;
        return;
    }
    note_taken(*(int *)v.ptr);
    gust_value_free(&v);
    gust_queue_task_done(pc_q);
    if (ntaken == NITEMS) {
        cb_done = 1;
        return;
    }
    gust_future *g = gust_queue_get(pc_q, 0);
    if (!g || gust_future_add_done_callback(g, cb_got, NULL) < 0)
        pc_errors++;
    gust_future_unref(g);
}

static void test_producer_consumer_callbacks(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    pc_q = gust_queue_new(loop, 4);
    frees = ntaken = pc_errors = max_qsize = cb_next_put = cb_done = 0;
    gust_future *g = gust_queue_get(pc_q, 0);
    assert_int_equal(gust_future_add_done_callback(g, cb_got, NULL), 0);
    gust_future_unref(g); /* the queue keeps it until it completes */
    cb_start_put(loop);
    gust_future *j = gust_queue_join(pc_q, 0);
    run_until_set(loop, &cb_done);
    assert_int_equal(gust_loop_run_sync(loop, j, 10, NULL), 0);
    check_all_taken();
    assert_true(gust_queue_empty(pc_q));
    spin(loop, 2);
    gust_queue_free(pc_q);
    assert_int_equal(gust_loop_free(loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_fifo_nowait, test_setup),
        cmocka_unit_test_setup(test_lifo_order, test_setup),
        cmocka_unit_test_setup(test_priority_order, test_setup),
        cmocka_unit_test_setup(test_get_waits_for_put, test_setup),
        cmocka_unit_test_setup(test_put_waits_for_get, test_setup),
        cmocka_unit_test_setup(test_timeouts, test_setup),
        cmocka_unit_test_setup(test_cancelled_getters_skipped, test_setup),
        cmocka_unit_test_setup(test_fire_and_forget_put, test_setup),
        cmocka_unit_test_setup(test_free_fails_waiters, test_setup),
        cmocka_unit_test_setup(test_join_after_task_done, test_setup),
        cmocka_unit_test_setup(test_producer_consumer_coroutines, test_setup),
        cmocka_unit_test_setup(test_producer_consumer_callbacks, test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
