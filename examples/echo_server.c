/* echo_server: a line echo server, the first Gust program to read.
 *
 * Each line a client sends ("...\n", at most 64 KiB) is written back, until
 * the client closes. It shows the three ways to start a Gust server (see
 * include/gust/tcp_server.h) and a clean shutdown on SIGTERM / SIGINT.
 *
 *   echo_server [--port=8888] [--address=127.0.0.1]
 *               [--mode=listen|start|sockets] [--processes=1]
 *               [--tag-pid] [--max-connections=N]
 *
 *   $ ./echo_server --mode=start --processes=2 --tag-pid &
 *   $ printf 'hello\n' | nc -q1 127.0.0.1 8888
 *   4242 hello
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gust/gust.h"

#define MAX_LINE (64 * 1024)

static struct {
    int port;
    const char *address;
    const char *mode;
    int processes;
    bool tag_pid;
    int max_connections;
} cfg;

/* Open connections, so that shutdown can close them all. */
typedef struct conn {
    struct conn *prev, *next;
    gust_stream *stream;
} conn;

static conn conns = {&conns, &conns, NULL};
static gust_tcp_server *server;

static void read_line(conn *c);

static void on_line(gust_stream *stream, int status, const char *line,
                    size_t len, void *user)
{
    /* Closed by the client, or a line over MAX_LINE. */
    if (status < 0) {
        gust_stream_close(stream);
        return;
    }
    if (cfg.tag_pid) {
        /* One write, so that the reply leaves in one segment. */
        static char reply[32 + MAX_LINE];
        int n = snprintf(reply, 32, "%ld ", (long)getpid());
        memcpy(reply + n, line, len);
        gust_stream_write(stream, reply, (size_t)n + len, NULL, NULL);
    } else {
        gust_stream_write(stream, line, len, NULL, NULL);
    }
    read_line(user);
}

static void read_line(conn *c)
{
    if (gust_stream_read_until(c->stream, "\n", 1, MAX_LINE, on_line, c) < 0)
        gust_stream_close(c->stream);
}

static void on_close(gust_stream *stream, void *user)
{
    (void)stream;
    conn *c = user;
    c->prev->next = c->next;
    c->next->prev = c->prev;
    free(c);
}

static void handle_stream(gust_tcp_server *srv, gust_stream *stream,
                          const struct sockaddr *addr, socklen_t addrlen,
                          void *data)
{
    (void)srv, (void)addr, (void)addrlen, (void)data;
    conn *c = calloc(1, sizeof *c);
    if (!c) {
        gust_stream_close(stream);
        return;
    }
    c->stream = stream;
    c->next = &conns;
    c->prev = conns.prev;
    conns.prev->next = c;
    conns.prev = c;
    gust_stream_set_close_callback(stream, on_close, c);
    read_line(c);
}

/* SIGTERM / SIGINT: stop accepting, close every connection, stop the loop.
 * main() then lets the close callbacks run and frees everything. */
static void on_signal(gust_loop *loop, int signum, void *data)
{
    (void)data;
    static bool stopping;
    if (stopping)
        return; /* a second signal while the connections are closing */
    stopping = true;
    gust_log_info("echo", "signal %d: shutting down", signum);
    gust_tcp_server_stop(server);
    for (conn *c = conns.next; c != &conns; c = c->next)
        gust_stream_close(c->stream);
    gust_loop_stop(loop);
}

static bool no_connections(gust_loop *loop, void *data)
{
    (void)loop, (void)data;
    return conns.next == &conns;
}

static void parse_args(int argc, char **argv)
{
    gust_options_define_int(NULL, "port", &cfg.port, 8888,
                            "run on the given port", NULL);
    gust_options_define_string(NULL, "address", &cfg.address, "127.0.0.1",
                               "listen on this address", NULL);
    gust_options_define_string(NULL, "mode", &cfg.mode, "listen",
                               "start form: listen, start (bind + fork) or "
                               "sockets (bind_sockets, fork, add_sockets)",
                               NULL);
    gust_options_define_int(NULL, "processes", &cfg.processes, 1,
                            "worker processes for start/sockets "
                            "(0: one per CPU)", NULL);
    gust_options_define_int(NULL, "max-connections", &cfg.max_connections, 0,
                            "stop accepting at this many connections "
                            "(0: no cap)", NULL);
    gust_options_define_bool(NULL, "tag-pid", &cfg.tag_pid, false,
                             "prefix each echoed line with the worker's pid",
                             NULL);
    gust_options_parse_command_line(NULL, argc, argv);
    if (strcmp(cfg.mode, "listen") && strcmp(cfg.mode, "start") &&
        strcmp(cfg.mode, "sockets")) {
        fprintf(stderr, "%s: --mode must be listen, start or sockets\n",
                argv[0]);
        exit(2);
    }
    if (cfg.processes < 0 || cfg.max_connections < 0) {
        fprintf(stderr, "%s: --processes and --max-connections must be >= 0\n",
                argv[0]);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    gust_tcp_server_options opts = {
        .max_connections = (size_t)cfg.max_connections};
    int rc;

    /* The three start forms of tcp_server.h. No loop exists before the
     * fork: each worker takes its own with gust_loop_current(). */
    if (strcmp(cfg.mode, "listen") == 0) {
        server = gust_tcp_server_new(handle_stream, &opts, NULL);
        rc = server ? gust_tcp_server_listen(server, cfg.port, cfg.address)
                    : -ENOMEM;
    } else if (strcmp(cfg.mode, "start") == 0) {
        server = gust_tcp_server_new(handle_stream, &opts, NULL);
        rc = server ? gust_tcp_server_bind(server, cfg.port, cfg.address)
                    : -ENOMEM;
        if (rc == 0)
            rc = gust_tcp_server_start(server, cfg.processes);
    } else {
        gust_socket_list *socks = gust_bind_sockets(cfg.port, cfg.address, NULL);
        rc = socks ? gust_fork_processes(cfg.processes, -1) : -errno;
        if (rc >= 0) {
            server = gust_tcp_server_new(handle_stream, &opts, NULL);
            rc = server ? gust_tcp_server_add_sockets(server, socks) : -ENOMEM;
        }
        if (!server)
            gust_socket_list_free(socks);
    }
    if (rc < 0) {
        gust_log_error("echo", "cannot start: %s", gust_strerror(rc));
        gust_tcp_server_free(server);
        gust_options_free(gust_options_default());
        return 1;
    }

    gust_loop *loop = gust_loop_current();
    gust_loop_add_signal(loop, SIGTERM, on_signal, NULL);
    gust_loop_add_signal(loop, SIGINT, on_signal, NULL);
    gust_log_info("echo", "echo server listening on %s:%d (mode %s, pid %ld)",
                  cfg.address, gust_tcp_server_port(server), cfg.mode,
                  (long)getpid());
    gust_loop_start(loop);

    /* Stopped by a signal: let the close callbacks run, then free it all. */
    gust_loop_run_until(loop, no_connections, NULL, 5.0);
    gust_loop_remove_signal(loop, SIGTERM);
    gust_loop_remove_signal(loop, SIGINT);
    gust_tcp_server_free(server);
    gust_options_free(gust_options_default());
    return gust_loop_free(loop) == 0 ? 0 : 1;
}
