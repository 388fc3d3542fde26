/* A run directory -> checkpoints (sizes, pins, pointers, metrics); a root ->
 * its runs. All access goes through openat2 beneath the root fd. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "ckpt.h"
#include "config.h"
#include "fsutil.h"
#include "pattern.h"
#include "strv.h"

/* Room for this many more records at the end of a scanned run's ckpts
 * (index_adopt() keeps it for the saves that follow). */
#define SCAN_ROOM_CKPTS 4

/* Whether a run directory so named is one rank's part of a model-parallel
 * NeMo save (inject_model_parallel_rank()): mp_rank_00/,
 * tp_rank_00_pp_rank_000/, either with _fsdp_shard_00000, or
 * fsdp_shard_00000/. NeMo writes its -unfinished markers beside it. */
bool scan_model_parallel_dir(const char *name);
/* Whether an entry so named is an -unfinished marker (NeMo). */
bool scan_unfinished_marker(const char *name);

struct run {
        char *path; /* relative to the root; "." for the root itself */
        dev_t dev;
        ino_t ino;          /* the directory read, with dev */
        struct ckpt *ckpts; /* sorted by order, oldest first */
        size_t n_ckpts;
        /* -errno of the first failed read that concerns the whole run (its
         * listing, an entry's lstat, a symlink, a pointer file, HF's
         * best_model_checkpoint, opening the run), 0 when none. Then every
         * checkpoint found carries it too (KEEP_UNREADABLE): what could
         * not be read may have pinned any of them. */
        int read_error;
        char *read_what; /* what could not be read, e.g. "pointer file latest" */
        /* CLOCK_REALTIME when a pointer file written just now, naming no
         * checkpoint (EAGAIN), is no longer so (its mtime + settle); 0
         * when none is */
        int64_t pointer_quiet_usec;
        /* a symlink, keep file or -unfinished marker is among its entries:
         * a change of one name may change the pins of others */
        bool pin_sources;
        /* a checkpoint's metric was looked up in the watch's metric_log (its
         * name does not carry the monitor): the log changes with no event
         * of this run, so only a scan of the whole run reads it again */
        bool metric_logged;
        /* a directory checkpoint is among its records (or was, since it
         * was scanned): writes inside a complete one raise no event */
        bool has_dirs;
        /* its symlinks: one going may unpin its target, and its IN_DELETE
         * does not say it was a symlink */
        struct strv links;
        /* preset "auto": the layout found in this run (NULL: none, so
         * nothing in it is a checkpoint) and why, both static text */
        bool detected;
        const char *preset;
        const char *preset_why;
};

void run_finish(struct run *r);
/* *ret := an empty run at path that could not be read (error -errno, what
 * e.g. "opening the run"), kept whole. 0 or -ENOMEM. */
int run_init_unreadable(struct run *ret, const char *path, int error, const char *what);

/* Scan one run directory (an fd opened beneath the root) into *ret.
 * now_usec (CLOCK_REALTIME) decides "changed within settle". */
int scan_run(int run_fd, const char *run_path, const struct watch_conf *w, const struct pattern *pat, int64_t now_usec,
             struct run *ret);

/* Whether a run of this watch can be kept current one name at a time
 * (scan_one()): no groups, pointer files or HF best pins. */
bool scan_incremental(const struct watch_conf *w, const struct pattern *pat);
/* Whether an entry name pins others by its existence (keep file,
 * -unfinished marker): a change of it needs a scan of the whole run. */
bool scan_name_pins(const char *name);
/* Scan entry `name` of the run at run_fd as a checkpoint on its own, for a
 * run whose last scan_run() found no pin_sources: 1 with *ret filled (its
 * flock pin included, no pins from other entries), 0 when it is no
 * checkpoint (absent, ignored, another kind or mount, no match), -EAGAIN
 * when only a scan of the whole run can tell (a symlink, a keep file, a
 * name without the monitor in a watch with a metric_log, a watch that is
 * not scan_incremental()), else -errno. run_mnt_id: the mount of run_fd
 * where the caller knows it (statx(2) STATX_MNT_ID), else 0 to ask. */
int scan_one(int run_fd, uint64_t run_mnt_id, const char *name, const struct watch_conf *w, const struct pattern *pat,
             int64_t now_usec, struct ckpt *ret);

/* Whether a keep file in the run at run_fd pins c, by the rule a scan
 * reads them with: "MEMBER.keep", or for files "STEM.keep" where every
 * member starts with "STEM.". 1, 0, or -errno when it cannot be told. */
int scan_keep_file_for(int run_fd, const struct ckpt *c);

/* Scan the root, and with w->recursive every directory below it that is not
 * a checkpoint, a symlink or on another filesystem. Runs with no checkpoint
 * are still returned (the daemon watches them), and so are runs that could
 * not be read (run.read_error). Fails when the root itself cannot be read. */
int scan_root(int root_fd, const struct watch_conf *w, const struct pattern *pat, int64_t now_usec,
              struct run **ret_runs, size_t *ret_n);
/* Called with each directory scan_root_visit() opened (fd, its path
 * relative to the root) before it is listed: a watch added there sees every
 * change the listing may miss. A negative return stops the scan with it. */
typedef int scan_visit_fn(int dir_fd, const char *path, void *userdata);
/* scan_root(), calling visit (may be NULL) with each directory it lists. */
int scan_root_visit(int root_fd, const struct watch_conf *w, const struct pattern *pat, int64_t now_usec,
                    scan_visit_fn *visit, void *userdata, struct run **ret_runs, size_t *ret_n);
void runs_free(struct run *runs, size_t n);

/* Whether name matches the watch's pattern (and `match` globs) as a
 * checkpoint name; its fields in *ret (may be NULL). */
bool scan_name_matches(const struct watch_conf *w, const struct pattern *pat, const char *name, struct fields *ret);
/* Whether an entry name is temporary or excluded and so never a checkpoint. */
bool scan_name_ignored(const struct watch_conf *w, const char *name);
