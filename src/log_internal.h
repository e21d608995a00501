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

#endif /* GUST_LOG_INTERNAL_H */
