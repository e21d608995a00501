#include "redis_loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

typedef struct watch {
    gust_loop *loop;
    redisAsyncContext *ac;
    int fd;
    unsigned want;   /* GUST_READ | GUST_WRITE asked for by hiredis */
    bool added;      /* fd is registered on the loop */
    bool in_cb;      /* inside on_ready: hiredis may free ac under us */
    bool dead;       /* hiredis called cleanup: free once on_ready ends */
} watch;

/* Brings the loop's registration in line with what hiredis wants. */
static void sync_watch(watch *w)
{
    if (w->dead)
        return;
    if (!w->want) {
        if (w->added)
            gust_loop_remove_handler(w->loop, w->fd);
        w->added = false;
    } else if (w->added) {
        gust_loop_update_handler(w->loop, w->fd, w->want);
    }
    /* Adding needs on_ready, defined below. */
}

static void on_ready(gust_loop *loop, int fd, unsigned events, void *data);

static void want(watch *w, unsigned bit, bool on)
{
    if (on)
        w->want |= bit;
    else
        w->want &= ~bit;
    if (w->want && !w->added && !w->dead) {
        if (gust_loop_add_handler(w->loop, w->fd, w->want, on_ready, w) == 0)
            w->added = true;
        return;
    }
    sync_watch(w);
}

static void add_read(void *p) { want(p, GUST_READ, true); }
static void del_read(void *p) { want(p, GUST_READ, false); }
static void add_write(void *p) { want(p, GUST_WRITE, true); }
static void del_write(void *p) { want(p, GUST_WRITE, false); }

static void cleanup(void *p)
{
    watch *w = p;
    if (w->added)
        gust_loop_remove_handler(w->loop, w->fd);
    w->added = false;
    w->dead = true;
    if (!w->in_cb)
        free(w);
}

static void on_ready(gust_loop *loop, int fd, unsigned events, void *data)
{
    (void)loop;
    (void)fd;
    watch *w = data;
    w->in_cb = true;
    /* An error or hang-up is found by reading (hiredis then disconnects). */
    if (events & (GUST_READ | GUST_ERROR))
        redisAsyncHandleRead(w->ac);
    if (!w->dead && (events & GUST_WRITE))
        redisAsyncHandleWrite(w->ac);
    w->in_cb = false;
    if (w->dead)
        free(w);
}

int chat_redis_attach(redisAsyncContext *ac, gust_loop *loop)
{
    if (ac->ev.data)
        return -EEXIST;
    watch *w = calloc(1, sizeof *w);
    if (!w)
        return -ENOMEM;
    w->loop = loop;
    w->ac = ac;
    w->fd = ac->c.fd;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    ac->ev.data = w;
    return 0;
}
