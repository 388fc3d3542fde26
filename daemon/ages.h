/* What the daemon saw of each checkpoint of a run, timed on CLOCK_BOOTTIME:
 * ages and settling that a step of the wall clock does not move. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "scan.h"

struct ckpt_seen;

/* One run's table, sorted by checkpoint name. Zero-initialised is empty. */
struct ages {
        struct ckpt_seen *v;
        size_t n;
};

/* Update the table from a scan of the whole run (what is gone is forgotten)
 * and set each checkpoint's age (age_known) and, for an mtime in the future
 * of wall_usec (CLOCK_REALTIME), its completeness from what was seen: complete
 * once unchanged for settle_usec. -ENOMEM leaves ages unknown, else 0. */
int ages_observe(struct ages *a, struct run *run, int64_t wall_usec, uint64_t settle_usec);
void ages_finish(struct ages *a);
