/* What the daemon saw of each checkpoint of a run, timed on CLOCK_BOOTTIME:
 * ages and settling that a step of the wall clock does not move. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "scan.h"

/* What a run's index timed is in its records (struct ckpt.age_known,
 * age_usec, seen_*), as of the run's last observation. This
 * holds the timed records dropped from the index since it was last observed
 * (replaced by a scan, deleted), whole, until ages_observe() carries what
 * they timed to the records of the same name. Zero-initialised is empty. */
struct ages {
        struct ckpt *v;
        size_t n, cap;
        bool lost;              /* one could not be kept (ENOMEM) */
        uint64_t observed_usec; /* CLOCK_BOOTTIME of the last ages_observe() */
        /* the lowest index whose completeness the last ages_observe()
         * changed, or that it timed for the first time; SIZE_MAX: none */
        size_t first_changed;
        /* CLOCK_BOOTTIME until which a change seen in a record timed may
         * still make it incomplete (seen_changed within settle), known
         * once ages_observe() looked at them all */
        uint64_t changed_until;
        bool changed_known;
};

/* c leaves the index (taken): kept when timed, else finished. */
void ages_keep(struct ages *a, struct ckpt *c);
/* Every record of run leaves it (ages_keep() each; run->n_ckpts = 0). */
void ages_keep_run(struct ages *a, struct run *run);
/* Time the run's records, the whole run as scanned (what is not in it is
 * forgotten): a record not timed yet takes what the kept record of its name
 * timed, else is first seen now. Sets each checkpoint's age (age_known)
 * and, for an mtime in the future of wall_usec (CLOCK_REALTIME), its
 * completeness from what was seen: complete once unchanged for settle_usec.
 * Empties a. How many checkpoints of run are incomplete then into
 * *ret_incomplete. -ENOMEM when a lost a record (those not found keep their
 * ages unknown), else 0.
 * quiet_below: the caller knows run->ckpts[0..quiet_below) complete and
 * unchanged since the last observation, and needs no age of them (no
 * min_age): unless a change seen within settle may make one incomplete
 * now, they are not looked at, and every age stays of the last
 * observation's boot time (a record first seen since may then have an age
 * below 0). 0: all are timed now. */
int ages_observe(struct ages *a, struct run *run, int64_t wall_usec, uint64_t settle_usec, size_t quiet_below,
                 size_t *ret_incomplete);
void ages_finish(struct ages *a);

/* What was told of a run, logged once and not again while it holds. */
struct run_told {
        char *read_errors;     /* sweep_read_errors_key() last logged; NULL: none */
        char *monitor_missing; /* sweep_note_monitor() last said; NULL: none */
};

void run_told_finish(struct run_told *t);

/* The kept records of every run across a reload, by (root directory, run
 * path): a reload must not forget what was timed, or a clock stepped forward
 * since would age everything at once; nor what it told (a read error still
 * there would be counted and logged again). The root by its (dev, ino): a
 * watch spelled otherwise (a symlink, "a/./b") is the same directory. */
struct ages_carried;
struct ages_carry {
        struct ages_carried *v;
        size_t n, cap;
        bool sorted;
};

/* Move *a and *told (left empty) into c under (the root dev:ino, run);
 * -ENOMEM drops them. */
int ages_carry_add(struct ages_carry *c, dev_t dev, ino_t ino, const char *run, struct ages *a, struct run_told *told);
/* Move what c has of (the root dev:ino, run) into *ret and *ret_told. */
void ages_carry_take(struct ages_carry *c, dev_t dev, ino_t ino, const char *run, struct ages *ret,
                     struct run_told *ret_told);
void ages_carry_finish(struct ages_carry *c);
