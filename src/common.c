/* The common layer's process-wide facts: the task id and the CPU count
 * (include/gust/common.h). */
#include <sched.h>
#include <unistd.h>

#include "common_internal.h"
#include "gust/common.h"

/* The one piece of process-wide state besides the current loop: which child
 * this is. Written once in the child right after fork (before any thread
 * is started), read by the log line of every message. */
int gust__task_id_value = -1;

int gust_task_id(void)
{
    return gust__task_id_value;
}

void gust__common_set_task_id(int id)
{
    gust__task_id_value = id;
}

int gust_cpu_count(void)
{
    /* The affinity mask first: under taskset or a container's cpuset the
     * online count overstates what this process can use. */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}
