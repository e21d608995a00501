/* The common layer: what every other layer may use about the process it
 * runs in, with no dependency on any of them (errors are in error.h, the
 * log in log.h, both also common), and the mark on every public
 * declaration.
 *
 * The task id is set by gust_fork_processes() (process.h) in each child
 * right after fork(); the log prints it and the loop sizes its executor
 * from the CPU count, and neither depends on the process layer for that.
 */
#ifndef GUST_COMMON_H
#define GUST_COMMON_H

/* The library's version (the default Server and User-Agent headers name
 * it). */
#define GUST_VERSION_MAJOR 0
#define GUST_VERSION_MINOR 1
#define GUST_VERSION_PATCH 0
#define GUST_VERSION_STRING "0.1.0"

/* Marks a declaration as part of Gust's public interface. The library is
 * built with hidden visibility (CMake's C_VISIBILITY_PRESET), so that only
 * what carries this mark is exported from libgust.so and the internal
 * gust__* calls stay private to it (libuv's UV_EXTERN). Every function
 * declared in include/gust/ carries it; tests/check_exports.py checks
 * both sides against `nm -D`. */
#if defined(__GNUC__) || defined(__clang__)
#define GUST_EXTERN __attribute__((visibility("default")))
#else
#define GUST_EXTERN
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* The task id of this process if it was started by gust_fork_processes(),
 * else -1. */
GUST_EXTERN int gust_task_id(void);

/* Number of CPUs this process may run on (sched_getaffinity, else
 * sysconf), at least 1. */
GUST_EXTERN int gust_cpu_count(void);

#ifdef __cplusplus
}
#endif

#endif /* GUST_COMMON_H */
