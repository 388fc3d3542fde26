/* kfloor: the system calls of ckptd's safety contract, alone and timed.
 *
 *   kfloor [-s SAVES] [-r REPS] [-f FILES] [-d DIR_REPS] WORKDIR
 *
 * For each operation make bench measures (BENCHMARKS.md, B1, B2/B3, B5,
 * B6) it makes real files under WORKDIR/kfloor.PID and performs only the
 * system calls that ckptd's safety contract asks for (DESIGN.md "Safety of
 * deletion", ckptd(8) "Fail closed"), with no index, no policy, no parsing,
 * and beside them the calls of what ckptd is compared with
 * (find, the peer, rm -rf). Each operation is timed with
 * CLOCK_THREAD_CPUTIME_ID (CPU) and CLOCK_MONOTONIC (wall); the cost of
 * reading the two clocks is measured first and taken off. It prints one
 * JSON object: per sequence the median and quartiles of CPU and wall
 * microseconds per operation, the operations timed, and the system calls
 * per operation (counted as made). bench/bench.py runs it in the bench's
 * work directory (phase "kfloor"), bench/report.py puts it beside ckptd.
 *
 * Nothing is checked the way ckptd checks it (no (dev, ino) comparison, no
 * /proc/locks parsing): those are user-space costs, and this is the
 * kernel's part only. A refused lease or a failed call stops the run. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define NAME_MAX_LEN 96
#define HOUR_SEC     3600
#define SAVE_BYTES   4096
#define SAVE_RUN     100 /* checkpoints in the run a save lands in (B2) */
#define SWEEP_RUN    40  /* checkpoints per run of the one-shot sweep (B5) */
#define SWEEP_KEEP   4   /* of which kept: the 3 best and the newest */
#define SCAN_DIRS    100 /* B1: directories of SCAN_PER entries */
#define SCAN_PER     100
#define AWAIT_MS     5000 /* an inotify event that does not come: give up */

/* daemon/watch.h WATCH_MASK */
#define WATCH_MASK                                                                                                     \
        (IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF |        \
         IN_MODIFY | IN_ONLYDIR | IN_EXCL_UNLINK)

/* every system call of a timed sequence goes through CALL(), which counts it */
static unsigned long ncalls;
#define CALL(x) (ncalls++, (x))

struct mark {
        double cpu_us, wall_us;
};

struct series {
        const char *name, *unit, *what;
        unsigned units; /* units (saves, victims, entries, files) per operation */
        size_t n, cap;
        double *cpu_us, *wall_us, *lat_us; /* lat_us: only "save" */
        unsigned long calls;               /* summed over the operations */
};

static struct mark overhead; /* one region's cost of reading both clocks */
static int log_fd = -1;      /* /dev/null: where a log line goes */
static char top[PATH_MAX];   /* WORKDIR/kfloor.PID */
static int top_fd = -1;

static double ts_us(const struct timespec *t)
{
        return (double)t->tv_sec * 1e6 + (double)t->tv_nsec / 1e3;
}

static double wall_now(void)
{
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return ts_us(&t);
}

static void mark_now(struct mark *m)
{
        struct timespec c;

        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c);
        m->cpu_us = ts_us(&c);
        m->wall_us = wall_now();
}

static int series_add(struct series *s, double cpu_us, double wall_us, double lat_us)
{
        if (s->n == s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 256;
                double *c = realloc(s->cpu_us, cap * sizeof(*c));

                if (!c)
                        return -ENOMEM;
                s->cpu_us = c;
                c = realloc(s->wall_us, cap * sizeof(*c));
                if (!c)
                        return -ENOMEM;
                s->wall_us = c;
                c = realloc(s->lat_us, cap * sizeof(*c));
                if (!c)
                        return -ENOMEM;
                s->lat_us = c;
                s->cap = cap;
        }
        s->cpu_us[s->n] = cpu_us;
        s->wall_us[s->n] = wall_us;
        s->lat_us[s->n] = lat_us;
        s->n++;
        return 0;
}

/* one timed region [a, b], less the clocks' own cost */
static int series_region(struct series *s, const struct mark *a, const struct mark *b, unsigned long calls)
{
        s->calls += calls;
        return series_add(s, b->cpu_us - a->cpu_us - overhead.cpu_us, b->wall_us - a->wall_us - overhead.wall_us, 0);
}

static int dbl_cmp(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

/* quantile p of sorted v[n], linear between ranks (Python's "inclusive") */
static double quantile(const double *v, size_t n, double p)
{
        double pos = p * (double)(n - 1);
        size_t i = (size_t)pos;

        if (i + 1 >= n)
                return v[n - 1];
        return v[i] + (pos - (double)i) * (v[i + 1] - v[i]);
}

static void print_stats(const char *key, double *v, size_t n, bool last)
{
        qsort(v, n, sizeof(*v), dbl_cmp);
        printf("    \"%s\": {\"median\": %.3f, \"q1\": %.3f, \"q3\": %.3f, \"min\": %.3f}%s\n", key,
               quantile(v, n, 0.5), quantile(v, n, 0.25), quantile(v, n, 0.75), v[0], last ? "" : ",");
}

static void series_print(struct series *s, bool last)
{
        printf("  \"%s\": {\n    \"what\": \"%s\",\n    \"unit\": \"%s\", \"units\": %u, \"ops\": %zu, "
               "\"syscalls\": %.2f,\n",
               s->name, s->what, s->unit, s->units, s->n, s->n ? (double)s->calls / (double)s->n : 0.0);
        if (s->n == 0) {
                printf("    \"error\": \"not measured\"\n  }%s\n", last ? "" : ",");
                return;
        }
        print_stats("cpu_us", s->cpu_us, s->n, false);
        print_stats("wall_us", s->wall_us, s->n, strcmp(s->name, "save") != 0);
        if (strcmp(s->name, "save") == 0)
                print_stats("latency_us", s->lat_us, s->n, true);
        printf("  }%s\n", last ? "" : ",");
}

static void series_free(struct series *s)
{
        free(s->cpu_us);
        free(s->wall_us);
        free(s->lat_us);
}

/* ---- files ----------------------------------------------------------------- */

static int ckpt_name(char *buf, size_t size, unsigned epoch)
{
        int n = snprintf(buf, size, "epoch_%05u-val_loss=%.4f.ckpt", epoch, 0.5 + (epoch % 997) / 1000.0);

        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* an empty file, an hour old (untimed) */
static int make_file(int dir_fd, const char *name, bool old)
{
        struct timespec t[2];
        int fd = openat(dir_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

        if (fd < 0)
                return -errno;
        close(fd);
        if (!old)
                return 0;
        clock_gettime(CLOCK_REALTIME, &t[0]);
        t[0].tv_sec -= HOUR_SEC;
        t[1] = t[0];
        return utimensat(dir_fd, name, t, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int make_dir(const char *name)
{
        int fd;

        if (mkdirat(top_fd, name, 0755) < 0)
                return -errno;
        fd = openat(top_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

static int path_of(char *buf, size_t size, const char *dir, const char *name)
{
        int n = snprintf(buf, size, "%s/%s/%s", top, dir, name);

        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* ---- the sequences' pieces ---------------------------------------------------- */

struct linux_dirent64 {
        uint64_t d_ino;
        int64_t d_off;
        unsigned short d_reclen;
        unsigned char d_type;
        char d_name[];
};

static char dents[32768] __attribute__((aligned(8))); /* glibc readdir()'s size */

/* getdents64(2) to the end; each entry but . and .. handed to fn */
static int list_dir(int fd, int (*fn)(int fd, const char *name, void *data), void *data)
{
        for (;;) {
                long n = CALL(syscall(SYS_getdents64, fd, dents, sizeof(dents)));

                if (n < 0)
                        return -errno;
                if (n == 0)
                        return 0;
                for (long off = 0; off < n;) {
                        struct linux_dirent64 *d = (struct linux_dirent64 *)(dents + off);
                        int r;

                        off += d->d_reclen;
                        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
                                continue;
                        if (fn) {
                                r = fn(fd, d->d_name, data);
                                if (r < 0)
                                        return r;
                        }
                }
        }
}

/* the scan: statx(2) with the mount id, no mount crossing (lib/fsutil.c stat_mnt) */
static int stat_mnt(int fd, const char *name, void *data)
{
        struct statx sx;

        (void)data;
        if (CALL(statx(fd, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT, STATX_BASIC_STATS | STATX_MNT_ID, &sx)) < 0)
                return -errno;
        return 0;
}

/* find(1)'s stat of an entry */
static int stat_plain(int fd, const char *name, void *data)
{
        struct stat st;

        (void)data;
        return CALL(fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW)) < 0 ? -errno : 0;
}

static char locks_buf[65536];

/* flock pins: /proc/locks read to its end (lib/verify.c flock_table_load) */
static int read_locks(void)
{
        int fd = CALL(open("/proc/locks", O_RDONLY | O_CLOEXEC | O_NOCTTY));
        ssize_t n;

        if (fd < 0)
                return -errno;
        while ((n = CALL(read(fd, locks_buf, sizeof(locks_buf)))) > 0)
                ;
        CALL(close(fd));
        return n < 0 ? -EIO : 0;
}

static int log_line(const char *dir, const char *name)
{
        char line[PATH_MAX + 160];
        int n = snprintf(line, sizeof(line),
                         "ckptd: deleted %s/%s/%s (not among the 3 best by val_loss, not the newest)\n", top, dir,
                         name);

        if (n < 0 || (size_t)n >= sizeof(line))
                return -ENAMETOOLONG;
        return CALL(write(log_fd, line, (size_t)n)) == n ? 0 : -EIO;
}

/* The in-use check of one file (lib/verify.c verify_file): opened beneath
 * its directory, no symlink, no mount crossing, never blocking; fstat(2) for
 * (dev, ino) and type; a write lease, granted only when nobody else has the
 * file open. Leaves the file open in *ret_fd: its close drops the lease. */
static int check_open(int dir_fd, const char *name, int *ret_fd)
{
        struct open_how how = {
                .flags = O_RDONLY | O_NOCTTY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC,
                .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV,
        };
        struct stat st;
        int fd = (int)CALL(syscall(SYS_openat2, dir_fd, name, &how, sizeof(how)));

        if (fd < 0)
                return -errno;
        if (CALL(fstat(fd, &st)) < 0 || CALL(fcntl(fd, F_SETLEASE, F_WRLCK)) < 0) {
                int r = -errno;

                close(fd);
                return r;
        }
        *ret_fd = fd;
        return 0;
}

/* A victim as ckptd removes a plain checkpoint: the check (its lease also
 * says that no one else holds a flock on it), whether the watch path still
 * leads to the watch directory and the run's ".." to it (a tree moved away
 * during a pass), unlinkat(2) on the run's pinned fd, close, one log line.
 * *ret_gone_us: when the name went. */
static int victim_remove(int dir_fd, const char *dir, const char *name, double *ret_gone_us)
{
        struct stat st;
        int fd = -1, r;

        r = check_open(dir_fd, name, &fd);
        if (r < 0)
                return r;
        if (CALL(fstatat(AT_FDCWD, top, &st, AT_SYMLINK_NOFOLLOW)) < 0 ||
            CALL(fstatat(dir_fd, "..", &st, AT_SYMLINK_NOFOLLOW)) < 0) {
                r = -errno;
                goto out;
        }
        if (CALL(unlinkat(dir_fd, name, 0)) < 0) {
                r = -errno;
                goto out;
        }
        if (ret_gone_us)
                *ret_gone_us = wall_now();
        r = log_line(dir, name);
out:
        CALL(close(fd));
        return r;
}

/* The peer's removal: os.remove() of the whole path, then print(). */
static int peer_remove(const char *dir, const char *name)
{
        char path[PATH_MAX];
        int r = path_of(path, sizeof(path), dir, name);

        if (r < 0)
                return r;
        if (CALL(unlink(path)) < 0)
                return -errno;
        return log_line(dir, name);
}

/* ---- B2/B3: a save into a watched run ------------------------------------------ */

struct trainer {
        int cmd_fd; /* read end: 'w' write NAME.tmp, 'r' rename it, 'q' quit */
        int run_fd;
        char tmp[NAME_MAX_LEN + 8], name[NAME_MAX_LEN];
        double rename_us; /* CLOCK_MONOTONIC just before rename(2) */
        int error;
};

static void *trainer_main(void *arg)
{
        static const char data[SAVE_BYTES];
        struct trainer *t = arg;
        char c;

        while (read(t->cmd_fd, &c, 1) == 1 && c != 'q') {
                if (c == 'w') {
                        int fd = openat(t->run_fd, t->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

                        if (fd < 0 || write(fd, data, sizeof(data)) != (ssize_t)sizeof(data) || close(fd) < 0)
                                __atomic_store_n(&t->error, -errno, __ATOMIC_RELEASE);
                } else {
                        double now = wall_now();

                        __atomic_store(&t->rename_us, &now, __ATOMIC_RELEASE);
                        if (renameat(t->run_fd, t->tmp, t->run_fd, t->name) < 0)
                                __atomic_store_n(&t->error, -errno, __ATOMIC_RELEASE);
                }
        }
        return NULL;
}

/* epoll_wait(2) and read(2) of the inotify fd until an event of `mask` for
 * `name` comes, as the daemon's loop does; *ret_wake_us: when first woken */
static int await_event(int ep_fd, int in_fd, const char *name, uint32_t mask, double *ret_wake_us)
{
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool woken = false;

        for (;;) {
                struct epoll_event ev;
                int n = CALL(epoll_wait(ep_fd, &ev, 1, AWAIT_MS));
                ssize_t len;

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -ETIMEDOUT;
                if (!woken && ret_wake_us)
                        *ret_wake_us = wall_now();
                woken = true;
                len = CALL(read(in_fd, buf, sizeof(buf)));
                if (len < 0 && errno == EAGAIN)
                        continue;
                if (len < 0)
                        return -errno;
                for (ssize_t off = 0; off < len;) {
                        const struct inotify_event *e = (const struct inotify_event *)(buf + off);

                        off += (ssize_t)(sizeof(*e) + e->len);
                        if (e->mask & IN_Q_OVERFLOW)
                                return -EOVERFLOW;
                        if ((e->mask & mask) && e->len && strcmp(e->name, name) == 0)
                                return 0;
                }
        }
}

/* One run of SAVE_RUN checkpoints watched through inotify and epoll; a
 * thread plays the trainer (NAME.tmp, 4 KiB, close; then rename to NAME),
 * while this one, blocked in epoll_wait(2) as the daemon is, is woken by
 * each step and timed from before its wait (a blocked thread uses no CPU)
 * to the end of what it does. The step with the rename: the events, statx
 * of the new checkpoint, the oldest checkpoint removed as a victim (its
 * lease says its flock pin: no /proc/locks read), and the read of that
 * removal's IN_DELETE. */
static int bench_save(struct series *s, unsigned saves)
{
        struct trainer t = {.cmd_fd = -1, .run_fd = -1};
        struct epoll_event ev = {.events = EPOLLIN};
        int cmd[2] = {-1, -1}, in_fd = -1, ep_fd = -1, r;
        pthread_t thread;
        bool started = false;
        unsigned first = 0;

        r = make_dir("save");
        if (r < 0)
                return r;
        t.run_fd = r;
        for (unsigned i = 0; i < SAVE_RUN; i++) {
                char name[NAME_MAX_LEN];

                r = ckpt_name(name, sizeof(name), i);
                if (r >= 0)
                        r = make_file(t.run_fd, name, true);
                if (r < 0)
                        goto out;
        }
        in_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        ep_fd = epoll_create1(EPOLL_CLOEXEC);
        if (in_fd < 0 || ep_fd < 0 || pipe2(cmd, O_CLOEXEC) < 0) {
                r = -errno;
                goto out;
        }
        ev.data.fd = in_fd;
        {
                char path[PATH_MAX];

                if (snprintf(path, sizeof(path), "%s/save", top) >= (int)sizeof(path)) {
                        r = -ENAMETOOLONG;
                        goto out;
                }
                if (inotify_add_watch(in_fd, path, WATCH_MASK) < 0 || epoll_ctl(ep_fd, EPOLL_CTL_ADD, in_fd, &ev) < 0) {
                        r = -errno;
                        goto out;
                }
        }
        t.cmd_fd = cmd[0];
        r = -pthread_create(&thread, NULL, trainer_main, &t);
        if (r < 0)
                goto out;
        started = true;

        for (unsigned i = 0; i < saves; i++) {
                char victim[NAME_MAX_LEN];
                struct mark a0, a1, b0, b1;
                struct statx sx;
                double wake_a = 0, wake_b = 0, gone = 0, renamed;
                unsigned long calls;

                r = ckpt_name(t.name, sizeof(t.name), SAVE_RUN + i);
                if (r >= 0)
                        r = ckpt_name(victim, sizeof(victim), first);
                if (r < 0)
                        goto out;
                if (snprintf(t.tmp, sizeof(t.tmp), "%s.tmp", t.name) >= (int)sizeof(t.tmp)) {
                        r = -ENAMETOOLONG;
                        goto out;
                }
                /* the trainer writes NAME.tmp and closes it; the clocks
                 * start after the word to it (the trainer takes tens of
                 * microseconds to create the file: this thread is then
                 * asleep in epoll_wait(2) as the daemon would be) */
                if (write(cmd[1], "w", 1) != 1) {
                        r = -errno;
                        goto out;
                }
                ncalls = 0;
                mark_now(&a0);
                r = await_event(ep_fd, in_fd, t.tmp, IN_CLOSE_WRITE, &wake_a);
                mark_now(&a1);
                if (r < 0)
                        goto out;
                /* ... and renames it into place */
                if (write(cmd[1], "r", 1) != 1) {
                        r = -errno;
                        goto out;
                }
                mark_now(&b0);
                r = await_event(ep_fd, in_fd, t.name, IN_MOVED_TO, &wake_b);
                if (r >= 0 && CALL(statx(t.run_fd, t.name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
                                         STATX_BASIC_STATS | STATX_MNT_ID, &sx)) < 0)
                        r = -errno;
                if (r >= 0)
                        r = victim_remove(t.run_fd, "save", victim, &gone);
                if (r >= 0)
                        r = await_event(ep_fd, in_fd, victim, IN_DELETE, NULL);
                mark_now(&b1);
                calls = ncalls;
                if (r >= 0)
                        r = __atomic_load_n(&t.error, __ATOMIC_ACQUIRE);
                if (r < 0)
                        goto out;
                first++;
                s->calls += calls;
                __atomic_load(&t.rename_us, &renamed, __ATOMIC_ACQUIRE);
                r = series_add(s, (a1.cpu_us - a0.cpu_us) + (b1.cpu_us - b0.cpu_us) - 2 * overhead.cpu_us,
                               (a1.wall_us - wake_a) + (b1.wall_us - wake_b), gone - renamed);
                if (r < 0)
                        goto out;
        }
        r = 0;
out:
        if (started) {
                if (write(cmd[1], "q", 1) != 1)
                        r = r < 0 ? r : -errno;
                pthread_join(thread, NULL);
        }
        if (cmd[0] >= 0)
                close(cmd[0]);
        if (cmd[1] >= 0)
                close(cmd[1]);
        if (ep_fd >= 0)
                close(ep_fd);
        if (in_fd >= 0)
                close(in_fd);
        if (t.run_fd >= 0)
                close(t.run_fd);
        return r;
}

/* ---- B5: a one-shot sweep ---------------------------------------------------------- */

static char sweep_names[SWEEP_RUN][NAME_MAX_LEN];

static int sweep_restore(int dir_fd)
{
        for (unsigned i = SWEEP_KEEP; i < SWEEP_RUN; i++) {
                int r = make_file(dir_fd, sweep_names[i], true);

                if (r < 0)
                        return r;
        }
        return 0;
}

/* ckptd: the run listed and each entry stat'ed (the scan), each victim
 * checked (its lease says its flock pin) and removed */
static int sweep_contract(void)
{
        int fd = CALL(openat(top_fd, "sweep", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)), r;

        if (fd < 0)
                return -errno;
        r = list_dir(fd, stat_mnt, NULL);
        for (unsigned i = SWEEP_KEEP; r >= 0 && i < SWEEP_RUN; i++)
                r = victim_remove(fd, "sweep", sweep_names[i], NULL);
        CALL(close(fd));
        return r;
}

/* the peer: os.scandir() (d_type, no stat), os.remove() and print() per victim */
static int sweep_peer(void)
{
        int fd = CALL(openat(top_fd, "sweep", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)), r;

        if (fd < 0)
                return -errno;
        r = list_dir(fd, NULL, NULL);
        for (unsigned i = SWEEP_KEEP; r >= 0 && i < SWEEP_RUN; i++)
                r = peer_remove("sweep", sweep_names[i]);
        CALL(close(fd));
        return r;
}

/* whole runs (sweep_run, peer_run), single victims (victim, peer_victim)
 * and /proc/locks (proc_locks), alternating who goes first */
static int bench_sweep(struct series *run, struct series *peer_run, struct series *victim, struct series *peer_victim,
                       struct series *locks, unsigned reps)
{
        int fd = make_dir("sweep"), r = 0;

        if (fd < 0)
                return fd;
        for (unsigned i = 0; r >= 0 && i < SWEEP_RUN; i++) {
                r = ckpt_name(sweep_names[i], sizeof(sweep_names[i]), i);
                if (r >= 0)
                        r = make_file(fd, sweep_names[i], true);
        }
        for (unsigned rep = 0; r >= 0 && rep < reps; rep++) {
                for (unsigned k = 0; r >= 0 && k < 2; k++) {
                        bool contract = (k == 0) == (rep % 2 == 0);
                        struct mark a, b;

                        ncalls = 0;
                        mark_now(&a);
                        r = contract ? sweep_contract() : sweep_peer();
                        mark_now(&b);
                        if (r >= 0)
                                r = series_region(contract ? run : peer_run, &a, &b, ncalls);
                        if (r >= 0)
                                r = sweep_restore(fd);
                }
                for (unsigned k = 0; r >= 0 && k < 2; k++) {
                        bool contract = (k == 0) == (rep % 2 == 0);

                        for (unsigned i = SWEEP_KEEP; r >= 0 && i < SWEEP_RUN; i++) {
                                struct mark a, b;

                                ncalls = 0;
                                mark_now(&a);
                                r = contract ? victim_remove(fd, "sweep", sweep_names[i], NULL)
                                             : peer_remove("sweep", sweep_names[i]);
                                mark_now(&b);
                                if (r >= 0)
                                        r = series_region(contract ? victim : peer_victim, &a, &b, ncalls);
                        }
                        if (r >= 0)
                                r = sweep_restore(fd);
                }
                if (r >= 0) {
                        struct mark a, b;

                        ncalls = 0;
                        mark_now(&a);
                        r = read_locks();
                        mark_now(&b);
                        if (r >= 0)
                                r = series_region(locks, &a, &b, ncalls);
                }
        }
        close(fd);
        return r;
}

/* ---- B1: a scan ----------------------------------------------------------------- */

static int scan_one(int root_fd, const char *name, bool contract)
{
        int fd = CALL(openat(root_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)), r;

        if (fd < 0)
                return -errno;
        r = list_dir(fd, contract ? stat_mnt : stat_plain, NULL);
        CALL(close(fd));
        return r;
}

/* per directory of SCAN_PER checkpoints: getdents64(2) and statx(2) with
 * STATX_MNT_ID per entry (scan_dir), against find(1)'s getdents64(2) and
 * fstatat(2) per entry (find_dir); warm cache, `passes` over the tree */
static int bench_scan(struct series *scan, struct series *find, unsigned passes)
{
        int fd = make_dir("scan"), r = 0;

        if (fd < 0)
                return fd;
        for (unsigned d = 0; r >= 0 && d < SCAN_DIRS; d++) {
                char dname[16];
                int dfd;

                snprintf(dname, sizeof(dname), "run%04u", d);
                if (mkdirat(fd, dname, 0755) < 0 ||
                    (dfd = openat(fd, dname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
                        r = -errno;
                        break;
                }
                for (unsigned i = 0; r >= 0 && i < SCAN_PER; i++) {
                        char name[NAME_MAX_LEN];

                        r = ckpt_name(name, sizeof(name), i);
                        if (r >= 0)
                                r = make_file(dfd, name, true);
                }
                close(dfd);
        }
        for (unsigned p = 0; r >= 0 && p < passes; p++)
                for (unsigned d = 0; r >= 0 && d < SCAN_DIRS; d++) {
                        char dname[16];

                        snprintf(dname, sizeof(dname), "run%04u", d);
                        for (unsigned k = 0; r >= 0 && k < 2; k++) {
                                bool contract = (k == 0) == ((p + d) % 2 == 0);
                                struct mark a, b;

                                ncalls = 0;
                                mark_now(&a);
                                r = scan_one(fd, dname, contract);
                                mark_now(&b);
                                if (r >= 0)
                                        r = series_region(contract ? scan : find, &a, &b, ncalls);
                        }
                }
        close(fd);
        return r;
}

/* ---- B6: a directory checkpoint ----------------------------------------------------- */

static int shard_name(char *buf, size_t size, unsigned i)
{
        int n = snprintf(buf, size, "shard-%05u.bin", i);

        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int unlink_entry(int fd, const char *name, void *data)
{
        (void)data;
        return CALL(unlinkat(fd, name, 0)) < 0 ? -errno : 0;
}

/* ckptd: the scan (getdents64, statx per file: the tree's size and newest
 * mtime), the in-use check of each file (all modified within the hour:
 * openat2, fstat, F_SETLEASE, close), the removal (fstatat for the bytes
 * freed, unlinkat), then the directory. The tombstone rename and its record
 * are per directory, not per file, and left out. */
static int dir_contract(int parent_fd, unsigned files)
{
        int fd = CALL(openat(parent_fd, "checkpoint-100", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)), r;
        char name[32];

        if (fd < 0)
                return -errno;
        r = list_dir(fd, stat_mnt, NULL);
        for (unsigned i = 0; r >= 0 && i < files; i++) {
                int f = -1;

                r = shard_name(name, sizeof(name), i);
                if (r >= 0)
                        r = check_open(fd, name, &f);
                if (r >= 0)
                        CALL(close(f));
        }
        for (unsigned i = 0; r >= 0 && i < files; i++) {
                struct stat st;

                r = shard_name(name, sizeof(name), i);
                if (r >= 0 &&
                    (CALL(fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW)) < 0 || CALL(unlinkat(fd, name, 0)) < 0))
                        r = -errno;
        }
        CALL(close(fd));
        if (r >= 0 && CALL(unlinkat(parent_fd, "checkpoint-100", AT_REMOVEDIR)) < 0)
                r = -errno;
        return r;
}

/* rm -rf: getdents64 and unlinkat per file, then the directory */
static int dir_rm(int parent_fd)
{
        int fd = CALL(openat(parent_fd, "checkpoint-100", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)), r;

        if (fd < 0)
                return -errno;
        r = list_dir(fd, unlink_entry, NULL);
        CALL(close(fd));
        if (r >= 0 && CALL(unlinkat(parent_fd, "checkpoint-100", AT_REMOVEDIR)) < 0)
                r = -errno;
        return r;
}

static int dir_make(int parent_fd, unsigned files)
{
        int fd, r = 0;

        if (mkdirat(parent_fd, "checkpoint-100", 0755) < 0 ||
            (fd = openat(parent_fd, "checkpoint-100", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
                return -errno;
        for (unsigned i = 0; r >= 0 && i < files; i++) {
                char name[32];

                r = shard_name(name, sizeof(name), i);
                if (r >= 0)
                        r = make_file(fd, name, false);
        }
        close(fd);
        /* the bench syncs a new tree before timing its removal */
        if (r >= 0 && syncfs(parent_fd) < 0)
                r = -errno;
        return r;
}

static int bench_dir(struct series *contract_s, struct series *rm_s, unsigned files, unsigned reps)
{
        int fd = make_dir("dir"), r = 0;

        if (fd < 0)
                return fd;
        for (unsigned rep = 0; r >= 0 && rep < reps; rep++)
                for (unsigned k = 0; r >= 0 && k < 2; k++) {
                        bool contract = (k == 0) == (rep % 2 == 0);
                        struct mark a, b;

                        r = dir_make(fd, files);
                        if (r < 0)
                                break;
                        ncalls = 0;
                        mark_now(&a);
                        r = contract ? dir_contract(fd, files) : dir_rm(fd);
                        mark_now(&b);
                        if (r >= 0)
                                r = series_region(contract ? contract_s : rm_s, &a, &b, ncalls);
                }
        close(fd);
        return r;
}

/* ---- main ------------------------------------------------------------------------ */

static void calibrate(void)
{
        enum { N = 2001 };
        static double cpu[N], wall[N];

        for (unsigned i = 0; i < N; i++) {
                struct mark a, b;

                mark_now(&a);
                mark_now(&b);
                cpu[i] = b.cpu_us - a.cpu_us;
                wall[i] = b.wall_us - a.wall_us;
        }
        qsort(cpu, N, sizeof(*cpu), dbl_cmp);
        qsort(wall, N, sizeof(*wall), dbl_cmp);
        overhead = (struct mark){.cpu_us = cpu[N / 2], .wall_us = wall[N / 2]};
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        return (type == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

static void print_json_string(const char *s)
{
        putchar('"');
        for (; *s; s++) {
                if (*s == '"' || *s == '\\')
                        printf("\\%c", *s);
                else if ((unsigned char)*s < 0x20)
                        printf("\\u%04x", (unsigned char)*s);
                else
                        putchar(*s);
        }
        putchar('"');
}

static unsigned arg_uint(const char *s, unsigned min)
{
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v < min || v > 10000000)
                return 0;
        return (unsigned)v;
}

static void usage(FILE *f)
{
        fputs("usage: kfloor [-s SAVES] [-r REPS] [-f FILES] [-d DIR_REPS] WORKDIR\n"
              "  the system calls of ckptd's safety contract per operation, timed, as JSON\n"
              "  -s  saves into a watched run (default 2000)\n"
              "  -r  one-shot runs swept, each way (default 100; the scan makes REPS/10 passes)\n"
              "  -f  files of the directory checkpoint (default 10000)\n"
              "  -d  removals of it, each way (default 5)\n",
              f);
}

enum {
        S_SAVE,
        S_SWEEP_RUN,
        S_PEER_RUN,
        S_VICTIM,
        S_PEER_VICTIM,
        S_PROC_LOCKS,
        S_SCAN_DIR,
        S_FIND_DIR,
        S_DIR_REMOVE,
        S_RM_DIR,
        _S_MAX,
};

int main(int argc, char **argv)
{
        struct series s[_S_MAX] = {
                {.name = "save",
                 .unit = "save",
                 .units = 1,
                 .what = "a save into a watched run of 100, daemon side: woken for NAME.tmp and for the rename, "
                         "statx of the new checkpoint, one victim removed, its IN_DELETE read"},
                {.name = "sweep_run",
                 .unit = "checkpoint",
                 .units = SWEEP_RUN,
                 .what = "one-shot sweep of a run of 40, 36 victims: list, statx each, each victim checked, "
                         "unlinked, logged"},
                {.name = "peer_run",
                 .unit = "checkpoint",
                 .units = SWEEP_RUN,
                 .what = "the peer's sweep of the same run: list, unlink and a line per victim"},
                {.name = "victim",
                 .unit = "victim",
                 .units = 1,
                 .what = "one victim: openat2, fstat, F_SETLEASE, fstatat of the watch path and of the run's .., "
                         "unlinkat, close, a log line"},
                {.name = "peer_victim",
                 .unit = "victim",
                 .units = 1,
                 .what = "one victim, the peer: unlink of the full path, a line"},
                {.name = "proc_locks",
                 .unit = "read",
                 .units = 1,
                 .what = "/proc/locks read to its end (a directory's or a group's victims, once per run)"},
                {.name = "scan_dir",
                 .unit = "entry",
                 .units = SCAN_PER,
                 .what = "a run of 100 scanned: getdents64, statx with STATX_MNT_ID per entry"},
                {.name = "find_dir",
                 .unit = "entry",
                 .units = SCAN_PER,
                 .what = "the same run as find stats it: getdents64, fstatat per entry"},
                {.name = "dir_remove",
                 .unit = "file",
                 .units = 0,
                 .what = "a directory checkpoint removed: statx, in-use check (openat2, fstat, F_SETLEASE, close), "
                         "fstatat and unlinkat per file"},
                {.name = "rm_dir",
                 .unit = "file",
                 .units = 0,
                 .what = "the same directory as rm -rf removes it: getdents64, unlinkat per file"},
        };
        unsigned saves = 2000, reps = 100, files = 10000, dir_reps = 5;
        const size_t ns = _S_MAX;
        int opt, r;

        while ((opt = getopt(argc, argv, "hs:r:f:d:")) != -1) {
                switch (opt) {
                case 's': saves = arg_uint(optarg, 1); break;
                case 'r': reps = arg_uint(optarg, 1); break;
                case 'f': files = arg_uint(optarg, 1); break;
                case 'd': dir_reps = arg_uint(optarg, 1); break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
                if (!saves || !reps || !files || !dir_reps) {
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc - 1) {
                usage(stderr);
                return 2;
        }
        s[S_DIR_REMOVE].units = s[S_RM_DIR].units = files;
        if (snprintf(top, sizeof(top), "%s/kfloor.%ld", argv[optind], (long)getpid()) >= (int)sizeof(top)) {
                fprintf(stderr, "kfloor: %s: name too long\n", argv[optind]);
                return 1;
        }
        /* a lease's holder is sent SIGIO when someone opens the file, and
         * SIGIO's default ends the process (lib/verify.c sigio_ignore) */
        signal(SIGIO, SIG_IGN);
        log_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        if (log_fd < 0 || mkdir(top, 0755) < 0 ||
            (top_fd = open(top, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
                fprintf(stderr, "kfloor: %s: %s\n", top, strerror(errno));
                return 1;
        }
        calibrate();
        r = bench_scan(&s[S_SCAN_DIR], &s[S_FIND_DIR], reps / 10 < 3 ? 3 : reps / 10);
        if (r >= 0)
                r = bench_sweep(&s[S_SWEEP_RUN], &s[S_PEER_RUN], &s[S_VICTIM], &s[S_PEER_VICTIM], &s[S_PROC_LOCKS],
                                reps);
        if (r >= 0)
                r = bench_dir(&s[S_DIR_REMOVE], &s[S_RM_DIR], files, dir_reps);
        if (r >= 0)
                r = bench_save(&s[S_SAVE], saves);
        close(top_fd);
        nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        if (r < 0) {
                fprintf(stderr, "kfloor: %s\n", strerror(-r));
                for (size_t i = 0; i < ns; i++)
                        series_free(&s[i]);
                return 1;
        }
        printf("{\n \"work\": ");
        print_json_string(top);
        printf(",\n \"clock_overhead_us\": {\"cpu\": %.3f, \"wall\": %.3f},\n \"sequences\": {\n", overhead.cpu_us,
               overhead.wall_us);
        for (size_t i = 0; i < ns; i++) {
                series_print(&s[i], i + 1 == ns);
                series_free(&s[i]);
        }
        printf(" }\n}\n");
        return 0;
}
