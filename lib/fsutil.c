/* Opening and reading beneath a directory fd (see fsutil.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "fsutil.h"
#include "macro.h"
#include "strv.h"

static bool is_sep(char c, bool windows)
{
        return c == '/' || (windows && c == '\\');
}

const char *path_last(const char *path, size_t len, bool windows, size_t *ret_len)
{
        size_t start;

        for (;;) {
                while (len > 0 && is_sep(path[len - 1], windows))
                        len--;
                if (len >= 2 && path[len - 1] == '.' && is_sep(path[len - 2], windows))
                        len -= 2;
                else
                        break;
        }
        start = len;
        while (start > 0 && !is_sep(path[start - 1], windows))
                start--;
        *ret_len = len - start;
        return path + start;
}

int path_leads_to(int dirfd, const char *path, int flags, dev_t dev, ino_t ino)
{
        struct stat st;

        if (fstatat(dirfd, path, &st, flags) < 0)
                return errno == ENOENT || errno == ENOTDIR ? 0 : -errno;
        return st.st_dev == dev && st.st_ino == ino;
}

int stat_mnt(int dirfd, const char *name, struct stat *ret, uint64_t *ret_mnt_id)
{
        struct statx sx;
        int flags = AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | (*name ? 0 : AT_EMPTY_PATH);

        if (statx(dirfd, name, flags, STATX_BASIC_STATS | STATX_MNT_ID, &sx) < 0)
                return -errno;
        *ret = (struct stat){
                .st_dev = makedev(sx.stx_dev_major, sx.stx_dev_minor),
                .st_ino = sx.stx_ino,
                .st_mode = sx.stx_mode,
                .st_nlink = sx.stx_nlink,
                .st_uid = sx.stx_uid,
                .st_gid = sx.stx_gid,
                .st_size = (off_t)sx.stx_size,
                .st_blocks = (blkcnt_t)sx.stx_blocks,
                .st_mtim = {.tv_sec = sx.stx_mtime.tv_sec, .tv_nsec = sx.stx_mtime.tv_nsec},
                .st_ctim = {.tv_sec = sx.stx_ctime.tv_sec, .tv_nsec = sx.stx_ctime.tv_nsec},
        };
        *ret_mnt_id = (sx.stx_mask & STATX_MNT_ID) ? sx.stx_mnt_id : 0;
        return 0;
}

/* Whether fd is on mount mnt_id (unknown ids compare equal: the kernel
 * checks of openat2 still hold where it is available). */
static bool same_mount(int fd, uint64_t mnt_id)
{
        struct stat st;
        uint64_t id;

        if (stat_mnt(fd, "", &st, &id) < 0)
                return false;
        return id == 0 || mnt_id == 0 || id == mnt_id;
}

/* openat2() refused by a seccomp filter: systemd's RestrictSUIDSGID= and
 * SystemCallFilter= cannot inspect openat2's struct open_how, so they make it
 * fail with ENOSYS. The same rules one component at a time: no absolute path,
 * no "..", no symlink (O_NOFOLLOW, and an O_PATH open of a symlink is
 * refused), no mount crossing (statx STATX_MNT_ID of each step). */
int openat_beneath_walk(int dirfd, const char *path, int flags, mode_t mode)
{
        _cleanup_free_ char *copy = strdup(path);
        struct stat st;
        uint64_t mnt;
        char *comp, *save = NULL, *next;
        int cur = dirfd, fd = -1, r;

        if (!copy)
                return -ENOMEM;
        if (path[0] == '/')
                return -EXDEV;
        r = stat_mnt(dirfd, "", &st, &mnt);
        if (r < 0)
                return r;
        comp = strtok_r(copy, "/", &save);
        if (!comp)
                comp = (char *)".";
        for (; comp; comp = next) {
                bool last;
                int k;

                next = strtok_r(NULL, "/", &save);
                last = next == NULL;
                if (strcmp(comp, "..") == 0) {
                        r = -EXDEV;
                        goto fail;
                }
                if (strcmp(comp, ".") == 0 && !last)
                        continue;
                k = last ? openat(cur, comp, flags | O_NOFOLLOW | O_CLOEXEC, mode)
                         : openat(cur, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (k < 0) {
                        r = errno == ENOTDIR && !last ? -ELOOP : -errno;
                        goto fail;
                }
                if (cur != dirfd)
                        close(cur);
                cur = k;
                if (fstat(k, &st) < 0 || S_ISLNK(st.st_mode)) {
                        r = -ELOOP;
                        goto fail;
                }
                if (!same_mount(k, mnt)) {
                        r = -EXDEV;
                        goto fail;
                }
                if (last)
                        fd = k;
        }
        return fd;
fail:
        if (cur != dirfd)
                close(cur);
        return r;
}

int openat_beneath(int dirfd, const char *path, int flags, mode_t mode)
{
        static bool no_openat2;
        struct open_how how = {
                .flags = (uint64_t)(unsigned)(flags | O_CLOEXEC),
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
        };
        long fd;

        if (no_openat2)
                return openat_beneath_walk(dirfd, path, flags, mode);
        /* openat2(2): a non-zero mode without O_CREAT or O_TMPFILE is EINVAL
         * (open(2) silently ignores it). */
        if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE)
                how.mode = mode;
        fd = syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
        if (fd < 0 && errno == ENOSYS) {
                no_openat2 = true;
                return openat_beneath_walk(dirfd, path, flags, mode);
        }
        if (fd < 0)
                return -errno;
        return (int)fd;
}

int root_open(const char *path)
{
        int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        return fd < 0 ? -errno : fd;
}

bool open_error_gone_or_replaced(int error)
{
        return error == -ENOENT || error == -ENOTDIR || error == -ELOOP || error == -EXDEV;
}

int read_fd_all(int fd, const struct stat *st, size_t max_bytes, char **ret, size_t *ret_len)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0, cap;

        if (S_ISDIR(st->st_mode))
                return -EISDIR;
        if (!S_ISREG(st->st_mode))
                return -EINVAL;
        if ((uint64_t)st->st_size > max_bytes)
                return -EFBIG;

        /* The file may still grow while we read: size the buffer from fstat
         * and keep reading until EOF or the cap. */
        cap = (size_t)st->st_size + 1;
        if (cap < 4096)
                cap = 4096;
        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len + 1 >= cap) {
                        if (cap > max_bytes)
                                return -EFBIG;
                        size_t ncap = cap * 2;
                        char *n = realloc(buf, ncap);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                        cap = ncap;
                }
                ssize_t k = read(fd, buf + len, cap - len - 1);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t)k;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

int open_file_at(int dir_fd, const char *relpath, struct stat *ret_st)
{
        int fd = openat_beneath(dir_fd, relpath, O_RDONLY | O_NOCTTY | O_NONBLOCK, 0);

        if (fd < 0)
                return fd;
        if (fstat(fd, ret_st) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        return fd;
}

int read_file_at(int dir_fd, const char *relpath, size_t max_bytes, char **ret, size_t *ret_len)
{
        _cleanup_close_ int fd = -1;
        struct stat st;

        fd = open_file_at(dir_fd, relpath, &st);
        if (fd < 0)
                return fd;
        return read_fd_all(fd, &st, max_bytes, ret, ret_len);
}

char *path_join(const char *a, const char *b, const char *c)
{
        const char *part[3] = {a, b, c};
        size_t len[3] = {0}, n = 0;
        char *p, *o;

        for (int i = 0; i < 3; i++)
                if (part[i] && strcmp(part[i], ".") == 0)
                        part[i] = NULL;
                else if (part[i])
                        n += (len[i] = strlen(part[i])) + 1;
        p = o = malloc(n > 0 ? n : 1);
        if (!p)
                return NULL;
        for (int i = 0; i < 3; i++) {
                if (!part[i])
                        continue;
                if (o > p)
                        *o++ = '/';
                memcpy(o, part[i], len[i]);
                o += len[i];
        }
        *o = '\0';
        return p;
}

DIR *dir_from_fd(int fd)
{
        DIR *d = fdopendir(fd);

        if (!d) {
                int e = errno;

                close(fd);
                errno = e;
        }
        return d;
}

DIR *dir_open_at(int dir_fd, const char *path)
{
        int fd = openat(dir_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

        return fd < 0 ? NULL : dir_from_fd(fd);
}

int dir_next(DIR *d, struct dirent **ret)
{
        for (;;) {
                struct dirent *de;

                errno = 0;
                de = readdir(d);
                if (!de) {
                        *ret = NULL;
                        return errno ? -errno : 0;
                }
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                        *ret = de;
                        return 1;
                }
        }
}

int dir_names(DIR *d, bool (*want)(const char *name, const void *userdata), const void *userdata, size_t max,
              struct strv *ret)
{
        size_t first = ret->n;
        int r;

        for (;;) {
                struct dirent *de;

                r = dir_next(d, &de);
                if (r <= 0)
                        break;
                if (!want(de->d_name, userdata))
                        continue;
                if (max && ret->n - first >= max) {
                        r = -E2BIG;
                        break;
                }
                r = strv_push(ret, de->d_name);
                if (r < 0)
                        break;
        }
        strv_sort(ret);
        return r;
}
