/* A watch root: watching it, losing it, rescanning it, polling it. */

#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <systemd/sd-event.h>

#include "log.h"
#include "manager_internal.h"
#include "remove.h"
#include "sweep.h"
#include "watch.h"

#define DEFAULT_POLL_SEC 30

static void root_arm_poll(struct root_state *rs);

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

/* What adding the watch of path (r from watcher_add()) means for the root:
 * the watch limit turns it to polling; a directory gone or replaced is
 * nothing to watch. */
static int root_watch_result(struct root_state *rs, const char *path, int r)
{
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
        return r;
}

/* Watch a directory of the root; the watch limit turns the root to polling.
 * Returns its watch descriptor (>= 1), 0 when there is none to have (no
 * watcher: events come from elsewhere; past the limit: polled), or -errno. */
int root_watch(struct manager *m, struct root_state *rs, const char *path, enum watch_kind kind)
{
        int r;

        if (!m->watcher)
                return 0; /* events come from elsewhere (manager_watch_event) */
        r = watcher_add_beneath(m->watcher, rs->root.fd, path, rs->index, kind, NULL);
        return root_watch_result(rs, path, r);
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
void root_lost(struct manager *m, struct root_state *rs)
{
        int r;

        if (rs->present)
                log_warning("%s is gone; watching for it to come back", rs->root.w->path);
        runs_drop_below(m, rs, "."); /* every watch of the root but PARENT */
        root_lock_release(&rs->lock);
        rs->root.fd = safe_close(rs->root.fd);
        rs->present = false;
        floor_roots_changed(m);
        /* said once for each cause, not at every check_interval */
        r = root_watch_parent(m, rs);
        if (r < 0 && r != rs->parent_error)
                log_warning_errno(r, "cannot watch the parent of %s for it to come back: %m; checking every %llds",
                                  rs->root.w->path, (long long)m->config->check_interval_sec);
        rs->parent_error = r < 0 ? r : 0;
}

int root_at_path(const struct root_state *rs)
{
        /* a symlink left in its place is never followed, as at the open */
        return path_leads_to(AT_FDCWD, rs->root.w->path, AT_SYMLINK_NOFOLLOW, rs->root.dev, rs->root.ino);
}

bool root_here(struct manager *m, struct root_state *rs)
{
        int r = root_at_path(rs);

        if (r > 0)
                return true;
        if (r < 0) {
                log_warning_errno(r,
                                  "cannot tell whether %s still leads to the directory watched: %m; "
                                  "deleting nothing in it until it can",
                                  rs->root.w->path);
                rs->retry = true;
                return false;
        }
        log_warning("%s no longer leads to the directory watched: it or a directory above it was moved or replaced",
                    rs->root.w->path);
        root_lost(m, rs);
        root_rescan(m, rs);
        return false;
}

/* The root could not be watched or scanned. Gone (or replaced by something
 * else): watch for its return. Anything else (EIO from a network
 * filesystem, EMFILE, ENOMEM) may pass: keep what we have, read each run
 * whole before it is trusted again, and try again at the next
 * check_interval. */
static int root_failed(struct manager *m, struct root_state *rs, int r)
{
        if (r == -ENOENT || r == -ENOTDIR || r == -ESTALE || r == -ELOOP) {
                root_lost(m, rs);
        } else {
                index_distrust(rs);
                rs->retry = true;
        }
        return 0;
}

/* The root could not be opened (r): said once for each cause while it
 * lasts. Missing, or something else than a directory there (a file named
 * by mistake, a directory not mounted yet): it is waited for. */
static void root_say_absent(struct root_state *rs, int r)
{
        const char *path = rs->root.w->path;

        _cleanup_free_ char *ln = NULL;

        if (r == rs->open_error)
                return;
        rs->open_error = r;
        if ((r == -ENOTDIR || r == -ELOOP) && (ln = watch_symlink_problem(path)))
                log_warning("%s; watching for a directory to take its place", ln);
        else if (r == -ENOENT)
                log_notice("%s does not exist (yet); watching for it to be created", path);
        else if (r == -ENOTDIR)
                log_warning("%s is not a directory; watching for a directory to take its place", path);
        else
                log_warning_errno(r, "cannot open %s: %m; trying again when it changes", path);
}

/* Path of `path` (relative to subtree sub) relative to the root, malloc'd;
 * NULL on ENOMEM. */
static char *subtree_path(const char *sub, const char *path)
{
        char *p;

        if (strcmp(sub, ".") == 0)
                return strdup(path);
        if (strcmp(path, ".") == 0)
                return strdup(sub);
        if (asprintf(&p, "%s/%s", sub, path) < 0)
                return NULL;
        return p;
}

struct subtree_visit {
        struct manager *m;
        struct root_state *rs;
        const char *sub;
};

/* Each directory the scan of a subtree lists, before its listing: a run
 * gets its state when new, and its watch, on the directory fd the scan holds,
 * so that whatever changes in it after the listing is an event. A known run
 * is watched again too: its watch may have failed before (it could not be
 * read then), and on the same directory the same watch comes back. A watch
 * that keeps failing the same way is said once. */
static int subtree_visit(int dir_fd, const char *path, void *userdata)
{
        struct subtree_visit *v = userdata;
        _cleanup_free_ char *full = subtree_path(v->sub, path);
        struct run_state *run;
        bool known;
        int r;

        if (!full)
                return -ENOMEM;
        path = full;
        run = run_find(v->rs, path);
        known = run != NULL;
        if (!run && !(run = run_get(v->rs, path)))
                return -ENOMEM;
        /* the root's own watch is added before its scan */
        if (!v->m->watcher || strcmp(path, ".") == 0)
                return 0;
        r = watcher_add(v->m->watcher, dir_fd, path, v->rs->index, WATCH_RUN, NULL);
        if (r < 0 && known && r == run->watch_error)
                return 0; /* said when it began */
        run->watch_error = r < 0 ? r : 0;
        (void)root_watch_result(v->rs, path, r); /* logged; the scan goes on */
        return 0;
}

/* Scan the runs at and below `sub` (a path relative to the root, "." for
 * all of it), watching each new one before it is listed: *ret_runs get
 * paths relative to the root. */
static int scan_subtree(struct manager *m, struct root_state *rs, const char *sub, int64_t now, struct run **ret_runs,
                        size_t *ret_n)
{
        struct subtree_visit v = {.m = m, .rs = rs, .sub = sub};
        struct root r = rs->root;
        _cleanup_close_ int fd = -1;
        int k;

        if (strcmp(sub, ".") != 0) {
                fd = openat_beneath(rs->root.fd, sub, O_PATH | O_DIRECTORY, 0);
                if (fd < 0)
                        return fd;
                r.fd = fd;
        }
        k = scan_root_visit(r.fd, r.w, r.pat, now, subtree_visit, &v, ret_runs, ret_n);
        if (k < 0 && strcmp(sub, ".") == 0)
                return log_errno(k, "cannot scan %s: %m", r.w->path);
        if (k < 0)
                return log_warning_errno(k, "cannot scan %s/%s: %m", r.w->path, sub);
        if (strcmp(sub, ".") == 0)
                return 0;
        for (size_t i = 0; i < *ret_n; i++) {
                struct run *run = &(*ret_runs)[i];
                char *p = subtree_path(sub, run->path);

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
 * is added before the run is listed, so nothing slips between; a run the
 * scan could not open is watched after it, and that round is scanned again:
 * the last round, which added none, is what gets swept), then sweep those
 * runs: as part of sweep `shared`, or of a sweep of their own (NULL). */
static int rescan_at(struct manager *m, struct root_state *rs, const char *sub, struct sweep *shared)
{
        int64_t now = now_usec(CLOCK_REALTIME);
        uint64_t start = (uint64_t)now_usec(CLOCK_MONOTONIC);
        struct run *runs = NULL;
        size_t n = 0;
        int r, rounds = 0;
        bool added;
        struct sweep own = {}, *s = shared ? shared : &own;

        /* a directory above it moved: the tree held is no longer watched */
        if (rs->present && !root_here(m, rs))
                return 0;
        if (!rs->present) {
                if (rs->root.fd < 0 && (r = root_open_fd(&rs->root)) < 0) {
                        root_say_absent(rs, r);
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
                                        log_error("not watching %s while %s; trying again every %llds",
                                                  rs->root.w->path,
                                                  r == -EEXIST ? "another watch names it" : "it is locked",
                                                  (long long)m->config->check_interval_sec);
                                rs->lock_refused = true;
                                rs->root.fd = safe_close(rs->root.fd);
                                return 0;
                        }
                        if (rs->lock_refused)
                                log_notice("%s is no longer locked by another process: watching it", rs->root.w->path);
                        rs->lock_refused = false;
                }
                rs->present = true;
                rs->parent_error = rs->open_error = 0; /* said again if it goes again */
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
        /* Interrupted removals first, before the scan that is decided: a
         * group whose removal was committed may still show members under
         * their own names, which the finish removes. */
        if (!rs->tombstones_done && !m->dry_run) {
                sweep_tombstones(&rs->root);
                rs->tombstones_done = true;
        }
        do {
                added = false;
                runs_free(runs, n);
                runs = NULL, n = 0;
                r = scan_subtree(m, rs, sub, now, &runs, &n);
                if (r < 0 && strcmp(sub, ".") == 0) {
                        runs_free(runs, n); /* scan_subtree() logged it */
                        return root_failed(m, rs, r);
                }
                if (r < 0) {
                        runs_free(runs, n);
                        /* the new directory went away again; any other
                         * error: the whole root at the next check_interval,
                         * which reports it as an unreadable run */
                        if (!open_error_gone_or_replaced(r) && r != -ESTALE)
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
        if (!shared)
                sweep_init(&own, m->config, m->dry_run);
        s->now_usec = now;
        s->start_usec = start;
        /* a run that cannot be read sets it again */
        if (strcmp(sub, ".") == 0)
                rs->retry = false;
        for (size_t j = 0; j < n; j++) {
                struct run_state *run = run_find(rs, runs[j].path);
                if (run)
                        run_process(m, rs, run, &runs[j], s, -1);
        }
        runs_free(runs, n);
        if (!shared)
                sweep_done(m, &own);
        /* a new run's subtree does not postpone the poll of the whole */
        if (strcmp(sub, ".") == 0)
                root_arm_poll(rs);
        /* the scan of a large tree leaves freed memory behind: give it back */
        malloc_trim(0);
        return 0;
}

int root_rescan_at(struct manager *m, struct root_state *rs, const char *sub)
{
        return rescan_at(m, rs, sub, NULL);
}

int root_rescan(struct manager *m, struct root_state *rs)
{
        return rescan_at(m, rs, ".", NULL);
}

void roots_rescan(struct manager *m, bool retry_only)
{
        struct sweep s;
        bool any = false, capped = false;

        sweep_init(&s, m->config, m->dry_run);
        /* round the roots from where the cap stopped the last such sweep:
         * a backlog in one root does not keep the cap from the others */
        for (size_t k = 0; k < m->n_roots && !s.stopped; k++) {
                size_t i = (m->rescan_first + k) % m->n_roots;
                struct root_state *rs = &m->roots[i];

                /* nothing says that a directory above it moved but this */
                if (retry_only && rs->present && !rs->retry && root_at_path(rs) > 0)
                        continue;
                rescan_at(m, rs, ".", &s);
                any = true;
                if (s.capped && !capped) {
                        capped = true;
                        m->rescan_first = (i + 1) % m->n_roots;
                }
        }
        if (any)
                sweep_done(m, &s);
}

/* --- every watch of the config --- */

void roots_free(struct manager *m)
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

void roots_carry_locks(struct manager *m)
{
        /* out of memory: roots_free() lets them go, as before a reload */
        m->carried_locks = calloc(m->n_roots, sizeof(*m->carried_locks));
        for (size_t i = 0; m->carried_locks && i < m->n_roots; i++) {
                struct root_state *rs = &m->roots[i];

                if (!rs->lock.held)
                        continue;
                m->carried_locks[m->n_carried_locks++] = rs->lock;
                rs->lock = (struct root_lock){};
        }
}

void carried_locks_release(struct manager *m)
{
        for (size_t i = 0; i < m->n_carried_locks; i++)
                root_lock_release(&m->carried_locks[i]);
        free(m->carried_locks);
        m->carried_locks = NULL;
        m->n_carried_locks = 0;
}

/* The lock an old root held on rs's directory (a reload), whatever path
 * names it now: the directories above that path are locked before those
 * above the old one are let go. */
static void root_adopt_lock(struct manager *m, struct root_state *rs)
{
        for (size_t i = 0; i < m->n_carried_locks; i++) {
                struct root_lock *c = &m->carried_locks[i];

                if (root_lock_is_on(c, rs->root.dev, rs->root.ino)) {
                        int r = root_lock_move(&rs->lock, c, rs->root.w->path, LOG_DEBUG);

                        /* one above the new path is another's: not ours to
                         * watch (rescan_at() says so); one that cannot be
                         * locked now (EMFILE, EIO): the old lock is kept
                         * whole rather than let go */
                        if (r < 0 && r != -EWOULDBLOCK) {
                                rs->lock = *c;
                                *c = (struct root_lock){};
                        }
                        return;
                }
        }
}

int roots_start(struct manager *m)
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
         * it appears). A reload hands each watch it keeps (its directory,
         * under whatever path) the lock of its old root, never let go in
         * between (another ckptd waiting for it would take the tree); the
         * locks of the watches gone are let go before new ones are taken. */
        for (size_t i = 0; i < m->n_roots; i++)
                if (root_open_fd(&m->roots[i].root) >= 0)
                        root_adopt_lock(m, &m->roots[i]);
        carried_locks_release(m);
        for (size_t i = 0; i < m->n_roots; i++) {
                struct root_state *rs = &m->roots[i];
                int r;

                if (rs->root.fd < 0 || rs->lock.held)
                        continue;
                /* a reload's: rescan_at() says so, and tries again */
                r = root_lock_take(&rs->lock, rs->root.fd, rs->root.w->path, m->starting ? m->config->lock_wait_sec : 0,
                                   m->starting ? LOG_ERR : LOG_DEBUG);
                if (!m->starting)
                        continue;
                if (r == -EWOULDBLOCK)
                        return log_errno(r, "not starting: %s is in use (lock_wait = %lld)", rs->root.w->path,
                                         (long long)m->config->lock_wait_sec);
                if (r < 0)
                        return r;
        }
        /* watches, interrupted removals, scans and sweeps */
        m->roots_starting = true;
        roots_rescan(m, false);
        m->roots_starting = false;
        return 0;
}
