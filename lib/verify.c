/* Verification of a victim right before its deletion (DESIGN "Safety of
 * deletion": verification is done for victims only, and never takes a lock
 * a trainer could want).
 *
 * Flock pins come from /proc/locks, which lists every lock the kernel holds
 * without anyone taking one. A probe with flock(LOCK_EX|LOCK_NB) would see
 * the same holders, but for the instant it holds the lock a trainer's own
 * flock(LOCK_NB) fails. It stays as the fallback where /proc is not mounted.
 *
 * "In use" is a write lease (fcntl(2) F_SETLEASE, F_WRLCK): the kernel
 * grants it only when no other open file description of the file exists,
 * for reading or writing (fs/locks.c check_conflicting_open()), so EAGAIN
 * means another process has it open. Leases need CAP_LEASE or the file's
 * owner, and a local filesystem: NFS and others refuse them. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "macro.h"
#include "fsutil.h"
#include "verify.h"

/* /proc/locks has a line per lock on the host: 64 MiB is a million. */
#define LOCKS_MAX (64u << 20)

/* ---- /proc/locks ---------------------------------------------------------- */

static int entry_cmp(const void *a, const void *b)
{
        const struct flock_entry *x = a, *y = b;

        if (x->dev != y->dev)
                return x->dev < y->dev ? -1 : 1;
        if (x->ino != y->ino)
                return x->ino < y->ino ? -1 : 1;
        return 0;
}

/* Past the blanks at *p, the next word and its length; *p is left after it.
 * NULL at the end of the line. */
static const char *next_word(const char **p, size_t *ret_len)
{
        const char *w = *p + strspn(*p, " \t");

        *ret_len = strcspn(w, " \t");
        *p = w + *ret_len;
        return *ret_len > 0 ? w : NULL;
}

/* One line of /proc/locks (fs/locks.c lock_get_status()):
 *   "1: FLOCK  ADVISORY  WRITE 1234 08:01:131090 0 EOF"
 * the device as "%02x:%02x" of MAJOR/MINOR of the superblock's dev, the
 * inode in decimal. A waiter's line reads "1: -> FLOCK ..." and holds
 * nothing. Read by hand, not with sscanf(): the daemon reads the table at
 * each sweep that deletes, and a busy host holds thousands of locks.
 * Returns 1 with *ret set for a FLOCK holder, else 0. */
static int parse_line(const char *line, struct flock_entry *ret)
{
        const char *p = line, *w;
        unsigned long long maj, min, ino;
        long pid;
        bool write;
        char *end;
        size_t len;

        w = next_word(&p, &len); /* "1:" */
        if (!w || w[len - 1] != ':')
                return 0;
        w = next_word(&p, &len);
        /* not a POSIX or OFD lock, a lease or a waiter */
        if (!w || len != strlen("FLOCK") || memcmp(w, "FLOCK", len) != 0)
                return 0;
        if (!next_word(&p, &len)) /* ADVISORY */
                return 0;
        w = next_word(&p, &len);
        if (!w)
                return 0;
        write = len == strlen("WRITE") && memcmp(w, "WRITE", len) == 0;
        w = next_word(&p, &len);
        if (!w)
                return 0;
        /* a pid that does not read (none in this namespace) names no one */
        errno = 0;
        pid = strtol(w, &end, 10);
        if (errno != 0 || end != w + len || pid < INT_MIN || pid > INT_MAX)
                pid = 0;
        w = next_word(&p, &len); /* MAJ:MIN:INO */
        if (!w || !isxdigit((unsigned char)w[0]))
                return 0;
        errno = 0;
        maj = strtoull(w, &end, 16);
        if (*end != ':' || !isxdigit((unsigned char)end[1]))
                return 0;
        min = strtoull(end + 1, &end, 16);
        if (*end != ':' || !isdigit((unsigned char)end[1]))
                return 0;
        ino = strtoull(end + 1, &end, 10);
        if (errno != 0 || end != w + len || maj > UINT32_MAX || min > UINT32_MAX)
                return 0;
        *ret = (struct flock_entry){
                .dev = makedev((unsigned)maj, (unsigned)min), .ino = (ino_t)ino, .pid = (pid_t)pid, .write = write};
        return 1;
}

int flock_table_load(struct flock_table *ret, const char *path)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t len = 0;
        char *line, *end;
        int r;

        *ret = (struct flock_table){};
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        r = read_fd_all(fd, &st, LOCKS_MAX, &buf, &len);
        if (r < 0)
                return r;
        for (line = buf; *line; line = end) {
                struct flock_entry e;

                end = strchrnul(line, '\n');
                if (*end)
                        *end++ = '\0';
                if (!parse_line(line, &e))
                        continue;
                if (ret->n % 64 == 0) {
                        struct flock_entry *v = realloc(ret->v, (ret->n + 64) * sizeof(*v));
                        if (!v) {
                                flock_table_finish(ret);
                                return -ENOMEM;
                        }
                        ret->v = v;
                }
                ret->v[ret->n++] = e;
        }
        if (ret->n > 1)
                qsort(ret->v, ret->n, sizeof(*ret->v), entry_cmp);
        return 0;
}

bool flock_table_has(const struct flock_table *t, dev_t dev, ino_t ino)
{
        struct flock_entry key = {.dev = dev, .ino = ino};

        if (!t || t->n == 0)
                return false;
        return bsearch(&key, t->v, t->n, sizeof(*t->v), entry_cmp) != NULL;
}

void flock_table_finish(struct flock_table *t)
{
        free(t->v);
        *t = (struct flock_table){};
}

/* We try LOCK_EX because it conflicts with both LOCK_SH and LOCK_EX holders,
 * which is how systemd-tmpfiles(8) detects a locked directory; flock(2)
 * locks belong to the open file description, so our own fresh open never
 * conflicts with itself. The lock is dropped at once. */
int verify_flock_probe(int fd)
{
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
                (void)flock(fd, LOCK_UN);
                return 0;
        }
        if (errno == EWOULDBLOCK)
                return 1;
        /* NFS emulates flock(2) with fcntl(2) locks, and LOCK_EX then needs
         * a writable fd (EBADF). LOCK_SH still sees exclusive holders. */
        if (errno == EBADF) {
                if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
                        (void)flock(fd, LOCK_UN);
                        return 0;
                }
                if (errno == EWOULDBLOCK)
                        return 1;
        }
        /* A filesystem without BSD locks: nobody can hold one there either. */
        if (errno == EOPNOTSUPP || errno == ENOSYS)
                return 0;
        return errno > 0 ? -errno : -EIO; /* ENOLCK, EINTR, ...: unknown */
}

/* ---- leases --------------------------------------------------------------- */

/* F_SETLEASE makes us the owner of the file for SIGIO (fs/locks.c
 * do_fcntl_add_lease()), and SIGIO's default action ends the process: an
 * open by someone else while we hold the lease must not kill us. */
static void sigio_ignore(void)
{
        static bool done;
        struct sigaction sa;

        if (done)
                return;
        done = true;
        if (sigaction(SIGIO, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
                sa.sa_handler = SIG_IGN;
                (void)sigaction(SIGIO, &sa, NULL);
        }
}

int verify_lease_take(int fd)
{
        sigio_ignore();
        if (fcntl(fd, F_SETLEASE, F_WRLCK) == 0)
                return 0;
        /* EAGAIN: another open file description exists (or the file is
         * mapped or executed for writing); EWOULDBLOCK is the same value. */
        return -errno;
}

void verify_lease_drop(int fd)
{
        (void)fcntl(fd, F_SETLEASE, F_UNLCK);
}

bool verify_lease_unsupported(int error)
{
        /* EACCES: neither the owner nor CAP_LEASE (fs/locks.c
         * generic_setlease()); EINVAL: no lease support (NFS, fs.leases-enable
         * = 0, a filesystem's own ->setlease refusing); ENOLCK, ENOSYS,
         * EOPNOTSUPP: likewise. */
        return error == -EACCES || error == -EPERM || error == -EINVAL || error == -ENOLCK || error == -ENOSYS ||
               error == -EOPNOTSUPP;
}

/* The devices on which leases were refused, in the order first seen;
 * those before n_lease_refusals_said were handed out to be said. Past
 * LEASE_REFUSALS_MAX devices the rest go unsaid. */
#define LEASE_REFUSALS_MAX 16
struct lease_refusal {
        dev_t dev;
        int error;
};
static struct lease_refusal lease_refusals[LEASE_REFUSALS_MAX];
static size_t n_lease_refusals, n_lease_refusals_said;

bool verify_lease_fallback(int error, dev_t dev)
{
        if (!verify_lease_unsupported(error))
                return false;
        for (size_t i = 0; i < n_lease_refusals; i++)
                if (lease_refusals[i].dev == dev)
                        return true;
        if (n_lease_refusals < LEASE_REFUSALS_MAX)
                lease_refusals[n_lease_refusals++] = (struct lease_refusal){.dev = dev, .error = error};
        return true;
}

bool verify_lease_refusal_unsaid(dev_t *ret_dev, int *ret_error)
{
        if (n_lease_refusals_said == n_lease_refusals)
                return false;
        *ret_dev = lease_refusals[n_lease_refusals_said].dev;
        *ret_error = lease_refusals[n_lease_refusals_said].error;
        n_lease_refusals_said++;
        return true;
}

/* File name of dir_fd opened read-only to be asked, its stat into *st,
 * when it is still the regular file (dev, ino) of expect: the fd,
 * -EWOULDBLOCK (another's lease makes the open wait: in use), -ESTALE gone
 * or replaced, or -errno. */
static int open_expected(int dir_fd, const char *name, const struct stat *expect, struct stat *st)
{
        /* O_NONBLOCK: a FIFO swapped in, or someone else's lease, never
         * makes us wait */
        _cleanup_close_ int fd = openat_beneath(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0);

        if (fd == -EWOULDBLOCK)
                return fd;
        if (fd < 0)
                return open_error_gone_or_replaced(fd) || fd == -ELOOP ? -ESTALE : fd;
        if (fstat(fd, st) < 0)
                return -errno;
        if (!S_ISREG(st->st_mode) || st->st_dev != expect->st_dev || st->st_ino != expect->st_ino)
                return -ESTALE;
        return TAKE_FD(fd);
}

/* The verdict on a file whose stat is *st, from r, the answer to the
 * lease asked on it: a write lease for a victim, a read lease when only
 * writers count (writer). Refused (-EAGAIN): in use. Granted to a writer's
 * question: free. Else, granted or where leases cannot be taken, a file
 * written since the scan (after newest_usec) is not what was decided:
 * changed, with a lease as without. */
static int lease_verdict(int r, bool writer, const struct stat *st, int64_t newest_usec)
{
        if (r == 0 && writer)
                return VERIFY_FREE;
        if (r == -EAGAIN)
                return VERIFY_IN_USE;
        if (r < 0 && !verify_lease_fallback(r, st->st_dev))
                return r;
        return stat_mtime_usec(st) > newest_usec ? VERIFY_CHANGED : VERIFY_FREE;
}

int verify_file(int dir_fd, const char *name, const struct stat *expect, int64_t newest_usec)
{
        struct stat st;
        _cleanup_close_ int fd = open_expected(dir_fd, name, expect, &st);

        if (fd == -EWOULDBLOCK)
                return VERIFY_IN_USE;
        if (fd < 0)
                return fd;
        /* the lease goes with the close of fd, our only reference to its
         * file description (fs/locks.c locks_remove_file()): no F_UNLCK */
        return lease_verdict(verify_lease_take(fd), false, &st, newest_usec);
}

/* A read lease on fd: refused (-EAGAIN) while any process has the file
 * open for writing, and only then: readers do not count. 0 (it goes with
 * the close of fd) or -errno. */
static int lease_read(int fd)
{
        sigio_ignore();
        return fcntl(fd, F_SETLEASE, F_RDLCK) == 0 ? 0 : -errno;
}

int verify_fd_writer(int fd)
{
        int r = lease_read(fd);

        return r == -EAGAIN ? 1 : r;
}

int verify_fd_lease_kept(int fd)
{
        /* a break under way reads as its target, F_UNLCK (fs/locks.c
         * fcntl_getlease()), and so does a lease it removed */
        int type = fcntl(fd, F_GETLEASE);

        return type < 0 ? -errno : type == F_RDLCK;
}

int verify_file_writer(int dir_fd, const char *name, const struct stat *expect, int64_t newest_usec)
{
        struct stat st;
        _cleanup_close_ int fd = open_expected(dir_fd, name, expect, &st);

        if (fd == -EWOULDBLOCK)
                return VERIFY_IN_USE; /* a lease of another: a writer, maybe */
        if (fd == -EACCES || fd == -EPERM) {
                /* not ours to open (another user's 0600 file, mode 000):
                 * as without leases, only a write since the scan tells */
                if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return errno == ENOENT ? -ESTALE : -errno;
                if (!S_ISREG(st.st_mode) || st.st_dev != expect->st_dev || st.st_ino != expect->st_ino)
                        return -ESTALE;
                (void)verify_lease_fallback(fd, st.st_dev);
                return stat_mtime_usec(&st) > newest_usec ? VERIFY_CHANGED : VERIFY_FREE;
        }
        if (fd < 0)
                return fd;
        /* where leases cannot be taken, nothing tells a writer: one that
         * wrote since the scan does */
        return lease_verdict(lease_read(fd), true, &st, newest_usec);
}

int verify_file_alone(int dir_fd, const char *name, const struct stat *expect)
{
        struct stat st;
        _cleanup_close_ int fd = open_expected(dir_fd, name, expect, &st);
        int r;

        if (fd == -EWOULDBLOCK)
                return VERIFY_IN_USE;
        if (fd < 0)
                return fd;
        /* a write through its other name raises events there */
        if (st.st_nlink != 1)
                return -EMLINK;
        r = lease_read(fd);
        return r == -EAGAIN ? VERIFY_IN_USE : r < 0 ? r : VERIFY_FREE;
}

/* ---- directory checkpoints ------------------------------------------------ */

/* What a walk asks of each file (verify_tree(), verify_tree_writer()). */
struct vask {
        const struct flock_table *locks; /* may be NULL */
        int64_t since_usec;              /* files older than this are not opened */
        int64_t newest_usec;             /* without leases, a newer mtime is a change */
        bool writer;                     /* only writers count (a read lease) */
};

/* The lease that tells whether a file is in use as a asks, taken on fd: 0
 * (dropped by the close of fd), or -errno (-EAGAIN: in use). */
static int vask_lease(const struct vask *a, int fd)
{
        return a->writer ? lease_read(fd) : verify_lease_take(fd);
}

struct vframe {
        char **subdirs; /* names still to visit */
        size_t n, i;
        dev_t dev;
        ino_t ino;
};

static void vframe_finish(struct vframe *f)
{
        for (size_t k = 0; k < f->n; k++)
                free(f->subdirs[k]);
        free(f->subdirs);
        *f = (struct vframe){};
}

/* The fast path of vframe_read() for an entry the directory lists as a
 * regular file (d_type DT_REG): open it first and fstat(2) the open file,
 * one stat instead of fstatat(2) and then verify_file()'s fstat(2). Sets
 * *ret_recent to whether its mtime is at or after since_usec. Returns an
 * enum verify_verdict, -ENOENT when it vanished, or VFILE_SLOW when the
 * entry is anything else than a regular file opened on dev as it stands:
 * then vframe_read() checks it the usual way, which tells each case apart. */
#define VFILE_SLOW _VERIFY_VERDICT_MAX
static int vframe_file(int dir_fd, const char *name, dev_t dev, const struct vask *a, bool *ret_recent)
{
        _cleanup_close_ int fd = -1;
        struct stat st;

        fd = openat_beneath(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, 0);
        if (fd == -ENOENT)
                return -ENOENT;
        if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_dev != dev)
                return VFILE_SLOW;
        if (flock_table_has(a->locks, st.st_dev, st.st_ino))
                return VERIFY_FLOCK;
        *ret_recent = stat_mtime_usec(&st) >= a->since_usec;
        if (!*ret_recent)
                return VERIFY_FREE;
        /* dropped by the close of fd, as in verify_file() */
        return lease_verdict(vask_lease(a, fd), a->writer, &st, a->newest_usec);
}

/* Read the directory at fd once: check every entry, remember its
 * subdirectories in f. Returns an enum verify_verdict or -errno. */
static int vframe_read(int fd, struct vframe *f, const struct vask *a)
{
        char buf[16384];
        struct stat self;
        uint64_t self_mnt;
        /* The files of one save have near mtimes: while the last regular
         * file was recent (and so opened anyway), open the next one first
         * (vframe_file()); after an old one, a stat first, which for an
         * old file is all it takes. */
        bool open_first = true;
        int q = stat_mnt(fd, "", &self, &self_mnt);

        if (q < 0)
                return q;
        f->dev = self.st_dev;
        f->ino = self.st_ino;
        for (;;) {
                ssize_t k = getdents64(fd, buf, sizeof(buf));

                if (k < 0)
                        return -errno;
                if (k == 0)
                        return VERIFY_FREE;
                for (ssize_t off = 0; off < k;) {
                        struct dirent64 *de = (struct dirent64 *)(buf + off);
                        const char *name = de->d_name;
                        struct stat st;
                        uint64_t mnt;
                        int r;

                        off += de->d_reclen;
                        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                                continue;
                        if (de->d_type == DT_REG && open_first) {
                                r = vframe_file(fd, name, self.st_dev, a, &open_first);
                                if (r == -ENOENT)
                                        continue;
                                if (r != VFILE_SLOW && r != VERIFY_FREE)
                                        return r;
                                if (r == VERIFY_FREE)
                                        continue;
                        }
                        r = stat_mnt(fd, name, &st, &mnt);
                        if (r == -ENOENT)
                                continue;
                        if (r < 0)
                                return r;
                        if (flock_table_has(a->locks, st.st_dev, st.st_ino))
                                return VERIFY_FLOCK;
                        /* A mount point (another mount id: st_dev would
                         * not do, overlayfs gives files the device of their
                         * layer; a bind mount of a file or a directory of
                         * this filesystem too): asked of writers, not ours
                         * to remove; asked of a victim, never removed whole. */
                        if (mnt && self_mnt && mnt != self_mnt) {
                                if (a->writer)
                                        continue;
                                return -EXDEV;
                        }
                        if (S_ISDIR(st.st_mode)) {
                                char **v = realloc(f->subdirs, (f->n + 1) * sizeof(*v));
                                if (!v)
                                        return -ENOMEM;
                                f->subdirs = v;
                                if (!(v[f->n] = strdup(name)))
                                        return -ENOMEM;
                                f->n++;
                        } else if (S_ISREG(st.st_mode) && stat_mtime_usec(&st) >= a->since_usec) {
                                open_first = true;
                                r = a->writer ? verify_file_writer(fd, name, &st, a->newest_usec)
                                              : verify_file(fd, name, &st, a->newest_usec);
                                if (r == -ESTALE) {
                                        /* replaced meanwhile: the file there now is checked as
                                         * it opens; anything else is a change under the check */
                                        bool recent;

                                        r = vframe_file(fd, name, self.st_dev, a, &recent);
                                        if (r == -ENOENT)
                                                continue;
                                        if (r == VFILE_SLOW)
                                                return VERIFY_CHANGED;
                                }
                                if (r != VERIFY_FREE)
                                        return r;
                        }
                }
        }
}

static int vtree(int dir_fd, const struct vask *a)
{
        struct vframe *stack = NULL;
        size_t n = 0, cap = 0;
        int fd, r;

        fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (;;) {
                struct vframe *top;

                if (n == cap) {
                        struct vframe *s = realloc(stack, (cap ? cap * 2 : 16) * sizeof(*s));
                        if (!s) {
                                r = -ENOMEM;
                                goto out;
                        }
                        stack = s;
                        cap = cap ? cap * 2 : 16;
                }
                top = &stack[n++];
                *top = (struct vframe){};
                r = vframe_read(fd, top, a);
                if (r != VERIFY_FREE)
                        goto out;
                /* one directory open at a time: down by name, back up by
                 * "..", checked to be the directory we left */
                for (;;) {
                        top = &stack[n - 1];
                        if (top->i < top->n) {
                                int child = openat_beneath(fd, top->subdirs[top->i++],
                                                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW, 0);
                                if (child < 0) {
                                        /* a mount point (a bind mount of this
                                         * filesystem), asked of a victim:
                                         * never removed whole */
                                        if (child == -EXDEV && !a->writer) {
                                                r = child;
                                                goto out;
                                        }
                                        if (open_error_gone_or_replaced(child) || child == -ELOOP)
                                                continue;
                                        /* asked of writers, a directory not ours to
                                         * enter says nothing: nor could we remove it */
                                        if (a->writer && (child == -EACCES || child == -EPERM))
                                                continue;
                                        r = child;
                                        goto out;
                                }
                                close(fd);
                                fd = child;
                                break;
                        }
                        if (n == 1) {
                                r = VERIFY_FREE;
                                goto out;
                        }
                        struct stat st;
                        int parent = openat(fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (parent < 0) {
                                r = -errno;
                                goto out;
                        }
                        close(fd);
                        fd = parent;
                        vframe_finish(top);
                        n--;
                        if (fstat(fd, &st) < 0) {
                                r = -errno;
                                goto out;
                        }
                        if (st.st_dev != stack[n - 1].dev || st.st_ino != stack[n - 1].ino) {
                                r = -ESTALE;
                                goto out;
                        }
                }
        }
out:
        while (n > 0)
                vframe_finish(&stack[--n]);
        free(stack);
        safe_close(fd);
        return r;
}

int verify_tree(int dir_fd, const struct flock_table *locks, int64_t since_usec, int64_t newest_usec)
{
        return vtree(dir_fd, &(struct vask){.locks = locks, .since_usec = since_usec, .newest_usec = newest_usec});
}

int verify_tree_writer(int dir_fd, int64_t newest_usec)
{
        /* every file, however old its mtime: a save written in place can
         * set it back (os.utime, a copy with its times) and go on */
        return vtree(dir_fd, &(struct vask){.since_usec = INT64_MIN, .newest_usec = newest_usec, .writer = true});
}
