/* Error names and messages, generated from the table in gust/error.h. */
#include <errno.h>
#include <string.h>

#include "gust/error.h"

const char *gust_strerror(int code)
{
    switch (code) {
#define GUST__ERROR_MSG(name, value, msg) case value: return msg;
        GUST_ERROR_TABLE(GUST__ERROR_MSG)
#undef GUST__ERROR_MSG
    }
    if (code == 0)
        return "success";
    if (code < 0 && code > -4000) {
        /* strerrordesc_np is thread-safe and locale-free, unlike strerror. */
        const char *s = strerrordesc_np(-code);
        if (s)
            return s;
    }
    return "unknown error";
}

const char *gust_err_name(int code)
{
    switch (code) {
#define GUST__ERROR_NAME(name, value, msg) case value: return #name;
        GUST_ERROR_TABLE(GUST__ERROR_NAME)
#undef GUST__ERROR_NAME
    }
    if (code == 0)
        return "OK";
    if (code < 0 && code > -4000) {
        const char *s = strerrorname_np(-code);
        if (s)
            return s;
    }
    return "UNKNOWN";
}
