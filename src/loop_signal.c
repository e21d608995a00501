/* Signals: a sigaction handler that only records the signal in an atomic
 * bitmask and pokes the watching loop's wake-up fd, both async-signal-safe;
 * the loop runs the user's callback from its wake fd handler (phase 4).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "gust/loop.h"
#include "loop_core_internal.h"

/* Signals 1..64 fit the 64-bit pending mask as bit signum - 1. */
#define SIG_SLOTS 65
_Static_assert(NSIG <= SIG_SLOTS, "signal numbers must fit the pending mask");

struct sig_watch {
    gust_loop *loop;
    gust_signal_fn cb;
    void *data;
    struct sigaction old;
};

/* Process-wide, as dispositions are. The handler touches only the atomics;
 * the table is written under the lock by add/remove. */
static pthread_mutex_t sig_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sig_watch sig_watches[SIG_SLOTS];
static atomic_int sig_wake_fd[SIG_SLOTS]; /* fd + 1; 0: none */
static atomic_uint_fast64_t sig_pending;

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "signal handler needs lock-free int");
_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "signal handler needs lock-free 64-bit");

static uint64_t sig_bit(int signum)
{
    return (uint64_t)1 << (signum - 1);
}

static void on_signal(int signum)
{
    int saved = errno; /* the interrupted code may be looking at errno */
    atomic_fetch_or(&sig_pending, sig_bit(signum));
    int fd = atomic_load(&sig_wake_fd[signum]) - 1;
    if (fd >= 0) {
        uint64_t one = 1;
        ssize_t n = write(fd, &one, sizeof one);
        (void)n;
    }
    errno = saved;
}

int gust_loop_add_signal(gust_loop *loop, int signum, gust_signal_fn cb,
                         void *data)
{
    if (signum < 1 || signum >= NSIG || signum == SIGKILL ||
        signum == SIGSTOP || !cb)
        return -EINVAL;
    int r = gust__loop_ensure_backend(loop);
    if (r < 0)
        return r;
    pthread_mutex_lock(&sig_lock);
    struct sig_watch *w = &sig_watches[signum];
    if (w->loop) {
        pthread_mutex_unlock(&sig_lock);
        return -EBUSY;
    }
    /* Everything the handler reads is in place before it is installed. */
    atomic_fetch_and(&sig_pending, ~sig_bit(signum));
    atomic_store(&sig_wake_fd[signum], atomic_load(&loop->wake_wfd) + 1);
    w->loop = loop;
    w->cb = cb;
    w->data = data;
    loop->sig_mask |= sig_bit(signum);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    if (sigaction(signum, &sa, &w->old) < 0) {
        r = -errno;
        atomic_store(&sig_wake_fd[signum], 0);
        memset(w, 0, sizeof *w);
        loop->sig_mask &= ~sig_bit(signum);
    }
    pthread_mutex_unlock(&sig_lock);
    return r;
}

int gust_loop_remove_signal(gust_loop *loop, int signum)
{
    if (signum < 1 || signum >= NSIG || !(loop->sig_mask & sig_bit(signum)))
        return -ENOENT;
    pthread_mutex_lock(&sig_lock);
    struct sig_watch *w = &sig_watches[signum];
    sigaction(signum, &w->old, NULL);
    atomic_store(&sig_wake_fd[signum], 0);
    atomic_fetch_and(&sig_pending, ~sig_bit(signum));
    memset(w, 0, sizeof *w);
    loop->sig_mask &= ~sig_bit(signum);
    pthread_mutex_unlock(&sig_lock);
    return 0;
}

void gust__signal_dispatch(gust_loop *loop)
{
    uint64_t fired = atomic_fetch_and(&sig_pending, ~loop->sig_mask) &
                     loop->sig_mask;
    while (fired) {
        int signum = __builtin_ctzll(fired) + 1;
        fired &= fired - 1;
        /* An earlier callback of this batch may have removed it. */
        if (!(loop->sig_mask & sig_bit(signum)))
            continue;
        struct sig_watch *w = &sig_watches[signum];
        w->cb(loop, signum, w->data);
    }
}
