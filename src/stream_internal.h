/* Internal calls into streams made by the stream layer's other files
 * (stream_tls.c, stream_future.c) and the TCP server (tcp_server.c), and
 * the private layout shared by the stream's own files (stream.c,
 * stream_read.c, stream_write.c, stream_socket.c), which define
 * GUST__STREAM_PRIVATE. Not installed. */
#ifndef GUST_STREAM_INTERNAL_H
#define GUST_STREAM_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "gust/stream.h"
#include "loop_internal.h"

/* Called once, just before the stream's memory is freed (after the user's
 * close callback has returned). The TCP server uses it to count open
 * connections for max_connections without taking the user's close callback.
 * One hook per stream; NULL removes it. */
typedef void (*gust__stream_free_hook)(gust_stream *stream, void *data);
void gust__stream_set_free_hook(gust_stream *stream, gust__stream_free_hook fn,
                                void *data);

/* True once the close callback has run (or is running): a close callback
 * set now would never be called. The stream is then alive only through
 * gust_stream_ref() references. */
bool gust__stream_close_delivered(const gust_stream *stream);

/* gust_stream_new() for a socket just made by accept4(SOCK_NONBLOCK |
 * SOCK_CLOEXEC) (or otherwise known to be a non-blocking, CLOEXEC socket):
 * skips the three syscalls that check it. Same result and ownership. */
gust_stream *gust__stream_new_accepted(gust_loop *loop, int fd,
                                       const gust_stream_options *opts);

/* ---- Transport seam ------------------------------------------------------
 *
 * All I/O on the fd goes through one of these, so that a TLS transport can
 * be added as one file (stream_tls.c) without touching the buffering logic.
 * The plain one (stream_socket.c) calls the kernel directly.
 *
 * Contract: every function returns the byte count (> 0), 0 for end of file
 * (read only), or a negated errno: -EAGAIN when it would block (the core then
 * waits for the fd to be readable / writable), -EINTR is retried by the core,
 * anything else closes the stream with that code. None of them may raise
 * SIGPIPE. */
typedef struct gust__stream_transport {
    const char *name;
    ssize_t (*read)(gust_stream *stream, void *buf, size_t len);
    ssize_t (*writev)(gust_stream *stream, const struct iovec *iov, int iovcnt);
    /* Sends up to len bytes of file_fd from *offset and advances it. NULL:
     * the core reads the file with pread() and sends it with writev().
     * -EINVAL / -ENOSYS also make the core fall back to that. */
    ssize_t (*sendfile)(gust_stream *stream, int file_fd, off_t *offset,
                        size_t len);
    /* Releases the transport's state; called once, just before the core
     * closes the fd. May be NULL. */
    void (*close)(gust_stream *stream);
    /* Adjusts the events the core is about to watch. want is the core's
     * own mask: READ while a read is pending, WRITE while data is queued.
     * TLS returns READ instead of WRITE after SSL_write() wanted to read
     * (a handshake), or adds WRITE after SSL_read() wanted to write. When
     * this is set, every fd event retries the pending read and the queued
     * writes, whatever its kind. NULL: want is used as is. */
    unsigned (*events)(gust_stream *stream, unsigned want);
    /* Bytes already taken from the fd and held by the transport
     * (SSL_pending()). While it is > 0 and a read is pending, the core goes
     * on reading without waiting for the fd. NULL: never any. */
    size_t (*pending)(gust_stream *stream);
    /* Runs first on every fd event once any connect has completed, before
     * the core retries the pending read and the queued writes, so that the
     * transport can move on by itself when neither is pending (a TLS
     * handshake). It may close the stream. Returns whether it moved bytes
     * (counted with the core's own progress when it handles a hang-up).
     * NULL: nothing to do. */
    bool (*on_event)(gust_stream *stream, unsigned events);
} gust__stream_transport;

/* The plain transport for sockets and pipes. */
extern const gust__stream_transport gust__stream_plain_transport;

/* Replaces the stream's transport (e.g. to start TLS on a fresh stream).
 * state is the transport's own, read back with gust__stream_transport_state.
 * Returns 0, or -ENOMEM (nothing changed): a transport other than the
 * plain one is kept in memory the stream makes for it. */
int gust__stream_set_transport(gust_stream *stream,
                                const gust__stream_transport *tp, void *state);
void *gust__stream_transport_state(const gust_stream *stream);

/* ---- Private to the stream's own files ---------------------------------- */

#ifdef GUST__STREAM_PRIVATE

#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

enum gust__read_kind {
    GUST__READ_NONE = 0,
    GUST__READ_UNTIL,
    GUST__READ_REGEX,
    GUST__READ_BYTES,
    GUST__READ_CLOSE,
};

/* What find_read says about the pending read and the buffered data. */
enum gust__read_found {
    GUST__FOUND_NONE = 0, /* not yet: wait for more data */
    GUST__FOUND_READY,    /* deliver *len bytes with *status */
    GUST__FOUND_UNSAT,    /* max_bytes reached without a match */
};

/* One piece of the write queue. Copies coalesce into the tail COPY segment;
 * REF borrows the caller's iovecs; FILE sends a file range. */
/* TURN: like COPY, but the bytes are the loop's turn memory
 * (gust__loop_turn_alloc) until the batched send is done. */
enum gust__wseg_kind { GUST__WSEG_COPY, GUST__WSEG_REF, GUST__WSEG_FILE,
                       GUST__WSEG_TURN };

typedef struct gust__wseg {
    struct gust__wseg *next;
    int kind;
    union {
        struct {
            size_t off; /* first unsent byte */
            size_t len; /* bytes filled */
            size_t cap;
            char *buf;  /* points just after the struct */
        } copy;
        struct {
            struct iovec *iov; /* our copy of the array; points after the struct */
            int cnt;
            int idx;    /* first iovec with unsent bytes */
            size_t off; /* bytes of iov[idx] already sent */
        } ref;
        struct {
            int fd;
            bool no_sendfile; /* sendfile refused this fd: use pread */
            off_t off;
            size_t left;
        } file;
    } u;
} gust__wseg;

/* A write callback, due once the stream's byte count sent reaches at. */
typedef struct gust__wmark {
    uint64_t at;
    gust_stream_write_cb cb;
    void *user;
} gust__wmark;

/* The ring of pending write callbacks, made by the first write that has
 * one (most streams never do) and kept until the stream is freed. Marks
 * count bytes from the ring's making: a mark is due once `sent` reaches
 * its `at`. */
typedef struct gust__wmarks {
    uint32_t cap, head, count;
    uint64_t sent;  /* bytes handed to the kernel since the ring was made */
    gust__wmark m[];
} gust__wmarks;

/* What few streams need, made the first time one of them is: a transport
 * other than the plain one (TLS, tests), a connect in progress, the
 * fallback timer. An accepted server connection never has one. */
typedef struct gust__stream_rare {
    const gust__stream_transport *tp; /* the transport when custom_tp */
    void *tp_state;
    uint32_t max_write_buffer_size; /* when wlimit */
    gust_stream_connect_cb connect_cb;
    void *connect_user;
    /* Fallback for scheduling when add_callback is out of memory; made
     * only then, freed with the stream. */
    gust_timer *timer;
} gust__stream_rare;

#define GUST__DELIM_INLINE 8

/* An idle keep-alive connection holds one of these for as long as it
 * stays open, so every byte counts: sizes are 32 bits (buffers are capped
 * below 4 GiB, as max_buffer_size is), the state of the two kinds of
 * delimited read shares a union, flags that are seldom set are bits, and
 * rarely needed fields live in `rare`. 184 bytes, one 192-byte malloc
 * chunk; keep it there (a static assert in stream.c checks it). */
struct gust_stream {
    gust_loop *loop;
    void *data;
    gust__stream_rare *rare; /* NULL until needed */

    /* Read buffer: live bytes are rbuf[rstart, rend). NULL when empty. */
    char *rbuf;

    /* The pending read. */
    gust_stream_read_cb rcb;
    void *ruser;
    size_t rn;        /* BYTES: bytes still to deliver; UNTIL/REGEX:
                         max_bytes, then the result's length once found */
    union {
        struct {
            union {
                char inline_[GUST__DELIM_INLINE]; /* len <= DELIM_INLINE */
                char *heap;                       /* longer (malloc'd) */
            } d;
            uint32_t len;
            uint32_t scan; /* where the next search starts, from rstart */
        } until;
        struct {
            pcre2_code *re;
            pcre2_match_data *md;
        } regex;
    } r;

    /* Write queue. */
    gust__wseg *whead, *wtail;
    uint64_t wbuffered;      /* bytes accepted, not handed to the kernel yet */
    gust__wmarks *marks;     /* NULL until a write has a callback */

    gust_stream_close_cb close_cb;
    void *close_user;
    gust__stream_free_hook free_hook;
    void *free_hook_data;

    int fd;
    int error;           /* why it closed (0: local close or clean EOF); while
                            open, pf_state ERROR's negated errno */
    int refs;            /* scheduled loop callbacks holding the stream */
    int user_refs;       /* gust_stream_ref(), counted in refs too */
    /* Limits (options above 4 GiB are taken as 4 GiB - 1); the seldom set
     * max_write_buffer_size is in rare. */
    uint32_t read_chunk_size;
    uint32_t max_buffer_size;
    uint32_t rcap, rstart, rend;

    uint8_t delivering;  /* > 0 while a read callback holds a buffer pointer */
    uint8_t events;      /* mask registered with the loop */
    uint8_t rkind;       /* enum gust__read_kind */
    uint8_t pf_state;    /* a batched read's result not taken yet (GUST__PF_*) */
    bool closed;
    bool registered;     /* fd has a handler on the loop */
    bool corked;         /* small writes from a read callback wait in the queue */
    bool found;          /* UNTIL/REGEX: the result's length is in rn */
    bool in_batch;       /* a send is queued in the loop's batch (holds a ref) */
    bool dispatch_queued;
    unsigned rflags : 2;         /* GUST_READ_PARTIAL | GUST_READ_STREAMING */
    unsigned custom_tp : 1;      /* rare->tp, not the plain transport */
    unsigned is_socket : 1;
    unsigned hup_parked : 1;     /* handler removed after a hang-up while idle */
    unsigned close_running : 1;  /* the close dispatch has started */
    unsigned close_done : 1;     /* ... and finished: free when refs reaches 0 */
    unsigned connecting : 1;
    unsigned connect_ready : 1;  /* connect() succeeded at once: cb due in dispatch */
    unsigned read_again : 1;     /* the transport holds data: dispatch reads on */
    unsigned wlimit : 1;         /* rare->max_write_buffer_size applies */
};

/* The stream's transport. */
static inline const gust__stream_transport *gust__stream_tp(const gust_stream *s)
{
    return s->custom_tp ? s->rare->tp : &gust__stream_plain_transport;
}

/* s->rare, made if needed; NULL if out of memory. */
gust__stream_rare *gust__stream_rare_get(gust_stream *s);

/* stream.c */
void gust__stream_close_with(gust_stream *s, int err);
void gust__stream_update_events(gust_stream *s, bool keep_read);
void gust__stream_schedule(gust_stream *s);

/* stream_read.c: per-thread caches of same-sized blocks. */
enum { GUST__CACHE_RBUF, GUST__CACHE_WSEG, GUST__CACHE_KINDS };
void *gust__stream_cache_get(int kind);
bool gust__stream_cache_put(int kind, void *buf);

/* The loop's batched reads and sends (loop_internal.h) for plain sockets:
 * read hooks in stream_read.c, send hooks in stream_write.c. */
enum { GUST__PF_NONE, GUST__PF_DATA, GUST__PF_EOF, GUST__PF_ERROR };
extern const gust__io_ops gust__stream_io_ops;
bool gust__stream_read_target(void *data, size_t *len);
void gust__stream_read_done(void *data, const char *buf, ssize_t res);
void gust__stream_read_finish(void *data);
int gust__stream_write_gather(void *data, struct iovec *iov, int max);
void gust__stream_write_done(void *data, ssize_t res);
/* stream.c: drops a reference taken for the loop, freeing if it was the
 * last one. */
void gust__stream_release(gust_stream *s);

/* stream_read.c */
void gust__stream_read_clear(gust_stream *s);
int gust__stream_find_read(gust_stream *s, size_t *len, int *status);
void gust__stream_deliver(gust_stream *s);
bool gust__stream_handle_read(gust_stream *s);
void gust__stream_read_on_close(gust_stream *s);
void gust__stream_rbuf_release(gust_stream *s);

/* stream_write.c */
bool gust__stream_write_pending(const gust_stream *s);
ssize_t gust__stream_flush(gust_stream *s);
void gust__stream_uncork(gust_stream *s);
void gust__stream_fire_marks(gust_stream *s);
void gust__stream_write_on_close(gust_stream *s);
void gust__stream_write_drop(gust_stream *s);
void gust__stream_write_free(gust_stream *s);

#endif /* GUST__STREAM_PRIVATE */

#endif /* GUST_STREAM_INTERNAL_H */
