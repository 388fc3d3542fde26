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
 * second time (nothing depends on state left over). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

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
        free(text);
        return 0;
}
