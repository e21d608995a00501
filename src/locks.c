/* Locks for coroutines (locks.h), on the waiter queue they share with
 * queue.c (waitq.c).
 *
 * As in Tornado, a release hands the slot straight to the next waiter
 * instead of making it free and letting the waiter race for it: the waiter
 * is woken with the slot already its own, so nobody who calls acquire
 * between the release and the waiter's wake-up can jump the line.
 */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#include "gust/locks.h"
#include "future_internal.h"
#include "waitq_internal.h"

/* ---- Semaphore --------------------------------------------------------- */

struct gust_semaphore {
    gust_loop *loop;
    unsigned value;
    unsigned initial;
    bool bounded;
    gust__waitq waiters; /* non-empty only while value == 0 */
};

static gust_semaphore *semaphore_new(gust_loop *loop, unsigned value,
                                     bool bounded)
{
    assert(loop);
    gust_semaphore *sem = calloc(1, sizeof *sem);
    if (!sem) {
        errno = ENOMEM;
        return NULL;
    }
    sem->loop = loop;
    sem->value = sem->initial = value;
    sem->bounded = bounded;
    return sem;
}

gust_semaphore *gust_semaphore_new(gust_loop *loop, unsigned value)
{
    return semaphore_new(loop, value, false);
}

gust_semaphore *gust_bounded_semaphore_new(gust_loop *loop, unsigned value)
{
    return semaphore_new(loop, value, true);
}

/* Holders are not tracked (as in Tornado), so only the waiters are told. */
void gust_semaphore_free(gust_semaphore *sem)
{
    if (!sem)
        return;
    gust__waitq_fail_all(&sem->waiters, GUST_ECANCELED);
    free(sem);
}

gust_future *gust_semaphore_acquire(gust_semaphore *sem, double timeout)
{
    assert(sem);
    /* A free slot implies nobody waits (release hands slots straight to
     * waiters), so taking it cannot jump the line. */
    if (sem->value > 0) {
        gust_future *f = gust__future_resolved(sem->loop, GUST_VALUE_NONE);
        if (f) /* out of memory takes nothing */
            sem->value--;
        return f;
    }
    return gust__waitq_add(sem->loop, &sem->waiters, timeout,
                           GUST_VALUE_NONE);
}

bool gust_semaphore_try_acquire(gust_semaphore *sem)
{
    assert(sem);
    if (sem->value == 0)
        return false;
    sem->value--;
    return true;
}

int gust_semaphore_release(gust_semaphore *sem)
{
    assert(sem);
    /* Checked before anything changes: a refused release has no effect.
     * With waiters the value is 0, so a bounded one never refuses them. */
    if ((sem->bounded && sem->value >= sem->initial) ||
        sem->value == UINT_MAX)
        return -EOVERFLOW;
    gust_future *f = gust__waitq_pop(&sem->waiters, true, NULL);
    if (!f) {
        sem->value++;
        return 0;
    }
    /* Handed over: the count stays where it was. */
    gust_future_set_result(f, GUST_VALUE_NONE);
    gust_future_unref(f);
    return 0;
}

unsigned gust_semaphore_value(const gust_semaphore *sem)
{
    return sem->value;
}

/* ---- Lock: a bounded semaphore of one ---------------------------------- */

/* Tornado's Lock is a BoundedSemaphore(1) too; a struct of its own keeps
 * the two types apart for the compiler. */
struct gust_lock {
    gust_semaphore sem;
};

gust_lock *gust_lock_new(gust_loop *loop)
{
    assert(loop);
    gust_lock *lock = calloc(1, sizeof *lock);
    if (!lock) {
        errno = ENOMEM;
        return NULL;
    }
    lock->sem.loop = loop;
    lock->sem.value = lock->sem.initial = 1;
    lock->sem.bounded = true;
    return lock;
}

void gust_lock_free(gust_lock *lock)
{
    if (!lock)
        return;
    gust__waitq_fail_all(&lock->sem.waiters, GUST_ECANCELED);
    free(lock);
}

gust_future *gust_lock_acquire(gust_lock *lock, double timeout)
{
    assert(lock);
    return gust_semaphore_acquire(&lock->sem, timeout);
}

bool gust_lock_try_acquire(gust_lock *lock)
{
    assert(lock);
    return gust_semaphore_try_acquire(&lock->sem);
}

int gust_lock_release(gust_lock *lock)
{
    assert(lock);
    /* The only refusal of a bounded semaphore of one: it is not held. */
    return gust_semaphore_release(&lock->sem) == -EOVERFLOW ? -EPERM : 0;
}

bool gust_lock_locked(const gust_lock *lock)
{
    return lock->sem.value == 0;
}

/* ---- Event ------------------------------------------------------------- */

struct gust_event {
    gust_loop *loop;
    bool value;
    gust__waitq waiters;
};

gust_event *gust_event_new(gust_loop *loop)
{
    assert(loop);
    gust_event *ev = calloc(1, sizeof *ev);
    if (!ev) {
        errno = ENOMEM;
        return NULL;
    }
    ev->loop = loop;
    return ev;
}

void gust_event_free(gust_event *ev)
{
    if (!ev)
        return;
    gust__waitq_fail_all(&ev->waiters, GUST_ECANCELED);
    free(ev);
}

void gust_event_set(gust_event *ev)
{
    assert(ev);
    ev->value = true;
    /* Every waiter, abandoned ones too: waking costs nothing and gives
     * nothing away. */
    gust_future *f;
    while ((f = gust__waitq_pop(&ev->waiters, false, NULL))) {
        gust_future_set_result(f, GUST_VALUE_NONE);
        gust_future_unref(f);
    }
}

void gust_event_clear(gust_event *ev)
{
    assert(ev);
    ev->value = false;
}

bool gust_event_is_set(const gust_event *ev)
{
    return ev->value;
}

gust_future *gust_event_wait(gust_event *ev, double timeout)
{
    assert(ev);
    /* Set: done at once (its callbacks still run on the next turn). */
    if (ev->value)
        return gust__future_resolved(ev->loop, GUST_VALUE_NONE);
    return gust__waitq_add(ev->loop, &ev->waiters, timeout, GUST_VALUE_NONE);
}

/* ---- Condition --------------------------------------------------------- */

struct gust_condition {
    gust_loop *loop;
    gust__waitq waiters;
};

gust_condition *gust_condition_new(gust_loop *loop)
{
    assert(loop);
    gust_condition *cond = calloc(1, sizeof *cond);
    if (!cond) {
        errno = ENOMEM;
        return NULL;
    }
    cond->loop = loop;
    return cond;
}

void gust_condition_free(gust_condition *cond)
{
    if (!cond)
        return;
    gust__waitq_fail_all(&cond->waiters, GUST_ECANCELED);
    free(cond);
}

/* Always waits, as in Tornado: a notify before the wait is not
 * remembered. */
gust_future *gust_condition_wait(gust_condition *cond, double timeout)
{
    assert(cond);
    return gust__waitq_add(cond->loop, &cond->waiters, timeout,
                           GUST_VALUE_NONE);
}

/* Abandoned waiters are skipped so they do not use up notifications that
 * a live waiter would have had. */
size_t gust_condition_notify(gust_condition *cond, size_t n)
{
    assert(cond);
    size_t woken = 0;
    gust_future *f;
    while (woken < n && (f = gust__waitq_pop(&cond->waiters, true, NULL))) {
        gust_future_set_result(f, GUST_VALUE_NONE);
        gust_future_unref(f);
        woken++;
    }
    return woken;
}

size_t gust_condition_notify_all(gust_condition *cond)
{
    return gust_condition_notify(cond, SIZE_MAX);
}
