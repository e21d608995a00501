/* Queues for coroutines (queue.h): FIFO, LIFO and priority order over one
 * array of entries, with waiting getters and putters in two waiter queues
 * (waitq_internal.h) and join built on a gust_event.
 *
 * Invariants, as in Tornado: getters wait only while the queue is empty,
 * putters only while it is full. So an item put while getters wait goes
 * straight to a getter, and a get from a full queue lets the first putter
 * in.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "gust/locks.h"
#include "gust/queue.h"
#include "waitq_internal.h"

enum queue_kind { QUEUE_FIFO, QUEUE_LIFO, QUEUE_PRIORITY };

typedef struct entry {
    gust_value v;
    uint64_t seq; /* priority ties come out in put order */
} entry;

struct gust_queue {
    gust_loop *loop;
    enum queue_kind kind;
    size_t maxsize;
    /* FIFO: a ring of count entries from head; LIFO: a stack in
     * [0, count); PRIORITY: a binary min-heap in [0, count). */
    entry *items;
    size_t cap, head, count;
    uint64_t seq;
    gust_queue_cmp_fn cmp;
    void *cmp_data;
    gust__waitq getters, putters;
    size_t unfinished;
    gust_event *finished; /* set while unfinished == 0 */
};

int gust_queue_cmp_int(const void *a, const void *b, void *data)
{
    (void)data;
    /* No subtraction: it overflows for far-apart values. */
    intptr_t x = (intptr_t)a, y = (intptr_t)b;
    return (x > y) - (x < y);
}

static gust_queue *queue_new(gust_loop *loop, size_t maxsize,
                             enum queue_kind kind, gust_queue_cmp_fn cmp,
                             void *cmp_data)
{
    assert(loop);
    /* Storage is allocated on the first put: an idle queue costs a struct
     * and an event. */
    gust_queue *q = calloc(1, sizeof *q);
    if (!q || !(q->finished = gust_event_new(loop))) {
        free(q);
        errno = ENOMEM;
        return NULL;
    }
    q->loop = loop;
    q->kind = kind;
    q->maxsize = maxsize;
    q->cmp = cmp;
    q->cmp_data = cmp_data;
    gust_event_set(q->finished); /* nothing unfinished yet: join returns */
    return q;
}

gust_queue *gust_queue_new(gust_loop *loop, size_t maxsize)
{
    return queue_new(loop, maxsize, QUEUE_FIFO, NULL, NULL);
}

gust_queue *gust_lifo_queue_new(gust_loop *loop, size_t maxsize)
{
    return queue_new(loop, maxsize, QUEUE_LIFO, NULL, NULL);
}

gust_queue *gust_priority_queue_new(gust_loop *loop, size_t maxsize,
                                    gust_queue_cmp_fn cmp, void *cmp_data)
{
    assert(cmp && "a PriorityQueue needs a comparison");
    return queue_new(loop, maxsize, QUEUE_PRIORITY, cmp, cmp_data);
}

void gust_queue_free(gust_queue *q)
{
    if (!q)
        return;
    /* Waiters first: their futures must not outlive the queue pending. */
    gust__waitq_fail_all(&q->getters, GUST_ECANCELED);
    gust__waitq_fail_all(&q->putters, GUST_ECANCELED);
    /* Only a FIFO's entries start at head; the others at 0. */
    size_t start = q->kind == QUEUE_FIFO ? q->head : 0;
    for (size_t i = 0; i < q->count; i++)
        gust_value_free(&q->items[(start + i) % q->cap].v);
    free(q->items);
    gust_event_free(q->finished);
    free(q);
}

/* ---- Storage ----------------------------------------------------------- */

/* The heap's order: cmp, then put order, which makes the heap stable (a
 * plain binary heap is not). */
static bool before(const gust_queue *q, const entry *a, const entry *b)
{
    int c = q->cmp(a->v.ptr, b->v.ptr, q->cmp_data);
    return c < 0 || (c == 0 && a->seq < b->seq);
}

static void sift_up(gust_queue *q, size_t i)
{
    entry e = q->items[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(q, &e, &q->items[parent]))
            break;
        q->items[i] = q->items[parent];
        i = parent;
    }
    q->items[i] = e;
}

static void sift_down(gust_queue *q, size_t i)
{
    entry e = q->items[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= q->count)
            break;
        if (child + 1 < q->count &&
            before(q, &q->items[child + 1], &q->items[child]))
            child++;
        if (!before(q, &q->items[child], &e))
            break;
        q->items[i] = q->items[child];
        i = child;
    }
    q->items[i] = e;
}

/* Room for one more entry; the ring is unrolled to start at 0. */
static int reserve(gust_queue *q)
{
    if (q->count < q->cap)
        return 0;
    size_t cap = q->cap ? q->cap * 2 : 8;
    /* A bounded queue never needs more than maxsize slots: a get from a
     * full queue swaps a waiting put in (store_and_take) without growing. */
    if (q->maxsize && cap > q->maxsize)
        cap = q->maxsize > q->count ? q->maxsize : q->count + 1;
    entry *items = malloc(cap * sizeof *items);
    if (!items)
        return -ENOMEM;
    for (size_t i = 0; i < q->count; i++)
        items[i] = q->items[(q->head + i) % q->cap];
    free(q->items);
    q->items = items;
    q->cap = cap;
    q->head = 0;
    return 0;
}

/* Counts an item in (Tornado's __put_internal): join waits for it. */
static void count_in(gust_queue *q)
{
    q->unfinished++;
    gust_event_clear(q->finished);
}

static int store(gust_queue *q, gust_value v)
{
    if (reserve(q) < 0)
        return -ENOMEM;
    entry e = {v, q->seq++};
    if (q->kind == QUEUE_FIFO) {
        q->items[(q->head + q->count) % q->cap] = e;
        q->count++;
    } else {
        q->items[q->count++] = e;
        if (q->kind == QUEUE_PRIORITY)
            sift_up(q, q->count - 1);
    }
    count_in(q);
    return 0;
}

static gust_value take(gust_queue *q)
{
    assert(q->count > 0);
    gust_value v;
    if (q->kind == QUEUE_FIFO) {
        v = q->items[q->head].v;
        q->head = (q->head + 1) % q->cap;
        q->count--;
    } else if (q->kind == QUEUE_LIFO) {
        v = q->items[--q->count].v;
    } else {
        v = q->items[0].v;
        if (--q->count > 0) {
            q->items[0] = q->items[q->count];
            sift_down(q, 0);
        }
    }
    return v;
}

/* Stores v then takes the next item, without needing room for one more:
 * what a get from a full queue does with the first waiting put. */
static gust_value store_and_take(gust_queue *q, gust_value v)
{
    count_in(q);
    entry e = {v, q->seq++};
    if (q->count == 0 || q->kind == QUEUE_LIFO)
        return v;
    if (q->kind == QUEUE_FIFO) {
        gust_value out = q->items[q->head].v;
        q->head = (q->head + 1) % q->cap;
        q->items[(q->head + q->count - 1) % q->cap] = e;
        return out;
    }
    /* The new item would come out first: it never goes in at all. */
    if (before(q, &e, &q->items[0]))
        return v;
    gust_value out = q->items[0].v;
    q->items[0] = e;
    sift_down(q, 0);
    return out;
}

/* ---- Put and get ------------------------------------------------------- */

int gust_queue_put_nowait(gust_queue *q, gust_value item)
{
    assert(q);
    /* Abandoned getters are skipped here: the item would die with their
     * future. */
    gust_future *getter = gust__waitq_pop(&q->getters, true, NULL);
    if (getter) {
        assert(q->count == 0 && "getters wait only on an empty queue");
        count_in(q);
        gust_future_set_result(getter, item);
        gust_future_unref(getter);
        return 0;
    }
    if (gust_queue_full(q))
        return -EAGAIN;
    return store(q, item);
}

gust_future *gust_queue_put(gust_queue *q, gust_value item, double timeout)
{
    assert(q);
    /* Allocated first: once put_nowait took the item, the call must not
     * fail. */
    gust_future *f = gust_future_new(q->loop);
    if (!f) {
        gust_value_free(&item);
        return NULL;
    }
    int r = gust_queue_put_nowait(q, item);
    if (r == 0) {
        gust_future_set_result(f, GUST_VALUE_NONE);
        return f;
    }
    gust_future_unref(f);
    if (r != -EAGAIN) {
        gust_value_free(&item);
        errno = -r;
        return NULL;
    }
    return gust__waitq_add(q->loop, &q->putters, timeout, item);
}

int gust_queue_get_nowait(gust_queue *q, gust_value *out)
{
    assert(q && out);
    gust_value item;
    /* Abandoned putters are not skipped: their items still go in. */
    gust_future *putter = gust__waitq_pop(&q->putters, false, &item);
    if (putter) {
        assert(gust_queue_full(q) && "putters wait only on a full queue");
        *out = store_and_take(q, item);
        gust_future_set_result(putter, GUST_VALUE_NONE);
        gust_future_unref(putter);
        return 0;
    }
    if (q->count == 0) {
        *out = GUST_VALUE_NONE;
        return -EAGAIN;
    }
    *out = take(q);
    return 0;
}

gust_future *gust_queue_get(gust_queue *q, double timeout)
{
    assert(q);
    /* A get succeeds at once iff there is an item or a waiting put (which
     * are never skipped). */
    if (q->count == 0 && !q->putters.head)
        return gust__waitq_add(q->loop, &q->getters, timeout,
                               GUST_VALUE_NONE);
    /* Allocated first, so that an item once taken always has a home. */
    gust_future *f = gust_future_new(q->loop);
    if (!f)
        return NULL;
    gust_value item;
    int r = gust_queue_get_nowait(q, &item);
    assert(r == 0);
    (void)r;
    gust_future_set_result(f, item);
    return f;
}

/* ---- Tasks ------------------------------------------------------------- */

int gust_queue_task_done(gust_queue *q)
{
    assert(q);
    if (q->unfinished == 0)
        return -EINVAL;
    if (--q->unfinished == 0)
        gust_event_set(q->finished); /* wakes every join */
    return 0;
}

gust_future *gust_queue_join(gust_queue *q, double timeout)
{
    assert(q);
    return gust_event_wait(q->finished, timeout);
}

/* ---- State ------------------------------------------------------------- */

size_t gust_queue_qsize(const gust_queue *q)
{
    return q->count;
}

bool gust_queue_empty(const gust_queue *q)
{
    return q->count == 0;
}

bool gust_queue_full(const gust_queue *q)
{
    return q->maxsize > 0 && q->count >= q->maxsize;
}

size_t gust_queue_maxsize(const gust_queue *q)
{
    return q->maxsize;
}

size_t gust_queue_unfinished(const gust_queue *q)
{
    return q->unfinished;
}
