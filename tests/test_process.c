/* Tests for process.h: fork_processes, task ids, restarts, stop on SIGTERM,
 * and the refusal to fork once the current loop is in use. Each fork test
 * runs gust_fork_processes() in a child of the test ("supervisor") so that
 * the test itself never becomes a supervisor. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gust/loop.h"
#include "gust/process.h"
#include "loop_internal.h"

static void on_readable(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop, (void)fd, (void)events, (void)data;
}

/* Waits for pid with a bound, so a broken supervisor fails the test instead
 * of hanging it. Returns the wait status, or -1 on timeout (pid killed). */
static int wait_bounded(pid_t pid, int seconds)
{
    for (int i = 0; i < seconds * 100; i++) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        struct timespec ms10 = {0, 10 * 1000 * 1000};
        nanosleep(&ms10, NULL);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

/* Reads everything the workers wrote to the pipe until all writers closed. */
static size_t read_all(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    while (n < cap && (r = read(fd, buf + n, cap - n)) > 0)
        n += (size_t)r;
    return n;
}

static void test_cpu_count_and_task_id(void **state)
{
    (void)state;
    assert_true(gust_cpu_count() >= 1);
    assert_int_equal(gust_task_id(), -1);
}

static void test_refuses_when_loop_in_use(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_new();
    assert_non_null(loop);
    gust_loop_make_current(loop);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(gust_loop_add_handler(loop, p[0], GUST_READ, on_readable, NULL), 0);

    pid_t me = getpid();
    assert_int_equal(gust_fork_processes(2, 0), GUST_ELOOPINUSE);
    assert_int_equal(getpid(), me);
    /* No child was created. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    assert_int_equal(gust_task_id(), -1);

    assert_int_equal(gust_loop_remove_handler(loop, p[0]), 0);
    close(p[0]);
    close(p[1]);
    assert_int_equal(gust_loop_free(loop), 0);
    assert_null(gust__loop_current_if_any());
}

/* Workers write their task id (as a digit) and exit with code; returns the
 * supervisor's wait status and what the workers wrote. */
static int run_supervisor(int nproc, int max_restarts, int code, char *out,
                          size_t cap, size_t *outlen)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t sup = fork();
    assert_true(sup >= 0);
    if (sup == 0) {
        close(p[0]);
        /* A loop that exists but was never started is safe to fork with. */
        gust_loop *loop = gust_loop_current();
        (void)loop;
        int id = gust_fork_processes(nproc, max_restarts);
        if (id < 0)
            _exit(100);
        char c = (char)('0' + id);
        ssize_t w = write(p[1], &c, 1);
        (void)w;
        _exit(code);
    }
    close(p[1]);
    *outlen = read_all(p[0], out, cap);
    close(p[0]);
    return wait_bounded(sup, 30);
}

static void test_workers_get_task_ids_and_parent_exits_zero(void **state)
{
    (void)state;
    char buf[64];
    size_t n;
    int status = run_supervisor(3, 0, 0, buf, sizeof buf, &n);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(n, 3);
    int seen[3] = {0};
    for (size_t i = 0; i < n; i++) {
        assert_true(buf[i] >= '0' && buf[i] <= '2');
        seen[buf[i] - '0']++;
    }
    assert_int_equal(seen[0], 1);
    assert_int_equal(seen[1], 1);
    assert_int_equal(seen[2], 1);
}

static void test_failing_workers_restarted_then_gives_up(void **state)
{
    (void)state;
    char buf[64];
    size_t n;
    /* 2 first starts and 3 restarts; the 4th failure gives up. The four
     * failures each wrote first; the last restarted worker may be stopped
     * by the supervisor before it writes. */
    int status = run_supervisor(2, 3, 1, buf, sizeof buf, &n);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 1);
    assert_in_range(n, 4, 5);
}

static void test_sigterm_stops_children(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t sup = fork();
    assert_true(sup >= 0);
    if (sup == 0) {
        close(p[0]);
        int id = gust_fork_processes(2, 5);
        if (id < 0)
            _exit(100);
        pid_t me = getpid();
        ssize_t w = write(p[1], &me, sizeof me);
        (void)w;
        close(p[1]);
        for (;;)
            pause(); /* until the supervisor's SIGTERM */
    }
    close(p[1]);
    pid_t workers[2];
    size_t n = read_all(p[0], (char *)workers, sizeof workers);
    assert_int_equal(n, sizeof workers);
    close(p[0]);
    assert_int_equal(kill(sup, SIGTERM), 0);
    int status = wait_bounded(sup, 30);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The supervisor reaped both before exiting. */
    for (int i = 0; i < 2; i++) {
        assert_int_equal(kill(workers[i], 0), -1);
        assert_int_equal(errno, ESRCH);
    }
}

static void test_worker_killed_by_signal_is_restarted(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t sup = fork();
    assert_true(sup >= 0);
    if (sup == 0) {
        close(p[0]);
        int id = gust_fork_processes(1, 5);
        if (id < 0)
            _exit(100);
        pid_t me = getpid();
        ssize_t w = write(p[1], &me, sizeof me);
        (void)w;
        close(p[1]);
        for (;;)
            pause();
    }
    close(p[1]);
    pid_t first, second;
    assert_int_equal(read(p[0], &first, sizeof first), (ssize_t)sizeof first);
    assert_int_equal(kill(first, SIGKILL), 0);
    assert_int_equal(read(p[0], &second, sizeof second), (ssize_t)sizeof second);
    assert_int_not_equal(first, second);
    close(p[0]);
    assert_int_equal(kill(sup, SIGTERM), 0);
    int status = wait_bounded(sup, 30);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(void)
{
    /* Everything a failing test leaves behind dies with it. */
    alarm(240);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_count_and_task_id),
        cmocka_unit_test(test_refuses_when_loop_in_use),
        cmocka_unit_test(test_workers_get_task_ids_and_parent_exits_zero),
        cmocka_unit_test(test_failing_workers_restarted_then_gives_up),
        cmocka_unit_test(test_sigterm_stops_children),
        cmocka_unit_test(test_worker_killed_by_signal_is_restarted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
