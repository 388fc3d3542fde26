/* Pure retention policy: one run's checkpoints -> a verdict for each.
 *
 * The caller owns the order of the array (scan sorts it oldest first, but we
 * do not rely on that), so ranking sorts an array of indices instead. Every
 * comparison ends in a total order (metric, order, mtime, name, index), so the
 * verdicts never depend on how qsort orders equal keys. */
#include <errno.h>
#include <math.h>
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
static int age_cmp(const struct ckpt *c, size_t a, size_t b)
{
        int r;

        r = double_cmp(c[a].order, c[b].order);
        if (r != 0)
                return r;
        r = (c[a].mtime_usec > c[b].mtime_usec) - (c[a].mtime_usec < c[b].mtime_usec);
        if (r != 0)
                return r;
        r = name_cmp(c[a].name, c[b].name);
        if (r != 0)
                return r;
        return (a > b) - (a < b);
}

struct rank_ctx {
        const struct ckpt *c;
        enum mode mode;
};

/* Better first; ties: the older ranks first (DESIGN "Policy"). */
static int best_cmp_idx(const struct rank_ctx *ctx, size_t a, size_t b)
{
        int r = double_cmp(ctx->c[a].metric, ctx->c[b].metric);

        if (ctx->mode == MODE_MAX)
                r = -r;
        if (r != 0)
                return r;
        return age_cmp(ctx->c, a, b);
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

/* Whether idx[0..m) is in strictly increasing order under cmp: then it is
 * the one order qsort_r() would give, every comparison being a total order. */
static bool is_sorted_idx(const size_t *idx, size_t m, int (*cmp)(const void *, const void *, void *), void *ctx)
{
        for (size_t j = 1; j < m; j++)
                if (cmp(&idx[j - 1], &idx[j], ctx) >= 0)
                        return false;
        return true;
}

/* Like is_sorted_idx(idx, m, best_cmp, ctx), reading the metrics from
 * metric[] (a copy, by index of c: the checkpoints themselves lie far apart
 * in memory) and c only for a tie. */
static bool best_sorted(const struct rank_ctx *ctx, const size_t *idx, size_t m, const double *metric)
{
        for (size_t j = 1; j < m; j++) {
                int r = double_cmp(metric[idx[j - 1]], metric[idx[j]]);

                if (ctx->mode == MODE_MAX)
                        r = -r;
                if (r > 0 || (r == 0 && best_cmp_idx(ctx, idx[j - 1], idx[j]) >= 0))
                        return false;
        }
        return true;
}

/* At most this many ranked checkpoints without a usable last rank are put
 * in place one by one; more (a first decision) are sorted with the rest. */
#define RANK_HINT_INSERT_MAX 16

/* idx[0..m) := the ranked checkpoints by best_cmp. A daemon decides the same
 * run again at every save, so hint[i], c[i]'s best_rank of the last decision
 * (0 when none), nearly gives the order: the ranked ones are placed by it in
 * O(n), the few without one inserted by binary search, and the result is
 * checked in O(m) comparisons; only a check that fails sorts it all. The
 * hint never changes the outcome, only how fast it is found. by_rank has
 * room for n entries. */
static size_t rank_best(const struct policy *p, const struct rank_ctx *ctx, size_t n, const int *hint, size_t *by_rank,
                        double *metric, size_t *idx)
{
        size_t m = 0, k = 0, extra = 0;

        if (hint)
                for (size_t i = 0; i < n; i++)
                        by_rank[i] = SIZE_MAX;
        for (size_t i = 0; i < n; i++) {
                if (!is_ranked(p, &ctx->c[i]))
                        continue;
                m++;
                if (metric)
                        metric[i] = ctx->c[i].metric;
                if (hint && hint[i] >= 1 && (size_t)hint[i] <= n && by_rank[hint[i] - 1] == SIZE_MAX)
                        by_rank[hint[i] - 1] = i;
                else
                        idx[n - ++extra] = i; /* at the end, taken lowest first below */
        }
        if (!hint || extra > RANK_HINT_INSERT_MAX) {
                for (size_t i = 0; i < n; i++)
                        if (is_ranked(p, &ctx->c[i]))
                                idx[k++] = i;
                qsort_r(idx, m, sizeof(*idx), best_cmp, (void *)ctx);
                return m;
        }
        for (size_t r = 0; r < n; r++)
                if (by_rank[r] != SIZE_MAX)
                        idx[k++] = by_rank[r];
        if (!best_sorted(ctx, idx, k, metric))
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
        return m;
}

/* Ranks with index arrays, O(n log n); O(n) when hint (see rank_best())
 * and the order of c (scan's, oldest first) already give the orders. */
static void rank_sorted(const struct policy *p, struct ckpt *c, size_t n, const int *hint, size_t *idx, size_t *tmp,
                        double *metric)
{
        struct rank_ctx ctx = {.c = c, .mode = p->mode};
        size_t m = 0;

        if (has_monitor(p)) {
                m = rank_best(p, &ctx, n, hint, tmp, metric, idx);
                /* Rank all of them, beyond k too: the floor evicts by rank. */
                for (size_t j = 0; j < m; j++) {
                        c[idx[j]].verdict.best_rank = (int)(j + 1);
                        if (keeps_best(p, (int)(j + 1)))
                                c[idx[j]].verdict.reasons |= BIT(KEEP_BEST);
                }
        }

        if (p->keep_last > 0) {
                m = 0;
                /* newest first: the reverse of scan's order, checked */
                for (size_t i = n; i-- > 0;)
                        if (is_settled(&c[i]))
                                idx[m++] = i;
                if (!is_sorted_idx(idx, m, newest_cmp, c))
                        qsort_r(idx, m, sizeof(*idx), newest_cmp, c);
                for (size_t j = 0; j < m && j < (size_t)p->keep_last; j++)
                        c[idx[j]].verdict.reasons |= BIT(KEEP_LAST);
        }
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
 * costs at most one more kept checkpoint per run, none when it is also the
 * newest by order. Only a strictly latest completion counts: checkpoints
 * completed at the same instant (restored from a backup, copied with cp -p)
 * say nothing about which is newer, and the order decides alone.
 * Completion is told by the newest mtime of the checkpoint's files, all
 * stamped by one clock: the daemon's own ages count from when it first saw
 * each one, and a scan taking longer than the gap between two saves would
 * reorder them. A clock stepped back between saves can make an older one
 * the latest written: one more kept checkpoint, never one less. O(n). */
static void keep_newest_written(struct ckpt *c, size_t n)
{
        size_t best = SIZE_MAX;
        int64_t best_mtime = 0;
        bool tie = false;

        for (size_t i = 0; i < n; i++) {
                int64_t mtime;

                if (!is_settled(&c[i]))
                        continue;
                mtime = c[i].mtime_usec;
                if (best == SIZE_MAX || mtime > best_mtime) {
                        best = i;
                        best_mtime = mtime;
                        tie = false;
                } else if (mtime == best_mtime) {
                        tie = true;
                }
        }
        /* named only where no other rule keeps it: -l then says why */
        if (best != SIZE_MAX && !tie && c[best].verdict.reasons == 0)
                c[best].verdict.reasons |= BIT(KEEP_WRITTEN);
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

static void decide(const struct policy *p, struct ckpt *c, size_t n, int64_t now_usec, const int *hint, size_t *idx,
                   size_t *tmp, double *metric)
{
        for (size_t i = 0; i < n; i++) {
                struct verdict *v = &c[i].verdict;

                *v = (struct verdict){.delete_reason = DELETE_NONE};
                /* Fail closed: a read it depends on failed (its pins, its
                 * metric, its tree, its run), so nobody knows whether a rule
                 * would keep it. */
                if (c[i].read_error != 0)
                        v->reasons |= BIT(KEEP_UNREADABLE);
                /* Still being written: invisible to the policy, so it gets
                 * no other reason and no place among best or last. */
                if (!c[i].complete) {
                        v->reasons |= BIT(KEEP_INCOMPLETE);
                        continue;
                }
                if (is_every(p, &c[i]))
                        v->reasons |= BIT(KEEP_EVERY);
                if (c[i].pins != 0)
                        v->reasons |= BIT(KEEP_PINNED);
                if (is_young(p, &c[i], now_usec))
                        v->reasons |= BIT(KEEP_YOUNG);
        }

        if (idx)
                rank_sorted(p, c, n, hint, idx, tmp, metric);
        else
                rank_quadratic(p, c, n);
        keep_newest_written(c, n);
        keep_if_monitor_missing(p, c, n);

        for (size_t i = 0; i < n; i++) {
                struct verdict *v = &c[i].verdict;

                v->keep = v->reasons != 0;
                v->delete_reason = v->keep ? DELETE_NONE : DELETE_POLICY;
        }
}

/* Test seam: the allocation-free path, so check_policy can compare it with
 * the sorted one. Deliberately not in policy.h. */
void policy_decide_quadratic(const struct policy *p, struct ckpt *c, size_t n, int64_t now_usec);

void policy_decide_quadratic(const struct policy *p, struct ckpt *c, size_t n, int64_t now_usec)
{
        decide(p, c, n, now_usec, NULL, NULL, NULL, NULL);
}

void policy_decide(const struct policy *p, struct ckpt *c, size_t n, int64_t now_usec)
{
        _cleanup_free_ size_t *idx = NULL;
        _cleanup_free_ double *metric = NULL;
        _cleanup_free_ int *hint = NULL;

        if (n == 0)
                return;
        /* idx and by_rank, and the metrics, for rank_best(); the last ranks */
        idx = calloc(2 * n, sizeof(*idx));
        metric = calloc(n, sizeof(*metric));
        hint = calloc(n, sizeof(*hint));
        if (!idx || !metric || !hint) {
                decide(p, c, n, now_usec, NULL, NULL, NULL, NULL);
                return;
        }
        for (size_t i = 0; i < n; i++)
                hint[i] = c[i].verdict.best_rank;
        decide(p, c, n, now_usec, hint, idx, idx + n, metric);
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
