/* Internal calls into streams made by other Gust modules. Not installed. */
#ifndef GUST_STREAM_INTERNAL_H
#define GUST_STREAM_INTERNAL_H

#include "gust/stream.h"

/* Called once, just before the stream's memory is freed (after the user's
 * close callback has returned). The TCP server uses it to count open
 * connections for max_connections without taking the user's close callback.
 * One hook per stream; NULL removes it. */
typedef void (*gust__stream_free_hook)(gust_stream *stream, void *data);
void gust__stream_set_free_hook(gust_stream *stream, gust__stream_free_hook fn,
                                void *data);

#endif /* GUST_STREAM_INTERNAL_H */
