/* Tombstone records: what makes a ".ckptd-trash-" entry ckptd's own.
 *
 * Before a checkpoint is renamed to its tombstones, a record naming the root,
 * the run and every member (name, tombstone name, dev, ino, type, birth
 * time) is written
 * to a directory only ckptd's user can write. Start-up finishes only recorded
 * tombstones whose identity still matches; anything else named like a
 * tombstone is an ordinary entry. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct tombrec_member {
        char *name; /* the member's own name in the run */
        char *tomb; /* its tombstone name */
        uint64_t dev, ino;
        unsigned type; /* S_IFMT bits */
        /* statx(2) birth time, when the filesystem has one (btime_sec 0 and
         * btime_nsec 0: unknown): an inode number reused by a new file
         * after the old one was deleted does not match. */
        int64_t btime_sec;
        uint32_t btime_nsec;
        /* its ctime when recorded (ctime_sec 0 and ctime_nsec 0: unknown,
         * a record of an older ckptd): a member the removal had not
         * renamed yet, written in place since (same inode, same birth: a
         * trainer saving that name again), is not ours any more. */
        int64_t ctime_sec;
        uint32_t ctime_nsec;
};

struct tombrec {
        char id[33]; /* 128 random bits in hex: the record's file name */
        char *root;  /* the watch root as configured */
        char *run;   /* the run, relative to the root */
        /* the root directory's identity, when known (has_root_id): a watch
         * spelled otherwise (a symlink above it, "a/./b") is the same */
        uint64_t root_dev, root_ino;
        bool has_root_id;
        uint64_t run_dev, run_ino;
        struct tombrec_member *m;
        size_t n;
};

/* The state directory: $STATE_DIRECTORY (its first entry), else
 * /var/lib/ckptd for root, else $XDG_STATE_HOME/ckptd or
 * ~/.local/state/ckptd. Returns a malloc'd path or NULL (-ENOMEM, no HOME). */
char *tombrec_state_path(void);
/* Create (0700) and open the records directory below state_path; refuse a
 * directory that another user owns or that others can write (-EPERM).
 * Returns an O_DIRECTORY fd or -errno. */
int tombrec_open(const char *state_path);
/* Give r a fresh random id (getrandom(2)). */
int tombrec_new_id(struct tombrec *r);
/* Write r atomically and durably: tmp file, fsync, rename, fsync the
 * directory. Replaces an earlier version of the same id. */
int tombrec_write(int dir_fd, const struct tombrec *r);
/* Remove the record with r's id; a missing one is fine. */
int tombrec_delete(int dir_fd, const struct tombrec *r);
/* Every readable record of root `root`, the directory root_dev:root_ino
 * (when not 0:0) under whatever name, sorted by id. Unreadable or malformed
 * records are skipped and counted in *ret_bad (may be NULL). */
int tombrec_load(int dir_fd, const char *root, uint64_t root_dev, uint64_t root_ino, struct tombrec **ret,
                 size_t *ret_n, unsigned *ret_bad);
void tombrec_finish(struct tombrec *r);
void tombrecs_free(struct tombrec *v, size_t n);
