/* Safe deletion (DESIGN "Safety of deletion").
 *
 * remove_ckpt works in phases so that a checkpoint is either fully condemned
 * or left exactly as it was:
 *   1. check: every member is re-opened beneath the run fd and must still be
 *      what the scan saw (no symlink, members[0]'s (dev, ino), all on c->dev,
 *      the right type). Any mismatch: -ESTALE, nothing touched.
 *   2. record: the removal's intent (root, run, every member with its
 *      tombstone name, dev, ino) is written to the records directory
 *      (tombrec.h), durably, before any rename. Only recorded tombstones are
 *      ever finished at start-up: a ".ckptd-trash-" entry made by anyone
 *      else is an ordinary entry.
 *   3. tombstone: every member is renamed with RENAME_NOREPLACE to a
 *      ".ckptd-trash-" name and the renamed entry is checked again. A swap
 *      between 1 and the rename puts a foreign object under the tombstone
 *      name; it is renamed back and every member already renamed is restored.
 *      Members are renamed in rename_rank() order: the one a trainer opens
 *      to find the others (TF's ".index") first, so an interruption never
 *      leaves a group that looks whole.
 *   4. remove: files are unlinked (the first-renamed last), directories
 *      emptied iteratively; then the record is deleted.
 * After phase 3 the checkpoint's names are gone, so a trainer's resume logic
 * never picks a half-deleted checkpoint, and an interruption leaves only
 * recorded tombstones (and, for a group, members of a recorded removal
 * already committed by its first rename), which remove_tombstones finishes
 * at start-up.
 *
 * Nothing here follows a symlink: opens go through openat_beneath
 * (RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV, openat2(2)), and
 * renameat2(2), unlinkat(2) and fstatat(AT_SYMLINK_NOFOLLOW) act on the last
 * component itself. Names passed to them are single components, so no
 * intermediate component is ever resolved either.
 *
 * What remains unguarded is a process that writes to tombstone names while
 * we work on them: between the check of a tombstone and its unlinkat(2)
 * (Linux cannot unlink by fd), and inside a tombstoned tree, whose whole
 * content is condemned. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "macro.h"
#include "remove.h"
#include "fsutil.h"
#include "tombrec.h"
#include "verify.h"

void (*remove_test_hook)(const char *stage, const char *name);

/* The tree walk keeps at most TREE_OPEN_MAX directories open (each a DIR with
 * its fd): the deepest ones. Deeper frames close the lowest open one; on the
 * way back up a closed frame is re-opened as ".." of its child, so every
 * level costs O(1) system calls however deep the tree. */
#define TREE_OPEN_MAX 64
/* Entries removed between two calls of remove_ctx.progress. */
#define TREE_PROGRESS 4096
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

/* prefix + name (+ ".<random hex>"), or prefix + <ino in hex> (+ the same) when that would
 * exceed NAME_MAX. buf holds NAME_MAX + 1 bytes. */
static int make_name(char *buf, size_t size, const char *prefix, const char *name, ino_t ino, unsigned attempt)
{
        char suffix[24] = "";
        int n;

        /* the first taken (a removal before, cut short): a suffix no one
         * can guess, so that names made beforehand in a directory others
         * write to never use up the attempts */
        if (attempt > 0) {
                uint64_t v;

                if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
                        v = (uint64_t)now_usec(CLOCK_MONOTONIC) * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ino ^ attempt;
                snprintf(suffix, sizeof(suffix), ".%016" PRIx64, v);
        }
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
        uint64_t mnt_id; /* statx(2) STATX_MNT_ID; 0: unknown */
        uint64_t bytes;  /* the directory's own blocks, freed by its rmdir */
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
        uint64_t removed;             /* entries removed, for progress */
        const struct remove_ctx *ctx; /* progress callback; may be NULL */
        int error;                    /* first error; the walk goes on after most */
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

/* Identity of an open directory: (dev, ino), its mount (statx(2)
 * STATX_MNT_ID, Linux 5.8; 0 where unknown) and its blocks. */
static int dir_ident(int fd, struct frame *f)
{
        struct statx stx;

        if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_MNT_ID, &stx) < 0)
                return -errno;
        f->dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
        f->ino = (ino_t)stx.stx_ino;
        f->mnt_id = (stx.stx_mask & STATX_MNT_ID) ? stx.stx_mnt_id : 0;
        f->bytes = stx.stx_blocks * 512;
        return 0;
}

/* Open `path` below parent_fd as frame f; it takes the directory's identity,
 * which must be that of `expect` when given. */
static int frame_open(struct frame *f, int parent_fd, const char *path, const struct stat *expect)
{
        int fd, r;

        fd = open_beneath(parent_fd, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (fd < 0)
                return fd;
        r = dir_ident(fd, f);
        if (r == 0 && expect && (f->dev != expect->st_dev || f->ino != expect->st_ino))
                r = -ESTALE;
        if (r == 0 && !(f->dir = fdopendir(fd)))
                r = -errno;
        if (r < 0)
                close(fd);
        return r;
}

static int frame_fd(const struct tree *t, size_t i)
{
        return i == 0 ? t->base_fd : dirfd(t->f[i - 1].dir);
}

/* The top frame is done and its parent was closed to save fds: re-open the
 * parent as ".." of the top frame, one openat(2) whatever the depth, so the
 * whole walk stays linear. ".." is whatever directory holds the top frame
 * now; it must be the very directory the parent frame recorded, on the same
 * mount, or the walk stops (-ESTALE): a subtree moved elsewhere meanwhile is
 * never climbed out of. */
static int tree_reopen_parent(struct tree *t)
{
        struct frame *child = &t->f[t->n - 1], *parent = &t->f[t->n - 2];
        struct frame seen = {};
        int fd, r;

        fd = openat(dirfd(child->dir), "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = dir_ident(fd, &seen);
        if (r == 0 && (seen.dev != parent->dev || seen.ino != parent->ino ||
                       (parent->mnt_id && seen.mnt_id && seen.mnt_id != parent->mnt_id)))
                r = -ESTALE;
        if (r == 0 && !(parent->dir = fdopendir(fd)))
                r = -errno;
        if (r < 0) {
                close(fd);
                return r;
        }
        t->lo = t->n - 2;
        return 0;
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
        r = frame_open(f, frame_fd(t, t->n), name, expect);
        if (r < 0) {
                frame_free(f);
                return r;
        }
        t->n++;
        return 0;
}

/* Count one removed entry; every TREE_PROGRESS of them tell the caller. */
static void tree_removed(struct tree *t)
{
        if (++t->removed % TREE_PROGRESS == 0 && t->ctx && t->ctx->progress)
                t->ctx->progress(t->ctx->userdata);
}

/* The top frame is empty (or done): close it and rmdir it from its parent. */
static int tree_pop(struct tree *t)
{
        struct frame *f = &t->f[t->n - 1], *parent;
        bool incomplete = f->incomplete;
        uint64_t bytes = f->bytes;
        _cleanup_free_ char *name = NULL;
        int r;

        if (t->n >= 2 && !t->f[t->n - 2].dir) {
                r = tree_reopen_parent(t);
                if (r < 0)
                        return r;
        }
        name = TAKE_PTR(f->name);
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
        /* unlinkat(2) AT_REMOVEDIR only removes an empty directory, so even if
         * the name was swapped since we emptied it, nothing else is lost. */
        if (unlinkat(dirfd(parent->dir), name, AT_REMOVEDIR) >= 0) {
                t->freed += bytes;
                parent->progress++;
                tree_removed(t);
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
        tree_removed(t);
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

/* Start emptying directory `name` below dir_fd (see tree_remove). On
 * failure nothing is held. */
static int tree_begin(struct tree *t, const struct remove_ctx *ctx, int dir_fd, const char *name,
                      const struct stat *expect)
{
        int r;

        *t = (struct tree){.base_fd = dir_fd, .ctx = ctx};
        r = tree_push(t, name, expect);
        if (r < 0) {
                free(t->f);
                t->f = NULL;
        }
        return r;
}

/* Go on with the walk for at most *budget directory entries (each counts
 * one from *budget). Returns 1 when the tree is not done yet, 0 when it is,
 * -errno on a fatal error; then call tree_end(). */
static int tree_step(struct tree *t, size_t *budget)
{
        int r = 0;

        while (t->n > 0) {
                struct frame *f = &t->f[t->n - 1];
                struct dirent *de;

                if (*budget == 0)
                        return 1;
                (*budget)--;
                errno = 0;
                de = readdir(f->dir);
                if (!de && errno != 0) {
                        f->incomplete = true;
                        record(t, -errno);
                } else if (!de && f->progress > 0 && f->passes < TREE_PASSES_MAX) {
                        rewinddir(f->dir);
                        f->passes++;
                        f->progress = 0;
                        continue;
                }
                if (!de)
                        r = tree_pop(t);
                else if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || frame_is_kept(f, de->d_name))
                        continue;
                else
                        r = tree_entry(t, de->d_name);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Close what the walk holds; r is tree_step()'s result. */
static int tree_end(struct tree *t, int r, uint64_t *freed)
{
        while (t->n > 0)
                frame_free(&t->f[--t->n]);
        free(t->f);
        t->f = NULL;
        if (freed)
                *freed += t->freed;
        return r < 0 ? r : t->error;
}

/* Empty and remove directory `name` below dir_fd. Rather than recursion, an
 * explicit stack of frames on the heap; open fds are bounded by
 * TREE_OPEN_MAX whatever the depth (see tree_reopen_parent). Errors other than
 * ENOMEM leave that entry and its ancestors in place and the walk goes on;
 * the first one is returned. *freed (may be NULL) grows by the bytes of
 * removed directories and of removed files that had no other link. */
static int tree_remove(const struct remove_ctx *ctx, int dir_fd, const char *name, const struct stat *expect,
                       uint64_t *freed)
{
        struct tree t;
        size_t budget = SIZE_MAX;
        int r;

        r = tree_begin(&t, ctx, dir_fd, name, expect);
        if (r < 0)
                return r;
        return tree_end(&t, tree_step(&t, &budget), freed);
}

int remove_tree_at(int dir_fd, const char *name)
{
        if (!name_is_entry(name))
                return -EINVAL;
        return tree_remove(NULL, dir_fd, name, NULL, NULL);
}

/* ---- Checkpoints ------------------------------------------------------------ */

struct member {
        struct stat st;               /* as checked in phase 1 */
        struct statx_timestamp btime; /* of st's inode; 0: unknown */
        struct stat tomb_st;          /* the tombstone, checked in phase 3 */
        char tomb[NAME_MAX + 1];
        unsigned attempt; /* of make_name() for tomb */
};

/* The removal's record (phase 2). Without a records directory, or when it
 * cannot be written, the removal goes on unrecorded (ctx->record_error says
 * why): its tombstones are then never finished by anyone if it is
 * interrupted, which leaks their space but never deletes anything. Refusing
 * to delete instead would stop the free-space floor exactly when the disk
 * (often the one holding the state directory too) is full. */
struct recorder {
        struct remove_ctx *ctx;
        struct tombrec rec;
        bool on_disk;
};

static int recorder_write(struct recorder *w)
{
        int r;

        if (!w->ctx || w->ctx->records_fd < 0)
                return 0;
        r = tombrec_write(w->ctx->records_fd, &w->rec);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                w->ctx->record_error = r;
                /* an earlier version on disk names tombstones we no longer use */
                if (w->on_disk)
                        (void)tombrec_delete(w->ctx->records_fd, &w->rec);
                w->on_disk = false;
                return 0;
        }
        w->on_disk = true;
        return 0;
}

static void recorder_drop(struct recorder *w)
{
        if (w->on_disk)
                (void)tombrec_delete(w->ctx->records_fd, &w->rec);
        w->on_disk = false;
}

/* Member i of the record gets tombstone name `tomb`; rewrite the record
 * when it is already on disk. */
static int recorder_rename(struct recorder *w, size_t i, const char *tomb)
{
        char *t;

        if (i >= w->rec.n)
                return 0;
        t = strdup(tomb);
        if (!t)
                return -ENOMEM;
        free(w->rec.m[i].tomb);
        w->rec.m[i].tomb = t;
        return w->on_disk ? recorder_write(w) : 0;
}

/* The birth time of dir_fd/name (statx(2) STATX_BTIME), zero where the
 * filesystem has none. */
static struct statx_timestamp birth_time(int dir_fd, const char *name, int flags)
{
        struct statx stx;

        if (statx(dir_fd, name, flags | AT_SYMLINK_NOFOLLOW, STATX_BTIME, &stx) < 0 || !(stx.stx_mask & STATX_BTIME))
                return (struct statx_timestamp){};
        return stx.stx_btime;
}

/* Phase 1: the member must still be what the scan saw. */
static int member_check(int run_fd, const struct ckpt *c, size_t i, struct member *m)
{
        const char *name = ckpt_member(c, i);
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
        m->btime = birth_time(fd, "", AT_EMPTY_PATH);
        if (S_ISLNK(m->st.st_mode) || !same_inode(&lst, &m->st) || m->st.st_dev != c->dev)
                return -ESTALE;
        if (i == 0 && m->st.st_ino != c->ino)
                return -ESTALE;
        if (c->is_dir ? !S_ISDIR(m->st.st_mode) : !S_ISREG(m->st.st_mode))
                return -ESTALE;
        return 0;
}

/* A tombstone name for `name` that is free right now (".N" suffixes). */
static int member_pick_tomb(int run_fd, const char *name, struct member *m)
{
        for (; m->attempt < TOMB_ATTEMPTS; m->attempt++) {
                struct stat st;
                int r = make_name(m->tomb, sizeof(m->tomb), TOMBSTONE_PREFIX, name, m->st.st_ino, m->attempt);

                if (r < 0)
                        return r;
                if (fstatat(run_fd, m->tomb, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return errno == ENOENT ? 0 : -errno;
        }
        return -EEXIST;
}

/* Phase 3: rename the member to its recorded tombstone name and check that
 * what we renamed is what phase 1 checked. A check followed by
 * unlinkat(name) could remove a file that a trainer atomically put under
 * that name in between; after the rename, that file keeps the name and the
 * tombstone holds the old inode. A name taken since it was picked gets the
 * next free one, recorded before the rename. */
static int member_tombstone(int run_fd, const char *name, struct member *m, struct recorder *w, size_t rec_i)
{
        int r;

        for (;;) {
                r = rename_noreplace(run_fd, name, m->tomb);
                if (r != -EEXIST)
                        break;
                m->attempt++;
                r = member_pick_tomb(run_fd, name, m);
                if (r < 0)
                        return r;
                r = recorder_rename(w, rec_i, m->tomb);
                if (r < 0)
                        return r;
        }
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

/* Phase 4 for one tombstone: unlink a file, empty and remove a directory. */
static int member_remove(const struct remove_ctx *ctx, int run_fd, struct member *m, uint64_t *freed)
{
        if (S_ISDIR(m->tomb_st.st_mode))
                return tree_remove(ctx, run_fd, m->tomb, &m->tomb_st, freed);
        if (unlinkat(run_fd, m->tomb, 0) < 0)
                return -errno;
        /* Only the last link releases the blocks (unlink(2)). */
        if (m->tomb_st.st_nlink == 1)
                *freed += freed_bytes(&m->tomb_st);
        return 0;
}

/* Rename order of a group's members: the one a trainer opens to find the
 * others first (TF's "ckpt-N.index" lists the "ckpt-N.data-K-of-N" shards;
 * TF1's ".meta"), the shards last. After the first rename the group no
 * longer looks like a checkpoint to anyone. */
static int rename_rank(const char *name)
{
        if (strstr(name, ".index") || strstr(name, ".meta"))
                return 0;
        if (strstr(name, ".data-") || strstr(name, "-of-"))
                return 2;
        return 1;
}

static size_t *rename_order(const struct ckpt *c)
{
        size_t *order = calloc(c->n_members, sizeof(*order)), k = 0;

        if (!order)
                return NULL;
        for (int rank = 0; rank <= 2; rank++)
                for (size_t i = 0; i < c->n_members; i++)
                        if (rename_rank(ckpt_member(c, i)) == rank)
                                order[k++] = i;
        return order;
}

static int recorder_init(struct recorder *w, struct remove_ctx *ctx, int run_fd, const struct ckpt *c,
                         const struct member *m, const size_t *order)
{
        struct stat st;
        int r;

        *w = (struct recorder){.ctx = ctx};
        if (!ctx || ctx->records_fd < 0)
                return 0;
        if (fstat(run_fd, &st) < 0)
                return -errno;
        w->rec.root = strdup(ctx->root ? ctx->root : "");
        w->rec.run = strdup(ctx->run ? ctx->run : ".");
        w->rec.m = calloc(c->n_members, sizeof(*w->rec.m));
        if (!w->rec.root || !w->rec.run || !w->rec.m)
                return -ENOMEM;
        w->rec.run_dev = st.st_dev;
        w->rec.run_ino = st.st_ino;
        w->rec.root_dev = ctx->root_dev;
        w->rec.root_ino = ctx->root_ino;
        w->rec.has_root_id = ctx->root_dev || ctx->root_ino;
        /* in rename order, which start-up follows too */
        for (size_t k = 0; k < c->n_members; k++) {
                size_t i = order[k];

                w->rec.n = k + 1; /* tombrec_finish() frees what is set */

                w->rec.m[k] = (struct tombrec_member){
                        .name = strdup(ckpt_member(c, i)),
                        .tomb = strdup(m[i].tomb),
                        .dev = m[i].st.st_dev,
                        .ino = m[i].st.st_ino,
                        .type = m[i].st.st_mode & S_IFMT,
                        .btime_sec = m[i].btime.tv_sec,
                        .btime_nsec = m[i].btime.tv_nsec,
                        .ctime_sec = m[i].st.st_ctim.tv_sec,
                        .ctime_nsec = (uint32_t)m[i].st.st_ctim.tv_nsec,
                };
                if (!w->rec.m[k].name || !w->rec.m[k].tomb)
                        return -ENOMEM;
        }
        r = tombrec_new_id(&w->rec);
        if (r < 0) {
                ctx->record_error = r;
                return 0;
        }
        return recorder_write(w);
}

/* A removal past its renames (phase 4 to go), stepped by remove_job_step. */
struct remove_job {
        struct remove_ctx ctx; /* a copy: w.ctx and t.ctx point here */
        int run_fd;            /* the caller's, or own_fd */
        int own_fd;            /* remove_job_detach()'s dup, or -1 */
        struct member *m;
        size_t *order;
        size_t k; /* members order[0 .. k-1] are still to be removed */
        struct recorder w;
        struct tree t; /* the tree being removed while in_tree */
        size_t n;      /* members */
        bool in_tree;
        bool done;
        uint64_t size_bytes; /* as scanned */
        uint64_t freed;
        int r; /* first error */
};

struct remove_job *remove_job_free(struct remove_job *j)
{
        if (!j)
                return NULL;
        if (j->in_tree)
                (void)tree_end(&j->t, 0, &j->freed);
        tombrec_finish(&j->w.rec);
        free(j->m);
        free(j->order);
        safe_close(j->own_fd);
        free(j);
        return NULL;
}

int remove_job_detach(struct remove_job *j)
{
        int fd;

        if (j->own_fd >= 0)
                return 0;
        fd = fcntl(j->run_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        j->own_fd = j->run_fd = fd;
        /* the tree in hand uses run_fd only to remove its top */
        if (j->in_tree)
                j->t.base_fd = fd;
        return 0;
}

uint64_t remove_job_remaining(const struct remove_job *j)
{
        uint64_t freed = j->freed + (j->in_tree ? j->t.freed : 0);

        if (j->done)
                return 0;
        return freed < j->size_bytes ? j->size_bytes - freed : 0;
}

uint64_t remove_job_freed(const struct remove_job *j)
{
        return j->freed + (j->in_tree ? j->t.freed : 0);
}

bool remove_job_recorded(const struct remove_job *j)
{
        return j->w.on_disk;
}

const char *remove_job_tombstone(const struct remove_job *j)
{
        return j->n == 1 ? j->m[0].tomb : NULL;
}

int remove_job_step(struct remove_job *j, size_t budget)
{
        /* The first-renamed member goes last: while any tombstone of the
         * record is left, start-up knows the removal was under way. */
        while (budget > 0 && !j->done) {
                struct member *m;
                int e;

                if (j->in_tree) {
                        e = tree_step(&j->t, &budget);
                        if (e > 0)
                                return 1;
                        e = tree_end(&j->t, e, &j->freed);
                        j->in_tree = false;
                        if (e < 0 && j->r == 0)
                                j->r = e;
                        continue;
                }
                if (j->k == 0) {
                        j->done = true;
                        /* A tombstone left (a mount inside, an error) stays
                         * recorded, so start-up tries again. */
                        if (j->r == 0)
                                recorder_drop(&j->w);
                        break;
                }
                m = &j->m[j->order[--j->k]];
                budget--;
                if (S_ISDIR(m->tomb_st.st_mode)) {
                        e = tree_begin(&j->t, &j->ctx, j->run_fd, m->tomb, &m->tomb_st);
                        j->in_tree = e == 0;
                } else
                        e = member_remove(&j->ctx, j->run_fd, m, &j->freed);
                if (e < 0 && j->r == 0)
                        j->r = e;
        }
        if (!j->done)
                return 1;
        return j->r;
}

int remove_ckpt_begin(struct remove_ctx *ctx, int run_fd, const struct ckpt *c, struct remove_job **ret)
{
        struct remove_job *j;
        size_t i, k;
        int r = 0;

        *ret = NULL;
        if (!c || !c->name || c->n_members == 0)
                return -EINVAL;
        hook("before", c->name);

        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        *j = (struct remove_job){.run_fd = run_fd, .own_fd = -1, .size_bytes = c->size_bytes};
        if (ctx)
                j->ctx = *ctx;
        j->m = calloc(c->n_members, sizeof(*j->m));
        j->order = rename_order(c);
        if (!j->m || !j->order) {
                r = -ENOMEM;
                goto fail;
        }
        for (i = 0; i < c->n_members; i++) {
                r = member_check(run_fd, c, i, &j->m[i]);
                if (r < 0)
                        goto fail;
                r = member_pick_tomb(run_fd, ckpt_member(c, i), &j->m[i]);
                if (r < 0)
                        goto fail;
        }
        r = recorder_init(&j->w, ctx ? &j->ctx : NULL, run_fd, c, j->m, j->order);
        if (ctx)
                ctx->record_error = j->ctx.record_error;
        if (r < 0)
                goto fail;
        for (k = 0; k < c->n_members; k++) {
                i = j->order[k];
                r = member_tombstone(run_fd, ckpt_member(c, i), &j->m[i], &j->w, k);
                if (ctx)
                        ctx->record_error = j->ctx.record_error;
                if (r < 0)
                        goto rollback;
                hook("renamed", ckpt_member(c, i));
        }
        if (c->is_dir)
                hook("tombstoned", c->name);
        /* the caller's strings may not outlive this call */
        j->ctx.root = j->ctx.run = NULL;
        j->k = j->n = c->n_members;
        *ret = j;
        return 0;

rollback:
        /* All or nothing: give the members renamed so far their names back. */
        while (k-- > 0)
                (void)restore(run_fd, j->m[j->order[k]].tomb, ckpt_member(c, j->order[k]), j->m[j->order[k]].st.st_ino,
                              false);
        recorder_drop(&j->w);
fail:
        remove_job_free(j);
        return r;
}

int remove_ckpt(struct remove_ctx *ctx, int run_fd, const struct ckpt *c, uint64_t *ret_freed)
{
        struct remove_job *j = NULL;
        int r;

        if (ret_freed)
                *ret_freed = 0;
        r = remove_ckpt_begin(ctx, run_fd, c, &j);
        if (r < 0)
                return r;
        do
                r = remove_job_step(j, SIZE_MAX);
        while (r > 0);
        if (ret_freed)
                *ret_freed = remove_job_freed(j);
        remove_job_free(j);
        return r;
}

/* A plain file needs neither a tombstone nor a record: one unlinkat(2) on
 * the pinned run fd removes it whole, so an interruption leaves it either
 * in place or gone, never half-deleted for start-up to finish. The rename
 * of remove_ckpt() exists to take a group's or a tree's names away before
 * a removal that takes many steps. What the rename also guarded, a trainer
 * atomically renaming a new file onto this name between the check and the
 * unlink, is left to the instant between our fstat(2) and unlinkat(2). */
int remove_file_checked(int run_fd, const struct ckpt *c, bool need_room, int (*unleased)(void *userdata),
                        void *userdata, uint64_t *ret_freed)
{
        _cleanup_close_ int fd = -1;
        const char *name;
        struct stat st;
        bool leased;
        int r;

        *ret_freed = 0;
        if (!c || c->is_dir || c->n_members != 1 || !name_is_entry(ckpt_member(c, 0)))
                return -EINVAL;
        name = ckpt_member(c, 0);
        hook("before", name);
        /* O_NONBLOCK: a FIFO swapped in, or someone else's lease, never
         * makes us wait; O_NOFOLLOW with openat2(2)'s RESOLVE_NO_SYMLINKS
         * refuses a symlink put in its place, RESOLVE_NO_XDEV a mount. */
        fd = open_beneath(run_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
        if (fd == -EWOULDBLOCK)
                return VERIFY_IN_USE;
        if (fd == -ELOOP || fd == -EXDEV || fd == -ENOTDIR || fd == -ENXIO || fd == -ENOENT)
                return -ESTALE;
        if (fd < 0)
                return VERIFY_UNCHECKED_BASE - fd;
        if (fstat(fd, &st) < 0)
                return VERIFY_UNCHECKED_BASE + errno;
        if (!S_ISREG(st.st_mode) || st.st_dev != c->dev || st.st_ino != c->ino)
                return -ESTALE;
        /* linked since the scan (a backup made by hard links) */
        if (need_room && st.st_nlink > 1)
                return VERIFY_LINKED;
        r = verify_lease_take(fd);
        leased = r == 0;
        if (r == -EAGAIN)
                return VERIFY_IN_USE;
        if (r < 0 && !verify_lease_fallback(r, st.st_dev))
                return VERIFY_UNCHECKED_BASE - r;
        /* Without a lease nothing says that no one holds a flock on it */
        if (!leased && unleased) {
                r = unleased(userdata);
                if (r != VERIFY_FREE)
                        return r;
        }
        /* Written since the scan and closed (a trainer restarted into
         * the run, saving this name again in place): another checkpoint
         * than the one decided. Without a lease, the size too; a writer
         * that has not written since is not told apart. */
        if (stat_mtime_usec(&st) != c->mtime_usec || (!leased && freed_bytes(&st) != c->size_bytes))
                return VERIFY_CHANGED;
        /* the lease is held through the unlink: an open(2) by anyone else
         * now waits for its break (we give it up right after) */
        if (unlinkat(run_fd, name, 0) < 0)
                r = -errno;
        else {
                r = 0;
                /* Only the last link releases the blocks (unlink(2)). */
                if (st.st_nlink == 1)
                        *ret_freed = freed_bytes(&st);
        }
        /* the lease goes with the last close of our file description
         * (fs/locks.c locks_remove_file()), right below */
        return r;
}

/* ---- Start-up: finishing recorded removals -------------------------------- */

/* dir_fd/name, seen as st, is the recorded inode: same (dev, ino, type)
 * and, where both are known, the same birth time. */
static bool matches(const struct tombrec_member *rm, const struct stat *st, int dir_fd, const char *name)
{
        struct statx_timestamp bt;

        if (st->st_dev != rm->dev || st->st_ino != rm->ino || (st->st_mode & S_IFMT) != rm->type)
                return false;
        if (rm->btime_sec == 0 && rm->btime_nsec == 0)
                return true;
        bt = birth_time(dir_fd, name, 0);
        return (bt.tv_sec == 0 && bt.tv_nsec == 0) || (bt.tv_sec == rm->btime_sec && bt.tv_nsec == rm->btime_nsec);
}

enum { GONE, NAMED, TOMBSTONED };

/* Where member i of the record is now: under its tombstone, under its own
 * name (the removal did not reach it), or neither. Only the recorded
 * identity counts: anything else under either name is not ours. */
static int member_locate(int run_fd, const struct tombrec_member *rm, struct member *m)
{
        struct stat st;

        if (!name_is_entry(rm->name) || !name_is_entry(rm->tomb) ||
            strncmp(rm->tomb, TOMBSTONE_PREFIX, strlen(TOMBSTONE_PREFIX)) != 0 || strlen(rm->tomb) >= sizeof(m->tomb))
                return GONE;
        strcpy(m->tomb, rm->tomb);
        if (fstatat(run_fd, rm->tomb, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                if (matches(rm, &st, run_fd, rm->tomb)) {
                        m->st = m->tomb_st = st;
                        return TOMBSTONED;
                }
        } else if (errno != ENOENT)
                return -errno;
        if (fstatat(run_fd, rm->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
                /* not renamed by us, so changed since only by others: a
                 * save written there again in place is theirs */
                bool same_ctime = (rm->ctime_sec == 0 && rm->ctime_nsec == 0) ||
                                  (st.st_ctim.tv_sec == rm->ctime_sec && st.st_ctim.tv_nsec == (long)rm->ctime_nsec);

                if (same_ctime && matches(rm, &st, run_fd, rm->name)) {
                        m->st = st;
                        return NAMED;
                }
        } else if (errno != ENOENT)
                return -errno;
        return GONE;
}

/* Finish one recorded removal. Returns 1 when something was finished, 0 when
 * there was nothing (left) to do, -errno when the record stays for later. */
static int finish_record(struct remove_ctx *ctx, int root_fd, struct tombrec *rec)
{
        struct recorder w = {.ctx = ctx, .rec = *rec, .on_disk = true};
        _cleanup_free_ struct member *m = NULL;
        _cleanup_free_ int *where = NULL;
        _cleanup_close_ int run_fd = -1;
        bool committed = false;
        uint64_t freed = 0;
        struct stat st;
        int r = 0;

        run_fd = open_beneath(root_fd, rec->run, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
        if (run_fd == -ENOENT || run_fd == -ENOTDIR)
                goto drop; /* the run is gone, and its tombstones with it */
        if (run_fd < 0)
                return run_fd;
        if (fstat(run_fd, &st) < 0)
                return -errno;
        if (st.st_dev != rec->run_dev || st.st_ino != rec->run_ino)
                goto drop; /* another directory now: nothing in it is ours */
        m = calloc(rec->n, sizeof(*m));
        where = calloc(rec->n, sizeof(*where));
        if (!m || !where)
                return -ENOMEM;
        for (size_t i = 0; i < rec->n; i++) {
                where[i] = member_locate(run_fd, &rec->m[i], &m[i]);
                if (where[i] < 0)
                        return where[i];
                committed = committed || where[i] == TOMBSTONED;
        }
        /* No tombstone: the removal never renamed anything (or finished):
         * whatever still has its name is a checkpoint like any other. */
        if (!committed)
                goto drop;
        /* Members of a group not renamed yet follow the first ones: the
         * group was condemned and is no longer whole. */
        for (size_t i = 0; i < rec->n; i++) {
                int k;

                if (where[i] != NAMED)
                        continue;
                k = member_pick_tomb(run_fd, rec->m[i].name, &m[i]);
                if (k == 0 && strcmp(m[i].tomb, rec->m[i].tomb) != 0)
                        k = recorder_rename(&w, i, m[i].tomb);
                if (k == 0)
                        k = member_tombstone(run_fd, rec->m[i].name, &m[i], &w, i);
                if (k == 0)
                        where[i] = TOMBSTONED;
                else if (k != -ESTALE && r == 0)
                        r = k;
        }
        for (size_t i = rec->n; i-- > 0;) {
                int k;

                if (where[i] != TOMBSTONED)
                        continue;
                k = member_remove(ctx, run_fd, &m[i], &freed);
                if (k < 0 && k != -ENOENT && r == 0)
                        r = k;
        }
        *rec = w.rec;
        if (r < 0)
                return r;
        (void)tombrec_delete(ctx->records_fd, rec);
        return 1;
drop:
        (void)tombrec_delete(ctx->records_fd, rec);
        return 0;
}

int remove_tombstones(struct remove_ctx *ctx, int root_fd)
{
        struct tombrec *v = NULL;
        size_t n = 0;
        int r, count = 0;

        if (!ctx || ctx->records_fd < 0 || !ctx->root)
                return -EBADF;
        r = tombrec_load(ctx->records_fd, ctx->root, ctx->root_dev, ctx->root_ino, &v, &n, NULL);
        if (r < 0)
                return r;
        /* Try every record even after a failure: a tombstone that holds a
         * mount must not keep the others alive. */
        for (size_t i = 0; i < n; i++) {
                int k = finish_record(ctx, root_fd, &v[i]);

                if (k > 0)
                        count++;
                else if (k < 0 && r == 0)
                        r = k;
        }
        tombrecs_free(v, n);
        return r < 0 ? r : count;
}
