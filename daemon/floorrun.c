/* The free-space floor in the daemon: its timers and its view of the index, around space.c. */

#include <stdlib.h>
#include <systemd/sd-event.h>

#include "control.h"
#include "decide.h"
#include "log.h"
#include "manager_internal.h"
#include "space.h"
#include "sweep.h"

/* --- the free-space floor: timers around space.c --- */

/* A run read again for the floor: its index brought up to date and
 * decided (nothing deleted; the run's own settle timer does that). */
static int floor_refresh(struct root_state *rs, struct run_state *run, uint64_t now, int64_t wall)
{
        int r = index_refresh(rs, run, wall);
        size_t incomplete;

        if (r < 0) {
                log_debug("%s/%s: cannot read the run again: the floor leaves it alone", rs->root.w->path, run->path);
                return r;
        }
        if (ages_observe(&run->ages, &run->idx, wall, settle_usec(rs), 0, &incomplete) < 0)
                log_warning("%s/%s: out of memory timing checkpoints: ages from mtimes", rs->root.w->path, run->path);
        adjust_completeness(rs, run, now, incomplete);
        run->settled = true;
        for (size_t k = 0; k < run->idx.n_ckpts && run->settled; k++)
                run->settled = run->idx.ckpts[k].complete;
        if (run_decide(&rs->root.w->policy, run->idx.ckpts, run->idx.n_ckpts, wall) < 0)
                log_warning("%s/%s: out of memory ranking by owner: keeping every checkpoint", rs->root.w->path,
                            run->path);
        return 0;
}

/* The floor's view: the decided runs of filesystem dev from the index. A
 * run with something still being written is decided again first, as its
 * completeness moves with time. A run whose events cannot keep its index
 * current (metric files inside complete checkpoints, metric logs, pointer
 * files, pins: index_incremental()) is lent as stale: the floor reads it
 * again only when it is about to evict from it (floor_refresh_lent()). A
 * dry run evicts nothing, and reads nothing again. The others stand as
 * last decided. */
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
                /* moved out of the watch with a directory above it: looked
                 * for again at the next check_interval, evicted from never */
                if (root_at_path(rs) <= 0) {
                        rs->retry = true;
                        continue;
                }
                for (size_t j = 0; j < rs->n_runs; j++) {
                        struct run_state *run = rs->runs[j];
                        /* settled: no record incomplete since its last
                         * decision or reading (cleared by every insert) */
                        bool unsettled = run->n_pending > 0 || !run->settled || run->dirty.n > 0 || run->full;
                        bool left_out = false;

                        if (!run->indexed)
                                continue;
                        /* what is being written counts as room taken: its
                         * size now, not at its last decision. A run that
                         * cannot be read again is not ranked by what it
                         * said before: none of it is evicted now. */
                        if (unsettled)
                                left_out = floor_refresh(rs, run, now, wall) < 0;
                        else if (run->memo.ranks_stale &&
                                 run_decide(&rs->root.w->policy, run->idx.ckpts, run->idx.n_ckpts, wall) < 0)
                                log_warning("%s/%s: out of memory ranking by owner: keeping every checkpoint",
                                            rs->root.w->path, run->path);
                        /* the floor ranks by best_rank (exact only after a
                         * whole decision) and marks its victims: the next
                         * decision is whole */
                        run->memo.valid = run->memo.ranks_stale = false;
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
                        v[n++] = (struct space_run){
                                .root = &rs->root,
                                .run = &run->idx,
                                .owner = run,
                                .stale = !unsettled && !m->dry_run && !index_incremental(rs, run),
                                .left_out = left_out,
                        };
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

/* A stale run the floor is about to evict from, read again. */
static int floor_refresh_lent(void *userdata, struct space_run *sr)
{
        struct run_state *run = sr->owner;

        (void)userdata;
        if (sr->whole)
                run->full = true; /* not from the names its events noted */
        return floor_refresh(run->rs, run, (uint64_t)now_usec(CLOCK_MONOTONIC), now_usec(CLOCK_REALTIME));
}

/* A victim kept at its removal: read again before its run's next decision
 * (one changed since it was read raised no event the daemon sees when it
 * was written through another link, or inside a complete directory). */
static void floor_kept(void *userdata, struct space_run *sr, const struct ckpt *k)
{
        (void)userdata;
        index_dirty(sr->owner, k->name);
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
        space_check(&m->space, roots, n, &s,
                    &(struct space_view){
                            .runs = floor_runs, .refresh = floor_refresh_lent, .kept = floor_kept, .userdata = m});
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
                roots_rescan(m, true);
                /* the metrics file's exact free bytes, at least this often */
                manager_status(m);
                sd_event_source_set_time_relative(s, (uint64_t)m->config->check_interval_sec * USEC_PER_SEC);
        }
        return 0;
}

/* Roots may have come or gone: the filesystems to look after change. While
 * roots_start() brings the roots up one by one, those of roots not there
 * yet are kept: they would lose what the floor knows (the largest
 * checkpoint seen, a floor unmet and told), and a reload would loosen the
 * floor of every watch but the first. Its caller sets them exactly after. */
void floor_roots_changed(struct manager *m)
{
        _cleanup_free_ struct root **roots = calloc(m->n_roots + 1, sizeof(*roots));

        if (roots)
                space_set_roots(&m->space, roots, present_roots(m, roots), m->roots_starting);
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
        if (r >= 0)
                r = sd_event_source_set_enabled(m->soon_timer, SD_EVENT_OFF);
        if (r < 0)
                return log_errno(r, "cannot set up the floor timers: %m");
        /* the first check now, before READY=1 and the first STATUS=: its
         * free space and floor are then read, not the zeros of a
         * filesystem not checked yet, and a floor already crossed is
         * enforced with the start-up sweep */
        floor_check(m);
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
