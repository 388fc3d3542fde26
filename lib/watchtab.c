/* wd -> watched directories: an open-addressing hash (linear probing,
 * backward-shift deletion, load <= 1/2) of chains of owners. A 20k-directory
 * tree means 20k wds, and every event looks one up. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "watchtab.h"

#define WATCHTAB_MIN_CAP 16

struct watchtab {
        struct watch_dir **slots; /* chain heads; NULL = empty */
        size_t cap;               /* 0 or a power of two */
        size_t n_wds;
        size_t n_dirs;
};

/* The kernel hands out wds in sequence (idr_alloc_cyclic() in
 * fs/notify/inotify/inotify_user.c). Multiplying by an odd constant is a
 * bijection modulo the power-of-two capacity, so consecutive wds land in
 * distinct slots; the constant mixes in sparse ones. */
static size_t home_slot(size_t cap, int wd)
{
        return ((size_t)(uint32_t)wd * 2654435761u) & (cap - 1);
}

/* The slot holding wd, or the empty slot where it would go. cap > 0. */
static size_t probe(const struct watchtab *t, int wd)
{
        size_t i = home_slot(t->cap, wd);

        while (t->slots[i] && t->slots[i]->wd != wd)
                i = (i + 1) & (t->cap - 1);
        return i;
}

static int grow(struct watchtab *t)
{
        size_t cap = t->cap ? t->cap * 2 : WATCHTAB_MIN_CAP;
        struct watch_dir **slots;

        if (cap < t->cap)
                return -ENOMEM;
        slots = calloc(cap, sizeof(*slots));
        if (!slots)
                return -ENOMEM;
        for (size_t i = 0; i < t->cap; i++) {
                struct watch_dir *d = t->slots[i];
                size_t j;

                if (!d)
                        continue;
                j = home_slot(cap, d->wd);
                while (slots[j])
                        j = (j + 1) & (cap - 1);
                slots[j] = d;
        }
        free(t->slots);
        t->slots = slots;
        t->cap = cap;
        return 0;
}

/* Empty slot i and move later members of its probe run back, so that
 * lookups never need tombstones (Knuth, TAOCP 6.4, algorithm R). */
static void delete_slot(struct watchtab *t, size_t i)
{
        size_t mask = t->cap - 1, j = i;

        t->slots[i] = NULL;
        for (;;) {
                size_t k;

                j = (j + 1) & mask;
                if (!t->slots[j])
                        break;
                k = home_slot(t->cap, t->slots[j]->wd);
                /* Leave slots[j] where it is when its home k lies
                 * cyclically in (i, j]: the hole does not cut its run. */
                if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
                        continue;
                t->slots[i] = t->slots[j];
                t->slots[j] = NULL;
                i = j;
        }
        t->n_wds--;
}

struct watchtab *watchtab_new(void)
{
        return calloc(1, sizeof(struct watchtab));
}

struct watch_dir *watch_dir_free(struct watch_dir *d)
{
        while (d) {
                struct watch_dir *next = d->next;

                free(d->path);
                free(d);
                d = next;
        }
        return NULL;
}

struct watchtab *watchtab_free(struct watchtab *t)
{
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->cap; i++)
                watch_dir_free(t->slots[i]);
        free(t->slots);
        free(t);
        return NULL;
}

int watchtab_put(struct watchtab *t, int wd, unsigned root, enum watch_kind kind, const char *path, dev_t dev,
                 ino_t ino, struct watch_dir **ret)
{
        struct watch_dir *d, **link;
        size_t i;
        char *copy;
        int r;

        if ((unsigned)kind >= _WATCH_KIND_MAX || !path)
                return -EINVAL;

        copy = strdup(path);
        if (!copy)
                return -ENOMEM;

        if (t->cap > 0) {
                i = probe(t, wd);
                /* Owners are kept sorted by root so that dispatch can walk
                 * them by "next root above the last one" while callbacks
                 * change the chain. */
                for (link = &t->slots[i]; *link && (*link)->root < root; link = &(*link)->next)
                        ;
                if (*link && (*link)->root == root) {
                        d = *link;
                        free(d->path);
                        d->path = copy;
                        d->kind = kind;
                        d->dev = dev;
                        d->ino = ino;
                        if (ret)
                                *ret = d;
                        return 0;
                }
                if (t->slots[i])
                        goto insert;
        }

        if ((t->n_wds + 1) * 2 > t->cap) {
                r = grow(t);
                if (r < 0) {
                        free(copy);
                        return r;
                }
        }
        i = probe(t, wd);
        link = &t->slots[i];

insert:
        d = calloc(1, sizeof(*d));
        if (!d) {
                free(copy);
                return -ENOMEM;
        }
        *d = (struct watch_dir){
                .wd = wd,
                .root = root,
                .kind = kind,
                .path = copy,
                .dev = dev,
                .ino = ino,
                .next = *link,
        };
        if (!t->slots[i])
                t->n_wds++;
        *link = d;
        t->n_dirs++;
        if (ret)
                *ret = d;
        return 1;
}

struct watch_dir *watchtab_get(const struct watchtab *t, int wd)
{
        if (t->cap == 0)
                return NULL;
        return t->slots[probe(t, wd)];
}

struct watch_dir *watchtab_get_root(const struct watchtab *t, int wd, unsigned root)
{
        for (struct watch_dir *d = watchtab_get(t, wd); d; d = d->next)
                if (d->root == root)
                        return d;
        return NULL;
}

struct watch_dir *watchtab_take(struct watchtab *t, int wd, unsigned root)
{
        struct watch_dir *d, **link;
        size_t i;

        if (t->cap == 0)
                return NULL;
        i = probe(t, wd);
        for (link = &t->slots[i]; (d = *link); link = &d->next)
                if (d->root == root)
                        break;
        if (!d)
                return NULL;
        *link = d->next;
        d->next = NULL;
        t->n_dirs--;
        if (!t->slots[i])
                delete_slot(t, i);
        return d;
}

struct watch_dir *watchtab_take_wd(struct watchtab *t, int wd)
{
        struct watch_dir *chain;
        size_t i;

        if (t->cap == 0)
                return NULL;
        i = probe(t, wd);
        chain = t->slots[i];
        if (!chain)
                return NULL;
        for (struct watch_dir *d = chain; d; d = d->next)
                t->n_dirs--;
        delete_slot(t, i);
        return chain;
}

size_t watchtab_n_wds(const struct watchtab *t)
{
        return t->n_wds;
}

size_t watchtab_n_dirs(const struct watchtab *t)
{
        return t->n_dirs;
}

bool watchtab_next(const struct watchtab *t, struct watchtab_iter *it, struct watch_dir **ret)
{
        if (it->d) {
                if (it->d->next) {
                        it->d = it->d->next;
                        *ret = it->d;
                        return true;
                }
                it->slot++;
        }
        for (; it->slot < t->cap; it->slot++)
                if (t->slots[it->slot]) {
                        it->d = t->slots[it->slot];
                        *ret = it->d;
                        return true;
                }
        it->d = NULL;
        return false;
}

/* Call cb for each owner of wd. The chain is looked up again after every
 * callback, which may have added or removed watches (even this one). */
static int deliver(struct watchtab *t, int wd, struct watch_event *ev, watch_event_fn *cb, void *userdata)
{
        bool first = true;
        unsigned last = 0;
        int n = 0;

        for (;;) {
                struct watch_dir *d = watchtab_get(t, wd);

                while (d && !first && d->root <= last)
                        d = d->next;
                if (!d)
                        return n;
                first = false;
                last = d->root;
                ev->dir = d;
                cb(userdata, ev);
                n++;
        }
}

int watchtab_dispatch(struct watchtab *t, const uint8_t *buf, size_t len, bool *overflow_seen, watch_event_fn *cb,
                      void *userdata)
{
        struct inotify_rec rec;
        size_t offset = 0;
        int n = 0, r;

        while ((r = inotify_next(buf, len, &offset, &rec)) > 0) {
                struct watch_event ev = {
                        .kind = inotify_classify(rec.mask),
                        .name = rec.name,
                        .name_len = rec.name_len,
                        .is_dir = rec.mask & IN_ISDIR,
                        .cookie = rec.cookie,
                        .mask = rec.mask,
                };
                struct watch_dir *gone;

                switch (ev.kind) {
                case WATCH_EVENT_OVERFLOW:
                        /* inotify(7): when the queue exceeds max_queued_events,
                         * one IN_Q_OVERFLOW (wd -1) is queued and later events
                         * are lost until the queue drains. Anything may have
                         * happened; the caller rescans, and once is enough. */
                        if (*overflow_seen)
                                break;
                        *overflow_seen = true;
                        cb(userdata, &ev);
                        n++;
                        break;

                case WATCH_EVENT_IGNORED:
                        /* inotify(7): IN_IGNORED means the watch is gone (its
                         * directory was deleted or unmounted, or we called
                         * inotify_rm_watch(2)); the wd must not be used again.
                         * Drop it first so that the callback sees a table
                         * without it; after our own rm_watch it is already
                         * gone and the event is dropped here. */
                        gone = watchtab_take_wd(t, rec.wd);
                        for (struct watch_dir *d = gone; d; d = d->next) {
                                ev.dir = d;
                                cb(userdata, &ev);
                                n++;
                        }
                        watch_dir_free(gone);
                        break;

                default: n += deliver(t, rec.wd, &ev, cb, userdata); break;
                }
        }
        return r < 0 ? r : n;
}

static const char *const watch_kind_table[_WATCH_KIND_MAX] = {
        [WATCH_ROOT] = "root",
        [WATCH_RUN] = "run",
        [WATCH_PARENT] = "parent",
        [WATCH_CKPT] = "ckpt",
};

const char *watch_kind_to_string(enum watch_kind k)
{
        if ((unsigned)k >= ELEMENTSOF(watch_kind_table))
                return NULL;
        return watch_kind_table[k];
}
