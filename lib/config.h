/* libconfig -> struct config, with validation errors as "FILE:LINE: msg". */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy.h"
#include "size.h"
#include "strv.h"

/* A message naming a config file (up to PATH_MAX) and quoting one of its
 * values whole, with room for the reason after them. */
#define ERROR_MAX (2 * 4096)

enum ckpt_kind {
        KIND_ANY, /* files and directories */
        KIND_FILE,
        KIND_DIR,
        _KIND_MAX,
};

enum metric_source {
        METRIC_NAME,      /* a field of the name */
        METRIC_HF_STATE,  /* trainer_state.json log_history */
        METRIC_JSON_FILE, /* metric_file inside the checkpoint */
        _METRIC_SOURCE_MAX,
};

struct watch_conf {
        char *path; /* absolute */
        int line;   /* line of the watch in the config, 0 if none */
        bool recursive;
        char *preset;  /* "generic" when unset */
        char *pattern; /* NULL: key=value mode */
        char *key_separator;
        char *join;
        enum ckpt_kind kind;
        struct policy policy;
        double settle_sec;
        struct size_spec min_free;
        struct size_spec target_free;
        double headroom; /* x largest checkpoint; 0 = off */
        struct strv pointer_files;
        char *complete_marker; /* "" or NULL: none */
        /* with a complete_marker: a directory without it is incomplete
         * however old (its layout always writes it last: HF, DCP) */
        bool require_marker;
        enum metric_source metric_source;
        char *metric_file;         /* relative path inside a directory checkpoint */
        struct strv metric_log;    /* training logs (paths or globs relative to the
                                    * run) for names that carry no monitor value */
        struct strv exclude;       /* globs never taken as checkpoints */
        struct strv match;         /* key=value mode only (pattern NULL): when not
                                    * empty, a name must match one of these globs */
        int64_t poll_interval_sec; /* 0: only for network filesystems (30 s) */
};

/* settle in microseconds */
static inline int64_t watch_settle_usec(const struct watch_conf *w)
{
        return (int64_t)(w->settle_sec * 1e6);
}

struct config {
        char *path;    /* file it came from, NULL for -w */
        int log_level; /* syslog LOG_* */
        bool dry_run;
        int64_t check_interval_sec;
        char *metrics_file; /* NULL: off */
        int max_delete_per_sweep;
        int64_t lock_wait_sec; /* a root locked by another ckptd: wait this long, -1 without limit */
        struct watch_conf *watches;
        size_t n_watches;
};

/* Parse and validate a config file. On error returns -EINVAL (or -errno when
 * the file cannot be read) with "FILE:LINE: message" in error[]. */
int config_load(const char *path, struct config **ret, char error[ERROR_MAX]);
/* The same from a string; `name` stands for FILE in messages. */
int config_load_string(const char *text, const char *name, struct config **ret, char error[ERROR_MAX]);
struct config *config_free(struct config *c);

/* A watch with the built-in defaults and the given preset applied; for -w. */
int watch_conf_init(struct watch_conf *w, const char *path, const char *preset, char error[ERROR_MAX]);
void watch_conf_finish(struct watch_conf *w);
/* Check one watch after all keys are set (pattern, monitor, keep-nothing). */
int watch_conf_validate(const struct watch_conf *w, const char *file, char error[ERROR_MAX]);
/* Compile w's template (pattern_compile()), with Lightning's readings for the
 * presets whose names Lightning's ModelCheckpoint writes (lightning, nemo). */
struct pattern;
int watch_pattern_compile(const struct watch_conf *w, struct pattern **ret, const char **ret_error);
/* An empty config (defaults for the globals) holding no watch; for -w. */
struct config *config_new(void);
/* Append a copy-by-move of *w to c (w is zeroed). */
int config_add_watch(struct config *c, struct watch_conf *w);

/* The range a numeric key accepts, one table for the config file, the -w
 * flags and watch_conf_validate(). */
struct conf_range {
        const char *key; /* as in the config: "keep_last" */
        double min, max; /* integers among them are exact in a double */
        bool integer;
        bool duration; /* seconds: a duration string is taken too */
};

/* The range of key ("keep_last", "headroom", ...), or NULL if it has none. */
const struct conf_range *conf_range_of(const char *key);
/* Whether v is within key's range; -ERANGE with "key: must be from MIN to
 * MAX, got V" in error (no FILE:LINE) when not. */
int conf_range_check(const char *key, double v, char error[ERROR_MAX]);

/* A duration: a number of seconds, or a number with a unit (ms, s, sec,
 * m or min, h, d), e.g. "2", "2s", "500ms", "1.5h": 0, or -EINVAL. The
 * key's range is the caller's to check. */
int duration_parse(const char *s, double *ret);
/* What a duration may be written as, for error messages. */
#define DURATION_HELP "seconds, or a number with ms, s, min, h or d: 2, 2s, 500ms"

/* A log level by name: syslog's ("warning", "err") and "warn", "error". */
int log_level_from_string(const char *s);
/* Edits (insert, delete, substitute, swap) between a and b. */
unsigned name_distance(const char *a, const char *b);
/* The name of NULL-terminated known closest to typed if it is close enough
 * to be a typo of it, else NULL: for "did you mean". */
const char *name_suggest(const char *typed, const char *const *known);
/* The preset (or log level) typed probably meant, or NULL. */
const char *preset_suggest(const char *typed);
const char *log_level_suggest(const char *typed);
/* Whether a watch of c lies inside another, recursive one, as spelled or as
 * the paths resolve now: 1 (the indexes), 2 when the two are one directory
 * spelled two ways, 0 none. */
int config_find_nested(const struct config *c, size_t *ret_outer, size_t *ret_inner);
const char *log_level_to_string(int level);
