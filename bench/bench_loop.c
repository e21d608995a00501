/* Event loop micro-benchmarks. Prints one line per figure, "name: value unit".
 * Bounded: each part stops after a fixed count or a few seconds at most.
 * Run from a release build: build/rel/bench/bench_loop
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gust/loop.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_loop: %s failed\n", what);
    exit(1);
}

/* ---- Timers: schedule N gust_timers with spread deadlines, fire them --- */

#define N_TIMERS 1000000

static size_t timers_fired;

static void noop_cb(gust_loop *loop, void *data)
{
    (void)loop;
    (void)data;
}

static void timer_cb(gust_timer *t, void *data)
{
    (void)t;
    (void)data;
    timers_fired++;
}

static bool timers_done(gust_loop *loop, void *data)
{
    (void)loop;
    return timers_fired >= *(size_t *)data;
}

/* The measured parts run inside a loop callback, where timers use the
 * cached time as loop code does (outside an iteration each start reads the
 * clock). */
struct timer_bench {
    gust_timer *timers;
    double *delays;
    gust_timeout *ids;
    double sched, restart, stop, call_later, remove;
};

static void timer_bench_schedule(gust_loop *loop, void *data)
{
    (void)loop;
    struct timer_bench *b = data;
    double t0 = now_s();
    for (size_t i = 0; i < N_TIMERS; i++)
        if (gust_timer_start(&b->timers[i], b->delays[i], 0, timer_cb, NULL))
            die("gust_timer_start");
    b->sched = now_s() - t0;
}

static void timer_bench_rest(gust_loop *loop, void *data)
{
    struct timer_bench *b = data;
    /* Restart (reschedule) of active timers: what connections do with
     * their idle timeouts. */
    for (size_t i = 0; i < N_TIMERS; i++)
        gust_timer_start(&b->timers[i], 10 + b->delays[i], 0, timer_cb, NULL);
    double t0 = now_s();
    for (size_t i = 0; i < N_TIMERS; i++)
        gust_timer_start(&b->timers[i], 20 + b->delays[(i * 7) % N_TIMERS], 0,
                         timer_cb, NULL);
    double t1 = now_s();
    for (size_t i = 0; i < N_TIMERS; i++)
        gust_timer_stop(&b->timers[i]);
    double t2 = now_s();
    b->restart = t1 - t0;
    b->stop = t2 - t1;

    /* call_later + remove_timeout; a first round fills the node pool. */
    for (int round = 0; round < 2; round++) {
        t0 = now_s();
        for (size_t i = 0; i < N_TIMERS; i++)
            if (!(b->ids[i] = gust_loop_call_later(loop, 1 + b->delays[i],
                                                   noop_cb, NULL)))
                die("call_later");
        t1 = now_s();
        for (size_t i = 0; i < N_TIMERS; i++)
            if (!gust_loop_remove_timeout(loop, b->ids[i]))
                die("remove_timeout");
        t2 = now_s();
        b->call_later = t1 - t0;
        b->remove = t2 - t1;
    }
}

static void bench_timers(void)
{
    gust_loop *loop = gust_loop_new();
    struct timer_bench b = {0};
    b.timers = malloc(N_TIMERS * sizeof *b.timers);
    b.delays = malloc(N_TIMERS * sizeof *b.delays);
    b.ids = malloc(N_TIMERS * sizeof *b.ids);
    if (!loop || !b.timers || !b.delays || !b.ids)
        die("timer setup");
    /* Deadlines spread over 20 ms, in random order, starting late enough
     * that none is due before scheduling ends. */
    unsigned seed = 1;
    for (size_t i = 0; i < N_TIMERS; i++)
        b.delays[i] = 0.2 + (double)(rand_r(&seed) % 20000) * 1e-6;
    /* A first round faults in the timers and the heap, so the figures are
     * the loop's cost, not the kernel's. */
    for (size_t i = 0; i < N_TIMERS; i++) {
        gust_timer_init(loop, &b.timers[i]);
        if (gust_timer_start(&b.timers[i], 1, 0, timer_cb, NULL) != 0)
            die("gust_timer_start");
    }
    for (size_t i = 0; i < N_TIMERS; i++)
        gust_timer_stop(&b.timers[i]);

    timers_fired = 0;
    gust_loop_add_callback(loop, timer_bench_schedule, &b);
    gust_loop_run_once(loop, 0);
    /* Wait until every deadline has passed, so firing is measured alone. */
    usleep(250000);
    size_t goal = N_TIMERS;
    double t0 = now_s();
    if (gust_loop_run_until(loop, timers_done, &goal, 30) != 0)
        die("run timers");
    double fire = now_s() - t0;

    gust_loop_add_callback(loop, timer_bench_rest, &b);
    gust_loop_run_once(loop, 0);
    printf("timers scheduled (1M, spread deadlines): %.0f timers/s\n",
           N_TIMERS / b.sched);
    printf("timers fired (1M): %.0f timers/s\n", N_TIMERS / fire);
    printf("timers restarted (1M active): %.0f timers/s\n",
           N_TIMERS / b.restart);
    printf("timers stopped (1M active): %.0f timers/s\n", N_TIMERS / b.stop);
    printf("call_later (1M pending): %.0f timeouts/s\n",
           N_TIMERS / b.call_later);
    printf("remove_timeout (1M pending): %.0f timeouts/s\n",
           N_TIMERS / b.remove);
    free(b.ids);
    free(b.delays);
    free(b.timers);
    if (gust_loop_free(loop) != 0)
        die("free");
}

/* ---- Callbacks ---------------------------------------------------------- */

#define CHAIN_MAX 3000000
#define BATCH_WIDTH 1000

static size_t chain_count, chain_goal;

static void chain_cb(gust_loop *loop, void *data)
{
    (void)data;
    if (++chain_count < chain_goal && gust_loop_add_callback(loop, chain_cb,
                                                             NULL) != 0)
        die("add_callback");
}

static bool chain_done(gust_loop *loop, void *data)
{
    (void)loop;
    (void)data;
    return chain_count >= chain_goal;
}

static void bench_callbacks(void)
{
    gust_loop *loop = gust_loop_new();
    if (!loop)
        die("loop");
    /* One callback per iteration: each costs a whole iteration, including
     * a non-blocking wait. */
    chain_count = 0;
    chain_goal = CHAIN_MAX;
    gust_loop_add_callback(loop, chain_cb, NULL);
    double t0 = now_s();
    if (gust_loop_run_until(loop, chain_done, NULL, 3) != 0) {
        /* Bounded in time: report what ran. */
        chain_goal = chain_count;
        gust_loop_run_once(loop, 0);
    }
    double t1 = now_s();
    printf("callback chain (1 per iteration): %.0f callbacks/s\n",
           (double)chain_count / (t1 - t0));

    /* BATCH_WIDTH chains side by side: the cost of the callback phase. */
    chain_count = 0;
    chain_goal = CHAIN_MAX * 4;
    for (int i = 0; i < BATCH_WIDTH; i++)
        gust_loop_add_callback(loop, chain_cb, NULL);
    t0 = now_s();
    if (gust_loop_run_until(loop, chain_done, NULL, 3) != 0) {
        chain_goal = chain_count;
        while (gust_loop_run_once(loop, 0) == 0 && chain_count < chain_goal +
                                                      BATCH_WIDTH)
            ;
    }
    /* Drain what is still queued. */
    for (int i = 0; i < 3; i++)
        gust_loop_run_once(loop, 0);
    t1 = now_s();
    printf("callbacks (%d per iteration): %.0f callbacks/s\n", BATCH_WIDTH,
           (double)chain_count / (t1 - t0));
    if (gust_loop_free(loop) != 0)
        die("free");
}

/* ---- fd dispatch: level-triggered readable sockets, never read ---------- */

#define N_SOCKS 100

static size_t fd_events;

static void fd_cb(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    (void)data;
    fd_events++;
}

static void bench_fd_dispatch(void)
{
    gust_loop *loop = gust_loop_new();
    if (!loop)
        die("loop");
    int socks[N_SOCKS][2];
    for (int i = 0; i < N_SOCKS; i++) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, socks[i]) < 0)
            die("socketpair");
        if (write(socks[i][1], "x", 1) != 1)
            die("write");
        if (gust_loop_add_handler(loop, socks[i][0], GUST_READ, fd_cb, NULL))
            die("add_handler");
    }
    fd_events = 0;
    double t0 = now_s(), t1;
    int iterations = 0;
    do {
        for (int i = 0; i < 1000; i++)
            gust_loop_run_once(loop, 0);
        iterations += 1000;
        t1 = now_s();
    } while (t1 - t0 < 1.0);
    printf("fd events dispatched (%d ready fds, %s): %.0f events/s\n",
           N_SOCKS, gust_loop_backend(loop), (double)fd_events / (t1 - t0));
    printf("iterations with %d ready fds: %.0f iterations/s\n", N_SOCKS,
           iterations / (t1 - t0));

    /* update_handler flipping READ <-> READ|WRITE: one epoll_ctl each. */
    t0 = now_s();
    for (int i = 0; i < 200000; i++)
        gust_loop_update_handler(loop, socks[i % N_SOCKS][0],
                                 i / N_SOCKS % 2 ? GUST_READ
                                                 : GUST_READ | GUST_WRITE);
    t1 = now_s();
    printf("update_handler (mask change): %.0f calls/s\n", 200000 / (t1 - t0));
    t0 = now_s();
    for (int i = 0; i < 10000000; i++)
        gust_loop_update_handler(loop, socks[i % N_SOCKS][0], GUST_READ);
    t1 = now_s();
    printf("update_handler (same mask): %.0f calls/s\n",
           10000000 / (t1 - t0));
    for (int i = 0; i < N_SOCKS; i++) {
        gust_loop_remove_handler(loop, socks[i][0]);
        close(socks[i][0]);
        close(socks[i][1]);
    }
    if (gust_loop_free(loop) != 0)
        die("free");
}

/* ---- Cross-thread wake-up round trip ------------------------------------ */

#define N_ROUNDS 20000

struct rt {
    gust_loop *loop;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int answered; /* round number the loop answered */
    bool quit;
};

static void rt_answer(gust_loop *loop, void *data)
{
    struct rt *rt = data;
    pthread_mutex_lock(&rt->lock);
    rt->answered++;
    pthread_cond_signal(&rt->cond);
    pthread_mutex_unlock(&rt->lock);
    (void)loop;
}

static void rt_quit(gust_loop *loop, void *data)
{
    ((struct rt *)data)->quit = true;
    gust_loop_stop(loop);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double *rt_samples;

static void *rt_client(void *arg)
{
    struct rt *rt = arg;
    for (int i = 0; i < N_ROUNDS; i++) {
        double t0 = now_s();
        if (gust_loop_add_callback_threadsafe(rt->loop, rt_answer, rt) != 0)
            die("add_callback_threadsafe");
        pthread_mutex_lock(&rt->lock);
        while (rt->answered <= i)
            pthread_cond_wait(&rt->cond, &rt->lock);
        pthread_mutex_unlock(&rt->lock);
        rt_samples[i] = (now_s() - t0) * 1e6;
    }
    gust_loop_add_callback_threadsafe(rt->loop, rt_quit, rt);
    return NULL;
}

static void bench_round_trip(void)
{
    struct rt rt = {0};
    rt.loop = gust_loop_new();
    rt_samples = malloc(N_ROUNDS * sizeof *rt_samples);
    if (!rt.loop || !rt_samples)
        die("round trip setup");
    pthread_mutex_init(&rt.lock, NULL);
    pthread_cond_init(&rt.cond, NULL);
    gust_loop_run_once(rt.loop, 0); /* start the backend: a blocking wait */
    pthread_t th;
    if (pthread_create(&th, NULL, rt_client, &rt) != 0)
        die("pthread_create");
    gust_loop_start(rt.loop);
    pthread_join(th, NULL);
    qsort(rt_samples, N_ROUNDS, sizeof *rt_samples, cmp_double);
    double sum = 0;
    for (int i = 0; i < N_ROUNDS; i++)
        sum += rt_samples[i];
    printf("cross-thread round trip mean: %.1f us\n", sum / N_ROUNDS);
    printf("cross-thread round trip p50: %.1f us\n",
           rt_samples[N_ROUNDS / 2]);
    printf("cross-thread round trip p99: %.1f us\n",
           rt_samples[N_ROUNDS * 99 / 100]);
    free(rt_samples);
    pthread_mutex_destroy(&rt.lock);
    pthread_cond_destroy(&rt.cond);
    if (gust_loop_free(rt.loop) != 0)
        die("free");
}

/* ---- Threadsafe burst: many posts, few wake-ups ------------------------- */

#define BURST_THREADS 4
#define BURST_PER_THREAD 500000

static size_t burst_count;

static void burst_cb(gust_loop *loop, void *data)
{
    (void)loop;
    (void)data;
    burst_count++;
}

static void *burst_thread(void *arg)
{
    gust_loop *loop = arg;
    for (int i = 0; i < BURST_PER_THREAD; i++)
        if (gust_loop_add_callback_threadsafe(loop, burst_cb, NULL) != 0)
            die("add_callback_threadsafe");
    return NULL;
}

static bool burst_done(gust_loop *loop, void *data)
{
    (void)loop;
    (void)data;
    return burst_count >= (size_t)BURST_THREADS * BURST_PER_THREAD;
}

static void bench_threadsafe_burst(void)
{
    gust_loop *loop = gust_loop_new();
    if (!loop)
        die("loop");
    gust_loop_run_once(loop, 0);
    burst_count = 0;
    pthread_t th[BURST_THREADS];
    double t0 = now_s();
    for (int i = 0; i < BURST_THREADS; i++)
        if (pthread_create(&th[i], NULL, burst_thread, loop) != 0)
            die("pthread_create");
    int r = gust_loop_run_until(loop, burst_done, NULL, 20);
    double t1 = now_s();
    for (int i = 0; i < BURST_THREADS; i++)
        pthread_join(th[i], NULL);
    if (r != 0)
        die("burst");
    printf("threadsafe callbacks (%d posting threads): %.0f callbacks/s\n",
           BURST_THREADS, (double)burst_count / (t1 - t0));
    if (gust_loop_free(loop) != 0)
        die("free");
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    bench_timers();
    bench_callbacks();
    bench_fd_dispatch();
    bench_round_trip();
    bench_threadsafe_burst();
    return 0;
}
