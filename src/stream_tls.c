/* Streams: the TLS transport (OpenSSL) behind the seam of stream_internal.h.
 *
 * The stream core keeps its buffers and its loop registration; this file
 * only turns its read/writev calls into SSL_read/SSL_write and tells it
 * which fd events OpenSSL is waiting for:
 *   - the handshake is driven by on_event (called on every fd event), and
 *     the events hook watches whatever SSL_do_handshake last wanted, so it
 *     runs even when nobody reads or writes;
 *   - reads and writes issued during the handshake get -EAGAIN and are
 *     retried by the core on the next event, which after the handshake goes
 *     through to OpenSSL;
 *   - SSL_write after WANT_WRITE must be retried with the same bytes: the
 *     core's queue keeps unsent bytes in order, so we only have to remember
 *     how many bytes OpenSSL holds (wpend) and pass exactly those again;
 *   - sendfile is left NULL: the core preads the file and writes it here.
 * The socket is driven through a small BIO of our own that sends with
 * MSG_NOSIGNAL (OpenSSL's socket BIO uses write(), which raises SIGPIPE).
 */
#define GUST__STREAM_PRIVATE
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "gust/error.h"
#include "gust/log.h"
#include "gust/tls.h"
#include "stream_internal.h"
#include "tls_internal.h"

/* Largest plaintext of one TLS record: each SSL_write gets at most this,
 * so a retry never has to repeat more than one record. */
#define RECORD_MAX 16384

enum { HS_RUNNING, HS_DONE, HS_FAILED };

typedef struct tls_conn {
    gust_stream *stream;
    gust_tls_context *ctx;
    SSL *ssl;
    int hs;
    unsigned hs_want;       /* GUST_READ or GUST_WRITE while HS_RUNNING */
    bool client;
    bool fatal;             /* OpenSSL failed: no close_notify */
    bool peer_eof;          /* recv() returned 0 */
    bool read_wants_write;  /* last SSL_read said WANT_WRITE */
    bool write_wants_read;  /* last SSL_write said WANT_READ */
    int last_errno;         /* of the last failed send/recv */
    uint64_t io_count;      /* bytes moved by the BIO: progress for on_event */
    /* Bytes taken from the socket and not yet given to OpenSSL, which asks
     * for a record's 5-byte header and then its body: one recv() serves
     * both (and often the next records). Freed whenever it runs empty, so
     * an idle connection holds none. */
    unsigned char *in;
    size_t in_off, in_len;
    size_t wpend;           /* bytes of a record OpenSSL holds for a retry */
    gust_tls_handshake_cb cb;
    void *cb_data;
    int cb_status;          /* for a callback deferred by a close */
    char *subject;          /* OpenSSL's allocation, made on demand */
    char *alpn;             /* the protocol agreed, or NULL */
    char *server_name;      /* client: what is verified, for the logs */
} tls_conn;

/* Small iovecs are packed into one record here. Its contents need not
 * outlive an SSL_write call (OpenSSL encrypts at once and a retry passes
 * the same bytes again), so one buffer per thread serves every stream. */
static _Thread_local char stage[RECORD_MAX];

static const gust__stream_transport tls_transport;

/* ---- The socket BIO -------------------------------------------------------- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *buf, int len)
{
    tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    ssize_t n = send(t->stream->fd, buf, (size_t)len, MSG_NOSIGNAL);
    if (n >= 0) {
        t->io_count += (uint64_t)n;
        return (int)n;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        BIO_set_retry_write(b);
    else
        t->last_errno = errno;
    return -1;
}

/* Room for the largest record OpenSSL accepts (16 KiB of plaintext plus
 * expansion) and a little of the next. */
#define IN_CAP (18 * 1024)

static int bio_read(BIO *b, char *buf, int len)
{
    tls_conn *t = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (t->in_len == t->in_off) {
        /* A large request goes straight to OpenSSL's buffer. */
        bool direct = (size_t)len >= IN_CAP / 2;
        if (!direct && !t->in && !(t->in = malloc(IN_CAP)))
            direct = true; /* out of memory: just read less at a time */
        ssize_t n = recv(t->stream->fd, direct ? (void *)buf : t->in,
                         direct ? (size_t)len : IN_CAP, 0);
        if (n > 0) {
            t->io_count += (uint64_t)n;
            if (direct)
                return (int)n;
            t->in_off = 0;
            t->in_len = (size_t)n;
        } else {
            if (n == 0) {
                t->peer_eof = true;
                t->io_count++; /* an EOF is news too */
                return 0;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                BIO_set_retry_read(b);
            else
                t->last_errno = errno;
            return -1;
        }
    }
    size_t k = t->in_len - t->in_off;
    if (k > (size_t)len)
        k = (size_t)len;
    memcpy(buf, t->in + t->in_off, k);
    t->in_off += k;
    if (t->in_off == t->in_len) {
        free(t->in);
        t->in = NULL;
        t->in_off = t->in_len = 0;
    }
    return (int)k;
}

/* Whether a whole record waits in our input buffer: OpenSSL will make
 * progress on it without any fd event. */
static bool in_has_record(const tls_conn *t)
{
    size_t k = t->in_len - t->in_off;
    if (k < 5)
        return false;
    const unsigned char *h = t->in + t->in_off;
    return k >= 5 + ((size_t)h[3] << 8 | h[4]);
}

static int bio_puts(BIO *b, const char *str)
{
    return bio_write(b, str, (int)strlen(str));
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)num;
    (void)ptr;
    tls_conn *t = BIO_get_data(b);
    switch (cmd) {
    case BIO_CTRL_FLUSH:
        return 1; /* nothing is buffered here */
    case BIO_CTRL_EOF:
        return t && t->peer_eof && t->in_off == t->in_len;
    case BIO_CTRL_PENDING:
        return t ? (long)(t->in_len - t->in_off) : 0;
    default:
        return 0;
    }
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static void bio_method_init(void)
{
    BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                 "gust stream socket");
    if (!m)
        return;
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_puts(m, bio_puts);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_create(m, bio_create);
    bio_method = m;
}

/* ---- Errors ---------------------------------------------------------------- */

/* Maps a failed SSL call to a stream code and logs the peer's failure at
 * debug level (a bad peer is not the server's problem). */
static int fail_code(tls_conn *t, int ret, const char *what)
{
    int e = SSL_get_error(t->ssl, ret);
    t->fatal = true;
    if (e == SSL_ERROR_SYSCALL) {
        int err = t->last_errno;
        ERR_clear_error();
        if (err) {
            gust_log_debug("tls", "%s: %s", what, strerror(err));
            return -err;
        }
        gust_log_debug("tls", "%s: peer closed the connection", what);
        return GUST_ETLS;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        gust_log_debug("tls", "%s: peer sent close_notify", what);
        return GUST_ETLS;
    }
    /* OpenSSL computes a verify result even when told not to verify. */
    long v = SSL_get_verify_result(t->ssl);
    if (t->hs != HS_DONE && v != X509_V_OK &&
        (SSL_get_verify_mode(t->ssl) & SSL_VERIFY_PEER)) {
        ERR_clear_error();
        gust_log_debug("tls", "%s: certificate verification failed%s%s: %s",
                       what, t->server_name ? " for " : "",
                       t->server_name ? t->server_name : "",
                       X509_verify_cert_error_string(v));
        return GUST_ETLSVERIFY;
    }
    gust__tls_log_errors(GUST_LOG_DEBUG, what);
    return GUST_ETLS;
}

/* ---- Handshake ------------------------------------------------------------- */

/* Whether a failed server handshake met a plain HTTP request (a mistyped
 * scheme): OpenSSL recognises the request line of the first record. */
static bool plain_http_seen(const tls_conn *t)
{
    unsigned long e = ERR_peek_error();
    return !t->client && ERR_GET_LIB(e) == ERR_LIB_SSL &&
           (ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST ||
            ERR_GET_REASON(e) == SSL_R_HTTPS_PROXY_REQUEST);
}

/* Answers it in clear, as nginx does, so that the person reading it sees
 * why, then half-closes. What the client sent and we did not read is
 * drained first (it is all there: one small request), so that the close
 * is not a reset that destroys the answer before it is read. */
static void answer_plain_http(gust_stream *s)
{
    static const char msg[] =
        "HTTP/1.1 400 Bad Request\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 46\r\n"
        "Connection: close\r\n"
        "\r\n"
        "The plain HTTP request was sent to HTTPS port\n";
    gust_log_warning("tls", "fd %d: plain HTTP request on the TLS port, "
                     "answered 400", s->fd);
    char sink[4096];
    for (int i = 0; i < 16; i++)
        if (recv(s->fd, sink, sizeof sink, MSG_DONTWAIT) <= 0)
            break;
    if (send(s->fd, msg, sizeof msg - 1, MSG_NOSIGNAL | MSG_DONTWAIT) > 0)
        shutdown(s->fd, SHUT_WR);
}

static bool hs_step(gust_stream *s, tls_conn *t)
{
    uint64_t before = t->io_count;
    t->last_errno = 0;
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r == 1) {
        t->hs = HS_DONE;
        t->hs_want = 0;
        const unsigned char *p;
        unsigned n;
        SSL_get0_alpn_selected(t->ssl, &p, &n);
        if (n > 0 && (t->alpn = malloc(n + 1))) {
            memcpy(t->alpn, p, n);
            t->alpn[n] = '\0';
        }
        if (gust_log_level() <= GUST_LOG_DEBUG)
            gust_log_debug("tls", "fd %d: %s handshake done, %s %s%s%s%s",
                           s->fd, t->client ? "client" : "server",
                           SSL_get_version(t->ssl), SSL_get_cipher_name(t->ssl),
                           SSL_session_reused(t->ssl) ? ", resumed" : "",
                           t->alpn ? ", alpn " : "", t->alpn ? t->alpn : "");
        gust_tls_handshake_cb cb = t->cb;
        t->cb = NULL;
        if (cb)
            cb(s, 0, t->cb_data);
        return true;
    }
    int e = SSL_get_error(t->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        t->hs_want = e == SSL_ERROR_WANT_READ ? GUST_READ : GUST_WRITE;
        return t->io_count != before;
    }
    bool plain_http = plain_http_seen(t);
    int status = fail_code(t, r, t->client ? "client handshake"
                                           : "server handshake");
    if (plain_http)
        answer_plain_http(s);
    t->hs = HS_FAILED;
    gust_tls_handshake_cb cb = t->cb;
    t->cb = NULL;
    if (cb)
        cb(s, status, t->cb_data);
    gust__stream_close_with(s, status);
    return true;
}

/* ---- Transport ------------------------------------------------------------- */

static ssize_t tls_read(gust_stream *s, void *buf, size_t len)
{
    tls_conn *t = s->rare->tp_state;
    if (!t || t->hs != HS_DONE)
        return -EAGAIN; /* the handshake moves on in on_event */
    t->read_wants_write = false;
    t->last_errno = 0;
    ERR_clear_error();
    int n = SSL_read(t->ssl, buf, len > INT_MAX ? INT_MAX : (int)len);
    if (n > 0)
        return n;
    switch (SSL_get_error(t->ssl, n)) {
    case SSL_ERROR_WANT_READ:
        return -EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        t->read_wants_write = true;
        return -EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0; /* close_notify, or a bare EOF (IGNORE_UNEXPECTED_EOF) */
    default:
        return fail_code(t, n, "read");
    }
}

/* Points *p at the next chunk bytes of iov starting at (*idx, *off): in
 * place when one iovec holds them, else copied into the stage. */
static const void *chunk_at(const struct iovec *iov, int cnt, int idx,
                            size_t off, size_t chunk)
{
    if (iov[idx].iov_len - off >= chunk)
        return (const char *)iov[idx].iov_base + off;
    size_t got = 0;
    for (int i = idx; i < cnt && got < chunk; i++, off = 0) {
        size_t k = iov[i].iov_len - off;
        if (k > chunk - got)
            k = chunk - got;
        memcpy(stage + got, (const char *)iov[i].iov_base + off, k);
        got += k;
    }
    return stage;
}

static ssize_t tls_writev(gust_stream *s, const struct iovec *iov, int iovcnt)
{
    tls_conn *t = s->rare->tp_state;
    if (!t || t->hs != HS_DONE)
        return -EAGAIN;
    t->write_wants_read = false;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    size_t done = 0, off = 0;
    int idx = 0;
    while (done < total) {
        while (idx < iovcnt && off == iov[idx].iov_len) {
            idx++;
            off = 0;
        }
        size_t chunk = total - done < RECORD_MAX ? total - done : RECORD_MAX;
        if (t->wpend) {
            /* The core always hands back the unsent bytes first. */
            if (t->wpend > total - done) {
                gust_log_error("tls", "fd %d: write retried with fewer bytes "
                               "than OpenSSL holds", s->fd);
                return GUST_ETLS;
            }
            chunk = t->wpend;
        }
        const void *p = chunk_at(iov, iovcnt, idx, off, chunk);
        t->last_errno = 0;
        ERR_clear_error();
        int n = SSL_write(t->ssl, p, (int)chunk);
        if (n > 0) {
            t->wpend = 0;
            done += (size_t)n;
            size_t adv = (size_t)n;
            while (adv > 0) {
                size_t k = iov[idx].iov_len - off;
                if (k > adv)
                    k = adv;
                off += k;
                adv -= k;
                if (off == iov[idx].iov_len && adv > 0) {
                    idx++;
                    off = 0;
                }
            }
            continue;
        }
        int e = SSL_get_error(t->ssl, n);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            t->wpend = chunk;
            t->write_wants_read = e == SSL_ERROR_WANT_READ;
            break;
        }
        if (done > 0)
            break; /* the error comes back on the next call */
        return fail_code(t, n, "write");
    }
    return done > 0 ? (ssize_t)done : -EAGAIN;
}

static void deferred_cb(gust_loop *loop, void *data)
{
    (void)loop;
    tls_conn *t = data;
    t->cb(t->stream, t->cb_status, t->cb_data);
    free(t);
}

static void conn_free(tls_conn *t)
{
    SSL_free(t->ssl);
    t->ssl = NULL;
    gust_tls_context_free(t->ctx);
    t->ctx = NULL;
    free(t->in);
    t->in = NULL;
    t->in_off = t->in_len = 0;
    OPENSSL_free(t->subject);
    t->subject = NULL;
    free(t->alpn);
    t->alpn = NULL;
    free(t->server_name);
    t->server_name = NULL;
}

/* Called by the core just before it closes the fd. */
static void tls_close(gust_stream *s)
{
    tls_conn *t = s->rare->tp_state;
    if (!t)
        return;
    if (t->hs == HS_DONE && !t->fatal) {
        /* One try at close_notify; a full socket buffer just loses it. */
        ERR_clear_error();
        (void)SSL_shutdown(t->ssl);
        ERR_clear_error();
    }
    conn_free(t);
    gust__stream_set_transport(s, &tls_transport, NULL);
    if (t->hs == HS_RUNNING && t->cb) {
        /* The handshake callback is owed: queued before the close dispatch
         * (FIFO), so the stream is still alive when it runs. */
        t->cb_status = s->error ? s->error : GUST_ECANCELED;
        if (gust_loop_add_callback(s->loop, deferred_cb, t) == 0)
            return;
        t->cb(s, t->cb_status, t->cb_data);
    }
    free(t);
}

static unsigned tls_events(gust_stream *s, unsigned want)
{
    tls_conn *t = s->rare->tp_state;
    if (!t)
        return want;
    if (t->hs == HS_RUNNING)
        return t->hs_want;
    if (t->write_wants_read && (want & GUST_WRITE))
        want = (want & ~(unsigned)GUST_WRITE) | GUST_READ;
    if (t->read_wants_write && (want & GUST_READ))
        want |= GUST_WRITE;
    return want;
}

static size_t tls_pending(gust_stream *s)
{
    tls_conn *t = s->rare->tp_state;
    if (!t || t->hs != HS_DONE)
        return 0;
    int n = SSL_pending(t->ssl);
    if (n > 0)
        return (size_t)n;
    return in_has_record(t) ? t->in_len - t->in_off : 0;
}

static bool tls_on_event(gust_stream *s, unsigned events)
{
    tls_conn *t = s->rare->tp_state;
    if (!t)
        return false;
    if (t->hs == HS_RUNNING)
        return hs_step(s, t);
    /* The event a blocked call waited for came: the core retries it now,
     * and if nobody is left to retry, nothing must keep watching it. */
    if (events & (GUST_WRITE | GUST_ERROR))
        t->read_wants_write = false;
    if (events & (GUST_READ | GUST_ERROR))
        t->write_wants_read = false;
    return false;
}

static const gust__stream_transport tls_transport = {
    .name = "tls",
    .read = tls_read,
    .writev = tls_writev,
    .sendfile = NULL, /* the core falls back to pread + writev */
    .close = tls_close,
    .events = tls_events,
    .pending = tls_pending,
    .on_event = tls_on_event,
};

/* ---- Public calls ---------------------------------------------------------- */

/* Sets SNI and the name or address to verify. "[::1]" is taken as ::1. */
static int set_peer_name(tls_conn *t, const char *name, bool verify)
{
    size_t n = strlen(name);
    if (n >= 2 && name[0] == '[' && name[n - 1] == ']') {
        name++;
        n -= 2;
    }
    if (n == 0 || n > 255) /* longer than any DNS name */
        return -EINVAL;
    if (!(t->server_name = malloc(n + 1)))
        return -ENOMEM;
    memcpy(t->server_name, name, n);
    t->server_name[n] = '\0';
    unsigned char addr[16];
    bool is_ip = inet_pton(AF_INET, t->server_name, addr) == 1 ||
                 inet_pton(AF_INET6, t->server_name, addr) == 1;
    /* RFC 6066: SNI carries host names only, never address literals. */
    if (!is_ip && SSL_set_tlsext_host_name(t->ssl, t->server_name) != 1)
        return -ENOMEM;
    if (!verify)
        return 0;
    if (is_ip) {
        if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl),
                                          t->server_name) != 1)
            return -EINVAL;
        return 0;
    }
    SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    return SSL_set1_host(t->ssl, t->server_name) == 1 ? 0 : -ENOMEM;
}

int gust_stream_start_tls(gust_stream *stream, gust_tls_context *ctx,
                          const char *server_name, gust_tls_handshake_cb cb,
                          void *data)
{
    gust_stream *s = stream;
    assert(s && ctx);
    if (s->closed)
        return GUST_ESTREAMCLOSED;
    if (s->custom_tp || !s->is_socket ||
        s->rkind != GUST__READ_NONE || s->whead || s->rend > s->rstart)
        return -EINVAL;
    bool client = !gust__tls_context_is_server(ctx);
    bool verify = client && !gust__tls_context_insecure(ctx);
    if (verify && (!server_name || !*server_name))
        return -EINVAL;
    pthread_once(&bio_once, bio_method_init);
    if (!bio_method)
        return -ENOMEM;
    /* Made first, so that setting the transport below cannot fail. */
    if (!gust__stream_rare_get(s))
        return -ENOMEM;
    tls_conn *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    t->stream = s;
    t->client = client;
    t->cb = cb;
    t->cb_data = data;
    t->ssl = SSL_new(gust__tls_context_ssl(ctx));
    BIO *bio = t->ssl ? BIO_new(bio_method) : NULL;
    if (!bio) {
        SSL_free(t->ssl);
        free(t);
        ERR_clear_error();
        return -ENOMEM;
    }
    BIO_set_data(bio, t);
    SSL_set_bio(t->ssl, bio, bio);
    if (client) {
        SSL_set_connect_state(t->ssl);
        int r = server_name && *server_name
                    ? set_peer_name(t, server_name, verify) : 0;
        if (r < 0) {
            SSL_free(t->ssl);
            free(t->server_name);
            free(t);
            ERR_clear_error();
            return r;
        }
    } else {
        SSL_set_accept_state(t->ssl);
    }
    /* A client's Finished and its first request are two writes in a row:
     * with Nagle, the request waits for the server's delayed ACK (40 ms).
     * (Accepted sockets have TCP_NODELAY from the acceptor already.) */
    if (client)
        (void)gust_stream_set_nodelay(s, true);
    t->ctx = gust__tls_context_ref(ctx);
    /* The client speaks first: its first step waits for a writable socket,
     * so the handshake (and any failure) starts on the loop, never here. */
    t->hs = HS_RUNNING;
    t->hs_want = client ? GUST_WRITE : GUST_READ;
    (void)gust__stream_set_transport(s, &tls_transport, t);
    gust__stream_update_events(s, true);
    return 0;
}

bool gust_stream_is_tls(const gust_stream *stream)
{
    return gust__stream_tp(stream) == &tls_transport;
}

static tls_conn *done_conn(const gust_stream *stream)
{
    if (gust__stream_tp(stream) != &tls_transport)
        return NULL;
    tls_conn *t = stream->rare->tp_state;
    return t && t->hs == HS_DONE ? t : NULL;
}

const char *gust_stream_tls_alpn(const gust_stream *stream)
{
    tls_conn *t = done_conn(stream);
    return t ? t->alpn : NULL;
}

const char *gust_stream_tls_version(const gust_stream *stream)
{
    tls_conn *t = done_conn(stream);
    return t ? SSL_get_version(t->ssl) : NULL;
}

const char *gust_stream_tls_cipher(const gust_stream *stream)
{
    tls_conn *t = done_conn(stream);
    return t ? SSL_get_cipher_name(t->ssl) : NULL;
}

const char *gust_stream_tls_peer_subject(const gust_stream *stream)
{
    tls_conn *t = done_conn(stream);
    if (!t)
        return NULL;
    if (!t->subject) {
        X509 *cert = SSL_get0_peer_certificate(t->ssl);
        if (!cert)
            return NULL;
        t->subject = X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
    }
    return t->subject;
}
