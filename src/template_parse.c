/* Template compiler: splits the source into text, {{ }}, {% %} and {# #},
 * and builds the node tree (with pre-parsed expressions) that
 * template_render.c walks. The reader follows Tornado's: the innermost of
 * several opening braces starts a tag, and "{{!" "{%!" "{#!" are literal. */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template_internal.h"

enum { WS_ALL, WS_SINGLE, WS_ONELINE };

struct parser {
    gust_template *t;
    const char *file;
    const char *p, *end;
    int line;
    int ws;
    char *err;
    size_t errlen;
    tpl_resolve_fn resolve;
    void *rdata;
    int depth; /* extends/include depth of this template */
    int block_depth;
    int loop_depth;
    bool seen_content; /* anything but comments or settings so far */
};

/* How a body ended: at EOF or at one of end/elif/else/except. */
struct term {
    bool eof;
    const char *op;
    size_t oplen;
    const char *arg;
    size_t arglen;
    int line, arg_line;
};

struct tpl_chunk {
    struct tpl_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

void *gust__template_parse_alloc(struct tpl_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    struct tpl_chunk *c = a->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > 8192 ? size : 8192;
        c = malloc(sizeof *c + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

char *gust__template_parse_strndup(struct tpl_arena *a, const char *s, size_t n)
{
    char *d = gust__template_parse_alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

void gust__template_parse_arena_free(struct tpl_arena *a)
{
    while (a->head) {
        struct tpl_chunk *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

static int fail(struct parser *p, int code, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(struct parser *p, int code, int line, const char *fmt, ...)
{
    if (!p->err[0]) {
        int k = snprintf(p->err, p->errlen, "%s:%d: ", p->file, line);
        if (k >= 0 && (size_t)k < p->errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err + k, p->errlen - (size_t)k, fmt, ap);
            va_end(ap);
        }
    }
    return code;
}

static int oom(struct parser *p)
{
    return fail(p, -ENOMEM, p->line, "out of memory");
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int count_lines(const char *s, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == '\n';
    return k;
}

static const char *find(const char *s, const char *end, const char *pat)
{
    return memmem(s, (size_t)(end - s), pat, 2);
}

/* Tornado's filter_whitespace: "single" turns each run of spaces and tabs
 * into one space and each run of whitespace holding a newline into one
 * newline; "oneline" turns each run of whitespace into one space. */
static size_t filter_ws(int mode, const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        if (!is_space(s[i])) {
            out[o++] = s[i++];
            continue;
        }
        size_t j = i;
        bool nl = false;
        while (j < n && is_space(s[j]))
            nl |= s[j++] == '\n';
        if (mode == WS_ONELINE) {
            out[o++] = ' ';
        } else if (nl) {
            out[o++] = '\n';
        } else {
            for (size_t k = i; k < j;) {
                if (s[k] == ' ' || s[k] == '\t') {
                    out[o++] = ' ';
                    while (k < j && (s[k] == ' ' || s[k] == '\t'))
                        k++;
                } else {
                    out[o++] = s[k++];
                }
            }
        }
        i = j;
    }
    return o;
}

static struct node *new_node(struct parser *p, enum node_kind kind, int line)
{
    struct node *n = gust__template_parse_alloc(&p->t->arena, sizeof *n);
    if (n) {
        n->kind = kind;
        n->line = line;
    }
    return n;
}

static int add_text(struct parser *p, struct node ***tail, const char *s,
                    size_t n, int line)
{
    if (!n)
        return 0;
    for (size_t i = 0; i < n && !p->seen_content; i++)
        if (!is_space(s[i]))
            p->seen_content = true;
    struct node *nd = new_node(p, N_TEXT, line);
    char *buf = nd ? gust__template_parse_alloc(&p->t->arena, n + 1) : NULL;
    if (!buf)
        return oom(p);
    if (p->ws == WS_ALL) {
        memcpy(buf, s, n);
        nd->len = n;
    } else {
        nd->len = filter_ws(p->ws, s, n, buf);
    }
    nd->text = buf;
    **tail = nd;
    *tail = &nd->next;
    return 0;
}

/* Parses a whole expression from s[0..n) that starts on line. */
static struct expr *expr_at(struct parser *p, const char *s, size_t n, int line)
{
    struct expr_parser ep = {p->t, p->file, s, s + n, line, 0, p->err, p->errlen};
    struct expr *e = gust__template_expr_parse(&ep);
    if (e && !gust__template_expr_at_end(&ep)) {
        int k = (int)(ep.end - ep.p);
        fail(p, -EINVAL, ep.line, "unexpected '%.*s' after expression", k > 20 ? 20 : k, ep.p);
        return NULL;
    }
    return e;
}

static bool op_is(const struct term *t, const char *s)
{
    return t->op && t->oplen == strlen(s) && memcmp(t->op, s, t->oplen) == 0;
}

/* A plain name (for, set, block): letters, digits, '_', not starting with a
 * digit. Returns its length, 0 if none. */
static size_t name_len(const char *s, const char *end)
{
    size_t n = 0;
    while (s + n < end && ((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
                           s[n] == '_' || (n && s[n] >= '0' && s[n] <= '9')))
        n++;
    return n;
}

static const char *skip_ws(const char *s, const char *end, int *line)
{
    while (s < end && is_space(*s)) {
        if (*s == '\n')
            (*line)++;
        s++;
    }
    return s;
}

static int parse_body(struct parser *p, struct node **out, struct term *term);

/* "{% end %}" (or EOF) must close what opened at open_line. */
static int expect_end(struct parser *p, const struct term *t, const char *what,
                      int open_line)
{
    if (op_is(t, "end"))
        return 0;
    if (t->eof)
        return fail(p, -EINVAL, t->line, "expected {%% end %%} for {%% %s %%} opened at line %d",
                    what, open_line);
    return fail(p, -EINVAL, t->line, "unexpected {%% %.*s %%} in {%% %s %%} opened at line %d",
                (int)t->oplen, t->op, what, open_line);
}

static int nested(struct parser *p, int line, struct node **body, struct term *t)
{
    if (++p->block_depth > TPL_MAX_BLOCK_DEPTH)
        return fail(p, -EINVAL, line, "blocks nested too deeply (more than %d)",
                    TPL_MAX_BLOCK_DEPTH);
    int rc = parse_body(p, body, t);
    p->block_depth--;
    return rc;
}

static int parse_if(struct parser *p, struct node *n, const char *arg, size_t len,
                    int arg_line)
{
    int open_line = n->line;
    if (!(n->e = expr_at(p, arg, len, arg_line)))
        return -EINVAL;
    struct term t;
    int rc = nested(p, n->line, &n->body, &t);
    while (rc == 0) {
        if (op_is(&t, "elif")) {
            struct node *e = new_node(p, N_IF, t.line);
            if (!e)
                return oom(p);
            if (!t.arglen)
                return fail(p, -EINVAL, t.line, "{%% elif %%} needs a condition");
            if (!(e->e = expr_at(p, t.arg, t.arglen, t.arg_line)))
                return -EINVAL;
            e->elif = true;
            n->orelse = e;
            n = e;
            rc = nested(p, e->line, &e->body, &t);
        } else if (op_is(&t, "else")) {
            if (t.arglen)
                return fail(p, -EINVAL, t.line, "{%% else %%} takes no argument");
            int else_line = t.line;
            rc = nested(p, t.line, &n->orelse, &t);
            if (rc == 0 && (op_is(&t, "elif") || op_is(&t, "else")))
                return fail(p, -EINVAL, t.line, "{%% %.*s %%} after {%% else %%} at line %d",
                            (int)t.oplen, t.op, else_line);
            return rc ? rc : expect_end(p, &t, "if", open_line);
        } else {
            return expect_end(p, &t, "if", open_line);
        }
    }
    return rc;
}

static int parse_for(struct parser *p, struct node *n, const char *arg, size_t len,
                     int line)
{
    const char *s = arg, *end = arg + len;
    size_t k = name_len(s, end);
    if (!k)
        return fail(p, -EINVAL, line, "expected a name after {%% for");
    if (!(n->var1 = gust__template_parse_strndup(&p->t->arena, s, k)))
        return oom(p);
    s = skip_ws(s + k, end, &line);
    if (s < end && *s == ',') {
        s = skip_ws(s + 1, end, &line);
        if (!(k = name_len(s, end)))
            return fail(p, -EINVAL, line, "expected a second name after ',' in {%% for %%}");
        if (!(n->var2 = gust__template_parse_strndup(&p->t->arena, s, k)))
            return oom(p);
        s = skip_ws(s + k, end, &line);
    }
    if (!(end - s > 2 && s[0] == 'i' && s[1] == 'n' && is_space(s[2])))
        return fail(p, -EINVAL, line, "expected {%% for x in expr %%} or {%% for k, v in expr %%}");
    if (!(n->e = expr_at(p, s + 2, (size_t)(end - s - 2), line)))
        return -EINVAL;
    struct term t;
    p->loop_depth++;
    int rc = nested(p, n->line, &n->body, &t);
    p->loop_depth--;
    return rc ? rc : expect_end(p, &t, "for", n->line);
}

static int parse_set(struct parser *p, struct node *n, const char *arg, size_t len,
                     int line)
{
    const char *s = arg, *end = arg + len;
    size_t k = name_len(s, end);
    const char *eq = k ? skip_ws(s + k, end, &line) : s;
    if (!k || eq >= end || *eq != '=' || (eq + 1 < end && eq[1] == '='))
        return fail(p, -EINVAL, line, "expected {%% set name = expr %%}");
    if (!(n->var1 = gust__template_parse_strndup(&p->t->arena, s, k)))
        return oom(p);
    n->e = expr_at(p, eq + 1, (size_t)(end - eq - 1), line);
    return n->e ? 0 : -EINVAL;
}

static int parse_block(struct parser *p, struct node *n, const char *arg, size_t len)
{
    size_t k = name_len(arg, arg + len);
    if (!k || k != len)
        return fail(p, -EINVAL, n->line, "expected {%% block name %%}");
    if (!(n->name = gust__template_parse_strndup(&p->t->arena, arg, k)))
        return oom(p);
    for (struct tpl_block *b = p->t->blocks; b; b = b->next)
        if (strcmp(b->name, n->name) == 0)
            return fail(p, -EINVAL, n->line, "block '%s' defined twice", n->name);
    struct tpl_block *b = gust__template_parse_alloc(&p->t->arena, sizeof *b);
    if (!b)
        return oom(p);
    struct term t;
    int rc = nested(p, n->line, &n->body, &t);
    if (rc == 0)
        rc = expect_end(p, &t, "block", n->line);
    b->name = n->name;
    b->body = n->body;
    b->next = p->t->blocks;
    p->t->blocks = b;
    return rc;
}

static int parse_try(struct parser *p, struct node *n, size_t len)
{
    if (len)
        return fail(p, -EINVAL, n->line, "{%% try %%} takes no argument");
    struct term t;
    int rc = nested(p, n->line, &n->body, &t);
    if (rc == 0 && op_is(&t, "except")) {
        if (t.arglen)
            return fail(p, -EINVAL, t.line, "{%% except %%} takes no argument here");
        rc = nested(p, t.line, &n->orelse, &t);
    }
    return rc ? rc : expect_end(p, &t, "try", n->line);
}

/* The file name of {% extends "x" %} / {% include "x" %}, quotes optional
 * as in Tornado. */
static int file_arg(struct parser *p, const char *what, const char *arg, size_t len,
                    int line, gust_template **out)
{
    if (len >= 2 && (arg[0] == '"' || arg[0] == '\'') && arg[len - 1] == arg[0]) {
        arg++;
        len -= 2;
    }
    if (!len)
        return fail(p, -EINVAL, line, "{%% %s %%} needs a template name", what);
    if (!p->resolve)
        return fail(p, -EINVAL, line, "{%% %s %%} needs a template loader", what);
    char name[1024], inner[TPL_ERR_MAX];
    if (len >= sizeof name || memchr(arg, 0, len))
        return fail(p, -EPERM, line, "bad template name in {%% %s %%}", what);
    memcpy(name, arg, len);
    name[len] = 0;
    inner[0] = 0;
    bool located = false;
    int rc = p->resolve(p->rdata, name, p->depth + 1, out, inner, sizeof inner, &located);
    /* An error inside the other template names its own file and line; an
     * error about the name itself is told from here. */
    if (rc < 0 && located) {
        if (!p->err[0])
            snprintf(p->err, p->errlen, "%s", inner);
        return rc;
    }
    if (rc < 0)
        return fail(p, rc, line, "in {%% %s \"%s\" %%}: %s", what, name, inner);
    return 0;
}

/* One {% %} tag: op is its first word, arg the rest (trimmed). Blocks
 * recurse through parse_body; terminators are handed back through term. */
static int directive(struct parser *p, struct node ***tail, const char *op,
                     size_t oplen, const char *arg, size_t arglen, int line,
                     int arg_line, struct term *term, bool *stop)
{
#define OP(s) (oplen == sizeof(s) - 1 && memcmp(op, s, oplen) == 0)
    if (OP("end") || OP("elif") || OP("else") || OP("except")) {
        *term = (struct term){false, op, oplen, arg, arglen, line, arg_line};
        *stop = true;
        return 0;
    }
    if (OP("comment"))
        return 0;
    if (OP("autoescape")) {
        if (arglen == 4 && (memcmp(arg, "None", 4) == 0 || memcmp(arg, "none", 4) == 0))
            p->t->autoescape = false;
        else if (arglen == 12 && memcmp(arg, "xhtml_escape", 12) == 0)
            p->t->autoescape = true;
        else
            return fail(p, -EINVAL, line, "{%% autoescape %%} takes none or xhtml_escape");
        return 0;
    }
    if (OP("whitespace")) {
        if (arglen == 3 && memcmp(arg, "all", 3) == 0)
            p->ws = WS_ALL;
        else if (arglen == 6 && memcmp(arg, "single", 6) == 0)
            p->ws = WS_SINGLE;
        else if (arglen == 7 && memcmp(arg, "oneline", 7) == 0)
            p->ws = WS_ONELINE;
        else
            return fail(p, -EINVAL, line, "{%% whitespace %%} takes all, single or oneline");
        return 0;
    }
    if (OP("extends")) {
        if (p->block_depth || p->seen_content)
            return fail(p, -EINVAL, line, "{%% extends %%} must come first in the template");
        if (p->t->parent)
            return fail(p, -EINVAL, line, "only one {%% extends %%} per template");
        return file_arg(p, "extends", arg, arglen, line, &p->t->parent);
    }
    p->seen_content = true;

    struct node *n = NULL;
    int rc = 0;
    if (OP("raw")) {
        if (!arglen)
            return fail(p, -EINVAL, line, "empty expression in {%% raw %%}");
        if (!(n = new_node(p, N_EXPR, line)))
            return oom(p);
        n->raw = true;
        rc = (n->e = expr_at(p, arg, arglen, arg_line)) ? 0 : -EINVAL;
    } else if (OP("if")) {
        if (!arglen)
            return fail(p, -EINVAL, line, "{%% if %%} needs a condition");
        rc = (n = new_node(p, N_IF, line)) ? parse_if(p, n, arg, arglen, arg_line) : oom(p);
    } else if (OP("for")) {
        rc = (n = new_node(p, N_FOR, line)) ? parse_for(p, n, arg, arglen, arg_line) : oom(p);
    } else if (OP("set")) {
        rc = (n = new_node(p, N_SET, line)) ? parse_set(p, n, arg, arglen, arg_line) : oom(p);
    } else if (OP("block")) {
        rc = (n = new_node(p, N_BLOCK, line)) ? parse_block(p, n, arg, arglen) : oom(p);
    } else if (OP("try")) {
        rc = (n = new_node(p, N_TRY, line)) ? parse_try(p, n, arglen) : oom(p);
    } else if (OP("include")) {
        if (!(n = new_node(p, N_INCLUDE, line)))
            return oom(p);
        rc = file_arg(p, "include", arg, arglen, line, &n->target);
    } else if (OP("break") || OP("continue")) {
        if (!p->loop_depth)
            return fail(p, -EINVAL, line, "{%% %.*s %%} outside a loop", (int)oplen, op);
        if (arglen)
            return fail(p, -EINVAL, line, "{%% %.*s %%} takes no argument", (int)oplen, op);
        if (!(n = new_node(p, OP("break") ? N_BREAK : N_CONTINUE, line)))
            return oom(p);
    } else if (OP("module") || OP("import") || OP("from") || OP("apply") ||
               OP("while") || OP("finally")) {
        return fail(p, -EINVAL, line, "{%% %.*s %%} is not supported", (int)oplen, op);
    } else {
        int k = oplen > 30 ? 30 : (int)oplen;
        return fail(p, -EINVAL, line, "unknown directive {%% %.*s %%}", k, op);
    }
    if (rc < 0)
        return rc;
    **tail = n;
    *tail = &n->next;
    return 0;
#undef OP
}

static int parse_body(struct parser *p, struct node **out, struct term *term)
{
    struct node **tail = out;
    *out = NULL;
    for (;;) {
        /* Find the next tag start: '{' followed by '{', '%' or '#', taking
         * the innermost of "{{{" so that "{{{ x }}}" prints braces. */
        const char *c = p->p;
        for (;;) {
            c = memchr(c, '{', (size_t)(p->end - c));
            if (!c || c + 1 >= p->end) {
                c = NULL;
                break;
            }
            if (c[1] != '{' && c[1] != '%' && c[1] != '#') {
                c++;
                continue;
            }
            if (c + 2 < p->end && c[1] == '{' && c[2] == '{') {
                c++;
                continue;
            }
            break;
        }
        const char *text_end = c ? c : p->end;
        if (add_text(p, &tail, p->p, (size_t)(text_end - p->p), p->line) < 0)
            return -ENOMEM;
        p->line += count_lines(p->p, (size_t)(text_end - p->p));
        p->p = text_end;
        if (!c) {
            *term = (struct term){.eof = true, .line = p->line};
            return 0;
        }
        char kind = c[1];
        int line = p->line;
        p->p = c + 2;
        if (p->p < p->end && *p->p == '!') {
            p->p++;
            if (add_text(p, &tail, c, 2, line) < 0)
                return -ENOMEM;
            continue;
        }
        const char *close = kind == '{' ? "}}" : kind == '%' ? "%}" : "#}";
        const char *e = find(p->p, p->end, close);
        if (!e)
            return fail(p, -EINVAL, line, "missing %s for the %c%c opened here", close, '{', kind);
        const char *s = p->p;
        p->line += count_lines(s, (size_t)(e - s));
        p->p = e + 2;
        if (kind == '#')
            continue;
        int sline = line;
        s = skip_ws(s, e, &sline);
        const char *se = e;
        while (se > s && is_space(se[-1]))
            se--;
        if (kind == '{') {
            if (se == s)
                return fail(p, -EINVAL, line, "empty expression in {{ }}");
            p->seen_content = true;
            struct node *n = new_node(p, N_EXPR, line);
            if (!n)
                return oom(p);
            if (!(n->e = expr_at(p, s, (size_t)(se - s), sline)))
                return -EINVAL;
            *tail = n;
            tail = &n->next;
            continue;
        }
        if (se == s)
            return fail(p, -EINVAL, line, "empty directive {%% %%}");
        const char *op = s;
        while (s < se && !is_space(*s))
            s++;
        size_t oplen = (size_t)(s - op);
        int arg_line = sline;
        s = skip_ws(s, se, &arg_line);
        bool stop = false;
        int rc = directive(p, &tail, op, oplen, s, (size_t)(se - s), line, arg_line,
                           term, &stop);
        if (rc < 0)
            return rc;
        if (stop)
            return 0;
    }
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

int gust__template_parse_compile(gust_template *t, const char *src, size_t len,
                                 tpl_resolve_fn resolve, void *rdata, int depth,
                                 char *err, size_t errlen)
{
    struct parser p = {
        .t = t,
        .file = t->name,
        .p = src,
        .end = src + len,
        .line = 1,
        .ws = ends_with(t->name, ".html") || ends_with(t->name, ".js") ? WS_SINGLE : WS_ALL,
        .err = err,
        .errlen = errlen,
        .resolve = resolve,
        .rdata = rdata,
        .depth = depth,
    };
    err[0] = 0;
    struct term term;
    int rc = parse_body(&p, &t->body, &term);
    if (rc == 0 && !term.eof) {
        int k = term.oplen > 30 ? 30 : (int)term.oplen;
        if (op_is(&term, "end"))
            rc = fail(&p, -EINVAL, term.line, "{%% end %%} without an open block");
        else
            rc = fail(&p, -EINVAL, term.line, "{%% %.*s %%} outside {%% %s %%}", k, term.op,
                      op_is(&term, "except") ? "try" : "if");
    }
    if (rc < 0 && !err[0])
        fail(&p, rc, p.line, "%s", rc == -ENOMEM ? "out of memory" : "syntax error");
    return rc;
}

void gust__template_parse_default_limits(gust_template_limits *l)
{
    l->max_steps = 10000000;
    l->max_value = 16u << 20;
}

gust_template *gust__template_parse_new(const char *name)
{
    gust_template *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->name = strdup(name ? name : "<string>");
    t->consts = json_array();
    if (!t->name || !t->consts) {
        free(t->name);
        json_decref(t->consts);
        free(t);
        return NULL;
    }
    t->autoescape = true;
    gust__template_parse_default_limits(&t->limits);
    return t;
}

void gust__template_parse_destroy(gust_template *t)
{
    if (!t)
        return;
    gust__template_parse_arena_free(&t->arena);
    json_decref(t->consts);
    free(t->name);
    free(t);
}

gust_template *gust_template_new_from_buffer(const char *source, size_t len,
                                             const char *name)
{
    gust_template *t = gust__template_parse_new(name);
    if (!t)
        return NULL;
    t->status =
        gust__template_parse_compile(t, source ? source : "", source ? len : 0,
                                     NULL, NULL, 0, t->err, sizeof t->err);
    return t;
}

gust_template *gust_template_new_from_string(const char *source, const char *name)
{
    return gust_template_new_from_buffer(source, source ? strlen(source) : 0, name);
}

void gust_template_free(gust_template *t)
{
    if (!t)
        return;
    assert(!t->owned_by_loader && "template belongs to its loader");
    gust__template_parse_destroy(t);
}

int gust_template_status(const gust_template *t)
{
    return t->status;
}

const char *gust_template_error(const gust_template *t)
{
    return t->err;
}

const char *gust_template_name(const gust_template *t)
{
    return t->name;
}

void gust_template_set_limits(gust_template *t, const gust_template_limits *limits)
{
    if (limits)
        t->limits = *limits;
    else
        gust__template_parse_default_limits(&t->limits);
}
