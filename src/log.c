/* Logging: one formatted line per message, to stderr or a user handler. */
#include <ctype.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "gust/error.h"
#include "gust/log.h"
#include "gust/process.h"

/* The level is read on every call from any thread: an atomic int, lazily
 * seeded from GUST_LOG_LEVEL so programs need no set-up call. */
static atomic_int log_level = -1;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static gust_log_fn log_handler;
static void *log_handler_data;

int gust_log_level_from_name(const char *name)
{
    static const struct { const char *name; int level; } names[] = {
        {"debug", GUST_LOG_DEBUG},     {"info", GUST_LOG_INFO},
        {"warning", GUST_LOG_WARNING}, {"warn", GUST_LOG_WARNING},
        {"error", GUST_LOG_ERROR},     {"none", GUST_LOG_NONE},
    };
    if (!name)
        return -EINVAL;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcasecmp(name, names[i].name) == 0)
            return names[i].level;
    return -EINVAL;
}

int gust_log_level(void)
{
    int level = atomic_load_explicit(&log_level, memory_order_relaxed);
    if (level < 0) {
        const char *env = getenv("GUST_LOG_LEVEL");
        level = env ? gust_log_level_from_name(env) : GUST_LOG_INFO;
        if (level < 0)
            level = GUST_LOG_INFO;
        atomic_store(&log_level, level);
    }
    return level;
}

void gust_log_set_level(int level)
{
    atomic_store(&log_level, level);
}

void gust_log_set_handler(gust_log_fn fn, void *data)
{
    pthread_mutex_lock(&log_lock);
    log_handler = fn;
    log_handler_data = data;
    pthread_mutex_unlock(&log_lock);
}

static char level_letter(int level)
{
    if (level >= GUST_LOG_ERROR)
        return 'E';
    if (level >= GUST_LOG_WARNING)
        return 'W';
    if (level >= GUST_LOG_INFO)
        return 'I';
    return 'D';
}

static const char *level_colour(int level)
{
    if (level >= GUST_LOG_ERROR)
        return "\033[31m";
    if (level >= GUST_LOG_WARNING)
        return "\033[33m";
    if (level >= GUST_LOG_INFO)
        return "\033[32m";
    return "\033[34m";
}

void gust_vlog(int level, const char *module, const char *fmt, va_list ap)
{
    if (level < gust_log_level())
        return;
    if (!module)
        module = "gust";

    char msg[2048];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        return;
    /* One line per message: control characters (e.g. from a peer's bytes
     * quoted in a message) must not forge extra log lines. */
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            *p = '?';

    pthread_mutex_lock(&log_lock);
    gust_log_fn handler = log_handler;
    void *hdata = log_handler_data;
    pthread_mutex_unlock(&log_lock);
    if (handler) {
        handler(level, module, msg, hdata);
        return;
    }

    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char when[32];
    strftime(when, sizeof when, "%y%m%d %H:%M:%S", &tm);

    char task[16] = "-";
    int id = gust_task_id();
    if (id >= 0)
        snprintf(task, sizeof task, "%d", id);

    bool colour = isatty(STDERR_FILENO);
    /* One fprintf per line so that lines from several processes sharing
     * stderr do not interleave mid-line. */
    fprintf(stderr, "%s[%c %s %ld %s %s]%s %s\n", colour ? level_colour(level) : "",
            level_letter(level), when, (long)getpid(), task, module,
            colour ? "\033[0m" : "", msg);
}

void gust_log(int level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gust_vlog(level, module, fmt, ap);
    va_end(ap);
}
