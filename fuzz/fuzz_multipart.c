/* libFuzzer target: Content-Type and multipart/form-data parsing.
 *
 * Input: a Content-Type value, a LF, then the body. The Content-Type is
 * parsed (slices must lie in the input or be fresh arena copies); when it
 * carries a boundary, the body is parsed with gust_http_parse_body_arguments,
 * else with the fixed boundary "AaB03x". The body is copied into a heap
 * block of exactly its size so that any over-read is caught. Invariants:
 * every part content (argument value, file body) is a slice of the body, in
 * order and without overlap; a successful parse saw a final delimiter; the
 * incremental parser, fed the body in pieces whose sizes come from a PRNG
 * seeded by the input (each piece its own heap block), gives the same
 * result, parts and contents as the buffered one; the arena is closed each
 * run (leaks are caught by LeakSanitizer). */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gust/http.h"
#include "fuzz.h"

static int within(gust_str s, const char *buf, size_t len)
{
    return s.ptr && s.ptr >= buf && s.len <= len &&
           (size_t)(s.ptr - buf) <= len - s.len;
}

/* What the incremental parser reported, checked against the buffered one. */
struct expect {
    const gust_http_args *args;
    const gust_http_files *files;
    size_t part;     /* index of the current part in document order */
    size_t ai, fi;   /* next argument / file */
    gust_str want;   /* content the current part must produce */
    size_t got;      /* bytes of it seen so far */
    int in_part;
    int buffered_rc; /* the buffered parser's result */
    int extra;       /* in a part the buffered parser did not record */
};

static int on_begin(gust_multipart *mp, const gust_http_part *part, void *data)
{
    (void)mp;
    struct expect *e = data;
    CHECK(!e->in_part);
    e->in_part = 1;
    e->got = 0;
    e->extra = 0;
    if ((part->filename.len > 0 && e->fi == e->files->count) ||
        (part->filename.len == 0 && e->ai == e->args->count)) {
        /* Only possible for the part the buffered parser failed on, which
         * has no final delimiter: the incremental parser must fail too. */
        CHECK(e->buffered_rc < 0);
        e->extra = 1;
        return 0;
    }
    if (part->filename.len > 0) {
        CHECK(e->fi < e->files->count);
        const gust_http_file *f = &e->files->items[e->fi++];
        CHECK(gust_str_eq(f->name, part->name));
        CHECK(gust_str_eq(f->filename, part->filename));
        e->want = f->body;
    } else {
        CHECK(e->ai < e->args->count);
        CHECK(gust_str_eq(e->args->items[e->ai].name, part->name));
        e->want = e->args->items[e->ai++].value;
    }
    return 0;
}

static int on_data(gust_multipart *mp, const char *buf, size_t len, void *data)
{
    (void)mp;
    struct expect *e = data;
    CHECK(e->in_part && len > 0);
    if (e->extra)
        return 0;
    CHECK(e->got + len <= e->want.len);
    CHECK(memcmp(e->want.ptr + e->got, buf, len) == 0);
    e->got += len;
    return 0;
}

static int on_end(gust_multipart *mp, void *data)
{
    (void)mp;
    struct expect *e = data;
    CHECK(e->in_part && !e->extra && e->got == e->want.len);
    e->in_part = 0;
    e->part++;
    return 0;
}

static const gust_multipart_callbacks expect_cb = {on_begin, on_data, on_end};

/* Streams body in PRNG-sized pieces; returns the final code. */
static int stream(gust_arena *arena, const char *body, size_t len,
                  uint64_t seed, struct expect *e)
{
    gust_multipart mp;
    if (gust_multipart_init(&mp, GUST_STR("AaB03x"), len + 8, arena,
                            &expect_cb, e) < 0)
        return -EINVAL;
    size_t at = 0;
    while (at < len) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        size_t n = 1 + (size_t)((seed >> 33) % 17);
        if ((seed >> 20) % 8 == 0)
            n = 1 + (size_t)((seed >> 40) % 300);
        if (n > len - at)
            n = len - at;
        char *piece = malloc(n);
        if (!piece)
            abort();
        memcpy(piece, body + at, n);
        int rc = gust_multipart_feed(&mp, piece, n);
        free(piece);
        if (rc < 0)
            return rc;
        at += n;
    }
    return gust_multipart_finish(&mp);
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
        if (!boundary.ptr) {
            uint64_t seed = 0;
            for (size_t i = 0; i < size && i < 16; i++)
                seed = seed * 131 + data[i];
            struct expect e = {.args = &args, .files = &files, .buffered_rc = rc};
            int src = stream(&arena, body, body_len, seed, &e);
            CHECK(src == rc);
            if (rc == 0)
                CHECK(e.part == args.count + files.count && !e.in_part);
        }
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
