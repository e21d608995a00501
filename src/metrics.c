/* Metrics (metrics.h): a table of per-worker slots in memory shared by
 * every process forked from the same parent, and its Prometheus text.
 *
 * Why a shared mapping: workers are separate processes, and a scraper
 * reaches whichever one the kernel hands its connection to. With every
 * worker writing its own slot of one MAP_SHARED table made before the
 * first fork, the worker that answers a scrape reads all slots: no
 * messages between processes, no aggregator, and a worker's figures are
 * visible until it is restarted. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "gust/error.h"
#include "gust/common.h"
#include "metrics_internal.h"

const uint32_t gust_metrics_bucket_us[GUST_METRICS_BUCKETS] = {
    100,    250,    500,    1000,    2500,    5000,    10000,   25000,
    50000,  100000, 250000, 500000,  1000000, 2500000, 5000000, 10000000,
};

gust__metrics_slot *_Atomic gust__metrics_self;
_Thread_local gust__metrics_local gust__metrics_tl;

static gust__metrics_slot *_Atomic table; /* GUST_METRICS_MAX_WORKERS + 1 */
static gust__metrics_slot private_slot;   /* beyond the table, or no mmap */
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static gust__metrics_slot *get_table(void)
{
    gust__metrics_slot *t = atomic_load(&table);
    if (t)
        return t;
    pthread_mutex_lock(&table_lock);
    t = atomic_load(&table);
    if (!t) {
        void *p = mmap(NULL, sizeof *t * (GUST_METRICS_MAX_WORKERS + 1),
                       PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                       -1, 0);
        if (p != MAP_FAILED) {
            t = p;
            atomic_store(&table, t);
        }
    }
    pthread_mutex_unlock(&table_lock);
    return t;
}

/* Before any fork the table must exist, or parent and children would each
 * make their own. */
static void on_fork_prepare(void)
{
    get_table();
    gust__metrics_flush(); /* counted once, by the parent */
}

/* The child finds its slot on first use, once it knows its task id. */
static void on_fork_child(void)
{
    atomic_store(&gust__metrics_self, NULL);
}

/* A constructor, because the table must exist before a fork that may come
 * before anything is counted (start forms 2 and 3 fork first). */
__attribute__((constructor)) static void register_fork_handlers(void)
{
    pthread_atfork(on_fork_prepare, NULL, on_fork_child);
}

static inline gust__metrics_slot *gust__metrics_me(void)
{
    gust__metrics_slot *s =
        atomic_load_explicit(&gust__metrics_self, memory_order_relaxed);
    return s ? s : gust__metrics_attach();
}

gust__metrics_slot *gust__metrics_attach(void)
{
    gust__metrics_slot *t = get_table();
    int task = gust_task_id();
    int idx = task + 1; /* slot 0: a process that did not fork */
    gust__metrics_slot *s =
        t && idx >= 0 && idx <= GUST_METRICS_MAX_WORKERS ? &t[idx]
                                                          : &private_slot;
    long pid = (long)getpid();
    if (atomic_load(&s->pid) != pid) {
        /* A worker restarted in its predecessor's slot: the counters go
         * on, what was open then is not open now. */
        atomic_store(&s->connections_open, 0);
        atomic_store(&s->websockets_open, 0);
        atomic_store(&s->http2_hibernated, 0);
        atomic_store(&s->task_id, task);
        atomic_store(&s->pid, pid);
    }
    atomic_store(&gust__metrics_self, s);
    return s;
}

/* The clock at a request's end. One clock_gettime() per request was most
 * of what the metrics cost a pipelined request (4-6%): so the reading is
 * shared by the requests that end within REUSE_TICKS of the time stamp
 * counter after it, which costs a few cycles to read and, where it is
 * invariant (CPUID says so), ticks at a constant rate of 1 GHz or more
 * on every core. 8,000 ticks is at most 8 us (4 us at 2 GHz): a reading
 * is never older than that, under the access log's 10 us and the
 * histogram's 100 us. Elsewhere, and where the counter is not invariant,
 * every request reads the clock. */
#define REUSE_TICKS 8000u
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <x86intrin.h>
static bool tsc_invariant;

__attribute__((constructor)) static void check_tsc(void)
{
    unsigned a, b, c, d;
    tsc_invariant = __get_cpuid(0x80000007, &a, &b, &c, &d) && (d & (1u << 8));
}
#endif

static uint64_t clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t gust__metrics_clock_ns(uint64_t start_ns)
{
    gust__metrics_local *l = &gust__metrics_tl;
#if defined(__x86_64__) && defined(__GNUC__)
    if (tsc_invariant) {
        uint64_t t = __rdtsc();
        /* Unsigned: a counter behind the reading's (another core's, if
         * they are not in step) is a huge difference, and reads again. */
        if (t - l->clock_tsc < REUSE_TICKS && l->clock_ns >= start_ns)
            return l->clock_ns;
        l->clock_tsc = t;
        return l->clock_ns = clock_ns();
    }
#endif
    (void)l;
    (void)start_ns;
    return clock_ns();
}

void gust__metrics_request(const void *req, int status, double start)
{
    gust__metrics_local *l = &gust__metrics_tl;
    int cls = status >= 100 && status < 600 ? status / 100 : 0;
    l->requests[cls]++;
    uint64_t us = 0;
    if (start > 0) {
        uint64_t start_ns = (uint64_t)(start * 1e9);
        uint64_t now = 0;
        /* A stale note (its request went away unfinished, and another
         * reuses the address) is older than this request's start. */
        if (req && l->time_req == req)
            now = l->time_ns;
        if (now < start_ns)
            now = gust__metrics_clock_ns(start_ns);
        if (now > start_ns)
            us = (now - start_ns) / 1000;
    }
    l->time_req = NULL;
    int b = 0;
    while (b < GUST_METRICS_BUCKETS && us > gust_metrics_bucket_us[b])
        b++;
    l->duration_buckets[b]++;
    l->duration_sum_us += us;
    l->dirty = true;
}

#define ADD(field, n) atomic_fetch_add_explicit(&(field), (n), memory_order_relaxed)

void gust__metrics_flush(void)
{
    gust__metrics_local *l = &gust__metrics_tl;
    if (!l->dirty)
        return;
    gust__metrics_slot *s = gust__metrics_me();
    if (l->connections_open)
        ADD(s->connections_open, l->connections_open);
    if (l->websockets_open)
        ADD(s->websockets_open, l->websockets_open);
    if (l->http2_hibernated)
        ADD(s->http2_hibernated, l->http2_hibernated);
    if (l->connections_total)
        ADD(s->connections_total, l->connections_total);
    for (int i = 0; i < 6; i++)
        if (l->requests[i])
            ADD(s->requests[i], l->requests[i]);
    if (l->bytes_in)
        ADD(s->bytes_in, l->bytes_in);
    if (l->bytes_out)
        ADD(s->bytes_out, l->bytes_out);
    for (int i = 0; i <= GUST_METRICS_BUCKETS; i++)
        if (l->duration_buckets[i])
            ADD(s->duration_buckets[i], l->duration_buckets[i]);
    if (l->duration_sum_us)
        ADD(s->duration_sum_us, l->duration_sum_us);
    const void *time_req = l->time_req;
    uint64_t time_ns = l->time_ns;
    memset(l, 0, sizeof *l);
    l->time_req = time_req;
    l->time_ns = time_ns;
}

void gust_metrics_websocket_opened(void)
{
    gust__metrics_tl.websockets_open++;
    gust__metrics_tl.dirty = true;
    gust__metrics_flush();
}

void gust_metrics_websocket_closed(void)
{
    gust__metrics_tl.websockets_open--;
    gust__metrics_tl.dirty = true;
    gust__metrics_flush();
}

/* ---- Reading ------------------------------------------------------------- */

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void read_slot(gust__metrics_slot *s, gust_metrics_worker *w)
{
    w->task_id = LOAD(s->task_id);
    w->pid = LOAD(s->pid);
    for (int i = 0; i < 6; i++)
        w->requests[i] = LOAD(s->requests[i]);
    w->bytes_in = LOAD(s->bytes_in);
    w->bytes_out = LOAD(s->bytes_out);
    w->connections_open = LOAD(s->connections_open);
    w->connections_total = LOAD(s->connections_total);
    w->websockets_open = LOAD(s->websockets_open);
    w->http2_connections_hibernated = LOAD(s->http2_hibernated);
    for (int i = 0; i <= GUST_METRICS_BUCKETS; i++)
        w->duration_buckets[i] = LOAD(s->duration_buckets[i]);
    w->duration_sum_us = LOAD(s->duration_sum_us);
}

void gust_metrics_get(gust_metrics_worker *out)
{
    gust__metrics_flush();
    read_slot(gust__metrics_me(), out);
}

int gust_metrics_get_all(gust_metrics_worker *out, int max)
{
    gust__metrics_me(); /* this process is among them */
    gust__metrics_flush();
    gust__metrics_slot *t = get_table();
    int n = 0;
    if (!t || atomic_load(&gust__metrics_self) == &private_slot) {
        if (n < max)
            read_slot(&private_slot, &out[n]);
        n++;
    }
    for (int i = 0; t && i <= GUST_METRICS_MAX_WORKERS; i++) {
        if (LOAD(t[i].pid) == 0)
            continue;
        if (n < max)
            read_slot(&t[i], &out[n]);
        n++;
    }
    return n;
}

/* ---- Prometheus text ----------------------------------------------------- */

typedef struct text {
    char *p;
    size_t len, cap;
    bool failed;
} text;

static void add(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 + (size_t)n;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->failed = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

static void worker_label(char *buf, size_t n, const gust_metrics_worker *w)
{
    if (w->task_id < 0)
        snprintf(buf, n, "worker=\"main\"");
    else
        snprintf(buf, n, "worker=\"%d\"", w->task_id);
}

static void family(text *t, const char *name, const char *type,
                   const char *help)
{
    add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The families with one value per worker. */
static const struct {
    const char *name, *type, *help;
    size_t offset;
    bool is_signed;
} single[] = {
    {"gust_http_received_bytes_total", "counter",
     "Bytes read from HTTP connections.",
     offsetof(gust_metrics_worker, bytes_in), false},
    {"gust_http_sent_bytes_total", "counter",
     "Bytes written to HTTP connections (heads and bodies).",
     offsetof(gust_metrics_worker, bytes_out), false},
    {"gust_http_connections_open", "gauge", "HTTP connections open now.",
     offsetof(gust_metrics_worker, connections_open), true},
    {"gust_http_connections_total", "counter", "HTTP connections accepted.",
     offsetof(gust_metrics_worker, connections_total), false},
    {"gust_websockets_open", "gauge", "WebSockets open now.",
     offsetof(gust_metrics_worker, websockets_open), true},
    {"gust_http2_connections_hibernated", "gauge",
     "HTTP/2 connections idle with their session given back now.",
     offsetof(gust_metrics_worker, http2_connections_hibernated), true},
};

char *gust_metrics_render(size_t *len)
{
    int max = GUST_METRICS_MAX_WORKERS + 2;
    gust_metrics_worker *ws = malloc(sizeof *ws * (size_t)max);
    text t = {.p = malloc(8192), .cap = 8192};
    if (!ws || !t.p) {
        free(ws);
        free(t.p);
        errno = ENOMEM;
        return NULL;
    }
    int n = gust_metrics_get_all(ws, max);
    if (n > max)
        n = max;
    char lab[32];

    family(&t, "gust_http_requests_total", "counter",
           "HTTP responses finished, by status class.");
    for (int i = 0; i < n; i++) {
        worker_label(lab, sizeof lab, &ws[i]);
        for (int c = 1; c <= 5; c++)
            add(&t, "gust_http_requests_total{%s,code=\"%dxx\"} %llu\n", lab,
                c, (unsigned long long)ws[i].requests[c]);
        add(&t, "gust_http_requests_total{%s,code=\"other\"} %llu\n", lab,
            (unsigned long long)ws[i].requests[0]);
    }
    for (size_t k = 0; k < sizeof single / sizeof single[0]; k++) {
        family(&t, single[k].name, single[k].type, single[k].help);
        for (int i = 0; i < n; i++) {
            worker_label(lab, sizeof lab, &ws[i]);
            const char *field = (const char *)&ws[i] + single[k].offset;
            long long v;
            if (single[k].is_signed) {
                int64_t x;
                memcpy(&x, field, sizeof x);
                v = (long long)x;
            } else {
                uint64_t x;
                memcpy(&x, field, sizeof x);
                v = (long long)x;
            }
            add(&t, "%s{%s} %lld\n", single[k].name, lab, v);
        }
    }
    family(&t, "gust_http_request_duration_seconds", "histogram",
           "Time from a request's complete head to the end of its response.");
    for (int i = 0; i < n; i++) {
        worker_label(lab, sizeof lab, &ws[i]);
        uint64_t cum = 0;
        for (int b = 0; b < GUST_METRICS_BUCKETS; b++) {
            cum += ws[i].duration_buckets[b];
            add(&t, "gust_http_request_duration_seconds_bucket{%s,le=\"%g\"} %llu\n",
                lab, gust_metrics_bucket_us[b] / 1e6, (unsigned long long)cum);
        }
        cum += ws[i].duration_buckets[GUST_METRICS_BUCKETS];
        add(&t, "gust_http_request_duration_seconds_bucket{%s,le=\"+Inf\"} %llu\n",
            lab, (unsigned long long)cum);
        add(&t, "gust_http_request_duration_seconds_sum{%s} %.6f\n", lab,
            (double)ws[i].duration_sum_us / 1e6);
        add(&t, "gust_http_request_duration_seconds_count{%s} %llu\n", lab,
            (unsigned long long)cum);
    }
    family(&t, "gust_worker_info", "gauge",
           "One per worker, with its process id.");
    for (int i = 0; i < n; i++) {
        worker_label(lab, sizeof lab, &ws[i]);
        add(&t, "gust_worker_info{%s,pid=\"%ld\"} 1\n", lab, ws[i].pid);
    }
    free(ws);
    if (t.failed) {
        free(t.p);
        errno = ENOMEM;
        return NULL;
    }
    if (len)
        *len = t.len;
    return t.p;
}
