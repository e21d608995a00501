/* Writing an HTTP/1 response: the head's serialisation (status line, Date,
 * Server, the application's headers, the framing headers), the body's
 * framing (Content-Length held to what it announced, or chunks), and the
 * output of one batch gathered into one buffer and sent with one write. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gust/error.h"
#include "gust/http_server.h"
#include "gust/log.h"
#include "http_server_internal.h"
#include "metrics_internal.h"

/* ---- Output ------------------------------------------------------------ */

/* Makes room for n more gathered bytes. */
static int out_reserve(gust_http_connection *c, size_t n)
{
    return gust__http_buf_reserve(&c->rq->out, &c->rq->out_cap,
                                  c->rq->out_len + n, 4096);
}

int gust__http_conn_out(gust_http_connection *c, const void *p, size_t n)
{
    if (c->closed || !c->stream || !c->rq)
        return GUST_ESTREAMCLOSED;
    if (n == 0)
        return 0;
    gust__metrics_bytes_out(n);
    /* Outside a batch, with nothing gathered, the stream takes it at once;
     * so does a large body, after what was gathered before it. */
    if ((!c->in_batch && c->rq->out_len == 0) || n >= 64 * 1024) {
        int rc = gust__http_conn_flush(c);
        if (rc < 0)
            return rc;
        c->rq->queue_stale = true;
        return gust_stream_write(c->stream, p, n, NULL, NULL);
    }
    int rc = out_reserve(c, n);
    if (rc < 0)
        return rc;
    memcpy(c->rq->out + c->rq->out_len, p, n);
    c->rq->out_len += n;
    return 0;
}

int gust__http_conn_out_room(gust_http_connection *c, size_t n, char **at)
{
    if (c->closed || !c->stream || !c->rq)
        return GUST_ESTREAMCLOSED;
    int rc = out_reserve(c, n);
    if (rc < 0)
        return rc;
    *at = c->rq->out + c->rq->out_len;
    return 0;
}

int gust__http_conn_out_commit(gust_http_connection *c, size_t n)
{
    c->rq->out_len += n;
    gust__metrics_bytes_out(n);
    return c->in_batch ? 0 : gust__http_conn_flush(c);
}

int gust__http_conn_flush(gust_http_connection *c)
{
    if (!c->rq || c->rq->out_len == 0)
        return 0;
    if (c->closed || !c->stream) {
        c->rq->out_len = 0;
        return GUST_ESTREAMCLOSED;
    }
    int rc = gust_stream_write(c->stream, c->rq->out, c->rq->out_len, NULL, NULL);
    c->rq->out_len = 0;
    c->rq->queue_stale = true;
    /* A large gathered buffer is not worth keeping on an idle connection. */
    if (c->rq->out_cap > 256 * 1024) {
        free(c->rq->out);
        c->rq->out = NULL;
        c->rq->out_cap = 0;
    }
    return rc;
}

/* ---- Response head and body framing ----------------------------------- */

/* The Date header, formatted once per second. */
static _Thread_local struct {
    time_t sec;
    char line[GUST_HTTP_DATE_LEN + 9];
} date_cache;

static const char *date_line(void)
{
    time_t now = time(NULL);
    if (now != date_cache.sec || !date_cache.line[0]) {
        char d[GUST_HTTP_DATE_SIZE];
        gust_http_date_format(now, d);
        snprintf(date_cache.line, sizeof date_cache.line, "Date: %s\r\n", d);
        date_cache.sec = now;
    }
    return date_cache.line;
}

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

/* The response headers the server adds unless the application set them,
 * found in one pass (each lookup was a walk of its own). */
static unsigned resp_present(const gust_http_headers *h)
{
    unsigned present = 0;
    for (size_t i = 0; i < h->count; i++) {
        gust_str n = h->items[i].name;
        if (GUST__NAME_IS(n, "Date"))
            present |= GUST__HAS_DATE;
        else if (GUST__NAME_IS(n, "Server"))
            present |= GUST__HAS_SERVER;
        else if (GUST__NAME_IS(n, "Content-Length"))
            present |= GUST__HAS_LENGTH;
    }
    return present;
}

/* The head is assembled in one buffer and queued with one call: it was a
 * dozen small gathers (and a snprintf) per response. */
int gust__http_conn_write_head(gust_http_connection *c, bool chunked,
                               size_t content_length, bool has_length,
                               unsigned present)
{
    gust__http_rq *q = c->rq;
    bool keep = gust__http_conn_will_keep(c);
    if (!keep)
        q->resp_close = true;
    const char *reason = q->reason ? q->reason : gust_http_reason(q->status);
    if (!reason)
        reason = "Unknown";
    size_t reason_len = strlen(reason);
    gust_http_headers *h = &q->resp_headers;
    bool date = !(present & GUST__HAS_DATE);
    bool server = c->srv->server_header_len && !(present & GUST__HAS_SERVER);
    size_t ws = gust_http_headers_wire_size(h);
    size_t need = 13 + reason_len + 2 + GUST_HTTP_DATE_LEN + 8 +
                  c->srv->server_header_len + ws + q->head_line_len + 40 +
                  28 + 24 + 2;
    char *buf;
    int rc = gust__http_conn_out_room(c, need, &buf);
    if (rc < 0) {
        if (rc == GUST_ESTREAMCLOSED) /* as if sent: nothing more will be */
            q->headers_sent = true;
        return rc;
    }
    char *p = buf;
    int st = q->status; /* 100..999 (set_status checks) */
    p = put(p, "HTTP/1.1 ", 9);
    *p++ = (char)('0' + st / 100 % 10);
    *p++ = (char)('0' + st / 10 % 10);
    *p++ = (char)('0' + st % 10);
    *p++ = ' ';
    p = put(p, reason, reason_len);
    p = put(p, "\r\n", 2);
    if (date)
        p = put(p, date_line(), GUST_HTTP_DATE_LEN + 8);
    if (server)
        p = put(p, c->srv->server_header, c->srv->server_header_len);
    if (ws) {
        gust_http_headers_serialize(h, p);
        p += ws;
    }
    if (q->head_line_len)
        p = put(p, q->head_line, q->head_line_len);
    if (has_length) {
        char digits[24];
        size_t nd = 0;
        do {
            digits[nd++] = (char)('0' + content_length % 10);
            content_length /= 10;
        } while (content_length);
        p = put(p, "Content-Length: ", 16);
        while (nd)
            *p++ = digits[--nd];
        p = put(p, "\r\n", 2);
    }
    if (chunked)
        p = put(p, "Transfer-Encoding: chunked\r\n", 28);
    if (q->resp_close)
        p = put(p, "Connection: close\r\n", 19);
    else if (q->req.version_minor == 0)
        p = put(p, "Connection: keep-alive\r\n", 24);
    p = put(p, "\r\n", 2);
    q->headers_sent = true;
    return gust__http_conn_out_commit(c, (size_t)(p - buf));
}

static bool no_body_status(int s)
{
    return s == 204 || s == 304 || (s >= 100 && s < 200);
}

/* The application's own Content-Length, if it set one that parses: the
 * body it sends is then held to it (see gust__http_conn_count_body). */
static void note_user_length(gust__http_rq *q)
{
    gust_str v = gust_http_headers_get_first(&q->resp_headers,
                                             GUST_STR("Content-Length"));
    uint64_t n = 0;
    bool seen = false;
    if (gust__http1_parse_content_length((gust__http1_slice){v.ptr, v.len},
                                         &n, &seen) == NULL) {
        q->resp_len_set = true;
        q->resp_len_left = n;
    }
}

/* Body bytes about to go out under the application's Content-Length.
 * More than it announced would be read by the client as the start of the
 * next response, so they are not sent: the connection is cut instead, as
 * Tornado's "Tried to write more data than Content-Length" does. */
int gust__http_conn_count_body(gust_http_connection *c, uint64_t n)
{
    gust__http_rq *q = c->rq;
    if (!q->resp_len_set || q->resp_no_body)
        return 0;
    if (n > q->resp_len_left) {
        gust_log_error("http", "%s %s: response body longer than its "
                       "Content-Length (%" PRIu64 " bytes over); closing",
                       q->req.method, q->req.uri, n - q->resp_len_left);
        q->aborted = true;
        q->resp_len_left = 0;
        return -EMSGSIZE;
    }
    q->resp_len_left -= n;
    return 0;
}

/* Sends the head (if not yet) and the buffered body. */
int gust__http_conn_send_structured(gust_http_connection *c, bool final)
{
    gust_http_request *r = &c->rq->req;
    int rc = 0;
    if (!c->rq->headers_sent) {
        c->rq->resp_no_body = no_body_status(c->rq->status) ||
                          r->method_id == GUST_HTTP_HEAD;
        unsigned present = resp_present(&c->rq->resp_headers);
        bool user_len = present & GUST__HAS_LENGTH;
        bool has_len = false, chunked = false;
        if (!user_len && !no_body_status(c->rq->status)) {
            if (final)
                has_len = true;
            else if (r->version_minor >= 1)
                chunked = true;
            else
                c->rq->resp_close = true; /* 1.0: the close ends the body */
        }
        if (chunked && c->rq->resp_no_body)
            chunked = false;
        c->rq->resp_chunked = chunked;
        if (user_len && !c->rq->resp_no_body) {
            note_user_length(c->rq);
            /* A whole body that disagrees with it: say Connection: close
             * in this head already. */
            if (final && c->rq->resp_len_set &&
                c->rq->resp_len_left != c->rq->sbody_len)
                c->rq->resp_close = true;
        }
        rc = gust__http_conn_write_head(c, chunked, c->rq->sbody_len, has_len,
                                        present);
    }
    if (c->rq->sbody_len && !c->rq->resp_no_body && !c->rq->aborted &&
        gust__http_conn_count_body(c, c->rq->sbody_len) < 0) {
        c->rq->sbody_len = 0;
        rc = -EMSGSIZE;
    }
    if (c->rq->sbody_len && !c->rq->resp_no_body) {
        if (c->rq->resp_chunked) {
            char hex[24];
            int k = snprintf(hex, sizeof hex, "%zx\r\n", c->rq->sbody_len);
            gust__http_conn_out(c, hex, (size_t)k);
            gust__http_conn_out(c, c->rq->sbody, c->rq->sbody_len);
            rc = gust__http_conn_out(c, "\r\n", 2);
        } else {
            rc = gust__http_conn_out(c, c->rq->sbody, c->rq->sbody_len);
        }
    }
    c->rq->sbody_len = 0;
    if (final && c->rq->resp_chunked && !c->rq->aborted)
        rc = gust__http_conn_out(c, "0\r\n\r\n", 5);
    if (final && c->rq->resp_len_set && c->rq->resp_len_left &&
        !c->rq->aborted) {
        /* Keeping the connection would make the client read the next
         * response as the rest of this body. */
        gust_log_error("http", "%s %s: response body %" PRIu64 " bytes "
                       "short of its Content-Length; closing",
                       c->rq->req.method, c->rq->req.uri,
                       c->rq->resp_len_left);
        c->rq->aborted = true;
    }
    /* A large body buffer is not kept for the next request. */
    if (c->rq->sbody_cap > 64 * 1024) {
        free(c->rq->sbody);
        c->rq->sbody = NULL;
        c->rq->sbody_cap = 0;
    }
    return rc;
}

/* The head of a switching response: no Content-Length, no Connection
 * of the server's (the handler sets Connection: Upgrade). */
int gust__http_conn_write_switch_head(gust_http_connection *c)
{
    gust__http_rq *q = c->rq;
    const char *reason = q->reason ? q->reason : gust_http_reason(q->status);
    if (!reason)
        reason = "Unknown";
    size_t reason_len = strlen(reason);
    unsigned present = resp_present(&q->resp_headers);
    bool date = !(present & GUST__HAS_DATE);
    bool server = c->srv->server_header_len && !(present & GUST__HAS_SERVER);
    size_t ws = gust_http_headers_wire_size(&q->resp_headers);
    char *buf;
    int rc = gust__http_conn_out_room(c, 16 + reason_len + GUST_HTTP_DATE_LEN +
                                          8 + c->srv->server_header_len + ws + 2,
                                      &buf);
    if (rc < 0)
        return rc;
    int n = snprintf(buf, 16 + reason_len, "HTTP/1.1 %d %s\r\n", q->status,
                     reason);
    char *p = buf + n;
    if (date)
        p = put(p, date_line(), GUST_HTTP_DATE_LEN + 8);
    if (server)
        p = put(p, c->srv->server_header, c->srv->server_header_len);
    gust_http_headers_serialize(&q->resp_headers, p);
    p += ws;
    p = put(p, "\r\n", 2);
    q->headers_sent = true;
    q->out_len += (size_t)(p - buf); /* sent by the detach's flush */
    return 0;
}
