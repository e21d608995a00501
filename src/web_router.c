/* Routing (Tornado's routing.PathMatches and URLSpec): PCRE2 patterns
 * compiled once with JIT, anchored at both ends, matched with one match
 * data block per application so that a request allocates nothing but its
 * decoded path arguments (in the request arena). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gust/log.h"
#include "web_internal.h"

#define LOG_MODULE "web"

void gust__web_router_init(gust__web_router *r)
{
    memset(r, 0, sizeof *r);
}

static void piece_free(gust__web_piece *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(p[i].text);
    free(p);
}

static void route_close(gust__web_route *rt)
{
    pcre2_code_free(rt->re);
    pcre2_code_free(rt->host_re);
    free(rt->pattern);
    free(rt->host);
    free(rt->name);
    free(rt->merged);
    piece_free(rt->pieces, rt->npieces);
}

void gust__web_router_close(gust__web_router *r)
{
    for (size_t i = 0; i < r->count; i++)
        route_close(&r->routes[i]);
    free(r->routes);
    pcre2_match_data_free(r->md);
    memset(r, 0, sizeof *r);
}

static char *dupstr(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* ENDANCHORED is Tornado's appended '$' without its "before a final
 * newline" exception; ANCHORED is re.match. */
static pcre2_code *compile(const char *pattern, const char *what)
{
    int err;
    PCRE2_SIZE off;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_ANCHORED | PCRE2_ENDANCHORED |
                                       PCRE2_DOLLAR_ENDONLY,
                                   &err, &off, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        gust_log_error(LOG_MODULE, "bad %s pattern \"%s\" at offset %zu: %s",
                       what, pattern, (size_t)off, (const char *)msg);
        errno = EINVAL;
        return NULL;
    }
    /* JIT is an optimisation: a platform without it still matches. */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/* Tornado's URLSpec._find_groups: a pattern is reversible when its text
 * outside groups is literal (escaped punctuation allowed: an escaped
 * letter or digit is a class or a special character, as re_unescape
 * refuses it) and groups do not nest. */
static int make_pieces(gust__web_route *rt)
{
    const char *p = rt->pattern;
    size_t n = strlen(p);
    if (n && p[0] == '^')
        p++, n--;
    if (n && p[n - 1] == '$' && !(n > 1 && p[n - 2] == '\\'))
        n--;
    size_t cap = 2 * (size_t)rt->groups + 2;
    gust__web_piece *pieces = calloc(cap, sizeof *pieces);
    char *buf = malloc(n + 1);
    if (!pieces || !buf) {
        free(pieces);
        free(buf);
        return -ENOMEM;
    }
    size_t np = 0, bl = 0;
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        char c = p[i];
        if (c == '\\') {
            if (i + 1 >= n || isalnum((unsigned char)p[i + 1]) ||
                (unsigned char)p[i + 1] >= 0x80)
                ok = false;
            else
                buf[bl++] = p[++i];
        } else if (c == '(') {
            size_t depth = 1, j = i + 1;
            for (; j < n && depth; j++) {
                if (p[j] == '\\')
                    j++;
                else if (p[j] == '(')
                    ok = false;
                else if (p[j] == ')')
                    depth--;
            }
            /* Non-capturing and look-around groups are not arguments. */
            if (depth || (i + 1 < n && p[i + 1] == '?' &&
                          !(i + 2 < n && (p[i + 2] == '<' || p[i + 2] == 'P') &&
                            i + 3 < n && p[i + 3] != '=' && p[i + 3] != '!')))
                ok = false;
            if (!ok || np + 1 >= cap)
                break;
            pieces[np].text = strndup(buf, bl);
            pieces[np].group = true;
            if (!pieces[np++].text) {
                piece_free(pieces, np);
                free(buf);
                return -ENOMEM;
            }
            bl = 0;
            i = j - 1;
            /* A quantifier after a group makes it optional: not simple. */
            if (j < n && strchr("?*+{", p[j]))
                ok = false;
        } else if (strchr(".*+?[]{}|^$)", c)) {
            ok = false;
        } else {
            buf[bl++] = c;
        }
    }
    if (ok && np < cap) {
        pieces[np].text = strndup(buf, bl);
        if (!pieces[np++].text)
            ok = false;
    }
    free(buf);
    size_t groups = 0;
    for (size_t i = 0; i < np; i++)
        groups += pieces[i].group;
    if (!ok || groups != rt->groups) {
        piece_free(pieces, np);
        return 0;
    }
    rt->pieces = pieces;
    rt->npieces = np;
    return 0;
}

static int route_init(gust__web_route *rt, const gust_route *src)
{
    memset(rt, 0, sizeof *rt);
    rt->cls = rt->declared = src->handler;
    if (rt->cls && rt->cls->base) {
        rt->cls = rt->merged = gust__handler_class_merge(rt->cls);
        if (!rt->merged)
            goto nomem;
    }
    rt->data = src->data;
    rt->pattern = dupstr(src->pattern);
    rt->name = dupstr(src->name);
    rt->host = dupstr(src->host);
    if (!rt->pattern || (src->name && !rt->name) || (src->host && !rt->host))
        goto nomem;
    if (!(rt->re = compile(rt->pattern, "route")))
        goto fail;
    if (rt->host && !(rt->host_re = compile(rt->host, "host")))
        goto fail;
    pcre2_pattern_info(rt->re, PCRE2_INFO_CAPTURECOUNT, &rt->groups);
    pcre2_pattern_info(rt->re, PCRE2_INFO_NAMECOUNT, &rt->name_count);
    pcre2_pattern_info(rt->re, PCRE2_INFO_NAMEENTRYSIZE, &rt->name_entry);
    pcre2_pattern_info(rt->re, PCRE2_INFO_NAMETABLE, &rt->name_table);
    if (make_pieces(rt) < 0)
        goto nomem;
    /* A pattern that is one literal (most routes: "/", "/index") is
     * matched by comparing bytes, not by running the regex. */
    if (rt->pieces && rt->npieces == 1 && rt->groups == 0)
        rt->literal = rt->pieces[0].text;
    return 0;
nomem:
    errno = ENOMEM;
fail:;
    int err = -errno;
    route_close(rt);
    return err;
}

int gust__web_router_add(gust__web_router *r, const gust_route *routes)
{
    size_t n = 0;
    while (routes && routes[n].pattern)
        n++;
    if (r->count + n > r->cap) {
        size_t cap = r->cap ? r->cap : 8;
        while (cap < r->count + n)
            cap *= 2;
        gust__web_route *nr = realloc(r->routes, cap * sizeof *nr);
        if (!nr)
            return -ENOMEM;
        r->routes = nr;
        r->cap = cap;
    }
    uint32_t most = r->md_groups;
    for (size_t i = 0; i < n; i++) {
        if (!routes[i].handler) {
            gust_log_error(LOG_MODULE, "route \"%s\" has no handler class",
                           routes[i].pattern);
            errno = EINVAL;
        }
        int rc = routes[i].handler ? route_init(&r->routes[r->count + i],
                                                &routes[i])
                                   : -EINVAL;
        if (rc < 0) {
            while (i-- > 0)
                route_close(&r->routes[r->count + i]);
            return rc;
        }
        if (r->routes[r->count + i].groups > most)
            most = r->routes[r->count + i].groups;
    }
    if (!r->md || most > r->md_groups) {
        pcre2_match_data *md = pcre2_match_data_create(most + 1, NULL);
        if (!md) {
            for (size_t i = 0; i < n; i++)
                route_close(&r->routes[r->count + i]);
            return -ENOMEM;
        }
        pcre2_match_data_free(r->md);
        r->md = md;
        r->md_groups = most;
    }
    r->count += n;
    return 0;
}

static bool matches(const pcre2_code *re, pcre2_match_data *md,
                    const char *s, size_t len)
{
    return pcre2_match(re, (PCRE2_SPTR)s, len, 0, 0, md, NULL) >= 0;
}

int gust__web_router_match(gust__web_router *r, gust_arena *arena,
                           const char *path, const char *host_name,
                           gust__web_match *m)
{
    m->route = NULL;
    m->args = NULL;
    m->nargs = 0;
    size_t plen = SIZE_MAX; /* measured for the first regex */
    for (size_t i = 0; i < r->count; i++) {
        const gust__web_route *rt = &r->routes[i];
        if (rt->host_re && (!host_name ||
                            !matches(rt->host_re, r->md, host_name,
                                     strlen(host_name))))
            continue;
        if (rt->literal) {
            /* Most paths differ within a few bytes (or are this short):
             * an inline loop, which strcmp's set-up costs more than. */
            const char *a = path, *b = rt->literal;
            while (*a && *a == *b)
                a++, b++;
            if (*a != *b)
                continue;
            m->route = rt;
            return 0;
        }
        if (plen == SIZE_MAX)
            plen = strlen(path);
        int rc = pcre2_match(rt->re, (PCRE2_SPTR)path, plen, 0, 0, r->md,
                             NULL);
        if (rc < 0)
            continue;
        m->route = rt;
        m->nargs = rt->groups;
        if (!rt->groups)
            return 0;
        m->args = gust_arena_calloc(arena, rt->groups, sizeof *m->args);
        if (!m->args)
            return -ENOMEM;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
        for (uint32_t g = 1; g <= rt->groups && (int)g < rc; g++) {
            if (ov[2 * g] == PCRE2_UNSET)
                continue;
            gust_str raw = gust_str_make(path + ov[2 * g],
                                         ov[2 * g + 1] - ov[2 * g]);
            gust_str dec;
            /* As Tornado: percent-decoded, '+' kept; NUL bytes refused
             * since arguments are C strings (kept as sent then). */
            if (gust_url_unescape(arena, raw, GUST_URL_NO_NUL, &dec) < 0)
                dec = raw;
            char *s = gust_str_dup(arena, dec);
            if (!s)
                return -ENOMEM;
            m->args[g - 1] = s;
        }
        return 0;
    }
    return 0;
}

const char *gust__web_route_kwarg(const gust__web_route *route,
                                  const gust__web_match *m, const char *name)
{
    if (!route)
        return NULL;
    PCRE2_SPTR t = route->name_table;
    for (uint32_t i = 0; i < route->name_count; i++, t += route->name_entry) {
        unsigned idx = ((unsigned)t[0] << 8) | t[1];
        if (strcmp((const char *)t + 2, name) == 0 && idx >= 1 &&
            idx <= m->nargs)
            return m->args[idx - 1];
    }
    return NULL;
}

static const gust__web_route *named(const gust__web_router *r,
                                    const char *name)
{
    for (size_t i = 0; i < r->count; i++)
        if (r->routes[i].name && strcmp(r->routes[i].name, name) == 0)
            return &r->routes[i];
    return NULL;
}

char *gust__web_router_reverse(const gust__web_router *r, gust_arena *arena,
                               const char *name, va_list ap)
{
    const gust__web_route *rt = named(r, name);
    if (!rt || !rt->pieces)
        return NULL;
    /* One more than the groups: a NULL there says the count is right. */
    const char **args = gust_arena_alloc(arena, (rt->groups + 1) *
                                                    sizeof *args);
    if (!args)
        return NULL;
    size_t n = 0;
    while (n <= rt->groups && (args[n] = va_arg(ap, const char *)))
        n++;
    return gust__web_router_reverse_argv(r, arena, name, args, n);
}

char *gust__web_router_reverse_argv(const gust__web_router *r,
                                    gust_arena *arena, const char *name,
                                    const char *const *args, size_t nargs)
{
    const gust__web_route *rt = named(r, name);
    if (!rt || !rt->pieces || nargs != rt->groups)
        return NULL;
    /* Two passes over the arguments: escape each, then join. */
    gust_str *esc = rt->groups
                        ? gust_arena_calloc(arena, rt->groups, sizeof *esc)
                        : NULL;
    if (rt->groups && !esc)
        return NULL;
    size_t total = 1;
    for (uint32_t g = 0; g < rt->groups; g++) {
        if (!args[g] || gust_url_escape(arena, gust_str_cstr(args[g]),
                                        GUST_URL_KEEP_SLASH, &esc[g]) < 0)
            return NULL;
        total += esc[g].len;
    }
    for (size_t i = 0; i < rt->npieces; i++)
        total += strlen(rt->pieces[i].text);
    char *out = gust_arena_alloc(arena, total), *o = out;
    if (!out)
        return NULL;
    uint32_t g = 0;
    for (size_t i = 0; i < rt->npieces; i++) {
        size_t l = strlen(rt->pieces[i].text);
        memcpy(o, rt->pieces[i].text, l);
        o += l;
        if (rt->pieces[i].group) {
            memcpy(o, esc[g].ptr, esc[g].len);
            o += esc[g++].len;
        }
    }
    *o = '\0';
    return out;
}
