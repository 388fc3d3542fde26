/* ckptd: argv, modes, and a short run(). The daemon's wiring is manager.c. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "log.h"
#include "manager.h"
#include "preset.h"
#include "report.h"
#include "sweep.h"

#define DEFAULT_CONFIG "/etc/ckptd/ckptd.conf"

enum run_mode {
        MODE_DAEMON,
        MODE_TEST,
        MODE_ONCE,
        MODE_LIST,
        _RUN_MODE_MAX,
};

struct options {
        enum run_mode mode;
        const char *config_path;
        bool dry_run;
        bool json;
        int log_level; /* -1: from the config */
        enum log_target log_target;
        enum log_format log_format;
        struct config *adhoc; /* built from -w and its flags */
        bool has_lock_wait;
        long lock_wait;  /* --lock-wait: overrides lock_wait */
        long max_delete; /* --max-delete: overrides max_delete_per_sweep; 0: not given */
};

static void help(void)
{
        printf("Usage: ckptd [OPTIONS]\n"
               "Keep the best and newest ML checkpoints, delete the rest, keep disk free.\n\n"
               "Modes:\n"
               "  (none)               run the daemon in the foreground\n"
               "  -t, --test           check the config and print the effective policy\n"
               "  -1, --once           one sweep (retention and floor), then exit\n"
               "  -l, --list           list every run: checkpoints, fields, verdicts, reasons\n"
               "  status [--json]      ask the running daemon: runs, decisions, free space, reloads\n"
               "  reload [PID]         reload the running daemon and wait: exit 1 if it rejects the config\n\n"
               "Options:\n"
               "  -c, --config FILE    config file (default $CKPTD_CONFIG or " DEFAULT_CONFIG ")\n"
               "  -n, --dry-run        decide and log, delete nothing\n"
               "      --json           with -l: JSON output\n"
               "      --log-level L    debug, info, notice, warning (warn), err (error)\n"
               "      --log-target T   auto, stderr, journal\n"
               "      --log-format F   text, json (stderr lines)\n"
               "      --lock-wait SEC  wait for a root another ckptd holds (-1: no limit)\n"
               "  -h, --help           this help\n"
               "  -V, --version        print the version\n\n"
               "Ad hoc watch (no config file):\n"
               "  -w, --watch DIR      watch DIR (repeatable); the flags below apply to each\n"
               "      --preset P       generic lightning huggingface deepspeed orbax megatron nemo dcp\n"
               "                       tensorflow keras auto\n"
               "      --pattern T      name template, e.g. 'epoch_{epoch}-val_loss={val_loss}.ckpt'\n"
               "      --monitor M      metric to rank by\n"
               "      --mode min|max   whether lower or higher is better\n"
               "      --keep-top-k K   keep the K best (-1: all with the metric)\n"
               "      --keep-last N    keep the N newest\n"
               "      --keep-every N   keep every step/epoch that is a multiple of N\n"
               "      --min-age T      keep checkpoints younger than T (seconds, or 30min, 2h, 1d)\n"
               "      --settle T       quiet time before a checkpoint counts as written (2, 2s, 500ms)\n"
               "      --min-free SIZE  free-space floor: 50G (K/M/G/T, base 1024), N%%, or bytes\n"
               "      --target-free SIZE  free space to reach once below the floor\n"
               "      --headroom X     floor at least X times the largest checkpoint\n"
               "      --no-recursive   only the directory itself is a run\n"
               "      --max-delete N   deletions per sweep at most (default 1000)\n"
               "See ckptd(8) and ckptd.conf(5).\n");
}

enum {
        ARG_JSON = 0x100,
        ARG_LOG_LEVEL,
        ARG_LOG_TARGET,
        ARG_LOG_FORMAT,
        ARG_PRESET,
        ARG_PATTERN,
        ARG_MONITOR,
        ARG_MODE,
        ARG_KEEP_TOP_K,
        ARG_KEEP_LAST,
        ARG_KEEP_EVERY,
        ARG_MIN_AGE,
        ARG_SETTLE,
        ARG_MIN_FREE,
        ARG_TARGET_FREE,
        ARG_HEADROOM,
        ARG_NO_RECURSIVE,
        ARG_MAX_DELETE,
        ARG_LOCK_WAIT,
};

static const struct option long_options[] = {{"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {"config", required_argument, NULL, 'c'},
                                             {"test", no_argument, NULL, 't'},
                                             {"once", no_argument, NULL, '1'},
                                             {"list", no_argument, NULL, 'l'},
                                             {"dry-run", no_argument, NULL, 'n'},
                                             {"watch", required_argument, NULL, 'w'},
                                             {"json", no_argument, NULL, ARG_JSON},
                                             {"log-level", required_argument, NULL, ARG_LOG_LEVEL},
                                             {"log-target", required_argument, NULL, ARG_LOG_TARGET},
                                             {"log-format", required_argument, NULL, ARG_LOG_FORMAT},
                                             {"preset", required_argument, NULL, ARG_PRESET},
                                             {"pattern", required_argument, NULL, ARG_PATTERN},
                                             {"monitor", required_argument, NULL, ARG_MONITOR},
                                             {"mode", required_argument, NULL, ARG_MODE},
                                             {"keep-top-k", required_argument, NULL, ARG_KEEP_TOP_K},
                                             {"keep-last", required_argument, NULL, ARG_KEEP_LAST},
                                             {"keep-every", required_argument, NULL, ARG_KEEP_EVERY},
                                             {"min-age", required_argument, NULL, ARG_MIN_AGE},
                                             {"settle", required_argument, NULL, ARG_SETTLE},
                                             {"min-free", required_argument, NULL, ARG_MIN_FREE},
                                             {"target-free", required_argument, NULL, ARG_TARGET_FREE},
                                             {"headroom", required_argument, NULL, ARG_HEADROOM},
                                             {"no-recursive", no_argument, NULL, ARG_NO_RECURSIVE},
                                             {"max-delete", required_argument, NULL, ARG_MAX_DELETE},
                                             {"lock-wait", required_argument, NULL, ARG_LOCK_WAIT},
                                             {}};

/* The ad-hoc flags, kept as given until every -w is known. */
struct adhoc {
        const char *dirs[64];
        size_t n_dirs;
        const char *preset;
        const char *pattern;
        const char *monitor;
        const char *mode;
        const char *keep_top_k, *keep_last, *keep_every, *min_age, *settle;
        const char *min_free, *target_free, *headroom;
        bool no_recursive;
};

/* "ckptd: " and the message on stderr, escaped as a log line is: it
 * quotes what was given on the command line, which may hold any byte. */
static void _printf_(1, 2) cli_error(const char *fmt, ...)
{
        _cleanup_free_ char *msg = NULL, *esc = NULL;
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vasprintf(&msg, fmt, ap);
        va_end(ap);
        esc = r < 0 ? NULL : log_escape(msg);
        fprintf(stderr, "ckptd: %s\n", esc ? esc : "(out of memory)");
}

/* A flag's value in the forms and within the range its config key accepts
 * (conftext.c, conf_range_of), so that -w and the config file agree and
 * nothing is narrowed silently: decimal, or hexadecimal after 0x. Not base
 * 0: strtol would read "010" as octal eight, where the config reads ten. */
static int parse_long(const char *s, const char *what, const char *key, long *ret)
{
        bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
        char *end;
        const struct conf_range *r;
        long v;

        errno = 0;
        v = strtol(s, &end, hex ? 16 : 10);
        if (errno || end == s || *end) {
                cli_error("%s: invalid value '%s' (an integer, decimal or hexadecimal: 16, 0x10)", what, s);
                return -EINVAL;
        }
        /* compared as integers: 2^53 + 1 is 2^53 as a double */
        r = conf_range_of(key);
        if (r && (v < (long)r->min || v > (long)r->max)) {
                fprintf(stderr, "ckptd: %s: %s: must be an integer from %ld to %ld, got %ld\n", what, key, (long)r->min,
                        (long)r->max, v);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

static int parse_double(const char *s, const char *what, const char *key, double *ret)
{
        char error[ERROR_MAX];
        char *end;
        double v;

        errno = 0;
        v = strtod(s, &end);
        if (errno || end == s || *end || !isfinite(v)) {
                cli_error("%s: invalid value '%s'", what, s);
                return -EINVAL;
        }
        if (conf_range_check(key, v, error) < 0) {
                fprintf(stderr, "ckptd: %s: %s\n", what, error);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

/* A time span (duration_parse()), within key's range. */
static int parse_duration(const char *s, const char *what, const char *key, double *ret)
{
        char error[ERROR_MAX];
        double v;

        if (duration_parse(s, &v) < 0) {
                cli_error("%s: invalid duration '%s' (" DURATION_HELP ")", what, s);
                return -EINVAL;
        }
        if (conf_range_check(key, v, error) < 0) {
                fprintf(stderr, "ckptd: %s: %s\n", what, error);
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

static int adhoc_size(const char *s, const char *what, struct size_spec *ret)
{
        char buf[32];

        if (size_parse(s, ret) < 0) {
                cli_error("%s: invalid size '%s' (bytes, or with K, M, G, T: 50G; or N%%: 10%%)", what, s);
                return -EINVAL;
        }
        /* a plain number is bytes, as in the config file; a floor of a few
         * bytes is almost certainly a unit left out */
        if (!ret->is_percent && ret->bytes > 0 && ret->bytes < 1024 * 1024)
                cli_error("warning: %s %s is %s, less than 1M: did you mean %sG? (sizes take K, M, G, T or %%)", what,
                          s, size_spec_format(ret, buf, sizeof(buf)), s);
        return 0;
}

/* Apply the flags to one watch. Returns 0 or -EINVAL after printing why. */
static int adhoc_watch(const struct adhoc *a, const char *dir, struct watch_conf *w)
{
        _cleanup_free_ char *abs = realpath(dir, NULL);
        char error[ERROR_MAX];
        long v;

        /* a directory that does not exist yet is watched for its arrival */
        if (!abs && dir[0] != '/') {
                _cleanup_free_ char *cwd = getcwd(NULL, 0);
                if (!cwd || asprintf(&abs, "%s/%s", cwd, dir) < 0) {
                        cli_error("%s: %m", dir);
                        return -EINVAL;
                }
        }
        if (watch_conf_init(w, abs ? abs : dir, a->preset ? a->preset : "generic", error) < 0) {
                cli_error("%s", error);
                return -EINVAL;
        }
        if (a->pattern) {
                free(w->pattern);
                w->pattern = strdup(a->pattern);
        }
        if (a->monitor) {
                /* "--monitor $M" with M unset would be "no monitor": best
                 * keeps nothing, past the checks a monitor asks for */
                if (!*a->monitor) {
                        cli_error("--monitor: an empty name; leave the option out for a policy without a metric");
                        return -EINVAL;
                }
                free(w->policy.monitor);
                w->policy.monitor = strdup(a->monitor);
        }
        if (a->mode) {
                int m = mode_from_string(a->mode);
                if (m < 0) {
                        cli_error("--mode: expected min or max, got '%s'", a->mode);
                        return -EINVAL;
                }
                w->policy.mode = (enum mode)m;
        }
        if (a->keep_top_k) {
                if (parse_long(a->keep_top_k, "--keep-top-k", "keep_top_k", &v) < 0)
                        return -EINVAL;
                w->policy.keep_top_k = (int)v;
        }
        if (a->keep_last) {
                if (parse_long(a->keep_last, "--keep-last", "keep_last", &v) < 0)
                        return -EINVAL;
                w->policy.keep_last = (int)v;
        }
        if (a->keep_every) {
                if (parse_long(a->keep_every, "--keep-every", "keep_every", &v) < 0)
                        return -EINVAL;
                w->policy.keep_every = v;
        }
        if (a->min_age) {
                double sec;
                if (parse_duration(a->min_age, "--min-age", "min_age", &sec) < 0)
                        return -EINVAL;
                w->policy.min_age_sec = (int64_t)sec;
        }
        if (a->settle && parse_duration(a->settle, "--settle", "settle", &w->settle_sec) < 0)
                return -EINVAL;
        if (a->headroom && parse_double(a->headroom, "--headroom", "headroom", &w->headroom) < 0)
                return -EINVAL;
        if (a->min_free && adhoc_size(a->min_free, "--min-free", &w->min_free) < 0)
                return -EINVAL;
        if (a->target_free && adhoc_size(a->target_free, "--target-free", &w->target_free) < 0)
                return -EINVAL;
        if (a->no_recursive)
                w->recursive = false;
        if (watch_conf_validate(w, "command line", error) < 0) {
                cli_error("%s", error);
                return -EINVAL;
        }
        return 0;
}

static int adhoc_config(const struct adhoc *a, struct config **ret)
{
        struct config *c = config_new();

        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < a->n_dirs; i++) {
                struct watch_conf w = {};
                int r = adhoc_watch(a, a->dirs[i], &w);

                if (r >= 0) {
                        r = config_add_watch(c, &w);
                        _cleanup_free_ char *esc = r < 0 ? log_escape(a->dirs[i]) : NULL;
                        if (r == -EEXIST)
                                fprintf(stderr, "ckptd: --watch %s given twice\n", esc ? esc : "?");
                        else if (r < 0)
                                fprintf(stderr, "ckptd: --watch %s: %s\n", esc ? esc : "?", strerror(-r));
                }
                if (r < 0) {
                        watch_conf_finish(&w);
                        config_free(c);
                        return -EINVAL;
                }
        }
        /* as in the config file: one policy per tree */
        size_t outer, inner;
        int nested = config_find_nested(c, &outer, &inner);
        if (nested > 0) {
                _cleanup_free_ char *in = log_escape(c->watches[inner].path), *out = log_escape(c->watches[outer].path);
                if (nested == 2)
                        fprintf(stderr, "ckptd: --watch %s is the directory of --watch %s, spelled another way\n",
                                in ? in : "?", out ? out : "?");
                else
                        fprintf(stderr, "ckptd: --watch %s is inside --watch %s; drop one, or add --no-recursive\n",
                                in ? in : "?", out ? out : "?");
                config_free(c);
                return -EINVAL;
        }
        *ret = c;
        return 0;
}

/* After getopt's own "unrecognized option '--keep-topk'": the option it
 * probably meant. */
static void suggest_option(const char *arg)
{
        const char *names[ELEMENTSOF(long_options)];
        char typed[64];
        size_t n = 0, len;
        const char *near;

        if (!arg || strncmp(arg, "--", 2) != 0)
                return;
        arg += 2;
        len = strcspn(arg, "=");
        if (len == 0 || len >= sizeof(typed))
                return;
        memcpy(typed, arg, len);
        typed[len] = '\0';
        for (size_t i = 0; long_options[i].name; i++)
                if (strcmp(long_options[i].name, typed) == 0)
                        return; /* known: the error was its argument */
                else
                        names[n++] = long_options[i].name;
        names[n] = NULL;
        near = name_suggest(typed, names);
        if (near)
                fprintf(stderr, "ckptd: did you mean '--%s'?\n", near);
}

/* Whether arg is "--NAME=..." for a long option of ours (or an
 * abbreviation of one, as getopt takes them) that takes no argument and
 * whose value is val. */
static bool is_flag_given_value(const char *arg, int val)
{
        size_t len;

        if (strncmp(arg, "--", 2) != 0 || !strchr(arg, '='))
                return false;
        arg += 2;
        len = strcspn(arg, "=");
        for (size_t i = 0; long_options[i].name; i++)
                if (strncmp(long_options[i].name, arg, len) == 0 && long_options[i].has_arg == no_argument &&
                    long_options[i].val == val)
                        return true;
        return false;
}

/* What getopt refused (optopt, and arg, the argv entry before optind), said
 * as getopt would, escaped; and a near option, if any. */
static void bad_option(const char *arg)
{
        /* the one long-option error that sets optopt; else optopt is a
         * short option's letter, and arg may be an earlier entry (the
         * letter's cluster is not done) */
        if (optopt != 0 && is_flag_given_value(arg, optopt)) {
                cli_error("option '%.*s' takes no argument", (int)strcspn(arg, "="), arg);
                return;
        }
        if (optopt != 0) {
                cli_error("invalid option -- '%c'", optopt);
                return;
        }
        cli_error("unrecognized or ambiguous option '%s'", arg);
        suggest_option(arg);
}

static const char *const mode_flags[_RUN_MODE_MAX] = {
        [MODE_TEST] = "-t/--test",
        [MODE_ONCE] = "-1/--once",
        [MODE_LIST] = "-l/--list",
};

/* -t, -1 and -l are modes: one at a time. */
static int set_mode(struct options *o, enum run_mode m)
{
        if (o->mode != MODE_DAEMON && o->mode != m) {
                fprintf(stderr, "ckptd: %s and %s exclude each other: give one mode\n", mode_flags[o->mode],
                        mode_flags[m]);
                return -EINVAL;
        }
        o->mode = m;
        return 0;
}

/* Returns 0 to run, 1 to exit 0 (help, version), or -EINVAL (usage). */
static int parse_argv(int argc, char *argv[], struct options *o)
{
        struct adhoc a = {};
        int c, k;

        *o = (struct options){.mode = MODE_DAEMON, .log_level = -1, .log_target = LOG_TARGET_AUTO};
        /* getopt's own messages would quote an argument raw: ours, escaped */
        opterr = 0;
        while ((c = getopt_long(argc, argv, ":hVc:t1lnw:", long_options, NULL)) >= 0) {
                switch (c) {
                case 'h': help(); return 1;
                case 'V': printf("ckptd " CKPTD_VERSION "\n"); return 1;
                case 'c': o->config_path = optarg; break;
                case 't':
                        if (set_mode(o, MODE_TEST) < 0)
                                return -EINVAL;
                        break;
                case '1':
                        if (set_mode(o, MODE_ONCE) < 0)
                                return -EINVAL;
                        break;
                case 'l':
                        if (set_mode(o, MODE_LIST) < 0)
                                return -EINVAL;
                        break;
                case 'n': o->dry_run = true; break;
                case 'w':
                        if (a.n_dirs >= ELEMENTSOF(a.dirs)) {
                                fprintf(stderr, "ckptd: too many --watch directories (at most %zu)\n",
                                        ELEMENTSOF(a.dirs));
                                return -EINVAL;
                        }
                        /* an unset variable ("-w $DIR") is not the current directory */
                        if (!*optarg) {
                                fprintf(stderr, "ckptd: --watch: an empty path; give a directory (. for this one)\n");
                                return -EINVAL;
                        }
                        a.dirs[a.n_dirs++] = optarg;
                        break;
                case ARG_JSON: o->json = true; break;
                case ARG_LOG_LEVEL:
                        o->log_level = log_level_from_string(optarg);
                        if (o->log_level < 0) {
                                const char *near = log_level_suggest(optarg);
                                cli_error("--log-level: unknown level '%s'%s%s%s (accepted: debug, info, notice, "
                                          "warning or warn, err or error, crit, alert, emerg)",
                                          optarg, near ? "; did you mean '" : "", near ? near : "", near ? "'?" : "");
                                return -EINVAL;
                        }
                        break;
                case ARG_LOG_TARGET:
                        k = log_target_from_string(optarg);
                        if (k < 0) {
                                cli_error("--log-target: unknown target '%s' (accepted: auto, stderr, journal)",
                                          optarg);
                                return -EINVAL;
                        }
                        o->log_target = (enum log_target)k;
                        break;
                case ARG_LOG_FORMAT:
                        k = log_format_from_string(optarg);
                        if (k < 0) {
                                cli_error("unknown log format '%s' (text, json)", optarg);
                                return -EINVAL;
                        }
                        o->log_format = (enum log_format)k;
                        break;
                case ARG_PRESET: a.preset = optarg; break;
                case ARG_PATTERN: a.pattern = optarg; break;
                case ARG_MONITOR: a.monitor = optarg; break;
                case ARG_MODE: a.mode = optarg; break;
                case ARG_KEEP_TOP_K: a.keep_top_k = optarg; break;
                case ARG_KEEP_LAST: a.keep_last = optarg; break;
                case ARG_KEEP_EVERY: a.keep_every = optarg; break;
                case ARG_MIN_AGE: a.min_age = optarg; break;
                case ARG_SETTLE: a.settle = optarg; break;
                case ARG_MIN_FREE: a.min_free = optarg; break;
                case ARG_TARGET_FREE: a.target_free = optarg; break;
                case ARG_HEADROOM: a.headroom = optarg; break;
                case ARG_NO_RECURSIVE: a.no_recursive = true; break;
                case ARG_MAX_DELETE:
                        if (parse_long(optarg, "--max-delete", "max_delete_per_sweep", &o->max_delete) < 0)
                                return -EINVAL;
                        break;
                case ARG_LOCK_WAIT:
                        if (parse_long(optarg, "--lock-wait", "lock_wait", &o->lock_wait) < 0)
                                return -EINVAL;
                        o->has_lock_wait = true;
                        break;
                case ':': cli_error("option '%s' needs an argument", argv[optind - 1]); return -EINVAL;
                default: bad_option(argv[optind - 1]); return -EINVAL;
                }
        }
        if (optind < argc) {
                cli_error("unexpected argument '%s'", argv[optind]);
                return -EINVAL;
        }
        if (a.n_dirs > 0 && o->config_path) {
                fprintf(stderr, "ckptd: --watch and --config exclude each other\n");
                return -EINVAL;
        }
        if (a.n_dirs == 0 &&
            (a.preset || a.pattern || a.monitor || a.mode || a.keep_top_k || a.keep_last || a.keep_every || a.min_age ||
             a.settle || a.min_free || a.target_free || a.headroom || a.no_recursive)) {
                fprintf(stderr, "ckptd: watch flags need --watch DIR\n");
                return -EINVAL;
        }
        /* a daemon reads max_delete_per_sweep from its file again at each
         * reload, where a flag would silently stop counting */
        if (o->max_delete > 0 && a.n_dirs == 0 && o->mode == MODE_DAEMON) {
                fprintf(stderr, "ckptd: --max-delete with a config file goes with -1, -l or -t; the daemon takes "
                                "max_delete_per_sweep from the file\n");
                return -EINVAL;
        }
        if (o->json && o->mode != MODE_LIST) {
                fprintf(stderr, "ckptd: --json goes with --list\n");
                return -EINVAL;
        }
        if (a.n_dirs > 0 && adhoc_config(&a, &o->adhoc) < 0)
                return -EINVAL;
        return 0;
}

/* Load the config; *ret_path is the file it came from (NULL for --watch),
 * which SIGHUP reads again. */
static int load_config(const struct options *o, struct config **ret, const char **ret_path)
{
        char error[ERROR_MAX];
        const char *path;

        *ret_path = NULL;
        if (o->adhoc) {
                *ret = o->adhoc;
                return 0;
        }
        path = o->config_path ? o->config_path : getenv("CKPTD_CONFIG");
        if (!path || !*path)
                path = DEFAULT_CONFIG;
        if (config_load(path, ret, error) < 0) {
                bool json = o->log_format == LOG_FORMAT_JSON;
                char hint[256];

                /* FILE:LINE: what, as a compiler says it; a value quoted
                 * in it is the file's, escaped as any name */
                if (json) {
                        log_struct(LOG_ERR, &(struct log_fields){.message_id = MSGID_CONFIG_REJECTED, .path = path},
                                   "%s", error);
                } else {
                        _cleanup_free_ char *e = log_escape(error);
                        fprintf(stderr, "%s\n", e ? e : "(out of memory)");
                }
                /* the first command most people try: say what else works */
                if (access(path, F_OK) < 0 && errno == ENOENT) {
                        snprintf(hint, sizeof(hint),
                                 "no config file; %s, or name a directory with -w DIR (e.g. ckptd %s-w ./checkpoints "
                                 "--preset lightning)",
                                 o->config_path ? "check the path given with -c" : "give one with -c FILE",
                                 o->mode == MODE_LIST   ? "-l "
                                 : o->mode == MODE_ONCE ? "-1 -n "
                                 : o->mode == MODE_TEST ? "-t "
                                                        : "");
                        if (json)
                                log_notice("%s", hint);
                        else
                                fprintf(stderr, "ckptd: %s\n", hint);
                }
                return -EINVAL;
        }
        *ret_path = path;
        return 0;
}

static int run(const struct options *o)
{
        struct config *c = NULL;
        const char *path;
        int r;

        if (load_config(o, &c, &path) < 0)
                return EXIT_FAILURE;
        if (o->log_level >= 0)
                c->log_level = o->log_level; /* -t shows the level in effect */
        log_set_level(c->log_level);
        if (o->has_lock_wait)
                c->lock_wait_sec = o->lock_wait;
        if (o->max_delete > 0)
                c->max_delete_per_sweep = (int)o->max_delete;
        switch (o->mode) {
        case MODE_TEST:
                r = report_config(stdout, c);
                control_print_access(stdout, c, path);
                break;
        case MODE_LIST: r = report_list(stdout, c, o->json); break;
        case MODE_ONCE: r = manager_once(c, o->dry_run || c->dry_run); break;
        default:
                r = manager_run(c, path, o->dry_run, o->log_level);
                c = NULL; /* the manager owns it */
                break;
        }
        config_free(c);
        return r;
}

int main(int argc, char *argv[])
{
        struct options o;
        int r;

        /* `ckptd status`, `ckptd reload`: ask the running daemon */
        if (argc > 1 && control_is_command(argv[1]))
                return control_main(argc - 1, argv + 1);
        r = parse_argv(argc, argv, &o);

        if (r < 0) {
                fprintf(stderr, "Try 'ckptd --help'.\n");
                return 2;
        }
        if (r > 0)
                return EXIT_SUCCESS;
        log_open(o.log_target);
        log_set_format(o.log_format);
        return run(&o);
}
