/* Internal interface between the loop core (loop.c, loop_core_internal.h)
 * and its backends (loop_epoll.c, loop_poll.c, later loop_kqueue.c), plus
 * the few internal calls the layers above make into the loop: the streams'
 * batched I/O (through stream_internal.h) and process.c's fork check (the
 * process layer sits above the loop, so that call points down). Not
 * installed.
 *
 * A backend is one file implementing one gust__backend. CMake compiles only
 * the backends the platform has; loop.c picks one at backend start-up (the
 * environment variable GUST_LOOP_BACKEND, else the first available in the
 * order epoll, kqueue, poll). Adding a backend touches nothing else.
 */
#ifndef GUST_LOOP_INTERNAL_H
#define GUST_LOOP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "gust/loop.h"

/* One ready fd, as a backend reports it. gen is the generation the core
 * passed to set() when it registered fd: the core drops events whose gen no
 * longer matches its table (the fd was removed, or removed and re-added,
 * earlier in the same batch). */
typedef struct gust__ready {
    int fd;
    unsigned events; /* GUST_READ | GUST_WRITE | GUST_ERROR */
    uint32_t gen;
} gust__ready;

typedef struct gust__backend {
    const char *name;
    /* Creates the kernel object; state goes in *state. Returns 0 or -errno. */
    int (*init)(void **state);
    /* Releases everything init made. */
    void (*destroy)(void *state);
    /* Changes the interest set of fd from old_events to new_events (each a
     * mask of GUST_READ | GUST_WRITE; ERROR is implied while registered).
     * registered says whether fd is in the backend already (false: add it;
     * new_events may be 0 and fd still stays registered for errors).
     * Returns 0 or -errno. */
    int (*set)(void *state, int fd, unsigned old_events, unsigned new_events,
               bool registered, uint32_t gen);
    /* Removes fd. Must not fail for a fd already closed by the caller after
     * this call returns (the core calls it before the fd is closed). */
    int (*del)(void *state, int fd, unsigned old_events);
    /* Waits up to timeout_ms (-1: forever, 0: do not block) and fills at
     * most max entries of out. Returns the count, 0 on timeout, -EINTR, or
     * -errno on failure. */
    int (*poll)(void *state, int timeout_ms, gust__ready *out, int max);
} gust__backend;

#ifdef GUST_HAVE_EPOLL
extern const gust__backend gust__backend_epoll;
#endif
#ifdef GUST_HAVE_KQUEUE
extern const gust__backend gust__backend_kqueue;
#endif
extern const gust__backend gust__backend_poll;

/* ---- Batched socket I/O (io_uring) ----------------------------------------
 *
 * On this kind of machine a system call costs more than the rest of a small
 * request's work, and an event-loop server makes two per request (one read,
 * one send). With io_uring available, the loop makes them in batches: the
 * reads of every readable fd of a turn go to the kernel in one call before
 * the handlers run, and the sends queued during the turn in one call after
 * them. Readiness still comes from the backend (epoll); only the read and
 * the send are batched, and each still happens in the same turn, so the
 * model the layers above see does not change. GUST_IO_URING=0 in the
 * environment turns it off; without io_uring (old kernel, seccomp) the
 * calls are made one by one as before. */
#include <sys/types.h>
#include <sys/uio.h>

typedef struct gust__io_ops {
    /* Whether the next read of this fd is due now, and how much it may
     * take (*len). The loop reads into memory of its own. */
    bool (*read_target)(void *data, size_t *len);
    /* The read's result (res bytes at buf, 0 for EOF, or -errno), before
     * any handler of the turn runs; buf is the loop's until the call
     * returns. */
    void (*read_done)(void *data, const char *buf, ssize_t res);
    /* After the turn's handlers ran; pairs with a read_target that
     * returned true (a reference the caller may hold until then). */
    void (*read_finish)(void *data);
    /* Fills iov with the bytes to send (at most max entries); returns the
     * count, 0 to send nothing through the batch. */
    int (*write_gather)(void *data, struct iovec *iov, int max);
    /* The send's result (bytes sent or -errno); pairs with a successful
     * gust__loop_defer_write. */
    void (*write_done)(void *data, ssize_t res);
} gust__io_ops;

/* Lets the loop batch the reads of fd (registered with data as its
 * handler's data); ops must outlive the loop. A loop takes one set of
 * hooks (the streams'): a call with another set is ignored. */
void gust__loop_set_io_ops(gust_loop *loop, int fd, const gust__io_ops *ops);
/* Queues a send on fd for the batch at the end of this turn: ops->write_gather
 * and write_done are called then. False when nothing is batched now (no
 * io_uring, or outside an iteration): the caller writes itself. */
bool gust__loop_defer_write(gust_loop *loop, int fd, void *data,
                            const gust__io_ops *ops);
/* Sends everything deferred so far (the loop does it before it waits). */
void gust__loop_flush_writes(gust_loop *loop);
/* n bytes that stay valid until the current batch of sends is done (the
 * end of the next gust__loop_flush_writes), for the bytes of a deferred
 * send: they then need no malloc'd copy each. NULL when not batching or n
 * is large; the caller copies into its own memory instead. */
void *gust__loop_turn_alloc(gust_loop *loop, size_t n);

/* The calling thread's current loop, or NULL; never creates one. */
gust_loop *gust__loop_current_if_any(void);

/* True if forking now would leave the children sharing this loop's kernel
 * state: the backend has been started (an fd registered, or the loop run). */
bool gust__loop_in_use(const gust_loop *loop);

#endif /* GUST_LOOP_INTERNAL_H */
