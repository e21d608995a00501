/* What a handler's templates and JSON look like to a client (web.h):
 * static_url(), reverse_url(), current_user and linkify in templates,
 * gust_handler_render_pack(), and write_json's shortest reals. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gust/gust.h"
#include "gust/testing.h"
#include "gust/web.h"

static char dir[64], tpl_dir[96], static_dir[96];

static void write_file(const char *d, const char *name, const char *text)
{
    char path[192];
    snprintf(path, sizeof path, "%s/%s", d, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void remove_file(const char *d, const char *name)
{
    char path[192];
    snprintf(path, sizeof path, "%s/%s", d, name);
    unlink(path);
}

static void make_dirs(void)
{
    snprintf(dir, sizeof dir, "/tmp/gust-render-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(tpl_dir, sizeof tpl_dir, "%s/templates", dir);
    snprintf(static_dir, sizeof static_dir, "%s/static", dir);
    assert_int_equal(mkdir(tpl_dir, 0700), 0);
    assert_int_equal(mkdir(static_dir, 0700), 0);
    write_file(static_dir, "app.css", "body { color: red }\n");
    write_file(tpl_dir, "page.html",
               "<link href=\"{{ static_url('app.css') }}\">"
               "<a href=\"{{ reverse_url('item', item, 'x y') }}\">"
               "{% if current_user %}hi {{ current_user }}{% else %}sign in{% end %}"
               "</a><p>{% raw linkify(note) %}</p>");
    write_file(tpl_dir, "bad.html", "{{ reverse_url('nope') }}");
    write_file(tpl_dir, "ns.html", "{{ current_user }}|{{ request.path }}|"
                                   "{{ request.method }}|{{ static_url_prefix }}");
    write_file(tpl_dir, "pack.html",
               "{{ title }}/{{ n }}/{{ join(tags, ',') }}/{{ maybe }}");
}

static void remove_dirs(void)
{
    remove_file(static_dir, "app.css");
    remove_file(tpl_dir, "page.html");
    remove_file(tpl_dir, "bad.html");
    remove_file(tpl_dir, "ns.html");
    remove_file(tpl_dir, "pack.html");
    rmdir(static_dir);
    rmdir(tpl_dir);
    rmdir(dir);
}

/* ---- Handlers ------------------------------------------------------------ */

static const char *user_from_query(gust_handler *h)
{
    return gust_handler_get_argument(h, "user", NULL);
}

static int page_get(gust_handler *h)
{
    json_t *ctx = json_pack("{s:i, s:s}", "item", 42, "note",
                            "see http://example.com/a?b=1&c=<2> now");
    int rc = gust_handler_render(h, "page.html", ctx);
    json_decref(ctx);
    return rc;
}

static int bad_get(gust_handler *h)
{
    return gust_handler_render(h, "bad.html", NULL);
}

/* The handler's names, and a context that has one of them already: the
 * context's wins and is not modified. */
static int ns_get(gust_handler *h)
{
    json_t *ctx = json_pack("{s:s}", "current_user", "from-context");
    int rc = gust_handler_render(h, "ns.html", ctx);
    if (rc == 0 && json_object_size(ctx) != 1)
        rc = -EINVAL;
    json_decref(ctx);
    if (rc == 0)
        rc = gust_handler_write_str(h, "|");
    return rc < 0 ? rc : gust_handler_render(h, "ns.html", NULL);
}

static int pack_get(gust_handler *h)
{
    const char *maybe = gust_handler_get_argument(h, "maybe", NULL);
    return gust_handler_render_pack(h, "pack.html", "{s:s, s:i, s:[s,s], s:s?}",
                                    "title", "T", "n", 3, "tags", "a", "b",
                                    "maybe", maybe);
}

static int pack_bad_get(gust_handler *h)
{
    return gust_handler_render_pack(h, "pack.html", "[i]", 1);
}

static int json_get(gust_handler *h)
{
    json_t *v = json_pack(
        "{s:f, s:[f,f,f,f,f,f,f,f,f], s:s, s:i, s:f}", "a", 0.3, "b", 1.0,
        1e20, 0.1 + 0.2, -2.5e-7, 123456789.123, 1e16, 1e-5, 5e-324,
        1.7976931348623157e308, "s", "1.50 and 0.29999999999999999", "n", 3,
        "neg", -0.0);
    int rc = gust_handler_write_json(h, v);
    json_decref(v);
    return rc;
}

static int item_get(gust_handler *h)
{
    return gust_handler_write_str(h, "item");
}

static const gust_handler_class page = {.get = page_get,
                                        .get_current_user = user_from_query};
static const gust_handler_class bad = {.get = bad_get};
static const gust_handler_class ns = {.get = ns_get,
                                      .get_current_user = user_from_query};
static const gust_handler_class pack = {.get = pack_get};
static const gust_handler_class pack_bad = {.get = pack_bad_get};
static const gust_handler_class json_class = {.get = json_get};
static const gust_handler_class item = {.get = item_get};

static gust_app *make_app(void)
{
    const gust_route routes[] = {
        GUST_ROUTE("/", &page),
        GUST_ROUTE("/bad", &bad),
        GUST_ROUTE("/ns", &ns),
        GUST_ROUTE("/pack", &pack),
        GUST_ROUTE("/pack-bad", &pack_bad),
        GUST_ROUTE("/json", &json_class),
        GUST_ROUTE("/item/([0-9]+)/([^/]+)", &item, .name = "item"),
        GUST_ROUTES_END,
    };
    gust_app_settings s = {.template_path = tpl_dir,
                           .static_path = static_dir};
    gust_app *app = gust_app_new(routes, &s);
    assert_non_null(app);
    return app;
}

static void finish(gust_testing_server *t, gust_app *app)
{
    gust_testing_stop(t);
    gust_app_free(app);
    assert_int_equal(gust_loop_free(gust_loop_current()), 0);
}

static gust_http_client_response *get(gust_testing_server *t, const char *path)
{
    gust_http_client_response *r = NULL;
    assert_int_equal(gust_testing_fetch(t, path, NULL, 0, &r), 0);
    return r;
}

/* ---- Tests --------------------------------------------------------------- */

static void test_template_functions(void **state)
{
    (void)state;
    make_dirs();
    gust_app *app = make_app();
    gust_testing_server *t = gust_testing_start_app(app);
    assert_non_null(t);
    gust_http_client_response *r = get(t, "/?user=ann");
    assert_int_equal(r->code, 200);
    /* static_url: the prefix, the path and a version hash of the file. */
    const char *p = strstr(r->body, "href=\"/static/app.css?v=");
    assert_non_null(p);
    assert_int_equal(strcspn(p + strlen("href=\"/static/app.css?v="), "\""), 8);
    /* The versioned URL serves the file. */
    char url[64];
    snprintf(url, sizeof url, "%.*s", (int)strcspn(p + 6, "\""), p + 6);
    gust_http_client_response *css = get(t, url);
    assert_int_equal(css->code, 200);
    assert_string_equal(css->body, "body { color: red }\n");
    gust_http_client_response_free(css);
    /* reverse_url, arguments escaped; current_user; linkify. */
    assert_non_null(strstr(r->body, "<a href=\"/item/42/x%20y\">hi ann</a>"));
    assert_non_null(strstr(
        r->body, "<p>see <a href=\"http://example.com/a?b=1&amp;c\">"
                 "http://example.com/a?b=1&amp;c</a>=&lt;2&gt; now</p>"));
    gust_http_client_response_free(r);
    r = get(t, "/");
    assert_non_null(strstr(r->body, "sign in</a>"));
    gust_http_client_response_free(r);
    r = get(t, "/ns?user=bo");
    assert_int_equal(r->code, 200);
    assert_string_equal(r->body,
                        "from-context|/ns|GET|/static/|bo|/ns|GET|/static/");
    gust_http_client_response_free(r);
    r = get(t, "/ns");
    assert_string_equal(r->body,
                        "from-context|/ns|GET|/static/|None|/ns|GET|/static/");
    gust_http_client_response_free(r);
    /* A route that cannot be reversed is the page's 500, logged. */
    gust_log_set_level(GUST_LOG_NONE);
    r = get(t, "/bad");
    assert_int_equal(r->code, 500);
    gust_http_client_response_free(r);
    gust_log_set_level(GUST_LOG_WARNING);
    finish(t, app);
    remove_dirs();
}

static void test_render_pack(void **state)
{
    (void)state;
    make_dirs();
    gust_app *app = make_app();
    gust_testing_server *t = gust_testing_start_app(app);
    gust_http_client_response *r = get(t, "/pack?maybe=m");
    assert_int_equal(r->code, 200);
    assert_string_equal(r->body, "T/3/a,b/m");
    gust_http_client_response_free(r);
    r = get(t, "/pack");
    assert_string_equal(r->body, "T/3/a,b/None");
    gust_http_client_response_free(r);
    gust_log_set_level(GUST_LOG_NONE);
    r = get(t, "/pack-bad");
    assert_int_equal(r->code, 500);
    gust_http_client_response_free(r);
    gust_log_set_level(GUST_LOG_WARNING);
    finish(t, app);
    remove_dirs();
}

static void test_write_json_shortest_reals(void **state)
{
    (void)state;
    make_dirs();
    gust_app *app = make_app();
    gust_testing_server *t = gust_testing_start_app(app);
    gust_http_client_response *r = get(t, "/json");
    assert_int_equal(r->code, 200);
    /* What Python's json.dumps(v, separators=(",", ":")) prints. */
    assert_string_equal(
        r->body,
        "{\"a\":0.3,\"b\":[1.0,1e+20,0.30000000000000004,-2.5e-07,"
        "123456789.123,1e+16,1e-05,5e-324,1.7976931348623157e+308],"
        "\"s\":\"1.50 and 0.29999999999999999\",\"n\":3,\"neg\":-0.0}");
    /* And it reads back the same values. */
    json_error_t err;
    json_t *back = json_loads(r->body, 0, &err);
    assert_non_null(back);
    json_t *b = json_object_get(back, "b");
    assert_true(json_real_value(json_array_get(b, 2)) == 0.1 + 0.2);
    assert_true(json_real_value(json_array_get(b, 7)) == 5e-324);
    assert_true(json_real_value(json_object_get(back, "a")) == 0.3);
    json_decref(back);
    gust_http_client_response_free(r);
    finish(t, app);
    remove_dirs();
}

int main(void)
{
    gust_log_set_level(GUST_LOG_WARNING);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_template_functions),
        cmocka_unit_test(test_render_pack),
        cmocka_unit_test(test_write_json_shortest_reals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
