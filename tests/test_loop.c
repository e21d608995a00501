/* Unit tests for the event loop (include/gust/loop.h). The fd, timer and
 * callback tests run twice: with the default backend and with poll
 * (GUST_LOOP_BACKEND is read when a loop starts its backend). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/loop.h"
#include "loop_internal.h"
#include "gust_test.h"

static const char *expected_backend;

static int loop_setup_default(void **state)
{
    (void)state;
    unsetenv("GUST_LOOP_BACKEND");
    expected_backend = NULL; /* the best compiled in: epoll on Linux */
    return 0;
}

static int loop_setup_poll(void **state)
{
    (void)state;
    setenv("GUST_LOOP_BACKEND", "poll", 1);
    expected_backend = "poll";
    return 0;
}

static void close_pair(int sv[2])
{
    close(sv[0]);
    close(sv[1]);
}

static bool flag_set(gust_loop *loop, void *data)
{
    (void)loop;
    return *(bool *)data;
}

static bool counter_reached(gust_loop *loop, void *data)
{
    (void)loop;
    int *c = data;
    return c[0] >= c[1];
}

/* ---- Lifetime and backend ---------------------------------------------- */

static void noop_fd(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    (void)data;
}

static void test_fresh_and_in_use(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    assert_false(gust__loop_in_use(loop));
    assert_false(gust_loop_running(loop));
    const char *name = gust_loop_backend(loop);
    if (expected_backend)
        assert_string_equal(name, expected_backend);
    else
        assert_true(strcmp(name, "epoll") == 0 || strcmp(name, "kqueue") == 0 ||
                    strcmp(name, "poll") == 0);
    int sv[2];
    make_pair(sv);
    assert_int_equal(gust_loop_add_handler(loop, sv[0], GUST_READ, noop_fd,
                                           NULL), 0);
    assert_true(gust__loop_in_use(loop));
    if (expected_backend)
        assert_string_equal(gust_loop_backend(loop), expected_backend);
    assert_int_equal(gust_loop_remove_handler(loop, sv[0]), 0);
    close_pair(sv);
    assert_int_equal(gust_loop_free(loop), 0);

    /* Running also starts the backend. */
    loop = new_loop();
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_true(gust__loop_in_use(loop));
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Timers ------------------------------------------------------------ */

#define N_ORDER 3000

/* Entries are gust_timers (even index) and call_at timeouts (odd), with
 * deadlines on a coarse grid so there are many ties. */
struct order_rec {
    int fired[N_ORDER];
    int slot[N_ORDER];   /* grid position of each entry's deadline */
    double fired_at[N_ORDER];
    double deadline[N_ORDER];
    int n;
};

static struct order_rec order_rec;
static gust_timer order_timers[N_ORDER];

static void order_record(gust_loop *loop, int i)
{
    order_rec.fired_at[order_rec.n] = gust_loop_time(loop);
    order_rec.fired[order_rec.n++] = i;
}

static void order_timer_cb(gust_timer *t, void *data)
{
    (void)data;
    assert_false(gust_timer_active(t));
    order_record(t->loop, (int)(t - order_timers));
}

static void order_timeout_cb(gust_loop *loop, void *data)
{
    order_record(loop, (int)(intptr_t)data);
}

static void test_timer_order(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    unsigned seed = 12345;
    memset(&order_rec, 0, sizeof order_rec);
    double base = gust_loop_update_time(loop);
    for (int i = 0; i < N_ORDER; i++) {
        int slot = rand_r(&seed) % 25;
        double at = base + 0.002 * slot;
        order_rec.slot[i] = slot;
        order_rec.deadline[i] = at;
        if (i % 2 == 0) {
            gust_timer_init(loop, &order_timers[i]);
            assert_int_equal(gust_timer_start_at(&order_timers[i], at, 0,
                                                 order_timer_cb, NULL), 0);
            assert_true(gust_timer_active(&order_timers[i]));
        } else {
            assert_int_not_equal(gust_loop_call_at(loop, at, order_timeout_cb,
                                                   (void *)(intptr_t)i), 0);
        }
    }
    for (int it = 0; it < 10000 && order_rec.n < N_ORDER; it++)
        assert_int_equal(gust_loop_run_once(loop, -1), 0);
    assert_int_equal(order_rec.n, N_ORDER);
    for (int k = 0; k < N_ORDER; k++) {
        /* Never early (the loop clock is the one deadlines use). */
        assert_true(order_rec.fired_at[k] >=
                    order_rec.deadline[order_rec.fired[k]] - 1e-9);
        if (k == 0)
            continue;
        int a = order_rec.fired[k - 1], b = order_rec.fired[k];
        assert_true(order_rec.slot[a] <= order_rec.slot[b]);
        if (order_rec.slot[a] == order_rec.slot[b])
            assert_true(a < b); /* ties: scheduling order */
    }
    assert_int_equal(gust_loop_free(loop), 0);
}

struct cancel_ctx {
    gust_timer a, b, c, rep;
    int a_calls, b_calls, c_calls, rep_calls;
};

static void cancel_a(gust_timer *t, void *data)
{
    (void)t;
    struct cancel_ctx *c = data;
    c->a_calls++;
    gust_timer_stop(&c->c); /* same deadline, scheduled later: never runs */
}

static void cancel_b(gust_timer *t, void *data)
{
    (void)t;
    ((struct cancel_ctx *)data)->b_calls++;
}

static void cancel_c(gust_timer *t, void *data)
{
    (void)t;
    ((struct cancel_ctx *)data)->c_calls++;
}

static void cancel_rep(gust_timer *t, void *data)
{
    struct cancel_ctx *c = data;
    assert_true(gust_timer_active(t)); /* a repeating timer stays armed */
    if (++c->rep_calls == 3)
        gust_timer_stop(t);
}

static void test_timer_cancel(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    struct cancel_ctx c = {0};
    gust_timer_init(loop, &c.a);
    gust_timer_init(loop, &c.b);
    gust_timer_init(loop, &c.c);
    gust_timer_init(loop, &c.rep);
    double at = gust_loop_time(loop) + 0.01;
    assert_int_equal(gust_timer_start_at(&c.a, at, 0, cancel_a, &c), 0);
    assert_int_equal(gust_timer_start_at(&c.b, at, 0, cancel_b, &c), 0);
    assert_int_equal(gust_timer_start_at(&c.c, at, 0, cancel_c, &c), 0);
    assert_int_equal(gust_timer_start(&c.rep, 0.001, 0.002, cancel_rep, &c),
                     0);
    gust_timer_stop(&c.b);
    gust_timer_stop(&c.b); /* no-op */
    assert_false(gust_timer_active(&c.b));
    for (int i = 0; i < 1000 && (c.a_calls == 0 || c.rep_calls < 3); i++)
        assert_int_equal(gust_loop_run_once(loop, -1), 0);
    /* Leave time for anything wrongly still scheduled to fire. */
    assert_int_equal(gust_loop_run_until(loop, NULL, NULL, 0.03),
                     GUST_ETIMEOUT);
    assert_int_equal(c.a_calls, 1);
    assert_int_equal(c.b_calls, 0);
    assert_int_equal(c.c_calls, 0);
    assert_int_equal(c.rep_calls, 3);
    assert_false(gust_timer_active(&c.rep));

    /* Restarting an active timer reschedules it: one call, at the new time. */
    assert_int_equal(gust_timer_start(&c.b, 10, 0, cancel_b, &c), 0);
    assert_int_equal(gust_timer_start(&c.b, 0, 0, cancel_b, &c), 0);
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(c.b_calls, 1);
    assert_int_equal(gust_loop_free(loop), 0);
}

struct timeout_ctx {
    gust_timeout victim;
    int calls[4];
};

static void to_first(gust_loop *loop, void *data)
{
    struct timeout_ctx *c = data;
    c->calls[0]++;
    assert_true(gust_loop_remove_timeout(loop, c->victim));
}

static void to_victim(gust_loop *loop, void *data)
{
    (void)loop;
    ((struct timeout_ctx *)data)->calls[1]++;
}

static void to_count(gust_loop *loop, void *data)
{
    (void)loop;
    ((struct timeout_ctx *)data)->calls[2]++;
}

static void test_remove_timeout(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    struct timeout_ctx c = {0};
    assert_false(gust_loop_remove_timeout(loop, 0));
    assert_false(gust_loop_remove_timeout(loop, 0xdeadbeef12345ull));

    gust_timeout t = gust_loop_call_later(loop, 0.01, to_count, &c);
    assert_int_not_equal(t, 0);
    assert_true(gust_loop_remove_timeout(loop, t));
    assert_false(gust_loop_remove_timeout(loop, t)); /* already removed */

    /* The slot is reused; the old handle must not cancel the new timeout. */
    gust_timeout t2 = gust_loop_call_later(loop, 0, to_count, &c);
    assert_int_not_equal(t2, t);
    assert_false(gust_loop_remove_timeout(loop, t));
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(c.calls[2], 1);
    assert_false(gust_loop_remove_timeout(loop, t2)); /* already ran */

    /* Removing a timeout from another's callback, same deadline. */
    double at = gust_loop_time(loop) + 0.005;
    assert_int_not_equal(gust_loop_call_at(loop, at, to_first, &c), 0);
    c.victim = gust_loop_call_at(loop, at, to_victim, &c);
    assert_int_not_equal(c.victim, 0);
    for (int i = 0; i < 1000 && !c.calls[0]; i++)
        assert_int_equal(gust_loop_run_once(loop, -1), 0);
    assert_int_equal(c.calls[0], 1);
    assert_int_equal(c.calls[1], 0);

    /* Many outstanding timeouts, half removed, across pool chunks. */
    gust_timeout ids[1000];
    for (int i = 0; i < 1000; i++) {
        ids[i] = gust_loop_call_later(loop, 0.001, to_count, &c);
        assert_int_not_equal(ids[i], 0);
    }
    for (int i = 0; i < 1000; i += 2)
        assert_true(gust_loop_remove_timeout(loop, ids[i]));
    c.calls[2] = 0;
    for (int i = 0; i < 1000 && c.calls[2] < 500; i++)
        assert_int_equal(gust_loop_run_once(loop, -1), 0);
    assert_int_equal(c.calls[2], 500);
    for (int i = 0; i < 1000; i++)
        assert_false(gust_loop_remove_timeout(loop, ids[i]));
    assert_int_equal(gust_loop_free(loop), 0);
}

/* A timer scheduled from the timer phase with a past deadline waits for the
 * next iteration. */
struct resched_ctx {
    gust_timer t;
    int calls;
};

static void resched_cb(gust_timer *t, void *data)
{
    struct resched_ctx *c = data;
    if (++c->calls < 3)
        assert_int_equal(gust_timer_start(t, 0, 0, resched_cb, c), 0);
}

static void test_timer_zero_delay_from_timer(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    struct resched_ctx c = {0};
    gust_timer_init(loop, &c.t);
    assert_int_equal(gust_timer_start(&c.t, 0, 0, resched_cb, &c), 0);
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(c.calls, 2);
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(c.calls, 3);
    assert_false(gust_timer_active(&c.t));
    assert_int_equal(gust_loop_free(loop), 0);
}

/* A sub-millisecond deadline is waited for, not spun on. */
static void count_cb(gust_loop *loop, void *data)
{
    (void)loop;
    (*(int *)data)++;
}

static void test_submillisecond_no_spin(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    int fired = 0, iterations = 0;
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    double t0 = now_s();
    assert_int_not_equal(gust_loop_call_later(loop, 0.0003, count_cb, &fired),
                         0);
    while (!fired && iterations < 1000) {
        assert_int_equal(gust_loop_run_once(loop, -1), 0);
        iterations++;
    }
    assert_int_equal(fired, 1);
    assert_true(now_s() - t0 >= 0.0003);
    assert_true(iterations <= 2);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Callbacks --------------------------------------------------------- */

struct next_ctx {
    int a, b;
};

static void next_b(gust_loop *loop, void *data)
{
    (void)loop;
    ((struct next_ctx *)data)->b++;
}

static void next_a(gust_loop *loop, void *data)
{
    struct next_ctx *c = data;
    c->a++;
    assert_int_equal(gust_loop_add_callback(loop, next_b, c), 0);
}

static void test_callback_next_iteration(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    struct next_ctx c = {0};
    assert_int_equal(gust_loop_add_callback(loop, next_a, &c), 0);
    assert_int_equal(c.a, 0); /* never inside the registering call */
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(c.a, 1);
    assert_int_equal(c.b, 0);
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(c.b, 1);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Callbacks run in FIFO order, across ring growth. */
static int fifo_next;

static void fifo_cb(gust_loop *loop, void *data)
{
    (void)loop;
    assert_int_equal((int)(intptr_t)data, fifo_next);
    fifo_next++;
}

static void test_callback_fifo(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    fifo_next = 0;
    /* Offset the ring head first so growth has to unwrap it. */
    for (int i = 0; i < 40; i++)
        assert_int_equal(gust_loop_add_callback(loop, fifo_cb,
                                                (void *)(intptr_t)i), 0);
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    for (int i = 40; i < 5000; i++)
        assert_int_equal(gust_loop_add_callback(loop, fifo_cb,
                                                (void *)(intptr_t)i), 0);
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(fifo_next, 5000);
    assert_int_equal(gust_loop_free(loop), 0);
}

struct starve_ctx {
    bool requeue;
    int spins, fd_calls, timer_calls;
};

static void starve_spin(gust_loop *loop, void *data)
{
    struct starve_ctx *c = data;
    c->spins++;
    if (c->requeue)
        assert_int_equal(gust_loop_add_callback(loop, starve_spin, c), 0);
}

static void starve_fd(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    assert_true(events & GUST_READ);
    ((struct starve_ctx *)data)->fd_calls++;
}

static void starve_timer(gust_loop *loop, void *data)
{
    (void)loop;
    ((struct starve_ctx *)data)->timer_calls++;
}

static void test_no_starvation(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    struct starve_ctx c = {.requeue = true};
    int sv[2];
    make_pair(sv);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(gust_loop_add_handler(loop, sv[0], GUST_READ, starve_fd,
                                           &c), 0);
    assert_int_not_equal(gust_loop_call_later(loop, 0, starve_timer, &c), 0);
    assert_int_equal(gust_loop_add_callback(loop, starve_spin, &c), 0);
    assert_int_equal(gust_loop_run_once(loop, -1), 0);
    assert_int_equal(c.spins, 1);
    assert_int_equal(c.fd_calls, 1);
    assert_int_equal(c.timer_calls, 1);
    c.requeue = false;
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(gust_loop_remove_handler(loop, sv[0]), 0);
    close_pair(sv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Threadsafe callbacks ---------------------------------------------- */

#define TS_THREADS 8
#define TS_PER_THREAD 10000

struct ts_item {
    int thread, seq;
};

struct ts_shared {
    gust_loop *loop;
    struct ts_item items[TS_THREADS][TS_PER_THREAD];
    int last[TS_THREADS];
    int count[2];
    bool order_ok;
};

static struct ts_shared ts_shared;

static void ts_cb(gust_loop *loop, void *data)
{
    (void)loop;
    struct ts_item *it = data;
    if (ts_shared.last[it->thread] != it->seq - 1)
        ts_shared.order_ok = false;
    ts_shared.last[it->thread] = it->seq;
    ts_shared.count[0]++;
}

static void *ts_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < TS_PER_THREAD; i++) {
        struct ts_item *it = &ts_shared.items[t][i];
        it->thread = t;
        it->seq = i;
        if (gust_loop_add_callback_threadsafe(ts_shared.loop, ts_cb, it) != 0)
            abort();
    }
    return NULL;
}

static void test_threadsafe_callbacks(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    memset(&ts_shared, 0, sizeof ts_shared);
    ts_shared.loop = loop;
    ts_shared.order_ok = true;
    for (int t = 0; t < TS_THREADS; t++)
        ts_shared.last[t] = -1;
    ts_shared.count[1] = TS_THREADS * TS_PER_THREAD;
    /* Start the backend first for half the threads' posts, so both the
     * "not started yet" and the wake-up paths are used. */
    pthread_t th[TS_THREADS];
    for (int t = 0; t < TS_THREADS / 2; t++)
        assert_int_equal(pthread_create(&th[t], NULL, ts_thread,
                                        (void *)(intptr_t)t), 0);
    for (int t = TS_THREADS / 2; t < TS_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, ts_thread,
                                        (void *)(intptr_t)t), 0);
    assert_int_equal(gust_loop_run_until(loop, counter_reached,
                                         ts_shared.count, 60), 0);
    for (int t = 0; t < TS_THREADS; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(ts_shared.count[0], TS_THREADS * TS_PER_THREAD);
    assert_true(ts_shared.order_ok);
    for (int t = 0; t < TS_THREADS; t++)
        assert_int_equal(ts_shared.last[t], TS_PER_THREAD - 1);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* A threadsafe post wakes a loop blocked in its wait (no timer pending). */
struct wake_ctx {
    gust_loop *loop;
    bool done;
};

static void wake_set(gust_loop *loop, void *data)
{
    (void)loop;
    ((struct wake_ctx *)data)->done = true;
}

static void *wake_thread(void *arg)
{
    struct wake_ctx *c = arg;
    usleep(50000);
    gust_loop_add_callback_threadsafe(c->loop, wake_set, c);
    return NULL;
}

static void *stop_thread(void *arg)
{
    usleep(50000);
    gust_loop_stop_threadsafe(arg);
    return NULL;
}

static void test_threadsafe_wakes_blocked_loop(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    struct wake_ctx c = {.loop = loop};
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wake_thread, &c), 0);
    double t0 = now_s();
    assert_int_equal(gust_loop_run_until(loop, flag_set, &c.done, 20), 0);
    assert_true(now_s() - t0 < 10);
    pthread_join(th, NULL);

    assert_int_equal(pthread_create(&th, NULL, stop_thread, loop), 0);
    assert_int_equal(gust_loop_start(loop), 0);
    pthread_join(th, NULL);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- fd handlers ------------------------------------------------------- */

struct batch_ctx {
    gust_loop *loop;
    int fds[2];
    int calls[2];
    int reuse_fd;     /* new fd registered under the removed number */
    int reuse_calls;
    bool reuse;
    int pair_b_peer;
};

static void reuse_handler(gust_loop *loop, int fd, unsigned events,
                          void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    ((struct batch_ctx *)data)->reuse_calls++;
}

static void batch_handler(gust_loop *loop, int fd, unsigned events,
                          void *data)
{
    (void)events;
    struct batch_ctx *c = data;
    int me = fd == c->fds[0] ? 0 : 1;
    c->calls[me]++;
    int other = c->fds[1 - me];
    assert_int_equal(gust_loop_remove_handler(loop, other), 0);
    if (c->reuse) {
        /* Close the other fd and give its number to a new socket that is
         * not readable: the stale event collected for the old one must not
         * reach the new handler. */
        int sv[2];
        close(other);
        make_pair(sv);
        if (sv[0] != other) { /* the lowest free number must be reused */
            int d = dup2(sv[0], other);
            assert_int_equal(d, other);
            close(sv[0]);
        }
        c->reuse_fd = other;
        c->pair_b_peer = sv[1];
        assert_int_equal(gust_loop_add_handler(loop, other, GUST_READ,
                                               reuse_handler, c), 0);
    }
}

static void run_batch_test(bool reuse)
{
    gust_loop *loop = new_loop();
    int a[2], b[2];
    make_pair(a);
    make_pair(b);
    struct batch_ctx c = {.loop = loop, .fds = {a[0], b[0]}, .reuse = reuse,
                          .reuse_fd = -1, .pair_b_peer = -1};
    assert_int_equal(write(a[1], "x", 1), 1);
    assert_int_equal(write(b[1], "x", 1), 1);
    assert_int_equal(gust_loop_add_handler(loop, a[0], GUST_READ,
                                           batch_handler, &c), 0);
    assert_int_equal(gust_loop_add_handler(loop, b[0], GUST_READ,
                                           batch_handler, &c), 0);
    assert_int_equal(gust_loop_run_once(loop, 1), 0);
    assert_int_equal(c.calls[0] + c.calls[1], 1);
    assert_int_equal(c.reuse_calls, 0);
    int survivor = c.calls[0] ? a[0] : b[0];
    assert_int_equal(gust_loop_remove_handler(loop, survivor), 0);
    if (reuse) {
        /* The new registration works for real events. */
        assert_int_equal(gust_loop_run_once(loop, 0), 0);
        assert_int_equal(c.reuse_calls, 0);
        assert_int_equal(write(c.pair_b_peer, "y", 1), 1);
        assert_int_equal(gust_loop_run_once(loop, 1), 0);
        assert_int_equal(c.reuse_calls, 1);
        assert_int_equal(gust_loop_remove_handler(loop, c.reuse_fd), 0);
        close(c.pair_b_peer);
    }
    assert_int_equal(c.calls[0] + c.calls[1], 1);
    close_pair(a);
    close_pair(b);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_remove_in_batch(void **state)
{
    (void)state;
    run_batch_test(false);
}

static void test_stale_event_after_fd_reuse(void **state)
{
    (void)state;
    run_batch_test(true);
}

struct rw_ctx {
    unsigned last;
    int calls;
};

static void rw_handler(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    struct rw_ctx *c = data;
    c->last = events;
    c->calls++;
}

static void test_update_handler(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    struct rw_ctx c = {0};
    int sv[2];
    make_pair(sv);
    assert_int_equal(gust_loop_add_handler(loop, -1, GUST_READ, rw_handler,
                                           &c), -EBADF);
    assert_int_equal(gust_loop_add_handler(loop, sv[0], 0x40, rw_handler,
                                           &c), -EINVAL);
    assert_int_equal(gust_loop_update_handler(loop, sv[0], GUST_READ),
                     -ENOENT);
    assert_int_equal(gust_loop_add_handler(loop, sv[0], GUST_WRITE,
                                           rw_handler, &c), 0);
    assert_int_equal(gust_loop_add_handler(loop, sv[0], GUST_READ,
                                           rw_handler, &c), -EEXIST);
    /* WRITE: an empty socket is writable. */
    assert_int_equal(gust_loop_run_once(loop, 1), 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.last, GUST_WRITE);
    /* READ only, nothing to read: no call. */
    assert_int_equal(gust_loop_update_handler(loop, sv[0], GUST_READ), 0);
    assert_int_equal(gust_loop_update_handler(loop, sv[0], GUST_READ), 0);
    c.calls = 0;
    assert_int_equal(gust_loop_run_once(loop, 0.02), 0);
    assert_int_equal(c.calls, 0);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(gust_loop_run_once(loop, 1), 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.last, GUST_READ);
    /* Both. */
    assert_int_equal(gust_loop_update_handler(loop, sv[0],
                                              GUST_READ | GUST_WRITE), 0);
    assert_int_equal(gust_loop_run_once(loop, 1), 0);
    assert_int_equal(c.calls, 2);
    assert_int_equal(c.last, GUST_READ | GUST_WRITE);
    /* Neither: still registered (for errors), no call. */
    assert_int_equal(gust_loop_update_handler(loop, sv[0], 0), 0);
    assert_int_equal(gust_loop_run_once(loop, 0.02), 0);
    assert_int_equal(c.calls, 2);
    assert_int_equal(gust_loop_update_handler(loop, sv[0], 0x40), -EINVAL);
    assert_int_equal(gust_loop_remove_handler(loop, sv[0]), 0);
    assert_int_equal(gust_loop_remove_handler(loop, sv[0]), -ENOENT);
    assert_int_equal(gust_loop_remove_handler(loop, 100000), -ENOENT);
    close_pair(sv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_error_on_hangup(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    struct rw_ctx c = {0};
    int sv[2];
    make_pair(sv);
    /* Only WRITE interest; a full hang-up is reported as ERROR anyway. */
    assert_int_equal(gust_loop_add_handler(loop, sv[0], 0, rw_handler, &c),
                     0);
    assert_int_equal(gust_loop_run_once(loop, 0.01), 0);
    assert_int_equal(c.calls, 0);
    close(sv[1]);
    assert_int_equal(gust_loop_run_once(loop, 1), 0);
    assert_int_equal(c.calls, 1);
    assert_true(c.last & GUST_ERROR);
    assert_int_equal(gust_loop_update_handler(loop, sv[0], GUST_READ), 0);
    assert_int_equal(gust_loop_run_once(loop, 1), 0);
    assert_true(c.last & GUST_READ);
    assert_true(c.last & GUST_ERROR);
    assert_int_equal(gust_loop_remove_handler(loop, sv[0]), 0);
    close(sv[0]);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Large fd numbers grow the table. */
static void test_high_fd(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    struct rw_ctx c = {0};
    int sv[2];
    make_pair(sv);
    int high = fcntl(sv[0], F_DUPFD_CLOEXEC, 700);
    assert_true(high >= 700);
    assert_int_equal(gust_loop_add_handler(loop, high, GUST_READ, rw_handler,
                                           &c), 0);
    assert_int_equal(write(sv[1], "x", 1), 1);
    assert_int_equal(gust_loop_run_once(loop, 1), 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(gust_loop_remove_handler(loop, high), 0);
    close(high);
    close_pair(sv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Running ----------------------------------------------------------- */

static void set_flag_cb(gust_loop *loop, void *data)
{
    (void)loop;
    *(bool *)data = true;
}

static void stop_cb(gust_loop *loop, void *data)
{
    (void)data;
    gust_loop_stop(loop);
}

static void test_run_until(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    bool flag = false;
    assert_int_not_equal(gust_loop_call_later(loop, 0.02, set_flag_cb, &flag),
                         0);
    assert_int_equal(gust_loop_run_until(loop, flag_set, &flag, 10), 0);
    assert_true(flag);
    /* Already true: returns at once. */
    assert_int_equal(gust_loop_run_until(loop, flag_set, &flag, 10), 0);

    flag = false;
    double t0 = now_s();
    assert_int_equal(gust_loop_run_until(loop, flag_set, &flag, 0.1),
                     GUST_ETIMEOUT);
    double el = now_s() - t0;
    assert_true(el >= 0.1);
    assert_true(el < 5);

    assert_int_not_equal(gust_loop_call_later(loop, 0.01, stop_cb, NULL), 0);
    assert_int_equal(gust_loop_run_until(loop, flag_set, &flag, 10),
                     GUST_ECANCELED);
    assert_false(gust_loop_running(loop));
    assert_int_equal(gust_loop_free(loop), 0);
}

static void running_check_cb(gust_loop *loop, void *data)
{
    *(bool *)data = gust_loop_running(loop);
    gust_loop_stop(loop);
}

static void test_start_stop(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    bool was_running = false;
    assert_int_equal(gust_loop_add_callback(loop, running_check_cb,
                                            &was_running), 0);
    assert_int_equal(gust_loop_start(loop), 0);
    assert_true(was_running);
    assert_false(gust_loop_running(loop));
    /* A stop requested while not running: the next start runs one
     * iteration and returns. */
    gust_loop_stop(loop);
    assert_int_equal(gust_loop_start(loop), 0);
    /* Stop from a timer. */
    assert_int_not_equal(gust_loop_call_later(loop, 0.01, stop_cb, NULL), 0);
    assert_int_equal(gust_loop_start(loop), 0);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Periodic ---------------------------------------------------------- */

struct periodic_ctx {
    gust_periodic *p;
    int calls;
    int stop_at;
    bool free_inside;
};

static void periodic_cb(gust_loop *loop, void *data)
{
    struct periodic_ctx *c = data;
    assert_true(gust_periodic_running(c->p));
    if (++c->calls == c->stop_at) {
        if (c->free_inside) {
            gust_periodic_free(c->p);
            c->p = NULL;
        } else {
            gust_periodic_stop(c->p);
        }
        gust_loop_stop(loop);
    }
}

static void test_periodic(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    errno = 0;
    assert_null(gust_periodic_new(loop, 0, count_cb, NULL));
    assert_int_equal(errno, EINVAL);

    struct periodic_ctx c = {.stop_at = 5};
    c.p = gust_periodic_new(loop, 0.005, periodic_cb, &c);
    assert_non_null(c.p);
    assert_false(gust_periodic_running(c.p));
    double t0 = now_s();
    gust_loop_update_time(loop); /* the first period counts from here */
    gust_periodic_start(c.p);
    assert_true(gust_periodic_running(c.p));
    assert_int_equal(gust_loop_start(loop), 0);
    assert_true(now_s() - t0 >= 0.024);
    assert_int_equal(c.calls, 5);
    assert_false(gust_periodic_running(c.p));
    /* Restart, then free from inside the callback. */
    c.calls = 0;
    c.stop_at = 2;
    c.free_inside = true;
    gust_periodic_start(c.p);
    assert_int_equal(gust_loop_start(loop), 0);
    assert_int_equal(c.calls, 2);
    assert_null(c.p);
    gust_periodic_free(NULL);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Signals ----------------------------------------------------------- */

static void prev_handler(int sig)
{
    (void)sig;
}

struct sig_ctx {
    int calls;
    int signum;
};

static void sig_cb(gust_loop *loop, int signum, void *data)
{
    (void)loop;
    struct sig_ctx *c = data;
    c->calls++;
    c->signum = signum;
}

static bool sig_seen(gust_loop *loop, void *data)
{
    (void)loop;
    return ((struct sig_ctx *)data)->calls > 0;
}

static void test_signals(void **state)
{
    (void)state;
    struct sigaction sa, old, now;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = prev_handler;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);

    gust_loop *loop = new_loop();
    gust_loop *other = new_loop();
    struct sig_ctx c = {0};
    assert_int_equal(gust_loop_add_signal(loop, SIGKILL, sig_cb, &c),
                     -EINVAL);
    assert_int_equal(gust_loop_add_signal(loop, 0, sig_cb, &c), -EINVAL);
    assert_int_equal(gust_loop_add_signal(loop, SIGUSR1, sig_cb, &c), 0);
    assert_int_equal(gust_loop_add_signal(other, SIGUSR1, sig_cb, &c),
                     -EBUSY);
    assert_int_equal(gust_loop_free(loop), -EBUSY); /* a watcher is left */

    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(c.calls, 0); /* runs on the loop, not in the handler */
    assert_int_equal(gust_loop_run_until(loop, sig_seen, &c, 10), 0);
    assert_int_equal(c.calls, 1);
    assert_int_equal(c.signum, SIGUSR1);
    /* Several deliveries before the loop looks coalesce into one call. */
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(gust_loop_run_once(loop, 1), 0);
    assert_int_equal(c.calls, 2);

    assert_int_equal(gust_loop_remove_signal(loop, SIGUSR1), 0);
    assert_int_equal(gust_loop_remove_signal(loop, SIGUSR1), -ENOENT);
    assert_int_equal(sigaction(SIGUSR1, NULL, &now), 0);
    assert_ptr_equal(now.sa_handler, prev_handler);
    /* Now another loop may take it. */
    assert_int_equal(gust_loop_add_signal(other, SIGUSR1, sig_cb, &c), 0);
    assert_int_equal(gust_loop_remove_signal(other, SIGUSR1), 0);
    assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
    assert_int_equal(gust_loop_free(loop), 0);
    assert_int_equal(gust_loop_free(other), 0);
}

/* ---- Executor ---------------------------------------------------------- */

#define N_WORK 200

struct exec_ctx {
    pthread_t loop_thread;
    atomic_int worked;
    atomic_bool off_loop;
    int done;
    bool done_on_loop;
    atomic_bool release;
};

static void exec_work(void *data)
{
    struct exec_ctx *c = data;
    if (pthread_equal(pthread_self(), c->loop_thread))
        atomic_store(&c->off_loop, false);
    atomic_fetch_add(&c->worked, 1);
}

static void exec_done(gust_loop *loop, int status, void *data)
{
    (void)loop;
    struct exec_ctx *c = data;
    assert_int_equal(status, 0);
    if (!pthread_equal(pthread_self(), c->loop_thread))
        c->done_on_loop = false;
    c->done++;
}

static bool exec_all_done(gust_loop *loop, void *data)
{
    (void)loop;
    return ((struct exec_ctx *)data)->done >= N_WORK;
}

static void exec_block(void *data)
{
    struct exec_ctx *c = data;
    for (int i = 0; i < 20000 && !atomic_load(&c->release); i++)
        usleep(500);
}

static void exec_block_done(gust_loop *loop, int status, void *data)
{
    (void)loop;
    (void)status;
    ((struct exec_ctx *)data)->done = -1;
}

static bool exec_block_finished(gust_loop *loop, void *data)
{
    (void)loop;
    return ((struct exec_ctx *)data)->done == -1;
}

static void test_executor(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    struct exec_ctx c = {.loop_thread = pthread_self(), .done_on_loop = true};
    atomic_init(&c.worked, 0);
    atomic_init(&c.off_loop, true);
    atomic_init(&c.release, false);
    assert_int_equal(gust_loop_set_executor_threads(loop, 0), -EINVAL);
    assert_int_equal(gust_loop_set_executor_threads(loop, 3), 0);
    for (int i = 0; i < N_WORK; i++)
        assert_int_equal(gust_loop_run_in_executor(loop, exec_work, exec_done,
                                                   &c), 0);
    assert_int_equal(gust_loop_set_executor_threads(loop, 4), -EBUSY);
    assert_int_equal(gust_loop_run_until(loop, exec_all_done, &c, 30), 0);
    assert_int_equal(atomic_load(&c.worked), N_WORK);
    assert_int_equal(c.done, N_WORK);
    assert_true(c.done_on_loop);
    assert_true(atomic_load(&c.off_loop));

    /* Work in flight keeps the loop from being freed. */
    assert_int_equal(gust_loop_run_in_executor(loop, exec_block,
                                               exec_block_done, &c), 0);
    assert_int_equal(gust_loop_free(loop), -EBUSY);
    atomic_store(&c.release, true);
    assert_int_equal(gust_loop_run_until(loop, exec_block_finished, &c, 30),
                     0);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Freeing ----------------------------------------------------------- */

static int busy_logs;

static void noop_timer(gust_timer *t, void *data)
{
    (void)t;
    (void)data;
}

static void capture_log(int level, const char *module, const char *msg,
                        void *data)
{
    (void)data;
    if (level == GUST_LOG_WARNING && strcmp(module, "loop") == 0 &&
        strstr(msg, "busy"))
        busy_logs++;
}

static void test_free_busy(void **state)
{
    (void)state;
    gust_log_set_handler(capture_log, NULL);
    busy_logs = 0;
    gust_loop *loop = new_loop();
    int sv[2];
    make_pair(sv);
    assert_int_equal(gust_loop_add_handler(loop, sv[0], GUST_READ, noop_fd,
                                           NULL), 0);
    assert_int_equal(gust_loop_free(loop), -EBUSY);
    assert_int_equal(busy_logs, 1);
    assert_int_equal(gust_loop_remove_handler(loop, sv[0]), 0);

    gust_timer t;
    gust_timer_init(loop, &t);
    assert_int_equal(gust_timer_start(&t, 100, 0, noop_timer, NULL), 0);
    assert_int_equal(gust_loop_free(loop), -EBUSY);
    gust_timer_stop(&t);
    gust_timeout to = gust_loop_call_later(loop, 100, count_cb, NULL);
    assert_int_equal(gust_loop_free(loop), -EBUSY);
    assert_true(gust_loop_remove_timeout(loop, to));
    int ran = 0;
    assert_int_equal(gust_loop_add_callback(loop, count_cb, &ran), 0);
    assert_int_equal(gust_loop_free(loop), -EBUSY);
    assert_int_equal(busy_logs, 4);
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(ran, 1);
    gust_log_set_handler(NULL, NULL);
    close_pair(sv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- current / instance ------------------------------------------------ */

struct cur_result {
    bool ok;
};

static void *current_thread(void *arg)
{
    struct cur_result *r = arg;
    r->ok = false;
    if (gust__loop_current_if_any() != NULL)
        return NULL;
    gust_loop *cur = gust_loop_current();
    if (!cur || gust_loop_current() != cur ||
        gust__loop_current_if_any() != cur)
        return NULL;
    gust_loop_make_current(NULL);
    if (gust__loop_current_if_any() != NULL)
        return NULL;
    gust_loop_make_current(cur);
    if (gust_loop_free(cur) != 0 || gust__loop_current_if_any() != NULL)
        return NULL;
    /* The instance becomes current for a thread that has none. */
    gust_loop *inst = gust_loop_instance();
    if (!inst || gust_loop_current() != inst)
        return NULL;
    r->ok = true;
    return NULL;
}

static void test_current_and_instance(void **state)
{
    (void)state;
    gust_loop_make_current(NULL);
    struct cur_result r;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, current_thread, &r), 0);
    pthread_join(th, NULL);
    assert_true(r.ok);
    /* Same instance on every thread; this thread had no current loop. */
    gust_loop *inst = gust_loop_instance();
    assert_non_null(inst);
    assert_ptr_equal(gust_loop_current(), inst);
    assert_ptr_equal(gust_loop_instance(), inst);
    /* A thread with its own current loop keeps it. */
    gust_loop *mine = new_loop();
    gust_loop_make_current(mine);
    assert_ptr_equal(gust_loop_instance(), inst);
    assert_ptr_equal(gust_loop_current(), mine);
    assert_int_equal(gust_loop_free(mine), 0);
    assert_null(gust__loop_current_if_any());
    gust_loop_make_current(inst);
    assert_int_equal(gust_loop_free(inst), 0);
    assert_null(gust__loop_current_if_any());
    /* Freed instance: the next call makes a new one. */
    gust_loop *again = gust_loop_instance();
    assert_non_null(again);
    assert_ptr_equal(gust_loop_current(), again);
    assert_int_equal(gust_loop_free(again), 0);
    assert_null(gust__loop_current_if_any());
}

/* ---- Fork safety ------------------------------------------------------- */

static void test_forked_child_refused(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    int sv[2];
    make_pair(sv);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int r1 = gust_loop_add_handler(loop, sv[0], GUST_READ, noop_fd, NULL);
        int r2 = gust_loop_run_once(loop, 0);
        _exit(r1 == GUST_EFORKED && r2 == GUST_EFORKED ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The parent still works. */
    assert_int_equal(gust_loop_add_handler(loop, sv[0], GUST_READ, noop_fd,
                                           NULL), 0);
    assert_int_equal(gust_loop_remove_handler(loop, sv[0]), 0);
    close_pair(sv);
    assert_int_equal(gust_loop_free(loop), 0);
}

#define T(fn) cmocka_unit_test_setup(fn, test_setup)

int main(void)
{
    const struct CMUnitTest backend_tests[] = {
        T(test_fresh_and_in_use),
        T(test_timer_order),
        T(test_timer_cancel),
        T(test_remove_timeout),
        T(test_timer_zero_delay_from_timer),
        T(test_submillisecond_no_spin),
        T(test_callback_next_iteration),
        T(test_callback_fifo),
        T(test_no_starvation),
        T(test_threadsafe_callbacks),
        T(test_threadsafe_wakes_blocked_loop),
        T(test_remove_in_batch),
        T(test_stale_event_after_fd_reuse),
        T(test_update_handler),
        T(test_error_on_hangup),
        T(test_high_fd),
        T(test_run_until),
        T(test_start_stop),
        T(test_periodic),
        T(test_signals),
        T(test_forked_child_refused),
    };
    const struct CMUnitTest other_tests[] = {
        T(test_executor),
        T(test_free_busy),
        T(test_current_and_instance),
    };
    int failed = 0;
    failed += cmocka_run_group_tests_name("loop_default_backend",
                                          backend_tests, loop_setup_default,
                                          teardown_env);
    failed += cmocka_run_group_tests_name("loop_poll_backend", backend_tests,
                                          loop_setup_poll, teardown_env);
    failed += cmocka_run_group_tests_name("loop", other_tests, NULL, NULL);
    return failed;
}
