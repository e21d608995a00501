/* Unit tests for the HTTP/1 server (include/gust/http_server.h): real
 * sockets on 127.0.0.1, the server on the test's loop, a blocking raw client
 * in a thread. The client only records what it saw; the main thread asserts
 * once it has joined. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gust/http_server.h"
#include "gust/log.h"
#include "gust/loop.h"
#include "gust_test.h"
#include "http_server_internal.h"

/* ---- Client side (runs in a thread) ------------------------------------ */

static int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k <= 0)
            return;
        s += k;
        n -= (size_t)k;
    }
}

/* True if the peer closed within ms milliseconds (pending data is read and
 * appended to out, which may be NULL). */
static bool closed_within(int fd, int ms, char *out, size_t cap, size_t *len)
{
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, ms) <= 0)
            return false;
        char tmp[4096];
        ssize_t k = recv(fd, tmp, sizeof tmp, 0);
        if (k <= 0)
            return true;
        if (out && *len + (size_t)k < cap) {
            memcpy(out + *len, tmp, (size_t)k);
            *len += (size_t)k;
            out[*len] = 0;
        }
    }
}

/* Reads one response (head, then Content-Length or chunked body, or no
 * body for HEAD / 204 / 304) into out. Returns its length or -1. */
static long read_response(int fd, char *out, size_t cap, bool head_only)
{
    size_t len = strlen(out); /* bytes left over from the previous one */
    for (;;) {
        out[len] = 0;
        char *end = strstr(out, "\r\n\r\n");
        if (end) {
            size_t hl = (size_t)(end + 4 - out);
            const char *cl = strcasestr(out, "\r\nContent-Length: ");
            int code = atoi(out + 9);
            size_t want = hl;
            if (!head_only && code != 204 && code != 304 && code >= 200) {
                if (cl && cl < end)
                    want = hl + strtoul(cl + 18, NULL, 10);
                else if (strcasestr(out, "chunked") &&
                         strstr(end + 4, "0\r\n\r\n"))
                    want = (size_t)(strstr(end + 4, "0\r\n\r\n") + 5 - out);
                else if (strcasestr(out, "chunked"))
                    want = cap; /* need more */
            }
            if (len >= want)
                return (long)want;
        }
        if (len + 1 >= cap)
            return -1;
        ssize_t k = recv(fd, out + len, cap - 1 - len, 0);
        if (k <= 0)
            return -1;
        len += (size_t)k;
    }
}

typedef struct job {
    gust_loop *loop;
    int port;
    void (*fn)(struct job *j);
    /* results */
    char resp[8192];
    long resp_len;
    bool closed;
    int status;
    int count;
    char extra[8192];
} job;

static void *client_main(void *p)
{
    job *j = p;
    j->fn(j);
    gust_loop_stop_threadsafe(j->loop);
    return NULL;
}

static void run_client(gust_loop *loop, gust_http_server *srv, job *j)
{
    j->loop = loop;
    j->port = gust_http_server_port(srv);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, client_main, j), 0);
    assert_int_equal(gust_loop_start(loop), 0);
    pthread_join(t, NULL);
}

/* Graceful shutdown, then the loop must free with nothing left. */
static void finish_server(gust_loop *loop, gust_http_server *srv)
{
    close_http_server(loop, srv);
    assert_int_equal(gust_loop_free(loop), 0);
}

static gust_loop *new_loop(void)
{
    gust_loop *loop = gust_loop_new();
    assert_non_null(loop);
    gust_loop_make_current(loop);
    return loop;
}

static gust_http_server *start(gust_http_handler h,
                               const gust_http_server_options *o)
{
    gust_http_server *srv = gust_http_server_new(h, o);
    assert_non_null(srv);
    assert_int_equal(gust_http_server_listen(srv, 0, "127.0.0.1"), 0);
    return srv;
}

/* ---- Handlers ------------------------------------------------------------ */

/* E1: raw response. */
static void raw_handler(gust_http_request *req, void *data)
{
    (void)data;
    char msg[256];
    int n = snprintf(msg, sizeof msg, "You requested %s\n", req->uri);
    gust_http_request_printf(req, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s",
                             n, msg);
    gust_http_request_finish(req);
}

/* Structured: /204, /304 set that status; the body is the request body,
 * or "xyz". */
static void struct_handler(gust_http_request *req, void *data)
{
    (void)data;
    int status = atoi(req->path + 1);
    if (status < 200)
        status = 200;
    gust_http_response_set_status(req, status, NULL);
    if (req->body.len)
        gust_http_response_write(req, req->body.ptr, req->body.len);
    else
        gust_http_response_write(req, "xyz", 3);
    gust_http_request_finish(req);
}

/* ---- Keep-alive matrix --------------------------------------------------- */

static const char *ka_request;

static void ka_client(job *j)
{
    int fd = client_connect(j->port);
    send_all(fd, ka_request, strlen(ka_request));
    j->resp_len = read_response(fd, j->resp, sizeof j->resp, false);
    size_t n = 0;
    j->closed = closed_within(fd, 500, NULL, 0, &n);
    close(fd);
}

static void test_keep_alive_matrix(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        bool no_keep_alive;
        bool kept;
    } cases[] = {
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", false, true},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", false, false},
        {"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\n\r\n", false, true},
        {"GET / HTTP/1.0\r\n\r\n", false, false},
        {"GET / HTTP/1.0\r\nConnection: close\r\n\r\n", false, false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false, true},
        {"POST / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false, false},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true, false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gust_loop *loop = new_loop();
        gust_http_server_options o = {.no_keep_alive = cases[i].no_keep_alive};
        gust_http_server *srv = start(gust_http_callback(raw_handler, NULL), &o);
        job j = {.fn = ka_client};
        ka_request = cases[i].req;
        run_client(loop, srv, &j);
        assert_true(j.resp_len > 0);
        assert_non_null(strstr(j.resp, "You requested /"));
        if (j.closed == cases[i].kept)
            fail_msg("case %zu: kept=%d expected %d", i, !j.closed, cases[i].kept);
        finish_server(loop, srv);
    }
}

/* ---- Pipelining ---------------------------------------------------------- */

static void pipeline_client(job *j)
{
    int fd = client_connect(j->port);
    char reqs[2048];
    size_t n = 0;
    for (int i = 0; i < 10; i++)
        n += (size_t)sprintf(reqs + n, "GET /r%d HTTP/1.1\r\nHost: a\r\n\r\n", i);
    send_all(fd, reqs, n);
    size_t got = 0;
    for (int i = 0; i < 10; i++) {
        long k = read_response(fd, j->resp, sizeof j->resp, false);
        if (k < 0)
            break;
        char want[32];
        sprintf(want, "You requested /r%d\n", i);
        if (strstr(j->resp, want))
            j->count++;
        /* keep what followed this response */
        size_t total = strlen(j->resp);
        memmove(j->resp, j->resp + k, total - (size_t)k + 1);
        got++;
    }
    close(fd);
}

static void test_pipelining(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_http_server *srv = start(gust_http_callback(raw_handler, NULL), NULL);
    job j = {.fn = pipeline_client};
    run_client(loop, srv, &j);
    assert_int_equal(j.count, 10);
    finish_server(loop, srv);
}

/* ---- Bodies -------------------------------------------------------------- */

static const char *script_req;  /* sent at once */
static const char *script_body; /* sent after "100 Continue" if not NULL */

static void script_client(job *j)
{
    int fd = client_connect(j->port);
    send_all(fd, script_req, strlen(script_req));
    if (script_body) {
        char cont[64] = {0};
        ssize_t k = recv(fd, cont, 25, MSG_WAITALL);
        if (k == 25 && strcmp(cont, "HTTP/1.1 100 Continue\r\n\r\n") == 0)
            j->count = 1;
        send_all(fd, script_body, strlen(script_body));
    }
    j->resp_len = read_response(fd, j->resp, sizeof j->resp,
                                strncmp(script_req, "HEAD", 4) == 0);
    size_t n = 0;
    j->extra[0] = 0;
    if (j->resp_len > 0) { /* what came with it belongs to the next one */
        n = strlen(j->resp + j->resp_len);
        memcpy(j->extra, j->resp + j->resp_len, n + 1);
        j->resp[j->resp_len] = 0;
    }
    j->closed = closed_within(fd, 300, j->extra, sizeof j->extra, &n);
    close(fd);
}

static void run_script(const gust_http_server_options *o, gust_http_handler h,
                       const char *req, const char *body, job *j)
{
    gust_loop *loop = new_loop();
    gust_http_server *srv = start(h, o);
    memset(j, 0, sizeof *j);
    j->fn = script_client;
    script_req = req;
    script_body = body;
    run_client(loop, srv, j);
    finish_server(loop, srv);
}

static void test_chunked_body(void **state)
{
    (void)state;
    job j;
    run_script(NULL, gust_http_callback(struct_handler, NULL),
               "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
               "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nTrailer: x\r\n\r\n",
               NULL, &j);
    assert_true(j.resp_len > 0);
    assert_non_null(strstr(j.resp, "Content-Length: 12\r\n"));
    assert_non_null(strstr(j.resp, "\r\n\r\nhello, world"));
    assert_false(j.closed);
}

static void test_expect_continue(void **state)
{
    (void)state;
    job j;
    run_script(NULL, gust_http_callback(struct_handler, NULL),
               "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n"
               "Expect: 100-continue\r\n\r\n", "body", &j);
    assert_int_equal(j.count, 1);
    assert_non_null(strstr(j.resp, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(j.resp, "\r\n\r\nbody"));
}

static void test_no_body_responses(void **state)
{
    (void)state;
    static const char *reqs[] = {
        "HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n"
        "Connection: close\r\n\r\n",
        "GET /204 HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n"
        "Connection: close\r\n\r\n",
        "GET /304 HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n"
        "Connection: close\r\n\r\n",
    };
    for (int i = 0; i < 3; i++) {
        job j;
        run_script(NULL, gust_http_callback(struct_handler, NULL), reqs[i],
                   NULL, &j);
        /* The first response's head ends right before the second one. */
        char *end = strstr(j.resp, "\r\n\r\n");
        assert_non_null(end);
        if (i == 0)
            assert_non_null(strstr(j.resp, "Content-Length: 3\r\n"));
        else
            assert_null(strstr(j.resp, "Content-Length"));
        assert_non_null(strstr(j.resp, "Date: "));
        assert_non_null(strstr(j.resp, "Server: Gust/"));
        /* what followed is the second response, starting with its status */
        if (strncmp(j.extra, "HTTP/1.1 200 OK\r\n", 17) != 0)
            fail_msg("case %d: resp [%s] extra [%s]", i, j.resp, j.extra);
        assert_non_null(strstr(j.extra, "Connection: close\r\n"));
        assert_true(j.closed);
    }
}

/* ---- Limits -------------------------------------------------------------- */

static void test_limits(void **state)
{
    (void)state;
    gust_log_set_level(GUST_LOG_ERROR); /* the warnings are expected */
    gust_http_server_options o = {.max_header_size = 1024, .max_body_size = 100};
    char big[4096];
    snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: a\r\nX: %0*d\r\n\r\n",
             2000, 0);
    job j;
    run_script(&o, gust_http_callback(struct_handler, NULL), big, NULL, &j);
    assert_true(strncmp(j.resp, "HTTP/1.1 431 ", 13) == 0);
    assert_true(j.closed);

    run_script(&o, gust_http_callback(struct_handler, NULL),
               "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", NULL,
               &j);
    assert_true(strncmp(j.resp, "HTTP/1.1 413 ", 13) == 0);
    assert_true(j.closed);

    char chunked[512];
    snprintf(chunked, sizeof chunked,
             "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
             "40\r\n%0*d\r\n40\r\n%0*d\r\n0\r\n\r\n", 64, 0, 64, 0);
    run_script(&o, gust_http_callback(struct_handler, NULL), chunked, NULL, &j);
    assert_true(strncmp(j.resp, "HTTP/1.1 413 ", 13) == 0);
    assert_true(j.closed);

    /* max_header_count: Host and three more fit in 4, a fifth is 431 */
    gust_http_server_options few = {.max_header_count = 4};
    static const char four[] = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n"
                               "Connection: close\r\n\r\n";
    run_script(&few, gust_http_callback(struct_handler, NULL), four, NULL, &j);
    assert_true(strncmp(j.resp, "HTTP/1.1 200 ", 13) == 0);
    static const char five[] = "GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n"
                               "C: 3\r\nConnection: close\r\n\r\n";
    run_script(&few, gust_http_callback(struct_handler, NULL), five, NULL, &j);
    assert_true(strncmp(j.resp, "HTTP/1.1 431 ", 13) == 0);
    assert_true(j.closed);
    gust_log_set_level(GUST_LOG_INFO);
}

static void timeout_client(job *j)
{
    int fd = client_connect(j->port);
    if (j->status) /* slowloris: a head that never ends */
        send_all(fd, "GET / HTTP/1.1\r\nHost: a\r\n", 25);
    else {         /* one request, then idle */
        send_all(fd, "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27);
        read_response(fd, j->resp, sizeof j->resp, false);
    }
    size_t n = 0;
    j->closed = closed_within(fd, 3000, NULL, 0, &n);
    close(fd);
}

static void test_timeouts(void **state)
{
    (void)state;
    gust_log_set_level(GUST_LOG_ERROR);
    for (int slow = 0; slow < 2; slow++) {
        gust_loop *loop = new_loop();
        gust_http_server_options o = {.header_timeout = 0.3,
                                      .idle_connection_timeout = 0.3};
        gust_http_server *srv = start(gust_http_callback(raw_handler, NULL), &o);
        job j = {.fn = timeout_client, .status = slow};
        double t0 = gust_loop_time(loop);
        run_client(loop, srv, &j);
        assert_true(j.closed);
        assert_true(gust_loop_time(loop) - t0 < 2.5);
        if (!slow)
            assert_non_null(strstr(j.resp, "You requested /"));
        finish_server(loop, srv);
    }
    gust_log_set_level(GUST_LOG_INFO);
}

/* ---- Body timeout -------------------------------------------------------- */

static int body_handler_calls;

static void counting_raw_handler(gust_http_request *req, void *data)
{
    body_handler_calls++;
    raw_handler(req, data);
}

static void short_body_client(job *j)
{
    int fd = client_connect(j->port);
    static const char r[] = "POST / HTTP/1.1\r\nHost: a\r\n"
                            "Content-Length: 100\r\n\r\n0123456789";
    send_all(fd, r, sizeof r - 1);
    size_t n = 0;
    j->closed = closed_within(fd, 3000, j->resp, sizeof j->resp, &n);
    j->resp_len = (long)n;
    close(fd);
}

/* A body that stops short is dropped after body_timeout; no handler. */
static void test_body_timeout(void **state)
{
    (void)state;
    gust_log_set_level(GUST_LOG_ERROR);
    gust_loop *loop = new_loop();
    body_handler_calls = 0;
    gust_http_server_options o = {.body_timeout = 0.3};
    gust_http_server *srv = start(gust_http_callback(counting_raw_handler,
                                                     NULL), &o);
    job j = {.fn = short_body_client};
    double t0 = gust_loop_time(loop);
    run_client(loop, srv, &j);
    double elapsed = gust_loop_time(loop) - t0;
    assert_true(j.closed);
    assert_int_equal(j.resp_len, 0); /* closed without an answer */
    assert_true(elapsed >= 0.25 && elapsed < 2.5);
    assert_int_equal(body_handler_calls, 0);
    finish_server(loop, srv);
    gust_log_set_level(GUST_LOG_INFO);
}

/* ---- Streaming delegate -------------------------------------------------- */

typedef struct stream_stats {
    size_t bytes;
    int chunks;
    int finished;
    int closed;
    bool bad;
    gust_timer timer;
    gust_http_request *req;
} stream_stats;

static int sd_headers(gust_http_request *req, void *data)
{
    (void)data;
    return gust_http_request_stream_body(req);
}

static int sd_data(gust_http_request *req, const char *chunk, size_t len,
                   void *data)
{
    (void)req;
    stream_stats *st = data;
    for (size_t i = 0; i < len; i++)
        if (chunk[i] != (char)('a' + (st->bytes + i) % 26))
            st->bad = true;
    st->bytes += len;
    st->chunks++;
    return 0;
}

static void sd_finish(gust_http_request *req, void *data)
{
    stream_stats *st = data;
    st->finished++;
    char msg[64];
    int n = snprintf(msg, sizeof msg, "%zu", st->bytes);
    gust_http_respond(req, 200, "text/plain", msg, (size_t)n);
}

#define BIG_BODY (4u << 20)

static void big_client(job *j)
{
    int fd = client_connect(j->port);
    char head[128];
    int n = snprintf(head, sizeof head,
                     "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %u\r\n\r\n",
                     BIG_BODY);
    send_all(fd, head, (size_t)n);
    char *body = malloc(BIG_BODY);
    for (size_t i = 0; i < BIG_BODY; i++)
        body[i] = (char)('a' + i % 26);
    send_all(fd, body, BIG_BODY);
    free(body);
    j->resp_len = read_response(fd, j->resp, sizeof j->resp, false);
    close(fd);
}

static void test_streaming_delegate(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    stream_stats st = {0};
    static const gust_http_delegate d = {sd_headers, sd_data, sd_finish, NULL};
    gust_http_server *srv = start(gust_http_delegate_handler(&d, &st), NULL);
    job j = {.fn = big_client};
    run_client(loop, srv, &j);
    assert_int_equal(st.bytes, BIG_BODY);
    assert_true(st.chunks > 1);
    assert_false(st.bad);
    assert_int_equal(st.finished, 1);
    char want[32];
    snprintf(want, sizeof want, "\r\n\r\n%u", BIG_BODY);
    assert_non_null(strstr(j.resp, want));
    finish_server(loop, srv);
}

/* Pause from headers_received until a timer, then pause after every chunk
 * and resume from a timer: a consumer slower than the client. */
typedef struct paused_stats {
    stream_stats st;
    gust_timer timer;
    gust_http_request *req;
    bool paused;       /* we paused and have not resumed yet */
    int early_chunks;  /* chunks delivered while paused: must stay 0 */
    int resumes;
} paused_stats;

static void pz_resume(gust_timer *t, void *data)
{
    (void)t;
    paused_stats *p = data;
    p->paused = false;
    p->resumes++;
    assert_int_equal(gust_http_request_resume_body(p->req), 0);
}

static int pz_headers(gust_http_request *req, void *data)
{
    paused_stats *p = data;
    p->req = req;
    assert_int_equal(gust_http_request_pause_body(req), -EINVAL); /* not yet */
    int rc = gust_http_request_stream_body(req);
    if (rc == 0 && gust_http_request_pause_body(req) == 0) {
        p->paused = true;
        gust_timer_start(&p->timer, 0.05, 0, pz_resume, p);
    }
    return rc;
}

static int pz_data(gust_http_request *req, const char *chunk, size_t len,
                   void *data)
{
    paused_stats *p = data;
    if (p->paused)
        p->early_chunks++;
    sd_data(req, chunk, len, &p->st);
    if (gust_http_request_pause_body(req) == 0) {
        p->paused = true;
        gust_timer_start(&p->timer, 0.001, 0, pz_resume, p);
    }
    return 0;
}

static void pz_finish(gust_http_request *req, void *data)
{
    paused_stats *p = data;
    gust_timer_stop(&p->timer);
    sd_finish(req, &p->st);
}

static void test_streaming_pause_resume(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    paused_stats p = {0};
    gust_timer_init(loop, &p.timer);
    static const gust_http_delegate d = {pz_headers, pz_data, pz_finish, NULL};
    gust_http_server *srv = start(gust_http_delegate_handler(&d, &p), NULL);
    job j = {.fn = big_client};
    run_client(loop, srv, &j);
    assert_int_equal(p.st.bytes, BIG_BODY);
    assert_false(p.st.bad);
    assert_int_equal(p.early_chunks, 0);
    assert_true(p.resumes > 1);
    assert_int_equal(p.st.finished, 1);
    char want[32];
    snprintf(want, sizeof want, "\r\n\r\n%u", BIG_BODY);
    assert_non_null(strstr(j.resp, want));
    finish_server(loop, srv);
}

/* ---- Early answer from headers_received ---------------------------------- */

static int early_headers(gust_http_request *req, void *data)
{
    (void)data;
    if (strcmp(req->path, "/upload") != 0)
        return 0;
    gust_http_respond(req, 401, NULL, NULL, 0);
    return 1;
}

static void early_finish(gust_http_request *req, void *data)
{
    struct_handler(req, data);
}

static char early_req[200 * 1024];

/* An upload of len body bytes (chunked in 4 KiB chunks, or with a
 * Content-Length), then a GET on the same connection. */
static const char *early_script(size_t len, bool chunked)
{
    size_t n = (size_t)sprintf(early_req, "POST /upload HTTP/1.1\r\nHost: a\r\n");
    if (chunked) {
        n += (size_t)sprintf(early_req + n, "Transfer-Encoding: chunked\r\n\r\n");
        for (size_t left = len; left;) {
            size_t k = left < 4096 ? left : 4096;
            n += (size_t)sprintf(early_req + n, "%zx\r\n", k);
            memset(early_req + n, 'u', k);
            n += k;
            n += (size_t)sprintf(early_req + n, "\r\n");
            left -= k;
        }
        n += (size_t)sprintf(early_req + n, "0\r\n\r\n");
    } else {
        n += (size_t)sprintf(early_req + n, "Content-Length: %zu\r\n\r\n", len);
        memset(early_req + n, 'u', len);
        n += len;
    }
    sprintf(early_req + n, "GET /next HTTP/1.1\r\nHost: a\r\n\r\n");
    return early_req;
}

/* The delegate answers 401 before the body: a body up to 64 KiB is read
 * and dropped so the connection serves the next request; a larger one
 * closes the connection after the answer. */
static void test_early_answer_drops_body(void **state)
{
    (void)state;
    static const gust_http_delegate d = {early_headers, NULL, early_finish,
                                         NULL};
    static const struct {
        size_t len;
        bool chunked;
        bool kept;
    } cases[] = {
        {1000, false, true},
        {60 * 1024, false, true},
        {1000, true, true},
        {0, true, true},
        {100 * 1024, false, false},
        {100 * 1024, true, false},
    };
    gust_log_set_level(GUST_LOG_ERROR);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        job j;
        run_script(NULL, gust_http_delegate_handler(&d, NULL),
                   early_script(cases[i].len, cases[i].chunked), NULL, &j);
        if (strncmp(j.resp, "HTTP/1.1 401 ", 13) != 0)
            fail_msg("case %zu: got %.40s", i, j.resp);
        bool next = strncmp(j.extra, "HTTP/1.1 200 OK\r\n", 17) == 0 &&
                    strstr(j.extra, "\r\n\r\nxyz") != NULL;
        /* A chunked body's size is learnt too late to say it. */
        bool says_close = strstr(j.resp, "Connection: close\r\n") != NULL;
        if (next != cases[i].kept || j.closed == cases[i].kept ||
            (!cases[i].chunked && says_close == cases[i].kept))
            fail_msg("case %zu: resp [%s] extra [%.60s] closed %d", i, j.resp,
                     j.extra, j.closed);
    }
    gust_log_set_level(GUST_LOG_INFO);
}

static void early_later(gust_timer *t, void *data)
{
    (void)t;
    stream_stats *st = data;
    gust_http_respond(st->req, 401, NULL, NULL, 0);
    st->finished++;
}

static int early_async_headers(gust_http_request *req, void *data)
{
    stream_stats *st = data;
    if (strcmp(req->path, "/upload") != 0)
        return 0;
    st->req = req;
    gust_timer_init(gust_loop_current(), &st->timer);
    gust_timer_start(&st->timer, 0.05, 0, early_later, st);
    return 1;
}

/* The body comes after the asynchronous 401 (case 1) or before it (0). */
static void early_async_client(job *j)
{
    int fd = client_connect(j->port);
    const char *req = early_script(1000, false);
    const char *body = strstr(req, "\r\n\r\n") + 4;
    size_t head = (size_t)(body - req);
    if (j->status) {
        send_all(fd, req, head);
        usleep(200 * 1000); /* the answer is out before the body */
        send_all(fd, body, strlen(body));
    } else {
        send_all(fd, req, strlen(req));
    }
    j->resp_len = read_response(fd, j->resp, sizeof j->resp, false);
    size_t n = 0;
    if (j->resp_len > 0) {
        n = strlen(j->resp + j->resp_len);
        memcpy(j->extra, j->resp + j->resp_len, n + 1);
        j->resp[j->resp_len] = 0;
    }
    j->closed = closed_within(fd, 300, j->extra, sizeof j->extra, &n);
    close(fd);
}

static void test_early_answer_async(void **state)
{
    (void)state;
    for (int late_body = 0; late_body < 2; late_body++) {
        gust_loop *loop = new_loop();
        stream_stats st = {0};
        static const gust_http_delegate d = {early_async_headers, NULL,
                                             early_finish, NULL};
        gust_http_server *srv = start(gust_http_delegate_handler(&d, &st),
                                      NULL);
        job j = {.fn = early_async_client, .status = late_body};
        run_client(loop, srv, &j);
        assert_int_equal(st.finished, 1);
        if (strncmp(j.resp, "HTTP/1.1 401 ", 13) != 0 ||
            strncmp(j.extra, "HTTP/1.1 200 OK\r\n", 17) != 0 || j.closed)
            fail_msg("case %d: resp [%s] extra [%.60s] closed %d", late_body,
                     j.resp, j.extra, j.closed);
        finish_server(loop, srv);
    }
}

/* ---- Asynchronous handlers ----------------------------------------------- */

static void later_finish(gust_timer *t, void *data)
{
    (void)t;
    stream_stats *st = data;
    int rc = gust_http_respond(st->req, 200, NULL, "late", 4);
    if (st->closed)
        assert_int_equal(rc, GUST_ESTREAMCLOSED);
    st->finished++;
}

static void async_finish(gust_http_request *req, void *data)
{
    stream_stats *st = data;
    st->req = req;
    gust_timer_init(gust_loop_current(), &st->timer);
    gust_timer_start(&st->timer, 0.2, 0, later_finish, st);
}

static void async_closed(gust_http_request *req, void *data)
{
    stream_stats *st = data;
    assert_ptr_equal(req, st->req);
    st->closed++;
}

static void async_client(job *j)
{
    int fd = client_connect(j->port);
    static const char two[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
                              "GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    send_all(fd, two, sizeof two - 1);
    if (j->status) { /* disconnect before the answer */
        close(fd);
        usleep(500 * 1000);
        return;
    }
    read_response(fd, j->resp, sizeof j->resp, false);
    j->count += strstr(j->resp, "\r\n\r\nlate") != NULL;
    long k = (long)strlen(j->resp);
    (void)k;
    char *second = strstr(j->resp, "late") + 4;
    memmove(j->resp, second, strlen(second) + 1);
    read_response(fd, j->resp, sizeof j->resp, false);
    j->count += strstr(j->resp, "late") != NULL;
    close(fd);
}

static void test_async_handler(void **state)
{
    (void)state;
    for (int disconnect = 0; disconnect < 2; disconnect++) {
        gust_loop *loop = new_loop();
        stream_stats st = {0};
        static const gust_http_delegate d = {NULL, NULL, async_finish,
                                             async_closed};
        gust_http_server *srv = start(gust_http_delegate_handler(&d, &st), NULL);
        job j = {.fn = async_client, .status = disconnect};
        run_client(loop, srv, &j);
        /* let the pending timer run */
        for (int i = 0; i < 100 && gust_timer_active(&st.timer); i++)
            gust_loop_run_once(loop, 0.05);
        if (disconnect) {
            assert_int_equal(st.closed, 1);
            assert_int_equal(st.finished, 1);
        } else {
            if (j.count != 2)
                fail_msg("resp [%s]", j.resp);
            assert_int_equal(st.finished, 2);
            assert_int_equal(st.closed, 0);
        }
        finish_server(loop, srv);
    }
}

static void half_close_client(job *j)
{
    int fd = client_connect(j->port);
    static const char r[] = "GET /h HTTP/1.1\r\nHost: a\r\n\r\n";
    send_all(fd, r, sizeof r - 1);
    shutdown(fd, SHUT_WR);
    size_t n = 0;
    j->closed = closed_within(fd, 3000, j->resp, sizeof j->resp, &n);
    j->resp_len = (long)n;
    close(fd);
}

/* A client that half-closes right after its request: a handler that
 * answers at once is heard; an asynchronous one finds the connection gone
 * (as Tornado does; documented in http_server.h). */
static void test_half_close(void **state)
{
    (void)state;
    for (int async = 0; async < 2; async++) {
        gust_loop *loop = new_loop();
        stream_stats st = {0};
        static const gust_http_delegate d = {NULL, NULL, async_finish,
                                             async_closed};
        gust_http_server *srv =
            async ? start(gust_http_delegate_handler(&d, &st), NULL)
                  : start(gust_http_callback(raw_handler, NULL), NULL);
        job j = {.fn = half_close_client};
        run_client(loop, srv, &j);
        for (int i = 0; i < 100 && async && gust_timer_active(&st.timer); i++)
            gust_loop_run_once(loop, 0.05);
        assert_true(j.closed);
        if (async) {
            assert_int_equal(j.resp_len, 0);
            assert_int_equal(st.closed, 1);
            assert_int_equal(st.finished, 1);
        } else {
            assert_non_null(strstr(j.resp, "You requested /h\n"));
        }
        finish_server(loop, srv);
    }
}

/* ---- Finishing from data_received --------------------------------------- */

static int dr_headers(gust_http_request *req, void *data)
{
    (void)data;
    if (strcmp(req->path, "/upload") == 0)
        gust_http_request_stream_body(req);
    return 0;
}

/* Answers at the first body chunk, before the rest of the body. */
static int dr_data(gust_http_request *req, const char *chunk, size_t len,
                   void *data)
{
    (void)chunk, (void)len;
    stream_stats *st = data;
    st->chunks++;
    gust_http_respond(req, 413, NULL, NULL, 0);
    return 0;
}

static void dr_finish(gust_http_request *req, void *data)
{
    stream_stats *st = data;
    st->finished++;
    struct_handler(req, data);
}

static size_t dr_split; /* bytes of the body sent with the head */

/* The head and the first dr_split body bytes, a pause (the delegate
 * answers), then the rest of the body and a GET on the same connection. */
static void dr_client(job *j)
{
    int fd = client_connect(j->port);
    const char *req = early_req;
    const char *body = strstr(req, "\r\n\r\n") + 4;
    size_t first = (size_t)(body - req) + dr_split;
    send_all(fd, req, first);
    usleep(100 * 1000);
    send_all(fd, req + first, strlen(req + first));
    j->resp_len = read_response(fd, j->resp, sizeof j->resp, false);
    size_t n = 0;
    if (j->resp_len > 0) {
        n = strlen(j->resp + j->resp_len);
        memcpy(j->extra, j->resp + j->resp_len, n + 1);
        j->resp[j->resp_len] = 0;
    }
    j->closed = closed_within(fd, 300, j->extra, sizeof j->extra, &n);
    close(fd);
}

/* A streaming delegate that answers from data_received keeps the
 * connection when the rest of the body can be dropped (up to 64 KiB). */
static void test_finish_from_data_received(void **state)
{
    (void)state;
    static const gust_http_delegate d = {dr_headers, dr_data, dr_finish,
                                         NULL};
    static const struct {
        size_t len;
        bool chunked;
        bool kept;
    } cases[] = {
        {1000, false, true},
        {20000, true, true},
        {150 * 1024, false, false},
    };
    gust_log_set_level(GUST_LOG_ERROR);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gust_loop *loop = new_loop();
        stream_stats st = {0};
        gust_http_server *srv = start(gust_http_delegate_handler(&d, &st), NULL);
        early_script(cases[i].len, cases[i].chunked);
        dr_split = cases[i].chunked ? 100 : 400;
        job j = {.fn = dr_client};
        run_client(loop, srv, &j);
        if (strncmp(j.resp, "HTTP/1.1 413 ", 13) != 0)
            fail_msg("case %zu: got %.40s", i, j.resp);
        bool next = strncmp(j.extra, "HTTP/1.1 200 OK\r\n", 17) == 0 &&
                    strstr(j.extra, "\r\n\r\nxyz") != NULL;
        if (next != cases[i].kept || j.closed == cases[i].kept)
            fail_msg("case %zu: extra [%.60s] closed %d", i, j.extra, j.closed);
        assert_int_equal(st.chunks, 1);
        assert_int_equal(st.finished, cases[i].kept ? 1 : 0); /* GET /next */
        finish_server(loop, srv);
    }
    gust_log_set_level(GUST_LOG_INFO);
}

/* ---- Sendfile ------------------------------------------------------------ */

#define BIG_FILE_SIZE (10u * 1024 * 1024)

static char big_path[64];
static int sendfile_cb_calls;

static unsigned char big_byte(size_t i)
{
    return (unsigned char)(i * 7 + i / 4096);
}

static void on_file_sent(gust_http_request *req, int status, void *data)
{
    (void)data;
    if (status == 0)
        sendfile_cb_calls++;
    gust_http_request_finish(req);
}

/* /big: the whole file with a Content-Length; /chunk: "head:" then bytes
 * 5..14 of the file, chunked; /cb: the first 100 bytes, finished from the
 * sendfile callback. The fd is closed at once each time (Gust dup()s it). */
static void file_handler(gust_http_request *req, void *data)
{
    (void)data;
    int fd = open(big_path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    if (strcmp(req->path, "/big") == 0) {
        char n[32];
        snprintf(n, sizeof n, "%u", BIG_FILE_SIZE);
        gust_http_response_set_header(req, "Content-Length", n);
        assert_int_equal(gust_http_response_sendfile(req, fd, 0, BIG_FILE_SIZE,
                                                     NULL, NULL), 0);
        close(fd);
        gust_http_request_finish(req);
    } else if (strcmp(req->path, "/chunk") == 0) {
        gust_http_response_write(req, "head:", 5);
        assert_int_equal(gust_http_response_sendfile(req, fd, 5, 10, NULL,
                                                     NULL), 0);
        close(fd);
        gust_http_request_finish(req);
    } else {
        gust_http_response_set_header(req, "Content-Length", "100");
        assert_int_equal(gust_http_response_sendfile(req, fd, 0, 100,
                                                     on_file_sent, NULL), 0);
        close(fd);
    }
}

typedef struct reader {
    int fd;
    char *buf;
    size_t len, cap;
} reader;

/* Buffers at least n bytes; false on EOF or error. */
static bool rd_fill(reader *r, size_t n)
{
    if (n > r->cap) {
        r->buf = realloc(r->buf, n);
        r->cap = n;
    }
    while (r->len < n) {
        ssize_t k = recv(r->fd, r->buf + r->len, r->cap - r->len, 0);
        if (k <= 0)
            return false;
        r->len += (size_t)k;
    }
    return true;
}

static void rd_drop(reader *r, size_t n)
{
    memmove(r->buf, r->buf + n, r->len - n);
    r->len -= n;
}

/* Reads a head; returns its length (body follows) or 0. */
static size_t rd_head(reader *r)
{
    for (size_t want = 1;; want = r->len + 1) {
        if (!rd_fill(r, want))
            return 0;
        char *e = memmem(r->buf, r->len, "\r\n\r\n", 4);
        if (e)
            return (size_t)(e + 4 - r->buf);
    }
}

static void sendfile_client(job *j)
{
    reader r = {.fd = client_connect(j->port), .cap = 1 << 16};
    r.buf = malloc(r.cap);
    static const char reqs[][64] = {
        "GET /big HTTP/1.1\r\nHost: a\r\n\r\n",
        "HEAD /big HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /chunk HTTP/1.1\r\nHost: a\r\n\r\n",
        "GET /cb HTTP/1.1\r\nHost: a\r\n\r\n",
    };
    /* GET: every byte of the file, in order. */
    send_all(r.fd, reqs[0], strlen(reqs[0]));
    size_t hl = rd_head(&r);
    if (hl && strstr(r.buf, "Content-Length: 10485760\r\n") &&
        rd_fill(&r, hl + BIG_FILE_SIZE)) {
        size_t bad = 0;
        for (size_t i = 0; i < BIG_FILE_SIZE; i++)
            bad += (unsigned char)r.buf[hl + i] != big_byte(i);
        j->count += bad == 0;
        rd_drop(&r, hl + BIG_FILE_SIZE);
    }
    /* HEAD: the same head, none of the file. */
    send_all(r.fd, reqs[1], strlen(reqs[1]));
    hl = rd_head(&r);
    if (hl && strstr(r.buf, "Content-Length: 10485760\r\n")) {
        j->count++;
        rd_drop(&r, hl);
    }
    /* Chunked, after a buffered write; the next head starts right after
     * the HEAD response, so no file byte slipped in. */
    send_all(r.fd, reqs[2], strlen(reqs[2]));
    hl = rd_head(&r);
    if (hl && strncmp(r.buf, "HTTP/1.1 200 OK\r\n", 17) == 0 &&
        strstr(r.buf, "Transfer-Encoding: chunked\r\n")) {
        char want[64] = "5\r\nhead:\r\na\r\n";
        size_t n = strlen(want);
        for (size_t i = 5; i < 15; i++)
            want[n++] = (char)big_byte(i);
        memcpy(want + n, "\r\n0\r\n\r\n", 7);
        n += 7;
        if (rd_fill(&r, hl + n) && memcmp(r.buf + hl, want, n) == 0) {
            j->count++;
            rd_drop(&r, hl + n);
        }
    }
    /* Finished from the sendfile callback. */
    send_all(r.fd, reqs[3], strlen(reqs[3]));
    hl = rd_head(&r);
    if (hl && strstr(r.buf, "Content-Length: 100\r\n") && rd_fill(&r, hl + 100)) {
        size_t bad = 0;
        for (size_t i = 0; i < 100; i++)
            bad += (unsigned char)r.buf[hl + i] != big_byte(i);
        j->count += bad == 0;
        rd_drop(&r, hl + 100);
    }
    j->resp_len = (long)r.len; /* nothing extra */
    free(r.buf);
    close(r.fd);
}

/* A 10 MB file goes out byte for byte with sendfile over one keep-alive
 * connection; HEAD sends none of it; chunked framing; the callback. */
static void test_sendfile(void **state)
{
    (void)state;
    strcpy(big_path, "/tmp/gust-test-sendfile.XXXXXX");
    int fd = mkstemp(big_path);
    assert_true(fd >= 0);
    unsigned char *data = malloc(BIG_FILE_SIZE);
    assert_non_null(data);
    for (size_t i = 0; i < BIG_FILE_SIZE; i++)
        data[i] = big_byte(i);
    assert_int_equal(write(fd, data, BIG_FILE_SIZE), (ssize_t)BIG_FILE_SIZE);
    free(data);
    close(fd);
    gust_loop *loop = new_loop();
    sendfile_cb_calls = 0;
    gust_http_server *srv = start(gust_http_callback(file_handler, NULL), NULL);
    job j = {.fn = sendfile_client};
    run_client(loop, srv, &j);
    unlink(big_path);
    assert_int_equal(j.count, 4);
    assert_int_equal(j.resp_len, 0);
    assert_int_equal(sendfile_cb_calls, 1);
    finish_server(loop, srv);
}

/* ---- Request fields ------------------------------------------------------ */

/* Answers "remote_ip protocol host host_name path query a b c cookie". */
static void fields_handler(gust_http_request *req, void *data)
{
    (void)data;
    gust_str a = gust_http_args_get_last(&req->arguments, GUST_STR("a"));
    gust_str b = gust_http_args_get_first(&req->body_arguments, GUST_STR("b"));
    gust_str q = gust_http_args_get_first(&req->query_arguments, GUST_STR("a"));
    gust_str k = gust_http_args_get_first(gust_http_request_cookies(req),
                                          GUST_STR("k"));
    char msg[512];
    int n = snprintf(msg, sizeof msg, "%s %s %s %s %s %s %.*s %.*s %.*s %.*s",
                     req->remote_ip, req->protocol, req->host, req->host_name,
                     req->path, req->query, (int)a.len, a.ptr ? a.ptr : "",
                     (int)b.len, b.ptr ? b.ptr : "", (int)q.len,
                     q.ptr ? q.ptr : "", (int)k.len, k.ptr ? k.ptr : "");
    gust_http_respond(req, 200, "text/plain", msg, (size_t)n);
}

static void test_request_fields(void **state)
{
    (void)state;
    static const char req[] =
        "POST /p/x?a=1&a=%20two HTTP/1.1\r\nHost: Example.COM:8080\r\n"
        "X-Forwarded-For: 10.0.0.1, 192.0.2.7\r\nX-Forwarded-Proto: https\r\n"
        "Cookie: k=v1; other=2\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: 9\r\n\r\nb=3&a=last";
    /* the body is 10 bytes: the last one is not read as part of it */
    for (int xh = 0; xh < 2; xh++) {
        gust_http_server_options o = {.xheaders = xh};
        job j;
        run_script(&o, gust_http_callback(fields_handler, NULL), req, NULL, &j);
        const char *body = strstr(j.resp, "\r\n\r\n");
        assert_non_null(body);
        if (xh)
            assert_string_equal(body + 4, "192.0.2.7 https Example.COM:8080 "
                                "example.com /p/x a=1&a=%20two las 3 1 v1");
        else
            assert_string_equal(body + 4, "127.0.0.1 http Example.COM:8080 "
                                "example.com /p/x a=1&a=%20two las 3 1 v1");
    }
    /* invalid X-Real-Ip and scheme values are ignored */
    gust_http_server_options o = {.xheaders = true};
    job j;
    run_script(&o, gust_http_callback(fields_handler, NULL),
               "GET / HTTP/1.1\r\nHost: h\r\nX-Real-Ip: 1.2.3.4<script>\r\n"
               "X-Scheme: javascript\r\nConnection: close\r\n\r\n", NULL, &j);
    assert_non_null(strstr(j.resp, "\r\n\r\n127.0.0.1 http h h / "));
}

/* Answers "method method_id". */
static void method_handler(gust_http_request *req, void *data)
{
    (void)data;
    char msg[64];
    int n = snprintf(msg, sizeof msg, "%s %d", req->method,
                     (int)req->method_id);
    gust_http_respond(req, 200, "text/plain", msg, (size_t)n);
}

/* method_id names the methods of RFC 9110 and PATCH; methods are
 * case-sensitive, so "get" and other tokens are GUST_HTTP_OTHER, with
 * their name as sent. */
static void test_method_ids(void **state)
{
    (void)state;
    static const struct {
        const char *method;
        gust_http_method id;
    } cases[] = {
        {"GET", GUST_HTTP_GET},         {"HEAD", GUST_HTTP_HEAD},
        {"POST", GUST_HTTP_POST},       {"PUT", GUST_HTTP_PUT},
        {"DELETE", GUST_HTTP_DELETE},   {"PATCH", GUST_HTTP_PATCH},
        {"OPTIONS", GUST_HTTP_OPTIONS}, {"TRACE", GUST_HTTP_TRACE},
        {"get", GUST_HTTP_OTHER},       {"PUSH", GUST_HTTP_OTHER},
        {"PURGE", GUST_HTTP_OTHER},     {"GETX", GUST_HTTP_OTHER},
        {"DELETES", GUST_HTTP_OTHER},   {"OPTION", GUST_HTTP_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char req[128], want[64];
        snprintf(req, sizeof req, "%s /m HTTP/1.1\r\nHost: h\r\n"
                 "Connection: close\r\n\r\n", cases[i].method);
        job j;
        run_script(NULL, gust_http_callback(method_handler, NULL), req, NULL,
                   &j);
        snprintf(want, sizeof want, "\r\n\r\n%s %d", cases[i].method,
                 (int)cases[i].id);
        if (cases[i].id == GUST_HTTP_HEAD)
            assert_non_null(strstr(j.resp, "HTTP/1.1 200"));
        else
            assert_non_null(strstr(j.resp, want));
    }
}

/* ---- max_connections ----------------------------------------------------- */

static void cap_client(job *j)
{
    static const char r[] = "GET /a HTTP/1.1\r\nHost: a\r\n\r\n";
    int a = client_connect(j->port);
    send_all(a, r, sizeof r - 1);
    j->count += read_response(a, j->resp, sizeof j->resp, false) > 0;
    int b = client_connect(j->port); /* waits in the backlog */
    send_all(b, r, sizeof r - 1);
    struct pollfd p = {b, POLLIN, 0};
    j->status = poll(&p, 1, 300); /* 0: not served while a is open */
    close(a);
    memset(j->resp, 0, sizeof j->resp);
    j->count += read_response(b, j->resp, sizeof j->resp, false) > 0;
    close(b);
}

static void test_max_connections(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    gust_http_server_options o = {.tcp.max_connections = 1};
    gust_http_server *srv = start(gust_http_callback(raw_handler, NULL), &o);
    job j = {.fn = cap_client};
    run_client(loop, srv, &j);
    assert_int_equal(j.status, 0);
    assert_int_equal(j.count, 2);
    finish_server(loop, srv);
}

/* ---- Idle connections hold no memory ------------------------------------- */

static size_t arena_mallocs[20], arena_blocks[20];
static gust_arena *arena_seen[20];
static int arena_n;

static void counting_handler(gust_http_request *req, void *data)
{
    gust_arena_stats st;
    gust_arena_get_stats(req->arena, &st);
    if (arena_n < 20) {
        arena_seen[arena_n] = req->arena;
        arena_blocks[arena_n] = st.blocks;
        arena_mallocs[arena_n++] = st.mallocs;
    }
    struct_handler(req, data);
}

static void sequential_client(job *j)
{
    int fd = client_connect(j->port);
    for (int i = 0; i < 20; i++) {
        char r[128];
        int n = snprintf(r, sizeof r, "GET /x?i=%d HTTP/1.1\r\nHost: a\r\n"
                         "Cookie: a=b\r\n\r\n", i);
        send_all(fd, r, (size_t)n);
        memset(j->resp, 0, sizeof j->resp);
        j->count += read_response(fd, j->resp, sizeof j->resp, false) > 0;
    }
    j->status = fd; /* left open: the main thread looks at the idle state */
}

static void test_idle_connection_holds_no_memory(void **state)
{
    (void)state;
    gust_loop *loop = new_loop();
    arena_n = 0;
    gust_http_server *srv = start(gust_http_callback(counting_handler, NULL),
                                  NULL);
    job j = {.fn = sequential_client};
    run_client(loop, srv, &j);
    assert_int_equal(j.count, 20);
    for (int i = 0; i < 10; i++)
        gust_loop_run_once(loop, 0.01);
    assert_int_equal(gust_http_server_connection_count(srv), 1);
    /* An idle keep-alive connection holds no request context: no input
     * buffer, no request memory and no output buffer, only a small struct. */
    assert_null(srv->conns->rq);
    assert_true(sizeof *srv->conns <= 256);
    /* While a request runs, its memory fits the arena's first block; the
     * next request reuses the same context: no new block is malloc'd. */
    assert_int_equal(arena_n, 20);
    for (int i = 0; i < 20; i++) {
        assert_true(arena_blocks[i] <= 1);
        assert_ptr_equal(arena_seen[i], arena_seen[0]);
        assert_int_equal(arena_mallocs[i], arena_mallocs[0]);
    }
    close(j.status);
    finish_server(loop, srv);
}

/* ---- Malformed input ----------------------------------------------------- */

static void test_malformed(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"GET / HTTP/1.1\nHost: a\n\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\n b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
         "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
         "Content-Length: 4\r\n\r\nabcd", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
         501},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
         "zz\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 417},
    };
    gust_log_set_level(GUST_LOG_ERROR);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        job j;
        run_script(NULL, gust_http_callback(struct_handler, NULL), cases[i].req,
                   NULL, &j);
        char want[32];
        snprintf(want, sizeof want, "HTTP/1.1 %d ", cases[i].status);
        if (strncmp(j.resp, want, 13) != 0)
            fail_msg("case %zu: got %.40s", i, j.resp);
        assert_non_null(strstr(j.resp, "Connection: close\r\n"));
        assert_true(j.closed);
    }
    gust_log_set_level(GUST_LOG_INFO);
}

/* ---- Responses cut short --------------------------------------------------- */

static int cut_finish_rc;

/* /short: Content-Length 10, 5 bytes. /long: Content-Length 3, 7 bytes.
 * /abort: a flushed chunk, then gust_http_request_abort. */
static void cut_handler(gust_http_request *req, void *data)
{
    (void)data;
    if (strcmp(req->path, "/abort") == 0) {
        gust_http_response_write(req, "part1", 5);
        gust_http_response_flush(req, NULL, NULL);
        cut_finish_rc = gust_http_request_abort(req);
        return;
    }
    bool shorter = strcmp(req->path, "/short") == 0;
    gust_http_response_set_header(req, "Content-Length", shorter ? "10" : "3");
    gust_http_response_write(req, shorter ? "hello" : "toolong", shorter ? 5 : 7);
    cut_finish_rc = gust_http_request_finish(req);
}

static void cut_client(job *j)
{
    int fd = client_connect(j->port);
    send_all(fd, script_req, strlen(script_req));
    size_t n = 0;
    j->resp[0] = 0;
    j->closed = closed_within(fd, 2000, j->resp, sizeof j->resp, &n);
    j->resp_len = (long)n;
    close(fd);
}

static void run_cut(const char *path, job *j)
{
    static char req[256];
    /* A second request pipelined behind: it must not be answered, or the
     * client would take its bytes for the rest of the first body. */
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n"
             "GET /next HTTP/1.1\r\nHost: a\r\n\r\n", path);
    gust_loop *loop = new_loop();
    gust_http_server *srv = start(gust_http_callback(cut_handler, NULL), NULL);
    memset(j, 0, sizeof *j);
    j->fn = cut_client;
    script_req = req;
    cut_finish_rc = 1;
    run_client(loop, srv, j);
    finish_server(loop, srv);
}

static void test_response_cut_short(void **state)
{
    (void)state;
    job j;
    gust_log_set_level(GUST_LOG_NONE); /* the errors are expected */

    run_cut("/short", &j);
    assert_true(j.closed);
    assert_int_equal(cut_finish_rc, 0);
    assert_non_null(strstr(j.resp, "Content-Length: 10\r\n"));
    assert_non_null(strstr(j.resp, "Connection: close\r\n"));
    char *body = strstr(j.resp, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4, "hello");

    run_cut("/long", &j);
    assert_true(j.closed);
    assert_int_equal(cut_finish_rc, -EMSGSIZE);
    body = strstr(j.resp, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4, ""); /* not a byte past the length */
    assert_null(strstr(j.resp, "/next"));

    run_cut("/abort", &j);
    assert_true(j.closed);
    assert_int_equal(cut_finish_rc, 0);
    assert_non_null(strstr(j.resp, "Transfer-Encoding: chunked\r\n"));
    body = strstr(j.resp, "\r\n\r\n");
    assert_non_null(body);
    assert_string_equal(body + 4, "5\r\npart1\r\n"); /* no last chunk */
    assert_int_equal(strstr(j.resp + 1, "HTTP/1.1"), NULL);
    gust_log_set_level(GUST_LOG_INFO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_keep_alive_matrix, test_setup),
        cmocka_unit_test_setup(test_pipelining, test_setup),
        cmocka_unit_test_setup(test_chunked_body, test_setup),
        cmocka_unit_test_setup(test_expect_continue, test_setup),
        cmocka_unit_test_setup(test_no_body_responses, test_setup),
        cmocka_unit_test_setup(test_limits, test_setup),
        cmocka_unit_test_setup(test_timeouts, test_setup),
        cmocka_unit_test_setup(test_body_timeout, test_setup),
        cmocka_unit_test_setup(test_streaming_delegate, test_setup),
        cmocka_unit_test_setup(test_streaming_pause_resume, test_setup),
        cmocka_unit_test_setup(test_early_answer_drops_body, test_setup),
        cmocka_unit_test_setup(test_early_answer_async, test_setup),
        cmocka_unit_test_setup(test_async_handler, test_setup),
        cmocka_unit_test_setup(test_half_close, test_setup),
        cmocka_unit_test_setup(test_malformed, test_setup),
        cmocka_unit_test_setup(test_request_fields, test_setup),
        cmocka_unit_test_setup(test_method_ids, test_setup),
        cmocka_unit_test_setup(test_max_connections, test_setup),
        cmocka_unit_test_setup(test_idle_connection_holds_no_memory, test_setup),
        cmocka_unit_test_setup(test_sendfile, test_setup),
        cmocka_unit_test_setup(test_finish_from_data_received, test_setup),
        cmocka_unit_test_setup(test_response_cut_short, test_setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
