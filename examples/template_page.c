/* template_page: a page rendered from templates (Tornado's
 * self.render("page.html", ...)):
 *
 *   template_page [--port=8888] [--address=127.0.0.1]
 *
 * GET / renders examples/templates/page.html, which extends base.html,
 * loops over a list, escapes the ?name= query argument and carries an
 * XSRF-protected form; POST / (the form, with its _xsrf field) renders
 * thanks.html. Exits 0 on SIGTERM.
 */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>

#include "gust/gust.h"
#include "gust/options.h"
#include "gust/web.h"

static int page_get(gust_handler *h)
{
    json_t *ctx = json_pack("{s:s, s:[s,s,s]}", "name",
                            gust_handler_get_argument(h, "name", "world"),
                            "items", "templates", "loops", "<escaping>");
    if (!ctx)
        return -ENOMEM;
    int rc = gust_handler_render(h, "page.html", ctx);
    json_decref(ctx);
    return rc;
}

static int page_post(gust_handler *h)
{
    /* The XSRF check passed before this runs. */
    json_t *ctx = json_pack("{s:s}", "name",
                            gust_handler_get_body_argument(h, "name",
                                                           "stranger"));
    if (!ctx)
        return -ENOMEM;
    int rc = gust_handler_render(h, "thanks.html", ctx);
    json_decref(ctx);
    return rc;
}

static const gust_handler_class page = {
    .name = "PageHandler", .get = page_get, .post = page_post};

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
    const char *address;
    gust_options_define_int(NULL, "port", &port, 8888,
                            "run on the given port", NULL);
    gust_options_define_string(NULL, "address", &address, "127.0.0.1",
                               "listen on this address", NULL);
    gust_options_parse_command_line(NULL, argc, argv);

    /* The templates sit next to this source file. */
    char src[] = __FILE__;
    char templates[4096];
    snprintf(templates, sizeof templates, "%s/templates", dirname(src));

    const gust_route routes[] = {GUST_ROUTE("/", &page),
                                 GUST_ROUTES_END};
    gust_app_settings s = {
        .template_path = templates,
        .xsrf_cookies = true,
        /* An example's secret: real applications read theirs from a file
         * or the environment. */
        .cookie_secret = "template-page-example",
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
