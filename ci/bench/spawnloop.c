/*
 * spawnloop: the loop driver of ci/bench.sh's per-run cost table.
 *
 *   spawnloop ROUNDS RUNS CMD [ARGS...] [:: CMD [ARGS...]]...
 *
 * Runs every command (given by full path; "::" separates them) RUNS times in
 * each of ROUNDS rounds, posix_spawn + waitpid, timing each run on its own
 * with CLOCK_MONOTONIC. The commands are interleaved run by run, and the order
 * rotates each time, so drift in machine speed (frequency, noisy neighbours)
 * hits every candidate alike. A few untimed warm-up runs of each go first.
 * Any run that does not exit 0 aborts everything with exit 1: a candidate
 * that fails fast must never show up as a fast candidate.
 *
 * Output, one line per fact, for the script to parse (times in ns per run):
 *   round CAND ROUND MEAN MEDIAN
 *   stats CAND MEDIAN MIN P10 P90 MEAN FAULTS
 * FAULTS is the mean count of page faults per run (minor + major, from
 * wait4's rusage: the whole process, wrapper and the job it became).
 * CAND counts from 0 in command-line order.
 */
#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

#define MAXCAND 16
#define WARMUP 20

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Run argv once; return its wall time in ns, or -1 after saying why.
 * Adds its page faults to *faults. */
static long long run_once(char **argv, long long *faults)
{
    pid_t pid;
    long long t0 = now_ns();
    int err = posix_spawn(&pid, argv[0], NULL, NULL, argv, environ);
    if (err != 0) {
        fprintf(stderr, "spawnloop: %s: %s\n", argv[0], strerror(err));
        return -1;
    }
    int status;
    struct rusage ru;
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) {
            perror("spawnloop: wait4");
            return -1;
        }
    }
    long long t1 = now_ns();
    *faults += ru.ru_minflt + ru.ru_majflt;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFEXITED(status))
            fprintf(stderr, "spawnloop: %s ... exited %d\n", argv[0],
                    WEXITSTATUS(status));
        else
            fprintf(stderr, "spawnloop: %s ... died of signal %d\n", argv[0],
                    WTERMSIG(status));
        return -1;
    }
    return t1 - t0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fputs("usage: spawnloop ROUNDS RUNS CMD [ARGS...] [:: CMD [ARGS...]]...\n",
              stderr);
        return 64;
    }
    long rounds = strtol(argv[1], NULL, 10);
    long runs = strtol(argv[2], NULL, 10);
    if (rounds < 1 || runs < 1 || rounds * runs > 10000000L) {
        fputs("spawnloop: ROUNDS and RUNS must be positive\n", stderr);
        return 64;
    }

    /* Split the rest at "::" in place: each candidate is a NULL-ended argv. */
    char **cand[MAXCAND];
    int ncand = 0;
    cand[ncand++] = &argv[3];
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "::") == 0) {
            argv[i] = NULL;
            if (ncand == MAXCAND) {
                fputs("spawnloop: too many commands\n", stderr);
                return 64;
            }
            cand[ncand++] = &argv[i + 1];
        }
    }
    for (int c = 0; c < ncand; c++) {
        if (cand[c][0] == NULL) {
            fputs("spawnloop: empty command\n", stderr);
            return 64;
        }
    }

    long total = rounds * runs;
    long long *samples[MAXCAND];
    for (int c = 0; c < ncand; c++) {
        samples[c] = malloc(sizeof(long long) * (size_t)total);
        if (!samples[c]) {
            perror("spawnloop: malloc");
            return 71;
        }
    }

    long long faults[MAXCAND] = { 0 }, ignored = 0;
    for (int w = 0; w < WARMUP; w++)
        for (int c = 0; c < ncand; c++)
            if (run_once(cand[c], &ignored) < 0)
                return 1;

    long k = 0;
    for (long r = 0; r < rounds; r++) {
        long long sum[MAXCAND] = { 0 };
        for (long i = 0; i < runs; i++, k++) {
            for (int j = 0; j < ncand; j++) {
                int c = (int)((k + j) % ncand);
                long long ns = run_once(cand[c], &faults[c]);
                if (ns < 0)
                    return 1;
                samples[c][k] = ns;
                sum[c] += ns;
            }
        }
        for (int c = 0; c < ncand; c++) {
            long long *s = samples[c] + r * runs;
            qsort(s, (size_t)runs, sizeof *s, cmp_ll);
            printf("round %d %ld %lld %lld\n", c, r, sum[c] / runs, s[runs / 2]);
        }
        fflush(stdout);
    }

    for (int c = 0; c < ncand; c++) {
        long long *s = samples[c], sum = 0;
        for (long i = 0; i < total; i++)
            sum += s[i];
        qsort(s, (size_t)total, sizeof *s, cmp_ll);
        printf("stats %d %lld %lld %lld %lld %lld %.2f\n", c, s[total / 2], s[0],
               s[total / 10], s[total * 9 / 10], sum / total,
               (double)faults[c] / (double)total);
    }
    return 0;
}
