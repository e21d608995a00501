/* The pieces of websocket*.c (websocket.c, websocket_handler.c,
 * websocket_client.c and these): the frame codec (websocket_frame.c), the
 * UTF-8 validator (websocket_utf8.c) and permessage-deflate
 * (websocket_deflate.c), each usable alone (the fuzz target drives them
 * without a socket). Not installed. */
#ifndef GUST_WEBSOCKET_INTERNAL_H
#define GUST_WEBSOCKET_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- Frames (RFC 6455 section 5.2) --------------------------------------- */

enum {
    GUST__WS_OP_CONT = 0x0,
    GUST__WS_OP_TEXT = 0x1,
    GUST__WS_OP_BINARY = 0x2,
    GUST__WS_OP_CLOSE = 0x8,
    GUST__WS_OP_PING = 0x9,
    GUST__WS_OP_PONG = 0xA,
};

#define GUST__WS_FIN 0x80u
#define GUST__WS_RSV1 0x40u
#define GUST__WS_MAX_HEADER 14

/* An incremental frame parser: any split of the input gives the same
 * events. It holds only the header being gathered and the position in the
 * current payload; payload bytes are unmasked in place and handed out as
 * slices of the caller's buffer. */
typedef struct gust__ws_parser {
    uint8_t hdr[GUST__WS_MAX_HEADER];
    uint8_t hlen;        /* header bytes gathered */
    uint8_t in_payload;  /* the header is complete */
    uint8_t mask_masked; /* frames must be masked (server) */
    uint8_t rsv_allowed; /* RSV bits a negotiated extension uses */
    /* The current frame, once its header is complete. */
    uint8_t fin, rsv, opcode, masked;
    uint32_t mask_pos;   /* payload bytes unmasked so far, mod 4 */
    uint8_t mask[4];
    uint64_t len;        /* payload length */
    uint64_t left;       /* payload bytes still to come */
} gust__ws_parser;

enum {
    GUST__WS_NEED = 0,   /* all input used: feed more */
    GUST__WS_HEADER = 1, /* a header is complete (p->fin, opcode, len...) */
    GUST__WS_DATA = 2,   /* *chunk, *clen: payload of the current frame;
                            the frame ends when p->left is 0 (a frame of
                            length 0 gives one DATA event with clen 0) */
};

/* expect_masked: frames must be masked (a server) or must not be (a
 * client). rsv_allowed: the RSV bits an extension negotiated (RSV1 for
 * permessage-deflate, on data frames only: checked by the caller). */
void gust__ws_parser_init(gust__ws_parser *p, bool expect_masked,
                          unsigned rsv_allowed);

/* Parses buf[0, len) from where the last call stopped; *used gets the bytes
 * consumed. Returns an event above, or -1002 for a frame that breaks the
 * framing rules (reserved opcode, RSV bit not negotiated, a control frame
 * fragmented or over 125 bytes, mask bit wrong for the role, a 64-bit length
 * with its top bit set): the connection must be failed with 1002. */
int gust__ws_parse(gust__ws_parser *p, char *buf, size_t len, size_t *used,
                   char **chunk, size_t *clen);

/* XORs buf with mask, starting pos bytes into the mask: 8 bytes at a time. */
void gust__ws_unmask(char *buf, size_t len, const uint8_t mask[4],
                     uint32_t pos);

/* Writes a frame header into out (GUST__WS_MAX_HEADER bytes); first is
 * FIN | RSV | opcode; mask NULL for an unmasked frame. Returns its length. */
size_t gust__ws_write_header(uint8_t *out, unsigned first, uint64_t len,
                             const uint8_t *mask);

/* Whether the comma-separated header value v lists token (any case). */
bool gust__ws_list_has(const char *v, size_t len, const char *token);

/* Sec-WebSocket-Accept for the 24-character key (section 4.2.2): 28
 * characters and a NUL into out. */
void gust__ws_accept_key(const char *key, char out[29]);

/* Whether code may be received in a close frame (section 7.4). */
bool gust__ws_close_code_valid(int code);

/* ---- UTF-8 (fail fast, incremental) -------------------------------------- */

typedef struct gust__utf8 {
    uint8_t need;   /* continuation bytes still expected */
    uint8_t lo, hi; /* the range of the next one */
} gust__utf8;

/* Feeds n bytes. Returns false as soon as a byte cannot continue a valid
 * sequence (the state is then meaningless). */
bool gust__utf8_feed(gust__utf8 *u, const uint8_t *s, size_t n);

/* Whether the bytes fed so far end on a character boundary. */
static inline bool gust__utf8_complete(const gust__utf8 *u)
{
    return u->need == 0;
}

bool gust__utf8_valid(const void *s, size_t n);

/* ---- permessage-deflate (RFC 7692) --------------------------------------- */

/* Our compressor's window and memLevel unless set: 32 KiB of zlib state
 * rather than zlib's 256 KiB, for a ratio close to it on messages. */
#define GUST__WS_DEFAULT_WINDOW 12
#define GUST__WS_DEFAULT_MEM_LEVEL 5

/* What was negotiated, from the server's point of view of "us" / "peer". */
typedef struct gust__ws_deflate_params {
    bool enabled;
    bool our_no_context;  /* we reset our compressor after each message */
    bool peer_no_context; /* the peer resets its compressor */
    uint8_t our_window;   /* our compressor's window bits, 9..15 */
    uint8_t peer_window;  /* the peer's, 8..15 (our decompressor uses 15) */
    int level, mem_level;
} gust__ws_deflate_params;

typedef struct gust__ws_deflate gust__ws_deflate;

/* Parses an offer or response header value (a comma-separated list of
 * extensions); server: picks the first acceptable permessage-deflate offer
 * and fills out (and resp, the response's value, at most resp_size bytes);
 * returns 1 when accepted, 0 when no offer is acceptable. client (server
 * = false): checks the server's response against what we offered; returns
 * 1 when deflate was accepted, 0 when none, -1 when invalid. */
int gust__ws_deflate_negotiate(const char *value, bool server,
                               const gust__ws_deflate_params *want,
                               gust__ws_deflate_params *out, char *resp,
                               size_t resp_size);

/* Compression state of one socket: small until used; zlib streams made on
 * demand and, without context takeover, freed after each message. */
gust__ws_deflate *gust__ws_deflate_new(const gust__ws_deflate_params *p);
void gust__ws_deflate_free(gust__ws_deflate *d);

/* Decompresses one frame's payload of a compressed message into *out
 * (grown with realloc, *out_len bytes used, *out_cap allocated), at most
 * max bytes in all; last: the message's final frame (the tail 00 00 ff ff
 * is then appended). Returns 0, -EMSGSIZE over max, -EINVAL for bad data,
 * -ENOMEM. */
int gust__ws_inflate(gust__ws_deflate *d, const char *in, size_t len,
                     bool last, char **out, size_t *out_len, size_t *out_cap,
                     size_t max);

/* Compresses one whole message into *out (malloc'd, *out_len bytes; free
 * it). Returns 0 or -ENOMEM. */
int gust__ws_deflate_message(gust__ws_deflate *d, const char *in, size_t len,
                             char **out, size_t *out_len);

/* Bytes held by zlib right now (for the memory notes in websocket.md). */
size_t gust__ws_deflate_footprint(const gust__ws_deflate *d);


/* ---- One connection (websocket.c), shared by server and client ----------- */

#include "gust/websocket.h"

typedef struct gust__ws_read gust__ws_read;

/* What an idle socket holds: this struct, its stream and the class's state.
 * Buffers (message, control frame, unparsed input) and zlib streams exist
 * only while used. */
struct gust_websocket {
    gust_stream *stream;          /* NULL once its close callback ran */
    gust_loop *loop;
    const gust_websocket_class *cls;   /* server; NULL for a client */
    const gust_websocket_settings *set; /* NULL: defaults */
    gust_http_detached slot;      /* server: how the HTTP server counts us */
    gust_handler *h;              /* server: the upgrade's, during open */
    gust__ws_deflate *deflate;    /* NULL: no permessage-deflate */
    char *subprotocol, *extensions; /* malloc'd; NULL: none */

    gust__ws_parser p;
    gust__utf8 utf8;
    uint8_t msg_op;               /* message in progress: TEXT/BINARY, or 0 */
    uint8_t ctl_len;
    bool msg_compressed;
    bool client;
    bool busy;                    /* a message is with the application */
    bool reading;                 /* a stream read is pending */
    bool close_sent, close_received;
    bool draining;                /* our last frame is out: waiting for EOF */
    bool failed;                  /* input is ignored from now on */
    bool closed;                  /* the stream is closed */
    bool ping_outstanding;
    uint16_t close_code;          /* received (1006: none yet) */
    int refs;

    char *msg;                    /* message being assembled */
    size_t msg_len, msg_cap;
    char *ctl;                    /* a control frame split across reads */
    char *pend;                   /* input not parsed yet (own copy) */
    size_t pend_off, pend_len;
    char *close_reason;           /* received, malloc'd; NULL: "" */
    gust_timer timer;             /* pings, then the close handshake */
    double ping_sent_at;

    /* Client: where messages go (websocket_client.c). */
    gust__ws_read *rd;

    max_align_t state[];
};

/* Makes a socket on stream (which it owns from now on: its close callback
 * and data are the socket's). state_size bytes of state. NULL: -ENOMEM. */
gust_websocket *gust__ws_new(gust_loop *loop, gust_stream *stream,
                             bool client, const gust_websocket_settings *set,
                             size_t state_size);
/* Gives ws its stream (when gust__ws_new had none). */
void gust__ws_set_stream(gust_websocket *ws, gust_stream *stream);
/* Starts reading, with leftover bytes first (copied), from a later turn. */
int gust__ws_start(gust_websocket *ws, const char *leftover, size_t len);
/* Reading goes on after busy was cleared (a message was consumed). */
void gust__ws_resume(gust_websocket *ws);
void gust__ws_ref(gust_websocket *ws);
void gust__ws_unref(gust_websocket *ws);
/* Fails the connection with code (sends it, then closes). */
void gust__ws_fail(gust_websocket *ws, int code, const char *why);

/* Role hooks (websocket_handler.c, websocket_client.c). deliver gets a
 * whole message; owned: data is a malloc'd buffer it may keep (setting
 * *taken). Returns true to go on parsing, false to stop until
 * gust__ws_resume(). */
bool gust__ws_server_deliver(gust_websocket *ws, char *data, size_t len,
                             bool binary, bool owned, bool *taken);
bool gust__ws_client_deliver(gust_websocket *ws, char *data, size_t len,
                             bool binary, bool owned, bool *taken);
void gust__ws_server_closed(gust_websocket *ws);
void gust__ws_client_closed(gust_websocket *ws);

#endif /* GUST_WEBSOCKET_INTERNAL_H */
