/* The epoll backend. Each registration carries (gen << 32 | fd) in
 * data.u64, so the core can tell an event for the current registration of
 * an fd from one collected for an earlier registration of the same number.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop_internal.h"

#define EP_EVENTS 1024

typedef struct epoll_state {
    int epfd;
    struct epoll_event events[EP_EVENTS];
} epoll_state;

static int ep_init(void **state)
{
    epoll_state *s = malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) {
        int r = -errno;
        free(s);
        return r;
    }
    *state = s;
    return 0;
}

static void ep_destroy(void *state)
{
    epoll_state *s = state;
    if (!s)
        return;
    close(s->epfd);
    free(s);
}

static uint32_t to_epoll(unsigned events)
{
    return (events & GUST_READ ? EPOLLIN : 0u) |
           (events & GUST_WRITE ? EPOLLOUT : 0u);
}

static int ep_set(void *state, int fd, unsigned old_events,
                  unsigned new_events, bool registered, uint32_t gen)
{
    (void)old_events;
    epoll_state *s = state;
    struct epoll_event ev = {0};
    ev.events = to_epoll(new_events);
    ev.data.u64 = ((uint64_t)gen << 32) | (uint32_t)fd;
    if (epoll_ctl(s->epfd, registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, fd,
                  &ev) == 0)
        return 0;
    int r = -errno;
    /* The fd was closed and its number reused behind our back: the kernel
     * forgot it, so add it afresh. */
    if (registered && r == -ENOENT &&
        epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) == 0)
        return 0;
    return r;
}

static int ep_del(void *state, int fd, unsigned old_events)
{
    (void)old_events;
    epoll_state *s = state;
    struct epoll_event ev = {0}; /* kernels before 2.6.9 want non-NULL */
    /* ENOENT/EBADF: already gone with its fd, which is what we want. */
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, &ev);
    return 0;
}

static int ep_poll(void *state, int timeout_ms, gust__ready *out, int max)
{
    epoll_state *s = state;
    if (max > EP_EVENTS)
        max = EP_EVENTS;
    int n = epoll_wait(s->epfd, s->events, max, timeout_ms);
    if (n < 0)
        return -errno; /* -EINTR: the core waits again */
    for (int i = 0; i < n; i++) {
        uint32_t e = s->events[i].events;
        uint64_t u = s->events[i].data.u64;
        out[i].fd = (int)(uint32_t)u;
        out[i].gen = (uint32_t)(u >> 32);
        out[i].events = (e & EPOLLIN ? GUST_READ : 0u) |
                        (e & EPOLLOUT ? GUST_WRITE : 0u) |
                        (e & (EPOLLERR | EPOLLHUP) ? GUST_ERROR : 0u);
    }
    return n;
}

const gust__backend gust__backend_epoll = {
    .name = "epoll",
    .init = ep_init,
    .destroy = ep_destroy,
    .set = ep_set,
    .del = ep_del,
    .poll = ep_poll,
};
