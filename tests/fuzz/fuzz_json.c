/* libFuzzer target for metricfile.c's JSON readers (HF trainer_state.json,
 * Orbax-style metric files). Input: one byte choosing the monitor, then the
 * file's bytes. The readers must never crash, read out of bounds or leak;
 * and on inputs small enough for json-c to hold whole, they must answer
 * exactly what a json-c tree of the whole document answers (the reference
 * below is the tree-based reader ckptd used before it streamed).
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Ilib \
 *         $(pkg-config --cflags json-c) tests/fuzz/fuzz_json.c lib/[a-z]*.c \
 *         $(pkg-config --libs libsystemd libconfig json-c) -lm -o build/fuzz/fuzz_json
 *   build/fuzz/fuzz_json -max_total_time=60 -max_len=4096 tests/fuzz/corpus/json
 *
 * Built with -DJSON_VALUE_MAX=64 (a small piece size), inputs reach the
 * batching of history entries; answers must still match, except where a
 * piece is over that size (-E2BIG). */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "metricfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef JSON_VALUE_MAX
#define OVER_BUDGET_OK(r) ((r) == -E2BIG)
#else
#define OVER_BUDGET_OK(r) false
#endif

static const char *const monitors[] = {"eval_loss", "loss", "step", "a.b", "eval.loss", "x", ".", "a..b", "epoch"};
static const double steps[] = {INFINITY, NAN, 10, 0, -1, 1e300};

/* The reference: whole-document json-c tree, as ckptd read these files
 * before. */
static struct json_object *ref_parse(const char *buf, size_t len, int *ret)
{
        struct json_tokener *tok;
        struct json_object *obj;
        size_t end;

        *ret = 0;
        if (memchr(buf, '\0', len)) {
                *ret = -EINVAL;
                return NULL;
        }
        tok = json_tokener_new();
        if (!tok)
                abort();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        obj = json_tokener_parse_ex(tok, buf, (int)(len + 1));
        if (json_tokener_get_error(tok) != json_tokener_success || !obj) {
                json_object_put(obj);
                json_tokener_free(tok);
                *ret = -EINVAL;
                return NULL;
        }
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        for (; end < len; end++)
                if (!strchr(" \t\n\r", buf[end])) {
                        json_object_put(obj);
                        *ret = -EINVAL;
                        return NULL;
                }
        return obj;
}

static int ref_number(struct json_object *v, double *ret)
{
        switch (json_object_get_type(v)) {
        case json_type_double:
        case json_type_int: *ret = json_object_get_double(v); return 0;
        case json_type_null: return -ENOENT;
        default: return -EINVAL;
        }
}

static int ref_hf_state(struct json_object *root, const char *monitor, double step, double *ret)
{
        struct json_object *history;

        if (!json_object_is_type(root, json_type_object) || !json_object_object_get_ex(root, "log_history", &history) ||
            !json_object_is_type(history, json_type_array))
                return -ENOENT;
        for (size_t i = json_object_array_length(history); i > 0; i--) {
                struct json_object *e = json_object_array_get_idx(history, i - 1), *mv, *sv;
                double s, value;

                if (!json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, monitor, &mv))
                        continue;
                if (!json_object_object_get_ex(e, "step", &sv) || ref_number(sv, &s) < 0)
                        continue;
                if (!isnan(step) && !(s <= step))
                        continue;
                if (ref_number(mv, &value) < 0)
                        continue;
                *ret = value;
                return 0;
        }
        return -ENOENT;
}

static const char *ref_hf_best(struct json_object *root)
{
        struct json_object *v;

        if (json_object_is_type(root, json_type_object) &&
            json_object_object_get_ex(root, "best_model_checkpoint", &v) && json_object_is_type(v, json_type_string))
                return json_object_get_string(v);
        return NULL;
}

static int ref_json(struct json_object *root, const char *monitor, double *ret)
{
        struct json_object *v, *cur = root;
        char *copy, *part;
        int r = 0;

        if (!json_object_is_type(root, json_type_object))
                return -ENOENT;
        if (json_object_object_get_ex(root, monitor, &v))
                return ref_number(v, ret);
        copy = strdup(monitor);
        if (!copy)
                abort();
        for (part = copy;;) {
                char *dot = strchr(part, '.');
                struct json_object *next;

                if (dot)
                        *dot = '\0';
                if (part[0] == '\0' || !json_object_is_type(cur, json_type_object) ||
                    !json_object_object_get_ex(cur, part, &next)) {
                        r = -ENOENT;
                        break;
                }
                cur = next;
                if (!dot)
                        break;
                part = dot + 1;
        }
        free(copy);
        return r < 0 ? r : ref_number(cur, ret);
}

static bool same_double(double a, double b)
{
        return (isnan(a) && isnan(b)) || a == b;
}

/* The last component as metric_hf_best() reduces it, or NULL: split at '/'
 * and '\\' (HF on Windows), the empty and "." components at the end
 * dropped; none left, or "..", is NULL. */
static bool same_best(const char *ref, const char *got)
{
        size_t end, start;

        if (!ref)
                return got == NULL;
        end = strlen(ref);
        for (;;) {
                start = end;
                while (start > 0 && ref[start - 1] != '/' && ref[start - 1] != '\\')
                        start--;
                /* ref[start, end) is a component */
                if (end - start > 1 || (end - start == 1 && ref[start] != '.') || start == 0)
                        break;
                end = start - 1; /* past its separator */
        }
        if (end - start == 0 || (end - start == 1 && ref[start] == '.') ||
            (end - start == 2 && ref[start] == '.' && ref[start + 1] == '.'))
                return got == NULL;
        return got && strlen(got) == end - start && memcmp(got, ref + start, end - start) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        const char *monitor;
        double step, v = 0, rv = 0;
        struct json_object *root;
        char *buf, *best = NULL;
        int r, ref_r;

        if (size < 1)
                return 0;
        monitor = monitors[data[0] % ELEMENTSOF(monitors)];
        step = steps[(data[0] / ELEMENTSOF(monitors)) % ELEMENTSOF(steps)];
        data++, size--;
        /* An exactly sized, NUL-terminated heap copy, as read_file_at()
         * gives: ASan sees any read past it. */
        buf = malloc(size + 1);
        if (!buf)
                abort();
        memcpy(buf, data, size);
        buf[size] = '\0';

        root = ref_parse(buf, size, &ref_r);

        r = metric_hf_parse(buf, size, monitor, step, &v, &best);
        if (OVER_BUDGET_OK(r)) {
        } else if (ref_r < 0) {
                if (r != ref_r)
                        abort();
        } else {
                int e = ref_hf_state(root, monitor, step, &rv);
                if (r != e || (r == 0 && !same_double(v, rv)) || !same_best(ref_hf_best(root), best))
                        abort();
        }
        free(best);
        best = (char *)1;
        r = metric_hf_parse(buf, size, NULL, step, NULL, &best);
        if (!OVER_BUDGET_OK(r) && (r != (ref_r < 0 ? ref_r : 0) || (r == 0 && !same_best(ref_hf_best(root), best))))
                abort();
        if (r == 0)
                free(best);

        r = metric_json_parse(buf, size, monitor, &v);
        if (OVER_BUDGET_OK(r)) {
        } else if (ref_r < 0) {
                if (r != ref_r)
                        abort();
        } else {
                int e = ref_json(root, monitor, &rv);
                if (r != e || (r == 0 && !same_double(v, rv)))
                        abort();
        }
        json_object_put(root);
        free(buf);
        return 0;
}
