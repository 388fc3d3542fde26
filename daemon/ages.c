/* Ages from a clock that cannot jump.
 *
 * min_age and settle compare a file's mtime with the wall clock, and the wall
 * clock steps: forward a year (a bad NTP source, an RTC reset) and every
 * young checkpoint looks a year old and is deleted; back a day and every
 * checkpoint is "from the future", so unsettled, so never complete and never
 * evicted. What the daemon saw itself it times on CLOCK_BOOTTIME (it counts
 * suspend, as the age of a file does, and never steps): a checkpoint's age is
 * its wall-clock age when first seen, clamped at 0, plus the boot time since.
 * A wall clock stepped forward afterwards ages nothing; one whose mtime is
 * in the future counts as age 0 when first seen, so it is young for min_age
 * after that, never forever. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ages.h"
#include "macro.h"

struct ckpt_seen {
        char *name;
        uint64_t first_usec;    /* CLOCK_BOOTTIME when first seen (or rewritten) */
        int64_t first_age_usec; /* its wall-clock age then, >= 0 */
        int64_t mtime_usec;     /* as last seen */
        uint64_t size_bytes;
        uint64_t same_usec; /* CLOCK_BOOTTIME since when mtime and size are as seen */
        bool changed;       /* seen changing: same_usec is a change we saw */
        bool moved;         /* to the new table (ages_observe) */
};

static int seen_cmp(const void *x, const void *y)
{
        return strcmp(((const struct ckpt_seen *)x)->name, ((const struct ckpt_seen *)y)->name);
}

static struct ckpt_seen *seen_find(struct ages *a, const char *name)
{
        struct ckpt_seen key = {.name = (char *)name};

        if (a->n == 0)
                return NULL;
        return bsearch(&key, a->v, a->n, sizeof(*a->v), seen_cmp);
}

static int64_t wall_age(int64_t wall_usec, int64_t mtime_usec)
{
        int64_t age;

        /* from the future (or absurdly far away): age 0 */
        if (__builtin_sub_overflow(wall_usec, mtime_usec, &age) || age < 0)
                return 0;
        return age;
}

int ages_observe(struct ages *a, struct run *run, int64_t wall_usec, uint64_t settle_usec)
{
        uint64_t boot = (uint64_t)now_usec(CLOCK_BOOTTIME);
        struct ckpt_seen *v = calloc(run->n_ckpts + 1, sizeof(*v));
        size_t n = 0;

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < run->n_ckpts; i++) {
                struct ckpt *c = &run->ckpts[i];
                struct ckpt_seen *old = seen_find(a, c->name), *e = &v[n];

                if (old && !old->moved) {
                        *e = *old;
                        old->moved = true; /* its name belongs to e now */
                        if (e->mtime_usec != c->mtime_usec || e->size_bytes != c->size_bytes) {
                                /* written again: aged from this write on */
                                if (e->mtime_usec != c->mtime_usec) {
                                        e->first_usec = boot;
                                        e->first_age_usec = wall_age(wall_usec, c->mtime_usec);
                                }
                                e->mtime_usec = c->mtime_usec;
                                e->size_bytes = c->size_bytes;
                                e->same_usec = boot;
                                e->changed = true;
                        }
                } else {
                        e->name = strdup(c->name);
                        if (!e->name)
                                continue; /* its age stays unknown: mtime decides */
                        *e = (struct ckpt_seen){
                                .name = e->name,
                                .first_usec = boot,
                                .first_age_usec = wall_age(wall_usec, c->mtime_usec),
                                .mtime_usec = c->mtime_usec,
                                .size_bytes = c->size_bytes,
                                .same_usec = boot,
                        };
                }
                n++;
                c->age_known = true;
                if (__builtin_add_overflow(e->first_age_usec, (int64_t)(boot - e->first_usec), &c->age_usec))
                        c->age_usec = INT64_MAX;
                /* scan.c calls an mtime in the future "changed within
                 * settle", the safe side without memory. With memory:
                 * unchanged for settle seconds of our own clock is settled,
                 * whatever the wall clock says. */
                if (!c->complete && c->mtime_usec > wall_usec && boot - e->same_usec >= settle_usec)
                        c->complete = true;
                /* and the other way: a change seen within settle is not
                 * settled, however old the wall clock makes the mtime */
                if (c->complete && e->changed && boot - e->same_usec < settle_usec)
                        c->complete = false;
        }
        for (size_t i = 0; i < a->n; i++)
                if (!a->v[i].moved)
                        free(a->v[i].name);
        free(a->v);
        qsort(v, n, sizeof(*v), seen_cmp);
        a->v = v;
        a->n = n;
        return 0;
}

void ages_finish(struct ages *a)
{
        for (size_t i = 0; i < a->n; i++)
                free(a->v[i].name);
        free(a->v);
        *a = (struct ages){};
}

struct ages_carried {
        char *root, *run;
        struct ages ages;
};

static int carried_cmp(const void *x, const void *y)
{
        const struct ages_carried *a = x, *b = y;
        int r = strcmp(a->root, b->root);

        return r != 0 ? r : strcmp(a->run, b->run);
}

int ages_carry_add(struct ages_carry *c, const char *root, const char *run, struct ages *a)
{
        struct ages_carried *e;

        if (a->n == 0)
                return 0;
        if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 64;
                struct ages_carried *v = reallocarray(c->v, cap, sizeof(*v));
                if (!v) {
                        ages_finish(a);
                        return -ENOMEM;
                }
                c->v = v;
                c->cap = cap;
        }
        e = &c->v[c->n];
        *e = (struct ages_carried){.root = strdup(root), .run = strdup(run), .ages = *a};
        *a = (struct ages){};
        if (!e->root || !e->run) {
                free(e->root);
                free(e->run);
                ages_finish(&e->ages);
                return -ENOMEM;
        }
        c->n++;
        c->sorted = false;
        return 0;
}

void ages_carry_take(struct ages_carry *c, const char *root, const char *run, struct ages *ret)
{
        struct ages_carried key = {.root = (char *)root, .run = (char *)run}, *e;

        if (c->n == 0)
                return;
        if (!c->sorted) {
                qsort(c->v, c->n, sizeof(*c->v), carried_cmp);
                c->sorted = true;
        }
        e = bsearch(&key, c->v, c->n, sizeof(*c->v), carried_cmp);
        if (!e || e->ages.n == 0)
                return;
        ages_finish(ret);
        *ret = e->ages;
        e->ages = (struct ages){};
}

void ages_carry_finish(struct ages_carry *c)
{
        for (size_t i = 0; i < c->n; i++) {
                free(c->v[i].root);
                free(c->v[i].run);
                ages_finish(&c->v[i].ages);
        }
        free(c->v);
        *c = (struct ages_carry){};
}
