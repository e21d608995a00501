/* Gust error codes.
 *
 * Every Gust function that can fail returns an int: 0 on success, a negative
 * code on failure. Codes are either a negated errno value (-EINVAL,
 * -ECONNRESET, ...) or one of Gust's own codes below, which live in a band
 * (-4000 .. -4999) that no errno value reaches. gust_strerror() names any of
 * them; gust_err_name() gives the symbolic name ("EINVAL", "GUST_ESTREAMCLOSED").
 *
 * Two rules hold for every call that takes a callback, as in libuv:
 *   - a call that fails (returns < 0) never calls its callback;
 *   - a call that succeeds calls it exactly once, later, with an error code
 *     (GUST_ECANCELED when the object was closed first) if it could not
 *     complete.
 */
#ifndef GUST_ERROR_H
#define GUST_ERROR_H

#include "gust/common.h"

#include <errno.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Gust's own codes: X(name, value, message). One table generates the enum,
 * gust_strerror() and gust_err_name(). */
#define GUST_ERROR_TABLE(X)                                                    \
    X(GUST_ESTREAMCLOSED, -4001, "stream is closed")                           \
    X(GUST_EBUFFERFULL, -4002, "stream buffer would exceed its maximum size")  \
    X(GUST_EREADPENDING, -4003, "a read is already pending on this stream")    \
    X(GUST_EUNSATISFIABLE, -4004,                                              \
      "delimiter not found within the allowed number of bytes")                \
    X(GUST_ECANCELED, -4005, "operation canceled: its object was closed")      \
    X(GUST_ELOOPINUSE, -4006,                                                  \
      "cannot fork: the current loop has already been started or has "        \
      "registered file descriptors, and the children would share it")          \
    X(GUST_ETOOMANYRESTARTS, -4007, "too many child restarts, giving up")      \
    X(GUST_EFORKED, -4008,                                                     \
      "loop used in a process other than the one that created its backend")    \
    X(GUST_ENOTSTARTED, -4009, "object has not been started")                  \
    X(GUST_ETIMEOUT, -4010, "operation timed out")                             \
    X(GUST_ETLS, -4011, "TLS handshake or record error")                       \
    X(GUST_ETLSVERIFY, -4012,                                                  \
      "TLS peer certificate or host name verification failed")                 \
    X(GUST_EDNS, -4013, "host name could not be resolved")                     \
    X(GUST_EHTTP, -4014, "HTTP response with an error status (>= 400)")        \
    X(GUST_EPROTO, -4015, "peer broke the protocol (malformed response)")      \
    X(GUST_ETOOMANYREDIRECTS, -4016, "too many redirects")                     \
    X(GUST_ETIMEOUT_QUEUE, -4017, "timed out waiting for a free client slot")  \
    X(GUST_ETIMEOUT_CONNECT, -4018, "timed out connecting")

enum gust_error {
#define GUST__ERROR_ENUM(name, value, msg) name = (value),
    GUST_ERROR_TABLE(GUST__ERROR_ENUM)
#undef GUST__ERROR_ENUM
};

/* A human-readable message for a Gust code or a negated errno value.
 * Returns a static string; never NULL (unknown codes give "unknown error"). */
GUST_EXTERN const char *gust_strerror(int code);

/* The symbolic name of a code: "GUST_ESTREAMCLOSED", "ECONNRESET", ...
 * Returns a static string; never NULL ("UNKNOWN" for unknown codes). */
GUST_EXTERN const char *gust_err_name(int code);

#ifdef __cplusplus
}
#endif

#endif /* GUST_ERROR_H */
