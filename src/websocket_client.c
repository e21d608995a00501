/* The client side (Tornado's websocket_connect): ws:// and wss:// URLs,
 * the opening handshake with its checks (RFC 6455 section 4.1), and
 * messages read one at a time as futures or through a callback. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "gust/error.h"
#include "gust/log.h"
#include "gust/net.h"
#include "http1_parser.h"
#include "websocket_internal.h"

#define LOG_MODULE "websocket"
#define MAX_RESPONSE_HEAD (64 * 1024)
#define MAX_FIELDS 64

/* Where the messages of a client socket go. */
struct gust__ws_read {
    gust_future *pending;           /* read_message waiting, or NULL */
    void (*cb)(gust_websocket *, const gust_websocket_message *, int, void *);
    void *cb_data;
    gust_websocket_message *held;   /* parsed, not asked for yet */
    bool close_told;                /* cb got its NULL message */
    gust_websocket_settings set;    /* the caller's, copied */
};

typedef struct connect_op {
    gust_loop *loop;
    gust_future *f;
    gust_stream *stream;
    gust_timer timer;
    gust_tls_context *tls;
    bool tls_owned;
    char *host;
    char *request;
    size_t request_len;
    char key[25];
    char accept[29];
    char **protocols;
    size_t nprotocols;
    gust__ws_deflate_params want;
    gust_websocket_settings set;
    bool has_set;
    bool done;
    /* The caller's future (until done), a connect under way, the stream
     * (until its close callback or the hand-over): each holds one. */
    int refs;
} connect_op;

static void op_free(connect_op *op)
{
    gust_timer_stop(&op->timer);
    if (op->tls_owned)
        gust_tls_context_free(op->tls);
    for (size_t i = 0; i < op->nprotocols; i++)
        free(op->protocols[i]);
    free(op->protocols);
    free(op->host);
    free(op->request);
    gust_future_unref(op->f);
    free(op);
}

static void op_release(connect_op *op)
{
    if (--op->refs == 0)
        op_free(op);
}

/* Ends the connect with an error (the stream, if any, is closed; its
 * callbacks still to come find op through the stream's reference). */
static void op_fail(connect_op *op, int code)
{
    if (op->done)
        return;
    op->done = true;
    gust_timer_stop(&op->timer);
    if (op->stream)
        gust_stream_close(op->stream);
    gust_future_set_error(op->f, code);
    op_release(op);
}

static void on_timeout(gust_timer *t, void *data)
{
    (void)t;
    op_fail(data, -ETIMEDOUT);
}

static void on_op_stream_close(gust_stream *s, void *data)
{
    connect_op *op = data;
    int err = gust_stream_error(s);
    op->stream = NULL; /* it is being freed */
    op_fail(op, err ? err : GUST_ESTREAMCLOSED);
    op_release(op);
}

static gust_str field(const gust__http1_response *r, const char *name)
{
    for (size_t i = 0; i < r->num_headers; i++) {
        const gust__http1_header *h = &r->headers[i];
        if (h->name.len == strlen(name) &&
            strncasecmp(h->name.ptr, name, h->name.len) == 0)
            return gust_str_make(h->value.ptr, h->value.len);
    }
    return GUST_STR_NULL;
}

static bool has_token(gust_str v, const char *token)
{
    return gust__ws_list_has(v.ptr, v.len, token);
}

static void on_head(gust_stream *s, int status, const char *data, size_t len,
                    void *user)
{
    connect_op *op = user;
    if (op->done)
        return;
    if (status < 0) {
        op_fail(op, status == GUST_EUNSATISFIABLE ? -EPROTO : status);
        return;
    }
    gust__http1_header fields[MAX_FIELDS];
    gust__http1_response r = {.headers = fields, .max_headers = MAX_FIELDS};
    int n = gust__http1_parse_response(data, len, 0, MAX_RESPONSE_HEAD,
                                       GUST_HTTP1_FIELDS_OBS_FOLD, &r);
    const char *why = NULL;
    gust_str v;
    if (n <= 0)
        why = "malformed response head";
    else if (r.status != 101)
        why = "the server did not switch protocols";
    else if (!has_token(field(&r, "Upgrade"), "websocket"))
        why = "no Upgrade: websocket";
    else if (!has_token(field(&r, "Connection"), "upgrade"))
        why = "no Connection: upgrade";
    else if (!(v = field(&r, "Sec-WebSocket-Accept")).ptr ||
             !gust_str_eq(v, gust_str_cstr(op->accept)))
        why = "wrong Sec-WebSocket-Accept";
    char *proto = NULL, *exts = NULL;
    gust__ws_deflate_params dp = {0};
    if (!why && (v = field(&r, "Sec-WebSocket-Protocol")).ptr) {
        for (size_t i = 0; i < op->nprotocols && !proto; i++)
            if (gust_str_eq(v, gust_str_cstr(op->protocols[i])))
                proto = strndup(v.ptr, v.len);
        if (!proto)
            why = "a subprotocol we did not offer";
    }
    if (!why && (v = field(&r, "Sec-WebSocket-Extensions")).ptr) {
        exts = strndup(v.ptr, v.len);
        if (!op->want.enabled || !exts ||
            gust__ws_deflate_negotiate(exts, false, &op->want, &dp, NULL, 0) != 1)
            why = "an extension we did not offer";
    }
    if (why) {
        gust_log_warning(LOG_MODULE, "%s: handshake refused: %s (status %d)",
                         op->host, why, n > 0 ? r.status : 0);
        free(proto);
        free(exts);
        op_fail(op, -EPROTO);
        return;
    }
    op->done = true;
    gust_timer_stop(&op->timer);
    gust_websocket *ws = gust__ws_new(op->loop, NULL, true, NULL,
                                      sizeof(gust__ws_read));
    gust__ws_deflate *z = dp.enabled ? gust__ws_deflate_new(&dp) : NULL;
    if (!ws || (dp.enabled && !z)) {
        if (ws)
            gust__ws_unref(ws);
        gust__ws_deflate_free(z);
        free(proto);
        free(exts);
        op->done = false;
        op_fail(op, -ENOMEM);
        return;
    }
    ws->rd = (gust__ws_read *)(void *)ws->state;
    ws->rd->set = op->set;
    ws->set = op->has_set ? &ws->rd->set : NULL;
    ws->deflate = z;
    ws->subprotocol = proto;
    ws->extensions = exts;
    gust__ws_set_stream(ws, s); /* the stream is the socket's now */
    op->stream = NULL;
    op_release(op);             /* so the stream's reference goes */
    gust__ws_ref(ws); /* the caller's, dropped by gust_websocket_free */
    if (gust__ws_start(ws, NULL, 0) < 0) {
        gust_stream_close(s);
        gust__ws_unref(ws);
        op->done = false;
        op_fail(op, -ENOMEM);
        return;
    }
    gust_future_set_result(op->f, (gust_value){ws, (gust_free_fn)gust_websocket_free});
    op_release(op);
}

static void send_request(connect_op *op)
{
    gust_stream *s = op->stream;
    if (gust_stream_write(s, op->request, op->request_len, NULL, NULL) < 0 ||
        gust_stream_read_until(s, "\r\n\r\n", 4, MAX_RESPONSE_HEAD, on_head,
                               op) < 0)
        op_fail(op, GUST_ESTREAMCLOSED);
}

static void on_tls(gust_stream *s, int status, void *data)
{
    (void)s;
    connect_op *op = data;
    if (op->done)
        return;
    if (status < 0) {
        op_fail(op, status);
        return;
    }
    send_request(op);
}

static void on_connect(gust_loop *loop, int status, gust_stream *s, void *data)
{
    (void)loop;
    connect_op *op = data;
    if (op->done) { /* timed out meanwhile */
        if (s)
            gust_stream_close(s);
    } else if (status < 0) {
        op_fail(op, status);
    } else {
        op->stream = s;
        op->refs++;
        gust_stream_set_close_callback(s, on_op_stream_close, op);
        gust_stream_set_nodelay(s, true);
        if (!op->tls)
            send_request(op);
        else if (gust_stream_start_tls(s, op->tls, op->host, on_tls, op) < 0)
            op_fail(op, -EPROTO);
    }
    op_release(op); /* the connect's */
}

static int build_request(connect_op *op, const gust_url *u,
                         const gust_websocket_connect_options *o)
{
    size_t cap = 512 + u->path.len + (u->query.ptr ? u->query.len + 1 : 0) +
                 2 * u->host.len;
    for (const char *const *h = o && o->headers ? o->headers : NULL; h && *h; h++)
        cap += strlen(*h) + 2;
    for (size_t i = 0; i < op->nprotocols; i++)
        cap += strlen(op->protocols[i]) + 2;
    char *b = malloc(cap);
    if (!b)
        return -ENOMEM;
    const char *fmt_host = u->host_ipv6 ? "[%.*s]" : "%.*s";
    int n = snprintf(b, cap, "GET %.*s%s%.*s HTTP/1.1\r\nHost: ",
                     (int)(u->path.len ? u->path.len : 1),
                     u->path.len ? u->path.ptr : "/", u->query.ptr ? "?" : "",
                     (int)(u->query.ptr ? u->query.len : 0),
                     u->query.ptr ? u->query.ptr : "");
    n += snprintf(b + n, cap - (size_t)n, fmt_host, (int)u->host.len, u->host.ptr);
    if (u->port_explicit)
        n += snprintf(b + n, cap - (size_t)n, ":%u", u->port);
    n += snprintf(b + n, cap - (size_t)n,
                  "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n",
                  op->key);
    if (op->nprotocols) {
        n += snprintf(b + n, cap - (size_t)n, "Sec-WebSocket-Protocol: ");
        for (size_t i = 0; i < op->nprotocols; i++)
            n += snprintf(b + n, cap - (size_t)n, "%s%s", i ? ", " : "",
                          op->protocols[i]);
        n += snprintf(b + n, cap - (size_t)n, "\r\n");
    }
    if (op->want.enabled)
        n += snprintf(b + n, cap - (size_t)n, "Sec-WebSocket-Extensions: "
                      "permessage-deflate; client_max_window_bits\r\n");
    for (const char *const *h = o && o->headers ? o->headers : NULL; h && *h; h++) {
        if (strpbrk(*h, "\r\n")) {
            free(b);
            return -EINVAL;
        }
        n += snprintf(b + n, cap - (size_t)n, "%s\r\n", *h);
    }
    n += snprintf(b + n, cap - (size_t)n, "\r\n");
    op->request = b;
    op->request_len = (size_t)n;
    return 0;
}

static gust_future *failed(gust_loop *loop, int code)
{
    gust_future *f = gust_future_new(loop);
    if (f)
        gust_future_set_error(f, code);
    return f;
}

gust_future *gust_websocket_connect(gust_loop *loop, const char *url,
                                    const gust_websocket_connect_options *o)
{
    gust_url u;
    if (!url || gust_url_parse(gust_str_cstr(url), &u) < 0)
        return failed(loop, -EINVAL);
    bool tls = gust_str_eq_nocase(u.scheme, GUST_STR("wss"));
    if (!tls && !gust_str_eq_nocase(u.scheme, GUST_STR("ws")))
        return failed(loop, -EINVAL);
    connect_op *op = calloc(1, sizeof *op);
    if (!op)
        return NULL;
    op->loop = loop;
    op->refs = 1;
    op->f = gust_future_new(loop);
    op->host = strndup(u.host.ptr, u.host.len);
    if (!op->f || !op->host) {
        free(op->host);
        if (op->f)
            gust_future_unref(op->f);
        free(op);
        return NULL;
    }
    gust_timer_init(loop, &op->timer);
    gust_future *result = gust_future_ref(op->f);
    if (o && o->settings) {
        op->set = *o->settings;
        op->has_set = true;
        if (o->settings->compression) {
            op->want.enabled = true;
            op->want.our_no_context = o->settings->no_context_takeover;
            op->want.our_window = (uint8_t)o->settings->max_window_bits;
            op->want.level = o->settings->compression_level;
            op->want.mem_level = o->settings->compression_mem_level;
        }
    }
    for (const char *const *p = o && o->subprotocols ? o->subprotocols : NULL;
         p && *p; p++) {
        char **np = realloc(op->protocols, (op->nprotocols + 1) * sizeof *np);
        if (!np || !(np[op->nprotocols] = strdup(*p))) {
            if (np)
                op->protocols = np;
            op_fail(op, -ENOMEM);
            return result;
        }
        op->protocols = np;
        op->nprotocols++;
    }
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        op_fail(op, -EIO);
        return result;
    }
    EVP_EncodeBlock((unsigned char *)op->key, raw, sizeof raw);
    gust__ws_accept_key(op->key, op->accept);
    int rc = build_request(op, &u, o);
    if (rc < 0) {
        op_fail(op, rc);
        return result;
    }
    if (tls) {
        /* A caller's context is borrowed: the stream takes its own
         * reference in start_tls. */
        if (o && o->tls) {
            op->tls = o->tls;
        } else if (!(op->tls = gust_tls_context_new_client(NULL))) {
            op_fail(op, -ENOMEM);
            return result;
        } else {
            op->tls_owned = true;
        }
    }
    double t = o && o->connect_timeout > 0 ? o->connect_timeout : 20.0;
    gust_timer_start(&op->timer, t, 0, on_timeout, op);
    op->refs++;
    if (gust_tcp_connect(loop, op->host, u.port, NULL, on_connect, op) < 0) {
        op->refs--;
        op_fail(op, -ENOMEM);
    }
    return result;
}

/* ---- Messages ------------------------------------------------------------- */

static void message_free(void *p)
{
    free(p);
}

static gust_websocket_message *message_copy(const char *data, size_t len,
                                            bool binary)
{
    gust_websocket_message *m = malloc(sizeof *m + len + 1);
    if (!m)
        return NULL;
    m->binary = binary;
    m->len = len;
    memcpy(m->data, data, len);
    m->data[len] = 0;
    return m;
}

bool gust__ws_client_deliver(gust_websocket *ws, char *data, size_t len,
                             bool binary, bool owned, bool *taken)
{
    (void)owned, (void)taken;
    gust__ws_read *rd = ws->rd;
    if (ws->close_sent)
        return true; /* we are closing: what crosses our close is dropped */
    if (rd->cb) {
        gust_websocket_message *m = message_copy(data, len, binary);
        if (!m) {
            gust__ws_fail(ws, GUST_WS_CLOSE_INTERNAL, "out of memory");
            return false;
        }
        rd->cb(ws, m, 0, rd->cb_data);
        free(m);
        return true;
    }
    gust_websocket_message *m = message_copy(data, len, binary);
    if (!m) {
        gust__ws_fail(ws, GUST_WS_CLOSE_INTERNAL, "out of memory");
        return false;
    }
    if (rd->pending) {
        gust_future *f = rd->pending;
        rd->pending = NULL;
        gust_future_set_result(f, (gust_value){m, message_free});
        gust_future_unref(f);
    } else {
        rd->held = m;
    }
    /* One message per read_message: the next waits in the socket. */
    ws->busy = true;
    return false;
}

gust_future *gust_websocket_read_message(gust_websocket *ws)
{
    gust__ws_read *rd = ws->rd;
    if (!rd || rd->pending || rd->cb)
        return failed(ws->loop, -EINVAL);
    gust_future *f = gust_future_new(ws->loop);
    if (!f)
        return NULL;
    if (rd->held) {
        gust_websocket_message *m = rd->held;
        rd->held = NULL;
        gust_future_set_result(f, (gust_value){m, message_free});
    } else if (ws->closed) {
        gust_future_set_error(f, GUST_ESTREAMCLOSED);
        return f;
    } else {
        rd->pending = gust_future_ref(f);
    }
    if (ws->busy) {
        ws->busy = false;
        gust__ws_resume(ws);
    }
    return f;
}

static void cb_start(gust_loop *loop, void *data)
{
    (void)loop;
    gust_websocket *ws = data;
    gust__ws_read *rd = ws->rd;
    if (rd->held) {
        gust_websocket_message *m = rd->held;
        rd->held = NULL;
        rd->cb(ws, m, 0, rd->cb_data);
        free(m);
    }
    if (ws->closed) {
        if (!rd->close_told) {
            rd->close_told = true;
            rd->cb(ws, NULL, ws->close_code, rd->cb_data);
        }
    } else if (ws->busy) {
        ws->busy = false;
        gust__ws_resume(ws);
    }
    gust__ws_unref(ws);
}

int gust_websocket_on_message(gust_websocket *ws,
                              void (*cb)(gust_websocket *ws,
                                         const gust_websocket_message *msg,
                                         int code, void *data),
                              void *data)
{
    gust__ws_read *rd = ws->rd;
    if (!rd || rd->pending || rd->cb || !cb)
        return -EINVAL;
    rd->cb = cb;
    rd->cb_data = data;
    gust__ws_ref(ws);
    if (gust_loop_add_callback(ws->loop, cb_start, ws) < 0) {
        gust__ws_unref(ws);
        rd->cb = NULL;
        return -ENOMEM;
    }
    return 0;
}

void gust__ws_client_closed(gust_websocket *ws)
{
    gust__ws_read *rd = ws->rd;
    if (rd->pending) {
        gust_future *f = rd->pending;
        rd->pending = NULL;
        gust_future_set_error(f, GUST_ESTREAMCLOSED);
        gust_future_unref(f);
    }
    if (rd->cb && !rd->held && !rd->close_told) {
        rd->close_told = true;
        rd->cb(ws, NULL, ws->close_code, rd->cb_data);
    }
}

void gust_websocket_free(gust_websocket *ws)
{
    if (!ws)
        return;
    if (ws->stream && !ws->closed)
        gust_stream_close(ws->stream);
    if (ws->rd && ws->rd->held) {
        free(ws->rd->held);
        ws->rd->held = NULL;
    }
    gust__ws_unref(ws);
}
