/* What the loop (loop.c) tells the log (log.c) so that lines logged during
 * a loop turn are written in batches rather than one system call each;
 * the web layer's access log (web_access_log.c) writes its lines into the
 * same batch. Not installed.
 *
 * A thread inside gust_loop_run_once() buffers its default-format lines
 * (stderr or the log file; a handler set with gust_log_set_handler() is
 * called at once). The buffer is written when the next line does not fit,
 * when a WARNING or ERROR line of a module other than "access" is logged,
 * at the end of a turn once its oldest line
 * is older than the flush interval, before a fork, when the thread exits,
 * at exit(), and whenever the thread logs outside a turn. */
#ifndef GUST_LOG_INTERNAL_H
#define GUST_LOG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A loop turn begins on this thread; now_ns is the loop's clock. */
void gust__log_turn_begin(uint64_t now_ns);

/* The turn ends: writes this thread's buffer if its oldest line is due. */
void gust__log_turn_end(uint64_t now_ns);

/* When this thread's buffered lines are due (loop clock), UINT64_MAX if
 * none: the loop does not sleep past it. */
uint64_t gust__log_due_ns(void);

/* Writes this thread's buffered lines now. */
void gust__log_flush(void);

/* A line formatted in place, for the access log (one per request): when
 * the calling thread buffers (in a loop turn, no handler set), starts a
 * line of level and module (its prefix written unless raw) and returns
 * where its message goes, *room bytes at most (NUL included); else NULL,
 * and the message goes through gust_log_message / gust_log_raw_line. The
 * caller has checked the level. gust__log_commit() ends the line: len
 * bytes written at msg, where control characters are replaced unless the
 * caller checked there are none (checked). */
char *gust__log_begin(int level, const char *module, bool raw, size_t *room);
void gust__log_commit(int level, char *msg, size_t len, bool checked);

/* The same, inlined, for the second and later lines of one module in a
 * loop turn (the access log's): gust__log_begin() leaves the line's
 * prefix and the buffer here when the next line of that module may go
 * straight in (in a turn, no handler, no colour, the prefix of this
 * second); anything that changes that (the turn's end, a write of the
 * buffer, a fork, a handler or file set on this thread) clears module.
 * Lines of another thread are not affected: each thread has its own. */
typedef struct gust__log_buf {
    size_t len, cap;
    uint64_t first_ns; /* loop clock of the turn of its oldest line */
    char data[];
} gust__log_buf;

#define GUST__LOG_FAST_PREFIX 64
#define GUST__LOG_MSG_MAX 2048 /* a message's room, NUL included */

typedef struct gust__log_fast {
    const char *module; /* NULL: take gust__log_begin() */
    gust__log_buf *buf;
    size_t len_max;     /* buf->len at most this for a line's room */
    size_t prefix_len;  /* the prefix's bytes, its last space included */
    char prefix[GUST__LOG_FAST_PREFIX]; /* "[I ...] ", letter at [1] */
} gust__log_fast;

extern _Thread_local gust__log_fast gust__log_fast_tl;

/* Where a message of module goes, with GUST__LOG_MSG_MAX bytes of room,
 * its prefix already written with letter ('I', 'W', 'E'); NULL: take
 * gust__log_begin(). module is compared by address. */
static inline char *gust__log_begin_fast(char letter, const char *module)
{
    gust__log_fast *f = &gust__log_fast_tl;
    if (f->module != module || f->buf->len > f->len_max)
        return NULL;
    char *p = f->buf->data + f->buf->len;
    memcpy(p, f->prefix, GUST__LOG_FAST_PREFIX); /* fixed: a few moves */
    p[1] = letter;
    return p + f->prefix_len;
}

/* Ends a line begun by gust__log_begin_fast(): len bytes at msg, checked
 * for control characters by the caller. */
static inline void gust__log_commit_fast(char *msg, size_t len)
{
    gust__log_buf *b = gust__log_fast_tl.buf;
    msg[len] = '\n';
    b->len = (size_t)(msg + len + 1 - b->data);
}

#endif /* GUST_LOG_INTERNAL_H */
