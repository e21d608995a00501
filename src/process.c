/* Multi-process support (Tornado's process module): fork workers, restart the
 * ones that crash, stop them all on SIGTERM, and reload the binary on SIGHUP
 * without closing the listening sockets. */
#include <errno.h>
#include <stdio.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gust/error.h"
#include "gust/log.h"
#include "gust/process.h"
#include "loop_internal.h"
#include "net_internal.h"

/* The one piece of process-wide state besides the current loop: which child
 * this is. Set once in the child right after fork. */
static int task_id = -1;

/* How long the parent waits for its children after sending SIGTERM before it
 * sends SIGKILL: longer than an HTTP server's default shutdown_timeout
 * (10 s), so that a worker's own deadline, which logs what it cuts, comes
 * first. */
#define STOP_GRACE_SECONDS 20

/* Workers of the previous image, to be stopped once the new ones run. */
#define OLD_WORKERS_ENV "GUST_OLD_WORKERS"
#define MAX_OLD_WORKERS 1024

int gust_task_id(void)
{
    return task_id;
}

int gust_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* The parent's bookkeeping: pid of each task id, 0 when not running. */
typedef struct workers {
    pid_t *pids;
    int count;
    sigset_t waited;   /* SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1: blocked
                          in the parent */
    sigset_t old_mask; /* restored in each child */
} workers;

/* Forks the child for task id. Returns the child's pid in the parent, 0 in
 * the child (which is then ready to return id), or a negated errno. */
static pid_t start_child(workers *w, int id)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid > 0) {
        w->pids[id] = pid;
        gust_log_info("process", "started child %d (pid %ld)", id, (long)pid);
        return pid;
    }

    task_id = id;
    /* A child must not outlive a parent that was killed outright: it would
     * keep serving an old binary on the shared socket with nobody to stop
     * it. The getppid() check closes the race with a parent that died
     * between fork() and prctl(). */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(1);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    /* The parent passes SIGUSR1 on (statistics); a worker that does not
     * watch it must not die of it. */
    signal(SIGUSR1, SIG_IGN);
    sigprocmask(SIG_SETMASK, &w->old_mask, NULL);
    return 0;
}

/* The task id of one of our children, or -1. */
static int find_task(const workers *w, pid_t pid)
{
    for (int i = 0; i < w->count; i++)
        if (w->pids[i] == pid)
            return i;
    return -1;
}

/* Sends SIGTERM to every running child and waits for them, up to the grace
 * period, then SIGKILLs the rest. */
static void stop_children(workers *w)
{
    for (int i = 0; i < w->count; i++)
        if (w->pids[i] > 0)
            kill(w->pids[i], SIGTERM);

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += STOP_GRACE_SECONDS;
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    for (;;) {
        pid_t pid;
        int status;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            int id = find_task(w, pid);
            if (id >= 0)
                w->pids[id] = 0;
        }
        int left = 0;
        for (int i = 0; i < w->count; i++)
            left += w->pids[i] > 0;
        if (left == 0 || (pid < 0 && errno == ECHILD))
            return;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > deadline.tv_sec ||
            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec)) {
            gust_log_warning("process", "%d child(ren) still running after %d s, "
                             "sending SIGKILL", left, STOP_GRACE_SECONDS);
            for (int i = 0; i < w->count; i++)
                if (w->pids[i] > 0)
                    kill(w->pids[i], SIGKILL);
            while (waitpid(-1, &status, 0) > 0)
                ;
            return;
        }
        /* Sleep until a child exits, checking the clock at least every
         * 100 ms in case SIGCHLD was coalesced away. */
        struct timespec tick = {0, 100 * 1000 * 1000};
        sigtimedwait(&chld, NULL, &tick);
    }
}

static _Noreturn void parent_exit(workers *w, int status)
{
    free(w->pids);
    exit(status);
}

/* The parent's command line, NULL-terminated (from /proc: nothing has to
 * be remembered from main()). Freed with free(). */
static char **read_cmdline(void)
{
    FILE *f = fopen("/proc/self/cmdline", "re");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 > cap) {
            char *nb = realloc(buf, cap += 4096);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    fclose(f);
    size_t argc = 0;
    for (size_t i = 0; i < len; i++)
        argc += buf[i] == '\0';
    if (argc == 0) {
        free(buf);
        return NULL;
    }
    /* One block: the pointer array, then the strings. */
    char **argv = malloc((argc + 1) * sizeof *argv + len);
    if (!argv) {
        free(buf);
        return NULL;
    }
    char *strings = (char *)(argv + argc + 1);
    memcpy(strings, buf, len);
    free(buf);
    size_t k = 0;
    for (size_t i = 0; i < len && k < argc; k++) {
        argv[k] = strings + i;
        i += strlen(strings + i) + 1;
    }
    argv[k] = NULL;
    return argv;
}

/* SIGHUP: execs the program again with the listening sockets left open and
 * the workers' pids in the environment. The new image adopts the sockets
 * when it binds, forks its workers, then stops the old ones (see
 * stop_old_workers), which finish what they are serving: the accept queue
 * is never closed, so no connection is refused. Returns only if the exec
 * failed, after undoing everything. */
static void reload(workers *w)
{
    char **argv = read_cmdline();
    if (!argv) {
        gust_log_error("process", "SIGHUP: cannot read the command line, "
                       "not reloading");
        return;
    }
    int n = gust__net_export_listeners();
    char pids[MAX_OLD_WORKERS * 12] = "";
    size_t off = 0;
    for (int i = 0; i < w->count && off < sizeof pids - 12; i++)
        if (w->pids[i] > 0)
            off += (size_t)snprintf(pids + off, sizeof pids - off, "%s%ld",
                                    off ? "," : "", (long)w->pids[i]);
    setenv(OLD_WORKERS_ENV, pids, 1);
    gust_log_info("process", "SIGHUP: reloading %s, handing over %d listening "
                  "socket(s)", argv[0], n < 0 ? 0 : n);
    sigprocmask(SIG_SETMASK, &w->old_mask, NULL);
    execvp(argv[0], argv);
    int err = -errno;
    sigprocmask(SIG_BLOCK, &w->waited, NULL);
    gust__net_unexport_listeners();
    unsetenv(OLD_WORKERS_ENV);
    gust_log_error("process", "SIGHUP: cannot exec %s: %s; the current workers "
                   "go on serving", argv[0], gust_strerror(err));
    free(argv);
}

/* Whether pid is a child of this process (so that only our own workers
 * are ever signalled, whatever the environment says). */
static bool is_own_child(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return false;
    long ppid = -1;
    /* "pid (comm) state ppid ...": comm may hold spaces and ')'. */
    char line[512];
    if (fgets(line, sizeof line, f)) {
        char *p = strrchr(line, ')');
        if (p)
            sscanf(p + 1, " %*c %ld", &ppid);
    }
    fclose(f);
    return ppid == (long)getpid();
}

/* In a reloaded image, once its own workers are forked: SIGTERM to the
 * previous image's workers (listed by reload()). They are still our
 * children, since exec keeps the pid; supervise() reaps them as strangers,
 * without restarting them. */
static void stop_old_workers(const pid_t *old, int n)
{
    int stopped = 0;
    for (int i = 0; i < n; i++)
        if (is_own_child(old[i]) && kill(old[i], SIGTERM) == 0)
            stopped++;
    if (n)
        gust_log_info("process", "reload: new workers started, stopping %d "
                      "old worker(s)", stopped);
}

/* Reads and clears the old workers' pids left by reload(). */
static int take_old_workers(pid_t *old)
{
    const char *env = getenv(OLD_WORKERS_ENV);
    int n = 0;
    while (env && *env && n < MAX_OLD_WORKERS) {
        char *end;
        long pid = strtol(env, &end, 10);
        if (end == env)
            break;
        if (pid > 1)
            old[n++] = (pid_t)pid;
        if (*end != ',')
            break;
        env = end + 1;
    }
    unsetenv(OLD_WORKERS_ENV);
    return n;
}

/* The parent's life after the first fork: restart crashed children, stop on
 * SIGTERM/SIGINT, exit when all are done. Returns only in a (re)started
 * child, with its task id. */
static int supervise(workers *w, int max_restarts)
{
    int restarts = 0;
    int running = w->count;
    for (;;) {
        /* A timeout rather than an indefinite wait: SIGCHLDs coalesce, and a
         * periodic waitpid() sweep makes a lost one harmless. */
        struct timespec tick = {1, 0};
        int sig = sigtimedwait(&w->waited, NULL, &tick);
        if (sig == SIGHUP)
            reload(w);
        if (sig == SIGUSR1) /* each worker logs its own statistics */
            for (int i = 0; i < w->count; i++)
                if (w->pids[i] > 0)
                    kill(w->pids[i], SIGUSR1);
        if (sig == SIGTERM || sig == SIGINT) {
            gust_log_info("process", "received signal %d, stopping %d child(ren)",
                          sig, running);
            stop_children(w);
            parent_exit(w, 0);
        }

        pid_t pid;
        int status;
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            int id = find_task(w, pid);
            if (id < 0)
                continue; /* not one of ours (e.g. a helper the app forked) */
            w->pids[id] = 0;
            if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
                gust_log_info("process", "child %d (pid %ld) exited normally",
                              id, (long)pid);
                running--;
                continue;
            }
            if (WIFSIGNALED(status))
                gust_log_warning("process", "child %d (pid %ld) killed by signal "
                                 "%d, restarting", id, (long)pid,
                                 WTERMSIG(status));
            else
                gust_log_warning("process", "child %d (pid %ld) exited with "
                                 "status %d, restarting", id, (long)pid,
                                 WEXITSTATUS(status));
            if (++restarts > max_restarts) {
                gust_log_error("process", "%s (%d restarts)",
                               gust_strerror(GUST_ETOOMANYRESTARTS), max_restarts);
                stop_children(w);
                parent_exit(w, 1);
            }
            pid_t child = start_child(w, id);
            if (child == 0) {
                free(w->pids);
                return id;
            }
            if (child < 0) {
                gust_log_error("process", "cannot restart child %d: %s", id,
                               gust_strerror((int)child));
                stop_children(w);
                parent_exit(w, 1);
            }
        }
        if (running == 0) {
            gust_log_info("process", "all children exited normally");
            parent_exit(w, 0);
        }
    }
}

int gust_fork_processes(int num_processes, int max_restarts)
{
    if (task_id >= 0) {
        gust_log_error("process", "gust_fork_processes() called in child %d",
                       task_id);
        return -EINVAL;
    }
    gust_loop *loop = gust__loop_current_if_any();
    if (loop && gust__loop_in_use(loop)) {
        gust_log_error("process", "cannot fork: the current loop was started or "
                       "has registered file descriptors before "
                       "gust_fork_processes(), so every child would share its "
                       "epoll set; create the loop after forking");
        return GUST_ELOOPINUSE;
    }
    if (num_processes <= 0)
        num_processes = gust_cpu_count();
    if (max_restarts < 0)
        max_restarts = 100;

    workers w = {.count = num_processes};
    w.pids = calloc((size_t)num_processes, sizeof *w.pids);
    if (!w.pids)
        return -ENOMEM;
    /* Blocked before the first fork so that no SIGCHLD or SIGTERM can slip
     * in before the parent starts waiting for them. */
    sigemptyset(&w.waited);
    sigaddset(&w.waited, SIGCHLD);
    sigaddset(&w.waited, SIGTERM);
    sigaddset(&w.waited, SIGINT);
    sigaddset(&w.waited, SIGHUP);
    sigaddset(&w.waited, SIGUSR1);
    sigprocmask(SIG_BLOCK, &w.waited, &w.old_mask);

    /* After a reload: inherited sockets this image did not bind are closed
     * (it no longer serves them), and the old workers are remembered. */
    pid_t old[MAX_OLD_WORKERS];
    int nold = take_old_workers(old);
    int unused = gust__net_close_inherited();
    if (unused)
        gust_log_info("process", "reload: closed %d inherited socket(s) no "
                      "longer bound", unused);

    gust_log_info("process", "starting %d processes", num_processes);
    for (int id = 0; id < num_processes; id++) {
        pid_t child = start_child(&w, id);
        if (child == 0) {
            free(w.pids);
            return id;
        }
        if (child < 0) {
            int err = (int)child;
            gust_log_error("process", "fork failed: %s", gust_strerror(err));
            stop_children(&w);
            sigprocmask(SIG_SETMASK, &w.old_mask, NULL);
            free(w.pids);
            return err;
        }
    }
    stop_old_workers(old, nold);
    return supervise(&w, max_restarts);
}
