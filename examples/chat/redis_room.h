/* The room shared through Redis (--redis=HOST:PORT), on hiredis's
 * asynchronous API run by the Gust loop (redis_loop.c): no thread, no
 * blocking call.
 *
 * Keys: chat:next_id (INCR), chat:history (a list capped at CHAT_HISTORY,
 * oldest first), channel chat:messages (each new message's JSON). One
 * Lua script gives a message its id, appends it to the history and
 * publishes it, so ids, history order and publish order agree across
 * every process. Each process subscribes and adds what it hears to its own
 * chat_room, which its clients read; on (re)connection it reloads the
 * history first. A lost connection is retried with back-off (0.1 s
 * doubling to 5 s); meanwhile publishing fails at once (-ENOTCONN) so that
 * the sender is told.
 */
#ifndef CHAT_REDIS_ROOM_H
#define CHAT_REDIS_ROOM_H

#include <stdbool.h>

#include "chat.h"

/* False when built without libhiredis (the rest are then stubs). */
bool chat_redis_available(void);

/* Starts connecting (and keeps reconnecting) to host:port; messages go
 * into room. NULL on -ENOMEM. */
chat_redis *chat_redis_new(gust_loop *loop, const char *host, int port,
                           chat_room *room);
/* Disconnects; pending publishes get -ECANCELED. NULL: no-op. */
void chat_redis_free(chat_redis *r);

/* True while both connections (commands, subscription) are up and the
 * history has been loaded. */
bool chat_redis_up(const chat_redis *r);

/* See chat_publish(). -ENOTCONN while Redis is down. */
int chat_redis_publish(chat_redis *r, json_t *msg, chat_published_fn done,
                       void *data);

#endif
