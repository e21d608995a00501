/* HTTP client: the client object, the max_clients queue, the keep-alive
 * pool, the life of a fetch (timers, redirects, retries) and its future.
 * The wire side (connecting, request, response parsing, decoding) is in
 * http_client_conn.c.
 *
 * Every way a fetch ends goes through fetch_end(), which completes the
 * future exactly once. User code runs either from the future's
 * done-callbacks (always on the loop, never inside our stack) or from the
 * header and streaming callbacks, around which gust__http_client_user_enter/leave
 * keep the fetch alive in case the user cancels it or frees the client.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "future_internal.h"
#include "gust/http_client.h"
#include "gust/log.h"
#include "gust/tls.h"
#include "http_client_internal.h"

#define DEFAULT_MAX_CLIENTS 10
#define DEFAULT_IDLE_TIMEOUT 30.0
#define DEFAULT_MAX_HEADER (64 * 1024)
#define DEFAULT_MAX_BODY ((size_t)100 * 1024 * 1024)
#define DEFAULT_TIMEOUT 20.0
#define DEFAULT_MAX_REDIRECTS 5

/* A TLS client context made for one set of TLS settings; see
 * gust__http_client_tls_context() at the end. */
struct tls_entry {
    struct tls_entry *next;
    bool insecure;
    bool h2;      /* ALPN offers h2 */
    char *key;
    gust_tls_context *ctx;
};

/* An origin whose server did not pick h2 by ALPN: fetches to it no longer
 * wait for one connection to find out (see begin_attempt). */
struct h1_origin {
    struct h1_origin *next;
    int port;
    bool insecure;
    char *host;
    char *tls_key; /* NULL: none */
};
#define MAX_H1_ORIGINS 16

/* Fetches are either queued (FIFO, waiting for a slot) or active (holding
 * one of max_clients slots, through redirects and retries). Connections
 * are all on conns; the idle ones also on idle, most recent first, so that
 * the warmest connection is reused and the coldest times out. */
struct gust_http_client {
    gust_loop *loop;
    int max_clients;
    int max_idle;
    double idle_timeout;
    size_t max_header, max_body;
    char *user_agent;
    bool closing;
    bool pumping;
    bool http2;
    struct h1_origin *h1_origins;
    size_t nh1_origins;
    gust__http_client_fetch *queue_head, *queue_tail;
    gust__http_client_fetch *active;
    size_t nqueued, nactive, nidle;
    gust__http_client_conn *conns;
    gust__http_client_conn *idle; /* most recently used first */
    size_t opened, reused;
    struct tls_entry *tls;
    /* Finished fetches kept for reuse, with their arena's first block. */
    gust__http_client_fetch *spare;
    size_t nspare;
};

/* ---- Accessors for the connection side -------------------------------- */

gust_loop *gust__http_client_loop(const gust_http_client *c) { return c->loop; }
size_t gust__http_client_max_header(const gust_http_client *c)
{
    return c->max_header;
}
size_t gust__http_client_max_body(const gust_http_client *c)
{
    return c->max_body;
}
const char *gust__http_client_user_agent(const gust_http_client *c)
{
    return c->user_agent;
}
bool gust__http_client_keep_alive_wanted(const gust_http_client *c)
{
    return c->max_idle > 0;
}
double gust__http_client_idle_timeout(const gust_http_client *c)
{
    return c->idle_timeout;
}

/* ---- Lists ------------------------------------------------------------- */

/* Unlinks f from a fetch list (the queue has a tail, the active list
 * none). */
static void list_remove(gust__http_client_fetch **head,
                        gust__http_client_fetch **tail,
                        gust__http_client_fetch *f)
{
    if (f->prev)
        f->prev->next = f->next;
    else
        *head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    else if (tail)
        *tail = f->prev;
    f->prev = f->next = NULL;
}

/* Every connection is on the client's list so that freeing the client can
 * close them all, including those still connecting. */
void gust__http_client_pool_add(gust_http_client *c,
                                gust__http_client_conn *conn)
{
    conn->client = c;
    conn->prev = NULL;
    conn->next = c->conns;
    if (c->conns)
        c->conns->prev = conn;
    c->conns = conn;
    c->opened++;
}

/* Takes conn out of the idle list; a no-op for a connection that is not
 * idle. */
static void idle_remove(gust__http_client_conn *conn)
{
    gust_http_client *c = conn->client;
    if (conn->state != GUST__HTTP_CLIENT_CONN_IDLE)
        return;
    if (conn->idle_prev)
        conn->idle_prev->idle_next = conn->idle_next;
    else
        c->idle = conn->idle_next;
    if (conn->idle_next)
        conn->idle_next->idle_prev = conn->idle_prev;
    conn->idle_prev = conn->idle_next = NULL;
    c->nidle--;
}

/* Detaches conn from its client for good: after this the connection can
 * only be closed, never reused. */
void gust__http_client_pool_remove(gust__http_client_conn *conn)
{
    gust_http_client *c = conn->client;
    if (!c)
        return;
    idle_remove(conn);
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        c->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    conn->prev = conn->next = NULL;
    conn->client = NULL;
}

/* An idle connection is closed after idle_timeout: servers close theirs
 * too (nginx after 75 s, Tornado after an hour), and a connection the
 * client closes first is one it never finds stale. */
static void on_idle_timeout(gust_timer *t, void *data)
{
    (void)t;
    gust__http_client_conn_close(data);
}

/* Puts conn at the head of the idle list, with its idle timer running. */
void gust__http_client_pool_set_idle(gust__http_client_conn *conn,
                                     double idle_timeout)
{
    gust_http_client *c = conn->client;
    gust_timer_start(&conn->idle_timer, idle_timeout, 0, on_idle_timeout,
                     conn);
    conn->state = GUST__HTTP_CLIENT_CONN_IDLE;
    conn->fetch = NULL;
    conn->idle_prev = NULL;
    conn->idle_next = c->idle;
    if (c->idle)
        c->idle->idle_prev = conn;
    c->idle = conn;
    c->nidle++;
}

/* Gives an idle connection to f. */
void gust__http_client_pool_take(gust__http_client_conn *conn,
                                 gust__http_client_fetch *f)
{
    idle_remove(conn);
    gust_timer_stop(&conn->idle_timer);
    conn->state = GUST__HTTP_CLIENT_CONN_BUSY;
    conn->fetch = f;
}

/* Whether conn goes where f goes, with the same TLS settings. */
static bool conn_matches(const gust__http_client_conn *conn,
                         const gust__http_client_fetch *f)
{
    return conn->port == f->target.port && conn->tls == f->tls &&
           strcmp(conn->host, f->host) == 0 &&
           (!f->tls || (conn->insecure == f->insecure &&
                        !conn->tls_key == !f->tls_key &&
                        (!f->tls_key || !strcmp(conn->tls_key, f->tls_key))));
}

/* An HTTP/2 connection for f: one with a session that takes new streams,
 * or (unless f may not wait) one still being made that may turn out
 * HTTP/2. */
static gust__http_client_conn *h2_find(gust_http_client *c,
                                       const gust__http_client_fetch *f)
{
    gust__http_client_conn *probing = NULL;
    for (gust__http_client_conn *conn = c->conns; conn; conn = conn->next) {
        if (!conn_matches(conn, f))
            continue;
        if (gust__http_client_h2_usable(conn))
            return conn;
        if (conn->h2_probe &&
            conn->state == GUST__HTTP_CLIENT_CONN_CONNECTING && !probing &&
            !f->h2_no_wait)
            probing = conn;
    }
    return probing;
}

static bool known_h1(const gust_http_client *c,
                     const gust__http_client_fetch *f)
{
    for (const struct h1_origin *o = c->h1_origins; o; o = o->next)
        if (o->port == f->target.port && o->insecure == f->insecure &&
            !strcmp(o->host, f->host) && !o->tls_key == !f->tls_key &&
            (!f->tls_key || !strcmp(o->tls_key, f->tls_key)))
            return true;
    return false;
}

/* Remembers conn's origin as HTTP/1 (most recent first, a few kept). */
static void known_h1_add(gust_http_client *c,
                         const gust__http_client_conn *conn)
{
    struct h1_origin *o = calloc(1, sizeof *o);
    if (!o)
        return;
    o->port = conn->port;
    o->insecure = conn->insecure;
    o->host = strdup(conn->host);
    o->tls_key = conn->tls_key ? strdup(conn->tls_key) : NULL;
    if (!o->host || (conn->tls_key && !o->tls_key)) {
        free(o->host);
        free(o->tls_key);
        free(o);
        return;
    }
    o->next = c->h1_origins;
    c->h1_origins = o;
    if (++c->nh1_origins > MAX_H1_ORIGINS) {
        struct h1_origin **pp = &c->h1_origins;
        while ((*pp)->next)
            pp = &(*pp)->next;
        free((*pp)->host);
        free((*pp)->tls_key);
        free(*pp);
        *pp = NULL;
        c->nh1_origins--;
    }
}

/* Waiters of a connection being made (FIFO). */
static void waiter_add(gust__http_client_conn *conn, gust__http_client_fetch *f)
{
    f->waiting_on = conn;
    f->wait_next = NULL;
    f->wait_prev = conn->wait_tail;
    if (conn->wait_tail)
        conn->wait_tail->wait_next = f;
    else
        conn->wait_head = f;
    conn->wait_tail = f;
}

static void waiter_remove(gust__http_client_fetch *f)
{
    gust__http_client_conn *conn = f->waiting_on;
    if (f->wait_prev)
        f->wait_prev->wait_next = f->wait_next;
    else
        conn->wait_head = f->wait_next;
    if (f->wait_next)
        f->wait_next->wait_prev = f->wait_prev;
    else
        conn->wait_tail = f->wait_prev;
    f->wait_prev = f->wait_next = NULL;
    f->waiting_on = NULL;
}

/* An idle connection to where f goes, made with the same TLS settings. */
static gust__http_client_conn *idle_find(gust_http_client *c,
                                         const gust__http_client_fetch *f)
{
    for (gust__http_client_conn *conn = c->idle; conn; conn = conn->idle_next) {
        if (conn->port == f->target.port && conn->tls == f->tls &&
            strcmp(conn->host, f->host) == 0 &&
            (!f->tls || (conn->insecure == f->insecure &&
                         !conn->tls_key == !f->tls_key &&
                         (!f->tls_key || !strcmp(conn->tls_key, f->tls_key)))))
            return conn;
    }
    return NULL;
}

/* ---- Responses ---------------------------------------------------------- */

/* An empty response: strings default to "" so that users never meet a
 * NULL, whatever went wrong. */
static gust_http_client_response *response_new(void)
{
    gust_http_client_response *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    gust_arena_init(&r->arena, 2048);
    gust_http_headers_init(&r->headers, &r->arena);
    r->reason = "";
    r->body = "";
    r->error_message = "";
    r->request_url = "";
    r->effective_url = "";
    return r;
}

void gust_http_client_response_free(gust_http_client_response *resp)
{
    if (!resp)
        return;
    if (!resp->body_in_arena)
        free(resp->body_buf);
    gust_arena_close(&resp->arena);
    free(resp);
}

static void response_free_fn(void *p) { gust_http_client_response_free(p); }

/* ---- Ending a fetch ----------------------------------------------------- */

/* Starts queued fetches while slots are free. Re-entrant calls (a start
 * that fails at once ends its fetch, which pumps again) are folded into
 * the outer loop. */
static void pump(gust_http_client *c);
/* One request on the wire: for a new fetch, a redirect or a retry. An
 * idle connection to the same place is reused when there is one; else a
 * new one is opened under the connect timeout. */
static void begin_attempt(gust__http_client_fetch *f);

/* Frees what the fetch owns; the response and the future are gone by
 * now (fetch_end() handed them on). */
static void fetch_free(gust__http_client_fetch *f)
{
    gust__http_client_conn_body_reset(f);
    gust_arena_close(&f->arena);
    free(f);
}

/* A finished fetch goes to the client's spare list (up to max_clients)
 * rather than back to malloc: the next fetch reuses it and its arena's
 * first block, two allocations fewer per request. */
static void fetch_release(gust_http_client *c, gust__http_client_fetch *f)
{
    if (c->closing || (int)c->nspare >= c->max_clients) {
        fetch_free(f);
        return;
    }
    gust__http_client_conn_body_reset(f);
    gust_arena_reset(&f->arena);
    f->next = c->spare;
    c->spare = f;
    c->nspare++;
}

/* A zeroed fetch, from the spare list or new. */
static gust__http_client_fetch *fetch_alloc(gust_http_client *c)
{
    gust__http_client_fetch *f = c->spare;
    if (f) {
        c->spare = f->next;
        c->nspare--;
        gust_arena arena = f->arena;
        memset(f, 0, sizeof *f);
        f->arena = arena;
        return f;
    }
    f = calloc(1, sizeof *f);
    if (f)
        gust_arena_init(&f->arena, 1024);
    return f;
}

static void stop_timers(gust__http_client_fetch *f)
{
    gust_timer_stop(&f->queue_timer);
    gust_timer_stop(&f->connect_timer);
    gust_timer_stop(&f->request_timer);
}

/* Ends f with code (0: success) and completes its future. */
static void fetch_end(gust__http_client_fetch *f, int code, const char *detail)
{
    if (f->state == GUST__HTTP_CLIENT_DONE)
        return;
    gust_http_client *c = f->client;
    bool was_active = f->state == GUST__HTTP_CLIENT_ACTIVE;
    stop_timers(f);
    if (was_active) {
        list_remove(&c->active, NULL, f);
        c->nactive--;
    } else {
        list_remove(&c->queue_head, &c->queue_tail, f);
        c->nqueued--;
    }
    f->state = GUST__HTTP_CLIENT_DONE;
    if (f->waiting_on)
        waiter_remove(f);
    if (f->h2)
        gust__http_client_h2_detach(f);
    if (f->conn) {
        gust__http_client_conn *conn = f->conn;
        f->conn = NULL;
        conn->fetch = NULL;
        if (conn->state == GUST__HTTP_CLIENT_CONN_CONNECTING &&
            conn->wait_head) {
            /* Others wait for this connection: the first of them takes it
             * over (its own connect timer is running already). */
            gust__http_client_fetch *w = conn->wait_head;
            waiter_remove(w);
            conn->fetch = w;
            w->conn = conn;
        } else {
            gust__http_client_conn_close(conn);
        }
    }

    gust_http_client_response *r = f->resp;
    f->resp = NULL;
    if (!r)
        r = response_new();
    if (r) {
        if (code < 0 && code != GUST_EHTTP && code != GUST_ETOOMANYREDIRECTS)
            r->code = 599;
        r->error = code;
        double now = gust_loop_time(c->loop);
        if (f->t_started > 0) {
            r->queue_time = f->t_started - f->t_created;
            r->request_time = now - f->t_started;
        } else {
            r->queue_time = now - f->t_created;
        }
        r->redirects = f->redirects;
        r->request_url = gust_arena_strdup(&r->arena, f->original_url);
        r->effective_url = gust_arena_strdup(&r->arena, f->url);
        if (code < 0) {
            const char *m = detail
                ? gust_arena_sprintf(&r->arena, "%s: %s", detail,
                                     gust_strerror(code))
                : gust_strerror(code);
            r->error_message = m ? m : gust_strerror(code);
        }
        if (!r->request_url)
            r->request_url = "";
        if (!r->effective_url)
            r->effective_url = "";
    }

    gust_future *fut = f->future;
    f->future = NULL;
    gust__future_set_cancel(fut, NULL);
    gust__future_set_impl(fut, NULL);
    if (gust_future_done(fut)) {
        /* Cancelled by its owner: nobody wants the response. */
        gust_http_client_response_free(r);
    } else if (code == 0 || !r) {
        if (r)
            gust_future_set_result(fut, (gust_value){r, response_free_fn});
        else
            gust_future_set_error(fut, -ENOMEM);
    } else {
        /* The error keeps its response readable for as long as the future
         * lives (gust_http_client_error_response); the future frees it. */
        gust__future_fail_with(fut, code, (gust_value){r, response_free_fn});
    }
    gust_future_unref(fut);

    if (!f->busy)
        fetch_release(c, f);
    if (was_active)
        pump(c);
}

/* The future's owner cancelled it: the future is complete already, so the
 * fetch only stops (its connection closes, its slot frees). */
static void on_future_cancelled(gust_future *fut)
{
    gust__http_client_fetch *f = gust__future_impl(fut);
    if (f)
        fetch_end(f, GUST_ECANCELED, NULL);
}

/* A user callback may cancel its fetch or free the client. busy keeps the
 * fetch's memory alive until the callback returns, and leave() tells the
 * caller whether the fetch is still running. */
bool gust__http_client_user_enter(gust__http_client_fetch *f)
{
    f->busy++;
    return true;
}

bool gust__http_client_user_leave(gust__http_client_fetch *f)
{
    f->busy--;
    if (f->state != GUST__HTTP_CLIENT_DONE)
        return true;
    if (!f->busy)
        fetch_free(f);
    return false;
}

/* ---- Timers ------------------------------------------------------------- */

/* The three timeouts: each ends the fetch with its own code, and the
 * detail names what was being waited for. */
static void on_queue_timeout(gust_timer *t, void *data)
{
    (void)t;
    fetch_end(data, GUST_ETIMEOUT_QUEUE, "waiting for a free slot");
}

static void on_connect_timeout(gust_timer *t, void *data)
{
    gust__http_client_fetch *f = data;
    (void)t;
    const char *d = gust_arena_sprintf(&f->arena, "connecting to %s:%d",
                                       f->host, f->target.port);
    fetch_end(f, GUST_ETIMEOUT_CONNECT, d);
}

static void on_request_timeout(gust_timer *t, void *data)
{
    gust__http_client_fetch *f = data;
    (void)t;
    const char *d = gust_arena_sprintf(&f->arena, "request to %s", f->url);
    fetch_end(f, GUST_ETIMEOUT, d);
}

/* ---- Attempts, redirects, retries ---------------------------------------- */

/* Parses f->url into f->target (slices into f->url). Returns 0 or -EINVAL
 * with f->error_detail set. */
static int set_target(gust__http_client_fetch *f)
{
    gust_url u;
    if (gust_url_parse(gust_str_cstr(f->url), &u) < 0) {
        f->error_detail = "malformed URL";
        return -EINVAL;
    }
    if (gust_str_eq_nocase(u.scheme, GUST_STR("https")))
        f->tls = true;
    else if (gust_str_eq_nocase(u.scheme, GUST_STR("http")))
        f->tls = false;
    else {
        f->error_detail = "unsupported URL scheme";
        return -EINVAL;
    }
    f->target = u;
    f->host = gust_str_dup(&f->arena, u.host);
    return f->host ? 0 : -ENOMEM;
}

static void begin_attempt(gust__http_client_fetch *f)
{
    gust_http_client *c = f->client;
    gust_http_client_response_free(f->resp);
    f->resp = response_new();
    if (!f->resp) {
        fetch_end(f, -ENOMEM, NULL);
        return;
    }
    gust__http_client_conn_body_reset(f);
    f->discard_body = f->too_many_redirects = false;
    f->location = NULL;
    gust__http_client_conn *conn = idle_find(c, f);
    if (conn) {
        gust__http_client_pool_take(conn, f);
        f->conn = conn;
        f->resp->reused_connection = true;
        c->reused++;
        gust__http_client_conn_send_request(f);
        return;
    }
    bool probe = false;
    if (f->http2 && f->tls) {
        conn = h2_find(c, f);
        if (conn && conn->state == GUST__HTTP_CLIENT_CONN_H2) {
            /* Set first: a write that fails inside the submit may end f. */
            f->resp->reused_connection = true;
            int rc = gust__http_client_h2_submit(conn, f);
            if (rc == 0) {
                c->reused++;
                return;
            }
            f->resp->reused_connection = false;
            if (rc != -EAGAIN) {
                fetch_end(f, rc, "sending the HTTP/2 request");
                return;
            }
        } else if (conn) {
            /* The connection being made may be HTTP/2: wait for it. */
            waiter_add(conn, f);
            if (f->connect_timeout > 0)
                gust_timer_start(&f->connect_timer, f->connect_timeout, 0,
                                 on_connect_timeout, f);
            return;
        }
        probe = !f->h2_no_wait && !known_h1(c, f);
    }
    if (f->connect_timeout > 0)
        gust_timer_start(&f->connect_timer, f->connect_timeout, 0,
                         on_connect_timeout, f);
    if (gust__http_client_conn_open(c, f) < 0)
        fetch_end(f, -ENOMEM, "opening a connection");
    else if (probe)
        f->conn->h2_probe = true;
}

/* Waiters start over, each on its own connection. Restarted in order,
 * from a detached list: restarting one may end others (the queue). */
void gust__http_client_release_waiters(gust__http_client_conn *conn)
{
    while (conn->wait_head) {
        gust__http_client_fetch *w = conn->wait_head;
        waiter_remove(w);
        gust_timer_stop(&w->connect_timer);
        w->h2_no_wait = true;
        if (w->state == GUST__HTTP_CLIENT_ACTIVE && !w->client->closing)
            begin_attempt(w);
    }
}

/* A stream could not be opened on a connection just made for it. */
static void h2_submit_failed(gust__http_client_fetch *f, int rc)
{
    if (rc == -EAGAIN)
        fetch_end(f, -ECONNRESET, "HTTP/2 connection lost");
    else
        fetch_end(f, rc, "sending the HTTP/2 request");
}

void gust__http_client_handshake_done(gust__http_client_conn *conn, bool h2)
{
    gust_http_client *c = conn->client;
    gust__http_client_fetch *owner = conn->fetch;
    conn->h2_probe = false;
    if (!h2) {
        known_h1_add(c, conn);
        gust__http_client_connected(owner);
        gust__http_client_release_waiters(conn);
        return;
    }
    int rc = gust__http_client_h2_open(conn);
    if (rc < 0) {
        gust__http_client_release_waiters(conn);
        gust__http_client_attempt_failed(owner, rc, "starting HTTP/2");
        return;
    }
    /* The connection now belongs to the session: its fetches are streams. */
    owner->conn = NULL;
    gust_timer_stop(&owner->connect_timer);
    rc = gust__http_client_h2_submit(conn, owner);
    if (rc < 0)
        h2_submit_failed(owner, rc);
    while (conn->wait_head && gust__http_client_h2_usable(conn)) {
        gust__http_client_fetch *w = conn->wait_head;
        waiter_remove(w);
        gust_timer_stop(&w->connect_timer);
        /* Set first: a write that fails inside the submit may end w. */
        w->resp->reused_connection = true;
        rc = gust__http_client_h2_submit(conn, w);
        if (rc < 0) {
            h2_submit_failed(w, rc);
            continue;
        }
        c->reused++;
    }
    gust__http_client_release_waiters(conn);
}

void gust__http_client_retry(gust__http_client_fetch *f, int code,
                             const char *detail)
{
    if (f->state != GUST__HTTP_CLIENT_ACTIVE)
        return;
    if (f->retried || f->client->closing) {
        fetch_end(f, code, detail);
        return;
    }
    f->retried = true;
    begin_attempt(f);
}

/* Connected (and TLS done): the connect timeout stops counting. */
void gust__http_client_connected(gust__http_client_fetch *f)
{
    gust_timer_stop(&f->connect_timer);
    gust__http_client_conn_send_request(f);
}

void gust__http_client_attempt_failed(gust__http_client_fetch *f, int code,
                                      const char *detail)
{
    gust__http_client_conn *conn = f->conn;
    /* A kept connection the server closed while it sat idle fails before
     * any byte of response: the request never reached an application, so
     * sending it again on a fresh connection is safe. */
    bool stale = conn && f->resp && f->resp->reused_connection &&
                 f->resp->code == 0 &&
                 (code == GUST_ESTREAMCLOSED || code == -ECONNRESET ||
                  code == -EPIPE || code == GUST_EPROTO);
    if (stale && f->state == GUST__HTTP_CLIENT_ACTIVE) {
        f->conn = NULL;
        conn->fetch = NULL;
        gust__http_client_conn_close(conn);
        f->retried = true;
        begin_attempt(f);
        return;
    }
    fetch_end(f, code, detail);
}

/* Resolves a Location value against the current URL (RFC 3986 section 5.2,
 * without dot-segment removal). Returns a string in f->arena, or NULL. */
static const char *resolve_location(gust__http_client_fetch *f, const char *loc)
{
    const gust_url *b = &f->target;
    size_t n = strcspn(loc, ":/?#");
    if (n > 0 && loc[n] == ':')
        return loc; /* absolute */
    int sl = (int)b->scheme.len;
    /* The authority as written: from after "//" to the path. */
    const char *auth = strstr(f->url, "//");
    auth = auth ? auth + 2 : f->url;
    size_t al = strcspn(auth, "/?#");
    if (loc[0] == '/' && loc[1] == '/')
        return gust_arena_sprintf(&f->arena, "%.*s:%s", sl, b->scheme.ptr,
                                  loc);
    if (loc[0] == '/')
        return gust_arena_sprintf(&f->arena, "%.*s://%.*s%s", sl,
                                  b->scheme.ptr, (int)al, auth, loc);
    gust_str path = b->path.len ? b->path : GUST_STR("/");
    if (loc[0] == '?')
        return gust_arena_sprintf(&f->arena, "%.*s://%.*s%.*s%s", sl,
                                  b->scheme.ptr, (int)al, auth,
                                  (int)path.len, path.ptr, loc);
    size_t dir = path.len;
    while (dir > 0 && path.ptr[dir - 1] != '/')
        dir--;
    return gust_arena_sprintf(&f->arena, "%.*s://%.*s%.*s%s", sl,
                              b->scheme.ptr, (int)al, auth, (int)dir,
                              path.ptr, loc);
}

/* The redirect's body has been read (so its connection could be kept);
 * now the same fetch, with its slot and its request timer, goes on to
 * the Location. */
static void follow_redirect(gust__http_client_fetch *f)
{
    int code = f->resp->code;
    const char *next = resolve_location(f, f->location);
    if (!next) {
        fetch_end(f, -ENOMEM, NULL);
        return;
    }
    const char *prev_url = f->url;
    gust_url prev = f->target;
    bool prev_tls = f->tls;
    const char *prev_host = f->host;
    f->url = next;
    int rc = set_target(f);
    if (rc < 0) {
        f->url = prev_url;
        fetch_end(f, rc, "redirect Location");
        return;
    }
    /* Credentials given for one origin are not handed to another (as curl
     * does). */
    if (prev_tls != f->tls || prev.port != f->target.port ||
        strcmp(prev_host, f->host) != 0)
        f->authorization = NULL;
    f->redirects++;
    /* 301/302/303 become a GET without body (what browsers do; RFC 9110
     * allows it for 301/302 and asks it for 303); 307/308 keep both. */
    if ((code == 301 || code == 302 || code == 303) &&
        strcmp(f->method, "HEAD") != 0) {
        f->method = "GET";
        f->body = NULL;
        f->body_len = 0;
    }
    begin_attempt(f);
}

/* The whole response is in: the connection goes back to the pool or is
 * closed first, so that a redirect to the same place can already take
 * it. Then the fetch follows the redirect or ends, with GUST_EHTTP for a
 * status >= 400 when raise_error asks for it. */
void gust__http_client_response_done(gust__http_client_fetch *f)
{
    gust_http_client *c = f->client;
    gust__http_client_conn *conn = f->conn;
    f->conn = NULL;
    if (conn) {
        conn->fetch = NULL;
        if (f->keep_alive && (int)c->nidle < c->max_idle && !c->closing)
            gust__http_client_pool_set_idle(conn, c->idle_timeout);
        else
            gust__http_client_conn_close(conn);
    }
    gust__http_client_conn_body_reset(f);
    if (f->discard_body && f->location) {
        follow_redirect(f);
        return;
    }
    int code = f->resp->code;
    if (f->too_many_redirects)
        fetch_end(f, GUST_ETOOMANYREDIRECTS,
                  gust_arena_sprintf(&f->arena, "after %d redirects",
                                     f->redirects));
    else if (code >= 400 && f->raise_error)
        fetch_end(f, GUST_EHTTP,
                  gust_arena_sprintf(&f->arena, "HTTP %d %s", code,
                                     f->resp->reason));
    else
        fetch_end(f, 0, NULL);
}

/* ---- The queue ---------------------------------------------------------- */

/* Gives f a slot. The request timeout starts here, not at fetch time:
 * waiting in the queue is the queue timeout's business. */
static void start_active(gust__http_client_fetch *f)
{
    gust_http_client *c = f->client;
    f->state = GUST__HTTP_CLIENT_ACTIVE;
    f->prev = NULL;
    f->next = c->active;
    if (c->active)
        c->active->prev = f;
    c->active = f;
    c->nactive++;
    f->t_started = gust_loop_time(c->loop);
    if (f->request_timeout > 0)
        gust_timer_start(&f->request_timer, f->request_timeout, 0,
                         on_request_timeout, f);
    begin_attempt(f);
}

static void pump(gust_http_client *c)
{
    if (c->pumping || c->closing)
        return;
    c->pumping = true;
    while (c->queue_head && (int)c->nactive < c->max_clients) {
        gust__http_client_fetch *f = c->queue_head;
        list_remove(&c->queue_head, &c->queue_tail, f);
        c->nqueued--;
        gust_timer_stop(&f->queue_timer);
        start_active(f);
    }
    c->pumping = false;
}

/* ---- Fetching ----------------------------------------------------------- */

static const char b64chars[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* "Basic " + base64(user ":" password), RFC 7617. */
static char *basic_auth(gust_arena *a, const char *user, const char *pass)
{
    char *plain = gust_arena_sprintf(a, "%s:%s", user, pass ? pass : "");
    if (!plain)
        return NULL;
    size_t n = strlen(plain);
    char *out = gust_arena_alloc(a, 6 + (n + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    char *o = out + 6;
    memcpy(out, "Basic ", 6);
    const unsigned char *p = (const unsigned char *)plain;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        *o++ = b64chars[(v >> 18) & 63];
        *o++ = b64chars[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? b64chars[v & 63] : '=';
    }
    *o = '\0';
    return out;
}

/* 0 means Tornado's default (20 s); a negative value means no limit. */
static double timeout_or_default(double t)
{
    return t == 0 ? DEFAULT_TIMEOUT : t;
}

/* Copies r into f. Returns 0, or -EINVAL / -ENOMEM with f->error_detail. */
static int copy_request(gust__http_client_fetch *f,
                        const gust_http_client_request *r)
{
    gust_arena *a = &f->arena;
    if (!r->url) {
        f->error_detail = "no URL";
        return -EINVAL;
    }
    /* The fragment is the client's business, never sent. */
    f->original_url = gust_arena_strndup(a, r->url, strcspn(r->url, "#"));
    f->method = gust_arena_strdup(a, r->method ? r->method : "GET");
    if (!f->original_url || !f->method)
        return -ENOMEM;
    f->url = f->original_url;
    if (!gust_http_method_valid(gust_str_cstr(f->method))) {
        f->error_detail = "invalid method";
        return -EINVAL;
    }
    if (r->num_headers) {
        gust_http_header *h = gust_arena_calloc(a, r->num_headers, sizeof *h);
        if (!h)
            return -ENOMEM;
        for (size_t i = 0; i < r->num_headers; i++) {
            gust_str n = r->headers[i].name, v = r->headers[i].value;
            if (!gust_http_token_valid(n) || !v.ptr ||
                !gust_http_header_value_valid(v)) {
                f->error_detail = "invalid request header";
                return -EINVAL;
            }
            h[i].name = gust_str_make(gust_arena_memdup(a, n.ptr, n.len), n.len);
            h[i].value = gust_str_make(gust_arena_memdup(a, v.ptr, v.len ? v.len : 1),
                                       v.len);
            if (!h[i].name.ptr || !h[i].value.ptr)
                return -ENOMEM;
        }
        f->headers = h;
        f->num_headers = r->num_headers;
    }
    if (r->body) {
        f->body = gust_arena_memdup(a, r->body, r->body_len ? r->body_len : 1);
        if (!f->body)
            return -ENOMEM;
        f->body_len = r->body_len;
    }
    f->connect_timeout = timeout_or_default(r->connect_timeout);
    f->request_timeout = timeout_or_default(r->request_timeout);
    f->queue_timeout = r->queue_timeout == 0 ? f->connect_timeout
                                             : r->queue_timeout;
    f->max_redirects = r->max_redirects == 0 ? DEFAULT_MAX_REDIRECTS
                                             : r->max_redirects;
    if (r->follow_redirects == GUST_HTTP_NO)
        f->max_redirects = -1;
    f->decompress = r->decompress != GUST_HTTP_NO;
    f->raise_error = r->raise_error != GUST_HTTP_NO;
    f->insecure = r->validate_cert == GUST_HTTP_NO;
    if (r->ca_file || r->client_cert || r->client_key) {
        f->ca_file = r->ca_file ? gust_arena_strdup(a, r->ca_file) : NULL;
        f->client_cert = r->client_cert ? gust_arena_strdup(a, r->client_cert)
                                        : NULL;
        f->client_key = r->client_key ? gust_arena_strdup(a, r->client_key)
                                      : NULL;
        f->tls_key = gust_arena_sprintf(a, "%s\n%s\n%s",
                                        r->ca_file ? r->ca_file : "",
                                        r->client_cert ? r->client_cert : "",
                                        r->client_key ? r->client_key : "");
        if (!f->tls_key)
            return -ENOMEM;
    }
    if (r->auth_username) {
        f->authorization = basic_auth(a, r->auth_username, r->auth_password);
        if (!f->authorization)
            return -ENOMEM;
    }
    if (r->user_agent && !(f->user_agent = gust_arena_strdup(a, r->user_agent)))
        return -ENOMEM;
    if (f->user_agent &&
        !gust_http_header_value_valid(gust_str_cstr(f->user_agent))) {
        f->error_detail = "invalid user agent";
        return -EINVAL;
    }
    f->http2 = r->http2 == GUST_HTTP_DEFAULT ? f->client->http2
                                             : r->http2 == GUST_HTTP_YES;
    f->header_callback = r->header_callback;
    f->streaming_callback = r->streaming_callback;
    f->callback_data = r->callback_data;
    return set_target(f);
}

/* The future carries the fetch as its producer (impl, cancel hook), so
 * that cancelling the future stops the fetch. */
gust_future *gust_http_client_fetch(gust_http_client *c,
                                    const gust_http_client_request *r)
{
    assert(c && r);
    gust__http_client_fetch *f = fetch_alloc(c);
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    gust_future *fut = gust_future_new(c->loop);
    if (!fut) {
        fetch_free(f);
        errno = ENOMEM;
        return NULL;
    }
    f->client = c;
    f->future = gust_future_ref(fut);
    gust__future_set_impl(fut, f);
    gust__future_set_cancel(fut, on_future_cancelled);
    gust_timer_init(c->loop, &f->queue_timer);
    gust_timer_init(c->loop, &f->connect_timer);
    gust_timer_init(c->loop, &f->request_timer);
    f->t_created = gust_loop_time(c->loop);
    f->url = f->original_url = "";

    /* Queued first, so that every ending (errors included) takes the one
     * path through fetch_end(). */
    f->state = GUST__HTTP_CLIENT_QUEUED;
    f->prev = c->queue_tail;
    if (c->queue_tail)
        c->queue_tail->next = f;
    else
        c->queue_head = f;
    c->queue_tail = f;
    c->nqueued++;

    int rc = c->closing ? GUST_ECANCELED : copy_request(f, r);
    if (rc < 0) {
        fetch_end(f, rc, f->error_detail);
        return fut;
    }
    if ((int)c->nactive < c->max_clients && c->queue_head == f) {
        list_remove(&c->queue_head, &c->queue_tail, f);
        c->nqueued--;
        start_active(f);
        return fut;
    }
    /* As Tornado's simple_httpclient: one line per fetch that waits, so a
     * slow page can be traced to the limit. No URL: it may carry a token
     * or a password. */
    gust_log_debug("http_client", "max_clients limit reached, request queued. "
                   "%zu active, %zu queued requests.", c->nactive, c->nqueued);
    if (f->queue_timeout > 0)
        gust_timer_start(&f->queue_timer, f->queue_timeout, 0,
                         on_queue_timeout, f);
    return fut;
}

gust_future *gust_http_fetch(gust_http_client *c, const char *url)
{
    gust_http_client_request r = {.url = url};
    return gust_http_client_fetch(c, &r);
}

/* A failed fetch keeps its response as the future's value (see
 * fetch_end); for any other future the value of an error is empty. */
gust_http_client_response *gust_http_client_error_response(gust_future *f)
{
    return f ? gust__future_error_value(f) : NULL;
}

/* The callback form rides on the future: the user's callback is one of its
 * done-callbacks, so it runs on the loop like any other. */
typedef struct fetch_cb_ctx {
    void (*cb)(gust_http_client_response *resp, void *data);
    void *data;
} fetch_cb_ctx;

static void fetch_cb_adapter(gust_future *fut, void *data)
{
    fetch_cb_ctx ctx = *(fetch_cb_ctx *)data;
    free(data);
    int status = gust_future_status(fut);
    gust_http_client_response *resp = status == 0 ? gust_future_result(fut)
                                           : gust_http_client_error_response(fut);
    if (resp) {
        ctx.cb(resp, ctx.data);
        return;
    }
    /* Out of memory when the fetch ended: still one call, with a response
     * that says so. */
    gust_http_client_response fallback = {.code = 599, .reason = "", .body = "",
                                   .request_url = "", .effective_url = "",
                                   .error = status ? status : -ENOMEM};
    fallback.error_message = gust_strerror(fallback.error);
    gust_arena_init(&fallback.arena, 0);
    gust_http_headers_init(&fallback.headers, &fallback.arena);
    ctx.cb(&fallback, ctx.data);
    gust_arena_close(&fallback.arena);
}

int gust_http_client_fetch_cb(gust_http_client *c,
                              const gust_http_client_request *r,
                              void (*cb)(gust_http_client_response *resp,
                                    void *data),
                              void *data)
{
    assert(c && r && cb);
    fetch_cb_ctx *ctx = malloc(sizeof *ctx);
    if (!ctx)
        return -ENOMEM;
    ctx->cb = cb;
    ctx->data = data;
    gust_future *fut = gust_http_client_fetch(c, r);
    if (!fut) {
        free(ctx);
        return -ENOMEM;
    }
    if (gust_future_add_done_callback(fut, fetch_cb_adapter, ctx) < 0) {
        gust_future_cancel(fut);
        gust_future_unref(fut);
        free(ctx);
        return -ENOMEM;
    }
    /* The fetch and then the scheduled callback hold their own references. */
    gust_future_unref(fut);
    return 0;
}

/* ---- The client --------------------------------------------------------- */

/* Options are copied; zero fields get Tornado's defaults. */
gust_http_client *gust_http_client_new(gust_loop *loop,
                                       const gust_http_client_options *o)
{
    assert(loop);
    gust_http_client_options d = {0};
    if (!o)
        o = &d;
    if (o->max_clients < 0 || o->idle_timeout < 0) {
        errno = EINVAL;
        return NULL;
    }
    gust_http_client *c = calloc(1, sizeof *c);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    c->loop = loop;
    c->max_clients = o->max_clients ? o->max_clients : DEFAULT_MAX_CLIENTS;
    c->max_idle = o->max_idle_connections ? o->max_idle_connections
                                          : c->max_clients;
    c->idle_timeout = o->idle_timeout > 0 ? o->idle_timeout
                                          : DEFAULT_IDLE_TIMEOUT;
    c->max_header = o->max_header_size ? o->max_header_size
                                       : DEFAULT_MAX_HEADER;
    c->max_body = o->max_body_size ? o->max_body_size : DEFAULT_MAX_BODY;
    c->http2 = o->http2;
    c->user_agent = strdup(o->user_agent ? o->user_agent
                                         : "Gust/" GUST_VERSION_STRING);
    if (!c->user_agent ||
        !gust_http_header_value_valid(gust_str_cstr(c->user_agent))) {
        int e = c->user_agent ? EINVAL : ENOMEM;
        free(c->user_agent);
        free(c);
        errno = e;
        return NULL;
    }
    return c;
}

/* closing stops the queue from starting anything while the fetches are
 * failed one by one; connections outlive the client until their streams
 * have closed (or their name is resolved). */
void gust_http_client_free(gust_http_client *c)
{
    if (!c)
        return;
    c->closing = true;
    while (c->queue_head)
        fetch_end(c->queue_head, GUST_ECANCELED, "client freed");
    while (c->active)
        fetch_end(c->active, GUST_ECANCELED, "client freed");
    while (c->conns) {
        gust__http_client_conn *conn = c->conns;
        gust__http_client_pool_remove(conn);
        gust__http_client_conn_close(conn);
    }
    while (c->spare) {
        gust__http_client_fetch *f = c->spare;
        c->spare = f->next;
        fetch_free(f);
    }
    while (c->tls) {
        struct tls_entry *e = c->tls;
        c->tls = e->next;
        gust_tls_context_free(e->ctx);
        free(e->key);
        free(e);
    }
    while (c->h1_origins) {
        struct h1_origin *o = c->h1_origins;
        c->h1_origins = o->next;
        free(o->host);
        free(o->tls_key);
        free(o);
    }
    free(c->user_agent);
    free(c);
}

void gust_http_client_get_stats(const gust_http_client *c,
                                gust_http_client_stats *out)
{
    out->active = c->nactive;
    out->queued = c->nqueued;
    out->idle = c->nidle;
    out->connections = c->opened;
    out->reused = c->reused;
}

/* ---- TLS contexts --------------------------------------------------------- */

/* One client context per distinct (insecure, ca_file, cert, key), made on
 * first use and kept until the client is freed (streams hold their own
 * references, so connections may outlive it). */

gust_tls_context *gust__http_client_tls_context(gust_http_client *c,
                                                gust__http_client_fetch *f)
{
    if (!c) {
        f->error_detail = "client freed";
        return NULL;
    }
    const char *key = f->tls_key ? f->tls_key : "";
    for (struct tls_entry *e = c->tls; e; e = e->next)
        if (e->insecure == f->insecure && e->h2 == f->http2 &&
            !strcmp(e->key, key))
            return e->ctx;
    static const char *const alpn[] = {"http/1.1", NULL};
    static const char *const alpn_h2[] = {"h2", "http/1.1", NULL};
    gust_tls_options o = {.ca_file = f->ca_file,
                          .cert_file = f->client_cert,
                          .key_file = f->client_key,
                          .insecure = f->insecure,
                          .alpn = f->http2 ? alpn_h2 : alpn};
    struct tls_entry *e = calloc(1, sizeof *e);
    if (e)
        e->key = strdup(key);
    if (e && e->key)
        e->ctx = gust_tls_context_new_client(&o);
    if (!e || !e->key || !e->ctx) {
        f->error_detail = "cannot load the TLS settings (ca_file, "
                          "client_cert, client_key)";
        if (e)
            free(e->key);
        free(e);
        return NULL;
    }
    e->insecure = f->insecure;
    e->h2 = f->http2;
    e->next = c->tls;
    c->tls = e;
    return e->ctx;
}
