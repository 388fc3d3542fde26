/* Safe deletion (DESIGN "Safety of deletion").
 *
 * remove_ckpt works in three phases so that a checkpoint is either fully
 * condemned or left exactly as it was:
 *   1. check: every member is re-opened beneath the run fd and must still be
 *      what the scan saw (no symlink, members[0]'s (dev, ino), all on c->dev,
 *      the right type). Any mismatch: -ESTALE, nothing touched.
 *   2. tombstone: every member is renamed with RENAME_NOREPLACE to a
 *      ".ckptd-trash-" name and the renamed entry is checked again. A swap
 *      between 1 and the rename puts a foreign object under the tombstone
 *      name; it is renamed back and every member already renamed is restored.
 *   3. remove: files are unlinked, directories emptied iteratively.
 * After phase 2 the checkpoint's names are gone, so a trainer's resume logic
 * never picks a half-deleted checkpoint, and an interruption leaves only
 * tombstones, which remove_tombstones finishes at start-up.
 *
 * Nothing here follows a symlink: opens go through openat_beneath
 * (RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV, openat2(2)), and
 * renameat2(2), unlinkat(2) and fstatat(AT_SYMLINK_NOFOLLOW) act on the last
 * component itself. Names passed to them are single components, so no
 * intermediate component is ever resolved either.
 *
 * Tombstone names are reserved for ckptd. What remains unguarded is a process
 * that writes to those names while we work on them: between the check of a
 * tombstone and its unlinkat(2) (Linux cannot unlink by fd), and inside a
 * tombstoned tree, whose whole content is condemned. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "remove.h"
#include "scan.h"

void (*remove_test_hook)(const char *stage, const char *name);

/* The tree walk keeps at most TREE_OPEN_MAX directories open (each a DIR with
 * its fd). Deeper frames close the lowest open one; on the way back up a
 * closed frame is re-opened together with up to TREE_REOPEN of its
 * ancestors, so a long chain costs one re-open per TREE_REOPEN levels. */
#define TREE_OPEN_MAX 64
#define TREE_REOPEN   32
/* Re-reads of one directory: one to catch entries readdir(3) skipped while
 * we deleted (POSIX leaves that unspecified; NFS cookies do skip), a few
 * more for entries created meanwhile. After that the directory is left. */
#define TREE_PASSES_MAX 8
/* ".N" suffixes tried when a tombstone name is taken. */
#define TOMB_ATTEMPTS 100
#define STALE_PREFIX  ".ckptd-stale-"

static void hook(const char *stage, const char *name)
{
        if (remove_test_hook)
                remove_test_hook(stage, name);
}

static int open_beneath(int dir_fd, const char *path, int flags)
{
        int fd = openat_beneath(dir_fd, path, flags | O_CLOEXEC, 0);

        /* scan.c returns -errno; accept a libc-style -1 too. */
        if (fd == -1)
                return errno > 0 ? -errno : -EPERM;
        return fd;
}

static bool same_inode(const struct stat *a, const struct stat *b)
{
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* A single directory entry name: no "/", not "." or "..", so *at() calls
 * resolve nothing but the entry itself. */
static bool name_is_entry(const char *name)
{
        return name && name[0] != '\0' && !strchr(name, '/') && strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
               strlen(name) <= NAME_MAX;
}

static uint64_t freed_bytes(const struct stat *st)
{
        /* st_blocks is in 512-byte units whatever st_blksize is (stat(2)). */
        return st->st_blocks > 0 ? (uint64_t)st->st_blocks * 512 : 0;
}

/* prefix + name (+ ".N"), or prefix + <ino in hex> (+ ".N") when that would
 * exceed NAME_MAX. buf holds NAME_MAX + 1 bytes. */
static int make_name(char *buf, size_t size, const char *prefix, const char *name, ino_t ino, unsigned attempt)
{
        char suffix[16] = "";
        int n;

        if (attempt > 0)
                snprintf(suffix, sizeof(suffix), ".%u", attempt);
        n = snprintf(buf, size, "%s%s%s", prefix, name, suffix);
        if (n >= 0 && (size_t)n < size && n <= NAME_MAX)
                return 0;
        n = snprintf(buf, size, "%s%jx%s", prefix, (uintmax_t)ino, suffix);
        if (n < 0 || (size_t)n >= size || n > NAME_MAX)
                return -ENAMETOOLONG;
        return 0;
}

/* renameat2(2) RENAME_NOREPLACE: atomic "fail with EEXIST if `to` exists".
 * Filesystems without it (NFS, Ceph, FUSE servers before protocol 7.23)
 * return EINVAL; there we check that `to` is absent and use renameat(2). In
 * the window between the two a `to` created by someone else would be
 * replaced: for tombstone names that is only ckptd, for a restore it is the
 * rare case of a name re-created in the same instant (see restore()). */
static int rename_noreplace(int dir_fd, const char *from, const char *to)
{
        struct stat st;

        if (renameat2(dir_fd, from, dir_fd, to, RENAME_NOREPLACE) >= 0)
                return 0;
        if (errno != EINVAL)
                return -errno;
        if (fstatat(dir_fd, to, &st, AT_SYMLINK_NOFOLLOW) >= 0)
                return -EEXIST;
        if (errno != ENOENT)
                return -errno;
        if (renameat(dir_fd, from, dir_fd, to) < 0)
                return -errno;
        return 0;
}

/* Rename `from` to prefix+name(.N), trying further suffixes while taken. */
static int rename_to_free_name(int dir_fd, const char *from, const char *prefix, const char *name, ino_t ino,
                               char *ret_to, size_t size)
{
        int r = -EEXIST;

        for (unsigned attempt = 0; attempt < TOMB_ATTEMPTS && r == -EEXIST; attempt++) {
                r = make_name(ret_to, size, prefix, name, ino, attempt);
                if (r < 0)
                        return r;
                r = rename_noreplace(dir_fd, from, ret_to);
        }
        return r;
}

/* Give `tomb` its name back. When `name` was taken meanwhile, something of
 * ours (foreign == false, verified and condemned) may stay a tombstone for
 * remove_tombstones to finish; an unverified object (foreign == true) must
 * not, so it goes to a ".ckptd-stale-" name that nothing ever deletes. */
static int restore(int dir_fd, const char *tomb, const char *name, ino_t ino, bool foreign)
{
        char stale[NAME_MAX + 1];
        int r;

        r = rename_noreplace(dir_fd, tomb, name);
        if (r != -EEXIST || !foreign)
                return r;
        return rename_to_free_name(dir_fd, tomb, STALE_PREFIX, name, ino, stale, sizeof(stale));
}

/* ---- The iterative tree walk ---------------------------------------------- */

struct frame {
        DIR *dir;   /* NULL while closed to save fds; see TREE_OPEN_MAX */
        char *name; /* entry name in the parent frame (or base_fd) */
        dev_t dev;  /* identity, checked whenever the frame is re-opened */
        ino_t ino;
        uint64_t bytes; /* the directory's own blocks, freed by its rmdir */
        unsigned passes;
        size_t progress; /* entries removed in this pass */
        bool incomplete; /* something below is left in place (error recorded) */
        char **kept;     /* entries left in place; skipped on re-reads */
        size_t n_kept;
};

struct tree {
        int base_fd;     /* the caller's directory, parent of f[0] */
        struct frame *f; /* f[n - 1] is the directory being emptied */
        size_t n, cap;
        size_t lo; /* f[lo .. n-1] are open, f[0 .. lo-1] closed */
        uint64_t freed;
        int error; /* first error; the walk goes on after most */
};

static void record(struct tree *t, int r)
{
        if (t->error == 0)
                t->error = r;
}

static void frame_close(struct frame *f)
{
        if (f->dir)
                closedir(f->dir);
        f->dir = NULL;
}

static void frame_free(struct frame *f)
{
        frame_close(f);
        for (size_t i = 0; i < f->n_kept; i++)
                free(f->kept[i]);
        free(f->kept);
        free(f->name);
        memset(f, 0, sizeof(*f));
}

/* Leave entry `name` of f in place and remember why. Only ENOMEM is fatal. */
static int frame_keep(struct tree *t, struct frame *f, const char *name, int r)
{
        char **k;

        if (r < 0)
                record(t, r);
        f->incomplete = true;
        k = realloc(f->kept, (f->n_kept + 1) * sizeof(*k));
        if (!k)
                return -ENOMEM;
        f->kept = k;
        k[f->n_kept] = strdup(name);
        if (!k[f->n_kept])
                return -ENOMEM;
        f->n_kept++;
        return 0;
}

static bool frame_is_kept(const struct frame *f, const char *name)
{
        for (size_t i = 0; i < f->n_kept; i++)
                if (strcmp(f->kept[i], name) == 0)
                        return true;
        return false;
}

/* Open `path` below parent_fd as frame f. With verify, it must be the
 * directory f already describes (a re-open); otherwise f takes its identity,
 * or that of `expect` when given. */
static int frame_open(struct frame *f, int parent_fd, const char *path, bool verify, const struct stat *expect)
{
        struct stat st;
        int fd;

        fd = open_beneath(parent_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (fd < 0)
                return fd;
        if (fstat(fd, &st) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        if ((verify && (st.st_dev != f->dev || st.st_ino != f->ino)) || (expect && !same_inode(&st, expect))) {
                close(fd);
                return -ESTALE;
        }
        f->dir = fdopendir(fd);
        if (!f->dir) {
                int r = -errno;

                close(fd);
                return r;
        }
        f->dev = st.st_dev;
        f->ino = st.st_ino;
        f->bytes = freed_bytes(&st);
        return 0;
}

static int frame_fd(const struct tree *t, size_t i)
{
        return i == 0 ? t->base_fd : dirfd(t->f[i - 1].dir);
}

/* Re-open the closed top frame and up to TREE_REOPEN - 1 of its ancestors.
 * Everything below them is closed too, so the lowest is reached from base_fd
 * by a relative path of the frames' names; a tree deeper than PATH_MAX bytes
 * is walked in PATH_MAX chunks. Each chunk is one openat2(2) under the same
 * RESOLVE_* rules, and the directory at the end of each chunk and every
 * re-opened frame must have the (dev, ino) recorded when it was first opened,
 * so a directory moved or swapped meanwhile is never entered. */
static int tree_reopen(struct tree *t)
{
        size_t top = t->n - 1, from = t->n > TREE_REOPEN ? t->n - TREE_REOPEN : 0;
        char path[PATH_MAX];
        int cur = t->base_fd, r = 0;
        size_t i = 0;

        while (i < from) {
                size_t len = 0;
                struct stat st;
                int fd;

                for (; i < from; i++) {
                        size_t l = strlen(t->f[i].name);

                        if (len + (len > 0) + l >= sizeof(path))
                                break;
                        if (len > 0)
                                path[len++] = '/';
                        memcpy(path + len, t->f[i].name, l);
                        len += l;
                }
                path[len] = '\0';
                fd = open_beneath(cur, path, O_PATH | O_DIRECTORY | O_NOFOLLOW);
                if (cur != t->base_fd)
                        close(cur);
                if (fd < 0)
                        return fd;
                cur = fd;
                if (fstat(cur, &st) < 0)
                        r = -errno;
                else if (st.st_dev != t->f[i - 1].dev || st.st_ino != t->f[i - 1].ino)
                        r = -ESTALE;
                if (r < 0)
                        goto out;
        }
        for (i = from; i <= top; i++) {
                r = frame_open(&t->f[i], i == from ? cur : dirfd(t->f[i - 1].dir), t->f[i].name, true, NULL);
                if (r < 0)
                        break;
        }
        if (r < 0)
                while (i-- > from)
                        frame_close(&t->f[i]);
        else
                t->lo = from;
out:
        if (cur != t->base_fd)
                close(cur);
        return r;
}

/* Enter directory `name` of the top frame. */
static int tree_push(struct tree *t, const char *name, const struct stat *expect)
{
        struct frame *f;
        int r;

        if (t->n == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 64;
                struct frame *nf = realloc(t->f, cap * sizeof(*nf));

                if (!nf)
                        return -ENOMEM;
                t->f = nf;
                t->cap = cap;
        }
        /* Keep the number of open directories bounded (the parent, top, stays
         * open: TREE_OPEN_MAX >= 2). */
        if (t->n - t->lo >= TREE_OPEN_MAX)
                frame_close(&t->f[t->lo++]);

        f = &t->f[t->n];
        *f = (struct frame){};
        f->name = strdup(name);
        if (!f->name)
                return -ENOMEM;
        r = frame_open(f, frame_fd(t, t->n), name, false, expect);
        if (r < 0) {
                frame_free(f);
                return r;
        }
        t->n++;
        return 0;
}

/* The top frame is empty (or done): close it and rmdir it from its parent. */
static int tree_pop(struct tree *t)
{
        struct frame *f = &t->f[t->n - 1], *parent;
        bool incomplete = f->incomplete;
        uint64_t bytes = f->bytes;
        _cleanup_free_ char *name = TAKE_PTR(f->name);
        int r;

        frame_free(f);
        t->n--;
        if (t->lo > t->n)
                t->lo = t->n;
        if (t->n == 0) {
                if (unlinkat(t->base_fd, name, AT_REMOVEDIR) >= 0)
                        t->freed += bytes;
                else if (!(incomplete && errno == ENOTEMPTY))
                        record(t, -errno);
                return 0;
        }
        parent = &t->f[t->n - 1];
        if (!parent->dir) {
                r = tree_reopen(t);
                if (r < 0)
                        return r;
        }
        /* unlinkat(2) AT_REMOVEDIR only removes an empty directory, so even if
         * the name was swapped since we emptied it, nothing else is lost. */
        if (unlinkat(dirfd(parent->dir), name, AT_REMOVEDIR) >= 0) {
                t->freed += bytes;
                parent->progress++;
                return 0;
        }
        if (errno == ENOENT)
                return 0;
        r = -errno;
        return frame_keep(t, parent, name, incomplete && r == -ENOTEMPTY ? 0 : r);
}

/* Unlink non-directory `name` of the top frame; st is its fstatat. */
static int entry_unlink(struct tree *t, const char *name, const struct stat *st)
{
        struct frame *f = &t->f[t->n - 1];

        /* unlinkat(2) without AT_REMOVEDIR removes a symlink itself, never
         * its target; a file with several links loses only this link and
         * releases nothing, so it is not counted. */
        if (unlinkat(dirfd(f->dir), name, 0) < 0)
                return errno == ENOENT ? 0 : -errno;
        f->progress++;
        if (!S_ISDIR(st->st_mode) && st->st_nlink == 1)
                t->freed += freed_bytes(st);
        return 0;
}

/* One entry of the top frame: unlink it, or push it when it is a directory.
 * An entry swapped between a directory and a non-directory under us gets a
 * second try as the other kind. Only ENOMEM and failures to re-open a frame
 * are fatal; anything else leaves the entry in place. */
static int tree_entry(struct tree *t, const char *name)
{
        struct frame *f = &t->f[t->n - 1];
        struct stat st;
        bool is_dir;
        int r = 0;

        /* fstatat(2) on a mount point reports the mounted root, a directory:
         * the push then fails with EXDEV (RESOLVE_NO_XDEV), as it should. */
        if (fstatat(dirfd(f->dir), name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : frame_keep(t, f, name, -errno);
        is_dir = S_ISDIR(st.st_mode);
        for (int attempt = 0; attempt < 2; attempt++) {
                r = is_dir ? tree_push(t, name, NULL) : entry_unlink(t, name, &st);
                if (r >= 0 || r == -ENOENT)
                        return 0;
                if (r == -ENOMEM)
                        return r;
                /* unlinkat(2) on a directory is EISDIR; openat2(2) on a
                 * symlink with RESOLVE_NO_SYMLINKS is ELOOP, on a file ENOTDIR. */
                if (is_dir ? r != -ENOTDIR && r != -ELOOP : r != -EISDIR)
                        break;
                is_dir = !is_dir;
                memset(&st, 0, sizeof(st));
        }
        /* EXDEV: a mount point. Leave it, and so its ancestors, in place. */
        return frame_keep(t, &t->f[t->n - 1], name, r);
}

/* Empty and remove directory `name` below dir_fd. Rather than recursion, an
 * explicit stack of frames on the heap; open fds are bounded by
 * TREE_OPEN_MAX whatever the depth (see tree_reopen). Errors other than
 * ENOMEM leave that entry and its ancestors in place and the walk goes on;
 * the first one is returned. *freed (may be NULL) grows by the bytes of
 * removed directories and of removed files that had no other link. */
static int tree_remove(int dir_fd, const char *name, const struct stat *expect, uint64_t *freed)
{
        struct tree t = {.base_fd = dir_fd};
        int r;

        r = tree_push(&t, name, expect);
        if (r < 0) {
                free(t.f);
                return r;
        }
        while (t.n > 0) {
                struct frame *f = &t.f[t.n - 1];
                struct dirent *de;

                errno = 0;
                de = readdir(f->dir);
                if (!de && errno != 0) {
                        f->incomplete = true;
                        record(&t, -errno);
                } else if (!de && f->progress > 0 && f->passes < TREE_PASSES_MAX) {
                        rewinddir(f->dir);
                        f->passes++;
                        f->progress = 0;
                        continue;
                }
                if (!de)
                        r = tree_pop(&t);
                else if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || frame_is_kept(f, de->d_name))
                        continue;
                else
                        r = tree_entry(&t, de->d_name);
                if (r < 0)
                        break;
        }
        while (t.n > 0)
                frame_free(&t.f[--t.n]);
        free(t.f);
        if (freed)
                *freed += t.freed;
        return r < 0 ? r : t.error;
}

int remove_tree_at(int dir_fd, const char *name)
{
        if (!name_is_entry(name))
                return -EINVAL;
        return tree_remove(dir_fd, name, NULL, NULL);
}

/* ---- Checkpoints ------------------------------------------------------------ */

struct member {
        struct stat st;      /* as checked in phase 1 */
        struct stat tomb_st; /* the tombstone, checked in phase 2 */
        char tomb[NAME_MAX + 1];
};

/* Phase 1: the member must still be what the scan saw. */
static int member_check(int run_fd, const struct ckpt *c, size_t i, struct member *m)
{
        const char *name = c->members[i];
        _cleanup_close_ int fd = -1;
        struct stat lst;

        if (!name_is_entry(name))
                return -EINVAL;
        if (fstatat(run_fd, name, &lst, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (S_ISLNK(lst.st_mode))
                return -ESTALE;
        /* openat2(2): with O_PATH|O_NOFOLLOW a trailing symlink is opened
         * itself, not refused, hence the S_ISLNK test below. A member that is
         * a mount point fails here with EXDEV. */
        fd = open_beneath(run_fd, name, O_PATH | O_NOFOLLOW);
        if (fd < 0)
                return fd == -ELOOP ? -ESTALE : fd;
        if (fstat(fd, &m->st) < 0)
                return -errno;
        if (S_ISLNK(m->st.st_mode) || !same_inode(&lst, &m->st) || m->st.st_dev != c->dev)
                return -ESTALE;
        if (i == 0 && m->st.st_ino != c->ino)
                return -ESTALE;
        if (c->is_dir ? !S_ISDIR(m->st.st_mode) : !S_ISREG(m->st.st_mode))
                return -ESTALE;
        return 0;
}

/* Phase 2: rename the member to a tombstone and check that what we renamed
 * is what phase 1 checked. A check followed by unlinkat(name) could remove a
 * file that a trainer atomically put under that name in between; after the
 * rename, that file keeps the name and the tombstone holds the old inode. */
static int member_tombstone(int run_fd, const char *name, struct member *m)
{
        int r;

        r = rename_to_free_name(run_fd, name, TOMBSTONE_PREFIX, name, m->st.st_ino, m->tomb, sizeof(m->tomb));
        if (r < 0)
                return r;
        if (fstatat(run_fd, m->tomb, &m->tomb_st, AT_SYMLINK_NOFOLLOW) < 0) {
                /* ENOENT: someone moved our tombstone away; nothing to undo. */
                r = errno == ENOENT ? -ESTALE : -errno;
                if (r != -ESTALE)
                        (void)restore(run_fd, m->tomb, name, m->st.st_ino, true);
                return r;
        }
        if (!same_inode(&m->tomb_st, &m->st) || (m->tomb_st.st_mode & S_IFMT) != (m->st.st_mode & S_IFMT)) {
                /* Not ours: it must not stay under a tombstone name. */
                r = restore(run_fd, m->tomb, name, m->tomb_st.st_ino, true);
                return r < 0 ? r : -ESTALE;
        }
        return 0;
}

int remove_ckpt(int run_fd, const struct ckpt *c, uint64_t *ret_freed)
{
        _cleanup_free_ struct member *m = NULL;
        uint64_t freed = 0;
        size_t i;
        int r = 0;

        if (ret_freed)
                *ret_freed = 0;
        if (!c || !c->members || c->n_members == 0)
                return -EINVAL;
        hook("before", c->name);

        m = calloc(c->n_members, sizeof(*m));
        if (!m)
                return -ENOMEM;
        for (i = 0; i < c->n_members; i++) {
                r = member_check(run_fd, c, i, &m[i]);
                if (r < 0)
                        return r;
        }
        for (i = 0; i < c->n_members; i++) {
                r = member_tombstone(run_fd, c->members[i], &m[i]);
                if (r < 0)
                        goto rollback;
        }
        if (c->is_dir)
                hook("tombstoned", c->name);

        for (i = 0; i < c->n_members; i++) {
                int k;

                if (c->is_dir)
                        k = tree_remove(run_fd, m[i].tomb, &m[i].tomb_st, &freed);
                else if (unlinkat(run_fd, m[i].tomb, 0) >= 0) {
                        /* Only the last link releases the blocks (unlink(2)). */
                        if (m[i].tomb_st.st_nlink == 1)
                                freed += freed_bytes(&m[i].tomb_st);
                        k = 0;
                } else
                        k = -errno;
                if (k < 0 && r == 0)
                        r = k;
        }
        if (ret_freed)
                *ret_freed = freed;
        return r;

rollback:
        /* All or nothing: give the members renamed so far their names back. */
        while (i-- > 0)
                (void)restore(run_fd, m[i].tomb, c->members[i], m[i].st.st_ino, false);
        return r;
}

int remove_tombstones(int run_fd)
{
        _cleanup_close_ int fd = -1;
        char **names = NULL;
        size_t n = 0;
        int r = 0, count = 0;
        struct dirent *de;
        DIR *d;

        /* run_fd may be O_PATH, which fdopendir(3) refuses: open "." again. */
        fd = open_beneath(run_fd, ".", O_RDONLY | O_DIRECTORY);
        if (fd < 0)
                return fd;
        d = fdopendir(fd);
        if (!d)
                return -errno;
        TAKE_FD(fd);
        /* Collect first: removing while reading the same stream may skip. */
        while ((errno = 0, de = readdir(d))) {
                char **nn;

                if (strncmp(de->d_name, TOMBSTONE_PREFIX, strlen(TOMBSTONE_PREFIX)) != 0)
                        continue;
                nn = realloc(names, (n + 1) * sizeof(*nn));
                if (!nn || !(nn[n] = strdup(de->d_name))) {
                        names = nn ? nn : names;
                        r = -ENOMEM;
                        break;
                }
                names = nn;
                n++;
        }
        if (r == 0 && errno != 0)
                r = -errno;
        closedir(d);

        /* Try every tombstone even after a failure: one that crosses a mount
         * must not keep the others alive. */
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                int k;

                if (fstatat(run_fd, names[i], &st, AT_SYMLINK_NOFOLLOW) < 0)
                        k = -errno;
                else if (S_ISDIR(st.st_mode))
                        k = tree_remove(run_fd, names[i], &st, NULL);
                else
                        k = unlinkat(run_fd, names[i], 0) < 0 ? -errno : 0;
                if (k == 0)
                        count++;
                else if (k != -ENOENT && r == 0)
                        r = k; /* ENOENT: finished by someone else meanwhile */
        }
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        return r < 0 ? r : count;
}
