/* The application (Tornado's Application): routes, settings, the server
 * made by gust_app_listen(), templates and the static-file cache. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "gust/log.h"
#include "web_internal.h"

/* Settings are copied with their strings, so that callers may build them
 * on the stack. */
static int copy_str(const char **field)
{
    if (!*field)
        return 0;
    char *s = strdup(*field);
    if (!s) {
        *field = NULL;
        return -ENOMEM;
    }
    *field = s;
    return 0;
}

static void free_settings(gust_app *app)
{
    gust_app_settings *s = &app->settings;
    free((char *)s->cookie_secret);
    free((char *)s->static_path);
    free((char *)s->static_url_prefix);
    free((char *)s->template_path);
    if (app->secrets)
        for (char **p = app->secrets; *p; p++)
            free(*p);
    free(app->secrets);
    free((char *)app->server_opts.protocol);
    free((char *)app->server_opts.server_header);
}

static int copy_settings(gust_app *app, const gust_app_settings *in)
{
    gust_app_settings *s = &app->settings;
    if (in)
        *s = *in;
    /* Fields are NULLed before copying so that free_settings() is safe
     * whatever failed. */
    const char *secret = s->cookie_secret, *spath = s->static_path,
               *prefix = s->static_url_prefix, *tpath = s->template_path;
    s->cookie_secret = s->static_path = s->static_url_prefix =
        s->template_path = NULL;
    s->cookie_secret = secret;
    if (copy_str(&s->cookie_secret) < 0)
        return -ENOMEM;
    s->static_path = spath;
    if (copy_str(&s->static_path) < 0)
        return -ENOMEM;
    s->static_url_prefix = prefix ? prefix : "/static/";
    if (copy_str(&s->static_url_prefix) < 0)
        return -ENOMEM;
    s->template_path = tpath;
    if (copy_str(&s->template_path) < 0)
        return -ENOMEM;

    /* One secret is version 0 of the key list. */
    const char *const *list = s->cookie_secrets;
    const char *one[2] = {s->cookie_secret, NULL};
    if (!list && s->cookie_secret)
        list = one;
    s->cookie_secrets = NULL;
    if (list) {
        size_t n = 0;
        while (list[n])
            n++;
        if (!(app->secrets = calloc(n + 1, sizeof *app->secrets)))
            return -ENOMEM;
        for (size_t i = 0; i < n; i++)
            if (!(app->secrets[i] = strdup(list[i])))
                return -ENOMEM;
        s->cookie_secrets = (const char *const *)app->secrets;
    }

    if (s->server_options) {
        app->server_opts = *s->server_options;
        const char *proto = app->server_opts.protocol,
                   *sh = app->server_opts.server_header;
        app->server_opts.protocol = app->server_opts.server_header = NULL;
        app->server_opts.protocol = proto;
        if (copy_str(&app->server_opts.protocol) < 0)
            return -ENOMEM;
        app->server_opts.server_header = sh;
        if (copy_str(&app->server_opts.server_header) < 0)
            return -ENOMEM;
        s->server_options = &app->server_opts;
    }
    return 0;
}

/* static_path: a route prefix + "(.*)" to the static file handler, first
 * in the table as in Tornado. */
static int add_static_route(gust_app *app)
{
    const gust_app_settings *s = &app->settings;
    app->static_opts.root = s->static_path;
    if (!(app->static_cache = gust__static_cache_new(s->static_path)))
        return -ENOMEM;
    size_t n = strlen(s->static_url_prefix);
    char *pattern = malloc(2 * n + 8), *o = pattern;
    if (!pattern)
        return -ENOMEM;
    /* The prefix is literal: escape regex metacharacters. */
    for (size_t i = 0; i < n; i++) {
        if (strchr("\\^$.|?*+()[]{}", s->static_url_prefix[i]))
            *o++ = '\\';
        *o++ = s->static_url_prefix[i];
    }
    strcpy(o, "(.*)");
    gust_route r = {pattern, &gust_static_file_handler, &app->static_opts,
                    "static", NULL};
    int rc = gust__router_add(app, &r);
    free(pattern);
    return rc;
}

gust_app *gust_app_new(const gust_route *routes,
                       const gust_app_settings *settings)
{
    gust_app *app = calloc(1, sizeof *app);
    if (!app) {
        errno = ENOMEM;
        return NULL;
    }
    int rc = copy_settings(app, settings);
    if (rc == 0 && app->settings.static_path)
        rc = add_static_route(app);
    if (rc == 0 && app->settings.template_path &&
        !(app->templates = gust_template_loader_new(app->settings.template_path)))
        rc = -ENOMEM;
    if (rc == 0 && routes)
        rc = gust_app_add_routes(app, routes);
    if (rc < 0) {
        gust_app_free(app);
        errno = -rc;
        return NULL;
    }
    return app;
}

int gust_app_add_routes(gust_app *app, const gust_route *routes)
{
    for (const gust_route *r = routes; r->pattern; r++) {
        int rc = gust__router_add(app, r);
        if (rc < 0)
            return rc;
    }
    return 0;
}

gust_http_handler gust_app_http_handler(gust_app *app)
{
    return gust_http_delegate_handler(&gust__app_delegate, app);
}

int gust_app_listen(gust_app *app, int port, const char *address)
{
    if (app->server)
        return -EINVAL;
    app->server = gust_http_server_new(gust_app_http_handler(app),
                                       app->settings.server_options);
    if (!app->server)
        return -errno;
    int rc = gust_http_server_listen(app->server, port, address);
    if (rc < 0) {
        gust_http_server_free(app->server);
        app->server = NULL;
    }
    return rc;
}

gust_http_server *gust_app_server(const gust_app *app)
{
    return app->server;
}

const gust_app_settings *gust_app_get_settings(const gust_app *app)
{
    return &app->settings;
}

char *gust_app_reverse_url(gust_app *app, gust_arena *arena, const char *name,
                           ...)
{
    va_list ap;
    va_start(ap, name);
    char *url = gust__router_reverse(app, arena, name, ap);
    va_end(ap);
    return url;
}

gust__static_cache *gust__app_static_cache(gust_app *app)
{
    return app->static_cache;
}

const char *const *gust__app_secrets(const gust_app *app, int *key_version)
{
    *key_version = app->settings.key_version;
    return app->settings.cookie_secrets;
}

void gust_app_free(gust_app *app)
{
    if (!app)
        return;
    gust_http_server_free(app->server);
    for (size_t i = 0; i < app->nroutes; i++)
        gust__router_free_route(&app->routes[i]);
    free(app->routes);
    pcre2_match_data_free(app->md);
    gust_template_loader_free(app->templates);
    gust__static_cache_free(app->static_cache);
    free_settings(app);
    free(app);
}
