/* One run decided: policy_decide() per owner partition.
 *
 * In a sticky directory (1777) user B cannot remove A's checkpoint-200, but
 * ckptd, running as root (CAP_FOWNER), can; were every file ranked in one
 * run, B's backdated checkpoint-999999 would make A's checkpoints the
 * "older" ones. So ranking never mixes owners. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decide.h"

size_t run_owner_first(const struct ckpt *c, size_t i)
{
        for (size_t j = 0; j < i; j++)
                if (c[j].uid == c[i].uid)
                        return j;
        return i;
}

static void keep_all(struct ckpt *c, size_t n, enum keep_reason why)
{
        for (size_t i = 0; i < n; i++)
                c[i].verdict = (struct verdict){.keep = true, .reasons = 1u << why};
}

int run_decide(const struct policy *p, struct ckpt *c, size_t n, int64_t now_usec)
{
        struct ckpt *part = NULL;
        bool one_owner = true;

        for (size_t i = 1; i < n; i++)
                if (c[i].uid != c[0].uid)
                        one_owner = false;
        if (one_owner && (n == 0 || c[0].uid != UID_MIXED)) {
                policy_decide(p, c, n, now_usec);
                return 0;
        }

        /* Shallow copies: policy_decide() writes only the verdicts, which
         * are copied back. The original order is kept, so ties break alike. */
        part = malloc(n * sizeof(*part));
        if (!part) {
                keep_all(c, n, KEEP_OWNERS);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                size_t m = 0;

                if (run_owner_first(c, i) != i)
                        continue; /* its partition is done */
                if (c[i].uid == UID_MIXED) {
                        for (size_t j = i; j < n; j++)
                                if (c[j].uid == UID_MIXED)
                                        keep_all(&c[j], 1, KEEP_OWNERS);
                        continue;
                }
                for (size_t j = i; j < n; j++)
                        if (c[j].uid == c[i].uid)
                                part[m++] = c[j];
                policy_decide(p, part, m, now_usec);
                m = 0;
                for (size_t j = i; j < n; j++)
                        if (c[j].uid == c[i].uid)
                                c[j].verdict = part[m++].verdict;
        }
        free(part);
        return 0;
}

/* Levenshtein distance, two rows; names are at most FIELD_NAME_MAX. */
static size_t edit_distance(const char *a, const char *b)
{
        size_t la = strnlen(a, FIELD_NAME_MAX), lb = strnlen(b, FIELD_NAME_MAX);
        size_t row[FIELD_NAME_MAX + 1], prev;

        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                prev = row[0];
                row[0] = i;
                for (size_t j = 1; j <= lb; j++) {
                        size_t cur = row[j], best = prev + (a[i - 1] != b[j - 1]);

                        if (row[j] + 1 < best)
                                best = row[j] + 1;
                        if (row[j - 1] + 1 < best)
                                best = row[j - 1] + 1;
                        row[j] = best;
                        prev = cur;
                }
        }
        return row[lb];
}

static bool seen_before(const struct ckpt *c, size_t i, size_t k)
{
        for (size_t j = 0; j <= i; j++)
                for (size_t l = 0; l < c[j].n_fields; l++) {
                        if (j == i && l == k)
                                return false;
                        if (ckpt_field(&c[j], l)->name_id == ckpt_field(&c[i], k)->name_id)
                                return true;
                }
        return false;
}

int run_monitor_hint(const struct ckpt *c, size_t n, const char *monitor, char **ret)
{
        FILE *f;
        char *buf = NULL;
        size_t len = 0, best_dist = SIZE_MAX, limit;
        const char *best = NULL;
        bool any = false;

        if (!monitor || !ret)
                return -EINVAL;
        f = open_memstream(&buf, &len);
        if (!f)
                return -ENOMEM;
        /* a typo is a letter or two; "epoch" is no typo of "val_loss" */
        limit = strlen(monitor) / 3;
        if (limit < 1)
                limit = 1;
        fputs("names carry ", f);
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < c[i].n_fields; k++) {
                        const char *name = field_name(ckpt_field(&c[i], k)->name_id);
                        size_t d;

                        if (seen_before(c, i, k))
                                continue;
                        fprintf(f, "%s%s", any ? ", " : "", name);
                        any = true;
                        d = edit_distance(monitor, name);
                        if (d <= limit && d < best_dist) {
                                best_dist = d;
                                best = name;
                        }
                }
        if (!any)
                fputs("no field", f);
        if (best)
                fprintf(f, "; did you mean %s?", best);
        if (fclose(f) != 0 || !buf) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

bool run_monitor_missing(const struct ckpt *c, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (c[i].verdict.reasons & (1u << KEEP_NO_MONITOR))
                        return true;
        return false;
}
