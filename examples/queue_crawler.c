/* queue_crawler: Tornado's web spider demo, with a gust_queue feeding
 * worker coroutines that fetch pages over stream futures.
 *
 *   queue_crawler [--pages=N] [--workers=N]   (--help: the options)
 *
 * It crawls a site it serves itself on 127.0.0.1 (an ephemeral port): page
 * /page/K links to /page/2K+1 and /page/2K+2 (those below N) and back to
 * /page/0, so a complete crawl fetches exactly N pages. The queue holds the
 * paths still to fetch; each worker takes one, fetches it with HTTP/1.0,
 * puts the links it has not seen yet, and marks the path done; the main
 * coroutine waits on gust_queue_join() and prints what was fetched.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/gust.h"
#include "gust/http_server.h"
#include "gust/queue.h"

static int npages, nworkers, port;
static gust_queue *todo;
static char **seen;      /* every path ever queued (a demo: linear search) */
static size_t nseen;
static int fetched, failed;

/* ---- The site being crawled ------------------------------------------- */

static void serve_page(gust_http_request *req, void *data)
{
    (void)data;
    int k;
    if (sscanf(req->path, "/page/%d", &k) != 1 || k < 0 || k >= npages) {
        gust_http_respond(req, 404, "text/plain", "no such page\n", 13);
        return;
    }
    char body[512];
    int n = snprintf(body, sizeof body,
                     "<html><body><h1>Page %d</h1>"
                     "<a href=\"/page/0\">home</a>", k);
    for (int c = 2 * k + 1; c <= 2 * k + 2 && c < npages; c++)
        n += snprintf(body + n, sizeof body - (size_t)n,
                      " <a href=\"/page/%d\">page %d</a>", c, c);
    n += snprintf(body + n, sizeof body - (size_t)n, "</body></html>\n");
    gust_http_respond(req, 200, "text/html", body, (size_t)n);
}

/* ---- The crawler ------------------------------------------------------- */

static bool already_seen(const char *path)
{
    for (size_t i = 0; i < nseen; i++)
        if (strcmp(seen[i], path) == 0)
            return true;
    return false;
}

/* Queues path unless it was queued before. */
static void enqueue(const char *path, size_t len)
{
    char *p = strndup(path, len);
    if (!p || already_seen(p)) {
        free(p);
        return;
    }
    char **grown = realloc(seen, (nseen + 1) * sizeof *seen);
    if (grown)
        seen = grown;
    char *copy = grown ? strdup(p) : NULL;
    if (!copy) {
        free(p);
        return;
    }
    seen[nseen++] = copy;
    /* Unbounded queue: the put never waits, so nobody needs to await it. */
    if (gust_queue_put_nowait(todo, (gust_value){p, free}) < 0)
        free(p);
}

/* Fetches path; returns the response (status line, head and body) or an
 * error. */
static int fetch(gust_loop *loop, const char *path, gust_value *response)
{
    gust_value conn;
    int r = gust_await(gust_tcp_connect_f(loop, "127.0.0.1", port, NULL),
                       &conn);
    if (r < 0)
        return r;
    gust_stream *s = conn.ptr;
    /* s is freed right after it closes: check before each use. */
    gust_future *closed = gust_stream_closed_f(s);
    char req[256];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.0\r\nHost: 127.0.0.1:%d\r\n\r\n", path,
                     port);
    r = gust_await(gust_stream_write_f(s, req, (size_t)n), NULL);
    if (r == 0 && !gust_future_done(closed))
        r = gust_await(gust_stream_read_until_close_f(s), response);
    else if (r == 0)
        r = GUST_ESTREAMCLOSED;
    if (!gust_future_done(closed))
        gust_stream_close(s);
    gust_future_unref(closed);
    return r;
}

static int worker(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    (void)data;
    for (;;) {
        gust_value item;
        if (gust_await(gust_queue_get(todo, 0), &item) != 0)
            return 0; /* cancelled: the crawl is over */
        const char *path = item.ptr;
        gust_value resp;
        int r = fetch(loop, path, &resp);
        if (r < 0) {
            fprintf(stderr, "%s: %s\n", path, gust_strerror(r));
            failed++;
        } else {
            const gust_bytes *b = resp.ptr;
            fetched++;
            /* The links: every href="..." in the body. */
            const char *at = b->data;
            while ((at = strstr(at, "href=\""))) {
                at += 6;
                const char *end = strchr(at, '"');
                if (!end)
                    break;
                enqueue(at, (size_t)(end - at));
                at = end;
            }
            gust_value_free(&resp);
        }
        gust_value_free(&item);
        gust_queue_task_done(todo);
    }
}

static int crawl(gust_loop *loop, gust_value *result, void *data)
{
    (void)result;
    (void)data;
    double t0 = gust_loop_time(loop);
    enqueue("/page/0", 7);
    gust_future **workers = calloc((size_t)nworkers, sizeof *workers);
    if (!workers)
        return -ENOMEM;
    for (int i = 0; i < nworkers; i++)
        workers[i] = gust_spawn(loop, worker, NULL);
    int r = gust_await(gust_queue_join(todo, 30), NULL);
    for (int i = 0; i < nworkers; i++) {
        if (workers[i])
            gust_future_cancel(workers[i]);
        gust_future_unref(workers[i]);
    }
    free(workers);
    printf("fetched %d pages (%d failed) with %d workers in %.3f s%s\n",
           fetched, failed, nworkers, gust_loop_time(loop) - t0,
           r == GUST_ETIMEOUT ? " (timed out)" : "");
    return r;
}

/* ---- main -------------------------------------------------------------- */

static void on_all_closed(gust_http_server *srv, void *data)
{
    (void)srv;
    gust_loop_stop(data);
}

int main(int argc, char **argv)
{
    gust_options_define_int(NULL, "pages", &npages, 100,
                            "pages in the site crawled", NULL);
    gust_options_define_int(NULL, "workers", &nworkers, 5,
                            "worker coroutines fetching at once", NULL);
    gust_options_parse_command_line(NULL, argc, argv);
    if (npages < 1 || nworkers < 1) {
        fprintf(stderr, "--pages and --workers must be at least 1\n");
        gust_options_free(gust_options_default());
        return 2;
    }
    gust_loop *loop = gust_loop_current();
    gust_http_server_options opts = {.no_keep_alive = true};
    gust_http_server *srv =
        gust_http_server_new(gust_http_callback(serve_page, NULL), &opts);
    int r = srv ? gust_http_server_listen(srv, 0, "127.0.0.1") : -ENOMEM;
    todo = r == 0 ? gust_queue_new(loop, 0) : NULL;
    if (!todo) {
        fprintf(stderr, "cannot start: %s\n", gust_strerror(r ? r : -ENOMEM));
        gust_http_server_free(srv);
        gust_options_free(gust_options_default());
        return 1;
    }
    port = gust_http_server_port(srv);

    r = gust_loop_run_sync(loop, gust_spawn(loop, crawl, NULL), 60, NULL);
    /* Let the cancelled workers unwind, then close the server. */
    gust_loop_run_until(loop, NULL, NULL, 0.05);
    gust_http_server_close_all(srv, on_all_closed, loop);
    gust_loop_start(loop);
    gust_http_server_free(srv);
    gust_queue_free(todo);
    for (size_t i = 0; i < nseen; i++)
        free(seen[i]);
    free(seen);
    gust_options_free(gust_options_default());
    int left = gust_loop_free(loop);
    return r == 0 && fetched == npages && failed == 0 && left == 0 ? 0 : 1;
}
