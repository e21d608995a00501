/* HTTP client, the wire side: opening a connection (net_internal.h's
 * connect request: resolve, connect to each address in turn; then TLS),
 * writing a request,
 * parsing the response head, and reading the body (Content-Length, chunked
 * through the server's own decoder, or until close) with gzip decoding.
 *
 * A connection may outlive its fetch (a timeout while connecting) and its
 * client; each callback therefore starts by checking conn->fetch, and the
 * connection is freed only in its stream's close callback (or at once
 * when it is closed while its connect request is pending: the request is
 * cancelled and calls back no more).
 */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gust/http_client.h"
#include "gust/tls.h"
#include "http_client_internal.h"

#define READ_CHUNK 65536
#define MAX_TRAILER 16384

/* deliver() results besides 0 and negative codes. */
#define GONE GUST__HTTP_CLIENT_GONE

/* Starts reading the body in the way its framing needs. */
static void read_body(gust__http_client_fetch *f, gust__http_client_conn *conn);

/* ---- Connections --------------------------------------------------------- */

/* The last step of a connection, from its stream's close callback (or the
 * resolver's answer): nothing refers to it any more. */
static void conn_free(gust__http_client_conn *conn)
{
    gust_timer_stop(&conn->idle_timer);
    gust__http_client_h2_free(conn);
    free(conn->host);
    free(conn->tls_key);
    free(conn);
}

/* Closing is idempotent and never frees a connection that a stream
 * callback will still hand back: that one frees it. */
void gust__http_client_conn_close(gust__http_client_conn *conn)
{
    if (conn->state == GUST__HTTP_CLIENT_CONN_CLOSED)
        return;
    bool h2 = conn->state == GUST__HTTP_CLIENT_CONN_H2;
    gust__http_client_pool_remove(conn);
    conn->state = GUST__HTTP_CLIENT_CONN_CLOSED;
    conn->fetch = NULL;
    gust_timer_stop(&conn->idle_timer);
    /* Normally nobody is left: the fetches ended first. */
    if (h2)
        gust__http_client_h2_fail_all(conn, GUST_ESTREAMCLOSED,
                                      "HTTP/2 connection closed");
    gust__http_client_release_waiters(conn);
    if (conn->stream) {
        gust_stream_close(conn->stream); /* freed in on_stream_close */
    } else {
        gust__connect_cancel(conn->connect);
        conn_free(conn);
    }
}

/* The stream is gone: closed by us (state CLOSED already) or by the peer
 * or an error while idle or busy. */
static void on_stream_close(gust_stream *s, void *user)
{
    gust__http_client_conn *conn = user;
    conn->stream = NULL;
    if (conn->state != GUST__HTTP_CLIENT_CONN_CLOSED) {
        gust__http_client_fetch *f = conn->fetch;
        bool h2 = conn->state == GUST__HTTP_CLIENT_CONN_H2;
        gust__http_client_pool_remove(conn);
        conn->state = GUST__HTTP_CLIENT_CONN_CLOSED;
        conn->fetch = NULL;
        if (h2) {
            int err = gust_stream_error(s);
            gust__http_client_h2_fail_all(conn, err < 0 ? err : GUST_EPROTO,
                                          "HTTP/2 connection lost");
        }
        gust__http_client_release_waiters(conn);
        /* Normally the pending read told the fetch already. */
        if (f && f->conn == conn)
            gust__http_client_attempt_failed(f, GUST_ESTREAMCLOSED,
                                             "connection lost");
    }
    conn_free(conn);
}

/* The connection failed before it could carry the request. */
/* Names the peer in the error ("connecting to 127.0.0.1:1"), which is
 * what a user needs to read a log line. */
static void conn_fail(gust__http_client_conn *conn, int code, const char *what)
{
    gust__http_client_fetch *f = conn->fetch;
    /* Fetches waiting for this connection try their own. */
    gust__http_client_release_waiters(conn);
    if (!f) {
        gust__http_client_conn_close(conn);
        return;
    }
    const char *d = gust_arena_sprintf(&f->arena, "%s %s:%d", what,
                                       conn->host, conn->port);
    gust__http_client_attempt_failed(f, code, d);
}

/* TLS is done: the connection is ready for the request. Verification
 * failures arrive as GUST_ETLSVERIFY, others as GUST_ETLS. */
static void on_handshake(gust_stream *s, int status, void *user)
{
    gust__http_client_conn *conn = user;
    if (conn->state == GUST__HTTP_CLIENT_CONN_CLOSED || !conn->fetch)
        return;
    if (status < 0) {
        conn_fail(conn, status, "TLS handshake with");
        return;
    }
    conn->state = GUST__HTTP_CLIENT_CONN_BUSY;
    if (conn->offer_h2 && conn->client) {
        const char *alpn = gust_stream_tls_alpn(s);
        bool h2 = alpn && !strcmp(alpn, "h2");
        if (h2 || conn->h2_probe) {
            gust__http_client_handshake_done(conn, h2);
            return;
        }
    }
    gust__http_client_connected(conn->fetch);
}

/* The connect request is done: one address answered, or none did. */
static void on_connect(gust__connect *req, int status, bool resolving,
                       gust_stream *s, void *user)
{
    (void)req;
    gust__http_client_conn *conn = user;
    conn->connect = NULL;
    if (status < 0) {
        if (resolving)
            conn_fail(conn, status == -ENOMEM ? status : GUST_EDNS,
                      "resolving");
        else
            conn_fail(conn, status, "connecting to");
        return;
    }
    conn->stream = s;
    gust_stream_set_close_callback(s, on_stream_close, conn);
    gust__http_client_fetch *f = conn->fetch;
    if (!f) {
        gust__http_client_conn_close(conn);
        return;
    }
    gust_stream_set_nodelay(s, true);
    if (conn->tls) {
        struct gust_tls_context *ctx =
            gust__http_client_tls_context(conn->client, f);
        int rc = ctx ? gust_stream_start_tls(s, ctx, conn->host, on_handshake,
                                             conn)
                     : GUST_ETLS;
        if (rc < 0)
            conn_fail(conn, rc == -ENOMEM ? rc : GUST_ETLS, "TLS setup for");
        return;
    }
    conn->state = GUST__HTTP_CLIENT_CONN_BUSY;
    gust__http_client_connected(f);
}

/* Numeric hosts (the common case for services and benchmarks) connect at
 * once; names go through getaddrinfo on the loop's executor (both inside
 * the connect request). */
int gust__http_client_conn_open(gust_http_client *c, gust__http_client_fetch *f)
{
    gust__http_client_conn *conn = calloc(1, sizeof *conn);
    if (!conn)
        return -ENOMEM;
    conn->host = strdup(f->host);
    conn->tls_key = f->tls_key ? strdup(f->tls_key) : NULL;
    if (!conn->host || (f->tls_key && !conn->tls_key)) {
        conn_free(conn);
        return -ENOMEM;
    }
    conn->loop = gust__http_client_loop(c);
    gust_timer_init(conn->loop, &conn->idle_timer);
    conn->port = f->target.port;
    conn->tls = f->tls;
    conn->insecure = f->insecure;
    conn->offer_h2 = f->http2 && f->tls;
    conn->state = GUST__HTTP_CLIENT_CONN_CONNECTING;
    int rc = gust__connect_start(conn->loop, conn->host, conn->port, NULL,
                                 on_connect, conn, &conn->connect);
    if (rc < 0) {
        conn_free(conn);
        return rc == -EINVAL ? rc : -ENOMEM;
    }
    gust__http_client_pool_add(c, conn);
    conn->fetch = f;
    f->conn = conn;
    return 0;
}

/* ---- The request --------------------------------------------------------- */

/* The user's headers replace the client's defaults of the same name. */
static bool user_has(const gust__http_client_fetch *f, gust_str name)
{
    for (size_t i = 0; i < f->num_headers; i++)
        if (gust_str_eq_nocase(f->headers[i].name, name))
            return true;
    return false;
}

/* The request head is built in a stack buffer (most heads fit in 2 KiB)
 * and goes out with its body in one write. */
typedef struct outbuf {
    char *p;
    size_t len, cap;
    bool failed;
    char stack[2048];
} outbuf;

static void out_add(outbuf *o, const char *s, size_t n)
{
    if (o->failed)
        return;
    if (o->len + n > o->cap) {
        size_t cap = o->cap * 2;
        while (cap < o->len + n)
            cap *= 2;
        char *np = o->p == o->stack ? malloc(cap) : realloc(o->p, cap);
        if (!np) {
            o->failed = true;
            return;
        }
        if (o->p == o->stack)
            memcpy(np, o->stack, o->len);
        o->p = np;
        o->cap = cap;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void out_str(outbuf *o, const char *s) { out_add(o, s, strlen(s)); }

static void out_header(outbuf *o, const char *name, gust_str value)
{
    out_str(o, name);
    out_add(o, ": ", 2);
    out_add(o, value.ptr, value.len);
    out_add(o, "\r\n", 2);
}

static void on_head(gust_stream *s, int status, const char *data, size_t len,
                    void *user);

/* Writes the request and starts reading the response head. The request
 * is always HTTP/1.1; without keep-alive wanted it says Connection:
 * close. */
void gust__http_client_conn_send_request(gust__http_client_fetch *f)
{
    gust__http_client_conn *conn = f->conn;
    gust_http_client *c = f->client;
    const gust_url *u = &f->target;
    outbuf o = {.cap = sizeof o.stack};
    o.p = o.stack;

    out_str(&o, f->method);
    out_add(&o, " ", 1);
    if (u->path.len)
        out_add(&o, u->path.ptr, u->path.len);
    else
        out_add(&o, "/", 1);
    if (u->query.ptr) {
        out_add(&o, "?", 1);
        out_add(&o, u->query.ptr, u->query.len);
    }
    out_str(&o, " HTTP/1.1\r\n");
    if (!user_has(f, GUST_STR("Host"))) {
        char port[16] = "";
        if (u->port_explicit)
            snprintf(port, sizeof port, ":%u", (unsigned)u->port);
        out_str(&o, "Host: ");
        if (u->host_ipv6)
            out_add(&o, "[", 1);
        out_add(&o, u->host.ptr, u->host.len);
        if (u->host_ipv6)
            out_add(&o, "]", 1);
        out_str(&o, port);
        out_add(&o, "\r\n", 2);
    }
    if (!user_has(f, GUST_STR("User-Agent")))
        out_header(&o, "User-Agent",
                   gust_str_cstr(f->user_agent
                                     ? f->user_agent
                                     : gust__http_client_user_agent(c)));
    if (f->decompress && !user_has(f, GUST_STR("Accept-Encoding")))
        out_str(&o, "Accept-Encoding: gzip\r\n");
    if (f->authorization && !user_has(f, GUST_STR("Authorization")))
        out_header(&o, "Authorization", gust_str_cstr(f->authorization));
    if (!gust__http_client_keep_alive_wanted(c) &&
        !user_has(f, GUST_STR("Connection")))
        out_str(&o, "Connection: close\r\n");
    bool wants_body = !strcmp(f->method, "POST") ||
                      !strcmp(f->method, "PUT") || !strcmp(f->method, "PATCH");
    if (f->body || wants_body) {
        char cl[48];
        snprintf(cl, sizeof cl, "Content-Length: %zu\r\n", f->body_len);
        out_str(&o, cl);
    }
    for (size_t i = 0; i < f->num_headers; i++) {
        const gust_http_header *h = &f->headers[i];
        /* The body given is what is sent: its length is the client's. */
        if (gust_str_eq_nocase(h->name, GUST_STR("Content-Length")) ||
            gust_str_eq_nocase(h->name, GUST_STR("Transfer-Encoding")))
            continue;
        out_add(&o, h->name.ptr, h->name.len);
        out_add(&o, ": ", 2);
        out_add(&o, h->value.ptr, h->value.len);
        out_add(&o, "\r\n", 2);
    }
    out_add(&o, "\r\n", 2);
    if (f->body_len)
        out_add(&o, f->body, f->body_len);

    int rc = o.failed ? -ENOMEM
                      : gust_stream_write(conn->stream, o.p, o.len, NULL, NULL);
    if (o.p != o.stack)
        free(o.p);
    f->head_request = !strcmp(f->method, "HEAD");
    conn->requests++;
    if (rc == 0)
        rc = gust_stream_read_until(conn->stream, "\r\n\r\n", 4,
                                    gust__http_client_max_header(c), on_head,
                                    conn);
    if (rc < 0)
        gust__http_client_attempt_failed(f, rc, "sending the request");
}

/* ---- The response head ---------------------------------------------------- */

/* Calls the header callback on one line. Returns false if f ended. */
static bool header_line(gust__http_client_fetch *f, const char *p, size_t n)
{
    if (!f->header_callback)
        return true;
    gust__http_client_user_enter(f);
    f->header_callback(f->resp, p, n, f->callback_data);
    return gust__http_client_user_leave(f);
}

/* RFC 9112 5.2: a user agent replaces each obs-fold in a response by SP
 * rather than reject it (a server rejects them in requests). */
#define RESPONSE_FIELD_FLAGS GUST_HTTP1_FIELDS_OBS_FOLD

/* Header slots on the stack; a response with more fields uses the heap. */
#define HEAD_SLOTS 32

/* The parsed head into f->resp (header callback called line by line), and
 * its framing into *fr. Returns 0, GONE, or GUST_EPROTO (with
 * f->error_detail) / -ENOMEM. head is the response's own copy (so header
 * slices live as long as the response, and folds can be undone in place);
 * pr->headers has room for every line. */
static int take_head(gust__http_client_fetch *f, char *head, size_t len,
                     gust__http1_response *pr, gust__http1_framing *fr)
{
    gust_http_client_response *r = f->resp;
    int n = gust__http1_parse_response(head, len, 0, SIZE_MAX,
                                       RESPONSE_FIELD_FLAGS, pr);
    /* The stream delivered up to the first CRLF CRLF: a valid head ends
     * exactly there. */
    if (n < 0 || (size_t)n != len) {
        f->error_detail = gust_arena_sprintf(
            &f->arena, "malformed response head: %s",
            n == GUST_HTTP1_ERROR ? pr->error_reason : "incomplete");
        if (!f->error_detail)
            f->error_detail = "malformed response head";
        return GUST_EPROTO;
    }
    r->version_major = 1;
    r->version_minor = pr->minor_version;
    r->code = pr->status;
    r->reason = gust_str_dup(&r->arena, gust_str_make(pr->reason.ptr,
                                                      pr->reason.len));
    if (!r->reason)
        return -ENOMEM;
    const char *lf = memchr(head, '\n', len); /* the status line's end */
    if (!header_line(f, head, (size_t)(lf + 1 - head)))
        return GONE;
    for (size_t i = 0; i < pr->num_headers; i++) {
        const gust__http1_header *h = &pr->headers[i];
        /* A field's line (or lines, folded) runs to the next field's name,
         * or to the final CRLF. */
        const char *next = i + 1 < pr->num_headers ? pr->headers[i + 1].name.ptr
                                                   : head + len - 2;
        /* Unfolding the whole line (its own CRLF aside) also gives the
         * header callback a folded field as one line. */
        if (pr->num_folded) {
            const char *after_name = h->name.ptr + h->name.len;
            gust__http1_unfold(head + (after_name - head),
                               (size_t)(next - 2 - after_name));
        }
        if (gust_http_headers_add(&r->headers,
                                  gust_str_make(h->name.ptr, h->name.len),
                                  gust_str_make(h->value.ptr, h->value.len),
                                  GUST_HEADER_TRUSTED) < 0)
            return -ENOMEM;
        if (!header_line(f, h->name.ptr, (size_t)(next - h->name.ptr)))
            return GONE;
    }
    if (!header_line(f, "\r\n", 2))
        return GONE;
    if (gust__http1_response_framing(
            pr, (gust__http1_slice){f->method, strlen(f->method)}, fr) < 0) {
        f->error_detail = fr->error_reason;
        return GUST_EPROTO;
    }
    return 0;
}

/* Parses the head with the server's own parser (src/http1_parser.c), so
 * both directions follow the same field rules: bare CR or LF, NUL and other
 * CTLs, bad names, whitespace before a colon are errors. */
static int parse_head(gust__http_client_fetch *f, const char *data, size_t len,
                      gust__http1_framing *fr)
{
    gust_http_client_response *r = f->resp;
    char *head = gust_arena_memdup(&r->arena, data, len);
    if (!head)
        return -ENOMEM;
    gust_http_headers_clear(&r->headers);
    /* A field takes at least one line, so there are fewer fields than LFs:
     * the parser can never run out of slots (the size limit is the
     * client's max_header_size, enforced by the stream). */
    size_t lines = 0;
    for (const char *q = head; (q = memchr(q, '\n', (size_t)(head + len - q)));
         q++)
        lines++;
    gust__http1_header stack[HEAD_SLOTS];
    gust__http1_response pr = {.headers = stack, .max_headers = HEAD_SLOTS};
    if (lines > HEAD_SLOTS) {
        pr.headers = malloc(lines * sizeof *pr.headers);
        if (!pr.headers)
            return -ENOMEM;
        pr.max_headers = lines;
    }
    int rc = take_head(f, head, len, &pr, fr);
    if (pr.headers != stack)
        free(pr.headers);
    return rc;
}

static bool is_redirect(int code)
{
    return code == 301 || code == 302 || code == 303 || code == 307 ||
           code == 308;
}

/* After the head: framing, keep-alive, redirect, decoding. Returns 0 or a
 * negative code (f->error_detail set). The framing (RFC 9112 6.3) comes
 * from gust__http1_response_framing(): HEAD, 204 and 304 have no body;
 * chunked last means chunked (with a Content-Length too, the connection is
 * not trusted again); no length at all means "until the server closes". */
static int prepare_body(gust__http_client_fetch *f,
                        const gust__http1_framing *fr)
{
    gust_http_client_response *r = f->resp;
    const gust_http_headers *h = &r->headers;
    int code = r->code;
    uint64_t cl = 0;

    f->keep_alive = fr->keep_alive;
    switch (fr->body) {
    case GUST_HTTP1_BODY_NONE:
        f->body_mode = GUST__HTTP_CLIENT_BODY_NONE;
        break;
    case GUST_HTTP1_BODY_LENGTH:
        cl = fr->content_length;
        f->body_mode =
            cl ? GUST__HTTP_CLIENT_BODY_LENGTH : GUST__HTTP_CLIENT_BODY_NONE;
        break;
    case GUST_HTTP1_BODY_CHUNKED:
        f->body_mode = GUST__HTTP_CLIENT_BODY_CHUNKED;
        gust__http1_chunked_init(&f->chunked, UINT64_MAX, MAX_TRAILER);
        break;
    case GUST_HTTP1_BODY_CLOSE:
        f->body_mode = GUST__HTTP_CLIENT_BODY_CLOSE;
        break;
    }

    if (is_redirect(code) && f->max_redirects >= 0) {
        gust_str loc = gust_http_headers_get_first(h, GUST_STR("Location"));
        if (loc.ptr && loc.len) {
            if (f->redirects < f->max_redirects) {
                f->discard_body = true;
                f->location = gust_str_dup(&f->arena, loc);
                if (!f->location)
                    return -ENOMEM;
            } else {
                f->too_many_redirects = true;
            }
        }
    }
    f->stream_body = f->streaming_callback && !f->discard_body;

    gust_str ce = gust_http_headers_get_first(h, GUST_STR("Content-Encoding"));
    if (f->decompress && f->body_mode != GUST__HTTP_CLIENT_BODY_NONE &&
        ce.ptr && gust_str_eq_nocase(ce, GUST_STR("gzip")) &&
        !f->discard_body) {
        memset(&f->z, 0, sizeof f->z);
        if (inflateInit2(&f->z, 16 + MAX_WBITS) != Z_OK)
            return -ENOMEM;
        f->z_ready = f->gzip = true;
        gust_http_headers_remove(&r->headers, GUST_STR("Content-Encoding"));
        if (gust_http_headers_add(&r->headers,
                                  GUST_STR("X-Consumed-Content-Encoding"),
                                  GUST_STR("gzip"), GUST_HEADER_TRUSTED) < 0)
            return -ENOMEM;
    }

    size_t max = gust__http_client_max_body(f->client);
    if (f->body_mode == GUST__HTTP_CLIENT_BODY_LENGTH && !f->stream_body &&
        !f->discard_body && !f->gzip) {
        if (cl > max) {
            f->error_detail = "response body larger than max_body_size";
            return GUST_EBUFFERFULL;
        }
        /* A small body of known length fits in the response's arena:
         * one allocation fewer, and exactly cl bytes will come. */
        if (cl < 4096) {
            r->body_buf = gust_arena_alloc(&r->arena, (size_t)cl + 1);
            r->body_in_arena = true;
        } else {
            r->body_buf = malloc((size_t)cl + 1);
        }
        if (!r->body_buf)
            return -ENOMEM;
        r->body_cap = (size_t)cl + 1;
    }
    f->content_length = cl;
    return 0;
}

/* A complete head (or the error that prevented one). Errors before any
 * byte of a response are what a stale keep-alive connection gives, and
 * gust__http_client_attempt_failed() retries those. */
static void on_head(gust_stream *s, int status, const char *data, size_t len,
                    void *user)
{
    gust__http_client_conn *conn = user;
    gust__http_client_fetch *f = conn->fetch;
    if (!f || conn->state == GUST__HTTP_CLIENT_CONN_CLOSED)
        return;
    if (status < 0) {
        if (status == GUST_EUNSATISFIABLE) {
            f->keep_alive = false;
            gust__http_client_attempt_failed(
                f, GUST_EBUFFERFULL,
                "response head larger than max_header_size");
            return;
        }
        int err = gust_stream_error(s);
        gust__http_client_attempt_failed(
            f, err < 0 ? err : GUST_EPROTO,
            "connection closed before the response head");
        return;
    }
    gust__http1_framing fr;
    int rc = parse_head(f, data, len, &fr);
    if (rc == GONE)
        return;
    if (rc == 0 && f->resp->code == 101) {
        f->error_detail = "unexpected 101 Switching Protocols";
        rc = GUST_EPROTO;
    }
    if (rc < 0) {
        gust__http_client_attempt_failed(f, rc, f->error_detail);
        return;
    }
    if (f->resp->code < 200) {
        /* 1xx: informational, the real head follows. */
        rc = gust_stream_read_until(s, "\r\n\r\n", 4,
                                    gust__http_client_max_header(f->client),
                                    on_head, conn);
        if (rc < 0)
            gust__http_client_attempt_failed(f, rc,
                                             "reading the response head");
        return;
    }
    rc = prepare_body(f, &fr);
    if (rc < 0) {
        gust__http_client_attempt_failed(f, rc, f->error_detail);
        return;
    }
    read_body(f, conn);
}

/* ---- The body ------------------------------------------------------------ */

/* Forgets the body state of an attempt (redirects and retries start a new
 * one). */
void gust__http_client_conn_body_reset(gust__http_client_fetch *f)
{
    if (f->z_ready)
        inflateEnd(&f->z);
    f->z_ready = f->gzip = f->z_end = f->z_input = false;
    f->stream_body = false;
    f->body_mode = GUST__HTTP_CLIENT_BODY_NONE;
    f->keep_alive = false;
    free(f->scratch);
    f->scratch = NULL;
    f->scratch_cap = 0;
}

/* Decoded body bytes: to the streaming callback or into resp->body_buf. */
static int sink(gust__http_client_fetch *f, const char *p, size_t n)
{
    gust_http_client_response *r = f->resp;
    if (f->stream_body) {
        gust__http_client_user_enter(f);
        f->streaming_callback(r, p, n, f->callback_data);
        return gust__http_client_user_leave(f) ? 0 : GONE;
    }
    if (r->body_len + n > gust__http_client_max_body(f->client)) {
        f->error_detail = "response body larger than max_body_size";
        return GUST_EBUFFERFULL;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap * 2 : 4096;
        while (cap < r->body_len + n + 1)
            cap *= 2;
        char *nb = r->body_in_arena ? malloc(cap) : realloc(r->body_buf, cap);
        if (!nb)
            return -ENOMEM;
        if (r->body_in_arena)
            memcpy(nb, r->body_buf, r->body_len);
        r->body_in_arena = false;
        r->body_buf = nb;
        r->body_cap = cap;
    }
    memcpy(r->body_buf + r->body_len, p, n);
    r->body_len += n;
    return 0;
}

/* Raw body bytes: through zlib first when the body is gzip. inflate is
 * called until it has consumed the input and has room left, so a small
 * input that expands a lot is decoded fully. */
static int deliver(gust__http_client_fetch *f, const char *p, size_t n)
{
    if (f->discard_body || n == 0)
        return 0;
    if (!f->gzip)
        return sink(f, p, n);
    f->z_input = true;
    if (f->z_end)
        return 0; /* bytes after the gzip stream are ignored, as zlib does */
    f->z.next_in = (Bytef *)(uintptr_t)p;
    f->z.avail_in = (uInt)n;
    char out[16384];
    while (true) {
        f->z.next_out = (Bytef *)out;
        f->z.avail_out = sizeof out;
        int zr = inflate(&f->z, Z_NO_FLUSH);
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
            f->error_detail = "bad gzip body";
            return GUST_EPROTO;
        }
        size_t got = sizeof out - f->z.avail_out;
        if (got) {
            int rc = sink(f, out, got);
            if (rc)
                return rc;
        }
        if (zr == Z_STREAM_END) {
            f->z_end = true;
            return 0;
        }
        if (f->z.avail_in == 0 && f->z.avail_out != 0)
            return 0;
        if (zr == Z_BUF_ERROR && f->z.avail_in == 0)
            return 0;
    }
}

/* A gzip body that stopped before its end is an error: the data is
 * incomplete even if the framing was right. */
static void body_done(gust__http_client_fetch *f)
{
    gust_http_client_response *r = f->resp;
    if (f->gzip && f->z_input && !f->z_end) {
        f->keep_alive = false;
        gust__http_client_attempt_failed(f, GUST_EPROTO, "truncated gzip body");
        return;
    }
    if (r->body_buf) {
        r->body_buf[r->body_len] = '\0';
        r->body = r->body_buf;
    }
    gust__http_client_response_done(f);
}

/* The connection ended during the body: the stream's own error when it
 * has one (-ECONNRESET), else a truncated response (GUST_EPROTO). */
static void body_failed(gust__http_client_fetch *f, gust_stream *s, int status)
{
    f->keep_alive = false;
    if (status == GUST_ESTREAMCLOSED) {
        int err = gust_stream_error(s);
        gust__http_client_attempt_failed(
            f, err < 0 ? err : GUST_EPROTO,
            "connection closed before the end of the body");
    } else {
        gust__http_client_attempt_failed(f, status, "reading the body");
    }
}

/* Content-Length and until-close bodies arrive as streamed chunks, so a
 * large body is never held twice (stream buffer and response). */
static void on_body(gust_stream *s, int status, const char *data, size_t len,
                    void *user)
{
    gust__http_client_conn *conn = user;
    gust__http_client_fetch *f = conn->fetch;
    if (!f || conn->state == GUST__HTTP_CLIENT_CONN_CLOSED)
        return;
    int rc = deliver(f, data, len);
    if (rc == GONE)
        return;
    if (rc < 0) {
        f->keep_alive = false;
        gust__http_client_attempt_failed(f, rc, f->error_detail);
        return;
    }
    if (status < 0)
        body_failed(f, s, status);
    else if (status == 0)
        body_done(f);
}

static void on_chunked(gust_stream *s, int status, const char *data,
                       size_t len, void *user)
{
    gust__http_client_conn *conn = user;
    gust__http_client_fetch *f = conn->fetch;
    if (!f || conn->state == GUST__HTTP_CLIENT_CONN_CLOSED)
        return;
    if (status < 0) {
        body_failed(f, s, status);
        return;
    }
    /* The decoder works in place: copy out of the stream's buffer first. */
    if (len > f->scratch_cap) {
        char *ns = realloc(f->scratch, len);
        if (!ns) {
            gust__http_client_attempt_failed(f, -ENOMEM, NULL);
            return;
        }
        f->scratch = ns;
        f->scratch_cap = len;
    }
    memcpy(f->scratch, data, len);
    size_t dlen = 0;
    ssize_t used = gust__http1_chunked_decode(&f->chunked, f->scratch, len,
                                              &dlen);
    int rc = deliver(f, f->scratch, dlen);
    if (rc == GONE)
        return;
    if (rc < 0 || used == GUST_HTTP1_ERROR) {
        f->keep_alive = false;
        gust__http_client_attempt_failed(f, rc < 0 ? rc : GUST_EPROTO,
                                         rc < 0 ? f->error_detail
                                                : "malformed chunked body");
        return;
    }
    if (used >= 0) {
        /* No pipelining: anything after the body is not ours to read. */
        if ((size_t)used < len)
            f->keep_alive = false;
        body_done(f);
        return;
    }
    rc = gust_stream_read_bytes(s, READ_CHUNK, GUST_READ_PARTIAL, on_chunked,
                                conn);
    if (rc < 0)
        body_failed(f, s, rc);
}

static void read_body(gust__http_client_fetch *f, gust__http_client_conn *conn)
{
    int rc = 0;
    switch (f->body_mode) {
    case GUST__HTTP_CLIENT_BODY_NONE:
        body_done(f);
        return;
    case GUST__HTTP_CLIENT_BODY_LENGTH:
        rc = gust_stream_read_bytes(conn->stream, (size_t)f->content_length,
                                    GUST_READ_STREAMING, on_body, conn);
        break;
    case GUST__HTTP_CLIENT_BODY_CHUNKED:
        rc = gust_stream_read_bytes(conn->stream, READ_CHUNK,
                                    GUST_READ_PARTIAL, on_chunked, conn);
        break;
    case GUST__HTTP_CLIENT_BODY_CLOSE:
        rc = gust_stream_read_until_close(conn->stream, GUST_READ_STREAMING,
                                          on_body, conn);
        break;
    }
    if (rc < 0)
        body_failed(f, conn->stream, rc);
}

/* ---- Shared with HTTP/2 (http_client_h2.c) ------------------------------- */

/* Wrappers rather than exported statics, so that the HTTP/1 path keeps
 * its calls local and inlinable. */
bool gust__http_client_header_line(gust__http_client_fetch *f, const char *p,
                                   size_t n)
{
    return header_line(f, p, n);
}

int gust__http_client_body_prepare(gust__http_client_fetch *f,
                                   const gust__http1_framing *fr)
{
    return prepare_body(f, fr);
}

int gust__http_client_body_deliver(gust__http_client_fetch *f, const char *p,
                                   size_t n)
{
    return deliver(f, p, n);
}

void gust__http_client_body_done(gust__http_client_fetch *f)
{
    body_done(f);
}
