/* Metrics from JSON files inside directory checkpoints (json-c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* HF trainer_state.json at ckpt_fd: the monitor value of the last log_history
 * entry that has `monitor` and step <= step. 0 and *ret set, -ENOENT when no
 * such entry (or no file), -errno/-EINVAL on I/O or parse errors, -EFBIG for
 * a file over 64 MiB, -E2BIG for one member or history entry over 64 KiB.
 * NaN/Infinity accepted. Parsed once per change of the file (cached). */
int metric_hf_state(int ckpt_fd, const char *monitor, double step, double *ret);
/* best_model_checkpoint of trainer_state.json at ckpt_fd, basename only, in
 * *ret (malloc'd) or NULL when absent. */
int metric_hf_best(int ckpt_fd, char **ret);
/* `monitor` from JSON file `relpath` (e.g. Orbax "metrics/metrics") below
 * ckpt_fd; a top-level key, or a dotted path "a.b". */
int metric_json_file(int ckpt_fd, const char *relpath, const char *monitor, double *ret);
/* The parsers behind metric_hf_state()/metric_hf_best() and
 * metric_json_file(), on a buffer (for tests and the fuzzer). monitor may be
 * NULL for the HF one (then it returns 0 or a parse error); *ret_best is
 * malloc'd or NULL. Memory used is bounded whatever the content. */
int metric_hf_parse(const char *buf, size_t len, const char *monitor, double step, double *ret, char **ret_best);
int metric_json_parse(const char *buf, size_t len, const char *monitor, double *ret);
/* How many times a metric file was read and parsed (the cache missed). */
unsigned long metric_parse_count(void);
/* Forget every cached parse. */
void metric_cache_flush(void);
