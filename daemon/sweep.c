/* Retention for one watch root: scan, decide, delete. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "decide.h"
#include "floor.h"
#include "log.h"
#include "policy.h"
#include "remove.h"
#include "scan_pins.h"
#include "tombrec.h"
#include "sweep.h"
#include "verify.h"

int root_prepare(struct root *r, const struct watch_conf *w)
{
        const char *err = NULL;
        int k;

        *r = (struct root){.w = w, .fd = -1};
        if (w->pattern)
                k = watch_pattern_compile(w, &r->pat, &err);
        else
                k = pattern_new_kv(w->key_separator, w->join, &r->pat);
        if (k < 0)
                return log_errno(k, "%s: bad pattern: %s", w->path, err ? err : "%m");
        {
                _cleanup_free_ char *ro = watch_readonly_problem(w->path);
                if (ro)
                        log_error("%s", ro);
        }
        return 0;
}

int root_open_fd(struct root *r)
{
        _cleanup_close_ int fd = root_open(r->w->path);
        struct stat st;
        int k;

        if (fd < 0)
                return fd;
        k = stat_mnt(fd, "", &st, &r->mnt_id);
        if (k < 0)
                return k;
        r->dev = st.st_dev;
        r->ino = st.st_ino;
        r->fd = TAKE_FD(fd);
        return 0;
}

int root_init(struct root *r, const struct watch_conf *w)
{
        int k = root_prepare(r, w);

        if (k < 0)
                return k;
        k = root_open_fd(r);
        if (k < 0) {
                _cleanup_free_ char *ln = k == -ENOTDIR || k == -ELOOP ? watch_symlink_problem(w->path) : NULL;

                if (ln)
                        return log_errno(k, "cannot open watch root: %s", ln);
                return log_errno(k, "cannot open watch root %s: %m", w->path);
        }
        return 0;
}

int roots_open(struct roots *rs, const struct config *c)
{
        int failed = 0;

        *rs = (struct roots){
                .v = calloc(c->n_watches + 1, sizeof(*rs->v)),
                .open = calloc(c->n_watches + 1, sizeof(*rs->open)),
        };
        if (!rs->v || !rs->open) {
                roots_close(rs);
                return log_errno(-ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < c->n_watches; i++) {
                rs->n++;
                if (root_init(&rs->v[i], &c->watches[i]) < 0)
                        failed++;
                else
                        rs->open[rs->n_open++] = &rs->v[i];
        }
        return failed;
}

void roots_close(struct roots *rs)
{
        for (size_t i = 0; i < rs->n; i++)
                root_finish(&rs->v[i]);
        free(rs->v);
        free(rs->open);
        *rs = (struct roots){};
}

void root_finish(struct root *r)
{
        r->pat = pattern_free(r->pat);
        r->fd = safe_close(r->fd);
}

/* Whether SIGTERM and SIGINT are blocked (the daemon's sd-event signal
 * sources): only then can one wait in the pending set for stop_requested().
 * Unblocked (-1) a signal ends the process or runs its handler, and asking
 * for the pending set before every deletion would be wasted. Told once by
 * the daemon, not asked of the kernel at every sweep (two a save). */
static bool stop_signals_blocked = false;
static unsigned sweep_ids; /* the last struct sweep.id given */

void sweep_stop_signals_blocked(bool blocked)
{
        stop_signals_blocked = blocked;
}

void sweep_init(struct sweep *s, const struct config *c, bool dry_run)
{
        *s = (struct sweep){
                .dry_run = dry_run,
                .now_usec = now_usec(CLOCK_REALTIME),
                .start_usec = (uint64_t)now_usec(CLOCK_MONOTONIC),
                .budget = c->max_delete_per_sweep,
                .id = ++sweep_ids,
                .fail_max = c->max_delete_per_sweep,
        };
}

int sweep_fail_left(const struct sweep *s, struct root *r)
{
        if (r->fail_sweep != s->id) {
                r->fail_sweep = s->id;
                r->fail_left = s->fail_max;
        }
        return r->fail_left;
}

/* A removal that failed or could not be checked (logged by the caller).
 * Each gives its place in the cap back, so without a bound of their own a
 * watch of 100,000 files that cannot be removed (read-only, immutable)
 * would be tried and logged whole at every sweep: after
 * max_delete_per_sweep failures its other victims wait for the next
 * sweep. */
static void sweep_failed_one(const struct sweep *s, struct root *r)
{
        if (sweep_fail_left(s, r) > 0 && --r->fail_left == 0)
                log_warning("removals in %s keep failing (max_delete_per_sweep of them): the rest wait for the "
                            "next sweep",
                            r->w->path);
}

/* A SIGTERM or SIGINT waiting in the (blocked) signal mask: the daemon stops
 * after the deletion in hand instead of finishing a long sweep first. */
static bool stop_requested(void)
{
        sigset_t pending;

        if (!stop_signals_blocked)
                return false;
        if (sigpending(&pending) < 0)
                return false;
        return sigismember(&pending, SIGTERM) == 1 || sigismember(&pending, SIGINT) == 1;
}

static int open_run(struct root *r, const char *run_path)
{
        return openat_beneath(r->fd, run_path, O_RDONLY | O_DIRECTORY, 0);
}

/* The records directory (tombrec.h), opened at first use; -1 when it
 * cannot be: removals then go unrecorded (see remove.c) and start-up has
 * nothing to finish. */
static int records_fd = -2;
static bool records_warned;

static int records_open(void)
{
        _cleanup_free_ char *path = NULL;

        if (records_fd != -2)
                return records_fd;
        path = tombrec_state_path();
        records_fd = path ? tombrec_open(path) : -ENOENT;
        if (records_fd < 0) {
                log_errno(records_fd,
                          "cannot use the state directory %s: %m; removals are not recorded, so an "
                          "interrupted one leaves its .ckptd-trash- tombstone for you to delete",
                          path ? path : "(no $STATE_DIRECTORY, $XDG_STATE_HOME or $HOME)");
                records_fd = -1;
        }
        return records_fd;
}

void sweep_records_close(void)
{
        if (records_fd >= 0)
                safe_close(records_fd);
        records_fd = -2;
}

/* Long removals pet the systemd watchdog themselves: the event loop that
 * normally does is busy with them (sd_event_set_watchdog(3)). Outside
 * systemd sd_notify(3) does nothing. */
static void removal_progress(void *userdata)
{
        static uint64_t last_usec;
        uint64_t now = (uint64_t)now_usec(CLOCK_MONOTONIC), interval;

        (void)userdata;
        if (sd_watchdog_enabled(false, &interval) <= 0)
                return;
        if (now - last_usec >= interval / 4) {
                sd_notify(false, "WATCHDOG=1");
                last_usec = now;
        }
}

static void remove_ctx_init(struct remove_ctx *ctx, const struct root *r, const char *run_path)
{
        *ctx = (struct remove_ctx){
                .records_fd = records_open(),
                .root = r->w->path,
                .root_dev = r->dev,
                .root_ino = r->ino,
                .run = run_path,
                .progress = removal_progress,
        };
}

/* Removals under way, stepped from the event loop (sweep_defer_removals):
 * a tree of a million files would otherwise hold every other run's events
 * (and the loop's own watchdog pings) until it is gone. Once a checkpoint is
 * renamed to its tombstone its name is gone and its removal recorded, so the
 * rest can wait; one job at a time, in order. */
#define REMOVAL_STEP 1024

struct pending {
        struct remove_job *job;
        char *path; /* for messages */
        dev_t dev;
        /* the watch root's directory, however a reload spells its path */
        dev_t root_dev;
        ino_t root_ino;
};

static sd_event_source *removal_src;
static struct pending *pending;
static size_t n_pending;

int sweep_tombstones(struct root *r)
{
        struct remove_ctx ctx;
        int k;

        remove_ctx_init(&ctx, r, ".");
        if (ctx.records_fd < 0)
                return 0;
        /* A reload while removals of this root go on: their records are
         * theirs to finish (or the next start's), not ours to do again. */
        for (size_t i = 0; i < n_pending; i++)
                if (pending[i].root_dev == r->dev && pending[i].root_ino == r->ino)
                        return 0;
        /* Only what our records name: a ".ckptd-trash-" entry anyone else
         * made is an ordinary (dot) entry, never deleted. */
        k = remove_tombstones(&ctx, r->fd);
        if (k < 0)
                return log_warning_errno(k, "%s: cannot finish every interrupted removal: %m, ignoring", r->w->path);
        if (k > 0)
                log_notice("%s: finished %d interrupted removal%s", r->w->path, k, k == 1 ? "" : "s");
        return k;
}

int sweep_scan_run(struct root *r, const char *run_path, int64_t now_usec, struct run *ret)
{
        _cleanup_close_ int fd = open_run(r, run_path);

        if (fd == -ENOMEM || open_error_gone_or_replaced(fd))
                return fd;
        if (fd < 0)
                return run_init_unreadable(ret, run_path, fd, "the run directory");
        return scan_run(fd, run_path, r->w, r->pat, now_usec, ret);
}

/* "Input/output error (EIO)" */
static const char *error_text(int error, char *buf, size_t size)
{
        const char *name = strerrorname_np(error < 0 ? -error : error);

        snprintf(buf, size, "%s (%s)", strerror(error < 0 ? -error : error), name ? name : "?");
        return buf;
}

void sweep_count_read_errors(struct sweep *s, const struct run *run)
{
        if (run->read_error != 0) {
                s->runs_unreadable++;
                s->ckpts_unreadable += (unsigned)run->n_ckpts;
                return;
        }
        for (size_t i = 0; i < run->n_ckpts; i++)
                if (run->ckpts[i].read_error != 0)
                        s->ckpts_unreadable++;
}

unsigned sweep_log_read_errors(const struct root *r, const struct run *run)
{
        bool top = strcmp(run->path, ".") == 0;
        _cleanup_free_ char *run_path = NULL;
        unsigned n = 0;
        char err[128];

        if (asprintf(&run_path, "%s%s%s", r->w->path, top ? "" : "/", top ? "" : run->path) < 0)
                return 0;
        if (run->read_error != 0) {
                const char *what = run->read_what ? run->read_what : "?";
                struct log_fields f = {.action = "keep", .path = run_path, .run = run->path, .reason = "unreadable"};

                /* only a definite ENOENT means absent: what could not be
                 * read may pin any checkpoint of the run */
                if (run->n_ckpts == 0)
                        log_struct(LOG_WARNING, &f, "%s: cannot read %s: %s; nothing in it is touched", run_path, what,
                                   error_text(run->read_error, err, sizeof(err)));
                else
                        log_struct(LOG_WARNING, &f, "%s: cannot read %s: %s; keeping the whole run (%zu checkpoint%s)",
                                   run_path, what, error_text(run->read_error, err, sizeof(err)), run->n_ckpts,
                                   run->n_ckpts == 1 ? "" : "s");
                return 1;
        }
        for (size_t i = 0; i < run->n_ckpts; i++) {
                const struct ckpt *c = &run->ckpts[i];
                _cleanup_free_ char *path = NULL;

                if (c->read_error == 0)
                        continue;
                path = sweep_ckpt_path(r, run, c);
                struct log_fields f = {.action = "keep", .path = path, .run = run->path, .reason = "unreadable"};
                log_struct(LOG_WARNING, &f, "%s: cannot read %s: %s; keeping it", path ? path : c->name,
                           ckpt_read_what(c) ? ckpt_read_what(c) : "it", error_text(c->read_error, err, sizeof(err)));
                n++;
        }
        return n;
}

char *sweep_read_errors_key(const struct run *run)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        if (!f)
                return NULL;
        if (run->read_error != 0)
                fprintf(f, "%d:%s;", run->read_error, run->read_what ? run->read_what : "");
        else
                for (size_t i = 0; i < run->n_ckpts; i++)
                        if (run->ckpts[i].read_error != 0)
                                fprintf(f, "%s:%d:%s;", run->ckpts[i].name, run->ckpts[i].read_error,
                                        ckpt_read_what(&run->ckpts[i]) ? ckpt_read_what(&run->ckpts[i]) : "");
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

char *sweep_read_errors_summary(const struct sweep *s)
{
        char *p = NULL;

        if (s->runs_unreadable == 0 && s->ckpts_unreadable == 0)
                return strdup("");
        if (asprintf(&p, "; kept %u checkpoint%s after read errors (%u run%s kept whole)", s->ckpts_unreadable,
                     s->ckpts_unreadable == 1 ? "" : "s", s->runs_unreadable, s->runs_unreadable == 1 ? "" : "s") < 0)
                return NULL;
        return p;
}

/* What *last holds: "MONITOR\nHINT", so that a reload that changes the
 * monitor says it anew. */
static bool said_of(const char *last, const char *monitor)
{
        size_t n = monitor ? strlen(monitor) : 0;

        return monitor && strncmp(last, monitor, n) == 0 && last[n] == '\n';
}

bool sweep_note_monitor(const struct root *r, const struct run *run, char **last)
{
        const char *monitor = r->w->policy.monitor;
        bool top = strcmp(run->path, ".") == 0;
        _cleanup_free_ char *hint = NULL, *run_path = NULL, *key = NULL;

        if (!run_monitor_missing(run->ckpts, run->n_ckpts)) {
                if (last && *last) {
                        /* not when a reload changed or dropped the monitor */
                        if (said_of(*last, monitor))
                                log_notice("%s%s%s: checkpoints carry the monitor again", r->w->path, top ? "" : "/",
                                           top ? "" : run->path);
                        free(*last);
                        *last = NULL;
                }
                return false;
        }
        if (run_monitor_hint(run->ckpts, run->n_ckpts, monitor, &hint) < 0 ||
            asprintf(&key, "%s\n%s", monitor ? monitor : "", hint) < 0)
                return true;
        if (last && *last && strcmp(*last, key) == 0)
                return true;
        if (asprintf(&run_path, "%s%s%s", r->w->path, top ? "" : "/", top ? "" : run->path) < 0)
                return true;
        struct log_fields f = {
                .action = "keep", .path = run_path, .run = run->path, .reason = "monitor-missing", .monitor = monitor};
        log_struct(LOG_WARNING, &f,
                   "%s: no checkpoint carries the monitor %s (%s); keeping all %zu, best and keep_last do not "
                   "prune this run",
                   run_path, monitor, hint, run->n_ckpts);
        if (last) {
                free(*last);
                *last = TAKE_PTR(key);
        }
        return true;
}

int sweep_scan_root(struct root *r, int64_t now_usec, struct run **ret_runs, size_t *ret_n)
{
        int k = scan_root(r->fd, r->w, r->pat, now_usec, ret_runs, ret_n);

        if (k < 0)
                return log_errno(k, "cannot scan %s: %m", r->w->path);
        return 0;
}

/* Show the flock pins /proc/locks lists (no lock taken) on every scanned
 * checkpoint of a one-pass listing or sweep, so that -l names them; when
 * /proc/locks cannot be read, the check of each victim keeps it. */
static void mark_flock_pins(struct run *runs, size_t n)
{
        struct flock_table t;

        if (flock_table_load(&t, PROC_LOCKS) < 0)
                return;
        for (size_t i = 0; i < n && t.n > 0; i++)
                for (size_t j = 0; j < runs[i].n_ckpts; j++) {
                        struct ckpt *c = &runs[i].ckpts[j];

                        if (flock_table_has(&t, c->dev, c->ino))
                                c->pins |= 1u << PIN_FLOCK;
                }
        flock_table_finish(&t);
}

int sweep_decide_root(struct root *r, int64_t now_usec, struct run **ret_runs, size_t *ret_n)
{
        int k = sweep_scan_root(r, now_usec, ret_runs, ret_n);

        if (k < 0)
                return k;
        mark_flock_pins(*ret_runs, *ret_n);
        for (size_t i = 0; i < *ret_n; i++)
                if (run_decide(&r->w->policy, (*ret_runs)[i].ckpts, (*ret_runs)[i].n_ckpts, now_usec) < 0)
                        log_warning("%s/%s: out of memory ranking by owner: keeping every checkpoint", r->w->path,
                                    (*ret_runs)[i].path);
        return 0;
}

/* run_fd, else the run opened beneath r into *own_fd: the fd to use,
 * -ESTALE when the run is gone or replaced, or -errno. */
static int run_at(struct root *r, const struct run *run, int run_fd, int *own_fd)
{
        if (run_fd >= 0)
                return run_fd;
        if (!r)
                return -EINVAL;
        *own_fd = open_run(r, run->path);
        if (*own_fd < 0)
                return open_error_gone_or_replaced(*own_fd) ? -ESTALE : *own_fd;
        return *own_fd;
}

/* The in-use check of checkpoint `name` of run failed with error: the run
 * is unreadable, every checkpoint of it kept (KEEP_UNREADABLE), as when a
 * read that may pin any of them fails. */
static void run_unreadable(struct run *run, int error, const char *name)
{
        /* out of memory, read_error is set and read_what NULL: still kept */
        (void)scan_run_error(run, error, "whether %s is in use", name);
        for (size_t i = 0; i < run->n_ckpts; i++) {
                struct ckpt *c = &run->ckpts[i];

                if (c->read_error == 0) {
                        c->read_error = (int16_t)(run->read_error > -4096 ? run->read_error : -EIO);
                        c->read_what = READ_WHAT_RUN;
                }
        }
}

/* After a scan of the whole run (a one-shot pass; the daemon at start, after
 * an inotify queue overflow, on reload) completeness comes from mtimes, not
 * from events: a save written in place since before the scan (one long
 * write, an old mtime) looks complete, takes a place among the best or the
 * newest, and the checkpoint it displaces would be deleted. So when the
 * decision deletes something, each complete checkpoint kept for such a
 * place (a file, or a directory without its marker: every file below it)
 * is asked whether a process has it open for writing
 * (sweep_being_written(): an eval job reading it holds nothing back; without
 * leases, an mtime newer than the scan's tells): one that is is taken as
 * still being written, and the run is decided again until no new one is.
 * A check that fails (EIO, EMFILE) says nothing of any of them: the run is
 * then unreadable, as when its listing fails (every checkpoint kept, logged
 * with the error, looked at again at check_interval), in one round rather
 * than one placed checkpoint at a time. Nothing is allocated to remember
 * what was checked: each round checks the placed ones again, and a
 * round ends the loop unless it takes one more, so there is no
 * out-of-memory path that would let the first decision stand. */
bool sweep_run_deletes(const struct run *run)
{
        for (size_t i = 0; i < run->n_ckpts; i++)
                if (!run->ckpts[i].verdict.keep)
                        return true;
        return false;
}

bool sweep_placed_being_written(struct root *r, struct run *run, const struct policy *p, int64_t now_usec, int run_fd,
                                const struct placed_ask *ask_cb)
{
        const unsigned placed = (1u << KEEP_BEST) | (1u << KEEP_LAST) | (1u << KEEP_WRITTEN);
        bool taken_any = false, taken = true;
        _cleanup_close_ int own_fd = -1;

        while (taken && sweep_run_deletes(run)) {
                /* the newest written takes its place whatever else keeps
                 * it (KEEP_WRITTEN is named only where nothing else does) */
                int64_t newest = INT64_MIN;

                for (size_t i = 0; i < run->n_ckpts; i++) {
                        const struct ckpt *c = &run->ckpts[i];

                        if (c->complete && c->read_error == 0 && c->mtime_usec > newest)
                                newest = c->mtime_usec;
                }
                taken = false;
                for (size_t i = 0; i < run->n_ckpts; i++) {
                        struct ckpt *c = &run->ckpts[i];
                        _cleanup_free_ char *path = NULL;
                        bool ask = (c->verdict.reasons & placed) || (c->mtime_usec >= newest && c->verdict.keep);
                        int v;

                        /* marked ones too: a marker is written last, but
                         * one left by an earlier run is there while a
                         * training restarted into its directory writes
                         * the checkpoint again in place */
                        if (!c->complete || c->read_error != 0 || !ask || (ask_cb && ask_cb->dirs_only && !c->is_dir))
                                continue;
                        if (ask_cb && ask_cb->asked && ask_cb->asked(c, ask_cb->userdata))
                                continue;
                        /* the run opened once: gone or unreadable, it is
                         * one answer for all of them, not one line each */
                        if (run_fd < 0)
                                run_fd = run_at(r, run, -1, &own_fd);
                        v = run_fd < 0 ? run_fd : sweep_being_written(r, run, c, run_fd, c->mtime_usec);
                        if (v < 0 && run_fd < 0) {
                                run_unreadable(run, v, c->name);
                                taken = true;
                                break;
                        }
                        if (v == VERIFY_FREE)
                                continue;
                        if (v < 0 && v != -ESTALE) {
                                run_unreadable(run, v, c->name);
                                taken = true;
                                break;
                        }
                        /* replaced since the scan (a save renamed over
                         * it): what stands there now may be written */
                        path = sweep_ckpt_path(r, run, c);
                        if (!ask_cb || !ask_cb->quiet)
                                log_info("%s: %s: taken for a save still being written, not for its place",
                                         path ? path : c->name,
                                         v == -ESTALE ? "changed since it was scanned" : "in use");
                        c->complete = false;
                        if (ask_cb && ask_cb->taken)
                                ask_cb->taken(c, ask_cb->userdata);
                        taken = true;
                }
                if (taken && run_decide(p, run->ckpts, run->n_ckpts, now_usec) < 0)
                        log_warning("%s/%s: out of memory ranking by owner: keeping every checkpoint", r->w->path,
                                    run->path);
                taken_any = taken_any || taken;
        }
        return taken_any;
}

char *sweep_ckpt_path(const struct root *r, const struct run *run, const struct ckpt *c)
{
        return path_join(r->w->path, run->path, c->name);
}

/* The removal of path failed after its name was gone (renamed to its
 * tombstone, part of it removed): it is no checkpoint any more, and what
 * is left of it is named, for a person or the next start. */
static void log_removal_failed(int k, const struct remove_job *job, const char *path)
{
        const char *tomb = remove_job_tombstone(job), *slash = strrchr(path, '/');
        _cleanup_free_ char *left = NULL;
        char freed[16];

        size_format(remove_job_freed(job), freed, sizeof(freed));
        if (tomb && slash && asprintf(&left, "%.*s/%s", (int)(slash - path), path, tomb) < 0)
                left = NULL;
        log_errno(k, "cannot finish deleting %s (%s freed): %m; what is left of it is %s, %s", path, freed,
                  left ? left : "under its .ckptd-trash- names",
                  remove_job_recorded(job) ? "tried again at the next start" : "left for you to delete");
}

static void pending_pop(void)
{
        remove_job_free(pending[0].job);
        free(pending[0].path);
        memmove(pending, pending + 1, (n_pending - 1) * sizeof(*pending));
        n_pending--;
}

static int on_removal(sd_event_source *src, void *userdata)
{
        char freed[16];
        int k;

        (void)userdata;
        if (n_pending == 0) {
                sd_event_source_set_enabled(src, SD_EVENT_OFF);
                return 0;
        }
        k = remove_job_step(pending[0].job, REMOVAL_STEP);
        if (k > 0)
                return 0;
        size_format(remove_job_freed(pending[0].job), freed, sizeof(freed));
        if (k < 0)
                log_removal_failed(k, pending[0].job, pending[0].path);
        else
                log_debug("finished deleting %s (%s freed)", pending[0].path, freed);
        pending_pop();
        if (n_pending == 0)
                sd_event_source_set_enabled(src, SD_EVENT_OFF);
        /* not an error of the source: returning it would disable it */
        return 0;
}

int sweep_defer_removals(sd_event *e)
{
        int r;

        if (removal_src)
                return 0;
        r = sd_event_add_defer(e, &removal_src, on_removal, NULL);
        if (r < 0)
                return r;
        /* below everything else: each turn first serves what is pending */
        (void)sd_event_source_set_priority(removal_src, SD_EVENT_PRIORITY_IDLE);
        return sd_event_source_set_enabled(removal_src, SD_EVENT_OFF);
}

uint64_t sweep_pending_bytes(dev_t dev)
{
        uint64_t sum = 0;

        for (size_t i = 0; i < n_pending; i++)
                if (pending[i].dev == dev)
                        sum += remove_job_remaining(pending[i].job);
        return sum;
}

void sweep_removals_end(void)
{
        while (n_pending > 0) {
                struct pending *p = &pending[0];

                if (remove_job_recorded(p->job))
                        log_notice("%s: stopping with its removal under way; the next start finishes it", p->path);
                else {
                        int k;

                        /* unrecorded: nobody would ever finish it */
                        do
                                k = remove_job_step(p->job, SIZE_MAX);
                        while (k > 0);
                        if (k < 0)
                                log_errno(k, "cannot finish deleting %s: %m", p->path);
                }
                pending_pop();
        }
        free(pending);
        pending = NULL;
        removal_src = sd_event_source_disable_unref(removal_src);
}

/* Go on with job: to its end, or (in the daemon) for a first step and then
 * from the loop. Returns 0 when done, 1 when under way, or -errno; *freed
 * gets what it freed, or will have freed as scanned. */
static int removal_go(struct remove_job *job, const struct root *r, const char *path, dev_t dev, uint64_t *freed)
{
        struct pending *v;
        int k;

        k = remove_job_step(job, removal_src ? REMOVAL_STEP : SIZE_MAX);
        if (k > 0 && remove_job_detach(job) == 0 && (v = realloc(pending, (n_pending + 1) * sizeof(*v)))) {
                pending = v;
                v[n_pending] = (struct pending){
                        .job = job, .path = strdup(path), .dev = dev, .root_dev = r->dev, .root_ino = r->ino};
                if (v[n_pending].path && sd_event_source_set_enabled(removal_src, SD_EVENT_ON) >= 0) {
                        n_pending++;
                        *freed = remove_job_freed(job) + remove_job_remaining(job);
                        return 1;
                }
                free(v[n_pending].path);
        }
        /* out of memory or fds: the old way, here and now */
        while (k > 0)
                k = remove_job_step(job, SIZE_MAX);
        *freed = remove_job_freed(job);
        if (k < 0)
                log_removal_failed(k, job, path);
        remove_job_free(job);
        return k;
}

void victim_locks_finish(struct victim_locks *l)
{
        flock_table_finish(&l->t);
        *l = (struct victim_locks){};
}

static bool locks_warned, probe_noted;

static void victim_locks_load(struct victim_locks *l)
{
        int k;

        if (l->loaded)
                return;
        l->loaded = true;
        k = flock_table_load(&l->t, PROC_LOCKS);
        if (k == -ENOENT) {
                /* /proc not mounted: the old probe, which holds each
                 * victim's lock for an instant */
                l->probe = true;
                if (!probe_noted)
                        log_notice("%s not found (is /proc mounted?): probing each checkpoint to be deleted with "
                                   "flock(2) instead",
                                   PROC_LOCKS);
                probe_noted = true;
        } else if (k < 0) {
                l->error = k;
                if (!locks_warned)
                        log_warning_errno(k,
                                          "cannot read %s: %m; keeping every checkpoint to be deleted (whether "
                                          "another process holds a flock on it is unknown)",
                                          PROC_LOCKS);
                locks_warned = true;
        } else
                locks_warned = false;
}

/* A victim kept by its check: logged with the keep reason. Returns 1. */
static int victim_kept(const char *path, const struct run *run, const char *reason, const char *why)
{
        struct log_fields f = {.action = "keep", .path = path, .run = run->path, .reason = reason};

        log_struct(LOG_INFO, &f, "keeping %s (%s): %s", path, reason, why);
        return 1;
}

/* Directory checkpoint c opened beneath the run at run_fd, still the one
 * scanned: the fd, -ESTALE when gone or replaced, or -errno. */
static int open_ckpt_dir(int run_fd, const struct ckpt *c)
{
        _cleanup_close_ int fd =
                openat_beneath(run_fd, ckpt_member(c, 0), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK, 0);
        struct stat st;

        if (fd < 0)
                return open_error_gone_or_replaced(fd) || fd == -ELOOP ? -ESTALE : fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (st.st_dev != c->dev || st.st_ino != c->ino)
                return -ESTALE;
        return TAKE_FD(fd);
}

/* Whether another process holds a flock(2) on victim c: from /proc/locks,
 * read once for the batch l, or where /proc is not mounted a probe of the
 * victim (holding its lock for an instant). VERIFY_FREE, VERIFY_FLOCK, or
 * -errno when it cannot be told (logged; the victim is kept). */
static int victim_flock(const struct ckpt *c, const char *path, int run_fd, struct victim_locks *l)
{
        victim_locks_load(l);
        if (l->error < 0)
                return l->error;
        if (l->probe) {
                _cleanup_close_ int fd = openat_beneath(
                        run_fd, ckpt_member(c, 0), O_RDONLY | O_NONBLOCK | O_NOCTTY | (c->is_dir ? O_DIRECTORY : 0), 0);
                int q = fd < 0 ? fd : verify_flock_probe(fd);

                if (q < 0)
                        log_warning_errno(q, "%s: cannot read its flock pin: %m; keeping it", path);
                return q < 0 ? q : q > 0 ? VERIFY_FLOCK : VERIFY_FREE;
        }
        return flock_table_has(&l->t, c->dev, c->ino) ? VERIFY_FLOCK : VERIFY_FREE;
}

/* A plain file on which no lease could be taken (remove_file_checked()):
 * its flock pin is read as a group's or a directory's is. */
struct unleased_ctx {
        const struct ckpt *c;
        const char *path;
        int run_fd;
        struct victim_locks *l;
};

static int victim_unleased(void *userdata)
{
        const struct unleased_ctx *u = userdata;
        int v = victim_flock(u->c, u->path, u->run_fd, u->l);

        return v < 0 ? VERIFY_KEPT : v;
}

/* Whether a pin of this kind found since the decision (k: 1 pinned, 0
 * not, -errno cannot be told) keeps the victim at path: logged when so. */
static bool victim_pinned_since(const char *path, const struct run *run, enum pin_kind kind, int k)
{
        const char *what = kind == PIN_KEEPFILE ? "a keep file pins it" : "a pointer file names it";

        if (k == -EAGAIN && kind == PIN_POINTER)
                log_warning_errno(
                        k,
                        "%s: a pointer file written just now names no checkpoint, or a part of one's name (%m: its "
                        "writer may not be done); keeping it",
                        path);
        else if (k < 0)
                log_warning_errno(k, "%s: cannot read whether %s: %m; keeping it", path, what);
        else if (k > 0)
                victim_kept(path, run, pin_kind_to_string(kind),
                            kind == PIN_KEEPFILE ? "a keep file was made beside it since it was decided"
                                                 : "a pointer file names it since it was decided");
        return k != 0;
}

/* A victim whose run was read longer ago than this is asked for keep files
 * made beside it since (victim_check()). */
#define KEEP_RECHECK_AFTER_USEC USEC_PER_SEC

/* Check a victim right before its removal (verify.h): in a pass that has
 * gone on for over KEEP_RECHECK_AFTER_USEC (many runs, large directories,
 * a slow file system), a keep file made beside it since its run was read,
 * a few fstatat(2) of names that do not exist (a save decides and removes
 * within a millisecond), and the run's pointer files, read again; and for
 * a directory or a group its flock pin and whether anyone has its files
 * open. A plain file's are both answered by
 * remove_file_checked()'s lease, held through the unlink (/proc/locks only
 * without leases, victim_unleased()). 0 to go on, 1 when kept (logged), 2
 * when kept because a check failed (logged: it counts toward the bound of
 * failures, sweep_failed_one()). */
static int victim_check(struct sweep *s, const struct root *r, const struct run *run, const struct ckpt *c,
                        const char *path, int run_fd, struct victim_locks *l)
{
        bool long_ago = (uint64_t)now_usec(CLOCK_MONOTONIC) - s->start_usec > KEEP_RECHECK_AFTER_USEC;
        int v = VERIFY_FREE;

        if (long_ago && (victim_pinned_since(path, run, PIN_KEEPFILE, scan_keep_file_for(run_fd, c)) ||
                         /* a pointer file rewritten since (a restore point set by hand) */
                         (r->w->pointer_files.n > 0 &&
                          victim_pinned_since(path, run, PIN_POINTER,
                                              pins_pointer_names(run_fd, &r->w->pointer_files, run, c,
                                                                 now_usec(CLOCK_REALTIME), watch_settle_usec(r->w))))))
                return 1;
        /* a plain file's flock pin: its lease says (remove_file_checked(),
         * victim_unleased()) */
        if (!c->is_dir && c->n_members == 1)
                return 0;
        v = victim_flock(c, path, run_fd, l);
        if (v < 0)
                return 2;

        if (v == VERIFY_FREE && c->is_dir) {
                _cleanup_close_ int fd = open_ckpt_dir(run_fd, c);
                int64_t since = s->now_usec - (int64_t)VERIFY_RECENT_SEC * (int64_t)USEC_PER_SEC;

                /* the tree itself: the daemon's record of it may be from
                 * long ago (a complete directory checkpoint is not watched
                 * inside) */
                v = fd < 0 ? fd : verify_tree(fd, l->probe ? NULL : &l->t, since, c->mtime_usec);
        } else if (v == VERIFY_FREE && c->n_members > 1) {
                v = sweep_verify_files(NULL, run, c, run_fd, l->probe ? NULL : &l->t);
        }
        if (v == VERIFY_FREE)
                return 0;
        if (v == VERIFY_FLOCK)
                return victim_kept(path, run, pin_kind_to_string(PIN_FLOCK), "another process holds a flock on it");
        if (v == VERIFY_IN_USE)
                return victim_kept(path, run, keep_reason_to_string(KEEP_IN_USE), "another process has it open");
        if (v == VERIFY_CHANGED || v == -ESTALE || v == -ENOENT) {
                log_warning("%s changed since it was scanned, not deleting it", path);
                s->kept_changed++;
        } else if (v == -EXDEV) {
                /* mounted inside since it was read: never removed whole */
                log_warning("%s: a mount point is inside it, which ckptd never enters; keeping it whole", path);
                s->kept_changed++;
        } else {
                log_warning_errno(v, "%s: cannot check whether it is in use: %m; keeping it", path);
                return 2;
        }
        return 1;
}

/* What is asked of each file of a file checkpoint (each_file()). */
struct file_ask {
        const struct flock_table *locks; /* a victim's: its flock pins, may be NULL */
        int64_t newest_usec;
        bool writer; /* only whether a process writes it (verify_file_writer()) */
        bool alone;  /* and that by a lease, of a file of one link (verify_file_alone()) */
};

/* Each file of file checkpoint c beneath the run at run_fd (-1: opened here
 * from r), its first as scanned (a new file at its name is another one),
 * the others of a group as they are now, asked as a says: the first answer
 * that is not VERIFY_FREE, -ESTALE when the run or a file is gone or
 * replaced, -EINVAL for a directory checkpoint. */
static int each_file(struct root *r, const struct run *run, const struct ckpt *c, int run_fd, const struct file_ask *a)
{
        _cleanup_close_ int own_fd = -1;
        int v = VERIFY_FREE;

        if (c->is_dir)
                return -EINVAL;
        run_fd = run_at(r, run, run_fd, &own_fd);
        if (run_fd < 0)
                return run_fd;
        for (size_t i = 0; i < c->n_members && v == VERIFY_FREE; i++) {
                struct stat st = {.st_dev = c->dev, .st_ino = c->ino};

                if (i > 0 && fstatat(run_fd, ckpt_member(c, i), &st, AT_SYMLINK_NOFOLLOW) < 0)
                        v = errno == ENOENT ? -ESTALE : -errno;
                else if (a->alone)
                        v = verify_file_alone(run_fd, ckpt_member(c, i), &st);
                else if (a->writer)
                        v = verify_file_writer(run_fd, ckpt_member(c, i), &st, a->newest_usec);
                else if (a->locks && flock_table_has(a->locks, st.st_dev, st.st_ino))
                        v = VERIFY_FLOCK;
                else
                        v = verify_file(run_fd, ckpt_member(c, i), &st, a->newest_usec);
        }
        return v;
}

int sweep_being_written(struct root *r, const struct run *run, const struct ckpt *c, int run_fd, int64_t newest_usec)
{
        _cleanup_close_ int own_fd = -1, fd = -1;

        if (!c->is_dir)
                return each_file(r, run, c, run_fd, &(struct file_ask){.newest_usec = newest_usec, .writer = true});
        run_fd = run_at(r, run, run_fd, &own_fd);
        if (run_fd < 0)
                return run_fd;
        fd = open_ckpt_dir(run_fd, c);
        return fd < 0 ? fd : verify_tree_writer(fd, newest_usec);
}

int sweep_free_alone(struct root *r, const struct run *run, const struct ckpt *c, int run_fd)
{
        return each_file(r, run, c, run_fd, &(struct file_ask){.alone = true});
}

int sweep_verify_files(struct root *r, const struct run *run, const struct ckpt *c, int run_fd,
                       const struct flock_table *locks)
{
        return each_file(r, run, c, run_fd, &(struct file_ask){.locks = locks, .newest_usec = c->mtime_usec});
}

/* Whether the run held open at run_fd still lies at its path beneath the
 * watch directory: one directly in it by its parent (a lookup of ".."),
 * a deeper one opened again beneath it, no symlink followed. 1, 0, -errno. */
static int run_beneath(const struct root *r, const struct run *run, int run_fd)
{
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (!strchr(run->path, '/'))
                return path_leads_to(run_fd, "..", AT_SYMLINK_NOFOLLOW, r->dev, r->ino);
        fd = openat_beneath(r->fd, run->path, O_PATH | O_DIRECTORY, 0);
        if (fd < 0)
                return open_error_gone_or_replaced(fd) ? 0 : fd;
        if (fstat(fd, &st) < 0)
                return -errno;
        return st.st_dev == run->dev && st.st_ino == run->ino;
}

/* Whether the run, and the watch directory above it, still lie at their
 * paths, right before a removal: a directory moved away during a pass (an
 * operator archiving a run, or the tree above the watch path, perhaps
 * leaving a symlink in its place) takes its checkpoints out of the watch
 * path, and a long pass (the start-up's, a floor's) would go on removing
 * there through the directories it holds. 1 here; 0 moved away or
 * replaced, or -errno when that cannot be told: said, and nothing more is
 * removed in the run (in the watch directory, when it moved) in this
 * pass. */
static int run_in_place(struct sweep *s, const struct root *r, const struct run *run, int run_fd)
{
        int k;

        if (s->moved == r)
                return 0;
        k = path_leads_to(AT_FDCWD, r->w->path, AT_SYMLINK_NOFOLLOW, r->dev, r->ino);
        if (k == 0) {
                log_warning("%s no longer leads to the directory watched: it or a directory above it was moved or "
                            "replaced during the pass; deleting nothing more in it",
                            r->w->path);
                s->moved = r;
                return 0;
        }
        if (k > 0 && strcmp(run->path, ".") != 0)
                k = run_beneath(r, run, run_fd);
        if (k == 0)
                log_warning("%s/%s was moved away or replaced during the pass; deleting nothing more in it", r->w->path,
                            run->path);
        else if (k < 0)
                log_warning_errno(k, "cannot tell whether %s/%s is still where it was: %m; deleting nothing more in it",
                                  r->w->path, run->path);
        return k;
}

static int remove_one(struct sweep *s, struct root *r, const struct run *run, const struct ckpt *c,
                      enum delete_reason reason, int run_fd, struct victim_locks *locks)
{
        _cleanup_free_ char *path = sweep_ckpt_path(r, run, c);
        const char *monitor = r->w->policy.monitor;
        const char *why = delete_reason_to_string(reason);
        struct log_fields f = {
                .path = path,
                .run = run->path,
                .reason = why,
                .monitor = c->has_metric ? monitor : NULL,
                .has_value = c->has_metric,
                .value = c->metric,
                .has_bytes = true,
                .bytes = c->size_bytes,
        };
        char size[16], value[64];
        const char *metric;
        uint64_t freed = 0;
        bool touched = false; /* some of it may be gone */
        int k;

        if (!path)
                return log_errno(-ENOMEM, "out of memory");
        size_format(c->size_bytes, size, sizeof(size));
        if (s->stopped || stop_requested()) {
                s->stopped = true;
                return 0;
        }
        if (sweep_capped(s) || sweep_fail_left(s, r) <= 0)
                return 0;
        s->budget--;
        metric = sweep_metric_text(r, c, value, sizeof(value));
        if (s->dry_run) {
                f.action = "would-delete";
                if (metric)
                        log_struct(LOG_NOTICE, &f, "would delete %s (%s, %s=%s, %s)", path, why, monitor, metric, size);
                else
                        log_struct(LOG_NOTICE, &f, "would delete %s (%s, %s)", path, why, size);
                s->deleted++;
                s->deleted_size_bytes += c->size_bytes;
                return 0;
        }

        _cleanup_close_ int own_fd = run_fd < 0 ? open_run(r, run->path) : -1;
        int fd = run_fd < 0 ? own_fd : run_fd;
        /* the cap counts deletions: a victim kept by its checks, or not
         * removed at all, gives its place back, or victims kept (each in
         * use, or on a read-only or immutable file) ahead in the order
         * would use it up before one is deleted */
        if (fd < 0) {
                s->budget++;
                log_warning_errno(fd, "cannot open run %s/%s: %m, not deleting %s", r->w->path, run->path, c->name);
                sweep_failed_one(s, r);
                return fd;
        }
        k = victim_check(s, r, run, c, path, fd, locks);
        if (k > 0) {
                s->budget++;
                if (k == 2)
                        sweep_failed_one(s, r);
                return 0;
        }
        if (run_in_place(s, r, run, fd) <= 0) {
                s->budget++;
                return 1;
        }
        if (!c->is_dir && c->n_members == 1) {
                /* one unlinkat(2): nothing left half-done to record */
                k = remove_file_checked(fd, c, reason == DELETE_FLOOR, victim_unleased,
                                        &(struct unleased_ctx){.c = c, .path = path, .run_fd = fd, .l = locks}, &freed);
                /* open in another process: is a flock among its holds? */
                if (k == VERIFY_IN_USE && victim_flock(c, path, fd, locks) == VERIFY_FLOCK)
                        k = VERIFY_FLOCK;
                if (k == VERIFY_IN_USE || k == VERIFY_FLOCK || k == VERIFY_KEPT || k == VERIFY_LINKED) {
                        s->budget++;
                        if (k == VERIFY_LINKED) {
                                s->kept_linked++;
                                victim_kept(path, run, floor_protect_to_string(FLOOR_PROTECT_LINKED),
                                            "another link holds its blocks: evicting it frees no room");
                        } else if (k == VERIFY_FLOCK)
                                victim_kept(path, run, pin_kind_to_string(PIN_FLOCK),
                                            "another process holds a flock on it");
                        else if (k == VERIFY_IN_USE)
                                victim_kept(path, run, keep_reason_to_string(KEEP_IN_USE),
                                            "another process has it open");
                        return 0;
                }
                if (k >= VERIFY_UNCHECKED_BASE) {
                        s->budget++;
                        log_warning_errno(k - VERIFY_UNCHECKED_BASE,
                                          "%s: cannot check whether it is in use: %m; keeping it", path);
                        sweep_failed_one(s, r);
                        return 0;
                }
                if (k == VERIFY_CHANGED)
                        k = -ESTALE;
                goto removed; /* one unlinkat(2): removed whole or not at all */
        }
        struct remove_ctx ctx;
        remove_ctx_init(&ctx, r, run->path);
        struct remove_job *job = NULL;
        k = remove_ckpt_begin(&ctx, fd, c, &job);
        if (ctx.record_error < 0 && !records_warned) {
                log_warning_errno(ctx.record_error,
                                  "cannot record the removal of %s in the state directory: %m; removing it "
                                  "unrecorded (if interrupted, its .ckptd-trash- tombstone is left for you to delete)",
                                  path);
                records_warned = true;
        } else if (ctx.record_error == 0)
                records_warned = false;
        /* the name is gone from here on: the rest may go on from the loop */
        if (k == 0) {
                touched = true;
                k = removal_go(job, r, path, c->dev, &freed);
        }
removed:
        if (k > 0)
                k = 0;
        if (k < 0 && !touched)
                s->budget++; /* not removed, as when kept above */
        if (!touched && (k == -ESTALE || k == -ENOENT)) {
                log_warning("%s changed since it was scanned, not deleting it", path);
                s->kept_changed++;
                return 0;
        }
        if (k < 0) {
                s->failed++;
                if (touched) { /* said by removal_go() */
                        s->unfinished++;
                        s->unfinished_size_bytes += c->size_bytes;
                        s->freed_bytes += freed;
                } else
                        log_errno(k, "cannot delete %s: %m", path);
                sweep_failed_one(s, r);
                return k;
        }
        f.action = reason == DELETE_FLOOR ? "evict" : "delete";
        f.message_id = reason == DELETE_FLOOR ? MSGID_EVICTED : MSGID_DELETED;
        /* "evicted": the policy kept it, the floor needed the room */
        if (metric)
                log_struct(LOG_INFO, &f, "%s %s (%s, %s=%s, %s)", reason == DELETE_FLOOR ? "evicted" : "deleted", path,
                           why, monitor, metric, size);
        else
                log_struct(LOG_INFO, &f, "%s %s (%s, %s)", reason == DELETE_FLOOR ? "evicted" : "deleted", path, why,
                           size);
        s->deleted++;
        s->deleted_size_bytes += c->size_bytes;
        s->freed_bytes += freed;
        s->deleted_by_reason[reason]++;
        s->freed_by_reason[reason] += freed;
        return 0;
}

bool sweep_capped(struct sweep *s)
{
        if (s->budget > 0)
                return false;
        if (!s->capped)
                log_warning("deletion cap (max_delete_per_sweep) reached; the rest waits for the next sweep");
        s->capped = true;
        return true;
}

void sweep_say_lease_refusals(const struct root *r)
{
        dev_t dev;
        int error;

        /* the refusals of any watch on a file system are said by the first
         * pass that meets them: named by the file system, not the watch */
        while (verify_lease_refusal_unsaid(&dev, &error)) {
                char where[64];

                snprintf(where, sizeof(where), "device %u:%u", major(dev), minor(dev));
                log_warning_errno(error,
                                  "cannot take leases on some checkpoints on %s%s (%s, %s: %m): one of those counts "
                                  "as in use only when its size or modification time changed since its scan; a "
                                  "reader, or a writer that wrote nothing since, is not seen",
                                  r->dev == dev ? "the file system of " : "", r->dev == dev ? r->w->path : where, where,
                                  error == -EACCES || error == -EPERM
                                          ? "another user's, or not readable, and without CAP_LEASE"
                                          : "no leases on this file system");
        }
}

const char *sweep_metric_text(const struct root *r, const struct ckpt *c, char *buf, size_t len)
{
        const char *monitor = r->w->policy.monitor;
        int i;

        if (!monitor || !c->has_metric)
                return NULL;
        i = ckpt_field_find(c, monitor);
        /* a value from the name is shown as written; one from a file or a
         * log has no text of its own */
        if (i >= 0 && ckpt_field_value(c, (size_t)i) == c->metric)
                return ckpt_field_text(c, (size_t)i, buf, len);
        return number_format(c->metric, buf, len);
}

int sweep_remove(struct sweep *s, struct root *r, const struct run *run, const struct ckpt *c,
                 enum delete_reason reason, int run_fd, struct victim_locks *locks)
{
        int k = remove_one(s, r, run, c, reason, run_fd, locks);

        sweep_say_lease_refusals(r);
        return k;
}

int sweep_apply(struct sweep *s, struct root *r, const struct run *run)
{
        return sweep_apply_range(s, r, run, 0, run->n_ckpts, -1);
}

int sweep_apply_range(struct sweep *s, struct root *r, const struct run *run, size_t from, size_t to, int run_fd)
{
        _cleanup_close_ int own_fd = -1;
        int fd = run_fd;
        /* one read of /proc/locks for the run's victims, at the first */
        struct victim_locks locks = {};

        for (size_t i = from; i < to && i < run->n_ckpts; i++) {
                const struct ckpt *c = &run->ckpts[i];

                if (c->verdict.keep)
                        continue;
                /* the run is opened once, at its first deletion */
                if (fd < 0 && !s->dry_run)
                        fd = own_fd = open_run(r, run->path);
                if (sweep_remove(s, r, run, c, c->verdict.delete_reason, fd, &locks) > 0)
                        break; /* the run is no longer where it was */
        }
        victim_locks_finish(&locks);
        return 0;
}

char *watch_readonly_problem(const char *path)
{
        struct statvfs sv;
        char *msg = NULL;

        if (statvfs(path, &sv) < 0 || !(sv.f_flag & ST_RDONLY))
                return NULL;
        if (asprintf(&msg,
                     "%s is on a read-only filesystem here, so nothing can be deleted in it. "
                     "If ckptd runs as a systemd service (ProtectSystem=strict), make it writable: "
                     "'systemctl edit ckptd', add \"[Service]\" and \"ReadWritePaths=%s\", then restart ckptd",
                     path, path) < 0)
                return NULL;
        return msg;
}

char *watch_symlink_problem(const char *path)
{
        _cleanup_free_ char *target = NULL, *real = NULL;
        struct stat st;
        char *msg = NULL;
        ssize_t k;

        if (lstat(path, &st) < 0 || !S_ISLNK(st.st_mode))
                return NULL;
        target = malloc(PATH_MAX);
        if (!target)
                return NULL;
        k = readlink(path, target, PATH_MAX - 1);
        if (k < 0)
                return NULL;
        target[k] = '\0';
        real = realpath(path, NULL);
        if (asprintf(&msg, "%s is a symlink to %s: a watch path is never followed; name the directory itself%s%s", path,
                     target, real ? ": " : "", real ? real : "") < 0)
                return NULL;
        return msg;
}
