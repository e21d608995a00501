/* The WebSocket codec on its own (src/websocket_frame.c, _utf8.c,
 * _deflate.c): the frame parser gives the same events for every split of
 * its input, rejects what RFC 6455 section 5.2 forbids, unmasks like the
 * byte-at-a-time definition; the UTF-8 check fails at the first impossible
 * byte; permessage-deflate negotiates, round-trips and bounds inflation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "websocket_internal.h"

/* ---- Frames ------------------------------------------------------------- */

static size_t put_frame(uint8_t *out, unsigned first, const char *payload,
                        size_t len, bool masked)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t n = gust__ws_write_header(out, first, len, masked ? mask : NULL);
    memcpy(out + n, payload, len);
    if (masked)
        for (size_t i = 0; i < len; i++)
            out[n + i] ^= mask[i & 3];
    return n + len;
}

/* Parses in pieces of the given sizes (cycled); writes a log of events. */
static int parse_log(const uint8_t *in, size_t len, size_t step, char *log,
                     size_t logsz, bool masked)
{
    gust__ws_parser p;
    gust__ws_parser_init(&p, masked, 0);
    char *buf = malloc(len ? len : 1);
    memcpy(buf, in, len);
    size_t pos = 0, lp = 0;
    log[0] = 0;
    int rc = 0;
    while (pos < len || p.in_payload) {
        size_t piece = len - pos < step ? len - pos : step;
        size_t off = 0;
        for (;;) {
            size_t used;
            char *chunk;
            size_t clen;
            int ev = gust__ws_parse(&p, buf + pos + off, piece - off, &used,
                                    &chunk, &clen);
            off += used;
            if (ev < 0) {
                rc = ev;
                goto out;
            }
            if (ev == GUST__WS_NEED)
                break;
            if (ev == GUST__WS_HEADER)
                lp += (size_t)snprintf(log + lp, logsz - lp, "[%x%s%llu]",
                                       p.opcode, p.fin ? "F" : "",
                                       (unsigned long long)p.len);
            else {
                for (size_t i = 0; i < clen && lp + 2 < logsz; i++)
                    log[lp++] = chunk[i];
                log[lp] = 0;
                if (p.left == 0)
                    lp += (size_t)snprintf(log + lp, logsz - lp, "|");
            }
            if (off == piece && !p.in_payload)
                break;
            if (off == piece && p.left)
                break;
        }
        pos += piece;
        if (piece == 0)
            break;
    }
out:
    free(buf);
    return rc;
}

static void test_split_invariance(void **state)
{
    (void)state;
    uint8_t in[4096];
    size_t n = 0;
    char big[300];
    memset(big, 'b', sizeof big);
    n += put_frame(in + n, GUST__WS_OP_TEXT, "hello", 5, true);
    n += put_frame(in + n, GUST__WS_OP_BINARY, "", 0, true);
    n += put_frame(in + n, GUST__WS_OP_TEXT, "frag", 4, true);
    in[n - 4 - 4 - 2] &= 0x7f; /* that one is not final */
    n += put_frame(in + n, GUST__WS_FIN | GUST__WS_OP_PING, "pi", 2, true);
    n += put_frame(in + n, GUST__WS_FIN | GUST__WS_OP_CONT, big, sizeof big, true);
    /* FIN bits: put_frame takes first as given; set FIN on the others. */
    static char want[2048], got[2048];
    int rc = parse_log(in, n, n, want, sizeof want, true);
    assert_int_equal(rc, 0);
    for (size_t step = 1; step < n; step++) {
        assert_int_equal(parse_log(in, n, step, got, sizeof got, true), 0);
        assert_string_equal(got, want);
    }
    assert_non_null(strstr(want, "hello|"));
    assert_non_null(strstr(want, "[9F2]pi|"));
    assert_non_null(strstr(want, "[0F300]"));
}

static void test_header_errors(void **state)
{
    (void)state;
    struct {
        uint8_t b[16];
        size_t n;
        bool masked;
    } cases[] = {
        {{0x83, 0x80, 1, 2, 3, 4}, 6, true},          /* opcode 3 */
        {{0x8b, 0x80, 1, 2, 3, 4}, 6, true},          /* opcode 0xB */
        {{0xc1, 0x80, 1, 2, 3, 4}, 6, true},          /* RSV1 */
        {{0xa1, 0x80, 1, 2, 3, 4}, 6, true},          /* RSV2 */
        {{0x91, 0x80, 1, 2, 3, 4}, 6, true},          /* RSV3 */
        {{0x09, 0x80, 1, 2, 3, 4}, 6, true},          /* fragmented ping */
        {{0x89, 0xfe, 0, 126, 1, 2, 3, 4}, 8, true},  /* ping of 126 */
        {{0x81, 0x00}, 2, true},                      /* unmasked to a server */
        {{0x81, 0x80, 1, 2, 3, 4}, 6, false},         /* masked to a client */
        {{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, 14, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char log[64];
        assert_int_equal(parse_log(cases[i].b, cases[i].n, cases[i].n, log,
                                   sizeof log, cases[i].masked), -1002);
    }
}

static void test_unmask(void **state)
{
    (void)state;
    uint8_t mask[4] = {0xde, 0xad, 0xbe, 0xef};
    char a[200], b[200];
    for (size_t len = 0; len < sizeof a; len++) {
        for (uint32_t pos = 0; pos < 4; pos++) {
            for (size_t off = 0; off < 8 && off + len <= sizeof a; off++) {
                for (size_t i = 0; i < sizeof a; i++)
                    a[i] = b[i] = (char)(i * 7 + 3);
                gust__ws_unmask(a + off, len, mask, pos);
                for (size_t i = 0; i < len; i++)
                    b[off + i] = (char)(b[off + i] ^ mask[(pos + i) & 3]);
                assert_memory_equal(a, b, sizeof a);
            }
        }
    }
}

static void test_write_header(void **state)
{
    (void)state;
    uint8_t h[14];
    assert_int_equal(gust__ws_write_header(h, 0x81, 125, NULL), 2);
    assert_int_equal(h[1], 125);
    assert_int_equal(gust__ws_write_header(h, 0x81, 126, NULL), 4);
    assert_int_equal(h[1], 126);
    assert_int_equal(h[2] << 8 | h[3], 126);
    assert_int_equal(gust__ws_write_header(h, 0x82, 65535, NULL), 4);
    assert_int_equal(gust__ws_write_header(h, 0x82, 65536, NULL), 10);
    assert_int_equal(h[1], 127);
    assert_int_equal(h[7], 1);
    uint8_t m[4] = {1, 2, 3, 4};
    assert_int_equal(gust__ws_write_header(h, 0x89, 0, m), 6);
    assert_int_equal(h[1], 0x80);
    assert_memory_equal(h + 2, m, 4);
}

static void test_close_codes(void **state)
{
    (void)state;
    int ok[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012,
                1013, 1014, 3000, 3999, 4000, 4999};
    int bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
                 5000, 65535};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++)
        assert_true(gust__ws_close_code_valid(ok[i]));
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_false(gust__ws_close_code_valid(bad[i]));
}

/* ---- UTF-8 ---------------------------------------------------------------- */

static void test_utf8(void **state)
{
    (void)state;
    const char *valid[] = {"", "plain ascii text, long enough for words",
                           "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
                           "\xf0\x9d\x84\x9e", "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf",
                           "\xed\x9f\xbf", "\xee\x80\x80", "\xc2\x80"};
    const char *invalid[] = {"\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x80\x80",
                             "\xe0\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf",
                             "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf",
                             "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff",
                             "\xfe", "a\xc3", "\xe2\x82", "\xce\xba\xed\xa0\x80"};
    for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
        size_t n = strlen(valid[i]);
        assert_true(gust__utf8_valid(valid[i], n));
        for (size_t cut = 0; cut <= n; cut++) { /* any split */
            gust__utf8 u = {0, 0, 0};
            assert_true(gust__utf8_feed(&u, (const uint8_t *)valid[i], cut));
            assert_true(gust__utf8_feed(&u, (const uint8_t *)valid[i] + cut, n - cut));
            assert_true(gust__utf8_complete(&u));
        }
    }
    for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++)
        assert_false(gust__utf8_valid(invalid[i], strlen(invalid[i])));
    /* Fail fast: the second byte of a surrogate already fails, before the
     * sequence is complete. */
    gust__utf8 u = {0, 0, 0};
    assert_false(gust__utf8_feed(&u, (const uint8_t *)"\xed\xa0", 2));
    u = (gust__utf8){0, 0, 0};
    assert_false(gust__utf8_feed(&u, (const uint8_t *)"\xf4\x90", 2));
    u = (gust__utf8){0, 0, 0};
    assert_true(gust__utf8_feed(&u, (const uint8_t *)"\xe2\x82", 2));
    assert_false(gust__utf8_complete(&u));
}

/* ---- permessage-deflate -------------------------------------------------- */

static void test_negotiate_server(void **state)
{
    (void)state;
    gust__ws_deflate_params want = {.enabled = true, .our_window = 15};
    struct {
        const char *offer, *answer; /* answer NULL: declined */
    } cases[] = {
        {"permessage-deflate", "permessage-deflate"},
        {"permessage-deflate; client_max_window_bits",
         "permessage-deflate; client_max_window_bits=15"},
        {"permessage-deflate;client_max_window_bits=10",
         "permessage-deflate; client_max_window_bits=10"},
        {"permessage-deflate; server_max_window_bits=9",
         "permessage-deflate; server_max_window_bits=9"},
        {"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
        {"x-foo, permessage-deflate", "permessage-deflate"},
        {"permessage-deflate; server_max_window_bits=8", NULL},
        {"permessage-deflate; server_max_window_bits=08", NULL},
        {"permessage-deflate; server_max_window_bits=16", NULL},
        {"permessage-deflate; server_max_window_bits", NULL},
        {"permessage-deflate; bogus", NULL},
        {"permessage-deflate; client_no_context_takeover=x", NULL},
        {"permessage-deflate; client_max_window_bits; client_max_window_bits", NULL},
        {"", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        gust__ws_deflate_params out;
        char resp[160] = "";
        int rc = gust__ws_deflate_negotiate(cases[i].offer, true, &want, &out,
                                            resp, sizeof resp);
        if (cases[i].answer) {
            assert_int_equal(rc, 1);
            assert_string_equal(resp, cases[i].answer);
        } else {
            assert_int_equal(rc, 0);
        }
    }
}

static void test_negotiate_client(void **state)
{
    (void)state;
    gust__ws_deflate_params want = {.enabled = true, .our_window = 15}, out;
    assert_int_equal(gust__ws_deflate_negotiate("permessage-deflate", false,
                                                &want, &out, NULL, 0), 1);
    assert_int_equal(gust__ws_deflate_negotiate(
                         "permessage-deflate; client_max_window_bits=10; "
                         "server_no_context_takeover", false, &want, &out, NULL, 0), 1);
    assert_int_equal(out.our_window, 10);
    assert_true(out.peer_no_context);
    assert_int_equal(gust__ws_deflate_negotiate("permessage-deflate; foo", false,
                                                &want, &out, NULL, 0), -1);
    assert_int_equal(gust__ws_deflate_negotiate("permessage-deflate, permessage-deflate",
                                                false, &want, &out, NULL, 0), -1);
    assert_int_equal(gust__ws_deflate_negotiate("x-other", false, &want, &out,
                                                NULL, 0), -1);
}

static void roundtrip(bool no_context)
{
    gust__ws_deflate_params p = {.enabled = true, .our_window = 15,
                                 .peer_window = 15, .our_no_context = no_context,
                                 .peer_no_context = no_context};
    gust__ws_deflate *tx = gust__ws_deflate_new(&p), *rx = gust__ws_deflate_new(&p);
    assert_non_null(tx);
    assert_non_null(rx);
    for (int i = 0; i < 5; i++) {
        char msg[3000];
        for (size_t k = 0; k < sizeof msg; k++)
            msg[k] = (char)('a' + (k * (size_t)(i + 1)) % 7);
        size_t mlen = i == 4 ? 0 : sizeof msg;
        char *z = NULL;
        size_t zlen = 0;
        assert_int_equal(gust__ws_deflate_message(tx, msg, mlen, &z, &zlen), 0);
        assert_true(zlen < mlen + 8);
        char *out = NULL;
        size_t olen = 0, ocap = 0;
        /* In two frames, split anywhere. */
        size_t cut = zlen / 3;
        assert_int_equal(gust__ws_inflate(rx, z, cut, false, &out, &olen, &ocap,
                                          1 << 20), 0);
        assert_int_equal(gust__ws_inflate(rx, z + cut, zlen - cut, true, &out,
                                          &olen, &ocap, 1 << 20), 0);
        assert_int_equal(olen, mlen);
        assert_memory_equal(out, msg, mlen);
        free(out);
        free(z);
        if (no_context) { /* nothing pinned between messages */
            assert_int_equal(gust__ws_deflate_footprint(tx),
                             gust__ws_deflate_footprint(rx));
            assert_true(gust__ws_deflate_footprint(tx) < 128);
        }
    }
    gust__ws_deflate_free(tx);
    gust__ws_deflate_free(rx);
}

static void test_deflate_roundtrip(void **state)
{
    (void)state;
    roundtrip(false);
    roundtrip(true);
}

static void test_inflate_bound(void **state)
{
    (void)state;
    gust__ws_deflate_params p = {.enabled = true, .our_window = 15, .peer_window = 15};
    gust__ws_deflate *tx = gust__ws_deflate_new(&p), *rx = gust__ws_deflate_new(&p);
    size_t big = 50u << 20;
    char *zeros = calloc(1, big);
    char *z = NULL;
    size_t zlen = 0;
    assert_int_equal(gust__ws_deflate_message(tx, zeros, big, &z, &zlen), 0);
    free(zeros);
    assert_true(zlen < 100 * 1024);
    char *out = NULL;
    size_t olen = 0, ocap = 0;
    assert_int_equal(gust__ws_inflate(rx, z, zlen, true, &out, &olen, &ocap,
                                      1 << 20), -EMSGSIZE);
    assert_true(ocap <= (1u << 21) + 16384); /* never inflated far past it */
    free(out);
    free(z);
    /* Garbage is refused. */
    out = NULL;
    olen = ocap = 0;
    assert_int_equal(gust__ws_inflate(rx, "\xff\xff\xff", 3, true, &out, &olen,
                                      &ocap, 1 << 20), -EINVAL);
    free(out);
    gust__ws_deflate_free(tx);
    gust__ws_deflate_free(rx);
}

static void test_sizes(void **state)
{
    (void)state;
    /* What an idle socket costs besides its stream (192 B) and state. */
    print_message("sizeof(gust_websocket) = %zu, sizeof(gust__ws_parser) = %zu\n",
                  sizeof(struct gust_websocket), sizeof(gust__ws_parser));
    assert_true(sizeof(struct gust_websocket) <= 320);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_invariance),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_unmask),
        cmocka_unit_test(test_write_header),
        cmocka_unit_test(test_close_codes),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_negotiate_server),
        cmocka_unit_test(test_negotiate_client),
        cmocka_unit_test(test_deflate_roundtrip),
        cmocka_unit_test(test_inflate_bound),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
