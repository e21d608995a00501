/* gust_run_in_executor(): a blocking function on the loop's thread pool
 * (loop.h's gust_loop_run_in_executor()) as a future completed on the
 * loop. Built on public calls only. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>

#include "gust/future.h"
#include "gust/loop.h"

typedef struct exec_state {
    gust_blocking_fn fn;
    void *data;
    gust_future *f;
    int status;
    gust_value value;
} exec_state;

static void exec_work(void *data)
{
    exec_state *s = data;
    s->value = GUST_VALUE_NONE;
    s->status = s->fn(&s->value, s->data);
}

static void exec_done(gust_loop *loop, int status, void *data)
{
    (void)loop;
    (void)status;
    exec_state *s = data;
    gust_future *f = s->f;
    if (s->status < 0) {
        gust_value_free(&s->value);
        gust_future_set_error(f, s->status);
    } else if (gust_future_done(f)) {
        gust_value_free(&s->value); /* cancelled meanwhile */
    } else {
        gust_future_set_result(f, s->value);
    }
    free(s);
    gust_future_unref(f);
}

gust_future *gust_run_in_executor(gust_loop *loop, gust_blocking_fn fn,
                                  void *data)
{
    assert(fn);
    gust_future *f = gust_future_new(loop);
    exec_state *s = f ? malloc(sizeof *s) : NULL;
    if (!s) {
        gust_future_unref(f);
        errno = ENOMEM;
        return NULL;
    }
    s->fn = fn;
    s->data = data;
    s->f = gust_future_ref(f);
    int r = gust_loop_run_in_executor(loop, exec_work, exec_done, s);
    if (r < 0) {
        free(s);
        gust_future_unref(f); /* the work's reference */
        gust_future_unref(f);
        errno = -r;
        return NULL;
    }
    return f;
}
