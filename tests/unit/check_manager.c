/* The daemon's manager on a real directory, driven by synthetic watch
 * events (no inotify): its index of each run, the decision and the floor.
 * The index must always equal what a fresh scan of the disk decides. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <sys/file.h>
#include <syslog.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "decide.h"
#include "../../daemon/manager_internal.h"
#include "tree.h"
#include "../../daemon/rootlock.h"

#define PATTERN "step_{step}-loss={loss}.pt"

static char state_dir[PATH_MAX];

static void manager_setup(void)
{
        tree_setup();
        /* removal records go to a directory of this test */
        ck_assert_int_lt(snprintf(state_dir, sizeof(state_dir), "%s/.state", tree_dir), (int)sizeof(state_dir));
        ck_assert_int_eq(mkdir(state_dir, 0700), 0);
        ck_assert_int_eq(setenv("STATE_DIRECTORY", state_dir, 1), 0);
}

/* Run the loop until nothing is left to dispatch now. */
static void settle(struct manager *m)
{
        int idle = 0;

        for (int i = 0; i < 10000 && idle < 3; i++) {
                int r = sd_event_run(m->event, 2000);
                ck_assert_int_ge(r, 0);
                idle = r == 0 ? idle + 1 : 0;
        }
}

/* A manager of one watch of the test's tree, its settings `watch` (the
 * path aside), started and settled. */
static struct manager *start_watch(const char *watch)
{
        char text[4096], error[ERROR_MAX];
        struct config *c = NULL;
        struct manager *m;

        ck_assert_int_lt(snprintf(text, sizeof(text), "watch = ( { path = \"%s\"; %s } );", tree_dir, watch),
                         (int)sizeof(text));
        ck_assert_msg(config_load_string(text, "test", &c, error) == 0, "%s", error);
        m = manager_new(c, NULL, false, -1);
        ck_assert_ptr_nonnull(m);
        m->members_min_ckpts = 32; /* so that the random runs reach it */
        ck_assert_int_eq(manager_start(m), 0);
        settle(m);
        return m;
}

static struct manager *start(int keep_last, const char *extra)
{
        char watch[2048];

        ck_assert_int_lt(snprintf(watch, sizeof(watch),
                                  "pattern = \"" PATTERN "\"; monitor = \"loss\"; keep_top_k = 2; "
                                  "keep_last = %d; settle = 0; %s",
                                  keep_last, extra),
                         (int)sizeof(watch));
        return start_watch(watch);
}

/* An event of name in directory dir of the root ("." the root itself, else
 * a run beneath it). */
static void event_in(struct manager *m, const char *dir, enum watch_event_kind kind, const char *name, bool is_dir)
{
        struct root_state *rs = &m->roots[0];
        bool root = strcmp(dir, ".") == 0;
        struct watch_dir d = {.wd = 1, .root = rs->index, .kind = root ? WATCH_ROOT : WATCH_RUN, .path = (char *)dir};
        struct watch_event ev = {
                .kind = kind,
                .dir = &d,
                .name = name,
                .name_len = strlen(name),
                .is_dir = is_dir,
                .mask = kind == WATCH_EVENT_MOVED_IN || kind == WATCH_EVENT_DIR_CREATED ? IN_MOVED_TO : 0,
        };

        manager_watch_event(m, &ev);
}

static void event(struct manager *m, enum watch_event_kind kind, const char *name, bool is_dir)
{
        event_in(m, ".", kind, name, is_dir);
}

static const char *ckpt_name(unsigned step, unsigned loss)
{
        static char buf[64];

        snprintf(buf, sizeof(buf), "step_%u-loss=%u.pt", step, loss);
        return buf;
}

/* A checkpoint renamed into place, three hours old. */
static void save(struct manager *m, unsigned step, unsigned loss)
{
        const char *name = ckpt_name(step, loss);

        tree_mkfile(name, 10);
        tree_set_mtime(name, -3 * HOUR_USEC);
        event(m, WATCH_EVENT_MOVED_IN, name, false);
}

static bool exists(const char *name)
{
        struct stat st;

        return fstatat(tree_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static struct run *index_of(struct manager *m)
{
        struct root_state *rs = &m->roots[0];

        for (size_t i = 0; i < rs->n_runs; i++)
                if (strcmp(rs->runs[i]->path, ".") == 0) {
                        ck_assert(rs->runs[i]->indexed);
                        return &rs->runs[i]->idx;
                }
        ck_abort_msg("the root's run is not indexed");
        return NULL;
}

/* The index's table of member names holds each member of the index once,
 * with its checkpoint's name and order, and nothing else. */
static void assert_members_are_index(struct manager *m, const char *when)
{
        struct run_state *run = NULL;
        struct root_state *rs = &m->roots[0];
        size_t n = 0, found = 0;

        for (size_t i = 0; i < rs->n_runs; i++)
                if (strcmp(rs->runs[i]->path, ".") == 0)
                        run = rs->runs[i];
        ck_assert_ptr_nonnull(run);
        /* small runs are searched name by name (MEMBERS_MIN_CKPTS) */
        if (run->idx.n_ckpts >= m->members_min_ckpts)
                ck_assert_msg(run->members_valid, "%s: the member table is not kept", when);
        if (!run->members_valid)
                return;
        for (size_t i = 0; i < run->idx.n_ckpts; i++)
                n += run->idx.ckpts[i].n_members;
        ck_assert_msg(run->n_members == n, "%s: %zu members in the table, %zu in the index", when, run->n_members, n);
        for (size_t h = 0; h < run->cap_members; h++) {
                const struct member_slot *e = &run->members[h];
                bool ok = false;

                if (!e->member)
                        continue;
                found++;
                for (size_t i = 0; i < run->idx.n_ckpts && !ok; i++) {
                        const struct ckpt *c = &run->idx.ckpts[i];

                        for (size_t k = 0; k < c->n_members; k++)
                                ok = ok || (ckpt_member(c, k) == e->member && c->name == e->ckpt_name &&
                                            (c->order == e->order || (isnan(c->order) && isnan(e->order))));
                }
                ck_assert_msg(ok, "%s: %s in the member table is no member of the index", when, e->member);
        }
        ck_assert_msg(found == n, "%s: %zu slots taken, %zu members", when, found, n);
}

/* The index equals a fresh scan of the disk, decided: names, pins, verdicts. */
static void assert_index_is_disk(struct manager *m, const char *when)
{
        struct root_state *rs = &m->roots[0];
        struct run *idx = index_of(m), fresh = {};
        int fd = openat(tree_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int64_t now = now_usec(CLOCK_REALTIME);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(scan_run(fd, ".", rs->root.w, rs->root.pat, now, &fresh), 0);
        close(fd);
        /* what the daemon timed itself is its memory, not the disk's: the
         * same for both (the last written it saw, min_age) */
        for (size_t i = 0; i < fresh.n_ckpts && i < idx->n_ckpts; i++)
                if (strcmp(idx->ckpts[i].name, fresh.ckpts[i].name) == 0) {
                        fresh.ckpts[i].age_known = idx->ckpts[i].age_known;
                        fresh.ckpts[i].age_usec = idx->ckpts[i].age_usec;
                        fresh.ckpts[i].seen_same_usec = idx->ckpts[i].seen_same_usec;
                        fresh.ckpts[i].seen_changed = idx->ckpts[i].seen_changed;
                        fresh.ckpts[i].seen_future = idx->ckpts[i].seen_future;
                }
        ck_assert_int_eq(run_decide(&rs->root.w->policy, fresh.ckpts, fresh.n_ckpts, now), 0);
        ck_assert_msg(idx->n_ckpts == fresh.n_ckpts, "%s: index holds %zu checkpoints, the disk %zu", when,
                      idx->n_ckpts, fresh.n_ckpts);
        for (size_t i = 0; i < fresh.n_ckpts; i++) {
                const struct ckpt *a = &idx->ckpts[i], *b = &fresh.ckpts[i];

                ck_assert_msg(strcmp(a->name, b->name) == 0, "%s: #%zu is %s in the index, %s on disk", when, i,
                              a->name, b->name);
                ck_assert_msg(a->pins == b->pins, "%s: %s pins %#x in the index, %#x on disk", when, a->name, a->pins,
                              b->pins);
                ck_assert_msg(a->verdict.keep == b->verdict.keep && a->verdict.reasons == b->verdict.reasons,
                              "%s: %s verdict %d/%#x in the index, %d/%#x on disk", when, a->name, a->verdict.keep,
                              a->verdict.reasons, b->verdict.keep, b->verdict.reasons);
        }
        run_finish(&fresh);
        assert_members_are_index(m, when);
}

START_TEST(test_new_checkpoint_displaces_one)
{
        struct manager *m;

        /* best two: loss 1 and 2 (steps 1, 2); newest three: 3, 4, 5 */
        for (unsigned s = 1; s <= 5; s++) {
                tree_mkfile(ckpt_name(s, s), 10);
                tree_set_mtime(ckpt_name(s, s), -3 * HOUR_USEC);
        }
        m = start(3, "");
        ck_assert_uint_eq(index_of(m)->n_ckpts, 5);
        save(m, 6, 50);
        settle(m);
        ck_assert(!exists(ckpt_name(3, 3)));
        ck_assert(exists(ckpt_name(1, 1)) && exists(ckpt_name(2, 2)) && exists(ckpt_name(6, 50)));
        ck_assert_uint_eq(index_of(m)->n_ckpts, 5);
        assert_index_is_disk(m, "after one save");
        /* a checkpoint deleted by someone else leaves the index */
        ck_assert_int_eq(unlinkat(tree_fd, ckpt_name(1, 1), 0), 0);
        event(m, WATCH_EVENT_GONE, ckpt_name(1, 1), false);
        settle(m);
        assert_index_is_disk(m, "after a removal by hand");
        manager_free(m);
}
END_TEST

/* A run directory replaced by another of its name whose events were not
 * read yet (here: none at all), one of the old run's checkpoints moved into
 * it: its next save is decided from the new directory, read whole, not
 * from the old one's index, in which that checkpoint was a victim. */
START_TEST(test_run_directory_replaced_unseen)
{
        char name[PATH_MAX], old[PATH_MAX];
        struct manager *m;

        tree_mkdirs("r");
        for (unsigned s = 1; s <= 6; s++) {
                snprintf(name, sizeof(name), "r/%s", ckpt_name(s, s));
                tree_mkfile(name, 10);
                tree_set_mtime(name, -3 * HOUR_USEC);
        }
        /* best two: 1, 2; newest three: 4, 5, 6 */
        m = start(3, "");
        snprintf(name, sizeof(name), "r/%s", ckpt_name(3, 3));
        ck_assert(!exists(name));
        ck_assert_int_eq(renameat(tree_fd, "r", tree_fd, "r.old"), 0);
        tree_mkdirs("r");
        snprintf(old, sizeof(old), "r.old/%s", ckpt_name(4, 4));
        snprintf(name, sizeof(name), "r/%s", ckpt_name(4, 4));
        ck_assert_int_eq(renameat(tree_fd, old, tree_fd, name), 0);
        /* in the old run's index, 4 is this save's victim */
        snprintf(name, sizeof(name), "r/%s", ckpt_name(7, 70));
        tree_mkfile(name, 10);
        tree_set_mtime(name, -3 * HOUR_USEC);
        event_in(m, "r", WATCH_EVENT_MOVED_IN, ckpt_name(7, 70), false);
        settle(m);
        snprintf(name, sizeof(name), "r/%s", ckpt_name(4, 4));
        ck_assert_msg(exists(name), "a checkpoint of the new run was decided by the old one's index");
        manager_free(m);
}
END_TEST

START_TEST(test_keep_file_and_symlink_pin)
{
        struct manager *m = start(3, "");

        for (unsigned s = 1; s <= 5; s++)
                save(m, s, 10 + s);
        settle(m);
        /* steps 1, 2 best; 3, 4, 5 newest */
        ck_assert_uint_eq(index_of(m)->n_ckpts, 5);
        tree_mkfile("step_3-loss=13.pt.keep", 0);
        event(m, WATCH_EVENT_CREATED, "step_3-loss=13.pt.keep", false);
        event(m, WATCH_EVENT_WRITE_DONE, "step_3-loss=13.pt.keep", false);
        tree_symlink("step_4-loss=14.pt", "last.pt");
        event(m, WATCH_EVENT_CREATED, "last.pt", false);
        settle(m);
        save(m, 6, 50);
        save(m, 7, 50);
        save(m, 8, 50);
        settle(m);
        ck_assert(exists("step_3-loss=13.pt") && exists("step_4-loss=14.pt"));
        ck_assert(!exists("step_5-loss=15.pt"));
        assert_index_is_disk(m, "with pins");
        /* the symlink goes: what it pinned goes too */
        ck_assert_int_eq(unlinkat(tree_fd, "last.pt", 0), 0);
        event(m, WATCH_EVENT_GONE, "last.pt", false);
        settle(m);
        ck_assert(!exists("step_4-loss=14.pt"));
        assert_index_is_disk(m, "after the symlink went");
        manager_free(m);
}
END_TEST

/* The floor evicts from the index: a file no event announced is not seen. */
START_TEST(test_floor_uses_the_index)
{
        struct manager *m = start(10, "min_free = \"100%\";");

        for (unsigned s = 1; s <= 4; s++)
                save(m, s, 10 - s);
        settle(m);
        /* below any floor: everything but the best and newest goes */
        manager_floor_soon(m);
        settle(m);
        ck_assert(exists(ckpt_name(4, 6)));
        ck_assert(!exists(ckpt_name(1, 9)) && !exists(ckpt_name(2, 8)));
        event(m, WATCH_EVENT_GONE, ckpt_name(1, 9), false);
        event(m, WATCH_EVENT_GONE, ckpt_name(2, 8), false);
        event(m, WATCH_EVENT_GONE, ckpt_name(3, 7), false);
        settle(m);
        ck_assert_uint_eq(index_of(m)->n_ckpts, 1);
        /* unannounced: the floor works from the index, not the disk */
        tree_mkfile(ckpt_name(9, 1), 10);
        tree_set_mtime(ckpt_name(9, 1), -3 * HOUR_USEC);
        manager_floor_soon(m);
        settle(m);
        ck_assert(exists(ckpt_name(9, 1)) && exists(ckpt_name(4, 6)));
        manager_free(m);
}
END_TEST

/* Someone removes checkpoint pick (mod the count) of the index, with its
 * event; what says so. False when the index is empty. */
static bool remove_one(struct manager *m, unsigned pick, char *what, size_t len)
{
        struct run *idx = index_of(m);
        char name[96];

        if (idx->n_ckpts == 0)
                return false;
        snprintf(name, sizeof(name), "%s", idx->ckpts[pick % idx->n_ckpts].name);
        ck_assert_int_eq(unlinkat(tree_fd, name, 0), 0);
        event(m, WATCH_EVENT_GONE, name, false);
        snprintf(what, len, "rm %s", name);
        return true;
}

/* Random saves, removals, keep files, symlinks and rewrites, each with the
 * events the kernel sends: after each, the index equals the disk. */
START_TEST(test_index_equals_disk_after_random_events)
{
        /* small runs, then long ones (most saves kept) */
        struct manager *m = start(_i < 4 ? 3 : 200, "keep_every = 10;");
        unsigned seed = 12345u + (unsigned)_i;

        for (int op = 0; op < (_i < 4 ? 150 : 300); op++) {
                unsigned step = (unsigned)rand_r(&seed) % 40, loss = (unsigned)rand_r(&seed) % 100;
                struct run *idx = index_of(m);
                char what[128], name[96];

                switch (rand_r(&seed) % 7) {
                case 0:
                case 1:
                        save(m, step, loss);
                        snprintf(what, sizeof(what), "save %s", ckpt_name(step, loss));
                        break;
                case 2: /* someone removes one */
                        if (!remove_one(m, step, what, sizeof(what)))
                                continue;
                        break;
                case 3: /* a keep file beside one */
                        if (idx->n_ckpts == 0)
                                continue;
                        snprintf(name, sizeof(name), "%s.keep", idx->ckpts[step % idx->n_ckpts].name);
                        tree_mkfile(name, 0);
                        event(m, WATCH_EVENT_CREATED, name, false);
                        event(m, WATCH_EVENT_WRITE_DONE, name, false);
                        snprintf(what, sizeof(what), "keep %s", name);
                        break;
                case 4: /* keep files and the symlink go */
                        if (unlinkat(tree_fd, "last.pt", 0) == 0)
                                event(m, WATCH_EVENT_GONE, "last.pt", false);
                        for (size_t i = 0; i < idx->n_ckpts; i++) {
                                snprintf(name, sizeof(name), "%s.keep", idx->ckpts[i].name);
                                if (unlinkat(tree_fd, name, 0) == 0)
                                        event(m, WATCH_EVENT_GONE, name, false);
                        }
                        snprintf(what, sizeof(what), "unpin");
                        break;
                case 5: /* Lightning's last.pt link */
                        if (idx->n_ckpts == 0)
                                continue;
                        if (unlinkat(tree_fd, "last.pt", 0) == 0)
                                event(m, WATCH_EVENT_GONE, "last.pt", false);
                        snprintf(name, sizeof(name), "%s", idx->ckpts[step % idx->n_ckpts].name);
                        tree_symlink(name, "last.pt");
                        event(m, WATCH_EVENT_CREATED, "last.pt", false);
                        snprintf(what, sizeof(what), "link last.pt -> %s", name);
                        break;
                default: /* one is written again in place */
                        if (idx->n_ckpts == 0)
                                continue;
                        snprintf(name, sizeof(name), "%s", idx->ckpts[step % idx->n_ckpts].name);
                        tree_mkfile(name, 20);
                        tree_set_mtime(name, -3 * HOUR_USEC);
                        event(m, WATCH_EVENT_MODIFIED, name, false);
                        event(m, WATCH_EVENT_WRITE_DONE, name, false);
                        snprintf(what, sizeof(what), "rewrite %s", name);
                        break;
                }
                settle(m);
                assert_index_is_disk(m, what);
        }
        manager_free(m);
}
END_TEST

/* A metric log (Lightning's metrics.csv) ranks the names that carry no
 * monitor: random saves with and without one, removals, and lines added to
 * the log with no event (the daemon does not watch it). After each save or
 * removal the index equals the disk, the log read as it is then: a run
 * where a checkpoint took its metric from the log is read whole. */
START_TEST(test_index_equals_disk_with_a_metric_log)
{
        struct manager *m = start_watch("preset = \"lightning\"; metric_log = \"metrics.csv\"; monitor = \"loss\"; "
                                        "keep_top_k = 2; keep_last = 3; settle = 0;");
        unsigned seed = 4242u + (unsigned)_i, logged = 0;
        char log[16384] = "step,loss\n", name[96], what[160];
        size_t len = strlen(log);

        tree_puts("metrics.csv", log);
        for (int op = 0; op < 200; op++) {
                unsigned step = (unsigned)rand_r(&seed) % 60, loss = (unsigned)rand_r(&seed) % 100;

                switch (rand_r(&seed) % 5) {
                case 0:
                case 1: /* its loss in its name */
                case 2: /* only in the log, if there */
                        if (rand_r(&seed) % 2)
                                snprintf(name, sizeof(name), "step=%u-loss=%u.ckpt", step, loss);
                        else
                                snprintf(name, sizeof(name), "step=%u.ckpt", step);
                        tree_mkfile(name, 10);
                        tree_set_mtime(name, -3 * HOUR_USEC);
                        event(m, WATCH_EVENT_MOVED_IN, name, false);
                        snprintf(what, sizeof(what), "save %s", name);
                        break;
                case 3: /* someone removes one */
                        if (!remove_one(m, step, what, sizeof(what)))
                                continue;
                        break;
                default: /* the trainer logs the next steps: no event */
                        while (logged <= step && len + 32 < sizeof(log)) {
                                len += (size_t)snprintf(log + len, sizeof(log) - len, "%u,%u\n", logged,
                                                        (unsigned)rand_r(&seed) % 100);
                                logged++;
                        }
                        tree_puts("metrics.csv", log);
                        continue;
                }
                settle(m);
                assert_index_is_disk(m, what);
        }
        manager_free(m);
}
END_TEST

/* A scan of the run replacing r (its records kept in a, as the index does):
 * n checkpoints named c<i>, complete, with order i (or its mtime with
 * by_mtime) and an mtime mtime_sec[i] seconds ago. */
static void ages_run(struct ages *a, struct run *r, size_t n, const int64_t *mtime_sec, bool by_mtime, int64_t wall)
{
        ages_keep_run(a, r);
        r->n_ckpts = n;
        for (size_t i = 0; i < n; i++) {
                struct ckpt *c = &r->ckpts[i];

                *c = (struct ckpt){.complete = true, .size_bytes = 4096};
                ck_assert_int_gt(asprintf(&c->name, "c%zu", i), 0);
                c->mtime_usec = wall - mtime_sec[i] * (int64_t)USEC_PER_SEC;
                c->order = by_mtime ? (double)c->mtime_usec / 1e6 : (double)i;
        }
}

static int ckpt_order_cmp(const void *x, const void *y)
{
        const struct ckpt *a = x, *b = y;
        int r = (a->order > b->order) - (a->order < b->order);

        return r != 0 ? r : strcmp(a->name, b->name);
}

/* What ckptd timed of each checkpoint follows it by name whatever the order
 * of the run, its order changing (mtime order) and names coming and going:
 * a checkpoint written again is unsettled for settle, the others are not. */
START_TEST(test_ages_follow_names)
{
        enum { N = 400 };
        struct run r = {.ckpts = calloc(N, sizeof(struct ckpt))};
        struct ages a = {};
        size_t incomplete;
        int64_t mtime_sec[N], wall = now_usec(CLOCK_REALTIME);
        unsigned seed = 777u + (unsigned)_i;
        bool by_mtime = _i % 2, present[N] = {}, changed[N] = {};

        ck_assert_ptr_nonnull(r.ckpts);
        for (size_t i = 0; i < N; i++)
                mtime_sec[i] = 7200 + (int64_t)(rand_r(&seed) % 3600);
        for (int round = 0; round < 30; round++) {
                size_t n = N - (size_t)(rand_r(&seed) % 40), rewritten[8];
                bool shuffle = rand_r(&seed) % 3 == 0;

                /* a few written again (an hour-old mtime still) */
                for (size_t k = 0; k < 8; k++) {
                        int64_t t = 3600 + (int64_t)(rand_r(&seed) % 3600);

                        rewritten[k] = (size_t)rand_r(&seed) % n;
                        mtime_sec[rewritten[k]] = t != mtime_sec[rewritten[k]] ? t : t + 1;
                }
                /* the model: unsettled for settle (an hour) once seen
                 * written again; forgotten when gone from a scan */
                for (size_t i = 0; i < N; i++) {
                        bool again = false;

                        for (size_t k = 0; k < 8; k++)
                                again = again || rewritten[k] == i;
                        changed[i] = i < n && present[i] && (changed[i] || again);
                        present[i] = i < n;
                }
                ages_run(&a, &r, n, mtime_sec, by_mtime, wall);
                qsort(r.ckpts, n, sizeof(*r.ckpts), ckpt_order_cmp);
                for (size_t i = 0; shuffle && i + 1 < n; i++) {
                        size_t j = i + (size_t)rand_r(&seed) % (n - i);
                        struct ckpt t = r.ckpts[i];

                        r.ckpts[i] = r.ckpts[j];
                        r.ckpts[j] = t;
                }
                ck_assert_int_eq(ages_observe(&a, &r, wall, HOUR_USEC, 0, &incomplete), 0);
                for (size_t i = 0; i < n; i++) {
                        const struct ckpt *c = &r.ckpts[i];
                        size_t at = strtoul(c->name + 1, NULL, 10);

                        incomplete -= changed[at]; /* counted: the unsettled ones */
                        ck_assert(c->age_known);
                        ck_assert_msg(c->complete == !changed[at], "round %d: %s %s", round, c->name,
                                      changed[at] ? "written again, yet settled" : "unsettled");
                        ck_assert_int_ge(c->age_usec, mtime_sec[at] * (int64_t)USEC_PER_SEC);
                }
                ck_assert_uint_eq(incomplete, 0);
        }
        ages_finish(&a);
        for (size_t i = 0; i < N; i++)
                free(r.ckpts[i].name);
        free(r.ckpts);
}
END_TEST

/* A complete checkpoint `name` of 4 KiB written at mtime_usec. */
static void ages_ckpt(struct ckpt *c, const char *name, int64_t mtime_usec)
{
        *c = (struct ckpt){.complete = true, .size_bytes = 4096, .mtime_usec = mtime_usec, .name = strdup(name)};
        ck_assert_ptr_nonnull(c->name);
}

/* What was timed survives the records leaving the index (a scan replacing
 * them, a reload): with the wall clock stepped a day forward meanwhile, the
 * unchanged checkpoint ages by the time that passed, not by the day, and
 * the one written again is not settled. */
START_TEST(test_ages_survive_reload)
{
        int64_t wall = now_usec(CLOCK_REALTIME), old = wall - 7200 * (int64_t)USEC_PER_SEC;
        int64_t stepped = wall + 24 * 3600 * (int64_t)USEC_PER_SEC;
        struct run r = {.ckpts = calloc(2, sizeof(struct ckpt)), .n_ckpts = 2};
        struct ages a = {}, b = {};
        struct ages_carry carry = {};
        struct run_told told = {};
        size_t incomplete = SIZE_MAX;

        ck_assert_ptr_nonnull(r.ckpts);
        ages_ckpt(&r.ckpts[0], "a", old);
        ages_ckpt(&r.ckpts[1], "b", old);
        ck_assert_int_eq(ages_observe(&a, &r, wall, HOUR_USEC, 0, &incomplete), 0);
        ck_assert(r.ckpts[1].age_known && r.ckpts[1].complete);
        ck_assert_uint_eq(incomplete, 0);

        /* the reload: the run's records go, what they timed is carried */
        ages_keep_run(&a, &r);
        ck_assert_int_eq(ages_carry_add(&carry, 8, 2, "run", &a, &told), 0);
        /* another root's run of that name takes nothing */
        ages_carry_take(&carry, 8, 3, "run", &b, &told);
        ck_assert_uint_eq(b.n, 0);
        ages_carry_take(&carry, 8, 2, "run", &b, &told);
        ages_carry_finish(&carry);

        /* the new scan: a written again (a new mtime, still an hour old by
         * the stepped clock), b as it was */
        ages_ckpt(&r.ckpts[0], "a", stepped - 3600 * (int64_t)USEC_PER_SEC);
        ages_ckpt(&r.ckpts[1], "b", old);
        r.n_ckpts = 2;
        ck_assert_int_eq(ages_observe(&b, &r, stepped, HOUR_USEC, 0, &incomplete), 0);
        ck_assert(r.ckpts[1].age_known);
        ck_assert_int_ge(r.ckpts[1].age_usec, 7200 * (int64_t)USEC_PER_SEC);
        ck_assert_int_lt(r.ckpts[1].age_usec, 7800 * (int64_t)USEC_PER_SEC);
        ck_assert(r.ckpts[1].complete);
        ck_assert(r.ckpts[0].age_known);
        ck_assert_msg(!r.ckpts[0].complete, "written again, yet settled");
        ck_assert_uint_eq(incomplete, 1);
        ages_finish(&b);
        for (size_t i = 0; i < r.n_ckpts; i++)
                ckpt_finish(&r.ckpts[i]);
        free(r.ckpts);
}
END_TEST

/* sweep_placed_being_written() on a real directory: saves open in this
 * process (another open file description, as for a victim's lease check)
 * with old mtimes look complete to the scan. _i == 0: keep_last 1 and two
 * saves open, so the save found first displaces the second, which is found
 * in the next round (the check keeps no memory of what it checked); both
 * are taken and the newest closed checkpoint is kept. _i == 1: keep_last 9
 * deletes nothing, so nothing is checked. */
START_TEST(test_placed_being_written)
{
        struct watch_conf w = tree_watch(KIND_FILE);
        struct root r;
        struct run *runs = NULL;
        size_t n = 0;
        int fd8, fd9;
        char path[PATH_MAX];
        int64_t now;

        w.pattern = (char *)"ckpt_{step}.pt";
        w.policy.keep_top_k = 0;
        w.policy.keep_last = _i == 0 ? 1 : 9;
        for (unsigned step = 1; step <= 9; step++) {
                char name[32];

                if (step > 5 && step < 8)
                        continue;
                snprintf(name, sizeof(name), "ckpt_%u.pt", step);
                tree_mkfile(name, 10);
        }
        tree_age_all();
        tree_path("ckpt_8.pt", path, sizeof(path));
        fd8 = open(path, O_WRONLY | O_CLOEXEC);
        ck_assert_int_ge(fd8, 0);
        tree_path("ckpt_9.pt", path, sizeof(path));
        fd9 = open(path, O_WRONLY | O_CLOEXEC);
        ck_assert_int_ge(fd9, 0);
        ck_assert_int_eq(root_init(&r, &w), 0);
        now = tree_scan_now();
        ck_assert_int_eq(sweep_scan_root(&r, now, &runs, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_int_eq(run_decide(&w.policy, runs[0].ckpts, runs[0].n_ckpts, now), 0);
        ck_assert(tree_find(&runs[0], "ckpt_9.pt")->complete);
        ck_assert_int_eq(sweep_placed_being_written(&r, &runs[0], &w.policy, now, -1, NULL), _i == 0);
        if (_i == 0) {
                const struct ckpt *c5 = tree_find(&runs[0], "ckpt_5.pt");

                for (unsigned step = 8; step <= 9; step++) {
                        char name[32];
                        const struct ckpt *c;

                        snprintf(name, sizeof(name), "ckpt_%u.pt", step);
                        c = tree_find(&runs[0], name);
                        ck_assert(!c->complete);
                        ck_assert(c->verdict.keep);
                        ck_assert(c->verdict.reasons & PIN(KEEP_INCOMPLETE));
                }
                ck_assert(c5->verdict.keep);
                ck_assert(c5->verdict.reasons & PIN(KEEP_LAST));
                ck_assert(!tree_find(&runs[0], "ckpt_4.pt")->verdict.keep);
        } else {
                for (size_t i = 0; i < runs[0].n_ckpts; i++) {
                        ck_assert(runs[0].ckpts[i].complete);
                        ck_assert(runs[0].ckpts[i].verdict.keep);
                }
        }
        runs_free(runs, n);
        root_finish(&r);
        close(fd8);
        close(fd9);
}
END_TEST

/* Five saves ckpt_1..5 in run `dir` ("." for the root), an hour old,
 * scanned into *runs and decided by keep_last 1: ckpt_1..4 are to go. The
 * run, in *runs. */
static struct run *placed_five(struct watch_conf *w, struct root *r, const char *dir, struct run **runs, size_t *n,
                               int64_t *now)
{
        struct run *run = NULL;

        w->pattern = (char *)"ckpt_{step}.pt";
        w->policy.keep_top_k = 0;
        w->policy.keep_last = 1;
        for (unsigned step = 1; step <= 5; step++) {
                char name[64];

                snprintf(name, sizeof(name), "%s/ckpt_%u.pt", dir, step);
                tree_mkfile(name, 10);
        }
        tree_age_all();
        ck_assert_int_eq(root_init(r, w), 0);
        *now = tree_scan_now();
        ck_assert_int_eq(sweep_scan_root(r, *now, runs, n), 0);
        for (size_t i = 0; i < *n; i++)
                if (strcmp((*runs)[i].path, dir) == 0)
                        run = &(*runs)[i];
        ck_assert_ptr_nonnull(run);
        ck_assert_int_eq(run_decide(&w->policy, run->ckpts, run->n_ckpts, *now), 0);
        ck_assert(!tree_find(run, "ckpt_4.pt")->verdict.keep);
        return run;
}

/* Fail closed: when the check of a placed save fails (here EMFILE, no fd
 * left for the lease check), nothing is known of any of them: the run is
 * unreadable, every checkpoint kept, in one round. */
START_TEST(test_placed_check_fails_keeps_all)
{
        struct watch_conf w = tree_watch(KIND_FILE);
        struct root r;
        struct run *runs = NULL;
        struct rlimit old, none;
        size_t n = 0;
        int64_t now;
        int fd;
        bool taken;

        placed_five(&w, &r, ".", &runs, &n, &now);
        ck_assert_uint_eq(n, 1);
        /* the lowest free fd is the limit: every open fails with EMFILE */
        fd = dup(0);
        ck_assert_int_ge(fd, 0);
        close(fd);
        ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
        none = old;
        none.rlim_cur = (rlim_t)fd;
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &none), 0);
        taken = sweep_placed_being_written(&r, &runs[0], &w.policy, now, -1, NULL);
        ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
        ck_assert(taken);
        for (size_t i = 0; i < runs[0].n_ckpts; i++)
                ck_assert_msg(runs[0].ckpts[i].verdict.keep, "%s not kept", runs[0].ckpts[i].name);
        ck_assert_int_eq(runs[0].read_error, -EMFILE);
        ck_assert_str_eq(runs[0].read_what, "whether ckpt_5.pt is in use");
        for (size_t i = 0; i < runs[0].n_ckpts; i++)
                ck_assert(runs[0].ckpts[i].verdict.reasons & PIN(KEEP_UNREADABLE));
        runs_free(runs, n);
        root_finish(&r);
}
END_TEST

/* A run gone between its scan and the question (moved away): one answer
 * for the run, not a guess per checkpoint: it is unreadable, every
 * checkpoint kept, in one round. */
START_TEST(test_placed_run_gone_keeps_all)
{
        struct watch_conf w = tree_watch(KIND_FILE);
        struct root r;
        struct run *runs = NULL;
        char from[PATH_MAX], to[PATH_MAX];
        struct run *a;
        size_t n = 0;
        int64_t now;

        a = placed_five(&w, &r, "a", &runs, &n, &now);
        tree_path("a", from, sizeof(from));
        tree_path("b", to, sizeof(to));
        ck_assert_int_eq(rename(from, to), 0);
        ck_assert(sweep_placed_being_written(&r, a, &w.policy, now, -1, NULL));
        ck_assert_int_ne(a->read_error, 0);
        for (size_t i = 0; i < a->n_ckpts; i++) {
                ck_assert_msg(a->ckpts[i].verdict.keep, "%s not kept", a->ckpts[i].name);
                ck_assert(a->ckpts[i].verdict.reasons & PIN(KEEP_UNREADABLE));
        }
        runs_free(runs, n);
        root_finish(&r);
}
END_TEST

/* A run's pending entries found by name whatever their number: random
 * adds, finds and drops (as events and prunes make them) against a plain
 * list, past the point where they are searched through a table. */
START_TEST(test_pending_found_by_name)
{
        struct run_state run = {};
        char names[3000][16];
        bool in[3000] = {};
        unsigned seed = 1234u + (unsigned)_i;

        for (size_t i = 0; i < 3000; i++)
                snprintf(names[i], sizeof(names[i]), "ckpt_%zu.pt", i);
        for (int op = 0; op < 40000; op++) {
                /* a burst in, then mostly out, then mixed */
                int phase = op / 10000, pick = rand_r(&seed) % (phase == 0 ? 3000 : phase == 1 ? 3000 : 40);
                int what = rand_r(&seed) % 4;
                struct pending *p;

                if (phase == 1 ? what == 0 : what < 2) {
                        p = pending_get(&run, names[pick]);
                        ck_assert_ptr_nonnull(p);
                        ck_assert_str_eq(p->name, names[pick]);
                        in[pick] = true;
                } else if (what == 3 || phase == 1) {
                        p = pending_find(&run, names[pick]);
                        if (p)
                                pending_drop(&run, (size_t)(p - run.pending));
                        in[pick] = false;
                } else {
                        p = pending_find(&run, names[pick]);
                        ck_assert_int_eq(p != NULL, in[pick]);
                        if (p)
                                ck_assert_str_eq(p->name, names[pick]);
                }
        }
        /* every name, present or not, once more; each present one once */
        for (size_t i = 0, n = 0; i < 3000; i++) {
                struct pending *p = pending_find(&run, names[i]);

                ck_assert_int_eq(p != NULL, in[i]);
                n += in[i];
                if (i == 2999)
                        ck_assert_uint_eq(run.n_pending, n);
        }
        /* all gone: the burst's room goes with them, and the table works on */
        while (run.n_pending > 0)
                pending_drop(&run, run.n_pending - 1);
        ck_assert_ptr_null(run.pending);
        ck_assert_ptr_null(run.pending_slots);
        ck_assert_ptr_nonnull(pending_get(&run, names[7]));
        ck_assert_ptr_nonnull(pending_find(&run, names[7]));
        ck_assert_ptr_null(pending_find(&run, names[8]));
        pending_drop(&run, 0);
        free(run.pending);
        free(run.pending_slots);
}
END_TEST

/* Whether this process holds a flock of `mode` ("READ", "WRITE") on path,
 * by /proc/locks. */
static bool holds(const char *path, const char *mode)
{
        char line[256], want[64];
        struct stat st;
        bool found = false;
        FILE *f = fopen("/proc/locks", "re");

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(stat(path, &st), 0);
        snprintf(want, sizeof(want), ":%llu ", (unsigned long long)st.st_ino);
        while (!found && fgets(line, sizeof(line), f)) {
                char kind[16], how[16];
                int pid;

                found = sscanf(line, "%*s %15s %*s %15s %d", kind, how, &pid) == 3 && strcmp(kind, "FLOCK") == 0 &&
                        strcmp(how, mode) == 0 && pid == getpid() && strstr(line, want);
        }
        fclose(f);
        return found;
}

/* A reload hands a root's lock to the path that names its directory now: a
 * directory above it moved, the new one above is locked shared, the old one
 * let go, the root's own exclusive lock held throughout. Refused (another
 * process holds the new one above), the lock stays as it was. */
START_TEST(test_lock_moves_with_the_path)
{
        char x[PATH_MAX], y[PATH_MAX], xm[PATH_MAX], ym[PATH_MAX], old_path[PATH_MAX], new_path[PATH_MAX];
        struct root_lock from = {}, to = {};
        int fd, up[2], down[2];
        pid_t child;
        char c;

        tree_mkdirs("x/m/a");
        tree_mkdirs("y");
        tree_path("x", x, sizeof(x));
        tree_path("y", y, sizeof(y));
        tree_path("x/m", xm, sizeof(xm));
        tree_path("y/m", ym, sizeof(ym));
        tree_path("x/m/a", old_path, sizeof(old_path));
        tree_path("y/m/a", new_path, sizeof(new_path));
        fd = open(old_path, O_PATH | O_DIRECTORY | O_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(root_lock_take(&from, fd, old_path, 0, LOG_DEBUG), 0);
        ck_assert(holds(old_path, "WRITE") && holds(x, "READ"));
        ck_assert_int_eq(rename(xm, ym), 0);

        /* another process holds y exclusively: refused, nothing changed */
        ck_assert_int_eq(pipe(up), 0);
        ck_assert_int_eq(pipe(down), 0);
        child = fork();
        ck_assert_int_ge(child, 0);
        if (child == 0) {
                int yfd = open(y, O_RDONLY | O_DIRECTORY);
                if (yfd < 0 || flock(yfd, LOCK_EX) < 0 || write(up[1], "l", 1) != 1 || read(down[0], &c, 1) < 0)
                        _exit(1);
                _exit(0);
        }
        ck_assert_int_eq(read(up[0], &c, 1), 1);
        ck_assert_int_eq(root_lock_move(&to, &from, new_path, LOG_DEBUG), -EWOULDBLOCK);
        ck_assert(!to.held && from.held);
        ck_assert(holds(new_path, "WRITE") && holds(x, "READ"));
        ck_assert_int_eq(write(down[1], "q", 1), 1);
        ck_assert_int_eq(waitpid(child, NULL, 0), child);

        ck_assert_int_eq(root_lock_move(&to, &from, new_path, LOG_DEBUG), 0);
        ck_assert(to.held && !from.held && from.n == 0);
        ck_assert(holds(new_path, "WRITE") && holds(y, "READ"));
        ck_assert(!holds(x, "READ"));
        root_lock_release(&to);
        ck_assert(!holds(new_path, "WRITE") && !holds(y, "READ"));
        close(fd);
        for (int i = 0; i < 2; i++) {
                close(up[i]);
                close(down[i]);
        }
}
END_TEST

Suite *manager_suite(void);

Suite *manager_suite(void)
{
        Suite *s = suite_create("manager");
        TCase *tc = tcase_create("index");

        tcase_add_checked_fixture(tc, manager_setup, tree_teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_new_checkpoint_displaces_one);
        tcase_add_test(tc, test_keep_file_and_symlink_pin);
        tcase_add_test(tc, test_run_directory_replaced_unseen);
        tcase_add_test(tc, test_floor_uses_the_index);
        tcase_add_test(tc, test_lock_moves_with_the_path);
        tcase_add_loop_test(tc, test_index_equals_disk_after_random_events, 0, 8);
        tcase_add_loop_test(tc, test_index_equals_disk_with_a_metric_log, 0, 4);
        suite_add_tcase(s, tc);
        tc = tcase_create("ages");
        tcase_add_loop_test(tc, test_ages_follow_names, 0, 4);
        tcase_add_test(tc, test_ages_survive_reload);
        suite_add_tcase(s, tc);
        tc = tcase_create("placed");
        tcase_add_checked_fixture(tc, tree_setup, tree_teardown);
        tcase_add_loop_test(tc, test_placed_being_written, 0, 2);
        tcase_add_test(tc, test_placed_check_fails_keeps_all);
        tcase_add_test(tc, test_placed_run_gone_keeps_all);
        suite_add_tcase(s, tc);
        tc = tcase_create("pending");
        tcase_add_loop_test(tc, test_pending_found_by_name, 0, 3);
        suite_add_tcase(s, tc);
        return s;
}
