/* The WebSocket half: GET /a/socket?cursor=ID (signed in, same origin).
 *
 * Server to client, one JSON text per message:
 *     {"type": "messages", "messages": [...]}   on open, what came after
 *                                                the cursor (if anything)
 *     {"type": "message", "message": {...}}      each new message
 *     {"type": "error", "error": "...", "body": "..."}  a message not sent
 * Client to server: {"body": "..."}.
 *
 * Sockets listen to the same room as the long polls, so both kinds of
 * client see the same messages in the same order. A broadcast encodes
 * the frame text once for every socket.
 */
#include "chat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gust/websocket.h"

typedef struct sock_state {
    chat_listener listener;
    gust_websocket *ws;
    struct sock_state *prev, *next; /* every open socket */
    uint64_t serial;
    char user[CHAT_MAX_NAME + 1];
} sock_state;

static sock_state *sockets;
static uint64_t next_serial;

/* The frame of the latest broadcast, shared by every socket. */
static struct {
    uint64_t id;
    char *text;
    size_t len;
} frame;

static void send_error(gust_websocket *ws, const char *error,
                       const char *body)
{
    json_t *j = json_pack("{s:s, s:s, s:s}", "type", "error", "error", error,
                          "body", body ? body : "");
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (text)
        gust_websocket_write_message(ws, text, strlen(text), false);
    free(text);
    json_decref(j);
}

static void notify(chat_listener *l, const chat_message *m)
{
    sock_state *st = l->data;
    if (frame.id != m->id || !frame.text) {
        static const char pre[] = "{\"type\": \"message\", \"message\": ";
        char *t = malloc(sizeof pre - 1 + m->len + 2);
        if (!t)
            return;
        memcpy(t, pre, sizeof pre - 1);
        memcpy(t + sizeof pre - 1, m->json, m->len);
        t[sizeof pre - 1 + m->len] = '}';
        t[sizeof pre + m->len] = '\0';
        free(frame.text);
        frame.text = t;
        frame.len = sizeof pre + m->len;
        frame.id = m->id;
    }
    /* A peer that does not read is closed by the library past its cap. */
    gust_websocket_write_message(st->ws, frame.text, frame.len, false);
}

static int sock_open(gust_websocket *ws, gust_handler *h)
{
    sock_state *st = gust_websocket_state(ws);
    st->ws = ws;
    st->serial = ++next_serial;
    snprintf(st->user, sizeof st->user, "%s", gust_handler_current_user(h));
    st->next = sockets;
    if (sockets)
        sockets->prev = st;
    sockets = st;

    uint64_t cursor =
        chat_parse_id(gust_handler_get_argument(h, "cursor", "0"));
    if (chat_room_count_since(&chat.room, cursor) > 0) {
        size_t len;
        const char *json = chat_room_json_since(&chat.room, cursor, &len);
        if (!json)
            return -ENOMEM;
        /* {"messages": [...]} becomes {"type": "messages", "messages": ...} */
        static const char pre[] = "{\"type\": \"messages\", ";
        char *t = malloc(sizeof pre - 1 + len);
        if (!t)
            return -ENOMEM;
        memcpy(t, pre, sizeof pre - 1);
        memcpy(t + sizeof pre - 1, json + 1, len - 1);
        gust_websocket_write_message(ws, t, sizeof pre - 2 + len, false);
        free(t);
    }
    chat_room_listen(&chat.room, &st->listener, notify, st);
    return 0;
}

/* Publishing with Redis answers later: the socket may be gone by then,
 * so the callback finds it again by serial number. */
typedef struct ticket {
    uint64_t serial;
    char body[64];
} ticket;

static sock_state *find(uint64_t serial)
{
    for (sock_state *s = sockets; s; s = s->next)
        if (s->serial == serial)
            return s;
    return NULL;
}

static void published(int status, const char *json, size_t len, void *data)
{
    (void)json;
    (void)len;
    ticket *t = data;
    sock_state *st = status < 0 ? find(t->serial) : NULL;
    if (st)
        send_error(st->ws,
                   "Your message was not sent: the chat server has lost its "
                   "connection to Redis. Try again in a moment.",
                   t->body);
    free(t);
}

static int sock_message(gust_websocket *ws, const char *data, size_t len,
                        bool binary)
{
    sock_state *st = gust_websocket_state(ws);
    if (binary)
        return gust_websocket_close(ws, GUST_WS_CLOSE_UNSUPPORTED,
                                    "text frames only");
    json_t *j = json_loadb(data, len, 0, NULL);
    const char *body = json_string_value(json_object_get(j, "body"));
    const char *err = NULL;
    if (!body)
        err = "Send {\"body\": \"...\"}.";
    else if (!*body)
        err = "The message is empty.";
    else if (strlen(body) > CHAT_MAX_BODY)
        err = "The message is too long (2000 bytes at most).";
    if (err) {
        send_error(ws, err, body);
        json_decref(j);
        return 0;
    }
    json_t *m = chat_message_new(st->user, body, NULL);
    ticket *t = m ? malloc(sizeof *t) : NULL;
    int rc = -ENOMEM;
    if (t) {
        t->serial = st->serial;
        snprintf(t->body, sizeof t->body, "%s", body);
        rc = chat_publish(m, published, t);
        if (rc < 0)
            free(t);
    }
    if (rc == -ENOTCONN)
        send_error(ws,
                   "Your message was not sent: the chat server has lost its "
                   "connection to Redis. Try again in a moment.",
                   body);
    json_decref(m);
    json_decref(j);
    return rc == -ENOMEM ? rc : 0;
}

static void sock_close(gust_websocket *ws, int code, const char *reason,
                       bool clean)
{
    (void)code;
    (void)reason;
    (void)clean;
    sock_state *st = gust_websocket_state(ws);
    chat_room_unlisten(&chat.room, &st->listener);
    if (st->prev)
        st->prev->next = st->next;
    else if (sockets == st)
        sockets = st->next;
    if (st->next)
        st->next->prev = st->prev;
    st->prev = st->next = NULL;
}

static const gust_websocket_settings settings = {
    .max_message_size = 64 * 1024,
    .max_queued_bytes = 4 << 20,
    .ping_interval = 30,
    .compression = true,
    /* Per-message compressor state: an idle socket holds no zlib memory,
     * which is what lets one process keep many thousands of them. */
    .no_context_takeover = true,
};

static const gust_websocket_class chat_socket = GUST_WEBSOCKET_CLASS(
    /* Not .handler.base = &chat_common: the app keeps a merged copy of a
     * class with a base, and gust_websocket_get would then read past that
     * copy looking for the WebSocket class around it. */
    .handler.name = "socket", .handler.get_current_user = chat_current_user,
    .handler.write_error = chat_write_error,
    .handler.prepare = chat_require_api_user,
    .state_size = sizeof(sock_state), .settings = &settings,
    .open = sock_open, .on_message = sock_message, .on_close = sock_close);

const gust_handler_class *chat_websocket_class(void)
{
    return &chat_socket.handler;
}

void chat_websocket_close_all(void)
{
    while (sockets) {
        chat_room_unlisten(&chat.room, &sockets->listener);
        sockets = sockets->next;
    }
    free(frame.text);
    frame.text = NULL;
}
