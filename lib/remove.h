/* Safe deletion: beneath the root, no symlinks, no mount crossings,
 * (dev, ino) re-checked, checkpoints renamed to recorded tombstones first. */
#pragma once

#include <stdbool.h>

#include "ckpt.h"

#define TOMBSTONE_PREFIX ".ckptd-trash-"

/* Where and for whom a removal records its tombstones (tombrec.h). */
struct remove_ctx {
        int records_fd;   /* tombrec_open(); -1: removals go unrecorded */
        const char *root; /* the watch root as configured */
        const char *run;  /* the run, relative to the root ("." for the root) */
        int record_error; /* set to -errno when a record could not be written */
        /* Called every few thousand entries a tree removal deletes (to pet
         * a watchdog); may be NULL. */
        void (*progress)(void *userdata);
        void *userdata;
};

/* Remove checkpoint c from the run at run_fd. Every member is re-opened with
 * openat_beneath and must still be the (dev, ino) the scan saw (members other
 * than members[0] are checked to be on c->dev). The removal is recorded in
 * ctx (may be NULL: unrecorded), every member renamed to a tombstone (the
 * ".index"-like member of a group first), then removed, directories
 * iteratively. Returns 0, -ESTALE when a member changed identity, or -errno.
 * *ret_freed gets the bytes released. */
int remove_ckpt(struct remove_ctx *ctx, int run_fd, const struct ckpt *c, uint64_t *ret_freed);
/* Finish the removals recorded for root ctx->root, reached below root_fd:
 * only tombstones whose (dev, ino) still match their record, and the
 * not-yet-renamed members of a group whose removal had begun. Returns how
 * many removals were finished, or the first -errno. */
int remove_tombstones(struct remove_ctx *ctx, int root_fd);
/* Remove the directory tree `name` below dir_fd without recursion and without
 * following symlinks or crossing mounts. */
int remove_tree_at(int dir_fd, const char *name);

/* Test seam: when set, called with stage "before" (before a checkpoint's
 * members are re-opened and checked), "renamed" (after each member was
 * renamed to its tombstone) and "tombstoned" (after a directory was renamed
 * to its tombstone). The daemon sets it only from CKPTD_TEST_HOOK. */
extern void (*remove_test_hook)(const char *stage, const char *name);
