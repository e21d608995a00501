/* Templates (Tornado's tornado.template), with Jansson values as the context.
 *
 *     gust_template_loader *l = gust_template_loader_new("templates");
 *     json_t *ctx = json_pack("{s:s, s:[i,i]}", "title", "Hi", "items", 1, 2);
 *     char *html; size_t len;
 *     if (gust_template_loader_render(l, "page.html", ctx, &html, &len) < 0)
 *         fprintf(stderr, "%s\n", gust_template_loader_error(l));
 *     ...
 *     free(html); json_decref(ctx); gust_template_loader_free(l);
 *
 * Syntax (see docs/templates.md): {{ expr }} (HTML-escaped unless the file
 * says {% autoescape none %}), {% raw expr %}, {% if %}/{% elif %}/{% else %},
 * {% for x in xs %}, {% for k, v in obj %}, {% break %}, {% continue %},
 * {% set x = expr %}, {% try %}/{% except %}, {% extends "f" %} with
 * {% block name %}, {% include "f" %}, {% comment ... %}, {# ... #},
 * {% whitespace all|single|oneline %}, and {{! {%! {#! for literal braces.
 * Every block ends with {% end %}. Filters use call syntax:
 * {{ url_escape(q) }}, {{ json_encode(v) }}, {{ length(xs) }}, {{ default(a.b, "-") }},
 * {% raw linkify(text) %}; and, when rendered with hooks (as the web
 * layer's gust_handler_render does), {{ static_url("app.css") }} and
 * {{ reverse_url("item", id) }}.
 *
 * A template compiles once to a tree with pre-parsed expressions; rendering
 * never re-parses. Nothing here is global: every error message lives in the
 * template or loader that produced it. Objects are not thread-safe: use one
 * loader per thread (or a lock) when rendering from several threads.
 *
 * Error codes (every function that can fail returns 0 or one of these):
 *   -EINVAL   syntax error at compile time, or render error (undefined name,
 *             missing key, type error, division by zero, ...);
 *   -ELOOP    extends/include nested deeper than GUST_TEMPLATE_MAX_DEPTH, or
 *             cyclic;
 *   -E2BIG    render exceeded the step limit or a string/array grew past the
 *             value limit (gust_template_limits);
 *   -ENOENT   template file not found; -EPERM: name refused (absolute or
 *             escaping the root with ".."); -EFBIG: file too large;
 *   -ENOMEM   out of memory;
 *   any negative code returned by a write callback, passed through.
 * Messages name the file and line: "base.html:12: expected {% end %} for
 * {% if %} opened at line 8", "page.html:3: name 'usr' is not defined".
 */
#ifndef GUST_TEMPLATE_H
#define GUST_TEMPLATE_H

#include "gust/common.h"

#include <stddef.h>

#include <jansson.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Maximum nesting of extends/include chains at load time. */
#define GUST_TEMPLATE_MAX_DEPTH 32

typedef struct gust_template gust_template;
typedef struct gust_template_loader gust_template_loader;

/* Limits applied while rendering, so that a template written by a user cannot
 * run forever or exhaust memory. 0 in a field means "no limit". */
typedef struct gust_template_limits {
    /* Nodes executed plus loop iterations. Default 10,000,000. */
    unsigned long max_steps;
    /* Largest string or array an expression may build ("+", range(),
     * filters), in bytes or items. Default 16 MiB. */
    size_t max_value;
} gust_template_limits;

/* Receives rendered output. t is the template being rendered (the one passed
 * to the render call, or the loaded one for loader renders). Output arrives
 * in pieces, in order, buffered (up to a few KiB per call). Runs only inside
 * the render call that was given it. Return 0 to continue, or a negative code
 * to stop rendering: the render call then returns that code. */
typedef int (*gust_template_write_fn)(const gust_template *t, const char *buf,
                                      size_t len, void *data);

/* What a template may use that belongs to the application rather than to
 * the template (Tornado's handler namespace). static_url(path) and
 * reverse_url(name, arg...) return the URL, valid at least until the
 * render call returns (an arena's string, for instance), or NULL when they
 * cannot (no such route, wrong argument count, out of memory): the render
 * then fails with -EINVAL and says which call. lookup gives the value of a
 * name that is neither a local variable nor in the context, as a new
 * reference (the render drops it), or NULL: not defined; it lets an
 * application offer names (request, current_user) without copying them
 * into every context. Any function may be NULL; a template calling a
 * missing one fails as above. They run inside the render call only. */
typedef struct gust_template_hooks {
    const char *(*static_url)(void *data, const char *path);
    const char *(*reverse_url)(void *data, const char *name,
                               const char *const *args, size_t nargs);
    json_t *(*lookup)(void *data, const char *name);
    void *data;
} gust_template_hooks;

/* ---- Templates compiled from strings -------------------------------- */

/* Compiles source (NUL-terminated) named name (used in error messages and to
 * pick the default whitespace mode: "single" for names ending in .html or .js,
 * "all" otherwise; NULL means "<string>"). The template is independent of any
 * loader, so {% extends %} and {% include %} are syntax errors in it.
 * Returns the template, or NULL when out of memory. A template is returned
 * even when the source has a syntax error: gust_template_status() then gives
 * the code and gust_template_error() the message, and rendering it returns the
 * same code. Free with gust_template_free(). */
GUST_EXTERN gust_template *gust_template_new_from_string(const char *source,
                                                         const char *name);
/* As gust_template_new_from_string(), for len bytes that may contain NULs. */
GUST_EXTERN gust_template *gust_template_new_from_buffer(const char *source,
                                                         size_t len,
                                                         const char *name);

/* Frees a template made by gust_template_new_from_string/_buffer. NULL is
 * ignored. Templates owned by a loader must not be freed with this. */
GUST_EXTERN void gust_template_free(gust_template *t);

/* 0 if the template compiled, else the compile error code. */
GUST_EXTERN int gust_template_status(const gust_template *t);

/* The message of the last error (compile or render) of t, "" when none. The
 * string belongs to t and is valid until its next render or its free. */
GUST_EXTERN const char *gust_template_error(const gust_template *t);

/* The template's name as given at compile or load time; owned by t. */
GUST_EXTERN const char *gust_template_name(const gust_template *t);

/* Replaces t's render limits (copied). NULL restores the defaults. */
GUST_EXTERN void gust_template_set_limits(gust_template *t,
                                          const gust_template_limits *limits);

/* Renders t with context (a JSON object, or NULL for an empty context; it is
 * only read, never modified or kept). On success returns 0 and sets *out to a
 * malloc'd, NUL-terminated buffer of *len bytes (the NUL not counted) that the
 * caller frees with free(). On failure returns a code, sets *out to NULL and
 * *len to 0, and gust_template_error(t) says why. */
GUST_EXTERN int gust_template_render(gust_template *t, json_t *context,
                                     char **out, size_t *len);

/* As gust_template_render(), with hooks (borrowed; NULL: none) for
 * static_url() and reverse_url(). */
GUST_EXTERN int gust_template_render_with(gust_template *t, json_t *context,
                                          const gust_template_hooks *hooks,
                                          char **out, size_t *len);

/* Renders t through fn (see gust_template_write_fn). Output already passed
 * to fn before an error stays written. Returns 0 or a code. */
GUST_EXTERN int gust_template_render_to(gust_template *t, json_t *context,
                                        gust_template_write_fn fn, void *data);

/* ---- Loader: templates from a directory, with a cache --------------- */

/* A loader for files under root_dir (copied; NULL: a loader that only knows
 * the templates given to gust_template_loader_add_string()). Returns NULL when
 * out of memory. Free with gust_template_loader_free(). */
GUST_EXTERN gust_template_loader *gust_template_loader_new(
    const char *root_dir);

/* Frees the loader and every template it has compiled. NULL is ignored. */
GUST_EXTERN void gust_template_loader_free(gust_template_loader *l);

/* Registers source (copied) under name, as if it were a file (a registered
 * name takes precedence over the directory). Resets the compiled cache, since
 * any cached template may have included the old version. Returns 0, -EPERM
 * for a refused name, or -ENOMEM. */
GUST_EXTERN int gust_template_loader_add_string(gust_template_loader *l,
                                                const char *name,
                                                const char *source);

/* Drops every compiled template, so the next load re-reads the files.
 * Pointers returned by earlier loads become invalid. */
GUST_EXTERN void gust_template_loader_reset(gust_template_loader *l);

/* Replaces the render limits used by loader renders and given to templates
 * it compiles from now on (copied). NULL restores the defaults. */
GUST_EXTERN void gust_template_loader_set_limits(
    gust_template_loader *l, const gust_template_limits *limits);

/* Loads name ("dir/page.html", relative to the root; absolute names and ".."
 * components are refused with -EPERM), compiling it and everything it extends
 * or includes on first use and caching the result. On success sets *out to
 * the template, which the loader owns: valid until gust_template_loader_reset()
 * or _free(); do not free it. Returns 0 or a code (message in
 * gust_template_loader_error()). */
GUST_EXTERN int gust_template_loader_load(gust_template_loader *l,
                                          const char *name,
                                          gust_template **out);

/* Loads name and renders it with context; *out and *len as in
 * gust_template_render() (caller frees *out with free()). Returns 0 or a
 * code; the message is in gust_template_loader_error(). */
GUST_EXTERN int gust_template_loader_render(gust_template_loader *l,
                                            const char *name, json_t *context,
                                            char **out, size_t *len);

/* The same with hooks (borrowed; NULL: none) for static_url() and
 * reverse_url(). */
GUST_EXTERN int gust_template_loader_render_with(
    gust_template_loader *l, const char *name, json_t *context,
    const gust_template_hooks *hooks, char **out, size_t *len);

/* Loads name and renders it through fn, as gust_template_render_to(). */
GUST_EXTERN int gust_template_loader_render_to(gust_template_loader *l,
                                               const char *name,
                                               json_t *context,
                                               gust_template_write_fn fn,
                                               void *data);

/* The message of the loader's last error, "" when none. Owned by the loader;
 * valid until its next call. */
GUST_EXTERN const char *gust_template_loader_error(
    const gust_template_loader *l);

#ifdef __cplusplus
}
#endif

#endif /* GUST_TEMPLATE_H */
