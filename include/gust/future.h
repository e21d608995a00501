/* Futures and coroutines (Tornado's concurrent.Future and gen.coroutine).
 *
 * A future holds the outcome of an operation that finishes later: either a
 * result (a gust_value) or an error (a negative code). It is completed once;
 * its done-callbacks then run on its loop, in the order they were added.
 * A coroutine is a function running on its own stack; inside it,
 * gust_await(future) suspends the coroutine until the future is done and
 * returns its outcome, while the loop runs everything else.
 *
 * THREADS. Futures and coroutines belong to one loop and are used on that
 * loop's thread only. (gust_run_in_executor() runs its function on a pool
 * thread, but the future completes on the loop.)
 *
 * RESULTS. A result is a gust_value: a pointer plus the function that frees
 * it (NULL when the pointer is not owned: an integer cast to a pointer, a
 * string literal, an object someone else frees). The future owns its value
 * from the moment it is set until it is freed, which frees the value, or until
 * someone takes the value out (gust_future_take(), gust_await() with a
 * non-NULL out), after which the taker owns it and frees it with
 * gust_value_free(). Errors carry no value.
 *
 * OWNERSHIP OF FUTURES: reference counting, with one rule that makes the
 * common patterns leak-free:
 *     Every function that takes a gust_future * as its subject consumes the
 *     caller's reference to it: gust_await(), gust_all(), gust_gather(),
 *     gust_any(), gust_with_timeout(), gust_loop_run_sync(). They consume
 *     it even when they fail. The gust_future_* functions below do not
 *     (they borrow), except gust_future_unref().
 * Every function returning a gust_future * gives the caller one reference.
 * So these are all correct and leak-free:
 *     gust_future_unref(gust_spawn(loop, fn, data));        spawn and forget
 *     r = gust_await(gust_sleep(loop, 0.1), NULL);          await once
 *     r = gust_await(gust_all(loop, (gust_future *[]){
 *             gust_spawn(loop, a, NULL), gust_sleep(loop, 1)}, 2), &v);
 * To await a future and keep it, or to let several coroutines await one
 * future, give each its own reference: gust_await(gust_future_ref(f), ...).
 * Whatever will complete a future (a timer, a coroutine, the executor, the
 * done-callbacks scheduled on the loop) holds its own reference meanwhile,
 * so dropping yours never cancels anything and never frees early.
 * gust_spawn() and the other constructors are marked warn_unused_result:
 * ignoring the returned reference is a leak and does not compile with
 * -Werror.
 *
 * ERRORS. An error is a negative errno-style or Gust code (gust/error.h).
 * GUST_ECANCELED means the future was cancelled, GUST_ETIMEOUT that a
 * timeout expired. A future that completes with an error other than
 * GUST_ECANCELED and is freed without anyone having read its status
 * (gust_future_status(), gust_await(), run_sync) logs a warning, as
 * Tornado logs "exception was never retrieved": an error from a coroutine
 * that was spawned and forgotten is not lost silently. An error one means
 * to drop is marked with gust_future_expect_error() (Tornado's
 * quiet_exceptions). The combinators read their children's errors (so
 * they are not reported twice); gust_with_timeout() reads the inner
 * future's GUST_ETIMEOUT when it comes after the wrapper's own timeout.
 */
#ifndef GUST_FUTURE_H
#define GUST_FUTURE_H

#include "gust/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gust/error.h"
#include "gust/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define GUST_MUST_USE __attribute__((warn_unused_result))
#else
#define GUST_MUST_USE
#endif

typedef struct gust_future gust_future;

/* Frees a value; NULL where the value is not owned. */
typedef void (*gust_free_fn)(void *ptr);

/* A result: ptr, and how to free it (free_fn NULL: nothing to free). */
typedef struct gust_value {
    void *ptr;
    gust_free_fn free_fn;
} gust_value;

/* Integers travel in ptr, unowned. */
#define GUST_VALUE_INT(n) ((gust_value){(void *)(intptr_t)(n), NULL})
#define GUST_VALUE_NONE ((gust_value){NULL, NULL})

/* Calls v->free_fn(v->ptr) if both are set, then clears *v. NULL is a no-op. */
GUST_EXTERN void gust_value_free(gust_value *v);

/* ---- Futures ----------------------------------------------------------- */

/* Called on the loop, in the callback phase, once the future is done. f is
 * borrowed: valid during the call (take a reference to keep it). */
typedef void (*gust_future_cb)(gust_future *f, void *data);

/* A new pending future on loop; the caller holds the only reference.
 * Returns NULL if out of memory. */
GUST_EXTERN GUST_MUST_USE gust_future *gust_future_new(gust_loop *loop);

/* Adds a reference; returns f, for gust_await(gust_future_ref(f), ...). */
GUST_EXTERN gust_future *gust_future_ref(gust_future *f);

/* Drops a reference; the last one frees f and its value (and logs an error
 * nobody read, see ERRORS). NULL is a no-op. */
GUST_EXTERN void gust_future_unref(gust_future *f);

/* Completes f with a result. The future owns value.ptr from this call on,
 * even when the call fails (it is freed at once then), so a producer never
 * has to clean up after it.
 * Returns 0; GUST_ECANCELED if f was cancelled (quietly: a producer need not
 * know its consumer gave up); -EALREADY if f was already completed
 * otherwise, which is a programming error and is logged. The done-callbacks
 * are scheduled on the loop, never run inside this call. */
GUST_EXTERN int gust_future_set_result(gust_future *f, gust_value value);

/* Completes f with error, a negative code (asserted). Returns as
 * gust_future_set_result(). */
GUST_EXTERN int gust_future_set_error(gust_future *f, int error);

/* Cancels f: if it is pending, it completes with GUST_ECANCELED, whatever
 * produces it is told (a sleep's timer stops; a coroutine's next await
 * returns GUST_ECANCELED; all/any/with_timeout cancel what they wait for;
 * executor work cannot be stopped and its result is dropped), and true is
 * returned. A done future is left alone and false is returned. */
GUST_EXTERN bool gust_future_cancel(gust_future *f);

/* Marks f's error, present or to come, as expected: f is freed without the
 * "never retrieved" warning (the error is still its status for whoever
 * reads it). For a future one has decided not to read, as Tornado's
 * quiet_exceptions: gust_with_timeout(loop,
 * gust_future_expect_error(gust_all(...)), 2). Returns f (NULL: NULL). */
GUST_EXTERN gust_future *gust_future_expect_error(gust_future *f);

/* True once f is completed (result, error or cancelled). */
GUST_EXTERN bool gust_future_done(const gust_future *f);

/* True if f completed by cancellation. */
GUST_EXTERN bool gust_future_cancelled(const gust_future *f);

/* -EINPROGRESS while f is pending; then 0 for a result, or the error.
 * Reading it counts as retrieving the error (see ERRORS). */
GUST_EXTERN int gust_future_status(gust_future *f);

/* The result's pointer, borrowed: valid while f lives and the value has not
 * been taken. NULL while pending, on error, or after a take. */
GUST_EXTERN void *gust_future_result(const gust_future *f);

/* Takes the result out: the caller owns it (free with gust_value_free()),
 * the future keeps {NULL, NULL}. Returns GUST_VALUE_NONE while pending, on
 * error, or if already taken. */
GUST_EXTERN gust_value gust_future_take(gust_future *f);

/* The loop f belongs to. */
GUST_EXTERN gust_loop *gust_future_loop(const gust_future *f);

/* Adds cb(f, data) to run on the loop when f is done. Callbacks run in the
 * order added; one added to a done future runs in the next iteration, never
 * inside this call. The future keeps itself alive until its scheduled
 * callbacks have run, but a pending future is kept alive only by its
 * references: hold one until it completes if nothing else does.
 * Returns 0 or -ENOMEM (then cb is never called). */
GUST_EXTERN int gust_future_add_done_callback(gust_future *f, gust_future_cb cb,
                                              void *data);

/* ---- Combinators and sources ------------------------------------------- */

/* A future done when all n futures are done, or failed as soon as one of
 * them fails (with that error; the others keep running, their outcomes are
 * dropped). Its result is a gust_value array of n entries, in the order of
 * fs, each taken from its future; freeing the result (gust_value_free())
 * frees every entry still in it and the array, so the caller may take
 * entries out first (copy one and clear its slot). n == 0 gives a result of
 * {NULL, NULL}. Consumes the n references in fs (the array itself is the
 * caller's). Cancelling it cancels the futures still pending.
 * Returns NULL if out of memory (the references are still consumed). */
GUST_EXTERN GUST_MUST_USE gust_future *gust_all(gust_loop *loop,
                                                gust_future *const *fs,
                                                size_t n);

/* One outcome of gust_gather(): status 0 and the value, or the error (and
 * no value). */
typedef struct gust_outcome {
    int status;
    gust_value value;
} gust_outcome;

/* asyncio.gather(return_exceptions=True): a future done when all n futures
 * are done, whatever their outcomes, never failed by one of them. Its
 * result is a gust_outcome array of n entries, in the order of fs, each
 * with its future's status and, on success, the value taken from it;
 * freeing the result (gust_value_free()) frees every value still in it and
 * the array, so the caller may take values out first (copy one and clear
 * its slot). Every child's error is read by gather, so none is reported as
 * never retrieved. n == 0 gives a result of {NULL, NULL}. Consumes the n
 * references in fs. Cancelling it cancels the futures still pending (it
 * then fails with GUST_ECANCELED, the outcomes are dropped). It fails only
 * then, or with -ENOMEM when the array cannot be allocated.
 * Returns NULL if out of memory (the references are still consumed). */
GUST_EXTERN GUST_MUST_USE gust_future *gust_gather(gust_loop *loop,
                                                   gust_future *const *fs,
                                                   size_t n);

/* A future done as soon as any of the n futures is: same status, and its
 * value taken over. If winner is not NULL, the index in fs of that future is
 * stored in *winner when it completes (winner must stay valid until then).
 * The others are cancelled. n must be > 0. Consumes the references in fs.
 * Returns NULL if out of memory (the references are still consumed). */
GUST_EXTERN GUST_MUST_USE gust_future *gust_any(gust_loop *loop,
                                                gust_future *const *fs,
                                                size_t n, size_t *winner);

/* A future that completes as f does, or with GUST_ETIMEOUT after timeout
 * seconds, whichever comes first. On timeout f is NOT cancelled (as in
 * Tornado): it runs on, and its outcome is dropped; keep your own reference
 * to cancel it. If f then fails with GUST_ETIMEOUT (its own deadline), that
 * error counts as read: the timeout was already reported through the
 * wrapper. Any other late error is reported as never retrieved unless f
 * was marked with gust_future_expect_error(). Cancelling the returned
 * future cancels f. Consumes f.
 * Returns NULL if out of memory (f is still consumed). */
GUST_EXTERN GUST_MUST_USE gust_future *gust_with_timeout(gust_loop *loop,
                                                         gust_future *f,
                                                         double timeout);

/* A future that completes with {NULL, NULL} after seconds (counted as for
 * gust_timer_start()). Cancelling it stops its timer. NULL if out of
 * memory. */
GUST_EXTERN GUST_MUST_USE gust_future *gust_sleep(gust_loop *loop,
                                                  double seconds);

/* Same, at deadline on the loop clock (gust_loop_time()). */
GUST_EXTERN GUST_MUST_USE gust_future *gust_sleep_until(gust_loop *loop,
                                                        double deadline);

/* Blocking work: runs on an executor thread, fills *result (initially
 * {NULL, NULL}), returns 0 or a negative code. */
typedef int (*gust_blocking_fn)(gust_value *result, void *data);

/* Runs fn(result, data) on the loop's executor (gust_loop_run_in_executor)
 * and returns a future of its outcome: fn's result if it returns 0, its
 * code otherwise (and any value it set is freed). If the future was
 * cancelled meanwhile, the value is freed on the loop. NULL if the work
 * could not be queued (errno set). */
GUST_EXTERN GUST_MUST_USE gust_future *gust_run_in_executor(gust_loop *loop,
                                                            gust_blocking_fn fn,
                                                            void *data);

/* Tornado's IOLoop.run_sync: runs loop until f is done or timeout seconds
 * pass (<= 0: no limit). Returns f's status (0 or its error); or
 * GUST_ETIMEOUT, or GUST_ECANCELED if gust_loop_stop() ended the run first,
 * and in those two cases f is cancelled (run the loop a little more to let
 * a cancelled coroutine unwind before freeing the loop). If result is
 * not NULL, f's value is taken into it (GUST_VALUE_NONE on error). Consumes
 * f. Not callable from inside a coroutine or a loop iteration (assert). */
GUST_EXTERN int gust_loop_run_sync(gust_loop *loop, gust_future *f,
                                   double timeout, gust_value *result);

/* ---- Coroutines -------------------------------------------------------- */

/* The body of a coroutine. Returns 0 and may fill *result (initially
 * {NULL, NULL}), which becomes the future's result; or returns a negative
 * code, which becomes the future's error (a value set is then freed). */
typedef int (*gust_coro_fn)(gust_loop *loop, gust_value *result, void *data);

/* Starts fn(loop, result, data) on its own stack, in the next callback
 * phase of loop (never inside this call), and returns the future of its
 * outcome. The coroutine runs until it awaits a pending future, then the
 * loop goes on; it resumes in a later callback phase once that future is
 * done. Cancelling the returned future completes it with GUST_ECANCELED at
 * once; a coroutine that has not started yet never runs, one that has is
 * told through its next gust_await() (which returns GUST_ECANCELED) and
 * whatever it returns is dropped.
 * HOOK FOR ERRORS: the caller of gust_spawn() learns how the coroutine ended
 * from the future (gust_future_add_done_callback + gust_future_status); the
 * web layer turns a negative status into a 500 that way. An error nobody
 * reads is logged (see ERRORS).
 * Stacks: gust_coro_set_stack_size(). Returns NULL if out of memory or no
 * stack could be mapped (errno set). */
GUST_EXTERN GUST_MUST_USE gust_future *gust_spawn(gust_loop *loop,
                                                  gust_coro_fn fn, void *data);

/* Suspends the calling coroutine until f is done, without blocking the loop,
 * holding a reference to f meanwhile. (A coroutine waiting on a future that
 * nothing will ever complete waits forever, with its stack: cancel it.)
 * and returns f's status: 0, or its error. If f is already done it returns
 * at once, without a trip through the loop. If out is not NULL, f's value
 * is taken into it on success (GUST_VALUE_NONE otherwise): the caller owns
 * it. Consumes the caller's reference to f.
 * Returns GUST_ECANCELED if the coroutine's own future was cancelled (before
 * or during the wait; reported once; f itself is not cancelled).
 * Returns -EPERM when called outside a coroutine, and -EDEADLK when f is the
 * calling coroutine's own future (f is consumed in both cases). */
GUST_EXTERN int gust_await(gust_future *f, gust_value *out);

/* True when called from inside a coroutine. */
GUST_EXTERN bool gust_in_coroutine(void);

/* The future of the calling coroutine (borrowed), or NULL outside one. */
GUST_EXTERN gust_future *gust_coro_self(void);

/* Sets the size of the usable stack of coroutines spawned from now on, in
 * bytes, rounded up to whole pages; one PROT_NONE guard page sits below
 * each stack. Default 64 KiB; the environment variable GUST_CORO_STACK_SIZE
 * (bytes) sets the initial default. Process-wide. Returns 0, or -EINVAL for
 * less than 16 KiB or more than 1 GiB. */
GUST_EXTERN int gust_coro_set_stack_size(size_t bytes);

/* The current stack size (bytes, usable, whole pages). */
GUST_EXTERN size_t gust_coro_stack_size(void);

/* Finished coroutines give their stack back to a pool (one per thread) for
 * the next spawn; the pool keeps at most n stacks (default 64) and unmaps
 * the rest. Returns 0. The new bound applies to stacks released after the
 * call; gust_coro_pool_trim() applies it at once. Process-wide. */
GUST_EXTERN int gust_coro_set_pool_max(size_t n);

/* Unmaps every stack kept in the calling thread's pool. A thread's pool is
 * also unmapped when the thread exits. */
GUST_EXTERN void gust_coro_pool_trim(void);

/* Counters for the calling thread (for tests and monitoring). */
typedef struct gust_coro_stats {
    size_t alive;   /* coroutines spawned and not yet finished */
    size_t mapped;  /* stacks mapped: in use plus pooled */
    size_t pooled;  /* stacks in the pool, ready for reuse */
    size_t reused;  /* spawns served from the pool since the thread began */
} gust_coro_stats;
GUST_EXTERN void gust_coro_get_stats(gust_coro_stats *stats);

/* Opt-in detection of coroutine stack overflow. Installs, once per process,
 * a SIGSEGV/SIGBUS handler that runs on an alternate signal stack: a fault
 * inside a coroutine's guard page prints "gust: coroutine stack overflow"
 * (with the address and the stack size) to stderr and aborts (SIGABRT).
 * Other faults go to the handler that was installed before (or the default
 * action). The alternate stack is set for the calling thread now, and for
 * any other thread at its first gust_spawn(). Without this call, an
 * overflow still hits the guard page and the process dies of a plain
 * SIGSEGV: nothing is ever silently overwritten by a frame smaller than a
 * page. Returns 0 or a negative errno. */
GUST_EXTERN int gust_coro_install_overflow_handler(void);

/* The context switch compiled in: "x86_64", "aarch64" or "ucontext" (the
 * portable fallback, forced by building with -DGUST_CORO_UCONTEXT=1). */
GUST_EXTERN const char *gust_coro_switch_impl(void);

#ifdef __cplusplus
}
#endif

#endif /* GUST_FUTURE_H */
