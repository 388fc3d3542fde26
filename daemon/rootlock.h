/* One ckptd per directory tree: BSD locks on each watch root (exclusive) and
 * on every directory above it (shared), held while the root is watched. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct dir_lock;

/* The locks one watch root holds. Zero-initialised means none. */
struct root_lock {
        struct dir_lock **dirs; /* "/" first, the root last */
        size_t n;
        bool held; /* all taken: dirs[n - 1] is the root, exclusive */
};

/* Lock the watch root open at root_fd (O_PATH is fine) whose configured path
 * is `path`: LOCK_EX on it, LOCK_SH on each directory above it. When another
 * process is in the way, logs who (from /proc/locks) at `level` and waits up
 * to wait_sec seconds (-1: without limit, 0: not at all). Returns 0,
 * -EWOULDBLOCK when still locked, -EINTR when SIGTERM or SIGINT is pending,
 * or -errno (logged). */
int root_lock_take(struct root_lock *l, int root_fd, const char *path, int64_t wait_sec, int level);
/* Release what root_lock_take() took; fine on a lock never taken. */
void root_lock_release(struct root_lock *l);
/* Whether l is held on the watch root dev:ino. */
bool root_lock_is_on(const struct root_lock *l, dev_t dev, ino_t ino);
/* Hand the root of `from` (held) to `to` for the same directory named
 * `path` now (a reload; the name may have changed, or a directory above it
 * moved): LOCK_SH on each directory above `path` (not waiting), the root's
 * LOCK_EX passed on, never let go, then what only `from` held above its old
 * name let go. 0; or -EWOULDBLOCK (logged at `level`) or -errno, `from`
 * then as it was. */
int root_lock_move(struct root_lock *to, struct root_lock *from, const char *path, int level);
/* The pid of a process other than us holding a flock on dev:ino (an
 * exclusive one unless want_ex), from /proc/locks, or 0. */
pid_t root_lock_holder(dev_t dev, ino_t ino, bool want_ex);
