/* libFuzzer target for options: config-file text and command lines.
 *
 * Input: config text, then a NUL byte, then command-line arguments one per
 * line. Both go to a fresh registry holding one option of each type, then
 * the help is printed to memory. Checks: a failed parse always explains
 * itself, a config error names its source and line, and values read back
 * are well-formed (finite numbers, lists of the stated length). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/log.h"
#include "gust/options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static gust_options *make_registry(void)
{
    gust_options *o = gust_options_new();
    if (!o)
        abort();
    gust_options_define_int(o, "port", NULL, 8888, "port", NULL);
    gust_options_define_double(o, "ratio", NULL, 0.5, "ratio", "num");
    gust_options_define_bool(o, "debug", NULL, false, NULL, "num");
    gust_options_define_string(o, "name", NULL, "x", "a name", "str");
    gust_options_define_duration(o, "timeout", NULL, 1, "t", "num");
    gust_options_define_int_list(o, "ports", NULL, "1:3", "ports", "num");
    gust_options_define_string_list(o, "hosts", NULL, "a,b", "hosts", "str");
    return o;
}

static void check_values(const gust_options *o)
{
    double r = gust_options_get_double(o, "ratio");
    double t = gust_options_get_duration(o, "timeout");
    if (r - r != 0 || t - t != 0) /* NaN or infinite */
        abort();
    gust_int_list l = gust_options_get_int_list(o, "ports");
    if (l.count > 65536 || (l.count && !l.items))
        abort();
    gust_string_list s = gust_options_get_string_list(o, "hosts");
    for (size_t i = 0; i < s.count; i++)
        if (!s.items[i] || strchr(s.items[i], ','))
            abort();
    if (!gust_options_get_string(o, "name"))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gust_log_set_level(GUST_LOG_NONE);
    gust_options *o = make_registry();
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t clen = nul ? (size_t)(nul - text) : size;

    int rc = gust_options_parse_string(o, text, clen, "fuzz", 0);
    const char *err = gust_options_last_error(o);
    if (rc < 0 && (!*err || strncmp(err, "fuzz:", 5) != 0))
        abort();
    check_values(o);

    if (nul) {
        /* One argument per line, at most 64, after a program name. */
        size_t alen = size - clen - 1;
        char *args = malloc(alen + 1);
        char *argv[66];
        int argc = 0;
        if (!args)
            return 0;
        memcpy(args, nul + 1, alen);
        args[alen] = '\0';
        argv[argc++] = "fuzz";
        for (char *p = args; argc < 65;) {
            argv[argc++] = p;
            char *nl = strchr(p, '\n');
            if (!nl)
                break;
            *nl = '\0';
            p = nl + 1;
        }
        argv[argc] = NULL;
        FILE *devnull = fopen("/dev/null", "w");
        gust_options_set_help_output(o, devnull);
        rc = gust_options_parse_args(o, argc, argv, GUST_OPTIONS_NOT_FINAL);
        if (rc < 0 && !*gust_options_last_error(o))
            abort();
        int n;
        const char *const *rest = gust_options_args(o, &n);
        if (n < 0 || n >= argc || rest[n] != NULL)
            abort();
        check_values(o);
        if (devnull)
            fclose(devnull);
        free(args);
    }

    char *help = NULL;
    size_t hlen = 0;
    FILE *out = open_memstream(&help, &hlen);
    if (out) {
        gust_options_print_help(o, out);
        fclose(out);
        free(help);
    }
    double secs;
    char *dur = malloc(clen + 1);
    if (dur) {
        memcpy(dur, text, clen);
        dur[clen] = '\0';
        if (gust_parse_duration(dur, &secs) == 0 && secs - secs != 0)
            abort();
        free(dur);
    }
    gust_options_free(o);
    return 0;
}
