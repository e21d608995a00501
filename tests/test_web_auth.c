/* Authentication as Tornado has it (web.h): get_current_user, login_url,
 * GUST_HANDLER_AUTHENTICATED and authenticated_methods, a built-in class
 * extended through .base (protected static files), set_default_headers;
 * checked the way a user would, with real fetches (testing.h). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gust/gust.h"
#include "gust/testing.h"
#include "gust/web.h"

#define SECRET "auth-test-secret"

/* ---- The application under test ---------------------------------------- */

static int user_calls;

static const char *user_from_cookie(gust_handler *h)
{
    user_calls++;
    return gust_handler_get_signed_cookie(h, "user", 0);
}

static int hello_get(gust_handler *h)
{
    /* Asked twice: get_current_user runs once. */
    const char *u = gust_handler_current_user(h);
    return gust_handler_printf(h, "hello %s%s", u ? u : "nobody",
                               gust_handler_current_user(h) == u ? "" : "!");
}

static int hello_post(gust_handler *h)
{
    return gust_handler_printf(h, "posted by %s",
                               gust_handler_current_user(h));
}

static const gust_handler_class private_page = {
    .flags = GUST_HANDLER_AUTHENTICATED,
    .get = hello_get,
    .head = hello_get,
    .post = hello_post,
    .get_current_user = user_from_cookie,
};

/* Only writing needs a user. */
static const gust_handler_class wiki_page = {
    .get = hello_get,
    .post = hello_post,
    .get_current_user = user_from_cookie,
    .authenticated_methods = GUST_HTTP_METHOD_BIT(GUST_HTTP_METHOD_POST),
};

/* prepare may decide who the user is, as assigning self.current_user. */
static int token_prepare(gust_handler *h)
{
    const char *tok = gust_handler_get_argument(h, "token", NULL);
    if (tok && strcmp(tok, "t0k") == 0)
        return gust_handler_set_current_user(h, "api-client");
    return 0;
}

static const gust_handler_class token_page = {
    .flags = GUST_HANDLER_AUTHENTICATED | GUST_HANDLER_COROUTINE,
    .prepare = token_prepare,
    .get = hello_get,
    .post = hello_post,
};

/* set_default_headers: on every response, error pages included. */
static void cors_headers(gust_handler *h)
{
    gust_handler_set_header(h, "Access-Control-Allow-Origin", "*");
    gust_handler_set_header(h, "X-Frame-Options", "DENY");
}

static int fail_get(gust_handler *h)
{
    gust_handler_set_header(h, "X-Gone-After-Error", "1");
    return gust_handler_send_error(h, 418, NULL);
}

static int plain_get(gust_handler *h)
{
    /* The class's default can be overridden by the method. */
    gust_handler_set_header(h, "X-Frame-Options", "SAMEORIGIN");
    return gust_handler_write_str(h, "plain");
}

static const gust_handler_class cors_page = {
    .get = plain_get,
    .post = fail_get,
    .set_default_headers = cors_headers,
};

/* A built-in class extended: static files behind a sign-in. */
static const gust_handler_class private_files = {
    .base = &gust_static_file_handler,
    .name = "PrivateFiles",
    .flags = GUST_HANDLER_AUTHENTICATED,
    .get_current_user = user_from_cookie,
    .set_default_headers = cors_headers,
};

static char root[64];
static gust_static_options files = {.root = root};

static gust_app *make_app(const char *login_url)
{
    const gust_route routes[] = {
        GUST_ROUTE("/private", &private_page),
        GUST_ROUTE("/wiki", &wiki_page),
        GUST_ROUTE("/api", &token_page),
        GUST_ROUTE("/cors", &cors_page),
        GUST_ROUTE("/files/(.*)", &private_files, .data = &files),
        GUST_ROUTES_END,
    };
    gust_app_settings s = {.cookie_secret = SECRET, .login_url = login_url};
    gust_app *app = gust_app_new(routes, &s);
    assert_non_null(app);
    return app;
}

static void make_root(void)
{
    snprintf(root, sizeof root, "/tmp/gust-auth-XXXXXX");
    assert_non_null(mkdtemp(root));
    char path[128];
    snprintf(path, sizeof path, "%s/secret.txt", root);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("top secret\n", f);
    fclose(f);
}

static void remove_root(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/secret.txt", root);
    unlink(path);
    rmdir(root);
}

static void finish(gust_testing_server *t, gust_app *app)
{
    gust_testing_stop(t);
    gust_app_free(app);
    assert_int_equal(gust_loop_free(gust_loop_current()), 0);
}

/* A fetch without following redirects, with a Cookie header when
 * cookie is not NULL. */
static gust_http_client_response *fetch(gust_testing_server *t,
                                        const char *method,
                                 const char *path, const char *cookie)
{
    gust_http_header hd[1] = {{GUST_STR("Cookie"), gust_str_cstr(cookie)}};
    gust_http_client_request r = {
        .method = method,
        .follow_redirects = GUST_HTTP_NO,
        .headers = cookie ? hd : NULL,
        .num_headers = cookie ? 1 : 0,
        .body = strcmp(method, "POST") ? NULL : "x=1",
        .body_len = strcmp(method, "POST") ? 0 : 3,
    };
    gust_http_client_response *resp = NULL;
    assert_int_equal(gust_testing_fetch(t, path, &r, 0, &resp), 0);
    return resp;
}

static const char *header(gust_http_client_response *r, const char *name)
{
    static char buf[512];
    gust_str v = gust_http_headers_get_first(&r->headers, gust_str_cstr(name));
    if (!v.ptr)
        return NULL;
    snprintf(buf, sizeof buf, "%.*s", (int)v.len, v.ptr);
    return buf;
}

/* The Cookie header of a signed-in user, signed as the app signs. */
static char *user_cookie(const char *user)
{
    gust_arena a;
    gust_arena_init(&a, 0);
    const char *secrets[] = {SECRET, NULL};
    char *v = gust_create_signed_value(&a, secrets, 0, "user", user,
                                       time(NULL));
    assert_non_null(v);
    char *out = malloc(strlen(v) + 8);
    assert_non_null(out);
    sprintf(out, "user=%s", v);
    gust_arena_close(&a);
    return out;
}

/* ---- Tests --------------------------------------------------------------- */

static void test_authenticated_class(void **state)
{
    (void)state;
    gust_log_set_level(GUST_LOG_ERROR);
    gust_app *app = make_app("/login");
    gust_testing_server *t = gust_testing_start_app(app);
    assert_non_null(t);
    /* GET and HEAD go to the login page, with where they wanted to go. */
    gust_http_client_response *r = fetch(t, "GET", "/private?x=1&y=a%20b",
                                         NULL);
    assert_int_equal(r->code, 302);
    assert_string_equal(header(r, "Location"),
                        "/login?next=%2Fprivate%3Fx%3D1%26y%3Da%2520b");
    gust_http_client_response_free(r);
    r = fetch(t, "HEAD", "/private", NULL);
    assert_int_equal(r->code, 302);
    assert_string_equal(header(r, "Location"), "/login?next=%2Fprivate");
    gust_http_client_response_free(r);
    /* Other methods are refused. */
    r = fetch(t, "POST", "/private", NULL);
    assert_int_equal(r->code, 403);
    gust_http_client_response_free(r);
    /* A forged cookie is nobody. */
    r = fetch(t, "GET", "/private", "user=alice");
    assert_int_equal(r->code, 302);
    gust_http_client_response_free(r);
    /* Signed in: the method runs, get_current_user once per request. */
    char *cookie = user_cookie("alice");
    user_calls = 0;
    r = fetch(t, "GET", "/private", cookie);
    assert_int_equal(r->code, 200);
    assert_string_equal(r->body, "hello alice");
    assert_int_equal(user_calls, 1);
    gust_http_client_response_free(r);
    r = fetch(t, "POST", "/private", cookie);
    assert_int_equal(r->code, 200);
    assert_string_equal(r->body, "posted by alice");
    gust_http_client_response_free(r);
    free(cookie);
    finish(t, app);
}

static void test_authenticated_methods(void **state)
{
    (void)state;
    gust_app *app = make_app("/login");
    gust_testing_server *t = gust_testing_start_app(app);
    gust_http_client_response *r = fetch(t, "GET", "/wiki", NULL);
    assert_int_equal(r->code, 200);
    assert_string_equal(r->body, "hello nobody");
    gust_http_client_response_free(r);
    r = fetch(t, "POST", "/wiki", NULL);
    assert_int_equal(r->code, 403);
    gust_http_client_response_free(r);
    char *cookie = user_cookie("bob");
    r = fetch(t, "POST", "/wiki", cookie);
    assert_int_equal(r->code, 200);
    assert_string_equal(r->body, "posted by bob");
    gust_http_client_response_free(r);
    free(cookie);
    /* A coroutine class whose prepare sets the user. */
    r = fetch(t, "GET", "/api?token=t0k", NULL);
    assert_int_equal(r->code, 200);
    assert_string_equal(r->body, "hello api-client");
    gust_http_client_response_free(r);
    r = fetch(t, "POST", "/api?token=nope", NULL);
    assert_int_equal(r->code, 403);
    gust_http_client_response_free(r);
    finish(t, app);
}

static void test_login_url_forms(void **state)
{
    (void)state;
    gust_log_set_level(GUST_LOG_NONE);
    /* Absolute: the next URL is absolute too, as Tornado makes it. */
    gust_app *app = make_app("https://auth.example.com/login");
    gust_testing_server *t = gust_testing_start_app(app);
    gust_http_client_response *r = fetch(t, "GET", "/private?a=1", NULL);
    assert_int_equal(r->code, 302);
    char want[256];
    snprintf(want, sizeof want,
             "https://auth.example.com/login?next=http%%3A%%2F%%2F127.0.0.1"
             "%%3A%d%%2Fprivate%%3Fa%%3D1", gust_testing_port(t));
    assert_string_equal(header(r, "Location"), want);
    gust_http_client_response_free(r);
    finish(t, app);
    /* With a query of its own: used as it is. */
    app = make_app("/login?from=app");
    t = gust_testing_start_app(app);
    r = fetch(t, "GET", "/private", NULL);
    assert_string_equal(header(r, "Location"), "/login?from=app");
    gust_http_client_response_free(r);
    finish(t, app);
    /* None: a server error, not an open page. */
    app = make_app(NULL);
    t = gust_testing_start_app(app);
    r = fetch(t, "GET", "/private", NULL);
    assert_int_equal(r->code, 500);
    gust_http_client_response_free(r);
    finish(t, app);
    gust_log_set_level(GUST_LOG_WARNING);
}

static void test_set_default_headers(void **state)
{
    (void)state;
    gust_log_set_level(GUST_LOG_ERROR);
    gust_app *app = make_app("/login");
    gust_testing_server *t = gust_testing_start_app(app);
    gust_http_client_response *r = fetch(t, "GET", "/cors", NULL);
    assert_int_equal(r->code, 200);
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "*");
    assert_string_equal(header(r, "X-Frame-Options"), "SAMEORIGIN");
    gust_http_client_response_free(r);
    /* An error page drops what the method set and gets the defaults
     * again. */
    r = fetch(t, "POST", "/cors", NULL);
    assert_int_equal(r->code, 418);
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "*");
    assert_string_equal(header(r, "X-Frame-Options"), "DENY");
    assert_null(header(r, "X-Gone-After-Error"));
    gust_http_client_response_free(r);
    /* So does a 405 made by the framework. */
    r = fetch(t, "PUT", "/cors", NULL);
    assert_int_equal(r->code, 405);
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "*");
    gust_http_client_response_free(r);
    finish(t, app);
}

static void test_protected_static_files(void **state)
{
    (void)state;
    make_root();
    gust_app *app = make_app("/login");
    gust_testing_server *t = gust_testing_start_app(app);
    gust_http_client_response *r = fetch(t, "GET", "/files/secret.txt", NULL);
    assert_int_equal(r->code, 302);
    assert_string_equal(header(r, "Location"),
                        "/login?next=%2Ffiles%2Fsecret.txt");
    /* The extension's own hooks run along the base's methods. */
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "*");
    assert_null(strstr(r->body, "top secret"));
    gust_http_client_response_free(r);
    char *cookie = user_cookie("carol");
    r = fetch(t, "GET", "/files/secret.txt", cookie);
    assert_int_equal(r->code, 200);
    assert_string_equal(r->body, "top secret\n");
    assert_non_null(strstr(header(r, "Content-Type"), "text/plain"));
    assert_non_null(header(r, "Etag")); /* the base's behaviour is intact */
    assert_string_equal(header(r, "Access-Control-Allow-Origin"), "*");
    gust_http_client_response_free(r);
    r = fetch(t, "HEAD", "/files/secret.txt", NULL);
    assert_int_equal(r->code, 302);
    gust_http_client_response_free(r);
    /* Traversal is still the base's 403 for a signed-in user. */
    r = fetch(t, "GET", "/files/..%2F..%2Fetc%2Fpasswd", cookie);
    assert_true(r->code == 403 || r->code == 404);
    gust_http_client_response_free(r);
    free(cookie);
    finish(t, app);
    remove_root();
}

/* A default handler made from a base is merged as routes are. */
static int nf_get(gust_handler *h)
{
    gust_handler_set_status(h, 404, NULL);
    return gust_handler_write_str(h, "custom 404");
}
static const gust_handler_class nf_base = {.get = nf_get};
static const gust_handler_class nf = {
    .base = &nf_base, .set_default_headers = cors_headers};

static void test_default_handler_base(void **state)
{
    (void)state;
    gust_app_settings s = {.default_handler = &nf};
    gust_app *app = gust_app_new((gust_route[]){GUST_ROUTES_END}, &s);
    assert_non_null(app);
    gust_testing_server *t = gust_testing_start_app(app);
    gust_http_client_response *r = fetch(t, "GET", "/nowhere", NULL);
    assert_int_equal(r->code, 404);
    assert_string_equal(r->body, "custom 404");
    assert_string_equal(header(r, "X-Frame-Options"), "DENY");
    gust_http_client_response_free(r);
    finish(t, app);
}

int main(void)
{
    gust_log_set_level(GUST_LOG_WARNING);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_authenticated_class),
        cmocka_unit_test(test_authenticated_methods),
        cmocka_unit_test(test_login_url_forms),
        cmocka_unit_test(test_set_default_headers),
        cmocka_unit_test(test_protected_static_files),
        cmocka_unit_test(test_default_handler_base),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
