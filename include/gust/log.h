/* Logging (Tornado's log module).
 *
 * One line per message on stderr by default:
 *     [I 261123 07:01:02 12345 0 net] message
 * level letter, date and time, pid, task id (- when not forked), module.
 * Colour is used when stderr is a terminal.
 */
#ifndef GUST_LOG_H
#define GUST_LOG_H

#include <stdarg.h>

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
void gust_log_set_level(int level);
int gust_log_level(void);

/* Parses "debug" / "info" / "warning" / "error" / "none" (any case).
 * Returns the level, or -EINVAL. */
int gust_log_level_from_name(const char *name);

/* Replaces the output: fn gets each formatted message (no trailing newline)
 * with its level and module. NULL restores the default stderr writer. */
typedef void (*gust_log_fn)(int level, const char *module, const char *msg,
                            void *data);
void gust_log_set_handler(gust_log_fn fn, void *data);

/* Logs a printf-style message for module ("loop", "stream", "http"...). */
void gust_log(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void gust_vlog(int level, const char *module, const char *fmt, va_list ap);

#define gust_log_debug(mod, ...) gust_log(GUST_LOG_DEBUG, mod, __VA_ARGS__)
#define gust_log_info(mod, ...) gust_log(GUST_LOG_INFO, mod, __VA_ARGS__)
#define gust_log_warning(mod, ...) gust_log(GUST_LOG_WARNING, mod, __VA_ARGS__)
#define gust_log_error(mod, ...) gust_log(GUST_LOG_ERROR, mod, __VA_ARGS__)

#ifdef __cplusplus
}
#endif

#endif /* GUST_LOG_H */
