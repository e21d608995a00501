/* Gust's HTTP/1 parser: strict (RFC 9110, RFC 9112), zero-copy,
 * allocation-free, pure functions over bytes (http1_parser.c), used by the
 * HTTP/1 server through http_server_internal.h, by the HTTP client
 * through http_client_internal.h, and for the handshake's response by the
 * WebSocket client (websocket_client.c). Not installed.
 *
 * Requests, used in this order by the HTTP/1 server connection:
 *   1. gust__http1_parse_request() parses the request head (request line and
 *      header fields) into slices of the caller's buffer;
 *   2. gust__http1_request_framing() decides how the body is delimited (none,
 *      Content-Length, chunked) and reads the keep-alive inputs (Connection,
 *      Expect, Host), rejecting every ambiguity a smuggling attack relies on;
 *   3. gust__http1_chunked_decode() decodes a chunked body incrementally, in
 *      place.
 * Responses, used the same way by the HTTP client:
 *   1. gust__http1_parse_response() parses the status line and the fields;
 *   2. gust__http1_response_framing() applies RFC 9112 section 6.3 (no body,
 *      Content-Length, chunked or until close) given the request method;
 *   3. gust__http1_chunked_decode(), as for requests.
 * Both heads share one field-section parser, gust__http1_parse_fields(), so
 * the two directions follow the same field-line rules; they differ only
 * where RFC 9112 does: obs-fold (section 5.2) may be accepted in responses.
 *
 * Errors never depend on bytes past the one in error, so feeding the same
 * byte stream in any number of pieces gives the same final result as feeding
 * it whole. On a request error the caller answers with the status stored in
 * the result (400, 413, 431, 501 or 505) and closes the connection; a
 * response error carries the status a server would give the same fault in a
 * request, for the log. docs/http1_parser.md lists every rule with its RFC
 * section.
 */
#ifndef GUST_HTTP1_PARSER_H
#define GUST_HTTP1_PARSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Return codes shared by the three parsers (all other results are >= 0). */
enum {
    GUST_HTTP1_INCOMPLETE = -1, /* more bytes are needed */
    GUST_HTTP1_ERROR = -2       /* malformed: see error_status, error_reason */
};

/* Header slots for a caller with no limit of its own (the parser's tests
 * and fuzzer); the HTTP server uses its max_header_count option. */
#define GUST_HTTP1_MAX_HEADERS 100
/* Most empty lines (CRLF) skipped before a request line; one more gives 400.
 * RFC 9112 section 2.2 asks servers to ignore at least one. */
#define GUST_HTTP1_MAX_EMPTY_LINES 16
/* Largest chunk size accepted (2^62); larger sizes are malformed (400). */
#define GUST_HTTP1_MAX_CHUNK_SIZE ((uint64_t)1 << 62)
/* Longest chunk-size line, extensions included, before its CRLF (400). */
#define GUST_HTTP1_MAX_CHUNK_LINE 4096
/* Largest Content-Length accepted (2^62); larger values are malformed (400). */
#define GUST_HTTP1_MAX_CONTENT_LENGTH ((uint64_t)1 << 62)

/* A borrowed run of bytes: ptr points into the buffer that was parsed and is
 * valid as long as that buffer is. Not NUL-terminated. */
/* The parser's octet classes, one bit each in gust__http1_cc[byte]: one
 * table lookup per byte, spelled out from the RFC grammars (http_abnf.h)
 * and checked against them by tests/test_http_chars.c. */
enum {
    GUST__HTTP1_C_TCHAR = 1,  /* token character, RFC 9110 5.6.2 */
    GUST__HTTP1_C_VALUE = 2,  /* field-value byte: HTAB, SP, VCHAR, obs-text */
    GUST__HTTP1_C_HEX = 4,    /* HEXDIG */
    GUST__HTTP1_C_HOST = 8,   /* in a Host value (uri-host [":" port]) */
    GUST__HTTP1_C_TARGET = 16 /* in a request-target: VCHAR */
};
extern const unsigned char gust__http1_cc[256];

typedef struct gust__http1_slice {
    const char *ptr;
    size_t len;
} gust__http1_slice;

/* One header field line: name as received (compare case-insensitively), value
 * with its leading and trailing whitespace removed (may be empty). */
typedef struct gust__http1_header {
    gust__http1_slice name;
    gust__http1_slice value;
} gust__http1_header;

/* Flags for the field-section parser. */
enum {
    /* Accept obs-fold (a field line continued on a line that starts with SP
     * or HTAB, RFC 9112 section 5.2) as part of the previous field's value,
     * which then spans the fold: see gust__http1_unfold(). Without it a line
     * starting with SP or HTAB is an error (400), as in requests. A line
     * starting with whitespace right after the start line is always an
     * error (RFC 9112 section 2.2). */
    GUST_HTTP1_FIELDS_OBS_FOLD = 1
};

/* The field section of a head, for gust__http1_parse_fields(). The caller
 * sets headers, max_headers and flags; the parser sets the rest. */
typedef struct gust__http1_fields {
    gust__http1_header *headers; /* caller's array, filled in received order */
    size_t max_headers;          /* its length: one more field gives 431 */
    unsigned flags;              /* GUST_HTTP1_FIELDS_* */
    size_t num_headers;          /* entries used in headers[] */
    size_t num_folded;           /* fields whose value holds an obs-fold */
    int error_status;            /* 400 or 431 after GUST_HTTP1_ERROR */
    const char *error_reason;    /* static text for the log, after an error */
    size_t error_offset;         /* offset in buf of the deciding byte */
} gust__http1_fields;

/* Parses the field section *( field-line CRLF ) CRLF (RFC 9112 section 5)
 * that starts at buf + off, where buf is the start of the head (off is the
 * length of the start line, CRLF included). Request and response heads both
 * use it; the rules are the table "Fields" of docs/http1_parser.md.
 *
 * max_head bounds the whole head, buf[0..max_head) (values above INT_MAX are
 * treated as INT_MAX). Returns the head length (> 0, from buf, final CRLF
 * included), GUST_HTTP1_INCOMPLETE when every byte so far is valid but the
 * section is not complete, or GUST_HTTP1_ERROR with f->error_status:
 *   400 bare CR or LF, CTL other than HTAB in a value, whitespace before a
 *       colon, empty or invalid field name, line starting with SP or HTAB
 *       (unless it is an obs-fold and GUST_HTTP1_FIELDS_OBS_FOLD is set);
 *   431 head over max_head, or more than f->max_headers fields.
 * Names and values are slices of buf; a value has its leading and trailing
 * whitespace (and, with obs-fold, the folds around it) removed. buf is never
 * read past len. */
int gust__http1_parse_fields(const char *buf, size_t len, size_t off,
                             size_t max_head, gust__http1_fields *f);

/* Replaces, in place, each CR and LF of a field value by SP. Applied to a
 * value that gust__http1_parse_fields() returned with obs-fold accepted
 * (num_folded > 0; a value holds a CR only if it was folded), it yields
 * the value RFC 9112 section 5.2 asks a user agent to interpret: each
 * obs-fold replaced by SP octets (the value keeps its length). The caller
 * must own the bytes: parse a copy it may write to. */
void gust__http1_unfold(char *value, size_t len);

/* The parsed request head. The caller sets headers and max_headers (its
 * array of field slots and their number); the parser sets the rest. All
 * slices point into the parsed buffer; nothing is allocated, so the struct
 * can be reused for every request of a connection. Fields are meaningful
 * only after a call returned > 0, except error_status, error_reason and
 * error_offset after GUST_HTTP1_ERROR. */
typedef struct gust__http1_request {
    gust__http1_slice method;  /* a token, e.g. "GET" (case-sensitive) */
    gust__http1_slice target;  /* request-target, e.g. "/a?b=c" */
    int minor_version;         /* 0 for HTTP/1.0, 1 for HTTP/1.1 (and 1.2-1.9) */
    size_t num_headers;        /* entries used in headers[] */
    int error_status;          /* 400, 431 or 505 after GUST_HTTP1_ERROR */
    const char *error_reason;  /* static text for the log, after an error */
    size_t error_offset;       /* offset of the byte that decided the error:
                                * the result depends on no byte after it */
    gust__http1_header *headers; /* caller's array, filled in received order */
    size_t max_headers;          /* its length: one more field gives 431 */
} gust__http1_request;

/* Parses the request head at the start of buf[0..len).
 *
 * max_head is the largest head accepted, in bytes, including leading empty
 * lines and the final CRLF CRLF (values above INT_MAX are treated as
 * INT_MAX): a head that is not complete within max_head bytes gives 431.
 *
 * prev_len is a hint that makes trickled input cheap: pass 0, or the length
 * of the same buffer (same leading bytes) at the previous call, which must
 * have returned GUST_HTTP1_INCOMPLETE. With a hint, the call first looks at
 * the new bytes only, and returns GUST_HTTP1_INCOMPLETE without parsing
 * unless they may end the head (CRLF CRLF), hold a bare CR or LF, obs-fold or
 * a control byte, or go past max_head. So some errors (a bad token
 * character, a space before a colon) are reported only once the head ends or
 * reaches max_head, but a head that ends gets the same result as without the
 * hint.
 *
 * Returns the head length (> 0; the body or the next request starts at
 * buf + result), GUST_HTTP1_INCOMPLETE when every byte so far is valid but
 * the head is not complete, or GUST_HTTP1_ERROR with req->error_status set:
 *   400 malformed (bare CR or LF, CTL in a value, obs-fold, space before a
 *       colon, bad token, bad request-target, bad version syntax, too many
 *       leading empty lines),
 *   431 head over max_head or more than req->max_headers fields,
 *   505 well-formed version whose major number is not 1.
 * Slices in req point into buf. buf need not be NUL-terminated and is never
 * read past len. */
int gust__http1_parse_request(const char *buf, size_t len, size_t prev_len,
                              size_t max_head, gust__http1_request *req);

/* How a message body is delimited (RFC 9112 section 6.3). */
typedef enum gust__http1_body {
    GUST_HTTP1_BODY_NONE,    /* no body: the next request follows the head */
    GUST_HTTP1_BODY_LENGTH,  /* exactly content_length bytes (may be 0) */
    GUST_HTTP1_BODY_CHUNKED, /* Transfer-Encoding: chunked */
    GUST_HTTP1_BODY_CLOSE    /* responses only: until the server closes */
} gust__http1_body;

/* What gust__http1_request_framing() or gust__http1_response_framing()
 * found. For responses host, expect_continue and expect_other stay 0. */
typedef struct gust__http1_framing {
    gust__http1_body body;
    uint64_t content_length;     /* valid when body == GUST_HTTP1_BODY_LENGTH */
    gust__http1_slice host;      /* Host value; ptr NULL when absent (1.0) */
    unsigned char keep_alive;    /* 1.1 without close, 1.0 with keep-alive */
    unsigned char connection_close;      /* Connection has "close" */
    unsigned char connection_keep_alive; /* Connection has "keep-alive" */
    unsigned char connection_upgrade;    /* Connection has "upgrade" */
    unsigned char expect_continue;       /* HTTP/1.1 with Expect: 100-continue */
    unsigned char expect_other;  /* HTTP/1.1 with another expectation (417) */
    int error_status;            /* 400 or 501 after GUST_HTTP1_ERROR */
    const char *error_reason;    /* static text for the log, after an error */
} gust__http1_framing;

/* One Content-Length field value (RFC 9110 8.6: 1*DIGIT, at most
 * GUST_HTTP1_MAX_CONTENT_LENGTH; a list of equal values counts as one),
 * merged into *value / *seen so that several fields must agree too.
 * Returns NULL, or the reason it is invalid (static text). The framing
 * functions use it; so does the server for a length the application set. */
const char *gust__http1_parse_content_length(gust__http1_slice v,
                                             uint64_t *value, bool *seen);

/* Decides the body framing of a request parsed by gust__http1_parse_request()
 * (which must have returned > 0; the slices must still be valid) and reads
 * the Connection, Expect and Host fields. Header names are matched
 * case-insensitively; every occurrence of a field is considered.
 *
 * Returns 0 with *out filled, or GUST_HTTP1_ERROR with out->error_status:
 *   400 Transfer-Encoding with Content-Length, Transfer-Encoding in HTTP/1.0,
 *       final transfer coding not chunked, chunked more than once, a
 *       malformed coding list; Content-Length not 1*DIGIT, above
 *       GUST_HTTP1_MAX_CONTENT_LENGTH, or several differing values; HTTP/1.1
 *       without Host; several Host fields; invalid Host value; malformed
 *       Connection list;
 *   501 a transfer coding other than chunked before the final chunked.
 * Several Content-Length values (fields or list members) that are all equal
 * are accepted as one. */
int gust__http1_request_framing(const gust__http1_request *req,
                                gust__http1_framing *out);

/* The parsed response head. The caller sets headers and max_headers (its
 * own array, of any length) before each parse; all slices point into the
 * parsed buffer. Fields are meaningful only after a call returned > 0,
 * except error_status, error_reason and error_offset after an error. */
typedef struct gust__http1_response {
    int minor_version;           /* the digit after "HTTP/1." (0-9) */
    int status;                  /* status code, 100-999 */
    gust__http1_slice reason;    /* reason-phrase as received, may be empty */
    gust__http1_header *headers; /* caller's array, filled in received order */
    size_t max_headers;          /* its length: one more field gives 431 */
    size_t num_headers;          /* entries used in headers[] */
    size_t num_folded;           /* fields whose value holds an obs-fold */
    int error_status;            /* 400, 431 or 505 after GUST_HTTP1_ERROR */
    const char *error_reason;    /* static text for the log, after an error */
    size_t error_offset;         /* offset of the byte that decided the error */
} gust__http1_response;

/* Parses the response head at the start of buf[0..len): the status line
 * HTTP-version SP 3DIGIT SP reason-phrase CRLF (RFC 9112 section 4), then
 * the fields with gust__http1_parse_fields() and flags (0, or
 * GUST_HTTP1_FIELDS_OBS_FOLD for a user agent, RFC 9112 section 5.2).
 *
 * The version must be "HTTP/1." DIGIT (case-sensitive); the status code
 * three digits from 100 to 999; the reason-phrase may be empty, and the SP
 * before it may be missing ("HTTP/1.1 200" CRLF, which servers send). No
 * empty line may precede the status line. max_head and prev_len work as in
 * gust__http1_parse_request().
 *
 * Returns the head length (> 0; the body starts at buf + result),
 * GUST_HTTP1_INCOMPLETE, or GUST_HTTP1_ERROR with resp->error_status:
 *   400 malformed status line (version syntax, status code, a byte outside
 *       HTAB / SP / VCHAR / obs-text in the reason, bare CR or LF) or
 *       field section (see gust__http1_parse_fields());
 *   431 head over max_head or more than resp->max_headers fields;
 *   505 well-formed version whose major number is not 1 ("HTTP/2.0").
 * Slices in resp point into buf; buf is never read past len. */
int gust__http1_parse_response(const char *buf, size_t len, size_t prev_len,
                               size_t max_head, unsigned flags,
                               gust__http1_response *resp);

/* Decides how the body of a response parsed by gust__http1_parse_response()
 * is delimited (RFC 9112 section 6.3), given the method of the request it
 * answers (a token, e.g. "GET"), and reads Connection:
 *   - a response to HEAD, a 1xx, 204 or 304, a 2xx to CONNECT: no body,
 *     whatever the fields say (Content-Length is not even checked);
 *   - Transfer-Encoding whose final coding is chunked (without parameters):
 *     GUST_HTTP1_BODY_CHUNKED; any other Transfer-Encoding:
 *     GUST_HTTP1_BODY_CLOSE. Content-Length is then ignored, but the
 *     connection is not reused (keep_alive 0), nor after Transfer-Encoding
 *     in an HTTP/1.0 response (RFC 9112 section 6.1);
 *   - Content-Length (several values must all be equal):
 *     GUST_HTTP1_BODY_LENGTH with content_length (may be 0);
 *   - otherwise GUST_HTTP1_BODY_CLOSE.
 * keep_alive is HTTP/1.1 (or 1.x above) without "close", or HTTP/1.0 with
 * "keep-alive" and without "close", and never with BODY_CLOSE. Connection
 * members that are not tokens are ignored.
 *
 * Returns 0 with *out filled, or GUST_HTTP1_ERROR with out->error_status
 * 400: Content-Length not 1*DIGIT, above GUST_HTTP1_MAX_CONTENT_LENGTH, or
 * several differing values, when it decides the framing. */
int gust__http1_response_framing(const gust__http1_response *resp,
                                 gust__http1_slice method,
                                 gust__http1_framing *out);

/* State of an incremental chunked body decoder (RFC 9112 section 7.1).
 * Initialise with gust__http1_chunked_init(); the fields are private. */
typedef struct gust__http1_chunked {
    uint64_t remaining;   /* data bytes left in the current chunk */
    uint64_t total;       /* data bytes decoded so far */
    uint64_t max_body;    /* most data bytes accepted (413 beyond) */
    size_t line_len;      /* bytes of the current chunk-size line */
    size_t trailer_len;   /* bytes of the trailer section so far */
    size_t max_trailer;   /* most trailer bytes accepted (431 beyond) */
    unsigned char state;
    unsigned char seen_digit;
    int error_status;     /* 400, 413 or 431 after GUST_HTTP1_ERROR */
    const char *error_reason; /* static text for the log, after an error */
} gust__http1_chunked;

/* Prepares st to decode one chunked body. max_body bounds the decoded data
 * (UINT64_MAX for no limit); max_trailer bounds the trailer section, final
 * CRLF included. */
void gust__http1_chunked_init(gust__http1_chunked *st, uint64_t max_body,
                              size_t max_trailer);

/* Decodes the next len bytes of a chunked body, in place: the data bytes
 * found are moved to buf[0..*data_len) (chunk sizes, extensions and trailers
 * are dropped; trailer fields are checked but not reported).
 *
 * Returns:
 *   GUST_HTTP1_INCOMPLETE  all len bytes were consumed and the body is not
 *                          finished: call again with the next bytes;
 *   >= 0                   the body ended; the result is the number of bytes
 *                          of buf that belonged to it: buf[result..len) is
 *                          the start of the next request, left untouched;
 *   GUST_HTTP1_ERROR       malformed, st->error_status is 400 (bad chunk
 *                          size, extension, CRLF or trailer), 413 (data over
 *                          max_body) or 431 (trailer over max_trailer);
 *                          *data_len is still the data decoded before it.
 * Any split of the byte stream into calls gives the same data and result.
 * Calling again after the end or an error returns the same code with
 * *data_len 0 and consumes nothing. */
ssize_t gust__http1_chunked_decode(gust__http1_chunked *st, char *buf,
                                   size_t len, size_t *data_len);

#endif /* GUST_HTTP1_PARSER_H */
