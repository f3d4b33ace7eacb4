/*
 * floor: the least a lock-then-exec wrapper can do, used by ci/bench.sh as
 * the cost floor that withlock is compared against.
 *
 *   floor LOCKFILE COMMAND [ARGS...]
 *
 * open(O_RDWR|O_CREAT|O_NOFOLLOW, 0600), flock(LOCK_EX|LOCK_NB), execvp.
 * The lock descriptor is deliberately NOT close-on-exec: like withlock, the
 * command inherits it and the lock lives as long as the command does.
 * No safety checks, no waiting, no stdio; one line on stderr on failure.
 * Built static with `musl-gcc -static -O2`, like withlock's musl build.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* "floor: WHAT: REASON" on stderr, with write(2): no stdio in the floor. */
static void say(const char *what, const char *reason)
{
    const char *parts[] = { "floor: ", what, ": ", reason, "\n" };
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        if (write(2, parts[i], strlen(parts[i])) < 0)
            return;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        say("usage", "floor LOCKFILE COMMAND [ARGS...]");
        return 64;
    }
    int fd = open(argv[1], O_RDWR | O_CREAT | O_NOFOLLOW, 0600);
    if (fd < 0) {
        say(argv[1], strerror(errno));
        return 73;
    }
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno == EWOULDBLOCK)
            return 75;
        say(argv[1], strerror(errno));
        return 71;
    }
    execvp(argv[2], argv + 2);
    int err = errno;
    say(argv[2], strerror(err));
    return err == ENOENT ? 127 : 126;
}
