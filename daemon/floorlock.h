/* One floor pass per filesystem at a time across the ckptd processes of a
 * host: LOCK_EX on a file per filesystem in the runtime directory. */
#pragma once

#include <stdint.h>
#include <sys/types.h>

/* floor_lock_take(): no lock file could be had; enforce without it. */
#define FLOOR_LOCK_NONE (-1)

/* Lock the floor of filesystem dev (fs_path names it in messages), waiting
 * up to wait_usec (0: not at all; a pending SIGTERM or SIGINT ends the wait).
 * Returns an fd to pass to floor_lock_release(), FLOOR_LOCK_NONE when there
 * is no lock to take (logged once), or -EWOULDBLOCK when another process
 * holds it (*ret_holder: its pid when /proc/locks tells, else 0). */
int floor_lock_take(dev_t dev, const char *fs_path, int64_t wait_usec, pid_t *ret_holder);
void floor_lock_release(int fd);

/* The runtime directory (lock files, the daemon's state file), created if
 * missing: $RUNTIME_DIRECTORY, else /run/ckptd for root, else
 * $XDG_RUNTIME_DIR/ckptd. malloc'd; NULL if there is none (errno set). */
char *runtime_dir(void);
