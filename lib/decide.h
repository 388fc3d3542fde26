/* One run decided: its checkpoints ranked per owner, the one place where the
 * daemon, -1 and -l turn a scanned run into verdicts. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ckpt.h"
#include "policy.h"

/* Fill c[i].verdict for every checkpoint of one run. Each owner's (struct
 * ckpt.uid) checkpoints form a run of their own for policy_decide(), so in a
 * sticky or shared directory one user's files never push out another's;
 * a checkpoint whose members have several owners is kept (KEEP_OWNERS).
 * Returns -ENOMEM after keeping everything, else 0. */
int run_decide(const struct policy *p, struct ckpt *c, size_t n, int64_t now_usec);

/* The index of the first checkpoint in c[0..i] with the owner of c[i]: ids of
 * owner partitions, for the floor's "best and newest of each run". */
size_t run_owner_first(const struct ckpt *c, size_t i);

/* *ret := "names carry epoch, step; did you mean ...?": the field names the
 * checkpoints c[0..n) carry, and the one closest to monitor by edit distance
 * when it looks like a typo of it (a caller's warning; free() it). */
int run_monitor_hint(const struct ckpt *c, size_t n, const char *monitor, char **ret);
/* Whether run_decide() kept c[0..n) (or one owner's part) whole because no
 * checkpoint carries the monitor (KEEP_NO_MONITOR). */
bool run_monitor_missing(const struct ckpt *c, size_t n);
