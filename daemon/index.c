/* A run of a root: its pending checkpoints and its index, kept current from the events. */

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "manager_internal.h"
#include "remove.h"
#include "sweep.h"
#include "watch.h"

static void index_unshift(struct run_state *run);

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

struct run_state *run_find(struct root_state *rs, const char *path)
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
        run_due_forget(run);
        sd_event_source_disable_unref(run->timer);
        sd_event_source_disable_unref(run->now);
        ages_finish(&run->ages);
        for (size_t i = 0; i < run->n_pending; i++)
                free(run->pending[i].name);
        free(run->pending);
        free(run->pending_slots);
        run_told_finish(&run->told);
        index_unshift(run);
        run_finish(&run->idx);
        policy_memo_finish(&run->memo);
        free(run->members);
        strv_finish(&run->dirty);
        free(run->path);
        free(run);
        return NULL;
}

void pending_carry_add(struct manager *m, const struct root_state *rs, const struct run_state *run)
{
        struct pending_carried *v, *e;

        if (run->n_pending == 0)
                return;
        v = reallocarray(m->pending_carry, m->n_pending_carry + 1, sizeof(*v));
        if (!v)
                return;
        m->pending_carry = v;
        e = &v[m->n_pending_carry];
        *e = (struct pending_carried){.dev = rs->root.dev, .ino = rs->root.ino, .run = strdup(run->path)};
        e->v = calloc(run->n_pending, sizeof(*e->v));
        if (!e->run || !e->v) {
                free(e->run);
                free(e->v);
                return;
        }
        for (size_t i = 0; i < run->n_pending; i++) {
                const struct pending *p = &run->pending[i];
                char *name = strdup(p->name);

                if (!name)
                        continue;
                /* its watch goes with the old root; the decision count
                 * starts again with the new run; and a close in between,
                 * which no watch saw, is asked of the disk (unproven) */
                e->v[e->n++] = (struct pending){.name = name,
                                                .writing = p->writing,
                                                .done = p->done,
                                                .marked = p->marked,
                                                .unproven = true,
                                                .last_usec = p->last_usec};
        }
        m->n_pending_carry++;
}

/* What the reload kept of run's pending entries, now run's (run_get()). */
static void pending_carry_take(struct manager *m, const struct root_state *rs, struct run_state *run)
{
        for (size_t i = 0; i < m->n_pending_carry; i++) {
                struct pending_carried *e = &m->pending_carry[i];

                if (e->dev != rs->root.dev || e->ino != rs->root.ino || !e->run || strcmp(e->run, run->path) != 0)
                        continue;
                for (size_t j = 0; j < e->n; j++) {
                        struct pending *p = pending_get(run, e->v[j].name);

                        if (p)
                                *p = (struct pending){.name = p->name,
                                                      .writing = e->v[j].writing,
                                                      .done = e->v[j].done,
                                                      .marked = e->v[j].marked,
                                                      .unproven = e->v[j].unproven,
                                                      .last_usec = e->v[j].last_usec};
                }
                return;
        }
}

void pending_carry_finish(struct manager *m)
{
        for (size_t i = 0; i < m->n_pending_carry; i++) {
                for (size_t j = 0; j < m->pending_carry[i].n; j++)
                        free(m->pending_carry[i].v[j].name);
                free(m->pending_carry[i].v);
                free(m->pending_carry[i].run);
        }
        free(m->pending_carry);
        m->pending_carry = NULL;
        m->n_pending_carry = 0;
}

struct run_state *run_get(struct root_state *rs, const char *path)
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
        if (rs->m) {
                ages_carry_take(&rs->m->carry, rs->root.dev, rs->root.ino, path, &run->ages, &run->told);
                pending_carry_take(rs->m, rs, run);
        }
        return run;
}

/* Forget the run at `path` and every run below it (a directory went away). */
void runs_drop_below(struct manager *m, struct root_state *rs, const char *path_in)
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

/* Up to this many pending entries are searched one by one; past it, by
 * name through run->pending_slots: a burst of names moved into a run adds
 * one entry each, and a search of them all per event is quadratic. */
#define PENDING_LINEAR_MAX 8

/* The slot of pending entry `name`, or of the free slot where it would go. */
static size_t pending_slot(const struct run_state *run, const char *name)
{
        size_t mask = run->cap_pending_slots - 1, h = path_hash(name) & mask;

        while (run->pending_slots[h] && strcmp(run->pending[run->pending_slots[h] - 1].name, name) != 0)
                h = (h + 1) & mask;
        return h;
}

/* Make run->pending_slots hold every entry, with room for as many again.
 * false on ENOMEM: search one by one. */
static bool pending_slots_build(struct run_state *run)
{
        size_t cap = 32;

        while (cap < 4 * run->n_pending)
                cap *= 2;
        if (cap != run->cap_pending_slots) {
                size_t *v = reallocarray(run->pending_slots, cap, sizeof(*v));
                if (!v)
                        return false;
                run->pending_slots = v;
                run->cap_pending_slots = cap;
        }
        memset(run->pending_slots, 0, cap * sizeof(*run->pending_slots));
        for (size_t i = 0; i < run->n_pending; i++)
                run->pending_slots[pending_slot(run, run->pending[i].name)] = i + 1;
        run->pending_slots_valid = true;
        return true;
}

struct pending *pending_find(struct run_state *run, const char *name)
{
        size_t v;

        if (!run->pending_slots_valid && (run->n_pending <= PENDING_LINEAR_MAX || !pending_slots_build(run))) {
                for (size_t i = 0; i < run->n_pending; i++)
                        if (strcmp(run->pending[i].name, name) == 0)
                                return &run->pending[i];
                return NULL;
        }
        v = run->pending_slots[pending_slot(run, name)];
        return v ? &run->pending[v - 1] : NULL;
}

struct pending *pending_get(struct run_state *run, const char *name)
{
        struct pending *p = pending_find(run, name);

        if (p)
                return p;
        if (run->n_pending == run->cap_pending) {
                size_t cap = run->cap_pending ? 2 * run->cap_pending : 4;
                p = reallocarray(run->pending, cap, sizeof(*p));
                if (!p)
                        return NULL;
                run->pending = p;
                run->cap_pending = cap;
        }
        p = &run->pending[run->n_pending];
        *p = (struct pending){.name = strdup(name)};
        if (!p->name)
                return NULL;
        run->n_pending++;
        /* at most half full, or built again at the next search */
        if (run->pending_slots_valid && 2 * run->n_pending > run->cap_pending_slots)
                run->pending_slots_valid = false;
        else if (run->pending_slots_valid)
                run->pending_slots[pending_slot(run, name)] = run->n_pending;
        return p;
}

/* Entry i out of run->pending_slots: its hole closed by moving back what
 * probed past it (linear probing, Knuth 6.4 R), as members_remove(). */
static void pending_slots_remove(struct run_state *run, size_t i)
{
        size_t mask = run->cap_pending_slots - 1, hole = pending_slot(run, run->pending[i].name), j = hole;

        run->pending_slots[hole] = 0;
        for (;;) {
                size_t home;

                j = (j + 1) & mask;
                if (!run->pending_slots[j])
                        break;
                home = path_hash(run->pending[run->pending_slots[j] - 1].name) & mask;
                /* j stays when its home lies cyclically in (hole, j] */
                if (hole < j ? (home > hole && home <= j) : (home > hole || home <= j))
                        continue;
                run->pending_slots[hole] = run->pending_slots[j];
                run->pending_slots[j] = 0;
                hole = j;
        }
}

void pending_drop(struct run_state *run, size_t i)
{
        size_t last = run->n_pending - 1;

        if (run->pending_slots_valid) {
                pending_slots_remove(run, i);
                /* the last entry takes i's place */
                if (i != last)
                        run->pending_slots[pending_slot(run, run->pending[last].name)] = i + 1;
        }
        free(run->pending[i].name);
        run->pending[i] = run->pending[last];
        run->n_pending--;
        /* a burst is over: its room goes back (a daemon lives for months) */
        if (run->n_pending == 0 && run->cap_pending > PENDING_LINEAR_MAX) {
                free(run->pending);
                free(run->pending_slots);
                run->pending = NULL;
                run->pending_slots = NULL;
                run->cap_pending = run->cap_pending_slots = 0;
                run->pending_slots_valid = false;
        }
}

/* The path of entry `name` of a run, relative to the root (malloc'd). */
char *child_path(const char *run_path, const char *name)
{
        return path_join(run_path, name, NULL);
}

int pending_watch(struct root_state *rs, struct run_state *run, struct pending *p)
{
        _cleanup_free_ char *path = child_path(run->path, p->name);
        int wd;

        if (!path)
                return -ENOMEM;
        wd = root_watch(rs->m, rs, path, WATCH_CKPT);
        if (wd < 0)
                return wd;
        p->watched = true;
        p->wd = wd;
        return 0;
}

bool pending_watch_holds(const struct root_state *rs, const struct pending *p, const struct ckpt *c)
{
        if (!p->watched)
                return false;
        if (!m_has_watcher(rs) || p->wd <= 0)
                return true; /* nothing to check it with */
        for (const struct watch_dir *d = watcher_lookup(rs->m->watcher, p->wd); d; d = d->next)
                if (d->root == rs->index)
                        return d->kind == WATCH_CKPT && (uint32_t)d->dev == c->dev && d->ino == c->ino;
        return false;
}

/* Stop watching inside a directory checkpoint that is complete or gone. */
void pending_unwatch(struct root_state *rs, struct run_state *run, struct pending *p)
{
        _cleanup_free_ char *path = NULL;

        if (!p->watched || !m_has_watcher(rs))
                return;
        path = child_path(run->path, p->name);
        if (path)
                watcher_remove_below(rs->m->watcher, rs->index, path);
        p->watched = false;
        p->wd = 0;
}

void index_distrust(struct root_state *rs)
{
        for (size_t i = 0; i < rs->n_runs; i++)
                rs->runs[i]->full = true;
}

/* Events were lost (IN_Q_OVERFLOW): what they said about files being
 * written can no longer be trusted (an IN_CLOSE_WRITE may be among the lost
 * ones). Forget it; the rescan judges by the disk, as at start-up. */
void pending_forget(struct root_state *rs)
{
        for (size_t i = 0; i < rs->n_runs; i++) {
                struct run_state *run = rs->runs[i];

                while (run->n_pending > 0) {
                        pending_unwatch(rs, run, &run->pending[run->n_pending - 1]);
                        pending_drop(run, run->n_pending - 1);
                }
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
                size_t h = members_slot(run, ckpt_member(c, k));

                if (!run->members[h].member)
                        run->n_members++;
                run->members[h] =
                        (struct member_slot){.member = ckpt_member(c, k), .ckpt_name = c->name, .order = c->order};
        }
}

static size_t members_min(const struct run_state *run)
{
        return run->rs->m ? run->rs->m->members_min_ckpts : MEMBERS_MIN_CKPTS;
}

/* Rebuild run->members from the index, at most half full. */
static void members_rebuild(struct run_state *run)
{
        size_t n = 0, cap = 64;

        run->members_valid = false;
        run->n_members = 0;
        if (run->idx.n_ckpts < members_min(run)) {
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
                if (run->idx.n_ckpts >= members_min(run))
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
                size_t hole = members_slot(run, ckpt_member(c, k)), j = hole;

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
                if (strcmp(ckpt_member(c, k), name) == 0)
                        return true;
        return false;
}

/* The position of the checkpoint with member `name` in the index, or -1:
 * its key from run->members, then a binary search of the index (sorted by
 * index_cmp()). */
ssize_t index_find(const struct run_state *run, const char *name)
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
        /* newest first: a run's decision asks mostly for the save it just
         * took in (a member is in one checkpoint only) */
        for (size_t i = idx->n_ckpts; i-- > 0;)
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

        if (i < run->memo.n)
                run->memo.valid = false;
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
        if (lo < run->memo.n)
                run->memo.valid = false; /* not an append */
        memmove(&v[lo + 1], &v[lo], (idx->n_ckpts - lo) * sizeof(*v));
        v[lo] = *c;
        *c = (struct ckpt){}; /* v[lo] owns its names now */
        idx->n_ckpts++;
        idx->has_dirs = idx->has_dirs || v[lo].is_dir;
        run->settled = false;
        members_add(run, &v[lo]);
        return 0;
}

/* Adopt a scan of the whole run as its index, with room for a few saves
 * (index_insert() grows it by half after): room kept in every run's index
 * is memory held for the whole tree. */
void index_adopt(struct run_state *run, struct run *scanned)
{
        /* the scan left that room (SCAN_ROOM_CKPTS): this never moves it */
        size_t cap = scanned->n_ckpts + SCAN_ROOM_CKPTS;
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
        run->settled = false;
        run->memo.valid = false;
        members_rebuild(run);
}

/* A run with more names changed than this since its last decision is read
 * by one scan of the whole run instead: a burst (a tree copied or moved in,
 * hundreds of files of one save) would cost a lookup in the list per name,
 * quadratic in the burst, and a scan_one() each. */
#define DIRTY_MAX 512

/* Name `name` of the run changed: look at it again at the next settle. */
void index_dirty(struct run_state *run, const char *name)
{
        if (run->full)
                return; /* scanned whole: the names are not needed */
        if (strv_contains(&run->dirty, name))
                return;
        if (run->dirty.n >= DIRTY_MAX || strv_push(&run->dirty, name) < 0) {
                run->full = true;
                strv_finish(&run->dirty);
        }
}

/* Whether the index of run can be brought up to date name by name. Never
 * in a polled root: past the watch limit its runs raise no event, and on a
 * network filesystem another host's changes (a .keep, a symlink) raise none
 * here, so its index is only as new as the last poll; read whole, at each
 * decision and before the floor evicts from it. */
bool index_incremental(const struct root_state *rs, const struct run_state *run)
{
        return !rs->polled && run->indexed && !run->full && !run->idx.pin_sources && !run->idx.metric_logged &&
               run->idx.read_error == 0 && scan_incremental(rs->root.w, rs->root.pat);
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
bool index_note(struct root_state *rs, struct run_state *run, const struct watch_event *ev, bool candidate)
{
        const char *name = ev->name;
        bool ours;

        if (!name || !*name)
                return false;
        /* our own removals; a symlink so named pins all the same (below) */
        ours = strncmp(name, TOMBSTONE_PREFIX, strlen(TOMBSTONE_PREFIX)) == 0;
        if (!ours && scan_name_pins(name)) {
                run->full = true;
                return ev->kind != WATCH_EVENT_MODIFIED;
        }
        if (!ours && candidate) {
                /* gone: what was decided with it changes now */
                if (ev->kind == WATCH_EVENT_GONE) {
                        if (index_find(run, name) >= 0) {
                                index_dirty(run, name);
                                return true;
                        }
                        /* a symlink with a checkpoint's name pinned its
                         * target; else removed by us, or never one */
                        if (!strv_contains(&run->idx.links, name))
                                return false;
                        run->full = true;
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
 * failed read: a scan of the whole run decides instead). The run is opened
 * beneath the root into *run_fd, unless open there already, and left open
 * for the caller's deletions (the caller closes it). */
int index_update(struct root_state *rs, struct run_state *run, int64_t now, int *run_fd)
{
        struct stat st;
        int r = 0, fd;

        for (size_t i = 0; !run->settled && i < run->idx.n_ckpts; i++)
                if (!run->idx.ckpts[i].complete)
                        index_dirty(run, run->idx.ckpts[i].name);
        if (run->full)
                return -EAGAIN;
        if (*run_fd < 0) {
                *run_fd = openat_beneath(rs->root.fd, run->path, O_RDONLY | O_DIRECTORY, 0);
                if (*run_fd < 0)
                        return *run_fd;
        }
        fd = *run_fd;
        /* the directory the index was read from, not another renamed to
         * its path since (its events not read yet) */
        if (fstat(fd, &st) < 0)
                r = -errno;
        else if (st.st_dev != run->idx.dev || st.st_ino != run->idx.ino)
                r = -ESTALE;
        for (size_t i = 0; i < run->dirty.n && r >= 0; i++) {
                struct ckpt c = {};
                ssize_t at;

                r = scan_one(fd, rs->root.mnt_id, run->dirty.v[i], rs->root.w, rs->root.pat, now, &c);
                if (r < 0)
                        break;
                /* a file with another name: whether that is another
                 * checkpoint's, only the whole run says (scan.c) */
                if (r > 0 && c.linked) {
                        ckpt_finish(&c);
                        r = -EAGAIN;
                        break;
                }
                at = index_find(run, run->dirty.v[i]);
                if (at >= 0)
                        index_drop(run, (size_t)at);
                if (r > 0) {
                        r = index_insert(run, &c);
                        ckpt_finish(&c);
                }
        }
        /* a name not read leaves the index behind the disk: read whole */
        if (r < 0)
                run->full = true;
        strv_finish(&run->dirty);
        return r < 0 ? r : 0;
}

/* For the floor: the index of a run brought up to date (names, sizes,
 * metrics) without deciding or deleting anything yet; the run's own settle
 * timer does that. 0, or -errno: the index is as before, and may be old. */
int index_refresh(struct root_state *rs, struct run_state *run, int64_t now)
{
        _cleanup_close_ int fd = -1;
        struct run scanned = {};
        int r;

        if (index_incremental(rs, run) && index_update(rs, run, now, &fd) == 0)
                return 0;
        strv_finish(&run->dirty);
        r = sweep_scan_run(&rs->root, run->path, now, &scanned);
        if (r < 0) {
                run->full = true; /* scanned whole again next time */
                return r;
        }
        index_adopt(run, &scanned);
        return 0;
}

/* After deletions: drop from the index what is gone from the disk. What is
 * still there (a failure, the deletion cap, a dry run) stays. Returns how
 * many not kept stay. */
size_t index_prune_deleted(struct root_state *rs, struct run_state *run, size_t from, size_t to, unsigned removed)
{
        size_t victims = 0, left = 0;
        bool all;

        for (size_t i = from; i < to && i < run->idx.n_ckpts; i++)
                victims += !run->idx.ckpts[i].verdict.keep;
        /* every one removed (the sweep counted as many deletions): no need
         * to ask the disk what it just said */
        all = victims == removed;
        for (size_t i = from; i < to && i < run->idx.n_ckpts;) {
                const struct ckpt *c = &run->idx.ckpts[i];
                size_t gone = all && !c->verdict.keep ? c->n_members : 0;

                for (size_t k = 0; !c->verdict.keep && !all && k < c->n_members; k++) {
                        _cleanup_free_ char *path = child_path(run->path, ckpt_member(c, k));
                        struct stat st;

                        if (path && fstatat(rs->root.fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT)
                                gone++;
                }
                if (gone > 0 && gone < c->n_members)
                        run->full = true; /* part of a group: rescan */
                if (gone > 0 && gone == c->n_members) {
                        index_drop(run, i); /* the ones after it move down one */
                        to--;
                } else {
                        /* kept at its removal (in use, a flock, changed
                         * since it was read, whether or not an event said
                         * so): read again before the next decision */
                        if (!c->verdict.keep)
                                index_dirty(run, c->name);
                        left += !c->verdict.keep;
                        i++;
                }
        }
        return left;
}
