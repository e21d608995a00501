/* Queues for coroutines (Tornado's tornado.queues): Queue (first in, first
 * out), LifoQueue (last in, first out) and PriorityQueue (smallest first).
 *
 * A queue coordinates producer and consumer coroutines (or callbacks) on
 * ONE loop; it is not a thread-safe queue. put waits while the queue is
 * full, get waits while it is empty, and join waits until every item put
 * has been marked done with task_done:
 *
 *     producer:  gust_await(gust_queue_put(q, item, 0), NULL);
 *     consumer:  gust_value item;
 *                if (gust_await(gust_queue_get(q, 0), &item) == 0) {
 *                    ... use item.ptr ...
 *                    gust_value_free(&item);
 *                    gust_queue_task_done(q);
 *                }
 *     main:      gust_await(gust_queue_join(q, 0), NULL);
 *
 * ITEMS are gust_values (future.h): a pointer and the function that frees
 * it (NULL for an unowned pointer or an integer, GUST_VALUE_INT(n)). Whoever
 * holds an item owns it: the queue from a successful put until the item is
 * taken out; then the getter (the future's result, which gust_await() or
 * gust_future_take() hands over). Items still inside when the queue is
 * freed, or held by a put that fails, are freed with their free_fn.
 *
 * FUTURES RETURNED: one reference for the caller, who drops it (or hands it
 * to gust_await(), which consumes it). The queue holds its own while a
 * future waits. An operation that need not wait returns a future already
 * done; its callbacks still run on a later loop iteration. NULL is returned
 * only when out of memory (errno set).
 *
 * ORDER AND FAIRNESS. Waiting getters are served in the order they asked,
 * and so are waiting putters. An item put while getters wait goes straight
 * to the first of them. A get from a full queue with putters waiting takes
 * its item as if the first waiting put had gone in just before (so a
 * LifoQueue gives that put's item, a PriorityQueue the smaller of the two).
 *
 * TIMEOUTS, in seconds from now (<= 0: no limit), fail the future with
 * GUST_ETIMEOUT; the waiter leaves the line (a timed-out put's item is
 * freed, a timed-out get takes nothing). Cancelling a waiting future does
 * the same at once. A waiting get that nobody can observe any more (no
 * reference and no done-callback besides the queue's: e.g. its coroutine
 * was cancelled) is skipped when an item comes, so no item is given to a
 * getter that is gone. A waiting put whose references were all dropped
 * still puts its item when room comes (fire and forget works).
 */
#ifndef GUST_QUEUE_H
#define GUST_QUEUE_H

#include "gust/common.h"

#include <stdbool.h>
#include <stddef.h>

#include "gust/future.h"
#include "gust/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gust_queue gust_queue;

/* Orders two items of a PriorityQueue (their ptr fields): < 0 when a must
 * come out before b, > 0 when after, 0 when equal (equal items come out in
 * the order they were put). data is the pointer given at creation. */
typedef int (*gust_queue_cmp_fn)(const void *a, const void *b, void *data);

/* A comparison for items made with GUST_VALUE_INT(n): smallest n first. */
GUST_EXTERN int gust_queue_cmp_int(const void *a, const void *b, void *data);

/* A first-in, first-out queue holding at most maxsize items (0: no limit).
 * Free with gust_queue_free(). NULL if out of memory. */
GUST_EXTERN GUST_MUST_USE gust_queue *gust_queue_new(gust_loop *loop,
                                                     size_t maxsize);

/* A last-in, first-out queue (Tornado's LifoQueue). */
GUST_EXTERN GUST_MUST_USE gust_queue *gust_lifo_queue_new(gust_loop *loop,
                                                          size_t maxsize);

/* A queue that gives the smallest item first by cmp (Tornado's
 * PriorityQueue, whose items are usually (priority, data) tuples: here the
 * item points at the caller's struct, and cmp reads its priority). cmp is
 * required; cmp_data is passed to it. */
GUST_EXTERN GUST_MUST_USE gust_queue *gust_priority_queue_new(
    gust_loop *loop, size_t maxsize, gust_queue_cmp_fn cmp, void *cmp_data);

/* Frees the queue and the items in it. Waiting gets, puts and joins fail
 * with GUST_ECANCELED (the items of waiting puts are freed). NULL is a
 * no-op. */
GUST_EXTERN void gust_queue_free(gust_queue *q);

/* Puts item, waiting for room if the queue is full. The queue owns item
 * from this call on, whatever happens (a put that fails frees it). The
 * future completes with 0 once the item is in (at once when there is room),
 * GUST_ETIMEOUT after timeout seconds (> 0) without room, GUST_ECANCELED if
 * the queue is freed first. NULL if out of memory (item freed). */
GUST_EXTERN GUST_MUST_USE gust_future *gust_queue_put(gust_queue *q,
                                                      gust_value item,
                                                      double timeout);

/* Puts item without waiting. Returns 0 (the queue owns item), or -EAGAIN
 * when full (Tornado's QueueFull) or -ENOMEM: then the caller still owns
 * item. */
GUST_EXTERN int gust_queue_put_nowait(gust_queue *q, gust_value item);

/* Takes the next item, waiting for one if the queue is empty. The future's
 * result is the item (the future owns it until someone takes it:
 * gust_await(f, &item) or gust_future_take()). GUST_ETIMEOUT after timeout
 * seconds (> 0) with no item; GUST_ECANCELED if the queue is freed first.
 * NULL if out of memory (nothing taken). */
GUST_EXTERN GUST_MUST_USE gust_future *gust_queue_get(gust_queue *q,
                                                      double timeout);

/* Takes the next item without waiting into *out (the caller owns it).
 * Returns 0, or -EAGAIN when there is none (Tornado's QueueEmpty; *out is
 * then GUST_VALUE_NONE). */
GUST_EXTERN int gust_queue_get_nowait(gust_queue *q, gust_value *out);

/* Marks one item taken from the queue as processed. Returns 0, or -EINVAL
 * if called more times than items were put (Tornado's ValueError). When
 * every item put has been marked, waiting joins complete. */
GUST_EXTERN int gust_queue_task_done(gust_queue *q);

/* A future done (0) once every item put so far has been marked with
 * gust_queue_task_done(): at once if none is unfinished. GUST_ETIMEOUT after
 * timeout seconds (> 0); GUST_ECANCELED if the queue is freed first. NULL if
 * out of memory. */
GUST_EXTERN GUST_MUST_USE gust_future *gust_queue_join(gust_queue *q,
                                                       double timeout);

/* Items in the queue now (not counting those of waiting puts). */
GUST_EXTERN size_t gust_queue_qsize(const gust_queue *q);

/* True when qsize is 0. */
GUST_EXTERN bool gust_queue_empty(const gust_queue *q);

/* True when the queue has a maxsize and holds that many items. */
GUST_EXTERN bool gust_queue_full(const gust_queue *q);

/* The maxsize given at creation (0: no limit). */
GUST_EXTERN size_t gust_queue_maxsize(const gust_queue *q);

/* Items put and not yet marked with gust_queue_task_done(). */
GUST_EXTERN size_t gust_queue_unfinished(const gust_queue *q);

#ifdef __cplusplus
}
#endif

#endif /* GUST_QUEUE_H */
