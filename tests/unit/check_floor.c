/* The free-space floor: floor and target bytes, what is protected, and which
 * kept checkpoints go first when the disk fills up. */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "floor.h"
#include "macro.h"

Suite *floor_suite(void);

#define GIB  (1024ULL * 1024 * 1024)
#define P(p) (1u << (p))

static struct floor_cand cand(size_t run, int rank, double order, uint64_t bytes)
{
        return (struct floor_cand){
                .run = run,
                .best_rank = rank,
                .order = order,
                .bytes = bytes,
                .kept = true,
                .complete = true,
        };
}

static struct floor_state state(uint64_t free_bytes, uint64_t floor, uint64_t target)
{
        return (struct floor_state){.free_bytes = free_bytes, .floor_bytes = floor, .target_bytes = target};
}

/* Runs floor_victims and checks the victims are exactly want[], in order. */
static void assert_victims(const struct floor_state *st, const struct floor_cand *c, size_t n, const size_t *want,
                           size_t n_want, int want_r, uint64_t want_short)
{
        size_t *v = malloc((n ? n : 1) * sizeof(*v));
        size_t nv = 12345;
        uint64_t short_bytes = 777;
        int r;

        ck_assert_ptr_nonnull(v);
        r = floor_victims(st, c, n, v, &nv, &short_bytes);
        ck_assert_int_eq(r, want_r);
        ck_assert_uint_eq(nv, n_want);
        for (size_t i = 0; i < n_want; i++)
                ck_assert_uint_eq(v[i], want[i]);
        ck_assert_uint_eq(short_bytes, want_short);
        free(v);
}

START_TEST(test_floor_bytes)
{
        ck_assert_uint_eq(floor_bytes(100, 0, 50), 100);
        ck_assert_uint_eq(floor_bytes(100, 2.0, 50), 100);
        ck_assert_uint_eq(floor_bytes(100, 2.0, 70), 140);
        /* headroom 0 = off, whatever the largest checkpoint. */
        ck_assert_uint_eq(floor_bytes(0, 0, 1ULL << 40), 0);
        ck_assert_uint_eq(floor_bytes(5, -1.0, 1ULL << 40), 5);
        ck_assert_uint_eq(floor_bytes(5, NAN, 1ULL << 40), 5);
        /* Rounded up: room for the whole next save. */
        ck_assert_uint_eq(floor_bytes(0, 1.5, 3), 5);
        ck_assert_uint_eq(floor_bytes(0, 4.0, UINT64_MAX / 2), UINT64_MAX);
        ck_assert_uint_eq(floor_bytes(0, INFINITY, 1), UINT64_MAX);
        ck_assert_uint_eq(floor_bytes(UINT64_MAX, 1.0, 1), UINT64_MAX);
        /* Two more 7 GiB checkpoints over a 10 GiB min_free. */
        ck_assert_uint_eq(floor_bytes(10 * GIB, 2.0, 7 * GIB), 14 * GIB);
}
END_TEST

START_TEST(test_target)
{
        struct floor_state st;

        ck_assert_uint_eq(floor_target(100, 50), 100);
        ck_assert_uint_eq(floor_target(100, 0), 100);
        ck_assert_uint_eq(floor_target(100, 150), 150);

        floor_state_init(&st, 42, 100, 50, 0, 0);
        ck_assert_uint_eq(st.free_bytes, 42);
        ck_assert_uint_eq(st.floor_bytes, 100);
        ck_assert_uint_eq(st.target_bytes, 100);

        floor_state_init(&st, 42, 10, 300, 2.0, 100);
        ck_assert_uint_eq(st.floor_bytes, 200);
        ck_assert_uint_eq(st.target_bytes, 300);
}
END_TEST

/* A target below the floor, even when the caller built the state itself,
 * evicts up to the floor and not merely to the target. */
START_TEST(test_target_below_floor)
{
        struct floor_cand c[4] = {
                cand(0, 1, 1, 10),
                cand(0, 2, 2, 10),
                cand(0, 3, 3, 10),
                cand(0, 4, 4, 10),
        };
        struct floor_state st = state(0, 15, 5);
        const size_t want[] = {2, 1};

        /* c[3] is the newest, c[0] the best: c[2] (rank 3) then c[1]. */
        assert_victims(&st, c, 4, want, 2, 0, 0);
}
END_TEST

START_TEST(test_needed)
{
        struct floor_state st = state(99, 100, 200);

        ck_assert(floor_needed(&st));
        st.free_bytes = 100;
        ck_assert(!floor_needed(&st));
        st.free_bytes = 150;
        ck_assert(!floor_needed(&st));
        st = state(0, 0, 0);
        ck_assert(!floor_needed(&st));
}
END_TEST

/* Free between floor and target: nothing to do (that gap is the hysteresis);
 * once below the floor, evict all the way up to the target. */
START_TEST(test_hysteresis)
{
        struct floor_cand c[5];
        struct floor_state st = state(150, 100, 200);
        const size_t want[] = {3, 2, 1};

        for (int i = 0; i < 5; i++)
                c[i] = cand(0, i + 1, i, 30);
        assert_victims(&st, c, 5, NULL, 0, 0, 0);

        /* 99 + 30 reaches the floor but not the target of 200: 3 victims. */
        st.free_bytes = 99;
        assert_victims(&st, c, 5, want, 3, 0, 0);
}
END_TEST

/* One run: worst rank first, best and newest stay, stop at the target. */
START_TEST(test_single_run)
{
        struct floor_cand c[7];
        const int ranks[6] = {3, 1, 5, 2, 6, 4};
        struct floor_state st = state(0, 25, 25);
        const size_t want[] = {4, 2, 5};
        const size_t want_all[] = {4, 2, 5, 0, 3};

        for (int i = 0; i < 6; i++)
                c[i] = cand(0, ranks[i], i + 1, 10);
        /* The newest, kept by "last", unranked: protected as the newest. */
        c[6] = cand(0, 0, 7, 10);
        assert_victims(&st, c, 7, want, 3, 0, 0);

        /* Exactly reaching the target is enough. */
        st = state(5, 25, 25);
        assert_victims(&st, c, 7, want, 2, 0, 0);

        st = state(0, 50, 50);
        assert_victims(&st, c, 7, want_all, 5, 0, 0);
}
END_TEST

/* Equal ranks across runs: the older first; equal order: the lower run id. */
START_TEST(test_ties)
{
        struct floor_cand c[6] = {
                cand(1, 1, 1, 1), cand(1, 2, 5, 1), cand(1, 3, 9, 1),
                cand(0, 1, 1, 1), cand(0, 2, 5, 1), cand(0, 3, 9, 1),
        };
        struct floor_state st = state(0, 1, 1);
        const size_t want[] = {4, 1};

        /* Newest (order 9) of each run is protected, rank 2 at order 5 tie. */
        assert_victims(&st, c, 6, want, 1, 0, 0);
        st = state(0, 2, 2);
        assert_victims(&st, c, 6, want, 2, 0, 0);
}
END_TEST

/* Many runs: every run's k-th best goes before any run's (k-1)-th. */
START_TEST(test_runs_interleave)
{
        enum { RUNS = 3, PER = 5 };
        /* Per run, by order 1..5: ranks 2, 4, 3, 1 (best) and 5 (newest). */
        const int ranks[PER] = {2, 4, 3, 1, 5};
        struct floor_cand c[RUNS * PER];
        size_t want[RUNS * 3], nw = 0;
        struct floor_state st;

        /* Interleaved in the array; run 2 is the oldest, run 0 the newest. */
        for (size_t j = 0; j < PER; j++)
                for (size_t r = 0; r < RUNS; r++)
                        c[j * RUNS + r] = cand(r, ranks[j], (double)(j + 1) + 100.0 * (double)(RUNS - 1 - r), 1);
        for (int rank = 4; rank >= 2; rank--)
                for (size_t r = RUNS; r-- > 0;)
                        for (size_t j = 0; j < PER; j++)
                                if (ranks[j] == rank)
                                        want[nw++] = j * RUNS + r;

        st = state(0, 9, 9);
        assert_victims(&st, c, RUNS * PER, want, 9, 0, 0);
        st = state(0, 4, 100);
        assert_victims(&st, c, RUNS * PER, want, 9, 0, 0);
        st = state(0, 4, 4);
        assert_victims(&st, c, RUNS * PER, want, 4, 0, 0);
        /* Not reachable: every candidate, and 1 byte short. */
        st = state(0, 10, 10);
        assert_victims(&st, c, RUNS * PER, want, 9, 1, 1);
}
END_TEST

/* Unranked kept ones (no metric, kept for last/every/young) go before any
 * ranked one, older first. */
START_TEST(test_unranked_first)
{
        struct floor_cand c[6] = {
                cand(0, 1, 1, 1), cand(0, 9, 2, 1), cand(0, 0, 3, 1),
                cand(0, 8, 4, 1), cand(0, 0, 5, 1), cand(0, 0, 6, 1),
        };
        struct floor_state st = state(0, 4, 4);
        const size_t want[] = {2, 4, 1, 3};

        assert_victims(&st, c, 6, want, 4, 0, 0);
}
END_TEST

/* A hard-linked one frees nothing: passed by for the next, though it would
 * go first, and still counted among its run's kept ones (it stays the
 * newest or the best where it is). */
START_TEST(test_linked_passed_by)
{
        struct floor_cand c[4];
        struct floor_state st = state(0, 100, 100);
        const size_t want[] = {2};
        unsigned why[4];

        c[0] = cand(0, 1, 1, 100); /* best */
        c[1] = cand(0, 3, 2, 100); /* rank 3: would go first */
        c[1].linked = true;
        c[2] = cand(0, 2, 3, 100); /* rank 2 */
        c[3] = cand(0, 4, 4, 100); /* newest */
        assert_victims(&st, c, 4, want, 1, 0, 0);
        ck_assert_int_eq(floor_protect(c, 4, why), 0);
        ck_assert_uint_eq(why[1], P(FLOOR_PROTECT_LINKED));
        ck_assert_uint_eq(why[2], 0);
        /* the newest, linked: newest all the same, and the one before it
         * is no newest */
        c[1].linked = false;
        c[3].linked = true;
        ck_assert_int_eq(floor_protect(c, 4, why), 0);
        ck_assert_uint_eq(why[3], P(FLOOR_PROTECT_NEWEST) | P(FLOOR_PROTECT_LINKED));
        ck_assert_uint_eq(why[2], 0);
}
END_TEST

/* A watch that sets no floor: what it keeps stays, whatever another
 * watch's floor on the file system asks; the other run's go. */
START_TEST(test_unfloored_kept)
{
        struct floor_cand c[6];
        struct floor_state st = state(0, 100, 100);
        const size_t want[] = {4};
        unsigned why[6];

        for (size_t i = 0; i < 3; i++) {
                c[i] = cand(0, (int)i + 1, (double)i + 1, 100); /* rank 1 best, rank 3 the newest */
                c[i].unfloored = true;
                c[i + 3] = cand(1, (int)i + 1, (double)i + 1, 100);
        }
        c[1].best_rank = 3; /* rank 3, not newest: the first to go were it floored */
        c[2].best_rank = 2;
        c[4].best_rank = 3;
        c[5].best_rank = 2;
        assert_victims(&st, c, 6, want, 1, 0, 0);
        ck_assert_int_eq(floor_protect(c, 6, why), 0);
        ck_assert_uint_eq(why[1], P(FLOOR_PROTECT_UNFLOORED));
        ck_assert_uint_eq(why[4], 0);
}
END_TEST

/* 100% full with an impossible floor: only unprotected kept ones go, and
 * the shortfall is reported against the floor. */
START_TEST(test_protected_when_full)
{
        struct floor_cand c[8];
        struct floor_state st = state(0, 1000, 5000);
        const size_t want[] = {4};
        unsigned why[8];

        c[0] = cand(0, 1, 1, 100); /* best */
        c[1] = cand(0, 3, 2, 100); /* pinned */
        c[1].pinned = true;
        c[2] = cand(0, 0, 9, 100); /* incomplete, newer than all */
        c[2].complete = false;
        c[3] = cand(0, 4, 5, 100); /* newest complete */
        c[4] = cand(0, 2, 3, 7);   /* the only victim */
        c[5] = cand(1, 1, 1, 100); /* run 1: best and newest */
        c[6] = cand(1, 0, 0, 100); /* not kept: the policy deletes it */
        c[6].kept = false;
        c[7] = cand(2, 0, 4, 100); /* run 2: newest, no monitor */

        assert_victims(&st, c, 8, want, 1, 1, 1000 - 7);
        /* Some free space counts towards the floor. */
        st.free_bytes = 900;
        assert_victims(&st, c, 8, want, 1, 1, 1000 - 907);

        ck_assert_int_eq(floor_protect(c, 8, why), 0);
        ck_assert_uint_eq(why[0], P(FLOOR_PROTECT_BEST));
        ck_assert_uint_eq(why[1], P(FLOOR_PROTECT_PINNED));
        ck_assert_uint_eq(why[2], P(FLOOR_PROTECT_INCOMPLETE));
        ck_assert_uint_eq(why[3], P(FLOOR_PROTECT_NEWEST));
        ck_assert_uint_eq(why[4], 0);
        ck_assert_uint_eq(why[5], P(FLOOR_PROTECT_BEST) | P(FLOOR_PROTECT_NEWEST));
        ck_assert_uint_eq(why[6], 0);
        ck_assert_uint_eq(why[7], P(FLOOR_PROTECT_NEWEST));
}
END_TEST

/* The newest is the newest kept complete one: a pinned newest still counts
 * (the next one is not protected), a policy-deleted newer one does not. */
START_TEST(test_newest)
{
        struct floor_cand c[4];
        struct floor_state st = state(0, 100, 100);
        const size_t want1[] = {1};
        const size_t want2[] = {1};
        unsigned why[4];

        c[0] = cand(0, 1, 1, 1);
        c[1] = cand(0, 3, 2, 1);
        c[2] = cand(0, 2, 3, 1);
        c[3] = cand(0, 4, 4, 1);
        c[3].pinned = true;
        /* c[3] pinned and newest: c[2] is evictable, c[1] too. */
        {
                const size_t want[] = {1, 2};

                assert_victims(&st, c, 4, want, 2, 1, 98);
        }

        /* c[3] deleted by the policy: c[2] becomes the newest. */
        c[3].pinned = false;
        c[3].kept = false;
        assert_victims(&st, c, 4, want1, 1, 1, 99);
        ck_assert_int_eq(floor_protect(c, 4, why), 0);
        ck_assert_uint_eq(why[2], P(FLOOR_PROTECT_NEWEST));
        ck_assert_uint_eq(why[3], 0);

        /* Two share the top order: both are protected. */
        c[3] = cand(0, 5, 3, 1);
        assert_victims(&st, c, 4, want2, 1, 1, 99);
        ck_assert_int_eq(floor_protect(c, 4, why), 0);
        ck_assert_uint_eq(why[2], P(FLOOR_PROTECT_NEWEST));
        ck_assert_uint_eq(why[3], P(FLOOR_PROTECT_NEWEST));

        /* A NaN order is the oldest. */
        c[3] = cand(0, 5, NAN, 1);
        {
                const size_t want[] = {3, 1};

                assert_victims(&st, c, 4, want, 2, 1, 98);
        }
}
END_TEST

/* A trainer restarted into an old run's directory writes step 1 beside the
 * old step 30: the newest by order is step 30, and the one it resumes from
 * is step 1, the last written. Both are protected; a tie of the newest
 * mtimes says nothing of which was written last, and protects none more. */
START_TEST(test_newest_written)
{
        struct floor_cand c[4];
        struct floor_state st = state(0, 100, 100);
        const size_t want1[] = {0, 1}, want2[] = {3, 0, 1};
        unsigned why[4];

        c[0] = cand(0, 0, 10, 1);
        c[1] = cand(0, 0, 20, 1);
        c[2] = cand(0, 0, 30, 1);
        c[3] = cand(0, 0, 1, 1);
        for (size_t i = 0; i < 4; i++)
                c[i].mtime_usec = 1000 + (int64_t)i;
        assert_victims(&st, c, 4, want1, 2, 1, 98);
        ck_assert_int_eq(floor_protect(c, 4, why), 0);
        ck_assert_uint_eq(why[2], P(FLOOR_PROTECT_NEWEST));
        ck_assert_uint_eq(why[3], P(FLOOR_PROTECT_NEWEST));
        ck_assert_uint_eq(why[0], 0);

        /* written at the same instant as step 20: the order decides alone */
        c[3].mtime_usec = c[1].mtime_usec = 5000;
        assert_victims(&st, c, 4, want2, 3, 1, 97);

        /* in another run, it protects nothing in this one */
        c[3].run = 1;
        c[3].mtime_usec = 9000;
        c[1].mtime_usec = 1001;
        c[3].pinned = true;
        assert_victims(&st, c, 4, want1, 2, 1, 98);

        /* one that could not be read (protected as pinned) is not the
         * policy's newest-written, so takes that place from none: step 20,
         * written after step 30, is still protected */
        c[3] = cand(0, 0, 1, 1);
        c[3].mtime_usec = 9000;
        c[3].pinned = c[3].unreadable = true;
        c[1].mtime_usec = 5000;
        {
                const size_t want[] = {0};

                assert_victims(&st, c, 4, want, 1, 1, 99);
        }
        ck_assert_uint_eq(floor_last_written(c, (const size_t[]){0, 1, 2, 3}, 4), 1);
}
END_TEST

/* A daemon that saw an old checkpoint's mtime in the future does not
 * believe it: the restarted run's save, the newest believed mtime, is the
 * last written, and the one dated in the future is protected as well while
 * no save was seen after it. */
START_TEST(test_last_written_future_mtime)
{
        struct floor_cand c[4];
        struct floor_state st = state(0, 100, 100);
        unsigned why[4];

        c[0] = cand(0, 0, 10, 1);
        c[1] = cand(0, 0, 20, 1); /* dated in the future */
        c[2] = cand(0, 0, 30, 1); /* the newest by order */
        c[3] = cand(0, 0, 1, 1);  /* the restarted run's save */
        for (size_t i = 0; i < 4; i++) {
                c[i].mtime_usec = 1000 + (int64_t)i;
                c[i].seen_usec = 50; /* the daemon's first look */
        }
        c[1].mtime_usec = 9000;
        /* not seen in the future: believed, the last written */
        {
                const size_t want[] = {3, 0};

                assert_victims(&st, c, 4, want, 2, 1, 98);
        }
        c[1].seen_future = true;
        {
                const size_t want[] = {0};

                assert_victims(&st, c, 4, want, 1, 1, 99);
        }
        ck_assert_uint_eq(floor_last_written(c, (const size_t[]){0, 1, 2, 3}, 4), 3);
        ck_assert_int_eq(floor_protect(c, 4, why), 0);
        ck_assert_uint_eq(why[3], P(FLOOR_PROTECT_NEWEST));
        ck_assert_uint_eq(why[1], P(FLOOR_PROTECT_NEWEST));
        /* a save seen after it takes its place */
        c[0].seen_usec = 60;
        c[0].mtime_usec = 1010;
        {
                const size_t want[] = {3, 1};

                assert_victims(&st, c, 4, want, 2, 1, 98);
        }
}
END_TEST

/* The best of a run is the best ranked of what the policy keeps: its rank
 * 1 deleted by the policy (keep_top_k 0, old), the rank 2 left is the best
 * now; another run's rank 1 does not stand in for it. */
START_TEST(test_best_left)
{
        struct floor_cand c[6];
        struct floor_state st = state(0, 1000, 1000);
        const size_t want[] = {2, 4};
        unsigned why[6];

        c[0] = cand(0, 1, 1, 10); /* the policy deletes it */
        c[0].kept = false;
        c[1] = cand(0, 2, 2, 10); /* the best left */
        c[4] = cand(1, 2, 1, 10); /* run 1: rank 2, evictable */
        c[2] = cand(0, 3, 3, 10);
        c[5] = cand(1, 1, 2, 10); /* run 1: best and newest */
        c[3] = cand(0, 0, 4, 10); /* the newest, unranked */

        assert_victims(&st, c, 6, want, 2, 1, 1000 - 20);
        ck_assert_int_eq(floor_protect(c, 6, why), 0);
        ck_assert_uint_eq(why[0], 0);
        ck_assert_uint_eq(why[1], P(FLOOR_PROTECT_BEST));
        ck_assert_uint_eq(why[2], 0);
        ck_assert_uint_eq(why[3], P(FLOOR_PROTECT_NEWEST));
        ck_assert_uint_eq(why[4], 0);
        ck_assert_uint_eq(why[5], P(FLOOR_PROTECT_BEST) | P(FLOOR_PROTECT_NEWEST));
}
END_TEST

/* Sums saturate instead of wrapping to a small number. */
START_TEST(test_saturation)
{
        struct floor_cand c[4] = {
                cand(0, 1, 1, 1),
                cand(0, 3, 2, UINT64_MAX),
                cand(0, 2, 3, UINT64_MAX),
                cand(0, 4, 4, 1),
        };
        struct floor_state st = state(10, UINT64_MAX, UINT64_MAX);
        const size_t want[] = {1};

        assert_victims(&st, c, 4, want, 1, 0, 0);
}
END_TEST

static uint64_t lcg(uint64_t *s)
{
        *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
        return *s >> 33;
}

/* 10000 checkpoints over 97 runs: victims are exactly the kept ones that
 * floor_protect leaves at 0, in non-decreasing badness. */
START_TEST(test_large)
{
        enum { N = 10000 };
        struct floor_cand *c = calloc(N, sizeof(*c));
        unsigned *why = calloc(N, sizeof(*why));
        size_t *v = calloc(N, sizeof(*v));
        bool *is_victim = calloc(N, sizeof(*is_victim));
        struct floor_state st = state(0, UINT64_MAX, UINT64_MAX);
        uint64_t seed = 1, short_bytes = 0, sum = 0;
        size_t nv = 0, expect = 0;

        ck_assert(c && why && v && is_victim);
        for (size_t i = 0; i < N; i++) {
                uint64_t r = lcg(&seed);

                c[i] = cand(lcg(&seed) % 97, (int)(lcg(&seed) % 12), (double)(lcg(&seed) % 500), 1 + r % 1000);
                c[i].kept = r % 5 != 0;
                c[i].pinned = r % 23 == 0;
                c[i].complete = r % 29 != 0;
        }
        ck_assert_int_eq(floor_protect(c, N, why), 0);
        ck_assert_int_eq(floor_victims(&st, c, N, v, &nv, &short_bytes), 1);
        for (size_t j = 0; j < nv; j++) {
                ck_assert(!is_victim[v[j]]);
                is_victim[v[j]] = true;
                sum += c[v[j]].bytes;
        }
        for (size_t i = 0; i < N; i++) {
                bool evictable = c[i].kept && why[i] == 0;

                ck_assert_int_eq(is_victim[i], evictable);
                expect += evictable;
                if (c[i].best_rank == 1 && c[i].kept)
                        ck_assert(!is_victim[i]);
        }
        ck_assert_uint_eq(nv, expect);
        ck_assert_uint_gt(nv, N / 2);
        ck_assert_uint_eq(short_bytes, UINT64_MAX - sum);
        for (size_t j = 1; j < nv; j++) {
                const struct floor_cand *a = &c[v[j - 1]], *b = &c[v[j]];
                int ka = a->best_rank == 0 ? INT32_MAX : a->best_rank;
                int kb = b->best_rank == 0 ? INT32_MAX : b->best_rank;

                ck_assert(ka > kb || (ka == kb && a->order <= b->order));
        }
        free(is_victim);
        free(v);
        free(why);
        free(c);
}
END_TEST

/* The incident: 6.9 GB checkpoints on a 1.8 TB disk, floor = room for two. */
START_TEST(test_design_incident)
{
        const uint64_t ck = 6900ULL * 1000 * 1000;
        struct floor_cand c[6];
        struct floor_state st;
        uint64_t largest;
        const size_t want[] = {1};

        /* Top 3 by val_loss + last: ranks 2, 3, 1 and the newest (rank 9).
         * A young one (rank 5) is kept too. */
        c[0] = cand(0, 2, 3, ck);
        c[1] = cand(0, 5, 13, ck);
        c[2] = cand(0, 3, 8, ck);
        c[3] = cand(0, 1, 10, ck);
        c[4] = cand(0, 9, 15, ck);
        c[5] = cand(0, 0, 16, ck / 2); /* epoch 16 being written */
        c[5].complete = false;
        largest = floor_largest(c, 6, 0);
        ck_assert_uint_eq(largest, ck);
        floor_state_init(&st, 10ULL * 1000 * 1000 * 1000, 0, 0, 2.0, largest);
        ck_assert_uint_eq(st.floor_bytes, 2 * ck);
        ck_assert(floor_needed(&st));
        /* 10 GB + 6.9 GB >= 13.8 GB: the rank-5 one goes, nothing else. */
        assert_victims(&st, c, 6, want, 1, 0, 0);
}
END_TEST

START_TEST(test_largest_and_cand)
{
        struct floor_cand c[3] = {cand(0, 1, 1, 10), cand(0, 2, 2, 30), cand(0, 0, 3, 99)};
        struct ckpt k;
        struct floor_cand f;

        c[2].complete = false;
        ck_assert_uint_eq(floor_largest(c, 3, 0), 30);
        ck_assert_uint_eq(floor_largest(c, 3, 50), 50);
        ck_assert_uint_eq(floor_largest(NULL, 0, 7), 7);

        memset(&k, 0, sizeof(k));
        k.order = 42;
        k.size_bytes = 1234;
        k.complete = true;
        k.pins = 1u << PIN_FLOCK;
        k.verdict = (struct verdict){.keep = true, .reasons = 1u << KEEP_BEST, .best_rank = 2};
        floor_cand_from_ckpt(&f, 5, &k);
        ck_assert_uint_eq(f.run, 5);
        ck_assert_int_eq(f.best_rank, 2);
        ck_assert_double_eq(f.order, 42);
        ck_assert_uint_eq(f.bytes, 1234);
        ck_assert(f.kept && f.pinned && f.complete);
        k.pins = 0;
        k.complete = false;
        k.verdict.keep = false;
        floor_cand_from_ckpt(&f, 0, &k);
        ck_assert(!f.kept && !f.pinned && !f.complete);
}
END_TEST

START_TEST(test_args)
{
        struct floor_cand c[1] = {cand(0, 2, 1, 1)};
        struct floor_state st = state(0, 10, 10);
        size_t v[1], nv = 99;
        unsigned why[1];

        ck_assert_int_eq(floor_victims(NULL, c, 1, v, &nv, NULL), -EINVAL);
        ck_assert_int_eq(floor_victims(&st, NULL, 1, v, &nv, NULL), -EINVAL);
        ck_assert_int_eq(floor_victims(&st, c, 1, NULL, &nv, NULL), -EINVAL);
        ck_assert_int_eq(floor_victims(&st, c, 1, v, NULL, NULL), -EINVAL);
        /* Nothing to evict at all: unmet by the whole floor. */
        ck_assert_int_eq(floor_victims(&st, NULL, 0, NULL, &nv, NULL), 1);
        ck_assert_uint_eq(nv, 0);
        /* A lone checkpoint is the newest of its run. */
        ck_assert_int_eq(floor_victims(&st, c, 1, v, &nv, NULL), 1);
        ck_assert_uint_eq(nv, 0);
        ck_assert_int_eq(floor_protect(NULL, 0, NULL), 0);
        ck_assert_int_eq(floor_protect(NULL, 1, why), -EINVAL);
        ck_assert_int_eq(floor_protect(c, 1, NULL), -EINVAL);
}
END_TEST

START_TEST(test_protect_strings)
{
        ck_assert_str_eq(floor_protect_to_string(FLOOR_PROTECT_BEST), "best");
        ck_assert_str_eq(floor_protect_to_string(FLOOR_PROTECT_NEWEST), "newest");
        ck_assert_str_eq(floor_protect_to_string(FLOOR_PROTECT_PINNED), "pinned");
        ck_assert_str_eq(floor_protect_to_string(FLOOR_PROTECT_INCOMPLETE), "incomplete");
        ck_assert_str_eq(floor_protect_to_string(FLOOR_PROTECT_LINKED), "hard-linked");
        ck_assert_str_eq(floor_protect_to_string(FLOOR_PROTECT_UNFLOORED), "no-floor");
        ck_assert_ptr_null(floor_protect_to_string(_FLOOR_PROTECT_MAX));
}
END_TEST

Suite *floor_suite(void)
{
        Suite *s = suite_create("floor");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_floor_bytes);
        tcase_add_test(tc, test_last_written_future_mtime);
        tcase_add_test(tc, test_target);
        tcase_add_test(tc, test_target_below_floor);
        tcase_add_test(tc, test_needed);
        tcase_add_test(tc, test_hysteresis);
        tcase_add_test(tc, test_single_run);
        tcase_add_test(tc, test_ties);
        tcase_add_test(tc, test_runs_interleave);
        tcase_add_test(tc, test_unranked_first);
        tcase_add_test(tc, test_protected_when_full);
        tcase_add_test(tc, test_linked_passed_by);
        tcase_add_test(tc, test_unfloored_kept);
        tcase_add_test(tc, test_newest);
        tcase_add_test(tc, test_newest_written);
        tcase_add_test(tc, test_best_left);
        tcase_add_test(tc, test_saturation);
        tcase_add_test(tc, test_large);
        tcase_add_test(tc, test_design_incident);
        tcase_add_test(tc, test_largest_and_cand);
        tcase_add_test(tc, test_args);
        tcase_add_test(tc, test_protect_strings);
        tcase_set_timeout(tc, 30);
        suite_add_tcase(s, tc);
        return s;
}
