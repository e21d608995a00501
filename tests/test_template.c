/* Templates: syntax, expressions, filters, whitespace, inheritance, the
 * loader and its cache, errors with file and line, limits. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gust/template.h"

/* The fixtures sit beside this file. */
static char fixtures[4096];

static void set_fixtures(void)
{
    snprintf(fixtures, sizeof fixtures, "%s", __FILE__);
    char *slash = strrchr(fixtures, '/');
    if (slash)
        snprintf(slash + 1, sizeof fixtures - (size_t)(slash + 1 - fixtures), "templates");
    else
        snprintf(fixtures, sizeof fixtures, "templates");
}

static json_t *ctx_of(const char *json)
{
    if (!json)
        return NULL;
    json_error_t e;
    json_t *v = json_loads(json, 0, &e);
    assert_non_null(v);
    return v;
}

/* Renders src (named name) against the JSON text ctx; returns the output
 * (caller frees) or NULL, with the code in *rc and the message in msg. */
static char *render_named(const char *src, const char *name, const char *ctx, int *rc,
                          char *msg, size_t msglen)
{
    gust_template *t = gust_template_new_from_string(src, name);
    assert_non_null(t);
    json_t *c = ctx_of(ctx);
    char *out = NULL;
    size_t len = 0;
    *rc = gust_template_render(t, c, &out, &len);
    if (*rc == 0)
        assert_int_equal(strlen(out), len);
    else
        assert_null(out);
    snprintf(msg, msglen, "%s", gust_template_error(t));
    json_decref(c);
    gust_template_free(t);
    return out;
}

static void check(const char *src, const char *ctx, const char *want)
{
    int rc;
    char msg[512];
    char *out = render_named(src, "t.txt", ctx, &rc, msg, sizeof msg);
    if (rc != 0)
        fail_msg("render of '%s' failed: %s", src, msg);
    if (strcmp(out, want) != 0)
        fail_msg("'%s' rendered '%s', want '%s'", src, out, want);
    free(out);
}

/* Checks that src fails (compile or render) with code and a message
 * containing want. */
static void check_error(const char *src, const char *ctx, int code, const char *want)
{
    int rc;
    char msg[512];
    char *out = render_named(src, "t.txt", ctx, &rc, msg, sizeof msg);
    if (rc == 0)
        fail_msg("'%s' rendered '%s', want an error", src, out);
    assert_int_equal(rc, code);
    if (!strstr(msg, want))
        fail_msg("'%s' failed with '%s', want '%s'", src, msg, want);
}

static void test_escaping(void **state)
{
    (void)state;
    check("{{ s }}", "{\"s\": \"<a href=\\\"x\\\">Tom & 'Jerry'</a>\"}",
          "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jerry&#39;&lt;/a&gt;");
    check("{% raw s %}", "{\"s\": \"<b>&</b>\"}", "<b>&</b>");
    check("{% autoescape None %}{{ s }}", "{\"s\": \"<b>&</b>\"}", "<b>&</b>");
    /* File-level, as in Tornado: the directive covers the whole file. */
    check("{{ s }}{% autoescape none %}", "{\"s\": \"<i>\"}", "<i>");
    check("{% autoescape xhtml_escape %}{{ s }}", "{\"s\": \"<i>\"}", "&lt;i&gt;");
    check("{% autoescape none %}{{ escape(s) }}", "{\"s\": \"<i>\"}", "&lt;i&gt;");
    check("{{ n }} {{ f }} {{ t }} {{ z }}", "{\"n\": 42, \"f\": 2.5, \"t\": true, \"z\": null}",
          "42 2.5 True None");
}

static void test_if(void **state)
{
    (void)state;
    const char *src = "{% if n == 1 %}one{% elif n == 2 %}two{% elif n == 3 %}three"
                      "{% else %}many{% end %}";
    check(src, "{\"n\": 1}", "one");
    check(src, "{\"n\": 2}", "two");
    check(src, "{\"n\": 3}", "three");
    check(src, "{\"n\": 9}", "many");
    check("{% if x %}yes{% end %}", "{\"x\": false}", "");
    check("{% if x %}a{% else %}{% if y %}b{% else %}c{% end %}{% end %}",
          "{\"x\": 0, \"y\": 0}", "c");
}

static void test_for(void **state)
{
    (void)state;
    check("{% for x in xs %}{{ x }},{% end %}", "{\"xs\": [1, \"a\", 2.5]}", "1,a,2.5,");
    check("{% for x in xs %}{{ x }}{% end %}", "{\"xs\": []}", "");
    /* Objects: keys in insertion order; two names take key and value. */
    check("{% for k, v in o %}{{ k }}={{ v }};{% end %}", "{\"o\": {\"z\": 1, \"a\": 2, \"m\": 3}}",
          "z=1;a=2;m=3;");
    check("{% for k in o %}{{ k }}{% end %}", "{\"o\": {\"b\": 1, \"a\": 2}}", "ba");
    check("{% for a, b in pairs %}{{ a }}{{ b }} {% end %}", "{\"pairs\": [[1, 2], [3, 4]]}",
          "12 34 ");
    check("{% for row in rows %}[{% for c in row %}{{ c }}{% end %}]{% end %}",
          "{\"rows\": [[1, 2], [], [3]]}", "[12][][3]");
    check("{% for i in range(3) %}{{ i }}{% end %}|{% for i in range(5, 1, -2) %}{{ i }}{% end %}",
          NULL, "012|53");
    /* Loop variables stay set after the loop, as in Python. */
    check("{% for x in xs %}{% end %}{{ x }}", "{\"xs\": [7, 8]}", "8");
    check_error("{% for x in s %}{% end %}", "{\"s\": \"abc\"}", -EINVAL, "cannot iterate");
}

static void test_break_continue(void **state)
{
    (void)state;
    check("{% for i in range(10) %}{% if i == 1 %}{% continue %}{% end %}"
          "{% if i == 4 %}{% break %}{% end %}{{ i }}{% end %}",
          NULL, "023");
    /* break leaves only the innermost loop. */
    check("{% for a in range(3) %}{% for b in range(3) %}{% if b == 1 %}{% break %}{% end %}"
          "{{ a }}{{ b }} {% end %}{% end %}",
          NULL, "00 10 20 ");
    check_error("{% break %}", NULL, -EINVAL, "t.txt:1: {% break %} outside a loop");
}

static void test_set(void **state)
{
    (void)state;
    check("{% set x = 1 + 2 %}{{ x }}", NULL, "3");
    check("{% set name = \"local\" %}{{ name }}", "{\"name\": \"ctx\"}", "local");
    check("{% set total = 0 %}{% for n in ns %}{% set total = total + n %}{% end %}{{ total }}",
          "{\"ns\": [1, 2, 3, 4]}", "10");
    check_error("{% set x == 1 %}", NULL, -EINVAL, "expected {% set name = expr %}");
}

static void test_try(void **state)
{
    (void)state;
    check("{% try %}a{{ nope }}b{% except %}caught{% end %}", NULL, "acaught");
    check("{% try %}fine{% except %}caught{% end %}", NULL, "fine");
}

static void test_expressions(void **state)
{
    (void)state;
    const char *ctx = "{\"user\": {\"name\": \"Ann\", \"tags\": [\"a\", \"b\"]},"
                      " \"items\": [10, 20, 30], \"i\": 1, \"key\": \"name\"}";
    check("{{ user.name }} {{ items[0] }} {{ items[i] }} {{ items[-1] }} {{ user[\"name\"] }}"
          " {{ user[key] }} {{ user.tags[1] }}",
          ctx, "Ann 10 20 30 Ann Ann b");
    check("{{ 1 + 2 }} {{ 7 - 10 }} {{ 6 * 7 }} {{ 7 / 2 }} {{ 7 // 2 }} {{ -7 // 2 }}"
          " {{ 7 % 3 }} {{ -7 % 3 }} {{ 2 * (3 + 4) }} {{ -(2) }} {{ 1.5 + 1 }}",
          NULL, "3 -3 42 3.5 3 -4 1 2 14 -2 2.5");
    check("{{ \"ab\" + \"cd\" }} {{ [1] + [2] }}", NULL, "abcd [1, 2]");
    check("{{ 1 == 1.0 }} {{ 1 != 2 }} {{ 1 < 2 }} {{ 2 <= 2 }} {{ 3 > 4 }} {{ 3 >= 4 }}"
          " {{ \"abc\" < \"abd\" }} {{ \"b\" > \"abc\" }} {{ \"x\" == \"x\" }}",
          NULL, "True True True True False False True True True");
    check("{{ \"ell\" in \"hello\" }} {{ 20 in items }} {{ 5 in items }} {{ \"name\" in user }}"
          " {{ \"age\" not in user }}",
          ctx, "True True False True True");
    /* Python truthiness and short-circuit: the failing name is never read. */
    check("{{ not \"\" }} {{ not [] }} {{ not e }} {{ not 0 }} {{ not 0.0 }} {{ not None }}"
          " {{ not \"x\" }} {{ not [0] }}",
          "{\"e\": {}}", "True True True True True True False False");
    check("{{ 0 or \"dflt\" }} {{ 2 and 3 }} {{ false and undefined_name }}"
          " {{ true or undefined_name }}",
          NULL, "dflt 3 False True");
    check("{{ \"a\\n\\t\\\"\\u00e9\\x41\" }}", NULL, "a\n\t&quot;\xc3\xa9" "A");
    check("{{ 'single' }} {{ 12 }} {{ -3 }} {{ 0.25 }} {{ 1e3 }} {{ True }} {{ false }}"
          " {{ None }} {{ null }}",
          NULL, "single 12 -3 0.25 1000.0 True False None None");
    check("{{ \"yes\" if 1 < 2 else \"no\" }}", NULL, "yes");
    check("{{ [1, \"a\", [true]] }}", NULL, "[1, &quot;a&quot;, [true]]");
    check_error("{{ 1 / 0 }}", NULL, -EINVAL, "division by zero");
    check_error("{{ 9223372036854775807 + 1 }}", NULL, -EINVAL, "integer overflow");
    check_error("{{ 1 < \"a\" }}", NULL, -EINVAL, "'<' not supported between int and string");
    check_error("{{ 1 + \"a\" }}", NULL, -EINVAL, "unsupported operand types for +");
    check_error("{{ items[5] }}", ctx, -EINVAL, "index 5 out of range");
    check_error("{{ user.age }}", ctx, -EINVAL, "key 'age' not found");
    check_error("{{ 1 < 2 < 3 }}", NULL, -EINVAL, "chained comparisons");
}

static void test_filters(void **state)
{
    (void)state;
    const char *ctx = "{\"s\": \"a b&c/\xc3\xa9\", \"o\": {\"x\": \"</script>\", \"y\": [1, 2.5]},"
                      " \"xs\": [1, 2, 3]}";
    check("{{ url_escape(s) }} {{ url_escape(s, False) }}", ctx,
          "a+b%26c%2F%C3%A9 a%20b%26c/%C3%A9");
    check("{% raw json_encode(o) %}", ctx, "{\"x\": \"<\\/script>\", \"y\": [1, 2.5]}");
    check("{{ json_encode(\"<\") }}", NULL, "&quot;&lt;&quot;");
    check("{{ length(s) }} {{ len(xs) }} {{ length(o) }} {{ length(\"\") }}", ctx, "7 3 2 0");
    check("{{ default(nope, \"-\") }} {{ default(o.z, 0) }} {{ default(xs[9], \"none\") }}"
          " {{ default(o.x, 1) }}|{{ default(nope) }}|",
          ctx, "- 0 none &lt;/script&gt;||");
    check("{{ upper(\"abC\") }} {{ lower(\"ABc\") }} {{ squeeze(\"  a \\n  b  \") }}", NULL,
          "ABC abc a b");
    check("{{ str(1) + \"x\" }} {{ int(\"42\") + 1 }} {{ int(2.9) }} {{ float(\"1.5\") }}", NULL,
          "1x 43 2 1.5");
    check("{{ join(xs, \", \") }} {{ join([\"a\", \"b\"]) }}", ctx, "1, 2, 3 ab");
    check("{{ escape(\"<&>\") }}", NULL, "&amp;lt;&amp;amp;&amp;gt;");
    check_error("{{ nosuch(1) }}", NULL, -EINVAL, "unknown function 'nosuch'");
    check_error("{{ length(1, 2) }}", NULL, -EINVAL, "length() takes 1 to 1 arguments, 2 given");
    check_error("{{ length(3) }}", NULL, -EINVAL, "length() of a value without length");
}

static void check_named(const char *src, const char *name, const char *want)
{
    int rc;
    char msg[512];
    char *out = render_named(src, name, NULL, &rc, msg, sizeof msg);
    if (rc != 0)
        fail_msg("%s", msg);
    if (strcmp(out, want) != 0)
        fail_msg("'%s' rendered '%s', want '%s'", src, out, want);
    free(out);
}

static void test_whitespace(void **state)
{
    (void)state;
    const char *src = "a  \t b\n\n   c \n d";
    check_named(src, "x.txt", src); /* "all" for non-HTML names */
    check_named(src, "x.html", "a b\nc\nd");
    check_named(src, "x.js", "a b\nc\nd");
    check_named("{% whitespace oneline %}a  \n\n b", "x.txt", "a b");
    check_named("{% whitespace all %}a  \n\n b", "x.html", "a  \n\n b");
    check_named("a  b{% whitespace single %}c  d", "x.txt", "a  bc d");
    check_error("{% whitespace some %}", NULL, -EINVAL, "takes all, single or oneline");
}

static void test_comments_and_literals(void **state)
{
    (void)state;
    check("a{# a comment {{ x }} #}b{% comment ignored {{ y }} %}c", NULL, "abc");
    check("{{! x }} {%! if %} {#! c #}", NULL, "{{ x }} {% if %} {# c #}");
    check("{{{ 1 }}}", NULL, "{1}");
    check("a { b %} c", NULL, "a { b %} c");
}

static gust_template_loader *fixture_loader(void)
{
    gust_template_loader *l = gust_template_loader_new(fixtures);
    assert_non_null(l);
    return l;
}

static void check_load(gust_template_loader *l, const char *name, const char *ctx,
                       const char *want)
{
    json_t *c = ctx_of(ctx);
    char *out;
    size_t len;
    int rc = gust_template_loader_render(l, name, c, &out, &len);
    json_decref(c);
    if (rc != 0)
        fail_msg("%s: %s", name, gust_template_loader_error(l));
    if (strcmp(out, want) != 0)
        fail_msg("%s rendered '%s', want '%s'", name, out, want);
    free(out);
}

static void test_extends(void **state)
{
    (void)state;
    gust_template_loader *l = fixture_loader();
    check_load(l, "base.html", NULL,
               "<title>Default</title>\n<body>base body</body>\n<footer>base footer</footer>\n");
    /* Two levels; text outside blocks in the child is ignored. */
    check_load(l, "child.html", "{\"name\": \"Ann\"}",
               "<title>Child</title>\n<body>child body, Ann</body>\n"
               "<footer>base footer</footer>\n");
    /* Three levels: the most derived block wins, the others fall through. */
    check_load(l, "grandchild.html", "{\"name\": \"Bo\"}",
               "<title>Child</title>\n<body>grand body, Bo</body>\n"
               "<footer>base footer</footer>\n");
    gust_template_loader_free(l);
}

static void test_include(void **state)
{
    (void)state;
    gust_template_loader *l = fixture_loader();
    /* The include sees the context and shares variables with its includer. */
    check_load(l, "include.html", "{\"name\": \"Cy\"}", "before [Cy] after set-in-partial");
    check_load(l, "sub/item.html", "{\"name\": \"D\"}", "sub: D");
    gust_template_loader_free(l);
}

static void test_loader_cache(void **state)
{
    (void)state;
    gust_template_loader *l = gust_template_loader_new(NULL);
    assert_non_null(l);
    assert_int_equal(gust_template_loader_add_string(l, "a.html", "v1 {{ x }}"), 0);
    gust_template *t1, *t2, *t3;
    assert_int_equal(gust_template_loader_load(l, "a.html", &t1), 0);
    assert_int_equal(gust_template_loader_load(l, "a.html", &t2), 0);
    assert_ptr_equal(t1, t2);
    assert_string_equal(gust_template_name(t1), "a.html");
    check_load(l, "a.html", "{\"x\": 1}", "v1 1");

    /* A changed source is seen only after a reset (add_string resets). */
    assert_int_equal(gust_template_loader_add_string(l, "a.html", "v2 {{ x }}"), 0);
    check_load(l, "a.html", "{\"x\": 2}", "v2 2");
    gust_template_loader_free(l);

    /* Files: the cache keeps the compiled template until reset. */
    char dir[] = "/tmp/gust_tpl_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/p.html", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("first", f);
    fclose(f);
    l = gust_template_loader_new(dir);
    assert_int_equal(gust_template_loader_load(l, "p.html", &t1), 0);
    check_load(l, "p.html", NULL, "first");
    f = fopen(path, "w");
    assert_non_null(f);
    fputs("second", f);
    fclose(f);
    assert_int_equal(gust_template_loader_load(l, "p.html", &t2), 0);
    assert_ptr_equal(t1, t2);
    check_load(l, "p.html", NULL, "first");
    gust_template_loader_reset(l);
    assert_int_equal(gust_template_loader_load(l, "p.html", &t3), 0);
    check_load(l, "p.html", NULL, "second");
    gust_template_loader_free(l);
    remove(path);
    rmdir(dir);
}

static void test_loader_refuses_escapes(void **state)
{
    (void)state;
    gust_template_loader *l = fixture_loader();
    gust_template *t;
    assert_int_equal(gust_template_loader_load(l, "../test_template.c", &t), -EPERM);
    assert_int_equal(gust_template_loader_load(l, "sub/../../x.html", &t), -EPERM);
    assert_int_equal(gust_template_loader_load(l, "/etc/passwd", &t), -EPERM);
    assert_non_null(strstr(gust_template_loader_error(l), "refused"));
    assert_int_equal(gust_template_loader_load(l, "", &t), -EPERM);
    assert_int_equal(gust_template_loader_load(l, "nope.html", &t), -ENOENT);
    assert_non_null(strstr(gust_template_loader_error(l), "'nope.html' not found"));
    assert_int_equal(gust_template_loader_add_string(l, "inc.html", "{% include \"../a\" %}"), 0);
    assert_int_equal(gust_template_loader_load(l, "inc.html", &t), -EPERM);
    /* A template dir entry that is a directory is not a template. */
    assert_int_equal(gust_template_loader_load(l, "sub", &t), -ENOENT);
    gust_template_loader_free(l);
}

static void test_loader_errors(void **state)
{
    (void)state;
    gust_template_loader *l = fixture_loader();
    gust_template *t;
    assert_int_equal(gust_template_loader_load(l, "cycle_a.html", &t), -ELOOP);
    assert_non_null(strstr(gust_template_loader_error(l), "includes itself"));
    assert_int_equal(gust_template_loader_load(l, "orphan.html", &t), -ENOENT);
    assert_string_equal(gust_template_loader_error(l),
                        "orphan.html:1: in {% extends \"missing_parent.html\" %}: "
                        "template 'missing_parent.html' not found");
    char *out;
    size_t len;
    json_t *c = ctx_of("{\"user\": {\"name\": \"x\"}}");
    assert_int_equal(gust_template_loader_render(l, "render_error.html", c, &out, &len), -EINVAL);
    assert_null(out);
    assert_string_equal(gust_template_loader_error(l),
                        "render_error.html:3: name 'missing_name' is not defined");
    json_decref(c);
    assert_int_equal(gust_template_loader_load(l, "unclosed.html", &t), -EINVAL);
    assert_string_equal(gust_template_loader_error(l),
                        "unclosed.html:8: expected {% end %} for {% if %} opened at line 2");
    gust_template_loader_free(l);
}

static void test_syntax_errors(void **state)
{
    (void)state;
    check_error("a\nb\n{% if x %}\n{% for y in z %}\n{% end %}\n", NULL, -EINVAL,
                "t.txt:6: expected {% end %} for {% if %} opened at line 3");
    check_error("\n{% frobnicate %}", NULL, -EINVAL, "t.txt:2: unknown directive {% frobnicate %}");
    check_error("x\n\n{% end %}", NULL, -EINVAL, "t.txt:3: {% end %} without an open block");
    check_error("{% else %}", NULL, -EINVAL, "t.txt:1: {% else %} outside {% if %}");
    check_error("\n{{ 1 + }}", NULL, -EINVAL, "t.txt:2: expected an expression, found end");
    check_error("{{ a b }}", NULL, -EINVAL, "t.txt:1: unexpected 'b' after expression");
    check_error("{{ \"abc }}", NULL, -EINVAL, "unterminated string literal");
    check_error("{{ }}", NULL, -EINVAL, "empty expression");
    check_error("x\n{{ a", NULL, -EINVAL, "t.txt:2: missing }}");
    check_error("{% if %}{% end %}", NULL, -EINVAL, "{% if %} needs a condition");
    check_error("{% for x of y %}{% end %}", NULL, -EINVAL, "expected {% for x in expr %}");
    check_error("{% if a %}{% else %}{% elif b %}{% end %}", NULL, -EINVAL,
                "{% elif %} after {% else %}");
    check_error("{% block a %}{% end %}{% block a %}{% end %}", NULL, -EINVAL,
                "block 'a' defined twice");
    /* No loader: extends/include cannot be resolved. */
    check_error("{% include \"x.html\" %}", NULL, -EINVAL, "needs a template loader");
    check_error("hello\n{% extends \"base.html\" %}", NULL, -EINVAL,
                "t.txt:2: {% extends %} must come first");
    /* A compile error is kept in the template. */
    gust_template *t = gust_template_new_from_string("{% if x %}", "bad.html");
    assert_int_equal(gust_template_status(t), -EINVAL);
    assert_non_null(strstr(gust_template_error(t), "bad.html:1:"));
    gust_template_free(t);
}

static void test_render_errors(void **state)
{
    (void)state;
    check_error("ok\n{{ 1 }}\n{% if undefined_thing %}{% end %}", NULL, -EINVAL,
                "t.txt:3: name 'undefined_thing' is not defined");
    check_error("{{ x.y }}", "{\"x\": 3}", -EINVAL, "int has no attribute 'y'");
    /* The context must be an object. */
    gust_template *t = gust_template_new_from_string("x", NULL);
    char *out;
    size_t len;
    json_t *arr = json_array();
    assert_int_equal(gust_template_render(t, arr, &out, &len), -EINVAL);
    json_decref(arr);
    gust_template_free(t);
}

static void test_extends_not_first(void **state)
{
    (void)state;
    gust_template_loader *l = gust_template_loader_new(NULL);
    assert_int_equal(gust_template_loader_add_string(l, "b.html", "base"), 0);
    assert_int_equal(gust_template_loader_add_string(l, "c.html",
                                                     "{% set x = 1 %}{% extends \"b.html\" %}"), 0);
    assert_int_equal(gust_template_loader_add_string(l, "ok.html",
                                                     "  {# hi #}\n{% extends \"b.html\" %}"), 0);
    gust_template *t;
    assert_int_equal(gust_template_loader_load(l, "c.html", &t), -EINVAL);
    assert_string_equal(gust_template_loader_error(l),
                        "c.html:1: {% extends %} must come first in the template");
    check_load(l, "ok.html", NULL, "base");
    gust_template_loader_free(l);
}

static void test_depth_limits(void **state)
{
    (void)state;
    /* A chain of includes deeper than the limit is refused when loading. */
    gust_template_loader *l = gust_template_loader_new(NULL);
    char name[32], src[64];
    for (int i = 0; i < GUST_TEMPLATE_MAX_DEPTH + 5; i++) {
        snprintf(name, sizeof name, "t%d.html", i);
        snprintf(src, sizeof src, "{%% include \"t%d.html\" %%}", i + 1);
        assert_int_equal(gust_template_loader_add_string(l, name, src), 0);
    }
    gust_template *t;
    assert_int_equal(gust_template_loader_load(l, "t0.html", &t), -ELOOP);
    assert_non_null(strstr(gust_template_loader_error(l), "nested deeper than"));
    gust_template_loader_free(l);

    l = gust_template_loader_new(NULL);
    for (int i = 0; i < 10; i++) {
        snprintf(name, sizeof name, "t%d.html", i);
        snprintf(src, sizeof src, i < 9 ? "{%% include \"t%d.html\" %%}" : "end", i + 1);
        assert_int_equal(gust_template_loader_add_string(l, name, src), 0);
    }
    check_load(l, "t0.html", NULL, "end");
    gust_template_loader_free(l);

    /* Expression nesting is bounded: deep parentheses are a syntax error. */
    char deep[2048];
    size_t n = 0;
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{{ ");
    for (int i = 0; i < 500; i++)
        deep[n++] = '(';
    deep[n++] = '1';
    for (int i = 0; i < 500; i++)
        deep[n++] = ')';
    snprintf(deep + n, sizeof deep - n, " }}");
    check_error(deep, NULL, -EINVAL, "nested too deeply");
    n = 0;
    n += (size_t)snprintf(deep + n, sizeof deep - n, "{{ ");
    for (int i = 0; i < 400; i++)
        n += (size_t)snprintf(deep + n, sizeof deep - n, "1+");
    snprintf(deep + n, sizeof deep - n, "1 }}");
    check_error(deep, NULL, -EINVAL, "expression is too long");
    /* Blocks too. */
    char *blocks = malloc(200 * 12 + 1);
    blocks[0] = 0;
    for (int i = 0; i < 200; i++)
        strcat(blocks, "{% if 1 %}");
    check_error(blocks, NULL, -EINVAL, "blocks nested too deeply");
    free(blocks);
}

/* linkify: the expected strings are what tornado.escape.linkify returns
 * for the same arguments (Tornado 6, python3-tornado). */
static void test_linkify(void **state)
{
    (void)state;
    struct {
        const char *args, *ctx, *want;
    } cases[] = {
        {"t", "{\"t\": \"Hello http://tornadoweb.org!\"}",
         "Hello <a href=\"http://tornadoweb.org\">http://tornadoweb.org</a>!"},
        {"t", "{\"t\": \"see www.example.com/a?b=1&c=2, then (http://x.org/p(q)).\"}",
         "see <a href=\"http://www.example.com/a?b=1&amp;c=2\">www.example.com/a?b=1&amp;c=2</a>, "
         "then (<a href=\"http://x.org/p(q)\">http://x.org/p(q)</a>)."},
        {"t", "{\"t\": \"<b>http://e.com/?q=\\\"x\\\"</b> ftp://files.example.org/f javascript:alert(1)\"}",
         "&lt;b&gt;<a href=\"http://e.com/?q=&quot;x\">http://e.com/?q=&quot;x</a>&quot;&lt;/b&gt; "
         "ftp://files.example.org/f javascript:alert(1)"},
        {"t, False, '', False, ['ftp', 'mailto']",
         "{\"t\": \"ftp://files.example.org/f and mailto:a@b.c\"}",
         "<a href=\"ftp://files.example.org/f\">ftp://files.example.org/f</a> and mailto:a@b.c"},
        {"t, False, '', True", "{\"t\": \"www.example.com and https://example.com\"}",
         "www.example.com and <a href=\"https://example.com\">https://example.com</a>"},
        {"t, True", "{\"t\": \"http://www.example.com/wiki/Some_very_long_article_name_here?x=1\"}",
         "<a href=\"http://www.example.com/wiki/Some_very_long_article_name_here?x=1\" "
         "title=\"http://www.example.com/wiki/Some_very_long_article_name_here?x=1\">"
         "http://www.example.com/wiki...</a>"},
        {"t, True, '  rel=\"nofollow\" '", "{\"t\": \"http://example.com/abc\"}",
         "<a href=\"http://example.com/abc\" rel=\"nofollow\">http://example.com/abc</a>"},
        {"t, True",
         "{\"t\": \"http://www.example.com/path/to/a/page&amp;more&stuff&things=1234567890\"}",
         "<a href=\"http://www.example.com/path/to/a/page&amp;amp;more&amp;stuff&amp;things=1234567890\" "
         "title=\"http://www.example.com/path/to/a/page&amp;amp;more&amp;stuff&amp;things=1234567890\">"
         "http://www.example.com/path...</a>"},
        {"t", "{\"t\": \"caf\\u00e9 http://\\u4f8b\\u3048.jp/\\u30d1\\u30b9 end\"}",
         "caf\xc3\xa9 <a href=\"http://\xe4\xbe\x8b\xe3\x81\x88.jp/\xe3\x83\x91\xe3\x82\xb9\">"
         "http://\xe4\xbe\x8b\xe3\x81\x88.jp/\xe3\x83\x91\xe3\x82\xb9</a> end"},
        {"t", "{\"t\": \"no links here, 3.14 and a.b\"}", "no links here, 3.14 and a.b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char src[256];
        snprintf(src, sizeof src, "{%% raw linkify(%s) %%}", cases[i].args);
        check(src, cases[i].ctx, cases[i].want);
    }
    check_error("{% raw linkify(t, False, 3) %}", "{\"t\": \"x\"}", -EINVAL,
                "extra_params must be a string");
    check_error("{% raw linkify(t, False, '', False, 'http') %}", "{\"t\": \"x\"}",
                -EINVAL, "permitted_protocols");
}

/* static_url() and reverse_url() go to the render's hooks. */
static const char *test_static_url(void *data, const char *path)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "/s/%s?v=%s", path, (const char *)data);
    return buf;
}

static const char *test_reverse_url(void *data, const char *name,
                                    const char *const *args, size_t nargs)
{
    (void)data;
    static char buf[128];
    if (strcmp(name, "item") || nargs != 2)
        return NULL;
    snprintf(buf, sizeof buf, "/item/%s/%s", args[0], args[1]);
    return buf;
}

static void test_url_hooks(void **state)
{
    (void)state;
    gust_template *t = gust_template_new_from_string(
        "{{ static_url('a.css') }} {{ reverse_url('item', 'x', n) }}", "u.html");
    json_t *ctx = json_pack("{s:i}", "n", 42);
    gust_template_hooks hooks = {test_static_url, test_reverse_url, NULL,
                                 "abc"};
    char *out;
    size_t len;
    assert_int_equal(gust_template_render_with(t, ctx, &hooks, &out, &len), 0);
    assert_string_equal(out, "/s/a.css?v=abc /item/x/42");
    free(out);
    /* Without hooks, or a route that does not reverse: a render error
     * that says what. */
    assert_int_equal(gust_template_render(t, ctx, &out, &len), -EINVAL);
    assert_non_null(strstr(gust_template_error(t), "u.html:1: static_url() needs"));
    gust_template_free(t);
    t = gust_template_new_from_string("{{ reverse_url('nope') }}", "u.html");
    assert_int_equal(gust_template_render_with(t, ctx, &hooks, &out, &len), -EINVAL);
    assert_non_null(strstr(gust_template_error(t), "reverse_url(\"nope\") failed"));
    gust_template_free(t);
    json_decref(ctx);
}

static void test_render_limits(void **state)
{
    (void)state;
    gust_template *t = gust_template_new_from_string(
        "{% for a in range(1000) %}{% for b in range(1000) %}{% end %}{% end %}", NULL);
    gust_template_limits lim = {.max_steps = 10000, .max_value = 0};
    gust_template_set_limits(t, &lim);
    char *out;
    size_t len;
    assert_int_equal(gust_template_render(t, NULL, &out, &len), -E2BIG);
    assert_non_null(strstr(gust_template_error(t), "step limit"));
    gust_template_free(t);
    check_error("{% set s = \"ab\" %}{% for i in range(40) %}{% set s = s + s %}{% end %}",
                NULL, -E2BIG, "larger than the template limit");
}

struct sink {
    char buf[256];
    size_t n;
    int calls;
    int fail_after;
};

static int sink_write(const gust_template *t, const char *buf, size_t len, void *data)
{
    (void)t;
    struct sink *s = data;
    if (s->fail_after && ++s->calls > s->fail_after)
        return -EPIPE;
    if (s->n + len <= sizeof s->buf)
        memcpy(s->buf + s->n, buf, len);
    s->n += len;
    return 0;
}

static void test_write_callback(void **state)
{
    (void)state;
    gust_template *t = gust_template_new_from_string("{% for x in xs %}<{{ x }}>{% end %}", NULL);
    json_t *c = ctx_of("{\"xs\": [1, 2, 3]}");
    struct sink s = {0};
    assert_int_equal(gust_template_render_to(t, c, sink_write, &s), 0);
    assert_int_equal(s.n, 9);
    assert_memory_equal(s.buf, "<1><2><3>", 9);
    /* A failing callback stops the render with its code. */
    gust_template_free(t);
    t = gust_template_new_from_string("{% for i in range(3000) %}0123456789{% end %}", NULL);
    struct sink g = {.fail_after = 1};
    assert_int_equal(gust_template_render_to(t, NULL, sink_write, &g), -EPIPE);
    /* Output is buffered: 30,000 bytes came in a handful of calls. */
    assert_true(g.n >= 4000 && g.n < 30000);
    assert_non_null(strstr(gust_template_error(t), "write callback failed"));
    json_decref(c);
    gust_template_free(t);
}

int main(void)
{
    set_fixtures();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_if),
        cmocka_unit_test(test_for),
        cmocka_unit_test(test_break_continue),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_try),
        cmocka_unit_test(test_expressions),
        cmocka_unit_test(test_filters),
        cmocka_unit_test(test_whitespace),
        cmocka_unit_test(test_comments_and_literals),
        cmocka_unit_test(test_extends),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_loader_cache),
        cmocka_unit_test(test_loader_refuses_escapes),
        cmocka_unit_test(test_loader_errors),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_render_errors),
        cmocka_unit_test(test_extends_not_first),
        cmocka_unit_test(test_depth_limits),
        cmocka_unit_test(test_render_limits),
        cmocka_unit_test(test_linkify),
        cmocka_unit_test(test_url_hooks),
        cmocka_unit_test(test_write_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
