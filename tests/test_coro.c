/* Unit tests for coroutines (gust_spawn, gust_await; include/gust/future.h).
 * Checks inside coroutines are recorded and asserted on the test's own
 * stack: cmocka's failure longjmp must not cross stacks. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "gust_test.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gust/future.h"
#include "gust/log.h"
#include "gust/loop.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static void assert_no_coroutines_left(void)
{
    gust_coro_stats st;
    gust_coro_get_stats(&st);
    assert_int_equal(st.alive, 0);
    assert_int_equal(st.mapped, st.pooled); /* every stack is back */
}

/* ---- Basics ------------------------------------------------------------ */

static int ran;

static int return_value(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    ran++;
    *result = GUST_VALUE_INT((intptr_t)data + 1);
    return 0;
}

static void test_spawn_result(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    ran = 0;
    gust_future *f = gust_spawn(loop, return_value, (void *)41);
    assert_non_null(f);
    assert_int_equal(ran, 0); /* never inside gust_spawn() */
    assert_false(gust_in_coroutine());
    gust_value v;
    assert_int_equal(gust_loop_run_sync(loop, f, 10, &v), 0);
    assert_int_equal(ran, 1);
    assert_int_equal((intptr_t)v.ptr, 42);
    assert_no_coroutines_left();
    assert_int_equal(gust_loop_free(loop), 0);
}

static int fail_with(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    *result = (gust_value){malloc(16), free}; /* freed: an error wins */
    return (int)(intptr_t)data;
}

static void test_spawn_error(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *f = gust_spawn(loop, fail_with, (void *)(intptr_t)-EIO);
    assert_int_equal(gust_loop_run_sync(loop, f, 10, NULL), -EIO);
    /* The hook for the layers above: a done-callback reads the status. */
    assert_no_coroutines_left();
    assert_int_equal(gust_loop_free(loop), 0);
}

static int seen_status;

static void on_coro_done(gust_future *f, void *data)
{
    (void)data;
    seen_status = gust_future_status(f);
}

/* Spawn and forget: the coroutine runs to its end with nobody holding the
 * future, its error is logged, nothing leaks. */
static int log_count;
static char log_last[512];

static void capture_log(int level, const char *module, const char *msg,
                        void *data)
{
    (void)level;
    (void)module;
    (void)data;
    log_count++;
    snprintf(log_last, sizeof log_last, "%s", msg);
}

static void test_spawn_and_forget(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    ran = 0;
    gust_future_unref(gust_spawn(loop, return_value, NULL));
    gust_future *f = gust_spawn(loop, fail_with, (void *)(intptr_t)-ENOSPC);
    seen_status = 0;
    assert_int_equal(gust_future_add_done_callback(f, on_coro_done, NULL), 0);
    gust_future_unref(f);
    log_count = 0;
    gust_log_set_handler(capture_log, NULL);
    gust_future_unref(gust_spawn(loop, fail_with, (void *)(intptr_t)-EROFS));
    spin(loop, 4);
    gust_log_set_handler(NULL, NULL);
    assert_int_equal(ran, 1);
    assert_int_equal(seen_status, -ENOSPC);
    assert_int_equal(log_count, 1); /* the error nobody read */
    assert_non_null(strstr(log_last, "EROFS"));
    assert_no_coroutines_left();
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Await ------------------------------------------------------------- */

static int sleeper(gust_loop *loop, gust_value *result, void *data)
{
    (void)data;
    int n = 0;
    for (int i = 0; i < 3; i++) {
        if (gust_await(gust_sleep(loop, 0.01), NULL) == 0)
            n++;
    }
    *result = GUST_VALUE_INT(n);
    return 0;
}

static void test_await_sleep(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    gust_value v;
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, sleeper, NULL),
                                        10, &v), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) +
                (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    assert_int_equal((intptr_t)v.ptr, 3);
    assert_true(dt >= 0.029);
    assert_no_coroutines_left();
    assert_int_equal(gust_loop_free(loop), 0);
}

/* The loop keeps running other work while a coroutine waits. */
static int ticks;

static void tick(gust_loop *loop, void *data)
{
    (void)loop;
    (void)data;
    ticks++;
}

static int waits_for_event(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    gust_future *event = data;
    int r = gust_await(gust_future_ref(event), result);
    return r;
}

static void test_await_does_not_block_loop(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *event = gust_future_new(loop);
    gust_future *f = gust_spawn(loop, waits_for_event, event);
    ticks = 0;
    for (int i = 0; i < 5; i++) {
        gust_loop_add_callback(loop, tick, NULL);
        spin(loop, 1);
    }
    assert_int_equal(ticks, 5);
    assert_false(gust_future_done(f));
    gust_future_set_result(event, (gust_value){strdup("hello"), free});
    gust_value v;
    assert_int_equal(gust_loop_run_sync(loop, f, 10, &v), 0);
    /* The value moved from event to the coroutine to its future to us. */
    assert_string_equal(v.ptr, "hello");
    assert_null(gust_future_result(event));
    gust_value_free(&v);
    gust_future_unref(event);
    assert_no_coroutines_left();
    assert_int_equal(gust_loop_free(loop), 0);
}

static int awaited_ok;

static int await_done_future(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    (void)data;
    for (int i = 0; i < 100; i++) {
        gust_future *f = gust_future_new(loop);
        gust_future_set_result(f, GUST_VALUE_INT(i));
        gust_value v;
        if (gust_await(f, &v) == 0 && (intptr_t)v.ptr == i)
            awaited_ok++;
    }
    gust_future *e = gust_future_new(loop);
    gust_future_set_error(e, -ETIMEDOUT);
    return gust_await(e, NULL);
}

static void test_await_done_future(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    awaited_ok = 0;
    gust_future *f = gust_spawn(loop, await_done_future, NULL);
    /* A done future is awaited without a trip through the loop: the whole
     * coroutine runs in the one iteration that starts it. */
    spin(loop, 1);
    assert_true(gust_future_done(f));
    assert_int_equal(awaited_ok, 100);
    assert_int_equal(gust_loop_run_sync(loop, f, 10, NULL), -ETIMEDOUT);
    spin(loop, 1); /* the done-callbacks of the awaited futures */
    assert_no_coroutines_left();
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_await_outside_coroutine(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *f = gust_future_new(loop);
    gust_future_set_result(f, (gust_value){malloc(8), free});
    gust_value v = GUST_VALUE_INT(5);
    /* Consumed all the same: no leak. */
    assert_int_equal(gust_await(f, &v), -EPERM);
    assert_null(v.ptr);
    assert_null(gust_coro_self());
    spin(loop, 1);
    assert_int_equal(gust_loop_free(loop), 0);
}

static int self_result;

static int await_self(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    (void)result;
    (void)data;
    gust_future *me = gust_coro_self();
    self_result = gust_await(gust_future_ref(me), NULL);
    return 0;
}

static void test_await_self(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, await_self,
                                                         NULL), 10, NULL), 0);
    assert_int_equal(self_result, -EDEADLK);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Nesting and combinators ------------------------------------------- */

static int inner_coro(gust_loop *loop, gust_value *result, void *data)
{
    int r = gust_await(gust_sleep(loop, 0.005), NULL);
    if (r < 0)
        return r;
    *result = GUST_VALUE_INT((intptr_t)data * 10);
    return 0;
}

static int outer_coro(gust_loop *loop, gust_value *result, void *data)
{
    (void)data;
    gust_value v;
    int r = gust_await(gust_spawn(loop, inner_coro, (void *)4), &v);
    if (r < 0)
        return r;
    intptr_t sum = (intptr_t)v.ptr;
    /* Several at once. */
    r = gust_await(gust_all(loop, (gust_future *[]){
                                      gust_spawn(loop, inner_coro, (void *)1),
                                      gust_spawn(loop, inner_coro, (void *)2),
                                      gust_sleep(loop, 0.001)}, 3), &v);
    if (r < 0)
        return r;
    gust_value *vals = v.ptr;
    sum += (intptr_t)vals[0].ptr + (intptr_t)vals[1].ptr;
    gust_value_free(&v);
    /* A timeout inside a coroutine. */
    r = gust_await(gust_with_timeout(loop, gust_sleep(loop, 0.2), 0.01),
                   NULL);
    if (r != GUST_ETIMEOUT)
        return -EPROTO;
    *result = GUST_VALUE_INT(sum);
    return 0;
}

static void test_nested_spawn(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_value v;
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, outer_coro,
                                                         NULL), 10, &v), 0);
    assert_int_equal((intptr_t)v.ptr, 40 + 10 + 20);
    assert_no_coroutines_left();
    /* The sleep that timed out runs on (not cancelled): it holds its timer
     * until it fires, before this later one. */
    assert_int_equal(gust_loop_free(loop), -EBUSY);
    assert_int_equal(gust_loop_run_sync(loop, gust_sleep(loop, 0.3), 10, NULL),
                     0);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Cancellation ------------------------------------------------------ */

static int cancel_seen, after_cancel;

static int cancellable(gust_loop *loop, gust_value *result, void *data)
{
    gust_future *sleep = data;
    cancel_seen = gust_await(gust_future_ref(sleep), NULL);
    /* Reported once: the coroutine may still clean up with awaits. */
    after_cancel = gust_await(gust_sleep(loop, 0), NULL);
    *result = (gust_value){malloc(4), free}; /* dropped: nobody wants it */
    return 0;
}

static void test_cancel_suspended(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *sleep = gust_sleep(loop, 3600);
    gust_future *f = gust_spawn(loop, cancellable, sleep);
    spin(loop, 2);
    assert_false(gust_future_done(f));
    assert_true(gust_future_cancel(f));
    assert_int_equal(gust_future_status(f), GUST_ECANCELED);
    gust_future_unref(f);
    spin(loop, 3);
    assert_int_equal(cancel_seen, GUST_ECANCELED);
    assert_int_equal(after_cancel, 0);
    /* What it awaited is not cancelled. */
    assert_false(gust_future_done(sleep));
    assert_no_coroutines_left();
    gust_future_cancel(sleep);
    gust_future_unref(sleep);
    spin(loop, 1);
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_cancel_before_start(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    ran = 0;
    gust_future *f = gust_spawn(loop, return_value, NULL);
    assert_true(gust_future_cancel(f));
    assert_int_equal(gust_loop_run_sync(loop, f, 10, NULL), GUST_ECANCELED);
    spin(loop, 1);
    assert_int_equal(ran, 0); /* it never ran */
    assert_no_coroutines_left();
    assert_int_equal(gust_loop_free(loop), 0);
}

static int self_cancel_seen;

static int cancels_itself(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    (void)data;
    gust_future_cancel(gust_coro_self());
    self_cancel_seen = gust_await(gust_sleep(loop, 0.05), NULL);
    return 0;
}

static void test_cancel_running(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *f = gust_spawn(loop, cancels_itself, NULL);
    assert_int_equal(gust_loop_run_sync(loop, f, 10, NULL), GUST_ECANCELED);
    spin(loop, 1);
    /* The next await returned at once; the sleep it was given runs on
     * until its timer fires. */
    assert_int_equal(self_cancel_seen, GUST_ECANCELED);
    assert_no_coroutines_left();
    assert_int_equal(gust_loop_run_sync(loop, gust_sleep(loop, 0.1), 10, NULL),
                     0);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Many at once ------------------------------------------------------ */

#define MANY 10000

static int waiting, max_waiting, many_done, many_started;

static int many_coro(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    gust_future *shared = data;
    gust_future *f = many_started++ & 1 ? gust_sleep(loop, 0.05)
                                        : gust_future_ref(shared);
    if (++waiting > max_waiting)
        max_waiting = waiting;
    int r = gust_await(f, NULL);
    waiting--;
    if (r == 0)
        many_done++;
    return r;
}

static void test_ten_thousand(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_future *shared = gust_future_new(loop);
    gust_future **fs = malloc(MANY * sizeof *fs);
    assert_non_null(fs);
    waiting = max_waiting = many_done = many_started = 0;
    for (int i = 0; i < MANY; i++) {
        fs[i] = gust_spawn(loop, many_coro, shared);
        assert_non_null(fs[i]);
    }
    gust_coro_stats st;
    gust_coro_get_stats(&st);
    assert_int_equal(st.alive, MANY);
    spin(loop, 1);
    /* All started, and all suspended at the same time. */
    assert_int_equal(max_waiting, MANY);
    gust_future_set_result(shared, GUST_VALUE_NONE);
    gust_future *all = gust_all(loop, fs, MANY);
    free(fs);
    assert_int_equal(gust_loop_run_sync(loop, all, 60, NULL), 0);
    assert_int_equal(many_done, MANY);
    gust_future_unref(shared);
    /* Memory released: every stack unmapped or in the bounded pool. */
    gust_coro_get_stats(&st);
    assert_int_equal(st.alive, 0);
    assert_true(st.pooled <= 64);
    assert_int_equal(st.mapped, st.pooled);
    gust_coro_pool_trim();
    gust_coro_get_stats(&st);
    assert_int_equal(st.mapped, 0);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Stacks ------------------------------------------------------------ */

static void test_stack_pool_reuse(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_coro_pool_trim();
    gust_coro_stats st0, st;
    gust_coro_get_stats(&st0);
    assert_int_equal(st0.mapped, 0);
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, return_value,
                                                         NULL), 10, NULL), 0);
    gust_coro_get_stats(&st);
    assert_int_equal(st.mapped, 1);
    assert_int_equal(st.pooled, 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(gust_loop_run_sync(loop,
                             gust_spawn(loop, return_value, NULL), 10, NULL), 0);
    gust_coro_get_stats(&st);
    assert_int_equal(st.mapped, 1); /* the same stack, each time */
    assert_int_equal(st.reused - st0.reused, 5);
    /* A bound of 0: stacks are unmapped when their coroutine ends. */
    gust_coro_set_pool_max(0);
    gust_coro_pool_trim();
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, return_value,
                                                         NULL), 10, NULL), 0);
    gust_coro_get_stats(&st);
    assert_int_equal(st.mapped, 0);
    assert_int_equal(st.pooled, 0);
    gust_coro_set_pool_max(64);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Uses most of the stack it is given. */
static int deep(int n)
{
    volatile char buf[1000];
    buf[0] = (char)n;
    buf[sizeof buf - 1] = (char)n;
    return n <= 0 ? buf[0] : deep(n - 1) + buf[sizeof buf - 1];
}

static int uses_stack(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    *result = GUST_VALUE_INT(deep((int)(intptr_t)data));
    return 0;
}

static void test_stack_size(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    size_t old = gust_coro_stack_size();
    assert_true(old >= 16 * 1024);
    assert_int_equal(gust_coro_set_stack_size(100), -EINVAL);
    assert_int_equal(gust_coro_set_stack_size((size_t)4 << 30), -EINVAL);
    assert_int_equal(gust_coro_set_stack_size(300 * 1024 + 1), 0);
    assert_int_equal(gust_coro_stack_size() % 4096, 0);
    assert_true(gust_coro_stack_size() > 300 * 1024);
    /* ~200 KB of frames: would overflow the default 64 KiB. */
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, uses_stack,
                                                         (void *)150), 10,
                                        NULL), 0);
    assert_int_equal(gust_coro_set_stack_size(old), 0);
    /* A stack of the old size is not reused for the new size. */
    gust_coro_stats st;
    assert_int_equal(gust_loop_run_sync(loop, gust_spawn(loop, return_value,
                                                         NULL), 10, NULL), 0);
    gust_coro_get_stats(&st);
    assert_int_equal(st.mapped, st.pooled);
    assert_int_equal(st.pooled, 1);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Floating-point modes are per coroutine ---------------------------- */

#if defined(__x86_64__)
static unsigned get_mxcsr(void)
{
    unsigned v;
    __asm__ volatile("stmxcsr %0" : "=m"(v));
    return v;
}

static void set_mxcsr(unsigned v)
{
    __asm__ volatile("ldmxcsr %0" : : "m"(v));
}

static unsigned fp_inside;

static int changes_rounding(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    (void)data;
    set_mxcsr((get_mxcsr() & ~0x6000u) | 0x4000u); /* round up */
    gust_await(gust_sleep(loop, 0.001), NULL);
    fp_inside = get_mxcsr() & 0x6000u;
    set_mxcsr(get_mxcsr() & ~0x6000u);
    return 0;
}

static void test_fp_modes_saved(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    unsigned before = get_mxcsr();
    gust_future *f = gust_spawn(loop, changes_rounding, NULL);
    spin(loop, 1);
    /* The coroutine is suspended with its own rounding mode; ours is
     * untouched. */
    assert_int_equal(get_mxcsr(), before);
    assert_int_equal(gust_loop_run_sync(loop, f, 10, NULL), 0);
    assert_int_equal(fp_inside, 0x4000u);
    assert_int_equal(get_mxcsr(), before);
    assert_int_equal(gust_loop_free(loop), 0);
}
#endif

/* ---- Stack overflow death test ----------------------------------------- */

/* Stops only at an absurd depth, so the guard page comes first. */
static volatile int recurse_limit = 1 << 30;

static int recurse(int n)
{
    volatile char buf[256];
    buf[0] = (char)n;
    if (n >= recurse_limit)
        return buf[0];
    return recurse(n + 1) + buf[0];
}

static int overflows(gust_loop *loop, gust_value *result, void *data)
{
    (void)loop;
    (void)data;
    *result = GUST_VALUE_INT(recurse(0));
    return 0;
}

static void test_stack_overflow_dies(void **state)
{
    (void)state;
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(pipefd[1], STDERR_FILENO);
        close(pipefd[0]);
        alarm(20);
        if (gust_coro_install_overflow_handler() < 0)
            _exit(3);
        gust_loop *loop = gust_loop_new();
        gust_future *f = gust_spawn(loop, overflows, NULL);
        gust_loop_run_sync(loop, f, 10, NULL);
        _exit(4); /* not reached if the overflow was caught */
    }
    close(pipefd[1]);
    /* Keep the start of the output, drain the rest: a child blocked on a
     * full pipe (or killed by SIGPIPE) would say nothing about overflows. */
    char out[8192], sink[4096];
    size_t len = 0;
    ssize_t n;
    while ((n = read(pipefd[0], len < sizeof out - 1 ? out + len : sink,
                     len < sizeof out - 1 ? sizeof out - 1 - len
                                          : sizeof sink)) > 0)
        if (len < sizeof out - 1)
            len += (size_t)n;
    out[len] = '\0';
    close(pipefd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    bool ours = strstr(out, "coroutine stack overflow") != NULL;
    if (!WIFSIGNALED(status) || !ours)
        fprintf(stderr, "child status %#x, output:\n%s\n", status, out);
#ifdef UNDER_ASAN
    /* With ASAN_OPTIONS=allow_user_segv_handler=0, ASan keeps SIGSEGV and
     * reports the overflow itself, then exits: that is a detection too. */
    if (!ours) {
        assert_non_null(strstr(out, "AddressSanitizer: stack-overflow"));
        assert_true(WIFSIGNALED(status) ||
                    (WIFEXITED(status) && WEXITSTATUS(status) != 0));
        return;
    }
#endif
    assert_true(WIFSIGNALED(status));
    assert_true(WTERMSIG(status) == SIGABRT || WTERMSIG(status) == SIGSEGV);
    assert_true(ours);
}

/* ---- Another thread --------------------------------------------------- */

static void *thread_main(void *arg)
{
    int *out = arg;
    gust_loop *loop = gust_loop_new();
    gust_value v = GUST_VALUE_NONE;
    gust_coro_stats st;
    out[0] = gust_loop_run_sync(loop, gust_spawn(loop, outer_coro, NULL), 20,
                                &v);
    out[1] = (int)(intptr_t)v.ptr;
    gust_coro_get_stats(&st);
    out[2] = (int)st.pooled;
    /* drain the sleep outer_coro leaves running (see test_nested_spawn) */
    gust_loop_run_sync(loop, gust_sleep(loop, 0.3), 20, NULL);
    out[3] = gust_loop_free(loop);
    return NULL;
}

/* Each thread has its own scheduler and pool; the pool goes with it. */
static void test_other_thread(void **state)
{
    (void)state;
    gust_coro_stats before, after;
    gust_coro_get_stats(&before);
    int out[4] = {-1, -1, -1, -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, thread_main, out), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 70);
    assert_true(out[2] >= 1);
    assert_int_equal(out[3], 0);
    gust_coro_get_stats(&after);
    assert_int_equal(after.mapped, before.mapped); /* not this thread's */
}

static void test_switch_impl(void **state)
{
    (void)state;
    const char *impl = gust_coro_switch_impl();
#if defined(GUST_CORO_UCONTEXT)
    assert_string_equal(impl, "ucontext");
#elif defined(__x86_64__)
    assert_string_equal(impl, "x86_64");
#elif defined(__aarch64__)
    assert_string_equal(impl, "aarch64");
#else
    assert_string_equal(impl, "ucontext");
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_spawn_result, test_setup),
        cmocka_unit_test_setup(test_spawn_error, test_setup),
        cmocka_unit_test_setup(test_spawn_and_forget, test_setup),
        cmocka_unit_test_setup(test_await_sleep, test_setup),
        cmocka_unit_test_setup(test_await_does_not_block_loop, test_setup),
        cmocka_unit_test_setup(test_await_done_future, test_setup),
        cmocka_unit_test_setup(test_await_outside_coroutine, test_setup),
        cmocka_unit_test_setup(test_await_self, test_setup),
        cmocka_unit_test_setup(test_nested_spawn, test_setup),
        cmocka_unit_test_setup(test_cancel_suspended, test_setup),
        cmocka_unit_test_setup(test_cancel_before_start, test_setup),
        cmocka_unit_test_setup(test_cancel_running, test_setup),
        cmocka_unit_test_setup(test_ten_thousand, test_setup),
        cmocka_unit_test_setup(test_stack_pool_reuse, test_setup),
        cmocka_unit_test_setup(test_stack_size, test_setup),
#if defined(__x86_64__)
        cmocka_unit_test_setup(test_fp_modes_saved, test_setup),
#endif
        cmocka_unit_test_setup(test_stack_overflow_dies, test_setup),
        cmocka_unit_test_setup(test_other_thread, test_setup),
        cmocka_unit_test_setup(test_switch_impl, test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
