/* libFuzzer target for pattern.c. Input: the first line is a template, the
 * rest is an entry name. Compiling and matching must never crash, read out of
 * bounds or leak, and what they return must hang together.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ilib \
 *         tests/fuzz/fuzz_pattern.c lib/pattern.c lib/ckpt.c -lm -o build/fuzz_pattern
 *   build/fuzz_pattern -max_total_time=60 build/fuzz-corpus/pattern */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Exactly sized heap copies, so that ASan sees any read past the NUL. */
static char *copy(const uint8_t *data, size_t size)
{
        char *s = malloc(size + 1);

        if (!s)
                abort();
        memcpy(s, data, size);
        s[size] = '\0';
        return s;
}

static bool same(double a, double b)
{
        return a == b || (isnan(a) && isnan(b));
}

/* f as matched from name: a checkpoint record of it keeps each value as
 * where it is written, and reads back the value the pattern read (none
 * past byte 255 of a longer name, as FUSE and UTF-16 filesystems allow). */
static void check_fields(const struct fields *f, const char *name)
{
        struct ckpt c = {};

        if (f->n > FIELDS_MAX)
                abort();
        for (size_t i = 0; i < f->n; i++)
                if (!f->name[i] || strnlen(f->name[i], FIELD_NAME_MAX) == FIELD_NAME_MAX || f->name[i][0] == '\0')
                        abort();
        if (ckpt_init_names(&c, &name, 1, f) < 0 || c.n_fields != f->n || strcmp(c.name, name) != 0)
                abort();
        for (size_t i = 0; i < f->n; i++) {
                /* past byte 255 of a longer name: not kept */
                double want = f->text_len[i] == 0 ? NAN : f->value[i];

                if (f->text_len[i] == 0 && strlen(name) <= UINT8_MAX)
                        abort();
                if (!same(ckpt_field_value(&c, i), want) || strcmp(field_name(ckpt_field(&c, i)->name_id), f->name[i]) != 0)
                        abort();
        }
        ckpt_finish(&c);
}

/* A "*" of the template itself, not one in a field's format spec ("{j:*}"),
 * for a template that compiled. */
static bool star_outside_fields(const char *t)
{
        bool in_field = false;

        for (; *t; t++) {
                if (!in_field && (*t == '{' || *t == '}') && t[1] == *t)
                        t++; /* "{{", "}}": a literal brace */
                else if (*t == '{')
                        in_field = true;
                else if (*t == '}')
                        in_field = false;
                else if (*t == '*' && !in_field)
                        return true;
        }
        return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const uint8_t *nl = memchr(data, '\n', size);
        size_t tl = nl ? (size_t)(nl - data) : size;
        char *template = copy(data, tl);
        char *name = nl ? copy(nl + 1, size - tl - 1) : copy(data, 0);
        struct pattern *p = NULL, *kv = NULL;
        const char *error = NULL;
        struct fields f;

        if (pattern_compile(template, &p, &error) == 0) {
                memset(&f, 0xa5, sizeof(f));
                if (pattern_match(p, name, &f)) {
                        check_fields(&f, name);
                        /* every captured field is one the template names */
                        for (size_t i = 0; i < f.n; i++)
                                if (!pattern_can_capture(p, f.name[i]))
                                        abort();
                        /* only templates with "*" group (Lightning's -v1 copies) */
                        if (pattern_groups(p) != (f.n > 0 && star_outside_fields(template)))
                                abort();
                }
                p = pattern_free(p);
        } else if (!error || error[0] == '\0' || p) {
                abort();
        }

        /* key=value mode matches any name */
        if (pattern_new_kv(NULL, NULL, &kv) < 0)
                abort();
        /* ... unless the field names' table is full: a name with a new key
         * is then not recognised, so kept (ckpt.h, FIELD_NAMES_MAX) */
        if (!pattern_match(kv, name, &f)) {
                if (field_name(FIELD_NAMES_MAX - 1)[0] == '\0')
                        abort();
                f.n = 0;
        }
        check_fields(&f, name);
        kv = pattern_free(kv);

        /* the template line as a glob, the name as separators */
        (void)glob_match(template, name);
        if (pattern_new_kv(template, name, &kv) == 0) {
                (void)pattern_match(kv, template, &f);
                kv = pattern_free(kv);
        }

        free(template);
        free(name);
        return 0;
}
