/* Pins that come from other entries of a run: "<name>.keep" files, symlinks
 * (Lightning's save_last="link"), pointer files (DeepSpeed `latest`,
 * Megatron's tracker) and HF's best_model_checkpoint. Reads go through
 * openat_beneath(); nothing here follows a symlink. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "fsutil.h"
#include "metricfile.h"
#include "scan_pins.h"
#include "verify.h"

/* The checkpoint with a member named by the len bytes at name, or NULL. */
static struct ckpt *find_by_member(struct run *run, const char *name, size_t len)
{
        for (size_t i = 0; i < run->n_ckpts; i++)
                for (size_t k = 0; k < run->ckpts[i].n_members; k++) {
                        const char *m = ckpt_member(&run->ckpts[i], k);

                        if (strlen(m) == len && memcmp(m, name, len) == 0)
                                return &run->ckpts[i];
                }
        return NULL;
}

/* Whether keep file "<stem>.keep" names c: a member ("epoch=3.ckpt.keep",
 * "checkpoint-500.keep"), or the common stem of its files ("ckpt-7.keep"
 * for ckpt-7.index + ckpt-7.data-00000-of-00001). */
static bool keep_names(const struct ckpt *c, const char *stem, size_t len)
{
        bool all_prefixed = true;

        for (size_t k = 0; k < c->n_members; k++) {
                const char *m = ckpt_member(c, k);

                if (strlen(m) == len && memcmp(m, stem, len) == 0)
                        return true;
                if (strncmp(m, stem, len) != 0 || m[len] != '.')
                        all_prefixed = false;
        }
        return all_prefixed && !c->is_dir;
}

void pins_keep_files(const struct scan_listing *l, struct run *run)
{
        for (size_t i = 0; i < l->n; i++) {
                const char *name = l->v[i].name;
                size_t len = strlen(name);

                if (!scan_has_suffix(name, len, KEEP_SUFFIX) || len == strlen(KEEP_SUFFIX))
                        continue;
                len -= strlen(KEEP_SUFFIX);
                for (size_t j = 0; j < run->n_ckpts; j++)
                        if (keep_names(&run->ckpts[j], name, len))
                                run->ckpts[j].pins |= 1u << PIN_KEEPFILE;
        }
}

/* Whether "<stem>.keep" is in the run at run_fd, stem the len bytes at
 * stem: 1, 0, or -errno. */
static int keep_file_exists(int run_fd, const char *stem, size_t len)
{
        char name[NAME_MAX + 1];
        struct stat st;

        if (len + strlen(KEEP_SUFFIX) > NAME_MAX)
                return 0; /* no such name can exist */
        memcpy(name, stem, len);
        memcpy(name + len, KEEP_SUFFIX, sizeof(KEEP_SUFFIX));
        if (fstatat(run_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        return 1;
}

int scan_keep_file_for(int run_fd, const struct ckpt *c)
{
        const char *m0 = c->n_members > 0 ? ckpt_member(c, 0) : NULL;
        int r = 0;

        /* the stems keep_names() can take: each member, and each prefix of
         * the first member that ends before one of its dots */
        for (size_t k = 0; k < c->n_members && r == 0; k++)
                r = keep_file_exists(run_fd, ckpt_member(c, k), strlen(ckpt_member(c, k)));
        for (const char *p = m0 ? strchr(m0, '.') : NULL; p && r == 0; p = strchr(p + 1, '.'))
                if (p > m0 && keep_names(c, m0, (size_t)(p - m0)))
                        r = keep_file_exists(run_fd, m0, (size_t)(p - m0));
        return r;
}

/* Pin what the target of symlink name in the run names (pins_symlinks()):
 * how many it pins, or -errno (-ENOENT: gone, -EINVAL: no symlink). */
static int symlink_pin(int run_fd, const char *name, struct run *run)
{
        char target[PATH_MAX];
        const char *p = target;
        ssize_t k = readlinkat(run_fd, name, target, sizeof(target));
        int n = 0;

        if (k < 0)
                return -errno; /* ENOENT: vanished since the listing */
        /* a symlink's target is shorter than PATH_MAX (symlink(2):
         * ENAMETOOLONG), so a full buffer is a foreign filesystem's
         * oddity: no name of ours */
        if ((size_t)k >= sizeof(target))
                return 0;
        target[k] = '\0';
        for (size_t len; *p; p += len) {
                struct ckpt *c;

                p += strspn(p, "/");
                len = strcspn(p, "/");
                if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
                        continue;
                c = find_by_member(run, p, len);
                if (c) {
                        c->pins |= 1u << PIN_SYMLINK;
                        n++;
                }
        }
        return n;
}

/* A symlink in the run pins every checkpoint of the run that a component
 * of its target names: "x", "./x", "x/" or a path into x pin x, as
 * Lightning's save_last="link" writes last.ckpt -> epoch=3-step=100.ckpt;
 * so do "/data/runs/a/x" and "../a/x". The target is read, never followed:
 * the run's absolute path is not ours to trust, and a path through ".."
 * or another directory may lead back into the run. A component that only
 * happens to name a checkpoint of the run pins it too: at worst one kept
 * too many. Symlinks count whatever their own name (last*.ckpt is
 * excluded by the preset). */
int pins_symlinks(int run_fd, const struct scan_listing *l, struct run *run)
{
        for (size_t i = 0; i < l->n; i++) {
                const struct scan_entry *e = &l->v[i];
                int k;

                if (!S_ISLNK(e->st.st_mode))
                        continue;
                k = symlink_pin(run_fd, e->name, run);
                /* unreadable, it may point at any checkpoint of the run */
                if (k < 0 && k != -ENOENT && scan_run_error(run, k, "symlink %s", e->name) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static bool is_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Whether the len bytes at s hold a control character (a line's end too). */
static bool has_control(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return true;
        return false;
}

/* The checkpoint a TF path names: "ckpt-7" (or ".../ckpt-7", written
 * absolute by older savers) is the prefix of ckpt-7.index and
 * ckpt-7.data-00000-of-00001. */
static struct ckpt *find_by_prefix(struct run *run, const char *path, size_t len)
{
        size_t blen;
        const char *base = path_last(path, len, false, &blen);

        if (blen == 0)
                return NULL;
        for (size_t i = 0; i < run->n_ckpts; i++)
                if (keep_names(&run->ckpts[i], base, blen))
                        return &run->ckpts[i];
        return NULL;
}

/* Whether buf holds a text-format CheckpointState (TF's `checkpoint`). */
static bool is_tf_state(const char *buf, size_t len)
{
        static const char key[] = "model_checkpoint_path";

        return len >= sizeof(key) - 1 && memmem(buf, len, key, sizeof(key) - 1) != NULL;
}

/* Pin what a CheckpointState names, one `key: "value"` per line:
 * model_checkpoint_path (the latest) and all_model_checkpoint_paths (the
 * ones TF still manages); timestamps and other keys are skipped. A value
 * with an escape other than \\ \" \' cannot be told apart from another
 * name: -EBADMSG, and the run keeps everything. */
static int pin_tf_state(struct run *run, char *buf, size_t len)
{
        char *line = buf, *end = buf + len;

        while (line < end) {
                char *nl = memchr(line, '\n', (size_t)(end - line));
                char *eol = nl ? nl : end, *p = line, *key, *v, *w;
                size_t klen;
                struct ckpt *c;
                char quote;

                while (p < eol && is_space(*p))
                        p++;
                key = p;
                while (p < eol && *p != ':' && !is_space(*p))
                        p++;
                klen = (size_t)(p - key);
                while (p < eol && (is_space(*p) || *p == ':'))
                        p++;
                line = nl ? nl + 1 : end;
                if (!((klen == 21 && memcmp(key, "model_checkpoint_path", 21) == 0) ||
                      (klen == 26 && memcmp(key, "all_model_checkpoint_paths", 26) == 0)))
                        continue;
                if (p >= eol || (*p != '"' && *p != '\''))
                        return -EBADMSG;
                /* unescape in place; the closing quote must match */
                quote = *p;
                v = w = p + 1;
                for (p = v; p < eol && *p != quote; p++) {
                        if (*p == '\\') {
                                if (p + 1 >= eol || (p[1] != '\\' && p[1] != '"' && p[1] != '\''))
                                        return -EBADMSG;
                                p++;
                        }
                        *w++ = *p;
                }
                if (p >= eol)
                        return -EBADMSG;
                c = find_by_prefix(run, v, (size_t)(w - v));
                if (c)
                        c->pins |= 1u << PIN_POINTER;
        }
        return 0;
}

/* Pointer files name a checkpoint (DeepSpeed "latest": global_step1000, or a
 * path whose basename is one) or hold its order value (Megatron
 * latest_checkpointed_iteration.txt: 1000 for iter_0001000). Only ENOENT
 * means "no pointer". A symlink is not followed: it pins as a symlink
 * (its target naming a checkpoint, as `latest -> global_step1000`), and
 * one whose target names none (a restore point kept elsewhere, a checkout
 * of DVC or git-annex) may hold any name, so it marks the run, as a
 * mount point does. Any other error (EIO, EACCES, EMFILE, a directory, a
 * FIFO, a file too large to be a name) marks the run: the pointer may
 * name any of its checkpoints. So does one that holds nothing (ENODATA),
 * a NUL or another control character (EBADMSG: a name is one line of
 * text): a trainer rewrites it in place (DeepSpeed and Megatron open it
 * with "w"), and a read between the truncation and the write must not
 * unpin what it names. Nor must a read between two of its writes: one open
 * for writing by another process (a read lease refused, verify.h) marks
 * the run too (EBUSY), and one that is not stays so while it is read (or
 * is found opened so after, the lease broken); one closed between them
 * names none of the run's, written within settle (EAGAIN). Its close is an
 * event of the run, which reads it again. */
/* A pointer file is written after the save it names (DeepSpeed's latest
 * once every rank's shards are, Megatron's tracker after its barrier,
 * TensorFlow's state after the files): the newest checkpoint, ordered past
 * everything the pointers name and written since they were, is a save under
 * way (or one that died), however quiet. Only the newest, as with Orbax's
 * marks: one with a newer save after it is no save under way. A pointer
 * written after it (a restore point set by hand) or naming nothing in the
 * run says nothing. */
static void pins_unpointed(struct run *run, int64_t pointers_mtime_usec)
{
        double named = -INFINITY;
        struct ckpt *c;

        if (run->n_ckpts == 0 || run->read_error != 0)
                return;
        for (size_t i = 0; i < run->n_ckpts; i++) {
                const struct ckpt *p = &run->ckpts[i];

                if ((p->pins & (1u << PIN_POINTER)) && p->order_source != ORDER_MTIME && p->order > named)
                        named = p->order;
        }
        c = &run->ckpts[run->n_ckpts - 1];
        if (named == -INFINITY || c->order_source == ORDER_MTIME || (c->pins & (1u << PIN_POINTER)) ||
            !(c->order > named) || c->mtime_usec <= pointers_mtime_usec || c->read_error != 0)
                return;
        c->unmarked = true;
        c->complete = false;
}

/* A pointer file modified this far after now is still "just now" (clocks
 * apart: a network filesystem's server); further, its time says nothing. */
#define POINTER_SKEW_USEC ((int64_t)(60 * USEC_PER_SEC))

/* Whether what a pointer file holds, naming no checkpoint of a run holding
 * only the victim (pins_pointer_names()), names another of the run: a name
 * by its last part, looked up beneath run_fd (a save not decided yet is
 * there too); a number (Megatron's tracker) by the orders of the run as
 * decided (view), or past all of them: a new save. A number below them
 * that names none may be a part of a longer one ("1" of "10"). 1, 0, or
 * -errno. */
static int pointer_names_other(int run_fd, const struct run *view, const char *s, size_t len, bool number, double v)
{
        struct stat st;
        size_t blen;

        if (number) {
                double newest = -INFINITY;

                for (size_t j = 0; j < view->n_ckpts; j++) {
                        const struct ckpt *c = &view->ckpts[j];

                        if (c->order_source == ORDER_MTIME)
                                continue;
                        if (c->order == v)
                                return 1;
                        if (c->order > newest)
                                newest = c->order;
                }
                return v > newest;
        }
        const char *base = path_last(s, len, false, &blen);
        if (blen == 0 || (base[0] == '.' && (blen == 1 || (base[1] == '.' && blen == 2))))
                return 0;
        _cleanup_free_ char *name = strndup(base, blen);
        if (!name)
                return -ENOMEM;
        if (fstatat(run_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return 1;
        return errno == ENOENT || errno == ENOTDIR || errno == ENAMETOOLONG ? 0 : -errno;
}

/* Whether a checkpoint of r other than except has a name that the name
 * name[0..len) begins and does not end ("global_step3" of "global_step30"),
 * or, for a number, an order whose digits do ("3" of 30): what a pointer
 * written just now names may be a part of that one's name. */
static bool pointer_extended(const struct run *r, const struct ckpt *except, const char *name, size_t len, bool number)
{
        char digits[32];

        for (size_t i = 0; i < r->n_ckpts; i++) {
                const struct ckpt *c = &r->ckpts[i];
                const char *m = ckpt_member(c, 0);

                if (c == except)
                        continue;
                if (number) {
                        if (c->order_source == ORDER_MTIME || !(c->order >= 0 && c->order < 1e15) ||
                            c->order != floor(c->order))
                                continue;
                        snprintf(digits, sizeof(digits), "%.0f", c->order);
                        m = digits;
                }
                if (strlen(m) > len && memcmp(m, name, len) == 0)
                        return true;
        }
        return false;
}

/* view: the run as decided, where run holds only its victim
 * (pins_pointer_names()): a name of none of run is looked for there and
 * beneath run_fd */
static int pointer_files(int run_fd, const struct strv *files, int64_t now_usec, int64_t settle_usec,
                         const struct run *view, struct run *run)
{
        int64_t pointers_mtime_usec = INT64_MIN;

        for (size_t i = 0; i < files->n; i++) {
                _cleanup_free_ char *buf = NULL;
                _cleanup_close_ int fd = -1;
                struct stat st;
                char *s, *end;
                struct ckpt *c;
                size_t len = 0;
                bool leased;
                int r;

                fd = open_file_at(run_fd, files->v[i], &st);
                /* a trainer may write it in more than one write(2): a part
                 * ("global_", or "10" of "100") may name another checkpoint
                 * or none */
                r = fd < 0 ? fd : 0;
                leased = false;
                if (r == 0 && S_ISREG(st.st_mode)) {
                        r = verify_fd_writer(fd);
                        leased = r == 0;
                        if (verify_lease_fallback(r, st.st_dev))
                                r = 0; /* read as it stands */
                }
                if (r == 0)
                        r = read_fd_all(fd, &st, POINTER_FILE_MAX, &buf, &len);
                /* opened for writing while read: the lease's break
                 * outlasted its wait */
                if (r == 0 && leased) {
                        int k = verify_fd_lease_kept(fd);
                        r = k < 0 ? k : !k;
                }
                if (r == 1) { /* open for writing */
                        if (scan_run_error(run, -EBUSY, "pointer file %s (open for writing)", files->v[i]) < 0)
                                return -ENOMEM;
                        continue;
                }
                if (r == -ELOOP) {
                        /* its target names a checkpoint: pinned as a
                         * symlink; names none (or is no symlink now, read
                         * again at its event): it is not read */
                        r = symlink_pin(run_fd, files->v[i], run);
                        if (r > 0)
                                continue;
                        if (r == 0 || r == -EINVAL)
                                r = -ELOOP;
                }
                if (r == -ENOENT || r == -ENOTDIR)
                        continue;
                if (r == -ELOOP || r == -EXDEV) {
                        if (scan_run_error(run, r, "pointer file %s (%s, not followed)", files->v[i],
                                           r == -ELOOP ? "a symlink naming no checkpoint" : "a mount point") < 0)
                                return -ENOMEM;
                        continue;
                }
                if (r < 0) {
                        if (scan_run_error(run, r, "pointer file %s", files->v[i]) < 0)
                                return -ENOMEM;
                        continue;
                }
                if (stat_mtime_usec(&st) > pointers_mtime_usec)
                        pointers_mtime_usec = stat_mtime_usec(&st);
                /* a UTF-8 byte-order mark, as some editors and Windows tools
                 * write, is not part of the name */
                s = buf;
                if (len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) {
                        s += 3;
                        len -= 3;
                }
                if (memchr(s, '\0', len)) {
                        if (scan_run_error(run, -EBADMSG, "pointer file %s", files->v[i]) < 0)
                                return -ENOMEM;
                        continue;
                }
                if (is_tf_state(s, len)) {
                        r = pin_tf_state(run, s, len);
                        if (r < 0 && scan_run_error(run, r, "pointer file %s", files->v[i]) < 0)
                                return -ENOMEM;
                        continue;
                }
                while (len > 0 && is_space(s[len - 1]))
                        len--;
                while (len > 0 && is_space(*s)) {
                        s++;
                        len--;
                }
                if (len == 0) { /* empty, or blanks only */
                        if (scan_run_error(run, -ENODATA, "pointer file %s", files->v[i]) < 0)
                                return -ENOMEM;
                        continue;
                }
                if (has_control(s, len)) { /* no name of one line: torn, or not a pointer */
                        if (scan_run_error(run, -EBADMSG, "pointer file %s", files->v[i]) < 0)
                                return -ENOMEM;
                        continue;
                }
                s[len] = '\0';

                size_t blen = len;
                const char *base = s, *unsure = "naming no checkpoint";
                /* written just now: its writer may be between two writes */
                bool recent = settle_usec > 0 && stat_mtime_usec(&st) >= now_usec - settle_usec &&
                              stat_mtime_usec(&st) <= now_usec + POINTER_SKEW_USEC;

                c = find_by_member(run, s, len);
                if (!c) {
                        base = path_last(s, len, false, &blen);
                        if (blen > 0)
                                c = find_by_member(run, base, blen);
                }
                errno = 0;
                double v = c ? 0 : strtod(s, &end);
                bool named = c != NULL, number = !c && errno == 0 && end == s + len && isfinite(v);
                if (c)
                        c->pins |= 1u << PIN_POINTER;
                if (number)
                        for (size_t j = 0; j < run->n_ckpts; j++)
                                if (run->ckpts[j].order_source != ORDER_MTIME && run->ckpts[j].order == v) {
                                        run->ckpts[j].pins |= 1u << PIN_POINTER;
                                        named = true;
                                }
                /* quiet for settle, a name of none says nothing (what it
                 * named was removed by hand, say) */
                if (!recent || run->n_ckpts == 0)
                        continue;
                if (named) {
                        /* "global_step3" of "global_step30": the victim's
                         * check asks this of the victim, below */
                        if (view || !pointer_extended(run, c, number ? s : base, number ? len : blen, number))
                                continue;
                        unsure = "naming a part of another checkpoint's name";
                } else {
                        /* "global_" of "global_step10" */
                        r = view ? pointer_names_other(run_fd, view, s, len, number, v) : 0;
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0 && scan_run_error(run, r, "pointer file %s", files->v[i]) < 0)
                                return -ENOMEM;
                        if (r < 0)
                                continue;
                        if (r > 0) {
                                /* another, whose name is a part of the victim's */
                                if (!pointer_extended(run, NULL, number ? s : base, number ? len : blen, number))
                                        continue;
                                unsure = "naming a part of another checkpoint's name";
                        }
                }
                if (stat_mtime_usec(&st) + settle_usec > run->pointer_quiet_usec)
                        run->pointer_quiet_usec = stat_mtime_usec(&st) + settle_usec;
                if (scan_run_error(run, -EAGAIN, "pointer file %s (written just now, %s)", files->v[i], unsure) < 0)
                        return -ENOMEM;
        }
        if (!view)
                pins_unpointed(run, pointers_mtime_usec);
        return 0;
}

int pins_pointer_files(int run_fd, const struct strv *files, int64_t now_usec, int64_t settle_usec, struct run *run)
{
        return pointer_files(run_fd, files, now_usec, settle_usec, NULL, run);
}

int pins_pointer_names(int run_fd, const struct strv *files, const struct run *view, const struct ckpt *c,
                       int64_t now_usec, int64_t settle_usec)
{
        for (size_t i = 0; i < files->n; i++) {
                struct ckpt one = *c; /* a copy of its record: its block is only read */
                struct run run = {.ckpts = &one, .n_ckpts = 1};
                struct strv file = {.v = &files->v[i], .n = 1};
                struct stat st;
                int r;

                one.pins = 0;
                /* a symlink pins by its target, which may name another
                 * checkpoint of the run (one naming none kept the run
                 * whole at its decision) */
                if (fstatat(run_fd, files->v[i], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) {
                        r = symlink_pin(run_fd, files->v[i], &run);
                        if (r < 0 && r != -ENOENT && r != -EINVAL)
                                return r;
                        if (r > 0)
                                return 1;
                        continue;
                }
                /* one checkpoint: a name of another is looked for in view
                 * and on disk, and one of nothing written within settle
                 * keeps c */
                r = pointer_files(run_fd, &file, now_usec, settle_usec, view, &run);
                free(run.read_what);
                if (r < 0)
                        return r;
                if (run.read_error != 0)
                        return run.read_error;
                if (one.pins & (1u << PIN_POINTER))
                        return 1;
        }
        return 0;
}

/* Pin what c's trainer_state.json names as best_model_checkpoint: 1 when
 * read (or the run marked with the error), 0 when c is gone or has none
 * (ENOENT), or -ENOMEM. */
static int hf_pin_best_of(int run_fd, struct run *run, const struct ckpt *c)
{
        _cleanup_free_ char *best = NULL;
        struct ckpt *t;
        int fd, r;

        fd = openat_beneath(run_fd, ckpt_member(c, 0), O_RDONLY | O_DIRECTORY | O_NOCTTY, 0);
        if (fd == -ENOMEM)
                return fd;
        if (open_error_gone_or_replaced(fd))
                return 0;
        if (fd < 0)
                return scan_run_error(run, fd, "%s/trainer_state.json", ckpt_member(c, 0)) < 0 ? -ENOMEM : 1;
        r = metric_hf_best(fd, &best);
        close(fd);
        if (r == -ENOMEM)
                return r;
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return scan_run_error(run, r, "%s/trainer_state.json", ckpt_member(c, 0)) < 0 ? -ENOMEM : 1;
        if (best) {
                t = find_by_member(run, best, strlen(best));
                if (t)
                        t->pins |= 1u << PIN_HF_BEST;
        }
        return 1;
}

/* HF writes best_model_checkpoint into every trainer_state.json; only the
 * newest checkpoint's copy is current. Newest by step, as HF resumes from;
 * falls back to older ones when the newest has none (ENOENT); one that
 * cannot be read or parsed marks the run: it may name another best. And
 * the newest written of those read well (their metric came from the same
 * file), when that is another: a run resumed from an earlier step writes
 * below the old run's last steps, and its own state names the best it will
 * load at the end. The run is sorted, newest last. */
int pins_hf_best(int run_fd, struct run *run)
{
        const struct ckpt *read = NULL, *written = NULL;
        int r = 0;

        for (size_t i = run->n_ckpts; i > 0 && r == 0; i--) {
                const struct ckpt *c = &run->ckpts[i - 1];

                if (!c->complete || !c->is_dir)
                        continue;
                r = hf_pin_best_of(run_fd, run, c);
                if (r != 0)
                        read = c;
        }
        if (r < 0)
                return r;
        for (size_t i = 0; i < run->n_ckpts; i++) {
                const struct ckpt *c = &run->ckpts[i];

                /* >=: of equal mtimes (restored, copied with cp -p)
                 * the newest by step, the one read above */
                if (c->complete && c->is_dir && c->read_error == 0 &&
                    (!written || c->mtime_usec >= written->mtime_usec))
                        written = c;
        }
        /* (a run unreadable already is kept whole) */
        if (run->read_error == 0 && written && written != read && (r = hf_pin_best_of(run_fd, run, written)) < 0)
                return r;
        return 0;
}
