/* The config text as libconfig gets it.
 *
 * Files: opened with O_NONBLOCK, so that a FIFO or a device in place of the
 * config cannot block `ckptd -t` or the daemon's event loop on reload, and
 * refused unless fstat says a regular file. libconfig never opens a file:
 * @include is expanded here, under the same rules.
 *
 * Integers: libconfig 1.5 as Debian 12 ships it stores a literal without an
 * L suffix as a 32-bit int, silently truncated (4294967296 reads as 0,
 * 0xFFFFFFFF as -1), and saturates one with the suffix (atoll, strtoull).
 * So every integer literal gets an L appended here, and one that does not
 * fit in int64_t is an error here. The tokenizer follows the rules of
 * libconfig's scanner.l (1.5 to 1.7): the longest match among name, float,
 * integer, hex, with comments and strings skipped. config.c refuses any
 * integer setting libconfig did not store as 64-bit, so a literal this
 * tokenizer missed fails closed instead of being truncated. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conftext.h"
#include "macro.h"

static int grow(struct conftext *t, size_t n)
{
        char *p;
        size_t cap;

        if (t->len + n + 1 <= t->cap)
                return 0;
        cap = t->cap ? t->cap : 4096;
        while (cap < t->len + n + 1)
                cap *= 2;
        p = realloc(t->text, cap);
        if (!p)
                return -ENOMEM;
        t->text = p;
        t->text[t->len] = '\0';
        t->cap = cap;
        return 0;
}

static int emit(struct conftext *t, const char *s, size_t n)
{
        int r = grow(t, n);

        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                if (s[i] == '\n')
                        t->line++;
        memcpy(t->text + t->len, s, n);
        t->len += n;
        t->text[t->len] = '\0';
        return 0;
}

static int push_seg(struct conftext *t, int file_line, const char *file)
{
        struct conftext_seg *v = realloc(t->segs, (t->n_segs + 1) * sizeof(*v));

        if (!v)
                return -ENOMEM;
        t->segs = v;
        t->segs[t->n_segs++] = (struct conftext_seg){.first_line = t->line, .file_line = file_line, .file = file};
        return 0;
}

static const char *intern(struct conftext *t, const char *name)
{
        char **v = realloc(t->files, (t->n_files + 1) * sizeof(*v));
        char *copy;

        if (!v)
                return NULL;
        t->files = v;
        copy = strdup(name);
        if (!copy)
                return NULL;
        t->files[t->n_files++] = copy;
        return copy;
}

static const char *file_type(mode_t mode)
{
        switch (mode & S_IFMT) {
        case S_IFIFO: return "a FIFO";
        case S_IFCHR: return "a character device";
        case S_IFBLK: return "a block device";
        case S_IFSOCK: return "a socket";
        case S_IFDIR: return "a directory";
        default: return "not a regular file";
        }
}

/* Read a regular file of at most CONFIG_SIZE_MAX bytes without blocking on
 * what is not one. On error, a message "PREFIX: why" at `at`. */
static int read_file(struct conftext *t, const char *path, struct loc at, const char *prefix, char **ret,
                     size_t *ret_len, char *error)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        struct stat st;
        int r;

        fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0) {
                r = -errno;
                conf_fail(error, at, "%scannot open: %s", prefix, strerror(-r));
                return r;
        }
        if (S_ISDIR(st.st_mode)) {
                conf_fail(error, at, "%scannot open: %s", prefix, strerror(EISDIR));
                return -EISDIR;
        }
        if (!S_ISREG(st.st_mode))
                return conf_fail(error, at, "%sis %s, not a regular file; refusing to read it", prefix,
                                 file_type(st.st_mode));
        if (st.st_size > CONFIG_SIZE_MAX - (off_t)t->total)
                return conf_fail(error, at, "%sis larger than %d KiB; a config is a few KiB", prefix,
                                 CONFIG_SIZE_MAX / 1024);
        /* Read one byte past the cap: the file may have grown since fstat. */
        buf = malloc(CONFIG_SIZE_MAX - t->total + 2);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                ssize_t n = read(fd, buf + len, CONFIG_SIZE_MAX - t->total + 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        r = -errno;
                        conf_fail(error, at, "%sread: %s", prefix, strerror(-r));
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > CONFIG_SIZE_MAX - t->total)
                        return conf_fail(error, at, "%sis larger than %d KiB; a config is a few KiB", prefix,
                                         CONFIG_SIZE_MAX / 1024);
        }
        /* libconfig reads a C string: a NUL would silently end the config */
        if (memchr(buf, '\0', len))
                return conf_fail(error, at, "%scontains a NUL byte; not a text file", prefix);
        buf[len] = '\0';
        t->total += len;
        *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

static bool is_digit(char c)
{
        return c >= '0' && c <= '9';
}

static bool is_xdigit(char c)
{
        return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static bool is_alpha(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static size_t span_digits(const char *s, size_t i, size_t len)
{
        size_t n = 0;

        while (i + n < len && is_digit(s[i + n]))
                n++;
        return n;
}

/* Length of an L or LL suffix at s[i]. */
static size_t suffix_len(const char *s, size_t i, size_t len)
{
        if (i < len && s[i] == 'L')
                return i + 1 < len && s[i + 1] == 'L' ? 2 : 1;
        return 0;
}

/* [eE][-+]?[0-9]+ at s[i], or 0. */
static size_t exponent_len(const char *s, size_t i, size_t len)
{
        size_t p = i, d;

        if (p >= len || (s[p] != 'e' && s[p] != 'E'))
                return 0;
        p++;
        if (p < len && (s[p] == '-' || s[p] == '+'))
                p++;
        d = span_digits(s, p, len);
        return d ? p + d - i : 0;
}

/* scanner.l's float: ([-+]?[0-9]*\.[0-9]*EXP?)|([-+]?[0-9]+(\.[0-9]*)?EXP) */
static size_t float_len(const char *s, size_t i, size_t len)
{
        size_t p = i, a = 0, b = 0, d;

        if (p < len && (s[p] == '-' || s[p] == '+'))
                p++;
        d = span_digits(s, p, len);
        if (p + d < len && s[p + d] == '.') {
                size_t q = p + d + 1;
                q += span_digits(s, q, len);
                a = q + exponent_len(s, q, len) - i;
        }
        if (d > 0) {
                size_t q = p + d, e;
                if (q < len && s[q] == '.') {
                        q++;
                        q += span_digits(s, q, len);
                }
                e = exponent_len(s, q, len);
                if (e)
                        b = q + e - i;
        }
        return a > b ? a : b;
}

enum token {
        TOK_OTHER,
        TOK_NAME,
        TOK_FLOAT,
        TOK_INT,
        TOK_HEX,
};

/* The longest token at s[i] that matters here; ties go to the earlier rule
 * of scanner.l, as flex does. *ret_suffix: length of an L/LL suffix. */
static enum token next_token(const char *s, size_t i, size_t len, size_t *ret_len, size_t *ret_suffix)
{
        size_t n, best = 0, suffix = 0, f, p = i;
        enum token tok = TOK_OTHER;

        *ret_suffix = 0;
        if (is_alpha(s[i]) || s[i] == '*') {
                for (n = 1;
                     i + n < len && (is_alpha(s[i + n]) || is_digit(s[i + n]) || (s[i + n] && strchr("-_*", s[i + n])));
                     n++)
                        ;
                *ret_len = n;
                return TOK_NAME;
        }
        f = float_len(s, i, len);
        if (f > best) {
                best = f;
                tok = TOK_FLOAT;
        }
        if (p < len && (s[p] == '-' || s[p] == '+'))
                p++;
        n = span_digits(s, p, len);
        if (n > 0) {
                size_t l = suffix_len(s, p + n, len);
                if (p + n + l - i > best) {
                        best = p + n + l - i;
                        suffix = l;
                        tok = TOK_INT;
                }
        }
        if (i + 2 < len && s[i] == '0' && (s[i + 1] == 'x' || s[i + 1] == 'X') && is_xdigit(s[i + 2])) {
                size_t l;
                for (n = 2; i + n < len && is_xdigit(s[i + n]); n++)
                        ;
                l = suffix_len(s, i + n, len);
                if (n + l > best) {
                        best = n + l;
                        suffix = l;
                        tok = TOK_HEX;
                }
        }
        *ret_len = best ? best : 1;
        *ret_suffix = suffix;
        return best ? tok : TOK_OTHER;
}

/* Whether the literal s[0..n) (no suffix) fits in int64_t. */
static bool literal_fits(const char *s, size_t n, bool hex)
{
        uint64_t v = 0, limit = (uint64_t)INT64_MAX;
        size_t i = 0;

        if (hex) {
                for (i = 2; i < n; i++) {
                        unsigned d = is_digit(s[i]) ? (unsigned)(s[i] - '0') : (unsigned)((s[i] | 0x20) - 'a' + 10);
                        if (v > (limit - d) / 16)
                                return false;
                        v = v * 16 + d;
                }
                return true;
        }
        if (s[0] == '-' || s[0] == '+') {
                if (s[0] == '-')
                        limit++; /* -2^63 */
                i++;
        }
        for (; i < n; i++) {
                unsigned d = (unsigned)(s[i] - '0');
                if (v > (limit - d) / 10)
                        return false;
                v = v * 10 + d;
        }
        return true;
}

enum state {
        ST_INITIAL,
        ST_COMMENT,
        ST_STRING,
};

static int expand(struct conftext *t, const char *src, size_t len, const char *name, const char *include_dir, int depth,
                  char *error);

/* src[i] starts a line: `[ \t]*@include[ \t]+"NAME"`, as scanner.l's
 * include_open. Returns the length of the directive, 0 if none. */
static size_t include_len(const char *src, size_t i, size_t len, size_t *ret_name, size_t *ret_name_len)
{
        size_t p = i, q;

        while (p < len && (src[p] == ' ' || src[p] == '\t'))
                p++;
        if (len - p < 8 || memcmp(src + p, "@include", 8) != 0)
                return 0;
        p += 8;
        q = p;
        while (p < len && (src[p] == ' ' || src[p] == '\t'))
                p++;
        if (p == q || p >= len || src[p] != '"')
                return 0;
        p++;
        *ret_name = p;
        while (p < len && src[p] != '"' && src[p] != '\n')
                p += src[p] == '\\' && p + 1 < len && (src[p + 1] == '"' || src[p + 1] == '\\') ? 2 : 1;
        *ret_name_len = p - *ret_name;
        return p < len && src[p] == '"' ? p + 1 - i : SIZE_MAX;
}

static int include_file(struct conftext *t, const char *raw, size_t raw_len, struct loc at, const char *include_dir,
                        int depth, char *error)
{
        _cleanup_free_ char *name = malloc(raw_len + 1), *path = NULL, *text = NULL;
        const char *interned;
        char prefix[64];
        size_t n = 0, len;
        int r;

        if (!name)
                return -ENOMEM;
        for (size_t i = 0; i < raw_len; i++) {
                if (raw[i] == '\\' && (raw[i + 1] == '\\' || raw[i + 1] == '"'))
                        i++;
                else if (raw[i] == '\\')
                        return conf_fail(
                                error, at,
                                "@include: a backslash may be followed only by another backslash or a double quote");
                name[n++] = raw[i];
        }
        name[n] = '\0';
        if (!include_dir)
                return conf_fail(error, at, "@include \"%s\": not allowed here", name);
        if (depth >= CONFIG_INCLUDE_DEPTH_MAX)
                return conf_fail(error, at, "@include \"%s\": nested more than %d deep", name,
                                 CONFIG_INCLUDE_DEPTH_MAX);
        /* relative to the main file's directory, as libconfig does */
        if (name[0] == '/')
                path = strdup(name);
        else if (asprintf(&path, "%s/%s", include_dir, name) < 0)
                path = NULL;
        if (!path)
                return -ENOMEM;
        snprintf(prefix, sizeof(prefix), "@include \"%.40s\": ", name);
        r = read_file(t, path, at, prefix, &text, &len, error);
        if (r < 0)
                return r;
        interned = intern(t, path);
        if (!interned)
                return -ENOMEM;
        /* The included text starts and ends a line of its own, so that each
         * of its lines maps to one line of one file. */
        r = emit(t, "\n", 1);
        if (r < 0)
                return r;
        r = expand(t, text, len, interned, include_dir, depth + 1, error);
        if (r < 0)
                return r;
        r = emit(t, "\n", 1);
        if (r < 0)
                return r;
        return push_seg(t, at.line, at.file);
}

static int expand(struct conftext *t, const char *src, size_t len, const char *name, const char *include_dir, int depth,
                  char *error)
{
        enum state st = ST_INITIAL;
        char last_name[64] = "";
        int line = 1, r;
        size_t i = 0;

        r = push_seg(t, 1, name);
        if (r < 0)
                return r;
        while (i < len) {
                size_t n = 1, suffix = 0, name_at = 0, name_len = 0;
                bool at_bol = i == 0 || src[i - 1] == '\n';
                enum token tok;

                switch (st) {
                case ST_COMMENT:
                        if (src[i] == '*' && i + 1 < len && src[i + 1] == '/') {
                                n = 2;
                                st = ST_INITIAL;
                        }
                        break;
                case ST_STRING:
                        if (src[i] == '\\' && i + 1 < len && (src[i + 1] == '"' || src[i + 1] == '\\'))
                                n = 2;
                        else if (src[i] == '"')
                                st = ST_INITIAL;
                        break;
                case ST_INITIAL:
                        if (at_bol && (n = include_len(src, i, len, &name_at, &name_len)) > 0) {
                                struct loc at = {name, line};
                                if (n == SIZE_MAX)
                                        return conf_fail(error, at, "@include: the file name has no closing quote");
                                r = include_file(t, src + name_at, name_len, at, include_dir, depth, error);
                                if (r < 0)
                                        return r;
                                i += n;
                                continue;
                        }
                        n = 1;
                        if (src[i] == '/' && i + 1 < len && src[i + 1] == '*') {
                                n = 2;
                                st = ST_COMMENT;
                        } else if (src[i] == '"')
                                st = ST_STRING;
                        else if (src[i] == '#' || (src[i] == '/' && i + 1 < len && src[i + 1] == '/')) {
                                while (i + n < len && src[i + n] != '\n')
                                        n++;
                        } else if ((tok = next_token(src, i, len, &n, &suffix)) == TOK_NAME) {
                                snprintf(last_name, sizeof(last_name), "%.*s", (int)(n < 63 ? n : 63), src + i);
                        } else if (tok == TOK_INT || tok == TOK_HEX) {
                                if (!literal_fits(src + i, n - suffix, tok == TOK_HEX))
                                        return conf_fail(error, (struct loc){name, line},
                                                         "%s%s%.*s does not fit in a 64-bit integer", last_name,
                                                         last_name[0] ? ": " : "", (int)(n - suffix), src + i);
                                r = emit(t, src + i, n);
                                if (r >= 0 && suffix == 0)
                                        r = emit(t, "L", 1);
                                if (r < 0)
                                        return r;
                                i += n;
                                continue;
                        }
                        break;
                }
                r = emit(t, src + i, n);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < n; k++)
                        line += src[i + k] == '\n';
                i += n;
        }
        /* An included file is a whole: what it opens, it closes. */
        if (depth > 0 && st != ST_INITIAL)
                return conf_fail(error, (struct loc){name, line}, "unterminated %s at the end of the file",
                                 st == ST_STRING ? "string" : "comment");
        return 0;
}

int conftext_load_file(struct conftext *t, const char *path, const char *include_dir, char *error)
{
        _cleanup_free_ char *text = NULL;
        const char *name;
        size_t len;
        int r;

        *t = (struct conftext){.line = 1};
        r = read_file(t, path, (struct loc){path, 0}, "", &text, &len, error);
        if (r < 0)
                return r;
        name = intern(t, path);
        if (!name)
                return -ENOMEM;
        /* also gives an empty file a buffer: libconfig wants a string */
        r = grow(t, len + len / 8);
        if (r < 0)
                return r;
        return expand(t, text, len, name, include_dir, 0, error);
}

int conftext_load_string(struct conftext *t, const char *text, const char *name, char *error)
{
        const char *n;
        int r;

        *t = (struct conftext){.line = 1};
        if (strlen(text) > CONFIG_SIZE_MAX)
                return conf_fail(error, (struct loc){name, 0}, "is larger than %d KiB; a config is a few KiB",
                                 CONFIG_SIZE_MAX / 1024);
        n = intern(t, name);
        if (!n)
                return -ENOMEM;
        /* also gives an empty text a buffer: libconfig wants a string */
        r = grow(t, strlen(text) + strlen(text) / 8);
        if (r < 0)
                return r;
        return expand(t, text, strlen(text), n, NULL, 0, error);
}

struct loc conftext_loc(const struct conftext *t, int line)
{
        const struct conftext_seg *s = NULL;

        for (size_t i = 0; i < t->n_segs; i++)
                if (t->segs[i].first_line <= line)
                        s = &t->segs[i];
        if (!s || line <= 0)
                return (struct loc){t->n_files ? t->files[0] : NULL, 0};
        return (struct loc){s->file, s->file_line + (line - s->first_line)};
}

void conftext_finish(struct conftext *t)
{
        free(t->text);
        free(t->segs);
        for (size_t i = 0; i < t->n_files; i++)
                free(t->files[i]);
        free(t->files);
        *t = (struct conftext){0};
}
