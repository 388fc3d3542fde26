/* Victim checks (verify.h) and the plain-file removal (remove_file_checked)
 * on real files, with real other opens: a second open file description in
 * this process counts as another holder for a lease. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ckpt.h"
#include "fsutil.h"
#include "macro.h"
#include "remove.h"
#include "verify.h"

Suite *verify_suite(void);

static char tmpdir[PATH_MAX];
static int run_fd = -1;

static void setup(void)
{
        strcpy(tmpdir, "/tmp/ckptd-verify-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
        run_fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(run_fd, 0);
        remove_test_hook = NULL;
}

static void teardown(void)
{
        char cmd[PATH_MAX + 64];

        run_fd = safe_close(run_fd);
        snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system -- '%s'", tmpdir);
        if (system(cmd) != 0)
                fprintf(stderr, "cannot clean up %s\n", tmpdir);
}

static void write_at(int dir_fd, const char *name, const char *text)
{
        int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

static bool exists_at(int dir_fd, const char *name)
{
        struct stat st;

        return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* A plain-file checkpoint as the scan would see name. */
static void file_ckpt(struct ckpt *c, const char *name)
{
        struct stat st;

        ck_assert_int_eq(fstatat(run_fd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
        *c = (struct ckpt){};
        ck_assert_int_eq(ckpt_init_names(c, &name, 1, NULL), 0);
        c->dev = st.st_dev;
        c->ino = st.st_ino;
        c->size_bytes = (uint64_t)st.st_blocks * 512;
        c->mtime_usec = stat_mtime_usec(&st);
}

static unsigned hooks;
static void count_hook(const char *stage, const char *name)
{
        (void)name;
        if (strcmp(stage, "before") == 0)
                hooks++;
}

START_TEST(test_file_removed_without_tombstone)
{
        struct ckpt c;
        uint64_t freed = 1;

        write_at(run_fd, "ckpt-1.pt", "some bytes");
        file_ckpt(&c, "ckpt-1.pt");
        hooks = 0;
        remove_test_hook = count_hook;
        ck_assert_int_eq(remove_file_checked(run_fd, &c, false, NULL, NULL, &freed), 0);
        ck_assert_uint_eq(hooks, 1);
        ck_assert_uint_eq(freed, c.size_bytes);
        ck_assert(!exists_at(run_fd, "ckpt-1.pt"));
        ck_assert(!exists_at(run_fd, TOMBSTONE_PREFIX "ckpt-1.pt"));
        ckpt_finish(&c);
}
END_TEST

/* Another open, for reading or for writing, keeps it; after close it goes. */
START_TEST(test_open_file_is_kept)
{
        static const int modes[] = {O_RDONLY, O_WRONLY, O_RDWR};
        char path[PATH_MAX + 16];
        struct ckpt c;
        uint64_t freed;

        snprintf(path, sizeof(path), "%s/ckpt-2.pt", tmpdir);
        for (size_t i = 0; i < ELEMENTSOF(modes); i++) {
                write_at(run_fd, "ckpt-2.pt", "data");
                file_ckpt(&c, "ckpt-2.pt");
                int fd = open(path, modes[i] | O_CLOEXEC);
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(remove_file_checked(run_fd, &c, false, NULL, NULL, &freed), VERIFY_IN_USE);
                ck_assert(exists_at(run_fd, "ckpt-2.pt"));
                close(fd);
                ck_assert_int_eq(remove_file_checked(run_fd, &c, false, NULL, NULL, &freed), 0);
                ck_assert(!exists_at(run_fd, "ckpt-2.pt"));
                ckpt_finish(&c);
        }
}
END_TEST

/* Free alone: only a read lease granted now, on the file scanned, with no
 * other link, says so; a reader holds nothing. */
START_TEST(test_file_alone)
{
        char path[PATH_MAX + 16], other[PATH_MAX + 16];
        struct stat st;
        int fd;

        snprintf(path, sizeof(path), "%s/ckpt-4.pt", tmpdir);
        snprintf(other, sizeof(other), "%s/latest.pt", tmpdir);
        write_at(run_fd, "ckpt-4.pt", "data");
        ck_assert_int_eq(fstatat(run_fd, "ckpt-4.pt", &st, 0), 0);
        ck_assert_int_eq(verify_file_alone(run_fd, "ckpt-4.pt", &st), VERIFY_FREE);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(verify_file_alone(run_fd, "ckpt-4.pt", &st), VERIFY_FREE);
        close(fd);
        fd = open(path, O_WRONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(verify_file_alone(run_fd, "ckpt-4.pt", &st), VERIFY_IN_USE);
        close(fd);
        ck_assert_int_eq(link(path, other), 0);
        ck_assert_int_eq(verify_file_alone(run_fd, "ckpt-4.pt", &st), -EMLINK);
        ck_assert_int_eq(unlink(other), 0);
        ck_assert_int_eq(verify_file_alone(run_fd, "ckpt-4.pt", &st), VERIFY_FREE);
        /* another file renamed over its name */
        write_at(run_fd, "ckpt-4.tmp", "new");
        ck_assert_int_eq(renameat(run_fd, "ckpt-4.tmp", run_fd, "ckpt-4.pt"), 0);
        ck_assert_int_eq(verify_file_alone(run_fd, "ckpt-4.pt", &st), -ESTALE);
}
END_TEST

/* A refusal that means "no leases here" is a fallback, kept once per
 * device and handed out once; an answer (EAGAIN) or a failure (EIO) is
 * not. */
START_TEST(test_lease_refusals_said_once)
{
        dev_t dev;
        int error;

        ck_assert(!verify_lease_refusal_unsaid(&dev, &error));
        ck_assert(!verify_lease_fallback(-EAGAIN, 7));
        ck_assert(!verify_lease_fallback(-EIO, 7));
        ck_assert(!verify_lease_refusal_unsaid(&dev, &error));
        ck_assert(verify_lease_fallback(-EINVAL, 7));
        ck_assert(verify_lease_fallback(-EACCES, 7));
        ck_assert(verify_lease_fallback(-EACCES, 9));
        ck_assert(verify_lease_refusal_unsaid(&dev, &error));
        ck_assert(dev == 7 && error == -EINVAL);
        ck_assert(verify_lease_refusal_unsaid(&dev, &error));
        ck_assert(dev == 9 && error == -EACCES);
        ck_assert(!verify_lease_refusal_unsaid(&dev, &error));
        /* said: not again */
        ck_assert(verify_lease_fallback(-EINVAL, 7));
        ck_assert(!verify_lease_refusal_unsaid(&dev, &error));
}
END_TEST

/* Replaced since the scan by another file, a symlink or a FIFO (which an
 * open without O_NONBLOCK would wait on): left alone. */
START_TEST(test_replaced_file_is_left)
{
        struct ckpt c;
        uint64_t freed;

        write_at(run_fd, "ckpt-3.pt", "old");
        file_ckpt(&c, "ckpt-3.pt");
        write_at(run_fd, "new.tmp", "trainer's new");
        ck_assert_int_eq(renameat(run_fd, "new.tmp", run_fd, "ckpt-3.pt"), 0);
        ck_assert_int_eq(remove_file_checked(run_fd, &c, false, NULL, NULL, &freed), -ESTALE);
        ck_assert(exists_at(run_fd, "ckpt-3.pt"));

        write_at(run_fd, "target", "precious");
        ck_assert_int_eq(unlinkat(run_fd, "ckpt-3.pt", 0), 0);
        ck_assert_int_eq(symlinkat("target", run_fd, "ckpt-3.pt"), 0);
        ck_assert_int_eq(remove_file_checked(run_fd, &c, false, NULL, NULL, &freed), -ESTALE);
        ck_assert(exists_at(run_fd, "ckpt-3.pt"));
        ck_assert(exists_at(run_fd, "target"));

        ck_assert_int_eq(unlinkat(run_fd, "ckpt-3.pt", 0), 0);
        ck_assert_int_eq(mkfifoat(run_fd, "ckpt-3.pt", 0644), 0);
        ck_assert_int_eq(remove_file_checked(run_fd, &c, false, NULL, NULL, &freed), -ESTALE);
        ck_assert(exists_at(run_fd, "ckpt-3.pt"));
        ckpt_finish(&c);

        ck_assert_int_eq(remove_file_checked(run_fd, &c, false, NULL, NULL, &freed), -EINVAL);
}
END_TEST

static int mkdir_at(int dir_fd, const char *name)
{
        int fd;

        ck_assert_int_eq(mkdirat(dir_fd, name, 0755), 0);
        fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        return fd;
}

static void age(int dir_fd, const char *name, int64_t sec)
{
        struct timespec ts[2] = {{.tv_sec = time(NULL) - sec}, {.tv_sec = time(NULL) - sec}};

        ck_assert_int_eq(utimensat(dir_fd, name, ts, AT_SYMLINK_NOFOLLOW), 0);
}

/* A directory checkpoint: a recently changed file open anywhere below it,
 * however deep, keeps it; an old file open does not (not looked at). */
START_TEST(test_tree_in_use)
{
        int64_t now = now_usec(CLOCK_REALTIME), since = now - 3600 * (int64_t)USEC_PER_SEC;
        int top = mkdir_at(run_fd, "step-1"), d = dup(top), fd;
        char path[PATH_MAX * 2];
        size_t len;

        write_at(top, "old-shard", "o");
        age(top, "old-shard", 7200);
        ck_assert_int_eq(verify_tree(top, NULL, since, now), VERIFY_FREE);

        snprintf(path, sizeof(path), "%s/step-1/old-shard", tmpdir);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(verify_tree(top, NULL, since, now), VERIFY_FREE);
        close(fd);

        /* 300 levels down, a shard written ten minutes ago, held open */
        len = (size_t)snprintf(path, sizeof(path), "%s/step-1", tmpdir);
        for (int i = 0; i < 300; i++) {
                int nd = mkdir_at(d, "d");
                close(d);
                d = nd;
                if (len + 2 < sizeof(path))
                        len += (size_t)snprintf(path + len, sizeof(path) - len, "/d");
        }
        write_at(d, "sibling", "s");
        write_at(d, "shard", "s");
        age(d, "shard", 600);
        close(d);
        /* newest_usec is what the scan saw: one after these writes */
        now = now_usec(CLOCK_REALTIME);
        ck_assert_int_eq(verify_tree(top, NULL, since, now), VERIFY_FREE);
        ck_assert(len + 7 < PATH_MAX);
        snprintf(path + len, sizeof(path) - len, "/shard");
        fd = open(path, O_WRONLY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(verify_tree(top, NULL, since, now), VERIFY_IN_USE);

        /* held by a flock listed in /proc/locks: pinned, before in use */
        struct flock_table t;
        ck_assert_int_eq(flock(fd, LOCK_SH), 0);
        ck_assert_int_eq(flock_table_load(&t, PROC_LOCKS), 0);
        ck_assert_int_eq(verify_tree(top, &t, since, now), VERIFY_FLOCK);
        flock_table_finish(&t);
        close(fd);
        ck_assert_int_eq(verify_tree(top, NULL, since, now), VERIFY_FREE);
        close(top);
}
END_TEST

/* Files of every age in one directory, in whatever order the directory
 * lists them: each recent one open keeps the tree, whichever file came
 * before it; an old one open does not. The removal then counts every
 * file's blocks and its directories' as freed, a file with a second link
 * inside the tree once (the floor takes this figure for free space that a
 * filesystem may give back late). */
START_TEST(test_tree_mixed_ages_checked_and_removed)
{
        int64_t now = now_usec(CLOCK_REALTIME), since = now - 3600 * (int64_t)USEC_PER_SEC;
        int top = mkdir_at(run_fd, "step-2"), sub = mkdir_at(top, "sub");
        uint64_t want_bytes = 0, freed = 0;
        char name[32], path[PATH_MAX + 64];

        for (int i = 0; i < 40; i++) {
                snprintf(name, sizeof(name), "shard-%02d", i);
                write_at(i < 30 ? top : sub, name, "0123456789");
                if (i % 2 == 0)
                        age(i < 30 ? top : sub, name, 7200);
        }
        /* a second link: the file's blocks are freed once, by the last */
        ck_assert_int_eq(linkat(top, "shard-00", top, "link-00", 0), 0);
        now = now_usec(CLOCK_REALTIME); /* scanned after the writes */
        for (int i = 0; i < 40; i++) {
                struct stat st;

                snprintf(name, sizeof(name), "shard-%02d", i);
                ck_assert_int_eq(fstatat(i < 30 ? top : sub, name, &st, AT_SYMLINK_NOFOLLOW), 0);
                want_bytes += (uint64_t)st.st_blocks * 512;
        }
        ck_assert_int_eq(verify_tree(top, NULL, since, now), VERIFY_FREE);

        for (int i = 0; i < 40; i++) {
                int fd;

                snprintf(path, sizeof(path), "%s/step-2/%sshard-%02d", tmpdir, i < 30 ? "" : "sub/", i);
                fd = open(path, O_RDONLY | O_CLOEXEC);
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(verify_tree(top, NULL, since, now), i % 2 == 0 ? VERIFY_FREE : VERIFY_IN_USE);
                close(fd);
        }
        ck_assert_int_eq(verify_tree(top, NULL, since, now), VERIFY_FREE);

        struct stat st;
        struct ckpt c = {};
        struct remove_ctx ctx = {
                .records_fd = -1,
                .root = "/r",
                .run = ".",
        };
        uint64_t dirs = 0;

        ck_assert_int_eq(fstat(top, &st), 0);
        dirs += (uint64_t)st.st_blocks * 512;
        ck_assert_int_eq(fstat(sub, &st), 0);
        dirs += (uint64_t)st.st_blocks * 512;
        close(sub);
        close(top);
        ck_assert_int_eq(fstatat(run_fd, "step-2", &st, AT_SYMLINK_NOFOLLOW), 0);
        ck_assert_int_eq(ckpt_init_names(&c, &(const char *){"step-2"}, 1, NULL), 0);
        c.is_dir = true;
        c.dev = st.st_dev;
        c.ino = st.st_ino;
        ck_assert_int_eq(remove_ckpt(&ctx, run_fd, &c, &freed), 0);
        ck_assert(!exists_at(run_fd, "step-2"));
        ck_assert_uint_eq(freed, want_bytes + dirs);
        ckpt_finish(&c);
}
END_TEST

/* Written again in place and closed after the scan (a trainer restarted
 * into the run, saving the same name again): free of others, but not what
 * was decided. A file, and a file below a directory checkpoint. */
START_TEST(test_tree_written_since)
{
        int64_t since = now_usec(CLOCK_REALTIME) - 3600 * (int64_t)USEC_PER_SEC;
        int top = mkdir_at(run_fd, "step-3");
        struct timespec later[2];
        struct stat st;
        struct ckpt c;
        uint64_t freed;
        int64_t newest;

        write_at(top, "model.pt", "old");
        ck_assert_int_eq(fstatat(top, "model.pt", &st, 0), 0);
        newest = stat_mtime_usec(&st); /* the scan's */
        ck_assert_int_eq(verify_tree(top, NULL, since, newest), VERIFY_FREE);
        write_at(top, "model.pt", "saved again");
        /* a second after the scan: not left to the clock's granularity */
        later[0] = later[1] = (struct timespec){.tv_sec = st.st_mtim.tv_sec + 1, .tv_nsec = st.st_mtim.tv_nsec};
        ck_assert_int_eq(utimensat(top, "model.pt", later, 0), 0);
        ck_assert_int_eq(verify_tree(top, NULL, since, newest), VERIFY_CHANGED);
        close(top);

        write_at(run_fd, "ckpt-3.pt", "old");
        file_ckpt(&c, "ckpt-3.pt");
        write_at(run_fd, "ckpt-3.pt", "saved again");
        ck_assert_int_eq(fstatat(run_fd, "ckpt-3.pt", &st, 0), 0);
        later[0] = later[1] = (struct timespec){.tv_sec = st.st_mtim.tv_sec + 1, .tv_nsec = st.st_mtim.tv_nsec};
        ck_assert_int_eq(utimensat(run_fd, "ckpt-3.pt", later, 0), 0);
        ck_assert_int_eq(remove_file_checked(run_fd, &c, false, NULL, NULL, &freed), VERIFY_CHANGED);
        ck_assert(exists_at(run_fd, "ckpt-3.pt"));
        ckpt_finish(&c);
}
END_TEST

/* The lines of /proc/locks as fs/locks.c lock_get_status() writes them:
 * only FLOCK holders count, and a line that does not read whole is none. */
START_TEST(test_flock_table_lines)
{
        char path[PATH_MAX + 16];
        struct flock_table t;

        write_at(run_fd, "locks",
                 "1: FLOCK  ADVISORY  WRITE 1234 08:01:131090 0 EOF\n"
                 "1: -> FLOCK  ADVISORY  WRITE 1235 08:01:131091 0 EOF\n"
                 "2: POSIX  ADVISORY  WRITE 99 08:01:131092 0 EOF\n"
                 "3: OFDLCK ADVISORY  READ  -1 08:01:131093 0 EOF\n"
                 "4: LEASE  ACTIVE    WRITE 77 08:01:131094 0 EOF\n"
                 "5: FLOCK  ADVISORY  READ  4321 103:2a:18446744073709551615 0 EOF\n"
                 "6: FLOCK  ADVISORY  WRITE 1 08:01:12x 0 EOF\n"
                 "7: FLOCK  ADVISORY  WRITE 1 08:01\n"
                 "8: FLOCK  ADVISORY\n"
                 "9: FLOCK  ADVISORY  WRITE 1 fffffffff:01:5 0 EOF\n"
                 "10: FLOCK  ADVISORY  WRITE 1 08:02:777");
        snprintf(path, sizeof(path), "%s/locks", tmpdir);
        ck_assert_int_eq(flock_table_load(&t, path), 0);
        ck_assert_uint_eq(t.n, 3);
        ck_assert(flock_table_has(&t, makedev(8, 1), 131090));
        /* sorted by (dev, ino): 08:01 first, with its holder */
        ck_assert(t.v[0].dev == makedev(8, 1) && t.v[0].ino == 131090);
        ck_assert_int_eq(t.v[0].pid, 1234);
        ck_assert(t.v[0].write);
        ck_assert(!flock_table_has(&t, makedev(8, 1), 131091)); /* a waiter */
        ck_assert(!flock_table_has(&t, makedev(8, 1), 131092));
        ck_assert(!flock_table_has(&t, makedev(8, 1), 131093));
        ck_assert(!flock_table_has(&t, makedev(8, 1), 131094));
        ck_assert(flock_table_has(&t, makedev(0x103, 0x2a), (ino_t)18446744073709551615ull));
        ck_assert(t.v[2].dev == makedev(0x103, 0x2a));
        ck_assert_int_eq(t.v[2].pid, 4321);
        ck_assert(!t.v[2].write);
        ck_assert(flock_table_has(&t, makedev(8, 2), 777)); /* the last line, with no newline */
        ck_assert(!flock_table_has(&t, makedev(8, 1), 12));
        ck_assert(!flock_table_has(&t, makedev(8, 1), 5));
        flock_table_finish(&t);
}
END_TEST

Suite *verify_suite(void)
{
        Suite *s = suite_create("verify");
        TCase *tc = tcase_create("verify");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_file_removed_without_tombstone);
        tcase_add_test(tc, test_open_file_is_kept);
        tcase_add_test(tc, test_replaced_file_is_left);
        tcase_add_test(tc, test_file_alone);
        tcase_add_test(tc, test_lease_refusals_said_once);
        tcase_add_test(tc, test_tree_in_use);
        tcase_add_test(tc, test_tree_mixed_ages_checked_and_removed);
        tcase_add_test(tc, test_tree_written_since);
        tcase_add_test(tc, test_flock_table_lines);
        suite_add_tcase(s, tc);
        return s;
}
