/* Helpers shared by the cmocka tests of http.h's parts (headers, URLs,
 * forms, cookies): a string-slice assertion and an arena per test.
 * Include after cmocka.h. */
#ifndef GUST_HTTP_TEST_H
#define GUST_HTTP_TEST_H

#include <stdlib.h>
#include <string.h>

#include "gust/arena.h"
#include "gust/http.h"

#define S(lit) GUST_STR(lit)

/* Fails with both strings shown when s is not exactly expect. */
static inline void assert_str(gust_str s, const char *expect)
{
    assert_non_null(s.ptr);
    if (s.len != strlen(expect) || memcmp(s.ptr, expect, s.len) != 0)
        fail_msg("got \"%.*s\", expected \"%s\"", (int)s.len, s.ptr, expect);
}

/* cmocka setup/teardown: *state is a fresh gust_arena. */
static inline int setup(void **state)
{
    gust_arena *a = malloc(sizeof(*a));
    if (!a)
        return -1;
    gust_arena_init(a, 0);
    *state = a;
    return 0;
}

static inline int teardown(void **state)
{
    gust_arena_close(*state);
    free(*state);
    return 0;
}

#endif /* GUST_HTTP_TEST_H */
