/* One WebSocket connection, either role: reading and parsing frames,
 * assembling messages, control frames, writing, pings and the close
 * handshake (RFC 6455 sections 5 to 7). The role files add the handshake
 * and where messages go. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/rand.h>

#include "gust/error.h"
#include "gust/log.h"
#include "websocket_internal.h"

#define LOG_MODULE "websocket"
#define READ_CHUNK (64 * 1024)
/* Frames up to this size are built on the stack, header and payload in
 * one buffer; up to BIG_FRAME in one malloc'd buffer (one write, so one
 * segment, rather than a header on its own); beyond, header and payload
 * are two writes. */
#define SMALL_FRAME 2048
#define BIG_FRAME (256 * 1024)

static const gust_websocket_settings defaults = {0};

static const gust_websocket_settings *settings_of(const gust_websocket *ws)
{
    return ws->set ? ws->set : &defaults;
}

static size_t max_message(const gust_websocket *ws)
{
    size_t m = settings_of(ws)->max_message_size;
    return m ? m : 10u * 1024 * 1024;
}

static size_t max_queued(const gust_websocket *ws)
{
    size_t m = settings_of(ws)->max_queued_bytes;
    return m ? m : 16u * 1024 * 1024;
}

static double close_timeout(const gust_websocket *ws)
{
    double t = settings_of(ws)->close_timeout;
    return t > 0 ? t : 5.0;
}

static void start_read(gust_websocket *ws);
static void on_timer(gust_timer *t, void *data);
static void on_stream_close(gust_stream *s, void *data);
static void start_later(gust_loop *loop, void *data);

gust_websocket *gust__ws_new(gust_loop *loop, gust_stream *stream,
                             bool client, const gust_websocket_settings *set,
                             size_t state_size)
{
    gust_websocket *ws = calloc(1, sizeof *ws + state_size);
    if (!ws)
        return NULL;
    ws->stream = stream;
    ws->loop = loop;
    ws->set = set;
    ws->client = client;
    ws->close_code = GUST_WS_CLOSE_ABNORMAL;
    ws->refs = 1; /* the stream's (dropped after on_close), or the maker's */
    gust__ws_parser_init(&ws->p, !client, 0);
    gust_timer_init(loop, &ws->timer);
    if (stream)
        gust__ws_set_stream(ws, stream);
    return ws;
}

void gust__ws_set_stream(gust_websocket *ws, gust_stream *stream)
{
    ws->stream = stream;
    gust_stream_set_data(stream, ws);
    gust_stream_set_close_callback(stream, on_stream_close, ws);
}

void gust__ws_ref(gust_websocket *ws)
{
    ws->refs++;
}

/* Not inlined: gcc's -Wuse-after-free cannot see that a caller holding a
 * reference across a nested ref/unref pair keeps ws alive. */
__attribute__((noinline)) void gust__ws_unref(gust_websocket *ws)
{
    if (--ws->refs > 0)
        return;
    gust_timer_stop(&ws->timer);
    gust__ws_deflate_free(ws->deflate);
    free(ws->msg);
    free(ws->ctl);
    free(ws->pend);
    free(ws->close_reason);
    free(ws->subprotocol);
    free(ws->extensions);
    free(ws);
}

static void arm_pings(gust_websocket *ws)
{
    double iv = settings_of(ws)->ping_interval;
    if (iv > 0 && !ws->close_sent)
        gust_timer_start(&ws->timer, iv, iv, on_timer, ws);
}

int gust__ws_start(gust_websocket *ws, const char *leftover, size_t len)
{
    if (len) {
        ws->pend = malloc(len);
        if (!ws->pend)
            return -ENOMEM;
        memcpy(ws->pend, leftover, len);
        ws->pend_len = len;
        ws->pend_off = 0;
    }
    if (ws->deflate)
        ws->p.rsv_allowed = GUST__WS_RSV1;
    arm_pings(ws);
    /* busy until the turn after: the leftover is parsed from the loop. */
    ws->busy = true;
    gust__ws_ref(ws);
    if (gust_loop_add_callback(ws->loop, start_later, ws) < 0) {
        gust__ws_unref(ws);
        return -ENOMEM;
    }
    return 0;
}

static void start_later(gust_loop *loop, void *data)
{
    (void)loop;
    gust_websocket *ws = data;
    ws->busy = false;
    if (!ws->closed)
        gust__ws_resume(ws);
    gust__ws_unref(ws);
}

/* ---- Writing --------------------------------------------------------------- */

static int send_frame(gust_websocket *ws, unsigned first, const void *data,
                      size_t len, gust_stream_write_cb cb, void *user)
{
    if (!ws->stream || ws->closed)
        return GUST_ESTREAMCLOSED;
    uint8_t hdr[GUST__WS_MAX_HEADER];
    uint8_t mask[4];
    int rc;
    if (ws->client) {
        /* RFC 6455 section 5.3: a fresh unpredictable key per frame. */
        if (RAND_bytes(mask, 4) != 1)
            return -EIO;
    }
    size_t hl = gust__ws_write_header(hdr, first, len, ws->client ? mask : NULL);
    if (!ws->client && hl + len > BIG_FRAME) {
        rc = gust_stream_write(ws->stream, hdr, hl, NULL, NULL);
        if (rc == 0)
            rc = gust_stream_write(ws->stream, data, len, cb, user);
    } else {
        char small[SMALL_FRAME];
        char *buf = hl + len <= sizeof small ? small : malloc(hl + len);
        if (!buf)
            return -ENOMEM;
        memcpy(buf, hdr, hl);
        if (len)
            memcpy(buf + hl, data, len);
        if (ws->client)
            gust__ws_unmask(buf + hl, len, mask, 0);
        rc = gust_stream_write(ws->stream, buf, hl + len, cb, user);
        if (buf != small)
            free(buf);
    }
    if (rc == 0 && gust_stream_write_buffer_size(ws->stream) > max_queued(ws)) {
        gust_log_warning(LOG_MODULE, "peer does not read: over %zu bytes "
                         "queued, closing", max_queued(ws));
        gust_stream_close(ws->stream);
        return -EMSGSIZE;
    }
    return rc;
}

static int write_message(gust_websocket *ws, const void *data, size_t len,
                         bool binary, gust_stream_write_cb cb, void *user)
{
    if (!ws || ws->close_sent || ws->closed)
        return GUST_ESTREAMCLOSED;
    unsigned first = GUST__WS_FIN |
                     (binary ? GUST__WS_OP_BINARY : GUST__WS_OP_TEXT);
    if (ws->deflate) {
        char *z = NULL;
        size_t zlen = 0;
        int rc = gust__ws_deflate_message(ws->deflate, data, len, &z, &zlen);
        if (rc < 0)
            return rc;
        rc = send_frame(ws, first | GUST__WS_RSV1, z, zlen, cb, user);
        free(z);
        return rc;
    }
    return send_frame(ws, first, data, len, cb, user);
}

int gust_websocket_write_message(gust_websocket *ws, const void *data,
                                 size_t len, bool binary)
{
    return write_message(ws, data, len, binary, NULL, NULL);
}

static void on_written_f(gust_stream *s, int status, void *user)
{
    (void)s;
    gust_future *f = user;
    if (status < 0)
        gust_future_set_error(f, GUST_ESTREAMCLOSED);
    else
        gust_future_set_result(f, GUST_VALUE_NONE);
    gust_future_unref(f);
}

gust_future *gust_websocket_write_message_f(gust_websocket *ws,
                                            const void *data, size_t len,
                                            bool binary)
{
    gust_future *f = gust_future_new(ws->loop);
    if (!f)
        return NULL;
    gust_future_ref(f); /* the write's */
    int rc = write_message(ws, data, len, binary, on_written_f, f);
    if (rc < 0) {
        gust_future_unref(f);
        gust_future_set_error(f, rc);
    }
    return f;
}

int gust_websocket_ping(gust_websocket *ws, const void *data, size_t len)
{
    if (len > 125 || (len && !data))
        return -EINVAL;
    if (ws->close_sent || ws->closed)
        return GUST_ESTREAMCLOSED;
    return send_frame(ws, GUST__WS_FIN | GUST__WS_OP_PING, data, len, NULL,
                      NULL);
}

/* ---- Closing --------------------------------------------------------------- */

/* Our last frame is out: the server closes the TCP connection first
 * (section 7.1.1), by half-closing and reading until the client's EOF so
 * that unread input does not turn the close into a reset; the client waits
 * for the server to close. Both within close_timeout. */
static void on_last_written(gust_stream *s, int status, void *user)
{
    gust_websocket *ws = user;
    if (status == 0 && !ws->closed) {
        if (!ws->client)
            shutdown(gust_stream_fd(s), SHUT_WR);
        ws->draining = true;
        if (!ws->reading && !ws->busy)
            start_read(ws);
    }
    gust__ws_unref(ws);
}

static void send_close(gust_websocket *ws, int code, const char *reason,
                       size_t rlen, bool last)
{
    char payload[125];
    size_t n = 0;
    if (code) {
        payload[0] = (char)(code >> 8);
        payload[1] = (char)code;
        if (rlen)
            memcpy(payload + 2, reason, rlen);
        n = 2 + rlen;
    }
    ws->close_sent = true;
    gust_timer_start(&ws->timer, close_timeout(ws), 0, on_timer, ws);
    gust__ws_ref(ws);
    if (send_frame(ws, GUST__WS_FIN | GUST__WS_OP_CLOSE, payload, n,
                   last ? on_last_written : NULL, ws) < 0 || !last)
        gust__ws_unref(ws);
}

int gust_websocket_close(gust_websocket *ws, int code, const char *reason)
{
    size_t rlen = reason ? strlen(reason) : 0;
    if ((code && (!gust__ws_close_code_valid(code))) || rlen > 123 ||
        (rlen && !code) || (rlen && !gust__utf8_valid(reason, rlen)))
        return -EINVAL;
    if (ws->close_sent || ws->closed)
        return 0;
    send_close(ws, code, reason, rlen, ws->close_received);
    if (ws->client && ws->busy) {
        /* A client holding a message no one asked for would not read the
         * server's close: read on (later messages are dropped). */
        ws->busy = false;
        gust__ws_resume(ws);
    }
    return 0;
}

void gust__ws_fail(gust_websocket *ws, int code, const char *why)
{
    if (ws->failed || ws->closed)
        return;
    gust_log_info(LOG_MODULE, "failing the connection (%d): %s", code, why);
    ws->failed = true;
    if (ws->close_sent) {
        gust_stream_close(ws->stream);
        return;
    }
    /* After our close frame nothing the peer sends is read as frames. */
    send_close(ws, code, "", 0, true);
}

static void on_timer(gust_timer *t, void *data)
{
    (void)t;
    gust_websocket *ws = data;
    if (ws->closed)
        return;
    if (ws->close_sent) { /* the close handshake took too long */
        gust_stream_close(ws->stream);
        return;
    }
    double now = gust_loop_time(ws->loop);
    const gust_websocket_settings *s = settings_of(ws);
    double timeout = s->ping_timeout > 0 ? s->ping_timeout
                                         : 3 * s->ping_interval;
    if (ws->ping_outstanding && now - ws->ping_sent_at >= timeout) {
        gust_log_info(LOG_MODULE, "no pong in %.1f s, closing", timeout);
        gust__ws_fail(ws, GUST_WS_CLOSE_INTERNAL, "ping timeout");
        return;
    }
    if (!ws->ping_outstanding) {
        ws->ping_outstanding = true;
        ws->ping_sent_at = now;
        gust_websocket_ping(ws, NULL, 0);
    }
}

static void on_stream_close(gust_stream *s, void *data)
{
    (void)s;
    gust_websocket *ws = data;
    ws->closed = true;
    ws->reading = false;
    gust_timer_stop(&ws->timer);
    ws->stream = NULL;
    if (ws->client)
        gust__ws_client_closed(ws);
    else
        gust__ws_server_closed(ws);
    gust__ws_unref(ws);
}

/* ---- Reading --------------------------------------------------------------- */

static bool deliver(gust_websocket *ws, char *data, size_t len, bool binary,
                    bool owned, bool *taken)
{
    *taken = false;
    return ws->client ? gust__ws_client_deliver(ws, data, len, binary, owned,
                                                taken)
                      : gust__ws_server_deliver(ws, data, len, binary, owned,
                                                taken);
}

static int handle_control(gust_websocket *ws, unsigned op, char *data,
                          size_t len)
{
    if (op == GUST__WS_OP_PING) {
        if (!ws->close_sent)
            send_frame(ws, GUST__WS_FIN | GUST__WS_OP_PONG, data, len, NULL,
                       NULL);
        if (ws->cls && ws->cls->on_ping)
            ws->cls->on_ping(ws, data, len);
        return 0;
    }
    if (op == GUST__WS_OP_PONG) {
        ws->ping_outstanding = false;
        if (ws->cls && ws->cls->on_pong)
            ws->cls->on_pong(ws, data, len);
        return 0;
    }
    /* CLOSE */
    int code = GUST_WS_CLOSE_NO_STATUS;
    if (len == 1) {
        gust__ws_fail(ws, GUST_WS_CLOSE_PROTOCOL_ERROR, "close frame of 1 byte");
        return -1;
    }
    if (len >= 2) {
        code = (uint8_t)data[0] << 8 | (uint8_t)data[1];
        if (!gust__ws_close_code_valid(code)) {
            gust__ws_fail(ws, GUST_WS_CLOSE_PROTOCOL_ERROR, "invalid close code");
            return -1;
        }
        if (!gust__utf8_valid(data + 2, len - 2)) {
            gust__ws_fail(ws, GUST_WS_CLOSE_INVALID_DATA,
                          "close reason not UTF-8");
            return -1;
        }
        ws->close_reason = malloc(len - 1);
        if (ws->close_reason) {
            memcpy(ws->close_reason, data + 2, len - 2);
            ws->close_reason[len - 2] = 0;
        }
    }
    ws->close_received = true;
    ws->close_code = (uint16_t)code;
    if (!ws->close_sent) {
        /* Echo the code (none for none), as section 5.5.1 suggests. */
        send_close(ws, code == GUST_WS_CLOSE_NO_STATUS ? 0 : code, "", 0, true);
    } else if (!ws->client) {
        gust_stream_close(ws->stream); /* our close was answered */
    } else {
        ws->draining = true; /* the server closes the TCP connection */
    }
    return -1; /* nothing after a close frame is read */
}

/* Appends payload bytes of a data frame to the message. */
static int append(gust_websocket *ws, const char *chunk, size_t clen,
                  bool last_frame)
{
    size_t start = ws->msg_len;
    if (ws->msg_compressed) {
        int rc = gust__ws_inflate(ws->deflate, chunk, clen, last_frame,
                                  &ws->msg, &ws->msg_len, &ws->msg_cap,
                                  max_message(ws));
        if (rc == -EMSGSIZE) {
            gust__ws_fail(ws, GUST_WS_CLOSE_TOO_BIG, "message too big");
            return -1;
        }
        if (rc < 0) {
            gust__ws_fail(ws, rc == -ENOMEM ? GUST_WS_CLOSE_INTERNAL
                                            : GUST_WS_CLOSE_PROTOCOL_ERROR,
                          "cannot decompress");
            return -1;
        }
    } else if (clen) {
        if (ws->msg_len + clen + 1 > ws->msg_cap) {
            size_t cap = ws->msg_cap ? ws->msg_cap : 256;
            while (cap < ws->msg_len + clen + 1)
                cap *= 2;
            char *b = realloc(ws->msg, cap);
            if (!b) {
                gust__ws_fail(ws, GUST_WS_CLOSE_INTERNAL, "out of memory");
                return -1;
            }
            ws->msg = b;
            ws->msg_cap = cap;
        }
        memcpy(ws->msg + ws->msg_len, chunk, clen);
        ws->msg_len += clen;
    }
    if (ws->msg_op == GUST__WS_OP_TEXT && ws->msg_len > start &&
        !gust__utf8_feed(&ws->utf8, (const uint8_t *)ws->msg + start,
                         ws->msg_len - start)) {
        gust__ws_fail(ws, GUST_WS_CLOSE_INVALID_DATA, "text is not UTF-8");
        return -1;
    }
    return 0;
}

/* Parses buf[0, len); returns the bytes used (less than len when reading
 * must stop: the application holds a message, or the connection failed). */
static size_t feed(gust_websocket *ws, char *buf, size_t len)
{
    size_t pos = 0;
    gust__ws_parser *p = &ws->p;
    while (!ws->failed && !ws->close_received && !ws->closed &&
           (pos < len || p->in_payload)) {
        size_t used = 0;
        char *chunk = NULL;
        size_t clen = 0;
        int ev = gust__ws_parse(p, buf + pos, len - pos, &used, &chunk, &clen);
        pos += used;
        if (ev < 0) {
            gust__ws_fail(ws, GUST_WS_CLOSE_PROTOCOL_ERROR, "bad frame header");
            break;
        }
        if (ev == GUST__WS_NEED)
            break;
        if (ev == GUST__WS_HEADER) {
            if (p->opcode >= 8) {
                if (p->rsv) {
                    gust__ws_fail(ws, GUST_WS_CLOSE_PROTOCOL_ERROR,
                                  "RSV bit on a control frame");
                    break;
                }
                continue;
            }
            if (p->opcode != GUST__WS_OP_CONT) {
                if (ws->msg_op) {
                    gust__ws_fail(ws, GUST_WS_CLOSE_PROTOCOL_ERROR,
                                  "new message inside a fragmented one");
                    break;
                }
                ws->msg_op = p->opcode;
                ws->msg_compressed = (p->rsv & GUST__WS_RSV1) != 0;
                ws->utf8 = (gust__utf8){0, 0, 0};
                ws->msg_len = 0;
            } else if (!ws->msg_op || p->rsv) {
                gust__ws_fail(ws, GUST_WS_CLOSE_PROTOCOL_ERROR,
                              ws->msg_op ? "RSV bit on a continuation"
                                         : "continuation of no message");
                break;
            }
            if (!ws->msg_compressed &&
                p->len > max_message(ws) - ws->msg_len) {
                gust__ws_fail(ws, GUST_WS_CLOSE_TOO_BIG, "message too big");
                break;
            }
            continue;
        }
        /* DATA */
        bool frame_end = p->left == 0;
        if (p->opcode >= 8) {
            if (frame_end && ws->ctl_len == 0) {
                if (handle_control(ws, p->opcode, chunk, clen) < 0)
                    break;
                continue;
            }
            if (!ws->ctl && !(ws->ctl = malloc(128))) {
                gust__ws_fail(ws, GUST_WS_CLOSE_INTERNAL, "out of memory");
                break;
            }
            memcpy(ws->ctl + ws->ctl_len, chunk, clen);
            ws->ctl_len = (uint8_t)(ws->ctl_len + clen);
            if (frame_end) {
                char *c = ws->ctl;
                size_t n = ws->ctl_len;
                ws->ctl = NULL;
                ws->ctl_len = 0;
                int rc = handle_control(ws, p->opcode, c, n);
                free(c);
                if (rc < 0)
                    break;
            }
            continue;
        }
        bool msg_end = frame_end && p->fin;
        bool binary = ws->msg_op == GUST__WS_OP_BINARY;
        bool taken = false, go_on;
        if (msg_end && ws->msg_len == 0 && !ws->msg_compressed &&
            clen == p->len) {
            /* The whole message in one piece of the input: delivered from
             * there, unmasked in place, not copied. */
            if (!binary && !gust__utf8_valid(chunk, clen)) {
                gust__ws_fail(ws, GUST_WS_CLOSE_INVALID_DATA,
                              "text is not UTF-8");
                break;
            }
            ws->msg_op = 0;
            go_on = deliver(ws, chunk, clen, binary, false, &taken);
        } else {
            if (append(ws, chunk, clen, frame_end && p->fin) < 0)
                break;
            if (!msg_end)
                continue;
            if (!binary && !gust__utf8_complete(&ws->utf8)) {
                gust__ws_fail(ws, GUST_WS_CLOSE_INVALID_DATA,
                              "text ends inside a character");
                break;
            }
            ws->msg_op = 0;
            char *m = ws->msg ? ws->msg : (char *)"";
            size_t n = ws->msg_len;
            if (ws->msg)
                m[n] = 0;
            go_on = deliver(ws, m, n, binary, ws->msg != NULL, &taken);
            if (taken) {
                ws->msg = NULL;
                ws->msg_cap = 0;
            }
            ws->msg_len = 0;
            if (ws->msg && ws->msg_cap > 4096) { /* idle sockets keep none */
                free(ws->msg);
                ws->msg = NULL;
                ws->msg_cap = 0;
            }
        }
        if (!go_on)
            break;
    }
    if (ws->msg_op == 0 && ws->msg) {
        free(ws->msg);
        ws->msg = NULL;
        ws->msg_cap = 0;
    }
    return pos;
}

static void on_read(gust_stream *s, int status, const char *data, size_t len,
                    void *user)
{
    (void)s;
    gust_websocket *ws = user;
    ws->reading = false;
    if (status < 0 || ws->closed)
        return; /* the close callback follows */
    if (ws->draining || ws->failed || ws->close_received) {
        start_read(ws); /* discarded until the peer's EOF */
        return;
    }
    /* The stream's buffer is its own heap memory: the payload is unmasked
     * in it rather than copied out first. */
    char *buf = (char *)data;
    gust__ws_ref(ws);
    size_t used = feed(ws, buf, len);
    if (used < len && !ws->closed && ws->busy && !ws->failed &&
        !ws->close_received) {
        /* The application holds a message: keep the rest for later. */
        ws->pend = malloc(len - used);
        if (ws->pend) {
            memcpy(ws->pend, buf + used, len - used);
            ws->pend_len = len - used;
            ws->pend_off = 0;
        } else {
            gust__ws_fail(ws, GUST_WS_CLOSE_INTERNAL, "out of memory");
        }
    }
    if (!ws->busy)
        start_read(ws);
    gust__ws_unref(ws);
}

static void start_read(gust_websocket *ws)
{
    if (ws->reading || ws->closed || !ws->stream)
        return;
    if (gust_stream_read_bytes(ws->stream, READ_CHUNK, GUST_READ_PARTIAL,
                               on_read, ws) == 0)
        ws->reading = true;
    else
        gust_stream_close(ws->stream);
}

void gust__ws_resume(gust_websocket *ws)
{
    if (ws->closed || ws->busy)
        return;
    gust__ws_ref(ws);
    if (ws->pend) {
        if (!ws->draining && !ws->failed && !ws->close_received) {
            size_t used = feed(ws, ws->pend + ws->pend_off,
                               ws->pend_len - ws->pend_off);
            ws->pend_off += used;
        } else {
            ws->pend_off = ws->pend_len;
        }
        if (ws->pend_off == ws->pend_len || ws->failed ||
            ws->close_received) {
            free(ws->pend);
            ws->pend = NULL;
            ws->pend_off = ws->pend_len = 0;
        }
    }
    if (!ws->busy && !ws->pend)
        start_read(ws);
    gust__ws_unref(ws);
}

/* ---- Accessors --------------------------------------------------------------- */

void *gust_websocket_state(gust_websocket *ws)
{
    return ws->state;
}

gust_handler *gust_websocket_handler(gust_websocket *ws)
{
    return ws->h;
}

const char *gust_websocket_subprotocol(const gust_websocket *ws)
{
    return ws->subprotocol;
}

const char *gust_websocket_extensions(const gust_websocket *ws)
{
    return ws->extensions ? ws->extensions : "";
}

size_t gust_websocket_queued_bytes(const gust_websocket *ws)
{
    return ws->stream ? gust_stream_write_buffer_size(ws->stream) : 0;
}

bool gust_websocket_closing(const gust_websocket *ws)
{
    return ws->close_sent || ws->close_received || ws->closed;
}

gust_loop *gust_websocket_loop(const gust_websocket *ws)
{
    return ws->loop;
}

int gust_websocket_close_code(const gust_websocket *ws)
{
    return ws->close_code;
}

const char *gust_websocket_close_reason(const gust_websocket *ws)
{
    return ws->close_reason ? ws->close_reason : "";
}
