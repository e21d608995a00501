/* Internal calls shared by the TLS files (tls_context.c, stream_tls.c),
 * the TCP server (tcp_server.c, which starts TLS on accepted streams), the
 * HTTP server (http_server.c, which offers h2 by ALPN) and
 * the web layer through http_server_contract.h (an application keeps a
 * reference on its server's TLS context). Not installed. */
#ifndef GUST_TLS_INTERNAL_H
#define GUST_TLS_INTERNAL_H

#include <stdbool.h>

#include <openssl/ssl.h>

#include "gust/tls.h"

/* Takes one more reference on ctx (each TLS stream and each TCP server
 * using it holds one); gust_tls_context_free() drops one. Returns ctx. */
gust_tls_context *gust__tls_context_ref(gust_tls_context *ctx);

/* The OpenSSL context behind ctx, and what it was made for. */
SSL_CTX *gust__tls_context_ssl(const gust_tls_context *ctx);
bool gust__tls_context_is_server(const gust_tls_context *ctx);
bool gust__tls_context_insecure(const gust_tls_context *ctx);

/* A server context given no ALPN list by its options gets names (the
 * HTTP server offers {"h2", "http/1.1"}); one with a list keeps it.
 * Returns 0, -EINVAL (a client context, bad names) or -ENOMEM. */
int gust__tls_context_default_alpn(gust_tls_context *ctx,
                                   const char *const *names);

/* Logs what went wrong with OpenSSL's reason(s) taken from this thread's
 * error queue (which it empties): "what: reason". */
void gust__tls_log_errors(int level, const char *what);

#endif /* GUST_TLS_INTERNAL_H */
