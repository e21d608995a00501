/* Unit tests for the coroutine locks (include/gust/locks.h): Lock,
 * Semaphore, BoundedSemaphore, Event, Condition. Checks made inside
 * coroutines are recorded in globals and asserted on the test's own stack
 * (cmocka's failure longjmp must not cross stacks). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gust/future.h"
#include "gust/locks.h"
#include "gust/loop.h"
#include "gust_test.h"

/* Records, in order, which waiter's future completed and how. */
static int order[256];
static int statuses[256];
static size_t norder;

static void record_cb(gust_future *f, void *data)
{
    assert_true(norder < 256);
    statuses[norder] = gust_future_status(f);
    order[norder++] = (int)(intptr_t)data;
}

static void watch(gust_future *f, int id)
{
    assert_non_null(f);
    assert_int_equal(gust_future_add_done_callback(f, record_cb,
                                                   (void *)(intptr_t)id), 0);
}

/* ---- Lock -------------------------------------------------------------- */

static void test_lock_fifo_callbacks(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_lock *lock = gust_lock_new(loop);
    assert_non_null(lock);
    norder = 0;

    gust_future *fs[4];
    for (int i = 0; i < 4; i++) {
        fs[i] = gust_lock_acquire(lock, 0);
        watch(fs[i], i);
    }
    assert_true(gust_lock_locked(lock));
    assert_true(gust_future_done(fs[0]));
    assert_false(gust_future_done(fs[1]));
    assert_int_equal(norder, 0); /* callbacks never run inside the call */
    spin(loop, 2);
    assert_int_equal(norder, 1);
    assert_int_equal(order[0], 0);

    /* Each release hands the lock to the next in line, in order. */
    for (int i = 1; i < 4; i++) {
        assert_int_equal(gust_lock_release(lock), 0);
        assert_true(gust_lock_locked(lock));
        assert_true(gust_future_done(fs[i]));
        if (i < 3)
            assert_false(gust_future_done(fs[i + 1]));
        spin(loop, 2);
        assert_int_equal(norder, (size_t)i + 1);
        assert_int_equal(order[i], i);
        assert_int_equal(statuses[i], 0);
    }
    assert_false(gust_lock_try_acquire(lock));
    assert_int_equal(gust_lock_release(lock), 0);
    assert_false(gust_lock_locked(lock));
    assert_int_equal(gust_lock_release(lock), -EPERM);
    assert_true(gust_lock_try_acquire(lock));
    assert_int_equal(gust_lock_release(lock), 0);

    for (int i = 0; i < 4; i++)
        gust_future_unref(fs[i]);
    gust_lock_free(lock);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Coroutines that each hold the lock across an await: never two inside at
 * once, and they enter in the order they asked. */
static gust_lock *co_lock;
static int inside, max_inside, entered[16], nentered, co_errors;

static int locked_worker(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    if (gust_await(gust_lock_acquire(co_lock, 0), NULL) != 0) {
        co_errors++;
        return -EIO;
    }
    entered[nentered++] = (int)(intptr_t)data;
    if (++inside > max_inside)
        max_inside = inside;
    int r = gust_await(gust_sleep(loop, 0.001), NULL);
    inside--;
    if (r != 0 || gust_lock_release(co_lock) != 0)
        co_errors++;
    return 0;
}

static void test_lock_coroutines(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    co_lock = gust_lock_new(loop);
    assert_non_null(co_lock);
    inside = max_inside = nentered = co_errors = 0;
    gust_future *fs[10];
    for (int i = 0; i < 10; i++) {
        fs[i] = gust_spawn(loop, locked_worker, (void *)(intptr_t)i);
        assert_non_null(fs[i]);
    }
    assert_int_equal(gust_loop_run_sync(loop, gust_all(loop, fs, 10), 30,
                                        NULL), 0);
    assert_int_equal(co_errors, 0);
    assert_int_equal(max_inside, 1);
    assert_int_equal(nentered, 10);
    for (int i = 0; i < 10; i++)
        assert_int_equal(entered[i], i);
    assert_false(gust_lock_locked(co_lock));
    gust_lock_free(co_lock);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_lock_timeout(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_lock *lock = gust_lock_new(loop);
    assert_true(gust_lock_try_acquire(lock));

    double t0 = now_s();
    gust_future *late = gust_lock_acquire(lock, 0.05);
    gust_future *patient = gust_lock_acquire(lock, 0);
    assert_int_equal(gust_loop_run_sync(loop, gust_future_ref(late), 10, NULL),
                     GUST_ETIMEOUT);
    double waited = now_s() - t0;
    assert_true(waited >= 0.045);
    assert_true(waited < 5);
    assert_false(gust_future_done(patient));

    /* The timed-out waiter left the line: the next release skips it. */
    assert_int_equal(gust_lock_release(lock), 0);
    assert_true(gust_future_done(patient));
    assert_int_equal(gust_future_status(patient), 0);
    assert_int_equal(gust_lock_release(lock), 0);
    assert_false(gust_lock_locked(lock));

    /* A timeout that does not expire leaves no timer behind. */
    gust_future *quick = gust_lock_acquire(lock, 0.05);
    assert_true(gust_future_done(quick));
    assert_int_equal(gust_lock_release(lock), 0);
    gust_future_unref(quick);

    gust_future_unref(late);
    gust_future_unref(patient);
    spin(loop, 2);
    gust_lock_free(lock);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_lock_cancelled_waiter_skipped(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_lock *lock = gust_lock_new(loop);
    norder = 0;
    assert_true(gust_lock_try_acquire(lock));
    gust_future *a = gust_lock_acquire(lock, 10);
    gust_future *b = gust_lock_acquire(lock, 10);
    gust_future *c = gust_lock_acquire(lock, 0);
    watch(a, 1);
    watch(b, 2);
    watch(c, 3);
    assert_true(gust_future_cancel(b));

    assert_int_equal(gust_lock_release(lock), 0);
    assert_int_equal(gust_future_status(a), 0);
    assert_false(gust_future_done(c));
    assert_int_equal(gust_lock_release(lock), 0);
    assert_int_equal(gust_future_status(c), 0); /* b was skipped */
    spin(loop, 2);
    assert_int_equal(norder, 3);
    /* b completed first (cancelled), then a and c were granted. */
    assert_int_equal(order[0], 2);
    assert_int_equal(statuses[0], GUST_ECANCELED);
    assert_int_equal(order[1], 1);
    assert_int_equal(order[2], 3);
    assert_int_equal(gust_lock_release(lock), 0);
    assert_false(gust_lock_locked(lock));

    gust_future_unref(a);
    gust_future_unref(b);
    gust_future_unref(c);
    gust_lock_free(lock);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* A coroutine cancelled while it awaits an acquire drops its reference; the
 * lock must not be handed to it (nobody could release it). */
static int co_acquire_status;

static int acquire_once(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    (void)result;
    co_acquire_status = gust_await(gust_lock_acquire(data, 0), NULL);
    return co_acquire_status;
}

static void test_lock_cancelled_coroutine(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_lock *lock = gust_lock_new(loop);
    assert_true(gust_lock_try_acquire(lock));
    co_acquire_status = 1;
    gust_future *co = gust_spawn(loop, acquire_once, lock);
    spin(loop, 2);
    assert_int_equal(co_acquire_status, 1); /* waiting */
    assert_true(gust_future_cancel(co));
    spin(loop, 3);
    assert_int_equal(co_acquire_status, GUST_ECANCELED);

    assert_int_equal(gust_lock_release(lock), 0);
    assert_false(gust_lock_locked(lock));
    gust_future_unref(co);
    spin(loop, 2);
    gust_lock_free(lock);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* gust_any(acquire, sleep): the sleep wins and cancels the acquire, which
 * leaves the line. */
static void test_lock_any_cancels_acquire(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_lock *lock = gust_lock_new(loop);
    assert_true(gust_lock_try_acquire(lock));
    size_t winner = 99;
    gust_future *race = gust_any(loop, (gust_future *[]){
                                     gust_lock_acquire(lock, 0),
                                     gust_sleep(loop, 0.02)}, 2, &winner);
    assert_int_equal(gust_loop_run_sync(loop, race, 10, NULL), 0);
    assert_int_equal(winner, 1);
    assert_int_equal(gust_lock_release(lock), 0);
    assert_false(gust_lock_locked(lock));
    spin(loop, 2);
    gust_lock_free(lock);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* The race docs/futures.md describes: the acquire is granted in the same
 * iteration the coroutine is cancelled; the coroutine sees GUST_ECANCELED,
 * finds the acquire granted and gives the lock back. */
static int race_outcome;

static int acquire_checked(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    (void)result;
    gust_lock *lock = data;
    gust_future *a = gust_lock_acquire(lock, 0);
    int r = gust_await(gust_future_ref(a), NULL);
    race_outcome = r;
    if (r == GUST_ECANCELED && !gust_future_cancel(a) &&
        gust_future_status(a) == 0) {
        race_outcome = 1; /* granted after all */
        gust_lock_release(lock);
    }
    gust_future_unref(a);
    return r;
}

static void test_lock_grant_cancel_race(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_lock *lock = gust_lock_new(loop);
    assert_true(gust_lock_try_acquire(lock));
    race_outcome = 99;
    gust_future *co = gust_spawn(loop, acquire_checked, lock);
    spin(loop, 2);
    assert_int_equal(race_outcome, 99);
    assert_int_equal(gust_lock_release(lock), 0); /* granted to co */
    assert_true(gust_future_cancel(co));          /* same iteration */
    spin(loop, 3);
    assert_int_equal(race_outcome, 1);
    assert_false(gust_lock_locked(lock));
    gust_future_unref(co);
    gust_lock_free(lock);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_lock_free_fails_waiters(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_lock *lock = gust_lock_new(loop);
    norder = 0;
    gust_future *held = gust_lock_acquire(lock, 0);
    gust_future *w1 = gust_lock_acquire(lock, 5);
    gust_future *w2 = gust_lock_acquire(lock, 0);
    watch(w1, 1);
    watch(w2, 2);
    gust_lock_free(lock);
    spin(loop, 2);
    assert_int_equal(norder, 2);
    assert_int_equal(statuses[0], GUST_ECANCELED);
    assert_int_equal(statuses[1], GUST_ECANCELED);
    gust_future_unref(held);
    gust_future_unref(w1);
    gust_future_unref(w2);
    /* The timeout timer of w1 was stopped: the loop has nothing left. */
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Semaphore --------------------------------------------------------- */

static gust_semaphore *co_sem;
static int sem_done;

static int sem_worker(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    (void)data;
    if (gust_await(gust_semaphore_acquire(co_sem, 0), NULL) != 0) {
        co_errors++;
        return -EIO;
    }
    if (++inside > max_inside)
        max_inside = inside;
    /* Hold the slot across a couple of loop turns. */
    int r = gust_await(gust_sleep(loop, 0), NULL);
    r |= gust_await(gust_sleep(loop, 0.0005), NULL);
    inside--;
    if (r != 0 || gust_semaphore_release(co_sem) != 0)
        co_errors++;
    sem_done++;
    return 0;
}

static void test_semaphore_hundred_coroutines(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    co_sem = gust_semaphore_new(loop, 3);
    assert_non_null(co_sem);
    inside = max_inside = co_errors = sem_done = 0;
    gust_future *fs[100];
    for (int i = 0; i < 100; i++) {
        fs[i] = gust_spawn(loop, sem_worker, NULL);
        assert_non_null(fs[i]);
    }
    assert_int_equal(gust_loop_run_sync(loop, gust_all(loop, fs, 100), 60,
                                        NULL), 0);
    assert_int_equal(co_errors, 0);
    assert_int_equal(sem_done, 100);
    assert_int_equal(max_inside, 3); /* never more than the value */
    assert_int_equal(gust_semaphore_value(co_sem), 3);
    gust_semaphore_free(co_sem);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_semaphore_counting(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_semaphore *sem = gust_semaphore_new(loop, 2);
    gust_future *a = gust_semaphore_acquire(sem, 0);
    gust_future *b = gust_semaphore_acquire(sem, 0);
    gust_future *c = gust_semaphore_acquire(sem, 0);
    assert_true(gust_future_done(a));
    assert_true(gust_future_done(b));
    assert_false(gust_future_done(c));
    assert_int_equal(gust_semaphore_value(sem), 0);
    assert_false(gust_semaphore_try_acquire(sem));
    assert_int_equal(gust_semaphore_release(sem), 0);
    assert_true(gust_future_done(c));
    assert_int_equal(gust_semaphore_value(sem), 0); /* handed to c */
    /* An unbounded semaphore may go above its initial value. */
    for (int i = 0; i < 4; i++)
        assert_int_equal(gust_semaphore_release(sem), 0);
    assert_int_equal(gust_semaphore_value(sem), 4);
    gust_future_unref(a);
    gust_future_unref(b);
    gust_future_unref(c);
    spin(loop, 2);
    gust_semaphore_free(sem);

    gust_semaphore *bs = gust_bounded_semaphore_new(loop, 2);
    assert_int_equal(gust_semaphore_release(bs), -EOVERFLOW);
    assert_true(gust_semaphore_try_acquire(bs));
    assert_int_equal(gust_semaphore_value(bs), 1);
    assert_int_equal(gust_semaphore_release(bs), 0);
    assert_int_equal(gust_semaphore_release(bs), -EOVERFLOW);
    assert_int_equal(gust_semaphore_value(bs), 2);
    gust_semaphore_free(bs);

    /* A semaphore of 0 makes every acquire wait. */
    gust_semaphore *zero = gust_semaphore_new(loop, 0);
    gust_future *z = gust_semaphore_acquire(zero, 0.02);
    assert_int_equal(gust_loop_run_sync(loop, z, 10, NULL), GUST_ETIMEOUT);
    assert_int_equal(gust_semaphore_value(zero), 0);
    gust_semaphore_free(zero);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Event ------------------------------------------------------------- */

static void test_event(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_event *ev = gust_event_new(loop);
    assert_non_null(ev);
    norder = 0;
    assert_false(gust_event_is_set(ev));
    gust_future *w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = gust_event_wait(ev, 0);
        watch(w[i], i);
    }
    gust_future *t = gust_event_wait(ev, 0.02);
    spin(loop, 2);
    assert_int_equal(norder, 0);
    assert_int_equal(gust_loop_run_sync(loop, t, 10, NULL), GUST_ETIMEOUT);
    assert_int_equal(norder, 0);

    gust_event_set(ev);
    assert_true(gust_event_is_set(ev));
    spin(loop, 2);
    assert_int_equal(norder, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(order[i], i);
        assert_int_equal(statuses[i], 0);
        gust_future_unref(w[i]);
    }
    /* Set: a wait is already done. */
    gust_future *now = gust_event_wait(ev, 0);
    assert_true(gust_future_done(now));
    gust_future_unref(now);
    /* Cleared: waits wait again. */
    gust_event_clear(ev);
    assert_false(gust_event_is_set(ev));
    gust_future *again = gust_event_wait(ev, 0);
    assert_false(gust_future_done(again));
    watch(again, 9);
    gust_event_free(ev);
    spin(loop, 2);
    assert_int_equal(norder, 4);
    assert_int_equal(statuses[3], GUST_ECANCELED);
    gust_future_unref(again);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Condition --------------------------------------------------------- */

static void test_condition_notify(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_condition *cond = gust_condition_new(loop);
    assert_non_null(cond);
    norder = 0;
    gust_future *w[5];
    for (int i = 0; i < 5; i++) {
        w[i] = gust_condition_wait(cond, 0);
        assert_false(gust_future_done(w[i]));
        watch(w[i], i);
    }
    assert_true(gust_future_cancel(w[1]));
    spin(loop, 2);
    assert_int_equal(norder, 1); /* the cancelled one */
    assert_int_equal(statuses[0], GUST_ECANCELED);

    assert_int_equal(gust_condition_notify(cond, 1), 1);
    spin(loop, 2);
    assert_int_equal(norder, 2);
    assert_int_equal(order[1], 0);
    /* Two more, skipping the cancelled w[1]. */
    assert_int_equal(gust_condition_notify(cond, 2), 2);
    spin(loop, 2);
    assert_int_equal(norder, 4);
    assert_int_equal(order[2], 2);
    assert_int_equal(order[3], 3);
    assert_int_equal(gust_condition_notify_all(cond), 1);
    assert_int_equal(gust_condition_notify_all(cond), 0);
    spin(loop, 2);
    assert_int_equal(norder, 5);
    assert_int_equal(order[4], 4);
    assert_int_equal(statuses[4], 0);
    for (int i = 0; i < 5; i++)
        gust_future_unref(w[i]);
    gust_condition_free(cond);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_condition_timeout(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_condition *cond = gust_condition_new(loop);
    gust_future *short_wait = gust_condition_wait(cond, 0.02);
    gust_future *long_wait = gust_condition_wait(cond, 30);
    assert_int_equal(gust_loop_run_sync(loop, short_wait, 10, NULL),
                     GUST_ETIMEOUT);
    assert_false(gust_future_done(long_wait));
    /* The timed-out waiter does not use up the notification. */
    assert_int_equal(gust_condition_notify(cond, 1), 1);
    assert_int_equal(gust_loop_run_sync(loop, long_wait, 10, NULL), 0);
    /* Nobody waits any more. */
    assert_int_equal(gust_condition_notify(cond, 1), 0);
    gust_condition_free(cond);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Producer/consumer on a Condition between coroutines: the consumer waits
 * for each notify, the producer notifies after each item. */
static gust_condition *co_cond;
static int produced, consumed;

static int cond_consumer(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    (void)result;
    (void)data;
    while (consumed < 20) {
        while (consumed == produced)
            if (gust_await(gust_condition_wait(co_cond, 0), NULL) != 0)
                return -EIO;
        consumed++;
    }
    return 0;
}

static int cond_producer(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    (void)data;
    for (int i = 0; i < 20; i++) {
        produced++;
        gust_condition_notify(co_cond, 1);
        if (gust_await(gust_sleep(loop, 0), NULL) != 0)
            return -EIO;
    }
    return 0;
}

static void test_condition_coroutines(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    co_cond = gust_condition_new(loop);
    produced = consumed = 0;
    gust_future *fs[2] = {gust_spawn(loop, cond_consumer, NULL),
                          gust_spawn(loop, cond_producer, NULL)};
    assert_int_equal(gust_loop_run_sync(loop, gust_all(loop, fs, 2), 30,
                                        NULL), 0);
    assert_int_equal(consumed, 20);
    gust_condition_free(co_cond);
    assert_int_equal(gust_loop_free(loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_lock_fifo_callbacks, test_setup),
        cmocka_unit_test_setup(test_lock_coroutines, test_setup),
        cmocka_unit_test_setup(test_lock_timeout, test_setup),
        cmocka_unit_test_setup(test_lock_cancelled_waiter_skipped, test_setup),
        cmocka_unit_test_setup(test_lock_cancelled_coroutine, test_setup),
        cmocka_unit_test_setup(test_lock_any_cancels_acquire, test_setup),
        cmocka_unit_test_setup(test_lock_grant_cancel_race, test_setup),
        cmocka_unit_test_setup(test_lock_free_fails_waiters, test_setup),
        cmocka_unit_test_setup(test_semaphore_hundred_coroutines, test_setup),
        cmocka_unit_test_setup(test_semaphore_counting, test_setup),
        cmocka_unit_test_setup(test_event, test_setup),
        cmocka_unit_test_setup(test_condition_notify, test_setup),
        cmocka_unit_test_setup(test_condition_timeout, test_setup),
        cmocka_unit_test_setup(test_condition_coroutines, test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
