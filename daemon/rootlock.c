/* One ckptd per directory tree.
 *
 * Two daemons on one root would each apply their policy (one keeps the best,
 * the other the newest: together they keep nothing) and each evict for the
 * same floor. A daemon on /a and another on /a/sub overlap just as much. So
 * each watch root takes LOCK_EX on its directory and LOCK_SH on every
 * directory above it: /a and /a/sub conflict whichever starts first (EX on
 * /a against SH on /a), siblings /a/x and /a/y share their SH locks.
 *
 * flock(2) locks belong to an open file description, so two fds of one
 * process conflict too: the directories are kept in one table per process
 * with a count of EX and SH users, and a directory that is a root of ours
 * and above another root of ours (a non-recursive outer watch) holds one
 * LOCK_EX for both. The NFS client sends flock(2) to the server's lock
 * manager for regular files only (nfs_dir_operations has no .flock): on a
 * directory the lock is this host's, and daemons on different hosts do not
 * exclude each other (ckptd.conf(5)). systemd-tmpfiles also takes LOCK_SH on
 * what it cleans and skips directories someone holds LOCK_EX on
 * (tmpfiles.d(5)). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>

#include "fsutil.h"
#include "log.h"
#include "macro.h"
#include "rootlock.h"
#include "verify.h"

/* How often a blocked lock is tried again while waiting. */
#define RETRY_USEC (100 * 1000)

struct dir_lock {
        int fd;
        dev_t dev;
        ino_t ino;
        unsigned n_ex, n_sh; /* users in this process */
        int mode;            /* LOCK_EX, LOCK_SH or 0: what fd holds */
        struct dir_lock *next;
};

static struct dir_lock *held;

static struct dir_lock *dir_find(dev_t dev, ino_t ino)
{
        for (struct dir_lock *d = held; d; d = d->next)
                if (d->dev == dev && d->ino == ino)
                        return d;
        return NULL;
}

static void dir_put(struct dir_lock *d, bool ex)
{
        if (ex)
                d->n_ex--;
        else
                d->n_sh--;
        if (d->n_ex == 0 && d->n_sh > 0 && d->mode == LOCK_EX) {
                /* a converted lock may be lost on failure (flock(2)): the
                 * other root of ours under it keeps what it can */
                if (flock(d->fd, LOCK_SH | LOCK_NB) == 0)
                        d->mode = LOCK_SH;
        }
        if (d->n_ex > 0 || d->n_sh > 0)
                return;
        for (struct dir_lock **p = &held; *p; p = &(*p)->next)
                if (*p == d) {
                        *p = d->next;
                        break;
                }
        safe_close(d->fd);
        free(d);
}

/* Who holds a flock on (dev, ino) that conflicts with the lock wanted, from
 * /proc/locks (flock_table_load()); 0 when no one else, or unknown. */
pid_t root_lock_holder(dev_t dev, ino_t ino, bool want_ex)
{
        struct flock_table t;
        pid_t found = 0;

        if (flock_table_load(&t, PROC_LOCKS) < 0)
                return 0;
        for (size_t i = 0; i < t.n && found == 0; i++) {
                const struct flock_entry *e = &t.v[i];

                /* a shared lock wanted conflicts only with an exclusive one */
                if (e->dev == dev && e->ino == ino && e->pid != getpid() && (want_ex || e->write))
                        found = e->pid;
        }
        flock_table_finish(&t);
        return found;
}

/* "1234 (ckptd)", or "an unknown process" (another pid namespace). */
static void describe_pid(pid_t pid, char *buf, size_t size)
{
        char path[64], comm[64] = "";
        FILE *f;

        if (pid <= 0) {
                snprintf(buf, size, "an unknown process");
                return;
        }
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        f = fopen(path, "re");
        if (f) {
                if (fgets(comm, sizeof(comm), f))
                        comm[strcspn(comm, "\n")] = '\0';
                fclose(f);
        }
        snprintf(buf, size, "pid %d%s%s%s", (int)pid, comm[0] ? " (" : "", comm, comm[0] ? ")" : "");
}

static bool stop_pending(void)
{
        sigset_t pending;

        if (sigpending(&pending) < 0)
                return false;
        return sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1;
}

/* Waiting for the lock on a directory, lock_wait seconds (-1: for ever). */
struct waiter {
        int64_t wait_sec;
        uint64_t start, next_note;
        bool told;
};

static struct waiter waiter_start(int64_t wait_sec)
{
        return (struct waiter){.wait_sec = wait_sec, .start = (uint64_t)now_usec(CLOCK_MONOTONIC)};
}

/* One round of waiting for dir's lock, after who holds it was said: how
 * long we wait (once), the deadline, SIGTERM, systemd kept informed, the
 * pause. 0 to try again, -EWOULDBLOCK at the deadline, -EINTR to stop. */
static int waiter_round(struct waiter *w, const char *dir, int level)
{
        uint64_t now = (uint64_t)now_usec(CLOCK_MONOTONIC);

        if (!w->told) {
                if (w->wait_sec < 0)
                        log_notice("waiting for the lock (lock_wait = -1)");
                else if (w->wait_sec > 0)
                        log_notice("waiting up to %lld s for the lock (lock_wait)", (long long)w->wait_sec);
                w->told = true;
        }
        if (w->wait_sec >= 0 && now - w->start >= (uint64_t)w->wait_sec * USEC_PER_SEC) {
                if (w->wait_sec > 0)
                        log_internal(level, 0, "%s is still locked after %lld s; giving up", dir,
                                     (long long)w->wait_sec);
                return -EWOULDBLOCK;
        }
        if (stop_pending())
                return -EINTR;
        if (now >= w->next_note) {
                /* under systemd: starting takes as long as the wait */
                sd_notifyf(false, "STATUS=waiting for the lock on %s\nEXTEND_TIMEOUT_USEC=%llu", dir,
                           (unsigned long long)(10 * USEC_PER_SEC));
                w->next_note = now + 5 * USEC_PER_SEC;
        }
        (void)nanosleep(&(struct timespec){.tv_nsec = RETRY_USEC * NSEC_PER_USEC}, NULL);
        return 0;
}

/* Take exclusive (ex) or shared on the directory `dir`, open as fd (which is
 * taken), for watch root `root`; who is in the way is logged at `level`. */
static int dir_take(int fd, const char *dir, const char *root, bool ex, int64_t wait_sec, int level,
                    struct dir_lock **ret)
{
        int want = ex ? LOCK_EX : LOCK_SH;
        struct waiter w = waiter_start(wait_sec);
        struct dir_lock *d;
        struct stat st;

        if (fstat(fd, &st) < 0) {
                int r = log_errno(-errno, "cannot lock %s for watch root %s: %m", dir, root);
                safe_close(fd);
                return r;
        }
        d = dir_find(st.st_dev, st.st_ino);
        if (d) {
                safe_close(fd);
                /* two watches of one config on one directory, under two
                 * names (a symlink): two policies on the same runs */
                if (ex && d->n_ex > 0) {
                        log_internal(level, 0, "watch %s is a directory another watch already names", root);
                        return -EEXIST;
                }
        } else {
                d = calloc(1, sizeof(*d));
                if (!d) {
                        safe_close(fd);
                        return -ENOMEM;
                }
                *d = (struct dir_lock){.fd = fd, .dev = st.st_dev, .ino = st.st_ino, .next = held};
                held = d;
        }
        if (ex)
                d->n_ex++;
        else
                d->n_sh++;

        while (d->mode != LOCK_EX && d->mode != want) {
                char who[96];
                int r;

                if (flock(d->fd, want | LOCK_NB) == 0) {
                        d->mode = want;
                        break;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EWOULDBLOCK) {
                        r = -errno;

                        /* No locks on this file system (NFS mounted nolock:
                         * ENOLCK; some FUSE: ENOSYS): watched all the same,
                         * unguarded, and said so. Any other error (EIO) may
                         * hide a holder: fail closed, as for a conflict. */
                        if (r == -ENOLCK || r == -ENOSYS || r == -EOPNOTSUPP || r == -EINVAL) {
                                log_warning_errno(r, "cannot lock %s: %m; another ckptd on %s would go unnoticed", dir,
                                                  root);
                                break;
                        }
                        dir_put(d, ex);
                        return log_errno(r, "cannot lock %s for watch root %s: %m", dir, root);
                }
                /* a failed conversion (our SH to EX) dropped our SH lock */
                if (d->mode == LOCK_SH && flock(d->fd, LOCK_SH | LOCK_NB) < 0)
                        d->mode = 0;
                if (!w.told) {
                        describe_pid(root_lock_holder(d->dev, d->ino, ex), who, sizeof(who));
                        if (ex)
                                log_internal(level, 0,
                                             "watch root %s is locked by %s: another ckptd watches it, "
                                             "a directory above it or one below it",
                                             root, who);
                        else
                                log_internal(level, 0,
                                             "%s, above watch root %s, is locked by %s: another ckptd watches it", dir,
                                             root, who);
                }
                r = waiter_round(&w, dir, level);
                if (r < 0) {
                        dir_put(d, ex);
                        return r;
                }
        }
        *ret = d;
        return 0;
}

#define MOUNTINFO "/proc/self/mountinfo"

/* MOUNTINFO, for reading: NULL with errno (ENOENT without mnt_id: a
 * kernel without STATX_MNT_ID tells no mount). */
static FILE *mountinfo_open(uint64_t mnt_id)
{
        if (!mnt_id) {
                errno = ENOENT;
                return NULL;
        }
        return fopen(MOUNTINFO, "re");
}

/* Into *ret the device of the mount mnt_id as MOUNTINFO gives it, the
 * one /proc/locks names files by (a btrfs subvolume's stat(2) device is
 * another); 0 when it is not there or the kernel tells no mount. 0, or
 * -errno when MOUNTINFO cannot be read. */
static int mount_device(uint64_t mnt_id, dev_t *ret)
{
        _cleanup_free_ char *line = NULL;
        FILE *f = mountinfo_open(mnt_id);
        size_t size = 0;

        *ret = 0;
        if (!f)
                return mnt_id ? -errno : 0;
        while (*ret == 0 && getline(&line, &size, f) > 0) {
                unsigned long long id;
                unsigned maj, min;

                if (sscanf(line, "%llu %*u %u:%u", &id, &maj, &min) == 3 && id == mnt_id)
                        *ret = makedev(maj, min);
        }
        fclose(f);
        return 0;
}

/* Whether this process is in the host's PID namespace (the kernel's
 * PROC_PID_INIT_INO), whose /proc/locks shows every holder. */
static bool initial_pid_namespace(void)
{
        struct stat st;

        return stat("/proc/self/ns/pid", &st) == 0 && st.st_ino == 0xEFFFFFFCU;
}

/* Into *ret the pid of an exclusive flock another process holds on (dev
 * or mdev, ino): -1 when /proc/locks shows no pid, 0 when none. 0, or
 * -errno when /proc/locks cannot be read. */
static int exclusive_holder(dev_t dev, dev_t mdev, ino_t ino, pid_t *ret)
{
        struct flock_table t;
        int r = flock_table_load(&t, PROC_LOCKS);

        *ret = 0;
        if (r < 0)
                return r;
        for (size_t i = 0; i < t.n && *ret == 0; i++)
                if ((t.v[i].dev == dev || t.v[i].dev == mdev) && t.v[i].ino == ino && t.v[i].write &&
                    t.v[i].pid != getpid())
                        *ret = t.v[i].pid > 0 ? t.v[i].pid : -1;
        flock_table_finish(&t);
        return 0;
}

/* A directory above a watch root that we may not open (a mode 711 home
 * of an unprivileged daemon or pass): no lock of ours there, but the one
 * another ckptd watching it holds shows in /proc/locks. 0 when none does
 * (within wait_sec, as dir_take() waits), -EWOULDBLOCK (said at level)
 * when one does, -errno when nobody can tell: never a pass unguarded
 * under another's policy. */
static int unopened_above(const char *dir, const char *root, int64_t wait_sec, int level)
{
        struct waiter w = waiter_start(wait_sec);
        uint64_t mnt_id = 0;
        struct stat st;
        char who[96];
        dev_t mdev;
        int r;

        r = stat_mnt(AT_FDCWD, dir, &st, &mnt_id);
        if (r < 0)
                return log_errno(r, "cannot look at %s, above watch root %s: %m", dir, root);
        /* /proc/locks shows only the locks of processes this PID namespace
         * sees: outside the host's (a container, PrivatePIDs=) its silence
         * says nothing */
        if (!initial_pid_namespace())
                return log_errno(-EPERM,
                                 "cannot open %s to lock it for watch root %s, and from this PID namespace %s "
                                 "does not show whether another ckptd watches it",
                                 dir, root, PROC_LOCKS);
        r = mount_device(mnt_id, &mdev);
        if (r < 0)
                return log_errno(r,
                                 "cannot open %s to lock it for watch root %s, nor read %s to see which device "
                                 "%s names it by: %m",
                                 dir, root, MOUNTINFO, PROC_LOCKS);
        for (;;) {
                pid_t pid;

                r = exclusive_holder(st.st_dev, mdev ? mdev : st.st_dev, st.st_ino, &pid);
                if (r < 0)
                        return log_errno(r,
                                         "cannot open %s to lock it for watch root %s, nor read %s to see whether "
                                         "another ckptd watches it: %m",
                                         dir, root, PROC_LOCKS);
                if (pid == 0) {
                        log_debug("cannot open %s to lock it, and no ckptd watches it: skipping", dir);
                        return 0;
                }
                if (!w.told) {
                        describe_pid(pid, who, sizeof(who));
                        /* a btrfs subvolume: /proc/locks names the file
                         * system, whose subvolumes number inodes alike */
                        if (mdev && mdev != st.st_dev)
                                log_internal(level, 0,
                                             "%s, above watch root %s, may be locked by %s (an exclusive lock on "
                                             "inode %llu of its btrfs file system, in this subvolume or another)",
                                             dir, root, who, (unsigned long long)st.st_ino);
                        else
                                log_internal(level, 0,
                                             "%s, above watch root %s, is locked by %s: another ckptd watches it", dir,
                                             root, who);
                }
                r = waiter_round(&w, dir, level);
                if (r < 0)
                        return r;
        }
}

/* Where the directory fd is, symlinks resolved: the directories above it
 * are the ones to lock, not those above a name that goes through a
 * symlink (another ckptd reaching the same runs by a path without it would
 * go unnoticed). NULL with errno when it cannot be told. */
static char *dir_real_path(int fd, const char *path)
{
        char link[64];
        struct stat a, b;
        char *p;

        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        p = realpath(link, NULL);
        if (!p)
                p = realpath(path, NULL);
        if (!p)
                return NULL;
        if (fstat(fd, &a) < 0 || stat(p, &b) < 0) {
                int e = errno;

                free(p);
                errno = e;
                return NULL;
        }
        if (a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
                free(p);
                errno = ESTALE; /* moved meanwhile */
                return NULL;
        }
        return p;
}

/* Undo mountinfo's octal escapes (" " is "\\040") in place. */
static void mountinfo_unescape(char *s)
{
        char *o = s;

        for (; *s; s++, o++) {
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
                    s[3] <= '7') {
                        *o = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                        s += 3;
                } else
                        *o = *s;
        }
        *o = '\0';
}

/* Whether path begins with the directory dir ("/a" begins "/a/b", not
 * "/ab"; "/" begins everything); its length then into *ret_len. */
static bool path_under(const char *path, const char *dir, size_t *ret_len)
{
        size_t n = strcmp(dir, "/") == 0 ? 0 : strlen(dir);

        if (strncmp(path, dir, n) != 0 || (path[n] != '/' && path[n] != '\0'))
                return false;
        *ret_len = n;
        return true;
}

/* Whether rel, below the mount point mp, leads to the directory st is
 * without leaving that mount or following a symlink: the directories on
 * the way are that file system's own, not a tmpfs or a bind mount laid
 * over them in this namespace (ProtectHome=tmpfs, PrivateTmp=). */
static bool reaches_within(const char *mp, const char *rel, const struct stat *st)
{
        _cleanup_close_ int top = open(mp, O_PATH | O_DIRECTORY | O_CLOEXEC), fd = -1;
        struct stat got;

        while (*rel == '/')
                rel++;
        if (top < 0)
                return false;
        fd = *rel ? openat_beneath(top, rel, O_PATH | O_DIRECTORY, 0) : dup(top);
        return fd >= 0 && fstat(fd, &got) == 0 && got.st_dev == st->st_dev && got.st_ino == st->st_ino;
}

/* When the watch root st, at path on the mount mnt_id, is on a bind mount
 * of a directory inside its file system (a container's volume of one run
 * directory), where the same directory is seen through another mount of
 * that file system that shows more of it: the directories above it there
 * are those another ckptd on the whole tree locks, into *ret. NULL there
 * when there is no such mount, or none that reaches it here (not a bind
 * mount of a subdirectory, or its file system is not mounted whole in
 * this namespace: a container's, a unit's ProtectHome=tmpfs). 0, or
 * -errno when MOUNTINFO cannot be read: which ckptd else holds the tree
 * is then unknown. */
static int bind_source_path(uint64_t mnt_id, const char *path, const struct stat *st, char **ret)
{
        _cleanup_free_ char *line = NULL, *root = NULL, *mp = NULL, *dev = NULL, *best = NULL;
        size_t size = 0, best_root = SIZE_MAX;
        FILE *f = mountinfo_open(mnt_id);

        *ret = NULL;
        if (!f)
                return mnt_id ? -errno : 0;
        /* ours first: its device, root in the file system, mount point */
        while (getline(&line, &size, f) > 0) {
                unsigned long long id;
                char d[32], r[4096], m[4096];

                if (sscanf(line, "%llu %*u %31s %4095s %4095s", &id, d, r, m) == 4 && id == mnt_id) {
                        mountinfo_unescape(r);
                        mountinfo_unescape(m);
                        root = strdup(r);
                        mp = strdup(m);
                        dev = strdup(d);
                        break;
                }
        }
        if (!root || !mp || !dev || strcmp(root, "/") == 0) {
                fclose(f);
                return 0;
        }
        /* another mount of the device whose root holds ours, the shortest,
         * through which it is reached */
        rewind(f);
        while (getline(&line, &size, f) > 0) {
                unsigned long long id;
                char d[32], r[4096], m[4096], *p, *rel;
                size_t rl, ml;

                if (sscanf(line, "%llu %*u %31s %4095s %4095s", &id, d, r, m) != 4 || id == mnt_id ||
                    strcmp(d, dev) != 0)
                        continue;
                mountinfo_unescape(r);
                mountinfo_unescape(m);
                if (!path_under(root, r, &rl) || strlen(r) >= best_root || !path_under(path, mp, &ml))
                        continue;
                /* what of our root lies below r, then what of path below mp */
                if (asprintf(&rel, "%s%s", root + rl, path + ml) < 0)
                        continue;
                if (!reaches_within(m, rel, st) ||
                    asprintf(&p, "%s%s", strcmp(m, "/") == 0 && *rel ? "" : m, rel) < 0) {
                        free(rel);
                        continue;
                }
                free(rel);
                free(best);
                best = p;
                best_root = strlen(r);
        }
        fclose(f);
        *ret = TAKE_PTR(best);
        return 0;
}

/* LOCK_SH on each directory above path (not on path itself), the watch
 * root `root` as found there, top down ("/", "/a", "/a/b" for /a/b/c):
 * every process takes them in the same order. */
static int lock_dirs_above(struct root_lock *l, const char *path, const char *root, int64_t wait_sec, int level)
{
        size_t len = strlen(path);
        _cleanup_free_ char *dir = malloc(len + 1);
        int fd, r = 0;

        if (!dir)
                return -ENOMEM;
        for (size_t i = 0; i < len && r == 0; i++) {
                size_t n = i == 0 ? 1 : i;

                if (path[i] != '/' || n >= len)
                        continue;
                memcpy(dir, path, n);
                dir[n] = '\0';
                fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0 && (errno == EACCES || errno == EPERM)) {
                        /* a mode 711 home: no shared lock there */
                        r = unopened_above(dir, root, wait_sec, level);
                        continue;
                }
                if (fd < 0) {
                        /* EIO, EMFILE, ENOMEM...: which ckptd else holds a
                         * tree above is unknown, so nothing is decided */
                        r = log_errno(-errno, "cannot open %s to lock it for watch root %s: %m", dir, root);
                        break;
                }
                r = dir_take(fd, dir, root, false, wait_sec, level, &l->dirs[l->n]);
                if (r == 0)
                        l->n++;
        }
        return r;
}

static size_t depth_of(const char *path)
{
        size_t depth = 1;

        for (; path && *path; path++)
                depth += *path == '/';
        return depth;
}

/* LOCK_SH on each directory above the watch root `root`, held as
 * root_fd, into a released l, room left for the root's own: those above
 * where it is (symlinks resolved), and, on a bind mount of a directory
 * inside its file system, those above the same directory where the whole
 * file system is mounted. */
static int lock_above(struct root_lock *l, int root_fd, const char *root, int64_t wait_sec, int level)
{
        _cleanup_free_ char *path = dir_real_path(root_fd, root), *src = NULL;
        struct stat st;
        uint64_t mnt_id = 0;
        int r;

        if (!path)
                return log_errno(-errno, "cannot tell which directories are above watch root %s: %m", root);
        /* a bind mount's other locks unknown: nothing decided */
        r = stat_mnt(root_fd, "", &st, &mnt_id);
        if (r < 0)
                return log_errno(r, "cannot look at watch root %s to lock it: %m", root);
        r = bind_source_path(mnt_id, path, &st, &src);
        if (r < 0)
                return log_errno(r, "cannot tell whether watch root %s is a bind mount (%s): %m", root, MOUNTINFO);
        l->dirs = calloc(depth_of(path) + depth_of(src) + 1, sizeof(*l->dirs));
        if (!l->dirs)
                return -ENOMEM;
        r = lock_dirs_above(l, path, root, wait_sec, level);
        if (r == 0 && src && strcmp(src, path) != 0)
                r = lock_dirs_above(l, src, root, wait_sec, level);
        return r;
}

int root_lock_take(struct root_lock *l, int root_fd, const char *path, int64_t wait_sec, int level)
{
        int fd, r;

        root_lock_release(l);
        if (wait_sec > (int64_t)(INT64_MAX / USEC_PER_SEC))
                wait_sec = -1; /* longer than anyone waits */
        r = lock_above(l, root_fd, path, wait_sec, level);
        if (r == 0) {
                /* flock(2) fails on an O_PATH fd (EBADF): reopen the root we
                 * hold, not its name, so the lock is on what we watch */
                fd = openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        r = log_errno(-errno, "cannot open watch root %s to lock it: %m", path);
                else
                        r = dir_take(fd, path, path, true, wait_sec, level, &l->dirs[l->n]);
                if (r == 0) {
                        l->n++;
                        l->held = true;
                }
        }
        if (r < 0)
                root_lock_release(l);
        return r;
}

bool root_lock_is_on(const struct root_lock *l, dev_t dev, ino_t ino)
{
        return l->held && l->n > 0 && l->dirs[l->n - 1]->dev == dev && l->dirs[l->n - 1]->ino == ino;
}

int root_lock_move(struct root_lock *to, struct root_lock *from, const char *path, int level)
{
        int r;

        root_lock_release(to);
        if (!from->held)
                return -EINVAL;
        r = lock_above(to, from->dirs[from->n - 1]->fd, path, 0, level);
        if (r < 0) {
                root_lock_release(to);
                return r;
        }
        /* the root's exclusive lock changes hands, never let go; then the
         * directories above the old name only */
        to->dirs[to->n++] = from->dirs[--from->n];
        to->held = true;
        from->held = false;
        root_lock_release(from);
        return 0;
}

void root_lock_release(struct root_lock *l)
{
        /* the last one is the root's own (exclusive) once l->held */
        for (size_t i = 0; i < l->n; i++)
                dir_put(l->dirs[i], l->held && i + 1 == l->n);
        free(l->dirs);
        *l = (struct root_lock){};
}
