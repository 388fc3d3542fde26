/* Tombstone records (see tombrec.h).
 *
 * One file per removal in <state>/tombstones/, named by 128 random bits, so
 * nobody can predict or pre-create it; the directory is 0700 and owned by
 * ckptd's user, so only ckptd writes records. A record is text, one field per
 * line; names are percent-encoded (bytes <= 0x20, >= 0x7f and '%'), since a
 * file name may hold a newline:
 *
 *   ckptd-tombstone 1
 *   root /data/runs
 *   run vision/run-3
 *   rundir <dev> <ino>
 *   member <dev> <ino> <type, octal> <btime s> <btime ns> <name> <tombstone name>
 *   ...
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "tombrec.h"

#define RECORDS_DIR   "tombstones"
#define RECORD_SUFFIX ".rec"
#define RECORD_MAGIC  "ckptd-tombstone 1"
/* A record of a group of 100k members with long names stays well below. */
#define RECORD_MAX (64u << 20)

char *tombrec_state_path(void)
{
        const char *s = getenv("STATE_DIRECTORY"), *home;
        char *p = NULL;

        /* systemd.exec(5): a colon-separated list when StateDirectory= names
         * several; ours is the first. */
        if (s && s[0] == '/') {
                size_t len = strcspn(s, ":");

                return strndup(s, len);
        }
        if (geteuid() == 0)
                return strdup("/var/lib/ckptd");
        s = getenv("XDG_STATE_HOME");
        if (s && s[0] == '/')
                return asprintf(&p, "%s/ckptd", s) < 0 ? NULL : p;
        home = getenv("HOME");
        if (!home || home[0] != '/')
                return NULL;
        return asprintf(&p, "%s/.local/state/ckptd", home) < 0 ? NULL : p;
}

/* The directory must be ours alone: a record is an order to delete. */
static int check_private(int fd)
{
        struct stat st;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode))
                return -ENOTDIR;
        if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
                return -EPERM;
        return 0;
}

/* mkdir -p, 0700 for what we create. */
static int mkdir_parents(const char *path)
{
        _cleanup_free_ char *p = strdup(path);

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, 0700) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int tombrec_open(const char *state_path)
{
        _cleanup_close_ int state = -1, fd = -1;
        int r;

        if (!state_path || state_path[0] != '/')
                return -EINVAL;
        r = mkdir_parents(state_path);
        if (r < 0)
                return r;
        state = open(state_path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (state < 0)
                return -errno;
        r = check_private(state);
        if (r < 0)
                return r;
        if (mkdirat(state, RECORDS_DIR, 0700) < 0 && errno != EEXIST)
                return -errno;
        fd = openat(state, RECORDS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = check_private(fd);
        if (r < 0)
                return r;
        return TAKE_FD(fd);
}

int tombrec_new_id(struct tombrec *r)
{
        uint8_t b[16];
        ssize_t n;

        do
                n = getrandom(b, sizeof(b), 0);
        while (n < 0 && errno == EINTR);
        if (n < 0)
                return -errno;
        if ((size_t)n != sizeof(b))
                return -EIO;
        for (size_t i = 0; i < sizeof(b); i++)
                snprintf(r->id + 2 * i, 3, "%02x", b[i]);
        return 0;
}

static void put_name(FILE *f, const char *s)
{
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
                if (*p <= 0x20 || *p >= 0x7f || *p == '%')
                        fprintf(f, "%%%02x", *p);
                else
                        fputc(*p, f);
}

static int hexval(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

/* Decode a percent-encoded word in place; "" and a NUL byte are refused. */
static int get_name(char *s)
{
        char *o = s;

        if (!*s)
                return -EBADMSG;
        for (char *p = s; *p; p++) {
                if (*p != '%') {
                        *o++ = *p;
                        continue;
                }
                int h = hexval(p[1]), l = h < 0 ? -1 : hexval(p[2]);

                if (h < 0 || l < 0 || (h == 0 && l == 0))
                        return -EBADMSG;
                *o++ = (char)(h * 16 + l);
                p += 2;
        }
        *o = '\0';
        return 0;
}

static bool id_valid(const char *id, size_t len)
{
        if (len != 32)
                return false;
        for (size_t i = 0; i < len; i++)
                if (hexval(id[i]) < 0)
                        return false;
        return true;
}

int tombrec_write(int dir_fd, const struct tombrec *r)
{
        char tmp[64], name[64];
        _cleanup_close_ int fd = -1;
        FILE *f;
        int k = 0;

        if (!id_valid(r->id, strlen(r->id)))
                return -EINVAL;
        snprintf(tmp, sizeof(tmp), ".tmp-%s", r->id);
        snprintf(name, sizeof(name), "%s%s", r->id, RECORD_SUFFIX);
        fd = openat(dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        f = fdopen(fd, "w");
        if (!f)
                return -errno;
        TAKE_FD(fd);
        fprintf(f, "%s\nroot ", RECORD_MAGIC);
        put_name(f, r->root);
        if (r->has_root_id)
                fprintf(f, "\nrootdir %" PRIu64 " %" PRIu64, r->root_dev, r->root_ino);
        fputs("\nrun ", f);
        put_name(f, r->run);
        fprintf(f, "\nrundir %" PRIu64 " %" PRIu64 "\n", r->run_dev, r->run_ino);
        for (size_t i = 0; i < r->n; i++) {
                fprintf(f, "member %" PRIu64 " %" PRIu64 " %o %" PRId64 " %" PRIu32 " %" PRId64 " %" PRIu32 " ",
                        r->m[i].dev, r->m[i].ino, r->m[i].type, r->m[i].btime_sec, r->m[i].btime_nsec,
                        r->m[i].ctime_sec, r->m[i].ctime_nsec);
                put_name(f, r->m[i].name);
                fputc(' ', f);
                put_name(f, r->m[i].tomb);
                fputc('\n', f);
        }
        if (fflush(f) != 0 || ferror(f))
                k = -(errno ? errno : EIO);
        else if (fsync(fileno(f)) < 0)
                k = -errno;
        if (fclose(f) != 0 && k == 0)
                k = -errno;
        if (k == 0 && renameat(dir_fd, tmp, dir_fd, name) < 0)
                k = -errno;
        /* The rename must be on disk before the checkpoint's own rename. */
        if (k == 0 && fsync(dir_fd) < 0)
                k = -errno;
        if (k < 0)
                (void)unlinkat(dir_fd, tmp, 0);
        return k;
}

int tombrec_delete(int dir_fd, const struct tombrec *r)
{
        char name[64];

        snprintf(name, sizeof(name), "%s%s", r->id, RECORD_SUFFIX);
        if (unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        return 0;
}

void tombrec_finish(struct tombrec *r)
{
        for (size_t i = 0; i < r->n; i++) {
                free(r->m[i].name);
                free(r->m[i].tomb);
        }
        free(r->m);
        free(r->root);
        free(r->run);
        *r = (struct tombrec){};
}

void tombrecs_free(struct tombrec *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                tombrec_finish(&v[i]);
        free(v);
}

static int read_all(int dir_fd, const char *name, char **ret)
{
        _cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        size_t len = 0;

        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode) || st.st_uid != geteuid())
                return -EPERM;
        if ((uint64_t)st.st_size >= RECORD_MAX)
                return -EFBIG;
        buf = malloc((size_t)st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (len < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                len += (size_t)n;
        }
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        return 0;
}

static int parse_u64(const char *s, uint64_t *ret)
{
        char *end;

        errno = 0;
        *ret = strtoull(s, &end, 10);
        return errno || end == s || *end ? -EBADMSG : 0;
}

/* A time as two words, seconds and nanoseconds. */
static int parse_time(const char *sec_text, const char *nsec_text, int64_t *ret_sec, uint32_t *ret_nsec)
{
        uint64_t nsec;
        char *end;
        int k;

        errno = 0;
        *ret_sec = strtoll(sec_text, &end, 10);
        if (errno || *end || end == sec_text)
                return -EBADMSG;
        if ((k = parse_u64(nsec_text, &nsec)) < 0 || nsec >= 1000000000)
                return -EBADMSG;
        *ret_nsec = (uint32_t)nsec;
        return 0;
}

/* "dev ino type btime_sec btime_nsec [ctime_sec ctime_nsec] name tomb":
 * the ctime since 2026-12 (an older record has none). */
static int parse_member(char *line, struct tombrec *r)
{
        char *w[10], *save = NULL;
        struct tombrec_member *nm, *m;
        unsigned long type;
        size_t n = 0;
        char *end;
        int k;

        while (n < ELEMENTSOF(w) && (w[n] = strtok_r(n ? NULL : line, " ", &save)))
                n++;
        if (n != 7 && n != 9)
                return -EBADMSG;
        nm = realloc(r->m, (r->n + 1) * sizeof(*nm));
        if (!nm)
                return -ENOMEM;
        r->m = nm;
        m = &r->m[r->n];
        *m = (struct tombrec_member){};
        if ((k = parse_u64(w[0], &m->dev)) < 0 || (k = parse_u64(w[1], &m->ino)) < 0)
                return k;
        type = strtoul(w[2], &end, 8);
        if (*end || (type != S_IFREG && type != S_IFDIR))
                return -EBADMSG;
        m->type = (unsigned)type;
        if ((k = parse_time(w[3], w[4], &m->btime_sec, &m->btime_nsec)) < 0)
                return k;
        if (n == 9 && (k = parse_time(w[5], w[6], &m->ctime_sec, &m->ctime_nsec)) < 0)
                return k;
        if ((k = get_name(w[n - 2])) < 0 || (k = get_name(w[n - 1])) < 0)
                return k;
        m->name = strdup(w[n - 2]);
        m->tomb = strdup(w[n - 1]);
        r->n++;
        return m->name && m->tomb ? 0 : -ENOMEM;
}

/* Parse buf into r; names must be single entries. */
static int parse(char *buf, struct tombrec *r)
{
        char *save = NULL, *line;
        int k, seen = 0;

        line = strtok_r(buf, "\n", &save);
        if (!line || strcmp(line, RECORD_MAGIC) != 0)
                return -EBADMSG;
        while ((line = strtok_r(NULL, "\n", &save))) {
                if (strncmp(line, "root ", 5) == 0 && !r->root) {
                        if ((k = get_name(line + 5)) < 0)
                                return k;
                        if (!(r->root = strdup(line + 5)))
                                return -ENOMEM;
                        seen |= 1;
                } else if (strncmp(line, "run ", 4) == 0 && !r->run) {
                        if ((k = get_name(line + 4)) < 0)
                                return k;
                        if (!(r->run = strdup(line + 4)))
                                return -ENOMEM;
                        seen |= 2;
                } else if (strncmp(line, "rootdir ", 8) == 0 && !r->has_root_id) {
                        char *sp = strchr(line + 8, ' ');

                        if (!sp)
                                return -EBADMSG;
                        *sp = '\0';
                        if ((k = parse_u64(line + 8, &r->root_dev)) < 0 || (k = parse_u64(sp + 1, &r->root_ino)) < 0)
                                return k;
                        r->has_root_id = true;
                } else if (strncmp(line, "rundir ", 7) == 0) {
                        char *sp = strchr(line + 7, ' ');

                        if (!sp)
                                return -EBADMSG;
                        *sp = '\0';
                        if ((k = parse_u64(line + 7, &r->run_dev)) < 0 || (k = parse_u64(sp + 1, &r->run_ino)) < 0)
                                return k;
                        seen |= 4;
                } else if (strncmp(line, "member ", 7) == 0) {
                        if ((k = parse_member(line + 7, r)) < 0)
                                return k;
                } else
                        return -EBADMSG;
        }
        if (seen != 7 || r->n == 0)
                return -EBADMSG;
        for (size_t i = 0; i < r->n; i++)
                if (strchr(r->m[i].name, '/') || strchr(r->m[i].tomb, '/') || r->m[i].name[0] == '.' ||
                    strcmp(r->m[i].tomb, "..") == 0 || strcmp(r->m[i].tomb, ".") == 0)
                        return -EBADMSG;
        return 0;
}

static int cmp_id(const void *a, const void *b)
{
        return strcmp(((const struct tombrec *)a)->id, ((const struct tombrec *)b)->id);
}

int tombrec_load(int dir_fd, const char *root, uint64_t root_dev, uint64_t root_ino, struct tombrec **ret,
                 size_t *ret_n, unsigned *ret_bad)
{
        _cleanup_close_ int fd = openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        struct tombrec *v = NULL;
        size_t n = 0;
        unsigned bad = 0;
        struct dirent *de;
        int r = 0;
        DIR *d;

        *ret = NULL;
        *ret_n = 0;
        if (fd < 0)
                return -errno;
        d = fdopendir(fd);
        if (!d)
                return -errno;
        TAKE_FD(fd);
        while ((errno = 0, de = readdir(d))) {
                size_t len = strlen(de->d_name), sl = strlen(RECORD_SUFFIX);
                _cleanup_free_ char *buf = NULL;
                struct tombrec rec = {};
                struct tombrec *nv;
                int k;

                if (len != 32 + sl || strcmp(de->d_name + 32, RECORD_SUFFIX) != 0 || !id_valid(de->d_name, 32))
                        continue;
                k = read_all(dirfd(d), de->d_name, &buf);
                if (k == -ENOENT)
                        continue;
                if (k == 0)
                        k = parse(buf, &rec);
                if (k == -ENOMEM) {
                        tombrec_finish(&rec);
                        r = k;
                        break;
                }
                if (k < 0 || !(streq_ptr(rec.root, root) || (rec.has_root_id && (root_dev || root_ino) &&
                                                             rec.root_dev == root_dev && rec.root_ino == root_ino))) {
                        bad += k < 0;
                        tombrec_finish(&rec);
                        continue;
                }
                memcpy(rec.id, de->d_name, 32);
                rec.id[32] = '\0';
                nv = realloc(v, (n + 1) * sizeof(*nv));
                if (!nv) {
                        tombrec_finish(&rec);
                        r = -ENOMEM;
                        break;
                }
                v = nv;
                v[n++] = rec;
        }
        if (r == 0 && errno != 0)
                r = -errno;
        closedir(d);
        if (r < 0) {
                tombrecs_free(v, n);
                return r;
        }
        if (n > 1)
                qsort(v, n, sizeof(*v), cmp_id);
        *ret = v;
        *ret_n = n;
        if (ret_bad)
                *ret_bad = bad;
        return 0;
}
