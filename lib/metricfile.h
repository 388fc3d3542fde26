/* Metrics from JSON files inside directory checkpoints (json-c). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* HF trainer_state.json at ckpt_fd: the monitor value of the last log_history
 * entry that has `monitor` and step <= step. 0 and *ret set, -ENOENT when no
 * such entry, -errno/-EINVAL on I/O or parse errors. NaN/Infinity accepted. */
int metric_hf_state(int ckpt_fd, const char *monitor, double step, double *ret);
/* best_model_checkpoint of trainer_state.json at ckpt_fd, basename only, in
 * *ret (malloc'd) or NULL when absent. */
int metric_hf_best(int ckpt_fd, char **ret);
/* `monitor` from JSON file `relpath` (e.g. Orbax "metrics/metrics") below
 * ckpt_fd; a top-level key, or a dotted path "a.b". */
int metric_json_file(int ckpt_fd, const char *relpath, const char *monitor, double *ret);
/* A regular file below dir_fd (opened beneath it, never a FIFO or a device)
 * into *ret, NUL-terminated, malloc'd; -EFBIG past max_bytes. */
int read_file_at(int dir_fd, const char *relpath, size_t max_bytes, char **ret, size_t *ret_len);
