/* The FIFO of waiters that locks.c and queue.c share (waitq_internal.h):
 * each waiter is a pending future with an optional timeout and item. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "gust/future.h"
#include "future_internal.h"
#include "waitq_internal.h"

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
