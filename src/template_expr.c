/* Template expressions: a small Python-like language over Jansson values.
 * The parser builds a tree once at compile time; gust__template_expr_eval() walks it
 * at render time. Precedence, lowest first: "x if c else y", or, and, not,
 * comparisons (== != < <= > >= in, not in), + -, * / // %, unary - +,
 * then postfix .name [index] and calls of builtins. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template_internal.h"

/* A left-associative chain (1+1+1+...) builds a deep tree without nesting
 * parentheses; evaluation recurses on the tree, so its height is capped. */
#define MAX_TREE_HEIGHT 256

enum tok_kind { T_END, T_NAME, T_INT, T_FLOAT, T_STRING, T_OP, T_ERROR };

struct tok {
    enum tok_kind kind;
    const char *s; /* T_NAME, T_OP: points into the source */
    size_t n;
    int line;
};

static void *perr(struct expr_parser *ep, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void *perr(struct expr_parser *ep, int line, const char *fmt, ...)
{
    if (ep->err[0])
        return NULL; /* keep the first error */
    int k = snprintf(ep->err, ep->errlen, "%s:%d: ", ep->file, line);
    if (k < 0 || (size_t)k >= ep->errlen)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ep->err + k, ep->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return NULL;
}

static void skip_space(struct expr_parser *ep)
{
    while (ep->p < ep->end && (*ep->p == ' ' || *ep->p == '\t' ||
                               *ep->p == '\n' || *ep->p == '\r' ||
                               *ep->p == '\f' || *ep->p == '\v')) {
        if (*ep->p == '\n')
            ep->line++;
        ep->p++;
    }
}

bool gust__template_expr_at_end(struct expr_parser *ep)
{
    skip_space(ep);
    return ep->p >= ep->end;
}

static bool is_name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_name_char(char c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

/* Looks at the next token without consuming it. */
static struct tok peek(struct expr_parser *ep)
{
    skip_space(ep);
    struct tok t = {T_END, ep->p, 0, ep->line};
    if (ep->p >= ep->end)
        return t;
    char c = *ep->p;
    const char *q = ep->p;
    if (is_name_start(c)) {
        while (q < ep->end && is_name_char(*q))
            q++;
        t.kind = T_NAME;
    } else if (c >= '0' && c <= '9') {
        t.kind = T_INT;
        while (q < ep->end && *q >= '0' && *q <= '9')
            q++;
        if (q + 1 < ep->end && *q == '.' && q[1] >= '0' && q[1] <= '9') {
            t.kind = T_FLOAT;
            q++;
            while (q < ep->end && *q >= '0' && *q <= '9')
                q++;
        }
        if (q < ep->end && (*q == 'e' || *q == 'E')) {
            const char *r = q + 1;
            if (r < ep->end && (*r == '+' || *r == '-'))
                r++;
            if (r < ep->end && *r >= '0' && *r <= '9') {
                t.kind = T_FLOAT;
                q = r;
                while (q < ep->end && *q >= '0' && *q <= '9')
                    q++;
            }
        }
        if (q < ep->end && is_name_char(*q))
            t.kind = T_ERROR;
    } else if (c == '"' || c == '\'') {
        t.kind = T_STRING;
        q++;
        while (q < ep->end && *q != c) {
            if (*q == '\\' && q + 1 < ep->end)
                q++;
            q++;
        }
        if (q >= ep->end)
            t.kind = T_ERROR;
        else
            q++;
    } else {
        static const char *two[] = {"==", "!=", "<=", ">=", "//"};
        t.kind = T_OP;
        q++;
        for (size_t i = 0; i < sizeof two / sizeof *two; i++)
            if (ep->p + 1 < ep->end && ep->p[0] == two[i][0] &&
                ep->p[1] == two[i][1])
                q = ep->p + 2;
        if (!strchr("=!<>/+-*%()[].,", c) || (q == ep->p + 1 && (c == '=' || c == '!')))
            t.kind = T_ERROR;
    }
    t.n = (size_t)(q - ep->p);
    return t;
}

static void advance(struct expr_parser *ep, struct tok t)
{
    ep->p = t.s + t.n;
}

static bool tok_is(struct tok t, const char *s)
{
    return (t.kind == T_OP || t.kind == T_NAME) && t.n == strlen(s) &&
           memcmp(t.s, s, t.n) == 0;
}

static bool accept(struct expr_parser *ep, const char *s)
{
    struct tok t = peek(ep);
    if (!tok_is(t, s))
        return false;
    advance(ep, t);
    return true;
}

static const char *describe(struct tok t, char *buf, size_t n)
{
    if (t.kind == T_END)
        return "end of expression";
    int len = t.n > 20 ? 20 : (int)t.n;
    snprintf(buf, n, "'%.*s'", len, t.s);
    return buf;
}

static void *unexpected(struct expr_parser *ep, struct tok t, const char *what)
{
    char b[40];
    if (t.kind == T_ERROR && t.n && (t.s[0] == '"' || t.s[0] == '\''))
        return perr(ep, t.line, "unterminated string literal");
    return perr(ep, t.line, "expected %s, found %s", what,
                describe(t, b, sizeof b));
}

static struct expr *mk(struct expr_parser *ep, enum expr_op op, int line,
                       struct expr *a, struct expr *b)
{
    struct expr *e = gust__template_parse_alloc(&ep->t->arena, sizeof *e);
    if (!e)
        return perr(ep, line, "out of memory");
    e->op = op;
    e->line = line;
    e->a = a;
    e->b = b;
    return e;
}

static struct expr *check_height(struct expr_parser *ep, struct expr *e)
{
    /* Only chains grow without recursion in the parser: checking the left
     * spine is enough, and cheap since deeper nodes were checked already. */
    int h = 0;
    for (const struct expr *x = e; x && h <= MAX_TREE_HEIGHT; x = x->a)
        h++;
    if (h > MAX_TREE_HEIGHT)
        return perr(ep, e->line, "expression is too long");
    return e;
}

static struct expr *parse_expr_depth(struct expr_parser *ep);

static struct expr *konst(struct expr_parser *ep, json_t *v, int line)
{
    if (!v)
        return perr(ep, line, "out of memory");
    if (json_array_append_new(ep->t->consts, v) < 0)
        return perr(ep, line, "out of memory");
    struct expr *e = mk(ep, E_CONST, line, NULL, NULL);
    if (e)
        e->konst = v;
    return e;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* A string literal with Python's escapes: \\ \' \" \n \t \r \0 \xHH \uHHHH
 * \UHHHHHHHH (code points, written as UTF-8). Unknown escapes stay as they
 * are, as in Python. */
static struct expr *string_literal(struct expr_parser *ep, struct tok t)
{
    /* Escapes never make the text longer, except \xHH (4 -> up to 2 bytes). */
    char *buf = malloc(t.n + 1);
    if (!buf)
        return perr(ep, t.line, "out of memory");
    size_t o = 0;
    const char *s = t.s + 1, *end = t.s + t.n - 1;
    while (s < end) {
        if (*s != '\\') {
            buf[o++] = *s++;
            continue;
        }
        s++;
        char c = *s++;
        int digits = 0;
        switch (c) {
        case 'n': buf[o++] = '\n'; break;
        case 't': buf[o++] = '\t'; break;
        case 'r': buf[o++] = '\r'; break;
        case '0': buf[o++] = '\0'; break;
        case '\\': case '\'': case '"': buf[o++] = c; break;
        case '\n': break; /* line continuation */
        case 'x': digits = 2; break;
        case 'u': digits = 4; break;
        case 'U': digits = 8; break;
        default:
            buf[o++] = '\\';
            buf[o++] = c;
        }
        if (digits) {
            unsigned long cp = 0;
            for (int i = 0; i < digits; i++, s++) {
                int h = s < end ? hexval(*s) : -1;
                if (h < 0) {
                    free(buf);
                    return perr(ep, t.line, "bad \\%c escape in string literal", c);
                }
                cp = cp * 16 + (unsigned long)h;
            }
            if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                free(buf);
                return perr(ep, t.line, "bad code point in string literal");
            }
            o += put_utf8(buf + o, cp);
        }
    }
    json_t *v = json_stringn(buf, o);
    free(buf);
    if (!v)
        return perr(ep, t.line, "string literal is not valid UTF-8");
    return konst(ep, v, t.line);
}

static struct expr *number_literal(struct expr_parser *ep, struct tok t)
{
    char buf[64];
    if (t.n >= sizeof buf)
        return perr(ep, t.line, "number literal too long");
    memcpy(buf, t.s, t.n);
    buf[t.n] = 0;
    errno = 0;
    if (t.kind == T_INT) {
        char *endp;
        long long v = strtoll(buf, &endp, 10);
        if (errno == ERANGE)
            return perr(ep, t.line, "integer literal out of range");
        return konst(ep, json_integer(v), t.line);
    }
    double d = strtod(buf, NULL);
    if (!isfinite(d))
        return perr(ep, t.line, "float literal out of range");
    return konst(ep, json_real(d), t.line);
}

/* items between open and close (already consumed open), comma-separated, a
 * trailing comma allowed. */
static int parse_items(struct expr_parser *ep, const char *close,
                       struct expr ***items, int *n)
{
    struct expr *tmp[64];
    int k = 0;
    while (!accept(ep, close)) {
        if (k == 64) {
            perr(ep, ep->line, "too many items (at most 64)");
            return -1;
        }
        if (!(tmp[k++] = parse_expr_depth(ep)))
            return -1;
        if (accept(ep, close))
            break;
        if (!accept(ep, ",")) {
            char w[16];
            snprintf(w, sizeof w, "',' or '%s'", close);
            unexpected(ep, peek(ep), w);
            return -1;
        }
    }
    *n = k;
    *items = NULL;
    if (k) {
        *items = gust__template_parse_alloc(&ep->t->arena,
                                            sizeof **items * (size_t)k);
        if (!*items) {
            perr(ep, ep->line, "out of memory");
            return -1;
        }
        memcpy(*items, tmp, sizeof *tmp * (size_t)k);
    }
    return 0;
}

static bool keyword(struct tok t)
{
    static const char *kw[] = {"and", "or", "not", "in", "if", "else", "is"};
    for (size_t i = 0; i < sizeof kw / sizeof *kw; i++)
        if (tok_is(t, kw[i]))
            return true;
    return false;
}

static struct expr *parse_primary(struct expr_parser *ep)
{
    struct tok t = peek(ep);
    switch (t.kind) {
    case T_INT:
    case T_FLOAT:
        advance(ep, t);
        return number_literal(ep, t);
    case T_STRING:
        advance(ep, t);
        return string_literal(ep, t);
    case T_NAME:
        if (keyword(t))
            return unexpected(ep, t, "an expression");
        advance(ep, t);
        if (tok_is(t, "True") || tok_is(t, "true"))
            return konst(ep, json_true(), t.line);
        if (tok_is(t, "False") || tok_is(t, "false"))
            return konst(ep, json_false(), t.line);
        if (tok_is(t, "None") || tok_is(t, "null"))
            return konst(ep, json_null(), t.line);
        if (accept(ep, "(")) {
            int lo, hi;
            int fn = gust__template_filters_builtin(t.s, t.n, &lo, &hi);
            if (fn < 0)
                return perr(ep, t.line, "unknown function '%.*s'",
                            (int)(t.n > 40 ? 40 : t.n), t.s);
            struct expr *e = mk(ep, E_CALL, t.line, NULL, NULL);
            if (!e || parse_items(ep, ")", &e->items, &e->nitems) < 0)
                return NULL;
            if (e->nitems < lo || e->nitems > hi)
                return perr(ep, t.line, "%.*s() takes %d to %d arguments, %d given",
                            (int)t.n, t.s, lo, hi, e->nitems);
            e->fn = fn;
            return e;
        } else {
            struct expr *e = mk(ep, E_NAME, t.line, NULL, NULL);
            if (e && !(e->name = gust__template_parse_strndup(&ep->t->arena,
                                                              t.s, t.n)))
                return perr(ep, t.line, "out of memory");
            return e;
        }
    case T_OP:
        if (tok_is(t, "(")) {
            advance(ep, t);
            struct expr *e = parse_expr_depth(ep);
            if (e && !accept(ep, ")"))
                return unexpected(ep, peek(ep), "')'");
            return e;
        }
        if (tok_is(t, "[")) {
            advance(ep, t);
            struct expr *e = mk(ep, E_LIST, t.line, NULL, NULL);
            if (!e || parse_items(ep, "]", &e->items, &e->nitems) < 0)
                return NULL;
            return e;
        }
        return unexpected(ep, t, "an expression");
    default:
        return unexpected(ep, t, "an expression");
    }
}

static struct expr *parse_postfix(struct expr_parser *ep)
{
    struct expr *e = parse_primary(ep);
    while (e) {
        struct tok t = peek(ep);
        if (tok_is(t, ".")) {
            advance(ep, t);
            struct tok n = peek(ep);
            if (n.kind != T_NAME)
                return unexpected(ep, n, "a name after '.'");
            advance(ep, n);
            e = mk(ep, E_ATTR, n.line, e, NULL);
            if (e && !(e->name = gust__template_parse_strndup(&ep->t->arena,
                                                              n.s, n.n)))
                return perr(ep, n.line, "out of memory");
        } else if (tok_is(t, "[")) {
            advance(ep, t);
            struct expr *idx = parse_expr_depth(ep);
            if (!idx)
                return NULL;
            if (!accept(ep, "]"))
                return unexpected(ep, peek(ep), "']'");
            e = mk(ep, E_INDEX, t.line, e, idx);
        } else if (tok_is(t, "(")) {
            return perr(ep, t.line, "only builtin functions can be called");
        } else {
            break;
        }
        if (e)
            e = check_height(ep, e);
    }
    return e;
}

static struct expr *parse_unary(struct expr_parser *ep)
{
    struct tok t = peek(ep);
    if (tok_is(t, "-") || tok_is(t, "+")) {
        if (++ep->depth > TPL_MAX_EXPR_DEPTH)
            return perr(ep, t.line, "expression nested too deeply");
        advance(ep, t);
        struct expr *a = parse_unary(ep);
        ep->depth--;
        return a ? mk(ep, t.s[0] == '-' ? E_NEG : E_POS, t.line, a, NULL) : NULL;
    }
    return parse_postfix(ep);
}

static struct expr *parse_term(struct expr_parser *ep)
{
    struct expr *e = parse_unary(ep);
    while (e) {
        struct tok t = peek(ep);
        enum expr_op op;
        if (tok_is(t, "*"))
            op = E_MUL;
        else if (tok_is(t, "/"))
            op = E_DIV;
        else if (tok_is(t, "//"))
            op = E_FLOORDIV;
        else if (tok_is(t, "%"))
            op = E_MOD;
        else
            break;
        advance(ep, t);
        struct expr *b = parse_unary(ep);
        e = b ? check_height(ep, mk(ep, op, t.line, e, b)) : NULL;
    }
    return e;
}

static struct expr *parse_sum(struct expr_parser *ep)
{
    struct expr *e = parse_term(ep);
    while (e) {
        struct tok t = peek(ep);
        if (!tok_is(t, "+") && !tok_is(t, "-"))
            break;
        advance(ep, t);
        struct expr *b = parse_term(ep);
        e = b ? mk(ep, t.s[0] == '+' ? E_ADD : E_SUB, t.line, e, b) : NULL;
        if (e)
            e = check_height(ep, e);
    }
    return e;
}

static bool comparison_op(struct expr_parser *ep, enum expr_op *op, int *line)
{
    static const struct {
        const char *s;
        enum expr_op op;
    } ops[] = {{"==", E_EQ}, {"!=", E_NE}, {"<=", E_LE}, {">=", E_GE},
               {"<", E_LT},  {">", E_GT},  {"in", E_IN}};
    struct tok t = peek(ep);
    *line = t.line;
    for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
        if (tok_is(t, ops[i].s)) {
            advance(ep, t);
            *op = ops[i].op;
            return true;
        }
    if (tok_is(t, "not")) {
        const char *save = ep->p;
        int save_line = ep->line;
        advance(ep, t);
        if (accept(ep, "in")) {
            *op = E_NOTIN;
            return true;
        }
        ep->p = save;
        ep->line = save_line;
    }
    return false;
}

static struct expr *parse_comparison(struct expr_parser *ep)
{
    struct expr *e = parse_sum(ep);
    enum expr_op op;
    int line;
    if (!e || !comparison_op(ep, &op, &line))
        return e;
    struct expr *b = parse_sum(ep);
    if (!b)
        return NULL;
    enum expr_op op2;
    if (comparison_op(ep, &op2, &line))
        return perr(ep, line, "chained comparisons are not supported: use 'and'");
    return mk(ep, op, line, e, b);
}

static struct expr *parse_not(struct expr_parser *ep)
{
    struct tok t = peek(ep);
    if (tok_is(t, "not")) {
        if (++ep->depth > TPL_MAX_EXPR_DEPTH)
            return perr(ep, t.line, "expression nested too deeply");
        advance(ep, t);
        struct expr *a = parse_not(ep);
        ep->depth--;
        return a ? mk(ep, E_NOT, t.line, a, NULL) : NULL;
    }
    return parse_comparison(ep);
}

static struct expr *parse_and(struct expr_parser *ep)
{
    struct expr *e = parse_not(ep);
    while (e) {
        struct tok t = peek(ep);
        if (!tok_is(t, "and"))
            break;
        advance(ep, t);
        struct expr *b = parse_not(ep);
        e = b ? check_height(ep, mk(ep, E_AND, t.line, e, b)) : NULL;
    }
    return e;
}

static struct expr *parse_or(struct expr_parser *ep)
{
    struct expr *e = parse_and(ep);
    while (e) {
        struct tok t = peek(ep);
        if (!tok_is(t, "or"))
            break;
        advance(ep, t);
        struct expr *b = parse_and(ep);
        e = b ? check_height(ep, mk(ep, E_OR, t.line, e, b)) : NULL;
    }
    return e;
}

static struct expr *parse_expr_depth(struct expr_parser *ep)
{
    if (++ep->depth > TPL_MAX_EXPR_DEPTH)
        return perr(ep, ep->line, "expression nested too deeply");
    struct expr *e = parse_or(ep);
    struct tok t = peek(ep);
    if (e && tok_is(t, "if")) {
        advance(ep, t);
        struct expr *cond = parse_or(ep);
        if (!cond)
            return NULL;
        if (!accept(ep, "else"))
            return unexpected(ep, peek(ep), "'else'");
        struct expr *other = parse_expr_depth(ep);
        if (!other)
            return NULL;
        struct expr *c = mk(ep, E_COND, t.line, cond, e);
        if (c)
            c->c = other;
        e = c;
    }
    ep->depth--;
    return e;
}

struct expr *gust__template_expr_parse(struct expr_parser *ep)
{
    ep->depth = 0;
    return parse_expr_depth(ep);
}

/* ------------------------------------------------------------------ */
/* Evaluation */

void *gust__template_expr_fail(struct render *r, int code, int line,
                               const char *fmt, ...)
{
    if (r->err)
        return NULL;
    r->err = code;
    int k = snprintf(r->msg, sizeof r->msg, "%s:%d: ", r->file, line);
    if (k < 0 || (size_t)k >= sizeof r->msg)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg + k, sizeof r->msg - (size_t)k, fmt, ap);
    va_end(ap);
    return NULL;
}

static void *missing(struct render *r, int line, const char *fmt, const char *s)
{
    if (!r->err)
        r->missing = true;
    return gust__template_expr_fail(r, -EINVAL, line, fmt, s);
}

bool gust__template_expr_truthy(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE:
        return false;
    case JSON_TRUE:
        return true;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0.0;
    case JSON_STRING:
        return json_string_length(v) != 0;
    case JSON_ARRAY:
        return json_array_size(v) != 0;
    case JSON_OBJECT:
        return json_object_size(v) != 0;
    }
    return false;
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_NULL: return "None";
    case JSON_TRUE:
    case JSON_FALSE: return "bool";
    case JSON_INTEGER: return "int";
    case JSON_REAL: return "float";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    }
    return "?";
}

static bool is_num(const json_t *v)
{
    return json_is_integer(v) || json_is_real(v);
}

static double num(const json_t *v)
{
    return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

static bool equal(const json_t *a, const json_t *b)
{
    if (is_num(a) && is_num(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return num(a) == num(b);
    }
    return json_equal((json_t *)a, (json_t *)b);
}

/* -1, 0, 1, or -2 when the types cannot be ordered. */
static int order(const json_t *a, const json_t *b)
{
    if (is_num(a) && is_num(b)) {
        if (json_is_integer(a) && json_is_integer(b)) {
            json_int_t x = json_integer_value(a), y = json_integer_value(b);
            return (x > y) - (x < y);
        }
        double x = num(a), y = num(b);
        return (x > y) - (x < y);
    }
    if (json_is_string(a) && json_is_string(b)) {
        size_t n = json_string_length(a), m = json_string_length(b);
        int c = memcmp(json_string_value(a), json_string_value(b), n < m ? n : m);
        if (c)
            return c < 0 ? -1 : 1;
        return (n > m) - (n < m);
    }
    return -2;
}

static json_t *make_real(struct render *r, int line, double d)
{
    json_t *v = json_real(d);
    if (!v)
        return gust__template_expr_fail(
            r, isfinite(d) ? -ENOMEM : -EINVAL, line,
            isfinite(d) ? "out of memory" : "float result out of range");
    return v;
}

static json_t *oom(struct render *r, int line)
{
    return gust__template_expr_fail(r, -ENOMEM, line, "out of memory");
}

static json_t *too_big(struct render *r, int line)
{
    return gust__template_expr_fail(r, -E2BIG, line,
                                    "value larger than the template limit");
}

static json_t *arith(struct render *r, enum expr_op op, int line, json_t *a,
                     json_t *b)
{
    static const char *sym[] = {[E_ADD] = "+", [E_SUB] = "-", [E_MUL] = "*",
                                [E_DIV] = "/", [E_FLOORDIV] = "//", [E_MOD] = "%"};
    if (op == E_ADD && json_is_string(a) && json_is_string(b)) {
        size_t n = json_string_length(a), m = json_string_length(b);
        if (r->limits.max_value && n + m > r->limits.max_value)
            return too_big(r, line);
        char *s = malloc(n + m + 1);
        if (!s)
            return oom(r, line);
        memcpy(s, json_string_value(a), n);
        memcpy(s + n, json_string_value(b), m);
        json_t *v = json_stringn_nocheck(s, n + m);
        free(s);
        return v ? v : oom(r, line);
    }
    if (op == E_ADD && json_is_array(a) && json_is_array(b)) {
        if (r->limits.max_value &&
            json_array_size(a) + json_array_size(b) > r->limits.max_value)
            return too_big(r, line);
        json_t *v = json_array();
        if (!v || json_array_extend(v, a) < 0 || json_array_extend(v, b) < 0) {
            json_decref(v);
            return oom(r, line);
        }
        return v;
    }
    if (!is_num(a) || !is_num(b))
        return gust__template_expr_fail(
            r, -EINVAL, line, "unsupported operand types for %s: %s and %s",
            sym[op], type_name(a), type_name(b));
    if ((op == E_DIV || op == E_FLOORDIV || op == E_MOD) && num(b) == 0.0)
        return gust__template_expr_fail(r, -EINVAL, line, "division by zero");
    if (json_is_integer(a) && json_is_integer(b) && op != E_DIV) {
        json_int_t x = json_integer_value(a), y = json_integer_value(b), z = 0;
        bool ovf = false;
        switch (op) {
        case E_ADD: ovf = __builtin_add_overflow(x, y, &z); break;
        case E_SUB: ovf = __builtin_sub_overflow(x, y, &z); break;
        case E_MUL: ovf = __builtin_mul_overflow(x, y, &z); break;
        case E_FLOORDIV:
        case E_MOD:
            if (x == LLONG_MIN && y == -1) {
                ovf = op == E_FLOORDIV;
                z = 0;
                break;
            }
            if (op == E_FLOORDIV) {
                z = x / y;
                if (x % y != 0 && ((x < 0) != (y < 0)))
                    z--;
            } else {
                z = x % y;
                if (z != 0 && ((z < 0) != (y < 0)))
                    z += y;
            }
            break;
        default: break;
        }
        if (ovf)
            return gust__template_expr_fail(r, -EINVAL, line,
                                            "integer overflow");
        json_t *v = json_integer(z);
        return v ? v : oom(r, line);
    }
    double x = num(a), y = num(b), z = 0;
    switch (op) {
    case E_ADD: z = x + y; break;
    case E_SUB: z = x - y; break;
    case E_MUL: z = x * y; break;
    case E_DIV: z = x / y; break;
    case E_FLOORDIV: z = floor(x / y); break;
    case E_MOD:
        z = fmod(x, y);
        if (z != 0 && ((z < 0) != (y < 0)))
            z += y;
        break;
    default: break;
    }
    return make_real(r, line, z);
}

static json_t *contains(struct render *r, int line, json_t *needle, json_t *hay)
{
    bool found = false;
    if (json_is_string(hay)) {
        if (!json_is_string(needle))
            return gust__template_expr_fail(
                r, -EINVAL, line,
                "'in <string>' needs a string on the left, not %s",
                type_name(needle));
        found = memmem(json_string_value(hay), json_string_length(hay),
                       json_string_value(needle), json_string_length(needle)) != NULL ||
                json_string_length(needle) == 0;
    } else if (json_is_array(hay)) {
        for (size_t i = 0; i < json_array_size(hay) && !found; i++)
            found = equal(json_array_get(hay, i), needle);
    } else if (json_is_object(hay)) {
        if (!json_is_string(needle))
            return gust__template_expr_fail(r, -EINVAL, line,
                                            "object keys are strings, not %s",
                                            type_name(needle));
        found = json_object_getn(hay, json_string_value(needle),
                                 json_string_length(needle)) != NULL;
    } else {
        return gust__template_expr_fail(
            r, -EINVAL, line, "'in' needs a string, array or object, not %s",
            type_name(hay));
    }
    return json_boolean(found);
}

static json_t *index_value(struct render *r, int line, json_t *a, json_t *k)
{
    if (json_is_array(a)) {
        if (!json_is_integer(k))
            return gust__template_expr_fail(
                r, -EINVAL, line, "array index must be an int, not %s",
                type_name(k));
        json_int_t i = json_integer_value(k), n = (json_int_t)json_array_size(a);
        if (i < 0)
            i += n;
        if (i < 0 || i >= n) {
            if (!r->err)
                r->missing = true;
            return gust__template_expr_fail(r, -EINVAL, line,
                                            "array index %lld out of range",
                                            (long long)json_integer_value(k));
        }
        return json_incref(json_array_get(a, (size_t)i));
    }
    if (json_is_object(a)) {
        if (!json_is_string(k))
            return gust__template_expr_fail(
                r, -EINVAL, line, "object key must be a string, not %s",
                type_name(k));
        json_t *v = json_object_getn(a, json_string_value(k), json_string_length(k));
        if (!v)
            return missing(r, line, "key '%s' not found", json_string_value(k));
        return json_incref(v);
    }
    return gust__template_expr_fail(r, -EINVAL, line, "cannot index %s",
                                    type_name(a));
}

json_t *gust__template_expr_eval(struct render *r, const struct expr *e,
                                 int depth)
{
    json_t *a = NULL, *b = NULL, *v = NULL;
    if (depth > MAX_TREE_HEIGHT + TPL_MAX_EXPR_DEPTH * 4)
        return gust__template_expr_fail(r, -EINVAL, e->line,
                                        "expression nested too deeply");
    switch (e->op) {
    case E_CONST:
        return json_incref(e->konst);
    case E_NAME:
        if ((v = gust__template_render_local_get(r, e->name)))
            return json_incref(v);
        if (r->ctx && (v = json_object_get(r->ctx, e->name)))
            return json_incref(v);
        if (r->hooks && r->hooks->lookup &&
            (v = r->hooks->lookup(r->hooks->data, e->name)))
            return v;
        return missing(r, e->line, "name '%s' is not defined", e->name);
    case E_LIST:
        if (!(v = json_array()))
            return oom(r, e->line);
        for (int i = 0; i < e->nitems; i++) {
            if (!(a = gust__template_expr_eval(r, e->items[i], depth + 1)) ||
                json_array_append_new(v, a) < 0) {
                json_decref(v);
                return a ? oom(r, e->line) : NULL;
            }
        }
        return v;
    case E_ATTR:
        if (!(a = gust__template_expr_eval(r, e->a, depth + 1)))
            return NULL;
        if (!json_is_object(a)) {
            gust__template_expr_fail(r, -EINVAL, e->line,
                                     "%s has no attribute '%s'", type_name(a),
                                     e->name);
        } else if (!(v = json_object_get(a, e->name))) {
            missing(r, e->line, "key '%s' not found", e->name);
        } else {
            json_incref(v);
        }
        json_decref(a);
        return v;
    case E_INDEX:
        if (!(a = gust__template_expr_eval(r, e->a, depth + 1)))
            return NULL;
        if ((b = gust__template_expr_eval(r, e->b, depth + 1)))
            v = index_value(r, e->line, a, b);
        break;
    case E_CALL:
        return gust__template_filters_call(r, e, depth + 1);
    case E_NOT:
        if (!(a = gust__template_expr_eval(r, e->a, depth + 1)))
            return NULL;
        v = json_boolean(!gust__template_expr_truthy(a));
        break;
    case E_NEG:
    case E_POS:
        if (!(a = gust__template_expr_eval(r, e->a, depth + 1)))
            return NULL;
        if (json_is_integer(a)) {
            json_int_t x = json_integer_value(a);
            if (e->op == E_NEG && x == LLONG_MIN)
                gust__template_expr_fail(r, -EINVAL, e->line,
                                         "integer overflow");
            else if (!(v = json_integer(e->op == E_NEG ? -x : x)))
                oom(r, e->line);
        } else if (json_is_real(a)) {
            v = make_real(r, e->line, e->op == E_NEG ? -json_real_value(a)
                                                     : json_real_value(a));
        } else {
            gust__template_expr_fail(r, -EINVAL, e->line,
                                     "bad operand type for unary %c: %s",
                                     e->op == E_NEG ? '-' : '+', type_name(a));
        }
        break;
    case E_AND:
    case E_OR:
        /* Python: the value of the last operand evaluated, not a bool. */
        if (!(a = gust__template_expr_eval(r, e->a, depth + 1)))
            return NULL;
        if (gust__template_expr_truthy(a) == (e->op == E_OR))
            return a;
        json_decref(a);
        return gust__template_expr_eval(r, e->b, depth + 1);
    case E_COND:
        if (!(a = gust__template_expr_eval(r, e->a, depth + 1)))
            return NULL;
        v = gust__template_expr_eval(
            r, gust__template_expr_truthy(a) ? e->b : e->c, depth + 1);
        break;
    default:
        if (!(a = gust__template_expr_eval(r, e->a, depth + 1)) ||
            !(b = gust__template_expr_eval(r, e->b, depth + 1)))
            break;
        if (e->op >= E_ADD && e->op <= E_MOD) {
            v = arith(r, e->op, e->line, a, b);
        } else if (e->op == E_EQ || e->op == E_NE) {
            v = json_boolean(equal(a, b) == (e->op == E_EQ));
        } else if (e->op == E_IN || e->op == E_NOTIN) {
            v = contains(r, e->line, a, b);
            if (v && e->op == E_NOTIN) {
                bool t = json_is_true(v);
                json_decref(v);
                v = json_boolean(!t);
            }
        } else {
            static const char *sym[] = {[E_LT] = "<", [E_LE] = "<=", [E_GT] = ">",
                                        [E_GE] = ">="};
            int c = order(a, b);
            if (c == -2) {
                gust__template_expr_fail(
                    r, -EINVAL, e->line, "'%s' not supported between %s and %s",
                    sym[e->op], type_name(a), type_name(b));
                break;
            }
            bool res = e->op == E_LT ? c < 0 : e->op == E_LE ? c <= 0
                     : e->op == E_GT ? c > 0 : c >= 0;
            v = json_boolean(res);
        }
        break;
    }
    json_decref(a);
    json_decref(b);
    return v;
}
