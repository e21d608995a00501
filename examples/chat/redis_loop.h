/* hiredis's asynchronous API on the Gust loop: the context's socket is
 * watched with gust_loop_add_handler, reads and writes run from the
 * loop's fd phase. No thread and no blocking call (give Redis as an IP
 * address: hiredis resolves a host name with a blocking getaddrinfo). */
#ifndef CHAT_REDIS_LOOP_H
#define CHAT_REDIS_LOOP_H

#include <hiredis/async.h>

#include "gust/loop.h"

/* Hooks ac to loop. Returns 0, -EEXIST when ac already has hooks, or
 * -ENOMEM. The hooks are undone when hiredis frees ac. */
int chat_redis_attach(redisAsyncContext *ac, gust_loop *loop);

#endif
