/* Sockets: listeners, the accept loop, name resolution and outgoing TCP
 * connections (Tornado's netutil and tcpclient). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/net.h"

#define DEFAULT_BACKLOG 1024
/* Connections accepted per readable event: enough to drain a burst, few
 * enough that one busy listener cannot keep the loop from other fds. */
#define ACCEPT_BATCH 64
/* Pause after running out of descriptors, as nginx does, instead of
 * spinning on a listener that stays readable. */
#define EMFILE_PAUSE_SECONDS 0.1

/* ---- Listening sockets -------------------------------------------------- */

static gust_socket_list *list_new(size_t cap)
{
    gust_socket_list *l = malloc(sizeof *l + cap * sizeof l->fds[0]);
    if (l)
        l->count = 0;
    return l;
}

void gust_socket_list_free(gust_socket_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        close(list->fds[i]);
    free(list);
}

int gust_socket_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -errno;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -EAFNOSUPPORT;
}

static void set_port(struct sockaddr *sa, int port)
{
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
    else if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
}

/* Creates, configures, binds and listens one socket; returns it or -errno. */
static int listen_one(const struct addrinfo *ai, const gust_bind_options *o)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        goto fail;
    if (o->reuse_port &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        goto fail;
    /* Without V6ONLY the v6 socket would also take IPv4 and collide with
     * the v4 socket bound to the same port. */
    if (ai->ai_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
        goto fail;
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
        goto fail;
    if (listen(fd, o->backlog > 0 ? o->backlog : DEFAULT_BACKLOG) < 0)
        goto fail;
    return fd;
fail:;
    int err = -errno;
    close(fd);
    return err;
}

static bool same_addr(const struct addrinfo *a, const struct addrinfo *b)
{
    return a->ai_family == b->ai_family && a->ai_addrlen == b->ai_addrlen &&
           memcmp(a->ai_addr, b->ai_addr, a->ai_addrlen) == 0;
}

gust_socket_list *gust_bind_sockets(int port, const char *address,
                                    const gust_bind_options *opts)
{
    gust_bind_options o = {0};
    if (opts)
        o = *opts;
    if (port < 0 || port > 65535) {
        errno = EINVAL;
        return NULL;
    }
    if (address && !*address)
        address = NULL;

    struct addrinfo hints = {
        .ai_family = o.family ? o.family : AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
        .ai_flags = AI_PASSIVE,
    };
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    struct addrinfo *res;
    int gai = getaddrinfo(address, service, &hints, &res);
    if (gai != 0) {
        gust_log_error("net", "cannot resolve %s: %s", address ? address : "*",
                       gai_strerror(gai));
        errno = gai == EAI_SYSTEM ? errno : ENOENT;
        return NULL;
    }
    size_t n = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        n++;
    gust_socket_list *list = list_new(n);
    if (!list) {
        freeaddrinfo(res);
        errno = ENOMEM;
        return NULL;
    }

    int err = 0, bound_port = port;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        bool dup = false;
        for (struct addrinfo *p = res; p != ai; p = p->ai_next)
            dup |= same_addr(p, ai);
        if (dup)
            continue;
        /* Port 0: the kernel picks one for the first socket; the others
         * take the same, as Tornado does, so one port serves both
         * families. */
        if (bound_port)
            set_port(ai->ai_addr, bound_port);
        int fd = listen_one(ai, &o);
        if (fd == -EAFNOSUPPORT || fd == -EADDRNOTAVAIL) {
            /* An address family this host cannot use (no IPv6): skip it
             * unless it is the only one. */
            err = fd;
            continue;
        }
        if (fd < 0) {
            err = fd;
            goto fail;
        }
        if (!bound_port)
            bound_port = gust_socket_port(fd);
        list->fds[list->count++] = fd;
    }
    freeaddrinfo(res);
    if (list->count == 0) {
        free(list);
        errno = err ? -err : EADDRNOTAVAIL;
        return NULL;
    }
    return list;
fail:
    freeaddrinfo(res);
    gust_socket_list_free(list);
    errno = -err;
    return NULL;
}

gust_socket_list *gust_bind_unix_socket(const char *path, unsigned mode,
                                        int backlog)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (!path || strlen(path) >= sizeof sun.sun_path) {
        errno = EINVAL;
        return NULL;
    }
    strcpy(sun.sun_path, path);
    /* A socket file left by a previous run would make bind() fail; anything
     * else at that path is not ours to remove. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            errno = EEXIST;
            return NULL;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 ||
        chmod(path, mode) < 0 ||
        listen(fd, backlog > 0 ? backlog : DEFAULT_BACKLOG) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return NULL;
    }
    gust_socket_list *list = list_new(1);
    if (!list) {
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    list->fds[list->count++] = fd;
    return list;
}

/* ---- Accepting ---------------------------------------------------------- */

struct gust_acceptor {
    gust_loop *loop;
    int fd;
    gust_accept_cb cb;
    void *data;
    bool paused;      /* by the user (connection cap) */
    bool backing_off; /* out of descriptors: waiting for the timer */
    bool in_callback; /* free requested inside cb: finish after it */
    bool freed;
    gust_timer backoff;
};

static void acceptor_sync(gust_acceptor *a)
{
    unsigned ev = a->paused || a->backing_off ? 0 : GUST_READ;
    gust_loop_update_handler(a->loop, a->fd, ev);
}

static void on_backoff_over(gust_timer *t, void *data)
{
    (void)t;
    gust_acceptor *a = data;
    a->backing_off = false;
    acceptor_sync(a);
}

static void on_listener_ready(gust_loop *loop, int fd, unsigned events,
                              void *data)
{
    (void)loop;
    (void)events;
    gust_acceptor *a = data;
    for (int i = 0; i < ACCEPT_BATCH && !a->paused && !a->freed; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int cfd = accept4(fd, (struct sockaddr *)&ss, &len,
                          SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK)
                break;
            if (err == EINTR || err == ECONNABORTED || err == EPROTO)
                continue;
            if (err == EMFILE || err == ENFILE || err == ENOBUFS ||
                err == ENOMEM) {
                if (!a->backing_off)
                    gust_log_warning("net", "accept on fd %d: %s; not accepting "
                                     "for %.1f s", fd, strerror(err),
                                     EMFILE_PAUSE_SECONDS);
                a->backing_off = true;
                acceptor_sync(a);
                gust_timer_start(&a->backoff, EMFILE_PAUSE_SECONDS, 0,
                                 on_backoff_over, a);
                return;
            }
            gust_log_error("net", "accept on fd %d: %s", fd, strerror(err));
            break;
        }
        if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
            int one = 1;
            setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        a->in_callback = true;
        a->cb(a, cfd, (struct sockaddr *)&ss, len, a->data);
        a->in_callback = false;
    }
    if (a->freed)
        free(a);
}

gust_acceptor *gust_acceptor_new(gust_loop *loop, int listen_fd,
                                 gust_accept_cb cb, void *data)
{
    if (!loop || listen_fd < 0 || !cb) {
        errno = EINVAL;
        return NULL;
    }
    gust_acceptor *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->loop = loop;
    a->fd = listen_fd;
    a->cb = cb;
    a->data = data;
    gust_timer_init(loop, &a->backoff);
    int r = gust_loop_add_handler(loop, listen_fd, GUST_READ, on_listener_ready, a);
    if (r < 0) {
        free(a);
        errno = -r;
        return NULL;
    }
    return a;
}

void gust_acceptor_pause(gust_acceptor *a)
{
    a->paused = true;
    acceptor_sync(a);
}

void gust_acceptor_resume(gust_acceptor *a)
{
    a->paused = false;
    acceptor_sync(a);
}

int gust_acceptor_fd(const gust_acceptor *a)
{
    return a->fd;
}

void gust_acceptor_free(gust_acceptor *a)
{
    if (!a || a->freed)
        return;
    gust_timer_stop(&a->backoff);
    gust_loop_remove_handler(a->loop, a->fd);
    /* Inside its own callback the accept loop still reads the struct: it
     * frees it on the way out. */
    if (a->in_callback)
        a->freed = true;
    else
        free(a);
}

/* ---- Resolving ---------------------------------------------------------- */

typedef struct resolve_req {
    char *host;
    int port;
    int family;
    int status;
    gust_address *addrs;
    size_t count;
    gust_resolve_cb cb;
    void *data;
} resolve_req;

static int gai_to_errno(int gai)
{
    switch (gai) {
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
        return -ENOENT;
    case EAI_AGAIN:
        return -EAGAIN;
    case EAI_MEMORY:
        return -ENOMEM;
    case EAI_FAMILY:
        return -EAFNOSUPPORT;
    case EAI_SYSTEM:
        return errno ? -errno : -EIO;
    default:
        return -EINVAL;
    }
}

/* On an executor thread: getaddrinfo may block for seconds. */
static void resolve_work(void *data)
{
    resolve_req *r = data;
    struct addrinfo hints = {.ai_family = r->family, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_ADDRCONFIG};
    char service[8];
    snprintf(service, sizeof service, "%d", r->port);
    struct addrinfo *res;
    int gai = getaddrinfo(r->host, service, &hints, &res);
    if (gai != 0) {
        r->status = gai_to_errno(gai);
        return;
    }
    size_t n = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        n++;
    r->addrs = calloc(n ? n : 1, sizeof *r->addrs);
    if (!r->addrs) {
        freeaddrinfo(res);
        r->status = -ENOMEM;
        return;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof r->addrs[0].addr)
            continue;
        memcpy(&r->addrs[r->count].addr, ai->ai_addr, ai->ai_addrlen);
        r->addrs[r->count].len = ai->ai_addrlen;
        r->count++;
    }
    freeaddrinfo(res);
    r->status = r->count ? 0 : -ENOENT;
}

static void resolve_done(gust_loop *loop, int status, void *data)
{
    (void)status;
    resolve_req *r = data;
    r->cb(loop, r->status, r->status == 0 ? r->addrs : NULL,
          r->status == 0 ? r->count : 0, r->data);
    free(r->addrs);
    free(r->host);
    free(r);
}

int gust_resolve(gust_loop *loop, const char *host, int port, int family,
                 gust_resolve_cb cb, void *data)
{
    if (!host || !cb || port < 0 || port > 65535)
        return -EINVAL;
    resolve_req *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->host = strdup(host);
    if (!r->host) {
        free(r);
        return -ENOMEM;
    }
    r->port = port;
    r->family = family;
    r->cb = cb;
    r->data = data;
    int rc = gust_loop_run_in_executor(loop, resolve_work, resolve_done, r);
    if (rc < 0) {
        free(r->host);
        free(r);
    }
    return rc;
}

/* ---- Connecting --------------------------------------------------------- */

typedef struct connect_req {
    gust_loop *loop;
    gust_stream_options opts;
    bool has_opts;
    gust_address *addrs;
    size_t count, next;
    int last_error;
    gust_tcp_connect_cb cb;
    void *data;
} connect_req;

static void try_next(connect_req *c);

static void connect_finish(connect_req *c, int status, gust_stream *s)
{
    c->cb(c->loop, status, s, c->data);
    free(c->addrs);
    free(c);
}

static void on_connected(gust_stream *s, int status, void *user)
{
    connect_req *c = user;
    if (status == 0) {
        connect_finish(c, 0, s);
        return;
    }
    /* The stream closes itself after a failed connect; try the next
     * address (Tornado's TCPClient does the same, without the timing of
     * happy eyeballs). */
    c->last_error = status;
    try_next(c);
}

static void try_next(connect_req *c)
{
    while (c->next < c->count) {
        gust_address *a = &c->addrs[c->next++];
        int fd = socket(a->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            c->last_error = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        gust_stream *s = gust_stream_new(c->loop, fd, c->has_opts ? &c->opts : NULL);
        if (!s) {
            c->last_error = -errno;
            close(fd);
            continue;
        }
        int r = gust_stream_connect(s, (struct sockaddr *)&a->addr, a->len,
                                    on_connected, c);
        if (r == 0)
            return;
        c->last_error = r;
        gust_stream_close(s);
    }
    connect_finish(c, c->last_error ? c->last_error : -ECONNREFUSED, NULL);
}

static void on_resolved(gust_loop *loop, int status, const gust_address *addrs,
                        size_t count, void *data)
{
    (void)loop;
    connect_req *c = data;
    if (status < 0) {
        connect_finish(c, status, NULL);
        return;
    }
    c->addrs = malloc(count * sizeof *addrs);
    if (!c->addrs) {
        connect_finish(c, -ENOMEM, NULL);
        return;
    }
    memcpy(c->addrs, addrs, count * sizeof *addrs);
    c->count = count;
    try_next(c);
}

int gust_tcp_connect(gust_loop *loop, const char *host, int port,
                     const gust_stream_options *opts, gust_tcp_connect_cb cb,
                     void *data)
{
    if (!cb)
        return -EINVAL;
    connect_req *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    if (opts) {
        c->opts = *opts;
        c->has_opts = true;
    }
    c->cb = cb;
    c->data = data;
    int r = gust_resolve(loop, host, port, AF_UNSPEC, on_resolved, c);
    if (r < 0)
        free(c);
    return r;
}
