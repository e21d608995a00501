/* HTTP client, HTTP/2: one libnghttp2 client session per connection whose
 * server chose "h2" by ALPN, carrying many fetches at once, one stream
 * each. libnghttp2 does the framing, HPACK, flow control, the stream limit
 * (requests past the server's SETTINGS_MAX_CONCURRENT_STREAMS wait in its
 * queue) and GOAWAY; this file moves bytes between it and the connection's
 * stream and turns stream events into the same response steps HTTP/1 uses
 * (header_line, body_prepare, body_deliver, body_done in
 * http_client_conn.c), so redirects, gzip, limits and callbacks behave the
 * same.
 *
 * Reentrancy. nghttp2_session_mem_recv() runs our callbacks, which run the
 * user's header and streaming callbacks, which may cancel any fetch or
 * free the client. So: a stream forgets its fetch (st->f = NULL) whenever
 * the fetch ends, whoever ends it; nothing is sent from inside mem_recv
 * (frames submitted meanwhile go out when it returns); and the session is
 * freed only with its connection, from the stream's close callback, never
 * inside one of ours. A stream is found through nghttp2's stream user data
 * and freed when nghttp2 closes it; one that nghttp2 never opened (a
 * request it could not start) is found in our own list and freed with its
 * user data cleared, so a freed stream cannot be reached.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

#include "gust/http_client.h"
#include "gust/log.h"
#include "http_client_internal.h"

#define READ_CHUNK 65536
/* Frames are gathered up to this size before one write. */
#define OUT_CHUNK 65536
/* Past this much unsent data in the stream's queue, wait for it to drain
 * before asking nghttp2 for more (request bodies are paced by the kernel,
 * not buffered twice). */
#define MAX_QUEUED (1u << 20)
/* Receive windows: a stream's (SETTINGS_INITIAL_WINDOW_SIZE) and the
 * connection's, so a large download is not paced by 64 KiB round trips.
 * Data is handed on as it arrives, so the windows cost no buffer. */
#define STREAM_WINDOW (1 << 20)
#define CONN_WINDOW (16 << 20)

struct gust__http_client_h2_stream {
    gust__http_client_h2 *h2;
    gust__http_client_fetch *f; /* NULL once its fetch ended or completed */
    gust__http_client_h2_stream *prev, *next;
    int32_t id;
    const char *body; /* the request body, in f's arena */
    size_t body_len, body_off;
    size_t head_bytes; /* of the head being received (RFC 9113 sizes) */
    bool final_head;   /* the final (non-1xx) head has arrived */
    /* nghttp2 reset the stream itself (a response that broke the
     * protocol: a bad field, DATA past its Content-Length...). */
    uint32_t local_error;
};

struct gust__http_client_h2 {
    nghttp2_session *ng;
    gust__http_client_conn *conn;
    gust__http_client_h2_stream *streams; /* until nghttp2 closes them */
    size_t nstreams;
    bool in_recv, in_send;
    bool write_wait;   /* waiting for the stream's queue to drain */
    bool goaway;       /* received: no new streams */
    bool exhausted;    /* stream ids used up */
    uint32_t sent_error; /* the error code of a GOAWAY we sent, or 0 */
    char *out;
    size_t out_len;
};

static void flush(gust__http_client_h2 *h2);

/* ---- Streams ------------------------------------------------------------- */

/* Streams nghttp2 has not opened have no user data there: the slow path
 * for the rare requests it could not start. */
static gust__http_client_h2_stream *find(gust__http_client_h2 *h2, int32_t id)
{
    for (gust__http_client_h2_stream *st = h2->streams; st; st = st->next)
        if (st->id == id)
            return st;
    return NULL;
}

/* The fetch of stream id, or NULL when it has none (ended, or unknown). */
static gust__http_client_fetch *fetch_of(gust__http_client_h2 *h2, int32_t id,
                                         gust__http_client_h2_stream **out)
{
    gust__http_client_h2_stream *st =
        nghttp2_session_get_stream_user_data(h2->ng, id);
    *out = st;
    return st ? st->f : NULL;
}

static void stream_free(gust__http_client_h2_stream *st)
{
    gust__http_client_h2 *h2 = st->h2;
    if (st->prev)
        st->prev->next = st->next;
    else
        h2->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    h2->nstreams--;
    free(st);
}

/* Takes f off st: from now on st only waits for nghttp2 to close it. */
static gust__http_client_fetch *unbind(gust__http_client_h2_stream *st)
{
    gust__http_client_fetch *f = st->f;
    st->f = NULL;
    if (f)
        f->h2 = NULL;
    return f;
}

/* The server ended the response (END_STREAM). If our side is still
 * sending (a response before the whole request body), the stream is
 * reset with NO_ERROR, as RFC 9113 8.1 has servers do. */
static void complete(gust__http_client_h2_stream *st)
{
    gust__http_client_h2 *h2 = st->h2;
    gust__http_client_fetch *f = unbind(st);
    if (!f)
        return;
    if (!nghttp2_session_get_stream_local_close(h2->ng, st->id))
        nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, st->id,
                                  NGHTTP2_NO_ERROR);
    gust__http_client_body_done(f);
}

/* ---- The connection ----------------------------------------------------- */

static void on_idle_timeout(gust_timer *t, void *data)
{
    (void)t;
    gust__http_client_conn_close(data);
}

/* With no stream left: after a GOAWAY the connection is done; else it
 * waits idle_timeout for the next fetch (none kept: it closes). */
static void check_idle(gust__http_client_h2 *h2)
{
    gust__http_client_conn *conn = h2->conn;
    if (h2->in_recv || h2->nstreams || conn->state != GUST__HTTP_CLIENT_CONN_H2)
        return;
    gust_http_client *c = conn->client;
    if (h2->goaway || h2->exhausted || !c ||
        !gust__http_client_keep_alive_wanted(c)) {
        gust__http_client_conn_close(conn);
        return;
    }
    if (!gust_timer_active(&conn->idle_timer))
        gust_timer_start(&conn->idle_timer, gust__http_client_idle_timeout(c),
                         0, on_idle_timeout, conn);
}

/* A fatal error on the connection: each fetch on it fails, then it closes. */
static void conn_lost(gust__http_client_h2 *h2, int code, const char *detail)
{
    gust__http_client_conn *conn = h2->conn;
    if (conn->state != GUST__HTTP_CLIENT_CONN_H2)
        return;
    gust__http_client_h2_fail_all(conn, code, detail);
    gust__http_client_conn_close(conn);
}

void gust__http_client_h2_fail_all(gust__http_client_conn *conn, int code,
                                   const char *detail)
{
    gust__http_client_h2 *h2 = conn->h2;
    if (!h2)
        return;
    /* Restart from the head each time: failing one fetch may start
     * others (the queue), never on this connection, which is not usable
     * any more once the caller decided to fail it. */
    h2->goaway = true;
    for (;;) {
        gust__http_client_h2_stream *st = h2->streams;
        while (st && !st->f)
            st = st->next;
        if (!st)
            break;
        gust__http_client_fetch *f = unbind(st);
        gust__http_client_attempt_failed(f, code, detail);
    }
}

static void on_drained(gust_stream *s, int status, void *user)
{
    gust__http_client_conn *conn = user;
    (void)s;
    if (status < 0 || conn->state != GUST__HTTP_CLIENT_CONN_H2)
        return;
    conn->h2->write_wait = false;
    flush(conn->h2);
}

static int write_out(gust__http_client_h2 *h2)
{
    if (!h2->out_len)
        return 0;
    int rc = gust_stream_write(h2->conn->stream, h2->out, h2->out_len, NULL,
                               NULL);
    h2->out_len = 0;
    return rc;
}

/* Everything nghttp2 has to send, gathered in OUT_CHUNK writes. */
static void flush(gust__http_client_h2 *h2)
{
    gust__http_client_conn *conn = h2->conn;
    if (h2->in_recv || h2->in_send || h2->write_wait ||
        conn->state != GUST__HTTP_CLIENT_CONN_H2 || !conn->stream)
        return;
    h2->in_send = true;
    int rc = 0;
    while (rc == 0) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(h2->ng, &p);
        if (n < 0) {
            rc = GUST_EPROTO;
            break;
        }
        if (n == 0)
            break;
        if (h2->out_len + (size_t)n > OUT_CHUNK)
            rc = write_out(h2);
        if (rc == 0 && (size_t)n >= OUT_CHUNK) {
            rc = gust_stream_write(conn->stream, p, (size_t)n, NULL, NULL);
        } else if (rc == 0) {
            memcpy(h2->out + h2->out_len, p, (size_t)n);
            h2->out_len += (size_t)n;
        }
        if (rc == 0 &&
            gust_stream_write_buffer_size(conn->stream) > MAX_QUEUED) {
            rc = write_out(h2);
            if (rc == 0)
                rc = gust_stream_write(conn->stream, "", 0, on_drained, conn);
            if (rc == 0)
                h2->write_wait = true;
            break;
        }
    }
    if (rc == 0)
        rc = write_out(h2);
    h2->in_send = false;
    if (rc < 0) {
        conn_lost(h2, rc == GUST_ESTREAMCLOSED ? -ECONNRESET : rc,
                  "HTTP/2 connection lost");
        return;
    }
    check_idle(h2);
}

static void on_read(gust_stream *s, int status, const char *data, size_t len,
                    void *user)
{
    gust__http_client_conn *conn = user;
    if (conn->state != GUST__HTTP_CLIENT_CONN_H2)
        return;
    gust__http_client_h2 *h2 = conn->h2;
    if (status < 0) {
        int err = gust_stream_error(s);
        conn_lost(h2, err < 0 ? err : GUST_EPROTO,
                  "HTTP/2 connection lost");
        return;
    }
    h2->in_recv = true;
    ssize_t n = nghttp2_session_mem_recv(h2->ng, (const uint8_t *)data, len);
    h2->in_recv = false;
    if (conn->state != GUST__HTTP_CLIENT_CONN_H2)
        return; /* closed from a callback (the client freed) */
    if (n < 0) {
        gust_log_warning("http_client", "HTTP/2 error from %s:%d: %s",
                      conn->host, conn->port, nghttp2_strerror((int)n));
        /* GOAWAY with the error, on a best-effort basis. */
        flush(h2);
        conn_lost(h2, GUST_EPROTO, "HTTP/2 protocol error");
        return;
    }
    flush(h2);
    if (conn->state != GUST__HTTP_CLIENT_CONN_H2)
        return;
    if (!nghttp2_session_want_read(h2->ng) &&
        !nghttp2_session_want_write(h2->ng)) {
        if (h2->sent_error)
            conn_lost(h2, GUST_EPROTO, "HTTP/2 protocol error");
        else
            conn_lost(h2, -ECONNRESET, "HTTP/2 connection ended");
        return;
    }
    check_idle(h2);
    if (conn->state != GUST__HTTP_CLIENT_CONN_H2)
        return;
    int rc = gust_stream_read_bytes(s, READ_CHUNK, GUST_READ_PARTIAL, on_read,
                                    conn);
    if (rc < 0)
        conn_lost(h2, rc, "HTTP/2 connection lost");
}

/* ---- nghttp2 callbacks --------------------------------------------------- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame,
                            void *user)
{
    (void)ng;
    gust__http_client_h2_stream *st;
    gust__http_client_fetch *f = fetch_of(user, frame->hd.stream_id, &st);
    if (f && frame->hd.type == NGHTTP2_HEADERS && !st->final_head) {
        gust_http_headers_clear(&f->resp->headers);
        st->head_bytes = 0;
    }
    return 0;
}

/* A head line for the header callback, formatted on the stack when it
 * fits. Returns false if f ended. */
static bool head_line(gust__http_client_fetch *f, const char *fmt1,
                      const char *a, size_t alen, const char *b, size_t blen)
{
    if (!f->header_callback)
        return true;
    char stack[1024], *p = stack;
    /* The format's own text is shorter than the format. */
    size_t need = strlen(fmt1) + alen + blen + 1;
    if (need > sizeof stack && !(p = malloc(need)))
        return true; /* the callback misses one line; the fetch goes on */
    int n = snprintf(p, need, fmt1, (int)alen, a, (int)blen, b);
    if (n < 0)
        n = 0;
    else if ((size_t)n >= need)
        n = (int)need - 1;
    bool alive = gust__http_client_header_line(f, p, (size_t)n);
    if (p != stack)
        free(p);
    return alive;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame,
                     const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)ng;
    (void)flags;
    gust__http_client_h2_stream *st;
    gust__http_client_fetch *f = fetch_of(user, frame->hd.stream_id, &st);
    if (!f || frame->hd.type != NGHTTP2_HEADERS || st->final_head)
        return 0; /* trailers are read and dropped, as over HTTP/1 */
    gust_http_client_response *r = f->resp;
    st->head_bytes += namelen + valuelen + 32;
    if (st->head_bytes > gust__http_client_max_header(f->client)) {
        unbind(st);
        gust__http_client_attempt_failed(
            f, GUST_EBUFFERFULL, "response head larger than max_header_size");
        return 0;
    }
    const char *n = (const char *)name, *v = (const char *)value;
    if (namelen == 7 && !memcmp(n, ":status", 7)) {
        int code = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            code = code * 10 + (v[i] - '0');
        r->code = code;
        r->version_major = 2;
        r->version_minor = 0;
        const char *reason = gust_http_reason(code);
        r->reason = reason ? reason : "";
        head_line(f, "HTTP/2.0 %.*s %.*s\r\n", v, valuelen, r->reason,
                  strlen(r->reason));
        return 0;
    }
    if (namelen && n[0] == ':')
        return 0;
    if (gust_http_headers_add(&r->headers, gust_str_make(n, namelen),
                              gust_str_make(v, valuelen),
                              GUST_HEADER_COPY | GUST_HEADER_TRUSTED) < 0) {
        unbind(st);
        gust__http_client_attempt_failed(f, -ENOMEM, NULL);
        return 0;
    }
    head_line(f, "%.*s: %.*s\r\n", n, namelen, v, valuelen);
    return 0;
}

/* How the body ends, for body_prepare: over HTTP/2 it always ends with the
 * stream; a Content-Length (checked against the DATA by nghttp2) only
 * sizes the buffer. */
static void framing(gust__http_client_fetch *f, bool end_stream,
                    gust__http1_framing *fr)
{
    gust_http_client_response *r = f->resp;
    memset(fr, 0, sizeof *fr);
    fr->body = GUST_HTTP1_BODY_CLOSE;
    if (end_stream || f->head_request || r->code == 204 || r->code == 304) {
        fr->body = GUST_HTTP1_BODY_NONE;
        return;
    }
    gust_str cl =
        gust_http_headers_get_first(&r->headers, GUST_STR("content-length"));
    if (!cl.ptr || !cl.len || cl.len > 18)
        return;
    uint64_t v = 0;
    for (size_t i = 0; i < cl.len; i++) {
        if (cl.ptr[i] < '0' || cl.ptr[i] > '9')
            return;
        v = v * 10 + (uint64_t)(cl.ptr[i] - '0');
    }
    fr->body = GUST_HTTP1_BODY_LENGTH;
    fr->content_length = v;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame,
                         void *user)
{
    (void)ng;
    gust__http_client_h2 *h2 = user;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        /* nghttp2 closes the streams past last_stream_id (REFUSED_STREAM:
         * on_stream_close retries them); the others finish. */
        h2->goaway = true;
        return 0;
    }
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    gust__http_client_h2_stream *st;
    gust__http_client_fetch *f = fetch_of(h2, frame->hd.stream_id, &st);
    if (!f)
        return 0;
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS && !st->final_head) {
        if (!gust__http_client_header_line(f, "\r\n", 2))
            return 0;
        if (f->resp->code < 200)
            return 0; /* 1xx: the final head follows */
        st->final_head = true;
        gust__http1_framing fr;
        framing(f, end, &fr);
        int rc = gust__http_client_body_prepare(f, &fr);
        if (rc < 0) {
            unbind(st);
            gust__http_client_attempt_failed(f, rc, f->error_detail);
            return 0;
        }
    }
    if (end && st->final_head)
        complete(st);
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id,
                         const uint8_t *data, size_t len, void *user)
{
    (void)ng;
    (void)flags;
    gust__http_client_h2_stream *st;
    gust__http_client_fetch *f = fetch_of(user, id, &st);
    if (!f || !st->final_head)
        return 0;
    int rc = gust__http_client_body_deliver(f, (const char *)data, len);
    if (rc < 0 && st->f == f) {
        unbind(st);
        gust__http_client_attempt_failed(f, rc, f->error_detail);
    }
    return 0;
}

/* nghttp2 resets a stream, or ends the connection, itself on an error it
 * detects in a response (a bad field, DATA past its Content-Length; a
 * HPACK field past its limits, a bad frame): the RST_STREAM or GOAWAY it
 * sends says which. */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame,
                         void *user)
{
    (void)ng;
    gust__http_client_h2 *h2 = user;
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
        /* Our own resets (cancel, complete) come after the fetch left. */
        gust__http_client_h2_stream *st;
        if (fetch_of(h2, frame->hd.stream_id, &st))
            st->local_error = frame->rst_stream.error_code;
        return 0;
    }
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code) {
        h2->sent_error = frame->goaway.error_code;
        gust_log_warning("http_client", "HTTP/2 connection to %s:%d ended: %s",
                         h2->conn->host, h2->conn->port,
                         nghttp2_http2_strerror(frame->goaway.error_code));
    }
    return 0;
}

/* The end of a stream nghttp2 knew of. A fetch still on it did not get
 * its whole response: REFUSED_STREAM (GOAWAY past it, or the server's
 * choice) means the server never processed the request, so it is sent
 * again; any other reset fails the fetch. */
static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error,
                           void *user)
{
    (void)ng;
    gust__http_client_h2 *h2 = user;
    gust__http_client_h2_stream *st =
        nghttp2_session_get_stream_user_data(h2->ng, id);
    if (!st)
        return 0;
    gust__http_client_fetch *f = unbind(st);
    uint32_t local_error = st->local_error;
    stream_free(st);
    if (f && local_error) {
        const char *d = gust_arena_sprintf(
            &f->arena, "malformed HTTP/2 response (stream reset: %s)",
            nghttp2_http2_strerror(local_error));
        gust__http_client_attempt_failed(f, GUST_EPROTO, d);
    } else if (f && error == NGHTTP2_REFUSED_STREAM) {
        gust__http_client_retry(f, -ECONNRESET,
                                "HTTP/2 stream refused by the server");
    } else if (f) {
        const char *d = gust_arena_sprintf(
            &f->arena, "HTTP/2 stream reset by the server (%s)",
            nghttp2_http2_strerror(error));
        gust__http_client_attempt_failed(f, -ECONNRESET, d);
    }
    return 0;
}

/* A request nghttp2 could not start (after a GOAWAY, or out of stream
 * ids): never seen by the server, so it is sent again elsewhere. */
static int on_frame_not_send(nghttp2_session *ng, const nghttp2_frame *frame,
                             int lib_error, void *user)
{
    gust__http_client_h2 *h2 = user;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    gust__http_client_h2_stream *st = find(h2, frame->hd.stream_id);
    if (!st)
        return 0;
    /* nghttp2 may still close the stream if it had opened it. */
    nghttp2_session_set_stream_user_data(ng, st->id, NULL);
    gust__http_client_fetch *f = unbind(st);
    stream_free(st);
    if (lib_error == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE)
        h2->exhausted = true;
    if (f)
        gust__http_client_retry(f, -ECONNRESET,
                                "HTTP/2 request could not be sent");
    return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *buf,
                         size_t length, uint32_t *data_flags,
                         nghttp2_data_source *source, void *user)
{
    (void)ng;
    (void)id;
    (void)user;
    gust__http_client_h2_stream *st = source->ptr;
    if (!st->f)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    size_t n = st->body_len - st->body_off;
    if (n > length)
        n = length;
    memcpy(buf, st->body + st->body_off, n);
    st->body_off += n;
    if (st->body_off == st->body_len)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ---- Opening ------------------------------------------------------------- */

int gust__http_client_h2_open(gust__http_client_conn *conn)
{
    gust__http_client_h2 *h2 = calloc(1, sizeof *h2);
    if (!h2)
        return -ENOMEM;
    h2->conn = conn;
    h2->out = malloc(OUT_CHUNK);
    nghttp2_session_callbacks *cb = NULL;
    if (!h2->out || nghttp2_session_callbacks_new(&cb) != 0) {
        free(h2->out);
        free(h2);
        return -ENOMEM;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
                                                            on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
                                                              on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb,
                                                           on_stream_close);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(
        cb, on_frame_not_send);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    int rv = nghttp2_session_client_new(&h2->ng, cb, h2);
    nghttp2_session_callbacks_del(cb);
    if (rv != 0) {
        free(h2->out);
        free(h2);
        return -ENOMEM;
    }
    size_t max_head = conn->client
                          ? gust__http_client_max_header(conn->client)
                          : 65536;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
         max_head > UINT32_MAX ? UINT32_MAX : (uint32_t)max_head},
    };
    if (nghttp2_submit_settings(h2->ng, NGHTTP2_FLAG_NONE, iv,
                                sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(h2->ng, NGHTTP2_FLAG_NONE, 0,
                                              CONN_WINDOW) != 0) {
        nghttp2_session_del(h2->ng);
        free(h2->out);
        free(h2);
        return -ENOMEM;
    }
    conn->h2 = h2;
    conn->state = GUST__HTTP_CLIENT_CONN_H2;
    conn->fetch = NULL;
    int rc = gust_stream_read_bytes(conn->stream, READ_CHUNK,
                                    GUST_READ_PARTIAL, on_read, conn);
    if (rc < 0) {
        conn->state = GUST__HTTP_CLIENT_CONN_BUSY;
        conn->h2 = NULL;
        nghttp2_session_del(h2->ng);
        free(h2->out);
        free(h2);
        return rc;
    }
    flush(h2);
    return 0;
}

bool gust__http_client_h2_usable(const gust__http_client_conn *conn)
{
    return conn->state == GUST__HTTP_CLIENT_CONN_H2 && !conn->h2->goaway &&
           !conn->h2->exhausted;
}

void gust__http_client_h2_free(gust__http_client_conn *conn)
{
    gust__http_client_h2 *h2 = conn->h2;
    if (!h2)
        return;
    conn->h2 = NULL;
    while (h2->streams) {
        gust__http_client_h2_stream *st = h2->streams;
        h2->streams = st->next;
        if (st->f)
            st->f->h2 = NULL;
        free(st);
    }
    nghttp2_session_del(h2->ng);
    free(h2->out);
    free(h2);
}

/* ---- Requests ------------------------------------------------------------ */

/* Fields HTTP/2 forbids (RFC 9113 8.2.2) or carries otherwise (Host is
 * :authority; the length is the body's). */
static bool connection_specific(gust_str name, gust_str value)
{
    static const char *const names[] = {
        "connection", "keep-alive", "proxy-connection", "transfer-encoding",
        "upgrade", "host", "content-length"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (gust_str_eq_nocase(name, gust_str_cstr(names[i])))
            return true;
    return gust_str_eq_nocase(name, GUST_STR("te")) &&
           !gust_str_eq_nocase(value, GUST_STR("trailers"));
}

static nghttp2_nv nv(const char *name, size_t nlen, const char *value,
                     size_t vlen)
{
    return (nghttp2_nv){(uint8_t *)(uintptr_t)name,
                        (uint8_t *)(uintptr_t)value, nlen, vlen,
                        NGHTTP2_NV_FLAG_NONE};
}
#define NV_LIT(n, v, vlen) nv(n, sizeof n - 1, v, vlen)

int gust__http_client_h2_submit(gust__http_client_conn *conn,
                                gust__http_client_fetch *f)
{
    gust__http_client_h2 *h2 = conn->h2;
    if (!gust__http_client_h2_usable(conn))
        return -EAGAIN;
    gust_http_client *c = f->client;
    gust_arena *a = &f->arena;
    const gust_url *u = &f->target;
    size_t cap = 9 + f->num_headers;
    nghttp2_nv stack[32], *v = stack;
    if (cap > 32 && !(v = malloc(cap * sizeof *v)))
        return -ENOMEM;
    size_t n = 0;

    const char *authority = NULL;
    size_t alen = 0;
    for (size_t i = 0; i < f->num_headers; i++)
        if (gust_str_eq_nocase(f->headers[i].name, GUST_STR("Host"))) {
            authority = f->headers[i].value.ptr;
            alen = f->headers[i].value.len;
        }
    if (!authority) {
        char port[16] = "";
        if (u->port_explicit)
            snprintf(port, sizeof port, ":%u", (unsigned)u->port);
        authority = gust_arena_sprintf(a, "%s%.*s%s%s", u->host_ipv6 ? "[" : "",
                                       (int)u->host.len, u->host.ptr,
                                       u->host_ipv6 ? "]" : "", port);
        alen = authority ? strlen(authority) : 0;
    }
    const char *path = gust_arena_sprintf(
        a, "%.*s%s%.*s", (int)(u->path.len ? u->path.len : 1),
        u->path.len ? u->path.ptr : "/", u->query.ptr ? "?" : "",
        (int)u->query.len, u->query.ptr ? u->query.ptr : "");
    if (!authority || !path)
        goto nomem;
    v[n++] = NV_LIT(":method", f->method, strlen(f->method));
    v[n++] = NV_LIT(":scheme", "https", 5);
    v[n++] = NV_LIT(":authority", authority, alen);
    v[n++] = NV_LIT(":path", path, strlen(path));
    bool user_ua = false, user_ae = false, user_auth = false;
    for (size_t i = 0; i < f->num_headers; i++) {
        gust_str hn = f->headers[i].name;
        user_ua |= gust_str_eq_nocase(hn, GUST_STR("User-Agent"));
        user_ae |= gust_str_eq_nocase(hn, GUST_STR("Accept-Encoding"));
        user_auth |= gust_str_eq_nocase(hn, GUST_STR("Authorization"));
    }
    if (!user_ua) {
        const char *ua =
            f->user_agent ? f->user_agent : gust__http_client_user_agent(c);
        v[n++] = NV_LIT("user-agent", ua, strlen(ua));
    }
    if (f->decompress && !user_ae)
        v[n++] = NV_LIT("accept-encoding", "gzip", 4);
    if (f->authorization && !user_auth)
        v[n++] = NV_LIT("authorization", f->authorization,
                        strlen(f->authorization));
    bool wants_body = !strcmp(f->method, "POST") ||
                      !strcmp(f->method, "PUT") || !strcmp(f->method, "PATCH");
    if (f->body || wants_body) {
        char *cl = gust_arena_sprintf(a, "%zu", f->body_len);
        if (!cl)
            goto nomem;
        v[n++] = NV_LIT("content-length", cl, strlen(cl));
    }
    for (size_t i = 0; i < f->num_headers; i++) {
        gust_str hn = f->headers[i].name, hv = f->headers[i].value;
        if (connection_specific(hn, hv))
            continue;
        char *lower = gust_arena_alloc(a, hn.len ? hn.len : 1);
        if (!lower)
            goto nomem;
        for (size_t k = 0; k < hn.len; k++)
            lower[k] = (char)(hn.ptr[k] >= 'A' && hn.ptr[k] <= 'Z'
                                  ? hn.ptr[k] + 32
                                  : hn.ptr[k]);
        v[n++] = nv(lower, hn.len, hv.ptr, hv.len);
    }

    gust__http_client_h2_stream *st = calloc(1, sizeof *st);
    if (!st)
        goto nomem;
    st->h2 = h2;
    st->body = f->body;
    st->body_len = f->body_len;
    nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(h2->ng, NULL, v, n,
                                        f->body_len ? &dp : NULL, st);
    if (v != stack)
        free(v);
    if (id < 0) {
        free(st);
        if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
            h2->exhausted = true;
            return -EAGAIN;
        }
        return id == NGHTTP2_ERR_NOMEM ? -ENOMEM : -EINVAL;
    }
    st->id = id;
    st->f = f;
    st->next = h2->streams;
    if (h2->streams)
        h2->streams->prev = st;
    h2->streams = st;
    h2->nstreams++;
    f->h2 = st;
    f->head_request = !strcmp(f->method, "HEAD");
    conn->requests++;
    gust_timer_stop(&conn->idle_timer);
    flush(h2);
    return 0;
nomem:
    if (v != stack)
        free(v);
    return -ENOMEM;
}

void gust__http_client_h2_detach(gust__http_client_fetch *f)
{
    gust__http_client_h2_stream *st = f->h2;
    if (!st)
        return;
    unbind(st);
    gust__http_client_h2 *h2 = st->h2;
    if (h2->conn->state != GUST__HTTP_CLIENT_CONN_H2)
        return;
    /* Only this stream stops; the connection and its other streams go on. */
    nghttp2_submit_rst_stream(h2->ng, NGHTTP2_FLAG_NONE, st->id,
                              NGHTTP2_CANCEL);
    flush(h2);
}
