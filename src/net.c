/* Sockets: binding listeners, accepting connections and resolving names
 * (Tornado's netutil); connecting is in net_connect.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/net.h"
#include "net_internal.h"

#define DEFAULT_BACKLOG 1024
/* Connections accepted per readable event: enough to drain a burst, few
 * enough that one busy listener leaves the loop time for everything else. */
#define ACCEPT_BATCH 64
/* How long accepting pauses when the process is out of descriptors. */
#define ACCEPT_BACKOFF 0.1

/* getaddrinfo() reports its own codes; callers want errno-style ones. */
static int gai_code(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case EAI_NONAME:
#ifdef EAI_NODATA
    case EAI_NODATA:
#endif
#ifdef EAI_ADDRFAMILY
    case EAI_ADDRFAMILY:
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

static void port_string(int port, char out[8])
{
    snprintf(out, 8, "%d", port);
}

static void set_port(struct sockaddr *sa, int port)
{
    if (sa->sa_family == AF_INET)
        ((struct sockaddr_in *)(void *)sa)->sin_port = htons((uint16_t)port);
    else if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)(void *)sa)->sin6_port = htons((uint16_t)port);
}

/* True if an earlier result has the same address: some resolvers list one
 * address twice (e.g. once per /etc/hosts line), and the second bind would
 * fail with EADDRINUSE. */
static bool seen_before(const struct addrinfo *head, const struct addrinfo *ai)
{
    for (const struct addrinfo *p = head; p != ai; p = p->ai_next)
        if (p->ai_family == ai->ai_family && p->ai_addrlen == ai->ai_addrlen &&
            memcmp(p->ai_addr, ai->ai_addr, ai->ai_addrlen) == 0)
            return true;
    return false;
}

/* "localhost" is the loopback address of each family (RFC 6761), whatever
 * /etc/hosts says: many systems list only 127.0.0.1 there, and a server on
 * "localhost" should answer on ::1 too. Fills lo[] and returns its head. */
static struct addrinfo *localhost_addrs(int family, struct addrinfo lo[2],
                                        struct sockaddr_in *v4,
                                        struct sockaddr_in6 *v6)
{
    struct addrinfo *head = NULL, **tail = &head;
    *v4 = (struct sockaddr_in){.sin_family = AF_INET};
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    *v6 = (struct sockaddr_in6){.sin6_family = AF_INET6,
                                .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (family != AF_INET6) {
        lo[0] = (struct addrinfo){.ai_family = AF_INET, .ai_socktype = SOCK_STREAM,
                                  .ai_addrlen = sizeof *v4,
                                  .ai_addr = (struct sockaddr *)v4};
        *tail = &lo[0];
        tail = &lo[0].ai_next;
    }
    if (family != AF_INET) {
        lo[1] = (struct addrinfo){.ai_family = AF_INET6,
                                  .ai_socktype = SOCK_STREAM,
                                  .ai_addrlen = sizeof *v6,
                                  .ai_addr = (struct sockaddr *)v6};
        *tail = &lo[1];
    }
    return head;
}

/* One listening socket for ai; returns the fd or a negated errno. */
static int listen_one(const struct addrinfo *ai, int port, int backlog,
                      bool reuse_port)
{
    struct sockaddr_storage ss;
    memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    set_port((struct sockaddr *)&ss, port);
    /* After a SIGHUP reload the previous image's socket is adopted, so its
     * accept queue survives (net_inherit.c). */
    int fd = port ? gust__net_take_inherited((struct sockaddr *)&ss,
                                             ai->ai_addrlen)
                  : -1;
    if (fd >= 0)
        return fd;
    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0)
        return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        goto fail;
    if (reuse_port &&
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        goto fail;
    /* Without V6ONLY, "::" would also take the IPv4 port and the 0.0.0.0
     * socket bound next to it would fail with EADDRINUSE. */
    if (ai->ai_family == AF_INET6 &&
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) < 0)
        goto fail;
    if (bind(fd, (struct sockaddr *)&ss, ai->ai_addrlen) < 0)
        goto fail;
    if (listen(fd, backlog) < 0)
        goto fail;
    return fd;
fail:;
    int err = -errno;
    close(fd);
    return err;
}

gust_socket_list *gust_bind_sockets(int port, const char *address,
                                    const gust_bind_options *opts)
{
    if (port < 0 || port > 65535) {
        errno = EINVAL;
        return NULL;
    }
    gust_bind_options o = opts ? *opts : (gust_bind_options){0};
    int backlog = o.backlog > 0 ? o.backlog : DEFAULT_BACKLOG;
    if (address && !*address)
        address = NULL;
    /* Under systemd socket activation the port's sockets come from it. */
    int act[16];
    int nact = port > 0 ? gust__net_take_activated(port, act, 16) : 0;
    if (nact > 0) {
        gust_socket_list *l = malloc(sizeof *l + (size_t)nact * sizeof(int));
        if (!l) {
            errno = ENOMEM;
            return NULL;
        }
        l->count = 0;
        for (int i = 0; i < nact; i++)
            l->fds[l->count++] = act[i];
        return l;
    }

    struct addrinfo *res = NULL;
    struct addrinfo lo[2];
    struct sockaddr_in lo4;
    struct sockaddr_in6 lo6;
    bool from_gai = !(address && strcasecmp(address, "localhost") == 0);
    if (from_gai) {
        struct addrinfo hints = {
            .ai_family = o.family,
            .ai_socktype = SOCK_STREAM,
            .ai_flags = AI_PASSIVE,
        };
        char service[8];
        port_string(port, service);
        int rc = gai_code(getaddrinfo(address, service, &hints, &res));
        if (rc < 0) {
            errno = -rc;
            return NULL;
        }
    } else {
        res = localhost_addrs(o.family, lo, &lo4, &lo6);
    }
    size_t n = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
        n++;
    gust_socket_list *list = malloc(sizeof *list + n * sizeof(int));
    if (!list) {
        if (from_gai)
            freeaddrinfo(res);
        errno = ENOMEM;
        return NULL;
    }
    list->count = 0;

    int err = -EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (seen_before(res, ai))
            continue;
        int fd = listen_one(ai, port, backlog, o.reuse_port);
        /* A host with IPv6 switched off still resolves "::" and "::1":
         * skip those rather than failing the IPv4 sockets too. */
        if (fd == -EAFNOSUPPORT ||
            (fd == -EADDRNOTAVAIL && ai->ai_family == AF_INET6)) {
            err = fd;
            continue;
        }
        if (fd < 0) {
            err = fd;
            goto fail;
        }
        list->fds[list->count++] = fd;
        /* Port 0: the kernel chose a port for the first socket; the others
         * take the same one so that every family answers on it. */
        if (port == 0) {
            port = gust_socket_port(fd);
            if (port < 0) {
                err = port;
                goto fail;
            }
        }
    }
    if (from_gai)
        freeaddrinfo(res);
    if (list->count == 0) {
        free(list);
        errno = -err;
        return NULL;
    }
    return list;
fail:
    if (from_gai)
        freeaddrinfo(res);
    gust_socket_list_free(list);
    errno = -err;
    return NULL;
}

gust_socket_list *gust_bind_unix_socket(const char *path, unsigned mode,
                                        int backlog)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (!path || !*path) {
        errno = EINVAL;
        return NULL;
    }
    if (strlen(path) >= sizeof sun.sun_path) {
        errno = ENAMETOOLONG;
        return NULL;
    }
    strcpy(sun.sun_path, path);
    gust_socket_list *list = malloc(sizeof *list + sizeof(int));
    if (!list) {
        errno = ENOMEM;
        return NULL;
    }
    /* Adopted before the stale-file check below would unlink it. */
    int fd = gust__net_take_inherited((struct sockaddr *)&sun, sizeof sun);
    if (fd >= 0) {
        list->count = 1;
        list->fds[0] = fd;
        return list;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail_list;
    /* A socket file left by a previous run makes bind() fail; it is safe to
     * remove. Anything else at that path is someone's data: refuse. */
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            errno = EEXIST;
            goto fail_fd;
        }
        if (unlink(path) < 0)
            goto fail_fd;
    } else if (errno != ENOENT) {
        goto fail_fd;
    }
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
        goto fail_fd;
    if (chmod(path, (mode_t)mode) < 0 ||
        listen(fd, backlog > 0 ? backlog : DEFAULT_BACKLOG) < 0) {
        int e = errno;
        unlink(path);
        errno = e;
        goto fail_fd;
    }
    list->count = 1;
    list->fds[0] = fd;
    return list;
fail_fd:;
    int e = errno;
    close(fd);
    errno = e;
fail_list:
    e = errno;
    free(list);
    errno = e;
    return NULL;
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

/* ---- Accepting --------------------------------------------------------- */

struct gust_acceptor {
    gust_loop *loop;
    int fd;
    gust_accept_cb cb;
    void *data;
    bool watching;    /* fd has a handler on the loop */
    bool paused;      /* by gust_acceptor_pause() */
    bool backing_off; /* out of resources: waiting for the timer */
    bool complained;  /* the current out-of-resources episode was logged */
    bool dispatching; /* inside on_readable: free must wait for it */
    bool freed;
    gust_timer timer;
};

/* Watches the fd exactly when the acceptor wants connections. Pausing
 * removes the handler rather than clearing the interest mask, so that no
 * error or hang-up on the listener can wake the loop while it waits. */
static void update_watch(gust_acceptor *a);

static void on_readable(gust_loop *loop, int fd, unsigned events, void *data);

static void update_watch(gust_acceptor *a)
{
    bool want = !a->paused && !a->backing_off && !a->freed;
    if (want == a->watching)
        return;
    if (want) {
        int rc = gust_loop_add_handler(a->loop, a->fd, GUST_READ, on_readable, a);
        if (rc < 0)
            gust_log_error("net", "cannot watch listening socket %d: %s", a->fd,
                           gust_strerror(rc));
        else
            a->watching = true;
    } else {
        gust_loop_remove_handler(a->loop, a->fd);
        a->watching = false;
    }
}

static void on_backoff_done(gust_timer *timer, void *data)
{
    (void)timer;
    gust_acceptor *a = data;
    a->backing_off = false;
    update_watch(a);
}

/* Out of descriptors or memory: the pending connection stays in the
 * backlog and the listener stays readable, so retrying at once would spin.
 * Stop watching and try again shortly; log only the first failure of each
 * episode (it ends with the next successful accept). */
static void back_off(gust_acceptor *a, int err)
{
    if (!a->complained) {
        a->complained = true;
        if (err == EMFILE || err == ENFILE)
            gust_log_warning("net", "out of file descriptors accepting on "
                             "fd %d (%s); pausing accepts, retrying every "
                             "%.1f s", a->fd, strerror(err), ACCEPT_BACKOFF);
        else
            gust_log_warning("net", "accept on fd %d failed (%s); pausing "
                             "accepts, retrying every %.1f s", a->fd,
                             strerror(err), ACCEPT_BACKOFF);
    }
    a->backing_off = true;
    update_watch(a);
    if (gust_timer_start(&a->timer, ACCEPT_BACKOFF, 0, on_backoff_done, a) < 0) {
        /* Without a timer there is no way back: stay watching instead. */
        a->backing_off = false;
        update_watch(a);
    }
}

static void on_readable(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)events;
    gust_acceptor *a = data;
    a->dispatching = true;
    for (int i = 0; i < ACCEPT_BATCH && a->watching; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        int c = accept4(fd, (struct sockaddr *)&ss, &len,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK)
                break;
            /* The peer gave up, or (Linux) a network error was reported on
             * the new connection: that one is lost, the next may be fine. */
            if (err == EINTR || err == ECONNABORTED || err == EPROTO ||
                err == ENETDOWN || err == ENOPROTOOPT || err == EHOSTDOWN ||
                err == ENONET || err == EHOSTUNREACH || err == ENETUNREACH ||
                err == EPERM)
                continue;
            back_off(a, err);
            break;
        }
        if (a->complained) {
            a->complained = false;
            gust_log_info("net", "accepting on fd %d again", a->fd);
        }
        if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
            int one = 1;
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        a->cb(a, c, (struct sockaddr *)&ss, len, a->data);
    }
    a->dispatching = false;
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
    if (!a) {
        errno = ENOMEM;
        return NULL;
    }
    a->loop = loop;
    a->fd = listen_fd;
    a->cb = cb;
    a->data = data;
    gust_timer_init(loop, &a->timer);
    int rc = gust_loop_add_handler(loop, listen_fd, GUST_READ, on_readable, a);
    if (rc < 0) {
        free(a);
        errno = -rc; /* may be a Gust code, e.g. -GUST_EFORKED */
        return NULL;
    }
    a->watching = true;
    return a;
}

void gust_acceptor_pause(gust_acceptor *a)
{
    a->paused = true;
    update_watch(a);
}

void gust_acceptor_resume(gust_acceptor *a)
{
    a->paused = false;
    update_watch(a);
}

int gust_acceptor_fd(const gust_acceptor *a)
{
    return a->fd;
}

void gust_acceptor_free(gust_acceptor *a)
{
    if (!a || a->freed)
        return;
    a->freed = true;
    gust_timer_stop(&a->timer);
    update_watch(a);
    /* Inside on_readable the batch loop still reads the struct: it frees it
     * when the current callback returns. */
    if (!a->dispatching)
        free(a);
}

/* ---- Resolving --------------------------------------------------------- */

typedef struct resolve_req {
    gust_loop *loop;
    char *host;
    char service[8];
    int family;
    gust_resolve_cb cb;
    void *data;
    int status;
    struct addrinfo *res;
} resolve_req;

/* On an executor thread: the one blocking call. */
static void resolve_work(void *data)
{
    resolve_req *r = data;
    struct addrinfo hints = {.ai_family = r->family, .ai_socktype = SOCK_STREAM};
    errno = 0;
    r->status = gai_code(getaddrinfo(r->host, r->service, &hints, &r->res));
}

static void resolve_done(gust_loop *loop, int status, void *data)
{
    resolve_req *r = data;
    gust_address *addrs = NULL;
    size_t n = 0;
    if (status == 0)
        status = r->status;
    if (status == 0) {
        for (struct addrinfo *ai = r->res; ai; ai = ai->ai_next)
            n++;
        addrs = calloc(n ? n : 1, sizeof *addrs);
        if (!addrs)
            status = -ENOMEM;
        n = 0;
        for (struct addrinfo *ai = r->res; addrs && ai; ai = ai->ai_next) {
            if (ai->ai_addrlen > sizeof addrs[n].addr)
                continue;
            memcpy(&addrs[n].addr, ai->ai_addr, ai->ai_addrlen);
            addrs[n++].len = ai->ai_addrlen;
        }
        if (status == 0 && n == 0)
            status = -ENOENT;
    }
    r->cb(loop, status, status == 0 ? addrs : NULL, status == 0 ? n : 0,
          r->data);
    free(addrs);
    if (r->res)
        freeaddrinfo(r->res);
    free(r->host);
    free(r);
}

int gust_resolve(gust_loop *loop, const char *host, int port, int family,
                 gust_resolve_cb cb, void *data)
{
    if (!loop || !host || !cb || port < 0 || port > 65535)
        return -EINVAL;
    resolve_req *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->host = strdup(host);
    if (!r->host) {
        free(r);
        return -ENOMEM;
    }
    r->loop = loop;
    port_string(port, r->service);
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
