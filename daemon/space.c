/* The free-space floor, per filesystem: statvfs, then evictions in the order
 * of lib/floor.c until free space reaches the target. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "decide.h"
#include "floor.h"
#include "floorlock.h"
#include "fsutil.h"
#include "log.h"
#include "macro.h"
#include "policy.h"
#include "scan.h"
#include "scan_pins.h"
#include "space.h"
#include "verify.h"

static int fs_stat(int fd, uint64_t *ret_free, uint64_t *ret_total);
static int fs_read(struct space *sp, struct fs_state *f, int fd);

static struct fs_state *fs_find(struct space *sp, dev_t dev)
{
        for (size_t i = 0; i < sp->n_fs; i++)
                if (sp->fs[i].dev == dev)
                        return &sp->fs[i];
        return NULL;
}

/* Whether watch w asks for a floor: its file system's is then checked. */
static bool watch_sets_floor(const struct watch_conf *w)
{
        return w->min_free.set || w->headroom > 0;
}

/* Whether w asks for a floor above 0: only then is what it keeps evicted
 * for its file system's (whichever watch's level that is). min_free = "0"
 * says "none here", as unset does. */
static bool watch_gives_to_floor(const struct watch_conf *w)
{
        const struct size_spec *m = &w->min_free;

        return (m->set && (m->is_percent ? m->percent > 0 : m->bytes > 0)) || w->headroom > 0;
}

int space_set_roots(struct space *sp, struct root *const *roots, size_t n, bool keep_others)
{
        struct fs_state *fs = calloc(n + (keep_others ? sp->n_fs : 0) + 1, sizeof(*fs));
        size_t k = 0;

        if (!fs)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const struct watch_conf *w = roots[i]->w;
                struct fs_state *f = NULL, *old;

                if (roots[i]->fd < 0)
                        continue;
                for (size_t j = 0; j < k; j++)
                        if (fs[j].dev == roots[i]->dev)
                                f = &fs[j];
                if (!f) {
                        f = &fs[k++];
                        old = fs_find(sp, roots[i]->dev);
                        *f = old ? *old : (struct fs_state){.dev = roots[i]->dev};
                        f->path = w->path;
                        f->configured = false;
                }
                if (watch_sets_floor(w))
                        f->configured = true;
        }
        /* A floor turned off by a reload cannot be unmet: space_check skips
         * the filesystem, so nothing else would ever clear the state (and
         * ckptd_floor_unmet would stay 1). */
        for (size_t j = 0; j < k; j++)
                if (!fs[j].configured)
                        fs[j].unmet = false;
        /* one without a floor: a first reading, for status until the next
         * check (one with a floor has its levels from the floor's first) */
        for (size_t i = 0; i < n; i++)
                for (size_t j = 0; roots[i]->fd >= 0 && j < k; j++)
                        if (fs[j].dev == roots[i]->dev && !fs[j].configured && fs[j].total_bytes == 0)
                                (void)fs_read(sp, &fs[j], roots[i]->fd);
        /* their path may be a reload's old config's, freed */
        for (size_t i = 0; keep_others && i < sp->n_fs; i++) {
                bool listed = false;

                for (size_t j = 0; j < k && !listed; j++)
                        listed = fs[j].dev == sp->fs[i].dev;
                if (!listed) {
                        fs[k] = sp->fs[i];
                        fs[k++].path = "";
                }
        }
        free(sp->fs);
        sp->fs = fs;
        sp->n_fs = k;
        return 0;
}

void space_finish(struct space *sp)
{
        free(sp->fs);
        *sp = (struct space){};
}

void space_seen(struct space *sp, dev_t dev, const struct run *run)
{
        struct fs_state *f = fs_find(sp, dev);

        if (!f)
                return;
        for (size_t i = 0; i < run->n_ckpts; i++)
                if (run->ckpts[i].complete && run->ckpts[i].size_bytes > f->largest_bytes)
                        f->largest_bytes = run->ckpts[i].size_bytes;
}

void space_seen_largest(struct space *sp, dev_t dev, uint64_t largest_bytes)
{
        struct fs_state *f = fs_find(sp, dev);

        if (f && largest_bytes > f->largest_bytes)
                f->largest_bytes = largest_bytes;
}

bool space_any_configured(const struct space *sp)
{
        for (size_t i = 0; i < sp->n_fs; i++)
                if (sp->fs[i].configured)
                        return true;
        return false;
}

bool space_any_unknown(const struct space *sp)
{
        for (size_t i = 0; i < sp->n_fs; i++)
                if (sp->fs[i].configured && sp->fs[i].stat_error < 0)
                        return true;
        return false;
}

bool space_any_unmet(const struct space *sp)
{
        for (size_t i = 0; i < sp->n_fs; i++)
                if (sp->fs[i].unmet)
                        return true;
        return false;
}

/* Free and total bytes of the filesystem of fd. The floor counts what an
 * unprivileged trainer can use: f_bavail, not f_bfree (statvfs(3)). */
static int fs_stat(int fd, uint64_t *ret_free, uint64_t *ret_total)
{
        struct statvfs sv;
        struct stat st;

        if (fstatvfs(fd, &sv) < 0)
                return -errno;
        *ret_free = (uint64_t)sv.f_bavail * sv.f_frsize;
        /* removals under way (sweep.c) free the rest of their bytes soon:
         * counted as free, so the floor does not evict more meanwhile */
        if (fstat(fd, &st) == 0)
                *ret_free += sweep_pending_bytes(st.st_dev);
        *ret_total = (uint64_t)sv.f_blocks * sv.f_frsize;
        return 0;
}

/* Measure f through fd. A failure (EIO, ETIMEDOUT on NFS or Lustre) leaves
 * the floor unknown: nothing is evicted for it and it is not reported met.
 * It is logged and counted once per errno, not at every check (a server
 * that stays down must not fill the journal), and reading again is said
 * once. 0 or -errno. */
static int fs_read(struct space *sp, struct fs_state *f, int fd)
{
        int r = fs_stat(fd, &f->free_bytes, &f->total_bytes);

        if (r == f->stat_error)
                return r;
        if (r < 0) {
                log_internal(f->configured ? LOG_ERR : LOG_WARNING, r,
                             "cannot read the free space of the filesystem of %s: %m%s", f->path,
                             f->configured ? "; its floor is unknown and evicts nothing until it can be read" : "");
                sp->read_errors++;
        } else {
                log_notice("the free space of the filesystem of %s can be read again", f->path);
        }
        f->stat_error = r;
        return r;
}

/* floor and target: the largest any watch on the filesystem asks for */
static void fs_levels(struct fs_state *f, struct root *const *roots, size_t n)
{
        f->floor_bytes = f->target_bytes = 0;
        for (size_t i = 0; i < n; i++) {
                const struct watch_conf *w = roots[i]->w;
                uint64_t level, target;

                if (roots[i]->fd < 0 || roots[i]->dev != f->dev)
                        continue;
                level = floor_bytes(size_resolve(&w->min_free, f->total_bytes), w->headroom, f->largest_bytes);
                target = floor_target(level, size_resolve(&w->target_free, f->total_bytes));
                if (level > f->floor_bytes)
                        f->floor_bytes = level;
                if (target > f->target_bytes)
                        f->target_bytes = target;
        }
        if (f->target_bytes < f->floor_bytes)
                f->target_bytes = f->floor_bytes;
}

/* Every run of every root on f, decided: lent by the daemon's index, or
 * scanned here (owned). */
struct fs_runs {
        struct space_run *v;
        size_t n;
        struct run **owned; /* scans, one array per root */
        size_t *n_owned;
        size_t n_roots;
};

static void fs_runs_free(struct fs_runs *fr)
{
        for (size_t i = 0; i < fr->n_roots; i++)
                runs_free(fr->owned[i], fr->n_owned[i]);
        free(fr->owned);
        free(fr->n_owned);
        free(fr->v);
        *fr = (struct fs_runs){};
}

static int fs_scan(struct fs_state *f, struct root *const *roots, size_t n, int64_t now, struct fs_runs *ret)
{
        ret->owned = calloc(n + 1, sizeof(*ret->owned));
        ret->n_owned = calloc(n + 1, sizeof(*ret->n_owned));
        if (!ret->owned || !ret->n_owned)
                return -ENOMEM;
        ret->n_roots = n;
        for (size_t i = 0; i < n; i++) {
                struct run *runs = NULL;
                struct space_run *all;
                size_t k = 0;

                if (roots[i]->fd < 0 || roots[i]->dev != f->dev)
                        continue;
                if (sweep_scan_root(roots[i], now, &runs, &k) < 0)
                        continue;
                ret->owned[i] = runs;
                ret->n_owned[i] = k;
                all = reallocarray(ret->v, ret->n + k + 1, sizeof(*all));
                if (!all)
                        return -ENOMEM;
                ret->v = all;
                for (size_t j = 0; j < k; j++) {
                        if (run_decide(&roots[i]->w->policy, runs[j].ckpts, runs[j].n_ckpts, now) < 0)
                                log_warning("%s/%s: out of memory ranking by owner: keeping every checkpoint",
                                            roots[i]->w->path, runs[j].path);
                        /* decided as the pass before did (oneshot.c): a
                         * save written in place is not for its place, or
                         * what it displaced there, kept by that pass, is
                         * no candidate here, and another goes in its stead */
                        sweep_placed_being_written(roots[i], &runs[j], &roots[i]->w->policy, now, -1,
                                                   &(struct placed_ask){.quiet = true});
                        ret->v[ret->n++] = (struct space_run){.root = roots[i], .run = &runs[j]};
                }
        }
        return 0;
}

static int fs_collect(struct space *sp, struct fs_state *f, struct root *const *roots, size_t n, int64_t now,
                      const struct space_view *view, struct fs_runs *ret)
{
        int r;

        *ret = (struct fs_runs){};
        r = view ? view->runs(view->userdata, f->dev, &ret->v, &ret->n) : fs_scan(f, roots, n, now, ret);
        if (r < 0)
                return r;
        for (size_t i = 0; i < ret->n; i++)
                space_seen(sp, f->dev, ret->v[i].run);
        return 0;
}

/* kept_linked: victims of the pass kept at their removal as hard-linked,
 * no longer candidates but kept for that reason all the same */
static void log_unmet(struct fs_state *f, const struct floor_cand *c, const unsigned *why, size_t n,
                      unsigned kept_linked)
{
        unsigned count[_FLOOR_PROTECT_MAX] = {};
        struct log_fields lf = {
                .message_id = MSGID_FLOOR_UNMET,
                .path = f->path,
                .has_free = true,
                .free_bytes = f->free_bytes,
                .has_floor = true,
                .floor_bytes = f->floor_bytes,
                .has_bytes = true,
                .bytes = f->short_bytes,
        };
        char shortb[16], freeb[16], floorb[16], linked[64] = "", unfloored[96] = "";

        for (size_t i = 0; i < n; i++)
                for (int k = 0; k < _FLOOR_PROTECT_MAX; k++)
                        if (c[i].kept && (why[i] & (1u << k)))
                                count[k]++;
        count[FLOOR_PROTECT_LINKED] += kept_linked;
        /* rare: said only when there are some */
        if (count[FLOOR_PROTECT_LINKED] > 0)
                snprintf(linked, sizeof(linked), ", %u hard-linked (evicting them frees nothing)",
                         count[FLOOR_PROTECT_LINKED]);
        if (count[FLOOR_PROTECT_UNFLOORED] > 0)
                snprintf(unfloored, sizeof(unfloored), ", %u in watches that set no floor (min_free, headroom)",
                         count[FLOOR_PROTECT_UNFLOORED]);
        log_struct(LOG_CRIT, &lf,
                   "free space on the filesystem of %s is %s short of the floor (%s free, floor %s); "
                   "protected: %u best, %u newest, %u pinned, %u being written%s%s%s",
                   f->path, size_format(f->short_bytes, shortb, sizeof(shortb)),
                   size_format(f->free_bytes, freeb, sizeof(freeb)),
                   size_format(f->floor_bytes, floorb, sizeof(floorb)), count[FLOOR_PROTECT_BEST],
                   count[FLOOR_PROTECT_NEWEST], count[FLOOR_PROTECT_PINNED], count[FLOOR_PROTECT_INCOMPLETE], linked,
                   unfloored,
                   f->capped    ? "; the deletion cap (max_delete_per_sweep) stopped the pass: more can be evicted "
                                  "at the next"
                   : f->failing ? "; removals kept failing (the errors above): the checkpoints left waiting "
                                  "can be evicted at the next pass"
                                : "");
}

static void set_unmet(struct fs_state *f, bool unmet, const struct floor_cand *c, const unsigned *why, size_t n,
                      unsigned kept_linked)
{
        if (unmet && !f->unmet) {
                log_unmet(f, c, why, n, kept_linked);
        } else if (!unmet && f->unmet) {
                struct log_fields lf = {
                        .message_id = MSGID_FLOOR_RECOVERED,
                        .path = f->path,
                        .has_free = true,
                        .free_bytes = f->free_bytes,
                        .has_floor = true,
                        .floor_bytes = f->floor_bytes,
                };
                char freeb[16];
                log_struct(LOG_NOTICE, &lf, "free space on the filesystem of %s is back above the floor (%s free)",
                           f->path, size_format(f->free_bytes, freeb, sizeof(freeb)));
        }
        f->unmet = unmet;
}

/* An mtime this far in the future is no save in progress but a clock that
 * was stepped back (or a host whose clock is wrong): NFS clients and servers
 * in sync differ by seconds. Such checkpoints read as unsettled (scan.c) and
 * are kept, but their bytes are not room a save is using. */
#define SKEW_TOLERANCE_USEC ((int64_t)(60 * USEC_PER_SEC))

/* A directory without the marker its layout writes last, with nothing
 * written in it for this long, is a save that died: kept (incomplete), but
 * its bytes are no room the floor kept for a save being written. */
#define SAVE_DIED_USEC ((int64_t)(3600 * USEC_PER_SEC))

static bool save_died(const struct ckpt *c, int64_t now_usec)
{
        int64_t quiet;

        return c->unmarked && !__builtin_sub_overflow(now_usec, c->mtime_usec, &quiet) && quiet >= SAVE_DIED_USEC;
}

/* How far in the future c's mtime is (0: not). */
static int64_t future_usec(const struct ckpt *c, int64_t now_usec)
{
        int64_t d;

        if (__builtin_sub_overflow(c->mtime_usec, now_usec, &d))
                return c->mtime_usec > now_usec ? INT64_MAX : 0;
        return d > 0 ? d : 0;
}

/* A directory checkpoint nothing in which changed within VERIFY_RECENT_SEC
 * by its record: the floor's passes do not walk it for its place (the floor
 * asks at every pass, and walking every run's trees each time would cost
 * most when the disk is filling); the first eviction from its run in a
 * round does (floor_old_places_checked()). */
static bool place_old(const struct ckpt *k, int64_t now_usec)
{
        return k->is_dir && k->mtime_usec < now_usec - (int64_t)VERIFY_RECENT_SEC * (int64_t)USEC_PER_SEC;
}

/* Which places a question asks. */
enum place_ask {
        PLACE_ASK_RECENT, /* a pass: all but the old directories */
        PLACE_ASK_OLD,    /* before a run's first eviction: the old directories, which the pass left */
        PLACE_ASK_ALL,    /* after a take: the one the place moved to, whatever its age */
};

/* Whether checkpoint k of run (a file, a file of a group, a file below a
 * directory) is open for writing in another process (sweep_being_written():
 * a reader holds nothing back): VERIFY_FREE not, VERIFY_IN_USE yes (without
 * leases, VERIFY_CHANGED: an mtime that moved since the scan), -ESTALE a
 * tree that moved under the walk, -errno when it cannot be told. Which
 * are asked: see enum place_ask.
 * A save written in place in one long write() keeps the mtime of its
 * start, so the scan takes it for complete, and its name may carry any
 * metric; were it the run's newest, last written or best, the floor would
 * protect it and evict the complete one it displaced. So with a directory
 * holding its marker: one left by an earlier run stands while a training
 * restarted into the same directory writes the checkpoint again in place,
 * which no event tells (nothing watches inside a complete directory), and
 * whose new mtime a reading for the floor finds (floor_refresh()). */
static int place_in_use(struct root *r, const struct run *run, const struct ckpt *k, int64_t now_usec,
                        enum place_ask ask)
{
        if (ask != PLACE_ASK_ALL && place_old(k, now_usec) != (ask == PLACE_ASK_OLD))
                return VERIFY_FREE;
        return sweep_being_written(r, run, k, -1, k->mtime_usec);
}

/* Owner ascending, then newest first (a NaN order counts as the oldest, as
 * in lib/floor.c), then by index: the order in which floor_places_checked()
 * takes each owner's candidates for its newest. */
static int newest_cmp(const void *a, const void *b, void *userdata)
{
        const struct floor_cand *c = userdata;
        size_t i = *(const size_t *)a, j = *(const size_t *)b;
        double x = c[i].order, y = c[j].order;

        if (c[i].run != c[j].run)
                return c[i].run < c[j].run ? -1 : 1;
        if (isnan(x) != isnan(y))
                return isnan(x) ? 1 : -1;
        if (!isnan(x) && x != y)
                return x > y ? -1 : 1;
        return i < j ? -1 : i > j;
}

/* What floor_places_checked() reads and counts. */
struct places {
        struct floor_cand *c;
        struct ckpt **ck;
        const size_t *run_of;
        const struct fs_runs *fr;
        int64_t now_usec;
        enum place_ask ask;
        uint64_t moved; /* bytes taken for saves being written */
};

/* Whether the save k was said to be taken already: the floor passes every
 * second while something is written, and says so once per save (the last
 * few remembered), later passes at LOG_DEBUG. */
static bool taken_said(const struct ckpt *k)
{
        static struct {
                uint32_t dev;
                ino_t ino;
        } said[8];
        static size_t next;

        for (size_t j = 0; j < ELEMENTSOF(said); j++)
                if (said[j].ino == k->ino && said[j].dev == k->dev && k->ino != 0)
                        return true;
        said[next].dev = k->dev;
        said[next].ino = k->ino;
        next = (next + 1) % ELEMENTSOF(said);
        return false;
}

/* Candidate i, about to be protected for its place, is a save still being
 * written, or cannot be told not to be (place_in_use()): it counts as
 * incomplete. Returns whether it was. */
static bool place_taken(struct places *pl, size_t i)
{
        const struct space_run *sr = &pl->fr->v[pl->run_of[i]];
        _cleanup_free_ char *path = NULL;
        int v = place_in_use(sr->root, sr->run, pl->ck[i], pl->now_usec, pl->ask);

        if (v == VERIFY_FREE || (v == -ESTALE && !pl->ck[i]->is_dir))
                return false;
        path = sweep_ckpt_path(sr->root, sr->run, pl->ck[i]);
        if (v < 0 && v != -ESTALE)
                log_internal(taken_said(pl->ck[i]) ? LOG_DEBUG : LOG_WARNING, v,
                             "%s: cannot tell whether it is in use: %m; taken for a save still being written, "
                             "not for its place",
                             path ? path : pl->ck[i]->name);
        else
                log_internal(taken_said(pl->ck[i]) ? LOG_DEBUG : LOG_INFO, 0,
                             "%s: in use: taken for a save still being written, not for its place",
                             path ? path : pl->ck[i]->name);
        pl->c[i].complete = false;
        pl->moved += pl->c[i].bytes;
        return true;
}

/* The one pick() chooses among one owner's idx[0..n), chosen again while it
 * is in use; asked[0..n_asked) were asked already (free). Returns the one left. */
static size_t place_checked(struct places *pl, size_t (*pick)(const struct floor_cand *, const size_t *, size_t),
                            const size_t *idx, size_t n, const size_t *asked, size_t n_asked)
{
        for (;;) {
                size_t w = pick(pl->c, idx, n);

                if (w == SIZE_MAX)
                        return w;
                for (size_t k = 0; k < n_asked; k++)
                        if (asked[k] == w)
                                return w;
                if (!place_taken(pl, w))
                        return w;
        }
}

/* Before the floor evicts: the places it protects in each owner's run, its
 * newest by order, its last written and its best (lib/floor.c), must not go
 * to a save still being written (place_in_use()); one that is counts as
 * incomplete, and the next takes its place. The kept complete candidates
 * are sorted once by owner and age, so each owner's newest are found in one
 * pass. scratch holds nc entries. Returns the bytes so moved to "being
 * written". */
static uint64_t floor_places_checked(struct floor_cand *c, struct ckpt **ck, const size_t *run_of, size_t nc,
                                     const struct fs_runs *fr, size_t *scratch, int64_t now_usec)
{
        struct places pl = {.c = c, .ck = ck, .run_of = run_of, .fr = fr, .now_usec = now_usec};
        size_t m = 0;

        for (size_t i = 0; i < nc; i++)
                if (c[i].kept && c[i].complete)
                        scratch[m++] = i;
        qsort_r(scratch, m, sizeof(*scratch), newest_cmp, c);
        for (size_t a = 0, s; a < m;) {
                size_t owner = c[scratch[a]].run, asked[2] = {SIZE_MAX, SIZE_MAX};

                for (s = a; a < m && c[scratch[a]].run == owner; a++)
                        if (!place_taken(&pl, scratch[a])) {
                                asked[0] = scratch[a];
                                break;
                        }
                while (a < m && c[scratch[a]].run == owner)
                        a++;
                asked[1] = place_checked(&pl, floor_last_written, scratch + s, a - s, asked, 1);
                (void)place_checked(&pl, floor_best, scratch + s, a - s, asked, 2);
        }
        return pl.moved;
}

/* The floor's candidates of one pass: every checkpoint of the runs lent,
 * and the tallies of what they take. */
struct fs_cands {
        struct floor_cand *c;
        struct ckpt **ck;
        size_t *run_of, *order, n;
        unsigned *why;
        bool *asked; /* by owner: its old places were asked this round (floor_old_places_checked()) */
        bool *moved; /* by owner: a place moved there this round, the question perhaps unfinished */
        bool *tried; /* a victim tried this round */
        uint64_t pending_bytes, writing_bytes;
        size_t skewed;
        int64_t skew_usec;
};

static void fs_cands_free(struct fs_cands *fc)
{
        free(fc->c);
        free(fc->ck);
        free(fc->run_of);
        free(fc->order);
        free(fc->why);
        free(fc->asked);
        free(fc->moved);
        free(fc->tried);
        *fc = (struct fs_cands){};
}

static int fs_cands_build(const struct fs_runs *fr, int64_t now_usec, struct fs_cands *ret)
{
        size_t nc = 0;

        fs_cands_free(ret);
        for (size_t i = 0; i < fr->n; i++)
                nc += fr->v[i].left_out ? 0 : fr->v[i].run->n_ckpts;
        ret->c = calloc(nc + 1, sizeof(*ret->c));
        ret->ck = calloc(nc + 1, sizeof(*ret->ck));
        ret->run_of = calloc(nc + 1, sizeof(*ret->run_of));
        ret->order = calloc(nc + 1, sizeof(*ret->order));
        ret->why = calloc(nc + 1, sizeof(*ret->why));
        ret->asked = calloc(nc + 1, sizeof(*ret->asked));
        ret->moved = calloc(nc + 1, sizeof(*ret->moved));
        ret->tried = calloc(nc + 1, sizeof(*ret->tried));
        if (!ret->c || !ret->ck || !ret->run_of || !ret->order || !ret->why || !ret->asked || !ret->moved ||
            !ret->tried)
                return -ENOMEM;
        for (size_t i = 0; i < fr->n; i++) {
                if (fr->v[i].left_out)
                        continue;
                for (size_t j = 0, base = ret->n; j < fr->v[i].run->n_ckpts; j++) {
                        struct ckpt *k = &fr->v[i].run->ckpts[j];
                        /* in a dry run the policy's victims still take space */
                        if (!k->verdict.keep)
                                ret->pending_bytes += k->size_bytes;
                        else if (!k->complete && future_usec(k, now_usec) > SKEW_TOLERANCE_USEC) {
                                ret->skewed++;
                                if (future_usec(k, now_usec) > ret->skew_usec)
                                        ret->skew_usec = future_usec(k, now_usec);
                        } else if (!k->complete && !save_died(k, now_usec))
                                ret->writing_bytes += k->size_bytes;
                        /* "the best and the newest of each run" are per
                         * owner, as the policy ranks them (run_decide) */
                        floor_cand_from_ckpt(&ret->c[ret->n], base + run_owner_first(fr->v[i].run->ckpts, j), k);
                        /* the daemon's index may hold a link count long
                         * gone: removing another link raises no event where
                         * we watch. -1's scan is fresh; the daemon's removal
                         * asks (VERIFY_LINKED) */
                        if (!fr->owned)
                                ret->c[ret->n].linked = false;
                        ret->c[ret->n].unfloored = !watch_gives_to_floor(fr->v[i].root->w);
                        ret->ck[ret->n] = k;
                        ret->run_of[ret->n++] = i;
                }
        }
        return 0;
}

/* The next victim order[v] lies in a stale run: read again the stale runs
 * among the victims from there until free space would reach the target,
 * and at least `batch` of them, before the order is built again. The
 * caller doubles batch at each round of a pass: when victims are kept at
 * their removal, a pass takes O(log n) rounds, not one per stale run. */
static void fs_refresh_ahead(struct fs_runs *fr, const struct fs_cands *fc, size_t v, size_t nv, uint64_t free_bytes,
                             uint64_t target_bytes, size_t batch, const struct space_view *view)
{
        uint64_t reach = free_bytes;
        size_t done = 0;

        for (size_t w = v; w < nv && (done < batch || reach < target_bytes); w++) {
                struct space_run *sr = &fr->v[fc->run_of[fc->order[w]]];

                if (__builtin_add_overflow(reach, fc->c[fc->order[w]].bytes, &reach))
                        reach = UINT64_MAX;
                if (!sr->stale)
                        continue;
                sr->stale = false;
                done++;
                if (view->refresh(view->userdata, sr) < 0)
                        sr->left_out = true;
        }
}

/* Whether checkpoint k is on the disk as its record says: every member
 * there, members[0] the same (dev, ino), the same owner, none written or
 * touched since (an mtime past the record's); a file protected for its
 * place (exact) with its very mtime, which decides the last written. 1 yes,
 * 0 changed, -errno when it cannot be told. */
static int ckpt_unchanged(int run_fd, const struct ckpt *k, bool exact)
{
        for (size_t m = 0; m < k->n_members; m++) {
                struct stat st;
                int64_t mtime;

                if (fstatat(run_fd, ckpt_member(k, m), &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return errno == ENOENT ? 0 : -errno;
                mtime = stat_mtime_usec(&st);
                if ((m == 0 && (st.st_ino != k->ino || (uint32_t)st.st_dev != k->dev)) ||
                    (k->uid != UID_MIXED && st.st_uid != k->uid) || mtime > k->mtime_usec ||
                    (exact && !k->is_dir && k->n_members == 1 && mtime != k->mtime_usec))
                        return 0;
        }
        return 1;
}

/* Before the floor's first eviction from candidate i's owner in a round:
 * the places there held by old directories (place_old()), which no pass
 * asks, are asked now. A training resumed from an earlier step that saves
 * a later one again in place writes below a directory whose record is
 * hours old, and no event tells (nothing watches inside a complete
 * directory): the newest by its name, it would be protected for its place
 * and the one it displaces evicted. One in use counts as incomplete
 * (place_taken()), and the next takes its place, asked whatever its age;
 * asked again until none is taken, so what a save holds keeps the room of
 * one more checkpoint, never every victim of its run. The bytes of one so
 * taken are no room kept for a save (a save again in place takes little
 * more, and a file held open read-write for hours is no save), so the
 * floor's shortfall stands. why is written for the candidates of i's run.
 * Returns 0 or -ENOMEM; *ret_taken counts the ones taken either way, and
 * a question asked again after an error asks as it had come to. */
static int floor_old_places_checked(struct fs_cands *fc, const struct fs_runs *fr, size_t i, int64_t now_usec,
                                    size_t *ret_taken)
{
        const unsigned placed = (1u << FLOOR_PROTECT_NEWEST) | (1u << FLOOR_PROTECT_BEST);
        size_t owner = fc->c[i].run, s = i, e = i + 1;
        struct places pl = {.c = fc->c,
                            .ck = fc->ck,
                            .run_of = fc->run_of,
                            .fr = fr,
                            .now_usec = now_usec,
                            .ask = fc->moved[owner] ? PLACE_ASK_ALL : PLACE_ASK_OLD};
        bool taken = true;

        /* the run's candidates are side by side (fs_cands_build()) */
        while (s > 0 && fc->run_of[s - 1] == fc->run_of[i])
                s--;
        while (e < fc->n && fc->run_of[e] == fc->run_of[i])
                e++;
        *ret_taken = 0;
        if (pl.ask == PLACE_ASK_OLD) {
                /* no old directory of the owner: nothing the passes left
                 * to ask, so no ranking of its run either */
                bool old = false;

                for (size_t j = s; j < e && !old; j++)
                        old = fc->c[j].run == owner && place_old(fc->ck[j], now_usec);
                if (!old)
                        return 0;
        }
        while (taken) {
                taken = false;
                if (floor_protect(fc->c + s, e - s, fc->why + s) < 0)
                        return -ENOMEM;
                for (size_t j = s; j < e; j++)
                        if (fc->c[j].run == owner && fc->c[j].kept && fc->c[j].complete && (fc->why[j] & placed) &&
                            place_taken(&pl, j)) {
                                taken = true;
                                fc->moved[owner] = true;
                                (*ret_taken)++;
                        }
                if (taken)
                        pl.ask = PLACE_ASK_ALL;
        }
        return 0;
}

/* Just before the floor removes candidate i: whether its run's index still
 * says what the disk does where the floor needs it. The events that arrive
 * during a pass are read only once it ends, so these would go unseen: a
 * keep file made for it in the meantime, a pointer file rewritten to
 * name it, it written again or touched (it
 * may be the last written now) or given to another owner, and a checkpoint
 * the floor protects in its run (its owner's best, newest or last written,
 * by the index; why holds their FLOOR_PROTECT bits) removed, replaced,
 * touched or given away. Then the run is read again whole before anything
 * more of it is evicted. A symlink made meanwhile is seen at the run's next
 * decision. 1 current, with the run open at *ret_fd for the removal; 0 not,
 * -errno when it cannot be told (the victim is kept). */
static int fs_victim_current(const struct fs_runs *fr, const struct fs_cands *fc, size_t i, const unsigned *why,
                             int *ret_fd)
{
        const unsigned places = (1u << FLOOR_PROTECT_NEWEST) | (1u << FLOOR_PROTECT_BEST);
        const struct space_run *sr = &fr->v[fc->run_of[i]];
        _cleanup_close_ int fd = openat_beneath(sr->root->fd, sr->run->path, O_RDONLY | O_DIRECTORY, 0);
        size_t s = i, e = i + 1;
        int r;

        if (fd < 0)
                return fd == -ENOENT ? 0 : fd;
        r = scan_keep_file_for(fd, fc->ck[i]);
        if (r == 0 && sr->root->w->pointer_files.n > 0)
                r = pins_pointer_names(fd, &sr->root->w->pointer_files, sr->run, fc->ck[i], now_usec(CLOCK_REALTIME),
                                       watch_settle_usec(sr->root->w));
        if (r != 0)
                return r < 0 ? r : 0;
        r = ckpt_unchanged(fd, fc->ck[i], false);
        if (r <= 0)
                return r;
        /* the run's candidates are side by side (fs_cands_build()) */
        while (s > 0 && fc->run_of[s - 1] == fc->run_of[i])
                s--;
        while (e < fc->n && fc->run_of[e] == fc->run_of[i])
                e++;
        for (size_t j = s; j < e; j++) {
                if (fc->c[j].run != fc->c[i].run || !(why[j] & places))
                        continue;
                r = ckpt_unchanged(fd, fc->ck[j], true);
                if (r <= 0)
                        return r;
        }
        *ret_fd = TAKE_FD(fd);
        return 1;
}

/* Evict from f until free space reaches the target, worst first: along
 * the whole order, so that a victim kept at its removal (in use, a flock)
 * gives way to the next. A victim's run is read again first when it is
 * stale, and the order is built again from what it says now. Victims
 * kept one after another share one reading of /proc/locks for their flock
 * pins; it is read again after each removal. */
static int fs_enforce(struct space *sp, struct fs_state *f, struct root *const *roots, size_t n, struct sweep *s,
                      const struct space_view *view)
{
        struct fs_runs fr;
        struct fs_cands fc = {};
        struct victim_locks locks = {};
        struct floor_state st;
        uint64_t writing_bytes, room;
        size_t nv = 0, batch = 1;
        bool first = true, walk = false;
        unsigned kept_linked = s->kept_linked;
        int r, places = 0;

        r = fs_collect(sp, f, roots, n, s->now_usec, view, &fr);
        if (r < 0)
                goto out;
        fs_levels(f, roots, n); /* largest may have grown */
again:
        r = fs_cands_build(&fr, s->now_usec, &fc);
        if (r < 0)
                goto out;
        if (first) {
                /* evictions in a dry run are credited as they are made */
                if (s->dry_run)
                        f->free_bytes += fc.pending_bytes;
                floor_state_init(&st, f->free_bytes, 0, 0, 0, 0);
                st.floor_bytes = f->floor_bytes;
                st.target_bytes = f->target_bytes;
                /* below the floor: walk to the target, in every round */
                walk = floor_needed(&st);
                first = false;
        }
        writing_bytes = fc.writing_bytes;
        f->capped = f->failing = false;
        nv = 0;
        if (walk) {
                writing_bytes += floor_places_checked(fc.c, fc.ck, fc.run_of, fc.n, &fr, fc.order, s->now_usec);
                nv = floor_evictable(fc.c, fc.n, fc.order);
                /* the places, for fs_victim_current(): once a round */
                places = nv == 0 || s->dry_run ? 0 : floor_protect(fc.c, fc.n, fc.why);
        }
        for (size_t v = 0; v < nv; v++) {
                size_t i = fc.order[v];
                struct ckpt *k = fc.ck[i];
                size_t ri = fc.run_of[i];
                unsigned before = s->deleted;
                uint64_t freed_before = s->freed_bytes, expect;
                _cleanup_close_ int run_fd = -1;
                enum delete_reason was;

                if (fc.tried[i] || fr.v[ri].left_out)
                        continue;
                if (f->free_bytes >= f->target_bytes || s->stopped)
                        break;
                if (sweep_capped(s)) {
                        f->capped = true;
                        break;
                }
                if (sweep_fail_left(s, fr.v[ri].root) <= 0) {
                        f->failing = true; /* its removals keep failing (logged): the others go on */
                        continue;
                }
                if (fr.v[ri].stale && view && view->refresh) {
                        fs_refresh_ahead(&fr, &fc, v, nv, f->free_bytes, f->target_bytes, batch, view);
                        batch *= 2;
                        victim_locks_finish(&locks); /* read again in the next round */
                        goto again;                  /* the runs read again hold new checkpoints */
                }
                if (!fc.asked[fc.c[i].run]) {
                        size_t taken;
                        int q = floor_old_places_checked(&fc, &fr, i, s->now_usec, &taken);

                        if (q >= 0)
                                fc.asked[fc.c[i].run] = true;
                        else if (taken == 0)
                                log_warning("%s/%s: out of memory finding the places the floor protects: %s is kept",
                                            fr.v[ri].root->w->path, fr.v[ri].run->path, k->name);
                        if (taken > 0) {
                                /* the places moved: the order from its worst again */
                                nv = floor_evictable(fc.c, fc.n, fc.order);
                                places = nv == 0 || s->dry_run ? 0 : floor_protect(fc.c, fc.n, fc.why);
                                v = SIZE_MAX;
                                continue;
                        }
                        if (q < 0)
                                continue;
                }
                fc.tried[i] = true;
                if (!s->dry_run) {
                        int cur = places < 0 ? places : fs_victim_current(&fr, &fc, i, fc.why, &run_fd);

                        /* the same for each of its victims: one line */
                        if (cur == -EAGAIN && fr.v[ri].root->w->pointer_files.n > 0) {
                                log_warning_errno(cur,
                                                  "%s/%s: a pointer file written just now names no checkpoint, or a "
                                                  "part of one's name "
                                                  "(%m: its writer may not be done); %s and the rest of the run "
                                                  "are kept in this pass",
                                                  fr.v[ri].root->w->path, fr.v[ri].run->path, k->name);
                                fr.v[ri].left_out = true;
                                continue;
                        }
                        if (cur < 0) {
                                log_warning_errno(cur,
                                                  "%s/%s: cannot tell whether the run changed during the "
                                                  "floor's pass: %m; %s is kept",
                                                  fr.v[ri].root->w->path, fr.v[ri].run->path, k->name);
                                continue;
                        }
                        if (cur == 0) {
                                /* read whole once, then decided again with
                                 * the rest; changed again since, its
                                 * victims wait for the next pass */
                                if (fr.v[ri].reread || !view || !view->refresh)
                                        continue;
                                fr.v[ri].whole = fr.v[ri].reread = true;
                                fr.v[ri].stale = false;
                                if (view->refresh(view->userdata, &fr.v[ri]) < 0)
                                        fr.v[ri].left_out = true;
                                victim_locks_finish(&locks);
                                goto again;
                        }
                }
                was = k->verdict.delete_reason;
                k->verdict.keep = false;
                k->verdict.delete_reason = DELETE_FLOOR;
                /* moved away during the pass: nothing more of it */
                if (sweep_remove(s, fr.v[ri].root, fr.v[ri].run, k, DELETE_FLOOR, run_fd, &locks) > 0)
                        fr.v[ri].left_out = true;
                /* Kept by its checks (in use, a flock), it stays out of
                 * the order until its run is decided again, as a victim of
                 * the policy does. Not tried at all (a stop): it keeps its
                 * place, or a better one would go before it next time. */
                if (s->deleted == before && s->stopped) {
                        k->verdict.keep = true;
                        k->verdict.delete_reason = was;
                } else if (s->deleted == before && !s->dry_run && view && view->kept) {
                        view->kept(view->userdata, &fr.v[ri], k);
                }
                if (s->dry_run) {
                        f->free_bytes += s->deleted > before ? k->size_bytes : 0;
                        continue;
                }
                /* Some filesystems give the blocks back later (btrfs, ZFS,
                 * a file another process still holds open): count what the
                 * removal freed, or one pass would evict everything while
                 * statvfs catches up. */
                if (s->deleted > before)
                        victim_locks_finish(&locks); /* a removal takes time: read the pins again */
                expect = f->free_bytes + (s->freed_bytes - freed_before);
                fs_stat(fr.v[ri].root->fd, &f->free_bytes, &f->total_bytes);
                if (f->free_bytes < expect)
                        f->free_bytes = expect;
        }
        /* A save being written uses the room the floor kept for it: count
         * those bytes as room. Otherwise a disk with room for best + newest +
         * the next save (the incident's) logs LOG_CRIT and flips the metric
         * on every save, while each save fits. Evictions above still aim at
         * the real free space. */
        room = f->free_bytes + writing_bytes;
        if (fc.skewed > 0 && room < f->floor_bytes)
                log_warning("%zu checkpoint%s on the filesystem of %s %s modified up to %llds in the future: "
                            "the clock was stepped back, or a host's clock is wrong; they count as still being "
                            "written, so they are kept and the floor cannot evict them",
                            fc.skewed, fc.skewed == 1 ? "" : "s", f->path, fc.skewed == 1 ? "was" : "were",
                            (long long)(fc.skew_usec / (int64_t)USEC_PER_SEC));
        if (room < f->floor_bytes) {
                f->short_bytes = f->floor_bytes - room;
                floor_protect(fc.c, fc.n, fc.why);
        }
        set_unmet(f, room < f->floor_bytes, fc.c, fc.why, fc.n, s->kept_linked - kept_linked);
        r = 0;
out:
        victim_locks_finish(&locks);
        fs_cands_free(&fc);
        fs_runs_free(&fr);
        return r;
}

void space_measure(struct space *sp, struct root *const *roots, size_t n)
{
        for (size_t i = 0; i < sp->n_fs; i++) {
                struct fs_state *f = &sp->fs[i];

                for (size_t j = 0; j < n; j++)
                        if (roots[j]->fd >= 0 && roots[j]->dev == f->dev) {
                                if (fs_read(sp, f, roots[j]->fd) == 0)
                                        fs_levels(f, roots, n);
                                break;
                        }
        }
}

/* How long another process may hold a floor before we say so. */
#define FLOOR_BUSY_WARN_USEC ((uint64_t)30 * USEC_PER_SEC)

/* Another ckptd on a sibling tree of f's filesystem may be evicting for the
 * same bytes: take f's floor lock and read statvfs again under it, so what
 * that one freed counts. A dry run evicts nothing and takes no lock. Returns
 * what floor_lock_release() takes, or -EWOULDBLOCK: leave f for next time. */
static int space_lock(struct space *sp, struct fs_state *f, int fd, bool dry_run)
{
        uint64_t now = (uint64_t)now_usec(CLOCK_MONOTONIC);
        pid_t holder;
        int lock;

        if (dry_run)
                return FLOOR_LOCK_NONE;
        lock = floor_lock_take(f->dev, f->path, sp->lock_wait_usec, &holder);
        if (lock == -EWOULDBLOCK) {
                char who[32] = "pid unknown"; /* /proc/locks hidden (ProcSubset=pid) */

                if (holder > 0)
                        snprintf(who, sizeof(who), "pid %d", (int)holder);
                sp->busy = true;
                if (f->busy_since_usec == 0)
                        f->busy_since_usec = now;
                /* -1 has waited lock_wait_usec already */
                if (sp->lock_wait_usec > 0 || now - f->busy_since_usec >= FLOOR_BUSY_WARN_USEC) {
                        log_warning("the floor of the filesystem of %s has been left to another ckptd (%s) "
                                    "for %llu s: it holds the filesystem's floor lock",
                                    f->path, who,
                                    (unsigned long long)((now - f->busy_since_usec + (uint64_t)sp->lock_wait_usec) /
                                                         USEC_PER_SEC));
                        f->busy_since_usec = now; /* again after as long */
                } else
                        log_debug("the floor of the filesystem of %s is being enforced by another ckptd (%s)", f->path,
                                  who);
                return lock;
        }
        f->busy_since_usec = 0;
        /* on failure the reading before the lock stands */
        (void)fs_stat(fd, &f->free_bytes, &f->total_bytes);
        return lock;
}

int space_check(struct space *sp, struct root *const *roots, size_t n, struct sweep *s, const struct space_view *view)
{
        int unmet = 0;

        sp->busy = false;
        for (size_t i = 0; i < sp->n_fs; i++) {
                struct fs_state *f = &sp->fs[i];
                int fd = -1;

                for (size_t j = 0; j < n && fd < 0; j++)
                        if (roots[j]->fd >= 0 && roots[j]->dev == f->dev)
                                fd = roots[j]->fd;
                /* one without a floor is measured all the same: status
                 * shows its free space. One that cannot be measured
                 * keeps its state, its floor unknown (fs_read()), and is
                 * read again at the next check. */
                if (fd < 0 || fs_read(sp, f, fd) < 0 || !f->configured)
                        continue;
                fs_levels(f, roots, n);
                /* headroom's largest checkpoint comes from the sweeps
                 * (space_seen), in the daemon and in -1 alike */
                if (f->free_bytes < f->floor_bytes) {
                        int lock = space_lock(sp, f, fd, s->dry_run);
                        int r;

                        if (lock == -EWOULDBLOCK) {
                                /* -1 has no next time: below the floor */
                                unmet += f->unmet || sp->lock_wait_usec > 0;
                                continue;
                        }
                        if (f->free_bytes < f->floor_bytes) {
                                r = fs_enforce(sp, f, roots, n, s, view);
                                if (r < 0)
                                        log_errno(r, "cannot enforce the floor on %s: %m", f->path);
                        } else {
                                set_unmet(f, false, NULL, NULL, 0, 0);
                        }
                        floor_lock_release(lock);
                } else {
                        set_unmet(f, false, NULL, NULL, 0, 0);
                }
                if (f->unmet)
                        unmet++;
        }
        return unmet;
}
