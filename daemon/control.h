/* The status channel: what the running daemon publishes (STATUS=, the
 * metrics file, a JSON state file in the runtime directory), the outcome of
 * each reload, watches it cannot write to; and the commands that read it:
 * `ckptd status` and `ckptd reload`. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "config.h"

struct manager;
struct report_snapshot;

/* Set up m->control (state file path, unit name, last decisions). */
int control_new(struct manager *m);
/* Remove the state file and free m->control. */
void control_free(struct manager *m);
/* Send STATUS=, rewrite the metrics file and the state file: now, or at
 * most a second later when the last publish is under a second old. */
void control_publish(struct manager *m);
/* Whether STATUS= would now say something else than it last said. */
bool control_status_changed(struct manager *m);
/* A reload ended: error is "FILE:LINE: message" when it was rejected, NULL
 * when it was applied. */
void control_reload_done(struct manager *m, const char *error);
/* A reload begins (a SIGHUP taken): its outcome is told as one that began
 * now (control_reload_done()). */
void control_reload_begin(struct manager *m);
/* A reload: warn again about a read-only metrics directory. */
void control_roots_changed(struct manager *m);
/* What report.c shows of m, copied out (runs: with its runs and their
 * counts, O(runs)). 0, or -ENOMEM. Free with report_snapshot_finish(). */
int control_snapshot(const struct manager *m, bool runs, struct report_snapshot *ret);

/* -t: whether each watch and the metrics file's directory can be written
 * from here, and, as root under systemd, whether the unit's ReadWritePaths=
 * covers them. */
void control_print_access(FILE *f, const struct config *c, const char *config_path);

/* Whether argv[1] names a command of the running daemon ("status", "reload"). */
bool control_is_command(const char *arg);
/* `ckptd status [--json]`, `ckptd reload [PID]`: argv[0] is the command.
 * Returns the exit status. */
int control_main(int argc, char *argv[]);
