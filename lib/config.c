/* libconfig -> struct config. Every error names the file and the line of the
 * setting at fault ("FILE:LINE: key: message"), or of the watch when a key is
 * missing, so `ckptd -t` output can be pasted into an editor's jump list.
 *
 * Precedence per watch: built-in defaults < preset (the watch's, else the
 * defaults group's) < keys of the defaults group < the watch's own keys.
 * Exclude lists are the exception: every level adds to them. */
#include <errno.h>
#include <libconfig.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"
#include "conftext.h"
#include "macro.h"
#include "pattern.h"
#include "preset.h"
#include "watchconf.h"

struct parser {
        const char *name; /* FILE in messages when libconfig knows none */
        char *error;
        const struct conftext *text; /* maps lines of what libconfig read */
};

static struct loc loc_of(const struct parser *p, const config_setting_t *s)
{
        int line = config_setting_source_line(s);
        const config_setting_t *parent = config_setting_parent(s);

        /* elements of arrays may carry no line of their own */
        if (line == 0 && parent)
                line = config_setting_source_line(parent);
        return conftext_loc(p->text, line);
}

static const char *type_name(const config_setting_t *s)
{
        switch (config_setting_type(s)) {
        case CONFIG_TYPE_GROUP: return "a group";
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64: return "an integer";
        case CONFIG_TYPE_FLOAT: return "a number with a fraction";
        case CONFIG_TYPE_STRING: return "a string";
        case CONFIG_TYPE_BOOL: return "a boolean";
        case CONFIG_TYPE_ARRAY: return "an array";
        case CONFIG_TYPE_LIST: return "a list";
        default: return "nothing";
        }
}

#define FAIL_AT(p, s, fmt, ...)                                                                                        \
        conf_fail((p)->error, loc_of((p), (s)), "%s: " fmt, config_setting_name(s), ##__VA_ARGS__)

static int get_bool(const struct parser *p, const config_setting_t *s, bool *ret)
{
        if (config_setting_type(s) != CONFIG_TYPE_BOOL)
                return FAIL_AT(p, s, "expected true or false, got %s", type_name(s));
        *ret = config_setting_get_bool(s);
        return 0;
}

/* conftext.c gave every integer literal an L suffix: one that libconfig
 * stored as a 32-bit int slipped past it and may be truncated. */
static int check_int64(const struct parser *p, const config_setting_t *s)
{
        if (config_setting_type(s) == CONFIG_TYPE_INT)
                return FAIL_AT(p, s, "integer not read as 64 bits; write it with an L suffix (5L)");
        return 0;
}

static int get_int(const struct parser *p, const config_setting_t *s, int64_t min, int64_t max, int64_t *ret)
{
        long long v;
        int r;

        r = check_int64(p, s);
        if (r < 0)
                return r;
        if (config_setting_type(s) != CONFIG_TYPE_INT64)
                return FAIL_AT(p, s, "expected an integer, got %s", type_name(s));
        v = config_setting_get_int64(s);
        if (v < min || v > max)
                return FAIL_AT(p, s, "must be from %lld to %lld, got %lld", (long long)min, (long long)max, v);
        *ret = v;
        return 0;
}

static int get_double(const struct parser *p, const config_setting_t *s, double min, double max, double *ret)
{
        double v;
        int r;

        r = check_int64(p, s);
        if (r < 0)
                return r;
        switch (config_setting_type(s)) {
        case CONFIG_TYPE_INT64: v = (double)config_setting_get_int64(s); break;
        case CONFIG_TYPE_FLOAT: v = config_setting_get_float(s); break;
        default: return FAIL_AT(p, s, "expected a number, got %s", type_name(s));
        }
        if (!(v >= min && v <= max))
                return FAIL_AT(p, s, "must be a number from %g to %g, got %g", min, max, v);
        *ret = v;
        return 0;
}

static int get_string(const struct parser *p, const config_setting_t *s, const char **ret)
{
        if (config_setting_type(s) != CONFIG_TYPE_STRING)
                return FAIL_AT(p, s, "expected a string, got %s", type_name(s));
        *ret = config_setting_get_string(s);
        return 0;
}

/* Replace *dst with the setting's string; "" gives NULL when empty_is_null. */
static int set_string(const struct parser *p, const config_setting_t *s, bool empty_is_null, char **dst)
{
        const char *v;
        char *copy = NULL;
        int r;

        r = get_string(p, s, &v);
        if (r < 0)
                return r;
        if (!empty_is_null && !v[0])
                return FAIL_AT(p, s, "must not be empty");
        if (v[0]) {
                copy = strdup(v);
                if (!copy)
                        return -ENOMEM;
        }
        free(*dst);
        *dst = copy;
        return 0;
}

/* An array or list of strings; replaces *dst unless append. */
static int set_strv(const struct parser *p, const config_setting_t *s, bool append, struct strv *dst)
{
        int n = config_setting_length(s);
        int r;

        if (config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST)
                return FAIL_AT(p, s, "expected a list of strings [ \"...\", ... ], got %s", type_name(s));
        for (int i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
                if (config_setting_type(e) != CONFIG_TYPE_STRING || !config_setting_get_string(e)[0])
                        return conf_fail(p->error, loc_of(p, e), "%s: element %d: expected a non-empty string, got %s",
                                         config_setting_name(s), i + 1, type_name(e));
        }
        if (!append)
                strv_finish(dst);
        for (int i = 0; i < n; i++) {
                r = strv_push(dst, config_setting_get_string(config_setting_get_elem(s, (unsigned)i)));
                if (r < 0)
                        return r;
        }
        return 0;
}

/* A duration key written as a string ("500ms", "2h"): its seconds, within
 * rg (whole ones for an integer key), as the -w flags take it. */
static int get_duration(const struct parser *p, const config_setting_t *s, const struct conf_range *rg, double *ret)
{
        const char *v = config_setting_get_string(s);
        double d;

        if (duration_parse(v, &d) < 0)
                return FAIL_AT(p, s, "invalid duration \"%s\" (" DURATION_HELP ")", v);
        if (conf_range_check(rg->key, d, NULL) < 0)
                return FAIL_AT(p, s, "must be %s from %.17g to %.17g seconds, got \"%s\"",
                               rg->integer ? "a whole number" : "a number", rg->min, rg->max, v);
        *ret = d;
        return 0;
}

/* An integer key within conf_range_of(its name). */
static int get_ranged_int(const struct parser *p, const config_setting_t *s, int64_t *ret)
{
        const struct conf_range *rg = conf_range_of(config_setting_name(s));
        double d;
        int r;

        if (rg->duration && config_setting_type(s) == CONFIG_TYPE_STRING) {
                r = get_duration(p, s, rg, &d);
                if (r == 0)
                        *ret = (int64_t)d;
                return r;
        }
        return get_int(p, s, (int64_t)rg->min, (int64_t)rg->max, ret);
}

static int get_ranged_double(const struct parser *p, const config_setting_t *s, double *ret)
{
        const struct conf_range *rg = conf_range_of(config_setting_name(s));

        if (rg->duration && config_setting_type(s) == CONFIG_TYPE_STRING)
                return get_duration(p, s, rg, ret);
        return get_double(p, s, rg->min, rg->max, ret);
}

/* A size string for size_parse, or a plain byte count; "" unsets it. */
static int set_size(const struct parser *p, const config_setting_t *s, struct size_spec *dst)
{
        const char *v;
        int64_t bytes;
        int r;

        if (config_setting_type(s) != CONFIG_TYPE_STRING) {
                if (config_setting_type(s) != CONFIG_TYPE_INT && config_setting_type(s) != CONFIG_TYPE_INT64)
                        return FAIL_AT(p, s, "expected a size (\"50G\", \"10%%\" or bytes), got %s", type_name(s));
                r = get_int(p, s, 0, (int64_t)SIZE_BYTES_MAX, &bytes);
                if (r < 0)
                        return r;
                *dst = (struct size_spec){.set = true, .bytes = (uint64_t)bytes};
                return 0;
        }
        v = config_setting_get_string(s);
        if (!v[0]) {
                *dst = (struct size_spec){.set = false};
                return 0;
        }
        r = size_parse(v, dst);
        if (r == -ERANGE)
                return FAIL_AT(p, s, "size \"%s\" is out of range (at most %s, or 100%%)", v, SIZE_BYTES_MAX_TEXT);
        if (r < 0)
                return FAIL_AT(p, s, "invalid size \"%s\" (bytes, K/M/G/T or N%%)", v);
        return 0;
}

static const char *const kind_names[_KIND_MAX] = {
        [KIND_ANY] = "any",
        [KIND_FILE] = "file",
        [KIND_DIR] = "dir",
};

/* The keys of a watch and of the file, for "did you mean". */
static const char *const watch_keys[] = {
        "complete_marker",
        "exclude",
        "headroom",
        "join",
        "keep_every",
        "keep_last",
        "keep_top_k",
        "key_separator",
        "kind",
        "match",
        "metric_file",
        "metric_log",
        "min_age",
        "min_free",
        "mode",
        "monitor",
        "path",
        "pattern",
        "pointer_files",
        "poll_interval",
        "preset",
        "recursive",
        "require_marker",
        "settle",
        "target_free",
        NULL,
};
static const char *const global_keys[] = {
        "check_interval",       "defaults",     "dry_run", "lock_wait", "log_level",
        "max_delete_per_sweep", "metrics_file", "watch",   NULL,
};

/* Apply one key of a watch or of the defaults group to w. */
static int apply_key(const struct parser *p, const config_setting_t *s, bool in_defaults, struct watch_conf *w,
                     struct watch_locs *locs)
{
        const char *key = config_setting_name(s), *v, *why, *near;
        int64_t i;
        int r;

        if (strcmp(key, "preset") == 0)
                return 0; /* applied first, see watch_parse() */
        if (strcmp(key, "path") == 0) {
                if (in_defaults)
                        return FAIL_AT(p, s, "not allowed in defaults; each watch names its own");
                r = get_string(p, s, &v);
                if (r < 0)
                        return r;
                if (v[0] != '/')
                        return FAIL_AT(p, s, "\"%s\" is not absolute", v);
                return watch_conf_set_path(w, v);
        }
        if (strcmp(key, "recursive") == 0)
                return get_bool(p, s, &w->recursive);
        if (strcmp(key, "require_marker") == 0) {
                if (!in_defaults)
                        locs->require_marker = loc_of(p, s);
                return get_bool(p, s, &w->require_marker);
        }
        if (strcmp(key, "monitor") == 0) {
                locs->monitor = loc_of(p, s);
                return set_string(p, s, true, &w->policy.monitor);
        }
        if (strcmp(key, "mode") == 0) {
                r = get_string(p, s, &v);
                if (r < 0)
                        return r;
                r = mode_from_string(v);
                if (r < 0)
                        return FAIL_AT(p, s, "must be \"min\" or \"max\", got \"%s\"", v);
                w->policy.mode = (enum mode)r;
                return 0;
        }
        if (strcmp(key, "keep_top_k") == 0 || strcmp(key, "keep_last") == 0) {
                bool top = key[5] == 't';
                r = get_ranged_int(p, s, &i);
                if (r < 0)
                        return r;
                *(top ? &w->policy.keep_top_k : &w->policy.keep_last) = (int)i;
                return 0;
        }
        if (strcmp(key, "keep_every") == 0)
                return get_ranged_int(p, s, &w->policy.keep_every);
        if (strcmp(key, "min_age") == 0)
                return get_ranged_int(p, s, &w->policy.min_age_sec);
        if (strcmp(key, "poll_interval") == 0)
                return get_ranged_int(p, s, &w->poll_interval_sec);
        if (strcmp(key, "settle") == 0)
                return get_ranged_double(p, s, &w->settle_sec);
        if (strcmp(key, "headroom") == 0)
                return get_ranged_double(p, s, &w->headroom);
        if (strcmp(key, "min_free") == 0)
                return set_size(p, s, &w->min_free);
        if (strcmp(key, "target_free") == 0) {
                locs->target_free = loc_of(p, s);
                return set_size(p, s, &w->target_free);
        }
        if (strcmp(key, "pattern") == 0) {
                struct pattern *pat = NULL;
                const char *msg = NULL;

                r = get_string(p, s, &v);
                if (r < 0)
                        return r;
                if (v[0]) {
                        r = pattern_compile(v, &pat, &msg);
                        pattern_free(pat);
                        if (r < 0)
                                return FAIL_AT(p, s, "\"%s\": %s", v, msg ? msg : strerror(-r));
                }
                locs->pattern = loc_of(p, s);
                return set_string(p, s, true, &w->pattern);
        }
        if (strcmp(key, "key_separator") == 0)
                return set_string(p, s, false, &w->key_separator);
        if (strcmp(key, "join") == 0)
                return set_string(p, s, false, &w->join);
        if (strcmp(key, "pointer_files") == 0) {
                r = set_strv(p, s, false, &w->pointer_files);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < w->pointer_files.n; k++)
                        if ((why = conf_name_problem(w->pointer_files.v[k])))
                                return FAIL_AT(p, s, "\"%s\" %s", w->pointer_files.v[k], why);
                return 0;
        }
        if (strcmp(key, "exclude") == 0)
                return set_strv(p, s, true, &w->exclude);
        if (strcmp(key, "metric_log") == 0) {
                /* a path or glob, or a list of them; "" or [] turns it off */
                if (config_setting_type(s) != CONFIG_TYPE_STRING)
                        return set_strv(p, s, false, &w->metric_log);
                r = get_string(p, s, &v);
                if (r < 0)
                        return r;
                strv_finish(&w->metric_log);
                return v[0] ? strv_push(&w->metric_log, v) : 0;
        }
        if (strcmp(key, "match") == 0) {
                locs->match = loc_of(p, s);
                return set_strv(p, s, false, &w->match);
        }
        if (strcmp(key, "complete_marker") == 0 || strcmp(key, "metric_file") == 0) {
                bool marker = key[0] == 'c';
                r = get_string(p, s, &v);
                if (r < 0)
                        return r;
                if (v[0] && (why = conf_relative_path_problem(v)))
                        return FAIL_AT(p, s, "\"%s\" %s", v, why);
                r = set_string(p, s, true, marker ? &w->complete_marker : &w->metric_file);
                if (r < 0 || marker)
                        return r;
                /* A metric file switches the source to it; "" goes back to
                 * what the preset reads (its names, or trainer_state.json). */
                if (w->metric_file)
                        w->metric_source = METRIC_JSON_FILE;
                else if (w->metric_source == METRIC_JSON_FILE) {
                        const struct preset *pr = preset_find(w->preset);
                        w->metric_source =
                                pr && pr->metric_source != METRIC_JSON_FILE ? pr->metric_source : METRIC_NAME;
                }
                return 0;
        }
        if (strcmp(key, "kind") == 0) {
                r = get_string(p, s, &v);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < ELEMENTSOF(kind_names); k++)
                        if (strcmp(kind_names[k], v) == 0) {
                                w->kind = (enum ckpt_kind)k;
                                return 0;
                        }
                return FAIL_AT(p, s, "must be \"file\", \"dir\" or \"any\", got \"%s\"", v);
        }
        near = name_suggest(key, watch_keys);
        return conf_fail(p->error, loc_of(p, s), "unknown key \"%s\" in %s%s%s%s", key,
                         in_defaults ? "defaults" : "watch", near ? "; did you mean \"" : "", near ? near : "",
                         near ? "\"?" : "");
}

/* The preset named by setting s (NULL: generic); errors point at s. */
static int preset_of(const struct parser *p, const config_setting_t *s, const char **ret)
{
        char names[256];
        const char *v;
        int r;

        *ret = "generic";
        if (!s)
                return 0;
        r = get_string(p, s, &v);
        if (r < 0)
                return r;
        if (!preset_find(v)) {
                conf_preset_names(names, sizeof(names));
                const char *near = preset_suggest(v);
                return FAIL_AT(p, s, "unknown preset \"%s\"%s%s%s (known: %s)", v, near ? "; did you mean \"" : "",
                               near ? near : "", near ? "\"?" : "", names);
        }
        *ret = v;
        return 0;
}

static int apply_group(const struct parser *p, const config_setting_t *g, bool in_defaults, struct watch_conf *w,
                       struct watch_locs *locs)
{
        int n = config_setting_length(g);

        for (int i = 0; i < n; i++) {
                int r = apply_key(p, config_setting_get_elem(g, (unsigned)i), in_defaults, w, locs);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* One element of the watch list -> *w (initialized here). */
static int watch_parse(const struct parser *p, const config_setting_t *defaults, const config_setting_t *ws,
                       struct watch_conf *w)
{
        const config_setting_t *ps;
        struct watch_locs locs = {0};
        struct loc at = loc_of(p, ws);
        const char *preset;
        int r;

        memset(w, 0, sizeof(*w));
        if (config_setting_type(ws) != CONFIG_TYPE_GROUP)
                return conf_fail(p->error, at, "watch: each entry must be a group { path = \"/dir\"; ... }, got %s",
                                 type_name(ws));
        ps = config_setting_get_member(ws, "preset");
        if (!ps && defaults)
                ps = config_setting_get_member(defaults, "preset");
        r = preset_of(p, ps, &preset);
        if (r < 0)
                return r;
        r = watch_conf_init(w, NULL, preset, p->error);
        if (r < 0)
                return r;
        w->line = at.line;
        if (defaults) {
                r = apply_group(p, defaults, true, w, &locs);
                if (r < 0)
                        return r;
        }
        r = apply_group(p, ws, false, w, &locs);
        if (r < 0)
                return r;
        if (!w->path)
                return conf_fail(p->error, at, "watch: path is required");
        /* With a template the pattern alone decides which names count, so
         * a preset's match list goes with its key=value layout. */
        if (w->pattern && locs.match.line > 0)
                return conf_fail(p->error, locs.match, "match: applies only without pattern (key=value names)");
        if (w->pattern)
                strv_finish(&w->match);
        return watch_conf_validate_at(w, at.file, &locs, p->error);
}

static int parse_watches(const struct parser *p, const config_setting_t *defaults, const config_setting_t *list,
                         struct config *c)
{
        int n = config_setting_length(list);
        int r;

        if (n == 0)
                return conf_fail(p->error, loc_of(p, list), "watch: no watch defined");
        for (int i = 0; i < n; i++) {
                const config_setting_t *ws = config_setting_get_elem(list, (unsigned)i);
                struct watch_conf w;

                r = watch_parse(p, defaults, ws, &w);
                if (r >= 0)
                        r = config_add_watch(c, &w);
                if (r == -EEXIST) {
                        const struct watch_conf *first = NULL;
                        for (size_t k = 0; k < c->n_watches; k++)
                                if (strcmp(c->watches[k].path, w.path) == 0)
                                        first = &c->watches[k];
                        r = conf_fail(p->error, loc_of(p, config_setting_get_member(ws, "path")),
                                      "path: \"%s\" is already watched (line %d)", w.path, first ? first->line : 0);
                }
                watch_conf_finish(&w);
                if (r < 0)
                        return r;
        }
        /* one policy per tree */
        size_t a = 0, b = 0;
        int nested = config_find_nested(c, &a, &b);
        const config_setting_t *later = nested > 0 ? config_setting_get_elem(list, (unsigned)(a > b ? a : b)) : NULL;

        if (nested == 2)
                return conf_fail(p->error, loc_of(p, later),
                                 "watch \"%s\" is the directory of watch \"%s\" (line %d), spelled another way",
                                 c->watches[b].path, c->watches[a].path, c->watches[a].line);
        if (nested == 1)
                return conf_fail(p->error, loc_of(p, later),
                                 "watch \"%s\" is inside recursive watch \"%s\"; "
                                 "set recursive = false on the outer one or drop one",
                                 c->watches[b].path, c->watches[a].path);
        return 0;
}

static int parse_config(const struct parser *p, const config_t *cfg, struct config **ret)
{
        const config_setting_t *root = config_root_setting(cfg), *defaults = NULL, *watches = NULL;
        struct config *c = config_new();
        int n = config_setting_length(root);
        const char *v, *unused;
        int64_t i;
        int r = 0;

        if (!c)
                return -ENOMEM;
        for (int k = 0; k < n && r >= 0; k++) {
                const config_setting_t *s = config_setting_get_elem(root, (unsigned)k);
                const char *key = config_setting_name(s);

                if (strcmp(key, "log_level") == 0) {
                        r = get_string(p, s, &v);
                        if (r >= 0 && (c->log_level = log_level_from_string(v)) < 0)
                                r = FAIL_AT(p, s,
                                            "unknown level \"%s\"%s%s%s (debug, info, notice, warning or warn, err or "
                                            "error)",
                                            v, log_level_suggest(v) ? "; did you mean \"" : "",
                                            log_level_suggest(v) ? log_level_suggest(v) : "",
                                            log_level_suggest(v) ? "\"?" : "");
                } else if (strcmp(key, "dry_run") == 0) {
                        r = get_bool(p, s, &c->dry_run);
                } else if (strcmp(key, "check_interval") == 0) {
                        r = get_ranged_int(p, s, &c->check_interval_sec);
                } else if (strcmp(key, "lock_wait") == 0) {
                        r = get_ranged_int(p, s, &c->lock_wait_sec);
                } else if (strcmp(key, "max_delete_per_sweep") == 0) {
                        r = get_ranged_int(p, s, &i);
                        if (r >= 0)
                                c->max_delete_per_sweep = (int)i;
                } else if (strcmp(key, "metrics_file") == 0) {
                        r = get_string(p, s, &v);
                        if (r >= 0 && v[0] && v[0] != '/')
                                r = FAIL_AT(p, s, "\"%s\" is not absolute", v);
                        if (r >= 0)
                                r = set_string(p, s, true, &c->metrics_file);
                } else if (strcmp(key, "defaults") == 0) {
                        defaults = s;
                        if (config_setting_type(s) != CONFIG_TYPE_GROUP)
                                r = FAIL_AT(p, s, "expected a group { ... }, got %s", type_name(s));
                        else /* watches with their own preset would not look at it */
                                r = preset_of(p, config_setting_get_member(s, "preset"), &unused);
                } else if (strcmp(key, "watch") == 0) {
                        watches = s;
                        if (config_setting_type(s) != CONFIG_TYPE_LIST)
                                r = FAIL_AT(p, s, "expected a list of groups ( { path = \"/dir\"; ... }, ... ), got %s",
                                            type_name(s));
                } else {
                        const char *near = name_suggest(key, global_keys);
                        r = conf_fail(p->error, loc_of(p, s), "unknown key \"%s\"%s%s%s", key,
                                      near ? "; did you mean \"" : "", near ? near : "", near ? "\"?" : "");
                }
        }
        if (r >= 0 && !watches)
                r = conf_fail(p->error, (struct loc){p->name, 1},
                              "no watch defined; add watch = ( { path = \"/dir\"; ... } );");
        if (r >= 0)
                r = parse_watches(p, defaults, watches, c);
        if (r < 0) {
                config_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

/* Failures without a message of their own (ENOMEM) still get one. */
static int finish_error(int r, const char *name, char *error)
{
        if (r < 0 && error && !error[0])
                snprintf(error, ERROR_MAX, "%s: %s", name, strerror(-r));
        return r;
}

static int syntax_error(const struct parser *p, const config_t *cfg)
{
        struct loc at = conftext_loc(p->text, config_error_line(cfg));

        /* conftext.c expanded every @include it saw: one left means the two
         * tokenizers disagree, and libconfig could not open it (below) */
        if (config_error_type(cfg) == CONFIG_ERR_FILE_IO)
                return conf_fail(p->error, at, "%s (an @include?)", config_error_text(cfg));
        return conf_fail(p->error, at, "%s", config_error_text(cfg));
}

/* Parse the expanded text; libconfig reads no file of its own. */
static int parse_text(struct parser *p, const struct conftext *t, struct config **ret)
{
        config_t cfg;
        int r;

        p->text = t;
        config_init(&cfg);
        /* libconfig 1.5 prefixes every @include with this directory, so an
         * @include that reached it cannot open anything. */
        config_set_include_dir(&cfg, "/dev/null");
        if (!config_read_string(&cfg, t->text))
                r = syntax_error(p, &cfg);
        else
                r = parse_config(p, &cfg, ret);
        config_destroy(&cfg);
        return r;
}

int config_load_string(const char *text, const char *name, struct config **ret, char error[ERROR_MAX])
{
        struct parser p = {.name = name ? name : "<string>", .error = error};
        struct conftext t;
        int r;

        if (error)
                error[0] = '\0';
        r = conftext_load_string(&t, text, p.name, error);
        if (r >= 0)
                r = parse_text(&p, &t, ret);
        conftext_finish(&t);
        return finish_error(r, p.name, error);
}

int config_load(const char *path, struct config **ret, char error[ERROR_MAX])
{
        struct parser p = {.name = path, .error = error};
        struct config *c = NULL;
        _cleanup_free_ char *dir = NULL;
        struct conftext t;
        int r;

        if (error)
                error[0] = '\0';
        dir = strdup(path);
        if (!dir)
                return finish_error(-ENOMEM, path, error);
        /* @include "x.conf" is relative to this file, not to our cwd */
        r = conftext_load_file(&t, path, dirname(dir), error);
        if (r >= 0)
                r = parse_text(&p, &t, &c);
        conftext_finish(&t);
        if (r < 0)
                return finish_error(r, path, error);
        c->path = strdup(path);
        if (!c->path) {
                config_free(c);
                return finish_error(-ENOMEM, path, error);
        }
        *ret = c;
        return 0;
}
