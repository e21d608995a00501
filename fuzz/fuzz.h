/* Shared by the libFuzzer targets in fuzz/: the entry point's prototype
 * (for -Wmissing-prototypes), CHECK, and checks more than one target
 * makes. */
#ifndef GUST_FUZZ_H
#define GUST_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "http1_parser.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant broken: a crash libFuzzer reports, in every build type. */
#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            __builtin_trap();                                                  \
    } while (0)

/* Decodes the rest bytes after a head as a chunked body (on a copy: the
 * decoder works in place) and checks the decoder's own promises. */
static inline void fuzz_check_chunked(const char *after_head, size_t rest)
{
    char *body = malloc(rest ? rest : 1);
    if (!body)
        return;
    memcpy(body, after_head, rest);
    gust__http1_chunked ch;
    size_t data_len;
    gust__http1_chunked_init(&ch, 1 << 20, 4096);
    ssize_t used = gust__http1_chunked_decode(&ch, body, rest, &data_len);
    CHECK(used == GUST_HTTP1_INCOMPLETE || used == GUST_HTTP1_ERROR ||
          (used >= 0 && (size_t)used <= rest && data_len <= (size_t)used));
    free(body);
}

#endif
