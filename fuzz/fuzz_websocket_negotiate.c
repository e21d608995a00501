/* libFuzzer target: the permessage-deflate negotiation parser
 * (websocket_deflate.c), which reads Sec-WebSocket-Extensions from the
 * network on both sides. The input is the header value. The server's
 * answer, when it accepts, must be one extension that a client parses back
 * as valid, and the parameters must stay in their ranges. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "websocket_internal.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    char *v = malloc(size + 1);
    if (!v)
        return 0;
    memcpy(v, data, size);
    v[size] = 0;
    gust__ws_deflate_params want = {.enabled = true};
    gust__ws_deflate_params out;
    char resp[160];
    int rc = gust__ws_deflate_negotiate(v, true, &want, &out, resp, sizeof resp);
    CHECK(rc == 0 || rc == 1);
    if (rc == 1) {
        CHECK(strlen(resp) < sizeof resp);
        CHECK(strncmp(resp, "permessage-deflate", 18) == 0);
        CHECK(out.our_window >= 9 && out.our_window <= 15);
        CHECK(out.peer_window >= 8 && out.peer_window <= 15);
        gust__ws_deflate_params back;
        int crc = gust__ws_deflate_negotiate(resp, false, &want, &back, NULL, 0);
        if (!strstr(resp, "client_max_window_bits=8"))
            CHECK(crc == 1);
    }
    rc = gust__ws_deflate_negotiate(v, false, &want, &out, NULL, 0);
    CHECK(rc >= -1 && rc <= 1);
    if (rc == 1)
        CHECK(out.our_window >= 9 && out.our_window <= 15);
    free(v);
    return 0;
}
