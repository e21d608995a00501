/* Tornado's options example (TORNADO_EXAMPLES.md E5):
 *
 *     define("port", default=8888, help="run on the given port", type=int)
 *     tornado.options.parse_command_line()
 *
 * Run: options_demo --port=9000, options_demo --help, or
 * options_demo --config=app.conf (a file of "name = value" lines; options
 * given after --config on the command line win, as they are parsed last).
 * It prints the effective values, one "name=value" per line, then the
 * positional arguments.
 */
#include <stdbool.h>
#include <stdio.h>

#include "gust/log.h"
#include "gust/options.h"

static int port;
static bool debug;
static const char *name;
static double timeout;
static gust_int_list ports;

/* Tornado's add_parse_callback: runs once the command line is parsed. */
static void on_parsed(gust_options *opts, void *data)
{
    (void)opts;
    (void)data;
    printf("parsed\n");
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    gust_options_define_int(NULL, "port", &port, 8888, "run on the given port",
                            NULL);
    gust_options_define_bool(NULL, "debug", &debug, false,
                             "log more and reload on change", NULL);
    gust_options_define_string(NULL, "name", &name, "gust",
                               "the server's name in greetings", NULL);
    gust_options_define_duration(NULL, "timeout", &timeout, 30,
                                 "idle connection timeout", NULL);
    gust_options_define_int_list(NULL, "extra-ports", &ports, NULL,
                                 "more ports to listen on", NULL);
    gust_options_define_string(NULL, "config", &config, NULL,
                               "read options from this file first", NULL);
    gust_options_add_parse_callback(NULL, on_parsed, NULL);

    /* Two passes, as Tornado programs do: find --config, read the file,
     * then parse the command line again so that it overrides the file. */
    const unsigned first = GUST_OPTIONS_NOT_FINAL | GUST_OPTIONS_EXIT;
    gust_options_parse_args(NULL, argc, argv, first);
    if (config)
        gust_options_parse_file(NULL, config, first);
    gust_options_parse_command_line(NULL, argc, argv);

    /* Goes to stderr, or to --log-file-prefix, at --logging's level. */
    gust_log_info("demo", "would listen on port %d", port);
    printf("port=%d\n", port);
    printf("debug=%s\n", debug ? "true" : "false");
    printf("name=%s\n", name);
    printf("timeout=%g\n", timeout);
    printf("extra-ports=");
    for (size_t i = 0; i < ports.count; i++)
        printf("%s%d", i ? "," : "", ports.items[i]);
    printf("\n");
    int nargs;
    const char *const *args = gust_options_args(NULL, &nargs);
    for (int i = 0; i < nargs; i++)
        printf("arg=%s\n", args[i]);
    gust_options_free(gust_options_default());
    return 0;
}
