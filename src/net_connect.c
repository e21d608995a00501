/* Connecting: the one cancellable connect request (net_internal.h) behind
 * gust_tcp_connect(), gust_tcp_connect_f() and the HTTP client. Resolve
 * (numeric hosts without the executor), then try each address in turn. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gust/future.h"
#include "gust/net.h"
#include "gust/stream.h"
#include "net_internal.h"

struct gust__connect {
    gust_loop *loop;
    bool has_opts;
    bool cancelled;
    bool resolving;     /* the resolver still holds the request */
    bool deferred;      /* the loop callback below still holds it */
    gust_stream_options opts;
    gust__connect_cb cb;
    void *data;
    gust_stream *stream; /* the address being tried, NULL between tries */
    gust_address *addrs;
    size_t count, next;
    int status;          /* the result a deferred callback delivers */
    bool failed_resolving;
};

static void req_free(gust__connect *r)
{
    free(r->addrs);
    free(r);
}

static void finish(gust__connect *r, int status, gust_stream *s)
{
    bool deliver = !r->cancelled;
    r->cancelled = true; /* a cancel from the callback is then a no-op */
    if (deliver)
        r->cb(r, status, r->failed_resolving, s, r->data);
    else if (s)
        gust_stream_close(s);
    req_free(r);
}

static void on_deferred(gust_loop *loop, void *data)
{
    (void)loop;
    gust__connect *r = data;
    r->deferred = false;
    finish(r, r->status, NULL);
}

/* Every attempt failed before any callback could: the result waits for
 * the next loop iteration, as every callback in Gust does. */
static void fail_later(gust__connect *r, int status)
{
    r->status = status;
    if (gust_loop_add_callback(r->loop, on_deferred, r) == 0) {
        r->deferred = true;
        return;
    }
    finish(r, status, NULL); /* out of memory: now rather than never */
}

static void try_next(gust__connect *r, int last_err);

/* One address answered or failed; a failed stream closes itself. */
static void on_connected(gust_stream *s, int status, void *user)
{
    gust__connect *r = user;
    r->stream = NULL;
    if (status == 0 || r->cancelled) {
        finish(r, status, status == 0 ? s : NULL);
        return;
    }
    try_next(r, status);
}

/* Tries the remaining addresses in order (getaddrinfo's order: IPv6 first
 * for localhost on most systems), one at a time. Tornado also races the
 * second family after 0.3 s; a plain sequence is enough here. */
static void try_next(gust__connect *r, int last_err)
{
    while (r->next < r->count) {
        const gust_address *a = &r->addrs[r->next++];
        int fd = socket(a->addr.ss_family,
                        SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last_err = -errno;
            continue;
        }
        gust_stream *s = gust_stream_new(r->loop, fd,
                                         r->has_opts ? &r->opts : NULL);
        if (!s) {
            last_err = -errno;
            close(fd);
            continue;
        }
        int rc = gust_stream_connect(s, (const struct sockaddr *)&a->addr,
                                     a->len, on_connected, r);
        if (rc == 0) {
            r->stream = s;
            return;
        }
        last_err = rc;
        gust_stream_close(s);
    }
    /* last_err is 0 only when there was no address at all: an empty
     * answer is the resolver's failure, reported as it reports an
     * unknown host. */
    if (!last_err) {
        r->failed_resolving = true;
        last_err = -ENOENT;
    }
    fail_later(r, last_err);
}

static void on_resolved(gust_loop *loop, int status, const gust_address *addrs,
                        size_t count, void *data)
{
    (void)loop;
    gust__connect *r = data;
    r->resolving = false;
    if (r->cancelled) {
        req_free(r);
        return;
    }
    if (status < 0) {
        r->failed_resolving = true;
        finish(r, status, NULL);
        return;
    }
    r->addrs = malloc((count ? count : 1) * sizeof *addrs);
    if (!r->addrs) {
        finish(r, -ENOMEM, NULL);
        return;
    }
    memcpy(r->addrs, addrs, count * sizeof *addrs);
    r->count = count;
    try_next(r, 0);
}

/* A numeric host (the common case for services and benchmarks) needs no
 * trip through the executor. */
static bool numeric_address(const char *host, int port, gust_address *out)
{
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&out->addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->addr;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        out->len = sizeof *v4;
        return true;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        out->len = sizeof *v6;
        return true;
    }
    return false;
}

int gust__connect_start(gust_loop *loop, const char *host, int port,
                        const gust_stream_options *opts, gust__connect_cb cb,
                        void *data, gust__connect **out)
{
    if (!loop || !host || !cb || port < 0 || port > 65535)
        return -EINVAL;
    gust__connect *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->loop = loop;
    if (opts) {
        r->has_opts = true;
        r->opts = *opts;
    }
    r->cb = cb;
    r->data = data;
    gust_address a;
    if (numeric_address(host, port, &a)) {
        r->addrs = malloc(sizeof a);
        if (!r->addrs) {
            free(r);
            return -ENOMEM;
        }
        r->addrs[0] = a;
        r->count = 1;
        if (out)
            *out = r;
        try_next(r, 0);
        return 0;
    }
    int rc = gust_resolve(loop, host, port, AF_UNSPEC, on_resolved, r);
    if (rc < 0) {
        free(r);
        return rc;
    }
    r->resolving = true;
    if (out)
        *out = r;
    return 0;
}

/* Whoever still holds the request (the resolver, a connecting stream's
 * callback, the deferred result) frees it when it hands it back. */
void gust__connect_cancel(gust__connect *r)
{
    if (!r || r->cancelled)
        return;
    r->cancelled = true;
    if (r->stream) {
        gust_stream_close(r->stream); /* on_connected frees r */
        return;
    }
    if (!r->resolving && !r->deferred)
        req_free(r);
}

/* ---- gust_tcp_connect() -------------------------------------------------- */

typedef struct tcp_connect {
    gust_tcp_connect_cb cb;
    void *data;
} tcp_connect;

static void on_tcp_connect(gust__connect *req, int status, bool resolving,
                           gust_stream *s, void *data)
{
    (void)resolving;
    tcp_connect *t = data;
    t->cb(gust__connect_loop(req), status, s, t->data);
    free(t);
}

int gust_tcp_connect(gust_loop *loop, const char *host, int port,
                     const gust_stream_options *opts, gust_tcp_connect_cb cb,
                     void *data)
{
    if (!loop || !host || !cb)
        return -EINVAL;
    tcp_connect *t = malloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    t->cb = cb;
    t->data = data;
    int rc = gust__connect_start(loop, host, port, opts, on_tcp_connect, t,
                                 NULL);
    if (rc < 0)
        free(t);
    return rc;
}

gust_loop *gust__connect_loop(const gust__connect *r)
{
    return r->loop;
}

/* ---- gust_tcp_connect_f() ------------------------------------------------ */

/* A gust_free_fn for a connected stream: an untaken result closes it. */
static void close_stream(void *stream)
{
    gust_stream_close(stream);
}

static void on_tcp_connect_f(gust_loop *loop, int status, gust_stream *s,
                             void *data)
{
    (void)loop;
    gust_future *f = data;
    if (status < 0)
        gust_future_set_error(f, status);
    else
        /* Closes s itself if f was cancelled meanwhile. */
        gust_future_set_result(f, (gust_value){s, close_stream});
    gust_future_unref(f);
}

gust_future *gust_tcp_connect_f(gust_loop *loop, const char *host, int port,
                                const gust_stream_options *opts)
{
    gust_future *f = gust_future_new(loop);
    if (!f)
        return NULL;
    gust_future_ref(f); /* the connect callback's */
    int rc = gust_tcp_connect(loop, host, port, opts, on_tcp_connect_f, f);
    if (rc < 0) {
        gust_future_unref(f); /* the callback will never run */
        gust_future_set_error(f, rc);
    }
    return f;
}
