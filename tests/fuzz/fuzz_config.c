/* libFuzzer target for the config reader: any bytes as the text of a config
 * file, through config_load_string() (lib/conftext.c's tokenizer and
 * @include handling, libconfig, config.c's keys and watch validation).
 * No file is opened: a string may not @include, and libconfig's include
 * directory is /dev/null. `make fuzz` builds and runs it with the seeds in
 * tests/fuzz/corpus/config/.
 *
 * Checks, beyond ASan's, UBSan's and LeakSanitizer's: a rejected config
 * says why, naming the file; an accepted one passes watch_conf_validate()
 * again, holds every numeric key within its range, and reads the same a
 * second time (nothing depends on state left over).
 *
 * And a differential check of conftext.c's tokenizer against libconfig's:
 * libconfig reading the raw text and reading conftext's output (every
 * integer literal given an L) agree on success and, when both read it, on
 * every setting: name, type, line, strings and floats exactly, integers
 * up to libconfig 1.5's 32-bit truncation of a literal without L. */
#include <libconfig.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "conftext.h"
#include "macro.h"

#define NAME "fuzz.conf"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_range(const char *key, double v)
{
        if (conf_range_check(key, v, NULL) < 0)
                abort();
}

static void check_accepted(const struct config *c)
{
        char error[ERROR_MAX];

        if (c->n_watches == 0 || c->path)
                abort();
        check_range("check_interval", (double)c->check_interval_sec);
        check_range("max_delete_per_sweep", c->max_delete_per_sweep);
        for (size_t i = 0; i < c->n_watches; i++) {
                const struct watch_conf *w = &c->watches[i];

                if (watch_conf_validate(w, NAME, error) < 0)
                        abort();
                check_range("keep_top_k", w->policy.keep_top_k);
                check_range("keep_last", w->policy.keep_last);
                check_range("keep_every", (double)w->policy.keep_every);
                check_range("min_age", (double)w->policy.min_age_sec);
                check_range("poll_interval", (double)w->poll_interval_sec);
                check_range("settle", w->settle_sec);
                check_range("headroom", w->headroom);
                if ((w->min_free.set && !w->min_free.is_percent && w->min_free.bytes > SIZE_BYTES_MAX) ||
                    (w->target_free.set && !w->target_free.is_percent && w->target_free.bytes > SIZE_BYTES_MAX))
                        abort();
                if (!w->path || w->path[0] != '/')
                        abort();
        }
}

/* raw: as libconfig read the input; ours: as it read conftext's output. */
static void same_setting(const config_setting_t *raw, const config_setting_t *ours)
{
        const char *a = config_setting_name(raw), *b = config_setting_name(ours);
        int type = config_setting_type(raw), n;

        if ((a || b) && (!a || !b || strcmp(a, b) != 0))
                abort();
        if (config_setting_source_line(raw) != config_setting_source_line(ours))
                abort();
        switch (type) {
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                if (config_setting_type(ours) != CONFIG_TYPE_INT64)
                        abort();
                if (type == CONFIG_TYPE_INT64 ? config_setting_get_int64(raw) != config_setting_get_int64(ours)
                                              : config_setting_get_int(raw) != (int)config_setting_get_int64(ours))
                        abort();
                return;
        case CONFIG_TYPE_FLOAT: {
                double x = config_setting_get_float(raw), y = config_setting_get_float(ours);
                if (config_setting_type(ours) != type || (x != y && !(isnan(x) && isnan(y))))
                        abort();
                return;
        }
        case CONFIG_TYPE_STRING:
                if (config_setting_type(ours) != type ||
                    strcmp(config_setting_get_string(raw), config_setting_get_string(ours)) != 0)
                        abort();
                return;
        case CONFIG_TYPE_BOOL:
                if (config_setting_type(ours) != type || config_setting_get_bool(raw) != config_setting_get_bool(ours))
                        abort();
                return;
        default:
                if (config_setting_type(ours) != type)
                        abort();
                n = config_setting_length(raw);
                if (config_setting_length(ours) != n)
                        abort();
                for (int i = 0; i < n; i++)
                        same_setting(config_setting_get_elem(raw, (unsigned)i),
                                     config_setting_get_elem(ours, (unsigned)i));
        }
}

static void differential(const char *text)
{
        char error[ERROR_MAX];
        struct conftext t;
        config_t raw, ours;
        int raw_ok, ours_ok;

        if (conftext_load_string(&t, text, NAME, error) < 0) {
                conftext_finish(&t);
                return;
        }
        config_init(&raw);
        config_init(&ours);
        /* an @include libconfig sees opens nothing */
        config_set_include_dir(&raw, "/dev/null");
        config_set_include_dir(&ours, "/dev/null");
        raw_ok = config_read_string(&raw, text);
        ours_ok = config_read_string(&ours, t.text);
        /* every integer is 64-bit in ours: an array mixing 1L and 2, which
         * libconfig refuses, is uniform there */
        if (raw_ok != ours_ok && !(ours_ok && streq_ptr(config_error_text(&raw), "mismatched element type in array")))
                abort();
        if (raw_ok)
                same_setting(config_root_setting(&raw), config_root_setting(&ours));
        config_destroy(&raw);
        config_destroy(&ours);
        conftext_finish(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* an exactly sized copy, so that ASan sees any read past the NUL */
        char *text = malloc(size + 1);
        char error[ERROR_MAX], error2[ERROR_MAX];
        struct config *c = NULL, *c2 = NULL;
        int r, r2;

        if (!text)
                abort();
        memcpy(text, data, size);
        text[size] = '\0';

        memset(error, 0xa5, sizeof(error));
        r = config_load_string(text, NAME, &c, error);
        if (r < 0) {
                if (c || memchr(error, '\0', sizeof(error)) == NULL || strncmp(error, NAME, strlen(NAME)) != 0)
                        abort();
        } else {
                if (!c || r != 0)
                        abort();
                check_accepted(c);
        }

        r2 = config_load_string(text, NAME, &c2, error2);
        if (r2 != r || (r < 0 && strcmp(error, error2) != 0))
                abort();
        if (c && (c2->n_watches != c->n_watches || strcmp(c2->watches[0].path, c->watches[0].path) != 0))
                abort();

        config_free(c);
        config_free(c2);
        differential(text);
        free(text);
        return 0;
}
