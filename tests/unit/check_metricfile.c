/* Metrics from JSON files inside checkpoints, on real files in a temporary
 * directory: HF trainer_state.json and Orbax-style metrics files. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "metricfile.h"
#include "tree.h"

Suite *metricfile_suite(void);

/* HF's layout: train loss and eval entries interleaved, eval every 100. */
static const char hf_state[] = "{\n"
                               "  \"best_metric\": 0.4,\n"
                               "  \"best_model_checkpoint\": \"out/checkpoint-200\",\n"
                               "  \"global_step\": 300,\n"
                               "  \"log_history\": [\n"
                               "    {\"epoch\": 0.5, \"loss\": 2.5, \"step\": 50},\n"
                               "    {\"epoch\": 1.0, \"eval_loss\": 0.5, \"step\": 100},\n"
                               "    {\"epoch\": 1.5, \"loss\": 1.2, \"step\": 150},\n"
                               "    {\"epoch\": 2.0, \"eval_loss\": 0.4, \"step\": 200},\n"
                               "    {\"epoch\": 3.0, \"eval_loss\": 0.45, \"eval_acc\": 7, \"step\": 300}\n"
                               "  ]\n"
                               "}\n";

START_TEST(test_hf_state_step_filter)
{
        double v;

        tree_puts("trainer_state.json", hf_state);
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 300, &v), 0);
        ck_assert_double_eq(v, 0.45);
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 250, &v), 0);
        ck_assert_double_eq(v, 0.4);
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 100, &v), 0);
        ck_assert_double_eq(v, 0.5);
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 99, &v), -ENOENT);
        /* no step in the name: the last entry of all */
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", INFINITY, &v), 0);
        ck_assert_double_eq(v, 0.45);
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", NAN, &v), 0);
        ck_assert_double_eq(v, 0.45);
        /* the monitor is used as-is, and integers are numbers too */
        ck_assert_int_eq(metric_hf_state(tree_fd, "loss", 1000, &v), 0);
        ck_assert_double_eq(v, 1.2);
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_acc", 1000, &v), 0);
        ck_assert_double_eq(v, 7);
        ck_assert_int_eq(metric_hf_state(tree_fd, "val_loss", 1000, &v), -ENOENT);
}
END_TEST

START_TEST(test_hf_state_nan_infinity)
{
        double v;

        /* Python's json.dump writes these bare tokens (allow_nan=True). */
        tree_puts("a/trainer_state.json", "{\"log_history\": [{\"eval_loss\": NaN, \"step\": 10}]}");
        tree_puts("b/trainer_state.json", "{\"log_history\": [{\"eval_loss\": Infinity, \"step\": 10}]}");
        tree_puts("c/trainer_state.json", "{\"log_history\": [{\"eval_loss\": -Infinity, \"step\": 10},"
                                          " {\"eval_loss\": 1e400, \"step\": 11}]}");
        int a = openat(tree_fd, "a", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int b = openat(tree_fd, "b", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int c = openat(tree_fd, "c", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert(a >= 0 && b >= 0 && c >= 0);

        ck_assert_int_eq(metric_hf_state(a, "eval_loss", 10, &v), 0);
        ck_assert(isnan(v));
        ck_assert_int_eq(metric_hf_state(b, "eval_loss", 10, &v), 0);
        ck_assert(isinf(v) && v > 0);
        ck_assert_int_eq(metric_hf_state(c, "eval_loss", 10, &v), 0);
        ck_assert(isinf(v) && v < 0);
        ck_assert_int_eq(metric_hf_state(c, "eval_loss", 11, &v), 0);
        ck_assert(isinf(v) && v > 0);
        close(a);
        close(b);
        close(c);
}
END_TEST

START_TEST(test_hf_state_null_and_missing)
{
        double v = 42;

        /* null counts as absent: the earlier value stands */
        tree_puts("trainer_state.json", "{\"log_history\": [{\"eval_loss\": 0.7, \"step\": 1},"
                                        " {\"eval_loss\": null, \"step\": 2}, {\"eval_loss\": \"x\", \"step\": 3},"
                                        " {\"eval_loss\": 0.1}, 17, {\"eval_loss\": 0.2, \"step\": null}]}");
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 10, &v), 0);
        ck_assert_double_eq(v, 0.7);

        /* failures leave *ret alone */
        v = 42;
        tree_puts("trainer_state.json", "{\"log_history\": [{\"eval_loss\": null, \"step\": 2}]}");
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 10, &v), -ENOENT);
        tree_puts("trainer_state.json", "{\"log_history\": []}");
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 10, &v), -ENOENT);
        tree_puts("trainer_state.json", "{\"global_step\": 3}");
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 10, &v), -ENOENT);
        tree_puts("trainer_state.json", "{\"log_history\": {\"eval_loss\": 1, \"step\": 1}}");
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 10, &v), -ENOENT);
        tree_puts("trainer_state.json", "[]");
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 10, &v), -ENOENT);
        ck_assert_double_eq(v, 42);

        ck_assert_int_eq(unlinkat(tree_fd, "trainer_state.json", 0), 0);
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 10, &v), -ENOENT);
}
END_TEST

START_TEST(test_malformed)
{
        static const char *const bad[] = {
                "",
                "{",
                "{\"log_history\": [",
                "{\"log_history\": [{\"eval_loss\": 0.1, \"step\": 1}]} trailing",
                "{\"log_history\": [{\"eval_loss\": 0.1, \"step\": 1}]}{}",
                "{\"log_history\": [],}",
                "{\"log_history\": [{\"eval_loss\": 0.1, \"step\": 1},]}",
                "{\"log_history\": [{\"eval_loss\": nope, \"step\": 1}]}",
        };
        double v;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                tree_puts("trainer_state.json", bad[i]);
                ck_assert_msg(metric_hf_state(tree_fd, "eval_loss", 10, &v) == -EINVAL, "case %zu", i);
                char *best = (char *)1;
                ck_assert_int_eq(metric_hf_best(tree_fd, &best), -EINVAL);
        }
        /* a NUL byte inside: json-c would stop there and accept the prefix */
        tree_put("trainer_state.json", "{\"log_history\": []}\0garbage", 27);
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 10, &v), -EINVAL);
        /* surrounding whitespace is fine */
        tree_puts("trainer_state.json", "\n\t {\"log_history\": [{\"eval_loss\": 0.25, \"step\": 1}]} \r\n");
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 10, &v), 0);
        ck_assert_double_eq(v, 0.25);
        /* a directory where the file should be */
        ck_assert_int_eq(unlinkat(tree_fd, "trainer_state.json", 0), 0);
        ck_assert_int_eq(mkdirat(tree_fd, "trainer_state.json", 0755), 0);
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 10, &v), -EISDIR);
}
END_TEST

START_TEST(test_large_history)
{
        size_t cap = 8u << 20, len = 0;
        char *s = malloc(cap);
        double v;

        ck_assert_ptr_nonnull(s);
        len += (size_t)snprintf(s + len, cap - len, "{\"log_history\": [");
        for (int i = 1; i <= 50000; i++)
                len += (size_t)snprintf(s + len, cap - len, "%s{\"loss\": %d.5, \"eval_loss\": %d.25, \"step\": %d}",
                                        i > 1 ? ",\n" : "", i, i, i * 10);
        len += (size_t)snprintf(s + len, cap - len, "]}");
        ck_assert_uint_lt(len, cap);
        tree_put("trainer_state.json", s, len);
        free(s);
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 123456, &v), 0);
        ck_assert_double_eq(v, 12345.25);
}
END_TEST

START_TEST(test_hf_best)
{
        char *best = NULL;

        tree_puts("trainer_state.json", hf_state);
        ck_assert_int_eq(metric_hf_best(tree_fd, &best), 0);
        ck_assert_str_eq(best, "checkpoint-200");
        free(best);

        tree_puts("trainer_state.json", "{\"best_model_checkpoint\": \"/abs/out/checkpoint-7/\"}");
        ck_assert_int_eq(metric_hf_best(tree_fd, &best), 0);
        ck_assert_str_eq(best, "checkpoint-7");
        free(best);

        tree_puts("trainer_state.json", "{\"best_model_checkpoint\": \"checkpoint-9\"}");
        ck_assert_int_eq(metric_hf_best(tree_fd, &best), 0);
        ck_assert_str_eq(best, "checkpoint-9");
        free(best);

        static const char *const none[] = {
                "{\"best_model_checkpoint\": null}",
                "{\"best_model_checkpoint\": \"\"}",
                "{\"best_model_checkpoint\": \"/\"}",
                "{\"best_model_checkpoint\": \"out/..\"}",
                "{\"best_model_checkpoint\": 5}",
                "{\"log_history\": []}",
                "[\"checkpoint-1\"]",
        };
        for (size_t i = 0; i < ELEMENTSOF(none); i++) {
                best = (char *)1;
                tree_puts("trainer_state.json", none[i]);
                ck_assert_int_eq(metric_hf_best(tree_fd, &best), 0);
                ck_assert_msg(best == NULL, "case %zu", i);
        }

        ck_assert_int_eq(unlinkat(tree_fd, "trainer_state.json", 0), 0);
        ck_assert_int_eq(metric_hf_best(tree_fd, &best), -ENOENT);
}
END_TEST

START_TEST(test_json_file)
{
        double v;

        /* Orbax: <step>/metrics/metrics */
        tree_puts("metrics/metrics",
                  "{\"val_loss\": 0.12, \"acc\": 1, \"eval\": {\"loss\": 0.3, \"deep\": {\"x\": -2.5}},"
                  " \"a.b\": 5, \"nan\": NaN, \"inf\": -Infinity, \"null\": null, \"s\": \"0.1\","
                  " \"arr\": [1], \"t\": true}");
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "val_loss", &v), 0);
        ck_assert_double_eq(v, 0.12);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "acc", &v), 0);
        ck_assert_double_eq(v, 1);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "eval.loss", &v), 0);
        ck_assert_double_eq(v, 0.3);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "eval.deep.x", &v), 0);
        ck_assert_double_eq(v, -2.5);
        /* a literal dotted key wins over the path */
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "a.b", &v), 0);
        ck_assert_double_eq(v, 5);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "nan", &v), 0);
        ck_assert(isnan(v));
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "inf", &v), 0);
        ck_assert(isinf(v) && v < 0);

        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "null", &v), -ENOENT);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "missing", &v), -ENOENT);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "eval.missing", &v), -ENOENT);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "val_loss.x", &v), -ENOENT);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "eval..loss", &v), -ENOENT);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "eval.", &v), -ENOENT);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "eval", &v), -EINVAL);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "s", &v), -EINVAL);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "arr", &v), -EINVAL);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "t", &v), -EINVAL);

        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/none", "val_loss", &v), -ENOENT);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics", "val_loss", &v), -EISDIR);
        ck_assert_int_eq(metric_json_file(tree_fd, "", "val_loss", &v), -EINVAL);
        ck_assert_int_eq(metric_json_file(tree_fd, NULL, "val_loss", &v), -EINVAL);

        tree_puts("metrics/broken", "{\"val_loss\": 0.1");
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/broken", "val_loss", &v), -EINVAL);
        tree_puts("metrics/list", "[0.1]");
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/list", "val_loss", &v), -ENOENT);
}
END_TEST

/* Every read stays beneath the checkpoint: no symlinks, no "..", no
 * absolute paths, no FIFOs that would block. */
START_TEST(test_beneath_only)
{
        double v;
        char *best = NULL;

        tree_puts("outside/metrics", "{\"val_loss\": 0.5}");
        tree_puts("ckpt/placeholder", "");
        int ckpt = openat(tree_fd, "ckpt", O_PATH | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(ckpt, 0);

        ck_assert_int_eq(symlinkat("../outside/metrics", ckpt, "metrics"), 0);
        ck_assert_int_eq(metric_json_file(ckpt, "metrics", "val_loss", &v), -ELOOP);
        ck_assert_int_eq(metric_json_file(ckpt, "../outside/metrics", "val_loss", &v), -EXDEV);
        char abs[4200];
        snprintf(abs, sizeof(abs), "%s/outside/metrics", tree_dir);
        ck_assert_int_eq(metric_json_file(ckpt, abs, "val_loss", &v), -EXDEV);

        ck_assert_int_eq(symlinkat("../outside/metrics", ckpt, "trainer_state.json"), 0);
        ck_assert_int_eq(metric_hf_best(ckpt, &best), -ELOOP);
        ck_assert_int_eq(unlinkat(ckpt, "trainer_state.json", 0), 0);

        ck_assert_int_eq(mkfifoat(ckpt, "trainer_state.json", 0644), 0);
        ck_assert_int_eq(metric_hf_state(ckpt, "eval_loss", 1, &v), -EINVAL);
        close(ckpt);
}
END_TEST

Suite *metricfile_suite(void)
{
        Suite *s = suite_create("metricfile");
        TCase *tc = tcase_create("json");

        tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
        tcase_add_test(tc, test_hf_state_step_filter);
        tcase_add_test(tc, test_hf_state_nan_infinity);
        tcase_add_test(tc, test_hf_state_null_and_missing);
        tcase_add_test(tc, test_malformed);
        tcase_add_test(tc, test_large_history);
        tcase_add_test(tc, test_hf_best);
        tcase_add_test(tc, test_json_file);
        tcase_add_test(tc, test_beneath_only);
        suite_add_tcase(s, tc);
        return s;
}
