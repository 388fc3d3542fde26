/* Metrics from training logs, for checkpoints whose names carry no monitor
 * value: Lightning's CSVLogger metrics.csv and TensorBoard event files.
 *
 * An event file is a sequence of TFRecords (uint64le length, masked CRC-32C
 * of the length, data, masked CRC-32C of the data; tensorboard's
 * record_writer.py) whose data is an Event proto (tensorboard/compat/proto/
 * event.proto, summary.proto, tensor.proto). No protobuf library is linked:
 * the few fields read here (Event.step, Event.summary, Summary.value,
 * Value.tag/simple_value/tensor, TensorProto.dtype/tensor_shape/
 * tensor_content/float_val/double_val) take ~100 lines of wire-format
 * reading, and everything else is skipped by its wire type.
 *
 * A trainer may be writing the log while it is read: a truncated record or
 * one whose CRC does not match ends the reading there, and a CSV line
 * without its newline is not read, so a value is never taken from bytes
 * that are not yet (or no longer) what was logged. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"
#include "macro.h"
#include "metriclog.h"

#define EPOCH_TAG "epoch"

static int points_push(struct metriclog_point **v, size_t *n, size_t *cap, struct metriclog_point p)
{
        if (*n == *cap) {
                size_t ncap = *cap ? *cap * 2 : 64;
                struct metriclog_point *nv = reallocarray(*v, ncap, sizeof(*nv));
                if (!nv)
                        return -ENOMEM;
                *v = nv;
                *cap = ncap;
        }
        (*v)[(*n)++] = p;
        return 0;
}

void metriclog_finish(struct metriclog *m)
{
        free(m->v);
        *m = (struct metriclog){};
}

/* The extent of what was logged, for metriclog_ahead() and covers(). */
static void points_extent(struct metriclog *m)
{
        m->max_epoch = m->max_step = -INFINITY;
        m->min_epoch = m->min_step = INFINITY;
        for (size_t i = 0; i < m->n; i++) {
                m->max_epoch = fmax(m->max_epoch, m->v[i].epoch);
                m->max_step = fmax(m->max_step, m->v[i].step);
                m->min_epoch = fmin(m->min_epoch, m->v[i].epoch);
                m->min_step = fmin(m->min_step, m->v[i].step);
        }
}

/* ---- CSV ---- */

/* The next cell of line [*pos, end) into cell (unquoted, NUL-terminated,
 * malloc'd): csv.DictWriter quotes a cell holding a comma or a quote and
 * doubles the quotes inside. -EINVAL for a broken quote. */
static int csv_cell(const char *s, size_t end, size_t *pos, char **ret)
{
        size_t i = *pos, k = 0;
        char *out = malloc(end - i + 1);

        if (!out)
                return -ENOMEM;
        if (i < end && s[i] == '"') {
                for (i++;; i++) {
                        if (i >= end) {
                                free(out);
                                return -EINVAL;
                        }
                        if (s[i] == '"') {
                                if (i + 1 < end && s[i + 1] == '"') {
                                        out[k++] = '"';
                                        i++;
                                        continue;
                                }
                                i++;
                                break;
                        }
                        out[k++] = s[i];
                }
                if (i < end && s[i] != ',') {
                        free(out);
                        return -EINVAL;
                }
        } else
                for (; i < end && s[i] != ','; i++)
                        out[k++] = s[i];
        out[k] = '\0';
        *pos = i + 1; /* past the comma, or past the end */
        *ret = out;
        return 0;
}

/* A whole cell as a number: 0, -ENOENT when empty, -EINVAL otherwise.
 * strtod takes Python's "nan", "inf" and "-inf". */
static int cell_number(const char *c, double *ret)
{
        char *e;

        if (!*c)
                return -ENOENT;
        errno = 0;
        *ret = strtod(c, &e);
        if (*e || e == c || (errno == ERANGE && !isinf(*ret) && *ret != 0))
                return -EINVAL;
        return 0;
}

/* Split [start, end) into cells; -EINVAL for a broken quote or a count
 * other than n_want (0: any). */
static int csv_split(const char *s, size_t start, size_t end, size_t n_want, char ***ret, size_t *ret_n)
{
        char **cells = NULL;
        size_t n = 0, pos = start;
        int r = 0;

        while (pos <= end) {
                char **nc = reallocarray(cells, n + 1, sizeof(*nc));
                if (!nc) {
                        r = -ENOMEM;
                        break;
                }
                cells = nc;
                r = csv_cell(s, end, &pos, &cells[n]);
                if (r < 0)
                        break;
                n++;
                if (n_want && n > n_want) {
                        r = -EINVAL;
                        break;
                }
        }
        if (r == 0 && n_want && n != n_want)
                r = -EINVAL;
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        free(cells[i]);
                free(cells);
                return r;
        }
        *ret = cells;
        *ret_n = n;
        return 0;
}

static void cells_free(char **cells, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(cells[i]);
        free(cells);
}

static int parse_csv(const char *buf, size_t len, const char *monitor, struct metriclog *m)
{
        ssize_t col_epoch = -1, col_step = -1, col_mon = -1;
        size_t n_cols = 0, pos = 0;
        bool header = true;
        int r = 0;

        m->first_epoch = m->first_step = INFINITY;
        while (pos < len) {
                const char *nl = memchr(buf + pos, '\n', len - pos);
                size_t end, next;
                char **cells = NULL;
                size_t n = 0;

                if (!nl) {
                        /* the trainer is still writing this line */
                        m->damaged = true;
                        break;
                }
                end = (size_t)(nl - buf);
                next = end + 1;
                if (end > pos && buf[end - 1] == '\r')
                        end--;
                if (memchr(buf + pos, '\0', end - pos)) {
                        m->damaged = m->corrupt = true;
                        break;
                }
                if (end == pos && !header) {
                        pos = next;
                        continue;
                }
                r = csv_split(buf, pos, end, header ? 0 : n_cols, &cells, &n);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        m->damaged = m->corrupt = true;
                        return 0;
                }
                if (header) {
                        for (size_t i = 0; i < n; i++) {
                                if (streq_ptr(cells[i], EPOCH_TAG) && col_epoch < 0)
                                        col_epoch = (ssize_t)i;
                                else if (streq_ptr(cells[i], "step") && col_step < 0)
                                        col_step = (ssize_t)i;
                                else if (streq_ptr(cells[i], monitor) && col_mon < 0)
                                        col_mon = (ssize_t)i;
                        }
                        n_cols = n;
                        header = false;
                        m->has_epoch = col_epoch >= 0;
                        cells_free(cells, n);
                        if (col_mon < 0)
                                return 0; /* a log without the monitor */
                        pos = next;
                        continue;
                }
                struct metriclog_point p = {.epoch = NAN, .step = NAN};
                double x;
                /* any row, the monitor's or another metric's */
                if (col_epoch >= 0 && cell_number(cells[col_epoch], &x) == 0 && x < m->first_epoch)
                        m->first_epoch = x;
                if (col_step >= 0 && cell_number(cells[col_step], &x) == 0 && x < m->first_step)
                        m->first_step = x;
                int q = cell_number(cells[col_mon], &p.value);
                if (q == 0 && col_epoch >= 0 && cell_number(cells[col_epoch], &p.epoch) == -EINVAL)
                        q = -EINVAL;
                if (q == 0 && col_step >= 0 && cell_number(cells[col_step], &p.step) == -EINVAL)
                        q = -EINVAL;
                cells_free(cells, n);
                if (q == -EINVAL) {
                        m->damaged = m->corrupt = true;
                        return 0;
                }
                if (q == 0) {
                        r = points_push(&m->v, &m->n, &m->cap, p);
                        if (r < 0)
                                return r;
                }
                pos = next;
        }
        return 0;
}

int metriclog_parse_csv(const char *buf, size_t len, const char *monitor, struct metriclog *m)
{
        int r = parse_csv(buf, len, monitor, m);

        points_extent(m);
        return r;
}

/* ---- TFRecord + protobuf ---- */

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), one table. */
static uint32_t crc32c(const uint8_t *p, size_t len)
{
        static uint32_t table[256];
        static bool ready;
        uint32_t crc = 0xFFFFFFFFu;

        if (!ready) {
                for (uint32_t i = 0; i < 256; i++) {
                        uint32_t c = i;
                        for (int k = 0; k < 8; k++)
                                c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
                        table[i] = c;
                }
                ready = true;
        }
        for (size_t i = 0; i < len; i++)
                crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
        return crc ^ 0xFFFFFFFFu;
}

uint32_t metriclog_masked_crc32c(const void *buf, size_t len)
{
        uint32_t crc = crc32c(buf, len);

        /* TFRecord's mask: rotate right by 15, add a constant (crc32c.h) */
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

static uint64_t le64(const uint8_t *p)
{
        uint64_t v = 0;

        for (int i = 7; i >= 0; i--)
                v = (v << 8) | p[i];
        return v;
}

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A protobuf message being read: [p, end). */
struct pb {
        const uint8_t *p, *end;
};

static int pb_varint(struct pb *b, uint64_t *ret)
{
        uint64_t v = 0;

        for (int shift = 0; shift < 64; shift += 7) {
                if (b->p >= b->end)
                        return -EINVAL;
                uint8_t c = *b->p++;
                v |= (uint64_t)(c & 0x7F) << shift;
                if (!(c & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -EINVAL;
}

/* The next field: its number, wire type, and for wire types 1, 2, 5 its
 * bytes in *ret_val (a varint's value in *ret_int). 0, 1 at the end,
 * -EINVAL. Groups (3, 4) are deprecated and never in these protos. */
static int pb_next(struct pb *b, uint32_t *ret_field, unsigned *ret_wire, uint64_t *ret_int, struct pb *ret_val)
{
        uint64_t key, len;

        if (b->p >= b->end)
                return 1;
        if (pb_varint(b, &key) < 0 || (key >> 3) == 0 || (key >> 3) > UINT32_MAX)
                return -EINVAL;
        *ret_field = (uint32_t)(key >> 3);
        *ret_wire = key & 7;
        switch (*ret_wire) {
        case 0: return pb_varint(b, ret_int);
        case 1: len = 8; break;
        case 5: len = 4; break;
        case 2:
                if (pb_varint(b, &len) < 0)
                        return -EINVAL;
                break;
        default: return -EINVAL;
        }
        if (len > (uint64_t)(b->end - b->p))
                return -EINVAL;
        *ret_val = (struct pb){b->p, b->p + len};
        b->p += len;
        return 0;
}

static double le_float(const uint8_t *p)
{
        uint32_t u = le32(p);
        float f;

        memcpy(&f, &u, sizeof(f));
        return f;
}

static double le_double(const uint8_t *p)
{
        uint64_t u = le64(p);
        double d;

        memcpy(&d, &u, sizeof(d));
        return d;
}

enum { DT_FLOAT = 1, DT_DOUBLE = 2 }; /* tensorboard/compat/proto/types.proto */

/* Whether a TensorShapeProto holds at most one element (scalar, or every
 * dim of size 1). */
static bool shape_is_scalar(struct pb b)
{
        uint32_t f;
        unsigned w;
        uint64_t x;
        struct pb v;
        int r;

        while ((r = pb_next(&b, &f, &w, &x, &v)) == 0) {
                if (f == 3 && w == 0 && x)
                        return false; /* unknown_rank */
                if (f != 2 || w != 2)
                        continue;
                uint64_t size = 1;
                uint32_t df;
                unsigned dw;
                struct pb dv;
                while ((r = pb_next(&v, &df, &dw, &x, &dv)) == 0)
                        if (df == 1 && dw == 0)
                                size = x;
                if (r < 0 || size != 1)
                        return false;
        }
        return r == 1;
}

/* A scalar float/double TensorProto's value: 0, -ENOENT when it is none. */
static int tensor_scalar(struct pb b, double *ret)
{
        uint64_t dtype = 0, x;
        struct pb content = {}, v;
        bool scalar = true;
        size_t n_vals = 0;
        double val = NAN;
        uint32_t f;
        unsigned w;
        int r;

        while ((r = pb_next(&b, &f, &w, &x, &v)) == 0) {
                if (f == 1 && w == 0)
                        dtype = x;
                else if (f == 2 && w == 2)
                        scalar = shape_is_scalar(v);
                else if (f == 4 && w == 2)
                        content = v;
                else if ((f == 5 && w == 5) || (f == 6 && w == 1)) {
                        /* unpacked repeated value: one per field */
                        val = f == 5 ? le_float(v.p) : le_double(v.p);
                        n_vals++;
                } else if ((f == 5 || f == 6) && w == 2) {
                        size_t sz = f == 5 ? 4 : 8;
                        if ((size_t)(v.end - v.p) % sz)
                                return -ENOENT;
                        n_vals += (size_t)(v.end - v.p) / sz;
                        if (v.end > v.p)
                                val = f == 5 ? le_float(v.end - sz) : le_double(v.end - sz);
                }
        }
        if (r < 0 || !scalar)
                return -ENOENT;
        if (dtype == DT_FLOAT && content.end - content.p == 4 && n_vals == 0)
                *ret = le_float(content.p);
        else if (dtype == DT_DOUBLE && content.end - content.p == 8 && n_vals == 0)
                *ret = le_double(content.p);
        else if ((dtype == DT_FLOAT || dtype == DT_DOUBLE) && content.p == content.end && n_vals == 1)
                *ret = val;
        else
                return -ENOENT;
        return 0;
}

struct tf_state {
        const char *monitor;
        struct metriclog *m;
        struct metriclog_point *epochs; /* the epoch tag: (epoch = value, step) */
        size_t n_epochs, cap_epochs;
};

/* One Summary.Value: its tag and scalar, if it is the monitor or epoch. */
static int tf_value(struct tf_state *st, struct pb b, double step)
{
        struct pb tag = {}, v;
        bool has_tag = false, has_val = false;
        double val = NAN;
        uint32_t f;
        unsigned w;
        uint64_t x;
        int r;

        while ((r = pb_next(&b, &f, &w, &x, &v)) == 0) {
                if (f == 1 && w == 2) {
                        tag = v;
                        has_tag = true;
                } else if (f == 2 && w == 5) {
                        val = le_float(v.p);
                        has_val = true;
                } else if (f == 8 && w == 2)
                        has_val = tensor_scalar(v, &val) == 0;
        }
        if (r < 0 || !has_tag || !has_val)
                return 0;
        size_t tlen = (size_t)(tag.end - tag.p);
        struct metriclog_point p = {.epoch = NAN, .step = step, .value = val};
        if (tlen == strlen(st->monitor) && memcmp(tag.p, st->monitor, tlen) == 0)
                return points_push(&st->m->v, &st->m->n, &st->m->cap, p);
        if (tlen == strlen(EPOCH_TAG) && memcmp(tag.p, EPOCH_TAG, tlen) == 0) {
                p.epoch = val;
                return points_push(&st->epochs, &st->n_epochs, &st->cap_epochs, p);
        }
        return 0;
}

/* One Event: its step, and the scalars of its summary. A record that does
 * not parse is skipped (its CRC held: it is no value of ours). */
static int tf_event(struct tf_state *st, struct pb b)
{
        struct pb summary = {}, v;
        uint64_t step = 0, x;
        bool has_summary = false;
        uint32_t f;
        unsigned w;
        int r;

        while ((r = pb_next(&b, &f, &w, &x, &v)) == 0) {
                if (f == 2 && w == 0)
                        step = x;
                else if (f == 5 && w == 2) {
                        summary = v;
                        has_summary = true;
                }
        }
        if (r < 0 || !has_summary)
                return 0;
        /* check the whole summary first: a malformed one gives nothing */
        struct pb s = summary;
        while ((r = pb_next(&s, &f, &w, &x, &v)) == 0)
                ;
        if (r < 0)
                return 0;
        while ((r = pb_next(&summary, &f, &w, &x, &v)) == 0)
                if (f == 1 && w == 2) {
                        int q = tf_value(st, v, (double)(int64_t)step);
                        if (q < 0)
                                return q;
                }
        return 0;
}

static int epoch_cmp(const void *a, const void *b)
{
        const struct metriclog_point *x = a, *y = b;

        if (x->step != y->step)
                return x->step < y->step ? -1 : 1;
        /* the later in the file wins: value holds the file index */
        return (x->value > y->value) - (x->value < y->value);
}

int metriclog_parse_tfevents(const void *buf, size_t len, const char *monitor, struct metriclog *m)
{
        const uint8_t *p = buf;
        struct tf_state st = {.monitor = monitor, .m = m};
        size_t pos = 0;
        int r = 0;

        m->first_epoch = m->first_step = -INFINITY;

        while (pos < len) {
                uint64_t dlen;

                if (len - pos < 12) {
                        m->damaged = true;
                        break;
                }
                if (metriclog_masked_crc32c(p + pos, 8) != le32(p + pos + 8)) {
                        m->damaged = m->corrupt = true;
                        break;
                }
                dlen = le64(p + pos);
                if (dlen > len - pos - 12 || len - pos - 12 - dlen < 4) {
                        m->damaged = true;
                        break;
                }
                const uint8_t *data = p + pos + 12;
                if (metriclog_masked_crc32c(data, dlen) != le32(data + dlen)) {
                        m->damaged = m->corrupt = true;
                        break;
                }
                r = tf_event(&st, (struct pb){data, data + dlen});
                if (r < 0)
                        goto out;
                pos += 12 + dlen + 4;
        }

        /* Each value's epoch: the epoch tag logged at the same step (the
         * last one in the file), found by binary search. */
        m->has_epoch = st.n_epochs > 0;
        if (st.n_epochs > 0) {
                struct metriclog_point *e = st.epochs;
                for (size_t i = 0; i < st.n_epochs; i++) {
                        double tmp = e[i].epoch;
                        e[i].value = (double)i; /* file order for the sort */
                        e[i].epoch = tmp;
                }
                qsort(e, st.n_epochs, sizeof(*e), epoch_cmp);
                for (size_t i = 0; i < m->n; i++) {
                        size_t lo = 0, hi = st.n_epochs;
                        while (lo < hi) { /* first index with step > m->v[i].step */
                                size_t mid = lo + (hi - lo) / 2;
                                if (e[mid].step <= m->v[i].step)
                                        lo = mid + 1;
                                else
                                        hi = mid;
                        }
                        if (lo > 0 && e[lo - 1].step == m->v[i].step)
                                m->v[i].epoch = e[lo - 1].epoch;
                }
        }
out:
        free(st.epochs);
        points_extent(m);
        return r;
}

/* ---- lookup ---- */

int metriclog_lookup(const struct metriclog *m, double epoch, double step, double *ret)
{
        const struct metriclog_point *best = NULL;

        if (m->has_epoch && !isnan(epoch)) {
                if (metriclog_ahead(m, epoch, step))
                        return -ENOENT;
                for (size_t i = 0; i < m->n; i++) {
                        const struct metriclog_point *p = &m->v[i];
                        if (p->epoch != epoch || (!isnan(step) && !(p->step <= step)))
                                continue;
                        if (!best || !(p->step < best->step))
                                best = p;
                }
        } else if (!isnan(step)) {
                /* Lightning logs validation at the step before the save */
                for (size_t i = 0; i < m->n; i++) {
                        const struct metriclog_point *p = &m->v[i];
                        if (p->step != step && p->step != step - 1)
                                continue;
                        if (!best || !(p->step < best->step))
                                best = p;
                }
        }
        if (!best)
                return -ENOENT;
        *ret = best->value;
        return 0;
}

bool metriclog_ahead(const struct metriclog *m, double epoch, double step)
{
        if (m->n == 0)
                return true;
        /* in the last epoch logged, a checkpoint past its last point may
         * follow a validation of that epoch not written yet (CSVLogger
         * writes every 100 steps; val_check_interval validates more than
         * once an epoch) or cut off in a rewrite */
        if (m->has_epoch && !isnan(epoch))
                return epoch > m->max_epoch || (epoch == m->max_epoch && !isnan(step) && step - 1 > m->max_step);
        return !isnan(step) && step - 1 > m->max_step;
}

/* Whether a checkpoint of this epoch and step lies within m's points:
 * from its first to its last (by step: logged at its step or the one
 * before). */
static bool covers(const struct metriclog *m, double epoch, double step)
{
        if (m->n == 0)
                return false;
        if (m->has_epoch && !isnan(epoch))
                return epoch >= m->min_epoch && epoch <= m->max_epoch;
        return !isnan(step) && step >= m->min_step && step - 1 <= m->max_step;
}

bool metriclog_behind(const struct metriclog *m, double epoch, double step)
{
        if (m->has_epoch && !isnan(epoch))
                return epoch < m->first_epoch;
        /* by step: logged at its step or the one before */
        return !isnan(step) && step < m->first_step;
}

/* ---- files, cache ---- */

/* logs of this many (file, monitor) pairs stay parsed: each holds only the
 * monitor's points, so a few hundred runs cost little */
#define CACHE_MAX 256

struct cache_entry {
        dev_t dev;
        ino_t ino;
        off_t size;
        struct timespec mtime;
        char *monitor;
        struct metriclog *log;
        uint64_t used;
};

static struct cache_entry cache[CACHE_MAX];
static uint64_t cache_tick;

static struct metriclog *metriclog_ref(struct metriclog *m)
{
        m->n_ref++;
        return m;
}

static void metriclog_unref(struct metriclog *m)
{
        if (m && --m->n_ref == 0) {
                metriclog_finish(m);
                free(m);
        }
}

static void cache_entry_drop(struct cache_entry *e)
{
        free(e->monitor);
        metriclog_unref(e->log);
        *e = (struct cache_entry){};
}

void metriclog_cache_clear(void)
{
        for (size_t i = 0; i < CACHE_MAX; i++)
                cache_entry_drop(&cache[i]);
}

static bool is_csv(const char *name)
{
        size_t n = strlen(name);

        return n >= 4 && strcmp(name + n - 4, ".csv") == 0;
}

/* Read and parse one log file (fd, named name) or take it from the cache. */
static int log_file(int fd, const char *name, const char *monitor, struct metriclog **ret)
{
        struct cache_entry *slot = &cache[0];
        _cleanup_free_ char *buf = NULL;
        struct metriclog *m;
        struct stat st;
        size_t len = 0;
        int r;

        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if ((uint64_t)st.st_size > METRICLOG_FILE_MAX)
                return -EFBIG;
        for (size_t i = 0; i < CACHE_MAX; i++) {
                struct cache_entry *e = &cache[i];
                if (e->log && e->dev == st.st_dev && e->ino == st.st_ino && e->size == st.st_size &&
                    e->mtime.tv_sec == st.st_mtim.tv_sec && e->mtime.tv_nsec == st.st_mtim.tv_nsec &&
                    streq_ptr(e->monitor, monitor)) {
                        e->used = ++cache_tick;
                        *ret = metriclog_ref(e->log);
                        return 0;
                }
                if (e->used < slot->used)
                        slot = e;
        }

        /* Only the bytes fstat saw: what is appended meanwhile is read
         * next time, under its own size and mtime. */
        buf = malloc((size_t)st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        while (len < (size_t)st.st_size) {
                ssize_t k = pread(fd, buf + len, (size_t)st.st_size - len, (off_t)len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break; /* shrank meanwhile: parsed as truncated */
                len += (size_t)k;
        }
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        r = is_csv(name) ? metriclog_parse_csv(buf, len, monitor, m) : metriclog_parse_tfevents(buf, len, monitor, m);
        if (r < 0) {
                metriclog_finish(m);
                free(m);
                return r;
        }
        m->n_ref = 1;
        cache_entry_drop(slot);
        slot->monitor = strdup(monitor);
        if (slot->monitor) {
                *slot = (struct cache_entry){.dev = st.st_dev,
                                             .ino = st.st_ino,
                                             .size = st.st_size,
                                             .mtime = st.st_mtim,
                                             .monitor = slot->monitor,
                                             .log = metriclog_ref(m),
                                             .used = ++cache_tick};
        }
        *ret = m;
        return 0;
}

/* Open name below dir_fd for reading only if it is a regular file: an
 * O_PATH open has no side effects (a device's open may, and ckptd runs as
 * root), then the same inode is reopened through /proc/self/fd, so a
 * symlink swapped in between cannot redirect it. O_NONBLOCK: never wait for
 * a lease break. -EINVAL when it is not a regular file. */
static int open_regular(int dir_fd, const char *name)
{
        char proc[64];
        struct stat st;
        int pfd, fd;

        pfd = openat(dir_fd, name, O_PATH | O_CLOEXEC);
        if (pfd < 0)
                return -errno;
        if (fstat(pfd, &st) < 0) {
                fd = -errno;
                goto out;
        }
        if (!S_ISREG(st.st_mode)) {
                fd = -EINVAL;
                goto out;
        }
        snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
        fd = open(proc, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0 && errno == ENOENT) {
                /* no /proc: open by name, and it must be the same inode
                 * (never ENOENT from here: the file was there) */
                struct stat st2;
                fd = openat(dir_fd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
                if (fd >= 0 && (fstat(fd, &st2) < 0 || st2.st_dev != st.st_dev || st2.st_ino != st.st_ino)) {
                        close(fd);
                        fd = -EAGAIN;
                } else if (fd < 0)
                        fd = errno == ENOENT ? -EAGAIN : -errno;
        } else if (fd < 0)
                fd = -errno;
out:
        close(pfd);
        return fd;
}

static bool has_glob(const char *s)
{
        return strpbrk(s, "*?[") != NULL;
}

static int set_push(struct metriclog_set *s, struct metriclog *m)
{
        struct metriclog **n;

        if (s->n >= METRICLOG_FILES_MAX) {
                metriclog_unref(m);
                return -E2BIG;
        }
        n = reallocarray(s->logs, s->n + 1, sizeof(*n));
        if (!n) {
                metriclog_unref(m);
                return -ENOMEM;
        }
        s->logs = n;
        s->logs[s->n++] = m;
        return 0;
}

static bool glob_matches(const char *name, const void *pattern)
{
        return fnmatch(pattern, name, FNM_PERIOD) == 0;
}

/* Resolve path (components separated by '/') below dir_fd. Glob components
 * match the entries of their directory (not dot files unless the pattern
 * starts with a dot) and skip what does not fit (a file where a directory
 * is needed, a non-regular file at the end); a literal component that is
 * absent (ENOENT) matches nothing; any other error is returned. */
static int resolve(struct metriclog_set *s, int dir_fd, const char *path, const char *monitor, unsigned depth)
{
        const char *slash = strchr(path, '/');
        _cleanup_free_ char *comp = slash ? strndup(path, (size_t)(slash - path)) : strdup(path);
        const char *rest = slash ? slash + 1 : NULL;
        struct strv names = {};
        DIR *d = NULL;
        int r = 0;

        if (!comp)
                return -ENOMEM;
        if (depth > 64)
                return -ELOOP;
        while (rest && *rest == '/')
                rest++;
        if (rest && !*rest)
                rest = NULL;
        if (!*comp)
                return rest ? resolve(s, dir_fd, rest, monitor, depth + 1) : -EINVAL;

        if (!has_glob(comp)) {
                int fd = rest ? openat(dir_fd, comp, O_PATH | O_DIRECTORY | O_CLOEXEC) : open_regular(dir_fd, comp);
                if (rest && fd < 0)
                        fd = -errno;
                if (fd < 0)
                        return fd == -ENOENT ? 0 : fd;
                if (rest)
                        r = resolve(s, fd, rest, monitor, depth + 1);
                else {
                        struct metriclog *m = NULL;
                        r = log_file(fd, comp, monitor, &m);
                        if (r == 0)
                                r = set_push(s, m);
                }
                close(fd);
                return r;
        }

        d = dir_open_at(dir_fd, ".");
        if (!d)
                return -errno;
        r = dir_names(d, glob_matches, comp, METRICLOG_FILES_MAX * 4, &names);
        for (size_t i = 0; r == 0 && i < names.n; i++) {
                struct stat st;
                int fd;

                if (fstatat(dirfd(d), names.v[i], &st, 0) < 0) {
                        if (errno != ENOENT)
                                r = -errno;
                        continue;
                }
                if (rest ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
                        continue;
                fd = rest ? openat(dirfd(d), names.v[i], O_PATH | O_DIRECTORY | O_CLOEXEC)
                          : open_regular(dirfd(d), names.v[i]);
                if (rest && fd < 0)
                        fd = -errno;
                if (fd < 0) {
                        /* gone, or replaced by what it may not be */
                        if (fd != -ENOENT && fd != -EINVAL && fd != -ENOTDIR)
                                r = fd;
                        continue;
                }
                if (rest)
                        r = resolve(s, fd, rest, monitor, depth + 1);
                else {
                        struct metriclog *m = NULL;
                        r = log_file(fd, names.v[i], monitor, &m);
                        if (r == 0)
                                r = set_push(s, m);
                }
                close(fd);
        }
        strv_finish(&names);
        closedir(d);
        return r;
}

int metriclog_set_load(struct metriclog_set *s, int run_fd, const struct strv *globs, const char *monitor)
{
        int r = 0;

        s->loaded = true;
        for (size_t i = 0; globs && i < globs->n && r == 0; i++) {
                if (globs->v[i][0] == '/')
                        r = -EINVAL; /* relative to the run only (validated) */
                else
                        r = resolve(s, run_fd, globs->v[i], monitor, 0);
        }
        if (r < 0)
                s->error = r;
        return r;
}

/* Two logs' values of one point agree as float32 (TensorBoard's scalars)
 * holds them: a trainer logging float64 writes the double to metrics.csv
 * and its float32 rounding to the events file. */
static bool same_value(double a, double b)
{
        return a == b || (isnan(a) && isnan(b)) || (float)a == (float)b;
}

int metriclog_set_lookup(const struct metriclog_set *s, double epoch, double step, double *ret)
{
        bool found = false, ahead = s->n > 0;
        double v = NAN;

        if (s->error)
                return s->error;
        for (size_t i = 0; i < s->n; i++) {
                double x;
                if (!metriclog_ahead(s->logs[i], epoch, step))
                        ahead = false;
                if (metriclog_lookup(s->logs[i], epoch, step, &x) < 0)
                        continue;
                /* two logs of the same run that disagree: neither is
                 * believed, and the checkpoint is kept (fail closed) */
                if (found && !same_value(v, x))
                        return -EINVAL;
                v = x;
                found = true;
        }
        if (!found && ahead) {
                /* past the end of every log: not logged yet, unless a log
                 * is damaged before its end, where it is never read */
                for (size_t i = 0; i < s->n; i++)
                        if (s->logs[i]->corrupt)
                                return -EBADMSG;
                return -EAGAIN;
        }
        /* past the readable end of a damaged log, and outside what every
         * other log holds: its value may be in the damaged part (a process
         * killed mid-record, then a resumed one logging from a later
         * step), so it is unknown. Within another log's points it is a
         * gap there (a save between two validations), as ever. */
        if (!found) {
                bool damaged_before = false, covered = false;

                for (size_t i = 0; i < s->n; i++) {
                        damaged_before |= s->logs[i]->damaged && metriclog_ahead(s->logs[i], epoch, step);
                        covered |= covers(s->logs[i], epoch, step);
                }
                if (damaged_before && !covered)
                        return -EBADMSG;
        }
        if (!found) {
                /* before where some log begins: its rows were lost, so
                 * its value is unknown, not absent */
                for (size_t i = 0; i < s->n; i++)
                        if (metriclog_behind(s->logs[i], epoch, step))
                                return -ENODATA;
                return -ENOENT;
        }
        *ret = v;
        return 0;
}

int metriclog_set_zero(const struct metriclog_set *s, double epoch, double step, double tol, double *ret)
{
        bool found = false, before = false, ahead = s->n > 0, other = false, counted_apart = false, by_epoch = false;
        double v = NAN;

        if (s->error)
                return s->error;
        if (s->n == 0) {
                *ret = 0; /* no log: nothing tells it from a real 0 */
                return 1;
        }
        if (isnan(step) && isnan(epoch))
                return -EINVAL; /* nothing to place it by */
        for (size_t i = 0; i < s->n; i++) {
                const struct metriclog *m = s->logs[i];
                bool here = false, agrees = false;

                if (!metriclog_ahead(m, epoch, step))
                        ahead = false;
                for (size_t k = 0; k < m->n; k++) {
                        const struct metriclog_point *p = &m->v[k];
                        /* by step where the name has one, in its epoch:
                         * a step counted another way (one per optimizer)
                         * lands in another epoch's rows */
                        bool at = !isnan(step) ? (p->step == step || p->step == step - 1) &&
                                                         (isnan(epoch) || isnan(p->epoch) || p->epoch == epoch)
                                               : p->epoch == epoch;

                        before = before || (!isnan(step) ? p->step <= step : p->epoch <= epoch);
                        by_epoch = by_epoch || !isnan(p->epoch);
                        /* an earlier epoch logged past its step, or a later
                         * one before it: the log counts steps another way
                         * (manual optimization stepping every few batches),
                         * so neither a row at its step nor none up to it
                         * says anything of it */
                        if (!isnan(step) && !isnan(epoch) && !isnan(p->epoch) &&
                            ((p->epoch < epoch && p->step > step) || (p->epoch > epoch && p->step < step - 1)))
                                counted_apart = true;
                        if (!at)
                                continue;
                        here = true;
                        /* the name's 0 is this value rounded, or it is
                         * another step's (a metric logged every step) */
                        if (!(fabs(p->value) <= tol))
                                continue;
                        agrees = true;
                        other = other || (found && !same_value(v, p->value));
                        v = p->value;
                        found = true;
                }
                /* a log whose value there is not the name's 0 disagrees */
                other = other || (here && !agrees);
        }
        if (other || counted_apart)
                return -EINVAL;
        if (found) {
                *ret = v;
                return 1;
        }
        if (ahead)
                return -EAGAIN;
        /* logged before; or an epoch but no step in the name, and no
         * epoch in the logs: nothing places it */
        if (before || (isnan(step) && !by_epoch))
                return -EINVAL;
        /* before where a log begins: its rows were lost, and with them
         * whether the monitor was logged by then */
        for (size_t i = 0; i < s->n; i++)
                if (metriclog_behind(s->logs[i], epoch, step))
                        return -ENODATA;
        return 0;
}

void metriclog_set_finish(struct metriclog_set *s)
{
        for (size_t i = 0; i < s->n; i++)
                metriclog_unref(s->logs[i]);
        free(s->logs);
        *s = (struct metriclog_set){};
}
