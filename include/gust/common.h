/* The common layer: what every other layer may use about the process it
 * runs in, with no dependency on any of them (errors are in error.h, the
 * log in log.h, both also common).
 *
 * The task id is set by gust_fork_processes() (process.h) in each child
 * right after fork(); the log prints it and the loop sizes its executor
 * from the CPU count, and neither depends on the process layer for that.
 */
#ifndef GUST_COMMON_H
#define GUST_COMMON_H

#ifdef __cplusplus
extern "C" {
#endif

/* The task id of this process if it was started by gust_fork_processes(),
 * else -1. */
int gust_task_id(void);

/* Number of CPUs this process may run on (sched_getaffinity, else
 * sysconf), at least 1. */
int gust_cpu_count(void);

#ifdef __cplusplus
}
#endif

#endif /* GUST_COMMON_H */
