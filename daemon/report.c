/* What ckptd tells a person: -t, -l (table or JSON). */
#include <json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "decide.h"
#include "log.h"
#include "preset.h"
#include "report.h"
#include "sweep.h"

static const char *const kind_names[_KIND_MAX] = {"files and directories", "files", "directories"};
static const char *const metric_names[_METRIC_SOURCE_MAX] = {
        "the name",
        "trainer_state.json",
        "a JSON file",
};

static void print_strv(FILE *f, const char *label, const struct strv *s)
{
        if (s->n == 0)
                return;
        fprintf(f, "  %-16s", label);
        for (size_t i = 0; i < s->n; i++) {
                _cleanup_free_ char *e = log_escape(s->v[i]);
                fprintf(f, "%s\"%s\"", i ? ", " : "", e ? e : "?");
        }
        fputc('\n', f);
}

/* A watch's strings as -t prints them: escaped like every printed name. */
struct conf_names {
        char *path, *pattern, *key_separator, *join, *monitor, *metric_file, *marker;
};

static char *escape_or(const char *s, const char *dflt)
{
        return s || dflt ? log_escape(s ? s : dflt) : NULL;
}

static void conf_names_init(struct conf_names *n, const struct watch_conf *w)
{
        *n = (struct conf_names){
                .path = escape_or(w->path, "?"),
                .pattern = escape_or(w->pattern, NULL),
                .key_separator = escape_or(w->key_separator, "="),
                .join = escape_or(w->join, "-"),
                .monitor = escape_or(w->policy.monitor, NULL),
                .metric_file = escape_or(w->metric_file, ""),
                .marker = escape_or(w->complete_marker, NULL),
        };
}

static void conf_names_finish(struct conf_names *n)
{
        free(n->path);
        free(n->pattern);
        free(n->key_separator);
        free(n->join);
        free(n->monitor);
        free(n->metric_file);
        free(n->marker);
}

/* "?" where escaping ran out of memory. */
static const char *shown(const char *e)
{
        return e ? e : "?";
}

static const char *error_text(int error, char *buf, size_t size)
{
        const char *name = strerrorname_np(error < 0 ? -error : error);

        snprintf(buf, size, "%s (%s)", strerror(error < 0 ? -error : error), name ? name : "?");
        return buf;
}

/* -t: the watch's pattern and monitor against what is on disk now: how
 * many names matched in how many runs, whether the monitor was found, and
 * with preset auto which layouts were recognised. Read only, no lock. */
static void report_disk(FILE *f, const struct watch_conf *w)
{
        struct root r = {.w = w, .fd = -1};
        struct run *runs = NULL;
        size_t n = 0, n_ckpts = 0, with_ckpts = 0, with_metric = 0, missing = 0, unknown = 0;
        const char *err = NULL;
        char buf[128];
        int k;

        k = w->pattern ? watch_pattern_compile(w, &r.pat, &err) : pattern_new_kv(w->key_separator, w->join, &r.pat);
        if (k >= 0)
                k = root_open_fd(&r);
        if (k >= 0)
                k = scan_root(r.fd, w, r.pat, now_usec(CLOCK_REALTIME), &runs, &n);
        if (k < 0) {
                fprintf(f, "  %-16snot checked: %s\n", "on disk", error_text(k, buf, sizeof(buf)));
                goto out;
        }
        for (size_t i = 0; i < n; i++) {
                struct run *run = &runs[i];

                run_decide(&w->policy, run->ckpts, run->n_ckpts, now_usec(CLOCK_REALTIME));
                n_ckpts += run->n_ckpts;
                with_ckpts += run->n_ckpts > 0;
                for (size_t j = 0; j < run->n_ckpts; j++)
                        with_metric += run->ckpts[j].has_metric;
                if (run_monitor_missing(run->ckpts, run->n_ckpts))
                        missing++;
                if (run->preset_why && !run->detected)
                        unknown++;
        }
        fprintf(f, "  %-16s%zu checkpoint%s matched in %zu of %zu director%s", "on disk", n_ckpts,
                n_ckpts == 1 ? "" : "s", with_ckpts, n, n == 1 ? "y" : "ies");
        if (n_ckpts == 0)
                fputs(" (no name matches: nothing will be touched)", f);
        fputc('\n', f);
        if (w->policy.monitor && n_ckpts > 0) {
                _cleanup_free_ char *mon = log_escape(w->policy.monitor);

                fprintf(f, "  %-16s%s found for %zu of %zu checkpoints", "monitor on disk", mon ? mon : "?",
                        with_metric, n_ckpts);
                if (missing > 0)
                        fprintf(f, "; %zu run%s kept whole, none carries it", missing, missing == 1 ? "" : "s");
                fputc('\n', f);
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *hint = NULL, *ehint = NULL, *path = NULL;

                        if (!run_monitor_missing(runs[i].ckpts, runs[i].n_ckpts) ||
                            run_monitor_hint(runs[i].ckpts, runs[i].n_ckpts, w->policy.monitor, &hint) < 0)
                                continue;
                        ehint = log_escape(hint);
                        path = log_escape(runs[i].path);
                        fprintf(f, "    %s: %s\n", path ? path : "?", ehint ? ehint : "?");
                }
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;

                if (!runs[i].detected)
                        continue;
                path = log_escape(runs[i].path);
                fprintf(f, "  %-16s%s: %s (%s)\n", "layout", path ? path : "?", runs[i].preset, runs[i].preset_why);
        }
        if (unknown > 0)
                fprintf(f, "  %-16s%zu director%s of no known layout: left alone\n", "layout", unknown,
                        unknown == 1 ? "y" : "ies");
out:
        runs_free(runs, n);
        root_finish(&r);
}

int report_config(FILE *f, const struct config *c)
{
        _cleanup_free_ char *metrics = escape_or(c->metrics_file, "");
        int status = EXIT_SUCCESS;
        char a[32], b[32];

        fprintf(f, "log_level %s, check_interval %llds, max_delete_per_sweep %d%s%s%s\n",
                log_level_to_string(c->log_level), (long long)c->check_interval_sec, c->max_delete_per_sweep,
                c->dry_run ? ", dry run" : "", c->metrics_file ? ", metrics " : "", shown(metrics));
        for (size_t i = 0; i < c->n_watches; i++) {
                const struct watch_conf *w = &c->watches[i];
                const struct policy *p = &w->policy;

                struct conf_names n;

                conf_names_init(&n, w);
                fprintf(f, "\nwatch %s%s\n", shown(n.path), w->recursive ? " (recursive)" : "");
                fprintf(f, "  %-16s%s\n", "preset", w->preset ? w->preset : "generic");
                if (streq_ptr(w->preset, "auto"))
                        fprintf(f, "  %-16sby the layout found in each directory\n", "checkpoints");
                else if (w->pattern)
                        fprintf(f, "  %-16s%s (%s)\n", "checkpoints", shown(n.pattern), kind_names[w->kind]);
                else
                        fprintf(f, "  %-16skey%sNUMBER fields joined by \"%s\" (%s)\n", "checkpoints",
                                shown(n.key_separator), shown(n.join), kind_names[w->kind]);
                if (p->monitor)
                        fprintf(f, "  %-16s%s (%s), from %s%s%s\n", "monitor", shown(n.monitor),
                                mode_to_string(p->mode), metric_names[w->metric_source],
                                w->metric_source == METRIC_JSON_FILE ? " " : "",
                                w->metric_source == METRIC_JSON_FILE ? shown(n.metric_file) : "");
                else
                        fprintf(f, "  %-16snone (best keeps nothing)\n", "monitor");
                fprintf(f, "  %-16s", "keep");
                if (p->monitor && p->keep_top_k != 0) {
                        if (p->keep_top_k < 0)
                                fprintf(f, "all with %s", shown(n.monitor));
                        else
                                fprintf(f, "best %d by %s", p->keep_top_k, shown(n.monitor));
                        fputs(" + ", f);
                }
                fprintf(f, "last %d", p->keep_last);
                if (p->keep_every > 0)
                        fprintf(f, " + every %lld", (long long)p->keep_every);
                if (p->min_age_sec > 0)
                        fprintf(f, " + younger than %llds", (long long)p->min_age_sec);
                fputs(" + pinned\n", f);
                fprintf(f, "  %-16s%gs%s%s\n", "settle", w->settle_sec,
                        !w->complete_marker ? ""
                        : w->require_marker ? ", a directory only once this appears: "
                                            : ", or when this appears: ",
                        w->complete_marker ? shown(n.marker) : "");
                print_strv(f, "pointer files", &w->pointer_files);
                print_strv(f, "exclude", &w->exclude);
                if (p->monitor && w->metric_source == METRIC_NAME)
                        print_strv(f, "metric log", &w->metric_log);
                if (w->min_free.set || w->headroom > 0) {
                        fprintf(f, "  %-16s", "floor");
                        if (w->min_free.set)
                                fprintf(f, "min_free %s%s", size_spec_format(&w->min_free, a, sizeof(a)),
                                        !w->min_free.is_percent && w->min_free.bytes < 1024 * 1024
                                                ? " (less than 1M: probably a unit left out, e.g. 10G)"
                                                : "");
                        if (w->headroom > 0)
                                fprintf(f, "%sheadroom %g x largest checkpoint", w->min_free.set ? ", " : "",
                                        w->headroom);
                        if (w->target_free.set)
                                fprintf(f, ", target_free %s", size_spec_format(&w->target_free, b, sizeof(b)));
                        fputc('\n', f);
                } else
                        fprintf(f, "  %-16soff\n", "floor");
                if (w->poll_interval_sec > 0)
                        fprintf(f, "  %-16s%llds\n", "poll", (long long)w->poll_interval_sec);
                {
                        _cleanup_free_ char *ro = watch_readonly_problem(w->path);
                        _cleanup_free_ char *ln = watch_symlink_problem(w->path);
                        if (ro) {
                                _cleanup_free_ char *esc = log_escape(ro);
                                fprintf(stderr, "ckptd: error: %s\n", esc ? esc : ro);
                                status = EXIT_FAILURE;
                        }
                        if (ln) {
                                _cleanup_free_ char *esc = log_escape(ln);
                                fprintf(stderr, "ckptd: error: %s\n", esc ? esc : ln);
                                status = EXIT_FAILURE;
                        }
                }
                report_disk(f, w);
                conf_names_finish(&n);
        }
        return status;
}

/* What c lacks when it is unmarked: the complete_marker a directory of the
 * run is to hold (the watch's, or under preset auto the one of the layout
 * found in the run), or the member a group of files is complete with
 * (TensorFlow's .index) when it has none, or none whole. NULL: nothing to
 * name. */
static const char *run_marker(const struct root *r, const struct run *run, const struct ckpt *c)
{
        const struct preset *p = preset_find(run->preset ? run->preset : r->w->preset);

        if (!c->is_dir && c->member_cut)
                return "whole .index";
        if (!c->is_dir)
                return p && p->member_last && !ckpt_has_member_with(c, p->member_last, true) ? p->member_last : NULL;
        return run->preset && p ? p->complete_marker : r->w->complete_marker;
}

/* "best#1,last,pinned(symlink)", "incomplete(no .metadata)" or "policy"
 * into a malloc'd string; marker: the one a directory lacks (unmarked). */
static char *reasons_string(const struct ckpt *c, const char *marker)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        bool first = true;

        if (!m)
                return NULL;
        if (!c->verdict.keep)
                fputs(delete_reason_to_string(c->verdict.delete_reason), m);
        for (int r = 0; r < _KEEP_REASON_MAX; r++) {
                if (!(c->verdict.reasons & (1u << r)))
                        continue;
                fprintf(m, "%s%s", first ? "" : ",", keep_reason_to_string(r));
                first = false;
                if (r == KEEP_BEST)
                        fprintf(m, "#%d", c->verdict.best_rank);
                if (r == KEEP_INCOMPLETE && c->unmarked && marker && *marker) {
                        _cleanup_free_ char *e = log_escape(marker);
                        fprintf(m, "(no %s)", e ? e : "marker");
                }
                if (r == KEEP_PINNED) {
                        bool p1 = true;
                        fputc('(', m);
                        for (int k = 0; k < _PIN_KIND_MAX; k++)
                                if (c->pins & (1u << k)) {
                                        fprintf(m, "%s%s", p1 ? "" : ",", pin_kind_to_string(k));
                                        p1 = false;
                                }
                        fputc(')', m);
                }
        }
        fclose(m);
        return buf;
}

/* "Input/output error (EIO)" */

/* "epoch=3 step=400 val_loss=0.900": each field as the name wrote it, and a
 * monitor value from a file or log in the shortest form. malloc'd. */
static char *fields_string(const struct root *r, const struct ckpt *c)
{
        const char *monitor = r->w->policy.monitor;
        char *buf = NULL, num[64];
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);

        if (!m)
                return NULL;
        for (size_t k = 0; k < c->n_fields; k++) {
                _cleanup_free_ char *field = log_escape(field_name(ckpt_field(c, k)->name_id));
                fprintf(m, "%s%s=%s", k ? " " : "", field ? field : "?", ckpt_field_text(c, k, num, sizeof(num)));
        }
        /* a metric from a file is shown like a field */
        if (c->has_metric && monitor && ckpt_field_find(c, monitor) < 0) {
                _cleanup_free_ char *field = log_escape(monitor);
                fprintf(m, "%s%s=%s", c->n_fields ? " " : "", field ? field : "?",
                        number_format(c->metric, num, sizeof(num)));
        }
        if (fclose(m) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* The name column: escaped name, "/" for a directory, "(+N files)". */
static char *name_string(const struct ckpt *c)
{
        _cleanup_free_ char *name = log_escape(c->name);
        char *p = NULL;

        if (c->n_members > 1)
                return asprintf(&p, "%s%s (+%zu file%s)", name ? name : "?", c->is_dir ? "/" : "",
                                (size_t)c->n_members - 1, c->n_members == 2 ? "" : "s") < 0
                               ? NULL
                               : p;
        return asprintf(&p, "%s%s", name ? name : "?", c->is_dir ? "/" : "") < 0 ? NULL : p;
}

/* Names and paths are escaped wherever they are printed (log_escape()):
 * a run or checkpoint name must not move the cursor, retitle the terminal,
 * reorder the line or forge another. Columns: verdict, size, fields,
 * checkpoint, reasons; the widths are those of the run's longest, and the
 * reasons come last so that a long list does not push the others. */
static void print_run_table(FILE *f, const struct root *r, const struct run *run)
{
        _cleanup_free_ char *wpath = log_escape(r->w->path), *rpath = log_escape(run->path);
        _cleanup_free_ char *monitor = r->w->policy.monitor ? log_escape(r->w->policy.monitor) : NULL;
        char **fields = NULL, **names = NULL;
        int fields_w = (int)strlen("FIELDS"), names_w = (int)strlen("CHECKPOINT");
        uint64_t bytes = 0;
        char err[128], size[16];

        fprintf(f, "run %s%s%s (%zu checkpoint%s)\n", wpath ? wpath : "?", strcmp(run->path, ".") ? "/" : "",
                strcmp(run->path, ".") ? (rpath ? rpath : "?") : "", run->n_ckpts, run->n_ckpts == 1 ? "" : "s");
        if (run->read_error != 0) {
                _cleanup_free_ char *what = log_escape(run->read_what ? run->read_what : "?");
                fprintf(f, "  kept whole: cannot read %s: %s\n", what ? what : "?",
                        error_text(run->read_error, err, sizeof(err)));
        }
        if (run->preset_why) {
                if (run->detected)
                        fprintf(f, "  layout: %s (%s)\n", run->preset, run->preset_why);
                else
                        fprintf(f, "  layout: not recognised, %s: nothing in it is touched\n", run->preset_why);
        }
        if (run_monitor_missing(run->ckpts, run->n_ckpts)) {
                _cleanup_free_ char *hint = NULL, *ehint = NULL;

                if (run_monitor_hint(run->ckpts, run->n_ckpts, r->w->policy.monitor, &hint) == 0)
                        ehint = log_escape(hint);
                fprintf(f, "  kept whole: no checkpoint carries the monitor %s (%s)\n", monitor ? monitor : "?",
                        ehint ? ehint : "?");
        }
        if (run->n_ckpts == 0)
                return;
        fields = calloc(run->n_ckpts, sizeof(*fields));
        names = calloc(run->n_ckpts, sizeof(*names));
        for (size_t i = 0; fields && names && i < run->n_ckpts; i++) {
                fields[i] = fields_string(r, &run->ckpts[i]);
                names[i] = name_string(&run->ckpts[i]);
                if (fields[i] && log_text_width(fields[i]) > fields_w)
                        fields_w = log_text_width(fields[i]);
                if (names[i] && log_text_width(names[i]) > names_w)
                        names_w = log_text_width(names[i]);
        }
        fprintf(f, "  %-7s %7s  %-*s  %-*s  %s\n", "VERDICT", "SIZE", fields_w, "FIELDS", names_w, "CHECKPOINT",
                "REASONS");
        for (size_t i = 0; i < run->n_ckpts; i++) {
                const struct ckpt *c = &run->ckpts[i];
                _cleanup_free_ char *why = reasons_string(c, run_marker(r, run, c));

                bytes += c->size_bytes;
                /* padded by columns, not bytes: an é or a CJK name keeps
                 * the reasons in line */
                fprintf(f, "  %-7s %7s  ", c->verdict.keep ? "keep" : "delete",
                        size_format(c->size_bytes, size, sizeof(size)));
                log_print_padded(f, fields && fields[i] ? fields[i] : "?", fields_w);
                fputs("  ", f);
                log_print_padded(f, names && names[i] ? names[i] : "?", names_w);
                fprintf(f, "  %s", why ? why : "?");
                if (c->read_error != 0 && run->read_error == 0)
                        fprintf(f, " (cannot read %s: %s)", ckpt_read_what(c) ? ckpt_read_what(c) : "it",
                                error_text(c->read_error, err, sizeof(err)));
                fputc('\n', f);
        }
        for (size_t i = 0; i < run->n_ckpts; i++) {
                free(fields ? fields[i] : NULL);
                free(names ? names[i] : NULL);
        }
        free(fields);
        free(names);
}

/* Names go into JSON as they are: the whole text is made safe to print by
 * json_escape_text() once serialized, so a consumer decodes the exact name
 * (but for bytes that are not UTF-8, which become U+FFFD). */
static json_object *json_name(const char *s)
{
        return json_object_new_string(s);
}

/* NaN and infinities are not JSON: they become null. */
static json_object *json_number(double v)
{
        char num[64];

        /* the shortest text that reads back as v: 0.9, not 0.90000000000000002 */
        return isfinite(v) ? json_object_new_double_s(v, number_format(v, num, sizeof(num))) : NULL;
}

/* Whether s is a number as JSON spells it: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
 * ("03", "+1", ".5" and "1." are not). */
static bool json_number_text(const char *s)
{
        if (*s == '-')
                s++;
        if (*s == '0')
                s++;
        else if (*s >= '1' && *s <= '9')
                while (*s >= '0' && *s <= '9')
                        s++;
        else
                return false;
        if (*s == '.') {
                if (!(*++s >= '0' && *s <= '9'))
                        return false;
                while (*s >= '0' && *s <= '9')
                        s++;
        }
        if (*s == 'e' || *s == 'E') {
                s++;
                if (*s == '+' || *s == '-')
                        s++;
                if (!(*s >= '0' && *s <= '9'))
                        return false;
                while (*s >= '0' && *s <= '9')
                        s++;
        }
        return *s == '\0';
}

/* Field i as the name wrote it ("0.900"), when that is a JSON number. */
static json_object *json_field(const struct ckpt *c, size_t i)
{
        double v = ckpt_field_value(c, i);
        char num[64];

        if (!isfinite(v))
                return NULL;
        ckpt_field_text(c, i, num, sizeof(num));
        if (!json_number_text(num))
                number_format(v, num, sizeof(num));
        return json_object_new_double_s(v, num);
}

/* {"what": ..., "errno": "EIO", "message": ...}, or NULL (JSON null) for none. */
static json_object *read_error_json(int error, const char *what)
{
        json_object *o;
        const char *name;

        if (error == 0)
                return NULL;
        o = json_object_new_object();
        name = strerrorname_np(-error);
        json_object_object_add(o, "what", json_name(what ? what : ""));
        json_object_object_add(o, "errno", json_object_new_string(name ? name : "?"));
        json_object_object_add(o, "message", json_object_new_string(strerror(-error)));
        return o;
}

static json_object *ckpt_json(const struct root *r, const struct run *run, const struct ckpt *c)
{
        json_object *o = json_object_new_object(), *a, *fields = json_object_new_object();
        const char *marker;

        json_object_object_add(o, "name", json_name(c->name));
        a = json_object_new_array();
        for (size_t i = 0; i < c->n_members; i++)
                json_object_array_add(a, json_name(ckpt_member(c, i)));
        json_object_object_add(o, "members", a);
        json_object_object_add(o, "directory", json_object_new_boolean(c->is_dir));
        for (size_t i = 0; i < c->n_fields; i++)
                json_object_object_add(fields, field_name(ckpt_field(c, i)->name_id), json_field(c, i));
        json_object_object_add(o, "fields", fields);
        json_object_object_add(o, "order", json_number(c->order));
        json_object_object_add(o, "order_source", json_object_new_string(order_source_to_string(c->order_source)));
        if (r->w->policy.monitor) {
                int k = ckpt_field_find(c, r->w->policy.monitor);
                json_object_object_add(o, "metric",
                                       !c->has_metric ? NULL
                                       : k >= 0 && ckpt_field_value(c, (size_t)k) == c->metric
                                               ? json_field(c, (size_t)k)
                                               : json_number(c->metric));
        }
        json_object_object_add(o, "size_bytes", json_object_new_uint64(c->size_bytes));
        json_object_object_add(o, "mtime_usec", json_object_new_int64(c->mtime_usec));
        json_object_object_add(o, "complete", json_object_new_boolean(c->complete));
        json_object_object_add(o, "marker_missing", json_object_new_boolean(c->unmarked));
        marker = c->unmarked ? run_marker(r, run, c) : NULL;
        json_object_object_add(o, "missing", marker && *marker ? json_name(marker) : NULL);
        json_object_object_add(o, "verdict", json_object_new_string(c->verdict.keep ? "keep" : "delete"));
        a = json_object_new_array();
        if (!c->verdict.keep)
                json_object_array_add(a, json_object_new_string(delete_reason_to_string(c->verdict.delete_reason)));
        for (int k = 0; k < _KEEP_REASON_MAX; k++)
                if (c->verdict.reasons & (1u << k))
                        json_object_array_add(a, json_object_new_string(keep_reason_to_string(k)));
        json_object_object_add(o, "reasons", a);
        json_object_object_add(o, "best_rank", json_object_new_int(c->verdict.best_rank));
        a = json_object_new_array();
        for (int k = 0; k < _PIN_KIND_MAX; k++)
                if (c->pins & (1u << k))
                        json_object_array_add(a, json_object_new_string(pin_kind_to_string(k)));
        json_object_object_add(o, "pins", a);
        json_object_object_add(o, "read_error", read_error_json(c->read_error, ckpt_read_what(c)));
        return o;
}

static void print_filesystems(FILE *f, const struct space *sp)
{
        for (size_t i = 0; i < sp->n_fs; i++) {
                const struct fs_state *fs = &sp->fs[i];
                char a[16], b[16], c[16], d[16];

                _cleanup_free_ char *path = log_escape(fs->path);

                if (fs->stat_error < 0) {
                        fprintf(f, "filesystem of %s: size and free space unknown (%s)%s\n", path ? path : "?",
                                strerror(-fs->stat_error), fs->configured ? ", floor unknown" : ", no floor");
                        continue;
                }
                fprintf(f, "filesystem of %s: size %s, free %s", path ? path : "?",
                        size_format(fs->total_bytes, a, sizeof(a)), size_format(fs->free_bytes, b, sizeof(b)));
                if (!fs->configured) {
                        fputs(", no floor\n", f);
                        continue;
                }
                fprintf(f, ", floor %s, target %s: %s\n", size_format(fs->floor_bytes, c, sizeof(c)),
                        size_format(fs->target_bytes, d, sizeof(d)),
                        fs->free_bytes >= fs->floor_bytes ? "ok" : "below the floor");
        }
}

static json_object *filesystems_json(const struct space *sp)
{
        json_object *a = json_object_new_array();

        for (size_t i = 0; i < sp->n_fs; i++) {
                const struct fs_state *fs = &sp->fs[i];
                json_object *o = json_object_new_object();

                json_object_object_add(o, "path", json_name(fs->path));
                /* unknown: null, not the last reading (or 0) */
                json_object_object_add(o, "size_bytes",
                                       fs->stat_error < 0 ? NULL : json_object_new_uint64(fs->total_bytes));
                json_object_object_add(o, "free_bytes",
                                       fs->stat_error < 0 ? NULL : json_object_new_uint64(fs->free_bytes));
                if (fs->stat_error < 0)
                        json_object_object_add(o, "error", json_object_new_string(strerror(-fs->stat_error)));
                json_object_object_add(o, "floor", json_object_new_boolean(fs->configured));
                if (fs->configured && fs->stat_error < 0) {
                        json_object_object_add(o, "state", json_object_new_string("unknown"));
                } else if (fs->configured) {
                        json_object_object_add(o, "floor_bytes", json_object_new_uint64(fs->floor_bytes));
                        json_object_object_add(o, "target_bytes", json_object_new_uint64(fs->target_bytes));
                        json_object_object_add(
                                o, "state",
                                json_object_new_string(fs->free_bytes >= fs->floor_bytes ? "ok" : "below-floor"));
                }
                json_object_array_add(a, o);
        }
        return a;
}

static json_object *runs_json(const struct root *r, const struct run *runs, size_t n)
{
        json_object *w = json_object_new_object(), *jruns = json_object_new_array();

        json_object_object_add(w, "path", json_name(r->w->path));
        json_object_object_add(w, "preset", json_object_new_string(r->w->preset ? r->w->preset : "generic"));
        for (size_t j = 0; j < n; j++) {
                json_object *jr = json_object_new_object(), *cks = json_object_new_array();
                json_object_object_add(jr, "path", json_name(runs[j].path));
                json_object_object_add(jr, "read_error", read_error_json(runs[j].read_error, runs[j].read_what));
                if (runs[j].preset_why) {
                        json_object_object_add(jr, "layout",
                                               runs[j].detected ? json_object_new_string(runs[j].preset) : NULL);
                        json_object_object_add(jr, "layout_why", json_object_new_string(runs[j].preset_why));
                }
                if (run_monitor_missing(runs[j].ckpts, runs[j].n_ckpts)) {
                        _cleanup_free_ char *hint = NULL;

                        if (run_monitor_hint(runs[j].ckpts, runs[j].n_ckpts, r->w->policy.monitor, &hint) == 0)
                                json_object_object_add(jr, "monitor_missing", json_name(hint));
                }
                for (size_t k = 0; k < runs[j].n_ckpts; k++)
                        json_object_array_add(cks, ckpt_json(r, &runs[j], &runs[j].ckpts[k]));
                json_object_object_add(jr, "checkpoints", cks);
                json_object_array_add(jruns, jr);
        }
        json_object_object_add(w, "runs", jruns);
        return w;
}

int report_list(FILE *f, const struct config *c, bool json)
{
        json_object *top = json ? json_object_new_object() : NULL;
        json_object *watches = json ? json_object_new_array() : NULL;
        struct roots roots;
        struct space space = {};
        int status = EXIT_SUCCESS;
        int64_t now = now_usec(CLOCK_REALTIME);
        int k = roots_open(&roots, c);

        if (k != 0)
                status = EXIT_FAILURE;
        if (k < 0) {
                json_object_put(top);
                json_object_put(watches);
                return status;
        }
        space_set_roots(&space, roots.open, roots.n_open, false);
        for (size_t i = 0; i < roots.n_open; i++) {
                struct root *r = roots.open[i];
                struct run *runs = NULL;
                size_t n = 0;

                if (sweep_decide_root(r, now, &runs, &n) < 0) {
                        status = EXIT_FAILURE;
                        continue;
                }
                for (size_t j = 0; j < n; j++) {
                        /* what -1 would decide: a save written in place
                         * since before the scan takes no place */
                        sweep_placed_being_written(r, &runs[j], &r->w->policy, now, -1, NULL);
                        space_seen(&space, r->dev, &runs[j]);
                }
                if (json)
                        json_object_array_add(watches, runs_json(r, runs, n));
                else
                        for (size_t j = 0; j < n; j++)
                                if (runs[j].n_ckpts > 0 || n == 1 || runs[j].read_error != 0)
                                        print_run_table(f, r, &runs[j]);
                runs_free(runs, n);
        }
        space_measure(&space, roots.open, roots.n_open);
        if (json) {
                json_object_object_add(top, "watches", watches);
                json_object_object_add(top, "filesystems", filesystems_json(&space));
                _cleanup_free_ char *text = json_escape_text(
                        json_object_to_json_string_ext(top, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
                if (text)
                        fprintf(f, "%s\n", text);
                else
                        status = EXIT_FAILURE;
                json_object_put(top);
        } else {
                print_filesystems(f, &space);
        }
        roots_close(&roots);
        space_finish(&space);
        return status;
}

char *report_once_totals(bool dry_run, unsigned deleted, uint64_t freed_bytes, size_t kept, uint64_t kept_bytes)
{
        char freed[16], kept_size[16], *p = NULL;

        size_format(freed_bytes, freed, sizeof(freed));
        size_format(kept_bytes, kept_size, sizeof(kept_size));
        if (asprintf(&p, "%s %u checkpoint%s, %s %s; %s %zu (%s)", dry_run ? "would delete" : "deleted", deleted,
                     deleted == 1 ? "" : "s", dry_run ? "would free" : "freed", freed, dry_run ? "would keep" : "kept",
                     kept, kept_size) < 0)
                return NULL;
        return p;
}

void report_snapshot_finish(struct report_snapshot *s)
{
        free(s->watches);
        free(s->runs);
        *s = (struct report_snapshot){};
}

char *report_status(const struct report_snapshot *s, const struct status_counts *n)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        if (!f)
                return NULL;
        fprintf(f, "watching %zu run%s, %zu checkpoint%s", n->runs, n->runs == 1 ? "" : "s", n->ckpts,
                n->ckpts == 1 ? "" : "s");
        {
                uint64_t deleted = 0, freed = 0;
                char a[16];

                for (size_t i = 0; i < _DELETE_REASON_MAX; i++) {
                        deleted += s->deleted_by_reason[i];
                        freed += s->freed_by_reason[i];
                }
                /* what it has done since start: it changes with every
                 * deletion, so STATUS= follows them */
                if (deleted > 0)
                        fprintf(f, "; deleted %" PRIu64 ", freed %s", deleted, size_format(freed, a, sizeof(a)));
        }
        for (size_t i = 0; i < s->n_fs; i++) {
                const struct fs_state *fs = &s->fs[i];
                char a[16], b[16];

                if (!fs->configured)
                        continue;
                _cleanup_free_ char *path = log_escape(fs->path);

                if (fs->stat_error < 0) {
                        fprintf(f, "; %s free space unknown (%s), FLOOR UNKNOWN", path ? path : "?",
                                strerror(-fs->stat_error));
                        continue;
                }
                fprintf(f, "; %s %s free, floor %s", path ? path : "?", size_format(fs->free_bytes, a, sizeof(a)),
                        size_format(fs->floor_bytes, b, sizeof(b)));
                if (fs->unmet)
                        fprintf(f, " (FLOOR UNMET, %s short)", size_format(fs->short_bytes, a, sizeof(a)));
        }
        for (size_t i = 0; i < s->n_watches; i++)
                if (!s->watches[i].present) {
                        _cleanup_free_ char *path = log_escape(s->watches[i].path);
                        fprintf(f, "; %s %s", path ? path : "?",
                                s->watches[i].locked    ? "locked by another ckptd"
                                : s->watches[i].symlink ? "is a symlink, not followed"
                                                        : "missing");
                }
        if (n->monitor_missing > 0)
                fprintf(f, "; %zu run%s kept whole: no checkpoint carries the monitor", n->monitor_missing,
                        n->monitor_missing == 1 ? "" : "s");
        if (n->unreadable_runs > 0)
                fprintf(f, "; %zu run%s kept whole after read errors", n->unreadable_runs,
                        n->unreadable_runs == 1 ? "" : "s");
        if (n->unreadable_ckpts > 0)
                fprintf(f, "; %zu checkpoint%s kept after read errors", n->unreadable_ckpts,
                        n->unreadable_ckpts == 1 ? "" : "s");
        if (s->dry_run)
                fputs("; dry run", f);
        fclose(f);
        return buf;
}

/* A Prometheus label value: backslash, double quote and newline escaped. */
static void put_label(FILE *f, const char *s)
{
        _cleanup_free_ char *e = log_escape(s);

        for (const char *p = e ? e : ""; *p; p++) {
                if (*p == '"' || *p == '\\')
                        fputc('\\', f);
                fputc(*p, f);
        }
}

/* A counter per deletion reason. */
static void put_reason_counter(FILE *f, const char *name, const char *help, const uint64_t *by_reason)
{
        fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
        for (int r = DELETE_POLICY; r < _DELETE_REASON_MAX; r++)
                fprintf(f, "%s{reason=\"%s\"} %llu\n", name, delete_reason_to_string(r),
                        (unsigned long long)by_reason[r]);
}

/* One gauge per filesystem with a floor: its free bytes or its floor. One
 * that cannot be measured has none: a stale reading would pass for a
 * current one (ckptd_floor_unknown says so). */
static void put_fs_gauge(FILE *f, const struct report_snapshot *s, const char *name, const char *help, bool floor)
{
        fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
        for (size_t i = 0; i < s->n_fs; i++) {
                const struct fs_state *fs = &s->fs[i];

                if (!fs->configured || fs->stat_error < 0)
                        continue;
                fprintf(f, "%s{path=\"", name);
                put_label(f, fs->path);
                fprintf(f, "\"} %llu\n", (unsigned long long)(floor ? fs->floor_bytes : fs->free_bytes));
        }
}

int report_metrics(const struct report_snapshot *s, struct stat *ret_st)
{
        const char *path = s->metrics_file;
        _cleanup_free_ char *tmp = NULL;
        struct stat st;
        bool failed;
        FILE *f;

        if (!path || !*path)
                return 0;
        if (asprintf(&tmp, "%s.tmp.%d", path, (int)getpid()) < 0)
                return -ENOMEM;
        f = fopen(tmp, "we");
        if (!f)
                return log_warning_errno(-errno, "cannot write %s: %m, ignoring", tmp);

        fputs("# HELP ckptd_checkpoints Checkpoints in a run after its last sweep.\n"
              "# TYPE ckptd_checkpoints gauge\n",
              f);
        for (size_t i = 0; i < s->n_runs; i++) {
                fputs("ckptd_checkpoints{watch=\"", f);
                put_label(f, s->runs[i].watch);
                fputs("\",run=\"", f);
                put_label(f, s->runs[i].path);
                fprintf(f, "\"} %zu\n", s->runs[i].n_ckpts);
        }
        put_reason_counter(f, "ckptd_deleted_total", "Checkpoints deleted, by reason.", s->deleted_by_reason);
        put_reason_counter(f, "ckptd_freed_bytes_total", "Bytes freed by deletions, by reason.", s->freed_by_reason);
        fputs("# HELP ckptd_last_event_timestamp_seconds When the last checkpoint event was seen.\n"
              "# TYPE ckptd_last_event_timestamp_seconds gauge\n",
              f);
        fprintf(f, "ckptd_last_event_timestamp_seconds %.3f\n", (double)s->last_event_usec / 1e6);
        put_fs_gauge(f, s, "ckptd_free_bytes", "Free space on a filesystem with a floor.", false);
        put_fs_gauge(f, s, "ckptd_floor_bytes", "The free-space floor of a filesystem.", true);
        fputs("# HELP ckptd_floor_unmet 1 while some filesystem stays below its floor.\n"
              "# TYPE ckptd_floor_unmet gauge\n",
              f);
        fprintf(f, "ckptd_floor_unmet %d\n", s->floor_unmet ? 1 : 0);
        fputs("# HELP ckptd_floor_unknown 1 while the free space of some filesystem with a floor cannot be read.\n"
              "# TYPE ckptd_floor_unknown gauge\n",
              f);
        fprintf(f, "ckptd_floor_unknown %d\n", s->floor_unknown ? 1 : 0);
        fprintf(f,
                "# HELP ckptd_read_errors_total Failed reads that kept a run or checkpoint or left a floor unknown, "
                "each logged once.\n"
                "# TYPE ckptd_read_errors_total counter\n"
                "ckptd_read_errors_total %llu\n"
                "# HELP ckptd_unreadable_runs Runs kept whole after a read error in their last sweep.\n"
                "# TYPE ckptd_unreadable_runs gauge\n"
                "ckptd_unreadable_runs %zu\n"
                "# HELP ckptd_unreadable_checkpoints Checkpoints of other runs kept after a read error.\n"
                "# TYPE ckptd_unreadable_checkpoints gauge\n"
                "ckptd_unreadable_checkpoints %zu\n",
                (unsigned long long)s->read_errors_total, s->counts.unreadable_runs, s->counts.unreadable_ckpts);
        fputs("# HELP ckptd_watch_read_only 1 while a watch is on a read-only mount for ckptd (nothing deleted).\n"
              "# TYPE ckptd_watch_read_only gauge\n",
              f);
        for (size_t i = 0; i < s->n_watches; i++) {
                fputs("ckptd_watch_read_only{watch=\"", f);
                put_label(f, s->watches[i].path);
                fprintf(f, "\"} %d\n", s->watches[i].read_only ? 1 : 0);
        }
        fprintf(f,
                "# HELP ckptd_reload_rejected 1 while the last reload's config was rejected.\n"
                "# TYPE ckptd_reload_rejected gauge\n"
                "ckptd_reload_rejected %d\n",
                s->reload_rejected ? 1 : 0);

        /* closed whatever failed */
        failed = fflush(f) != 0 || ferror(f) || fstat(fileno(f), &st) < 0;
        if (fclose(f) != 0 || failed) {
                unlink(tmp);
                return log_warning_errno(-EIO, "cannot write %s, ignoring", tmp);
        }
        if (rename(tmp, path) < 0) {
                int r = -errno;
                unlink(tmp);
                return log_warning_errno(r, "cannot rename %s to %s: %m, ignoring", tmp, path);
        }
        if (ret_st)
                *ret_st = st;
        return 1;
}
