/* libFuzzer target: Content-Type and multipart/form-data parsing.
 *
 * Input: a Content-Type value, a LF, then the body. The Content-Type is
 * parsed (slices must lie in the input or be fresh arena copies); when it
 * carries a boundary, the body is parsed with gust_http_parse_body_arguments,
 * else with the fixed boundary "AaB03x". The body is copied into a heap
 * block of exactly its size so that any over-read is caught. Invariants:
 * every part content (argument value, file body) is a slice of the body, in
 * order and without overlap; a successful parse saw a final delimiter; the
 * arena is closed each run (leaks are caught by LeakSanitizer). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gust/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            __builtin_trap();                                                  \
    } while (0)

static int within(gust_str s, const char *buf, size_t len)
{
    return s.ptr && s.ptr >= buf && s.len <= len &&
           (size_t)(s.ptr - buf) <= len - s.len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *nl = memchr(data, '\n', size);
    size_t ct_len = nl ? (size_t)(nl - (const char *)data) : 0;
    size_t body_off = nl ? ct_len + 1 : 0;
    size_t body_len = size - body_off;

    char *ct = malloc(ct_len ? ct_len : 1);
    char *body = malloc(body_len ? body_len : 1);
    if (!ct || !body)
        abort();
    memcpy(ct, data, ct_len);
    memcpy(body, data + body_off, body_len);

    gust_arena arena;
    gust_arena_init(&arena, 512);

    gust_http_content_type type;
    gust_str ctype = gust_str_make(ct, ct_len);
    int rc = gust_http_parse_content_type(&arena, ctype, &type);
    gust_str boundary = GUST_STR_NULL;
    if (rc == 0) {
        CHECK(type.type.len > 2);
        CHECK(memchr(type.type.ptr, '/', type.type.len) != NULL);
        for (size_t i = 0; i < type.type.len; i++)
            CHECK(!(type.type.ptr[i] >= 'A' && type.type.ptr[i] <= 'Z'));
        for (size_t i = 0; i < type.nparams; i++) {
            CHECK(gust_http_token_valid(type.params[i].name));
            CHECK(type.params[i].value.ptr != NULL);
            if (within(type.params[i].value, ct, ct_len))
                CHECK(type.params[i].value.len < ct_len);
        }
        boundary = gust_http_content_type_param(&type, GUST_STR("boundary"));
    }

    gust_http_args args;
    gust_http_files files;
    gust_http_args_init(&args, &arena);
    gust_http_files_init(&files, &arena);
    gust_str b = gust_str_make(body, body_len);
    if (boundary.ptr)
        rc = gust_http_parse_body_arguments(&arena, ctype, b, &args, &files);
    else
        rc = gust_http_parse_multipart(GUST_STR("AaB03x"), b, &args, &files);

    bool multipart = !boundary.ptr ||
                     gust_str_eq(type.type, GUST_STR("multipart/form-data"));
    if (multipart) {
        /* Contents are slices of the body, in order, never overlapping. */
        const char *last = body;
        size_t ai = 0, fi = 0;
        while (ai < args.count || fi < files.count) {
            gust_str c;
            if (fi == files.count ||
                (ai < args.count &&
                 args.items[ai].value.ptr <= files.items[fi].body.ptr)) {
                c = args.items[ai++].value;
            } else {
                const gust_http_file *f = &files.items[fi++];
                c = f->body;
                CHECK(f->filename.len > 0);
                CHECK(f->content_type.ptr != NULL);
            }
            CHECK(within(c, body, body_len));
            CHECK(c.ptr >= last);
            last = c.ptr + c.len;
        }
        if (rc == 0 && !boundary.ptr && body_len > 0)
            CHECK(memmem(body, body_len, "--AaB03x--", 10) != NULL);
    } else {
        /* urlencoded: slices of the body or terminated arena copies. */
        for (size_t i = 0; i < args.count; i++) {
            gust_str v = args.items[i].value;
            CHECK(within(v, body, body_len) || v.ptr[v.len] == '\0');
        }
        CHECK(files.count == 0);
    }
    CHECK(rc == 0 || rc == -EINVAL);

    gust_arena_close(&arena);
    free(ct);
    free(body);
    return 0;
}
