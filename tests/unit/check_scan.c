/* Scanning real directories: which entries are checkpoints, how they group,
 * their order, size, completeness, pins and metrics, and which directories
 * are runs. Each test builds its tree in a fresh temporary directory. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "macro.h"
#include "pattern.h"
#include "scan.h"
#include "tree.h"

Suite *scan_suite(void);
/* check_scan_pins.c */
TCase *scan_pins_tcase(void);

START_TEST(test_open_beneath)
{
        int fd;

        tree_mkfile("d/f", 10);
        tree_symlink("d", "link");
        fd = openat_beneath(tree_fd, "d/f", O_RDONLY, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        close(fd);
        ck_assert_int_eq(openat_beneath(tree_fd, "link/f", O_RDONLY, 0), -ELOOP);
        ck_assert_int_eq(openat_beneath(tree_fd, "link", O_RDONLY, 0), -ELOOP);
        ck_assert_int_eq(openat_beneath(tree_fd, "../", O_RDONLY, 0), -EXDEV);
        ck_assert_int_eq(openat_beneath(tree_fd, "/etc", O_RDONLY, 0), -EXDEV);
        ck_assert_int_eq(openat_beneath(tree_fd, "nope", O_RDONLY, 0), -ENOENT);
        /* a mode without O_CREAT is dropped, not EINVAL */
        fd = openat_beneath(tree_fd, "d/f", O_RDONLY, 0644);
        ck_assert_int_ge(fd, 0);
        close(fd);
        fd = openat_beneath(tree_fd, "d/new", O_WRONLY | O_CREAT | O_EXCL, 0600);
        ck_assert_int_ge(fd, 0);
        close(fd);

        char full[4096];
        /* O_NOFOLLOW|O_DIRECTORY on a symlink: ENOTDIR, see open(2) */
        tree_path("link", full, sizeof(full));
        ck_assert_int_eq(root_open(full), -ENOTDIR);
        tree_path("d/f", full, sizeof(full));
        ck_assert_int_eq(root_open(full), -ENOTDIR);
        tree_path("d", full, sizeof(full));
        fd = root_open(full);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(fcntl(fd, F_GETFL) & O_PATH, O_PATH);
        close(fd);
}
END_TEST

START_TEST(test_name_ignored)
{
        struct watch_conf w = tree_watch(KIND_ANY);
        char *ex[] = {(char *)"last*.ckpt", (char *)"*-last.nemo"};

        ck_assert(scan_name_ignored(&w, ".hidden"));
        ck_assert(scan_name_ignored(&w, ".ckptd-trash-checkpoint-5"));
        ck_assert(scan_name_ignored(&w, "epoch=3.ckpt.tmp"));
        ck_assert(scan_name_ignored(&w, "100.orbax-checkpoint-tmp-1712345"));
        ck_assert(scan_name_ignored(&w, "tmp-checkpoint-200"));
        ck_assert(scan_name_ignored(&w, "epoch=3-step=10-unfinished"));
        ck_assert(scan_name_ignored(&w, ""));
        ck_assert(!scan_name_ignored(&w, "checkpoint-500"));
        ck_assert(!scan_name_ignored(&w, "last.ckpt"));
        ck_assert(!scan_name_ignored(&w, "x.tmp.ckpt"));
        w.exclude.v = ex;
        w.exclude.n = ELEMENTSOF(ex);
        ck_assert(scan_name_ignored(&w, "last.ckpt"));
        ck_assert(scan_name_ignored(&w, "last-v1.ckpt"));
        ck_assert(scan_name_ignored(&w, "m-last.nemo"));
        ck_assert(!scan_name_ignored(&w, "epoch=1.ckpt"));
        ck_assert(scan_name_ignored(NULL, ".x"));
        ck_assert(!scan_name_ignored(NULL, "x"));
}
END_TEST

/* TF: ckpt-7.index + ckpt-7.data-00000-of-00001 are one checkpoint. */
START_TEST(test_grouping)
{
        struct watch_conf w = tree_watch(KIND_FILE);
        struct run run;

        tree_use_pattern("ckpt-{step}.*");
        tree_mkfile("ckpt-7.index", 100);
        tree_mkfile("ckpt-7.data-00000-of-00001", 8192);
        tree_mkfile("ckpt-10.index", 100);
        tree_mkfile("ckpt-10.data-00000-of-00002", 4096);
        tree_mkfile("ckpt-10.data-00001-of-00002", 4096);
        tree_mkfile("checkpoint", 10);
        tree_mkdirs("ckpt-12.dir"); /* a directory does not fit KIND_FILE */
        run = tree_scan(&w);

        ck_assert_str_eq(run.path, ".");
        ck_assert_uint_eq(run.n_ckpts, 2);
        const struct ckpt *a = &run.ckpts[0], *b = &run.ckpts[1];
        ck_assert_uint_eq(a->n_members, 2);
        ck_assert_str_eq(ckpt_member(a, 0), "ckpt-7.data-00000-of-00001");
        ck_assert_str_eq(ckpt_member(a, 1), "ckpt-7.index");
        ck_assert_ptr_eq(a->name, ckpt_member(a, 0));
        ck_assert_int_eq(a->order_source, ORDER_STEP);
        ck_assert_double_eq(a->order, 7);
        ck_assert(!a->is_dir);
        ck_assert(a->complete);
        ck_assert_uint_ge(a->size_bytes, 8192 + 100);

        ck_assert_uint_eq(b->n_members, 3);
        ck_assert_str_eq(b->name, "ckpt-10.data-00000-of-00002");
        ck_assert_str_eq(ckpt_member(b, 2), "ckpt-10.index");
        ck_assert_double_eq(b->order, 10);

        struct stat st;
        ck_assert_int_eq(fstatat(tree_fd, "ckpt-7.data-00000-of-00001", &st, 0), 0);
        ck_assert_uint_eq(a->ino, st.st_ino);
        ck_assert_uint_eq(a->dev, st.st_dev);
        ck_assert_uint_eq(run.dev, st.st_dev);
        run_finish(&run);

        /* the O_PATH root fd itself scans as well (getdents needs a fresh fd) */
        ck_assert_int_eq(scan_run(tree_fd, NULL, &w, tree_pat, tree_scan_now(), &run), 0);
        ck_assert_str_eq(run.path, ".");
        ck_assert_uint_eq(run.n_ckpts, 2);
        run_finish(&run);
}
END_TEST

/* A group of more files than a checkpoint record counts (CKPT_MEMBERS_MAX)
 * is not tracked in part or cut short: the whole run is kept after a read
 * error, the other checkpoints of the run as well. */
START_TEST(test_group_too_large)
{
        struct watch_conf w = tree_watch(KIND_FILE);
        struct run run;
        char name[64];

        tree_use_pattern("ckpt-{step}.*");
        tree_mkfile("ckpt-7.index", 100);
        for (unsigned i = 0; i <= CKPT_MEMBERS_MAX; i++) {
                int fd;

                snprintf(name, sizeof(name), "ckpt-5.data-%05u", i);
                fd = openat(tree_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                ck_assert_int_ge(fd, 0);
                close(fd);
        }
        run = tree_scan(&w);

        ck_assert_int_eq(run.read_error, -E2BIG);
        ck_assert_uint_eq(run.n_ckpts, 1);
        ck_assert_str_eq(run.ckpts[0].name, "ckpt-7.index");
        ck_assert_int_eq(run.ckpts[0].read_error, -E2BIG);
        ck_assert_int_eq(run.ckpts[0].read_what, READ_WHAT_RUN);
        run_finish(&run);
}
END_TEST

/* Key=value names never group (Lightning's -v1 copies are separate). */
START_TEST(test_kv_no_grouping_and_order)
{
        struct watch_conf w = tree_watch(KIND_FILE);
        char *match[] = {(char *)"*.ckpt"};
        struct run run;

        w.match.v = match;
        w.match.n = 1;
        w.policy.monitor = (char *)"val_loss";
        tree_use_pattern(NULL);
        tree_mkfile("epoch=2-step=200-val_loss=0.5.ckpt", 10);
        tree_mkfile("epoch=2-step=200-val_loss=0.5-v1.ckpt", 10);
        tree_mkfile("epoch=10-step=1000-val_loss=nan.ckpt", 10);
        tree_mkfile("epoch=1-step=100-val_loss=0.7.ckpt", 10);
        tree_mkfile("epoch=1-step=100.log", 10); /* not *.ckpt */
        run = tree_scan(&w);

        ck_assert_uint_eq(run.n_ckpts, 4);
        ck_assert_str_eq(run.ckpts[0].name, "epoch=1-step=100-val_loss=0.7.ckpt");
        ck_assert_str_eq(run.ckpts[1].name, "epoch=2-step=200-val_loss=0.5-v1.ckpt");
        ck_assert_str_eq(run.ckpts[2].name, "epoch=2-step=200-val_loss=0.5.ckpt");
        ck_assert_str_eq(run.ckpts[3].name, "epoch=10-step=1000-val_loss=nan.ckpt");
        ck_assert(run.ckpts[0].has_metric);
        ck_assert_double_eq(run.ckpts[0].metric, 0.7);
        ck_assert(run.ckpts[3].has_metric);
        ck_assert(isnan(run.ckpts[3].metric));
        for (size_t i = 0; i < run.n_ckpts; i++) {
                ck_assert_uint_eq(run.ckpts[i].n_members, 1);
                ck_assert_int_eq(run.ckpts[i].order_source, ORDER_STEP);
        }
        run_finish(&run);
}
END_TEST

START_TEST(test_order_epoch_and_mtime)
{
        struct watch_conf w = tree_watch(KIND_FILE);
        struct run run;

        tree_use_pattern("e{epoch}.bin");
        tree_mkfile("e10.bin", 1);
        tree_mkfile("e9.bin", 1);
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 2);
        ck_assert_str_eq(run.ckpts[0].name, "e9.bin");
        ck_assert_int_eq(run.ckpts[0].order_source, ORDER_EPOCH);
        ck_assert_double_eq(run.ckpts[1].order, 10);
        run_finish(&run);

        /* no step, no epoch: mtime, and no field means no metric either */
        w.policy.monitor = (char *)"val_loss";
        tree_use_pattern("model-*.pt");
        tree_mkfile("model-b.pt", 1);
        tree_mkfile("model-a.pt", 1);
        tree_set_mtime("model-a.pt", -HOUR_USEC);
        tree_set_mtime("model-b.pt", -2 * HOUR_USEC);
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 2);
        ck_assert_str_eq(run.ckpts[0].name, "model-b.pt");
        ck_assert_int_eq(run.ckpts[0].order_source, ORDER_MTIME);
        ck_assert_double_eq_tol(run.ckpts[0].order, (double)(tree_now_usec - 2 * HOUR_USEC) / 1e6, 1e-3);
        ck_assert_int_eq(run.ckpts[1].mtime_usec, tree_now_usec - HOUR_USEC);
        ck_assert(!run.ckpts[0].has_metric);
        run_finish(&run);
}
END_TEST

START_TEST(test_ignored_entries)
{
        struct watch_conf w = tree_watch(KIND_ANY);
        char *ex[] = {(char *)"*-last.ckpt"};
        struct run run;

        w.exclude.v = ex;
        w.exclude.n = 1;
        tree_use_pattern("s{step}.*");
        tree_mkfile("s1.ckpt", 1);
        tree_mkfile(".s2.ckpt", 1);
        tree_mkfile("s3.ckpt.tmp", 1);
        tree_mkdirs("s4.orbax-checkpoint-tmp-99");
        tree_mkdirs("tmp-checkpoint-5");
        tree_mkfile("s6.x-last.ckpt", 1);
        tree_mkdirs(".ckptd-trash-s7");
        /* NeMo: the marker drops its extension */
        tree_mkfile("s8.ckpt", 1);
        tree_mkfile("s8-unfinished", 0);
        /* ... or names the entry whole (a distributed checkpoint dir) */
        tree_mkdirs("s9.distcp");
        tree_mkfile("s9.distcp-unfinished", 0);
        tree_mkfile("s10.ckpt", 1);
        /* keep files are markers, never checkpoints, orphaned or not */
        tree_mkfile("s10.ckpt.keep", 0);
        tree_mkfile("s11.ckpt.keep", 0);
        run = tree_scan(&w);

        ck_assert_uint_eq(run.n_ckpts, 2);
        ck_assert_str_eq(run.ckpts[0].name, "s1.ckpt");
        ck_assert_str_eq(run.ckpts[1].name, "s10.ckpt");
        ck_assert_uint_eq(run.ckpts[1].n_members, 1);
        ck_assert_uint_eq(run.ckpts[1].pins, PIN(PIN_KEEPFILE));
        run_finish(&run);
}
END_TEST

/* Names are opaque bytes: newlines, invalid UTF-8, NAME_MAX long. */
START_TEST(test_odd_names)
{
        struct watch_conf w = tree_watch(KIND_FILE);
        char longname[NAME_MAX + 1];
        struct run run;

        tree_use_pattern("x{step}*");
        tree_mkfile("x1\nfoo", 1);
        tree_mkfile("x2\xff\xfe", 1);
        memset(longname, 'a', NAME_MAX);
        memcpy(longname, "x3", 2);
        longname[NAME_MAX] = '\0';
        tree_mkfile(longname, 1);
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 3);
        ck_assert_str_eq(run.ckpts[0].name, "x1\nfoo");
        ck_assert_str_eq(run.ckpts[1].name, "x2\xff\xfe");
        ck_assert_str_eq(run.ckpts[2].name, longname);
        ck_assert(!run.ckpts[2].pins);
        run_finish(&run);
}
END_TEST

static uint64_t expect_bytes;
static int64_t expect_mtime;

static int sum_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)path;
        (void)flag;
        (void)ftw;
        expect_bytes += (uint64_t)st->st_blocks * 512;
        int64_t t = (int64_t)st->st_mtim.tv_sec * (int64_t)USEC_PER_SEC + st->st_mtim.tv_nsec / 1000;
        if (t > expect_mtime)
                expect_mtime = t;
        return 0;
}

START_TEST(test_dir_size_and_mtime)
{
        struct watch_conf w = tree_watch(KIND_DIR);
        char full[4096];
        struct run run;

        tree_use_pattern("step-{step}");
        tree_mkfile("step-1/a", 100000);
        tree_mkfile("step-1/b/c/d", 50000);
        tree_mkfile("step-1/b/e", 4096);
        tree_mkdirs("step-1/empty/deeper");
        tree_mkfile("outside/big", 1 << 20);
        /* symlinks inside are counted as themselves, never followed */
        tree_symlink("../outside", "step-1/b/link-out");
        tree_symlink("../../outside/big", "step-1/b/link-big");
        tree_age_all();
        tree_set_mtime("step-1/b/c/d", -HOUR_USEC);

        expect_bytes = 0;
        expect_mtime = 0;
        tree_path("step-1", full, sizeof(full));
        ck_assert_int_eq(nftw(full, sum_one, 16, FTW_PHYS), 0);

        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 1);
        ck_assert(run.ckpts[0].is_dir);
        ck_assert_uint_eq(run.ckpts[0].size_bytes, expect_bytes);
        ck_assert_uint_ge(run.ckpts[0].size_bytes, 150000);
        ck_assert_uint_lt(run.ckpts[0].size_bytes, 1 << 20);
        ck_assert_int_eq(run.ckpts[0].mtime_usec, expect_mtime);
        ck_assert_int_eq(run.ckpts[0].mtime_usec, tree_now_usec - HOUR_USEC);
        run_finish(&run);
}
END_TEST

START_TEST(test_incomplete_marker)
{
        struct watch_conf w = tree_watch(KIND_DIR);
        struct run run;

        /* complete when the marker is there, or when nothing changed within
         * settle: the two are ORed */
        w.complete_marker = (char *)"trainer_state.json";
        w.settle_sec = 60;
        tree_use_pattern("checkpoint-{step}");
        tree_mkfile("checkpoint-10/trainer_state.json", 10);
        tree_mkfile("checkpoint-20/model.safetensors", 10);
        tree_mkdirs("checkpoint-30");
        tree_symlink("../x", "checkpoint-30/trainer_state.json"); /* present, even as a link */
        tree_age_all();
        tree_mkfile("checkpoint-40/model.safetensors", 10);
        tree_mkfile("checkpoint-50/model.safetensors", 10);
        tree_mkfile("checkpoint-50/trainer_state.json", 10);
        tree_set_mtime("checkpoint-40/model.safetensors", 0);
        tree_set_mtime("checkpoint-50/model.safetensors", 0);
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 5);
        ck_assert(run.ckpts[0].complete);
        ck_assert(run.ckpts[1].complete); /* no marker, but settled */
        ck_assert(run.ckpts[2].complete);
        ck_assert(!run.ckpts[3].complete); /* fresh, no marker */
        ck_assert(run.ckpts[4].complete);  /* fresh, but marked */
        for (size_t i = 0; i < run.n_ckpts; i++)
                ck_assert(!run.ckpts[i].unmarked);
        run_finish(&run);

        /* required (HF, DCP): without it, settled is not complete */
        w.require_marker = true;
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 5);
        ck_assert(run.ckpts[0].complete);
        ck_assert(!run.ckpts[1].complete && run.ckpts[1].unmarked);
        ck_assert(run.ckpts[2].complete && !run.ckpts[2].unmarked);
        ck_assert(!run.ckpts[3].complete && run.ckpts[3].unmarked);
        ck_assert(run.ckpts[4].complete);
        ck_assert_int_eq(run.ckpts[1].read_error, 0);
        run_finish(&run);
}
END_TEST

/* Under orbax, a marker the watch does not require (commit_success.txt)
 * still tells: the newest directory without it, right after one that has it, is
 * a save under way however quiet; one with a newer save after it is not,
 * nor is the newest of a line without it (a run copied from where the
 * marker is written and resumed where it is not). */
START_TEST(test_optional_marker_the_run_shows)
{
        struct watch_conf w = tree_watch(KIND_DIR);
        struct run run;

        w.preset = (char *)"orbax";
        w.complete_marker = (char *)"commit_success.txt";
        w.settle_sec = 60;
        tree_use_pattern("{step}");
        tree_mkfile("10/commit_success.txt", 1);
        tree_mkfile("20/commit_success.txt", 1);
        tree_mkfile("30/default/x", 10);
        tree_age_all();
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 3);
        ck_assert(run.ckpts[0].complete && run.ckpts[0].marked && !run.ckpts[0].unmarked);
        ck_assert(run.ckpts[1].complete && run.ckpts[1].marked);
        ck_assert(!run.ckpts[2].complete && run.ckpts[2].unmarked && !run.ckpts[2].marked);
        ck_assert_int_eq(run.ckpts[2].read_error, 0);
        run_finish(&run);

        /* a newer save after it: it died, and quiet completes it */
        tree_mkfile("40/commit_success.txt", 1);
        tree_age_all();
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 4);
        ck_assert(run.ckpts[2].complete && !run.ckpts[2].unmarked);
        ck_assert(run.ckpts[3].complete && run.ckpts[3].marked);
        run_finish(&run);

        /* resumed where no marker is written: a line of saves without it */
        tree_mkfile("50/default/x", 10);
        tree_mkfile("60/default/x", 10);
        tree_age_all();
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 6);
        ck_assert(run.ckpts[4].complete && !run.ckpts[4].unmarked);
        ck_assert(run.ckpts[5].complete && !run.ckpts[5].unmarked);
        run_finish(&run);

        /* another layout told the marker is not required: quiet alone */
        tree_mkfile("70/commit_success.txt", 1);
        tree_mkfile("80/default/x", 10);
        tree_age_all();
        w.preset = (char *)"generic";
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 8);
        ck_assert(run.ckpts[7].complete && !run.ckpts[7].unmarked);
        w.preset = (char *)"orbax";
        run_finish(&run);
        run = tree_scan(&w);
        ck_assert(!run.ckpts[7].complete && run.ckpts[7].unmarked);
        run_finish(&run);
}
END_TEST

START_TEST(test_incomplete_settle)
{
        struct watch_conf w = tree_watch(KIND_ANY);
        struct run run;

        w.settle_sec = 60;
        tree_use_pattern("c{step}");
        tree_mkfile("c1", 10);
        tree_mkfile("c2", 10);
        tree_mkfile("c3/inner", 10);
        tree_age_all();
        /* a fresh write deep inside a directory keeps it incomplete */
        tree_set_mtime("c2", -30 * (int64_t)USEC_PER_SEC);
        tree_mkfile("c3/new", 10);
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 3);
        ck_assert(run.ckpts[0].complete);
        ck_assert(!run.ckpts[1].complete);
        ck_assert(!run.ckpts[2].complete);
        run_finish(&run);

        w.settle_sec = 20;
        run = tree_scan(&w);
        ck_assert(run.ckpts[1].complete);
        run_finish(&run);
}
END_TEST

START_TEST(test_json_file_metric)
{
        struct watch_conf w = tree_watch(KIND_DIR);
        struct run run;

        w.metric_source = METRIC_JSON_FILE;
        w.metric_file = (char *)"metrics/metrics";
        w.policy.monitor = (char *)"val_loss";
        tree_use_pattern("{step}");
        tree_mkdirs("1/metrics");
        tree_puts("1/metrics/metrics", "{\"val_loss\": 0.25}");
        tree_mkdirs("2/metrics");
        tree_puts("2/metrics/metrics", "{\"val_loss\": Infinity}");
        tree_mkdirs("3");
        tree_mkdirs("4.orbax-checkpoint-tmp-1");
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 3);
        ck_assert(run.ckpts[0].has_metric);
        ck_assert_double_eq(run.ckpts[0].metric, 0.25);
        ck_assert(run.ckpts[1].has_metric);
        ck_assert(isinf(run.ckpts[1].metric));
        ck_assert(!run.ckpts[2].has_metric);
        run_finish(&run);

        /* without a monitor nothing is read */
        w.policy.monitor = NULL;
        run = tree_scan(&w);
        ck_assert(!run.ckpts[0].has_metric);
        run_finish(&run);
}
END_TEST

START_TEST(test_recursive_runs)
{
        struct watch_conf w = tree_watch(KIND_DIR);
        struct run *runs = NULL;
        size_t n = 0;

        tree_use_pattern("checkpoint-{step}");
        tree_mkfile("a/checkpoint-1/sub/x", 1); /* inside a checkpoint: never a run */
        tree_mkfile("a/checkpoint-2/x", 1);
        tree_mkfile("a/b/checkpoint-3/x", 1);
        tree_mkdirs("a/b/c");
        tree_mkdirs("z");
        tree_mkdirs(".hidden/checkpoint-4");
        tree_mkdirs("tmp-checkpoint-5/checkpoint-6");
        tree_mkdirs("checkpoint-7/checkpoint-8");
        tree_symlink("a", "link-to-a");
        ck_assert_int_eq(scan_root(tree_fd, &w, tree_pat, tree_scan_now(), &runs, &n), 0);

        ck_assert_uint_eq(n, 5);
        ck_assert_str_eq(runs[0].path, ".");
        ck_assert_str_eq(runs[1].path, "a");
        ck_assert_str_eq(runs[2].path, "a/b");
        ck_assert_str_eq(runs[3].path, "a/b/c");
        ck_assert_str_eq(runs[4].path, "z");
        ck_assert_uint_eq(runs[0].n_ckpts, 1);
        ck_assert_str_eq(runs[0].ckpts[0].name, "checkpoint-7");
        ck_assert_uint_eq(runs[1].n_ckpts, 2);
        ck_assert_uint_eq(runs[2].n_ckpts, 1);
        ck_assert_str_eq(runs[2].ckpts[0].name, "checkpoint-3");
        ck_assert_uint_eq(runs[3].n_ckpts, 0);
        runs_free(runs, n);

        /* with file checkpoints a directory matching the pattern is a run */
        w.kind = KIND_FILE;
        ck_assert_int_eq(scan_root(tree_fd, &w, tree_pat, tree_scan_now(), &runs, &n), 0);
        ck_assert_uint_eq(n, 11);
        ck_assert_str_eq(runs[4].path, "a/b/checkpoint-3");
        ck_assert_str_eq(runs[6].path, "a/checkpoint-1/sub");
        ck_assert_str_eq(runs[9].path, "checkpoint-7/checkpoint-8");
        runs_free(runs, n);

        w.kind = KIND_DIR;
        w.recursive = false;
        ck_assert_int_eq(scan_root(tree_fd, &w, tree_pat, tree_scan_now(), &runs, &n), 0);
        ck_assert_msg(n == 1, "%zu runs, last %s", n, runs[n - 1].path);
        ck_assert_str_eq(runs[0].path, ".");
        runs_free(runs, n);
}
END_TEST

/* The visit of scan_root_visit(): records each path; in "a/b" it writes
 * checkpoint-9 (a save landing right after the watch is added), and it
 * fails with -EIO where fail_at says. */
struct visits {
        char seen[8][64];
        size_t n;
        const char *fail_at;
};

static int visit_record(int dir_fd, const char *path, void *userdata)
{
        struct visits *v = userdata;

        if (v->n < 8)
                snprintf(v->seen[v->n++], sizeof(v->seen[0]), "%s", path);
        if (v->fail_at && strcmp(path, v->fail_at) == 0)
                return -EIO;
        if (strcmp(path, "a/b") == 0)
                ck_assert_int_eq(mkdirat(dir_fd, "checkpoint-9", 0755), 0);
        return 0;
}

START_TEST(test_visit_before_listing)
{
        struct watch_conf w = tree_watch(KIND_DIR);
        struct visits v = {};
        struct run *runs = NULL;
        size_t n = 0;

        tree_use_pattern("checkpoint-{step}");
        tree_mkfile("a/checkpoint-1/x", 1);
        tree_mkdirs("a/b");
        tree_mkdirs("a/checkpoint-2/sub"); /* a checkpoint: never visited */
        ck_assert_int_eq(scan_root_visit(tree_fd, &w, tree_pat, tree_scan_now(), visit_record, &v, &runs, &n), 0);

        /* every run visited once, in the order the runs come back */
        ck_assert_uint_eq(v.n, n);
        ck_assert_uint_eq(n, 3);
        for (size_t i = 0; i < n; i++)
                ck_assert_str_eq(v.seen[i], runs[i].path);
        /* what the visit saw written is in the listing that follows it */
        ck_assert_str_eq(runs[2].path, "a/b");
        ck_assert_uint_eq(runs[2].n_ckpts, 1);
        ck_assert_str_eq(runs[2].ckpts[0].name, "checkpoint-9");
        runs_free(runs, n);

        /* a failed visit fails the scan with its error, nothing returned */
        v = (struct visits){.fail_at = "a/b"};
        runs = NULL, n = 0;
        ck_assert_int_eq(scan_root_visit(tree_fd, &w, tree_pat, tree_scan_now(), visit_record, &v, &runs, &n), -EIO);
        ck_assert_ptr_null(runs);
        ck_assert_uint_eq(n, 0);
}
END_TEST

static void mount_tmpfs(const char *path)
{
        char full[4096];

        tree_path(path, full, sizeof(full));
        ck_assert_msg(mount("none", full, "tmpfs", 0, "size=16m") == 0, "mount %s: %m", full);
}

/* Other filesystems below a run are neither checkpoints, nor runs, nor part
 * of a checkpoint's size. Needs root; runs in a private mount namespace. */
START_TEST(test_mount_points)
{
        struct watch_conf w = tree_watch(KIND_DIR);
        struct run *runs = NULL;
        size_t n = 0;
        char full[4096];
        struct stat st;
        uint64_t mnt_id;
        struct ckpt c;

        if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return; /* not allowed here: nothing to test */
        /* fds opened before unshare(2) still see the old mount tree */
        tree_reopen();
        tree_use_pattern("checkpoint-{step}");
        tree_mkdirs("m");
        mount_tmpfs("m");
        tree_mkdirs("m/checkpoint-1");
        tree_mkdirs("m/sub");
        tree_mkdirs("checkpoint-3");
        mount_tmpfs("checkpoint-3");
        tree_mkfile("checkpoint-2/a", 4096);
        tree_mkdirs("checkpoint-2/inner");
        mount_tmpfs("checkpoint-2/inner");
        tree_mkfile("checkpoint-2/inner/big", 1 << 20);

        ck_assert_int_eq(scan_root(tree_fd, &w, tree_pat, tree_scan_now(), &runs, &n), 0);
        ck_assert_msg(n == 1, "%zu runs, last %s", n, runs[n - 1].path);
        ck_assert_uint_eq(runs[0].n_ckpts, 1);
        ck_assert_str_eq(runs[0].ckpts[0].name, "checkpoint-2");
        ck_assert_uint_ge(runs[0].ckpts[0].size_bytes, 4096);
        ck_assert_uint_lt(runs[0].ckpts[0].size_bytes, 1 << 20);
        /* never removed whole, so kept whole: a read error of its tree */
        ck_assert_int_eq(runs[0].ckpts[0].read_error, -EXDEV);
        ck_assert_str_eq(ckpt_read_what(&runs[0].ckpts[0]),
                         "its tree (a mount point inside it, which ckptd never enters)");
        runs_free(runs, n);

        /* the daemon's name-by-name path says the same, whether it knows
         * the run's mount or asks */
        ck_assert_int_eq(stat_mnt(tree_fd, "", &st, &mnt_id), 0);
        for (int known = 0; known <= 1; known++) {
                uint64_t id = known ? mnt_id : 0;

                ck_assert_int_eq(scan_one(tree_fd, id, "checkpoint-3", &w, tree_pat, tree_scan_now(), &c), 0);
                ck_assert_int_eq(scan_one(tree_fd, id, "checkpoint-2", &w, tree_pat, tree_scan_now(), &c), 1);
                ck_assert_int_eq(c.read_error, -EXDEV);
                ck_assert_uint_lt(c.size_bytes, 1 << 20);
                ckpt_finish(&c);
        }

        static const char *const mounts[] = {"m", "checkpoint-3", "checkpoint-2/inner"};
        for (size_t i = 0; i < ELEMENTSOF(mounts); i++) {
                tree_path(mounts[i], full, sizeof(full));
                ck_assert_int_eq(umount2(full, MNT_DETACH), 0);
        }
}
END_TEST

/* The component-by-component fallback of openat_beneath() (openat2 refused by
 * a seccomp filter) keeps every rule: beneath, no symlinks, no mounts. */
START_TEST(test_openat_beneath_walk)
{
        char full[4096];
        int fd;

        tree_mkfile("a/b/file", 10);
        tree_symlink("a", "link");
        tree_symlink("file", "a/b/flink");
        fd = openat_beneath_walk(tree_fd, "a/b/file", O_RDONLY, 0);
        ck_assert_int_ge(fd, 0);
        close(fd);
        fd = openat_beneath_walk(tree_fd, ".", O_RDONLY | O_DIRECTORY, 0);
        ck_assert_int_ge(fd, 0);
        close(fd);
        fd = openat_beneath_walk(tree_fd, "a//./b/", O_PATH | O_DIRECTORY, 0);
        ck_assert_int_ge(fd, 0);
        close(fd);
        ck_assert_int_eq(openat_beneath_walk(tree_fd, "link/b/file", O_RDONLY, 0), -ELOOP);
        ck_assert_int_eq(openat_beneath_walk(tree_fd, "link", O_PATH, 0), -ELOOP);
        ck_assert_int_eq(openat_beneath_walk(tree_fd, "a/b/flink", O_RDONLY, 0), -ELOOP);
        ck_assert_int_eq(openat_beneath_walk(tree_fd, "a/../a/b/file", O_RDONLY, 0), -EXDEV);
        ck_assert_int_eq(openat_beneath_walk(tree_fd, "/etc/passwd", O_RDONLY, 0), -EXDEV);
        ck_assert_int_eq(openat_beneath_walk(tree_fd, "a/missing", O_RDONLY, 0), -ENOENT);

        if (geteuid() != 0 || unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
                return; /* mounts not allowed here */
        tree_reopen();
        tree_mkdirs("a/m");
        mount_tmpfs("a/m");
        tree_mkfile("a/m/x", 10);
        ck_assert_int_eq(openat_beneath_walk(tree_fd, "a/m/x", O_RDONLY, 0), -EXDEV);
        ck_assert_int_eq(openat_beneath_walk(tree_fd, "a/m", O_RDONLY | O_DIRECTORY, 0), -EXDEV);
        /* a bind mount of the same filesystem is a mount crossing too */
        tree_mkdirs("a/bind");
        tree_path("a/bind", full, sizeof(full));
        {
                char src[4096];
                tree_path("a/b", src, sizeof(src));
                ck_assert_int_eq(mount(src, full, NULL, MS_BIND, NULL), 0);
        }
        ck_assert_int_eq(openat_beneath_walk(tree_fd, "a/bind/file", O_RDONLY, 0), -EXDEV);
        ck_assert_int_eq(umount2(full, MNT_DETACH), 0);
        tree_path("a/m", full, sizeof(full));
        ck_assert_int_eq(umount2(full, MNT_DETACH), 0);
}
END_TEST

/* An unreadable run is returned marked (read_error), the rest as usual. */
START_TEST(test_unreadable_run)
{
        struct watch_conf w = tree_watch(KIND_DIR);
        struct run *runs = NULL;
        size_t n = 0;

        if (geteuid() == 0)
                return; /* root reads everything: nothing to test */
        tree_use_pattern("checkpoint-{step}");
        tree_mkdirs("a/checkpoint-1");
        tree_mkdirs("b/checkpoint-1");
        char full[4096];
        tree_path("a", full, sizeof(full));
        ck_assert_int_eq(chmod(full, 0), 0);
        ck_assert_int_eq(scan_root(tree_fd, &w, tree_pat, tree_scan_now(), &runs, &n), 0);
        chmod(full, 0755);
        ck_assert_uint_eq(n, 3);
        ck_assert_str_eq(runs[1].path, "a");
        ck_assert_int_eq(runs[1].read_error, -EACCES);
        ck_assert_str_eq(runs[2].path, "b");
        runs_free(runs, n);
}
END_TEST

/* The paths the daemon prints and opens: a run at its root's top, ".", is
 * no part of them. */
START_TEST(test_path_join)
{
        static const struct {
                const char *a, *b, *c, *want;
        } cases[] = {
                {"/data/runs", "job1", "epoch=3.ckpt", "/data/runs/job1/epoch=3.ckpt"},
                {"/data/runs", ".", "epoch=3.ckpt", "/data/runs/epoch=3.ckpt"},
                {"/data/runs", "a/b", NULL, "/data/runs/a/b"},
                {"/data/runs", ".", NULL, "/data/runs"},
                {".", "sub", NULL, "sub"},
                {".", ".", NULL, ""},
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *p = path_join(cases[i].a, cases[i].b, cases[i].c);

                ck_assert_ptr_nonnull(p);
                ck_assert_str_eq(p, cases[i].want);
                free(p);
        }
}
END_TEST

Suite *scan_suite(void)
{
        Suite *s = suite_create("scan");
        TCase *tc = tcase_create("run");
        /* 65536 files, a few seconds where /tmp has no journal */
        TCase *big = tcase_create("big");

        tcase_add_checked_fixture(big, tree_setup, tree_teardown);
        tcase_add_test(big, test_group_too_large);
        tcase_set_timeout(big, 120);
        suite_add_tcase(s, big);

        tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
        tcase_add_test(tc, test_open_beneath);
        tcase_add_test(tc, test_path_join);
        tcase_add_test(tc, test_name_ignored);
        tcase_add_test(tc, test_grouping);
        tcase_add_test(tc, test_kv_no_grouping_and_order);
        tcase_add_test(tc, test_order_epoch_and_mtime);
        tcase_add_test(tc, test_ignored_entries);
        tcase_add_test(tc, test_odd_names);
        tcase_add_test(tc, test_dir_size_and_mtime);
        tcase_add_test(tc, test_incomplete_marker);
        tcase_add_test(tc, test_optional_marker_the_run_shows);
        tcase_add_test(tc, test_incomplete_settle);
        tcase_add_test(tc, test_json_file_metric);
        tcase_add_test(tc, test_recursive_runs);
        tcase_add_test(tc, test_visit_before_listing);
        tcase_add_test(tc, test_mount_points);
        tcase_add_test(tc, test_openat_beneath_walk);
        tcase_add_test(tc, test_unreadable_run);
        suite_add_tcase(s, tc);
        suite_add_tcase(s, scan_pins_tcase());
        return s;
}
