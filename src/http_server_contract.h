/* The web-to-server contract: everything the web layer (web_app.c,
 * web_handler.c, web_output.c, web_access_log.c) uses of the layers below beyond their
 * public headers. The web files include this header and no other private
 * header of a lower layer. Not installed.
 *
 * The server half is what a protocol connection owes the layer above for
 * each request it hands up (gust_http_request, http_server.h), besides the
 * public gust_http_response_* calls. HTTP/1 implements it in http_server.c
 * (with http1_read.c, both through http_server_internal.h, which
 * includes this header); an HTTP/2 connection implements the same calls
 * for its streams, and http_server.c then dispatches on req->connection.
 * Each call is a fast path for a response the web layer built itself, so
 * none of them checks what the public calls check; they are only valid on
 * a request not finished yet.
 *
 * The contract, one line per member (as h2o's h2o_generator_t):
 *   view         where the response's status and headers can be read
 *   put_header   set a response header the caller built (no checks/copy)
 *   put_line     add a whole prebuilt field line after the headers
 *   finish_with  finish the response with a borrowed last body chunk
 *   method_name  the constant name of a known method
 */
#ifndef GUST_HTTP_SERVER_CONTRACT_H
#define GUST_HTTP_SERVER_CONTRACT_H

#include <stddef.h>

#include "gust/http.h"
#include "gust/http_server.h"

/* view: where the status (gust_http_response_status()) and the headers
 * (gust_http_response_headers()) of req's response live, so that the
 * layer above, which reads both several times per request, takes them
 * with one call per request instead of one per read. Valid until the
 * request is finished or aborted. */
typedef struct gust__http_response_view {
    const int *status;
    const gust_http_headers *headers;
} gust__http_response_view;
gust__http_response_view gust__http_response_view_of(gust_http_request *req);

/* put_header: gust_http_response_set_header for headers the caller built
 * itself. flags as gust_http_headers_set, so a known-good constant can
 * skip the checks (GUST_HEADER_TRUSTED) and the copy (no GUST_HEADER_COPY:
 * name and value must then outlive the request). With GUST__PUT_APPEND the
 * caller knows the name is not there yet: the field is appended without a
 * search. Returns 0, -EINVAL once the head is sent (or in raw mode), or
 * -ENOMEM. */
#define GUST__PUT_APPEND (1u << 8)
int gust__http_response_put_header(gust_http_request *req, gust_str name,
                                   gust_str value, unsigned flags);

/* put_line: a whole field line ("Name: value\r\n") written after the
 * response's headers without a check or a copy (the web layer's automatic
 * ETag). It is not in gust_http_response_headers(). line must live until
 * the head is sent; a second call replaces the first. Returns 0, or
 * -EINVAL once the head is sent (or in raw mode). */
int gust__http_response_put_line(gust_http_request *req, const char *line,
                                 size_t len);

/* finish_with: gust_http_request_finish() with len last body bytes at
 * body, borrowed for the call: the web layer's buffered body goes out
 * without first being copied into the response's buffer. Returns what
 * gust_http_request_finish() returns. */
int gust__http_request_finish_with(gust_http_request *req, const char *body,
                                   size_t len);

/* method_name: the name of a known method ("GET" for GUST_HTTP_GET), NULL
 * for GUST_HTTP_OTHER. A constant string. */
const char *gust__http_method_name(gust_http_method m);

/* ---- Fast paths of the layers below (their own private headers) ---------
 * The arena's inlined allocation (per-request output buffers), the HTTP
 * utilities' inlined header lookups (GUST__HEADERS_FIND, GUST__NAME_IS), and
 * the TLS context's reference count (an application keeps its server's TLS
 * options). */
#include "arena_internal.h"
#include "http_internal.h"
#include "tls_internal.h"

#endif /* GUST_HTTP_SERVER_CONTRACT_H */
