/* Internal to the common layer (common.c) and its one writer, process.c,
 * which sets the task id in a child after fork(). Not installed. */
#ifndef GUST_COMMON_INTERNAL_H
#define GUST_COMMON_INTERNAL_H

/* Records this process's task id (gust_task_id()); called once, in the
 * child, right after fork(). */
void gust__common_set_task_id(int id);

#endif /* GUST_COMMON_INTERNAL_H */
