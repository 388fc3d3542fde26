/* What ckptd tells a person: -t, -l, the metrics file, STATUS=. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

/* -t: the effective policy of every watch. Returns the exit status. */
int report_config(FILE *f, const struct config *c);
/* -l: every run, each checkpoint with fields, size, verdict and reasons. */
int report_list(FILE *f, const struct config *c, bool json);

struct manager;
/* STATUS= text: runs, checkpoints, free space and floors. malloc'd. */
char *report_status(const struct manager *m);
/* Rewrite the Prometheus textfile (metrics_file) atomically, if set. */
int report_metrics(const struct manager *m);
