/* What the daemon saw of each checkpoint of a run, timed on CLOCK_BOOTTIME:
 * ages and settling that a step of the wall clock does not move. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "scan.h"

struct ckpt_seen;

/* One run's table, in the order of the run last observed (scan.c's: by order,
 * then name). Zero-initialised is empty. */
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

/* The tables of every run across a reload, by (root path, run path): a
 * reload must not forget what was timed, or a clock stepped forward since
 * would age everything at once. */
struct ages_carried;
struct ages_carry {
        struct ages_carried *v;
        size_t n, cap;
        bool sorted;
};

/* Move *a (left empty) into c under (root, run); -ENOMEM drops it. */
int ages_carry_add(struct ages_carry *c, const char *root, const char *run, struct ages *a);
/* Move the table of (root, run) from c into *ret, when c has one. */
void ages_carry_take(struct ages_carry *c, const char *root, const char *run, struct ages *ret);
void ages_carry_finish(struct ages_carry *c);
