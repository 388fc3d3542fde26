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

/* What a decision of one run leaves for the next to build on, when the
 * run is of the shape a long training run has between its scans: one
 * owner, every checkpoint settled, orders strictly increasing, no min_age.
 * A save then only appends a newer checkpoint, and policy_decide_appended()
 * decides it from this in O(k + log n): its own verdict, and those of the
 * few it can change (the one it pushes out of the top k, out of keep_last,
 * and the last written before it, if one was). */
#define POLICY_MEMO_TOP_MAX 64

struct policy_best_key {
        const char *name; /* the record's own (ckpt.name), valid while it is kept */
        double metric, order;
        int64_t mtime_usec;
};

struct policy_memo {
        const struct policy *policy; /* decided under; another: not valid */
        size_t n;                    /* c[0..n) as decided, unchanged since */
        uid_t uid;
        bool valid;
        /* best_rank of some records is older than the last decision: the
         * verdicts are exact, the ranks of those that moved are not */
        bool ranks_stale;
        /* the last written (KEEP_WRITTEN's pick); name NULL when the newest
         * mtime is a tie, none picked */
        struct policy_best_key written;
        struct policy_best_key *top; /* the top min(k, ranked) best first, k > 0 */
        size_t n_top;
        /* what the last policy_decide_appended() did not keep lies in
         * [first_delete, end_delete) (empty: nothing) */
        size_t first_delete, end_delete;
};

/* After a full decision of c[0..n) (policy_decide(), or run_decide() of a
 * run of one owner) and the removal of what it did not keep: memo describes
 * it, or is not valid when the run is not of that shape (or holds one not
 * kept). O(n). */
void policy_memo_build(struct policy_memo *memo, const struct policy *p, const struct ckpt *c, size_t n);
void policy_memo_finish(struct policy_memo *memo);

/* c[0..memo->n) decided as memo says and unchanged, c[memo->n..n) appended
 * since: decide those and the ones they change, and bring memo up to date
 * (its n stays: the caller sets it once what was deleted is gone). 0, or
 * -EAGAIN without writing anything: decide the whole run instead. The
 * verdicts are exactly policy_decide()'s; best_rank is not written
 * (memo->ranks_stale). */
int policy_decide_appended(struct policy_memo *memo, const struct policy *p, struct ckpt *c, size_t n,
                           int64_t now_usec);

/* True when p has a monitor, the run has complete readable checkpoints and
 * none of them carries the monitor (from its name, metric file or log). */
bool policy_monitor_missing(const struct policy *p, const struct ckpt *c, size_t n);

/* True when p keeps nothing by itself (a config error). */
bool policy_keeps_nothing(const struct policy *p);

const char *mode_to_string(enum mode m);
int mode_from_string(const char *s);
