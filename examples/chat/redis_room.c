#include "redis_room.h"

#include <errno.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdlib.h>
#include <string.h>

#include "redis_loop.h"

#define KEY_ID "chat:next_id"
#define KEY_HISTORY "chat:history"
#define CHANNEL "chat:messages"
#define BACKOFF_MIN 0.1
#define BACKOFF_MAX 5.0
#define CONNECT_TIMEOUT 3.0

/* Gives the message (ARGV[1], a JSON object without "id") the next id,
 * keeps it in the capped history and publishes it, in one step, so that
 * every process sees ids, history and pub/sub in the same order. The
 * JSON text is spliced rather than decoded: cjson would round numbers. */
static const char publish_script[] =
    "local id = redis.call('INCR', KEYS[1])\n"
    "local s = '{\"id\": \"' .. id .. '\", ' .. string.sub(ARGV[1], 2)\n"
    "redis.call('RPUSH', KEYS[2], s)\n"
    "redis.call('LTRIM', KEYS[2], -tonumber(ARGV[2]), -1)\n"
    "redis.call('PUBLISH', KEYS[3], s)\n"
    "return s\n";

/* On every (re)connection: if Redis lost its data (restarted without
 * persistence), give it back what this process remembers, so that ids
 * keep growing and the history survives; then read the history. */
static const char sync_script[] =
    "local cur = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end\n"
    "if redis.call('LLEN', KEYS[2]) == 0 and #ARGV > 1 then\n"
    "  for i = 2, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end\n"
    "end\n"
    "return redis.call('LRANGE', KEYS[2], 0, -1)\n";

struct chat_redis {
    gust_loop *loop;
    chat_room *room;
    char *host;
    int port;
    redisAsyncContext *cmd, *sub;
    bool cmd_connected, subscribed, up;
    double backoff;
    gust_timer retry, deadline;
    bool freeing;
    unsigned long sessions;
};

typedef struct pending {
    chat_published_fn done;
    void *data;
} pending;

bool chat_redis_available(void)
{
    return true;
}

bool chat_redis_up(const chat_redis *r)
{
    return r && r->up;
}

static void start_session(chat_redis *r);

static void retry_now(gust_timer *t, void *data)
{
    (void)t;
    start_session(data);
}

/* Drops whatever is left of the session and tries again later. */
static void end_session(chat_redis *r, const char *why)
{
    if (!r->freeing && (r->up || r->sessions == 1))
        gust_log_warning(CHAT_LOG, "redis %s:%d: %s; retrying in %.1f s",
                         r->host, r->port, why, r->backoff);
    r->up = r->cmd_connected = r->subscribed = false;
    gust_timer_stop(&r->deadline);
    redisAsyncContext *cmd = r->cmd, *sub = r->sub;
    r->cmd = r->sub = NULL;
    /* Detached first: their callbacks (run by the frees) find no owner. */
    if (cmd) {
        cmd->data = NULL;
        redisAsyncFree(cmd);
    }
    if (sub) {
        sub->data = NULL;
        redisAsyncFree(sub);
    }
    if (!r->freeing && !gust_timer_active(&r->retry)) {
        gust_timer_start(&r->retry, r->backoff, 0, retry_now, r);
        r->backoff = r->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX
                                                  : r->backoff * 2;
    }
}

/* ac is going away under hiredis's own hands (a failed connect, a
 * disconnect): forget it, then end the session. */
static void lost(const redisAsyncContext *ac, const char *why)
{
    chat_redis *r = ac->data;
    if (!r)
        return;
    if (ac == r->cmd)
        r->cmd = NULL;
    else if (ac == r->sub)
        r->sub = NULL;
    else
        return;
    end_session(r, why);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    chat_redis *r = ac->data;
    if (!r)
        return;
    if (status != REDIS_OK) {
        lost(ac, ac->errstr[0] ? ac->errstr : "cannot connect");
        return;
    }
    if (ac == r->cmd)
        r->cmd_connected = true;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    lost(ac, ac->errstr[0] ? ac->errstr : "connection closed");
}

static void deadline_passed(gust_timer *t, void *data)
{
    (void)t;
    end_session(data, "no answer");
}

/* Adds a message from Redis (its JSON text) to the room. */
static void add_text(chat_redis *r, const char *s, size_t len)
{
    json_t *j = json_loadb(s, len, 0, NULL);
    const char *id = j ? json_string_value(json_object_get(j, "id")) : NULL;
    uint64_t n = chat_parse_id(id);
    if (n)
        chat_room_add(r->room, n, s, len);
    else
        gust_log_warning(CHAT_LOG, "redis: ignored a message without id");
    json_decref(j);
}

static void on_synced(redisAsyncContext *ac, void *reply, void *data)
{
    (void)data;
    chat_redis *r = ac->data;
    redisReply *rep = reply;
    if (!r || !rep)
        return;
    if (rep->type != REDIS_REPLY_ARRAY) {
        gust_log_error(CHAT_LOG, "redis: loading the history failed: %s",
                       rep->type == REDIS_REPLY_ERROR ? rep->str : "?");
        return;
    }
    for (size_t i = 0; i < rep->elements; i++)
        if (rep->element[i]->type == REDIS_REPLY_STRING)
            add_text(r, rep->element[i]->str, rep->element[i]->len);
    r->up = true;
    r->backoff = BACKOFF_MIN;
    gust_timer_stop(&r->deadline);
    gust_log_info(CHAT_LOG, "redis %s:%d: connected, %zu messages in the "
                            "history",
                  r->host, r->port, rep->elements);
}

/* Once subscribed (nothing can be missed from now on), the history. */
static void sync_history(chat_redis *r)
{
    size_t n = r->room->count;
    size_t argc = 6 + n;
    const char **argv = calloc(argc, sizeof *argv);
    size_t *lens = calloc(argc, sizeof *lens);
    char last[24];
    snprintf(last, sizeof last, "%llu", (unsigned long long)r->room->last_id);
    if (!argv || !lens) {
        free(argv);
        free(lens);
        end_session(r, "out of memory");
        return;
    }
    argv[0] = "EVAL";
    argv[1] = sync_script;
    argv[2] = "2";
    argv[3] = KEY_ID;
    argv[4] = KEY_HISTORY;
    argv[5] = last;
    for (size_t i = 0; i < n; i++) {
        argv[6 + i] = r->room->msgs[i].json;
        lens[6 + i] = r->room->msgs[i].len;
    }
    for (size_t i = 0; i < 6; i++)
        lens[i] = strlen(argv[i]);
    if (redisAsyncCommandArgv(r->cmd, on_synced, NULL, (int)argc, argv,
                              lens) != REDIS_OK)
        end_session(r, "cannot send a command");
    free(argv);
    free(lens);
}

static void on_sub(redisAsyncContext *ac, void *reply, void *data)
{
    (void)data;
    chat_redis *r = ac->data;
    redisReply *rep = reply;
    if (!r || !rep || rep->type != REDIS_REPLY_ARRAY || rep->elements < 3 ||
        rep->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = rep->element[0]->str;
    if (!strcmp(kind, "subscribe")) {
        r->subscribed = true;
        sync_history(r);
    } else if (!strcmp(kind, "message") &&
               rep->element[2]->type == REDIS_REPLY_STRING) {
        add_text(r, rep->element[2]->str, rep->element[2]->len);
    }
}

static redisAsyncContext *open_context(chat_redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (!ac)
        return NULL;
    if (ac->err) {
        gust_log_warning(CHAT_LOG, "redis %s:%d: %s", r->host, r->port,
                         ac->errstr);
        redisAsyncFree(ac);
        return NULL;
    }
    if (chat_redis_attach(ac, r->loop) < 0) {
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

static void start_session(chat_redis *r)
{
    r->sessions++;
    r->cmd = open_context(r);
    r->sub = r->cmd ? open_context(r) : NULL;
    if (!r->cmd || !r->sub ||
        redisAsyncCommand(r->sub, on_sub, NULL, "SUBSCRIBE %s", CHANNEL) !=
            REDIS_OK) {
        end_session(r, "cannot connect");
        return;
    }
    gust_timer_start(&r->deadline, CONNECT_TIMEOUT, 0, deadline_passed, r);
}

chat_redis *chat_redis_new(gust_loop *loop, const char *host, int port,
                           chat_room *room)
{
    chat_redis *r = calloc(1, sizeof *r);
    if (!r || !(r->host = strdup(host))) {
        free(r);
        return NULL;
    }
    r->loop = loop;
    r->room = room;
    r->port = port;
    r->backoff = BACKOFF_MIN;
    gust_timer_init(loop, &r->retry);
    gust_timer_init(loop, &r->deadline);
    start_session(r);
    return r;
}

void chat_redis_free(chat_redis *r)
{
    if (!r)
        return;
    r->freeing = true;
    gust_timer_stop(&r->retry);
    end_session(r, "closing");
    free(r->host);
    free(r);
}

static void on_published(redisAsyncContext *ac, void *reply, void *data)
{
    (void)ac;
    pending *p = data;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_STRING)
        p->done(0, rep->str, rep->len, p->data);
    else
        p->done(rep ? -EIO : -ENOTCONN, NULL, 0, p->data);
    free(p);
}

int chat_redis_publish(chat_redis *r, json_t *msg, chat_published_fn done,
                       void *data)
{
    if (!r->up || !r->cmd)
        return -ENOTCONN;
    char *text = json_dumps(msg, JSON_COMPACT);
    pending *p = malloc(sizeof *p);
    if (!text || !p || text[0] != '{' || text[1] == '}') {
        free(text);
        free(p);
        return -ENOMEM;
    }
    p->done = done;
    p->data = data;
    int rc = redisAsyncCommand(r->cmd, on_published, p,
                               "EVAL %s 3 %s %s %s %s %d", publish_script,
                               KEY_ID, KEY_HISTORY, CHANNEL, text,
                               CHAT_HISTORY);
    free(text);
    if (rc != REDIS_OK) {
        free(p);
        return -ENOTCONN;
    }
    return 0;
}
