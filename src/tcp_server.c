/* A non-blocking TCP server (Tornado's TCPServer): listening sockets, one
 * acceptor per socket, a stream per connection handed to handle_stream. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/process.h"
#include "gust/tcp_server.h"
#include "stream_internal.h"

/* Counts open connections. Shared with the streams' free hooks, so it
 * outlives the server while any connection it accepted is open. */
typedef struct conn_counter {
    size_t open;
    size_t refs; /* the server (1 while alive) + open streams */
    gust_tcp_server *server; /* NULL once the server is freed */
} conn_counter;

struct gust_tcp_server {
    gust_handle_stream_cb handle_stream;
    void *data;
    gust_tcp_server_options opts;
    gust_loop *loop;          /* taken when accepting starts */
    int *fds;                 /* listening sockets, owned */
    gust_acceptor **acceptors; /* acceptors[i] watches fds[i], or NULL */
    size_t count, cap;
    bool capped;              /* acceptors paused at max_connections */
    conn_counter *counter;
};

static void counter_release(conn_counter *c)
{
    if (--c->refs == 0)
        free(c);
}

static void set_paused(gust_tcp_server *srv, bool paused)
{
    if (srv->capped == paused)
        return;
    srv->capped = paused;
    for (size_t i = 0; i < srv->count; i++) {
        if (!srv->acceptors[i])
            continue;
        if (paused)
            gust_acceptor_pause(srv->acceptors[i]);
        else
            gust_acceptor_resume(srv->acceptors[i]);
    }
}

static void on_stream_freed(gust_stream *s, void *data)
{
    (void)s;
    conn_counter *c = data;
    c->open--;
    gust_tcp_server *srv = c->server;
    if (srv && srv->capped && c->open < srv->opts.max_connections)
        set_paused(srv, false);
    counter_release(c);
}

static void on_accept(gust_acceptor *a, int fd, const struct sockaddr *addr,
                      socklen_t addrlen, void *data)
{
    (void)a;
    gust_tcp_server *srv = data;
    gust_stream *s = gust_stream_new(srv->loop, fd, &srv->opts.stream);
    if (!s) {
        gust_log_error("tcp", "cannot create a stream for a new connection: %s",
                       strerror(errno));
        close(fd);
        return;
    }
    conn_counter *c = srv->counter;
    c->open++;
    c->refs++;
    gust__stream_set_free_hook(s, on_stream_freed, c);
    if (srv->opts.max_connections && c->open >= srv->opts.max_connections)
        set_paused(srv, true);

    if (!srv->handle_stream) {
        /* Tornado's base TCPServer raises NotImplementedError here. */
        gust_log_error("tcp", "handle_stream not implemented: closing the "
                       "connection");
        gust_stream_close(s);
        return;
    }
    srv->handle_stream(srv, s, addr, addrlen, srv->data);
}

gust_tcp_server *gust_tcp_server_new(gust_handle_stream_cb handle_stream,
                                     const gust_tcp_server_options *opts,
                                     void *data)
{
    gust_tcp_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return NULL;
    srv->counter = calloc(1, sizeof *srv->counter);
    if (!srv->counter) {
        free(srv);
        errno = ENOMEM;
        return NULL;
    }
    srv->counter->refs = 1;
    srv->counter->server = srv;
    srv->handle_stream = handle_stream;
    srv->data = data;
    if (opts)
        srv->opts = *opts;
    return srv;
}

/* Takes ownership of the sockets in list (and frees the list itself). */
static int adopt_sockets(gust_tcp_server *srv, gust_socket_list *list)
{
    if (srv->count + list->count > srv->cap) {
        size_t cap = (srv->count + list->count) * 2;
        int *fds = realloc(srv->fds, cap * sizeof *fds);
        if (!fds)
            return -ENOMEM;
        srv->fds = fds;
        gust_acceptor **acc = realloc(srv->acceptors, cap * sizeof *acc);
        if (!acc)
            return -ENOMEM;
        srv->acceptors = acc;
        srv->cap = cap;
    }
    for (size_t i = 0; i < list->count; i++) {
        srv->fds[srv->count] = list->fds[i];
        srv->acceptors[srv->count] = NULL;
        srv->count++;
    }
    free(list);
    return 0;
}

/* Starts an acceptor on every socket that has none, on the current loop. */
static int start_accepting(gust_tcp_server *srv)
{
    if (!srv->loop) {
        srv->loop = gust_loop_current();
        if (!srv->loop)
            return -ENOMEM;
    }
    for (size_t i = 0; i < srv->count; i++) {
        if (srv->acceptors[i])
            continue;
        srv->acceptors[i] = gust_acceptor_new(srv->loop, srv->fds[i], on_accept, srv);
        if (!srv->acceptors[i])
            return -errno;
        if (srv->capped)
            gust_acceptor_pause(srv->acceptors[i]);
    }
    return 0;
}

int gust_tcp_server_bind(gust_tcp_server *srv, int port, const char *address)
{
    gust_socket_list *list = gust_bind_sockets(port, address, &srv->opts.bind);
    if (!list)
        return -errno;
    int r = adopt_sockets(srv, list);
    if (r < 0)
        gust_socket_list_free(list);
    return r;
}

int gust_tcp_server_start(gust_tcp_server *srv, int num_processes)
{
    if (srv->count == 0)
        return GUST_ENOTSTARTED;
    if (num_processes != 1) {
        int id = gust_fork_processes(num_processes, -1);
        if (id < 0)
            return id;
    }
    return start_accepting(srv);
}

int gust_tcp_server_listen(gust_tcp_server *srv, int port, const char *address)
{
    int r = gust_tcp_server_bind(srv, port, address);
    return r < 0 ? r : gust_tcp_server_start(srv, 1);
}

int gust_tcp_server_add_sockets(gust_tcp_server *srv, gust_socket_list *sockets)
{
    if (!sockets)
        return -EINVAL;
    int r = adopt_sockets(srv, sockets);
    if (r < 0) {
        gust_socket_list_free(sockets);
        return r;
    }
    return start_accepting(srv);
}

int gust_tcp_server_stop(gust_tcp_server *srv)
{
    for (size_t i = 0; i < srv->count; i++) {
        gust_acceptor_free(srv->acceptors[i]);
        close(srv->fds[i]);
    }
    srv->count = 0;
    return 0;
}

int gust_tcp_server_port(const gust_tcp_server *srv)
{
    return srv->count ? gust_socket_port(srv->fds[0]) : GUST_ENOTSTARTED;
}

size_t gust_tcp_server_connection_count(const gust_tcp_server *srv)
{
    return srv->counter->open;
}

void gust_tcp_server_free(gust_tcp_server *srv)
{
    if (!srv)
        return;
    gust_tcp_server_stop(srv);
    srv->counter->server = NULL;
    counter_release(srv->counter);
    free(srv->fds);
    free(srv->acceptors);
    free(srv);
}
