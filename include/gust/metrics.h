/* Metrics: what every HTTP server of this process counts, per worker, and
 * a handler that serves them in the Prometheus text format (0.0.4).
 *
 * Counted by gust_http_server (so also by every gust_app): requests
 * answered by status class, bytes read and written, connections open, a
 * histogram of request durations (from the complete head to the end of
 * the response) with fixed buckets, and WebSockets open. Counting costs a
 * few relaxed atomic additions per request and no allocation.
 *
 * Precision of a duration: it starts at the loop's time of the turn in
 * which the head was complete (gust_loop_time(), as Tornado's
 * request_time) and ends at a CLOCK_MONOTONIC reading that may be shared
 * with requests that ended just before, on x86-64 with an invariant time
 * stamp counter: a reading is reused only while the counter has moved
 * less than 8,000 ticks since it, which is at most 8 us (4 us at 2 GHz,
 * the counter's rate being at least 1 GHz), never before the request's
 * start. So an end is at most 8 us early: under the smallest bucket
 * (100 us) and the access log's 0.01 ms. Elsewhere each request reads
 * the clock.
 *
 * Workers: each process writes its own slot of a table shared by every
 * process forked from the same parent (start forms 2 and 3, and any
 * gust_fork_processes()), so one scrape of any worker's port shows every
 * worker's figures, labelled worker="<task id>" (worker="main" in a
 * process that did not fork). A worker restarted after a crash takes its
 * predecessor's slot: counters go on from where they were, the gauges
 * (connections and WebSockets open) start again from 0.
 *
 *     GUST_ROUTE("/metrics", &gust_metrics_handler)  (metrics_handler.h)
 *
 * Serve it on a route only your monitoring reaches (or on a separate
 * server bound to a private address): the figures tell how busy the
 * service is. */
#ifndef GUST_METRICS_H
#define GUST_METRICS_H

#include "gust/common.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Slots of the shared table: workers with a task id beyond it count only
 * for themselves (they are not seen by other workers' scrapes). */
#define GUST_METRICS_MAX_WORKERS 256

/* Upper bounds of the duration histogram, in microseconds (the last
 * bucket, +Inf, is implied). */
#define GUST_METRICS_BUCKETS 16
GUST_EXTERN extern const uint32_t gust_metrics_bucket_us[GUST_METRICS_BUCKETS];

/* One worker's figures, as read by gust_metrics_get(). */
typedef struct gust_metrics_worker {
    int task_id; /* -1: a process that did not fork */
    long pid;
    uint64_t requests[6]; /* by status class 1xx..5xx; [0]: other */
    uint64_t bytes_in, bytes_out;
    int64_t connections_open;
    uint64_t connections_total;
    int64_t websockets_open;
    /* HTTP/2 connections idle with their session given back
     * (http2_hibernate_after in http_server.h). */
    int64_t http2_connections_hibernated;
    uint64_t duration_buckets[GUST_METRICS_BUCKETS + 1]; /* not cumulative */
    uint64_t duration_sum_us;
} gust_metrics_worker;

/* The calling process's own figures. */
GUST_EXTERN void gust_metrics_get(gust_metrics_worker *out);

/* Every worker's figures into out (room for max), in task id order;
 * returns how many there are (may exceed max; only max are filled). */
GUST_EXTERN int gust_metrics_get_all(gust_metrics_worker *out, int max);

/* The WebSocket code calls these when a WebSocket opens and closes
 * (connections upgraded; the gauge gust_websockets_open). */
GUST_EXTERN void gust_metrics_websocket_opened(void);
GUST_EXTERN void gust_metrics_websocket_closed(void);

/* Every worker's figures as Prometheus text (format 0.0.4), malloc'd and
 * NUL-terminated; *len (may be NULL) gets its length. The caller frees
 * it. NULL (errno ENOMEM) when out of memory. */
GUST_EXTERN char *gust_metrics_render(size_t *len);

/* The Content-Type of that text. */
#define GUST_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#ifdef __cplusplus
}
#endif

#endif /* GUST_METRICS_H */
