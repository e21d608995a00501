/* The counting calls of metrics.c, made by the HTTP server on its hot path
 * (http_server.c, http1_connection.c, http1_read.c, http1_write.c,
 * http2_connection.c), by the
 * loop at the end of a turn (loop.c) and by the access log (web_access_log.c). Not installed. */
#ifndef GUST_METRICS_INTERNAL_H
#define GUST_METRICS_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gust/metrics.h"

/* One worker's slot in the shared table, written only by that worker
 * (its threads, hence atomics; relaxed: a scrape needs no ordering). Each
 * slot starts a cache line, so that workers do not share lines. */
typedef struct gust__metrics_slot {
    _Atomic long pid; /* 0: never used */
    _Atomic int task_id;
    _Atomic uint64_t requests[6];
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic int64_t connections_open;
    _Atomic uint64_t connections_total;
    _Atomic int64_t websockets_open;
    _Atomic int64_t http2_hibernated;
    _Atomic uint64_t duration_buckets[GUST_METRICS_BUCKETS + 1];
    _Atomic uint64_t duration_sum_us;
} __attribute__((aligned(64))) gust__metrics_slot;

/* This process's slot (NULL until first used, and again after a fork). */
extern gust__metrics_slot *_Atomic gust__metrics_self;
gust__metrics_slot *gust__metrics_attach(void);

/* Counts not yet added to the slot: a thread counts here with plain adds
 * (a request costs no atomic instruction), and the loop adds them to the
 * shared slot once per turn (gust__metrics_turn_end), so a scrape sees
 * figures at most one loop turn old. */
typedef struct gust__metrics_local {
    bool dirty;
    int64_t connections_open, websockets_open, http2_hibernated; /* deltas */
    uint64_t connections_total;
    uint64_t requests[6];
    uint64_t bytes_in, bytes_out;
    uint64_t duration_buckets[GUST_METRICS_BUCKETS + 1];
    uint64_t duration_sum_us;
    /* A clock reading another layer made for this request at its end (the
     * access log's), so that the request is timed with one reading. */
    const void *time_req;
    uint64_t time_ns;
    /* The last clock reading (loop clock, ns) made for a request's end,
     * and the time stamp counter just before it. */
    uint64_t clock_ns, clock_tsc;
} gust__metrics_local;

extern _Thread_local gust__metrics_local gust__metrics_tl;

/* Adds this thread's counts to the process's slot. */
void gust__metrics_flush(void);

/* At the end of each loop turn. */
static inline void gust__metrics_turn_end(void)
{
    if (gust__metrics_tl.dirty)
        gust__metrics_flush();
}

/* A connection opened (+1) or went away (-1). */
static inline void gust__metrics_conn(int delta)
{
    gust__metrics_tl.connections_open += delta;
    if (delta > 0)
        gust__metrics_tl.connections_total++;
    gust__metrics_tl.dirty = true;
}

/* An HTTP/2 connection hibernated (+1) or woke or closed hibernated (-1). */
static inline void gust__metrics_h2_hibernated(int delta)
{
    gust__metrics_tl.http2_hibernated += delta;
    gust__metrics_tl.dirty = true;
}

static inline void gust__metrics_bytes_in(size_t n)
{
    gust__metrics_tl.bytes_in += n;
    gust__metrics_tl.dirty = true;
}

static inline void gust__metrics_bytes_out(size_t n)
{
    gust__metrics_tl.bytes_out += n;
    gust__metrics_tl.dirty = true;
}

/* The access log read the clock (now_ns, the loop's clock) as req ended:
 * gust__metrics_request() takes that instead of reading it again. */
static inline void gust__metrics_note_end(const void *req, uint64_t now_ns)
{
    gust__metrics_tl.time_req = req;
    gust__metrics_tl.time_ns = now_ns;
}

/* The loop's clock (CLOCK_MONOTONIC, ns) as a request that started at
 * start_ns (same clock) ends: a reading shared with the requests that
 * ended at most 8 us before (on x86-64 with an invariant TSC; elsewhere
 * read each time), never earlier than start_ns. */
uint64_t gust__metrics_clock_ns(uint64_t start_ns);

/* A response to req finished with status; start is its start_time (loop
 * time, seconds), 0 for one answered before it had one. */
void gust__metrics_request(const void *req, int status, double start);

#endif /* GUST_METRICS_INTERNAL_H */
