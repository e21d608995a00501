/* CPU time for the load generators in bench/peers/ (echo_load, http_load):
 * how much a run cost the server and the generator itself. Header-only, so
 * each peer stays one program that links nothing of Gust. */
#ifndef GUST_BENCH_CPU_TIME_H
#define GUST_BENCH_CPU_TIME_H

#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* utime + stime of pid in seconds, or -1. Fields 14 and 15 of
 * /proc/PID/stat; the command name (field 2) may hold spaces, so the scan
 * starts after its closing parenthesis. */
static double proc_cpu_seconds(long pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long utime, stime;
    /* After ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt
     * majflt cmajflt utime(14) stime(15). */
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u"
                            " %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* This process's CPU time, all threads (io_uring's workers are threads of
 * the process, so whatever they do counts too). */
static double self_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

#endif
