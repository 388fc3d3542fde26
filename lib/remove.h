/* Safe deletion: beneath the root, no symlinks, no mount crossings,
 * (dev, ino) re-checked, directories via a tombstone rename. */
#pragma once

#include <stdbool.h>

#include "ckpt.h"

#define TOMBSTONE_PREFIX ".ckptd-trash-"

/* Remove checkpoint c from the run at run_fd. Every member is re-opened with
 * openat_beneath and must still be the (dev, ino) the scan saw (members other
 * than members[0] are checked to be on c->dev). Directories are renamed to a
 * tombstone first, then removed iteratively. Returns 0, -ESTALE when a member
 * changed identity, or -errno. *ret_freed gets the bytes released. */
int remove_ckpt(int run_fd, const struct ckpt *c, uint64_t *ret_freed);
/* Finish every tombstone left in the run at run_fd. Returns how many. */
int remove_tombstones(int run_fd);
/* Remove the directory tree `name` below dir_fd without recursion and without
 * following symlinks or crossing mounts. */
int remove_tree_at(int dir_fd, const char *name);

/* Test seam: when set, called with stage "before" (before a checkpoint's
 * members are re-opened and checked) and "tombstoned" (after a directory was
 * renamed to its tombstone). The daemon sets it only from CKPTD_TEST_HOOK. */
extern void (*remove_test_hook)(const char *stage, const char *name);
