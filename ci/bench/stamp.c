/*
 * stamp: print CLOCK_MONOTONIC in nanoseconds on stdout and exit 0.
 * Used by ci/bench.sh to time lock hand-offs (CLOCK_MONOTONIC is one
 * system-wide clock on Linux, so stamps from different processes compare).
 *
 *   stamp [SLEEP_MS]
 *
 * With SLEEP_MS, it first sleeps that long and stamps just before exiting:
 * run under a lock, the stamp marks the moment the holder lets go.
 * Built static so its own start-up is as short as possible.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc > 2) {
        fputs("usage: stamp [SLEEP_MS]\n", stderr);
        return 64;
    }
    if (argc == 2) {
        char *end;
        errno = 0;
        long ms = strtol(argv[1], &end, 10);
        if (errno || *end || end == argv[1] || ms < 0) {
            fputs("stamp: bad SLEEP_MS\n", stderr);
            return 64;
        }
        struct timespec d = { ms / 1000, (ms % 1000) * 1000000L };
        while (nanosleep(&d, &d) != 0 && errno == EINTR)
            ;
    }
    struct timespec t;
    if (clock_gettime(CLOCK_MONOTONIC, &t) != 0) {
        perror("stamp: clock_gettime");
        return 71;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%lld\n",
                     (long long)t.tv_sec * 1000000000LL + t.tv_nsec);
    /* One write(2), so lines appended by many stamps never interleave. */
    if (write(1, buf, (size_t)n) != n)
        return 74;
    return 0;
}
