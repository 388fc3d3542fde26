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
/* STATUS= text: runs, checkpoints, free space and floors. malloc'd. */
char *report_status(const struct manager *m);
/* Rewrite the Prometheus textfile (metrics_file) atomically, if set. */
int report_metrics(const struct manager *m);
