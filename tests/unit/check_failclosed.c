/* Fail closed: a read that fails with anything but ENOENT keeps the
 * checkpoint (or the whole run) it concerns, and the policy and the floor
 * judge the rest without it. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "floor.h"
#include "policy.h"
#include "tree.h"

Suite *failclosed_suite(void);

#define NOW_USEC ((int64_t)1700000000 * (int64_t)USEC_PER_SEC)
#define R(r)     (1u << (r))

static void mk(struct ckpt *c, const char *name, double order, double metric)
{
        memset(c, 0, sizeof(*c));
        c->name = (char *)name;
        c->order_source = ORDER_STEP;
        c->order = order;
        c->has_metric = true;
        c->metric = metric;
        c->complete = true;
        c->size_bytes = 1;
        c->mtime_usec = NOW_USEC - 3600 * (int64_t)USEC_PER_SEC;
}

/* An unreadable checkpoint is kept and takes no place among best or last:
 * the best and the newest of the others are kept as if it were not there. */
START_TEST(test_policy_ranks_without_the_unreadable)
{
        struct policy p = {.monitor = (char *)"loss", .mode = MODE_MIN, .keep_top_k = 1, .keep_last = 1};
        struct ckpt c[4];

        mk(&c[0], "a", 1, 0.5);
        mk(&c[1], "b", 2, 0.1); /* would be best */
        mk(&c[2], "c", 3, 0.3);
        mk(&c[3], "d", 4, 0.9); /* would be newest */
        c[1].read_error = -EIO;
        c[3].read_error = -EMFILE;
        policy_decide(&p, c, 4, NOW_USEC);
        ck_assert(!c[0].verdict.keep);
        ck_assert(c[1].verdict.keep);
        ck_assert_uint_eq(c[1].verdict.reasons, R(KEEP_UNREADABLE));
        ck_assert_int_eq(c[1].verdict.best_rank, 0);
        /* c is best of the known ones and the newest of them */
        ck_assert_uint_eq(c[2].verdict.reasons, R(KEEP_BEST) | R(KEEP_LAST));
        ck_assert_int_eq(c[2].verdict.best_rank, 1);
        ck_assert_uint_eq(c[3].verdict.reasons, R(KEEP_UNREADABLE));
        /* incomplete and unreadable: both said */
        c[3].complete = false;
        policy_decide(&p, c, 4, NOW_USEC);
        ck_assert_uint_eq(c[3].verdict.reasons, R(KEEP_UNREADABLE) | R(KEEP_INCOMPLETE));
        ck_assert_str_eq(keep_reason_to_string(KEEP_UNREADABLE), "unreadable");
}
END_TEST

/* The floor never evicts what a failed read kept. */
START_TEST(test_floor_protects_the_unreadable)
{
        struct policy p = {.keep_last = 1};
        struct ckpt c[3];
        struct floor_cand fc[3];
        struct floor_state st = {.free_bytes = 0, .floor_bytes = 100, .target_bytes = 100};
        size_t victims[3], n = 0;

        mk(&c[0], "a", 1, NAN);
        mk(&c[1], "b", 2, NAN);
        mk(&c[2], "c", 3, NAN);
        c[0].read_error = c[1].read_error = -EIO;
        policy_decide(&p, c, 3, NOW_USEC);
        for (size_t i = 0; i < 3; i++)
                floor_cand_from_ckpt(&fc[i], 0, &c[i]);
        ck_assert_int_eq(floor_victims(&st, fc, 3, victims, &n, NULL), 1);
        ck_assert_uint_eq(n, 0);
}
END_TEST

static struct watch_conf deepspeed_watch(char **pointer)
{
        struct watch_conf w = tree_watch(KIND_DIR);

        w.pointer_files.v = pointer;
        w.pointer_files.n = 1;
        tree_use_pattern("global_step{step}");
        for (int s = 1; s <= 3; s++) {
                char name[64];
                snprintf(name, sizeof(name), "global_step%d/model.pt", s);
                tree_mkfile(name, 10);
        }
        tree_age_all();
        return w;
}

/* A pointer file that exists but cannot be read as one keeps the whole
 * run; an absent one (ENOENT) is no error. */
START_TEST(test_pointer_not_readable_keeps_run)
{
        char *pf[] = {(char *)"latest"};
        struct watch_conf w = deepspeed_watch(pf);
        struct run run = tree_scan(&w);

        ck_assert_int_eq(run.read_error, 0);
        for (size_t i = 0; i < run.n_ckpts; i++)
                ck_assert_int_eq(run.ckpts[i].read_error, 0);
        run_finish(&run);

        tree_mkdirs("latest"); /* read(2) on it: EISDIR */
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 3);
        ck_assert_int_eq(run.read_error, -EISDIR);
        ck_assert_str_eq(run.read_what, "pointer file latest");
        for (size_t i = 0; i < run.n_ckpts; i++) {
                ck_assert_int_eq(run.ckpts[i].read_error, -EISDIR);
                ck_assert_str_eq(ckpt_read_what(&run.ckpts[i]), "its run");
        }
        run_finish(&run);
}
END_TEST

/* Without privileges a mode 000 pointer file gives EACCES, a mode 000 run
 * directory is returned as an unreadable run, and a checkpoint with a mode
 * 000 subtree is kept. Checked in a child that drops to nobody; it reports
 * the first failed check by its exit status. */
static int unprivileged_checks(void)
{
        char *pf[] = {(char *)"latest"};
        struct watch_conf w = tree_watch(KIND_DIR);
        struct run *runs = NULL, run = {};
        size_t n = 0;
        int fd;

        w.pointer_files.v = pf;
        w.pointer_files.n = 1;
        if (setgroups(0, NULL) < 0 || setresgid(65534, 65534, 65534) < 0 || setresuid(65534, 65534, 65534) < 0)
                return 10;
        fd = openat_beneath(tree_fd, "a", O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0 || scan_run(fd, "a", &w, tree_pat, tree_scan_now(), &run) < 0)
                return 11;
        close(fd);
        if (run.read_error != -EACCES || run.n_ckpts != 3 || run.ckpts[0].read_error != -EACCES)
                return 12;
        run_finish(&run);
        if (scan_root(tree_fd, &w, tree_pat, tree_scan_now(), &runs, &n) < 0)
                return 13;
        /* ".", "a", "b" (unreadable), "c" */
        if (n != 4 || strcmp(runs[2].path, "b") != 0 || runs[2].read_error != -EACCES || runs[2].n_ckpts != 0)
                return 14;
        if (strcmp(runs[2].read_what, "the run directory") != 0)
                return 15;
        if (runs[3].n_ckpts != 2 || runs[3].ckpts[0].read_error != -EACCES || runs[3].ckpts[1].read_error != 0 ||
            strcmp(ckpt_read_what(&runs[3].ckpts[0]), "its tree") != 0 || runs[3].read_error != 0)
                return 16;
        runs_free(runs, n);
        return 0;
}

START_TEST(test_unprivileged_errors)
{
        char full[4096];
        pid_t pid;
        int status;

        tree_use_pattern("global_step{step}");
        tree_mkfile("a/global_step1/m", 10);
        tree_mkfile("a/global_step2/m", 10);
        tree_mkfile("a/global_step3/m", 10);
        tree_puts("a/latest", "global_step1\n");
        tree_mkfile("b/global_step1/m", 10);
        tree_mkfile("c/global_step1/sub/m", 10);
        tree_mkfile("c/global_step2/m", 10);
        tree_age_all();
        ck_assert_int_eq(chmod(tree_dir, 0755), 0);
        tree_path("", full, sizeof(full));
        {
                char cmd[4200];
                snprintf(cmd, sizeof(cmd), "chown -R 65534:65534 '%s'", full);
                ck_assert_int_eq(system(cmd), 0);
        }
        tree_path("a/latest", full, sizeof(full));
        ck_assert_int_eq(chmod(full, 0), 0);
        tree_path("b", full, sizeof(full));
        ck_assert_int_eq(chmod(full, 0), 0);
        tree_path("c/global_step1/sub", full, sizeof(full));
        ck_assert_int_eq(chmod(full, 0), 0);

        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0)
                _exit(unprivileged_checks());
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        tree_path("b", full, sizeof(full));
        chmod(full, 0755);
        tree_path("c/global_step1/sub", full, sizeof(full));
        chmod(full, 0755);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "unprivileged check %d failed",
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}
END_TEST

/* EMFILE while a checkpoint is opened or walked is no "absent": with no fd
 * left each checkpoint is kept, none is left out. */
START_TEST(test_emfile_keeps_checkpoints)
{
        char *pf[] = {(char *)"latest"};
        struct watch_conf w = deepspeed_watch(pf);
        struct rlimit rl;
        struct run run = {};
        int fd, r;

        tree_mkfile("global_step1/sub/deeper/m", 10);
        tree_age_all();
        fd = openat_beneath(tree_fd, ".", O_RDONLY | O_DIRECTORY, 0);
        ck_assert_int_ge(fd, 0);
        /* fds up to fd are taken; the listing gets one more, nothing else */
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        rl.rlim_cur = (rlim_t)fd + 2;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
        r = scan_run(fd, ".", &w, tree_pat, tree_scan_now(), &run);
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(run.n_ckpts, 3);
        for (size_t i = 0; i < run.n_ckpts; i++)
                ck_assert_int_eq(run.ckpts[i].read_error, -EMFILE);
        run_finish(&run);
        close(fd);
}
END_TEST

Suite *failclosed_suite(void)
{
        Suite *s = suite_create("failclosed");
        TCase *pure = tcase_create("pure"), *tree = tcase_create("tree");

        tcase_add_test(pure, test_policy_ranks_without_the_unreadable);
        tcase_add_test(pure, test_floor_protects_the_unreadable);
        tcase_add_checked_fixture(tree, tree_setup, tree_teardown);
        tcase_add_test(tree, test_pointer_not_readable_keeps_run);
        tcase_add_test(tree, test_unprivileged_errors);
        tcase_add_test(tree, test_emfile_keeps_checkpoints);
        suite_add_tcase(s, pure);
        suite_add_tcase(s, tree);
        return s;
}
