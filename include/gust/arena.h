/* Request-scoped memory: a bump allocator (an "arena").
 *
 * An arena hands out memory from a chain of blocks by bumping a pointer, and
 * frees everything at once: gust_arena_reset() between the requests of a
 * keep-alive connection, gust_arena_close() when the connection goes away.
 * There is no per-allocation free.
 *
 * BLOCKS. The first block is malloc'd on the first allocation (init itself
 * allocates nothing). When a block is full the next one is twice as large
 * (up to GUST_ARENA_MAX_BLOCK); an allocation larger than a quarter of the
 * block size gets a block of its own, so a large body copy never wastes the
 * rest of the current block.
 *
 * RESET. gust_arena_reset() runs the cleanups, then frees every block except
 * the largest one that is no larger than keep_max (64 KiB by default), which
 * it keeps empty. A connection whose requests look alike therefore allocates
 * nothing after its first request or two: gust_arena_get_stats() counts the
 * mallocs so that tests and servers can check it.
 *
 * Lifetime: every pointer returned by an arena is valid until the next
 * gust_arena_reset() or gust_arena_close() of that arena, and is owned by
 * the arena (never free() it). An arena is not thread-safe; it belongs to
 * the one connection or request that uses it.
 */
#ifndef GUST_ARENA_H
#define GUST_ARENA_H

#include "gust/common.h"

#include <stdarg.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Size of the first block when gust_arena_init() gets 0. */
#define GUST_ARENA_DEFAULT_BLOCK 4096
/* Largest block that growth alone produces (a larger allocation still gets a
 * block of its own, of its exact size). */
#define GUST_ARENA_MAX_BLOCK (1024 * 1024)
/* Default bound on the block kept by gust_arena_reset(). */
#define GUST_ARENA_DEFAULT_KEEP (64 * 1024)

typedef struct gust_arena_block gust_arena_block;
typedef struct gust_arena_cleanup gust_arena_cleanup;

/* The arena. Embed it in your own struct and treat the fields as private. */
typedef struct gust_arena {
    gust_arena_block *head;   /* block being bumped; the others follow */
    char *cur;                /* next free byte in head */
    char *end;                /* end of head's usable space */
    size_t next_size;         /* size of the next growth block */
    size_t first_size;        /* size of the first block */
    size_t keep_max;          /* largest block kept by reset */
    gust_arena_cleanup *cleanups; /* run LIFO on reset and close */
    size_t mallocs;           /* blocks malloc'd over the arena's life */
    size_t frees;             /* blocks freed over the arena's life */
} gust_arena;

/* Counters for tests and server statistics (gust_arena_get_stats). */
typedef struct gust_arena_stats {
    size_t blocks;       /* blocks held now */
    size_t block_bytes;  /* usable bytes in those blocks */
    size_t mallocs;      /* blocks malloc'd since init (cleanup records and
                            allocations all come from blocks) */
    size_t frees;        /* blocks freed since init */
} gust_arena_stats;

/* Prepares an arena. first_block is the size of the first block (0 for
 * GUST_ARENA_DEFAULT_BLOCK); nothing is allocated until the first
 * allocation, so init cannot fail. keep_max starts at
 * GUST_ARENA_DEFAULT_KEEP (see gust_arena_set_keep). */
GUST_EXTERN void gust_arena_init(gust_arena *arena, size_t first_block);

/* Runs the cleanups (last added first) and frees every block. The arena may
 * be initialised again afterwards; closing twice is harmless. */
GUST_EXTERN void gust_arena_close(gust_arena *arena);

/* Runs the cleanups (last added first), then frees every block but one: the
 * largest block no larger than the keep bound, which becomes empty and is
 * reused by the next allocations. Every pointer from the arena becomes
 * invalid. */
GUST_EXTERN void gust_arena_reset(gust_arena *arena);

/* Sets the largest block gust_arena_reset() keeps (0 keeps nothing, so
 * reset frees everything). */
GUST_EXTERN void gust_arena_set_keep(gust_arena *arena, size_t keep_max);

/* Returns size bytes aligned for any type (max_align_t), uninitialised, or
 * NULL when out of memory or when size is too large to be represented.
 * size 0 is treated as 1, so the result is a valid, distinct pointer. */
GUST_EXTERN void *gust_arena_alloc(gust_arena *arena, size_t size);

/* Like gust_arena_alloc() for n elements of size bytes each, zero-filled;
 * NULL on OOM or when n * size overflows. */
GUST_EXTERN void *gust_arena_calloc(gust_arena *arena, size_t n, size_t size);

/* Resizes ptr (a block of old_size bytes from gust_arena_alloc/calloc/
 * realloc of this arena, or NULL with old_size 0) to new_size bytes. When ptr
 * is the arena's most recent allocation and the block has room, it grows or
 * shrinks in place; otherwise new memory is taken and min(old, new) bytes
 * are copied (the old bytes are not reclaimed before reset). Returns the
 * (possibly moved) pointer, or NULL on OOM, in which case ptr is unchanged.
 * Used to grow arrays in an arena at amortised constant cost. */
GUST_EXTERN void *gust_arena_realloc(gust_arena *arena, void *ptr,
                                     size_t old_size, size_t new_size);

/* Copies n bytes of p into the arena (no alignment guarantee). NULL on OOM.
 * p may be NULL when n is 0. */
GUST_EXTERN void *gust_arena_memdup(gust_arena *arena, const void *p, size_t n);

/* Copies the first n bytes of s (stopping early at a NUL) and adds a NUL.
 * NULL on OOM. */
GUST_EXTERN char *gust_arena_strndup(gust_arena *arena, const char *s,
                                     size_t n);

/* Copies the NUL-terminated string s. NULL on OOM. */
GUST_EXTERN char *gust_arena_strdup(gust_arena *arena, const char *s);

/* printf into the arena: returns the NUL-terminated result (formatted by
 * vsnprintf, so %f follows the C locale of the thread), or NULL on OOM or a
 * format error. The string is formatted straight into the current block
 * when it fits there. gust_arena_vsprintf() also stores the length without
 * the NUL in *len when len is not NULL. */
GUST_EXTERN char *gust_arena_sprintf(gust_arena *arena, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
GUST_EXTERN char *gust_arena_vsprintf(gust_arena *arena, size_t *len,
                                      const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* Registers fn(ptr) to run at the next gust_arena_reset() or
 * gust_arena_close(), in reverse order of registration (so an object
 * registered after another may still use it in its cleanup). Use it to tie
 * outside resources to a request: a temporary file, a JSON value. The
 * record lives in the arena itself. Returns 0, or -ENOMEM when the record
 * could not be allocated, in which case fn is not registered and the caller
 * still owns ptr. A cleanup must not allocate from or reset the arena. */
GUST_EXTERN int gust_arena_add_cleanup(gust_arena *arena, void (*fn)(void *ptr),
                                       void *ptr);

/* Fills *out with the arena's counters. */
GUST_EXTERN void gust_arena_get_stats(const gust_arena *arena,
                                      gust_arena_stats *out);

#ifdef __cplusplus
}
#endif

#endif /* GUST_ARENA_H */
