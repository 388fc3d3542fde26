/* Internal to config.c and watchconf.c: error formatting and the checks that
 * the libconfig reader and watch_conf_validate() share. Not for daemon/. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "macro.h"

/* Where a message points: file and line (0: the file as a whole). */
struct loc {
        const char *file;
        int line;
};

/* Where the keys that validation may complain about were set, so that the
 * message points at the setting rather than at the watch. */
struct watch_locs {
        struct loc monitor;
        struct loc pattern;
        struct loc target_free;
        struct loc match;
        struct loc require_marker;
};

/* Format "FILE:LINE: msg" (or "FILE: msg", or "msg") into error; -EINVAL. */
int conf_fail(char *error, struct loc at, const char *fmt, ...) _printf_(3, 4);
/* "generic, lightning, ..." into buf, for "unknown preset" messages. */
void conf_preset_names(char *buf, size_t len);
/* Whether child is a directory strictly below parent (both normalized). */
bool conf_path_is_below(const char *parent, const char *child);
/* Why s is not a relative path that stays inside a checkpoint, or NULL. */
const char *conf_relative_path_problem(const char *s);
/* Why s is not a plain entry name of a run directory, or NULL. */
const char *conf_name_problem(const char *s);
/* Set w->path to path with repeated and trailing slashes removed. */
int watch_conf_set_path(struct watch_conf *w, const char *path);
/* watch_conf_validate(), pointing at the key's own line when locs has it. */
int watch_conf_validate_at(const struct watch_conf *w, const char *file, const struct watch_locs *locs, char *error);
