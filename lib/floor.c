/* Pure free-space floor: floor and target in bytes, and which kept
 * checkpoints to evict, worst first (DESIGN "Free-space floor").
 *
 * Worst first means: unranked ones (kept only for last, every or young, with
 * no metric or no monitor: nothing says they are good) before any ranked one;
 * then the highest best_rank, so that the k-th best of every run goes before
 * any run loses its (k-1)-th; then the older; then by run id and index, so
 * the choice never depends on qsort. Never evicted: the best ranked and the
 * newest complete kept checkpoint of each run (what a trainer resumes from:
 * the newest by order, and the last one written when that is another, as
 * after a restart into an old run's directory), pinned ones and incomplete
 * ones. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "floor.h"
#include "macro.h"

#define BIT(p) (1u << (p))

/* 2^64 as a double: the first value a uint64_t cannot hold. */
#define UINT64_LIMIT 18446744073709551616.0

static uint64_t add_sat(uint64_t a, uint64_t b)
{
        uint64_t r;

        return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
        return a > b ? a : b;
}

/* A NaN order sorts below every number: it counts as the oldest. */
static int double_cmp(double a, double b)
{
        bool na = isnan(a), nb = isnan(b);

        if (na || nb)
                return (int)nb - (int)na;
        return (a > b) - (a < b);
}

static int size_cmp(size_t a, size_t b)
{
        return (a > b) - (a < b);
}

uint64_t floor_bytes(uint64_t min_free_bytes, double headroom, uint64_t largest_bytes)
{
        double want;

        /* !(x > 0) also catches NaN. */
        if (!(headroom > 0))
                return min_free_bytes;
        /* Rounded up: the next save needs the whole checkpoint. */
        want = ceil(headroom * (double)largest_bytes);
        if (want >= UINT64_LIMIT)
                return UINT64_MAX;
        return max_u64(min_free_bytes, (uint64_t)want);
}

uint64_t floor_target(uint64_t level_bytes, uint64_t target_free_bytes)
{
        /* A target below the floor would stop evicting while still below
         * the floor; clamp it. */
        return max_u64(level_bytes, target_free_bytes);
}

void floor_state_init(struct floor_state *ret, uint64_t free_bytes, uint64_t min_free_bytes, uint64_t target_free_bytes,
                      double headroom, uint64_t largest_bytes)
{
        uint64_t level = floor_bytes(min_free_bytes, headroom, largest_bytes);

        *ret = (struct floor_state){
                .free_bytes = free_bytes,
                .floor_bytes = level,
                .target_bytes = floor_target(level, target_free_bytes),
        };
}

bool floor_needed(const struct floor_state *st)
{
        return st->free_bytes < st->floor_bytes;
}

uint64_t floor_largest(const struct floor_cand *c, size_t n, uint64_t seen_bytes)
{
        for (size_t i = 0; i < n; i++)
                if (c[i].complete)
                        seen_bytes = max_u64(seen_bytes, c[i].bytes);
        return seen_bytes;
}

void floor_cand_from_ckpt(struct floor_cand *ret, size_t run, const struct ckpt *c)
{
        *ret = (struct floor_cand){
                .run = run,
                .best_rank = c->verdict.best_rank,
                .order = c->order,
                .mtime_usec = c->mtime_usec,
                .seen_usec = c->age_known ? c->seen_same_usec : 0,
                .bytes = c->size_bytes,
                .kept = c->verdict.keep,
                /* one that could not be read is protected like a pinned one:
                 * its pins are unknown */
                .pinned = c->pins != 0 || (c->verdict.reasons & (1u << KEEP_UNREADABLE)),
                .unreadable = c->read_error != 0,
                .seen_future = c->age_known && c->seen_future,
                .complete = c->complete,
                .linked = c->linked,
        };
}

/* By run, newest first within a run. */
static int run_newest_cmp(const void *x, const void *y, void *userdata)
{
        const struct floor_cand *c = userdata;
        size_t a = *(const size_t *)x, b = *(const size_t *)y;
        int r;

        r = size_cmp(c[a].run, c[b].run);
        if (r != 0)
                return r;
        r = -double_cmp(c[a].order, c[b].order);
        if (r != 0)
                return r;
        return size_cmp(a, b);
}

/* Worst first; see the top of the file. */
static int evict_cmp(const void *x, const void *y, void *userdata)
{
        const struct floor_cand *c = userdata;
        size_t a = *(const size_t *)x, b = *(const size_t *)y;
        bool ua = c[a].best_rank <= 0, ub = c[b].best_rank <= 0;
        int r;

        if (ua != ub)
                return ua ? -1 : 1;
        if (!ua) {
                r = -(c[a].best_rank > c[b].best_rank) + (c[a].best_rank < c[b].best_rank);
                if (r != 0)
                        return r;
        }
        r = double_cmp(c[a].order, c[b].order);
        if (r != 0)
                return r;
        r = size_cmp(c[a].run, c[b].run);
        if (r != 0)
                return r;
        return size_cmp(a, b);
}

static bool kept_complete(const struct floor_cand *c)
{
        return c->kept && c->complete;
}

/* Protection bits of c[i] other than BEST and NEWEST, which need the whole
 * run. */
static unsigned protect_own(const struct floor_cand *c)
{
        unsigned why = 0;

        if (!c->kept)
                return 0;
        if (!c->complete)
                why |= BIT(FLOOR_PROTECT_INCOMPLETE);
        if (c->pinned)
                why |= BIT(FLOOR_PROTECT_PINNED);
        if (c->linked)
                why |= BIT(FLOOR_PROTECT_LINKED);
        if (c->unfloored)
                why |= BIT(FLOOR_PROTECT_UNFLOORED);
        return why;
}

/* The end of the run that starts at idx[s] (idx sorted by run_newest_cmp). */
static size_t run_end(const struct floor_cand *c, const size_t *idx, size_t s, size_t m)
{
        size_t e = s + 1;

        while (e < m && c[idx[e]].run == c[idx[s]].run)
                e++;
        return e;
}

size_t floor_best(const struct floor_cand *c, const size_t *idx, size_t n)
{
        size_t best = SIZE_MAX;

        for (size_t j = 0; j < n; j++) {
                const struct floor_cand *k = &c[idx[j]];

                if (kept_complete(k) && k->best_rank > 0 && (best == SIZE_MAX || k->best_rank < c[best].best_rank))
                        best = idx[j];
        }
        return best;
}

/* c[i] in the running for *at, the newest mtime so far of its kind: it
 * takes the place, or a tie (the same mtime) sets *tie. */
static void newest_of(const struct floor_cand *c, size_t i, size_t *at, bool *tie)
{
        if (*at == SIZE_MAX || c[i].mtime_usec > c[*at].mtime_usec) {
                *at = i;
                *tie = false;
        } else if (c[i].mtime_usec == c[*at].mtime_usec) {
                *tie = true;
        }
}

size_t floor_last_written(const struct floor_cand *c, const size_t *idx, size_t n)
{
        size_t last = SIZE_MAX;
        bool tie = false;

        for (size_t j = 0; j < n; j++) {
                const struct floor_cand *k = &c[idx[j]];

                /* the policy's set (settled: complete and readable), of
                 * believed mtimes */
                if (kept_complete(k) && !k->unreadable && !k->seen_future)
                        newest_of(c, idx[j], &last, &tie);
        }
        return tie ? SIZE_MAX : last;
}

/* Of idx[0..n), the newest whose mtime a daemon saw in the future and does
 * not believe, while it is of the last look that saw a settled one
 * (SIZE_MAX: none, or a tie), as the policy keeps it (lib/policy.c). */
static size_t floor_last_future(const struct floor_cand *c, const size_t *idx, size_t n)
{
        size_t last = SIZE_MAX;
        uint64_t look = 0;
        bool tie = false;

        for (size_t j = 0; j < n; j++) {
                const struct floor_cand *k = &c[idx[j]];

                if (!kept_complete(k) || k->unreadable || k->seen_usec == 0 || k->seen_usec < look)
                        continue;
                if (k->seen_usec > look) {
                        look = k->seen_usec;
                        last = SIZE_MAX;
                        tie = false;
                }
                if (k->seen_future)
                        newest_of(c, idx[j], &last, &tie);
        }
        return tie ? SIZE_MAX : last;
}

/* Walks idx[0..m) sorted by run_newest_cmp and tells, for each position,
 * whether it is the newest of its run. Equal top orders are all newest: the
 * floor has no name to break the tie with, and keeping one too many is the
 * safe side. */
struct newest_walk {
        bool started;
        size_t run;
        double top;
};

static bool newest_next(struct newest_walk *w, const struct floor_cand *c)
{
        if (!w->started || c->run != w->run) {
                *w = (struct newest_walk){.started = true, .run = c->run, .top = c->order};
                return true;
        }
        return double_cmp(c->order, w->top) == 0;
}

/* The places of one run, idx[s..e) of a walk sorted by run_newest_cmp, its
 * kept complete checkpoints: the best rank among them (0: none ranked) and
 * its last written (SIZE_MAX: none). The best rank is not necessarily 1:
 * the ranks were given before the policy deleted what it does not keep
 * (keep_top_k 0, or fewer than the ranked), and the best of what is left is
 * the run's best now. */
struct run_places {
        int best;
        size_t written, future;
};

static struct run_places run_places(const struct floor_cand *c, const size_t *idx, size_t s, size_t e)
{
        size_t b = floor_best(c, idx + s, e - s);

        return (struct run_places){.best = b == SIZE_MAX ? 0 : c[b].best_rank,
                                   .written = floor_last_written(c, idx + s, e - s),
                                   .future = floor_last_future(c, idx + s, e - s)};
}

/* The places c[i], next in the walk, holds in its run: NEWEST (by order, or
 * the last written) and BEST. Called for every one of the walk, in order. */
static unsigned place_of(const struct floor_cand *c, size_t i, const struct run_places *p, struct newest_walk *walk)
{
        unsigned why = 0;

        if (newest_next(walk, &c[i]) || i == p->written || i == p->future)
                why |= BIT(FLOOR_PROTECT_NEWEST);
        if (p->best > 0 && c[i].best_rank == p->best)
                why |= BIT(FLOOR_PROTECT_BEST);
        return why;
}

int floor_protect(const struct floor_cand *c, size_t n, unsigned *ret_why)
{
        struct newest_walk walk = {.started = false};
        size_t *idx, m = 0;

        if (n == 0)
                return 0;
        if (!c || !ret_why)
                return -EINVAL;
        idx = malloc(n * sizeof(*idx));
        if (!idx)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                ret_why[i] = protect_own(&c[i]);
                if (kept_complete(&c[i]))
                        idx[m++] = i;
        }
        qsort_r(idx, m, sizeof(*idx), run_newest_cmp, (void *)c);
        for (size_t s = 0, e; s < m; s = e) {
                struct run_places p;

                e = run_end(c, idx, s, m);
                p = run_places(c, idx, s, e);
                for (size_t j = s; j < e; j++)
                        ret_why[idx[j]] |= place_of(c, idx[j], &p, &walk);
        }

        free(idx);
        return 0;
}

size_t floor_evictable(const struct floor_cand *c, size_t n, size_t *ret)
{
        struct newest_walk walk = {.started = false};
        size_t m = 0, w = 0;

        /* The newest of a run is found among all its kept complete ones,
         * pinned and best included, so collect those first... */
        for (size_t i = 0; i < n; i++)
                if (kept_complete(&c[i]))
                        ret[m++] = i;
        /* Skipping a sort of fewer than two also keeps a NULL ret (n == 0)
         * away from qsort_r, whose base is declared nonnull. */
        if (m > 1)
                qsort_r(ret, m, sizeof(*ret), run_newest_cmp, (void *)c);

        /* ...then drop the protected ones in place (w <= j always). */
        for (size_t s = 0, e; s < m; s = e) {
                struct run_places p;

                e = run_end(c, ret, s, m);
                p = run_places(c, ret, s, e);
                for (size_t j = s; j < e; j++) {
                        size_t i = ret[j];

                        if (place_of(c, i, &p, &walk) == 0 && protect_own(&c[i]) == 0)
                                ret[w++] = i;
                }
        }
        if (w > 1)
                qsort_r(ret, w, sizeof(*ret), evict_cmp, (void *)c);
        return w;
}

int floor_victims(const struct floor_state *st, const struct floor_cand *c, size_t n, size_t *ret_victims,
                  size_t *ret_n_victims, uint64_t *ret_short_bytes)
{
        uint64_t target, reach, all;
        size_t m, k = 0;

        if (!st || !ret_n_victims || (n > 0 && (!c || !ret_victims)))
                return -EINVAL;
        *ret_n_victims = 0;
        if (ret_short_bytes)
                *ret_short_bytes = 0;
        if (!floor_needed(st))
                return 0;
        m = floor_evictable(c, n, ret_victims);

        all = st->free_bytes;
        for (size_t j = 0; j < m; j++)
                all = add_sat(all, c[ret_victims[j]].bytes);

        /* Evicting everything still leaves us below the floor: free what we
         * can and say how much is missing. The floor, not the target,
         * decides "unmet". */
        if (all < st->floor_bytes) {
                *ret_n_victims = m;
                if (ret_short_bytes)
                        *ret_short_bytes = st->floor_bytes - all;
                return 1;
        }

        target = floor_target(st->floor_bytes, st->target_bytes);
        reach = st->free_bytes;
        while (k < m && reach < target)
                reach = add_sat(reach, c[ret_victims[k++]].bytes);
        *ret_n_victims = k;
        return 0;
}

static const char *const floor_protect_table[_FLOOR_PROTECT_MAX] = {
        [FLOOR_PROTECT_BEST] = "best",          [FLOOR_PROTECT_NEWEST] = "newest",
        [FLOOR_PROTECT_PINNED] = "pinned",      [FLOOR_PROTECT_INCOMPLETE] = "incomplete",
        [FLOOR_PROTECT_LINKED] = "hard-linked", [FLOOR_PROTECT_UNFLOORED] = "no-floor",
};

const char *floor_protect_to_string(enum floor_protect p)
{
        return (unsigned)p < ELEMENTSOF(floor_protect_table) ? floor_protect_table[p] : NULL;
}
