/* Checkpoint name templates -> fields.
 *
 * Template mode: "{name}" or "{name:fmt}" captures a number (sign, digits,
 * fraction, exponent, nan, inf; the format is ignored), "*" matches any text,
 * everything else is literal, and the whole name must match. Compiled for
 * Lightning (the lightning and nemo presets), a template without "*" is
 * Lightning's filename=: it also matches "name=" before every field
 * (auto_insert_metric_name), "-vN" before ".ckpt", and ".ckpt" itself when
 * the template has no extension.
 * Key=value mode (no template): every "name<sep>number" token between `join`
 * separators is a field ("epoch=3-step=1000-val_loss=0.1234.ckpt"); the key
 * is the last one before the number ("val_loss=val_loss=0.3") and a doubled
 * key is read once ("epoch_epoch=3"). */
#pragma once

#include <stdbool.h>

#include "ckpt.h"

struct pattern;

/* Compile a template; -EINVAL on a syntax error, with a message in *ret_error
 * (static string) when ret_error is not NULL. */
int pattern_compile(const char *template, struct pattern **ret, const char **ret_error);
/* pattern_compile() with Lightning's readings of a template without "*"
 * (see above): for the presets whose names Lightning's ModelCheckpoint writes. */
int pattern_compile_lightning(const char *template, struct pattern **ret, const char **ret_error);
/* Key=value mode with the given separators (defaults "=" and "-" when NULL). */
int pattern_new_kv(const char *key_separator, const char *join, struct pattern **ret);
struct pattern *pattern_free(struct pattern *p);

/* Match a whole entry name; on success fill *ret (may be NULL). */
bool pattern_match(const struct pattern *p, const char *name, struct fields *ret);
/* Whether the pattern can capture `field` (always true in key=value mode). */
bool pattern_can_capture(const struct pattern *p, const char *field);
/* Whether p is in key=value mode. */
bool pattern_is_kv(const struct pattern *p);
/* Whether files with equal fields form one checkpoint (a template with "*"
 * and at least one field; Lightning templates and key=value names never
 * group: their -v1 copies are checkpoints of their own). */
bool pattern_groups(const struct pattern *p);

/* Shell-style glob used by exclude lists: "*" and "?" only, whole name. */
bool glob_match(const char *glob, const char *name);
