/* The event loop (Tornado's IOLoop).
 *
 * One loop per thread watches file descriptors through a backend (epoll on
 * Linux, kqueue on BSD/macOS, poll everywhere as a fallback), runs timers
 * kept in a binary heap keyed by deadline, and runs callbacks queued with
 * gust_loop_add_callback(). Nothing here blocks except the backend's wait.
 *
 * Backend choice: the best one compiled in, unless the environment variable
 * GUST_LOOP_BACKEND names another ("epoll", "kqueue", "poll").
 * gust_loop_backend() says which one a loop uses.
 *
 * ONE ITERATION, in this order (gust_loop_run_once):
 *   1. Update the loop's cached time (gust_loop_time()).
 *   2. Run every callback that was queued before this iteration began
 *      (gust_loop_add_callback, and those posted from other threads). A
 *      callback queued while this phase runs waits for the next iteration,
 *      so a callback that re-queues itself cannot starve I/O.
 *   3. Wait for I/O. The wait does not block when callbacks are queued or
 *      the loop was stopped; otherwise it blocks until the earliest timer's
 *      deadline, or forever when there is none.
 *   4. Update the cached time, then call the handler of each ready fd once.
 *      A handler removed (or re-registered for a new fd with the same number)
 *      during this phase is not called for the stale event.
 *   5. Update the cached time, then run every timer whose deadline has come,
 *      earliest first (ties in the order they were scheduled). A timer
 *      scheduled during this phase with a deadline already past runs in the
 *      next iteration, never in this one.
 * Signals watched with gust_loop_add_signal() and wake-ups from other threads
 * arrive as ready fds (phase 4) and run their callbacks there.
 *
 * BATCHED SOCKET I/O. Where io_uring is available (Linux >= 5.19, and not
 * refused by seccomp or kernel.io_uring_disabled), the loop makes the reads
 * and sends of streams on plain sockets in batches: in phase 4 the reads of
 * all ready streams go to the kernel in one system call before their
 * handlers run, and the sends queued during a phase leave in one call when
 * it ends (before the wait, after phase 4, after phase 5). Each operation
 * is non-blocking and completes inside that call, so streams behave as
 * before; a request costs about no system calls instead of two. The
 * environment variable GUST_IO_URING=0 turns this off (one read() and one
 * sendmsg() each, as without io_uring). Handlers of your own fds are not
 * affected.
 *
 * FORK SAFETY. A loop creates its backend (the epoll fd, the wake-up fd)
 * lazily, the first time it registers an fd or runs. Until then it can be
 * created before fork() with no harm. After that, fork_processes() refuses to
 * fork (GUST_ELOOPINUSE) and a child that tries to use an inherited, started
 * loop gets GUST_EFORKED: the children would share the parent's epoll set.
 *
 * THREADS. A loop is used by one thread only, except for
 * gust_loop_add_callback_threadsafe() and gust_loop_stop_threadsafe(), which
 * any thread may call.
 */
#ifndef GUST_LOOP_H
#define GUST_LOOP_H

#include "gust/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gust/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gust_loop gust_loop;

/* Events an fd handler asks for and receives. GUST_IO_ERROR is always
 * watched, whether or not it is in the mask (as Tornado does); it is
 * reported for errors and hang-ups (EPOLLERR, EPOLLHUP, POLLNVAL...). */
enum gust_io_event {
    GUST_IO_READ = 1u << 0,
    GUST_IO_WRITE = 1u << 1,
    GUST_IO_ERROR = 1u << 2,
};
/* Older names, kept as aliases. */
#define GUST_READ GUST_IO_READ
#define GUST_WRITE GUST_IO_WRITE
#define GUST_ERROR GUST_IO_ERROR

/* ---- Lifetime ---------------------------------------------------------- */

/* Creates a loop. It does not become the current loop of any thread (see
 * gust_loop_make_current()). Returns NULL with errno set on failure. */
GUST_EXTERN gust_loop *gust_loop_new(void);

/* Frees a loop that has nothing left: no fd handlers, no pending timers, no
 * queued callbacks, no signal watchers, no executor work in flight.
 * Returns 0 and frees it; or -EBUSY and frees nothing, logging what is left
 * (tests use this to catch leaked handles). If the loop was the calling
 * thread's current loop, the thread has no current loop afterwards. */
GUST_EXTERN int gust_loop_free(gust_loop *loop);

/* The calling thread's current loop, created on first use (Tornado's
 * IOLoop.current()). Returns NULL only if creation fails (out of memory).
 * The loop stays owned by the thread: free it with gust_loop_free(), which
 * also clears it as current. */
GUST_EXTERN gust_loop *gust_loop_current(void);

/* Makes loop the calling thread's current loop (NULL: none). Does not take
 * ownership. */
GUST_EXTERN void gust_loop_make_current(gust_loop *loop);

/* The process-wide loop (Tornado's IOLoop.instance()): created on first
 * call, and made current for the calling thread if that thread had no current
 * loop. Every thread gets the same loop, but only one may run it. */
GUST_EXTERN gust_loop *gust_loop_instance(void);

/* The name of the loop's backend: "epoll", "kqueue" or "poll". Before the
 * backend has started, the one it would start now. */
GUST_EXTERN const char *gust_loop_backend(const gust_loop *loop);

/* ---- Running ----------------------------------------------------------- */

/* Runs iterations until gust_loop_stop() is called. Returns 0 when stopped,
 * or a negative code if the backend fails (e.g. GUST_EFORKED). The loop may
 * be started again afterwards. */
GUST_EXTERN int gust_loop_start(gust_loop *loop);

/* Makes gust_loop_start() (or run_until) return after the current
 * iteration. Safe to call from any callback; a stop requested while the loop
 * is not running makes the next start() return after one iteration. */
GUST_EXTERN void gust_loop_stop(gust_loop *loop);

/* Same as gust_loop_stop(), callable from any thread. */
GUST_EXTERN void gust_loop_stop_threadsafe(gust_loop *loop);

/* Runs one iteration (see the order above). timeout: the longest the wait
 * may block, in seconds; < 0 means no limit beyond the next timer, 0 means
 * do not block. Returns 0, or a negative code on backend failure.
 * Calling it (or start/run_until) from inside an iteration of the same loop
 * is a programming error (assert). */
GUST_EXTERN int gust_loop_run_once(gust_loop *loop, double timeout);

/* A condition for gust_loop_run_until(). */
typedef bool (*gust_loop_cond_fn)(gust_loop *loop, void *data);

/* Runs iterations until cond(loop, data) returns true (checked before the
 * first iteration and after each), gust_loop_stop() is called, or timeout
 * seconds pass (timeout <= 0: no limit). cond is also checked before each
 * wait for I/O, and the wait does not block if it is true, so a condition
 * made true by a callback ends the run at once. cond may be NULL (run until
 * stopped or timed out). Returns 0 if cond became true, GUST_ETIMEOUT on
 * timeout, GUST_ECANCELED if stopped, or a backend error.
 * (future.h adds a form that waits for a future.) */
GUST_EXTERN int gust_loop_run_until(gust_loop *loop, gust_loop_cond_fn cond,
                                    void *data, double timeout);

/* True while gust_loop_start()/run_until() is running this loop. */
GUST_EXTERN bool gust_loop_running(const gust_loop *loop);

/* ---- Time -------------------------------------------------------------- */

/* The loop's time in seconds on a monotonic clock, cached at the start of
 * each phase (cheap; no syscall). Deadlines passed to gust_loop_call_at()
 * use this clock. */
GUST_EXTERN double gust_loop_time(const gust_loop *loop);

/* Refreshes the cached time from the clock and returns it. */
GUST_EXTERN double gust_loop_update_time(gust_loop *loop);

/* The cached time in nanoseconds, for code that wants integers. */
GUST_EXTERN uint64_t gust_loop_now_ns(const gust_loop *loop);

/* ---- File descriptors -------------------------------------------------- */

/* Called when fd is ready. events holds GUST_IO_READ / GUST_IO_WRITE /
 * GUST_IO_ERROR. The handler may add, update or remove any handler,
 * including its own, and may close fd after removing it. */
typedef void (*gust_fd_cb)(gust_loop *loop, int fd, unsigned events,
                           void *data);

/* Starts watching fd for events (GUST_IO_READ and/or GUST_IO_WRITE;
 * GUST_IO_ERROR is implied). One handler per fd. The loop never closes fd.
 * Returns 0; -EEXIST if fd already has a handler; -EBADF/-EINVAL for a bad
 * fd or mask; GUST_EFORKED; or a backend errno. */
GUST_EXTERN int gust_loop_add_handler(gust_loop *loop, int fd, unsigned events,
                                      gust_fd_cb cb, void *data);

/* Changes the events watched for fd. No syscall is made when the mask does
 * not change. Returns 0, -ENOENT if fd has no handler, -EINVAL for a bad
 * mask, GUST_EFORKED, or a backend errno. */
GUST_EXTERN int gust_loop_update_handler(gust_loop *loop, int fd,
                                         unsigned events);

/* Stops watching fd. A ready event for fd already collected in the current
 * iteration is dropped. Returns 0, -ENOENT if fd has no handler, or
 * GUST_EFORKED (in a forked child: the parent's epoll set is left alone).
 * Call it before closing fd. */
GUST_EXTERN int gust_loop_remove_handler(gust_loop *loop, int fd);

/* ---- Callbacks --------------------------------------------------------- */

typedef void (*gust_callback_fn)(gust_loop *loop, void *data);

/* Queues cb(loop, data) to run in the next iteration's callback phase,
 * after those already queued (FIFO). Never runs cb inside this call.
 * Returns 0 or -ENOMEM. Loop thread only. */
GUST_EXTERN int gust_loop_add_callback(gust_loop *loop, gust_callback_fn cb,
                                       void *data);

/* Same, from any thread: the callback is queued under a lock and the loop is
 * woken (eventfd, or a pipe where there is none). Callbacks posted by one
 * thread run in the order it posted them. Returns 0 or -ENOMEM. */
GUST_EXTERN int gust_loop_add_callback_threadsafe(gust_loop *loop,
                                                  gust_callback_fn cb,
                                                  void *data);

/* ---- Timers ------------------------------------------------------------ */

/* A timer embedded in the caller's own struct: no allocation, stoppable at
 * any time, so it is what long-lived objects (connections, streams) use.
 * Treat the fields as private. */
typedef struct gust_timer gust_timer;
typedef void (*gust_timer_fn)(gust_timer *timer, void *data);

struct gust_timer {
    gust_loop *loop;
    uint64_t deadline_ns;   /* when it fires, on the loop's clock */
    uint64_t repeat_ns;     /* 0: one-shot; else the period */
    uint64_t seq;           /* orders timers with equal deadlines */
    size_t heap_index;      /* SIZE_MAX when not scheduled */
    gust_timer_fn cb;
    void *data;
};

/* Prepares a timer on loop. Must be called before the other gust_timer_*
 * functions. Does not allocate; there is nothing to free. */
GUST_EXTERN void gust_timer_init(gust_loop *loop, gust_timer *timer);

/* Schedules cb(timer, data) after delay seconds (<= 0: in the next timer
 * phase), then every repeat seconds if repeat > 0. Restarting an active timer
 * reschedules it. The timer memory must stay valid until it is stopped or
 * (one-shot) has fired. Returns 0 or -ENOMEM.
 * The delay counts from the loop's cached time when called inside an
 * iteration, and from a fresh clock reading (which also refreshes the cache)
 * when called outside one. A repeating timer that runs late skips the
 * periods it missed (its next deadline stays on the repeat grid). */
GUST_EXTERN int gust_timer_start(gust_timer *timer, double delay, double repeat,
                                 gust_timer_fn cb, void *data);

/* Same, with an absolute deadline on the loop clock (gust_loop_time()). */
GUST_EXTERN int gust_timer_start_at(gust_timer *timer, double deadline,
                                    double repeat, gust_timer_fn cb,
                                    void *data);

/* Unschedules the timer; a no-op if it is not active. Safe inside its own
 * callback (it stops a repeating timer). */
GUST_EXTERN void gust_timer_stop(gust_timer *timer);

/* True if the timer is scheduled. A one-shot timer is no longer active when
 * its callback runs. */
GUST_EXTERN bool gust_timer_active(const gust_timer *timer);

/* Tornado-style timeouts: the loop allocates and owns the timer. The handle
 * is a number, not a pointer, so removing a timeout that has already fired
 * or been removed is a harmless no-op. 0 is never a valid handle. */
typedef uint64_t gust_timeout;

/* Runs cb(loop, data) once, delay seconds from now (counted as for
 * gust_timer_start()). Returns a handle, or 0 if out of memory. */
GUST_EXTERN gust_timeout gust_loop_call_later(gust_loop *loop, double delay,
                                              gust_callback_fn cb, void *data);

/* Runs cb(loop, data) once, at deadline on the loop clock. */
GUST_EXTERN gust_timeout gust_loop_call_at(gust_loop *loop, double deadline,
                                           gust_callback_fn cb, void *data);

/* Cancels a timeout. Returns true if it was pending and is now cancelled,
 * false if it had already run, been removed, or was never valid. */
GUST_EXTERN bool gust_loop_remove_timeout(gust_loop *loop,
                                          gust_timeout timeout);

/* Tornado's PeriodicCallback: calls cb every interval seconds while started.
 * If a call runs late, skipped periods are not made up (the next deadline
 * is the next multiple of interval after now). */
typedef struct gust_periodic gust_periodic;

/* Creates a stopped periodic callback. interval must be > 0.
 * Returns NULL with errno set (EINVAL, ENOMEM). Free with
 * gust_periodic_free(). */
GUST_EXTERN gust_periodic *gust_periodic_new(gust_loop *loop, double interval,
                                             gust_callback_fn cb, void *data);
/* Starts it: the first call comes interval seconds from now. A no-op if it
 * is running. */
GUST_EXTERN void gust_periodic_start(gust_periodic *p);
/* Stops it; safe from inside its callback. A no-op if it is stopped. */
GUST_EXTERN void gust_periodic_stop(gust_periodic *p);
/* True between start and stop. */
GUST_EXTERN bool gust_periodic_running(const gust_periodic *p);
/* Stops and frees; safe from inside its own callback. NULL is a no-op. */
GUST_EXTERN void gust_periodic_free(gust_periodic *p);

/* ---- Signals ----------------------------------------------------------- */

typedef void (*gust_signal_fn)(gust_loop *loop, int signum, void *data);

/* Runs cb(loop, signum, data) on the loop each time signum is delivered
 * (coalesced: several deliveries between two iterations give one call).
 * The process-wide disposition of signum is taken over until the watcher is
 * removed, when it is restored. One loop per signal in the process.
 * Starts the loop's backend (see FORK SAFETY).
 * Returns 0, -EINVAL (bad signal, or SIGKILL/SIGSTOP), -EBUSY (a loop,
 * this one included, already watches it), GUST_EFORKED, or an errno. */
GUST_EXTERN int gust_loop_add_signal(gust_loop *loop, int signum,
                                     gust_signal_fn cb, void *data);

/* Stops watching signum and restores its previous disposition.
 * Returns 0 or -ENOENT. */
GUST_EXTERN int gust_loop_remove_signal(gust_loop *loop, int signum);

/* ---- Executor (blocking work off the loop) ----------------------------- */

typedef void (*gust_work_fn)(void *data);
/* status: 0 after work ran. */
typedef void (*gust_work_done_fn)(gust_loop *loop, int status, void *data);

/* Runs work(data) on a thread of the loop's pool, then done(loop, 0, data)
 * on the loop, in the callback phase (done may be NULL). The pool starts on first use with gust_loop_set_executor_threads()
 * threads (default: number of CPUs, at least 2, at most 16). Work items start
 * in FIFO order. The loop cannot be freed while work is in flight.
 * Returns 0 or -ENOMEM / -EAGAIN (no thread could be started). */
GUST_EXTERN int gust_loop_run_in_executor(gust_loop *loop, gust_work_fn work,
                                          gust_work_done_fn done, void *data);

/* Sets the pool size used when the pool starts. Returns 0, -EINVAL for
 * n < 1, -EBUSY if the pool has already started. */
GUST_EXTERN int gust_loop_set_executor_threads(gust_loop *loop, int n);

#ifdef __cplusplus
}
#endif

#endif /* GUST_LOOP_H */
