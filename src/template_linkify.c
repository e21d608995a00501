/* The linkify() builtin: Tornado's tornado.escape.linkify, with the same
 * URL regex (run by PCRE2 in UTF mode with Unicode properties, as Python's
 * re runs it on str) over the HTML-escaped text. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "template_internal.h"

/* Tornado's _URL_RE. */
static const char url_re[] =
    "\\b((?:([\\w-]+):(/{1,3})|www[.])(?:(?:(?:[^\\s&()]|&amp;|&quot;)*"
    "(?:[^!\"#$%&'()*+,.:;<=>?@\\[\\]^`{|}~\\s]))|"
    "(?:\\((?:[^\\s&()]|&amp;|&quot;)*\\)))+)";

/* Compiled once per process and never freed: a constant, like the tables
 * of the C library. pcre2_match() on a shared code is thread-safe. */
static pcre2_code *url_code;
static pthread_once_t url_once = PTHREAD_ONCE_INIT;

static void compile_url_re(void)
{
    int err;
    PCRE2_SIZE off;
    url_code = pcre2_compile((PCRE2_SPTR)url_re, PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_UCP, &err, &off, NULL);
}

static void adds(struct sbuf *b, const char *s)
{
    gust__template_filters_sb_add(b, s, strlen(s));
}

/* Back to the start of a UTF-8 sequence, so that a cut keeps text valid. */
static size_t char_boundary(const char *s, size_t n)
{
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

static size_t min_sz(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* Tornado's shortening of a long URL for display: host and the start of
 * the path, then "...". Writes the text shown into *shown (malloc'ed) and
 * returns true when it differs from url. */
static bool shorten_url(const char *url, size_t n, size_t proto_len,
                        struct sbuf *shown)
{
    const size_t max_len = 30;
    struct sbuf u = {0};
    const char *rest = url + proto_len, *end = url + n;
    const char *slash = memchr(rest, '/', (size_t)(end - rest));
    if (slash) {
        gust__template_filters_sb_add(&u, url, proto_len + (size_t)(slash - rest) + 1);
        const char *p1 = slash + 1;
        const char *p1_end = memchr(p1, '/', (size_t)(end - p1));
        size_t k = p1_end ? (size_t)(p1_end - p1) : (size_t)(end - p1);
        k = char_boundary(p1, min_sz(k, 8));
        size_t cut = 0;
        while (cut < k && p1[cut] != '?' && p1[cut] != '.')
            cut++;
        gust__template_filters_sb_add(&u, p1, cut);
    } else {
        gust__template_filters_sb_add(&u, url, n);
    }
    if (u.failed) {
        free(u.p);
        shown->failed = true;
        return false;
    }
    if (u.n > max_len * 3 / 2)
        u.n = char_boundary(u.p, max_len);
    if (u.n == n && memcmp(u.p, url, n) == 0) {
        free(u.p);
        return false;
    }
    /* Do not split an HTML entity. */
    for (size_t i = u.n; i-- > 0;) {
        if (u.p[i] == '&') {
            if (i > max_len - 5)
                u.n = i;
            break;
        }
    }
    if (u.n + 3 >= n) { /* not shorter after all */
        free(u.p);
        return false;
    }
    gust__template_filters_sb_add(shown, u.p, u.n);
    adds(shown, "...");
    free(u.p);
    return true;
}

static bool permitted(json_t *protocols, const char *proto, size_t n)
{
    if (!protocols)
        return (n == 4 && memcmp(proto, "http", 4) == 0) ||
               (n == 5 && memcmp(proto, "https", 5) == 0);
    for (size_t i = 0; i < json_array_size(protocols); i++) {
        json_t *p = json_array_get(protocols, i);
        if (json_string_length(p) == n &&
            memcmp(json_string_value(p), proto, n) == 0)
            return true;
    }
    return false;
}

json_t *gust__template_linkify(struct render *r, int line, json_t **args, int nargs)
{
    bool shorten = nargs > 1 && gust__template_expr_truthy(args[1]);
    bool require_protocol = nargs > 3 && gust__template_expr_truthy(args[3]);
    json_t *protocols = nargs > 4 ? args[4] : NULL;
    if (nargs > 2 && !json_is_string(args[2]))
        return gust__template_expr_fail(r, -EINVAL, line,
                              "linkify(): extra_params must be a string");
    if (protocols) {
        bool ok = json_is_array(protocols);
        for (size_t i = 0; ok && i < json_array_size(protocols); i++)
            ok = json_is_string(json_array_get(protocols, i));
        if (!ok)
            return gust__template_expr_fail(r, -EINVAL, line,
                                  "linkify(): permitted_protocols must be a "
                                  "list of strings");
    }
    pthread_once(&url_once, compile_url_re);
    if (!url_code)
        return gust__template_expr_fail(r, -ENOMEM, line, "out of memory");

    /* extra_params: " " + its text stripped, as Tornado does. */
    struct sbuf extra = {0};
    if (nargs > 2 && json_string_length(args[2])) {
        const char *e = json_string_value(args[2]);
        size_t en = json_string_length(args[2]);
        while (en && strchr(" \t\n\r\f\v", e[en - 1]))
            en--;
        while (en && strchr(" \t\n\r\f\v", *e))
            e++, en--;
        gust__template_filters_sb_add(&extra, " ", 1);
        gust__template_filters_sb_add(&extra, e, en);
    }
    struct sbuf text = {0}, out = {0};
    size_t n;
    char *raw = gust__template_filters_to_text(args[0], &n);
    if (!raw) {
        free(extra.p);
        return gust__template_expr_fail(r, -ENOMEM, line, "out of memory");
    }
    gust__template_filters_sb_escape(&text, raw, n);
    free(raw);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(url_code, NULL);
    if (!md || text.failed) {
        pcre2_match_data_free(md);
        free(text.p);
        free(extra.p);
        return gust__template_expr_fail(r, -ENOMEM, line, "out of memory");
    }
    const char *s = text.p ? text.p : "";
    size_t len = text.n, at = 0;
    while (at <= len && !out.failed) {
        int rc = pcre2_match(url_code, (PCRE2_SPTR)s, len, at, 0, md, NULL);
        if (rc < 0)
            break; /* no match (or invalid UTF-8: left as escaped text) */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t m0 = ov[2], m1 = ov[3];
        gust__template_filters_sb_add(&out, s + at, m0 - at);
        at = m1 > m0 ? m1 : m0 + 1;
        const char *url = s + m0;
        size_t url_n = m1 - m0;
        bool has_proto = rc > 2 && ov[4] != PCRE2_UNSET;
        const char *proto = has_proto ? s + ov[4] : NULL;
        size_t proto_n = has_proto ? ov[5] - ov[4] : 0;
        if ((require_protocol && !has_proto) ||
            (has_proto && !permitted(protocols, proto, proto_n))) {
            gust__template_filters_sb_add(&out, url, url_n);
            continue;
        }
        struct sbuf href = {0}, shown = {0};
        if (!has_proto)
            adds(&href, "http://");
        gust__template_filters_sb_add(&href, url, url_n);
        bool clipped = false;
        if (shorten && url_n > 30) {
            size_t proto_len =
                has_proto ? proto_n + 1 + (rc > 3 && ov[6] != PCRE2_UNSET
                                               ? ov[7] - ov[6]
                                               : 0)
                          : 0;
            clipped = shorten_url(url, url_n, proto_len, &shown);
        }
        adds(&out, "<a href=\"");
        gust__template_filters_sb_add(&out, href.p, href.n);
        adds(&out, "\"");
        gust__template_filters_sb_add(&out, extra.p, extra.n);
        if (clipped) {
            adds(&out, " title=\"");
            gust__template_filters_sb_add(&out, href.p, href.n);
            adds(&out, "\"");
        }
        adds(&out, ">");
        if (clipped)
            gust__template_filters_sb_add(&out, shown.p, shown.n);
        else
            gust__template_filters_sb_add(&out, url, url_n);
        adds(&out, "</a>");
        out.failed |= href.failed || shown.failed;
        free(href.p);
        free(shown.p);
    }
    if (at < len)
        gust__template_filters_sb_add(&out, s + at, len - at);
    pcre2_match_data_free(md);
    free(text.p);
    free(extra.p);
    if (out.failed) {
        free(out.p);
        return gust__template_expr_fail(r, -ENOMEM, line, "out of memory");
    }
    if (r->limits.max_value && out.n > r->limits.max_value) {
        free(out.p);
        return gust__template_expr_fail(r, -E2BIG, line,
                              "value larger than the template limit");
    }
    json_t *v = json_stringn_nocheck(out.p ? out.p : "", out.n);
    free(out.p);
    return v ? v : gust__template_expr_fail(r, -ENOMEM, line, "out of memory");
}
