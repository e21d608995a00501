/* bench_http_client: requests per second of Gust's HTTP client against one
 * URL (a local nginx in bench/client_compare.sh), with C fetches in flight
 * over at most C keep-alive connections.
 *
 *   bench_http_client [-c CONNECTIONS] [-n REQUESTS] [-d SECONDS]
 *                     [--http2] [--ca FILE] URL
 *
 * Runs until REQUESTS responses (default 200000) or SECONDS (default 10)
 * have passed, whichever comes first, after a warm-up of CONNECTIONS
 * requests. Prints one line:
 *   gust-client requests=N seconds=S req_s=R cpu_s=C req_cpu_s=X errors=E
 * cpu_s is the process's user + system time during the run: the client's
 * own cost, comparable between clients pinned to the same core.
 * --http2 sets the client's http2 option: against an https server that
 * picks h2, the CONNECTIONS fetches in flight share one connection.
 * --ca FILE verifies the server against that CA.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "gust/gust.h"
#include "gust/http_client.h"

typedef struct bench {
    gust_loop *loop;
    gust_http_client *client;
    gust_http_client_request req;
    long started, done, errors, limit;
    double deadline;
    int in_flight;
} bench;

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void start_one(bench *b);

static void on_response(gust_http_client_response *resp, void *data)
{
    bench *b = data;
    b->in_flight--;
    b->done++;
    if (resp->error || resp->body_len == 0)
        b->errors++;
    if (b->errors == 1 && resp->error)
        fprintf(stderr, "bench_http_client: %s\n", resp->error_message);
    if (b->started < b->limit && wall_now() < b->deadline)
        start_one(b);
    else if (b->in_flight == 0)
        gust_loop_stop(b->loop);
}

static void start_one(bench *b)
{
    if (gust_http_client_fetch_cb(b->client, &b->req, on_response, b) == 0) {
        b->started++;
        b->in_flight++;
    }
}

/* Runs n requests with conns in flight; returns the seconds it took. */
static double run(bench *b, long n, int conns, double max_seconds)
{
    b->started = b->done = b->errors = 0;
    b->limit = n;
    b->deadline = wall_now() + max_seconds;
    double t0 = wall_now();
    for (int i = 0; i < conns && b->started < n; i++)
        start_one(b);
    gust_loop_start(b->loop);
    return wall_now() - t0;
}

int main(int argc, char **argv)
{
    int conns = 64;
    long n = 200000;
    double seconds = 10;
    const char *url = NULL, *ca = NULL;
    bool http2 = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc)
            conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "-d") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (!strcmp(argv[i], "--http2"))
            http2 = true;
        else if (!strcmp(argv[i], "--ca") && i + 1 < argc)
            ca = argv[++i];
        else
            url = argv[i];
    }
    if (!url || conns <= 0 || n <= 0) {
        fprintf(stderr, "usage: %s [-c CONNECTIONS] [-n REQUESTS] "
                        "[-d SECONDS] [--http2] [--ca FILE] URL\n", argv[0]);
        return 2;
    }
    bench b = {.loop = gust_loop_new()};
    gust_http_client_options o = {.max_clients = conns, .http2 = http2};
    b.client = gust_http_client_new(b.loop, &o);
    b.req = (gust_http_client_request){.url = url, .ca_file = ca};
    if (!b.loop || !b.client)
        return 1;

    run(&b, conns, conns, 10); /* warm-up: opens the connections */
    if (b.errors) {
        fprintf(stderr, "bench_http_client: warm-up failed\n");
        return 1;
    }
    double c0 = cpu_now();
    double secs = run(&b, n, conns, seconds);
    double cpu = cpu_now() - c0;
    gust_http_client_stats st;
    gust_http_client_get_stats(b.client, &st);
    printf("gust-client requests=%ld seconds=%.2f req_s=%.0f cpu_s=%.2f "
           "req_cpu_s=%.0f errors=%ld connections=%zu\n", b.done, secs,
           b.done / secs, cpu, cpu > 0 ? b.done / cpu : 0.0, b.errors,
           st.connections);
    gust_http_client_free(b.client);
    for (int i = 0; i < 10; i++)
        gust_loop_run_once(b.loop, 0.01);
    gust_loop_free(b.loop);
    return b.errors ? 1 : 0;
}
