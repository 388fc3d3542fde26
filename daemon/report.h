/* What ckptd tells a person: -t, -l, the metrics file, STATUS=. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "config.h"
#include "space.h"
#include "sweep.h"

/* -t: the effective policy of every watch. Returns the exit status. */
int report_config(FILE *f, const struct config *c);
/* -l: every run, each checkpoint with fields, size, verdict and reasons. */
int report_list(FILE *f, const struct config *c, bool json);

/* A -1 summary: "deleted 5 checkpoints, freed 3.6G; kept 4 (2.1G)", or in a
 * dry run "would delete 4 checkpoints, would free 2.9G; would keep 5 (2.1G)".
 * malloc'd, NULL on ENOMEM. */
char *report_once_totals(bool dry_run, unsigned deleted, uint64_t freed_bytes, size_t kept, uint64_t kept_bytes);

/* What STATUS= counts over every run (O(runs) to count). */
struct status_counts {
        size_t runs, ckpts;
        size_t monitor_missing;  /* runs kept whole: no checkpoint carries the monitor */
        size_t unreadable_runs;  /* runs kept whole after read errors */
        size_t unreadable_ckpts; /* checkpoints of other runs kept after read errors */
};

/* A watch of the running daemon, as STATUS= and the metrics file show it. */
struct report_watch {
        const char *path; /* the daemon's, borrowed */
        bool present;
        bool locked;    /* there, but another ckptd holds its lock: not watched */
        bool symlink;   /* not there: a symlink is at its path, never followed */
        bool read_only; /* on a read-only mount for ckptd: nothing deleted */
};

/* A run of the running daemon, for the metrics file. */
struct report_run {
        const char *watch; /* the daemon's strings, borrowed */
        const char *path;  /* relative to the watch; "." for the watch itself */
        size_t n_ckpts;    /* after its last sweep */
};

/* What the running daemon shows of itself, copied out of it so that this
 * file never reads its state: filled by control_snapshot(), freed by
 * report_snapshot_finish(). The strings are the daemon's, valid until it
 * next changes. */
struct report_snapshot {
        struct report_watch *watches;
        size_t n_watches;
        struct report_run *runs; /* NULL unless asked for: O(runs) */
        size_t n_runs;
        struct status_counts counts; /* over runs; zero unless runs were asked for */
        const struct fs_state *fs;   /* every filesystem; those configured have a floor */
        size_t n_fs;
        bool floor_unmet;   /* some filesystem stays below its floor */
        bool floor_unknown; /* the free space of some filesystem with a floor cannot be read */
        uint64_t deleted_by_reason[_DELETE_REASON_MAX];
        uint64_t freed_by_reason[_DELETE_REASON_MAX];
        uint64_t read_errors_total;
        int64_t last_event_usec; /* CLOCK_REALTIME */
        bool dry_run;
        bool reload_rejected;     /* the last reload's config was rejected */
        const char *metrics_file; /* NULL or "": none */
};

/* Free what a snapshot holds (not the daemon's strings it borrows). */
void report_snapshot_finish(struct report_snapshot *s);
/* STATUS= text: the counts n, deletions, free space and floors, missing
 * watches (O(watches + filesystems)). malloc'd. */
char *report_status(const struct report_snapshot *s, const struct status_counts *n);
/* Rewrite the Prometheus textfile (metrics_file) atomically, if set; s holds
 * its runs. 1 when written (*ret_st, if not NULL: the file now at the path),
 * 0 when none is set, else -errno (logged). */
int report_metrics(const struct report_snapshot *s, struct stat *ret_st);
