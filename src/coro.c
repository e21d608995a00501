/* Coroutines: spawn, await, the stack pool and the overflow handler.
 *
 * A coroutine only ever switches with the loop's own stack: it is resumed
 * from a loop callback (its start, the done-callback of the future it
 * awaits, or the wake-up after a cancel) and switches back when it awaits a
 * pending future or returns. So there is one scheduler context per thread
 * and no coroutine ever resumes another, which keeps the bookkeeping (and
 * the AddressSanitizer annotations) simple.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gust/future.h"
#include "gust/log.h"
#define GUST__FUTURE_PRIVATE
#include "future_internal.h"

#ifdef GUST__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#ifndef MAP_STACK
#define MAP_STACK 0
#endif
#ifndef MAP_NORESERVE
#define MAP_NORESERVE 0
#endif

#define DEFAULT_STACK (64u * 1024u)
#define MIN_STACK (16u * 1024u)
#define MAX_STACK (1024u * 1024u * 1024u)
#define ALTSTACK_SIZE (64u * 1024u)

enum coro_state { CORO_NEW, CORO_RUNNING, CORO_SUSPENDED, CORO_DONE };

typedef struct gust__coro {
    gust__ctx ctx;
    gust_loop *loop;
    gust_coro_fn fn;
    void *data;
    gust_future *future;   /* its own, with the coroutine's reference */
    gust_future *awaiting; /* with the awaiter's reference */
    gust__fnode node;      /* on awaiting's callbacks while suspended */
    char *map;             /* the mapping: guard page, then the stack */
    size_t map_size;
    char *stack_lo;
    size_t stack_size;
    enum coro_state state;
    bool cancel_requested; /* the next await returns GUST_ECANCELED */
    unsigned holds;        /* loop callbacks queued that point here */
#ifdef GUST__ASAN
    void *fake_stack;
#endif
} gust__coro;

/* A pooled stack: the header sits at the bottom of its usable area. */
typedef struct pooled {
    struct pooled *next;
    char *map;
    size_t map_size;
} pooled;

/* Per thread: the scheduler context coroutines switch back to, the running
 * coroutine, the stack pool, counters. */
typedef struct coro_thread {
    gust__ctx sched;
    gust__coro *current;
    pooled *pool;
    size_t pooled, alive, mapped, reused;
    bool key_set;
    void *altstack;
#ifdef GUST__ASAN
    void *sched_fake;
    const void *sched_bottom;
    size_t sched_size;
#endif
} coro_thread;

static _Thread_local coro_thread tl;

static atomic_size_t g_stack_size;
static atomic_size_t g_pool_max = 64;
static size_t g_page;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;
static atomic_bool g_handler_installed;

static void thread_exit(void *arg);

static size_t round_pages(size_t n)
{
    return (n + g_page - 1) & ~(g_page - 1);
}

static void init_once(void)
{
    long p = sysconf(_SC_PAGESIZE);
    g_page = p > 0 ? (size_t)p : 4096;
    size_t size = DEFAULT_STACK;
    const char *env = getenv("GUST_CORO_STACK_SIZE");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (*end == '\0' && v >= MIN_STACK && v <= MAX_STACK)
            size = (size_t)v;
        else
            gust_log_warning("coro", "GUST_CORO_STACK_SIZE=%s ignored", env);
    }
    size_t expected = 0;
    atomic_compare_exchange_strong(&g_stack_size, &expected,
                                   round_pages(size));
    pthread_key_create(&g_key, thread_exit);
}

/* ---- Settings and stats ------------------------------------------------ */

int gust_coro_set_stack_size(size_t bytes)
{
    pthread_once(&g_once, init_once);
    if (bytes < MIN_STACK || bytes > MAX_STACK)
        return -EINVAL;
    atomic_store(&g_stack_size, round_pages(bytes));
    return 0;
}

size_t gust_coro_stack_size(void)
{
    pthread_once(&g_once, init_once);
    return atomic_load(&g_stack_size);
}

int gust_coro_set_pool_max(size_t n)
{
    atomic_store(&g_pool_max, n);
    return 0;
}

void gust_coro_get_stats(gust_coro_stats *stats)
{
    stats->alive = tl.alive;
    stats->mapped = tl.mapped;
    stats->pooled = tl.pooled;
    stats->reused = tl.reused;
}

const char *gust_coro_switch_impl(void)
{
    return gust__ctx_impl();
}

bool gust_in_coroutine(void)
{
    return tl.current != NULL;
}

gust_future *gust_coro_self(void)
{
    return tl.current ? tl.current->future : NULL;
}

/* ---- Stacks ------------------------------------------------------------ */

static void unmap_stack(char *map, size_t map_size)
{
    munmap(map, map_size);
    tl.mapped--;
}

void gust_coro_pool_trim(void)
{
    while (tl.pool) {
        pooled *p = tl.pool;
        tl.pool = p->next;
        tl.pooled--;
        unmap_stack(p->map, p->map_size);
    }
}

/* Maps (or reuses) a stack of the current size for co. */
static int stack_get(gust__coro *co)
{
    size_t size = atomic_load(&g_stack_size);
    size_t map_size = size + g_page;
    while (tl.pool) {
        pooled *p = tl.pool;
        tl.pool = p->next;
        tl.pooled--;
        if (p->map_size == map_size) {
            co->map = p->map;
            co->map_size = map_size;
            tl.reused++;
            goto done;
        }
        unmap_stack(p->map, p->map_size); /* the size setting changed */
    }
    void *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK,
                     -1, 0);
    if (map == MAP_FAILED)
        return -errno;
    /* The guard page: a frame running off the bottom faults here instead
     * of writing over whatever is mapped below. */
    if (mprotect(map, g_page, PROT_NONE) < 0) {
        int e = errno;
        munmap(map, map_size);
        return -e;
    }
    co->map = map;
    co->map_size = map_size;
    tl.mapped++;
done:
    co->stack_lo = co->map + g_page;
    co->stack_size = map_size - g_page;
    return 0;
}

static void stack_put(gust__coro *co)
{
#ifdef GUST__ASAN
    /* Frames that never returned (the entry's, the switch's) leave their
     * redzones poisoned; the next coroutine on this stack must not trip
     * on them. */
    ASAN_UNPOISON_MEMORY_REGION(co->stack_lo, co->stack_size);
#endif
    if (tl.pooled >= atomic_load(&g_pool_max) ||
        co->map_size != atomic_load(&g_stack_size) + g_page) {
        unmap_stack(co->map, co->map_size);
        return;
    }
    pooled *p = (pooled *)(void *)co->stack_lo;
    p->map = co->map;
    p->map_size = co->map_size;
    p->next = tl.pool;
    tl.pool = p;
    tl.pooled++;
}

/* ---- Overflow handler -------------------------------------------------- */

static struct sigaction g_old_segv, g_old_bus;

static size_t fmt_hex(char *out, uintptr_t v)
{
    char tmp[2 * sizeof v];
    size_t n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static size_t fmt_dec(char *out, size_t v)
{
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static void put(char *buf, size_t *len, const char *s)
{
    size_t n = strlen(s);
    memcpy(buf + *len, s, n);
    *len += n;
}

/* Only async-signal-safe calls from here on: no stdio, no malloc. */
static void on_fault(int sig, siginfo_t *si, void *uc)
{
    gust__coro *co = tl.current;
    uintptr_t a = (uintptr_t)si->si_addr;
    if (co && a >= (uintptr_t)co->map && a < (uintptr_t)co->stack_lo) {
        char buf[160];
        size_t len = 0;
        put(buf, &len, "gust: coroutine stack overflow (guard page hit at 0x");
        len += fmt_hex(buf + len, a);
        put(buf, &len, ", stack size ");
        len += fmt_dec(buf + len, co->stack_size);
        put(buf, &len, " bytes; see gust_coro_set_stack_size())\n");
        ssize_t w = write(STDERR_FILENO, buf, len);
        (void)w;
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGABRT, &dfl, NULL);
        abort();
    }
    /* Not ours: hand it to whoever had the signal before. Returning with
     * the default action restored re-runs the faulting instruction, which
     * then kills the process the ordinary way. */
    const struct sigaction *old = sig == SIGSEGV ? &g_old_segv : &g_old_bus;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
        old->sa_sigaction(sig, si, uc);
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
    } else {
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigaction(sig, &dfl, NULL);
    }
}

static int set_altstack(void)
{
    if (tl.altstack)
        return 0;
    void *mem = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED)
        return -errno;
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = mem;
    ss.ss_size = ALTSTACK_SIZE;
    if (sigaltstack(&ss, NULL) < 0) {
        int e = errno;
        munmap(mem, ALTSTACK_SIZE);
        return -e;
    }
    tl.altstack = mem;
    return 0;
}

static void register_thread(void)
{
    if (!tl.key_set) {
        tl.key_set = true;
        pthread_setspecific(g_key, &tl);
    }
}

int gust_coro_install_overflow_handler(void)
{
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_once(&g_once, init_once);
    register_thread();
    int r = set_altstack();
    if (r < 0)
        return r;
    pthread_mutex_lock(&lock);
    if (!atomic_load(&g_handler_installed)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSEGV, &sa, &g_old_segv) < 0 ||
            sigaction(SIGBUS, &sa, &g_old_bus) < 0)
            r = -errno;
        else
            atomic_store(&g_handler_installed, true);
    }
    pthread_mutex_unlock(&lock);
    return r;
}

/* pthread key destructor: a thread's pool and alternate stack go with it. */
static void thread_exit(void *arg)
{
    (void)arg;
    gust_coro_pool_trim();
    if (tl.altstack) {
        stack_t ss;
        memset(&ss, 0, sizeof ss);
        ss.ss_flags = SS_DISABLE;
        sigaltstack(&ss, NULL);
        munmap(tl.altstack, ALTSTACK_SIZE);
        tl.altstack = NULL;
    }
}

/* ---- Switching --------------------------------------------------------- */

/* From the loop's stack into co, and back when it suspends or ends. */
static void resume(gust__coro *co)
{
    assert(!tl.current && "a coroutine cannot resume another");
    tl.current = co;
    co->state = CORO_RUNNING;
#ifdef GUST__ASAN
    __sanitizer_start_switch_fiber(&tl.sched_fake, co->stack_lo,
                                   co->stack_size);
#endif
    gust__ctx_switch(&tl.sched, &co->ctx);
#ifdef GUST__ASAN
    __sanitizer_finish_switch_fiber(tl.sched_fake, NULL, NULL);
#endif
    tl.current = NULL;
}

/* From co back to the loop's stack; returns when co is resumed. */
static void suspend(gust__coro *co)
{
#ifdef GUST__ASAN
    __sanitizer_start_switch_fiber(&co->fake_stack, tl.sched_bottom,
                                   tl.sched_size);
#endif
    gust__ctx_switch(&co->ctx, &tl.sched);
#ifdef GUST__ASAN
    __sanitizer_finish_switch_fiber(co->fake_stack, &tl.sched_bottom,
                                    &tl.sched_size);
#endif
}

/* The coroutine is over (ran or never started): its stack goes back, its
 * struct goes once no queued callback points at it. */
static void retire(gust__coro *co)
{
    stack_put(co);
    co->map = NULL;
    tl.alive--;
    gust_future *f = co->future;
    co->future = NULL;
    gust_future_unref(f);
}

static void maybe_free(gust__coro *co)
{
    if (co->state == CORO_DONE && !co->map && co->holds == 0)
        free(co);
}

static void resume_and_settle(gust__coro *co)
{
    resume(co);
    if (co->state == CORO_DONE) {
        retire(co);
        maybe_free(co);
    }
}

static void coro_entry(void *arg)
{
    gust__coro *co = arg;
#ifdef GUST__ASAN
    __sanitizer_finish_switch_fiber(NULL, &tl.sched_bottom, &tl.sched_size);
#endif
    gust_value v = GUST_VALUE_NONE;
    int r = co->fn(co->loop, &v, co->data);
    gust_future *f = co->future;
    f->cancel = NULL;
    f->impl = NULL;
    if (f->done)
        gust_value_free(&v); /* cancelled: nobody wants it */
    else if (r < 0) {
        gust_value_free(&v);
        gust_future_set_error(f, r);
    } else {
        gust_future_set_result(f, v);
    }
    co->state = CORO_DONE;
#ifdef GUST__ASAN
    /* NULL: this fiber is gone, ASan may drop its fake stack. */
    __sanitizer_start_switch_fiber(NULL, tl.sched_bottom, tl.sched_size);
#endif
    gust__ctx_switch(&co->ctx, &tl.sched);
    abort(); /* never resumed */
}

/* ---- Loop callbacks that resume ---------------------------------------- */

static void on_start(gust_loop *loop, void *data)
{
    (void)loop;
    gust__coro *co = data;
    co->holds--;
    if (co->future->done) {
        /* Cancelled before it ran: it never will. */
        co->state = CORO_DONE;
        retire(co);
        maybe_free(co);
        return;
    }
    resume_and_settle(co);
}

static void on_awaited_done(gust_future *f, void *data)
{
    (void)f;
    gust__coro *co = data;
    assert(co->state == CORO_SUSPENDED && co->awaiting == f);
    resume_and_settle(co);
}

static void on_cancel_wake(gust_loop *loop, void *data)
{
    (void)loop;
    gust__coro *co = data;
    co->holds--;
    if (co->state == CORO_SUSPENDED)
        resume_and_settle(co);
    else
        maybe_free(co);
}

/* The coroutine's future was cancelled (it is already done). */
static void on_cancel(gust_future *f)
{
    gust__coro *co = f->impl;
    if (co->state == CORO_NEW)
        return; /* on_start sees the future done */
    co->cancel_requested = true;
    if (co->state != CORO_SUSPENDED || !co->node.list)
        return; /* running: its next await reports it */
    /* Suspended: stop waiting for the awaited future and wake up on the
     * next iteration. If the wake-up cannot be queued, stay on the list:
     * the await still returns GUST_ECANCELED, only later. */
    if (gust_loop_add_callback(co->loop, on_cancel_wake, co) < 0)
        return;
    gust__fnode_unlink(&co->node);
    co->holds++;
}

/* ---- Public ------------------------------------------------------------ */

gust_future *gust_spawn(gust_loop *loop, gust_coro_fn fn, void *data)
{
    assert(loop && fn);
    pthread_once(&g_once, init_once);
    register_thread();
    if (atomic_load(&g_handler_installed) && !tl.altstack)
        set_altstack();
    gust__coro *co = calloc(1, sizeof *co);
    gust_future *f = co ? gust_future_new(loop) : NULL;
    if (!f) {
        free(co);
        errno = ENOMEM;
        return NULL;
    }
    int r = stack_get(co);
    if (r == 0 && gust_loop_add_callback(loop, on_start, co) < 0) {
        stack_put(co);
        r = -ENOMEM;
    }
    if (r < 0) {
        gust_future_unref(f);
        free(co);
        errno = -r;
        return NULL;
    }
    co->loop = loop;
    co->fn = fn;
    co->data = data;
    co->future = gust_future_ref(f);
    co->state = CORO_NEW;
    co->holds = 1;
    co->node.cb = on_awaited_done;
    co->node.data = co;
    f->impl = co;
    f->cancel = on_cancel;
    gust__ctx_make(&co->ctx, co->stack_lo, co->stack_size, coro_entry, co);
    tl.alive++;
    return f;
}

int gust_await(gust_future *f, gust_value *out)
{
    assert(f);
    if (out)
        *out = GUST_VALUE_NONE;
    gust__coro *co = tl.current;
    if (!co || f == co->future) {
        gust_future_unref(f);
        return co ? -EDEADLK : -EPERM;
    }
    assert(f->loop == co->loop && "awaiting a future of another loop");
    if (!f->done && !co->cancel_requested) {
        co->awaiting = f;
        gust__future_add_node(f, &co->node);
        co->state = CORO_SUSPENDED;
        suspend(co);
        co->awaiting = NULL;
    }
    if (co->cancel_requested) {
        co->cancel_requested = false;
        gust__fnode_unlink(&co->node);
        gust_future_unref(f);
        return GUST_ECANCELED;
    }
    int r = gust_future_status(f);
    if (r == 0 && out)
        *out = gust_future_take(f);
    gust_future_unref(f);
    return r;
}
