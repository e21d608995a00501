/* Tests of TLS streams (tls.h) and the TCP server's TLS option, client and
 * server over 127.0.0.1 on one loop. A throwaway CA, a server certificate
 * it signed (for localhost and 127.0.0.1) and a self-signed certificate
 * are made with the openssl command in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "gust/error.h"
#include "gust/log.h"
#include "gust/loop.h"
#include "gust/stream.h"
#include "gust/tcp_server.h"
#include "gust/tls.h"
#include "gust_test.h"

static char dir[64];
static char ca_pem[128], srv_pem[128], srv_key[128], self_pem[128], self_key[128];
static char cli_pem[128], cli_key[128];

static int run(const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof full, "cd %s && %s >/dev/null 2>&1", dir, cmd);
    return system(full);
}

#define EC "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"

static int make_certs(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/gust-tls-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    FILE *f = fopen(strcat(strcpy(ca_pem, dir), "/ext.cnf"), "w");
    if (!f)
        return -1;
    fputs("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
          "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n", f);
    fclose(f);
    if (run("openssl req -x509 " EC " -keyout ca.key -out ca.pem "
            "-subj '/CN=Gust Test CA' "
            "-addext basicConstraints=critical,CA:TRUE "
            "-addext keyUsage=critical,keyCertSign,cRLSign") != 0 ||
        run("openssl req " EC " -keyout server.key -out server.csr "
            "-subj /CN=localhost") != 0 ||
        run("openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key "
            "-CAcreateserial -days 2 -out server.pem -extfile ext.cnf") != 0 ||
        run("printf 'extendedKeyUsage=clientAuth\\n' > cext.cnf") != 0 ||
        run("openssl req " EC " -keyout client.key -out client.csr "
            "-subj /CN=gust-client") != 0 ||
        run("openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key "
            "-CAcreateserial -days 2 -out client.pem -extfile cext.cnf") != 0 ||
        run("openssl req -x509 " EC " -keyout self.key -out self.pem "
            "-subj /CN=localhost "
            "-addext subjectAltName=DNS:localhost,IP:127.0.0.1") != 0)
        return -1;
    snprintf(ca_pem, sizeof ca_pem, "%s/ca.pem", dir);
    snprintf(srv_pem, sizeof srv_pem, "%s/server.pem", dir);
    snprintf(srv_key, sizeof srv_key, "%s/server.key", dir);
    snprintf(self_pem, sizeof self_pem, "%s/self.pem", dir);
    snprintf(self_key, sizeof self_key, "%s/self.key", dir);
    snprintf(cli_pem, sizeof cli_pem, "%s/client.pem", dir);
    snprintf(cli_key, sizeof cli_key, "%s/client.key", dir);
    return 0;
}

static int remove_certs(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static const char *const alpn_h11[] = { "http/1.1", NULL };
static const char *const alpn_client[] = { "h2", "http/1.1", NULL };

static gust_tls_context *server_ctx(bool self_signed)
{
    gust_tls_options o = {
        .cert_file = self_signed ? self_pem : srv_pem,
        .key_file = self_signed ? self_key : srv_key,
        .alpn = alpn_h11,
    };
    gust_tls_context *ctx = gust_tls_context_new_server(&o);
    assert_non_null(ctx);
    return ctx;
}

static gust_tls_context *client_ctx(const char *ca, bool insecure)
{
    gust_tls_options o = { .ca_file = ca, .insecure = insecure,
                           .alpn = alpn_client };
    gust_tls_context *ctx = gust_tls_context_new_client(&o);
    assert_non_null(ctx);
    return ctx;
}

/* ---- An echo server over TLS ------------------------------------------------ */

typedef struct server_side {
    int accepted, closed;
    const char *alpn;     /* as seen by the server, copied pointer is static */
    bool alpn_ok;
    bool was_tls;
} server_side;

static void echo_read(gust_stream *s, int status, const char *data, size_t len,
                      void *user);

static void echo_again(gust_stream *s, void *user)
{
    if (gust_stream_read_bytes(s, 65536, GUST_READ_PARTIAL, echo_read, user) < 0)
        gust_stream_close(s);
}

static void echo_read(gust_stream *s, int status, const char *data, size_t len,
                      void *user)
{
    if (status < 0)
        return; /* closing */
    if (gust_stream_write(s, data, len, NULL, NULL) < 0) {
        gust_stream_close(s);
        return;
    }
    echo_again(s, user);
}

static void server_closed(gust_stream *s, void *user)
{
    (void)s;
    ((server_side *)user)->closed++;
}

static void handle_echo(gust_tcp_server *srv, gust_stream *s,
                        const struct sockaddr *addr, socklen_t len, void *data)
{
    (void)srv;
    (void)addr;
    (void)len;
    server_side *e = data;
    e->accepted++;
    e->was_tls = gust_stream_is_tls(s);
    const char *a = gust_stream_tls_alpn(s);
    e->alpn_ok = a && strcmp(a, "http/1.1") == 0;
    gust_stream_set_close_callback(s, server_closed, e);
    echo_again(s, e);
}

static gust_tcp_server *start_server(gust_tls_context *tls, server_side *e,
                                     int *port)
{
    gust_tcp_server_options opts = { .tls = tls };
    gust_tcp_server *srv = gust_tcp_server_new(handle_echo, &opts, e);
    assert_non_null(srv);
    assert_int_equal(gust_tcp_server_listen(srv, 0, "127.0.0.1"), 0);
    *port = gust_tcp_server_port(srv);
    assert_true(*port > 0);
    return srv;
}

/* ---- A client ----------------------------------------------------------------- */

typedef struct client {
    int hs_done, hs_status;
    int closed;
    int read_done, read_status;
    char *got;
    size_t got_len;
} client;

static void client_hs(gust_stream *s, int status, void *user)
{
    (void)s;
    client *c = user;
    c->hs_done++;
    c->hs_status = status;
}

static void client_closed(gust_stream *s, void *user)
{
    (void)s;
    ((client *)user)->closed++;
}

static void client_read(gust_stream *s, int status, const char *data,
                        size_t len, void *user)
{
    (void)s;
    client *c = user;
    c->read_done++;
    c->read_status = status;
    if (status == 0 && len) {
        c->got = malloc(len);
        assert_non_null(c->got);
        memcpy(c->got, data, len);
        c->got_len = len;
    }
}

/* SO_SNDBUF for the next tcp_connect (0: the system's): a small one makes
 * the socket fill up, so that OpenSSL has to wait with a record in hand. */
static int next_sndbuf;

static gust_stream *tcp_connect(gust_loop *loop, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    if (next_sndbuf) {
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &next_sndbuf,
                                    sizeof next_sndbuf), 0);
        next_sndbuf = 0;
    }
    gust_stream *s = gust_stream_new(loop, fd, NULL);
    assert_non_null(s);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(gust_stream_connect(s, (struct sockaddr *)&sin, sizeof sin,
                                         NULL, NULL), 0);
    return s;
}

/* A TLS client stream, its handshake started while the connect runs. */
static gust_stream *tls_connect(gust_loop *loop, int port, gust_tls_context *ctx,
                                const char *name, client *c)
{
    gust_stream *s = tcp_connect(loop, port);
    gust_stream_set_close_callback(s, client_closed, c);
    assert_int_equal(gust_stream_start_tls(s, ctx, name, client_hs, c), 0);
    return s;
}

static bool no_connections(gust_loop *loop, void *data)
{
    (void)loop;
    return gust_tcp_server_connection_count(data) == 0;
}

static void finish(gust_loop *loop, gust_tcp_server *srv)
{
    assert_int_equal(gust_loop_run_until(loop, no_connections, srv,
                                         GUST_TEST_WAIT_SECONDS), 0);
    gust_tcp_server_free(srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* ---- Tests ---------------------------------------------------------------------- */

#define MB (1024 * 1024)

static void test_handshake_echo_1mb(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_tls_context *sctx = server_ctx(false);
    gust_tls_context *cctx = client_ctx(ca_pem, false);
    server_side e = { 0 };
    int port;
    gust_tcp_server *srv = start_server(sctx, &e, &port);
    gust_tls_context_free(sctx); /* the server holds its own reference */

    client c = { 0 };
    next_sndbuf = 8192;
    gust_stream *s = tls_connect(loop, port, cctx, "localhost", &c);
    gust_tls_context_free(cctx); /* the stream holds its own reference */
    assert_true(gust_stream_is_tls(s));

    /* Written and read before the handshake is done: both wait for it. */
    char *out = malloc(MB);
    assert_non_null(out);
    for (size_t i = 0; i < MB; i++)
        out[i] = (char)((i * 7919u) >> 3);
    assert_int_equal(gust_stream_write(s, out, MB, NULL, NULL), 0);
    assert_int_equal(gust_stream_read_bytes(s, MB, 0, client_read, &c), 0);
    assert_int_equal(c.hs_done, 0); /* never inside start_tls */
    run_until_set(loop, &c.read_done);
    assert_int_equal(c.hs_done, 1);
    assert_int_equal(c.hs_status, 0);
    assert_int_equal(c.read_status, 0);
    assert_int_equal(c.got_len, MB);
    assert_memory_equal(c.got, out, MB);

    /* What the handshake agreed on, seen from both ends. */
    assert_int_equal(e.accepted, 1);
    assert_true(e.was_tls);
    assert_true(e.alpn_ok);
    assert_string_equal(gust_stream_tls_alpn(s), "http/1.1");
    assert_non_null(gust_stream_tls_version(s));
    assert_non_null(strstr(gust_stream_tls_version(s), "TLSv1."));
    assert_non_null(gust_stream_tls_cipher(s));
    assert_non_null(strstr(gust_stream_tls_peer_subject(s), "CN=localhost"));

    gust_stream_close(s);
    run_until_set(loop, &c.closed);
    free(c.got);
    free(out);
    finish(loop, srv);
    assert_int_equal(e.closed, 1);
}

static void sent_cb(gust_stream *s, int status, void *user)
{
    (void)s;
    assert_int_equal(status, 0);
    (*(int *)user)++;
}

/* Verification of an IP address against the certificate's IP SAN, and a
 * file sent with sendfile over TLS (read back through the echo). */
static void test_ip_name_and_sendfile(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_tls_context *sctx = server_ctx(false);
    gust_tls_context *cctx = client_ctx(ca_pem, false);
    server_side e = { 0 };
    int port;
    gust_tcp_server *srv = start_server(sctx, &e, &port);
    client c = { 0 };
    gust_stream *s = tls_connect(loop, port, cctx, "127.0.0.1", &c);
    run_until_set(loop, &c.hs_done);
    assert_int_equal(c.hs_status, 0);

    char path[128];
    snprintf(path, sizeof path, "%s/file.bin", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static char data[100000];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (char)(i % 251);
    assert_int_equal(write(fd, data, sizeof data), (ssize_t)sizeof data);
    int sent = 0;
    assert_int_equal(gust_stream_sendfile(s, fd, 1000, sizeof data - 1000,
                                          sent_cb, &sent), 0);
    assert_int_equal(gust_stream_read_bytes(s, sizeof data - 1000, 0,
                                            client_read, &c), 0);
    run_until_set(loop, &c.read_done);
    assert_int_equal(sent, 1);
    assert_int_equal(c.read_status, 0);
    assert_int_equal(c.got_len, sizeof data - 1000);
    assert_memory_equal(c.got, data + 1000, sizeof data - 1000);
    close(fd);
    gust_stream_close(s);
    run_until_set(loop, &c.closed);
    free(c.got);
    gust_tls_context_free(cctx);
    gust_tls_context_free(sctx);
    finish(loop, srv);
}

static void test_wrong_host_name(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_tls_context *sctx = server_ctx(false);
    gust_tls_context *cctx = client_ctx(ca_pem, false);
    server_side e = { 0 };
    int port;
    gust_tcp_server *srv = start_server(sctx, &e, &port);
    client c = { 0 };
    gust_stream *s = tls_connect(loop, port, cctx, "example.com", &c);
    assert_int_equal(gust_stream_read_bytes(s, 10, 0, client_read, &c), 0);
    run_until_set(loop, &c.closed);
    assert_int_equal(c.hs_done, 1);
    assert_int_equal(c.hs_status, GUST_ETLSVERIFY);
    /* A read waiting for the handshake gets the failure too. */
    assert_int_equal(c.read_done, 1);
    assert_int_equal(c.read_status, GUST_ETLSVERIFY);
    assert_int_equal(e.accepted, 0);
    gust_tls_context_free(cctx);
    gust_tls_context_free(sctx);
    finish(loop, srv);
}

static void test_self_signed(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_tls_context *sctx = server_ctx(true);
    server_side e = { 0 };
    int port;
    gust_tcp_server *srv = start_server(sctx, &e, &port);
    gust_tls_context_free(sctx);

    /* The system's store does not trust it. */
    gust_tls_context *strict = client_ctx(NULL, false);
    client c = { 0 };
    tls_connect(loop, port, strict, "localhost", &c);
    run_until_set(loop, &c.closed);
    assert_int_equal(c.hs_status, GUST_ETLSVERIFY);
    gust_tls_context_free(strict);

    /* insecure takes it, with no name at all. */
    gust_tls_context *lax = client_ctx(NULL, true);
    client d = { 0 };
    gust_stream *s = tls_connect(loop, port, lax, NULL, &d);
    gust_tls_context_free(lax);
    assert_int_equal(gust_stream_write(s, "ping", 4, NULL, NULL), 0);
    assert_int_equal(gust_stream_read_bytes(s, 4, 0, client_read, &d), 0);
    run_until_set(loop, &d.read_done);
    assert_int_equal(d.hs_status, 0);
    assert_memory_equal(d.got, "ping", 4);
    free(d.got);
    gust_stream_close(s);
    run_until_set(loop, &d.closed);
    assert_int_equal(e.accepted, 1);
    finish(loop, srv);
}

static void test_start_tls_misuse(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_tls_context *cctx = client_ctx(ca_pem, false);
    int sv[2];
    make_pair(sv);
    gust_stream *s = gust_stream_new(loop, sv[0], NULL);
    assert_non_null(s);
    assert_false(gust_stream_is_tls(s));
    assert_null(gust_stream_tls_version(s));
    /* Verification needs a name. */
    assert_int_equal(gust_stream_start_tls(s, cctx, NULL, NULL, NULL), -EINVAL);
    assert_int_equal(gust_stream_start_tls(s, cctx, "localhost", NULL, NULL), 0);
    assert_int_equal(gust_stream_start_tls(s, cctx, "localhost", NULL, NULL),
                     -EINVAL); /* already TLS */
    int closed = 0;
    gust_stream_set_close_callback(s, count_close_cb, &closed);
    gust_stream_close(s);
    run_until_set(loop, &closed);
    close(sv[1]);
    gust_tls_context_free(cctx);

    /* Files that cannot be used fail at once, with errno EINVAL. */
    int level = gust_log_level();
    gust_log_set_level(GUST_LOG_NONE);
    gust_tls_options bad = { .cert_file = "/nonexistent.pem",
                             .key_file = srv_key };
    assert_null(gust_tls_context_new_server(&bad));
    assert_int_equal(errno, EINVAL);
    gust_tls_options mismatch = { .cert_file = srv_pem, .key_file = self_key };
    assert_null(gust_tls_context_new_server(&mismatch));
    assert_int_equal(errno, EINVAL);
    assert_null(gust_tls_context_new_server(NULL));
    gust_log_set_level(level);
    gust_tls_context_free(NULL);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* A raw TCP server that accepts and closes at once: the client's handshake
 * fails with an error, it does not hang. */
static void test_peer_closes_mid_handshake(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(listen(lfd, 4), 0);
    socklen_t sl = sizeof sin;
    getsockname(lfd, (struct sockaddr *)&sin, &sl);
    gust_tls_context *cctx = client_ctx(ca_pem, false);
    client c = { 0 };
    gust_stream *s = tls_connect(loop, ntohs(sin.sin_port), cctx, "localhost", &c);
    (void)s;
    /* The ClientHello leaves from the loop: turn it while waiting. */
    int afd = -1;
    char buf[5];
    size_t got = 0;
    double deadline = now_s() + GUST_TEST_WAIT_SECONDS;
    while (got < sizeof buf && now_s() < deadline) {
        gust_loop_run_once(loop, 0.05);
        if (afd < 0)
            afd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        ssize_t n = afd < 0 ? -1 : recv(afd, buf + got, sizeof buf - got, 0);
        if (n > 0)
            got += (size_t)n;
    }
    /* Read the ClientHello's first bytes so that the close is an EOF. */
    assert_int_equal(got, sizeof buf);
    assert_int_equal(buf[0], 0x16); /* a TLS handshake record */
    close(afd);
    run_until_set(loop, &c.closed);
    assert_int_equal(c.hs_done, 1);
    assert_true(c.hs_status == GUST_ETLS || c.hs_status == -ECONNRESET);
    close(lfd);
    gust_tls_context_free(cctx);

    /* And the other way: a client that sends half a ClientHello and goes
     * away never reaches handle_stream, and its slot is given back. */
    gust_tls_context *sctx = server_ctx(false);
    server_side e = { 0 };
    int port;
    gust_tcp_server *srv = start_server(sctx, &e, &port);
    gust_tls_context_free(sctx);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sin.sin_port = htons((uint16_t)port);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    static const char half[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    assert_int_equal(send(fd, half, sizeof half - 1, 0), (ssize_t)sizeof half - 1);
    while (gust_tcp_server_connection_count(srv) == 0)
        gust_loop_run_once(loop, 1.0);
    close(fd);
    finish(loop, srv);
    assert_int_equal(e.accepted, 0);
}

/* Not TLS at all: a plain HTTP request to the TLS port gets nginx's short
 * 400 in clear (a mistyped scheme), and the connection is closed without
 * reaching handle_stream. */
static void test_plain_client_on_tls_port(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_tls_context *sctx = server_ctx(false);
    server_side e = { 0 };
    int port;
    gust_tcp_server *srv = start_server(sctx, &e, &port);
    gust_tls_context_free(sctx);
    client c = { 0 };
    gust_stream *s = tcp_connect(loop, port);
    gust_stream_set_close_callback(s, client_closed, &c);
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(gust_stream_write(s, req, sizeof req - 1, NULL, NULL), 0);
    assert_int_equal(gust_stream_read_until_close(s, 0, client_read, &c), 0);
    run_until_set(loop, &c.closed);
    static const char want[] = "HTTP/1.1 400 Bad Request\r\n";
    assert_true(c.got_len > sizeof want - 1);
    assert_memory_equal(c.got, want, sizeof want - 1);
    assert_non_null(memmem(c.got, c.got_len, "sent to HTTPS port", 18));
    free(c.got);
    finish(loop, srv);
    assert_int_equal(e.accepted, 0);
}

/* The client closes its stream while the handshake runs: the handshake
 * callback still runs once, with GUST_ECANCELED. */
static void test_close_during_handshake(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_tls_context *sctx = server_ctx(false);
    gust_tls_context *cctx = client_ctx(ca_pem, false);
    server_side e = { 0 };
    int port;
    gust_tcp_server *srv = start_server(sctx, &e, &port);
    client c = { 0 };
    gust_stream *s = tls_connect(loop, port, cctx, "localhost", &c);
    gust_tls_context_free(cctx);
    gust_tls_context_free(sctx);
    gust_stream_close(s);
    assert_int_equal(c.hs_done, 0);
    run_until_set(loop, &c.closed);
    assert_int_equal(c.hs_done, 1);
    assert_int_equal(c.hs_status, GUST_ECANCELED);
    finish(loop, srv);
}

/* A server context with ca_file requires client certificates. */
static void test_client_certificates(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_tls_options so = { .cert_file = srv_pem, .key_file = srv_key,
                            .ca_file = ca_pem };
    gust_tls_context *sctx = gust_tls_context_new_server(&so);
    assert_non_null(sctx);
    server_side e = { 0 };
    int port;
    gust_tcp_server *srv = start_server(sctx, &e, &port);
    gust_tls_context_free(sctx);

    /* Without a certificate: refused by the server. In TLS 1.3 the client
     * may finish its side first and hear of it on its first read. */
    gust_tls_context *anon = client_ctx(ca_pem, false);
    client c = { 0 };
    gust_stream *s = tls_connect(loop, port, anon, "localhost", &c);
    gust_tls_context_free(anon);
    assert_int_equal(gust_stream_read_bytes(s, 4, 0, client_read, &c), 0);
    run_until_set(loop, &c.closed);
    assert_true(c.hs_status < 0 || c.read_status < 0);
    assert_int_equal(c.got_len, 0);
    assert_int_equal(e.accepted, 0);

    /* With one signed by the CA: accepted. */
    gust_tls_options co = { .ca_file = ca_pem, .cert_file = cli_pem,
                            .key_file = cli_key };
    gust_tls_context *cctx = gust_tls_context_new_client(&co);
    assert_non_null(cctx);
    client d = { 0 };
    s = tls_connect(loop, port, cctx, "localhost", &d);
    gust_tls_context_free(cctx);
    assert_int_equal(gust_stream_write(s, "pong", 4, NULL, NULL), 0);
    assert_int_equal(gust_stream_read_bytes(s, 4, 0, client_read, &d), 0);
    run_until_set(loop, &d.read_done);
    assert_int_equal(d.read_status, 0);
    assert_memory_equal(d.got, "pong", 4);
    free(d.got);
    assert_int_equal(e.accepted, 1);
    gust_stream_close(s);
    run_until_set(loop, &d.closed);
    finish(loop, srv);
}

/* Reads smaller than a record leave plaintext inside OpenSSL, where no fd
 * event will announce it: reads started later, outside any callback, must
 * still get it. */
static void test_small_reads_from_buffered_records(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_tls_context *sctx = server_ctx(false);
    gust_tls_context *cctx = client_ctx(ca_pem, false);
    server_side e = { 0 };
    int port;
    gust_tcp_server *srv = start_server(sctx, &e, &port);
    gust_tls_context_free(sctx);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    gust_stream_options so = { .read_chunk_size = 100 };
    gust_stream *s = gust_stream_new(loop, fd, &so);
    assert_non_null(s);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(gust_stream_connect(s, (struct sockaddr *)&sin, sizeof sin,
                                         NULL, NULL), 0);
    client c = { 0 };
    gust_stream_set_close_callback(s, client_closed, &c);
    assert_int_equal(gust_stream_start_tls(s, cctx, "localhost", client_hs, &c),
                     0);
    gust_tls_context_free(cctx);
    static char out[40000];
    for (size_t i = 0; i < sizeof out; i++)
        out[i] = (char)('a' + i % 26);
    assert_int_equal(gust_stream_write(s, out, sizeof out, NULL, NULL), 0);
    /* Wait until the whole echo has surely arrived before reading. */
    run_until_set(loop, &c.hs_done);
    double until = now_s() + 0.3;
    while (now_s() < until)
        gust_loop_run_once(loop, 0.05);
    for (size_t off = 0; off < sizeof out; off += 1000) {
        c.read_done = 0;
        free(c.got);
        c.got = NULL;
        assert_int_equal(gust_stream_read_bytes(s, 1000, 0, client_read, &c), 0);
        run_until_set(loop, &c.read_done);
        assert_int_equal(c.read_status, 0);
        assert_int_equal(c.got_len, 1000);
        assert_memory_equal(c.got, out + off, 1000);
    }
    free(c.got);
    gust_stream_close(s);
    run_until_set(loop, &c.closed);
    finish(loop, srv);
}

/* A server freed while a client is still in its handshake closes that
 * connection: it was never handed to anyone else. */
static void test_free_server_during_handshake(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_tls_context *sctx = server_ctx(false);
    server_side e = { 0 };
    int port;
    gust_tcp_server *srv = start_server(sctx, &e, &port);
    gust_tls_context_free(sctx);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port) };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
    double deadline = now_s() + GUST_TEST_WAIT_SECONDS;
    while (gust_tcp_server_connection_count(srv) == 0 && now_s() < deadline)
        gust_loop_run_once(loop, 0.05);
    assert_int_equal(gust_tcp_server_connection_count(srv), 1);
    gust_tcp_server_free(srv);
    /* The silent client sees its connection closed. */
    char buf[16];
    struct timeval tv = { 10, 0 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    for (int i = 0; i < 10; i++)
        gust_loop_run_once(loop, 0.01);
    assert_int_equal(recv(fd, buf, sizeof buf, 0), 0);
    close(fd);
    assert_int_equal(e.accepted, 0);
    assert_int_equal(gust_loop_free(loop), 0);
}

/* Many writes of odd sizes, copied and borrowed (several iovecs each),
 * queued while the socket is full: records are packed from pieces and
 * retried after WANT_WRITE with exactly the bytes OpenSSL holds. */
static void ref_done(gust_stream *s, int status, void *user)
{
    (void)s;
    assert_int_equal(status, 0);
    (*(int *)user)++;
}

static void test_mixed_writes_byte_for_byte(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    gust_tls_context *sctx = server_ctx(false);
    gust_tls_context *cctx = client_ctx(ca_pem, false);
    server_side e = { 0 };
    int port;
    gust_tcp_server *srv = start_server(sctx, &e, &port);
    gust_tls_context_free(sctx);
    client c = { 0 };
    next_sndbuf = 4096;
    gust_stream *s = tls_connect(loop, port, cctx, "localhost", &c);
    gust_tls_context_free(cctx);

    enum { TOTAL = 3 * MB };
    char *src = malloc(TOTAL);
    assert_non_null(src);
    uint32_t x = 12345;
    for (size_t i = 0; i < TOTAL; i++) {
        x = x * 1103515245u + 12345u;
        src[i] = (char)(x >> 16);
    }
    size_t off = 0;
    int refs = 0, refs_done = 0;
    while (off < TOTAL) {
        x = x * 1103515245u + 12345u;
        size_t n = 1 + (x >> 8) % 9000;
        if (n > TOTAL - off)
            n = TOTAL - off;
        if ((x & 3) == 0 && n >= 3) {
            /* Three borrowed pieces: 1 byte, a middle, the rest. */
            struct iovec iov[3] = {
                { src + off, 1 },
                { src + off + 1, (n - 1) / 2 },
                { src + off + 1 + (n - 1) / 2, n - 1 - (n - 1) / 2 },
            };
            assert_int_equal(gust_stream_write_ref(s, iov, 3, ref_done,
                                                   &refs_done), 0);
            refs++;
        } else {
            assert_int_equal(gust_stream_write(s, src + off, n, NULL, NULL), 0);
        }
        off += n;
    }
    assert_int_equal(gust_stream_read_bytes(s, TOTAL, 0, client_read, &c), 0);
    run_until_set(loop, &c.read_done);
    assert_int_equal(c.hs_status, 0);
    assert_int_equal(c.read_status, 0);
    assert_int_equal(c.got_len, TOTAL);
    assert_memory_equal(c.got, src, TOTAL);
    assert_true(refs > 0);
    assert_int_equal(refs_done, refs);
    free(c.got);
    free(src);
    gust_stream_close(s);
    run_until_set(loop, &c.closed);
    finish(loop, srv);
}

/* STARTTLS: a plain exchange on a unix socketpair, then both ends switch
 * to TLS with start_tls (no TCP server involved) and echo through it. */
static void got_line(gust_stream *s, int status, const char *data, size_t len,
                     void *user)
{
    (void)s;
    (void)data;
    client *c = user;
    c->read_status = status;
    c->got_len = len;
    c->read_done++;
}

static void test_starttls_on_socketpair(void **state)
{
    (void)state;
    gust_loop *loop = gust_loop_current();
    int sv[2];
    make_pair(sv);
    gust_stream *a = gust_stream_new(loop, sv[0], NULL);
    gust_stream *b = gust_stream_new(loop, sv[1], NULL);
    assert_non_null(a);
    assert_non_null(b);
    client ca = { 0 }, cb = { 0 };
    gust_stream_set_close_callback(a, client_closed, &ca);
    gust_stream_set_close_callback(b, client_closed, &cb);
    assert_int_equal(gust_stream_write(a, "STARTTLS\n", 9, NULL, NULL), 0);
    assert_int_equal(gust_stream_read_until(b, "\n", 1, 0, got_line, &cb), 0);
    run_until_set(loop, &cb.read_done);
    assert_int_equal(cb.got_len, 9);

    gust_tls_context *sctx = server_ctx(false);
    gust_tls_context *cctx = client_ctx(ca_pem, false);
    assert_int_equal(gust_stream_start_tls(b, sctx, NULL, client_hs, &cb), 0);
    assert_int_equal(gust_stream_start_tls(a, cctx, "localhost", client_hs, &ca),
                     0);
    gust_tls_context_free(sctx);
    gust_tls_context_free(cctx);
    assert_int_equal(gust_stream_write(a, "hello", 5, NULL, NULL), 0);
    cb.read_done = 0;
    assert_int_equal(gust_stream_read_bytes(b, 5, 0, client_read, &cb), 0);
    run_until_set(loop, &cb.read_done);
    assert_int_equal(ca.hs_status, 0);
    assert_int_equal(cb.hs_status, 0);
    assert_int_equal(cb.read_status, 0);
    assert_memory_equal(cb.got, "hello", 5);
    assert_string_equal(gust_stream_tls_peer_subject(a), "/CN=localhost");
    assert_null(gust_stream_tls_peer_subject(b)); /* no client certificate */
    assert_string_equal(gust_stream_tls_alpn(b), "http/1.1");
    free(cb.got);

    /* A local close ends the peer's read_until_close cleanly (status 0,
     * not an error). */
    assert_int_equal(gust_stream_read_until_close(b, 0, client_read, &cb), 0);
    gust_stream_close(a);
    run_until_set(loop, &cb.closed);
    assert_int_equal(cb.read_status, 0);
    run_until_set(loop, &ca.closed);
    assert_int_equal(gust_loop_free(loop), 0);
}

#define T(fn) cmocka_unit_test_setup(fn, test_setup)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_handshake_echo_1mb),
        T(test_ip_name_and_sendfile),
        T(test_wrong_host_name),
        T(test_self_signed),
        T(test_start_tls_misuse),
        T(test_peer_closes_mid_handshake),
        T(test_plain_client_on_tls_port),
        T(test_close_during_handshake),
        T(test_mixed_writes_byte_for_byte),
        T(test_starttls_on_socketpair),
        T(test_client_certificates),
        T(test_small_reads_from_buffered_records),
        T(test_free_server_during_handshake),
    };
    if (make_certs(NULL) != 0) {
        fprintf(stderr, "cannot make test certificates with openssl\n");
        return 1;
    }
    int failed = cmocka_run_group_tests_name("tls (default backend)", tests,
                                             setup_default, teardown_env);
    failed += cmocka_run_group_tests_name("tls (poll backend)", tests,
                                          setup_poll, teardown_env);
    return remove_certs(NULL) == 0 ? failed : failed + 1;
}
