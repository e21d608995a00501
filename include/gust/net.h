/* Sockets: binding listeners, accepting connections, resolving names
 * (Tornado's netutil and tcpclient).
 */
#ifndef GUST_NET_H
#define GUST_NET_H

#include "gust/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "gust/future.h"
#include "gust/loop.h"
#include "gust/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A list of listening sockets, as gust_bind_sockets() returns them. */
typedef struct gust_socket_list {
    size_t count;
    int fds[]; /* listening, non-blocking, CLOEXEC */
} gust_socket_list;

typedef struct gust_bind_options {
    /* AF_UNSPEC (0, default): every family getaddrinfo() gives; or AF_INET /
     * AF_INET6 only. */
    int family;
    /* listen() backlog; 0: the default, 1024 (the kernel caps it at
     * net.core.somaxconn). */
    int backlog;
    /* Set SO_REUSEPORT so several processes may each bind their own socket to
     * the port and let the kernel spread connections. */
    bool reuse_port;
} gust_bind_options;

/* Creates listening sockets for port on address, one per address that
 * getaddrinfo(address, AI_PASSIVE) gives: with address NULL or "", all
 * interfaces (0.0.0.0 and ::); "localhost" gives 127.0.0.1 and ::1 (both
 * whatever /etc/hosts lists). IPv6 addresses are skipped, not failed, where
 * the host has IPv6 switched off. IPv6
 * sockets get IPV6_V6ONLY so that both families can share the port; every
 * socket gets SO_REUSEADDR. port 0 picks a free port; when several sockets
 * are made, they all get the same one (read it with gust_socket_port()).
 * opts may be NULL. Returns a list the caller owns (gust_socket_list_free(),
 * or hand it to gust_tcp_server_add_sockets()), or NULL with errno set.
 *
 * Sockets that already exist are adopted instead of bound again: after a
 * SIGHUP reload, the previous image's socket for the same address; under
 * systemd socket activation (LISTEN_PID is this process), the sockets of
 * LISTEN_FDS that listen on port, whatever their address (the unit's
 * ListenStream= decides it; address and opts are then not used). */
GUST_EXTERN gust_socket_list *gust_bind_sockets(int port, const char *address,
                                                const gust_bind_options *opts);

/* Creates a listening unix-domain socket at path, first removing a stale
 * socket file there (but never a regular file: that fails with EEXIST).
 * mode: permissions of the socket file (e.g. 0600). backlog 0: default.
 * Returns a one-socket list, or NULL with errno set. */
GUST_EXTERN gust_socket_list *gust_bind_unix_socket(const char *path,
                                                    unsigned mode, int backlog);

/* Closes every socket in the list and frees it. NULL is a no-op. */
GUST_EXTERN void gust_socket_list_free(gust_socket_list *list);

/* The local port of a bound socket (host order), or a negative errno. */
GUST_EXTERN int gust_socket_port(int fd);

/* ---- Accepting --------------------------------------------------------- */

typedef struct gust_acceptor gust_acceptor;

/* Called for each accepted connection. fd is non-blocking and CLOEXEC (with
 * TCP_NODELAY for TCP) and belongs to the callback. */
typedef void (*gust_accept_cb)(gust_acceptor *acceptor, int fd,
                               const struct sockaddr *addr, socklen_t addrlen,
                               void *data);

/* Watches listening socket listen_fd on loop and calls cb for each new
 * connection. When the socket is readable it accepts until EAGAIN, at most
 * a bounded number per iteration so that one busy listener cannot starve the
 * loop. When the process runs out of descriptors (EMFILE/ENFILE) it logs
 * once, stops accepting for a moment (0.1 s) and retries: it never spins.
 * ENOBUFS/ENOMEM back off the same way; a connection that failed before it
 * was accepted (ECONNABORTED, EPROTO...) is skipped. Accepting in a loop
 * used by another process after fork is refused (GUST_EFORKED).
 * listen_fd stays owned by the caller and must outlive the acceptor.
 * Returns the acceptor, or NULL with errno set (to an errno value, or to the
 * negated Gust code, e.g. -GUST_EFORKED, when the loop refused the fd). */
GUST_EXTERN gust_acceptor *gust_acceptor_new(gust_loop *loop, int listen_fd,
                                             gust_accept_cb cb, void *data);

/* Stops and resumes accepting (for a connection cap). Pending connections
 * wait in the kernel's backlog meanwhile. */
GUST_EXTERN void gust_acceptor_pause(gust_acceptor *acceptor);
GUST_EXTERN void gust_acceptor_resume(gust_acceptor *acceptor);

/* The listening fd. */
GUST_EXTERN int gust_acceptor_fd(const gust_acceptor *acceptor);

/* Stops watching and frees the acceptor (not the socket). Safe from inside
 * its own callback. NULL is a no-op. */
GUST_EXTERN void gust_acceptor_free(gust_acceptor *acceptor);

/* ---- Resolving and connecting ------------------------------------------ */

/* One resolved address. */
typedef struct gust_address {
    struct sockaddr_storage addr;
    socklen_t len;
} gust_address;

/* status 0: addrs[0..count) hold the addresses (valid until the callback
 * returns). Else a negative code: -ENOENT for an unknown host, or the
 * errno-like translation of the resolver's error. */
typedef void (*gust_resolve_cb)(gust_loop *loop, int status,
                                const gust_address *addrs, size_t count,
                                void *data);

/* Resolves host:port (numeric or a name) without blocking the loop, on the
 * loop's executor with getaddrinfo(). family: AF_UNSPEC, AF_INET, AF_INET6.
 * cb runs on the loop. Returns 0 or -ENOMEM. */
GUST_EXTERN int gust_resolve(gust_loop *loop, const char *host, int port,
                             int family, gust_resolve_cb cb, void *data);

/* status 0: stream is connected and now belongs to the callback. Else stream
 * is NULL and status says why (-ECONNREFUSED from the last address tried,
 * -ENOENT for an unknown host or a name with no address...). */
typedef void (*gust_tcp_connect_cb)(gust_loop *loop, int status,
                                    gust_stream *stream, void *data);

/* Resolves host and connects to port, trying each address in turn until one
 * answers (Tornado's TCPClient.connect). opts may be NULL.
 * Returns 0 or -ENOMEM. */
GUST_EXTERN int gust_tcp_connect(gust_loop *loop, const char *host, int port,
                                 const gust_stream_options *opts,
                                 gust_tcp_connect_cb cb, void *data);

/* gust_tcp_connect() (resolve host, then connect to port, trying
 * each address) as a future whose result's ptr is the connected
 * gust_stream *. Whoever takes the result owns the stream (close it with
 * gust_stream_close()); a result never taken is closed when the future is
 * freed, and a connection that completes after the future was cancelled is
 * closed at once. Fails with what gust_tcp_connect() reports (-ENOENT for
 * an unknown host, -ECONNREFUSED, ...). opts may be NULL. */
GUST_EXTERN GUST_MUST_USE gust_future *gust_tcp_connect_f(
    gust_loop *loop, const char *host, int port,
    const gust_stream_options *opts);

#ifdef __cplusplus
}
#endif

#endif /* GUST_NET_H */
