/* What an inotify event means for the runs, their index and the floor. */

#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "manager_internal.h"
#include "remove.h"
#include "scan_pins.h"
#include "watch.h"

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

/* Entry name of the run, lstat'ed into *st: 0 or -errno (-ENOMEM when its
 * path cannot be made). */
static int entry_lstat(struct root_state *rs, struct run_state *run, const char *name, struct stat *st)
{
        _cleanup_free_ char *path = child_path(run->path, name);

        if (!path)
                return -ENOMEM;
        return fstatat(rs->root.fd, path, st, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

/* Whether a file just created is one being written: a regular file with a
 * single link (not a hard link made to an existing checkpoint); gone
 * already, or unknown: the safe side. */
static bool created_for_writing(struct root_state *rs, struct run_state *run, const char *name)
{
        struct stat st;

        return entry_lstat(rs, run, name, &st) < 0 || (S_ISREG(st.st_mode) && st.st_nlink == 1);
}

/* Whether entry name of the run is there, unknown counting as yes. */
static bool entry_present(struct root_state *rs, struct run_state *run, const char *name)
{
        struct stat st;

        return entry_lstat(rs, run, name, &st) != -ENOENT;
}

/* Whether a change of entry name of the run may change metric_log entry
 * glob (a path or glob relative to the run, as lib/metriclog.c resolves it:
 * "metrics.csv", "./metrics.csv", "logs/../metrics.csv", "../RUN/x.csv"
 * through the run's own directory name run_base, "logs/metrics.csv"): name
 * is the first component inside the run of the path to the log. */
static bool run_log_matches(const char *glob, const char *run_base, const char *name)
{
        char comp[NAME_MAX + 1], top[NAME_MAX + 1] = "";
        size_t depth = 0;
        bool above = false; /* at the run's parent */

        for (const char *p = glob; *p;) {
                size_t len = strcspn(p, "/");

                if (len > NAME_MAX)
                        return true; /* a glob may still match: wake */
                snprintf(comp, sizeof(comp), "%.*s", (int)len, p);
                if (strcmp(comp, "..") == 0) {
                        if (above)
                                return false; /* further up: another tree's */
                        if (depth == 0)
                                above = true;
                        else
                                depth--;
                } else if (above) {
                        /* back in only through the run's own name */
                        if (fnmatch(comp, run_base, FNM_PERIOD) != 0)
                                return false;
                        above = false;
                } else if (len > 0 && strcmp(comp, ".") != 0) {
                        if (depth++ == 0)
                                memcpy(top, comp, len + 1);
                }
                p += len;
                while (*p == '/')
                        p++;
        }
        return depth > 0 && !above && fnmatch(top, name, FNM_PERIOD) == 0;
}

/* Whether a change of entry name of the run, not a checkpoint of its watch,
 * may change what the run keeps: a keep file or -unfinished marker, a
 * symlink the run had (also under a name the scan ignores, as Lightning's
 * last.ckpt), a pointer file, a metric log of the run's own; under preset
 * "auto" any entry but the daemon's own tombstones, which may change the
 * layout found. A trainer's own logs and configs written beside its
 * checkpoints wake nothing. (A new symlink is found by index_note().) */
static bool name_may_pin(const struct root_state *rs, const struct run_state *run, const char *name)
{
        const struct watch_conf *w = rs->root.w;
        size_t len = strlen(name);

        if (scan_name_pins(name) || strv_contains(&run->idx.links, name))
                return true;
        /* our own removals, not a symlink the run had (above) */
        if (strncmp(name, TOMBSTONE_PREFIX, strlen(TOMBSTONE_PREFIX)) == 0)
                return false;
        if (streq_ptr(w->preset, "auto"))
                return true;
        for (size_t i = 0; i < w->pointer_files.n; i++) {
                const char *f = w->pointer_files.v[i];

                if (strncmp(f, name, len) == 0 && (f[len] == '\0' || f[len] == '/'))
                        return true;
        }
        if (w->metric_log.n > 0) {
                const char *base = strrchr(strcmp(run->path, ".") == 0 ? w->path : run->path, '/');

                base = base ? base + 1 : run->path;
                for (size_t i = 0; i < w->metric_log.n; i++)
                        if (run_log_matches(w->metric_log.v[i], base, name))
                                return true;
        }
        return false;
}

/* Whether name in the run is the daemon's own metrics file, or its
 * temporary (report.c writes PATH.tmp.PID and renames it over PATH): one
 * written inside a watch must not wake the run, whose sweep writes it
 * again. Told by the name, then by the directory's (dev, ino). */
static bool own_metrics_file(struct manager *m, struct root_state *rs, struct run_state *run, const char *name)
{
        const char *mf = m->config->metrics_file, *base = mf ? strrchr(mf, '/') : NULL;
        _cleanup_free_ char *dir = NULL;
        struct stat a, b;
        size_t len;

        if (!base)
                return false;
        len = strlen(++base);
        if (strncmp(name, base, len) != 0 || (name[len] != '\0' && strncmp(name + len, ".tmp.", 5) != 0))
                return false;
        /* ours are regular files: anything else so named (a symlink that
         * pins, a directory) is the run's, and its events count */
        if (entry_lstat(rs, run, name, &a) == 0 && !S_ISREG(a.st_mode))
                return false;
        dir = strndup(mf, (size_t)(base - mf));
        return dir && stat(dir, &a) == 0 && fstatat(rs->root.fd, run->path, &b, 0) == 0 && a.st_dev == b.st_dev &&
               a.st_ino == b.st_ino;
}

/* NeMo's -unfinished marker of a model-parallel save changed in run P: the
 * runs of its ranks, P's children (mp_rank_00/...), take it from there, so
 * they are read whole again and decided, also when the marker goes after
 * the last save of a training and no event comes in them. */
static void ranks_touch(struct root_state *rs, const struct run_state *parent, const char *name, uint64_t delay)
{
        size_t len = strlen(parent->path);
        bool root = strcmp(parent->path, ".") == 0;

        if (!scan_unfinished_marker(name))
                return;
        for (size_t i = 0; i < rs->n_runs; i++) {
                struct run_state *r = rs->runs[i];
                const char *base = r->path;

                if (!root) {
                        if (strncmp(r->path, parent->path, len) != 0 || r->path[len] != '/')
                                continue;
                        base += len + 1;
                }
                if (strchr(base, '/') || !scan_model_parallel_dir(base))
                        continue;
                r->full = true;
                run_arm(r, delay, false);
        }
}

static void on_run_event(struct manager *m, struct root_state *rs, const struct watch_event *ev)
{
        uint64_t now = (uint64_t)now_usec(CLOCK_MONOTONIC);
        const char *dir = ev->dir->path;
        struct run_state *run;
        struct pending *p;
        bool candidate;

        if (ev->kind == WATCH_EVENT_SELF_GONE) {
                if (ev->dir->kind == WATCH_ROOT) {
                        root_lost(m, rs);
                        return;
                }
                /* The run's directory went; another may stand under its
                 * name already (one renamed over it, which replaces an
                 * empty directory, is an IN_MOVED_TO read before this):
                 * scanned and watched as new. Dropping frees ev->dir. */
                _cleanup_free_ char *path = strdup(dir);
                runs_drop_below(m, rs, dir);
                if (path)
                        root_rescan_at(m, rs, path);
                return;
        }
        run = run_find(rs, dir);
        if (!run)
                return;
        candidate = name_is_candidate(rs, ev->name, ev->is_dir);
        if (!candidate && own_metrics_file(m, rs, run, ev->name))
                return;
        m->last_event_usec = now_usec(CLOCK_REALTIME);
        note_write(m, ev);
        if (index_note(rs, run, ev, candidate))
                run_arm(run, 0, false);
        if (!candidate)
                ranks_touch(rs, run, ev->name, settle_usec(rs));

        switch (ev->kind) {
        case WATCH_EVENT_DIR_CREATED:
                if (candidate) {
                        p = pending_get(run, ev->name);
                        if (!p)
                                return;
                        p->last_usec = now;
                        if (ev->mask & IN_MOVED_TO) {
                                /* renamed in whole (Orbax, DCP): complete now,
                                 * its files asked for writers when it is kept,
                                 * as a file renamed in is (kept_unproven()) */
                                p->done = true;
                                p->unproven = true;
                                run_arm(run, 0, true);
                        } else {
                                /* a directory checkpoint starts: watch inside
                                 * it for its marker and its writes */
                                (void)pending_watch(rs, run, p);
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
                } else if (!candidate && name_may_pin(rs, run, ev->name)) {
                        /* the directory of a metric log, swapped in */
                        run_arm(run, 0, false);
                }
                return;
        case WATCH_EVENT_CREATED:
        case WATCH_EVENT_MODIFIED:
                if (!candidate) {
                        /* one linked in whole: no close follows */
                        if (ev->kind == WATCH_EVENT_CREATED && name_may_pin(rs, run, ev->name))
                                run_arm(run, 0, false);
                        return;
                }
                p = pending_get(run, ev->name);
                if (!p)
                        return;
                p->done = p->marked = false;
                p->last_usec = now;
                /* A hard link or a special file is created whole: no
                 * IN_CLOSE_WRITE will follow; settle decides. */
                p->writing = ev->kind == WATCH_EVENT_MODIFIED || created_for_writing(rs, run, ev->name);
                /* Writes seen under its name: its close will be too. A
                 * creation alone says nothing of when it ends (linked in
                 * from a name since removed, whose close comes under that
                 * name): asked in a second. */
                p->unproven = ev->kind == WATCH_EVENT_CREATED;
                if (!p->writing)
                        run_arm(run, settle_usec(rs), true);
                else if (p->unproven)
                        run_arm(run, RECHECK_MIN_USEC, false);
                return;
        case WATCH_EVENT_WRITE_DONE:
        case WATCH_EVENT_MOVED_IN:
                if (candidate) {
                        p = pending_get(run, ev->name);
                        if (!p)
                                return;
                        p->writing = false;
                        /* a rename says nothing of its writer: it may
                         * publish a save before it closes it; nor does a
                         * close say whose open it was (another process
                         * that opened it for writing, the trainer's own
                         * first of two opens) */
                        p->unproven = true;
                        p->last_usec = now;
                        run_arm(run, settle_usec(rs), true);
                } else if (name_may_pin(rs, run, ev->name)) {
                        /* a pointer file, a .keep, a file over a symlink:
                         * pins changed */
                        run_arm(run, 0, false);
                }
                return;
        case WATCH_EVENT_GONE:
                p = pending_find(run, ev->name);
                if (p && !ev->is_dir && entry_present(rs, run, ev->name)) {
                        /* another file stands there already (swapped in
                         * by renameat2() RENAME_EXCHANGE), written or not:
                         * asked when it is kept */
                        p->writing = p->done = p->marked = false;
                        p->unproven = true;
                        p->last_usec = now;
                } else if (p) {
                        pending_unwatch(rs, run, p);
                        pending_drop(run, (size_t)(p - run->pending));
                }
                if (ev->is_dir && !candidate && rs->root.w->recursive) {
                        /* another directory may stand there already: one
                         * swapped in (renameat2() RENAME_EXCHANGE) is an
                         * IN_MOVED_TO read before this IN_MOVED_FROM */
                        _cleanup_free_ char *path = child_path(run->path, ev->name);
                        if (path) {
                                runs_drop_below(m, rs, path);
                                root_rescan_at(m, rs, path);
                        }
                } else if (!candidate && name_may_pin(rs, run, ev->name)) {
                        /* A pointer file, a .keep or a symlink went: what it
                         * pinned may go now, not at the run's next save.
                         * Excluded names too: Lightning's last.ckpt link is
                         * one. */
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
        /* a file inside written: asked at its next quiet whether one is
         * still open (kept_unproven()), unless its marker then says done */
        p->unproven = true;
        run_arm(run, pending_quiet_usec(rs, p), true);
}

/* An event in the parent of a root: the root removed, moved away, created,
 * moved in, or replaced by a rename over it. */
static void on_parent_event(struct manager *m, struct root_state *rs, const struct watch_event *ev)
{
        const char *base = strrchr(rs->root.w->path, '/');

        /* the parent itself moved or removed: is the path still the root? */
        if (ev->kind == WATCH_EVENT_SELF_GONE) {
                if (rs->present)
                        root_here(m, rs);
                return;
        }
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
                if (root_at_path(rs) > 0)
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

int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
        struct manager *m = userdata;
        int r;

        (void)s, (void)fd, (void)revents;
        m->reading_events = true;
        r = watcher_read(m->watcher, on_watch_event, m);
        m->reading_events = false;
        if (r < 0 && r != -EAGAIN)
                log_warning_errno(r, "cannot read inotify events: %m, rescanning");
        if (r < 0 || m->rescan_all) {
                m->rescan_all = false;
                for (size_t i = 0; i < m->n_roots; i++) {
                        pending_forget(&m->roots[i]);
                        index_distrust(&m->roots[i]);
                }
                roots_rescan(m, false);
        }
        /* the events read (watcher_read() reads until the queue is empty or
         * its cap) are noted: what they made due is decided now, not one
         * loop turn each */
        runs_sweep_due(m);
        return 0;
}
