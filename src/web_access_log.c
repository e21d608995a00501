/* The access log (Tornado's Application.log_request): the fields of a
 * finished request and the line formats built from them. Formatting is by
 * hand rather than printf: it runs for every request. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "gust/log.h"
#include "gust/process.h"
#include "http_server_contract.h"
#include "log_internal.h"
#include "metrics_internal.h"
#include "web_internal.h"

/* ---- The fields --------------------------------------------------------- */

static const char *header(gust_handler *h, gust_str name)
{
    gust_str v = gust_http_headers_get_first(&h->req->headers, name);
    return v.ptr ? gust_arena_strndup(h->req->arena, v.ptr, v.len) : NULL;
}

/* Body bytes of the response, as nginx's $body_bytes_sent: none for HEAD,
 * 1xx, 204 and 304; else the Content-Length the handler set, or what
 * finish left buffered when nothing went out before; -1 if unknown (the
 * body was flushed in parts). */
static long long body_bytes(gust_handler *h, int status)
{
    if (h->req->method_id == GUST_HTTP_HEAD || status == 204 ||
        status == 304 || (status >= 100 && status < 200))
        return 0;
    gust_str v = gust_http_headers_get_first(h->resp_headers,
                                             GUST_STR("Content-Length"));
    if (v.ptr) {
        long long n = 0;
        for (size_t i = 0; i < v.len && v.ptr[i] >= '0' && v.ptr[i] <= '9'; i++)
            n = n * 10 + (v.ptr[i] - '0');
        return n;
    }
    if (h->headers_sent || h->gzipping)
        return -1;
    return (long long)h->body_len;
}

/* Nanoseconds since the request's head was complete. One clock reading
 * for the line and the metrics, shared with the requests that ended just
 * before (metrics_internal.h). */
static uint64_t elapsed_ns_of(gust_http_request *r)
{
    uint64_t start_ns = r->start_time > 0 ? (uint64_t)(r->start_time * 1e9) : 0;
    uint64_t now_ns = gust__metrics_clock_ns(start_ns);
    gust__metrics_note_end(r, now_ns);
    return now_ns > start_ns ? now_ns - start_ns : 0;
}

/* The lengths the server measured, when uri and remote_ip are still the
 * strings it measured (an application may point them elsewhere); else 0,
 * for the formatter's strlen. */
static inline size_t uri_len_of(const gust_http_request *r)
{
    return r->uri == r->uri_len_of ? r->uri_len : 0;
}

static inline size_t remote_ip_len_of(const gust_http_request *r)
{
    return r->remote_ip == r->remote_ip_len_of ? r->remote_ip_len : 0;
}

/* headers: also Referer, User-Agent (copied into the arena), the body's
 * size and the wall-clock start, which Tornado's line does not show. */
static void fill_entry(gust_handler *h, gust_access_log_entry *e, bool headers,
                       uint64_t elapsed_ns)
{
    gust_http_request *r = h->req;
    double start = 0;
    if (headers) { /* Tornado's line has no date of its own */
        struct timeval tv;
        gettimeofday(&tv, NULL);
        start = (double)tv.tv_sec + (double)tv.tv_usec / 1e6 -
                (double)elapsed_ns / 1e9;
    }
    int status = *h->resp_status;
    *e = (gust_access_log_entry){
        .status = status,
        .method = r->method,
        .uri = r->uri,
        .version = r->version,
        .remote_ip = r->remote_ip,
        .referer = headers ? header(h, GUST_STR("Referer")) : NULL,
        .user_agent = headers ? header(h, GUST_STR("User-Agent")) : NULL,
        .bytes = headers ? body_bytes(h, status) : -1,
        .request_time_us = (elapsed_ns + 500) / 1000,
        .start_time = start,
        .handler = h->cls && h->cls->name ? h->cls->name : NULL,
        .uri_len = uri_len_of(r),
        .remote_ip_len = remote_ip_len_of(r),
    };
}

void gust_handler_access_log_entry(gust_handler *h, gust_access_log_entry *e)
{
    fill_entry(h, e, true, elapsed_ns_of(h->req));
}

int gust_access_log_level(int status)
{
    return status < 400   ? GUST_LOG_INFO
           : status < 500 ? GUST_LOG_WARNING
                          : GUST_LOG_ERROR;
}

/* ---- Formatting --------------------------------------------------------- */

/* A bounded writer: what does not fit is dropped, the end stays valid. */
typedef struct out {
    char *p, *end;
} out;

static void put(out *o, const char *s, size_t n)
{
    size_t room = (size_t)(o->end - o->p);
    if (n > room)
        n = room;
    memcpy(o->p, s, n);
    o->p += n;
}

static void put_s(out *o, const char *s) { put(o, s, strlen(s)); }
static void put_c(out *o, char c) { put(o, &c, 1); }

static void put_u(out *o, unsigned long long v)
{
    char tmp[24];
    size_t n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while (v /= 10);
    while (n)
        put_c(o, tmp[--n]);
}

/* v / 10^digits with that many decimals: 421 with 3 -> "0.421". */
static void put_fixed(out *o, unsigned long long v, int digits)
{
    unsigned long long scale = 1;
    for (int i = 0; i < digits; i++)
        scale *= 10;
    put_u(o, v / scale);
    put_c(o, '.');
    unsigned long long frac = v % scale;
    for (unsigned long long s = scale / 10; s > 0; s /= 10) {
        put_c(o, (char)('0' + frac / s));
        frac %= s;
    }
}

static const char hexdigits[] = "0123456789abcdef";

/* As Apache's %r and %{...}i: '"', '\' and bytes outside printable ASCII
 * as \xhh, so a quoted field cannot be forged. */
static void put_clf_quoted(out *o, const char *s)
{
    if (!s) {
        put_s(o, "\"-\"");
        return;
    }
    put_c(o, '"');
    for (const unsigned char *p = (const void *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            put_c(o, '\\');
            put_c(o, (char)*p);
        } else if (*p < 0x20 || *p >= 0x7f) {
            char esc[4] = {'\\', 'x', hexdigits[*p >> 4], hexdigits[*p & 15]};
            put(o, esc, 4);
        } else {
            put_c(o, (char)*p);
        }
    }
    put_c(o, '"');
}

/* Length of the valid UTF-8 sequence at p (0: not one). */
static size_t utf8_len(const unsigned char *p)
{
    if (p[0] < 0xc2 || p[0] > 0xf4)
        return 0;
    size_t n = p[0] < 0xe0 ? 2 : p[0] < 0xf0 ? 3 : 4;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] > 0x9f) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] > 0x8f))
        return 0; /* overlong, surrogate, beyond U+10FFFF */
    return n;
}

/* A JSON string (RFC 8259); bytes that are not UTF-8 become U+FFFD, so
 * that every line parses. NULL is null. */
static void put_json_string(out *o, const char *s)
{
    if (!s) {
        put_s(o, "null");
        return;
    }
    put_c(o, '"');
    for (const unsigned char *p = (const void *)s; *p;) {
        if (*p == '"' || *p == '\\') {
            put_c(o, '\\');
            put_c(o, (char)*p++);
        } else if (*p < 0x20 || *p == 0x7f) {
            char esc[6] = {'\\', 'u', '0', '0', hexdigits[*p >> 4],
                           hexdigits[*p & 15]};
            put(o, esc, 6);
            p++;
        } else if (*p < 0x80) {
            put_c(o, (char)*p++);
        } else {
            size_t n = utf8_len(p);
            if (n) {
                put(o, (const char *)p, n);
                p += n;
            } else {
                put_s(o, "\\ufffd");
                p++;
            }
        }
    }
    put_c(o, '"');
}

/* Per thread, the formatted times of one second. */
static _Thread_local time_t clf_sec = -1, iso_sec = -1;
static _Thread_local char clf_time[64], iso_time[32];

/* [10/Oct/2000:13:55:36 -0700], local time, in English whatever the
 * locale, as the format wants. */
static void put_clf_time(out *o, double t)
{
    time_t sec = (time_t)t;
    if (sec != clf_sec) {
        static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                           "May", "Jun", "Jul", "Aug",
                                           "Sep", "Oct", "Nov", "Dec"};
        struct tm tm;
        localtime_r(&sec, &tm);
        long off = tm.tm_gmtoff / 60;
        char sign = off < 0 ? '-' : '+';
        if (off < 0)
            off = -off;
        off %= 24 * 60;
        snprintf(clf_time, sizeof clf_time, "[%02d/%s/%04d:%02d:%02d:%02d %c%02d%02d]",
                 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900,
                 tm.tm_hour, tm.tm_min, tm.tm_sec, sign, (int)(off / 60),
                 (int)(off % 60));
        clf_sec = sec;
    }
    put_s(o, clf_time);
}

/* "2026-12-07T16:24:38.123456Z" (UTC, RFC 3339). */
static void put_iso_time(out *o, double t)
{
    time_t sec = (time_t)t;
    if (sec != iso_sec) {
        struct tm tm;
        gmtime_r(&sec, &tm);
        strftime(iso_time, sizeof iso_time, "%Y-%m-%dT%H:%M:%S", &tm);
        iso_sec = sec;
    }
    put_c(o, '"');
    put_s(o, iso_time);
    unsigned long long us = (unsigned long long)((t - (double)sec) * 1e6);
    if (us > 999999)
        us = 999999;
    char frac[8] = {'.'};
    for (int i = 6; i >= 1; i--, us /= 10)
        frac[i] = (char)('0' + us % 10);
    put(o, frac, 7);
    put_s(o, "Z\"");
}

static void put_or_dash(out *o, const char *s)
{
    put_s(o, s && *s ? s : "-");
}

/* Set when the line may hold bytes nobody checked (the careful way). */
static _Thread_local bool tl_unchecked;

/* "00".."99", for two digits at a time. */
static const char two_digits[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Bytes below 0x20 in a word: the high bit of each such byte (and maybe
 * of bytes above one), 0 if none. */
#define CTL64(w) (((w) - 0x2020202020202020u) & ~(w) & 0x8080808080808080u)
#define CTL32(w) (((w) - 0x20202020u) & ~(w) & 0x80808080u)

/* Copies s (n bytes: its strlen) to p, up to end; NULL if it does not
 * fit or holds a control character (the careful way replaces those). By words
 * loaded from s (the last one overlapping), checked as they go: the
 * fields are short, and checking the copy instead would load words over
 * the stores just made, which the CPU cannot forward. */
static inline char *copy_str(char *p, char *end, const char *s, size_t n)
{
    if (n > (size_t)(end - p))
        return NULL;
    if (n >= 8 && n <= 16) { /* an IPv4 address: two words, overlapping */
        uint64_t a, b;
        memcpy(&a, s, 8);
        memcpy(&b, s + n - 8, 8);
        if (CTL64(a) | CTL64(b))
            return NULL;
        memcpy(p, &a, 8);
        memcpy(p + n - 8, &b, 8);
        return p + n;
    }
    if (n > 16) {
        uint64_t w, bad = 0;
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&w, s + i, 8);
            bad |= CTL64(w);
            memcpy(p + i, &w, 8);
        }
        memcpy(&w, s + n - 8, 8);
        bad |= CTL64(w);
        memcpy(p + n - 8, &w, 8);
        return bad ? NULL : p + n;
    }
    if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        if (CTL32(a) | CTL32(b))
            return NULL;
        memcpy(p, &a, 4);
        memcpy(p + n - 4, &b, 4);
        return p + n;
    }
    for (size_t i = 0; i < n; i++) {
        if ((unsigned char)s[i] < 0x20)
            return NULL;
        p[i] = s[i];
    }
    return p + n;
}

/* Tornado's line when it surely fits (the usual case): no bound checks
 * per byte. Returns its length, or 0 to take the careful way. */
static inline __attribute__((always_inline)) size_t
tornado_fast(const gust_access_log_entry *e, bool us, char *buf, size_t size)
{
    if (!e->method || !e->uri || !e->remote_ip || e->status < 100 ||
        e->status > 999 || size < 2048)
        return 0;
    char *p = buf, *end = buf + size - 40; /* room for the time */
    unsigned st = (unsigned)e->status, hi = st / 100;
    p[0] = (char)('0' + hi);
    memcpy(p + 1, two_digits + 2 * (st - 100 * hi), 2);
    p[3] = ' ';
    p += 4;
    const char *m = e->method;
    if (m[0] == 'G' && m[1] == 'E' && m[2] == 'T' && !m[3]) {
        memcpy(p, "GET ", 4);
        p += 4;
    } else {
        if (!(p = copy_str(p, end, m, strlen(m))) || p + 2 > end)
            return 0;
        *p++ = ' ';
    }
    size_t uri_len = e->uri_len ? e->uri_len : strlen(e->uri);
    if (!(p = copy_str(p, end, e->uri, uri_len)) || p + 3 > end)
        return 0;
    memcpy(p, " (", 2);
    p += 2;
    size_t ip_len = e->remote_ip_len ? e->remote_ip_len : strlen(e->remote_ip);
    if (!(p = copy_str(p, end, e->remote_ip, ip_len)) || p + 2 > end)
        return 0;
    memcpy(p, ") ", 2);
    p += 2;
    uint64_t v = us ? e->request_time_us : (e->request_time_us + 5) / 10;
    if (!us && v < 1000) { /* under 10 ms, "d.dd" */
        unsigned d = (unsigned)v / 100;
        p[0] = (char)('0' + d);
        p[1] = '.';
        memcpy(p + 2, two_digits + 2 * ((unsigned)v - 100 * d), 2);
        p += 4;
    } else {
        char digits[24];
        size_t n = 0;
        do
            digits[n++] = (char)('0' + v % 10);
        while ((v /= 10) || (!us && n < 3)); /* "0.05": at least 3 digits */
        while (n) {
            *p++ = digits[--n];
            if (!us && n == 2)
                *p++ = '.';
        }
    }
    *p++ = us ? 'u' : 'm';
    *p++ = 's';
    *p = '\0';
    return (size_t)(p - buf);
}

size_t gust_access_log_format_line(const gust_access_log_entry *e,
                                   int format, unsigned flags, char *buf,
                                   size_t size)
{
    if (!buf || size == 0)
        return 0;
    if (format == GUST_ACCESS_LOG_TORNADO) {
        size_t n = tornado_fast(e, flags & GUST_ACCESS_LOG_MICROSECONDS, buf,
                                size);
        if (n)
            return n;
        tl_unchecked = true;
    }
    out o = {buf, buf + size - 1};
    bool us = flags & GUST_ACCESS_LOG_MICROSECONDS;
    switch (format) {
    case GUST_ACCESS_LOG_COMMON:
    case GUST_ACCESS_LOG_COMBINED:
        /* host ident authuser [date] "request" status bytes */
        put_or_dash(&o, e->remote_ip);
        put_s(&o, " - ");
        put_or_dash(&o, e->user);
        put_c(&o, ' ');
        put_clf_time(&o, e->start_time);
        put_c(&o, ' ');
        {
            /* the request line, escaped as one quoted field */
            char line[2048];
            snprintf(line, sizeof line, "%s %s %s", e->method ? e->method : "-",
                     e->uri ? e->uri : "-", e->version ? e->version : "-");
            put_clf_quoted(&o, line);
        }
        put_c(&o, ' ');
        put_u(&o, (unsigned long long)(e->status > 0 ? e->status : 0));
        put_c(&o, ' ');
        if (e->bytes > 0)
            put_u(&o, (unsigned long long)e->bytes);
        else
            put_c(&o, e->bytes == 0 ? '0' : '-');
        if (format == GUST_ACCESS_LOG_COMBINED) {
            put_c(&o, ' ');
            put_clf_quoted(&o, e->referer);
            put_c(&o, ' ');
            put_clf_quoted(&o, e->user_agent);
        }
        if (us) { /* Apache's %D */
            put_c(&o, ' ');
            put_u(&o, e->request_time_us);
        }
        break;
    case GUST_ACCESS_LOG_JSON:
        put_s(&o, "{\"time\":");
        put_iso_time(&o, e->start_time);
        put_s(&o, ",\"remote_ip\":");
        put_json_string(&o, e->remote_ip);
        put_s(&o, ",\"method\":");
        put_json_string(&o, e->method);
        put_s(&o, ",\"uri\":");
        put_json_string(&o, e->uri);
        put_s(&o, ",\"version\":");
        put_json_string(&o, e->version);
        put_s(&o, ",\"status\":");
        put_u(&o, (unsigned long long)(e->status > 0 ? e->status : 0));
        put_s(&o, ",\"bytes\":");
        if (e->bytes >= 0)
            put_u(&o, (unsigned long long)e->bytes);
        else
            put_s(&o, "null");
        put_s(&o, ",\"request_time_us\":");
        put_u(&o, e->request_time_us);
        put_s(&o, ",\"referer\":");
        put_json_string(&o, e->referer);
        put_s(&o, ",\"user_agent\":");
        put_json_string(&o, e->user_agent);
        put_s(&o, ",\"user\":");
        put_json_string(&o, e->user);
        put_s(&o, ",\"handler\":");
        put_json_string(&o, e->handler);
        put_s(&o, ",\"worker\":");
        if (gust_task_id() >= 0)
            put_u(&o, (unsigned long long)gust_task_id());
        else
            put_s(&o, "null");
        put_c(&o, '}');
        if (o.p == o.end) { /* cut short: say so rather than emit bad JSON */
            o.p = buf;
            put_s(&o, "{\"error\":\"access line too long\",\"status\":");
            put_u(&o, (unsigned long long)(e->status > 0 ? e->status : 0));
            put_c(&o, '}');
        }
        break;
    default: /* Tornado's: "200 GET /path?q (127.0.0.1) 0.42ms" */
        put_u(&o, (unsigned long long)(e->status > 0 ? e->status : 0));
        put_c(&o, ' ');
        put_or_dash(&o, e->method);
        put_c(&o, ' ');
        put_or_dash(&o, e->uri);
        put_s(&o, " (");
        put_or_dash(&o, e->remote_ip);
        put_s(&o, ") ");
        if (us) {
            put_u(&o, e->request_time_us);
            put_s(&o, "us");
        } else { /* %.2f of the milliseconds, rounded */
            put_fixed(&o, (e->request_time_us + 5) / 10, 2);
            put_s(&o, "ms");
        }
        break;
    }
    *o.p = '\0';
    return (size_t)(o.p - buf);
}

/* The module of the access lines, compared by address by the log. */
static const char access_module[] = "access";

void gust_handler_log_request(gust_handler *h)
{
    int status = *h->resp_status;
    int level = gust_access_log_level(status);
    if (level < gust_log_level())
        return;
    const gust_app_settings *s = &h->app->settings;
    uint64_t elapsed_ns = elapsed_ns_of(h->req);
    unsigned flags = s->access_log_microseconds ? GUST_ACCESS_LOG_MICROSECONDS : 0;
    bool raw = s->access_log_format != GUST_ACCESS_LOG_TORNADO;
    /* Straight into the log's buffer when it has one: no copy. */
    size_t room = GUST__LOG_MSG_MAX;
    char *dst = NULL;
    gust_access_log_entry e;
    if (!raw) {
        /* The usual line: only the fields it shows, and the fast
         * formatter, which checks every byte it copies. After a turn's
         * first line, the log's checks are skipped too. */
        char letter = level == GUST_LOG_INFO ? 'I'
                      : level == GUST_LOG_WARNING ? 'W' : 'E';
        bool fast = (dst = gust__log_begin_fast(letter, access_module));
        if (!fast)
            dst = gust__log_begin(level, access_module, false, &room);
        if (dst) {
            gust_http_request *r = h->req;
            e.status = status;
            e.method = r->method;
            e.uri = r->uri;
            e.remote_ip = r->remote_ip;
            e.uri_len = uri_len_of(r);
            e.remote_ip_len = remote_ip_len_of(r);
            e.request_time_us = (elapsed_ns + 500) / 1000;
            size_t n = tornado_fast(&e, flags & GUST_ACCESS_LOG_MICROSECONDS,
                                    dst, room);
            if (n && fast) {
                gust__log_commit_fast(dst, n);
                return;
            }
            if (n) {
                gust__log_commit(level, dst, n, true);
                return;
            }
        }
    } else {
        dst = gust__log_begin(level, access_module, true, &room);
    }
    fill_entry(h, &e, raw, elapsed_ns);
    if (dst) {
        /* The line needs no check for control characters when the fast
         * Tornado formatter saw every byte, or JSON escaped them all. */
        tl_unchecked = false;
        size_t n = gust_access_log_format_line(&e, s->access_log_format, flags,
                                               dst, room);
        int f = s->access_log_format;
        gust__log_commit(level, dst, n,
                         f == GUST_ACCESS_LOG_JSON ||
                             (f == GUST_ACCESS_LOG_TORNADO && !tl_unchecked));
        return;
    }
    char line[2048];
    size_t n = gust_access_log_format_line(&e, s->access_log_format, flags,
                                           line, sizeof line);
    if (!raw)
        gust_log_message(level, "access", line, n);
    else
        gust_log_raw_line(level, "access", line, n);
}
