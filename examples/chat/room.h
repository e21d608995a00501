/* The room: the last CHAT_HISTORY messages, in id order, and the clients
 * waiting for the next one (long-polling requests, WebSocket connections).
 *
 * A message is kept as its JSON text, so that a broadcast to thousands of
 * clients copies bytes instead of encoding a value per client. Ids are
 * positive and increasing: assigned here in the embedded mode, by Redis
 * (INCR inside one script) with --redis, where every process's room
 * mirrors the shared one through pub/sub.
 */
#ifndef CHAT_ROOM_H
#define CHAT_ROOM_H

#include <stddef.h>
#include <stdint.h>

#define CHAT_HISTORY 200

typedef struct chat_message {
    uint64_t id;
    char *json; /* malloc'ed, NUL-terminated: {"id": "42", ...} */
    size_t len;
} chat_message;

typedef struct chat_listener chat_listener;

/* Called once per new message, while listening. The listener may stop
 * listening (and its owner finish) from inside the call. */
typedef void (*chat_notify_fn)(chat_listener *l, const chat_message *m);

struct chat_listener {
    chat_listener *prev, *next;
    chat_notify_fn notify;
    /* Optional: asked to stop waiting now (chat_room_release_all). */
    void (*release)(chat_listener *l);
    void *data;
    int listening;
};

typedef struct chat_room {
    chat_message msgs[CHAT_HISTORY]; /* oldest first, count of them used */
    size_t count;
    uint64_t last_id;
    chat_listener head; /* sentinel of a circular list */
    size_t listeners;
    chat_listener *iter_next; /* the next one to notify in a broadcast */
    /* "{"messages": [...]}" since cache_cursor, built once per broadcast
     * for every waiter at the same cursor. */
    uint64_t cache_cursor;
    char *cache;
    size_t cache_len;
} chat_room;

void chat_room_init(chat_room *room);
void chat_room_close(chat_room *room);

/* Adds a message (json copied; its "id" must be the decimal id) and
 * notifies every listener. A message already present (same id) is
 * ignored. Returns 1 when added, 0 when a duplicate or older than the
 * whole history, -ENOMEM. */
int chat_room_add(chat_room *room, uint64_t id, const char *json, size_t len);

/* Drops every message (before a reload from Redis). */
void chat_room_clear(chat_room *room);

/* Number of messages with an id above cursor. */
size_t chat_room_count_since(const chat_room *room, uint64_t cursor);

/* {"messages": [...]} with the messages above cursor, in order. The
 * result is borrowed from the room, valid until the next call (of this,
 * add or clear). NULL on -ENOMEM. */
const char *chat_room_json_since(chat_room *room, uint64_t cursor,
                                 size_t *len);

void chat_room_listen(chat_room *room, chat_listener *l, chat_notify_fn fn,
                      void *data);
void chat_room_unlisten(chat_room *room, chat_listener *l);

/* Calls release on every listener that has one (which must stop
 * listening): at shutdown, long polls are answered at once rather than
 * holding the server's graceful close until they time out. */
void chat_room_release_all(chat_room *room);

/* Parses a cursor or message id ("42"); 0 for anything else. */
uint64_t chat_parse_id(const char *s);

#endif
