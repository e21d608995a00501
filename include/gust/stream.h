/* Buffered non-blocking streams (Tornado's IOStream).
 *
 * A gust_stream wraps a connected (or connecting) non-blocking socket or pipe
 * and registers with its loop only for the events it currently needs: READ
 * while a read is pending, WRITE while data is queued (ERROR always).
 *
 * READS. One read may be pending at a time (a second one fails with
 * GUST_EREADPENDING). When the fd is readable the stream reads until EAGAIN
 * (bounded per event so one fast peer cannot starve the loop), then tries to
 * satisfy the pending read from its buffer. A read callback receives
 *     cb(stream, status, data, len, user)
 * where data points into the stream's buffer and is valid only until the
 * callback returns; those bytes are consumed when it returns (a read started
 * inside the callback sees only what follows them). data is never NULL, even
 * when len is 0. status is
 *     0                 the read is complete; data/len are its result;
 *     GUST_STREAM_CHUNK a streamed chunk (GUST_READ_STREAMING), more follow;
 *     < 0               the read failed: GUST_ESTREAMCLOSED (closed before
 *                       it could be satisfied; data/len hold nothing),
 *                       GUST_EUNSATISFIABLE (max_bytes reached; the stream
 *                       stays open and the data stays buffered), or the
 *                       errno that closed the stream.
 * A callback is never run inside the call that registered it: data that is
 * already buffered is delivered on the next loop iteration (for a read
 * started inside a read callback: as soon as that callback returns, which
 * is how pipelined requests are taken from one read). Data that arrived
 * together with an end of file or a reset still completes the pending read
 * before the stream closes. An idle stream holds no read buffer: the buffer
 * is given back (to a small per-thread cache) whenever it becomes empty.
 *
 * WRITES. gust_stream_write() tries the syscall at once and copies only what
 * the kernel did not take (inside a loop iteration, on a plain socket with
 * the loop's io_uring batches on, the bytes are queued and sent with the
 * other sends of the phase when it ends: loop.h, BATCHED SOCKET I/O; a
 * gust_stream_close() first sends what is queued so, as it would have been
 * without batches); gust_stream_write_ref() borrows the caller's
 * buffers until its callback; gust_stream_sendfile() sends a file range. The
 * queue goes out with writev() in order. A write callback
 *     cb(stream, status, user)
 * runs once its bytes have all been handed to the kernel (status 0), or with
 * a negative status if the stream closed first. Callbacks run in the order
 * the writes were made. A write that meets a fatal error (EPIPE,
 * ECONNRESET...) at once is still accepted (returns 0): the stream closes
 * with that error and the callback gets GUST_ESTREAMCLOSED.
 * Inside a read callback, while more input is already buffered behind the
 * data being delivered, small writes (up to 16 KiB each) are gathered and
 * sent when the delivery returns, so the answers to pipelined requests
 * delivered from one read leave in one writev(). A bigger write, write_ref,
 * sendfile or gust_stream_close() sends what was gathered first; the order of
 * the bytes is always the order of the calls.
 *
 * SIGPIPE. Writing never raises SIGPIPE, so the process need not ignore it:
 * sockets are written with MSG_NOSIGNAL; around writev() on a pipe and
 * sendfile() (which have no such flag) SIGPIPE is blocked in the calling
 * thread and the one the call raised is discarded. A broken pipe closes the
 * stream with -EPIPE.
 *
 * CLOSING. gust_stream_close(), a peer hang-up, an I/O error or a buffer
 * overflow closes the fd at once. Then, on a later loop iteration and after
 * callbacks already queued: the pending read's callback (if any, with an
 * error status, or for read_until_close with status 0 and the remaining
 * data), pending write callbacks (with GUST_ESTREAMCLOSED, or 0 for a write
 * whose bytes had all reached the kernel), and last the close callback,
 * exactly once. (A connect still in progress gets its callback
 * first, with the error or GUST_ESTREAMCLOSED.) The stream is freed after the
 * close callback returns; the pointer must not be used after that, unless a
 * reference taken with gust_stream_ref() keeps the memory (see Closing).
 * A peer that hangs up while the stream neither reads nor writes is noticed
 * by the next read or write (the data it sent before is still delivered).
 */
#ifndef GUST_STREAM_H
#define GUST_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "gust/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gust_stream gust_stream;

/* status of a streamed chunk (> 0, so not an error). */
#define GUST_STREAM_CHUNK 1

/* Flags for reads. */
enum gust_read_flags {
    /* read_bytes: complete as soon as at least one byte is available, with
     * up to n bytes (Tornado's partial=True). */
    GUST_READ_PARTIAL = 1u << 0,
    /* read_bytes / read_until_close: deliver data as it arrives with status
     * GUST_STREAM_CHUNK, then a final call with status 0 (and len 0, or the
     * last bytes) when the read is complete (Tornado's streaming_callback). */
    GUST_READ_STREAMING = 1u << 1,
};

typedef void (*gust_stream_read_cb)(gust_stream *stream, int status,
                                    const char *data, size_t len, void *user);
typedef void (*gust_stream_write_cb)(gust_stream *stream, int status,
                                     void *user);
typedef void (*gust_stream_close_cb)(gust_stream *stream, void *user);
typedef void (*gust_stream_connect_cb)(gust_stream *stream, int status,
                                       void *user);

typedef struct gust_stream_options {
    /* Largest amount of unread data the stream will buffer; a pending read
     * that needs more closes the stream with GUST_EBUFFERFULL. 0: the
     * default, 100 MiB (as Tornado). */
    size_t max_buffer_size;
    /* Largest amount of unsent data gust_stream_write() will queue; a write
     * beyond it fails with GUST_EBUFFERFULL and queues nothing. 0: the
     * default cap, 64 MiB of bytes held in memory (copies made by
     * gust_stream_write(); file ranges of gust_stream_sendfile() and the
     * caller's buffers of gust_stream_write_ref() do not count), so that
     * a peer that reads nothing cannot make a writer that ignores
     * back-pressure fill memory. A set value counts every queued byte.
     * Writers that queue more at once set a larger value, or check
     * gust_stream_write_buffer_size() and wait for a write callback. */
    size_t max_write_buffer_size;
    /* Bytes asked of each read(). 0: the default, 64 KiB. */
    size_t read_chunk_size;
    /* (Each limit is kept in 32 bits: a value of 4 GiB or more counts as
     * 4 GiB - 1.) */
} gust_stream_options;

/* Wraps fd, which must be a socket or pipe; it is made non-blocking and
 * CLOEXEC. The stream owns fd from now on and closes it. opts may be NULL
 * (defaults). Returns NULL with errno set on failure (fd is then left open). */
gust_stream *gust_stream_new(gust_loop *loop, int fd,
                             const gust_stream_options *opts);

/* The loop and fd the stream uses (fd is -1 once closed). */
gust_loop *gust_stream_loop(const gust_stream *stream);
int gust_stream_fd(const gust_stream *stream);

/* User data carried by the stream, for whatever owns it. */
void gust_stream_set_data(gust_stream *stream, void *data);
void *gust_stream_data(const gust_stream *stream);

/* ---- Connecting -------------------------------------------------------- */

/* Starts a non-blocking connect() of the stream's socket to addr. cb (may be
 * NULL) runs once: status 0 when connected, else the negated errno
 * (-ECONNREFUSED, ...), after which the stream is closed (the close callback
 * runs after cb). A failure connect() reports at once (e.g. ECONNREFUSED on a
 * unix socket) is reported through cb the same way. Reads and writes may be
 * queued before the connect completes; they start once it does.
 * Returns 0, or a negative code (nothing is called) if it cannot start:
 * GUST_ESTREAMCLOSED, -EALREADY (a connect is under way), -ENOMEM (the few
 * bytes a connecting stream keeps could not be allocated), or connect()'s
 * own misuse errors (-EISCONN, -EAFNOSUPPORT, -EINVAL, -ENOTSOCK...). */
int gust_stream_connect(gust_stream *stream, const struct sockaddr *addr,
                        socklen_t addrlen, gust_stream_connect_cb cb,
                        void *user);

/* ---- Reading ----------------------------------------------------------- */

/* Reads until delim (delim_len >= 1 bytes) has been seen; the result ends
 * with the delimiter. max_bytes > 0 bounds the result including the
 * delimiter: once that many bytes are buffered without a match the callback
 * gets GUST_EUNSATISFIABLE and the stream stays open. 0: no bound except
 * max_buffer_size. delim is copied. The search resumes where the previous
 * one stopped, so a head arriving in many pieces is scanned once.
 * Returns 0, GUST_EREADPENDING, GUST_ESTREAMCLOSED, -EINVAL (no delimiter,
 * one of 4 GiB or more, NULL cb) or -ENOMEM. */
int gust_stream_read_until(gust_stream *stream, const void *delim,
                           size_t delim_len, size_t max_bytes,
                           gust_stream_read_cb cb, void *user);

/* Reads until the PCRE2 pattern matches the buffered data; the result ends
 * with the end of the match. Same max_bytes rules as read_until. The
 * pattern is compiled (with JIT where available) at each call and freed when
 * the read ends; an invalid pattern returns -EINVAL. A match that PCRE2
 * cannot complete (its match or depth limits) ends the read with
 * GUST_EUNSATISFIABLE rather than buffering forever. */
int gust_stream_read_until_regex(gust_stream *stream, const char *pattern,
                                 size_t max_bytes, gust_stream_read_cb cb,
                                 void *user);

/* Reads exactly n bytes (n >= 1), or with GUST_READ_PARTIAL between 1 and n
 * bytes as soon as any are available, or with GUST_READ_STREAMING in chunks
 * as they arrive until n bytes have been delivered. */
int gust_stream_read_bytes(gust_stream *stream, size_t n, unsigned flags,
                           gust_stream_read_cb cb, void *user);

/* Reads until the peer closes; the callback then gets status 0 and all the
 * data (or, with GUST_READ_STREAMING, chunks then a final status 0 with no
 * data). A local gust_stream_close() also ends it with status 0. If the
 * stream closes on an error instead (-ECONNRESET, ...), the final call gets
 * that error, with whatever data was still buffered (possibly truncated).
 * Exceeding max_buffer_size without GUST_READ_STREAMING closes the stream
 * with GUST_EBUFFERFULL. */
int gust_stream_read_until_close(gust_stream *stream, unsigned flags,
                                 gust_stream_read_cb cb, void *user);

/* True while a read is pending (after a close, until its callback ran). */
bool gust_stream_reading(const gust_stream *stream);

/* ---- Writing ----------------------------------------------------------- */

/* Queues len bytes for sending, copying whatever cannot be written at once
 * (consecutive small copies share one buffer). When nothing is queued the
 * bytes go to the kernel inside this call (small writes in a read callback:
 * when the callback returns, see WRITES). cb (may be NULL) runs when they
 * have all been handed to the kernel, never inside this call (len 0: after
 * the writes before it). Returns 0, GUST_ESTREAMCLOSED, GUST_EBUFFERFULL
 * (the queue would pass max_write_buffer_size, or by default 64 MiB held
 * in memory: checked before anything is sent, and nothing of this call is
 * queued), or -ENOMEM. Memory: once this thread's write queues have held
 * more than 8 MiB of copies and fall below 1 MiB again, the heap is
 * trimmed (malloc_trim), so a peak leaves no resident memory behind. */
int gust_stream_write(gust_stream *stream, const void *data, size_t len,
                      gust_stream_write_cb cb, void *user);

/* Queues iovcnt buffers without copying them: the caller keeps them valid and
 * unchanged until cb runs (cb is required). The iovec array itself is
 * copied. Returns 0, GUST_ESTREAMCLOSED, -EINVAL or -ENOMEM. */
int gust_stream_write_ref(gust_stream *stream, const struct iovec *iov,
                          int iovcnt, gust_stream_write_cb cb, void *user);

/* Queues len bytes of file_fd starting at offset, sent with sendfile() where
 * possible (else read with pread() and written). file_fd must stay open
 * until cb runs (cb is required). If the file turns out shorter than
 * offset + len the stream closes with -EIO. Returns 0, GUST_ESTREAMCLOSED,
 * -EINVAL or -ENOMEM. */
int gust_stream_sendfile(gust_stream *stream, int file_fd, off_t offset,
                         size_t len, gust_stream_write_cb cb, void *user);

/* True while written data has not all been handed to the kernel. */
bool gust_stream_writing(const gust_stream *stream);

/* Bytes queued but not yet sent (0 once closed: close drops them). */
size_t gust_stream_write_buffer_size(const gust_stream *stream);

/* ---- Closing ----------------------------------------------------------- */

/* Sets the callback run once after the stream closes (see CLOSING above);
 * the stream is freed when it returns (unless references are held, see
 * gust_stream_ref()). NULL removes it. Set after the close callback has run,
 * it is never called. */
void gust_stream_set_close_callback(gust_stream *stream,
                                    gust_stream_close_cb cb, void *user);

/* Closes the fd now and schedules the pending callbacks and the close
 * callback. Safe from inside any of the stream's callbacks; a second call is
 * a no-op. Queued unsent data is dropped: to close after sending, close from
 * the last write's callback. (Writes gathered inside the current read
 * callback, see WRITES, get the one non-blocking try they would have had.) */
void gust_stream_close(gust_stream *stream);

/* True once the stream is closed (the pointer stays valid until the close
 * callback has returned). */
bool gust_stream_closed(const gust_stream *stream);

/* Why the stream closed: 0 for a local close or a clean EOF from the peer,
 * else a negative code (-ECONNRESET, GUST_EBUFFERFULL, ...). */
int gust_stream_error(const gust_stream *stream);

/* Keeps the stream's memory valid after its close callback, until the
 * matching gust_stream_unref() (the fd is closed as usual; every call
 * but gust_stream_closed/_error/_unref then fails with
 * GUST_ESTREAMCLOSED). For code that learns of the close later, such as
 * a coroutine resumed by a future.
 * Calls that return nothing (close, set_close_callback) are then no-ops,
 * accessors (gust_stream_data, _loop) still answer and gust_stream_fd() is
 * -1. Dropping the last reference of a stream that is not closed yet frees
 * nothing: it is freed after its close callback, as without references.
 * An unref without a matching ref is a programming error (assert). Used on
 * the stream's loop thread only. */
void gust_stream_ref(gust_stream *stream);
void gust_stream_unref(gust_stream *stream);

/* Sets TCP_NODELAY on a TCP stream (ignored for other fds). Returns 0 or a
 * negated errno. */
int gust_stream_set_nodelay(gust_stream *stream, bool on);

/* ---- Futures (for coroutines) ----------------------------------------- */
/* The same operations as futures, for gust_await() (src/stream_future.c,
 * built on the calls above):
 *
 *     gust_value line;
 *     int r = gust_await(gust_stream_read_until_f(s, "\n", 1, 4096), &line);
 *     if (r == 0) {
 *         gust_bytes *b = line.ptr;      ... b->data, b->len ...
 *         r = gust_await(gust_stream_write_f(s, b->data, b->len), NULL);
 *         gust_value_free(&line);
 *     }
 *
 * Each returns a future (one reference for the caller, as everywhere in
 * Gust) that completes with status 0, or with the error the callback form
 * would have given (GUST_ESTREAMCLOSED, GUST_EUNSATISFIABLE, -ECONNRESET,
 * ...). An error the call itself reports at once (GUST_EREADPENDING, a
 * closed stream, -EINVAL) comes back the same way: as a future already
 * failed with it, so awaiting code has one place to look. NULL only when
 * out of memory (errno set).
 * A read's result is a gust_value whose ptr is a gust_bytes holding a copy
 * of the data, owned by the future until taken (gust_await(f, &v),
 * gust_future_take()); free it with gust_value_free().
 * Cancelling one of these futures does not stop the operation (streams have
 * no way to withdraw a read): the read stays pending on the stream and its
 * data is dropped when it arrives. Close the stream to stop it.
 * Streaming reads (GUST_READ_STREAMING) have no future form.
 *
 * LIFETIME. A stream is freed after its close callback (see CLOSING), and
 * the futures of operations still pending are completed from that same
 * close (with an error, or with 0 for a write whose bytes had left). Each
 * pending future therefore holds a reference to its stream
 * (gust_stream_ref()), dropped one loop iteration after the future's
 * callbacks have run: a coroutine resumed by the future, directly or
 * through one gust_all(), gust_any() or gust_with_timeout(), finds the
 * stream valid, closed (gust_stream_closed() true, every operation failing
 * with GUST_ESTREAMCLOSED). (So a loop being torn down needs an iteration
 * or two after the last stream future completes.) Code that keeps the
 * pointer across other waits (a sleep, a queue, a lock) holds its own
 * reference for as long as it uses it:
 *
 *     gust_stream_ref(s);
 *     for (;;) {
 *         if (gust_await(gust_stream_read_until_f(s, "\n", 1, 0), &v) < 0)
 *             break;                  (closed or not: still valid)
 *         ... await anything ...
 *     }
 *     gust_stream_close(s);               (a no-op if it is closed)
 *     gust_stream_unref(s);               (s may be freed here)
 */
#include "gust/future.h"

/* The bytes of a read: len bytes at data, followed by a '\0' that is not
 * counted (so text can be used as a C string). */
typedef struct gust_bytes {
    size_t len;
    char data[];
} gust_bytes;

/* gust_stream_read_until() as a future of gust_bytes. */
GUST_MUST_USE gust_future *gust_stream_read_until_f(gust_stream *stream,
                                                    const void *delim,
                                                    size_t delim_len,
                                                    size_t max_bytes);

/* gust_stream_read_until_regex() as a future of gust_bytes. */
GUST_MUST_USE gust_future *gust_stream_read_until_regex_f(gust_stream *stream,
                                                          const char *pattern,
                                                          size_t max_bytes);

/* gust_stream_read_bytes() as a future of gust_bytes. flags may hold
 * GUST_READ_PARTIAL; GUST_READ_STREAMING gives a future failed with
 * -EINVAL. */
GUST_MUST_USE gust_future *gust_stream_read_bytes_f(gust_stream *stream,
                                                    size_t n, unsigned flags);

/* gust_stream_read_until_close() as a future of gust_bytes: everything up to
 * the peer's close (or a local close). If the stream closes on an error
 * instead, the future fails with it and the data received is dropped. */
GUST_MUST_USE gust_future *gust_stream_read_until_close_f(gust_stream *stream);

/* gust_stream_write() (data is copied as needed) as a future done with
 * {NULL, NULL} once the bytes are all handed to the kernel. */
GUST_MUST_USE gust_future *gust_stream_write_f(gust_stream *stream,
                                               const void *data, size_t len);

/* gust_stream_connect() as a future done with {NULL, NULL} once connected;
 * on failure it fails with the negated errno and the stream closes (as
 * gust_stream_connect() says). */
GUST_MUST_USE gust_future *gust_stream_connect_f(gust_stream *stream,
                                                 const struct sockaddr *addr,
                                                 socklen_t addrlen);

/* A future that completes when the stream closes, from its close callback.
 * Like the others it holds the stream until its callbacks have run (see
 * LIFETIME); after that only a reference of the caller's keeps the pointer
 * valid. Its status is 0 and its result's ptr holds
 * gust_stream_error() as an intptr_t (0 for a local close or a clean EOF,
 * else the error). It takes over the stream's close callback: do not set
 * another one afterwards (that one would run instead and this future would
 * never complete). On a stream closed already (its close callback still to
 * come) it completes when that callback would have run; on one whose close
 * callback has run (kept by gust_stream_ref()) it is done at once. */
GUST_MUST_USE gust_future *gust_stream_closed_f(gust_stream *stream);

/* net.h's gust_tcp_connect() (resolve host, then connect to port, trying
 * each address) as a future whose result's ptr is the connected
 * gust_stream *. Whoever takes the result owns the stream (close it with
 * gust_stream_close()); a result never taken is closed when the future is
 * freed, and a connection that completes after the future was cancelled is
 * closed at once. Fails with what gust_tcp_connect() reports (-ENOENT for
 * an unknown host, -ECONNREFUSED, ...). opts may be NULL. */
GUST_MUST_USE gust_future *gust_tcp_connect_f(gust_loop *loop,
                                              const char *host, int port,
                                              const gust_stream_options *opts);

#ifdef __cplusplus
}
#endif

#endif /* GUST_STREAM_H */
