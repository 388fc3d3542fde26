/* Retention for one run: settle timers, completeness from the events, decide, apply. */

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-event.h>

#include "decide.h"
#include "fsutil.h"
#include "log.h"
#include "manager_internal.h"
#include "policy.h"
#include "sweep.h"
#include "verify.h"
#include "watch.h"

/* *again := delay when that is sooner (0: none yet). */
static void sooner(uint64_t *again, uint64_t delay)
{
        if (*again == 0 || delay < *again)
                *again = delay;
}

static int run_sweep(struct manager *m, struct root_state *rs, struct run_state *run);

/* --- timers --- */

static int run_arm_now(struct run_state *run);

/* A run's sweep, from its settle timer or deferred source, comes after the
 * events waiting to be read: what they say (a keep file, a checkpoint
 * removed by hand, the run directory renamed away) is in the index before
 * it decides. So with events waiting, the run is made due and the events
 * read, which sweeps it right after (runs_sweep_due(), the run first in
 * the list), unless they dropped it. A stream of events (a trainer writing
 * a large file) holds no sweep back: each reads what waits, then sweeps. */
static int on_run_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct run_state *run = userdata;
        struct manager *m = run->rs->m;
        int r;

        (void)s, (void)usec;
        if (!m->reading_events && !m->due && watcher_readable(m->watcher)) {
                m->reading_events = true;
                r = run_arm_now(run);
                m->reading_events = false;
                if (r >= 0)
                        return on_inotify(NULL, -1, 0, m); /* may free run */
        }
        run_sweep(m, run->rs, run);
        return 0;
}

uint64_t settle_usec(const struct root_state *rs)
{
        return (uint64_t)watch_settle_usec(rs->root.w);
}

static uint64_t accuracy_usec(const struct root_state *rs)
{
        uint64_t a = settle_usec(rs) / 20;

        return a > 10000 ? 10000 : a > 0 ? a : 1;
}

static int on_run_now(sd_event_source *s, void *userdata)
{
        return on_run_timer(s, 0, userdata);
}

/* Sweep the run once the events read with this one are noted: right after
 * the read when an event made it due (runs_sweep_due()), else at the next
 * turn of the loop from a deferred source, which unlike a timer due now
 * costs no timerfd_settime(2) to arm nor a read(2) to fire (with settle 0
 * that was two system calls and a tenth of the daemon's time per save).
 * The settle timer is stopped: the sweep arms again what it still waits
 * for. */
static int run_arm_now(struct run_state *run)
{
        struct manager *m = run->rs->m;
        int r;

        if (run->timer)
                sd_event_source_set_enabled(run->timer, SD_EVENT_OFF);
        if (run->now)
                r = sd_event_source_set_enabled(run->now, SD_EVENT_ONESHOT);
        else
                r = sd_event_add_defer(m->event, &run->now, on_run_now, run);
        /* made due by an event being read: swept right after the read
         * (runs_sweep_due()), the deferred source only if that does not */
        if (r >= 0 && m->reading_events && !run->due_listed) {
                if (!m->due)
                        m->due_end = &m->due;
                *m->due_end = run;
                m->due_end = &run->due_next;
                run->due_next = NULL;
                run->due_listed = true;
        }
        return r;
}

void run_due_forget(struct run_state *run)
{
        struct manager *m;
        struct run_state **at;

        if (!run->due_listed)
                return;
        m = run->rs->m;
        for (at = &m->due; *at && *at != run; at = &(*at)->due_next)
                ;
        if (*at) {
                *at = run->due_next;
                if (m->due_end == &run->due_next)
                        m->due_end = at;
        }
        run->due_next = NULL;
        run->due_listed = false;
}

/* The runs due now are swept in one go for at most this long; the rest
 * keep their deferred sources and are swept one per turn of the loop, so
 * that a burst over many runs cannot hold off the watchdog or a signal. */
#define DUE_SWEEP_MAX_USEC (USEC_PER_SEC / 20)

void runs_sweep_due(struct manager *m)
{
        uint64_t start = (uint64_t)now_usec(CLOCK_MONOTONIC);
        struct run_state *run;
        bool first = true, stop = false;

        /* a sweep may free other runs of the list (run_due_forget()) or
         * make more due: each is taken off before it is swept */
        while ((run = m->due)) {
                m->due = run->due_next;
                run->due_next = NULL;
                run->due_listed = false;
                /* events came meanwhile: read first (on_run_timer()) */
                stop = stop || (uint64_t)now_usec(CLOCK_MONOTONIC) - start > DUE_SWEEP_MAX_USEC ||
                       (!first && watcher_readable(m->watcher));
                first = false;
                if (stop)
                        continue; /* its deferred source sweeps it */
                /* still due now: a later write may have postponed it */
                if (run->now && sd_event_source_get_enabled(run->now, NULL) > 0) {
                        sd_event_source_set_enabled(run->now, SD_EVENT_OFF);
                        run_sweep(m, run->rs, run);
                }
        }
}

/* Sweep run `delay_usec` from now; an earlier deadline already set stands
 * unless `reset` (a new write postpones the settle deadline). */
void run_arm(struct run_state *run, uint64_t delay_usec, bool reset)
{
        struct manager *m = run->rs->m;
        uint64_t now = (uint64_t)now_usec(CLOCK_MONOTONIC), when = now + delay_usec, cur = 0;
        int enabled = SD_EVENT_OFF;

        if (run->now && sd_event_source_get_enabled(run->now, NULL) > 0) {
                if (!reset)
                        return; /* due now already */
                sd_event_source_set_enabled(run->now, SD_EVENT_OFF);
        }
        if (delay_usec == 0 && run_arm_now(run) >= 0)
                return;
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

/* A pointer file quiet again sooner than this is read again this long
 * after: a settle of a millisecond does not rescan a run a thousand times
 * a second. */
#define POINTER_RECHECK_MIN_USEC (USEC_PER_SEC / 10)

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

uint64_t pending_quiet_usec(const struct root_state *rs, const struct pending *p)
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

/* adjust_completeness() for c, seen being written or not: the delay after
 * which to look again at it into *again (kept when shorter). */
static void adjust_one_as(struct root_state *rs, struct run_state *run, struct ckpt *c, bool seen, uint64_t now,
                          uint64_t *again)
{
        bool writing = false;
        uint64_t wait = settle_usec(rs);

        /* without the marker its layout writes last: incomplete, renamed
         * in or quiet. The marker's arrival is an event inside it (see
         * watch_unmarked()), which reads it again (index_dirty()). */
        if (c->unmarked)
                return;
        for (size_t k = 0; seen && k < c->n_members; k++) {
                struct pending *p = pending_find(run, ckpt_member(c, k));
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
                return;
        /* unsettled on disk (a write no watch saw): at least 1 s */
        if (!writing && wait < RECHECK_MIN_USEC)
                wait = RECHECK_MIN_USEC;
        sooner(again, wait);
}

/* adjust_one_as(), and a memo that decided c otherwise no longer holds */
static void adjust_one(struct root_state *rs, struct run_state *run, struct ckpt *c, bool seen, uint64_t now,
                       uint64_t *again)
{
        bool was = c->complete;

        adjust_one_as(rs, run, c, seen, now, again);
        if (c->complete != was && (size_t)(c - run->idx.ckpts) < run->memo.n)
                run->memo.valid = false;
}

/* What the events say overrides what the disk says: a file still open for
 * writing is incomplete however old its mtime; a directory renamed in, or
 * quiet since its marker appeared, is complete however fresh. incomplete:
 * how many of the run's checkpoints are incomplete now (ages_observe()).
 * Returns the delay after which a sweep should look again (0: no need). */
uint64_t adjust_completeness(struct root_state *rs, struct run_state *run, uint64_t now, size_t incomplete)
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
        /* every other one complete, so nothing to adjust in them: at a
         * save in a long run, the few seen being written only */
        if (incomplete == 0 && (with || run->n_pending == 0)) {
                for (size_t j = 0; j < n_with; j++)
                        if (j == 0 || with[j] != with[j - 1])
                                adjust_one(rs, run, &scanned->ckpts[with[j]], true, now, &again);
                return again;
        }
        for (size_t i = 0; i < scanned->n_ckpts; i++) {
                bool seen = with ? w < n_with && with[w] == i : run->n_pending > 0;

                while (w < n_with && with[w] == i)
                        w++;
                adjust_one(rs, run, &scanned->ckpts[i], seen, now, &again);
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

/* A directory without its required marker that no watch inside tells of:
 * found so at start-up, after a rescan or a reload, renamed in without it,
 * or under preset auto (whose layout only a scan tells); or whose watch a
 * rescan dropped. Its marker would raise no event, and the checkpoint
 * before it would stay until the run's next save, for good after the last
 * one. Each is watched inside (no wake-up until something is written there)
 * and read once more, for a marker written before its watch was in place.
 * A polled root finds markers by its polls. Returns whether one was. */
static bool watch_unmarked(struct root_state *rs, struct run_state *run)
{
        bool added = false;

        if (rs->polled)
                return false;
        for (size_t i = 0; i < run->idx.n_ckpts; i++) {
                const struct ckpt *c = &run->idx.ckpts[i];
                struct pending *p;

                if (!c->unmarked || !c->is_dir)
                        continue;
                p = pending_get(run, ckpt_member(c, 0));
                if (!p || pending_watch_holds(rs, p, c))
                        continue;
                /* another directory there since the scan: its event
                 * decides the run again */
                if (pending_watch(rs, run, p) == 0 && pending_watch_holds(rs, p, c)) {
                        index_dirty(run, p->name);
                        added = true;
                }
        }
        return added;
}

/* What run_process() reads of every checkpoint once decided (run_tally()). */
struct run_tally {
        uint64_t largest_bytes;   /* of a complete one (space_seen()) */
        uint64_t young_left_usec; /* until the first kept only for being young is not (0: none) */
        unsigned ckpts_unreadable;
        size_t incomplete;
        size_t first_delete, end_delete; /* the ones not kept lie in [first, end) (empty: none) */
        bool monitor_missing;            /* one is kept for KEEP_NO_MONITOR */
};

/* What a scan of the run could not read: logged once per change (a
 * persistent error must not fill the journal at every retry), counted, and
 * looked at again at the next check_interval with the whole root (the run's
 * subdirectories may be runs nobody could list). */
static void run_note_read_errors(struct manager *m, struct root_state *rs, struct run_state *run,
                                 const struct run *scanned, const struct run_tally *t)
{
        _cleanup_free_ char *key = NULL;
        bool whole = scanned->read_error != 0;

        /* as sweep_count_read_errors() counts them */
        run->unreadable_whole = whole;
        run->n_unreadable = whole ? (unsigned)scanned->n_ckpts : t->ckpts_unreadable;
        /* nothing unreadable now nor before: nothing to say (the common
         * case, at every save) */
        if (!whole && t->ckpts_unreadable == 0 && !run->told.read_errors)
                return;
        key = sweep_read_errors_key(scanned);
        if (!key || *key)
                rs->retry = true;
        if (!key || strcmp(key, run->told.read_errors ? run->told.read_errors : "") == 0)
                return;
        if (*key) {
                m->read_errors_total += sweep_log_read_errors(&rs->root, scanned);
        } else {
                log_notice("%s%s%s: read without errors again", rs->root.w->path, strcmp(run->path, ".") ? "/" : "",
                           strcmp(run->path, ".") ? run->path : "");
        }
        free(run->told.read_errors);
        run->told.read_errors = *key ? TAKE_PTR(key) : NULL;
}

/* What the steps after a decision read of every checkpoint of the run,
 * gathered in one pass over them (20000 records of a long run are 2 MB). */
static void run_tally(const struct policy *p, const struct run *run, struct run_tally *t)
{
        uint64_t min_usec = 0;

        *t = (struct run_tally){};
        if (p->min_age_sec > 0 && __builtin_mul_overflow((uint64_t)p->min_age_sec, USEC_PER_SEC, &min_usec))
                min_usec = 0;
        for (size_t i = 0; i < run->n_ckpts; i++) {
                const struct ckpt *c = &run->ckpts[i];

                t->ckpts_unreadable += c->read_error != 0;
                t->incomplete += !c->complete;
                if (c->complete && c->size_bytes > t->largest_bytes)
                        t->largest_bytes = c->size_bytes;
                t->monitor_missing = t->monitor_missing || (c->verdict.reasons & (1u << KEEP_NO_MONITOR));
                if (!c->verdict.keep) {
                        if (t->first_delete == t->end_delete)
                                t->first_delete = i;
                        t->end_delete = i + 1;
                }
                /* kept only for being young: when it stops being young
                 * (min_age ends on time, not at the run's next event) */
                if (min_usec > 0 && c->verdict.reasons == (1u << KEEP_YOUNG) && c->age_known && c->age_usec >= 0 &&
                    (uint64_t)c->age_usec < min_usec) {
                        uint64_t left = min_usec - (uint64_t)c->age_usec + 1;

                        if (t->young_left_usec == 0 || left < t->young_left_usec)
                                t->young_left_usec = left;
                }
        }
}

/* run_tally() after a decision from the memo: every checkpoint settled,
 * one owner, no min_age, the monitor carried; the ones not kept are the
 * decision's (a victim left from before makes it whole); the largest of
 * the others seen before. */
static void run_tally_appended(const struct run *run, size_t from, const struct policy_memo *memo, struct run_tally *t)
{
        *t = (struct run_tally){.first_delete = memo->first_delete, .end_delete = memo->end_delete};
        for (size_t i = from; i < run->n_ckpts; i++)
                if (run->ckpts[i].complete && run->ckpts[i].size_bytes > t->largest_bytes)
                        t->largest_bytes = run->ckpts[i].size_bytes;
}

/* --- one run, decided and applied --- */

#ifdef CKPTD_CROSSCHECK
/* Test builds: a decision from the memo is the whole run's decision, or
 * the daemon stops here, before it deletes anything by it. */
static void decided_fast_check(const struct policy *p, const struct run *run, int64_t now_usec)
{
        struct ckpt *copy = malloc(run->n_ckpts * sizeof(*copy) + 1);

        if (!copy)
                return;
        memcpy(copy, run->ckpts, run->n_ckpts * sizeof(*copy));
        (void)run_decide(p, copy, run->n_ckpts, now_usec);
        for (size_t i = 0; i < run->n_ckpts; i++) {
                const struct verdict *x = &run->ckpts[i].verdict, *y = &copy[i].verdict;

                if (x->keep != y->keep || x->reasons != y->reasons || x->delete_reason != y->delete_reason) {
                        log_error("memo decision differs at %zu of %zu: keep %d reasons %#x, whole keep %d reasons %#x",
                                  i, run->n_ckpts, x->keep, x->reasons, y->keep, y->reasons);
                        abort();
                }
        }
        free(copy);
}

/* ... and its tally is the whole run's, as far as the steps after read it */
static void tally_fast_check(const struct policy *p, const struct run *run, bool fast, const struct run_tally *t)
{
        struct run_tally w;

        if (!fast)
                return;
        run_tally(p, run, &w);
        if (w.incomplete != 0 || w.ckpts_unreadable != 0 || w.monitor_missing || w.young_left_usec != 0 ||
            (w.first_delete < w.end_delete && (w.first_delete < t->first_delete || w.end_delete > t->end_delete))) {
                log_error("memo tally differs: incomplete %zu unreadable %u delete [%zu, %zu) against [%zu, %zu)",
                          w.incomplete, w.ckpts_unreadable, w.first_delete, w.end_delete, t->first_delete,
                          t->end_delete);
                abort();
        }
}
#else
static void decided_fast_check(const struct policy *p, const struct run *run, int64_t now_usec)
{
        (void)p, (void)run, (void)now_usec;
}

static void tally_fast_check(const struct policy *p, const struct run *run, bool fast, const struct run_tally *t)
{
        (void)p, (void)run, (void)fast, (void)t;
}
#endif

struct taken_ctx {
        struct run_state *run;
        uint64_t now; /* CLOCK_MONOTONIC */
};

/* A save that sweep_placed_being_written() found open is noted as one seen
 * being written (struct pending): a later decision reads the unsettled
 * checkpoints again from the disk (index_update()), where its old mtime
 * says complete, and only what the events say keeps it incomplete until it
 * is closed (IN_CLOSE_WRITE) and quiet for settle, or stale. Out of memory
 * the run's next decision follows a scan of the whole run, which checks the
 * placed ones again. */
static void taken_note(const struct ckpt *c, void *userdata)
{
        const struct taken_ctx *ctx = userdata;
        struct pending *p = pending_get(ctx->run, ckpt_member(c, 0));

        if (!p) {
                ctx->run->full = true;
                return;
        }
        p->done = p->marked = false;
        p->writing = true;
        /* its close may come under another name: asked again */
        p->unproven = true;
        p->last_usec = ctx->now;
        p->free_in = 0;
}

/* Whether c was found free of writers by this decision's kept_unproven():
 * the same question, microseconds before, of the record just read. */
static bool asked_free(const struct ckpt *c, void *userdata)
{
        const struct taken_ctx *ctx = userdata;
        const struct pending *p = pending_find(ctx->run, ckpt_member(c, 0));

        return p && p->free_in == ctx->run->decisions;
}

/* Whether file checkpoint c of the run is free of writers
 * (sweep_being_written(): readers do not count); else logged when say:
 * 1 free, 0 not. One that is no longer the file of its record (a save
 * renamed over it, or gone) is not free, as the placed question after a
 * scan says: what stands there may be written; its record, unsettled now,
 * is read again at the next decision (index_update()). */
static int unproven_free(struct root_state *rs, struct run *idx, const struct ckpt *c, int run_fd, bool say)
{
        /* without leases nothing tells: its record is not read again while
         * it is held (its writes may come under the name it was linked
         * from), so an mtime newer than the record's would hold it forever */
        int v = sweep_being_written(&rs->root, idx, c, run_fd, INT64_MAX);
        _cleanup_free_ char *path = NULL;

        if (v == VERIFY_FREE)
                return 1;
        if (!say)
                return 0;
        path = sweep_ckpt_path(&rs->root, idx, c);
        if (v < 0 && v != -ESTALE)
                log_warning_errno(v, "%s: cannot check whether it is still being written: %m; taken as being written",
                                  path ? path : c->name);
        else
                log_info("%s: %s: taken for a save still being written, not for its place", path ? path : c->name,
                         v == -ESTALE ? "changed since it was scanned" : "in use");
        return 0;
}

/* A file made complete by an event that does not say its writer is done
 * (renamed in, or linked in: no IN_CLOSE_WRITE seen) may still be written:
 * a trainer can publish a save under its final name before it closes it.
 * So may a directory without its marker, made in place or renamed in, or
 * quiet after writes inside it (a rank pausing with a shard open): each
 * file below it is asked (sweep_being_written()).
 * The first time it is complete and kept (among the best, the newest, or
 * for any reason: it may be the newest written all the same), it is checked
 * as a victim is, whether or not the decision deletes, since its place is
 * taken from the next one on; one still open is taken as being written, as
 * after a scan (sweep_placed_being_written()), and the run decided again.
 * A check that fails takes it as being written too. Its close may come
 * under another name (the one it was linked from), so one taken, or created
 * with no write seen under its name, is asked again, every RECHECK_MIN_USEC
 * at first and less often the longer it is held (at most RECHECK_MAX_USEC),
 * until it is free, then counts once quiet for settle. Only writers count:
 * an eval job reading it holds nothing. Returns the delay to look again (0:
 * none). */
static uint64_t kept_unproven(struct root_state *rs, struct run_state *run, const struct sweep *s, uint64_t now,
                              int run_fd)
{
        struct run *idx = &run->idx;
        uint64_t again = 0;
        bool taken = true;

        for (unsigned round = 0; taken; round++) {
                taken = false;
                for (size_t j = 0; j < run->n_pending; j++) {
                        struct pending *p = &run->pending[j];
                        ssize_t at = p->unproven ? index_find(run, p->name) : -1;
                        struct ckpt *c = at >= 0 ? &idx->ckpts[at] : NULL;
                        uint64_t ask;

                        if (!c || c->marked || c->read_error != 0)
                                continue;
                        if (p->writing) {
                                /* taken before: asked again, once a call */
                                if (round > 0)
                                        continue;
                                if (unproven_free(rs, idx, c, run_fd, false)) {
                                        p->writing = p->unproven = false;
                                        p->last_usec = now;
                                        sooner(&again, settle_usec(rs) > 0 ? settle_usec(rs) : 1);
                                        continue;
                                }
                                /* every second, then less often the
                                 * longer it is held: a quarter of that */
                                ask = (now - p->last_usec) / 4;
                                ask = ask < RECHECK_MIN_USEC   ? RECHECK_MIN_USEC
                                      : ask > RECHECK_MAX_USEC ? RECHECK_MAX_USEC
                                                               : ask;
                                sooner(&again, ask);
                                /* stale by the clock, still open */
                                if (c->complete) {
                                        c->complete = false;
                                        taken = true;
                                }
                                continue;
                        }
                        /* a victim gets its own check; one kept for
                         * another reason (keep_every, min_age, a pin) may
                         * still be the newest written */
                        if (!c->complete || !c->verdict.keep)
                                continue;
                        if (unproven_free(rs, idx, c, run_fd, true)) {
                                p->unproven = false;
                                p->free_in = run->decisions;
                                continue;
                        }
                        c->complete = false;
                        p->writing = true;
                        p->last_usec = now;
                        sooner(&again, RECHECK_MIN_USEC);
                        taken = true;
                }
                if (taken)
                        run->memo.valid = false; /* decided whole: built again */
                if (taken && run_decide(&rs->root.w->policy, idx->ckpts, idx->n_ckpts, s->now_usec) < 0)
                        log_warning("%s/%s: out of memory ranking by owner: keeping every checkpoint", rs->root.w->path,
                                    run->path);
        }
        return again;
}

/* --- the placed ones of a run scanned whole, asked in idle time --- */

/* Asked in one turn of the loop at most, so that an event waits behind a
 * few milliseconds; a run of more checkpoints than ASK_IDLE_RUN_MAX is
 * left to its first decision that deletes. */
#define ASK_IDLE_TURN    256
#define ASK_IDLE_RUN_MAX 1024

/* Whether every complete file checkpoint of a run scanned whole is free of
 * writers, asked now rather than at the run's first decision that deletes
 * (run_process()), so that the first save after a start costs what any
 * other does. The answer stands as the events keep it: the run is watched
 * and decided name by name (index_incremental()), so from now on a write to
 * one of them under its name is an event (IN_MODIFY, a save renamed over
 * it) that makes it pending, and a writer that opened one before now still
 * holds it open, which the lease sees now. A file with another link is
 * written through a name not watched, and where no lease can be taken
 * nothing is seen now: either leaves the run to that decision, as does any
 * other answer (in use, replaced, an error); it asks again and says what it
 * finds. Directories are asked at every decision that deletes, as before.
 * *asked: questions asked. */
static bool run_placed_free(struct root_state *rs, struct run_state *run, size_t *asked)
{
        _cleanup_close_ int run_fd = openat_beneath(rs->root.fd, run->path, O_RDONLY | O_DIRECTORY, 0);

        if (run_fd < 0)
                return false;
        for (size_t i = 0; i < run->idx.n_ckpts; i++) {
                const struct ckpt *c = &run->idx.ckpts[i];

                if (!c->complete || c->read_error != 0 || c->is_dir)
                        continue;
                ++*asked;
                if (sweep_free_alone(&rs->root, &run->idx, c, run_fd) != VERIFY_FREE)
                        return false;
        }
        return true;
}

/* Whether the runs of rs can be asked in idle time: watched, so that the
 * answer is kept current by events (a polled root is asked at its
 * decisions, each after a scan). */
static bool root_asks_idle(const struct root_state *rs)
{
        return m_has_watcher(rs) && rs->present && rs->root.fd >= 0 && !rs->polled;
}

/* A run decided from a scan of it at each decision (not incremental) is
 * asked at the one that deletes, right after that scan. */
static bool run_asks_idle(const struct root_state *rs, const struct run_state *run)
{
        return run->ask_idle && run->placed_unasked && run->idx.n_ckpts <= ASK_IDLE_RUN_MAX &&
               index_incremental(rs, run);
}

/* One turn of the loop with nothing else to do: the next runs noted by
 * runs_ask_later(), ASK_IDLE_TURN questions at most; off once a pass over
 * every root found none noted since it began. */
static int on_ask_idle(sd_event_source *s, void *userdata)
{
        struct manager *m = userdata;
        size_t asked = 0;

        while (asked < ASK_IDLE_TURN) {
                struct root_state *rs;
                struct run_state *run;

                if (m->ask_root >= m->n_roots) {
                        m->ask_root = m->ask_run = 0;
                        m->ask_asked += asked;
                        asked = 0;
                        if (!m->ask_more) {
                                if (m->ask_runs > 0)
                                        log_debug("asked %zu checkpoints of %zu runs scanned whole for writers "
                                                  "in idle time",
                                                  m->ask_asked, m->ask_runs);
                                m->ask_asked = m->ask_runs = 0;
                                return sd_event_source_set_enabled(s, SD_EVENT_OFF);
                        }
                        m->ask_more = false;
                        continue;
                }
                rs = &m->roots[m->ask_root];
                if (m->ask_run >= rs->n_runs || !root_asks_idle(rs)) {
                        m->ask_root++;
                        m->ask_run = 0;
                        continue;
                }
                run = rs->runs[m->ask_run++];
                if (!run_asks_idle(rs, run))
                        continue;
                run->ask_idle = false;
                if (run->idx.n_ckpts == 0)
                        continue;
                m->ask_runs++;
                if (run_placed_free(rs, run, &asked))
                        run->placed_unasked = false;
                else
                        log_debug("%s/%s: not every checkpoint free of writers: asked again at its first decision "
                                  "that deletes",
                                  rs->root.w->path, run->path);
        }
        m->ask_asked += asked;
        return 0;
}

void runs_ask_later(struct manager *m)
{
        int r;

        if (!m->watcher)
                return;
        m->ask_more = true;
        if (m->ask_src)
                r = sd_event_source_set_enabled(m->ask_src, SD_EVENT_ON);
        else if ((r = sd_event_add_defer(m->event, &m->ask_src, on_ask_idle, m)) >= 0)
                r = sd_event_source_set_priority(m->ask_src, SD_EVENT_PRIORITY_IDLE);
        /* not asked now, they are at the first decision that deletes */
        if (r < 0)
                log_debug("cannot ask the checkpoints of a run scanned whole in idle time: %s", strerror(-r));
}

/* After a scan of the whole run the events before it are unknown (lost, or
 * never read): a file not settled yet may be a save published before its
 * writer closed it, just before the scan. Each is noted unproven, to be
 * asked the first time it is kept (kept_unproven()); out of memory, the
 * run is read whole again at its next decision, whose scan checks the
 * kept ones (sweep_placed_being_written()). */
static void unsettled_unproven(struct run_state *run)
{
        for (size_t i = 0; i < run->idx.n_ckpts; i++) {
                const struct ckpt *c = &run->idx.ckpts[i];
                struct pending *p;

                if (c->complete || c->is_dir || pending_find(run, ckpt_member(c, 0)))
                        continue;
                p = pending_get(run, ckpt_member(c, 0));
                if (!p) {
                        run->full = true;
                        return;
                }
                p->unproven = true;
        }
}

/* Decide and act on the run's index: completeness from the events, the
 * policy, deletions, then a timer for what has not settled yet. scanned,
 * when not NULL, is a scan of the whole run that replaces the index (taken).
 * run_fd: the run open beneath the root (index_update()), or -1. */
void run_process(struct manager *m, struct root_state *rs, struct run_state *run, struct run *scanned_in,
                 struct sweep *s, int run_fd)
{
        uint64_t now = (uint64_t)now_usec(CLOCK_MONOTONIC), again;
        struct run *scanned = &run->idx;
        struct run_tally t;
        size_t incomplete;
        unsigned deleted, changed;
        struct taken_ctx taken = {.run = run, .now = now};
        const struct policy *policy = &rs->root.w->policy;
        size_t from, left = 0;
        bool fast, whole;

        run->decisions++;
        if (scanned_in) {
                index_adopt(run, scanned_in);
                strv_finish(&run->dirty);
                unsettled_unproven(run);
        }

        /* ages and settling on our own clock first; events override */
        if (ages_observe(&run->ages, scanned, s->now_usec, settle_usec(rs),
                         run->memo.valid && policy->min_age_sec <= 0 ? run->memo.n : 0, &incomplete) < 0)
                log_warning("%s/%s: out of memory timing checkpoints: ages from mtimes", rs->root.w->path, run->path);
        if (run->ages.first_changed < run->memo.n)
                run->memo.valid = false;
        again = adjust_completeness(rs, run, now, incomplete);

        /* a save appended to a run decided before: from the memo, in
         * O(k + log n); anything else, the whole run */
        from = run->memo.n;
        fast = !scanned_in &&
               policy_decide_appended(&run->memo, policy, scanned->ckpts, scanned->n_ckpts, s->now_usec) == 0;
        if (fast)
                decided_fast_check(policy, scanned, s->now_usec);
        else if (run_decide(policy, scanned->ckpts, scanned->n_ckpts, s->now_usec) < 0)
                log_warning("%s/%s: out of memory ranking by owner: keeping every checkpoint", rs->root.w->path,
                            run->path);
        whole = !fast;
        if (run->n_pending > 0) {
                uint64_t ask = kept_unproven(rs, run, s, now, run_fd);

                if (ask > 0)
                        sooner(&again, ask);
                /* it invalidates the memo where it decides whole again */
                whole = whole || !run->memo.valid;
        }
        /* After a scan the placed ones are asked when its decision deletes;
         * one that deletes nothing leaves them to be asked at the first
         * decision that does (min_age run out, a later save): a save
         * written in place since before the scan, which no event told,
         * must not displace what it would then. Its mtime, the start of
         * its one long write, may rank it anywhere among the newest where
         * another save was completed since (a second writer in the run),
         * and its metric anywhere among the best: every placed one is
         * asked, once. One taken is asked again (kept_unproven()).
         * A complete directory is asked at every decision that deletes:
         * nothing watches inside it, so no event tells of a training
         * that writes it again in place (resumed from the one before),
         * and the run is not read again to see it. */
        if (scanned_in)
                run->placed_unasked = run->ask_idle = true;
        if ((run->placed_unasked || scanned->has_dirs) && sweep_run_deletes(scanned)) {
                bool dirs_only = !run->placed_unasked;

                run->placed_unasked = false;
                /* one taken: decided whole again */
                if (sweep_placed_being_written(&rs->root, scanned, &rs->root.w->policy, s->now_usec, run_fd,
                                               &(struct placed_ask){.asked = asked_free,
                                                                    .taken = taken_note,
                                                                    .userdata = &taken,
                                                                    .dirs_only = dirs_only})) {
                        sooner(&again, RECHECK_MIN_USEC);
                        run->memo.valid = false;
                        whole = true;
                }
        }
        if (scanned_in && run->placed_unasked && index_incremental(rs, run))
                runs_ask_later(m);
        fast = fast && run->memo.valid;
        if (fast)
                run_tally_appended(scanned, from, &run->memo, &t);
        else
                run_tally(policy, scanned, &t);
        tally_fast_check(policy, scanned, fast, &t);
        run->settled = t.incomplete == 0; /* deletions below only drop records */
        run_note_read_errors(m, rs, run, scanned, &t);
        /* a pointer file written just now naming none (a writer between
         * two writes) keeps the run whole until it is quiet for settle,
         * which no event tells */
        if (scanned->read_error == -EAGAIN && scanned->pointer_quiet_usec > 0) {
                int64_t wait = scanned->pointer_quiet_usec - s->now_usec;

                sooner(&again, wait > (int64_t)POINTER_RECHECK_MIN_USEC ? (uint64_t)wait : POINTER_RECHECK_MIN_USEC);
        }
        /* no checkpoint kept for a missing monitor, none before: nothing
         * to say */
        if (t.monitor_missing || run->told.monitor_missing)
                sweep_note_monitor(&rs->root, scanned, &run->told.monitor_missing);
        /* the scan's pointer files and the question above */
        sweep_say_lease_refusals(&rs->root);
        if (t.young_left_usec > 0)
                sooner(&again, t.young_left_usec);
        /* the ones not kept: at a save, the few oldest beyond keep_last */
        deleted = s->deleted;
        changed = s->kept_changed;
        if (t.first_delete < t.end_delete)
                sweep_apply_range(s, &rs->root, scanned, t.first_delete, t.end_delete, run_fd);
        /* one changed where no event reaches us (inside a complete
         * directory, through another link): read again (index_prune_deleted())
         * and decided then, not at a next event that may never come */
        if (s->kept_changed != changed)
                sooner(&again, settle_usec(rs) > 0 ? settle_usec(rs) : RECHECK_MIN_USEC);
        space_seen_largest(&m->space, rs->root.dev, t.largest_bytes);
        if (t.first_delete < t.end_delete && !s->dry_run)
                left = index_prune_deleted(rs, run, t.first_delete, t.end_delete, s->deleted - deleted);
        /* What was deleted is gone: the rest stands as decided. A victim
         * still there (its removal failed, a dry run) is tried again by
         * the next whole decision. A whole decision is described anew
         * (O(n), as it was); the ranks of one from the memo are not, so
         * nothing is built from them. */
        if (fast && left == 0 && !(s->dry_run && t.first_delete < t.end_delete)) {
                run->memo.valid = true;
                run->memo.n = scanned->n_ckpts;
        } else if (whole) {
                policy_memo_build(&run->memo, policy, scanned->ckpts, scanned->n_ckpts);
        } else {
                run->memo.valid = false;
        }
        if (t.incomplete > 0 && watch_unmarked(rs, run))
                sooner(&again, 1);
        pending_prune(rs, run, now);
        /* what is left in the run (a dry run deletes nothing) */
        run->n_ckpts = scanned->n_ckpts;
        /* look again once the unsettled ones may have settled */
        if (again > 0)
                run_arm(run, again, false);
}

/* The end of a sweep: totals, a stop that arrived during it, the floor (is
 * there room for the next checkpoint?), STATUS=. */
void sweep_done(struct manager *m, const struct sweep *s)
{
        manager_account(m, s);
        if (s->stopped)
                manager_stop(m, "SIGTERM or SIGINT during a sweep");
        manager_floor_soon(m);
        manager_status(m);
}

/* The run could not be read: its index no longer says what is on the disk
 * (names that changed were not read), so it is read whole before anything
 * trusts it again, the floor included, and at check_interval at the
 * latest. */
static int run_scan_failed(struct root_state *rs, struct run_state *run, int r)
{
        run->full = true;
        rs->retry = true;
        return log_warning_errno(r, "cannot scan %s/%s: %m, trying again later", rs->root.w->path, run->path);
}

static int run_sweep(struct manager *m, struct root_state *rs, struct run_state *run)
{
        _cleanup_close_ int fd = -1;
        struct sweep s;
        struct run scanned = {};
        int r;

        /* nothing is deleted in a tree moved out of the watch */
        if (!rs->present || !root_here(m, rs))
                return 0;
        sweep_init(&s, m->config, m->dry_run);
        /* a new checkpoint: one scan_one() and a decision in memory */
        if (index_incremental(rs, run)) {
                r = index_update(rs, run, s.now_usec, &fd);
                if (r == 0) {
                        run_process(m, rs, run, NULL, &s, fd);
                        sweep_done(m, &s);
                        return 0;
                }
                if (r == -ENOMEM)
                        return run_scan_failed(rs, run, r);
        }
        strv_finish(&run->dirty);
        r = sweep_scan_run(&rs->root, run->path, s.now_usec, &scanned);
        if (r == -ENOENT || r == -ENOTDIR || r == -ELOOP || r == -EXDEV) {
                runs_drop_below(m, rs, run->path); /* frees run */
                return 0;
        }
        if (r < 0)
                return run_scan_failed(rs, run, r);
        run_process(m, rs, run, &scanned, &s, -1);
        sweep_done(m, &s);
        return 0;
}
