/* libFuzzer target for metriclog.c: the input is parsed both as a TFRecord
 * event file and as metrics.csv. Neither may crash, read out of bounds or
 * leak, and what they return must hang together: every prefix of the input
 * gives a prefix of the values the whole input gives (a log cut while being
 * written never yields a value the whole file does not have there), and a
 * lookup returns one of the parsed values. The input is also framed as the
 * data of one record with good CRCs, so the protobuf reader gets to see it.
 *
 *   make fuzz-build && build/fuzz/fuzz_metriclog -max_total_time=60 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "metriclog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool same(double a, double b)
{
        return a == b || (isnan(a) && isnan(b));
}

static void check_prefix(const struct metriclog *part, const struct metriclog *whole)
{
        if (part->n > whole->n)
                abort();
        for (size_t i = 0; i < part->n; i++)
                if (!same(part->v[i].step, whole->v[i].step) || !same(part->v[i].value, whole->v[i].value))
                        abort();
}

static void check_lookup(const struct metriclog *m)
{
        for (size_t i = 0; i < m->n && i < 8; i++) {
                double v;
                if (metriclog_lookup(m, m->v[i].epoch, m->v[i].step, &v) < 0)
                        continue; /* the epoch may be NaN */
                bool found = false;
                for (size_t k = 0; k < m->n && !found; k++)
                        found = same(m->v[k].value, v);
                if (!found)
                        abort();
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        /* exactly sized heap copy, so that ASan sees any read past the end */
        uint8_t *buf = malloc(size ? size : 1);
        struct metriclog whole = {}, part = {};

        if (!buf)
                abort();
        memcpy(buf, data, size);

        if (metriclog_parse_tfevents(buf, size, "val_loss", &whole) < 0)
                abort();
        check_lookup(&whole);
        if (metriclog_parse_tfevents(buf, size / 2, "val_loss", &part) < 0)
                abort();
        check_prefix(&part, &whole);
        metriclog_finish(&part);
        metriclog_finish(&whole);

        /* the input as the data of one well-framed record, so that the
         * protobuf reader sees it past the CRC checks */
        uint8_t *rec = malloc(size + 16);
        uint64_t len = size;
        uint32_t crc = metriclog_masked_crc32c(&len, 8);
        if (!rec)
                abort();
        memcpy(rec, &len, 8);
        memcpy(rec + 8, &crc, 4);
        memcpy(rec + 12, data, size);
        crc = metriclog_masked_crc32c(data, size);
        memcpy(rec + 12 + size, &crc, 4);
        if (metriclog_parse_tfevents(rec, size + 16, "val_loss", &whole) < 0 || whole.damaged)
                abort();
        check_lookup(&whole);
        metriclog_finish(&whole);
        free(rec);

        if (metriclog_parse_csv((const char *)buf, size, "val_loss", &whole) < 0)
                abort();
        check_lookup(&whole);
        if (metriclog_parse_csv((const char *)buf, size / 2, "val_loss", &part) < 0)
                abort();
        check_prefix(&part, &whole);
        metriclog_finish(&part);
        metriclog_finish(&whole);
        free(buf);
        return 0;
}
