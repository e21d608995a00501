/* chat: the chat room `make run` serves, Tornado's demos/chat and
 * demos/websocket in C.
 *
 *   chat [--port=8888] [--address=127.0.0.1] [--redis=HOST:PORT]
 *        [--processes=N] [--cookie_secret=S] [--upload_dir=DIR]
 *        [--max_upload=BYTES] [--websocket=false] [--xheaders] [--debug]
 *
 *   GET  /login, POST /login    sign in with a name (a signed cookie)
 *   POST /logout                sign out
 *   GET  /                      the room (the last 200 messages)
 *   POST /a/message/new         body=... : a new message (Tornado's demo)
 *   POST /a/message/updates     cursor=ID: waits for messages after ID
 *   GET  /a/messages?since=ID   the messages after ID, at once (JSON)
 *   POST /a/upload              multipart file=..., streamed to disk
 *   GET  /a/socket?cursor=ID    WebSocket: the same room, live (socket.c)
 *   GET  /files/NAME            uploaded files
 *   GET  /health                {"status": "ok", ...}
 *   GET  /static/...            CSS and JavaScript (content-hashed URLs)
 *
 * Every POST carries the XSRF token (a form field, or the X-Xsrftoken
 * header for the streamed upload). Pages other than /login redirect there
 * when nobody is signed in; the /a/ API answers 403 instead.
 */
#include "chat.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gust/options.h"
#include "gust/process.h"
#include "gust/template.h"
#include "redis_room.h"

#ifndef CHAT_SOURCE_DIR
#define CHAT_SOURCE_DIR "."
#endif

#define USER_COOKIE "chat_user"
#define MAX_NAME CHAT_MAX_NAME
#define MAX_BODY CHAT_MAX_BODY

chat_server chat;

/* ---- Publishing ---------------------------------------------------------- */

int chat_publish(json_t *msg, chat_published_fn done, void *data)
{
    if (chat.redis)
        return chat_redis_publish(chat.redis, msg, done, data);
    uint64_t id = chat.room.last_id + 1;
    char idstr[24];
    snprintf(idstr, sizeof idstr, "%llu", (unsigned long long)id);
    if (json_object_set_new(msg, "id", json_string(idstr)) < 0)
        return -ENOMEM;
    char *text = json_dumps(msg, JSON_COMPACT);
    if (!text)
        return -ENOMEM;
    size_t len = strlen(text);
    int rc = chat_room_add(&chat.room, id, text, len);
    if (rc > 0)
        done(0, text, len, data);
    free(text);
    return rc < 0 ? rc : 0;
}

/* ---- Who is signed in ----------------------------------------------------- */

/* Tornado's get_current_user: the name in the signed cookie. */
const char *chat_current_user(gust_handler *h)
{
    const char *user = gust_handler_get_signed_cookie(h, USER_COOKIE, 31);
    return user && *user ? user : NULL;
}

/* Every class of the chat extends one of these two. The framework's
 * GUST_HANDLER_AUTHENTICATED redirects pages to settings.login_url and
 * answers other methods 403. */
const gust_handler_class chat_common = {
    .get_current_user = chat_current_user,
    .write_error = chat_write_error,
};
const gust_handler_class chat_authenticated = {
    .base = &chat_common,
    .flags = GUST_HANDLER_AUTHENTICATED,
};

/* The API's GETs (and the WebSocket) want a 403, not a redirect to a
 * page. */
int chat_require_api_user(gust_handler *h)
{
    if (gust_handler_current_user(h))
        return 0;
    return gust_handler_send_error(h, 403, "Sign in first.");
}

/* Only local paths: "/x", never "//host" or "/\host" (open redirects). */
static const char *safe_next(const char *next)
{
    if (!next || next[0] != '/' || next[1] == '/' || next[1] == '\\')
        return "/";
    for (const char *p = next; *p; p++)
        if ((unsigned char)*p < 0x20)
            return "/";
    return next;
}

/* ---- Pages ---------------------------------------------------------------- */

static int render_page(gust_handler *h, const char *name, json_t *ctx)
{
    if (!ctx)
        return -ENOMEM;
    int rc = gust_handler_render(h, name, ctx);
    json_decref(ctx);
    return rc;
}

void chat_write_error(gust_handler *h, int status, const char *message)
{
    gust_http_request *r = gust_handler_request(h);
    gust_str accept = gust_http_headers_get_first(&r->headers,
                                                  GUST_STR("Accept"));
    const char *reason = gust_http_reason(status);
    if ((!message || !*message) && status == 413)
        message = gust_arena_sprintf(
            gust_handler_arena(h),
            "The file is too large: attachments are limited to %.1f MB.",
            (double)chat.max_upload / (1 << 20));
    if (!message || !*message)
        message = reason;
    if (accept.ptr && memmem(accept.ptr, accept.len, "application/json", 16)) {
        json_t *j = json_pack("{s:s, s:i}", "error", message, "status",
                              status);
        if (j)
            gust_handler_write_json(h, j);
        json_decref(j);
        return;
    }
    json_t *ctx = json_pack("{s:i, s:s, s:s}", "status", status, "reason",
                            reason ? reason : "Error", "message", message);
    if (render_page(h, "error.html", ctx) < 0)
        gust_handler_printf(h, "<!doctype html><title>%d</title>%d", status,
                            status);
}

static int login_get(gust_handler *h)
{
    if (gust_handler_current_user(h))
        return gust_handler_redirect(h, "/", 302);
    return render_page(
        h, "login.html",
        json_pack("{s:s, s:s, s:s}", "next",
                  safe_next(gust_handler_get_argument(h, "next", "/")),
                  "error", "", "name", ""));
}

static bool is_utf8(const char *s)
{
    json_t *probe = json_string(s);
    json_decref(probe);
    return probe != NULL;
}

/* A name: 1 to MAX_NAME bytes of UTF-8 without control characters. */
static const char *check_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0)
        return "Choose a name.";
    if (n > MAX_NAME)
        return "That name is too long (32 bytes at most).";
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return "Names cannot hold control characters.";
    return is_utf8(name) ? NULL : "Names must be UTF-8.";
}

static int login_post(gust_handler *h)
{
    const char *name = gust_handler_get_argument(h, "name", "");
    const char *next = safe_next(gust_handler_get_argument(h, "next", "/"));
    const char *err = check_name(name);
    if (err) {
        gust_handler_set_status(h, 400, NULL);
        json_t *ctx = json_pack("{s:s, s:s, s:s}", "next", next, "error", err,
                                "name", is_utf8(name) ? name : "");
        return render_page(h, "login.html", ctx);
    }
    gust_http_cookie_options o = {.path = "/", .httponly = true,
                                  .samesite = GUST_SAMESITE_LAX};
    int rc = gust_handler_set_signed_cookie(h, USER_COOKIE, name, &o);
    return rc < 0 ? rc : gust_handler_redirect(h, next, 303);
}

static int logout_post(gust_handler *h)
{
    gust_handler_clear_cookie(h, USER_COOKIE, "/", NULL);
    return gust_handler_redirect(h, "/login", 303);
}

static int room_get(gust_handler *h)
{
    size_t len;
    const char *text = chat_room_json_since(&chat.room, 0, &len);
    json_t *msgs = text ? json_loadb(text, len, 0, NULL) : NULL;
    if (!msgs)
        return -ENOMEM;
    char cursor[24];
    snprintf(cursor, sizeof cursor, "%llu",
             (unsigned long long)chat.room.last_id);
    json_t *ctx = json_pack(
        "{s:s, s:O, s:s, s:I, s:b, s:b}", "user",
        gust_handler_current_user(h), "messages",
        json_object_get(msgs, "messages"), "cursor", cursor, "max_upload",
        (json_int_t)chat.max_upload, "websocket", chat.websocket,
        "redis", chat.redis != NULL);
    json_decref(msgs);
    return render_page(h, "room.html", ctx);
}

/* ---- Messages --------------------------------------------------------- */

/* A message from user with body (and an attachment, may be NULL), its
 * html rendered from message.html (autoescaped) and kept with it so that
 * every client shows the same thing. */
json_t *chat_message_new(const char *user, const char *body, json_t *file)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char iso[32];
    strftime(iso, sizeof iso, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *m = json_pack("{s:s, s:s, s:I, s:s}", "from", user, "body", body,
                          "ts",
                          (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
                          "time", iso);
    if (!m)
        return NULL;
    if (file && json_object_set(m, "file", file) < 0)
        goto fail;
    json_t *ctx = json_pack("{s:O}", "message", m);
    if (!ctx)
        goto fail;
    char *html;
    size_t len;
    int rc = gust_template_loader_render(chat.templates, "message.html", ctx,
                                         &html, &len);
    json_decref(ctx);
    if (rc < 0) {
        gust_log_error(CHAT_LOG, "message.html: %s",
                       gust_template_loader_error(chat.templates));
        goto fail;
    }
    rc = json_object_set_new(m, "html", json_stringn(html, len));
    free(html);
    if (rc < 0)
        goto fail;
    return m;
fail:
    json_decref(m);
    return NULL;
}

/* Answers the poster: the stored message (as Tornado's demo does), or a
 * redirect for a form posted without JavaScript (next=...). */
void chat_answer_published(int status, const char *json, size_t len,
                           void *data)
{
    gust_handler *h = data;
    if (status < 0) {
        gust_handler_send_error(
            h, 503,
            "Your message was not sent: the chat server has lost its "
            "connection to Redis. Try again in a moment.");
        return;
    }
    const char *next = gust_handler_get_argument(h, "next", NULL);
    if (next) {
        gust_handler_redirect(h, safe_next(next), 303);
        return;
    }
    gust_handler_set_header(h, "Content-Type",
                            "application/json; charset=UTF-8");
    gust_handler_write(h, json, len);
    gust_handler_finish(h);
}

static int new_post(gust_handler *h)
{
    const char *body = gust_handler_get_argument(h, "body", GUST_REQUIRED);
    if (!body)
        return 0;
    if (!*body)
        return gust_handler_send_error(h, 400, "The message is empty.");
    if (strlen(body) > MAX_BODY)
        return gust_handler_send_error(h, 400,
                                       "The message is too long (2000 "
                                       "bytes at most).");
    json_t *m = chat_message_new(gust_handler_current_user(h), body, NULL);
    if (!m)
        return gust_handler_send_error(h, 400, "The message must be UTF-8.");
    int rc = chat_publish(m, chat_answer_published, h);
    json_decref(m);
    if (rc < 0)
        return gust_handler_send_error(
            h, 503,
            "Your message was not sent: the chat server has lost its "
            "connection to Redis. Try again in a moment.");
    return GUST_HANDLER_ASYNC;
}

/* Long polling, Tornado's MessageUpdatesHandler: answers at once when
 * there are messages after the cursor, else waits (no stack, no thread:
 * a listener in the room and a timer) until one comes, the poll times
 * out (an empty list; the client asks again) or the client goes away. */
typedef struct updates_state {
    gust_handler *h;
    uint64_t cursor;
    chat_listener listener;
    gust_timer timer;
} updates_state;

static void updates_stop(updates_state *st)
{
    chat_room_unlisten(&chat.room, &st->listener);
    if (st->timer.loop) /* initialised: the method ran */
        gust_timer_stop(&st->timer);
}

static void updates_answer(updates_state *st)
{
    size_t len;
    const char *text = chat_room_json_since(&chat.room, st->cursor, &len);
    updates_stop(st);
    gust_handler *h = st->h;
    if (!text) {
        gust_handler_send_error(h, 500, "out of memory");
        return;
    }
    gust_handler_set_header(h, "Content-Type",
                            "application/json; charset=UTF-8");
    gust_handler_set_header(h, "Cache-Control", "no-store");
    gust_handler_write(h, text, len);
    gust_handler_finish(h);
}

static void updates_notify(chat_listener *l, const chat_message *m)
{
    updates_state *st = l->data;
    if (m->id > st->cursor)
        updates_answer(st);
}

static void updates_release(chat_listener *l)
{
    updates_answer(l->data);
}

static void updates_timeout(gust_timer *t, void *data)
{
    (void)t;
    updates_answer(data);
}

static int updates_post(gust_handler *h)
{
    updates_state *st = gust_handler_state(h);
    st->h = h;
    st->cursor = chat_parse_id(gust_handler_get_argument(h, "cursor", "0"));
    gust_timer_init(gust_handler_loop(h), &st->timer);
    if (chat_room_count_since(&chat.room, st->cursor) > 0) {
        updates_answer(st);
        return 0;
    }
    if (gust_timer_start(&st->timer, chat.poll_timeout, 0, updates_timeout,
                         st) < 0)
        return -ENOMEM;
    st->listener.release = updates_release;
    chat_room_listen(&chat.room, &st->listener, updates_notify, st);
    return GUST_HANDLER_ASYNC;
}

static void updates_close(gust_handler *h)
{
    updates_state *st = gust_handler_state(h);
    updates_stop(st);
    if (!gust_handler_finished(h))
        gust_handler_finish(h);
}

static void updates_finish(gust_handler *h)
{
    updates_stop(gust_handler_state(h));
}

static int messages_get(gust_handler *h)
{
    uint64_t since =
        chat_parse_id(gust_handler_get_argument(h, "since", "0"));
    size_t len;
    const char *text = chat_room_json_since(&chat.room, since, &len);
    if (!text)
        return -ENOMEM;
    gust_handler_set_header(h, "Content-Type",
                            "application/json; charset=UTF-8");
    gust_handler_set_header(h, "Cache-Control", "no-store");
    return gust_handler_write(h, text, len);
}

static int health_get(gust_handler *h)
{
    const char *redis = !chat.redis                  ? "off"
                        : chat_redis_up(chat.redis) ? "connected"
                                                    : "down";
    json_t *j = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:i}", "status",
        strcmp(redis, "down") ? "ok" : "degraded", "redis", redis,
        "messages", (json_int_t)chat.room.count, "last_id",
        (json_int_t)chat.room.last_id, "listeners",
        (json_int_t)chat.room.listeners, "pid", (int)getpid());
    if (!j)
        return -ENOMEM;
    if (!strcmp(redis, "down"))
        gust_handler_set_status(h, 503, NULL);
    gust_handler_set_header(h, "Cache-Control", "no-store");
    int rc = gust_handler_write_json(h, j);
    json_decref(j);
    return rc;
}

/* Uploaded files: never rendered as HTML by the browser (the types are
 * checked on the way in; nosniff keeps it that way). */
static void files_headers(gust_handler *h)
{
    gust_handler_set_header(h, "X-Content-Type-Options", "nosniff");
    gust_handler_set_header(h, "Content-Security-Policy",
                            "default-src 'none'; img-src 'self'; "
                            "style-src 'unsafe-inline'");
}

static int not_found(gust_handler *h)
{
    return gust_handler_send_error(h, 404, "There is no page here.");
}

#define CLASS(n, base_, ...)                                                 \
    static const gust_handler_class n = {.name = #n, .base = (base_),        \
                                         __VA_ARGS__}
CLASS(login_class, &chat_common, .get = login_get, .head = login_get,
      .post = login_post);
CLASS(logout_class, &chat_common, .post = logout_post);
CLASS(room_class, &chat_authenticated, .get = room_get, .head = room_get);
CLASS(new_class, &chat_authenticated, .post = new_post);
CLASS(updates_class, &chat_authenticated,
      .state_size = sizeof(updates_state), .post = updates_post,
      .on_connection_close = updates_close, .on_finish = updates_finish);
CLASS(messages_class, &chat_common, .prepare = chat_require_api_user,
      .get = messages_get);
CLASS(health_class, &chat_common, .get = health_get, .head = health_get);
CLASS(not_found_class, &chat_common, .get = not_found, .head = not_found,
      .post = not_found);
CLASS(files_class, &gust_static_file_handler,
      .set_default_headers = files_headers, .write_error = chat_write_error);

/* ---- Start-up ------------------------------------------------------------ */

static int parse_host_port(const char *s, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= cap)
        return -EINVAL;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || p <= 0 || p > 65535)
        return -EINVAL;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (int)p;
    return 0;
}

static gust_http_server *server;

static void on_all_closed(gust_http_server *srv, void *data)
{
    (void)srv;
    gust_loop_stop(data);
}

/* SIGTERM, SIGINT: the graceful stop of gust_http_server_close_on_signals,
 * with parked long polls answered first (an empty list: the page polls
 * again, elsewhere) so that they do not hold it for their whole timeout.
 * WebSockets get 1001 Going Away from close_all. A second signal stops
 * at once. */
static void on_stop_signal(gust_loop *loop, int signum, void *data)
{
    (void)data;
    static int signals;
    if (signals++) {
        gust_loop_stop(loop);
        return;
    }
    gust_log_info(CHAT_LOG, "signal %d: closing (%zu clients listening)",
                  signum, chat.room.listeners);
    chat_room_release_all(&chat.room);
    if (gust_http_server_close_all(server, on_all_closed, loop) < 0)
        gust_loop_stop(loop);
}

int main(int argc, char **argv)
{
    int port, processes, max_upload;
    bool debug, xheaders, websocket;
    const char *address, *redis, *secret, *upload_dir, *templates, *statics;
    double poll_timeout;
    gust_options_define_int(NULL, "port", &port, 8888, "port to listen on",
                            NULL);
    gust_options_define_string(NULL, "address", &address, "127.0.0.1",
                               "address to listen on", NULL);
    gust_options_define_string(NULL, "redis", &redis, NULL,
                               "HOST:PORT of a Redis shared by every chat "
                               "process (default: the room is in memory)",
                               NULL);
    gust_options_define_int(NULL, "processes", &processes, 1,
                            "worker processes (more than 1 needs --redis)",
                            NULL);
    gust_options_define_string(NULL, "cookie_secret", &secret, NULL,
                               "key of signed cookies and XSRF tokens "
                               "(default: random at start-up)",
                               NULL);
    gust_options_define_string(NULL, "upload_dir", &upload_dir,
                               "chat-uploads", "where attachments are kept",
                               NULL);
    gust_options_define_int(NULL, "max_upload", &max_upload, 10 << 20,
                            "largest attachment, in bytes", NULL);
    gust_options_define_duration(NULL, "poll_timeout", &poll_timeout, 30,
                                 "how long a long poll waits", NULL);
    gust_options_define_bool(NULL, "websocket", &websocket, true,
                             "serve /a/socket (false: long polling only, "
                             "for a proxy that cannot pass WebSockets)",
                             NULL);
    gust_options_define_bool(NULL, "xheaders", &xheaders, false,
                             "trust X-Real-Ip and X-Scheme (behind a proxy)",
                             NULL);
    gust_options_define_bool(NULL, "debug", &debug, false,
                             "error pages say where they came from", NULL);
    gust_options_define_string(NULL, "template_path", &templates,
                               CHAT_SOURCE_DIR "/templates", "templates",
                               NULL);
    gust_options_define_string(NULL, "static_path", &statics,
                               CHAT_SOURCE_DIR "/static", "static files",
                               NULL);
    gust_options_parse_command_line(NULL, argc, argv);

    char redis_host[256];
    int redis_port = 0;
    if (redis && parse_host_port(redis, redis_host, sizeof redis_host,
                                 &redis_port) < 0) {
        fprintf(stderr, "chat: --redis=%s: expected HOST:PORT\n", redis);
        return 2;
    }
    if (processes != 1 && !redis) {
        fprintf(stderr,
                "chat: --processes=%d needs --redis=HOST:PORT: without it "
                "each process would keep its own room in memory, and people "
                "served by different processes would not see each other's "
                "messages.\n",
                processes);
        return 2;
    }
    if (redis && !chat_redis_available()) {
        fprintf(stderr, "chat: this build has no Redis support (libhiredis "
                        "was missing when it was built).\n");
        return 2;
    }
    if (max_upload <= 0) {
        fprintf(stderr, "chat: --max_upload must be positive\n");
        return 2;
    }
    if (mkdir(upload_dir, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "chat: cannot create %s: %s\n", upload_dir,
                strerror(errno));
        return 1;
    }

    /* A secret drawn before the fork, so that every worker signs alike. */
    char random_secret[65];
    if (!secret) {
        unsigned char raw[32];
        if (getrandom(raw, sizeof raw, 0) != sizeof raw)
            return 1;
        for (size_t i = 0; i < sizeof raw; i++)
            snprintf(random_secret + 2 * i, 3, "%02x", raw[i]);
        secret = random_secret;
        if (redis)
            gust_log_warning(CHAT_LOG, "no --cookie_secret: chat processes "
                                       "on other hosts will not accept "
                                       "this one's cookies");
    }

    static gust_static_options files_opts;
    files_opts.root = upload_dir;

    const gust_route routes[] = {
        GUST_ROUTE("/", &room_class, .name = "room"),
        GUST_ROUTE("/login", &login_class, .name = "login"),
        GUST_ROUTE("/logout", &logout_class),
        GUST_ROUTE("/a/message/new", &new_class),
        GUST_ROUTE("/a/message/updates", &updates_class),
        GUST_ROUTE("/a/messages", &messages_class),
        GUST_ROUTE("/a/upload", &chat_upload_class),
        GUST_ROUTE("/a/socket", websocket ? chat_websocket_class() : NULL),
        GUST_ROUTE("/files/([0-9a-f]{32}\\.[a-z]{2,4})", &files_class,
                   .data = &files_opts),
        GUST_ROUTE("/health", &health_class),
        GUST_ROUTES_END};
    gust_http_server_options sopts = {
        .xheaders = xheaders,
        /* The upload handler answers 413 itself, with a page, for what
         * is over --max_upload; the server's own bound (which answers a
         * bare 413, and applies to every route: there is no per-request
         * bound to raise for one handler) stays Tornado's 100 MiB unless
         * --max_upload needs more. */
        .max_body_size = (size_t)max_upload + (1 << 20) > (100u << 20)
                             ? (size_t)max_upload + (1 << 20)
                             : (100u << 20),
    };
    gust_app_settings s = {
        .debug = debug,
        .cookie_secret = secret,
        .xsrf_cookies = true,
        .login_url = "/login",
        .compress_response = true,
        .template_path = templates,
        .static_path = statics,
        .default_handler = &not_found_class,
        .server_options = &sopts,
    };
    /* Without --websocket, /a/socket is left out (a 404 page). */
    const gust_route *r = routes;
    gust_route filtered[sizeof routes / sizeof routes[0]];
    size_t nr = 0;
    for (; r->pattern; r++)
        if (r->handler)
            filtered[nr++] = *r;
    filtered[nr] = (gust_route)GUST_ROUTES_END;

    gust_app *app = gust_app_new(filtered, &s);
    if (!app) {
        gust_log_error(CHAT_LOG, "cannot create the app: %s",
                       strerror(errno));
        return 1;
    }
    server = gust_http_server_new(gust_app_http_handler(app), &sopts);
    int rc = server ? 0 : -errno;
    if (rc == 0 && processes != 1) {
        rc = gust_http_server_bind(server, port, address);
        if (rc == 0)
            rc = gust_http_server_start(server, processes);
    } else if (rc == 0) {
        rc = gust_http_server_listen(server, port, address);
    }
    if (rc < 0) {
        gust_log_error(CHAT_LOG, "cannot listen on %s:%d: %s", address, port,
                       gust_strerror(rc));
        gust_http_server_free(server);
        gust_app_free(app);
        gust_options_free(NULL);
        return 1;
    }

    chat.loop = gust_loop_current();
    chat.upload_dir = upload_dir;
    chat.max_upload = (size_t)max_upload;
    chat.poll_timeout = poll_timeout > 0 ? poll_timeout : 30;
    chat.websocket = websocket;
    chat_room_init(&chat.room);
    chat.templates = gust_template_loader_new(templates);
    if (!chat.templates)
        return 1;
    if (redis) {
        chat.redis = chat_redis_new(chat.loop, redis_host, redis_port,
                                    &chat.room);
        if (!chat.redis) {
            gust_log_error(CHAT_LOG, "cannot start the Redis client");
            return 1;
        }
    }
    gust_loop_add_signal(chat.loop, SIGTERM, on_stop_signal, NULL);
    gust_loop_add_signal(chat.loop, SIGINT, on_stop_signal, NULL);
    gust_log_info(CHAT_LOG, "listening on http://%s:%d/ (%s)", address,
                  gust_http_server_port(server),
                  redis ? "room shared through Redis" : "room in memory");
    gust_loop_start(chat.loop);

    gust_loop_remove_signal(chat.loop, SIGTERM);
    gust_loop_remove_signal(chat.loop, SIGINT);
    chat_websocket_close_all();
    chat_redis_free(chat.redis);
    chat_room_close(&chat.room);
    gust_template_loader_free(chat.templates);
    gust_http_server_free(server);
    gust_app_free(app);
    gust_options_free(NULL);
    return gust_loop_free(chat.loop) == 0 ? 0 : 1;
}
