/* The server side (Tornado's WebSocketHandler): the opening handshake on a
 * web.h handler (RFC 6455 section 4.2), the hand-over of the connection,
 * open and message delivery, plain or as coroutines, and graceful stop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gust/error.h"
#include "gust/log.h"
#include "gust/metrics.h"
#include "websocket_internal.h"

#define LOG_MODULE "websocket"

static bool header_list_has(const gust_http_headers *hd, gust_str name,
                            const char *token)
{
    size_t i = 0;
    gust_str v;
    while (gust_http_headers_next(hd, name, &i, &v))
        if (gust__ws_list_has(v.ptr, v.len, token))
            return true;
    return false;
}

static bool key_valid(gust_str k)
{
    /* base64 of 16 bytes: 22 characters and "==" (section 4.2.1). */
    if (k.len != 24 || k.ptr[22] != '=' || k.ptr[23] != '=')
        return false;
    for (size_t i = 0; i < 22; i++) {
        char c = k.ptr[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '+' || c == '/'))
            return false;
    }
    return true;
}

static bool same_origin(gust_handler *h, const char *origin)
{
    gust_url u;
    if (gust_url_parse(gust_str_cstr(origin), &u) < 0)
        return false;
    /* The origin's host[:port] as written, against the Host header, as
     * Tornado compares them (netloc and Host, lowercased). */
    const char *a = strstr(origin, "//") + 2;
    size_t n = strcspn(a, "/?#");
    const char *host = gust_handler_request(h)->host;
    return strlen(host) == n && strncasecmp(a, host, n) == 0;
}

/* The offered subprotocols, in order, in the request's arena. */
static size_t offered_protocols(gust_handler *h, const char ***out)
{
    gust_http_request *req = gust_handler_request(h);
    gust_arena *a = req->arena;
    size_t n = 0, cap = 0;
    const char **list = NULL;
    size_t i = 0;
    gust_str v;
    while (gust_http_headers_next(&req->headers,
                                  GUST_STR("Sec-WebSocket-Protocol"), &i, &v)) {
        const char *p = v.ptr, *end = v.ptr + v.len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *s = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            if (p == s)
                continue;
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 4;
                const char **nl = gust_arena_alloc(a, nc * sizeof *nl);
                if (!nl)
                    return n;
                if (n)
                    memcpy(nl, list, n * sizeof *nl);
                list = nl;
                cap = nc;
            }
            list[n] = gust_arena_strndup(a, s, (size_t)(p - s));
            if (list[n])
                n++;
        }
    }
    *out = list;
    return n;
}

/* The server stops: 1001 Going Away the first time; asked again (its
 * shutdown_timeout passed, or it is freed), the connection is cut. */
static void on_close_all(void *data)
{
    gust_websocket *ws = data;
    if (ws->closed)
        return;
    if (!ws->close_sent)
        gust_websocket_close(ws, GUST_WS_CLOSE_GOING_AWAY, "server stopping");
    else
        gust_stream_close(ws->stream);
}

static const gust_http_detach_ops detach_ops = {on_close_all};

static const gust_websocket_class *class_of(gust_handler *h)
{
    /* gust_websocket_class starts with its gust_handler_class; a class with
     * a base is routed as a merged copy of that member alone, so the
     * declared class, not the copy, is the container. */
    return (const gust_websocket_class *)(const void *)
        gust_handler_declared_class(h);
}

static int refuse(gust_handler *h, int status, const char *why)
{
    gust_log_warning(LOG_MODULE, "%s: %d %s", gust_handler_request(h)->remote_ip,
                     status, why);
    gust_handler_set_status(h, status, NULL);
    if (status == 426)
        gust_handler_set_header(h, "Sec-WebSocket-Version", "13");
    gust_handler_set_header(h, "Content-Type", "text/plain; charset=UTF-8");
    gust_handler_write_str(h, why);
    return 0;
}

int gust_websocket_get(gust_handler *h)
{
    const gust_websocket_class *cls = class_of(h);
    gust_http_request *req = gust_handler_request(h);
    const gust_http_headers *hd = &req->headers;
    if (req->version_minor < 1)
        return refuse(h, 400, "WebSocket needs HTTP/1.1");
    if (!header_list_has(hd, GUST_STR("Upgrade"), "websocket"))
        return refuse(h, 400, "Can \"Upgrade\" only to \"WebSocket\".");
    if (!header_list_has(hd, GUST_STR("Connection"), "upgrade"))
        return refuse(h, 400, "\"Connection\" must be \"Upgrade\".");
    gust_str ver = gust_http_headers_get_first(hd,
                                               GUST_STR("Sec-WebSocket-Version"));
    if (!ver.ptr || !gust_str_eq(ver, GUST_STR("13")) ||
        gust_http_headers_count_name(hd, GUST_STR("Sec-WebSocket-Version")) != 1)
        return refuse(h, 426, "Sec-WebSocket-Version 13 is required");
    gust_str key = gust_http_headers_get_first(hd, GUST_STR("Sec-WebSocket-Key"));
    if (!key.ptr || !key_valid(key) ||
        gust_http_headers_count_name(hd, GUST_STR("Sec-WebSocket-Key")) != 1)
        return refuse(h, 400, "missing or invalid Sec-WebSocket-Key");
    gust_str origin = gust_http_headers_get_first(hd, GUST_STR("Origin"));
    if (origin.ptr) {
        const char *o = gust_str_dup(req->arena, origin);
        bool ok = o && (cls->check_origin ? cls->check_origin(h, o)
                                          : same_origin(h, o));
        if (!ok)
            return refuse(h, 403, "Cross origin websockets not allowed");
    }
    const char *proto = NULL;
    if (cls->select_subprotocol) {
        const char **list = NULL;
        size_t n = offered_protocols(h, &list);
        if (n) {
            proto = cls->select_subprotocol(h, list, n);
            if (gust_handler_finished(h))
                return 0;
        }
    }
    gust__ws_deflate_params dp = {0};
    char ext[160] = "";
    const gust_websocket_settings *set = cls->settings;
    gust_str exts;
    if (set && set->compression &&
        gust_http_headers_get_joined(hd, GUST_STR("Sec-WebSocket-Extensions"),
                                     &exts) == 0) {
        gust__ws_deflate_params want = {
            .enabled = true,
            .our_no_context = set->no_context_takeover,
            .our_window = (uint8_t)set->max_window_bits, /* 0: default */
            .level = set->compression_level,
            .mem_level = set->compression_mem_level,
        };
        char *v = gust_str_dup(req->arena, exts);
        if (v && gust__ws_deflate_negotiate(v, true, &want, &dp, ext,
                                            sizeof ext) != 1)
            dp.enabled = false;
    }
    char acc[29];
    gust__ws_accept_key(key.ptr, acc);
    gust_handler_set_status(h, 101, NULL);
    gust_handler_set_header(h, "Upgrade", "websocket");
    gust_handler_set_header(h, "Connection", "Upgrade");
    gust_handler_set_header(h, "Sec-WebSocket-Accept", acc);
    if (proto)
        gust_handler_set_header(h, "Sec-WebSocket-Protocol", proto);
    if (dp.enabled)
        gust_handler_set_header(h, "Sec-WebSocket-Extensions", ext);

    gust_loop *loop = gust_handler_loop(h);
    /* Made before the detach, which names it to the server. */
    gust_websocket *ws = gust__ws_new(loop, NULL, false, set, cls->state_size);
    if (!ws)
        return -ENOMEM;
    if (dp.enabled && !(ws->deflate = gust__ws_deflate_new(&dp))) {
        gust__ws_unref(ws);
        return -ENOMEM;
    }
    if ((proto && !(ws->subprotocol = strdup(proto))) ||
        (dp.enabled && !(ws->extensions = strdup(ext)))) {
        gust__ws_unref(ws);
        return -ENOMEM;
    }
    gust_stream *stream;
    gust_str rest;
    int rc = gust_http_request_detach(req, &ws->slot, &detach_ops, ws, &stream,
                                      &rest);
    if (rc < 0) {
        gust__ws_unref(ws);
        static const char *const ours[] = {"Upgrade", "Connection",
                                          "Sec-WebSocket-Accept",
                                          "Sec-WebSocket-Protocol",
                                          "Sec-WebSocket-Extensions"};
        for (size_t i = 0; i < sizeof ours / sizeof *ours; i++)
            gust_handler_clear_header(h, ours[i]);
        if (rc == -EBUSY)
            return refuse(h, 400, "upgrade pipelined behind a request");
        return rc == GUST_ESTREAMCLOSED ? 0 : rc;
    }
    gust__ws_set_stream(ws, stream);
    gust_metrics_websocket_opened(); /* closed in gust__ws_server_closed */
    ws->cls = cls;
    gust__ws_ref(ws);
    if (cls->open) {
        /* Nothing is read before open has returned (it may await). */
        ws->h = h;
        rc = cls->open(ws, h);
        ws->h = NULL;
        if (rc < 0 && !ws->closed)
            gust__ws_fail(ws, GUST_WS_CLOSE_INTERNAL, "open failed");
    }
    /* rest lives until the request is finished, after this returns. */
    if (!ws->closed && gust__ws_start(ws, rest.ptr, rest.len) < 0)
        gust_stream_close(stream); /* on_close follows, then the free */
    gust__ws_unref(ws);
    return 0;
}

/* ---- Messages ------------------------------------------------------------- */

typedef struct msg_job {
    gust_websocket *ws;
    char *data;
    size_t len;
    bool binary;
} msg_job;

static int message_coro(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop, (void)result;
    msg_job *j = data;
    gust_websocket *ws = j->ws;
    int rc = ws->cls->on_message(ws, j->data, j->len, j->binary);
    if (rc < 0 && !ws->closed)
        gust__ws_fail(ws, GUST_WS_CLOSE_INTERNAL, "on_message failed");
    return 0;
}

static void message_done(gust_future *f, void *data)
{
    msg_job *j = data;
    gust_websocket *ws = j->ws;
    if (gust_future_status(f) < 0 && !ws->closed)
        gust__ws_fail(ws, GUST_WS_CLOSE_INTERNAL, "on_message coroutine failed");
    gust_future_unref(f);
    free(j->data);
    free(j);
    ws->busy = false;
    gust__ws_resume(ws);
    gust__ws_unref(ws);
}

bool gust__ws_server_deliver(gust_websocket *ws, char *data, size_t len,
                             bool binary, bool owned, bool *taken)
{
    const gust_websocket_class *cls = ws->cls;
    if (ws->close_sent || !cls->on_message)
        return true; /* closing: messages are dropped */
    if (!(cls->flags & GUST_WEBSOCKET_COROUTINE)) {
        int rc = cls->on_message(ws, data, len, binary);
        if (rc < 0 && !ws->closed)
            gust__ws_fail(ws, GUST_WS_CLOSE_INTERNAL, "on_message failed");
        return true;
    }
    /* The coroutine keeps the message: the owned buffer, or a copy. */
    msg_job *j = malloc(sizeof *j);
    char *copy = owned ? data : malloc(len + 1);
    if (!j || !copy) {
        free(j);
        if (!owned)
            free(copy);
        gust__ws_fail(ws, GUST_WS_CLOSE_INTERNAL, "out of memory");
        return false;
    }
    if (!owned) {
        memcpy(copy, data, len);
        copy[len] = 0;
    }
    *taken = owned;
    *j = (msg_job){ws, copy, len, binary};
    gust_future *f = gust_spawn(ws->loop, message_coro, j);
    if (!f || gust_future_add_done_callback(f, message_done, j) < 0) {
        if (f) {
            gust_future_cancel(f);
            gust_future_unref(f);
        }
        free(copy);
        free(j);
        gust__ws_fail(ws, GUST_WS_CLOSE_INTERNAL, "cannot start a coroutine");
        return false;
    }
    gust__ws_ref(ws);
    ws->busy = true;
    return false;
}

void gust__ws_server_closed(gust_websocket *ws)
{
    const gust_websocket_class *cls = ws->cls;
    if (cls && cls->on_close) {
        gust__ws_ref(ws);
        cls->on_close(ws, ws->close_code, gust_websocket_close_reason(ws),
                      ws->close_sent && ws->close_received);
        gust__ws_unref(ws);
    }
    gust_metrics_websocket_closed();
    gust_http_detached_done(&ws->slot);
}
