/* echo_libevent: the libevent baseline for the echo benchmark.
 *
 * A single-threaded line echo server on bufferevents, doing the same work as
 * examples/echo_server.c does with Gust: for every complete line received
 * ("...\n"), write that line back. Lines are found and moved one by one
 * (evbuffer_search + evbuffer_remove_buffer, no copy out to user memory), so
 * the per-line work is comparable to Gust's read_until("\n") + write.
 *
 * Options: --port=P (required), --address=A (default 127.0.0.1). Stops
 * cleanly on SIGINT or SIGTERM.
 */
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A line longer than this without '\n' closes the connection, as a Gust
 * stream does when read_until exceeds its max_buffer_size. */
#define MAX_LINE (64 * 1024)

static void on_read(struct bufferevent *bev, void *data)
{
    (void)data;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer *out = bufferevent_get_output(bev);
    for (;;) {
        struct evbuffer_ptr nl = evbuffer_search(in, "\n", 1, NULL);
        if (nl.pos < 0)
            break;
        if (evbuffer_remove_buffer(in, out, (size_t)nl.pos + 1) < 0) {
            bufferevent_free(bev);
            return;
        }
    }
    if (evbuffer_get_length(in) > MAX_LINE)
        bufferevent_free(bev);
}

static void on_event(struct bufferevent *bev, short what, void *data)
{
    (void)data;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        bufferevent_free(bev);
}

static void on_accept(struct evconnlistener *listener, evutil_socket_t fd,
                      struct sockaddr *sa, int salen, void *data)
{
    (void)sa;
    (void)salen;
    (void)data;
    /* Small request/response exchanges: do not let Nagle delay the echo
     * (Gust sets TCP_NODELAY on accepted sockets too). */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct event_base *base = evconnlistener_get_base(listener);
    struct bufferevent *bev =
        bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void on_signal(evutil_socket_t sig, short what, void *data)
{
    (void)sig;
    (void)what;
    event_base_loopexit(data, NULL);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"address", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    long port = 0;
    const char *address = "127.0.0.1";
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'p')
            port = strtol(optarg, NULL, 10);
        else if (c == 'a')
            address = optarg;
        else
            port = -1;
    }
    struct sockaddr_in sin = {.sin_family = AF_INET,
                              .sin_port = htons((unsigned short)port)};
    if (port <= 0 || port > 65535 || optind != argc ||
        inet_pton(AF_INET, address, &sin.sin_addr) != 1) {
        fprintf(stderr, "usage: echo_libevent --port=P [--address=127.0.0.1]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    struct event_base *base = event_base_new();
    if (!base) {
        fprintf(stderr, "echo_libevent: event_base_new failed\n");
        return 1;
    }
    struct evconnlistener *listener = evconnlistener_new_bind(
        base, on_accept, NULL,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        1024, (struct sockaddr *)&sin, sizeof sin);
    if (!listener) {
        perror("echo_libevent: listen");
        event_base_free(base);
        return 1;
    }
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, base);
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    if (!sigint || !sigterm || event_add(sigint, NULL) < 0 ||
        event_add(sigterm, NULL) < 0) {
        fprintf(stderr, "echo_libevent: cannot watch signals\n");
        return 1;
    }
    fprintf(stderr, "echo_libevent: listening on %s:%ld (%s backend)\n",
            address, port, event_base_get_method(base));

    event_base_dispatch(base);

    event_free(sigint);
    event_free(sigterm);
    evconnlistener_free(listener);
    event_base_free(base);
    return 0;
}
