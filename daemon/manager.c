/* The daemon's wiring: the manager's lifetime, its sd-event loop, signals,
 * reload, stop, notify. A watch root is root.c, a run and its index
 * index.c, what an event means events.c, deciding a run retention.c, the
 * floor's timers floorrun.c, the -1 pass oneshot.c; retention itself is
 * sweep.c; what is shown to people is report.c. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "control.h"
#include "log.h"
#include "manager.h"
#include "manager_internal.h"
#include "report.h"
#include "sweep.h"
#include "watch.h"

/* --- lifecycle: start, reload, stop --- */

static bool manager_stopping(struct manager *m)
{
        int code;

        return sd_event_get_exit_code(m->event, &code) >= 0;
}

/* Leave the loop once, with STOPPING=1. A sweep that finds SIGTERM pending
 * (sweep.c) stops after the deletion in hand and calls this itself: the
 * loop exits before the signal's handler would run. */
void manager_stop(struct manager *m, const char *why)
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

        control_reload_begin(m);
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
                        ages_carry_add(&m->carry, m->roots[i].root.dev, m->roots[i].root.ino, m->roots[i].runs[j]->path,
                                       &m->roots[i].runs[j]->ages, &m->roots[i].runs[j]->told);
                        pending_carry_add(m, &m->roots[i], m->roots[i].runs[j]);
                }
        roots_carry_locks(m);
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
        carried_locks_release(m);
        ages_carry_finish(&m->carry);
        pending_carry_finish(m);
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
                        control_reload_begin(m);
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
                .members_min_ckpts = MEMBERS_MIN_CKPTS,
        };
        /* a loop of its own, not sd_event_default(): the default one checks
         * its thread with a gettid(2) on every turn, four a save */
        if (sd_event_new(&m->event) < 0) {
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
        m->ask_src = sd_event_source_disable_unref(m->ask_src);
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
        if (sigprocmask(SIG_BLOCK, &mask, NULL) == 0)
                sweep_stop_signals_blocked(true);

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
