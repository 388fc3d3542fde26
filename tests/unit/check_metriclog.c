/* Metrics from training logs: the real files Lightning 2.2.5 wrote
 * (../shared/fixtures, values from each EXPECTED.json), event files built
 * here for the tensor encodings, and metric_log through scan_run(). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"
#include "metricfile.h"
#include "metriclog.h"
#include "tree.h"

Suite *metriclog_suite(void);

/* The shared fixtures: $CKPTD_FIXTURES, else ../shared/fixtures of the
 * source tree (tests run from its top). */
static void fixture_path(const char *rel, char *buf, size_t size)
{
        const char *dirs[] = {getenv("CKPTD_FIXTURES"), "../shared/fixtures", "/work/shared/fixtures"};

        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                if (!dirs[i])
                        continue;
                ck_assert_int_lt(snprintf(buf, size, "%s/%s", dirs[i], rel), (int)size);
                if (access(buf, R_OK) == 0)
                        return;
        }
        ck_abort_msg("fixture %s not found (set CKPTD_FIXTURES)", rel);
}

static void load(const char *rel, char **ret, size_t *ret_len)
{
        char path[PATH_MAX], *slash;
        int fd;

        fixture_path(rel, path, sizeof(path));
        slash = strrchr(path, '/');
        *slash = '\0';
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(read_file_at(fd, slash + 1, METRICLOG_FILE_MAX, ret, ret_len), 0);
        close(fd);
}

static struct json_object *expected(const char *fixture)
{
        char rel[256], path[PATH_MAX];
        struct json_object *o;

        snprintf(rel, sizeof(rel), "%s/EXPECTED.json", fixture);
        fixture_path(rel, path, sizeof(path));
        o = json_object_from_file(path);
        ck_assert_ptr_nonnull(o);
        return o;
}

static struct json_object *get(struct json_object *o, const char *key)
{
        struct json_object *v;

        ck_assert_msg(json_object_object_get_ex(o, key, &v), "no %s in EXPECTED.json", key);
        return v;
}

static double num(struct json_object *o, const char *key)
{
        return json_object_get_double(get(o, key));
}

/* m's points are exactly the (step, val_loss) list, in order. */
static void assert_series(const struct metriclog *m, struct json_object *list)
{
        size_t n = json_object_array_length(list);

        ck_assert_uint_eq(m->n, n);
        for (size_t i = 0; i < n; i++) {
                struct json_object *e = json_object_array_get_idx(list, i);
                ck_assert_double_eq(m->v[i].step, num(e, "step"));
                ck_assert_double_eq(m->v[i].value, num(e, "val_loss"));
        }
}

#define CSV_47    "lightning-default-47/lightning_logs/version_0/metrics.csv"
#define EVENTS_47 "lightning-default-47/lightning_logs/version_1/events.out.tfevents.1796171316.vm"

/* Every checkpoint of the 47 maps to its val_loss, from either log, by
 * (epoch, step) of its name; the log's step is the name's step - 1. */
static void assert_checkpoints(const struct metriclog *m, const char *key)
{
        struct json_object *exp = expected("lightning-default-47"), *ck = get(exp, "checkpoints");
        size_t n = json_object_array_length(ck);

        ck_assert_uint_eq(n, 47);
        for (size_t i = 0; i < n; i++) {
                struct json_object *c = json_object_array_get_idx(ck, i);
                double epoch = num(c, "epoch_from_name"), step = num(c, "step_from_name"), v = NAN;

                ck_assert_int_eq(metriclog_lookup(m, epoch, step, &v), 0);
                ck_assert_msg(v == num(c, key), "%s: %.17g != %.17g", json_object_get_string(get(c, "name")), v,
                              num(c, key));
                /* by step alone (a name without epoch) */
                v = NAN;
                ck_assert_int_eq(metriclog_lookup(m, NAN, step, &v), 0);
                ck_assert(v == num(c, key));
                /* a step before the epoch's validation: not this value */
                ck_assert_int_eq(metriclog_lookup(m, epoch, step - 2, &v), -ENOENT);
        }
        ck_assert_int_eq(metriclog_lookup(m, 47, 144, &(double){0}), -ENOENT);
        json_object_put(exp);
}

START_TEST(test_csv_47)
{
        struct json_object *exp = expected("lightning-default-47");
        struct metriclog m = {};
        _cleanup_free_ char *buf = NULL;
        size_t len;

        load(CSV_47, &buf, &len);
        ck_assert_int_eq(metriclog_parse_csv(buf, len, "val_loss", &m), 0);
        ck_assert(m.has_epoch);
        ck_assert(!m.damaged);
        assert_series(&m, get(exp, "val_loss_series_csv"));
        assert_checkpoints(&m, "val_loss_csv");
        metriclog_finish(&m);

        /* a column with a slash in its name, and a missing column */
        ck_assert_int_eq(metriclog_parse_csv(buf, len, "val/acc", &m), 0);
        ck_assert_uint_eq(m.n, 47);
        ck_assert_double_eq(m.v[0].value, 0.4730595350265503);
        metriclog_finish(&m);
        ck_assert_int_eq(metriclog_parse_csv(buf, len, "val_los", &m), 0);
        ck_assert_uint_eq(m.n, 0);
        metriclog_finish(&m);
        json_object_put(exp);
}
END_TEST

START_TEST(test_tfevents_47)
{
        struct json_object *exp = expected("lightning-default-47");
        struct metriclog m = {};
        _cleanup_free_ char *buf = NULL;
        size_t len;

        load(EVENTS_47, &buf, &len);
        ck_assert_int_eq(metriclog_parse_tfevents(buf, len, "val_loss", &m), 0);
        ck_assert(m.has_epoch);
        ck_assert(!m.damaged);
        assert_series(&m, get(exp, "val_loss_series_tfevents"));
        assert_checkpoints(&m, "val_loss_tfevents");
        metriclog_finish(&m);
        ck_assert_int_eq(metriclog_parse_tfevents(buf, len, "train_loss", &m), 0);
        ck_assert_uint_eq(m.n, 141);
        metriclog_finish(&m);
        json_object_put(exp);
}
END_TEST

START_TEST(test_tfevents_damaged)
{
        struct json_object *exp = expected("tfevents-truncated");
        struct metriclog m = {};
        char *buf = NULL;
        size_t len;

        load("tfevents-truncated/intact/events.out.tfevents.1796171316.vm", &buf, &len);
        ck_assert_int_eq(metriclog_parse_tfevents(buf, len, "val_loss", &m), 0);
        ck_assert(!m.damaged && !m.corrupt);
        assert_series(&m, get(get(exp, "intact"), "val_loss"));
        metriclog_finish(&m);
        free(buf);

        load("tfevents-truncated/truncated/events.out.tfevents.1796171316.vm", &buf, &len);
        ck_assert_uint_eq(len, 10002);
        ck_assert_int_eq(metriclog_parse_tfevents(buf, len, "val_loss", &m), 0);
        /* as a file still being written is: damaged, not corrupt */
        ck_assert(m.damaged && !m.corrupt);
        assert_series(&m, get(get(exp, "truncated"), "val_loss_readable"));
        /* epoch 23 (step 72) is in the cut record: no value, not a wrong
         * one, and past the end of what was read */
        ck_assert_int_eq(metriclog_lookup(&m, 23, 72, &(double){0}), -ENOENT);
        ck_assert(metriclog_ahead(&m, 23, 72));
        ck_assert(!metriclog_ahead(&m, 22, 69));
        metriclog_finish(&m);
        free(buf);

        load("tfevents-truncated/crc-mismatch/events.out.tfevents.1796171316.vm", &buf, &len);
        ck_assert_int_eq(metriclog_parse_tfevents(buf, len, "val_loss", &m), 0);
        ck_assert(m.damaged && m.corrupt);
        assert_series(&m, get(get(exp, "crc-mismatch"), "val_loss_readable_before_bad_record"));
        for (size_t i = 0; i < m.n; i++)
                ck_assert(m.v[i].value != num(get(exp, "crc-mismatch"), "value_if_crc_ignored"));
        ck_assert_int_eq(metriclog_lookup(&m, 23, 72, &(double){0}), -ENOENT);
        metriclog_finish(&m);
        free(buf);

        /* every cut of the intact file gives a prefix of its values */
        load("tfevents-truncated/intact/events.out.tfevents.1796171316.vm", &buf, &len);
        struct metriclog full = {};
        ck_assert_int_eq(metriclog_parse_tfevents(buf, len, "val_loss", &full), 0);
        for (size_t cut = 0; cut < len; cut += 7) {
                ck_assert_int_eq(metriclog_parse_tfevents(buf, cut, "val_loss", &m), 0);
                ck_assert_msg(!m.corrupt, "a cut at %zu reads as corrupt", cut);
                ck_assert_uint_le(m.n, full.n);
                for (size_t i = 0; i < m.n; i++) {
                        ck_assert_double_eq(m.v[i].step, full.v[i].step);
                        ck_assert_double_eq(m.v[i].value, full.v[i].value);
                }
                metriclog_finish(&m);
        }
        metriclog_finish(&full);
        free(buf);
        json_object_put(exp);
}
END_TEST

START_TEST(test_crc32c)
{
        /* CRC-32C check value (RFC 3720 B.4): "123456789" -> 0xE3069283 */
        uint32_t crc = 0xE3069283u, masked = ((crc >> 15) | (crc << 17)) + 0xa282ead8u;

        ck_assert_uint_eq(metriclog_masked_crc32c("123456789", 9), masked);
}
END_TEST

/* ---- a small encoder for the tensor forms ---- */

struct buf {
        uint8_t b[4096];
        size_t n;
};

static void put(struct buf *b, const void *p, size_t n)
{
        ck_assert_uint_le(b->n + n, sizeof(b->b));
        memcpy(b->b + b->n, p, n);
        b->n += n;
}

static void put_varint(struct buf *b, uint64_t v)
{
        do {
                uint8_t c = (v & 0x7F) | (v > 0x7F ? 0x80 : 0);
                put(b, &c, 1);
                v >>= 7;
        } while (v);
}

static void put_key(struct buf *b, unsigned field, unsigned wire)
{
        put_varint(b, (uint64_t)field << 3 | wire);
}

static void put_msg(struct buf *b, unsigned field, const struct buf *m)
{
        put_key(b, field, 2);
        put_varint(b, m->n);
        put(b, m->b, m->n);
}

static void put_float(struct buf *b, unsigned field, float f)
{
        put_key(b, field, 5);
        put(b, &f, 4);
}

/* An Event at step with one Summary.Value (tag, then the value bytes). */
static void put_event(struct buf *file, int64_t step, const char *tag, const struct buf *value_rest)
{
        struct buf value = {}, summary = {}, event = {};
        uint64_t len;
        uint32_t crc;

        put_key(&value, 1, 2);
        put_varint(&value, strlen(tag));
        put(&value, tag, strlen(tag));
        put(&value, value_rest->b, value_rest->n);
        put_msg(&summary, 1, &value);
        put_key(&event, 1, 1);
        put(&event, &(double){1.5e9}, 8);
        put_key(&event, 2, 0);
        put_varint(&event, (uint64_t)step);
        put_msg(&event, 5, &summary);

        len = event.n;
        put(file, &len, 8);
        crc = metriclog_masked_crc32c(&len, 8);
        put(file, &crc, 4);
        put(file, event.b, event.n);
        crc = metriclog_masked_crc32c(event.b, event.n);
        put(file, &crc, 4);
}

START_TEST(test_tfevents_tensors)
{
        static struct buf file;
        struct buf v = {}, t = {}, shape = {}, dim = {}, packed = {};
        struct metriclog m = {};
        double d = 0.25;
        double got;

        file.n = 0;
        /* simple_value */
        put_float(&v, 2, 0.5f);
        put_event(&file, 10, "loss", &v);
        /* tensor DT_FLOAT, tensor_content */
        v.n = 0;
        put_key(&t, 1, 0);
        put_varint(&t, 1);
        put_msg(&t, 2, &shape); /* empty shape: a scalar */
        put_key(&t, 4, 2);
        put_varint(&t, 4);
        put(&t, &(float){0.75f}, 4);
        put_msg(&v, 8, &t);
        put_event(&file, 20, "loss", &v);
        /* tensor DT_DOUBLE, double_val packed */
        v.n = t.n = 0;
        put_key(&t, 1, 0);
        put_varint(&t, 2);
        put(&packed, &d, 8);
        put_msg(&t, 6, &packed);
        put_msg(&v, 8, &t);
        put_event(&file, 30, "loss", &v);
        /* tensor DT_FLOAT, float_val unpacked, shape [1] */
        v.n = t.n = 0;
        put_key(&t, 1, 0);
        put_varint(&t, 1);
        put_key(&dim, 1, 0);
        put_varint(&dim, 1);
        put_msg(&shape, 2, &dim);
        put_msg(&t, 2, &shape);
        put_float(&t, 5, 0.125f);
        put_msg(&v, 8, &t);
        put_event(&file, 40, "loss", &v);
        /* not scalars: two values, shape [2]; and a string tensor */
        v.n = t.n = shape.n = dim.n = 0;
        put_key(&t, 1, 0);
        put_varint(&t, 1);
        put_float(&t, 5, 9.0f);
        put_float(&t, 5, 9.0f);
        put_msg(&v, 8, &t);
        put_event(&file, 50, "loss", &v);
        v.n = t.n = 0;
        put_key(&t, 1, 0);
        put_varint(&t, 1);
        put_key(&dim, 1, 0);
        put_varint(&dim, 2);
        put_msg(&shape, 2, &dim);
        put_msg(&t, 2, &shape);
        put_float(&t, 5, 9.0f);
        put_msg(&v, 8, &t);
        put_event(&file, 60, "loss", &v);
        v.n = t.n = 0;
        put_key(&t, 1, 0);
        put_varint(&t, 7); /* DT_STRING */
        put_msg(&v, 8, &t);
        put_event(&file, 70, "loss", &v);
        /* another tag, and NaN */
        v.n = 0;
        put_float(&v, 2, 3.0f);
        put_event(&file, 80, "other", &v);
        v.n = 0;
        put_float(&v, 2, NAN);
        put_event(&file, 90, "loss", &v);

        ck_assert_int_eq(metriclog_parse_tfevents(file.b, file.n, "loss", &m), 0);
        ck_assert(!m.damaged);
        ck_assert(!m.has_epoch);
        ck_assert_uint_eq(m.n, 5);
        ck_assert_double_eq(m.v[0].value, 0.5);
        ck_assert_double_eq(m.v[1].value, 0.75);
        ck_assert_double_eq(m.v[2].value, 0.25);
        ck_assert_double_eq(m.v[3].value, 0.125);
        ck_assert(isnan(m.v[4].value));
        /* no epoch in the log: by step, or the step before */
        ck_assert_int_eq(metriclog_lookup(&m, 3, 21, &got), 0);
        ck_assert_double_eq(got, 0.75);
        ck_assert_int_eq(metriclog_lookup(&m, NAN, 20, &got), 0);
        ck_assert_double_eq(got, 0.75);
        ck_assert_int_eq(metriclog_lookup(&m, NAN, 22, &got), -ENOENT);
        ck_assert_int_eq(metriclog_lookup(&m, NAN, 50, &got), -ENOENT);
        metriclog_finish(&m);
}
END_TEST

/* Where a log begins, for a checkpoint whose rows it lost (a CSVLogger
 * restarted on resume): any row counts, the monitor's or not; by epoch
 * where the log has one, else by step. */
/* Two validations an epoch (val_check_interval=0.5), the log written up to
 * the first of epoch 2: a checkpoint of epoch 2 past it may follow the
 * second, not written yet. It has no value, and the log is ahead of it; a
 * checkpoint of an earlier epoch, or at that point, has its value. */
START_TEST(test_csv_last_epoch_not_written_yet)
{
        struct metriclog m = {};
        const char *t = "epoch,step,val_loss\n0,4,0.9\n0,9,0.8\n1,14,0.7\n1,19,0.6\n2,24,0.95\n";
        double v = 0;

        ck_assert_int_eq(metriclog_parse_csv(t, strlen(t), "val_loss", &m), 0);
        ck_assert_int_eq(metriclog_lookup(&m, 2, 25, &v), 0);
        ck_assert_double_eq(v, 0.95);
        ck_assert(!metriclog_ahead(&m, 2, 25));
        ck_assert_int_eq(metriclog_lookup(&m, 2, 30, &v), -ENOENT);
        ck_assert(metriclog_ahead(&m, 2, 30));
        ck_assert_int_eq(metriclog_lookup(&m, 1, 30, &v), 0);
        ck_assert_double_eq(v, 0.6);
        ck_assert(!metriclog_ahead(&m, 1, 30));
        metriclog_finish(&m);
}
END_TEST

/* A name's 0 read with the log: logged there (its value), logged nowhere up
 * to it (filled in), logged before but not there (may be real), past the
 * log's end (not logged yet), no log (the 0 as written). */
START_TEST(test_zero_in_a_name)
{
        struct metriclog m = {}, *lp = &m;
        struct metriclog_set set = {.loaded = true, .logs = &lp, .n = 1}, none = {.loaded = true};
        const char *t = "epoch,step,train_loss,val_loss\n0,9,1.5,\n0,99,,0.0\n1,149,0.3,\n1,199,,0.4\n";
        double v = 1;

        ck_assert_int_eq(metriclog_parse_csv(t, strlen(t), "val_loss", &m), 0);
        ck_assert_int_eq(metriclog_set_zero(&set, 0, 100, 0.0005, &v), 1);
        ck_assert_double_eq(v, 0.0);
        ck_assert_int_eq(metriclog_set_zero(&set, 0, 25, 0.0005, &v), 0);
        ck_assert_int_eq(metriclog_set_zero(&set, 1, 150, 0.0005, &v), -EINVAL);
        ck_assert_int_eq(metriclog_set_zero(&set, 2, 300, 0.0005, &v), -EAGAIN);
        v = 1;
        ck_assert_int_eq(metriclog_set_zero(&none, 0, 25, 0.0005, &v), 1);
        ck_assert_double_eq(v, 0.0);
        metriclog_finish(&m);

        /* the log's first rows were lost (a resume removed metrics.csv):
         * a 0 before where it begins is neither filled in nor real */
        t = "epoch,step,train_loss,val_loss\n3,349,0.3,\n3,399,,0.4\n";
        ck_assert_int_eq(metriclog_parse_csv(t, strlen(t), "val_loss", &m), 0);
        ck_assert_int_eq(metriclog_set_zero(&set, 1, 150, 0.0005, &v), -ENODATA);
        ck_assert_int_eq(metriclog_set_zero(&set, 3, 350, 0.0005, &v), 0);
        metriclog_finish(&m);

        /* a step counted another way (Lightning's global_step counts each
         * optimizer's step): the row at the name's step is of another
         * epoch, not this checkpoint's */
        t = "epoch,step,val_loss\n0,19,0.9\n1,39,0.0004\n2,59,0.5\n3,79,0.3\n";
        ck_assert_int_eq(metriclog_parse_csv(t, strlen(t), "val_loss", &m), 0);
        ck_assert_int_eq(metriclog_set_zero(&set, 1, 80, 0.0005, &v), -EINVAL);
        ck_assert_int_eq(metriclog_set_zero(&set, 1, 40, 0.0005, &v), 1);
        ck_assert_double_eq(v, 0.0004);
        /* a value the name's 0 cannot be rounded from: not its own */
        ck_assert_int_eq(metriclog_set_zero(&set, 2, 60, 0.0005, &v), -EINVAL);
        ck_assert_int_eq(metriclog_set_zero(&set, 2, 60, 0.5, &v), 1);
        ck_assert_double_eq(v, 0.5);
        metriclog_finish(&m);

        /* the log counts steps ahead of the name (manual optimization
         * stepping every few batches): epoch 2's 0 at step 75 was logged
         * at 299, past where epoch 1 was logged; not filled in */
        t = "epoch,step,val_loss\n0,99,0.5\n1,199,0.2\n2,299,0.0003\n3,399,0.1\n";
        ck_assert_int_eq(metriclog_parse_csv(t, strlen(t), "val_loss", &m), 0);
        ck_assert_int_eq(metriclog_set_zero(&set, 2, 75, 0.0005, &v), -EINVAL);
        ck_assert_int_eq(metriclog_set_zero(&set, 0, 25, 0.0005, &v), 0);
        metriclog_finish(&m);

        /* a name with an epoch and no step, a log without epochs */
        t = "val_loss,step\n0.5,99\n0.0003,199\n";
        ck_assert_int_eq(metriclog_parse_csv(t, strlen(t), "val_loss", &m), 0);
        ck_assert_int_eq(metriclog_set_zero(&set, 1, NAN, 0.0005, &v), -EINVAL);
        metriclog_finish(&m);

        /* a metric logged every step: the step before the save's is its
         * value, the save's own step the next batch's */
        t = "epoch,step,train_loss\n0,98,0.2\n0,99,0.0004\n0,100,0.0009\n";
        ck_assert_int_eq(metriclog_parse_csv(t, strlen(t), "train_loss", &m), 0);
        ck_assert_int_eq(metriclog_set_zero(&set, 0, 100, 0.0005, &v), 1);
        ck_assert_double_eq(v, 0.0004);
        ck_assert_int_eq(metriclog_set_zero(&set, 0, 100, 0.005, &v), -EINVAL);
        metriclog_finish(&m);
}
END_TEST

/* Two logs that disagree at a name's 0 (a logger with a fixed version
 * resumed: a second events file logs the same steps again) keep it, as
 * they keep a name without the monitor. */
START_TEST(test_zero_in_a_name_two_logs)
{
        struct metriclog a = {}, b = {}, *lp[] = {&a, &b};
        struct metriclog_set set = {.loaded = true, .logs = lp, .n = 2};
        const char *ta = "epoch,step,val_loss\n0,9,0.9\n1,19,0.0004\n2,29,0.5\n";
        const char *tb = "epoch,step,val_loss\n0,9,0.9\n1,19,0.45\n2,29,0.5\n";
        double v;

        ck_assert_int_eq(metriclog_parse_csv(ta, strlen(ta), "val_loss", &a), 0);
        ck_assert_int_eq(metriclog_parse_csv(tb, strlen(tb), "val_loss", &b), 0);
        ck_assert_int_eq(metriclog_set_zero(&set, 1, 20, 0.0005, &v), -EINVAL);
        ck_assert_int_eq(metriclog_set_lookup(&set, 1, 20, &v), -EINVAL);
        metriclog_finish(&b);
        ck_assert_int_eq(metriclog_parse_csv(ta, strlen(ta), "val_loss", &b), 0);
        ck_assert_int_eq(metriclog_set_zero(&set, 1, 20, 0.0005, &v), 1);
        ck_assert_double_eq(v, 0.0004);
        metriclog_finish(&a);
        metriclog_finish(&b);

        /* a float64 in metrics.csv, its float32 rounding in the events
         * file: one value, as TensorBoard holds it */
        ta = "epoch,step,val_loss\n0,9,0.9\n1,19,0.123456789012\n";
        tb = "epoch,step,val_loss\n0,9,0.9\n1,19,0.12345679104328156\n";
        ck_assert_int_eq(metriclog_parse_csv(ta, strlen(ta), "val_loss", &a), 0);
        ck_assert_int_eq(metriclog_parse_csv(tb, strlen(tb), "val_loss", &b), 0);
        ck_assert_int_eq(metriclog_set_lookup(&set, 1, 20, &v), 0);
        metriclog_finish(&b);
        tb = "epoch,step,val_loss\n0,9,0.9\n1,19,0.1234568\n";
        ck_assert_int_eq(metriclog_parse_csv(tb, strlen(tb), "val_loss", &b), 0);
        ck_assert_int_eq(metriclog_set_lookup(&set, 1, 20, &v), -EINVAL);
        metriclog_finish(&a);
        metriclog_finish(&b);
}
END_TEST

START_TEST(test_csv_begins_after)
{
        struct metriclog m = {};
        const char *t;

        t = "epoch,step,train_loss,val_loss\n3,30,0.9,\n4,40,,0.5\n";
        ck_assert_int_eq(metriclog_parse_csv(t, strlen(t), "val_loss", &m), 0);
        ck_assert(metriclog_behind(&m, 2, 29));
        /* epoch 3 is in the log, without the monitor: no metric */
        ck_assert(!metriclog_behind(&m, 3, 31));
        ck_assert_int_eq(metriclog_lookup(&m, 3, 31, &(double){0}), -ENOENT);
        ck_assert(!metriclog_behind(&m, 5, 50));
        metriclog_finish(&m);

        t = "step,val_loss\n99,0.5\n";
        ck_assert_int_eq(metriclog_parse_csv(t, strlen(t), "val_loss", &m), 0);
        ck_assert(metriclog_behind(&m, NAN, 50));
        ck_assert(!metriclog_behind(&m, NAN, 99));
        ck_assert(!metriclog_behind(&m, NAN, 100));
        /* neither epoch nor step in the name: nothing to place it by */
        ck_assert(!metriclog_behind(&m, NAN, NAN));
        metriclog_finish(&m);

        /* a resumed run adds an event file, it never restarts one */
        char *buf = NULL;
        size_t len;
        load("tfevents-truncated/intact/events.out.tfevents.1796171316.vm", &buf, &len);
        ck_assert_int_eq(metriclog_parse_tfevents(buf, len, "val_loss", &m), 0);
        ck_assert(!metriclog_behind(&m, 0, 0));
        metriclog_finish(&m);
        free(buf);
}
END_TEST

START_TEST(test_csv_edges)
{
        struct metriclog m = {};
        const char *t;

        /* CRLF, nan, a quoted header cell, an empty step, and a last line
         * still being written ("0.4" could become "0.45") */
        t = "epoch,step,\"a,b\",val_loss\r\n0,2,,1.5\r\n1,5,,nan\r\n2,,,0.7\r\n3,11,,0.4";
        ck_assert_int_eq(metriclog_parse_csv(t, strlen(t), "val_loss", &m), 0);
        ck_assert(m.damaged);
        ck_assert_uint_eq(m.n, 3);
        ck_assert(isnan(m.v[1].value));
        ck_assert(isnan(m.v[2].step));
        ck_assert_int_eq(metriclog_lookup(&m, 3, 12, &(double){0}), -ENOENT);
        metriclog_finish(&m);
        ck_assert_int_eq(metriclog_parse_csv(t, strlen(t), "a,b", &m), 0);
        ck_assert_uint_eq(m.n, 0);
        metriclog_finish(&m);

        /* a row with too many cells: it and what follows are not trusted */
        t = "epoch,step,val_loss\n0,2,1.5\n1,5,0.5,9\n2,8,0.25\n";
        ck_assert_int_eq(metriclog_parse_csv(t, strlen(t), "val_loss", &m), 0);
        ck_assert(m.damaged);
        ck_assert_uint_eq(m.n, 1);
        metriclog_finish(&m);
        /* a value that is not a number */
        t = "epoch,step,val_loss\n0,2,1.5x\n";
        ck_assert_int_eq(metriclog_parse_csv(t, strlen(t), "val_loss", &m), 0);
        ck_assert_uint_eq(m.n, 0);
        ck_assert(m.damaged);
        metriclog_finish(&m);
        /* no epoch column: by step */
        t = "step,val_loss\n99,0.5\n";
        ck_assert_int_eq(metriclog_parse_csv(t, strlen(t), "val_loss", &m), 0);
        ck_assert(!m.has_epoch);
        ck_assert_int_eq(metriclog_lookup(&m, 7, 100, &(double){0}), 0);
        metriclog_finish(&m);
        ck_assert_int_eq(metriclog_parse_csv("", 0, "val_loss", &m), 0);
        ck_assert_uint_eq(m.n, 0);
        metriclog_finish(&m);
}
END_TEST

/* ---- metric_log through scan_run() ---- */

static struct watch_conf log_watch(struct strv *logs, const char *glob)
{
        struct watch_conf w = tree_watch(KIND_FILE);

        *logs = (struct strv){};
        ck_assert_int_eq(strv_push(logs, glob), 0);
        w.metric_log = *logs;
        w.policy.monitor = (char *)"val_loss";
        w.match = (struct strv){};
        return w;
}

static void put_ckpts(void)
{
        tree_mkfile("lightning_logs/version_0/checkpoints/epoch=0-step=3.ckpt", 4096);
        tree_mkfile("lightning_logs/version_0/checkpoints/epoch=1-step=6.ckpt", 4096);
        tree_mkfile("lightning_logs/version_0/checkpoints/epoch=2-step=9-val_loss=0.1.ckpt", 4096);
}

#define CK "lightning_logs/version_0/checkpoints"

START_TEST(test_scan_metric_log)
{
        struct strv logs;
        struct watch_conf w = log_watch(&logs, "../metrics.csv");
        struct run run;
        const struct ckpt *c;

        metriclog_cache_clear();
        tree_use_pattern(NULL);
        put_ckpts();
        tree_puts("lightning_logs/version_0/metrics.csv", "epoch,step,val_loss\n0,2,0.9\n1,5,0.8\n2,8,0.7\n");
        tree_age_all();
        run = tree_scan_path(&w, CK);
        c = tree_find(&run, "epoch=0-step=3.ckpt");
        ck_assert(c->has_metric);
        ck_assert_double_eq(c->metric, 0.9);
        ck_assert_int_eq(c->read_error, 0);
        c = tree_find(&run, "epoch=1-step=6.ckpt");
        ck_assert_double_eq(c->metric, 0.8);
        /* the name's own value wins */
        c = tree_find(&run, "epoch=2-step=9-val_loss=0.1.ckpt");
        ck_assert_double_eq(c->metric, 0.1);
        run_finish(&run);

        /* unchanged: taken from the cache, not parsed again */
        {
                struct metriclog_set a = {}, b = {};
                int fd = openat_beneath(tree_fd, CK, O_RDONLY | O_DIRECTORY, 0);
                ck_assert_int_ge(fd, 0);
                ck_assert_int_eq(metriclog_set_load(&a, fd, &logs, "val_loss"), 0);
                ck_assert_int_eq(metriclog_set_load(&b, fd, &logs, "val_loss"), 0);
                ck_assert_uint_eq(a.n, 1);
                ck_assert_ptr_eq(a.logs[0], b.logs[0]);
                metriclog_set_finish(&a);
                metriclog_set_finish(&b);
                close(fd);
        }

        /* rewritten: the cache sees the new size and mtime. Epoch 1 is
         * past the end of the log (CSVLogger writes every 100 steps): its
         * value may still come, so it is kept (EAGAIN) */
        tree_puts("lightning_logs/version_0/metrics.csv", "epoch,step,val_loss\n0,2,0.25\n");
        tree_age_all();
        run = tree_scan_path(&w, CK);
        ck_assert_double_eq(tree_find(&run, "epoch=0-step=3.ckpt")->metric, 0.25);
        c = tree_find(&run, "epoch=1-step=6.ckpt");
        ck_assert(!c->has_metric);
        ck_assert_int_eq(c->read_error, -EAGAIN);
        run_finish(&run);

        /* a last line still being written (no newline yet): the same */
        tree_puts("lightning_logs/version_0/metrics.csv", "epoch,step,val_loss\n0,2,0.25\n1,5,0.");
        tree_age_all();
        run = tree_scan_path(&w, CK);
        ck_assert_int_eq(tree_find(&run, "epoch=1-step=6.ckpt")->read_error, -EAGAIN);
        run_finish(&run);

        /* a malformed row before it: its value is never read, and the
         * error says the log is damaged, not that the value may come */
        tree_puts("lightning_logs/version_0/metrics.csv", "epoch,step,val_loss\n0,2,0.25\n0,x,?\n1,5,0.8\n");
        tree_age_all();
        run = tree_scan_path(&w, CK);
        c = tree_find(&run, "epoch=1-step=6.ckpt");
        ck_assert(!c->has_metric);
        ck_assert_int_eq(c->read_error, -EBADMSG);
        ck_assert_int_eq(c->read_what, READ_WHAT_METRIC_LOG_DAMAGED);
        run_finish(&run);

        /* a gap inside the log: no metric, and nothing kept for it */
        tree_puts("lightning_logs/version_0/metrics.csv", "epoch,step,val_loss\n0,2,0.25\n2,8,0.5\n");
        tree_age_all();
        run = tree_scan_path(&w, CK);
        c = tree_find(&run, "epoch=1-step=6.ckpt");
        ck_assert(!c->has_metric);
        ck_assert_int_eq(c->read_error, 0);
        run_finish(&run);
        strv_finish(&logs);
}
END_TEST

/* A watch with a metric log is kept current name by name only while every
 * metric is in its name: a metric from the log may change with no event of
 * the run (the log is outside it). */
START_TEST(test_scan_one_metric_log)
{
        struct strv logs;
        struct watch_conf w = log_watch(&logs, "../metrics.csv");
        struct ckpt c = {};
        struct run run;
        int fd;

        metriclog_cache_clear();
        tree_use_pattern(NULL);
        tree_mkfile(CK "/epoch=2-step=9-val_loss=0.1.ckpt", 4096);
        tree_mkfile(CK "/epoch=3-step=12-val_loss=0.3.ckpt", 4096);
        tree_puts("lightning_logs/version_0/metrics.csv", "epoch,step,val_loss\n0,2,0.9\n");
        tree_age_all();
        ck_assert(scan_incremental(&w, tree_pat));
        run = tree_scan_path(&w, CK);
        ck_assert_uint_eq(run.n_ckpts, 2);
        ck_assert(!run.metric_logged);
        run_finish(&run);

        fd = openat_beneath(tree_fd, CK, O_RDONLY | O_DIRECTORY, 0);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(scan_one(fd, 0, "epoch=3-step=12-val_loss=0.3.ckpt", &w, tree_pat, tree_now_usec, &c), 1);
        ck_assert(c.has_metric);
        ck_assert_double_eq(c.metric, 0.3);
        ckpt_finish(&c);

        /* its metric is in the log: only a scan of the whole run reads it */
        tree_mkfile(CK "/epoch=0-step=3.ckpt", 4096);
        tree_age_all();
        ck_assert_int_eq(scan_one(fd, 0, "epoch=0-step=3.ckpt", &w, tree_pat, tree_now_usec, &c), -EAGAIN);
        run = tree_scan_path(&w, CK);
        ck_assert_double_eq(tree_find(&run, "epoch=0-step=3.ckpt")->metric, 0.9);
        ck_assert(run.metric_logged);
        run_finish(&run);

        /* without a monitor no metric is looked up */
        w.policy.monitor = NULL;
        ck_assert_int_eq(scan_one(fd, 0, "epoch=0-step=3.ckpt", &w, tree_pat, tree_now_usec, &c), 1);
        ckpt_finish(&c);
        run = tree_scan_path(&w, CK);
        ck_assert(!run.metric_logged);
        run_finish(&run);
        close(fd);
        strv_finish(&logs);
}
END_TEST

START_TEST(test_scan_metric_log_absent_or_unreadable)
{
        struct strv logs;
        struct watch_conf w = log_watch(&logs, "../metrics.csv");
        char path[PATH_MAX];
        struct run run;
        const struct ckpt *c;

        metriclog_cache_clear();
        tree_use_pattern(NULL);
        put_ckpts();
        tree_age_all();
        /* absent: no metric, nothing kept for it */
        run = tree_scan_path(&w, CK);
        c = tree_find(&run, "epoch=0-step=3.ckpt");
        ck_assert(!c->has_metric);
        ck_assert_int_eq(c->read_error, 0);
        run_finish(&run);

        /* there but not a readable file: fail closed for the checkpoints
         * that depend on it, not for one whose name has the value */
        tree_mkdirs("lightning_logs/version_0/metrics.csv");
        run = tree_scan_path(&w, CK);
        c = tree_find(&run, "epoch=0-step=3.ckpt");
        ck_assert(!c->has_metric);
        ck_assert_int_eq(c->read_error, -EINVAL);
        ck_assert_str_eq(ckpt_read_what(c), "its metric log");
        c = tree_find(&run, "epoch=2-step=9-val_loss=0.1.ckpt");
        ck_assert_int_eq(c->read_error, 0);
        run_finish(&run);

        /* a FIFO: never opened for reading (no hang), kept */
        tree_path("lightning_logs/version_0/metrics.csv", path, sizeof(path));
        ck_assert_int_eq(rmdir(path), 0);
        ck_assert_int_eq(mkfifo(path, 0644), 0);
        run = tree_scan_path(&w, CK);
        ck_assert_int_eq(tree_find(&run, "epoch=0-step=3.ckpt")->read_error, -EINVAL);
        run_finish(&run);
        strv_finish(&logs);

        /* larger than the cap: EFBIG, kept */
        w = log_watch(&logs, "../big.csv");
        tree_path("lightning_logs/version_0/big.csv", path, sizeof(path));
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(ftruncate(fd, (off_t)METRICLOG_FILE_MAX + 1), 0);
        close(fd);
        run = tree_scan_path(&w, CK);
        ck_assert_int_eq(tree_find(&run, "epoch=1-step=6.ckpt")->read_error, -EFBIG);
        run_finish(&run);
        strv_finish(&logs);
}
END_TEST

START_TEST(test_scan_metric_log_sibling_glob)
{
        struct strv logs;
        struct watch_conf w = log_watch(&logs, "../../version_*/events.out.tfevents.*");
        struct run run;

        metriclog_cache_clear();
        tree_use_pattern(NULL);
        /* the 47 checkpoints' names, the event file in version_1 */
        for (int e = 0; e < 47; e++) {
                char name[128];
                snprintf(name, sizeof(name), CK "/epoch=%d-step=%d.ckpt", e, 3 * (e + 1));
                tree_mkfile(name, 4096);
        }
        _cleanup_free_ char *buf = NULL;
        size_t len;
        load(EVENTS_47, &buf, &len);
        tree_put("lightning_logs/version_1/events.out.tfevents.1796171316.vm", buf, len);
        tree_mkdirs("lightning_logs/version_2"); /* no log in it */
        tree_age_all();
        run = tree_scan_path(&w, CK);
        ck_assert_uint_eq(run.n_ckpts, 47);
        struct json_object *exp = expected("lightning-default-47"), *ck = get(exp, "checkpoints");
        for (size_t i = 0; i < 47; i++) {
                struct json_object *c = json_object_array_get_idx(ck, i);
                const struct ckpt *k = tree_find(&run, json_object_get_string(get(c, "name")));
                ck_assert(k->has_metric);
                ck_assert(k->metric == num(c, "val_loss_tfevents"));
        }
        run_finish(&run);

        /* a second log that disagrees for an epoch: that checkpoint is kept
         * unranked (EINVAL), the others still read */
        tree_puts("lightning_logs/version_2/events.out.tfevents.2.vm", "");
        strv_finish(&logs);
        w = log_watch(&logs, "../../version_*/events.out.tfevents.*");
        ck_assert_int_eq(strv_push(&logs, "../metrics.csv"), 0);
        w.metric_log = logs;
        tree_puts("lightning_logs/version_0/metrics.csv", "epoch,step,val_loss\n0,2,5.0\n1,5,1.1355794668197632\n");
        tree_age_all();
        run = tree_scan_path(&w, CK);
        ck_assert_int_eq(tree_find(&run, "epoch=0-step=3.ckpt")->read_error, -EINVAL);
        ck_assert(tree_find(&run, "epoch=1-step=6.ckpt")->has_metric);
        ck_assert_int_eq(tree_find(&run, "epoch=1-step=6.ckpt")->read_error, 0);
        run_finish(&run);
        strv_finish(&logs);
        json_object_put(exp);
}
END_TEST

/* A TensorBoard log cut mid-record by a kill, and the resumed process's
 * own log from a later step: a checkpoint whose value was in the cut part
 * and is in neither log is kept unranked (EBADMSG), not read as a gap. */
START_TEST(test_scan_metric_log_damaged_then_resumed)
{
        struct strv logs;
        struct watch_conf w = log_watch(&logs, "../events.out.tfevents.*");
        struct buf later = {}, v = {};
        _cleanup_free_ char *buf = NULL;
        struct run run;
        size_t len;

        metriclog_cache_clear();
        tree_use_pattern(NULL);
        for (int e = 0; e < 40; e++) {
                char name[128];
                snprintf(name, sizeof(name), CK "/epoch=%d-step=%d.ckpt", e, 3 * (e + 1));
                tree_mkfile(name, 4096);
        }
        tree_mkfile(CK "/epoch=31-step=50.ckpt", 4096);
        /* readable to step 68 (epoch 22), cut in step 71's record */
        load("tfevents-truncated/truncated/events.out.tfevents.1796171316.vm", &buf, &len);
        tree_put("lightning_logs/version_0/events.out.tfevents.1796171316.vm", buf, len);
        /* the resumed process logs from epoch 29 on */
        for (int e = 29; e < 40; e++) {
                v.n = 0;
                put_float(&v, 2, (float)e);
                put_event(&later, 3 * (e + 1) - 1, "epoch", &v);
                v.n = 0;
                put_float(&v, 2, 0.125f);
                put_event(&later, 3 * (e + 1) - 1, "val_loss", &v);
        }
        tree_put("lightning_logs/version_0/events.out.tfevents.1796179999.vm", (const char *)later.b, later.n);
        tree_age_all();
        run = tree_scan_path(&w, CK);
        ck_assert_uint_eq(run.n_ckpts, 41);
        ck_assert(tree_find(&run, "epoch=22-step=69.ckpt")->has_metric);
        for (int e = 23; e < 29; e++) {
                char name[64];
                snprintf(name, sizeof(name), "epoch=%d-step=%d.ckpt", e, 3 * (e + 1));
                ck_assert_msg(tree_find(&run, name)->read_error == -EBADMSG, "%s: %d", name,
                              tree_find(&run, name)->read_error);
        }
        /* within the resumed log's points, a save it logged nothing at
         * (mid-epoch, before the validation) is a gap, as ever */
        ck_assert_int_eq(tree_find(&run, "epoch=31-step=50.ckpt")->read_error, 0);
        ck_assert(!tree_find(&run, "epoch=31-step=50.ckpt")->has_metric);
        ck_assert(tree_find(&run, "epoch=29-step=90.ckpt")->has_metric);
        ck_assert(tree_find(&run, "epoch=29-step=90.ckpt")->metric == 0.125);
        ck_assert_int_eq(tree_find(&run, "epoch=39-step=120.ckpt")->read_error, 0);
        run_finish(&run);
        strv_finish(&logs);
}
END_TEST

START_TEST(test_config_metric_log)
{
        char error[ERROR_MAX] = "";
        struct config *c = NULL;

        /* the lightning preset's default, a string, a list, off */
        ck_assert_int_eq(
                config_load_string("watch = ( { path = \"/d\"; preset = \"lightning\"; } );", "t.conf", &c, error), 0);
        ck_assert_uint_eq(c->watches[0].metric_log.n, 2);
        ck_assert_str_eq(c->watches[0].metric_log.v[0], "../metrics.csv");
        ck_assert_str_eq(c->watches[0].metric_log.v[1], "../events.out.tfevents.*");
        c = config_free(c);
        ck_assert_int_eq(config_load_string("watch = ( { path = \"/d\"; preset = \"lightning\"; "
                                            "metric_log = \"../../version_*/events.out.tfevents.*\"; } );",
                                            "t.conf", &c, error),
                         0);
        ck_assert_uint_eq(c->watches[0].metric_log.n, 1);
        c = config_free(c);
        ck_assert_int_eq(
                config_load_string("watch = ( { path = \"/d\"; preset = \"lightning\"; metric_log = \"\"; } );",
                                   "t.conf", &c, error),
                0);
        ck_assert_uint_eq(c->watches[0].metric_log.n, 0);
        c = config_free(c);
        /* a template without {val_loss} is fine when a log supplies it */
        ck_assert_int_eq(config_load_string("watch = ( { path = \"/d\"; pattern = \"epoch={epoch}-step={step}.ckpt\"; "
                                            "monitor = \"val_loss\"; metric_log = [ \"../metrics.csv\" ]; } );",
                                            "t.conf", &c, error),
                         0);
        c = config_free(c);
        ck_assert_int_eq(config_load_string("watch = ( { path = \"/d\"; preset = \"lightning\"; "
                                            "metric_log = \"/var/log/metrics.csv\"; } );",
                                            "t.conf", &c, error),
                         -EINVAL);
        ck_assert_msg(strstr(error, "metric_log") && strstr(error, "t.conf:1"), "%s", error);
}
END_TEST

Suite *metriclog_suite(void)
{
        Suite *s = suite_create("metriclog");
        TCase *tc = tcase_create("parse");
        TCase *ts = tcase_create("scan");

        tcase_add_test(tc, test_csv_47);
        tcase_add_test(tc, test_tfevents_47);
        tcase_add_test(tc, test_tfevents_damaged);
        tcase_add_test(tc, test_crc32c);
        tcase_add_test(tc, test_tfevents_tensors);
        tcase_add_test(tc, test_csv_edges);
        tcase_add_test(tc, test_csv_begins_after);
        tcase_add_test(tc, test_csv_last_epoch_not_written_yet);
        tcase_add_test(tc, test_zero_in_a_name);
        tcase_add_test(tc, test_zero_in_a_name_two_logs);
        tcase_add_test(tc, test_config_metric_log);
        suite_add_tcase(s, tc);
        tcase_add_checked_fixture(ts, tree_setup, tree_teardown);
        tcase_add_test(ts, test_scan_metric_log);
        tcase_add_test(ts, test_scan_one_metric_log);
        tcase_add_test(ts, test_scan_metric_log_absent_or_unreadable);
        tcase_add_test(ts, test_scan_metric_log_sibling_glob);
        tcase_add_test(ts, test_scan_metric_log_damaged_then_resumed);
        suite_add_tcase(s, ts);
        return s;
}
