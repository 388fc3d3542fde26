/* Verification of a victim right before its deletion: BSD flock pins read
 * from /proc/locks (no lock taken), and whether another process has a file
 * open (a write lease, fcntl(2) F_SETLEASE). Nothing here deletes. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define PROC_LOCKS "/proc/locks"

/* Files of a directory checkpoint changed within this many seconds before
 * the check are checked for openers; older ones are not opened. */
#define VERIFY_RECENT_SEC 3600

/* What a check found: nothing against the deletion, or why to keep. */
enum verify_verdict {
        VERIFY_FREE,    /* no holder seen */
        VERIFY_FLOCK,   /* another process holds a BSD flock on it */
        VERIFY_IN_USE,  /* another process has it open */
        VERIFY_CHANGED, /* without leases: its size or mtime moved since the scan */
        VERIFY_KEPT,    /* kept by a check of the caller's, which said why */
        VERIFY_LINKED,  /* another link holds its blocks: removing it frees no room */
        _VERIFY_VERDICT_MAX,
};

/* remove_file_checked() returns this plus an errno when its check failed. */
#define VERIFY_UNCHECKED_BASE 1000

struct flock_entry {
        dev_t dev;
        ino_t ino;
        pid_t pid;  /* as /proc/locks shows it: 0 or -1 where it cannot */
        bool write; /* LOCK_EX */
};

/* Every FLOCK holder of /proc/locks, sorted by (dev, ino). */
struct flock_table {
        struct flock_entry *v;
        size_t n;
};

/* Read the FLOCK holders listed in `path` (PROC_LOCKS) into *ret. Returns
 * 0, or -errno (-ENOENT: no /proc, see verify_flock_probe()). */
int flock_table_load(struct flock_table *ret, const char *path);
/* Whether a flock held on (dev, ino) is listed. */
bool flock_table_has(const struct flock_table *t, dev_t dev, ino_t ino);
void flock_table_finish(struct flock_table *t);

/* The fallback where /proc is not mounted: take and drop LOCK_EX|LOCK_NB on
 * fd. 1 when another open file description holds a lock, 0 when none, or
 * -errno when the probe itself failed. */
int verify_flock_probe(int fd);

/* Take a write lease on fd (opened O_RDONLY): 0 when held (drop it with
 * verify_lease_drop()), -EAGAIN when another process has the file open, or
 * -errno; verify_lease_unsupported() tells a filesystem or privilege without
 * leases from a failure. SIGIO (a lease break) is ignored from the first
 * call on, unless the process handles it. */
int verify_lease_take(int fd);
void verify_lease_drop(int fd);
bool verify_lease_unsupported(int error);
/* Whether error, from a lease asked on a file of device dev, says leases
 * cannot be taken there (verify_lease_unsupported()): then the caller
 * falls back to the file's size and mtime, and the refusal is kept for
 * verify_lease_refusal_unsaid(). */
bool verify_lease_fallback(int error, dev_t dev);
/* Each device on which leases were refused, with the first error, handed
 * out once for the caller to say: true and *ret_dev, *ret_error set, or
 * false when none is left unsaid. */
bool verify_lease_refusal_unsaid(dev_t *ret_dev, int *ret_error);

/* Whether the regular file name below dir_fd (its (dev, ino) in *expect) is
 * open elsewhere: VERIFY_FREE or VERIFY_IN_USE; VERIFY_CHANGED when, not
 * open, its mtime is newer than newest_usec (written since the scan: with
 * leases, closed since). -ESTALE when it is no longer that file, or -errno. */
int verify_file(int dir_fd, const char *name, const struct stat *expect, int64_t newest_usec);
/* Whether the regular file open at fd (read-only) is open for writing by
 * another: 1; 0 when not, holding a read lease until fd's close so that
 * none opens it for writing meanwhile (such an open waits for the close, up
 * to fs.lease-break-time: verify_fd_lease_kept() tells); -errno, where
 * verify_lease_unsupported() tells a filesystem or privilege without
 * leases. */
int verify_fd_writer(int fd);
/* After verify_fd_writer() gave 0: whether the lease still stands, no open
 * for writing having broken it since: 1, 0, or -errno. */
int verify_fd_lease_kept(int fd);
/* Whether file name of dir_fd, (dev, ino) as in expect, is open for
 * writing by any process (a read lease probe): VERIFY_IN_USE or
 * VERIFY_FREE; where leases cannot be taken, or the file cannot be opened
 * (EACCES), VERIFY_CHANGED when its mtime is newer than newest_usec;
 * -ESTALE gone or replaced, or -errno. Readers do not count. */
int verify_file_writer(int dir_fd, const char *name, const struct stat *expect, int64_t newest_usec);
/* The same, where only a lease granted now says free: VERIFY_FREE or
 * VERIFY_IN_USE; -EMLINK when the file has another link (its writes raise
 * inotify events under that name), -ESTALE gone or replaced, or -errno
 * (where leases cannot be taken too). */
int verify_file_alone(int dir_fd, const char *name, const struct stat *expect);

/* Check a directory checkpoint opened at dir_fd (O_RDONLY|O_DIRECTORY):
 * every entry below it against locks (may be NULL), and every regular file
 * whose mtime is at or after since_usec with verify_file() (so one written
 * since the scan, newer than newest_usec, is VERIFY_CHANGED). The walk keeps
 * one directory open at a time, never follows symlinks nor crosses mounts.
 * Returns an enum verify_verdict, or -errno (-ESTALE when the tree moved). */
int verify_tree(int dir_fd, const struct flock_table *locks, int64_t since_usec, int64_t newest_usec);
/* Whether any regular file below the directory checkpoint at dir_fd is
 * open for writing by any process (a read lease probe on each, as
 * verify_file_writer()): VERIFY_IN_USE or VERIFY_FREE; where leases cannot
 * be taken, VERIFY_CHANGED when one's mtime is newer than newest_usec;
 * -ESTALE when the tree moved, or -errno. Readers do not count. */
int verify_tree_writer(int dir_fd, int64_t newest_usec);
