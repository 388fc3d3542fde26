/* Pins on real directories: keep files, symlinks, pointer files, HF's
 * best_model_checkpoint; BSD flocks are read from /proc/locks. A second
 * TCase of the scan suite. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/sysmacros.h>

#include "scan_pins.h"
#include "tree.h"
#include "verify.h"

TCase *scan_pins_tcase(void);

START_TEST(test_symlink_pins)
{
        struct watch_conf w = tree_watch(KIND_FILE);
        char *match[] = {(char *)"*.ckpt"};
        char *ex[] = {(char *)"last*.ckpt"};
        struct run run;

        w.match.v = match;
        w.match.n = 1;
        w.exclude.v = ex;
        w.exclude.n = 1;
        tree_use_pattern(NULL);
        tree_mkfile("epoch=1-step=10.ckpt", 1);
        tree_mkfile("epoch=2-step=20.ckpt", 1);
        tree_mkfile("epoch=3-step=30.ckpt", 1);
        tree_mkfile("epoch=4-step=40.ckpt", 1);
        tree_mkfile("epoch=5-step=50.ckpt", 1);
        tree_mkfile("epoch=6-step=60.ckpt", 1);
        tree_mkfile("epoch=7-step=70.ckpt", 1);
        tree_mkdirs("sub");
        /* Lightning save_last="link" */
        tree_symlink("epoch=2-step=20.ckpt", "last.ckpt");
        tree_symlink("./epoch=3-step=30.ckpt", "best");
        /* a symlink that itself matches is still never a checkpoint */
        tree_symlink("epoch=1-step=10.ckpt", "epoch=9-step=90.ckpt");
        /* not followed: any component naming a checkpoint pins it (the
         * absolute one and the one through sub/.. point to it; "up" may,
         * through a run whose own path is not ours to trust) */
        tree_symlink("../epoch=4-step=40.ckpt", "up");
        char abs[4200];
        tree_path("epoch=5-step=50.ckpt", abs, sizeof(abs));
        tree_symlink(abs, "absolute");
        tree_symlink("sub/../epoch=6-step=60.ckpt", "through-sub");
        /* no component names a checkpoint: no pin */
        tree_symlink("missing.ckpt", "dangling");
        tree_symlink("/elsewhere/epoch=7-step=70.ckpt.bak", "elsewhere");
        run = tree_scan(&w);

        ck_assert_uint_eq(run.n_ckpts, 7);
        ck_assert_uint_eq(tree_find(&run, "epoch=1-step=10.ckpt")->pins, PIN(PIN_SYMLINK));
        ck_assert_uint_eq(tree_find(&run, "epoch=2-step=20.ckpt")->pins, PIN(PIN_SYMLINK));
        ck_assert_uint_eq(tree_find(&run, "epoch=3-step=30.ckpt")->pins, PIN(PIN_SYMLINK));
        ck_assert_uint_eq(tree_find(&run, "epoch=4-step=40.ckpt")->pins, PIN(PIN_SYMLINK));
        ck_assert_uint_eq(tree_find(&run, "epoch=5-step=50.ckpt")->pins, PIN(PIN_SYMLINK));
        ck_assert_uint_eq(tree_find(&run, "epoch=6-step=60.ckpt")->pins, PIN(PIN_SYMLINK));
        ck_assert_uint_eq(tree_find(&run, "epoch=7-step=70.ckpt")->pins, 0);
        run_finish(&run);
}
END_TEST

/* A symlink into a directory checkpoint pins the whole checkpoint. */
START_TEST(test_symlink_into_dir)
{
        struct watch_conf w = tree_watch(KIND_DIR);
        struct run run;

        tree_use_pattern("checkpoint-{step}");
        tree_mkfile("checkpoint-1/model.bin", 10);
        tree_mkfile("checkpoint-2/model.bin", 10);
        tree_symlink("checkpoint-1/model.bin", "model.bin");
        tree_symlink("checkpoint-2/", "best");
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 2);
        ck_assert_uint_eq(run.ckpts[0].pins, PIN(PIN_SYMLINK));
        ck_assert_uint_eq(run.ckpts[1].pins, PIN(PIN_SYMLINK));
        run_finish(&run);
}
END_TEST

/* A watch of checkpoints of kind named by pattern, whose pointer files are
 * pf[0..n) (kept by the caller). */
static struct watch_conf pointer_watch(enum ckpt_kind kind, char **pf, size_t n, const char *pattern)
{
        struct watch_conf w = tree_watch(kind);

        w.pointer_files.v = pf;
        w.pointer_files.n = n;
        tree_use_pattern(pattern);
        return w;
}

START_TEST(test_pointer_by_name)
{
        char *pf[] = {(char *)"latest", (char *)"other", (char *)"missing"};
        struct watch_conf w = pointer_watch(KIND_DIR, pf, ELEMENTSOF(pf), "global_step{step}");
        struct run run;

        tree_mkdirs("global_step10");
        tree_mkdirs("global_step20");
        tree_mkdirs("global_step30");
        tree_mkdirs("global_step40");
        tree_puts("latest", "global_step10\n"); /* DeepSpeed */
        tree_puts("other", "  /ckpts/run/global_step30/  \n");
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 4);
        ck_assert_uint_eq(run.ckpts[0].pins, PIN(PIN_POINTER));
        ck_assert_uint_eq(run.ckpts[1].pins, 0);
        ck_assert_uint_eq(run.ckpts[2].pins, PIN(PIN_POINTER));
        ck_assert_uint_eq(run.ckpts[3].pins, 0);
        run_finish(&run);

        /* a directory's name as a shell or a person writes it */
        tree_puts("latest", "./global_step20/.\n");
        tree_puts("other", "/ckpts/run/global_step40/./");
        run = tree_scan(&w);
        ck_assert_uint_eq(run.ckpts[0].pins, 0);
        ck_assert_uint_eq(run.ckpts[1].pins, PIN(PIN_POINTER));
        ck_assert_uint_eq(run.ckpts[3].pins, PIN(PIN_POINTER));
        run_finish(&run);

        /* a pointer that is a symlink is not followed; a huge one is no pointer */
        ck_assert_int_eq(unlinkat(tree_fd, "latest", 0), 0);
        tree_symlink("global_step20", "latest");
        tree_mkfile("other", 5000);
        run = tree_scan(&w);
        for (size_t i = 0; i < run.n_ckpts; i++)
                ck_assert_uint_eq(run.ckpts[i].pins & PIN(PIN_POINTER), 0);
        /* ... but the symlink pins as a symlink */
        ck_assert_uint_eq(run.ckpts[1].pins, PIN(PIN_SYMLINK));
        run_finish(&run);

        /* one caught empty while its trainer rewrites it in place, blank,
         * or holding a NUL may name any: the run is kept */
        ck_assert_int_eq(unlinkat(tree_fd, "other", 0), 0);
        tree_puts("other", "");
        run = tree_scan(&w);
        ck_assert_int_eq(run.read_error, -ENODATA);
        ck_assert_str_eq(run.read_what, "pointer file other");
        run_finish(&run);
        tree_puts("other", " \n");
        run = tree_scan(&w);
        ck_assert_int_eq(run.read_error, -ENODATA);
        run_finish(&run);
        {
                int fd = openat(tree_fd, "other", O_WRONLY | O_CREAT | O_TRUNC, 0644);

                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(write(fd, "global\0step30", 13), 13);
                close(fd);
        }
        run = tree_scan(&w);
        ck_assert_int_eq(run.read_error, -EBADMSG);
        run_finish(&run);
        /* so does another control character: a name is one line */
        tree_puts("other", "global_step30\x7f");
        run = tree_scan(&w);
        ck_assert_int_eq(run.read_error, -EBADMSG);
        run_finish(&run);
        tree_puts("other", "global_step30\nglobal_step40\n");
        run = tree_scan(&w);
        ck_assert_int_eq(run.read_error, -EBADMSG);
        run_finish(&run);

        /* a symlink whose target names no checkpoint (a restore point kept
         * elsewhere) may hold any name: not read, the run is kept */
        ck_assert_int_eq(unlinkat(tree_fd, "other", 0), 0);
        ck_assert_int_eq(unlinkat(tree_fd, "latest", 0), 0);
        tree_symlink("../shared/restore_point", "latest");
        run = tree_scan(&w);
        ck_assert_int_eq(run.read_error, -ELOOP);
        ck_assert_ptr_nonnull(strstr(run.read_what, "pointer file latest"));
        run_finish(&run);
}
END_TEST

/* Megatron's tracker holds the iteration, not the name. */
START_TEST(test_pointer_by_number)
{
        char *pf[] = {(char *)"latest_checkpointed_iteration.txt"};
        struct watch_conf w = pointer_watch(KIND_DIR, pf, 1, "iter_{step}");
        struct run run;

        tree_mkdirs("iter_0000100");
        tree_mkdirs("iter_0000200");
        tree_mkdirs("iter_0000300");
        tree_puts("latest_checkpointed_iteration.txt", "200\n");
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 3);
        ck_assert_double_eq(run.ckpts[1].order, 200);
        ck_assert_uint_eq(run.ckpts[0].pins, 0);
        ck_assert_uint_eq(run.ckpts[1].pins, PIN(PIN_POINTER));
        ck_assert_uint_eq(run.ckpts[2].pins, 0);
        run_finish(&run);

        tree_puts("latest_checkpointed_iteration.txt", "release");
        run = tree_scan(&w);
        for (size_t i = 0; i < run.n_ckpts; i++)
                ck_assert_uint_eq(run.ckpts[i].pins, 0);
        run_finish(&run);

        /* order by mtime is never matched by number */
        tree_use_pattern("iter_*");
        tree_puts("latest_checkpointed_iteration.txt", "0");
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 3);
        for (size_t i = 0; i < run.n_ckpts; i++)
                ck_assert_uint_eq(run.ckpts[i].pins, 0);
        run_finish(&run);
}
END_TEST

/* The check just before a removal reads the pointer for one victim: a name
 * of another entry of the run says nothing, nor does a number of the run
 * as decided or past them all (a new save), nor one quiet for settle; one
 * written within settle that names none ("global_" of "global_step20", "2"
 * of "20") keeps the victim (EAGAIN). */
START_TEST(test_pointer_names_half_written)
{
        struct watch_conf w = tree_watch(KIND_DIR);
        char *pf[] = {(char *)"latest"};
        struct strv files = {.v = pf, .n = 1};
        const struct ckpt *c;
        struct run run;

        w.pointer_files = files;
        tree_use_pattern("global_step{step}");
        tree_mkdirs("global_step1");
        tree_mkdirs("global_step10");
        tree_mkdirs("global_step20");
        tree_puts("latest", "global_step20\n");
        tree_age_all();
        run = tree_scan(&w);
        c = tree_find(&run, "global_step1");

        /* what latest holds, its mtime from now, settle, and the answer */
        static const struct {
                const char *text;
                int64_t mtime, settle;
                int want;
        } cases[] = {
                /* quiet: naming another, or nothing, says nothing */
                {"global_step20\n", -HOUR_USEC, 2 * USEC_PER_SEC, 0},
                {"global_step1", -HOUR_USEC, 2 * USEC_PER_SEC, 1},
                {"global_", -HOUR_USEC, 2 * USEC_PER_SEC, 0},
                /* written just now */
                {"global_", 0, 2 * USEC_PER_SEC, -EAGAIN},
                {"global_", 0, 0, 0}, /* settle 0: off */
                {"2", 0, 2 * USEC_PER_SEC, -EAGAIN},
                {"20", 0, 2 * USEC_PER_SEC, 0},
                {"30", 0, 2 * USEC_PER_SEC, 0},
                {"1", 0, 2 * USEC_PER_SEC, 1},
                {"./global_step10/", 0, 2 * USEC_PER_SEC, 0},
                {"./global_step10/.", 0, 2 * USEC_PER_SEC, 0},
                {"/elsewhere/global_step20", 0, 2 * USEC_PER_SEC, 0},
                {"..", 0, 2 * USEC_PER_SEC, -EAGAIN},
                /* dated a day ahead: its time says nothing */
                {"global_", 24 * HOUR_USEC, 2 * USEC_PER_SEC, 0},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                tree_puts("latest", cases[i].text);
                tree_set_mtime("latest", cases[i].mtime);
                ck_assert_msg(pins_pointer_names(tree_fd, &files, &run, c, tree_now_usec, cases[i].settle) ==
                                      cases[i].want,
                              "latest holding \"%s\"", cases[i].text);
        }

        /* a name (or number) that is a part of the victim's, written just
         * now: "global_step1" or "1" of "global_step10" */
        static const struct {
                const char *text;
                int64_t mtime;
                int want;
        } parts[] = {
                {"global_step1", 0, -EAGAIN},
                {"./global_step1", 0, -EAGAIN},
                {"1", 0, -EAGAIN},
                {"global_step1", -HOUR_USEC, 0},
                {"1", -HOUR_USEC, 0},
                {"global_step10", 0, 1},
                {"10", 0, 1},
        };
        c = tree_find(&run, "global_step10");
        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                tree_puts("latest", parts[i].text);
                tree_set_mtime("latest", parts[i].mtime);
                ck_assert_msg(pins_pointer_names(tree_fd, &files, &run, c, tree_now_usec, 2 * USEC_PER_SEC) ==
                                      parts[i].want,
                              "latest holding \"%s\", the victim global_step10", parts[i].text);
        }
        /* a part of another's name, not the victim's */
        tree_puts("latest", "global_step1");
        tree_set_mtime("latest", 0);
        ck_assert_int_eq(pins_pointer_names(tree_fd, &files, &run, tree_find(&run, "global_step20"), tree_now_usec,
                                            USEC_PER_SEC),
                         0);
        run_finish(&run);
}
END_TEST

/* The same in a scan of the run: a pointer written just now that names a
 * checkpoint whose name is a part of another's keeps the run whole until
 * it is quiet for settle; quiet, or naming the longer one, it pins. */
START_TEST(test_pointer_part_of_a_longer_name)
{
        char *pf[] = {(char *)"latest"};
        struct watch_conf w = pointer_watch(KIND_DIR, pf, 1, "global_step{step}");
        struct run run;

        w.settle_sec = 60;
        tree_mkdirs("global_step3");
        tree_mkdirs("global_step30");
        tree_age_all();
        static const struct {
                const char *text;
                int64_t mtime;
                int error;
                const char *pinned;
        } cases[] = {
                {"global_step3\n", 0, -EAGAIN, "global_step3"},
                {"3", 0, -EAGAIN, "global_step3"},
                {"global_step3\n", -HOUR_USEC, 0, "global_step3"},
                {"global_step30\n", 0, 0, "global_step30"},
                {"30", 0, 0, "global_step30"},
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                tree_puts("latest", cases[i].text);
                tree_set_mtime("latest", cases[i].mtime);
                run = tree_scan(&w);
                ck_assert_msg(run.read_error == cases[i].error, "latest holding \"%s\": %d", cases[i].text,
                              run.read_error);
                ck_assert_uint_eq(tree_find(&run, cases[i].pinned)->pins, PIN(PIN_POINTER));
                run_finish(&run);
        }
}
END_TEST

/* A UTF-8 byte-order mark before the name (some editors and Windows tools
 * write one) is skipped, in each kind of pointer file. */
START_TEST(test_pointer_after_a_bom)
{
        char *pf[] = {(char *)"latest"};
        struct watch_conf w = pointer_watch(KIND_DIR, pf, 1, "global_step{step}");
        struct run run;

        tree_mkdirs("global_step1");
        tree_mkdirs("global_step2");
        tree_mkdirs("global_step3");
        tree_puts("latest", "\xef\xbb\xbf"
                            "global_step1\n");
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 3);
        ck_assert_int_eq(run.read_error, 0);
        ck_assert_uint_eq(tree_find(&run, "global_step1")->pins, PIN(PIN_POINTER));
        ck_assert_uint_eq(tree_find(&run, "global_step2")->pins, 0);
        run_finish(&run);

        /* with CR LF and a path, as the BOM's writers often add */
        tree_puts("latest", "\xef\xbb\xbf"
                            "./global_step2/\r\n");
        run = tree_scan(&w);
        ck_assert_uint_eq(tree_find(&run, "global_step1")->pins, 0);
        ck_assert_uint_eq(tree_find(&run, "global_step2")->pins, PIN(PIN_POINTER));
        run_finish(&run);

        /* Megatron's number */
        tree_puts("latest", "\xef\xbb\xbf"
                            "3\n");
        run = tree_scan(&w);
        ck_assert_uint_eq(tree_find(&run, "global_step3")->pins, PIN(PIN_POINTER));
        run_finish(&run);

        /* TF's CheckpointState, the key on the first line */
        tree_puts("latest", "\xef\xbb\xbf"
                            "model_checkpoint_path: \"global_step1\"\n");
        run = tree_scan(&w);
        ck_assert_int_eq(run.read_error, 0);
        ck_assert_uint_eq(tree_find(&run, "global_step1")->pins, PIN(PIN_POINTER));
        run_finish(&run);

        /* a BOM alone names nothing yet: the run is kept, as for an empty one */
        tree_puts("latest", "\xef\xbb\xbf");
        run = tree_scan(&w);
        ck_assert_int_eq(run.read_error, -ENODATA);
        run_finish(&run);

        /* only a whole BOM is skipped: a part of one is part of the name */
        tree_puts("latest", "\xbb\xbf"
                            "global_step1\n");
        run = tree_scan(&w);
        ck_assert_int_eq(run.read_error, 0);
        ck_assert_uint_eq(tree_find(&run, "global_step1")->pins, 0);
        run_finish(&run);
}
END_TEST

START_TEST(test_keep_pins)
{
        struct watch_conf w = tree_watch(KIND_ANY);
        struct run run;

        tree_use_pattern("ckpt-{step}.*");
        tree_mkfile("ckpt-1.index", 1);
        tree_mkfile("ckpt-1.data", 1);
        tree_mkfile("ckpt-1.data.keep", 0); /* a member's name */
        tree_mkfile("ckpt-2.index", 1);
        tree_mkfile("ckpt-2.data", 1);
        tree_mkfile("ckpt-2.keep", 0); /* the group's stem */
        tree_mkfile("ckpt-3.index", 1);
        tree_mkfile("ckpt-3.idx.keep", 0); /* names nothing */
        tree_mkfile("ckpt-10.index", 1);   /* ckpt-1 is not its stem */
        tree_mkdirs("ckpt-4.d");
        tree_mkfile("ckpt-4.d.keep", 0);
        tree_mkdirs("ckpt-5.d");
        tree_mkfile("ckpt-5.keep", 0); /* a stem only groups files */
        tree_mkfile(".keep", 0);
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 6);
        ck_assert_uint_eq(run.ckpts[0].n_members, 2);
        ck_assert_uint_eq(run.ckpts[0].pins, PIN(PIN_KEEPFILE));
        ck_assert_uint_eq(run.ckpts[1].n_members, 2);
        ck_assert_uint_eq(run.ckpts[1].pins, PIN(PIN_KEEPFILE));
        ck_assert_uint_eq(run.ckpts[2].pins, 0);
        ck_assert_str_eq(run.ckpts[3].name, "ckpt-4.d");
        ck_assert_uint_eq(run.ckpts[3].pins, PIN(PIN_KEEPFILE));
        ck_assert_uint_eq(run.ckpts[4].pins, 0);
        ck_assert_str_eq(run.ckpts[5].name, "ckpt-10.index");
        ck_assert_uint_eq(run.ckpts[5].pins, 0);
        run_finish(&run);
}
END_TEST

/* Whether stems[n] is among stems[0..n). */
static bool stem_listed(char (*stems)[64], size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (strcmp(stems[i], stems[n]) == 0)
                        return true;
        return false;
}

/* The floor asks the disk whether a keep file pins its victim
 * (scan_keep_file_for()); it must say what a scan of the run says, for
 * every stem a keep file could have: each member, each prefix of one
 * before a dot, and each of those one byte short. */
START_TEST(test_keep_file_for_agrees_with_the_scan)
{
        struct watch_conf w = tree_watch(KIND_ANY);
        static const char *const files[] = {"ckpt-1.index", "ckpt-1.data-00000-of-00001", "ckpt-2.x.index",
                                            "ckpt-2.x.data", "ckpt-6.pt"};
        char stems[64][64];
        size_t n_stems = 0, n_pinned = 0;
        struct run run;

        tree_use_pattern("ckpt-{step}.*");
        for (size_t i = 0; i < ELEMENTSOF(files); i++)
                tree_mkfile(files[i], 1);
        tree_mkdirs("ckpt-4.d");
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 4);
        for (size_t i = 0; i < run.n_ckpts; i++)
                for (size_t k = 0; k < run.ckpts[i].n_members; k++) {
                        const char *m = ckpt_member(&run.ckpts[i], k);

                        for (size_t len = 0; len <= strlen(m); len++) {
                                if (m[len] != '.' && m[len] != '\0')
                                        continue;
                                for (size_t cut = 0; cut <= 1 && cut <= len; cut++) {
                                        ck_assert_uint_lt(n_stems, ELEMENTSOF(stems));
                                        snprintf(stems[n_stems], sizeof(stems[0]), "%.*s", (int)(len - cut), m);
                                        n_stems += !stem_listed(stems, n_stems);
                                }
                        }
                }
        run_finish(&run);

        for (size_t s = 0; s < n_stems; s++) {
                char name[80];

                snprintf(name, sizeof(name), "%s.keep", stems[s]);
                tree_mkfile(name, 0);
                run = tree_scan(&w);
                ck_assert_uint_eq(run.n_ckpts, 4);
                for (size_t i = 0; i < run.n_ckpts; i++) {
                        bool pinned = run.ckpts[i].pins & PIN(PIN_KEEPFILE);

                        ck_assert_msg(scan_keep_file_for(tree_fd, &run.ckpts[i]) == pinned,
                                      "%s by %s: the scan says %d", run.ckpts[i].name, name, pinned);
                        n_pinned += pinned;
                }
                run_finish(&run);
                ck_assert_int_eq(unlinkat(tree_fd, name, 0), 0);
        }
        /* the 6 members, and the stems ckpt-1, ckpt-2, ckpt-2.x and ckpt-6 */
        ck_assert_uint_eq(n_pinned, 6 + 4);
}
END_TEST

static bool listed(const struct flock_table *t, const struct ckpt *c)
{
        return flock_table_has(t, c->dev, c->ino);
}

/* The scan takes no lock and sets no flock pin; /proc/locks names the
 * holders, read without taking a lock (verify.h). */
START_TEST(test_flock_pins)
{
        struct watch_conf w = tree_watch(KIND_ANY);
        struct flock_table t;
        char full[4096];
        int pipefd[2], fd;
        struct run run;
        pid_t pid;
        char c;

        tree_use_pattern("c{step}");
        tree_mkfile("c1", 10);
        tree_mkfile("c2", 10);
        tree_mkdirs("c3");
        tree_mkdirs("c4");

        /* a second open file description in this process is another holder */
        tree_path("c1", full, sizeof(full));
        fd = open(full, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(flock(fd, LOCK_SH), 0);

        /* a child holds an exclusive lock on a directory */
        ck_assert_int_eq(pipe(pipefd), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                tree_path("c3", full, sizeof(full));
                int dfd = open(full, O_RDONLY | O_DIRECTORY);
                if (dfd < 0 || flock(dfd, LOCK_EX) < 0)
                        _exit(1);
                if (write(pipefd[1], "x", 1) != 1)
                        _exit(1);
                pause();
                _exit(0);
        }
        close(pipefd[1]);
        ck_assert_int_eq(read(pipefd[0], &c, 1), 1);

        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 4);
        for (size_t i = 0; i < run.n_ckpts; i++)
                ck_assert_uint_eq(run.ckpts[i].pins, 0);
        ck_assert_int_eq(flock_table_load(&t, PROC_LOCKS), 0);
        ck_assert(listed(&t, &run.ckpts[0]));
        ck_assert(!listed(&t, &run.ckpts[1]));
        ck_assert(listed(&t, &run.ckpts[2]));
        ck_assert(!listed(&t, &run.ckpts[3]));
        flock_table_finish(&t);

        /* nothing of ours was ever locked: the holder can upgrade */
        ck_assert_int_eq(flock(fd, LOCK_EX | LOCK_NB), 0);
        close(fd);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(pipefd[0]);

        ck_assert_int_eq(flock_table_load(&t, PROC_LOCKS), 0);
        for (size_t i = 0; i < run.n_ckpts; i++)
                ck_assert(!listed(&t, &run.ckpts[i]));
        flock_table_finish(&t);
        run_finish(&run);
}
END_TEST

/* The format of fs/locks.c lock_get_status(): device "%02x:%02x" in hex,
 * inode in decimal; waiters ("->"), POSIX, OFD and lease lines hold no
 * flock. A file that is not there is -ENOENT (the probe fallback). */
START_TEST(test_flock_table_format)
{
        char path[4096];
        struct flock_table t;
        FILE *f;

        tree_path("locks", path, sizeof(path));
        f = fopen(path, "w");
        ck_assert_ptr_nonnull(f);
        fputs("1: POSIX  ADVISORY  WRITE 812 00:19:77 0 EOF\n"
              "2: FLOCK  ADVISORY  WRITE 901 fd:01:1234567 0 EOF\n"
              "2: -> FLOCK  ADVISORY  WRITE 902 08:10:42 0 EOF\n"
              "3: OFDLCK ADVISORY  READ -1 00:19:78 0 EOF\n"
              "4: LEASE  ACTIVE    READ 1000 00:19:79 0 EOF\n"
              "5: FLOCK  ADVISORY  READ 903 103:02:99 0 EOF\n",
              f);
        ck_assert_int_eq(fclose(f), 0);
        ck_assert_int_eq(flock_table_load(&t, path), 0);
        ck_assert_uint_eq(t.n, 2);
        ck_assert(flock_table_has(&t, makedev(0xfd, 0x01), 1234567));
        ck_assert(flock_table_has(&t, makedev(0x103, 0x02), 99));
        ck_assert(!flock_table_has(&t, makedev(0x08, 0x10), 42));
        ck_assert(!flock_table_has(&t, makedev(0x00, 0x19), 77));
        ck_assert(!flock_table_has(&t, makedev(0x00, 0x19), 78));
        ck_assert(!flock_table_has(&t, makedev(0xfd, 0x01), 1234568));
        flock_table_finish(&t);
        tree_path("no-such-file", path, sizeof(path));
        ck_assert_int_eq(flock_table_load(&t, path), -ENOENT);
}
END_TEST

static const char hf_state_fmt[] = "{\"best_model_checkpoint\": \"%s\", \"log_history\": ["
                                   "{\"eval_loss\": 0.9, \"step\": 100}, {\"eval_loss\": NaN, \"step\": 200},"
                                   "{\"eval_loss\": 0.5, \"step\": 300}, {\"loss\": 0.1, \"step\": 400}]}";

static void hf_checkpoint(int step, const char *best)
{
        char path[256], text[1024];

        snprintf(path, sizeof(path), "checkpoint-%d/model.safetensors", step);
        tree_mkfile(path, 10);
        snprintf(path, sizeof(path), "checkpoint-%d/trainer_state.json", step);
        snprintf(text, sizeof(text), hf_state_fmt, best);
        tree_puts(path, text);
}

START_TEST(test_hf_metrics_and_best)
{
        struct watch_conf w = tree_watch(KIND_DIR);
        struct run run;

        w.preset = (char *)"huggingface";
        w.metric_source = METRIC_HF_STATE;
        w.complete_marker = (char *)"trainer_state.json";
        w.settle_sec = 60;
        w.policy.monitor = (char *)"eval_loss";
        tree_use_pattern("checkpoint-{step}");
        hf_checkpoint(100, "out/checkpoint-100");
        hf_checkpoint(200, "out/checkpoint-100");
        hf_checkpoint(300, "out/checkpoint-200");
        hf_checkpoint(400, "out/checkpoint-300");
        /* being written: no trainer_state.json yet, so not the newest */
        tree_mkfile("checkpoint-500/model.safetensors", 10);
        tree_set_mtime("checkpoint-500/model.safetensors", 0);
        run = tree_scan(&w);

        ck_assert_uint_eq(run.n_ckpts, 5);
        ck_assert(run.ckpts[0].has_metric);
        ck_assert_double_eq(run.ckpts[0].metric, 0.9);
        ck_assert(run.ckpts[1].has_metric);
        ck_assert(isnan(run.ckpts[1].metric));
        ck_assert_double_eq(run.ckpts[2].metric, 0.5);
        ck_assert_double_eq(run.ckpts[3].metric, 0.5);
        ck_assert(!run.ckpts[4].has_metric);
        ck_assert(!run.ckpts[4].complete);
        /* best_model_checkpoint of checkpoint-400, the newest complete one */
        for (size_t i = 0; i < run.n_ckpts; i++)
                ck_assert_uint_eq(run.ckpts[i].pins, i == 2 ? PIN(PIN_HF_BEST) : 0);
        run_finish(&run);

        /* a broken newest file (EINVAL) is no absent one: an older copy
         * would name another best, so the whole run is kept, and the
         * checkpoint itself for its metric */
        tree_puts("checkpoint-400/trainer_state.json", "{");
        run = tree_scan(&w);
        ck_assert(!run.ckpts[3].has_metric);
        ck_assert_int_eq(run.ckpts[3].read_error, -EINVAL);
        ck_assert_str_eq(ckpt_read_what(&run.ckpts[3]), "its metric");
        ck_assert_int_eq(run.read_error, -EINVAL);
        ck_assert_str_eq(run.read_what, "checkpoint-400/trainer_state.json");
        for (size_t i = 0; i < run.n_ckpts; i++) {
                ck_assert_uint_eq(run.ckpts[i].pins, 0);
                ck_assert_int_eq(run.ckpts[i].read_error, -EINVAL);
        }
        run_finish(&run);

        /* gone (ENOENT) is absent: the next older one speaks */
        ck_assert_int_eq(unlinkat(tree_fd, "checkpoint-400/trainer_state.json", 0), 0);
        tree_set_mtime("checkpoint-400/model.safetensors", -HOUR_USEC);
        tree_set_mtime("checkpoint-400", -HOUR_USEC);
        run = tree_scan(&w);
        ck_assert_int_eq(run.read_error, 0);
        ck_assert_uint_eq(run.ckpts[1].pins, PIN(PIN_HF_BEST));
        ck_assert_uint_eq(run.ckpts[2].pins, 0);
        run_finish(&run);

        /* a path as HF on Windows writes it, or ending in "/." */
        static const struct {
                const char *best;
                size_t pinned;
        } forms[] = {{"C:\\\\runs\\\\out\\\\checkpoint-100", 0}, {"out/checkpoint-200/.", 1}};
        for (size_t k = 0; k < ELEMENTSOF(forms); k++) {
                hf_checkpoint(300, forms[k].best);
                tree_set_mtime("checkpoint-300/trainer_state.json", -HOUR_USEC);
                tree_set_mtime("checkpoint-300", -HOUR_USEC);
                run = tree_scan(&w);
                for (size_t i = 0; i < 2; i++)
                        ck_assert_uint_eq(run.ckpts[i].pins, i == forms[k].pinned ? PIN(PIN_HF_BEST) : 0);
                run_finish(&run);
        }
}
END_TEST

/* TensorFlow's CheckpointState: the prefixes it names are pinned, index
 * and data together; a value that cannot be read marks the run. */
START_TEST(test_tf_state_pins)
{
        char *pf[] = {(char *)"checkpoint"};
        struct watch_conf w = pointer_watch(KIND_FILE, pf, 1, "ckpt-{step}.*");
        struct run run;

        for (int s = 1; s <= 4; s++) {
                char a[64], b[64];

                snprintf(a, sizeof(a), "ckpt-%d.index", s);
                snprintf(b, sizeof(b), "ckpt-%d.data-00000-of-00001", s);
                tree_mkfile(a, 10);
                tree_mkfile(b, 100);
        }
        tree_puts("checkpoint", "model_checkpoint_path: \"ckpt-4\"\n"
                                "all_model_checkpoint_paths: \"/old/host/ckpt-2\"\n"
                                "all_model_checkpoint_paths: \"ckpt-4\"\n"
                                "all_model_checkpoint_timestamps: 1764700000.5\n"
                                "last_preserved_timestamp: 1764690000.25\n");
        tree_age_all();
        run = tree_scan(&w);
        ck_assert_uint_eq(run.n_ckpts, 4);
        ck_assert_uint_eq(run.read_error, 0);
        ck_assert_uint_eq(tree_find(&run, "ckpt-1.data-00000-of-00001")->pins, 0);
        ck_assert_uint_eq(tree_find(&run, "ckpt-2.data-00000-of-00001")->pins, PIN(PIN_POINTER));
        ck_assert_uint_eq(tree_find(&run, "ckpt-3.data-00000-of-00001")->pins, 0);
        ck_assert_uint_eq(tree_find(&run, "ckpt-4.data-00000-of-00001")->pins, PIN(PIN_POINTER));
        ck_assert_uint_eq(tree_find(&run, "ckpt-4.data-00000-of-00001")->n_members, 2);
        run_finish(&run);

        /* single quotes, as text format allows; only what it names */
        tree_puts("checkpoint", "model_checkpoint_path: 'ckpt-3'\n");
        run = tree_scan(&w);
        ck_assert_uint_eq(tree_find(&run, "ckpt-3.data-00000-of-00001")->pins, PIN(PIN_POINTER));
        ck_assert_uint_eq(tree_find(&run, "ckpt-1.data-00000-of-00001")->pins, 0);
        run_finish(&run);

        /* an octal escape or an unterminated value: unreadable, all kept */
        tree_puts("checkpoint", "model_checkpoint_path: \"ckpt-\\0014\"\n");
        run = tree_scan(&w);
        ck_assert_int_eq(run.read_error, -EBADMSG);
        run_finish(&run);
        tree_puts("checkpoint", "model_checkpoint_path: \"ckpt-4\n");
        run = tree_scan(&w);
        ck_assert_int_eq(run.read_error, -EBADMSG);
        run_finish(&run);
}
END_TEST

TCase *scan_pins_tcase(void)
{
        TCase *tc = tcase_create("pins");

        tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
        tcase_add_test(tc, test_symlink_pins);
        tcase_add_test(tc, test_symlink_into_dir);
        tcase_add_test(tc, test_pointer_by_name);
        tcase_add_test(tc, test_pointer_by_number);
        tcase_add_test(tc, test_pointer_names_half_written);
        tcase_add_test(tc, test_pointer_part_of_a_longer_name);
        tcase_add_test(tc, test_pointer_after_a_bom);
        tcase_add_test(tc, test_keep_pins);
        tcase_add_test(tc, test_keep_file_for_agrees_with_the_scan);
        tcase_add_test(tc, test_flock_pins);
        tcase_add_test(tc, test_flock_table_format);
        tcase_add_test(tc, test_hf_metrics_and_best);
        tcase_add_test(tc, test_tf_state_pins);
        return tc;
}
