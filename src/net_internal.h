/* Internal to the socket layer (net.c, net_inherit.c, net_connect.c) and
 * its users above: the listening sockets handed from one program image to
 * the next across a zero-downtime reload (process.c execs the binary again
 * on SIGHUP; net.c binds through these), and the cancellable connect
 * request the HTTP client uses (http_client_conn.c, through
 * http_client_internal.h). Not installed. */
#ifndef GUST_NET_INTERNAL_H
#define GUST_NET_INTERNAL_H

#include <stddef.h>
#include <stdbool.h>
#include <sys/socket.h>

#include "gust/net.h"

/* The environment variable that lists inherited listening fds ("3,4"). */
#define GUST__LISTEN_FDS_ENV "GUST_LISTEN_FDS"

/* If an inherited listening socket is bound to exactly addr (family,
 * address, port; or unix path), takes it out of the inherited list and
 * returns it, non-blocking and close-on-exec again. Else -1. */
int gust__net_take_inherited(const struct sockaddr *addr, socklen_t len);

/* systemd socket activation: when LISTEN_PID is this process, takes the
 * sockets of LISTEN_FDS listening on port (any address; systemd chose
 * it), at most max of them, into out, non-blocking and close-on-exec.
 * Returns how many (0: none, bind as usual). */
int gust__net_take_activated(int port, int *out, int max);

/* Closes the inherited sockets nobody took (the new image no longer binds
 * those addresses) and forgets the list. Returns how many were closed. */
int gust__net_close_inherited(void);

/* Before exec: finds this process's listening sockets, clears their
 * close-on-exec flag and sets GUST_LISTEN_FDS to them. Returns their
 * count, or a negated errno. gust__net_unexport_listeners() undoes it
 * when the exec failed. */
int gust__net_export_listeners(void);
void gust__net_unexport_listeners(void);

/* ---- Connecting (net_connect.c) ------------------------------------------
 *
 * One request resolves host (a numeric host without the executor) and tries
 * each address in turn until one connects: gust_tcp_connect() is built on
 * it, and the HTTP client uses it for the handle gust_tcp_connect() does
 * not give, to cancel a connect that timed out. */
typedef struct gust__connect gust__connect;

/* Runs once, never inside gust__connect_start(), unless the request was
 * cancelled first. status 0: stream is connected and now belongs to the
 * callback. Else stream is NULL and status is the resolver's error
 * (resolving true; -ENOENT for an unknown host or an empty answer) or the
 * last address's (-ECONNREFUSED, ...). The request is freed when the
 * callback returns. */
typedef void (*gust__connect_cb)(gust__connect *req, int status,
                                 bool resolving, gust_stream *stream,
                                 void *data);

/* Starts connecting to host:port, with opts (may be NULL) for each
 * stream. *out (may be NULL) gets the request, for gust__connect_cancel().
 * Returns 0, -EINVAL or -ENOMEM (cb is then never called). */
int gust__connect_start(gust_loop *loop, const char *host, int port,
                        const gust_stream_options *opts, gust__connect_cb cb,
                        void *data, gust__connect **out);

/* Stops the request: cb is not called, a stream being connected is closed,
 * an answer still to come from the resolver is dropped. A no-op once cb
 * has been called (or is running) or on NULL. */
void gust__connect_cancel(gust__connect *req);

/* The loop the request runs on. */
gust_loop *gust__connect_loop(const gust__connect *req);

#endif /* GUST_NET_INTERNAL_H */
