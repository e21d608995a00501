/* Internal to locks.c and queue.c (implemented in waitq.c): a FIFO of
 * waiters, each one a pending future with an optional timeout and an
 * optional item (a queue's put). Not installed.
 *
 * A waiter lives inside its future (gust__future_alloc's extra bytes), so
 * waiting costs one allocation. While queued, the queue holds one reference
 * to the future; the waiter leaves the queue exactly once, by one of:
 *   - gust__waitq_pop(): the owner completes it (and drops that reference);
 *   - its timeout: it fails with GUST_ETIMEOUT;
 *   - gust_future_cancel() on it: it is unlinked at once;
 *   - gust__waitq_fail_all(): the owner is being freed.
 * Whichever way it leaves without being popped, its item is freed.
 */
#ifndef GUST_WAITQ_INTERNAL_H
#define GUST_WAITQ_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "gust/future.h"
#include "gust/loop.h"

typedef struct gust__waiter gust__waiter;

typedef struct gust__waitq {
    gust__waiter *head, *tail;
    size_t len; /* waiters queued, abandoned ones included */
} gust__waitq;

struct gust__waiter {
    gust__waiter *prev, *next;
    gust__waitq *q; /* NULL once it has left */
    gust_future *f;
    gust_timer timer;
    gust_value item;
};

/* Queues a new pending future at the tail of q and returns it (the caller
 * gets one reference; q holds another). timeout > 0: it fails with
 * GUST_ETIMEOUT after that many seconds; otherwise it waits without limit.
 * item is owned by the waiter from this call on (freed on failure too).
 * Returns NULL if out of memory (errno set). */
gust_future *gust__waitq_add(gust_loop *loop, gust__waitq *q, double timeout,
                             gust_value item);

/* Takes the first waiter out of q and returns its future, with q's reference
 * (the caller completes it, then unrefs it); its item goes to *item (may be
 * NULL when there is none). With skip_abandoned, waiters nobody can observe
 * any more (no reference and no done-callback besides q's: e.g. the
 * coroutine awaiting it was cancelled) are dropped on the way, as cancelled
 * ones are. Returns NULL when no waiter is left. */
gust_future *gust__waitq_pop(gust__waitq *q, bool skip_abandoned,
                             gust_value *item);

/* Empties q: every waiter fails with error and its item is freed. */
void gust__waitq_fail_all(gust__waitq *q, int error);

#endif /* GUST_WAITQ_INTERNAL_H */
