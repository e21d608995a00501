/* Logging (Tornado's log module).
 *
 * One line per message on stderr by default:
 *     [I 261123 07:01:02 12345 0 net] message
 * level letter, date and time, pid, task id (- when not forked), module.
 * Colour is used when stderr is a terminal.
 *
 * Lines cost no system call each: a thread running a loop turn buffers its
 * lines (stderr or the log file; not those given to a handler) and writes
 * them in one write() once the oldest is older than the flush interval
 * (0.05 s by default), when the buffer is full, at once for a WARNING or
 * ERROR line of any module but "access" (as nginx's error_log is next to
 * its buffered access_log),
 * and always before a fork, at exit() and when the thread ends. A line is
 * never split between two writes; on a pipe or socket shared by several
 * processes (workers) each write is at most PIPE_BUF bytes, so lines do
 * not interleave. A process killed by a signal it does not handle loses
 * what its buffer held, as nginx's buffered access_log does.
 * GUST_LOG_BUFFER=0 in the environment writes each line at once;
 * GUST_LOG_BUFFER=N buffers N bytes per thread (as gust_log_set_buffer).
 */
#ifndef GUST_LOG_H
#define GUST_LOG_H

#include "gust/common.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

enum gust_log_level {
    GUST_LOG_DEBUG = 10,
    GUST_LOG_INFO = 20,
    GUST_LOG_WARNING = 30,
    GUST_LOG_ERROR = 40,
    GUST_LOG_NONE = 100, /* as a threshold: log nothing */
};

/* Messages below the threshold are dropped. Default GUST_LOG_INFO, or the
 * level named by the environment variable GUST_LOG_LEVEL ("debug", "info",
 * "warning", "error", "none") when it is set. */
GUST_EXTERN void gust_log_set_level(int level);
GUST_EXTERN int gust_log_level(void);

/* Parses "debug" / "info" / "warning" / "error" / "none" (any case).
 * Returns the level, or -EINVAL. */
GUST_EXTERN int gust_log_level_from_name(const char *name);

/* Replaces the output: fn gets each formatted message (no trailing newline,
 * no prefix; valid during the call) with its level and module, at once, on
 * the thread that logged it. NULL restores the default writer (the log
 * file if gust_log_to_file() opened one, else stderr). */
typedef void (*gust_log_fn)(int level, const char *module, const char *msg,
                            void *data);
GUST_EXTERN void gust_log_set_handler(gust_log_fn fn, void *data);

/* Writes log lines to the file at path (appended to; created if missing),
 * in the stderr format without colour, instead of stderr, or as well with
 * also_stderr. When the file would grow past max_size bytes (0: never) it is
 * rotated, as Python's RotatingFileHandler: path becomes path.1, path.1
 * becomes path.2, ..., up to backups files. Calling it again with the same
 * path only changes the settings. Replaces any handler set with
 * gust_log_set_handler(). Returns 0, or a negated errno if the file cannot
 * be opened (logging is then unchanged). Call it, and gust_log_close_file(),
 * while no other thread logs (e.g. at start-up in main). */
GUST_EXTERN int gust_log_to_file(const char *path, long max_size, int backups,
                                 bool also_stderr);

/* Closes the log file and restores the stderr writer. No-op if none. */
GUST_EXTERN void gust_log_close_file(void);

/* Sets the buffering of the default writer: size bytes per thread (0:
 * every line is written at once; default 64 KiB) and the longest a line
 * waits (seconds; default 0.05; < 0 keeps the current value). Writes what
 * the calling thread has buffered first. Call it at start-up. */
GUST_EXTERN void gust_log_set_buffer(size_t size, double flush_seconds);

/* Logs a printf-style message for module ("loop", "stream", "http"...). */
GUST_EXTERN void gust_log(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
GUST_EXTERN void gust_vlog(int level, const char *module, const char *fmt,
                           va_list ap);

/* Logs msg (len bytes, not printf-formatted, at most 2047 kept) with the
 * usual prefix: for callers that built the message themselves. */
GUST_EXTERN void gust_log_message(int level, const char *module,
                                  const char *msg, size_t len);

/* Logs line (len bytes, no newline) as it is, without the "[I date pid
 * task module]" prefix: for lines with a format of their own, such as
 * the common log format or JSON access lines. Control characters become
 * '?', as in every message. A handler gets it as its msg. */
GUST_EXTERN void gust_log_raw_line(int level, const char *module,
                                   const char *line, size_t len);

#define gust_log_debug(mod, ...) gust_log(GUST_LOG_DEBUG, mod, __VA_ARGS__)
#define gust_log_info(mod, ...) gust_log(GUST_LOG_INFO, mod, __VA_ARGS__)
#define gust_log_warning(mod, ...) gust_log(GUST_LOG_WARNING, mod, __VA_ARGS__)
#define gust_log_error(mod, ...) gust_log(GUST_LOG_ERROR, mod, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif /* GUST_LOG_H */
