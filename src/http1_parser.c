/* HTTP/1 parser: request and response heads (one field-section parser for
 * both), body framing, chunked decoder.
 *
 * Strictness is the point: every byte a lenient parser would "fix up" is a
 * byte a proxy in front of us may have read differently, which is how request
 * smuggling works. So nothing is autocorrected; see docs/http1_parser.md. */
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "http1_parser.h"
#include "http_abnf.h"

/* One byte's classes, from the RFC grammars in http_abnf.h. */
#define CLASS_OF(c)                                                            \
    (unsigned char)((GUST__ABNF_TCHAR(c) ? GUST__HTTP1_C_TCHAR : 0) |          \
                    (GUST__ABNF_FIELD_VALUE_OCTET(c) ? GUST__HTTP1_C_VALUE     \
                                                     : 0) |                    \
                    (GUST__ABNF_HEXDIG(c) ? GUST__HTTP1_C_HEX : 0) |           \
                    (GUST__ABNF_HOST_OCTET(c) ? GUST__HTTP1_C_HOST : 0) |      \
                    (GUST__ABNF_VCHAR(c) ? GUST__HTTP1_C_TARGET : 0))

const unsigned char gust__http1_cc[256] = {GUST__ABNF_TABLE(CLASS_OF)};

#define IS_OWS(c) ((c) == ' ' || (c) == '\t')

/* The field-section loop is shared by both heads but is the request hot
 * path: inlined into each caller, flags being a constant there, the
 * request parser pays nothing for the response-only obs-fold branch. */
#if defined(__GNUC__) || defined(__clang__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

/* ------------------------------------------------------------------------ */
/* Scanners: the two long runs of a head are the target and field values.
 * SSE2 checks 16 bytes per step, only while 16 bytes remain in the buffer,
 * so nothing is read past end; the scalar loop finishes the tail. */

/* First byte in [p, end) that cannot be in a field value, or end. */
static const unsigned char *scan_value(const unsigned char *p,
                                       const unsigned char *end)
{
#ifdef __SSE2__
    const __m128i lim = _mm_set1_epi8(0x1f), tab = _mm_set1_epi8('\t');
    const __m128i del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* unsigned v <= 0x1f, except HTAB; or DEL */
        __m128i ctl = _mm_cmpeq_epi8(_mm_min_epu8(v, lim), v);
        __m128i bad = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, tab), ctl),
                                   _mm_cmpeq_epi8(v, del));
        int mask = _mm_movemask_epi8(bad);
        if (mask)
            return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#endif
    while (p < end && (gust__http1_cc[*p] & GUST__HTTP1_C_VALUE))
        p++;
    return p;
}

/* First byte in [p, end) that is not VCHAR (0x21-0x7e), or end. */
static const unsigned char *scan_target(const unsigned char *p,
                                        const unsigned char *end)
{
#ifdef __SSE2__
    const __m128i low = _mm_set1_epi8(0x21), del = _mm_set1_epi8(0x7f);
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
        /* signed compare: bytes >= 0x80 are negative, hence below 0x21 */
        __m128i bad = _mm_or_si128(_mm_cmplt_epi8(v, low), _mm_cmpeq_epi8(v, del));
        int mask = _mm_movemask_epi8(bad);
        if (mask)
            return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#endif
    while (p < end && (gust__http1_cc[*p] & GUST__HTTP1_C_TARGET))
        p++;
    return p;
}

/* First byte in [p, end) that is not a tchar, or end. Names are short:
 * unrolled by four so that the bounds check runs once per four bytes. */
static const unsigned char *scan_token(const unsigned char *p,
                                       const unsigned char *end)
{
    while (end - p >= 4) {
        if (!(gust__http1_cc[p[0]] & GUST__HTTP1_C_TCHAR))
            return p;
        if (!(gust__http1_cc[p[1]] & GUST__HTTP1_C_TCHAR))
            return p + 1;
        if (!(gust__http1_cc[p[2]] & GUST__HTTP1_C_TCHAR))
            return p + 2;
        if (!(gust__http1_cc[p[3]] & GUST__HTTP1_C_TCHAR))
            return p + 3;
        p += 4;
    }
    while (p < end && (gust__http1_cc[*p] & GUST__HTTP1_C_TCHAR))
        p++;
    return p;
}

/* ------------------------------------------------------------------------ */
/* Field section: *( field-line CRLF ) CRLF (RFC 9112 5) */

/* Where the field loop stopped: on error, the status, the reason and the
 * deciding byte; on GUST_HTTP1_INCOMPLETE, the byte it needs next (callers
 * turn that into 431 when max_head bytes are there). */
typedef struct fields_state {
    gust__http1_header *headers;
    size_t max_headers, num_headers, num_folded;
    int status;
    const char *reason;
    const unsigned char *at;
} fields_state;

/* The field loop's two ways out besides a complete section: an error
 * decided by the byte at, or the need for more bytes from at on. */
static inline int fields_fail(fields_state *fs, const unsigned char *at,
                              int status, const char *reason)
{
    fs->status = status;
    fs->reason = reason;
    fs->at = at;
    return GUST_HTTP1_ERROR;
}

static inline int fields_more(fields_state *fs, const unsigned char *at)
{
    fs->at = at;
    return GUST_HTTP1_INCOMPLETE;
}

/* Parses fields from p up to end (the readable part of the buffer b, capped
 * at max_head). Returns the head length, INCOMPLETE or ERROR. */
static ALWAYS_INLINE int parse_fields(const unsigned char *b,
                                      const unsigned char *p,
                                      const unsigned char *end, unsigned flags,
                                      fields_state *fs)
{
    for (;;) {
        const unsigned char *start, *crlf, *vend;
        gust__http1_header *h;
        bool folded = false;

        if (p == end)
            return fields_more(fs, p);
        if (*p == '\r') {
            if (++p == end)
                return fields_more(fs, p);
            if (*p != '\n')
                return fields_fail(fs, p, 400, "bare CR");
            return (int)(p + 1 - b);
        }
        start = p;
        p = scan_token(p, end);
        if (p == end)
            return fields_more(fs, p);
        if (*p != ':') {
            if (p != start)
                return fields_fail(fs, p, 400,
                                   IS_OWS(*p)
                                       ? "whitespace before colon"
                                       : "invalid character in field name");
            return fields_fail(
                fs, p, 400,
                IS_OWS(*p)   ? "obs-fold or whitespace at line start"
                : *p == '\n' ? "bare LF"
                             : "invalid character in field name");
        }
        if (p == start)
            return fields_fail(fs, p, 400, "empty field name");
        if (fs->num_headers == fs->max_headers)
            return fields_fail(fs, p, 431, "too many header fields");
        h = &fs->headers[fs->num_headers];
        h->name.ptr = (const char *)start;
        h->name.len = (size_t)(p - start);

        p++;
        while (p < end && IS_OWS(*p))
            p++;
        start = p;
        for (;;) {
            p = scan_value(p, end);
            if (p == end)
                return fields_more(fs, p);
            if (*p != '\r')
                return fields_fail(fs, p, 400,
                                   *p == '\n'
                                       ? "bare LF"
                                       : "invalid character in field value");
            crlf = p;
            if (++p == end)
                return fields_more(fs, p);
            if (*p != '\n')
                return fields_fail(fs, p, 400, "bare CR");
            p++;
            if (!(flags & GUST_HTTP1_FIELDS_OBS_FOLD))
                break;
            /* obs-fold = OWS CRLF RWS: whether this line goes on is known
             * only from the next byte. */
            if (p == end)
                return fields_more(fs, p);
            if (!IS_OWS(*p))
                break;
            folded = true;
        }
        vend = crlf;
        if (folded) {
            /* Folds at either end are whitespace once unfolded. */
            while (vend > start && (IS_OWS(vend[-1]) || vend[-1] == '\r' ||
                                    vend[-1] == '\n'))
                vend--;
            while (start < vend && (IS_OWS(*start) || *start == '\r' ||
                                    *start == '\n'))
                start++;
            fs->num_folded++;
        } else {
            while (vend > start && IS_OWS(vend[-1]))
                vend--;
        }
        h->value.ptr = (const char *)start;
        h->value.len = (size_t)(vend - start);
        fs->num_headers++;
    }
}

int gust__http1_parse_fields(const char *buf, size_t len, size_t off,
                             size_t max_head, gust__http1_fields *f)
{
    const unsigned char *b = (const unsigned char *)buf;
    fields_state fs = {f->headers, f->max_headers, 0, 0, 0, NULL, NULL};
    int n;

    if (max_head > INT_MAX)
        max_head = INT_MAX;
    if (off > len)
        off = len;
    n = f->flags & GUST_HTTP1_FIELDS_OBS_FOLD
            ? parse_fields(b, b + off, b + (len < max_head ? len : max_head),
                           GUST_HTTP1_FIELDS_OBS_FOLD, &fs)
            : parse_fields(b, b + off, b + (len < max_head ? len : max_head),
                           0, &fs);
    f->num_headers = fs.num_headers;
    f->num_folded = fs.num_folded;
    if (n == GUST_HTTP1_INCOMPLETE && len >= max_head) {
        fs.status = 431;
        fs.reason = "head too large";
        n = GUST_HTTP1_ERROR;
    }
    if (n == GUST_HTTP1_ERROR) {
        f->error_status = fs.status;
        f->error_reason = fs.reason;
        f->error_offset = (size_t)(fs.at - b);
    }
    return n;
}

void gust__http1_unfold(char *value, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (value[i] == '\r' || value[i] == '\n')
            value[i] = ' ';
}

/* ------------------------------------------------------------------------ */
/* Request head */

/* What a head parse needs to report its end: the buffer, the limit, and
 * where the error goes (gust__http1_request and gust__http1_response have
 * the same three error fields). Set up by head_begin(). */
typedef struct head_ctx {
    const unsigned char *b;   /* the caller's buffer */
    const unsigned char *end; /* b + min(len, max_head): what may be read */
    size_t len, max_head;
    const char *too_large;    /* the reason of the 431 */
    int *error_status;
    const char **error_reason;
    size_t *error_offset;
} head_ctx;

/* Records the error decided by the byte at, and returns GUST_HTTP1_ERROR. */
static int head_fail(const head_ctx *h, const unsigned char *at, int status,
                     const char *reason)
{
    *h->error_status = status;
    *h->error_reason = reason;
    *h->error_offset = (size_t)(at - h->b);
    return GUST_HTTP1_ERROR;
}

/* Called when the parse reached the end of what it may look at: more bytes
 * may complete the head, unless max_head bytes are already there. */
static int head_more(const head_ctx *h, const unsigned char *at)
{
    if (h->len >= h->max_head)
        return head_fail(h, at, 431, h->too_large);
    return GUST_HTTP1_INCOMPLETE;
}

/* The result of the field section that ends a head (parse_fields() n,
 * stopped at fs->at), as the head's own result. */
static int head_end(const head_ctx *h, int n, const fields_state *fs)
{
    if (n == GUST_HTTP1_INCOMPLETE)
        return head_more(h, fs->at);
    if (n == GUST_HTTP1_ERROR)
        return head_fail(h, fs->at, fs->status, fs->reason);
    return n;
}

/* With the hint: may the bytes after prev_len end the head, or hold an error
 * that is cheap to spot here (bare CR or LF, obs-fold, a control byte)? An
 * end is LF CR LF: its first LF is at prev_len - 2 at the earliest, or the
 * previous call would have seen it. */
static bool head_may_end(const unsigned char *b, size_t prev_len, size_t len)
{
    size_t i = prev_len >= 2 ? prev_len - 2 : 0;
    for (; i < len; i++) {
        unsigned char c = b[i];
        if (gust__http1_cc[c] & GUST__HTTP1_C_VALUE)
            continue;
        if (c == '\n') {
            if (i == 0 || b[i - 1] != '\r')
                return true;                       /* bare LF */
            if (i + 1 < len && (b[i + 1] == '\r' || b[i + 1] == '\n' ||
                                IS_OWS(b[i + 1])))
                return true;                       /* end, or obs-fold */
        } else if (c != '\r' || (i + 1 < len && b[i + 1] != '\n')) {
            return true;                           /* CTL or bare CR */
        }
    }
    return false;
}

/* The prologue both heads share: caps max_head (results are ints), sets
 * up h, and with the hint prev_len (the length at the previous call)
 * returns false when the new bytes can neither end the head nor hold an
 * error, so that the caller returns GUST_HTTP1_INCOMPLETE without
 * parsing again. */
static inline bool head_begin(head_ctx *h, const char *buf, size_t len,
                              size_t prev_len, size_t max_head,
                              const char *too_large, int *error_status,
                              const char **error_reason, size_t *error_offset)
{
    const unsigned char *b = (const unsigned char *)buf;
    if (max_head > INT_MAX)
        max_head = INT_MAX;
    if (prev_len > 0 && prev_len <= len && len < max_head &&
        !head_may_end(b, prev_len, len))
        return false;
    *h = (head_ctx){b, b + (len < max_head ? len : max_head), len, max_head,
                    too_large, error_status, error_reason, error_offset};
    return true;
}

int gust__http1_parse_request(const char *buf, size_t len, size_t prev_len,
                              size_t max_head, gust__http1_request *req)
{
    head_ctx h;
    unsigned empty_lines = 0;
    int major, minor;

    if (!head_begin(&h, buf, len, prev_len, max_head, "request head too large",
                    &req->error_status, &req->error_reason, &req->error_offset))
        return GUST_HTTP1_INCOMPLETE;
    const unsigned char *b = h.b, *p = b, *end = h.end, *start;
    req->num_headers = 0;

    /* RFC 9112 2.2: ignore empty lines before the request line (a few). */
    for (;;) {
        if (p == end)
            return head_more(&h, p);
        if (*p != '\r')
            break;
        if (++empty_lines > GUST_HTTP1_MAX_EMPTY_LINES)
            return head_fail(&h, p, 400,
                             "too many empty lines before the request line");
        if (++p == end)
            return head_more(&h, p);
        if (*p != '\n')
            return head_fail(&h, p, 400, "bare CR");
        p++;
    }

    /* method SP request-target SP HTTP-version CRLF (RFC 9112 3) */
    start = p;
    p = scan_token(p, end);
    if (p == end)
        return head_more(&h, p);
    if (p == start)
        return head_fail(&h, p, 400,
                         *p == '\n' ? "bare LF" : "invalid request line");
    if (*p != ' ')
        return head_fail(&h, p, 400, "invalid character in method");
    req->method.ptr = (const char *)start;
    req->method.len = (size_t)(p - start);

    start = ++p;
    p = scan_target(p, end);
    if (p == end) {
        /* The head limit ran out inside the target: say which part is too
         * long (RFC 9110 15.5.15). */
        if (h.len >= h.max_head)
            return head_fail(&h, p, 414, "request-target too long");
        return head_more(&h, p);
    }
    if (p == start)
        return head_fail(&h, p, 400,
                         *p == ' ' ? "more than one space in request line"
                                   : "empty request-target");
    if (*p != ' ')
        return head_fail(&h, p, 400,
                         *p == '\r' ? "missing HTTP version"
                                    : "invalid character in request-target");
    /* origin-form, absolute-form or authority-form start with '/' or a
     * letter; asterisk-form is "*" alone (RFC 9112 3.2). */
    if (!(*start == '/' || ((*start | 0x20) >= 'a' && (*start | 0x20) <= 'z') ||
          (*start == '*' && p - start == 1)))
        return head_fail(&h, p, 400, "invalid request-target");
    /* asterisk-form is for a server-wide OPTIONS only (RFC 9112 3.2.4). */
    if (*start == '*' &&
        !(req->method.len == 7 && memcmp(req->method.ptr, "OPTIONS", 7) == 0))
        return head_fail(
            &h, p, 400,
            "asterisk-form target with a method other than OPTIONS");
    req->target.ptr = (const char *)start;
    req->target.len = (size_t)(p - start);

    /* "HTTP/" DIGIT "." DIGIT: case-sensitive, one digit each (RFC 9112 2.3) */
    p++;
    for (const char *v = "HTTP/"; *v; v++, p++) {
        if (p == end)
            return head_more(&h, p);
        if (*p != (unsigned char)*v)
            return head_fail(&h, p, 400,
                             *p == ' ' ? "more than one space in request line"
                                       : "invalid HTTP version");
    }
    if (p == end)
        return head_more(&h, p);
    if (*p < '0' || *p > '9')
        return head_fail(&h, p, 400, "invalid HTTP version");
    major = *p++ - '0';
    if (p == end)
        return head_more(&h, p);
    if (*p != '.')
        return head_fail(&h, p, 400, "invalid HTTP version");
    if (++p == end)
        return head_more(&h, p);
    if (*p < '0' || *p > '9')
        return head_fail(&h, p, 400, "invalid HTTP version");
    minor = *p++ - '0';
    if (p == end)
        return head_more(&h, p);
    if (*p != '\r')
        return head_fail(&h, p, 400,
                         *p == '\n' ? "bare LF" : "invalid HTTP version");
    if (++p == end)
        return head_more(&h, p);
    if (*p != '\n')
        return head_fail(&h, p, 400, "bare CR");
    if (major != 1)
        return head_fail(&h, p, 505, "HTTP version not supported");
    /* RFC 9110 2.5: a higher minor version is processed as the highest we
     * implement. */
    req->minor_version = minor > 0;
    p++;

    /* *( field-line CRLF ) CRLF (RFC 9112 5): obs-fold is an error in a
     * request (400 is allowed by RFC 9112 5.2, and safest for smuggling). */
    {
        fields_state fs = {req->headers, req->max_headers, 0, 0, 0,
                           NULL, NULL};
        int n = parse_fields(b, p, end, 0, &fs);
        req->num_headers = fs.num_headers;
        return head_end(&h, n, &fs);
    }
}

/* ------------------------------------------------------------------------ */
/* Response head */

int gust__http1_parse_response(const char *buf, size_t len, size_t prev_len,
                               size_t max_head, unsigned flags,
                               gust__http1_response *resp)
{
    head_ctx h;
    int major, status = 0;

    if (!head_begin(&h, buf, len, prev_len, max_head, "response head too large",
                    &resp->error_status, &resp->error_reason,
                    &resp->error_offset))
        return GUST_HTTP1_INCOMPLETE;
    const unsigned char *b = h.b, *p = b, *end = h.end, *start;
    resp->num_headers = 0;
    resp->num_folded = 0;

    /* HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 2.3); no empty line
     * before it: unlike a server, a client has no reason to expect one. */
    for (const char *v = "HTTP/"; *v; v++, p++) {
        if (p == end)
            return head_more(&h, p);
        if (*p != (unsigned char)*v)
            return head_fail(&h, p, 400,
                             *p == '\n' ? "bare LF" : "invalid HTTP version");
    }
    if (p == end)
        return head_more(&h, p);
    if (*p < '0' || *p > '9')
        return head_fail(&h, p, 400, "invalid HTTP version");
    major = *p++ - '0';
    if (p == end)
        return head_more(&h, p);
    if (*p != '.')
        return head_fail(&h, p, 400, "invalid HTTP version");
    if (++p == end)
        return head_more(&h, p);
    if (*p < '0' || *p > '9')
        return head_fail(&h, p, 400, "invalid HTTP version");
    resp->minor_version = *p++ - '0';
    if (p == end)
        return head_more(&h, p);
    if (*p != ' ')
        return head_fail(&h, p, 400, "invalid HTTP version");
    if (major != 1)
        return head_fail(&h, p, 505, "HTTP version not supported");

    /* status-code = 3DIGIT, from 100 (RFC 9110 15) */
    for (int i = 0; i < 3; i++) {
        if (++p == end)
            return head_more(&h, p);
        if (*p < '0' || *p > '9' || (i == 0 && *p == '0'))
            return head_fail(&h, p, 400, "invalid status code");
        status = status * 10 + (*p - '0');
    }
    if (++p == end)
        return head_more(&h, p);
    /* SP [ reason-phrase ]: the SP may be missing too ("HTTP/1.1 200"),
     * which servers send and which is unambiguous. */
    if (*p == ' ') {
        p++;
    } else if (*p != '\r') {
        return head_fail(&h, p, 400,
                         *p == '\n' ? "bare LF" : "invalid status code");
    }
    start = p;
    p = scan_value(p, end);
    if (p == end)
        return head_more(&h, p);
    if (*p != '\r')
        return head_fail(&h, p, 400,
                         *p == '\n' ? "bare LF"
                                    : "invalid character in reason phrase");
    resp->reason.ptr = (const char *)start;
    resp->reason.len = (size_t)(p - start);
    if (++p == end)
        return head_more(&h, p);
    if (*p != '\n')
        return head_fail(&h, p, 400, "bare CR");
    resp->status = status;
    p++;

    /* The same field rules as a request, obs-fold aside (RFC 9112 5.2). */
    {
        fields_state fs = {resp->headers, resp->max_headers, 0, 0, 0, NULL,
                           NULL};
        int n = flags & GUST_HTTP1_FIELDS_OBS_FOLD
                    ? parse_fields(b, p, end, GUST_HTTP1_FIELDS_OBS_FOLD, &fs)
                    : parse_fields(b, p, end, 0, &fs);
        resp->num_headers = fs.num_headers;
        resp->num_folded = fs.num_folded;
        return head_end(&h, n, &fs);
    }
}

/* ------------------------------------------------------------------------ */
/* Body framing */

static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* Case-insensitive equality of s and a lowercase literal. */
static bool slice_is(const char *s, size_t len, const char *lit, size_t lit_len)
{
    if (len != lit_len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (lower((unsigned char)s[i]) != (unsigned char)lit[i])
            return false;
    return true;
}

#define SLICE_IS(s, lit) slice_is((s).ptr, (s).len, lit, sizeof(lit) - 1)

/* Walks a #rule list (RFC 9110 5.6.1): returns the next non-empty element
 * with OWS trimmed, or false at the end. Empty elements are skipped, as the
 * RFC requires of recipients. */
static bool list_next(const char **pos, const char *end, gust__http1_slice *elem)
{
    const char *p = *pos, *e;

    while (p < end && (*p == ',' || IS_OWS(*p)))
        p++;
    if (p == end)
        return false;
    elem->ptr = p;
    while (p < end && *p != ',')
        p++;
    for (e = p; IS_OWS(e[-1]); e--)
        ;
    elem->len = (size_t)(e - elem->ptr);
    *pos = p;
    return true;
}

/* Length of the token at the start of s (0 when s starts with a non-tchar). */
static size_t token_len(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len &&
           (gust__http1_cc[(unsigned char)s[i]] & GUST__HTTP1_C_TCHAR))
        i++;
    return i;
}

static int framing_fail(gust__http1_framing *out, int status, const char *reason)
{
    out->error_status = status;
    out->error_reason = reason;
    return GUST_HTTP1_ERROR;
}

/* Content-Length = 1*DIGIT (RFC 9110 8.6). A list of equal values ("5, 5",
 * as some intermediaries produce) is accepted as one; anything else, even
 * "+5" or an empty member, is an error. Merges into *value / *seen. */
const char *gust__http1_parse_content_length(gust__http1_slice v, uint64_t *value,
                                           bool *seen)
{
    const char *p = v.ptr, *end = v.ptr + v.len;

    for (;;) {
        uint64_t n = 0;
        const char *digits = p;

        while (p < end && *p >= '0' && *p <= '9') {
            uint64_t d = (uint64_t)(*p++ - '0');
            /* checked before multiplying: n * 10 must not wrap around */
            if (n > (GUST_HTTP1_MAX_CONTENT_LENGTH - d) / 10)
                return "Content-Length too large";
            n = n * 10 + d;
        }
        if (p == digits)
            return "invalid Content-Length";
        if (*seen && n != *value)
            return "differing Content-Length values";
        *value = n;
        *seen = true;
        while (p < end && IS_OWS(*p))
            p++;
        if (p == end)
            return NULL;
        if (*p != ',')
            return "invalid Content-Length";
        p++;
        while (p < end && IS_OWS(*p))
            p++;
    }
}

/* Transfer-Encoding, over every field of that name: several fields form
 * one list, in order (RFC 9110 5.3). */
typedef struct te_list {
    bool seen;          /* a Transfer-Encoding field */
    bool chunked_last;  /* the last coding so far is chunked, no parameters */
    bool other;         /* a coding other than chunked */
    const char *error;  /* why the list is not acceptable in a request */
} te_list;

/* transfer-coding = token *( OWS ";" OWS parameter ). Every member is
 * looked at even after an error, since a response needs the final one. */
static void te_list_add(te_list *te, gust__http1_slice v)
{
    const char *p = v.ptr, *end = p + v.len;
    gust__http1_slice e;

    te->seen = true;
    while (list_next(&p, end, &e)) {
        size_t n = token_len(e.ptr, e.len), k = n;
        bool chunked = slice_is(e.ptr, n, "chunked", 7);

        while (k < e.len && IS_OWS(e.ptr[k]))
            k++;
        if (te->error)
            ;
        else if (n == 0 || (k < e.len && e.ptr[k] != ';'))
            te->error = "invalid Transfer-Encoding";
        else if (te->chunked_last)
            te->error = "chunked is not the final transfer coding";
        else if (chunked && n != e.len)
            te->error = "parameters on chunked coding";
        te->chunked_last = chunked && n == e.len;
        if (!chunked)
            te->other = true;
    }
}

/* Connection tokens (RFC 9110 7.6.1). Returns false on a member that is not
 * a token (the request rule; responses ignore it). */
static bool connection_list(gust__http1_slice v, gust__http1_framing *out)
{
    const char *p = v.ptr, *end = p + v.len;
    gust__http1_slice e;
    bool ok = true;

    while (list_next(&p, end, &e)) {
        if (token_len(e.ptr, e.len) != e.len)
            ok = false;
        else if (SLICE_IS(e, "close"))
            out->connection_close = 1;
        else if (SLICE_IS(e, "keep-alive"))
            out->connection_keep_alive = 1;
        else if (SLICE_IS(e, "upgrade"))
            out->connection_upgrade = 1;
    }
    return ok;
}

/* RFC 9112 9.3: HTTP/1.1 persists unless "close"; HTTP/1.0 only with
 * "keep-alive". */
static unsigned char keep_alive(int minor_version, const gust__http1_framing *f)
{
    return minor_version >= 1 ? !f->connection_close
                              : f->connection_keep_alive && !f->connection_close;
}

int gust__http1_request_framing(const gust__http1_request *req,
                                gust__http1_framing *out)
{
    bool has_cl = false;
    te_list te = {false, false, false, NULL};
    unsigned hosts = 0;
    uint64_t cl = 0;

    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < req->num_headers; i++) {
        const gust__http1_header *h = &req->headers[i];
        const char *p = h->value.ptr, *end = p + h->value.len;
        gust__http1_slice e;

        switch (h->name.len) {
        case 4:
            if (!SLICE_IS(h->name, "host"))
                break;
            if (++hosts > 1)
                return framing_fail(out, 400, "more than one Host field");
            for (size_t k = 0; k < h->value.len; k++)
                if (!(gust__http1_cc[(unsigned char)p[k]] & GUST__HTTP1_C_HOST))
                    return framing_fail(out, 400, "invalid Host value");
            out->host = h->value;
            break;
        case 6:
            /* RFC 9110 10.1.1: expectations in HTTP/1.0 are ignored */
            if (!SLICE_IS(h->name, "expect") || req->minor_version == 0)
                break;
            while (list_next(&p, end, &e)) {
                if (SLICE_IS(e, "100-continue"))
                    out->expect_continue = 1;
                else
                    out->expect_other = 1;
            }
            break;
        case 10:
            if (!SLICE_IS(h->name, "connection"))
                break;
            if (!connection_list(h->value, out))
                return framing_fail(out, 400, "invalid Connection value");
            break;
        case 14: {
            const char *err;
            if (!SLICE_IS(h->name, "content-length"))
                break;
            if ((err = gust__http1_parse_content_length(h->value, &cl, &has_cl)) != NULL)
                return framing_fail(out, 400, err);
            break;
        }
        case 17:
            if (!SLICE_IS(h->name, "transfer-encoding"))
                break;
            te_list_add(&te, h->value);
            if (te.error)
                return framing_fail(out, 400, te.error);
            break;
        default:
            break;
        }
    }

    if (te.seen) {
        /* RFC 9112 6.1: Transfer-Encoding in 1.0 means faulty framing; with
         * Content-Length it is the classic smuggling vector: reject both. */
        if (req->minor_version == 0)
            return framing_fail(out, 400, "Transfer-Encoding in HTTP/1.0");
        if (has_cl)
            return framing_fail(out, 400,
                                "both Transfer-Encoding and Content-Length");
        if (!te.chunked_last)
            return framing_fail(out, 400,
                                "chunked is not the final transfer coding");
        if (te.other)
            return framing_fail(out, 501, "transfer coding not implemented");
        out->body = GUST_HTTP1_BODY_CHUNKED;
    } else if (has_cl) {
        out->body = GUST_HTTP1_BODY_LENGTH;
        out->content_length = cl;
    }
    if (hosts == 0 && req->minor_version == 1)
        return framing_fail(out, 400, "missing Host field");
    out->keep_alive = keep_alive(req->minor_version, out);
    return 0;
}

int gust__http1_response_framing(const gust__http1_response *resp,
                                 gust__http1_slice method,
                                 gust__http1_framing *out)
{
    bool has_cl = false;
    te_list te = {false, false, false, NULL};
    const char *cl_error = NULL;
    uint64_t cl = 0;
    int status = resp->status;

    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < resp->num_headers; i++) {
        const gust__http1_header *h = &resp->headers[i];

        if (h->name.len == 10 && SLICE_IS(h->name, "connection"))
            (void)connection_list(h->value, out);
        else if (h->name.len == 14 && SLICE_IS(h->name, "content-length") &&
                 !cl_error)
            cl_error = gust__http1_parse_content_length(h->value, &cl, &has_cl);
        else if (h->name.len == 17 && SLICE_IS(h->name, "transfer-encoding"))
            te_list_add(&te, h->value);
    }
    out->keep_alive = keep_alive(resp->minor_version, out);

    /* RFC 9112 6.3 items 1 and 2: these never have a body, whatever the
     * fields say. */
    if ((method.len == 4 && memcmp(method.ptr, "HEAD", 4) == 0) ||
        status < 200 || status == 204 || status == 304 ||
        (status < 300 && method.len == 7 && memcmp(method.ptr, "CONNECT", 7) == 0))
        return 0;
    if (te.seen) {
        /* Item 3: chunked last, else until close; Transfer-Encoding wins
         * over Content-Length, but such a response (or one in 1.0, RFC
         * 9112 6.1) may be a smuggling attempt: not reused. */
        out->body = te.chunked_last ? GUST_HTTP1_BODY_CHUNKED
                                    : GUST_HTTP1_BODY_CLOSE;
        if (has_cl || cl_error || resp->minor_version == 0)
            out->keep_alive = 0;
    } else if (cl_error) {
        /* Item 5: an invalid length is unrecoverable, never a guess. */
        return framing_fail(out, 400, cl_error);
    } else if (has_cl) {
        out->body = GUST_HTTP1_BODY_LENGTH;
        out->content_length = cl;
    } else {
        out->body = GUST_HTTP1_BODY_CLOSE; /* item 8 */
    }
    if (out->body == GUST_HTTP1_BODY_CLOSE)
        out->keep_alive = 0;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Chunked body: chunk-size [ chunk-ext ] CRLF chunk-data CRLF ... last-chunk
 * trailer-section CRLF (RFC 9112 7.1). One state per position in that
 * grammar; only chunk-data is handled in bulk. */

enum {
    CH_SIZE,            /* chunk-size HEXDIGs */
    CH_EXT_NAME_START,  /* after ';' */
    CH_EXT_NAME,
    CH_EXT_VALUE_START, /* after '=' */
    CH_EXT_VALUE_TOKEN,
    CH_EXT_QUOTED,
    CH_EXT_QUOTED_PAIR,
    CH_EXT_QUOTED_END,  /* after the closing DQUOTE */
    CH_SIZE_LF,
    CH_DATA,
    CH_DATA_CR,
    CH_DATA_LF,
    CH_TRAILER_START,   /* at the start of a trailer line or the final CRLF */
    CH_TRAILER_NAME,
    CH_TRAILER_VALUE,
    CH_TRAILER_LF,
    CH_END_LF,
    CH_DONE,
    CH_ERROR
};

void gust__http1_chunked_init(gust__http1_chunked *st, uint64_t max_body,
                              size_t max_trailer)
{
    memset(st, 0, sizeof *st);
    st->state = CH_SIZE;
    st->max_body = max_body;
    st->max_trailer = max_trailer;
}

/* The decoder's one way out on an error: the data decoded before it (out
 * bytes at the start of the buffer) still counts, as on the other exits. */
static ssize_t chunked_fail(gust__http1_chunked *st, size_t *data_len,
                            size_t out, int status, const char *reason)
{
    *data_len = out;
    st->state = CH_ERROR;
    st->error_status = status;
    st->error_reason = reason;
    return GUST_HTTP1_ERROR;
}

ssize_t gust__http1_chunked_decode(gust__http1_chunked *st, char *buf,
                                   size_t len, size_t *data_len)
{
    size_t i = 0, out = 0;
    ssize_t rc;

    *data_len = 0;
    if (st->state == CH_DONE)
        return 0;
    if (st->state == CH_ERROR)
        return GUST_HTTP1_ERROR;

    while (i < len) {
        unsigned char c;

        if (st->state == CH_DATA) {
            size_t n = len - i;
            if (n > st->remaining)
                n = (size_t)st->remaining;
            if (out != i)
                memmove(buf + out, buf + i, n);
            out += n;
            i += n;
            st->remaining -= n;
            if (st->remaining == 0)
                st->state = CH_DATA_CR;
            continue;
        }
        c = (unsigned char)buf[i++];
        if (st->state < CH_DATA && ++st->line_len > GUST_HTTP1_MAX_CHUNK_LINE)
            return chunked_fail(st, data_len, out, 400,
                                "chunk-size line too long");
        if (st->state >= CH_TRAILER_START && ++st->trailer_len > st->max_trailer)
            return chunked_fail(st, data_len, out, 431,
                                "trailer section too large");

        switch (st->state) {
        case CH_SIZE:
            if (gust__http1_cc[c] & GUST__HTTP1_C_HEX) {
                unsigned d = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;
                if (st->remaining > GUST_HTTP1_MAX_CHUNK_SIZE >> 4)
                    return chunked_fail(st, data_len, out, 400,
                                        "chunk size too large");
                st->remaining = st->remaining << 4 | d;
                if (st->remaining > GUST_HTTP1_MAX_CHUNK_SIZE)
                    return chunked_fail(st, data_len, out, 400,
                                        "chunk size too large");
                st->seen_digit = 1;
            } else if (!st->seen_digit) {
                return chunked_fail(st, data_len, out, 400,
                                    "invalid chunk size");
            } else if (c == ';' || c == '\r') {
                /* Only a size read to its end is weighed against max_body:
                 * one that overflows is malformed (400), not large (413). */
                if (st->remaining > st->max_body - st->total)
                    return chunked_fail(st, data_len, out, 413,
                                        "body too large");
                st->state = c == ';' ? CH_EXT_NAME_START : CH_SIZE_LF;
            } else {
                /* "5 ;x" is BWS, which no sender may generate: refused. */
                return chunked_fail(st, data_len, out, 400,
                                    "invalid chunk size");
            }
            break;
        case CH_EXT_NAME_START:
            if (!(gust__http1_cc[c] & GUST__HTTP1_C_TCHAR))
                return chunked_fail(st, data_len, out, 400,
                                    "invalid chunk extension");
            st->state = CH_EXT_NAME;
            break;
        case CH_EXT_NAME:
        case CH_EXT_VALUE_TOKEN:
            if (gust__http1_cc[c] & GUST__HTTP1_C_TCHAR)
                break;
            if (c == '=' && st->state == CH_EXT_NAME)
                st->state = CH_EXT_VALUE_START;
            else if (c == ';')
                st->state = CH_EXT_NAME_START;
            else if (c == '\r')
                st->state = CH_SIZE_LF;
            else
                return chunked_fail(st, data_len, out, 400,
                                    "invalid chunk extension");
            break;
        case CH_EXT_VALUE_START:
            if (gust__http1_cc[c] & GUST__HTTP1_C_TCHAR)
                st->state = CH_EXT_VALUE_TOKEN;
            else if (c == '"')
                st->state = CH_EXT_QUOTED;
            else
                return chunked_fail(st, data_len, out, 400,
                                    "invalid chunk extension");
            break;
        case CH_EXT_QUOTED:
            /* qdtext = HTAB / SP / VCHAR except '"' and '\' / obs-text */
            if (c == '"')
                st->state = CH_EXT_QUOTED_END;
            else if (c == '\\')
                st->state = CH_EXT_QUOTED_PAIR;
            else if (!(gust__http1_cc[c] & GUST__HTTP1_C_VALUE))
                return chunked_fail(st, data_len, out, 400,
                                    "invalid chunk extension");
            break;
        case CH_EXT_QUOTED_PAIR:
            if (!(gust__http1_cc[c] & GUST__HTTP1_C_VALUE))
                return chunked_fail(st, data_len, out, 400,
                                    "invalid chunk extension");
            st->state = CH_EXT_QUOTED;
            break;
        case CH_EXT_QUOTED_END:
            if (c == ';')
                st->state = CH_EXT_NAME_START;
            else if (c == '\r')
                st->state = CH_SIZE_LF;
            else
                return chunked_fail(st, data_len, out, 400,
                                    "invalid chunk extension");
            break;
        case CH_SIZE_LF:
            if (c != '\n')
                return chunked_fail(st, data_len, out, 400,
                                    "bare CR in chunk-size line");
            st->state = st->remaining ? CH_DATA : CH_TRAILER_START;
            st->total += st->remaining;
            break;
        case CH_DATA_CR:
            if (c != '\r')
                return chunked_fail(st, data_len, out, 400,
                                    "missing CRLF after chunk data");
            st->state = CH_DATA_LF;
            break;
        case CH_DATA_LF:
            if (c != '\n')
                return chunked_fail(st, data_len, out, 400,
                                    "missing CRLF after chunk data");
            st->state = CH_SIZE;
            st->line_len = 0;
            st->seen_digit = 0;
            break;
        case CH_TRAILER_START:
            if (c == '\r')
                st->state = CH_END_LF;
            else if (gust__http1_cc[c] & GUST__HTTP1_C_TCHAR)
                st->state = CH_TRAILER_NAME;
            else
                return chunked_fail(st, data_len, out, 400,
                                    IS_OWS(c) ? "obs-fold in trailer section"
                                              : "invalid trailer field");
            break;
        case CH_TRAILER_NAME:
            if (c == ':')
                st->state = CH_TRAILER_VALUE;
            else if (!(gust__http1_cc[c] & GUST__HTTP1_C_TCHAR))
                return chunked_fail(st, data_len, out, 400,
                                    "invalid trailer field name");
            break;
        case CH_TRAILER_VALUE:
            if (c == '\r')
                st->state = CH_TRAILER_LF;
            else if (!(gust__http1_cc[c] & GUST__HTTP1_C_VALUE))
                return chunked_fail(st, data_len, out, 400,
                                    "invalid character in trailer field value");
            break;
        case CH_TRAILER_LF:
            if (c != '\n')
                return chunked_fail(st, data_len, out, 400,
                                    "bare CR in trailer section");
            st->state = CH_TRAILER_START;
            break;
        case CH_END_LF:
            if (c != '\n')
                return chunked_fail(st, data_len, out, 400,
                                    "bare CR at end of chunked body");
            st->state = CH_DONE;
            rc = (ssize_t)i;
            goto done;
        default:
            return chunked_fail(st, data_len, out, 400,
                                "invalid decoder state");
        }
    }
    rc = GUST_HTTP1_INCOMPLETE;
done:
    *data_len = out;
    return rc;
}
