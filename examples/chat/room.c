#include "room.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void chat_room_init(chat_room *room)
{
    memset(room, 0, sizeof *room);
    room->head.prev = room->head.next = &room->head;
}

static void drop_cache(chat_room *room)
{
    free(room->cache);
    room->cache = NULL;
    room->cache_len = 0;
}

void chat_room_clear(chat_room *room)
{
    for (size_t i = 0; i < room->count; i++)
        free(room->msgs[i].json);
    room->count = 0;
    drop_cache(room);
}

void chat_room_close(chat_room *room)
{
    chat_room_clear(room);
    while (room->head.next != &room->head)
        chat_room_unlisten(room, room->head.next);
}

uint64_t chat_parse_id(const char *s)
{
    if (!s || *s < '0' || *s > '9')
        return 0;
    uint64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
            return 0;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    return v;
}

/* Index of the first message with an id above cursor. */
static size_t first_after(const chat_room *room, uint64_t cursor)
{
    size_t lo = 0, hi = room->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (room->msgs[mid].id <= cursor)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int chat_room_add(chat_room *room, uint64_t id, const char *json, size_t len)
{
    /* With Redis, pub/sub order is publish order, which the script keeps
     * equal to id order; a reload may still bring one we have. */
    size_t at = first_after(room, id);
    if (at > 0 && room->msgs[at - 1].id == id)
        return 0;
    if (room->count == CHAT_HISTORY && at == 0)
        return 0;
    char *copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    memcpy(copy, json, len);
    copy[len] = '\0';
    if (room->count == CHAT_HISTORY) {
        free(room->msgs[0].json);
        memmove(&room->msgs[0], &room->msgs[1],
                (CHAT_HISTORY - 1) * sizeof room->msgs[0]);
        room->count--;
        at--;
    }
    memmove(&room->msgs[at + 1], &room->msgs[at],
            (room->count - at) * sizeof room->msgs[0]);
    room->msgs[at] = (chat_message){id, copy, len};
    room->count++;
    if (id > room->last_id)
        room->last_id = id;
    drop_cache(room);

    /* Listeners may leave (or finish) while notified: iter_next is moved
     * on by chat_room_unlisten when it is the one leaving. A listener
     * added during the broadcast is at the tail and hears this message
     * too, which is what it asked for. */
    const chat_message *m = &room->msgs[at];
    chat_message snapshot = *m;
    for (chat_listener *l = room->head.next; l != &room->head;) {
        room->iter_next = l->next;
        l->notify(l, &snapshot);
        l = room->iter_next;
    }
    room->iter_next = NULL;
    return 1;
}

size_t chat_room_count_since(const chat_room *room, uint64_t cursor)
{
    return room->count - first_after(room, cursor);
}

const char *chat_room_json_since(chat_room *room, uint64_t cursor,
                                 size_t *len)
{
    if (room->cache && room->cache_cursor == cursor) {
        *len = room->cache_len;
        return room->cache;
    }
    size_t from = first_after(room, cursor);
    static const char open[] = "{\"messages\": [", close[] = "]}";
    size_t n = sizeof open - 1 + sizeof close;
    for (size_t i = from; i < room->count; i++)
        n += room->msgs[i].len + 2;
    char *s = malloc(n);
    if (!s)
        return NULL;
    size_t o = 0;
    memcpy(s, open, sizeof open - 1);
    o += sizeof open - 1;
    for (size_t i = from; i < room->count; i++) {
        if (i > from) {
            s[o++] = ',';
            s[o++] = ' ';
        }
        memcpy(s + o, room->msgs[i].json, room->msgs[i].len);
        o += room->msgs[i].len;
    }
    memcpy(s + o, close, sizeof close);
    o += sizeof close - 1;
    drop_cache(room);
    room->cache = s;
    room->cache_len = o;
    room->cache_cursor = cursor;
    *len = o;
    return s;
}

void chat_room_release_all(chat_room *room)
{
    for (chat_listener *l = room->head.next; l != &room->head;) {
        room->iter_next = l->next;
        if (l->release)
            l->release(l);
        l = room->iter_next;
    }
    room->iter_next = NULL;
}

void chat_room_listen(chat_room *room, chat_listener *l, chat_notify_fn fn,
                      void *data)
{
    if (l->listening)
        return;
    l->notify = fn;
    l->data = data;
    l->prev = room->head.prev;
    l->next = &room->head;
    room->head.prev->next = l;
    room->head.prev = l;
    l->listening = 1;
    room->listeners++;
}

void chat_room_unlisten(chat_room *room, chat_listener *l)
{
    if (!l->listening)
        return;
    if (room->iter_next == l)
        room->iter_next = l->next;
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = NULL;
    l->listening = 0;
    room->listeners--;
}
