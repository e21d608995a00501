/* The counting calls of metrics.c, made by the HTTP server on its hot path
 * (http1_connection.c, http_server.c). Not installed. */
#ifndef GUST_METRICS_INTERNAL_H
#define GUST_METRICS_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "gust/metrics.h"

/* One worker's slot in the shared table, written only by that worker
 * (its threads, hence atomics; relaxed: a scrape needs no ordering). A
 * cache line of its own per slot start, so that workers do not share
 * lines. */
typedef struct gust__metrics_slot {
    _Atomic long pid; /* 0: never used */
    _Atomic int task_id;
    _Atomic uint64_t requests[6];
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic int64_t connections_open;
    _Atomic uint64_t connections_total;
    _Atomic int64_t websockets_open;
    _Atomic uint64_t duration_buckets[GUST_METRICS_BUCKETS + 1];
    _Atomic uint64_t duration_sum_us;
} __attribute__((aligned(64))) gust__metrics_slot;

/* This process's slot (NULL until first used, and again after a fork). */
extern gust__metrics_slot *_Atomic gust__metrics_self;
gust__metrics_slot *gust__metrics_attach(void);

static inline gust__metrics_slot *gust__metrics_me(void)
{
    gust__metrics_slot *s =
        atomic_load_explicit(&gust__metrics_self, memory_order_relaxed);
    return s ? s : gust__metrics_attach();
}

#define GUST__METRICS_ADD(field, n)                                            \
    atomic_fetch_add_explicit(&gust__metrics_me()->field, (n),                 \
                              memory_order_relaxed)

/* A connection opened (+1) or went away (-1). */
static inline void gust__metrics_conn(int delta)
{
    gust__metrics_slot *s = gust__metrics_me();
    atomic_fetch_add_explicit(&s->connections_open, delta, memory_order_relaxed);
    if (delta > 0)
        atomic_fetch_add_explicit(&s->connections_total, 1, memory_order_relaxed);
}

static inline void gust__metrics_bytes_in(size_t n)
{
    GUST__METRICS_ADD(bytes_in, n);
}

static inline void gust__metrics_bytes_out(size_t n)
{
    GUST__METRICS_ADD(bytes_out, n);
}

/* A response finished with status; start is the request's start_time
 * (loop time, seconds), 0 for one answered before it had one. */
void gust__metrics_request(int status, double start);

#endif /* GUST_METRICS_INTERNAL_H */
