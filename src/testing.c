/* Testing helpers (testing.h), Tornado's tornado.testing: a server on an
 * ephemeral port of the current loop, synchronous fetches, bounded runs of
 * the loop. Built on the public API only, as a user's test would be. */
#include <errno.h>
#include <stdlib.h>

#include "gust/arena.h"
#include "gust/log.h"
#include "gust/testing.h"

#define DEFAULT_TIMEOUT 5.0

struct gust_testing_server {
    gust_loop *loop;
    gust_http_server *server;
    gust_http_client *client;
    int port;
    gust_arena arena; /* URLs */
};

double gust_testing_timeout(void)
{
    const char *env = getenv("GUST_TEST_TIMEOUT");
    if (env && *env) {
        char *end;
        double t = strtod(env, &end);
        if (*end == '\0' && t > 0)
            return t;
    }
    return DEFAULT_TIMEOUT;
}

static double or_default(double timeout)
{
    return timeout > 0 ? timeout : gust_testing_timeout();
}

/* ---- Running the loop ---------------------------------------------------- */

static bool never(gust_loop *loop, void *data)
{
    (void)loop, (void)data;
    return false;
}

void gust_testing_settle(double seconds)
{
    gust_loop_run_until(gust_loop_current(), never, NULL,
                        seconds > 0 ? seconds : 0.05);
}

int gust_testing_run(gust_future *f, double timeout, gust_value *result)
{
    timeout = or_default(timeout);
    int rc = gust_loop_run_sync(gust_loop_current(), f, timeout, result);
    if (rc == GUST_ETIMEOUT) {
        gust_log_error("testing", "timed out after %g s", timeout);
        /* run_sync cancelled f: let a coroutine see it and unwind before
         * the test goes on to free things it may still hold. */
        gust_testing_settle(0.05);
    }
    return rc;
}

/* ---- Server -------------------------------------------------------------- */

gust_testing_server *gust_testing_start(gust_http_handler handler,
                                        const gust_http_server_options *opts)
{
    gust_testing_server *t = calloc(1, sizeof *t);
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    gust_arena_init(&t->arena, 512);
    t->loop = gust_loop_current();
    t->server = t->loop ? gust_http_server_new(handler, opts) : NULL;
    t->client = t->server ? gust_http_client_new(t->loop, NULL) : NULL;
    int rc = t->client ? gust_http_server_listen(t->server, 0, "127.0.0.1")
                       : -ENOMEM;
    if (rc < 0) {
        gust_log_error("testing", "cannot start the server: %s",
                       gust_strerror(rc));
        gust_http_client_free(t->client);
        gust_http_server_free(t->server);
        gust_arena_close(&t->arena);
        free(t);
        errno = -rc;
        return NULL;
    }
    t->port = gust_http_server_port(t->server);
    return t;
}

gust_testing_server *gust_testing_start_app(gust_app *app)
{
    return gust_testing_start(gust_app_http_handler(app),
                              gust_app_get_settings(app)->server_options);
}

int gust_testing_port(const gust_testing_server *t)
{
    return t->port;
}

const char *gust_testing_url(gust_testing_server *t, const char *path)
{
    return gust_arena_sprintf(&t->arena, "http://127.0.0.1:%d%s", t->port,
                              path ? path : "");
}

gust_http_client *gust_testing_client(gust_testing_server *t)
{
    return t->client;
}

gust_http_server *gust_testing_http_server(gust_testing_server *t)
{
    return t->server;
}

int gust_testing_fetch(gust_testing_server *t, const char *path,
                       const gust_http_client_request *req, double timeout,
                       gust_http_client_response **resp)
{
    *resp = NULL;
    timeout = or_default(timeout);
    gust_http_client_request r = {0};
    if (req)
        r = *req;
    r.url = gust_testing_url(t, path);
    if (!r.url)
        return -ENOMEM;
    if (r.raise_error == GUST_HTTP_DEFAULT)
        r.raise_error = GUST_HTTP_NO;
    if (r.request_timeout == 0)
        r.request_timeout = timeout;
    if (r.connect_timeout == 0)
        r.connect_timeout = timeout;
    gust_future *f = gust_http_client_fetch(t->client, &r);
    if (!f)
        return -ENOMEM;
    /* The fetch's own timeouts fire first, with their precise codes; the
     * margin only catches a client that never answers at all. */
    gust_value v;
    int rc = gust_testing_run(f, timeout + 1.0, &v);
    if (rc == 0)
        *resp = v.ptr; /* the response; the caller frees it */
    return rc;
}

static void on_all_closed(gust_http_server *srv, void *data)
{
    (void)srv;
    *(bool *)data = true;
}

static bool flag_set(gust_loop *loop, void *data)
{
    (void)loop;
    return *(bool *)data;
}

void gust_testing_stop(gust_testing_server *t)
{
    if (!t)
        return;
    /* The client first: its idle connections close at once, so the server
     * has no keep-alive connection left to wait for. */
    gust_http_client_free(t->client);
    bool closed = false;
    if (gust_http_server_close_all(t->server, on_all_closed, &closed) == 0 &&
        gust_loop_run_until(t->loop, flag_set, &closed,
                            gust_testing_timeout()) != 0)
        gust_log_error("testing", "the server still had %zu connection(s) "
                       "after %g s: closing them",
                       gust_http_server_connection_count(t->server),
                       gust_testing_timeout());
    gust_http_server_free(t->server);
    gust_arena_close(&t->arena);
    free(t);
    gust_testing_settle(0.05);
}
