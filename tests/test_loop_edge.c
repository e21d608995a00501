/* Event loop edge cases: heap integrity under random restarts and stops,
 * missed periods, executor order, threadsafe posts from the loop thread and
 * before the loop starts, signals in batches, backend choice, fork. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "gust_test.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/loop.h"
#include "loop_internal.h"

/* gust_test.h's test_setup(), on the default backend. */
static int edge_setup(void **state)
{
    unsetenv("GUST_LOOP_BACKEND");
    return test_setup(state);
}

static void count_cb(gust_loop *loop, void *data)
{
    (void)loop;
    (*(int *)data)++;
}

static void noop_fd(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    (void)data;
}

static void count_fd(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    (*(int *)data)++;
}

/* ---- Heap integrity ---------------------------------------------------- */

#define N_RAND 2000

struct rand_timer {
    gust_timer t;
    int slot;        /* grid position of its current deadline */
    int order;       /* when it was last (re)started */
    bool active;
    int fired;
};

static struct rand_timer rtimers[N_RAND];
static int rfired[N_RAND];
static int rfired_n;

static void rand_cb(gust_timer *t, void *data)
{
    (void)t;
    struct rand_timer *r = data;
    r->fired++;
    rfired[rfired_n++] = (int)(r - rtimers);
}

/* Random starts, restarts (earlier and later) and stops: the heap must still
 * fire exactly the active timers, in (deadline, last start) order. */
static void test_heap_random_ops(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    memset(rtimers, 0, sizeof rtimers);
    rfired_n = 0;
    unsigned seed = 99;
    double base = gust_loop_update_time(loop) + 0.01;
    int order = 0;
    for (int i = 0; i < N_RAND; i++)
        gust_timer_init(loop, &rtimers[i].t);
    for (int op = 0; op < 20000; op++) {
        struct rand_timer *r = &rtimers[rand_r(&seed) % N_RAND];
        if (rand_r(&seed) % 4 == 0) {
            gust_timer_stop(&r->t);
            r->active = false;
        } else {
            r->slot = rand_r(&seed) % 30;
            r->order = order++;
            assert_int_equal(gust_timer_start_at(&r->t, base + 0.001 * r->slot,
                                                 0, rand_cb, r), 0);
            r->active = true;
        }
        assert_int_equal(gust_timer_active(&r->t), r->active);
    }
    int expected = 0;
    for (int i = 0; i < N_RAND; i++)
        expected += rtimers[i].active;
    for (int it = 0; it < 10000 && rfired_n < expected; it++)
        assert_int_equal(gust_loop_run_once(loop, -1), 0);
    assert_int_equal(rfired_n, expected);
    for (int i = 0; i < N_RAND; i++)
        assert_int_equal(rtimers[i].fired, rtimers[i].active ? 1 : 0);
    for (int k = 1; k < rfired_n; k++) {
        struct rand_timer *a = &rtimers[rfired[k - 1]];
        struct rand_timer *b = &rtimers[rfired[k]];
        assert_true(a->slot < b->slot ||
                    (a->slot == b->slot && a->order < b->order));
    }
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Missed periods ---------------------------------------------------- */

struct late_ctx {
    int calls;
};

static void late_cb(gust_timer *t, void *data)
{
    (void)t;
    struct late_ctx *c = data;
    if (++c->calls == 1)
        usleep(250000); /* 2.5 periods late */
}

static void test_repeat_skips_missed_periods(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    struct late_ctx c = {0};
    gust_timer t;
    gust_timer_init(loop, &t);
    assert_int_equal(gust_timer_start(&t, 0.1, 0.1, late_cb, &c), 0);
    for (int i = 0; i < 1000 && c.calls == 0; i++)
        assert_int_equal(gust_loop_run_once(loop, -1), 0);
    assert_int_equal(c.calls, 1);
    /* ~0.35 s now; the periods at 0.2 and 0.3 are not made up: the next
     * call is at 0.4, so nothing is due right away. */
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(c.calls, 1);
    assert_true(gust_timer_active(&t));
    for (int i = 0; i < 1000 && c.calls == 1; i++)
        assert_int_equal(gust_loop_run_once(loop, -1), 0);
    assert_int_equal(c.calls, 2);
    gust_timer_stop(&t);
    assert_int_equal(gust_loop_free(loop), 0);
}

struct periodic_late {
    gust_periodic *p;
    int calls;
};

static void periodic_late_cb(gust_loop *loop, void *data)
{
    (void)loop;
    struct periodic_late *c = data;
    if (++c->calls == 1)
        usleep(250000);
}

static void test_periodic_skips_missed_periods(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    struct periodic_late c = {0};
    c.p = gust_periodic_new(loop, 0.1, periodic_late_cb, &c);
    assert_non_null(c.p);
    gust_periodic_start(c.p);
    gust_periodic_start(c.p); /* no-op while running */
    for (int i = 0; i < 1000 && c.calls == 0; i++)
        assert_int_equal(gust_loop_run_once(loop, -1), 0);
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(c.calls, 1);
    gust_periodic_free(c.p);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Stop semantics ---------------------------------------------------- */

struct stop_ctx {
    int timer_calls;
};

static void stop_and_schedule(gust_loop *loop, void *data)
{
    gust_loop_stop(loop);
    /* Due in this iteration's timer phase: runs before start() returns. */
    assert_int_not_equal(gust_loop_call_later(loop, 0, count_cb, data), 0);
}

static void test_stop_finishes_iteration(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    int calls = 0;
    assert_int_equal(gust_loop_add_callback(loop, stop_and_schedule, &calls),
                     0);
    assert_int_equal(gust_loop_start(loop), 0);
    assert_int_equal(calls, 1);
    /* stop_threadsafe while not running: the next start returns after one
     * iteration. */
    gust_loop_stop_threadsafe(loop);
    assert_int_equal(gust_loop_start(loop), 0);
    /* run_until with no condition: until the timeout. */
    assert_int_equal(gust_loop_run_until(loop, NULL, NULL, 0.02),
                     GUST_ETIMEOUT);
    assert_int_equal(gust_loop_free(NULL), 0);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Threadsafe from the loop thread, and before start ----------------- */

struct self_post {
    int first, second;
};

static void self_second(gust_loop *loop, void *data)
{
    (void)loop;
    ((struct self_post *)data)->second++;
}

static void self_first(gust_loop *loop, void *data)
{
    struct self_post *c = data;
    c->first++;
    assert_int_equal(gust_loop_add_callback_threadsafe(loop, self_second, c),
                     0);
}

static void test_threadsafe_from_loop_thread(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    struct self_post c = {0};
    /* Posted before the backend exists: no wake fd yet, still not lost. */
    assert_int_equal(gust_loop_add_callback_threadsafe(loop, self_first, &c),
                     0);
    assert_false(gust__loop_in_use(loop));
    double t0 = gust_loop_update_time(loop);
    /* The new post makes the wait non-blocking: no 5 s sleep. */
    assert_int_equal(gust_loop_run_once(loop, 5), 0);
    assert_true(gust_loop_update_time(loop) - t0 < 2.5);
    assert_int_equal(c.first, 1);
    assert_int_equal(c.second, 0); /* next iteration, not this one */
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    assert_int_equal(c.second, 1);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Executor ---------------------------------------------------------- */

#define N_FIFO 100

struct fifo_exec {
    int started[N_FIFO + 1];
    int nstarted;
    int done[N_FIFO];
    int ndone;
    pthread_mutex_t lock;
};

static struct fifo_exec fifo_exec;

static void fifo_work(void *data)
{
    pthread_mutex_lock(&fifo_exec.lock);
    fifo_exec.started[fifo_exec.nstarted++] = (int)(intptr_t)data;
    pthread_mutex_unlock(&fifo_exec.lock);
}

static void fifo_done(gust_loop *loop, int status, void *data)
{
    (void)loop;
    assert_int_equal(status, 0);
    fifo_exec.done[fifo_exec.ndone++] = (int)(intptr_t)data;
}

static bool fifo_all_done(gust_loop *loop, void *data)
{
    (void)loop;
    (void)data;
    return fifo_exec.ndone == N_FIFO;
}

static void test_executor_fifo(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    memset(&fifo_exec, 0, sizeof fifo_exec);
    pthread_mutex_init(&fifo_exec.lock, NULL);
    /* One thread: start order and completion order are both FIFO. */
    assert_int_equal(gust_loop_set_executor_threads(loop, 1), 0);
    for (int i = 0; i < N_FIFO; i++)
        assert_int_equal(gust_loop_run_in_executor(loop, fifo_work, fifo_done,
                                                   (void *)(intptr_t)i), 0);
    assert_int_equal(gust_loop_run_until(loop, fifo_all_done, NULL, 30), 0);
    for (int i = 0; i < N_FIFO; i++) {
        assert_int_equal(fifo_exec.started[i], i);
        assert_int_equal(fifo_exec.done[i], i);
    }
    /* done may be NULL: the work still runs and the loop can be freed. */
    assert_int_equal(gust_loop_run_in_executor(loop, fifo_work, NULL,
                                               (void *)(intptr_t)-1), 0);
    assert_int_equal(gust_loop_free(loop), -EBUSY);
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(gust_loop_run_once(loop, 0.01), 0);
        if (gust_loop_free(loop) == 0) {
            loop = NULL;
            break;
        }
    }
    assert_null(loop);
    assert_int_equal(fifo_exec.nstarted, N_FIFO + 1);
    pthread_mutex_destroy(&fifo_exec.lock);
}

/* ---- Signals ----------------------------------------------------------- */

struct sig_batch {
    gust_loop *loop;
    int usr1, usr2;
};

static void sig_usr1(gust_loop *loop, int signum, void *data)
{
    struct sig_batch *c = data;
    assert_int_equal(signum, SIGUSR1);
    c->usr1++;
    /* SIGUSR2 is pending in the same batch: removing it drops it. */
    assert_int_equal(gust_loop_remove_signal(loop, SIGUSR2), 0);
}

static void sig_usr2(gust_loop *loop, int signum, void *data)
{
    (void)loop;
    (void)signum;
    ((struct sig_batch *)data)->usr2++;
}

static bool usr1_seen(gust_loop *loop, void *data)
{
    (void)loop;
    return ((struct sig_batch *)data)->usr1 > 0;
}

static void test_signal_batch_and_default_restored(void **state)
{
    (void)state;
    struct sigaction before;
    assert_int_equal(sigaction(SIGUSR2, NULL, &before), 0);
    assert_ptr_equal(before.sa_handler, SIG_DFL);
    gust_loop *loop = new_loop();
    struct sig_batch c = {.loop = loop};
    assert_int_equal(gust_loop_add_signal(loop, SIGUSR1, sig_usr1, &c), 0);
    assert_int_equal(gust_loop_add_signal(loop, SIGUSR2, sig_usr2, &c), 0);
    assert_int_equal(gust_loop_add_signal(loop, SIGUSR2, sig_usr2, &c),
                     -EBUSY);
    assert_true(gust__loop_in_use(loop));
    errno = EDOM;
    assert_int_equal(raise(SIGUSR1), 0);
    assert_int_equal(raise(SIGUSR2), 0);
    assert_int_equal(errno, EDOM); /* the handler leaves errno alone */
    assert_int_equal(gust_loop_run_until(loop, usr1_seen, &c, 10), 0);
    assert_int_equal(c.usr1, 1);
    assert_int_equal(c.usr2, 0);
    struct sigaction after;
    assert_int_equal(sigaction(SIGUSR2, NULL, &after), 0);
    assert_ptr_equal(after.sa_handler, SIG_DFL);
    assert_int_equal(gust_loop_remove_signal(loop, SIGUSR1), 0);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Backend choice ---------------------------------------------------- */

static int warnings;

static void count_warnings(int level, const char *module, const char *msg,
                           void *data)
{
    (void)msg;
    (void)data;
    if (level == GUST_LOG_WARNING && strcmp(module, "loop") == 0)
        warnings++;
}

static void test_unknown_backend_falls_back(void **state)
{
    (void)state;
    gust_loop *ref = new_loop();
    const char *best = gust_loop_backend(ref);
    assert_int_equal(gust_loop_free(ref), 0);

    setenv("GUST_LOOP_BACKEND", "no-such-backend", 1);
    gust_log_set_handler(count_warnings, NULL);
    warnings = 0;
    gust_loop *loop = new_loop();
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    gust_log_set_handler(NULL, NULL);
    unsetenv("GUST_LOOP_BACKEND");
    assert_string_equal(gust_loop_backend(loop), best);
    assert_int_equal(warnings, 1);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* The backend's refusal leaves nothing registered. */
static void test_add_handler_backend_error(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    assert_int_equal(gust_loop_run_once(loop, 0), 0);
    if (strcmp(gust_loop_backend(loop), "epoll") != 0) {
        assert_int_equal(gust_loop_free(loop), 0);
        skip();
    }
    char path[] = "/tmp/gust_loop_testXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    /* epoll refuses regular files. */
    assert_int_equal(gust_loop_add_handler(loop, fd, GUST_READ, noop_fd, NULL),
                     -EPERM);
    assert_int_equal(gust_loop_add_handler(loop, fd, GUST_READ, noop_fd, NULL),
                     -EPERM);
    assert_int_equal(gust_loop_remove_handler(loop, fd), -ENOENT);
    close(fd);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- More ready fds than one wait collects ---------------------------- */

#define N_MANY 1500

static int many_calls[N_MANY];

static void many_fd(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    (void)events;
    many_calls[(intptr_t)data]++;
}

/* Level-triggered fds beyond the batch size are served in the following
 * iterations; none starves. */
static void run_many_fds(const char *backend)
{
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < 2 * N_MANY + 64)
        skip();
    setenv("GUST_LOOP_BACKEND", backend, 1);
    gust_loop *loop = new_loop();
    static int pipes[N_MANY][2];
    memset(many_calls, 0, sizeof many_calls);
    for (int i = 0; i < N_MANY; i++) {
        assert_int_equal(pipe2(pipes[i], O_NONBLOCK | O_CLOEXEC), 0);
        assert_int_equal(write(pipes[i][1], "x", 1), 1);
        assert_int_equal(gust_loop_add_handler(loop, pipes[i][0], GUST_READ,
                                               many_fd, (void *)(intptr_t)i),
                         0);
    }
    assert_string_equal(gust_loop_backend(loop), backend);
    unsetenv("GUST_LOOP_BACKEND");
    for (int it = 0; it < 3; it++)
        assert_int_equal(gust_loop_run_once(loop, 1), 0);
    int total = 0;
    for (int i = 0; i < N_MANY; i++) {
        assert_true(many_calls[i] >= 1);
        total += many_calls[i];
    }
    assert_true(total <= 3 * 1024);
    for (int i = 0; i < N_MANY; i++) {
        assert_int_equal(gust_loop_remove_handler(loop, pipes[i][0]), 0);
        close(pipes[i][0]);
        close(pipes[i][1]);
    }
    assert_int_equal(gust_loop_free(loop), 0);
}

static void test_many_ready_fds_epoll(void **state)
{
    (void)state;
    gust_loop *probe = new_loop();
    bool have_epoll = strcmp(gust_loop_backend(probe), "epoll") == 0;
    assert_int_equal(gust_loop_free(probe), 0);
    if (!have_epoll)
        skip();
    run_many_fds("epoll");
}

static void test_many_ready_fds_poll(void **state)
{
    (void)state;
    run_many_fds("poll");
}

/* ---- Fork -------------------------------------------------------------- */

static void test_forked_child_update_remove(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv),
                     0);
    assert_int_equal(gust_loop_add_handler(loop, sv[0], GUST_READ, noop_fd,
                                           NULL), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int ok = gust_loop_update_handler(loop, sv[0], GUST_WRITE) ==
                     GUST_EFORKED &&
                 gust_loop_remove_handler(loop, sv[0]) == GUST_EFORKED &&
                 gust_loop_add_signal(loop, SIGUSR1, sig_usr2, NULL) ==
                     GUST_EFORKED;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The child did not touch the parent's registration. */
    assert_int_equal(write(sv[1], "x", 1), 1);
    int calls = 0;
    assert_int_equal(gust_loop_remove_handler(loop, sv[0]), 0);
    assert_int_equal(gust_loop_add_handler(loop, sv[0], GUST_READ, count_fd,
                                           &calls), 0);
    assert_int_equal(gust_loop_run_once(loop, 1), 0);
    assert_int_equal(calls, 1);
    assert_int_equal(gust_loop_remove_handler(loop, sv[0]), 0);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(gust_loop_free(loop), 0);
}

#define T(fn) cmocka_unit_test_setup(fn, edge_setup)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_heap_random_ops),
        T(test_repeat_skips_missed_periods),
        T(test_periodic_skips_missed_periods),
        T(test_stop_finishes_iteration),
        T(test_threadsafe_from_loop_thread),
        T(test_executor_fifo),
        T(test_signal_batch_and_default_restored),
        T(test_unknown_backend_falls_back),
        T(test_add_handler_backend_error),
        T(test_many_ready_fds_epoll),
        T(test_many_ready_fds_poll),
        T(test_forked_child_update_remove),
    };
    return cmocka_run_group_tests_name("loop_edge", tests, NULL, NULL);
}
