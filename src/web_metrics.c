/* The serving half of metrics.h (web framework level): a handler class and
 * a responder for a bare gust_http_server, both answering with
 * gust_metrics_render()'s text. The counters themselves are lower down
 * (src/metrics.c), where the loop and the HTTP server count into them. */

#include <errno.h>
#include <stdlib.h>

#include "gust/metrics_handler.h"

int gust_metrics_respond(gust_http_request *req)
{
    size_t len;
    char *body = gust_metrics_render(&len);
    if (!body)
        return gust_http_respond(req, 500, "text/plain", "out of memory\n", 14);
    int rc = gust_http_respond(req, 200, GUST_METRICS_CONTENT_TYPE, body, len);
    free(body);
    return rc;
}

static int metrics_get(gust_handler *h)
{
    size_t len;
    char *body = gust_metrics_render(&len);
    if (!body)
        return -ENOMEM;
    int rc = gust_handler_set_header(h, "Content-Type", GUST_METRICS_CONTENT_TYPE);
    if (rc == 0)
        rc = gust_handler_set_header(h, "Cache-Control", "no-store");
    if (rc == 0)
        rc = gust_handler_write(h, body, len);
    free(body);
    return rc;
}

const gust_handler_class gust_metrics_handler = {
    .name = "MetricsHandler",
    .get = metrics_get,
};
