/* Opening and reading beneath a directory fd: the rules every path ckptd
 * opens inside a watch follows (no symlink, no other mount, never above the
 * fd), and reading a whole file that may still grow. */
#pragma once

#include <dirent.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

struct strv;

/* Whether error (-errno) from opening an entry beneath a directory
 * (openat_beneath()) means the path no longer leads to the entry as it was:
 * gone (ENOENT), or replaced by a non-directory (ENOTDIR), a symlink (ELOOP)
 * or a mount point (EXDEV). Any other error is a failed read, never
 * "absent". */
bool open_error_gone_or_replaced(int error);

/* openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV) from dirfd. */
int openat_beneath(int dirfd, const char *path, int flags, mode_t mode);

/* fstatat(AT_SYMLINK_NOFOLLOW) through statx(2), with the mount id in
 * *ret_mnt_id (0 when the kernel gives none). name "" stats dirfd itself. */
int stat_mnt(int dirfd, const char *name, struct stat *ret, uint64_t *ret_mnt_id);

/* The openat_beneath() fallback where a seccomp filter refuses openat2()
 * with ENOSYS: one component at a time, the same rules. */
int openat_beneath_walk(int dirfd, const char *path, int flags, mode_t mode);

/* Whether path, from dirfd (fstatat(2) flags), leads to the inode (dev,
 * ino): 1; 0 when it leads elsewhere or nowhere (ENOENT, ENOTDIR); -errno
 * when that cannot be told. */
int path_leads_to(int dirfd, const char *path, int flags, dev_t dev, ino_t ino);

/* The last component of the len bytes at path, past trailing "/" and "/."
 * ("./global_step10/." and "out/checkpoint-500/" name global_step10 and
 * checkpoint-500); with windows, '\\' separates too ("C:\\out\\checkpoint-500",
 * as HF on Windows writes). *ret_len bytes at the pointer returned: 0 when
 * none is left; "." or ".." are the caller's to refuse. */
const char *path_last(const char *path, size_t len, bool windows, size_t *ret_len);

/* Open a watch root: O_PATH|O_DIRECTORY|O_NOFOLLOW. Returns fd or -errno. */
int root_open(const char *path);

/* A regular file beneath dir_fd opened for reading with O_NONBLOCK, so that a
 * FIFO planted there cannot hang the caller (open(2) blocks on a FIFO until a
 * writer appears); *ret_st is its fstat. Returns fd or -errno. */
int open_file_at(int dir_fd, const char *relpath, struct stat *ret_st);

/* The rest of open regular file fd (st: its fstat) into *ret, NUL-terminated,
 * malloc'd, read to EOF even if it grows (or says size 0, as /proc files do);
 * -EFBIG past max_bytes. */
int read_fd_all(int fd, const struct stat *st, size_t max_bytes, char **ret, size_t *ret_len);
/* A regular file below dir_fd (opened beneath it, never a FIFO or a device)
 * into *ret, NUL-terminated, malloc'd; -EFBIG past max_bytes. */
int read_file_at(int dir_fd, const char *relpath, size_t max_bytes, char **ret, size_t *ret_len);

/* A directory stream on fd, which it takes: closed when it cannot be
 * made. NULL with errno. */
DIR *dir_from_fd(int fd);
/* A directory stream on path, relative to dir_fd. NULL with errno. */
DIR *dir_open_at(int dir_fd, const char *path);
/* The next entry of d but "." and "..": 1 with *ret, 0 at the end, or
 * -errno (a failed readdir(3): a listing cut short). */
int dir_next(DIR *d, struct dirent **ret);
/* The names of d's entries that want() accepts, appended to *ret and
 * sorted; at most max of them (0: no limit), -E2BIG past it. 0, or -errno
 * with what was read so far in *ret. */
int dir_names(DIR *d, bool (*want)(const char *name, const void *userdata), const void *userdata, size_t max,
              struct strv *ret);

/* The parts of a, b, c that are neither NULL nor "." (a run at its root's
 * top is named ".") joined by '/', malloc'd. NULL on ENOMEM. */
char *path_join(const char *a, const char *b, const char *c);

/* mtime of st in microseconds since the epoch (inline: a scan asks it of
 * every entry). */
static inline int64_t stat_mtime_usec(const struct stat *st)
{
        return (int64_t)st->st_mtim.tv_sec * 1000000 + st->st_mtim.tv_nsec / 1000;
}
