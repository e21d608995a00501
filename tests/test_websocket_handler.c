/* The WebSocket server handler (websocket_handler.c) and client
 * (websocket_client.c) together on one loop: an app on 127.0.0.1 and
 * gust_websocket_connect driven by coroutines through gust_loop_run_sync.
 * What Tornado users rely on: prepare and cookies before the upgrade,
 * per-socket state, coroutine on_message in order, write futures,
 * close(code, reason) seen by the peer, on_close codes, the queue cap. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gust/gust.h"
#include "gust_test.h"

static int port;
static int running, peak, delivered;
static int closes, last_code, last_clean;
static char last_reason[128];
static char order[4096];

typedef struct chat_state {
    char user[32];
    int seen;
} chat_state;

/* prepare: a user is required (argument or signed cookie), as a login. */
static int chat_prepare(gust_handler *h)
{
    const char *user = gust_handler_get_argument(h, "user", NULL);
    if (!user)
        user = gust_handler_get_cookie(h, "user", NULL);
    if (!user)
        return gust_handler_send_error(h, 403, "who are you?");
    chat_state *st = gust_handler_state(h);
    snprintf(st->user, sizeof st->user, "%s", user);
    return 0;
}

static int chat_open(gust_websocket *ws, gust_handler *h)
{
    chat_state *from = gust_handler_state(h);
    chat_state *st = gust_websocket_state(ws);
    assert_ptr_equal(gust_websocket_handler(ws), h);
    memcpy(st->user, from->user, sizeof st->user);
    return 0;
}

/* A coroutine: awaits a little (longer for earlier messages), so that
 * messages would overtake each other if they were not serialized. */
static int chat_message(gust_websocket *ws, const char *data, size_t len,
                        bool binary)
{
    chat_state *st = gust_websocket_state(ws);
    if (++running > peak)
        peak = running;
    int n = atoi(data);
    gust_await(gust_sleep(gust_websocket_loop(ws), n < 5 ? 0.02 : 0.001), NULL);
    running--;
    delivered++;
    size_t o = strlen(order);
    snprintf(order + o, sizeof order - o, "%.*s,", (int)len, data);
    st->seen++;
    if (len == 3 && memcmp(data, "bye", 3) == 0)
        return gust_websocket_close(ws, 4001, "see you");
    if (len == 5 && memcmp(data, "flood", 5) == 0) {
        /* The client reads nothing meanwhile: the cap closes it. */
        static char chunk[64 * 1024];
        for (int i = 0; i < 64; i++)
            if (gust_websocket_write_message(ws, chunk, sizeof chunk, true) < 0)
                return 0;
        return 0;
    }
    char reply[128];
    int k = snprintf(reply, sizeof reply, "%s: %.*s", st->user, (int)len, data);
    return gust_await(gust_websocket_write_message_f(ws, reply, (size_t)k,
                                                     binary), NULL);
}

static void chat_close(gust_websocket *ws, int code, const char *reason,
                       bool clean)
{
    (void)ws;
    closes++;
    last_code = code;
    last_clean = clean;
    snprintf(last_reason, sizeof last_reason, "%s", reason);
}

/* The server sees the client's pings (answered already). */
static int pings;

static void count_ping(gust_websocket *ws, const char *data, size_t len)
{
    (void)ws;
    if (len == 4 && memcmp(data, "ping", 4) == 0)
        pings++;
}

static bool any_origin(gust_handler *h, const char *origin)
{
    (void)h;
    return strstr(origin, "friend") != NULL;
}

static const gust_websocket_settings chat_settings = {
    .max_queued_bytes = 256 * 1024,
};

static const gust_websocket_class chat = GUST_WEBSOCKET_CLASS(
    .handler.name = "chat", .handler.prepare = chat_prepare,
    .handler.state_size = sizeof(chat_state),
    .flags = GUST_WEBSOCKET_COROUTINE, .state_size = sizeof(chat_state),
    .settings = &chat_settings, .open = chat_open,
    .on_message = chat_message, .on_close = chat_close,
    .on_ping = count_ping, .check_origin = any_origin);

/* open as a coroutine (GUST_HANDLER_COROUTINE on the handler): messages
 * wait until it has returned. on_message is plain here. */
static int slow_open(gust_websocket *ws, gust_handler *h)
{
    (void)h;
    gust_await(gust_sleep(gust_websocket_loop(ws), 0.1), NULL);
    *(int *)gust_websocket_state(ws) = 1;
    return gust_websocket_write_message(ws, "hello", 5, false);
}

static int slow_message(gust_websocket *ws, const char *data, size_t len,
                        bool binary)
{
    (void)binary;
    char reply[64];
    int k = snprintf(reply, sizeof reply, "ready=%d %.*s",
                     *(int *)gust_websocket_state(ws), (int)len, data);
    return gust_websocket_write_message(ws, reply, (size_t)k, false);
}

static const gust_websocket_class slow = GUST_WEBSOCKET_CLASS(
    .handler.flags = GUST_HANDLER_COROUTINE, .state_size = sizeof(int),
    .open = slow_open, .on_message = slow_message, .on_close = chat_close);

/* A WebSocket class extending a plain one (.handler.base): the router
 * routes a merged copy of the handler member, and the socket must still
 * find its own members (open, on_message) around the declared class. */
static const char *cookie_user(gust_handler *h)
{
    return gust_handler_get_cookie(h, "user", NULL);
}

static int members_prepare(gust_handler *h)
{
    if (!gust_handler_current_user(h))
        return gust_handler_send_error(h, 403, "members only");
    return 0;
}

static const gust_handler_class members_only = {
    .name = "members", .get_current_user = cookie_user,
    .prepare = members_prepare,
};

static int based_open(gust_websocket *ws, gust_handler *h)
{
    snprintf(gust_websocket_state(ws), 32, "%s", gust_handler_current_user(h));
    return 0;
}

static int based_message(gust_websocket *ws, const char *data, size_t len,
                         bool binary)
{
    (void)binary;
    char reply[96];
    int k = snprintf(reply, sizeof reply, "%s said %.*s",
                     (char *)gust_websocket_state(ws), (int)len, data);
    return gust_websocket_write_message(ws, reply, (size_t)k, false);
}

static const gust_websocket_class based = GUST_WEBSOCKET_CLASS(
    .handler.base = &members_only, .state_size = 32, .open = based_open,
    .on_message = based_message, .on_close = chat_close);

static const gust_route routes[] = {GUST_ROUTE("/chat", &chat.handler),
                                    GUST_ROUTE("/slow", &slow.handler),
                                    GUST_ROUTE("/based", &based.handler),
                                    GUST_ROUTES_END};

static gust_app *start(gust_loop **loop)
{
    *loop = gust_loop_current();
    gust_app *app = gust_app_new(routes, NULL);
    assert_non_null(app);
    assert_int_equal(gust_app_listen(app, 0, "127.0.0.1"), 0);
    port = gust_http_server_port(gust_app_server(app));
    running = peak = delivered = closes = last_code = last_clean = 0;
    order[0] = 0;
    last_reason[0] = 0;
    return app;
}

static bool never(gust_loop *loop, void *data)
{
    (void)loop, (void)data;
    return false;
}

static void stop(gust_loop *loop, gust_app *app)
{
    gust_app_free(app);
    gust_loop_run_until(loop, never, NULL, 0.2);
    assert_int_equal(gust_loop_free(loop), 0);
}

static gust_websocket *dial(gust_loop *loop, const char *path,
                            const char *const *headers, int *err)
{
    char url[128];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d%s", port, path);
    gust_websocket_connect_options o = {.headers = headers, .connect_timeout = 10};
    gust_value v;
    int rc = gust_await(gust_websocket_connect(loop, url, &o), &v);
    if (err)
        *err = rc;
    return rc == 0 ? v.ptr : NULL;
}

static char *next_text(gust_loop *loop, gust_websocket *ws, char *buf,
                       size_t size)
{
    gust_value v;
    int rc = gust_await(gust_with_timeout(loop, gust_websocket_read_message(ws),
                                          10), &v);
    if (rc < 0)
        return NULL;
    gust_websocket_message *m = v.ptr;
    snprintf(buf, size, "%.*s", (int)m->len, m->data);
    gust_value_free(&v);
    return buf;
}

static int in_order_main(gust_loop *loop, gust_value *result, void *data)
{
    (void)result, (void)data;
    gust_websocket *ws = dial(loop, "/chat?user=bob", NULL, NULL);
    assert_non_null(ws);
    for (int i = 0; i < 20; i++) {
        char m[8];
        int n = snprintf(m, sizeof m, "%d", i);
        assert_int_equal(gust_websocket_write_message(ws, m, (size_t)n, false), 0);
    }
    for (int i = 0; i < 20; i++) {
        char buf[64], want[64];
        snprintf(want, sizeof want, "bob: %d", i);
        assert_non_null(next_text(loop, ws, buf, sizeof buf));
        assert_string_equal(buf, want);
    }
    /* The server closes with a code and reason of its own. */
    assert_int_equal(gust_websocket_write_message(ws, "bye", 3, false), 0);
    gust_value v;
    assert_int_equal(gust_await(gust_with_timeout(loop,
                         gust_websocket_read_message(ws), 10), &v),
                     GUST_ESTREAMCLOSED);
    assert_int_equal(gust_websocket_close_code(ws), 4001);
    assert_string_equal(gust_websocket_close_reason(ws), "see you");
    gust_websocket_free(ws);
    return 0;
}

static void test_coroutine_messages_in_order(void **state)
{
    (void)state;
    gust_loop *loop;
    gust_app *app = start(&loop);
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, in_order_main, NULL),
                                        60, NULL), 0);
    gust_loop_run_until(loop, int_reached, &closes, 10);
    assert_int_equal(peak, 1); /* never two on_message at once */
    assert_int_equal(delivered, 21);
    assert_string_equal(order, "0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,"
                               "18,19,bye,");
    assert_int_equal(closes, 1);
    assert_int_equal(last_code, 4001); /* the client echoed our code */
    assert_true(last_clean);
    stop(loop, app);
}

static int login_main(gust_loop *loop, gust_value *result, void *data)
{
    (void)result, (void)data;
    int err = 0;
    /* No user: prepare answers 403 and the handshake fails. */
    assert_null(dial(loop, "/chat", NULL, &err));
    assert_int_equal(err, -EPROTO);
    /* A cookie is read before the upgrade, as arguments are. */
    const char *cookie[] = {"Cookie: user=alice", NULL};
    gust_websocket *ws = dial(loop, "/chat", cookie, NULL);
    assert_non_null(ws);
    assert_int_equal(gust_websocket_write_message(ws, "7", 1, false), 0);
    char buf[64];
    assert_non_null(next_text(loop, ws, buf, sizeof buf));
    assert_string_equal(buf, "alice: 7");
    /* check_origin overridden: friends only. */
    const char *friend[] = {"Cookie: user=x", "Origin: http://friend.example", NULL};
    gust_websocket *ws2 = dial(loop, "/chat", friend, NULL);
    assert_non_null(ws2);
    const char *foe[] = {"Cookie: user=x", "Origin: http://foe.example", NULL};
    assert_null(dial(loop, "/chat", foe, &err));
    assert_int_equal(err, -EPROTO);
    /* Client-initiated close: the server's on_close gets our code. */
    assert_int_equal(gust_websocket_close(ws, 4321, "leaving"), 0);
    gust_value v;
    assert_int_equal(gust_await(gust_with_timeout(loop,
                         gust_websocket_read_message(ws), 10), &v),
                     GUST_ESTREAMCLOSED);
    assert_int_equal(gust_websocket_close_code(ws), 4321); /* echoed */
    gust_websocket_free(ws);
    gust_websocket_free(ws2); /* abrupt: no close frame */
    return 0;
}

static void test_login_and_origin(void **state)
{
    (void)state;
    gust_loop *loop;
    gust_app *app = start(&loop);
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, login_main, NULL),
                                        60, NULL), 0);
    gust_loop_run_until(loop, int_reached, &closes, 10);
    for (int i = 0; i < 50 && closes < 2; i++)
        gust_loop_run_until(loop, never, NULL, 0.05);
    assert_int_equal(closes, 2);
    stop(loop, app);
}

static int flood_main(gust_loop *loop, gust_value *result, void *data)
{
    (void)result, (void)data;
    gust_websocket *ws = dial(loop, "/chat?user=slow", NULL, NULL);
    assert_non_null(ws);
    assert_int_equal(gust_websocket_write_message(ws, "flood", 5, false), 0);
    /* Read nothing for a while: the server queues 4 MiB against a 256 KiB
     * cap and must give up on us. */
    for (int i = 0; i < 100 && closes == 0; i++)
        gust_await(gust_sleep(loop, 0.05), NULL);
    assert_int_equal(closes, 1); /* before we went away ourselves */
    gust_websocket_free(ws);
    return 0;
}

static void test_queue_cap_closes_slow_reader(void **state)
{
    (void)state;
    gust_loop *loop;
    gust_app *app = start(&loop);
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, flood_main, NULL),
                                        60, NULL), 0);
    gust_loop_run_until(loop, int_reached, &closes, 10);
    assert_int_equal(closes, 1);
    assert_int_equal(last_code, GUST_WS_CLOSE_ABNORMAL); /* cut, no close frame */
    assert_false(last_clean);
    stop(loop, app);
}

static int slow_open_main(gust_loop *loop, gust_value *result, void *data)
{
    (void)result, (void)data;
    gust_websocket *ws = dial(loop, "/slow", NULL, NULL);
    assert_non_null(ws);
    assert_int_equal(gust_websocket_write_message(ws, "m1", 2, false), 0);
    assert_int_equal(gust_websocket_write_message(ws, "m2", 2, false), 0);
    char buf[64];
    assert_non_null(next_text(loop, ws, buf, sizeof buf));
    assert_string_equal(buf, "hello");
    assert_non_null(next_text(loop, ws, buf, sizeof buf));
    assert_string_equal(buf, "ready=1 m1");
    assert_non_null(next_text(loop, ws, buf, sizeof buf));
    assert_string_equal(buf, "ready=1 m2");
    gust_websocket_close(ws, GUST_WS_CLOSE_NORMAL, NULL);
    gust_value v;
    assert_int_equal(gust_await(gust_with_timeout(loop,
                         gust_websocket_read_message(ws), 10), &v),
                     GUST_ESTREAMCLOSED);
    gust_websocket_free(ws);
    return 0;
}

static void test_coroutine_open(void **state)
{
    (void)state;
    gust_loop *loop;
    gust_app *app = start(&loop);
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, slow_open_main,
                                                         NULL), 60, NULL), 0);
    gust_loop_run_until(loop, int_reached, &closes, 10);
    assert_int_equal(last_code, GUST_WS_CLOSE_NORMAL);
    assert_true(last_clean);
    stop(loop, app);
}

/* The client's callback form, its ping, and its connect timeout. */
static int cb_messages, cb_closed_code = -1;
static char cb_last[64];

static void on_msg(gust_websocket *ws, const gust_websocket_message *msg,
                   int code, void *data)
{
    (void)ws, (void)data;
    if (!msg) {
        cb_closed_code = code;
        return;
    }
    cb_messages++;
    snprintf(cb_last, sizeof cb_last, "%.*s", (int)msg->len, msg->data);
}


static int client_forms_main(gust_loop *loop, gust_value *result, void *data)
{
    (void)result, (void)data;
    gust_websocket *ws = dial(loop, "/chat?user=cb", NULL, NULL);
    assert_non_null(ws);
    assert_int_equal(gust_websocket_on_message(ws, on_msg, NULL), 0);
    assert_int_equal(gust_websocket_on_message(ws, on_msg, NULL), -EINVAL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(gust_websocket_write_message(ws, "9", 1, false), 0);
    for (int i = 0; i < 200 && cb_messages < 3; i++)
        gust_await(gust_sleep(loop, 0.01), NULL);
    assert_int_equal(cb_messages, 3);
    assert_string_equal(cb_last, "cb: 9");
    assert_int_equal(gust_websocket_ping(ws, "x", 126), -EINVAL);
    assert_int_equal(gust_websocket_ping(ws, "ping", 4), 0);
    for (int i = 0; i < 200 && pings == 0; i++)
        gust_await(gust_sleep(loop, 0.01), NULL);
    assert_int_equal(pings, 1);
    gust_websocket_close(ws, GUST_WS_CLOSE_GOING_AWAY, "off");
    for (int i = 0; i < 200 && cb_closed_code < 0; i++)
        gust_await(gust_sleep(loop, 0.01), NULL);
    assert_int_equal(cb_closed_code, GUST_WS_CLOSE_GOING_AWAY);
    assert_int_equal(gust_websocket_write_message(ws, "late", 4, false),
                     GUST_ESTREAMCLOSED);
    gust_websocket_free(ws);

    /* A server that accepts and never answers the handshake. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 4), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    char url[64];
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/", ntohs(a.sin_port));
    gust_websocket_connect_options o = {.connect_timeout = 0.3};
    double t0 = gust_loop_time(loop);
    gust_value v;
    assert_int_equal(gust_await(gust_websocket_connect(loop, url, &o), &v),
                     -ETIMEDOUT);
    assert_true(gust_loop_time(loop) - t0 < 5);
    close(fd);
    assert_int_equal(gust_await(gust_websocket_connect(loop, "http://x/", NULL),
                                &v), -EINVAL);
    return 0;
}

static void test_client_callback_ping_timeout(void **state)
{
    (void)state;
    gust_loop *loop;
    gust_app *app = start(&loop);
    cb_messages = pings = 0;
    cb_closed_code = -1;
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, client_forms_main,
                                                         NULL), 60, NULL), 0);
    gust_loop_run_until(loop, int_reached, &closes, 10);
    assert_int_equal(last_code, GUST_WS_CLOSE_GOING_AWAY);
    stop(loop, app);
}

static int based_main(gust_loop *loop, gust_value *result, void *data)
{
    (void)result, (void)data;
    int err = 0;
    /* The base's authentication holds before the upgrade (403: no user). */
    assert_null(dial(loop, "/based", NULL, &err));
    assert_int_equal(err, -EPROTO);
    const char *cookie[] = {"Cookie: user=bob", NULL};
    gust_websocket *ws = dial(loop, "/based", cookie, NULL);
    assert_non_null(ws);
    assert_int_equal(gust_websocket_write_message(ws, "hi", 2, false), 0);
    char buf[64];
    assert_non_null(next_text(loop, ws, buf, sizeof buf));
    assert_string_equal(buf, "bob said hi");
    /* The server counts it among the open WebSockets (metrics.h). */
    gust_metrics_worker m;
    gust_metrics_get(&m);
    assert_int_equal(m.websockets_open, 1);
    assert_int_equal(gust_websocket_close(ws, 1000, NULL), 0);
    gust_value v;
    assert_int_equal(gust_await(gust_with_timeout(loop,
                         gust_websocket_read_message(ws), 10), &v),
                     GUST_ESTREAMCLOSED);
    gust_websocket_free(ws);
    return 0;
}

static void test_class_with_a_base(void **state)
{
    (void)state;
    gust_loop *loop;
    gust_app *app = start(&loop);
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, based_main, NULL),
                                        60, NULL), 0);
    gust_loop_run_until(loop, int_reached, &closes, 10);
    assert_int_equal(closes, 1);
    gust_loop_run_until(loop, never, NULL, 0.05);
    gust_metrics_worker m;
    gust_metrics_get(&m);
    assert_int_equal(m.websockets_open, 0);
    stop(loop, app);
}

int main(void)
{
    gust_log_set_level(GUST_LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_coroutine_messages_in_order, test_setup),
        cmocka_unit_test_setup(test_login_and_origin, test_setup),
        cmocka_unit_test_setup(test_queue_cap_closes_slow_reader, test_setup),
        cmocka_unit_test_setup(test_coroutine_open, test_setup),
        cmocka_unit_test_setup(test_client_callback_ping_timeout, test_setup),
        cmocka_unit_test_setup(test_class_with_a_base, test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
