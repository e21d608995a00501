/* lws_echo: libwebsockets echo server for bench/ws_compare.sh (Debian's
 * libwebsockets-dev, 4.1), written the way libwebsockets' minimal examples
 * are: one service thread, messages queued per session and written one per
 * LWS_CALLBACK_SERVER_WRITEABLE.
 *
 *   lws_echo --port=N [--broadcast]
 *
 * Echoes every message with its type (text or binary), whole: fragments are
 * gathered first. With --broadcast, a text message that starts with
 * "broadcast:" is queued instead on every open connection (the sender
 * included), one shared copy, and every connection is asked for a writeable
 * callback. permessage-deflate is accepted when offered; text is validated
 * as UTF-8 (LWS_SERVER_OPTION_VALIDATE_UTF8), as RFC 6455 asks and Gust
 * does, so both servers do the same work. Listens on 127.0.0.1 only.
 */
#include <libwebsockets.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MARKER "broadcast:"

/* A message ready to send, shared by every queue it is on. */
typedef struct msg {
    size_t len;
    int refs;
    int binary;
    unsigned char buf[]; /* LWS_PRE bytes of headroom, then the payload */
} msg;

typedef struct qnode {
    struct qnode *next;
    msg *m;
} qnode;

typedef struct session {
    struct lws *wsi;
    struct session *prev, *next; /* every open session, for broadcast */
    qnode *head, *tail;          /* messages to write */
    unsigned char *rx;           /* the message being received */
    size_t rx_len, rx_cap;
    int rx_binary;
} session;

static session *sessions;
static int broadcast;
static volatile sig_atomic_t interrupted;
static struct lws_context *context;

static void msg_unref(msg *m)
{
    if (--m->refs == 0)
        free(m);
}

static int enqueue(session *s, msg *m)
{
    qnode *q = malloc(sizeof *q);
    if (!q)
        return -1;
    q->next = NULL;
    q->m = m;
    m->refs++;
    if (s->tail)
        s->tail->next = q;
    else
        s->head = q;
    s->tail = q;
    return 0;
}

static int rx_append(session *s, const void *in, size_t len)
{
    if (s->rx_len + len > s->rx_cap) {
        size_t cap = s->rx_cap ? s->rx_cap : 256;
        while (cap < s->rx_len + len)
            cap *= 2;
        unsigned char *p = realloc(s->rx, cap);
        if (!p)
            return -1;
        s->rx = p;
        s->rx_cap = cap;
    }
    memcpy(s->rx + s->rx_len, in, len);
    s->rx_len += len;
    return 0;
}

static int on_message(struct lws *wsi, session *s)
{
    msg *m = malloc(sizeof *m + LWS_PRE + s->rx_len);
    if (!m)
        return -1;
    m->len = s->rx_len;
    m->refs = 1; /* ours until the queues hold it */
    m->binary = s->rx_binary;
    memcpy(m->buf + LWS_PRE, s->rx, s->rx_len);
    s->rx_len = 0;
    if (broadcast && !m->binary && m->len >= sizeof MARKER - 1 &&
        memcmp(m->buf + LWS_PRE, MARKER, sizeof MARKER - 1) == 0) {
        for (session *t = sessions; t; t = t->next)
            enqueue(t, m);
        lws_callback_on_writable_all_protocol(lws_get_context(wsi),
                                              lws_get_protocol(wsi));
    } else {
        enqueue(s, m);
        lws_callback_on_writable(wsi);
    }
    msg_unref(m);
    return 0;
}

static int callback_echo(struct lws *wsi, enum lws_callback_reasons reason,
                         void *user, void *in, size_t len)
{
    session *s = user;
    switch (reason) {
    case LWS_CALLBACK_ESTABLISHED:
        memset(s, 0, sizeof *s);
        s->wsi = wsi;
        s->next = sessions;
        if (sessions)
            sessions->prev = s;
        sessions = s;
        break;
    case LWS_CALLBACK_CLOSED:
        if (s->prev)
            s->prev->next = s->next;
        else if (sessions == s)
            sessions = s->next;
        if (s->next)
            s->next->prev = s->prev;
        while (s->head) {
            qnode *q = s->head;
            s->head = q->next;
            msg_unref(q->m);
            free(q);
        }
        free(s->rx);
        s->rx = NULL;
        break;
    case LWS_CALLBACK_RECEIVE:
        if (lws_is_first_fragment(wsi)) {
            s->rx_len = 0;
            s->rx_binary = lws_frame_is_binary(wsi);
        }
        if (rx_append(s, in, len) < 0)
            return -1;
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi))
            return on_message(wsi, s);
        break;
    case LWS_CALLBACK_SERVER_WRITEABLE: {
        qnode *q = s->head;
        if (!q)
            break;
        s->head = q->next;
        if (!s->head)
            s->tail = NULL;
        msg *m = q->m;
        free(q);
        int n = lws_write(wsi, m->buf + LWS_PRE, m->len,
                          m->binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
        msg_unref(m);
        if (n < 0)
            return -1;
        if (s->head)
            lws_callback_on_writable(wsi);
        break;
    }
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols protocols[] = {
    {"echo", callback_echo, sizeof(session), 4096, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static const struct lws_extension extensions[] = {
    {"permessage-deflate", lws_extension_callback_pm_deflate,
     "permessage-deflate; client_max_window_bits"},
    {NULL, NULL, NULL},
};

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
    if (context)
        lws_cancel_service(context);
}

int main(int argc, char **argv)
{
    int port = 8888;
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "--port=", 7))
            port = atoi(argv[i] + 7);
        else if (!strcmp(argv[i], "--broadcast"))
            broadcast = 1;
        else {
            fprintf(stderr, "usage: lws_echo --port=N [--broadcast]\n");
            return 2;
        }
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    lws_set_log_level(LLL_ERR, NULL);

    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = "127.0.0.1";
    info.protocols = protocols;
    info.extensions = extensions;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   LWS_SERVER_OPTION_DISABLE_IPV6;
    context = lws_create_context(&info);
    if (!context) {
        fprintf(stderr, "lws_echo: lws_create_context failed\n");
        return 1;
    }
    printf("lws_echo listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    while (!interrupted && lws_service(context, 0) >= 0)
        ;
    lws_context_destroy(context);
    return 0;
}
