/* One run decided: policy_decide() per owner partition.
 *
 * In a sticky directory (1777) user B cannot remove A's checkpoint-200, but
 * ckptd, running as root (CAP_FOWNER), can; were every file ranked in one
 * run, B's backdated checkpoint-999999 would make A's checkpoints the
 * "older" ones. So ranking never mixes owners. */
#include <errno.h>
#include <stdlib.h>

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
