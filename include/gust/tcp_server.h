/* A non-blocking TCP server (Tornado's TCPServer).
 *
 * The three ways to start one, each exactly as in shared/DESIGN.md:
 *
 *   1. single process
 *        gust_tcp_server *srv = gust_tcp_server_new(handle_stream, NULL, data);
 *        gust_tcp_server_listen(srv, 8888, NULL);
 *        gust_loop_start(gust_loop_current());
 *
 *   2. simple multi-process: bind, then fork
 *        gust_tcp_server_bind(srv, 8888, NULL);
 *        gust_tcp_server_start(srv, 0);      // forks; returns in each child
 *        gust_loop_start(gust_loop_current());
 *
 *   3. advanced multi-process
 *        gust_socket_list *socks = gust_bind_sockets(8888, NULL, NULL);
 *        gust_fork_processes(0, 0);
 *        gust_tcp_server *srv = gust_tcp_server_new(handle_stream, NULL, data);
 *        gust_tcp_server_add_sockets(srv, socks);
 *        gust_loop_start(gust_loop_current());
 *
 * The server uses the calling thread's current loop, taken when it starts
 * accepting (listen, start or add_sockets), so that form 2 forks before any
 * loop exists.
 */
#ifndef GUST_TCP_SERVER_H
#define GUST_TCP_SERVER_H

#include "gust/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "gust/loop.h"
#include "gust/net.h"
#include "gust/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gust_tcp_server gust_tcp_server;

/* Called for each accepted connection (Tornado's handle_stream). stream
 * belongs to the callback from then on (close it when done); address is the
 * peer's, valid during the call. */
typedef void (*gust_handle_stream_cb)(gust_tcp_server *server,
                                      gust_stream *stream,
                                      const struct sockaddr *address,
                                      socklen_t address_len, void *data);

typedef struct gust_tcp_server_options {
    /* Options for each accepted stream (max_buffer_size, ...). */
    gust_stream_options stream;
    /* Bind options used by listen() and bind(). */
    gust_bind_options bind;
    /* At most this many connections open at once: at the cap the server
     * stops accepting, and resumes when one closes. 0: no cap. */
    size_t max_connections;
    /* A server context from gust_tls_context_new_server() (tls.h): each
     * accepted stream runs the TLS handshake first and reaches
     * handle_stream once it succeeded (failures are logged at debug level
     * and closed). The server holds a reference. NULL: plain TCP. */
    struct gust_tls_context *tls;
} gust_tcp_server_options;

/* Creates a server. handle_stream may be NULL, as Tornado's base class has no
 * handle_stream: each connection is then logged as "handle_stream not
 * implemented" and closed. opts may be NULL (it is copied). data is passed to
 * handle_stream. Returns NULL with errno set on failure. */
GUST_EXTERN gust_tcp_server *gust_tcp_server_new(
    gust_handle_stream_cb handle_stream, const gust_tcp_server_options *opts,
    void *data);

/* bind(port, address) then start(1): listens in this process on the current
 * loop. address NULL: all interfaces. Returns 0 or a negative code. */
GUST_EXTERN int gust_tcp_server_listen(gust_tcp_server *server, int port,
                                       const char *address);

/* Binds listening sockets without accepting yet (call start() next). May be
 * called several times (e.g. for IPv4 and a unix socket). Returns 0 or a
 * negative code. */
GUST_EXTERN int gust_tcp_server_bind(gust_tcp_server *server, int port,
                                     const char *address);

/* Starts accepting on the bound sockets. num_processes 1: in this process.
 * Otherwise forks first with gust_fork_processes(num_processes, max_restarts
 * default) (<= 0: one per CPU) and returns in each child, which starts
 * accepting on its current loop; the parent does not return (see process.h).
 * Returns 0 or a negative code: -EINVAL if nothing is bound, the error of
 * gust_fork_processes() (e.g. GUST_ELOOPINUSE), or that of registering
 * the sockets with the loop. A second start() starts only sockets bound
 * since the first. */
GUST_EXTERN int gust_tcp_server_start(gust_tcp_server *server,
                                      int num_processes);

/* Starts accepting on sockets that were bound already (gust_bind_sockets).
 * Takes ownership of the list and its sockets, even when it fails (they are
 * then closed or kept by the server and closed with it). Returns 0 or a
 * negative code. */
GUST_EXTERN int gust_tcp_server_add_sockets(gust_tcp_server *server,
                                            gust_socket_list *sockets);

/* Stops accepting and closes the listening sockets. Open connections are not
 * touched. Returns 0. */
GUST_EXTERN int gust_tcp_server_stop(gust_tcp_server *server);

/* The port of the first bound TCP socket (useful after binding port 0), or
 * GUST_ENOTSTARTED if none is bound (or after stop()). */
GUST_EXTERN int gust_tcp_server_port(const gust_tcp_server *server);

/* Number of connections accepted by this server and not yet closed. */
GUST_EXTERN size_t
gust_tcp_server_connection_count(const gust_tcp_server *server);

/* Stops the server and frees it. Connections already handed to
 * handle_stream are the callbacks' to close. NULL is a no-op. */
GUST_EXTERN void gust_tcp_server_free(gust_tcp_server *server);

#ifdef __cplusplus
}
#endif

#endif /* GUST_TCP_SERVER_H */
