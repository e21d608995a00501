/* Futures: completion, done-callbacks, cancellation, and the futures built
 * on them (all, any, with_timeout, sleep, run_sync). Executor work is in
 * future_executor.c.
 * Coroutines live in coro.c.
 *
 * Done-callbacks always run from a loop callback, never inside the call that
 * completed the future or added the callback: that is what lets a coroutine
 * be resumed from them (a coroutine is only ever resumed from the loop's own
 * stack), and what keeps set_result() from recursing through a chain of
 * futures.
 */
#include <assert.h>
#include <errno.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "gust/future.h"
#include "gust/log.h"
#define GUST__FUTURE_PRIVATE
#include "future_internal.h"

void gust_value_free(gust_value *v)
{
    if (!v)
        return;
    if (v->free_fn && v->ptr)
        v->free_fn(v->ptr);
    v->ptr = NULL;
    v->free_fn = NULL;
}

/* ---- Node lists -------------------------------------------------------- */

static void flist_push(gust__flist *l, gust__fnode *n)
{
    n->list = l;
    n->next = NULL;
    n->prev = l->tail;
    if (l->tail)
        l->tail->next = n;
    else
        l->head = n;
    l->tail = n;
}

void gust__fnode_unlink(gust__fnode *n)
{
    gust__flist *l = n->list;
    if (!l)
        return;
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        l->tail = n->prev;
    n->prev = n->next = NULL;
    n->list = NULL;
}

/* Moves every node of src to the end of dst. */
static void flist_splice(gust__flist *dst, gust__flist *src)
{
    for (gust__fnode *n = src->head; n; n = n->next)
        n->list = dst;
    if (!src->head)
        return;
    if (dst->tail) {
        dst->tail->next = src->head;
        src->head->prev = dst->tail;
    } else {
        dst->head = src->head;
    }
    dst->tail = src->tail;
    src->head = src->tail = NULL;
}

/* ---- Lifetime ---------------------------------------------------------- */

gust_future *gust__future_alloc(gust_loop *loop, size_t extra)
{
    const size_t head = (sizeof(gust_future) + alignof(max_align_t) - 1) &
                        ~(alignof(max_align_t) - 1);
    gust_future *f = calloc(1, head + extra);
    if (!f)
        return NULL;
    f->loop = loop;
    f->refs = 1;
    f->status = -EINPROGRESS;
    if (extra)
        f->impl = (char *)f + head;
    return f;
}

gust_future *gust_future_new(gust_loop *loop)
{
    assert(loop);
    gust_future *f = gust__future_alloc(loop, 0);
    if (!f)
        errno = ENOMEM;
    return f;
}

gust_future *gust_future_ref(gust_future *f)
{
    assert(f && f->refs > 0);
    f->refs++;
    return f;
}

void gust_future_unref(gust_future *f)
{
    if (!f)
        return;
    assert(f->refs > 0 && "gust_future_unref() on a freed future");
    if (--f->refs)
        return;
    /* Nothing can be queued: a scheduled run holds a reference. */
    assert(!f->scheduled && !f->batch.head);
    if (f->done && f->status < 0 && f->status != GUST_ECANCELED &&
        !f->retrieved)
        gust_log_warning("future", "future error never retrieved: %s (%s)",
                         gust_strerror(f->status), gust_err_name(f->status));
    gust_value_free(&f->value);
    gust__fnode *n = f->cbs.head;
    while (n) {
        gust__fnode *next = n->next;
        n->list = NULL;
        /* An embedded node belongs to a waiter that holds a reference, so
         * only malloc'ed nodes can be left here. */
        if (n->heap)
            free(n);
        n = next;
    }
    free(f);
}

/* ---- Completion -------------------------------------------------------- */

/* Loop callback: runs the callbacks present when it starts, in order. One
 * added meanwhile goes to f->cbs and gets its own run in the next
 * iteration. A node may be unlinked from the batch by an earlier callback
 * (a cancelled coroutine), hence popping one at a time. */
static void run_callbacks(gust_loop *loop, void *data)
{
    (void)loop;
    gust_future *f = data;
    f->scheduled = false;
    flist_splice(&f->batch, &f->cbs);
    gust__fnode *n;
    while ((n = f->batch.head)) {
        gust__fnode_unlink(n);
        bool heap = n->heap;
        n->cb(f, n->data);
        if (heap)
            free(n);
    }
    gust_future_unref(f);
}

static void schedule(gust_future *f)
{
    if (f->scheduled || !f->cbs.head)
        return;
    if (gust_loop_add_callback(f->loop, run_callbacks, f) < 0) {
        /* Left in f->cbs: the next add or completion retries. */
        gust_log_error("future", "cannot schedule done-callbacks: %s",
                       gust_strerror(-ENOMEM));
        return;
    }
    f->scheduled = true;
    f->refs++;
}

static int complete(gust_future *f, int status, gust_value value)
{
    if (f->done) {
        gust_value_free(&value);
        if (f->cancelled)
            return GUST_ECANCELED;
        gust_log_error("future", "future completed twice (second status %d "
                       "ignored)", status);
        return -EALREADY;
    }
    f->done = true;
    f->status = status;
    f->value = value;
    schedule(f);
    return 0;
}

int gust_future_set_result(gust_future *f, gust_value value)
{
    assert(f);
    return complete(f, 0, value);
}

int gust_future_set_error(gust_future *f, int error)
{
    assert(f && error < 0);
    return complete(f, error, GUST_VALUE_NONE);
}

/* ---- Producers (future_internal.h) ------------------------------------ */

gust_future *gust__future_resolved(gust_loop *loop, gust_value value)
{
    gust_future *f = gust_future_new(loop);
    if (!f) {
        gust_value_free(&value);
        return NULL;
    }
    gust_future_set_result(f, value);
    return f;
}

void *gust__future_impl(const gust_future *f)
{
    return f->impl;
}

void gust__future_set_impl(gust_future *f, void *impl)
{
    f->impl = impl;
}

void gust__future_set_cancel(gust_future *f, gust__cancel_fn fn)
{
    f->cancel = fn;
}

int gust__future_fail_with(gust_future *f, int error, gust_value value)
{
    assert(f && error < 0);
    return complete(f, error, value);
}

void *gust__future_error_value(const gust_future *f)
{
    if (!f->done || f->status >= 0 || f->cancelled)
        return NULL;
    return f->value.ptr;
}

bool gust__future_unobserved(const gust_future *f)
{
    return f->refs == 1 && !f->cbs.head;
}

bool gust_future_cancel(gust_future *f)
{
    assert(f);
    if (f->done)
        return false;
    gust__cancel_fn cancel = f->cancel;
    f->cancel = NULL;
    f->cancelled = true;
    complete(f, GUST_ECANCELED, GUST_VALUE_NONE);
    if (cancel) {
        /* The hook may drop the producer's reference. */
        f->refs++;
        cancel(f);
        gust_future_unref(f);
    }
    return true;
}

gust_future *gust_future_expect_error(gust_future *f)
{
    if (f)
        f->retrieved = true;
    return f;
}

bool gust_future_done(const gust_future *f)
{
    return f->done;
}

bool gust_future_cancelled(const gust_future *f)
{
    return f->cancelled;
}

int gust_future_status(gust_future *f)
{
    if (!f->done)
        return -EINPROGRESS;
    f->retrieved = true;
    return f->status;
}

void *gust_future_result(const gust_future *f)
{
    return f->done && f->status == 0 ? f->value.ptr : NULL;
}

gust_value gust_future_take(gust_future *f)
{
    gust_value v = GUST_VALUE_NONE;
    if (f->done && f->status == 0) {
        v = f->value;
        f->value = GUST_VALUE_NONE;
    }
    return v;
}

gust_loop *gust_future_loop(const gust_future *f)
{
    return f->loop;
}

void gust__future_add_node(gust_future *f, gust__fnode *node)
{
    flist_push(&f->cbs, node);
    if (f->done)
        schedule(f);
}

int gust_future_add_done_callback(gust_future *f, gust_future_cb cb,
                                  void *data)
{
    assert(f && cb);
    gust__fnode *n = malloc(sizeof *n);
    if (!n)
        return -ENOMEM;
    n->cb = cb;
    n->data = data;
    n->heap = true;
    gust__future_add_node(f, n);
    return 0;
}

/* ---- all / any --------------------------------------------------------- */

/* Shared by all and any. Each child has a node embedded here; the state
 * lives until every child has reported, holding a reference to each, and
 * holds one to the output future until then too. */
typedef struct multi {
    gust_future *out;
    size_t n, pending;
    size_t *winner;   /* any */
    bool any;
    bool gather;      /* every outcome, errors included */
    struct multi_child {
        gust_future *f;
        gust__fnode node;
        struct multi *m;
    } kids[];
} multi;

static void free_values(void *ptr)
{
    gust_value *vals = ptr;
    size_t n = ((size_t *)ptr)[-1];
    for (size_t i = 0; i < n; i++)
        gust_value_free(&vals[i]);
    free((size_t *)ptr - 1);
}

static void free_outcomes(void *ptr)
{
    gust_outcome *outs = ptr;
    size_t n = ((size_t *)ptr)[-1];
    for (size_t i = 0; i < n; i++)
        gust_value_free(&outs[i].value);
    free((size_t *)ptr - 1);
}

/* gather: every child is done; each outcome is read here, so no error of
 * theirs is reported as never retrieved. */
static void gather_finish(multi *m)
{
    size_t *block = malloc(sizeof(size_t) + m->n * sizeof(gust_outcome));
    if (!block) {
        gust_future_set_error(m->out, -ENOMEM);
        return;
    }
    block[0] = m->n;
    gust_outcome *outs = (gust_outcome *)(block + 1);
    for (size_t i = 0; i < m->n; i++) {
        outs[i].status = gust_future_status(m->kids[i].f);
        outs[i].value = gust_future_take(m->kids[i].f);
    }
    gust_future_set_result(m->out, (gust_value){outs, free_outcomes});
}

/* all succeeded: the result is an array of their values, in order. The
 * count hides in front of the array, for free_values. */
static void all_finish(multi *m)
{
    if (m->n == 0) {
        gust_future_set_result(m->out, GUST_VALUE_NONE);
        return;
    }
    if (m->gather) {
        gather_finish(m);
        return;
    }
    size_t *block = malloc(sizeof(size_t) + m->n * sizeof(gust_value));
    if (!block) {
        gust_future_set_error(m->out, -ENOMEM);
        return;
    }
    block[0] = m->n;
    gust_value *vals = (gust_value *)(block + 1);
    for (size_t i = 0; i < m->n; i++)
        vals[i] = gust_future_take(m->kids[i].f);
    gust_future_set_result(m->out, (gust_value){vals, free_values});
}

static void multi_release(multi *m)
{
    for (size_t i = 0; i < m->n; i++)
        gust_future_unref(m->kids[i].f);
    gust_future_unref(m->out);
    free(m);
}

static void multi_on_child(gust_future *child, void *data)
{
    struct multi_child *c = data;
    multi *m = c->m;
    int st = gust_future_status(child);
    if (!m->out->done) {
        if (m->any) {
            if (m->winner)
                *m->winner = (size_t)(c - m->kids);
            if (st == 0)
                gust_future_set_result(m->out, gust_future_take(child));
            else
                gust_future_set_error(m->out, st);
            for (size_t i = 0; i < m->n; i++)
                gust_future_cancel(m->kids[i].f);
        } else if (st < 0 && !m->gather) {
            gust_future_set_error(m->out, st);
        } else if (m->pending == 1) {
            all_finish(m);
        }
    }
    if (--m->pending == 0)
        multi_release(m);
}

static void multi_cancel(gust_future *out)
{
    multi *m = out->impl;
    for (size_t i = 0; i < m->n; i++)
        gust_future_cancel(m->kids[i].f);
}

static gust_future *multi_new(gust_loop *loop, gust_future *const *fs,
                              size_t n, bool any, bool gather, size_t *winner)
{
    gust_future *out = gust_future_new(loop);
    multi *m = out ? malloc(sizeof *m + n * sizeof m->kids[0]) : NULL;
    if (!m) {
        gust_future_unref(out);
        for (size_t i = 0; i < n; i++)
            gust_future_unref(fs[i]);
        errno = ENOMEM;
        return NULL;
    }
    m->out = gust_future_ref(out);
    m->n = m->pending = n;
    m->any = any;
    m->gather = gather;
    m->winner = winner;
    out->impl = m;
    out->cancel = multi_cancel;
    for (size_t i = 0; i < n; i++) {
        m->kids[i].f = fs[i];
        m->kids[i].m = m;
        m->kids[i].node.cb = multi_on_child;
        m->kids[i].node.data = &m->kids[i];
        m->kids[i].node.heap = false;
    }
    if (n == 0) {
        all_finish(m);
        multi_release(m);
        return out;
    }
    /* Nodes are added last: a cancel hook may run from now on. */
    for (size_t i = 0; i < n; i++)
        gust__future_add_node(fs[i], &m->kids[i].node);
    return out;
}

gust_future *gust_all(gust_loop *loop, gust_future *const *fs, size_t n)
{
    return multi_new(loop, fs, n, false, false, NULL);
}

gust_future *gust_gather(gust_loop *loop, gust_future *const *fs, size_t n)
{
    return multi_new(loop, fs, n, false, true, NULL);
}

gust_future *gust_any(gust_loop *loop, gust_future *const *fs, size_t n,
                      size_t *winner)
{
    assert(n > 0 && "gust_any() of nothing never completes");
    return multi_new(loop, fs, n, true, false, winner);
}

/* ---- sleep and with_timeout -------------------------------------------- */

/* The timer holds a reference to the future until it fires or is stopped. */
static void sleep_fired(gust_timer *t, void *data)
{
    (void)t;
    gust_future *f = data;
    f->cancel = NULL;
    gust_future_set_result(f, GUST_VALUE_NONE);
    gust_future_unref(f);
}

static void sleep_cancel(gust_future *f)
{
    gust_timer_stop(f->impl);
    gust_future_unref(f);
}

static gust_future *sleep_new(gust_loop *loop, double when, bool absolute)
{
    gust_future *f = gust__future_alloc(loop, sizeof(gust_timer));
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    gust_timer *t = f->impl;
    gust_timer_init(loop, t);
    int r = absolute ? gust_timer_start_at(t, when, 0, sleep_fired, f)
                     : gust_timer_start(t, when, 0, sleep_fired, f);
    if (r < 0) {
        free(f);
        errno = -r;
        return NULL;
    }
    f->refs++;
    f->cancel = sleep_cancel;
    return f;
}

gust_future *gust_sleep(gust_loop *loop, double seconds)
{
    return sleep_new(loop, seconds, false);
}

gust_future *gust_sleep_until(gust_loop *loop, double deadline)
{
    return sleep_new(loop, deadline, true);
}

/* The wrapper's state: its inner future's node and the timer. Freed with
 * the wrapper; the inner node and the armed timer each hold a reference to
 * the wrapper so neither can outlive it. */
typedef struct timeout_state {
    gust_future *inner;
    gust_timer timer;
    gust__fnode node;
} timeout_state;

static void timeout_on_inner(gust_future *inner, void *data)
{
    gust_future *out = data;
    timeout_state *s = out->impl;
    if (!out->done) {
        int st = gust_future_status(inner);
        if (st == 0)
            gust_future_set_result(out, gust_future_take(inner));
        else
            gust_future_set_error(out, st);
    } else if (inner->status == GUST_ETIMEOUT) {
        /* The wrapper gave up first and whoever awaited it was told so:
         * the inner future hitting its own deadline later is the same
         * slowness, not news. Other errors still warn unless expected. */
        inner->retrieved = true;
    }
    if (gust_timer_active(&s->timer)) {
        gust_timer_stop(&s->timer);
        gust_future_unref(out);
    }
    out->cancel = NULL;
    s->inner = NULL;
    gust_future_unref(inner);
    gust_future_unref(out);
}

static void timeout_fired(gust_timer *t, void *data)
{
    (void)t;
    gust_future *out = data;
    gust_future_set_error(out, GUST_ETIMEOUT);
    gust_future_unref(out);
}

static void timeout_cancel(gust_future *out)
{
    timeout_state *s = out->impl;
    if (gust_timer_active(&s->timer)) {
        gust_timer_stop(&s->timer);
        gust_future_unref(out);
    }
    if (s->inner)
        gust_future_cancel(s->inner);
}

gust_future *gust_with_timeout(gust_loop *loop, gust_future *f,
                               double timeout)
{
    gust_future *out = gust__future_alloc(loop, sizeof(timeout_state));
    if (!out) {
        gust_future_unref(f);
        errno = ENOMEM;
        return NULL;
    }
    timeout_state *s = out->impl;
    s->inner = f;
    gust_timer_init(loop, &s->timer);
    if (gust_timer_start(&s->timer, timeout, 0, timeout_fired, out) < 0) {
        free(out);
        gust_future_unref(f);
        errno = ENOMEM;
        return NULL;
    }
    out->refs += 2; /* the timer's and the inner node's */
    out->cancel = timeout_cancel;
    s->node.cb = timeout_on_inner;
    s->node.data = out;
    s->node.heap = false;
    gust__future_add_node(f, &s->node);
    return out;
}

/* ---- run_sync ---------------------------------------------------------- */

static bool future_is_done(gust_loop *loop, void *data)
{
    (void)loop;
    return ((gust_future *)data)->done;
}

int gust_loop_run_sync(gust_loop *loop, gust_future *f, double timeout,
                       gust_value *result)
{
    assert(!gust_in_coroutine() && "gust_loop_run_sync() in a coroutine");
    if (result)
        *result = GUST_VALUE_NONE;
    int r = gust_loop_run_until(loop, future_is_done, f, timeout);
    if (r == 0 || f->done) {
        r = gust_future_status(f);
        if (r == 0 && result)
            *result = gust_future_take(f);
    } else {
        gust_future_cancel(f);
    }
    gust_future_unref(f);
    return r;
}
