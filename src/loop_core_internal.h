/* Private to the loop's own files (loop.c, loop_timer.c, loop_signal.c,
 * loop_executor.c, loop_batch.c): the layout of struct gust_loop and the
 * calls those files make into each other. Other modules use
 * loop_internal.h only.
 */
#ifndef GUST_LOOP_CORE_INTERNAL_H
#define GUST_LOOP_CORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "loop_internal.h"

/* One queued callback. */
typedef struct gust__cb {
    gust_callback_fn cb;
    void *data;
} gust__cb;

/* One entry of the fd table, indexed by fd. gen changes on every
 * registration so events collected for an earlier registration are dropped. */
typedef struct gust__fd_slot {
    gust_fd_cb cb;
    void *data;
    uint32_t gen;
    uint8_t events;   /* GUST_READ | GUST_WRITE as last given to the backend */
    uint8_t used;
    uint8_t internal; /* the wake-up fd: not counted as a user handler */
    uint8_t io;       /* batched reads through loop->io_ops (loop_batch.c) */
} gust__fd_slot;

/* loop_batch.c: the io_uring batches, NULL when not available. */
typedef struct gust__batch gust__batch;
void gust__batch_start(gust_loop *loop);
void gust__batch_free(gust_loop *loop);
/* Reads the readable fds among ready[0, n) that have io ops, in one call. */
void gust__batch_reads(gust_loop *loop, int n);
/* After dispatch: read_finish for what gust__batch_reads read. */
void gust__batch_reads_done(gust_loop *loop);

typedef struct gust__heap_entry {
    uint64_t deadline_ns;
    uint64_t seq;
    gust_timer *timer;
} gust__heap_entry;

/* A call_later/call_at timeout: pooled, found again by slot index, and
 * checked by generation so a stale handle is a no-op. */
typedef struct gust__timeout_node {
    gust_timer timer;
    gust_callback_fn cb;
    void *data;
    uint32_t gen;       /* bumped each time the node is released */
    uint32_t next_free; /* index + 1 of the next free node, 0: none */
} gust__timeout_node;

#define GUST__TIMEOUT_CHUNK 256u

/* An executor work item; also the node of the completion list. */
typedef struct gust__work {
    gust_work_fn work;
    gust_work_done_fn done;
    void *data;
    gust_loop *loop;
    struct gust__work *next;
} gust__work;

typedef struct gust__executor gust__executor;

struct gust_loop {
    uint64_t now_ns;
    atomic_bool stopping;
    bool running;       /* inside start()/run_until() */
    bool in_iteration;  /* inside run_once(): no nesting */
    bool in_timer_phase;
    uint64_t timer_phase_now;
    gust_timer *firing;  /* repeating timer whose callback is running */
    gust_loop_cond_fn until_cond; /* run_until()'s condition, while it runs */
    void *until_data;

    /* Backend, created lazily (see loop.h, FORK SAFETY). */
    const gust__backend *backend;
    void *backend_state;
    bool backend_started;
    pid_t backend_pid;
    unsigned backend_fork_gen;
    gust__ready *ready;
    int ready_max;
    int wake_rfd;          /* read end (same fd as wake_wfd for eventfd) */
    atomic_int wake_wfd;   /* -1 until the backend starts */

    gust__batch *batch;    /* io_uring batches (loop_batch.c), or NULL */
    /* The read hooks of the fds whose slot has io set: one set for all
     * (streams'), so a slot spends a byte on it, not a pointer. */
    const gust__io_ops *io_ops;
    bool batching;         /* inside an iteration with a batch: defer sends */

    /* fd table */
    gust__fd_slot *fds;
    int fds_cap;
    size_t n_handlers;     /* user handlers, the wake fd excluded */
    uint32_t fd_gen;

    /* Loop-thread callback queue: a ring, capacity a power of two. */
    gust__cb *cbs;
    size_t cb_head, cb_len, cb_cap;

    /* Threadsafe queue: posters append to ts under ts_lock; the callback
     * phase swaps it with ts_spare and runs the batch outside the lock. */
    pthread_mutex_t ts_lock;
    gust__cb *ts, *ts_spare;
    size_t ts_len, ts_cap, ts_spare_cap;
    gust__work *done_head, *done_tail;
    atomic_bool wake_pending; /* something posted since the last batch */

    /* Timers: binary min-heap on (deadline_ns, seq). The key is copied
     * into the entry so comparisons never touch the timers themselves. */
    gust__heap_entry *heap;
    size_t heap_len, heap_cap;
    uint64_t timer_seq;

    /* Timeout pool, in fixed chunks so node addresses never move. */
    gust__timeout_node **tchunks;
    size_t tchunks_len, tchunks_cap;
    uint32_t tfree;        /* index + 1 of the first free node, 0: none */

    /* Signals this loop watches: bit signum - 1. */
    uint64_t sig_mask;

    /* Executor */
    gust__executor *exec;
    int exec_threads;
    size_t exec_inflight;
};

/* loop.c */
int gust__loop_ensure_backend(gust_loop *loop);
void gust__loop_wake(gust_loop *loop);
uint64_t gust__loop_clock_ns(void);
/* From any thread: queues an executor completion for the callback phase. */
void gust__loop_post_done(gust_loop *loop, gust__work *w);

/* loop_timer.c */
void gust__timer_run_due(gust_loop *loop);
void gust__timeouts_free(gust_loop *loop);
/* Deadline of the earliest timer, or UINT64_MAX when there is none. */
uint64_t gust__timer_next_deadline(const gust_loop *loop);

/* loop_signal.c: runs the callbacks of this loop's delivered signals. */
void gust__signal_dispatch(gust_loop *loop);

/* loop_executor.c */
void gust__executor_run_done(gust_loop *loop, gust__work *list);
void gust__executor_free(gust_loop *loop);

#endif /* GUST_LOOP_CORE_INTERNAL_H */
