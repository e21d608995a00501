/* TLS contexts: one OpenSSL SSL_CTX with Gust's defaults, shared by many
 * streams and reference counted. stream_tls.c runs the connections.
 *
 * Defaults, whatever the caller leaves zero: TLS 1.2 at least, no
 * renegotiation (it is the one case where a write must wait for a read),
 * no compression (CRIME), partial writes and moving write buffers (the
 * stream's write queue hands out its bytes as it likes), and buffers given
 * back while a connection is idle. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "gust/log.h"
#include "gust/tls.h"
#include "tls_internal.h"

struct gust_tls_context {
    SSL_CTX *ssl;
    atomic_int refs; /* a context may be shared by loops on several threads */
    bool server;
    bool insecure;
    unsigned char *alpn; /* wire format: length-prefixed names */
    unsigned alpn_len;
};

void gust__tls_log_errors(int level, const char *what)
{
    char msg[512];
    size_t used = 0;
    unsigned long e;
    const char *data;
    int flags;
    msg[0] = '\0';
    while ((e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        char one[256];
        ERR_error_string_n(e, one, sizeof one);
        int n = snprintf(msg + used, sizeof msg - used, "%s%s%s%s",
                         used ? "; " : "", one,
                         (flags & ERR_TXT_STRING) && data && *data ? ": " : "",
                         (flags & ERR_TXT_STRING) && data ? data : "");
        if (n > 0)
            used += (size_t)n < sizeof msg - used ? (size_t)n : sizeof msg - used - 1;
    }
    gust_log(level, "tls", "%s: %s", what, used ? msg : "no OpenSSL reason");
}

gust_tls_context *gust__tls_context_ref(gust_tls_context *ctx)
{
    atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    return ctx;
}

SSL_CTX *gust__tls_context_ssl(const gust_tls_context *ctx)
{
    return ctx->ssl;
}

bool gust__tls_context_is_server(const gust_tls_context *ctx)
{
    return ctx->server;
}

bool gust__tls_context_insecure(const gust_tls_context *ctx)
{
    return ctx->insecure;
}

void gust_tls_context_free(gust_tls_context *ctx)
{
    if (!ctx)
        return;
    if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(ctx->ssl);
    free(ctx->alpn);
    free(ctx);
}

/* {"h2", "http/1.1", NULL} -> "\x02h2\x08http/1.1". */
static int alpn_encode(gust_tls_context *ctx, const char *const *names)
{
    size_t total = 0;
    for (size_t i = 0; names[i]; i++) {
        size_t n = strlen(names[i]);
        if (n == 0 || n > 255)
            return -EINVAL;
        total += n + 1;
    }
    if (total == 0 || total > 65535)
        return -EINVAL;
    ctx->alpn = malloc(total);
    if (!ctx->alpn)
        return -ENOMEM;
    size_t off = 0;
    for (size_t i = 0; names[i]; i++) {
        size_t n = strlen(names[i]);
        ctx->alpn[off++] = (unsigned char)n;
        memcpy(ctx->alpn + off, names[i], n);
        off += n;
    }
    ctx->alpn_len = (unsigned)total;
    return 0;
}

/* Server side ALPN: the first of our protocols that the client offers (our
 * order of preference wins). No common protocol: go on without ALPN rather
 * than fail, as most servers do. */
static int alpn_select(SSL *ssl, const unsigned char **out,
                       unsigned char *outlen, const unsigned char *in,
                       unsigned inlen, void *arg)
{
    (void)ssl;
    gust_tls_context *ctx = arg;
    for (unsigned i = 0; i < ctx->alpn_len; i += 1u + ctx->alpn[i]) {
        const unsigned char *mine = ctx->alpn + i;
        for (unsigned j = 0; j < inlen; j += 1u + in[j]) {
            if (j + 1u + in[j] > inlen)
                break; /* malformed list from the peer */
            if (in[j] == mine[0] && memcmp(in + j + 1, mine + 1, mine[0]) == 0) {
                *out = in + j + 1;
                *outlen = in[j];
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    return SSL_TLSEXT_ERR_NOACK;
}

int gust__tls_context_default_alpn(gust_tls_context *ctx,
                                   const char *const *names)
{
    if (!ctx || !ctx->server)
        return -EINVAL;
    if (ctx->alpn)
        return 0;
    int r = alpn_encode(ctx, names);
    if (r == 0)
        SSL_CTX_set_alpn_select_cb(ctx->ssl, alpn_select, ctx);
    return r;
}

static int min_version(int v)
{
    switch (v) {
    case 0:
    case 12:
        return TLS1_2_VERSION;
    case 13:
        return TLS1_3_VERSION;
    default:
        return -1;
    }
}

/* A configuration error: logged at error level with OpenSSL's reason. */
static gust_tls_context *fail(gust_tls_context *ctx, int err, const char *what,
                              const char *file)
{
    char buf[600];
    if (file)
        snprintf(buf, sizeof buf, "%s '%s'", what, file);
    else
        snprintf(buf, sizeof buf, "%s", what);
    gust__tls_log_errors(GUST_LOG_ERROR, buf);
    if (ctx) {
        SSL_CTX_free(ctx->ssl);
        free(ctx->alpn);
        free(ctx);
    }
    errno = err;
    return NULL;
}

static gust_tls_context *context_new(const gust_tls_options *opts, bool server)
{
    static const gust_tls_options none = { 0 };
    if (!opts)
        opts = &none;
    ERR_clear_error();
    if (server && (!opts->cert_file || !opts->key_file))
        return fail(NULL, EINVAL, "a server context needs cert_file and key_file",
                    NULL);
    int minv = min_version(opts->min_version);
    if (minv < 0)
        return fail(NULL, EINVAL, "min_version must be 0, 12 or 13", NULL);
    gust_tls_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return fail(NULL, ENOMEM, "out of memory", NULL);
    atomic_init(&ctx->refs, 1);
    ctx->server = server;
    ctx->insecure = !server && opts->insecure;
    ctx->ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx->ssl)
        return fail(ctx, ENOMEM, "SSL_CTX_new", NULL);
    SSL_CTX *c = ctx->ssl;
    if (!SSL_CTX_set_min_proto_version(c, minv))
        return fail(ctx, EINVAL, "cannot set the minimum TLS version", NULL);
    /* A peer that closes without close_notify ends the stream like a clean
     * EOF (HTTP frames its own bodies), as Python's suppress_ragged_eofs. */
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               SSL_OP_IGNORE_UNEXPECTED_EOF |
                               (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
    const char *ciphers = opts->ciphers ? opts->ciphers
                                        : GUST_TLS_DEFAULT_CIPHERS;
    if (!SSL_CTX_set_cipher_list(c, ciphers))
        return fail(ctx, EINVAL, "unusable cipher list", ciphers);
    /* The DHE suites need parameters: OpenSSL's built-in ones, sized to
     * the certificate's key. */
    if (server)
        SSL_CTX_set_dh_auto(c, 1);
    if (opts->cert_file &&
        SSL_CTX_use_certificate_chain_file(c, opts->cert_file) != 1)
        return fail(ctx, EINVAL, "cannot load the certificate chain",
                    opts->cert_file);
    if (opts->key_file) {
        if (SSL_CTX_use_PrivateKey_file(c, opts->key_file, SSL_FILETYPE_PEM) != 1)
            return fail(ctx, EINVAL, "cannot load the private key",
                        opts->key_file);
        if (SSL_CTX_check_private_key(c) != 1)
            return fail(ctx, EINVAL, "the private key does not match the "
                        "certificate", opts->key_file);
    }
    if (opts->alpn && opts->alpn[0]) {
        int r = alpn_encode(ctx, opts->alpn);
        if (r < 0)
            return fail(ctx, -r, "bad ALPN protocol list", NULL);
        if (server)
            SSL_CTX_set_alpn_select_cb(c, alpn_select, ctx);
        else if (SSL_CTX_set_alpn_protos(c, ctx->alpn, ctx->alpn_len) != 0)
            return fail(ctx, ENOMEM, "cannot set ALPN protocols", NULL);
    }
    if (server) {
        if (opts->ca_file) {
            /* Client certificates: asked for, required, checked. */
            if (SSL_CTX_load_verify_locations(c, opts->ca_file, NULL) != 1)
                return fail(ctx, EINVAL, "cannot load CA file", opts->ca_file);
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(opts->ca_file);
            if (names)
                SSL_CTX_set_client_CA_list(c, names);
            SSL_CTX_set_verify(c, SSL_VERIFY_PEER |
                                      SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        }
        /* Resumed sessions must match this context (needed with client
         * certificates, harmless without). */
        static const unsigned char sid[] = "gust";
        SSL_CTX_set_session_id_context(c, sid, sizeof sid - 1);
    } else if (!ctx->insecure) {
        int ok = opts->ca_file
                     ? SSL_CTX_load_verify_locations(c, opts->ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(c);
        if (ok != 1)
            return fail(ctx, EINVAL, "cannot load trusted CAs",
                        opts->ca_file ? opts->ca_file : "(system store)");
        SSL_CTX_set_verify(c, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, NULL);
    }
    ERR_clear_error();
    return ctx;
}

gust_tls_context *gust_tls_context_new_server(const gust_tls_options *opts)
{
    return context_new(opts, true);
}

gust_tls_context *gust_tls_context_new_client(const gust_tls_options *opts)
{
    return context_new(opts, false);
}
