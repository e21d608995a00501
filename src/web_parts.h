/* The contract between the web core (web_app.c, web_router.c,
 * web_handler.c, web_output.c, web_arguments.c, web_cookie.c, which see it
 * through web_internal.h) and the parts it uses, which include it alone:
 * gzip (web_gzip.c), XSRF tokens (web_xsrf.c), MIME types (web_mime.c),
 * static files and ranges (web_static.c). web_signed.c needs only web.h.
 * Internal, not installed. */
#ifndef GUST_WEB_PARTS_H
#define GUST_WEB_PARTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "gust/arena.h"
#include "gust/http.h"
#include "gust/web.h"

/* ---- gzip (web_gzip.c) --------------------------------------------------- */

/* Whether a response of this Content-Type is worth compressing (any text/ type,
 * JSON, JavaScript, XML, SVG...; parameters ignored). */
bool gust__gzip_type_compressible(gust_str content_type);

/* Whether the request's Accept-Encoding allows gzip (a q of 0 refuses). */
bool gust__gzip_accepted(const gust_http_headers *request_headers);

/* A streaming gzip encoder (RFC 1952, zlib's deflate at level 6). emit
 * receives output bytes (borrowed, valid during the call) and returns 0 or
 * a negative code that aborts the call. */
typedef struct gust__gzip gust__gzip;
typedef int (*gust__gzip_emit)(const void *out, size_t len, void *data);

gust__gzip *gust__gzip_new(void);
/* Compresses len bytes; flush true makes everything so far decodable by
 * the client (Z_SYNC_FLUSH, for gust_handler_flush), last true ends the
 * stream (trailer). Returns 0, -ENOMEM, or emit's code. */
int gust__gzip_write(gust__gzip *z, const void *in, size_t len, bool flush,
                     bool last, gust__gzip_emit emit, void *data);
void gust__gzip_free(gust__gzip *z);

/* ---- XSRF tokens (web_xsrf.c), Tornado's formats ------------------------- */

#define GUST__XSRF_TOKEN_BYTES 16

/* Encodes token (random bytes) with a fresh random mask in Tornado's
 * version 2 form "2|<mask hex>|<masked token hex>|<timestamp>", in arena. */
char *gust__xsrf_encode(gust_arena *arena,
                        const unsigned char token[GUST__XSRF_TOKEN_BYTES],
                        time_t timestamp);
/* Decodes a version 2 token or a version 1 (plain hex) one into token and
 * its timestamp (0 for version 1). Returns 0 or -EINVAL. */
int gust__xsrf_decode(gust_str s, unsigned char token[GUST__XSRF_TOKEN_BYTES],
                      time_t *timestamp);
/* Fresh random token bytes (OpenSSL RAND_bytes). Returns 0 or -EIO. */
int gust__xsrf_random(unsigned char token[GUST__XSRF_TOKEN_BYTES]);
/* Constant-time comparison of two decoded tokens. */
bool gust__xsrf_equal(const unsigned char a[GUST__XSRF_TOKEN_BYTES],
                      const unsigned char b[GUST__XSRF_TOKEN_BYTES]);

/* ---- Content types (web_mime.c) ----------------------------------------- */

/* The Content-Type for a file name, by extension (case-insensitive):
 * "text/html; charset=UTF-8", "image/png"... "application/octet-stream"
 * when unknown. A static string. */
const char *gust__mime_type(const char *path);

/* ---- Static file versions (web_static.c) -------------------------------- */

/* A per-application cache of static file hashes for static_url. */
typedef struct gust__static_cache gust__static_cache;
gust__static_cache *gust__static_cache_new(const char *root);
void gust__static_cache_free(gust__static_cache *c);
/* The first 8 hex digits of the SHA-256 of root/path (cached; recomputed
 * when size or mtime changed), or NULL when the file does not exist or is
 * outside root. Valid until the next call for that path. */
const char *gust__static_cache_version(gust__static_cache *c,
                                       const char *path);

/* What a Range request header asks of a representation of size bytes
 * (RFC 9110 section 14.2), for gust_static_file_handler. */
typedef enum gust__range_result {
    /* Serve the whole representation (200): no Range header, a unit other
     * than bytes, invalid syntax, several ranges, or one range covering
     * everything (a 206 for "bytes=0-" upsets some media players). */
    GUST__RANGE_FULL,
    /* One range: bytes [*start, *start + *len) (206). */
    GUST__RANGE_PARTIAL,
    /* Nothing of the representation is in the range (416 with
     * "Content-Range: bytes * /size"): first byte at or past the end, a
     * zero-length suffix, or an empty representation. */
    GUST__RANGE_UNSATISFIABLE,
} gust__range_result;

/* Parses a Range header value (absent: GUST__RANGE_FULL) for a
 * representation of size bytes: "bytes=a-b", "bytes=a-", "bytes=-n",
 * unit case-insensitive, whitespace around the parts allowed. An end past
 * the representation is cut to it; b < a is invalid syntax. Sets *start and
 * *len only for GUST__RANGE_PARTIAL. Pure: no allocation, any input. */
gust__range_result gust__static_parse_range(gust_str header, uint64_t size,
                                            uint64_t *start, uint64_t *len);

/* ---- From the web core, for the parts ----------------------------------- */

/* Sends len bytes of fd from offset as the response body, with no
 * compression, after the headers set so far (the caller sets
 * Content-Length). The fd is borrowed as gust_http_response_sendfile()
 * says. Returns 0 or a negative code. */
int gust__handler_sendfile(gust_handler *h, int fd, off_t offset,
                           size_t len);

/* Turns compression off for this response (e.g. for a 206). */
void gust__handler_no_compression(gust_handler *h);

/* The app's static cache (NULL without static_path). */
gust__static_cache *gust__app_static_cache(gust_app *app);

#endif /* GUST_WEB_PARTS_H */
