/* Builtin functions of template expressions (escape, url_escape,
 * json_encode, length, default, ...) and the text form of values. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template_internal.h"

enum builtin {
    B_ESCAPE,
    B_URL_ESCAPE,
    B_JSON_ENCODE,
    B_SQUEEZE,
    B_LENGTH,
    B_DEFAULT,
    B_STR,
    B_INT,
    B_FLOAT,
    B_UPPER,
    B_LOWER,
    B_RANGE,
    B_JOIN,
    B_LINKIFY,
    B_STATIC_URL,
    B_REVERSE_URL,
};

static const struct {
    const char *name;
    enum builtin id;
    int min, max;
} builtins[] = {
    {"escape", B_ESCAPE, 1, 1},     {"xhtml_escape", B_ESCAPE, 1, 1},
    {"url_escape", B_URL_ESCAPE, 1, 2}, {"json_encode", B_JSON_ENCODE, 1, 1},
    {"squeeze", B_SQUEEZE, 1, 1},   {"length", B_LENGTH, 1, 1},
    {"len", B_LENGTH, 1, 1},        {"default", B_DEFAULT, 1, 2},
    {"str", B_STR, 1, 1},           {"int", B_INT, 1, 1},
    {"float", B_FLOAT, 1, 1},       {"upper", B_UPPER, 1, 1},
    {"lower", B_LOWER, 1, 1},       {"range", B_RANGE, 1, 3},
    {"join", B_JOIN, 1, 2},         {"linkify", B_LINKIFY, 1, 5},
    {"static_url", B_STATIC_URL, 1, 1},
    {"reverse_url", B_REVERSE_URL, 1, TPL_MAX_CALL_ARGS},
};

int gust__template_filters_builtin(const char *name, size_t n, int *min_args,
                                   int *max_args)
{
    for (size_t i = 0; i < sizeof builtins / sizeof *builtins; i++)
        if (strlen(builtins[i].name) == n && memcmp(builtins[i].name, name, n) == 0) {
            *min_args = builtins[i].min;
            *max_args = builtins[i].max;
            return (int)builtins[i].id;
        }
    return -1;
}

void gust__template_filters_sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

/* Python's repr() of a float: the shortest text that reads back the same,
 * with ".0" on integral values and exponents only outside [1e-4, 1e16). */
void gust__template_filters_format_real(double d, char *out, size_t n)
{
    if (isnan(d)) {
        snprintf(out, n, "nan");
        return;
    }
    if (isinf(d)) {
        snprintf(out, n, d < 0 ? "-inf" : "inf");
        return;
    }
    char e[40];
    int prec;
    for (prec = 1; prec < 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, d);
        if (strtod(e, NULL) == d)
            break;
    }
    snprintf(e, sizeof e, "%.*e", prec - 1, d);
    const char *x = strchr(e, 'e');
    int exp = x ? atoi(x + 1) : 0;
    if (exp < -4 || exp >= 16) {
        snprintf(out, n, "%s", e);
        return;
    }
    int decimals = prec - 1 - exp;
    snprintf(out, n, "%.*f", decimals > 0 ? decimals : 0, d);
    if (!strchr(out, '.') && strlen(out) + 3 <= n)
        strcat(out, ".0");
}

char *gust__template_filters_to_text(const json_t *v, size_t *n)
{
    char tmp[64];
    const char *s = tmp;
    switch (json_typeof(v)) {
    case JSON_STRING:
        *n = json_string_length(v);
        s = json_string_value(v);
        break;
    case JSON_INTEGER:
        snprintf(tmp, sizeof tmp, "%lld", (long long)json_integer_value(v));
        *n = strlen(tmp);
        break;
    case JSON_REAL:
        gust__template_filters_format_real(json_real_value(v), tmp, sizeof tmp);
        *n = strlen(tmp);
        break;
    case JSON_TRUE:
        s = "True";
        *n = 4;
        break;
    case JSON_FALSE:
        s = "False";
        *n = 5;
        break;
    case JSON_NULL:
        s = "None";
        *n = 4;
        break;
    default: {
        /* Arrays and objects print as JSON, Python's separators. */
        char *d = json_dumps(v, JSON_ENCODE_ANY);
        if (d)
            *n = strlen(d);
        return d;
    }
    }
    char *d = malloc(*n + 1);
    if (d) {
        memcpy(d, s, *n);
        d[*n] = 0;
    }
    return d;
}

static const char *escape_of(char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\'': return "&#39;";
    }
    return NULL;
}

/* Appends s escaped for HTML through emit (runs of plain bytes in one go). */
static int escape_into(struct render *r, struct sbuf *b, const char *s, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        const char *rep = escape_of(s[i]);
        if (!rep)
            continue;
        if (b) {
            gust__template_filters_sb_add(b, s + start, i - start);
            gust__template_filters_sb_add(b, rep, strlen(rep));
        } else {
            int rc = gust__template_render_emit(r, s + start, i - start);
            if (rc == 0)
                rc = gust__template_render_emit(r, rep, strlen(rep));
            if (rc < 0)
                return rc;
        }
        start = i + 1;
    }
    if (b) {
        gust__template_filters_sb_add(b, s + start, n - start);
        return 0;
    }
    return gust__template_render_emit(r, s + start, n - start);
}

void gust__template_filters_sb_escape(struct sbuf *b, const char *s, size_t n)
{
    escape_into(NULL, b, s, n);
}

int gust__template_filters_emit_value(struct render *r, const json_t *v, bool escape)
{
    if (json_is_string(v))
        return escape ? escape_into(r, NULL, json_string_value(v),
                                    json_string_length(v))
                      : gust__template_render_emit(r, json_string_value(v),
                                                   json_string_length(v));
    size_t n;
    char *s = gust__template_filters_to_text(v, &n);
    if (!s)
        return -ENOMEM;
    int rc = escape ? escape_into(r, NULL, s, n)
                    : gust__template_render_emit(r, s, n);
    free(s);
    return rc;
}

static json_t *string_result(struct render *r, int line, struct sbuf *b)
{
    if (b->failed) {
        free(b->p);
        return gust__template_expr_fail(r, -ENOMEM, line, "out of memory");
    }
    if (r->limits.max_value && b->n > r->limits.max_value) {
        free(b->p);
        return gust__template_expr_fail(r, -E2BIG, line,
                                        "value larger than the template limit");
    }
    json_t *v = json_stringn_nocheck(b->p ? b->p : "", b->n);
    free(b->p);
    return v ? v : gust__template_expr_fail(r, -ENOMEM, line, "out of memory");
}

static json_t *text_of(struct render *r, int line, const json_t *v, struct sbuf *b)
{
    size_t n;
    char *s = gust__template_filters_to_text(v, &n);
    if (!s)
        return gust__template_expr_fail(r, -ENOMEM, line, "out of memory");
    gust__template_filters_sb_add(b, s, n);
    free(s);
    return (json_t *)v;
}

static json_t *url_escape(struct render *r, int line, const json_t *v, bool plus)
{
    struct sbuf in = {0}, out = {0};
    if (!text_of(r, line, v, &in))
        return NULL;
    for (size_t i = 0; i < in.n; i++) {
        unsigned char c = (unsigned char)in.p[i];
        char hex[4];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '_' || c == '.' || c == '-' || c == '~' ||
            (c == '/' && !plus)) { /* quote() keeps '/', quote_plus() not */
            gust__template_filters_sb_add(&out, (const char *)&c, 1);
        } else if (c == ' ' && plus) {
            gust__template_filters_sb_add(&out, "+", 1);
        } else {
            snprintf(hex, sizeof hex, "%%%02X", c);
            gust__template_filters_sb_add(&out, hex, 3);
        }
    }
    free(in.p);
    return string_result(r, line, &out);
}

static json_t *json_encode(struct render *r, int line, const json_t *v)
{
    char *d = json_dumps(v, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    if (!d)
        return gust__template_expr_fail(r, -EINVAL, line,
                                        "json_encode: value cannot be encoded");
    /* "</" becomes "<\/" so that the JSON can sit inside a <script>. */
    struct sbuf out = {0};
    for (const char *p = d; *p; p++) {
        if (p[0] == '<' && p[1] == '/')
            gust__template_filters_sb_add(&out, "<\\", 2);
        else
            gust__template_filters_sb_add(&out, p, 1);
    }
    free(d);
    return string_result(r, line, &out);
}

static json_t *to_int(struct render *r, int line, const json_t *v)
{
    if (json_is_integer(v))
        return json_incref((json_t *)v);
    if (json_is_boolean(v))
        return json_integer(json_is_true(v));
    if (json_is_real(v)) {
        double d = trunc(json_real_value(v));
        if (!(d >= -9.2e18 && d <= 9.2e18))
            return gust__template_expr_fail(r, -EINVAL, line,
                                            "int(): float out of range");
        return json_integer((json_int_t)d);
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        while (*end == ' ' || *end == '\t' || *end == '\n')
            end++;
        if (end == s || *end || errno || strlen(s) != json_string_length(v))
            return gust__template_expr_fail(
                r, -EINVAL, line, "int(): invalid literal '%.40s'", s);
        return json_integer(x);
    }
    return gust__template_expr_fail(r, -EINVAL, line, "int() of %s",
                                    json_is_null(v) ? "None" : "a container");
}

static json_t *to_float(struct render *r, int line, const json_t *v)
{
    if (json_is_integer(v) || json_is_real(v))
        return json_real(json_is_integer(v) ? (double)json_integer_value(v)
                                            : json_real_value(v));
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        double d = strtod(s, &end);
        while (*end == ' ' || *end == '\t' || *end == '\n')
            end++;
        if (end == s || *end || !isfinite(d) || strlen(s) != json_string_length(v))
            return gust__template_expr_fail(
                r, -EINVAL, line, "float(): invalid literal '%.40s'", s);
        return json_real(d);
    }
    return gust__template_expr_fail(r, -EINVAL, line,
                                    "float() needs a number or a string");
}

static json_t *range(struct render *r, int line, json_t **args, int n)
{
    json_int_t start = 0, stop, step = 1;
    for (int i = 0; i < n; i++)
        if (!json_is_integer(args[i]))
            return gust__template_expr_fail(r, -EINVAL, line,
                                            "range() takes ints");
    if (n == 1) {
        stop = json_integer_value(args[0]);
    } else {
        start = json_integer_value(args[0]);
        stop = json_integer_value(args[1]);
        if (n == 3)
            step = json_integer_value(args[2]);
    }
    if (step == 0)
        return gust__template_expr_fail(r, -EINVAL, line,
                                        "range() step must not be zero");
    unsigned long long count = 0;
    if (step > 0 && start < stop)
        count = ((unsigned long long)stop - (unsigned long long)start - 1) /
                    (unsigned long long)step + 1;
    else if (step < 0 && start > stop)
        count = ((unsigned long long)start - (unsigned long long)stop - 1) /
                    (0ULL - (unsigned long long)step) + 1;
    if (r->limits.max_value && count > r->limits.max_value)
        return gust__template_expr_fail(
            r, -E2BIG, line, "range() larger than the template limit");
    /* Each item costs a step, so the step limit bounds the work too. */
    if (r->limits.max_steps && count > r->limits.max_steps - r->steps)
        return gust__template_expr_fail(r, -E2BIG, line,
                                        "template exceeded its step limit");
    r->steps += count;
    json_t *a = json_array();
    json_int_t x = start;
    for (unsigned long long i = 0; a && i < count; i++, x += (i < count ? step : 0))
        if (json_array_append_new(a, json_integer(x)) < 0) {
            json_decref(a);
            a = NULL;
        }
    return a ? a : gust__template_expr_fail(r, -ENOMEM, line, "out of memory");
}

/* static_url(path) and reverse_url(name, args...): the application's, through
 * the render's hooks. */
static json_t *app_url(struct render *r, const struct expr *e, json_t **args)
{
    const gust_template_hooks *hk = r->hooks;
    bool is_static = e->fn == B_STATIC_URL;
    const char *what = is_static ? "static_url" : "reverse_url";
    if (!hk || !(is_static ? (void *)hk->static_url : (void *)hk->reverse_url))
        return gust__template_expr_fail(r, -EINVAL, e->line, "%s() needs the application "
                              "(render with hooks, as gust_handler_render "
                              "does)",
                              what);
    /* Arguments as text: reverse_url("item", 42) works as in Tornado. */
    char *text[TPL_MAX_CALL_ARGS] = {NULL};
    int n = e->nitems;
    json_t *v = NULL;
    for (int i = 0; i < n; i++) {
        size_t len;
        if (!(text[i] = gust__template_filters_to_text(args[i], &len))) {
            gust__template_expr_fail(r, -ENOMEM, e->line, "out of memory");
            goto done;
        }
    }
    const char *url =
        is_static ? hk->static_url(hk->data, text[0])
                  : hk->reverse_url(hk->data, text[0],
                                    (const char *const *)text + 1,
                                    (size_t)n - 1);
    if (!url)
        gust__template_expr_fail(r, -EINVAL, e->line, "%s(\"%.60s\"%s) failed%s", what,
                       text[0], n > 1 ? ", ..." : "",
                       is_static ? "" : ": no such route, or another number "
                                        "of arguments");
    else if (!(v = json_string(url)))
        gust__template_expr_fail(r, -ENOMEM, e->line, "out of memory");
done:
    for (int i = 0; i < n; i++)
        free(text[i]);
    return v;
}

static json_t *call(struct render *r, const struct expr *e, json_t **args)
{
    json_t *v = args[0];
    struct sbuf b = {0};
    switch ((enum builtin)e->fn) {
    case B_ESCAPE:
        if (!text_of(r, e->line, v, &b))
            return NULL;
        {
            struct sbuf out = {0};
            escape_into(r, &out, b.p ? b.p : "", b.n);
            free(b.p);
            return string_result(r, e->line, &out);
        }
    case B_URL_ESCAPE:
        return url_escape(r, e->line, v,
                          e->nitems < 2 || gust__template_expr_truthy(args[1]));
    case B_JSON_ENCODE:
        return json_encode(r, e->line, v);
    case B_SQUEEZE: {
        if (!text_of(r, e->line, v, &b))
            return NULL;
        struct sbuf out = {0};
        bool space = false;
        for (size_t i = 0; i < b.n; i++) {
            if ((unsigned char)b.p[i] <= 0x20) {
                space = true;
                continue;
            }
            if (space && out.n)
                gust__template_filters_sb_add(&out, " ", 1);
            space = false;
            gust__template_filters_sb_add(&out, b.p + i, 1);
        }
        free(b.p);
        return string_result(r, e->line, &out);
    }
    case B_LENGTH:
        if (json_is_string(v)) {
            json_int_t n = 0;
            const char *s = json_string_value(v);
            for (size_t i = 0; i < json_string_length(v); i++)
                n += ((unsigned char)s[i] & 0xC0) != 0x80;
            return json_integer(n);
        }
        if (json_is_array(v))
            return json_integer((json_int_t)json_array_size(v));
        if (json_is_object(v))
            return json_integer((json_int_t)json_object_size(v));
        return gust__template_expr_fail(r, -EINVAL, e->line,
                                        "length() of a value without length");
    case B_STR:
        if (!text_of(r, e->line, v, &b))
            return NULL;
        return string_result(r, e->line, &b);
    case B_INT:
        return to_int(r, e->line, v);
    case B_FLOAT:
        return to_float(r, e->line, v);
    case B_UPPER:
    case B_LOWER:
        if (!text_of(r, e->line, v, &b))
            return NULL;
        for (size_t i = 0; i < b.n; i++) {
            char c = b.p[i];
            if (e->fn == B_UPPER && c >= 'a' && c <= 'z')
                b.p[i] = (char)(c - 32);
            else if (e->fn == B_LOWER && c >= 'A' && c <= 'Z')
                b.p[i] = (char)(c + 32);
        }
        return string_result(r, e->line, &b);
    case B_RANGE:
        return range(r, e->line, args, e->nitems);
    case B_JOIN:
        if (!json_is_array(v) || (e->nitems > 1 && !json_is_string(args[1])))
            return gust__template_expr_fail(
                r, -EINVAL, e->line, "join() takes an array and a string");
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i && e->nitems > 1)
                gust__template_filters_sb_add(&b, json_string_value(args[1]),
                                 json_string_length(args[1]));
            if (!text_of(r, e->line, json_array_get(v, i), &b)) {
                free(b.p);
                return NULL;
            }
            if (r->limits.max_value && b.n > r->limits.max_value)
                break;
        }
        return string_result(r, e->line, &b);
    case B_LINKIFY:
        return gust__template_linkify(r, e->line, args, e->nitems);
    case B_STATIC_URL:
    case B_REVERSE_URL:
        return app_url(r, e, args);
    case B_DEFAULT:
        break;
    }
    return NULL;
}

json_t *gust__template_filters_call(struct render *r, const struct expr *e,
                                    int depth)
{
    json_t *args[TPL_MAX_CALL_ARGS] = {NULL};
    if (e->fn == B_DEFAULT) {
        /* default(x, fallback): fallback ("" if omitted) when x names
         * something undefined: a name, key or index that is missing. */
        json_t *v = gust__template_expr_eval(r, e->items[0], depth + 1);
        if (v || !r->missing)
            return v;
        r->err = 0;
        r->missing = false;
        r->msg[0] = 0;
        if (e->nitems < 2) {
            v = json_string("");
            return v ? v
                     : gust__template_expr_fail(r, -ENOMEM, e->line,
                                                "out of memory");
        }
        return gust__template_expr_eval(r, e->items[1], depth + 1);
    }
    for (int i = 0; i < e->nitems; i++)
        if (!(args[i] = gust__template_expr_eval(r, e->items[i], depth + 1))) {
            for (int j = 0; j < i; j++)
                json_decref(args[j]);
            return NULL;
        }
    json_t *v = call(r, e, args);
    if (!v && !r->err)
        gust__template_expr_fail(r, -ENOMEM, e->line, "out of memory");
    for (int i = 0; i < e->nitems; i++)
        json_decref(args[i]);
    return v;
}
