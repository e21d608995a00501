/* Multi-process servers (Tornado's process module).
 *
 * The pattern (shared/DESIGN.md, form 3):
 *     gust_socket_list *socks = gust_bind_sockets(8888, NULL, NULL);
 *     gust_fork_processes(0, 0);     // returns only in the children
 *     ... create the server, add the sockets, start the loop ...
 *
 * Bind before forking so every child shares the listening sockets; create or
 * touch no loop before forking (see loop.h, FORK SAFETY).
 */
#ifndef GUST_PROCESS_H
#define GUST_PROCESS_H

/* gust_task_id() and gust_cpu_count() are declared in common.h. */
#include "gust/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Forks num_processes children (<= 0: one per CPU, gust_cpu_count()).
 *
 * In each child it returns the child's task id, 0 .. num_processes-1. The
 * child dies with SIGTERM when the parent dies (Linux), its SIGTERM and
 * SIGINT dispositions are reset to the default and SIGUSR1 is ignored.
 *
 * The parent never returns on success: it waits for its children and
 * restarts one that dies by a signal or exits non-zero, giving it the same
 * task id, up to max_restarts restarts in all (max_restarts < 0: the default,
 * 100, as Tornado); past that it logs GUST_ETOOMANYRESTARTS, stops the
 * others and exits with status 1. A child that exits with status 0 is not
 * restarted. When every child has exited the parent exits with status 0.
 * SIGTERM or SIGINT to the parent sends SIGTERM to every child, waits for
 * them, and exits 0.
 *
 * SIGHUP to the parent reloads the program with no refused connection: the
 * parent execs its own command line again (so a rebuilt binary is picked
 * up), keeping its listening sockets open and its pid. In the new image,
 * gust_bind_sockets() (and gust_bind_unix_socket()) adopt the inherited
 * socket bound to the same address instead of binding a new one, so the
 * accept queue and the connections waiting in it survive; then
 * gust_fork_processes() forks the new workers and sends SIGTERM to the old
 * ones, which stop accepting and finish what they serve (an HTTP server's
 * gust_http_server_close_all()). Inherited sockets the new image does not
 * bind are closed when it forks. If the exec fails the old workers go on
 * and the error is logged. The new image must bind before forking, as the
 * pattern above does (start forms 2 and 3).
 *
 * SIGUSR1 to the parent is passed on to every worker (see
 * gust_http_server_log_stats_on_sigusr1()); workers start with SIGUSR1
 * ignored, so one that does not watch it is not harmed.
 *
 * Returns, in the calling process without forking, a negative code:
 * GUST_ELOOPINUSE if the calling thread's current loop has been started or
 * has registered an fd (the message also goes to the log), -EINVAL if
 * called again in a child, or the errno of a failed fork(). */
GUST_EXTERN int gust_fork_processes(int num_processes, int max_restarts);

#ifdef __cplusplus
}
#endif

#endif /* GUST_PROCESS_H */
