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
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ages.h"
#include "macro.h"

struct ckpt_seen {
        char *name;
        double order;           /* the checkpoint's, as last seen: the table's key */
        uint64_t first_usec;    /* CLOCK_BOOTTIME when first seen (or rewritten) */
        int64_t first_age_usec; /* its wall-clock age then, >= 0 */
        int64_t mtime_usec;     /* as last seen */
        uint64_t size_bytes;
        uint64_t same_usec; /* CLOCK_BOOTTIME since when mtime and size are as seen */
        bool changed;       /* seen changing: same_usec is a change we saw */
        bool moved;         /* to the new table (ages_observe) */
};

/* The order of scan.c's runs: by order (NaN last), then by name. */
static int key_cmp(double order_a, const char *name_a, double order_b, const char *name_b)
{
        if (isnan(order_a) || isnan(order_b)) {
                if (isnan(order_a) != isnan(order_b))
                        return isnan(order_a) ? 1 : -1;
        } else if (order_a != order_b)
                return order_a < order_b ? -1 : 1;
        return strcmp(name_a, name_b);
}

static int seen_name_cmp(const void *x, const void *y)
{
        return strcmp((*(struct ckpt_seen *const *)x)->name, (*(struct ckpt_seen *const *)y)->name);
}

static int64_t wall_age(int64_t wall_usec, int64_t mtime_usec)
{
        int64_t age;

        /* from the future (or absurdly far away): age 0 */
        if (__builtin_sub_overflow(wall_usec, mtime_usec, &age) || age < 0)
                return 0;
        return age;
}

/* e := what was seen of c: old (NULL: nothing) brought up to date. false
 * when out of memory: its age stays unknown. */
static bool seen_update(struct ckpt_seen *e, struct ckpt_seen *old, const struct ckpt *c, uint64_t boot,
                        int64_t wall_usec)
{
        if (old) {
                *e = *old;
                old->moved = true; /* its name belongs to e now */
                e->order = c->order;
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
                return true;
        }
        *e = (struct ckpt_seen){
                .name = strdup(c->name),
                .order = c->order,
                .first_usec = boot,
                .first_age_usec = wall_age(wall_usec, c->mtime_usec),
                .mtime_usec = c->mtime_usec,
                .size_bytes = c->size_bytes,
                .same_usec = boot,
        };
        return e->name != NULL;
}

/* The entry of the old table named name among left[0..n_left) (those the
 * walk in ages_observe() did not match), sorting them by name once when
 * there are many to look up. */
static struct ckpt_seen *left_find(struct ckpt_seen **left, size_t n_left, size_t n_lookups, bool *sorted,
                                   const char *name)
{
        struct ckpt_seen key = {.name = (char *)name}, *k = &key, **f;

        if (n_left == 0)
                return NULL;
        if (!*sorted && n_lookups > 8) {
                qsort(left, n_left, sizeof(*left), seen_name_cmp);
                *sorted = true;
        }
        if (!*sorted) {
                for (size_t i = 0; i < n_left; i++)
                        if (!left[i]->moved && strcmp(left[i]->name, name) == 0)
                                return left[i];
                return NULL;
        }
        f = bsearch(&k, left, n_left, sizeof(*left), seen_name_cmp);
        return f && !(*f)->moved ? *f : NULL;
}

int ages_observe(struct ages *a, struct run *run, int64_t wall_usec, uint64_t settle_usec)
{
        uint64_t boot = (uint64_t)now_usec(CLOCK_BOOTTIME);
        struct ckpt_seen *v = calloc(run->n_ckpts + 1, sizeof(*v));
        struct ckpt_seen **left = NULL;
        size_t *unmatched = NULL, n_left = 0, n_unmatched = 0, j = 0, n = 0;
        bool sorted = false;

        if (!v)
                return -ENOMEM;
        /* Both the table and the run are in scan.c's order, so one walk
         * through both matches nearly all of them in O(n): what it passes
         * over in the table (gone, or whose order changed) is left[], what
         * it finds nowhere in the table unmatched[], looked up by name
         * after it. A run in another order only makes that list longer. */
        /* left[] and unmatched[] in one allocation */
        left = malloc((a->n + 1) * sizeof(*left) + (run->n_ckpts + 1) * sizeof(*unmatched));
        if (!left) {
                free(v);
                return -ENOMEM;
        }
        unmatched = (size_t *)(left + a->n + 1);
        for (size_t i = 0; i < run->n_ckpts; i++) {
                const struct ckpt *c = &run->ckpts[i];
                int r = 1;

                while (j < a->n && (r = key_cmp(a->v[j].order, a->v[j].name, c->order, c->name)) < 0)
                        left[n_left++] = &a->v[j++];
                if (j < a->n && r == 0) {
                        seen_update(&v[i], &a->v[j++], c, boot, wall_usec);
                        continue;
                }
                unmatched[n_unmatched++] = i;
        }
        while (j < a->n)
                left[n_left++] = &a->v[j++];
        for (size_t u = 0; u < n_unmatched; u++) {
                size_t i = unmatched[u];
                const struct ckpt *c = &run->ckpts[i];

                if (!seen_update(&v[i], left_find(left, n_left, n_unmatched, &sorted, c->name), c, boot, wall_usec))
                        v[i].name = NULL; /* its age stays unknown: mtime decides */
        }
        free(left);

        for (size_t i = 0; i < run->n_ckpts; i++) {
                struct ckpt *c = &run->ckpts[i];
                struct ckpt_seen *e = &v[i];

                if (!e->name)
                        continue;
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
                v[n++] = *e; /* n <= i: the entries that have a name, in order */
        }
        for (size_t i = 0; i < a->n; i++)
                if (!a->v[i].moved)
                        free(a->v[i].name);
        free(a->v);
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
