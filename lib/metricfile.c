/* Metrics from JSON files inside directory checkpoints: HF trainer_state.json
 * and Orbax-style metrics files. json-c reads the NaN, Infinity and -Infinity
 * tokens that Python's json module writes (allow_nan=True is its default) as
 * doubles; null is treated as "no value".
 *
 * Memory: these files are written by the run's owner and read by root, so
 * their content must not decide how much memory ckptd uses. json-c's tree
 * costs 100-750 bytes per value (a 9.9 MB file of "{}," took 2.5 GB), so no
 * whole-file tree is built: a small scanner walks the top-level object (and
 * HF's log_history array) and hands each member (each history entry) to
 * json-c on its own, at most JSON_VALUE_MAX bytes each. Peak memory is the
 * file (at most JSON_FILE_MAX) plus one value's tree.
 *
 * Each file is parsed once per change: what a query extracted is cached by
 * the file's identity and change stamps (see cache_lookup()). */
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"
#include "metricfile.h"
#include "fsutil.h"

/* HF's TrainerState.save_to_json writes json.dumps(indent=2): one log_history
 * entry is 150-400 bytes (loss, grad_norm, learning_rate, epoch, step; eval
 * entries add their metrics). 100k steps logged every 10 is ~3 MB; even 1M
 * steps logged every 5 is ~50 MB. 64 MiB holds that with room, and bounds the
 * read buffer. */
#define JSON_FILE_MAX (64u * 1024 * 1024)
/* One top-level member or one history entry: real ones are under 4 KiB.
 * 64 KiB bounds its json-c tree to ~16 MB even for "[{},{},...]". (The
 * fuzzer builds with a small value to reach the batching of entries.) */
#ifndef JSON_VALUE_MAX
#define JSON_VALUE_MAX (64u * 1024)
#endif
/* json-c's default nesting limit, for the document as a whole. */
#define JSON_DEPTH JSON_TOKENER_DEFAULT_DEPTH

#define HF_STATE_FILE "trainer_state.json"

static unsigned long parse_count;

unsigned long metric_parse_count(void)
{
        return parse_count;
}

static bool is_json_space(char c)
{
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* What parsing one document needs, allocated once. */
struct jctx {
        char *scratch; /* JSON_VALUE_MAX + 3 bytes */
        /* one tokener per nesting level a value starts at (top, member,
         * history entry), reused: a new one per value costs more than
         * parsing a small entry */
        struct json_tokener *tok[3];
};

/* A cursor over a JSON text. */
struct jscan {
        const char *buf;
        size_t len, pos;
        struct jctx *ctx;
};

static void skip_space(struct jscan *s)
{
        while (s->pos < s->len && is_json_space(s->buf[s->pos]))
                s->pos++;
}

/* Where the value at s->pos ends (one past it): a string, a bracketed
 * container or a bare token. This only delimits; json-c validates what is
 * inside when the value is parsed. */
static int value_end(const struct jscan *s, size_t *ret)
{
        size_t p = s->pos, depth = 0;

        if (p >= s->len)
                return -EINVAL;
        if (s->buf[p] != '"' && s->buf[p] != '{' && s->buf[p] != '[') {
                while (p < s->len && !is_json_space(s->buf[p]) && !strchr(",:]}\"[{", s->buf[p]))
                        p++;
                if (p == s->pos)
                        return -EINVAL;
                *ret = p;
                return 0;
        }
        for (; p < s->len; p++) {
                char c = s->buf[p];

                if (c == '"') {
                        for (p++; p < s->len && s->buf[p] != '"'; p++)
                                if (s->buf[p] == '\\')
                                        p++;
                        if (p >= s->len)
                                return -EINVAL;
                        if (depth == 0) {
                                *ret = p + 1;
                                return 0;
                        }
                } else if (c == '{' || c == '[')
                        depth++;
                else if (c == '}' || c == ']') {
                        if (--depth == 0) {
                                *ret = p + 1;
                                return 0;
                        }
                }
        }
        return -EINVAL;
}

/* Parse buf[start, end) as one JSON value nested `depth` levels deep in the
 * document; with wrap, as the array "[" buf[start, end) "]". *ret is NULL
 * for null. -E2BIG past JSON_VALUE_MAX. */
static int parse_value_ex(struct jscan *s, size_t start, size_t end, int depth, bool wrap, struct json_object **ret)
{
        struct json_tokener *tok;
        struct json_object *obj;
        size_t n = end - start, stop;
        enum json_tokener_error err;
        char *p = s->ctx->scratch;

        if (n > JSON_VALUE_MAX)
                return -E2BIG;
        if (wrap)
                *p++ = '[';
        memcpy(p, s->buf + start, n);
        p += n;
        if (wrap)
                *p++ = ']';
        *p = '\0';
        n = (size_t)(p - s->ctx->scratch);
        if (!s->ctx->tok[depth]) {
                s->ctx->tok[depth] = json_tokener_new_ex(JSON_DEPTH - depth);
                if (!s->ctx->tok[depth])
                        return -ENOMEM;
                /* Strict mode still takes Python's NaN/Infinity/-Infinity
                 * (exact case; json_tokener.c), but not trailing commas. */
                json_tokener_set_flags(s->ctx->tok[depth], JSON_TOKENER_STRICT);
        }
        tok = s->ctx->tok[depth];
        json_tokener_reset(tok);
        /* Pass the terminating NUL too: without it a number stays
         * json_tokener_continue (json-c waits for more digits). */
        obj = json_tokener_parse_ex(tok, s->ctx->scratch, (int)(n + 1));
        err = json_tokener_get_error(tok);
        stop = json_tokener_get_parse_end(tok);
        if (err != json_tokener_success) {
                json_object_put(obj);
                return -EINVAL;
        }
        for (; stop < n; stop++)
                if (!is_json_space(s->ctx->scratch[stop])) {
                        json_object_put(obj);
                        return -EINVAL;
                }
        *ret = obj;
        return 0;
}

static int parse_value(struct jscan *s, size_t start, size_t end, int depth, struct json_object **ret)
{
        return parse_value_ex(s, start, end, depth, false, ret);
}

/* Called for each member of the top-level object, in file order, with the
 * value's extent; it must parse (and so validate) the value. */
typedef int (*member_fn)(struct jscan *s, const char *key, size_t key_len, size_t start, size_t end, void *u);

/* Walk a JSON document whose top level should be an object. 0 when it is one
 * and every member was handed to `member`; 1 when it is valid JSON of another
 * type; -EINVAL when it is not JSON; -E2BIG when a part is over budget. */
static int json_walk_scan(struct jscan *sp, member_fn member, void *u)
{
        struct jscan s = *sp;
        const char *buf = s.buf;
        size_t len = s.len, end;
        struct json_object *v;
        int r;

        skip_space(&s);
        if (s.pos >= len)
                return -EINVAL;
        if (buf[s.pos] != '{') {
                r = value_end(&s, &end);
                if (r < 0)
                        return r;
                r = parse_value(&s, s.pos, end, 0, &v);
                if (r < 0)
                        return r;
                if (!v)
                        return -EINVAL; /* a document of just "null" */
                json_object_put(v);
                s.pos = end;
                skip_space(&s);
                return s.pos == len ? 1 : -EINVAL;
        }
        s.pos++;
        skip_space(&s);
        if (s.pos < len && buf[s.pos] == '}')
                s.pos++;
        else
                for (;;) {
                        const char *key;
                        size_t key_len;

                        if (s.pos >= len || buf[s.pos] != '"')
                                return -EINVAL;
                        r = value_end(&s, &end);
                        if (r < 0)
                                return r;
                        r = parse_value(&s, s.pos, end, 1, &v);
                        if (r < 0)
                                return r;
                        if (!json_object_is_type(v, json_type_string)) {
                                json_object_put(v);
                                return -EINVAL;
                        }
                        key = json_object_get_string(v);
                        /* json-c's object keys are C strings: a key
                         * "a\u0000b" is the key "a". */
                        key_len = strlen(key);
                        s.pos = end;
                        skip_space(&s);
                        if (s.pos >= len || buf[s.pos] != ':') {
                                json_object_put(v);
                                return -EINVAL;
                        }
                        s.pos++;
                        skip_space(&s);
                        r = value_end(&s, &end);
                        if (r >= 0)
                                r = member(&s, key, key_len, s.pos, end, u);
                        json_object_put(v);
                        if (r < 0)
                                return r;
                        s.pos = end;
                        skip_space(&s);
                        if (s.pos < len && buf[s.pos] == ',') {
                                s.pos++;
                                skip_space(&s);
                                continue;
                        }
                        if (s.pos < len && buf[s.pos] == '}') {
                                s.pos++;
                                break;
                        }
                        return -EINVAL;
                }
        skip_space(&s);
        return s.pos == len ? 0 : -EINVAL;
}

static int json_walk(const char *buf, size_t len, member_fn member, void *u)
{
        struct jctx ctx = {};
        struct jscan s = {.buf = buf, .len = len, .ctx = &ctx};
        int r;

        /* JSON text never holds a NUL byte, and json-c would stop at one. */
        if (memchr(buf, '\0', len))
                return -EINVAL;
        ctx.scratch = malloc(JSON_VALUE_MAX + 3);
        if (!ctx.scratch)
                return -ENOMEM;
        r = json_walk_scan(&s, member, u);
        for (size_t i = 0; i < ELEMENTSOF(ctx.tok); i++)
                if (ctx.tok[i])
                        json_tokener_free(ctx.tok[i]);
        free(ctx.scratch);
        return r;
}

static bool key_is(const char *key, size_t key_len, const char *name, size_t name_len)
{
        return key_len == name_len && memcmp(key, name, name_len) == 0;
}

/* A JSON number as a double: 0, -ENOENT for null, -EINVAL for other types. */
static int json_number(struct json_object *v, double *ret)
{
        switch (json_object_get_type(v)) {
        case json_type_double:
        case json_type_int: *ret = json_object_get_double(v); return 0;
        case json_type_null: return -ENOENT;
        default: return -EINVAL;
        }
}

struct hf_scan {
        const char *monitor; /* NULL: best only */
        double step;
        int r; /* of the monitor lookup */
        double value;
        char *best;
};

/* One log_history entry, in file order: the last one that qualifies wins
 * (log_history is chronological). A checkpoint's own file only holds history
 * up to its step, but a copied or rewritten one may hold more: hence
 * step <= N. */
static void hf_entry(struct hf_scan *h, struct json_object *e)
{
        struct json_object *mv, *sv;
        double s, value;

        if (!h->monitor || !json_object_is_type(e, json_type_object) || !json_object_object_get_ex(e, h->monitor, &mv))
                return;
        if (!json_object_object_get_ex(e, "step", &sv) || json_number(sv, &s) < 0)
                return;
        /* The caller passes NaN or +inf when the name has no step: then
         * every entry qualifies. A NaN entry step never does. */
        if (!isnan(h->step) && !(s <= h->step))
                return;
        if (json_number(mv, &value) < 0)
                return; /* null or not a number: as if absent */
        h->value = value;
        h->r = 0;
}

/* History entries buf[start, end) (with the commas between them), parsed as
 * one array: json-c's per-call cost (it switches locales around every
 * parse) would otherwise dominate for small entries. */
static int hf_entries(struct jscan *s, size_t start, size_t end, struct hf_scan *h)
{
        struct json_object *a;
        int r;

        r = parse_value_ex(s, start, end, 1, true, &a);
        if (r < 0)
                return r;
        for (size_t i = 0; i < json_object_array_length(a); i++)
                hf_entry(h, json_object_array_get_idx(a, i));
        json_object_put(a);
        return 0;
}

/* log_history's array, in runs of entries of at most JSON_VALUE_MAX bytes. */
static int hf_history(struct jscan *s, size_t start, size_t end, struct hf_scan *h)
{
        struct jscan a = *s;
        size_t e_end, first = SIZE_MAX, last_end = 0;
        int r;

        a.len = end;
        a.pos = start + 1;
        skip_space(&a);
        if (a.pos < a.len && a.buf[a.pos] == ']')
                return a.pos + 1 == end ? 0 : -EINVAL;
        for (;;) {
                r = value_end(&a, &e_end);
                if (r < 0)
                        return r;
                if (e_end - a.pos > JSON_VALUE_MAX)
                        return -E2BIG;
                if (first != SIZE_MAX && e_end - first > JSON_VALUE_MAX) {
                        r = hf_entries(&a, first, last_end, h);
                        if (r < 0)
                                return r;
                        first = SIZE_MAX;
                }
                if (first == SIZE_MAX)
                        first = a.pos;
                last_end = e_end;
                a.pos = e_end;
                skip_space(&a);
                if (a.pos < a.len && a.buf[a.pos] == ',') {
                        a.pos++;
                        skip_space(&a);
                        continue;
                }
                if (a.pos < a.len && a.buf[a.pos] == ']' && a.pos + 1 == end)
                        return hf_entries(&a, first, last_end, h);
                return -EINVAL;
        }
}

static int hf_member(struct jscan *s, const char *key, size_t key_len, size_t start, size_t end, void *u)
{
        struct hf_scan *h = u;
        struct json_object *v = NULL;
        int r;

        /* json-c keeps the last of duplicate keys: so do we. */
        if (key_is(key, key_len, "log_history", strlen("log_history"))) {
                h->r = -ENOENT;
                if (s->buf[start] == '[')
                        return hf_history(s, start, end, h);
        }
        r = parse_value(s, start, end, 1, &v);
        if (r < 0)
                return r;
        if (key_is(key, key_len, "best_model_checkpoint", strlen("best_model_checkpoint"))) {
                free(h->best);
                h->best = NULL;
                if (json_object_is_type(v, json_type_string)) {
                        const char *path = json_object_get_string(v);
                        size_t blen;
                        const char *base = path_last(path, strlen(path), true, &blen);

                        h->best = strndup(base, blen);
                        if (!h->best)
                                r = -ENOMEM;
                        else if (h->best[0] == '\0' || streq_ptr(h->best, ".") || streq_ptr(h->best, "..")) {
                                free(h->best);
                                h->best = NULL;
                        }
                }
        }
        json_object_put(v);
        return r;
}

int metric_hf_parse(const char *buf, size_t len, const char *monitor, double step, double *ret, char **ret_best)
{
        struct hf_scan h = {
                .monitor = monitor,
                .step = step,
                .r = -ENOENT,
        };
        int r;

        r = json_walk(buf, len, hf_member, &h);
        if (r < 0) {
                free(h.best);
                return r;
        }
        if (r > 0) { /* not an object: no history, no best */
                free(h.best);
                h.best = NULL;
        }
        if (ret_best)
                *ret_best = h.best;
        else
                free(h.best);
        if (monitor && h.r == 0 && ret)
                *ret = h.value;
        return monitor ? h.r : 0;
}

struct json_scan {
        const char *monitor;
        size_t head_len; /* of the part before the first '.', 0 without one */
        bool has_literal, has_head;
        struct json_object *literal, *head;
};

static int json_member(struct jscan *s, const char *key, size_t key_len, size_t start, size_t end, void *u)
{
        struct json_scan *j = u;
        struct json_object *v = NULL;
        int r;

        r = parse_value(s, start, end, 1, &v);
        if (r < 0)
                return r;
        /* json-c keeps the last of duplicate keys: so do we. */
        if (key_is(key, key_len, j->monitor, strlen(j->monitor))) {
                json_object_put(j->literal);
                j->literal = json_object_get(v);
                j->has_literal = true;
        } else if (j->head_len > 0 && key_is(key, key_len, j->monitor, j->head_len)) {
                json_object_put(j->head);
                j->head = json_object_get(v);
                j->has_head = true;
        }
        json_object_put(v);
        return 0;
}

/* Walk a dotted path "a.b.c" through nested objects: 0 and *ret set,
 * -ENOENT when a step is missing (or empty: "a..b"), -ENOMEM. */
static int lookup_dotted(struct json_object *root, const char *path, struct json_object **ret)
{
        _cleanup_free_ char *copy = strdup(path);
        struct json_object *cur = root;
        char *part;

        if (!copy)
                return -ENOMEM;
        part = copy;
        for (;;) {
                char *dot = strchr(part, '.');
                struct json_object *next;

                if (dot)
                        *dot = '\0';
                if (part[0] == '\0' || !json_object_is_type(cur, json_type_object) ||
                    !json_object_object_get_ex(cur, part, &next))
                        return -ENOENT;
                cur = next;
                if (!dot)
                        break;
                part = dot + 1;
        }
        *ret = cur;
        return 0;
}

int metric_json_parse(const char *buf, size_t len, const char *monitor, double *ret)
{
        const char *dot = monitor ? strchr(monitor, '.') : NULL;
        struct json_scan j = {.monitor = monitor, .head_len = dot ? (size_t)(dot - monitor) : 0};
        struct json_object *v = NULL;
        int r;

        if (!monitor)
                return -EINVAL;
        r = json_walk(buf, len, json_member, &j);
        if (r > 0)
                r = -ENOENT;
        else if (r == 0) {
                /* A literal key wins over the dotted path: flat metric dicts
                 * often use dotted names ("val.loss") themselves. */
                if (j.has_literal)
                        r = json_number(j.literal, ret);
                else if (j.has_head) {
                        r = lookup_dotted(j.head, dot + 1, &v);
                        if (r == 0)
                                r = json_number(v, ret);
                } else
                        r = -ENOENT;
        }
        json_object_put(j.literal);
        json_object_put(j.head);
        return r;
}

/* The cache: one slot per (dev, ino) hash, so its size is fixed whatever
 * the tree holds. An entry is valid while the file's size, mtime and ctime
 * are unchanged: any write or rename changes ctime, which its owner cannot
 * set back. Errors that come from the content (-EINVAL, -E2BIG) are cached
 * too, so a hostile file costs one parse per change. ckptd scans on one
 * thread; the cache has no lock. */
#define CACHE_SLOTS 4096

enum cache_kind {
        CACHE_HF,
        CACHE_JSON,
};

struct cache_entry {
        bool used;
        enum cache_kind kind;
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime, ctime;
        int parse_r; /* < 0: the content is unusable */
        char *best;  /* HF */
        char *monitor;
        double step;
        int r;
        double value;
};

static struct cache_entry cache[CACHE_SLOTS];

static bool ts_eq(const struct timespec *a, const struct timespec *b)
{
        return a->tv_sec == b->tv_sec && a->tv_nsec == b->tv_nsec;
}

static bool ts_lt(const struct timespec *a, const struct timespec *b)
{
        return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static bool same_version(const struct stat *a, const struct stat *b)
{
        return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
               ts_eq(&a->st_mtim, &b->st_mtim) && ts_eq(&a->st_ctim, &b->st_ctim);
}

static struct cache_entry *cache_slot(const struct stat *st)
{
        uint64_t h = ((uint64_t)st->st_dev * 0x9e3779b97f4a7c15ULL) ^ (uint64_t)st->st_ino;

        h ^= h >> 29;
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 32;
        return &cache[h % CACHE_SLOTS];
}

static bool same_step(double a, double b)
{
        return (isnan(a) && isnan(b)) || a == b;
}

/* The entry for this version of the file, or NULL. */
static struct cache_entry *cache_lookup(enum cache_kind kind, const struct stat *st)
{
        struct cache_entry *e = cache_slot(st);

        if (!e->used || e->kind != kind || e->dev != st->st_dev || e->ino != st->st_ino || e->size != st->st_size ||
            !ts_eq(&e->mtime, &st->st_mtim) || !ts_eq(&e->ctime, &st->st_ctim))
                return NULL;
        return e;
}

static void cache_entry_clear(struct cache_entry *e)
{
        free(e->best);
        free(e->monitor);
        *e = (struct cache_entry){};
}

void metric_cache_flush(void)
{
        for (size_t i = 0; i < CACHE_SLOTS; i++)
                cache_entry_clear(&cache[i]);
}

/* Remember what was read from this version of the file. Only when the file
 * did not change while it was read, and its ctime is older than the coarse
 * clock read before the first fstat: a write within the same clock tick
 * could otherwise leave the stamps unchanged. Takes over best. */
static void cache_store(enum cache_kind kind, const struct stat *st, const struct stat *st_after,
                        const struct timespec *before, int parse_r, char *best, const char *monitor, double step, int r,
                        double value)
{
        struct cache_entry *e;
        char *m = NULL;

        if (!same_version(st, st_after) || !ts_lt(&st->st_ctim, before) || r == -ENOMEM || parse_r == -ENOMEM ||
            (monitor && !(m = strdup(monitor)))) {
                free(best);
                return;
        }
        e = cache_slot(st);
        cache_entry_clear(e);
        *e = (struct cache_entry){
                .used = true,
                .kind = kind,
                .dev = st->st_dev,
                .ino = st->st_ino,
                .size = st->st_size,
                .mtime = st->st_mtim,
                .ctime = st->st_ctim,
                .parse_r = parse_r,
                .best = best,
                .monitor = m,
                .step = step,
                .r = r,
                .value = value,
        };
}

/* Read and parse relpath below dir_fd unless the cache answers. For HF,
 * monitor may be NULL (best only); *ret_best is set when ret_best. */
static int metric_query(enum cache_kind kind, int dir_fd, const char *relpath, const char *monitor, double step,
                        double *ret, char **ret_best)
{
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        struct stat st, st_after;
        struct timespec before;
        struct cache_entry *e;
        char *best = NULL;
        double value = NAN;
        size_t len = 0;
        int r, parse_r;

        clock_gettime(CLOCK_REALTIME_COARSE, &before);
        fd = open_file_at(dir_fd, relpath, &st);
        if (fd < 0)
                return fd;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((uint64_t)st.st_size > JSON_FILE_MAX)
                return -EFBIG;

        e = cache_lookup(kind, &st);
        if (e && e->parse_r < 0)
                return e->parse_r;
        if (e && (!monitor || (streq_ptr(e->monitor, monitor) && same_step(e->step, step)))) {
                if (ret_best) {
                        *ret_best = NULL;
                        if (e->best && !(*ret_best = strdup(e->best)))
                                return -ENOMEM;
                }
                if (!monitor)
                        return 0;
                if (e->r == 0)
                        *ret = e->value;
                return e->r;
        }

        r = read_fd_all(fd, &st, JSON_FILE_MAX, &buf, &len);
        if (r < 0)
                return r;
        parse_count++;
        if (kind == CACHE_HF)
                parse_r = r = metric_hf_parse(buf, len, monitor, step, &value, &best);
        else
                parse_r = r = metric_json_parse(buf, len, monitor, &value);
        /* -ENOENT and the like are answers; only these mean "unusable". */
        if (parse_r != -EINVAL && parse_r != -E2BIG && parse_r != -ENOMEM)
                parse_r = 0;
        if (r == 0 && ret)
                *ret = value;
        if (ret_best && r >= 0 && best && !(*ret_best = strdup(best))) {
                free(best);
                return -ENOMEM;
        }
        if (ret_best && !best)
                *ret_best = NULL;
        if (fstat(fd, &st_after) < 0)
                st_after = (struct stat){};
        cache_store(kind, &st, &st_after, &before, parse_r, best, monitor, step, r, value);
        return r;
}

int metric_hf_state(int ckpt_fd, const char *monitor, double step, double *ret)
{
        if (!monitor || !ret)
                return -EINVAL;
        return metric_query(CACHE_HF, ckpt_fd, HF_STATE_FILE, monitor, step, ret, NULL);
}

int metric_hf_best(int ckpt_fd, char **ret)
{
        char *best = NULL;
        int r;

        if (!ret)
                return -EINVAL;
        r = metric_query(CACHE_HF, ckpt_fd, HF_STATE_FILE, NULL, NAN, NULL, &best);
        if (r < 0)
                return r;
        *ret = best;
        return 0;
}

int metric_json_file(int ckpt_fd, const char *relpath, const char *monitor, double *ret)
{
        if (!relpath || !*relpath || !monitor || !ret)
                return -EINVAL;
        return metric_query(CACHE_JSON, ckpt_fd, relpath, monitor, NAN, ret, NULL);
}
