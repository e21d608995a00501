/* Coroutine micro-benchmarks. Prints one line per figure, "name: value unit".
 * Bounded: fixed counts, a second or two in all.
 * Run from a release build: build/rel/bench/bench_coro
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "gust/future.h"
#include "gust/loop.h"
/* The raw context switch is internal; the benchmark measures it directly. */
#include "../src/future_internal.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench_coro: %s failed\n", what);
    exit(1);
}

/* ---- Raw switch: ping-pong between the main stack and one context ------ */

#define N_SWITCH 10000000

static gust__ctx main_ctx, pong_ctx;

static void pong(void *arg)
{
    (void)arg;
    for (;;)
        gust__ctx_switch(&pong_ctx, &main_ctx);
}

static void bench_switch(void)
{
    size_t size = 64 * 1024;
    void *stack = mmap(NULL, size, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (stack == MAP_FAILED)
        die("mmap");
    gust__ctx_make(&pong_ctx, stack, size, pong, NULL);
    gust__ctx_switch(&main_ctx, &pong_ctx); /* warm up */
    double best = 1e9;
    for (int round = 0; round < 3; round++) {
        double t0 = now_s();
        for (int i = 0; i < N_SWITCH; i++)
            gust__ctx_switch(&main_ctx, &pong_ctx);
        double ns = (now_s() - t0) * 1e9 / (2.0 * N_SWITCH);
        if (ns < best)
            best = ns;
    }
    printf("switch (%s, one way, best of 3 x %d round trips): %.2f ns\n",
           gust__ctx_impl(), N_SWITCH, best);
    munmap(stack, size);
}

/* ---- spawn + finish ---------------------------------------------------- */

#define N_SPAWN 200000
#define BATCH 50

static int trivial(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    (void)data;
    *result = GUST_VALUE_INT(1);
    return 0;
}

static void bench_spawn(gust_loop *loop)
{
    gust_future *fs[BATCH];
    double t0 = now_s();
    for (int done = 0; done < N_SPAWN; done += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            fs[i] = gust_spawn(loop, trivial, NULL);
            if (!fs[i])
                die("gust_spawn");
        }
        gust_loop_run_once(loop, 0); /* starts and finishes them */
        for (int i = 0; i < BATCH; i++) {
            if (!gust_future_done(fs[i]))
                die("coroutine did not finish");
            gust_future_unref(fs[i]);
        }
    }
    gust_loop_run_once(loop, 0);
    double ns = (now_s() - t0) * 1e9 / N_SPAWN;
    printf("spawn + run + finish + unref (pooled stacks, batches of %d): "
           "%.1f ns per coroutine\n", BATCH, ns);
}

/* ---- await of a done future, inside a coroutine ------------------------ */

#define N_AWAIT 2000000

static double await_ns, base_ns;

static int await_loop(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    (void)data;
    double t0 = now_s();
    for (int i = 0; i < N_AWAIT; i++) {
        gust_future *f = gust_future_new(loop);
        gust_future_set_result(f, GUST_VALUE_INT(i));
        gust_future_unref(f);
    }
    base_ns = (now_s() - t0) * 1e9 / N_AWAIT;
    t0 = now_s();
    for (int i = 0; i < N_AWAIT; i++) {
        gust_future *f = gust_future_new(loop);
        gust_future_set_result(f, GUST_VALUE_INT(i));
        gust_value v;
        if (gust_await(f, &v) != 0 || (intptr_t)v.ptr != i)
            return -EPROTO;
    }
    await_ns = (now_s() - t0) * 1e9 / N_AWAIT;
    return 0;
}

static void bench_await_done(gust_loop *loop)
{
    if (gust_loop_run_sync(loop, gust_spawn(loop, await_loop, NULL), 60,
                           NULL) != 0)
        die("await loop");
    printf("await of a done future: %.1f ns (new + set + await); "
           "new + set + unref alone: %.1f ns; await itself: %.1f ns\n",
           await_ns, base_ns, await_ns - base_ns);
}

/* ---- ping-pong of two coroutines through futures and the loop ---------- */

#define N_PINGPONG 200000

typedef struct pingpong {
    gust_future *to_a, *to_b;
    int count;
} pingpong;

static int player(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    pingpong *pp = data;
    bool is_a = pp->count++ == 0;
    for (;;) {
        gust_future **mine = is_a ? &pp->to_a : &pp->to_b;
        gust_future **theirs = is_a ? &pp->to_b : &pp->to_a;
        if (*mine == NULL)
            *mine = gust_future_new(loop);
        gust_future *wait = gust_future_ref(*mine);
        int r = gust_await(wait, NULL);
        gust_future_unref(*mine);
        *mine = NULL;
        if (r < 0 || pp->count >= N_PINGPONG) {
            if (*theirs) /* let the other one end too */
                gust_future_set_error(*theirs, GUST_ECANCELED);
            return 0;
        }
        pp->count++;
        if (*theirs == NULL)
            *theirs = gust_future_new(loop);
        gust_future_set_result(*theirs, GUST_VALUE_NONE);
    }
}

static void bench_pingpong(gust_loop *loop)
{
    pingpong pp = {NULL, NULL, 0};
    gust_future *a = gust_spawn(loop, player, &pp);
    gust_future *b = gust_spawn(loop, player, &pp);
    gust_loop_run_once(loop, 0); /* both start and wait */
    double t0 = now_s();
    gust_future_set_result(pp.to_a, GUST_VALUE_NONE);
    gust_future *both = gust_all(loop, (gust_future *[]){a, b}, 2);
    if (gust_loop_run_sync(loop, both, 60, NULL) != 0)
        die("ping-pong");
    double ns = (now_s() - t0) * 1e9 / pp.count;
    printf("ping-pong of two coroutines through futures and the loop: "
           "%.1f ns per hand-off (%d hand-offs)\n", ns, pp.count);
}

int main(void)
{
    gust_loop *loop = gust_loop_new();
    if (!loop)
        die("gust_loop_new");
    bench_switch();
    bench_spawn(loop);
    bench_await_done(loop);
    bench_pingpong(loop);
    gust_loop_run_once(loop, 0);
    if (gust_loop_free(loop) != 0)
        die("gust_loop_free");
    return 0;
}
