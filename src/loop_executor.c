/* The executor: a small thread pool per loop for blocking work. Items start
 * in FIFO order; each completion goes back to the loop through the
 * threadsafe queue (see gust__loop_post_done), so done() runs on the loop.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "gust/loop.h"
#include "gust/common.h"
#include "loop_core_internal.h"

struct gust__executor {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    gust__work *head, *tail;
    bool shutdown;
    pthread_t *threads;
    int nthreads;
};

static void *worker_main(void *arg)
{
    gust__executor *ex = arg;
    pthread_mutex_lock(&ex->lock);
    for (;;) {
        while (!ex->head && !ex->shutdown)
            pthread_cond_wait(&ex->cond, &ex->lock);
        gust__work *w = ex->head;
        if (!w)
            break;
        ex->head = w->next;
        if (!ex->head)
            ex->tail = NULL;
        pthread_mutex_unlock(&ex->lock);
        w->work(w->data);
        gust__loop_post_done(w->loop, w);
        pthread_mutex_lock(&ex->lock);
    }
    pthread_mutex_unlock(&ex->lock);
    return NULL;
}

static void executor_destroy(gust__executor *ex)
{
    pthread_mutex_lock(&ex->lock);
    ex->shutdown = true;
    pthread_cond_broadcast(&ex->cond);
    pthread_mutex_unlock(&ex->lock);
    for (int i = 0; i < ex->nthreads; i++)
        pthread_join(ex->threads[i], NULL);
    pthread_cond_destroy(&ex->cond);
    pthread_mutex_destroy(&ex->lock);
    free(ex->threads);
    free(ex);
}

static int executor_start(gust_loop *loop)
{
    int n = loop->exec_threads;
    if (n <= 0) {
        n = gust_cpu_count();
        n = n < 2 ? 2 : n > 16 ? 16 : n;
    }
    gust__executor *ex = calloc(1, sizeof *ex);
    if (!ex)
        return -ENOMEM;
    ex->threads = calloc((size_t)n, sizeof *ex->threads);
    if (!ex->threads) {
        free(ex);
        return -ENOMEM;
    }
    pthread_mutex_init(&ex->lock, NULL);
    pthread_cond_init(&ex->cond, NULL);
    /* Workers block every signal so signals go to the loop's threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < n; i++) {
        if (pthread_create(&ex->threads[i], NULL, worker_main, ex) != 0)
            break;
        ex->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (ex->nthreads == 0) {
        executor_destroy(ex);
        return -EAGAIN;
    }
    loop->exec = ex;
    return 0;
}

int gust_loop_run_in_executor(gust_loop *loop, gust_work_fn work,
                              gust_work_done_fn done, void *data)
{
    assert(work);
    if (!loop->exec) {
        int r = executor_start(loop);
        if (r < 0)
            return r;
    }
    gust__work *w = malloc(sizeof *w);
    if (!w)
        return -ENOMEM;
    w->work = work;
    w->done = done;
    w->data = data;
    w->loop = loop;
    w->next = NULL;
    gust__executor *ex = loop->exec;
    pthread_mutex_lock(&ex->lock);
    if (ex->tail)
        ex->tail->next = w;
    else
        ex->head = w;
    ex->tail = w;
    pthread_cond_signal(&ex->cond);
    pthread_mutex_unlock(&ex->lock);
    loop->exec_inflight++;
    return 0;
}

int gust_loop_set_executor_threads(gust_loop *loop, int n)
{
    if (n < 1)
        return -EINVAL;
    if (loop->exec)
        return -EBUSY;
    loop->exec_threads = n;
    return 0;
}

void gust__executor_run_done(gust_loop *loop, gust__work *list)
{
    while (list) {
        gust__work *next = list->next;
        gust_work_done_fn done = list->done;
        void *data = list->data;
        free(list);
        loop->exec_inflight--;
        if (done)
            done(loop, 0, data);
        list = next;
    }
}

void gust__executor_free(gust_loop *loop)
{
    if (loop->exec) {
        executor_destroy(loop->exec);
        loop->exec = NULL;
    }
}
