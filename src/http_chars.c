/* Character classes for the HTTP utilities (RFC 9110, 3986, 6265, 2046),
 * spelled out from the RFC grammars in http_abnf.h; the bits are
 * documented in http_internal.h. */
#include "http_abnf.h"
#include "http_internal.h"

/* A request-target byte as gust_http_target_split() takes it (http.h):
 * VCHAR but "#" (a fragment is not part of a request-target, RFC 9112
 * section 3.2), and obs-text. */
#define GUST__TARGET_OCTET(c)                                                  \
    ((GUST__ABNF_VCHAR(c) && (c) != '#') || GUST__ABNF_OBS_TEXT(c))

/* One byte's classes (the bits are documented in http_internal.h). */
#define CC(c)                                                                  \
    (unsigned char)((GUST__ABNF_TCHAR(c) ? GUST__CC_TCHAR : 0) |               \
                    (GUST__ABNF_FIELD_VALUE_OCTET(c) ? GUST__CC_VALUE : 0) |   \
                    (GUST__ABNF_UNRESERVED(c) ? GUST__CC_UNRES : 0) |          \
                    (GUST__ABNF_URI_OCTET(c) ? GUST__CC_URI : 0) |             \
                    (GUST__ABNF_COOKIE_OCTET(c) ? GUST__CC_COOKIE : 0) |       \
                    (GUST__ABNF_BCHARS(c) ? GUST__CC_BCHAR : 0) |              \
                    (GUST__ABNF_HEXDIG(c) ? GUST__CC_HEX : 0) |                \
                    (GUST__TARGET_OCTET(c) ? GUST__CC_TARGET : 0))

const unsigned char gust__http_cc[256] = {GUST__ABNF_TABLE(CC)};
