/* The free-space floor, per filesystem: statvfs, then evictions in the order
 * of lib/floor.c. Shared by the one-shot sweep and the daemon. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "sweep.h"

struct fs_state {
        dev_t dev;
        const char *path;     /* the first watch on it, for messages */
        bool configured;      /* some watch on it sets min_free or headroom */
        uint64_t total_bytes; /* at the last check */
        uint64_t free_bytes;  /* f_bavail * f_frsize */
        int stat_error;       /* -errno: its last statvfs failed (logged), the two above are stale; 0: read */
        uint64_t floor_bytes;
        uint64_t target_bytes;
        uint64_t largest_bytes; /* largest complete checkpoint seen on it */
        bool unmet;             /* the floor could not be met (LOG_CRIT sent) */
        uint64_t short_bytes;
        bool capped;              /* the last pass was stopped by max_delete_per_sweep */
        bool failing;             /* it left victims of a watch whose removals kept failing */
        uint64_t busy_since_usec; /* CLOCK_MONOTONIC; another process's pass, 0: none */
};

struct space {
        struct fs_state *fs;
        size_t n_fs;
        /* How long space_check() waits for another ckptd's floor pass on a
         * filesystem (floorlock.c) before leaving it for next time. */
        int64_t lock_wait_usec;
        bool busy;            /* the last space_check() left a filesystem for next time */
        uint64_t read_errors; /* statvfs failures logged (each new one once) */
};

/* A decided run and its root, lent to the floor. */
struct space_run {
        struct root *root;
        struct run *run;
        /* Ranked at its last decision, which the events since may not have
         * kept current: read again (space_view.refresh) before any of its
         * checkpoints is evicted. */
        bool stale;
        /* read whole when next read again (changed on the disk since its
         * index was: fs_victim_current()), and read so once already */
        bool whole, reread;
        bool left_out; /* could not be read again: nothing of it is evicted now */
        void *owner;   /* the lender's own record of the run */
};

/* The daemon's decided runs on filesystem dev, from its index, in *ret (an
 * array of *ret_n, malloc'd; the runs stay the daemon's: the floor only sets
 * the verdicts of what it evicts). 0 or -ENOMEM. */
typedef int space_runs_fn(void *userdata, dev_t dev, struct space_run **ret, size_t *ret_n);
/* Read stale run sr again (whole when sr->whole) and decide it; 0, or
 * -errno (then it is left out). Its checkpoints move: the floor takes none
 * of its old pointers after. */
typedef int space_refresh_fn(void *userdata, struct space_run *sr);
/* Victim k of sr was kept at its removal (in use, a flock, changed since it
 * was read): its record is to be read again before the run is next decided. */
typedef void space_kept_fn(void *userdata, struct space_run *sr, const struct ckpt *k);

/* The daemon's index lent to the floor. */
struct space_view {
        space_runs_fn *runs;
        space_refresh_fn *refresh;
        space_kept_fn *kept;
        void *userdata;
};

/* Rebuild the filesystem list for these roots (an fd < 0 is skipped); what
 * was learned about a filesystem already known (largest, unmet) is kept.
 * keep_others: the filesystems of none of them stay listed too (roots still
 * being brought up), without a path. */
int space_set_roots(struct space *sp, struct root *const *roots, size_t n, bool keep_others);
void space_finish(struct space *sp);
/* Remember the sizes of the complete checkpoints of a run (for headroom). */
void space_seen(struct space *sp, dev_t dev, const struct run *run);
/* The same, given the size of the largest complete checkpoint of a run. */
void space_seen_largest(struct space *sp, dev_t dev, uint64_t largest_bytes);
/* Check every filesystem and evict where free space is below the floor,
 * among the runs that view gives (NULL: scan and decide the roots).
 * Returns how many filesystems are below the floor afterwards; one whose
 * free space cannot be read is not among them (space_any_unknown()). */
int space_check(struct space *sp, struct root *const *roots, size_t n, struct sweep *s, const struct space_view *view);
/* Fill free, total, floor and target of every filesystem; evict nothing. */
void space_measure(struct space *sp, struct root *const *roots, size_t n);
/* Whether any filesystem has a floor at all. */
bool space_any_configured(const struct space *sp);
/* Whether any filesystem with a floor cannot be measured (its floor is unknown). */
bool space_any_unknown(const struct space *sp);
/* Whether any filesystem is being written to below its floor. */
bool space_any_unmet(const struct space *sp);
