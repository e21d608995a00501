/* Stream operations as futures (the last section of stream.h), built on the
 * public callback API of stream.h and net.h only.
 *
 * Each pending operation's callback holds a reference to its future, so the
 * caller may drop or hand over its own at any time. A future that is done
 * when the callback comes (it was cancelled) just drops what arrived.
 *
 * Each pending operation also holds a reference to its stream, so that the
 * coroutine it resumes may still look at the stream after a close: the
 * close dispatch completes the futures and frees the stream right after,
 * but the coroutine only runs once the future's callbacks do. The reference
 * goes one loop turn after those callbacks, which also covers a coroutine
 * woken through one gust_all/any/with_timeout (their own callbacks run in
 * the next turn, queued before ours).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gust/stream.h"
#include "stream_internal.h"

/* A future already failed with code: errors the call reports at once
 * travel the same road as those that come later. */
static gust_future *failed(gust_loop *loop, int code)
{
    gust_future *f = gust_future_new(loop);
    if (f)
        gust_future_set_error(f, code);
    return f;
}

/* ---- The stream reference of a pending operation ----------------------- */

static void unref_later(gust_loop *loop, void *data)
{
    (void)loop;
    gust_stream_unref(data);
}

/* Runs after the callbacks f had when it completed (they were added first,
 * and one of them resumed the awaiting coroutine). */
static void release_stream(gust_future *f, void *data)
{
    if (gust_loop_add_callback(gust_future_loop(f), unref_later, data) < 0)
        gust_stream_unref(data); /* out of memory: a turn early */
}

/* The end of an operation, from the stream's callback: f is completed (or
 * was cancelled); drops the callback's references to f and, after f's
 * callbacks, to s. */
static void op_done(gust_future *f, gust_stream *s)
{
    if (gust_future_add_done_callback(f, release_stream, s) < 0 &&
        gust_loop_add_callback(gust_stream_loop(s), unref_later, s) < 0)
        gust_stream_unref(s);
    gust_future_unref(f);
}

/* The references for the callback, or the call's own error into f. */
static gust_future *started(gust_future *f, gust_stream *s, int rc)
{
    if (rc < 0) {
        /* The callback will never run: its references go now. */
        gust_stream_unref(s);
        gust_future_unref(f);
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
    op_done(f, s);
}

/* A new future with an extra reference to it and one to s, both for the
 * operation's callback. */
static gust_future *new_op(gust_stream *s)
{
    gust_future *f = gust_future_new(gust_stream_loop(s));
    if (!f)
        return NULL;
    gust_stream_ref(s);
    return gust_future_ref(f);
}

gust_future *gust_stream_read_until_f(gust_stream *s, const void *delim,
                                      size_t delim_len, size_t max_bytes)
{
    gust_future *f = new_op(s);
    if (!f)
        return NULL;
    return started(f, s, gust_stream_read_until(s, delim, delim_len, max_bytes,
                                             on_read, f));
}

gust_future *gust_stream_read_until_regex_f(gust_stream *s,
                                            const char *pattern,
                                            size_t max_bytes)
{
    gust_future *f = new_op(s);
    if (!f)
        return NULL;
    return started(f, s, gust_stream_read_until_regex(s, pattern, max_bytes,
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
    return started(f, s, gust_stream_read_bytes(s, n, flags, on_read, f));
}

gust_future *gust_stream_read_until_close_f(gust_stream *s)
{
    gust_future *f = new_op(s);
    if (!f)
        return NULL;
    return started(f, s, gust_stream_read_until_close(s, 0, on_read, f));
}

/* ---- Write and connect ------------------------------------------------- */

static void on_status(gust_stream *s, gust_future *f, int status)
{
    if (!gust_future_done(f)) {
        if (status < 0)
            gust_future_set_error(f, status);
        else
            gust_future_set_result(f, GUST_VALUE_NONE);
    }
    op_done(f, s);
}

static void on_write(gust_stream *s, int status, void *user)
{
    on_status(s, user, status);
}

static void on_connect(gust_stream *s, int status, void *user)
{
    on_status(s, user, status);
}

gust_future *gust_stream_write_f(gust_stream *s, const void *data, size_t len)
{
    gust_future *f = new_op(s);
    if (!f)
        return NULL;
    return started(f, s, gust_stream_write(s, data, len, on_write, f));
}

gust_future *gust_stream_connect_f(gust_stream *s, const struct sockaddr *addr,
                                   socklen_t addrlen)
{
    gust_future *f = new_op(s);
    if (!f)
        return NULL;
    return started(f, s, gust_stream_connect(s, addr, addrlen, on_connect, f));
}

/* ---- Close ------------------------------------------------------------- */

/* The close callback: the stream lives on through the operation's
 * reference. */
static void on_closed(gust_stream *s, void *user)
{
    gust_future *f = user;
    gust_future_set_result(f, GUST_VALUE_INT(gust_stream_error(s)));
    op_done(f, s);
}

gust_future *gust_stream_closed_f(gust_stream *s)
{
    /* Its close callback has run: a new one never would. The caller holds
     * a reference (or the pointer would be gone): answer now. */
    if (gust__stream_close_delivered(s)) {
        gust_future *f = gust_future_new(gust_stream_loop(s));
        if (f)
            gust_future_set_result(f, GUST_VALUE_INT(gust_stream_error(s)));
        return f;
    }
    gust_future *f = new_op(s);
    if (f)
        gust_stream_set_close_callback(s, on_closed, f);
    return f;
}

/* ---- Resolve and connect ----------------------------------------------- */
