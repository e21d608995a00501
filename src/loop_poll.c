/* The poll(2) backend: the portable fallback. A dense pollfd array (removal
 * swaps the last entry in), the registration gen of each entry beside it,
 * and a table fd -> position.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "loop_internal.h"

typedef struct poll_state {
    struct pollfd *pfds;
    uint32_t *gens;
    size_t len, cap;
    int *pos;       /* indexed by fd: position in pfds, -1 if absent */
    int pos_cap;
    size_t start;   /* where collection resumes when a batch overflowed */
} poll_state;

static int pl_init(void **state)
{
    poll_state *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    *state = s;
    return 0;
}

static void pl_destroy(void *state)
{
    poll_state *s = state;
    if (!s)
        return;
    free(s->pfds);
    free(s->gens);
    free(s->pos);
    free(s);
}

static short to_poll(unsigned events)
{
    return (short)((events & GUST_READ ? POLLIN : 0) |
                   (events & GUST_WRITE ? POLLOUT : 0));
}

static int reserve(poll_state *s, int fd)
{
    if (fd >= s->pos_cap) {
        int cap = s->pos_cap ? s->pos_cap : 64;
        while (cap <= fd)
            cap *= 2;
        int *pos = realloc(s->pos, (size_t)cap * sizeof *pos);
        if (!pos)
            return -ENOMEM;
        for (int i = s->pos_cap; i < cap; i++)
            pos[i] = -1;
        s->pos = pos;
        s->pos_cap = cap;
    }
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        struct pollfd *pfds = realloc(s->pfds, cap * sizeof *pfds);
        if (!pfds)
            return -ENOMEM;
        s->pfds = pfds;
        uint32_t *gens = realloc(s->gens, cap * sizeof *gens);
        if (!gens)
            return -ENOMEM;
        s->gens = gens;
        s->cap = cap;
    }
    return 0;
}

static int pl_set(void *state, int fd, unsigned old_events,
                  unsigned new_events, bool registered, uint32_t gen)
{
    (void)old_events;
    poll_state *s = state;
    if (registered && fd < s->pos_cap && s->pos[fd] >= 0) {
        s->pfds[s->pos[fd]].events = to_poll(new_events);
        return 0;
    }
    int r = reserve(s, fd);
    if (r < 0)
        return r;
    s->pos[fd] = (int)s->len;
    s->pfds[s->len].fd = fd;
    s->pfds[s->len].events = to_poll(new_events);
    s->pfds[s->len].revents = 0;
    s->gens[s->len] = gen;
    s->len++;
    return 0;
}

static int pl_del(void *state, int fd, unsigned old_events)
{
    (void)old_events;
    poll_state *s = state;
    if (fd >= s->pos_cap || s->pos[fd] < 0)
        return 0;
    size_t i = (size_t)s->pos[fd], last = s->len - 1;
    if (i != last) {
        s->pfds[i] = s->pfds[last];
        s->gens[i] = s->gens[last];
        s->pos[s->pfds[i].fd] = (int)i;
    }
    s->len--;
    s->pos[fd] = -1;
    return 0;
}

static int pl_poll(void *state, int timeout_ms, gust__ready *out, int max)
{
    poll_state *s = state;
    int n = poll(s->pfds, (nfds_t)s->len, timeout_ms);
    if (n < 0)
        return -errno; /* -EINTR: the core waits again */
    if (n == 0 || s->len == 0)
        return 0;
    int count = 0;
    size_t start = s->start < s->len ? s->start : 0;
    for (size_t k = 0; k < s->len; k++) {
        size_t i = (start + k) % s->len;
        short re = s->pfds[i].revents;
        if (!re)
            continue;
        if (count == max) {
            /* Level-triggered: the rest are reported again; start there
             * next time so no fd starves. */
            s->start = i;
            return count;
        }
        out[count].fd = s->pfds[i].fd;
        out[count].gen = s->gens[i];
        out[count].events = (re & (POLLIN | POLLPRI) ? GUST_READ : 0u) |
                            (re & POLLOUT ? GUST_WRITE : 0u) |
                            (re & (POLLERR | POLLHUP | POLLNVAL) ? GUST_ERROR
                                                                 : 0u);
        count++;
    }
    s->start = 0;
    return count;
}

const gust__backend gust__backend_poll = {
    .name = "poll",
    .init = pl_init,
    .destroy = pl_destroy,
    .set = pl_set,
    .del = pl_del,
    .poll = pl_poll,
};
