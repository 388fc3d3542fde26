/* Safe deletion: beneath the root, no symlinks, no mount crossings,
 * (dev, ino) re-checked, checkpoints renamed to recorded tombstones first. */
#pragma once

#include <stdbool.h>

#include "ckpt.h"

#define TOMBSTONE_PREFIX ".ckptd-trash-"

/* Where and for whom a removal records its tombstones (tombrec.h). */
struct remove_ctx {
        int records_fd;              /* tombrec_open(); -1: removals go unrecorded */
        const char *root;            /* the watch root as configured */
        uint64_t root_dev, root_ino; /* its directory; 0:0 unknown */
        const char *run;             /* the run, relative to the root ("." for the root) */
        int record_error;            /* set to -errno when a record could not be written */
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
/* Remove the plain-file checkpoint c (one regular file, !c->is_dir) from
 * run_fd, checked and without a tombstone or record: open beneath the run,
 * still the (dev, ino) the scan saw, a write lease taken (no other process
 * has it open) and held through the unlinkat(2). A lease granted also
 * says that no other process holds a flock(2) on it: a flock is held
 * through an open file description, which the lease would conflict with.
 * Without leases (NFS, no CAP_LEASE) unleased(userdata), when not NULL,
 * is asked what else keeps it (its flock pin): anything but VERIFY_FREE is
 * returned as is; and its size must still be the scan's. With or without,
 * its mtime must be (written since, it is not what was decided). With
 * need_room (the floor's victim), a file with another link, whose removal
 * frees nothing, is kept: VERIFY_LINKED. Returns 0 when removed
 * (*ret_freed: bytes released), VERIFY_IN_USE or VERIFY_CHANGED (verify.h)
 * when kept, VERIFY_UNCHECKED_BASE + errno when
 * kept because the check itself failed (opening it, its inode, the lease),
 * -ESTALE when it is no longer that file, or -errno when the unlinkat(2)
 * failed. */
int remove_file_checked(int run_fd, const struct ckpt *c, bool need_room, int (*unleased)(void *userdata),
                        void *userdata, uint64_t *ret_freed);
/* remove_ckpt() in steps, so that a daemon removing a huge tree keeps
 * serving its other events. remove_ckpt_begin() does everything up to the
 * renames (the checkpoint's names are gone when it returns 0, its removal
 * recorded); each remove_job_step() then removes about `budget` entries and
 * returns 1 while some are left, 0 when the removal is done and its record
 * deleted, or -errno when it ended with something left in place (recorded:
 * start-up tries again). The job uses run_fd until freed, unless
 * remove_job_detach() gave it a copy of its own. remove_job_free() may be
 * called at any point: what is left stays recorded for start-up. */
struct remove_job;
int remove_ckpt_begin(struct remove_ctx *ctx, int run_fd, const struct ckpt *c, struct remove_job **ret);
int remove_job_step(struct remove_job *j, size_t budget);
int remove_job_detach(struct remove_job *j);
/* Bytes freed so far, and the scanned size not freed yet (0 once done). */
uint64_t remove_job_freed(const struct remove_job *j);
uint64_t remove_job_remaining(const struct remove_job *j);
/* The job has a record on disk (an interrupted one is finished at start). */
bool remove_job_recorded(const struct remove_job *j);
/* The tombstone of a job of one member (a directory checkpoint: what is
 * left of it when its removal fails), else NULL. */
const char *remove_job_tombstone(const struct remove_job *j);
struct remove_job *remove_job_free(struct remove_job *j);
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
