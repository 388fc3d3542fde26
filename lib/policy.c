/* Pure retention policy: one run's checkpoints -> a verdict for each.
 *
 * The caller owns the order of the array (scan sorts it oldest first, but we
 * do not rely on that), so ranking sorts an array of indices instead. Every
 * comparison ends in a total order (metric, order, mtime, name, index), so the
 * verdicts never depend on how qsort orders equal keys. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "policy.h"

#define BIT(r) (1u << (r))

/* A NaN sorts below every number, so a NaN order counts as the oldest. The
 * ranked set never holds a NaN metric, so for metrics this is plain <=>. */
static int double_cmp(double a, double b)
{
        bool na = isnan(a), nb = isnan(b);

        if (na || nb)
                return (int)nb - (int)na;
        return (a > b) - (a < b);
}

static int name_cmp(const char *a, const char *b)
{
        if (!a || !b)
                return (a != NULL) - (b != NULL);
        return strcmp(a, b);
}

/* Older first. Equal orders happen with mtime order or a sloppy pattern: the
 * later mtime, then the larger name, is taken as the newer one. */
static int age_key_cmp(double order_a, int64_t mtime_a, const char *name_a, double order_b, int64_t mtime_b,
                       const char *name_b)
{
        int r = double_cmp(order_a, order_b);

        if (r != 0)
                return r;
        r = (mtime_a > mtime_b) - (mtime_a < mtime_b);
        if (r != 0)
                return r;
        return name_cmp(name_a, name_b);
}

/* age_key_cmp(), the index breaking what is left */
static int age_cmp(const struct ckpt *c, size_t a, size_t b)
{
        int r = age_key_cmp(c[a].order, c[a].mtime_usec, c[a].name, c[b].order, c[b].mtime_usec, c[b].name);

        return r != 0 ? r : (a > b) - (a < b);
}

/* Better first by the metric alone. */
static int metric_cmp(enum mode mode, double a, double b)
{
        int r = double_cmp(a, b);

        return mode == MODE_MAX ? -r : r;
}

struct rank_ctx {
        const struct ckpt *c;
        enum mode mode;
};

/* Better first; ties: the older ranks first (DESIGN "Policy"). */
static int best_cmp_idx(const struct rank_ctx *ctx, size_t a, size_t b)
{
        int r = metric_cmp(ctx->mode, ctx->c[a].metric, ctx->c[b].metric);

        return r != 0 ? r : age_cmp(ctx->c, a, b);
}

static int best_cmp(const void *x, const void *y, void *userdata)
{
        return best_cmp_idx(userdata, *(const size_t *)x, *(const size_t *)y);
}

/* Newest first. */
static int newest_cmp(const void *x, const void *y, void *userdata)
{
        return -age_cmp(userdata, *(const size_t *)x, *(const size_t *)y);
}

static bool has_monitor(const struct policy *p)
{
        return p->monitor && p->monitor[0] != '\0';
}

/* Whether c takes a place among best and last: complete, and nothing it
 * depends on failed to read. One that could not be read is kept and left
 * out of the ranks: adding it could only push the others down, so what is
 * outside the keep_top_k or keep_last of the rest is outside them anyway. */
static bool is_settled(const struct ckpt *c)
{
        return c->complete && c->read_error == 0;
}

static bool is_ranked(const struct policy *p, const struct ckpt *c)
{
        return has_monitor(p) && is_settled(c) && c->has_metric && !isnan(c->metric);
}

static bool is_every(const struct policy *p, const struct ckpt *c)
{
        if (p->keep_every <= 0)
                return false;
        /* An mtime in seconds is no count of steps or epochs. */
        if (c->order_source != ORDER_STEP && c->order_source != ORDER_EPOCH)
                return false;
        if (!isfinite(c->order))
                return false;
        /* fmod is exact; a non-integer order leaves a remainder because
         * every multiple of an integer is an integer. Order 0 counts. */
        return fmod(c->order, (double)p->keep_every) == 0.0;
}

static bool is_young(const struct policy *p, const struct ckpt *c, int64_t now_usec)
{
        int64_t min_usec, age_usec;

        if (p->min_age_sec <= 0)
                return false;
        /* min_age beyond ~292000 years: everything is young. */
        if (__builtin_mul_overflow(p->min_age_sec, (int64_t)USEC_PER_SEC, &min_usec))
                return true;
        /* The daemon's own measure: aged on CLOCK_BOOTTIME since it first
         * saw the checkpoint, so a step of the wall clock ages nothing. */
        if (c->age_known)
                return c->age_usec < min_usec;
        /* Overflow means an mtime absurdly far away: in the future it is
         * young (a clock step back must not delete it), in the past old. */
        if (__builtin_sub_overflow(now_usec, c->mtime_usec, &age_usec))
                return c->mtime_usec > now_usec;
        return age_usec < min_usec;
}

static bool keeps_best(const struct policy *p, int rank)
{
        if (rank <= 0)
                return false;
        /* Anything negative is read as -1, "all that have the metric". */
        return p->keep_top_k < 0 || rank <= p->keep_top_k;
}

/* A ranked checkpoint placed by its last rank, with the keys of best_cmp
 * that the check of the order reads (so that it reads this array in order,
 * not records 104 bytes apart in the order of their ranks). */
struct rank_slot {
        uint32_t at;  /* 1 + its index in c */
        uint32_t gen; /* the decision that placed it (struct rank_work.gen); else empty */
        double metric;
        double order;
};

/* Scratch arrays of the sorted path, n entries each. */
struct rank_work {
        struct rank_slot *slot; /* slot[r - 1]: the one whose last rank was r (of gen) */
        uint32_t gen;           /* this decision's: a slot of another is empty */
        size_t *idx;            /* the ranked ones by rank, or the settled ones newest first */
        size_t *settled;        /* the settled ones, oldest first (scan's order) */
        double *settled_order;  /* their orders */
};

/* Whether slot[0..m) (none empty) is in strictly increasing order under
 * best_cmp: then it is the one order qsort_r() would give, every comparison
 * being a total order. Reads c only for a tie of metric and order. */
static bool best_sorted(const struct rank_ctx *ctx, const struct rank_slot *slot, size_t m)
{
        bool max = ctx->mode == MODE_MAX;

        for (size_t j = 1; j < m; j++) {
                double a = slot[j - 1].metric, b = slot[j].metric;
                int r;

                /* no NaN among the ranked: a plain comparison first */
                if (max ? a > b : a < b)
                        continue;
                if (a != b)
                        return false;
                /* a tie: the older first, by order first (age_cmp()) */
                r = double_cmp(slot[j - 1].order, slot[j].order);
                if (r > 0 || (r == 0 && best_cmp_idx(ctx, slot[j - 1].at - 1, slot[j].at - 1) >= 0))
                        return false;
        }
        return true;
}

/* Whether the settled ones, newest first, are in strictly increasing order
 * under newest_cmp: whether w->settled is so under age_cmp. */
static bool newest_sorted(const struct ckpt *c, const struct rank_work *w, size_t n_settled)
{
        for (size_t j = 1; j < n_settled; j++) {
                int r;

                /* false for a NaN: then double_cmp() */
                if (w->settled_order[j - 1] < w->settled_order[j])
                        continue;
                r = double_cmp(w->settled_order[j - 1], w->settled_order[j]);
                if (r > 0 || (r == 0 && age_cmp(c, w->settled[j - 1], w->settled[j]) >= 0))
                        return false;
        }
        return true;
}

/* At most this many ranked checkpoints without a usable last rank are put
 * in place one by one; more (a first decision) are sorted with the rest. */
#define RANK_HINT_INSERT_MAX 16

/* w->idx[0..m) := the m ranked checkpoints by best_cmp. A daemon decides the
 * same run again at every save, so the last decision's ranks (w->slot, with
 * the extra ones that had none at the tail of w->idx) nearly give the order:
 * the ranked ones are placed by them in O(n), the few without one inserted
 * by binary search, and the result is checked in O(m) comparisons; only a
 * check that fails sorts it all. The last ranks never change the outcome,
 * only how fast it is found. */
static void rank_best(const struct policy *p, const struct rank_ctx *ctx, size_t n, size_t m, size_t extra,
                      size_t placed, const struct rank_work *w)
{
        size_t *idx = w->idx, k = 0;

        if (extra <= RANK_HINT_INSERT_MAX) {
                /* the slots taken, packed at the front (k <= r) */
                for (size_t r = 0; r < n; r++)
                        if (w->slot[r].gen == w->gen) {
                                idx[k] = w->slot[r].at - 1;
                                w->slot[k++] = w->slot[r];
                        }
        }
        /* many without a last rank, or two with the same one (the later
         * overwrote the earlier's slot): sort them all */
        if (extra > RANK_HINT_INSERT_MAX || k != placed) {
                k = 0;
                for (size_t i = 0; i < n; i++)
                        if (is_ranked(p, &ctx->c[i]))
                                idx[k++] = i;
                qsort_r(idx, m, sizeof(*idx), best_cmp, (void *)ctx);
                return;
        }
        if (!best_sorted(ctx, w->slot, k))
                qsort_r(idx, k, sizeof(*idx), best_cmp, (void *)ctx);
        /* idx[k] is written first at the k-th insertion, where the lowest
         * unread one of the tail may sit: each is read before that */
        for (size_t e = 0; e < extra; e++) {
                size_t i = idx[n - extra + e], lo = 0, hi = k;

                while (lo < hi) {
                        size_t mid = lo + (hi - lo) / 2;

                        if (best_cmp_idx(ctx, idx[mid], i) < 0)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                memmove(&idx[lo + 1], &idx[lo], (k - lo) * sizeof(*idx));
                idx[lo] = i;
                k++;
        }
}

static void keep_for(struct verdict *v, enum keep_reason why)
{
        v->reasons |= BIT(why);
        v->keep = true;
        v->delete_reason = DELETE_NONE;
}

/* The same ranks without memory, O(n^2): for when malloc fails, because a
 * void function cannot report it and keeping everything would leave the
 * floor without ranks. */
static void rank_quadratic(const struct policy *p, struct ckpt *c, size_t n)
{
        struct rank_ctx ctx = {.c = c, .mode = p->mode};

        for (size_t i = 0; i < n; i++) {
                if (is_ranked(p, &c[i])) {
                        size_t better = 0;

                        for (size_t j = 0; j < n; j++)
                                if (j != i && is_ranked(p, &c[j]) && best_cmp_idx(&ctx, j, i) < 0)
                                        better++;
                        c[i].verdict.best_rank = (int)(better + 1);
                        if (keeps_best(p, (int)(better + 1)))
                                c[i].verdict.reasons |= BIT(KEEP_BEST);
                }

                if (p->keep_last > 0 && is_settled(&c[i])) {
                        size_t newer = 0;

                        for (size_t j = 0; j < n; j++)
                                if (j != i && is_settled(&c[j]) && age_cmp(c, j, i) > 0)
                                        newer++;
                        if (newer < (size_t)p->keep_last)
                                c[i].verdict.reasons |= BIT(KEEP_LAST);
                }
        }
}

/* The most recently completed checkpoint is kept whatever its order says:
 * a script restarted into the directory of an old run writes epoch=0 next
 * to the old epoch=21, and resumes from nothing if that epoch=0 goes. It
 * costs at most one more kept checkpoint per run (two, see below), none
 * when it is also the newest by order. Only a strictly latest completion
 * counts: checkpoints completed at the same instant (restored from a
 * backup, copied with cp -p) say nothing about which is newer, and the
 * order decides alone.
 * Completion is told by the newest mtime of the checkpoint's files, all
 * stamped by one clock. An mtime can lie: an old checkpoint dated in the
 * future (another host's clock, a clock stepped back since) would be the
 * latest written, and the restarted run's real newest lose its place. A
 * daemon, which saw each one itself (age_known), does not believe an mtime
 * that was in the future when it saw it (seen_future): such a checkpoint
 * takes no part among the mtimes, and the newest of them is kept while it
 * is of the daemon's last look (seen_same_usec, on CLOCK_BOOTTIME) that saw
 * a settled one, as it may be the newest: a save seen arrive after it takes
 * its place. One more kept, never one less. */
struct pick {
        size_t at; /* SIZE_MAX: none yet */
        int64_t mtime;
        bool tie; /* another has the same mtime: none singled out */
};

struct last_written {
        struct pick believed; /* the newest believed mtime */
        bool lies;            /* some mtime is not believed */
};

#define PICK_NONE                                                                                                      \
        {                                                                                                              \
                .at = SIZE_MAX                                                                                         \
        }
#define LAST_WRITTEN_INIT                                                                                              \
        {                                                                                                              \
                .believed = PICK_NONE                                                                                  \
        }

static void pick_add(struct pick *p, const struct ckpt *c, size_t i)
{
        if (p->at == SIZE_MAX || c[i].mtime_usec > p->mtime)
                *p = (struct pick){.at = i, .mtime = c[i].mtime_usec};
        else if (c[i].mtime_usec == p->mtime)
                p->tie = true;
}

static void pick_keep(const struct pick *p, struct ckpt *c)
{
        if (p->at != SIZE_MAX && !p->tie && c[p->at].verdict.reasons == 0)
                keep_for(&c[p->at].verdict, KEEP_WRITTEN);
}

static bool mtime_lies(const struct ckpt *c)
{
        return c->age_known && c->seen_future;
}

/* c[i], settled, in the running for the last written. */
static void last_written_add(struct last_written *lw, const struct ckpt *c, size_t i)
{
        if (mtime_lies(&c[i]))
                lw->lies = true;
        else
                pick_add(&lw->believed, c, i);
}

/* Keep the last written; named only where no other rule keeps it: -l then
 * says why. */
static void last_written_keep(const struct last_written *lw, struct ckpt *c, size_t n)
{
        struct pick future = PICK_NONE;
        uint64_t look = 0;

        pick_keep(&lw->believed, c);
        if (!lw->lies)
                return;
        /* rare, a pass more: the daemon's last look that saw a settled one */
        for (size_t i = 0; i < n; i++)
                if (is_settled(&c[i]) && c[i].age_known && c[i].seen_same_usec > look)
                        look = c[i].seen_same_usec;
        for (size_t i = 0; i < n; i++)
                if (is_settled(&c[i]) && mtime_lies(&c[i]) && c[i].seen_same_usec == look)
                        pick_add(&future, c, i);
        pick_keep(&future, c);
}

/* O(n). */
static void keep_newest_written(struct ckpt *c, size_t n)
{
        struct last_written lw = LAST_WRITTEN_INIT;

        for (size_t i = 0; i < n; i++)
                if (is_settled(&c[i]))
                        last_written_add(&lw, c, i);
        last_written_keep(&lw, c, n);
}

/* A monitor that no complete checkpoint of the run carries (a typo, or
 * names that hold only epoch and step) would rank nothing and let
 * keep_last delete the best ones: the run is kept whole instead, and the
 * caller warns (policy_monitor_missing()). The floor may still evict. */
static void keep_if_monitor_missing(const struct policy *p, struct ckpt *c, size_t n)
{
        if (!policy_monitor_missing(p, c, n))
                return;
        for (size_t i = 0; i < n; i++)
                if (is_settled(&c[i]))
                        c[i].verdict.reasons |= BIT(KEEP_NO_MONITOR);
}

bool policy_monitor_missing(const struct policy *p, const struct ckpt *c, size_t n)
{
        bool any = false;

        if (!has_monitor(p))
                return false;
        for (size_t i = 0; i < n; i++) {
                if (!is_settled(&c[i]))
                        continue;
                if (c[i].has_metric)
                        return false;
                any = true;
        }
        return any;
}

/* The reasons c has on its own, whatever the rest of the run. */
static uint16_t own_reasons(const struct policy *p, const struct ckpt *c, int64_t now_usec)
{
        uint16_t reasons = 0;

        /* Fail closed: a read it depends on failed (its pins, its metric,
         * its tree, its run), so nobody knows whether a rule would keep it. */
        if (c->read_error != 0)
                reasons |= BIT(KEEP_UNREADABLE);
        /* Still being written: invisible to the policy, so it gets no other
         * reason and no place among best or last. */
        if (!c->complete)
                return reasons | BIT(KEEP_INCOMPLETE);
        if (is_every(p, c))
                reasons |= BIT(KEEP_EVERY);
        if (c->pins != 0)
                reasons |= BIT(KEEP_PINNED);
        if (is_young(p, c, now_usec))
                reasons |= BIT(KEEP_YOUNG);
        return reasons;
}

static void decide_quadratic(const struct policy *p, struct ckpt *c, size_t n, int64_t now_usec)
{
        for (size_t i = 0; i < n; i++)
                c[i].verdict =
                        (struct verdict){.reasons = own_reasons(p, &c[i], now_usec), .delete_reason = DELETE_NONE};
        rank_quadratic(p, c, n);
        keep_newest_written(c, n);
        keep_if_monitor_missing(p, c, n);
        for (size_t i = 0; i < n; i++) {
                struct verdict *v = &c[i].verdict;

                v->keep = v->reasons != 0;
                v->delete_reason = v->keep ? DELETE_NONE : DELETE_POLICY;
        }
}

/* The same verdicts as decide_quadratic() in one pass over the checkpoints
 * and O(n) on the arrays of w (zeroed) when their order (scan's, oldest
 * first) and the last decision's ranks (in their verdicts) already give the
 * orders, else O(n log n). The pass gives each its own reasons and verdict
 * and collects what the ranks need; the ranks then touch only the ones they
 * keep (and write each best_rank). */
static void decide_sorted(const struct policy *p, struct ckpt *c, size_t n, int64_t now_usec, const struct rank_work *w)
{
        struct rank_ctx ctx = {.c = c, .mode = p->mode};
        struct last_written lw = LAST_WRITTEN_INIT;
        size_t m = 0, extra = 0, placed = 0, n_settled = 0;
        bool any_metric = false, monitor = has_monitor(p);

        for (size_t i = 0; i < n; i++) {
                struct verdict *v = &c[i].verdict;
                int hint = v->best_rank;

                *v = (struct verdict){.reasons = own_reasons(p, &c[i], now_usec)};
                v->keep = v->reasons != 0;
                v->delete_reason = v->keep ? DELETE_NONE : DELETE_POLICY;
                if (!is_settled(&c[i]))
                        continue;
                w->settled[n_settled] = i;
                w->settled_order[n_settled++] = c[i].order;
                any_metric = any_metric || c[i].has_metric;
                last_written_add(&lw, c, i);
                if (!is_ranked(p, &c[i]))
                        continue;
                m++;
                /* written without reading the slot first (a random read
                 * of n slots stalls): two with one last rank leave fewer
                 * slots taken than placed, which rank_best() sees */
                if (hint >= 1 && (size_t)hint <= n) {
                        w->slot[hint - 1] = (struct rank_slot){
                                .at = (uint32_t)(i + 1), .gen = w->gen, .metric = c[i].metric, .order = c[i].order};
                        placed++;
                } else
                        w->idx[n - ++extra] = i; /* at the end, taken lowest first in rank_best() */
        }

        if (monitor) {
                rank_best(p, &ctx, n, m, extra, placed, w);
                /* Rank all of them, beyond k too: the floor evicts by rank. */
                for (size_t j = 0; j < m; j++) {
                        struct verdict *v = &c[w->idx[j]].verdict;

                        v->best_rank = (int)(j + 1);
                        if (keeps_best(p, (int)(j + 1)))
                                keep_for(v, KEEP_BEST);
                }
        }
        if (p->keep_last > 0) {
                /* newest first: the reverse of scan's order, checked */
                if (newest_sorted(c, w, n_settled)) {
                        for (size_t j = 0; j < n_settled && j < (size_t)p->keep_last; j++)
                                keep_for(&c[w->settled[n_settled - 1 - j]].verdict, KEEP_LAST);
                } else {
                        for (size_t j = 0; j < n_settled; j++)
                                w->idx[j] = w->settled[n_settled - 1 - j];
                        qsort_r(w->idx, n_settled, sizeof(*w->idx), newest_cmp, c);
                        for (size_t j = 0; j < n_settled && j < (size_t)p->keep_last; j++)
                                keep_for(&c[w->idx[j]].verdict, KEEP_LAST);
                }
        }
        last_written_keep(&lw, c, n);
        /* keep_if_monitor_missing(): policy_monitor_missing() */
        if (monitor && n_settled > 0 && !any_metric)
                for (size_t j = 0; j < n_settled; j++)
                        keep_for(&c[w->settled[j]].verdict, KEEP_NO_MONITOR);
}

/* Test seam: the allocation-free path, so check_policy can compare it with
 * the sorted one. Deliberately not in policy.h. */
void policy_decide_quadratic(const struct policy *p, struct ckpt *c, size_t n, int64_t now_usec);

void policy_decide_quadratic(const struct policy *p, struct ckpt *c, size_t n, int64_t now_usec)
{
        decide_quadratic(p, c, n, now_usec);
}

/* The arrays of the sorted path, kept from one decision to the next (48
 * bytes per checkpoint of the largest run decided): a daemon decides a run
 * of 20000 at every save, and ~1 MB freed and allocated again each time
 * can be handed back to the kernel by free() (the top of the heap trimmed)
 * and faulted in anew, page by page, at the next. The slots are not cleared
 * for each decision (a pass over them all): each decision has its own gen,
 * and they are zeroed only when allocated and when gen wraps. */
static _Thread_local struct {
        struct rank_slot *slot;
        size_t *sz;
        double *settled_order;
        size_t cap;
        uint32_t gen;
} scratch;

static int scratch_reserve(size_t n)
{
        struct rank_slot *slot;
        size_t *sz;
        double *so;

        if (n <= scratch.cap)
                return 0;
        slot = reallocarray(scratch.slot, n, sizeof(*slot));
        if (slot)
                scratch.slot = slot;
        sz = reallocarray(scratch.sz, n, 2 * sizeof(*sz));
        if (sz)
                scratch.sz = sz;
        so = reallocarray(scratch.settled_order, n, sizeof(*so));
        if (so)
                scratch.settled_order = so;
        if (!slot || !sz || !so)
                return -ENOMEM;
        memset(scratch.slot, 0, n * sizeof(*scratch.slot));
        scratch.gen = 0;
        scratch.cap = n;
        return 0;
}

void policy_decide(const struct policy *p, struct ckpt *c, size_t n, int64_t now_usec)
{
        struct rank_work w;

        if (n == 0)
                return;
        /* (a run of 4 billion checkpoints: slots hold 32-bit indices) */
        if (n >= UINT32_MAX || scratch_reserve(n) < 0) {
                decide_quadratic(p, c, n, now_usec);
                return;
        }
        if (++scratch.gen == 0) {
                memset(scratch.slot, 0, scratch.cap * sizeof(*scratch.slot));
                scratch.gen = 1;
        }
        w = (struct rank_work){.slot = scratch.slot,
                               .gen = scratch.gen,
                               .idx = scratch.sz,
                               .settled = scratch.sz + n,
                               .settled_order = scratch.settled_order};
        decide_sorted(p, c, n, now_usec, &w);
}

/* --- a run's next decision from its last (struct policy_memo) --- */

/* At most this many checkpoints appended since the last decision are
 * decided from it; more (a burst) decide the whole run. */
#define APPENDED_MAX 8

static struct policy_best_key key_of(const struct ckpt *c)
{
        return (struct policy_best_key){
                .name = c->name, .metric = c->metric, .order = c->order, .mtime_usec = c->mtime_usec};
}

/* best_cmp_idx() on keys: the records of a memo have distinct orders (and
 * names), so the index never breaks a tie. */
static int key_best_cmp(enum mode mode, const struct policy_best_key *a, const struct policy_best_key *b)
{
        int r = metric_cmp(mode, a->metric, b->metric);

        return r != 0 ? r : age_key_cmp(a->order, a->mtime_usec, a->name, b->order, b->mtime_usec, b->name);
}

/* The k of keep_top_k that a memo keeps a list for: 0 for none (no
 * monitor, keep_top_k 0, or every ranked one kept). */
static size_t memo_k(const struct policy *p)
{
        return has_monitor(p) && p->keep_top_k > 0 ? (size_t)p->keep_top_k : 0;
}

void policy_memo_finish(struct policy_memo *memo)
{
        free(memo->top);
        *memo = (struct policy_memo){};
}

void policy_memo_build(struct policy_memo *memo, const struct policy *p, const struct ckpt *c, size_t n)
{
        struct pick written = PICK_NONE;
        size_t k = memo_k(p), m = 0;

        memo->valid = memo->ranks_stale = false;
        memo->n_top = 0;
        /* min_age ages every record with time; a monitor with keep_top_k 0
         * may see its last ranked one deleted (KEEP_NO_MONITOR then) */
        if (n == 0 || p->min_age_sec > 0 || c[0].uid == UID_MIXED || (has_monitor(p) && p->keep_top_k == 0) ||
            k > POLICY_MEMO_TOP_MAX)
                return;
        if (k > 0) {
                struct policy_best_key *top = reallocarray(memo->top, k, sizeof(*top));

                if (!top)
                        return;
                memo->top = top;
                memset(top, 0, k * sizeof(*top));
        }
        for (size_t i = 0; i < n; i++) {
                int r = c[i].verdict.best_rank;

                /* a victim still there (its removal failed, a dry run) is
                 * tried again by the next whole decision */
                if (!is_settled(&c[i]) || !c[i].verdict.keep || c[i].uid != c[0].uid || mtime_lies(&c[i]))
                        return;
                /* false for a NaN as well */
                if (i > 0 && !(c[i - 1].order < c[i].order))
                        return;
                pick_add(&written, c, i);
                if (!is_ranked(p, &c[i]))
                        continue;
                m++;
                if (k > 0 && r >= 1 && (size_t)r <= k) {
                        if (memo->top[r - 1].name)
                                return; /* two with one rank: not a fresh decision */
                        memo->top[r - 1] = key_of(&c[i]);
                }
        }
        if (written.at == SIZE_MAX || (has_monitor(p) && m == 0))
                return;
        memo->n_top = k < m ? k : m;
        for (size_t r = 0; r < k; r++)
                if ((memo->top[r].name != NULL) != (r < memo->n_top) ||
                    (r > 0 && r < memo->n_top && key_best_cmp(p->mode, &memo->top[r - 1], &memo->top[r]) >= 0))
                        return;
        /* a tie at the newest mtime (a restored tree): none kept as the
         * last written, and a save must be newer than all of them */
        memo->written = key_of(&c[written.at]);
        if (written.tie)
                memo->written.name = NULL;
        memo->policy = p;
        memo->uid = c[0].uid;
        memo->n = n;
        memo->valid = true;
}

/* The record of c[0..n) (orders strictly increasing) that key names, or
 * SIZE_MAX. */
static size_t memo_find(const struct ckpt *c, size_t n, const struct policy_best_key *key)
{
        size_t lo = 0, hi = n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (c[mid].order < key->order)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo < n && c[lo].order == key->order && c[lo].name == key->name ? lo : SIZE_MAX;
}

/* c[i]'s verdict in the run c[0..n) of a memo: the rules of decide_sorted()
 * for a run whose checkpoints are all settled and in order of age, the
 * last one the last written. best_rank is left as it was. */
static void memo_verdict(const struct policy_memo *memo, const struct policy *p, struct ckpt *c, size_t n, size_t i,
                         int64_t now_usec)
{
        struct verdict *v = &c[i].verdict;
        bool best = false;

        v->reasons = own_reasons(p, &c[i], now_usec);
        if (is_ranked(p, &c[i])) {
                best = p->keep_top_k < 0;
                for (size_t r = 0; !best && r < memo->n_top; r++)
                        best = memo->top[r].name == c[i].name;
        }
        if (best)
                v->reasons |= BIT(KEEP_BEST);
        if (p->keep_last > 0 && (size_t)p->keep_last >= n - i)
                v->reasons |= BIT(KEEP_LAST);
        if (i == n - 1 && v->reasons == 0)
                v->reasons |= BIT(KEEP_WRITTEN);
        v->keep = v->reasons != 0;
        v->delete_reason = v->keep ? DELETE_NONE : DELETE_POLICY;
}

int policy_decide_appended(struct policy_memo *memo, const struct policy *p, struct ckpt *c, size_t n, int64_t now_usec)
{
        struct policy_best_key top[POLICY_MEMO_TOP_MAX];
        size_t from = memo->n, k = memo_k(p), n_top = memo->n_top, touched[2 * APPENDED_MAX + 1], n_touched = 0;
        int64_t written = memo->written.mtime_usec;

        if (!memo->valid || memo->policy != p || from == 0 || from > n || n - from > APPENDED_MAX)
                return -EAGAIN;
        if (n_top > 0)
                memcpy(top, memo->top, n_top * sizeof(*top));
        /* first everything it reads, so that nothing is written unless
         * all of it holds */
        for (size_t j = from; j < n; j++) {
                const struct ckpt *x = &c[j];

                /* settled, one owner, newest by order and by a believed
                 * mtime; ranked where there is a monitor */
                if (!is_settled(x) || x->uid != memo->uid || mtime_lies(x) || (has_monitor(p) && !is_ranked(p, x)) ||
                    !(c[j - 1].order < x->order) || !(x->mtime_usec > written))
                        return -EAGAIN;
                written = x->mtime_usec;
                /* the one it pushes out of keep_last */
                if (p->keep_last > 0 && j >= (size_t)p->keep_last && j - (size_t)p->keep_last < from)
                        touched[n_touched++] = j - (size_t)p->keep_last;
                if (k > 0) {
                        struct policy_best_key key = key_of(x);
                        size_t at = n_top;

                        while (at > 0 && key_best_cmp(p->mode, &key, &top[at - 1]) < 0)
                                at--;
                        if (at >= k)
                                continue;
                        if (n_top == k) {
                                /* the k-th, out of best: one of before, or
                                 * appended (decided below) */
                                size_t out = memo_find(c, from, &top[k - 1]);

                                if (out != SIZE_MAX)
                                        touched[n_touched++] = out;
                                else if (memo_find(c + from, n - from, &top[k - 1]) == SIZE_MAX)
                                        return -EAGAIN;
                                n_top--;
                        }
                        memmove(&top[at + 1], &top[at], (n_top - at) * sizeof(*top));
                        top[at] = key;
                        n_top++;
                }
        }
        if (n > from && memo->written.name) {
                size_t was = memo_find(c, from, &memo->written);

                if (was == SIZE_MAX)
                        return -EAGAIN;
                touched[n_touched++] = was;
        }

        if (n_top > 0)
                memcpy(memo->top, top, n_top * sizeof(*top));
        memo->n_top = n_top;
        /* the last appended is the last written; with none appended it
         * stays as it was (the last by order need not be it) */
        if (n > from)
                memo->written = key_of(&c[n - 1]);
        memo->first_delete = memo->end_delete = 0;
        for (size_t j = from; j < n; j++) {
                c[j].verdict.best_rank = 0;
                memo_verdict(memo, p, c, n, j, now_usec);
        }
        for (size_t t = 0; t < n_touched; t++)
                memo_verdict(memo, p, c, n, touched[t], now_usec);
        for (size_t t = 0; t < n_touched + (n - from); t++) {
                size_t i = t < n_touched ? touched[t] : from + (t - n_touched);

                if (c[i].verdict.keep)
                        continue;
                if (memo->first_delete == memo->end_delete || i < memo->first_delete)
                        memo->first_delete = i;
                if (i + 1 > memo->end_delete)
                        memo->end_delete = i + 1;
        }
        memo->ranks_stale = memo->ranks_stale || n > from;
        return 0;
}

bool policy_keeps_nothing(const struct policy *p)
{
        /* DESIGN's definition. keep_top_k without a monitor keeps nothing
         * in practice as well; config validation knows the layout and is
         * the place to catch that. */
        return p->keep_top_k == 0 && p->keep_last == 0 && p->keep_every == 0;
}

static const char *const mode_table[_MODE_MAX] = {
        [MODE_MIN] = "min",
        [MODE_MAX] = "max",
};

const char *mode_to_string(enum mode m)
{
        return (unsigned)m < ELEMENTSOF(mode_table) ? mode_table[m] : NULL;
}

int mode_from_string(const char *s)
{
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(mode_table); i++)
                if (strcmp(s, mode_table[i]) == 0)
                        return (int)i;
        return -EINVAL;
}
