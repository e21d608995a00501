/* The loop's batched socket I/O on io_uring (see loop_internal.h, "Batched
 * socket I/O"): the reads of a turn's readable fds in one io_uring_enter
 * before the handlers run, the sends they queued in one after.
 *
 * Every operation carries MSG_DONTWAIT, so the kernel completes it during
 * the submitting call (data, EOF, an error or EAGAIN) and never parks it:
 * a batch is a synchronous call that does many system calls' work, and no
 * buffer is ever in the kernel's hands once it returns.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "gust/log.h"
#include "loop_core_internal.h"

#ifdef GUST_HAVE_URING
#include <liburing.h>

enum {
    ENTRIES = 256,   /* operations per io_uring_enter */
    IOV_PER_SEND = 8,
    /* Reads land in the loop's slab, one slot each, and are copied into
     * the stream from there: a stream's own buffer (64 KiB) for every
     * ready fd at once would be megabytes touched per turn. */
    READ_SLOT = 8192,
    /* Deferred sends' bytes: bump-allocated in chunks kept from turn to
     * turn, instead of one malloc'd copy per send. */
    TURN_CHUNK = 64 * 1024,
    TURN_MAX_ALLOC = 16 * 1024,
};

typedef struct batch_item {
    void *data;
    const gust__io_ops *ops;
    int fd;
} batch_item;

struct gust__batch {
    struct io_uring ring;
    /* Reads made this turn, for read_finish after the dispatch. */
    batch_item *reads;
    size_t nreads, reads_cap;
    /* Sends queued this turn. */
    batch_item *writes;
    size_t nwrites, writes_cap;
    /* Scratch for one chunk of sends. */
    batch_item cur[ENTRIES];
    struct msghdr msgs[ENTRIES];
    struct iovec iovs[ENTRIES][IOV_PER_SEND];
    ssize_t res[ENTRIES];
    bool sent[ENTRIES];
    bool broken; /* a wait failed: batches are off from now on */
    char *slab;  /* ENTRIES * READ_SLOT, made on the first batched read */
    /* Turn memory: chunks[0, nchunks), filled up to used in chunks[cur]. */
    char **chunks;
    size_t nchunks, chunk, used;
    int flushing; /* nesting of gust__loop_flush_writes */
};

void gust__batch_start(gust_loop *loop)
{
    const char *env = getenv("GUST_IO_URING");
    if (env && strcmp(env, "0") == 0)
        return;
    gust__batch *b = calloc(1, sizeof *b);
    if (!b)
        return;
    struct io_uring_params p = {0};
    p.flags = IORING_SETUP_COOP_TASKRUN;
    int rc = io_uring_queue_init_params(ENTRIES, &b->ring, &p);
    if (rc == -EINVAL) { /* a kernel older than 5.19 */
        memset(&p, 0, sizeof p);
        rc = io_uring_queue_init_params(ENTRIES, &b->ring, &p);
    }
    if (rc < 0) {
        /* No io_uring (old kernel, seccomp, io_uring_disabled): plain
         * system calls, as everywhere else. */
        gust_log_debug("loop", "io_uring unavailable (%s): no batched I/O",
                       strerror(-rc));
        free(b);
        return;
    }
    loop->batch = b;
}

void gust__batch_free(gust_loop *loop)
{
    gust__batch *b = loop->batch;
    if (!b)
        return;
    io_uring_queue_exit(&b->ring);
    for (size_t i = 0; i < b->nchunks; i++)
        free(b->chunks[i]);
    free(b->chunks);
    free(b->slab);
    free(b->reads);
    free(b->writes);
    free(b);
    loop->batch = NULL;
}

/* Room for one more item after n. */
static bool reserve(batch_item **items, size_t n, size_t *cap)
{
    if (n < *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 64;
    batch_item *p = realloc(*items, nc * sizeof *p);
    if (!p)
        return false;
    *items = p;
    *cap = nc;
    return true;
}

/* Submits what is queued and collects `want` completions, each handed to
 * fn(b, user_data, res). */
static void run(gust__batch *b, unsigned want,
                void (*fn)(gust__batch *b, size_t idx, ssize_t res))
{
    unsigned got = 0;
    int rc = io_uring_submit_and_wait(&b->ring, want);
    while (got < want) {
        if (rc < 0 && rc != -EINTR && rc != -EAGAIN && rc != -ETIME) {
            /* Cannot happen with MSG_DONTWAIT operations; if it does, the
             * buffers may still be the kernel's: stop batching for good
             * rather than reuse them. */
            gust_log_error("loop", "io_uring wait failed: %s; batched I/O "
                           "off", strerror(-rc));
            b->broken = true;
            return;
        }
        struct io_uring_cqe *cqe;
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&b->ring, head, cqe) {
            fn(b, (size_t)io_uring_cqe_get_data64(cqe), cqe->res);
            seen++;
        }
        io_uring_cq_advance(&b->ring, seen);
        got += seen;
        if (got < want)
            rc = io_uring_wait_cqe_nr(&b->ring, &cqe, want - got);
    }
}

/* ---- Reads --------------------------------------------------------------- */

static void read_result(gust__batch *b, size_t idx, ssize_t res)
{
    b->reads[idx].ops->read_done(b->reads[idx].data,
                                 b->slab + (idx % ENTRIES) * READ_SLOT, res);
}

void gust__batch_reads(gust_loop *loop, int n)
{
    gust__batch *b = loop->batch;
    if (!b || b->broken)
        return;
    if (!b->slab && !(b->slab = malloc((size_t)ENTRIES * READ_SLOT)))
        return;
    unsigned queued = 0;
    for (int i = 0; i < n; i++) {
        const gust__ready *r = &loop->ready[i];
        if (r->fd >= loop->fds_cap || !(r->events & GUST_READ))
            continue;
        gust__fd_slot *slot = &loop->fds[r->fd];
        if (!slot->used || slot->gen != r->gen || !slot->io ||
            !(slot->events & GUST_READ))
            continue;
        if (!reserve(&b->reads, b->nreads, &b->reads_cap))
            break; /* out of memory: the rest read one by one */
        size_t len;
        const gust__io_ops *io = loop->io_ops;
        if (!io->read_target(slot->data, &len))
            continue;
        /* Slots are reused by the next chunk of ENTRIES reads, whose
         * results are only reported after this chunk's are. */
        if (queued == ENTRIES) {
            run(b, queued, read_result);
            queued = 0;
            if (b->broken) {
                io->read_done(slot->data, NULL, -EAGAIN);
                b->reads[b->nreads++] = (batch_item){slot->data, io, r->fd};
                return;
            }
        }
        struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
        char *buf = b->slab + (b->nreads % ENTRIES) * READ_SLOT;
        io_uring_prep_recv(sqe, r->fd, buf, len < READ_SLOT ? len : READ_SLOT,
                           MSG_DONTWAIT);
        io_uring_sqe_set_data64(sqe, b->nreads);
        b->reads[b->nreads++] = (batch_item){slot->data, io, r->fd};
        queued++;
    }
    if (queued)
        run(b, queued, read_result);
}

void gust__batch_reads_done(gust_loop *loop)
{
    gust__batch *b = loop->batch;
    if (!b)
        return;
    /* read_finish may free the stream: the list is ours alone here. */
    for (size_t i = 0; i < b->nreads; i++)
        b->reads[i].ops->read_finish(b->reads[i].data);
    b->nreads = 0;
}

/* ---- Sends --------------------------------------------------------------- */

bool gust__loop_defer_write(gust_loop *loop, int fd, void *data,
                            const gust__io_ops *ops)
{
    gust__batch *b = loop->batch;
    if (!loop->batching || !b || b->broken)
        return false;
    if (!reserve(&b->writes, b->nwrites, &b->writes_cap))
        return false;
    b->writes[b->nwrites++] = (batch_item){data, ops, fd};
    return true;
}

static void send_result(gust__batch *b, size_t idx, ssize_t res)
{
    b->res[idx] = res;
}

void *gust__loop_turn_alloc(gust_loop *loop, size_t n)
{
    gust__batch *b = loop->batch;
    if (!loop->batching || !b || b->broken || n > TURN_MAX_ALLOC)
        return NULL;
    n = (n + 15) & ~(size_t)15;
    if (b->nchunks == 0 || b->used + n > TURN_CHUNK) {
        if (b->nchunks > 0 && b->chunk + 1 < b->nchunks) {
            b->chunk++;
        } else {
            char **c = realloc(b->chunks, (b->nchunks + 1) * sizeof *c);
            if (!c)
                return NULL;
            b->chunks = c;
            if (!(c[b->nchunks] = malloc(TURN_CHUNK)))
                return NULL;
            b->chunk = b->nchunks++;
        }
        b->used = 0;
    }
    void *p = b->chunks[b->chunk] + b->used;
    b->used += n;
    return p;
}

void gust__loop_flush_writes(gust_loop *loop)
{
    gust__batch *b = loop->batch;
    if (!b || b->flushing)
        return;
    b->flushing++;
    /* write_done may queue more (a write callback writing): go on until
     * nothing is left. */
    while (b->nwrites > 0) {
        size_t n = b->nwrites < ENTRIES ? b->nwrites : ENTRIES;
        memcpy(b->cur, b->writes, n * sizeof *b->cur);
        memmove(b->writes, b->writes + n, (b->nwrites - n) * sizeof *b->writes);
        b->nwrites -= n;
        unsigned queued = 0;
        for (size_t j = 0; j < n; j++) {
            batch_item *it = &b->cur[j];
            int cnt = b->broken ? 0
                                : it->ops->write_gather(it->data, b->iovs[j],
                                                        IOV_PER_SEND);
            b->sent[j] = cnt > 0;
            if (cnt <= 0)
                continue;
            b->msgs[j] = (struct msghdr){.msg_iov = b->iovs[j],
                                         .msg_iovlen = (size_t)cnt};
            /* n <= ENTRIES and the ring is empty between batches. */
            struct io_uring_sqe *sqe = io_uring_get_sqe(&b->ring);
            io_uring_prep_sendmsg(sqe, it->fd, &b->msgs[j],
                                  MSG_NOSIGNAL | MSG_DONTWAIT);
            io_uring_sqe_set_data64(sqe, j);
            queued++;
        }
        if (queued)
            run(b, queued, send_result);
        for (size_t j = 0; j < n; j++) {
            batch_item *it = &b->cur[j];
            /* 0: not sent here (the stream writes itself). */
            it->ops->write_done(it->data, b->sent[j] && !b->broken ? b->res[j] : 0);
        }
    }
    /* Every deferred send is done and has moved what it did not send out
     * of the turn memory (write_done): it can be reused. */
    b->chunk = b->used = 0;
    b->flushing--;
}

#else /* !GUST_HAVE_URING */

void gust__batch_start(gust_loop *loop)
{
    (void)loop;
}

void gust__batch_free(gust_loop *loop)
{
    (void)loop;
}

void gust__batch_reads(gust_loop *loop, int n)
{
    (void)loop, (void)n;
}

void gust__batch_reads_done(gust_loop *loop)
{
    (void)loop;
}

bool gust__loop_defer_write(gust_loop *loop, int fd, void *data,
                            const gust__io_ops *ops)
{
    (void)loop, (void)fd, (void)data, (void)ops;
    return false;
}

void gust__loop_flush_writes(gust_loop *loop)
{
    (void)loop;
}

void *gust__loop_turn_alloc(gust_loop *loop, size_t n)
{
    (void)loop, (void)n;
    return NULL;
}

#endif

void gust__loop_set_io_ops(gust_loop *loop, int fd, const gust__io_ops *ops)
{
    /* One set of hooks per loop (only streams use them). */
    if (loop->io_ops && loop->io_ops != ops)
        return;
    if (fd >= 0 && fd < loop->fds_cap && loop->fds[fd].used) {
        loop->io_ops = ops;
        loop->fds[fd].io = 1;
    }
}
