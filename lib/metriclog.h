/* Metrics from training logs: Lightning's CSVLogger metrics.csv and
 * TensorBoard event files (TFRecord framing, protobuf Event/Summary). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Files larger than this are not read (-EFBIG): a log that big is kept
 * away from memory, and what depends on it is kept (fail closed). */
#define METRICLOG_FILE_MAX (64u * 1024 * 1024)
/* At most this many files matched by all of a watch's metric_log globs. */
#define METRICLOG_FILES_MAX 64

/* One logged value of the monitor. */
struct metriclog_point {
        double epoch; /* NaN when the log gives none for this value */
        double step;
        double value; /* may be NaN */
};

/* The monitor's values from one log file, in file order. */
struct metriclog {
        struct metriclog_point *v;
        size_t n, cap;
        bool has_epoch;             /* the log has an epoch column or tag */
        double max_epoch, max_step; /* of the points; -inf when none */
        double min_epoch, min_step; /* of the points; +inf when none */
        /* where the log begins: the least epoch and step of any of its
         * rows, the monitor's or not (metrics.csv; -inf for TensorBoard's
         * files, which a resumed run adds to, never restarts) */
        double first_epoch, first_step;
        bool damaged;   /* reading stopped at a truncated or corrupt record */
        bool corrupt;   /* damaged, and not as a write still under way leaves it */
        unsigned n_ref; /* metriclog_ref/unref; the cache holds one */
};

/* Parse metrics.csv text (header line first) for monitor's column into *m
 * (zeroed by the caller). An incomplete last line and everything from a
 * malformed row on are left out (m->damaged; a malformed row, also
 * m->corrupt). 0 or -ENOMEM. */
int metriclog_parse_csv(const char *buf, size_t len, const char *monitor, struct metriclog *m);
/* Parse a TFRecord file of Event protos for scalars tagged monitor (and
 * "epoch") into *m. Reading ends at a truncated record or a CRC mismatch
 * (m->damaged; a CRC mismatch, also m->corrupt: no cut of a file being
 * written gives one); what came before stays. 0 or -ENOMEM. */
int metriclog_parse_tfevents(const void *buf, size_t len, const char *monitor, struct metriclog *m);
void metriclog_finish(struct metriclog *m);
/* The masked CRC-32C (Castagnoli) that TFRecord stores. */
uint32_t metriclog_masked_crc32c(const void *buf, size_t len);
/* The value for a checkpoint of this epoch and step (NaN: not in its name):
 * by epoch where the log has one (the last value of that epoch logged at a
 * step <= step), else by step (logged at step or step - 1). 0, -ENOENT. */
int metriclog_lookup(const struct metriclog *m, double epoch, double step, double *ret);

/* Whether a checkpoint of this epoch and step lies past the end of what m
 * logged (or m logged nothing yet): its value may still come. */
bool metriclog_ahead(const struct metriclog *m, double epoch, double step);
/* Whether it lies before the first row of m: its value was in rows the log
 * no longer holds (Lightning's CSVLogger removes metrics.csv when a run
 * resumes into its version directory), not missing. */
bool metriclog_behind(const struct metriclog *m, double epoch, double step);

/* The logs of one run: every file the metric_log globs match. */
struct metriclog_set {
        bool loaded;
        int error; /* -errno: a log exists but could not be read */
        struct metriclog **logs;
        size_t n;
};

/* Load the files that globs (relative to run_fd, ".." allowed) match,
 * through a cache keyed by (dev, ino, size, mtime). A glob that matches
 * nothing is no error. 0, or -errno (also kept in s->error). */
int metriclog_set_load(struct metriclog_set *s, int run_fd, const struct strv *globs, const char *monitor);
/* metriclog_lookup() over every log: 0, -ENOENT, s->error, -EINVAL when
 * two logs give different values, -EAGAIN when none has a value and the
 * checkpoint is past the end of every log (not logged yet: CSVLogger
 * writes every 100 steps, a trainer may still be writing), -EBADMSG when
 * so and a log is corrupt (its value may lie past the damage, never read),
 * -ENODATA when none has a value and it lies before where a log begins
 * (metriclog_behind()). */
int metriclog_set_lookup(const struct metriclog_set *s, double epoch, double step, double *ret);
/* For a name whose monitor is 0 (Lightning writes 0 for a metric not logged
 * yet, and a real value may round to it): 1 with *ret when the logs hold
 * the monitor at the checkpoint's step or the one before, in its epoch
 * (without a step: in its epoch), as a value within tol of 0 (what the
 * name's 0 may be rounded from); -EINVAL when a log holds it there only as
 * values the name's 0 cannot be, or as two values (its step's and the one
 * before, two logs), or holds it before, not there (the 0 may be real), or
 * counts steps apart from the name (an earlier epoch logged past its step,
 * a later one before it), or the name has no step and no log an epoch;
 * -EAGAIN when every log ends before it; -ENODATA when it lies before where
 * a log begins (rows lost: whether it was logged is unknown); 0 when none
 * holds it at or before it (not logged by then: a 0 filled in); with no log
 * at all, 1 with *ret 0: the name's value, as written; else
 * metriclog_set_lookup()'s errors. */
int metriclog_set_zero(const struct metriclog_set *s, double epoch, double step, double tol, double *ret);
void metriclog_set_finish(struct metriclog_set *s);
/* Drop every cached log (tests, reload). */
void metriclog_cache_clear(void);
