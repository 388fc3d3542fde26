/* Temporary directory trees for the metricfile and scan suites. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tree.h"

char tree_dir[] = "/tmp/ckptd-test-XXXXXX";
int tree_fd = -1;
int64_t tree_now_usec;
struct pattern *tree_pat;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
}

void tree_setup(void)
{
        struct timespec ts;

        strcpy(tree_dir, "/tmp/ckptd-test-XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tree_dir));
        tree_fd = root_open(tree_dir);
        ck_assert_int_ge(tree_fd, 0);
        clock_gettime(CLOCK_REALTIME, &ts);
        /* a second ahead: what we create below is never "in the future" */
        tree_now_usec = (int64_t)ts.tv_sec * (int64_t)USEC_PER_SEC + (int64_t)USEC_PER_SEC;
}

void tree_reopen(void)
{
        tree_fd = safe_close(tree_fd);
        tree_fd = root_open(tree_dir);
        ck_assert_int_ge(tree_fd, 0);
}

void tree_teardown(void)
{
        tree_pat = pattern_free(tree_pat);
        tree_fd = safe_close(tree_fd);
        nftw(tree_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

void tree_path(const char *path, char *buf, size_t size)
{
        ck_assert_int_lt(snprintf(buf, size, "%s/%s", tree_dir, path), (int)size);
}

void tree_mkdirs(const char *path)
{
        char full[4096];

        tree_path(path, full, sizeof(full));
        for (char *s = strchr(full + strlen(tree_dir) + 1, '/');; s = strchr(s + 1, '/')) {
                if (s)
                        *s = '\0';
                ck_assert_msg(mkdir(full, 0755) == 0 || errno == EEXIST, "mkdir %s: %m", full);
                if (!s)
                        break;
                *s = '/';
        }
}

/* A file of `size` bytes of real data (so that st_blocks is allocated). */
void tree_mkfile(const char *path, size_t size)
{
        char full[4096], buf[4096];
        const char *slash = strrchr(path, '/');
        int fd;

        if (slash) {
                char parent[4096];
                snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
                tree_mkdirs(parent);
        }
        tree_path(path, full, sizeof(full));
        fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_msg(fd >= 0, "open %s: %m", full);
        memset(buf, 'x', sizeof(buf));
        for (size_t done = 0; done < size;) {
                size_t n = size - done < sizeof(buf) ? size - done : sizeof(buf);
                ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
                done += n;
        }
        close(fd);
}

void tree_put(const char *path, const char *text, size_t len)
{
        const char *slash = strrchr(path, '/');
        char full[4096];
        int fd;

        if (slash) {
                char parent[4096];
                snprintf(parent, sizeof(parent), "%.*s", (int)(slash - path), path);
                tree_mkdirs(parent);
        }
        tree_path(path, full, sizeof(full));
        fd = open(full, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ck_assert_msg(fd >= 0, "open %s: %m", full);
        ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
        close(fd);
}

void tree_puts(const char *path, const char *text)
{
        tree_put(path, text, strlen(text));
}

void tree_symlink(const char *target, const char *path)
{
        char full[4096];

        tree_path(path, full, sizeof(full));
        ck_assert_int_eq(symlink(target, full), 0);
}

/* Set the mtime of path to tree_now_usec + delta_usec, not following symlinks. */
void tree_set_mtime(const char *path, int64_t delta_usec)
{
        char full[4096];
        int64_t t = tree_now_usec + delta_usec;
        struct timespec ts[2] = {
                {.tv_sec = t / (int64_t)USEC_PER_SEC, .tv_nsec = (t % (int64_t)USEC_PER_SEC) * 1000},
                {.tv_sec = t / (int64_t)USEC_PER_SEC, .tv_nsec = (t % (int64_t)USEC_PER_SEC) * 1000},
        };

        tree_path(path, full, sizeof(full));
        ck_assert_int_eq(utimensat(AT_FDCWD, full, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static int age_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        int64_t t = (int64_t)time(NULL) - 3 * 3600;
        struct timespec ts[2] = {{.tv_sec = t}, {.tv_sec = t}};

        (void)st;
        (void)flag;
        (void)ftw;
        utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
        return 0;
}

/* Make everything in the test tree three hours old. */
void tree_age_all(void)
{
        ck_assert_int_eq(nftw(tree_dir, age_one, 16, FTW_PHYS), 0);
}

struct watch_conf tree_watch(enum ckpt_kind kind)
{
        return (struct watch_conf){
                .path = tree_dir,
                .recursive = true,
                .preset = (char *)"generic",
                .kind = kind,
                .policy = {.keep_top_k = 3, .keep_last = 1},
                .metric_source = METRIC_NAME,
        };
}

void tree_use_pattern(const char *template)
{
        const char *error = NULL;

        tree_pat = pattern_free(tree_pat);
        if (template)
                ck_assert_msg(pattern_compile(template, &tree_pat, &error) == 0, "%s", error ? error : "?");
        else
                ck_assert_int_eq(pattern_new_kv(NULL, NULL, &tree_pat), 0);
}

int64_t tree_scan_now(void)
{
        struct timespec ts;
        int64_t now;

        clock_gettime(CLOCK_REALTIME, &ts);
        now = (int64_t)ts.tv_sec * (int64_t)USEC_PER_SEC + (int64_t)USEC_PER_SEC;
        return now > tree_now_usec ? now : tree_now_usec;
}

struct run tree_scan_path(const struct watch_conf *w, const char *path)
{
        struct run run = {};
        int fd = openat_beneath(tree_fd, path, O_RDONLY | O_DIRECTORY, 0);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(scan_run(fd, path, w, tree_pat, tree_scan_now(), &run), 0);
        close(fd);
        return run;
}

struct run tree_scan(const struct watch_conf *w)
{
        return tree_scan_path(w, ".");
}

const struct ckpt *tree_find(const struct run *run, const char *name)
{
        for (size_t i = 0; i < run->n_ckpts; i++)
                if (strcmp(run->ckpts[i].name, name) == 0)
                        return &run->ckpts[i];
        ck_abort_msg("no checkpoint %s", name);
        return NULL;
}
