/* permessage-deflate (RFC 7692) with zlib: negotiation of its four
 * parameters, per-message compression and bounded decompression.
 *
 * Memory: a compressor costs about 2^(window+2) + 2^(memLevel+9) bytes
 * (256 KiB at zlib's 15/8; 32 KiB at Gust's defaults, 12/5, those of
 * Python's websockets, which compress small messages as well) and a
 * decompressor about 7 KiB plus a 2^window window
 * (32 KiB). Each is made when first needed; a side without context
 * takeover frees its stream after every message, so an idle socket holds
 * only this small struct. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <zlib.h>

#include "websocket_internal.h"

struct gust__ws_deflate {
    gust__ws_deflate_params p;
    z_stream *in;  /* decompressor, NULL until needed */
    z_stream *out; /* compressor, NULL until needed */
};

/* ---- Negotiation ------------------------------------------------------------ */

/* One extension of a list: its name and parameters, as slices. */
typedef struct ext_param {
    const char *name, *value; /* value NULL: none */
} ext_param;

#define MAX_PARAMS 8

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    char *e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = 0;
    return s;
}

/* Splits one extension "name; a; b=1" (modified in place). Returns the
 * parameter count, or -1 when malformed. */
static int split_ext(char *ext, char **name, ext_param *ps)
{
    int n = 0;
    char *save = NULL;
    char *tok = strtok_r(ext, ";", &save);
    if (!tok)
        return -1;
    *name = trim(tok);
    while ((tok = strtok_r(NULL, ";", &save))) {
        if (n == MAX_PARAMS)
            return -1;
        char *eq = strchr(tok, '=');
        char *v = NULL;
        if (eq) {
            *eq = 0;
            v = trim(eq + 1);
            size_t vl = strlen(v);
            if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                v[vl - 1] = 0;
                v++;
            }
            if (!*v)
                return -1;
        }
        ps[n].name = trim(tok);
        ps[n].value = v;
        n++;
    }
    return n;
}

static int window_bits(const char *v)
{
    if (!v || strlen(v) > 2 || !v[0] || v[0] < '0' || v[0] > '9' ||
        (v[1] && (v[1] < '0' || v[1] > '9')) || (v[0] == '0'))
        return -1;
    int b = atoi(v);
    return b >= 8 && b <= 15 ? b : -1;
}

/* Server: checks one offer; fills out and resp on success. */
static bool accept_offer(ext_param *ps, int n, const gust__ws_deflate_params *want,
                         gust__ws_deflate_params *out, char *resp,
                         size_t resp_size)
{
    bool snct = false, cnct = false, smwb_seen = false, cmwb_seen = false;
    int smwb = 15, cmwb = 15;
    for (int i = 0; i < n; i++) {
        const char *k = ps[i].name, *v = ps[i].value;
        if (strcmp(k, "server_no_context_takeover") == 0) {
            if (snct || v)
                return false;
            snct = true;
        } else if (strcmp(k, "client_no_context_takeover") == 0) {
            if (cnct || v)
                return false;
            cnct = true;
        } else if (strcmp(k, "server_max_window_bits") == 0) {
            if (smwb_seen || (smwb = window_bits(v)) < 0)
                return false;
            smwb_seen = true;
        } else if (strcmp(k, "client_max_window_bits") == 0) {
            if (cmwb_seen || (v && (cmwb = window_bits(v)) < 0))
                return false;
            cmwb_seen = true;
        } else {
            return false; /* unknown parameter: decline this offer */
        }
    }
    /* zlib cannot compress with an 8-bit window (it uses 9). */
    if (smwb < 9)
        return false;
    *out = *want;
    out->enabled = true;
    out->our_no_context = want->our_no_context || snct;
    out->peer_no_context = cnct;
    int ours = want->our_window >= 9 && want->our_window <= 15
                   ? want->our_window
                   : GUST__WS_DEFAULT_WINDOW;
    out->our_window = (uint8_t)(ours < smwb ? ours : smwb);
    /* A client that can limit its window is asked for ours: our
     * decompressor then needs 2^12 bytes of window rather than 2^15. */
    out->peer_window = (uint8_t)(cmwb_seen && ours < cmwb ? ours : cmwb);
    int k = snprintf(resp, resp_size, "permessage-deflate%s%s",
                     out->our_no_context ? "; server_no_context_takeover" : "",
                     cnct ? "; client_no_context_takeover" : "");
    if (smwb_seen && k > 0 && (size_t)k < resp_size)
        k += snprintf(resp + k, resp_size - (size_t)k,
                      "; server_max_window_bits=%d", out->our_window);
    if (cmwb_seen && k > 0 && (size_t)k < resp_size)
        snprintf(resp + k, resp_size - (size_t)k, "; client_max_window_bits=%d",
                 out->peer_window);
    return true;
}

/* Client: the server's answer to our offer ("permessage-deflate;
 * client_max_window_bits"). */
static int check_response(ext_param *ps, int n, const gust__ws_deflate_params *want,
                          gust__ws_deflate_params *out)
{
    *out = *want;
    out->enabled = true;
    out->peer_window = 15;
    if (!(out->our_window >= 9 && out->our_window <= 15))
        out->our_window = GUST__WS_DEFAULT_WINDOW;
    bool seen[4] = {false, false, false, false};
    for (int i = 0; i < n; i++) {
        const char *k = ps[i].name, *v = ps[i].value;
        int idx, b = 0;
        if (strcmp(k, "server_no_context_takeover") == 0 && !v) {
            idx = 0;
            out->peer_no_context = true;
        } else if (strcmp(k, "client_no_context_takeover") == 0 && !v) {
            idx = 1;
            out->our_no_context = true;
        } else if (strcmp(k, "server_max_window_bits") == 0 &&
                   (b = window_bits(v)) > 0) {
            idx = 2;
            out->peer_window = (uint8_t)b;
        } else if (strcmp(k, "client_max_window_bits") == 0 &&
                   (b = window_bits(v)) > 0) {
            idx = 3;
            if (b < 9)
                return -1; /* we cannot honour an 8-bit window */
            if (b < out->our_window)
                out->our_window = (uint8_t)b;
        } else {
            return -1;
        }
        if (seen[idx])
            return -1;
        seen[idx] = true;
    }
    return 1;
}

int gust__ws_deflate_negotiate(const char *value, bool server,
                               const gust__ws_deflate_params *want,
                               gust__ws_deflate_params *out, char *resp,
                               size_t resp_size)
{
    char *copy = strdup(value);
    if (!copy)
        return server ? 0 : -1;
    int result = 0;
    int count = 0;
    char *save = NULL;
    for (char *ext = strtok_r(copy, ",", &save); ext;
         ext = strtok_r(NULL, ",", &save)) {
        char *name;
        ext_param ps[MAX_PARAMS];
        int n = split_ext(ext, &name, ps);
        count++;
        if (n < 0 || strcasecmp(name, "permessage-deflate") != 0) {
            if (!server) { /* we offered nothing else */
                result = -1;
                break;
            }
            continue;
        }
        if (server) {
            if (accept_offer(ps, n, want, out, resp, resp_size)) {
                result = 1;
                break;
            }
        } else {
            result = count > 1 ? -1 : check_response(ps, n, want, out);
            if (result < 0)
                break;
        }
    }
    free(copy);
    return result;
}

/* ---- Streams ------------------------------------------------------------------ */

gust__ws_deflate *gust__ws_deflate_new(const gust__ws_deflate_params *p)
{
    gust__ws_deflate *d = calloc(1, sizeof *d);
    if (d)
        d->p = *p;
    return d;
}

static void end_in(gust__ws_deflate *d)
{
    if (d->in) {
        inflateEnd(d->in);
        free(d->in);
        d->in = NULL;
    }
}

static void end_out(gust__ws_deflate *d)
{
    if (d->out) {
        deflateEnd(d->out);
        free(d->out);
        d->out = NULL;
    }
}

void gust__ws_deflate_free(gust__ws_deflate *d)
{
    if (!d)
        return;
    end_in(d);
    end_out(d);
    free(d);
}

static int grow(char **out, size_t *cap, size_t need)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    char *b = realloc(*out, c);
    if (!b)
        return -ENOMEM;
    *out = b;
    *cap = c;
    return 0;
}

static int inflate_some(gust__ws_deflate *d, const unsigned char *in,
                        size_t len, char **out, size_t *out_len,
                        size_t *out_cap, size_t max)
{
    z_stream *z = d->in;
    z->next_in = (unsigned char *)in;
    z->avail_in = (uInt)len;
    do {
        /* Room for max + 1 bytes at most: one byte over tells "too big"
         * without inflating further (a small bomb stays small). */
        size_t room_goal = *out_len + 16384;
        if (room_goal > max + 2)
            room_goal = max + 2;
        if (grow(out, out_cap, room_goal) < 0)
            return -ENOMEM;
        size_t room = *out_cap - *out_len - 1; /* keep one byte for a NUL */
        if (room > max + 1 - *out_len)
            room = max + 1 - *out_len;
        z->next_out = (unsigned char *)*out + *out_len;
        z->avail_out = (uInt)room;
        int rc = inflate(z, Z_SYNC_FLUSH);
        *out_len += room - z->avail_out;
        if (*out_len > max)
            return -EMSGSIZE;
        if (rc == Z_STREAM_END) /* a final block: nothing may follow */
            return z->avail_in ? -EINVAL : 0;
        if (rc == Z_BUF_ERROR && z->avail_in == 0)
            break;
        if (rc != Z_OK)
            return rc == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
    } while (z->avail_in > 0 || z->avail_out == 0);
    return 0;
}

int gust__ws_inflate(gust__ws_deflate *d, const char *in, size_t len,
                     bool last, char **out, size_t *out_len, size_t *out_cap,
                     size_t max)
{
    if (!d->in) {
        d->in = calloc(1, sizeof *d->in);
        if (!d->in)
            return -ENOMEM;
        int wbits = d->p.peer_window >= 8 && d->p.peer_window <= 15
                        ? d->p.peer_window
                        : 15;
        /* zlib's raw inflate takes 9..15 (an 8-bit window fits in 9). */
        if (inflateInit2(d->in, -(wbits < 9 ? 9 : wbits)) != Z_OK) {
            free(d->in);
            d->in = NULL;
            return -ENOMEM;
        }
    }
    int rc = len ? inflate_some(d, (const unsigned char *)in, len, out,
                                out_len, out_cap, max)
                 : 0;
    if (rc == 0 && last) {
        static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
        rc = inflate_some(d, tail, 4, out, out_len, out_cap, max);
    }
    if (rc < 0 || (last && d->p.peer_no_context)) {
        /* After an error the stream is unusable; without takeover it is
         * not needed between messages. */
        end_in(d);
    }
    if (rc == 0 && !*out && grow(out, out_cap, 1) < 0)
        rc = -ENOMEM;
    return rc;
}

int gust__ws_deflate_message(gust__ws_deflate *d, const char *in, size_t len,
                             char **out, size_t *out_len)
{
    if (!d->out) {
        d->out = calloc(1, sizeof *d->out);
        if (!d->out)
            return -ENOMEM;
        int level = d->p.level >= 1 && d->p.level <= 9 ? d->p.level : 6;
        int mem = d->p.mem_level >= 1 && d->p.mem_level <= 9
                      ? d->p.mem_level
                      : GUST__WS_DEFAULT_MEM_LEVEL;
        if (deflateInit2(d->out, level, Z_DEFLATED, -(int)d->p.our_window, mem,
                         Z_DEFAULT_STRATEGY) != Z_OK) {
            free(d->out);
            d->out = NULL;
            return -ENOMEM;
        }
    }
    z_stream *z = d->out;
    size_t cap = deflateBound(z, (uLong)len) + 16;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    z->next_in = (unsigned char *)in;
    z->avail_in = (uInt)len;
    size_t used = 0;
    for (;;) {
        z->next_out = (unsigned char *)buf + used;
        z->avail_out = (uInt)(cap - used);
        int rc = deflate(z, Z_SYNC_FLUSH);
        used = cap - z->avail_out;
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            free(buf);
            end_out(d);
            return -ENOMEM;
        }
        if (z->avail_out > 0)
            break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            return -ENOMEM;
        }
        buf = nb;
        cap *= 2;
    }
    /* The flush ends with 00 00 ff ff, which the receiver adds back. */
    if (used >= 4 && memcmp(buf + used - 4, "\x00\x00\xff\xff", 4) == 0)
        used -= 4;
    if (used == 0) /* an empty message: one empty stored block */
        buf[used++] = 0;
    if (d->p.our_no_context)
        end_out(d);
    *out = buf;
    *out_len = used;
    return 0;
}

size_t gust__ws_deflate_footprint(const gust__ws_deflate *d)
{
    size_t n = sizeof *d;
    if (d->in)
        n += sizeof *d->in + 7 * 1024 + (1u << (d->p.peer_window ? d->p.peer_window : 15));
    if (d->out)
        n += sizeof *d->out + (1u << (d->p.our_window + 2)) +
             (1u << ((d->p.mem_level ? d->p.mem_level
                                     : GUST__WS_DEFAULT_MEM_LEVEL) + 9));
    return n;
}
