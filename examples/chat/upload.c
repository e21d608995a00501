/* Attachments: POST /a/upload, a multipart/form-data body with one file
 * in field "file", streamed to disk as it arrives (Tornado's
 * stream_request_body): memory stays flat whatever the file's size.
 *
 * Checked on the way in: the size (413 with a page saying the limit, from
 * Content-Length before a byte is read, or as soon as the parts pass it),
 * the declared type (a short list: images, PDF, text, ZIP) and that the
 * first bytes match that type, so that nothing served back from /files/
 * is HTML or script in disguise. The file is written under a random name
 * ending in ".part" and renamed only once complete and checked; a failed
 * or abandoned upload leaves nothing behind.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "chat.h"

/* The multipart parts are small next to the file: headers, boundaries. */
#define MULTIPART_SLACK (64 * 1024)
#define SNIFF 12

typedef struct file_type {
    const char *type, *ext, *label;
    bool image;
} file_type;

static const file_type types[] = {
    {"image/png", "png", "PNG image", true},
    {"image/jpeg", "jpg", "JPEG image", true},
    {"image/gif", "gif", "GIF image", true},
    {"image/webp", "webp", "WebP image", true},
    {"application/pdf", "pdf", "PDF document", false},
    {"text/plain", "txt", "text file", false},
    {"application/zip", "zip", "ZIP archive", false},
};

#define TYPES_REFUSED                                                        \
    "Only images (PNG, JPEG, GIF, WebP), PDF documents, plain text and ZIP " \
    "archives can be attached."

typedef struct upload_state {
    gust_multipart mp;
    const file_type *type;
    int fd;
    bool fd_open; /* fd is ours to close */
    bool in_file, have_file, done;
    size_t size;
    unsigned char head[SNIFF];
    size_t head_len;
    bool sniffed;
    char name[64];     /* <32 hex>.<ext> */
    char path[4096];   /* upload_dir/name.part */
    char *filename;    /* as the client named it, cleaned */
    int status;        /* the error to answer, 0: none */
    const char *message;
} upload_state;

static int fail(upload_state *st, int status, const char *message)
{
    if (!st->status) {
        st->status = status;
        st->message = message;
    }
    return -ECANCELED;
}

static const file_type *find_type(gust_str t)
{
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strlen(types[i].type) == t.len &&
            !strncasecmp(types[i].type, t.ptr, t.len))
            return &types[i];
    return NULL;
}

/* Do the first bytes fit the declared type? */
static bool sniff_ok(const upload_state *st)
{
    const unsigned char *b = st->head;
    size_t n = st->head_len;
    const char *e = st->type->ext;
    if (!strcmp(e, "png"))
        return n >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8);
    if (!strcmp(e, "jpg"))
        return n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff;
    if (!strcmp(e, "gif"))
        return n >= 6 && (!memcmp(b, "GIF87a", 6) || !memcmp(b, "GIF89a", 6));
    if (!strcmp(e, "webp"))
        return n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4);
    if (!strcmp(e, "pdf"))
        return n >= 5 && !memcmp(b, "%PDF-", 5);
    if (!strcmp(e, "zip"))
        return n >= 4 && !memcmp(b, "PK\x03\x04", 4);
    return true; /* text: NUL bytes are refused as the data comes */
}

/* The client's file name without its folders or control characters, at
 * most 100 bytes of UTF-8 (else "attachment"). */
static char *clean_filename(gust_arena *a, gust_str f)
{
    size_t start = 0;
    for (size_t i = 0; i < f.len; i++)
        if (f.ptr[i] == '/' || f.ptr[i] == '\\')
            start = i + 1;
    size_t n = f.len - start;
    if (n == 0 || n > 100)
        return gust_arena_strdup(a, "attachment");
    char *s = gust_arena_strndup(a, f.ptr + start, n);
    if (!s)
        return NULL;
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '_';
    json_t *probe = json_string(s);
    if (!probe)
        return gust_arena_strdup(a, "attachment");
    json_decref(probe);
    return s;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int part_begin(gust_multipart *mp, const gust_http_part *part,
                      void *data)
{
    (void)mp;
    gust_handler *h = data;
    upload_state *st = gust_handler_state(h);
    st->in_file = false;
    if (!part->filename.ptr || !part->filename.len ||
        !(part->name.len == 4 && !memcmp(part->name.ptr, "file", 4)))
        return 0; /* other fields are not used */
    if (st->have_file)
        return fail(st, 400, "Attach one file at a time.");
    st->type = find_type(part->content_type);
    if (!st->type)
        return fail(st, 415, TYPES_REFUSED);
    st->filename = clean_filename(gust_handler_arena(h), part->filename);
    unsigned char rnd[16];
    if (!st->filename || getrandom(rnd, sizeof rnd, 0) != sizeof rnd)
        return fail(st, 500, "Cannot store the file.");
    for (size_t i = 0; i < sizeof rnd; i++)
        snprintf(st->name + 2 * i, 3, "%02x", rnd[i]);
    snprintf(st->name + 32, sizeof st->name - 32, ".%s", st->type->ext);
    snprintf(st->path, sizeof st->path, "%s/%s.part", chat.upload_dir,
             st->name);
    st->fd = open(st->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (st->fd < 0) {
        gust_log_error(CHAT_LOG, "upload: cannot create %s: %s", st->path,
                       strerror(errno));
        st->path[0] = '\0';
        return fail(st, 500, "Cannot store the file.");
    }
    st->fd_open = true;
    st->in_file = st->have_file = true;
    return 0;
}

static int part_data(gust_multipart *mp, const char *buf, size_t len,
                     void *data)
{
    (void)mp;
    gust_handler *h = data;
    upload_state *st = gust_handler_state(h);
    if (!st->in_file)
        return 0;
    if (st->size + len > chat.max_upload)
        return fail(st, 413, NULL);
    if (!st->sniffed) {
        size_t take = SNIFF - st->head_len < len ? SNIFF - st->head_len : len;
        memcpy(st->head + st->head_len, buf, take);
        st->head_len += take;
        if (st->head_len == SNIFF) {
            st->sniffed = true;
            if (!sniff_ok(st))
                return fail(st, 415, "The file's content is not what its "
                                     "type says.");
        }
    }
    if (st->type->image == false && !strcmp(st->type->ext, "txt") &&
        memchr(buf, '\0', len))
        return fail(st, 415, "That is not a text file.");
    st->size += len;
    int rc = write_all(st->fd, buf, len);
    if (rc < 0) {
        gust_log_error(CHAT_LOG, "upload: writing %s: %s", st->path,
                       strerror(-rc));
        return fail(st, 500, "Cannot store the file.");
    }
    return 0;
}

static int part_end(gust_multipart *mp, void *data)
{
    (void)mp;
    gust_handler *h = data;
    upload_state *st = gust_handler_state(h);
    if (!st->in_file)
        return 0;
    st->in_file = false;
    if (!st->sniffed && !sniff_ok(st))
        return fail(st, 415, "The file's content is not what its type says.");
    st->sniffed = true;
    st->fd_open = false;
    if (close(st->fd) < 0)
        return fail(st, 500, "Cannot store the file.");
    return 0;
}

static const gust_multipart_callbacks callbacks = {part_begin, part_data,
                                                   part_end};

static void answer_failure(gust_handler *h, int rc)
{
    upload_state *st = gust_handler_state(h);
    if (st->status)
        gust_handler_send_error(h, st->status, "%s",
                                st->message ? st->message : "");
    else if (rc == -E2BIG)
        gust_handler_send_error(h, 400, "The upload's part headers are too "
                                        "long.");
    else
        gust_handler_send_error(h, 400, "The upload is not a valid "
                                        "multipart/form-data body.");
}

static int upload_prepare(gust_handler *h)
{
    upload_state *st = gust_handler_state(h);
    gust_http_request *r = gust_handler_request(h);
    gust_str cl = gust_http_headers_get_first(&r->headers,
                                              GUST_STR("Content-Length"));
    if (cl.ptr) {
        char tmp[24];
        size_t n = cl.len < sizeof tmp - 1 ? cl.len : sizeof tmp - 1;
        memcpy(tmp, cl.ptr, n);
        tmp[n] = '\0';
        if (strtoull(tmp, NULL, 10) > chat.max_upload + MULTIPART_SLACK)
            return gust_handler_send_error(h, 413, NULL);
    }
    gust_str ctv = gust_http_headers_get_first(&r->headers,
                                               GUST_STR("Content-Type"));
    gust_http_content_type ct;
    if (!ctv.ptr ||
        gust_http_parse_content_type(gust_handler_arena(h), ctv, &ct) < 0 ||
        ct.type.len != 19 || memcmp(ct.type.ptr, "multipart/form-data", 19))
        return gust_handler_send_error(h, 400, "Send the file as "
                                               "multipart/form-data.");
    gust_str boundary = gust_http_content_type_param(&ct, GUST_STR("boundary"));
    if (!boundary.ptr ||
        gust_multipart_init(&st->mp, boundary, 0, gust_handler_arena(h),
                            &callbacks, h) < 0)
        return gust_handler_send_error(h, 400, "The multipart boundary is "
                                               "missing or invalid.");
    return 0;
}

static int upload_data(gust_handler *h, const char *chunk, size_t len)
{
    upload_state *st = gust_handler_state(h);
    int rc = gust_multipart_feed(&st->mp, chunk, len);
    if (rc < 0)
        answer_failure(h, rc);
    return 0;
}

static int upload_post(gust_handler *h)
{
    upload_state *st = gust_handler_state(h);
    int rc = gust_multipart_finish(&st->mp);
    if (rc < 0) {
        answer_failure(h, rc);
        return 0;
    }
    if (!st->have_file)
        return gust_handler_send_error(h, 400, "Choose a file to attach.");
    char final[4096];
    snprintf(final, sizeof final, "%s/%s", chat.upload_dir, st->name);
    if (rename(st->path, final) < 0) {
        gust_log_error(CHAT_LOG, "upload: rename %s: %s", st->path,
                       strerror(errno));
        return gust_handler_send_error(h, 500, "Cannot store the file.");
    }
    st->done = true;
    char size_text[32];
    if (st->size >= 1 << 20)
        snprintf(size_text, sizeof size_text, "%.1f MB",
                 (double)st->size / (1 << 20));
    else if (st->size >= 1024)
        snprintf(size_text, sizeof size_text, "%.0f KB",
                 (double)st->size / 1024);
    else
        snprintf(size_text, sizeof size_text, "%zu bytes", st->size);
    json_t *file = json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:s, s:b}", "url",
        gust_arena_sprintf(gust_handler_arena(h), "/files/%s", st->name),
        "name", st->filename, "type", st->type->type, "label",
        st->type->label, "size", (json_int_t)st->size, "size_text",
        size_text, "image", st->type->image);
    json_t *m = file ? chat_message_new(gust_handler_current_user(h), "", file) : NULL;
    json_decref(file);
    if (!m)
        return -ENOMEM;
    gust_log_info(CHAT_LOG, "upload: %s stored as %s (%zu bytes)",
                  st->filename, st->name, st->size);
    rc = chat_publish(m, chat_answer_published, h);
    json_decref(m);
    if (rc < 0) {
        unlink(final);
        return gust_handler_send_error(
            h, 503, "Your file was not sent: the chat server has lost its "
                    "connection to Redis. Try again in a moment.");
    }
    return GUST_HANDLER_ASYNC;
}

/* Runs for every upload however it ended: nothing half-written stays. */
static void upload_finish(gust_handler *h)
{
    upload_state *st = gust_handler_state(h);
    if (st->fd_open)
        close(st->fd);
    st->fd_open = false;
    if (st->path[0] && !st->done)
        unlink(st->path);
}

const gust_handler_class chat_upload_class = {
    .name = "upload",
    .base = &chat_authenticated,
    .flags = GUST_HANDLER_STREAM_BODY,
    .state_size = sizeof(upload_state),
    .prepare = upload_prepare,
    .data_received = upload_data,
    .post = upload_post,
    .on_finish = upload_finish,
};
