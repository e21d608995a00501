/* What the chat's modules share: the process-wide chat state and the
 * publish path every client kind (form, long polling, WebSocket, upload)
 * goes through. */
#ifndef CHAT_CHAT_H
#define CHAT_CHAT_H

#include <jansson.h>
#include <stdbool.h>

#include "gust/gust.h"
#include "gust/web.h"
#include "room.h"

#define CHAT_MAX_NAME 32
#define CHAT_MAX_BODY 2000

#define CHAT_LOG "chat"

typedef struct chat_redis chat_redis;

typedef struct chat_server {
    gust_loop *loop;
    chat_room room;
    chat_redis *redis; /* NULL: the room lives in this process only */
    const char *upload_dir;
    size_t max_upload;
    double poll_timeout; /* seconds a long poll waits before answering [] */
    bool websocket;      /* serve /a/socket (else long polling only) */
    struct gust_template_loader *templates; /* message.html, for every kind */
} chat_server;

extern chat_server chat;

/* Called once a message has its id and is in the room (status 0, json is
 * the stored text with its id), or could not be sent (status < 0, e.g.
 * -ENOTCONN while Redis is down; json NULL). */
typedef void (*chat_published_fn)(int status, const char *json, size_t len,
                                  void *data);

/* Publishes msg (a JSON object without "id"; borrowed). done runs once,
 * inside this call in the embedded mode, later with Redis. Returns 0
 * (done will run or has run) or a negative code (done will not run). */
int chat_publish(json_t *msg, chat_published_fn done, void *data);

/* The bases of every class: chat_common knows who is signed in
 * (gust_handler_current_user) and renders the error pages;
 * chat_authenticated also requires a user (Tornado's @authenticated). */
extern const gust_handler_class chat_common, chat_authenticated;

/* Their get_current_user: the name in the signed cookie, or NULL. */
const char *chat_current_user(gust_handler *h);

/* A prepare for the API's GETs and the WebSocket: 403 without a user
 * (a redirect to the sign-in page would make no sense to them). */
int chat_require_api_user(gust_handler *h);

/* The app's error pages: HTML from error.html, or JSON {"error": ...}
 * for clients that accept application/json. */
void chat_write_error(gust_handler *h, int status, const char *message);

/* A new message from user (body, and an attachment object or NULL), with
 * its html rendered from message.html. New reference, NULL on error
 * (not UTF-8, out of memory). */
json_t *chat_message_new(const char *user, const char *body, json_t *file);

/* A chat_published_fn for handlers (data: the gust_handler): answers the
 * stored message as JSON, or 503 with the reason, and finishes. */
void chat_answer_published(int status, const char *json, size_t len,
                           void *data);

/* The WebSocket half (socket.c): its handler class, and forgetting every
 * socket at shutdown. */
const gust_handler_class *chat_websocket_class(void);
void chat_websocket_close_all(void);

/* The streamed upload handler (upload.c). */
extern const gust_handler_class chat_upload_class;

#endif
