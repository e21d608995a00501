/* Built without libhiredis: no --redis. */
#include <errno.h>

#include "redis_room.h"

bool chat_redis_available(void)
{
    return false;
}

chat_redis *chat_redis_new(gust_loop *loop, const char *host, int port,
                           chat_room *room)
{
    (void)loop, (void)host, (void)port, (void)room;
    return NULL;
}

void chat_redis_free(chat_redis *r)
{
    (void)r;
}

bool chat_redis_up(const chat_redis *r)
{
    (void)r;
    return false;
}

int chat_redis_publish(chat_redis *r, json_t *msg, chat_published_fn done,
                       void *data)
{
    (void)r, (void)msg, (void)done, (void)data;
    return -ENOTCONN;
}
