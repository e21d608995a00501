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
#include "gust/common.h"

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

/* Formats one log line, newline included, truncated to fit size; returns
 * its length. The stderr writer and the log file share it, so both carry
 * the same line. */
static size_t format_line(char *buf, size_t size, int level, const char *module,
                          const char *msg, bool colour)
{
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

    int n = snprintf(buf, size, "%s[%c %s %ld %s %s]%s %s\n",
                     colour ? level_colour(level) : "", level_letter(level),
                     when, (long)getpid(), task, module,
                     colour ? "\033[0m" : "", msg);
    if (n < 0)
        return 0;
    if ((size_t)n >= size) {
        buf[size - 2] = '\n';
        return size - 1;
    }
    return (size_t)n;
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

    char line[2304];
    bool colour = isatty(STDERR_FILENO);
    size_t len = format_line(line, sizeof line, level, module, msg, colour);
    /* One write per line so that lines from several processes sharing
     * stderr do not interleave mid-line. */
    fwrite(line, 1, len, stderr);
}

void gust_log(int level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gust_vlog(level, module, fmt, ap);
    va_end(ap);
}

/* ---- Log file ------------------------------------------------------------ */

/* The file behind gust_log_to_file(). The handler may run on any thread
 * (executor threads log too), hence its own lock. */
struct log_file {
    pthread_mutex_t lock;
    FILE *fp;
    char *path;
    long max_size;
    int backups;
    bool to_stderr;
    long size;
};

static struct log_file *log_file;

/* Renames PATH.k to PATH.k+1 from the oldest down, then PATH to PATH.1, as
 * Python's RotatingFileHandler does. Called with lf->lock held. */
static void rotate(struct log_file *lf)
{
    size_t len = strlen(lf->path) + 16;
    char *from = malloc(len), *to = malloc(len);
    if (from && to && lf->backups > 0) {
        fclose(lf->fp);
        lf->fp = NULL;
        for (int k = lf->backups - 1; k >= 1; k--) {
            snprintf(from, len, "%s.%d", lf->path, k);
            snprintf(to, len, "%s.%d", lf->path, k + 1);
            rename(from, to);
        }
        snprintf(to, len, "%s.1", lf->path);
        rename(lf->path, to);
        lf->fp = fopen(lf->path, "ae");
        lf->size = 0;
    }
    free(from);
    free(to);
}

static void file_handler(int level, const char *module, const char *msg,
                         void *data)
{
    struct log_file *lf = data;
    char line[2304];
    size_t n = format_line(line, sizeof line, level, module, msg, false);
    pthread_mutex_lock(&lf->lock);
    if (lf->fp && lf->max_size > 0 && lf->size > 0 &&
        lf->size + (long)n > lf->max_size)
        rotate(lf);
    if (lf->fp) {
        fwrite(line, 1, n, lf->fp);
        fflush(lf->fp);
        lf->size += (long)n;
    }
    pthread_mutex_unlock(&lf->lock);
    if (lf->to_stderr)
        fwrite(line, 1, n, stderr);
}

void gust_log_close_file(void)
{
    struct log_file *lf = log_file;
    if (!lf)
        return;
    gust_log_set_handler(NULL, NULL);
    log_file = NULL;
    if (lf->fp)
        fclose(lf->fp);
    pthread_mutex_destroy(&lf->lock);
    free(lf->path);
    free(lf);
}

int gust_log_to_file(const char *path, long max_size, int backups,
                     bool also_stderr)
{
    if (!path || !*path)
        return -EINVAL;
    struct log_file *lf = log_file;
    if (lf && strcmp(lf->path, path) == 0) {
        pthread_mutex_lock(&lf->lock);
        lf->max_size = max_size;
        lf->backups = backups;
        lf->to_stderr = also_stderr;
        pthread_mutex_unlock(&lf->lock);
        return 0;
    }
    FILE *fp = fopen(path, "ae");
    if (!fp)
        return -errno;
    lf = calloc(1, sizeof *lf);
    if (!lf || !(lf->path = strdup(path))) {
        free(lf);
        fclose(fp);
        return -ENOMEM;
    }
    pthread_mutex_init(&lf->lock, NULL);
    lf->fp = fp;
    fseek(fp, 0, SEEK_END);
    lf->size = ftell(fp);
    lf->max_size = max_size;
    lf->backups = backups;
    lf->to_stderr = also_stderr;
    gust_log_close_file();
    log_file = lf;
    gust_log_set_handler(file_handler, lf);
    return 0;
}
