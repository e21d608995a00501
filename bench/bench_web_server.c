/* bench_web_server: the web framework under load, for bench/compare.sh
 * (GUST_SERVER=build/rel/bench/bench_web_server) or any HTTP load tool:
 *
 *   bench_web_server [--port=8888] [--address=127.0.0.1] [--processes=1]
 *                    [--logging=warning]
 *
 *   /          "Hello, world" (text/plain), as hello_http
 *   /json      TechEmpower's JSON test: {"message":"Hello, World!"}
 *   /template  a small template render (12 escaped items)
 *
 * The access log is off at the default level (warning), as it is in
 * Tornado benchmarks. SIGTERM or SIGINT closes the connections and exits 0.
 */
#include <errno.h>
#include <jansson.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>

#include "gust/gust.h"
#include "gust/options.h"
#include "gust/web.h"

static int hello_get(gust_handler *h)
{
    gust_handler_set_header(h, "Content-Type", "text/plain");
    return gust_handler_write_str(h, "Hello, world");
}

static int json_get(gust_handler *h)
{
    json_t *j = json_pack("{s:s}", "message", "Hello, World!");
    int rc = j ? gust_handler_write_json(h, j) : -ENOMEM;
    json_decref(j);
    return rc;
}

static json_t *fortunes;

static int template_get(gust_handler *h)
{
    return gust_handler_render(h, "bench.html", fortunes);
}

static const gust_handler_class hello = {.name = "hello", .get = hello_get};
static const gust_handler_class json = {.name = "json", .get = json_get};
static const gust_handler_class templ = {.name = "template",
                                         .get = template_get};

static gust_http_server *server;

static void on_all_closed(gust_http_server *srv, void *data)
{
    (void)srv;
    gust_loop_stop(data);
}

static void on_signal(gust_loop *loop, int signum, void *data)
{
    (void)signum;
    (void)data;
    gust_http_server_close_all(server, on_all_closed, loop);
}

int main(int argc, char **argv)
{
    int port, processes;
    const char *address;
    gust_options *opts = gust_options_default();
    gust_options_define_int(NULL, "port", &port, 8888, "port", NULL);
    gust_options_define_string(NULL, "address", &address, "127.0.0.1",
                               "address", NULL);
    gust_options_define_int(NULL, "processes", &processes, 1,
                            "processes (0: one per CPU)", NULL);
    gust_options_set(opts, "logging", "warning");
    gust_options_parse_command_line(NULL, argc, argv);

    char src[] = __FILE__;
    char templates[4096];
    snprintf(templates, sizeof templates, "%s/../examples/templates",
             dirname(src));
    fortunes = json_pack("{s:[s,s,s,s,s,s,s,s,s,s,s,s]}", "fortunes",
                         "fortune: No such file or directory",
                         "A computer scientist is someone who fixes things "
                         "that aren't broken.",
                         "After enough decimal places, nobody gives a damn.",
                         "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67",
                         "A computer program does what you tell it to do, "
                         "not what you want it to do.",
                         "Emacs is a nice operating system, but I prefer UNIX.",
                         "Any program that runs right is obsolete.",
                         "A list is only as strong as its weakest link.",
                         "Feature: A bug with seniority.",
                         "Computers make very fast, very accurate mistakes.",
                         "<script>alert(\"This should not be displayed "
                         "in a browser alert box.\");</script>",
                         "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af");
    const gust_route routes[] = {GUST_ROUTE("/", &hello),
                                 GUST_ROUTE("/json", &json),
                                 GUST_ROUTE("/template", &templ),
                                 GUST_ROUTES_END};
    gust_app_settings s = {.template_path = templates};
    gust_app *app = fortunes ? gust_app_new(routes, &s) : NULL;
    gust_http_server *own = NULL;
    int rc = app ? 0 : -ENOMEM;
    if (rc == 0 && processes == 1) {
        rc = gust_app_listen(app, port, address);
        server = gust_app_server(app);
    } else if (rc == 0) {
        own = gust_http_server_new(gust_app_http_handler(app), NULL);
        rc = own ? gust_http_server_bind(own, port, address) : -errno;
        if (rc == 0)
            rc = gust_http_server_start(own, processes);
        server = own;
    }
    if (rc < 0) {
        fprintf(stderr, "bench_web_server: cannot start: %s\n",
                gust_strerror(rc));
        gust_http_server_free(own);
        gust_app_free(app);
        json_decref(fortunes);
        gust_options_free(NULL);
        return 1;
    }
    gust_loop *loop = gust_loop_current();
    gust_loop_add_signal(loop, SIGTERM, on_signal, NULL);
    gust_loop_add_signal(loop, SIGINT, on_signal, NULL);
    /* Said whatever the log level, for scripts that wait for it. */
    fprintf(stderr, "listening on %s:%d\n", address,
            gust_http_server_port(server));
    gust_loop_start(loop);
    gust_loop_remove_signal(loop, SIGTERM);
    gust_loop_remove_signal(loop, SIGINT);
    gust_http_server_free(own);
    gust_app_free(app);
    json_decref(fortunes);
    gust_options_free(NULL);
    return gust_loop_free(loop) == 0 ? 0 : 1;
}
