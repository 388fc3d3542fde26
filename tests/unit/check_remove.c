/* Safe deletion on real directories under /tmp: what must go goes, and
 * nothing else does — symlink targets, swapped-in files, other hard links,
 * bind mounts (as root, in a private mount namespace) stay untouched. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <dirent.h>
#include <unistd.h>

#include "ckpt.h"
#include "macro.h"
#include "remove.h"
#include "tombrec.h"

Suite *remove_suite(void);

static char tmpdir[] = "/tmp/ckptd-remove-XXXXXX";
static int base_fd = -1; /* tmpdir */
static int out_fd = -1;  /* tmpdir/outside: must survive every test */
/* Removals record their tombstones in tmpdir/state; tmpdir plays the root. */
static struct remove_ctx rctx;

/* ---- renameat2 seam --------------------------------------------------------
 * The races that matter happen between remove_ckpt's check of a member and its
 * rename. This definition takes the place of glibc's renameat2 in the test
 * binary (the static link binds lib/remove.o to it) so that a test can swap a
 * name right before the nth rename, or play a filesystem without
 * RENAME_NOREPLACE. Disarmed, it is the plain system call. */
static unsigned rename_calls;
static unsigned swap_at_call; /* 0 = off */
static void (*swap_fn)(int dir_fd, const char *name);
static unsigned swap2_at_call;
static void (*swap2_fn)(int dir_fd, const char *name);
static bool no_noreplace;

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, unsigned int flags)
{
        rename_calls++;
        if (swap_fn && rename_calls == swap_at_call)
                swap_fn(olddirfd, oldpath);
        if (swap2_fn && rename_calls == swap2_at_call)
                swap2_fn(olddirfd, oldpath);
        if (no_noreplace && flags != 0) {
                errno = EINVAL;
                return -1;
        }
        return (int)syscall(SYS_renameat2, olddirfd, oldpath, newdirfd, newpath, flags);
}

/* ---- helpers -------------------------------------------------------------- */

static const char *tmpdir_state(void)
{
        static char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/state", tmpdir);
        return path;
}

/* Records left in the records directory. */
static int count_records(void)
{
        int fd = openat(rctx.records_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
        DIR *d = fdopendir(fd);
        struct dirent *de;

        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

/* Finish the recorded tombstones below the root (tmpdir). */
static int finish_tombstones(void)
{
        return remove_tombstones(&rctx, base_fd);
}

static void setup(void)
{
        strcpy(tmpdir, "/tmp/ckptd-remove-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
        base_fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(base_fd, 0);
        ck_assert_int_eq(mkdirat(base_fd, "run", 0755), 0);
        ck_assert_int_eq(mkdirat(base_fd, "outside", 0755), 0);
        out_fd = openat(base_fd, "outside", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(out_fd, 0);
        rename_calls = swap_at_call = swap2_at_call = 0;
        swap_fn = swap2_fn = NULL;
        no_noreplace = false;
        remove_test_hook = NULL;
        rctx = (struct remove_ctx){.root = "/the/root", .run = "run"};
        rctx.records_fd = tombrec_open(tmpdir_state());
        ck_assert_int_ge(rctx.records_fd, 0);
}

static void teardown(void)
{
        char cmd[PATH_MAX + 64];

        rctx.records_fd = safe_close(rctx.records_fd);
        out_fd = safe_close(out_fd);
        base_fd = safe_close(base_fd);
        /* rm copes with trees deeper than PATH_MAX; never cross a mount. */
        snprintf(cmd, sizeof(cmd), "rm -rf --one-file-system -- '%s'", tmpdir);
        if (system(cmd) != 0)
                fprintf(stderr, "cannot clean up %s\n", tmpdir);
}

/* Loop tests run with _i = 0 (O_RDONLY run fd) and 1 (O_PATH run fd). */
static int open_run(int i)
{
        int fd = openat(base_fd, "run", (i ? O_PATH : O_RDONLY) | O_DIRECTORY | O_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        return fd;
}

static void write_file(int dir_fd, const char *name, const char *text, size_t bytes)
{
        int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        size_t len = strlen(text);

        ck_assert_msg(fd >= 0, "create %s: %s", name, strerror(errno));
        ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
        for (size_t done = len; done < bytes;) {
                static const char block[4096];
                size_t n = bytes - done < sizeof(block) ? bytes - done : sizeof(block);

                ck_assert_int_eq(write(fd, block, n), (ssize_t)n);
                done += n;
        }
        close(fd);
}

/* The first bytes of a file, to tell files apart. */
static bool has_text(int dir_fd, const char *name, const char *text)
{
        char buf[256] = "";
        int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return false;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        return n >= 0 && strncmp(buf, text, strlen(text)) == 0;
}

static bool exists(int dir_fd, const char *name)
{
        struct stat st;

        return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int mkdir_in(int dir_fd, const char *name)
{
        int fd;

        ck_assert_msg(mkdirat(dir_fd, name, 0755) == 0, "mkdir %s: %s", name, strerror(errno));
        fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        return fd;
}

/* Entries in dir_fd whose name starts with prefix. */
static int count_prefixed(int dir_fd, const char *prefix)
{
        int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), n = 0;
        DIR *d = fdopendir(fd);
        struct dirent *de;

        ck_assert_ptr_nonnull(d);
        while ((de = readdir(d)))
                if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
                        n++;
        closedir(d);
        return n;
}

static int count_fds(void)
{
        DIR *d = opendir("/proc/self/fd");
        int n = 0;

        ck_assert_ptr_nonnull(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

/* A checkpoint as the scan would describe it: (dev, ino) of members[0]. */
static void ckpt_make(struct ckpt *c, int run_fd, bool is_dir, size_t n, const char *const *names)
{
        struct stat st;

        memset(c, 0, sizeof(*c));
        ck_assert_int_eq(ckpt_init_names(c, names, n, NULL), 0);
        c->is_dir = is_dir;
        ck_assert_int_eq(fstatat(run_fd, names[0], &st, AT_SYMLINK_NOFOLLOW), 0);
        c->dev = st.st_dev;
        c->ino = st.st_ino;
}

static void ckpt_make1(struct ckpt *c, int run_fd, bool is_dir, const char *name)
{
        ckpt_make(c, run_fd, is_dir, 1, &name);
}

static uint64_t blocks_of(int dir_fd, const char *name)
{
        struct stat st;

        ck_assert_int_eq(fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
        return (uint64_t)st.st_blocks * 512;
}

/* As root, a private mount namespace for this test process, so that mounts
 * vanish with it even when an assertion fails. */
static bool private_mounts(void)
{
        if (geteuid() != 0) {
                fprintf(stderr, "check_remove: not root, skipping mount test\n");
                return false;
        }
        if (unshare(CLONE_NEWNS) < 0) {
                /* Root without CAP_SYS_ADMIN, e.g. an unprivileged container. */
                fprintf(stderr, "check_remove: unshare(CLONE_NEWNS): %s, skipping mount test\n", strerror(errno));
                return false;
        }
        ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
        /* An fd opened before unshare(2) stays on the old namespace's mounts,
         * where our mounts are invisible: open them again. */
        close(base_fd);
        close(out_fd);
        base_fd = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(base_fd, 0);
        out_fd = openat(base_fd, "outside", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(out_fd, 0);
        return true;
}

static const char *tmpdir_path(const char *rel)
{
        static char path[PATH_MAX];

        ck_assert_int_lt(snprintf(path, sizeof(path), "%s/%s", tmpdir, rel), (int)sizeof(path));
        return path;
}

static void bind_mount(int from_dir, int onto_dir)
{
        char from[64], onto[64];

        snprintf(from, sizeof(from), "/proc/self/fd/%d", from_dir);
        snprintf(onto, sizeof(onto), "/proc/self/fd/%d", onto_dir);
        ck_assert_msg(mount(from, onto, NULL, MS_BIND, NULL) == 0, "bind mount: %s", strerror(errno));
}

/* ---- tests ---------------------------------------------------------------- */

START_TEST(test_file)
{
        int run = open_run(_i);
        uint64_t freed = 1, want;
        struct ckpt c;

        write_file(run, "epoch=1-val_loss=0.5.ckpt", "ckpt 1", 1 << 20);
        write_file(run, "epoch=2-val_loss=0.4.ckpt", "ckpt 2", 4096);
        want = blocks_of(run, "epoch=1-val_loss=0.5.ckpt");
        ckpt_make1(&c, run, false, "epoch=1-val_loss=0.5.ckpt");

        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, &freed), 0);
        ck_assert(!exists(run, "epoch=1-val_loss=0.5.ckpt"));
        ck_assert(has_text(run, "epoch=2-val_loss=0.4.ckpt", "ckpt 2"));
        ck_assert_uint_eq(freed, want);
        ck_assert_uint_ge(freed, 1 << 20);
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);
        ckpt_finish(&c);
        close(run);
}
END_TEST

START_TEST(test_dir_with_symlinks_out)
{
        int run = open_run(_i), ck, a, b;
        uint64_t freed = 0;
        struct ckpt c;

        write_file(out_fd, "precious", "outside file", 8192);
        close(mkdir_in(out_fd, "dir"));
        int od = openat(out_fd, "dir", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        write_file(od, "inner", "outside inner", 100);
        close(od);

        ck = mkdir_in(run, "checkpoint-500");
        write_file(ck, "model.safetensors", "weights", 65536);
        write_file(ck, "trainer_state.json", "{}", 0);
        a = mkdir_in(ck, "a");
        b = mkdir_in(a, "b");
        write_file(b, "shard", "shard", 12345);
        ck_assert_int_eq(symlinkat("../../../../outside", b, "up"), 0);
        ck_assert_int_eq(symlinkat("../../outside/precious", ck, "link-file"), 0);
        ck_assert_int_eq(symlinkat("../../outside/dir", a, "link-dir"), 0);
        char abs[PATH_MAX];
        snprintf(abs, sizeof(abs), "%s/outside", tmpdir);
        ck_assert_int_eq(symlinkat(abs, ck, "abs-link"), 0);
        close(b);
        close(a);
        close(ck);
        write_file(run, "checkpoint-600-keep", "neighbour", 10);
        ckpt_make1(&c, run, true, "checkpoint-500");

        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, &freed), 0);
        ck_assert(!exists(run, "checkpoint-500"));
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);
        ck_assert(has_text(run, "checkpoint-600-keep", "neighbour"));
        ck_assert(has_text(out_fd, "precious", "outside file"));
        ck_assert(has_text(out_fd, "dir/inner", "outside inner"));
        ck_assert_uint_ge(freed, 65536 + 12345);
        ckpt_finish(&c);
        close(run);
}
END_TEST

/* members[0] is a symlink, even one whose target is the very (dev, ino). */
START_TEST(test_symlink_named_like_ckpt)
{
        int run = open_run(_i);
        struct stat st;
        uint64_t freed = 7;
        struct ckpt c;

        write_file(out_fd, "target.ckpt", "target", 4096);
        close(mkdir_in(out_fd, "target-dir"));
        write_file(run, "placeholder", "x", 0);
        ck_assert_int_eq(symlinkat("../outside/target.ckpt", run, "epoch=3.ckpt"), 0);
        ck_assert_int_eq(symlinkat("../outside/target-dir", run, "checkpoint-3"), 0);

        ckpt_make1(&c, run, false, "epoch=3.ckpt");
        ck_assert_int_eq(fstatat(out_fd, "target.ckpt", &st, 0), 0);
        c.dev = st.st_dev;
        c.ino = st.st_ino;
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, &freed), -ESTALE);
        ck_assert_uint_eq(freed, 0);
        ckpt_finish(&c);

        ckpt_make1(&c, run, true, "checkpoint-3");
        ck_assert_int_eq(fstatat(out_fd, "target-dir", &st, 0), 0);
        c.dev = st.st_dev;
        c.ino = st.st_ino;
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, &freed), -ESTALE);
        ckpt_finish(&c);

        ck_assert(exists(run, "epoch=3.ckpt"));
        ck_assert(exists(run, "checkpoint-3"));
        ck_assert(has_text(out_fd, "target.ckpt", "target"));
        ck_assert(exists(out_fd, "target-dir"));
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);
        close(run);
}
END_TEST

static int hook_run_fd = -1;

/* A trainer re-saving the same name between scan and removal. */
static void swap_file_hook(const char *stage, const char *name)
{
        if (strcmp(stage, "before") != 0)
                return;
        write_file(hook_run_fd, "new.tmp", "new content", 4096);
        ck_assert_int_eq(renameat(hook_run_fd, "new.tmp", hook_run_fd, name), 0);
}

START_TEST(test_swapped_file)
{
        int run = open_run(_i);
        struct ckpt c;

        write_file(run, "ckpt-7.pt", "old content", 4096);
        ckpt_make1(&c, run, false, "ckpt-7.pt");
        hook_run_fd = run;
        remove_test_hook = swap_file_hook;

        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -ESTALE);
        ck_assert(has_text(run, "ckpt-7.pt", "new content"));
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);
        ckpt_finish(&c);
        close(run);
}
END_TEST

START_TEST(test_swapped_dir)
{
        int run = open_run(_i), d;
        struct ckpt c;

        d = mkdir_in(run, "global_step100");
        write_file(d, "old", "old", 10);
        close(d);
        ckpt_make1(&c, run, true, "global_step100");
        /* Replaced by a directory with the same name and new content. */
        ck_assert_int_eq(renameat(run, "global_step100", out_fd, "moved-away"), 0);
        d = mkdir_in(run, "global_step100");
        write_file(d, "new", "new", 10);
        close(d);

        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -ESTALE);
        ck_assert(has_text(run, "global_step100/new", "new"));
        ck_assert(has_text(out_fd, "moved-away/old", "old"));
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);

        /* A file in place of the directory is just as stale. */
        ck_assert_int_eq(renameat(run, "global_step100", out_fd, "moved-2"), 0);
        write_file(run, "global_step100", "file now", 10);
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -ESTALE);
        ck_assert(has_text(run, "global_step100", "file now"));
        ckpt_finish(&c);
        close(run);
}
END_TEST

START_TEST(test_dir_replaced_by_symlink)
{
        int run = open_run(_i), d, r;
        struct ckpt c;

        d = mkdir_in(run, "checkpoint-9");
        write_file(d, "w", "w", 10);
        close(d);
        d = mkdir_in(out_fd, "victim");
        write_file(d, "data", "victim data", 4096);
        close(d);
        ckpt_make1(&c, run, true, "checkpoint-9");
        ck_assert_int_eq(renameat(run, "checkpoint-9", out_fd, "orig"), 0);
        ck_assert_int_eq(symlinkat("../outside/victim", run, "checkpoint-9"), 0);

        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -ESTALE);
        ck_assert(has_text(out_fd, "victim/data", "victim data"));
        ck_assert(exists(run, "checkpoint-9"));
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);

        /* And the tree walker refuses the symlink too (openat2(2) says ENOTDIR
         * for O_DIRECTORY|O_NOFOLLOW on a symlink, ELOOP without O_DIRECTORY). */
        r = remove_tree_at(run, "checkpoint-9");
        ck_assert(r == -ENOTDIR || r == -ELOOP);
        ck_assert(has_text(out_fd, "victim/data", "victim data"));
        ckpt_finish(&c);
        close(run);
}
END_TEST

/* The swap lands between the check and the rename: only the post-rename
 * check of the tombstone can see it. */
static void swap_in_file(int dir_fd, const char *name)
{
        ck_assert_int_eq(renameat(dir_fd, name, out_fd, "swapped-out"), 0);
        write_file(dir_fd, name, "trainer's new", 4096);
}

static void swap_in_dir(int dir_fd, const char *name)
{
        int d;

        ck_assert_int_eq(renameat(dir_fd, name, out_fd, "swapped-out"), 0);
        d = mkdir_in(dir_fd, name);
        write_file(d, "fresh", "trainer's new", 4096);
        close(d);
}

START_TEST(test_swap_at_rename)
{
        int run = open_run(_i), d;
        struct ckpt c;

        write_file(run, "ckpt-1.pt", "old", 4096);
        ckpt_make1(&c, run, false, "ckpt-1.pt");
        swap_fn = swap_in_file;
        swap_at_call = 1;
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -ESTALE);
        ck_assert(has_text(run, "ckpt-1.pt", "trainer's new"));
        ck_assert(has_text(out_fd, "swapped-out", "old"));
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);
        ck_assert_int_eq(count_prefixed(run, ".ckptd-"), 0);
        ckpt_finish(&c);

        d = mkdir_in(run, "checkpoint-2");
        write_file(d, "old", "old", 10);
        close(d);
        ckpt_make1(&c, run, true, "checkpoint-2");
        ck_assert_int_eq(unlinkat(out_fd, "swapped-out", 0), 0);
        swap_fn = swap_in_dir;
        swap_at_call = rename_calls + 1;
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -ESTALE);
        ck_assert(has_text(run, "checkpoint-2/fresh", "trainer's new"));
        ck_assert(has_text(out_fd, "swapped-out/old", "old"));
        ck_assert_int_eq(count_prefixed(run, ".ckptd-"), 0);
        ckpt_finish(&c);
        close(run);
}
END_TEST

/* The swapped-in object cannot go back because the name was taken once
 * more: it must not stay under a tombstone name, where start-up would delete
 * it, so it is parked under a ".ckptd-stale-" name. */
static void occupy_name(int dir_fd, const char *oldpath)
{
        (void)oldpath;
        write_file(dir_fd, "ckpt-1.pt", "third", 10);
}

START_TEST(test_swap_restore_name_taken)
{
        int run = open_run(0);
        struct ckpt c;

        write_file(run, "ckpt-1.pt", "old", 4096);
        ckpt_make1(&c, run, false, "ckpt-1.pt");
        /* Rename 1 tombstones the swapped-in file, rename 2 would restore it. */
        swap_fn = swap_in_file;
        swap_at_call = 1;
        swap2_fn = occupy_name;
        swap2_at_call = 2;
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -ESTALE);
        ck_assert(has_text(run, "ckpt-1.pt", "third"));
        ck_assert(has_text(run, ".ckptd-stale-ckpt-1.pt", "trainer's new"));
        ck_assert(has_text(out_fd, "swapped-out", "old"));
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);
        ck_assert_int_eq(finish_tombstones(), 0);
        ck_assert(has_text(run, ".ckptd-stale-ckpt-1.pt", "trainer's new"));
        ckpt_finish(&c);
        close(run);
}
END_TEST

START_TEST(test_group)
{
        static const char *const names[] = {"ckpt-7.data-00000-of-00002", "ckpt-7.data-00001-of-00002", "ckpt-7.index"};
        int run = open_run(_i);
        uint64_t freed = 0, want = 0;
        struct ckpt c;

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                write_file(run, names[i], names[i], 10000 * (i + 1));
                want += blocks_of(run, names[i]);
        }
        write_file(run, "ckpt-8.index", "ckpt-8.index", 100);
        write_file(run, "checkpoint", "model_checkpoint_path: \"ckpt-8\"", 0);
        ckpt_make(&c, run, false, ELEMENTSOF(names), names);

        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, &freed), 0);
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                ck_assert(!exists(run, names[i]));
        ck_assert(has_text(run, "ckpt-8.index", "ckpt-8.index"));
        ck_assert(exists(run, "checkpoint"));
        ck_assert_uint_eq(freed, want);
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);
        ckpt_finish(&c);
        close(run);
}
END_TEST

/* One bad member: nothing of the group is touched. */
START_TEST(test_group_bad_member)
{
        static const char *const names[] = {"ckpt-7.data", "ckpt-7.index", "ckpt-7.meta"};
        int run = open_run(_i), d;
        struct ckpt c;

        write_file(run, names[0], "data", 100);
        write_file(out_fd, "elsewhere", "elsewhere", 100);
        ck_assert_int_eq(symlinkat("../outside/elsewhere", run, names[1]), 0);
        write_file(run, names[2], "meta", 100);
        ckpt_make(&c, run, false, ELEMENTSOF(names), names);
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -ESTALE);
        ck_assert(has_text(run, names[0], "data"));
        ck_assert(exists(run, names[1]));
        ck_assert(has_text(run, names[2], "meta"));
        ck_assert(has_text(out_fd, "elsewhere", "elsewhere"));

        /* A directory where a file member should be. */
        ck_assert_int_eq(unlinkat(run, names[1], 0), 0);
        d = mkdir_in(run, names[1]);
        close(d);
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -ESTALE);
        ck_assert(has_text(run, names[0], "data"));

        /* A member that vanished. */
        ck_assert_int_eq(unlinkat(run, names[1], AT_REMOVEDIR), 0);
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -ENOENT);
        ck_assert(has_text(run, names[0], "data"));
        ck_assert(has_text(run, names[2], "meta"));
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);
        ckpt_finish(&c);
        close(run);
}
END_TEST

/* The third rename (a.data-1: the index goes first) meets a swapped member:
 * the first two get their names back, so the group is never half gone. */
START_TEST(test_group_rollback)
{
        static const char *const names[] = {"a.data-0", "a.data-1", "a.index"};
        int run = open_run(_i);
        struct ckpt c;

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                write_file(run, names[i], names[i], 100);
        ckpt_make(&c, run, false, ELEMENTSOF(names), names);
        swap_fn = swap_in_file;
        swap_at_call = 3;
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -ESTALE);
        ck_assert(has_text(run, names[0], names[0]));
        ck_assert(has_text(run, names[2], names[2]));
        ck_assert(has_text(run, names[1], "trainer's new"));
        ck_assert(has_text(out_fd, "swapped-out", names[1]));
        ck_assert_int_eq(count_prefixed(run, ".ckptd-"), 0);
        ck_assert_int_eq(count_records(), 0);
        ckpt_finish(&c);
        close(run);
}
END_TEST

START_TEST(test_hard_links)
{
        int run = open_run(_i), d;
        uint64_t freed = 1, want;
        struct ckpt c;

        write_file(run, "model-1.pt", "shared data", 1 << 20);
        ck_assert_int_eq(linkat(run, "model-1.pt", out_fd, "other-link", 0), 0);
        ckpt_make1(&c, run, false, "model-1.pt");
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, &freed), 0);
        ck_assert(!exists(run, "model-1.pt"));
        ck_assert_uint_eq(freed, 0);
        struct stat st;
        ck_assert_int_eq(fstatat(out_fd, "other-link", &st, 0), 0);
        ck_assert_int_eq(st.st_size, (1 << 20));
        ck_assert(has_text(out_fd, "other-link", "shared data"));
        ck_assert_int_eq(st.st_nlink, 1);
        ckpt_finish(&c);

        /* Inside a directory: the linked file frees nothing, the rest does. */
        d = mkdir_in(run, "checkpoint-2");
        write_file(d, "own", "own", 1 << 16);
        want = blocks_of(d, "own") + blocks_of(run, "checkpoint-2");
        ck_assert_int_eq(linkat(out_fd, "other-link", d, "linked", 0), 0);
        close(d);
        ckpt_make1(&c, run, true, "checkpoint-2");
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, &freed), 0);
        ck_assert_uint_eq(freed, want);
        ck_assert(has_text(out_fd, "other-link", "shared data"));
        ck_assert_int_eq(fstatat(out_fd, "other-link", &st, 0), 0);
        ck_assert_int_eq(st.st_size, (1 << 20));
        ckpt_finish(&c);
        close(run);
}
END_TEST

static void name_of_len(char *buf, size_t len, char fill)
{
        memset(buf, fill, len);
        buf[len] = '\0';
}

START_TEST(test_long_names)
{
        char file[NAME_MAX + 1], dir[NAME_MAX + 1], inner[NAME_MAX + 1];
        int run = open_run(_i), d, e;
        struct ckpt c;

        name_of_len(file, NAME_MAX, 'f');
        name_of_len(dir, NAME_MAX, 'd');
        name_of_len(inner, NAME_MAX, 'i');
        write_file(run, file, "long file", 4096);
        d = mkdir_in(run, dir);
        e = mkdir_in(d, inner);
        write_file(e, inner, "inner", 100);
        close(e);
        close(d);

        ckpt_make1(&c, run, false, file);
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), 0);
        ck_assert(!exists(run, file));
        ckpt_finish(&c);

        ckpt_make1(&c, run, true, dir);
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), 0);
        ck_assert(!exists(run, dir));
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);
        ckpt_finish(&c);
        close(run);
}
END_TEST

START_TEST(test_odd_names)
{
        static const char *const names[] = {"ckpt\n-1", "ckpt-\xff\xfe-2", "ckpt-\t\x01 3", "-rf"};
        int run = open_run(_i), d;
        struct ckpt c;

        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                write_file(run, names[i], "x", 100);
                ckpt_make1(&c, run, false, names[i]);
                ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), 0);
                ck_assert(!exists(run, names[i]));
                ckpt_finish(&c);
        }
        d = mkdir_in(run, "dir\n\xc3\x28");
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                close(mkdir_in(d, names[i]));
        write_file(d, "\x80\x81\n", "x", 10);
        close(d);
        ckpt_make1(&c, run, true, "dir\n\xc3\x28");
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), 0);
        ck_assert(!exists(run, "dir\n\xc3\x28"));
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);
        ckpt_finish(&c);
        close(run);
}
END_TEST

START_TEST(test_bad_member_names)
{
        int run = open_run(_i), d;
        struct ckpt c;

        d = mkdir_in(run, "sub");
        write_file(d, "f", "f", 10);
        close(d);
        write_file(out_fd, "f", "outside", 10);
        ckpt_make1(&c, run, false, "sub/f");
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -EINVAL);
        ckpt_finish(&c);
        ckpt_make1(&c, run, false, "../outside/f");
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -EINVAL);
        ckpt_finish(&c);
        ckpt_make1(&c, run, true, ".");
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -EINVAL);
        ck_assert_int_eq(remove_tree_at(run, ".."), -EINVAL);
        ck_assert_int_eq(remove_tree_at(run, "sub/.."), -EINVAL);
        ckpt_finish(&c);
        ck_assert(has_text(run, "sub/f", "f"));
        ck_assert(has_text(out_fd, "f", "outside"));
        close(run);
}
END_TEST

/* A chain `depth` deep of directories called `name`, built with *at() calls
 * so that no path is ever longer than one name. */
static void make_chain(int dir_fd, const char *top, const char *name, int depth)
{
        int fd = mkdir_in(dir_fd, top);

        for (int i = 0; i < depth; i++) {
                int next = mkdir_in(fd, name);

                if (i % 1000 == 0)
                        write_file(fd, "file", "f", 100);
                close(fd);
                fd = next;
        }
        write_file(fd, "leaf", "leaf", 100);
        ck_assert_int_eq(symlinkat("/", fd, "root-link"), 0);
        close(fd);
}

/* With an fd limit far below the depth: the walker's open fds are bounded. */
static void limit_fds(int extra)
{
        struct rlimit rl;

        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
        rl.rlim_cur = (rlim_t)(count_fds() + extra);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

START_TEST(test_deep)
{
        int run = open_run(_i), fds;
        uint64_t freed = 0;
        struct ckpt c;

        make_chain(run, "checkpoint-deep", "d", 10000);
        ckpt_make1(&c, run, true, "checkpoint-deep");
        fds = count_fds();
        limit_fds(100);
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, &freed), 0);
        ck_assert(!exists(run, "checkpoint-deep"));
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);
        ck_assert_int_eq(count_fds(), fds);
        ck_assert_uint_gt(freed, 0);
        ckpt_finish(&c);
        close(run);
}
END_TEST

/* 3000 levels of 255-byte names: a path of 768 KB, re-opened in chunks. */
START_TEST(test_deep_long_names)
{
        char name[NAME_MAX + 1];
        int run = open_run(_i), fds;

        name_of_len(name, NAME_MAX, 'n');
        make_chain(run, "tree", name, 3000);
        fds = count_fds();
        limit_fds(100);
        ck_assert_int_eq(remove_tree_at(run, "tree"), 0);
        ck_assert(!exists(run, "tree"));
        ck_assert_int_eq(count_fds(), fds);
        close(run);
}
END_TEST

/* A wide directory: removal while reading must not skip entries. */
START_TEST(test_wide)
{
        int run = open_run(_i), d;
        char name[32];

        d = mkdir_in(run, "wide");
        for (int i = 0; i < 5000; i++) {
                snprintf(name, sizeof(name), "f%05d", i);
                write_file(d, name, "", 0);
                if (i % 100 == 0) {
                        snprintf(name, sizeof(name), "d%05d", i);
                        close(mkdir_in(d, name));
                }
        }
        close(d);
        ck_assert_int_eq(remove_tree_at(run, "wide"), 0);
        ck_assert(!exists(run, "wide"));
        close(run);
}
END_TEST

START_TEST(test_bind_mount_inside)
{
        int run, ck, sub, deep;
        uint64_t freed = 0;
        struct ckpt c;
        int r;

        if (!private_mounts())
                return;
        run = open_run(_i);
        write_file(out_fd, "mounted-file", "must survive", 4096);
        ck = mkdir_in(run, "checkpoint-1");
        write_file(ck, "a", "a", 4096);
        sub = mkdir_in(ck, "sub");
        deep = mkdir_in(ck, "deep");
        write_file(deep, "b", "b", 4096);
        bind_mount(out_fd, sub);
        close(sub);
        close(deep);
        close(ck);
        ckpt_make1(&c, run, true, "checkpoint-1");

        r = remove_ckpt(&rctx, run, &c, &freed);
        ck_assert_int_eq(r, -EXDEV);
        ck_assert(has_text(out_fd, "mounted-file", "must survive"));
        ck_assert(!exists(run, "checkpoint-1"));
        /* The tombstone keeps only the mount point. */
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 1);
        ck_assert(exists(run, TOMBSTONE_PREFIX "checkpoint-1/sub/mounted-file"));
        ck_assert(!exists(run, TOMBSTONE_PREFIX "checkpoint-1/a"));
        ck_assert(!exists(run, TOMBSTONE_PREFIX "checkpoint-1/deep"));
        ck_assert_uint_ge(freed, 8192);

        /* Start-up reports it again; once unmounted it is finished too. A
         * tombstone-like name nobody recorded is not ours and stays. */
        ck_assert_int_eq(count_records(), 1);
        write_file(run, TOMBSTONE_PREFIX "other", "other", 10);
        ck_assert_int_eq(finish_tombstones(), -EXDEV);
        ck_assert(has_text(out_fd, "mounted-file", "must survive"));
        ck_assert(has_text(run, TOMBSTONE_PREFIX "other", "other"));
        sub = openat(run, TOMBSTONE_PREFIX "checkpoint-1/sub", O_PATH | O_CLOEXEC);
        ck_assert_int_ge(sub, 0);
        char p[64];
        snprintf(p, sizeof(p), "/proc/self/fd/%d", sub);
        ck_assert_int_eq(umount2(p, MNT_DETACH), 0);
        close(sub);
        ck_assert_int_eq(finish_tombstones(), 1);
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 1);
        ck_assert(has_text(run, TOMBSTONE_PREFIX "other", "other"));
        ck_assert_int_eq(count_records(), 0);
        ck_assert(has_text(out_fd, "mounted-file", "must survive"));
        ckpt_finish(&c);
        close(run);
}
END_TEST

/* The checkpoint directory itself is a mount point. */
START_TEST(test_ckpt_is_mount_point)
{
        int run, ck;
        struct ckpt c;

        if (!private_mounts())
                return;
        run = open_run(_i);
        write_file(out_fd, "mounted-file", "must survive", 4096);
        ck = mkdir_in(run, "checkpoint-1");
        bind_mount(out_fd, ck);
        close(ck);
        ckpt_make1(&c, run, true, "checkpoint-1");
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -EXDEV);
        ck_assert(has_text(out_fd, "mounted-file", "must survive"));
        ck_assert(exists(run, "checkpoint-1/mounted-file"));
        ck_assert_int_eq(remove_tree_at(run, "checkpoint-1"), -EXDEV);
        ck_assert(has_text(out_fd, "mounted-file", "must survive"));
        ck_assert_int_eq(umount2(tmpdir_path("run/checkpoint-1"), MNT_DETACH), 0);
        ckpt_finish(&c);
        close(run);
}
END_TEST

static void die_at_renamed(const char *stage, const char *name)
{
        (void)name;
        if (strcmp(stage, "renamed") == 0)
                _exit(42);
}

/* Tombstones are ckptd's own: entries named like tombstones that no record
 * names (a group member renaming another's directory, say) are ordinary
 * entries, and a record whose entry was swapped finishes nothing. */
START_TEST(test_tombstones)
{
        int run = open_run(_i), d;
        char longtomb[NAME_MAX + 1];
        struct ckpt c;

        write_file(out_fd, "precious", "precious", 100);
        d = mkdir_in(run, TOMBSTONE_PREFIX "results");
        write_file(d, "shard", "shard", 4096);
        ck_assert_int_eq(symlinkat("../../outside", d, "escape"), 0);
        close(mkdir_in(d, "nested"));
        close(d);
        write_file(run, TOMBSTONE_PREFIX "ckpt-1.pt", "half", 100);
        ck_assert_int_eq(symlinkat("../outside/precious", run, TOMBSTONE_PREFIX "link"), 0);
        snprintf(longtomb, sizeof(longtomb), "%s%jx", TOMBSTONE_PREFIX, (uintmax_t)123456);
        close(mkdir_in(run, longtomb));
        write_file(run, "ckpt-2.pt", "live", 100);

        ck_assert_int_eq(finish_tombstones(), 0);
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 4);
        ck_assert(has_text(run, TOMBSTONE_PREFIX "results/shard", "shard"));
        ck_assert(has_text(run, TOMBSTONE_PREFIX "ckpt-1.pt", "half"));
        ck_assert(has_text(run, "ckpt-2.pt", "live"));
        ck_assert(has_text(out_fd, "precious", "precious"));

        /* A recorded removal whose tombstone was replaced by another entry
         * of the same name: that entry is not what was recorded. */
        remove_test_hook = NULL;
        d = mkdir_in(run, "checkpoint-9");
        write_file(d, "w", "w", 10);
        close(d);
        ckpt_make1(&c, run, true, "checkpoint-9");
        {
                pid_t pid = fork();
                int status;

                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        remove_test_hook = die_at_renamed;
                        remove_ckpt(&rctx, run, &c, NULL);
                        _exit(0);
                }
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 42);
        }
        ck_assert_int_eq(count_records(), 1);
        ck_assert_int_eq(renameat(run, TOMBSTONE_PREFIX "checkpoint-9", out_fd, "moved-tomb"), 0);
        d = mkdir_in(run, TOMBSTONE_PREFIX "checkpoint-9");
        write_file(d, "victim", "victim", 10);
        close(d);
        ck_assert_int_eq(finish_tombstones(), 0);
        ck_assert(has_text(run, TOMBSTONE_PREFIX "checkpoint-9/victim", "victim"));
        ck_assert(has_text(out_fd, "moved-tomb/w", "w"));
        ck_assert_int_eq(count_records(), 0);
        ckpt_finish(&c);
        close(run);
}
END_TEST

static void die_when_tombstoned(const char *stage, const char *name)
{
        (void)name;
        if (strcmp(stage, "tombstoned") == 0)
                _exit(42);
}

/* A crash right after the rename leaves a tombstone that start-up finishes;
 * the checkpoint's name is gone at once. */
static void interrupted(int run, const char *name)
{
        struct ckpt c;
        pid_t pid;
        int status, d;

        d = mkdir_in(run, name);
        write_file(d, "shard", "shard", 4096);
        close(mkdir_in(d, "sub"));
        close(d);
        ckpt_make1(&c, run, true, name);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                remove_test_hook = die_when_tombstoned;
                remove_ckpt(&rctx, run, &c, NULL);
                _exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 42);
        ck_assert(!exists(run, name));
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 1);
        ck_assert_int_eq(finish_tombstones(), 1);
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);
        ckpt_finish(&c);
}

START_TEST(test_interrupted)
{
        char name[NAME_MAX + 1];
        int run = open_run(_i);

        interrupted(run, "checkpoint-1000");
        name_of_len(name, NAME_MAX, 'L');
        interrupted(run, name);
        /* the record's percent-encoding of names round-trips */
        interrupted(run, "ckpt\n%41 %%\xff\x01-1");
        close(run);
}
END_TEST

static unsigned renames_left;

static void die_after_renames(const char *stage, const char *name)
{
        (void)name;
        if (strcmp(stage, "renamed") == 0 && --renames_left == 0)
                _exit(42);
}

/* Write name of dir_fd again in place (same inode, same birth time: a
 * trainer saving that name again), at a ctime the clock tells apart from
 * the one it had. */
static void rewrite_in_place(int dir_fd, const char *name, const char *text)
{
        struct timespec now;
        struct stat st;
        int fd;

        ck_assert_int_eq(fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW), 0);
        /* a ctime comes from the coarse clock: wait until it is past */
        for (int i = 0; i < 2000; i++) {
                clock_gettime(CLOCK_REALTIME_COARSE, &now);
                if (now.tv_sec > st.st_ctim.tv_sec ||
                    (now.tv_sec == st.st_ctim.tv_sec && now.tv_nsec > st.st_ctim.tv_nsec))
                        break;
                nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
        }
        fd = openat(dir_fd, name, O_WRONLY | O_TRUNC | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
        close(fd);
}

/* A group removal killed after its first k renames: the index went first,
 * so the group never looks whole, and start-up finishes every member that
 * is still the recorded one (a shard replaced meanwhile is not, nor one
 * written again in place). */
START_TEST(test_group_interrupted)
{
        static const char *const names[] = {"ckpt-3.data-00000-of-00003", "ckpt-3.data-00001-of-00003",
                                            "ckpt-3.data-00002-of-00003", "ckpt-3.index"};
        int run = open_run(0);
        struct ckpt c;

        for (unsigned k = 1; k <= ELEMENTSOF(names); k++) {
                pid_t pid;
                int status;

                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        write_file(run, names[i], names[i], 100);
                write_file(run, "ckpt-4.index", "next", 10);
                ckpt_make(&c, run, false, ELEMENTSOF(names), names);
                pid = fork();
                ck_assert_int_ge(pid, 0);
                if (pid == 0) {
                        renames_left = k;
                        remove_test_hook = die_after_renames;
                        remove_ckpt(&rctx, run, &c, NULL);
                        _exit(0);
                }
                ck_assert_int_eq(waitpid(pid, &status, 0), pid);
                ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 42);
                ck_assert(!exists(run, "ckpt-3.index"));
                ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), (int)k);
                if (k == 1) {
                        /* a shard replaced after the kill is someone's new file */
                        ck_assert_int_eq(unlinkat(run, names[2], 0), 0);
                        write_file(run, names[2], "rewritten", 10);
                } else if (k == 2) {
                        /* so is one written again where it is */
                        rewrite_in_place(run, names[2], "rewritten");
                }
                ck_assert_int_eq(finish_tombstones(), 1);
                ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 0);
                ck_assert_int_eq(count_records(), 0);
                for (size_t i = 0; i < ELEMENTSOF(names); i++)
                        ck_assert(k <= 2 && i == 2 ? has_text(run, names[i], "rewritten") : !exists(run, names[i]));
                ck_assert(has_text(run, "ckpt-4.index", "next"));
                if (k <= 2)
                        ck_assert_int_eq(unlinkat(run, names[2], 0), 0);
                ck_assert_int_eq(unlinkat(run, "ckpt-4.index", 0), 0);
                ckpt_finish(&c);
        }
        close(run);
}
END_TEST

/* A record written by an older ckptd (a member line without its ctime) is
 * still read, and its removal finished. */
START_TEST(test_record_of_an_older_ckptd)
{
        int run = open_run(0), fd;
        struct stat rs, ms;

        write_file(run, TOMBSTONE_PREFIX "a.pt", "a", 10);
        ck_assert_int_eq(fstat(run, &rs), 0);
        ck_assert_int_eq(fstatat(run, TOMBSTONE_PREFIX "a.pt", &ms, AT_SYMLINK_NOFOLLOW), 0);
        fd = openat(rctx.records_fd, "0123456789abcdef0123456789abcdef.rec", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                    0600);
        ck_assert_int_ge(fd, 0);
        dprintf(fd, "ckptd-tombstone 1\nroot %s\nrun run\nrundir %llu %llu\nmember %llu %llu 100000 0 0 a.pt %sa.pt\n",
                rctx.root, (unsigned long long)rs.st_dev, (unsigned long long)rs.st_ino,
                (unsigned long long)ms.st_dev, (unsigned long long)ms.st_ino, TOMBSTONE_PREFIX);
        close(fd);
        ck_assert_int_eq(finish_tombstones(), 1);
        ck_assert(!exists(run, TOMBSTONE_PREFIX "a.pt"));
        ck_assert_int_eq(count_records(), 0);
        close(run);
}
END_TEST

static void die_now(int dir_fd, const char *name)
{
        (void)dir_fd;
        (void)name;
        _exit(42);
}

/* Killed after the record and before any rename: nothing is finished, the
 * checkpoint keeps its name (the next sweep decides again). */
START_TEST(test_record_without_rename)
{
        int run = open_run(0);
        struct ckpt c;
        pid_t pid;
        int status;

        write_file(run, "a.pt", "a", 10);
        ckpt_make1(&c, run, false, "a.pt");
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                swap_fn = die_now;
                swap_at_call = rename_calls + 1;
                remove_ckpt(&rctx, run, &c, NULL);
                _exit(0);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 42);
        ck_assert(has_text(run, "a.pt", "a"));
        ck_assert_int_eq(count_records(), 1);
        ck_assert_int_eq(finish_tombstones(), 0);
        ck_assert(has_text(run, "a.pt", "a"));
        ck_assert_int_eq(count_records(), 0);
        ckpt_finish(&c);
        close(run);
}
END_TEST

/* Records are orders to delete: a state directory others can write, or owned
 * by someone else, is refused. */
START_TEST(test_records_private)
{
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/open-state", tmpdir);
        ck_assert_int_eq(mkdir(path, 0777), 0);
        ck_assert_int_eq(chmod(path, 0777), 0);
        ck_assert_int_eq(tombrec_open(path), -EPERM);
        ck_assert_int_eq(chmod(path, 0700), 0);
        int fd = tombrec_open(path);
        ck_assert_int_ge(fd, 0);
        close(fd);
        ck_assert_int_eq(tombrec_open("relative/path"), -EINVAL);
}
END_TEST

static char stages[256];

static void record_stage(const char *stage, const char *name)
{
        size_t len = strlen(stages);

        snprintf(stages + len, sizeof(stages) - len, "%s:%s;", stage, name);
}

START_TEST(test_hook_stages)
{
        int run = open_run(_i);
        struct ckpt c;

        remove_test_hook = record_stage;
        write_file(run, "f.ckpt", "f", 10);
        ckpt_make1(&c, run, false, "f.ckpt");
        stages[0] = '\0';
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), 0);
        ck_assert_str_eq(stages, "before:f.ckpt;renamed:f.ckpt;");
        ckpt_finish(&c);

        close(mkdir_in(run, "step-5"));
        ckpt_make1(&c, run, true, "step-5");
        stages[0] = '\0';
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), 0);
        ck_assert_str_eq(stages, "before:step-5;renamed:step-5;tombstoned:step-5;");
        ckpt_finish(&c);
        close(run);
}
END_TEST

/* A leftover tombstone of the same name is not replaced or merged. */
START_TEST(test_tomb_name_taken)
{
        int run = open_run(_i), d;
        struct ckpt c;

        d = mkdir_in(run, TOMBSTONE_PREFIX "checkpoint-4");
        write_file(d, "old", "old tomb", 10);
        close(d);
        write_file(run, TOMBSTONE_PREFIX "ckpt-4.pt", "old tomb file", 10);
        d = mkdir_in(run, "checkpoint-4");
        write_file(d, "new", "new", 10);
        close(d);
        write_file(run, "ckpt-4.pt", "new file", 10);

        ckpt_make1(&c, run, true, "checkpoint-4");
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), 0);
        ckpt_finish(&c);
        ckpt_make1(&c, run, false, "ckpt-4.pt");
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), 0);
        ckpt_finish(&c);
        ck_assert(!exists(run, "checkpoint-4"));
        ck_assert(!exists(run, "ckpt-4.pt"));
        ck_assert(has_text(run, TOMBSTONE_PREFIX "checkpoint-4/old", "old tomb"));
        ck_assert(has_text(run, TOMBSTONE_PREFIX "ckpt-4.pt", "old tomb file"));
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 2);
        close(run);
}
END_TEST

/* NFS and others refuse RENAME_NOREPLACE with EINVAL. */
START_TEST(test_no_rename_noreplace)
{
        int run = open_run(_i), d;
        struct ckpt c;

        no_noreplace = true;
        write_file(run, TOMBSTONE_PREFIX "ckpt-4.pt", "old tomb file", 10);
        write_file(run, "ckpt-4.pt", "new file", 10);
        ckpt_make1(&c, run, false, "ckpt-4.pt");
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), 0);
        ck_assert(!exists(run, "ckpt-4.pt"));
        ck_assert(has_text(run, TOMBSTONE_PREFIX "ckpt-4.pt", "old tomb file"));
        ckpt_finish(&c);

        d = mkdir_in(run, "checkpoint-5");
        write_file(d, "x", "x", 10);
        close(d);
        ckpt_make1(&c, run, true, "checkpoint-5");
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), 0);
        ck_assert(!exists(run, "checkpoint-5"));
        ckpt_finish(&c);

        write_file(run, "ckpt-6.pt", "old", 10);
        ckpt_make1(&c, run, false, "ckpt-6.pt");
        swap_fn = swap_in_file;
        swap_at_call = rename_calls + 1;
        ck_assert_int_eq(remove_ckpt(&rctx, run, &c, NULL), -ESTALE);
        ck_assert(has_text(run, "ckpt-6.pt", "trainer's new"));
        ck_assert_int_eq(count_prefixed(run, TOMBSTONE_PREFIX), 1);
        ckpt_finish(&c);
        close(run);
}
END_TEST

START_TEST(test_remove_tree_at)
{
        int run = open_run(_i), d, r;

        write_file(out_fd, "keep", "keep", 10);
        ck_assert_int_eq(symlinkat("../outside", run, "link"), 0);
        write_file(run, "file", "file", 10);
        r = remove_tree_at(run, "link");
        ck_assert(r == -ENOTDIR || r == -ELOOP);
        ck_assert_int_eq(remove_tree_at(run, "file"), -ENOTDIR);
        ck_assert_int_eq(remove_tree_at(run, "missing"), -ENOENT);
        ck_assert(exists(run, "link"));
        ck_assert(has_text(run, "file", "file"));
        ck_assert(has_text(out_fd, "keep", "keep"));

        d = mkdir_in(run, "t");
        ck_assert_int_eq(mkfifoat(d, "fifo", 0600), 0);
        ck_assert_int_eq(symlinkat("../../outside/keep", d, "l"), 0);
        ck_assert_int_eq(symlinkat("dangling", d, "dl"), 0);
        close(d);
        ck_assert_int_eq(remove_tree_at(run, "t"), 0);
        ck_assert(!exists(run, "t"));
        ck_assert(has_text(out_fd, "keep", "keep"));
        close(run);
}
END_TEST

Suite *remove_suite(void)
{
        Suite *s = suite_create("remove");
        TCase *tc = tcase_create("remove");

        tcase_add_checked_fixture(tc, setup, teardown);
        /* The deep trees take a few seconds under ASan. */
        tcase_set_timeout(tc, 120);
        tcase_add_loop_test(tc, test_file, 0, 2);
        tcase_add_loop_test(tc, test_dir_with_symlinks_out, 0, 2);
        tcase_add_loop_test(tc, test_symlink_named_like_ckpt, 0, 2);
        tcase_add_loop_test(tc, test_swapped_file, 0, 2);
        tcase_add_loop_test(tc, test_swapped_dir, 0, 2);
        tcase_add_loop_test(tc, test_dir_replaced_by_symlink, 0, 2);
        tcase_add_loop_test(tc, test_swap_at_rename, 0, 2);
        tcase_add_test(tc, test_swap_restore_name_taken);
        tcase_add_loop_test(tc, test_group, 0, 2);
        tcase_add_loop_test(tc, test_group_bad_member, 0, 2);
        tcase_add_loop_test(tc, test_group_rollback, 0, 2);
        tcase_add_loop_test(tc, test_hard_links, 0, 2);
        tcase_add_loop_test(tc, test_long_names, 0, 2);
        tcase_add_loop_test(tc, test_odd_names, 0, 2);
        tcase_add_loop_test(tc, test_bad_member_names, 0, 2);
        tcase_add_loop_test(tc, test_deep, 1, 2);
        tcase_add_test(tc, test_deep_long_names);
        tcase_add_test(tc, test_wide);
        tcase_add_loop_test(tc, test_bind_mount_inside, 0, 2);
        tcase_add_test(tc, test_ckpt_is_mount_point);
        tcase_add_loop_test(tc, test_tombstones, 0, 2);
        tcase_add_loop_test(tc, test_interrupted, 0, 2);
        tcase_add_test(tc, test_hook_stages);
        tcase_add_test(tc, test_group_interrupted);
        tcase_add_test(tc, test_record_of_an_older_ckptd);
        tcase_add_test(tc, test_record_without_rename);
        tcase_add_test(tc, test_records_private);
        tcase_add_loop_test(tc, test_tomb_name_taken, 0, 2);
        tcase_add_test(tc, test_no_rename_noreplace);
        tcase_add_test(tc, test_remove_tree_at);
        suite_add_tcase(s, tc);
        return s;
}
