/* bench_stream_echo: a line echo server on Gust's loop and streams alone.
 *
 * It accepts with a plain loop fd handler instead of gust_tcp_server, so the
 * loop and stream layers can be measured (bench/echo.sh with
 * GUST_SERVER=build/bench/bench/bench_stream_echo) apart from the TCP server,
 * and before it exists. Per connection: read_until("\n"), write the line
 * back, read the next one, the same work as examples/echo_server.c.
 *
 * Options: --port=P (required), --address=127.0.0.1 (the only address it
 * accepts: benchmarks stay on the loopback). Stops on SIGINT or SIGTERM.
 */
#include <gust/loop.h>
#include <gust/error.h>
#include <gust/stream.h>

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A longer line closes the connection, as in the libevent peer. */
#define MAX_LINE (64 * 1024)

static void on_line(gust_stream *s, int status, const char *data, size_t len,
                    void *user)
{
    (void)user;
    if (status < 0)
        return; /* closed, or a line over MAX_LINE: the stream closes */
    if (gust_stream_write(s, data, len, NULL, NULL) < 0 ||
        gust_stream_read_until(s, "\n", 1, MAX_LINE, on_line, NULL) < 0)
        gust_stream_close(s);
}

static void on_accept(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)events;
    (void)data;
    int c;
    while ((c = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
        gust_stream *s = gust_stream_new(loop, c, NULL);
        if (!s) {
            close(c);
            continue;
        }
        gust_stream_set_nodelay(s, true);
        if (gust_stream_read_until(s, "\n", 1, MAX_LINE, on_line, NULL) < 0)
            gust_stream_close(s);
    }
}

static void on_signal(gust_loop *loop, int sig, void *data)
{
    (void)sig;
    (void)data;
    gust_loop_stop(loop);
}

int main(int argc, char **argv)
{
    long port = 0;
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--port=", 7) == 0) {
            port = strtol(argv[i] + 7, NULL, 10);
        } else if (strcmp(argv[i], "--address=127.0.0.1") != 0) {
            port = -1;
            break;
        }
    }
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "usage: bench_stream_echo --port=P [--address=127.0.0.1]\n");
        return 2;
    }

    int one = 1;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((unsigned short)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (lfd < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        listen(lfd, 1024) < 0) {
        perror("bench_stream_echo: listen");
        return 1;
    }
    gust_loop *loop = gust_loop_current();
    int r = gust_loop_add_handler(loop, lfd, GUST_READ, on_accept, NULL);
    if (r == 0)
        r = gust_loop_add_signal(loop, SIGINT, on_signal, NULL);
    if (r == 0)
        r = gust_loop_add_signal(loop, SIGTERM, on_signal, NULL);
    if (r == 0)
        r = gust_loop_start(loop);
    if (r < 0)
        fprintf(stderr, "bench_stream_echo: %s\n", gust_strerror(r));
    /* Open streams are left to exit(): this is a benchmark server. */
    close(lfd);
    return r < 0;
}
