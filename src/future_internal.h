/* Calls into futures for the code that completes them (producers:
 * http_client.c, locks.c, and waitq.c for locks.c and queue.c), and the
 * private layout shared by the future layer's own files (future.c, coro.c,
 * coro_switch.c), which define GUST__FUTURE_PRIVATE; and the context
 * switch coro.c runs coroutines on (coro_switch.c; also timed alone by
 * bench/bench_coro.c). Not installed.
 *
 * A producer makes its future (gust_future_new(), or gust__future_alloc()
 * for one block with its own state), completes it with the public
 * gust_future_set_result() / gust_future_set_error(), and may hook its
 * cancellation; it never touches the struct.
 */
#ifndef GUST_FUTURE_INTERNAL_H
#define GUST_FUTURE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gust/future.h"

/* ---- For producers ----------------------------------------------------- */

/* Called once when a pending future is cancelled, after it has completed
 * with GUST_ECANCELED: the producer stops its work and drops what it
 * holds. It may drop the producer's reference to f. */
typedef void (*gust__cancel_fn)(gust_future *f);

/* A pending future (one reference, the caller's) with extra bytes for its
 * producer, at gust__future_impl(f) (max-aligned), freed with the future.
 * NULL if out of memory. */
gust_future *gust__future_alloc(gust_loop *loop, size_t extra);

/* A future already completed with value (for an operation that did not
 * have to wait). NULL if out of memory (value freed, errno set). */
gust_future *gust__future_resolved(gust_loop *loop, gust_value value);

/* The producer's state: the extra bytes of gust__future_alloc(), or what
 * gust__future_set_impl() stored; NULL for neither. */
void *gust__future_impl(const gust_future *f);
void gust__future_set_impl(gust_future *f, void *impl);

/* Sets (NULL: clears) the hook gust_future_cancel() calls on a pending f.
 * Clear it once the producer has finished with f, so that a cancel after
 * that reaches nothing the producer has freed. */
void gust__future_set_cancel(gust_future *f, gust__cancel_fn fn);

/* Completes f with error (< 0) and keeps value as the future's, freed with
 * it and readable through gust__future_error_value() (the HTTP client's
 * response to a failed fetch). Returns what gust_future_set_error()
 * returns; on failure value is freed. */
int gust__future_fail_with(gust_future *f, int error, gust_value value);

/* The value kept by gust__future_fail_with() on a failed, not cancelled
 * f; NULL otherwise. Does not count as retrieving the error. */
void *gust__future_error_value(const gust_future *f);

/* True if nobody but the caller can observe pending f any more: the
 * caller's is its only reference and no done-callback is waiting (e.g. the
 * coroutine that awaited it was cancelled). */
bool gust__future_unobserved(const gust_future *f);

/* ---- Private to the future layer's own files --------------------------- */

#ifdef GUST__FUTURE_PRIVATE

#if defined(__SANITIZE_ADDRESS__)
#define GUST__ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GUST__ASAN 1
#endif
#endif

/* ---- Done-callback nodes ----------------------------------------------- */

typedef struct gust__fnode gust__fnode;
typedef struct gust__flist {
    gust__fnode *head, *tail;
} gust__flist;

/* One done-callback. Doubly linked so that a coroutine whose wait is
 * cancelled can leave the list in O(1). Nodes made by
 * gust_future_add_done_callback() are malloc'ed (heap = true) and freed
 * after running; a coroutine embeds its own node, so await never
 * allocates. */
struct gust__fnode {
    gust__fnode *prev, *next;
    gust__flist *list; /* the list it is on, NULL when on none */
    gust_future_cb cb;
    void *data;
    bool heap;
};

struct gust_future {
    gust_loop *loop;
    uint32_t refs;
    bool done;
    bool cancelled;
    bool retrieved;  /* someone read the status (see "ERRORS" in future.h) */
    bool scheduled;  /* a run of the callbacks is queued on the loop */
    int status;
    gust_value value;
    gust__flist cbs;   /* waiting for the next run */
    gust__flist batch; /* being run now */
    gust__cancel_fn cancel;
    void *impl;        /* the producer's state */
};

/* Appends a caller-owned node (cb and data set) to f's callbacks; scheduled
 * like gust_future_add_done_callback(), but cannot fail. */
void gust__future_add_node(gust_future *f, gust__fnode *node);

/* Removes a node from the list it is on; a no-op if it is on none. */
void gust__fnode_unlink(gust__fnode *node);

#endif /* GUST__FUTURE_PRIVATE */

/* ---- Context switch (coro_switch.c) ------------------------------------ */

#if !defined(GUST_CORO_UCONTEXT) && (defined(__x86_64__) || defined(__aarch64__))
#define GUST__CTX_ASM 1
/* All that is saved is the stack pointer: the callee-saved registers are
 * pushed on the stack being left. */
typedef struct gust__ctx {
    void *sp;
} gust__ctx;
#else
#include <ucontext.h>
typedef struct gust__ctx {
    ucontext_t uc;
} gust__ctx;
#endif

/* Prepares ctx to run entry(arg) on the stack [lo, lo + size) at its first
 * switch. entry must never return (it switches away for the last time). */
void gust__ctx_make(gust__ctx *ctx, void *lo, size_t size,
                    void (*entry)(void *), void *arg);

/* Saves the running context in from and resumes to. Returns when something
 * switches back to from. */
void gust__ctx_switch(gust__ctx *from, gust__ctx *to);

/* "x86_64", "aarch64" or "ucontext". */
const char *gust__ctx_impl(void);

#endif /* GUST_FUTURE_INTERNAL_H */
