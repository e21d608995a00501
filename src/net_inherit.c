/* Handing listening sockets to the next program image (SIGHUP reload),
 * and taking them from systemd (socket activation).
 *
 * The old image finds its listening sockets in /proc/self/fd rather than
 * remembering them: no global registry is needed, and sockets bound by the
 * application itself travel too. The new image adopts one when it binds
 * the same address, so the kernel's accept queue (with the connections
 * waiting in it) is never closed: that is what makes the reload drop
 * nothing. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "gust/log.h"
#include "net_internal.h"

#define MAX_INHERITED 64

static bool is_listening_socket(int fd)
{
    int on = 0;
    socklen_t len = sizeof on;
    return getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &on, &len) == 0 && on;
}

/* Parses GUST_LISTEN_FDS into fds; returns the count. */
static int inherited_list(int fds[MAX_INHERITED])
{
    const char *env = getenv(GUST__LISTEN_FDS_ENV);
    int n = 0;
    while (env && *env && n < MAX_INHERITED) {
        char *end;
        long fd = strtol(env, &end, 10);
        if (end == env || fd < 0 || fd > 1 << 24)
            break;
        fds[n++] = (int)fd;
        env = *end == ',' ? end + 1 : end;
        if (*end != ',')
            break;
    }
    return n;
}

static void set_inherited_list(const int *fds, int n)
{
    if (n == 0) {
        unsetenv(GUST__LISTEN_FDS_ENV);
        return;
    }
    char buf[MAX_INHERITED * 12];
    size_t off = 0;
    for (int i = 0; i < n && off < sizeof buf; i++)
        off += (size_t)snprintf(buf + off, sizeof buf - off, "%s%d",
                                i ? "," : "", fds[i]);
    setenv(GUST__LISTEN_FDS_ENV, buf, 1);
}

/* Whether two bound addresses are the same endpoint. */
static bool same_address(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    switch (a->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port &&
               x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    case AF_UNIX: {
        const struct sockaddr_un *x = (const void *)a, *y = (const void *)b;
        return strncmp(x->sun_path, y->sun_path, sizeof x->sun_path) == 0;
    }
    default:
        return false;
    }
}

int gust__net_take_inherited(const struct sockaddr *addr, socklen_t len)
{
    (void)len;
    int fds[MAX_INHERITED];
    int n = inherited_list(fds);
    for (int i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        memset(&ss, 0, sizeof ss);
        if (!is_listening_socket(fds[i]) ||
            getsockname(fds[i], (struct sockaddr *)&ss, &sl) < 0 ||
            !same_address((const struct sockaddr *)&ss, addr))
            continue;
        int fd = fds[i];
        fds[i] = fds[--n];
        set_inherited_list(fds, n);
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        gust_log_debug("net", "adopted inherited listening socket fd %d", fd);
        return fd;
    }
    return -1;
}

/* ---- systemd socket activation (sd_listen_fds(3)) ------------------------
 *
 * systemd (or systemd-socket-activate) starts the program with its
 * listening sockets at fds 3, 4, ... and says so in LISTEN_FDS, with
 * LISTEN_PID naming the process meant. The variables are left in the
 * environment: a SIGHUP reload execs the same pid, whose new image finds
 * the same sockets again (they stay open across the exec), while any other
 * program started from here has another pid and ignores them. */

#define SD_LISTEN_FDS_START 3

static int activated[MAX_INHERITED];
static int activated_n = -1; /* -1: LISTEN_FDS not read yet */

static void load_activated(void)
{
    if (activated_n >= 0)
        return;
    activated_n = 0;
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (!pid || !fds)
        return;
    char *end;
    long p = strtol(pid, &end, 10);
    if (*end || p != (long)getpid())
        return;
    long n = strtol(fds, &end, 10);
    if (*end || n <= 0)
        return;
    for (long i = 0; i < n && activated_n < MAX_INHERITED; i++) {
        int fd = SD_LISTEN_FDS_START + (int)i;
        if (!is_listening_socket(fd))
            continue;
        fcntl(fd, F_SETFD, FD_CLOEXEC);
        int fl = fcntl(fd, F_GETFL);
        if (fl >= 0)
            fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        activated[activated_n++] = fd;
    }
}

static int port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port);
    if (ss->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)ss)->sin6_port);
    return -1;
}

/* Drops fd from GUST_LISTEN_FDS, so that the close of the sockets no one
 * took (after a reload) leaves it open. */
static void forget_inherited(int fd)
{
    int fds[MAX_INHERITED];
    int n = inherited_list(fds);
    for (int i = 0; i < n; i++)
        if (fds[i] == fd) {
            fds[i] = fds[--n];
            set_inherited_list(fds, n);
            return;
        }
}

int gust__net_take_activated(int port, int *out, int max)
{
    load_activated();
    int k = 0;
    for (int i = 0; i < activated_n && k < max; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        memset(&ss, 0, sizeof ss);
        if (activated[i] < 0 ||
            getsockname(activated[i], (struct sockaddr *)&ss, &sl) < 0 ||
            port_of(&ss) != port)
            continue;
        out[k++] = activated[i];
        forget_inherited(activated[i]);
        gust_log_info("net", "port %d: using the socket passed by systemd "
                      "(fd %d)", port, activated[i]);
        activated[i] = -1;
    }
    return k;
}

int gust__net_close_inherited(void)
{
    int fds[MAX_INHERITED];
    int n = inherited_list(fds);
    int closed = 0;
    for (int i = 0; i < n; i++)
        if (is_listening_socket(fds[i]) && close(fds[i]) == 0)
            closed++;
    unsetenv(GUST__LISTEN_FDS_ENV);
    return closed;
}

/* Calls fn on each listening socket of this process; returns the count. */
static int each_listener(void (*fn)(int fd, void *data), void *data)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -errno;
    int self = dirfd(d), n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end || end == e->d_name || fd == self || !is_listening_socket((int)fd))
            continue;
        fn((int)fd, data);
        n++;
    }
    closedir(d);
    return n;
}

typedef struct {
    int fds[MAX_INHERITED];
    int n;
} fd_set_list;

static void export_one(int fd, void *data)
{
    fd_set_list *l = data;
    if (l->n < MAX_INHERITED && fcntl(fd, F_SETFD, 0) == 0)
        l->fds[l->n++] = fd;
}

int gust__net_export_listeners(void)
{
    fd_set_list l = {.n = 0};
    int rc = each_listener(export_one, &l);
    if (rc < 0)
        return rc;
    set_inherited_list(l.fds, l.n);
    return l.n;
}

static void unexport_one(int fd, void *data)
{
    (void)data;
    fcntl(fd, F_SETFD, FD_CLOEXEC);
}

void gust__net_unexport_listeners(void)
{
    each_listener(unexport_one, NULL);
    unsetenv(GUST__LISTEN_FDS_ENV);
}
