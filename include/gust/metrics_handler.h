/* Serving metrics.h's figures over HTTP, in the Prometheus text format
 * (0.0.4): a handler class for an app's route, and a responder for a bare
 * gust_http_server's request callback. A header of its own because it sits
 * on the web framework, above the counters (which the loop and the HTTP
 * server call, so they cannot depend on either).
 *
 *     GUST_ROUTE("/metrics", &gust_metrics_handler)
 */
#ifndef GUST_METRICS_HANDLER_H
#define GUST_METRICS_HANDLER_H

#include "gust/common.h"
#include "gust/http_server.h"
#include "gust/metrics.h"
#include "gust/web.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Answers req (of a bare gust_http_server) with the rendered metrics:
 * 200, or 500 when out of memory. Returns what gust_http_respond returns. */
GUST_EXTERN int gust_metrics_respond(gust_http_request *req);

/* A handler class whose GET (and HEAD) serves the rendered metrics. */
GUST_EXTERN extern const gust_handler_class gust_metrics_handler;

#ifdef __cplusplus
}
#endif

#endif /* GUST_METRICS_HANDLER_H */
