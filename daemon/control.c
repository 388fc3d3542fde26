/* The status channel. On every publish the daemon sends STATUS=, rewrites
 * the metrics file and writes a JSON state file, state-PID.json, into the
 * runtime directory (floorlock.c's: /run/ckptd under the units), atomically
 * (a temporary file renamed over it). Each costs O(runs), so publishing is
 * coalesced: at most once per PUBLISH_EVERY_USEC, and never later than
 * PUBLISH_BOUND_USEC after the change that asked for it. `ckptd status`
 * reads and renders the state file; `ckptd reload` (the units'
 * ExecReload=) sends SIGHUP and waits for the outcome of the first reload
 * that began after it did (the state file keeps the last few, each with when
 * it began on CLOCK_MONOTONIC: a reload under way when it asked read the
 * config before its change, and one that follows quickly must not hide its
 * outcome), then exits with it.
 *
 * A file rather than a socket: reading it needs no daemon to answer (a
 * daemon deep in a removal or a start-up scan still has its last state
 * read), no protocol, no extra listener in the event loop, and it works as
 * it is under the unit's sandbox (PrivateNetwork=, RestrictAddressFamilies=)
 * and from ExecReload=, which runs in that sandbox too. The daemon removes
 * it at exit; one left by a crash names a pid that is gone and is skipped.
 *
 * The metrics file is the daemon's own: one that a reload moved elsewhere
 * (or dropped) is removed once the new one is written, and under a unit the
 * runtime directory holds UNIT.metrics, the path written, for the unit's
 * ExecStopPost= to remove whatever the config says by then. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json.h>
#include <libgen.h>
#include <limits.h>
#include <printbuf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-login.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "floorlock.h"
#include "log.h"
#include "manager_internal.h"
#include "report.h"
#include "size.h"

/* The state file's layout; a reader refuses other versions. */
#define STATE_VERSION 1
/* Decisions kept for `ckptd status`, newest last. */
#define DECISIONS_MAX 32
/* Reload outcomes kept for `ckptd reload`, newest last. */
#define RELOADS_KEPT 8
/* How long `ckptd reload` waits for the daemon: below systemd's default
 * TimeoutStartSec= (90 s), which also bounds ExecReload=. A reload rescans
 * every watch before it reports. */
#define RELOAD_WAIT_USEC (85 * USEC_PER_SEC)
/* A change is published at once when the last publish is at least
 * PUBLISH_EVERY_USEC old, else by a timer when it is: a tree of a thousand
 * runs saving every few milliseconds pays one publish a second, not one per
 * save, and whoever waits for a change sees it within PUBLISH_BOUND_USEC
 * (the timer's slack included; ckptd(8) documents it). */
#define PUBLISH_BOUND_USEC USEC_PER_SEC
#define PUBLISH_SLACK_USEC (50 * 1000)
#define PUBLISH_EVERY_USEC (PUBLISH_BOUND_USEC - PUBLISH_SLACK_USEC)

/* A decision as it was logged, unescaped: it is escaped and made JSON only
 * when published (at most once a second), not at each deletion. */
struct decision {
        int64_t usec; /* CLOCK_REALTIME */
        /* action, path, run, reason, monitor: into text (one allocation),
         * or NULL; text NULL: an empty slot */
        char *text;
        const char *action, *path, *run, *reason, *monitor;
        bool has_value, has_bytes;
        double value;
        uint64_t bytes;
};

struct control {
        char *dir;        /* runtime directory; NULL: no state file */
        char *state_path; /* dir/state-PID.json */
        char *unit;       /* our systemd unit as `systemctl edit` takes it, or NULL */
        /* dir/UNIT.metrics under a unit (NULL outside one): metrics_path,
         * for the unit's ExecStopPost= */
        char *metrics_note;
        /* the metrics file as last written, its path and the file then;
         * NULL: none written under the path configured now */
        char *metrics_path;
        struct stat metrics_st;
        char *last_status;
        int64_t started_usec;
        uint64_t start_ticks; /* ours, proc_start_ticks(); 0: unknown */
        unsigned reloads;     /* reloads that ended, applied or rejected */
        int64_t reload_usec;
        char *reload_error;   /* the last reload's rejection; NULL: applied */
        int64_t reload_begun; /* CLOCK_MONOTONIC: when the reload under way began */
        /* the last RELOADS_KEPT outcomes, oldest first: when each began and
         * its rejection (NULL: applied) */
        struct reload_outcome {
                int64_t begun;
                char *error;
                bool ok;
        } recent[RELOADS_KEPT];
        size_t n_recent;
        bool metrics_ro;      /* its directory is read-only (told once) */
        char *state_text;     /* the state file as last written, but "updated_usec" */
        struct stat state_st; /* and the file then: one changed since is written again */
        /* Publishing (STATUS=, the metrics and state files) is coalesced. */
        bool due;                    /* something changed since the last publish */
        bool publish_now;            /* a reload ended: `ckptd reload` is waiting */
        uint64_t published_usec;     /* CLOCK_MONOTONIC of the last publish; 0: none */
        struct status_counts counts; /* over the runs, as of the last publish */
        sd_event_source *publish_timer;
        sd_event_source *exit_src; /* publishes what is due as the loop exits */
        struct decision decisions[DECISIONS_MAX];
        size_t n_decisions, next_decision;
};

/* When pid started, in clock ticks after boot (proc(5): /proc/PID/stat,
 * field 22): with the pid it names one process while the system runs. 0
 * when it cannot be read. */
static uint64_t proc_start_ticks(pid_t pid)
{
        char path[sizeof("/proc//stat") + 3 * sizeof(int)], buf[512], *p;
        _cleanup_close_ int fd = -1;
        unsigned long long ticks;
        ssize_t n;

        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return 0;
        n = read(fd, buf, sizeof(buf) - 1);
        if (n <= 0)
                return 0;
        buf[n] = '\0';
        /* the name (field 2) may hold spaces and ')': the last ')' ends it;
         * the fields after it are numbers, 20 of them to field 22 */
        p = strrchr(buf, ')');
        if (!p)
                return 0;
        p++;
        for (int field = 3; field < 22; field++) {
                p += strspn(p, " ");
                p += strcspn(p, " ");
        }
        if (sscanf(p, " %llu", &ticks) != 1)
                return 0;
        return ticks;
}

static char *mfree_str(char *s)
{
        free(s);
        return NULL;
}

/* The log observer has no user data: one daemon per process. */
static struct control *observed;

static json_object *json_str(const char *s)
{
        _cleanup_free_ char *e = s ? log_escape(s) : NULL;

        return e ? json_object_new_string(e) : NULL;
}

static void on_log_event(int level, const struct log_fields *f, const char *msg)
{
        struct control *c = observed;
        const char *from[] = {f->action, f->path, f->run, f->reason, f->monitor};
        struct decision *d;
        const char **to[ELEMENTSOF(from)];
        size_t size = 1;
        char *text, *p;

        (void)level, (void)msg;
        if (!c || !f->action || strcmp(f->action, "keep") == 0)
                return;
        for (size_t i = 0; i < ELEMENTSOF(from); i++)
                if (from[i])
                        size += strlen(from[i]) + 1;
        text = malloc(size);
        if (!text)
                return;
        d = &c->decisions[c->next_decision];
        free(d->text);
        *d = (struct decision){
                .usec = now_usec(CLOCK_REALTIME),
                .text = text,
                .has_value = f->monitor && f->has_value,
                .value = f->value,
                .has_bytes = f->has_bytes,
                .bytes = f->bytes,
        };
        to[0] = &d->action, to[1] = &d->path, to[2] = &d->run, to[3] = &d->reason, to[4] = &d->monitor;
        p = text;
        for (size_t i = 0; i < ELEMENTSOF(from); i++)
                if (from[i]) {
                        size_t n = strlen(from[i]) + 1;

                        memcpy(p, from[i], n);
                        *to[i] = p;
                        p += n;
                }
        c->next_decision = (c->next_decision + 1) % DECISIONS_MAX;
        if (c->n_decisions < DECISIONS_MAX)
                c->n_decisions++;
}

static json_object *decision_json(const struct decision *d)
{
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        json_object_object_add(o, "action", json_str(d->action));
        json_object_object_add(o, "path", json_str(d->path));
        json_object_object_add(o, "run", json_str(d->run));
        json_object_object_add(o, "reason", json_str(d->reason));
        if (d->monitor) {
                json_object_object_add(o, "monitor", json_str(d->monitor));
                if (d->has_value) {
                        /* 15 digits: 0.6, not 0.59999999999999998 */
                        char v[32];
                        snprintf(v, sizeof(v), "%.15g", d->value);
                        json_object_object_add(o, "value", json_object_new_double_s(d->value, v));
                }
        }
        if (d->has_bytes)
                json_object_object_add(o, "bytes", json_object_new_uint64(d->bytes));
        json_object_object_add(o, "usec", json_object_new_int64(d->usec));
        return o;
}

/* Our unit's name ("ckptd.service", "ckptd@x.service"), a user unit's
 * (*ret_user), or NULL outside a ckptd unit (a login session's scope is not
 * one of ours). */
static char *own_unit(bool *ret_user)
{
        char *unit = NULL;

        *ret_user = false;
        if (sd_pid_get_unit(0, &unit) >= 0 && strncmp(unit, "ckptd", 5) == 0)
                return unit;
        free(unit);
        unit = NULL;
        if (sd_pid_get_user_unit(0, &unit) >= 0 && strncmp(unit, "ckptd", 5) == 0) {
                *ret_user = true;
                return unit;
        }
        free(unit);
        return NULL;
}

static void publish(struct manager *m);

/* The loop is exiting (SIGTERM, SIGINT): a publish still due is made now,
 * while the runs are still there, so that the metrics file left behind
 * tells the last state. */
static int on_exit_publish(sd_event_source *s, void *userdata)
{
        struct manager *m = userdata;

        (void)s;
        if (m->control->due)
                publish(m);
        return 0;
}

int control_new(struct manager *m)
{
        struct control *c = calloc(1, sizeof(*c));
        _cleanup_free_ char *unit = NULL;
        bool user;
        int r;

        if (!c)
                return -ENOMEM;
        c->started_usec = now_usec(CLOCK_REALTIME);
        c->start_ticks = proc_start_ticks(getpid());
        unit = own_unit(&user);
        /* `systemctl edit` takes a user unit as "--user UNIT" */
        if (unit && user && asprintf(&c->unit, "--user %s", unit) < 0)
                c->unit = NULL;
        else if (unit && !user)
                c->unit = strdup(unit);
        c->dir = runtime_dir();
        if (!c->dir)
                log_debug("no runtime directory: no state file for ckptd status: %m");
        else if (asprintf(&c->state_path, "%s/state-%d.json", c->dir, (int)getpid()) < 0)
                c->state_path = NULL;
        if (c->dir && unit && asprintf(&c->metrics_note, "%s/%s.metrics", c->dir, unit) < 0)
                c->metrics_note = NULL;
        if (m->event && (r = sd_event_add_exit(m->event, &c->exit_src, on_exit_publish, m)) < 0) {
                free(c->dir);
                free(c->state_path);
                free(c->unit);
                free(c->metrics_note);
                free(c);
                return r;
        }
        m->control = c;
        observed = c;
        log_set_observer(on_log_event);
        return 0;
}

void control_free(struct manager *m)
{
        struct control *c = m->control;

        if (!c)
                return;
        log_set_observer(NULL);
        observed = NULL;
        c->publish_timer = sd_event_source_disable_unref(c->publish_timer);
        c->exit_src = sd_event_source_disable_unref(c->exit_src);
        if (c->state_path)
                unlink(c->state_path);
        for (size_t i = 0; i < DECISIONS_MAX; i++)
                free(c->decisions[i].text);
        free(c->dir);
        free(c->state_path);
        free(c->unit);
        free(c->metrics_note);
        free(c->metrics_path);
        free(c->last_status);
        free(c->state_text);
        free(c->reload_error);
        for (size_t i = 0; i < c->n_recent; i++)
                free(c->recent[i].error);
        free(c);
        m->control = NULL;
}

/* 1 when fd (or path, fd < 0) is on a mount that is read-only for this
 * process (statvfs(3) ST_RDONLY: a ro mount, or ProtectSystem=strict's
 * read-only bind mounts), 0 if not, -errno. */
static int read_only_at(int fd, const char *path)
{
        struct statvfs sv;

        if ((fd >= 0 ? fstatvfs(fd, &sv) : statvfs(path, &sv)) < 0)
                return -errno;
        return (sv.f_flag & ST_RDONLY) ? 1 : 0;
}

/* A watch path not watched because a symlink is there (never followed):
 * said as such, not as missing. */
static bool root_symlink(const struct root_state *rs)
{
        struct stat st;

        return !rs->present && lstat(rs->root.w->path, &st) == 0 && S_ISLNK(st.st_mode);
}

static bool root_read_only(const struct root_state *rs)
{
        return rs->present && rs->root.fd >= 0 && read_only_at(rs->root.fd, NULL) > 0;
}

/* The directory of the metrics file, or NULL (malloc'd). */
static char *metrics_dir(const char *metrics_file)
{
        _cleanup_free_ char *copy = metrics_file && *metrics_file ? strdup(metrics_file) : NULL;

        return copy ? strdup(dirname(copy)) : NULL;
}

static bool metrics_read_only(const struct manager *m)
{
        _cleanup_free_ char *dir = metrics_dir(m->config->metrics_file);

        return dir && read_only_at(-1, dir) > 0;
}

/* The fix for a read-only metrics directory, as a unit's drop-in or a
 * remount. (A read-only watch is told at start and reload by root_prepare.) */
static void warn_metrics_read_only(struct control *c, const char *dir)
{
        if (c->unit)
                log_warning("metrics directory %s is on a read-only mount for ckptd: the metrics file cannot be "
                            "written; the unit's sandbox (ProtectSystem=strict) makes every path read-only but "
                            "those in ReadWritePaths=: add ReadWritePaths=%s with 'systemctl edit %s', then restart it",
                            dir, dir, c->unit);
        else
                log_warning("metrics directory %s is on a read-only mount: the metrics file cannot be written; "
                            "remount it read-write",
                            dir);
}

/* Warn once per start or reload about a read-only metrics directory. */
static void check_read_only(struct manager *m)
{
        struct control *c = m->control;

        if (metrics_read_only(m)) {
                _cleanup_free_ char *dir = metrics_dir(m->config->metrics_file);
                if (!c->metrics_ro && dir)
                        warn_metrics_read_only(c, dir);
                c->metrics_ro = true;
        } else {
                c->metrics_ro = false;
        }
}

void control_roots_changed(struct manager *m)
{
        /* told again after a reload */
        if (m->control)
                m->control->metrics_ro = false;
}

int control_snapshot(const struct manager *m, bool runs, struct report_snapshot *ret)
{
        struct report_snapshot s = {
                .n_watches = m->n_roots,
                .fs = m->space.fs,
                .n_fs = m->space.n_fs,
                .floor_unmet = space_any_unmet(&m->space),
                .floor_unknown = space_any_unknown(&m->space),
                .read_errors_total = m->read_errors_total + m->space.read_errors,
                .last_event_usec = m->last_event_usec,
                .dry_run = m->dry_run,
                .reload_rejected = m->control && m->control->reload_error,
                .metrics_file = m->config->metrics_file,
        };

        memcpy(s.deleted_by_reason, m->deleted_by_reason, sizeof(s.deleted_by_reason));
        memcpy(s.freed_by_reason, m->freed_by_reason, sizeof(s.freed_by_reason));
        s.watches = calloc(m->n_roots + 1, sizeof(*s.watches));
        if (!s.watches)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_roots; i++)
                s.watches[i] = (struct report_watch){
                        .path = m->roots[i].root.w->path,
                        .present = m->roots[i].present,
                        .locked = !m->roots[i].present && m->roots[i].lock_refused,
                        .symlink = root_symlink(&m->roots[i]),
                        .read_only = root_read_only(&m->roots[i]),
                };
        for (size_t i = 0; runs && i < m->n_roots; i++)
                s.n_runs += m->roots[i].n_runs;
        if (runs) {
                s.runs = calloc(s.n_runs + 1, sizeof(*s.runs));
                if (!s.runs) {
                        report_snapshot_finish(&s);
                        return -ENOMEM;
                }
                s.n_runs = 0;
        }
        for (size_t i = 0; runs && i < m->n_roots; i++) {
                s.counts.runs += m->roots[i].n_runs;
                for (size_t j = 0; j < m->roots[i].n_runs; j++) {
                        const struct run_state *run = m->roots[i].runs[j];

                        s.runs[s.n_runs++] = (struct report_run){
                                .watch = m->roots[i].root.w->path,
                                .path = run->path,
                                .n_ckpts = run->n_ckpts,
                        };
                        s.counts.ckpts += run->n_ckpts;
                        s.counts.monitor_missing += run->told.monitor_missing != NULL;
                        /* runs kept whole, and checkpoints of the other
                         * runs kept, after read errors in their last sweep */
                        if (run->unreadable_whole)
                                s.counts.unreadable_runs++;
                        else
                                s.counts.unreadable_ckpts += run->n_unreadable;
                }
        }
        *ret = s;
        return 0;
}

/* STATUS= text: report_status() with the counts n, then what needs a
 * person. */
static char *status_text(struct manager *m, const struct report_snapshot *snap, const struct status_counts *n)
{
        _cleanup_free_ char *base = report_status(snap, n);
        char *buf = NULL;
        size_t len = 0;
        FILE *f;

        if (!base || !(f = open_memstream(&buf, &len)))
                return NULL;
        fputs(base, f);
        for (size_t i = 0; i < snap->n_watches; i++)
                if (snap->watches[i].read_only) {
                        _cleanup_free_ char *e = log_escape(snap->watches[i].path);
                        fprintf(f, "; %s READ-ONLY: cannot delete", e ? e : "?");
                }
        if (m->control && m->control->metrics_ro)
                fputs("; metrics file READ-ONLY", f);
        if (m->control && m->control->reload_error) {
                _cleanup_free_ char *e = log_escape(m->control->reload_error);
                fprintf(f, "; reload rejected: %s", e ? e : "?");
        }
        fclose(f);
        return buf;
}

bool control_status_changed(struct manager *m)
{
        _cleanup_free_ char *s = NULL;
        struct report_snapshot snap;

        if (!m->control || control_snapshot(m, false, &snap) < 0)
                return true;
        /* the counts over the runs as last published, not counted again
         * (O(runs)): only a sweep changes them, and a sweep publishes */
        s = status_text(m, &snap, &m->control->counts);
        report_snapshot_finish(&snap);
        return !s || !streq_ptr(s, m->control->last_status);
}

void control_reload_begin(struct manager *m)
{
        if (m->control)
                m->control->reload_begun = now_usec(CLOCK_MONOTONIC);
}

void control_reload_done(struct manager *m, const char *error)
{
        struct control *c = m->control;

        if (!c)
                return;
        if (c->n_recent == RELOADS_KEPT) {
                free(c->recent[0].error);
                memmove(c->recent, c->recent + 1, (RELOADS_KEPT - 1) * sizeof(c->recent[0]));
                c->n_recent--;
        }
        c->recent[c->n_recent++] = (struct reload_outcome){
                .begun = c->reload_begun,
                .ok = !error,
                .error = error ? strdup(error) : NULL,
        };
        c->reloads++;
        c->reload_usec = now_usec(CLOCK_REALTIME);
        free(c->reload_error);
        c->reload_error = error ? strdup(error) : NULL;
        /* STATUS= said "reloading": send it again even if unchanged */
        c->last_status = mfree_str(c->last_status);
        /* and publish at once: `ckptd reload` waits for the counter */
        c->publish_now = true;
        if (error && !c->reload_error)
                c->reload_error = strdup("(out of memory)");
}

/* s as a JSON string. s was escaped by log_escape(): no control bytes are
 * left, but quotes and backslashes are. */
static void put_json_string(struct printbuf *pb, const char *s)
{
        printbuf_strappend(pb, "\"");
        for (const char *p = s; *p; p++) {
                if (*p == '"' || *p == '\\') {
                        char e[2] = {'\\', *p};
                        printbuf_memappend_fast(pb, e, 2);
                } else if ((unsigned char)*p < 0x20) {
                        char e[8];
                        snprintf(e, sizeof(e), "\\u%04x", (unsigned)(unsigned char)*p);
                        printbuf_memappend_fast(pb, e, 6);
                } else {
                        printbuf_memappend_fast(pb, p, 1);
                }
        }
        printbuf_strappend(pb, "\"");
}

/* Whether log_escape() and then put_json_string() leave s as it is:
 * printable ASCII without a quote or a backslash (almost every path). */
static bool json_plain(const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p < 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
                        return false;
        return true;
}

/* v in decimal, as "%zu" would write it */
static void put_size(struct printbuf *pb, size_t v)
{
        char num[24], *e = num + sizeof(num), *p = e;

        do
                *--p = (char)('0' + v % 10);
        while (v /= 10);
        printbuf_memappend_fast(pb, p, (int)(e - p));
}

/* The "runs" array of a watch (json_object_set_serializer()'s userdata: its
 * root_state), written straight into the text: building a json-c object for
 * each of a thousand runs was most of a publish, and then escaping and
 * formatting each run's fields was. */
static int runs_to_json(json_object *jso, struct printbuf *pb, int level, int flags)
{
        const struct root_state *rs = json_object_get_userdata(jso);

        (void)level, (void)flags;
        printbuf_strappend(pb, "[");
        for (size_t j = 0; j < rs->n_runs; j++) {
                const struct run_state *run = rs->runs[j];

                if (j > 0)
                        printbuf_strappend(pb, ",");
                printbuf_strappend(pb, "{\"path\":");
                if (json_plain(run->path)) {
                        printbuf_strappend(pb, "\"");
                        printbuf_memappend_fast(pb, run->path, (int)strlen(run->path));
                        printbuf_strappend(pb, "\"");
                } else {
                        _cleanup_free_ char *e = log_escape(run->path);

                        if (e)
                                put_json_string(pb, e);
                        else
                                printbuf_strappend(pb, "null");
                }
                printbuf_strappend(pb, ",\"checkpoints\":");
                put_size(pb, run->n_ckpts);
                if (run->unreadable_whole || run->n_unreadable) {
                        printbuf_strappend(pb, ",\"kept_after_read_errors\":");
                        put_size(pb, run->unreadable_whole ? run->n_ckpts : run->n_unreadable);
                }
                printbuf_strappend(pb, "}");
        }
        printbuf_strappend(pb, "]");
        return 0;
}

static json_object *state_json(struct manager *m, const char *status)
{
        struct control *c = m->control;
        json_object *o = json_object_new_object(), *watches, *fss, *decisions, *reload, *recent, *del, *freed;

        if (!o)
                return NULL;
        json_object_object_add(o, "version", json_object_new_int(STATE_VERSION));
        json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
        if (c->start_ticks > 0)
                json_object_object_add(o, "start_ticks", json_object_new_int64((int64_t)c->start_ticks));
        json_object_object_add(o, "config", json_str(m->config_path));
        json_object_object_add(o, "unit", json_str(c->unit));
        json_object_object_add(o, "started_usec", json_object_new_int64(c->started_usec));
        json_object_object_add(o, "dry_run", json_object_new_boolean(m->dry_run));
        /* STATUS= text, escaped already (status_text()) */
        json_object_object_add(o, "status", status ? json_object_new_string(status) : NULL);

        reload = json_object_new_object();
        json_object_object_add(reload, "count", json_object_new_int64(c->reloads));
        if (c->reloads > 0) {
                json_object_object_add(reload, "usec", json_object_new_int64(c->reload_usec));
                json_object_object_add(reload, "ok", json_object_new_boolean(!c->reload_error));
                json_object_object_add(reload, "error", json_str(c->reload_error));
        }
        recent = json_object_new_array();
        for (size_t i = 0; i < c->n_recent; i++) {
                json_object *r = json_object_new_object();

                json_object_object_add(r, "begun_monotonic_usec", json_object_new_int64(c->recent[i].begun));
                json_object_object_add(r, "ok", json_object_new_boolean(c->recent[i].ok));
                json_object_object_add(r, "error", json_str(c->recent[i].error));
                json_object_array_add(recent, r);
        }
        json_object_object_add(reload, "recent", recent);
        json_object_object_add(o, "reload", reload);

        watches = json_object_new_array();
        for (size_t i = 0; i < m->n_roots; i++) {
                const struct root_state *rs = &m->roots[i];
                json_object *w = json_object_new_object(), *runs = json_object_new_array();
                size_t ckpts = 0;

                json_object_object_add(w, "path", json_str(rs->root.w->path));
                json_object_object_add(w, "present", json_object_new_boolean(rs->present));
                json_object_object_add(w, "locked", json_object_new_boolean(!rs->present && rs->lock_refused));
                json_object_object_add(w, "symlink", json_object_new_boolean(root_symlink(rs)));
                json_object_object_add(w, "read_only", json_object_new_boolean(root_read_only(rs)));
                for (size_t j = 0; j < rs->n_runs; j++)
                        ckpts += rs->runs[j]->n_ckpts;
                /* serialized at once by write_state(), while rs holds */
                if (runs)
                        json_object_set_serializer(runs, runs_to_json, (void *)rs, NULL);
                json_object_object_add(w, "checkpoints", json_object_new_uint64(ckpts));
                json_object_object_add(w, "runs", runs);
                json_object_array_add(watches, w);
        }
        json_object_object_add(o, "watches", watches);

        fss = json_object_new_array();
        for (size_t i = 0; i < m->space.n_fs; i++) {
                const struct fs_state *fs = &m->space.fs[i];
                json_object *j = json_object_new_object();

                json_object_object_add(j, "path", json_str(fs->path));
                json_object_object_add(j, "floor_configured", json_object_new_boolean(fs->configured));
                /* unknown: null, not the last reading (or 0) */
                json_object_object_add(j, "free_bytes",
                                       fs->stat_error < 0 ? NULL : json_object_new_uint64(fs->free_bytes));
                json_object_object_add(j, "total_bytes",
                                       fs->stat_error < 0 ? NULL : json_object_new_uint64(fs->total_bytes));
                json_object_object_add(j, "floor_unknown",
                                       json_object_new_boolean(fs->configured && fs->stat_error < 0));
                if (fs->stat_error < 0)
                        json_object_object_add(j, "error", json_object_new_string(strerror(-fs->stat_error)));
                json_object_object_add(j, "floor_bytes", json_object_new_uint64(fs->floor_bytes));
                json_object_object_add(j, "target_bytes", json_object_new_uint64(fs->target_bytes));
                json_object_object_add(j, "floor_unmet", json_object_new_boolean(fs->unmet));
                if (fs->unmet)
                        json_object_object_add(j, "short_bytes", json_object_new_uint64(fs->short_bytes));
                json_object_array_add(fss, j);
        }
        json_object_object_add(o, "filesystems", fss);

        if (m->config->metrics_file && *m->config->metrics_file) {
                json_object *mf = json_object_new_object();
                json_object_object_add(mf, "path", json_str(m->config->metrics_file));
                json_object_object_add(mf, "read_only", json_object_new_boolean(c->metrics_ro));
                json_object_object_add(o, "metrics_file", mf);
        }

        del = json_object_new_object();
        freed = json_object_new_object();
        for (int r = DELETE_POLICY; r < _DELETE_REASON_MAX; r++) {
                json_object_object_add(del, delete_reason_to_string(r),
                                       json_object_new_uint64(m->deleted_by_reason[r]));
                json_object_object_add(freed, delete_reason_to_string(r),
                                       json_object_new_uint64(m->freed_by_reason[r]));
        }
        json_object_object_add(o, "deleted", del);
        json_object_object_add(o, "freed_bytes", freed);

        decisions = json_object_new_array();
        for (size_t i = 0; i < c->n_decisions; i++) {
                size_t k = (c->next_decision + DECISIONS_MAX - c->n_decisions + i) % DECISIONS_MAX;
                json_object *d = decision_json(&c->decisions[k]);

                if (d)
                        json_object_array_add(decisions, d);
        }
        json_object_object_add(o, "decisions", decisions);
        return o;
}

/* Whether path is still the file we wrote (st): not removed, replaced or
 * written over by anyone else. */
static bool same_file(const char *path, const struct stat *st)
{
        struct stat now;

        return stat(path, &now) == 0 && now.st_dev == st->st_dev && now.st_ino == st->st_ino &&
               now.st_size == st->st_size && now.st_mtim.tv_sec == st->st_mtim.tv_sec &&
               now.st_mtim.tv_nsec == st->st_mtim.tv_nsec;
}

/* The state file, when what it says changed (or the file did: removed or
 * written over): an idle daemon whose check finds nothing new writes
 * nothing. "updated_usec" is when it last changed. */
static int write_state(struct manager *m, const char *status)
{
        struct control *c = m->control;
        _cleanup_free_ char *tmp = NULL, *text = NULL;
        json_object *o;
        struct stat st;
        size_t len;
        FILE *f;
        int r = 0;

        if (!c->state_path)
                return 0;
        o = state_json(m, status);
        if (!o)
                return -ENOMEM;
        text = json_escape_text(
                json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(o);
        if (!text)
                return -ENOMEM;
        if (streq_ptr(text, c->state_text) && same_file(c->state_path, &c->state_st))
                return 0;
        len = strlen(text);
        if (len < 2 || text[len - 1] != '}')
                return -EINVAL; /* not json-c's object text */
        if (asprintf(&tmp, "%s.tmp", c->state_path) < 0)
                return -ENOMEM;
        f = fopen(tmp, "we");
        if (!f) {
                r = -errno;
                log_debug("cannot write %s: %s", tmp, strerror(-r));
                return r;
        }
        fprintf(f, "%.*s,\"updated_usec\":%lld}\n", (int)(len - 1), text, (long long)now_usec(CLOCK_REALTIME));
        if (fflush(f) != 0 || ferror(f) || fstat(fileno(f), &st) < 0)
                r = -EIO;
        if (fclose(f) != 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, c->state_path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                log_debug("cannot write %s: %s", c->state_path, strerror(-r));
                return r;
        }
        c->state_st = st;
        free(c->state_text);
        c->state_text = TAKE_PTR(text);
        return 0;
}

/* The unit's note of the metrics file written (see the top): path, or none
 * for NULL. */
static void metrics_note_write(struct control *c, const char *path)
{
        _cleanup_free_ char *tmp = NULL;
        bool failed;
        FILE *f;

        if (!c->metrics_note)
                return;
        if (!path) {
                if (unlink(c->metrics_note) < 0 && errno != ENOENT)
                        log_warning_errno(-errno, "cannot remove %s: %m", c->metrics_note);
                return;
        }
        if (asprintf(&tmp, "%s.tmp", c->metrics_note) < 0)
                return;
        f = fopen(tmp, "we");
        if (!f) {
                log_warning_errno(-errno, "cannot write %s: %m; the metrics file may outlive the service", tmp);
                return;
        }
        failed = fputs(path, f) < 0 || fflush(f) != 0 || ferror(f);
        if (fclose(f) != 0 || failed || rename(tmp, c->metrics_note) < 0) {
                log_warning_errno(-EIO, "cannot write %s; the metrics file may outlive the service", c->metrics_note);
                unlink(tmp);
        }
}

/* Remove the metrics file written at c->metrics_path, if what is there is
 * still that file (not another's since); logged. */
static void metrics_remove(const struct control *c)
{
        /* metrics_file is an absolute path (config.c) */
        _cleanup_free_ char *dir = metrics_dir(c->metrics_path);
        const char *base = strrchr(c->metrics_path, '/') + 1;
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (!dir)
                return;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 || fstatat(fd, base, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno != ENOENT)
                        log_warning_errno(-errno, "cannot remove %s, the old metrics file: %m", c->metrics_path);
                return;
        }
        /* written over since (an inode number reused too): not ours */
        if (st.st_dev != c->metrics_st.st_dev || st.st_ino != c->metrics_st.st_ino ||
            st.st_size != c->metrics_st.st_size || st.st_mtim.tv_sec != c->metrics_st.st_mtim.tv_sec ||
            st.st_mtim.tv_nsec != c->metrics_st.st_mtim.tv_nsec)
                return;
        if (unlinkat(fd, base, 0) < 0)
                log_warning_errno(-errno, "cannot remove %s, the old metrics file: %m", c->metrics_path);
        else
                log_info("removed %s: metrics_file is no longer it", c->metrics_path);
}

/* After a publish: written, the file now at `path` (metrics_file), or NULL
 * when none was written. The file written before under another path (a
 * reload moved or dropped metrics_file) is removed, and the unit's note
 * follows. */
static void metrics_track(struct control *c, const char *path, const struct stat *written)
{
        if (path && !*path)
                path = NULL;
        if (c->metrics_path && !streq_ptr(c->metrics_path, path)) {
                metrics_remove(c);
                free(c->metrics_path);
                c->metrics_path = NULL;
                metrics_note_write(c, NULL);
        }
        if (!written)
                return;
        if (!c->metrics_path) {
                c->metrics_path = strdup(path);
                if (!c->metrics_path)
                        return; /* tracked from the next publish */
                metrics_note_write(c, path);
        }
        c->metrics_st = *written;
}

/* STATUS= if it changed, the metrics file and the state file, now. */
static void publish(struct manager *m)
{
        struct control *c = m->control;
        _cleanup_free_ char *status = NULL;
        struct report_snapshot snap;
        struct stat st;

        c->due = c->publish_now = false;
        c->published_usec = (uint64_t)now_usec(CLOCK_MONOTONIC);
        if (c->publish_timer)
                sd_event_source_set_enabled(c->publish_timer, SD_EVENT_OFF);
        check_read_only(m);
        if (control_snapshot(m, true, &snap) < 0) {
                /* out of memory: the state file at least says so */
                write_state(m, NULL);
                return;
        }
        c->counts = snap.counts;
        status = status_text(m, &snap, &c->counts);
        if (status && !streq_ptr(status, c->last_status)) {
                sd_notifyf(false, "STATUS=%s", status);
                free(c->last_status);
                c->last_status = strdup(status);
        }
        /* a read-only metrics directory was warned about once: not again
         * on every publish */
        metrics_track(c, m->config->metrics_file, !c->metrics_ro && report_metrics(&snap, &st) > 0 ? &st : NULL);
        report_snapshot_finish(&snap);
        write_state(m, status);
}

static int on_publish_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        struct manager *m = userdata;

        (void)s;
        (void)usec;
        if (m->control->due)
                publish(m);
        return 0;
}

/* Publish at `when` (CLOCK_MONOTONIC), unless the timer is already set:
 * then for a time no later, since only publish() moves published_usec and
 * it turns the timer off. */
static int publish_at(struct manager *m, uint64_t when)
{
        struct control *c = m->control;
        int enabled = SD_EVENT_OFF, r;

        if (!c->publish_timer)
                return sd_event_add_time(m->event, &c->publish_timer, CLOCK_MONOTONIC, when, PUBLISH_SLACK_USEC,
                                         on_publish_timer, m);
        if ((r = sd_event_source_get_enabled(c->publish_timer, &enabled)) < 0)
                return r;
        if (enabled != SD_EVENT_OFF)
                return 0;
        if ((r = sd_event_source_set_time(c->publish_timer, when)) < 0)
                return r;
        return sd_event_source_set_enabled(c->publish_timer, SD_EVENT_ONESHOT);
}

void control_publish(struct manager *m)
{
        struct control *c = m->control;
        uint64_t now, next;

        if (!c) {
                struct report_snapshot snap;
                _cleanup_free_ char *status = NULL;

                if (control_snapshot(m, true, &snap) < 0)
                        return;
                status = report_status(&snap, &snap.counts);
                if (status)
                        sd_notifyf(false, "STATUS=%s", status);
                report_metrics(&snap, NULL);
                report_snapshot_finish(&snap);
                return;
        }
        c->due = true;
        now = (uint64_t)now_usec(CLOCK_MONOTONIC);
        next = c->published_usec + PUBLISH_EVERY_USEC;
        if (c->publish_now || c->published_usec == 0 || now >= next || !m->event) {
                publish(m);
                return;
        }
        if (publish_at(m, next) < 0)
                publish(m); /* no timer: now rather than never */
}

/* --- -t: can the watches be written? --- */

/* The unit a config file belongs to: the default config is ckptd.service,
 * /etc/ckptd/NAME.conf is ckptd@NAME.service; NULL otherwise. */
static char *unit_of_config(const char *config_path)
{
        const char *base;
        char *unit = NULL;
        size_t n;

        if (!config_path) /* --watch */
                return NULL;
        if (strcmp(config_path, "/etc/ckptd/ckptd.conf") == 0)
                return strdup("ckptd.service");
        if (strncmp(config_path, "/etc/ckptd/", 11) != 0)
                return NULL;
        base = config_path + 11;
        n = strlen(base);
        if (n <= 5 || strcmp(base + n - 5, ".conf") != 0 || strchr(base, '/'))
                return NULL;
        return asprintf(&unit, "ckptd@%.*s.service", (int)(n - 5), base) < 0 ? NULL : unit;
}

/* `systemctl show -P PROPERTY UNIT`, first line, or NULL. */
static char *systemctl_show(const char *unit, const char *property)
{
        int fds[2];
        pid_t pid;
        char buf[4096];
        size_t len = 0;
        ssize_t k;
        int status;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return NULL;
        pid = fork();
        if (pid < 0) {
                close(fds[0]);
                close(fds[1]);
                return NULL;
        }
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                dup2(fds[1], STDOUT_FILENO);
                if (null >= 0)
                        dup2(null, STDERR_FILENO);
                execlp("systemctl", "systemctl", "show", "-P", property, "--", unit, (char *)NULL);
                _exit(127);
        }
        close(fds[1]);
        while (len < sizeof(buf) - 1 && (k = read(fds[0], buf + len, sizeof(buf) - 1 - len)) > 0)
                len += (size_t)k;
        close(fds[0]);
        if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return NULL;
        buf[len] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return strdup(buf);
}

/* Whether path is one of the space-separated ReadWritePaths= or BindPaths=
 * or below one ("-" marks one that may be missing; a bind mount is
 * "source:destination:options" and its destination counts). */
static bool rw_covers(const char *rw, const char *path)
{
        _cleanup_free_ char *copy = strdup(rw ? rw : "");
        char *save = NULL;

        for (char *p = strtok_r(copy, " ", &save); p; p = strtok_r(NULL, " ", &save)) {
                size_t n;

                char *colon;

                p += strspn(p, "-+");
                if ((colon = strchr(p, ':'))) {
                        p = colon + 1;
                        p[strcspn(p, ":")] = '\0';
                }
                n = strlen(p);
                while (n > 1 && p[n - 1] == '/')
                        p[--n] = '\0';
                if (strcmp(p, "/") == 0 || (strncmp(path, p, n) == 0 && (path[n] == '\0' || path[n] == '/')))
                        return true;
        }
        return false;
}

/* What ProtectHome= covers. */
static bool below_home(const char *path)
{
        static const char *const dirs[] = {"/home", "/root", "/run/user"};

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                size_t n = strlen(dirs[i]);
                if (strncmp(path, dirs[i], n) == 0 && (path[n] == '\0' || path[n] == '/'))
                        return true;
        }
        return false;
}

static void print_access_line(FILE *f, const char *what, const char *path)
{
        _cleanup_free_ char *e = log_escape(path);
        int r = read_only_at(-1, path);

        fprintf(f, "  %-8s %s: ", what, e ? e : "?");
        if (r == -ENOENT)
                fputs("missing here\n", f);
        else if (r < 0)
                fprintf(f, "cannot tell: %s\n", strerror(-r));
        else if (r > 0)
                fputs("READ-ONLY mount here: nothing can be deleted\n", f);
        else if (access(path, W_OK) < 0)
                fprintf(f, "not writable by this user here: %s\n", strerror(errno));
        else
                fputs("writable here\n", f);
}

void control_print_access(FILE *f, const struct config *c, const char *config_path)
{
        _cleanup_free_ char *mdir = metrics_dir(c->metrics_file), *unit = NULL, *loaded = NULL, *protect = NULL,
                            *rw = NULL, *home = NULL, *bind = NULL;

        fputs("access (as this process sees it; a service's sandbox, e.g. ProtectSystem=strict, is not visible "
              "from here):\n",
              f);
        for (size_t i = 0; i < c->n_watches; i++)
                print_access_line(f, "watch", c->watches[i].path);
        if (mdir)
                print_access_line(f, "metrics", mdir);
        /* The unit's view: only root can tell, and only where systemd runs. */
        if (geteuid() != 0 || sd_booted() <= 0 || !(unit = unit_of_config(config_path)))
                return;
        loaded = systemctl_show(unit, "LoadState");
        if (!loaded || strcmp(loaded, "loaded") != 0)
                return;
        protect = systemctl_show(unit, "ProtectSystem");
        rw = systemctl_show(unit, "ReadWritePaths");
        home = systemctl_show(unit, "ProtectHome");
        bind = systemctl_show(unit, "BindPaths");
        if (!protect || strcmp(protect, "strict") != 0) {
                fprintf(f, "under %s (ProtectSystem=%s): the watches are writable as above\n", unit,
                        protect ? protect : "?");
                return;
        }
        fprintf(f, "under %s (ProtectSystem=strict, ProtectHome=%s, ReadWritePaths=%s):\n", unit, home ? home : "?",
                rw && *rw ? rw : "");
        for (size_t i = 0; i <= c->n_watches; i++) {
                const char *path = i < c->n_watches ? c->watches[i].path : mdir;
                const char *what = i < c->n_watches ? "watch" : "metrics";
                _cleanup_free_ char *e = NULL;

                if (!path)
                        continue;
                e = log_escape(path);
                fprintf(f, "  %-8s %s: ", what, e ? e : "?");
                if (below_home(path) && home && strcmp(home, "yes") == 0)
                        fputs("HIDDEN from the service (ProtectHome=yes): see ckptd(8), SERVICE\n", f);
                else if (rw_covers(bind, path) ||
                         (rw_covers(rw, path) && !(below_home(path) && home && strcmp(home, "tmpfs") == 0)))
                        fputs("writable for the service\n", f);
                else if (below_home(path) && home && strcmp(home, "no") != 0)
                        fprintf(f, "READ-ONLY for the service (ProtectHome=%s): see ckptd(8), SERVICE\n", home);
                else
                        fprintf(f, "READ-ONLY for the service: add ReadWritePaths=%s with 'systemctl edit %s'\n",
                                e ? e : "?", unit);
        }
}

/* --- ckptd status, ckptd reload --- */

bool control_is_command(const char *arg)
{
        return strcmp(arg, "status") == 0 || strcmp(arg, "reload") == 0;
}

static json_object *state_read(const char *dir, pid_t pid);
static int64_t get_int(json_object *o, const char *key);

/* Whether the daemon that wrote state (its state file, parsed; NULL when
 * there is none to read) still runs as pid. A daemon killed outright leaves
 * its state file behind, and its pid may go to another program, even to
 * another ckptd. Its name (/proc/PID/comm) must start with "ckptd", and the
 * start time its state file holds (start_ticks) must be that one's: in
 * clock ticks (10 ms), so a program started in the same tick as the daemon
 * is told apart by its name alone. Where /proc cannot tell, a live pid is
 * taken as the daemon. */
static bool pid_alive(pid_t pid, json_object *state)
{
        char path[sizeof("/proc//comm") + 3 * sizeof(int)], comm[16] = "";
        _cleanup_close_ int fd = -1;
        uint64_t want = state ? (uint64_t)get_int(state, "start_ticks") : 0, have;

        if (kill(pid, 0) < 0 && errno != EPERM)
                return false;
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd >= 0 && read(fd, comm, sizeof(comm) - 1) > 0 && strncmp(comm, "ckptd", strlen("ckptd")) != 0)
                return false;
        have = proc_start_ticks(pid);
        return want == 0 || have == 0 || want == have;
}

/* Parse dir/state-PID.json; NULL if it cannot be read or is another version. */
static json_object *state_read(const char *dir, pid_t pid)
{
        _cleanup_free_ char *path = NULL;
        json_object *o, *v;

        if (asprintf(&path, "%s/state-%d.json", dir, (int)pid) < 0)
                return NULL;
        o = json_object_from_file(path);
        if (!o)
                return NULL;
        if (!json_object_object_get_ex(o, "version", &v) || json_object_get_int(v) != STATE_VERSION) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* A pid in s: decimal digits only (no sign, no space), 1 to INT_MAX, then
 * exactly suffix. sscanf's %d would wrap 4294967297 to 1 and stop at the
 * first non-digit, naming another process. */
static int parse_pid(const char *s, const char *suffix, pid_t *ret)
{
        char *end;
        long v;

        if (!isdigit((unsigned char)s[0]))
                return -EINVAL;
        errno = 0;
        v = strtol(s, &end, 10);
        if (errno == ERANGE || v > INT_MAX)
                return -ERANGE;
        if (v <= 0 || strcmp(end, suffix) != 0)
                return -EINVAL;
        *ret = (pid_t)v;
        return 0;
}

/* The pids of the daemons with a state file in dir, alive, sorted. */
static size_t state_pids(const char *dir, pid_t *pids, size_t max)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        size_t n = 0;

        if (!d)
                return 0;
        while ((de = readdir(d)) && n < max) {
                pid_t pid;

                if (strncmp(de->d_name, "state-", strlen("state-")) == 0 &&
                    parse_pid(de->d_name + strlen("state-"), ".json", &pid) == 0) {
                        json_object *o = state_read(dir, pid);

                        if (pid_alive(pid, o))
                                pids[n++] = pid;
                        json_object_put(o);
                }
        }
        closedir(d);
        for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && pids[j - 1] > pids[j]; j--) {
                        pid_t t = pids[j];
                        pids[j] = pids[j - 1];
                        pids[j - 1] = t;
                }
        return n;
}

static const char *get_str(json_object *o, const char *key)
{
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static int64_t get_int(json_object *o, const char *key)
{
        json_object *v;

        return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

static bool get_bool(json_object *o, const char *key)
{
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_get_boolean(v);
}

static json_object *get_array(json_object *o, const char *key)
{
        json_object *v;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_array) ? v : NULL;
}

static const char *time_text(int64_t usec, char *buf, size_t size)
{
        time_t t = (time_t)(usec / (int64_t)USEC_PER_SEC);
        struct tm tm;

        if (usec <= 0 || !localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "?");
        return buf;
}

static const char *bytes_text(json_object *o, const char *key, char *buf, size_t size)
{
        return size_format((uint64_t)get_int(o, key), buf, size);
}

/* Runs listed per watch at most; --json has them all. */
#define STATUS_RUNS_MAX 20

/* One daemon's state for a person. The strings in it were escaped by the
 * daemon (log_escape) before they were written. */
static void render_state(FILE *f, json_object *o)
{
        json_object *reload = NULL, *a, *del = NULL, *freed = NULL;
        char t[64], b1[16], b2[16], b3[16];
        const char *s;

        fprintf(f, "ckptd[%lld] %s", (long long)get_int(o, "pid"), (s = get_str(o, "config")) ? s : "(--watch)");
        if ((s = get_str(o, "unit")))
                fprintf(f, " (%s)", s);
        fprintf(f, ", since %s%s\n", time_text(get_int(o, "started_usec"), t, sizeof(t)),
                get_bool(o, "dry_run") ? ", DRY RUN" : "");
        fprintf(f, "  status:   %s\n", (s = get_str(o, "status")) ? s : "?");
        fprintf(f, "  updated:  %s\n", time_text(get_int(o, "updated_usec"), t, sizeof(t)));
        json_object_object_get_ex(o, "reload", &reload);
        if (!reload || get_int(reload, "count") == 0)
                fputs("  reload:   none since start\n", f);
        else if (get_bool(reload, "ok"))
                fprintf(f, "  reload:   applied %s\n", time_text(get_int(reload, "usec"), t, sizeof(t)));
        else
                fprintf(f, "  reload:   REJECTED %s: %s (the previous config stays in force)\n",
                        time_text(get_int(reload, "usec"), t, sizeof(t)), (s = get_str(reload, "error")) ? s : "?");

        if ((a = get_array(o, "watches")))
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        json_object *w = json_object_array_get_idx(a, i), *runs = get_array(w, "runs");
                        size_t n = runs ? json_object_array_length(runs) : 0;

                        fprintf(f, "  watch:    %s: %s%s, %zu run%s, %lld checkpoint%s\n",
                                (s = get_str(w, "path")) ? s : "?",
                                get_bool(w, "present")   ? "present"
                                : get_bool(w, "locked")  ? "LOCKED by another ckptd: not watched"
                                : get_bool(w, "symlink") ? "A SYMLINK, not followed: name the directory itself"
                                                         : "MISSING",
                                get_bool(w, "read_only") ? ", READ-ONLY: cannot delete" : "", n, n == 1 ? "" : "s",
                                (long long)get_int(w, "checkpoints"), get_int(w, "checkpoints") == 1 ? "" : "s");
                        for (size_t j = 0; j < n && j < STATUS_RUNS_MAX; j++) {
                                json_object *r = json_object_array_get_idx(runs, j);
                                fputs("            ", f);
                                log_print_padded(f, (s = get_str(r, "path")) ? s : "?", 40);
                                fprintf(f, " %lld checkpoint%s", (long long)get_int(r, "checkpoints"),
                                        get_int(r, "checkpoints") == 1 ? "" : "s");
                                if (get_int(r, "kept_after_read_errors") > 0)
                                        fprintf(f, " (%lld kept after read errors)",
                                                (long long)get_int(r, "kept_after_read_errors"));
                                fputc('\n', f);
                        }
                        if (n > STATUS_RUNS_MAX)
                                fprintf(f, "            ... %zu more (ckptd status --json lists them all)\n",
                                        n - STATUS_RUNS_MAX);
                }
        if ((a = get_array(o, "filesystems")))
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        json_object *fs = json_object_array_get_idx(a, i);

                        if (get_str(fs, "error")) {
                                fprintf(f, "  space:    %s: free space unknown (%s), %s\n",
                                        (s = get_str(fs, "path")) ? s : "?", get_str(fs, "error"),
                                        get_bool(fs, "floor_configured") ? "FLOOR UNKNOWN" : "no floor");
                                continue;
                        }
                        fprintf(f, "  space:    %s: %s free of %s", (s = get_str(fs, "path")) ? s : "?",
                                bytes_text(fs, "free_bytes", b1, sizeof(b1)),
                                bytes_text(fs, "total_bytes", b2, sizeof(b2)));
                        if (get_bool(fs, "floor_configured"))
                                fprintf(f, ", floor %s, target %s, %s", bytes_text(fs, "floor_bytes", b1, sizeof(b1)),
                                        bytes_text(fs, "target_bytes", b2, sizeof(b2)),
                                        get_bool(fs, "floor_unmet") ? "FLOOR UNMET" : "floor met");
                        if (get_bool(fs, "floor_unmet"))
                                fprintf(f, " (%s short)", bytes_text(fs, "short_bytes", b3, sizeof(b3)));
                        if (!get_bool(fs, "floor_configured"))
                                fputs(", no floor", f);
                        fputc('\n', f);
                }
        if (json_object_object_get_ex(o, "metrics_file", &a))
                fprintf(f, "  metrics:  %s%s\n", (s = get_str(a, "path")) ? s : "?",
                        get_bool(a, "read_only") ? " (READ-ONLY: not written)" : "");
        json_object_object_get_ex(o, "deleted", &del);
        json_object_object_get_ex(o, "freed_bytes", &freed);
        if (del && freed) {
                int64_t n = get_int(del, "policy") + get_int(del, "floor");
                fprintf(f, "  deleted:  %lld checkpoint%s, %s (policy %lld, %s; floor %lld, %s)\n", (long long)n,
                        n == 1 ? "" : "s",
                        size_format((uint64_t)(get_int(freed, "policy") + get_int(freed, "floor")), b1, sizeof(b1)),
                        (long long)get_int(del, "policy"), bytes_text(freed, "policy", b2, sizeof(b2)),
                        (long long)get_int(del, "floor"), bytes_text(freed, "floor", b3, sizeof(b3)));
        }
        if ((a = get_array(o, "decisions")) && json_object_array_length(a) > 0) {
                fputs("  last decisions:\n", f);
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        json_object *d = json_object_array_get_idx(a, i);
                        const char *action = get_str(d, "action"), *reason = get_str(d, "reason");

                        fprintf(f, "    %s %-12s %s", time_text(get_int(d, "usec"), t, sizeof(t)),
                                action ? action : "?", (s = get_str(d, "path")) ? s : "?");
                        fprintf(f, " (%s", reason ? reason : "?");
                        if (json_object_object_get_ex(d, "bytes", NULL))
                                fprintf(f, ", %s", bytes_text(d, "bytes", b1, sizeof(b1)));
                        fputs(")\n", f);
                }
        }
}

#define PIDS_MAX           256
#define SYSTEM_RUNTIME_DIR "/run/ckptd"

static int cmd_status(int argc, char *argv[])
{
        _cleanup_free_ char *dir = runtime_dir();
        pid_t pids[PIDS_MAX];
        json_object *all;
        size_t n;
        bool json = false;

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--json") == 0)
                        json = true;
                else {
                        _cleanup_free_ char *e = log_escape(argv[i]);
                        fprintf(stderr, "ckptd status: unexpected argument '%s'\nUsage: ckptd status [--json]\n",
                                e ? e : "?");
                        return 2;
                }
        }
        /* a user's own daemons, else the system's (its files are 0644) */
        if (!dir || (state_pids(dir, pids, PIDS_MAX) == 0 && strcmp(dir, SYSTEM_RUNTIME_DIR) != 0)) {
                free(dir);
                dir = strdup(SYSTEM_RUNTIME_DIR);
                if (!dir)
                        return EXIT_FAILURE;
        }
        n = state_pids(dir, pids, PIDS_MAX);
        all = json_object_new_array();
        for (size_t i = 0; i < n; i++) {
                json_object *o = state_read(dir, pids[i]);
                if (o)
                        json_object_array_add(all, o);
        }
        if (json_object_array_length(all) == 0) {
                json_object_put(all);
                fprintf(stderr, "ckptd status: no ckptd is running (no state file in %s)\n", dir);
                return EXIT_FAILURE;
        }
        if (json) {
                json_object *top = json_object_new_object();
                json_object_object_add(top, "daemons", all);
                _cleanup_free_ char *text = json_escape_text(
                        json_object_to_json_string_ext(top, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
                printf("%s\n", text ? text : "{}");
                json_object_put(top);
                return text ? EXIT_SUCCESS : EXIT_FAILURE;
        }
        for (size_t i = 0; i < json_object_array_length(all); i++) {
                if (i > 0)
                        putchar('\n');
                render_state(stdout, json_object_array_get_idx(all, i));
        }
        json_object_put(all);
        return EXIT_SUCCESS;
}

/* The reload counter of a daemon's state: -1 if there is none. */
static int64_t reload_count(json_object *state)
{
        json_object *reload;

        return state && json_object_object_get_ex(state, "reload", &reload) ? get_int(reload, "count") : -1;
}

/* The outcome of the first reload in state that began at `since` or later
 * (CLOCK_MONOTONIC), or NULL. A daemon whose state keeps no "recent" (one
 * started before an upgrade) is asked by its counter: any reload after
 * `count`. */
static json_object *reload_outcome(json_object *state, int64_t since, int64_t count)
{
        json_object *reload, *recent, *first = NULL;

        if (!state || !json_object_object_get_ex(state, "reload", &reload))
                return NULL;
        if (!json_object_object_get_ex(reload, "recent", &recent) || !json_object_is_type(recent, json_type_array))
                return get_int(reload, "count") > count ? reload : NULL;
        for (size_t i = 0; i < json_object_array_length(recent); i++) {
                json_object *r = json_object_array_get_idx(recent, i);
                int64_t begun = get_int(r, "begun_monotonic_usec");

                if (begun >= since && (!first || begun < get_int(first, "begun_monotonic_usec")))
                        first = r;
        }
        return first;
}

/* CLOCK_MONOTONIC's offset in the time namespace of pid ("self" for 0)
 * from the initial one, usec (time_namespaces(7)); 0 when it cannot be
 * read (no time namespaces, or not ours to read). */
static int64_t monotonic_offset(pid_t pid)
{
        char path[64], line[128];
        long long sec;
        unsigned long nsec;
        int64_t off = 0;
        FILE *f;

        if (pid > 0)
                snprintf(path, sizeof(path), "/proc/%d/timens_offsets", (int)pid);
        else
                snprintf(path, sizeof(path), "/proc/self/timens_offsets");
        f = fopen(path, "re");
        if (!f)
                return 0;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "monotonic %lld %lu", &sec, &nsec) == 2) {
                        off = (int64_t)sec * (int64_t)USEC_PER_SEC + (int64_t)(nsec / NSEC_PER_USEC);
                        break;
                }
        fclose(f);
        return off;
}

static int cmd_reload(int argc, char *argv[])
{
        _cleanup_free_ char *dir = runtime_dir();
        pid_t pid = 0, pids[PIDS_MAX];
        int64_t before, deadline, asked;
        json_object *state;
        bool alive;

        if (argc == 2 && parse_pid(argv[1], "", &pid) < 0) {
                _cleanup_free_ char *e = log_escape(argv[1]);
                fprintf(stderr, "ckptd reload: invalid pid '%s'\nUsage: ckptd reload [PID]\n", e ? e : "?");
                return 2;
        }
        if (argc > 2) {
                fprintf(stderr, "Usage: ckptd reload [PID]\n");
                return 2;
        }
        if (!dir) {
                fprintf(stderr, "ckptd reload: no runtime directory: %m\n");
                return EXIT_FAILURE;
        }
        if (pid == 0) {
                size_t n = state_pids(dir, pids, PIDS_MAX);
                if (n != 1) {
                        _cleanup_free_ char *d = log_escape(dir);

                        fprintf(stderr, "ckptd reload: %s running ckptd in %s: name its pid\n",
                                n == 0 ? "no" : "more than one", d ? d : "?");
                        return EXIT_FAILURE;
                }
                pid = pids[0];
        }
        state = state_read(dir, pid);
        before = reload_count(state);
        alive = pid_alive(pid, state);
        json_object_put(state);
        if (before < 0 || !alive) {
                _cleanup_free_ char *d = log_escape(dir);

                fprintf(stderr, "ckptd reload: no state of pid %d in %s: is it a running ckptd?\n", (int)pid,
                        d ? d : "?");
                return EXIT_FAILURE;
        }
        /* a reload that began before this did not read the config as it
         * is now; on the daemon's clock, should it be in another time
         * namespace */
        asked = now_usec(CLOCK_MONOTONIC) + monotonic_offset(pid) - monotonic_offset(0);
        if (kill(pid, SIGHUP) < 0) {
                fprintf(stderr, "ckptd reload: cannot signal pid %d: %m\n", (int)pid);
                return EXIT_FAILURE;
        }
        deadline = now_usec(CLOCK_MONOTONIC) + (int64_t)RELOAD_WAIT_USEC;
        while (now_usec(CLOCK_MONOTONIC) < deadline) {
                json_object *o = state_read(dir, pid), *reload = reload_outcome(o, asked, before);

                if (reload) {
                        bool ok = get_bool(reload, "ok");
                        const char *err = ok ? NULL : get_str(reload, "error");
                        int r = ok ? EXIT_SUCCESS : EXIT_FAILURE;

                        if (!ok)
                                fprintf(stderr, "ckptd reload: rejected: %s; the previous config stays in force\n",
                                        err ? err : "?");
                        json_object_put(o);
                        return r;
                }
                alive = pid_alive(pid, o);
                json_object_put(o);
                if (!alive) {
                        fprintf(stderr, "ckptd reload: pid %d exited\n", (int)pid);
                        return EXIT_FAILURE;
                }
                usleep(20 * 1000);
        }
        fprintf(stderr, "ckptd reload: pid %d did not report within %llu s\n", (int)pid,
                (unsigned long long)(RELOAD_WAIT_USEC / USEC_PER_SEC));
        return EXIT_FAILURE;
}

int control_main(int argc, char *argv[])
{
        if (strcmp(argv[0], "status") == 0)
                return cmd_status(argc, argv);
        return cmd_reload(argc, argv);
}
