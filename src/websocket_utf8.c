/* Incremental UTF-8 validation (RFC 3629) that fails at the first byte that
 * cannot lead to a valid sequence: overlong forms, surrogates and code
 * points over U+10FFFF are caught at their second byte, as RFC 6455
 * section 8.1 wants for text split across frames. */
#include <string.h>

#include "websocket_internal.h"

bool gust__utf8_feed(gust__utf8 *u, const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (u->need == 0) {
            /* ASCII runs, 8 bytes at a time. */
            while (i + 8 <= n) {
                uint64_t w;
                memcpy(&w, s + i, 8);
                if (w & 0x8080808080808080ull)
                    break;
                i += 8;
            }
            if (i >= n)
                break;
            uint8_t c = s[i++];
            if (c < 0x80)
                continue;
            if (c < 0xC2)
                return false; /* continuation byte, or overlong 2-byte */
            if (c < 0xE0) {
                u->need = 1, u->lo = 0x80, u->hi = 0xBF;
            } else if (c < 0xF0) {
                u->need = 2;
                u->lo = c == 0xE0 ? 0xA0 : 0x80; /* overlong */
                u->hi = c == 0xED ? 0x9F : 0xBF; /* surrogates */
            } else if (c < 0xF5) {
                u->need = 3;
                u->lo = c == 0xF0 ? 0x90 : 0x80; /* overlong */
                u->hi = c == 0xF4 ? 0x8F : 0xBF; /* over U+10FFFF */
            } else {
                return false;
            }
            continue;
        }
        uint8_t c = s[i++];
        if (c < u->lo || c > u->hi)
            return false;
        u->need--;
        u->lo = 0x80, u->hi = 0xBF;
    }
    return true;
}

bool gust__utf8_valid(const void *s, size_t n)
{
    gust__utf8 u = {0, 0, 0};
    return gust__utf8_feed(&u, s, n) && gust__utf8_complete(&u);
}
