/* One floor pass per filesystem at a time, across the ckptd processes of a
 * host.
 *
 * Root locks (rootlock.c) keep two daemons off one tree, but two daemons on
 * sibling trees of one filesystem (/data/a and /data/b, ckptd@a and ckptd@b)
 * share its free space: both read statvfs below the floor at the same moment
 * and both evict, twice what was needed. So a floor pass (statvfs, decide,
 * evict) runs under LOCK_EX on a file named after the filesystem's device
 * number in the runtime directory, and the next process reads statvfs only
 * once the first is done.
 *
 * The runtime directory is $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=,
 * the first if several), else /run/ckptd for root, else
 * $XDG_RUNTIME_DIR/ckptd: every system instance meets in /run/ckptd, every
 * daemon of one user in that user's. Daemons of different users do not see
 * each other's locks: a lock directory they could all write to would let
 * any user hold the floor of root's daemon forever. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "floorlock.h"
#include "log.h"
#include "macro.h"
#include "rootlock.h"

#define RETRY_USEC (50 * 1000)

static bool unavailable_told;

char *runtime_dir(void)
{
        const char *env = getenv("RUNTIME_DIRECTORY");
        char *dir = NULL;

        if (env && env[0] == '/') {
                /* "RuntimeDirectory=a b" passes "/run/a:/run/b" */
                dir = strndup(env, strcspn(env, ":"));
                if (!dir)
                        return NULL;
                return dir;
        }
        if (geteuid() == 0)
                dir = strdup("/run/ckptd");
        else {
                env = getenv("XDG_RUNTIME_DIR");
                if (!env || env[0] != '/') {
                        errno = ENOENT;
                        return NULL;
                }
                if (asprintf(&dir, "%s/ckptd", env) < 0)
                        return NULL;
        }
        if (!dir)
                return NULL;
        /* 0755 as systemd makes it; the lock files in it are 0600 */
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                int e = errno;
                free(dir);
                errno = e;
                return NULL;
        }
        return dir;
}

static bool stop_pending(void)
{
        sigset_t pending;

        if (sigpending(&pending) < 0)
                return false;
        return sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1;
}

/* Open (creating it) the lock file of filesystem dev; -errno. */
static int lock_open(dev_t dev, char **ret_path)
{
        _cleanup_free_ char *dir = runtime_dir();
        char *path = NULL;
        int fd;

        if (!dir)
                return -errno;
        if (asprintf(&path, "%s/floor-%u-%u.lock", dir, major(dev), minor(dev)) < 0)
                return -ENOMEM;
        fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd < 0) {
                int r = -errno;
                free(path);
                return r;
        }
        *ret_path = path;
        return fd;
}

/* Whether fd is still the file at path: one removed (a runtime directory
 * cleaned) while we waited locks nothing anyone else takes. */
static bool lock_current(int fd, const char *path)
{
        struct stat a, b;

        return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

int floor_lock_take(dev_t dev, const char *fs_path, int64_t wait_usec, pid_t *ret_holder)
{
        uint64_t start = (uint64_t)now_usec(CLOCK_MONOTONIC);

        *ret_holder = 0;
        for (;;) {
                _cleanup_free_ char *path = NULL;
                int fd = lock_open(dev, &path);
                struct stat st;

                if (fd < 0) {
                        /* A read-only /run, a user without XDG_RUNTIME_DIR:
                         * the floor is enforced all the same, and a daemon
                         * on a sibling tree may evict for the same bytes. */
                        if (!unavailable_told)
                                log_warning_errno(fd,
                                                  "cannot create a floor lock file for the filesystem of %s: %m; "
                                                  "enforcing the floor without it (another ckptd on this "
                                                  "filesystem may evict at the same time)",
                                                  fs_path);
                        unavailable_told = true;
                        return FLOOR_LOCK_NONE;
                }
                for (;;) {
                        if (flock(fd, LOCK_EX | LOCK_NB) == 0)
                                break;
                        if (errno == EINTR)
                                continue;
                        if (errno != EWOULDBLOCK) {
                                int r = -errno;

                                safe_close(fd);
                                if (!unavailable_told)
                                        log_warning_errno(r, "cannot lock %s: %m; enforcing the floor without it",
                                                          path);
                                unavailable_told = true;
                                return FLOOR_LOCK_NONE;
                        }
                        if ((uint64_t)now_usec(CLOCK_MONOTONIC) - start >= (uint64_t)wait_usec || stop_pending()) {
                                if (fstat(fd, &st) == 0)
                                        *ret_holder = root_lock_holder(st.st_dev, st.st_ino, true);
                                safe_close(fd);
                                return -EWOULDBLOCK;
                        }
                        (void)nanosleep(&(struct timespec){.tv_nsec = RETRY_USEC * NSEC_PER_USEC}, NULL);
                }
                if (lock_current(fd, path)) {
                        unavailable_told = false;
                        return fd;
                }
                safe_close(fd);
        }
}

void floor_lock_release(int fd)
{
        /* closing the only fd of the open file description drops the lock */
        if (fd >= 0)
                safe_close(fd);
}
