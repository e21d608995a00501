/* Logging: one formatted line per message, to stderr, a log file or a user
 * handler.
 *
 * A line logged during a loop turn costs no system call: it is formatted
 * into the thread's buffer (one loop per thread, so this is the loop's
 * buffer), which is written whole, in one write() per batch of lines (see
 * log_internal.h for when). What a line needs from the kernel is looked up
 * once and again after a fork: the pid, whether stderr is a terminal
 * (colour) or a pipe (writes of at most PIPE_BUF bytes, cut at line ends,
 * so that workers sharing it never interleave inside a line). */
#include <ctype.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "gust/error.h"
#include "gust/log.h"
#include "gust/common.h"
#include "common_internal.h"
#include "log_internal.h"

/* The level is read on every call from any thread: an atomic int, lazily
 * seeded from GUST_LOG_LEVEL so programs need no set-up call. */
static atomic_int log_level = -1;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
/* Read without the lock on every line, to see that there is none. */
static _Atomic(gust_log_fn) log_handler;
static void *log_handler_data;

#define LINE_MAX_LEN 2304
#define MSG_MAX_LEN GUST__LOG_MSG_MAX

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

/* ---- What is decided once ------------------------------------------------ */

enum { STDERR_COLOUR = 1, STDERR_PIPE = 2 };

static atomic_long cached_pid;          /* 0: not looked up yet */
static atomic_int cached_stderr = -1;   /* STDERR_* bits; -1: not yet */
static atomic_size_t buffer_size = 64 * 1024;
static _Atomic uint64_t flush_interval_ns = 50 * 1000000u;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_key_t buffer_key;

static void on_fork_prepare(void);
static void on_fork_child(void);
static void on_exit_flush(void);
static void on_thread_exit(void *buf);

static void init_log(void)
{
    const char *env = getenv("GUST_LOG_BUFFER");
    if (env && *env) { /* bytes: 0, or at least a line's worth */
        char *end;
        unsigned long long n = strtoull(env, &end, 10);
        if (!*end && n <= 64u * 1024 * 1024)
            atomic_store(&buffer_size, n < LINE_MAX_LEN ? 0 : (size_t)n);
    }
    pthread_key_create(&buffer_key, on_thread_exit);
    pthread_atfork(on_fork_prepare, NULL, on_fork_child);
    atexit(on_exit_flush);
}

static long log_pid(void)
{
    long pid = atomic_load_explicit(&cached_pid, memory_order_relaxed);
    if (pid == 0) {
        pid = (long)getpid();
        atomic_store_explicit(&cached_pid, pid, memory_order_relaxed);
    }
    return pid;
}

static int stderr_mode(void)
{
    int mode = atomic_load_explicit(&cached_stderr, memory_order_relaxed);
    if (mode < 0) {
        struct stat st;
        mode = isatty(STDERR_FILENO) ? STDERR_COLOUR : 0;
        if (fstat(STDERR_FILENO, &st) == 0 &&
            (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)))
            mode |= STDERR_PIPE;
        atomic_store_explicit(&cached_stderr, mode, memory_order_relaxed);
    }
    return mode;
}

/* ---- Writing ------------------------------------------------------------- */

/* Writes all of p, retrying after a signal or a short write. */
static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere to report it */
        }
        p += w;
        n -= (size_t)w;
    }
}

/* Whole lines to stderr. A pipe or socket shared with other processes gets
 * writes of at most PIPE_BUF bytes, each ending at a line's end: the
 * kernel keeps such writes whole, so no worker's line is split by
 * another's. */
static void write_stderr(const char *p, size_t n)
{
    if (!(stderr_mode() & STDERR_PIPE)) {
        write_all(STDERR_FILENO, p, n);
        return;
    }
    while (n > 0) {
        size_t take = n;
        if (take > PIPE_BUF) {
            take = 0;
            for (size_t i = 0; i < PIPE_BUF; i++)
                if (p[i] == '\n')
                    take = i + 1;
            if (take == 0) { /* one line longer than PIPE_BUF */
                const char *nl = memchr(p, '\n', n);
                take = nl ? (size_t)(nl - p) + 1 : n;
            }
        }
        write_all(STDERR_FILENO, p, take);
        p += take;
        n -= take;
    }
}

/* The file behind gust_log_to_file(). Lines reach it from any thread
 * (executor threads log too), hence its own lock. */
struct log_file {
    pthread_mutex_t lock;
    int fd;
    char *path;
    long max_size;
    int backups;
    bool to_stderr;
    long size;
};

static struct log_file *_Atomic log_file;

/* Renames PATH.k to PATH.k+1 from the oldest down, then PATH to PATH.1, as
 * Python's RotatingFileHandler does. Called with lf->lock held. */
static void rotate(struct log_file *lf)
{
    size_t len = strlen(lf->path) + 16;
    char *from = malloc(len), *to = malloc(len);
    if (from && to && lf->backups > 0) {
        close(lf->fd);
        for (int k = lf->backups - 1; k >= 1; k--) {
            snprintf(from, len, "%s.%d", lf->path, k);
            snprintf(to, len, "%s.%d", lf->path, k + 1);
            rename(from, to);
        }
        snprintf(to, len, "%s.1", lf->path);
        rename(lf->path, to);
        lf->fd = open(lf->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
        lf->size = 0;
    }
    free(from);
    free(to);
}

/* Whole lines to the file, rotating before a line that would take it past
 * max_size (so a line is never split across two files), then to stderr
 * if asked. */
static void write_file(struct log_file *lf, const char *p, size_t n)
{
    pthread_mutex_lock(&lf->lock);
    const char *chunk = p, *end = p + n;
    long size = lf->size;
    bool fits = lf->max_size <= 0 || size + (long)n <= lf->max_size;
    for (const char *q = p; q < end && !fits;) {
        const char *nl = memchr(q, '\n', (size_t)(end - q));
        size_t ln = nl ? (size_t)(nl - q) + 1 : (size_t)(end - q);
        if (size > 0 && size + (long)ln > lf->max_size) {
            if (lf->fd >= 0)
                write_all(lf->fd, chunk, (size_t)(q - chunk));
            lf->size = size;
            rotate(lf);
            size = 0;
            chunk = q;
        }
        size += (long)ln;
        q += ln;
    }
    if (lf->fd >= 0)
        write_all(lf->fd, chunk, (size_t)(end - chunk));
    lf->size = fits ? size + (long)n : size;
    pthread_mutex_unlock(&lf->lock);
    if (lf->to_stderr)
        write_stderr(p, n);
}

/* Lines in the default format go to the log file if there is one, else
 * stderr. Called with log_lock not held. */
static void write_lines(const char *p, size_t n)
{
    pthread_mutex_lock(&log_lock);
    struct log_file *lf = log_file;
    if (lf)
        write_file(lf, p, n);
    pthread_mutex_unlock(&log_lock);
    if (!lf)
        write_stderr(p, n);
}

/* ---- The per-thread buffer ----------------------------------------------- */

typedef gust__log_buf log_buf;

_Thread_local gust__log_fast gust__log_fast_tl;

/* The next line takes gust__log_begin() again. */
static inline void fast_off(void)
{
    gust__log_fast_tl.module = NULL;
}

static _Thread_local log_buf *tl_buf;
static _Thread_local int tl_turns;       /* > 0 inside a loop turn */
static _Thread_local uint64_t tl_turn_ns;
/* The formatted date and time of one second, per thread. */
static _Thread_local time_t tl_when_sec = -1;
static _Thread_local char tl_when[32];
static _Thread_local size_t tl_when_len;

static void flush_buf(log_buf *b)
{
    fast_off(); /* the next line sets first_ns */
    if (b && b->len) {
        size_t n = b->len;
        b->len = 0;
        write_lines(b->data, n);
    }
}

void gust__log_flush(void)
{
    flush_buf(tl_buf);
}

static void drop_buf(void)
{
    fast_off();
    log_buf *b = tl_buf;
    tl_buf = NULL;
    flush_buf(b);
    free(b);
}

static void on_thread_exit(void *buf)
{
    (void)buf; /* the same as tl_buf, still readable here */
    drop_buf();
}

static void on_exit_flush(void)
{
    drop_buf();
}

/* The forking thread's lines are written once, by the parent; the other
 * threads' buffers are not reachable in the child. */
static void on_fork_prepare(void)
{
    gust__log_flush();
}

static void on_fork_child(void)
{
    fast_off(); /* a new pid, maybe a task id, in the prefix */
    atomic_store(&cached_pid, 0);
    atomic_store(&cached_stderr, -1);
}

void gust__log_turn_begin(uint64_t now_ns)
{
    tl_turns++;
    tl_turn_ns = now_ns;
}

uint64_t gust__log_due_ns(void)
{
    log_buf *b = tl_buf;
    if (!b || b->len == 0)
        return UINT64_MAX;
    return b->first_ns + atomic_load_explicit(&flush_interval_ns,
                                              memory_order_relaxed);
}

void gust__log_turn_end(uint64_t now_ns)
{
    fast_off();
    if (tl_turns > 0)
        tl_turns--;
    if (tl_buf && tl_buf->len && now_ns >= gust__log_due_ns())
        flush_buf(tl_buf);
}

void gust_log_set_buffer(size_t size, double flush_seconds)
{
    pthread_once(&init_once, init_log);
    drop_buf();
    atomic_store(&buffer_size, size);
    if (flush_seconds >= 0)
        atomic_store(&flush_interval_ns,
                     flush_seconds > 3600 ? 3600000000000u
                                          : (uint64_t)(flush_seconds * 1e9));
}

/* Room for n more bytes in this thread's buffer (writing what it holds if
 * they do not fit), or NULL when lines are not buffered here. */
static char *buf_room_slow(size_t n);

/* Room for n bytes at the end of this thread's buffer; NULL outside a
 * loop turn or without a buffer. Inlined: every access line comes here. */
static inline char *buf_room(size_t n)
{
    log_buf *b = tl_buf;
    if (b && tl_turns > 0 && b->len && b->cap - b->len >= n)
        return b->data + b->len;
    return buf_room_slow(n);
}

static char *buf_room_slow(size_t n)
{
    if (tl_turns <= 0)
        return NULL;
    log_buf *b = tl_buf;
    if (!b) {
        size_t cap = atomic_load_explicit(&buffer_size, memory_order_relaxed);
        if (cap < LINE_MAX_LEN)
            return NULL;
        b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->len = 0;
        b->cap = cap;
        tl_buf = b;
        pthread_setspecific(buffer_key, b);
    }
    if (b->cap - b->len < n)
        flush_buf(b);
    if (b->len == 0)
        b->first_ns = tl_turn_ns;
    return b->data + b->len;
}

/* ---- Formatting ---------------------------------------------------------- */

void gust_log_set_handler(gust_log_fn fn, void *data)
{
    pthread_once(&init_once, init_log);
    gust__log_flush(); /* and this thread's fast line is off */
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

static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static char *put_long(char *p, long v)
{
    char tmp[24];
    size_t n = 0;
    unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
    do
        tmp[n++] = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *p++ = '-';
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* "[I 261123 07:01:02 12345 0 module] " with the colour codes when
 * colour; out has room for LINE_MAX_LEN bytes. Returns the end. All but
 * the level letter and the module is the same for a whole second, so it
 * is formatted once per second (and again when the pid or task id
 * changes, after a fork). */
static _Thread_local char tl_prefix[96];
static _Thread_local size_t tl_prefix_len;
static _Thread_local long tl_prefix_pid;
static _Thread_local int tl_prefix_task = -2;
static _Thread_local const char *tl_prefix_module;
static _Thread_local uint64_t tl_prefix_until_ns; /* loop clock */

/* The prefix may be stale: reads the clock, and formats it again if the
 * second, the pid, the task id or the module changed. Out of line: once
 * per second on a busy server. */
static __attribute__((noinline)) void refresh_prefix(long pid, int id,
                                                      const char *module)
{
    /* The coarse clock (the kernel's tick) is enough for seconds, and
     * costs much less than the precise one. */
    struct timespec ts = {0, 0};
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    tl_prefix_until_ns = tl_turns > 0 ? tl_turn_ns + 1000000000u -
                                            (uint64_t)ts.tv_nsec
                                      : 0;
    if (ts.tv_sec != tl_when_sec || pid != tl_prefix_pid ||
        id != tl_prefix_task || module != tl_prefix_module) {
        struct tm tm;
        localtime_r(&ts.tv_sec, &tm);
        tl_when_len = strftime(tl_when, sizeof tl_when, "%y%m%d %H:%M:%S", &tm);
        tl_when_sec = ts.tv_sec;
        char *p = tl_prefix;
        *p++ = '[';
        *p++ = 'I'; /* replaced by the line's letter */
        *p++ = ' ';
        p = put(p, tl_when, tl_when_len);
        *p++ = ' ';
        p = put_long(p, pid);
        *p++ = ' ';
        if (id >= 0)
            p = put_long(p, id);
        else
            *p++ = '-';
        *p++ = ' ';
        p = put(p, module, strnlen(module, 40));
        *p++ = ']';
        tl_prefix_len = (size_t)(p - tl_prefix);
        tl_prefix_pid = pid;
        tl_prefix_task = id;
        tl_prefix_module = module;
    }
}

static inline char *put_prefix(char *out, int level, const char *module,
                               bool colour)
{
    long pid = log_pid();
    int id = gust__task_id();
    /* In a loop turn, the turn's clock says whether the second the prefix
     * shows is over, without reading the wall clock for each line. */
    if (!(tl_turns > 0 && tl_turn_ns < tl_prefix_until_ns &&
          pid == tl_prefix_pid && id == tl_prefix_task &&
          module == tl_prefix_module))
        refresh_prefix(pid, id, module);
    char *p = out;
    if (colour)
        p = put(p, level_colour(level), 5);
    memcpy(p, tl_prefix, sizeof tl_prefix); /* fixed size: a few moves */
    p[1] = level_letter(level);
    p += tl_prefix_len;
    if (colour)
        p = put(p, "\033[0m", 4);
    *p++ = ' ';
    return p;
}

/* One line per message: control characters (e.g. from a peer's bytes
 * quoted in a message) must not forge extra log lines. */
static void sanitize(char *p, size_t n)
{
    size_t i = 0;
    /* Eight bytes at a time: a word with no byte below 0x20 is skipped
     * (the test flags such bytes, and tabs, which the byte loop keeps). */
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (((w - 0x2020202020202020u) & ~w & 0x8080808080808080u) == 0)
            continue;
        for (size_t j = i; j < i + 8; j++)
            if ((unsigned char)p[j] < 0x20 && p[j] != '\t')
                p[j] = '?';
    }
    for (; i < n; i++)
        if ((unsigned char)p[i] < 0x20 && p[i] != '\t')
            p[i] = '?';
}

char *gust__log_begin(int level, const char *module, bool raw, size_t *room)
{
    if (!tl_buf) /* a buffer is made after the set-up only */
        pthread_once(&init_once, init_log);
    if (atomic_load_explicit(&log_handler, memory_order_relaxed))
        return NULL;
    char *line = buf_room(LINE_MAX_LEN);
    if (!line)
        return NULL;
    bool colour = !atomic_load_explicit(&log_file, memory_order_relaxed) &&
                  (stderr_mode() & STDERR_COLOUR);
    *room = MSG_MAX_LEN;
    if (raw)
        return line;
    char *msg = put_prefix(line, level, module ? module : "gust", colour);
    /* The module's next lines in this turn may skip the checks above. */
    gust__log_fast *f = &gust__log_fast_tl;
    size_t n = (size_t)(msg - line);
    if (!colour && module && n <= sizeof f->prefix) {
        f->module = module;
        f->buf = tl_buf;
        f->len_max = tl_buf->cap - LINE_MAX_LEN;
        f->prefix_len = n;
        memcpy(f->prefix, line, n);
    }
    return msg;
}

void gust__log_commit(int level, char *msg, size_t len, bool checked)
{
    if (!checked)
        sanitize(msg, len);
    msg[len] = '\n';
    tl_buf->len = (size_t)(msg + len + 1 - tl_buf->data);
    (void)level; /* access lines wait for the batch, whatever their level */
}

/* Delivers a message of len bytes (no newline): to the handler if one is
 * set, else as a line in the default format (prefix unless raw), buffered
 * during a loop turn. */
static void deliver(int level, const char *module, const char *msg,
                    size_t len, bool raw)
{
    pthread_once(&init_once, init_log);
    if (!module)
        module = "gust";
    if (len > MSG_MAX_LEN - 1)
        len = MSG_MAX_LEN - 1;

    gust_log_fn handler = atomic_load_explicit(&log_handler, memory_order_acquire);
    void *hdata = NULL;
    if (handler) { /* the pair, consistent */
        pthread_mutex_lock(&log_lock);
        handler = log_handler;
        hdata = log_handler_data;
        pthread_mutex_unlock(&log_lock);
    }
    bool to_file = atomic_load_explicit(&log_file, memory_order_relaxed) != NULL;
    if (handler) {
        char copy[MSG_MAX_LEN];
        memcpy(copy, msg, len);
        copy[len] = '\0';
        sanitize(copy, len);
        handler(level, module, copy, hdata);
        return;
    }

    /* Colour only on a terminal, and never in the file. */
    bool colour = !to_file && (stderr_mode() & STDERR_COLOUR);
    char local[LINE_MAX_LEN];
    char *line = buf_room(LINE_MAX_LEN);
    bool buffered = line != NULL;
    if (!buffered)
        line = local;
    char *p = raw ? line : put_prefix(line, level, module, colour);
    memcpy(p, msg, len);
    sanitize(p, len);
    p += len;
    *p++ = '\n';
    size_t n = (size_t)(p - line);
    if (buffered) {
        tl_buf->len += n;
        /* As nginx's error_log next to its buffered access_log: a warning
         * or an error goes out at once (with the lines before it); only
         * the access log's lines, a 4xx or 5xx included, wait. */
        if (level >= GUST_LOG_WARNING && strcmp(module, "access") != 0)
            flush_buf(tl_buf);
        return;
    }
    /* Outside a turn: what this thread buffered goes first. */
    gust__log_flush();
    write_lines(line, n);
}

void gust_vlog(int level, const char *module, const char *fmt, va_list ap)
{
    if (level < gust_log_level())
        return;
    char msg[MSG_MAX_LEN];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n < 0)
        return;
    deliver(level, module, msg,
            (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1, false);
}

void gust_log(int level, const char *module, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    gust_vlog(level, module, fmt, ap);
    va_end(ap);
}

void gust_log_message(int level, const char *module, const char *msg,
                      size_t len)
{
    if (level >= gust_log_level() && msg)
        deliver(level, module, msg, len, false);
}

void gust_log_raw_line(int level, const char *module, const char *line,
                       size_t len)
{
    if (level >= gust_log_level() && line)
        deliver(level, module, line, len, true);
}

/* ---- Log file ------------------------------------------------------------ */

void gust_log_close_file(void)
{
    gust__log_flush();
    pthread_mutex_lock(&log_lock);
    struct log_file *lf = log_file;
    log_file = NULL;
    pthread_mutex_unlock(&log_lock);
    if (!lf)
        return;
    if (lf->fd >= 0)
        close(lf->fd);
    pthread_mutex_destroy(&lf->lock);
    free(lf->path);
    free(lf);
}

int gust_log_to_file(const char *path, long max_size, int backups,
                     bool also_stderr)
{
    if (!path || !*path)
        return -EINVAL;
    pthread_once(&init_once, init_log);
    gust__log_flush();
    struct log_file *lf = log_file;
    if (lf && strcmp(lf->path, path) == 0) {
        pthread_mutex_lock(&lf->lock);
        lf->max_size = max_size;
        lf->backups = backups;
        lf->to_stderr = also_stderr;
        pthread_mutex_unlock(&lf->lock);
        gust_log_set_handler(NULL, NULL);
        return 0;
    }
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0)
        return -errno;
    lf = calloc(1, sizeof *lf);
    if (!lf || !(lf->path = strdup(path))) {
        free(lf);
        close(fd);
        return -ENOMEM;
    }
    pthread_mutex_init(&lf->lock, NULL);
    lf->fd = fd;
    off_t end = lseek(fd, 0, SEEK_END);
    lf->size = end > 0 ? (long)end : 0;
    lf->max_size = max_size;
    lf->backups = backups;
    lf->to_stderr = also_stderr;
    gust_log_close_file();
    pthread_mutex_lock(&log_lock);
    log_file = lf;
    pthread_mutex_unlock(&log_lock);
    gust_log_set_handler(NULL, NULL);
    return 0;
}
