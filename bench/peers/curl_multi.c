/* curl_multi: the libcurl baseline for bench_http_client. C easy handles
 * on one multi handle, each re-added as soon as its transfer completes, so
 * C requests stay in flight over C keep-alive connections (libcurl's
 * connection cache). Does not link Gust.
 *
 *   curl_multi [-c CONNECTIONS] [-n REQUESTS] [-d SECONDS] URL
 *
 * Prints, as bench_http_client does:
 *   curl-multi requests=N seconds=S req_s=R cpu_s=C req_cpu_s=X errors=E
 * libcurl is loaded at run time (dlopen of libcurl.so.4), so this builds
 * with bench/CMakeLists.txt's plain rule for peers and needs no link flag;
 * only the headers are needed at build time (Debian: libcurl4-openssl-dev),
 * and without them the program only says so.
 */
#if defined(__has_include)
#if __has_include(<curl/curl.h>)
#define HAVE_CURL 1
#endif
#endif

#include <stdio.h>
#include <stdlib.h>

#ifndef HAVE_CURL
int main(void)
{
    fprintf(stderr, "curl_multi: built without <curl/curl.h> "
                    "(apt-get install libcurl4-openssl-dev)\n");
    return 1;
}
#else
#include <curl/curl.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* libcurl's entry points, from dlsym. */
static struct {
    CURLcode (*global_init)(long);
    void (*global_cleanup)(void);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_setopt)(CURLM *, CURLMoption, ...);
    CURLMcode (*multi_add_handle)(CURLM *, CURL *);
    CURLMcode (*multi_remove_handle)(CURLM *, CURL *);
    CURLMcode (*multi_perform)(CURLM *, int *);
    CURLMsg *(*multi_info_read)(CURLM *, int *);
    CURLMcode (*multi_poll)(CURLM *, struct curl_waitfd *, unsigned, int,
                            int *);
    CURLMcode (*multi_cleanup)(CURLM *);
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    void (*easy_cleanup)(CURL *);
} cu;

static int load_curl(void)
{
    void *h = dlopen("libcurl.so.4", RTLD_NOW);
    if (!h)
        h = dlopen("libcurl.so", RTLD_NOW);
    if (!h) {
        fprintf(stderr, "curl_multi: %s\n", dlerror());
        return -1;
    }
#define LOAD(field, name)                                                     \
    if (!(*(void **)&cu.field = dlsym(h, name))) {                            \
        fprintf(stderr, "curl_multi: no %s in libcurl\n", name);              \
        return -1;                                                            \
    }
    LOAD(global_init, "curl_global_init")
    LOAD(global_cleanup, "curl_global_cleanup")
    LOAD(multi_init, "curl_multi_init")
    LOAD(multi_setopt, "curl_multi_setopt")
    LOAD(multi_add_handle, "curl_multi_add_handle")
    LOAD(multi_remove_handle, "curl_multi_remove_handle")
    LOAD(multi_perform, "curl_multi_perform")
    LOAD(multi_info_read, "curl_multi_info_read")
    LOAD(multi_poll, "curl_multi_poll")
    LOAD(multi_cleanup, "curl_multi_cleanup")
    LOAD(easy_init, "curl_easy_init")
    LOAD(easy_setopt, "curl_easy_setopt")
    LOAD(easy_getinfo, "curl_easy_getinfo")
    LOAD(easy_cleanup, "curl_easy_cleanup")
#undef LOAD
    return 0;
}

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

/* The body is counted, not kept: Gust keeps it, so a copy is fair. */
static size_t on_data(char *p, size_t size, size_t n, void *user)
{
    size_t *bytes = user;
    (void)p;
    *bytes += size * n;
    return size * n;
}

typedef struct run_state {
    long started, done, errors;
} run_state;

static void run(CURLM *m, CURL **easy, size_t *bytes, int conns, long n,
                double max_seconds, run_state *st)
{
    memset(st, 0, sizeof *st);
    double deadline = wall_now() + max_seconds;
    int running = 0;
    for (int i = 0; i < conns && st->started < n; i++) {
        bytes[i] = 0;
        cu.multi_add_handle(m, easy[i]);
        st->started++;
    }
    do {
        cu.multi_perform(m, &running);
        CURLMsg *msg;
        int left;
        while ((msg = cu.multi_info_read(m, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *e = msg->easy_handle;
            long code = 0;
            cu.easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            int idx = 0;
            while (easy[idx] != e)
                idx++;
            st->done++;
            if (msg->data.result != CURLE_OK || code != 200 || !bytes[idx])
                st->errors++;
            cu.multi_remove_handle(m, e);
            if (st->started < n && wall_now() < deadline) {
                bytes[idx] = 0;
                cu.multi_add_handle(m, e);
                st->started++;
                running++;
            }
        }
        if (running)
            cu.multi_poll(m, NULL, 0, 1000, NULL);
    } while (running);
}

int main(int argc, char **argv)
{
    int conns = 64;
    long n = 200000;
    double seconds = 10;
    const char *url = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-c") && i + 1 < argc)
            conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "-d") && i + 1 < argc)
            seconds = atof(argv[++i]);
        else
            url = argv[i];
    }
    if (!url || conns <= 0 || n <= 0) {
        fprintf(stderr, "usage: %s [-c CONNECTIONS] [-n REQUESTS] "
                        "[-d SECONDS] URL\n", argv[0]);
        return 2;
    }
    if (load_curl() < 0)
        return 1;
    cu.global_init(CURL_GLOBAL_DEFAULT);
    CURLM *m = cu.multi_init();
    cu.multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)conns);
    cu.multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conns);
    CURL **easy = calloc((size_t)conns, sizeof *easy);
    size_t *bytes = calloc((size_t)conns, sizeof *bytes);
    for (int i = 0; i < conns; i++) {
        easy[i] = cu.easy_init();
        cu.easy_setopt(easy[i], CURLOPT_URL, url);
        cu.easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, on_data);
        cu.easy_setopt(easy[i], CURLOPT_WRITEDATA, &bytes[i]);
        cu.easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
        cu.easy_setopt(easy[i], CURLOPT_TCP_NODELAY, 1L);
    }
    run_state st;
    run(m, easy, bytes, conns, conns, 10, &st); /* warm-up */
    if (st.errors) {
        fprintf(stderr, "curl_multi: warm-up failed\n");
        return 1;
    }
    double c0 = cpu_now(), t0 = wall_now();
    run(m, easy, bytes, conns, n, seconds, &st);
    double secs = wall_now() - t0, cpu = cpu_now() - c0;
    printf("curl-multi requests=%ld seconds=%.2f req_s=%.0f cpu_s=%.2f "
           "req_cpu_s=%.0f errors=%ld\n", st.done, secs, st.done / secs, cpu,
           cpu > 0 ? st.done / cpu : 0.0, st.errors);
    for (int i = 0; i < conns; i++)
        cu.easy_cleanup(easy[i]);
    cu.multi_cleanup(m);
    cu.global_cleanup();
    free(easy);
    free(bytes);
    return st.errors ? 1 : 0;
}
#endif /* HAVE_CURL */
