/* The daemon's wiring: sd-event loop, inotify events, settle timers, reload,
 * notify. Retention itself is sweep.c; what is shown to people is report.c. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "control.h"
#include "decide.h"
#include "log.h"
#include "manager.h"
#include "manager_internal.h"
#include "policy.h"
#include "remove.h"
#include "report.h"
#include "sweep.h"
#include "watch.h"

#define DEFAULT_POLL_SEC 30
/* A checkpoint that reads as unsettled on disk (a write inside a directory
 * checkpoint that no watch saw) is looked at again this often at the most. */
#define RECHECK_MIN_USEC (1 * USEC_PER_SEC)
/* How long -1 waits for a daemon's floor pass on the same filesystem. */
#define ONESHOT_FLOOR_WAIT_USEC ((int64_t)(60 * USEC_PER_SEC))

static int run_sweep(struct manager *m, struct root_state *rs, struct run_state *run);
static void floor_roots_changed(struct manager *m);
static void root_arm_poll(struct root_state *rs);
static ssize_t index_find(const struct run_state *run, const char *name);
static void index_unshift(struct run_state *run);
static int root_rescan(struct manager *m, struct root_state *rs);
static void manager_stop(struct manager *m, const char *why);

/* --- runs and pending checkpoints --- */

/* FNV-1a: run paths, for the index below. */
static size_t path_hash(const char *s)
{
        uint64_t h = 1469598103934665603ULL;

        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 1099511628211ULL;
        return (size_t)h;
}

/* Rebuild the path index of rs->runs, twice their number at least: a tree of
 * 20000 runs must not cost 20000² string compares per rescan. */
static int run_index_rebuild(struct root_state *rs)
{
        size_t cap = 64;

        while (cap < rs->n_runs * 2)
                cap *= 2;
        if (cap != rs->cap_slots) {
                struct run_state **v = calloc(cap, sizeof(*v));
                if (!v)
                        return -ENOMEM;
                free(rs->slots);
                rs->slots = v;
                rs->cap_slots = cap;
        } else {
                memset(rs->slots, 0, cap * sizeof(*rs->slots));
        }
        for (size_t i = 0; i < rs->n_runs; i++) {
                size_t h = path_hash(rs->runs[i]->path) & (cap - 1);
                while (rs->slots[h])
                        h = (h + 1) & (cap - 1);
                rs->slots[h] = rs->runs[i];
        }
        return 0;
}

static struct run_state *run_find(struct root_state *rs, const char *path)
{
        if (rs->cap_slots == 0)
                return NULL;
        for (size_t h = path_hash(path) & (rs->cap_slots - 1); rs->slots[h]; h = (h + 1) & (rs->cap_slots - 1))
                if (strcmp(rs->slots[h]->path, path) == 0)
                        return rs->slots[h];
        return NULL;
}

static struct run_state *run_state_free(struct run_state *run)
{
        if (!run)
                return NULL;
        sd_event_source_disable_unref(run->timer);
        ages_finish(&run->ages);
        for (size_t i = 0; i < run->n_pending; i++)
                free(run->pending[i].name);
        free(run->pending);
        free(run->read_errors);
        index_unshift(run);
        run_finish(&run->idx);
        free(run->members);
        strv_finish(&run->dirty);
        free(run->monitor_missing);
        free(run->path);
        free(run);
        return NULL;
}

static struct run_state *run_get(struct root_state *rs, const char *path)
{
        struct run_state *run = run_find(rs, path);

        if (run)
                return run;
        if (rs->n_runs == rs->cap_runs) {
                size_t cap = rs->cap_runs ? rs->cap_runs * 2 : 16;
                struct run_state **v = reallocarray(rs->runs, cap, sizeof(*v));
                if (!v)
                        return NULL;
                rs->runs = v;
                rs->cap_runs = cap;
        }
        run = calloc(1, sizeof(*run));
        if (!run || !(run->path = strdup(path))) {
                free(run);
                return NULL;
        }
        run->rs = rs;
        if (rs->m)
                ages_carry_take(&rs->m->carry, rs->root.w->path, path, &run->ages);
        rs->runs[rs->n_runs++] = run;
        if (rs->n_runs * 2 > rs->cap_slots) {
                if (run_index_rebuild(rs) < 0) {
                        run_state_free(rs->runs[--rs->n_runs]);
                        return NULL;
                }
        } else {
                size_t h = path_hash(path) & (rs->cap_slots - 1);
                while (rs->slots[h])
                        h = (h + 1) & (rs->cap_slots - 1);
                rs->slots[h] = run;
        }
        return run;
}

/* Forget the run at `path` and every run below it (a directory went away). */
static void runs_drop_below(struct manager *m, struct root_state *rs, const char *path_in)
{
        /* a copy: path_in may be the path of a run freed below */
        _cleanup_free_ char *path = strdup(path_in);
        size_t len, j = 0;

        if (!path)
                return;
        len = strlen(path);
        for (size_t i = 0; i < rs->n_runs; i++) {
                struct run_state *run = rs->runs[i];
                bool below = strcmp(path, ".") == 0 || strcmp(run->path, path) == 0 ||
                             (strncmp(run->path, path, len) == 0 && run->path[len] == '/');
                if (below)
                        run_state_free(run);
                else
                        rs->runs[j++] = run;
        }
        if (j != rs->n_runs) {
                rs->n_runs = j;
                /* the old index points at freed runs: rebuild it (cannot
                 * fail: the size is unchanged, or it was empty) */
                if (run_index_rebuild(rs) < 0) {
                        free(rs->slots);
                        rs->slots = NULL;
                        rs->cap_slots = 0;
                }
        }
        if (m->watcher && rs->index_valid)
                watcher_remove_below(m->watcher, rs->index, path);
}

static struct pending *pending_find(struct run_state *run, const char *name)
{
        for (size_t i = 0; i < run->n_pending; i++)
                if (strcmp(run->pending[i].name, name) == 0)
                        return &run->pending[i];
        return NULL;
}

static struct pending *pending_get(struct run_state *run, const char *name)
{
        struct pending *p = pending_find(run, name);

        if (p)
                return p;
        p = realloc(run->pending, (run->n_pending + 1) * sizeof(*p));
        if (!p)
                return NULL;
        run->pending = p;
        p = &run->pending[run->n_pending];
        *p = (struct pending){.name = strdup(name)};
        if (!p->name)
                return NULL;
        run->n_pending++;
        return p;
}

static void pending_drop(struct run_state *run, size_t i)
{
        free(run->pending[i].name);
        run->pending[i] = run->pending[--run->n_pending];
}

/* The path of entry `name` of a run, relative to the root (malloc'd). */
static char *child_path(const char *run_path, const char *name)
{
        char *p = NULL;

        if (strcmp(run_path, ".") == 0)
                return strdup(name);
        return asprintf(&p, "%s/%s", run_path, name) < 0 ? NULL : p;
}

/* Stop watching inside a directory checkpoint that is complete or gone. */
static void pending_unwatch(struct root_state *rs, struct run_state *run, struct pending *p)
{
        _cleanup_free_ char *path = NULL;

        if (!p->watched || !m_has_watcher(rs))
                return;
        path = child_path(run->path, p->name);
        if (path)
                watcher_remove_below(rs->m->watcher, rs->index, path);
        p->watched = false;
}

/* Events were lost (IN_Q_OVERFLOW): what they said about files being
 * written can no longer be trusted (an IN_CLOSE_WRITE may be among the lost
 * ones). Forget it; the rescan judges by the disk, as at start-up. */
static void pending_forget(struct root_state *rs)
{
        for (size_t i = 0; i < rs->n_runs; i++) {
                struct run_state *run = rs->runs[i];

                while (run->n_pending > 0) {
                        pending_unwatch(rs, run, &run->pending[run->n_pending - 1]);
                        pending_drop(run, run->n_pending - 1);
                }
        }
}

/* --- timers --- */

static int on_run_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct run_state *run = userdata;

        (void)s, (void)usec;
        run_sweep(run->rs->m, run->rs, run);
        return 0;
}

static uint64_t settle_usec(const struct root_state *rs)
{
        return (uint64_t)(rs->root.w->settle_sec * (double)USEC_PER_SEC);
}

static uint64_t accuracy_usec(const struct root_state *rs)
{
        uint64_t a = settle_usec(rs) / 20;

        return a > 10000 ? 10000 : a > 0 ? a : 1;
}

/* Sweep run `delay_usec` from now; an earlier deadline already set stands
 * unless `reset` (a new write postpones the settle deadline). */
static void run_arm(struct run_state *run, uint64_t delay_usec, bool reset)
{
        struct manager *m = run->rs->m;
        uint64_t now = (uint64_t)now_usec(CLOCK_MONOTONIC), when = now + delay_usec, cur = 0;
        int enabled = SD_EVENT_OFF;

        if (run->timer) {
                sd_event_source_get_enabled(run->timer, &enabled);
                sd_event_source_get_time(run->timer, &cur);
                if (enabled != SD_EVENT_OFF && !reset && cur <= when)
                        return;
                sd_event_source_set_time(run->timer, when);
                sd_event_source_set_enabled(run->timer, SD_EVENT_ONESHOT);
                return;
        }
        /* accuracy: a twentieth of settle, at most 10 ms, so that timers may
         * coalesce without making a short settle late */
        if (sd_event_add_time(m->event, &run->timer, CLOCK_MONOTONIC, when, accuracy_usec(run->rs), on_run_timer, run) <
            0)
                log_warning("cannot arm the settle timer of %s, ignoring", run->path);
}

/* --- sweeping one run --- */

/* What the events say overrides what the disk says: a file still open for
 * writing is incomplete however old its mtime; a directory renamed in or
 * whose marker appeared is complete however fresh. */
/* A marker (trainer_state.json, .metadata) completes a directory once
 * nothing more was written inside it for this long: with several ranks,
 * another may still be writing when rank 0 writes the marker. */
#define MARKER_QUIET_USEC (1 * USEC_PER_SEC)
/* A file created and never closed, with no event for this long (a hard link,
 * a writer that hangs): the disk decides, as for any file. */
#define WRITING_STALE_USEC (3600 * USEC_PER_SEC)

static bool pending_writing(const struct pending *p, uint64_t now)
{
        return p->writing && now - p->last_usec < WRITING_STALE_USEC;
}

static uint64_t pending_quiet_usec(const struct root_state *rs, const struct pending *p)
{
        if (p->marked && settle_usec(rs) > MARKER_QUIET_USEC)
                return MARKER_QUIET_USEC;
        return settle_usec(rs);
}

static int size_cmp(const void *x, const void *y)
{
        size_t a = *(const size_t *)x, b = *(const size_t *)y;

        return (a > b) - (a < b);
}

/* What the events say overrides what the disk says: a file still open for
 * writing is incomplete however old its mtime; a directory renamed in, or
 * quiet since its marker appeared, is complete however fresh. Returns the
 * delay after which a sweep should look again (0: no need). */
static uint64_t adjust_completeness(struct root_state *rs, struct run_state *run, uint64_t now)
{
        struct run *scanned = &run->idx;
        _cleanup_free_ size_t *with = NULL;
        size_t n_with = 0, w = 0;
        uint64_t again = 0;

        /* the few checkpoints with a member seen being written, by the
         * index's lookup rather than a compare of every member with every
         * pending name (ENOMEM: every checkpoint is looked at) */
        if (run->n_pending > 0) {
                with = malloc(run->n_pending * sizeof(*with));
                for (size_t j = 0; with && j < run->n_pending; j++) {
                        ssize_t at = index_find(run, run->pending[j].name);

                        if (at >= 0)
                                with[n_with++] = (size_t)at;
                }
                if (with)
                        qsort(with, n_with, sizeof(*with), size_cmp);
        }
        for (size_t i = 0; i < scanned->n_ckpts; i++) {
                struct ckpt *c = &scanned->ckpts[i];
                bool writing = false, seen = with ? w < n_with && with[w] == i : run->n_pending > 0;
                uint64_t wait = settle_usec(rs);

                while (w < n_with && with[w] == i)
                        w++;
                for (size_t k = 0; seen && k < c->n_members; k++) {
                        struct pending *p = pending_find(run, c->members[k]);
                        uint64_t quiet;

                        if (!p)
                                continue;
                        quiet = pending_quiet_usec(rs, p);
                        if (p->done || (p->marked && now - p->last_usec >= quiet)) {
                                c->complete = true;
                        } else if (pending_writing(p, now)) {
                                c->complete = false;
                                writing = true;
                                /* its IN_CLOSE_WRITE arms the timer; look again
                                 * only when it would count as stale */
                                wait = p->last_usec + WRITING_STALE_USEC - now;
                        } else if (now - p->last_usec < quiet) {
                                c->complete = false;
                                if (!writing)
                                        wait = p->last_usec + quiet - now;
                        }
                }
                if (c->complete)
                        continue;
                /* unsettled on disk (a write no watch saw): at least 1 s */
                if (!writing && wait < RECHECK_MIN_USEC)
                        wait = RECHECK_MIN_USEC;
                if (again == 0 || wait < again)
                        again = wait;
        }
        return again;
}

/* Drop pending entries that are settled, done, or gone from the run. */
static void pending_prune(struct root_state *rs, struct run_state *run, uint64_t now)
{
        for (size_t i = 0; i < run->n_pending;) {
                struct pending *p = &run->pending[i];
                ssize_t at = index_find(run, p->name);
                bool present = at >= 0, complete = present && run->idx.ckpts[at].complete;
                if (!pending_writing(p, now) && (!present || complete)) {
                        pending_unwatch(rs, run, p);
                        pending_drop(run, i);
                } else
                        i++;
        }
}

/* What a scan of the run could not read: logged once per change (a
 * persistent error must not fill the journal at every retry), counted, and
 * looked at again at the next check_interval with the whole root (the run's
 * subdirectories may be runs nobody could list). */
static void run_note_read_errors(struct manager *m, struct root_state *rs, struct run_state *run,
                                 const struct run *scanned)
{
        _cleanup_free_ char *key = NULL;
        struct sweep one = {};

        sweep_count_read_errors(&one, scanned);
        run->unreadable_whole = one.runs_unreadable > 0;
        run->n_unreadable = one.ckpts_unreadable;
        /* nothing unreadable now nor before: nothing to say (the common
         * case, at every save) */
        if (one.runs_unreadable == 0 && one.ckpts_unreadable == 0 && !run->read_errors)
                return;
        key = sweep_read_errors_key(scanned);
        if (!key || *key)
                rs->retry = true;
        if (!key || strcmp(key, run->read_errors ? run->read_errors : "") == 0)
                return;
        if (*key) {
                m->read_errors_total += sweep_log_read_errors(&rs->root, scanned);
        } else {
                _cleanup_free_ char *p = log_escape(run->path);
                log_notice("%s%s%s: read without errors again", rs->root.w->path, strcmp(run->path, ".") ? "/" : "",
                           strcmp(run->path, ".") ? (p ? p : "?") : "");
        }
        free(run->read_errors);
        run->read_errors = *key ? TAKE_PTR(key) : NULL;
}

/* Lower *again to when the first checkpoint kept only for being young
 * stops being young: min_age ends on time, not at the run's next event. */
static void young_again(const struct policy *p, const struct run *run, uint64_t *again)
{
        uint64_t min_usec;

        if (p->min_age_sec <= 0 || __builtin_mul_overflow((uint64_t)p->min_age_sec, USEC_PER_SEC, &min_usec))
                return;
        for (size_t i = 0; i < run->n_ckpts; i++) {
                const struct ckpt *c = &run->ckpts[i];
                uint64_t left;

                if (c->verdict.reasons != (1u << KEEP_YOUNG) || !c->age_known || c->age_usec < 0 ||
                    (uint64_t)c->age_usec >= min_usec)
                        continue;
                left = min_usec - (uint64_t)c->age_usec + 1;
                if (*again == 0 || left < *again)
                        *again = left;
        }
}

/* --- the index --- */

/* The order of scan.c: by order (NaN last), then by name. */
static int index_key_cmp(double order_a, const char *name_a, double order_b, const char *name_b)
{
        if (order_a != order_b && !isnan(order_a) && !isnan(order_b))
                return order_a < order_b ? -1 : 1;
        if (isnan(order_a) != isnan(order_b))
                return isnan(order_a) ? 1 : -1;
        return strcmp(name_a, name_b);
}

static int index_cmp(const struct ckpt *a, const struct ckpt *b)
{
        return index_key_cmp(a->order, a->name, b->order, b->name);
}

/* The slot of member `name` in run->members, or of the free slot where it
 * would go. */
static size_t members_slot(const struct run_state *run, const char *name)
{
        size_t mask = run->cap_members - 1, h = path_hash(name) & mask;

        while (run->members[h].member && strcmp(run->members[h].member, name) != 0)
                h = (h + 1) & mask;
        return h;
}

static void members_put(struct run_state *run, const struct ckpt *c)
{
        for (size_t k = 0; k < c->n_members; k++) {
                size_t h = members_slot(run, c->members[k]);

                if (!run->members[h].member)
                        run->n_members++;
                run->members[h] =
                        (struct member_slot){.member = c->members[k], .ckpt_name = c->name, .order = c->order};
        }
}

/* A run of fewer checkpoints is searched name by name: a table for each of
 * a tree's many small runs would cost more memory than it saves time. */
#define MEMBERS_MIN_CKPTS 32

/* Rebuild run->members from the index, at most half full. */
static void members_rebuild(struct run_state *run)
{
        size_t n = 0, cap = 64;

        run->members_valid = false;
        run->n_members = 0;
        if (run->idx.n_ckpts < MEMBERS_MIN_CKPTS) {
                free(run->members);
                run->members = NULL;
                run->cap_members = 0;
                return;
        }
        for (size_t i = 0; i < run->idx.n_ckpts; i++)
                n += run->idx.ckpts[i].n_members;
        while (cap < 2 * n + 2)
                cap *= 2;
        if (cap != run->cap_members) {
                struct member_slot *v = calloc(cap, sizeof(*v));

                free(run->members);
                run->members = v;
                run->cap_members = v ? cap : 0;
                if (!v)
                        return; /* index_find() searches the index */
        } else {
                memset(run->members, 0, cap * sizeof(*run->members));
        }
        for (size_t i = 0; i < run->idx.n_ckpts; i++)
                members_put(run, &run->idx.ckpts[i]);
        run->members_valid = true;
}

/* c is going into the index: its members into run->members. */
static void members_add(struct run_state *run, const struct ckpt *c)
{
        if (!run->members_valid) {
                if (run->idx.n_ckpts >= MEMBERS_MIN_CKPTS)
                        members_rebuild(run); /* c is in the index already */
                return;
        }
        if (2 * (run->n_members + c->n_members) + 2 > run->cap_members) {
                members_rebuild(run); /* c is in the index already */
                return;
        }
        members_put(run, c);
}

/* c is leaving the index: its members out of run->members, each hole
 * closed by moving back what probed past it (linear probing, Knuth 6.4 R). */
static void members_remove(struct run_state *run, const struct ckpt *c)
{
        size_t mask = run->cap_members - 1;

        if (!run->members_valid)
                return;
        for (size_t k = 0; k < c->n_members; k++) {
                size_t hole = members_slot(run, c->members[k]), j = hole;

                if (!run->members[hole].member)
                        continue;
                run->members[hole].member = NULL;
                run->n_members--;
                for (;;) {
                        size_t home;

                        j = (j + 1) & mask;
                        if (!run->members[j].member)
                                break;
                        home = path_hash(run->members[j].member) & mask;
                        /* j stays when its home lies cyclically in (hole, j] */
                        if (hole < j ? (home > hole && home <= j) : (home > hole || home <= j))
                                continue;
                        run->members[hole] = run->members[j];
                        run->members[j].member = NULL;
                        hole = j;
                }
        }
}

static bool ckpt_has_member(const struct ckpt *c, const char *name)
{
        for (size_t k = 0; k < c->n_members; k++)
                if (strcmp(c->members[k], name) == 0)
                        return true;
        return false;
}

/* The position of the checkpoint with member `name` in the index, or -1:
 * its key from run->members, then a binary search of the index (sorted by
 * index_cmp()). */
static ssize_t index_find(const struct run_state *run, const char *name)
{
        const struct run *idx = &run->idx;

        if (run->members_valid) {
                const struct member_slot *e = &run->members[members_slot(run, name)];
                size_t lo = 0, hi = idx->n_ckpts;

                if (!e->member)
                        return -1;
                while (lo < hi) {
                        size_t mid = lo + (hi - lo) / 2;
                        int r = index_key_cmp(idx->ckpts[mid].order, idx->ckpts[mid].name, e->order, e->ckpt_name);

                        if (r == 0 && ckpt_has_member(&idx->ckpts[mid], name))
                                return (ssize_t)mid;
                        if (r == 0)
                                break;
                        if (r < 0)
                                lo = mid + 1;
                        else
                                hi = mid;
                }
                /* not where its key says: never seen, but idx is only
                 * as sorted as the scan that made it; search it all */
        }
        for (size_t i = 0; i < idx->n_ckpts; i++)
                if (ckpt_has_member(&idx->ckpts[i], name))
                        return (ssize_t)i;
        return -1;
}

/* Move idx.ckpts back to the start of its allocation, as run_finish() and
 * realloc() want it. */
static void index_unshift(struct run_state *run)
{
        struct ckpt *base;

        if (run->off_ckpts == 0)
                return;
        base = run->idx.ckpts - run->off_ckpts;
        memmove(base, run->idx.ckpts, run->idx.n_ckpts * sizeof(*base));
        run->idx.ckpts = base;
        run->cap_ckpts += run->off_ckpts;
        run->off_ckpts = 0;
}

/* Drop checkpoint i, moving the shorter side of the array: the oldest go
 * first, and moving all the others would cost O(n) copies at each save. */
static void index_drop(struct run_state *run, size_t i)
{
        struct run *idx = &run->idx;

        members_remove(run, &idx->ckpts[i]);
        ages_keep(&run->ages, &idx->ckpts[i]); /* what it timed, until the run is observed */
        if (i < idx->n_ckpts / 2) {
                memmove(&idx->ckpts[1], &idx->ckpts[0], i * sizeof(*idx->ckpts));
                idx->ckpts++;
                run->off_ckpts++;
                run->cap_ckpts--;
        } else {
                memmove(&idx->ckpts[i], &idx->ckpts[i + 1], (idx->n_ckpts - i - 1) * sizeof(*idx->ckpts));
        }
        idx->n_ckpts--;
}

/* Insert c (taken) at its place in the order; run->cap_ckpts is the room
 * of idx.ckpts, grown by half so that a run of saves does not copy the
 * whole array at each. */
static int index_insert(struct run_state *run, struct ckpt *c)
{
        struct run *idx = &run->idx;
        struct ckpt *v;
        size_t lo = 0, hi = idx->n_ckpts;

        /* full: take back the room index_drop() left at the front, and
         * grow unless that is a quarter of the run at least, so that this
         * O(n) move comes at most once in n/4 saves */
        if (idx->n_ckpts >= run->cap_ckpts) {
                index_unshift(run);
                if (run->cap_ckpts - idx->n_ckpts < idx->n_ckpts / 4 + 1) {
                        size_t ncap = idx->n_ckpts + idx->n_ckpts / 2 + 4;

                        v = reallocarray(idx->ckpts, ncap, sizeof(*v));
                        if (v) {
                                idx->ckpts = v;
                                run->cap_ckpts = ncap;
                        } else if (idx->n_ckpts >= run->cap_ckpts) {
                                return -ENOMEM;
                        }
                }
        }
        v = idx->ckpts;
        /* after every one that does not sort after it */
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;

                if (index_cmp(&v[mid], c) > 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        memmove(&v[lo + 1], &v[lo], (idx->n_ckpts - lo) * sizeof(*v));
        v[lo] = *c;
        c->name = NULL, c->members = NULL, c->n_members = 0, c->n_fields = 0;
        idx->n_ckpts++;
        members_add(run, &v[lo]);
        return 0;
}

/* Adopt a scan of the whole run as its index, with room for a few saves
 * (index_insert() grows it by half after): room kept in every run's index
 * is memory held for the whole tree. */
static void index_adopt(struct run_state *run, struct run *scanned)
{
        size_t cap = scanned->n_ckpts + 4;
        struct ckpt *v = reallocarray(scanned->ckpts, cap, sizeof(*v));

        index_unshift(run);
        ages_keep_run(&run->ages, &run->idx); /* what they timed, until the run is observed */
        run_finish(&run->idx);
        run->idx = *scanned;
        *scanned = (struct run){};
        run->cap_ckpts = run->idx.n_ckpts;
        if (v) {
                run->idx.ckpts = v;
                run->cap_ckpts = cap;
        }
        run->indexed = true;
        run->full = false;
        members_rebuild(run);
}

/* Name `name` of the run changed: look at it again at the next settle. */
static void index_dirty(struct run_state *run, const char *name)
{
        for (size_t i = 0; i < run->dirty.n; i++)
                if (strcmp(run->dirty.v[i], name) == 0)
                        return;
        if (strv_push(&run->dirty, name) < 0)
                run->full = true;
}

/* Whether the index of run can be brought up to date name by name. */
static bool index_incremental(const struct root_state *rs, const struct run_state *run)
{
        return run->indexed && !run->full && !run->idx.pin_sources && run->idx.read_error == 0 &&
               scan_incremental(rs->root.w, rs->root.pat);
}

/* Whether entry `name` of the run is a symlink (or cannot be told). */
static bool entry_maybe_symlink(struct root_state *rs, struct run_state *run, const char *name)
{
        _cleanup_free_ char *path = child_path(run->path, name);
        struct stat st;

        if (!path)
                return true;
        if (fstatat(rs->root.fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno != ENOENT;
        return S_ISLNK(st.st_mode);
}

/* What an event in a run means for its index: a checkpoint name to look at
 * again, or a change only a scan of the whole run can judge (a keep file,
 * an -unfinished marker, a symlink: pins of other names). Returns whether
 * the run should be decided again now rather than after settle. */
static bool index_note(struct root_state *rs, struct run_state *run, const struct watch_event *ev, bool candidate)
{
        const char *name = ev->name;

        if (!name || !*name || strncmp(name, TOMBSTONE_PREFIX, strlen(TOMBSTONE_PREFIX)) == 0)
                return false; /* our own removals */
        if (scan_name_pins(name)) {
                run->full = true;
                return ev->kind != WATCH_EVENT_MODIFIED;
        }
        if (candidate) {
                /* gone: what was decided with it changes now */
                if (ev->kind == WATCH_EVENT_GONE) {
                        if (index_find(run, name) < 0)
                                return false; /* removed by us, or never one */
                        index_dirty(run, name);
                        return true;
                }
                index_dirty(run, name);
                return false;
        }
        if ((ev->kind == WATCH_EVENT_CREATED || ev->kind == WATCH_EVENT_MOVED_IN) &&
            entry_maybe_symlink(rs, run, name)) {
                run->full = true;
                return true;
        }
        return false;
}

/* Bring the index up to date: every name that changed and every checkpoint
 * that had not settled, one scan_one() each. 0, or -errno (-EAGAIN and any
 * failed read: a scan of the whole run decides instead). */
static int index_update(struct root_state *rs, struct run_state *run, int64_t now)
{
        _cleanup_close_ int fd = -1;
        int r = 0;

        for (size_t i = 0; i < run->idx.n_ckpts; i++)
                if (!run->idx.ckpts[i].complete)
                        index_dirty(run, run->idx.ckpts[i].name);
        if (run->full)
                return -EAGAIN;
        fd = openat_beneath(rs->root.fd, run->path, O_PATH | O_DIRECTORY, 0);
        if (fd < 0)
                return fd;
        for (size_t i = 0; i < run->dirty.n && r >= 0; i++) {
                struct ckpt c = {};
                ssize_t at;

                r = scan_one(fd, run->dirty.v[i], rs->root.w, rs->root.pat, now, &c);
                if (r < 0)
                        break;
                at = index_find(run, run->dirty.v[i]);
                if (at >= 0)
                        index_drop(run, (size_t)at);
                if (r > 0) {
                        r = index_insert(run, &c);
                        ckpt_finish(&c);
                }
        }
        strv_finish(&run->dirty);
        return r < 0 ? r : 0;
}

/* For the floor: the index of a run with something unsettled brought up
 * to date (names, sizes) without deciding or deleting anything yet; the
 * run's own settle timer does that. */
static void index_refresh(struct root_state *rs, struct run_state *run, int64_t now)
{
        struct run scanned = {};
        int r;

        if (index_incremental(rs, run) && index_update(rs, run, now) == 0)
                return;
        strv_finish(&run->dirty);
        r = sweep_scan_run(&rs->root, run->path, now, &scanned);
        if (r < 0) {
                run->full = true; /* the run's timer scans it again */
                return;
        }
        index_adopt(run, &scanned);
}

/* After deletions: drop from the index what is gone from the disk. What is
 * still there (a failure, the deletion cap, a dry run) stays. */
static void index_prune_deleted(struct root_state *rs, struct run_state *run)
{
        for (size_t i = 0; i < run->idx.n_ckpts;) {
                const struct ckpt *c = &run->idx.ckpts[i];
                size_t gone = 0;

                for (size_t k = 0; !c->verdict.keep && k < c->n_members; k++) {
                        _cleanup_free_ char *path = child_path(run->path, c->members[k]);
                        struct stat st;

                        if (path && fstatat(rs->root.fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
                                gone++;
                }
                if (gone > 0 && gone < c->n_members)
                        run->full = true; /* part of a group: rescan */
                if (gone > 0 && gone == c->n_members)
                        index_drop(run, i);
                else
                        i++;
        }
}

/* Decide and act on the run's index: completeness from the events, the
 * policy, deletions, then a timer for what has not settled yet. scanned,
 * when not NULL, is a scan of the whole run that replaces the index (taken). */
static void run_process(struct manager *m, struct root_state *rs, struct run_state *run, struct run *scanned_in,
                        struct sweep *s)
{
        uint64_t now = (uint64_t)now_usec(CLOCK_MONOTONIC), again;
        struct run *scanned = &run->idx;

        if (scanned_in) {
                index_adopt(run, scanned_in);
                strv_finish(&run->dirty);
        }

        /* ages and settling on our own clock first; events override */
        if (ages_observe(&run->ages, scanned, s->now_usec, settle_usec(rs)) < 0)
                log_warning("%s/%s: out of memory timing checkpoints: ages from mtimes", rs->root.w->path, run->path);
        again = adjust_completeness(rs, run, now);

        if (run_decide(&rs->root.w->policy, scanned->ckpts, scanned->n_ckpts, s->now_usec) < 0)
                log_warning("%s/%s: out of memory ranking by owner: keeping every checkpoint", rs->root.w->path,
                            run->path);
        run_note_read_errors(m, rs, run, scanned);
        sweep_note_monitor(&rs->root, scanned, &run->monitor_missing);
        young_again(&rs->root.w->policy, scanned, &again);
        sweep_apply(s, &rs->root, scanned);
        space_seen(&m->space, rs->root.dev, scanned);
        if (!s->dry_run)
                index_prune_deleted(rs, run);
        pending_prune(rs, run, now);
        /* what is left in the run (a dry run deletes nothing) */
        run->n_ckpts = scanned->n_ckpts;
        /* look again once the unsettled ones may have settled */
        if (again > 0)
                run_arm(run, again, false);
}

/* The end of a sweep: totals, a stop that arrived during it, the floor (is
 * there room for the next checkpoint?), STATUS=. */
static void sweep_done(struct manager *m, const struct sweep *s)
{
        manager_account(m, s);
        if (s->stopped)
                manager_stop(m, "SIGTERM or SIGINT during a sweep");
        manager_floor_soon(m);
        manager_status(m);
}

static int run_sweep(struct manager *m, struct root_state *rs, struct run_state *run)
{
        struct sweep s;
        struct run scanned = {};
        int r;

        if (!rs->present)
                return 0;
        sweep_init(&s, m->config, m->dry_run);
        /* a new checkpoint: one scan_one() and a decision in memory */
        if (index_incremental(rs, run)) {
                r = index_update(rs, run, s.now_usec);
                if (r == 0) {
                        run_process(m, rs, run, NULL, &s);
                        sweep_done(m, &s);
                        return 0;
                }
                if (r == -ENOMEM)
                        return log_warning_errno(r, "cannot scan %s/%s: %m, trying again later", rs->root.w->path,
                                                 run->path);
        }
        strv_finish(&run->dirty);
        r = sweep_scan_run(&rs->root, run->path, s.now_usec, &scanned);
        if (r == -ENOENT || r == -ENOTDIR || r == -ELOOP || r == -EXDEV) {
                runs_drop_below(m, rs, run->path); /* frees run */
                return 0;
        }
        if (r < 0) {
                rs->retry = true; /* ENOMEM: look again at check_interval */
                return log_warning_errno(r, "cannot scan %s/%s: %m, trying again later", rs->root.w->path, run->path);
        }
        run_process(m, rs, run, &scanned, &s);
        sweep_done(m, &s);
        return 0;
}

/* --- roots: watches, scans, the parent watch while a root is gone --- */

static bool is_network_fs(int fd)
{
        struct statfs sf;

        if (fstatfs(fd, &sf) < 0)
                return false;
        switch ((unsigned long)sf.f_type) {
        case 0x6969:     /* NFS */
        case 0x517b:     /* SMB */
        case 0xff534d42: /* CIFS */
        case 0xfe534d42: /* SMB2 */
        case 0x65735546: /* FUSE */
        case 0x00c36400: /* Ceph */
        case 0x0bd00bd0: /* Lustre */
        case 0x47504653: /* GPFS */ return true;
        default: return false;
        }
}

static int on_poll_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct root_state *rs = userdata;

        (void)s, (void)usec;
        root_rescan(rs->m, rs);
        root_arm_poll(rs); /* even when the rescan failed: try again */
        return 0;
}

/* Polled roots (a network filesystem, or the watch limit reached) are
 * rescanned every poll_interval, in addition to any inotify events. */
static void root_arm_poll(struct root_state *rs)
{
        uint64_t sec = rs->root.w->poll_interval_sec > 0 ? (uint64_t)rs->root.w->poll_interval_sec : DEFAULT_POLL_SEC;

        if (!rs->polled && rs->root.w->poll_interval_sec <= 0)
                return;
        if (rs->poll_timer) {
                sd_event_source_set_time_relative(rs->poll_timer, sec * USEC_PER_SEC);
                sd_event_source_set_enabled(rs->poll_timer, SD_EVENT_ONESHOT);
                return;
        }
        sd_event_add_time_relative(rs->m->event, &rs->poll_timer, CLOCK_MONOTONIC, sec * USEC_PER_SEC, USEC_PER_SEC,
                                   on_poll_timer, rs);
}

/* Watch a directory of the root; the watch limit turns the root to polling. */
static int root_watch(struct manager *m, struct root_state *rs, const char *path, enum watch_kind kind)
{
        int r;

        if (!m->watcher)
                return 0; /* events come from elsewhere (manager_watch_event) */
        r = watcher_add_beneath(m->watcher, rs->root.fd, path, rs->index, kind, NULL);

        if (r == -ENOSPC) {
                if (!rs->polled)
                        log_warning("%s: inotify watch limit reached (fs.inotify.max_user_watches); "
                                    "polling this watch every %llds instead",
                                    rs->root.w->path,
                                    (long long)(rs->root.w->poll_interval_sec > 0 ? rs->root.w->poll_interval_sec
                                                                                  : DEFAULT_POLL_SEC));
                rs->polled = true;
                root_arm_poll(rs);
                return 0;
        }
        if (r < 0 && r != -ENOENT && r != -ENOTDIR && r != -ELOOP && r != -EXDEV)
                return log_warning_errno(r, "cannot watch %s/%s: %m, ignoring", rs->root.w->path, path);
        return r < 0 ? r : 0;
}

/* Watch the parent of the root, for the root's return and, while it is
 * there, for its removal: we hold the root open (O_PATH), which keeps its
 * dentry in use, and the kernel sends IN_DELETE_SELF only when the last
 * reference to it goes (d_delete() in fs/dcache.c), so the parent's IN_DELETE
 * is the only news that the root was removed. Re-adding updates the entry. */
static int root_watch_parent(struct manager *m, struct root_state *rs)
{
        _cleanup_free_ char *parent = strdup(rs->root.w->path);
        _cleanup_close_ int fd = -1;
        char *slash;

        if (!parent)
                return -ENOMEM;
        if (!m->watcher)
                return 0;
        slash = strrchr(parent, '/');
        if (!slash)
                return -EINVAL;
        slash[slash == parent ? 1 : 0] = '\0';
        fd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return watcher_add(m->watcher, fd, parent, rs->index, WATCH_PARENT, NULL);
}

/* The root is gone (or not there yet): drop its runs and watches but the
 * parent watch, which tells us when it comes back. */
static void root_lost(struct manager *m, struct root_state *rs)
{
        if (rs->present)
                log_warning("%s is gone; watching for it to come back", rs->root.w->path);
        runs_drop_below(m, rs, "."); /* every watch of the root but PARENT */
        root_lock_release(&rs->lock);
        rs->root.fd = safe_close(rs->root.fd);
        rs->present = false;
        floor_roots_changed(m);
        if (root_watch_parent(m, rs) < 0)
                log_warning("cannot watch the parent of %s for it to come back; checking every %llds", rs->root.w->path,
                            (long long)m->config->check_interval_sec);
}

/* The root could not be watched or scanned. Gone (or replaced by something
 * else): watch for its return. Anything else (EIO from a network
 * filesystem, EMFILE, ENOMEM) may pass: keep what we have and try again at
 * the next check_interval. */
static int root_failed(struct manager *m, struct root_state *rs, int r)
{
        if (r == -ENOENT || r == -ENOTDIR || r == -ESTALE || r == -ELOOP)
                root_lost(m, rs);
        else
                rs->retry = true;
        return 0;
}

/* Scan the runs at and below `sub` (a path relative to the root, "." for
 * all of it): *ret_runs get paths relative to the root. */
static int scan_subtree(struct root_state *rs, const char *sub, int64_t now, struct run **ret_runs, size_t *ret_n)
{
        struct root r = rs->root;
        _cleanup_close_ int fd = -1;
        int k;

        if (strcmp(sub, ".") == 0)
                return sweep_scan_root(&rs->root, now, ret_runs, ret_n);
        fd = openat_beneath(rs->root.fd, sub, O_PATH | O_DIRECTORY, 0);
        if (fd < 0)
                return fd;
        r.fd = fd;
        k = sweep_scan_root(&r, now, ret_runs, ret_n);
        if (k < 0)
                return k;
        for (size_t i = 0; i < *ret_n; i++) {
                char *p = NULL;
                struct run *run = &(*ret_runs)[i];

                if (strcmp(run->path, ".") == 0)
                        p = strdup(sub);
                else if (asprintf(&p, "%s/%s", sub, run->path) < 0)
                        p = NULL;
                if (!p)
                        return -ENOMEM;
                free(run->path);
                run->path = p;
        }
        return 0;
}

static bool path_below(const char *path, const char *sub)
{
        size_t len = strlen(sub);

        return strcmp(sub, ".") == 0 || strcmp(path, sub) == 0 || (strncmp(path, sub, len) == 0 && path[len] == '/');
}

/* Open the root when needed, watch every run at and below `sub` (the watch
 * is added before the run is scanned, so nothing slips between: a round that
 * added watches is scanned again, and the last round, which added none, is
 * what gets swept), then sweep those runs. */
static int root_rescan_at(struct manager *m, struct root_state *rs, const char *sub)
{
        int64_t now = now_usec(CLOCK_REALTIME);
        struct run *runs = NULL;
        size_t n = 0;
        int r, rounds = 0;
        bool added;
        struct sweep s;

        if (!rs->present) {
                if (rs->root.fd < 0 && root_open_fd(&rs->root) < 0) {
                        root_lost(m, rs);
                        return 0;
                }
                /* before the first decision; at start-up roots_start() took
                 * it already. Held by another ckptd: not ours to watch,
                 * tried again every check_interval. */
                if (!rs->lock.held) {
                        r = root_lock_take(&rs->lock, rs->root.fd, rs->root.w->path, 0,
                                           rs->lock_refused ? LOG_DEBUG : LOG_ERR);
                        if (r < 0) {
                                if (!rs->lock_refused)
                                        log_error("not watching %s while it is locked; trying again every %llds",
                                                  rs->root.w->path, (long long)m->config->check_interval_sec);
                                rs->lock_refused = true;
                                rs->root.fd = safe_close(rs->root.fd);
                                return 0;
                        }
                        if (rs->lock_refused)
                                log_notice("%s is no longer locked by another process: watching it", rs->root.w->path);
                        rs->lock_refused = false;
                }
                rs->present = true;
                sub = ".";
                if (is_network_fs(rs->root.fd) && !rs->polled) {
                        log_notice("%s is on a network filesystem: polling it as well", rs->root.w->path);
                        rs->polled = true;
                }
                if (root_watch_parent(m, rs) < 0)
                        log_warning("cannot watch the parent of %s: its removal may go unnoticed", rs->root.w->path);
                if (rs->seen_before)
                        log_notice("%s is back", rs->root.w->path);
                rs->seen_before = true;
                floor_roots_changed(m);
        }
        if (strcmp(sub, ".") == 0) {
                r = root_watch(m, rs, ".", WATCH_ROOT);
                if (r < 0 && !rs->polled)
                        return root_failed(m, rs, r);
        }
        do {
                added = false;
                runs_free(runs, n);
                runs = NULL, n = 0;
                r = scan_subtree(rs, sub, now, &runs, &n);
                if (r < 0 && strcmp(sub, ".") == 0) {
                        runs_free(runs, n);
                        log_errno(r, "cannot scan %s: %m", rs->root.w->path);
                        return root_failed(m, rs, r);
                }
                if (r < 0) {
                        runs_free(runs, n);
                        /* the new directory went away again; any other
                         * error: the whole root at the next check_interval,
                         * which reports it as an unreadable run */
                        if (!scan_error_is_gone(r) && r != -ESTALE)
                                rs->retry = true;
                        return 0;
                }
                for (size_t i = 0; i < n; i++) {
                        if (run_find(rs, runs[i].path))
                                continue;
                        if (!run_get(rs, runs[i].path)) {
                                runs_free(runs, n);
                                return log_errno(-ENOMEM, "out of memory");
                        }
                        if (strcmp(runs[i].path, ".") != 0)
                                root_watch(m, rs, runs[i].path, WATCH_RUN);
                        added = true;
                }
                /* Interrupted removals, before anything is decided; their
                 * tombstones are dot files, never checkpoints. */
                if (!rs->tombstones_done && !m->dry_run) {
                        sweep_tombstones(&rs->root);
                        rs->tombstones_done = true;
                }
        } while (added && ++rounds < 8);

        /* forget the runs below sub that are gone, then sweep the others */
        rs->generation++;
        for (size_t j = 0; j < n; j++) {
                struct run_state *run = run_find(rs, runs[j].path);
                if (run)
                        run->seen = rs->generation;
        }
        for (size_t i = 0; i < rs->n_runs;) {
                if (rs->runs[i]->seen != rs->generation && path_below(rs->runs[i]->path, sub))
                        runs_drop_below(m, rs, rs->runs[i]->path);
                else
                        i++;
        }
        sweep_init(&s, m->config, m->dry_run);
        s.now_usec = now;
        /* a run that cannot be read sets it again */
        if (strcmp(sub, ".") == 0)
                rs->retry = false;
        for (size_t j = 0; j < n; j++) {
                struct run_state *run = run_find(rs, runs[j].path);
                if (run)
                        run_process(m, rs, run, &runs[j], &s);
        }
        runs_free(runs, n);
        sweep_done(m, &s);
        /* a new run's subtree does not postpone the poll of the whole */
        if (strcmp(sub, ".") == 0)
                root_arm_poll(rs);
        /* the scan of a large tree leaves freed memory behind: give it back */
        malloc_trim(0);
        return 0;
}

static int root_rescan(struct manager *m, struct root_state *rs)
{
        return root_rescan_at(m, rs, ".");
}

/* --- inotify events --- */

static bool name_is_candidate(const struct root_state *rs, const char *name, bool is_dir)
{
        const struct watch_conf *w = rs->root.w;

        if (scan_name_ignored(w, name))
                return false;
        if ((w->kind == KIND_FILE && is_dir) || (w->kind == KIND_DIR && !is_dir))
                return false;
        return scan_name_matches(w, rs->root.pat, name, NULL);
}

/* Something is being written below a watched run: a checkpoint under its
 * own name or under a temporary one (Lightning's and HF's tmp + rename,
 * Orbax's tmp directories) that is not a checkpoint yet but fills the disk
 * all the same. The floor is checked now and every second after it. */
static void note_write(struct manager *m, const struct watch_event *ev)
{
        bool started =
                ev->kind == WATCH_EVENT_CREATED || (ev->kind == WATCH_EVENT_DIR_CREATED && (ev->mask & IN_CREATE));

        if (strncmp(ev->name, TOMBSTONE_PREFIX, strlen(TOMBSTONE_PREFIX)) == 0)
                return; /* our own removals */
        if (!started && ev->kind != WATCH_EVENT_MODIFIED)
                return;
        m->last_write_usec = (uint64_t)now_usec(CLOCK_MONOTONIC);
        if (started)
                manager_floor_soon(m);
        manager_floor_writing(m, true);
}

/* Whether a file just created is one being written: a regular file with a
 * single link (not a hard link made to an existing checkpoint). */
static bool created_for_writing(struct root_state *rs, struct run_state *run, const char *name)
{
        _cleanup_free_ char *path = child_path(run->path, name);
        struct stat st;

        if (!path || fstatat(rs->root.fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return true; /* gone already, or unknown: the safe side */
        return S_ISREG(st.st_mode) && st.st_nlink == 1;
}

static void on_run_event(struct manager *m, struct root_state *rs, const struct watch_event *ev)
{
        uint64_t now = (uint64_t)now_usec(CLOCK_MONOTONIC);
        const char *dir = ev->dir->path;
        struct run_state *run;
        struct pending *p;
        bool candidate;

        if (ev->kind == WATCH_EVENT_SELF_GONE) {
                if (ev->dir->kind == WATCH_ROOT)
                        root_lost(m, rs);
                else
                        runs_drop_below(m, rs, dir);
                return;
        }
        run = run_find(rs, dir);
        if (!run)
                return;
        candidate = name_is_candidate(rs, ev->name, ev->is_dir);
        m->last_event_usec = now_usec(CLOCK_REALTIME);
        note_write(m, ev);
        if (index_note(rs, run, ev, candidate))
                run_arm(run, 0, false);

        switch (ev->kind) {
        case WATCH_EVENT_DIR_CREATED:
                if (candidate) {
                        p = pending_get(run, ev->name);
                        if (!p)
                                return;
                        p->last_usec = now;
                        if (ev->mask & IN_MOVED_TO) {
                                /* renamed in whole (Orbax, DCP): complete now */
                                p->done = true;
                                run_arm(run, 0, true);
                        } else {
                                /* a directory checkpoint starts: watch inside
                                 * it for its marker and its writes */
                                _cleanup_free_ char *path = child_path(run->path, ev->name);
                                if (path && root_watch(m, rs, path, WATCH_CKPT) == 0)
                                        p->watched = true;
                                run_arm(run, settle_usec(rs), true);
                        }
                } else if (rs->root.w->recursive && !scan_name_ignored(rs->root.w, ev->name)) {
                        /* a new run (or a tree of them): watch, then scan */
                        _cleanup_free_ char *path = child_path(run->path, ev->name);
                        if (path)
                                root_rescan_at(m, rs, path);
                        /* preset auto: it may be a checkpoint of this run's
                         * layout (checkpoint-N/), which only a scan can tell */
                        if (streq_ptr(rs->root.w->preset, "auto"))
                                run_arm(run, settle_usec(rs), false);
                }
                return;
        case WATCH_EVENT_CREATED:
        case WATCH_EVENT_MODIFIED:
                if (!candidate)
                        return;
                p = pending_get(run, ev->name);
                if (!p)
                        return;
                p->done = p->marked = false;
                p->last_usec = now;
                /* A hard link or a special file is created whole: no
                 * IN_CLOSE_WRITE will follow; settle decides. */
                p->writing = ev->kind == WATCH_EVENT_MODIFIED || created_for_writing(rs, run, ev->name);
                if (!p->writing)
                        run_arm(run, settle_usec(rs), true);
                return;
        case WATCH_EVENT_WRITE_DONE:
        case WATCH_EVENT_MOVED_IN:
                if (candidate) {
                        p = pending_get(run, ev->name);
                        if (!p)
                                return;
                        p->writing = false;
                        p->last_usec = now;
                        run_arm(run, settle_usec(rs), true);
                } else if (!scan_name_ignored(rs->root.w, ev->name)) {
                        /* a pointer file, a .keep, a symlink: pins changed */
                        run_arm(run, 0, false);
                }
                return;
        case WATCH_EVENT_GONE:
                p = pending_find(run, ev->name);
                if (p) {
                        pending_unwatch(rs, run, p);
                        pending_drop(run, (size_t)(p - run->pending));
                }
                if (ev->is_dir && !candidate && rs->root.w->recursive) {
                        _cleanup_free_ char *path = child_path(run->path, ev->name);
                        if (path)
                                runs_drop_below(m, rs, path);
                } else if (!candidate && ev->name[0] != '.') {
                        /* A pointer file, a .keep or a symlink went: what it
                         * pinned may go now, not at the run's next save.
                         * Excluded names too: Lightning's last.ckpt link is
                         * one. Not dot files: our own tombstones. */
                        run_arm(run, 0, false);
                }
                return;
        default: return;
        }
}

/* An event inside a directory checkpoint being written. */
static void on_ckpt_event(struct manager *m, struct root_state *rs, const struct watch_event *ev)
{
        uint64_t now = (uint64_t)now_usec(CLOCK_MONOTONIC);
        _cleanup_free_ char *run_path = strdup(ev->dir->path);
        const char *marker = rs->root.w->complete_marker;
        struct run_state *run;
        struct pending *p;
        char *slash;

        if (!run_path || ev->kind == WATCH_EVENT_SELF_GONE)
                return;
        slash = strrchr(run_path, '/');
        if (slash)
                *slash = '\0';
        run = run_find(rs, slash ? run_path : ".");
        if (!run)
                return;
        p = pending_find(run, slash ? slash + 1 : run_path);
        if (!p)
                return;
        index_dirty(run, p->name);
        p->last_usec = now;
        m->last_event_usec = now_usec(CLOCK_REALTIME);
        if (marker && *marker && strcmp(ev->name, marker) == 0 &&
            (ev->kind == WATCH_EVENT_WRITE_DONE || ev->kind == WATCH_EVENT_MOVED_IN ||
             ev->kind == WATCH_EVENT_DIR_CREATED)) {
                p->marked = true;
                run_arm(run, pending_quiet_usec(rs, p), true);
                return;
        }
        note_write(m, ev);
        run_arm(run, pending_quiet_usec(rs, p), true);
}

/* An event in the parent of a root: the root removed, moved away, created,
 * moved in, or replaced by a rename over it. */
static void on_parent_event(struct manager *m, struct root_state *rs, const struct watch_event *ev)
{
        const char *base = strrchr(rs->root.w->path, '/');
        struct stat now_st, held_st;

        if (!base || strcmp(ev->name, base + 1) != 0)
                return;
        if (ev->kind == WATCH_EVENT_GONE && rs->present) {
                root_lost(m, rs);
                return;
        }
        if (ev->kind != WATCH_EVENT_DIR_CREATED)
                return;
        if (rs->present) {
                /* still the directory we hold: an event from before we opened it */
                if (stat(rs->root.w->path, &now_st) == 0 && fstat(rs->root.fd, &held_st) == 0 &&
                    now_st.st_dev == held_st.st_dev && now_st.st_ino == held_st.st_ino)
                        return;
                root_lost(m, rs);
        }
        root_rescan(m, rs);
}

static struct root_state *root_by_index(struct manager *m, unsigned index)
{
        for (size_t i = 0; i < m->n_roots; i++)
                if (m->roots[i].index_valid && m->roots[i].index == index)
                        return &m->roots[i];
        return NULL;
}

void manager_watch_event(struct manager *m, const struct watch_event *ev)
{
        struct root_state *rs;

        if (ev->kind == WATCH_EVENT_OVERFLOW) {
                /* inotify(7): events were lost; only a full rescan is safe */
                log_notice("inotify queue overflow; rescanning everything");
                m->rescan_all = true;
                return;
        }
        if (!ev->dir)
                return;
        /* the watcher tag is the root's index, new on every reload: not a
         * position in m->roots */
        rs = root_by_index(m, ev->dir->root);
        if (!rs)
                return;
        if (ev->kind == WATCH_EVENT_IGNORED) {
                /* the kernel dropped the watch: the directory is gone */
                if (ev->dir->kind == WATCH_ROOT && rs->present)
                        root_lost(m, rs);
                return;
        }
        switch (ev->dir->kind) {
        case WATCH_ROOT:
        case WATCH_RUN: on_run_event(m, rs, ev); break;
        case WATCH_CKPT: on_ckpt_event(m, rs, ev); break;
        case WATCH_PARENT: on_parent_event(m, rs, ev); break;
        default: break;
        }
}

static void on_watch_event(void *userdata, const struct watch_event *ev)
{
        manager_watch_event(userdata, ev);
}

static int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct manager *m = userdata;
        int r;

        (void)s, (void)fd, (void)revents;
        r = watcher_read(m->watcher, on_watch_event, m);
        if (r < 0 && r != -EAGAIN)
                log_warning_errno(r, "cannot read inotify events: %m, rescanning");
        if (r < 0 || m->rescan_all) {
                m->rescan_all = false;
                for (size_t i = 0; i < m->n_roots; i++) {
                        pending_forget(&m->roots[i]);
                        root_rescan(m, &m->roots[i]);
                }
        }
        return 0;
}

/* --- the free-space floor: timers around space.c --- */

/* The floor's view: the decided runs of filesystem dev from the index. A
 * run with something still being written is decided again first, as its
 * completeness moves with time; the others stand as last decided. */
static int floor_runs(void *userdata, dev_t dev, struct space_run **ret, size_t *ret_n)
{
        struct manager *m = userdata;
        uint64_t now = (uint64_t)now_usec(CLOCK_MONOTONIC);
        int64_t wall = now_usec(CLOCK_REALTIME);
        struct space_run *v = NULL;
        size_t n = 0, cap = 0;

        for (size_t i = 0; i < m->n_roots; i++) {
                struct root_state *rs = &m->roots[i];

                if (!rs->present || rs->root.fd < 0 || rs->root.dev != dev)
                        continue;
                for (size_t j = 0; j < rs->n_runs; j++) {
                        struct run_state *run = rs->runs[j];
                        bool unsettled = run->n_pending > 0;

                        if (!run->indexed)
                                continue;
                        for (size_t k = 0; k < run->idx.n_ckpts && !unsettled; k++)
                                unsettled = !run->idx.ckpts[k].complete;
                        unsettled = unsettled || run->dirty.n > 0 || run->full;
                        if (unsettled) {
                                /* what is being written counts as room
                                 * taken: its size now, not at its last
                                 * decision */
                                index_refresh(rs, run, wall);
                                if (ages_observe(&run->ages, &run->idx, wall, settle_usec(rs)) < 0)
                                        log_warning("%s/%s: out of memory timing checkpoints: ages from mtimes",
                                                    rs->root.w->path, run->path);
                                adjust_completeness(rs, run, now);
                                if (run_decide(&rs->root.w->policy, run->idx.ckpts, run->idx.n_ckpts, wall) < 0)
                                        log_warning("%s/%s: out of memory ranking by owner: keeping every checkpoint",
                                                    rs->root.w->path, run->path);
                        }
                        if (n == cap) {
                                size_t ncap = cap ? cap * 2 : 64;
                                struct space_run *nv = reallocarray(v, ncap, sizeof(*nv));
                                if (!nv) {
                                        free(v);
                                        return -ENOMEM;
                                }
                                v = nv;
                                cap = ncap;
                        }
                        v[n++] = (struct space_run){.root = &rs->root, .run = &run->idx};
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static size_t present_roots(struct manager *m, struct root **ret)
{
        size_t n = 0;

        for (size_t i = 0; i < m->n_roots; i++)
                if (m->roots[i].present)
                        ret[n++] = &m->roots[i].root;
        return n;
}

static void floor_check(struct manager *m)
{
        _cleanup_free_ struct root **roots = calloc(m->n_roots + 1, sizeof(*roots));
        struct sweep s;
        size_t n;

        if (!roots)
                return;
        n = present_roots(m, roots);
        sweep_init(&s, m->config, m->dry_run);
        space_check(&m->space, roots, n, &s, floor_runs, m);
        /* another ckptd is evicting on one of our filesystems: look again
         * once it may be done, whatever else is (not) being written */
        if (m->space.busy && m->soon_timer) {
                sd_event_source_set_time_relative(m->soon_timer, USEC_PER_SEC);
                sd_event_source_set_enabled(m->soon_timer, SD_EVENT_ONESHOT);
        }
        manager_account(m, &s);
        if (s.stopped)
                manager_stop(m, "SIGTERM or SIGINT during a sweep");
        /* free space that STATUS= shows changed too (a trainer wrote, or
         * something else freed): republish, or it goes stale */
        if (s.deleted > 0 || m->floor_unmet != space_any_unmet(&m->space) || control_status_changed(m)) {
                m->floor_unmet = space_any_unmet(&m->space);
                manager_status(m);
        }
}

/* Writes seen within this long count as "being written" for the floor; a
 * writer that went quiet (or died) does not keep the per-second check on,
 * and its next write turns it on again. */
#define WRITING_QUIET_USEC (3 * USEC_PER_SEC)

static bool anything_writing(struct manager *m)
{
        uint64_t now = (uint64_t)now_usec(CLOCK_MONOTONIC);

        if (now - m->last_write_usec < WRITING_QUIET_USEC)
                return true;
        for (size_t i = 0; i < m->n_roots; i++)
                for (size_t j = 0; j < m->roots[i].n_runs; j++) {
                        const struct run_state *run = m->roots[i].runs[j];
                        for (size_t k = 0; k < run->n_pending; k++) {
                                const struct pending *p = &run->pending[k];
                                if ((p->writing || !p->done) && now - p->last_usec < WRITING_QUIET_USEC)
                                        return true;
                        }
                }
        return false;
}

static int on_floor_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct manager *m = userdata;

        (void)usec;
        floor_check(m);
        if (s == m->writing_timer) {
                if (anything_writing(m))
                        sd_event_source_set_time_relative(s, USEC_PER_SEC);
                else
                        sd_event_source_set_enabled(s, SD_EVENT_OFF);
        } else if (s == m->check_timer) {
                /* a root that is missing (its parent may be gone too, or not
                 * watchable) or failed to scan: look again */
                for (size_t i = 0; i < m->n_roots; i++)
                        if (!m->roots[i].present || m->roots[i].retry)
                                root_rescan(m, &m->roots[i]);
                /* the metrics file's exact free bytes, at least this often */
                manager_status(m);
                sd_event_source_set_time_relative(s, (uint64_t)m->config->check_interval_sec * USEC_PER_SEC);
        }
        return 0;
}

/* Roots may have come or gone: the filesystems to look after change. */
static void floor_roots_changed(struct manager *m)
{
        _cleanup_free_ struct root **roots = calloc(m->n_roots + 1, sizeof(*roots));

        if (roots)
                space_set_roots(&m->space, roots, present_roots(m, roots));
}

int manager_floor_start(struct manager *m)
{
        int r;

        floor_roots_changed(m);
        /* accuracy 1 s: the idle check need not wake us at an exact time */
        r = sd_event_add_time_relative(m->event, &m->check_timer, CLOCK_MONOTONIC,
                                       (uint64_t)m->config->check_interval_sec * USEC_PER_SEC, USEC_PER_SEC,
                                       on_floor_timer, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->check_timer, SD_EVENT_ON);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &m->writing_timer, CLOCK_MONOTONIC, USEC_PER_SEC, 100 * 1000,
                                               on_floor_timer, m);
        if (r >= 0)
                r = sd_event_source_set_enabled(m->writing_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(m->event, &m->soon_timer, CLOCK_MONOTONIC, 0, 0, on_floor_timer, m);
        if (r < 0)
                return log_errno(r, "cannot set up the floor timers: %m");
        return 0;
}

void manager_floor_stop(struct manager *m)
{
        m->check_timer = sd_event_source_disable_unref(m->check_timer);
        m->writing_timer = sd_event_source_disable_unref(m->writing_timer);
        m->soon_timer = sd_event_source_disable_unref(m->soon_timer);
        space_finish(&m->space);
}

void manager_floor_config(struct manager *m)
{
        floor_roots_changed(m);
        if (m->check_timer)
                sd_event_source_set_time_relative(m->check_timer,
                                                  (uint64_t)m->config->check_interval_sec * USEC_PER_SEC);
        manager_floor_soon(m);
}

void manager_floor_soon(struct manager *m)
{
        if (!m->soon_timer || !space_any_configured(&m->space))
                return;
        sd_event_source_set_time_relative(m->soon_timer, 0);
        sd_event_source_set_enabled(m->soon_timer, SD_EVENT_ONESHOT);
}

void manager_floor_writing(struct manager *m, bool writing)
{
        int enabled = SD_EVENT_OFF;

        /* no floor anywhere: nothing to check every second */
        if (!m->writing_timer || !writing || !space_any_configured(&m->space))
                return;
        sd_event_source_get_enabled(m->writing_timer, &enabled);
        if (enabled != SD_EVENT_OFF)
                return;
        sd_event_source_set_time_relative(m->writing_timer, USEC_PER_SEC);
        sd_event_source_set_enabled(m->writing_timer, SD_EVENT_ON);
}

/* --- lifecycle: start, reload, stop --- */

static void roots_free(struct manager *m)
{
        for (size_t i = 0; i < m->n_roots; i++) {
                struct root_state *rs = &m->roots[i];

                runs_drop_below(m, rs, ".");
                free(rs->runs);
                free(rs->slots);
                sd_event_source_disable_unref(rs->poll_timer);
                if (m->watcher)
                        watcher_remove_root(m->watcher, rs->index);
                root_lock_release(&rs->lock);
                root_finish(&rs->root);
        }
        free(m->roots);
        m->roots = NULL;
        m->n_roots = 0;
}

static int roots_start(struct manager *m)
{
        m->roots = calloc(m->config->n_watches, sizeof(*m->roots));
        if (!m->roots)
                return -ENOMEM;
        m->n_roots = m->config->n_watches;
        for (size_t i = 0; i < m->n_roots; i++) {
                struct root_state *rs = &m->roots[i];
                int r;

                rs->m = m;
                rs->index = m->next_index++;
                rs->index_valid = true;
                r = root_prepare(&rs->root, &m->config->watches[i]);
                /* a failure leaves no half-built root behind */
                for (size_t j = i + 1; r < 0 && j < m->n_roots; j++) {
                        m->roots[j].m = m;
                        m->roots[j].root = (struct root){.w = &m->config->watches[j], .fd = -1};
                }
                if (r < 0)
                        return r;
        }
        /* One ckptd per tree: every root that is there is locked before
         * anything is decided in any of them (a missing one is locked when
         * it appears). */
        for (size_t i = 0; m->starting && i < m->n_roots; i++) {
                struct root_state *rs = &m->roots[i];
                int r;

                if (root_open_fd(&rs->root) < 0)
                        continue;
                r = root_lock_take(&rs->lock, rs->root.fd, rs->root.w->path, m->config->lock_wait_sec, LOG_ERR);
                if (r == -EWOULDBLOCK)
                        return log_errno(r, "not starting: %s is in use (lock_wait = %lld)", rs->root.w->path,
                                         (long long)m->config->lock_wait_sec);
                if (r < 0)
                        return r;
        }
        /* watches, interrupted removals, scans and sweeps */
        for (size_t i = 0; i < m->n_roots; i++)
                root_rescan(m, &m->roots[i]);
        return 0;
}

static bool manager_stopping(struct manager *m)
{
        int code;

        return sd_event_get_exit_code(m->event, &code) >= 0;
}

/* Leave the loop once, with STOPPING=1. A sweep that finds SIGTERM pending
 * (sweep.c) stops after the deletion in hand and calls this itself: the
 * loop exits before the signal's handler would run. */
static void manager_stop(struct manager *m, const char *why)
{
        if (manager_stopping(m))
                return;
        log_info("%s: stopping", why);
        sd_notify(false, "STOPPING=1");
        sd_event_exit(m->event, 0);
}

static int manager_reload(struct manager *m)
{
        char error[ERROR_MAX];
        struct config *c = NULL;
        /* escaped: a newline would start another sd_notify field */
        _cleanup_free_ char *path = log_escape(m->config_path);
        int r;

        sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading %s",
                   (unsigned long long)now_usec(CLOCK_MONOTONIC), path ? path : "?");
        r = config_load(m->config_path, &c, error);
        if (r < 0) {
                struct log_fields f = {.message_id = MSGID_CONFIG_REJECTED, .path = m->config_path};
                log_struct(LOG_ERR, &f, "%s; keeping the running configuration", error);
                control_reload_done(m, error);
                sd_notify(false, "READY=1");
                manager_status(m);
                return 0;
        }
        /* what was timed survives the reload (the runs are built anew) */
        for (size_t i = 0; i < m->n_roots; i++)
                for (size_t j = 0; j < m->roots[i].n_runs; j++) {
                        ages_keep_run(&m->roots[i].runs[j]->ages, &m->roots[i].runs[j]->idx);
                        ages_carry_add(&m->carry, m->roots[i].root.w->path, m->roots[i].runs[j]->path,
                                       &m->roots[i].runs[j]->ages);
                }
        roots_free(m);
        config_free(m->config);
        m->config = c;
        m->dry_run = m->dry_run_cli || c->dry_run;
        log_set_level(m->log_level >= 0 ? m->log_level : c->log_level);
        {
                struct log_fields f = {.message_id = MSGID_RELOADED, .path = m->config_path};
                log_struct(LOG_NOTICE, &f, "reloaded %s: %zu watch%s", m->config_path, c->n_watches,
                           c->n_watches == 1 ? "" : "es");
        }
        control_roots_changed(m);
        r = roots_start(m);
        ages_carry_finish(&m->carry);
        manager_floor_config(m);
        control_reload_done(m, NULL);
        if (!manager_stopping(m)) /* no READY=1 after STOPPING=1 */
                sd_notify(false, "READY=1");
        manager_status(m);
        return r;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
        struct manager *m = userdata;

        (void)s;
        if (si->ssi_signo == SIGHUP) {
                if (!m->config_path) {
                        log_notice("SIGHUP: no config file to reload (--watch)");
                        control_reload_done(m, "no config file to reload (--watch)");
                        manager_status(m);
                        return 0;
                }
                manager_reload(m);
                return 0;
        }
        manager_stop(m, strsignal((int)si->ssi_signo));
        return 0;
}

static int on_status(sd_event_source *s, void *userdata)
{
        (void)s;
        control_publish(userdata);
        return 0;
}

/* STATUS= and the metrics file once per turn of the loop, however many runs
 * a turn swept (a start-up sweeps thousands). */
void manager_status(struct manager *m)
{
        if (!m->status_src && sd_event_add_defer(m->event, &m->status_src, on_status, m) < 0) {
                on_status(NULL, m);
                return;
        }
        sd_event_source_set_enabled(m->status_src, SD_EVENT_ONESHOT);
}

void manager_account(struct manager *m, const struct sweep *s)
{
        for (int r = 0; r < _DELETE_REASON_MAX; r++) {
                m->deleted_by_reason[r] += s->deleted_by_reason[r];
                m->freed_by_reason[r] += s->freed_by_reason[r];
        }
}

struct manager *manager_new(struct config *c, const char *config_path, bool dry_run, int log_level)
{
        struct manager *m = calloc(1, sizeof(*m));

        if (!m)
                return NULL;
        *m = (struct manager){
                .config = c,
                .config_path = config_path,
                .dry_run_cli = dry_run,
                .dry_run = dry_run || c->dry_run,
                .log_level = log_level,
        };
        if (sd_event_default(&m->event) < 0) {
                free(m);
                return NULL;
        }
        return m;
}

int manager_start(struct manager *m)
{
        int r;

        m->starting = true;
        r = roots_start(m);
        m->starting = false;
        if (r < 0)
                return r;
        return manager_floor_start(m);
}

struct manager *manager_free(struct manager *m)
{
        if (!m)
                return NULL;
        manager_floor_stop(m);
        roots_free(m);
        m->inotify_src = sd_event_source_disable_unref(m->inotify_src);
        m->status_src = sd_event_source_disable_unref(m->status_src);
        control_free(m);
        m->watcher = watcher_free(m->watcher);
        m->event = sd_event_unref(m->event);
        config_free(m->config);
        free(m);
        return NULL;
}

int manager_run(struct config *c, const char *config_path, bool dry_run, int log_level)
{
        struct manager *m = manager_new(c, config_path, dry_run, log_level);
        sigset_t mask;
        int r;

        if (!m) {
                config_free(c);
                log_error("cannot create the event loop: out of memory");
                return EXIT_FAILURE;
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        r = control_new(m);
        if (r < 0) {
                log_errno(r, "cannot set up the status channel: %m");
                goto out;
        }
        r = watcher_new(&m->watcher);
        if (r < 0) {
                log_errno(r, "cannot create an inotify instance: %m");
                goto out;
        }
        if ((r = sd_event_add_signal(m->event, NULL, SIGHUP, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m)) < 0 ||
            (r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m)) < 0 ||
            (r = sd_event_add_io(m->event, &m->inotify_src, watcher_fd(m->watcher), EPOLLIN, on_inotify, m)) < 0) {
                log_errno(r, "cannot set up the event loop: %m");
                goto out;
        }
        /* WATCHDOG=1 every half WATCHDOG_USEC, from the loop itself: a stuck
         * loop stops the pings and systemd restarts us (sd_event_set_watchdog(3)) */
        sd_event_set_watchdog(m->event, true);
        /* a huge tree is removed a step per turn, between other events */
        if ((r = sweep_defer_removals(m->event)) < 0) {
                log_errno(r, "cannot set up the event loop: %m");
                goto out;
        }

        r = manager_start(m);
        if (r < 0)
                goto out;
        log_info("watching %zu director%s%s", m->n_roots, m->n_roots == 1 ? "y" : "ies",
                 m->dry_run ? " (dry run: nothing is deleted)" : "");
        if (!manager_stopping(m)) /* no READY=1 after STOPPING=1 */
                sd_notify(false, "READY=1");
        manager_status(m);
        r = sd_event_loop(m->event);
        if (r < 0)
                log_errno(r, "event loop failed: %m");
out:
        sweep_removals_end();
        manager_free(m);
        sweep_records_close();
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* a - b, or 0: what is kept cannot go below none */
static uint64_t minus0(uint64_t a, uint64_t b)
{
        return a > b ? a - b : 0;
}

/* What a -1 pass saw, for its totals. */
struct once_total {
        size_t n_ckpts;
        uint64_t bytes;
};

/* Apply run's verdicts and say what that did to the run (when it deleted
 * any), as the totals do for the whole pass. */
static void once_apply(struct sweep *s, struct root *r, const struct run *run, struct once_total *total)
{
        unsigned before = s->deleted;
        uint64_t freed_before = s->freed_bytes, size_before = s->deleted_size_bytes, bytes = 0;

        for (size_t i = 0; i < run->n_ckpts; i++)
                bytes += run->ckpts[i].size_bytes;
        total->n_ckpts += run->n_ckpts;
        total->bytes += bytes;
        sweep_apply(s, r, run);
        /* a run with nothing to delete stays quiet: a tree of a thousand
         * runs does not print a thousand lines of zeros */
        if (s->deleted == before)
                return;

        unsigned deleted = s->deleted - before;
        uint64_t deleted_size = s->deleted_size_bytes - size_before;
        _cleanup_free_ char *path = NULL, *esc = NULL, *line = NULL;

        if (strcmp(run->path, ".") == 0)
                path = strdup(r->w->path);
        else if (asprintf(&path, "%s/%s", r->w->path, run->path) < 0)
                path = NULL;
        esc = path ? log_escape(path) : NULL;
        line = report_once_totals(s->dry_run, deleted, s->dry_run ? deleted_size : s->freed_bytes - freed_before,
                                  (size_t)minus0(run->n_ckpts, deleted), minus0(bytes, deleted_size));
        struct log_fields f = {.run = run->path};
        log_struct(LOG_INFO, &f, "run %s: %s", esc ? esc : "?", line ? line : "out of memory");
}

int manager_once(const struct config *c, bool dry_run)
{
        struct once_total total = {};
        struct roots roots;
        struct space space = {};
        struct root_lock *locks = NULL;
        struct sweep s;
        int status = EXIT_SUCCESS, k;

        k = roots_open(&roots, c);
        if (k != 0)
                status = EXIT_FAILURE;
        if (k < 0)
                goto out;
        /* One ckptd per tree: a daemon (or another -1) on one of these
         * roots, or on a directory above or below one, decides there; this
         * sweep does nothing at all rather than race it. */
        locks = calloc(roots.n_open + 1, sizeof(*locks));
        if (!locks) {
                status = EXIT_FAILURE;
                goto out;
        }
        for (size_t i = 0; i < roots.n_open; i++) {
                k = root_lock_take(&locks[i], roots.open[i]->fd, roots.open[i]->w->path, c->lock_wait_sec, LOG_ERR);
                if (k < 0) {
                        if (k == -EWOULDBLOCK)
                                log_error("not sweeping: %s is in use (lock_wait = %lld)", roots.open[i]->w->path,
                                          (long long)c->lock_wait_sec);
                        status = EXIT_FAILURE;
                        goto out;
                }
        }
        sweep_init(&s, c, dry_run);
        if (space_set_roots(&space, roots.open, roots.n_open) < 0) {
                status = EXIT_FAILURE;
                goto out;
        }
        for (size_t i = 0; i < roots.n_open; i++) {
                struct root *r = roots.open[i];
                struct run *runs = NULL;
                size_t n = 0;

                if (sweep_decide_root(r, s.now_usec, &runs, &n) < 0) {
                        status = EXIT_FAILURE;
                        continue;
                }
                /* Interrupted removals first. Tombstones are dot files, never
                 * checkpoints, so the verdicts stand. */
                if (!dry_run)
                        sweep_tombstones(r);
                for (size_t j = 0; j < n; j++) {
                        space_seen(&space, r->dev, &runs[j]); /* headroom's largest */
                        sweep_count_read_errors(&s, &runs[j]);
                        sweep_log_read_errors(r, &runs[j]);
                        sweep_note_monitor(r, &runs[j], NULL);
                        once_apply(&s, r, &runs[j], &total);
                }
                runs_free(runs, n);
        }
        /* then the floor, over what the policy kept; a daemon evicting on
         * the same filesystem is waited for (a pass takes seconds at most) */
        space.lock_wait_usec = ONESHOT_FLOOR_WAIT_USEC;
        {
                unsigned before = s.deleted;
                uint64_t freed_before = s.freed_bytes, size_before = s.deleted_size_bytes;

                if (space_check(&space, roots.open, roots.n_open, &s, NULL, NULL) > 0 && status == EXIT_SUCCESS)
                        status = 3;
                if (s.deleted > before) {
                        char freed[16];
                        size_format(dry_run ? s.deleted_size_bytes - size_before : s.freed_bytes - freed_before, freed,
                                    sizeof(freed));
                        log_info("free-space floor: %s %u checkpoint%s, %s %s", dry_run ? "would evict" : "evicted",
                                 s.deleted - before, s.deleted - before == 1 ? "" : "s",
                                 dry_run ? "would free" : "freed", freed);
                }
        }
        if (s.failed > 0)
                status = EXIT_FAILURE;
        /* Read errors leave the exit status alone: what could not be read
         * was kept, which is a safe outcome, and a timer unit running -1
         * should not fail on every transient EIO. They are warnings above
         * and in this summary. */
        {
                _cleanup_free_ char *kept = sweep_read_errors_summary(&s);
                _cleanup_free_ char *totals = report_once_totals(
                        dry_run, s.deleted, dry_run ? s.deleted_size_bytes : s.freed_bytes,
                        (size_t)minus0(total.n_ckpts, s.deleted), minus0(total.bytes, s.deleted_size_bytes));
                log_struct(s.runs_unreadable || s.ckpts_unreadable ? LOG_WARNING : LOG_INFO, NULL, "%s%s%s",
                           totals ? totals : "out of memory", s.capped ? " (deletion cap reached)" : "",
                           kept ? kept : "");
        }
out:
        for (size_t i = 0; locks && i < roots.n_open; i++)
                root_lock_release(&locks[i]);
        free(locks);
        roots_close(&roots);
        space_finish(&space);
        sweep_records_close();
        return status;
}
