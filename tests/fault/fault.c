/* fault.so: an LD_PRELOAD shim that fails the Nth call of one libc function
 * with a chosen errno, or counts the calls, so a test can walk every call
 * site of ckptd and check that no failure turns into a deletion.
 *
 * Environment (all optional):
 *   FAULT_CALL=statx      the function to fail (names below; "openat2" is
 *                         syscall(SYS_openat2, ...))
 *   FAULT_NTH=7           fail its 7th counted call (1-based)
 *   FAULT_ERRNO=EIO       the errno, a name or a number (default EIO)
 *   FAULT_REPEAT=1        fail every counted call from the Nth on
 *   FAULT_MATCH=latest    count (and fail) only calls whose path contains
 *                         this substring, or whose fd / DIR was opened on
 *                         such a path
 *   FAULT_SCOPE=all       also count calls made by shared libraries
 *                         (libsystemd, json-c); by default only calls made
 *                         from the main program count
 *   FAULT_COUNT=FILE      at exit, write "function count" lines
 *   FAULT_FDS=FILE        at exit, write "fd target" for each open fd > 2
 *   FAULT_LOG=FILE        append "function N errno path" when a fault fires
 *   FAULT_WHILE=FILE      fail only while FILE exists (calls are counted all
 *                         the same): a test removes it to lift the fault
 *
 * Nothing is written to stdout or stderr: tests read ckptd's own messages
 * there. The shim's own calls bypass the counters (the `busy` guard).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#define FUNCS(X)                                                                                   \
        X(open) X(open64) X(openat) X(openat64) X(openat2) X(fopen) X(opendir) X(fdopendir)       \
        X(readdir) X(readdir64) X(read) X(pread) X(pread64) X(statx) X(stat) X(lstat) X(fstat)    \
        X(fstatat) X(fstat64) X(fstatat64) X(readlinkat) X(readlink) X(flock) X(fcntl)             \
        X(fcntl64) X(unlinkat) X(unlink) X(rmdir) X(renameat) X(renameat2) X(rename)               \
        X(statvfs) X(fstatvfs) X(fstatfs) X(inotify_init1) X(inotify_add_watch) X(mkdirat)         \
        X(getrandom) X(realpath) X(close)

enum {
#define ENUM(f) F_##f,
        FUNCS(ENUM)
#undef ENUM
                F_MAX
};

static const char *const names[F_MAX] = {
#define NAME(f) #f,
        FUNCS(NAME)
#undef NAME
};

static unsigned long counts[F_MAX];
static int fault_func = -1;
static unsigned long fault_nth;
static int fault_errno = EIO;
static bool fault_repeat, scope_all;
static const char *match;
static uintptr_t exe_lo, exe_hi;
static __thread int busy;

/* The path each fd was opened with, so that read()/fstat() on it can match
 * FAULT_MATCH and the fault log can say what the fd was. */
#define MAX_TRACKED 65536
static char *fd_path[MAX_TRACKED];

static const struct {
        const char *name;
        int value;
} errnos[] = {
        { "EIO", EIO },       { "EACCES", EACCES }, { "EROFS", EROFS },         { "ENOMEM", ENOMEM },
        { "EINTR", EINTR },   { "EMFILE", EMFILE }, { "ENFILE", ENFILE },       { "ENOENT", ENOENT },
        { "EPERM", EPERM },   { "ENOSPC", ENOSPC }, { "ETIMEDOUT", ETIMEDOUT }, { "EAGAIN", EAGAIN },
        { "ESTALE", ESTALE }, { "EBADF", EBADF },   { "ELOOP", ELOOP },         { "EXDEV", EXDEV },
        { "EINVAL", EINVAL }, { "ENOTDIR", ENOTDIR },
};

static int exe_range(struct dl_phdr_info *info, size_t size, void *data)
{
        (void)size;
        (void)data;
        /* The first object dl_iterate_phdr(3) reports is the main program. */
        for (int i = 0; i < info->dlpi_phnum; i++) {
                const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
                if (ph->p_type != PT_LOAD)
                        continue;
                uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
                if (!exe_lo || lo < exe_lo)
                        exe_lo = lo;
                if (hi > exe_hi)
                        exe_hi = hi;
        }
        return 1;
}

static void init(void)
{
        static bool done;
        if (done)
                return;
        done = true;
        busy++;
        const char *s = getenv("FAULT_CALL");
        for (int i = 0; s && i < F_MAX; i++)
                if (strcmp(s, names[i]) == 0)
                        fault_func = i;
        s = getenv("FAULT_NTH");
        fault_nth = s ? strtoul(s, NULL, 10) : 0;
        s = getenv("FAULT_ERRNO");
        if (s) {
                fault_errno = atoi(s);
                for (size_t i = 0; i < sizeof(errnos) / sizeof(errnos[0]); i++)
                        if (strcmp(s, errnos[i].name) == 0)
                                fault_errno = errnos[i].value;
        }
        fault_repeat = getenv("FAULT_REPEAT") && strcmp(getenv("FAULT_REPEAT"), "1") == 0;
        scope_all = getenv("FAULT_SCOPE") && strcmp(getenv("FAULT_SCOPE"), "all") == 0;
        match = getenv("FAULT_MATCH");
        if (match && !*match)
                match = NULL;
        dl_iterate_phdr(exe_range, NULL);
        busy--;
}

#define REAL(f)                                                                                    \
        static __typeof__(f) *real_##f;                                                            \
        if (!real_##f)                                                                             \
                real_##f = (__typeof__(f) *)dlsym(RTLD_NEXT, #f)

static bool path_matches(const char *path)
{
        return match && path && strstr(path, match);
}

static const char *fd_name(int fd)
{
        return fd >= 0 && fd < MAX_TRACKED ? fd_path[fd] : NULL;
}

static bool fd_matches(int fd)
{
        return path_matches(fd_name(fd));
}

/* An *at() call: its path, or its fd when the path is "" (AT_EMPTY_PATH).
 * Not inlined: libc's nonnull attributes on the callers' path must not let the
 * compiler drop the NULL check. */
__attribute__((noinline)) static bool at_matches(int dirfd, const char *path)
{
        return path_matches(path) || (path && !*path && fd_matches(dirfd));
}

/* Remember (path) or forget (NULL) what fd is. */
static void track(int fd, const char *path)
{
        if (fd < 0 || fd >= MAX_TRACKED)
                return;
        free(fd_path[fd]);
        fd_path[fd] = path ? strdup(path) : NULL;
}

static void log_fire(int f, unsigned long n, const char *path)
{
        const char *file = getenv("FAULT_LOG");
        if (!file)
                return;
        REAL(open);
        int fd = real_open(file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
                return;
        dprintf(fd, "%s %lu %d %s\n", names[f], n, fault_errno, path ? path : "-");
        REAL(close);
        real_close(fd);
}

/* Count this call; true if it is the one to fail (errno is then set). `m` is
 * whether the call's path or fd matches FAULT_MATCH. */
static bool hit(int f, bool m, const char *path, void *caller)
{
        init();
        if (busy)
                return false;
        if (!scope_all && ((uintptr_t)caller < exe_lo || (uintptr_t)caller >= exe_hi))
                return false;
        if (match && !m)
                return false;
        unsigned long n = __atomic_add_fetch(&counts[f], 1, __ATOMIC_RELAXED);
        if (f != fault_func || !fault_nth || n < fault_nth || (n > fault_nth && !fault_repeat))
                return false;
        /* access() is not shimmed: no counting, no recursion */
        if (getenv("FAULT_WHILE") && access(getenv("FAULT_WHILE"), F_OK) != 0)
                return false;
        busy++;
        log_fire(f, n, path);
        busy--;
        errno = fault_errno;
        return true;
}

#define CALLER __builtin_return_address(0)
#define HIT_PATH(f, path) hit(F_##f, match && path_matches(path), path, CALLER)
#define HIT_FD(f, fd) hit(F_##f, match && fd_matches(fd), fd_name(fd), CALLER)

/* Opens: fail, or open and track the fd when the path matches. */
#define OPEN_RESULT(fd, path)                                                                      \
        do {                                                                                       \
                if ((fd) >= 0)                                                                     \
                        track(fd, path);                                             \
        } while (0)

static mode_t va_mode(int flags, va_list ap)
{
        return (flags & O_CREAT) || (flags & __O_TMPFILE) == __O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

int open(const char *path, int flags, ...)
{
        va_list ap;
        va_start(ap, flags);
        mode_t mode = va_mode(flags, ap);
        va_end(ap);
        REAL(open);
        if (HIT_PATH(open, path))
                return -1;
        int fd = real_open(path, flags, mode);
        OPEN_RESULT(fd, path);
        return fd;
}

int open64(const char *path, int flags, ...)
{
        va_list ap;
        va_start(ap, flags);
        mode_t mode = va_mode(flags, ap);
        va_end(ap);
        REAL(open64);
        if (HIT_PATH(open64, path))
                return -1;
        int fd = real_open64(path, flags, mode);
        OPEN_RESULT(fd, path);
        return fd;
}

int openat(int dirfd, const char *path, int flags, ...)
{
        va_list ap;
        va_start(ap, flags);
        mode_t mode = va_mode(flags, ap);
        va_end(ap);
        REAL(openat);
        if (HIT_PATH(openat, path))
                return -1;
        int fd = real_openat(dirfd, path, flags, mode);
        OPEN_RESULT(fd, path);
        return fd;
}

int openat64(int dirfd, const char *path, int flags, ...)
{
        va_list ap;
        va_start(ap, flags);
        mode_t mode = va_mode(flags, ap);
        va_end(ap);
        REAL(openat64);
        if (HIT_PATH(openat64, path))
                return -1;
        int fd = real_openat64(dirfd, path, flags, mode);
        OPEN_RESULT(fd, path);
        return fd;
}

/* syscall(2) is variadic; x86_64 and aarch64 pass up to six register-sized
 * arguments, so forwarding six longs is exact. Only openat2 is counted. */
long syscall(long nr, ...)
{
        va_list ap;
        long a[6];
        va_start(ap, nr);
        for (int i = 0; i < 6; i++)
                a[i] = va_arg(ap, long);
        va_end(ap);
        REAL(syscall);
        if (nr == SYS_openat2) {
                const char *path = (const char *)a[1];
                if (hit(F_openat2, match && path_matches(path), path, CALLER))
                        return -1;
                long fd = real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
                OPEN_RESULT((int)fd, path);
                return fd;
        }
        return real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

FILE *fopen(const char *path, const char *mode)
{
        REAL(fopen);
        if (HIT_PATH(fopen, path))
                return NULL;
        FILE *f = real_fopen(path, mode);
        if (f)
                track(fileno(f), path);
        return f;
}

DIR *opendir(const char *path)
{
        REAL(opendir);
        if (HIT_PATH(opendir, path))
                return NULL;
        DIR *d = real_opendir(path);
        if (d)
                track(dirfd(d), path);
        return d;
}

/* On failure fdopendir(3) leaves the fd open, as the real one does. */
DIR *fdopendir(int fd)
{
        REAL(fdopendir);
        if (HIT_FD(fdopendir, fd))
                return NULL;
        return real_fdopendir(fd);
}

/* glibc's readdir(3) calls getdents64(2) internally, out of reach of
 * LD_PRELOAD; failing readdir itself (NULL, errno set) is what a failed
 * getdents64 looks like to the caller. */
/* Not counted: only forgets the fd's path (glibc closes it internally). */
int closedir(DIR *d)
{
        REAL(closedir);
        track(dirfd(d), NULL);
        return real_closedir(d);
}

struct dirent *readdir(DIR *d)
{
        REAL(readdir);
        if (HIT_FD(readdir, dirfd(d)))
                return NULL;
        return real_readdir(d);
}

struct dirent64 *readdir64(DIR *d)
{
        REAL(readdir64);
        if (HIT_FD(readdir64, dirfd(d)))
                return NULL;
        return real_readdir64(d);
}

ssize_t read(int fd, void *buf, size_t len)
{
        REAL(read);
        if (HIT_FD(read, fd))
                return -1;
        return real_read(fd, buf, len);
}

ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
        REAL(pread);
        if (HIT_FD(pread, fd))
                return -1;
        return real_pread(fd, buf, len, off);
}

ssize_t pread64(int fd, void *buf, size_t len, off64_t off)
{
        REAL(pread64);
        if (HIT_FD(pread64, fd))
                return -1;
        return real_pread64(fd, buf, len, off);
}

int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *sx)
{
        REAL(statx);
        /* statx(fd, "", AT_EMPTY_PATH) is an fstat */
        bool m = match && at_matches(dirfd, path);
        if (hit(F_statx, m, *path ? path : fd_name(dirfd), CALLER))
                return -1;
        return real_statx(dirfd, path, flags, mask, sx);
}

int stat(const char *path, struct stat *st)
{
        REAL(stat);
        if (HIT_PATH(stat, path))
                return -1;
        return real_stat(path, st);
}

int lstat(const char *path, struct stat *st)
{
        REAL(lstat);
        if (HIT_PATH(lstat, path))
                return -1;
        return real_lstat(path, st);
}

int fstat(int fd, struct stat *st)
{
        REAL(fstat);
        if (HIT_FD(fstat, fd))
                return -1;
        return real_fstat(fd, st);
}

int fstat64(int fd, struct stat64 *st)
{
        REAL(fstat64);
        if (HIT_FD(fstat64, fd))
                return -1;
        return real_fstat64(fd, st);
}

int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
        REAL(fstatat);
        bool m = match && at_matches(dirfd, path);
        if (hit(F_fstatat, m, *path ? path : fd_name(dirfd), CALLER))
                return -1;
        return real_fstatat(dirfd, path, st, flags);
}

int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
        REAL(fstatat64);
        bool m = match && at_matches(dirfd, path);
        if (hit(F_fstatat64, m, *path ? path : fd_name(dirfd), CALLER))
                return -1;
        return real_fstatat64(dirfd, path, st, flags);
}

ssize_t readlinkat(int dirfd, const char *path, char *buf, size_t len)
{
        REAL(readlinkat);
        if (HIT_PATH(readlinkat, path))
                return -1;
        return real_readlinkat(dirfd, path, buf, len);
}

ssize_t readlink(const char *path, char *buf, size_t len)
{
        REAL(readlink);
        if (HIT_PATH(readlink, path))
                return -1;
        return real_readlink(path, buf, len);
}

int flock(int fd, int op)
{
        REAL(flock);
        if (HIT_FD(flock, fd))
                return -1;
        return real_flock(fd, op);
}

/* The third argument is an int or a pointer; both travel as one register. */
int fcntl(int fd, int cmd, ...)
{
        va_list ap;
        va_start(ap, cmd);
        void *arg = va_arg(ap, void *);
        va_end(ap);
        REAL(fcntl);
        if (HIT_FD(fcntl, fd))
                return -1;
        int r = real_fcntl(fd, cmd, arg);
        if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
                track(r, fd_name(fd));
        return r;
}

int fcntl64(int fd, int cmd, ...)
{
        va_list ap;
        va_start(ap, cmd);
        void *arg = va_arg(ap, void *);
        va_end(ap);
        REAL(fcntl64);
        if (HIT_FD(fcntl64, fd))
                return -1;
        int r = real_fcntl64(fd, cmd, arg);
        if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC))
                track(r, fd_name(fd));
        return r;
}

int unlinkat(int dirfd, const char *path, int flags)
{
        REAL(unlinkat);
        if (HIT_PATH(unlinkat, path))
                return -1;
        return real_unlinkat(dirfd, path, flags);
}

int unlink(const char *path)
{
        REAL(unlink);
        if (HIT_PATH(unlink, path))
                return -1;
        return real_unlink(path);
}

int rmdir(const char *path)
{
        REAL(rmdir);
        if (HIT_PATH(rmdir, path))
                return -1;
        return real_rmdir(path);
}

int renameat(int ofd, const char *from, int nfd, const char *to)
{
        REAL(renameat);
        bool m = match && (path_matches(from) || path_matches(to));
        if (hit(F_renameat, m, from, CALLER))
                return -1;
        return real_renameat(ofd, from, nfd, to);
}

int renameat2(int ofd, const char *from, int nfd, const char *to, unsigned flags)
{
        REAL(renameat2);
        bool m = match && (path_matches(from) || path_matches(to));
        if (hit(F_renameat2, m, from, CALLER))
                return -1;
        return real_renameat2(ofd, from, nfd, to, flags);
}

int rename(const char *from, const char *to)
{
        REAL(rename);
        bool m = match && (path_matches(from) || path_matches(to));
        if (hit(F_rename, m, from, CALLER))
                return -1;
        return real_rename(from, to);
}

int statvfs(const char *path, struct statvfs *sv)
{
        REAL(statvfs);
        if (HIT_PATH(statvfs, path))
                return -1;
        return real_statvfs(path, sv);
}

int fstatvfs(int fd, struct statvfs *sv)
{
        REAL(fstatvfs);
        if (HIT_FD(fstatvfs, fd))
                return -1;
        return real_fstatvfs(fd, sv);
}

int fstatfs(int fd, struct statfs *sf)
{
        REAL(fstatfs);
        if (HIT_FD(fstatfs, fd))
                return -1;
        return real_fstatfs(fd, sf);
}

int inotify_init1(int flags)
{
        REAL(inotify_init1);
        if (hit(F_inotify_init1, false, NULL, CALLER))
                return -1;
        return real_inotify_init1(flags);
}

/* ckptd watches /proc/self/fd/N (no *at() form): resolve it for MATCH. */
int inotify_add_watch(int fd, const char *path, uint32_t mask)
{
        REAL(inotify_add_watch);
        bool m = false;
        if (match) {
                char target[PATH_MAX];
                REAL(readlink);
                ssize_t k = real_readlink(path, target, sizeof(target) - 1);
                if (k >= 0)
                        target[k] = 0;
                m = path_matches(path) || (k >= 0 && path_matches(target));
        }
        if (hit(F_inotify_add_watch, m, path, CALLER))
                return -1;
        return real_inotify_add_watch(fd, path, mask);
}

int mkdirat(int dirfd, const char *path, mode_t mode)
{
        REAL(mkdirat);
        if (HIT_PATH(mkdirat, path))
                return -1;
        return real_mkdirat(dirfd, path, mode);
}

ssize_t getrandom(void *buf, size_t len, unsigned flags)
{
        REAL(getrandom);
        if (hit(F_getrandom, false, NULL, CALLER))
                return -1;
        return real_getrandom(buf, len, flags);
}

char *realpath(const char *path, char *resolved)
{
        REAL(realpath);
        if (HIT_PATH(realpath, path))
                return NULL;
        return real_realpath(path, resolved);
}

/* A failed close(2) still closes the fd on Linux (close(2), "Dealing with
 * error returns"): do so, then report the error. */
int close(int fd)
{
        REAL(close);
        bool fail = HIT_FD(close, fd);
        track(fd, NULL);
        int r = real_close(fd);
        if (fail) {
                errno = fault_errno;
                return -1;
        }
        return r;
}

__attribute__((destructor)) static void fault_exit(void)
{
        const char *file;
        int saved = errno;
        busy++;
        REAL(fopen);
        if ((file = getenv("FAULT_COUNT"))) {
                FILE *f = real_fopen(file, "we");
                if (f) {
                        for (int i = 0; i < F_MAX; i++)
                                if (counts[i])
                                        fprintf(f, "%s %lu\n", names[i], counts[i]);
                        fclose(f);
                }
        }
        if ((file = getenv("FAULT_FDS"))) {
                FILE *f = real_fopen(file, "we");
                REAL(opendir);
                REAL(readdir);
                REAL(readlink);
                DIR *d = f ? real_opendir("/proc/self/fd") : NULL;
                struct dirent *de;
                while (d && (de = real_readdir(d))) {
                        int fd = atoi(de->d_name);
                        char target[PATH_MAX];
                        char proc[64];
                        if (de->d_name[0] == '.' || fd <= 2 || fd == dirfd(d) || fd == fileno(f))
                                continue;
                        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
                        ssize_t k = real_readlink(proc, target, sizeof(target) - 1);
                        target[k < 0 ? 0 : k] = 0;
                        fprintf(f, "%d %s\n", fd, target);
                }
                if (d)
                        closedir(d);
                if (f)
                        fclose(f);
        }
        busy--;
        errno = saved;
}
