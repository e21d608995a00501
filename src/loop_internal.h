/* Internal interface between the loop core (loop.c) and its backends
 * (loop_epoll.c, loop_poll.c, later loop_kqueue.c), plus the few internal
 * calls other modules make into the loop. Not installed.
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
     * most max entries of out. Returns the count, 0 on timeout or EINTR, or
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

/* The calling thread's current loop, or NULL; never creates one. */
gust_loop *gust__loop_current_if_any(void);

/* True if forking now would leave the children sharing this loop's kernel
 * state: the backend has been started (an fd registered, or the loop run). */
bool gust__loop_in_use(const gust_loop *loop);

#endif /* GUST_LOOP_INTERNAL_H */
