/* A line echo server: the foundation demo, and the three ways to start a
 * server of shared/DESIGN.md.
 *
 *   echo_server [--port=8888] [--address=127.0.0.1]
 *               [--mode=listen|start|sockets] [--processes=N]
 *               [--tag-pid] [--max-connections=N]
 *
 * Each line a client sends comes back unchanged (with --tag-pid, prefixed by
 * the serving process's pid and a space, which shows which worker answered).
 * SIGTERM or SIGINT stops it cleanly: every connection is closed and
 * everything freed before it exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gust/gust.h>

#define MAX_LINE (64 * 1024)

typedef struct connection {
    gust_stream *stream;
    struct connection *prev, *next; /* every open connection, for shutdown */
} connection;

static struct {
    int port;
    const char *address;
    const char *mode;
    int processes;
    bool tag_pid;
    size_t max_connections;
    gust_tcp_server *server;
    connection *conns;
    char pid_prefix[24];
    size_t pid_prefix_len;
} app = {.port = 8888, .address = "127.0.0.1", .mode = "listen", .processes = 1};

static void read_line(connection *c);

static void on_line(gust_stream *s, int status, const char *line, size_t len,
                    void *data)
{
    connection *c = data;
    if (status < 0) {
        /* The peer closed (GUST_ESTREAMCLOSED) or sent a line over
         * MAX_LINE (GUST_EUNSATISFIABLE): either way we are done. */
        gust_stream_close(s);
        return;
    }
    if (app.tag_pid) {
        /* One write, so the reply leaves in one segment. */
        static char tagged[sizeof app.pid_prefix + MAX_LINE];
        memcpy(tagged, app.pid_prefix, app.pid_prefix_len);
        memcpy(tagged + app.pid_prefix_len, line, len);
        gust_stream_write(s, tagged, app.pid_prefix_len + len, NULL, NULL);
    } else {
        gust_stream_write(s, line, len, NULL, NULL);
    }
    read_line(c);
}

static void read_line(connection *c)
{
    if (gust_stream_read_until(c->stream, "\n", 1, MAX_LINE, on_line, c) < 0)
        gust_stream_close(c->stream);
}

static void on_close(gust_stream *s, void *data)
{
    (void)s;
    connection *c = data;
    if (c->prev)
        c->prev->next = c->next;
    else
        app.conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
}

static void handle_stream(gust_tcp_server *srv, gust_stream *stream,
                          const struct sockaddr *addr, socklen_t addrlen,
                          void *data)
{
    (void)srv, (void)addr, (void)addrlen, (void)data;
    connection *c = calloc(1, sizeof *c);
    if (!c) {
        gust_stream_close(stream);
        return;
    }
    c->stream = stream;
    c->next = app.conns;
    if (app.conns)
        app.conns->prev = c;
    app.conns = c;
    gust_stream_set_close_callback(stream, on_close, c);
    read_line(c);
}

static void on_signal(gust_loop *loop, int signum, void *data)
{
    (void)data;
    gust_log_info("echo", "signal %d: stopping", signum);
    gust_tcp_server_stop(app.server);
    for (connection *c = app.conns; c; c = c->next)
        gust_stream_close(c->stream);
    gust_loop_stop(loop);
}

static void usage(const char *argv0)
{
    fprintf(stderr, "usage: %s [--port=N] [--address=A] "
            "[--mode=listen|start|sockets] [--processes=N] [--tag-pid] "
            "[--max-connections=N]\n", argv0);
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--port=", 7) == 0)
            app.port = atoi(a + 7);
        else if (strncmp(a, "--address=", 10) == 0)
            app.address = a + 10;
        else if (strncmp(a, "--mode=", 7) == 0)
            app.mode = a + 7;
        else if (strncmp(a, "--processes=", 12) == 0)
            app.processes = atoi(a + 12);
        else if (strcmp(a, "--tag-pid") == 0)
            app.tag_pid = true;
        else if (strncmp(a, "--max-connections=", 18) == 0)
            app.max_connections = (size_t)atol(a + 18);
        else
            usage(argv[0]);
    }
    if (strcmp(app.mode, "listen") && strcmp(app.mode, "start") &&
        strcmp(app.mode, "sockets"))
        usage(argv[0]);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    gust_tcp_server_options opts = {.max_connections = app.max_connections};
    int r = 0;

    /* The three start forms, exactly as shared/DESIGN.md writes them. */
    if (strcmp(app.mode, "listen") == 0) {
        app.server = gust_tcp_server_new(handle_stream, &opts, NULL);
        r = gust_tcp_server_listen(app.server, app.port, app.address);
    } else if (strcmp(app.mode, "start") == 0) {
        app.server = gust_tcp_server_new(handle_stream, &opts, NULL);
        r = gust_tcp_server_bind(app.server, app.port, app.address);
        if (r == 0)
            r = gust_tcp_server_start(app.server, app.processes); /* forks */
    } else {
        gust_socket_list *socks = gust_bind_sockets(app.port, app.address, NULL);
        if (!socks) {
            fprintf(stderr, "bind %s:%d: %s\n", app.address, app.port,
                    strerror(errno));
            return 1;
        }
        if (app.processes != 1) {
            r = gust_fork_processes(app.processes, -1);
            if (r > 0)
                r = 0; /* a task id */
        }
        app.server = gust_tcp_server_new(handle_stream, &opts, NULL);
        if (r == 0)
            r = gust_tcp_server_add_sockets(app.server, socks);
        else
            gust_socket_list_free(socks);
    }
    if (r < 0) {
        fprintf(stderr, "echo server: %s\n", gust_strerror(r));
        gust_tcp_server_free(app.server);
        return 1;
    }

    snprintf(app.pid_prefix, sizeof app.pid_prefix, "%ld ", (long)getpid());
    app.pid_prefix_len = strlen(app.pid_prefix);
    gust_loop *loop = gust_loop_current();
    gust_loop_add_signal(loop, SIGTERM, on_signal, NULL);
    gust_loop_add_signal(loop, SIGINT, on_signal, NULL);
    gust_log_info("echo", "echo server listening on %s:%d (mode %s, pid %ld)",
                  app.address, gust_tcp_server_port(app.server), app.mode,
                  (long)getpid());

    gust_loop_start(loop);

    /* Let the close callbacks of the connections closed above run. */
    while (app.conns)
        gust_loop_run_once(loop, 0.1);
    gust_loop_remove_signal(loop, SIGTERM);
    gust_loop_remove_signal(loop, SIGINT);
    gust_tcp_server_free(app.server);
    r = gust_loop_free(loop);
    return r == 0 ? 0 : 1;
}
