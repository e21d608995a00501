/* Unit tests for options (include/gust/options.h): every type, both
 * command-line forms, config files, --help, callbacks, logging options.
 * Each test uses a fresh registry and frees it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/options.h"

#define ARGV(...) ((char *[]){"prog", __VA_ARGS__, NULL})
#define ARGC(...) ((int)(sizeof((char *[]){"prog", __VA_ARGS__}) / sizeof(char *)))
/* parse_args with a literal command line. */
#define PARSE(opts, ...)                                                       \
    gust_options_parse_args(opts, ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), 0)

static int setup(void **state)
{
    alarm(30);
    *state = gust_options_new();
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    gust_options_free(*state);
    alarm(0);
    return 0;
}

/* A temporary file with the given contents; the caller unlinks and frees. */
static char *temp_file(const char *contents)
{
    char *path = strdup("/tmp/gust_options_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(contents);
    assert_int_equal(write(fd, contents, len), (ssize_t)len);
    close(fd);
    return path;
}

static char *read_all(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

/* ---- types and forms ----------------------------------------------- */

static void test_defaults_written_at_define(void **state)
{
    gust_options *o = *state;
    int port = -1;
    double ratio = -1, timeout = -1;
    bool debug = true;
    const char *name = "unset";
    gust_int_list ports = {NULL, 99};
    gust_string_list hosts = {NULL, 99};
    assert_int_equal(gust_options_define_int(o, "port", &port, 8888, "p", NULL), 0);
    assert_int_equal(gust_options_define_double(o, "ratio", &ratio, 0.25, NULL, NULL), 0);
    assert_int_equal(gust_options_define_bool(o, "debug", &debug, false, NULL, NULL), 0);
    assert_int_equal(gust_options_define_string(o, "name", &name, "gust", NULL, NULL), 0);
    assert_int_equal(gust_options_define_duration(o, "timeout", &timeout, 2.5, NULL, NULL), 0);
    assert_int_equal(gust_options_define_int_list(o, "ports", &ports, "80,443", NULL, NULL), 0);
    assert_int_equal(gust_options_define_string_list(o, "hosts", &hosts, NULL, NULL, NULL), 0);
    assert_int_equal(port, 8888);
    assert_true(ratio == 0.25);
    assert_false(debug);
    assert_string_equal(name, "gust");
    assert_true(timeout == 2.5);
    assert_int_equal(ports.count, 2);
    assert_int_equal(ports.items[0], 80);
    assert_int_equal(ports.items[1], 443);
    assert_int_equal(hosts.count, 0);
    assert_null(hosts.items);
    /* The getters see the same values. */
    assert_int_equal(gust_options_get_int(o, "port"), 8888);
    assert_string_equal(gust_options_get_string(o, "name"), "gust");
    assert_int_equal(gust_options_type(o, "timeout"), GUST_OPTION_DURATION);
    assert_int_equal(gust_options_type(o, "nope"), -ENOENT);
}

static void test_int_both_forms(void **state)
{
    gust_options *o = *state;
    int port = 0;
    gust_options_define_int(o, "port", &port, 8888, NULL, NULL);
    assert_int_equal(PARSE(o, "--port=8000"), 0);
    assert_int_equal(port, 8000);
    assert_int_equal(PARSE(o, "--port", "8001"), 0);
    assert_int_equal(port, 8001);
    assert_int_equal(PARSE(o, "-port=-3"), 0);
    assert_int_equal(port, -3);
    assert_int_equal(PARSE(o, "--port", "-4"), 0);
    assert_int_equal(port, -4);
    assert_int_equal(gust_options_get_int(o, "port"), -4);
}

static void test_double_and_string(void **state)
{
    gust_options *o = *state;
    double ratio = 0;
    const char *name = NULL;
    gust_options_define_double(o, "ratio", &ratio, 1, NULL, NULL);
    gust_options_define_string(o, "name", &name, NULL, NULL, NULL);
    assert_null(name);
    assert_int_equal(PARSE(o, "--ratio=0.5", "--name", "hello world"), 0);
    assert_true(ratio == 0.5);
    assert_string_equal(name, "hello world");
    assert_int_equal(PARSE(o, "--ratio", "1e3", "--name="), 0);
    assert_true(ratio == 1000);
    assert_string_equal(name, "");
    /* A string value may contain '='. */
    assert_int_equal(PARSE(o, "--name=a=b"), 0);
    assert_string_equal(name, "a=b");
}

static void test_bool_forms(void **state)
{
    gust_options *o = *state;
    bool debug = false;
    gust_options_define_bool(o, "debug", &debug, false, NULL, NULL);
    static const struct {
        const char *arg;
        bool want;
    } cases[] = {
        {"--debug", true},         {"--debug=false", false},
        {"--debug=TRUE", true},    {"--debug=0", false},
        {"--debug=1", true},       {"--debug=No", false},
        {"--debug=yes", true},     {"--debug=off", false},
        {"--debug=On", true},      {"--debug=FALSE", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(PARSE(o, (char *)cases[i].arg), 0);
        assert_int_equal(debug, cases[i].want);
    }
    /* A bare bool never takes the next argument: it is positional. */
    int n;
    assert_int_equal(PARSE(o, "--debug=no", "--debug", "false"), 0);
    assert_true(debug);
    const char *const *rest = gust_options_args(o, &n);
    assert_int_equal(n, 1);
    assert_string_equal(rest[0], "false");
    assert_null(rest[1]);
}

static void test_durations(void **state)
{
    gust_options *o = *state;
    double t = 0;
    gust_options_define_duration(o, "timeout", &t, 1, NULL, NULL);
    static const struct {
        const char *text;
        double secs;
    } cases[] = {
        {"500ms", 0.5},  {"2s", 2},        {"1.5min", 90},   {"1h", 3600},
        {"1d", 86400},   {"1w", 604800},   {"3", 3},         {"250us", 250e-6},
        {"2m", 120},     {"1h 30m", 5400}, {"1h30min", 5400}, {"2 seconds", 2},
        {".5s", 0.5},    {"10 minutes", 600}, {"1e3ms", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char arg[64];
        snprintf(arg, sizeof arg, "--timeout=%s", cases[i].text);
        assert_int_equal(PARSE(o, arg), 0);
        double diff = t - cases[i].secs;
        if (diff < 0)
            diff = -diff;
        if (diff > 1e-9)
            fail_msg("%s gave %g, want %g", cases[i].text, t, cases[i].secs);
    }
    double s;
    assert_int_equal(gust_parse_duration("1x", &s), -EINVAL);
    assert_int_equal(gust_parse_duration("", &s), -EINVAL);
    assert_int_equal(gust_parse_duration("ms", &s), -EINVAL);
    assert_int_equal(gust_parse_duration("1e999", &s), -EINVAL);
}

static void test_int_list_and_ranges(void **state)
{
    gust_options *o = *state;
    gust_int_list ports = {NULL, 0};
    gust_options_define_int_list(o, "ports", &ports, NULL, NULL, NULL);
    assert_int_equal(PARSE(o, "--ports=80,443"), 0);
    assert_int_equal(ports.count, 2);
    assert_int_equal(ports.items[0], 80);
    assert_int_equal(ports.items[1], 443);
    assert_int_equal(PARSE(o, "--ports", "1:3, 10"), 0);
    int want[] = {1, 2, 3, 10};
    assert_int_equal(ports.count, 4);
    assert_memory_equal(ports.items, want, sizeof want);
    gust_int_list got = gust_options_get_int_list(o, "ports");
    assert_int_equal(got.count, 4);
    assert_ptr_equal(got.items, ports.items);
    assert_int_equal(PARSE(o, "--ports="), 0);
    assert_int_equal(ports.count, 0);
    /* Bad lists leave the value unchanged. */
    assert_int_equal(PARSE(o, "--ports=5"), 0);
    assert_int_equal(PARSE(o, "--ports=3:1"), -EINVAL);
    assert_non_null(strstr(gust_options_last_error(o), "ends before it starts"));
    assert_int_equal(PARSE(o, "--ports=1,,2"), -EINVAL);
    assert_int_equal(PARSE(o, "--ports=1:x"), -EINVAL);
    assert_int_equal(PARSE(o, "--ports=0:2000000000"), -EINVAL);
    assert_non_null(strstr(gust_options_last_error(o), "more than"));
    assert_int_equal(ports.count, 1);
    assert_int_equal(ports.items[0], 5);
}

static void test_string_list(void **state)
{
    gust_options *o = *state;
    gust_string_list hosts = {NULL, 0};
    gust_options_define_string_list(o, "hosts", &hosts, "a", NULL, NULL);
    assert_int_equal(hosts.count, 1);
    assert_string_equal(hosts.items[0], "a");
    assert_int_equal(PARSE(o, "--hosts=x.org, y.org,z"), 0);
    assert_int_equal(hosts.count, 3);
    assert_string_equal(hosts.items[0], "x.org");
    assert_string_equal(hosts.items[1], "y.org");
    assert_string_equal(hosts.items[2], "z");
}

static void test_dash_underscore_equivalent(void **state)
{
    gust_options *o = *state;
    int n = 0;
    assert_int_equal(gust_options_define_int(o, "max_body_size", &n, 1, NULL, NULL), 0);
    assert_int_equal(PARSE(o, "--max-body-size=5"), 0);
    assert_int_equal(n, 5);
    assert_int_equal(PARSE(o, "--max_body-size", "6"), 0);
    assert_int_equal(n, 6);
    assert_int_equal(gust_options_get_int(o, "max-body_size"), 6);
    assert_int_equal(gust_options_define_int(o, "max-body-size", NULL, 1, NULL, NULL), -EEXIST);
    assert_non_null(strstr(gust_options_last_error(o), "defined twice"));
}

static void test_bad_definitions(void **state)
{
    gust_options *o = *state;
    assert_int_equal(gust_options_define_int(o, "", NULL, 1, NULL, NULL), -EINVAL);
    assert_int_equal(gust_options_define_int(o, "-x", NULL, 1, NULL, NULL), -EINVAL);
    assert_int_equal(gust_options_define_int(o, "a=b", NULL, 1, NULL, NULL), -EINVAL);
    assert_int_equal(gust_options_define_int(o, "a b", NULL, 1, NULL, NULL), -EINVAL);
    assert_int_equal(gust_options_define_int_list(o, "l", NULL, "1,x", NULL, NULL), -EINVAL);
    assert_int_equal(gust_options_type(o, "l"), -ENOENT);
    assert_int_equal(gust_options_define_int(o, "x", NULL, 1, NULL, NULL), 0);
    assert_int_equal(gust_options_define_bool(o, "x", NULL, 1, NULL, NULL), -EEXIST);
}

static void test_positional_and_double_dash(void **state)
{
    gust_options *o = *state;
    int port = 0;
    bool v = false;
    gust_options_define_int(o, "port", &port, 1, NULL, NULL);
    gust_options_define_bool(o, "v", &v, false, NULL, NULL);
    int n;
    assert_int_equal(PARSE(o, "--port=2", "--", "--v", "x"), 0);
    const char *const *rest = gust_options_args(o, &n);
    assert_int_equal(port, 2);
    assert_false(v);
    assert_int_equal(n, 2);
    assert_string_equal(rest[0], "--v");
    assert_string_equal(rest[1], "x");
    /* The first non-option argument ends the options, as in Tornado. */
    assert_int_equal(PARSE(o, "file", "--port=3"), 0);
    rest = gust_options_args(o, &n);
    assert_int_equal(port, 2);
    assert_int_equal(n, 2);
    assert_string_equal(rest[0], "file");
    assert_int_equal(PARSE(o, "-", "x"), 0);
    rest = gust_options_args(o, &n);
    assert_int_equal(n, 2);
    assert_string_equal(rest[0], "-");
    assert_int_equal(PARSE(o, "--v"), 0);
    gust_options_args(o, &n);
    assert_int_equal(n, 0);
}

/* ---- errors -------------------------------------------------------- */

static void test_unknown_option_suggests(void **state)
{
    gust_options *o = *state;
    gust_options_define_int(o, "port", NULL, 1, NULL, NULL);
    gust_options_define_bool(o, "debug", NULL, false, NULL, NULL);
    assert_int_equal(PARSE(o, "--prot=1"), -ENOENT);
    assert_string_equal(gust_options_last_error(o),
                        "unknown option --prot (did you mean --port?)");
    assert_int_equal(PARSE(o, "--debgu"), -ENOENT);
    assert_string_equal(gust_options_last_error(o),
                        "unknown option --debgu (did you mean --debug?)");
    /* A swap of two letters is one typo, even in a short name. */
    gust_options_define_int(o, "xy", NULL, 1, NULL, NULL);
    assert_int_equal(PARSE(o, "--yx=1"), -ENOENT);
    assert_string_equal(gust_options_last_error(o),
                        "unknown option --yx (did you mean --xy?)");
    assert_int_equal(PARSE(o, "--zzzzzz"), -ENOENT);
    assert_string_equal(gust_options_last_error(o), "unknown option --zzzzzz");
}

static void test_bad_values(void **state)
{
    gust_options *o = *state;
    static const struct {
        const char *arg, *msg;
    } cases[] = {
        {"--i=abc", "bad value for --i: 'abc' is not an integer"},
        {"--i=", "bad value for --i: '' is not an integer"},
        {"--i=12x", "bad value for --i: '12x' is not an integer"},
        {"--i=99999999999", "bad value for --i: '99999999999' is out of range for an integer"},
        {"--d=fast", "bad value for --d: 'fast' is not a number"},
        {"--d=inf", "bad value for --d: 'inf' is not a number"},
        {"--b=maybe", "bad value for --b: 'maybe' is not a boolean (true/false, yes/no, on/off, 1/0)"},
        {"--t=soon", "bad value for --t: 'soon' is not a duration (e.g. 500ms, 2s, 1.5min, 1h, 1d)"},
        {"--t=5 parsecs", "bad value for --t: '5 parsecs' is not a duration (e.g. 500ms, 2s, 1.5min, 1h, 1d)"},
        {"--l=1,b", "bad value for --l: 'b' is not an integer"},
    };
    int i = 7;
    double d = 7, t = 7;
    bool b = true;
    gust_options_define_int(o, "i", &i, 7, NULL, NULL);
    gust_options_define_double(o, "d", &d, 7, NULL, NULL);
    gust_options_define_bool(o, "b", &b, true, NULL, NULL);
    gust_options_define_duration(o, "t", &t, 7, NULL, NULL);
    gust_options_define_int_list(o, "l", NULL, NULL, NULL, NULL);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        assert_int_equal(PARSE(o, (char *)cases[k].arg), -EINVAL);
        assert_string_equal(gust_options_last_error(o), cases[k].msg);
    }
    /* Failed values leave the old ones. */
    assert_int_equal(i, 7);
    assert_true(d == 7 && t == 7);
    assert_true(b);
    assert_int_equal(PARSE(o, "--i"), -EINVAL);
    assert_string_equal(gust_options_last_error(o), "option --i needs a value");
}

static void test_exiting_parse(void **state)
{
    (void)state;
    /* The Tornado-style calls exit: 2 on error, 0 after --help. */
    static char *const lines[][3] = {
        {"prog", "--prot=1", NULL},
        {"prog", "--port=abc", NULL},
        {"prog", "--help", NULL},
    };
    static const int want[] = {2, 2, 0, 2};
    for (int k = 0; k < 4; k++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            int fd = open("/dev/null", O_WRONLY);
            dup2(fd, 1);
            dup2(fd, 2);
            gust_options *o = gust_options_new();
            gust_options_define_int(o, "port", NULL, 1, NULL, NULL);
            if (k < 3)
                gust_options_parse_command_line(o, 2, (char **)lines[k]);
            else
                gust_options_parse_config_file(o, "/nonexistent/gust.conf");
            _exit(42);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), want[k]);
    }
}

/* ---- config files -------------------------------------------------- */

static void test_config_file(void **state)
{
    gust_options *o = *state;
    int port = 0;
    bool debug = false;
    const char *name = NULL, *motd = NULL;
    double timeout = 0;
    gust_int_list ports = {NULL, 0};
    gust_options_define_int(o, "port", &port, 1, NULL, NULL);
    gust_options_define_bool(o, "debug", &debug, false, NULL, NULL);
    gust_options_define_string(o, "name", &name, NULL, NULL, NULL);
    gust_options_define_string(o, "motd", &motd, NULL, NULL, NULL);
    gust_options_define_duration(o, "timeout", &timeout, 1, NULL, NULL);
    gust_options_define_int_list(o, "ports", &ports, NULL, NULL, NULL);
    char *path = temp_file("# a comment\n"
                           "\n"
                           "port=8080\n"
                           "   debug   =   yes   \n"
                           "name = \"say \\\"hi\\\"\\tnow\" # trailing\n"
                           "motd = 'a # not a comment'\n"
                           "timeout = 1.5min # 90 s\n"
                           "ports = 80, 8000:8001\r\n"
                           "\t# indented comment\n");
    assert_int_equal(gust_options_parse_file(o, path, 0), 0);
    assert_int_equal(port, 8080);
    assert_true(debug);
    assert_string_equal(name, "say \"hi\"\tnow");
    assert_string_equal(motd, "a # not a comment");
    assert_true(timeout == 90);
    assert_int_equal(ports.count, 3);
    assert_int_equal(ports.items[2], 8001);
    unlink(path);
    free(path);
}

static void test_config_errors_have_file_and_line(void **state)
{
    gust_options *o = *state;
    gust_options_define_int(o, "port", NULL, 1, NULL, NULL);
    gust_options_define_string(o, "name", NULL, NULL, NULL, NULL);
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"port = 1\n\nport 2\n", "S:3: expected 'name = value'"},
        {"= 2\n", "S:1: expected 'name = value'"},
        {"# c\nport = abc\n", "S:2: bad value for port: 'abc' is not an integer"},
        {"prot = 1\n", "S:1: unknown option prot (did you mean port?)"},
        {"name = \"abc\n", "S:1: unterminated quoted value"},
        {"name = \"a\\qb\"\n", "S:1: unknown escape in quoted value"},
        {"name = \"a\" b\n", "S:1: unexpected text after the quoted value"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        int rc = gust_options_parse_string(o, cases[k].text,
                                           strlen(cases[k].text), "S", 0);
        assert_true(rc < 0);
        assert_string_equal(gust_options_last_error(o), cases[k].msg);
    }
    /* A real file names itself; a missing one says so. */
    char *path = temp_file("port = 2\nport = x\n");
    assert_int_equal(gust_options_parse_file(o, path, 0), -EINVAL);
    char want[256];
    snprintf(want, sizeof want, "%s:2: bad value for port: 'x' is not an integer", path);
    assert_string_equal(gust_options_last_error(o), want);
    assert_int_equal(gust_options_get_int(o, "port"), 2);
    unlink(path);
    assert_int_equal(gust_options_parse_file(o, path, 0), -ENOENT);
    assert_non_null(strstr(gust_options_last_error(o), "cannot read config file"));
    free(path);
    /* Unknown names may be skipped on request. */
    assert_int_equal(gust_options_parse_string(o, "other = 1\nport = 9\n", 19,
                                               NULL, GUST_OPTIONS_IGNORE_UNKNOWN), 0);
    assert_int_equal(gust_options_get_int(o, "port"), 9);
    /* Embedded NUL bytes are refused, not truncated. */
    assert_int_equal(gust_options_parse_string(o, "port = 1\0 2\n", 12, NULL, 0), -EINVAL);
    assert_string_equal(gust_options_last_error(o), "<string>:1: NUL byte in line");
}

static void test_command_line_overrides_config(void **state)
{
    gust_options *o = *state;
    int port = 0, workers = 0;
    gust_options_define_int(o, "port", &port, 1, NULL, NULL);
    gust_options_define_int(o, "workers", &workers, 1, NULL, NULL);
    const char *conf = "port = 80\nworkers = 4\n";
    assert_int_equal(gust_options_parse_string(o, conf, strlen(conf), "c",
                                               GUST_OPTIONS_NOT_FINAL), 0);
    assert_int_equal(PARSE(o, "--port=9000"), 0);
    assert_int_equal(port, 9000);
    assert_int_equal(workers, 4);
}

/* ---- help ---------------------------------------------------------- */

static void test_help_output(void **state)
{
    gust_options *o = *state;
    gust_options_define_int(o, "port", NULL, 8888, "run on the given port", NULL);
    gust_options_define_duration(o, "idle-timeout", NULL, 0.5, "close idle connections", "http");
    gust_options_define_string(o, "db-host", NULL, "localhost", "database host", "db");
    gust_options_define_bool(o, "verbose", NULL, false, NULL, "http");
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    gust_options_set_help_output(o, out);
    int port = 0;
    (void)port;
    assert_int_equal(PARSE(o, "--port=5", "--help", "--port=6"), GUST_OPTIONS_HELP);
    fclose(out);
    assert_non_null(strstr(text, "Usage: prog [OPTIONS]\n"));
    assert_non_null(strstr(text, "--help "));
    assert_non_null(strstr(text, "\nprog options:\n\n  --port=INT"));
    assert_non_null(strstr(text, "run on the given port (default 8888)\n"));
    assert_non_null(strstr(text, "--idle-timeout=DURATION"));
    assert_non_null(strstr(text, "close idle connections (default 500ms)"));
    assert_non_null(strstr(text, "--db-host=STRING"));
    assert_non_null(strstr(text, "(default localhost)"));
    assert_non_null(strstr(text, "  --verbose "));
    /* The program's group first, then the named groups sorted. */
    char *own = strstr(text, "prog options:");
    char *db = strstr(text, "\ndb options:");
    char *http = strstr(text, "\nhttp options:");
    assert_true(own && db && http && own < db && db < http);
    assert_true(strstr(text, "--db-host") > db && strstr(text, "--db-host") < http);
    assert_true(strstr(text, "--verbose") > http);
    free(text);
    /* Nothing after --help was parsed, and no callback rule applies. */
    assert_int_equal(gust_options_get_int(o, "port"), 5);
}

static void test_help_wraps_long_text(void **state)
{
    gust_options *o = *state;
    gust_options_define_string(o, "a-really-quite-long-option-name", NULL, NULL,
                               "one two three four five six seven eight nine ten "
                               "eleven twelve thirteen fourteen fifteen sixteen",
                               NULL);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    gust_options_print_help(o, out);
    fclose(out);
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
        assert_true(strlen(line) <= 79);
    free(text);
}

/* ---- callbacks ----------------------------------------------------- */

struct cb_log {
    int calls;
    int port_seen;
    int order[4];
};

static void cb_first(gust_options *opts, void *data)
{
    struct cb_log *log = data;
    log->order[log->calls++] = 1;
    log->port_seen = gust_options_get_int(opts, "port");
}

static void cb_second(gust_options *opts, void *data)
{
    (void)opts;
    struct cb_log *log = data;
    log->order[log->calls++] = 2;
}

static void test_parse_callbacks(void **state)
{
    gust_options *o = *state;
    struct cb_log log = {0};
    gust_options_define_int(o, "port", NULL, 1, NULL, NULL);
    assert_int_equal(gust_options_add_parse_callback(o, cb_first, &log), 0);
    assert_int_equal(gust_options_add_parse_callback(o, cb_second, &log), 0);
    assert_int_equal(log.calls, 0);
    /* Not final, failed, --help: no callbacks. */
    assert_int_equal(gust_options_parse_args(o, 2, ARGV("--port=3"), GUST_OPTIONS_NOT_FINAL), 0);
    assert_int_equal(PARSE(o, "--port=x"), -EINVAL);
    FILE *devnull = fopen("/dev/null", "w");
    gust_options_set_help_output(o, devnull);
    assert_int_equal(PARSE(o, "--help"), GUST_OPTIONS_HELP);
    fclose(devnull);
    assert_int_equal(log.calls, 0);
    assert_int_equal(PARSE(o, "--port=4"), 0);
    assert_int_equal(log.calls, 2);
    assert_int_equal(log.order[0], 1);
    assert_int_equal(log.order[1], 2);
    assert_int_equal(log.port_seen, 4);
    assert_int_equal(gust_options_parse_string(o, "port = 5", 8, NULL, 0), 0);
    assert_int_equal(log.calls, 4);
    assert_int_equal(log.port_seen, 5);
}

/* ---- default registry and set -------------------------------------- */

static void test_default_registry(void **state)
{
    (void)state;
    int port = 0;
    assert_int_equal(gust_options_define_int(NULL, "port", &port, 8888, "p", NULL), 0);
    assert_ptr_not_equal(gust_options_default(), NULL);
    assert_int_equal(gust_options_type(NULL, "logging"), GUST_OPTION_STRING);
    assert_int_equal(gust_options_type(NULL, "log_file_prefix"), GUST_OPTION_STRING);
    assert_int_equal(gust_options_type(NULL, "log-to-stderr"), GUST_OPTION_BOOL);
    assert_int_equal(gust_options_set(NULL, "port", "81"), 0);
    assert_int_equal(port, 81);
    assert_int_equal(gust_options_set(NULL, "port", "x"), -EINVAL);
    assert_int_equal(gust_options_set(NULL, "nope", "x"), -ENOENT);
    gust_options_free(gust_options_default());
    /* A new default registry starts empty again (but for logging). */
    assert_int_equal(gust_options_type(NULL, "port"), -ENOENT);
    gust_options_free(gust_options_default());
}

static void test_getters_wrong_type(void **state)
{
    gust_options *o = *state;
    gust_options_define_int(o, "port", NULL, 5, NULL, NULL);
    int level = gust_log_level();
    gust_log_set_level(GUST_LOG_NONE);
    assert_null(gust_options_get_string(o, "port"));
    assert_false(gust_options_get_bool(o, "missing"));
    assert_int_equal(gust_options_get_int_list(o, "port").count, 0);
    gust_log_set_level(level);
    assert_int_equal(gust_options_get_int(o, "port"), 5);
}

/* ---- logging options ----------------------------------------------- */

static void test_logging_level(void **state)
{
    gust_options *o = *state;
    int before = gust_log_level();
    assert_int_equal(gust_options_define_logging(o), 0);
    assert_int_equal(gust_options_define_logging(o), -EEXIST);
    assert_int_equal(PARSE(o, "--logging=debug"), 0);
    assert_int_equal(gust_log_level(), GUST_LOG_DEBUG);
    assert_int_equal(PARSE(o, "--logging", "ERROR"), 0);
    assert_int_equal(gust_log_level(), GUST_LOG_ERROR);
    assert_int_equal(PARSE(o, "--logging=none"), 0);
    assert_int_equal(gust_log_level(), GUST_LOG_NONE);
    assert_int_equal(PARSE(o, "--logging=loud"), -EINVAL);
    assert_string_equal(gust_options_last_error(o),
                        "bad value for --logging: 'loud' is not one of debug, "
                        "info, warning, error, none");
    assert_int_equal(gust_log_level(), GUST_LOG_NONE);
    gust_log_set_level(before);
}

static void test_log_file_prefix(void **state)
{
    gust_options *o = *state;
    int before = gust_log_level();
    gust_options_define_logging(o);
    char dir[] = "/tmp/gust_logXXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], arg[160];
    snprintf(path, sizeof path, "%s/app.log", dir);
    snprintf(arg, sizeof arg, "--log-file-prefix=%s", path);

    /* stderr goes to a file so the test can see what reaches it. */
    char errpath[160];
    snprintf(errpath, sizeof errpath, "%s/stderr", dir);
    fflush(stderr);
    int saved = dup(2);
    int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);

    assert_int_equal(PARSE(o, arg, "--logging=info"), 0);
    gust_log_info("test", "to the file %d", 1);
    gust_log_debug("test", "below the level");
    assert_int_equal(PARSE(o, arg, "--log-to-stderr"), 0);
    gust_log_warning("test", "to both");
    gust_options_free(o);
    *state = NULL;
    /* Freed: the default stderr writer is back. */
    gust_log_error("test", "after free");

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char *logged = read_all(path);
    char *err = read_all(errpath);
    assert_non_null(logged);
    assert_non_null(err);
    assert_non_null(strstr(logged, "[I "));
    assert_non_null(strstr(logged, " test] to the file 1\n"));
    assert_non_null(strstr(logged, "[W "));
    assert_non_null(strstr(logged, " test] to both\n"));
    assert_null(strstr(logged, "below the level"));
    assert_null(strstr(logged, "after free"));
    assert_null(strstr(err, "to the file"));
    assert_non_null(strstr(err, " test] to both\n"));
    assert_non_null(strstr(err, "after free"));
    free(logged);
    free(err);
    unlink(path);
    unlink(errpath);
    rmdir(dir);
    gust_log_set_level(before);
}

static void test_log_file_rotation(void **state)
{
    gust_options *o = *state;
    int before = gust_log_level();
    gust_options_define_logging(o);
    char dir[] = "/tmp/gust_logXXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], arg[160], rotated[160], second[160];
    snprintf(path, sizeof path, "%s/app.log", dir);
    snprintf(rotated, sizeof rotated, "%s.1", path);
    snprintf(second, sizeof second, "%s.2", path);
    snprintf(arg, sizeof arg, "--log-file-prefix=%s", path);
    assert_int_equal(PARSE(o, arg, "--log-file-max-size=200",
                           "--log-file-num-backups=1", "--logging=info"), 0);
    for (int i = 0; i < 10; i++)
        gust_log_info("test", "line %d with some padding to fill it up", i);
    gust_options_free(o);
    *state = NULL;
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size <= 200);
    assert_int_equal(stat(rotated, &st), 0);
    assert_true(st.st_size <= 200);
    assert_int_equal(stat(second, &st), -1); /* only one backup kept */
    char *last = read_all(path);
    assert_non_null(strstr(last, "line 9 "));
    free(last);
    unlink(path);
    unlink(rotated);
    rmdir(dir);
    gust_log_set_level(before);
}

static void test_log_file_unopenable(void **state)
{
    gust_options *o = *state;
    gust_options_define_logging(o);
    assert_int_equal(PARSE(o, "--log-file-prefix=/nonexistent-dir/x.log"), -ENOENT);
    assert_non_null(strstr(gust_options_last_error(o),
                           "cannot open log file /nonexistent-dir/x.log"));
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_defaults_written_at_define),
        T(test_int_both_forms),
        T(test_double_and_string),
        T(test_bool_forms),
        T(test_durations),
        T(test_int_list_and_ranges),
        T(test_string_list),
        T(test_dash_underscore_equivalent),
        T(test_bad_definitions),
        T(test_positional_and_double_dash),
        T(test_unknown_option_suggests),
        T(test_bad_values),
        T(test_exiting_parse),
        T(test_config_file),
        T(test_config_errors_have_file_and_line),
        T(test_command_line_overrides_config),
        T(test_help_output),
        T(test_help_wraps_long_text),
        T(test_parse_callbacks),
        T(test_default_registry),
        T(test_getters_wrong_type),
        T(test_logging_level),
        T(test_log_file_prefix),
        T(test_log_file_rotation),
        T(test_log_file_unopenable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
