/* The access log (web.h) and the buffered log writer (log.h): a custom
 * log_function that adds to the default line (issue 16), the formats,
 * their escaping, and when buffered lines reach stderr. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gust/gust.h"
#include "gust/testing.h"
#include "gust_test.h"

/* ---- What the log handler saw ------------------------------------------- */

typedef struct captured {
    char lines[8][512];
    int levels[8];
    int n;
} captured;

static captured cap;

static void capture(int level, const char *module, const char *msg, void *data)
{
    (void)data;
    if (strcmp(module, "access") != 0 || cap.n >= 8)
        return;
    snprintf(cap.lines[cap.n], sizeof cap.lines[0], "%s", msg);
    cap.levels[cap.n++] = level;
}

static int hello_get(gust_handler *h)
{
    return gust_handler_write_str(h, "Hello, world");
}

static const gust_handler_class hello = {.name = "Hello", .get = hello_get};

/* The default line with something of the application's at the end. */
static void log_with_user(gust_handler *h, void *data)
{
    gust_access_log_entry e;
    gust_handler_access_log_entry(h, &e);
    e.user = data;
    char line[512];
    size_t n = gust_access_log_format_line(&e, GUST_ACCESS_LOG_TORNADO, 0, line,
                                           sizeof line);
    gust_log(gust_access_log_level(e.status), "access", "%.*s user=%s",
             (int)n, line, e.user);
}

static gust_testing_server *start_routes(gust_app **app,
                                         const gust_route *routes,
                                         const gust_app_settings *s)
{
    *app = gust_app_new(routes, s);
    assert_non_null(*app);
    gust_testing_server *t = gust_testing_start_app(*app);
    assert_non_null(t);
    return t;
}

static gust_testing_server *start(gust_app **app, const gust_app_settings *s)
{
    const gust_route routes[] = {GUST_ROUTE("/", &hello), GUST_ROUTES_END};
    return start_routes(app, routes, s);
}

static void fetch(gust_testing_server *t, const char *path, int code)
{
    gust_http_client_response *r;
    assert_int_equal(gust_testing_fetch(t, path, NULL, 0, &r), 0);
    assert_int_equal(r->code, code);
    gust_http_client_response_free(r);
}

static void stop(gust_testing_server *t, gust_app *app)
{
    gust_testing_stop(t);
    gust_app_free(app);
    assert_int_equal(gust_loop_free(gust_loop_current()), 0);
}

static void test_log_function_adds_to_default_line(void **state)
{
    (void)state;
    memset(&cap, 0, sizeof cap);
    gust_log_set_handler(capture, NULL);
    gust_app_settings s = {.log_function = log_with_user, .log_data = "alice"};
    gust_app *app;
    gust_testing_server *t = start(&app, &s);
    fetch(t, "/?x=1", 200);
    fetch(t, "/nowhere", 404);
    stop(t, app);
    gust_log_set_handler(NULL, NULL);

    assert_int_equal(cap.n, 2);
    const char *want = "200 GET /?x=1 (127.0.0.1) ";
    assert_memory_equal(cap.lines[0], want, strlen(want));
    const char *ms = cap.lines[0] + strlen(want);
    char *end;
    strtod(ms, &end);
    assert_true(end > ms);
    assert_string_equal(end, "ms user=alice");
    assert_int_equal(cap.levels[0], GUST_LOG_INFO);
    want = "404 GET /nowhere (127.0.0.1) ";
    assert_memory_equal(cap.lines[1], want, strlen(want));
    assert_int_equal(cap.levels[1], GUST_LOG_WARNING);
}

static void test_default_common_line(void **state)
{
    (void)state;
    memset(&cap, 0, sizeof cap);
    gust_log_set_handler(capture, NULL);
    gust_app_settings s = {.access_log_format = GUST_ACCESS_LOG_COMMON};
    gust_app *app;
    gust_testing_server *t = start(&app, &s);
    fetch(t, "/", 200);
    stop(t, app);
    gust_log_set_handler(NULL, NULL);
    assert_int_equal(cap.n, 1);
    /* no "[I ... access]" prefix: the line is the format's own */
    assert_memory_equal(cap.lines[0], "127.0.0.1 - - [", 15);
    assert_non_null(strstr(cap.lines[0], "] \"GET / HTTP/1.1\" 200 12"));
    size_t len = strlen(cap.lines[0]);
    assert_string_equal(cap.lines[0] + len - strlen("\" 200 12"), "\" 200 12");
}

static gust_access_log_entry sample(void)
{
    return (gust_access_log_entry){
        .status = 200,
        .method = "GET",
        .uri = "/a\"b\\c",
        .version = "HTTP/1.1",
        .remote_ip = "203.0.113.9",
        .referer = NULL,
        .user_agent = "x\x01y\xffz\xc3\xa9",
        .bytes = 12,
        .request_time_us = 1234,
        .start_time = 0.5, /* 1970-01-01T00:00:00.5Z */
        .handler = "H",
    };
}

static void test_tornado_times(void **state)
{
    (void)state;
    gust_access_log_entry e = sample();
    e.uri = "/";
    char buf[256];
    gust_access_log_format_line(&e, GUST_ACCESS_LOG_TORNADO, 0, buf, sizeof buf);
    assert_string_equal(buf, "200 GET / (203.0.113.9) 1.23ms");
    e.request_time_us = 49;
    gust_access_log_format_line(&e, GUST_ACCESS_LOG_TORNADO, 0, buf, sizeof buf);
    assert_string_equal(buf, "200 GET / (203.0.113.9) 0.05ms");
    e.request_time_us = 1234567;
    gust_access_log_format_line(&e, GUST_ACCESS_LOG_TORNADO,
                                GUST_ACCESS_LOG_MICROSECONDS, buf, sizeof buf);
    assert_string_equal(buf, "200 GET / (203.0.113.9) 1234567us");
}

static void test_json_escaping(void **state)
{
    (void)state;
    gust_access_log_entry e = sample();
    char buf[1024];
    size_t n = gust_access_log_format_line(&e, GUST_ACCESS_LOG_JSON, 0, buf,
                                           sizeof buf);
    assert_int_equal(n, strlen(buf));
    assert_memory_equal(buf, "{\"time\":\"1970-01-01T00:00:00.500000Z\",", 38);
    assert_non_null(strstr(buf, "\"uri\":\"/a\\\"b\\\\c\""));
    /* a control byte escaped, a stray byte replaced, UTF-8 kept */
    assert_non_null(strstr(buf, "\"user_agent\":\"x\\u0001y\\ufffdz\xc3\xa9\""));
    assert_non_null(strstr(buf, "\"referer\":null"));
    assert_non_null(strstr(buf, "\"request_time_us\":1234"));
    assert_non_null(strstr(buf, "\"bytes\":12"));
    assert_int_equal(buf[n - 1], '}');
}

static void test_clf_escaping(void **state)
{
    (void)state;
    gust_access_log_entry e = sample();
    char buf[1024];
    gust_access_log_format_line(&e, GUST_ACCESS_LOG_COMBINED,
                                GUST_ACCESS_LOG_MICROSECONDS, buf, sizeof buf);
    const char *req = strchr(buf, '"');
    assert_non_null(req);
    assert_string_equal(req, "\"GET /a\\\"b\\\\c HTTP/1.1\" 200 12 \"-\" "
                             "\"x\\x01y\\xffz\\xc3\\xa9\" 1234");
    e.bytes = -1;
    gust_access_log_format_line(&e, GUST_ACCESS_LOG_COMMON, 0, buf, sizeof buf);
    assert_non_null(strstr(buf, "HTTP/1.1\" 200 -"));
}

static void test_small_buffer(void **state)
{
    (void)state;
    gust_access_log_entry e = sample();
    for (int f = GUST_ACCESS_LOG_TORNADO; f <= GUST_ACCESS_LOG_JSON; f++) {
        char buf[24];
        memset(buf, 'X', sizeof buf);
        size_t n = gust_access_log_format_line(&e, f, 0, buf, sizeof buf);
        assert_true(n < sizeof buf);
        assert_int_equal(buf[n], '\0');
    }
}

/* ---- The buffered writer ------------------------------------------------ */

typedef struct pipe_stderr {
    int rfd, saved;
} pipe_stderr;

static pipe_stderr redirect_stderr(void)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fcntl(p[0], F_SETFL, O_NONBLOCK);
    pipe_stderr ps = {p[0], dup(STDERR_FILENO)};
    dup2(p[1], STDERR_FILENO);
    close(p[1]);
    return ps;
}

static void restore_stderr(pipe_stderr ps)
{
    dup2(ps.saved, STDERR_FILENO);
    close(ps.saved);
    close(ps.rfd);
}

static size_t drain(int fd, char *buf, size_t size)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    return n;
}

static int lines_logged;

static void log_lines(gust_loop *loop, void *data)
{
    (void)loop, (void)data;
    for (int i = 0; i < 100; i++)
        gust_log_info("test", "line %d", lines_logged++);
}

static void log_error(gust_loop *loop, void *data)
{
    (void)loop, (void)data;
    gust_log_info("test", "before the error");
    gust_log_error("test", "an error");
}

static void log_access_warning(gust_loop *loop, void *data)
{
    (void)loop, (void)data;
    gust_log_warning("access", "404 GET /x (127.0.0.1) 0.01ms");
    gust_log_error("access", "500 GET /y (127.0.0.1) 0.01ms");
}

static void log_warning(gust_loop *loop, void *data)
{
    (void)loop, (void)data;
    gust_log_warning("http", "a warning");
}

static int count_lines(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

static void test_lines_wait_for_the_interval(void **state)
{
    (void)state;
    static char out[65536];
    gust_log_set_buffer(64 * 1024, 0.2);
    pipe_stderr ps = redirect_stderr();
    gust_loop *loop = gust_loop_current();
    lines_logged = 0;

    gust_loop_add_callback(loop, log_lines, NULL);
    gust_loop_run_once(loop, 0);
    /* a turn's lines stay in the buffer until they are 0.2 s old */
    assert_int_equal(drain(ps.rfd, out, sizeof out), 0);
    gust_loop_add_callback(loop, log_lines, NULL);
    gust_loop_run_once(loop, 0);
    assert_int_equal(drain(ps.rfd, out, sizeof out), 0);
    /* an idle loop does not sleep past that: the wait ends, they go */
    double t0 = gust_loop_update_time(loop);
    gust_loop_run_once(loop, 5.0);
    double waited = gust_loop_update_time(loop) - t0;
    assert_true(waited < 1.0);
    drain(ps.rfd, out, sizeof out);
    assert_int_equal(count_lines(out, "test] line "), 200);
    assert_non_null(strstr(out, "test] line 0\n"));
    assert_non_null(strstr(out, "test] line 199\n"));

    /* an ERROR line takes what is buffered with it, at once */
    gust_loop_add_callback(loop, log_error, NULL);
    gust_loop_run_once(loop, 0);
    drain(ps.rfd, out, sizeof out);
    assert_non_null(strstr(out, "before the error\n"));
    assert_non_null(strstr(out, "an error\n"));

    /* access lines wait even at WARNING and ERROR (as nginx's buffered
     * access_log); another module's warning takes them along */
    gust_loop_add_callback(loop, log_access_warning, NULL);
    gust_loop_run_once(loop, 0);
    assert_int_equal(drain(ps.rfd, out, sizeof out), 0);
    gust_loop_add_callback(loop, log_warning, NULL);
    gust_loop_run_once(loop, 0);
    drain(ps.rfd, out, sizeof out);
    assert_non_null(strstr(out, "access] 404 GET /x"));
    assert_non_null(strstr(out, "access] 500 GET /y"));
    assert_non_null(strstr(out, "http] a warning\n"));

    /* outside a turn a line is written at once */
    gust_log_info("test", "outside");
    drain(ps.rfd, out, sizeof out);
    assert_non_null(strstr(out, "test] outside\n"));

    /* freeing the loop writes what is left */
    gust_loop_add_callback(loop, log_lines, NULL);
    gust_loop_run_once(loop, 0);
    assert_int_equal(gust_loop_free(loop), 0);
    drain(ps.rfd, out, sizeof out);
    assert_int_equal(count_lines(out, "test] line "), 100);
    restore_stderr(ps);
    gust_log_set_buffer(64 * 1024, 0.05);
}

static void log_and_fork(gust_loop *loop, void *data)
{
    (void)loop;
    gust_log_info("test", "before fork");
    pid_t pid = fork();
    if (pid == 0)
        exit(0); /* the child's exit() must not write the line again */
    *(pid_t *)data = pid;
}

static void test_fork_writes_the_buffer_once(void **state)
{
    (void)state;
    static char out[65536];
    pipe_stderr ps = redirect_stderr();
    gust_loop *loop = gust_loop_current();
    pid_t child = -1;
    gust_loop_add_callback(loop, log_and_fork, &child);
    gust_loop_run_once(loop, 0);
    assert_true(child > 0);
    int st;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_int_equal(gust_loop_free(loop), 0);
    drain(ps.rfd, out, sizeof out);
    assert_int_equal(count_lines(out, "test] before fork\n"), 1);
    restore_stderr(ps);
}

static int forge_get(gust_handler *h)
{
    /* an application may rewrite what the log shows */
    gust_handler_request(h)->remote_ip = "1.2.3.4\n[I 261207 00:00:00 1 - access] forged";
    return gust_handler_write_str(h, "x");
}

static const gust_handler_class forge = {.get = forge_get};

/* What stderr got from n fetches of / served by cls (access lines
 * buffered, as by default). */
static const char *serve_buffered(const gust_handler_class *cls, int n)
{
    static char out[65536];
    pipe_stderr ps = redirect_stderr();
    const gust_route routes[] = {GUST_ROUTE("/", cls), GUST_ROUTES_END};
    gust_app *app;
    gust_testing_server *t = start_routes(&app, routes, NULL);
    for (int i = 0; i < n; i++)
        fetch(t, "/", 200);
    stop(t, app);
    drain(ps.rfd, out, sizeof out);
    restore_stderr(ps);
    return out;
}

static void test_buffered_line_cannot_be_forged(void **state)
{
    (void)state;
    const char *out = serve_buffered(&forge, 1);
    assert_non_null(strstr(out, "(1.2.3.4?[I 261207 00:00:00 1 - access] forged)"));
    assert_null(strstr(out, "\n[I 261207 00:00:00 1 - access] forged"));
}

static int shorter_get(gust_handler *h)
{
    /* shorter strings than the server's: the log must not read the
     * server's lengths over them */
    gust_http_request *r = gust_handler_request(h);
    r->remote_ip = "1.2";
    r->uri = "/z";
    return gust_handler_write_str(h, "x");
}

static const gust_handler_class shorter = {.get = shorter_get};

static void test_rewritten_fields_are_measured(void **state)
{
    (void)state;
    const char *out = serve_buffered(&shorter, 2);
    assert_int_equal(count_lines(out, "access] 200 GET /z (1.2) "), 2);
}

static int plain_get(gust_handler *h)
{
    return gust_handler_write_str(h, "x");
}

static int set_handler_get(gust_handler *h)
{
    gust_log_set_handler(capture, NULL);
    return gust_handler_write_str(h, "x");
}

static const gust_handler_class plain = {.get = plain_get};
static const gust_handler_class set_handler = {.get = set_handler_get};

/* Three pipelined requests, read in one turn: a log handler set by the
 * second one's handler gets the second and third lines (the lines after
 * the turn's first skip the log's checks, but not this one). */
static void test_handler_set_during_a_turn(void **state)
{
    (void)state;
    static char out[65536];
    pipe_stderr ps = redirect_stderr();
    memset(&cap, 0, sizeof cap);
    const gust_route routes[] = {GUST_ROUTE("/a", &plain),
                                 GUST_ROUTE("/set", &set_handler),
                                 GUST_ROUTES_END};
    gust_app *app;
    gust_testing_server *t = start_routes(&app, routes, NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)gust_testing_port(t)),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char req[] = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /set HTTP/1.1\r\nHost: x\r\n\r\n"
                       "GET /a?again HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    fcntl(fd, F_SETFL, O_NONBLOCK);
    char resp[4096];
    size_t got = 0;
    for (int i = 0; i < 200; i++) {
        gust_loop_run_once(gust_loop_current(), 0.01);
        ssize_t r = read(fd, resp + got, sizeof resp - 1 - got);
        if (r == 0)
            break;
        if (r > 0)
            got += (size_t)r;
    }
    close(fd);
    resp[got] = '\0';
    assert_int_equal(count_lines(resp, "HTTP/1.1 200 OK"), 3);
    gust_log_set_handler(NULL, NULL);
    stop(t, app);
    drain(ps.rfd, out, sizeof out);
    restore_stderr(ps);
    assert_int_equal(count_lines(out, "access] 200 GET /a (127.0.0.1)"), 1);
    assert_null(strstr(out, "GET /set"));
    assert_int_equal(cap.n, 2);
    assert_true(strncmp(cap.lines[0], "200 GET /set (127.0.0.1) ", 25) == 0);
    assert_true(strncmp(cap.lines[1], "200 GET /a?again (127.0.0.1) ", 29) == 0);
}

static void test_unbuffered(void **state)
{
    (void)state;
    static char out[65536];
    gust_log_set_buffer(0, -1);
    pipe_stderr ps = redirect_stderr();
    gust_loop *loop = gust_loop_current();
    gust_loop_add_callback(loop, log_lines, NULL);
    gust_loop_run_once(loop, 0);
    drain(ps.rfd, out, sizeof out);
    assert_int_equal(count_lines(out, "test] line "), 100);
    assert_int_equal(gust_loop_free(loop), 0);
    restore_stderr(ps);
    gust_log_set_buffer(64 * 1024, 0.05);
}

int main(void)
{
    gust_log_set_level(GUST_LOG_INFO);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_log_function_adds_to_default_line, test_setup),
        cmocka_unit_test_setup(test_default_common_line, test_setup),
        cmocka_unit_test(test_tornado_times),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_clf_escaping),
        cmocka_unit_test(test_small_buffer),
        cmocka_unit_test_setup(test_lines_wait_for_the_interval, test_setup),
        cmocka_unit_test_setup(test_fork_writes_the_buffer_once, test_setup),
        cmocka_unit_test_setup(test_buffered_line_cannot_be_forged, test_setup),
        cmocka_unit_test_setup(test_rewritten_fields_are_measured, test_setup),
        cmocka_unit_test_setup(test_handler_set_during_a_turn, test_setup),
        cmocka_unit_test_setup(test_unbuffered, test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
