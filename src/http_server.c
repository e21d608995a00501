/* HTTP/1 server (Tornado's HTTPServer) and the request/response calls a
 * handler makes. The connection is http1_connection.c (lifecycle),
 * http1_read.c (reading) and http1_write.c (writing). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "gust/error.h"
#include "gust/http_server.h"
#include "gust/log.h"
#include "gust/tls.h"
#include "http_internal.h"
#include "http_server_internal.h"
#include "metrics_internal.h"
#include "tls_internal.h"

/* ---- Server ------------------------------------------------------------ */

static void handle_stream(gust_tcp_server *tcp, gust_stream *stream,
                          const struct sockaddr *addr, socklen_t addrlen,
                          void *data)
{
    (void)tcp;
    gust_http_server *srv = data;
    if (srv->closing_all) {
        gust_stream_close(stream);
        return;
    }
    /* TLS handshakes are done before streams are handed out. */
    const char *alpn = srv->opts.no_http2_tls ? NULL
                                              : gust_stream_tls_alpn(stream);
    if (alpn && strcmp(alpn, "h2") == 0) {
        if (gust__h2_conn_new(srv, stream, addr, addrlen) < 0)
            gust_stream_close(stream);
        return;
    }
    if (!gust__http_conn_new(srv, stream, addr, addrlen))
        gust_stream_close(stream);
}

gust_http_server *gust_http_server_new(gust_http_handler handler,
                                       const gust_http_server_options *opts)
{
    gust_http_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return NULL;
    srv->handler = handler;
    if (opts)
        srv->opts = *opts;
    gust_http_server_options *o = &srv->opts;
    if (!o->max_header_size)
        o->max_header_size = 64 * 1024;
    if (!o->max_body_size)
        o->max_body_size = 100u * 1024 * 1024;
    if (o->header_timeout == 0)
        o->header_timeout = 30;
    if (o->idle_connection_timeout == 0)
        o->idle_connection_timeout = 60;
    if (o->body_timeout == 0)
        o->body_timeout = 60;
    if (!o->max_unsent_output)
        o->max_unsent_output = 64 * 1024;
    if (o->write_timeout == 0)
        o->write_timeout = 60;
    if (o->shutdown_timeout == 0)
        o->shutdown_timeout = 10;
    if (!o->max_header_count)
        o->max_header_count = 256;
    if (!o->http2_max_concurrent_streams)
        o->http2_max_concurrent_streams = 100;
    if (!o->http2_initial_window_size)
        o->http2_initial_window_size = 256 * 1024;
    if (o->http2_initial_window_size > 0x7fffffff)
        o->http2_initial_window_size = 0x7fffffff;
    if (!o->http2_reset_burst)
        o->http2_reset_burst = 1000;
    if (!o->http2_reset_rate)
        o->http2_reset_rate = 33;
    if (o->http2_hibernate_after == 0)
        o->http2_hibernate_after = 1;
    /* Offer h2 by ALPN when the TLS context has no list of its own. */
    static const char *const h2_alpn[] = {"h2", "http/1.1", NULL};
    if (o->tcp.tls && !o->no_http2_tls)
        gust__tls_context_default_alpn(o->tcp.tls, h2_alpn);
    const char *sh = o->server_header ? o->server_header
                                      : "Gust/" GUST_VERSION_STRING;
    gust_str shs = gust_str_cstr(sh);
    if (*sh && !gust_http_header_value_valid(shs)) {
        free(srv);
        errno = EINVAL;
        return NULL;
    }
    srv->server_header = malloc(strlen(sh) + 11);
    srv->protocol = o->protocol ? strdup(o->protocol) : NULL;
    srv->tcp = gust_tcp_server_new(handle_stream, &o->tcp, srv);
    if (!srv->server_header || (o->protocol && !srv->protocol) || !srv->tcp) {
        gust_tcp_server_free(srv->tcp);
        free(srv->server_header);
        free(srv->protocol);
        free(srv);
        errno = ENOMEM;
        return NULL;
    }
    if (*sh)
        srv->server_header_len = (size_t)sprintf(srv->server_header,
                                                 "Server: %s\r\n", sh);
    else
        srv->server_header[0] = 0;
    o->protocol = srv->protocol;
    o->server_header = NULL;
    return srv;
}

int gust_http_server_listen(gust_http_server *srv, int port, const char *address)
{
    return gust_tcp_server_listen(srv->tcp, port, address);
}

int gust_http_server_bind(gust_http_server *srv, int port, const char *address)
{
    return gust_tcp_server_bind(srv->tcp, port, address);
}

int gust_http_server_start(gust_http_server *srv, int num_processes)
{
    return gust_tcp_server_start(srv->tcp, num_processes);
}

int gust_http_server_add_sockets(gust_http_server *srv, gust_socket_list *socks)
{
    return gust_tcp_server_add_sockets(srv->tcp, socks);
}

int gust_http_server_stop(gust_http_server *srv)
{
    return gust_tcp_server_stop(srv->tcp);
}

int gust_http_server_port(const gust_http_server *srv)
{
    return gust_tcp_server_port(srv->tcp);
}

size_t gust_http_server_connection_count(const gust_http_server *srv)
{
    return srv->count;
}

static void server_destroy(gust_http_server *srv)
{
    if (srv->done_timer_set)
        gust_timer_stop(&srv->done_timer);
    if (srv->deadline_set)
        gust_timer_stop(&srv->deadline_timer);
    gust_tcp_server_free(srv->tcp);
    free(srv->server_header);
    free(srv->protocol);
    free(srv);
}

static void on_done_timer(gust_timer *t, void *data)
{
    (void)t;
    gust_http_server *srv = data;
    if (srv->done && srv->count == 0) {
        void (*done)(gust_http_server *, void *) = srv->done;
        srv->done = NULL;
        done(srv, srv->done_data);
    }
}

void gust__http_server_conn_gone(gust_http_server *srv)
{
    if (srv->count)
        return;
    if (srv->deadline_set)
        gust_timer_stop(&srv->deadline_timer); /* nothing left to cut */
    if (srv->free_pending) {
        server_destroy(srv);
        return;
    }
    if (srv->done && srv->done_timer_set)
        gust_timer_start(&srv->done_timer, 0, 0, on_done_timer, srv);
}

/* Asks the owners of detached connections to close them. */
static void close_detached(gust_http_server *srv)
{
    gust_http_detached *next;
    for (gust_http_detached *d = srv->detached; d; d = next) {
        next = d->next;
        if (d->ops && d->ops->close_all)
            d->ops->close_all(d->data);
    }
}

/* shutdown_timeout is over: what is still open is cut. */
static void on_deadline(gust_timer *t, void *data)
{
    (void)t;
    gust_http_server *srv = data;
    if (srv->count == 0)
        return;
    gust_log_warning("http", "shutdown deadline (%g s) reached: closing %zu "
                     "connection(s) still open", srv->opts.shutdown_timeout,
                     srv->count);
    gust_http_connection *next;
    for (gust_http_connection *c = srv->conns; c; c = next) {
        next = c->next;
        gust__http_conn_close(c);
    }
    close_detached(srv); /* asked a second time: they close at once */
}

int gust_http_server_close_all(gust_http_server *srv,
                               void (*done)(gust_http_server *srv, void *data),
                               void *data)
{
    gust_http_server_stop(srv);
    srv->closing_all = true;
    srv->done = done;
    srv->done_data = data;
    gust_http_connection *next;
    for (gust_http_connection *c = srv->conns; c; c = next) {
        next = c->next;
        /* Idle ones get a short grace for a request already on its way;
         * busy ones close after their response. */
        if (c->state == GUST__HTTP_HEAD &&
            (!c->rq || c->rq->off == c->rq->len))
            gust__http_conn_close_idle(c);
    }
    close_detached(srv);
    gust_loop *loop = gust_loop_current();
    if (srv->count && loop && srv->opts.shutdown_timeout > 0 &&
        !srv->deadline_set) {
        gust_timer_init(loop, &srv->deadline_timer);
        srv->deadline_set = true;
        gust_timer_start(&srv->deadline_timer, srv->opts.shutdown_timeout, 0,
                         on_deadline, srv);
    }
    if (done) {
        if (!loop)
            return -ENOMEM;
        if (!srv->done_timer_set) {
            gust_timer_init(loop, &srv->done_timer);
            srv->done_timer_set = true;
        }
        if (srv->count == 0)
            return gust_timer_start(&srv->done_timer, 0, 0, on_done_timer, srv);
    }
    return 0;
}

static void on_closed_by_signal(gust_http_server *srv, void *data)
{
    (void)data;
    gust_loop_stop(srv->signal_loop);
}

static void on_stop_signal(gust_loop *loop, int signum, void *data)
{
    gust_http_server *srv = data;
    if (srv->signals_seen++ > 0) {
        gust_log_warning("http", "signal %d again: stopping now", signum);
        gust_loop_stop(loop);
        return;
    }
    gust_log_info("http", "signal %d: closing %zu connection(s)", signum,
                  srv->count);
    if (gust_http_server_close_all(srv, on_closed_by_signal, NULL) < 0)
        gust_loop_stop(loop);
}

int gust_http_server_close_on_signals(gust_http_server *srv)
{
    gust_loop *loop = gust_loop_current();
    if (!loop)
        return -ENOMEM;
    if (srv->signal_loop)
        return -EINVAL;
    int rc = gust_loop_add_signal(loop, SIGTERM, on_stop_signal, srv);
    if (rc == 0 && (rc = gust_loop_add_signal(loop, SIGINT, on_stop_signal,
                                              srv)) < 0)
        gust_loop_remove_signal(loop, SIGTERM);
    if (rc == 0)
        srv->signal_loop = loop;
    return rc;
}

void gust_http_server_get_stats(const gust_http_server *srv,
                                gust_http_server_stats *out)
{
    out->connections = srv->count;
    out->connections_total = srv->connections_total;
    out->requests_total = srv->requests_total;
}

static void on_stats_signal(gust_loop *loop, int signum, void *data)
{
    (void)loop, (void)signum;
    gust_http_server_stats st;
    gust_http_server_get_stats(data, &st);
    gust_log_info("http", "stats: %zu connections open, %llu accepted, "
                  "%llu requests", st.connections,
                  (unsigned long long)st.connections_total,
                  (unsigned long long)st.requests_total);
}

int gust_http_server_log_stats_on_sigusr1(gust_http_server *srv)
{
    gust_loop *loop = gust_loop_current();
    if (!loop)
        return -ENOMEM;
    if (srv->stats_loop)
        return -EINVAL;
    int rc = gust_loop_add_signal(loop, SIGUSR1, on_stats_signal, srv);
    if (rc == 0)
        srv->stats_loop = loop;
    return rc;
}

void gust_http_server_free(gust_http_server *srv)
{
    if (!srv)
        return;
    if (srv->stats_loop) {
        gust_loop_remove_signal(srv->stats_loop, SIGUSR1);
        srv->stats_loop = NULL;
    }
    if (srv->signal_loop) {
        gust_loop_remove_signal(srv->signal_loop, SIGTERM);
        gust_loop_remove_signal(srv->signal_loop, SIGINT);
        srv->signal_loop = NULL;
    }
    srv->done = NULL;
    gust_tcp_server_stop(srv->tcp);
    if (srv->count == 0) {
        server_destroy(srv);
        return;
    }
    /* Close callbacks still to come need the server: freed after them. */
    srv->free_pending = true;
    srv->closing_all = true;
    for (gust_http_connection *c = srv->conns; c; c = c->next)
        gust__http_conn_close(c);
    close_detached(srv);
}

/* ---- Requests: reading ------------------------------------------------- */

const gust_http_args *gust_http_request_cookies(gust_http_request *req)
{
    gust_http_connection *c = req->connection;
    if (!c->rq->cookies_parsed) {
        c->rq->cookies_parsed = true;
        gust_http_args_init(&c->rq->cookies, req->arena);
        size_t cur = 0;
        gust_str v;
        while (gust_http_headers_next(&req->headers, GUST_STR("Cookie"), &cur,
                                      &v))
            gust_http_parse_cookie(v, &c->rq->cookies);
    }
    return &c->rq->cookies;
}

const struct sockaddr *gust_http_request_peer(const gust_http_request *req,
                                              socklen_t *len)
{
    gust_http_connection *c = req->connection;
    if (c->proto)
        return gust__h2_peer(c, len);
    if (len)
        *len = c->peer_len;
    return c->peer_big ? c->peer_big : &c->peer.sa;
}

int gust_http_request_stream_body(gust_http_request *req)
{
    gust_http_connection *c = req->connection;
    if (!c || !c->rq->in_headers_received)
        return -EINVAL;
    c->rq->streaming = true;
    return 0;
}

int gust_http_request_pause_body(gust_http_request *req)
{
    gust_http_connection *c = req->connection;
    if (!c || !c->app_owns || !c->rq->streaming)
        return -EINVAL;
    if (c->proto)
        return gust__h2_pause_body(c, true);
    return gust__http_conn_pause_body(c, true);
}

int gust_http_request_resume_body(gust_http_request *req)
{
    gust_http_connection *c = req->connection;
    if (!c || !c->app_owns || !c->rq->streaming)
        return -EINVAL;
    if (c->proto)
        return gust__h2_pause_body(c, false);
    return gust__http_conn_pause_body(c, false);
}

/* ---- Responses --------------------------------------------------------- */

int gust_http_request_write_raw(gust_http_request *req, const void *data,
                                size_t len)
{
    gust_http_connection *c = req->connection;
    if (c->rq->resp_mode == GUST__RESP_STRUCT)
        return -EINVAL;
    c->rq->resp_mode = GUST__RESP_RAW;
    if (c->proto)
        return gust__h2_write_raw(c, data, len);
    return gust__http_conn_out(c, data, len);
}

int gust_http_request_printf(gust_http_request *req, const char *fmt, ...)
{
    char small[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -EINVAL;
    if ((size_t)n < sizeof small)
        return gust_http_request_write_raw(req, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return -ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = gust_http_request_write_raw(req, big, (size_t)n);
    free(big);
    return rc;
}

static int structured(gust_http_connection *c)
{
    if (c->rq->resp_mode == GUST__RESP_RAW)
        return -EINVAL;
    c->rq->resp_mode = GUST__RESP_STRUCT;
    return 0;
}

int gust_http_response_set_status(gust_http_request *req, int code,
                                  const char *reason)
{
    gust_http_connection *c = req->connection;
    if (structured(c) || c->rq->headers_sent || code < 100 || code > 999)
        return -EINVAL;
    if (reason) {
        for (const char *p = reason; *p; p++)
            if ((unsigned char)*p < 0x20 && *p != '\t')
                return -EINVAL;
        reason = gust_arena_strdup(req->arena, reason);
        if (!reason)
            return -ENOMEM;
    }
    c->rq->status = code;
    c->rq->reason = reason;
    return 0;
}

int gust_http_response_set_header(gust_http_request *req, const char *name,
                                  const char *value)
{
    gust_http_connection *c = req->connection;
    if (structured(c) || c->rq->headers_sent)
        return -EINVAL;
    return gust_http_headers_set(&c->rq->resp_headers, gust_str_cstr(name),
                                 gust_str_cstr(value), GUST_HEADER_COPY);
}

int gust__http_response_put_header(gust_http_request *req, gust_str name,
                                   gust_str value, unsigned flags)
{
    gust_http_connection *c = req->connection;
    if (structured(c) || c->rq->headers_sent)
        return -EINVAL;
    if (flags == (GUST__PUT_APPEND | GUST_HEADER_TRUSTED))
        return gust__http_headers_push(&c->rq->resp_headers, name, value);
    if (flags & GUST__PUT_APPEND)
        return gust_http_headers_add(&c->rq->resp_headers, name, value,
                                     flags & ~GUST__PUT_APPEND);
    return gust_http_headers_set(&c->rq->resp_headers, name, value, flags);
}

gust__http_response_view gust__http_response_view_of(gust_http_request *req)
{
    gust__http_rq *q = req->connection->rq;
    return (gust__http_response_view){&q->status, &q->resp_headers};
}

int gust__http_response_put_line(gust_http_request *req, const char *line,
                                 size_t len)
{
    gust__http_rq *q = req->connection->rq;
    if (q->resp_mode == GUST__RESP_RAW || q->headers_sent)
        return -EINVAL;
    q->resp_mode = GUST__RESP_STRUCT;
    q->head_line = line;
    q->head_line_len = len;
    return 0;
}

int gust_http_response_add_header(gust_http_request *req, const char *name,
                                  const char *value)
{
    gust_http_connection *c = req->connection;
    if (structured(c) || c->rq->headers_sent)
        return -EINVAL;
    return gust_http_headers_add(&c->rq->resp_headers, gust_str_cstr(name),
                                 gust_str_cstr(value), GUST_HEADER_COPY);
}

int gust_http_response_clear_header(gust_http_request *req, const char *name)
{
    gust_http_connection *c = req->connection;
    if (structured(c) || c->rq->headers_sent)
        return -EINVAL;
    gust_http_headers_remove(&c->rq->resp_headers, gust_str_cstr(name));
    return 0;
}

const gust_http_headers *gust_http_response_headers(const gust_http_request *req)
{
    return &req->connection->rq->resp_headers;
}

int gust_http_response_status(const gust_http_request *req)
{
    return req->connection->rq->status;
}

int gust_http_response_write(gust_http_request *req, const void *data,
                             size_t len)
{
    gust_http_connection *c = req->connection;
    if (structured(c))
        return -EINVAL;
    if (c->closed)
        return GUST_ESTREAMCLOSED;
    if (len == 0)
        return 0; /* data may be NULL */
    if (gust__http_buf_reserve(&c->rq->sbody, &c->rq->sbody_cap,
                               c->rq->sbody_len + len, 1024) < 0)
        return -ENOMEM;
    memcpy(c->rq->sbody + c->rq->sbody_len, data, len);
    c->rq->sbody_len += len;
    return 0;
}

typedef struct flush_wait {
    gust_http_connection *c;
    gust_http_request *req;
    uint32_t seq;    /* the request it was made for */
    int fd;          /* sendfile: our dup of the file, else -1 */
    void (*cb)(gust_http_request *, int, void *);
    void *data;
} flush_wait;

/* The stream calls its write callbacks before its close callback, and the
 * connection is freed only from (or after) that: w->c is still valid. */
static void on_flushed(gust_stream *s, int status, void *user)
{
    (void)s;
    flush_wait *w = user;
    if (w->fd >= 0)
        close(w->fd);
    /* Only while the request is still the application's: the connection
     * may be on its next request by now. */
    if (w->cb && w->c->app_owns && w->c->req_seq == w->seq)
        w->cb(w->req, status < 0 ? GUST_ESTREAMCLOSED : 0, w->data);
    free(w);
}

int gust_http_response_flush(gust_http_request *req,
                             void (*cb)(gust_http_request *req, int status,
                                        void *data),
                             void *data)
{
    gust_http_connection *c = req->connection;
    if (c->rq->resp_mode == GUST__RESP_NONE)
        c->rq->resp_mode = GUST__RESP_STRUCT;
    if (c->closed || !c->stream)
        return GUST_ESTREAMCLOSED;
    if (c->proto)
        return gust__h2_flush(c, cb, data);
    int rc = 0;
    if (c->rq->resp_mode == GUST__RESP_STRUCT)
        rc = gust__http_conn_send_structured(c, false);
    int frc = gust__http_conn_flush(c);
    if (rc == 0)
        rc = frc;
    if (cb && rc == 0) {
        flush_wait *w = malloc(sizeof *w);
        if (!w)
            return -ENOMEM;
        *w = (flush_wait){c, req, c->req_seq, -1, cb, data};
        rc = gust_stream_write(c->stream, "", 0, on_flushed, w);
        if (rc < 0)
            free(w);
    }
    return rc;
}

int gust_http_response_sendfile(gust_http_request *req, int file_fd,
                                off_t offset, size_t len,
                                void (*cb)(gust_http_request *req, int status,
                                           void *data),
                                void *data)
{
    gust_http_connection *c = req->connection;
    if (file_fd < 0 || offset < 0 || structured(c))
        return -EINVAL;
    if (c->closed || !c->stream)
        return GUST_ESTREAMCLOSED;
    if (c->proto)
        return gust__h2_sendfile(c, file_fd, offset, len, cb, data);
    /* Headers and the body written so far go first (this decides chunked
     * framing and whether the body is sent at all). */
    int rc = gust__http_conn_send_structured(c, false);
    if (rc < 0)
        return rc;
    bool skip = c->rq->resp_no_body || len == 0;
    if (!skip && (c->rq->aborted || gust__http_conn_count_body(c, len) < 0))
        return -EMSGSIZE;
    if (!skip && c->rq->resp_chunked) {
        char hex[24];
        int k = snprintf(hex, sizeof hex, "%zx\r\n", len);
        rc = gust__http_conn_out(c, hex, (size_t)k);
        if (rc < 0)
            return rc;
    }
    rc = gust__http_conn_flush(c);
    if (rc < 0)
        return rc;
    flush_wait *w = malloc(sizeof *w);
    if (!w)
        return -ENOMEM;
    *w = (flush_wait){c, req, c->req_seq, -1, cb, data};
    if (skip) {
        /* Nothing of the file goes out; cb still runs after this call. */
        rc = cb ? gust_stream_write(c->stream, "", 0, on_flushed, w) : 0;
        if (rc < 0 || !cb)
            free(w);
        return rc;
    }
    /* A duplicate, so that the caller may close its fd at once. */
    w->fd = fcntl(file_fd, F_DUPFD_CLOEXEC, 0);
    if (w->fd < 0) {
        rc = -errno;
        free(w);
        return rc;
    }
    rc = gust_stream_sendfile(c->stream, w->fd, offset, len, on_flushed, w);
    if (rc < 0) {
        close(w->fd);
        free(w);
        return rc;
    }
    gust__metrics_bytes_out(len);
    if (c->rq->resp_chunked)
        return gust__http_conn_out(c, "\r\n", 2);
    return 0;
}

int gust_http_request_finish(gust_http_request *req)
{
    gust_http_connection *c = req->connection;
    if (!c || !c->app_owns)
        return -EINVAL;
    if (c->proto)
        return gust__h2_finish(c);
    int rc = 0;
    if (c->closed || !c->stream) {
        rc = GUST_ESTREAMCLOSED;
    } else if (c->rq->resp_mode != GUST__RESP_RAW) {
        c->rq->resp_mode = GUST__RESP_STRUCT;
        rc = gust__http_conn_send_structured(c, true);
    }
    gust__http_conn_request_done(c);
    return rc;
}

int gust__http_request_finish_with(gust_http_request *req, const char *body,
                                   size_t len)
{
    gust_http_connection *c = req->connection;
    if (!len || !c || !c->app_owns || c->closed || !c->stream || c->proto ||
        c->rq->resp_mode == GUST__RESP_RAW || c->rq->sbody_len) {
        int rc = len ? gust_http_response_write(req, body, len) : 0;
        int frc = gust_http_request_finish(req);
        return rc ? rc : frc;
    }
    /* gust__http_conn_send_structured sends sbody and leaves it empty; with no capacity
     * it never frees or grows the borrowed bytes. */
    char *own = c->rq->sbody;
    size_t cap = c->rq->sbody_cap;
    c->rq->sbody = (char *)body;
    c->rq->sbody_len = len;
    c->rq->sbody_cap = 0;
    c->rq->resp_mode = GUST__RESP_STRUCT;
    int rc = gust__http_conn_send_structured(c, true);
    c->rq->sbody = own;
    c->rq->sbody_cap = cap;
    c->rq->sbody_len = 0;
    gust__http_conn_request_done(c);
    return rc;
}

int gust_http_request_abort(gust_http_request *req)
{
    gust_http_connection *c = req->connection;
    if (!c || !c->app_owns)
        return -EINVAL;
    if (c->proto)
        return gust__h2_abort(c);
    c->rq->sbody_len = 0;
    c->rq->aborted = true;
    gust__http_conn_request_done(c);
    return 0;
}

int gust_http_request_detach(gust_http_request *req, gust_http_detached *slot,
                             const gust_http_detach_ops *ops, void *data,
                             gust_stream **stream, gust_str *leftover)
{
    gust_http_connection *c = req ? req->connection : NULL;
    if (!c || !c->app_owns || c->state != GUST__HTTP_HANDLER || !stream ||
        !leftover || !slot || c->proto)
        return -EINVAL;
    if (c->closed || !c->stream)
        return GUST_ESTREAMCLOSED;
    if (c->reading || c->rq->out_blocked)
        return -EBUSY; /* a callback of the server's is due on the stream */
    if (c->rq->resp_mode != GUST__RESP_RAW && !c->rq->headers_sent) {
        c->rq->resp_mode = GUST__RESP_STRUCT;
        int rc = gust__http_conn_write_switch_head(c);
        if (rc < 0)
            return rc;
    }
    return gust__http_conn_detach(c, slot, ops, data, stream, leftover);
}

int gust_http_respond(gust_http_request *req, int status,
                      const char *content_type, const void *body, size_t len)
{
    int rc = gust_http_response_set_status(req, status, NULL);
    if (rc == 0 && content_type)
        rc = gust_http_response_set_header(req, "Content-Type", content_type);
    if (rc == 0 && len)
        rc = gust_http_response_write(req, body, len);
    int frc = gust_http_request_finish(req);
    return rc ? rc : frc;
}
