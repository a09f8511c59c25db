// A small load driver for orientation until exar-bench exists: C connections, each keeping P
// Publish lines in flight, for a fixed number of events; prints events/s.
// Build: cc -O2 -o exar-load exar-load.c -lpthread
// Usage: exar-load HOST PORT CONNECTIONS PIPELINE EVENTS_PER_CONNECTION [DATA_BYTES]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    long sent, answered, total;
    char rbuf[65536];
    int rlen;
} conn_t;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: %s HOST PORT CONNECTIONS PIPELINE EVENTS_PER_CONNECTION [DATA_BYTES]\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]), nconn = atoi(argv[3]), pipeline = atoi(argv[4]);
    long per = atol(argv[5]);
    int size = argc > 6 ? atoi(argv[6]) : 100;
    char line[4096];
    int n = snprintf(line, sizeof line, "Publish\tbench\t1700000000000\t");
    memset(line + n, 'x', size);
    line[n + size] = '\n';
    int linelen = n + size + 1;
    char *burst = malloc((size_t)linelen * pipeline);
    for (int i = 0; i < pipeline; i++) memcpy(burst + (size_t)i * linelen, line, linelen);

    int ep = epoll_create1(0);
    conn_t *conns = calloc(nconn, sizeof(conn_t));
    for (int i = 0; i < nconn; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
        inet_pton(AF_INET, host, &a.sin_addr);
        if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) { perror("connect"); return 1; }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char c[64];
        int cl = snprintf(c, sizeof c, "Connect\tbench\n");
        write(fd, c, cl);
        char r[64];
        read(fd, r, sizeof r);  // Connected
        conns[i].fd = fd;
        conns[i].total = per;
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    double start = now();
    for (int i = 0; i < nconn; i++) {
        int k = pipeline < per ? pipeline : (int)per;
        write(conns[i].fd, burst, (size_t)linelen * k);
        conns[i].sent = k;
    }
    long done = 0, target = per * nconn;
    struct epoll_event events[256];
    while (done < target) {
        int m = epoll_wait(ep, events, 256, 5000);
        if (m <= 0) { fprintf(stderr, "timeout, %ld answered\n", done); break; }
        for (int e = 0; e < m; e++) {
            conn_t *c = &conns[events[e].data.u32];
            int r = read(c->fd, c->rbuf + c->rlen, sizeof c->rbuf - c->rlen);
            if (r <= 0) { fprintf(stderr, "closed\n"); return 1; }
            c->rlen += r;
            int lines = 0, last = -1;
            for (int i = 0; i < c->rlen; i++) if (c->rbuf[i] == '\n') { lines++; last = i; }
            if (lines && strncmp(c->rbuf, "Published", 9) != 0) { fprintf(stderr, "bad answer: %.60s\n", c->rbuf); return 1; }
            memmove(c->rbuf, c->rbuf + last + 1, c->rlen - last - 1);
            c->rlen -= last + 1;
            c->answered += lines;
            done += lines;
            long room = c->total - c->sent;
            long want = lines < room ? lines : room;
            if (want > 0) {
                write(c->fd, burst, (size_t)linelen * want);
                c->sent += want;
            }
        }
    }
    double secs = now() - start;
    printf("connections=%d pipeline=%d events=%ld seconds=%.3f events_per_second=%.0f\n", nconn, pipeline, done, secs, done / secs);
    return 0;
}
