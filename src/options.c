/* Options: typed definitions, command line, config files, --help, and the
 * standard logging options. See include/gust/options.h for the contract. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "gust/error.h"
#include "gust/log.h"
#include "gust/options.h"

/* A list option may not expand beyond this many items: "1:2000000000" is a
 * typo, not a request for 8 GB. */
#define MAX_LIST_ITEMS 65536
#define HELP_NAME_WIDTH 30
#define HELP_WIDTH 79

union optval {
    int i;
    double d;
    bool b;
    char *s;
    struct {
        int *items;
        size_t n;
    } il;
    struct {
        char **items;
        size_t n;
    } sl;
};

struct option;
/* Extra check after the type's own parse (for --logging's level names). */
typedef int (*option_check_fn)(const union optval *v, char *why, size_t len);

struct option {
    char *name; /* normalised: '-' never '_' */
    char *help;
    char *group; /* NULL: the program's group */
    char *def_text; /* shown in --help; NULL: no default shown */
    enum gust_option_type type;
    void *var;
    union optval val;
    option_check_fn check;
    const char *metavar; /* static; NULL: the type's */
};

struct parse_cb {
    gust_options_parse_cb cb;
    void *data;
};

struct gust_options {
    struct option *opts;
    size_t n, cap;
    struct parse_cb *cbs;
    size_t ncbs;
    char **rest; /* NULL-terminated */
    int nrest;
    char *prog;
    FILE *help_out;
    char err[512];

    bool logging_defined;
    const char *log_level; /* the --logging option's var */
    const char *log_file_prefix;
    bool log_to_stderr;
    int log_max_size;
    int log_backups;
    bool log_file_open; /* our gust_log_to_file() is in force */
};

static gust_options *default_registry;

static gust_options *resolve(const gust_options *opts)
{
    return opts ? (gust_options *)opts : gust_options_default();
}

/* The message goes into a buffer of the registry's own, so that reporting
 * "out of memory" needs no memory. */
static void set_error(gust_options *opts, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_error(gust_options *opts, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(opts->err, sizeof opts->err, fmt, ap);
    va_end(ap);
}

/* ---- names ---------------------------------------------------------- */

/* As in Tornado, --log_file_prefix and --log-file-prefix name one option:
 * names are stored with '-', so --help shows one spelling. */
static char *normalize_name(const char *name, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        return NULL;
    for (size_t i = 0; i < len; i++)
        s[i] = name[i] == '_' ? '-' : name[i];
    s[len] = '\0';
    return s;
}

/* Compares a user-typed name of len bytes with a stored (normalised) one. */
static bool name_eq(const char *typed, size_t len, const char *stored)
{
    for (size_t i = 0; i < len; i++) {
        char c = typed[i] == '_' ? '-' : typed[i];
        if (stored[i] != c)
            return false;
    }
    return stored[len] == '\0';
}

/* A linear search: a program defines tens of options and looks one up
 * per argument or config line, which no index would make faster. */
static struct option *find_n(const gust_options *opts, const char *name,
                             size_t len)
{
    for (size_t i = 0; i < opts->n; i++)
        if (name_eq(name, len, opts->opts[i].name))
            return &opts->opts[i];
    return NULL;
}

static struct option *find(const gust_options *opts, const char *name)
{
    return name ? find_n(opts, name, strlen(name)) : NULL;
}

static bool valid_name(const char *name)
{
    if (!name || !*name || *name == '-' || *name == '_')
        return false;
    for (const char *p = name; *p; p++)
        if (*p == '=' || isspace((unsigned char)*p) ||
            iscntrl((unsigned char)*p) || *p == '#')
            return false;
    return true;
}

/* Optimal string alignment distance, so that a swap ("prot" for "port")
 * costs one edit like a typo does. Long names get no suggestion. */
#define SUGGEST_MAX 64
static int edit_distance(const char *a, size_t la, const char *b)
{
    size_t lb = strlen(b);
    if (la > SUGGEST_MAX || lb > SUGGEST_MAX)
        return INT_MAX;
    int d[SUGGEST_MAX + 1][SUGGEST_MAX + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            char ca = a[i - 1] == '_' ? '-' : a[i - 1];
            int cost = ca != b[j - 1];
            int best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (d[i - 1][j - 1] + cost < best)
                best = d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && ca == b[j - 2] &&
                (a[i - 2] == '_' ? '-' : a[i - 2]) == b[j - 1] &&
                d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

static const char *suggest(const gust_options *opts, const char *name,
                           size_t len)
{
    const char *best = NULL;
    int best_d = len >= 4 ? 2 : 1;
    for (size_t i = 0; i < opts->n; i++) {
        int d = edit_distance(name, len, opts->opts[i].name);
        if (d <= best_d && (!best || d < best_d)) {
            best = opts->opts[i].name;
            best_d = d;
        }
    }
    return best;
}

/* ---- values --------------------------------------------------------- */

static void value_free(enum gust_option_type type, union optval *v)
{
    switch (type) {
    case GUST_OPTION_STRING:
        free(v->s);
        break;
    case GUST_OPTION_INT_LIST:
        free(v->il.items);
        break;
    case GUST_OPTION_STRING_LIST:
        for (size_t i = 0; i < v->sl.n; i++)
            free(v->sl.items[i]);
        free(v->sl.items);
        break;
    default:
        break;
    }
    memset(v, 0, sizeof *v);
}

/* Copies the option's value to the program's variable. */
static void publish(struct option *o)
{
    if (!o->var)
        return;
    switch (o->type) {
    case GUST_OPTION_INT:
        *(int *)o->var = o->val.i;
        break;
    case GUST_OPTION_DOUBLE:
    case GUST_OPTION_DURATION:
        *(double *)o->var = o->val.d;
        break;
    case GUST_OPTION_BOOL:
        *(bool *)o->var = o->val.b;
        break;
    case GUST_OPTION_STRING:
        *(const char **)o->var = o->val.s;
        break;
    case GUST_OPTION_INT_LIST: {
        gust_int_list *l = o->var;
        l->items = o->val.il.items;
        l->count = o->val.il.n;
        break;
    }
    case GUST_OPTION_STRING_LIST: {
        gust_string_list *l = o->var;
        l->items = (const char *const *)o->val.sl.items;
        l->count = o->val.sl.n;
        break;
    }
    }
}

/* Parsers write why a value is wrong into why (without the option name). */
static int parse_int(const char *s, size_t len, int *out, char *why,
                     size_t wlen)
{
    char buf[32];
    size_t i = 0;
    /* The digits are checked before strtol(), which would take leading
     * whitespace, "0x" and trailing junk: " 12" and "12abc" are errors, not
     * 12. It is given a copy because s is a slice, not a C string. */
    if (len > 0 && (s[0] == '+' || s[0] == '-'))
        i = 1;
    if (i == len)
        goto bad;
    for (size_t k = i; k < len; k++)
        if (!isdigit((unsigned char)s[k]))
            goto bad;
    if (len >= sizeof buf)
        goto range;
    memcpy(buf, s, len);
    buf[len] = '\0';
    errno = 0;
    long v = strtol(buf, NULL, 10);
    if (errno == ERANGE || v < INT_MIN || v > INT_MAX)
        goto range;
    *out = (int)v;
    return 0;
bad:
    snprintf(why, wlen, "'%.*s' is not an integer", (int)(len > 60 ? 60 : len),
             s);
    return -EINVAL;
range:
    snprintf(why, wlen, "'%.*s' is out of range for an integer",
             (int)(len > 60 ? 60 : len), s);
    return -EINVAL;
}

static int parse_double(const char *s, double *out, char *why, size_t wlen)
{
    char *end;
    /* strtod() skips leading whitespace and reads "nan" and "inf": neither
     * is a value anyone means to give an option. */
    if (!*s || isspace((unsigned char)*s))
        goto bad;
    errno = 0;
    double v = strtod(s, &end);
    if (*end || !isfinite(v))
        goto bad;
    *out = v;
    return 0;
bad:
    snprintf(why, wlen, "'%.60s' is not a number", s);
    return -EINVAL;
}

static int parse_bool(const char *s, bool *out, char *why, size_t wlen)
{
    /* Anything else is refused, where Tornado takes every value but
     * "false", "0" and "f" as true: a misspelt "flase" must not turn the
     * option on. */
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    snprintf(why, wlen,
             "'%.60s' is not a boolean (true/false, yes/no, on/off, 1/0)", s);
    return -EINVAL;
}

static double unit_seconds(const char *u, size_t len)
{
    static const struct {
        const char *name;
        double secs;
    } units[] = {
        {"", 1},           {"s", 1},         {"sec", 1},
        {"secs", 1},       {"second", 1},    {"seconds", 1},
        {"ms", 1e-3},      {"millisecond", 1e-3}, {"milliseconds", 1e-3},
        {"us", 1e-6},      {"microsecond", 1e-6}, {"microseconds", 1e-6},
        {"m", 60},         {"min", 60},      {"mins", 60},
        {"minute", 60},    {"minutes", 60},  {"h", 3600},
        {"hour", 3600},    {"hours", 3600},  {"d", 86400},
        {"day", 86400},    {"days", 86400},  {"w", 604800},
        {"week", 604800},  {"weeks", 604800},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strlen(units[i].name) == len && memcmp(units[i].name, u, len) == 0)
            return units[i].secs;
    return -1;
}

int gust_parse_duration(const char *text, double *seconds)
{
    if (!text || !seconds)
        return -EINVAL;
    const char *p = text;
    double total = 0;
    bool any = false;
    for (;;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        /* The number, scanned by hand first so strtod cannot take "inf",
         * hex or a leading space. */
        const char *start = p;
        if (*p == '+' || *p == '-')
            p++;
        size_t digits = 0;
        while (isdigit((unsigned char)*p))
            p++, digits++;
        if (*p == '.') {
            p++;
            while (isdigit((unsigned char)*p))
                p++, digits++;
        }
        if (digits == 0)
            return -EINVAL;
        if (*p == 'e' || *p == 'E') {
            const char *q = p + 1;
            if (*q == '+' || *q == '-')
                q++;
            if (isdigit((unsigned char)*q)) {
                while (isdigit((unsigned char)*q))
                    q++;
                p = q;
            }
        }
        char num[64];
        size_t nlen = (size_t)(p - start);
        if (nlen >= sizeof num)
            return -EINVAL;
        memcpy(num, start, nlen);
        num[nlen] = '\0';
        double v = strtod(num, NULL);
        while (isspace((unsigned char)*p))
            p++;
        const char *u = p;
        while (isalpha((unsigned char)*p))
            p++;
        double mult = unit_seconds(u, (size_t)(p - u));
        if (mult < 0)
            return -EINVAL;
        total += v * mult;
        any = true;
    }
    if (!any || !isfinite(total))
        return -EINVAL;
    *seconds = total;
    return 0;
}

static void trim(const char **s, size_t *len)
{
    while (*len && isspace((unsigned char)**s))
        (*s)++, (*len)--;
    while (*len && isspace((unsigned char)(*s)[*len - 1]))
        (*len)--;
}

static int parse_int_list(const char *s, union optval *out, char *why,
                          size_t wlen)
{
    int *items = NULL;
    size_t n = 0, cap = 0;
    const char *p = s;
    if (!*s)
        goto done;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *part = p;
        trim(&part, &len);
        const char *colon = memchr(part, ':', len);
        int lo, hi;
        if (colon) {
            if (parse_int(part, (size_t)(colon - part), &lo, why, wlen) < 0 ||
                parse_int(colon + 1, len - (size_t)(colon + 1 - part), &hi, why,
                          wlen) < 0)
                goto fail;
            if (hi < lo) {
                snprintf(why, wlen, "range '%.*s' ends before it starts",
                         (int)(len > 60 ? 60 : len), part);
                goto fail;
            }
        } else {
            if (parse_int(part, len, &lo, why, wlen) < 0)
                goto fail;
            hi = lo;
        }
        if ((long long)hi - lo + 1 > (long long)(MAX_LIST_ITEMS - n)) {
            snprintf(why, wlen, "more than %d values", MAX_LIST_ITEMS);
            goto fail;
        }
        size_t need = n + (size_t)((long long)hi - lo + 1);
        if (need > cap) {
            size_t ncap = cap ? cap * 2 : 8;
            while (ncap < need)
                ncap *= 2;
            int *tmp = realloc(items, ncap * sizeof *items);
            if (!tmp) {
                free(items);
                return -ENOMEM;
            }
            items = tmp;
            cap = ncap;
        }
        for (long long v = lo; v <= hi; v++)
            items[n++] = (int)v;
        if (!comma)
            break;
        p = comma + 1;
    }
done:
    out->il.items = items;
    out->il.n = n;
    return 0;
fail:
    free(items);
    return -EINVAL;
}

static int parse_string_list(const char *s, union optval *out)
{
    size_t n = 0;
    if (*s) {
        n = 1;
        for (const char *p = s; *p; p++)
            n += *p == ',';
    }
    char **items = n ? calloc(n, sizeof *items) : NULL;
    if (n && !items)
        return -ENOMEM;
    const char *p = s;
    for (size_t i = 0; i < n; i++) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *part = p;
        trim(&part, &len);
        items[i] = strndup(part, len);
        if (!items[i]) {
            union optval v = {.sl = {items, n}};
            value_free(GUST_OPTION_STRING_LIST, &v);
            return -ENOMEM;
        }
        p = comma ? comma + 1 : p + len;
    }
    out->sl.items = items;
    out->sl.n = n;
    return 0;
}

/* Parses text into a fresh value for o's type. */
static int parse_value(const struct option *o, const char *text,
                       union optval *v, char *why, size_t wlen)
{
    int rc;
    memset(v, 0, sizeof *v);
    switch (o->type) {
    case GUST_OPTION_INT:
        rc = parse_int(text, strlen(text), &v->i, why, wlen);
        break;
    case GUST_OPTION_DOUBLE:
        rc = parse_double(text, &v->d, why, wlen);
        break;
    case GUST_OPTION_BOOL:
        rc = parse_bool(text, &v->b, why, wlen);
        break;
    case GUST_OPTION_STRING:
        v->s = strdup(text);
        rc = v->s ? 0 : -ENOMEM;
        break;
    case GUST_OPTION_DURATION:
        rc = gust_parse_duration(text, &v->d);
        if (rc < 0)
            snprintf(why, wlen,
                     "'%.60s' is not a duration (e.g. 500ms, 2s, 1.5min, "
                     "1h, 1d)",
                     text);
        break;
    case GUST_OPTION_INT_LIST:
        rc = parse_int_list(text, v, why, wlen);
        break;
    case GUST_OPTION_STRING_LIST:
        rc = parse_string_list(text, v);
        break;
    default:
        rc = -EINVAL;
    }
    if (rc == -ENOMEM)
        snprintf(why, wlen, "out of memory");
    if (rc == 0 && o->check && (rc = o->check(v, why, wlen)) < 0)
        value_free(o->type, v);
    return rc;
}

/* Sets o from text; on failure o is unchanged and why says what was wrong. */
static int set_value(struct option *o, const char *text, char *why,
                     size_t wlen)
{
    union optval v;
    int rc = parse_value(o, text, &v, why, wlen);
    if (rc < 0)
        return rc;
    value_free(o->type, &o->val);
    o->val = v;
    publish(o);
    return 0;
}

/* ---- registry and definitions -------------------------------------- */

gust_options *gust_options_new(void)
{
    gust_options *opts = calloc(1, sizeof *opts);
    return opts;
}

static void free_rest(gust_options *opts)
{
    if (opts->rest)
        for (int i = 0; i < opts->nrest; i++)
            free(opts->rest[i]);
    free(opts->rest);
    opts->rest = NULL;
    opts->nrest = 0;
}

static void close_log_file(gust_options *opts);

void gust_options_free(gust_options *opts)
{
    if (!opts)
        return;
    close_log_file(opts);
    for (size_t i = 0; i < opts->n; i++) {
        struct option *o = &opts->opts[i];
        value_free(o->type, &o->val);
        free(o->name);
        free(o->help);
        free(o->group);
        free(o->def_text);
    }
    free(opts->opts);
    free(opts->cbs);
    free_rest(opts);
    free(opts->prog);
    if (opts == default_registry)
        default_registry = NULL;
    free(opts);
}

/* Made on first use, so that a program that never reads options pays
 * nothing; it has the logging options, as Tornado's global options do
 * (tornado/options.py ends with define_logging_options(options)). */
gust_options *gust_options_default(void)
{
    if (!default_registry) {
        default_registry = gust_options_new();
        if (default_registry &&
            gust_options_define_logging(default_registry) < 0) {
            gust_options_free(default_registry);
            default_registry = NULL;
        }
    }
    return default_registry;
}

/* Adds an option with its default already parsed into *def (taken over,
 * also on failure). */
static int define(gust_options *opts, const char *name,
                  enum gust_option_type type, void *var, union optval *def,
                  const char *def_text, const char *help, const char *group)
{
    int rc = -ENOMEM;
    if (!opts) {
        value_free(type, def);
        return -ENOMEM;
    }
    if (!valid_name(name)) {
        set_error(opts, "invalid option name '%.60s'", name ? name : "(null)");
        gust_log_error("options", "%s", opts->err);
        value_free(type, def);
        return -EINVAL;
    }
    if (find(opts, name)) {
        set_error(opts, "option --%.60s is defined twice", name);
        gust_log_error("options", "%s", opts->err);
        value_free(type, def);
        return -EEXIST;
    }
    if (opts->n == opts->cap) {
        size_t ncap = opts->cap ? opts->cap * 2 : 16;
        struct option *tmp = realloc(opts->opts, ncap * sizeof *tmp);
        if (!tmp)
            goto fail;
        opts->opts = tmp;
        opts->cap = ncap;
    }
    struct option o = {.type = type, .var = var};
    o.name = normalize_name(name, strlen(name));
    o.help = help ? strdup(help) : NULL;
    o.group = group ? strdup(group) : NULL;
    o.def_text = def_text ? strdup(def_text) : NULL;
    if (!o.name || (help && !o.help) || (group && !o.group) ||
        (def_text && !o.def_text)) {
        free(o.name);
        free(o.help);
        free(o.group);
        free(o.def_text);
        goto fail;
    }
    o.val = *def;
    opts->opts[opts->n++] = o;
    publish(&opts->opts[opts->n - 1]);
    return 0;
fail:
    set_error(opts, "out of memory");
    value_free(type, def);
    return rc;
}

int gust_options_define_int(gust_options *opts, const char *name, int *var,
                            int def, const char *help, const char *group)
{
    char text[32];
    snprintf(text, sizeof text, "%d", def);
    union optval v = {.i = def};
    return define(resolve(opts), name, GUST_OPTION_INT, var, &v, text, help,
                  group);
}

int gust_options_define_double(gust_options *opts, const char *name,
                               double *var, double def, const char *help,
                               const char *group)
{
    char text[64];
    snprintf(text, sizeof text, "%g", def);
    union optval v = {.d = def};
    return define(resolve(opts), name, GUST_OPTION_DOUBLE, var, &v, text,
                  help, group);
}

int gust_options_define_bool(gust_options *opts, const char *name, bool *var,
                             bool def, const char *help, const char *group)
{
    union optval v = {.b = def};
    return define(resolve(opts), name, GUST_OPTION_BOOL, var, &v,
                  def ? "true" : "false", help, group);
}

int gust_options_define_string(gust_options *opts, const char *name,
                               const char **var, const char *def,
                               const char *help, const char *group)
{
    union optval v = {.s = NULL};
    if (def && !(v.s = strdup(def)))
        return -ENOMEM;
    return define(resolve(opts), name, GUST_OPTION_STRING, var, &v,
                  def && *def ? def : NULL, help, group);
}

/* Whether a is a whole multiple of unit (without libm: Gust links none). */
static bool multiple_of(double a, double unit)
{
    double q = a / unit;
    return q < 1e15 && q == (double)(long long)q;
}

/* Seconds as the shortest unit that reads well: 0.5 -> "500ms". */
static void format_duration(double secs, char *buf, size_t len)
{
    double a = secs < 0 ? -secs : secs;
    if (a == 0)
        snprintf(buf, len, "0s");
    else if (a < 1e-3)
        snprintf(buf, len, "%gus", secs * 1e6);
    else if (a < 1)
        snprintf(buf, len, "%gms", secs * 1e3);
    else if (a >= 86400 && multiple_of(a, 86400))
        snprintf(buf, len, "%gd", secs / 86400);
    else if (a >= 3600 && multiple_of(a, 3600))
        snprintf(buf, len, "%gh", secs / 3600);
    else if (a >= 60 && multiple_of(a, 60))
        snprintf(buf, len, "%gmin", secs / 60);
    else
        snprintf(buf, len, "%gs", secs);
}

int gust_options_define_duration(gust_options *opts, const char *name,
                                 double *var, double def, const char *help,
                                 const char *group)
{
    char text[64];
    format_duration(def, text, sizeof text);
    union optval v = {.d = def};
    return define(resolve(opts), name, GUST_OPTION_DURATION, var, &v, text,
                  help, group);
}

static int define_list(gust_options *opts, const char *name,
                       enum gust_option_type type, void *var, const char *def,
                       const char *help, const char *group)
{
    opts = resolve(opts);
    if (!opts)
        return -ENOMEM;
    union optval v;
    char why[256];
    struct option tmp = {.type = type};
    int rc = parse_value(&tmp, def ? def : "", &v, why, sizeof why);
    if (rc < 0) {
        set_error(opts, "bad default for --%.60s: %s", name ? name : "", why);
        gust_log_error("options", "%s", opts->err);
        return rc;
    }
    return define(opts, name, type, var, &v, def && *def ? def : NULL, help,
                  group);
}

int gust_options_define_int_list(gust_options *opts, const char *name,
                                 gust_int_list *var, const char *def,
                                 const char *help, const char *group)
{
    return define_list(opts, name, GUST_OPTION_INT_LIST, var, def, help, group);
}

int gust_options_define_string_list(gust_options *opts, const char *name,
                                    gust_string_list *var, const char *def,
                                    const char *help, const char *group)
{
    return define_list(opts, name, GUST_OPTION_STRING_LIST, var, def, help,
                       group);
}

int gust_options_add_parse_callback(gust_options *opts,
                                    gust_options_parse_cb cb, void *data)
{
    opts = resolve(opts);
    if (!opts || !cb)
        return opts ? -EINVAL : -ENOMEM;
    struct parse_cb *tmp = realloc(opts->cbs, (opts->ncbs + 1) * sizeof *tmp);
    if (!tmp)
        return -ENOMEM;
    opts->cbs = tmp;
    opts->cbs[opts->ncbs++] = (struct parse_cb){cb, data};
    return 0;
}

const char *gust_options_last_error(const gust_options *opts)
{
    opts = resolve(opts);
    return opts ? opts->err : "out of memory";
}

const char *const *gust_options_args(const gust_options *opts, int *count)
{
    static const char *const none[] = {NULL};
    opts = resolve(opts);
    if (count)
        *count = opts ? opts->nrest : 0;
    if (!opts || !opts->rest)
        return none;
    return (const char *const *)opts->rest;
}

void gust_options_set_help_output(gust_options *opts, FILE *out)
{
    opts = resolve(opts);
    if (opts)
        opts->help_out = out;
}

int gust_options_type(const gust_options *opts, const char *name)
{
    opts = resolve(opts);
    const struct option *o = opts ? find(opts, name) : NULL;
    return o ? (int)o->type : -ENOENT;
}

int gust_options_set(gust_options *opts, const char *name, const char *value)
{
    opts = resolve(opts);
    if (!opts)
        return -ENOMEM;
    struct option *o = find(opts, name);
    if (!o) {
        set_error(opts, "unknown option --%.60s", name ? name : "(null)");
        return -ENOENT;
    }
    char why[256];
    int rc = set_value(o, value ? value : "", why, sizeof why);
    if (rc < 0)
        set_error(opts, "bad value for --%s: %s", o->name, why);
    return rc;
}

/* ---- getters -------------------------------------------------------- */

static const struct option *get(const gust_options *opts, const char *name,
                                enum gust_option_type type, const char *fn)
{
    opts = resolve(opts);
    const struct option *o = opts ? find(opts, name) : NULL;
    if (!o) {
        gust_log_error("options", "%s: no option named '%.60s'", fn,
                       name ? name : "(null)");
        return NULL;
    }
    if (o->type != type) {
        gust_log_error("options", "%s: option --%s has another type", fn,
                       o->name);
        return NULL;
    }
    return o;
}

int gust_options_get_int(const gust_options *opts, const char *name)
{
    const struct option *o = get(opts, name, GUST_OPTION_INT, __func__);
    return o ? o->val.i : 0;
}

double gust_options_get_double(const gust_options *opts, const char *name)
{
    const struct option *o = get(opts, name, GUST_OPTION_DOUBLE, __func__);
    return o ? o->val.d : 0.0;
}

bool gust_options_get_bool(const gust_options *opts, const char *name)
{
    const struct option *o = get(opts, name, GUST_OPTION_BOOL, __func__);
    return o ? o->val.b : false;
}

const char *gust_options_get_string(const gust_options *opts,
                                    const char *name)
{
    const struct option *o = get(opts, name, GUST_OPTION_STRING, __func__);
    return o ? o->val.s : NULL;
}

double gust_options_get_duration(const gust_options *opts, const char *name)
{
    const struct option *o = get(opts, name, GUST_OPTION_DURATION, __func__);
    return o ? o->val.d : 0.0;
}

gust_int_list gust_options_get_int_list(const gust_options *opts,
                                        const char *name)
{
    const struct option *o = get(opts, name, GUST_OPTION_INT_LIST, __func__);
    gust_int_list l = {NULL, 0};
    if (o) {
        l.items = o->val.il.items;
        l.count = o->val.il.n;
    }
    return l;
}

gust_string_list gust_options_get_string_list(const gust_options *opts,
                                              const char *name)
{
    const struct option *o =
        get(opts, name, GUST_OPTION_STRING_LIST, __func__);
    gust_string_list l = {NULL, 0};
    if (o) {
        l.items = (const char *const *)o->val.sl.items;
        l.count = o->val.sl.n;
    }
    return l;
}

/* argv[0] of the last command line, else the name the process was run as. */
static const char *program_name(const gust_options *opts)
{
    if (opts->prog)
        return opts->prog;
#ifdef __GLIBC__
    if (program_invocation_short_name && *program_invocation_short_name)
        return program_invocation_short_name;
#endif
    return "gust";
}

/* ---- help ----------------------------------------------------------- */

static const char *metavar(enum gust_option_type type)
{
    switch (type) {
    case GUST_OPTION_INT:
        return "=INT";
    case GUST_OPTION_DOUBLE:
        return "=FLOAT";
    case GUST_OPTION_BOOL:
        return "";
    case GUST_OPTION_STRING:
        return "=STRING";
    case GUST_OPTION_DURATION:
        return "=DURATION";
    case GUST_OPTION_INT_LIST:
        return "=INT[,INT...]";
    case GUST_OPTION_STRING_LIST:
        return "=STRING[,STRING...]";
    }
    return "";
}

/* Writes text wrapped to fit after the name column. */
static void print_wrapped(FILE *out, const char *text, int indent)
{
    int width = HELP_WIDTH - indent;
    const char *p = text;
    bool first = true;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        size_t len = strlen(p);
        size_t take = len;
        const char *nl = strchr(p, '\n');
        if (nl && (size_t)(nl - p) < take)
            take = (size_t)(nl - p);
        if (take > (size_t)width) {
            size_t cut = (size_t)width;
            while (cut > 0 && p[cut] != ' ')
                cut--;
            take = cut ? cut : (size_t)width;
        }
        if (!first)
            fprintf(out, "%*s", indent, "");
        fprintf(out, "%.*s\n", (int)take, p);
        first = false;
        p += take;
        if (*p == '\n')
            p++;
    }
    if (first)
        fputc('\n', out);
}

static void print_option(FILE *out, const struct option *o)
{
    char left[256];
    snprintf(left, sizeof left, "--%s%s", o->name,
             o->metavar ? o->metavar : metavar(o->type));
    char desc[1024];
    snprintf(desc, sizeof desc, "%s%s%s%s", o->help ? o->help : "",
             o->def_text && o->help ? " " : "",
             o->def_text ? "(default " : "", o->def_text ? o->def_text : "");
    if (o->def_text)
        strncat(desc, ")", sizeof desc - strlen(desc) - 1);
    int indent = 2 + 2 + HELP_NAME_WIDTH + 1;
    if (strlen(left) > HELP_NAME_WIDTH + 2) {
        fprintf(out, "  %s\n%*s", left, indent, "");
    } else {
        fprintf(out, "  %-*s ", HELP_NAME_WIDTH + 2, left);
    }
    print_wrapped(out, desc, indent);
}

static int group_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

void gust_options_print_help(const gust_options *opts, FILE *out)
{
    opts = resolve(opts);
    if (!opts || !out)
        return;
    const char *prog = program_name(opts);
    fprintf(out, "Usage: %s [OPTIONS]\n\nOptions:\n\n", prog);
    if (!find(opts, "help")) {
        fprintf(out, "  %-*s %s\n", HELP_NAME_WIDTH + 2, "--help",
                "show this help information");
    }

    /* The program's own group first, then the named groups sorted. */
    bool own = false;
    for (size_t i = 0; i < opts->n; i++)
        own |= opts->opts[i].group == NULL;
    if (own) {
        fprintf(out, "\n%s options:\n\n", prog);
        for (size_t i = 0; i < opts->n; i++)
            if (!opts->opts[i].group)
                print_option(out, &opts->opts[i]);
    }
    const char **groups = opts->n ? malloc(opts->n * sizeof *groups) : NULL;
    size_t ng = 0;
    for (size_t i = 0; groups && i < opts->n; i++) {
        const char *g = opts->opts[i].group;
        if (!g)
            continue;
        bool seen = false;
        for (size_t k = 0; k < ng && !seen; k++)
            seen = strcmp(groups[k], g) == 0;
        if (!seen)
            groups[ng++] = g;
    }
    if (ng)
        qsort(groups, ng, sizeof *groups, group_cmp);
    for (size_t k = 0; k < ng; k++) {
        fprintf(out, "\n%s options:\n\n", groups[k]);
        for (size_t i = 0; i < opts->n; i++)
            if (opts->opts[i].group && strcmp(opts->opts[i].group, groups[k]) == 0)
                print_option(out, &opts->opts[i]);
    }
    free(groups);
}

/* ---- logging options ----------------------------------------------- */

static int check_level(const union optval *v, char *why, size_t wlen)
{
    if (gust_log_level_from_name(v->s) >= 0)
        return 0;
    snprintf(why, wlen,
             "'%.60s' is not one of debug, info, warning, error, none", v->s);
    return -EINVAL;
}

static const char *level_name(int level)
{
    if (level >= GUST_LOG_NONE)
        return "none";
    if (level >= GUST_LOG_ERROR)
        return "error";
    if (level >= GUST_LOG_WARNING)
        return "warning";
    if (level >= GUST_LOG_INFO)
        return "info";
    return "debug";
}

static void close_log_file(gust_options *opts)
{
    if (!opts->log_file_open)
        return;
    gust_log_close_file();
    opts->log_file_open = false;
}

static int apply_logging(gust_options *opts)
{
    int level = gust_log_level_from_name(opts->log_level);
    if (level >= 0)
        gust_log_set_level(level);
    const char *path = opts->log_file_prefix;
    if (!path || !*path) {
        close_log_file(opts);
        return 0;
    }
    int rc = gust_log_to_file(path, opts->log_max_size, opts->log_backups,
                              opts->log_to_stderr);
    if (rc < 0) {
        set_error(opts, "cannot open log file %.200s: %s", path, strerror(-rc));
        return rc;
    }
    opts->log_file_open = true;
    return 0;
}

int gust_options_define_logging(gust_options *opts)
{
    opts = resolve(opts);
    if (!opts)
        return -ENOMEM;
    if (opts->logging_defined)
        return -EEXIST;
    int rc = gust_options_define_string(
        opts, "logging", &opts->log_level, level_name(gust_log_level()),
        "set the log level: debug, info, warning, error or none", "log");
    if (rc < 0)
        return rc;
    opts->opts[opts->n - 1].check = check_level;
    opts->opts[opts->n - 1].metavar = "=LEVEL";
    if ((rc = gust_options_define_string(
             opts, "log-file-prefix", &opts->log_file_prefix, NULL,
             "write the log to this file instead of stderr", "log")) < 0)
        return rc;
    opts->opts[opts->n - 1].metavar = "=PATH";
    if ((rc = gust_options_define_bool(
             opts, "log-to-stderr", &opts->log_to_stderr, false,
             "also log to stderr when --log-file-prefix is set", "log")) < 0 ||
        (rc = gust_options_define_int(
             opts, "log-file-max-size", &opts->log_max_size, 100000000,
             "rotate the log file when it grows past this many bytes "
             "(0: never)",
             "log")) < 0 ||
        (rc = gust_options_define_int(opts, "log-file-num-backups",
                                      &opts->log_backups, 10,
                                      "number of rotated log files to keep",
                                      "log")) < 0)
        return rc;
    opts->logging_defined = true;
    return 0;
}

/* ---- parsing ------------------------------------------------------- */

/* Logging is applied and the parse callbacks run on the final parse only
 * (not with GUST_OPTIONS_NOT_FINAL), so that a config file followed by the
 * command line opens the log file once, with the last values. */
static int finish(gust_options *opts, unsigned flags)
{
    if (flags & GUST_OPTIONS_NOT_FINAL)
        return 0;
    if (opts->logging_defined) {
        int rc = apply_logging(opts);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < opts->ncbs; i++)
        opts->cbs[i].cb(opts, opts->cbs[i].data);
    return 0;
}

static const char *basename_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static int exit_on_error(gust_options *opts, int rc, unsigned flags)
{
    if (!(flags & GUST_OPTIONS_EXIT))
        return rc;
    if (rc == GUST_OPTIONS_HELP)
        exit(0);
    if (rc < 0) {
        const char *prog = program_name(opts);
        fprintf(stderr, "%s: %s\n", prog, opts->err);
        fprintf(stderr, "Run '%s --help' to list the options.\n", prog);
        exit(2);
    }
    return rc;
}

static int unknown(gust_options *opts, const char *prefix, const char *name,
                   size_t len)
{
    const char *s = suggest(opts, name, len);
    int shown = (int)(len > 60 ? 60 : len);
    if (s)
        set_error(opts, "unknown option %s%.*s (did you mean %s%s?)", prefix,
                  shown, name, prefix, s);
    else
        set_error(opts, "unknown option %s%.*s", prefix, shown, name);
    return -ENOENT;
}

static int parse_args(gust_options *opts, int argc, char **argv,
                      unsigned flags)
{
    free_rest(opts);
    if (argc > 0 && argv[0]) {
        char *prog = strdup(basename_of(argv[0]));
        if (prog) {
            free(opts->prog);
            opts->prog = prog;
        }
    }
    char why[256];
    int i = 1;
    while (i < argc) {
        const char *a = argv[i];
        /* Options end at the first argument that is not one, as in
         * Tornado, and the rest are gust_options_args(); "-" alone counts
         * as not one (by convention it names stdin). */
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        const char *body = a + (a[1] == '-' ? 2 : 1);
        const char *eq = strchr(body, '=');
        size_t nlen = eq ? (size_t)(eq - body) : strlen(body);
        struct option *o = find_n(opts, body, nlen);
        if (!o && nlen == 4 && memcmp(body, "help", 4) == 0) {
            gust_options_print_help(opts,
                                    opts->help_out ? opts->help_out : stdout);
            return GUST_OPTIONS_HELP;
        }
        if (!o)
            return unknown(opts, "--", body, nlen);
        /* A bare boolean flag means true, as in Tornado; other types also
         * take the next argument (--port 8888), as getopt-style programs
         * do, where Tornado insists on '='. */
        const char *value;
        if (eq)
            value = eq + 1;
        else if (o->type == GUST_OPTION_BOOL)
            value = "true";
        else if (i + 1 < argc)
            value = argv[++i];
        else {
            set_error(opts, "option --%s needs a value", o->name);
            return -EINVAL;
        }
        int rc = set_value(o, value, why, sizeof why);
        if (rc < 0) {
            set_error(opts, "bad value for --%s: %s", o->name, why);
            return rc;
        }
        i++;
    }

    int n = argc > i ? argc - i : 0;
    opts->rest = calloc((size_t)n + 1, sizeof *opts->rest);
    if (!opts->rest) {
        set_error(opts, "out of memory");
        return -ENOMEM;
    }
    for (int k = 0; k < n; k++) {
        if (!(opts->rest[k] = strdup(argv[i + k]))) {
            opts->nrest = k;
            set_error(opts, "out of memory");
            return -ENOMEM;
        }
    }
    opts->nrest = n;
    return finish(opts, flags);
}

int gust_options_parse_args(gust_options *opts, int argc, char **argv,
                            unsigned flags)
{
    opts = resolve(opts);
    if (!opts)
        return -ENOMEM;
    opts->err[0] = '\0';
    return exit_on_error(opts, parse_args(opts, argc, argv, flags), flags);
}

int gust_options_parse_command_line(gust_options *opts, int argc, char **argv)
{
    return gust_options_parse_args(opts, argc, argv, GUST_OPTIONS_EXIT);
}

/* Reads a quoted value starting at *p (the quote) up to end; writes the
 * unescaped text to out (at least end - *p bytes). */
static int read_quoted(const char **pp, const char *end, char *out,
                       const char **why)
{
    const char *p = *pp;
    char q = *p++;
    size_t n = 0;
    while (p < end && *p != q) {
        char c = *p++;
        if (c == '\\') {
            if (p == end)
                break;
            c = *p++;
            switch (c) {
            case '\\': case '"': case '\'':
                break;
            case 'n':
                c = '\n';
                break;
            case 't':
                c = '\t';
                break;
            case 'r':
                c = '\r';
                break;
            default:
                *why = "unknown escape in quoted value";
                return -EINVAL;
            }
        }
        out[n++] = c;
    }
    if (p == end) {
        *why = "unterminated quoted value";
        return -EINVAL;
    }
    out[n] = '\0';
    *pp = p + 1;
    return 0;
}

/* One "name = value" line, without its newline. */
static int parse_line(gust_options *opts, const char *line, size_t len,
                      const char *src, int lineno, unsigned flags, char *buf)
{
    const char *p = line, *end = line + len;
    const char *why = NULL;
    while (p < end && isspace((unsigned char)*p))
        p++;
    if (p == end || *p == '#')
        return 0;
    if (memchr(line, '\0', len)) {
        why = "NUL byte in line";
        goto bad;
    }
    const char *name = p;
    while (p < end && *p != '=' && !isspace((unsigned char)*p))
        p++;
    size_t nlen = (size_t)(p - name);
    while (p < end && isspace((unsigned char)*p))
        p++;
    if (p == end || *p != '=' || nlen == 0) {
        why = "expected 'name = value'";
        goto bad;
    }
    p++;
    while (p < end && isspace((unsigned char)*p))
        p++;
    if (p < end && (*p == '"' || *p == '\'')) {
        if (read_quoted(&p, end, buf, &why) < 0)
            goto bad;
        while (p < end && isspace((unsigned char)*p))
            p++;
        if (p < end && *p != '#') {
            why = "unexpected text after the quoted value";
            goto bad;
        }
    } else {
        /* An unquoted value ends at a '#' that follows whitespace. */
        const char *v = p, *stop = end;
        for (const char *c = v; c < end; c++)
            if (*c == '#' && c > v && isspace((unsigned char)c[-1])) {
                stop = c;
                break;
            }
        while (stop > v && isspace((unsigned char)stop[-1]))
            stop--;
        memcpy(buf, v, (size_t)(stop - v));
        buf[stop - v] = '\0';
    }

    struct option *o = find_n(opts, name, nlen);
    if (!o) {
        if (flags & GUST_OPTIONS_IGNORE_UNKNOWN)
            return 0;
        unknown(opts, "", name, nlen);
        char msg[sizeof opts->err];
        snprintf(msg, sizeof msg, "%s", opts->err);
        set_error(opts, "%.200s:%d: %s", src, lineno, msg);
        return -ENOENT;
    }
    char vwhy[256];
    int rc = set_value(o, buf, vwhy, sizeof vwhy);
    if (rc < 0) {
        set_error(opts, "%.200s:%d: bad value for %s: %s", src, lineno,
                  o->name, vwhy);
        return rc;
    }
    return 0;
bad:
    set_error(opts, "%.200s:%d: %s", src, lineno, why);
    return -EINVAL;
}

static int parse_text(gust_options *opts, const char *text, size_t len,
                      const char *src, unsigned flags)
{
    /* One scratch buffer as long as the longest possible value. */
    char *buf = malloc(len + 1);
    if (!buf) {
        set_error(opts, "out of memory");
        return -ENOMEM;
    }
    const char *p = text, *end = text + len;
    int lineno = 0, rc = 0;
    while (p < end && rc == 0) {
        lineno++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *stop = eol;
        if (stop > p && stop[-1] == '\r')
            stop--;
        rc = parse_line(opts, p, (size_t)(stop - p), src, lineno, flags, buf);
        p = nl ? nl + 1 : end;
    }
    free(buf);
    return rc < 0 ? rc : finish(opts, flags);
}

int gust_options_parse_string(gust_options *opts, const char *text,
                              size_t len, const char *source, unsigned flags)
{
    opts = resolve(opts);
    if (!opts)
        return -ENOMEM;
    opts->err[0] = '\0';
    int rc = parse_text(opts, text ? text : "", text ? len : 0,
                        source ? source : "<string>", flags);
    return exit_on_error(opts, rc, flags);
}

static int read_file(const char *path, char **out, size_t *outlen)
{
    /* 'e': close-on-exec, so that the file is not inherited by the image a
     * zero-downtime reload execs. */
    FILE *fp = fopen(path, "rbe");
    if (!fp)
        return -errno;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    int rc = 0;
    while (buf) {
        if (n == cap) {
            char *tmp = realloc(buf, cap * 2);
            if (!tmp) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = tmp;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n, fp);
        n += r;
        if (r == 0) {
            if (ferror(fp))
                rc = -EIO;
            break;
        }
    }
    fclose(fp);
    if (!buf)
        return -ENOMEM;
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *outlen = n;
    return 0;
}

int gust_options_parse_file(gust_options *opts, const char *path,
                            unsigned flags)
{
    opts = resolve(opts);
    if (!opts)
        return -ENOMEM;
    opts->err[0] = '\0';
    char *text = NULL;
    size_t len = 0;
    int rc = path ? read_file(path, &text, &len) : -EINVAL;
    if (rc < 0) {
        set_error(opts, "cannot read config file %.200s: %s",
                  path ? path : "(null)", strerror(-rc));
    } else {
        rc = parse_text(opts, text, len, path, flags);
        free(text);
    }
    return exit_on_error(opts, rc, flags);
}

int gust_options_parse_config_file(gust_options *opts, const char *path)
{
    return gust_options_parse_file(opts, path, GUST_OPTIONS_EXIT);
}
