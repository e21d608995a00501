/* Listening sockets handed from one program image to the next across a
 * zero-downtime reload (process.c execs the binary again on SIGHUP; net.c
 * binds through these). Internal, not installed. */
#ifndef GUST_NET_INTERNAL_H
#define GUST_NET_INTERNAL_H

#include <stddef.h>
#include <sys/socket.h>

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

#endif /* GUST_NET_INTERNAL_H */
