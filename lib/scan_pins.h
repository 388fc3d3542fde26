/* Internal to lib/scan.c and lib/scan_pins.c: one run's listing and the pins
 * that come from other entries of the run (keep files, symlinks, pointer
 * files, HF best_model_checkpoint). Not for the daemon. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "config.h"
#include "macro.h"
#include "scan.h"
#include "strv.h"

#define KEEP_SUFFIX      ".keep"
#define POINTER_FILE_MAX 4096

/* One entry of a run directory; st is zeroed when lstat failed for a reason
 * other than ENOENT (the name still counts as present for markers, and the
 * run carries the error). */
struct scan_entry {
        char *name;
        struct stat st;
        uint64_t mnt_id; /* statx(2) STATX_MNT_ID: 0 when unknown */
};

/* A run's entries, sorted by name (strcmp). Their names live in blocks of
 * the listing (one malloc per block, not per name). */
struct scan_listing {
        struct scan_entry *v;
        size_t n;
        struct name_block *names; /* NULL: the names belong to the caller */
        size_t n_unfinished;      /* names ending in "-unfinished" (NeMo's markers) */
        /* In a model-parallel rank's directory (mp_rank_00/), NeMo's
         * markers are in the parent, the path without the rank: theirs,
         * sorted (scan.c parent_markers_read()). */
        struct strv up;
};

/* Whether the len bytes at s end with suffix. */
bool scan_has_suffix(const char *s, size_t len, const char *suffix);

/* Record a failed read (-errno) on the run unless one is there already:
 * "<what>" from the printf-style format. 0 or -ENOMEM. */
int scan_run_error(struct run *run, int error, const char *fmt, ...) _printf_(3, 4);

/* PIN_KEEPFILE from "<member>.keep" or "<stem of all members>.keep". */
void pins_keep_files(const struct scan_listing *l, struct run *run);
/* PIN_SYMLINK from symlinks in the run whose relative target names a
 * checkpoint; a symlink that cannot be read marks the run. 0 or -ENOMEM. */
int pins_symlinks(int run_fd, const struct scan_listing *l, struct run *run);
/* PIN_POINTER from pointer files naming a checkpoint or holding its order;
 * one that exists but cannot be read marks the run, and so does one
 * modified within settle_usec before now_usec (CLOCK_REALTIME; a minute
 * after it for clocks apart) that names none of the run's: a part of a
 * name its writer has not finished (EAGAIN). The newest checkpoint, ordered
 * past what they name and written since, is a save under way (unmarked,
 * incomplete). The run is sorted. 0 or -ENOMEM. */
int pins_pointer_files(int run_fd, const struct strv *files, int64_t now_usec, int64_t settle_usec, struct run *run);
/* Whether the pointer files of the run at run_fd name checkpoint c of view
 * (the run as decided) now, read as pins_pointer_files() reads them (one
 * that is a symlink: by its target): 1, 0, or -errno when one cannot be
 * read (it may name c). One modified within settle_usec before now_usec
 * that names neither c nor another checkpoint (an entry of the run, a
 * number of view's or past them all) is a name its writer has not
 * finished: -EAGAIN. */
int pins_pointer_names(int run_fd, const struct strv *files, const struct run *view, const struct ckpt *c,
                       int64_t now_usec, int64_t settle_usec);
/* PIN_HF_BEST from the newest trainer_state.json (older ones only where the
 * newer have none); one that cannot be read marks the run. Run sorted by
 * order. 0 or -ENOMEM. */
int pins_hf_best(int run_fd, struct run *run);
