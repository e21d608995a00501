/* Internal to the common layer (common.c, log.c) and its one writer, process.c,
 * which sets the task id in a child after fork(). Not installed. */
#ifndef GUST_COMMON_INTERNAL_H
#define GUST_COMMON_INTERNAL_H

/* Records this process's task id (gust_task_id()); called once, in the
 * child, right after fork(). */
void gust__common_set_task_id(int id);

/* gust_task_id() without a call, for the log prefix of every line (the
 * log is in this layer). Written only by gust__common_set_task_id(). */
extern int gust__task_id_value;
static inline int gust__task_id(void)
{
    return gust__task_id_value;
}

#endif /* GUST_COMMON_INTERNAL_H */
