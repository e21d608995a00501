/* What the two HTTP floors (http_floor.c on epoll, http_floor_uring.c on
 * io_uring) share, so that they differ only in how they make their system
 * calls: the canned answer, the command line and listening socket, the
 * stop signals. Header-only: each peer is one program and links nothing
 * of Gust. */
#ifndef GUST_BENCH_HTTP_FLOOR_H
#define GUST_BENCH_HTTP_FLOOR_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

/* The size of Gust's hello_http answer, with a Date that changes each
 * second (patched in by floor_update_date). */
static char floor_response[] = "HTTP/1.1 200 OK\r\n"
                               "Date: Thu, 01 Jan 1970 00:00:00 GMT\r\n"
                               "Server: Gust/0.1.0\r\n"
                               "Content-Type: text/plain\r\n"
                               "Content-Length: 12\r\n"
                               "\r\n"
                               "Hello, world";
enum { FLOOR_DATE_AT = 23, FLOOR_DATE_LEN = 29 };

static volatile sig_atomic_t floor_stopping;

static void floor_on_signal(int sig)
{
    (void)sig;
    floor_stopping = 1;
}

static void floor_update_date(void)
{
    static time_t sec = -1;
    time_t now = time(NULL);
    if (now == sec)
        return;
    sec = now;
    struct tm tm;
    gmtime_r(&now, &tm);
    char d[FLOOR_DATE_LEN + 1];
    strftime(d, sizeof d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    memcpy(floor_response + FLOOR_DATE_AT, d, FLOOR_DATE_LEN);
}

/* Answers every complete head in in[0, *in_len) by appending the canned
 * answer to out[0, *out_len), then keeps only the unfinished head in in.
 * Returns -1 when out would pass out_cap. */
static int floor_answer(char *in, size_t *in_len, char *out, size_t *out_len,
                        size_t out_cap)
{
    char *p = in, *end = in + *in_len, *e;
    while ((e = memmem(p, (size_t)(end - p), "\r\n\r\n", 4))) {
        if (*out_len + sizeof floor_response - 1 > out_cap)
            return -1; /* a client that never reads: not our case */
        memcpy(out + *out_len, floor_response, sizeof floor_response - 1);
        *out_len += sizeof floor_response - 1;
        p = e + 4;
    }
    *in_len = (size_t)(end - p);
    memmove(in, p, *in_len);
    return 0;
}

/* Parses --port=N [--address=A] (IPv4, default 127.0.0.1), listens with
 * sock_flags (SOCK_NONBLOCK, SOCK_CLOEXEC) and installs the stop signals.
 * Returns the socket, or -2 (bad command line) / -1 (cannot listen) after
 * saying why: main returns 2 or 1. */
static int floor_listen(int argc, char **argv, int sock_flags)
{
    int port = 0;
    const char *address = "127.0.0.1";
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--port=", 7) == 0)
            port = atoi(argv[i] + 7);
        else if (strncmp(argv[i], "--address=", 10) == 0)
            address = argv[i] + 10;
        else
            port = -1;
    }
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (port <= 0 || port > 65535 || inet_pton(AF_INET, address, &a.sin_addr) != 1) {
        fprintf(stderr, "usage: %s --port=N [--address=IPv4]\n", argv[0]);
        return -2;
    }
    int one = 1;
    int ls = socket(AF_INET, SOCK_STREAM | sock_flags, 0);
    if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0) {
        perror(argv[0]);
        return -1;
    }
    struct sigaction sa = {.sa_handler = floor_on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    return ls;
}

#endif
