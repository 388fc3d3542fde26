/* The daemon's state, shared by manager.c, space.c and report.c. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
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
        uint64_t last_usec; /* CLOCK_MONOTONIC of its last event */
};

/* A member name of a checkpoint in a run's index, and where to find the
 * checkpoint: its key in the index's order. The strings are the index's. */
struct member_slot {
        const char *member; /* NULL: free */
        const char *ckpt_name;
        double order;
};

/* A run directory being watched. */
struct run_state {
        struct root_state *rs;
        char *path; /* relative to the root; "." for the root */
        struct pending *pending;
        size_t n_pending;
        sd_event_source *timer; /* settle: sweep this run when it fires */
        size_t n_ckpts;         /* after the last sweep */
        unsigned seen;          /* generation of the last rescan that saw it */
        char *read_errors;      /* sweep_read_errors_key() last logged; NULL: none */
        bool unreadable_whole;  /* the last sweep kept it whole after a read error */
        size_t n_unreadable;    /* checkpoints the last sweep kept after read errors */
        struct ages ages;       /* timed records gone from idx since it was observed */
        /* The index: the run's checkpoints as last scanned and decided, kept
         * current name by name from events (scan_one()) between scans of
         * the whole run. */
        struct run idx;
        size_t cap_ckpts;  /* room in idx.ckpts */
        size_t off_ckpts;  /* idx.ckpts is this far into its allocation (index_drop()) */
        bool indexed;      /* idx holds a scan of the whole run */
        bool full;         /* a change only a scan of the whole run can judge */
        struct strv dirty; /* names changed since idx was decided */
        /* idx's member names, open addressing: a save finds its name in
         * O(1), then its checkpoint by a binary search of idx */
        struct member_slot *members;
        size_t cap_members; /* a power of two, or 0 */
        size_t n_members;
        bool members_valid;    /* false: not kept (a small run, ENOMEM): idx is searched */
        char *monitor_missing; /* sweep_note_monitor() last said; NULL: carried */
};

/* One watch of the config. */
struct root_state {
        struct manager *m;
        struct root root;      /* fd -1 while the root is missing */
        struct root_lock lock; /* held while present */
        bool lock_refused;     /* another ckptd holds it: logged once */
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

struct manager {
        sd_event *event;
        struct config *config;
        const char *config_path; /* NULL with --watch: SIGHUP has nothing to read */
        bool dry_run;            /* -n, or dry_run in the config in force */
        bool dry_run_cli;        /* -n: a reload cannot turn it off */
        bool starting;           /* before READY=1: a locked root waits lock_wait, then exits */
        struct ages_carry carry; /* during a reload: what the old runs had timed */
        int log_level;           /* from the command line; -1: from the config */
        struct watcher *watcher;
        sd_event_source *inotify_src;
        sd_event_source *status_src; /* deferred STATUS= and metrics file */
        struct root_state *roots;
        size_t n_roots;
        unsigned next_index;
        bool rescan_all;          /* inotify overflowed */
        int64_t last_event_usec;  /* CLOCK_REALTIME */
        uint64_t last_write_usec; /* CLOCK_MONOTONIC of the last write seen in a run */

        struct space space; /* the free-space floor, per filesystem */
        bool floor_unmet;
        sd_event_source *check_timer;   /* every check_interval */
        sd_event_source *writing_timer; /* every second while something is written */
        sd_event_source *soon_timer;    /* right away: a save started or finished */

        uint64_t deleted_by_reason[_DELETE_REASON_MAX];
        uint64_t freed_by_reason[_DELETE_REASON_MAX];
        uint64_t read_errors_total; /* read errors logged (each new one once) */

        struct control *control; /* status channel, reload outcomes (control.c) */
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

/* A manager for config c (taken), its event loop sd_event_default(), no
 * inotify yet: manager_run() adds it, a test feeds manager_watch_event().
 * NULL on ENOMEM. */
struct manager *manager_new(struct config *c, const char *config_path, bool dry_run, int log_level);
/* Lock, watch, scan and sweep every root; start the floor's timers. */
int manager_start(struct manager *m);
/* Everything manager_new() and manager_start() set up; takes NULL. */
struct manager *manager_free(struct manager *m);
/* What one inotify event means for the runs and their index. */
void manager_watch_event(struct manager *m, const struct watch_event *ev);
