/* Presets: defaults for each trainer's checkpoint layout. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct preset {
        const char *name;
        const char *pattern;  /* NULL: key=value mode */
        const char *match[4]; /* NULL-terminated; key=value mode: a name must match one */
        enum ckpt_kind kind;
        enum metric_source metric_source;
        const char *metric_file; /* for METRIC_JSON_FILE */
        const char *complete_marker;
        bool require_marker; /* watch_conf.require_marker */
        /* a group of files with a member whose name holds member_data is
         * complete only once a member's name ends in member_last, the file
         * its trainer writes last (TensorFlow's .data-* and .index) */
        const char *member_data, *member_last;
        const char *pointer_files[4]; /* NULL-terminated */
        const char *exclude[6];       /* NULL-terminated, added to the watch */
        const char *metric_log[4];    /* NULL-terminated, relative to the run */
        const char *summary;          /* one line for -t and the man page */
};

/* The preset called name, or NULL. */
const struct preset *preset_find(const char *name);
/* Set w's defaults from preset p (before explicit keys are applied). */
int preset_apply(const struct preset *p, struct watch_conf *w);
/* The layout of a run for preset "auto", from its entries (names[i], a
 * directory when is_dir[i]) and a look inside numbered directories for
 * their markers through run_fd: the preset, with a static reason in
 * *ret_why, or NULL (and why not) when no layout is recognised. */
const struct preset *preset_detect(int run_fd, char *const *names, const bool *is_dir, size_t n, const char **ret_why);
/* Whether directory dir of the run holds what Orbax writes into a step:
 * _CHECKPOINT_METADATA, commit_success.txt, metrics/metrics, OCDBT's files
 * in it or in its default item, or marker (NULL: none). A failure to look
 * is "no". */
bool preset_orbax_marked(int run_fd, const char *dir, const char *marker);
/* All presets, NULL-terminated by name. */
extern const struct preset presets[];
