/* Bump allocator for request-scoped memory. See include/gust/arena.h. */
#include <errno.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/arena.h"

struct gust_arena_block {
    gust_arena_block *next;
    size_t size;          /* usable bytes in data */
    max_align_t data[];   /* keeps the first byte aligned for any type */
};

struct gust_arena_cleanup {
    gust_arena_cleanup *next;
    void (*fn)(void *ptr);
    void *ptr;
};

#define ALIGN_MAX ((size_t)alignof(max_align_t))
/* Anything larger cannot be a block: header + size + alignment must fit. */
#define SIZE_LIMIT (SIZE_MAX / 2)

static char *block_data(gust_arena_block *b)
{
    return (char *)b->data;
}

void gust_arena_init(gust_arena *arena, size_t first_block)
{
    memset(arena, 0, sizeof(*arena));
    if (first_block == 0)
        first_block = GUST_ARENA_DEFAULT_BLOCK;
    if (first_block > GUST_ARENA_MAX_BLOCK)
        first_block = GUST_ARENA_MAX_BLOCK;
    arena->first_size = first_block;
    arena->next_size = first_block;
    arena->keep_max = GUST_ARENA_DEFAULT_KEEP;
}

void gust_arena_set_keep(gust_arena *arena, size_t keep_max)
{
    arena->keep_max = keep_max;
}

static void run_cleanups(gust_arena *arena)
{
    /* A cleanup must not add cleanups; detach the list first so that a
     * misbehaving one cannot make us loop. */
    gust_arena_cleanup *c = arena->cleanups;
    arena->cleanups = NULL;
    while (c) {
        gust_arena_cleanup *next = c->next;
        c->fn(c->ptr);
        c = next;
    }
}

void gust_arena_close(gust_arena *arena)
{
    run_cleanups(arena);
    gust_arena_block *b = arena->head;
    while (b) {
        gust_arena_block *next = b->next;
        free(b);
        arena->frees++;
        b = next;
    }
    arena->head = NULL;
    arena->cur = arena->end = NULL;
    arena->next_size = arena->first_size;
}

void gust_arena_reset(gust_arena *arena)
{
    run_cleanups(arena);
    gust_arena_block *keep = NULL;
    for (gust_arena_block *b = arena->head; b; b = b->next) {
        if (b->size <= arena->keep_max && (!keep || b->size > keep->size))
            keep = b;
    }
    gust_arena_block *b = arena->head;
    while (b) {
        gust_arena_block *next = b->next;
        if (b != keep) {
            free(b);
            arena->frees++;
        }
        b = next;
    }
    arena->head = keep;
    if (keep) {
        keep->next = NULL;
        arena->cur = block_data(keep);
        arena->end = arena->cur + keep->size;
        /* Grow from the kept block, so a request that overflowed it once
         * gets a block big enough for the whole request next time. */
        size_t next = keep->size * 2;
        arena->next_size = next > GUST_ARENA_MAX_BLOCK ? GUST_ARENA_MAX_BLOCK
                                                       : next;
        if (arena->next_size < arena->first_size)
            arena->next_size = arena->first_size;
    } else {
        arena->cur = arena->end = NULL;
        arena->next_size = arena->first_size;
    }
}

static gust_arena_block *new_block(gust_arena *arena, size_t size)
{
    gust_arena_block *b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->size = size;
    arena->mallocs++;
    return b;
}

/* The slow path: the head block has no room for size bytes at align. */
static void *alloc_slow(gust_arena *arena, size_t size, size_t align)
{
    if (size > SIZE_LIMIT)
        return NULL;
    size_t need = size + align - 1; /* room for size bytes at any alignment */
    if (need > arena->next_size / 4 && arena->head) {
        /* Large: a block of its own, linked after head so that what is left
         * in head stays usable for the small allocations that follow. */
        gust_arena_block *b = new_block(arena, need);
        if (!b)
            return NULL;
        b->next = arena->head->next;
        arena->head->next = b;
        uintptr_t p = ((uintptr_t)block_data(b) + align - 1) & ~(uintptr_t)(align - 1);
        return (void *)p;
    }
    size_t bsize = arena->next_size;
    if (bsize < need)
        bsize = need;
    gust_arena_block *b = new_block(arena, bsize);
    if (!b)
        return NULL;
    b->next = arena->head;
    arena->head = b;
    arena->cur = block_data(b);
    arena->end = arena->cur + bsize;
    if (arena->next_size < GUST_ARENA_MAX_BLOCK) {
        arena->next_size *= 2;
        if (arena->next_size > GUST_ARENA_MAX_BLOCK)
            arena->next_size = GUST_ARENA_MAX_BLOCK;
    }
    uintptr_t p = ((uintptr_t)arena->cur + align - 1) & ~(uintptr_t)(align - 1);
    arena->cur = (char *)p + size;
    return (void *)p;
}

static inline void *alloc_align(gust_arena *arena, size_t size, size_t align)
{
    if (arena->head) {
        uintptr_t p = ((uintptr_t)arena->cur + align - 1) & ~(uintptr_t)(align - 1);
        uintptr_t end = (uintptr_t)arena->end;
        if (p <= end && end - p >= size) {
            arena->cur = (char *)p + size;
            return (void *)p;
        }
    }
    return alloc_slow(arena, size, align);
}

void *gust_arena_alloc(gust_arena *arena, size_t size)
{
    return alloc_align(arena, size ? size : 1, ALIGN_MAX);
}

void *gust_arena_calloc(gust_arena *arena, size_t n, size_t size)
{
    size_t total;
    /* Not n > SIZE_MAX / size: a division costs tens of cycles. */
    if (__builtin_mul_overflow(n, size, &total))
        return NULL;
    void *p = gust_arena_alloc(arena, total);
    if (p)
        memset(p, 0, total);
    return p;
}

void *gust_arena_realloc(gust_arena *arena, void *ptr, size_t old_size,
                         size_t new_size)
{
    if (!ptr)
        return gust_arena_alloc(arena, new_size);
    /* The most recent allocation ends exactly at cur: move cur instead. */
    if (arena->head && (char *)ptr + old_size == arena->cur &&
        (char *)ptr >= block_data(arena->head) &&
        (size_t)(arena->end - (char *)ptr) >= new_size) {
        arena->cur = (char *)ptr + (new_size ? new_size : 1);
        return ptr;
    }
    if (new_size <= old_size)
        return ptr;
    void *p = gust_arena_alloc(arena, new_size);
    if (p)
        memcpy(p, ptr, old_size);
    return p;
}

void *gust_arena_memdup(gust_arena *arena, const void *p, size_t n)
{
    char *d = alloc_align(arena, n ? n : 1, 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

char *gust_arena_strndup(gust_arena *arena, const char *s, size_t n)
{
    const char *nul = memchr(s, '\0', n);
    if (nul)
        n = (size_t)(nul - s);
    if (n == SIZE_MAX)
        return NULL;
    char *d = alloc_align(arena, n + 1, 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *gust_arena_strdup(gust_arena *arena, const char *s)
{
    return gust_arena_strndup(arena, s, strlen(s));
}

char *gust_arena_vsprintf(gust_arena *arena, size_t *len, const char *fmt,
                          va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    /* Try to format straight into the free tail of the current block. */
    size_t avail = arena->head ? (size_t)(arena->end - arena->cur) : 0;
    char *dst = arena->head ? arena->cur : NULL;
    int n = vsnprintf(dst, avail, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return NULL;
    }
    char *out;
    if ((size_t)n < avail) {
        out = dst;
        arena->cur += (size_t)n + 1;
    } else {
        out = alloc_align(arena, (size_t)n + 1, 1);
        if (out)
            vsnprintf(out, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    if (out && len)
        *len = (size_t)n;
    return out;
}

char *gust_arena_sprintf(gust_arena *arena, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = gust_arena_vsprintf(arena, NULL, fmt, ap);
    va_end(ap);
    return s;
}

int gust_arena_add_cleanup(gust_arena *arena, void (*fn)(void *ptr), void *ptr)
{
    gust_arena_cleanup *c = gust_arena_alloc(arena, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->fn = fn;
    c->ptr = ptr;
    c->next = arena->cleanups;
    arena->cleanups = c;
    return 0;
}

void gust_arena_get_stats(const gust_arena *arena, gust_arena_stats *out)
{
    memset(out, 0, sizeof(*out));
    for (const gust_arena_block *b = arena->head; b; b = b->next) {
        out->blocks++;
        out->block_bytes += b->size;
    }
    out->mallocs = arena->mallocs;
    out->frees = arena->frees;
}
