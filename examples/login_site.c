/* login_site: sign-in as Tornado has it (get_current_user, login_url,
 * authenticated classes), private files behind the sign-in (the static
 * file handler extended through .base) and default headers:
 *
 *   login_site [--port=8888] [--address=127.0.0.1] [--private=DIR]
 *
 * GET /account (signed in only: others go to /login?next=/account) renders
 * examples/templates/account.html; GET /login shows the form, POST /login
 * (name and password "secret", with the _xsrf field) sets the signed
 * "user" cookie and redirects to next; POST /logout clears it. GET
 * /private/<file> serves DIR's files to signed-in users. Every response,
 * error pages included, has X-Frame-Options: DENY. Exits 0 on SIGTERM.
 */
#include <errno.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "gust/gust.h"
#include "gust/options.h"
#include "gust/web.h"

static const char *user_from_cookie(gust_handler *h)
{
    return gust_handler_get_signed_cookie(h, "user", 0);
}

static void site_headers(gust_handler *h)
{
    gust_handler_set_header(h, "X-Frame-Options", "DENY");
}

/* Only a local path: "//evil.example" or "/\evil" would leave the site. */
static const char *safe_next(const char *next)
{
    if (!next || next[0] != '/' || next[1] == '/' || next[1] == '\\')
        return "/account";
    return next;
}

static int login_get(gust_handler *h)
{
    const char *next = gust_handler_get_argument(h, "next", "/account");
    return gust_handler_render_pack(h, "login.html", "{s:s}", "next",
                                    safe_next(next));
}

static int login_post(gust_handler *h)
{
    const char *name = gust_handler_get_argument(h, "name", GUST_REQUIRED);
    const char *password = gust_handler_get_argument(h, "password", "");
    if (!name)
        return 0; /* 400 Missing argument name */
    if (!name[0] || strcmp(password, "secret") != 0)
        return gust_handler_send_error(h, 403, "wrong name or password");
    int rc = gust_handler_set_signed_cookie(h, "user", name, NULL);
    if (rc < 0)
        return rc;
    return gust_handler_redirect(
        h, safe_next(gust_handler_get_argument(h, "next", NULL)), 303);
}

static int logout_post(gust_handler *h)
{
    gust_handler_clear_cookie(h, "user", NULL, NULL);
    return gust_handler_redirect(h, "/login", 303);
}

static int account_get(gust_handler *h)
{
    return gust_handler_render_pack(
        h, "account.html", "{s:s}", "bio",
        "Gust is at https://example.com/gust & friends.");
}

static const gust_handler_class login = {
    .name = "LoginHandler", .get = login_get, .post = login_post,
    .set_default_headers = site_headers};
static const gust_handler_class logout = {
    .name = "LogoutHandler", .post = logout_post,
    .set_default_headers = site_headers};
static const gust_handler_class account = {
    .name = "AccountHandler",
    .flags = GUST_HANDLER_AUTHENTICATED,
    .get = account_get,
    .get_current_user = user_from_cookie,
    .set_default_headers = site_headers};
/* StaticFileHandler with a sign-in in front of it. */
static const gust_handler_class private_files = {
    .base = &gust_static_file_handler,
    .name = "PrivateFiles",
    .flags = GUST_HANDLER_AUTHENTICATED,
    .get_current_user = user_from_cookie,
    .set_default_headers = site_headers};

static gust_app *app;

static void on_all_closed(gust_http_server *srv, void *data)
{
    (void)srv;
    gust_loop_stop(data);
}

static void on_signal(gust_loop *loop, int signum, void *data)
{
    (void)signum;
    (void)data;
    gust_http_server_close_all(gust_app_server(app), on_all_closed, loop);
}

int main(int argc, char **argv)
{
    int port;
    const char *address, *private_dir;
    gust_options_define_int(NULL, "port", &port, 8888,
                            "run on the given port", NULL);
    gust_options_define_string(NULL, "address", &address, "127.0.0.1",
                               "listen on this address", NULL);
    gust_options_define_string(NULL, "private", &private_dir, ".",
                               "directory served to signed-in users", NULL);
    gust_options_parse_command_line(NULL, argc, argv);

    /* The templates and static files sit next to this source file. */
    char src[] = __FILE__;
    const char *here = dirname(src);
    char templates[4096], statics[4096];
    snprintf(templates, sizeof templates, "%s/templates", here);
    snprintf(statics, sizeof statics, "%s/static", here);

    gust_static_options files = {.root = private_dir};
    const gust_route routes[] = {
        GUST_ROUTE("/login", &login, .name = "login"),
        GUST_ROUTE("/logout", &logout, .name = "logout"),
        GUST_ROUTE("/account", &account, .name = "account"),
        GUST_ROUTE("/private/(.*)", &private_files, .data = &files,
                   .name = "file"),
        GUST_ROUTES_END};
    gust_app_settings s = {
        .template_path = templates,
        .static_path = statics,
        .xsrf_cookies = true,
        .login_url = "/login",
        /* An example's secret: real applications read theirs from a file
         * or the environment. */
        .cookie_secret = "login-site-example",
    };
    app = gust_app_new(routes, &s);
    int rc = app ? gust_app_listen(app, port, address) : -errno;
    if (rc < 0) {
        gust_log_error("web", "cannot start: %s", gust_strerror(rc));
        gust_app_free(app);
        gust_options_free(NULL);
        return 1;
    }
    gust_loop *loop = gust_loop_current();
    gust_loop_add_signal(loop, SIGTERM, on_signal, NULL);
    gust_loop_add_signal(loop, SIGINT, on_signal, NULL);
    gust_log_info("web", "listening on %s:%d", address,
                  gust_http_server_port(gust_app_server(app)));
    gust_loop_start(loop);
    gust_loop_remove_signal(loop, SIGTERM);
    gust_loop_remove_signal(loop, SIGINT);
    gust_app_free(app);
    gust_options_free(NULL);
    return gust_loop_free(loop) == 0 ? 0 : 1;
}
