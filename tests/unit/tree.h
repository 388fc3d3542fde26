/* Fixtures for suites that read real directory trees (metricfile, scan): a
 * fresh temporary directory per test, builders for its contents, and scan
 * helpers. Everything asserts, so a failed step fails the test. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "pattern.h"
#include "scan.h"

#define HOUR_USEC (3600 * (int64_t)USEC_PER_SEC)
#define PIN(k)    (1u << (k))

extern char tree_dir[];          /* absolute path of this test's tree */
extern int tree_fd;              /* root_open(tree_dir) */
extern int64_t tree_now_usec;    /* CLOCK_REALTIME at setup plus 1 s */
extern struct pattern *tree_pat; /* set by tree_use_pattern(), freed at teardown */

/* Checked fixture: tcase_add_checked_fixture(tc, tree_setup, tree_teardown). */
void tree_setup(void);
void tree_teardown(void);
/* Reopen tree_fd: after unshare(CLONE_NEWNS) old fds still see old mounts. */
void tree_reopen(void);

/* tree_dir/path into buf. */
void tree_path(const char *path, char *buf, size_t size);
/* mkdir -p below the tree. */
void tree_mkdirs(const char *path);
/* A file of size bytes of real data (so st_blocks is allocated); parents made. */
void tree_mkfile(const char *path, size_t size);
/* A file holding exactly len bytes of text; parents made. */
void tree_put(const char *path, const char *text, size_t len);
void tree_puts(const char *path, const char *text);
void tree_symlink(const char *target, const char *path);
/* mtime of path (the link itself for symlinks) := tree_now_usec + delta_usec. */
void tree_set_mtime(const char *path, int64_t delta_usec);
/* Everything in the tree three hours old. */
void tree_age_all(void);

/* A watch with no preset values: recursive, settle 0, metric from the name. */
struct watch_conf tree_watch(enum ckpt_kind kind);
/* Compile tree_pat from template, or key=value mode when NULL. */
void tree_use_pattern(const char *template);
/* "now" for a scan: tree_now_usec, or later on a slow machine, so that what
 * a test created is never in the future (settle 0 means complete). */
int64_t tree_scan_now(void);
/* scan_run() of the run at path below the tree at tree_scan_now(). */
struct run tree_scan_path(const struct watch_conf *w, const char *path);
struct run tree_scan(const struct watch_conf *w);
/* The checkpoint called name; fails the test when there is none. */
const struct ckpt *tree_find(const struct run *run, const char *name);
