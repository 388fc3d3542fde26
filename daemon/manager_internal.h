/* The daemon's state and the functions its files share (manager.c, root.c,
 * index.c, events.c, retention.c, floorrun.c, control.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "ages.h"
#include "config.h"
#include "rootlock.h"
#include "space.h"
#include "sweep.h"
#include "watchtab.h"

struct manager;
struct root_state;
struct control;

/* A checkpoint candidate seen being written, by entry name in its run. */
struct pending {
        char *name;
        bool writing;       /* created or written to, not closed since */
        bool done;          /* renamed in whole: complete now */
        bool marked;        /* its complete_marker appeared: complete once quiet */
        bool watched;       /* a directory checkpoint watched inside */
        int wd;             /* that watch's descriptor (0: none to check, see root_watch()) */
        bool unproven;      /* a file renamed in or linked: its writer's close unseen */
        uint64_t last_usec; /* CLOCK_MONOTONIC of its last event */
        /* the run's decision (struct run_state, decisions) that found it
         * free of writers; 0: none */
        uint64_t free_in;
};

/* A run's pending entries across a reload, by (root dev:ino, run path):
 * copies without their watches, which the reload drops. */
struct pending_carried {
        dev_t dev;
        ino_t ino;
        char *run;
        struct pending *v;
        size_t n;
};

/* A member name of a checkpoint in a run's index, and where to find the
 * checkpoint: its key in the index's order. The strings are the index's. */
struct member_slot {
        const char *member; /* NULL: free */
        const char *ckpt_name;
        double order;
};

/* How soon a run is looked at again for what only the disk can say (a
 * write inside a directory checkpoint that no watch saw, a save held open
 * with its close unseen): at the most this often, and for the latter at
 * the least RECHECK_MAX_USEC. */
#define RECHECK_MIN_USEC (1 * USEC_PER_SEC)
#define RECHECK_MAX_USEC (60 * USEC_PER_SEC)

/* A run directory being watched. */
struct run_state {
        struct root_state *rs;
        char *path; /* relative to the root; "." for the root */
        struct pending *pending;
        size_t n_pending, cap_pending;
        /* pending by name: index + 1 per slot, 0 free (linear probing); a
         * power of two, kept only while pending_slots_valid */
        size_t *pending_slots;
        size_t cap_pending_slots;
        bool pending_slots_valid;
        sd_event_source *timer; /* settle: sweep this run when it fires */
        sd_event_source *now;   /* sweep it at the next turn of the loop (run_arm() with no delay) */
        /* on the manager's list of runs due now, swept once the events read
         * with the one that made it due are noted (runs_sweep_due()) */
        struct run_state *due_next;
        bool due_listed;
        size_t n_ckpts;        /* after the last sweep */
        unsigned seen;         /* generation of the last rescan that saw it */
        int watch_error;       /* -errno of its last failed watch (logged), else 0 */
        struct run_told told;  /* its read errors and missing monitor, as last logged */
        bool unreadable_whole; /* the last sweep kept it whole after a read error */
        size_t n_unreadable;   /* checkpoints the last sweep kept after read errors */
        struct ages ages;      /* timed records gone from idx since it was observed */
        /* The index: the run's checkpoints as last scanned and decided, kept
         * current name by name from events (scan_one()) between scans of
         * the whole run. */
        struct run idx;
        size_t cap_ckpts; /* room in idx.ckpts */
        size_t off_ckpts; /* idx.ckpts is this far into its allocation (index_drop()) */
        bool indexed;     /* idx holds a scan of the whole run */
        bool full;        /* a change only a scan of the whole run can judge */
        /* scanned whole, and no decision since deleted: the ones kept
         * for their places not asked whether they are still written
         * (run_process()) */
        bool placed_unasked;
        bool ask_idle;      /* and to be asked in idle time (runs_ask_later()) */
        uint64_t decisions; /* run_process() calls: what pending free_in counts */
        /* every record was complete when the run was last decided, and
         * nothing changed idx since: index_update() need not look for
         * unsettled ones to read again */
        bool settled;
        struct strv dirty; /* names changed since idx was decided */
        /* idx's member names, open addressing: a save finds its name in
         * O(1), then its checkpoint by a binary search of idx */
        struct member_slot *members;
        size_t cap_members; /* a power of two, or 0 */
        size_t n_members;
        bool members_valid; /* false: not kept (a small run, ENOMEM): idx is searched */
        /* idx's last decision, for the next save to be decided from
         * (policy_decide_appended()): not valid once anything but an
         * append changed idx[0..memo.n) */
        struct policy_memo memo;
};

/* One watch of the config. */
struct root_state {
        struct manager *m;
        struct root root;      /* fd -1 while the root is missing */
        struct root_lock lock; /* held while present */
        bool lock_refused;     /* another ckptd holds it: logged once */
        int parent_error;      /* missing, and its parent's watch failed: -errno, logged once */
        int open_error;        /* why it could not be opened last: -errno, logged once */
        unsigned index;        /* watcher tag, new on every reload */
        bool index_valid;
        bool present;
        bool seen_before;
        bool tombstones_done; /* interrupted removals finished */
        bool retry;           /* the last scan failed: again at check_interval */
        bool polled;          /* network filesystem or watch limit */
        sd_event_source *poll_timer;
        struct run_state **runs;
        size_t n_runs;
        size_t cap_runs;
        struct run_state **slots; /* rs->runs by path: open addressing */
        size_t cap_slots;         /* a power of two, or 0 */
        unsigned generation;      /* root_rescan_at's mark of what it saw */
};

/* A run of fewer checkpoints is searched name by name: a table costs 24
 * bytes a slot at most half full, about 60 bytes per checkpoint, while a
 * walk of 128 records costs a few microseconds per event. */
#define MEMBERS_MIN_CKPTS 128

struct manager {
        sd_event *event;
        size_t members_min_ckpts; /* MEMBERS_MIN_CKPTS; the unit tests lower it */
        struct config *config;
        const char *config_path; /* NULL with --watch: SIGHUP has nothing to read */
        bool dry_run;            /* -n, or dry_run in the config in force */
        bool dry_run_cli;        /* -n: a reload cannot turn it off */
        bool starting;           /* before READY=1: a locked root waits lock_wait, then exits */
        /* in roots_start() (a start or a reload): the floor's filesystems
         * are set once all roots are there, not root by root */
        bool roots_starting;
        struct ages_carry carry; /* during a reload: what the old runs had timed */
        /* during a reload: what the events said of the old runs' saves not
         * settled yet (pending_carry_add()) */
        struct pending_carried *pending_carry;
        size_t n_pending_carry;
        /* during a reload: the locks of the old roots, for the new ones of
         * the same directory (roots_carry_locks()) */
        struct root_lock *carried_locks;
        size_t n_carried_locks;
        int log_level; /* from the command line; -1: from the config */
        struct watcher *watcher;
        sd_event_source *inotify_src;
        sd_event_source *status_src; /* deferred STATUS= and metrics file */
        struct root_state *roots;
        size_t n_roots;
        unsigned next_index;
        bool rescan_all;            /* inotify overflowed */
        size_t rescan_first;        /* where roots_rescan() starts: after the root the cap stopped */
        bool reading_events;        /* in on_inotify(): a run due now goes on `due` */
        struct run_state *due;      /* runs made due now by the events being read */
        struct run_state **due_end; /* where the next one goes (&due when empty) */
        int64_t last_event_usec;    /* CLOCK_REALTIME */
        uint64_t last_write_usec;   /* CLOCK_MONOTONIC of the last write seen in a run */

        struct space space; /* the free-space floor, per filesystem */
        bool floor_unmet;
        sd_event_source *check_timer;   /* every check_interval */
        sd_event_source *writing_timer; /* every second while something is written */
        sd_event_source *soon_timer;    /* right away: a save started or finished */

        uint64_t deleted_by_reason[_DELETE_REASON_MAX];
        uint64_t freed_by_reason[_DELETE_REASON_MAX];
        uint64_t read_errors_total; /* read errors logged (each new one once) */

        struct control *control; /* status channel, reload outcomes (control.c) */

        /* runs scanned whole whose placed checkpoints are asked in idle
         * time (on_ask_idle()): the next one looked at, and whether one
         * was noted since the pass began */
        sd_event_source *ask_src;
        size_t ask_root, ask_run;
        bool ask_more;
        size_t ask_asked, ask_runs; /* in this pass, for the log */
};

static inline bool m_has_watcher(const struct root_state *rs)
{
        return rs->m && rs->m->watcher;
}

/* Send STATUS= and rewrite the metrics file. */
void manager_status(struct manager *m);
/* Add one sweep's deletions to the totals. */
void manager_account(struct manager *m, const struct sweep *s);

/* The floor: start its timers, drop them, re-read after a reload. */
int manager_floor_start(struct manager *m);
void manager_floor_stop(struct manager *m);
void manager_floor_config(struct manager *m);
/* A checkpoint starts being written: check the floor now. */
void manager_floor_soon(struct manager *m);
/* Something is being written: check every second until nothing is. */
void manager_floor_writing(struct manager *m, bool writing);

/* A manager for config c (taken), its own event loop (sd_event_new()), no
 * inotify yet: manager_run() adds it, a test feeds manager_watch_event().
 * NULL on ENOMEM. */
struct manager *manager_new(struct config *c, const char *config_path, bool dry_run, int log_level);
/* Lock, watch, scan and sweep every root; start the floor's timers. */
int manager_start(struct manager *m);
/* Everything manager_new() and manager_start() set up; takes NULL. */
struct manager *manager_free(struct manager *m);
/* What one inotify event means for the runs and their index. */
void manager_watch_event(struct manager *m, const struct watch_event *ev);

/* manager.c */
/* Stop the event loop, saying why (once). */
void manager_stop(struct manager *m, const char *why);

/* index.c: a run, its pending checkpoints and its in-memory index */
/* The run at path (relative to the root), added if new; NULL on ENOMEM. */
struct run_state *run_get(struct root_state *rs, const char *path);
/* The run at path (relative to the root), or NULL. */
struct run_state *run_find(struct root_state *rs, const char *path);
/* Forget the run at path and every run below it (a directory went away). */
void runs_drop_below(struct manager *m, struct root_state *rs, const char *path_in);
/* The pending entry of name in run, or NULL. */
struct pending *pending_find(struct run_state *run, const char *name);
/* The pending entry of name in run, added if new; NULL on ENOMEM. */
struct pending *pending_get(struct run_state *run, const char *name);
/* Keep a copy of each of run's pending entries (root rs) in m for the run
 * of the same path that the reload makes (run_get()): a save seen being
 * written stays unsettled until quiet, whatever its mtime says. ENOMEM
 * drops them (the disk decides, as after a restart). */
void pending_carry_add(struct manager *m, const struct root_state *rs, const struct run_state *run);
void pending_carry_finish(struct manager *m);
/* Drop run's pending entry i (the last takes its place). */
void pending_drop(struct run_state *run, size_t i);
/* The path of entry name of a run, relative to the root (malloc'd). */
char *child_path(const char *run_path, const char *name);
/* Watch inside the directory of p, a directory checkpoint: 0 or -errno. */
int pending_watch(struct root_state *rs, struct run_state *run, struct pending *p);
/* Whether p's watch inside still stands on checkpoint c's directory: a
 * rescan drops the watches of runs it no longer finds (under preset auto a
 * directory being written may have been one), and a directory renamed over
 * another is another inode. */
bool pending_watch_holds(const struct root_state *rs, const struct pending *p, const struct ckpt *c);
/* Stop watching inside a directory checkpoint that is complete or gone. */
void pending_unwatch(struct root_state *rs, struct run_state *run, struct pending *p);
/* Events were lost: forget every pending entry of the root. */
void pending_forget(struct root_state *rs);
/* Nothing the index of rs says holds until it is read again (events were
 * lost, or the root could not be read): each run is read whole before it
 * is decided or the floor evicts from it. */
void index_distrust(struct root_state *rs);
/* The position in run's index of the checkpoint with member name, or -1. */
ssize_t index_find(const struct run_state *run, const char *name);
/* Adopt a scan of the whole run as its index (taken). */
void index_adopt(struct run_state *run, struct run *scanned);
/* Whether the index of run can be brought up to date name by name. */
bool index_incremental(const struct root_state *rs, const struct run_state *run);
/* Bring the index up to date name by name: 0, or -errno (scan the whole run). */
int index_update(struct root_state *rs, struct run_state *run, int64_t now, int *run_fd);
/* After deletions: drop from the index what is gone from the disk, among
 * idx.ckpts[from..to) (every other one is kept); removed: how many of them
 * the sweep removed (all of them: none is asked of the disk again).
 * Returns how many not kept are still there. */
size_t index_prune_deleted(struct root_state *rs, struct run_state *run, size_t from, size_t to, unsigned removed);
/* Name name of the run changed: look at it again at the next settle. */
void index_dirty(struct run_state *run, const char *name);
/* What an event means for run's index; whether to decide again now. */
bool index_note(struct root_state *rs, struct run_state *run, const struct watch_event *ev, bool candidate);
/* Bring the index of run up to date (names, sizes) without deciding. */
int index_refresh(struct root_state *rs, struct run_state *run, int64_t now);

/* retention.c: decide and apply for a run */
/* The watch's settle time in microseconds. */
uint64_t settle_usec(const struct root_state *rs);
/* Sweep run delay_usec from now; an earlier deadline stands unless reset. */
void run_arm(struct run_state *run, uint64_t delay_usec, bool reset);
/* Sweep the runs that the events just read made due now, in the order they
 * became due, instead of one turn of the event loop each. */
void runs_sweep_due(struct manager *m);
/* Ask the placed checkpoints of the runs scanned whole in idle time, after
 * READY=1, a few runs a turn of the loop (on_ask_idle()). */
void runs_ask_later(struct manager *m);
/* Take run off the list of runs due now (it is being freed). */
void run_due_forget(struct run_state *run);
/* How long pending p must stay quiet to count as settled. */
uint64_t pending_quiet_usec(const struct root_state *rs, const struct pending *p);
/* Decide and act on run's index (replaced by scanned_in when not NULL);
 * run_fd is the run open beneath the root, or -1. */
void run_process(struct manager *m, struct root_state *rs, struct run_state *run, struct run *scanned_in,
                 struct sweep *s, int run_fd);
/* The end of a sweep: totals, a stop during it, the floor, STATUS=. */
void sweep_done(struct manager *m, const struct sweep *s);
/* Completeness from the events over the disk's, incomplete of the run's
 * checkpoints incomplete as ages_observe() left them; the delay to look
 * again (0: none). */
uint64_t adjust_completeness(struct root_state *rs, struct run_state *run, uint64_t now, size_t incomplete);

/* root.c: a watch root */
/* Set up every watch of the config: lock, watch, scan and sweep. */
int roots_start(struct manager *m);
/* Drop every root, its runs and watches. */
void roots_free(struct manager *m);
/* Before a reload's roots_free(): keep the locks the roots hold for
 * roots_start() to hand to the new root of the same directory. */
void roots_carry_locks(struct manager *m);
/* Let go of the carried locks no new root took. */
void carried_locks_release(struct manager *m);
/* Watch a directory of the root; the watch limit turns the root to polling. */
int root_watch(struct manager *m, struct root_state *rs, const char *path, enum watch_kind kind);
/* The root is gone: drop its runs and watches but the parent watch. */
void root_lost(struct manager *m, struct root_state *rs);
/* Whether the watch's path still leads to the directory held: 1, 0 (gone, or
 * another directory: it or one above it was moved or replaced; the held one
 * is then outside the watch), or -errno when that cannot be told now. */
int root_at_path(const struct root_state *rs);
/* root_at_path() before anything is deleted in the root: true when it
 * does. Else the root is lost and looked for again at its path
 * (root_rescan()), or, when that cannot be told, left alone until the next
 * check_interval; false. */
bool root_here(struct manager *m, struct root_state *rs);
/* Watch, scan and sweep every run at and below sub. */
int root_rescan_at(struct manager *m, struct root_state *rs, const char *sub);
/* Scan the whole root again (or watch its parent while it is missing). */
int root_rescan(struct manager *m, struct root_state *rs);
/* root_rescan() of every root (retry_only: of those missing or to be read
 * again) as one sweep: one deletion cap for all (max_delete_per_sweep). */
void roots_rescan(struct manager *m, bool retry_only);

/* events.c: what an inotify event means */
/* sd-event handler of the inotify fd: read and dispatch its events. */
int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* floorrun.c: the floor's timers and view of the index */
/* Roots came or went: tell space.c which filesystems to look after. */
void floor_roots_changed(struct manager *m);
