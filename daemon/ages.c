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

static int64_t wall_age(int64_t wall_usec, int64_t mtime_usec)
{
        int64_t age;

        /* from the future (or absurdly far away): age 0 */
        if (__builtin_sub_overflow(wall_usec, mtime_usec, &age) || age < 0)
                return 0;
        return age;
}

void ages_keep(struct ages *a, struct ckpt *c)
{
        if (!c->age_known) {
                ckpt_finish(c);
                return;
        }
        if (a->n == a->cap) {
                size_t cap = a->cap ? a->cap * 2 : 4;
                struct ckpt *v = reallocarray(a->v, cap, sizeof(*v));

                if (!v) {
                        a->lost = true;
                        ckpt_finish(c);
                        return;
                }
                a->v = v;
                a->cap = cap;
        }
        a->v[a->n++] = *c;
        memset(c, 0, sizeof(*c));
}

void ages_keep_run(struct ages *a, struct run *run)
{
        size_t n = 0;

        for (size_t i = 0; i < run->n_ckpts; i++)
                n += run->ckpts[i].age_known;
        /* room for all at once: one copy, not a doubling per record */
        if (n > a->cap - a->n) {
                struct ckpt *v = reallocarray(a->v, a->n + n, sizeof(*v));

                if (v) {
                        a->v = v;
                        a->cap = a->n + n;
                }
        }
        for (size_t i = 0; i < run->n_ckpts; i++)
                ages_keep(a, &run->ckpts[i]);
        run->n_ckpts = 0;
}

static int kept_name_cmp(const void *x, const void *y)
{
        return strcmp(((const struct ckpt *)x)->name, ((const struct ckpt *)y)->name);
}

/* The kept record named name, not taken yet, sorting them by name once when
 * there are many to look up. */
static struct ckpt *kept_find(struct ages *a, size_t n_lookups, bool *sorted, const char *name)
{
        struct ckpt key = {.name = (char *)name}, *f;

        if (a->n == 0)
                return NULL;
        if (!*sorted && n_lookups > 8) {
                qsort(a->v, a->n, sizeof(*a->v), kept_name_cmp);
                *sorted = true;
        }
        if (!*sorted) {
                for (size_t i = 0; i < a->n; i++)
                        if (a->v[i].age_known && strcmp(a->v[i].name, name) == 0)
                                return &a->v[i];
                return NULL;
        }
        f = bsearch(&key, a->v, a->n, sizeof(*a->v), kept_name_cmp);
        return f && f->age_known ? f : NULL;
}

/* The CLOCK_BOOTTIME at which the age of c, timed at the run's last
 * observation (boot time then_usec), was 0. */
static int64_t zero_usec(const struct ckpt *c, uint64_t then_usec)
{
        return (int64_t)then_usec - c->age_usec; /* below 0 after a skipped pass */
}

/* An mtime this far past the wall clock when the daemon sees it is a lie
 * (ckpt.seen_future): not a file written while the daemon looked (its wall
 * clock is read before the scan), nor the few milliseconds two hosts that
 * keep time differ by, but a clock off by minutes, hours or days. */
#define SEEN_FUTURE_USEC (5 * USEC_PER_SEC)

/* c is seen for the first time, or old (NULL: none) timed it before: c
 * timed as old brought up to date; the CLOCK_BOOTTIME at which its age was
 * 0 into *ret_zero. An mtime past future_usec is not believed. */
static void seen_update(struct ckpt *c, struct ckpt *old, uint64_t then_usec, uint64_t boot, int64_t wall_usec,
                        int64_t future_usec, int64_t *ret_zero)
{
        if (!old) {
                *ret_zero = (int64_t)boot - wall_age(wall_usec, c->mtime_usec);
                c->seen_same_usec = boot;
                c->seen_changed = false;
                c->seen_future = c->mtime_usec > future_usec;
                return;
        }
        old->age_known = false; /* taken */
        *ret_zero = zero_usec(old, then_usec);
        c->seen_same_usec = old->seen_same_usec;
        c->seen_changed = old->seen_changed;
        c->seen_future = old->seen_future;
        if (old->mtime_usec != c->mtime_usec || old->size_bytes != c->size_bytes) {
                /* written again: aged from this write on */
                if (old->mtime_usec != c->mtime_usec)
                        *ret_zero = (int64_t)boot - wall_age(wall_usec, c->mtime_usec);
                c->seen_same_usec = boot;
                c->seen_changed = true;
                c->seen_future = c->mtime_usec > future_usec;
        }
}

/* c, whose age was 0 at CLOCK_BOOTTIME zero, observed at boot; its age of
 * boot time age_at. Returns whether that changed its completeness. */
static bool age_set(struct ckpt *c, int64_t zero, uint64_t boot, uint64_t age_at, int64_t wall_usec,
                    uint64_t settle_usec)
{
        /* age_at - zero: its wall-clock age when first seen (or
         * rewritten), plus the boot time since */
        bool was = c->complete;

        if (__builtin_sub_overflow((int64_t)age_at, zero, &c->age_usec))
                c->age_usec = INT64_MAX;
        /* scan.c calls an mtime in the future "changed within settle", the
         * safe side without memory. With memory: unchanged for settle
         * seconds of our own clock is settled, whatever the wall clock
         * says. */
        if (!c->complete && !c->unmarked && c->mtime_usec > wall_usec && boot - c->seen_same_usec >= settle_usec)
                c->complete = true;
        /* and the other way: a change seen within settle is not settled,
         * however old the wall clock makes the mtime */
        if (c->complete && c->seen_changed && boot - c->seen_same_usec < settle_usec)
                c->complete = false;
        return c->complete != was;
}

/* c timed: when a change it saw may still make it incomplete, into
 * *until (kept when later) */
static void changed_note(const struct ckpt *c, uint64_t settle_usec, uint64_t *until)
{
        if (c->age_known && c->seen_changed && c->seen_same_usec + settle_usec > *until)
                *until = c->seen_same_usec + settle_usec;
}

int ages_observe(struct ages *a, struct run *run, int64_t wall_usec, uint64_t settle_usec, size_t quiet_below,
                 size_t *ret_incomplete)
{
        uint64_t boot = (uint64_t)now_usec(CLOCK_BOOTTIME), then_usec = a->observed_usec;
        int64_t wall_now = now_usec(CLOCK_REALTIME);
        int64_t future_usec = (wall_now > wall_usec ? wall_now : wall_usec) + SEEN_FUTURE_USEC;
        size_t n_lookups = 0, first = SIZE_MAX, incomplete = 0, changed = SIZE_MAX;
        bool sorted = false, lost = a->lost;
        /* the quiet ones left as they are: nothing in them can change now */
        bool skip = quiet_below > 0 && quiet_below <= run->n_ckpts && then_usec > 0 && a->changed_known &&
                    boot >= a->changed_until;
        uint64_t age_at = skip ? then_usec : boot, until = skip ? a->changed_until : 0;

        /* A record is immutable once scanned: one that stayed in the index
         * still holds the mtime and size it was timed with, and one that
         * replaced it is compared with the kept record it replaced. Every
         * record timed (age_known) was timed at then_usec, so its age
         * then says when its age was 0. The timed ones first, in one pass
         * that counts the others; those (new since the last observation:
         * at a save, one, the newest) after, in the same order. */
        for (size_t i = skip ? quiet_below : 0; i < run->n_ckpts; i++) {
                struct ckpt *c = &run->ckpts[i];

                if (!c->age_known) {
                        if (n_lookups++ == 0)
                                first = i;
                        continue;
                }
                if (age_set(c, zero_usec(c, then_usec), boot, age_at, wall_usec, settle_usec) && changed == SIZE_MAX)
                        changed = i;
                changed_note(c, settle_usec, &until);
                incomplete += !c->complete;
        }
        for (size_t i = first; n_lookups > 0 && i < run->n_ckpts; i++) {
                struct ckpt *c = &run->ckpts[i], *old;
                int64_t zero;

                if (c->age_known)
                        continue; /* timed above */
                old = kept_find(a, n_lookups, &sorted, c->name);
                if (old || !lost) {
                        seen_update(c, old, then_usec, boot, wall_usec, future_usec, &zero);
                        c->age_known = true;
                        /* timed now (seen_future, what the policy reads):
                         * changed, as a record new since is */
                        age_set(c, zero, boot, age_at, wall_usec, settle_usec);
                        if (i < changed)
                                changed = i;
                        changed_note(c, settle_usec, &until);
                } /* else its age stays unknown: mtime decides */
                incomplete += !c->complete;
        }
        *ret_incomplete = incomplete;
        ages_finish(a);
        a->observed_usec = age_at;
        a->first_changed = changed;
        a->changed_until = until;
        a->changed_known = true;
        return lost ? -ENOMEM : 0;
}

void ages_finish(struct ages *a)
{
        for (size_t i = 0; i < a->n; i++)
                ckpt_finish(&a->v[i]);
        free(a->v);
        *a = (struct ages){};
}

struct ages_carried {
        dev_t dev; /* the root's */
        ino_t ino;
        char *run;
        struct ages ages;
        struct run_told told;
};

void run_told_finish(struct run_told *t)
{
        free(t->read_errors);
        free(t->monitor_missing);
        *t = (struct run_told){};
}

static int carried_cmp(const void *x, const void *y)
{
        const struct ages_carried *a = x, *b = y;

        if (a->dev != b->dev)
                return a->dev < b->dev ? -1 : 1;
        if (a->ino != b->ino)
                return a->ino < b->ino ? -1 : 1;
        return strcmp(a->run, b->run);
}

int ages_carry_add(struct ages_carry *c, dev_t dev, ino_t ino, const char *run, struct ages *a, struct run_told *told)
{
        struct ages_carried *e;

        if (a->n == 0 && !told->read_errors && !told->monitor_missing)
                return 0;
        if (c->n == c->cap) {
                size_t cap = c->cap ? c->cap * 2 : 64;
                struct ages_carried *v = reallocarray(c->v, cap, sizeof(*v));
                if (!v) {
                        ages_finish(a);
                        run_told_finish(told);
                        return -ENOMEM;
                }
                c->v = v;
                c->cap = cap;
        }
        e = &c->v[c->n];
        *e = (struct ages_carried){.dev = dev, .ino = ino, .run = strdup(run), .ages = *a, .told = *told};
        *a = (struct ages){};
        *told = (struct run_told){};
        if (!e->run) {
                ages_finish(&e->ages);
                run_told_finish(&e->told);
                return -ENOMEM;
        }
        c->n++;
        c->sorted = false;
        return 0;
}

void ages_carry_take(struct ages_carry *c, dev_t dev, ino_t ino, const char *run, struct ages *ret,
                     struct run_told *ret_told)
{
        struct ages_carried key = {.dev = dev, .ino = ino, .run = (char *)run}, *e;

        if (c->n == 0)
                return;
        if (!c->sorted) {
                qsort(c->v, c->n, sizeof(*c->v), carried_cmp);
                c->sorted = true;
        }
        e = bsearch(&key, c->v, c->n, sizeof(*c->v), carried_cmp);
        if (!e)
                return;
        run_told_finish(ret_told);
        *ret_told = e->told;
        e->told = (struct run_told){};
        if (e->ages.n == 0)
                return;
        ages_finish(ret);
        *ret = e->ages;
        e->ages = (struct ages){};
}

void ages_carry_finish(struct ages_carry *c)
{
        for (size_t i = 0; i < c->n; i++) {
                free(c->v[i].run);
                ages_finish(&c->v[i].ages);
                run_told_finish(&c->v[i].told);
        }
        free(c->v);
        *c = (struct ages_carry){};
}
