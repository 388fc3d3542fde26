/* Pure free-space floor of one filesystem: the floor and target in bytes, and
 * which checkpoints the policy keeps are evicted to reach them, worst first.
 *
 * The caller resolves sizes (size_resolve() against the filesystem's total),
 * remembers the largest complete checkpoint seen, calls statvfs, and puts the
 * checkpoints of every run on that filesystem into one array. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"

/* One filesystem, all in bytes. */
struct floor_state {
        uint64_t free_bytes;   /* f_bavail * f_frsize */
        uint64_t floor_bytes;  /* below this we evict; see floor_bytes() */
        uint64_t target_bytes; /* then evict until free reaches this; >= floor */
};

/* One checkpoint on the filesystem, as the floor sees it. */
struct floor_cand {
        size_t run;         /* caller's id of its run: best and newest are per run */
        int best_rank;      /* verdict.best_rank; 0 = unranked */
        double order;       /* newer is larger */
        int64_t mtime_usec; /* the newest of its files: the last one written is the run's newest too */
        uint64_t seen_usec; /* when a daemon saw it as it is (ckpt.seen_same_usec), 0: unknown */
        uint64_t bytes;
        bool kept; /* verdict.keep; the policy deletes the others anyway */
        bool pinned;
        bool unreadable;  /* a read failed: protected as pinned, and no last written */
        bool seen_future; /* its mtime, in the future when a daemon saw it, tells nothing (ckpt.seen_future) */
        bool complete;
        bool linked;    /* ckpt.linked: evicting it frees nothing */
        bool unfloored; /* its watch sets no floor (min_free, headroom) */
};

/* Why a kept checkpoint is never evicted: bits (1u << enum floor_protect). */
enum floor_protect {
        FLOOR_PROTECT_BEST,   /* the best ranked complete kept one of its run */
        FLOOR_PROTECT_NEWEST, /* newest complete kept one of its run, by order or the last written */
        FLOOR_PROTECT_PINNED,
        FLOOR_PROTECT_INCOMPLETE, /* still being written */
        FLOOR_PROTECT_LINKED,     /* its files have other links: evicting it frees no room */
        /* its watch sets no floor: another's on the file system does not
         * evict what that watch keeps */
        FLOOR_PROTECT_UNFLOORED,
        _FLOOR_PROTECT_MAX,
};

/* max(min_free_bytes, headroom x largest_bytes), rounded up and saturated;
 * headroom <= 0 (or NaN) turns the headroom part off. */
uint64_t floor_bytes(uint64_t min_free_bytes, double headroom, uint64_t largest_bytes);
/* The target: max(target_free_bytes, level_bytes = the floor); an unset
 * target_free resolves to 0 and so means the floor itself. */
uint64_t floor_target(uint64_t level_bytes, uint64_t target_free_bytes);
/* Fill *ret from free space and the resolved settings of one filesystem. */
void floor_state_init(struct floor_state *ret, uint64_t free_bytes, uint64_t min_free_bytes, uint64_t target_free_bytes,
                      double headroom, uint64_t largest_bytes);
/* True when free space is below the floor. Between floor and target there is
 * nothing to do: that gap is the hysteresis. */
bool floor_needed(const struct floor_state *st);
/* max(seen_bytes, bytes of every complete one in c): the caller keeps the
 * result per filesystem, so a deleted giant still counts. */
uint64_t floor_largest(const struct floor_cand *c, size_t n, uint64_t seen_bytes);
/* A candidate from a checkpoint whose verdict the policy has filled. */
void floor_cand_from_ckpt(struct floor_cand *ret, size_t run, const struct ckpt *c);

/* The best ranked of c[idx[0..n)], one run's: of the kept complete ones,
 * the lowest best_rank above 0; SIZE_MAX when none is ranked. */
size_t floor_best(const struct floor_cand *c, const size_t *idx, size_t n);
/* The last written of c[idx[0..n)]: of the kept, complete and readable
 * ones, the one with the strictly newest mtime, as the policy's
 * newest-written (a tie says nothing of which was written last);
 * SIZE_MAX when none. */
size_t floor_last_written(const struct floor_cand *c, const size_t *idx, size_t n);
/* Fill ret_why[i] (n entries) with the floor_protect bits of c[i]; 0 for
 * evictable ones and for those the policy does not keep. -ENOMEM, else 0. */
int floor_protect(const struct floor_cand *c, size_t n, unsigned *ret_why);

/* When floor_needed(st), choose victims among the kept, unprotected ones,
 * worst first: unranked ones, then the highest best_rank (every run's k-th
 * best before any (k-1)-th), then the older, then the lower run id; until
 * free + victims' bytes >= target. ret_victims receives indices into c and
 * must hold n entries (it is also the scratch space, so this never
 * allocates). Returns 1 when even evicting every candidate leaves free below
 * the floor (then all candidates are victims and *ret_short_bytes says how
 * much is missing), 0 otherwise (nothing to do when free >= floor), -EINVAL on
 * bad arguments. ret_short_bytes may be NULL. */
int floor_victims(const struct floor_state *st, const struct floor_cand *c, size_t n, size_t *ret_victims,
                  size_t *ret_n_victims, uint64_t *ret_short_bytes);
/* Every kept, unprotected candidate in c, in the order floor_victims()
 * takes them, into ret (n entries); returns how many. An evictor that walks
 * this order until free space reaches the target takes the next one when a
 * removal is refused (a checkpoint in use, a flock). */
size_t floor_evictable(const struct floor_cand *c, size_t n, size_t *ret);

const char *floor_protect_to_string(enum floor_protect p);
