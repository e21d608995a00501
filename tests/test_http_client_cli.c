/* test_http_client_cli: a small command-line HTTP client on Gust's client,
 * for tests/integration/test_http_client*.py (nginx, Tornado, TLS servers).
 * Run without arguments it runs its own unit tests (the JSON output).
 *
 *   test_http_client_cli --fetch [options] URL...
 */
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

/* --fetch [-X METHOD] [-d BODY] [--data-size N] [-H 'Name: value']
 *         [--no-redirects] [--no-decompress] [--insecure] [--ca FILE]
 *         [--timeout S] [--first-timeout S] [--max-clients N] [--http2]
 *         [--stream] [--no-body] [--stats] [--free-after S]
 *         [--free-on-chunk] [--head-lines] [--idle-timeout S]
 *         [--linger S] [--request-http2 yes|no] URL...
 * Fetches every URL at once (they share the client, so keep-alive reuse
 * shows), then prints one JSON line per URL in order:
 *   {"code":200,"error":"","redirects":0,"reused":false,"body_len":12,
 *    "body":"...", "effective_url":"...", "version":"HTTP/1.1",
 *    "chunks":0, "headers":{...}}
 * The body is printed with control characters and quotes escaped.
 * --data-size N sends N bytes (a repeating pattern) as the body;
 * --first-timeout S gives the first URL its own request timeout; --http2
 * sets the client's http2 option; --stream reads bodies through a
 * streaming_callback ("chunks" counts its calls; the body is still
 * printed); --no-body prints "" for the body (its length stays); --stats
 * prints one more line, {"connections":N,"reused":M}; --free-after S
 * frees the client S seconds after the fetches start, whatever is still
 * running (those fetches then fail with GUST_ECANCELED); --free-on-chunk
 * (with --stream) frees it from inside the first streaming callback;
 * --head-lines collects what the header_callback gets ("head_lines");
 * --idle-timeout sets the client's; --linger S keeps the loop running S
 * seconds after the last response, before the client is freed;
 * --request-http2 sets the requests' own http2 flag. */
static void json_str(FILE *out, const char *s, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20 || ch >= 0x7f)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

/* --free-on-chunk: the client, freed from inside the first streamed chunk. */
static gust_http_client **free_on_chunk;

/* What --stream and --head-lines collect for one fetch. */
typedef struct streamed {
    char *buf;
    size_t len, cap;
    int chunks;
    char *lines[64];
    size_t line_len[64];
    int nlines;
} streamed;

static void on_head_line(gust_http_client_response *resp, const char *p,
                         size_t n, void *data)
{
    (void)resp;
    streamed *s = data;
    if (s->nlines < 64) {
        s->lines[s->nlines] = malloc(n ? n : 1);
        memcpy(s->lines[s->nlines], p, n);
        s->line_len[s->nlines++] = n;
    }
}

static void on_chunk(gust_http_client_response *resp, const char *p, size_t n,
                     void *data)
{
    (void)resp;
    streamed *s = data;
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 65536;
        while (cap < s->len + n)
            cap *= 2;
        char *nb = realloc(s->buf, cap);
        if (!nb)
            abort();
        s->buf = nb;
        s->cap = cap;
    }
    memcpy(s->buf + s->len, p, n);
    s->len += n;
    s->chunks++;
    if (free_on_chunk && *free_on_chunk) {
        gust_http_client_free(*free_on_chunk);
        *free_on_chunk = NULL;
    }
}

static bool never_done(gust_loop *loop, void *data)
{
    (void)loop, (void)data;
    return false;
}

static void free_client(gust_loop *loop, void *data)
{
    (void)loop;
    gust_http_client **c = data;
    gust_http_client_free(*c);
    *c = NULL;
}

static int fetch_main(int argc, char **argv)
{
    gust_http_client *c = NULL;
    bool stream = false, no_body = false, stats = false, head_lines = false;
    double first_timeout = 0, free_after = 0, linger = 0;
    char *data = NULL;
    gust_http_client_request base = {0};
    gust_http_client_options o = {0};
    gust_http_header hs[16];
    size_t nh = 0;
    int i = 2;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-X") && i + 1 < argc)
            base.method = argv[++i];
        else if (!strcmp(a, "-d") && i + 1 < argc) {
            base.body = argv[++i];
            base.body_len = strlen(argv[i]);
        } else if (!strcmp(a, "-H") && i + 1 < argc && nh < 16) {
            char *h = argv[++i], *colon = strchr(h, ':');
            if (!colon)
                return 2;
            const char *v = colon + 1;
            while (*v == ' ')
                v++;
            hs[nh].name = gust_str_make(h, (size_t)(colon - h));
            hs[nh++].value = gust_str_cstr(v);
        } else if (!strcmp(a, "--no-redirects"))
            base.follow_redirects = GUST_HTTP_NO;
        else if (!strcmp(a, "--no-decompress"))
            base.decompress = GUST_HTTP_NO;
        else if (!strcmp(a, "--insecure"))
            base.validate_cert = GUST_HTTP_NO;
        else if (!strcmp(a, "--ca") && i + 1 < argc)
            base.ca_file = argv[++i];
        else if (!strcmp(a, "--timeout") && i + 1 < argc)
            base.request_timeout = base.connect_timeout = atof(argv[++i]);
        else if (!strcmp(a, "--max-clients") && i + 1 < argc)
            o.max_clients = atoi(argv[++i]);
        else if (!strcmp(a, "--http2"))
            o.http2 = true;
        else if (!strcmp(a, "--request-http2") && i + 1 < argc)
            base.http2 = !strcmp(argv[++i], "yes") ? GUST_HTTP_YES
                                                    : GUST_HTTP_NO;
        else if (!strcmp(a, "--stream"))
            stream = true;
        else if (!strcmp(a, "--no-body"))
            no_body = true;
        else if (!strcmp(a, "--stats"))
            stats = true;
        else if (!strcmp(a, "--idle-timeout") && i + 1 < argc)
            o.idle_timeout = atof(argv[++i]);
        else if (!strcmp(a, "--linger") && i + 1 < argc)
            linger = atof(argv[++i]);
        else if (!strcmp(a, "--head-lines"))
            head_lines = true;
        else if (!strcmp(a, "--free-on-chunk"))
            free_on_chunk = &c;
        else if (!strcmp(a, "--free-after") && i + 1 < argc)
            free_after = atof(argv[++i]);
        else if (!strcmp(a, "--first-timeout") && i + 1 < argc)
            first_timeout = atof(argv[++i]);
        else if (!strcmp(a, "--data-size") && i + 1 < argc) {
            size_t len = (size_t)atol(argv[++i]);
            free(data);
            data = malloc(len ? len : 1);
            for (size_t k = 0; k < len; k++)
                data[k] = (char)('a' + k % 26);
            base.body = data;
            base.body_len = len;
        } else {
            free(data);
            return 2;
        }
    }
    base.headers = hs;
    base.num_headers = nh;
    int n = argc - i;
    if (n <= 0) {
        free(data);
        return 2;
    }
    gust_loop *loop = gust_loop_new();
    gust_loop_make_current(loop);
    c = gust_http_client_new(loop, &o);
    gust_future **fs = calloc((size_t)n, sizeof *fs);
    streamed *ss = calloc((size_t)n, sizeof *ss);
    for (int k = 0; k < n; k++) {
        gust_http_client_request r = base;
        r.url = argv[i + k];
        r.raise_error = GUST_HTTP_NO;
        if (k == 0 && first_timeout > 0)
            r.request_timeout = first_timeout;
        if (stream)
            r.streaming_callback = on_chunk;
        if (head_lines)
            r.header_callback = on_head_line;
        r.callback_data = &ss[k];
        fs[k] = gust_http_client_fetch(c, &r);
        /* Sequential when asked for one client: reuse is then visible. */
        if (o.max_clients == 1)
            gust_loop_run_sync(loop, gust_future_ref(fs[k]), 120, NULL);
    }
    gust_timeout freer = free_after > 0
        ? gust_loop_call_later(loop, free_after, free_client, &c) : 0;
    for (int k = 0; k < n; k++) {
        gust_loop_run_sync(loop, gust_future_ref(fs[k]), 120, NULL);
        int st = gust_future_status(fs[k]);
        gust_http_client_response *r = st == 0 ? gust_future_result(fs[k])
                                        : gust_http_client_error_response(fs[k]);
        printf("{\"code\":%d,\"error\":\"%s\",\"message\":", r ? r->code : 599,
               st ? gust_err_name(st) : "");
        const char *m = r ? r->error_message : "";
        json_str(stdout, m, strlen(m));
        printf(",\"redirects\":%d,\"reused\":%s,\"body_len\":%zu,\"body\":",
               r ? r->redirects : 0, r && r->reused_connection ? "true" : "false",
               r ? r->body_len : 0);
        if (no_body)
            json_str(stdout, "", 0);
        else if (stream)
            json_str(stdout, ss[k].buf ? ss[k].buf : "", ss[k].len);
        else
            json_str(stdout, r ? r->body : "", r ? r->body_len : 0);
        printf(",\"streamed_len\":%zu,\"chunks\":%d,\"version\":\"HTTP/%d.%d\"",
               ss[k].len, ss[k].chunks, r ? r->version_major : 0,
               r ? r->version_minor : 0);
        printf(",\"head_lines\":[");
        for (int l = 0; l < ss[k].nlines; l++) {
            if (l)
                putchar(',');
            json_str(stdout, ss[k].lines[l], ss[k].line_len[l]);
        }
        printf("]");
        printf(",\"effective_url\":");
        json_str(stdout, r ? r->effective_url : "", r ? strlen(r->effective_url) : 0);
        printf(",\"headers\":{");
        for (size_t h = 0; r && h < r->headers.count; h++) {
            if (h)
                putchar(',');
            json_str(stdout, r->headers.items[h].name.ptr, r->headers.items[h].name.len);
            putchar(':');
            json_str(stdout, r->headers.items[h].value.ptr,
                     r->headers.items[h].value.len);
        }
        printf("}}\n");
        gust_future_unref(fs[k]);
    }
    /* Idle connections do what they do while the client lives. */
    if (linger > 0)
        gust_loop_run_until(loop, never_done, NULL, linger);
    if (stats && c) {
        gust_http_client_stats st;
        gust_http_client_get_stats(c, &st);
        printf("{\"connections\":%zu,\"reused\":%zu}\n", st.connections,
               st.reused);
    }
    for (int k = 0; k < n; k++) {
        free(ss[k].buf);
        for (int l = 0; l < ss[k].nlines; l++)
            free(ss[k].lines[l]);
    }
    free(ss);
    free(fs);
    free(data);
    gust_loop_remove_timeout(loop, freer);
    gust_http_client_free(c);
    for (int k = 0; k < 50; k++)
        gust_loop_run_once(loop, 0.01);
    int rc = gust_loop_free(loop);
    return rc == 0 ? 0 : 1;
}

/* The JSON strings the integration tests parse. */
static void test_json_escaping(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    json_str(f, "a\"b\\c\r\n\x01\xff", 9);
    fclose(f);
    assert_string_equal(buf, "\"a\\\"b\\\\c\\u000d\\u000a\\u0001\\u00ff\"");
    free(buf);
}

static void test_usage_errors(void **state)
{
    (void)state;
    char *none[] = {"cli", "--fetch", NULL};
    assert_int_equal(fetch_main(2, none), 2);
    char *bad[] = {"cli", "--fetch", "--bogus", "http://127.0.0.1:1/", NULL};
    assert_int_equal(fetch_main(4, bad), 2);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--fetch"))
        return fetch_main(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
