/* Retention for one watch root: scan, decide, delete. Shared by the one-shot
 * command and the daemon. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "pattern.h"
#include "scan.h"
#include "verify.h"

/* A watch root, opened once (O_PATH|O_DIRECTORY|O_NOFOLLOW). */
struct root {
        const struct watch_conf *w;
        struct pattern *pat;
        int fd;
        dev_t dev;
        ino_t ino;
        /* of fd (statx(2) STATX_MNT_ID, 0 when unknown): a run opened
         * beneath it (openat_beneath(), no mount crossed) is on it too */
        uint64_t mnt_id;
        unsigned fail_sweep; /* the sweep (struct sweep.id) fail_left counts for */
        int fail_left;       /* failed removals left to try in it (max_delete_per_sweep) */
};

/* Counters and limits of one sweep (one pass over some runs). */
struct sweep {
        bool dry_run;
        int64_t now_usec;    /* CLOCK_REALTIME */
        uint64_t start_usec; /* CLOCK_MONOTONIC, when it began (what it read is as old) */
        int budget;          /* deletions left (max_delete_per_sweep) */
        bool capped;         /* the budget ran out */
        unsigned id;         /* tells sweeps apart for each root's bound of failed removals */
        int fail_max;        /* failed removals to try per watch (max_delete_per_sweep) */
        bool stopped;        /* SIGTERM/SIGINT arrived: no further deletion */
        /* a watch directory found no longer at its path during the pass
         * (run_in_place()): nothing more is removed in it */
        const struct root *moved;
        unsigned deleted; /* or would-be deleted in a dry run */
        unsigned failed;  /* removals that failed for a reason other than a race */
        /* of those, the ones begun (the name gone, part of it removed): no
         * checkpoint any more, nor kept; their bytes freed are in freed_bytes */
        unsigned unfinished;
        uint64_t unfinished_size_bytes; /* their sizes as scanned */
        uint64_t freed_bytes;
        uint64_t deleted_size_bytes; /* sizes of the deleted as scanned: what a dry run would free */
        uint64_t freed_by_reason[_DELETE_REASON_MAX];
        unsigned deleted_by_reason[_DELETE_REASON_MAX];
        unsigned runs_unreadable;  /* runs kept whole after a failed read */
        unsigned ckpts_unreadable; /* checkpoints kept after a failed read of their own */
        /* victims kept at their removal: another link holds their blocks */
        unsigned kept_linked;
        /* victims kept as changed since they were read (or holding a mount
         * point): the daemon reads them again soon */
        unsigned kept_changed;
};

/* Compile the pattern (the root stays closed); say so when the path is on a
 * read-only filesystem. Logs and returns -errno. */
int root_prepare(struct root *r, const struct watch_conf *w);
/* Open r->w->path as the root (fd, dev, ino); -errno, nothing logged. */
int root_open_fd(struct root *r);
/* root_prepare(), then open the root. Logs and returns -errno. */
int root_init(struct root *r, const struct watch_conf *w);
void root_finish(struct root *r);

/* Every watch of a config, opened for one pass (-1, -l). */
struct roots {
        struct root *v; /* one per watch */
        size_t n;
        struct root **open; /* the ones that opened */
        size_t n_open;
};

/* Open every watch of c (logging the ones that fail); returns how many
 * failed, or -ENOMEM. roots_close() in any case. */
int roots_open(struct roots *rs, const struct config *c);
void roots_close(struct roots *rs);

void sweep_init(struct sweep *s, const struct config *c, bool dry_run);
/* SIGTERM and SIGINT are blocked from now on (the daemon's event loop takes
 * them): a sweep looks for one pending before each deletion, and stops. */
void sweep_stop_signals_blocked(bool blocked);
/* Failed removals left to try in r during sweep s: each watch has its own
 * bound in every sweep (the floor's too), so one whose files cannot be
 * removed is not tried whole at every sweep, nor keeps the others from
 * theirs. */
int sweep_fail_left(const struct sweep *s, struct root *r);

/* Finish the removals of the root that were recorded and interrupted
 * (start-up, -1, reload). Returns how many, logged. */
int sweep_tombstones(struct root *r);
/* Scan the whole root (logs errors). */
int sweep_scan_root(struct root *r, int64_t now_usec, struct run **ret_runs, size_t *ret_n);
/* Scan one run, path relative to the root; a run that cannot be opened (but
 * is there) comes back empty with its read_error. -ENOENT and co. when gone. */
int sweep_scan_run(struct root *r, const char *run_path, int64_t now_usec, struct run *ret);
/* Scan the whole root and decide every run (no deletion). */
int sweep_decide_root(struct root *r, int64_t now_usec, struct run **ret_runs, size_t *ret_n);
/* Add run's read errors to the sweep's counts. */
void sweep_count_read_errors(struct sweep *s, const struct run *run);
/* Log every read error of run and what it keeps (a warning each); returns
 * how many were logged. */
unsigned sweep_log_read_errors(const struct root *r, const struct run *run);
/* What run's read errors are, as a malloc'd string ("" for none): the
 * daemon logs again only when it changes. NULL on ENOMEM. */
char *sweep_read_errors_key(const struct run *run);
/* "; kept N checkpoints of M runs whole after read errors" or "", for the
 * summary of a sweep; malloc'd, NULL on ENOMEM. */
char *sweep_read_errors_summary(const struct sweep *s);
/* A run kept whole because no checkpoint carries the monitor: a warning
 * naming the fields seen and the likely typo. With last (the daemon), only
 * when it differs from *last, which keeps what was said (NULL once the
 * monitor is carried again); without, every time (-1). Returns whether the
 * run is kept so. */
bool sweep_note_monitor(const struct root *r, const struct run *run, char **last);

/* Say, once for each, the devices on which leases were refused since the
 * last call (verify_lease_fallback()): there a checkpoint in use is told
 * only by its size and mtime. Named by r's watch path when r is on that
 * device (the refusal may be another watch's on it), else by number. */
void sweep_say_lease_refusals(const struct root *r);

/* The monitor's value of c as its name wrote it ("0.900"), else in the
 * shortest form; NULL when c has none. */
const char *sweep_metric_text(const struct root *r, const struct ckpt *c, char *buf, size_t len);

/* The full path of c (root/run/name), for CKPTD_PATH and messages; malloc'd,
 * NULL on ENOMEM. */
char *sweep_ckpt_path(const struct root *r, const struct run *run, const struct ckpt *c);

/* Whether checkpoint c of run (its one file, any file of a group, any file
 * below a directory, verify_tree_writer()) is open for writing (readers do
 * not count): VERIFY_FREE, VERIFY_IN_USE, VERIFY_CHANGED (no leases: its
 * mtime is newer than newest_usec), -ESTALE or -errno. */
int sweep_being_written(struct root *r, const struct run *run, const struct ckpt *c, int run_fd, int64_t newest_usec);
/* Whether each file of file checkpoint c is free of writers by a read
 * lease granted now, and has no other link (verify_file_alone()):
 * VERIFY_FREE, else not. */
int sweep_free_alone(struct root *r, const struct run *run, const struct ckpt *c, int run_fd);

struct flock_table;
/* Whether file checkpoint c of run (its one file, or each file of a group,
 * the first as scanned) is open in another process, checked beneath the
 * run at run_fd (-1: opened here from r): VERIFY_FREE, VERIFY_IN_USE,
 * VERIFY_FLOCK (a file in locks, which may be NULL), VERIFY_CHANGED (no
 * leases, modified since the scan), -ESTALE when the run or a file is no
 * longer what was scanned, or -errno. -EINVAL for a directory checkpoint
 * (verify_tree()). */
int sweep_verify_files(struct root *r, const struct run *run, const struct ckpt *c, int run_fd,
                       const struct flock_table *locks);

/* Whether the verdicts of run delete something. */
bool sweep_run_deletes(const struct run *run);

/* What the daemon knows of a run's placed checkpoints beyond its records
 * (struct pending): asked(c) says c was found free of writers in this very
 * decision, so it is not asked again; taken(c) notes one taken as being
 * written. Either may be NULL. */
struct placed_ask {
        bool (*asked)(const struct ckpt *c, void *userdata);
        void (*taken)(const struct ckpt *c, void *userdata);
        void *userdata;
        bool quiet;     /* taken without a line: the pass before said it */
        bool dirs_only; /* only directory checkpoints: no event tells of writes inside a complete one */
};

/* After a scan of the whole run and its decision by p: when the decision
 * deletes something, a complete file checkpoint kept for its place (best,
 * last, newest-written) that is open for writing in another process, or no
 * longer the file scanned, is taken as a save still being written
 * (complete = false, logged, told to ask->taken) and run is decided again.
 * ask may be NULL; run_fd: the run open beneath r, or -1 to open it here.
 * Out of memory it keeps rather than deletes. Returns whether one was
 * taken. */
bool sweep_placed_being_written(struct root *r, struct run *run, const struct policy *p, int64_t now_usec, int run_fd,
                                const struct placed_ask *ask);

/* Delete what the verdicts of run say (or log would-delete). */
int sweep_apply(struct sweep *s, struct root *r, const struct run *run);
/* The same for run->ckpts[from..to) only, when every other one is kept;
 * run_fd is the run open beneath the root, or -1 to open it at the first
 * deletion. */
int sweep_apply_range(struct sweep *s, struct root *r, const struct run *run, size_t from, size_t to, int run_fd);
/* The flock holders for one batch of victims: /proc/locks read once, at the
 * first victim. Zero-initialised; victim_locks_finish() after the batch. */
struct victim_locks {
        bool loaded;
        bool probe; /* no /proc: probe each victim with flock(2) instead */
        int error;  /* /proc/locks could not be read: keep every victim */
        struct flock_table t;
};
void victim_locks_finish(struct victim_locks *l);

/* Whether the deletion cap (max_delete_per_sweep) leaves no room for one
 * more; the first time, it is logged and s->capped set. */
bool sweep_capped(struct sweep *s);
/* Remove (or in a dry run, log) one checkpoint with the given reason, one
 * of the batch of locks; its run open at run_fd, or -1 to open it here.
 * 0 (removed, kept by its checks, or counted as failed), -errno, or 1 when
 * its run or watch directory is no longer at its path (said): nothing more
 * is to be removed in the run in this pass. */
int sweep_remove(struct sweep *s, struct root *r, const struct run *run, const struct ckpt *c,
                 enum delete_reason reason, int run_fd, struct victim_locks *locks);

/* From now on, a removal that does not end within its first steps goes on
 * from event loop e, a few entries per turn (the daemon; ckptd -1 removes
 * synchronously). */
int sweep_defer_removals(sd_event *e);
/* Bytes that removals under way on filesystem dev have yet to free. */
uint64_t sweep_pending_bytes(dev_t dev);
/* At exit: recorded removals under way are left to the next start, others
 * are finished now. */
void sweep_removals_end(void);

/* When path is on a read-only filesystem (EROFS; under systemd, outside the
 * unit's ReadWritePaths=), a malloc'd message saying so and how to fix it;
 * otherwise NULL. */
char *watch_readonly_problem(const char *path);

/* When path is a symlink, which a watch path never follows (the root is the
 * directory named, whatever a link there points to later), a malloc'd
 * message naming its target and what to write instead; otherwise NULL. */
char *watch_symlink_problem(const char *path);

/* Close the removal records directory (opened at the first removal). */
void sweep_records_close(void);
