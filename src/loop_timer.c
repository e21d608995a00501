/* Timers: a binary min-heap of (deadline, seq, timer) entries, each timer
 * knowing its own index so stop and restart are O(log n)
 * with no search and no allocation. call_later timeouts are timers in
 * pooled nodes; periodic callbacks are timers that re-arm themselves.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gust/loop.h"
#include "loop_core_internal.h"

/* ---- Heap -------------------------------------------------------------- */

static bool entry_less(const gust__heap_entry *a, const gust__heap_entry *b)
{
    return a->deadline_ns < b->deadline_ns ||
           (a->deadline_ns == b->deadline_ns && a->seq < b->seq);
}

static void heap_put(gust_loop *loop, size_t i, gust__heap_entry e)
{
    loop->heap[i] = e;
    e.timer->heap_index = i;
}

static void sift_up(gust_loop *loop, size_t i)
{
    gust__heap_entry e = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!entry_less(&e, &loop->heap[parent]))
            break;
        heap_put(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_put(loop, i, e);
}

static void sift_down(gust_loop *loop, size_t i)
{
    gust__heap_entry e = loop->heap[i];
    size_t n = loop->heap_len;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && entry_less(&loop->heap[c + 1], &loop->heap[c]))
            c++;
        if (!entry_less(&loop->heap[c], &e))
            break;
        heap_put(loop, i, loop->heap[c]);
        i = c;
    }
    heap_put(loop, i, e);
}

/* Puts entry i back in order after its key changed, either way. */
static void heap_fix(gust_loop *loop, size_t i)
{
    if (i > 0 && entry_less(&loop->heap[i], &loop->heap[(i - 1) / 2]))
        sift_up(loop, i);
    else
        sift_down(loop, i);
}

static void heap_remove(gust_loop *loop, gust_timer *t)
{
    size_t i = t->heap_index;
    gust__heap_entry last = loop->heap[--loop->heap_len];
    t->heap_index = SIZE_MAX;
    if (i == loop->heap_len)
        return;
    heap_put(loop, i, last);
    heap_fix(loop, i);
}

static int heap_reserve(gust_loop *loop)
{
    if (loop->heap_len < loop->heap_cap)
        return 0;
    size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
    gust__heap_entry *heap = realloc(loop->heap, cap * sizeof *heap);
    if (!heap)
        return -ENOMEM;
    loop->heap = heap;
    loop->heap_cap = cap;
    return 0;
}

uint64_t gust__timer_next_deadline(const gust_loop *loop)
{
    return loop->heap_len ? loop->heap[0].deadline_ns : UINT64_MAX;
}

/* ---- gust_timer -------------------------------------------------------- */

static uint64_t secs_to_ns(double s)
{
    if (!(s > 0)) /* also NaN */
        return 0;
    if (s >= 1e9) /* ~31 years: far enough, and no overflow when added */
        return (uint64_t)1e18;
    return (uint64_t)(s * 1e9);
}

static int schedule(gust_timer *timer, uint64_t deadline, uint64_t repeat,
                    gust_timer_fn cb, void *data)
{
    gust_loop *loop = timer->loop;
    assert(loop && "gust_timer_init() was not called");
    assert(cb);
    if (loop->firing == timer)
        loop->firing = NULL; /* restarted by its own callback: as it says */
    bool active = timer->heap_index != SIZE_MAX;
    if (!active && heap_reserve(loop) < 0)
        return -ENOMEM;
    /* Due already, but scheduled from inside the timer phase: it must wait
     * for the next iteration, so it may not compare as due in this one. */
    if (loop->in_timer_phase && deadline <= loop->timer_phase_now)
        deadline = loop->timer_phase_now + 1;
    timer->deadline_ns = deadline;
    timer->repeat_ns = repeat;
    timer->seq = loop->timer_seq++;
    timer->cb = cb;
    timer->data = data;
    gust__heap_entry e = {deadline, timer->seq, timer};
    if (active) {
        loop->heap[timer->heap_index] = e;
        heap_fix(loop, timer->heap_index);
    } else {
        heap_put(loop, loop->heap_len++, e);
        sift_up(loop, loop->heap_len - 1);
    }
    return 0;
}

void gust_timer_init(gust_loop *loop, gust_timer *timer)
{
    memset(timer, 0, sizeof *timer);
    timer->loop = loop;
    timer->heap_index = SIZE_MAX;
}

/* The base of a relative delay. Inside an iteration it is the cached time,
 * as loop.h promises; outside (set-up code, before the loop runs) the cache
 * may be arbitrarily old, so it is refreshed first. */
static uint64_t delay_base(gust_loop *loop)
{
    if (!loop->in_iteration)
        loop->now_ns = gust__loop_clock_ns();
    return loop->now_ns;
}

static uint64_t repeat_ns(double repeat)
{
    uint64_t ns = secs_to_ns(repeat);
    return ns == 0 && repeat > 0 ? 1 : ns;
}

int gust_timer_start(gust_timer *timer, double delay, double repeat,
                     gust_timer_fn cb, void *data)
{
    return schedule(timer, delay_base(timer->loop) + secs_to_ns(delay),
                    repeat_ns(repeat), cb, data);
}

int gust_timer_start_at(gust_timer *timer, double deadline, double repeat,
                        gust_timer_fn cb, void *data)
{
    return schedule(timer, secs_to_ns(deadline), repeat_ns(repeat), cb, data);
}

void gust_timer_stop(gust_timer *timer)
{
    if (timer->heap_index == SIZE_MAX)
        return;
    if (timer->loop->firing == timer)
        timer->loop->firing = NULL;
    heap_remove(timer->loop, timer);
}

bool gust_timer_active(const gust_timer *timer)
{
    return timer->heap_index != SIZE_MAX;
}

/* Phase 5. Each timer leaves (or, repeating, is re-armed in) the heap before
 * its callback runs, so the callback may stop, restart or free it. */
void gust__timer_run_due(gust_loop *loop)
{
    uint64_t now = loop->now_ns;
    loop->in_timer_phase = true;
    loop->timer_phase_now = now;
    while (loop->heap_len && loop->heap[0].deadline_ns <= now) {
        gust_timer *t = loop->heap[0].timer;
        if (!t->repeat_ns) {
            heap_remove(loop, t);
            t->cb(t, t->data);
            continue;
        }
        /* A repeating timer stays in the heap during its callback, so it
         * is active there, and is re-armed after it, from the time the
         * callback ended (a slow callback skips periods, as Tornado's
         * PeriodicCallback does). The timer may be stopped, restarted or
         * freed by its callback: stop and start clear loop->firing, and
         * then it is not touched again. */
        loop->firing = t;
        t->cb(t, t->data);
        if (loop->firing != t)
            continue;
        loop->firing = NULL;
        uint64_t end = gust__loop_clock_ns();
        uint64_t next = t->deadline_ns + t->repeat_ns;
        if (next <= end)
            next += ((end - next) / t->repeat_ns + 1) * t->repeat_ns;
        t->deadline_ns = next;
        t->seq = loop->timer_seq++;
        loop->heap[t->heap_index].deadline_ns = next;
        loop->heap[t->heap_index].seq = t->seq;
        heap_fix(loop, t->heap_index);
    }
    loop->firing = NULL;
    loop->in_timer_phase = false;
}

/* ---- Timeouts (call_later / call_at) ----------------------------------- */

/* A handle is (gen << 32) | (index + 1): never 0, and stale once the node's
 * gen has moved on. */
static gust__timeout_node *node_at(gust_loop *loop, uint32_t idx)
{
    return &loop->tchunks[idx / GUST__TIMEOUT_CHUNK][idx % GUST__TIMEOUT_CHUNK];
}

static gust__timeout_node *node_alloc(gust_loop *loop, uint32_t *idx_out)
{
    if (!loop->tfree) {
        if (loop->tchunks_len >= UINT32_MAX / GUST__TIMEOUT_CHUNK - 1)
            return NULL;
        if (loop->tchunks_len == loop->tchunks_cap) {
            size_t cap = loop->tchunks_cap ? loop->tchunks_cap * 2 : 8;
            gust__timeout_node **chunks =
                realloc(loop->tchunks, cap * sizeof *chunks);
            if (!chunks)
                return NULL;
            loop->tchunks = chunks;
            loop->tchunks_cap = cap;
        }
        gust__timeout_node *chunk =
            malloc(GUST__TIMEOUT_CHUNK * sizeof *chunk);
        if (!chunk)
            return NULL;
        uint32_t base = (uint32_t)(loop->tchunks_len * GUST__TIMEOUT_CHUNK);
        for (uint32_t i = 0; i < GUST__TIMEOUT_CHUNK; i++) {
            chunk[i].gen = 1;
            chunk[i].next_free =
                i + 1 < GUST__TIMEOUT_CHUNK ? base + i + 2 : 0;
        }
        loop->tchunks[loop->tchunks_len++] = chunk;
        loop->tfree = base + 1;
    }
    uint32_t idx = loop->tfree - 1;
    gust__timeout_node *node = node_at(loop, idx);
    loop->tfree = node->next_free;
    *idx_out = idx;
    return node;
}

static void node_release(gust_loop *loop, gust__timeout_node *node,
                         uint32_t idx)
{
    if (++node->gen == 0)
        node->gen = 1;
    node->next_free = loop->tfree;
    loop->tfree = idx + 1;
}

static void timeout_fire(gust_timer *timer, void *data)
{
    gust_loop *loop = timer->loop;
    uint32_t idx = (uint32_t)(uintptr_t)data;
    gust__timeout_node *node = (gust__timeout_node *)timer;
    gust_callback_fn cb = node->cb;
    void *cb_data = node->data;
    node_release(loop, node, idx);
    cb(loop, cb_data);
}

static gust_timeout timeout_add(gust_loop *loop, uint64_t deadline,
                                gust_callback_fn cb, void *data)
{
    assert(cb);
    uint32_t idx;
    gust__timeout_node *node = node_alloc(loop, &idx);
    if (!node)
        return 0;
    gust_timer_init(loop, &node->timer);
    node->cb = cb;
    node->data = data;
    if (schedule(&node->timer, deadline, 0, timeout_fire,
                 (void *)(uintptr_t)idx) < 0) {
        node_release(loop, node, idx);
        return 0;
    }
    return ((uint64_t)node->gen << 32) | (uint64_t)(idx + 1);
}

gust_timeout gust_loop_call_later(gust_loop *loop, double delay,
                                  gust_callback_fn cb, void *data)
{
    return timeout_add(loop, delay_base(loop) + secs_to_ns(delay), cb, data);
}

gust_timeout gust_loop_call_at(gust_loop *loop, double deadline,
                               gust_callback_fn cb, void *data)
{
    return timeout_add(loop, secs_to_ns(deadline), cb, data);
}

bool gust_loop_remove_timeout(gust_loop *loop, gust_timeout timeout)
{
    uint32_t low = (uint32_t)timeout;
    if (low == 0)
        return false;
    uint32_t idx = low - 1;
    if ((size_t)idx >= loop->tchunks_len * GUST__TIMEOUT_CHUNK)
        return false;
    gust__timeout_node *node = node_at(loop, idx);
    if (node->gen != (uint32_t)(timeout >> 32) ||
        node->timer.heap_index == SIZE_MAX)
        return false;
    heap_remove(loop, &node->timer);
    node_release(loop, node, idx);
    return true;
}

void gust__timeouts_free(gust_loop *loop)
{
    for (size_t i = 0; i < loop->tchunks_len; i++)
        free(loop->tchunks[i]);
    free(loop->tchunks);
    loop->tchunks = NULL;
    loop->tchunks_len = loop->tchunks_cap = 0;
    loop->tfree = 0;
}

/* ---- Periodic callbacks ------------------------------------------------ */

struct gust_periodic {
    gust_timer timer;
    gust_loop *loop;
    uint64_t interval_ns;
    gust_callback_fn cb;
    void *data;
    bool in_cb;
    bool free_pending; /* freed from inside its callback */
};

static void periodic_fire(gust_timer *timer, void *data)
{
    (void)timer;
    gust_periodic *p = data;
    p->in_cb = true;
    p->cb(p->loop, p->data);
    p->in_cb = false;
    if (p->free_pending)
        free(p);
}

gust_periodic *gust_periodic_new(gust_loop *loop, double interval,
                                 gust_callback_fn cb, void *data)
{
    if (!loop || !cb || !(interval > 0)) {
        errno = EINVAL;
        return NULL;
    }
    gust_periodic *p = calloc(1, sizeof *p);
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    gust_timer_init(loop, &p->timer);
    p->loop = loop;
    p->interval_ns = repeat_ns(interval);
    p->cb = cb;
    p->data = data;
    return p;
}

void gust_periodic_start(gust_periodic *p)
{
    if (gust_timer_active(&p->timer))
        return;
    /* The repeating timer re-arms itself on the interval grid and skips
     * missed periods. Starting needs no allocation once the heap has room;
     * if it has none and cannot grow, the periodic stays stopped. */
    schedule(&p->timer, delay_base(p->loop) + p->interval_ns, p->interval_ns,
             periodic_fire, p);
}

void gust_periodic_stop(gust_periodic *p)
{
    gust_timer_stop(&p->timer);
}

bool gust_periodic_running(const gust_periodic *p)
{
    return gust_timer_active(&p->timer);
}

void gust_periodic_free(gust_periodic *p)
{
    if (!p)
        return;
    gust_timer_stop(&p->timer);
    if (p->in_cb)
        p->free_pending = true;
    else
        free(p);
}
