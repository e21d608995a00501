/* TLS for streams, on OpenSSL (Tornado's SSLIOStream and ssl_options).
 *
 * A gust_tls_context holds the configuration shared by many connections:
 * certificates, trusted CAs, verification and ALPN. A stream becomes a TLS
 * stream with gust_stream_start_tls(); from then on every stream call
 * (read_until, write, sendfile, close...) works as on a plain stream, on the
 * decrypted bytes. The handshake runs without blocking, on the loop.
 *
 * Server side: put a server context in gust_tcp_server_options.tls and every
 * accepted stream starts TLS before handle_stream sees it (an HTTP server
 * then reports protocol "https").
 *
 *     gust_tls_options o = {.cert_file = "server.pem", .key_file = "key.pem"};
 *     gust_tls_context *tls = gust_tls_context_new_server(&o);
 *     gust_http_server_options so = {.tcp.tls = tls};
 *
 * Client side: the peer's certificate is verified against the system's CAs
 * (or ca_file) and the host name given to gust_stream_start_tls(), unless
 * insecure is set. A failed verification closes the stream with
 * GUST_ETLSVERIFY; any other handshake failure with GUST_ETLS.
 *
 * Defaults: TLS 1.2 or newer, no renegotiation, no compression. A peer that
 * closes the TCP connection without sending close_notify ends the stream
 * like a clean end of file (error 0), as browsers and Python's
 * suppress_ragged_eofs do: HTTP frames its own bodies. A local close sends
 * close_notify once, without waiting. gust_stream_sendfile() works on a TLS
 * stream: the file is read with pread() and encrypted (no kernel sendfile).
 * Handshake failures caused by the peer are logged at debug level (module
 * "tls", with OpenSSL's reason); configuration errors at error level.
 */
#ifndef GUST_TLS_H
#define GUST_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "gust/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gust_tls_context gust_tls_context;

/* TLS 1.2 suites offered and accepted by default: ephemeral (EC)DH key
 * exchange with AES-GCM or ChaCha20-Poly1305. CBC suites (LUCKY13 and its
 * kin) and static-RSA key exchange (no forward secrecy) are left out. */
#define GUST_TLS_DEFAULT_CIPHERS \
    "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!PSK:!DSS"

/* Every field may be left zero. Strings are copied or loaded at once. */
typedef struct gust_tls_options {
    /* PEM certificate chain and private key: required for a server,
     * optional for a client (client certificate). */
    const char *cert_file;
    const char *key_file;
    /* PEM file of trusted CAs. NULL: the system's default store. On a
     * server, setting it requires a client certificate signed by one of
     * them (the handshake fails without one). */
    const char *ca_file;
    /* Client only: do not verify the peer's certificate nor its name
     * (tests against self-signed servers). Off by default. */
    bool insecure;
    /* ALPN protocols in order of preference, NULL-terminated (e.g.
     * {"http/1.1", NULL}). NULL: no ALPN. A server picks the first of its
     * own that the client offers; with none in common it goes on without
     * ALPN rather than failing. */
    const char *const *alpn;
    /* OpenSSL cipher list for TLS 1.2 (TLS 1.3 suites are all AEAD with
     * forward secrecy, and are not affected). NULL: GUST_TLS_DEFAULT_CIPHERS,
     * AEAD suites with forward secrecy only; widen it with e.g. "DEFAULT"
     * (OpenSSL's own list: CBC, static RSA) for very old clients. */
    const char *ciphers;
    /* Oldest protocol accepted: 12 for TLS 1.2 (the default when 0), 13. */
    int min_version;
} gust_tls_options;

/* Creates a context for accepting (cert_file and key_file required) or for
 * connecting. Returns NULL with errno set (EINVAL for a missing or unusable
 * file; the OpenSSL reason is logged at error level, module "tls"). The
 * context is reference counted: each stream using it holds a reference, so
 * gust_tls_context_free() may be called while streams still use it. */
gust_tls_context *gust_tls_context_new_server(const gust_tls_options *opts);
gust_tls_context *gust_tls_context_new_client(const gust_tls_options *opts);

/* Drops the caller's reference. NULL: no-op. */
void gust_tls_context_free(gust_tls_context *ctx);

/* Called once the handshake is done (status 0) or failed (GUST_ETLS,
 * GUST_ETLSVERIFY, or a stream error such as -ECONNRESET); on failure the
 * stream is closed right after the callback returns. If the stream is
 * closed while the handshake runs (gust_stream_close(), a timeout), it runs
 * with the stream's error or GUST_ECANCELED, before the close callback.
 * Never run inside start_tls. */
typedef void (*gust_tls_handshake_cb)(gust_stream *stream, int status,
                                      void *data);

/* Turns a connected stream with no pending read or write into a TLS stream
 * and starts the handshake: as a client when ctx is a client context, with
 * server_name used for SNI and for verification (required unless
 * insecure), as a server otherwise (server_name NULL). server_name may be
 * a host name (checked against the certificate's DNS names, wildcards
 * whole-label only) or an IPv4/IPv6 address, bracketed or not (checked
 * against its IP addresses, and not sent as SNI). The stream may still be
 * connecting (gust_stream_connect()): the handshake starts once it is
 * connected. The stream must be a socket; a client's gets TCP_NODELAY
 * (TLS writes whole records, and Nagle would hold the first request back
 * behind the handshake's last flight). cb may be NULL:
 * reads and writes issued meanwhile wait for the handshake, and a failure
 * reaches them as their error. The stream holds a reference on ctx.
 * Returns 0, GUST_ESTREAMCLOSED, -EINVAL (already TLS, busy, not a socket,
 * or a missing or unusable server_name) or -ENOMEM. */
int gust_stream_start_tls(gust_stream *stream, gust_tls_context *ctx,
                          const char *server_name, gust_tls_handshake_cb cb,
                          void *data);

/* Whether the stream runs TLS (from start_tls on, also once closed). */
bool gust_stream_is_tls(const gust_stream *stream);

/* After the handshake: the ALPN protocol chosen ("http/1.1"), the protocol
 * version ("TLSv1.3"), the cipher name, and the peer certificate's subject
 * in one line ("/CN=localhost"); each NULL when unknown, before the
 * handshake is done, and once the stream is closed. The strings are the
 * stream's: valid while the stream is open. */
const char *gust_stream_tls_alpn(const gust_stream *stream);
const char *gust_stream_tls_version(const gust_stream *stream);
const char *gust_stream_tls_cipher(const gust_stream *stream);
const char *gust_stream_tls_peer_subject(const gust_stream *stream);

#ifdef __cplusplus
}
#endif

#endif /* GUST_TLS_H */
