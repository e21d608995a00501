/* WebSocket frames (RFC 6455 section 5): an incremental header parser that
 * unmasks payloads in place, and the header writer. */
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "websocket_internal.h"

void gust__ws_parser_init(gust__ws_parser *p, bool expect_masked,
                          unsigned rsv_allowed)
{
    memset(p, 0, sizeof *p);
    p->mask_masked = expect_masked;
    p->rsv_allowed = (uint8_t)rsv_allowed;
}

void gust__ws_unmask(char *buf, size_t len, const uint8_t mask[4],
                     uint32_t pos)
{
    uint8_t m[8];
    for (int i = 0; i < 8; i++)
        m[i] = mask[(pos + (uint32_t)i) & 3];
    uint64_t w;
    memcpy(&w, m, 8);
    size_t i = 0;
    /* memcpy loads and stores compile to plain moves: any alignment. */
    for (; i + 32 <= len; i += 32) {
        uint64_t a, b, c, d;
        memcpy(&a, buf + i, 8);
        memcpy(&b, buf + i + 8, 8);
        memcpy(&c, buf + i + 16, 8);
        memcpy(&d, buf + i + 24, 8);
        a ^= w, b ^= w, c ^= w, d ^= w;
        memcpy(buf + i, &a, 8);
        memcpy(buf + i + 8, &b, 8);
        memcpy(buf + i + 16, &c, 8);
        memcpy(buf + i + 24, &d, 8);
    }
    for (; i + 8 <= len; i += 8) {
        uint64_t a;
        memcpy(&a, buf + i, 8);
        a ^= w;
        memcpy(buf + i, &a, 8);
    }
    for (; i < len; i++)
        buf[i] = (char)(buf[i] ^ m[i & 7]);
}

/* Header length once its first two bytes are known. */
static unsigned header_len(const uint8_t *h)
{
    unsigned n = 2;
    unsigned l7 = h[1] & 0x7f;
    if (l7 == 126)
        n += 2;
    else if (l7 == 127)
        n += 8;
    if (h[1] & 0x80)
        n += 4;
    return n;
}

static int decode_header(gust__ws_parser *p)
{
    const uint8_t *h = p->hdr;
    p->fin = h[0] & 0x80;
    p->rsv = h[0] & 0x70;
    p->opcode = h[0] & 0x0f;
    p->masked = (h[1] & 0x80) != 0;
    unsigned l7 = h[1] & 0x7f;
    unsigned at = 2;
    uint64_t len = l7;
    if (l7 == 126) {
        len = (uint64_t)h[2] << 8 | h[3];
        at = 4;
    } else if (l7 == 127) {
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | h[2 + i];
        at = 10;
        if (len >> 63)
            return -1002;
    }
    if (p->masked)
        memcpy(p->mask, h + at, 4);
    if (p->rsv & ~p->rsv_allowed)
        return -1002;
    switch (p->opcode) {
    case 0x0: case 0x1: case 0x2:
        break;
    case 0x8: case 0x9: case 0xA:
        if (!p->fin || len > 125)
            return -1002;
        break;
    default:
        return -1002; /* reserved opcode */
    }
    if (p->masked != (p->mask_masked != 0))
        return -1002;
    p->len = p->left = len;
    p->mask_pos = 0;
    p->in_payload = 1;
    return 0;
}

int gust__ws_parse(gust__ws_parser *p, char *buf, size_t len, size_t *used,
                   char **chunk, size_t *clen)
{
    size_t pos = 0;
    if (!p->in_payload) {
        /* A whole header in the input (the usual case): one copy. */
        if (p->hlen == 0 && len >= 2) {
            unsigned hl = header_len((const uint8_t *)buf);
            if (len >= hl) {
                memcpy(p->hdr, buf, hl);
                *used = hl;
                int rc = decode_header(p);
                return rc < 0 ? rc : GUST__WS_HEADER;
            }
        }
        while (pos < len) {
            p->hdr[p->hlen++] = (uint8_t)buf[pos++];
            if (p->hlen >= 2 && p->hlen == header_len(p->hdr))
                break;
        }
        if (p->hlen < 2 || p->hlen != header_len(p->hdr)) {
            *used = pos;
            return GUST__WS_NEED;
        }
        *used = pos;
        p->hlen = 0;
        int rc = decode_header(p);
        if (rc < 0)
            return rc;
        return GUST__WS_HEADER;
    }
    size_t take = len < p->left ? len : (size_t)p->left;
    if (take == 0 && p->left) {
        *used = 0;
        return GUST__WS_NEED;
    }
    if (p->masked && take) {
        gust__ws_unmask(buf, take, p->mask, p->mask_pos);
        p->mask_pos = (uint32_t)((p->mask_pos + take) & 3);
    }
    p->left -= take;
    if (p->left == 0)
        p->in_payload = 0;
    *chunk = buf;
    *clen = take;
    *used = take;
    return GUST__WS_DATA;
}

size_t gust__ws_write_header(uint8_t *out, unsigned first, uint64_t len,
                             const uint8_t *mask)
{
    size_t n = 2;
    out[0] = (uint8_t)first;
    uint8_t mbit = mask ? 0x80 : 0;
    if (len < 126) {
        out[1] = (uint8_t)(mbit | len);
    } else if (len <= 0xffff) {
        out[1] = mbit | 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        n = 4;
    } else {
        out[1] = mbit | 127;
        for (int i = 0; i < 8; i++)
            out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
        n = 10;
    }
    if (mask) {
        memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

bool gust__ws_close_code_valid(int code)
{
    /* 1004-1006 and 1015 are reserved for reporting, never sent; 1012-1014
     * are registered with IANA since the RFC; 3000-4999 are for libraries
     * and applications. */
    if (code >= 1000 && code <= 1003)
        return true;
    if (code >= 1007 && code <= 1014)
        return true;
    return code >= 3000 && code <= 4999;
}

bool gust__ws_list_has(const char *v, size_t len, const char *token)
{
    size_t tl = strlen(token);
    const char *p = v, *end = v ? v + len : v;
    while (p && p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0)
            return true;
    }
    return false;
}

void gust__ws_accept_key(const char *key, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char buf[24 + sizeof guid];
    memcpy(buf, key, 24);
    memcpy(buf + 24, guid, sizeof guid - 1);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(buf, sizeof buf - 1, md, &mdlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}
