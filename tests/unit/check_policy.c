/* The retention policy: which checkpoints of one run are kept, and why. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "policy.h"

Suite *policy_suite(void);
/* lib/policy.c's allocation-free path, not in policy.h on purpose. */
void policy_decide_quadratic(const struct policy *p, struct ckpt *c, size_t n, int64_t now_usec);

#define NOW_USEC ((int64_t)1700000000 * (int64_t)USEC_PER_SEC)
#define R(r) (1u << (r))

static void mk(struct ckpt *c, const char *name, double order, bool has_metric, double metric)
{
        memset(c, 0, sizeof(*c));
        c->name = (char *)name;
        c->order_source = ORDER_STEP;
        c->order = order;
        c->has_metric = has_metric;
        c->metric = metric;
        c->complete = true;
        c->size_bytes = 1;
        c->mtime_usec = NOW_USEC - 3600 * (int64_t)USEC_PER_SEC;
}

static struct policy pol(const char *monitor, enum mode mode, int k, int last)
{
        return (struct policy){
                .monitor = (char *)monitor,
                .mode = mode,
                .keep_top_k = k,
                .keep_last = last,
        };
}

static size_t count_kept(const struct ckpt *c, size_t n)
{
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                k += c[i].verdict.keep;
        return k;
}

static void assert_deleted(const struct ckpt *c)
{
        ck_assert(!c->verdict.keep);
        ck_assert_uint_eq(c->verdict.reasons, 0);
        ck_assert_int_eq(c->verdict.delete_reason, DELETE_POLICY);
}

static void assert_kept(const struct ckpt *c, unsigned reasons)
{
        ck_assert(c->verdict.keep);
        ck_assert_uint_eq(c->verdict.reasons, reasons);
        ck_assert_int_eq(c->verdict.delete_reason, DELETE_NONE);
}

/* The incident: 47 epochs, top 3 by val_loss + last keeps 4 checkpoints. */
START_TEST(test_design_incident)
{
        struct ckpt c[47];
        struct policy p = pol("val_loss", MODE_MIN, 3, 1);

        for (int e = 0; e < 47; e++)
                mk(&c[e], NULL, e, true, 1.0 + e);
        c[10].metric = 0.1;
        c[20].metric = 0.2;
        c[30].metric = 0.3;
        policy_decide(&p, c, 47, NOW_USEC);

        ck_assert_uint_eq(count_kept(c, 47), 4);
        assert_kept(&c[10], R(KEEP_BEST));
        assert_kept(&c[20], R(KEEP_BEST));
        assert_kept(&c[30], R(KEEP_BEST));
        assert_kept(&c[46], R(KEEP_LAST));
        ck_assert_int_eq(c[10].verdict.best_rank, 1);
        ck_assert_int_eq(c[20].verdict.best_rank, 2);
        ck_assert_int_eq(c[30].verdict.best_rank, 3);
        /* Ranked beyond k as well: the floor evicts by rank. */
        ck_assert_int_eq(c[0].verdict.best_rank, 4);
        ck_assert_int_eq(c[46].verdict.best_rank, 47);
        assert_deleted(&c[0]);
        assert_deleted(&c[45]);
}
END_TEST

/* Every applicable reason is set: best AND last AND pinned. */
START_TEST(test_all_reasons)
{
        struct ckpt c[3];
        struct policy p = pol("val_loss", MODE_MIN, 1, 1);

        mk(&c[0], "a", 1, true, 0.5);
        mk(&c[1], "b", 2, true, 0.4);
        mk(&c[2], "c", 3, true, 0.1);
        c[2].pins = R(PIN_SYMLINK) | R(PIN_POINTER);
        p.keep_every = 3;
        p.min_age_sec = 7200;
        policy_decide(&p, c, 3, NOW_USEC);

        assert_kept(&c[2], R(KEEP_BEST) | R(KEEP_LAST) | R(KEEP_PINNED) | R(KEEP_EVERY) | R(KEEP_YOUNG));
        assert_kept(&c[0], R(KEEP_YOUNG));
        assert_kept(&c[1], R(KEEP_YOUNG));
}
END_TEST

/* Equal metrics: the older (lower order) ranks first, whatever the array order. */
START_TEST(test_ties)
{
        struct ckpt c[4];
        struct policy p = pol("val_loss", MODE_MIN, 2, 0);

        mk(&c[0], "s3", 3, true, 0.5);
        mk(&c[1], "s1", 1, true, 0.5);
        mk(&c[2], "s2", 2, true, 0.5);
        mk(&c[3], "s4", 4, true, 0.6);
        policy_decide(&p, c, 4, NOW_USEC);

        ck_assert_int_eq(c[1].verdict.best_rank, 1);
        ck_assert_int_eq(c[2].verdict.best_rank, 2);
        ck_assert_int_eq(c[0].verdict.best_rank, 3);
        ck_assert_int_eq(c[3].verdict.best_rank, 4);
        assert_kept(&c[1], R(KEEP_BEST));
        assert_kept(&c[2], R(KEEP_BEST));
        assert_deleted(&c[0]);
        assert_deleted(&c[3]);
        /* The array is the caller's: nothing moved. */
        ck_assert_str_eq(c[0].name, "s3");
        ck_assert_str_eq(c[1].name, "s1");
}
END_TEST

START_TEST(test_ties_max)
{
        struct ckpt c[3];
        struct policy p = pol("acc", MODE_MAX, 1, 0);

        mk(&c[0], "s9", 9, true, 0.9);
        mk(&c[1], "s5", 5, true, 0.9);
        mk(&c[2], "s7", 7, true, 0.9);
        policy_decide(&p, c, 3, NOW_USEC);

        ck_assert_int_eq(c[1].verdict.best_rank, 1);
        ck_assert_int_eq(c[2].verdict.best_rank, 2);
        ck_assert_int_eq(c[0].verdict.best_rank, 3);
        ck_assert_uint_eq(count_kept(c, 3), 1);
        ck_assert(c[1].verdict.keep);
}
END_TEST

/* NaN and missing rank after every number: unranked, and never best. */
START_TEST(test_nan_missing)
{
        struct ckpt c[5];
        int ks[] = { 3, 5, -1 };

        for (size_t t = 0; t < ELEMENTSOF(ks); t++) {
                struct policy p = pol("val_loss", MODE_MIN, ks[t], 0);

                mk(&c[0], "a", 1, true, 0.3);
                mk(&c[1], "b", 2, true, NAN);
                mk(&c[2], "c", 3, false, 0.0);
                mk(&c[3], "d", 4, true, 0.1);
                mk(&c[4], "e", 5, true, 0.2);
                policy_decide(&p, c, 5, NOW_USEC);

                ck_assert_int_eq(c[3].verdict.best_rank, 1);
                ck_assert_int_eq(c[4].verdict.best_rank, 2);
                ck_assert_int_eq(c[0].verdict.best_rank, 3);
                ck_assert_int_eq(c[1].verdict.best_rank, 0);
                ck_assert_int_eq(c[2].verdict.best_rank, 0);
                assert_kept(&c[0], R(KEEP_BEST));
                assert_kept(&c[3], R(KEEP_BEST));
                assert_kept(&c[4], R(KEEP_BEST));
                assert_deleted(&c[1]);
                assert_deleted(&c[2]);
        }
}
END_TEST

/* Infinities are numbers: -inf is the best loss, +inf ranks before NaN. */
START_TEST(test_infinity)
{
        struct ckpt c[4];
        struct policy p = pol("val_loss", MODE_MIN, -1, 0);

        mk(&c[0], "a", 1, true, INFINITY);
        mk(&c[1], "b", 2, true, NAN);
        mk(&c[2], "c", 3, true, -INFINITY);
        mk(&c[3], "d", 4, true, 1.0);
        policy_decide(&p, c, 4, NOW_USEC);

        ck_assert_int_eq(c[2].verdict.best_rank, 1);
        ck_assert_int_eq(c[3].verdict.best_rank, 2);
        ck_assert_int_eq(c[0].verdict.best_rank, 3);
        ck_assert_int_eq(c[1].verdict.best_rank, 0);
        ck_assert_uint_eq(count_kept(c, 4), 3);
}
END_TEST

START_TEST(test_keep_all_ranked)
{
        struct ckpt c[6];
        struct policy p = pol("val_loss", MODE_MIN, -1, 0);

        for (int i = 0; i < 6; i++)
                mk(&c[i], NULL, i, true, 6 - i);
        policy_decide(&p, c, 6, NOW_USEC);

        for (int i = 0; i < 6; i++) {
                assert_kept(&c[i], R(KEEP_BEST));
                ck_assert_int_eq(c[i].verdict.best_rank, 6 - i);
        }
}
END_TEST

START_TEST(test_k_larger_than_n)
{
        struct ckpt c[4];
        struct policy p = pol("val_loss", MODE_MIN, 10, 0);

        for (int i = 0; i < 4; i++)
                mk(&c[i], NULL, i, true, i);
        policy_decide(&p, c, 4, NOW_USEC);

        for (int i = 0; i < 4; i++) {
                assert_kept(&c[i], R(KEEP_BEST));
                ck_assert_int_eq(c[i].verdict.best_rank, i + 1);
        }
}
END_TEST

/* k = 0: best keeps nothing but ranks are still given (the floor uses them). */
START_TEST(test_k_zero_with_last)
{
        struct ckpt c[5];
        struct policy p = pol("val_loss", MODE_MIN, 0, 2);

        for (int i = 0; i < 5; i++)
                mk(&c[i], NULL, 10 * i, true, 0.1 * i);
        policy_decide(&p, c, 5, NOW_USEC);

        for (int i = 0; i < 5; i++)
                ck_assert_int_eq(c[i].verdict.best_rank, i + 1);
        assert_deleted(&c[0]);
        assert_deleted(&c[1]);
        assert_deleted(&c[2]);
        assert_kept(&c[3], R(KEEP_LAST));
        assert_kept(&c[4], R(KEEP_LAST));
}
END_TEST

/* Newest by order whatever the array order; ties by mtime, then name. */
START_TEST(test_last)
{
        struct ckpt c[5];
        struct policy p = pol(NULL, MODE_MIN, 0, 2);

        mk(&c[0], "s50", 50, false, 0);
        mk(&c[1], "s40", 40, false, 0);
        mk(&c[2], "s10", 10, false, 0);
        mk(&c[3], "s30", 30, false, 0);
        mk(&c[4], "s20", 20, false, 0);
        policy_decide(&p, c, 5, NOW_USEC);

        assert_kept(&c[0], R(KEEP_LAST));
        assert_kept(&c[1], R(KEEP_LAST));
        assert_deleted(&c[2]);
        assert_deleted(&c[3]);
        assert_deleted(&c[4]);

        /* A NaN order (a "nan" step in a name) counts as the oldest. */
        mk(&c[0], "snan", NAN, false, 0);
        mk(&c[1], "s1", 1, false, 0);
        mk(&c[2], "s0", 0, false, 0);
        p.keep_last = 1;
        policy_decide(&p, c, 3, NOW_USEC);
        assert_deleted(&c[0]);
        assert_kept(&c[1], R(KEEP_LAST));
        assert_deleted(&c[2]);

        /* keep_last larger than the run keeps all of it. */
        for (int i = 0; i < 3; i++)
                mk(&c[i], NULL, i, false, 0);
        p.keep_last = 99;
        policy_decide(&p, c, 5, NOW_USEC);
        ck_assert_uint_eq(count_kept(c, 5), 5);
}
END_TEST

START_TEST(test_last_ties)
{
        struct ckpt c[3];
        struct policy p = pol(NULL, MODE_MIN, 0, 1);

        /* Same order: the later mtime is the newer. */
        mk(&c[0], "x", 7, false, 0);
        mk(&c[1], "y", 7, false, 0);
        mk(&c[2], "z", 7, false, 0);
        c[0].mtime_usec = NOW_USEC - 10;
        c[1].mtime_usec = NOW_USEC - 30;
        c[2].mtime_usec = NOW_USEC - 20;
        policy_decide(&p, c, 3, NOW_USEC);
        ck_assert(c[0].verdict.keep);
        ck_assert_uint_eq(count_kept(c, 3), 1);

        /* Same order and mtime: the larger name, so repeated sweeps agree. */
        c[0].mtime_usec = c[1].mtime_usec = c[2].mtime_usec = NOW_USEC - 10;
        policy_decide(&p, c, 3, NOW_USEC);
        ck_assert(c[2].verdict.keep);
        ck_assert_uint_eq(count_kept(c, 3), 1);
}
END_TEST

START_TEST(test_every)
{
        struct ckpt c[13];
        struct policy p = pol(NULL, MODE_MIN, 0, 0);

        p.keep_every = 5;
        for (int i = 0; i < 13; i++)
                mk(&c[i], NULL, i, false, 0);
        c[12].order = 7.5;
        policy_decide(&p, c, 13, NOW_USEC);

        for (int i = 0; i < 12; i++) {
                if (i % 5 == 0)
                        assert_kept(&c[i], R(KEEP_EVERY));
                else
                        assert_deleted(&c[i]);
        }
        assert_deleted(&c[12]);

        /* Epoch order counts, mtime order (seconds) does not. */
        mk(&c[0], NULL, 10, false, 0);
        c[0].order_source = ORDER_EPOCH;
        mk(&c[1], NULL, 1700000000, false, 0);
        c[1].order_source = ORDER_MTIME;
        mk(&c[2], NULL, NAN, false, 0);
        policy_decide(&p, c, 3, NOW_USEC);
        assert_kept(&c[0], R(KEEP_EVERY));
        assert_deleted(&c[1]);
        assert_deleted(&c[2]);
}
END_TEST

START_TEST(test_pinned)
{
        struct ckpt c[3];
        struct policy p = pol("val_loss", MODE_MIN, 1, 0);

        mk(&c[0], "a", 1, true, 0.9);
        mk(&c[1], "b", 2, true, 0.1);
        mk(&c[2], "c", 3, true, 0.5);
        c[0].pins = R(PIN_KEEPFILE);
        policy_decide(&p, c, 3, NOW_USEC);

        assert_kept(&c[0], R(KEEP_PINNED));
        assert_kept(&c[1], R(KEEP_BEST));
        assert_deleted(&c[2]);
        ck_assert_int_eq(c[0].verdict.best_rank, 3);
}
END_TEST

START_TEST(test_young)
{
        struct ckpt c[5];
        struct policy p = pol(NULL, MODE_MIN, 0, 0);

        p.keep_every = 1000;
        p.min_age_sec = 60;
        for (int i = 0; i < 5; i++)
                mk(&c[i], NULL, i + 1, false, 0);
        c[0].mtime_usec = NOW_USEC - 59 * (int64_t)USEC_PER_SEC;
        c[1].mtime_usec = NOW_USEC - 60 * (int64_t)USEC_PER_SEC; /* not younger than 60 s */
        c[2].mtime_usec = NOW_USEC - 61 * (int64_t)USEC_PER_SEC;
        c[3].mtime_usec = NOW_USEC + 3600 * (int64_t)USEC_PER_SEC; /* clock stepped back */
        c[4].mtime_usec = INT64_MIN;
        policy_decide(&p, c, 5, NOW_USEC);

        assert_kept(&c[0], R(KEEP_YOUNG));
        assert_deleted(&c[1]);
        assert_deleted(&c[2]);
        assert_kept(&c[3], R(KEEP_YOUNG));
        assert_deleted(&c[4]);

        /* An mtime so far ahead that now - mtime overflows is young. */
        c[0].mtime_usec = INT64_MAX;
        policy_decide(&p, c, 1, INT64_MIN + 1);
        assert_kept(&c[0], R(KEEP_YOUNG));

        /* A min_age too large for microseconds keeps everything young. */
        p.min_age_sec = INT64_MAX / 2;
        policy_decide(&p, c, 5, NOW_USEC);
        ck_assert_uint_eq(count_kept(c, 5), 5);

        /* min_age 0: none is young; the latest written (c[0], mtime far
         * ahead) is kept for that alone. */
        p.min_age_sec = 0;
        policy_decide(&p, c, 5, NOW_USEC);
        ck_assert_uint_eq(count_kept(c, 5), 1);
        assert_kept(&c[0], R(KEEP_WRITTEN));
}
END_TEST

/* Incomplete ones are kept, and take no rank and no "last" slot. */
START_TEST(test_incomplete)
{
        struct ckpt c[4];
        struct policy p = pol("val_loss", MODE_MIN, 1, 1);

        mk(&c[0], "a", 1, true, 0.5);
        mk(&c[1], "b", 2, true, 0.4);
        mk(&c[2], "c", 3, true, 0.9);
        mk(&c[3], "d", 4, true, 0.01);
        c[3].complete = false;
        c[3].pins = R(PIN_FLOCK);
        policy_decide(&p, c, 4, NOW_USEC);

        assert_kept(&c[3], R(KEEP_INCOMPLETE));
        ck_assert_int_eq(c[3].verdict.best_rank, 0);
        assert_kept(&c[1], R(KEEP_BEST));
        ck_assert_int_eq(c[1].verdict.best_rank, 1);
        assert_kept(&c[2], R(KEEP_LAST));
        assert_deleted(&c[0]);
}
END_TEST

START_TEST(test_max_mode)
{
        struct ckpt c[4];
        struct policy p = pol("acc", MODE_MAX, 2, 0);

        mk(&c[0], NULL, 1, true, 0.7);
        mk(&c[1], NULL, 2, true, 0.9);
        mk(&c[2], NULL, 3, true, 0.8);
        mk(&c[3], NULL, 4, true, NAN);
        policy_decide(&p, c, 4, NOW_USEC);

        ck_assert_int_eq(c[0].verdict.best_rank, 3);
        ck_assert_int_eq(c[1].verdict.best_rank, 1);
        ck_assert_int_eq(c[2].verdict.best_rank, 2);
        ck_assert_int_eq(c[3].verdict.best_rank, 0);
        assert_deleted(&c[0]);
        assert_kept(&c[1], R(KEEP_BEST));
        assert_kept(&c[2], R(KEEP_BEST));
        assert_deleted(&c[3]);
}
END_TEST

/* Without a monitor best keeps nothing and ranks nothing; last still works. */
START_TEST(test_monitor_null)
{
        struct ckpt c[3];
        const char *monitors[] = { NULL, "" };

        for (size_t t = 0; t < ELEMENTSOF(monitors); t++) {
                struct policy p = pol(monitors[t], MODE_MIN, -1, 1);

                for (int i = 0; i < 3; i++)
                        mk(&c[i], NULL, i, true, i);
                policy_decide(&p, c, 3, NOW_USEC);
                for (int i = 0; i < 3; i++)
                        ck_assert_int_eq(c[i].verdict.best_rank, 0);
                assert_deleted(&c[0]);
                assert_deleted(&c[1]);
                assert_kept(&c[2], R(KEEP_LAST));
        }
}
END_TEST

/* A stale verdict from an earlier sweep is overwritten, not ORed into. */
START_TEST(test_verdict_reset)
{
        struct ckpt c[2];
        struct policy p = pol("val_loss", MODE_MIN, 1, 0);

        mk(&c[0], NULL, 1, true, 0.1);
        mk(&c[1], NULL, 2, false, 0);
        for (int i = 0; i < 2; i++)
                c[i].verdict = (struct verdict){ .keep = true, .reasons = (uint16_t)~0u, .best_rank = 99,
                                                 .delete_reason = DELETE_FLOOR };
        policy_decide(&p, c, 2, NOW_USEC);
        assert_kept(&c[0], R(KEEP_BEST));
        assert_deleted(&c[1]);
        ck_assert_int_eq(c[1].verdict.best_rank, 0);

        policy_decide(&p, NULL, 0, NOW_USEC);
}
END_TEST

static uint64_t lcg(uint64_t *s)
{
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        return *s >> 33;
}

/* Random runs with many ties, NaNs, missing metrics and incomplete ones. */
static void fill_random(struct ckpt *c, size_t n, uint64_t *seed, unsigned metric_values)
{
        for (size_t i = 0; i < n; i++) {
                uint64_t r = lcg(seed);

                mk(&c[i], NULL, (double)(lcg(seed) % (n / 2 + 1)), r % 11 != 0,
                   (double)(lcg(seed) % metric_values) / 8.0);
                if (r % 13 == 0)
                        c[i].metric = NAN;
                c[i].complete = r % 17 != 0;
                c[i].pins = r % 19 == 0 ? R(PIN_POINTER) : 0;
                c[i].mtime_usec = NOW_USEC - (int64_t)(lcg(seed) % 4) * (int64_t)USEC_PER_SEC;
        }
}

START_TEST(test_large)
{
        enum { N = 10000 };
        struct ckpt *c = calloc(N, sizeof(*c));
        int *by_rank = calloc(N + 1, sizeof(*by_rank));
        struct policy p = pol("val_loss", MODE_MIN, 50, 10);
        uint64_t seed = 42;
        size_t ranked = 0, best = 0, last = 0, incomplete = 0;
        double newest_dropped = -INFINITY, oldest_last = INFINITY;

        ck_assert_ptr_nonnull(c);
        ck_assert_ptr_nonnull(by_rank);
        fill_random(c, N, &seed, 1000);
        p.keep_every = 1000;
        policy_decide(&p, c, N, NOW_USEC);

        for (size_t i = 0; i < N; i++) {
                const struct verdict *v = &c[i].verdict;
                bool rankable = c[i].complete && c[i].has_metric && !isnan(c[i].metric);

                ck_assert_int_eq(v->best_rank > 0, rankable);
                if (v->best_rank > 0) {
                        ck_assert_int_le(v->best_rank, N);
                        ck_assert_int_eq(by_rank[v->best_rank], 0);
                        by_rank[v->best_rank] = (int)i + 1;
                        ranked++;
                }
                ck_assert_int_eq(v->keep, v->reasons != 0);
                best += !!(v->reasons & R(KEEP_BEST));
                last += !!(v->reasons & R(KEEP_LAST));
                incomplete += !c[i].complete;
                if (c[i].complete && (v->reasons & R(KEEP_LAST)) && c[i].order < oldest_last)
                        oldest_last = c[i].order;
                if (c[i].complete && !(v->reasons & R(KEEP_LAST)) && c[i].order > newest_dropped)
                        newest_dropped = c[i].order;
        }
        /* Ranks are 1..ranked without gaps, and in metric order. */
        for (size_t r = 1; r <= ranked; r++)
                ck_assert_int_ne(by_rank[r], 0);
        for (size_t r = 1; r < ranked; r++) {
                const struct ckpt *a = &c[by_rank[r] - 1], *b = &c[by_rank[r + 1] - 1];

                ck_assert(a->metric < b->metric || (a->metric == b->metric && a->order <= b->order));
        }
        ck_assert_uint_gt(ranked, 1000);
        ck_assert_uint_gt(incomplete, 0);
        ck_assert_uint_eq(best, 50);
        ck_assert_uint_eq(last, 10);
        ck_assert(oldest_last >= newest_dropped);
        free(by_rank);
        free(c);
}
END_TEST

/* The malloc-failure path gives the same verdicts as the sorted one. */
START_TEST(test_quadratic_same)
{
        enum { N = 700 };
        struct ckpt *a = calloc(N, sizeof(*a)), *b = calloc(N, sizeof(*b));
        uint64_t seed = 7;

        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        for (int round = 0; round < 8; round++) {
                struct policy p = pol("m", round % 2 ? MODE_MAX : MODE_MIN, round - 2, round % 3);
                size_t n = round == 0 ? 1 : N - (size_t)round * 50;

                p.keep_every = round % 4;
                fill_random(a, n, &seed, round == 7 ? 2 : 20);
                memcpy(b, a, n * sizeof(*a));
                policy_decide(&p, a, n, NOW_USEC);
                policy_decide_quadratic(&p, b, n, NOW_USEC);
                for (size_t i = 0; i < n; i++) {
                        ck_assert_int_eq(a[i].verdict.keep, b[i].verdict.keep);
                        ck_assert_uint_eq(a[i].verdict.reasons, b[i].verdict.reasons);
                        ck_assert_int_eq(a[i].verdict.best_rank, b[i].verdict.best_rank);
                        ck_assert_int_eq(a[i].verdict.delete_reason, b[i].verdict.delete_reason);
                }
        }
        free(a);
        free(b);
}
END_TEST

static int order_cmp(const void *x, const void *y)
{
        const struct ckpt *a = x, *b = y;

        return (a->order > b->order) - (a->order < b->order);
}

static void assert_same_verdicts(const struct ckpt *a, const struct ckpt *b, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                ck_assert_int_eq(a[i].verdict.keep, b[i].verdict.keep);
                ck_assert_uint_eq(a[i].verdict.reasons, b[i].verdict.reasons);
                ck_assert_int_eq(a[i].verdict.best_rank, b[i].verdict.best_rank);
                ck_assert_int_eq(a[i].verdict.delete_reason, b[i].verdict.delete_reason);
        }
}

/* A run decided again after a few saves, drops and changes, with the ranks
 * of its last decision still in its verdicts (as the daemon's index keeps
 * them), or with nonsense there: the verdicts are those of a run decided
 * from nothing. */
START_TEST(test_stale_ranks_same)
{
        enum { N = 3000 };
        struct ckpt *a = calloc(N, sizeof(*a)), *b = calloc(N, sizeof(*b));
        uint64_t seed = 99;

        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        for (int round = 0; round < 24; round++) {
                struct policy p = pol("m", round % 2 ? MODE_MAX : MODE_MIN, round % 5 - 1, round % 4 * 300);
                size_t n = N - (size_t)round * 100;

                fill_random(a, n, &seed, round % 3 ? 500 : 3);
                /* scan's order, oldest first, as the index holds it */
                if (round % 4 != 3)
                        qsort(a, n, sizeof(*a), order_cmp);
                policy_decide(&p, a, n, NOW_USEC);
                for (int step = 0; step < 6; step++) {
                        uint64_t r = lcg(&seed);
                        size_t at = (size_t)(lcg(&seed) % n);

                        switch ((r + (uint64_t)step) % 6) {
                        case 0: /* a save: a new one at the end, or more */
                                for (unsigned k = 0; k < 1 + r % (round % 8 == 0 ? 40 : 3); k++) {
                                        memmove(&a[at + 1], &a[at], (n - at - 1) * sizeof(*a));
                                        fill_random(&a[at], 1, &seed, 500);
                                        a[at].order = a[at > 0 ? at - 1 : at].order;
                                }
                                break;
                        case 1: /* one dropped: the last one takes its place */
                                a[at] = a[n - 1];
                                memset(&a[n - 1].verdict, 0, sizeof(a[n - 1].verdict));
                                break;
                        case 2: /* completeness and metrics change */
                                a[at].complete = !a[at].complete;
                                a[(at * 7) % n].metric = (double)(r % 500) / 8.0;
                                a[(at * 3) % n].read_error = r % 2 ? -EIO : 0;
                                break;
                        case 3: /* nonsense ranks */
                                for (size_t i = 0; i < n; i += 1 + r % 5)
                                        a[i].verdict.best_rank = (int)(lcg(&seed) % (2 * n + 3)) - 2;
                                break;
                        case 4: /* every rank off by one way or the other */
                                for (size_t i = 0; i < n; i++)
                                        a[i].verdict.best_rank += r % 2 ? 1 : -1;
                                break;
                        default:
                                /* as it was: the last decision's ranks */
                                break;
                        }
                        memcpy(b, a, n * sizeof(*a));
                        for (size_t i = 0; i < n; i++)
                                b[i].verdict = (struct verdict){};
                        policy_decide(&p, a, n, NOW_USEC);
                        policy_decide_quadratic(&p, b, n, NOW_USEC);
                        assert_same_verdicts(a, b, n);
                }
        }
        free(a);
        free(b);
}
END_TEST

/* Values that tie, sort oddly or are not numbers at all. */
static const double odd_values[] = {0.0, -0.0, 1.0, 1.0, 2.0, 2.5, -3.0, 1e300, INFINITY, -INFINITY, NAN, 7.0};
static const char *const odd_names[] = {"a", "b", "b", "c", "ckpt-10", "ckpt-9"};

static double pick_odd(uint64_t *seed)
{
        return odd_values[lcg(seed) % ELEMENTSOF(odd_values)];
}

/* One checkpoint drawn so that equal metrics, orders, mtimes and names are
 * common, with every kind of flag and a nonsense rank left in its verdict. */
static void fill_odd(struct ckpt *c, uint64_t *seed, size_t n)
{
        uint64_t r = lcg(seed), s = lcg(seed);

        memset(c, 0, sizeof(*c));
        c->name = r % 7 == 0 ? NULL : (char *)odd_names[lcg(seed) % ELEMENTSOF(odd_names)];
        c->order_source = (uint8_t)(s % 3);
        c->order = s % 5 == 0 ? pick_odd(seed) : (double)(lcg(seed) % (n / 2 + 2));
        c->has_metric = r % 5 != 0;
        c->metric = r % 3 == 0 ? pick_odd(seed) : (double)(lcg(seed) % 4);
        c->complete = r % 9 != 0;
        c->read_error = r % 11 == 0 ? -EIO : 0;
        c->pins = r % 13 == 0 ? R(PIN_KEEPFILE) : 0;
        /* the extremes: now - mtime overflows both ways */
        if (s % 17 == 0)
                c->mtime_usec = INT64_MIN;
        else if (s % 17 == 1)
                c->mtime_usec = INT64_MAX;
        else
                c->mtime_usec = NOW_USEC - (int64_t)(lcg(seed) % 4) * 1800 * (int64_t)USEC_PER_SEC;
        c->age_known = s % 4 == 0;
        c->age_usec = (int64_t)(lcg(seed) % 3) * 1800 * (int64_t)USEC_PER_SEC;
        c->verdict.best_rank = (int)(lcg(seed) % (n + 4)) - 2;
        c->verdict.reasons = (uint16_t)lcg(seed);
        c->verdict.keep = r % 2;
}

static struct policy random_policy(uint64_t *seed, size_t n)
{
        static const int ks[] = {-1, -7, 0, 1, 2, 3, INT_MAX};
        static const int64_t everies[] = {0, 0, 0, 1, 2, 3, -1, INT64_MAX};
        static const int64_t ages[] = {0, 0, 1, 3600, 5400, INT64_MAX, -1};
        static const char *const monitors[] = {"m", "m", "m", NULL, ""};
        struct policy p = {
                .monitor = (char *)monitors[lcg(seed) % ELEMENTSOF(monitors)],
                .mode = lcg(seed) % 2 ? MODE_MAX : MODE_MIN,
                .keep_top_k = ks[lcg(seed) % ELEMENTSOF(ks)],
                .keep_last = ks[lcg(seed) % ELEMENTSOF(ks)],
                .keep_every = everies[lcg(seed) % ELEMENTSOF(everies)],
                .min_age_sec = ages[lcg(seed) % ELEMENTSOF(ages)],
        };

        if (lcg(seed) % 4 == 0)
                p.keep_top_k = (int)(lcg(seed) % (n + 2));
        if (lcg(seed) % 4 == 0)
                p.keep_last = (int)(lcg(seed) % (n + 2));
        return p;
}

/* A change between two decisions, as the daemon's index sees them. */
static size_t mutate(struct ckpt *a, size_t n, size_t cap, uint64_t *seed)
{
        uint64_t r = lcg(seed);
        size_t at = n > 0 ? (size_t)(lcg(seed) % n) : 0;

        switch (r % 8) {
        case 0: /* a save: a new one at the end, with the last one's order */
        case 1: /* or anywhere */
                if (n == cap)
                        break;
                if (r % 8 == 0)
                        at = n;
                memmove(&a[at + 1], &a[at], (n - at) * sizeof(*a));
                fill_odd(&a[at], seed, n + 1);
                if (n > 0 && r % 3 == 0)
                        a[at].order = a[at > 0 ? at - 1 : at + 1].order;
                if (r % 5 == 0)
                        a[at].verdict = (struct verdict){};
                return n + 1;
        case 2: /* a few dropped, the rest moved up */
                for (unsigned k = 0; k < 1 + r % 3 && n > 0; k++, n--) {
                        at = (size_t)(lcg(seed) % n);
                        memmove(&a[at], &a[at + 1], (n - at - 1) * sizeof(*a));
                }
                return n;
        case 3: /* one dropped, the last one takes its place */
                if (n > 0)
                        a[at] = a[--n];
                return n;
        case 4: /* finished, or found to be written again */
                if (n > 0)
                        a[at].complete = !a[at].complete;
                return n;
        case 5: /* a metric changed, or appeared */
                if (n > 0) {
                        a[at].metric = r % 3 ? pick_odd(seed) : (double)(lcg(seed) % 4);
                        a[at].has_metric = r % 7 != 0;
                }
                return n;
        case 6: /* a read failed or recovered, a pin came or went */
                if (n > 0) {
                        a[at].read_error = a[at].read_error ? 0 : -EIO;
                        a[at].pins ^= R(PIN_SYMLINK);
                }
                return n;
        default: /* two swapped: ranks left by the last decision are stale */
                if (n > 1) {
                        struct ckpt t = a[at];
                        size_t o = (size_t)(lcg(seed) % n);

                        a[at] = a[o];
                        a[o] = t;
                }
                return n;
        }
        return n;
}

static int scan_order_cmp(const void *x, const void *y)
{
        const struct ckpt *a = x, *b = y;
        bool na = isnan(a->order), nb = isnan(b->order);

        if (na || nb)
                return (int)nb - (int)na;
        return (a->order > b->order) - (a->order < b->order);
}

/* Each ck_assert marks its point through the fork's pipe: checked first in
 * plain C, so that the many comparisons cost no system calls. */
static void assert_same_verdicts_msg(const struct ckpt *a, const struct ckpt *b, size_t n, unsigned long run, int step)
{
        for (size_t i = 0; i < n; i++) {
                const struct verdict *x = &a[i].verdict, *y = &b[i].verdict;

                if (x->keep == y->keep && x->reasons == y->reasons && x->best_rank == y->best_rank &&
                    x->delete_reason == y->delete_reason && x->keep == (x->reasons != 0) &&
                    x->delete_reason == (x->keep ? DELETE_NONE : DELETE_POLICY))
                        continue;
                ck_abort_msg("run %lu step %d n %zu at %zu: sorted keep %d reasons %#x rank %d delete %d, "
                             "quadratic keep %d reasons %#x rank %d delete %d",
                             run, step, n, i, x->keep, x->reasons, x->best_rank, x->delete_reason, y->keep, y->reasons,
                             y->best_rank, y->delete_reason);
        }
}

/* Many small random runs, each decided again after random changes with the
 * ranks of its last decision (or nonsense) in its verdicts, runs of very
 * different sizes one after the other: the sorted path gives every verdict
 * field exactly as the quadratic one. */
START_TEST(test_random_same)
{
        enum { CAP = 400, RUNS = 100000, STEPS = 8 };
        struct ckpt *a = calloc(CAP, sizeof(*a)), *b = calloc(CAP, sizeof(*b));
        uint64_t seed = 20261203;

        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        for (unsigned long run = 0; run < RUNS; run++) {
                uint64_t r = lcg(&seed);
                /* mostly small (the quadratic path is the reference), some
                 * empty or single, a few large to grow the scratch */
                size_t n = r % 200 == 0 ? 150 + (size_t)(lcg(&seed) % 150) : (size_t)(lcg(&seed) % (r % 3 ? 12 : 40));
                struct policy p = random_policy(&seed, n);

                for (size_t i = 0; i < n; i++)
                        fill_odd(&a[i], &seed, n);
                if (r % 3 != 0)
                        qsort(a, n, sizeof(*a), scan_order_cmp);
                for (int step = 0; step < STEPS; step++) {
                        if (step > 0) {
                                unsigned changes = 1 + (unsigned)(lcg(&seed) % 3);

                                for (unsigned k = 0; k < changes; k++)
                                        n = mutate(a, n, CAP, &seed);
                                if (lcg(&seed) % 4 == 0)
                                        qsort(a, n, sizeof(*a), scan_order_cmp);
                                if (lcg(&seed) % 10 == 0)
                                        p = random_policy(&seed, n);
                        }
                        memcpy(b, a, n * sizeof(*a));
                        policy_decide(&p, a, n, NOW_USEC);
                        policy_decide_quadratic(&p, b, n, NOW_USEC);
                        assert_same_verdicts_msg(a, b, n, run, step);
                }
        }
        free(a);
        free(b);
}
END_TEST

/* A run of the memo's shape between two decisions: its oldest ones pruned
 * as the daemon prunes what it deleted. */
static size_t prune_deleted(struct ckpt *a, size_t n)
{
        size_t w = 0;

        for (size_t i = 0; i < n; i++)
                if (a[i].verdict.keep)
                        a[w++] = a[i];
        return w;
}

static char memo_names[1u << 12][12];

/* A save as a trainer makes it: newer by order and by mtime, mostly; now
 * and then one the memo must refuse (an older order, the same mtime, no
 * metric, NaN, unsettled, another owner, a lying mtime). */
static void append_one(struct ckpt *a, size_t n, uint64_t *seed, unsigned *name_at, unsigned values)
{
        uint64_t r = lcg(seed);
        struct ckpt *c = &a[n];
        char *name = memo_names[(*name_at)++ % ELEMENTSOF(memo_names)];
        double last_order = n > 0 ? a[n - 1].order : 0;
        int64_t last_mtime = NOW_USEC;

        for (size_t i = 0; i < n; i++)
                if (a[i].mtime_usec > last_mtime)
                        last_mtime = a[i].mtime_usec;
        snprintf(name, sizeof(memo_names[0]), "c%08u", *name_at);
        mk(c, name, last_order + 1 + (double)(lcg(seed) % 3), true, (double)(lcg(seed) % values) / 4.0);
        c->mtime_usec = last_mtime + 1 + (int64_t)(lcg(seed) % 3);
        c->pins = r % 23 == 0 ? R(PIN_KEEPFILE) : 0;
        switch (r % 251) {
        case 0: c->order = last_order; break;
        case 1: c->mtime_usec = last_mtime; break;
        case 2: c->has_metric = false; break;
        case 3: c->metric = NAN; break;
        case 4: c->complete = false; break;
        case 5: c->uid = 1000; break;
        case 6: c->age_known = c->seen_future = true; break;
        case 7: c->read_error = -EIO; break;
        case 8: c->mtime_usec = last_mtime - 5; break;
        }
}

/* The memo's decision of the saves appended since the last decision gives
 * every verdict exactly as the quadratic decision of the whole run, and it
 * is taken for most saves (else this would test nothing), a run whose
 * newest share an mtime included. */
START_TEST(test_appended_same)
{
        enum { CAP = 128, RUNS = 20000, STEPS = 24 };
        static const int ks[] = {-1, 0, 1, 2, 3, 5, POLICY_MEMO_TOP_MAX + 1};
        static const int lasts[] = {0, 1, 2, 5};
        struct ckpt *a = calloc(CAP, sizeof(*a)), *b = calloc(CAP, sizeof(*b));
        uint64_t seed = 20261205;
        unsigned name_at = 0;
        unsigned long fast = 0, saves = 0;

        ck_assert_ptr_nonnull(a);
        ck_assert_ptr_nonnull(b);
        for (unsigned long run = 0; run < RUNS; run++) {
                struct policy p = {
                        .monitor = lcg(&seed) % 5 ? (char *)"m" : NULL,
                        .mode = lcg(&seed) % 2 ? MODE_MAX : MODE_MIN,
                        .keep_top_k = ks[lcg(&seed) % ELEMENTSOF(ks)],
                        .keep_last = lasts[lcg(&seed) % ELEMENTSOF(lasts)],
                        .keep_every = lcg(&seed) % 4 ? 0 : 3,
                        .min_age_sec = lcg(&seed) % 10 ? 0 : 3600,
                };
                unsigned values = lcg(&seed) % 2 ? 3 : 40;
                struct policy_memo memo = {};
                size_t n = 0, start = (size_t)(lcg(&seed) % 20);

                for (size_t i = 0; i < start; i++) {
                        append_one(a, n, &seed, &name_at, values);
                        n++;
                }
                /* a restored tree: some or all of the newest share an
                 * mtime; or the last by order is not the last written */
                if (n > 0 && lcg(&seed) % 3 == 0)
                        for (size_t i = (size_t)(lcg(&seed) % n); i < n; i++)
                                a[i].mtime_usec = a[n - 1].mtime_usec;
                if (n > 1 && lcg(&seed) % 4 == 0)
                        a[n - 1].mtime_usec -= 1 + (int64_t)(lcg(&seed) % 2) * (a[n - 1].mtime_usec - NOW_USEC);
                policy_decide(&p, a, n, NOW_USEC);
                n = prune_deleted(a, n);
                policy_memo_build(&memo, &p, a, n);
                for (int step = 0; step < STEPS; step++) {
                        /* none at times: a run decided again with no save
                         * (a pointer file, a metric log changed) */
                        unsigned add = lcg(&seed) % 6 == 0 ? 0 : 1 + (unsigned)(lcg(&seed) % 4 == 0 ? lcg(&seed) % 3 : 0);

                        for (unsigned k = 0; k < add && n < CAP; k++, n++)
                                append_one(a, n, &seed, &name_at, values);
                        saves++;
                        memcpy(b, a, n * sizeof(*a));
                        policy_decide_quadratic(&p, b, n, NOW_USEC);
                        if (policy_decide_appended(&memo, &p, a, n, NOW_USEC) == 0) {
                                fast++;
                                for (size_t i = 0; i < n; i++)
                                        if (!a[i].verdict.keep)
                                                ck_assert_msg(i >= memo.first_delete && i < memo.end_delete,
                                                              "run %lu step %d: %zu deleted outside [%zu, %zu)", run,
                                                              step, i, memo.first_delete, memo.end_delete);
                                for (size_t i = 0; i < n; i++) {
                                        const struct verdict *x = &a[i].verdict, *y = &b[i].verdict;

                                        if (x->keep != y->keep || x->reasons != y->reasons ||
                                            x->delete_reason != y->delete_reason)
                                                ck_abort_msg("run %lu step %d n %zu at %zu: appended keep %d reasons "
                                                             "%#x, whole keep %d reasons %#x",
                                                             run, step, n, i, x->keep, x->reasons, y->keep, y->reasons);
                                }
                                n = prune_deleted(a, n);
                                memo.n = n;
                        } else {
                                /* refused: nothing written */
                                policy_decide(&p, a, n, NOW_USEC);
                                n = prune_deleted(a, n);
                                policy_memo_build(&memo, &p, a, n);
                        }
                        if (n >= CAP - 4) /* room for the next saves */
                                break;
                }
                policy_memo_finish(&memo);
        }
        ck_assert_msg(fast * 3 > saves, "decided from the memo: %lu of %lu saves", fast, saves);
        free(a);
        free(b);
}
END_TEST

START_TEST(test_keeps_nothing)
{
        struct policy p = pol("val_loss", MODE_MIN, 0, 0);

        ck_assert(policy_keeps_nothing(&p));
        p.keep_top_k = 3;
        ck_assert(!policy_keeps_nothing(&p));
        p.keep_top_k = -1;
        ck_assert(!policy_keeps_nothing(&p));
        p.keep_top_k = 0;
        p.keep_last = 1;
        ck_assert(!policy_keeps_nothing(&p));
        p.keep_last = 0;
        p.keep_every = 100;
        ck_assert(!policy_keeps_nothing(&p));
}
END_TEST

START_TEST(test_mode_strings)
{
        ck_assert_str_eq(mode_to_string(MODE_MIN), "min");
        ck_assert_str_eq(mode_to_string(MODE_MAX), "max");
        ck_assert_ptr_null(mode_to_string(_MODE_MAX));
        ck_assert_ptr_null(mode_to_string((enum mode) - 1));
        ck_assert_int_eq(mode_from_string("min"), MODE_MIN);
        ck_assert_int_eq(mode_from_string("max"), MODE_MAX);
        ck_assert_int_eq(mode_from_string("MIN"), -EINVAL);
        ck_assert_int_eq(mode_from_string("mi"), -EINVAL);
        ck_assert_int_eq(mode_from_string(""), -EINVAL);
        ck_assert_int_eq(mode_from_string(NULL), -EINVAL);
}
END_TEST

/* A script restarted into an old run's directory: the old run's epoch 21
 * is the newest by order, the new run's epoch 1 the latest written. */
START_TEST(test_newest_written)
{
        struct ckpt c[5];
        struct policy p = pol(NULL, MODE_MIN, 0, 1);

        for (int i = 0; i < 3; i++)
                mk(&c[i], NULL, 19 + i, false, 0); /* old run: 19 20 21, an hour ago */
        mk(&c[3], NULL, 0, false, 0);
        mk(&c[4], NULL, 1, false, 0);
        c[3].mtime_usec = NOW_USEC - 20 * (int64_t)USEC_PER_SEC;
        c[4].mtime_usec = NOW_USEC - 10 * (int64_t)USEC_PER_SEC;
        policy_decide(&p, c, 5, NOW_USEC);
        assert_kept(&c[2], R(KEEP_LAST));
        assert_kept(&c[4], R(KEEP_WRITTEN));
        assert_deleted(&c[3]);
        assert_deleted(&c[0]);
        ck_assert_uint_eq(count_kept(c, 5), 2);

        /* the mtime tells, not when the daemon first saw it */
        c[3].age_known = true;
        c[3].age_usec = 1;
        policy_decide(&p, c, 5, NOW_USEC);
        assert_kept(&c[4], R(KEEP_WRITTEN));
        assert_deleted(&c[3]);

        /* equal completion times single nothing out */
        c[3].age_known = false;
        c[3].mtime_usec = c[4].mtime_usec;
        policy_decide(&p, c, 5, NOW_USEC);
        ck_assert_uint_eq(count_kept(c, 5), 1);

        /* incomplete or unreadable ones are not "written" */
        c[4].mtime_usec += 1;
        c[4].complete = false;
        policy_decide(&p, c, 5, NOW_USEC);
        assert_kept(&c[3], R(KEEP_WRITTEN));
        c[4].complete = true;
        c[4].read_error = -EIO;
        policy_decide(&p, c, 5, NOW_USEC);
        assert_kept(&c[3], R(KEEP_WRITTEN));

        /* the quadratic path agrees */
        policy_decide_quadratic(&p, c, 5, NOW_USEC);
        assert_kept(&c[3], R(KEEP_WRITTEN));
        assert_kept(&c[2], R(KEEP_LAST));
}
END_TEST

/* An old checkpoint dated in the future (another host's clock) beside a
 * restarted run: a daemon, which saw that mtime in the future, does not
 * believe it, so the restarted run's newest is the last written by mtime;
 * the one dated in the future is kept too while no save was seen after it.
 * Without the daemon's memory, the mtime tells. */
START_TEST(test_newest_written_future_mtime)
{
        struct ckpt c[5];
        struct policy p = pol(NULL, MODE_MIN, 0, 1);

        for (int i = 0; i < 3; i++)
                mk(&c[i], NULL, 19 + i, false, 0); /* old run: 19 20 21 */
        mk(&c[3], NULL, 0, false, 0);
        mk(&c[4], NULL, 1, false, 0);
        c[3].mtime_usec = NOW_USEC - 20 * (int64_t)USEC_PER_SEC;
        c[4].mtime_usec = NOW_USEC - 10 * (int64_t)USEC_PER_SEC;
        c[1].mtime_usec = NOW_USEC + 86400 * (int64_t)USEC_PER_SEC;
        /* without the daemon's memory: the mtime tells */
        policy_decide(&p, c, 5, NOW_USEC);
        assert_kept(&c[1], R(KEEP_WRITTEN));
        assert_deleted(&c[4]);
        for (int i = 0; i < 5; i++) {
                c[i].age_known = true;
                c[i].seen_same_usec = 100; /* the daemon's first look */
        }
        c[1].seen_future = true;
        for (int q = 0; q < 2; q++) {
                if (q == 0)
                        policy_decide(&p, c, 5, NOW_USEC);
                else
                        policy_decide_quadratic(&p, c, 5, NOW_USEC);
                assert_kept(&c[2], R(KEEP_LAST));
                assert_kept(&c[4], R(KEEP_WRITTEN));
                assert_kept(&c[1], R(KEEP_WRITTEN));
                assert_deleted(&c[3]);
                assert_deleted(&c[0]);
        }
        /* once its time has come it is still not believed */
        policy_decide(&p, c, 5, NOW_USEC + 2 * 86400 * (int64_t)USEC_PER_SEC);
        assert_kept(&c[4], R(KEEP_WRITTEN));
        /* a save seen after it takes its place */
        c[3].seen_same_usec = 200;
        c[3].mtime_usec = NOW_USEC - 5 * (int64_t)USEC_PER_SEC;
        policy_decide(&p, c, 5, NOW_USEC);
        assert_kept(&c[3], R(KEEP_WRITTEN));
        assert_deleted(&c[4]);
        assert_deleted(&c[1]);
        ck_assert_uint_eq(count_kept(c, 5), 2);
        /* two dated in the future at the same look: the newer */
        c[3].seen_same_usec = 100;
        c[0].seen_future = true;
        c[0].mtime_usec = c[1].mtime_usec + 1;
        policy_decide(&p, c, 5, NOW_USEC);
        assert_kept(&c[0], R(KEEP_WRITTEN));
        assert_deleted(&c[1]);
}
END_TEST

/* A monitor no checkpoint carries keeps the run whole, and says so. */
START_TEST(test_monitor_missing)
{
        struct ckpt c[4];
        struct policy p = pol("val_loss", MODE_MIN, 3, 1);

        for (int i = 0; i < 4; i++)
                mk(&c[i], NULL, i, false, 0);
        c[3].complete = false;
        ck_assert(policy_monitor_missing(&p, c, 4));
        policy_decide(&p, c, 4, NOW_USEC);
        for (int i = 0; i < 2; i++)
                assert_kept(&c[i], R(KEEP_NO_MONITOR));
        assert_kept(&c[2], R(KEEP_LAST) | R(KEEP_NO_MONITOR));
        assert_kept(&c[3], R(KEEP_INCOMPLETE));

        /* one that carries it, even as NaN: ranked as usual */
        c[1].has_metric = true;
        c[1].metric = NAN;
        ck_assert(!policy_monitor_missing(&p, c, 4));
        policy_decide(&p, c, 4, NOW_USEC);
        assert_deleted(&c[0]);

        /* no monitor, or nothing complete: nothing is missing */
        c[1].has_metric = false;
        p.monitor = NULL;
        ck_assert(!policy_monitor_missing(&p, c, 4));
        p.monitor = (char *)"val_loss";
        ck_assert(!policy_monitor_missing(&p, c + 3, 1));
}
END_TEST

Suite *policy_suite(void)
{
        Suite *s = suite_create("policy");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_design_incident);
        tcase_add_test(tc, test_all_reasons);
        tcase_add_test(tc, test_ties);
        tcase_add_test(tc, test_ties_max);
        tcase_add_test(tc, test_nan_missing);
        tcase_add_test(tc, test_infinity);
        tcase_add_test(tc, test_keep_all_ranked);
        tcase_add_test(tc, test_k_larger_than_n);
        tcase_add_test(tc, test_k_zero_with_last);
        tcase_add_test(tc, test_last);
        tcase_add_test(tc, test_last_ties);
        tcase_add_test(tc, test_every);
        tcase_add_test(tc, test_pinned);
        tcase_add_test(tc, test_young);
        tcase_add_test(tc, test_incomplete);
        tcase_add_test(tc, test_max_mode);
        tcase_add_test(tc, test_monitor_null);
        tcase_add_test(tc, test_verdict_reset);
        tcase_add_test(tc, test_large);
        tcase_add_test(tc, test_quadratic_same);
        tcase_add_test(tc, test_stale_ranks_same);
        tcase_add_test(tc, test_random_same);
        tcase_add_test(tc, test_appended_same);
        tcase_add_test(tc, test_keeps_nothing);
        tcase_add_test(tc, test_mode_strings);
        tcase_add_test(tc, test_newest_written);
        tcase_add_test(tc, test_newest_written_future_mtime);
        tcase_add_test(tc, test_monitor_missing);
        tcase_set_timeout(tc, 30);
        suite_add_tcase(s, tc);
        return s;
}
