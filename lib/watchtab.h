/* The table behind daemon/watch.c: inotify watch descriptor -> the watched
 * directories it stands for, and the dispatch of a decoded read(2) buffer to
 * a callback. No syscalls, so unit tests drive it with handcrafted buffers.
 *
 * One wd may stand for several directories: inotify_add_watch(2) returns the
 * existing wd when the inode is already watched (inotify(7)), e.g. a run of
 * one root that is another root, or a root's parent that is a run elsewhere.
 * Each (wd, root) pair is one struct watch_dir; an event goes to all of them. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "inotify_decode.h"

enum watch_kind {
        WATCH_ROOT,   /* the root directory of a watch */
        WATCH_RUN,    /* a run directory below the root */
        WATCH_PARENT, /* a root's parent: for the root's removal and return */
        WATCH_CKPT,   /* a directory checkpoint, watched until it is complete */
        _WATCH_KIND_MAX,
};

struct watch_dir {
        int wd;
        unsigned root; /* caller's root index (or any tag it likes) */
        enum watch_kind kind;
        char *path; /* ROOT ".", RUN/CKPT relative to the root,
                     * PARENT the parent's absolute path */
        dev_t dev;  /* of the watched directory, from fstat */
        ino_t ino;
        struct watch_dir *next; /* internal: next owner of wd, by root */
};

/* One event for one watched directory. */
struct watch_event {
        enum watch_event_kind kind;
        const struct watch_dir *dir; /* NULL for OVERFLOW */
        const char *name;            /* entry in dir, NUL-terminated; "" for events on dir itself */
        size_t name_len;
        bool is_dir;     /* IN_ISDIR: the entry is a directory */
        uint32_t cookie; /* pairs GONE (IN_MOVED_FROM) with MOVED_IN/DIR_CREATED */
        uint32_t mask;   /* raw mask, e.g. IN_MOVED_TO vs IN_CREATE of a directory */
};

/* Event callback. ev and ev->dir are valid until it returns (or removes that
 * watch); it may add and remove watches. */
typedef void watch_event_fn(void *userdata, const struct watch_event *ev);

struct watchtab;

/* An empty table, or NULL on ENOMEM. */
struct watchtab *watchtab_new(void);
/* Free the table and every entry; takes NULL, returns NULL. */
struct watchtab *watchtab_free(struct watchtab *t);

/* Record that wd watches `path` for `root`. An existing (wd, root) entry is
 * updated in place (the directory was renamed): returns 0; a new one 1;
 * -ENOMEM. *ret (may be NULL) gets the entry. */
int watchtab_put(struct watchtab *t, int wd, unsigned root, enum watch_kind kind, const char *path, dev_t dev,
                 ino_t ino, struct watch_dir **ret);
/* The first owner of wd (follow ->next for the others), or NULL. */
struct watch_dir *watchtab_get(const struct watchtab *t, int wd);
/* The entry of (wd, root), or NULL. */
struct watch_dir *watchtab_get_root(const struct watchtab *t, int wd, unsigned root);
/* Detach the entry of (wd, root) from the table and return it (free it with
 * watch_dir_free), or NULL. */
struct watch_dir *watchtab_take(struct watchtab *t, int wd, unsigned root);
/* Detach every owner of wd, as a ->next chain, or NULL. */
struct watch_dir *watchtab_take_wd(struct watchtab *t, int wd);
/* Free a detached entry and its ->next chain; returns NULL. */
struct watch_dir *watch_dir_free(struct watch_dir *d);

/* Distinct wds (kernel watches) in the table. */
size_t watchtab_n_wds(const struct watchtab *t);
/* Entries, i.e. (wd, root) pairs. */
size_t watchtab_n_dirs(const struct watchtab *t);

/* Start zeroed: struct watchtab_iter it = {0}; */
struct watchtab_iter {
        size_t slot;
        struct watch_dir *d;
};
/* Next entry in table order (unspecified); false at the end. The table must
 * not change while iterating: collect first, then remove. */
bool watchtab_next(const struct watchtab *t, struct watchtab_iter *it, struct watch_dir **ret);

/* Decode buf[0..len) (one read(2) of the inotify fd) and call cb for every
 * event of every owner of its wd. Events of unknown wds (removed watches whose
 * queued events still arrive) are dropped. IN_IGNORED detaches the wd's
 * entries before cb sees them, and frees them after. OVERFLOW is delivered
 * only while *overflow_seen is false, which it then sets, so one read loop
 * reports it once. Returns the number of callbacks or -EBADMSG. */
int watchtab_dispatch(struct watchtab *t, const uint8_t *buf, size_t len, bool *overflow_seen, watch_event_fn *cb,
                      void *userdata);

/* "root", "run", "parent", "ckpt"; NULL when out of range. */
const char *watch_kind_to_string(enum watch_kind k);
