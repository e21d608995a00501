/* Logging (Tornado's log module).
 *
 * One line per message on stderr by default:
 *     [I 261123 07:01:02 12345 0 net] message
 * level letter, date and time, pid, task id (- when not forked), module.
 * Colour is used when stderr is a terminal.
 */
#ifndef GUST_LOG_H
#define GUST_LOG_H

#include "gust/common.h"

#include <stdarg.h>
#include <stdbool.h>

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

/* Replaces the output: fn gets each formatted message (no trailing newline)
 * with its level and module. NULL restores the default stderr writer. */
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

/* Logs a printf-style message for module ("loop", "stream", "http"...). */
GUST_EXTERN void gust_log(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
GUST_EXTERN void gust_vlog(int level, const char *module, const char *fmt,
                           va_list ap);

#define gust_log_debug(mod, ...) gust_log(GUST_LOG_DEBUG, mod, __VA_ARGS__)
#define gust_log_info(mod, ...) gust_log(GUST_LOG_INFO, mod, __VA_ARGS__)
#define gust_log_warning(mod, ...) gust_log(GUST_LOG_WARNING, mod, __VA_ARGS__)
#define gust_log_error(mod, ...) gust_log(GUST_LOG_ERROR, mod, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif /* GUST_LOG_H */
