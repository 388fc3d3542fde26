/* A run directory -> checkpoints (sizes, pins, pointers, metrics); a root ->
 * its runs. Every open goes through openat2(RESOLVE_BENEATH|
 * RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV) below the root fd, entries are
 * lstat'ed (symlinks are never checkpoints), and names are opaque bytes. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fsutil.h"
#include "macro.h"
#include "metricfile.h"
#include "metriclog.h"
#include "preset.h"
#include "scan.h"
#include "scan_pins.h"

#define UNFINISHED_SUFFIX     "-unfinished"
#define TMP_CHECKPOINT_PREFIX "tmp-checkpoint-" /* HF's staging dir (Trainer._save_checkpoint) */
/* read_what of a run that could not be read at all */
#define WHAT_RUN_DIR     "the run directory"
#define WHAT_RUN_LISTING "the run's listing"

bool scan_name_ignored(const struct watch_conf *w, const char *name)
{
        size_t len = strlen(name);

        /* Dot files include "." and "..", our own ".ckptd-trash-" tombstones
         * and DCP's ".metadata"-style files. */
        if (len == 0 || name[0] == '.')
                return true;
        if (scan_has_suffix(name, len, ".tmp") || scan_has_suffix(name, len, UNFINISHED_SUFFIX))
                return true;
        if (strstr(name, ".orbax-checkpoint-tmp") ||
            strncmp(name, TMP_CHECKPOINT_PREFIX, strlen(TMP_CHECKPOINT_PREFIX)) == 0)
                return true;
        if (w)
                for (size_t i = 0; i < w->exclude.n; i++)
                        if (glob_match(w->exclude.v[i], name))
                                return true;
        return false;
}

/* Names of a listing, stored one after another: a run of 20000 entries
 * costs a few dozen allocations instead of 20000. A block never moves, so
 * the entries may point into it. */
struct name_block {
        struct name_block *next;
        size_t used, size;
        char buf[];
};

#define NAME_BLOCK_SIZE (64 * 1024 - sizeof(struct name_block))

/* A copy of name in l's blocks; NULL on ENOMEM. */
static char *listing_name(struct scan_listing *l, const char *name)
{
        size_t len = strlen(name) + 1;
        struct name_block *b = l->names;

        if (!b || b->size - b->used < len) {
                size_t size = len > NAME_BLOCK_SIZE ? len : NAME_BLOCK_SIZE;

                b = malloc(sizeof(*b) + size);
                if (!b)
                        return NULL;
                *b = (struct name_block){.next = l->names, .size = size};
                l->names = b;
        }
        memcpy(b->buf + b->used, name, len);
        b->used += len;
        return b->buf + b->used - len;
}

static void listing_finish(struct scan_listing *l)
{
        while (l->names) {
                struct name_block *b = l->names;

                l->names = b->next;
                free(b);
        }
        free(l->v);
        strv_finish(&l->up);
        *l = (struct scan_listing){};
}

static int entry_cmp(const void *a, const void *b)
{
        return strcmp(((const struct scan_entry *)a)->name, ((const struct scan_entry *)b)->name);
}

/* Every entry of dir_fd but "." and "..", sorted by name. Entries that
 * vanish between readdir and lstat are left out; one that cannot be
 * lstat'ed otherwise stays with a zeroed stat and marks the run: it is no
 * checkpoint, but it may be one, a symlink pin or a keep file, and a keep or
 * -unfinished marker of that name still counts. A readdir error fails the
 * whole listing: a partial one could miss a keep file. */
static int listing_read(int dir_fd, struct run *run, struct scan_listing *ret)
{
        struct scan_listing l = {};
        size_t cap = 0;
        DIR *d;
        int fd, r = 0;

        /* getdents(2) needs a readable fd (O_PATH gives EBADF), and
         * fdopendir(3) takes ownership, so open a fresh one. */
        fd = openat_beneath(dir_fd, ".", O_RDONLY | O_DIRECTORY, 0);
        if (fd < 0)
                return fd;
        d = dir_from_fd(fd);
        if (!d)
                return -errno;
        for (;;) {
                struct dirent *de;
                struct stat st;
                uint64_t mnt_id = 0;

                r = dir_next(d, &de);
                if (r <= 0)
                        break;
                r = stat_mnt(dirfd(d), de->d_name, &st, &mnt_id);
                if (r == -ENOENT) {
                        r = 0;
                        continue;
                }
                if (r == -ENOMEM)
                        break;
                if (r < 0) {
                        r = scan_run_error(run, r, "entry %s", de->d_name);
                        if (r < 0)
                                break;
                        st = (struct stat){};
                }
                if (l.n == cap) {
                        size_t ncap = cap ? cap * 2 : 64;
                        struct scan_entry *n = reallocarray(l.v, ncap, sizeof(*n));
                        if (!n) {
                                r = -ENOMEM;
                                break;
                        }
                        l.v = n;
                        cap = ncap;
                }
                l.v[l.n].name = listing_name(&l, de->d_name);
                if (!l.v[l.n].name) {
                        r = -ENOMEM;
                        break;
                }
                if (scan_unfinished_marker(de->d_name))
                        l.n_unfinished++;
                l.v[l.n].mnt_id = mnt_id;
                l.v[l.n++].st = st;
        }
        closedir(d);
        if (r < 0) {
                listing_finish(&l);
                return r;
        }
        if (l.n > 0)
                qsort(l.v, l.n, sizeof(*l.v), entry_cmp);
        *ret = l;
        return 0;
}

static const struct scan_entry *listing_find(const struct scan_listing *l, const char *name)
{
        struct scan_entry key = {.name = (char *)name};

        if (l->n == 0)
                return NULL;
        return bsearch(&key, l->v, l->n, sizeof(*l->v), entry_cmp);
}

/* Whether "<stem><suffix>" is an entry. A name longer than NAME_MAX cannot
 * exist in a directory, so a bounded buffer is exact here. */
static bool listing_has_with_suffix(const struct scan_listing *l, const char *stem, size_t stem_len, const char *suffix)
{
        char buf[NAME_MAX + 1];
        size_t n = strlen(suffix);

        if (stem_len + n > NAME_MAX)
                return false;
        memcpy(buf, stem, stem_len);
        memcpy(buf + stem_len, suffix, n + 1);
        return listing_find(l, buf) != NULL;
}

/* Whether "<stem>-unfinished" is an entry of the run or, for a model-
 * parallel rank's directory, of its parent (l->up). */
static bool marker_of(const struct scan_listing *l, const char *stem, size_t stem_len)
{
        char buf[NAME_MAX + 1];

        if (listing_has_with_suffix(l, stem, stem_len, UNFINISHED_SUFFIX))
                return true;
        if (l->up.n == 0 || stem_len + strlen(UNFINISHED_SUFFIX) > NAME_MAX)
                return false;
        memcpy(buf, stem, stem_len);
        strcpy(buf + stem_len, UNFINISHED_SUFFIX);
        return strv_sorted_contains(&l->up, buf);
}

/* NeMo marks "<path minus .ckpt/.nemo/-EMA>-unfinished" while it writes
 * <path> (the EMA copy shares the marker of its checkpoint); we accept
 * "<name>-unfinished" too, and any extension. */
static bool unfinished_marked(const struct scan_listing *l, const char *name)
{
        size_t len, stem;
        const char *dot;

        if (l->n_unfinished == 0 && l->up.n == 0)
                return false; /* the common case: no marker to look up */
        len = strlen(name);
        dot = strrchr(name, '.');
        stem = dot && dot != name ? (size_t)(dot - name) : len;

        if (marker_of(l, name, len) || marker_of(l, name, stem))
                return true;
        return stem > 4 && memcmp(name + stem - 4, "-EMA", 4) == 0 && marker_of(l, name, stem - 4);
}

static size_t digits(const char *s)
{
        size_t n = 0;

        while (s[n] >= '0' && s[n] <= '9')
                n++;
        return n;
}

/* name[0..) begins with prefix and then digits: where they end, or NULL. */
static const char *prefix_digits(const char *name, const char *prefix)
{
        size_t n = strlen(prefix), d;

        if (strncmp(name, prefix, n) != 0 || (d = digits(name + n)) == 0)
                return NULL;
        return name + n + d;
}

bool scan_model_parallel_dir(const char *name)
{
        const char *e = prefix_digits(name, "mp_rank_");

        if (!e && (e = prefix_digits(name, "tp_rank_")))
                e = prefix_digits(e, "_pp_rank_");
        if (!e)
                return (e = prefix_digits(name, "fsdp_shard_")) && *e == '\0';
        if (*e && !(e = prefix_digits(e, "_fsdp_shard_")))
                return false;
        return *e == '\0';
}

static bool is_marker(const char *name, const void *userdata)
{
        (void)userdata;
        return scan_unfinished_marker(name);
}

/* The -unfinished markers of run_fd's parent into l->up, sorted: NeMo
 * marks a model-parallel save at the path without the rank, beside the
 * rank's directory (uninject_model_parallel_rank()). 0 or -errno. */
static int parent_markers_read(int run_fd, struct scan_listing *l)
{
        DIR *d = dir_open_at(run_fd, "..");
        int r;

        if (!d)
                return -errno;
        r = dir_names(d, is_marker, NULL, 0, &l->up);
        closedir(d);
        return r;
}

/* "<X>.keep" is a pin marker, never a checkpoint itself, even when it
 * matches the pattern (TF's ckpt-{step}.* would take ckpt-7.keep). */
static bool is_keep_name(const char *name)
{
        return scan_has_suffix(name, strlen(name), KEEP_SUFFIX);
}

static bool kind_fits(enum ckpt_kind kind, mode_t mode)
{
        switch (kind) {
        case KIND_FILE: return S_ISREG(mode);
        case KIND_DIR: return S_ISDIR(mode);
        default: return S_ISREG(mode) || S_ISDIR(mode);
        }
}

/* Key=value watches (Lightning, NeMo) narrow names with `match` globs. */
static bool name_matched(const struct watch_conf *w, const char *name)
{
        if (w->match.n == 0)
                return true;
        for (size_t i = 0; i < w->match.n; i++)
                if (glob_match(w->match.v[i], name))
                        return true;
        return false;
}

bool scan_name_matches(const struct watch_conf *w, const struct pattern *pat, const char *name, struct fields *ret)
{
        struct fields f;

        if (!name_matched(w, name) || !pattern_match(pat, name, &f))
                return false;
        /* In key=value mode a name without any field ("best.ckpt", NeMo's
         * final "model.nemo") has no place in the order: not a checkpoint. */
        if (pattern_is_kv(pat) && f.n == 0)
                return false;
        if (ret)
                *ret = f;
        return true;
}

/* At most this many directories of one walk are open at a time: a
 * checkpoint 100k levels deep must not run the process out of fds (EMFILE
 * would keep it as unreadable forever). */
#define WALK_OPEN_MAX 64

/* One directory of a walk: its identity, and its subdirectories still to
 * visit (read in full when it was opened, so that closing it to save an fd
 * loses no place in a readdir stream). */
struct walk_frame {
        DIR *d; /* NULL while closed to save fds */
        dev_t dev;
        ino_t ino;
        char **subdirs;
        size_t n_subdirs, next;
};

static void walk_frame_finish(struct walk_frame *f)
{
        if (f->d)
                closedir(f->d);
        for (size_t i = 0; i < f->n_subdirs; i++)
                free(f->subdirs[i]);
        free(f->subdirs);
        *f = (struct walk_frame){};
}

static void walk_error(int *ret_error, int error)
{
        if (error != -ENOENT && *ret_error == 0)
                *ret_error = error < 0 ? error : -EIO;
}

/* Make fd (taken) frame f: its identity, every entry's size and mtime, and
 * the names of its subdirectories on mount mnt_id. -ENOMEM, else 0 with
 * other failures in *ret_error. */
static int walk_open(struct walk_frame *f, int fd, uint64_t mnt_id, uint64_t *size_bytes, int64_t *mtime_usec,
                     int *ret_error)
{
        struct stat st;
        size_t cap = 0;

        *f = (struct walk_frame){};
        if (fstat(fd, &st) < 0) {
                walk_error(ret_error, -errno);
                close(fd);
                return 0;
        }
        f->dev = st.st_dev;
        f->ino = st.st_ino;
        f->d = fdopendir(fd);
        if (!f->d) {
                int e = -errno;
                close(fd);
                if (e == -ENOMEM)
                        return e;
                walk_error(ret_error, e);
                return 0;
        }
        for (;;) {
                struct dirent *de;
                uint64_t id;
                int k;

                errno = 0;
                de = readdir(f->d);
                if (!de) {
                        if (errno != 0)
                                walk_error(ret_error, -errno);
                        return 0;
                }
                if (streq_ptr(de->d_name, ".") || streq_ptr(de->d_name, ".."))
                        continue;
                k = stat_mnt(dirfd(f->d), de->d_name, &st, &id);
                if (k == -ENOMEM)
                        return k;
                if (k < 0) {
                        walk_error(ret_error, k); /* ENOENT: vanished */
                        continue;
                }
                if (id != mnt_id && id && mnt_id) {
                        /* not entered, so never removed whole */
                        walk_error(ret_error, -EXDEV);
                        continue;
                }
                *size_bytes += (uint64_t)st.st_blocks * 512;
                if (stat_mtime_usec(&st) > *mtime_usec)
                        *mtime_usec = stat_mtime_usec(&st);
                if (!S_ISDIR(st.st_mode))
                        continue;
                if (f->n_subdirs == cap) {
                        size_t ncap = cap ? cap * 2 : 8;
                        char **v = reallocarray(f->subdirs, ncap, sizeof(*v));
                        if (!v)
                                return -ENOMEM;
                        f->subdirs = v;
                        cap = ncap;
                }
                f->subdirs[f->n_subdirs] = strdup(de->d_name);
                if (!f->subdirs[f->n_subdirs])
                        return -ENOMEM;
                f->n_subdirs++;
        }
}

/* Re-open parent, closed to save fds, as ".." of its child top: it must
 * still be the directory (dev, ino) that was walked. 0, -ESTALE or -errno. */
static int walk_reopen_parent(const struct walk_frame *top, struct walk_frame *parent)
{
        _cleanup_close_ int fd = openat(dirfd(top->d), "..", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;

        if (fd < 0 || fstat(fd, &st) < 0)
                return -errno;
        if (st.st_dev != parent->dev || st.st_ino != parent->ino)
                return -ESTALE;
        parent->d = fdopendir(fd);
        if (!parent->d)
                return -errno;
        TAKE_FD(fd);
        return 0;
}

/* Allocated bytes and newest mtime of everything below the directory dir_fd,
 * depth-first with a heap stack (no recursion). At most WALK_OPEN_MAX
 * directories stay open: the shallowest are closed, and on the way back up
 * one is re-opened as ".." of its child and must still be the directory
 * (dev, ino) that was walked. Linear in the size of the tree, however deep.
 * Symlinks are counted but never followed; mount points inside (another
 * mount id; st_dev would not do: overlayfs gives files the device of their
 * layer) are not entered: -EXDEV in *ret_error, for a checkpoint that
 * cannot be removed whole is kept whole. An entry that vanished is skipped;
 * any other failure (an unreadable subtree, EIO, a directory moved away
 * mid-walk) is put in *ret_error (the first one): what the walk could not see may hold a
 * write from a second ago, so the checkpoint's completeness is unknown.
 * Fails only with -ENOMEM. */
static int walk_tree(int dir_fd, uint64_t mnt_id, uint64_t *size_bytes, int64_t *mtime_usec, int *ret_error)
{
        struct walk_frame *stack = NULL;
        size_t n = 0, cap = 0, first_open = 0;
        int fd, r = 0;

        fd = openat_beneath(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_NOCTTY, 0);
        if (fd == -ENOMEM)
                return fd;
        if (fd < 0) {
                walk_error(ret_error, fd);
                return 0;
        }
        for (;;) {
                struct walk_frame *top;

                if (fd >= 0) {
                        if (n == cap) {
                                size_t ncap = cap ? cap * 2 : 16;
                                struct walk_frame *v = reallocarray(stack, ncap, sizeof(*v));
                                if (!v) {
                                        close(fd);
                                        r = -ENOMEM;
                                        break;
                                }
                                stack = v;
                                cap = ncap;
                        }
                        r = walk_open(&stack[n], fd, mnt_id, size_bytes, mtime_usec, ret_error);
                        fd = -1;
                        if (r < 0) {
                                n++;
                                break;
                        }
                        if (!stack[n].d) {
                                walk_frame_finish(&stack[n]);
                        } else if (++n - first_open > WALK_OPEN_MAX) {
                                closedir(stack[first_open].d);
                                stack[first_open++].d = NULL;
                        }
                }
                if (n == 0)
                        break;

                top = &stack[n - 1];
                if (top->next < top->n_subdirs) {
                        fd = openat_beneath(dirfd(top->d), top->subdirs[top->next++], O_RDONLY | O_DIRECTORY | O_NOCTTY,
                                            0);
                        if (fd == -ENOMEM) {
                                r = fd;
                                break;
                        }
                        if (fd < 0) {
                                walk_error(ret_error, fd);
                                fd = -1;
                        }
                        continue;
                }
                /* done with top: back to its parent, re-opened if it was
                 * closed to save fds */
                if (n >= 2 && !stack[n - 2].d) {
                        struct walk_frame *parent = &stack[n - 2];
                        int e = walk_reopen_parent(top, parent);

                        if (e == -ENOMEM) {
                                r = e;
                                break;
                        }
                        if (e < 0) {
                                /* moved away mid-walk: the rest is unseen */
                                walk_error(ret_error, e == -ENOENT ? -ESTALE : e);
                                break;
                        }
                        first_open = n - 2;
                }
                walk_frame_finish(top);
                n--;
        }
        while (n > 0)
                walk_frame_finish(&stack[--n]);
        free(stack);
        return r;
}

struct scan_ctx {
        int dir_fd;
        uint64_t mnt_id;
        const struct watch_conf *w;
        int64_t now_usec;
        const struct scan_listing *l;
        struct metriclog_set *logs; /* the run's metric_log, read on first need */
};

struct cand {
        size_t idx; /* into the listing */
        bool is_dir;
        struct fields fields;
};

static int double_cmp(double a, double b)
{
        /* NaN after every number, equal to itself: like fields_equal(). */
        if (isnan(a) || isnan(b))
                return !!isnan(a) - !!isnan(b);
        return (a > b) - (a < b);
}

/* By kind and fields; equal for the members of one group. */
static int cand_key_cmp(const struct cand *a, const struct cand *b)
{
        int r;

        if (a->is_dir != b->is_dir)
                return a->is_dir ? 1 : -1;
        if (a->fields.n != b->fields.n)
                return a->fields.n < b->fields.n ? -1 : 1;
        for (size_t i = 0; i < a->fields.n; i++) {
                r = strcmp(a->fields.name[i], b->fields.name[i]);
                if (r == 0)
                        r = double_cmp(a->fields.value[i], b->fields.value[i]);
                if (r != 0)
                        return r;
        }
        return 0;
}

static int cand_cmp(const void *x, const void *y)
{
        const struct cand *a = x, *b = y;
        int r = cand_key_cmp(a, b);

        /* the listing is sorted, so members come out sorted by name */
        return r != 0 ? r : (a->idx > b->idx) - (a->idx < b->idx);
}

static bool cand_same_group(const struct cand *a, const struct cand *b)
{
        return a->is_dir == b->is_dir && fields_equal(&a->fields, &b->fields);
}

/* NeMo saves the EMA weights of X.ckpt beside it as X-EMA.ckpt, and
 * removes both together: one checkpoint of two files. Where name's "-EMA"
 * before its extension starts, or SIZE_MAX. */
static size_t ema_at(const char *name)
{
        const char *dot = strrchr(name, '.');

        if (!dot || dot - name < 5 || memcmp(dot - 4, "-EMA", 4) != 0)
                return SIZE_MAX;
        return (size_t)(dot - 4 - name);
}

/* a <=> b, each read without its "-EMA" (ema_at()). */
static int ema_name_cmp(const char *a, const char *b)
{
        size_t ea = ema_at(a), eb = ema_at(b);

        for (size_t i = 0, j = 0;; i++, j++) {
                if (i == ea)
                        i += 4;
                if (j == eb)
                        j += 4;
                if (a[i] != b[j] || a[i] == '\0')
                        return (unsigned char)a[i] - (unsigned char)b[j];
        }
}

/* cand_cmp() for NeMo: X.ckpt, then X-EMA.ckpt, next to each other (the
 * one without "-EMA" first: it names the checkpoint). */
static int cand_cmp_ema(const void *x, const void *y, void *userdata)
{
        const struct scan_listing *l = userdata;
        const struct cand *a = x, *b = y;
        const char *na = l->v[a->idx].name, *nb = l->v[b->idx].name;
        int r = cand_key_cmp(a, b);

        if (r == 0)
                r = ema_name_cmp(na, nb);
        if (r == 0)
                r = (ema_at(na) != SIZE_MAX) - (ema_at(nb) != SIZE_MAX);
        return r != 0 ? r : (a->idx > b->idx) - (a->idx < b->idx);
}

/* Record the first failed read a checkpoint's verdict depends on. */
static void ckpt_error(struct ckpt *c, int error, enum read_what what)
{
        if (c->read_error != 0)
                return;
        /* an -errno, which fits read_error; anything else is -EIO, never 0 */
        c->read_error = (int16_t)(error < 0 && error > -4096 ? error : -EIO);
        c->read_what = what;
}

/* Whether the monitor's value in a name with fields f is the metric log's
 * to give, in a watch that ranks by name with a metric_log: absent from
 * the name, or 0, which Lightning writes for a metric not logged yet
 * (ModelCheckpoint fills a filename template's missing field so: every
 * save before the first validation is "val_loss=0.000"); epoch and step it
 * always has. */
static bool metric_in_log(const struct watch_conf *w, const struct fields *f)
{
        const char *monitor = w->policy.monitor;
        int i;

        if (w->metric_log.n == 0 || w->metric_source != METRIC_NAME || !monitor)
                return false;
        i = fields_find(f, monitor);
        return i < 0 || (f->value[i] == 0 && strcmp(monitor, "epoch") != 0 && strcmp(monitor, "step") != 0);
}

/* How far from 0 a value may be that the name's 0, as written at text
 * (len bytes, 0: not known), is rounded from: half its last decimal place
 * ("0.000": 0.0005); written with an exponent, only 0 itself. */
static double zero_tolerance(const char *text, size_t len)
{
        const char *dot = len > 0 ? memchr(text, '.', len) : NULL;
        double tol = 0.5;

        if (len > 0 && (memchr(text, 'e', len) || memchr(text, 'E', len)))
                return 0;
        for (const char *p = dot ? dot + 1 : text + len; p < text + len && *p >= '0' && *p <= '9'; p++)
                tol /= 10;
        /* the name rounded the binary value: a hair of slack */
        return tol * (1 + 1e-9);
}

/* A name's monitor of 0 (field i of f) read with the logs
 * (metriclog_set_zero()): 0 with *ret the value logged there; -ENOENT
 * filled in (no metric: ranked last); -EINVAL when it may be real or the
 * logs do not agree with it (kept, unranked); other -errno as a lookup. */
static int zero_from_log(const struct metriclog_set *logs, const struct fields *f, int i, const char *name,
                         double epoch, double step, double *ret)
{
        size_t len = (size_t)f->text_start[i] + f->text_len[i] <= strlen(name) ? f->text_len[i] : 0;
        double tol = zero_tolerance(name + f->text_start[i], len);
        int r = metriclog_set_zero(logs, epoch, step, tol, ret);

        return r == 1 ? 0 : r == 0 ? -ENOENT : r;
}

/* The monitor's value of checkpoint c: from its fields f, parsed from
 * name, or from the file or log its watch names. */
static int ckpt_metric(const struct scan_ctx *ctx, const struct fields *f, const char *name, struct ckpt *c,
                       int member_fd)
{
        const char *monitor = ctx->w->policy.monitor;
        enum read_what what = READ_WHAT_METRIC;
        double v, step = INFINITY;
        bool unsure = false, filled = false;
        int i, r = -ENOENT;

        if (!monitor)
                return 0;
        switch (ctx->w->metric_source) {
        case METRIC_NAME:
                /* "val_loss=tensor(0.1)", two values: one of them may be
                 * the best, and none can be ranked; the log, if any, says */
                unsure = fields_unsure(f, name, monitor);
                i = unsure ? -1 : fields_find(f, monitor);
                filled = i >= 0 && metric_in_log(ctx->w, f);
                if (i >= 0 && !filled) {
                        v = f->value[i];
                        r = 0;
                } else if (ctx->w->metric_log.n > 0 && ctx->logs) {
                        /* the training log, by epoch and step of the name;
                         * a log that exists but cannot be read, or that has
                         * not logged this checkpoint's epoch yet (EAGAIN),
                         * or begins after it (ENODATA: rows lost) keeps
                         * it; an absent log or value is ENOENT */
                        int e = fields_find(f, "epoch"), s = fields_find(f, "step");
                        if (!ctx->logs->loaded)
                                (void)metriclog_set_load(ctx->logs, ctx->dir_fd, &ctx->w->metric_log, monitor);
                        double epoch = e >= 0 ? f->value[e] : NAN, at = s >= 0 ? f->value[s] : NAN;
                        r = filled ? zero_from_log(ctx->logs, f, i, name, epoch, at, &v)
                                   : metriclog_set_lookup(ctx->logs, epoch, at, &v);
                        if (filled && r == -EINVAL) {
                                r = -EINVAL, what = READ_WHAT_METRIC_ZERO;
                        } else if (r < 0 && r != -ENOENT && r != -ENOMEM) {
                                ckpt_error(c, r,
                                           r == -EAGAIN    ? READ_WHAT_METRIC_LOG_UNLOGGED
                                           : r == -EBADMSG ? READ_WHAT_METRIC_LOG_DAMAGED
                                           : r == -ENODATA ? READ_WHAT_METRIC_LOG_BEHIND
                                                           : READ_WHAT_METRIC_LOG);
                                r = -ENOENT;
                        }
                }
                break;
        case METRIC_HF_STATE:
                if (member_fd < 0)
                        break;
                i = fields_find(f, "step");
                if (i >= 0)
                        step = f->value[i];
                r = metric_hf_state(member_fd, monitor, step, &v);
                break;
        case METRIC_JSON_FILE:
                if (member_fd < 0 || !ctx->w->metric_file || !*ctx->w->metric_file)
                        break;
                r = metric_json_file(member_fd, ctx->w->metric_file, monitor, &v);
                break;
        default: break;
        }
        if (unsure && r == -ENOENT)
                r = -EINVAL, what = READ_WHAT_METRIC_NAME;
        /* A missing file or entry (ENOENT) means "no metric": the policy
         * ranks such a checkpoint last. An unreadable or malformed one
         * (EINVAL) may hide the best: the checkpoint is kept, unranked. */
        if (r == -ENOMEM)
                return r;
        if (r == 0) {
                c->has_metric = true;
                c->metric = v;
        } else if (r != -ENOENT)
                ckpt_error(c, r, what);
        return 0;
}

/* 1 when the marker is there, 0 when not (ENOENT, or a path through a
 * symlink or a mount), -errno when nobody can tell. */
static int marker_present(int member_fd, const char *marker)
{
        /* O_PATH|O_NOFOLLOW: a marker that is a symlink still counts as
         * present (openat2(2) returns the link itself in that case). */
        int fd = openat_beneath(member_fd, marker, O_PATH | O_NOFOLLOW, 0);

        if (open_error_gone_or_replaced(fd))
                return 0;
        if (fd < 0)
                return fd;
        close(fd);
        return 1;
}

/* Fill checkpoint c from its members cands[0..n). Returns 0, 1 when a member
 * vanished or was replaced mid-scan (the checkpoint is dropped; the next
 * scan sees it), or -ENOMEM. */
static int ckpt_build(const struct scan_ctx *ctx, const struct cand *cands, size_t n, struct ckpt *c)
{
        const char *marker = ctx->w->complete_marker;
        /* equal in every member (cand_same_group()) */
        const struct fields *f = &cands[0].fields;
        bool need_marker = marker && *marker;
        const char *one, **names;
        bool marked = false;
        int metric_fd = -1, r = 0;
        int i;

        *c = (struct ckpt){};
        names = n == 1 ? &one : calloc(n, sizeof(*names));
        if (!names)
                return -ENOMEM;
        for (size_t k = 0; k < n; k++)
                names[k] = ctx->l->v[cands[k].idx].name;
        r = ckpt_init_names(c, names, n, f);
        if (names != &one)
                free(names);
        if (r < 0)
                return r;
        c->is_dir = cands[0].is_dir;
        c->dev = (uint32_t)ctx->l->v[cands[0].idx].st.st_dev;
        c->ino = ctx->l->v[cands[0].idx].st.st_ino;
        c->complete = true;
        c->linked = !c->is_dir;
        /* never from stat(2) (see struct ckpt.dev); were it, a cut one
         * could miss its flock pin: keep it instead */
        if (ctx->l->v[cands[0].idx].st.st_dev > UINT32_MAX)
                ckpt_error(c, -EOVERFLOW, READ_WHAT_INODE);

        for (size_t k = 0; k < n; k++) {
                const struct stat *st = &ctx->l->v[cands[k].idx].st;
                const char *name = ckpt_member(c, k);
                struct stat fst;
                int fd, flags, q;

                c->uid = k == 0 || st->st_uid == c->uid ? st->st_uid : UID_MIXED; /* run_decide() */
                c->size_bytes += (uint64_t)st->st_blocks * 512;
                if (st->st_nlink <= 1)
                        c->linked = false;
                if (stat_mtime_usec(st) > c->mtime_usec)
                        c->mtime_usec = stat_mtime_usec(st);

                /* A file is not opened here: its flock pin and whether it
                 * is in use are asked only if it is to be deleted, right
                 * before (verify.h); a scan never takes a lock a trainer
                 * could want. A directory is, for its tree and marker. */
                if (!c->is_dir)
                        continue;
                /* O_NONBLOCK: opening must never wait, for a FIFO or for the
                 * break of a lease (fcntl(2) F_SETLEASE) */
                flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_DIRECTORY;
                fd = openat_beneath(ctx->dir_fd, name, flags, 0);
                if (open_error_gone_or_replaced(fd)) {
                        r = 1; /* gone, or replaced by something else */
                        goto out;
                }
                if (fd == -ENOMEM) {
                        r = fd;
                        goto out;
                }
                /* EACCES, EIO, EMFILE...: its tree, its marker and its
                 * metric are unknown, so it is kept */
                if (fd < 0) {
                        ckpt_error(c, fd, READ_WHAT_IT);
                        continue;
                }
                if (fstat(fd, &fst) < 0) {
                        ckpt_error(c, -errno, READ_WHAT_INODE);
                        close(fd);
                        continue;
                }
                if (fst.st_dev != st->st_dev || fst.st_ino != st->st_ino) {
                        close(fd);
                        r = 1;
                        goto out;
                }
                if (c->is_dir) {
                        int tree_error = 0;

                        r = walk_tree(fd, ctx->mnt_id, &c->size_bytes, &c->mtime_usec, &tree_error);
                        if (r < 0) {
                                close(fd);
                                goto out;
                        }
                        if (tree_error < 0)
                                ckpt_error(c, tree_error, tree_error == -EXDEV ? READ_WHAT_TREE_MOUNT : READ_WHAT_TREE);
                        if (need_marker) {
                                q = marker_present(fd, marker);
                                if (q > 0)
                                        marked = c->marked = true;
                                else if (q < 0)
                                        ckpt_error(c, q, READ_WHAT_MARKER);
                                else if (ctx->w->require_marker)
                                        c->unmarked = true;
                        }
                }
                if (c->is_dir && metric_fd < 0)
                        metric_fd = fd;
                else
                        close(fd);
        }

        i = fields_find(f, "step");
        if (i >= 0) {
                c->order_source = ORDER_STEP;
        } else if ((i = fields_find(f, "epoch")) >= 0) {
                c->order_source = ORDER_EPOCH;
        } else {
                c->order_source = ORDER_MTIME;
                c->order = (double)c->mtime_usec / (double)USEC_PER_SEC;
        }
        if (i >= 0)
                c->order = f->value[i];

        /* Complete when the marker is there (HF trainer_state.json, DCP
         * .metadata), or when nothing changed within settle, unless the
         * marker is required: HF and DCP write theirs last and in place,
         * so without it quiet says nothing (a rank gathering its next
         * shard, a save that died); Orbax writes commit_success.txt only
         * where rename is not atomic (GCS). A clock step backwards makes
         * mtime look like the future: that reads as "changed within
         * settle", the safe side. */
        if (c->unmarked || (!marked && ctx->now_usec - c->mtime_usec < watch_settle_usec(ctx->w)))
                c->complete = false;

        r = ckpt_metric(ctx, f, ctx->l->v[cands[0].idx].name, c, metric_fd);
out:
        metric_fd = safe_close(metric_fd);
        if (r != 0)
                ckpt_finish(c);
        return r;
}

/* The last 8 bytes of a whole TensorFlow .index: the table footer's magic
 * number (tensorflow/core/lib/io/format.h, kTableMagicNumber, written as
 * two little-endian fixed32) after its two block handles. */
#define TF_INDEX_FOOTER_LEN 48
static const uint8_t tf_index_magic[8] = {0x57, 0xfb, 0x80, 0x8b, 0x24, 0x75, 0x47, 0xdb};

/* Whether each of c's members ending in suffix (one at least; a group of
 * two prefixes of one step, ckpt-8 and ckpt-08, may hold two) ends in a
 * whole table footer: one shorter, without it, or that cannot be read
 * (gone meanwhile too) is a save that died while writing it in place
 * (MergeBundles), or one under way. */
static bool index_whole(int run_fd, const struct ckpt *c, const char *suffix)
{
        bool any = false;

        for (size_t k = 0; k < c->n_members; k++) {
                const char *name = ckpt_member(c, k);
                size_t len = strlen(name), n = strlen(suffix);
                _cleanup_close_ int fd = -1;
                uint8_t tail[sizeof(tf_index_magic)];
                struct stat st;

                if (len <= n || strcmp(name + len - n, suffix) != 0)
                        continue;
                fd = open_file_at(run_fd, name, &st);
                if (fd < 0 || !S_ISREG(st.st_mode) || st.st_size < TF_INDEX_FOOTER_LEN ||
                    pread(fd, tail, sizeof(tail), st.st_size - (off_t)sizeof(tail)) != (ssize_t)sizeof(tail) ||
                    memcmp(tail, tf_index_magic, sizeof(tail)) != 0)
                        return false;
                any = true;
        }
        return any;
}

/* TensorFlow renames a prefix's .data files in before it writes its .index
 * (the preset's member_data and member_last; in place when it merges
 * shards), and writes a .data file for every prefix: only one with both,
 * its .index ending in a whole footer, is whole. One with only one of
 * them, or an .index cut short, past every whole prefix, is a save under
 * way or one that died, however quiet, and displaces nothing. One before a
 * whole one is what a removal cut short leaves (TensorFlow removes the
 * .index first, `rm ckpt-3.*` the .data): no save, decided as it is. A
 * group with neither (Keras's own ckpt-4.keras) is no bundle. The run is
 * sorted: the .index files are read from the newest down to the first
 * whole one. */
static void unindexed_by_run(const struct preset *p, int run_fd, struct run *run)
{
        double whole = -INFINITY;
        size_t at = SIZE_MAX;

        for (size_t i = run->n_ckpts; i-- > 0;) {
                struct ckpt *c = &run->ckpts[i];

                if (c->is_dir || !ckpt_has_member_with(c, p->member_data, false) ||
                    !ckpt_has_member_with(c, p->member_last, true))
                        continue;
                if (index_whole(run_fd, c, p->member_last)) {
                        whole = c->order;
                        at = i;
                        break;
                }
                c->member_cut = true;
        }
        for (size_t i = 0; i < run->n_ckpts; i++) {
                struct ckpt *c = &run->ckpts[i];

                if (c->is_dir || c->order < whole || i == at ||
                    (!ckpt_has_member_with(c, p->member_last, true) && !ckpt_has_member_with(c, p->member_data, false)))
                        continue;
                c->unmarked = true;
                c->complete = false;
        }
}

static int inode_cmp(const void *x, const void *y, void *userdata)
{
        const struct ckpt *v = userdata, *a = &v[*(const size_t *)x], *b = &v[*(const size_t *)y];

        if (a->dev != b->dev)
                return a->dev < b->dev ? -1 : 1;
        return (a->ino > b->ino) - (a->ino < b->ino);
}

/* Two checkpoint names of the run that are links to one file: its owner is
 * the file's, whoever made the other name, so one name could take another
 * checkpoint's place as best or newest (a user's link to someone else's
 * file in a shared directory, named to rank first). Neither takes a place:
 * both are kept, as after a failed read, and said. Only files with another
 * link (ckpt.linked) are looked at. */
static void shared_files_by_run(struct run *run)
{
        _cleanup_free_ size_t *v = NULL;
        size_t n = 0;

        for (size_t i = 0; i < run->n_ckpts; i++)
                n += run->ckpts[i].linked;
        if (n < 2)
                return;
        v = malloc(n * sizeof(*v));
        if (!v) {
                for (size_t i = 0; i < run->n_ckpts; i++)
                        if (run->ckpts[i].linked)
                                ckpt_error(&run->ckpts[i], -ENOMEM, READ_WHAT_SHARED);
                return;
        }
        n = 0;
        for (size_t i = 0; i < run->n_ckpts; i++)
                if (run->ckpts[i].linked)
                        v[n++] = i;
        qsort_r(v, n, sizeof(*v), inode_cmp, run->ckpts);
        for (size_t i = 0; i + 1 < n; i++)
                if (inode_cmp(&v[i], &v[i + 1], run->ckpts) == 0) {
                        ckpt_error(&run->ckpts[v[i]], -EMLINK, READ_WHAT_SHARED);
                        ckpt_error(&run->ckpts[v[i + 1]], -EMLINK, READ_WHAT_SHARED);
                }
}

static int ckpt_cmp(const void *x, const void *y)
{
        const struct ckpt *a = x, *b = y;
        int r = double_cmp(a->order, b->order);

        return r != 0 ? r : strcmp(a->name, b->name);
}

/* Names of the entries that may be runs of their own: directories on the
 * run's filesystem that are neither checkpoints nor temporary. */
struct pathv {
        char **v;
        size_t n, cap;
};

static void pathv_finish(struct pathv *p)
{
        for (size_t i = 0; i < p->n; i++)
                free(p->v[i]);
        free(p->v);
        *p = (struct pathv){};
}

/* Append s, taking ownership (freed on failure). */
static int pathv_push(struct pathv *p, char *s)
{
        if (!s)
                return -ENOMEM;
        if (p->n == p->cap) {
                size_t ncap = p->cap ? p->cap * 2 : 16;
                char **n = reallocarray(p->v, ncap, sizeof(*n));
                if (!n) {
                        free(s);
                        return -ENOMEM;
                }
                p->v = n;
                p->cap = ncap;
        }
        p->v[p->n++] = s;
        return 0;
}

static int scan_dir_auto(int run_fd, const char *run_path, const struct watch_conf *w, int64_t now_usec,
                         struct run *ret, struct pathv *ret_subdirs);

/* Orbax's {step} takes any numbered directory, a job's or a Hydra sweep's
 * as well: a run is Orbax's only where one of the directories its pattern
 * takes holds Orbax's marks. Elsewhere they are directories to look into,
 * none of them a checkpoint. */
static bool orbax_run(int run_fd, const struct watch_conf *w, const struct pattern *pat, const struct scan_listing *l)
{
        for (size_t i = 0; i < l->n; i++) {
                const struct scan_entry *e = &l->v[i];
                struct fields f;

                if (S_ISDIR(e->st.st_mode) && !scan_name_ignored(w, e->name) &&
                    scan_name_matches(w, pat, e->name, &f) && preset_orbax_marked(run_fd, e->name, w->complete_marker))
                        return true;
        }
        return false;
}

/* Whether the watch is Orbax's with a complete_marker it does not
 * require: its preset's, or one an operator set on an Orbax watch. A
 * watch told require_marker = false for another layout keeps the rule of
 * quiet alone. */
static bool marker_told_by_run(const struct watch_conf *w)
{
        return streq_ptr(w->preset, "orbax") && w->complete_marker && w->complete_marker[0] && !w->require_marker;
}

/* A marker the watch does not require (Orbax's commit_success.txt, which
 * it writes only where a rename is not atomic) still tells: the newest
 * directory without it, right after one that has it, is a save under way
 * (or one that died), and quiet says nothing. Only the newest: saves come
 * one after another, so one with a newer save after it is no save under
 * way; and a run copied from where the marker is written and resumed
 * where it is not has a line of unmarked saves after the marked ones,
 * each complete once quiet, as before. The run is sorted, newest last. */
static void unmarked_by_run(const struct watch_conf *w, struct run *run)
{
        struct ckpt *c;

        if (!marker_told_by_run(w) || run->n_ckpts < 2)
                return;
        c = &run->ckpts[run->n_ckpts - 1];
        if (c->is_dir && !c->marked && c->read_error == 0 && run->ckpts[run->n_ckpts - 2].marked) {
                c->unmarked = true;
                c->complete = false;
        }
}

static int scan_dir(int run_fd, const char *run_path, const struct watch_conf *w, const struct pattern *pat,
                    int64_t now_usec, struct run *ret, struct pathv *ret_subdirs)
{
        struct scan_listing l = {};
        struct metriclog_set logs = {};
        struct run run = {};
        struct cand *cands = NULL;
        size_t n_cands = 0, cap = 0;
        struct scan_ctx ctx;
        struct stat st;
        uint64_t mnt_id;
        const struct preset *preset;
        bool groups, ema, layout;
        int r;

        if (!w || !pat || !ret)
                return -EINVAL;
        if (streq_ptr(w->preset, "auto"))
                return scan_dir_auto(run_fd, run_path, w, now_usec, ret, ret_subdirs);
        run.path = strdup(run_path ? run_path : ".");
        if (!run.path)
                return -ENOMEM;
        /* A run that cannot be read is returned all the same, empty and
         * marked: nothing in it is decided until it reads again. */
        r = stat_mnt(run_fd, "", &st, &mnt_id);
        if (r == -ENOMEM)
                goto out;
        if (r < 0) {
                r = scan_run_error(&run, r, WHAT_RUN_DIR);
                goto done;
        }
        if (!S_ISDIR(st.st_mode)) {
                r = -ENOTDIR;
                goto out;
        }
        run.dev = st.st_dev;
        run.ino = st.st_ino;
        r = listing_read(run_fd, &run, &l);
        if (r == -ENOMEM)
                goto out;
        if (r < 0) {
                r = scan_run_error(&run, r, WHAT_RUN_LISTING);
                goto done;
        }
        /* a rank's part of a model-parallel save: its markers are beside
         * it, in the run above (not above the watch root: outside the
         * watch); one that cannot be read may mark any of them */
        const char *base = run_path ? strrchr(run_path, '/') : NULL;
        if (run_path && strcmp(run_path, ".") != 0 && scan_model_parallel_dir(base ? base + 1 : run_path)) {
                r = parent_markers_read(run_fd, &l);
                if (r == -ENOMEM)
                        goto out;
                if (r < 0) {
                        r = scan_run_error(&run, r, "the -unfinished markers beside it");
                        goto done;
                }
        }
        ctx = (struct scan_ctx){
                .dir_fd = run_fd, .mnt_id = mnt_id, .w = w, .now_usec = now_usec, .l = &l, .logs = &logs};

        layout = !streq_ptr(w->preset, "orbax") || orbax_run(run_fd, w, pat, &l);
        /* entries that pin other entries: scan_one() cannot see them */
        run.pin_sources = l.n_unfinished > 0 || l.up.n > 0;
        for (size_t i = 0; i < l.n; i++) {
                const struct scan_entry *e = &l.v[i];
                struct fields f;

                if (S_ISLNK(e->st.st_mode) || is_keep_name(e->name))
                        run.pin_sources = true;
                /* lstat: symlinks are never checkpoints nor runs; each is
                 * noted (struct run, links), whatever pattern its name
                 * matches: the daemon's and auto's detected one may differ */
                if (S_ISLNK(e->st.st_mode)) {
                        if (strv_push(&run.links, e->name) < 0) {
                                r = -ENOMEM;
                                goto out;
                        }
                        continue;
                }
                if (scan_name_ignored(w, e->name) || unfinished_marked(&l, e->name) || is_keep_name(e->name))
                        continue;
                /* a mount point in the run: another filesystem's root */
                if (e->mnt_id != mnt_id && e->mnt_id && mnt_id)
                        continue;
                if (layout && kind_fits(w->kind, e->st.st_mode) && scan_name_matches(w, pat, e->name, &f)) {
                        /* grown on demand: a run may hold 100k other files */
                        if (n_cands == cap) {
                                size_t ncap = cap ? cap * 2 : 16;
                                struct cand *nc = reallocarray(cands, ncap, sizeof(*nc));
                                if (!nc) {
                                        r = -ENOMEM;
                                        goto out;
                                }
                                cands = nc;
                                cap = ncap;
                        }
                        cands[n_cands++] = (struct cand){.idx = i, .is_dir = S_ISDIR(e->st.st_mode), .fields = f};
                        run.has_dirs = run.has_dirs || S_ISDIR(e->st.st_mode);
                } else if (ret_subdirs && S_ISDIR(e->st.st_mode)) {
                        r = pathv_push(ret_subdirs, strdup(e->name));
                        if (r < 0)
                                goto out;
                }
        }

        groups = pattern_groups(pat);
        ema = !groups && streq_ptr(w->preset, "nemo");
        preset = groups ? preset_find(w->preset) : NULL;
        if (groups && n_cands > 1)
                qsort(cands, n_cands, sizeof(*cands), cand_cmp);
        if (ema && n_cands > 1)
                qsort_r(cands, n_cands, sizeof(*cands), cand_cmp_ema, &l);
        /* with SCAN_ROOM_CKPTS more: the daemon adopts the array as its
         * index of the run, and growing it then would move every record,
         * holding the old copy beside the new one during start-up */
        run.ckpts = calloc(n_cands + SCAN_ROOM_CKPTS, sizeof(*run.ckpts));
        if (!run.ckpts) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < n_cands;) {
                size_t j = i + 1;

                while (groups && j < n_cands && cand_same_group(&cands[i], &cands[j]))
                        j++;
                /* X.ckpt and its X-EMA.ckpt: two at most */
                if (ema && j < n_cands && cand_same_group(&cands[i], &cands[j]) &&
                    ema_name_cmp(l.v[cands[i].idx].name, l.v[cands[j].idx].name) == 0)
                        j++;
                /* more files than a record holds: the whole run is kept */
                if (j - i > CKPT_MEMBERS_MAX) {
                        r = scan_run_error(&run, -E2BIG, "a checkpoint of %zu files", j - i);
                        if (r < 0)
                                goto out;
                        i = j;
                        continue;
                }
                r = ckpt_build(&ctx, cands + i, j - i, &run.ckpts[run.n_ckpts]);
                if (r < 0)
                        goto out;
                if (r == 0)
                        run.n_ckpts++;
                i = j;
        }
        if (run.n_ckpts > 1)
                qsort(run.ckpts, run.n_ckpts, sizeof(*run.ckpts), ckpt_cmp);
        unmarked_by_run(w, &run);
        if (preset && preset->member_last)
                unindexed_by_run(preset, run_fd, &run);
        shared_files_by_run(&run);

        pins_keep_files(&l, &run);
        r = pins_symlinks(run_fd, &l, &run);
        if (r >= 0)
                r = pins_pointer_files(run_fd, &w->pointer_files, now_usec, watch_settle_usec(w), &run);
        if (r >= 0 && (w->metric_source == METRIC_HF_STATE || streq_ptr(w->preset, "huggingface")))
                r = pins_hf_best(run_fd, &run);
done:
        if (r < 0)
                goto out;
        run.metric_logged = logs.loaded;
        /* Whatever could not be read may pin any checkpoint of the run. */
        if (run.read_error != 0)
                for (size_t i = 0; i < run.n_ckpts; i++)
                        ckpt_error(&run.ckpts[i], run.read_error, READ_WHAT_RUN);
        *ret = run;
        run = (struct run){};
        r = 0;
out:
        free(cands);
        metriclog_set_finish(&logs);
        listing_finish(&l);
        run_finish(&run);
        return r;
}

/* A strv over static or borrowed strings, for a watch_conf that is never
 * finished: the first n of a, then the NULL-terminated b. */
static int strv_borrow(struct strv *ret, const struct strv *a, const char *const *b, size_t nb)
{
        size_t n = a ? a->n : 0, m = 0;

        ret->v = calloc(n + nb + 1, sizeof(*ret->v));
        if (!ret->v)
                return -ENOMEM;
        ret->cap = n + nb + 1;
        for (size_t i = 0; i < n; i++)
                ret->v[m++] = a->v[i];
        for (size_t i = 0; i < nb && b[i]; i++)
                ret->v[m++] = (char *)b[i];
        ret->n = m;
        return 0;
}

/* preset "auto": the run's layout is detected from its entries, and the run
 * scanned as that preset would with the watch's own policy, excludes and
 * metric_log. A run of no known layout is scanned for subdirectories only:
 * none of its entries is a checkpoint, so nothing in it is touched. */
static int scan_dir_auto(int run_fd, const char *run_path, const struct watch_conf *w, int64_t now_usec,
                         struct run *ret, struct pathv *ret_subdirs)
{
        static const char *const match_none[] = {"/", NULL}; /* no entry name holds a '/' */
        struct scan_listing l = {};
        struct run probe = {};
        struct watch_conf dw = *w;
        struct strv excl = {}, ptrs = {}, match = {}, logs = {};
        struct pattern *pat = NULL;
        const struct preset *p = NULL;
        const char *why = "the run could not be listed", *err = NULL;
        char **names = NULL;
        bool *dirs = NULL;
        size_t n = 0;
        int r;

        r = listing_read(run_fd, &probe, &l);
        if (r == -ENOMEM)
                goto out;
        if (r == 0) {
                names = calloc(l.n ? l.n : 1, sizeof(*names));
                dirs = calloc(l.n ? l.n : 1, sizeof(*dirs));
                if (!names || !dirs) {
                        r = -ENOMEM;
                        goto out;
                }
                for (size_t i = 0; i < l.n; i++) {
                        if (S_ISLNK(l.v[i].st.st_mode) || scan_name_ignored(w, l.v[i].name))
                                continue;
                        names[n] = l.v[i].name;
                        dirs[n++] = S_ISDIR(l.v[i].st.st_mode);
                }
                p = preset_detect(run_fd, names, dirs, n, &why);
        }
        /* else the scan below meets the same failure and marks the run */

        dw.preset = p ? (char *)p->name : NULL;
        dw.pattern = p ? (char *)p->pattern : NULL;
        dw.kind = p ? p->kind : KIND_ANY;
        dw.metric_source = p ? p->metric_source : METRIC_NAME;
        dw.metric_file = p ? (char *)p->metric_file : NULL;
        dw.complete_marker = p ? (char *)p->complete_marker : NULL;
        dw.require_marker = p && p->require_marker && w->require_marker;
        if ((r = strv_borrow(&excl, &w->exclude, p ? p->exclude : NULL, p ? ELEMENTSOF(p->exclude) : 0)) < 0 ||
            (r = strv_borrow(&ptrs, NULL, p ? p->pointer_files : NULL, p ? ELEMENTSOF(p->pointer_files) : 0)) < 0 ||
            (r = strv_borrow(&match, NULL, p ? p->match : match_none, p ? ELEMENTSOF(p->match) : 1)) < 0 ||
            (r = strv_borrow(&logs, w->metric_log.n > 0 ? &w->metric_log : NULL,
                             w->metric_log.n > 0 || !p ? NULL : p->metric_log,
                             w->metric_log.n > 0 || !p ? 0 : ELEMENTSOF(p->metric_log))) < 0)
                goto out;
        dw.exclude = excl;
        dw.pointer_files = ptrs;
        dw.match = match;
        dw.metric_log = logs;
        if (dw.pattern)
                r = watch_pattern_compile(&dw, &pat, &err);
        else
                r = pattern_new_kv(w->key_separator, w->join, &pat);
        if (r < 0)
                goto out;
        r = scan_dir(run_fd, run_path, &dw, pat, now_usec, ret, ret_subdirs);
        if (r == 0) {
                ret->detected = p != NULL;
                ret->preset = p ? p->name : NULL;
                ret->preset_why = why;
        }
out:
        pattern_free(pat);
        free(excl.v);
        free(ptrs.v);
        free(match.v);
        free(logs.v);
        free(names);
        free(dirs);
        listing_finish(&l);
        run_finish(&probe);
        return r;
}

int scan_run(int run_fd, const char *run_path, const struct watch_conf *w, const struct pattern *pat, int64_t now_usec,
             struct run *ret)
{
        return scan_dir(run_fd, run_path, w, pat, now_usec, ret, NULL);
}

bool scan_incremental(const struct watch_conf *w, const struct pattern *pat)
{
        /* groups span names (NeMo's X-EMA.ckpt is one with X.ckpt);
         * pointer files and HF's trainer_state.json
         * pin or rank by what other entries say; a metric_file lies inside
         * a directory checkpoint that is not watched once complete, so
         * rewriting it raises no event of the run; "auto" decides the
         * layout from all the entries at once, and so do Orbax's marks
         * (orbax_run(), unmarked_by_run()).
         * (A metric log ranks only
         * the names without the monitor: scan_one() leaves those to a
         * scan of the whole run, see struct run, metric_logged.) */
        return !pattern_groups(pat) && w->pointer_files.n == 0 && w->metric_source != METRIC_HF_STATE &&
               w->metric_source != METRIC_JSON_FILE && !streq_ptr(w->preset, "huggingface") &&
               !streq_ptr(w->preset, "auto") && !streq_ptr(w->preset, "orbax") && !streq_ptr(w->preset, "nemo");
}

bool scan_unfinished_marker(const char *name)
{
        return scan_has_suffix(name, strlen(name), UNFINISHED_SUFFIX);
}

bool scan_name_pins(const char *name)
{
        return is_keep_name(name) || scan_unfinished_marker(name);
}

int scan_one(int run_fd, uint64_t run_mnt_id, const char *name, const struct watch_conf *w, const struct pattern *pat,
             int64_t now_usec, struct ckpt *ret)
{
        struct scan_entry e = {.name = (char *)name};
        struct scan_listing l = {.v = &e, .n = 1};
        struct cand cand = {};
        struct scan_ctx ctx;
        struct stat st;
        uint64_t mnt_id;
        int r;

        if (!w || !pat || !name || !ret)
                return -EINVAL;
        if (!scan_incremental(w, pat) || scan_name_pins(name))
                return -EAGAIN;
        mnt_id = run_mnt_id;
        if (mnt_id == 0) {
                r = stat_mnt(run_fd, "", &st, &mnt_id);
                if (r < 0)
                        return r;
        }
        r = stat_mnt(run_fd, name, &e.st, &e.mnt_id);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (S_ISLNK(e.st.st_mode))
                return -EAGAIN; /* a symlink pin */
        if (scan_name_ignored(w, name) || (e.mnt_id != mnt_id && e.mnt_id && mnt_id) ||
            !kind_fits(w->kind, e.st.st_mode) || !scan_name_matches(w, pat, name, &cand.fields))
                return 0;
        if (metric_in_log(w, &cand.fields))
                return -EAGAIN; /* its metric is in the log */
        cand.is_dir = S_ISDIR(e.st.st_mode);
        ctx = (struct scan_ctx){.dir_fd = run_fd, .mnt_id = mnt_id, .w = w, .now_usec = now_usec, .l = &l};
        r = ckpt_build(&ctx, &cand, 1, ret);
        if (r < 0)
                return r;
        return r == 0 ? 1 : 0; /* 1 from ckpt_build: gone mid-scan */
}

int scan_root(int root_fd, const struct watch_conf *w, const struct pattern *pat, int64_t now_usec,
              struct run **ret_runs, size_t *ret_n)
{
        return scan_root_visit(root_fd, w, pat, now_usec, NULL, NULL, ret_runs, ret_n);
}

int scan_root_visit(int root_fd, const struct watch_conf *w, const struct pattern *pat, int64_t now_usec,
                    scan_visit_fn *visit, void *userdata, struct run **ret_runs, size_t *ret_n)
{
        struct pathv stack = {}, subdirs = {};
        struct run *runs = NULL;
        size_t n = 0, cap = 0;
        int r;

        if (!w || !pat || !ret_runs || !ret_n)
                return -EINVAL;
        r = pathv_push(&stack, strdup("."));
        if (r < 0)
                return r;
        /* Pre-order, children in name order: a parent precedes its runs. */
        while (stack.n > 0) {
                _cleanup_free_ char *path = stack.v[--stack.n];
                bool is_root = streq_ptr(path, ".");
                int fd;

                if (n == cap) {
                        size_t ncap = cap ? cap * 2 : 8;
                        struct run *nr = reallocarray(runs, ncap, sizeof(*nr));
                        if (!nr) {
                                r = -ENOMEM;
                                goto fail;
                        }
                        runs = nr;
                        cap = ncap;
                }
                /* A directory below the root that vanished, became a symlink
                 * (ELOOP) or turned into a mount point (EXDEV) is skipped.
                 * One that cannot be opened otherwise (EACCES, EIO, EMFILE,
                 * ENAMETOOLONG) is returned as an unreadable run, so that it
                 * is reported and kept. The root itself must scan. */
                fd = openat_beneath(root_fd, path, O_RDONLY | O_DIRECTORY | O_NOCTTY, 0);
                if (fd < 0) {
                        r = fd;
                        if (is_root || r == -ENOMEM)
                                goto fail;
                        if (open_error_gone_or_replaced(r))
                                continue;
                        r = run_init_unreadable(&runs[n], path, r, WHAT_RUN_DIR);
                        if (r < 0)
                                goto fail;
                        n++;
                        continue;
                }
                /* before the listing: what changes after it is news */
                r = visit ? visit(fd, path, userdata) : 0;
                if (r < 0) {
                        close(fd);
                        goto fail;
                }
                r = scan_dir(fd, path, w, pat, now_usec, &runs[n], w->recursive ? &subdirs : NULL);
                close(fd);
                /* a root that cannot be listed fails the scan: nothing at
                 * all could be decided, and the caller says so */
                if (r == 0 && is_root && runs[n].read_error != 0 &&
                    (streq_ptr(runs[n].read_what, WHAT_RUN_DIR) || streq_ptr(runs[n].read_what, WHAT_RUN_LISTING))) {
                        r = runs[n].read_error;
                        run_finish(&runs[n]);
                }
                if (r < 0) {
                        pathv_finish(&subdirs);
                        if (is_root || r == -ENOMEM)
                                goto fail;
                        continue;
                }
                n++;
                for (size_t k = subdirs.n; k > 0; k--) {
                        r = pathv_push(&stack, path_join(path, subdirs.v[k - 1], NULL));
                        if (r < 0) {
                                pathv_finish(&subdirs);
                                goto fail;
                        }
                }
                pathv_finish(&subdirs);
        }
        pathv_finish(&stack);
        *ret_runs = runs;
        *ret_n = n;
        return 0;
fail:
        pathv_finish(&stack);
        runs_free(runs, n);
        return r;
}
