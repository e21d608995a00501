/* Locks for coroutines (locks.h), and the waiter queue they and queue.c
 * share (waitq_internal.h).
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

/* ---- Waiter queue ------------------------------------------------------ */

/* Takes w off its queue and disarms everything that could still complete
 * it from the queue's side (its timer, the cancel hook), so exactly one
 * path finishes a waiter. The queue's reference stays with the caller. */
static void waitq_unlink(gust__waiter *w)
{
    gust__waitq *q = w->q;
    if (!q)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->prev = w->next = NULL;
    w->q = NULL;
    q->len--;
    gust_timer_stop(&w->timer);
    gust__future_set_cancel(w->f, NULL);
}

/* The timer runs from the loop, so completing the future here cannot run
 * any callback inside a user's call. */
static void waiter_timed_out(gust_timer *t, void *data)
{
    (void)t;
    gust__waiter *w = data;
    gust_future *f = w->f;
    waitq_unlink(w);
    gust_value_free(&w->item);
    gust_future_set_error(f, GUST_ETIMEOUT);
    gust_future_unref(f); /* the queue's reference */
}

/* The future was cancelled (and is already completed as such). */
static void waiter_cancelled(gust_future *f)
{
    gust__waiter *w = gust__future_impl(f);
    waitq_unlink(w);
    gust_value_free(&w->item);
    gust_future_unref(f);
}

gust_future *gust__waitq_add(gust_loop *loop, gust__waitq *q, double timeout,
                             gust_value item)
{
    gust_future *f = gust__future_alloc(loop, sizeof(gust__waiter));
    if (!f) {
        gust_value_free(&item);
        errno = ENOMEM;
        return NULL;
    }
    /* The waiter is the future's producer state: one block for both, freed
     * with the future. */
    gust__waiter *w = gust__future_impl(f);
    w->f = f;
    w->item = item;
    gust_timer_init(loop, &w->timer);
    /* The timer is armed before the waiter is linked, so a failure leaves
     * nothing to undo in q. */
    if (timeout > 0 &&
        gust_timer_start(&w->timer, timeout, 0, waiter_timed_out, w) < 0) {
        gust_value_free(&w->item);
        gust_future_unref(f);
        errno = ENOMEM;
        return NULL;
    }
    w->q = q;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
    q->len++;
    gust_future_ref(f); /* the queue's */
    gust__future_set_cancel(f, waiter_cancelled);
    return f;
}

/* Nobody but the queue can ever see this pending future: completing it would
 * hand a slot or an item to no one. */
static bool abandoned(const gust_future *f)
{
    return gust__future_unobserved(f);
}

gust_future *gust__waitq_pop(gust__waitq *q, bool skip_abandoned,
                             gust_value *item)
{
    gust__waiter *w;
    while ((w = q->head)) {
        gust_future *f = w->f;
        waitq_unlink(w);
        /* Handing a slot or an item to a future nobody watches would lose
         * it for good: treat it as cancelled and try the next one. */
        if (skip_abandoned && abandoned(f)) {
            gust_value_free(&w->item);
            gust_future_unref(f);
            continue;
        }
        if (item)
            *item = w->item;
        else
            gust_value_free(&w->item);
        w->item = GUST_VALUE_NONE;
        return f;
    }
    return NULL;
}

/* Completing only queues the futures' callbacks, so the owner may free
 * itself right after: nothing runs before it is gone. */
void gust__waitq_fail_all(gust__waitq *q, int error)
{
    gust__waiter *w;
    while ((w = q->head)) {
        gust_future *f = w->f;
        waitq_unlink(w);
        gust_value_free(&w->item);
        gust_future_set_error(f, error);
        gust_future_unref(f);
    }
}

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
