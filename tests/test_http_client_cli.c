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

/* --fetch [-X METHOD] [-d BODY] [-H 'Name: value'] [--no-redirects]
 *         [--no-decompress] [--insecure] [--ca FILE] [--timeout S]
 *         [--max-clients N] URL...
 * Fetches every URL at once (they share the client, so keep-alive reuse
 * shows), then prints one JSON line per URL in order:
 *   {"code":200,"error":"","redirects":0,"reused":false,"body_len":12,
 *    "body":"...", "effective_url":"..."}
 * The body is printed with control characters and quotes escaped. */
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

static int fetch_main(int argc, char **argv)
{
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
        else
            return 2;
    }
    base.headers = hs;
    base.num_headers = nh;
    int n = argc - i;
    if (n <= 0)
        return 2;
    gust_loop *loop = gust_loop_new();
    gust_loop_make_current(loop);
    gust_http_client *c = gust_http_client_new(loop, &o);
    gust_future **fs = calloc((size_t)n, sizeof *fs);
    for (int k = 0; k < n; k++) {
        gust_http_client_request r = base;
        r.url = argv[i + k];
        r.raise_error = GUST_HTTP_NO;
        fs[k] = gust_http_client_fetch(c, &r);
        /* Sequential when asked for one client: reuse is then visible. */
        if (o.max_clients == 1)
            gust_loop_run_sync(loop, gust_future_ref(fs[k]), 120, NULL);
    }
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
        json_str(stdout, r ? r->body : "", r ? r->body_len : 0);
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
    free(fs);
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
