/* Logging backends: the journal's native protocol with structured fields, or
 * one escaped line per event on stderr. */
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <json.h>
#include <time.h>
#include <wchar.h>
#include <systemd/sd-journal.h>

#include "ckpt.h"
#include "log.h"

static int max_level = LOG_INFO;
static enum log_target target = LOG_TARGET_STDERR;
static enum log_format format = LOG_FORMAT_TEXT;

static const char *const target_table[_LOG_TARGET_MAX] = {
        [LOG_TARGET_AUTO] = "auto",
        [LOG_TARGET_STDERR] = "stderr",
        [LOG_TARGET_JOURNAL] = "journal",
};

static const char *const format_table[_LOG_FORMAT_MAX] = {
        [LOG_FORMAT_TEXT] = "text",
        [LOG_FORMAT_JSON] = "json",
};

int log_format_from_string(const char *s)
{
        for (size_t i = 0; i < ELEMENTSOF(format_table); i++)
                if (strcmp(format_table[i], s) == 0)
                        return (int)i;
        return -EINVAL;
}

void log_set_format(enum log_format f)
{
        format = f;
}

int log_target_from_string(const char *s)
{
        for (size_t i = 0; i < ELEMENTSOF(target_table); i++)
                if (strcmp(target_table[i], s) == 0)
                        return (int)i;
        return -EINVAL;
}

/* systemd sets JOURNAL_STREAM=<dev>:<ino> when stderr is connected to the
 * journal (systemd.exec(5)); a stderr redirected elsewhere no longer matches. */
static bool stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return st.st_dev == dev && st.st_ino == ino;
}

void log_open(enum log_target t)
{
        if (t == LOG_TARGET_AUTO)
                t = stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
        target = t;
}

void log_set_level(int level)
{
        max_level = level;
}

int log_get_level(void)
{
        return max_level;
}

enum log_target log_get_target(void)
{
        return target;
}

/* Length of the valid UTF-8 sequence at s, or 0 when it is not one. Overlong
 * forms, surrogates and code points above U+10FFFF are invalid (RFC 3629). */
static size_t utf8_len(const unsigned char *s)
{
        unsigned c = s[0];
        size_t n;
        unsigned cp, min;

        if (c < 0x80)
                return 1;
        if ((c & 0xe0) == 0xc0)
                n = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
                n = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
                n = 4, cp = c & 0x07, min = 0x10000;
        else
                return 0;
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

/* Decode the valid UTF-8 sequence of n bytes at s. */
static unsigned utf8_decode(const unsigned char *s, size_t n)
{
        static const unsigned char lead_mask[5] = {0, 0x7f, 0x1f, 0x0f, 0x07};
        unsigned cp = s[0] & lead_mask[n];

        for (size_t i = 1; i < n; i++)
                cp = (cp << 6) | (s[i] & 0x3f);
        return cp;
}

/* Code points a terminal or a text viewer acts on instead of showing: C1
 * controls (U+0080-U+009F; U+009B is CSI on terminals that take 8-bit
 * controls), the bidi controls that reorder what follows (Unicode UAX #9:
 * ALM, LRM, RLM, LRE..RLO, LRI..PDI) and the line/paragraph separators. */
static bool codepoint_is_control(unsigned cp)
{
        return (cp >= 0x80 && cp <= 0x9f) || cp == 0x061c || cp == 0x200e || cp == 0x200f ||
               (cp >= 0x2028 && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}

/* The escaped form of the character at *p into out (at most 6 bytes, no
 * NUL); *p moves past it. Returns its length. */
static size_t escape_one(const unsigned char **p, char *out)
{
        const unsigned char *c = *p;
        size_t n = utf8_len(c);

        *p += n > 0 ? n : 1;
        if (*c == '\\' || *c == '\n' || *c == '\t') {
                out[0] = '\\';
                out[1] = *c == '\\' ? '\\' : *c == '\n' ? 'n' : 't';
                return 2;
        }
        if (n == 0 || *c < 0x20 || *c == 0x7f)
                return (size_t)snprintf(out, 7, "\\x%02x", *c);
        if (n > 1 && codepoint_is_control(utf8_decode(c, n)))
                return (size_t)snprintf(out, 7, "\\u%04x", utf8_decode(c, n));
        memcpy(out, c, n);
        return n;
}

/* log_escape(s) into out, room for 4 * strlen(s) + 1 bytes: worst case,
 * every byte becomes \xNN; a 2-byte C1 becomes the 6-byte \u00NN, a 3-byte
 * bidi control the 6-byte \uNNNN. Returns the length written, NUL aside. */
static size_t escape_into(const char *s, char *out)
{
        const unsigned char *p = (const unsigned char *)s;
        char *o = out;

        while (*p) {
                const unsigned char *q = p;

                /* printable ASCII but the backslash, the bulk of any
                 * name: as it is, a span at a time */
                while (*q >= 0x20 && *q < 0x7f && *q != '\\')
                        q++;
                if (q == p) {
                        o += escape_one(&p, o);
                        continue;
                }
                memcpy(o, p, (size_t)(q - p));
                o += q - p, p = q;
        }
        *o = '\0';
        return (size_t)(o - out);
}

char *log_escape(const char *s)
{
        char *out = malloc(strlen(s) * 4 + 1);

        if (out)
                escape_into(s, out);
        return out;
}

/* Text built in place, for a line or an entry's fields: in buf until it
 * outgrows it, then on the heap. A log line costs no allocation of its own
 * in the common case (a deletion is one line; a sweep makes thousands). */
struct text {
        char *p;
        size_t len, cap;
        bool failed; /* out of memory: p holds what fitted */
        char buf[1024];
};

static void text_init(struct text *t)
{
        t->p = t->buf;
        t->len = 0;
        t->cap = sizeof(t->buf);
        t->failed = false;
}

static void text_done(struct text *t)
{
        if (t->p != t->buf)
                free(t->p);
}

/* Room for n more bytes and a NUL, or false (t->failed). */
static bool text_room(struct text *t, size_t n)
{
        size_t cap = t->cap;
        char *p;

        if (t->failed)
                return false;
        if (t->len + n < cap)
                return true;
        while (t->len + n >= cap)
                cap *= 2;
        p = t->p == t->buf ? malloc(cap) : realloc(t->p, cap);
        if (!p) {
                t->failed = true;
                return false;
        }
        if (t->p == t->buf)
                memcpy(p, t->buf, t->len);
        t->p = p;
        t->cap = cap;
        return true;
}

static void text_add(struct text *t, const char *s, size_t n)
{
        if (!text_room(t, n))
                return;
        memcpy(t->p + t->len, s, n);
        t->len += n;
        t->p[t->len] = '\0';
}

static void text_adds(struct text *t, const char *s)
{
        text_add(t, s, strlen(s));
}

static void text_add_escaped(struct text *t, const char *s)
{
        if (text_room(t, strlen(s) * 4))
                t->len += escape_into(s, t->p + t->len);
}

static void text_add_u64(struct text *t, uint64_t v)
{
        char num[24], *e = num + sizeof(num), *b = e;

        do
                *--b = (char)('0' + v % 10);
        while (v /= 10);
        text_add(t, b, (size_t)(e - b));
}

/* log_escape(s) written to f in pieces, without memory of its own: out of
 * memory, where a name must not reach f raw either. */
static void fputs_escaped(const char *s, FILE *f)
{
        const unsigned char *p = (const unsigned char *)s;
        char buf[512];
        size_t n = 0;

        while (*p) {
                n += escape_one(&p, buf + n);
                if (n > sizeof(buf) - 8 || !*p) {
                        fwrite(buf, 1, n, f);
                        n = 0;
                }
        }
}

int log_text_width(const char *s)
{
        static locale_t utf8;
        static bool tried;
        locale_t was;
        mbstate_t st = {0};
        int width = 0;

        if (!tried) {
                tried = true;
                utf8 = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
        }
        if (!utf8) {
                for (; *s; s++)
                        width += ((unsigned char)*s & 0xc0) != 0x80;
                return width;
        }
        was = uselocale(utf8);
        for (size_t left = strlen(s); left > 0;) {
                wchar_t wc;
                size_t k = mbrtowc(&wc, s, left, &st);
                int w;

                if (k == (size_t)-1 || k == (size_t)-2 || k == 0) { /* not after log_escape() */
                        k = 1;
                        w = 1;
                        st = (mbstate_t){0};
                } else {
                        w = wcwidth(wc);
                }
                width += w > 0 ? w : 0;
                s += k;
                left -= k;
        }
        uselocale(was);
        return width;
}

void log_print_padded(FILE *f, const char *s, int width)
{
        int w = log_text_width(s);

        fputs(s, f);
        if (w < width)
                fprintf(f, "%*s", width - w, "");
}

char *json_escape_text(const char *s)
{
        const unsigned char *p = (const unsigned char *)s;
        size_t len = strlen(s);
        /* worst case: every byte becomes \ufffd */
        char *out = malloc(len * 6 + 1), *o = out;

        if (!out)
                return NULL;
        while (*p) {
                const unsigned char *q = p;
                size_t n;

                /* ASCII below DEL, the bulk of any text: as it is, a span
                 * at a time */
                while (*q && *q < 0x7f)
                        q++;
                if (q > p) {
                        memcpy(o, p, (size_t)(q - p));
                        o += q - p, p = q;
                        continue;
                }
                n = utf8_len(p);
                if (n == 0) {
                        o += sprintf(o, "\\ufffd");
                        p++;
                } else if (*p == 0x7f || (n > 1 && codepoint_is_control(utf8_decode(p, n)))) {
                        o += sprintf(o, "\\u%04x", utf8_decode(p, n));
                        p += n;
                } else {
                        memcpy(o, p, n);
                        o += n, p += n;
                }
        }
        *o = '\0';
        return out;
}

static const char *level_prefix(int level)
{
        switch (level) {
        case LOG_EMERG:
        case LOG_ALERT:
        case LOG_CRIT: return "critical: ";
        case LOG_ERR: return "error: ";
        case LOG_WARNING: return "warning: ";
        default: return "";
        }
}

/* Message text is escaped too: a name can reach it through a %s. */
static void write_stderr(int level, const char *msg)
{
        struct text t;

        text_init(&t);
        text_adds(&t, "ckptd: ");
        text_adds(&t, level_prefix(level));
        text_add_escaped(&t, msg);
        text_add(&t, "\n", 1);
        if (!t.failed) {
                fwrite(t.p, 1, t.len, stderr); /* unbuffered: one write(2) */
                text_done(&t);
                return;
        }
        text_done(&t);
        fprintf(stderr, "ckptd: %s", level_prefix(level));
        fputs_escaped(msg, stderr);
        fputc('\n', stderr);
}

#define FIELD_MAX 24

/* The journal entry of one event as "KEY=value" strings (names escaped),
 * each NUL-terminated in t, pointed at by fields[] (at most FIELD_MAX) and
 * measured in lens[]; the count, or -ENOMEM (t is still to be freed). */
static int fields_build(int level, const struct log_fields *f, const char *msg, struct text *t, char **fields,
                        size_t *lens)
{
        size_t start[FIELD_MAX], n = 0;

        /* each field ends with its NUL, counted in t->len */
#define BEGIN(key) (start[n] = t->len, text_adds(t, key "="))
#define END()      (lens[n] = t->len - start[n], text_add(t, "", 1), n++)
#define ADD_NAME(key, value)                                                                                           \
        do {                                                                                                           \
                if (value) {                                                                                           \
                        BEGIN(key);                                                                                    \
                        text_add_escaped(t, value);                                                                    \
                        END();                                                                                         \
                }                                                                                                      \
        } while (0)
#define ADD_U64(key, value) (BEGIN(key), text_add_u64(t, value), END())

        ADD_NAME("MESSAGE", msg);
        ADD_U64("PRIORITY", (uint64_t)level);
        BEGIN("SYSLOG_IDENTIFIER"), text_adds(t, "ckptd"), END();
        if (f) {
                ADD_NAME("MESSAGE_ID", f->message_id);
                ADD_NAME("CKPTD_ACTION", f->action);
                ADD_NAME("CKPTD_PATH", f->path);
                ADD_NAME("CKPTD_RUN", f->run);
                ADD_NAME("CKPTD_REASON", f->reason);
                ADD_NAME("CKPTD_MONITOR", f->monitor);
                if (f->has_value) {
                        char num[32];
                        BEGIN("CKPTD_VALUE"), text_adds(t, number_format(f->value, num, sizeof(num))), END();
                }
                if (f->has_bytes)
                        ADD_U64("CKPTD_BYTES", f->bytes);
                if (f->has_free)
                        ADD_U64("CKPTD_FREE_BYTES", f->free_bytes);
                if (f->has_floor)
                        ADD_U64("CKPTD_FLOOR_BYTES", f->floor_bytes);
        }
#undef ADD_U64
#undef ADD_NAME
#undef END
#undef BEGIN
        if (t->failed)
                return -ENOMEM;
        /* t no longer moves */
        for (size_t i = 0; i < n; i++)
                fields[i] = t->p + start[i];
        return (int)n;
}

static int journal_send(int level, const struct log_fields *f, const char *msg)
{
        char *fields[FIELD_MAX];
        size_t lens[FIELD_MAX];
        struct iovec iov[FIELD_MAX];
        struct text t;
        int n, r;

        text_init(&t);
        n = fields_build(level, f, msg, &t, fields, lens);
        if (n < 0) {
                text_done(&t);
                return n;
        }
        for (int i = 0; i < n; i++)
                iov[i] = (struct iovec){.iov_base = fields[i], .iov_len = lens[i]};
        r = sd_journal_sendv(iov, n);
        text_done(&t);
        return r;
}

/* --log-format json: one object per line on stderr, with the fields the
 * journal gets, as strings (what `journalctl -o json` prints), and
 * __REALTIME_TIMESTAMP in microseconds. Values are escaped as for the journal
 * (log_escape), so the line is valid UTF-8 whatever bytes a name holds. */
static int json_write(int level, const struct log_fields *f, const char *msg)
{
        char *fields[FIELD_MAX];
        size_t lens[FIELD_MAX];
        struct text t;
        int n, r = 0;
        json_object *o;

        text_init(&t);
        n = fields_build(level, f, msg, &t, fields, lens);
        if (n < 0) {
                text_done(&t);
                return n;
        }
        o = json_object_new_object();
        if (!o)
                r = -ENOMEM;
        for (int i = 0; o && i < n; i++) {
                char *eq = strchr(fields[i], '=');
                *eq = '\0';
                if (json_object_object_add(o, fields[i], json_object_new_string(eq + 1)) < 0)
                        r = -ENOMEM;
        }
        if (o && r == 0) {
                char ts[32];
                snprintf(ts, sizeof(ts), "%lld", (long long)now_usec(CLOCK_REALTIME));
                json_object_object_add(o, "__REALTIME_TIMESTAMP", json_object_new_string(ts));
                _cleanup_free_ char *text = json_escape_text(
                        json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
                if (text)
                        fprintf(stderr, "%s\n", text);
                else
                        r = -ENOMEM;
        }
        json_object_put(o);
        text_done(&t);
        return r;
}

static log_observer_fn *observer;

void log_set_observer(log_observer_fn *fn)
{
        observer = fn;
}

static int log_va(int level, int error, const struct log_fields *f, const char *fmt, va_list ap)
{
        char buf[512], *msg = buf;
        va_list again;
        int k;

        if (error < 0)
                error = -error;
        if (level > max_level && !(observer && f))
                return -error;
        /* %m in fmt prints strerror(errno); a message that does not fit in
         * buf is made again on the heap */
        va_copy(again, ap);
        errno = error;
        k = vsnprintf(buf, sizeof(buf), fmt, ap);
        errno = error;
        if (k >= (int)sizeof(buf) && vasprintf(&msg, fmt, again) < 0)
                k = -1;
        va_end(again);
        if (k < 0)
                return -error;
        /* events reach the observer whatever the level */
        if (observer && f)
                observer(level, f, msg);
        if (level <= max_level) {
                int r = -1;

                if (target == LOG_TARGET_JOURNAL)
                        r = journal_send(level, f, msg);
                else if (format == LOG_FORMAT_JSON)
                        r = json_write(level, f, msg);
                if (r < 0)
                        write_stderr(level, msg);
        }
        if (msg != buf)
                free(msg);
        return -error;
}

int log_internal(int level, int error, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_va(level, error, NULL, fmt, ap);
        va_end(ap);
        return r;
}

int log_struct(int level, const struct log_fields *f, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = log_va(level, 0, f, fmt, ap);
        va_end(ap);
        return r;
}
