/* HTTP client (http_client.h): against Gust's own HTTP server and against a
 * scripted raw server on 127.0.0.1 (malformed, chunked, gzip, keep-alive,
 * stale connections, hanging peers).
 *
 * The command-line client used by the integration tests is
 * test_http_client_cli.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "gust/gust.h"
#include "gust/http_client.h"
#include "gust_test.h"

/* ---- Helpers ------------------------------------------------------------- */

/* Runs the loop a little so that closes and callbacks settle. */
static void settle(gust_loop *loop)
{
    for (int i = 0; i < 20; i++)
        gust_loop_run_once(loop, 0.005);
}

/* Runs f to completion; returns its status, *resp the success response
 * (owned by the caller) or, on error, NULL. f is consumed. */
static int run_fetch(gust_loop *loop, gust_future *f,
                     gust_http_client_response **resp)
{
    assert_non_null(f);
    gust_value v;
    int rc = gust_loop_run_sync(loop, f, 30, &v);
    *resp = v.ptr;
    return rc;
}

/* Runs f to completion keeping it: the caller reads and unrefs it. */
static int run_keep(gust_loop *loop, gust_future *f)
{
    assert_non_null(f);
    int rc = gust_loop_run_sync(loop, gust_future_ref(f), 30, NULL);
    return rc;
}

/* ---- Gust's own server ---------------------------------------------------- */

static void slow_answer(gust_loop *loop, void *data)
{
    (void)loop;
    gust_http_respond(data, 200, "text/plain", "slow", 4);
}

static void handle(gust_http_request *req, void *data)
{
    (void)data;
    char buf[4096];
    if (!strcmp(req->path, "/hello")) {
        gust_http_respond(req, 200, "text/plain", "Hello, world", 12);
    } else if (!strcmp(req->path, "/echo")) {
        gust_str auth = gust_http_headers_get_first(&req->headers,
                                                    GUST_STR("Authorization"));
        gust_str ua = gust_http_headers_get_first(&req->headers,
                                                  GUST_STR("User-Agent"));
        gust_str x = gust_http_headers_get_first(&req->headers,
                                                 GUST_STR("X-Test"));
        int n = snprintf(buf, sizeof buf, "%s %s|%.*s|%.*s|%.*s|%.*s",
                         req->method, req->uri, (int)auth.len,
                         auth.ptr ? auth.ptr : "", (int)ua.len,
                         ua.ptr ? ua.ptr : "", (int)x.len, x.ptr ? x.ptr : "",
                         (int)req->body.len, req->body.ptr ? req->body.ptr : "");
        if (n >= (int)sizeof buf)
            n = (int)sizeof buf - 1; /* truncated by snprintf */
        gust_http_respond(req, 200, "text/plain", buf, (size_t)n);
    } else if (!strcmp(req->path, "/missing")) {
        gust_http_respond(req, 404, "text/plain", "not here", 8);
    } else if (!strncmp(req->path, "/redirect/", 10)) {
        /* /redirect/<code>?<location> */
        gust_http_response_set_status(req, atoi(req->path + 10), NULL);
        gust_http_response_set_header(req, "Location", req->query);
        gust_http_request_finish(req);
    } else if (!strcmp(req->path, "/loop")) {
        gust_http_response_set_status(req, 302, NULL);
        gust_http_response_set_header(req, "Location", "/loop");
        gust_http_request_finish(req);
    } else if (!strcmp(req->path, "/len")) {
        int n = snprintf(buf, sizeof buf, "%zu", req->body.len);
        gust_http_respond(req, 200, "text/plain", buf, (size_t)n);
    } else if (!strcmp(req->path, "/big")) {
        /* 3 MiB in one response, sent as it is written (chunked). */
        static char block[65536];
        for (size_t i = 0; i < sizeof block; i++)
            block[i] = (char)('a' + i % 26);
        for (int i = 0; i < 48; i++)
            gust_http_response_write(req, block, sizeof block);
        gust_http_request_finish(req);
    } else if (!strcmp(req->path, "/slow")) {
        gust_loop_call_later(gust_loop_current(), 0.5, slow_answer, req);
    } else {
        gust_http_respond(req, 500, NULL, NULL, 0);
    }
}

static gust_http_server *start_server(int *port)
{
    gust_http_server *srv =
        gust_http_server_new(gust_http_callback(handle, NULL), NULL);
    assert_non_null(srv);
    assert_int_equal(gust_http_server_listen(srv, 0, "127.0.0.1"), 0);
    *port = gust_http_server_port(srv);
    return srv;
}

static void on_all_closed(gust_http_server *srv, void *data)
{
    (void)srv;
    *(bool *)data = true;
}

static void stop_server(gust_loop *loop, gust_http_server *srv)
{
    bool done = false;
    assert_int_equal(gust_http_server_close_all(srv, on_all_closed, &done), 0);
    for (int i = 0; i < 500 && !done; i++)
        gust_loop_run_once(loop, 0.01);
    assert_true(done);
    gust_http_server_free(srv);
}

static char *url(char *buf, int port, const char *path)
{
    int n = snprintf(buf, 256, "http://127.0.0.1:%d%s", port, path);
    assert_true(n > 0 && n < 256);
    return buf;
}

/* ---- A scripted raw server ------------------------------------------------ */

typedef struct raw_server raw_server;
typedef struct raw_conn {
    raw_server *srv;
    gust_stream *stream;
    struct raw_conn *next;
    int requests;
    /* Trickled answer: the rest of it, sent a few bytes per timer tick. */
    gust_timer timer;
    char *tbuf;
    size_t tlen, tpos;
    bool tclose;
} raw_conn;

/* Returns the bytes to answer the n-th request (0-based) of the server
 * with (NULL: never answer); *close_after closes after writing them. */
typedef const char *(*raw_script)(raw_server *srv, int n, bool *close_after,
                                  size_t *len);

struct raw_server {
    gust_loop *loop;
    gust_socket_list *socks;
    gust_acceptor *acc;
    int port;
    int connections, requests;
    char last_head[4096];
    char last_body[4096];
    raw_script script;
    void *data;
    raw_conn *conns;
    size_t trickle; /* answer in pieces of this many bytes; 0: at once */
};

static void raw_on_close(gust_stream *s, void *user)
{
    raw_conn *rc = user;
    (void)s;
    raw_conn **pp = &rc->srv->conns;
    while (*pp && *pp != rc)
        pp = &(*pp)->next;
    if (*pp)
        *pp = rc->next;
    gust_timer_stop(&rc->timer);
    free(rc->tbuf);
    free(rc);
}

static void raw_close_after_write(gust_stream *s, int status, void *user)
{
    (void)status;
    (void)user;
    gust_stream_close(s);
}

static void raw_read_head(raw_conn *rc);

static void raw_trickle(gust_timer *t, void *data)
{
    (void)t;
    raw_conn *rc = data;
    size_t n = rc->tlen - rc->tpos;
    if (n > rc->srv->trickle)
        n = rc->srv->trickle;
    bool last = rc->tpos + n == rc->tlen;
    gust_stream_write(rc->stream, rc->tbuf + rc->tpos, n,
                      last && rc->tclose ? raw_close_after_write : NULL, NULL);
    rc->tpos += n;
    if (!last) {
        gust_timer_start(&rc->timer, 0.001, 0, raw_trickle, rc);
        return;
    }
    free(rc->tbuf);
    rc->tbuf = NULL;
    if (!rc->tclose)
        raw_read_head(rc);
}

static void raw_answer(raw_conn *rc)
{
    raw_server *srv = rc->srv;
    bool close_after = false;
    size_t len = 0;
    const char *out = srv->script(srv, srv->requests++, &close_after, &len);
    rc->requests++;
    if (!out) {
        raw_read_head(rc); /* hang, but notice when the client goes */
        return;
    }
    if (!len)
        len = strlen(out);
    if (srv->trickle) {
        rc->tbuf = malloc(len);
        assert_non_null(rc->tbuf);
        memcpy(rc->tbuf, out, len);
        rc->tlen = len;
        rc->tpos = 0;
        rc->tclose = close_after;
        raw_trickle(&rc->timer, rc);
        return;
    }
    gust_stream_write(rc->stream, out, len,
                      close_after ? raw_close_after_write : NULL, NULL);
    if (!close_after)
        raw_read_head(rc);
}

static void raw_on_body(gust_stream *s, int status, const char *data,
                        size_t len, void *user)
{
    (void)s;
    raw_conn *rc = user;
    if (status < 0)
        return;
    snprintf(rc->srv->last_body, sizeof rc->srv->last_body, "%.*s", (int)len,
             data);
    raw_answer(rc);
}

static void raw_on_head(gust_stream *s, int status, const char *data,
                        size_t len, void *user)
{
    raw_conn *rc = user;
    if (status < 0)
        return;
    raw_server *srv = rc->srv;
    snprintf(srv->last_head, sizeof srv->last_head, "%.*s", (int)len, data);
    srv->last_body[0] = '\0';
    const char *cl = strcasestr(srv->last_head, "\r\nContent-Length:");
    long n = cl ? strtol(cl + 17, NULL, 10) : 0;
    if (n > 0) {
        gust_stream_read_bytes(s, (size_t)n, 0, raw_on_body, rc);
        return;
    }
    raw_answer(rc);
}

static void raw_read_head(raw_conn *rc)
{
    gust_stream_read_until(rc->stream, "\r\n\r\n", 4, 0, raw_on_head, rc);
}

static void raw_on_accept(gust_acceptor *a, int fd, const struct sockaddr *addr,
                          socklen_t addrlen, void *data)
{
    (void)a;
    (void)addr;
    (void)addrlen;
    raw_server *srv = data;
    raw_conn *rc = calloc(1, sizeof *rc);
    assert_non_null(rc);
    rc->srv = srv;
    gust_timer_init(srv->loop, &rc->timer);
    rc->stream = gust_stream_new(srv->loop, fd, NULL);
    assert_non_null(rc->stream);
    gust_stream_set_close_callback(rc->stream, raw_on_close, rc);
    rc->next = srv->conns;
    srv->conns = rc;
    srv->connections++;
    raw_read_head(rc);
}

static void raw_start(raw_server *srv, gust_loop *loop, raw_script script)
{
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    srv->script = script;
    srv->socks = gust_bind_sockets(0, "127.0.0.1", NULL);
    assert_non_null(srv->socks);
    srv->port = gust_socket_port(srv->socks->fds[0]);
    srv->acc = gust_acceptor_new(loop, srv->socks->fds[0], raw_on_accept, srv);
    assert_non_null(srv->acc);
}

static void raw_stop(raw_server *srv)
{
    for (raw_conn *rc = srv->conns; rc; rc = rc->next)
        gust_stream_close(rc->stream);
    gust_acceptor_free(srv->acc);
    gust_socket_list_free(srv->socks);
    settle(srv->loop);
    assert_null(srv->conns);
}

/* ---- Basic fetching -------------------------------------------------------- */

static void test_get_own_server(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    int port;
    gust_http_server *srv = start_server(&port);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, gust_http_fetch(c, url(u, port, "/hello")),
                               &r), 0);
    assert_int_equal(r->code, 200);
    assert_string_equal(r->reason, "OK");
    assert_int_equal(r->body_len, 12);
    assert_string_equal(r->body, "Hello, world");
    assert_int_equal(r->error, 0);
    assert_string_equal(r->effective_url, u);
    gust_str ct = gust_http_headers_get_first(&r->headers,
                                              GUST_STR("content-type"));
    assert_true(gust_str_eq(ct, GUST_STR("text/plain")));
    assert_true(r->request_time >= 0);
    gust_http_client_response_free(r);
    gust_http_client_free(c);
    stop_server(loop, srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* A 3 MiB response body, and a 2 MiB request body. */
static void test_large_bodies(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    int port;
    gust_http_server *srv = start_server(&port);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, gust_http_fetch(c, url(u, port, "/big")),
                               &r), 0);
    assert_int_equal(r->body_len, 48 * 65536);
    for (size_t i = 0; i < r->body_len; i += 4099)
        assert_int_equal(r->body[i], 'a' + (i % 65536) % 26);
    gust_http_client_response_free(r);

    size_t n = 2 * 1024 * 1024;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'z', n);
    gust_http_client_request req = {.url = url(u, port, "/len"),
                                     .method = "PUT", .body = big,
                                     .body_len = n};
    assert_int_equal(run_fetch(loop, gust_http_client_fetch(c, &req), &r), 0);
    free(big);
    assert_string_equal(r->body, "2097152");
    gust_http_client_response_free(r);
    gust_http_client_free(c);
    stop_server(loop, srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_post_headers_auth(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    int port;
    gust_http_server *srv = start_server(&port);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    gust_http_header hs[] = {{GUST_STR("X-Test"), GUST_STR("yes")}};
    gust_http_client_request req = {
        .url = url(u, port, "/echo?a=1#frag"), .method = "POST",
        .body = "a=b&c", .body_len = 5, .headers = hs, .num_headers = 1,
        .auth_username = "Aladdin", .auth_password = "open sesame",
        .user_agent = "tester/1"};
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, gust_http_client_fetch(c, &req), &r), 0);
    assert_string_equal(r->body, "POST /echo?a=1|Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==|"
                                 "tester/1|yes|a=b&c");
    gust_http_client_response_free(r);

    /* A header value with CR LF never reaches the wire. */
    gust_http_header bad[] = {{GUST_STR("X-Test"), GUST_STR("a\r\nX-Evil: 1")}};
    gust_http_client_request req2 = {.url = u, .headers = bad,
                                      .num_headers = 1};
    gust_future *f = gust_http_client_fetch(c, &req2);
    assert_int_equal(run_keep(loop, f), -EINVAL);
    r = gust_http_client_error_response(f);
    assert_non_null(r);
    assert_int_equal(r->code, 599);
    assert_int_equal(r->error, -EINVAL);
    gust_future_unref(f);

    /* A bad URL and a bad scheme fail the same way, through the future. */
    assert_int_equal(run_fetch(loop, gust_http_fetch(c, "no url"), &r), -EINVAL);
    assert_int_equal(run_fetch(loop, gust_http_fetch(c, "ftp://127.0.0.1/"), &r),
                     -EINVAL);
    gust_http_client_free(c);
    stop_server(loop, srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_http_error_readable(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    int port;
    gust_http_server *srv = start_server(&port);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    gust_future *f = gust_http_fetch(c, url(u, port, "/missing"));
    assert_int_equal(run_keep(loop, f), GUST_EHTTP);
    gust_http_client_response *r = gust_http_client_error_response(f);
    assert_non_null(r);
    assert_int_equal(r->code, 404);
    assert_int_equal(r->error, GUST_EHTTP);
    assert_string_equal(r->body, "not here");
    assert_non_null(strstr(r->error_message, "404"));
    gust_future_unref(f);

    gust_http_client_request req = {.url = u, .raise_error = GUST_HTTP_NO};
    assert_int_equal(run_fetch(loop, gust_http_client_fetch(c, &req), &r), 0);
    assert_int_equal(r->code, 404);
    assert_int_equal(r->error, 0);
    gust_http_client_response_free(r);
    gust_http_client_free(c);
    stop_server(loop, srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Redirects --------------------------------------------------------------- */

static void test_redirects(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    int port;
    gust_http_server *srv = start_server(&port);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    gust_http_client_response *r;

    /* 302 after a POST: GET without body. Relative Location. */
    gust_http_client_request req = {.url = url(u, port, "/redirect/302?/echo"),
                                    .method = "POST", .body = "data",
                                    .body_len = 4};
    assert_int_equal(run_fetch(loop, gust_http_client_fetch(c, &req), &r), 0);
    assert_int_equal(r->code, 200);
    assert_int_equal(r->redirects, 1);
    assert_true(strncmp(r->body, "GET /echo|", 10) == 0);
    assert_string_equal(r->body + strlen(r->body) - 1, "|");
    assert_non_null(strstr(r->effective_url, "/echo"));
    assert_string_equal(r->request_url, u);
    gust_http_client_response_free(r);

    /* 307 and 308 keep the method and the body. */
    for (int code = 307; code <= 308; code++) {
        char path[64];
        snprintf(path, sizeof path, "/redirect/%d?/echo", code);
        req.url = url(u, port, path);
        assert_int_equal(run_fetch(loop, gust_http_client_fetch(c, &req), &r), 0);
        assert_string_equal(r->body, "POST /echo||Gust/0.1.0||data");
        gust_http_client_response_free(r);
    }

    /* Credentials stay with their origin: a redirect to another host (here
     * localhost, through the resolver) drops them; one on the same host
     * keeps them. */
    char target[256], path[320];
    snprintf(target, sizeof target, "http://localhost:%d/echo", port);
    snprintf(path, sizeof path, "/redirect/302?%s", target);
    req = (gust_http_client_request){.url = url(u, port, path),
                                     .auth_username = "u",
                                     .auth_password = "p"};
    assert_int_equal(run_fetch(loop, gust_http_client_fetch(c, &req), &r), 0);
    assert_string_equal(r->body, "GET /echo||Gust/0.1.0||");
    assert_string_equal(r->effective_url, target);
    gust_http_client_response_free(r);
    req.url = url(u, port, "/redirect/302?/echo");
    assert_int_equal(run_fetch(loop, gust_http_client_fetch(c, &req), &r), 0);
    assert_string_equal(r->body, "GET /echo|Basic dTpw|Gust/0.1.0||");
    gust_http_client_response_free(r);

    /* Not followed: the 3xx itself is the result, and it is no error. */
    req = (gust_http_client_request){.url = url(u, port, "/redirect/301?/echo"),
                                     .follow_redirects = GUST_HTTP_NO};
    assert_int_equal(run_fetch(loop, gust_http_client_fetch(c, &req), &r), 0);
    assert_int_equal(r->code, 301);
    gust_http_client_response_free(r);

    /* A loop ends after max_redirects with the last 3xx readable. */
    req = (gust_http_client_request){.url = url(u, port, "/loop"),
                                     .max_redirects = 3};
    gust_future *f = gust_http_client_fetch(c, &req);
    assert_int_equal(run_keep(loop, f), GUST_ETOOMANYREDIRECTS);
    r = gust_http_client_error_response(f);
    assert_non_null(r);
    assert_int_equal(r->code, 302);
    assert_int_equal(r->redirects, 3);
    gust_future_unref(f);

    gust_http_client_free(c);
    stop_server(loop, srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Keep-alive -------------------------------------------------------------- */

static const char *script_ok(raw_server *srv, int n, bool *close_after,
                             size_t *len)
{
    (void)srv;
    (void)n;
    (void)close_after;
    (void)len;
    return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
}

static void test_keep_alive_reuse(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_ok);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    url(u, srv.port, "/");
    for (int i = 0; i < 5; i++) {
        gust_http_client_response *r;
        assert_int_equal(run_fetch(loop, gust_http_fetch(c, u), &r), 0);
        assert_string_equal(r->body, "ok");
        assert_int_equal(r->reused_connection, i > 0);
        gust_http_client_response_free(r);
    }
    assert_int_equal(srv.connections, 1);
    assert_int_equal(srv.requests, 5);
    gust_http_client_stats st;
    gust_http_client_get_stats(c, &st);
    assert_int_equal(st.connections, 1);
    assert_int_equal(st.reused, 4);
    assert_int_equal(st.idle, 1);
    /* The request is HTTP/1.1 with a Host header and no Connection: close. */
    assert_non_null(strstr(srv.last_head, "GET / HTTP/1.1\r\n"));
    assert_non_null(strstr(srv.last_head, "\r\nHost: 127.0.0.1:"));
    assert_null(strcasestr(srv.last_head, "Connection: close"));
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Each response is followed by a close the client is not told about. */
static const char *script_close_silently(raw_server *srv, int n,
                                         bool *close_after, size_t *len)
{
    (void)srv;
    (void)n;
    (void)len;
    *close_after = true;
    return "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh";
}

static void test_stale_connection_retried(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_close_silently);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    url(u, srv.port, "/");
    for (int i = 0; i < 3; i++) {
        gust_http_client_response *r;
        assert_int_equal(run_fetch(loop, gust_http_fetch(c, u), &r), 0);
        assert_string_equal(r->body, "fresh");
        gust_http_client_response_free(r);
        settle(loop); /* let the server's close happen */
    }
    assert_int_equal(srv.connections, 3);
    assert_int_equal(srv.requests, 3);
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* HTTP/1.0 and Connection: close are not kept. */
static const char *script_no_keep(raw_server *srv, int n, bool *close_after,
                                  size_t *len)
{
    (void)srv;
    (void)len;
    *close_after = true;
    return n % 2 ? "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nb"
                 : "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\na";
}

static void test_no_keep_alive(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_no_keep);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    url(u, srv.port, "/");
    for (int i = 0; i < 4; i++) {
        gust_http_client_response *r;
        assert_int_equal(run_fetch(loop, gust_http_fetch(c, u), &r), 0);
        assert_string_equal(r->body, i % 2 ? "b" : "a");
        assert_false(r->reused_connection);
        gust_http_client_response_free(r);
    }
    gust_http_client_stats st;
    gust_http_client_get_stats(c, &st);
    assert_int_equal(st.idle, 0);
    assert_int_equal(st.reused, 0);
    assert_int_equal(srv.connections, 4);
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Framing and decoding ------------------------------------------------------ */

static const char *script_chunked(raw_server *srv, int n, bool *close_after,
                                  size_t *len)
{
    (void)srv;
    (void)n;
    (void)close_after;
    (void)len;
    return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           "5\r\nHello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n";
}

static void test_chunked(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_chunked);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    url(u, srv.port, "/");
    for (int i = 0; i < 2; i++) {
        gust_http_client_response *r;
        assert_int_equal(run_fetch(loop, gust_http_fetch(c, u), &r), 0);
        assert_int_equal(r->body_len, 12);
        assert_string_equal(r->body, "Hello, world");
        gust_http_client_response_free(r);
    }
    assert_int_equal(srv.connections, 1); /* kept after a chunked body */
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static char gz_response[4096];
static size_t gz_len;

static void make_gzip_response(const char *text)
{
    unsigned char gz[2048];
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8,
                                  Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (Bytef *)(uintptr_t)text;
    z.avail_in = (uInt)strlen(text);
    z.next_out = gz;
    z.avail_out = sizeof gz;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = sizeof gz - z.avail_out;
    deflateEnd(&z);
    int h = snprintf(gz_response, sizeof gz_response,
                     "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
                     "Content-Length: %zu\r\n\r\n", n);
    memcpy(gz_response + h, gz, n);
    gz_len = (size_t)h + n;
}

static const char *script_gzip(raw_server *srv, int n, bool *close_after,
                               size_t *len)
{
    (void)srv;
    (void)n;
    (void)close_after;
    *len = gz_len;
    return gz_response;
}

static void test_gzip(void **state)
{
    (void)state;
    char text[1500];
    for (size_t i = 0; i < sizeof text - 1; i++)
        text[i] = (char)('a' + i % 7);
    text[sizeof text - 1] = '\0';
    make_gzip_response(text);
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_gzip);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    url(u, srv.port, "/");
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, gust_http_fetch(c, u), &r), 0);
    assert_non_null(strstr(srv.last_head, "\r\nAccept-Encoding: gzip\r\n"));
    assert_string_equal(r->body, text);
    assert_false(gust_http_headers_has(&r->headers, GUST_STR("Content-Encoding")));
    assert_true(gust_str_eq(gust_http_headers_get_first(
                                &r->headers,
                                GUST_STR("X-Consumed-Content-Encoding")),
                            GUST_STR("gzip")));
    gust_http_client_response_free(r);

    /* decompress no: the raw bytes, and no Accept-Encoding sent. */
    gust_http_client_request req = {.url = u, .decompress = GUST_HTTP_NO};
    assert_int_equal(run_fetch(loop, gust_http_client_fetch(c, &req), &r), 0);
    assert_null(strstr(srv.last_head, "Accept-Encoding"));
    assert_int_equal((unsigned char)r->body[0], 0x1f);
    assert_int_not_equal(r->body_len, strlen(text));
    gust_http_client_response_free(r);
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static const char *script_until_close(raw_server *srv, int n,
                                      bool *close_after, size_t *len)
{
    (void)srv;
    (void)n;
    (void)len;
    *close_after = true;
    return "HTTP/1.1 200 OK\r\nX-A: 1\r\n\r\nuntil the end";
}

static void test_body_until_close(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_until_close);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, gust_http_fetch(c, url(u, srv.port, "/")),
                               &r), 0);
    assert_string_equal(r->body, "until the end");
    gust_http_client_response_free(r);
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static const char *bad_responses[] = {
    "HTTP/2 200 OK\r\n\r\n",
    "HTTP/1.1 20 OK\r\n\r\n",
    "HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
    "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nnope",
};

static const char *script_bad(raw_server *srv, int n, bool *close_after,
                              size_t *len)
{
    (void)srv;
    (void)len;
    *close_after = true;
    return bad_responses[n];
}

static void test_malformed_responses(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_bad);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    url(u, srv.port, "/");
    for (size_t i = 0; i < sizeof bad_responses / sizeof *bad_responses; i++) {
        gust_future *f = gust_http_fetch(c, u);
        int rc = run_keep(loop, f);
        if (rc != GUST_EPROTO)
            fail_msg("response %zu: got %s", i, gust_err_name(rc));
        gust_http_client_response *r = gust_http_client_error_response(f);
        assert_non_null(r);
        assert_int_equal(r->code, 599);
        assert_int_equal(r->error, GUST_EPROTO);
        assert_true(strlen(r->error_message) > 0);
        gust_future_unref(f);
    }
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static const char *script_folded(raw_server *srv, int n, bool *close_after,
                                 size_t *len)
{
    (void)srv, (void)n, (void)len;
    *close_after = true;
    return "HTTP/1.1 200 OK\r\nX: a\r\n  b\r\nContent-Length: 2\r\n\r\nok";
}

/* RFC 9112 5.2: a user agent unfolds obs-fold in a response (SP for the
 * fold), where a server would reject it in a request. */
static void test_obs_fold_unfolded(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_folded);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, gust_http_fetch(c, url(u, srv.port, "/")),
                               &r), 0);
    gust_str v = gust_http_headers_get_first(&r->headers, GUST_STR("X"));
    assert_int_equal(v.len, 6);
    assert_memory_equal(v.ptr, "a    b", 6);
    assert_string_equal(r->body, "ok");
    gust_http_client_response_free(r);
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_size_limits(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_chunked);
    gust_http_client_options o = {.max_body_size = 8};
    gust_http_client *c = gust_http_client_new(loop, &o);
    char u[256];
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, gust_http_fetch(c, url(u, srv.port, "/")),
                               &r), GUST_EBUFFERFULL);
    gust_http_client_free(c);
    o = (gust_http_client_options){.max_header_size = 20};
    c = gust_http_client_new(loop, &o);
    assert_int_equal(run_fetch(loop, gust_http_fetch(c, u), &r),
                     GUST_EBUFFERFULL);
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Callbacks ------------------------------------------------------------------ */

typedef struct cb_log {
    char lines[1024];
    char chunks[1024];
    int nchunks;
} cb_log;

static void on_header_line(gust_http_client_response *resp, const char *line,
                           size_t len, void *data)
{
    cb_log *l = data;
    assert_true(resp->code == 200);
    strncat(l->lines, line, len);
}

static void on_chunk(gust_http_client_response *resp, const char *chunk,
                     size_t len,
                     void *data)
{
    (void)resp;
    cb_log *l = data;
    strncat(l->chunks, chunk, len);
    l->nchunks++;
}

static void test_header_and_streaming_callbacks(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_chunked);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    cb_log log = {0};
    gust_http_client_request req = {.url = url(u, srv.port, "/"),
                                    .header_callback = on_header_line,
                                    .streaming_callback = on_chunk,
                                    .callback_data = &log};
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, gust_http_client_fetch(c, &req), &r), 0);
    assert_string_equal(log.lines, "HTTP/1.1 200 OK\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n");
    assert_string_equal(log.chunks, "Hello, world");
    assert_true(log.nchunks >= 1);
    assert_int_equal(r->body_len, 0); /* streamed, not kept */
    gust_http_client_response_free(r);
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

typedef struct cb_result {
    int calls, code, error;
    char body[64];
} cb_result;

static void on_response(gust_http_client_response *resp, void *data)
{
    cb_result *res = data;
    res->calls++;
    res->code = resp->code;
    res->error = resp->error;
    snprintf(res->body, sizeof res->body, "%s", resp->body);
}

static void test_callback_form(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    int port;
    gust_http_server *srv = start_server(&port);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256], u2[256];
    cb_result ok = {0}, missing = {0};
    gust_http_client_request req = {.url = url(u, port, "/hello")};
    assert_int_equal(gust_http_client_fetch_cb(c, &req, on_response, &ok), 0);
    req.url = url(u2, port, "/missing");
    assert_int_equal(gust_http_client_fetch_cb(c, &req, on_response, &missing), 0);
    assert_int_equal(ok.calls, 0); /* never inside the call */
    for (int i = 0; i < 1000 && (!ok.calls || !missing.calls); i++)
        gust_loop_run_once(loop, 0.01);
    assert_int_equal(ok.calls, 1);
    assert_int_equal(ok.code, 200);
    assert_int_equal(ok.error, 0);
    assert_string_equal(ok.body, "Hello, world");
    assert_int_equal(missing.calls, 1);
    assert_int_equal(missing.code, 404);
    assert_int_equal(missing.error, GUST_EHTTP);
    assert_string_equal(missing.body, "not here");
    gust_http_client_free(c);
    stop_server(loop, srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

typedef struct coro_args {
    gust_http_client *c;
    const char *url;
    int code;
} coro_args;

static int coro_fetch(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    (void)result;
    coro_args *a = data;
    gust_value v;
    int rc = gust_await(gust_http_fetch(a->c, a->url), &v);
    if (rc < 0)
        return rc;
    gust_http_client_response *r = v.ptr;
    a->code = r->code;
    gust_value_free(&v);
    return 0;
}

static void test_coroutine(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    int port;
    gust_http_server *srv = start_server(&port);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    coro_args a = {c, url(u, port, "/hello"), 0};
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, coro_fetch, &a),
                                        30, NULL), 0);
    assert_int_equal(a.code, 200);
    gust_http_client_free(c);
    stop_server(loop, srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Errors and timeouts ------------------------------------------------------- */

static void test_connection_refused(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    /* A port that was free a moment ago and has no listener. */
    gust_socket_list *s = gust_bind_sockets(0, "127.0.0.1", NULL);
    int port = gust_socket_port(s->fds[0]);
    gust_socket_list_free(s);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    gust_future *f = gust_http_fetch(c, url(u, port, "/"));
    assert_int_equal(run_keep(loop, f), -ECONNREFUSED);
    gust_http_client_response *r = gust_http_client_error_response(f);
    assert_int_equal(r->code, 599);
    assert_non_null(strstr(r->error_message, "127.0.0.1"));
    gust_future_unref(f);
    gust_http_client_free(c);
    settle(loop);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_dns_failure(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    gust_http_client *c = gust_http_client_new(loop, NULL);
    gust_http_client_response *r;
    /* .invalid never resolves (RFC 6761). */
    gust_http_client_request req = {.url = "http://gust-test.invalid/",
                                    .connect_timeout = 30};
    assert_int_equal(run_fetch(loop, gust_http_client_fetch(c, &req), &r),
                     GUST_EDNS);
    gust_http_client_free(c);
    settle(loop);
    assert_int_equal(gust_loop_free(loop), 0);
}

static const char *script_hang(raw_server *srv, int n, bool *close_after,
                               size_t *len)
{
    (void)srv;
    (void)n;
    (void)close_after;
    (void)len;
    return NULL;
}

static void test_request_timeout(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_hang);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    gust_http_client_request req = {.url = url(u, srv.port, "/"),
                                    .request_timeout = 0.2};
    double t0 = now_s();
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, gust_http_client_fetch(c, &req), &r),
                     GUST_ETIMEOUT);
    assert_true(now_s() - t0 < 10);
    settle(loop);
    assert_null(srv.conns); /* the client closed its connection */
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Debug lines saying a fetch waits for a max_clients slot. */
static int queued_lines;

static void count_queued(int level, const char *module, const char *msg,
                         void *data)
{
    (void)data;
    if (level == GUST_LOG_DEBUG && strcmp(module, "http_client") == 0 &&
        strstr(msg, "max_clients limit reached, request queued"))
        queued_lines++;
}

static void test_queue_timeouts(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    int port;
    gust_http_server *srv = start_server(&port);
    gust_http_client_options o = {.max_clients = 1};
    gust_http_client *c = gust_http_client_new(loop, &o);
    char slow[256], u[256];
    url(slow, port, "/slow");
    url(u, port, "/hello");
    queued_lines = 0;
    int level = gust_log_level();
    gust_log_set_level(GUST_LOG_DEBUG);
    gust_log_set_handler(count_queued, NULL);

    /* Queued behind a 0.5 s fetch: a 0.1 s queue timeout expires... */
    gust_future *first = gust_http_fetch(c, slow);
    gust_http_client_request req = {.url = u, .queue_timeout = 0.1};
    gust_future *second = gust_http_client_fetch(c, &req);
    /* ...but the request timeout only counts once out of the queue: 0.3 s
     * is enough for /hello even though it waits 0.5 s for its slot. */
    gust_http_client_request req3 = {.url = u, .queue_timeout = 10,
                                     .request_timeout = 0.3};
    gust_future *third = gust_http_client_fetch(c, &req3);
    gust_http_client_stats st;
    gust_http_client_get_stats(c, &st);
    assert_int_equal(st.active, 1);
    assert_int_equal(st.queued, 2);
    /* One debug line for each fetch that waits, none for the first. */
    assert_int_equal(queued_lines, 2);
    gust_log_set_handler(NULL, NULL);
    gust_log_set_level(level);
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, second, &r), GUST_ETIMEOUT_QUEUE);
    assert_int_equal(run_fetch(loop, first, &r), 0);
    assert_string_equal(r->body, "slow");
    gust_http_client_response_free(r);
    assert_int_equal(run_fetch(loop, third, &r), 0);
    assert_string_equal(r->body, "Hello, world");
    assert_true(r->queue_time >= 0.3);
    gust_http_client_response_free(r);
    gust_http_client_free(c);
    stop_server(loop, srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* A listener that never accepts, with its backlog filled: a connect to it
 * hangs in SYN-SENT. */
static void test_connect_timeout(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 0), 0);
    int port = gust_socket_port(lfd);
    a.sin_port = htons((uint16_t)port);
    int fillers[4];
    for (int i = 0; i < 4; i++) {
        fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(fillers[i], (struct sockaddr *)&a, sizeof a);
    }
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    gust_http_client_request req = {.url = url(u, port, "/"),
                                    .connect_timeout = 0.3};
    gust_http_client_response *r;
    int rc = run_fetch(loop, gust_http_client_fetch(c, &req), &r);
    if (rc == 0)
        gust_http_client_response_free(r);
    assert_int_equal(rc, GUST_ETIMEOUT_CONNECT);
    gust_http_client_free(c);
    settle(loop);
    for (int i = 0; i < 4; i++)
        close(fillers[i]);
    close(lfd);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_cancel_and_free(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_hang);
    gust_http_client_options o = {.max_clients = 1};
    gust_http_client *c = gust_http_client_new(loop, &o);
    char u[256];
    url(u, srv.port, "/");
    gust_future *f1 = gust_http_fetch(c, u);
    gust_future *f2 = gust_http_fetch(c, u);
    gust_future *f3 = gust_http_fetch(c, u);
    for (int i = 0; i < 200 && srv.requests < 1; i++)
        gust_loop_run_once(loop, 0.01);
    assert_int_equal(srv.requests, 1);
    /* Cancelling the running fetch frees its slot for the next one. */
    assert_true(gust_future_cancel(f1));
    for (int i = 0; i < 200 && srv.requests < 2; i++)
        gust_loop_run_once(loop, 0.01);
    assert_int_equal(srv.requests, 2);
    assert_int_equal(srv.connections, 2);
    /* Freeing the client fails the rest. */
    gust_http_client_free(c);
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, f2, &r), GUST_ECANCELED);
    assert_int_equal(run_fetch(loop, f3, &r), GUST_ECANCELED);
    gust_future_unref(f1);
    settle(loop);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static int free_in_stream_cb_hits;
static void free_client_in_chunk(gust_http_client_response *resp,
                                 const char *chunk,
                                 size_t len, void *data)
{
    (void)resp;
    (void)chunk;
    (void)len;
    free_in_stream_cb_hits++;
    gust_http_client_free(data);
}

static void test_free_inside_streaming_callback(void **state)
{
    (void)state;
    free_in_stream_cb_hits = 0;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_chunked);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    gust_http_client_request req = {.url = url(u, srv.port, "/"),
                                    .streaming_callback = free_client_in_chunk,
                                    .callback_data = c};
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, gust_http_client_fetch(c, &req), &r),
                     GUST_ECANCELED);
    assert_int_equal(free_in_stream_cb_hits, 1);
    settle(loop);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_many_parallel(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    int port;
    gust_http_server *srv = start_server(&port);
    gust_http_client_options o = {.max_clients = 8};
    gust_http_client *c = gust_http_client_new(loop, &o);
    char u[256];
    url(u, port, "/hello");
    enum { N = 200 };
    gust_future *fs[N];
    for (int i = 0; i < N; i++)
        fs[i] = gust_http_fetch(c, u);
    gust_value v;
    assert_int_equal(gust_loop_run_sync(loop, gust_all(loop, fs, N), 60, &v), 0);
    gust_value *vals = v.ptr;
    for (int i = 0; i < N; i++)
        assert_string_equal(((gust_http_client_response *)vals[i].ptr)->body,
                            "Hello, world");
    gust_value_free(&v);
    gust_http_client_stats st;
    gust_http_client_get_stats(c, &st);
    assert_true(st.connections <= 8);
    assert_int_equal(st.connections + st.reused, N);
    gust_http_client_free(c);
    stop_server(loop, srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- More framing ------------------------------------------------------------- */

static void test_head_keeps_connection(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    int port;
    gust_http_server *srv = start_server(&port);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    gust_http_client_request req = {.url = url(u, port, "/hello"),
                                    .method = "HEAD"};
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, gust_http_client_fetch(c, &req), &r), 0);
    assert_int_equal(r->code, 200);
    assert_int_equal(r->body_len, 0);
    /* The Content-Length of the GET it stands for, but no body to read. */
    assert_true(gust_str_eq(gust_http_headers_get_first(
                                &r->headers, GUST_STR("Content-Length")),
                            GUST_STR("12")));
    gust_http_client_response_free(r);
    assert_int_equal(run_fetch(loop, gust_http_fetch(c, u), &r), 0);
    assert_true(r->reused_connection);
    assert_string_equal(r->body, "Hello, world");
    gust_http_client_response_free(r);
    gust_http_client_free(c);
    stop_server(loop, srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static const char *script_informational(raw_server *srv, int n,
                                        bool *close_after, size_t *len)
{
    (void)srv;
    (void)n;
    (void)close_after;
    (void)len;
    return "HTTP/1.1 100 Continue\r\n\r\n"
           "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
           "HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone";
}

static void test_informational_skipped(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_informational);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, gust_http_fetch(c, url(u, srv.port, "/")),
                               &r), 0);
    assert_int_equal(r->code, 201);
    assert_string_equal(r->reason, "Created");
    assert_string_equal(r->body, "done");
    assert_false(gust_http_headers_has(&r->headers, GUST_STR("Link")));
    gust_http_client_response_free(r);
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_ipv6_literal(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    memset(&srv, 0, sizeof srv);
    srv.loop = loop;
    srv.script = script_ok;
    gust_bind_options bo = {.family = AF_INET6};
    srv.socks = gust_bind_sockets(0, "::1", &bo);
    if (!srv.socks) {
        gust_loop_free(loop);
        skip(); /* no IPv6 on this host */
    }
    srv.port = gust_socket_port(srv.socks->fds[0]);
    srv.acc = gust_acceptor_new(loop, srv.socks->fds[0], raw_on_accept, &srv);
    assert_non_null(srv.acc);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    snprintf(u, sizeof u, "http://[::1]:%d/v6", srv.port);
    gust_http_client_response *r;
    assert_int_equal(run_fetch(loop, gust_http_fetch(c, u), &r), 0);
    assert_string_equal(r->body, "ok");
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: [::1]:%d\r\n", srv.port);
    assert_non_null(strstr(srv.last_head, host));
    gust_http_client_response_free(r);
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* A body that stops half-way: the request timeout still ends it. */
static const char *script_half_body(raw_server *srv, int n, bool *close_after,
                                    size_t *len)
{
    (void)srv;
    (void)n;
    (void)close_after;
    (void)len;
    return "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part";
}

static void test_timeout_during_body(void **state)
{
    (void)state;
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_half_body);
    gust_http_client *c = gust_http_client_new(loop, NULL);
    char u[256];
    gust_http_client_request req = {.url = url(u, srv.port, "/"),
                                    .request_timeout = 0.3};
    gust_future *f = gust_http_client_fetch(c, &req);
    assert_int_equal(run_keep(loop, f), GUST_ETIMEOUT);
    gust_http_client_response *r = gust_http_client_error_response(f);
    assert_int_equal(r->code, 599);
    assert_true(r->request_time >= 0.25);
    gust_future_unref(f);
    gust_http_client_stats st;
    gust_http_client_get_stats(c, &st);
    assert_int_equal(st.idle, 0); /* a half-read connection is not kept */
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Input in pieces and damaged input ---------------------------------------- */

/* Every response above, delivered 1 or 3 bytes at a time, parses the same. */
static void test_trickled_responses(void **state)
{
    (void)state;
    make_gzip_response("trickled gzip body, trickled gzip body");
    raw_script scripts[] = {script_chunked, script_gzip, script_informational,
                            script_ok};
    const char *bodies[] = {"Hello, world",
                            "trickled gzip body, trickled gzip body", "done",
                            "ok"};
    gust_loop *loop = new_current_loop();
    for (size_t piece = 1; piece <= 3; piece += 2) {
        for (size_t i = 0; i < 4; i++) {
            raw_server srv;
            raw_start(&srv, loop, scripts[i]);
            srv.trickle = piece;
            gust_http_client *c = gust_http_client_new(loop, NULL);
            char u[256];
            url(u, srv.port, "/");
            for (int k = 0; k < 2; k++) { /* the second on the kept connection */
                gust_http_client_response *r;
                assert_int_equal(run_fetch(loop, gust_http_fetch(c, u), &r), 0);
                assert_string_equal(r->body, bodies[i]);
                gust_http_client_response_free(r);
            }
            assert_int_equal(srv.connections, 1);
            gust_http_client_free(c);
            raw_stop(&srv);
        }
    }
    assert_int_equal(gust_loop_free(loop), 0);
}

static char damaged[4096];
static size_t damaged_len;

static const char *script_damaged(raw_server *srv, int n, bool *close_after,
                                  size_t *len)
{
    (void)srv;
    (void)n;
    *close_after = true;
    *len = damaged_len;
    return damaged;
}

/* Bad input from the network never crashes, leaks or hangs: 400 random
 * damages (bytes changed, cut short) of valid responses each end with a
 * response or an error, and the loop is left clean. */
static void test_damaged_responses(void **state)
{
    (void)state;
    make_gzip_response("some body that compresses, some body that compresses");
    const char *plain[] = {
        ("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5\r\nHello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"),
        "HTTP/1.1 301 Moved\r\nLocation: /next\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nfive!",
    };
    gust_loop *loop = new_current_loop();
    raw_server srv;
    raw_start(&srv, loop, script_damaged);
    gust_http_client_options o = {.max_body_size = 4096};
    gust_http_client *c = gust_http_client_new(loop, &o);
    char u[256];
    url(u, srv.port, "/");
    /* Redirects are not followed: a damaged Location could name another
     * host, and tests only ever reach 127.0.0.1. */
    gust_http_client_request req = {.url = u, .request_timeout = 5,
                                    .follow_redirects = GUST_HTTP_NO};
    srand(12345);
    int ok = 0, failed = 0;
    for (int i = 0; i < 400; i++) {
        int which = i % 4;
        if (which == 3) {
            memcpy(damaged, gz_response, gz_len);
            damaged_len = gz_len;
        } else {
            damaged_len = strlen(plain[which]);
            memcpy(damaged, plain[which], damaged_len);
        }
        int flips = 1 + rand() % 3;
        for (int k = 0; k < flips; k++)
            damaged[rand() % damaged_len] = (char)(rand() % 256);
        if (rand() % 4 == 0)
            damaged_len = (size_t)rand() % damaged_len;
        gust_http_client_response *r;
        int rc = run_fetch(loop, gust_http_client_fetch(c, &req), &r);
        assert_true(rc != GUST_ETIMEOUT); /* every damage is noticed */
        if (rc == 0) {
            ok++;
            gust_http_client_response_free(r);
        } else {
            failed++;
        }
    }
    assert_int_equal(ok + failed, 400);
    assert_true(failed > 0);
    gust_http_client_free(c);
    raw_stop(&srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_get_own_server, test_setup),
        cmocka_unit_test_setup(test_post_headers_auth, test_setup),
        cmocka_unit_test_setup(test_large_bodies, test_setup),
        cmocka_unit_test_setup(test_http_error_readable, test_setup),
        cmocka_unit_test_setup(test_redirects, test_setup),
        cmocka_unit_test_setup(test_keep_alive_reuse, test_setup),
        cmocka_unit_test_setup(test_stale_connection_retried, test_setup),
        cmocka_unit_test_setup(test_no_keep_alive, test_setup),
        cmocka_unit_test_setup(test_chunked, test_setup),
        cmocka_unit_test_setup(test_gzip, test_setup),
        cmocka_unit_test_setup(test_body_until_close, test_setup),
        cmocka_unit_test_setup(test_malformed_responses, test_setup),
        cmocka_unit_test_setup(test_obs_fold_unfolded, test_setup),
        cmocka_unit_test_setup(test_size_limits, test_setup),
        cmocka_unit_test_setup(test_header_and_streaming_callbacks, test_setup),
        cmocka_unit_test_setup(test_callback_form, test_setup),
        cmocka_unit_test_setup(test_coroutine, test_setup),
        cmocka_unit_test_setup(test_connection_refused, test_setup),
        cmocka_unit_test_setup(test_dns_failure, test_setup),
        cmocka_unit_test_setup(test_request_timeout, test_setup),
        cmocka_unit_test_setup(test_queue_timeouts, test_setup),
        cmocka_unit_test_setup(test_connect_timeout, test_setup),
        cmocka_unit_test_setup(test_cancel_and_free, test_setup),
        cmocka_unit_test_setup(test_free_inside_streaming_callback, test_setup),
        cmocka_unit_test_setup(test_many_parallel, test_setup),
        cmocka_unit_test_setup(test_head_keeps_connection, test_setup),
        cmocka_unit_test_setup(test_informational_skipped, test_setup),
        cmocka_unit_test_setup(test_ipv6_literal, test_setup),
        cmocka_unit_test_setup(test_timeout_during_body, test_setup),
        cmocka_unit_test_setup(test_trickled_responses, test_setup),
        cmocka_unit_test_setup(test_damaged_responses, test_setup),
    };
    /* Once on the default backend (epoll), once on poll. */
    int failed = cmocka_run_group_tests_name("http_client_epoll", tests,
                                             setup_default, teardown_env);
    failed += cmocka_run_group_tests_name("http_client_poll", tests,
                                          setup_poll, teardown_env);
    return failed;
}
