/* Metrics from JSON files inside directory checkpoints (json-c). */
#pragma once

#include <stdbool.h>

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
