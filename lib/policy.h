/* Pure retention policy: one run's checkpoints -> a verdict for each. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"

enum mode {
        MODE_MIN,
        MODE_MAX,
        _MODE_MAX,
};

struct policy {
        char *monitor; /* NULL: "best" keeps nothing */
        enum mode mode;
        int keep_top_k; /* -1 = all that have the metric */
        int keep_last;
        int64_t keep_every; /* 0 = off; applies to step/epoch order only */
        int64_t min_age_sec;
};

/* Fill c[i].verdict for every checkpoint of one run. Incomplete ones are kept
 * (KEEP_INCOMPLETE), and so are those with a read_error (KEEP_UNREADABLE):
 * neither takes a place among best or last. min_age compares age_usec where
 * age_known, else now_usec (CLOCK_REALTIME) - mtime_usec. */
void policy_decide(const struct policy *p, struct ckpt *c, size_t n, int64_t now_usec);

/* True when p has a monitor, the run has complete readable checkpoints and
 * none of them carries the monitor (from its name, metric file or log). */
bool policy_monitor_missing(const struct policy *p, const struct ckpt *c, size_t n);

/* True when p keeps nothing by itself (a config error). */
bool policy_keeps_nothing(const struct policy *p);

const char *mode_to_string(enum mode m);
int mode_from_string(const char *s);
