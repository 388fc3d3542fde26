/* What ckptd tells a person: -t, -l, the metrics file, STATUS=. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

/* -t: the effective policy of every watch. Returns the exit status. */
int report_config(FILE *f, const struct config *c);
/* -l: every run, each checkpoint with fields, size, verdict and reasons. */
int report_list(FILE *f, const struct config *c, bool json);
