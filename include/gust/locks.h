/* Synchronization primitives for coroutines (Tornado's tornado.locks).
 *
 * Lock, Semaphore, BoundedSemaphore, Event and Condition coordinate
 * coroutines (and callbacks) running on ONE loop. They are not thread locks:
 * nothing here blocks the thread, and they are used from the loop's thread
 * only. Every operation that may have to wait returns a future:
 *
 *     if (gust_await(gust_lock_acquire(lock, 0), NULL) == 0) {
 *         ... critical section, may await other futures ...
 *         gust_lock_release(lock);
 *     }
 *
 * or, with callbacks, add a done-callback to the future and read
 * gust_future_status() in it (see future.h).
 *
 * FUTURES RETURNED. Every function returning a gust_future * gives the
 * caller one reference, as everywhere in Gust: gust_await() consumes it,
 * otherwise drop it with gust_future_unref() once done with it. The
 * primitive holds its own reference while the future waits, so the future
 * stays valid until it completes. Results carry no value (GUST_VALUE_NONE).
 * An operation that need not wait returns a future that is already done
 * (its callbacks still run on a later loop iteration, never inside the
 * call). NULL is returned only when out of memory (errno set).
 *
 * WAITING ORDER. Waiters are served first come, first served: a release
 * wakes the waiter that has waited longest.
 *
 * TIMEOUTS. Every wait takes timeout, in seconds from now as
 * gust_with_timeout() does; <= 0 waits without limit. When it expires the
 * future fails with GUST_ETIMEOUT and the waiter leaves the line (it will
 * not be given the lock later). Prefer this argument to wrapping the future
 * in gust_with_timeout(), which does not cancel what it wraps: the wrapped
 * acquire would stay in line and take the lock with nobody to release it.
 *
 * CANCELLATION. A waiting future may be cancelled (gust_future_cancel(), or
 * a gust_any() that another future won): it leaves the line at once and is
 * never woken. A waiting future that nobody can observe any more (no
 * reference and no done-callback left besides the primitive's own: e.g. the
 * coroutine awaiting it was cancelled, which drops its reference) is treated
 * the same way when its turn comes, so a cancelled coroutine never takes a
 * lock it cannot release. Keep a reference (or a done-callback) on a future
 * until it completes if you mean to use its outcome.
 *
 * FREEING. gust_<primitive>_free() fails the futures still waiting with
 * GUST_ECANCELED (their callbacks run later, as always). Freeing a held lock
 * is allowed: there is nobody to tell.
 */
#ifndef GUST_LOCKS_H
#define GUST_LOCKS_H

#include "gust/common.h"

#include <stdbool.h>
#include <stddef.h>

#include "gust/future.h"
#include "gust/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Lock -------------------------------------------------------------- */

/* A lock for coroutines (Tornado's Lock): acquired by one holder at a time,
 * released by whoever holds it (ownership is not checked, as in Tornado). */
typedef struct gust_lock gust_lock;

/* A new unlocked lock on loop. Free with gust_lock_free(). NULL if out of
 * memory. */
GUST_EXTERN GUST_MUST_USE gust_lock *gust_lock_new(gust_loop *loop);

/* Frees the lock; waiting acquires fail with GUST_ECANCELED. NULL is a
 * no-op. */
GUST_EXTERN void gust_lock_free(gust_lock *lock);

/* Asks for the lock. The returned future (one reference for the caller)
 * completes with status 0 once the caller holds the lock: at once if it is
 * free, otherwise when every earlier waiter has had its turn. GUST_ETIMEOUT
 * after timeout seconds (> 0) without getting it; GUST_ECANCELED if the lock
 * is freed first. NULL if out of memory. */
GUST_EXTERN GUST_MUST_USE gust_future *gust_lock_acquire(gust_lock *lock,
                                                         double timeout);

/* Takes the lock if it is free, without waiting. Returns true if taken. */
GUST_EXTERN bool gust_lock_try_acquire(gust_lock *lock);

/* Releases the lock: the longest waiting acquire gets it next (its future
 * completes; its callbacks run on a later iteration), or it becomes free.
 * Returns 0, or -EPERM if the lock is not held (Tornado's RuntimeError). */
GUST_EXTERN int gust_lock_release(gust_lock *lock);

/* True while someone holds the lock (including a waiter it was handed to
 * whose callbacks have not run yet). */
GUST_EXTERN bool gust_lock_locked(const gust_lock *lock);

/* ---- Semaphore and BoundedSemaphore ----------------------------------- */

/* A counter of available slots (Tornado's Semaphore): acquire takes one,
 * waiting while there are none; release gives one back. */
typedef struct gust_semaphore gust_semaphore;

/* A semaphore with value free slots. NULL if out of memory. */
GUST_EXTERN GUST_MUST_USE gust_semaphore *gust_semaphore_new(gust_loop *loop,
                                                             unsigned value);

/* Tornado's BoundedSemaphore: releasing it when it is back at value is an
 * error (it catches a release without a matching acquire). NULL if out of
 * memory. */
GUST_EXTERN GUST_MUST_USE gust_semaphore *gust_bounded_semaphore_new(
    gust_loop *loop, unsigned value);

/* Frees it; waiting acquires fail with GUST_ECANCELED. NULL is a no-op. */
GUST_EXTERN void gust_semaphore_free(gust_semaphore *sem);

/* Takes a slot. The future (one reference for the caller) completes with 0
 * once a slot is the caller's: at once if one is free, otherwise when it is
 * this waiter's turn after a release. GUST_ETIMEOUT after timeout seconds
 * (> 0); GUST_ECANCELED if the semaphore is freed first. NULL if out of
 * memory. */
GUST_EXTERN GUST_MUST_USE gust_future *gust_semaphore_acquire(
    gust_semaphore *sem, double timeout);

/* Takes a slot if one is free, without waiting. Returns true if taken. */
GUST_EXTERN bool gust_semaphore_try_acquire(gust_semaphore *sem);

/* Gives a slot back; the longest waiting acquire gets it, if any.
 * Returns 0, or -EOVERFLOW (nothing changes) if a bounded semaphore is
 * already at its initial value, or the counter would overflow. */
GUST_EXTERN int gust_semaphore_release(gust_semaphore *sem);

/* The number of free slots now. */
GUST_EXTERN unsigned gust_semaphore_value(const gust_semaphore *sem);

/* ---- Event ------------------------------------------------------------- */

/* A flag that coroutines can wait for (Tornado's Event): false at first;
 * gust_event_set() wakes every waiter and later waits return at once, until
 * gust_event_clear(). */
typedef struct gust_event gust_event;

/* A new, clear event. NULL if out of memory. */
GUST_EXTERN GUST_MUST_USE gust_event *gust_event_new(gust_loop *loop);

/* Frees it; waiting futures fail with GUST_ECANCELED. NULL is a no-op. */
GUST_EXTERN void gust_event_free(gust_event *ev);

/* Sets the flag and completes (status 0) every waiting future. */
GUST_EXTERN void gust_event_set(gust_event *ev);

/* Clears the flag: waits from now on wait for the next gust_event_set(). */
GUST_EXTERN void gust_event_clear(gust_event *ev);

/* The flag. */
GUST_EXTERN bool gust_event_is_set(const gust_event *ev);

/* A future (one reference for the caller) done with 0 when the flag is
 * set: already done if it is set now. GUST_ETIMEOUT after timeout seconds
 * (> 0); GUST_ECANCELED if the event is freed first. NULL if out of
 * memory. */
GUST_EXTERN GUST_MUST_USE gust_future *gust_event_wait(gust_event *ev,
                                                       double timeout);

/* ---- Condition --------------------------------------------------------- */

/* A condition variable for coroutines (Tornado's Condition): a waiter waits
 * until notified. Unlike a thread condition it needs no lock, since
 * coroutines only switch at an await. */
typedef struct gust_condition gust_condition;

/* A new condition. NULL if out of memory. */
GUST_EXTERN GUST_MUST_USE gust_condition *gust_condition_new(gust_loop *loop);

/* Frees it; waiting futures fail with GUST_ECANCELED. NULL is a no-op. */
GUST_EXTERN void gust_condition_free(gust_condition *cond);

/* A future (one reference for the caller) that completes with 0 when a
 * notify reaches it (always pending when returned). GUST_ETIMEOUT after
 * timeout seconds (> 0) (Tornado resolves it with False instead);
 * GUST_ECANCELED if the condition is freed first. NULL if out of memory. */
GUST_EXTERN GUST_MUST_USE gust_future *gust_condition_wait(gust_condition *cond,
                                                           double timeout);

/* Wakes up to n waiters, longest waiting first (cancelled and abandoned ones
 * do not count). Returns how many were woken. */
GUST_EXTERN size_t gust_condition_notify(gust_condition *cond, size_t n);

/* Wakes every waiter. Returns how many were woken. */
GUST_EXTERN size_t gust_condition_notify_all(gust_condition *cond);

#ifdef __cplusplus
}
#endif

#endif /* GUST_LOCKS_H */
