/* Streams: the read buffer and the four kinds of read.
 *
 * The buffer is one contiguous block holding rbuf[rstart, rend), so a
 * delimiter search or a regex sees plain memory and a result is handed to
 * the callback without a copy. Bytes are consumed by moving rstart before the
 * callback runs (the memory itself is left alone until it returns), so a read
 * started from inside the callback already sees only what follows. An empty
 * buffer is given back (to a small per-thread cache) so that idle streams
 * hold no buffer at all.
 */
#define GUST__STREAM_PRIVATE
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "gust/stream.h"
#include "stream_internal.h"

/* Reads per readable event: enough to drain a fast socket in a few calls,
 * few enough that one busy peer cannot starve the others. */
#define READS_PER_EVENT 4

/* ---- Buffer cache ---------------------------------------------------------
 *
 * Read buffers of the default size and write copy segments of the smallest
 * size are kept per thread (at most CACHE_MAX of each), so a busy server
 * does not malloc and free them for every request. A thread's cache is
 * freed when the thread exits. */
#define CACHE_BUF_SIZE ((size_t)64 * 1024)
#define CACHE_MAX 8

typedef struct buf_cache {
    bool keyed;
    int count[GUST__CACHE_KINDS];
    void *bufs[GUST__CACHE_KINDS][CACHE_MAX];
} buf_cache;

static _Thread_local buf_cache tl_cache;
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static bool cache_key_ok;

static void cache_destroy(void *p)
{
    buf_cache *c = p;
    for (int k = 0; k < GUST__CACHE_KINDS; k++)
        while (c->count[k] > 0)
            free(c->bufs[k][--c->count[k]]);
}

static void cache_key_init(void)
{
    cache_key_ok = pthread_key_create(&cache_key, cache_destroy) == 0;
}

void *gust__stream_cache_get(int kind)
{
    buf_cache *c = &tl_cache;
    return c->count[kind] > 0 ? c->bufs[kind][--c->count[kind]] : NULL;
}

bool gust__stream_cache_put(int kind, void *buf)
{
    buf_cache *c = &tl_cache;
    if (c->count[kind] >= CACHE_MAX)
        return false;
    if (!c->keyed) {
        /* Without the key's destructor a thread's cache would leak at
         * thread exit: then do not cache at all. */
        pthread_once(&cache_once, cache_key_init);
        if (!cache_key_ok || pthread_setspecific(cache_key, c) != 0)
            return false;
        c->keyed = true;
    }
    c->bufs[kind][c->count[kind]++] = buf;
    return true;
}

static void buf_free(char *buf, size_t cap)
{
    if (cap == CACHE_BUF_SIZE && gust__stream_cache_put(GUST__CACHE_RBUF, buf))
        return;
    free(buf);
}

void gust__stream_rbuf_release(gust_stream *s)
{
    if (!s->rbuf)
        return;
    buf_free(s->rbuf, s->rcap);
    s->rbuf = NULL;
    s->rcap = s->rstart = s->rend = 0;
}

/* Makes room for at least want more bytes after rend. Returns false if out
 * of memory (the buffer is then unchanged). */
static bool ensure_space(gust_stream *s, size_t want)
{
    size_t live = s->rend - s->rstart;
    if (!s->rbuf) {
        size_t cap = want > s->read_chunk_size ? want : s->read_chunk_size;
        char *b = NULL;
        if (cap <= CACHE_BUF_SIZE) {
            b = gust__stream_cache_get(GUST__CACHE_RBUF);
            if (b)
                cap = CACHE_BUF_SIZE;
        }
        if (!b)
            b = malloc(cap);
        if (!b)
            return false;
        s->rbuf = b;
        s->rcap = (uint32_t)cap;
        s->rstart = s->rend = 0;
        return true;
    }
    if (s->rcap - s->rend >= want)
        return true;
    /* Never move bytes a read callback may still be looking at. */
    assert(s->delivering == 0);
    if (s->rstart > 0 && live + want <= s->rcap) {
        memmove(s->rbuf, s->rbuf + s->rstart, live);
        s->rstart = 0;
        s->rend = (uint32_t)live;
        return true;
    }
    /* Offsets are 32-bit: no buffer reaches 4 GiB (max_buffer_size is
     * below it, and reads never ask for more than it allows). */
    if (live + want > UINT32_MAX)
        return false;
    size_t cap = s->rcap;
    while (cap < live + want)
        cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
    char *b = malloc(cap);
    if (!b)
        return false;
    memcpy(b, s->rbuf + s->rstart, live);
    buf_free(s->rbuf, s->rcap);
    s->rbuf = b;
    s->rcap = (uint32_t)cap;
    s->rstart = 0;
    s->rend = (uint32_t)live;
    return true;
}

/* ---- Finding the end of the pending read --------------------------------- */

void gust__stream_read_clear(gust_stream *s)
{
    int kind = s->rkind;
    s->rkind = GUST__READ_NONE;
    s->found = false;
    s->rcb = NULL;
    s->ruser = NULL;
    /* The union's state belongs to the kind that just ended. */
    if (kind == GUST__READ_UNTIL) {
        if (s->r.until.len > GUST__DELIM_INLINE)
            free(s->r.until.d.heap);
    } else if (kind == GUST__READ_REGEX) {
        pcre2_match_data_free(s->r.regex.md);
        pcre2_code_free(s->r.regex.re);
    }
}

/* Below this many bytes a memchr()/memcmp() scan beats memmem(), whose
 * set-up dominates on a short request head. Above it memmem() keeps the
 * worst case linear, whatever delimiter and data a peer chooses. */
#define SHORT_SEARCH 512

static const char *search(const char *hay, size_t n, const char *needle,
                          size_t dl)
{
    if (dl == 1)
        return memchr(hay, needle[0], n);
    if (n >= SHORT_SEARCH)
        return memmem(hay, n, needle, dl);
    const char *end = hay + n - dl + 1; /* n >= dl here */
    for (const char *p = hay; p < end; p++) {
        p = memchr(p, needle[0], (size_t)(end - p));
        if (!p)
            return NULL;
        if (memcmp(p + 1, needle + 1, dl - 1) == 0)
            return p;
    }
    return NULL;
}

static int find_until(gust_stream *s, size_t live, size_t *len)
{
    if (s->found) {
        *len = s->rn;
        return GUST__FOUND_READY;
    }
    size_t max = s->rn;
    size_t lim = max && max < live ? max : live;
    size_t dl = s->r.until.len;
    size_t scan = s->r.until.scan;
    if (lim >= scan + dl) {
        const char *base = s->rbuf + s->rstart;
        const char *d = dl <= GUST__DELIM_INLINE ? s->r.until.d.inline_
                                                 : s->r.until.d.heap;
        const char *p = search(base + scan, lim - scan, d, dl);
        if (p) {
            /* Remembered (in rn: max_bytes is done with): the read loop
             * and the delivery both ask. */
            *len = s->rn = (size_t)(p - base) + dl;
            s->found = true;
            return GUST__FOUND_READY;
        }
        /* Nothing starts before here: a match straddling the end of what
         * we have begins in its last dl - 1 bytes at the earliest. */
        s->r.until.scan = (uint32_t)(lim - (dl - 1));
    }
    if (max && live >= max)
        return GUST__FOUND_UNSAT;
    return GUST__FOUND_NONE;
}

static int find_regex(gust_stream *s, size_t live, size_t *len)
{
    size_t max = s->rn;
    if (s->found) {
        *len = s->rn;
        return GUST__FOUND_READY;
    }
    if (live == 0)
        return GUST__FOUND_NONE;
    size_t lim = max && max < live ? max : live;
    int rc = pcre2_match(s->r.regex.re, (PCRE2_SPTR)(s->rbuf + s->rstart), lim,
                         0, 0, s->r.regex.md, NULL);
    if (rc >= 0) {
        *len = s->rn = pcre2_get_ovector_pointer(s->r.regex.md)[1];
        s->found = true;
        return GUST__FOUND_READY;
    }
    /* Other failures (match or depth limits) would fail again on every
     * chunk: report them as unsatisfiable rather than buffer forever. */
    if (rc != PCRE2_ERROR_NOMATCH || (max && live >= max))
        return GUST__FOUND_UNSAT;
    return GUST__FOUND_NONE;
}

int gust__stream_find_read(gust_stream *s, size_t *len, int *status)
{
    size_t live = s->rend - s->rstart;
    *status = 0;
    switch (s->rkind) {
    case GUST__READ_UNTIL:
        return find_until(s, live, len);
    case GUST__READ_REGEX:
        return find_regex(s, live, len);
    case GUST__READ_BYTES:
        if (s->rflags & GUST_READ_STREAMING) {
            if (live == 0)
                return GUST__FOUND_NONE;
            *len = live < s->rn ? live : s->rn;
            if (*len < s->rn)
                *status = GUST_STREAM_CHUNK;
            return GUST__FOUND_READY;
        }
        if (s->rflags & GUST_READ_PARTIAL) {
            if (live == 0)
                return GUST__FOUND_NONE;
            *len = live < s->rn ? live : s->rn;
            return GUST__FOUND_READY;
        }
        if (live < s->rn)
            return GUST__FOUND_NONE;
        *len = s->rn;
        return GUST__FOUND_READY;
    case GUST__READ_CLOSE:
        /* Without streaming, everything is delivered at close. */
        if (!(s->rflags & GUST_READ_STREAMING) || live == 0)
            return GUST__FOUND_NONE;
        *len = live;
        *status = GUST_STREAM_CHUNK;
        return GUST__FOUND_READY;
    default:
        return GUST__FOUND_NONE;
    }
}

/* ---- Delivering ---------------------------------------------------------- */

void gust__stream_deliver(gust_stream *s)
{
    while (s->rkind != GUST__READ_NONE && !s->closed) {
        size_t len = 0;
        int status;
        int found = gust__stream_find_read(s, &len, &status);
        if (found == GUST__FOUND_NONE)
            break;
        gust_stream_read_cb cb = s->rcb;
        void *user = s->ruser;
        if (found == GUST__FOUND_UNSAT) {
            gust__stream_read_clear(s);
            s->delivering++;
            cb(s, GUST_EUNSATISFIABLE, "", 0, user);
            s->delivering--;
            continue;
        }
        const char *p = len ? s->rbuf + s->rstart : "";
        s->rstart += (uint32_t)len;
        if (status == GUST_STREAM_CHUNK) {
            if (s->rkind == GUST__READ_BYTES)
                s->rn -= len;
        } else {
            gust__stream_read_clear(s);
        }
        s->delivering++;
        cb(s, status, p, len, user);
        s->delivering--;
    }
    if (s->delivering)
        return;
    /* The answers to everything delivered leave in one writev(). */
    gust__stream_uncork(s);
    if (s->rbuf && s->rstart == s->rend) {
        gust__stream_rbuf_release(s);
    } else if (s->rkind != GUST__READ_NONE && !s->closed &&
               s->rend - s->rstart >= s->max_buffer_size) {
        /* The pending read wants more than the stream may hold. */
        gust__stream_close_with(s, GUST_EBUFFERFULL);
    }
}

/* ---- Batched reads (the loop's io_uring batch) ----------------------------
 *
 * Before the turn's handlers run, the loop asks each readable plain socket
 * whether it reads and how much, reads them all in one call into memory of
 * its own and reports each result. The bytes are copied into the stream's
 * buffer at once (an exact-size one when it has none: every ready stream
 * holds its bytes at the same time here), so nothing can move or lose
 * them; handle_read then takes the result in place of its first read(). */

static bool plain_socket(const gust_stream *s)
{
    return s->is_socket && !s->custom_tp;
}

/* Where handle_read's next read would go: false when it would not read. */
/* How much the next read may take: read_chunk_size (the caller's knob for
 * one read(), even when a cached buffer has more room), less near
 * max_buffer_size; 0 when the buffer is full. */
static size_t read_want(const gust_stream *s)
{
    size_t live = s->rend - s->rstart;
    if (live >= s->max_buffer_size)
        return 0;
    size_t r = s->max_buffer_size - live;
    return r < s->read_chunk_size ? r : s->read_chunk_size;
}

static bool read_room(gust_stream *s, size_t *room)
{
    size_t r = read_want(s);
    if (r == 0 || !ensure_space(s, r))
        return false;
    *room = r < s->rcap - s->rend ? r : s->rcap - s->rend;
    return true;
}

bool gust__stream_read_target(void *data, size_t *len)
{
    gust_stream *s = data;
    /* Bytes already buffered may satisfy the pending read: then the
     * handler reads for itself (or not at all), and the hot path does not
     * search the buffer twice. */
    if (s->closed || s->connecting || !plain_socket(s) || s->delivering ||
        s->rkind == GUST__READ_NONE || s->pf_state != GUST__PF_NONE ||
        s->rend != s->rstart || (*len = read_want(s)) == 0)
        return false;
    s->refs++; /* until read_finish */
    return true;
}

/* Room for n more bytes; a stream with no buffer gets one of just that
 * size (grown by ensure_space later if it needs more). */
static bool room_for(gust_stream *s, size_t n)
{
    if (s->rbuf)
        return ensure_space(s, n);
    size_t cap = (n + 255) & ~(size_t)255;
    s->rbuf = malloc(cap);
    if (!s->rbuf)
        return false;
    s->rcap = (uint32_t)cap;
    s->rstart = s->rend = 0;
    return true;
}

void gust__stream_read_done(void *data, const char *buf, ssize_t res)
{
    gust_stream *s = data;
    if (res > 0) {
        if (!room_for(s, (size_t)res)) {
            s->pf_state = GUST__PF_ERROR;
            s->error = -ENOMEM;
            return;
        }
        memcpy(s->rbuf + s->rend, buf, (size_t)res);
        s->rend += (uint32_t)res;
        s->pf_state = GUST__PF_DATA;
    } else if (res == 0) {
        s->pf_state = GUST__PF_EOF;
    } else if (res != -EAGAIN && res != -EWOULDBLOCK && res != -EINTR) {
        s->pf_state = GUST__PF_ERROR;
        s->error = (int)res;
    }
}

void gust__stream_read_finish(void *data)
{
    gust_stream *s = data;
    /* Its handler did not run this turn (the fd was re-registered): the
     * result waits in the buffer for the dispatch. */
    if (s->pf_state != GUST__PF_NONE && !s->closed) {
        s->read_again = true;
        gust__stream_schedule(s);
    }
    gust__stream_release(s);
}

bool gust__stream_handle_read(gust_stream *s)
{
    bool progress = false;
    bool eof = false;
    int err = 0;
    int reads = 0;
    /* A batched read done for this turn stands for the first read(). */
    switch (s->pf_state) {
    case GUST__PF_DATA:
        progress = true;
        reads++;
        break;
    case GUST__PF_EOF:
        eof = true;
        break;
    case GUST__PF_ERROR:
        err = s->error;
        s->error = 0; /* set again by the close below */
        break;
    }
    s->pf_state = GUST__PF_NONE;
    while (!eof && !err && s->rkind != GUST__READ_NONE && reads < READS_PER_EVENT) {
        size_t len;
        int status;
        if (gust__stream_find_read(s, &len, &status) != GUST__FOUND_NONE) {
            progress = true; /* the delivery below moves things on */
            break;
        }
        size_t room;
        if (!read_room(s, &room)) {
            gust__stream_close_with(s, s->rend - s->rstart >= s->max_buffer_size
                                           ? GUST_EBUFFERFULL : -ENOMEM);
            return true;
        }
        ssize_t n = gust__stream_tp(s)->read(s, s->rbuf + s->rend, room);
        if (n > 0) {
            s->rend += (uint32_t)n;
            progress = true;
            reads++;
        } else if (n == 0) {
            eof = true;
            break;
        } else if (n == -EAGAIN) {
            break;
        } else if (n != -EINTR) {
            err = (int)n;
            break;
        }
    }
    /* Data that arrived with the EOF or error still satisfies the read. */
    gust__stream_deliver(s);
    if (eof || err) {
        gust__stream_close_with(s, err);
        return true;
    }
    /* A transport holding data of its own will get no readiness event for
     * it: come back on the next iteration. */
    if (s->custom_tp && !s->closed && s->rkind != GUST__READ_NONE &&
        s->rare->tp->pending && s->rare->tp->pending(s) > 0) {
        s->read_again = true;
        gust__stream_schedule(s);
    }
    return progress;
}

/* Called from the close dispatch: the pending read's final callback. */
void gust__stream_read_on_close(gust_stream *s)
{
    if (s->rkind == GUST__READ_NONE)
        return;
    gust_stream_read_cb cb = s->rcb;
    void *user = s->ruser;
    int kind = s->rkind;
    gust__stream_read_clear(s);
    if (kind != GUST__READ_CLOSE) {
        cb(s, s->error ? s->error : GUST_ESTREAMCLOSED, "", 0, user);
        return;
    }
    size_t len = s->rend - s->rstart;
    const char *p = len ? s->rbuf + s->rstart : "";
    s->rstart = s->rend;
    s->delivering++;
    cb(s, s->error, p, len, user);
    s->delivering--;
}

/* ---- Starting reads ------------------------------------------------------ */

static int read_check(gust_stream *s, gust_stream_read_cb cb)
{
    assert(s);
    if (!cb)
        return -EINVAL;
    if (s->closed)
        return GUST_ESTREAMCLOSED;
    if (s->rkind != GUST__READ_NONE)
        return GUST_EREADPENDING;
    return 0;
}

/* The read is set up: deliver from the buffer on the next iteration if it
 * can be, else wait for the fd. */
static int read_begin(gust_stream *s, int kind, unsigned flags,
                      gust_stream_read_cb cb, void *user)
{
    s->rkind = kind;
    s->rflags = flags & (GUST_READ_PARTIAL | GUST_READ_STREAMING);
    s->rcb = cb;
    s->ruser = user;
    /* Started from a read callback: the delivery loop that called it goes
     * on with this read as soon as the callback returns. */
    if (s->delivering && !s->close_running) {
        gust__stream_update_events(s, true);
        return 0;
    }
    if (s->rend > s->rstart) {
        size_t len;
        int status;
        if (gust__stream_find_read(s, &len, &status) != GUST__FOUND_NONE ||
            s->rend - s->rstart >= s->max_buffer_size) {
            gust__stream_schedule(s);
            return 0;
        }
    }
    gust__stream_update_events(s, true);
    return 0;
}

int gust_stream_read_until(gust_stream *stream, const void *delim,
                           size_t delim_len, size_t max_bytes,
                           gust_stream_read_cb cb, void *user)
{
    gust_stream *s = stream;
    int r = read_check(s, cb);
    if (r < 0)
        return r;
    if (!delim || delim_len == 0)
        return -EINVAL;
    /* Its length is 32-bit: a longer one could never fit the buffer. */
    if (delim_len > UINT32_MAX - 1)
        return -EINVAL;
    char *d = s->r.until.d.inline_;
    if (delim_len > GUST__DELIM_INLINE) {
        d = malloc(delim_len);
        if (!d)
            return -ENOMEM;
        s->r.until.d.heap = d;
    }
    memcpy(d, delim, delim_len);
    s->r.until.len = (uint32_t)delim_len;
    s->r.until.scan = 0;
    s->rn = max_bytes;
    return read_begin(s, GUST__READ_UNTIL, 0, cb, user);
}

int gust_stream_read_until_regex(gust_stream *stream, const char *pattern,
                                 size_t max_bytes, gust_stream_read_cb cb,
                                 void *user)
{
    gust_stream *s = stream;
    int r = read_check(s, cb);
    if (r < 0)
        return r;
    if (!pattern)
        return -EINVAL;
    int errcode;
    PCRE2_SIZE erroff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   0, &errcode, &erroff, NULL);
    if (!re)
        return errcode == PCRE2_ERROR_NOMEMORY ? -ENOMEM : -EINVAL;
    /* JIT is an optimisation: without it pcre2_match interprets. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
        pcre2_code_free(re);
        return -ENOMEM;
    }
    s->r.regex.re = re;
    s->r.regex.md = md;
    s->rn = max_bytes;
    return read_begin(s, GUST__READ_REGEX, 0, cb, user);
}

int gust_stream_read_bytes(gust_stream *stream, size_t n, unsigned flags,
                           gust_stream_read_cb cb, void *user)
{
    gust_stream *s = stream;
    int r = read_check(s, cb);
    if (r < 0)
        return r;
    if (n == 0 || (flags & ~(unsigned)(GUST_READ_PARTIAL | GUST_READ_STREAMING)))
        return -EINVAL;
    s->rn = n;
    return read_begin(s, GUST__READ_BYTES, flags, cb, user);
}

int gust_stream_read_until_close(gust_stream *stream, unsigned flags,
                                 gust_stream_read_cb cb, void *user)
{
    gust_stream *s = stream;
    int r = read_check(s, cb);
    if (r < 0)
        return r;
    if (flags & ~(unsigned)GUST_READ_STREAMING)
        return -EINVAL;
    s->rn = 0;
    return read_begin(s, GUST__READ_CLOSE, flags, cb, user);
}

bool gust_stream_reading(const gust_stream *stream)
{
    return stream->rkind != GUST__READ_NONE;
}
