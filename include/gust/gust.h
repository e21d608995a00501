/* Gust: Tornado's architecture in C. The umbrella header: includes every
 * public layer, lowest first. */
#ifndef GUST_GUST_H
#define GUST_GUST_H

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

#define GUST_VERSION_MAJOR 0
#define GUST_VERSION_MINOR 1
#define GUST_VERSION_PATCH 0
#define GUST_VERSION_STRING "0.1.0"

#endif /* GUST_GUST_H */
