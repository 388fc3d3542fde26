/* One watch: built-in defaults, presets applied, validation; the config
 * object that holds the watches; small shared helpers (strv, log levels).
 * The libconfig reader is config.c; what the two share is watchconf.h. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "config.h"
#include "macro.h"
#include "pattern.h"
#include "preset.h"
#include "watchconf.h"

#define DEFAULT_CHECK_INTERVAL_SEC   30
#define DEFAULT_MAX_DELETE_PER_SWEEP 1000
#define DEFAULT_SETTLE_SEC           2.0
#define DEFAULT_KEEP_TOP_K           3
#define DEFAULT_KEEP_LAST            1

/* Each bound says what a larger value would mean: none is a limit anyone
 * meets in practice, each keeps a typo (or a truncated 64-bit literal) from
 * becoming a policy. */
static const struct conf_range ranges[] = {
        /* a million checkpoints in one run is beyond any disk */
        {"keep_top_k", -1, 1000000, true, false},
        {"keep_last", 0, 1000000, true, false},
        /* order values are doubles, exact up to 2^53 */
        {"keep_every", 0, 9007199254740992.0, true, false},
        /* ten years */
        {"min_age", 0, 10 * 366 * 86400.0, true, true},
        /* a day: far beyond any save or useful poll, far from usec overflow */
        {"settle", 0, 86400, false, true},
        {"check_interval", 1, 86400, true, true},
        {"poll_interval", 0, 86400, true, true},
        /* the floor is headroom x the largest checkpoint: 100 copies of it
         * is more than any disk that holds a few */
        {"headroom", 0, 100, false, false},
        {"max_delete_per_sweep", 1, 1000000, true, false},
        /* a day of waiting for another ckptd; -1: without limit */
        {"lock_wait", -1, 86400, true, true},
};

int watch_pattern_compile(const struct watch_conf *w, struct pattern **ret, const char **ret_error)
{
        if (streq_ptr(w->preset, "lightning") || streq_ptr(w->preset, "nemo"))
                return pattern_compile_lightning(w->pattern, ret, ret_error);
        return pattern_compile(w->pattern, ret, ret_error);
}

const struct conf_range *conf_range_of(const char *key)
{
        for (size_t i = 0; i < ELEMENTSOF(ranges); i++)
                if (strcmp(ranges[i].key, key) == 0)
                        return &ranges[i];
        return NULL;
}

int duration_parse(const char *s, double *ret)
{
        static const struct {
                const char *unit;
                double sec;
        } units[] = {{"", 1}, {"ms", 0.001}, {"s", 1}, {"sec", 1}, {"m", 60}, {"min", 60}, {"h", 3600}, {"d", 86400}};
        /* a plain decimal, '-' its only sign (lock_wait = "-1"): no space
         * before it, no hex, exponent, inf or nan, which strtod() takes */
        size_t digits = (*s == '-') + strspn(s + (*s == '-'), "0123456789.");
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end == s || end != s + digits || !isfinite(v))
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (strcmp(end, units[i].unit) == 0) {
                        /* "-0" is 0, never shown back as "-0s" */
                        *ret = v == 0 ? 0 : v * units[i].sec;
                        return 0;
                }
        return -EINVAL;
}

int conf_range_check(const char *key, double v, char error[ERROR_MAX])
{
        const struct conf_range *r = conf_range_of(key);

        if (!r || (v >= r->min && v <= r->max && (!r->integer || v == floor(v))))
                return 0;
        if (error)
                snprintf(error, ERROR_MAX, "%s: must be %s from %.17g to %.17g, got %.17g", key,
                         r->integer ? "an integer" : "a number", r->min, r->max, v);
        return -ERANGE;
}

static const struct {
        const char *name;
        int level;
} log_levels[] = {
        {"emerg", LOG_EMERG},     {"alert", LOG_ALERT},   {"crit", LOG_CRIT}, {"err", LOG_ERR},
        {"warning", LOG_WARNING}, {"notice", LOG_NOTICE}, {"info", LOG_INFO}, {"debug", LOG_DEBUG},
};

unsigned name_distance(const char *a, const char *b)
{
        size_t la = strlen(a), lb = strlen(b);
        unsigned d[65][65];

        /* optimal string alignment: insertions, deletions, substitutions and
         * swaps of neighbours each count 1 ("topk" -> "top-k" is 1) */
        if (la > 64 || lb > 64)
                return UINT_MAX;
        for (size_t i = 0; i <= la; i++)
                d[i][0] = (unsigned)i;
        for (size_t j = 0; j <= lb; j++)
                d[0][j] = (unsigned)j;
        for (size_t i = 1; i <= la; i++)
                for (size_t j = 1; j <= lb; j++) {
                        unsigned cost = a[i - 1] != b[j - 1], v = d[i - 1][j - 1] + cost;

                        if (d[i - 1][j] + 1 < v)
                                v = d[i - 1][j] + 1;
                        if (d[i][j - 1] + 1 < v)
                                v = d[i][j - 1] + 1;
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                                v = d[i - 2][j - 2] + 1;
                        d[i][j] = v;
                }
        return d[la][lb];
}

const char *name_suggest(const char *typed, const char *const *known)
{
        /* a third of the name, at least one and at most three edits: close
         * enough to be a typo, far enough not to suggest nonsense */
        unsigned limit = (unsigned)strlen(typed) / 3, best = UINT_MAX;
        const char *found = NULL;

        if (limit < 1)
                limit = 1;
        if (limit > 3)
                limit = 3;
        for (size_t i = 0; known[i]; i++) {
                unsigned d = name_distance(typed, known[i]);
                if (d <= limit && d < best) {
                        best = d;
                        found = known[i];
                }
        }
        return found;
}

const char *preset_suggest(const char *typed)
{
        const char *names[64];
        size_t n = 0;

        for (const struct preset *p = presets; p->name && n + 1 < ELEMENTSOF(names); p++)
                names[n++] = p->name;
        names[n] = NULL;
        return typed ? name_suggest(typed, names) : NULL;
}

const char *log_level_suggest(const char *typed)
{
        static const char *const names[] = {"emerg", "alert",  "crit", "err",   "error", "warning",
                                            "warn",  "notice", "info", "debug", NULL};

        return typed ? name_suggest(typed, names) : NULL;
}

/* Whether watch b lies in watch a's tree (a recursive) by the paths p, or
 * (p resolved) is a's very directory. */
static bool covers(const struct config *c, char *const *p, size_t a, size_t b, bool resolved)
{
        if (a == b || !p[a] || !p[b])
                return false;
        if (resolved && strcmp(p[a], p[b]) == 0)
                return true;
        return c->watches[a].recursive && conf_path_is_below(p[a], p[b]);
}

/* Absolute path p with its "." and ".." components taken out, in place
 * ("/a/./b/../c" -> "/a/c"): for a part not made yet, where no symlink can
 * make ".." mean another directory. */
static char *path_lexical(char *p)
{
        char *o = p;

        for (const char *c = p; *c;) {
                size_t n;

                c += strspn(c, "/");
                n = strcspn(c, "/");
                if (n == 0 || (n == 1 && c[0] == '.')) {
                        c += n;
                        continue;
                }
                if (n == 2 && c[0] == '.' && c[1] == '.') {
                        while (o > p && *--o != '/')
                                ;
                        c += n;
                        continue;
                }
                *o++ = '/';
                memmove(o, c, n);
                o += n;
                c += n;
        }
        if (o == p)
                *o++ = '/';
        *o = '\0';
        return p;
}

/* Absolute path p as it resolves now (realpath(3)), its part not made yet
 * appended to where the rest leads: malloc'd, NULL when it cannot be told
 * (no part of it resolves, out of memory). */
static char *resolve_made(const char *p)
{
        _cleanup_free_ char *head = strdup(p);
        size_t end = head ? strlen(head) : 0;
        char *out;

        while (end > 1) {
                _cleanup_free_ char *real = NULL;
                char *slash;

                head[end] = '\0';
                real = realpath(head, NULL);
                if (real && !p[end])
                        return TAKE_PTR(real);
                if (real) /* p + end is "/rest"; below "/", no "//" */
                        return asprintf(&out, "%s%s", strcmp(real, "/") == 0 ? "" : real, p + end) < 0
                                       ? NULL
                                       : path_lexical(out);
                slash = errno == ENOENT ? strrchr(head, '/') : NULL;
                if (!slash)
                        return NULL;
                end = (size_t)(slash - head);
        }
        /* only the root is made */
        out = p[0] == '/' ? strdup(p) : NULL;
        return out ? path_lexical(out) : NULL;
}

int config_find_nested(const struct config *c, size_t *ret_outer, size_t *ret_inner)
{
        _cleanup_free_ char **real = calloc(c->n_watches, sizeof(*real));
        _cleanup_free_ char **spelled = calloc(c->n_watches, sizeof(*spelled));
        int r = 0;

        for (size_t i = 0; spelled && i < c->n_watches; i++)
                spelled[i] = c->watches[i].path;
        /* Two watches over one tree would apply two policies to the same
         * runs; a non-recursive outer watch does not reach the inner one.
         * As the paths resolve now (a symlink in one of them: /data ->
         * /mnt/nvme0/data), a part not made yet taken as spelled with "."
         * and ".." taken out: /x/a/../b is beside /x/a, and /x/a/lnk/r
         * with lnk leading elsewhere is outside its walk, which follows no
         * symlink. A pair of which one cannot be resolved is judged by its
         * spelling. */
        for (size_t i = 0; real && i < c->n_watches; i++)
                real[i] = resolve_made(c->watches[i].path);
        for (size_t a = 0; a < c->n_watches && r == 0; a++)
                for (size_t b = 0; b < c->n_watches && r == 0; b++) {
                        if (real && real[a] && real[b]) {
                                if (covers(c, real, a, b, true))
                                        r = strcmp(real[a], real[b]) == 0 ? 2 : 1;
                        } else if (spelled && covers(c, spelled, a, b, false))
                                r = 1;
                        if (r > 0) {
                                *ret_outer = a;
                                *ret_inner = b;
                        }
                }
        for (size_t i = 0; real && i < c->n_watches; i++)
                free(real[i]);
        return r;
}

int log_level_from_string(const char *s)
{
        if (!s)
                return -EINVAL;
        /* "error" and "warn" are what people type; syslog spells them
         * "err" and "warning" */
        if (strcmp(s, "error") == 0)
                return LOG_ERR;
        if (strcmp(s, "warn") == 0)
                return LOG_WARNING;
        for (size_t i = 0; i < ELEMENTSOF(log_levels); i++)
                if (strcmp(log_levels[i].name, s) == 0)
                        return log_levels[i].level;
        return -EINVAL;
}

const char *log_level_to_string(int level)
{
        for (size_t i = 0; i < ELEMENTSOF(log_levels); i++)
                if (log_levels[i].level == level)
                        return log_levels[i].name;
        return NULL;
}

/* error was cut at ERROR_MAX - 1 bytes: end it with "..." where a
 * character begins, never inside one (which would print as a stray \xNN). */
static void error_cut(char *error)
{
        size_t at = ERROR_MAX - 4;

        while (at > 0 && ((unsigned char)error[at] & 0xc0) == 0x80)
                at--;
        memcpy(error + at, "...", 4);
}

/* Format "FILE:LINE: msg" into error and return -EINVAL. A message longer
 * than ERROR_MAX (a value quoted whole that is longer than a path) is cut,
 * said by "...", but always keeps its FILE:LINE prefix. */
int conf_fail(char *error, struct loc at, const char *fmt, ...)
{
        va_list ap;
        int n = 0, k;

        if (!error)
                return -EINVAL;
        error[0] = '\0';
        if (at.file && at.line > 0)
                n = snprintf(error, ERROR_MAX, "%s:%d: ", at.file, at.line);
        else if (at.file)
                n = snprintf(error, ERROR_MAX, "%s: ", at.file);
        if (n < 0)
                n = 0;
        if (n >= ERROR_MAX) {
                error_cut(error);
                return -EINVAL;
        }
        va_start(ap, fmt);
        k = vsnprintf(error + n, ERROR_MAX - n, fmt, ap);
        va_end(ap);
        if (k >= ERROR_MAX - n)
                error_cut(error);
        return -EINVAL;
}

void conf_preset_names(char *buf, size_t len)
{
        size_t n = 0;

        buf[0] = '\0';
        for (const struct preset *p = presets; p->name && n < len; p++) {
                int k = snprintf(buf + n, len - n, "%s%s", n ? ", " : "", p->name);
                if (k < 0)
                        break;
                n += (size_t)k;
        }
}

/* "/data//runs/" -> "/data/runs": one spelling per directory, so that
 * duplicate and nested watches are found by comparing strings. */
static char *path_normalize(const char *s)
{
        char *out = malloc(strlen(s) + 1), *o = out;

        if (!out)
                return NULL;
        for (const char *c = s; *c; c++) {
                if (*c == '/' && o > out && o[-1] == '/')
                        continue;
                *o++ = *c;
        }
        while (o > out + 1 && o[-1] == '/')
                o--;
        *o = '\0';
        return out;
}

bool conf_path_is_below(const char *parent, const char *child)
{
        size_t n = strlen(parent);

        if (strcmp(parent, "/") == 0)
                return strcmp(child, "/") != 0;
        return strncmp(parent, child, n) == 0 && child[n] == '/';
}

/* Why s is not a relative path that stays inside a checkpoint, or NULL. */
const char *conf_relative_path_problem(const char *s)
{
        if (s[0] == '/')
                return "must be relative to the checkpoint";
        for (const char *c = s; *c;) {
                size_t n = strcspn(c, "/");
                if (n == 2 && c[0] == '.' && c[1] == '.')
                        return "must not contain \"..\"";
                c += n;
                c += strspn(c, "/");
        }
        return NULL;
}

/* Why s is not a plain entry name of the run directory, or NULL. */
const char *conf_name_problem(const char *s)
{
        if (!s[0] || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
                return "must be a file name";
        if (strchr(s, '/'))
                return "must be a name in the run directory, without \"/\"";
        return NULL;
}

int watch_conf_set_path(struct watch_conf *w, const char *path)
{
        char *p = path_normalize(path);

        if (!p)
                return -ENOMEM;
        free(w->path);
        w->path = p;
        return 0;
}

int watch_conf_init(struct watch_conf *w, const char *path, const char *preset, char error[ERROR_MAX])
{
        const struct preset *p = preset_find(preset ? preset : "generic");
        int r;

        memset(w, 0, sizeof(*w));
        if (!p) {
                char names[256];
                conf_preset_names(names, sizeof(names));
                const char *near = preset_suggest(preset);
                return conf_fail(error, (struct loc){0}, "unknown preset \"%s\"%s%s%s (known: %s)", preset,
                                 near ? "; did you mean \"" : "", near ? near : "", near ? "\"?" : "", names);
        }
        w->recursive = true;
        w->policy.mode = MODE_MIN;
        w->policy.keep_top_k = DEFAULT_KEEP_TOP_K;
        w->policy.keep_last = DEFAULT_KEEP_LAST;
        w->settle_sec = DEFAULT_SETTLE_SEC;
        w->key_separator = strdup("=");
        w->join = strdup("-");
        if (!w->key_separator || !w->join) {
                r = -ENOMEM;
                goto fail;
        }
        r = preset_apply(p, w);
        if (r < 0)
                goto fail;
        if (path) {
                r = watch_conf_set_path(w, path);
                if (r < 0)
                        goto fail;
        }
        return 0;
fail:
        watch_conf_finish(w);
        if (error)
                snprintf(error, ERROR_MAX, "%s", strerror(-r));
        return r;
}

void watch_conf_finish(struct watch_conf *w)
{
        free(w->path);
        free(w->preset);
        free(w->pattern);
        free(w->key_separator);
        free(w->join);
        free(w->policy.monitor);
        free(w->complete_marker);
        free(w->metric_file);
        strv_finish(&w->pointer_files);
        strv_finish(&w->exclude);
        strv_finish(&w->match);
        strv_finish(&w->metric_log);
        memset(w, 0, sizeof(*w));
}

static int check_strv(const struct strv *s, const char *key, bool names_only, char *error, struct loc at)
{
        for (size_t i = 0; i < s->n; i++) {
                const char *why = names_only ? conf_name_problem(s->v[i]) : (s->v[i][0] ? NULL : "must not be empty");
                if (why)
                        return conf_fail(error, at, "%s: \"%s\" %s", key, s->v[i], why);
        }
        return 0;
}

static int check_size(const struct size_spec *z, const char *key, char *error, struct loc at)
{
        if (!z->set)
                return 0;
        if (z->is_percent ? !(z->percent >= 0 && z->percent <= 100) : z->bytes > SIZE_BYTES_MAX)
                return conf_fail(error, at, "%s: must be at most %s or 100%%", key, SIZE_BYTES_MAX_TEXT);
        return 0;
}

/* Check the monitor against where its value comes from. */
static int check_monitor(const struct watch_conf *w, const struct preset *p, char *error, struct loc at)
{
        const char *monitor = w->policy.monitor;
        struct pattern *pat = NULL;
        const char *msg = NULL;
        bool ok;
        int r;

        if (!monitor)
                return 0;
        if (w->metric_source == METRIC_JSON_FILE && !w->metric_file)
                return conf_fail(error, at, "monitor \"%s\" needs metric_file for JSON metrics", monitor);
        /* HF and JSON metrics come from files inside the checkpoint, and a
         * key=value name can carry any field: nothing to check up front. */
        if (w->metric_source != METRIC_NAME || !w->pattern || w->metric_log.n > 0)
                return 0;
        if (strlen(monitor) >= FIELD_NAME_MAX)
                return conf_fail(error, at, "monitor: \"%s\" is longer than %d characters", monitor,
                                 FIELD_NAME_MAX - 1);
        r = watch_pattern_compile(w, &pat, &msg);
        if (r < 0)
                return conf_fail(error, at, "pattern \"%s\": %s", w->pattern, msg ? msg : strerror(-r));
        ok = pattern_can_capture(pat, monitor);
        pattern_free(pat);
        if (ok)
                return 0;
        if (p && p->pattern && strcmp(p->name, "generic") != 0 && streq_ptr(p->pattern, w->pattern))
                return conf_fail(error, at,
                                 "monitor \"%s\": preset %s carries no metric in its names; "
                                 "set metric_file (a JSON file in each checkpoint) or drop monitor",
                                 monitor, p->name);
        return conf_fail(error, at, "monitor \"%s\" is not captured by pattern \"%s\"; add {%s} to the pattern",
                         monitor, w->pattern, monitor);
}

int watch_conf_validate_at(const struct watch_conf *w, const char *file, const struct watch_locs *locs, char *error)
{
        const struct loc at = {file, w->line};
#define LOC(member) (locs && locs->member.line > 0 ? locs->member : at)
        const struct policy *pol = &w->policy;
        const struct preset *p;
        const char *why;
        int r;

        if (!w->path)
                return conf_fail(error, at, "path is required");
        if (w->path[0] != '/')
                return conf_fail(error, at, "path \"%s\" is not absolute", w->path);
        p = preset_find(w->preset ? w->preset : "generic");
        if (!p)
                return conf_fail(error, at, "unknown preset \"%s\"", w->preset);
        if (!w->pattern && strcmp(p->name, "generic") == 0)
                return conf_fail(error, at, "pattern is required with preset generic");
        if (w->pattern) {
                struct pattern *pat = NULL;
                const char *msg = NULL;

                r = watch_pattern_compile(w, &pat, &msg);
                pattern_free(pat);
                if (r < 0)
                        return conf_fail(error, LOC(pattern), "pattern \"%s\": %s", w->pattern,
                                         msg ? msg : strerror(-r));
                /* "*" takes every entry of every run, the runs below it
                 * too: whole trees deleted as checkpoints */
                if (w->pattern[strspn(w->pattern, "*?")] == '\0')
                        return conf_fail(error, LOC(pattern),
                                         "pattern \"%s\" takes every entry, subdirectories (runs) too; "
                                         "name what checkpoint names hold (step_{step}.pt, checkpoint-*)",
                                         w->pattern);
        }
        if ((w->key_separator && !w->key_separator[0]) || (w->join && !w->join[0]))
                return conf_fail(error, at, "key_separator and join must not be empty");
        if ((unsigned)w->kind >= _KIND_MAX || (unsigned)pol->mode >= _MODE_MAX ||
            (unsigned)w->metric_source >= _METRIC_SOURCE_MAX)
                return conf_fail(error, at, "kind, mode or metric source out of range");
        {
                const struct {
                        const char *key;
                        double v;
                } nums[] = {
                        {"keep_top_k", pol->keep_top_k},
                        {"keep_last", pol->keep_last},
                        {"keep_every", (double)pol->keep_every},
                        {"min_age", (double)pol->min_age_sec},
                        {"poll_interval", (double)w->poll_interval_sec},
                        {"settle", w->settle_sec},
                        {"headroom", w->headroom},
                };
                char msg[ERROR_MAX];
                for (size_t i = 0; i < ELEMENTSOF(nums); i++)
                        if (conf_range_check(nums[i].key, nums[i].v, msg) < 0)
                                return conf_fail(error, at, "%s", msg);
        }
        r = check_size(&w->min_free, "min_free", error, at);
        if (r < 0)
                return r;
        r = check_size(&w->target_free, "target_free", error, LOC(target_free));
        if (r < 0)
                return r;

        r = check_strv(&w->pointer_files, "pointer_files", true, error, at);
        if (r < 0)
                return r;
        r = check_strv(&w->exclude, "exclude", false, error, at);
        if (r < 0)
                return r;
        r = check_strv(&w->match, "match", false, error, LOC(match));
        if (r < 0)
                return r;
        /* relative to the run, and ".." is what it is for (logs sit above
         * Lightning's checkpoints directory) */
        for (size_t i = 0; i < w->metric_log.n; i++)
                if (!w->metric_log.v[i][0] || w->metric_log.v[i][0] == '/')
                        return conf_fail(error, at, "metric_log: \"%s\" must be a relative path or glob",
                                         w->metric_log.v[i]);
        if (w->complete_marker && w->complete_marker[0] && (why = conf_relative_path_problem(w->complete_marker)))
                return conf_fail(error, at, "complete_marker \"%s\" %s", w->complete_marker, why);
        if (w->metric_file && (why = conf_relative_path_problem(w->metric_file)))
                return conf_fail(error, at, "metric_file \"%s\" %s", w->metric_file, why);
        /* Markers and metric files live inside a directory checkpoint. */
        if (w->kind == KIND_FILE && w->metric_source != METRIC_NAME)
                return conf_fail(error, LOC(monitor),
                                 "metrics from files inside checkpoints need kind \"dir\" or \"any\"");
        if (w->kind == KIND_FILE && w->complete_marker && w->complete_marker[0])
                return conf_fail(error, at, "complete_marker needs kind \"dir\" or \"any\"");
        /* asked for in the watch's own group, it must have a marker to wait
         * for. One from a preset whose marker was set to "", or from the
         * defaults for every watch, goes without; under auto the marker is
         * the layout's found in each run. */
        if (w->require_marker && !(w->complete_marker && w->complete_marker[0]) && locs &&
            locs->require_marker.line > 0 && !streq_ptr(w->preset, "auto"))
                return conf_fail(error, locs->require_marker,
                                 "require_marker needs a complete_marker (the file a directory is complete with)");

        r = check_monitor(w, p, error, LOC(monitor));
        if (r < 0)
                return r;

        /* Without a monitor, "best" keeps nothing (policy.h), so such a
         * policy would delete every unpinned checkpoint once it is old. */
        if (!pol->monitor && pol->keep_last == 0 && pol->keep_every == 0)
                return conf_fail(error, at,
                                 "policy keeps nothing: without monitor keep_top_k keeps nothing; "
                                 "set keep_last or keep_every");
        if (policy_keeps_nothing(pol))
                return conf_fail(error, at, "policy keeps nothing (keep_top_k = %d, keep_last = %d, keep_every = %lld)",
                                 pol->keep_top_k, pol->keep_last, (long long)pol->keep_every);

        /* Same unit: compare here. Mixed units ("10%" and "50G") depend on
         * the filesystem and are only known at run time. */
        if (w->min_free.set && w->target_free.set && w->min_free.is_percent == w->target_free.is_percent &&
            (w->min_free.is_percent ? w->target_free.percent < w->min_free.percent
                                    : w->target_free.bytes < w->min_free.bytes)) {
                char a[32], b[32];
                return conf_fail(error, LOC(target_free), "target_free (%s) is smaller than min_free (%s)",
                                 size_spec_format(&w->target_free, a, sizeof(a)),
                                 size_spec_format(&w->min_free, b, sizeof(b)));
        }
        return 0;
#undef LOC
}

int watch_conf_validate(const struct watch_conf *w, const char *file, char error[ERROR_MAX])
{
        return watch_conf_validate_at(w, file, NULL, error);
}

struct config *config_new(void)
{
        struct config *c = calloc(1, sizeof(*c));

        if (!c)
                return NULL;
        c->log_level = LOG_INFO;
        c->check_interval_sec = DEFAULT_CHECK_INTERVAL_SEC;
        c->max_delete_per_sweep = DEFAULT_MAX_DELETE_PER_SWEEP;
        return c;
}

struct config *config_free(struct config *c)
{
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_watches; i++)
                watch_conf_finish(&c->watches[i]);
        free(c->watches);
        free(c->path);
        free(c->metrics_file);
        free(c);
        return NULL;
}

int config_add_watch(struct config *c, struct watch_conf *w)
{
        struct watch_conf *v;

        if (!w->path)
                return -EINVAL;
        for (size_t i = 0; i < c->n_watches; i++)
                if (strcmp(c->watches[i].path, w->path) == 0)
                        return -EEXIST;
        v = realloc(c->watches, (c->n_watches + 1) * sizeof(*v));
        if (!v)
                return -ENOMEM;
        c->watches = v;
        c->watches[c->n_watches++] = *w;
        memset(w, 0, sizeof(*w));
        return 0;
}
