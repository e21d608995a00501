/* Multi-process support (Tornado's process module). */
#include <sched.h>
#include <unistd.h>

#include "gust/process.h"

/* The one piece of process-wide state besides the current loop: which child
 * this is. Set once in the child right after fork. */
static int task_id = -1;

int gust_task_id(void)
{
    return task_id;
}

int gust_cpu_count(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
