/* libFuzzer target for templates.
 *
 * Input: a template. If it holds a NUL byte, the text before it is
 * "main.html" and the text after it "base.html" (and "part.html" after a
 * second NUL), registered in a loader so that extends, blocks and include
 * are reached; otherwise the bytes are compiled from a buffer. Either way
 * the result renders against a fixed small context, with tight limits, and
 * the output is discarded. Checks: a failure always explains itself with a
 * message, and a success never has one. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/template.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *context_json =
    "{\"name\": \"<Ann & 'Bo'>\", \"n\": 3, \"f\": 2.5, \"t\": true, \"z\": null,"
    " \"xs\": [1, 2, \"three\", [4, 5], {\"k\": \"v\"}],"
    " \"o\": {\"a\": 1, \"b\": [true, false], \"c\": {\"d\": \"e\"}}, \"empty\": \"\"}";

static int discard(const gust_template *t, const char *buf, size_t len, void *data)
{
    (void)t;
    (void)buf;
    size_t *total = data;
    *total += len;
    return *total > (1u << 22) ? -1 : 0; /* 4 MiB is plenty */
}

static void check_message(int rc, const char *msg)
{
    if ((rc < 0) != (msg[0] != 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static json_t *ctx;
    if (!ctx && !(ctx = json_loads(context_json, 0, NULL)))
        abort();
    const gust_template_limits limits = {.max_steps = 20000, .max_value = 1 << 16};
    size_t total = 0;
    const char *nul = memchr(data, 0, size);
    if (!nul) {
        gust_template *t = gust_template_new_from_buffer((const char *)data, size, "f.html");
        if (!t)
            return 0;
        check_message(gust_template_status(t), gust_template_error(t));
        gust_template_set_limits(t, &limits);
        int rc = gust_template_render_to(t, ctx, discard, &total);
        check_message(rc, gust_template_error(t));
        gust_template_free(t);
        return 0;
    }
    /* Split into up to three NUL-terminated sources. */
    char *copy = malloc(size + 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    const char *names[] = {"main.html", "base.html", "part.html"};
    gust_template_loader *l = gust_template_loader_new(NULL);
    gust_template_loader_set_limits(l, &limits);
    const char *p = copy, *end = copy + size;
    for (int i = 0; i < 3 && p <= end; i++) {
        gust_template_loader_add_string(l, names[i], p);
        p += strlen(p) + 1;
    }
    int rc = gust_template_loader_render_to(l, "main.html", ctx, discard, &total);
    check_message(rc, gust_template_loader_error(l));
    /* Again from the cache. */
    total = 0;
    rc = gust_template_loader_render_to(l, "main.html", ctx, discard, &total);
    check_message(rc, gust_template_loader_error(l));
    gust_template_loader_free(l);
    free(copy);
    return 0;
}
