/* Template loader: reads templates from a root directory (or from strings
 * registered by name), compiles each once, resolves {% extends %} and
 * {% include %} through itself and caches the results until a reset. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "template_internal.h"

#define NBUCKETS 64
/* A template file larger than this is refused rather than read. */
#define MAX_FILE_SIZE (16u << 20)

struct tpl_source {
    char *name;
    char *text;
    struct tpl_source *next;
};

struct gust_template_loader {
    char *root;
    struct tpl_source *sources;
    gust_template *buckets[NBUCKETS];
    gust_template_limits limits;
    char err[TPL_ERR_MAX];
};

static unsigned hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % NBUCKETS;
}

gust_template_loader *gust_template_loader_new(const char *root_dir)
{
    gust_template_loader *l = calloc(1, sizeof *l);
    if (!l)
        return NULL;
    if (root_dir && !(l->root = strdup(root_dir))) {
        free(l);
        return NULL;
    }
    gust__template_parse_default_limits(&l->limits);
    return l;
}

void gust_template_loader_reset(gust_template_loader *l)
{
    for (int i = 0; i < NBUCKETS; i++) {
        while (l->buckets[i]) {
            gust_template *t = l->buckets[i];
            l->buckets[i] = t->hash_next;
            gust__template_parse_destroy(t);
        }
    }
}

void gust_template_loader_free(gust_template_loader *l)
{
    if (!l)
        return;
    gust_template_loader_reset(l);
    while (l->sources) {
        struct tpl_source *s = l->sources;
        l->sources = s->next;
        free(s->name);
        free(s->text);
        free(s);
    }
    free(l->root);
    free(l);
}

void gust_template_loader_set_limits(gust_template_loader *l,
                                     const gust_template_limits *limits)
{
    if (limits)
        l->limits = *limits;
    else
        gust__template_parse_default_limits(&l->limits);
}

const char *gust_template_loader_error(const gust_template_loader *l)
{
    return l->err;
}

/* Names are relative to the root: no leading '/', no ".." component, and
 * short enough for a path. */
static bool name_ok(const char *name)
{
    size_t n = strlen(name);
    if (!n || n > 1024 || name[0] == '/')
        return false;
    for (const char *c = name; *c;) {
        const char *e = strchr(c, '/');
        size_t k = e ? (size_t)(e - c) : strlen(c);
        if (k == 2 && c[0] == '.' && c[1] == '.')
            return false;
        c += k + (e != NULL);
    }
    return true;
}

int gust_template_loader_add_string(gust_template_loader *l, const char *name,
                                    const char *source)
{
    if (!name_ok(name)) {
        snprintf(l->err, sizeof l->err, "template name '%.200s' refused", name);
        return -EPERM;
    }
    struct tpl_source *s;
    for (s = l->sources; s && strcmp(s->name, name) != 0; s = s->next)
        ;
    char *text = strdup(source);
    if (!text)
        return -ENOMEM;
    if (s) {
        free(s->text);
        s->text = text;
    } else {
        s = calloc(1, sizeof *s);
        if (!s || !(s->name = strdup(name))) {
            free(s);
            free(text);
            return -ENOMEM;
        }
        s->text = text;
        s->next = l->sources;
        l->sources = s;
    }
    gust_template_loader_reset(l);
    return 0;
}

/* Reads root/name into a malloc'd buffer. */
static int read_file(gust_template_loader *l, const char *name, char **out, size_t *len,
                     char *err, size_t errlen)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", l->root, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "template '%s' not found", name);
        return e == ENOENT || e == ENOTDIR ? -ENOENT : -e;
    }
    struct stat st;
    if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        snprintf(err, errlen, "template '%s' is not a regular file", name);
        return -ENOENT;
    }
    if ((unsigned long long)st.st_size > MAX_FILE_SIZE) {
        fclose(f);
        snprintf(err, errlen, "template '%s' is too large", name);
        return -EFBIG;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        snprintf(err, errlen, buf ? "cannot read template '%s'" : "out of memory", name);
        return buf ? -EIO : -ENOMEM;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

static int load(gust_template_loader *l, const char *name, int depth, gust_template **out,
                char *err, size_t errlen, bool *located);

static int resolve(void *data, const char *name, int depth, gust_template **out,
                   char *err, size_t errlen, bool *located)
{
    return load(data, name, depth, out, err, errlen, located);
}

static int load(gust_template_loader *l, const char *name, int depth, gust_template **out,
                char *err, size_t errlen, bool *located)
{
    *out = NULL;
    err[0] = 0;
    if (!name_ok(name)) {
        snprintf(err, errlen, "template name '%.200s' refused: names are relative to "
                              "the root and may not contain '..'", name);
        return -EPERM;
    }
    if (depth > GUST_TEMPLATE_MAX_DEPTH) {
        snprintf(err, errlen, "extends/include nested deeper than %d", GUST_TEMPLATE_MAX_DEPTH);
        return -ELOOP;
    }
    unsigned h = hash(name);
    for (gust_template *t = l->buckets[h]; t; t = t->hash_next)
        if (strcmp(t->name, name) == 0) {
            if (t->loading) {
                snprintf(err, errlen, "'%s' extends or includes itself", name);
                return -ELOOP;
            }
            *out = t;
            return 0;
        }
    struct tpl_source *s;
    for (s = l->sources; s && strcmp(s->name, name) != 0; s = s->next)
        ;
    char *text = NULL;
    size_t len = 0;
    int rc = 0;
    if (s) {
        len = strlen(s->text);
    } else if (!l->root) {
        snprintf(err, errlen, "template '%s' not found", name);
        return -ENOENT;
    } else if ((rc = read_file(l, name, &text, &len, err, errlen)) < 0) {
        return rc;
    }
    gust_template *t = gust__template_parse_new(name);
    if (!t) {
        free(text);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    t->owned_by_loader = true;
    t->limits = l->limits;
    /* In the cache while compiling, so that a cycle finds it "loading". */
    t->loading = true;
    t->hash_next = l->buckets[h];
    l->buckets[h] = t;
    rc = gust__template_parse_compile(t, s ? s->text : text, len, resolve, l,
                                      depth, err, errlen);
    free(text);
    t->loading = false;
    if (rc < 0) {
        *located = true;
        /* Templates it loaded meanwhile may sit in front of it. */
        gust_template **pp = &l->buckets[h];
        while (*pp != t)
            pp = &(*pp)->hash_next;
        *pp = t->hash_next;
        gust__template_parse_destroy(t);
        return rc;
    }
    *out = t;
    return 0;
}

int gust_template_loader_load(gust_template_loader *l, const char *name,
                              gust_template **out)
{
    bool located;
    return load(l, name, 0, out, l->err, sizeof l->err, &located);
}

int gust_template_loader_render_with(gust_template_loader *l, const char *name,
                                     json_t *context,
                                     const gust_template_hooks *hooks,
                                     char **out, size_t *len)
{
    gust_template *t;
    bool located;
    *out = NULL;
    *len = 0;
    int rc = load(l, name, 0, &t, l->err, sizeof l->err, &located);
    if (rc < 0)
        return rc;
    return gust__template_render(t, &l->limits, context, hooks, NULL, NULL, out, len,
                            l->err, sizeof l->err);
}

int gust_template_loader_render(gust_template_loader *l, const char *name,
                                json_t *context, char **out, size_t *len)
{
    return gust_template_loader_render_with(l, name, context, NULL, out, len);
}

int gust_template_loader_render_to(gust_template_loader *l, const char *name,
                                   json_t *context, gust_template_write_fn fn, void *data)
{
    gust_template *t;
    bool located;
    int rc = load(l, name, 0, &t, l->err, sizeof l->err, &located);
    if (rc < 0)
        return rc;
    return gust__template_render(t, &l->limits, context, NULL, fn, data, NULL, NULL,
                            l->err, sizeof l->err);
}
