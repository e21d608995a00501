/* Template renderer: walks the compiled node tree, evaluating the
 * pre-parsed expressions against the JSON context and local variables, and
 * writes to a growable buffer or through a write callback. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "template_internal.h"

/* Output for a write callback is gathered in a buffer this big first, so
 * that a template made of many small pieces costs few calls. */
#define FLUSH_SIZE 4096

static int flush(struct render *r)
{
    if (!r->write || !r->len)
        return 0;
    int rc = r->write(r->top, r->buf, r->len, r->wdata);
    r->len = 0;
    if (rc < 0) {
        r->hard = true;
        if (!r->err) {
            r->err = rc;
            snprintf(r->msg, sizeof r->msg, "%s: write callback failed: %d", r->file, rc);
        }
    }
    return rc < 0 ? rc : 0;
}

int gust__template_render_emit(struct render *r, const char *s, size_t n)
{
    if (!n)
        return 0;
    if (r->write && n >= FLUSH_SIZE) {
        int rc = flush(r);
        if (rc == 0 && (rc = r->write(r->top, s, n, r->wdata)) < 0) {
            r->hard = true;
            if (!r->err) {
                r->err = rc;
                snprintf(r->msg, sizeof r->msg, "%s: write callback failed: %d", r->file, rc);
            }
        }
        return rc < 0 ? rc : 0;
    }
    /* The buffer for gust_template_render() keeps a spare byte for the NUL. */
    size_t spare = r->write ? 0 : 1;
    if (r->len + n + spare > r->cap) {
        if (r->write) {
            int rc = flush(r);
            if (rc < 0)
                return rc;
        }
        if (r->len + n + spare > r->cap) {
            size_t cap = r->cap ? r->cap : 1024;
            while (cap < r->len + n + 1)
                cap *= 2;
            char *b = realloc(r->buf, cap);
            if (!b) {
                r->hard = true;
                gust__template_expr_fail(r, -ENOMEM, 0, "out of memory");
                return -ENOMEM;
            }
            r->buf = b;
            r->cap = cap;
        }
    }
    memcpy(r->buf + r->len, s, n);
    r->len += n;
    return 0;
}

json_t *gust__template_render_local_get(struct render *r, const char *name)
{
    for (size_t i = r->nlocals; i-- > 0;)
        if (strcmp(r->locals[i].name, name) == 0)
            return r->locals[i].value;
    return NULL;
}

/* Takes the reference to v. Locals are function-wide, as in Tornado's
 * generated Python: a {% set %} or loop variable stays visible after its
 * block ends. */
int gust__template_render_local_set(struct render *r, const char *name,
                                    json_t *v)
{
    for (size_t i = r->nlocals; i-- > 0;)
        if (strcmp(r->locals[i].name, name) == 0) {
            json_decref(r->locals[i].value);
            r->locals[i].value = v;
            return 0;
        }
    if (r->nlocals == r->caplocals) {
        size_t cap = r->caplocals ? r->caplocals * 2 : 8;
        struct tpl_local *l = realloc(r->locals, cap * sizeof *l);
        if (!l) {
            json_decref(v);
            return -ENOMEM;
        }
        r->locals = l;
        r->caplocals = cap;
    }
    r->locals[r->nlocals].name = name;
    r->locals[r->nlocals].value = v;
    r->nlocals++;
    return 0;
}

static int render_nodes(struct render *r, const gust_template *owner,
                        const struct node *n);

static int step(struct render *r, int line)
{
    if (r->limits.max_steps && ++r->steps > r->limits.max_steps) {
        r->hard = true;
        gust__template_expr_fail(r, -E2BIG, line,
                                 "template exceeded its step limit (%lu)",
                                 r->limits.max_steps);
        return -E2BIG;
    }
    return 0;
}

static int set_local(struct render *r, int line, const char *name, json_t *v)
{
    if (!v || gust__template_render_local_set(r, name, v) < 0) {
        r->hard = true;
        gust__template_expr_fail(r, -ENOMEM, line, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

/* Binds the loop variables for one item: one name takes the item (or an
 * object's key); two names take an object's key and value, or unpack a
 * two-item array. */
static int bind_item(struct render *r, const struct node *n, json_t *item, const char *key)
{
    if (!n->var2)
        return set_local(r, n->line, n->var1, key ? json_string(key) : json_incref(item));
    if (key) {
        if (set_local(r, n->line, n->var1, json_string(key)) < 0)
            return -ENOMEM;
        return set_local(r, n->line, n->var2, json_incref(item));
    }
    if (!json_is_array(item) || json_array_size(item) != 2) {
        gust__template_expr_fail(
            r, -EINVAL, n->line, "cannot unpack %s into '%s, %s'",
            json_is_array(item) ? "an array whose length is not 2"
                                : "a non-array",
            n->var1, n->var2);
        return -EINVAL;
    }
    if (set_local(r, n->line, n->var1, json_incref(json_array_get(item, 0))) < 0)
        return -ENOMEM;
    return set_local(r, n->line, n->var2, json_incref(json_array_get(item, 1)));
}

static int render_for(struct render *r, const gust_template *owner, const struct node *n)
{
    json_t *seq = gust__template_expr_eval(r, n->e, 0);
    if (!seq)
        return r->err;
    int rc = 0;
    if (json_is_array(seq)) {
        for (size_t i = 0; i < json_array_size(seq) && rc == 0; i++) {
            if ((rc = step(r, n->line)) < 0 ||
                (rc = bind_item(r, n, json_array_get(seq, i), NULL)) < 0 ||
                (rc = render_nodes(r, owner, n->body)) < 0)
                break;
            if (r->ctl == CTL_BREAK) {
                r->ctl = CTL_NONE;
                break;
            }
            r->ctl = CTL_NONE;
        }
    } else if (json_is_object(seq)) {
        /* Insertion order: Jansson keeps it, and so did the JSON text. */
        const char *key;
        json_t *v;
        json_object_foreach(seq, key, v) {
            if ((rc = step(r, n->line)) < 0 || (rc = bind_item(r, n, v, key)) < 0 ||
                (rc = render_nodes(r, owner, n->body)) < 0)
                break;
            if (r->ctl == CTL_BREAK) {
                r->ctl = CTL_NONE;
                break;
            }
            r->ctl = CTL_NONE;
        }
    } else {
        gust__template_expr_fail(
            r, -EINVAL, n->line, "cannot iterate over %s",
            json_is_string(seq) ? "a string"
                                : "a value that is not an array or object");
        rc = -EINVAL;
    }
    json_decref(seq);
    return rc;
}

static int render_template(struct render *r, const gust_template *t);

static int render_node(struct render *r, const gust_template *owner, const struct node *n)
{
    json_t *v;
    int rc;
    if ((rc = step(r, n->line)) < 0)
        return rc;
    switch (n->kind) {
    case N_TEXT:
        return gust__template_render_emit(r, n->text, n->len);
    case N_EXPR:
        if (!(v = gust__template_expr_eval(r, n->e, 0)))
            return r->err;
        rc = gust__template_filters_emit_value(r, v,
                                               owner->autoescape && !n->raw);
        json_decref(v);
        if (rc == -ENOMEM && !r->err) {
            r->hard = true;
            gust__template_expr_fail(r, rc, n->line, "out of memory");
        }
        return rc;
    case N_IF:
        for (;;) {
            if (!(v = gust__template_expr_eval(r, n->e, 0)))
                return r->err;
            bool yes = gust__template_expr_truthy(v);
            json_decref(v);
            if (yes)
                return render_nodes(r, owner, n->body);
            if (!n->orelse || !n->orelse->elif)
                return render_nodes(r, owner, n->orelse);
            n = n->orelse;
        }
    case N_FOR:
        return render_for(r, owner, n);
    case N_SET:
        if (!(v = gust__template_expr_eval(r, n->e, 0)))
            return r->err;
        return set_local(r, n->line, n->var1, v);
    case N_BLOCK:
        /* The most derived template that defines the block wins. */
        for (const gust_template *t = r->leaf; t; t = t->parent)
            for (const struct tpl_block *b = t->blocks; b; b = b->next)
                if (strcmp(b->name, n->name) == 0) {
                    const char *file = r->file;
                    r->file = t->name;
                    rc = render_nodes(r, t, b->body);
                    r->file = file;
                    return rc;
                }
        return render_nodes(r, owner, n->body);
    case N_INCLUDE: {
        const gust_template *leaf = r->leaf;
        const char *file = r->file;
        if (++r->include_depth > GUST_TEMPLATE_MAX_DEPTH) {
            r->hard = true;
            gust__template_expr_fail(r, -ELOOP, n->line,
                                     "includes nested too deeply");
            return -ELOOP;
        }
        rc = render_template(r, n->target);
        r->include_depth--;
        r->leaf = leaf;
        r->file = file;
        return rc;
    }
    case N_BREAK:
        r->ctl = CTL_BREAK;
        return 0;
    case N_CONTINUE:
        r->ctl = CTL_CONTINUE;
        return 0;
    case N_TRY:
        rc = render_nodes(r, owner, n->body);
        if (rc < 0 && !r->hard) {
            /* Output written before the error stays, as in Tornado. */
            const char *file = owner->name;
            r->err = 0;
            r->missing = false;
            r->msg[0] = 0;
            r->file = file;
            return render_nodes(r, owner, n->orelse);
        }
        return rc;
    }
    return 0;
}

static int render_nodes(struct render *r, const gust_template *owner,
                        const struct node *n)
{
    for (; n; n = n->next) {
        int rc = render_node(r, owner, n);
        if (rc < 0)
            return rc;
        if (r->ctl != CTL_NONE)
            return 0;
    }
    return 0;
}

/* A template that extends another renders its root ancestor's body, with
 * its own blocks (and its ancestors') filling the block slots. */
static int render_template(struct render *r, const gust_template *t)
{
    const gust_template *root = t;
    while (root->parent)
        root = root->parent;
    r->leaf = t;
    r->file = root->name;
    return render_nodes(r, root, root->body);
}

static int render(gust_template *t, const gust_template_limits *limits, json_t *ctx,
                  const gust_template_hooks *hooks,
                  gust_template_write_fn fn, void *data, char **out, size_t *len,
                  char *err, size_t errlen)
{
    if (out) {
        *out = NULL;
        *len = 0;
    }
    if (t->status < 0) {
        if (err != t->err)
            snprintf(err, errlen, "%s", t->err);
        return t->status;
    }
    if (ctx && !json_is_object(ctx)) {
        snprintf(err, errlen, "%s: the context must be a JSON object", t->name);
        return -EINVAL;
    }
    struct render r = {.top = t, .hooks = hooks, .write = fn, .wdata = data,
                       .ctx = ctx, .limits = *limits, .file = t->name};
    if (fn) {
        r.buf = malloc(FLUSH_SIZE);
        if (!r.buf) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        r.cap = FLUSH_SIZE;
    }
    int rc = render_template(&r, t);
    if (rc == 0 && r.err)
        rc = r.err;
    if (rc == 0)
        rc = fn ? flush(&r) : gust__template_render_emit(&r, "", 0);
    for (size_t i = 0; i < r.nlocals; i++)
        json_decref(r.locals[i].value);
    free(r.locals);
    if (rc < 0) {
        snprintf(err, errlen, "%s", r.msg[0] ? r.msg : "render failed");
        free(r.buf);
        return rc;
    }
    err[0] = 0;
    if (out) {
        if (!r.buf && !(r.buf = malloc(1))) {
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        r.buf[r.len] = 0; /* emit keeps one spare byte */
        *out = r.buf;
        *len = r.len;
    } else {
        free(r.buf);
    }
    return 0;
}

int gust__template_render(gust_template *t, const gust_template_limits *limits, json_t *ctx,
                     const gust_template_hooks *hooks,
                     gust_template_write_fn fn, void *data, char **out, size_t *len,
                     char *err, size_t errlen)
{
    return render(t, limits, ctx, hooks, fn, data, out, len, err, errlen);
}

int gust_template_render(gust_template *t, json_t *context, char **out, size_t *len)
{
    return render(t, &t->limits, context, NULL, NULL, NULL, out, len, t->err,
                  sizeof t->err);
}

int gust_template_render_with(gust_template *t, json_t *context,
                              const gust_template_hooks *hooks, char **out,
                              size_t *len)
{
    return render(t, &t->limits, context, hooks, NULL, NULL, out, len, t->err,
                  sizeof t->err);
}

int gust_template_render_to(gust_template *t, json_t *context,
                            gust_template_write_fn fn, void *data)
{
    return render(t, &t->limits, context, NULL, fn, data, NULL, NULL, t->err,
                  sizeof t->err);
}
