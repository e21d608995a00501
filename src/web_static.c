/* Static files (web.h): gust_static_file_handler, Tornado's
 * StaticFileHandler, and the per-application cache of file versions behind
 * static_url (web_parts.h).
 *
 * SAFETY. The path comes from the URL, decoded once by the router. It is
 * refused (403) when a segment is "..", when the raw path holds "%00", or
 * when the decoded path still holds an escape of '.', '/', '\' or NUL (a
 * double-encoded traversal attempt). What is left is opened with
 * openat2(RESOLVE_BENEATH) under root: symlinks are followed, but the
 * kernel refuses any resolution that leaves root (403), with no race.
 * Where openat2 is missing, and for an absolute symlink (which
 * RESOLVE_BENEATH refuses even when it points inside root), realpath()
 * decides instead: the result must lie under the real root, and the final
 * open() uses O_NOFOLLOW so that a component swapped for a symlink after
 * the check fails instead of escaping. Anything but a regular file (or a
 * directory with default_filename) is 403; O_NONBLOCK keeps a FIFO from
 * blocking the loop.
 *
 * ETAG. A strong validator made from a 64-bit FNV-1a hash of the file's
 * device, inode, size and modification time (nanoseconds): cheap (one
 * fstat, no read), and it changes whenever the file is replaced or
 * rewritten. Strong, because it identifies these exact bytes for as long as
 * the file is not modified, which If-Range needs.
 *
 * The bytes go out through gust__handler_sendfile(): a file is never read
 * into memory, whatever its size. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

#include <openssl/evp.h>

#include "gust/log.h"
#include "web_parts.h"

/* One year: versioned URLs change whenever the file does. */
#define VERSIONED_MAX_AGE "31536000"

/* ---- Range ---------------------------------------------------------------- */

static gust_str trim_ows(gust_str s)
{
    while (s.len && (s.ptr[0] == ' ' || s.ptr[0] == '\t')) {
        s.ptr++;
        s.len--;
    }
    while (s.len && (s.ptr[s.len - 1] == ' ' || s.ptr[s.len - 1] == '\t'))
        s.len--;
    return s;
}

/* Decimal digits only (at least one); saturates at UINT64_MAX, which is
 * past any file anyway. */
static bool parse_u64(gust_str s, uint64_t *out)
{
    if (s.len == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return false;
        unsigned d = (unsigned)(s.ptr[i] - '0');
        v = v > (UINT64_MAX - d) / 10 ? UINT64_MAX : v * 10 + d;
    }
    *out = v;
    return true;
}

gust__range_result gust__static_parse_range(gust_str header, uint64_t size,
                                            uint64_t *start, uint64_t *len)
{
    if (!header.ptr)
        return GUST__RANGE_FULL;
    const char *eq = memchr(header.ptr, '=', header.len);
    if (!eq)
        return GUST__RANGE_FULL;
    gust_str unit = trim_ows(gust_str_make(header.ptr,
                                           (size_t)(eq - header.ptr)));
    if (!gust_str_eq_nocase(unit, GUST_STR("bytes")))
        return GUST__RANGE_FULL;
    gust_str spec = trim_ows(gust_str_make(
        eq + 1, header.len - (size_t)(eq + 1 - header.ptr)));
    /* Several ranges would need multipart/byteranges: send it all. */
    if (memchr(spec.ptr, ',', spec.len))
        return GUST__RANGE_FULL;
    const char *dash = memchr(spec.ptr, '-', spec.len);
    if (!dash)
        return GUST__RANGE_FULL;
    gust_str first = trim_ows(gust_str_make(spec.ptr,
                                            (size_t)(dash - spec.ptr)));
    gust_str last = trim_ows(gust_str_make(
        dash + 1, spec.len - (size_t)(dash + 1 - spec.ptr)));
    uint64_t a = 0, b = 0;
    bool has_a = first.len > 0, has_b = last.len > 0;
    if ((has_a && !parse_u64(first, &a)) || (has_b && !parse_u64(last, &b)) ||
        (!has_a && !has_b))
        return GUST__RANGE_FULL;
    uint64_t s, n;
    if (has_a) {
        if (has_b && b < a)
            return GUST__RANGE_FULL; /* invalid, so ignored (RFC 9110 14.1.1) */
        if (a >= size)
            return GUST__RANGE_UNSATISFIABLE;
        uint64_t end = has_b && b < size - 1 ? b : size - 1;
        s = a;
        n = end - a + 1;
    } else {
        if (b == 0 || size == 0)
            return GUST__RANGE_UNSATISFIABLE;
        n = b < size ? b : size;
        s = size - n;
    }
    if (s == 0 && n == size)
        return GUST__RANGE_FULL;
    *start = s;
    *len = n;
    return GUST__RANGE_PARTIAL;
}

/* ---- Resolving a URL path under root -------------------------------------- */

/* True when s holds "%xx" for one of the escapes that only a
 * double-encoded traversal would leave after one decoding. */
static bool has_suspicious_escape(const char *s)
{
    static const char *const escapes[] = {"%2e", "%2f", "%5c", "%00"};
    for (const char *p = strchr(s, '%'); p; p = strchr(p + 1, '%')) {
        for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
            if (strncasecmp(p, escapes[i], 3) == 0)
                return true;
        }
    }
    return false;
}

/* rel without empty and "." segments, in arena; NULL with *err -EACCES for
 * a ".." segment, -ENOMEM. */
static char *clean_relative(gust_arena *arena, const char *rel, int *err)
{
    size_t n = strlen(rel);
    char *out = gust_arena_alloc(arena, n + 1), *o = out;
    if (!out) {
        *err = -ENOMEM;
        return NULL;
    }
    const char *p = rel;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            *err = -EACCES;
            return NULL;
        }
        if (len > 0 && !(len == 1 && p[0] == '.')) {
            if (o > out)
                *o++ = '/';
            memcpy(o, p, len);
            o += len;
        }
        p += len + (slash != NULL);
    }
    *o = '\0';
    return out;
}

/* A file found under root. */
typedef struct {
    int fd;
    struct stat st;
    char *real; /* its resolved path (malloc'd) */
} found_file;

/* Keeps fd when it is a regular file or a directory; -EACCES otherwise. */
static int accept_fd(int fd, found_file *f)
{
    if (fstat(fd, &f->st) != 0 ||
        !(S_ISREG(f->st.st_mode) || S_ISDIR(f->st.st_mode))) {
        close(fd);
        return -EACCES;
    }
    f->fd = fd;
    return 0;
}

#ifdef SYS_openat2
/* The fast and race-free way (Linux 5.6+): the kernel resolves rel under
 * root and refuses any escape, symlinks included, with EXDEV. Returns as
 * open_under_root, or 1 when the caller must decide with realpath(): no
 * openat2 (old kernel, seccomp), or EXDEV, which also covers an absolute
 * symlink that points back inside root. */
static int open_beneath(const char *root, const char *rel, found_file *f)
{
    int dir = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0)
        return errno == ENOENT || errno == ENOTDIR ? -ENOENT : -EACCES;
    struct open_how how = {
        .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC,
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, dir, *rel ? rel : ".", &how, sizeof how);
    int err = errno;
    close(dir);
    if (fd >= 0)
        return accept_fd((int)fd, f);
    switch (err) {
    case ENOSYS:
    case EPERM:
    case EXDEV:
        return 1;
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return -ENOENT;
    case ENOMEM:
        return -ENOMEM;
    default:
        return -EACCES;
    }
}
#endif

/* Opens root/rel (rel already cleaned). Returns 0 with *f filled (the
 * caller closes f->fd and frees f->real), -ENOENT (404), -EACCES (403:
 * outside root, not a regular file or directory, not readable). */
static int open_under_root(const char *root, const char *rel, found_file *f)
{
#ifdef SYS_openat2
    int fast = open_beneath(root, rel, f);
    if (fast <= 0)
        return fast;
#endif
    char *root_real = realpath(root, NULL);
    if (!root_real)
        return errno == ENOMEM ? -ENOMEM : -ENOENT;
    size_t rlen = strlen(root_real);
    size_t need = rlen + 1 + strlen(rel) + 1;
    char *full = malloc(need);
    if (!full) {
        free(root_real);
        return -ENOMEM;
    }
    snprintf(full, need, "%s/%s", root_real, rel);
    char *real = realpath(full, NULL);
    int err = errno;
    free(full);
    if (!real) {
        free(root_real);
        if (err == ENOENT || err == ENOTDIR || err == ENAMETOOLONG)
            return -ENOENT;
        return err == ENOMEM ? -ENOMEM : -EACCES;
    }
    /* Under root: root itself, or root + "/" + more ("/" as root takes
     * everything). */
    bool inside = strncmp(real, root_real, rlen) == 0 &&
                  (real[rlen] == '\0' || real[rlen] == '/' ||
                   (rlen == 1 && root_real[0] == '/'));
    free(root_real);
    if (!inside) {
        free(real);
        return -EACCES;
    }
    int fd = open(real, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        err = errno;
        free(real);
        return err == ENOENT ? -ENOENT : -EACCES;
    }
    int rc = accept_fd(fd, f);
    if (rc < 0)
        free(real);
    else
        f->real = real;
    return rc;
}

static void found_close(found_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    free(f->real);
    f->fd = -1;
    f->real = NULL;
}

/* ---- Version cache (static_url) ------------------------------------------- */

#define CACHE_BUCKETS 256

typedef struct cache_entry {
    struct cache_entry *next;
    char *path;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    char version[9];
} cache_entry;

struct gust__static_cache {
    char *root;
    cache_entry *buckets[CACHE_BUCKETS];
};

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#define FNV_OFFSET 0xcbf29ce484222325ull

gust__static_cache *gust__static_cache_new(const char *root)
{
    assert(root);
    gust__static_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->root = strdup(root);
    if (!c->root) {
        free(c);
        return NULL;
    }
    return c;
}

void gust__static_cache_free(gust__static_cache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < CACHE_BUCKETS; i++) {
        cache_entry *e = c->buckets[i];
        while (e) {
            cache_entry *next = e->next;
            free(e->path);
            free(e);
            e = next;
        }
    }
    free(c->root);
    free(c);
}

/* First 8 hex digits of the SHA-256 of fd's content, read in blocks. */
static int hash_file(int fd, char out[9])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return -ENOMEM;
    }
    unsigned char buf[65536];
    off_t off = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = -errno;
            break;
        }
        if (n == 0)
            break;
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        off += n;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 && rc == 0)
        rc = -EIO;
    EVP_MD_CTX_free(ctx);
    if (rc == 0)
        snprintf(out, 9, "%02x%02x%02x%02x", md[0], md[1], md[2], md[3]);
    return rc;
}

const char *gust__static_cache_version(gust__static_cache *c, const char *path)
{
    if (!c || !path)
        return NULL;
    /* Same safety rules as the handler: static_url must not become a way
     * to probe files outside root. */
    gust_arena scratch;
    gust_arena_init(&scratch, 256);
    int err = 0;
    char *rel = has_suspicious_escape(path) ? NULL
                                            : clean_relative(&scratch, path, &err);
    found_file f = {.fd = -1};
    bool ok = rel && open_under_root(c->root, rel, &f) == 0 &&
              S_ISREG(f.st.st_mode);
    gust_arena_close(&scratch);
    if (!ok) {
        found_close(&f);
        return NULL;
    }
    size_t b = fnv1a(FNV_OFFSET, path, strlen(path)) % CACHE_BUCKETS;
    cache_entry *e = c->buckets[b];
    while (e && strcmp(e->path, path) != 0)
        e = e->next;
    if (e && e->dev == f.st.st_dev && e->ino == f.st.st_ino &&
        e->size == f.st.st_size && e->mtime.tv_sec == f.st.st_mtim.tv_sec &&
        e->mtime.tv_nsec == f.st.st_mtim.tv_nsec) {
        found_close(&f);
        return e->version;
    }
    char version[9];
    if (hash_file(f.fd, version) < 0) {
        found_close(&f);
        return NULL;
    }
    if (!e) {
        e = calloc(1, sizeof *e);
        if (!e || !(e->path = strdup(path))) {
            free(e);
            found_close(&f);
            return NULL;
        }
        e->next = c->buckets[b];
        c->buckets[b] = e;
    }
    e->dev = f.st.st_dev;
    e->ino = f.st.st_ino;
    e->size = f.st.st_size;
    e->mtime = f.st.st_mtim;
    memcpy(e->version, version, sizeof version);
    found_close(&f);
    return e->version;
}

/* ---- The handler ------------------------------------------------------------ */

static void close_fd_cleanup(void *p)
{
    close((int)(intptr_t)p);
}

static void make_etag(const struct stat *st, char out[24])
{
    uint64_t h = FNV_OFFSET;
    uint64_t parts[5] = {(uint64_t)st->st_dev, (uint64_t)st->st_ino,
                         (uint64_t)st->st_size, (uint64_t)st->st_mtim.tv_sec,
                         (uint64_t)st->st_mtim.tv_nsec};
    h = fnv1a(h, parts, sizeof parts);
    snprintf(out, 24, "\"%016" PRIx64 "\"", h);
}

/* If-None-Match: "*" or a list of entity tags, compared weakly (RFC 9110
 * section 13.1.2: W/ ignored). A malformed list matches nothing. */
static bool etag_matches(gust_str inm, const char *etag)
{
    gust_str mine = gust_str_cstr(etag);
    const char *p = inm.ptr, *end = inm.ptr + inm.len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        if (p == end)
            break;
        if (*p == '*')
            return true;
        if (end - p >= 2 && p[0] == 'W' && p[1] == '/')
            p += 2;
        if (p == end || *p != '"')
            return false;
        const char *close = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (!close)
            return false;
        if (gust_str_eq(gust_str_make(p, (size_t)(close - p + 1)), mine))
            return true;
        p = close + 1;
    }
    return false;
}

/* If-Range: the range applies only if the validator still names this
 * file: our (strong) ETag exactly, or our Last-Modified date exactly. */
static bool if_range_holds(gust_str ir, const char *etag, time_t mtime)
{
    ir = trim_ows(ir);
    if (ir.len && (ir.ptr[0] == '"' || ir.ptr[0] == 'W'))
        return gust_str_eq(ir, gust_str_cstr(etag));
    time_t t;
    return gust_http_date_parse(ir, &t) == 0 && t == mtime;
}

/* The message leaves the path out: an error page must not echo the URL. */
static int fail(gust_handler *h, int err)
{
    if (err == -EACCES)
        return gust_handler_send_error(h, 403, "not a file under the static "
                                               "root");
    if (err == -ENOENT)
        return gust_handler_send_error(h, 404, NULL);
    return err; /* -ENOMEM: 500 */
}

/* Finds the file for the request; may answer (error, redirect) itself, in
 * which case *f stays closed and 1 is returned. */
static int locate(gust_handler *h, const gust_static_options *opts,
                  found_file *f, const char **name)
{
    gust_http_request *req = gust_handler_request(h);
    const char *arg = gust_handler_path_arg(h, 0);
    if (!arg)
        arg = "";
    if (strstr(req->path, "%00") || has_suspicious_escape(arg)) {
        fail(h, -EACCES);
        return 1;
    }
    int err = 0;
    char *rel = clean_relative(gust_handler_arena(h), arg, &err);
    if (!rel)
        return err == -ENOMEM ? err : (fail(h, err), 1);
    err = open_under_root(opts->root, rel, f);
    if (err < 0)
        return err == -ENOMEM ? err : (fail(h, err), 1);
    *name = rel;
    if (!S_ISDIR(f->st.st_mode)) {
        /* "file.txt/" names a directory that does not exist. */
        size_t alen = strlen(arg);
        if (alen > 0 && arg[alen - 1] == '/') {
            found_close(f);
            fail(h, -ENOENT);
            return 1;
        }
        return 0;
    }
    found_close(f);
    if (!opts->default_filename) {
        fail(h, -EACCES);
        return 1;
    }
    /* Relative links in an index page need the URL to end with '/'. */
    size_t plen = strlen(req->path);
    if (plen == 0 || req->path[plen - 1] != '/') {
        /* "//host/..." would be a protocol-relative URL: an open redirect. */
        if (strncmp(req->path, "//", 2) == 0) {
            fail(h, -EACCES);
            return 1;
        }
        char *to = gust_arena_sprintf(gust_handler_arena(h), "%s/", req->path);
        if (!to)
            return -ENOMEM;
        err = gust_handler_redirect(h, to, 301);
        return err < 0 ? err : 1;
    }
    char *idx = gust_arena_sprintf(gust_handler_arena(h), "%s%s%s", rel,
                                   *rel ? "/" : "", opts->default_filename);
    if (!idx)
        return -ENOMEM;
    err = open_under_root(opts->root, idx, f);
    if (err == 0 && !S_ISREG(f->st.st_mode)) {
        found_close(f);
        err = -EACCES;
    }
    if (err < 0)
        return err == -ENOMEM ? err : (fail(h, err), 1);
    *name = idx;
    return 0;
}

static int set_header(gust_handler *h, const char *name, const char *value,
                      int rc)
{
    return rc < 0 ? rc : gust_handler_set_header(h, name, value);
}

static int serve(gust_handler *h, bool include_body)
{
    const gust_static_options *opts = gust_handler_route_data(h);
    assert(opts && opts->root && "gust_static_file_handler needs route data");
    gust_http_request *req = gust_handler_request(h);
    found_file f = {.fd = -1};
    const char *name = NULL;
    int rc = locate(h, opts, &f, &name);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    /* The fd must outlive the method: sendfile reads it later. The arena
     * closes it when the request ends. */
    int fd = f.fd;
    f.fd = -1;
    found_close(&f);
    if (gust_arena_add_cleanup(gust_handler_arena(h), close_fd_cleanup,
                               (void *)(intptr_t)fd) < 0) {
        close(fd);
        return -ENOMEM;
    }
    const struct stat *st = &f.st;
    uint64_t size = (uint64_t)st->st_size;
    char etag[24], modified[GUST_HTTP_DATE_SIZE];
    make_etag(st, etag);
    /* sendfile sends the bytes as they are; gzip would need reading them. */
    gust__handler_no_compression(h);
    rc = set_header(h, "Accept-Ranges", "bytes", 0);
    rc = set_header(h, "ETag", etag, rc);
    if (gust_http_date_format(st->st_mtim.tv_sec, modified) == 0)
        rc = set_header(h, "Last-Modified", modified, rc);
    rc = set_header(h, "Content-Type", gust__mime_type(name), rc);
    if (gust_handler_get_query_argument(h, "v", NULL))
        rc = set_header(h, "Cache-Control",
                        "public, max-age=" VERSIONED_MAX_AGE, rc);
    if (rc < 0)
        return rc;

    /* If-None-Match, when present, decides alone (RFC 9110 13.2.2). */
    gust_str inm, ims, range, if_range;
    if (gust_http_headers_get_joined(&req->headers, GUST_STR("If-None-Match"),
                                     &inm) == 0 &&
        trim_ows(inm).len > 0) {
        if (etag_matches(inm, etag))
            return gust_handler_set_status(h, 304, NULL);
    } else {
        ims = gust_http_headers_get_first(&req->headers,
                                          GUST_STR("If-Modified-Since"));
        time_t since;
        if (ims.ptr && gust_http_date_parse(trim_ows(ims), &since) == 0 &&
            since >= st->st_mtim.tv_sec)
            return gust_handler_set_status(h, 304, NULL);
    }

    uint64_t start = 0, len = size;
    range = gust_http_headers_get_first(&req->headers, GUST_STR("Range"));
    if_range = gust_http_headers_get_first(&req->headers, GUST_STR("If-Range"));
    gust__range_result r = GUST__RANGE_FULL;
    if (range.ptr && (!if_range.ptr ||
                      if_range_holds(if_range, etag, st->st_mtim.tv_sec)))
        r = gust__static_parse_range(range, size, &start, &len);
    char buf[64];
    if (r == GUST__RANGE_UNSATISFIABLE) {
        snprintf(buf, sizeof buf, "bytes */%" PRIu64, size);
        rc = gust_handler_set_status(h, 416, NULL);
        rc = set_header(h, "Content-Type", "text/plain", rc);
        return set_header(h, "Content-Range", buf, rc);
    }
    if (r == GUST__RANGE_PARTIAL) {
        snprintf(buf, sizeof buf, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
                 start, start + len - 1, size);
        rc = gust_handler_set_status(h, 206, NULL);
        rc = set_header(h, "Content-Range", buf, rc);
    }
    snprintf(buf, sizeof buf, "%" PRIu64, len);
    rc = set_header(h, "Content-Length", buf, rc);
    if (rc < 0 || !include_body || len == 0)
        return rc;
    if (len > SIZE_MAX)
        return -EFBIG;
    return gust__handler_sendfile(h, fd, (off_t)start, (size_t)len);
}

static int static_get(gust_handler *h)
{
    return serve(h, true);
}

static int static_head(gust_handler *h)
{
    return serve(h, false);
}

const gust_handler_class gust_static_file_handler = {
    .name = "StaticFileHandler",
    .get = static_get,
    .head = static_head,
};
