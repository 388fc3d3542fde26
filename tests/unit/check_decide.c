/* run_decide(): a run's checkpoints ranked per owner. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "decide.h"
#include "macro.h"
#include "pattern.h"

Suite *decide_suite(void);

#define NOW_USEC ((int64_t)1700000000 * (int64_t)USEC_PER_SEC)
#define R(r)     (1u << (r))

static void mk(struct ckpt *c, const char *name, double order, uid_t uid)
{
        memset(c, 0, sizeof(*c));
        c->name = (char *)name;
        c->order_source = ORDER_STEP;
        c->order = order;
        c->complete = true;
        c->size_bytes = 1;
        c->uid = uid;
        c->mtime_usec = NOW_USEC - 3600 * (int64_t)USEC_PER_SEC;
}

/* The sticky-run attack: B's checkpoint-999999 must not make A's newest old. */
START_TEST(test_owners_ranked_apart)
{
        struct ckpt c[4];
        struct policy p = {.mode = MODE_MIN, .keep_last = 1};

        mk(&c[0], "checkpoint-100", 100, 1000);
        mk(&c[1], "checkpoint-200", 200, 1000);
        mk(&c[2], "checkpoint-300", 300, 2000);
        mk(&c[3], "checkpoint-999999", 999999, 2000);
        ck_assert_int_eq(run_decide(&p, c, 4, NOW_USEC), 0);
        ck_assert(!c[0].verdict.keep);
        ck_assert_uint_eq(c[1].verdict.reasons, R(KEEP_LAST));
        ck_assert(!c[2].verdict.keep);
        ck_assert_uint_eq(c[3].verdict.reasons, R(KEEP_LAST));
}
END_TEST

/* Best ranks are per owner too: each owner has a best#1. */
START_TEST(test_best_rank_per_owner)
{
        struct ckpt c[4];
        struct policy p = {.monitor = (char *)"loss", .mode = MODE_MIN, .keep_top_k = 1};

        mk(&c[0], "a1", 1, 1000);
        mk(&c[1], "b1", 2, 2000);
        mk(&c[2], "a2", 3, 1000);
        mk(&c[3], "b2", 4, 2000);
        for (size_t i = 0; i < 4; i++)
                c[i].has_metric = true;
        c[0].metric = 0.5, c[1].metric = 0.1, c[2].metric = 0.7, c[3].metric = 0.2;
        run_decide(&p, c, 4, NOW_USEC);
        ck_assert_int_eq(c[0].verdict.best_rank, 1);
        ck_assert_int_eq(c[1].verdict.best_rank, 1);
        ck_assert_int_eq(c[2].verdict.best_rank, 2);
        ck_assert_int_eq(c[3].verdict.best_rank, 2);
        ck_assert(c[0].verdict.keep && c[1].verdict.keep && !c[2].verdict.keep && !c[3].verdict.keep);
        ck_assert_uint_eq(run_owner_first(c, 2), 0);
        ck_assert_uint_eq(run_owner_first(c, 3), 1);
}
END_TEST

/* A group with members of two owners belongs to no one's run: kept. */
START_TEST(test_mixed_owners_kept)
{
        struct ckpt c[3];
        struct policy p = {.mode = MODE_MIN, .keep_last = 1};

        mk(&c[0], "ckpt-7", 7, UID_MIXED);
        mk(&c[1], "ckpt-8", 8, UID_MIXED);
        mk(&c[2], "ckpt-999", 999, 2000);
        run_decide(&p, c, 3, NOW_USEC);
        ck_assert_uint_eq(c[0].verdict.reasons, R(KEEP_OWNERS));
        ck_assert_uint_eq(c[1].verdict.reasons, R(KEEP_OWNERS));
        ck_assert_uint_eq(c[2].verdict.reasons, R(KEEP_LAST));
        /* one mixed checkpoint alone, too */
        run_decide(&p, c, 1, NOW_USEC);
        ck_assert_uint_eq(c[0].verdict.reasons, R(KEEP_OWNERS));
}
END_TEST

/* One owner: exactly policy_decide(). */
START_TEST(test_one_owner_is_policy)
{
        struct ckpt a[5], b[5];
        struct policy p = {.mode = MODE_MIN, .keep_last = 2};

        for (size_t i = 0; i < 5; i++) {
                mk(&a[i], "x", (double)i, 1000);
                mk(&b[i], "x", (double)i, 1000);
        }
        run_decide(&p, a, 5, NOW_USEC);
        policy_decide(&p, b, 5, NOW_USEC);
        for (size_t i = 0; i < 5; i++)
                ck_assert_mem_eq(&a[i].verdict, &b[i].verdict, sizeof(a[i].verdict));
        ck_assert_int_eq(run_decide(&p, NULL, 0, NOW_USEC), 0);
}
END_TEST

/* min_age from the daemon's own age, not from the wall clock: a year-old
 * mtime the daemon has timed as 10 s old is young, a future one it has timed
 * as an hour old is not. */
START_TEST(test_age_known_beats_mtime)
{
        struct ckpt c[3];
        struct policy p = {.mode = MODE_MIN, .keep_last = 1, .min_age_sec = 3600};

        mk(&c[0], "a", 1, 1000);
        mk(&c[1], "b", 2, 1000);
        mk(&c[2], "c", 3, 1000);
        c[0].mtime_usec = NOW_USEC - (int64_t)365 * 86400 * (int64_t)USEC_PER_SEC;
        c[0].age_known = true;
        c[0].age_usec = 10 * (int64_t)USEC_PER_SEC;
        c[1].mtime_usec = NOW_USEC + 86400 * (int64_t)USEC_PER_SEC;
        c[1].age_known = true;
        c[1].age_usec = 3600 * (int64_t)USEC_PER_SEC;
        /* the newest written (by mtime) is the newest by order too, so
         * that rule does not keep c[1] */
        c[2].mtime_usec = NOW_USEC + 2 * 86400 * (int64_t)USEC_PER_SEC;
        c[2].age_known = true;
        c[2].age_usec = 7200 * (int64_t)USEC_PER_SEC;
        run_decide(&p, c, 3, NOW_USEC);
        ck_assert_uint_eq(c[0].verdict.reasons, R(KEEP_YOUNG));
        ck_assert(!c[1].verdict.keep);
        ck_assert_uint_eq(c[2].verdict.reasons, R(KEEP_LAST));
        /* without a known age the future mtime is young, as before */
        c[1].age_known = false;
        run_decide(&p, c, 3, NOW_USEC);
        ck_assert_uint_eq(c[1].verdict.reasons, R(KEEP_YOUNG));
}
END_TEST

/* The warning for a monitor nobody carries names the fields seen and the
 * likely typo, never a far-fetched one. */
START_TEST(test_monitor_hint)
{
        struct ckpt c[3];
        struct pattern *kv = NULL;
        struct fields f0, f1;
        char *h = NULL;

        const char *n0 = "epoch=0-step=100.ckpt", *n1 = "epoch=1-step=200-val_loss=0.5.ckpt", *n2 = "last.ckpt";

        ck_assert_int_eq(pattern_new_kv(NULL, NULL, &kv), 0);
        ck_assert(pattern_match(kv, n0, &f0));
        ck_assert(pattern_match(kv, n1, &f1));
        mk(&c[0], NULL, 100, 0);
        mk(&c[1], NULL, 200, 0);
        mk(&c[2], NULL, 300, 0);
        ck_assert_int_eq(ckpt_init_names(&c[0], &n0, 1, &f0), 0);
        ck_assert_int_eq(ckpt_init_names(&c[1], &n1, 1, &f1), 0);
        ck_assert_int_eq(ckpt_init_names(&c[2], &n2, 1, NULL), 0);
        ck_assert_int_eq(run_monitor_hint(c, 1, "val_loss", &h), 0);
        ck_assert_str_eq(h, "names carry epoch, step");
        free(h);
        ck_assert_int_eq(run_monitor_hint(c, 2, "val_los", &h), 0);
        ck_assert_str_eq(h, "names carry epoch, step, val_loss; did you mean val_loss?");
        free(h);
        ck_assert_int_eq(run_monitor_hint(c, 2, "steps", &h), 0);
        ck_assert_str_eq(h, "names carry epoch, step, val_loss; did you mean step?");
        free(h);
        ck_assert_int_eq(run_monitor_hint(&c[2], 1, "val_loss", &h), 0);
        ck_assert_str_eq(h, "names carry no field");
        free(h);
        for (size_t i = 0; i < ELEMENTSOF(c); i++)
                ckpt_finish(&c[i]);
        pattern_free(kv);
}
END_TEST

Suite *decide_suite(void)
{
        Suite *s = suite_create("decide");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_owners_ranked_apart);
        tcase_add_test(tc, test_best_rank_per_owner);
        tcase_add_test(tc, test_mixed_owners_kept);
        tcase_add_test(tc, test_one_owner_is_policy);
        tcase_add_test(tc, test_age_known_beats_mtime);
        tcase_add_test(tc, test_monitor_hint);
        suite_add_tcase(s, tc);
        return s;
}
