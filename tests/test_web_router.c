/* Unit tests for routing (web.h ROUTING, src/web_router.c): anchoring,
 * order, capture groups (positional, named, optional), percent-decoding,
 * host patterns, reverse_url and bad patterns. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "gust/log.h"
#include "gust/web.h"
#include "web_internal.h"

static const gust_handler_class cls_a = {.name = "a"};
static const gust_handler_class cls_b = {.name = "b"};

typedef struct fixture {
    gust_app *app;
    gust_arena arena;
} fixture;

static fixture fx;

static void make_app(const gust_route *routes)
{
    fx.app = gust_app_new(routes, NULL);
    assert_non_null(fx.app);
    gust_arena_init(&fx.arena, 0);
}

static void free_app(void)
{
    gust_arena_close(&fx.arena);
    gust_app_free(fx.app);
    fx.app = NULL;
}

/* The route matched for path on host, or NULL; m filled. */
static const gust__web_route *match(const char *path, const char *host,
                                    gust__web_match *m)
{
    assert_int_equal(gust__web_router_match(&fx.app->router, &fx.arena, path,
                                            host, m),
                     0);
    return m->route;
}

static void test_anchoring_and_order(void **state)
{
    (void)state;
    const gust_route routes[] = {{"/a", &cls_a, NULL, NULL, NULL},
                                 {"/a.*", &cls_b, NULL, NULL, NULL},
                                 {"^/c$", &cls_a, NULL, NULL, NULL},
                                 {NULL, NULL, NULL, NULL, NULL}};
    make_app(routes);
    gust__web_match m;
    assert_ptr_equal(match("/a", NULL, &m)->cls, &cls_a);
    /* Anchored at the end: "/ab" is the second route's, not the first's. */
    assert_ptr_equal(match("/ab", NULL, &m)->cls, &cls_b);
    /* Anchored at the start. */
    assert_null(match("/x/a", NULL, &m));
    assert_non_null(match("/c", NULL, &m));
    /* '$' does not match before a final newline. */
    assert_null(match("/c\n", NULL, &m));
    assert_null(match("/cc", NULL, &m));
    /* Compiled with the JIT where PCRE2 has one. */
    uint32_t jit = 0;
    pcre2_config(PCRE2_CONFIG_JIT, &jit);
    if (jit) {
        size_t size = 0;
        pcre2_pattern_info(fx.app->router.routes[0].re, PCRE2_INFO_JITSIZE,
                           &size);
        assert_true(size > 0);
    }
    free_app();
}

/* A pattern that is one literal is compared as bytes; it must match
 * exactly what its regex matches. */
static void test_literal_routes(void **state)
{
    (void)state;
    const gust_route routes[] = {{"/file\\.txt", &cls_a, NULL, NULL, NULL},
                                 {"^/x-y/$", &cls_a, NULL, NULL, NULL},
                                 {"/a\\n", &cls_a, NULL, "nl", NULL},
                                 {"/", &cls_b, NULL, NULL, NULL},
                                 {"/Case", &cls_b, NULL, NULL, NULL},
                                 {NULL, NULL, NULL, NULL, NULL}};
    make_app(routes);
    gust__web_match m;
    assert_non_null(fx.app->router.routes[0].literal);
    assert_non_null(fx.app->router.routes[1].literal);
    /* "\n" is a newline to PCRE2, not the letter: a regex, and not
     * reversible (Tornado's re_unescape refuses it too). */
    assert_null(fx.app->router.routes[2].literal);
    assert_null(gust_app_reverse_url(fx.app, &fx.arena, "nl", NULL));
    assert_non_null(match("/file.txt", NULL, &m));
    assert_null(match("/fileXtxt", NULL, &m));
    assert_null(match("/file.txt/", NULL, &m));
    assert_null(match("/file.tx", NULL, &m));
    assert_non_null(match("/x-y/", NULL, &m));
    assert_null(match("/x-y", NULL, &m));
    assert_non_null(match("/a\n", NULL, &m));
    assert_null(match("/an", NULL, &m));
    assert_ptr_equal(match("/", NULL, &m)->cls, &cls_b);
    assert_null(match("//", NULL, &m));
    assert_null(match("", NULL, &m));
    assert_non_null(match("/Case", NULL, &m));
    assert_null(match("/case", NULL, &m));
    assert_int_equal(m.nargs, 0);
    free_app();
}

static void test_groups_and_decoding(void **state)
{
    (void)state;
    const gust_route routes[] = {
        {"/item/([0-9]+)/([^/]+)", &cls_a, NULL, NULL, NULL},
        {"/user/(?<id>[0-9]+)(?:/(?<tab>[a-z]+))?", &cls_b, NULL, NULL, NULL},
        {"/opt/(x)?(.*)", &cls_a, NULL, NULL, NULL},
        {NULL, NULL, NULL, NULL, NULL}};
    make_app(routes);
    gust__web_match m;
    assert_non_null(match("/item/42/a%20b+c%2F", NULL, &m));
    assert_int_equal(m.nargs, 2);
    assert_string_equal(m.args[0], "42");
    /* Percent-decoded, '+' kept as in a path. */
    assert_string_equal(m.args[1], "a b+c/");
    assert_null(match("/item/x/y", NULL, &m));

    const gust__web_route *r = match("/user/7/posts", NULL, &m);
    assert_non_null(r);
    assert_string_equal(gust__web_route_kwarg(r, &m, "id"), "7");
    assert_string_equal(gust__web_route_kwarg(r, &m, "tab"), "posts");
    assert_null(gust__web_route_kwarg(r, &m, "nope"));
    r = match("/user/8", NULL, &m);
    assert_non_null(r);
    assert_string_equal(gust__web_route_kwarg(r, &m, "id"), "8");
    assert_null(gust__web_route_kwarg(r, &m, "tab"));

    /* An optional group that did not take part is NULL. */
    assert_non_null(match("/opt/yz", NULL, &m));
    assert_int_equal(m.nargs, 2);
    assert_null(m.args[0]);
    assert_string_equal(m.args[1], "yz");
    /* A NUL escape is not decoded into a C string: kept as sent. */
    assert_non_null(match("/opt/a%00b", NULL, &m));
    assert_string_equal(m.args[1], "a%00b");
    free_app();
}

static void test_hosts(void **state)
{
    (void)state;
    const gust_route routes[] = {
        {"/", &cls_a, NULL, NULL, "www\\.example\\.com"},
        {"/", &cls_b, NULL, NULL, ".*\\.example\\.org"},
        {NULL, NULL, NULL, NULL, NULL}};
    make_app(routes);
    gust__web_match m;
    assert_ptr_equal(match("/", "www.example.com", &m)->cls, &cls_a);
    assert_ptr_equal(match("/", "a.example.org", &m)->cls, &cls_b);
    /* Host patterns are anchored too. */
    assert_null(match("/", "www.example.com.evil", &m));
    assert_null(match("/", "other", &m));
    assert_null(match("/", NULL, &m));
    free_app();
}

static void test_reverse_url(void **state)
{
    (void)state;
    const gust_route routes[] = {
        {"/", &cls_a, NULL, "home", NULL},
        {"/item/([0-9]+)/([^/]+)$", &cls_a, NULL, "item", NULL},
        {"/user/(?<id>[0-9]+)", &cls_a, NULL, "user", NULL},
        {"/file\\.txt", &cls_a, NULL, "file", NULL},
        {"/a|/b", &cls_a, NULL, "alt", NULL},
        {"/n/((a)b)", &cls_a, NULL, "nested", NULL},
        {NULL, NULL, NULL, NULL, NULL}};
    make_app(routes);
    gust_arena *a = &fx.arena;
    assert_string_equal(gust_app_reverse_url(fx.app, a, "home", NULL), "/");
    assert_string_equal(
        gust_app_reverse_url(fx.app, a, "item", "42", "a b/c?", NULL),
        "/item/42/a%20b/c%3F");
    assert_string_equal(gust_app_reverse_url(fx.app, a, "user", "9", NULL),
                        "/user/9");
    assert_string_equal(gust_app_reverse_url(fx.app, a, "file", NULL),
                        "/file.txt");
    /* Wrong argument counts, unknown names, patterns that are not simple. */
    assert_null(gust_app_reverse_url(fx.app, a, "item", "42", NULL));
    assert_null(gust_app_reverse_url(fx.app, a, "user", "1", "2", NULL));
    assert_null(gust_app_reverse_url(fx.app, a, "nope", NULL));
    assert_null(gust_app_reverse_url(fx.app, a, "alt", NULL));
    assert_null(gust_app_reverse_url(fx.app, a, "nested", "ab", NULL));
    free_app();
}

static void test_bad_pattern_and_add_routes(void **state)
{
    (void)state;
    int level = gust_log_level();
    gust_log_set_level(GUST_LOG_NONE);
    const gust_route bad[] = {{"/(unclosed", &cls_a, NULL, NULL, NULL},
                              {NULL, NULL, NULL, NULL, NULL}};
    errno = 0;
    assert_null(gust_app_new(bad, NULL));
    assert_int_equal(errno, EINVAL);

    const gust_route one[] = {{"/one", &cls_a, NULL, NULL, NULL},
                              {NULL, NULL, NULL, NULL, NULL}};
    make_app(one);
    assert_int_equal(gust_app_add_routes(fx.app, bad), -EINVAL);
    const gust_route more[] = {{"/two/(.*)/(.*)/(.*)", &cls_b, NULL, NULL,
                                NULL},
                               {NULL, NULL, NULL, NULL, NULL}};
    assert_int_equal(gust_app_add_routes(fx.app, more), 0);
    gust_log_set_level(level);
    gust__web_match m;
    assert_ptr_equal(match("/one", NULL, &m)->cls, &cls_a);
    /* The app's match data grew for the route with more groups. */
    assert_ptr_equal(match("/two/x/y/z", NULL, &m)->cls, &cls_b);
    assert_string_equal(m.args[2], "z");
    free_app();
}

static void test_settings_copied(void **state)
{
    (void)state;
    char secret[] = "s3cret";
    gust_app_settings s = {.cookie_secret = secret, .debug = true};
    const gust_route none[] = {{NULL, NULL, NULL, NULL, NULL}};
    fx.app = gust_app_new(none, &s);
    assert_non_null(fx.app);
    gust_arena_init(&fx.arena, 0);
    secret[0] = 'X';
    const gust_app_settings *got = gust_app_get_settings(fx.app);
    assert_string_equal(got->cookie_secret, "s3cret");
    assert_string_equal(got->cookie_secrets[0], "s3cret");
    assert_null(got->cookie_secrets[1]);
    assert_string_equal(got->static_url_prefix, "/static/");
    assert_true(got->debug);
    free_app();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_anchoring_and_order),
        cmocka_unit_test(test_literal_routes),
        cmocka_unit_test(test_groups_and_decoding),
        cmocka_unit_test(test_hosts),
        cmocka_unit_test(test_reverse_url),
        cmocka_unit_test(test_bad_pattern_and_add_routes),
        cmocka_unit_test(test_settings_copied),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
