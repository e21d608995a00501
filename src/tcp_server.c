/* A non-blocking TCP server (Tornado's TCPServer): listening sockets, one
 * acceptor per socket, a stream per connection handed to handle_stream. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gust/error.h"
#include "gust/log.h"
#include "gust/process.h"
#include "gust/tcp_server.h"
#include "gust/tls.h"
#include "stream_internal.h"
#include "tls_internal.h"

/* A TLS client that says nothing must not hold a connection slot forever. */
#define TLS_HANDSHAKE_TIMEOUT 10.0

/* The open-connection count lives apart from the server: streams handed out
 * may outlive it, and their free hooks must still have somewhere to count.
 * One reference per open stream plus one for the server. */
struct tls_accept;

typedef struct conn_count {
    size_t open;
    size_t refs;
    gust_tcp_server *server; /* NULL once the server is freed */
    struct tls_accept *handshakes; /* TLS streams not yet handed out */
} conn_count;

typedef struct listener {
    int fd;
    gust_acceptor *acceptor; /* NULL until accepting starts */
} listener;

struct gust_tcp_server {
    gust_handle_stream_cb handle_stream;
    void *data;
    gust_tcp_server_options opts;
    gust_loop *loop; /* taken when accepting starts */
    listener *listeners;
    size_t count, cap;
    conn_count *conns;
    bool at_cap;       /* acceptors paused by max_connections */
    int dispatching;   /* inside handle_stream: free must wait */
    bool free_pending;
};

static void count_release(conn_count *c)
{
    if (--c->refs == 0)
        free(c);
}

static void set_paused(gust_tcp_server *srv, bool paused)
{
    srv->at_cap = paused;
    for (size_t i = 0; i < srv->count; i++) {
        gust_acceptor *a = srv->listeners[i].acceptor;
        if (!a)
            continue;
        if (paused)
            gust_acceptor_pause(a);
        else
            gust_acceptor_resume(a);
    }
}

static void on_stream_freed(gust_stream *stream, void *data)
{
    (void)stream;
    conn_count *c = data;
    c->open--;
    gust_tcp_server *srv = c->server;
    if (srv && srv->at_cap && c->open < srv->opts.max_connections)
        set_paused(srv, false);
    count_release(c);
}

static void dispatch_stream(gust_tcp_server *srv, gust_stream *s,
                            const struct sockaddr *addr, socklen_t addrlen)
{
    srv->dispatching++;
    srv->handle_stream(srv, s, addr, addrlen, srv->data);
    if (--srv->dispatching == 0 && srv->free_pending)
        free(srv);
}

/* An accepted TLS stream waiting for its handshake. The stream's free hook
 * keeps conns alive until after the handshake callback has run (it runs
 * before the stream's close dispatch). */
typedef struct tls_accept {
    struct tls_accept *prev, *next; /* in conns->handshakes */
    conn_count *conns;
    gust_stream *stream;
    gust_timer timer;
    struct sockaddr_storage addr;
    socklen_t addrlen;
} tls_accept;

/* "127.0.0.1:5000", "[::1]:5000", or "unix" for the logs. */
static const char *peer_name(const tls_accept *a, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN];
    const struct sockaddr *sa = (const struct sockaddr *)&a->addr;
    if (a->addrlen >= sizeof(struct sockaddr_in) && sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        snprintf(buf, size, "%s:%u", ip, ntohs(in->sin_port));
    } else if (a->addrlen >= sizeof(struct sockaddr_in6) &&
               sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        snprintf(buf, size, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, size, "unix");
    }
    return buf;
}

static void on_tls_timeout(gust_timer *timer, void *data)
{
    (void)timer;
    tls_accept *a = data;
    char peer[80];
    gust_log_debug("tcp_server", "TLS handshake with %s timed out after %.0f s",
                   peer_name(a, peer, sizeof peer), TLS_HANDSHAKE_TIMEOUT);
    gust_stream_close(a->stream); /* the handshake callback frees a */
}

static void on_tls_handshake(gust_stream *stream, int status, void *data)
{
    tls_accept *a = data;
    gust_timer_stop(&a->timer);
    if (a->prev)
        a->prev->next = a->next;
    else
        a->conns->handshakes = a->next;
    if (a->next)
        a->next->prev = a->prev;
    gust_tcp_server *srv = a->conns->server;
    char peer[80];
    if (status < 0)
        gust_log_debug("tcp_server", "TLS handshake with %s failed: %s",
                       peer_name(a, peer, sizeof peer), gust_strerror(status));
    else if (!srv)
        gust_stream_close(stream); /* the server is gone */
    else
        dispatch_stream(srv, stream, (const struct sockaddr *)&a->addr,
                        a->addrlen);
    free(a);
}

static void start_tls(gust_tcp_server *srv, gust_stream *s,
                      const struct sockaddr *addr, socklen_t addrlen)
{
    tls_accept *a = calloc(1, sizeof *a);
    if (!a) {
        gust_log_warning("tcp_server", "out of memory for a TLS handshake");
        gust_stream_close(s);
        return;
    }
    a->conns = srv->conns;
    a->stream = s;
    if (addr && addrlen <= sizeof a->addr) {
        memcpy(&a->addr, addr, addrlen);
        a->addrlen = addrlen;
    }
    gust_timer_init(srv->loop, &a->timer);
    int r = gust_stream_start_tls(s, srv->opts.tls, NULL, on_tls_handshake, a);
    if (r == 0) {
        a->next = a->conns->handshakes;
        if (a->next)
            a->next->prev = a;
        a->conns->handshakes = a;
        r = gust_timer_start(&a->timer, TLS_HANDSHAKE_TIMEOUT, 0,
                             on_tls_timeout, a);
    } else {
        free(a);
        a = NULL;
    }
    if (r < 0) {
        gust_log_warning("tcp_server", "cannot start TLS: %s", gust_strerror(r));
        gust_stream_close(s); /* with a started handshake, its cb frees a */
    }
}

static void on_accept(gust_acceptor *acceptor, int fd,
                      const struct sockaddr *addr, socklen_t addrlen,
                      void *data)
{
    (void)acceptor;
    gust_tcp_server *srv = data;
    /* The acceptor made fd non-blocking and CLOEXEC: skip the fcntl()s. */
    gust_stream *s = gust__stream_new_accepted(srv->loop, fd, &srv->opts.stream);
    if (!s) {
        gust_log_warning("tcp_server", "cannot create a stream for a new "
                         "connection: %s", strerror(errno));
        close(fd);
        return;
    }
    conn_count *c = srv->conns;
    c->open++;
    c->refs++;
    gust__stream_set_free_hook(s, on_stream_freed, c);
    if (srv->opts.max_connections && c->open >= srv->opts.max_connections &&
        !srv->at_cap)
        set_paused(srv, true);

    if (!srv->handle_stream) {
        gust_log_error("tcp_server", "handle_stream not implemented");
        gust_stream_close(s);
        return;
    }
    if (srv->opts.tls)
        start_tls(srv, s, addr, addrlen);
    else
        dispatch_stream(srv, s, addr, addrlen);
}

gust_tcp_server *gust_tcp_server_new(gust_handle_stream_cb handle_stream,
                                     const gust_tcp_server_options *opts,
                                     void *data)
{
    gust_tcp_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        goto oom;
    srv->conns = calloc(1, sizeof *srv->conns);
    if (!srv->conns)
        goto oom;
    srv->conns->refs = 1;
    srv->conns->server = srv;
    srv->handle_stream = handle_stream;
    srv->data = data;
    if (opts)
        srv->opts = *opts;
    if (srv->opts.tls)
        gust__tls_context_ref(srv->opts.tls);
    return srv;
oom:
    free(srv);
    errno = ENOMEM;
    return NULL;
}

static int add_fd(gust_tcp_server *srv, int fd)
{
    if (srv->count == srv->cap) {
        size_t cap = srv->cap ? srv->cap * 2 : 4;
        listener *l = realloc(srv->listeners, cap * sizeof *l);
        if (!l)
            return -ENOMEM;
        srv->listeners = l;
        srv->cap = cap;
    }
    srv->listeners[srv->count++] = (listener){.fd = fd};
    return 0;
}

/* Takes every socket of list (and the list) into the server. */
static int add_list(gust_tcp_server *srv, gust_socket_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        if (add_fd(srv, list->fds[i]) < 0) {
            /* Those already moved belong to the server now. */
            for (size_t j = i; j < list->count; j++)
                close(list->fds[j]);
            free(list);
            return -ENOMEM;
        }
    }
    free(list);
    return 0;
}

/* Starts an acceptor on each socket that has none, on the current loop. */
static int start_accepting(gust_tcp_server *srv)
{
    if (!srv->loop) {
        srv->loop = gust_loop_current();
        if (!srv->loop)
            return -ENOMEM;
    }
    for (size_t i = 0; i < srv->count; i++) {
        listener *l = &srv->listeners[i];
        if (l->acceptor)
            continue;
        l->acceptor = gust_acceptor_new(srv->loop, l->fd, on_accept, srv);
        if (!l->acceptor)
            return errno ? -errno : -ENOMEM;
        if (srv->at_cap)
            gust_acceptor_pause(l->acceptor);
    }
    return 0;
}

int gust_tcp_server_bind(gust_tcp_server *srv, int port, const char *address)
{
    gust_socket_list *list = gust_bind_sockets(port, address, &srv->opts.bind);
    if (!list)
        return errno ? -errno : -EINVAL;
    return add_list(srv, list);
}

int gust_tcp_server_listen(gust_tcp_server *srv, int port, const char *address)
{
    int rc = gust_tcp_server_bind(srv, port, address);
    return rc < 0 ? rc : gust_tcp_server_start(srv, 1);
}

int gust_tcp_server_start(gust_tcp_server *srv, int num_processes)
{
    if (srv->count == 0)
        return -EINVAL;
    if (num_processes != 1) {
        int rc = gust_fork_processes(num_processes, -1);
        if (rc < 0)
            return rc;
    }
    return start_accepting(srv);
}

int gust_tcp_server_add_sockets(gust_tcp_server *srv, gust_socket_list *sockets)
{
    if (!sockets)
        return -EINVAL;
    int rc = add_list(srv, sockets);
    return rc < 0 ? rc : start_accepting(srv);
}

int gust_tcp_server_stop(gust_tcp_server *srv)
{
    for (size_t i = 0; i < srv->count; i++) {
        gust_acceptor_free(srv->listeners[i].acceptor);
        close(srv->listeners[i].fd);
    }
    srv->count = 0;
    return 0;
}

int gust_tcp_server_port(const gust_tcp_server *srv)
{
    for (size_t i = 0; i < srv->count; i++) {
        int port = gust_socket_port(srv->listeners[i].fd);
        if (port >= 0)
            return port;
    }
    return GUST_ENOTSTARTED;
}

size_t gust_tcp_server_connection_count(const gust_tcp_server *srv)
{
    return srv->conns->open;
}

void gust_tcp_server_free(gust_tcp_server *srv)
{
    if (!srv || srv->free_pending)
        return;
    gust_tcp_server_stop(srv);
    /* Streams still in their handshake were never handed to anyone: they
     * are the server's to close. Their callbacks run later and free a. */
    for (tls_accept *a = srv->conns->handshakes, *next; a; a = next) {
        next = a->next;
        gust_stream_close(a->stream);
    }
    free(srv->listeners);
    srv->listeners = NULL;
    srv->cap = 0;
    srv->conns->server = NULL;
    count_release(srv->conns);
    gust_tls_context_free(srv->opts.tls);
    srv->opts.tls = NULL;
    srv->conns = NULL;
    /* From inside handle_stream, on_accept still holds the pointer. */
    if (srv->dispatching)
        srv->free_pending = true;
    else
        free(srv);
}
