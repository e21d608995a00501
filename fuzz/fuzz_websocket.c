/* libFuzzer target: the WebSocket frame parser and message assembly
 * (websocket_frame.c, _utf8.c, _deflate.c). The first input byte picks the
 * role (bit 0: server, frames must be masked) and permessage-deflate (bit
 * 1: RSV1 allowed, compressed messages inflated with a 256 KiB bound); the
 * rest is the byte stream from the peer. It is parsed whole, then again in
 * pieces whose sizes come from a PRNG seeded by the input, each piece in a
 * heap block of exactly its size (so any over-read is caught); both runs
 * must give the same messages and the same outcome. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "websocket_internal.h"
#include "fuzz.h"

#define MAX_MSG (256 * 1024)

struct run {
    int outcome;          /* 0 or the close code the connection fails with */
    uint64_t digest;      /* of every message and control frame */
    size_t messages;
};

static void mix(struct run *r, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        r->digest = (r->digest ^ b[i]) * 0x100000001b3ull;
}

struct conn {
    gust__ws_parser p;
    gust__utf8 u;
    gust__ws_deflate *z;
    int msg_op;
    bool compressed;
    char *msg;
    size_t len, cap;
    uint8_t ctl[128];
    size_t ctl_len;
};

static int data_chunk(struct conn *c, struct run *r, const char *chunk,
                      size_t clen, bool end)
{
    gust__ws_parser *p = &c->p;
    if (p->opcode >= 8) {
        memcpy(c->ctl + c->ctl_len, chunk, clen);
        c->ctl_len += clen;
        if (end) {
            uint8_t op = p->opcode;
            mix(r, &op, 1);
            mix(r, c->ctl, c->ctl_len);
            if (op == GUST__WS_OP_CLOSE && c->ctl_len >= 2) {
                int code = c->ctl[0] << 8 | c->ctl[1];
                if (!gust__ws_close_code_valid(code))
                    return 1002;
                if (!gust__utf8_valid(c->ctl + 2, c->ctl_len - 2))
                    return 1007;
            } else if (op == GUST__WS_OP_CLOSE && c->ctl_len == 1) {
                return 1002;
            }
            c->ctl_len = 0;
        }
        return 0;
    }
    size_t start = c->len;
    if (c->compressed) {
        int rc = gust__ws_inflate(c->z, chunk, clen, end && p->fin, &c->msg,
                                  &c->len, &c->cap, MAX_MSG);
        if (rc == -EMSGSIZE)
            return 1009;
        if (rc < 0)
            return 1002;
    } else {
        if (c->len + clen > MAX_MSG)
            return 1009;
        if (c->len + clen > c->cap) {
            size_t cap = c->cap ? c->cap : 64;
            while (cap < c->len + clen)
                cap *= 2;
            char *b = realloc(c->msg, cap);
            if (!b)
                return 1011;
            c->msg = b;
            c->cap = cap;
        }
        if (clen)
            memcpy(c->msg + c->len, chunk, clen);
        c->len += clen;
    }
    if (c->msg_op == GUST__WS_OP_TEXT && c->len > start &&
        !gust__utf8_feed(&c->u, (const uint8_t *)c->msg + start, c->len - start))
        return 1007;
    if (end && p->fin) {
        if (c->msg_op == GUST__WS_OP_TEXT && !gust__utf8_complete(&c->u))
            return 1007;
        mix(r, &c->msg_op, sizeof c->msg_op);
        if (c->len)
            mix(r, c->msg, c->len);
        r->messages++;
        c->msg_op = 0;
        c->len = 0;
    }
    return 0;
}

static int header(struct conn *c)
{
    gust__ws_parser *p = &c->p;
    if (p->opcode >= 8)
        return p->rsv ? 1002 : 0;
    if (p->opcode != GUST__WS_OP_CONT) {
        if (c->msg_op)
            return 1002;
        c->msg_op = p->opcode;
        c->compressed = p->rsv & GUST__WS_RSV1;
        c->u = (gust__utf8){0, 0, 0};
        c->len = 0;
    } else if (!c->msg_op || p->rsv) {
        return 1002;
    }
    if (!c->compressed && p->len > MAX_MSG - c->len)
        return 1009;
    return 0;
}

static void run(const uint8_t *in, size_t size, unsigned flags, uint64_t seed,
                struct run *r)
{
    struct conn c;
    memset(&c, 0, sizeof c);
    memset(r, 0, sizeof *r);
    r->digest = 14695981039346656037ull;
    bool deflate = flags & 2;
    gust__ws_parser_init(&c.p, flags & 1, deflate ? GUST__WS_RSV1 : 0);
    gust__ws_deflate_params dp = {.enabled = true, .our_window = 15,
                                  .peer_window = 15,
                                  .peer_no_context = (flags & 4) != 0};
    if (deflate)
        c.z = gust__ws_deflate_new(&dp);
    size_t at = 0;
    while (at < size || c.p.in_payload) {
        size_t len = size - at;
        if (seed && len) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            len = 1 + seed % len;
        }
        char *piece = malloc(len ? len : 1);
        memcpy(piece, in + at, len);
        size_t off = 0;
        for (;;) {
            size_t used = 0, clen = 0;
            char *chunk = NULL;
            int ev = gust__ws_parse(&c.p, piece + off, len - off, &used, &chunk,
                                    &clen);
            off += used;
            if (ev < 0) {
                r->outcome = -ev;
                break;
            }
            if (ev == GUST__WS_NEED)
                break;
            r->outcome = ev == GUST__WS_HEADER
                             ? header(&c)
                             : data_chunk(&c, r, chunk, clen, c.p.left == 0);
            if (r->outcome)
                break;
            if (off == len && (!c.p.in_payload || c.p.left))
                break;
        }
        free(piece);
        at += len;
        if (r->outcome || len == 0)
            break;
    }
    free(c.msg);
    gust__ws_deflate_free(c.z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    data++, size--;
    struct run whole, split;
    run(data, size, flags, 0, &whole);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    for (size_t i = 0; i < size && i < 16; i++)
        seed = seed * 31 + data[i];
    run(data, size, flags, seed | 1, &split);
    /* Inflated bytes come out as zlib decides for each split, so with
     * deflate a bad stream may fail as 1007 (text) in one run and 1002 (bad
     * data) or 1009 in the other; whether it fails does not change. */
    if (flags & 2)
        CHECK((whole.outcome == 0) == (split.outcome == 0));
    else
        CHECK(whole.outcome == split.outcome);
    if (whole.outcome == 0 || !(flags & 2)) {
        CHECK(whole.messages == split.messages);
        CHECK(whole.digest == split.digest);
    }
    return 0;
}
