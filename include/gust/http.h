/* HTTP utilities (Tornado's httputil): pure functions over bytes.
 *
 * Everything here works on slices (gust_str) and allocates, when it must,
 * from a caller's gust_arena: nothing calls malloc directly and nothing
 * needs a free. A server can therefore parse a request with zero copies:
 * header values, query arguments without escapes, multipart bodies and
 * cookie values all point into the read buffer.
 *
 * LIFETIMES. A result slice points either into the caller's input (it is
 * valid as long as that input is) or into the arena (valid until the arena
 * is reset or closed). Each function says which. Slices are not
 * NUL-terminated unless a function says so.
 *
 * ERRORS. Functions that can fail return 0 or a negative errno code:
 * -EINVAL for malformed input (a server answers 400), -ENOMEM when the arena
 * could not allocate. Outputs are unspecified after an error (partially
 * filled collections stay consistent and may be used or discarded).
 *
 * docs/http_utilities.md lists what each parser accepts and rejects, with
 * the RFC sections.
 */
#ifndef GUST_HTTP_H
#define GUST_HTTP_H

#include "gust/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "gust/arena.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------
 * Slices
 * ------------------------------------------------------------------- */

/* A borrowed run of bytes. ptr == NULL means "absent" wherever a function
 * can return a missing value; an empty but present value has a non-NULL ptr
 * and len 0. */
typedef struct gust_str {
    const char *ptr;
    size_t len;
} gust_str;

/* A slice of a string literal: GUST_STR("Content-Type"). */
#define GUST_STR(lit) ((gust_str){"" lit, sizeof(lit) - 1})
/* The absent value. */
#define GUST_STR_NULL ((gust_str){NULL, 0})

/* A slice of n bytes at p. */
static inline gust_str gust_str_make(const char *p, size_t n)
{
    gust_str s = {p, n};
    return s;
}

/* A slice of a NUL-terminated string (absent when s is NULL). */
static inline gust_str gust_str_cstr(const char *s)
{
    gust_str r = {s, s ? strlen(s) : 0};
    return r;
}

/* True when a and b hold the same bytes. */
GUST_EXTERN bool gust_str_eq(gust_str a, gust_str b);

/* True when a and b are equal ignoring ASCII case (bytes >= 0x80 compare
 * exactly; no locale is involved). */
GUST_EXTERN bool gust_str_eq_nocase(gust_str a, gust_str b);

/* Copies the len bytes of s (NUL bytes included) into the arena and adds
 * a terminating NUL. Returns the copy (an empty string for an absent s),
 * or NULL on OOM. */
GUST_EXTERN char *gust_str_dup(gust_arena *arena, gust_str s);

/* ---------------------------------------------------------------------
 * Tokens, field names and values (RFC 9110 sections 5.1, 5.5, 5.6.2)
 * ------------------------------------------------------------------- */

/* True when s is a non-empty token (tchar: ALPHA DIGIT !#$%&'*+-.^_`|~):
 * a valid field name, method, cookie name or parameter name. */
GUST_EXTERN bool gust_http_token_valid(gust_str s);

/* True when s is a syntactically valid method (a token, RFC 9110 section
 * 9.1). Methods are case-sensitive; this does not check that it is known. */
GUST_EXTERN bool gust_http_method_valid(gust_str s);

/* True when s may be sent as a field value: every byte is VCHAR, SP, HTAB or
 * obs-text (0x80-0xFF). CR, LF, NUL and the other control characters are
 * refused, so a value that passes cannot inject a header or split a
 * response. Leading and trailing whitespace is allowed (it is trimmed by
 * recipients). */
GUST_EXTERN bool gust_http_header_value_valid(gust_str s);

/* ---------------------------------------------------------------------
 * Headers (Tornado's HTTPHeaders)
 *
 * An ordered list of field lines. Names keep the case they were given and
 * are compared ASCII case-insensitively; a name may appear several times
 * and every occurrence is kept in order. Lookups are linear scans, which is
 * fastest for the dozen or two fields of a real request.
 * ------------------------------------------------------------------- */

/* One field line. */
typedef struct gust_http_header {
    gust_str name;
    gust_str value;
} gust_http_header;

/* The collection. Embed it; treat the fields as read-only (iterate with
 * items[0..count) to see every field line in order). */
typedef struct gust_http_headers {
    gust_arena *arena;       /* where items and copies are allocated */
    gust_http_header *items; /* in order of addition */
    size_t count;            /* field lines in items */
    size_t cap;              /* slots allocated */
} gust_http_headers;

/* Flags for gust_http_headers_add() and _set(). */
enum gust_http_header_flags {
    /* Borrow name and value: they must outlive the headers (e.g. point
     * into the request's read buffer). The default. */
    GUST_HTTP_HEADER_BORROW = 0,
    /* Copy name and value into the arena: the caller's bytes may change. */
    GUST_HTTP_HEADER_COPY = 1u << 0,
    /* Skip validation: name and value were already checked (by the HTTP/1
     * parser). Never use it for values coming from an application. */
    GUST_HTTP_HEADER_TRUSTED = 1u << 1,
};
/* The names before enum constants carried their type's prefix; kept so
 * that older code still compiles. */
#define GUST_HEADER_BORROW GUST_HTTP_HEADER_BORROW
#define GUST_HEADER_COPY GUST_HTTP_HEADER_COPY
#define GUST_HEADER_TRUSTED GUST_HTTP_HEADER_TRUSTED

/* Prepares empty headers allocating from arena. Allocates nothing; the
 * first addition allocates room for 16 field lines. After the arena is
 * reset the headers must be initialised again. */
GUST_EXTERN void gust_http_headers_init(gust_http_headers *h,
                                        gust_arena *arena);

/* Makes room for n field lines in total. Returns 0 or -ENOMEM. */
GUST_EXTERN int gust_http_headers_reserve(gust_http_headers *h, size_t n);

/* Appends the field line name: value. Unless GUST_HTTP_HEADER_TRUSTED is given,
 * name must be a token and value must pass gust_http_header_value_valid().
 * Returns 0, -EINVAL (invalid name or value: nothing is added, so a CR LF in
 * an application's value can never inject a header), or -ENOMEM. */
GUST_EXTERN int gust_http_headers_add(gust_http_headers *h, gust_str name,
                                      gust_str value, unsigned flags);

/* Replaces every field line named name by one name: value, kept at the
 * position of the first one (appended when there was none). Same checks,
 * flags and returns as gust_http_headers_add(); on error nothing changes. */
GUST_EXTERN int gust_http_headers_set(gust_http_headers *h, gust_str name,
                                      gust_str value, unsigned flags);

/* Removes every field line named name, keeping the others in order.
 * Returns how many were removed. */
GUST_EXTERN size_t gust_http_headers_remove(gust_http_headers *h,
                                            gust_str name);

/* Removes every field line (keeps the allocated slots). */
GUST_EXTERN void gust_http_headers_clear(gust_http_headers *h);

/* The value of the first field line named name, or an absent slice
 * (ptr NULL) when there is none. The slice is the stored one (borrowed or
 * in the arena). */
GUST_EXTERN gust_str gust_http_headers_get_first(const gust_http_headers *h,
                                                 gust_str name);

/* True when at least one field line is named name. */
GUST_EXTERN bool gust_http_headers_has(const gust_http_headers *h,
                                       gust_str name);

/* Number of field lines named name. */
GUST_EXTERN size_t gust_http_headers_count_name(const gust_http_headers *h,
                                                gust_str name);

/* The values of every field line named name joined by ", " (RFC 9110
 * section 5.3), as Tornado's HTTPHeaders.get does. With one occurrence the
 * stored value is returned with no copy; with several the result is
 * allocated in the arena. Not meaningful for Set-Cookie. Returns 0,
 * -ENOENT (no such field: *out is absent) or -ENOMEM. */
GUST_EXTERN int gust_http_headers_get_joined(const gust_http_headers *h,
                                             gust_str name, gust_str *out);

/* Iterates over the values of the field lines named name, in order
 * (Tornado's get_list):
 *     size_t i = 0; gust_str v;
 *     while (gust_http_headers_next(h, GUST_STR("Accept"), &i, &v)) ...
 * *cursor must start at 0. Returns true with *value set, or false at the
 * end. Do not add, set or remove field lines during an iteration. */
GUST_EXTERN bool gust_http_headers_next(const gust_http_headers *h,
                                        gust_str name, size_t *cursor,
                                        gust_str *value);

/* Bytes gust_http_headers_serialize() writes: sum of name ": " value CRLF. */
GUST_EXTERN size_t gust_http_headers_wire_size(const gust_http_headers *h);

/* Writes every field line as "name: value\r\n" to dst, which must have room
 * for gust_http_headers_wire_size(h) bytes. Returns the end of what was
 * written (no NUL). */
GUST_EXTERN char *gust_http_headers_serialize(const gust_http_headers *h,
                                              char *dst);

/* ---------------------------------------------------------------------
 * Request targets and URLs (RFC 9112 section 3.2, RFC 3986)
 * ------------------------------------------------------------------- */

/* The four forms of request-target. */
typedef enum gust_http_target_form {
    GUST_HTTP_TARGET_ORIGIN,    /* "/path?query" */
    GUST_HTTP_TARGET_ABSOLUTE,  /* "http://host:port/path?query" (proxies) */
    GUST_HTTP_TARGET_AUTHORITY, /* "host:port" (CONNECT) */
    GUST_HTTP_TARGET_ASTERISK   /* "*" (server-wide OPTIONS) */
} gust_http_target_form;
/* Older names, kept as aliases. */
#define GUST_TARGET_ORIGIN GUST_HTTP_TARGET_ORIGIN
#define GUST_TARGET_ABSOLUTE GUST_HTTP_TARGET_ABSOLUTE
#define GUST_TARGET_AUTHORITY GUST_HTTP_TARGET_AUTHORITY
#define GUST_TARGET_ASTERISK GUST_HTTP_TARGET_ASTERISK

/* A split request-target. Every slice points into the target given. */
typedef struct gust_http_target {
    gust_http_target_form form;
    gust_str scheme;    /* absolute-form only, else absent */
    gust_str authority; /* absolute- and authority-form ("host:port"), else absent */
    gust_str path;      /* origin: "/..."; absolute: "/..." or "/" (a static
                           string when the URL has no path); asterisk: "*";
                           authority: absent */
    gust_str query;     /* after '?', without it; absent when there is no '?' */
} gust_http_target;

/* Splits a request-target into its parts (no decoding). Accepts bytes 0x21-
 * 0x7E and 0x80-0xFF; refuses an empty target, space, control characters,
 * '#' and anything that matches none of the four forms (-EINVAL). An
 * absolute-form target must parse with gust_url_parse() (its fragment is
 * refused). Which form fits which method is the server's business (CONNECT
 * takes only the authority form, OPTIONS alone may use "*"). */
GUST_EXTERN int gust_http_target_split(gust_str target, gust_http_target *out);

/* Flags for gust_url_unescape() and gust_url_escape(). */
enum gust_url_flags {
    /* unescape: '+' decodes to a space (forms, query strings);
     * escape: a space encodes as '+' (Python's quote_plus). */
    GUST_URL_PLUS = 1u << 0,
    /* unescape: an invalid escape ('%' not followed by two hex digits) is an
     * error (-EINVAL) instead of being kept literally. */
    GUST_URL_STRICT = 1u << 1,
    /* unescape: a result holding a NUL byte (from %00 or a literal NUL) is
     * an error (-EINVAL). Use it for paths that will become file names or
     * C strings. */
    GUST_URL_NO_NUL = 1u << 2,
    /* escape: keep '/' unescaped (Python's quote with safe="/"). */
    GUST_URL_KEEP_SLASH = 1u << 3,
};

/* Percent-decodes in (RFC 3986 section 2.1). When in has nothing to decode
 * (no '%', and no '+' under GUST_URL_PLUS), *out is in itself: no copy, no
 * allocation. Otherwise *out is a new NUL-terminated string in the arena.
 * Invalid escapes are kept as they are (as Tornado and Python do) unless
 * GUST_URL_STRICT. Decoded bytes are not checked for UTF-8. Returns 0,
 * -EINVAL (GUST_URL_STRICT or GUST_URL_NO_NUL refused the input) or -ENOMEM. */
GUST_EXTERN int gust_url_unescape(gust_arena *arena, gust_str in,
                                  unsigned flags, gust_str *out);

/* Percent-decodes buf[0..len) in place (same rules and flags as
 * gust_url_unescape) and returns the new length, or -EINVAL. The output is
 * never longer than the input. */
GUST_EXTERN long gust_url_unescape_inplace(char *buf, size_t len,
                                           unsigned flags);

/* Percent-encodes in: unreserved characters (ALPHA DIGIT - . _ ~) are kept,
 * '/' too with GUST_URL_KEEP_SLASH, a space becomes '+' with GUST_URL_PLUS,
 * everything else becomes %XX (upper-case hex). When nothing needs encoding
 * *out is in itself; otherwise a NUL-terminated copy in the arena. Returns 0
 * or -ENOMEM. */
GUST_EXTERN int gust_url_escape(gust_arena *arena, gust_str in, unsigned flags,
                                gust_str *out);

/* An absolute URL split into its components. Every slice points into the
 * parsed string; nothing is decoded. */
typedef struct gust_url {
    gust_str scheme;    /* as written; compare with gust_str_eq_nocase */
    gust_str userinfo;  /* before '@', absent when there is no '@' */
    gust_str host;      /* reg-name or IPv4 as written; for "[v6]" the
                           address without brackets */
    gust_str path;      /* "/..." or empty (not absent) when the URL has none */
    gust_str query;     /* after '?', absent when there is no '?' */
    gust_str fragment;  /* after '#', absent when there is no '#' */
    uint16_t port;      /* explicit port, or the scheme's default (80 for
                           http and ws, 443 for https and wss, 0 otherwise) */
    bool port_explicit; /* a port number was written */
    bool host_ipv6;     /* host was a bracketed IPv6 literal */
} gust_url;

/* Parses an absolute URL "scheme://[userinfo@]host[:port][/path][?query]
 * [#fragment]" (RFC 3986 sections 3 and 4.3). Refuses (-EINVAL): a missing
 * or invalid scheme, a missing "//" authority, an empty host, a host with
 * characters outside RFC 3986's reg-name set, an invalid IPv6 literal (or
 * IPvFuture, or a zone identifier), a port that is not 1*5DIGIT in 1-65535
 * (an empty port after ':' means the default), characters not allowed in a
 * URI (space, controls, bytes >= 0x80, '"', '<', '>', '\\', '^', '`', '{',
 * '|', '}') and '%' not followed by two hex digits. */
GUST_EXTERN int gust_url_parse(gust_str in, gust_url *out);

/* Splits "host[:port]" or "[v6][:port]" (a Host header value, RFC 9110
 * section 7.2). *host gets the host, a slice of in (without brackets for
 * IPv6), *port the port, or -1 when none is given (an empty port after ':'
 * counts as none). Returns 0 or -EINVAL: empty host (a server decides
 * itself whether an empty Host is acceptable), a reg-name with characters
 * outside RFC 3986's set, an invalid IPv6 literal, a second ':', a port that
 * is not 1-5 digits in 0-65535. */
GUST_EXTERN int gust_http_split_host_port(gust_str in, gust_str *host,
                                          int *port);

/* ---------------------------------------------------------------------
 * Arguments (Tornado's request.arguments): an ordered multimap
 * ------------------------------------------------------------------- */

/* One name=value pair. */
typedef struct gust_http_arg {
    gust_str name;
    gust_str value;
} gust_http_arg;

/* Pairs in order of arrival; names are compared exactly (case-sensitive).
 * Embed it; read items[0..count) to iterate over every pair in order. */
typedef struct gust_http_args {
    gust_arena *arena;
    gust_http_arg *items;
    size_t count;
    size_t cap;
} gust_http_args;

/* Prepares an empty multimap allocating from arena (nothing allocated yet). */
GUST_EXTERN void gust_http_args_init(gust_http_args *args, gust_arena *arena);

/* Appends name=value, both borrowed (they must outlive args). Returns 0 or
 * -ENOMEM. */
GUST_EXTERN int gust_http_args_add(gust_http_args *args, gust_str name,
                                   gust_str value);

/* The first value for name, or an absent slice (ptr NULL). */
GUST_EXTERN gust_str gust_http_args_get_first(const gust_http_args *args,
                                              gust_str name);

/* The last value for name (Tornado's get_argument), or an absent slice. */
GUST_EXTERN gust_str gust_http_args_get_last(const gust_http_args *args,
                                             gust_str name);

/* Number of values for name. */
GUST_EXTERN size_t gust_http_args_count_name(const gust_http_args *args,
                                             gust_str name);

/* Iterates over the values for name in order, like gust_http_headers_next
 * (*cursor starts at 0). */
GUST_EXTERN bool gust_http_args_next(const gust_http_args *args, gust_str name,
                                     size_t *cursor, gust_str *value);

/* Parses application/x-www-form-urlencoded bytes (a query string or a form
 * body) and appends the pairs to args (WHATWG URL "application/x-www-form-
 * urlencoded parsing", as Python's parse_qsl with keep_blank_values):
 * pairs are separated by '&' only (';' is an ordinary byte), empty pairs
 * are skipped, a pair without '=' is a name with an empty value, '+' is a
 * space and %XX is decoded; invalid escapes are kept literally. Names and
 * values without escapes point into data (zero-copy); decoded ones are in
 * the arena. Returns 0 or -ENOMEM. */
GUST_EXTERN int gust_http_args_parse_urlencoded(gust_http_args *args,
                                                gust_str data);

/* Tornado's url_concat: appends the n pairs of args to url as an
 * urlencoded query (names and values escaped with GUST_URL_PLUS), after '?'
 * when url has no query, after '&' when it has one (none is added after a
 * trailing '?' or '&'). A fragment stays at the end. *out is a
 * NUL-terminated string in the arena (url itself, not copied, when n is 0).
 * Returns 0 or -ENOMEM. */
GUST_EXTERN int gust_url_concat(gust_arena *arena, gust_str url,
                                const gust_http_arg *args, size_t n,
                                gust_str *out);

/* ---------------------------------------------------------------------
 * Content-Type and multipart/form-data (RFC 9110 section 8.3, RFC 7578,
 * RFC 2046 section 5.1)
 * ------------------------------------------------------------------- */

/* One parameter of a media type. */
typedef struct gust_http_param {
    gust_str name;  /* lower-cased */
    gust_str value; /* quoted-string unescaped */
} gust_http_param;

/* A parsed Content-Type (or any media-type value). */
typedef struct gust_http_content_type {
    gust_str type;           /* "type/subtype", lower-cased */
    gust_http_param *params; /* in order; in the arena */
    size_t nparams;
} gust_http_content_type;

/* Parses a media type: type "/" subtype *( OWS ";" OWS [ token "=" ( token
 * / quoted-string ) ] ). The type and parameter names are lower-cased,
 * quoted values are unquoted with their quoted-pairs resolved. Slices point
 * into in when nothing had to change, else into the arena. Refuses
 * (-EINVAL): a missing or non-token type or subtype, whitespace around '=',
 * an unterminated quoted-string, a parameter without '=', a duplicated
 * parameter name, control characters. Returns 0, -EINVAL or -ENOMEM. */
GUST_EXTERN int gust_http_parse_content_type(gust_arena *arena, gust_str in,
                                             gust_http_content_type *out);

/* The value of parameter name (case-insensitive) or an absent slice. */
GUST_EXTERN gust_str
gust_http_content_type_param(const gust_http_content_type *ct, gust_str name);

/* True when boundary is a valid multipart boundary (RFC 2046 section
 * 5.1.1: 1 to 70 bchars, not ending with a space). */
GUST_EXTERN bool gust_http_boundary_valid(gust_str boundary);

/* One uploaded file of a multipart/form-data body (Tornado's HTTPFile). */
typedef struct gust_http_file {
    gust_str name;         /* the form field name */
    gust_str filename;     /* the filename parameter (non-empty) */
    gust_str content_type; /* the part's Content-Type value, "text/plain"
                              when it has none (RFC 7578 section 4.4) */
    gust_str body;         /* the content, pointing into the request body */
} gust_http_file;

/* Uploaded files in order. Embed it; read items[0..count). */
typedef struct gust_http_files {
    gust_arena *arena;
    gust_http_file *items;
    size_t count;
    size_t cap;
} gust_http_files;

/* Prepares an empty file list allocating from arena. */
GUST_EXTERN void gust_http_files_init(gust_http_files *files,
                                      gust_arena *arena);

/* The first file uploaded under field name, or NULL. */
GUST_EXTERN const gust_http_file *gust_http_files_get(
    const gust_http_files *files, gust_str name);

/* Parses a multipart/form-data body (RFC 7578) with the given boundary (the
 * unquoted parameter value). A part whose Content-Disposition has a
 * non-empty filename is appended to files; every other part is appended to
 * args as name = content (as Tornado does, so filename="" — a form's empty
 * file input — gives an empty argument). Part contents point into body (no
 * copy); the arena holds only the arrays and unescaped quoted names.
 *
 * Strict: -EINVAL for an invalid boundary, a body without the first
 * delimiter or without the final "--boundary--", a delimiter line followed
 * by anything but transport padding and CRLF, a part header that is not
 * "name: value" with a token name and a clean value (obs-fold included), a
 * part without exactly one Content-Disposition, a disposition type other
 * than form-data, a missing name parameter, or a malformed parameter list.
 * A preamble and an epilogue are ignored (RFC 2046); zero parts
 * ("--boundary--") is accepted. Parameter filename* is ignored (RFC 7578
 * section 4.2). Returns 0, -EINVAL or -ENOMEM; after an error args and
 * files may hold the parts before the faulty one. */
GUST_EXTERN int gust_http_parse_multipart(gust_str boundary, gust_str body,
                                          gust_http_args *args,
                                          gust_http_files *files);

/* ---------------------------------------------------------------------
 * Incremental multipart/form-data parser, for uploads too large to buffer
 * (a streamed request body). It accepts exactly what
 * gust_http_parse_multipart() accepts, however the body is split, and
 * reports each part through callbacks run inside gust_multipart_feed().
 * ------------------------------------------------------------------- */

typedef struct gust_multipart gust_multipart;

/* What part_begin learns about a part. Slices are valid until the part's
 * part_end callback returns (they point into the parser's header buffer or
 * its arena). */
typedef struct gust_http_part {
    gust_str name;         /* the name parameter */
    gust_str filename;     /* the filename parameter, absent when none */
    gust_str content_type; /* the Content-Type value, absent when none */
    gust_str headers;      /* the raw header lines, each ending in CRLF */
} gust_http_part;

/* Callbacks; any may be NULL. Each returns 0 to continue, or a negative
 * code that stops the parser: gust_multipart_feed() then returns that code,
 * and so does every later call. For each part, part_begin runs once, then
 * part_data zero or more times with the content in order (data points into
 * the buffer given to feed, or, for a few bytes that looked like the start
 * of a delimiter, into the parser; valid only during the call), then
 * part_end once. A part that fails (malformed, stopped) gets no part_end. */
typedef struct gust_multipart_callbacks {
    int (*part_begin)(gust_multipart *mp, const gust_http_part *part,
                      void *data);
    int (*part_data)(gust_multipart *mp, const char *buf, size_t len,
                     void *data);
    int (*part_end)(gust_multipart *mp, void *data);
} gust_multipart_callbacks;

/* The parser state. Embed it; the fields are private. */
struct gust_multipart {
    const gust_multipart_callbacks *cb;
    void *data;
    gust_arena *arena;
    char delim[4 + 70];     /* CRLF "--" boundary */
    size_t dlen;
    size_t matched;         /* delimiter bytes matched and held back */
    size_t virtual_crlf;    /* of those, leading bytes that are not content */
    int state;
    int error;
    char *hbuf;             /* part header bytes being gathered */
    size_t hlen, hcap, max_header;
    gust_http_part part;
    void *scratch_params;
    size_t scratch_cap;
};

/* Default bound on one part's header block (gust_multipart_init). */
#define GUST_MULTIPART_MAX_HEADER 16384

/* Prepares mp to parse one body with boundary (copied; the caller's bytes
 * need not stay valid). max_header bounds each part's header block, empty
 * line included (0 for GUST_MULTIPART_MAX_HEADER). The header buffer and
 * parameters are allocated from arena. cb (which must stay valid) and data
 * are passed to every callback. Returns 0, or -EINVAL for an invalid
 * boundary. */
GUST_EXTERN int gust_multipart_init(gust_multipart *mp, gust_str boundary,
                                    size_t max_header, gust_arena *arena,
                                    const gust_multipart_callbacks *cb,
                                    void *data);

/* Feeds the next len bytes of the body. Returns 0 (all consumed; more may
 * follow), -EINVAL (malformed body), -E2BIG (a part's headers exceed
 * max_header), -ENOMEM, or a callback's negative code. Errors are sticky. */
GUST_EXTERN int gust_multipart_feed(gust_multipart *mp, const char *buf,
                                    size_t len);

/* Ends the body. Returns 0 when the final delimiter was seen, -EINVAL when
 * the body stopped early (the last part then gets no part_end), or the
 * sticky error. Bytes fed after the final delimiter (the epilogue) are
 * ignored. */
GUST_EXTERN int gust_multipart_finish(gust_multipart *mp);

/* Tornado's parse_body_arguments: parses body according to content_type
 * (the Content-Type value, may be absent). application/x-www-form-urlencoded
 * goes to gust_http_args_parse_urlencoded(); multipart/form-data to
 * gust_http_parse_multipart() with its boundary parameter (missing or
 * invalid: -EINVAL); any other type, or no Content-Type, is left alone
 * (returns 0, nothing added). A Content-Type that does not parse is an
 * error (-EINVAL) if it starts with one of the two form types, else it is
 * simply not a form (0). The server should not call this for a body with a
 * Content-Encoding (Tornado skips those too). Returns 0, -EINVAL or
 * -ENOMEM. files may be NULL when the caller refuses uploads, in which case
 * a file part gives -EINVAL. */
GUST_EXTERN int gust_http_parse_body_arguments(gust_arena *arena,
                                               gust_str content_type,
                                               gust_str body,
                                               gust_http_args *args,
                                               gust_http_files *files);

/* ---------------------------------------------------------------------
 * Cookies (RFC 6265)
 * ------------------------------------------------------------------- */

/* Parses a Cookie request header value (RFC 6265 sections 4.2 and 5.4) and
 * appends each name=value pair to out in order. Leniency as browsers and
 * Tornado: pairs are split on ';', spaces and tabs around names and values
 * are trimmed, one pair of surrounding double quotes is removed from a
 * value, a pair without '=' or with an empty name is skipped. No decoding:
 * every slice points into header. Duplicate names are kept (the first is
 * the most specific path, RFC 6265 section 5.4). Returns 0 or -ENOMEM. */
GUST_EXTERN int gust_http_parse_cookie(gust_str header, gust_http_args *out);

/* SameSite attribute values. */
typedef enum gust_http_samesite {
    GUST_HTTP_SAMESITE_UNSET = 0, /* no SameSite attribute */
    GUST_HTTP_SAMESITE_STRICT,
    GUST_HTTP_SAMESITE_LAX,
    GUST_HTTP_SAMESITE_NONE       /* requires secure */
} gust_http_samesite;
/* Older names, kept as aliases. */
#define GUST_SAMESITE_UNSET GUST_HTTP_SAMESITE_UNSET
#define GUST_SAMESITE_STRICT GUST_HTTP_SAMESITE_STRICT
#define GUST_SAMESITE_LAX GUST_HTTP_SAMESITE_LAX
#define GUST_SAMESITE_NONE GUST_HTTP_SAMESITE_NONE

/* Attributes of a Set-Cookie header. Zero-initialise, then set what you
 * need: (gust_http_cookie_options){ .path = "/", .httponly = true }. */
typedef struct gust_http_cookie_options {
    const char *domain;   /* Domain=..., NULL for none */
    const char *path;     /* Path=..., NULL for none */
    bool has_expires;     /* emit Expires=<HTTP date of expires> */
    time_t expires;
    bool has_max_age;     /* emit Max-Age=<max_age> (>= 0) */
    long long max_age;
    bool secure;          /* Secure */
    bool httponly;        /* HttpOnly */
    gust_http_samesite samesite;
} gust_http_cookie_options;

/* Formats a Set-Cookie field value "name=value; Domain=..; Path=..;
 * Expires=..; Max-Age=..; Secure; HttpOnly; SameSite=.." into the arena
 * (NUL-terminated; opts may be NULL). Refuses (-EINVAL), so that no
 * application data can inject a header or an attribute: a name that is not
 * a token; a value with bytes outside RFC 6265 cookie-octet (controls,
 * space, '"', ',', ';', '\\', bytes >= 0x80; one pair of surrounding
 * quotes is allowed); a domain or path that is empty or holds controls,
 * ';' or ','; a negative max_age or an expires not representable as an
 * HTTP date; SameSite=None without secure; a "__Secure-" name without
 * secure, a "__Host-" name without secure, with a domain or with a path
 * other than "/". Returns 0, -EINVAL or -ENOMEM. */
GUST_EXTERN int gust_http_format_set_cookie(
    gust_arena *arena, gust_str name, gust_str value,
    const gust_http_cookie_options *opts, gust_str *out);

/* ---------------------------------------------------------------------
 * HTTP dates (RFC 9110 section 5.6.7)
 * ------------------------------------------------------------------- */

/* Length of an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT". */
#define GUST_HTTP_DATE_LEN 29
/* Buffer size for gust_http_date_format(), NUL included. */
#define GUST_HTTP_DATE_SIZE 30

/* Writes t as an IMF-fixdate plus a NUL into buf (GUST_HTTP_DATE_SIZE
 * bytes). No locale, no allocation, no system call. Returns 0, or -EINVAL
 * when t falls outside years 0000-9999 (buf then holds ""). */
GUST_EXTERN int gust_http_date_format(time_t t, char buf[GUST_HTTP_DATE_SIZE]);

/* Parses an HTTP date in any of the three forms of RFC 9110 section 5.6.7:
 *     Sun, 06 Nov 1994 08:49:37 GMT    (IMF-fixdate)
 *     Sunday, 06-Nov-94 08:49:37 GMT   (obsolete RFC 850 form)
 *     Sun Nov  6 08:49:37 1994         (obsolete asctime form)
 * exactly as written there (case-sensitive names, fixed widths, single
 * spaces, "GMT"), into *out (seconds since the epoch, UTC). A two-digit
 * RFC 850 year is taken in the current century, or in the previous one
 * when that would be more than 50 years in the future (RFC 9110). The day name must be a valid one
 * but is not checked against the date; second 60 (a leap second) is read as
 * 59. Returns 0 or -EINVAL (any other syntax, an impossible date). */
GUST_EXTERN int gust_http_date_parse(gust_str s, time_t *out);

/* ---------------------------------------------------------------------
 * Status codes (RFC 9110 section 15 and the IANA registry)
 * ------------------------------------------------------------------- */

/* The reason phrase of a status code, e.g. "Not Found" for 404: the RFC
 * 9110 phrases plus the other codes in IANA's registry (102, 103, 207, 208,
 * 226, 421-429, 431, 451, 506-511; 418 "I'm a Teapot" as Python names it).
 * Returns a static string, or NULL for a code without one (the caller
 * chooses: Tornado says "Unknown"). */
GUST_EXTERN const char *gust_http_reason(int code);

/* Parses a response status line without its CRLF (RFC 9112 section 4),
 * for the HTTP client: "HTTP/1." DIGIT SP 3DIGIT [SP reason-phrase], the
 * reason being any run of HTAB, SP, VCHAR and obs-text (possibly empty;
 * the SP before it may be missing, as some servers send "HTTP/1.1 200").
 * Sets *minor_version (0-9), *code (100-999) and *reason (a slice of line,
 * empty when none). Returns 0, or -EINVAL for anything else (another major
 * version, a code below 100, control characters). */
GUST_EXTERN int gust_http_parse_response_start_line(gust_str line,
                                                    int *minor_version,
                                                    int *code,
                                                    gust_str *reason);

#ifdef __cplusplus
}
#endif

#endif /* GUST_HTTP_H */
