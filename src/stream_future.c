/* Stream operations as futures (the last section of stream.h), built on the
 * public callback API of stream.h and net.h only.
 *
 * Each pending operation's callback holds a reference to its future, so the
 * caller may drop or hand over its own at any time. A future that is done
 * when the callback comes (it was cancelled) just drops what arrived.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gust/net.h"
#include "gust/stream.h"

/* A future already failed with code: errors the call reports at once
 * travel the same road as those that come later. */
static gust_future *failed(gust_loop *loop, int code)
{
    gust_future *f = gust_future_new(loop);
    if (f)
        gust_future_set_error(f, code);
    return f;
}

/* The reference for the callback, or the call's own error into f. */
static gust_future *started(gust_future *f, int rc)
{
    if (rc < 0) {
        gust_future_unref(f); /* the callback's: it will never run */
        gust_future_set_error(f, rc);
    }
    return f;
}

/* The stream's data is only valid during its callback: a future's result
 * must outlive it, hence a copy (with a '\0' for text). */
static gust_bytes *bytes_copy(const char *data, size_t len)
{
    gust_bytes *b = malloc(sizeof *b + len + 1);
    if (!b)
        return NULL;
    b->len = len;
    if (len)
        memcpy(b->data, data, len);
    b->data[len] = '\0';
    return b;
}

/* ---- Reads ------------------------------------------------------------- */

static void on_read(gust_stream *s, int status, const char *data, size_t len,
                    void *user)
{
    (void)s;
    gust_future *f = user;
    /* Done already: it was cancelled, and what arrived is dropped. */
    if (!gust_future_done(f)) {
        if (status < 0) {
            gust_future_set_error(f, status);
        } else {
            gust_bytes *b = bytes_copy(data, len);
            if (b)
                gust_future_set_result(f, (gust_value){b, free});
            else
                gust_future_set_error(f, -ENOMEM);
        }
    }
    gust_future_unref(f);
}

/* A new future with an extra reference for the read callback. */
static gust_future *new_op(gust_stream *s)
{
    gust_future *f = gust_future_new(gust_stream_loop(s));
    return f ? gust_future_ref(f) : NULL;
}

gust_future *gust_stream_read_until_f(gust_stream *s, const void *delim,
                                      size_t delim_len, size_t max_bytes)
{
    gust_future *f = new_op(s);
    if (!f)
        return NULL;
    return started(f, gust_stream_read_until(s, delim, delim_len, max_bytes,
                                             on_read, f));
}

gust_future *gust_stream_read_until_regex_f(gust_stream *s,
                                            const char *pattern,
                                            size_t max_bytes)
{
    gust_future *f = new_op(s);
    if (!f)
        return NULL;
    return started(f, gust_stream_read_until_regex(s, pattern, max_bytes,
                                                   on_read, f));
}

gust_future *gust_stream_read_bytes_f(gust_stream *s, size_t n,
                                      unsigned flags)
{
    /* A future completes once: chunks have nowhere to go. */
    if (flags & GUST_READ_STREAMING)
        return failed(gust_stream_loop(s), -EINVAL);
    gust_future *f = new_op(s);
    if (!f)
        return NULL;
    return started(f, gust_stream_read_bytes(s, n, flags, on_read, f));
}

gust_future *gust_stream_read_until_close_f(gust_stream *s)
{
    gust_future *f = new_op(s);
    if (!f)
        return NULL;
    return started(f, gust_stream_read_until_close(s, 0, on_read, f));
}

/* ---- Write and connect ------------------------------------------------- */

static void on_status(gust_future *f, int status)
{
    if (!gust_future_done(f)) {
        if (status < 0)
            gust_future_set_error(f, status);
        else
            gust_future_set_result(f, GUST_VALUE_NONE);
    }
    gust_future_unref(f);
}

static void on_write(gust_stream *s, int status, void *user)
{
    (void)s;
    on_status(user, status);
}

static void on_connect(gust_stream *s, int status, void *user)
{
    (void)s;
    on_status(user, status);
}

gust_future *gust_stream_write_f(gust_stream *s, const void *data, size_t len)
{
    gust_future *f = new_op(s);
    if (!f)
        return NULL;
    return started(f, gust_stream_write(s, data, len, on_write, f));
}

gust_future *gust_stream_connect_f(gust_stream *s, const struct sockaddr *addr,
                                   socklen_t addrlen)
{
    gust_future *f = new_op(s);
    if (!f)
        return NULL;
    return started(f, gust_stream_connect(s, addr, addrlen, on_connect, f));
}

/* ---- Close ------------------------------------------------------------- */

/* Runs just before the stream is freed: the last moment it can be read. */
static void on_closed(gust_stream *s, void *user)
{
    gust_future *f = user;
    gust_future_set_result(f, GUST_VALUE_INT(gust_stream_error(s)));
    gust_future_unref(f);
}

gust_future *gust_stream_closed_f(gust_stream *s)
{
    gust_future *f = new_op(s);
    if (f)
        gust_stream_set_close_callback(s, on_closed, f);
    return f;
}

/* ---- Resolve and connect ----------------------------------------------- */

/* A gust_free_fn for a connected stream: an untaken result closes it. */
static void close_stream(void *stream)
{
    gust_stream_close(stream);
}

static void on_tcp_connect(gust_loop *loop, int status, gust_stream *s,
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
    return started(f, gust_tcp_connect(loop, host, port, opts, on_tcp_connect,
                                       f));
}
