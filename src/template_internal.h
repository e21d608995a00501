/* Internal contract between the template compiler (template_parse.c,
 * template_expr.c), the renderer (template_render.c, with the filters in
 * template_filters.c and template_linkify.c) and the loader
 * (template_loader.c); web_output.c uses its float formatting for
 * write_json. Not installed. */
#ifndef GUST_TEMPLATE_INTERNAL_H
#define GUST_TEMPLATE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "gust/template.h"

#define TPL_ERR_MAX 512
/* Expressions nest at most this deep: the parser and evaluator recurse. */
#define TPL_MAX_EXPR_DEPTH 64
/* Blocks ({% if %}, {% for %}, ...) nest at most this deep. */
#define TPL_MAX_BLOCK_DEPTH 100

/* Bump allocator: a template's nodes, expressions and strings live and die
 * together, so one free releases them all. */
struct tpl_chunk;
struct tpl_arena {
    struct tpl_chunk *head;
};
void *gust__template_parse_alloc(struct tpl_arena *a, size_t size);
char *gust__template_parse_strndup(struct tpl_arena *a, const char *s,
                                   size_t n);
void gust__template_parse_arena_free(struct tpl_arena *a);

enum expr_op {
    E_CONST, /* konst */
    E_NAME, /* name */
    E_LIST, /* items */
    E_ATTR, /* a.name */
    E_INDEX, /* a[b] */
    E_CALL, /* fn(items) */
    E_NEG,
    E_POS,
    E_NOT,
    E_AND,
    E_OR,
    E_COND, /* b if a else c */
    E_ADD,
    E_SUB,
    E_MUL,
    E_DIV,
    E_FLOORDIV,
    E_MOD,
    E_EQ,
    E_NE,
    E_LT,
    E_LE,
    E_GT,
    E_GE,
    E_IN,
    E_NOTIN,
};

struct expr {
    enum expr_op op;
    int line;
    int fn; /* E_CALL: builtin id */
    const char *name; /* E_NAME, E_ATTR */
    json_t *konst; /* E_CONST: borrowed from the template's constants */
    struct expr *a, *b, *c;
    struct expr **items; /* E_LIST, E_CALL */
    int nitems;
};

enum node_kind {
    N_TEXT,
    N_EXPR,
    N_IF,
    N_FOR,
    N_SET,
    N_BLOCK,
    N_INCLUDE,
    N_BREAK,
    N_CONTINUE,
    N_TRY,
};

struct node {
    enum node_kind kind;
    int line;
    struct node *next;
    const char *text; /* N_TEXT */
    size_t len; /* N_TEXT */
    bool raw; /* N_EXPR: {% raw %} */
    bool elif; /* N_IF reached as the orelse of another: an {% elif %} */
    struct expr *e; /* N_EXPR, N_IF (condition), N_FOR (iterable), N_SET */
    struct node *body; /* N_IF, N_FOR, N_BLOCK, N_TRY */
    struct node *orelse; /* N_IF: next elif (an N_IF) or else body; N_TRY: except */
    const char *var1, *var2; /* N_FOR (var2 may be NULL), N_SET (var1) */
    const char *name; /* N_BLOCK */
    gust_template *target; /* N_INCLUDE */
};

struct tpl_block {
    const char *name;
    struct node *body;
    struct tpl_block *next;
};

struct gust_template {
    char *name;
    struct tpl_arena arena;
    json_t *consts; /* array owning every constant of the expressions */
    struct node *body;
    gust_template *parent; /* {% extends %} */
    struct tpl_block *blocks;
    bool autoescape;
    bool owned_by_loader;
    bool loading; /* being compiled by the loader: a cycle if reached again */
    int status;
    gust_template_limits limits;
    char err[TPL_ERR_MAX];
    gust_template *hash_next; /* loader cache chain */
};

/* Resolves {% extends %} / {% include %} names while compiling. On failure
 * *located says whether err already starts with "file:line: " (an error
 * inside the named template) or not (the name itself failed). */
typedef int (*tpl_resolve_fn)(void *data, const char *name, int depth,
                              gust_template **out, char *err, size_t errlen,
                              bool *located);

/* Compiles src into t (already zeroed, name set). resolve may be NULL (no
 * extends/include allowed). Returns 0 or a code, message in err. */
int gust__template_parse_compile(gust_template *t, const char *src, size_t len,
                                 tpl_resolve_fn resolve, void *rdata, int depth,
                                 char *err, size_t errlen);
gust_template *gust__template_parse_new(const char *name);
void gust__template_parse_destroy(gust_template *t);
void gust__template_parse_default_limits(gust_template_limits *l);

/* Expression parser: parses src[0..len) (one tag's contents) starting at
 * line. Returns the expression or NULL with a message in err. */
struct expr_parser {
    gust_template *t;
    const char *file;
    const char *p, *end;
    int line;
    int depth;
    char *err;
    size_t errlen;
};
struct expr *gust__template_expr_parse(struct expr_parser *ep);
/* Skips spaces; true when the parser is at the end of its input. */
bool gust__template_expr_at_end(struct expr_parser *ep);

enum { CTL_NONE, CTL_BREAK, CTL_CONTINUE };

/* Render state shared by template_render.c and template_expr.c. */
struct tpl_local {
    const char *name;
    json_t *value;
};

/* Most arguments a builtin takes (reverse_url: a name and 8 groups). */
#define TPL_MAX_CALL_ARGS 9

struct render {
    gust_template *top;
    const gust_template_hooks *hooks; /* static_url, reverse_url; may be NULL */
    gust_template_write_fn write;
    void *wdata;
    /* output: either a growable buffer (write == NULL) or a flush buffer */
    char *buf;
    size_t len, cap;
    json_t *ctx;
    struct tpl_local *locals;
    size_t nlocals, caplocals;
    const gust_template *leaf; /* where block overrides are looked up */
    const char *file; /* template whose nodes are running, for messages */
    unsigned long steps;
    gust_template_limits limits;
    int err;
    bool missing; /* the error is an undefined name/key/index */
    bool hard; /* the error must not be caught by {% try %} (write, limits) */
    int ctl; /* CTL_BREAK / CTL_CONTINUE pending */
    int include_depth;
    char msg[TPL_ERR_MAX];
};

/* Renders t (status 0) with limits; output to fn, or to *out / *len when fn
 * is NULL. The message of a failure goes to err. */
int gust__template_render(gust_template *t, const gust_template_limits *limits, json_t *ctx,
                     const gust_template_hooks *hooks,
                     gust_template_write_fn fn, void *data, char **out, size_t *len,
                     char *err, size_t errlen);

/* Evaluates e; returns a new reference or NULL with r->err set. */
json_t *gust__template_expr_eval(struct render *r, const struct expr *e,
                                 int depth);
bool gust__template_expr_truthy(const json_t *v);
/* Sets the render error (code, message "file:line: ..."); returns NULL. */
void *gust__template_expr_fail(struct render *r, int code, int line,
                               const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Appends v's text form (str() in Python) to r's output, escaped or not. */
int gust__template_filters_emit_value(struct render *r, const json_t *v, bool escape);
int gust__template_render_emit(struct render *r, const char *s, size_t n);
/* Python's repr() of a float into out (n >= 32): the shortest text that
 * reads back the same ("0.3", "1.0", "1e+20"). Also used by the web
 * layer's write_json. */
void gust__template_filters_format_real(double d, char *out, size_t n);
/* The text form of v as a new malloc'd string (*n bytes), or NULL on OOM. */
char *gust__template_filters_to_text(const json_t *v, size_t *n);
/* Growable byte string for building results; failed turns true (and
 * later adds do nothing) when out of memory. The caller frees p. */
struct sbuf {
    char *p;
    size_t n, cap;
    bool failed;
};
void gust__template_filters_sb_add(struct sbuf *b, const char *s, size_t n);
/* Appends s HTML-escaped (& < > " '). */
void gust__template_filters_sb_escape(struct sbuf *b, const char *s, size_t n);

/* linkify(text[, shorten, extra_params, require_protocol,
 * permitted_protocols]) (template_linkify.c). */
json_t *gust__template_linkify(struct render *r, int line, json_t **args, int nargs);
/* Evaluates a call of a builtin (E_CALL). */
json_t *gust__template_filters_call(struct render *r, const struct expr *e,
                                    int depth);
/* Looks up a builtin function by name; returns its id or -1, and its arity. */
int gust__template_filters_builtin(const char *name, size_t n, int *min_args,
                                   int *max_args);
json_t *gust__template_render_local_get(struct render *r, const char *name);
int gust__template_render_local_set(struct render *r, const char *name,
                                    json_t *v);

#endif /* GUST_TEMPLATE_INTERNAL_H */
