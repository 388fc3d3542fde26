/* One inotify fd and the table of its watches (lib/watchtab.c), decoded by
 * lib/inotify_decode.c. See inotify(7) for the kernel side. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "scan.h"
#include "watch.h"

/* Large enough for many events per read(2); inotify(7) requires room for at
 * least sizeof(struct inotify_event) + NAME_MAX + 1, or read fails EINVAL. */
#define WATCHER_BUF_SIZE (64 * 1024)
/* 64 reads of 64 KiB is >= 100k events: beyond that, return to the loop
 * (and its watchdog) and let the level-triggered fd call us again. */
#define WATCHER_READS_MAX 64

struct watcher {
        int fd;
        bool reading;
        struct watchtab *tab;
        /* inotify(7)'s example aligns its buffer like this; events after the
         * first are then aligned too (the kernel pads names). */
        uint8_t buf[WATCHER_BUF_SIZE] __attribute__((aligned(__alignof__(struct inotify_event))));
};

_Static_assert(WATCHER_BUF_SIZE >= sizeof(struct inotify_event) + NAME_MAX + 1,
               "inotify read buffer too small for one event");

int watcher_new(struct watcher **ret)
{
        struct watcher *w;

        w = malloc(sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->reading = false;
        w->tab = watchtab_new();
        if (!w->tab) {
                free(w);
                return -ENOMEM;
        }
        w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->fd < 0) {
                int r = -errno;

                watchtab_free(w->tab);
                free(w);
                return r;
        }
        *ret = w;
        return 0;
}

struct watcher *watcher_free(struct watcher *w)
{
        if (!w)
                return NULL;
        safe_close(w->fd);
        watchtab_free(w->tab);
        free(w);
        return NULL;
}

int watcher_fd(const struct watcher *w)
{
        return w->fd;
}

bool watcher_readable(const struct watcher *w)
{
        struct pollfd p = {.fd = w ? w->fd : -1, .events = POLLIN};

        return w && poll(&p, 1, 0) > 0;
}

int watcher_add(struct watcher *w, int dir_fd, const char *path, unsigned root, enum watch_kind kind,
                const struct watch_dir **ret)
{
        char proc_path[sizeof("/proc/self/fd/") + 3 * sizeof(int)];
        struct watch_dir *d;
        struct stat st;
        bool existed;
        int n, wd, r;

        if (dir_fd < 0 || !path || (unsigned)kind >= _WATCH_KIND_MAX)
                return -EINVAL;
        if (fstat(dir_fd, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;

        /* inotify_add_watch(2) takes a path and has no *at() form, and a
         * path looked up again could meanwhile lead elsewhere (a run renamed
         * and replaced by a symlink to /etc). /proc/self/fd/N is a "magic
         * link" (proc(5)) that resolves to the open file itself, not to a
         * path: the watch lands on exactly the directory our fd, opened
         * beneath the root without symlinks, refers to.
         *
         * IN_DONT_FOLLOW must not be used with it: it stops the lookup at
         * the magic link, so the watch would land on the procfs symlink
         * (with IN_ONLYDIR the call fails ENOTDIR). The no-symlink guarantee
         * comes from how dir_fd was opened instead. IN_ONLYDIR stays as a
         * check that the target is a directory. */
        n = snprintf(proc_path, sizeof(proc_path), "/proc/self/fd/%d", dir_fd);
        if (n < 0 || (size_t)n >= sizeof(proc_path))
                return -ENAMETOOLONG;

        /* IN_MASK_ADD: a directory that is a root's parent and also a root
         * or run of another watch keeps the events of both (one inode has
         * one watch per inotify fd, and one mask). */
        wd = inotify_add_watch(w->fd, proc_path, (kind == WATCH_PARENT ? WATCH_PARENT_MASK : WATCH_MASK) | IN_MASK_ADD);
        if (wd < 0)
                /* ENOSPC: max_user_watches reached (inotify(7)); the
                 * manager polls this subtree instead. ENOENT: no /proc. */
                return -errno;

        /* The same inode yields the same wd (inotify_add_watch(2)), and wds
         * are not reused while live (idr_alloc_cyclic()), so an owner with
         * another (dev, ino) would mean the table is out of step. */
        d = watchtab_get(w->tab, wd);
        existed = d != NULL;
        if (d && (d->dev != st.st_dev || d->ino != st.st_ino))
                return -ESTALE;

        r = watchtab_put(w->tab, wd, root, kind, path, st.st_dev, st.st_ino, &d);
        if (r < 0) {
                /* Do not leave a kernel watch that no entry stands for. */
                if (!existed)
                        (void)inotify_rm_watch(w->fd, wd);
                return r;
        }
        if (ret)
                *ret = d;
        return wd;
}

int watcher_add_beneath(struct watcher *w, int root_fd, const char *rel_path, unsigned root, enum watch_kind kind,
                        const struct watch_dir **ret)
{
        _cleanup_close_ int fd = -1;

        if (!rel_path)
                return -EINVAL;
        /* openat2(2): EAGAIN when a rename or mount raced with the
         * RESOLVE_BENEATH lookup; retrying is the documented answer. */
        for (unsigned attempt = 0; attempt < 8; attempt++) {
                fd = openat_beneath(root_fd, rel_path, O_PATH | O_DIRECTORY, 0);
                if (fd != -EAGAIN)
                        break;
        }
        if (fd < 0)
                return fd;
        return watcher_add(w, fd, rel_path, root, kind, ret);
}

const struct watch_dir *watcher_lookup(const struct watcher *w, int wd)
{
        return watchtab_get(w->tab, wd);
}

/* After the last owner of wd left the table. EINVAL means the kernel has
 * dropped the watch already; its IN_IGNORED is queued and will find no
 * entry (inotify_rm_watch(2)). */
static void rm_kernel_watch(struct watcher *w, int wd)
{
        (void)inotify_rm_watch(w->fd, wd);
}

int watcher_remove(struct watcher *w, int wd, unsigned root)
{
        struct watch_dir *d = watchtab_take(w->tab, wd, root);

        if (!d)
                return -ENOENT;
        watch_dir_free(d);
        if (!watchtab_get(w->tab, wd))
                rm_kernel_watch(w, wd);
        return 0;
}

int watcher_remove_wd(struct watcher *w, int wd)
{
        struct watch_dir *d = watchtab_take_wd(w->tab, wd);

        if (!d)
                return -ENOENT;
        watch_dir_free(d);
        rm_kernel_watch(w, wd);
        return 0;
}

/* rel_path itself or below it; "." is the whole root. PARENT paths are
 * absolute and never match. */
static bool path_is_below(const char *path, const char *rel_path)
{
        size_t n = strlen(rel_path);

        if (path[0] == '/')
                return false;
        if (streq_ptr(rel_path, "."))
                return true;
        return strncmp(path, rel_path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

struct wd_root {
        int wd;
        unsigned root;
};

/* Remove the entries of root that match (all of them when rel_path is
 * NULL). The table cannot change while it is iterated: collect, then take. */
static int remove_matching(struct watcher *w, unsigned root, const char *rel_path)
{
        struct watchtab_iter it = {0};
        struct wd_root *victims = NULL;
        size_t n = 0, cap = 0;
        struct watch_dir *d;

        while (watchtab_next(w->tab, &it, &d)) {
                if (d->root != root)
                        continue;
                if (rel_path && (d->kind == WATCH_PARENT || !path_is_below(d->path, rel_path)))
                        continue;
                if (n == cap) {
                        size_t new_cap = cap ? cap * 2 : 64;
                        struct wd_root *v = reallocarray(victims, new_cap, sizeof(*v));

                        if (!v) {
                                free(victims);
                                return -ENOMEM;
                        }
                        victims = v;
                        cap = new_cap;
                }
                victims[n++] = (struct wd_root){d->wd, d->root};
        }
        for (size_t i = 0; i < n; i++)
                (void)watcher_remove(w, victims[i].wd, victims[i].root);
        free(victims);
        return n > INT_MAX ? INT_MAX : (int)n;
}

int watcher_remove_root(struct watcher *w, unsigned root)
{
        return remove_matching(w, root, NULL);
}

int watcher_remove_below(struct watcher *w, unsigned root, const char *rel_path)
{
        if (!rel_path)
                return -EINVAL;
        return remove_matching(w, root, rel_path);
}

int watcher_list_root(const struct watcher *w, unsigned root, const struct watch_dir ***ret, size_t *ret_n)
{
        struct watchtab_iter it = {0};
        const struct watch_dir **list = NULL;
        size_t n = 0, cap = 0;
        struct watch_dir *d;

        while (watchtab_next(w->tab, &it, &d)) {
                if (d->root != root)
                        continue;
                if (n == cap) {
                        size_t new_cap = cap ? cap * 2 : 64;
                        const struct watch_dir **l = reallocarray(list, new_cap, sizeof(*l));

                        if (!l) {
                                free(list);
                                return -ENOMEM;
                        }
                        list = l;
                        cap = new_cap;
                }
                list[n++] = d;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

size_t watcher_count(const struct watcher *w)
{
        return watchtab_n_dirs(w->tab);
}

int watcher_read(struct watcher *w, watch_event_fn *cb, void *userdata)
{
        bool overflow_seen = false;
        int n = 0, r = 0;

        /* Callbacks run while buf holds the batch being decoded. */
        if (w->reading)
                return -EBUSY;
        w->reading = true;

        for (unsigned i = 0; i < WATCHER_READS_MAX; i++) {
                ssize_t len = read(w->fd, w->buf, sizeof(w->buf));

                if (len < 0) {
                        if (errno == EINTR) {
                                i--;
                                continue;
                        }
                        if (errno != EAGAIN)
                                r = -errno;
                        break;
                }
                if (len == 0)
                        break;
                r = watchtab_dispatch(w->tab, w->buf, (size_t)len, &overflow_seen, cb, userdata);
                if (r < 0)
                        break;
                n = n > INT_MAX - r ? INT_MAX : n + r;
                r = 0;
                /* read(2) of inotify returns every queued event that fits:
                 * room for one more of the longest name left means the
                 * queue was empty, and a read to EAGAIN would be one system
                 * call more per wake-up. What came since keeps the fd
                 * readable. */
                if ((size_t)len <= sizeof(w->buf) - (sizeof(struct inotify_event) + NAME_MAX + 1))
                        break;
        }

        w->reading = false;
        return r < 0 ? r : n;
}
