/* Routes (Tornado's URLSpec and its reverse): PCRE2 patterns compiled once
 * with JIT, anchored at both ends, capture groups becoming path arguments. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "gust/log.h"
#include "web_internal.h"

/* Compiles pattern anchored at the start (PCRE2_ANCHORED) and at the end
 * (a '$' appended when missing, as Tornado does; DOLLAR_ENDONLY so that a
 * trailing newline is not let through). */
static pcre2_code *compile(const char *pattern, uint32_t extra,
                           const char *what)
{
    size_t n = strlen(pattern);
    char *src = malloc(n + 2);
    if (!src)
        return NULL;
    memcpy(src, pattern, n);
    if (n == 0 || pattern[n - 1] != '$')
        src[n++] = '$';
    src[n] = '\0';
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)src, n,
                                   PCRE2_ANCHORED | PCRE2_DOLLAR_ENDONLY | extra,
                                   &err, &off, NULL);
    free(src);
    if (!re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(err, msg, sizeof msg);
        gust_log_error("web", "bad %s pattern \"%s\" at offset %zu: %s", what,
                       pattern, (size_t)off, (const char *)msg);
        errno = EINVAL;
        return NULL;
    }
    /* JIT is an optimisation: without it (no JIT support) matching works. */
    pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/* Removes the backslash of escaped punctuation ("\." -> "."); NULL for an
 * escape that is a class or assertion (\d, \w...): Tornado's re_unescape. */
static char *unescape_fixed(const char *p, size_t n)
{
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\') {
            if (i + 1 >= n || (p[i + 1] >= '0' && p[i + 1] <= '9') ||
                ((p[i + 1] | 0x20) >= 'a' && (p[i + 1] | 0x20) <= 'z')) {
                free(out);
                return NULL;
            }
            i++;
        }
        *o++ = p[i];
    }
    *o = '\0';
    return out;
}

/* The fixed parts between the groups, for reverse_url, when the pattern
 * is simple enough: every '(' opens a plain capture group. */
static char **reverse_parts(const char *pattern, uint32_t groups)
{
    size_t n = strlen(pattern);
    if (n && pattern[0] == '^')
        pattern++, n--;
    if (n && pattern[n - 1] == '$')
        n--;
    uint32_t opens = 0;
    for (size_t i = 0; i < n; i++)
        opens += pattern[i] == '(';
    if (opens != groups)
        return NULL;
    char **fixed = calloc(groups + 1, sizeof *fixed);
    if (!fixed)
        return NULL;
    const char *p = pattern, *end = pattern + n;
    for (uint32_t k = 0; k <= groups; k++) {
        const char *open = memchr(p, '(', (size_t)(end - p));
        const char *stop = open ? open : end;
        if (!(fixed[k] = unescape_fixed(p, (size_t)(stop - p))))
            goto fail;
        if (!open)
            break;
        const char *close = memchr(open, ')', (size_t)(end - open));
        if (!close)
            goto fail;
        p = close + 1;
    }
    if (!fixed[groups])
        goto fail;
    return fixed;
fail:
    for (uint32_t k = 0; k <= groups; k++)
        free(fixed[k]);
    free(fixed);
    return NULL;
}

void gust__router_free_route(gust__route *r)
{
    if (r->group_names)
        for (uint32_t i = 0; i < r->groups; i++)
            free(r->group_names[i]);
    free(r->group_names);
    if (r->fixed)
        for (uint32_t i = 0; i <= r->groups; i++)
            free(r->fixed[i]);
    free(r->fixed);
    pcre2_code_free(r->re);
    pcre2_code_free(r->host_re);
    free(r->pattern);
    free(r->name);
}

/* Names of the groups, by group number (from PCRE2's name table). */
static int read_names(gust__route *r)
{
    uint32_t count = 0, entry = 0;
    PCRE2_SPTR table = NULL;
    pcre2_pattern_info(r->re, PCRE2_INFO_NAMECOUNT, &count);
    if (count == 0 || r->groups == 0)
        return 0;
    pcre2_pattern_info(r->re, PCRE2_INFO_NAMEENTRYSIZE, &entry);
    pcre2_pattern_info(r->re, PCRE2_INFO_NAMETABLE, &table);
    r->group_names = calloc(r->groups, sizeof *r->group_names);
    if (!r->group_names)
        return -ENOMEM;
    for (uint32_t i = 0; i < count; i++) {
        PCRE2_SPTR e = table + (size_t)i * entry;
        uint32_t num = ((uint32_t)e[0] << 8) | e[1];
        if (num >= 1 && num <= r->groups &&
            !(r->group_names[num - 1] = strdup((const char *)e + 2)))
            return -ENOMEM;
    }
    return 0;
}

int gust__router_add(gust_app *app, const gust_route *spec)
{
    if (!spec->pattern || !spec->handler) {
        gust_log_error("web", "route %s has no %s", spec->pattern ? spec->pattern : "?",
                       spec->pattern ? "handler" : "pattern");
        return -EINVAL;
    }
    if (app->nroutes == app->cap) {
        size_t cap = app->cap ? app->cap * 2 : 8;
        gust__route *rs = realloc(app->routes, cap * sizeof *rs);
        if (!rs)
            return -ENOMEM;
        app->routes = rs;
        app->cap = cap;
    }
    gust__route r = {.cls = spec->handler, .data = spec->data};
    int rc = -ENOMEM;
    if (!(r.pattern = strdup(spec->pattern)) ||
        (spec->name && !(r.name = strdup(spec->name))))
        goto fail;
    if (!(r.re = compile(spec->pattern, 0, "route")) ||
        (spec->host && !(r.host_re = compile(spec->host, PCRE2_CASELESS, "host")))) {
        rc = -errno;
        goto fail;
    }
    pcre2_pattern_info(r.re, PCRE2_INFO_CAPTURECOUNT, &r.groups);
    if ((rc = read_names(&r)) < 0)
        goto fail;
    r.fixed = reverse_parts(spec->pattern, r.groups);
    if (r.groups > app->max_groups || !app->md) {
        pcre2_match_data *md = pcre2_match_data_create(
            (r.groups > app->max_groups ? r.groups : app->max_groups) + 1, NULL);
        if (!md)
            goto fail;
        pcre2_match_data_free(app->md);
        app->md = md;
        if (r.groups > app->max_groups)
            app->max_groups = r.groups;
    }
    app->routes[app->nroutes++] = r;
    return 0;
fail:
    gust__router_free_route(&r);
    return rc;
}

static bool matches(gust_app *app, const pcre2_code *re, const char *s,
                    size_t len)
{
    return pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, app->md, NULL) >= 0;
}

/* Path arguments of the last match, percent-decoded into the arena. */
static int take_args(gust_app *app, gust_handler *h, const char *path)
{
    const gust__route *r = h->route;
    h->nargs = r->groups;
    h->arg_names = r->group_names;
    if (!r->groups)
        return 0;
    gust_arena *arena = h->req->arena;
    const char **args = gust_arena_calloc(arena, r->groups, sizeof *args);
    if (!args)
        return -ENOMEM;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(app->md);
    for (uint32_t i = 0; i < r->groups; i++) {
        PCRE2_SIZE s = ov[2 * (i + 1)], e = ov[2 * (i + 1) + 1];
        if (s == PCRE2_UNSET)
            continue;
        gust_str in = gust_str_make(path + s, e - s), out;
        if (gust_url_unescape(arena, in, 0, &out) < 0)
            return -ENOMEM;
        args[i] = out.ptr == in.ptr ? gust_str_dup(arena, in) : out.ptr;
        if (!args[i])
            return -ENOMEM;
    }
    h->args = args;
    return 0;
}

int gust__router_match(gust_app *app, gust_handler *h)
{
    const gust_http_request *req = h->req;
    const char *path = req->path;
    size_t plen = strlen(path);
    const char *host = req->host_name ? req->host_name : "";
    for (size_t i = 0; i < app->nroutes; i++) {
        const gust__route *r = &app->routes[i];
        if (r->host_re && !matches(app, r->host_re, host, strlen(host)))
            continue;
        if (!matches(app, r->re, path, plen))
            continue;
        h->route = r;
        h->cls = r->cls;
        h->route_data = r->data;
        return take_args(app, h, path);
    }
    return 0;
}

char *gust__router_reverse(gust_app *app, gust_arena *arena, const char *name,
                           va_list ap)
{
    const gust__route *r = NULL;
    for (size_t i = 0; i < app->nroutes && !r; i++)
        if (app->routes[i].name && strcmp(app->routes[i].name, name) == 0)
            r = &app->routes[i];
    if (!r || !r->fixed)
        return NULL;
    /* Two passes over the arguments: count and size, then write. */
    va_list count;
    va_copy(count, ap);
    uint32_t given = 0;
    while (va_arg(count, const char *))
        given++;
    va_end(count);
    if (given != r->groups)
        return NULL;
    gust_str *esc = gust_arena_alloc(arena, (r->groups + 1) * sizeof *esc);
    if (!esc)
        return NULL;
    size_t total = strlen(r->fixed[0]) + 1;
    for (uint32_t i = 0; i < r->groups; i++) {
        const char *a = va_arg(ap, const char *);
        if (gust_url_escape(arena, gust_str_cstr(a), 0, &esc[i]) < 0)
            return NULL;
        total += esc[i].len + strlen(r->fixed[i + 1]);
    }
    char *out = gust_arena_alloc(arena, total), *o = out;
    if (!out)
        return NULL;
    size_t n = strlen(r->fixed[0]);
    memcpy(o, r->fixed[0], n);
    o += n;
    for (uint32_t i = 0; i < r->groups; i++) {
        memcpy(o, esc[i].ptr, esc[i].len);
        o += esc[i].len;
        n = strlen(r->fixed[i + 1]);
        memcpy(o, r->fixed[i + 1], n);
        o += n;
    }
    *o = '\0';
    return out;
}
