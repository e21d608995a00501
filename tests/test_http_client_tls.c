/* HTTP client over TLS (http_client.h with tls.h) against Gust's own HTTPS
 * server in the same process: verification against a CA file, the
 * system's CAs (which do not know the test CA), validate_cert off, client
 * certificates, keep-alive over TLS. Certificates are made with the openssl
 * command in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/gust.h"
#include "gust/http_client.h"
#include "gust/tls.h"
#include "gust_test.h"

static char dir[64];
static char ca_pem[128], srv_pem[128], srv_key[128], cli_pem[128],
    cli_key[128];

static int sh(const char *cmd)
{
    char full[2048];
    snprintf(full, sizeof full, "cd %s && %s >/dev/null 2>&1", dir, cmd);
    return system(full);
}

static int write_file(const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fputs(text, f);
    return fclose(f) == 0 ? 0 : -1;
}

#define EC "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"

static int make_certs(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/gust-hc-tls-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    if (write_file("srv.cnf", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                              "basicConstraints=CA:FALSE\n"
                              "extendedKeyUsage=serverAuth\n") != 0 ||
        write_file("cli.cnf", "extendedKeyUsage=clientAuth\n") != 0 ||
        sh("openssl req -x509 " EC " -keyout ca.key -out ca.pem "
           "-subj '/CN=Gust Client Test CA' "
           "-addext basicConstraints=critical,CA:TRUE "
           "-addext keyUsage=critical,keyCertSign,cRLSign") != 0 ||
        sh("openssl req " EC " -keyout srv.key -out srv.csr "
           "-subj /CN=localhost") != 0 ||
        sh("openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key "
           "-CAcreateserial -days 2 -out srv.pem -extfile srv.cnf") != 0 ||
        sh("openssl req " EC " -keyout cli.key -out cli.csr "
           "-subj /CN=gust-client") != 0 ||
        sh("openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key "
           "-CAcreateserial -days 2 -out cli.pem -extfile cli.cnf") != 0) {
        fprintf(stderr, "cannot make test certificates with openssl\n");
        return -1;
    }
    snprintf(ca_pem, sizeof ca_pem, "%s/ca.pem", dir);
    snprintf(srv_pem, sizeof srv_pem, "%s/srv.pem", dir);
    snprintf(srv_key, sizeof srv_key, "%s/srv.key", dir);
    snprintf(cli_pem, sizeof cli_pem, "%s/cli.pem", dir);
    snprintf(cli_key, sizeof cli_key, "%s/cli.key", dir);
    return 0;
}

static int remove_certs(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void handle(gust_http_request *req, void *data)
{
    (void)data;
    gust_http_respond(req, 200, "text/plain", "secret", 6);
}

typedef struct env {
    gust_loop *loop;
    gust_http_server *srv;
    gust_http_client *client;
    int port;
} env;

/* An HTTPS server on 127.0.0.1; with client_ca it asks for client
 * certificates signed by it. */
static void start(env *e, bool client_ca)
{
    e->loop = gust_loop_new();
    assert_non_null(e->loop);
    gust_loop_make_current(e->loop);
    gust_tls_options to = {.cert_file = srv_pem, .key_file = srv_key,
                           .ca_file = client_ca ? ca_pem : NULL};
    gust_tls_context *ctx = gust_tls_context_new_server(&to);
    assert_non_null(ctx);
    gust_http_server_options so = {.tcp.tls = ctx};
    e->srv = gust_http_server_new(gust_http_callback(handle, NULL), &so);
    gust_tls_context_free(ctx); /* the server holds its own reference */
    assert_non_null(e->srv);
    assert_int_equal(gust_http_server_listen(e->srv, 0, "127.0.0.1"), 0);
    e->port = gust_http_server_port(e->srv);
    e->client = gust_http_client_new(e->loop, NULL);
    assert_non_null(e->client);
}

static void on_all_closed(gust_http_server *srv, void *data)
{
    (void)srv;
    *(bool *)data = true;
}

static void stop(env *e)
{
    gust_http_client_free(e->client);
    bool done = false;
    assert_int_equal(gust_http_server_close_all(e->srv, on_all_closed, &done), 0);
    for (int i = 0; i < 500 && !done; i++)
        gust_loop_run_once(e->loop, 0.01);
    assert_true(done);
    gust_http_server_free(e->srv);
    for (int i = 0; i < 20; i++)
        gust_loop_run_once(e->loop, 0.005);
    assert_int_equal(gust_loop_free(e->loop), 0);
}

/* Fetches r; returns the status and, on success, the body in body. */
static int fetch(env *e, gust_http_client_request *r, char *body, size_t n,
                 bool *reused)
{
    gust_value v;
    int rc = gust_loop_run_sync(e->loop, gust_http_client_fetch(e->client, r),
                                30, &v);
    if (rc == 0) {
        gust_http_client_response *resp = v.ptr;
        snprintf(body, n, "%s", resp->body);
        if (reused)
            *reused = resp->reused_connection;
        gust_value_free(&v);
    }
    return rc;
}

static void test_verified_and_kept(void **state)
{
    (void)state;
    env e;
    start(&e, false);
    char url[128], body[64];
    bool reused = true;
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", e.port);
    gust_http_client_request r = {.url = url, .ca_file = ca_pem};
    assert_int_equal(fetch(&e, &r, body, sizeof body, &reused), 0);
    assert_string_equal(body, "secret");
    assert_false(reused);
    assert_int_equal(fetch(&e, &r, body, sizeof body, &reused), 0);
    assert_true(reused);
    /* By name, through the resolver: the certificate names localhost. */
    snprintf(url, sizeof url, "https://localhost:%d/", e.port);
    assert_int_equal(fetch(&e, &r, body, sizeof body, NULL), 0);
    stop(&e);
}

static void test_unknown_ca_refused(void **state)
{
    (void)state;
    env e;
    start(&e, false);
    char url[128], body[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", e.port);
    gust_http_client_request r = {.url = url};
    assert_int_equal(fetch(&e, &r, body, sizeof body, NULL), GUST_ETLSVERIFY);
    r.validate_cert = GUST_HTTP_NO;
    assert_int_equal(fetch(&e, &r, body, sizeof body, NULL), 0);
    assert_string_equal(body, "secret");
    /* A missing CA file is a TLS error of this fetch, not a crash. */
    gust_http_client_request bad = {.url = url, .ca_file = "/nonexistent.pem"};
    assert_int_equal(fetch(&e, &bad, body, sizeof body, NULL), GUST_ETLS);
    stop(&e);
}

static void test_client_certificate(void **state)
{
    (void)state;
    env e;
    start(&e, true);
    char url[128], body[64];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/", e.port);
    gust_http_client_request r = {.url = url, .ca_file = ca_pem,
                                  .client_cert = cli_pem,
                                  .client_key = cli_key};
    assert_int_equal(fetch(&e, &r, body, sizeof body, NULL), 0);
    assert_string_equal(body, "secret");
    /* Without one the server refuses (how depends on the TLS version: a
     * failed handshake or a closed connection), never a success. */
    gust_http_client_request none = {.url = url, .ca_file = ca_pem,
                                     .request_timeout = 10};
    int rc = fetch(&e, &none, body, sizeof body, NULL);
    assert_true(rc < 0);
    assert_int_not_equal(rc, GUST_ETIMEOUT);
    stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_verified_and_kept, test_setup),
        cmocka_unit_test_setup(test_unknown_ca_refused, test_setup),
        cmocka_unit_test_setup(test_client_certificate, test_setup),
    };
    return cmocka_run_group_tests(tests, make_certs, remove_certs);
}
