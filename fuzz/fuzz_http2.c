/* libFuzzer target: Gust's HTTP/2 server glue (http2_connection.c) as one
 * client connection sees it. The input is what that client sends after
 * the connection preface (its SETTINGS first, then anything); it goes
 * over a real socketpair into a gust_stream on a gust loop, so that the
 * whole server path runs: nghttp2's session, then Gust's request building
 * from the header callbacks, the limits, bodies buffered and streamed
 * (pause/resume), and every way a handler answers (structured, flushed,
 * raw HTTP/1 bytes parsed back into HEADERS, sendfile, abort, late from a
 * callback, header blocks over one frame), with what the server writes
 * read and dropped.
 *
 * The first input byte picks how the connection became HTTP/2 (its
 * value modulo 3):
 *   0  as after ALPN "h2" (gust__h2_conn_new);
 *   1  prior knowledge: an HTTP/1 connection that sees the preface
 *      (gust__http_conn_new, then the sniff);
 *   2  Upgrade: h2c from an HTTP/1 request, which becomes stream 1;
 * which server takes it (divided by 3, odd: the one with tiny limits, so
 * that every limit of the glue is reached by small inputs); and (divided
 * by 6, odd) whether two connections send the same input at once; and
 * (divided by 12, odd) whether the client pauses after its first frames
 * ((divided by 24) % 8 + 1 of them): the tiny server hibernates idle
 * connections after 1 ms and advertises no HPACK table, so that what
 * follows the pause may reach a hibernated connection and its rebuilt
 * session.
 * Seeds: fuzz/corpus/http2/ (made by fuzz/make_http2_corpus.py).
 *
 * Invariants checked at the end of every input: the connection is gone
 * (the server counts none), every request the handler received was
 * finished exactly once, and the loop has nothing left of it. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gust/http_server.h"
#include "gust/loop.h"
#include "gust/stream.h"
#include "http_server_internal.h"
#include "fuzz.h"

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
static const char UPGRADE[] =
    "GET /echo?via=h2c HTTP/1.1\r\nHost: fuzz\r\n"
    "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";

static gust_loop *loop;
static gust_http_server *servers[2];
static gust_http_server *server; /* the one of this input */
static int file_fd = -1;       /* what /sendfile serves */
static size_t file_len;
static int live_requests;      /* received, not yet finished */

/* Per request: what the handler does with it. */
typedef struct fz_req {
    gust_http_request *req;
    bool streaming;
    bool paused;
    bool finished;             /* we called finish/abort/respond */
    bool closed;               /* on_connection_close ran */
    bool late_pending;         /* a callback will answer it */
    bool body_done;            /* finish ran while that callback was due */
    size_t streamed;
} fz_req;

static bool path_is(const gust_http_request *req, const char *p)
{
    return strcmp(req->path, p) == 0;
}

/* The request was finished (rc, whatever it is, changes nothing: the
 * request is released in every case). */
static void release(fz_req *r, int rc)
{
    (void)rc;
    CHECK(!r->finished);
    r->finished = true;
    live_requests--;
    free(r);
}

static void finish(fz_req *r)
{
    gust_http_request *req = r->req;
    release(r, gust_http_request_finish(req));
}

static void respond(fz_req *r, int status, const void *body, size_t len)
{
    gust_http_request *req = r->req;
    release(r, gust_http_respond(req, status, "text/plain", body, len));
}

static int query_int(gust_http_request *req, const char *name, int dflt)
{
    const char *q = strstr(req->query, name);
    if (!q || q[strlen(name)] != '=')
        return dflt;
    return atoi(q + strlen(name) + 1);
}

static void on_flushed(gust_http_request *req, int status, void *data)
{
    (void)req;
    (void)status;
    (void)data;
}

static void answer_late(gust_loop *l, void *data)
{
    (void)l;
    fz_req *r = data;
    r->late_pending = false;
    gust_http_response_set_header(r->req, "X-Late", "1");
    gust_http_response_write(r->req, "late", 4);
    finish(r);
}

static void resume_later(gust_loop *l, void *data)
{
    (void)l;
    fz_req *r = data;
    r->late_pending = false;
    if (r->closed) {
        finish(r);
        return;
    }
    if (r->body_done) {
        respond(r, 200, "resumed", 7);
        return;
    }
    r->paused = false;
    gust_http_request_resume_body(r->req);
}

/* Answers a request whose body is complete, by its path. */
static void answer(fz_req *r)
{
    gust_http_request *req = r->req;
    gust_http_request_cookies(req);
    const gust_http_headers *h = &req->headers;
    if (path_is(req, "/echo")) {
        /* Request fields back as response fields: the response side's
         * name and value checks get whatever the client sent. */
        for (size_t i = 0; i < h->count && i < 16; i++) {
            char name[96];
            snprintf(name, sizeof name, "X-Echo-%.*s", (int)h->items[i].name.len,
                     h->items[i].name.ptr);
            char *value = strndup(h->items[i].value.ptr, h->items[i].value.len);
            if (value) {
                gust_http_response_add_header(req, name, value);
                free(value);
            }
        }
        gust_http_response_set_header(req, "X-Version", req->version);
        gust_http_response_write(req, req->body.ptr, req->body.len);
        char line[64];
        int n = snprintf(line, sizeof line, "\nargs=%zu files=%zu\n",
                         req->arguments.count, req->files.count);
        gust_http_response_write(req, line, (size_t)n);
        finish(r);
    } else if (path_is(req, "/bighead")) {
        /* A response header block over one frame: HEADERS and
         * CONTINUATION frames (n fields of 1000 bytes). */
        static char value[1001];
        if (!value[0])
            memset(value, 'h', sizeof value - 1);
        int n = query_int(req, "n", 40) & 63;
        for (int i = 0; i < n; i++) {
            char name[32];
            snprintf(name, sizeof name, "X-Big-%d", i);
            gust_http_response_add_header(req, name, value);
        }
        gust_http_response_write(req, "big head", 8);
        finish(r);
    } else if (path_is(req, "/status")) {
        int code = query_int(req, "code", 200);
        if (gust_http_response_set_status(req, code, NULL) < 0)
            gust_http_response_set_status(req, 400, NULL);
        gust_http_response_write(req, "status", 6);
        finish(r);
    } else if (path_is(req, "/flush")) {
        int parts = query_int(req, "n", 3) & 15;
        if (query_int(req, "len", 0))
            gust_http_response_set_header(req, "Content-Length", "10");
        for (int i = 0; i < parts; i++) {
            gust_http_response_write(req, "chunk\n", 6);
            gust_http_response_flush(req, on_flushed, NULL);
        }
        finish(r);
    } else if (path_is(req, "/raw")) {
        /* The request body is the raw HTTP/1 response the glue must turn
         * into HEADERS and DATA (or refuse). */
        gust_http_request_write_raw(req, req->body.ptr, req->body.len);
        finish(r);
    } else if (path_is(req, "/sendfile")) {
        int off = query_int(req, "off", 0);
        int len = query_int(req, "len", (int)file_len);
        if (query_int(req, "cl", 0)) {
            char v[32];
            snprintf(v, sizeof v, "%d", len);
            gust_http_response_set_header(req, "Content-Length", v);
        }
        if (off >= 0 && len >= 0)
            gust_http_response_sendfile(req, file_fd, off, (size_t)len,
                                        on_flushed, NULL);
        finish(r);
    } else if (path_is(req, "/big")) {
        static char block[16384];
        int n = query_int(req, "n", 20) & 63;
        for (int i = 0; i < n; i++)
            gust_http_response_write(req, block, sizeof block);
        finish(r);
    } else if (path_is(req, "/abort")) {
        gust_http_response_write(req, "partial", 7);
        gust_http_response_flush(req, NULL, NULL);
        gust_http_request *q = req;
        release(r, gust_http_request_abort(q));
    } else if (path_is(req, "/late")) {
        r->late_pending = true;
        if (gust_loop_add_callback(loop, answer_late, r) < 0) {
            r->late_pending = false;
            finish(r);
        }
    } else {
        static const char hello[] = "Hello, world";
        respond(r, 200, hello, sizeof hello - 1);
    }
}

static int on_headers(gust_http_request *req, void *data)
{
    (void)data;
    fz_req *r = calloc(1, sizeof *r);
    CHECK(r != NULL);
    r->req = req;
    req->data = r;
    live_requests++;
    if (path_is(req, "/early")) {
        /* Answered before the body, which the server then drops. */
        respond(r, 401, "no", 2);
        return 1;
    }
    if (path_is(req, "/stream") || path_is(req, "/pause")) {
        CHECK(gust_http_request_stream_body(req) == 0);
        r->streaming = true;
    }
    return 0;
}

static int on_data(gust_http_request *req, const char *chunk, size_t len,
                   void *data)
{
    (void)data;
    (void)chunk;
    fz_req *r = req->data;
    CHECK(r && r->streaming && !r->finished);
    r->streamed += len;
    if (len && chunk[0] == '!')
        return -1; /* the handler refuses the body */
    if (len && chunk[0] == '#') {
        /* Answered in the middle of the body. */
        respond(r, 200, "enough", 6);
        return 0;
    }
    if (path_is(req, "/pause") && !r->paused && !r->late_pending) {
        if (gust_http_request_pause_body(req) == 0) {
            r->paused = true;
            r->late_pending = true;
            if (gust_loop_add_callback(loop, resume_later, r) < 0) {
                r->late_pending = false;
                gust_http_request_resume_body(req);
            }
        }
    }
    return 0;
}

static void on_finish(gust_http_request *req, void *data)
{
    (void)data;
    fz_req *r = req->data;
    CHECK(r && !r->finished);
    if (r->late_pending) {
        r->body_done = true; /* resume_later answers */
        return;
    }
    if (r->streaming) {
        char line[48];
        int n = snprintf(line, sizeof line, "streamed %zu\n", r->streamed);
        respond(r, 200, line, (size_t)n);
        return;
    }
    answer(r);
}

static void on_conn_close(gust_http_request *req, void *data)
{
    (void)data;
    fz_req *r = req->data;
    CHECK(r && !r->finished);
    r->closed = true;
    if (!r->late_pending)
        finish(r); /* writes fail harmlessly; the request is released */
}

static const gust_http_delegate delegate = {
    on_headers, on_data, on_finish, on_conn_close,
};

static void setup(void)
{
    /* Quiet: a warning line for each bad input would drown the run. */
    setenv("GUST_LOG_LEVEL", "error", 0);
    loop = gust_loop_new();
    CHECK(loop != NULL);
    gust_loop_make_current(loop);
    gust_http_server_options o = {
        .xheaders = true,
        .max_header_size = 8192,
        .max_header_count = 64,
        .max_body_size = 256 * 1024,
        .http2_initial_window_size = 65535,
        .http2_max_concurrent_streams = 16,
    };
    servers[0] = gust_http_server_new(
        gust_http_delegate_handler(&delegate, NULL), &o);
    gust_http_server_options tiny = {
        .max_header_size = 512,
        .max_header_count = 8,
        .max_body_size = 1000,
        .http2_initial_window_size = 100,
        .http2_max_concurrent_streams = 2,
        .http2_reset_burst = 4,
        .http2_reset_rate = 1,
        .http2_header_table_size = -1,
        .http2_hibernate_after = 0.001,
        .no_keep_alive = true,
    };
    servers[1] = gust_http_server_new(
        gust_http_delegate_handler(&delegate, NULL), &tiny);
    CHECK(servers[0] != NULL && servers[1] != NULL);
    file_fd = memfd_create("fuzz_http2", 0);
    CHECK(file_fd >= 0);
    static char content[100000];
    for (size_t i = 0; i < sizeof content; i++)
        content[i] = (char)('a' + i % 26);
    CHECK(write(file_fd, content, sizeof content) == (ssize_t)sizeof content);
    file_len = sizeof content;
}

/* The client side: what is left to write, and the socket. */
typedef struct client {
    int fd;
    const uint8_t *out;
    size_t out_len;
    bool shut;
} client;

/* Writes what fits, drops what the server sent; after the last input
 * byte, half-closes so that the server sees the end of the input. */
static void client_pump(client *c)
{
    if (c->fd < 0)
        return;
    while (c->out_len) {
        ssize_t n = send(c->fd, c->out, c->out_len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n <= 0)
            break;
        c->out += n;
        c->out_len -= (size_t)n;
    }
    if (!c->out_len && !c->shut) {
        shutdown(c->fd, SHUT_WR);
        c->shut = true;
    }
    char buf[65536];
    while (recv(c->fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
    }
}

/* The clients of one input: one, or two at once on the same server and
 * loop (their sessions interleave: what the glue keeps per thread must
 * not mix them). */
typedef struct clients {
    client c[2];
    int n;
} clients;

static bool done(gust_loop *l, void *data)
{
    (void)l;
    clients *cs = data;
    for (int i = 0; i < cs->n; i++)
        client_pump(&cs->c[i]);
    return gust_http_server_connection_count(server) == 0 &&
           live_requests == 0;
}

/* A server-side connection for mode on a new socketpair; returns the
 * client's end. */
static int open_connection(int mode)
{
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
    gust_stream *stream = gust_stream_new(loop, sv[0], NULL);
    CHECK(stream != NULL);
    struct sockaddr_in peer = {.sin_family = AF_INET,
                               .sin_port = htons(40000),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (mode == 0) {
        CHECK(gust__h2_conn_new(server, stream, (struct sockaddr *)&peer,
                                sizeof peer) == 0);
    } else {
        CHECK(gust__http_conn_new(server, stream, (struct sockaddr *)&peer,
                                  sizeof peer) != NULL);
    }
    return sv[1];
}

/* Where the client's first n frames end in p (the input after the
 * preface), or len if it has fewer. */
static size_t after_frames(const uint8_t *p, size_t len, int n)
{
    size_t at = 0;
    while (n-- > 0 && len - at >= 9) {
        size_t flen = (size_t)p[at] << 16 | (size_t)p[at + 1] << 8 | p[at + 2];
        if (len - at - 9 < flen)
            return len;
        at += 9 + flen;
    }
    return at;
}

static bool pause_over(gust_loop *l, void *data)
{
    (void)l;
    clients *cs = data;
    char buf[65536];
    for (int i = 0; i < cs->n; i++)
        while (recv(cs->c[i].fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
        }
    return false; /* until the timeout */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 256 * 1024)
        return 0;
    if (!loop)
        setup();
    int mode = data[0] % 3;
    server = servers[(data[0] / 3) & 1];
    int nclients = (data[0] / 6) & 1 ? 2 : 1;
    bool pause = (data[0] / 12) & 1;
    int pause_frames = (data[0] / 24) % 8 + 1;
    data++;
    size--;

    size_t head_len = (mode == 2 ? sizeof UPGRADE - 1 : 0) + sizeof PREFACE - 1;
    uint8_t *input = malloc(head_len + size);
    CHECK(input != NULL);
    size_t at = 0;
    if (mode == 2) {
        memcpy(input, UPGRADE, sizeof UPGRADE - 1);
        at = sizeof UPGRADE - 1;
    }
    memcpy(input + at, PREFACE, sizeof PREFACE - 1);
    memcpy(input + head_len, data, size);

    clients cs = {.n = nclients};
    size_t first = head_len + size;
    if (pause)
        first = head_len + after_frames(input + head_len, size, pause_frames);
    for (int i = 0; i < nclients; i++)
        cs.c[i] = (client){open_connection(mode), input, first, false};
    if (pause && first < head_len + size) {
        /* The first frames, then quiet for a few hibernation delays (the
         * client reads what the server answers), then the rest. */
        for (int i = 0; i < nclients; i++) {
            client *c = &cs.c[i];
            while (c->out_len) {
                ssize_t n = send(c->fd, c->out, c->out_len,
                                 MSG_DONTWAIT | MSG_NOSIGNAL);
                if (n <= 0)
                    break;
                c->out += n;
                c->out_len -= (size_t)n;
            }
        }
        gust_loop_run_until(loop, pause_over, &cs, 0.005);
        for (int i = 0; i < nclients; i++)
            cs.c[i].out_len += head_len + size - first;
    }
    /* The input, then the end of it: the connections must finish by
     * themselves (answers sent, or an error and a close)... */
    gust_loop_run_until(loop, done, &cs, 3.0);
    /* ...else the clients go away, and they must be gone soon after. */
    if (!done(loop, &cs)) {
        for (int i = 0; i < nclients; i++) {
            close(cs.c[i].fd);
            cs.c[i].fd = -1;
        }
        gust_loop_run_until(loop, done, &cs, 3.0);
    }
    CHECK(gust_http_server_connection_count(server) == 0);
    CHECK(live_requests == 0);
    for (int i = 0; i < nclients; i++)
        if (cs.c[i].fd >= 0)
            close(cs.c[i].fd);
    free(input);
    return 0;
}
