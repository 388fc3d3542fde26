/* What ckptd tells a person: -t, -l, the metrics file, STATUS=. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

/* -t: the effective policy of every watch. Returns the exit status. */
int report_config(FILE *f, const struct config *c);
/* -l: every run, each checkpoint with fields, size, verdict and reasons. */
int report_list(FILE *f, const struct config *c, bool json);

/* A -1 summary: "deleted 5 checkpoints, freed 3.6G; kept 4 (2.1G)", or in a
 * dry run "would delete 4 checkpoints, would free 2.9G; would keep 5 (2.1G)".
 * malloc'd, NULL on ENOMEM. */
char *report_once_totals(bool dry_run, unsigned deleted, uint64_t freed_bytes, size_t kept, uint64_t kept_bytes);

struct manager;
/* What STATUS= counts over every run (O(runs) to count). */
struct status_counts {
        size_t runs, ckpts;
        size_t monitor_missing;  /* runs kept whole: no checkpoint carries the monitor */
        size_t unreadable_runs;  /* runs kept whole after read errors */
        size_t unreadable_ckpts; /* checkpoints of other runs kept after read errors */
};
/* Count what STATUS= tells of the runs, as of their last sweeps. */
void report_status_counts(const struct manager *m, struct status_counts *ret);
/* STATUS= text: the counts n, deletions, free space and floors, missing
 * watches (O(watches + filesystems)). malloc'd. */
char *report_status(const struct manager *m, const struct status_counts *n);
/* Rewrite the Prometheus textfile (metrics_file) atomically, if set. */
int report_metrics(const struct manager *m);
