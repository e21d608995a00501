/* The event loop core: lifetime, the iteration (see loop.h for the order of
 * its phases), fd handlers and callbacks. Timers live in loop_timer.c,
 * signals in loop_signal.c, the thread pool in loop_executor.c, and each
 * backend in its own file behind gust__backend.
 */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef GUST_HAVE_EVENTFD
#include <sys/eventfd.h>
#endif

#include "gust/log.h"
#include "gust/loop.h"
#include "loop_core_internal.h"
#include "log_internal.h"
#include "metrics_internal.h"

/* Most events one wait collects; the rest wait for the next iteration. */
#define READY_MAX 1024

static _Thread_local gust_loop *tl_current;
static _Atomic(gust_loop *) g_instance;
static pthread_mutex_t g_instance_lock = PTHREAD_MUTEX_INITIALIZER;

/* Bumped in every child after fork(): comparing it is as good as comparing
 * getpid() with the recorded pid, without a syscall on every registration. */
static atomic_uint g_fork_gen;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void on_fork_child(void)
{
    atomic_fetch_add_explicit(&g_fork_gen, 1, memory_order_relaxed);
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, on_fork_child);
}

uint64_t gust__loop_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- Backend choice and start-up --------------------------------------- */

static const gust__backend *const backends[] = {
#ifdef GUST_HAVE_EPOLL
    &gust__backend_epoll,
#endif
#ifdef GUST_HAVE_KQUEUE
    &gust__backend_kqueue,
#endif
    &gust__backend_poll,
};

static const gust__backend *choose_backend(bool warn)
{
    const char *env = getenv("GUST_LOOP_BACKEND");
    if (env && *env) {
        for (size_t i = 0; i < sizeof backends / sizeof backends[0]; i++)
            if (strcmp(env, backends[i]->name) == 0)
                return backends[i];
        if (warn)
            gust_log_warning("loop", "GUST_LOOP_BACKEND=%s is not available, "
                             "using %s", env, backends[0]->name);
    }
    return backends[0];
}

const char *gust_loop_backend(const gust_loop *loop)
{
    return loop->backend ? loop->backend->name : choose_backend(false)->name;
}

static int fds_reserve(gust_loop *loop, int fd)
{
    if (fd < loop->fds_cap)
        return 0;
    int cap = loop->fds_cap ? loop->fds_cap : 64;
    while (cap <= fd) {
        if (cap > INT_MAX / 2)
            return -ENOMEM;
        cap *= 2;
    }
    /* calloc, not realloc + memset: a large table comes as fresh zero
     * pages, and the slots above the highest fd are never touched (10,000
     * connections double the table to 16,384 slots). */
    gust__fd_slot *fds = calloc((size_t)cap, sizeof *fds);
    if (!fds)
        return -ENOMEM;
    if (loop->fds_cap)
        memcpy(fds, loop->fds, (size_t)loop->fds_cap * sizeof *fds);
    free(loop->fds);
    loop->fds = fds;
    loop->fds_cap = cap;
    return 0;
}

/* Registers fd in the table and the backend; the caller checked the rest. */
static int register_fd(gust_loop *loop, int fd, unsigned events,
                       gust_fd_cb cb, void *data, bool internal)
{
    int r = fds_reserve(loop, fd);
    if (r < 0)
        return r;
    gust__fd_slot *slot = &loop->fds[fd];
    if (slot->used)
        return -EEXIST;
    uint32_t gen = ++loop->fd_gen;
    r = loop->backend->set(loop->backend_state, fd, 0, events, false, gen);
    if (r < 0)
        return r;
    slot->cb = cb;
    slot->data = data;
    slot->io = 0; /* a stream sets its own after this */
    slot->gen = gen;
    slot->events = (uint8_t)events;
    slot->used = 1;
    slot->internal = internal;
    if (!internal)
        loop->n_handlers++;
    return 0;
}

/* The wake-up fd's handler: drains it, then delivers signals, which ride on
 * the same fd. Threadsafe callbacks are picked up by the callback phase. */
static void on_wake(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)events;
    (void)data;
    char buf[256];
#ifdef GUST_HAVE_EVENTFD
    if (fd == atomic_load_explicit(&loop->wake_wfd, memory_order_relaxed)) {
        ssize_t n = read(fd, buf, sizeof(uint64_t));
        (void)n;
    } else
#endif
    {
        while (read(fd, buf, sizeof buf) == (ssize_t)sizeof buf)
            ;
    }
    if (loop->sig_mask)
        gust__signal_dispatch(loop);
}

static int start_backend(gust_loop *loop)
{
    pthread_once(&g_atfork_once, register_atfork);
    const gust__backend *be = choose_backend(true);
    void *state = NULL;
    int r = be->init(&state);
    if (r < 0)
        return r;
    gust__ready *ready = malloc(READY_MAX * sizeof *ready);
    if (!ready) {
        be->destroy(state);
        return -ENOMEM;
    }
    int rfd, wfd;
#ifdef GUST_HAVE_EVENTFD
    rfd = wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (rfd < 0) {
        r = -errno;
        goto fail;
    }
#else
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
        r = -errno;
        goto fail;
    }
    rfd = p[0];
    wfd = p[1];
#endif
    loop->backend = be;
    loop->backend_state = state;
    loop->ready = ready;
    loop->ready_max = READY_MAX;
    r = register_fd(loop, rfd, GUST_READ, on_wake, NULL, true);
    if (r < 0) {
        close(rfd);
        if (wfd != rfd)
            close(wfd);
        loop->backend = NULL;
        loop->backend_state = NULL;
        loop->ready = NULL;
        goto fail;
    }
    loop->wake_rfd = rfd;
    loop->backend_pid = getpid();
    loop->backend_fork_gen =
        atomic_load_explicit(&g_fork_gen, memory_order_relaxed);
    loop->backend_started = true;
    gust__batch_start(loop);
    /* Published last: a poster that sees it may write to it. */
    atomic_store(&loop->wake_wfd, wfd);
    return 0;
fail:
    free(ready);
    be->destroy(state);
    return r;
}

int gust__loop_ensure_backend(gust_loop *loop)
{
    if (loop->backend_started) {
        if (loop->backend_fork_gen !=
            atomic_load_explicit(&g_fork_gen, memory_order_relaxed))
            return GUST_EFORKED;
        return 0;
    }
    return start_backend(loop);
}

bool gust__loop_in_use(const gust_loop *loop)
{
    return loop && loop->backend_started;
}

void gust__loop_wake(gust_loop *loop)
{
    int fd = atomic_load(&loop->wake_wfd);
    if (fd < 0)
        return; /* not started: the first iteration looks at the queue */
    int saved = errno;
    uint64_t one = 1;
    /* EAGAIN means a wake-up is already pending, which is all we want. */
    ssize_t n = write(fd, &one, sizeof one);
    (void)n;
    errno = saved;
}

/* ---- Lifetime ---------------------------------------------------------- */

gust_loop *gust_loop_new(void)
{
    gust_loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return NULL;
    int r = pthread_mutex_init(&loop->ts_lock, NULL);
    if (r != 0) {
        free(loop);
        errno = r;
        return NULL;
    }
    loop->cb_cap = 64;
    loop->cbs = malloc(loop->cb_cap * sizeof *loop->cbs);
    if (!loop->cbs) {
        pthread_mutex_destroy(&loop->ts_lock);
        free(loop);
        errno = ENOMEM;
        return NULL;
    }
    atomic_init(&loop->stopping, false);
    atomic_init(&loop->wake_pending, false);
    atomic_init(&loop->wake_wfd, -1);
    loop->wake_rfd = -1;
    loop->now_ns = gust__loop_clock_ns();
    return loop;
}

/* Logs what keeps a loop from being freed; returns true if anything does. */
static bool report_busy(gust_loop *loop)
{
    pthread_mutex_lock(&loop->ts_lock);
    size_t posted = loop->ts_len;
    pthread_mutex_unlock(&loop->ts_lock);
    size_t nsig = (size_t)__builtin_popcountll(loop->sig_mask);
    if (!loop->n_handlers && !loop->heap_len && !loop->cb_len && !posted &&
        !nsig && !loop->exec_inflight)
        return false;
    int first_fd = -1;
    for (int fd = 0; fd < loop->fds_cap && loop->n_handlers; fd++)
        if (loop->fds[fd].used && !loop->fds[fd].internal) {
            first_fd = fd;
            break;
        }
    gust_log_warning("loop",
                     "gust_loop_free: loop is busy: %zu fd handler(s) "
                     "(first fd %d), %zu timer(s), %zu callback(s), %zu "
                     "threadsafe callback(s), %zu signal watcher(s), %zu "
                     "executor job(s)",
                     loop->n_handlers, first_fd, loop->heap_len, loop->cb_len,
                     posted, nsig, loop->exec_inflight);
    return true;
}

int gust_loop_free(gust_loop *loop)
{
    if (!loop)
        return 0;
    assert(!loop->in_iteration && "gust_loop_free() inside an iteration");
    if (report_busy(loop))
        return -EBUSY;
    gust__log_flush();
    gust__executor_free(loop);
    if (loop->backend_started) {
        bool forked = loop->backend_fork_gen !=
                      atomic_load_explicit(&g_fork_gen, memory_order_relaxed);
        int wfd = atomic_load(&loop->wake_wfd);
        /* In a forked child the epoll set is the parent's: leave it be and
         * only close this process's descriptors. */
        if (!forked)
            loop->backend->del(loop->backend_state, loop->wake_rfd, GUST_READ);
        loop->backend->destroy(loop->backend_state);
        gust__batch_free(loop);
        close(loop->wake_rfd);
        if (wfd != loop->wake_rfd)
            close(wfd);
    }
    gust__timeouts_free(loop);
    free(loop->ready);
    free(loop->fds);
    free(loop->cbs);
    free(loop->ts);
    free(loop->ts_spare);
    free(loop->heap);
    pthread_mutex_destroy(&loop->ts_lock);
    if (tl_current == loop)
        tl_current = NULL;
    gust_loop *expected = loop;
    atomic_compare_exchange_strong(&g_instance, &expected, NULL);
    free(loop);
    return 0;
}

gust_loop *gust__loop_current_if_any(void)
{
    return tl_current;
}

gust_loop *gust_loop_current(void)
{
    if (!tl_current)
        tl_current = gust_loop_new();
    return tl_current;
}

void gust_loop_make_current(gust_loop *loop)
{
    tl_current = loop;
}

gust_loop *gust_loop_instance(void)
{
    gust_loop *loop = atomic_load_explicit(&g_instance, memory_order_acquire);
    if (!loop) {
        pthread_mutex_lock(&g_instance_lock);
        loop = atomic_load_explicit(&g_instance, memory_order_relaxed);
        if (!loop) {
            loop = gust_loop_new();
            atomic_store_explicit(&g_instance, loop, memory_order_release);
        }
        pthread_mutex_unlock(&g_instance_lock);
    }
    if (loop && !tl_current)
        tl_current = loop;
    return loop;
}

/* ---- Time -------------------------------------------------------------- */

double gust_loop_time(const gust_loop *loop)
{
    return (double)loop->now_ns / 1e9;
}

double gust_loop_update_time(gust_loop *loop)
{
    loop->now_ns = gust__loop_clock_ns();
    return (double)loop->now_ns / 1e9;
}

uint64_t gust_loop_now_ns(const gust_loop *loop)
{
    return loop->now_ns;
}

/* ---- File descriptors -------------------------------------------------- */

#define IO_MASK (GUST_READ | GUST_WRITE)
#define ALL_MASK (GUST_READ | GUST_WRITE | GUST_ERROR)

int gust_loop_add_handler(gust_loop *loop, int fd, unsigned events,
                          gust_fd_cb cb, void *data)
{
    if (fd < 0)
        return -EBADF;
    if ((events & ~ALL_MASK) || !cb)
        return -EINVAL;
    int r = gust__loop_ensure_backend(loop);
    if (r < 0)
        return r;
    return register_fd(loop, fd, events & IO_MASK, cb, data, false);
}

static gust__fd_slot *user_slot(gust_loop *loop, int fd)
{
    if (fd < 0 || fd >= loop->fds_cap)
        return NULL;
    gust__fd_slot *slot = &loop->fds[fd];
    return slot->used && !slot->internal ? slot : NULL;
}

int gust_loop_update_handler(gust_loop *loop, int fd, unsigned events)
{
    gust__fd_slot *slot = user_slot(loop, fd);
    if (!slot)
        return -ENOENT;
    if (events & ~ALL_MASK)
        return -EINVAL;
    events &= IO_MASK;
    if (events == slot->events)
        return 0;
    int r = gust__loop_ensure_backend(loop);
    if (r < 0)
        return r;
    r = loop->backend->set(loop->backend_state, fd, slot->events, events,
                           true, slot->gen);
    if (r < 0)
        return r;
    slot->events = (uint8_t)events;
    return 0;
}

int gust_loop_remove_handler(gust_loop *loop, int fd)
{
    gust__fd_slot *slot = user_slot(loop, fd);
    if (!slot)
        return -ENOENT;
    int r = gust__loop_ensure_backend(loop);
    if (r < 0)
        return r;
    /* The slot goes first: whatever the kernel says, the fd is no longer
     * ours, and its gen keeps any collected event from being delivered. */
    slot->used = 0;
    slot->cb = NULL;
    loop->n_handlers--;
    loop->backend->del(loop->backend_state, fd, slot->events);
    return 0;
}

/* ---- Callbacks --------------------------------------------------------- */

static int cbs_grow(gust_loop *loop)
{
    size_t cap = loop->cb_cap * 2;
    gust__cb *cbs = malloc(cap * sizeof *cbs);
    if (!cbs)
        return -ENOMEM;
    /* Unroll the ring so the head is at 0 again. */
    for (size_t i = 0; i < loop->cb_len; i++)
        cbs[i] = loop->cbs[(loop->cb_head + i) & (loop->cb_cap - 1)];
    free(loop->cbs);
    loop->cbs = cbs;
    loop->cb_cap = cap;
    loop->cb_head = 0;
    return 0;
}

int gust_loop_add_callback(gust_loop *loop, gust_callback_fn cb, void *data)
{
    assert(cb);
    if (loop->cb_len == loop->cb_cap && cbs_grow(loop) < 0)
        return -ENOMEM;
    size_t i = (loop->cb_head + loop->cb_len) & (loop->cb_cap - 1);
    loop->cbs[i].cb = cb;
    loop->cbs[i].data = data;
    loop->cb_len++;
    return 0;
}

int gust_loop_add_callback_threadsafe(gust_loop *loop, gust_callback_fn cb,
                                      void *data)
{
    assert(cb);
    pthread_mutex_lock(&loop->ts_lock);
    if (loop->ts_len == loop->ts_cap) {
        size_t cap = loop->ts_cap ? loop->ts_cap * 2 : 64;
        gust__cb *ts = realloc(loop->ts, cap * sizeof *ts);
        if (!ts) {
            pthread_mutex_unlock(&loop->ts_lock);
            return -ENOMEM;
        }
        loop->ts = ts;
        loop->ts_cap = cap;
    }
    loop->ts[loop->ts_len].cb = cb;
    loop->ts[loop->ts_len].data = data;
    loop->ts_len++;
    /* Only the first post since the loop last took the queue writes to the
     * wake fd; the loop takes the queue before it next waits, so none of the
     * later posts of a burst can be missed. */
    bool need_wake = !atomic_load_explicit(&loop->wake_pending,
                                           memory_order_relaxed);
    if (need_wake)
        atomic_store(&loop->wake_pending, true);
    pthread_mutex_unlock(&loop->ts_lock);
    if (need_wake)
        gust__loop_wake(loop);
    return 0;
}

/* Called by executor threads: the completion joins the threadsafe batch. */
void gust__loop_post_done(gust_loop *loop, gust__work *w)
{
    w->next = NULL;
    pthread_mutex_lock(&loop->ts_lock);
    if (loop->done_tail)
        loop->done_tail->next = w;
    else
        loop->done_head = w;
    loop->done_tail = w;
    bool need_wake = !atomic_load_explicit(&loop->wake_pending,
                                           memory_order_relaxed);
    if (need_wake)
        atomic_store(&loop->wake_pending, true);
    pthread_mutex_unlock(&loop->ts_lock);
    if (need_wake)
        gust__loop_wake(loop);
}

/* Phase 2: only what was queued when the phase began. */
static void run_callbacks(gust_loop *loop)
{
    size_t n = loop->cb_len;
    while (n--) {
        gust__cb item = loop->cbs[loop->cb_head];
        loop->cb_head = (loop->cb_head + 1) & (loop->cb_cap - 1);
        loop->cb_len--;
        item.cb(loop, item.data);
    }
    if (!atomic_load(&loop->wake_pending))
        return;
    pthread_mutex_lock(&loop->ts_lock);
    gust__cb *batch = loop->ts;
    size_t batch_len = loop->ts_len, batch_cap = loop->ts_cap;
    loop->ts = loop->ts_spare;
    loop->ts_cap = loop->ts_spare_cap;
    loop->ts_len = 0;
    gust__work *done = loop->done_head;
    loop->done_head = loop->done_tail = NULL;
    atomic_store(&loop->wake_pending, false);
    pthread_mutex_unlock(&loop->ts_lock);
    /* While the batch runs, the spare slot is empty; a nested post only
     * touches loop->ts. */
    loop->ts_spare = NULL;
    loop->ts_spare_cap = 0;
    for (size_t i = 0; i < batch_len; i++)
        batch[i].cb(loop, batch[i].data);
    loop->ts_spare = batch;
    loop->ts_spare_cap = batch_cap;
    if (done)
        gust__executor_run_done(loop, done);
}

/* ---- Running ----------------------------------------------------------- */

/* The wait in ms, rounded up so a sub-ms deadline never spins. */
static int wait_ms(gust_loop *loop, double timeout)
{
    if (loop->cb_len || atomic_load_explicit(&loop->stopping,
                                             memory_order_relaxed) ||
        atomic_load_explicit(&loop->wake_pending, memory_order_relaxed))
        return 0;
    if (timeout == 0)
        return 0;
    /* run_until(): a condition made true by this iteration's callbacks must
     * not wait for unrelated I/O to be noticed. */
    if (loop->until_cond && loop->until_cond(loop, loop->until_data))
        return 0;
    uint64_t limit = UINT64_MAX;
    if (timeout > 0)
        limit = timeout >= 1e6 ? (uint64_t)1e15 : (uint64_t)(timeout * 1e9);
    uint64_t deadline = gust__timer_next_deadline(loop);
    uint64_t log_due = gust__log_due_ns(); /* buffered lines wait no longer */
    if (log_due < deadline)
        deadline = log_due;
    if (deadline != UINT64_MAX) {
        /* Callbacks may have taken a while since phase 1. */
        loop->now_ns = gust__loop_clock_ns();
        uint64_t d = deadline > loop->now_ns ? deadline - loop->now_ns : 0;
        if (d < limit)
            limit = d;
    }
    if (limit == UINT64_MAX)
        return -1;
    uint64_t ms = (limit + 999999u) / 1000000u;
    return ms > INT_MAX ? INT_MAX : (int)ms;
}

static void dispatch(gust_loop *loop, int n)
{
    for (int i = 0; i < n; i++) {
        const gust__ready *r = &loop->ready[i];
        if (r->fd >= loop->fds_cap)
            continue;
        /* Re-read each time: a handler may grow the table. */
        gust__fd_slot *slot = &loop->fds[r->fd];
        if (!slot->used || slot->gen != r->gen)
            continue;
        unsigned ev = r->events & ((unsigned)slot->events | GUST_ERROR);
        if (ev)
            slot->cb(loop, r->fd, ev, slot->data);
    }
}

/* The backend's wait, again after an interruption for what is left of
 * ms: a signal Gust handles wakes the loop through its own fd, and io_uring
 * interrupts a wait now and then to run its work (after a ring is torn
 * down), which must not end a wait early. */
static int poll_ready(gust_loop *loop, int ms)
{
    uint64_t start = ms > 0 ? gust__loop_clock_ns() : 0;
    for (;;) {
        int n = loop->backend->poll(loop->backend_state, ms, loop->ready,
                                    loop->ready_max);
        if (n != -EINTR)
            return n;
        if (ms == 0)
            return 0;
        if (ms > 0) {
            uint64_t spent = (gust__loop_clock_ns() - start) / 1000000u;
            if (spent >= (uint64_t)ms)
                return 0;
            ms -= (int)spent;
            start = gust__loop_clock_ns();
        }
    }
}

int gust_loop_run_once(gust_loop *loop, double timeout)
{
    assert(!loop->in_iteration && "the loop is already running an iteration");
    int r = gust__loop_ensure_backend(loop);
    if (r < 0)
        return r;
    loop->in_iteration = true;
    loop->batching = loop->batch != NULL;
    loop->now_ns = gust__loop_clock_ns();
    gust__log_turn_begin(loop->now_ns);
    run_callbacks(loop);
    /* Sends deferred by the callbacks leave before the wait. */
    gust__loop_flush_writes(loop);
    int n = poll_ready(loop, wait_ms(loop, timeout));
    if (n < 0) {
        loop->batching = false;
        loop->in_iteration = false;
        gust__log_turn_end(UINT64_MAX);
        return n;
    }
    if (n > 0) {
        loop->now_ns = gust__loop_clock_ns();
        gust__batch_reads(loop, n);
        dispatch(loop, n);
        gust__batch_reads_done(loop);
        gust__loop_flush_writes(loop);
    }
    loop->now_ns = gust__loop_clock_ns();
    gust__timer_run_due(loop);
    gust__loop_flush_writes(loop);
    loop->batching = false;
    loop->in_iteration = false;
    /* The turn's log lines, if the oldest is due (log_internal.h), and
     * its counts into the shared metrics (metrics_internal.h). */
    gust__log_turn_end(loop->now_ns);
    gust__metrics_turn_end();
    return 0;
}

/* Consumes a pending stop request. */
static bool take_stop(gust_loop *loop)
{
    return atomic_load_explicit(&loop->stopping, memory_order_relaxed) &&
           atomic_exchange(&loop->stopping, false);
}

int gust_loop_start(gust_loop *loop)
{
    assert(!loop->running && "gust_loop_start() on a running loop");
    loop->running = true;
    int r;
    for (;;) {
        r = gust_loop_run_once(loop, -1);
        if (r < 0 || take_stop(loop))
            break;
    }
    loop->running = false;
    return r;
}

void gust_loop_stop(gust_loop *loop)
{
    atomic_store(&loop->stopping, true);
}

void gust_loop_stop_threadsafe(gust_loop *loop)
{
    atomic_store(&loop->stopping, true);
    gust__loop_wake(loop);
}

int gust_loop_run_until(gust_loop *loop, gust_loop_cond_fn cond, void *data,
                        double timeout)
{
    assert(!loop->running && "gust_loop_run_until() on a running loop");
    if (cond && cond(loop, data))
        return 0;
    uint64_t deadline = 0;
    if (timeout > 0)
        deadline = gust__loop_clock_ns() +
                   (timeout >= 1e6 ? (uint64_t)1e15 : (uint64_t)(timeout * 1e9));
    loop->running = true;
    loop->until_cond = cond;
    loop->until_data = data;
    int r;
    for (;;) {
        double wait = -1;
        if (deadline) {
            uint64_t now = gust__loop_clock_ns();
            if (now >= deadline) {
                r = GUST_ETIMEOUT;
                break;
            }
            wait = (double)(deadline - now) / 1e9;
        }
        r = gust_loop_run_once(loop, wait);
        if (r < 0)
            break;
        if (cond && cond(loop, data)) {
            r = 0;
            break;
        }
        if (take_stop(loop)) {
            r = GUST_ECANCELED;
            break;
        }
    }
    loop->until_cond = NULL;
    loop->until_data = NULL;
    loop->running = false;
    return r;
}

bool gust_loop_running(const gust_loop *loop)
{
    return loop->running;
}
