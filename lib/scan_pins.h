/* Internal to lib/scan.c and lib/scan_pins.c: one run's listing and the pins
 * that come from other entries of the run (keep files, symlinks, pointer
 * files, HF best_model_checkpoint). Not for the daemon. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "config.h"
#include "scan.h"

#define KEEP_SUFFIX      ".keep"
#define POINTER_FILE_MAX 4096

/* One entry of a run directory; st is zeroed when lstat failed for a reason
 * other than ENOENT (the name still counts as present for markers). */
struct scan_entry {
        char *name;
        struct stat st;
        uint64_t mnt_id; /* statx(2) STATX_MNT_ID: 0 when unknown */
};

/* A run's entries, sorted by name (strcmp). */
struct scan_listing {
        struct scan_entry *v;
        size_t n;
};

/* Whether the len bytes at s end with suffix. */
bool scan_has_suffix(const char *s, size_t len, const char *suffix);

/* PIN_KEEPFILE from "<member>.keep" or "<stem of all members>.keep". */
void pins_keep_files(const struct scan_listing *l, struct run *run);
/* PIN_SYMLINK from symlinks in the run whose relative target names a checkpoint. */
void pins_symlinks(int run_fd, const struct scan_listing *l, struct run *run);
/* PIN_POINTER from pointer files naming a checkpoint or holding its order. */
void pins_pointer_files(int run_fd, const struct strv *files, struct run *run);
/* PIN_HF_BEST from the newest readable trainer_state.json; run sorted by
 * order. 0 or -ENOMEM. */
int pins_hf_best(int run_fd, struct run *run);
