/* Applications (Tornado's web.Application): routes, a copy of the
 * settings, the static route and template loader they imply, and the
 * server gust_app_listen() makes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gust/log.h"
#include "gust/tls.h"
#include "http_server_contract.h"
#include "web_internal.h"

/* Copies s into the app's list of owned strings. *ok turns false when out
 * of memory. */
static const char *own(gust_app *app, const char *s, bool *ok)
{
    if (!s)
        return NULL;
    char **list = realloc(app->owned, (app->nowned + 1) * sizeof *list);
    char *copy = strdup(s);
    if (!list || !copy) {
        if (list)
            app->owned = list;
        free(copy);
        *ok = false;
        return NULL;
    }
    app->owned = list;
    app->owned[app->nowned++] = copy;
    return copy;
}

static bool copy_settings(gust_app *app, const gust_app_settings *s)
{
    bool ok = true;
    app->settings = *s;
    gust_app_settings *d = &app->settings;
    d->cookie_secret = own(app, s->cookie_secret, &ok);
    d->static_path = own(app, s->static_path, &ok);
    d->static_url_prefix =
        own(app, s->static_url_prefix ? s->static_url_prefix : "/static/",
            &ok);
    d->template_path = own(app, s->template_path, &ok);
    d->login_url = own(app, s->login_url, &ok);
    if (s->default_handler && s->default_handler->base) {
        app->default_merged = gust__handler_class_merge(s->default_handler);
        app->default_declared = s->default_handler;
        d->default_handler = app->default_merged;
        if (!app->default_merged)
            ok = false;
    }
    size_t n = 0;
    if (s->cookie_secrets)
        while (s->cookie_secrets[n])
            n++;
    else if (s->cookie_secret)
        n = 1;
    if (n) {
        app->secrets = calloc(n + 1, sizeof *app->secrets);
        if (!app->secrets)
            return false;
        for (size_t i = 0; i < n; i++)
            app->secrets[i] = s->cookie_secrets
                                  ? own(app, s->cookie_secrets[i], &ok)
                                  : d->cookie_secret;
        d->cookie_secrets = app->secrets;
        if (!s->cookie_secrets)
            d->key_version = 0;
    }
    if (s->server_options) {
        /* The server is made later, by gust_app_listen: until then the
         * caller's strings and TLS context may be gone, so the app keeps
         * its own. */
        gust_http_server_options *o = &app->server_options;
        *o = *s->server_options;
        o->protocol = own(app, o->protocol, &ok);
        o->server_header = own(app, o->server_header, &ok);
        if (o->tcp.tls)
            o->tcp.tls = gust__tls_context_ref(o->tcp.tls);
        d->server_options = o;
    }
    return ok;
}

static int add_static_route(gust_app *app)
{
    const char *prefix = app->settings.static_url_prefix;
    size_t n = strlen(prefix);
    char *pattern = malloc(2 * n + 8), *o = pattern;
    if (!pattern)
        return -ENOMEM;
    /* The prefix is literal text: quote what a regex would read. */
    for (size_t i = 0; i < n; i++) {
        if (strchr("\\^$.|?*+()[]{}", prefix[i]))
            *o++ = '\\';
        *o++ = prefix[i];
    }
    strcpy(o, "(.*)");
    app->static_opts.root = app->settings.static_path;
    const gust_route r[] = {
        {pattern, &gust_static_file_handler, &app->static_opts, NULL, NULL},
        {NULL, NULL, NULL, NULL, NULL}};
    int rc = gust__web_router_add(&app->router, r);
    free(pattern);
    return rc;
}

gust_app *gust_app_new(const gust_route *routes,
                       const gust_app_settings *settings)
{
    gust_app *app = calloc(1, sizeof *app);
    if (!app)
        return NULL;
    gust__web_router_init(&app->router);
    static const gust_app_settings defaults = {0};
    int rc = copy_settings(app, settings ? settings : &defaults) ? 0
                                                                 : -ENOMEM;
    /* Tornado puts the static route before the application's own. */
    if (rc == 0 && app->settings.static_path) {
        app->static_cache = gust__static_cache_new(app->settings.static_path);
        rc = app->static_cache ? add_static_route(app) : -ENOMEM;
    }
    if (rc == 0 && app->settings.template_path) {
        app->loader = gust_template_loader_new(app->settings.template_path);
        if (!app->loader)
            rc = -ENOMEM;
    }
    if (rc == 0)
        rc = gust__web_router_add(&app->router, routes);
    if (rc < 0) {
        gust_app_free(app);
        errno = -rc;
        return NULL;
    }
    return app;
}

int gust_app_add_routes(gust_app *app, const gust_route *routes)
{
    return gust__web_router_add(&app->router, routes);
}

gust_http_handler gust_app_http_handler(gust_app *app)
{
    return gust_http_delegate_handler(&gust__web_delegate, app);
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

char *gust_app_reverse_url(gust_app *app, gust_arena *arena,
                           const char *name, ...)
{
    va_list ap;
    va_start(ap, name);
    char *url = gust__web_router_reverse(&app->router, arena, name, ap);
    va_end(ap);
    return url;
}

const gust_app_settings *gust_app_get_settings(const gust_app *app)
{
    return &app->settings;
}

gust__static_cache *gust__app_static_cache(gust_app *app)
{
    return app->static_cache;
}

void gust_app_free(gust_app *app)
{
    if (!app)
        return;
    gust_http_server_free(app->server);
    gust__web_router_close(&app->router);
    gust_template_loader_free(app->loader);
    if (app->static_cache)
        gust__static_cache_free(app->static_cache);
    gust_tls_context_free(app->server_options.tcp.tls);
    for (size_t i = 0; i < app->nowned; i++)
        free(app->owned[i]);
    free(app->owned);
    free(app->secrets);
    free(app->default_merged);
    free(app);
}
