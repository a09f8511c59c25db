// Measures the first-touch cost of fresh memory on this machine: maps N MiB of anonymous memory,
// writes one byte per 4 KiB page, unmaps, three rounds. The first round gets pages the kernel
// has never used; later rounds get recycled ones. (docs/BENCHMARKS.md, "What limits each figure".)
// Build: cc -O2 -o page-touch page-touch.c     Usage: page-touch MIB
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s MIB\n", argv[0]);
        return 2;
    }
    size_t bytes = (size_t)atol(argv[1]) << 20;
    for (int round = 0; round < 3; round++) {
        char *memory = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (memory == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        double start = now();
        for (size_t offset = 0; offset < bytes; offset += 4096) memory[offset] = 1;
        double seconds = now() - start;
        printf("round %d: %.2f us per 4 KiB page\n", round, seconds * 1e6 / (double)(bytes / 4096));
        munmap(memory, bytes);
    }
    return 0;
}
