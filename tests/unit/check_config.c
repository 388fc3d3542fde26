/* The config file: every key lands where it should, precedence holds, every
 * mistake an operator can make is an error that names file and line. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"
#include "preset.h"

Suite *config_suite(void);

/* A watch that is valid on its own, for cases about something else. */
#define WATCH_OK "watch = ( { path = \"/d\"; pattern = \"s{step}\"; } );\n"

static struct config *load_ok(const char *text)
{
        char error[ERROR_MAX] = "";
        struct config *c = NULL;
        int r = config_load_string(text, "t.conf", &c, error);

        ck_assert_msg(r == 0, "r = %d, error: %s\nfor:\n%s", r, error, text);
        ck_assert_ptr_nonnull(c);
        return c;
}

static bool has(const struct strv *s, const char *v)
{
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->v[i], v) == 0)
                        return true;
        return false;
}

/* An error names its file and line, and gives its reason, whatever the
 * length of the file's path and of the value it quotes (each up to a
 * path's length); one longer still is cut where a character begins, and
 * says so. */
START_TEST(test_long_error_keeps_its_reason)
{
        char error[ERROR_MAX] = "", name[8100], text[4096];
        struct config *c = NULL;
        size_t n = 0, lead = 0, cont = 0;

        /* a path of 699 bytes, a pattern of 808 (the longest 1024) */
        memset(name, 'a', 699);
        name[699] = '\0';
        n = (size_t)snprintf(text, sizeof(text), "watch = ( { path = \"/d\"; pattern = \"bad{step");
        for (int i = 0; i < 400; i++)
                n += (size_t)snprintf(text + n, sizeof(text) - n, "\xc3\xa9"); /* é, two bytes */
        snprintf(text + n, sizeof(text) - n, "\"; } );\n");
        ck_assert_int_eq(config_load_string(text, name, &c, error), -EINVAL);
        ck_assert_ptr_null(c);
        ck_assert(strncmp(error, name, strlen(name)) == 0);
        ck_assert_msg(strncmp(error + strlen(name), ":1: ", 4) == 0, "%s", error);
        ck_assert_msg(strstr(error, "unmatched '{'"), "%s", error + strlen(error) - 80);

        /* a name longer than any path, of é's: cut between two */
        n = 0;
        while (n + 2 < sizeof(name))
                n += (size_t)snprintf(name + n, sizeof(name) - n, "\xc3\xa9");
        ck_assert_int_eq(config_load_string(text, name, &c, error), -EINVAL);
        ck_assert_uint_ge(strlen(error), ERROR_MAX - 3); /* one character lost at most */
        ck_assert_str_eq(error + strlen(error) - 3, "...");
        for (const unsigned char *p = (const unsigned char *)error; *p; p++) {
                lead += *p == 0xc3;
                cont += *p == 0xa9;
        }
        ck_assert_uint_eq(lead, cont);
}
END_TEST

/* Durations are seconds, or strings with a unit as the -w flags take them. */
START_TEST(test_durations)
{
        struct config *c = load_ok("check_interval = \"2min\";\n"
                                   "lock_wait = \"-1\";\n"
                                   "watch = (\n"
                                   "  { path = \"/a\"; pattern = \"s{step}\"; settle = \"500ms\"; min_age = \"2h\";\n"
                                   "    poll_interval = \"1m\"; },\n"
                                   "  { path = \"/b\"; pattern = \"s{step}\"; settle = \"1.5\"; min_age = \"1d\"; },\n"
                                   "  { path = \"/c\"; pattern = \"s{step}\"; settle = 3; min_age = 60; }\n"
                                   ");\n");

        ck_assert_int_eq(c->check_interval_sec, 120);
        ck_assert_int_eq(c->lock_wait_sec, -1);
        ck_assert_double_eq(c->watches[0].settle_sec, 0.5);
        ck_assert_int_eq(c->watches[0].policy.min_age_sec, 7200);
        ck_assert_int_eq(c->watches[0].poll_interval_sec, 60);
        ck_assert_double_eq(c->watches[1].settle_sec, 1.5);
        ck_assert_int_eq(c->watches[1].policy.min_age_sec, 86400);
        ck_assert_double_eq(c->watches[2].settle_sec, 3);
        ck_assert_int_eq(c->watches[2].policy.min_age_sec, 60);
        config_free(c);

        /* "-0" is 0: shown back as 0s, not -0s */
        c = load_ok("watch = ( { path = \"/a\"; pattern = \"s{step}\"; settle = \"-0\"; } );\n");
        ck_assert(c->watches[0].settle_sec == 0 && !signbit(c->watches[0].settle_sec));
        config_free(c);
}
END_TEST

START_TEST(test_full)
{
        struct config *c =
                load_ok("log_level = \"debug\";\n"
                        "dry_run = true;\n"
                        "check_interval = 45;\n"
                        "metrics_file = \"/run/ckptd.prom\";\n"
                        "max_delete_per_sweep = 50;\n"
                        "defaults = { keep_top_k = 5; };\n"
                        "watch = (\n"
                        "  { path = \"/data/runs\"; recursive = false; preset = \"lightning\";\n"
                        "    monitor = \"val_loss\"; mode = \"max\"; keep_top_k = -1; keep_last = 4;\n"
                        "    keep_every = 1000; min_age = 600; settle = 2.5; min_free = \"10%\";\n"
                        "    target_free = \"12.5%\"; headroom = 2.0; pattern = \"ep{epoch}-{val_loss}.ckpt\";\n"
                        "    key_separator = \":\"; join = \"_\"; pointer_files = [ \"latest\", \"best\" ];\n"
                        "    complete_marker = \"done\"; require_marker = true; metric_file = \"m/metrics.json\";\n"
                        "    exclude = [ \"*.bak\" ]; poll_interval = 60; kind = \"any\"; },\n"
                        "  { path = \"/data/two\"; pattern = \"s{step}\"; min_free = 1048576;\n"
                        "    target_free = \"2G\"; }\n"
                        ");\n");
        const struct watch_conf *w;

        ck_assert_int_eq(c->log_level, LOG_DEBUG);
        ck_assert(c->dry_run);
        ck_assert_int_eq(c->check_interval_sec, 45);
        ck_assert_str_eq(c->metrics_file, "/run/ckptd.prom");
        ck_assert_int_eq(c->max_delete_per_sweep, 50);
        ck_assert_ptr_null(c->path);
        ck_assert_uint_eq(c->n_watches, 2);

        w = &c->watches[0];
        ck_assert_str_eq(w->path, "/data/runs");
        ck_assert_int_eq(w->line, 8);
        ck_assert(!w->recursive);
        ck_assert_str_eq(w->preset, "lightning");
        ck_assert_str_eq(w->policy.monitor, "val_loss");
        ck_assert_int_eq(w->policy.mode, MODE_MAX);
        ck_assert_int_eq(w->policy.keep_top_k, -1);
        ck_assert_int_eq(w->policy.keep_last, 4);
        ck_assert_int_eq(w->policy.keep_every, 1000);
        ck_assert_int_eq(w->policy.min_age_sec, 600);
        ck_assert_double_eq(w->settle_sec, 2.5);
        ck_assert(w->min_free.set && w->min_free.is_percent);
        ck_assert_double_eq(w->min_free.percent, 10);
        ck_assert(w->target_free.set && w->target_free.is_percent);
        ck_assert_double_eq(w->target_free.percent, 12.5);
        ck_assert_double_eq(w->headroom, 2.0);
        ck_assert_str_eq(w->pattern, "ep{epoch}-{val_loss}.ckpt");
        ck_assert_str_eq(w->key_separator, ":");
        ck_assert_str_eq(w->join, "_");
        ck_assert_uint_eq(w->pointer_files.n, 2);
        ck_assert_str_eq(w->pointer_files.v[0], "latest");
        ck_assert_str_eq(w->pointer_files.v[1], "best");
        ck_assert_ptr_null(w->pointer_files.v[2]);
        ck_assert_str_eq(w->complete_marker, "done");
        ck_assert(w->require_marker);
        ck_assert_int_eq(w->metric_source, METRIC_JSON_FILE);
        ck_assert_str_eq(w->metric_file, "m/metrics.json");
        /* the preset's exclude stays, the watch's is added */
        ck_assert_uint_eq(w->exclude.n, 4);
        ck_assert(has(&w->exclude, "last*.ckpt") && has(&w->exclude, "*-last.ckpt") && has(&w->exclude, "*.bak"));
        /* an explicit pattern drops the preset's key=value match list */
        ck_assert_uint_eq(w->match.n, 0);
        ck_assert_int_eq(w->poll_interval_sec, 60);
        ck_assert_int_eq(w->kind, KIND_ANY);

        w = &c->watches[1];
        ck_assert_int_eq(w->line, 15);
        ck_assert_int_eq(w->policy.keep_top_k, 5); /* from defaults */
        ck_assert(w->min_free.set && !w->min_free.is_percent);
        ck_assert_uint_eq(w->min_free.bytes, 1048576);
        ck_assert_uint_eq(w->target_free.bytes, 2ULL << 30);
        config_free(c);
}
END_TEST

START_TEST(test_builtin_defaults)
{
        struct config *c = load_ok(WATCH_OK);
        const struct watch_conf *w = &c->watches[0];

        ck_assert_int_eq(c->log_level, LOG_INFO);
        ck_assert(!c->dry_run);
        ck_assert_int_eq(c->check_interval_sec, 30);
        ck_assert_ptr_null(c->metrics_file);
        ck_assert_int_eq(c->max_delete_per_sweep, 1000);
        ck_assert_str_eq(w->preset, "generic");
        ck_assert(w->recursive);
        ck_assert_ptr_null(w->policy.monitor);
        ck_assert_int_eq(w->policy.mode, MODE_MIN);
        ck_assert_int_eq(w->policy.keep_top_k, 3);
        ck_assert_int_eq(w->policy.keep_last, 1);
        ck_assert_int_eq(w->policy.keep_every, 0);
        ck_assert_int_eq(w->policy.min_age_sec, 0);
        ck_assert_double_eq(w->settle_sec, 2);
        ck_assert(!w->min_free.set && !w->target_free.set);
        ck_assert_double_eq(w->headroom, 0);
        ck_assert_str_eq(w->key_separator, "=");
        ck_assert_str_eq(w->join, "-");
        ck_assert_int_eq(w->kind, KIND_ANY);
        ck_assert_int_eq(w->metric_source, METRIC_NAME);
        ck_assert_ptr_null(w->complete_marker);
        ck_assert_ptr_null(w->metric_file);
        ck_assert_uint_eq(w->pointer_files.n + w->exclude.n + w->match.n, 0);
        ck_assert_int_eq(w->poll_interval_sec, 0);
        config_free(c);
}
END_TEST

/* require_marker = true needs a marker only where a watch's own group asks
 * for it: under auto the marker is each run's layout's, and one from the
 * defaults goes without on a watch that has none, as it did. */
START_TEST(test_require_marker_accepted)
{
        struct config *c =
                load_ok("defaults = { require_marker = true; keep_last = 2; };\n"
                        "watch = (\n"
                        "  { path = \"/a\"; preset = \"auto\"; require_marker = true; },\n"
                        "  { path = \"/b\"; preset = \"lightning\"; },\n"
                        "  { path = \"/c\"; preset = \"huggingface\"; },\n"
                        "  { path = \"/d\"; pattern = \"s{step}\"; kind = \"dir\"; complete_marker = \"done\";\n"
                        "    require_marker = true; }\n"
                        ");\n");

        ck_assert(c->watches[0].require_marker);
        ck_assert(c->watches[1].require_marker);
        ck_assert_ptr_null(c->watches[1].complete_marker);
        ck_assert_str_eq(c->watches[2].complete_marker, "trainer_state.json");
        ck_assert(c->watches[3].require_marker);
        config_free(c);
}
END_TEST

START_TEST(test_precedence)
{
        struct config *c =
                load_ok("defaults = { preset = \"huggingface\"; keep_last = 2; complete_marker = \"DONE\";\n"
                        "             exclude = [ \"*.old\" ]; settle = 7; };\n"
                        "watch = (\n"
                        "  { path = \"/a\"; },\n"                                           /* preset from defaults */
                        "  { path = \"/b\"; keep_last = 3; complete_marker = \"\"; },\n"    /* watch beats defaults */
                        "  { path = \"/c\"; preset = \"orbax\"; exclude = [ \"*.x\" ]; }\n" /* defaults beat preset */
                        ");\n");
        const struct watch_conf *a = &c->watches[0], *b = &c->watches[1], *o = &c->watches[2];

        ck_assert_str_eq(a->preset, "huggingface");
        ck_assert_str_eq(a->pattern, "checkpoint-{step}");
        ck_assert_int_eq(a->kind, KIND_DIR);
        ck_assert_int_eq(a->metric_source, METRIC_HF_STATE);
        ck_assert_str_eq(a->complete_marker, "DONE");
        ck_assert_int_eq(a->policy.keep_last, 2);
        ck_assert_double_eq(a->settle_sec, 7);

        ck_assert_int_eq(b->policy.keep_last, 3);
        ck_assert_ptr_null(b->complete_marker);

        ck_assert_str_eq(o->preset, "orbax");
        ck_assert_str_eq(o->pattern, "{step}");
        ck_assert_int_eq(o->metric_source, METRIC_JSON_FILE);
        ck_assert_str_eq(o->metric_file, "metrics/metrics");
        ck_assert_str_eq(o->complete_marker, "DONE");
        ck_assert_int_eq(o->policy.keep_last, 2);
        /* excludes add up: preset, defaults, watch */
        ck_assert_uint_eq(o->exclude.n, 3);
        ck_assert(has(&o->exclude, "*.orbax-checkpoint-tmp*"));
        ck_assert(has(&o->exclude, "*.old") && has(&o->exclude, "*.x"));
        config_free(c);
}
END_TEST

START_TEST(test_metric_sources)
{
        struct config *c =
                load_ok("watch = (\n"
                        "  { path = \"/hf\"; preset = \"huggingface\"; monitor = \"eval_loss\"; },\n"
                        "  { path = \"/ds\"; preset = \"deepspeed\"; monitor = \"loss\"; metric_file = \"m.json\"; },\n"
                        "  { path = \"/ob\"; preset = \"orbax\"; monitor = \"acc\"; mode = \"max\"; },\n"
                        "  { path = \"/lt\"; preset = \"lightning\"; monitor = \"val_loss\"; },\n"
                        "  { path = \"/nm\"; preset = \"nemo\"; monitor = \"val_loss\"; },\n"
                        "  { path = \"/mg\"; preset = \"megatron\"; keep_last = 2; },\n"
                        "  { path = \"/hf2\"; preset = \"huggingface\"; metric_file = \"\"; }\n"
                        ");\n");

        ck_assert_int_eq(c->watches[0].metric_source, METRIC_HF_STATE);
        ck_assert_int_eq(c->watches[1].metric_source, METRIC_JSON_FILE);
        ck_assert_str_eq(c->watches[1].metric_file, "m.json");
        ck_assert_int_eq(c->watches[2].metric_source, METRIC_JSON_FILE);
        ck_assert_int_eq(c->watches[3].metric_source, METRIC_NAME);
        ck_assert_ptr_null(c->watches[3].pattern);
        ck_assert_uint_eq(c->watches[3].match.n, 1);
        ck_assert_str_eq(c->watches[3].match.v[0], "*.ckpt");
        ck_assert(has(&c->watches[4].match, "*.nemo"));
        ck_assert_ptr_null(c->watches[5].policy.monitor);
        /* "" keeps the preset's own source */
        ck_assert_int_eq(c->watches[6].metric_source, METRIC_HF_STATE);
        ck_assert_ptr_null(c->watches[6].metric_file);
        config_free(c);
}
END_TEST

START_TEST(test_paths)
{
        struct config *c =
                load_ok("watch = (\n"
                        "  { path = \"/data//runs/\"; pattern = \"s{step}\"; recursive = false; },\n"
                        "  { path = \"/data/runs/sub\"; pattern = \"s{step}\"; },\n"
                        "  { path = \"/data/runs2\"; pattern = \"s{step}\"; },\n"
                        "  { path = \"/x\"; pattern = \"s{step}\"; min_free = \"\"; target_free = \"5G\"; }\n"
                        ");\n");

        ck_assert_str_eq(c->watches[0].path, "/data/runs");
        ck_assert_str_eq(c->watches[1].path, "/data/runs/sub");
        ck_assert(!c->watches[3].min_free.set);
        config_free(c);
}
END_TEST

struct error_case {
        const char *what;
        const char *text;
        const char *prefix;
        const char *message;
};

static const struct error_case error_cases[] = {
        {"syntax", "a = 1;\nb = ;\n", "t.conf:2: ", "syntax error"},
        {"duplicate setting", "dry_run = true;\ndry_run = false;\n" WATCH_OK, "t.conf:2: ", "duplicate"},
        {"unknown top key", "dry_run = true;\nfoo = 1;\n" WATCH_OK, "t.conf:2: ", "unknown key \"foo\""},
        {"unknown defaults key", "defaults = {\n  keep_tpo_k = 3;\n};\n" WATCH_OK,
         "t.conf:2: ", "unknown key \"keep_tpo_k\" in defaults"},
        {"unknown watch key", "watch = (\n  { path = \"/d\"; pattern = \"s{step}\";\n    colour = 1; }\n);\n",
         "t.conf:3: ", "unknown key \"colour\" in watch"},
        {"int as string", "watch = ( {\n path = \"/d\"; pattern = \"s{step}\";\n keep_top_k = \"3\"; } );\n",
         "t.conf:3: ", "keep_top_k: expected an integer, got a string"},
        {"int as float", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n keep_last = 1.5; } );\n",
         "t.conf:2: ", "keep_last: expected an integer"},
        {"bool as int", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n recursive = 1; } );\n",
         "t.conf:2: ", "recursive: expected true or false"},
        {"number as string", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n headroom = \"2\"; } );\n",
         "t.conf:2: ", "headroom: expected a number"},
        {"bad duration", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n settle = \"5 parsecs\"; } );\n",
         "t.conf:2: ", "settle: invalid duration \"5 parsecs\" (seconds, or a number with ms, s, min, h or d"},
        {"duration with a space", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n settle = \" 2s\"; } );\n",
         "t.conf:2: ", "settle: invalid duration \" 2s\""},
        {"duration with a tab", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n settle = \"\t2s\"; } );\n",
         "t.conf:2: ", "settle: invalid duration \""},
        {"duration in hex", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n settle = \"0x10\"; } );\n",
         "t.conf:2: ", "settle: invalid duration \"0x10\""},
        {"duration with an exponent", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n min_age = \"1e3s\"; } );\n",
         "t.conf:2: ", "min_age: invalid duration \"1e3s\""},
        {"duration with a plus", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n settle = \"+2s\"; } );\n",
         "t.conf:2: ", "settle: invalid duration \"+2s\""},
        {"fraction of a whole-second key",
         "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n min_age = \"1.5s\"; } );\n",
         "t.conf:2: ", "min_age: must be a whole number from 0 to 316224000 seconds, got \"1.5s\""},
        {"duration out of range", "check_interval = \"500ms\";\n" WATCH_OK,
         "t.conf:1: ", "check_interval: must be a whole number from 1 to 86400 seconds, got \"500ms\""},
        {"duration above a day", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n settle = \"2d\"; } );\n",
         "t.conf:2: ", "settle: must be a number from 0 to 86400 seconds, got \"2d\""},
        {"negative settle", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n settle = -1; } );\n",
         "t.conf:2: ", "settle: must be a number from 0 to 86400"},
        {"negative headroom", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n headroom = -0.5; } );\n",
         "t.conf:2: ", "headroom: must be a number from 0 to 100,"},
        {"keep_top_k < -1", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n keep_top_k = -2; } );\n",
         "t.conf:2: ", "keep_top_k: must be from -1 to 1000000,"},
        {"negative min_age", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n min_age = -1; } );\n",
         "t.conf:2: ", "min_age: must be from 0 to"},
        {"relative path", "watch = (\n  { pattern = \"s{step}\";\n    path = \"data/runs\"; }\n);\n",
         "t.conf:3: ", "path: \"data/runs\" is not absolute"},
        {"missing path", "watch = (\n  { pattern = \"s{step}\"; }\n);\n", "t.conf:2: ", "path is required"},
        {"path in defaults", "defaults = { path = \"/d\"; };\n" WATCH_OK,
         "t.conf:1: ", "path: not allowed in defaults"},
        {"bad size", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n min_free = \"10 gigs\"; } );\n",
         "t.conf:2: ", "min_free: invalid size \"10 gigs\""},
        {"percent > 100", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n target_free = \"150%\"; } );\n",
         "t.conf:2: ", "target_free: size \"150%\" is out of range"},
        {"negative bytes", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n min_free = -5; } );\n",
         "t.conf:2: ", "min_free: must be from 0 to 1152921504606846976,"},
        {"size as float", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n min_free = 1.5; } );\n",
         "t.conf:2: ", "min_free: expected a size"},
        {"target below min",
         "watch = ( { path = \"/d\"; pattern = \"s{step}\"; min_free = \"20G\";\n"
         " target_free = \"10G\"; } );\n",
         "t.conf:2: ", "is smaller than min_free"},
        {"target below min %",
         "watch = ( { path = \"/d\"; pattern = \"s{step}\"; min_free = \"20%\";\n"
         " target_free = \"10%\"; } );\n",
         "t.conf:2: ", "is smaller than min_free"},
        {"bad pattern", "watch = ( { path = \"/d\";\n pattern = \"ckpt-{step\"; } );\n",
         "t.conf:2: ", "pattern: \"ckpt-{step\": unmatched '{'"},
        {"unknown preset", "watch = ( { path = \"/d\";\n preset = \"paxml\"; } );\n",
         "t.conf:2: ", "unknown preset \"paxml\" (known: generic, lightning"},
        {"preset not a string", "watch = ( { path = \"/d\";\n preset = 1; } );\n",
         "t.conf:2: ", "preset: expected a string"},
        {"unknown defaults preset",
         "defaults = {\n preset = \"tf\"; };\n"
         "watch = ( { path = \"/d\"; preset = \"dcp\"; } );\n",
         "t.conf:2: ", "unknown preset \"tf\""},
        {"bad mode", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n mode = \"avg\"; } );\n",
         "t.conf:2: ", "mode: must be \"min\" or \"max\", got \"avg\""},
        {"bad kind", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n kind = \"socket\"; } );\n",
         "t.conf:2: ", "kind: must be \"file\", \"dir\" or \"any\""},
        {"monitor not captured",
         "watch = (\n  { path = \"/d\"; pattern = \"s{step}.pt\";\n"
         "    monitor = \"val_loss\"; }\n);\n",
         "t.conf:3: ", "monitor \"val_loss\" is not captured by pattern \"s{step}.pt\""},
        {"monitor from defaults",
         "defaults = {\n monitor = \"loss\"; };\n"
         "watch = ( { path = \"/d\"; preset = \"deepspeed\"; } );\n",
         "t.conf:2: ", "preset deepspeed carries no metric"},
        {"monitor on megatron", "watch = (\n { path = \"/d\"; preset = \"megatron\";\n monitor = \"loss\"; }\n);\n",
         "t.conf:3: ", "preset megatron carries no metric in its names; set metric_file"},
        {"orbax without metric_file",
         "watch = ( { path = \"/d\"; preset = \"orbax\"; metric_file = \"\";\n"
         " monitor = \"acc\"; } );\n",
         "t.conf:2: ", "preset orbax carries no metric"},
        {"keeps nothing",
         "watch = (\n  { path = \"/d\"; pattern = \"s{step}-{loss}\"; monitor = \"loss\";\n"
         "    keep_top_k = 0; keep_last = 0; }\n);\n",
         "t.conf:2: ", "policy keeps nothing (keep_top_k = 0, keep_last = 0, keep_every = 0)"},
        {"keeps nothing without monitor",
         "watch = (\n  { path = \"/d\"; preset = \"dcp\";\n"
         "    keep_last = 0; }\n);\n",
         "t.conf:2: ", "policy keeps nothing: without monitor"},
        {"generic without pattern", "watch = (\n  { path = \"/d\"; }\n);\n",
         "t.conf:2: ", "pattern is required with preset generic"},
        {"no watch", "log_level = \"info\";\n", "t.conf:1: ", "no watch defined"},
        {"empty watch list", "dry_run = true;\nwatch = ( );\n", "t.conf:2: ", "no watch defined"},
        {"watch not a list", "watch = { path = \"/d\"; pattern = \"s{step}\"; };\n",
         "t.conf:1: ", "watch: expected a list of groups"},
        {"watch entry not a group", "watch = (\n \"/d\" );\n", "t.conf:2: ", "each entry must be a group"},
        {"duplicate path",
         "watch = (\n  { path = \"/d\"; pattern = \"s{step}\"; },\n"
         "  { pattern = \"s{step}\";\n    path = \"/d/\"; }\n);\n",
         "t.conf:4: ", "path: \"/d\" is already watched (line 2)"},
        {"nested recursive",
         "watch = (\n  { path = \"/d/sub\"; pattern = \"s{step}\"; },\n"
         "  { path = \"/d\"; pattern = \"s{step}\"; }\n);\n",
         "t.conf:3: ", "watch \"/d/sub\" is inside recursive watch \"/d\""},
        {"bad log level", "log_level = \"loud\";\n" WATCH_OK, "t.conf:1: ", "unknown level \"loud\""},
        {"check_interval 0", "dry_run = false;\ncheck_interval = 0;\n" WATCH_OK,
         "t.conf:2: ", "check_interval: must be from 1 to 86400,"},
        {"max_delete 0", "max_delete_per_sweep = 0;\n" WATCH_OK,
         "t.conf:1: ", "max_delete_per_sweep: must be from 1 to 1000000,"},
        {"relative metrics_file", "metrics_file = \"ckptd.prom\";\n" WATCH_OK,
         "t.conf:1: ", "metrics_file: \"ckptd.prom\" is not absolute"},
        {"defaults not a group", "defaults = 3;\n" WATCH_OK, "t.conf:1: ", "defaults: expected a group"},
        {"absolute metric_file", "watch = ( { path = \"/d\"; preset = \"orbax\";\n metric_file = \"/m\"; } );\n",
         "t.conf:2: ", "metric_file: \"/m\" must be relative"},
        {"metric_file ..", "watch = ( { path = \"/d\"; preset = \"orbax\";\n metric_file = \"a/../../m\"; } );\n",
         "t.conf:2: ", "must not contain \"..\""},
        {"marker ..", "watch = ( { path = \"/d\"; preset = \"dcp\";\n complete_marker = \"../x\"; } );\n",
         "t.conf:2: ", "complete_marker: \"../x\" must not contain \"..\""},
        {"require_marker, no marker",
         "watch = ( { path = \"/d\"; pattern = \"s{step}\"; kind = \"dir\";\n"
         " require_marker = true; } );\n",
         "t.conf:2: ", "require_marker needs a complete_marker"},
        {"require_marker, marker cleared",
         "watch = ( { path = \"/d\"; preset = \"huggingface\";\n"
         " complete_marker = \"\"; require_marker = true; } );\n",
         "t.conf:2: ", "require_marker needs a complete_marker"},
        {"pointer with slash", "watch = ( { path = \"/d\"; preset = \"dcp\";\n pointer_files = [ \"a/b\" ]; } );\n",
         "t.conf:2: ", "pointer_files: \"a/b\" must be a name"},
        {"exclude not a list", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n exclude = \"*.tmp\"; } );\n",
         "t.conf:2: ", "exclude: expected a list of strings"},
        {"exclude element", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n exclude = ( \"a\",\n 1 ); } );\n",
         "t.conf:3: ", "exclude: element 2: expected a non-empty string, got an integer"},
        {"match with pattern", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n match = [ \"*.pt\" ]; } );\n",
         "t.conf:2: ", "match: applies only without pattern"},
        {"metric file on file kind", "watch = ( { path = \"/d\"; preset = \"lightning\"; metric_file = \"m\"; } );\n",
         "t.conf:1: ", "need kind \"dir\" or \"any\""},
        {"empty join", "watch = ( { path = \"/d\"; preset = \"lightning\";\n join = \"\"; } );\n",
         "t.conf:2: ", "join: must not be empty"},
};

START_TEST(test_errors)
{
        const struct error_case *e = &error_cases[_i];
        char error[ERROR_MAX] = "";
        struct config *c = NULL;
        int r = config_load_string(e->text, "t.conf", &c, error);

        ck_assert_msg(r == -EINVAL, "%s: r = %d", e->what, r);
        ck_assert_ptr_null(c);
        ck_assert_msg(strncmp(error, e->prefix, strlen(e->prefix)) == 0, "%s: \"%s\" does not start with \"%s\"",
                      e->what, error, e->prefix);
        ck_assert_msg(strstr(error, e->message), "%s: \"%s\" lacks \"%s\"", e->what, error, e->message);
}
END_TEST

static char tmpdir[] = "/tmp/check_config.XXXXXX";

static void write_file(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_ge(fputs(text, f), 0);
        ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_load_file)
{
        char path[PATH_MAX], inc[PATH_MAX], error[ERROR_MAX] = "", expect[PATH_MAX + 16];
        struct config *c = NULL;
        int r;

        ck_assert_ptr_nonnull(mkdtemp(tmpdir));
        snprintf(path, sizeof(path), "%s/ckptd.conf", tmpdir);
        snprintf(inc, sizeof(inc), "%s/watches.conf", tmpdir);

        r = config_load(path, &c, error);
        ck_assert_int_eq(r, -ENOENT);
        snprintf(expect, sizeof(expect), "%s: cannot open: ", path);
        ck_assert_msg(strncmp(error, expect, strlen(expect)) == 0, "%s", error);
        ck_assert_msg(strstr(error, strerror(ENOENT)), "%s", error);

        r = config_load(tmpdir, &c, error);
        ck_assert_int_eq(r, -EISDIR);

        write_file(path, "dry_run = true;\n" WATCH_OK);
        r = config_load(path, &c, error);
        ck_assert_msg(r == 0, "%s", error);
        ck_assert_str_eq(c->path, path);
        ck_assert(c->dry_run);
        c = config_free(c);
        ck_assert_ptr_null(c);

        /* the file name in messages is the path as given */
        write_file(path, "dry_run = true;\nwatch = ( { path = \"/d\";\n keep_top_k = \"x\"; } );\n");
        r = config_load(path, &c, error);
        ck_assert_int_eq(r, -EINVAL);
        snprintf(expect, sizeof(expect), "%s:3: keep_top_k:", path);
        ck_assert_msg(strncmp(error, expect, strlen(expect)) == 0, "%s", error);

        write_file(path, "dry_run = true\nwatch = ( );\n");
        r = config_load(path, &c, error);
        ck_assert_int_eq(r, -EINVAL);
        snprintf(expect, sizeof(expect), "%s:2: ", path);
        ck_assert_msg(strncmp(error, expect, strlen(expect)) == 0, "%s", error);

        /* @include is relative to the config's directory, and an error in
         * the included file names that file */
        write_file(inc, "watch = (\n { path = \"/d\"; pattern = \"s{step}\";\n mode = \"up\"; } );\n");
        write_file(path, "dry_run = true;\n@include \"watches.conf\"\n");
        r = config_load(path, &c, error);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strstr(error, "watches.conf:3: mode:"), "%s", error);

        unlink(inc);
        unlink(path);
        rmdir(tmpdir);
}
END_TEST

/* One tree under two watches through a symlink (/data -> /mnt/nvme0/data)
 * is refused as the same spelling is: nested in a recursive watch, or the
 * one directory twice. A path not made yet is judged by its spelling with
 * "." and ".." taken out, and paths are judged as they resolve: a spelling
 * through ".." or a symlink that leads out of a watch is not inside it. */
START_TEST(test_watches_through_a_symlink)
{
        static const char *const cases[][2] = {
                /* outer, inner: nested, or (the last) one directory */
                {"runs", "alias/r"},
                {"alias", "runs/r"},
                {"runs", "alias"},
        };
        char dir[] = "/tmp/check_config.XXXXXX", path[PATH_MAX], text[2 * PATH_MAX + 256], expect[2 * PATH_MAX + 128];
        char error[ERROR_MAX] = "";
        struct config *c = NULL;

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/runs/r", dir);
        ck_assert_int_eq(mkdir(path, 0755) < 0 && errno == ENOENT, 1);
        snprintf(path, sizeof(path), "%s/runs", dir);
        ck_assert_int_eq(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/runs/r", dir);
        ck_assert_int_eq(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/alias", dir);
        ck_assert_int_eq(symlink("runs", path), 0);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                snprintf(text, sizeof(text),
                         "watch = (\n { path = \"%s/%s\"; pattern = \"s{step}\"; },\n"
                         " { path = \"%s/%s\"; pattern = \"s{step}\"; }\n);\n",
                         dir, cases[i][0], dir, cases[i][1]);
                ck_assert_int_eq(config_load_string(text, "t.conf", &c, error), -EINVAL);
                if (i + 1 < ELEMENTSOF(cases))
                        snprintf(expect, sizeof(expect),
                                 "t.conf:3: watch \"%s/%s\" is inside recursive watch \"%s/%s\"", dir, cases[i][1], dir,
                                 cases[i][0]);
                else
                        snprintf(expect, sizeof(expect),
                                 "t.conf:3: watch \"%s/%s\" is the directory of watch \"%s/%s\" (line 2)", dir,
                                 cases[i][1], dir, cases[i][0]);
                ck_assert_msg(strncmp(error, expect, strlen(expect)) == 0, "%s: %s", cases[i][1], error);
        }
        /* not recursive: the inner one is its own tree */
        snprintf(text, sizeof(text),
                 "watch = (\n { path = \"%s/runs\"; pattern = \"s{step}\"; recursive = false; },\n"
                 " { path = \"%s/alias/r\"; pattern = \"s{step}\"; }\n);\n",
                 dir, dir);
        ck_assert_msg(config_load_string(text, "t.conf", &c, error) == 0, "%s", error);
        c = config_free(c);
        /* not made yet: where the part that is made leads */
        snprintf(text, sizeof(text),
                 "watch = (\n { path = \"%s/runs\"; pattern = \"s{step}\"; },\n"
                 " { path = \"%s/alias/later/r\"; pattern = \"s{step}\"; }\n);\n",
                 dir, dir);
        ck_assert_int_eq(config_load_string(text, "t.conf", &c, error), -EINVAL);
        ck_assert_msg(strstr(error, "later/r\" is inside recursive watch"), "%s", error);
        /* "." and ".." in that part are taken out */
        snprintf(text, sizeof(text),
                 "watch = (\n { path = \"%s/runs/later/./x/..\"; pattern = \"s{step}\"; },\n"
                 " { path = \"%s/alias/later/r\"; pattern = \"s{step}\"; recursive = false; }\n);\n",
                 dir, dir);
        ck_assert_int_eq(config_load_string(text, "t.conf", &c, error), -EINVAL);
        ck_assert_msg(strstr(error, "later/r\" is inside recursive watch"), "%s", error);
        snprintf(text, sizeof(text),
                 "watch = (\n { path = \"%s/runs/later\"; pattern = \"s{step}\"; },\n"
                 " { path = \"%s/alias/other\"; pattern = \"s{step}\"; }\n);\n",
                 dir, dir);
        ck_assert_msg(config_load_string(text, "t.conf", &c, error) == 0, "%s", error);
        c = config_free(c);
        /* beside it, spelled through it: /runs/../other, not made yet */
        snprintf(text, sizeof(text),
                 "watch = (\n { path = \"%s/runs\"; pattern = \"s{step}\"; },\n"
                 " { path = \"%s/runs/../other\"; pattern = \"s{step}\"; }\n);\n",
                 dir, dir);
        ck_assert_msg(config_load_string(text, "t.conf", &c, error) == 0, "%s", error);
        c = config_free(c);
        /* through a symlink inside it that leads out of it: the walk
         * follows no symlink; one that leads back in is nested */
        snprintf(path, sizeof(path), "%s/runs/out", dir);
        ck_assert_int_eq(symlink("..", path), 0);
        snprintf(path, sizeof(path), "%s/runs/in", dir);
        ck_assert_int_eq(symlink("r", path), 0);
        snprintf(text, sizeof(text),
                 "watch = (\n { path = \"%s/runs\"; pattern = \"s{step}\"; },\n"
                 " { path = \"%s/runs/out/other\"; pattern = \"s{step}\"; }\n);\n",
                 dir, dir);
        ck_assert_msg(config_load_string(text, "t.conf", &c, error) == 0, "%s", error);
        c = config_free(c);
        snprintf(text, sizeof(text),
                 "watch = (\n { path = \"%s/runs\"; pattern = \"s{step}\"; },\n"
                 " { path = \"%s/runs/in/x\"; pattern = \"s{step}\"; }\n);\n",
                 dir, dir);
        ck_assert_int_eq(config_load_string(text, "t.conf", &c, error), -EINVAL);
        ck_assert_msg(strstr(error, "in/x\" is inside recursive watch"), "%s", error);
        snprintf(path, sizeof(path), "%s/runs/out", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/runs/in", dir);
        unlink(path);

        snprintf(path, sizeof(path), "%s/alias", dir);
        unlink(path);
        snprintf(path, sizeof(path), "%s/runs/r", dir);
        rmdir(path);
        snprintf(path, sizeof(path), "%s/runs", dir);
        rmdir(path);
        rmdir(dir);
}
END_TEST

START_TEST(test_example_config)
{
        const char *srcdir = getenv("srcdir");
        char path[PATH_MAX], error[ERROR_MAX] = "";
        struct config *c = NULL;
        int r;

        snprintf(path, sizeof(path), "%s/contrib/examples/ckptd.conf", srcdir ? srcdir : ".");
        r = config_load(path, &c, error);
        ck_assert_msg(r == 0, "%s (r = %d)", error, r);
        ck_assert_uint_eq(c->n_watches, 5);
        ck_assert_str_eq(c->watches[0].path, "/data/runs");
        ck_assert_str_eq(c->watches[1].preset, "huggingface");
        ck_assert_int_eq(c->watches[1].policy.keep_top_k, 2);
        ck_assert_str_eq(c->watches[4].pattern, "ckpt-{epoch:02d}-{val_loss:.4f}.keras");
        config_free(c);
}
END_TEST

/* What each preset sets, as DESIGN.md's table says. */
static const struct {
        const char *name;
        const char *pattern;
        enum ckpt_kind kind;
        enum metric_source source;
        const char *marker;
        const char *pointer;
        const char *exclude;
        const char *match;
} preset_expect[] = {
        {"lightning", NULL, KIND_FILE, METRIC_NAME, NULL, NULL, "last*.ckpt", "*.ckpt"},
        {"huggingface", "checkpoint-{step}", KIND_DIR, METRIC_HF_STATE, "trainer_state.json", NULL, NULL, NULL},
        {"deepspeed", "global_step{step}", KIND_DIR, METRIC_NAME, NULL, "latest", NULL, NULL},
        {"orbax", "{step}", KIND_DIR, METRIC_JSON_FILE, "commit_success.txt", NULL, "*.orbax-checkpoint-tmp*", NULL},
        {"megatron", "iter_{step}", KIND_DIR, METRIC_NAME, NULL, "latest_checkpointed_iteration.txt", NULL, NULL},
        {"nemo", NULL, KIND_FILE, METRIC_NAME, NULL, NULL, "*-last.nemo", "*.nemo"},
        {"dcp", "step-{step}", KIND_DIR, METRIC_NAME, ".metadata", NULL, NULL, NULL},
};

START_TEST(test_presets)
{
        typeof(preset_expect[0]) *e = &preset_expect[_i];
        char error[ERROR_MAX] = "";
        struct watch_conf w;
        int r;

        ck_assert_ptr_nonnull(preset_find(e->name));
        r = watch_conf_init(&w, "/ckpt/", e->name, error);
        ck_assert_msg(r == 0, "%s", error);
        ck_assert_str_eq(w.path, "/ckpt");
        ck_assert_str_eq(w.preset, e->name);
        ck_assert_pstr_eq(w.pattern, e->pattern);
        ck_assert_int_eq(w.kind, e->kind);
        ck_assert_int_eq(w.metric_source, e->source);
        ck_assert_pstr_eq(w.complete_marker, e->marker);
        ck_assert(!e->pointer || has(&w.pointer_files, e->pointer));
        ck_assert(!e->exclude || has(&w.exclude, e->exclude));
        ck_assert(!e->match || has(&w.match, e->match));
        ck_assert(e->match || w.match.n == 0);
        ck_assert_int_eq(w.policy.keep_top_k, 3);
        ck_assert_int_eq(w.policy.keep_last, 1);

        r = watch_conf_validate(&w, NULL, error);
        ck_assert_msg(r == 0, "%s: %s", e->name, error);
        watch_conf_finish(&w);
        ck_assert_ptr_null(w.path);
}
END_TEST

START_TEST(test_preset_table)
{
        char error[ERROR_MAX] = "";
        struct watch_conf w;
        size_t n = 0;
        int r;

        for (const struct preset *p = presets; p->name; p++, n++)
                ck_assert_ptr_nonnull(p->summary);
        ck_assert_uint_eq(n, 11);
        ck_assert_ptr_nonnull(preset_find("keras"));
        ck_assert_ptr_null(preset_find("paxml"));
        ck_assert_ptr_null(preset_find(NULL));

        /* generic: a pattern is the one thing it cannot default */
        r = watch_conf_init(&w, "/d", NULL, error);
        ck_assert_int_eq(r, 0);
        ck_assert_str_eq(w.preset, "generic");
        r = watch_conf_validate(&w, "cmdline", error);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_str_eq(error, "cmdline: pattern is required with preset generic");
        w.pattern = strdup("model-{step}.pt");
        w.policy.monitor = strdup("loss");
        r = watch_conf_validate(&w, NULL, error);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strncmp(error, "monitor \"loss\" is not captured", 30) == 0, "%s", error);
        free(w.policy.monitor);
        w.policy.monitor = NULL;
        ck_assert_int_eq(watch_conf_validate(&w, NULL, error), 0);
        w.policy.keep_last = 0;
        ck_assert_int_eq(watch_conf_validate(&w, NULL, error), -EINVAL);
        ck_assert_msg(strstr(error, "keeps nothing"), "%s", error);
        watch_conf_finish(&w);

        r = watch_conf_init(&w, "/d", "paxml", error);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strncmp(error, "unknown preset \"paxml\" (known: generic, lightning, huggingface", 55) == 0, "%s",
                      error);
        ck_assert_ptr_null(w.path);

        /* relative -w paths are for the caller to resolve */
        r = watch_conf_init(&w, "runs", "dcp", error);
        ck_assert_int_eq(r, 0);
        ck_assert_int_eq(watch_conf_validate(&w, NULL, error), -EINVAL);
        ck_assert_msg(strstr(error, "not absolute"), "%s", error);
        watch_conf_finish(&w);
}
END_TEST

START_TEST(test_config_new)
{
        char error[ERROR_MAX] = "";
        struct config *c = config_new();
        struct watch_conf w;

        ck_assert_ptr_nonnull(c);
        ck_assert_int_eq(c->log_level, LOG_INFO);
        ck_assert_int_eq(c->check_interval_sec, 30);
        ck_assert_int_eq(c->max_delete_per_sweep, 1000);
        ck_assert_uint_eq(c->n_watches, 0);

        ck_assert_int_eq(watch_conf_init(&w, "/a", "deepspeed", error), 0);
        ck_assert_int_eq(config_add_watch(c, &w), 0);
        ck_assert_ptr_null(w.path); /* moved */
        ck_assert_int_eq(watch_conf_init(&w, "/a/", "dcp", error), 0);
        ck_assert_int_eq(config_add_watch(c, &w), -EEXIST);
        watch_conf_finish(&w);
        ck_assert_int_eq(watch_conf_init(&w, NULL, "dcp", error), 0);
        ck_assert_int_eq(config_add_watch(c, &w), -EINVAL);
        watch_conf_finish(&w);
        ck_assert_uint_eq(c->n_watches, 1);
        ck_assert_str_eq(c->watches[0].pattern, "global_step{step}");
        ck_assert_ptr_null(config_free(c));
        ck_assert_ptr_null(config_free(NULL));
}
END_TEST

START_TEST(test_log_level)
{
        ck_assert_int_eq(log_level_from_string("debug"), LOG_DEBUG);
        ck_assert_int_eq(log_level_from_string("info"), LOG_INFO);
        ck_assert_int_eq(log_level_from_string("notice"), LOG_NOTICE);
        ck_assert_int_eq(log_level_from_string("warning"), LOG_WARNING);
        ck_assert_int_eq(log_level_from_string("err"), LOG_ERR);
        ck_assert_int_eq(log_level_from_string("error"), LOG_ERR);
        ck_assert_int_eq(log_level_from_string("Info"), -EINVAL);
        ck_assert_int_eq(log_level_from_string(""), -EINVAL);
        ck_assert_int_eq(log_level_from_string(NULL), -EINVAL);
        ck_assert_str_eq(log_level_to_string(LOG_ERR), "err");
        ck_assert_str_eq(log_level_to_string(LOG_DEBUG), "debug");
        ck_assert_str_eq(log_level_to_string(LOG_WARNING), "warning");
        ck_assert_ptr_null(log_level_to_string(42));
}
END_TEST

START_TEST(test_strv)
{
        struct strv s = {0};

        ck_assert_int_eq(strv_push(&s, "a"), 0);
        ck_assert_int_eq(strv_push(&s, "b"), 0);
        ck_assert_uint_eq(s.n, 2);
        ck_assert_str_eq(s.v[1], "b");
        ck_assert_ptr_null(s.v[2]);
        strv_finish(&s);
        ck_assert_ptr_null(s.v);
        ck_assert_uint_eq(s.n, 0);
        strv_finish(&s);
        /* past several doublings: every string in place, NULL after them */
        for (int i = 0; i < 1000; i++) {
                char num[16];

                snprintf(num, sizeof(num), "%d", i);
                ck_assert_int_eq(strv_push(&s, num), 0);
                ck_assert_ptr_null(s.v[s.n]);
        }
        ck_assert_uint_eq(s.n, 1000);
        for (int i = 0; i < 1000; i++)
                ck_assert_int_eq(atoi(s.v[i]), i);
        ck_assert(strv_contains(&s, "999"));
        ck_assert(!strv_contains(&s, "1000"));
        strv_finish(&s);
}
END_TEST

/* Integers beyond 32 bits: libconfig 1.5 truncates them unless read as
 * 64-bit, and each key has a range; messages point at the key's line. */
static const struct error_case bound_cases[] = {
        {"keep_last 2^32", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n keep_last = 4294967296; } );\n",
         "t.conf:2: ", "keep_last: must be from 0 to 1000000, got 4294967296"},
        {"keep_top_k 2^32+1", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n keep_top_k = 4294967297; } );\n",
         "t.conf:2: ", "keep_top_k: must be from -1 to 1000000, got 4294967297"},
        {"keep_last 2^31", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n keep_last = 2147483648; } );\n",
         "t.conf:2: ", "keep_last: must be from 0 to 1000000, got 2147483648"},
        {"keep_last -2^31-1", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n keep_last = -2147483649; } );\n",
         "t.conf:2: ", "keep_last: must be from 0 to 1000000, got -2147483649"},
        {"keep_last with L", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n keep_last = 4294967296L; } );\n",
         "t.conf:2: ", "keep_last: must be from 0 to 1000000, got 4294967296"},
        {"hex 2^32", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n keep_last = 0x100000000; } );\n",
         "t.conf:2: ", "keep_last: must be from 0 to 1000000, got 4294967296"},
        {"hex 2^32-1", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n keep_top_k = 0xFFFFFFFF; } );\n",
         "t.conf:2: ", "keep_top_k: must be from -1 to 1000000, got 4294967295"},
        {"beyond int64", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n keep_last = 99999999999999999999; } );\n",
         "t.conf:2: ", "keep_last: 99999999999999999999 does not fit in a 64-bit integer"},
        {"beyond int64 with L",
         "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n min_age = 9223372036854775808L; } );\n",
         "t.conf:2: ", "min_age: 9223372036854775808 does not fit in a 64-bit integer"},
        {"hex beyond int64",
         "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n keep_every = 0xFFFFFFFFFFFFFFFFL; } );\n",
         "t.conf:2: ", "keep_every: 0xFFFFFFFFFFFFFFFF does not fit in a 64-bit integer"},
        {"min_age ten years+", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n min_age = 316224001; } );\n",
         "t.conf:2: ", "min_age: must be from 0 to 316224000"},
        {"keep_every 2^53+1",
         "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n keep_every = 9007199254740993; } );\n",
         "t.conf:2: ", "keep_every: must be from 0 to 9007199254740992"},
        {"headroom 1e308", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n headroom = 1e308; } );\n",
         "t.conf:2: ", "headroom: must be a number from 0 to 100, got 1e+308"},
        {"headroom inf", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n headroom = 1e400; } );\n",
         "t.conf:2: ", "headroom: must be a number from 0 to 100, got inf"},
        {"headroom 101", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n headroom = 101; } );\n",
         "t.conf:2: ", "headroom: must be a number from 0 to 100, got 101"},
        {"settle 2^32", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n settle = 4294967296; } );\n",
         "t.conf:2: ", "settle: must be a number from 0 to 86400, got 4.29497e+09"},
        {"poll_interval", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n poll_interval = 86401; } );\n",
         "t.conf:2: ", "poll_interval: must be from 0 to 86400, got 86401"},
        {"check_interval 2^32+30", "check_interval = 4294967326;\n" WATCH_OK,
         "t.conf:1: ", "check_interval: must be from 1 to 86400, got 4294967326"},
        {"max_delete 2^32+1", "max_delete_per_sweep = 4294967297;\n" WATCH_OK,
         "t.conf:1: ", "max_delete_per_sweep: must be from 1 to 1000000, got 4294967297"},
        {"size string 2^64-1",
         "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n min_free = \"18446744073709551615\"; } );\n",
         "t.conf:2: ", "min_free: size \"18446744073709551615\" is out of range (at most 1048576T (2^60 bytes)"},
        {"size integer 2^64-1",
         "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n min_free = 18446744073709551615; } );\n",
         "t.conf:2: ", "min_free: 18446744073709551615 does not fit in a 64-bit integer"},
        {"size integer 2^60+1",
         "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n target_free = 1152921504606846977; } );\n",
         "t.conf:2: ", "target_free: must be from 0 to 1152921504606846976, got 1152921504606846977"},
        {"size 2^32 as int truncated before",
         "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n"
         " min_free = \"20G\";\n target_free = 4294967296; } );\n",
         "t.conf:3: ", "target_free (4G) is smaller than min_free (20G)"},
        {"size 1048577T", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n min_free = \"1048577T\"; } );\n",
         "t.conf:2: ", "is out of range"},
        {"in defaults", "defaults = {\n keep_last = 4294967296; };\n" WATCH_OK,
         "t.conf:2: ", "keep_last: must be from 0 to 1000000, got 4294967296"},
        {"in an array", "watch = ( { path = \"/d\"; pattern = \"s{step}\";\n exclude = [ 4294967296 ]; } );\n",
         "t.conf:2: ", "exclude: element 1: expected a non-empty string, got an integer"},
        {"empty text", "", "t.conf:1: ", "no watch defined"},
        {"@include from a string", "@include \"/etc/passwd\"\n" WATCH_OK,
         "t.conf:1: ", "@include \"/etc/passwd\": not allowed here"},
};

START_TEST(test_bounds)
{
        const struct error_case *e = &bound_cases[_i];
        char error[ERROR_MAX] = "";
        struct config *c = NULL;
        int r = config_load_string(e->text, "t.conf", &c, error);

        ck_assert_msg(r == -EINVAL, "%s: r = %d", e->what, r);
        ck_assert_ptr_null(c);
        ck_assert_msg(strncmp(error, e->prefix, strlen(e->prefix)) == 0, "%s: \"%s\" does not start with \"%s\"",
                      e->what, error, e->prefix);
        ck_assert_msg(strstr(error, e->message), "%s: \"%s\" lacks \"%s\"", e->what, error, e->message);
}
END_TEST

/* 64-bit values within range are read exactly; numbers inside strings,
 * comments and names are left alone. */
START_TEST(test_int64_values)
{
        struct config *c =
                load_ok("# keep_last = 4294967296\n"
                        "/* keep_last = 99999999999999999999 */\n"
                        "check_interval = 86400;\n"
                        "watch = (\n"
                        "  { path = \"/d/x-4294967296\"; pattern = \"s{step}-99999999999999999999\";\n"
                        "    keep_last = 1000000; keep_top_k = -1; keep_every = 9007199254740992;\n"
                        "    min_age = 316224000L; min_free = 107374182400; target_free = 0x1000000000000000;\n"
                        "    settle = 1.5e3; headroom = 100; // 4294967296\n"
                        "  }\n"
                        ");\n");
        const struct watch_conf *w = &c->watches[0];

        ck_assert_int_eq(c->check_interval_sec, 86400);
        ck_assert_str_eq(w->path, "/d/x-4294967296");
        ck_assert_str_eq(w->pattern, "s{step}-99999999999999999999");
        ck_assert_int_eq(w->policy.keep_last, 1000000);
        ck_assert_int_eq(w->policy.keep_top_k, -1);
        ck_assert_int_eq(w->policy.keep_every, 9007199254740992LL);
        ck_assert_int_eq(w->policy.min_age_sec, 316224000);
        ck_assert_uint_eq(w->min_free.bytes, 107374182400ULL);
        ck_assert_uint_eq(w->target_free.bytes, SIZE_BYTES_MAX);
        ck_assert_double_eq(w->settle_sec, 1500);
        ck_assert_double_eq(w->headroom, 100);
        config_free(c);
}
END_TEST

/* Strings keep their digits: "5" inside a string, after an escaped quote
 * or a backslash, or next to comment markers, is text, not an integer. */
START_TEST(test_strings_untouched)
{
        struct config *c =
                load_ok("watch = ( { path = \"/d/#5\"; complete_marker = \"#5//6/*7*/\"; pattern = \"s{step}\\\"8\\\\9 "
                        "0x1F -3\";\n"
                        "  exclude = [ \"a\\\\\", \"1\" \"2\" ];  /* \" 4294967296 */ keep_last = 2; } );\n");
        const struct watch_conf *w = &c->watches[0];

        ck_assert_str_eq(w->path, "/d/#5");
        ck_assert_str_eq(w->complete_marker, "#5//6/*7*/");
        ck_assert_str_eq(w->pattern, "s{step}\"8\\9 0x1F -3");
        ck_assert_str_eq(w->exclude.v[0], "a\\");
        ck_assert_str_eq(w->exclude.v[1], "12");
        ck_assert_int_eq(w->policy.keep_last, 2);
        config_free(c);
}
END_TEST

/* The -w flags and the config share one table. */
START_TEST(test_range_check)
{
        char error[ERROR_MAX] = "";

        ck_assert_int_eq(conf_range_check("keep_top_k", -1, error), 0);
        ck_assert_int_eq(conf_range_check("keep_top_k", 1000000, error), 0);
        ck_assert_int_eq(conf_range_check("keep_top_k", 4294967297.0, error), -ERANGE);
        ck_assert_str_eq(error, "keep_top_k: must be an integer from -1 to 1000000, got 4294967297");
        ck_assert_int_eq(conf_range_check("keep_last", 1.5, error), -ERANGE);
        ck_assert_int_eq(conf_range_check("headroom", 1e308, error), -ERANGE);
        ck_assert_int_eq(conf_range_check("headroom", NAN, error), -ERANGE);
        ck_assert_int_eq(conf_range_check("settle", 0.5, error), 0);
        ck_assert_int_eq(conf_range_check("path", 1e308, error), 0); /* no range */
        ck_assert_ptr_nonnull(conf_range_of("max_delete_per_sweep"));
        ck_assert_ptr_null(conf_range_of("pattern"));
}
END_TEST

static char tmpdir2[] = "/tmp/check_config_fifo.XXXXXX";

/* A FIFO, a device or an oversized file in place of the config (or of
 * what it includes) is refused at once, never read from. */
START_TEST(test_not_regular)
{
        char path[PATH_MAX], fifo[PATH_MAX], big[PATH_MAX], error[ERROR_MAX] = "";
        struct config *c = NULL;
        FILE *f;
        int r;

        ck_assert_ptr_nonnull(mkdtemp(tmpdir2));
        snprintf(path, sizeof(path), "%s/ckptd.conf", tmpdir2);
        snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir2);
        snprintf(big, sizeof(big), "%s/big.conf", tmpdir2);
        ck_assert_int_eq(mkfifo(fifo, 0600), 0);

        /* nobody writes to the FIFO: opening it for reading would block */
        r = config_load(fifo, &c, error);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_ptr_null(c);
        ck_assert_msg(strstr(error, fifo) && strstr(error, "is a FIFO, not a regular file"), "%s", error);

        r = config_load("/dev/zero", &c, error);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strstr(error, "/dev/zero: is a character device"), "%s", error);

        write_file(path, "dry_run = true;\n@include \"fifo\"\n" WATCH_OK);
        r = config_load(path, &c, error);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strstr(error, "ckptd.conf:2: @include \"fifo\": is a FIFO"), "%s", error);

        /* one byte over the cap */
        f = fopen(big, "we");
        ck_assert_ptr_nonnull(f);
        for (int i = 0; i < 1024 * 1024 + 1; i++)
                fputc(i % 64 == 63 ? '\n' : ' ', f);
        ck_assert_int_eq(fclose(f), 0);
        r = config_load(big, &c, error);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strstr(error, "is larger than 1024 KiB"), "%s", error);
        write_file(path, "@include \"big.conf\"\n" WATCH_OK);
        r = config_load(path, &c, error);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strstr(error, "ckptd.conf:1: @include \"big.conf\": is larger"), "%s", error);

        /* included lines map back to their file, and the lines after the
         * @include to the main file */
        write_file(big, "dry_run = true;\n\n check_interval = 30;\n");
        write_file(path, "log_level = \"info\";\n@include \"big.conf\"\nwatch = (\n"
                         " { path = \"/d\"; pattern = \"s{step}\";\n keep_last = 4294967296; } );\n");
        r = config_load(path, &c, error);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strstr(error, "ckptd.conf:5: keep_last: must be from 0"), "%s", error);
        write_file(big, "dry_run = true;\n\n check_interval = 4294967326;\n");
        r = config_load(path, &c, error);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strstr(error, "big.conf:3: check_interval: must be from 1 to 86400"), "%s", error);

        /* an include that includes itself stops at the depth limit */
        write_file(big, "@include \"big.conf\"\n");
        r = config_load(path, &c, error);
        ck_assert_int_eq(r, -EINVAL);
        ck_assert_msg(strstr(error, "nested more than 10 deep"), "%s", error);

        unlink(big);
        unlink(fifo);
        unlink(path);
        rmdir(tmpdir2);
}
END_TEST

Suite *config_suite(void)
{
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("config");

        tcase_add_test(tc, test_full);
        tcase_add_test(tc, test_durations);
        tcase_add_test(tc, test_builtin_defaults);
        tcase_add_test(tc, test_precedence);
        tcase_add_test(tc, test_require_marker_accepted);
        tcase_add_test(tc, test_metric_sources);
        tcase_add_test(tc, test_paths);
        tcase_add_loop_test(tc, test_errors, 0, (int)ELEMENTSOF(error_cases));
        tcase_add_test(tc, test_load_file);
        tcase_add_test(tc, test_watches_through_a_symlink);
        tcase_add_test(tc, test_example_config);
        tcase_add_loop_test(tc, test_presets, 0, (int)ELEMENTSOF(preset_expect));
        tcase_add_test(tc, test_preset_table);
        tcase_add_test(tc, test_config_new);
        tcase_add_test(tc, test_log_level);
        tcase_add_test(tc, test_strv);
        tcase_add_loop_test(tc, test_bounds, 0, (int)ELEMENTSOF(bound_cases));
        tcase_add_test(tc, test_int64_values);
        tcase_add_test(tc, test_range_check);
        tcase_add_test(tc, test_strings_untouched);
        tcase_add_test(tc, test_not_regular);
        tcase_add_test(tc, test_long_error_keeps_its_reason);
        suite_add_tcase(s, tc);
        return s;
}
