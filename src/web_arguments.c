/* What a handler reads from the request's arguments and files (Tornado's
 * get_argument, get_arguments, get_query_argument, get_body_argument and
 * request.files). */
#include <string.h>

#include "web_internal.h"

const char gust_argument_required[] = "<required>";

static gust_str strip(gust_str s)
{
    /* Tornado strips Unicode whitespace; ASCII whitespace here. */
    while (s.len && strchr(" \t\r\n\v\f", s.ptr[0]))
        s.ptr++, s.len--;
    while (s.len && strchr(" \t\r\n\v\f", s.ptr[s.len - 1]))
        s.len--;
    return s;
}

static const char *get_arg(gust_handler *h, const gust_http_args *args,
                           const char *name, const char *def)
{
    gust_str v = gust_http_args_get_last(args, gust_str_cstr(name));
    if (!v.ptr) {
        if (def == gust_argument_required) {
            if (!h->missing_arg)
                h->missing_arg = gust_arena_strdup(h->req->arena, name);
            return NULL;
        }
        return def;
    }
    return gust_str_dup(h->req->arena, strip(v));
}

const char *gust_handler_get_argument(gust_handler *h, const char *name,
                                      const char *def)
{
    return get_arg(h, &h->req->arguments, name, def);
}

const char *gust_handler_get_query_argument(gust_handler *h, const char *name,
                                            const char *def)
{
    return get_arg(h, &h->req->query_arguments, name, def);
}

const char *gust_handler_get_body_argument(gust_handler *h, const char *name,
                                           const char *def)
{
    return get_arg(h, &h->req->body_arguments, name, def);
}

static size_t get_args(gust_handler *h, const gust_http_args *args,
                       const char *name, const char ***values)
{
    gust_str n = gust_str_cstr(name);
    size_t count = gust_http_args_count_name(args, n);
    *values = NULL;
    if (!count)
        return 0;
    const char **out = gust_arena_alloc(h->req->arena, count * sizeof *out);
    if (!out)
        return 0;
    size_t k = 0;
    for (size_t i = 0; i < args->count && k < count; i++) {
        if (!gust_str_eq(args->items[i].name, n))
            continue;
        if (!(out[k++] = gust_str_dup(h->req->arena,
                                      strip(args->items[i].value))))
            return 0;
    }
    *values = out;
    return k;
}

size_t gust_handler_get_arguments(gust_handler *h, const char *name,
                                  const char ***values)
{
    return get_args(h, &h->req->arguments, name, values);
}

size_t gust_handler_get_query_arguments(gust_handler *h, const char *name,
                                        const char ***values)
{
    return get_args(h, &h->req->query_arguments, name, values);
}

size_t gust_handler_get_body_arguments(gust_handler *h, const char *name,
                                       const char ***values)
{
    return get_args(h, &h->req->body_arguments, name, values);
}

const gust_http_file *gust_handler_get_file(gust_handler *h, const char *name)
{
    return gust_http_files_get(&h->req->files, gust_str_cstr(name));
}
