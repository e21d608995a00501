/* Internal: the arena's fast path for the per-request hot paths, used by
 * the web layer's handler and body through http_server_contract.h. Not
 * installed. */
#ifndef GUST_ARENA_INTERNAL_H
#define GUST_ARENA_INTERNAL_H

#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include "gust/arena.h"

/* gust_arena_alloc(a, size) with its common case, room left in the head
 * block, inlined: the same alignment, and the call for everything else
 * (no block yet, a full block, size 0). */
static inline void *gust__arena_alloc(gust_arena *a, size_t size)
{
    const uintptr_t align = alignof(max_align_t);
    uintptr_t p = ((uintptr_t)a->cur + align - 1) & ~(align - 1);
    uintptr_t end = (uintptr_t)a->end;
    /* cur is NULL exactly when there is no head block. */
    if (a->cur && size && p <= end && end - p >= size) {
        a->cur = (char *)p + size;
        return (void *)p;
    }
    return gust_arena_alloc(a, size);
}

#endif /* GUST_ARENA_INTERNAL_H */
