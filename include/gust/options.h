/* Command-line and config-file options (Tornado's tornado.options).
 *
 * A registry holds typed options, each with a default, a help line and a
 * group. The usual program, as Tornado's define() + parse_command_line():
 *
 *     static int port;
 *     int main(int argc, char **argv)
 *     {
 *         gust_options_define_int(NULL, "port", &port, 8888,
 *                                 "run on the given port", NULL);
 *         gust_options_parse_command_line(NULL, argc, argv);
 *         ... use port ...
 *         gust_options_free(gust_options_default());
 *     }
 *
 * Registries. Every function takes the registry first; NULL means the
 * process-wide default one, gust_options_default(), which is created on
 * first use with the logging options below already defined. Tests and
 * embedding programs use their own from gust_options_new(). A registry is
 * not thread-safe: define and parse from one thread, before starting
 * threads (as one does in main).
 *
 * Values. Each define call takes an optional pointer to the program's own
 * variable (the style that reads best in C): it gets the default at once,
 * and every later successful parse of that option writes the new value to
 * it. With var NULL, read the value back by name (gust_options_get_*).
 * String and list values are owned by the registry: they stay valid until
 * that option is set again or the registry is freed.
 *
 * Names. '-' and '_' are the same in option names: "log_file_prefix",
 * "log-file-prefix", --log_file_prefix and --log-file-prefix all name one
 * option. Names are stored and shown with '-', as Tornado 5+ does.
 *
 * Command line (gust_options_parse_args):
 *     --name=value  or  --name value     (one leading '-' is accepted too)
 *     --flag                              bool options only: true; bools never
 *     --flag=false                        take the next argument as a value
 *     --                                  ends the options
 *     --help                              prints the help, see below
 * Parsing stops at "--" or at the first argument that does not start with
 * '-' (or is a lone "-"); it and everything after are positional arguments,
 * see gust_options_args().
 *
 * Values by type:
 *     INT       decimal, fits an int: "8000", "-3"
 *     DOUBLE    a finite number: "0.5", "1e3"
 *     BOOL      true/false, 1/0, yes/no, on/off, in any case
 *     STRING    any text
 *     DURATION  one or more number+unit parts, stored as seconds (double):
 *               "500ms", "2s", "1.5min", "1h 30m", "1d", "3" (seconds).
 *               Units: us, ms, s/sec, m/min, h, d, w, or their full names
 *               (microseconds, milliseconds, seconds, minutes, hours, days,
 *               weeks), as Tornado's _parse_timedelta.
 *     INT_LIST  comma-separated ints, "a:b" is the inclusive range a..b:
 *               "80,443", "8000:8003,9000"
 *     STRING_LIST comma-separated strings: "a,b,c"
 *
 * Config file (gust_options_parse_file): one "name = value" per line.
 * Blank lines and lines starting with '#' are skipped; whitespace around
 * the name, '=' and the value is ignored; an unquoted value ends at a " #"
 * comment; a value may be quoted with "..." or '...', in which the escapes
 * \\ \" \' \n \t \r are read. A bad line fails with "file:line: what was
 * wrong".
 *
 * Errors. The Tornado-style calls (gust_options_parse_command_line,
 * gust_options_parse_config_file) print the error and exit(2), and exit(0)
 * after --help. The other parse calls return the error instead, and
 * gust_options_last_error() gives the message, e.g.
 *     "unknown option --prot (did you mean --port?)"
 *     "bad value for --port: 'abc' is not an integer"
 *     "app.conf:3: expected 'name = value'"
 * A parse that fails part-way keeps the options it set before the error.
 *
 * Help. --help (unless the program defined an option named "help") prints
 *     Usage: PROG [OPTIONS]
 * then the options grouped by group: the program's own options (group NULL)
 * first, then the other groups in name order; each line shows --name=TYPE,
 * the help text and the default. Pass a group name as Tornado groups by
 * module: "http", "db", or __FILE__.
 *
 * Logging options (defined in the default registry, or in any registry by
 * gust_options_define_logging), in group "log", applied after every final
 * parse (see GUST_OPTIONS_NOT_FINAL):
 *     --logging=debug|info|warning|error|none   gust_log_set_level; the
 *                       default is the level in force when they are defined
 *                       (GUST_LOG_LEVEL from the environment, else info)
 *     --log-file-prefix=PATH  append log lines to PATH instead of stderr
 *                       (same line format as stderr, without colour)
 *     --log-to-stderr   also write to stderr when logging to a file
 *     --log-file-max-size=INT   rotate PATH when it grows past this many
 *                       bytes (default 100000000, 0: never): PATH.1 ...
 *     --log-file-num-backups=INT  rotated files kept (default 10)
 */
#ifndef GUST_OPTIONS_H
#define GUST_OPTIONS_H

#include "gust/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gust_options gust_options;

enum gust_option_type {
    GUST_OPTION_INT,
    GUST_OPTION_DOUBLE,
    GUST_OPTION_BOOL,
    GUST_OPTION_STRING,
    GUST_OPTION_DURATION, /* seconds, as a double */
    GUST_OPTION_INT_LIST,
    GUST_OPTION_STRING_LIST,
};

/* The value of a multiple option. items is owned by the registry (see
 * "Values" above); items is NULL when count is 0. */
typedef struct gust_int_list {
    const int *items;
    size_t count;
} gust_int_list;

typedef struct gust_string_list {
    const char *const *items;
    size_t count;
} gust_string_list;

/* Flags for gust_options_parse_args / _parse_file / _parse_string. */
enum {
    /* Do not run the parse callbacks (nor apply the logging options): for
     * a first source that a later parse completes, as Tornado's
     * final=False. */
    GUST_OPTIONS_NOT_FINAL = 1 << 0,
    /* On error print "PROG: message" to stderr and exit(2); after --help
     * exit(0). */
    GUST_OPTIONS_EXIT = 1 << 1,
    /* Config files only: skip names that are not defined instead of failing
     * (a file shared by several programs). */
    GUST_OPTIONS_IGNORE_UNKNOWN = 1 << 2,
};

/* Returned by the non-exiting parse calls when --help was given: the help
 * has been printed (see gust_options_set_help_output) and nothing else was
 * parsed. Positive, so it is not an error code. */
#define GUST_OPTIONS_HELP 1

/* A new, empty registry (no logging options). Returns NULL when out of
 * memory. Free it with gust_options_free. */
GUST_EXTERN gust_options *gust_options_new(void);

/* Frees a registry: its options, their string and list values, callbacks and
 * positional arguments. Program variables given to define calls keep their
 * last value, but string and list values they point to become invalid. If
 * the registry's logging options installed a log file handler, the default
 * stderr handler is restored and the file is closed. Freeing the default
 * registry is allowed: the next gust_options_default() makes a new one.
 * NULL is a no-op. */
GUST_EXTERN void gust_options_free(gust_options *opts);

/* The process-wide default registry, created on first call with the logging
 * options defined. Returns NULL only when out of memory. */
GUST_EXTERN gust_options *gust_options_default(void);

/* Define calls. Each defines option name of one type in registry opts (NULL:
 * the default registry), with its default value, help text (may be NULL)
 * and group (NULL: the program's own group, shown first in --help). name,
 * help and group are copied. If var is not NULL it is set to the default
 * now and updated by every later parse of this option; var must stay valid
 * until the registry is freed.
 *
 * Returns 0; -EEXIST if the name (after '_'/'-' normalisation) is already
 * defined, -EINVAL if the name is empty, starts with '-' or contains '=',
 * whitespace or a control character, or if a list default does not parse
 * (the message is logged and in gust_options_last_error); -ENOMEM. */
GUST_EXTERN int gust_options_define_int(gust_options *opts, const char *name,
                                        int *var, int def, const char *help,
                                        const char *group);
GUST_EXTERN int gust_options_define_double(gust_options *opts, const char *name,
                                           double *var, double def,
                                           const char *help, const char *group);
GUST_EXTERN int gust_options_define_bool(gust_options *opts, const char *name,
                                         bool *var, bool def, const char *help,
                                         const char *group);
/* *var points to a registry-owned copy of the value (def is copied; it may
 * be NULL, meaning no value: *var is then NULL). */
GUST_EXTERN int gust_options_define_string(gust_options *opts, const char *name,
                                           const char **var, const char *def,
                                           const char *help, const char *group);
/* def and values are seconds. */
GUST_EXTERN int gust_options_define_duration(gust_options *opts,
                                             const char *name, double *var,
                                             double def, const char *help,
                                             const char *group);
/* def is written as on the command line ("80,443", "1:3"), or NULL for an
 * empty list. */
GUST_EXTERN int gust_options_define_int_list(gust_options *opts,
                                             const char *name,
                                             gust_int_list *var,
                                             const char *def, const char *help,
                                             const char *group);
GUST_EXTERN int gust_options_define_string_list(
    gust_options *opts, const char *name, gust_string_list *var,
    const char *def, const char *help, const char *group);

/* Defines --logging, --log-file-prefix, --log-to-stderr,
 * --log-file-max-size and --log-file-num-backups (see the top of this file)
 * in group "log". Returns 0, -EEXIST if already defined, -ENOMEM. */
GUST_EXTERN int gust_options_define_logging(gust_options *opts);

/* Tornado's parse_command_line: parses argv[1..argc-1] (argv[0] names the
 * program in messages) and runs the parse callbacks. Returns 0 on success;
 * on error prints it and exits with status 2; after --help exits 0. */
GUST_EXTERN int gust_options_parse_command_line(gust_options *opts, int argc,
                                                char **argv);

/* Tornado's parse_config_file: as gust_options_parse_file with flags 0,
 * but prints an error and exits with status 2. Returns 0. */
GUST_EXTERN int gust_options_parse_config_file(gust_options *opts,
                                               const char *path);

/* Parses a command line as described at the top. flags: GUST_OPTIONS_*.
 * Returns 0, GUST_OPTIONS_HELP after printing the help, or a negative code
 * with the message in gust_options_last_error(): -ENOENT for an unknown
 * option, -EINVAL for a bad or missing value, -ENOMEM. Unless flags has
 * GUST_OPTIONS_NOT_FINAL, runs the parse callbacks after a success (not
 * after --help). argv is not kept. */
GUST_EXTERN int gust_options_parse_args(gust_options *opts, int argc,
                                        char **argv, unsigned flags);

/* Parses the config file at path (format at the top). Returns 0 or a
 * negative code (-errno if the file cannot be read, -ENOENT for an unknown
 * name, -EINVAL for a bad line or value, -ENOMEM), with the message in
 * gust_options_last_error(). Runs the parse callbacks on success unless
 * GUST_OPTIONS_NOT_FINAL. */
GUST_EXTERN int gust_options_parse_file(gust_options *opts, const char *path,
                                        unsigned flags);

/* Parses config-file text held in memory (len bytes, need not end in NUL);
 * source names it in messages ("source:line: ..."; NULL: "<string>").
 * Returns as gust_options_parse_file. */
GUST_EXTERN int gust_options_parse_string(gust_options *opts, const char *text,
                                          size_t len, const char *source,
                                          unsigned flags);

/* Sets one option from its text form, as --name=value would. Runs no
 * callbacks. Returns 0, -ENOENT (unknown name), -EINVAL (bad value),
 * -ENOMEM; the message in gust_options_last_error(). */
GUST_EXTERN int gust_options_set(gust_options *opts, const char *name,
                                 const char *value);

/* The message of the last failed call on this registry ("" if none). Owned
 * by the registry, valid until its next call. */
GUST_EXTERN const char *gust_options_last_error(const gust_options *opts);

/* The positional arguments left by the last gust_options_parse_args (what
 * Tornado's parse_command_line returns): *count of them, in order, NULL
 * terminated. Copies owned by the registry, valid until the next
 * parse_args or free. Never NULL. */
GUST_EXTERN const char *const *gust_options_args(const gust_options *opts,
                                                 int *count);

/* Parse callbacks (Tornado's add_parse_callback): cb(opts, data) runs after
 * every final successful parse, in the order added. Returns 0 or -ENOMEM. */
typedef void (*gust_options_parse_cb)(gust_options *opts, void *data);
GUST_EXTERN int gust_options_add_parse_callback(gust_options *opts,
                                                gust_options_parse_cb cb,
                                                void *data);

/* Prints the help (as --help does) to out. */
GUST_EXTERN void gust_options_print_help(const gust_options *opts, FILE *out);

/* Where --help prints: stdout by default. out is not closed by the
 * registry. */
GUST_EXTERN void gust_options_set_help_output(gust_options *opts, FILE *out);

/* Getters by name, for options defined with var NULL (they work for any
 * option). An unknown name or a getter of the wrong type logs an error and
 * returns 0, 0.0, false, NULL or an empty list. Strings and lists are owned
 * by the registry (see "Values"). */
GUST_EXTERN int gust_options_get_int(const gust_options *opts,
                                     const char *name);
GUST_EXTERN double gust_options_get_double(const gust_options *opts,
                                           const char *name);
GUST_EXTERN bool gust_options_get_bool(const gust_options *opts,
                                       const char *name);
GUST_EXTERN const char *gust_options_get_string(const gust_options *opts,
                                                const char *name);
GUST_EXTERN double gust_options_get_duration(const gust_options *opts,
                                             const char *name);
GUST_EXTERN gust_int_list gust_options_get_int_list(const gust_options *opts,
                                                    const char *name);
GUST_EXTERN gust_string_list
gust_options_get_string_list(const gust_options *opts, const char *name);

/* The type of option name, or -ENOENT if it is not defined. */
GUST_EXTERN int gust_options_type(const gust_options *opts, const char *name);

/* Parses a duration as DURATION options do. Returns 0 and sets *seconds, or
 * -EINVAL. */
GUST_EXTERN int gust_parse_duration(const char *text, double *seconds);

#ifdef __cplusplus
}
#endif

#endif /* GUST_OPTIONS_H */
