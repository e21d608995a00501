/* Incremental multipart/form-data parser. See include/gust/http.h.
 *
 * It must accept exactly what the buffered gust_http_parse_multipart()
 * accepts, whatever the split of the body (the multipart fuzz target checks
 * this). Two facts keep the delimiter search simple: the delimiter is
 * CRLF "--" boundary, and no boundary character is CR, so a CR can only
 * start a delimiter at index 0. After a mismatch the bytes held back are
 * therefore content and matching restarts at the current byte, with no
 * back-tracking.
 *
 * The buffered parser finds a delimiter at the very start of the body
 * (no CRLF) and a part whose header lines are directly followed by a
 * delimiter (the CRLF of the last header line is also the delimiter's).
 * Both are matched here by starting the search with the CRLF already
 * "matched" but not counted as content (virtual_crlf). */
#include <errno.h>
#include <string.h>

#include "gust/http.h"
#include "http_internal.h"

enum {
    S_PREAMBLE,   /* looking for the first delimiter; bytes are dropped */
    S_AFTER,      /* just past a delimiter: "--" or padding CRLF follows */
    S_DASH,       /* saw one '-' after a delimiter */
    S_PAD,        /* transport padding before CRLF */
    S_PAD_LF,     /* saw CR after a delimiter */
    S_HEADERS,    /* gathering part header lines */
    S_BODY,       /* part content, looking for the next delimiter */
    S_CLOSE_PAD,  /* after the close delimiter: padding, then CRLF or end */
    S_CLOSE_LF,   /* saw CR after the close delimiter */
    S_EPILOGUE,   /* after the close delimiter line; bytes are dropped */
    S_FAILED
};

int gust_multipart_init(gust_multipart *mp, gust_str boundary,
                        size_t max_header, gust_arena *arena,
                        const gust_multipart_callbacks *cb, void *data)
{
    memset(mp, 0, sizeof(*mp));
    if (!gust_http_boundary_valid(boundary))
        return -EINVAL;
    static const gust_multipart_callbacks none;
    mp->cb = cb ? cb : &none;
    mp->data = data;
    mp->arena = arena;
    memcpy(mp->delim, "\r\n--", 4);
    memcpy(mp->delim + 4, boundary.ptr, boundary.len);
    mp->dlen = 4 + boundary.len;
    mp->max_header = max_header ? max_header : GUST_MULTIPART_MAX_HEADER;
    mp->state = S_PREAMBLE;
    mp->matched = 2;
    mp->virtual_crlf = 2;
    return 0;
}

static int fail(gust_multipart *mp, int code)
{
    mp->state = S_FAILED;
    mp->error = code;
    return code;
}

static int emit(gust_multipart *mp, const char *p, size_t n)
{
    if (n == 0 || mp->state != S_BODY || !mp->cb->part_data)
        return 0;
    return mp->cb->part_data(mp, p, n, mp->data);
}

/* Releases held-back bytes as content after a mismatch. */
static int release_held(gust_multipart *mp)
{
    size_t from = mp->virtual_crlf;
    size_t n = mp->matched > from ? mp->matched - from : 0;
    mp->matched = 0;
    mp->virtual_crlf = 0;
    return emit(mp, mp->delim + from, n);
}

/* Scans for the delimiter in buf[0..len) (S_PREAMBLE or S_BODY). Returns
 * the number of bytes consumed (up to the end of a delimiter when one was
 * completed, then mp->state is S_AFTER), or a negative code. */
static long scan_delimiter(gust_multipart *mp, const char *buf, size_t len)
{
    size_t i = 0, data_start = 0;
    int rc;
    while (i < len) {
        if (mp->matched == 0) {
            const char *cr = memchr(buf + i, '\r', len - i);
            if (!cr) {
                i = len;
                break;
            }
            i = (size_t)(cr - buf);
            /* Content before the CR goes out now. */
            if ((rc = emit(mp, buf + data_start, i - data_start)) < 0)
                return rc;
            mp->matched = 1;
            i++;
            data_start = i;
            continue;
        }
        if (buf[i] == mp->delim[mp->matched]) {
            mp->matched++;
            i++;
            data_start = i;
            if (mp->matched == mp->dlen) {
                int was_body = mp->state == S_BODY;
                mp->matched = 0;
                mp->virtual_crlf = 0;
                if (was_body && mp->cb->part_end &&
                    (rc = mp->cb->part_end(mp, mp->data)) < 0)
                    return rc;
                mp->state = S_AFTER;
                return (long)i;
            }
            continue;
        }
        /* Mismatch: the held bytes were content; buf[i] is looked at
         * again from scratch (it may be a CR). */
        if ((rc = release_held(mp)) < 0)
            return rc;
        data_start = i;
    }
    if ((rc = emit(mp, buf + data_start, i - data_start)) < 0)
        return rc;
    return (long)i;
}

/* The header block is hbuf[0..hlen); its empty line ends at hlen. */
static int begin_part(gust_multipart *mp, const char *hdr_end)
{
    gust__http_part_scratch sc = {mp->scratch_params, mp->scratch_cap};
    gust_str name, filename, ctype;
    int rc = gust__http_part_headers(mp->arena, mp->hbuf, hdr_end, &sc, &name,
                                     &filename, &ctype);
    mp->scratch_params = sc.params;
    mp->scratch_cap = sc.cap;
    if (rc < 0)
        return rc;
    mp->part.name = name;
    mp->part.filename = filename;
    mp->part.content_type = ctype;
    mp->part.headers = gust_str_make(mp->hbuf, (size_t)(hdr_end - mp->hbuf));
    if (mp->cb->part_begin)
        return mp->cb->part_begin(mp, &mp->part, mp->data);
    return 0;
}

/* Gathers header bytes. Returns bytes consumed or a negative code. */
static long gather_headers(gust_multipart *mp, const char *buf, size_t len)
{
    /* Copy at most up to the end of the header block: look for CRLF CRLF
     * across the old and new bytes, starting 3 bytes back. */
    size_t take = len;
    size_t room = mp->max_header - mp->hlen;
    if (take > room)
        take = room + 1 > len ? len : room + 1; /* one more to detect overflow */
    if (mp->hlen + take > mp->hcap) {
        size_t need = mp->hlen + take;
        size_t cap = mp->hcap ? mp->hcap : 256;
        while (cap < need)
            cap *= 2;
        if (cap > mp->max_header + 1)
            cap = mp->max_header + 1;
        char *p = gust_arena_realloc(mp->arena, mp->hbuf, mp->hcap, cap);
        if (!p)
            return -ENOMEM;
        mp->hbuf = p;
        mp->hcap = cap;
    }
    size_t old = mp->hlen;
    memcpy(mp->hbuf + old, buf, take);
    mp->hlen += take;
    size_t from = old >= 3 ? old - 3 : 0;
    const char *blank = memmem(mp->hbuf + from, mp->hlen - from, "\r\n\r\n", 4);
    if (!blank) {
        if (mp->hlen > mp->max_header)
            return -E2BIG;
        /* A delimiter inside the header lines makes the part malformed, as
         * for the buffered parser; so does a leading CRLF (no headers). */
        if (mp->hlen >= 2 && mp->hbuf[0] == '\r' && mp->hbuf[1] == '\n')
            return -EINVAL;
        size_t dfrom = old >= mp->dlen ? old - mp->dlen + 1 : 0;
        if (memmem(mp->hbuf + dfrom, mp->hlen - dfrom, mp->delim, mp->dlen))
            return -EINVAL;
        return (long)take;
    }
    size_t end = (size_t)(blank - mp->hbuf) + 4;
    if (end > mp->max_header)
        return -E2BIG;
    if (end == 2 || memmem(mp->hbuf, end - 2, mp->delim, mp->dlen) ||
        (mp->hbuf[0] == '\r' && mp->hbuf[1] == '\n'))
        return -EINVAL;
    int rc = begin_part(mp, mp->hbuf + end - 2);
    if (rc < 0)
        return rc;
    mp->state = S_BODY;
    mp->matched = 2;     /* the empty line's CRLF may start a delimiter */
    mp->virtual_crlf = 2;
    return (long)(take - (mp->hlen - end));
}

int gust_multipart_feed(gust_multipart *mp, const char *buf, size_t len)
{
    if (mp->state == S_FAILED)
        return mp->error;
    size_t i = 0;
    while (i < len) {
        long n;
        char c = buf[i];
        switch (mp->state) {
        case S_PREAMBLE:
        case S_BODY:
            n = scan_delimiter(mp, buf + i, len - i);
            if (n < 0)
                return fail(mp, (int)n);
            i += (size_t)n;
            continue;
        case S_AFTER:
            mp->state = c == '-' ? S_DASH : S_PAD;
            if (c == '-')
                i++;
            continue;
        case S_DASH:
            if (c != '-')
                return fail(mp, -EINVAL);
            mp->state = S_CLOSE_PAD;
            i++;
            continue;
        case S_PAD:
        case S_CLOSE_PAD:
            if (c == '\r')
                mp->state = mp->state == S_PAD ? S_PAD_LF : S_CLOSE_LF;
            else if (c != ' ' && c != '\t')
                return fail(mp, -EINVAL);
            i++;
            continue;
        case S_PAD_LF:
        case S_CLOSE_LF:
            if (c != '\n')
                return fail(mp, -EINVAL);
            if (mp->state == S_PAD_LF) {
                mp->state = S_HEADERS;
                mp->hlen = 0;
            } else {
                mp->state = S_EPILOGUE;
            }
            i++;
            continue;
        case S_HEADERS:
            n = gather_headers(mp, buf + i, len - i);
            if (n < 0)
                return fail(mp, (int)n);
            i += (size_t)n;
            continue;
        case S_EPILOGUE:
            return 0;
        default:
            return mp->error;
        }
    }
    return 0;
}

int gust_multipart_finish(gust_multipart *mp)
{
    if (mp->state == S_FAILED)
        return mp->error;
    if (mp->state == S_CLOSE_PAD || mp->state == S_EPILOGUE)
        return 0;
    return fail(mp, -EINVAL);
}
