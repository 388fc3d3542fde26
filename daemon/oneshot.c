/* The -1 pass: one sweep over every watch, retention then the floor, without a daemon. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "manager.h"
#include "report.h"
#include "rootlock.h"
#include "size.h"
#include "space.h"
#include "sweep.h"

/* How long -1 waits for a daemon's floor pass on the same filesystem. */
#define ONESHOT_FLOOR_WAIT_USEC ((int64_t)(60 * USEC_PER_SEC))

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

/* The totals line of what a sweep did since *before, over n checkpoints of
 * bytes: neither the deleted nor the ones whose removal was begun and could
 * not finish are kept. */
static char *once_totals(const struct sweep *s, const struct sweep *before, size_t n, uint64_t bytes)
{
        unsigned deleted = s->deleted - before->deleted, unfinished = s->unfinished - before->unfinished;
        uint64_t gone = s->deleted_size_bytes - before->deleted_size_bytes + s->unfinished_size_bytes -
                        before->unfinished_size_bytes;
        unsigned failed = s->failed - before->failed;
        _cleanup_free_ char *line = report_once_totals(
                s->dry_run, deleted,
                s->dry_run ? s->deleted_size_bytes - before->deleted_size_bytes : s->freed_bytes - before->freed_bytes,
                (size_t)minus0(n, (uint64_t)deleted + unfinished), minus0(bytes, gone));
        char *p = NULL;

        if (!line || failed == 0)
                return TAKE_PTR(line);
        if (asprintf(&p, "%s; %u deletion%s failed", line, failed, failed == 1 ? "" : "s") < 0)
                return NULL;
        return p;
}

/* Apply run's verdicts and say what that did to the run (when it deleted
 * any), as the totals do for the whole pass. */
static void once_apply(struct sweep *s, struct root *r, const struct run *run, struct once_total *total)
{
        struct sweep before = *s;
        uint64_t bytes = 0;

        for (size_t i = 0; i < run->n_ckpts; i++)
                bytes += run->ckpts[i].size_bytes;
        total->n_ckpts += run->n_ckpts;
        total->bytes += bytes;
        sweep_apply(s, r, run);
        /* a run with nothing to delete stays quiet: a tree of a thousand
         * runs does not print a thousand lines of zeros */
        if (s->deleted == before.deleted && s->failed == before.failed)
                return;

        _cleanup_free_ char *path = NULL, *line = NULL;

        path = path_join(r->w->path, run->path, NULL);
        line = once_totals(s, &before, run->n_ckpts, bytes);
        struct log_fields f = {.run = run->path};
        log_struct(LOG_INFO, &f, "run %s: %s", path ? path : "?", line ? line : "out of memory");
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
        if (space_set_roots(&space, roots.open, roots.n_open, false) < 0) {
                status = EXIT_FAILURE;
                goto out;
        }
        for (size_t i = 0; i < roots.n_open; i++) {
                struct root *r = roots.open[i];
                struct run *runs = NULL;
                size_t n = 0;

                /* Interrupted removals first, before the scan: a group whose
                 * removal was committed may still show members under their
                 * own names, which the finish removes. */
                if (!dry_run)
                        sweep_tombstones(r);
                if (sweep_decide_root(r, s.now_usec, &runs, &n) < 0) {
                        status = EXIT_FAILURE;
                        continue;
                }
                for (size_t j = 0; j < n; j++) {
                        /* a save written in place since before the scan
                         * looks complete: not for what it would displace */
                        sweep_placed_being_written(r, &runs[j], &r->w->policy, s.now_usec, -1, NULL);
                        space_seen(&space, r->dev, &runs[j]); /* headroom's largest */
                        sweep_count_read_errors(&s, &runs[j]);
                        sweep_log_read_errors(r, &runs[j]);
                        sweep_note_monitor(r, &runs[j], NULL);
                        sweep_say_lease_refusals(r); /* the scan's, the question's above */
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

                if (space_check(&space, roots.open, roots.n_open, &s, NULL) > 0 && status == EXIT_SUCCESS)
                        status = 3;
                /* a floor that could not be checked (statvfs failed,
                 * logged) is no "ok": nothing was evicted for it, and
                 * whether the next save fits is unknown. It fails as an
                 * unopenable root does, and before a floor found unmet:
                 * 3 says how short it is, this cannot. */
                if (space_any_unknown(&space)) {
                        log_error("the free-space floor could not be checked: exiting %d", EXIT_FAILURE);
                        status = EXIT_FAILURE;
                }
                if (s.deleted > before) {
                        char freed[16];
                        size_format(dry_run ? s.deleted_size_bytes - size_before : s.freed_bytes - freed_before, freed,
                                    sizeof(freed));
                        log_info("free-space floor: %s %u checkpoint%s, %s %s", dry_run ? "would evict" : "evicted",
                                 s.deleted - before, s.deleted - before == 1 ? "" : "s",
                                 dry_run ? "would free" : "freed", freed);
                }
        }
        /* the floor's questions (who holds the newest, the best) */
        if (roots.n_open > 0)
                sweep_say_lease_refusals(roots.open[0]);
        if (s.failed > 0)
                status = EXIT_FAILURE;
        /* Read errors leave the exit status alone: what could not be read
         * was kept, which is a safe outcome, and a timer unit running -1
         * should not fail on every transient EIO. They are warnings above
         * and in this summary. */
        {
                _cleanup_free_ char *kept = sweep_read_errors_summary(&s);
                _cleanup_free_ char *totals =
                        once_totals(&s, &(struct sweep){.dry_run = dry_run}, total.n_ckpts, total.bytes);
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
