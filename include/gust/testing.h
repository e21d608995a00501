/* Helpers for testing Gust applications (Tornado's tornado.testing and its
 * AsyncHTTPTestCase): start an app on an ephemeral 127.0.0.1 port of the
 * current loop, fetch from it synchronously from the test's own code, run
 * the loop until a future is done, with a timeout; then stop and free
 * everything so that the loop frees clean.
 *
 *     gust_app *app = gust_app_new(routes, NULL);
 *     gust_testing_server *t = gust_testing_start_app(app);
 *     gust_http_client_response *resp;
 *     int rc = gust_testing_fetch(t, "/hello?name=x", NULL, &resp);
 *     assert(rc == 0 && resp->code == 200);
 *     gust_http_client_response_free(resp);
 *     gust_testing_stop(t);
 *     gust_app_free(app);
 *     assert(gust_loop_free(gust_loop_current()) == 0);
 *
 * Code that must run inside the loop (several requests at once, a request
 * that waits for another) goes in a coroutine run with gust_testing_run(),
 * using gust_testing_client() and gust_testing_url() there.
 *
 * TIMEOUTS. Every wait is bounded, so that a broken app fails its test
 * instead of hanging it: a timeout <= 0 means the default, 5 seconds
 * (Tornado's ASYNC_TEST_TIMEOUT), or the environment variable
 * GUST_TEST_TIMEOUT (seconds) when it is set, e.g. under a slow sanitizer.
 *
 * THREADS. Everything runs on the calling thread's current loop
 * (gust_loop_current()), which must not be running: these calls run it
 * themselves (gust_loop_run_sync()), so they are made from the test's own
 * code, not from a callback or a coroutine.
 */
#ifndef GUST_TESTING_H
#define GUST_TESTING_H

#include "gust/common.h"

#include "gust/future.h"
#include "gust/http_client.h"
#include "gust/http_server.h"
#include "gust/loop.h"
#include "gust/web.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gust_testing_server gust_testing_server;

/* The default timeout in seconds: GUST_TEST_TIMEOUT if set to a positive
 * number, else 5. */
GUST_EXTERN double gust_testing_timeout(void);

/* Serves app (borrowed: it must outlive the server) on an ephemeral port
 * of 127.0.0.1 with the app's settings.server_options, on the current
 * loop, and makes a client (gust_http_client_new with default options) for
 * the fetches. Returns NULL with errno set (ENOMEM, or the bind's error;
 * the reason is logged). Stop it with gust_testing_stop(). */
GUST_EXTERN gust_testing_server *gust_testing_start_app(gust_app *app);

/* The same for any HTTP handler (a callback or a delegate, http_server.h);
 * opts may be NULL (defaults). */
GUST_EXTERN gust_testing_server *gust_testing_start(
    gust_http_handler handler, const gust_http_server_options *opts);

/* The port the server listens on. */
GUST_EXTERN int gust_testing_port(const gust_testing_server *t);

/* "http://127.0.0.1:<port>" followed by path (which starts with '/'), in
 * memory owned by t: valid until gust_testing_stop(). NULL if out of
 * memory. */
GUST_EXTERN const char *gust_testing_url(gust_testing_server *t,
                                         const char *path);

/* The client used by gust_testing_fetch(), owned by t, for fetches made
 * from coroutines (gust_await(gust_http_fetch(...))). */
GUST_EXTERN gust_http_client *gust_testing_client(gust_testing_server *t);

/* The server (owned by t), e.g. for gust_http_server_connection_count(). */
GUST_EXTERN gust_http_server *gust_testing_http_server(gust_testing_server *t);

/* Fetches path from the server and runs the loop until the response comes
 * or the timeout passes (Tornado's AsyncHTTPTestCase.fetch). req may be
 * NULL (a GET); otherwise its url is ignored and the rest used as given,
 * except that raise_error left at GUST_HTTP_DEFAULT means "no" here: a 404
 * is a response to look at, not an error. The request's timeouts default
 * to the testing timeout (the one given here; <= 0: the default).
 * Returns 0 and sets *resp (the caller frees it with
 * gust_http_client_response_free()), or the fetch's error (see http_client.h;
 * GUST_ETIMEOUT when the response did not come in time), *resp NULL. */
GUST_EXTERN int gust_testing_fetch(gust_testing_server *t, const char *path,
                                   const gust_http_client_request *req,
                                   double timeout,
                                   gust_http_client_response **resp);

/* Runs the current loop until f is done (consumed, as gust_loop_run_sync)
 * or timeout seconds pass (<= 0: the default). On timeout f is cancelled,
 * the loop runs a little more so that a cancelled coroutine unwinds, and
 * a line is logged ("testing: timed out after N s"). Returns f's status,
 * or GUST_ETIMEOUT. If result is not NULL, f's value is taken into it
 * (GUST_VALUE_NONE on error). */
GUST_EXTERN int gust_testing_run(gust_future *f, double timeout,
                                 gust_value *result);

/* Runs the current loop for about seconds (<= 0: 0.05), for what
 * completes in the background: close callbacks, a released stream. */
GUST_EXTERN void gust_testing_settle(double seconds);

/* Stops the server gracefully (gust_http_server_close_all(), waiting at
 * most the default timeout), frees it and the client (fetches still
 * running fail with GUST_ECANCELED), then settles the loop, so that the
 * caller may free the app and then the loop. NULL: no-op. */
GUST_EXTERN void gust_testing_stop(gust_testing_server *t);

#ifdef __cplusplus
}
#endif

#endif /* GUST_TESTING_H */
