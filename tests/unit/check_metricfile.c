/* Metrics from JSON files inside checkpoints, on real files in a temporary
 * directory: HF trainer_state.json and Orbax-style metrics files. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
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

/* Wait until the coarse clock has moved past the file's ctime: the cache
 * only keeps what a later write could not hide (same stamps). */
static void wait_ctime_settled(const char *path)
{
        struct timespec now, deadline;
        struct stat st;
        char full[4096];

        tree_path(path, full, sizeof(full));
        ck_assert_int_eq(stat(full, &st), 0);
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += 5;
        for (;;) {
                struct timespec mono, pause = {.tv_nsec = 1000000};

                clock_gettime(CLOCK_REALTIME_COARSE, &now);
                if (now.tv_sec > st.st_ctim.tv_sec ||
                    (now.tv_sec == st.st_ctim.tv_sec && now.tv_nsec > st.st_ctim.tv_nsec))
                        return;
                clock_gettime(CLOCK_MONOTONIC, &mono);
                ck_assert_msg(mono.tv_sec < deadline.tv_sec, "coarse clock did not pass the ctime");
                nanosleep(&pause, NULL);
        }
}

/* Parsed once per change: a second sweep over an unchanged file does not
 * read it again; any write (same size, even with the mtime put back) does. */
START_TEST(test_cache_once_per_change)
{
        unsigned long n0 = metric_parse_count();
        char *best = NULL;
        double v;

        tree_puts("trainer_state.json", hf_state);
        wait_ctime_settled("trainer_state.json");
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 300, &v), 0);
        ck_assert_double_eq(v, 0.45);
        ck_assert_uint_eq(metric_parse_count(), n0 + 1);
        for (int i = 0; i < 3; i++) {
                v = 0;
                ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 300, &v), 0);
                ck_assert_double_eq(v, 0.45);
                ck_assert_int_eq(metric_hf_best(tree_fd, &best), 0);
                ck_assert_str_eq(best, "checkpoint-200");
                free(best);
        }
        ck_assert_uint_eq(metric_parse_count(), n0 + 1);
        /* another question about the same file is parsed anew */
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 250, &v), 0);
        ck_assert_double_eq(v, 0.4);
        ck_assert_uint_eq(metric_parse_count(), n0 + 2);

        /* same size, new content */
        char *changed = strdup(hf_state);
        ck_assert_ptr_nonnull(changed);
        char *at = strstr(changed, "0.45");
        ck_assert_ptr_nonnull(at);
        memcpy(at, "0.15", 4);
        tree_puts("trainer_state.json", changed);
        free(changed);
        tree_set_mtime("trainer_state.json", 0);
        wait_ctime_settled("trainer_state.json");
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 300, &v), 0);
        ck_assert_double_eq(v, 0.15);
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 300, &v), 0);
        ck_assert_uint_eq(metric_parse_count(), n0 + 3);

        /* a hostile file costs one parse too, and stays unreadable */
        tree_puts("trainer_state.json", "{\"log_history\": [");
        wait_ctime_settled("trainer_state.json");
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 300, &v), -EINVAL);
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 300, &v), -EINVAL);
        ck_assert_int_eq(metric_hf_best(tree_fd, &best), -EINVAL);
        ck_assert_uint_eq(metric_parse_count(), n0 + 4);

        /* the Orbax reader shares the cache */
        tree_puts("metrics/metrics", "{\"val_loss\": 0.5}");
        wait_ctime_settled("metrics/metrics");
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "val_loss", &v), 0);
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "val_loss", &v), 0);
        ck_assert_double_eq(v, 0.5);
        ck_assert_uint_eq(metric_parse_count(), n0 + 5);
}
END_TEST

/* ASan keeps freed memory in quarantine (256 MB by default) and pads every
 * allocation: a bound that still fails the whole-tree reader (1.1 GB
 * without ASan) under it. */
#ifdef __SANITIZE_ADDRESS__
#define RSS_GROWTH_MAX_KIB (768L * 1024)
#else
#define RSS_GROWTH_MAX_KIB (128L * 1024)
#endif

static long max_rss_kib(void)
{
        struct rusage ru;

        ck_assert_int_eq(getrusage(RUSAGE_SELF, &ru), 0);
        return ru.ru_maxrss;
}

/* head + n copies of item + tail, into the tree. */
static void put_repeated(const char *path, const char *head, const char *item, size_t n, const char *tail)
{
        size_t hl = strlen(head), il = strlen(item), tl = strlen(tail), len = hl + n * il + tl;
        char *s = malloc(len);

        ck_assert_ptr_nonnull(s);
        memcpy(s, head, hl);
        for (size_t i = 0; i < n; i++)
                memcpy(s + hl + i * il, item, il);
        memcpy(s + hl + n * il, tail, tl);
        tree_put(path, s, len);
        free(s);
}

/* A 9.9 MB history of "{}," once took 2.5 GB (4.5 MB here: 1.1 GB): memory
 * is bounded whatever the content, and what is over budget is unreadable
 * (not absent). */
START_TEST(test_memory_bounded)
{
        long before = max_rss_kib();
        char *best = NULL;
        double v;

        put_repeated("trainer_state.json", "{\"log_history\": [", "{},", 1500000, "{}]}");
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 10, &v), -ENOENT);
        ck_assert_int_eq(metric_hf_best(tree_fd, &best), 0);
        ck_assert_ptr_null(best);
        ck_assert_msg(max_rss_kib() - before < RSS_GROWTH_MAX_KIB, "peak RSS grew by %ld KiB", max_rss_kib() - before);
        /* the same as a top-level array, or inside one history entry */
        put_repeated("trainer_state.json", "[", "{},", 1500000, "{}]");
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 10, &v), -E2BIG);
        put_repeated("trainer_state.json", "{\"log_history\": [{\"eval_loss\": 1, \"step\": 1, \"x\": [", "{},",
                     1500000, "{}]}]}");
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 10, &v), -E2BIG);
        ck_assert_int_eq(metric_hf_best(tree_fd, &best), -E2BIG);
        put_repeated("metrics/metrics", "{\"val_loss\": 0.5, \"x\": [", "{},", 1500000, "{}]}");
        ck_assert_int_eq(metric_json_file(tree_fd, "metrics/metrics", "val_loss", &v), -E2BIG);
        /* the file buffer (~10 MB) and one bounded value tree */
        ck_assert_msg(max_rss_kib() - before < RSS_GROWTH_MAX_KIB, "peak RSS grew by %ld KiB", max_rss_kib() - before);
}
END_TEST

/* Over 64 MiB is refused before reading; a sparse file costs nothing. */
START_TEST(test_size_cap)
{
        char full[4096];
        double v;
        int fd;

        tree_puts("trainer_state.json", "{\"log_history\": []}");
        tree_path("trainer_state.json", full, sizeof(full));
        fd = open(full, O_WRONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, (64 << 20) + 1), 0);
        close(fd);
        ck_assert_int_eq(metric_hf_state(tree_fd, "eval_loss", 10, &v), -EFBIG);
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
        tcase_add_test(tc, test_cache_once_per_change);
        tcase_add_test(tc, test_size_cap);
        tcase_add_test(tc, test_beneath_only);
        suite_add_tcase(s, tc);
        /* millions of JSON values: seconds, more under ASan */
        tc = tcase_create("bounds");
        tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_memory_bounded);
        suite_add_tcase(s, tc);
        return s;
}
