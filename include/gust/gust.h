/* Gust: Tornado's architecture in C. The umbrella header: includes every
 * public layer, lowest first. */
#ifndef GUST_GUST_H
#define GUST_GUST_H

#include "gust/common.h"
#include "gust/error.h"
#include "gust/log.h"
#include "gust/options.h"
#include "gust/loop.h"
#include "gust/future.h"
#include "gust/locks.h"
#include "gust/queue.h"
#include "gust/stream.h"
#include "gust/net.h"
#include "gust/process.h"
#include "gust/tcp_server.h"
#include "gust/arena.h"
#include "gust/http.h"
#include "gust/http_server.h"
#include "gust/http_client.h"
#include "gust/tls.h"
#include "gust/web.h"
#include "gust/websocket.h"
#include "gust/metrics.h"
#include "gust/metrics_handler.h"

/* GUST_VERSION_* are defined in common.h. */

#endif /* GUST_GUST_H */
