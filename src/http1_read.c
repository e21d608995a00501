/* Reading HTTP/1 requests on a server connection: the buffered input, the
 * request head handed to the parser and set up as a gust_http_request, the
 * body read whole, streamed or discarded, pipelined requests processed in
 * one batch, and the gate that stops reading while output is held back. */

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "gust/error.h"
#include "gust/http_server.h"
#include "gust/log.h"
#include "gust/tls.h"
#include "http_server_internal.h"
#include "metrics_internal.h"

/* Largest body read and dropped after the delegate answered from
 * headers_received, to keep the connection (bounded by max_body_size too). */
#define DISCARD_MAX (64 * 1024)

/* ---- Back-pressure -------------------------------------------------------
 *
 * A client that pipelines requests and reads none of the answers would
 * otherwise have them pile up in the stream's write queue without bound.
 * Past max_unsent_output bytes not yet taken by the kernel, the connection
 * stops parsing and reading (TCP then holds the client back), and goes on
 * once all of them are out; while held, write_timeout closes a client
 * that takes none of them. */

static bool output_over(gust_http_connection *c)
{
    gust__http_rq *q = c->rq;
    q->queue_seen = gust_stream_write_buffer_size(c->stream);
    q->queue_stale = false;
    return q->out_len + q->queue_seen > gust__http_conn_opts_of(c)->max_unsent_output;
}

/* output_over() without asking the stream again while nothing was written
 * to it since (a pipelined batch only gathers): per request, that call
 * cost about 1% of hello_http's instructions. */
static inline bool output_maybe_over(gust_http_connection *c)
{
    gust__http_rq *q = c->rq;
    return q->queue_stale ||
           q->out_len + q->queue_seen > gust__http_conn_opts_of(c)->max_unsent_output;
}

static void on_drained(gust_stream *s, int status, void *user)
{
    (void)s;
    gust_http_connection *c = user;
    c->rq->out_blocked = false;
    if (status < 0 || c->closed)
        return; /* the close callback follows */
    if (c->timer_kind == GUST__T_WRITE)
        gust__http_conn_clear_timer(c);
    gust__http_conn_process(c);
}

/* Holds c back until what is queued now has all been sent. c->rq is set. */
static void hold_output(gust_http_connection *c)
{
    if (c->rq->out_blocked)
        return;
    gust__http_conn_flush(c);
    if (c->closed)
        return;
    if (gust_stream_write(c->stream, "", 0, on_drained, c) < 0) {
        gust__http_conn_close(c);
        return;
    }
    c->rq->out_blocked = true;
    c->rq->unsent_seen = gust_stream_write_buffer_size(c->stream);
    gust__http_conn_set_timer(c, GUST__T_WRITE);
}

/* ---- Reading ----------------------------------------------------------- */

static void on_read(gust_stream *s, int status, const char *data, size_t len,
                    void *user)
{
    gust_http_connection *c = user;
    c->reading = false;
    if (status < 0 || c->closed)
        return; /* the close callback follows */
    if (c->lingering) {
        gust__http_conn_on_linger_read(s, status, data, len, user);
        return;
    }
    if (c->state == GUST__HTTP_CLOSING)
        return; /* input after the last request is dropped */
    if (!c->rq && !gust__http_conn_rq_take(c)) {
        gust__http_conn_close(c);
        return;
    }
    if (!c->rq->buf) {
        /* Taken only when bytes arrive: an idle connection holds none. */
        c->rq->buf = gust__http_conn_buf_get(c->rq->cap);
        if (!c->rq->buf) {
            gust__http_conn_close(c);
            return;
        }
        c->rq->off = c->rq->len = 0;
    }
    if (len > c->rq->cap - c->rq->len)
        len = c->rq->cap - c->rq->len; /* cannot happen: we asked for at most that */
    memcpy(c->rq->buf + c->rq->len, data, len);
    c->rq->len += len;
    gust__metrics_bytes_in(len);
    if (c->state == GUST__HTTP_HANDLER) {
        gust__http_conn_start_read(c); /* pipelined input waits in buf */
        return;
    }
    if (c->state == GUST__HTTP_BODY)
        gust__http_conn_clear_timer(c); /* restarted if the body is still short */
    gust__http_conn_process(c);
}

void gust__http_conn_start_read(gust_http_connection *c)
{
    if (c->reading || c->closed || !c->stream ||
        c->state == GUST__HTTP_CLOSING)
        return;
    /* A paused body is held back by TCP flow control, not buffered. */
    if (c->state == GUST__HTTP_BODY && c->rq && c->rq->body_paused)
        return;
    /* Bytes after an upgrade request may belong to the next protocol
     * (gust_http_request_detach): they stay in the stream. */
    if (c->state == GUST__HTTP_HANDLER && c->rq->framing.connection_upgrade)
        return;
    if (c->rq && (c->rq->out_blocked || output_over(c))) {
        hold_output(c); /* reads again once the client has read */
        return;
    }
    size_t room = c->rq ? c->rq->cap - c->rq->len
                        : c->srv->opts.max_header_size + GUST__HTTP_BUF_SLACK;
    if (room == 0)
        return; /* full while a request runs: resumes after it */
    int rc = gust_stream_read_bytes(c->stream, room, GUST_READ_PARTIAL,
                                    on_read, c);
    if (rc == 0)
        c->reading = true;
    else
        gust__http_conn_close(c);
}

/* ---- Requests ---------------------------------------------------------- */

static char *dup_slice(gust_http_connection *c, gust__http1_slice s)
{
    return gust_arena_strndup(&c->rq->arena, s.ptr, s.len);
}

/* Inlined into HTTP/1's request set-up; HTTP/2 calls the wrapper. */
static inline void set_host(gust_http_request *r, gust_arena *a,
                            const char *host)
{
    r->host = host ? host : "";
    gust_str hn = gust_str_cstr(r->host);
    int port;
    if (host && gust_http_split_host_port(hn, &hn, &port) == 0) {
        char *lower = gust_arena_strndup(a, hn.ptr, hn.len);
        if (lower)
            for (char *p = lower; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p + 32);
        r->host_name = lower ? lower : "";
    } else {
        r->host_name = r->host;
    }
}

void gust__http_request_set_host(gust_http_request *r, gust_arena *a,
                                 const char *host)
{
    set_host(r, a, host);
}

/* Validated X-headers (xheaders option). */
void gust__http_conn_apply_xheaders(gust_http_connection *c)
{
    gust_http_request *r = &c->rq->req;
    gust_str v = gust_http_headers_get_first(&r->headers, GUST_STR("X-Real-Ip"));
    if (!v.ptr) {
        v = gust_http_headers_get_first(&r->headers,
                                        GUST_STR("X-Forwarded-For"));
        if (v.ptr) { /* the last hop */
            const char *comma = memrchr(v.ptr, ',', v.len);
            if (comma) {
                v.len -= (size_t)(comma + 1 - v.ptr);
                v.ptr = comma + 1;
            }
        }
    }
    if (v.ptr) {
        while (v.len && (*v.ptr == ' ' || *v.ptr == '\t'))
            v.ptr++, v.len--;
        while (v.len && (v.ptr[v.len - 1] == ' ' || v.ptr[v.len - 1] == '\t'))
            v.len--;
        char ip[INET6_ADDRSTRLEN + 1];
        unsigned char bin[sizeof(struct in6_addr)];
        if (v.len && v.len < sizeof ip) {
            memcpy(ip, v.ptr, v.len);
            ip[v.len] = 0;
            if (inet_pton(AF_INET, ip, bin) == 1 ||
                inet_pton(AF_INET6, ip, bin) == 1) {
                char *cp = gust_arena_strdup(&c->rq->arena, ip);
                if (cp) {
                    r->remote_ip = r->remote_ip_len_of = cp;
                    r->remote_ip_len = v.len;
                }
            }
        }
    }
    gust_str p = gust_http_headers_get_first(&r->headers, GUST_STR("X-Scheme"));
    if (!p.ptr) {
        p = gust_http_headers_get_first(&r->headers,
                                        GUST_STR("X-Forwarded-Proto"));
        if (p.ptr) {
            const char *comma = memrchr(p.ptr, ',', p.len);
            if (comma) {
                p.len -= (size_t)(comma + 1 - p.ptr);
                p.ptr = comma + 1;
            }
            while (p.len && *p.ptr == ' ')
                p.ptr++, p.len--;
            while (p.len && p.ptr[p.len - 1] == ' ')
                p.len--;
        }
    }
    if (gust_str_eq_nocase(p, GUST_STR("http")))
        r->protocol = "http";
    else if (gust_str_eq_nocase(p, GUST_STR("https")))
        r->protocol = "https";
}

static const char *const method_names[] = {
    [GUST_HTTP_GET] = "GET",         [GUST_HTTP_HEAD] = "HEAD",
    [GUST_HTTP_POST] = "POST",       [GUST_HTTP_PUT] = "PUT",
    [GUST_HTTP_DELETE] = "DELETE",   [GUST_HTTP_PATCH] = "PATCH",
    [GUST_HTTP_OPTIONS] = "OPTIONS", [GUST_HTTP_CONNECT] = "CONNECT",
    [GUST_HTTP_TRACE] = "TRACE",
};

const char *gust__http_method_name(gust_http_method m)
{
    return m > GUST_HTTP_OTHER && m <= GUST_HTTP_TRACE ? method_names[m]
                                                        : NULL;
}

/* The method as a number, and a constant string for the known ones, so
 * that neither needs a copy nor a strcmp later. */
static gust_http_method method_of(gust__http1_slice m, const char **name)
{
    gust_http_method id = GUST_HTTP_OTHER;
    switch (m.len) {
    case 3:
        id = m.ptr[0] == 'G' ? GUST_HTTP_GET : GUST_HTTP_PUT;
        break;
    case 4:
        id = m.ptr[0] == 'H' ? GUST_HTTP_HEAD : GUST_HTTP_POST;
        break;
    case 5:
        id = m.ptr[0] == 'P' ? GUST_HTTP_PATCH : GUST_HTTP_TRACE;
        break;
    case 6:
        id = GUST_HTTP_DELETE;
        break;
    case 7:
        id = m.ptr[0] == 'O' ? GUST_HTTP_OPTIONS : GUST_HTTP_CONNECT;
        break;
    }
    if (id != GUST_HTTP_OTHER && memcmp(m.ptr, method_names[id], m.len) != 0)
        id = GUST_HTTP_OTHER;
    *name = method_names[id];
    return id;
}

/* Fills c->rq->req from the parsed head. Returns 0 or -ENOMEM. */
static int setup_request(gust_http_connection *c)
{
    gust_http_request *r = &c->rq->req;
    gust__http1_request *h = &c->rq->head;
    gust_arena_reset(&c->rq->arena);
    memset(r, 0, sizeof *r);
    c->req_seq++;
    c->srv->requests_total++;
    r->arena = &c->rq->arena;
    r->method_id = method_of(h->method, &r->method);
    if (r->method_id == GUST_HTTP_OTHER)
        r->method = dup_slice(c, h->method);
    r->uri = r->uri_len_of = dup_slice(c, h->target);
    r->uri_len = h->target.len;
    if (!r->method || !r->uri)
        return -ENOMEM;
    const char *q = memchr(r->uri, '?', h->target.len);
    if (q) {
        r->path = gust_arena_strndup(&c->rq->arena, r->uri, (size_t)(q - r->uri));
        r->query = q + 1;
    } else {
        r->path = r->uri;
        r->query = "";
    }
    r->version_minor = h->minor_version ? 1 : 0;
    r->version = r->version_minor ? "HTTP/1.1" : "HTTP/1.0";
    gust_http_headers_init(&r->headers, &c->rq->arena);
    if (gust_http_headers_reserve(&r->headers, h->num_headers ? h->num_headers : 1))
        return -ENOMEM;
    for (size_t i = 0; i < h->num_headers; i++) {
        gust__http1_header *f = &h->headers[i];
        gust_http_headers_add(&r->headers, gust_str_make(f->name.ptr, f->name.len),
                              gust_str_make(f->value.ptr, f->value.len),
                              GUST_HEADER_TRUSTED);
    }
    gust_http_args_init(&r->query_arguments, &c->rq->arena);
    gust_http_args_init(&r->body_arguments, &c->rq->arena);
    gust_http_args_init(&r->arguments, &c->rq->arena);
    gust_http_files_init(&r->files, &c->rq->arena);
    if (*r->query) {
        if (gust_http_args_parse_urlencoded(&r->query_arguments,
                                            gust_str_cstr(r->query)))
            return -ENOMEM;
    }
    r->remote_ip = r->remote_ip_len_of = c->rq->peer_ip;
    r->remote_ip_len = c->rq->peer_ip_len;
    r->protocol = c->srv->protocol ? c->srv->protocol
                  : c->stream && gust_stream_is_tls(c->stream) ? "https"
                                                               : "http";
    if (c->srv->opts.xheaders)
        gust__http_conn_apply_xheaders(c);
    gust__http1_slice host = c->rq->framing.host;
    if (!host.ptr && h->target.len > 7 &&
        (strncasecmp(r->uri, "http://", 7) == 0 ||
         strncasecmp(r->uri, "https://", 8) == 0)) {
        /* absolute-form: the authority names the host */
        const char *a = strstr(r->uri, "//") + 2;
        size_t n = strcspn(a, "/?");
        host.ptr = a;
        host.len = n;
    }
    set_host(r, &c->rq->arena, host.ptr ? dup_slice(c, host) : NULL);
    r->start_time = gust_loop_time(gust_stream_loop(c->stream));
    r->connection = c;
    r->body = gust_str_make("", 0);

    c->rq->resp_mode = GUST__RESP_NONE;
    c->rq->status = 200;
    c->rq->reason = NULL;
    c->rq->head_line = NULL;
    c->rq->head_line_len = 0;
    gust_http_headers_init(&c->rq->resp_headers, &c->rq->arena);
    c->rq->headers_sent = c->rq->resp_chunked = c->rq->resp_no_body = c->rq->resp_close = false;
    c->rq->aborted = c->rq->resp_len_set = false;
    c->rq->sbody_len = 0;
    c->rq->body = NULL;
    c->rq->body_len = c->rq->body_cap = 0;
    c->rq->streaming = c->rq->skip_body = c->rq->finish_called = false;
    c->rq->body_paused = false;
    c->rq->body_started = false;
    c->rq->discard_failed = false;
    c->rq->cookies_parsed = false;
    return 0;
}

static size_t discard_bound(gust_http_connection *c)
{
    size_t m = gust__http_conn_opts_of(c)->max_body_size;
    return m < DISCARD_MAX ? m : DISCARD_MAX;
}

/* Whether the body of a request the delegate answered from
 * headers_received can be read and dropped (the connection is then kept):
 * a known length up to the bound, or chunked (bounded while decoded); not
 * when the client waits for a 100 Continue it will not get. */
bool gust__http_conn_can_discard(gust_http_connection *c)
{
    if (c->rq->framing.body == GUST_HTTP1_BODY_NONE)
        return true;
    if (c->rq->framing.body == GUST_HTTP1_BODY_LENGTH) {
        /* Finished in the middle of a streamed body: what is left counts. */
        uint64_t left = c->rq->body_started ? c->rq->body_left
                                            : c->rq->framing.content_length;
        if (left == 0)
            return true;
        if (left > discard_bound(c))
            return false;
    }
    if (c->rq->discard_failed)
        return false;
    return c->rq->body_started ||
           !(c->rq->framing.expect_continue && c->rq->len == c->rq->head_end);
}

/* The delegate answered from headers_received, or finished while its
 * body was streamed to it: drop the (rest of the) body from now on. */
void gust__http_conn_begin_skip(gust_http_connection *c)
{
    gust__http_rq *q = c->rq;
    if (q->skip_body)
        return;
    q->skip_body = true;
    if (!gust__http_conn_can_discard(c)) {
        q->discard_failed = true;
    } else if (q->body_started) {
        /* Mid-body: the decoder goes on; at most the bound more. */
        if (q->framing.body == GUST_HTTP1_BODY_CHUNKED &&
            q->chunked.max_body - q->chunked.total > discard_bound(c))
            q->chunked.max_body = q->chunked.total + discard_bound(c);
        return;
    } else if (q->framing.body == GUST_HTTP1_BODY_CHUNKED) {
        gust__http1_chunked_init(&q->chunked, discard_bound(c),
                                 gust__http_conn_opts_of(c)->max_header_size);
    }
    q->body_left = q->framing.body == GUST_HTTP1_BODY_LENGTH
                       ? q->framing.content_length : 0;
}

/* Drops body bytes buf[req_end, len). Returns 1 when the body is over, 0
 * when more is needed, -1 when it is malformed or over the bound. */
static int discard_step(gust_http_connection *c)
{
    size_t pos = c->rq->req_end;
    size_t avail = c->rq->len - pos;
    size_t used;
    int done;
    if (c->rq->framing.body == GUST_HTTP1_BODY_NONE)
        return 1;
    if (c->rq->framing.body == GUST_HTTP1_BODY_LENGTH) {
        used = avail < c->rq->body_left ? avail : (size_t)c->rq->body_left;
        c->rq->body_left -= used;
        done = c->rq->body_left == 0;
    } else {
        size_t dlen = 0;
        ssize_t r = gust__http1_chunked_decode(&c->rq->chunked, c->rq->buf + pos,
                                               avail, &dlen);
        if (r == GUST_HTTP1_ERROR)
            return -1;
        used = r == GUST_HTTP1_INCOMPLETE ? avail : (size_t)r;
        done = r >= 0;
    }
    memmove(c->rq->buf + pos, c->rq->buf + pos + used, avail - used);
    c->rq->len -= used;
    return done;
}

/* Inlined into HTTP/1's dispatch (every request); HTTP/2 calls the
 * exported wrappers below. */
static inline void collect_args(gust__http_rq *q, const char *module)
{
    gust_http_request *r = &q->req;
    if (!q->streaming && r->body.len) {
        gust_str ct = gust_http_headers_get_first(&r->headers,
                                                  GUST_STR("Content-Type"));
        bool encoded = gust_http_headers_has(&r->headers,
                                             GUST_STR("Content-Encoding"));
        if (ct.ptr && !encoded &&
            gust_http_parse_body_arguments(&q->arena, ct, r->body,
                                           &r->body_arguments, &r->files) < 0)
            gust_log_warning(module, "%s: invalid form body ignored",
                             q->peer_ip);
    }
    for (size_t i = 0; i < r->query_arguments.count; i++)
        gust_http_args_add(&r->arguments, r->query_arguments.items[i].name,
                           r->query_arguments.items[i].value);
    for (size_t i = 0; i < r->body_arguments.count; i++)
        gust_http_args_add(&r->arguments, r->body_arguments.items[i].name,
                           r->body_arguments.items[i].value);
}

static inline void run_handler(gust_http_server *srv, gust_http_request *r)
{
    const gust_http_delegate *d = srv->handler.delegate;
    if (d) {
        if (d->finish)
            d->finish(r, srv->handler.data);
    } else if (srv->handler.callback) {
        srv->handler.callback(r, srv->handler.data);
    } else {
        gust_http_respond(r, 404, NULL, NULL, 0);
    }
}

void gust__http_request_collect_args(gust__http_rq *q, const char *module)
{
    collect_args(q, module);
}

void gust__http_server_run_handler(gust_http_server *srv, gust_http_request *r)
{
    run_handler(srv, r);
}

/* The body is complete: parse form arguments and run the handler. */
static void dispatch(gust_http_connection *c)
{
    gust_http_request *r = &c->rq->req;
    if (!c->rq->streaming) {
        if (c->rq->body)
            r->body = gust_str_make(c->rq->body, c->rq->body_len);
        else if (c->rq->framing.body == GUST_HTTP1_BODY_LENGTH)
            r->body = gust_str_make(c->rq->buf + c->rq->head_end,
                                    (size_t)c->rq->framing.content_length);
    }
    collect_args(c->rq, "http");
    c->state = GUST__HTTP_HANDLER;
    c->rq->finish_called = true;
    c->app_owns = true;
    gust__http_conn_pause_timer(c);
    run_handler(c->srv, r);
}

/* Body bytes buf[req_end, len): move them where they belong. Returns 1
 * when the body is complete, 0 when more is needed, -1 after an error
 * (answered), 2 when a streaming delegate finished the request before the
 * end of its body (the rest is then dropped, see gust__http_conn_begin_skip). */
static int body_step(gust_http_connection *c)
{
    const gust_http_delegate *d = c->srv->handler.delegate;
    void *hd = c->srv->handler.data;
    size_t pos = c->rq->req_end;
    size_t avail = c->rq->len - pos;
    if (c->rq->framing.body == GUST_HTTP1_BODY_NONE)
        return 1;
    if (c->rq->framing.body == GUST_HTTP1_BODY_LENGTH) {
        size_t take = avail < c->rq->body_left ? avail : (size_t)c->rq->body_left;
        if (!c->rq->streaming && !c->rq->body) { /* the body stays in buf */
            c->rq->req_end += take;
            c->rq->body_left -= take;
            return c->rq->body_left == 0;
        }
        if (take) {
            if (c->rq->streaming) {
                if (d->data_received &&
                    d->data_received(&c->rq->req, c->rq->buf + pos, take, hd) < 0) {
                    gust__http_conn_send_error(c, 400, "body refused by the handler");
                    return -1;
                }
                if (c->state != GUST__HTTP_BODY)
                    return -1;
            } else {
                memcpy(c->rq->body + c->rq->body_len, c->rq->buf + pos, take);
                c->rq->body_len += take;
            }
            memmove(c->rq->buf + pos, c->rq->buf + pos + take, avail - take);
            c->rq->len -= take;
            c->rq->body_left -= take;
        }
        if (c->rq->skip_body)
            return 2; /* finished from data_received: drop the rest */
        return c->rq->body_left == 0;
    }
    /* chunked: decoded in place, then handed over or appended */
    size_t dlen = 0;
    ssize_t r = gust__http1_chunked_decode(&c->rq->chunked, c->rq->buf + pos, avail,
                                           &dlen);
    if (dlen) {
        if (c->rq->streaming) {
            if (d->data_received &&
                d->data_received(&c->rq->req, c->rq->buf + pos, dlen, hd) < 0) {
                gust__http_conn_send_error(c, 400, "body refused by the handler");
                return -1;
            }
            if (c->state != GUST__HTTP_BODY)
                return -1;
        } else {
            if (c->rq->body_len + dlen > c->rq->body_cap) {
                size_t cap = c->rq->body_cap ? c->rq->body_cap * 2 : 4096;
                while (cap < c->rq->body_len + dlen)
                    cap *= 2;
                char *nb = gust_arena_realloc(&c->rq->arena, c->rq->body, c->rq->body_cap,
                                              cap);
                if (!nb) {
                    gust__http_conn_send_error(c, 413, "out of memory for the body");
                    return -1;
                }
                c->rq->body = nb;
                c->rq->body_cap = cap;
            }
            memcpy(c->rq->body + c->rq->body_len, c->rq->buf + pos, dlen);
            c->rq->body_len += dlen;
        }
    }
    if (r == GUST_HTTP1_ERROR) {
        gust__http_conn_send_error(c, c->rq->chunked.error_status, c->rq->chunked.error_reason);
        return -1;
    }
    size_t used = r == GUST_HTTP1_INCOMPLETE ? avail : (size_t)r;
    memmove(c->rq->buf + pos, c->rq->buf + pos + used, avail - used);
    c->rq->len -= used;
    if (c->rq->skip_body) {
        /* Finished from data_received: drop the rest, if any. */
        if (r >= 0)
            c->rq->framing.body = GUST_HTTP1_BODY_NONE;
        return 2;
    }
    if (r >= 0 && !c->rq->body)
        c->rq->body = gust_arena_alloc(&c->rq->arena, 1); /* empty, but not in buf */
    return r >= 0;
}

/* A complete head is at buf[off, off + n). */
static int start_request(gust_http_connection *c, size_t n)
{
    const gust_http_server_options *o = gust__http_conn_opts_of(c);
    if (gust__http1_request_framing(&c->rq->head, &c->rq->framing) < 0) {
        gust__http_conn_send_error(c, c->rq->framing.error_status, c->rq->framing.error_reason);
        return -1;
    }
    if (c->rq->framing.expect_other) {
        gust__http_conn_send_error(c, 417, "unsupported Expect");
        return -1;
    }
    if (c->rq->framing.body == GUST_HTTP1_BODY_LENGTH &&
        c->rq->framing.content_length > o->max_body_size) {
        gust__http_conn_send_error(c, 413, "Content-Length over max_body_size");
        return -1;
    }
    c->rq->head_end = c->rq->req_end = c->rq->off + n;
    if (setup_request(c) < 0) {
        gust__http_conn_send_error(c, 503, "out of memory");
        return -1;
    }
    c->state = GUST__HTTP_BODY;
    if (c->rq->framing.connection_upgrade && !o->no_http2_upgrade &&
        gust__h2_try_upgrade(c))
        return -1; /* now stream 1 of an HTTP/2 connection */
    const gust_http_delegate *d = c->srv->handler.delegate;
    if (d && d->headers_received) {
        c->rq->in_headers_received = true;
        c->app_owns = true;
        int rc = d->headers_received(&c->rq->req, c->srv->handler.data);
        c->rq->in_headers_received = false;
        if (c->state != GUST__HTTP_BODY)
            return -1; /* failed, or finished and closing */
        if (rc > 0 || !c->app_owns) { /* answered: the body is dropped */
            gust__http_conn_begin_skip(c);
            if (!c->rq->discard_failed)
                return 0; /* gust__http_conn_process() reads and drops it */
            c->state = GUST__HTTP_HANDLER; /* closes after the answer */
            return -1;
        }
    }
    bool has_body = c->rq->framing.body == GUST_HTTP1_BODY_CHUNKED ||
                    (c->rq->framing.body == GUST_HTTP1_BODY_LENGTH &&
                     c->rq->framing.content_length > 0);
    if (c->rq->framing.body == GUST_HTTP1_BODY_CHUNKED)
        gust__http1_chunked_init(&c->rq->chunked, o->max_body_size, o->max_header_size);
    c->rq->body_left = c->rq->framing.body == GUST_HTTP1_BODY_LENGTH
                       ? c->rq->framing.content_length : 0;
    c->rq->body_started = true;
    if (has_body && !c->rq->streaming &&
        c->rq->framing.body == GUST_HTTP1_BODY_LENGTH &&
        c->rq->head_end + c->rq->framing.content_length > c->rq->cap) {
        c->rq->body = gust_arena_alloc(&c->rq->arena,
                                   (size_t)c->rq->framing.content_length);
        if (!c->rq->body) {
            gust__http_conn_send_error(c, 413, "out of memory for the body");
            return -1;
        }
    }
    if (has_body && c->rq->framing.expect_continue && c->rq->len == c->rq->head_end) {
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        gust__http_conn_out(c, cont, sizeof cont - 1);
        gust__http_conn_flush(c);
    }
    if (!has_body)
        c->rq->req_end = c->rq->head_end;
    return 0;
}

/* Parses and runs every request already buffered. */
/* The request's bytes are done with: the next head starts after them. A
 * head rejected before setup_request() still gets its error answer. */
void gust__http_conn_next_request(gust_http_connection *c)
{
    c->rq->off = c->rq->req_end;
    c->rq->resp_mode = GUST__RESP_NONE;
    c->rq->headers_sent = c->rq->aborted = c->rq->resp_len_set = false;
    c->state = GUST__HTTP_HEAD;
}

void gust__http_conn_process(gust_http_connection *c)
{
    const gust_http_server_options *o = gust__http_conn_opts_of(c);
    if (c->in_batch)
        return;
    c->in_batch = true;
    if (c->rq)
        c->rq->queue_stale = true;
    while (!c->closed && c->state != GUST__HTTP_CLOSING) {
        if (c->state == GUST__HTTP_HANDLER || c->state == GUST__HTTP_DETACHED)
            break;
        if (c->state == GUST__HTTP_HEAD) {
            if (c->rq && c->rq->out_blocked)
                break; /* on_drained goes on */
            if (!c->rq || c->rq->off == c->rq->len) {
                /* Idle: the context goes back once the output is out. */
                if (c->srv->closing_all)
                    gust__http_conn_close_after_write(c, true);
                else
                    gust__http_conn_set_timer(c, GUST__T_IDLE);
                break;
            }
            if (output_maybe_over(c) && output_over(c)) {
                gust__http_conn_flush(c); /* what the kernel takes is not held */
                if (output_over(c)) {
                    hold_output(c);
                    break;
                }
            }
            if (c->h2_maybe) { /* the first bytes: HTTP/2 by prior knowledge? */
                int h2 = gust__h2_sniff(c);
                if (h2 == 2)
                    break; /* handed over: c goes below */
                if (h2 == 1) {
                    gust__http_conn_set_timer(c, GUST__T_HEAD);
                    break;
                }
            }
            int n = gust__http1_parse_request(c->rq->buf + c->rq->off, c->rq->len - c->rq->off,
                                              c->rq->parsed_len, o->max_header_size,
                                              &c->rq->head);
            if (n == GUST_HTTP1_INCOMPLETE) {
                if (c->rq->off) {
                    memmove(c->rq->buf, c->rq->buf + c->rq->off, c->rq->len - c->rq->off);
                    c->rq->len -= c->rq->off;
                    c->rq->off = 0;
                }
                c->rq->parsed_len = c->rq->len;
                gust__http_conn_set_timer(c, GUST__T_HEAD);
                break;
            }
            c->rq->parsed_len = 0;
            if (n < 0) {
                gust__http_conn_send_error(c, c->rq->head.error_status, c->rq->head.error_reason);
                break;
            }
            gust__http_conn_pause_timer(c);
            if (start_request(c, (size_t)n) < 0)
                continue; /* answered, closing, or the delegate took it */
        }
        /* GUST__HTTP_BODY */
        if (c->rq->skip_body) {
            int r = discard_step(c);
            if (r == 0) {
                gust__http_conn_set_timer(c, GUST__T_BODY);
                break;
            }
            if (r < 0) {
                gust_log_warning("http", "%s: skipped request body malformed "
                                 "or over %zu bytes, closing", c->rq->peer_ip,
                                 discard_bound(c));
                c->rq->discard_failed = true;
            }
            if (c->app_owns) {
                c->state = GUST__HTTP_HANDLER; /* finish() goes on */
            } else if (c->rq->discard_failed) {
                gust__http_conn_close_after_write(c, true);
            } else {
                gust__http_conn_next_request(c);
            }
            continue;
        }
        if (c->rq->body_paused) {
            gust__http_conn_clear_timer(c); /* the application is the slow one */
            break;
        }
        int r = body_step(c);
        if (r < 0 || r == 2)
            continue; /* answered or closing; or now dropping the body */
        if (r == 0) {
            gust__http_conn_set_timer(c, GUST__T_BODY);
            break;
        }
        dispatch(c);
    }
    c->in_batch = false;
    if (c->state == GUST__HTTP_DETACHED) {
        if (!c->app_owns) /* finished inside the batch */
            gust__http_conn_free(c);
        return;
    }
    gust__http_conn_flush(c);
    if (!c->closed && c->state == GUST__HTTP_HEAD && !c->app_owns && c->rq &&
        c->rq->off == c->rq->len && !c->rq->out_blocked)
        gust__http_conn_rq_give_back(c);
    if (!c->closed && c->state != GUST__HTTP_CLOSING)
        gust__http_conn_start_read(c);
}

void gust__http_conn_on_resume(gust_timer *t, void *data)
{
    (void)t;
    gust__http_conn_process(data);
}

int gust__http_conn_pause_body(gust_http_connection *c, bool pause)
{
    if (c->state != GUST__HTTP_BODY || c->rq->skip_body || c->closed)
        return pause ? -EINVAL : 0; /* nothing left to hold back */
    if (c->rq->body_paused == pause)
        return 0;
    c->rq->body_paused = pause;
    /* Never inside the caller's call: gust__http_conn_process() runs on a later turn. */
    if (!pause && !c->in_batch)
        gust_timer_start(&c->rq->resume, 0, 0, gust__http_conn_on_resume, c);
    return 0;
}
