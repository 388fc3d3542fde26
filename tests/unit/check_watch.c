/* The inotify layer: the pure decoder and classifier, the wd table and its
 * dispatch, real inotify on a temporary directory, and daemon/watch.c when it
 * is linked into check_unit. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "inotify_decode.h"
#include "watchtab.h"
#include "../../daemon/watch.h"

Suite *watch_suite(void);

/* daemon/ is not part of libckptd.a: the watcher tests run when the Makefile
 * links daemon/watch.o into check_unit, and fail saying so when it does not. */
#pragma weak watcher_new
#pragma weak watcher_free
#pragma weak watcher_fd
#pragma weak watcher_add
#pragma weak watcher_add_beneath
#pragma weak watcher_lookup
#pragma weak watcher_remove
#pragma weak watcher_remove_wd
#pragma weak watcher_remove_root
#pragma weak watcher_remove_below
#pragma weak watcher_list_root
#pragma weak watcher_count
#pragma weak watcher_read

/* ---- handcrafted buffers ---- */

struct buf {
        uint8_t data[8192];
        size_t len;
};

/* Append an event whose name field is `field_len` bytes: the name, then NULs.
 * field_len == strlen(name) makes a record without a terminating NUL. */
static void put_event(struct buf *b, int wd, uint32_t mask, uint32_t cookie, const char *name,
                      uint32_t field_len)
{
        struct inotify_event ev = { .wd = wd, .mask = mask, .cookie = cookie, .len = field_len };

        ck_assert_uint_le(b->len + sizeof(ev) + field_len, sizeof(b->data));
        memcpy(b->data + b->len, &ev, sizeof(ev));
        b->len += sizeof(ev);
        memset(b->data + b->len, 0, field_len);
        if (name) {
                ck_assert_uint_le(strlen(name), field_len);
                memcpy(b->data + b->len, name, strlen(name));
        }
        b->len += field_len;
}

START_TEST(test_decode_empty)
{
        struct inotify_rec rec;
        size_t offset = 0;

        ck_assert_int_eq(inotify_next((const uint8_t *)"", 0, &offset, &rec), 0);
        ck_assert_uint_eq(offset, 0);
}
END_TEST

START_TEST(test_decode_multiple)
{
        struct buf b = { .len = 0 };
        struct inotify_rec rec;
        size_t offset = 0;

        put_event(&b, 1, IN_CREATE, 0, "a", 16);
        put_event(&b, 2, IN_DELETE_SELF, 0, NULL, 0);
        put_event(&b, 3, IN_MOVED_TO, 77, "epoch=3-step=1000.ckpt", 32);

        ck_assert_int_eq(inotify_next(b.data, b.len, &offset, &rec), 1);
        ck_assert_int_eq(rec.wd, 1);
        ck_assert_uint_eq(rec.mask, IN_CREATE);
        ck_assert_str_eq(rec.name, "a");
        ck_assert_uint_eq(rec.name_len, 1);
        ck_assert_uint_eq(offset, sizeof(struct inotify_event) + 16);

        ck_assert_int_eq(inotify_next(b.data, b.len, &offset, &rec), 1);
        ck_assert_int_eq(rec.wd, 2);
        ck_assert_str_eq(rec.name, "");
        ck_assert_uint_eq(rec.name_len, 0);

        ck_assert_int_eq(inotify_next(b.data, b.len, &offset, &rec), 1);
        ck_assert_int_eq(rec.wd, 3);
        ck_assert_uint_eq(rec.cookie, 77);
        ck_assert_str_eq(rec.name, "epoch=3-step=1000.ckpt");
        ck_assert_uint_eq(rec.name_len, strlen("epoch=3-step=1000.ckpt"));

        ck_assert_int_eq(inotify_next(b.data, b.len, &offset, &rec), 0);
        ck_assert_uint_eq(offset, b.len);
}
END_TEST

START_TEST(test_decode_unaligned)
{
        struct buf b = { .len = 0 };
        static uint8_t shifted[sizeof(b.data) + 1];
        struct inotify_rec rec;
        size_t offset = 0;

        /* A fuzzer's buffer has any alignment: the decoder must not cast. */
        put_event(&b, 9, IN_CLOSE_WRITE, 0, "x", 4);
        put_event(&b, 10, IN_MODIFY, 0, "y", 4);
        memcpy(shifted + 1, b.data, b.len);
        ck_assert_int_eq(inotify_next(shifted + 1, b.len, &offset, &rec), 1);
        ck_assert_int_eq(rec.wd, 9);
        ck_assert_int_eq(inotify_next(shifted + 1, b.len, &offset, &rec), 1);
        ck_assert_int_eq(rec.wd, 10);
        ck_assert_str_eq(rec.name, "y");
        ck_assert_int_eq(inotify_next(shifted + 1, b.len, &offset, &rec), 0);
}
END_TEST

START_TEST(test_decode_truncated_header)
{
        struct buf b = { .len = 0 };
        struct inotify_rec rec = { .wd = 1234 };
        size_t offset = 0, first;

        put_event(&b, 1, IN_CREATE, 0, "a", 16);
        first = b.len;
        put_event(&b, 2, IN_CREATE, 0, "b", 16);

        /* Only part of the first header. */
        ck_assert_int_eq(inotify_next(b.data, 10, &offset, &rec), -EBADMSG);
        ck_assert_uint_eq(offset, 0);
        ck_assert_int_eq(rec.wd, 1234);

        /* A whole record, then 10 bytes of the next header. */
        ck_assert_int_eq(inotify_next(b.data, first + 10, &offset, &rec), 1);
        ck_assert_uint_eq(offset, first);
        ck_assert_int_eq(inotify_next(b.data, first + 10, &offset, &rec), -EBADMSG);
        ck_assert_uint_eq(offset, first);
}
END_TEST

START_TEST(test_decode_truncated_name)
{
        struct buf b = { .len = 0 };
        struct inotify_rec rec;
        size_t offset = 0;

        /* len says 32 bytes of name, the buffer ends 16 bytes in. */
        put_event(&b, 1, IN_CREATE, 0, "a", 32);
        ck_assert_int_eq(inotify_next(b.data, b.len - 16, &offset, &rec), -EBADMSG);
        ck_assert_uint_eq(offset, 0);
        /* One byte short. */
        ck_assert_int_eq(inotify_next(b.data, b.len - 1, &offset, &rec), -EBADMSG);
        /* Exactly enough. */
        ck_assert_int_eq(inotify_next(b.data, b.len, &offset, &rec), 1);
}
END_TEST

START_TEST(test_decode_huge_len)
{
        struct buf b = { .len = 0 };
        struct inotify_event ev = { .wd = 1, .mask = IN_CREATE, .len = UINT32_MAX };
        struct inotify_rec rec;
        size_t offset = 0;

        memcpy(b.data, &ev, sizeof(ev));
        b.len = sizeof(ev) + 64;
        ck_assert_int_eq(inotify_next(b.data, b.len, &offset, &rec), -EBADMSG);
}
END_TEST

START_TEST(test_decode_name_without_nul)
{
        struct buf b = { .len = 0 };
        struct inotify_rec rec;
        size_t offset = 0;

        put_event(&b, 1, IN_CREATE, 0, "abcd", 4);
        ck_assert_int_eq(inotify_next(b.data, b.len, &offset, &rec), -EBADMSG);
        ck_assert_uint_eq(offset, 0);
}
END_TEST

START_TEST(test_decode_zero_length_names)
{
        struct buf b = { .len = 0 };
        struct inotify_rec rec;
        size_t offset = 0;

        /* No name field at all, and a name field of NULs only. */
        put_event(&b, 4, IN_MOVE_SELF, 0, NULL, 0);
        put_event(&b, 5, IN_CREATE, 0, NULL, 16);
        ck_assert_int_eq(inotify_next(b.data, b.len, &offset, &rec), 1);
        ck_assert_uint_eq(rec.name_len, 0);
        ck_assert_str_eq(rec.name, "");
        ck_assert_int_eq(inotify_next(b.data, b.len, &offset, &rec), 1);
        ck_assert_int_eq(rec.wd, 5);
        ck_assert_uint_eq(rec.name_len, 0);
        ck_assert_str_eq(rec.name, "");
        ck_assert_int_eq(inotify_next(b.data, b.len, &offset, &rec), 0);
}
END_TEST

START_TEST(test_decode_overflow)
{
        struct buf b = { .len = 0 };
        struct inotify_rec rec;
        size_t offset = 0;

        put_event(&b, -1, IN_Q_OVERFLOW, 0, NULL, 0);
        ck_assert_int_eq(inotify_next(b.data, b.len, &offset, &rec), 1);
        ck_assert_int_eq(rec.wd, -1);
        ck_assert_int_eq(inotify_classify(rec.mask), WATCH_EVENT_OVERFLOW);
        ck_assert_int_eq(inotify_next(b.data, b.len, &offset, &rec), 0);
}
END_TEST

START_TEST(test_decode_bad_offset)
{
        struct buf b = { .len = 0 };
        struct inotify_rec rec;
        size_t offset;

        put_event(&b, 1, IN_CREATE, 0, "a", 16);
        offset = b.len + 1;
        ck_assert_int_eq(inotify_next(b.data, b.len, &offset, &rec), -EINVAL);
}
END_TEST

START_TEST(test_classify)
{
        static const struct {
                uint32_t mask;
                enum watch_event_kind kind;
        } cases[] = {
                { IN_Q_OVERFLOW, WATCH_EVENT_OVERFLOW },
                { IN_IGNORED, WATCH_EVENT_IGNORED },
                { IN_DELETE_SELF, WATCH_EVENT_SELF_GONE },
                { IN_DELETE_SELF | IN_ISDIR, WATCH_EVENT_SELF_GONE },
                { IN_MOVE_SELF, WATCH_EVENT_SELF_GONE },
                { IN_UNMOUNT, WATCH_EVENT_SELF_GONE },
                { IN_CREATE | IN_ISDIR, WATCH_EVENT_DIR_CREATED },
                { IN_MOVED_TO | IN_ISDIR, WATCH_EVENT_DIR_CREATED },
                { IN_CLOSE_WRITE, WATCH_EVENT_WRITE_DONE },
                { IN_MOVED_TO, WATCH_EVENT_MOVED_IN },
                { IN_CREATE, WATCH_EVENT_CREATED },
                { IN_MODIFY, WATCH_EVENT_MODIFIED },
                { IN_DELETE, WATCH_EVENT_GONE },
                { IN_DELETE | IN_ISDIR, WATCH_EVENT_GONE },
                { IN_MOVED_FROM, WATCH_EVENT_GONE },
                { IN_MOVED_FROM | IN_ISDIR, WATCH_EVENT_GONE },
                { IN_ATTRIB, WATCH_EVENT_OTHER },
                { 0, WATCH_EVENT_OTHER },
                /* Combinations the kernel does not send still have one answer. */
                { IN_UNMOUNT | IN_IGNORED, WATCH_EVENT_IGNORED },
                { IN_Q_OVERFLOW | IN_IGNORED, WATCH_EVENT_OVERFLOW },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                ck_assert_msg(inotify_classify(cases[i].mask) == cases[i].kind, "mask %#x: %s, expected %s",
                              cases[i].mask, watch_event_kind_to_string(inotify_classify(cases[i].mask)),
                              watch_event_kind_to_string(cases[i].kind));
        for (int k = 0; k < _WATCH_EVENT_KIND_MAX; k++)
                ck_assert_ptr_nonnull(watch_event_kind_to_string(k));
        ck_assert_ptr_null(watch_event_kind_to_string(_WATCH_EVENT_KIND_MAX));
}
END_TEST

/* ---- the wd table ---- */

START_TEST(test_tab_basic)
{
        struct watchtab *t = watchtab_new();
        struct watch_dir *d;

        ck_assert_ptr_nonnull(t);
        ck_assert_ptr_null(watchtab_get(t, 1));
        ck_assert_ptr_null(watchtab_take(t, 1, 0));
        ck_assert_ptr_null(watchtab_take_wd(t, 1));

        ck_assert_int_eq(watchtab_put(t, 1, 0, WATCH_ROOT, ".", 8, 100, &d), 1);
        ck_assert_int_eq(d->wd, 1);
        ck_assert_int_eq(watchtab_put(t, 2, 0, WATCH_RUN, "a", 8, 101, NULL), 1);
        ck_assert_uint_eq(watchtab_n_wds(t), 2);
        ck_assert_uint_eq(watchtab_n_dirs(t), 2);

        /* The same (wd, root) again: a rename updates the entry. */
        ck_assert_int_eq(watchtab_put(t, 2, 0, WATCH_RUN, "b", 8, 101, &d), 0);
        ck_assert_str_eq(d->path, "b");
        ck_assert_uint_eq(watchtab_n_dirs(t), 2);
        ck_assert_str_eq(watchtab_get(t, 2)->path, "b");
        ck_assert_ptr_eq(watchtab_get_root(t, 2, 0), d);
        ck_assert_ptr_null(watchtab_get_root(t, 2, 1));

        d = watchtab_take(t, 2, 0);
        ck_assert_ptr_nonnull(d);
        ck_assert_ptr_null(d->next);
        ck_assert_ptr_null(watchtab_get(t, 2));
        ck_assert_uint_eq(watchtab_n_wds(t), 1);
        ck_assert_uint_eq(watchtab_n_dirs(t), 1);
        watch_dir_free(d);

        ck_assert_int_eq(watchtab_put(t, 3, 0, _WATCH_KIND_MAX, "x", 0, 0, NULL), -EINVAL);
        ck_assert_str_eq(watch_kind_to_string(WATCH_PARENT), "parent");
        ck_assert_ptr_null(watch_kind_to_string(_WATCH_KIND_MAX));
        watchtab_free(t);
        ck_assert_ptr_null(watchtab_free(NULL));
}
END_TEST

START_TEST(test_tab_owners)
{
        struct watchtab *t = watchtab_new();
        struct watch_dir *d;

        /* One inode watched for three roots, added out of order. */
        ck_assert_int_eq(watchtab_put(t, 5, 2, WATCH_PARENT, "/data", 8, 7, NULL), 1);
        ck_assert_int_eq(watchtab_put(t, 5, 0, WATCH_RUN, "runs", 8, 7, NULL), 1);
        ck_assert_int_eq(watchtab_put(t, 5, 1, WATCH_ROOT, ".", 8, 7, NULL), 1);
        ck_assert_uint_eq(watchtab_n_wds(t), 1);
        ck_assert_uint_eq(watchtab_n_dirs(t), 3);

        d = watchtab_get(t, 5);
        ck_assert_uint_eq(d->root, 0);
        ck_assert_uint_eq(d->next->root, 1);
        ck_assert_uint_eq(d->next->next->root, 2);
        ck_assert_ptr_null(d->next->next->next);

        d = watchtab_take(t, 5, 1);
        ck_assert_str_eq(d->path, ".");
        watch_dir_free(d);
        ck_assert_uint_eq(watchtab_n_wds(t), 1);
        ck_assert_uint_eq(watchtab_get(t, 5)->next->root, 2);

        d = watchtab_take_wd(t, 5);
        ck_assert_uint_eq(d->root, 0);
        ck_assert_uint_eq(d->next->root, 2);
        watch_dir_free(d);
        ck_assert_uint_eq(watchtab_n_wds(t), 0);
        ck_assert_uint_eq(watchtab_n_dirs(t), 0);
        watchtab_free(t);
}
END_TEST

/* 20k directories, as a realistic tree; wds sequential like the kernel's,
 * then sparse ones (after years of adds the counter is anywhere), half
 * removed at random, every look-up checked against a plain array. */
START_TEST(test_tab_many)
{
        enum { N = 20000 };
        struct watchtab *t = watchtab_new();
        static int wds[2 * N];
        static bool present[2 * N];
        size_t n_present = 0;
        unsigned seed = 12345;

        for (int i = 0; i < N; i++)
                wds[i] = i + 1;
        for (int i = N; i < 2 * N; i++)
                wds[i] = (int)((unsigned)i * 2654435761u % 0x7fffffffu) | 0x40000000;
        for (int i = 0; i < 2 * N; i++) {
                char path[32];

                snprintf(path, sizeof(path), "run%d", i);
                ck_assert_int_eq(watchtab_put(t, wds[i], 0, WATCH_RUN, path, 1, (ino_t)i, NULL), 1);
                present[i] = true;
                n_present++;
        }
        ck_assert_uint_eq(watchtab_n_wds(t), 2 * N);

        for (int round = 0; round < 3 * N; round++) {
                int i = (int)(rand_r(&seed) % (2 * N));

                if (present[i]) {
                        watch_dir_free(watchtab_take(t, wds[i], 0));
                        present[i] = false;
                        n_present--;
                } else if (round % 3 == 0) {
                        ck_assert_int_eq(watchtab_put(t, wds[i], 0, WATCH_RUN, "again", 1, (ino_t)i, NULL), 1);
                        present[i] = true;
                        n_present++;
                }
        }
        ck_assert_uint_eq(watchtab_n_wds(t), n_present);
        for (int i = 0; i < 2 * N; i++) {
                struct watch_dir *d = watchtab_get(t, wds[i]);

                if (!present[i]) {
                        ck_assert_ptr_null(d);
                        continue;
                }
                ck_assert_ptr_nonnull(d);
                ck_assert_int_eq(d->wd, wds[i]);
                ck_assert_uint_eq(d->ino, (ino_t)i);
        }

        struct watchtab_iter it = {0};
        struct watch_dir *d;
        size_t seen = 0;

        while (watchtab_next(t, &it, &d))
                seen++;
        ck_assert_uint_eq(seen, n_present);
        ck_assert(!watchtab_next(t, &it, &d));
        watchtab_free(t);
}
END_TEST

START_TEST(test_tab_iter_chains)
{
        struct watchtab *t = watchtab_new();
        struct watchtab_iter it = {0};
        struct watch_dir *d;
        unsigned roots = 0;

        ck_assert(!watchtab_next(t, &it, &d));
        it = (struct watchtab_iter){0};
        watchtab_put(t, 1, 0, WATCH_ROOT, ".", 1, 1, NULL);
        watchtab_put(t, 1, 1, WATCH_RUN, "x", 1, 1, NULL);
        watchtab_put(t, 2, 1, WATCH_ROOT, ".", 1, 2, NULL);
        while (watchtab_next(t, &it, &d))
                roots |= 1u << (d->wd * 2 + (int)d->root);
        ck_assert_uint_eq(roots, (1u << 2) | (1u << 3) | (1u << 5));
        watchtab_free(t);
}
END_TEST

/* ---- dispatch ---- */

#define REC_MAX 64

struct rec_event {
        enum watch_event_kind kind;
        int wd;
        unsigned root;
        enum watch_kind dir_kind;
        char path[PATH_MAX];
        char name[NAME_MAX + 1];
        bool is_dir;
        uint32_t cookie;
        bool wd_still_in_table;
};

struct recorder {
        struct watchtab *t;         /* for dispatch tests */
        struct watcher *w;          /* for watcher tests */
        struct rec_event ev[REC_MAX];
        size_t n;
        /* test actions from inside the callback */
        int remove_wd_root_wd;
        unsigned remove_wd_root_root;
        bool add_root_2;
};

static void record(void *userdata, const struct watch_event *ev)
{
        struct recorder *rc = userdata;
        struct rec_event *r;

        ck_assert_uint_lt(rc->n, REC_MAX);
        r = &rc->ev[rc->n++];
        *r = (struct rec_event){
                .kind = ev->kind,
                .wd = ev->dir ? ev->dir->wd : -1,
                .root = ev->dir ? ev->dir->root : 0,
                .dir_kind = ev->dir ? ev->dir->kind : 0,
                .is_dir = ev->is_dir,
                .cookie = ev->cookie,
        };
        ck_assert_uint_eq(strlen(ev->name), ev->name_len);
        snprintf(r->name, sizeof(r->name), "%s", ev->name);
        if (ev->dir) {
                snprintf(r->path, sizeof(r->path), "%s", ev->dir->path);
                if (rc->t)
                        r->wd_still_in_table = watchtab_get(rc->t, ev->dir->wd) != NULL;
                else if (rc->w)
                        r->wd_still_in_table = watcher_lookup(rc->w, ev->dir->wd) != NULL;
        } else
                ck_assert_int_eq(ev->kind, WATCH_EVENT_OVERFLOW);

        /* Copy what the actions need: ev->dir may be the entry removed. */
        if (rc->t && ev->dir && ev->dir->root == 0) {
                int wd = ev->dir->wd;

                if (rc->remove_wd_root_wd == wd)
                        watch_dir_free(watchtab_take(rc->t, wd, rc->remove_wd_root_root));
                if (rc->add_root_2)
                        ck_assert_int_eq(watchtab_put(rc->t, wd, 2, WATCH_PARENT, "/p", 0, 0, NULL), 1);
        }
}

START_TEST(test_dispatch_events)
{
        struct recorder rc = { .t = watchtab_new() };
        struct buf b = { .len = 0 };
        bool overflow = false;

        watchtab_put(rc.t, 1, 0, WATCH_ROOT, ".", 1, 1, NULL);
        watchtab_put(rc.t, 2, 0, WATCH_RUN, "run", 1, 2, NULL);
        put_event(&b, 2, IN_CREATE, 0, "a.ckpt", 16);
        put_event(&b, 99, IN_CREATE, 0, "stale", 16);   /* removed watch: dropped */
        put_event(&b, 2, IN_CLOSE_WRITE, 0, "a.ckpt", 16);
        put_event(&b, 1, IN_MOVED_TO | IN_ISDIR, 5, "run2", 16);

        ck_assert_int_eq(watchtab_dispatch(rc.t, b.data, b.len, &overflow, record, &rc), 3);
        ck_assert_uint_eq(rc.n, 3);
        ck_assert_int_eq(rc.ev[0].kind, WATCH_EVENT_CREATED);
        ck_assert_str_eq(rc.ev[0].path, "run");
        ck_assert_str_eq(rc.ev[0].name, "a.ckpt");
        ck_assert_int_eq(rc.ev[0].dir_kind, WATCH_RUN);
        ck_assert_int_eq(rc.ev[1].kind, WATCH_EVENT_WRITE_DONE);
        ck_assert_int_eq(rc.ev[2].kind, WATCH_EVENT_DIR_CREATED);
        ck_assert_str_eq(rc.ev[2].path, ".");
        ck_assert_str_eq(rc.ev[2].name, "run2");
        ck_assert(rc.ev[2].is_dir);
        ck_assert_uint_eq(rc.ev[2].cookie, 5);
        ck_assert(!overflow);
        watchtab_free(rc.t);
}
END_TEST

START_TEST(test_dispatch_ignored)
{
        struct recorder rc = { .t = watchtab_new() };
        struct buf b = { .len = 0 };
        bool overflow = false;

        watchtab_put(rc.t, 3, 0, WATCH_RUN, "gone", 1, 3, NULL);
        watchtab_put(rc.t, 3, 1, WATCH_ROOT, ".", 1, 3, NULL);
        put_event(&b, 3, IN_DELETE_SELF, 0, NULL, 0);
        put_event(&b, 3, IN_IGNORED, 0, NULL, 0);
        put_event(&b, 3, IN_IGNORED, 0, NULL, 0);       /* again: nothing left */

        ck_assert_int_eq(watchtab_dispatch(rc.t, b.data, b.len, &overflow, record, &rc), 4);
        ck_assert_int_eq(rc.ev[0].kind, WATCH_EVENT_SELF_GONE);
        ck_assert(rc.ev[0].wd_still_in_table);
        ck_assert_int_eq(rc.ev[2].kind, WATCH_EVENT_IGNORED);
        ck_assert_str_eq(rc.ev[2].path, "gone");
        ck_assert_uint_eq(rc.ev[3].root, 1);
        /* The entry was gone from the table before the callback ran. */
        ck_assert(!rc.ev[2].wd_still_in_table);
        ck_assert(!rc.ev[3].wd_still_in_table);
        ck_assert_uint_eq(watchtab_n_dirs(rc.t), 0);
        watchtab_free(rc.t);
}
END_TEST

START_TEST(test_dispatch_overflow_once)
{
        struct recorder rc = { .t = watchtab_new() };
        struct buf b = { .len = 0 };
        bool overflow = false;

        watchtab_put(rc.t, 1, 0, WATCH_ROOT, ".", 1, 1, NULL);
        put_event(&b, 1, IN_CREATE, 0, "a", 16);
        put_event(&b, -1, IN_Q_OVERFLOW, 0, NULL, 0);
        put_event(&b, -1, IN_Q_OVERFLOW, 0, NULL, 0);
        ck_assert_int_eq(watchtab_dispatch(rc.t, b.data, b.len, &overflow, record, &rc), 2);
        ck_assert_int_eq(rc.ev[1].kind, WATCH_EVENT_OVERFLOW);
        ck_assert_int_eq(rc.ev[1].wd, -1);
        ck_assert(overflow);
        /* The next buffer of the same read loop. */
        ck_assert_int_eq(watchtab_dispatch(rc.t, b.data, b.len, &overflow, record, &rc), 1);
        ck_assert_uint_eq(rc.n, 3);
        ck_assert_int_eq(rc.ev[2].kind, WATCH_EVENT_CREATED);
        watchtab_free(rc.t);
}
END_TEST

START_TEST(test_dispatch_owners_change)
{
        struct recorder rc = { .t = watchtab_new() };
        struct buf b = { .len = 0 };
        bool overflow = false;

        watchtab_put(rc.t, 7, 0, WATCH_RUN, "sub", 1, 7, NULL);
        watchtab_put(rc.t, 7, 1, WATCH_ROOT, ".", 1, 7, NULL);
        put_event(&b, 7, IN_CREATE, 0, "x", 16);

        /* Both owners hear it. */
        ck_assert_int_eq(watchtab_dispatch(rc.t, b.data, b.len, &overflow, record, &rc), 2);
        ck_assert_uint_eq(rc.ev[0].root, 0);
        ck_assert_uint_eq(rc.ev[1].root, 1);

        /* The first callback removes the second owner: it hears nothing. */
        rc.n = 0;
        rc.remove_wd_root_wd = 7;
        rc.remove_wd_root_root = 1;
        ck_assert_int_eq(watchtab_dispatch(rc.t, b.data, b.len, &overflow, record, &rc), 1);
        ck_assert_uint_eq(watchtab_n_dirs(rc.t), 1);

        /* The first callback removes itself (the only owner) and that is safe. */
        rc.n = 0;
        rc.remove_wd_root_root = 0;
        ck_assert_int_eq(watchtab_dispatch(rc.t, b.data, b.len, &overflow, record, &rc), 1);
        ck_assert_uint_eq(watchtab_n_wds(rc.t), 0);

        /* A callback adds an owner with a higher root: it hears this event. */
        rc.n = 0;
        rc.remove_wd_root_wd = 0;
        rc.add_root_2 = true;
        watchtab_put(rc.t, 7, 0, WATCH_RUN, "sub", 1, 7, NULL);
        ck_assert_int_eq(watchtab_dispatch(rc.t, b.data, b.len, &overflow, record, &rc), 2);
        ck_assert_uint_eq(rc.ev[1].root, 2);
        ck_assert_int_eq(rc.ev[1].dir_kind, WATCH_PARENT);
        watchtab_free(rc.t);
}
END_TEST

START_TEST(test_dispatch_bad_buffer)
{
        struct recorder rc = { .t = watchtab_new() };
        struct buf b = { .len = 0 };
        bool overflow = false;

        watchtab_put(rc.t, 1, 0, WATCH_ROOT, ".", 1, 1, NULL);
        put_event(&b, 1, IN_CREATE, 0, "a", 16);
        put_event(&b, 1, IN_CREATE, 0, "b", 16);
        ck_assert_int_eq(watchtab_dispatch(rc.t, b.data, b.len - 3, &overflow, record, &rc), -EBADMSG);
        /* What came before the bad record was delivered. */
        ck_assert_uint_eq(rc.n, 1);
        ck_assert_str_eq(rc.ev[0].name, "a");
        watchtab_free(rc.t);
}
END_TEST

/* ---- real inotify ---- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
}

static char tmp_root[PATH_MAX];

static void tmp_setup(void)
{
        const char *base = getenv("TMPDIR");

        snprintf(tmp_root, sizeof(tmp_root), "%s/ckptd-watch-XXXXXX", base && *base ? base : "/tmp");
        ck_assert_ptr_nonnull(mkdtemp(tmp_root));
}

static void tmp_teardown(void)
{
        if (tmp_root[0])
                nftw(tmp_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        tmp_root[0] = '\0';
}

static char *tmp_path(char *buf, const char *rel)
{
        int n = snprintf(buf, PATH_MAX, "%s/%s", tmp_root, rel);

        ck_assert(n > 0 && n < PATH_MAX);
        return buf;
}

static void write_file(const char *path, const char *content)
{
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, content, strlen(content)), (ssize_t)strlen(content));
        ck_assert_int_eq(close(fd), 0);
}

static int64_t now_msec(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The decoder alone on a real inotify fd: the sequence a trainer produces. */
START_TEST(test_real_decode_sequence)
{
        static const struct {
                enum watch_event_kind kind;
                const char *name;
        } expect[] = {
                { WATCH_EVENT_CREATED, "a.ckpt" },
                { WATCH_EVENT_MODIFIED, "a.ckpt" },
                { WATCH_EVENT_WRITE_DONE, "a.ckpt" },
                { WATCH_EVENT_MOVED_IN, "b.ckpt" },
                { WATCH_EVENT_DIR_CREATED, "step-3" },
                { WATCH_EVENT_GONE, "b.ckpt" },
                { WATCH_EVENT_MOVED_IN, "c.ckpt" },
                { WATCH_EVENT_GONE, "c.ckpt" },
        };
        uint8_t buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        char p[PATH_MAX], q[PATH_MAX];
        size_t got = 0;
        uint32_t move_cookie = 0;
        int64_t deadline;
        int fd, wd;

        ck_assert_int_eq(mkdir(tmp_path(p, "w"), 0755), 0);
        ck_assert_int_eq(mkdir(tmp_path(p, "out"), 0755), 0);
        fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        ck_assert_int_ge(fd, 0);
        wd = inotify_add_watch(fd, tmp_path(p, "w"), WATCH_MASK);
        ck_assert_int_ge(wd, 1);

        write_file(tmp_path(p, "w/a.ckpt"), "weights");
        write_file(tmp_path(p, "out/b.tmp"), "weights");
        ck_assert_int_eq(rename(tmp_path(p, "out/b.tmp"), tmp_path(q, "w/b.ckpt")), 0);
        ck_assert_int_eq(mkdir(tmp_path(p, "w/step-3"), 0755), 0);
        ck_assert_int_eq(rename(tmp_path(p, "w/b.ckpt"), tmp_path(q, "w/c.ckpt")), 0);
        ck_assert_int_eq(unlink(tmp_path(p, "w/c.ckpt")), 0);

        deadline = now_msec() + 5000;
        while (got < sizeof(expect) / sizeof(expect[0])) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                int64_t left = deadline - now_msec();
                struct inotify_rec rec;
                size_t offset = 0;
                ssize_t len;
                int r;

                ck_assert_msg(left > 0, "only %zu of the expected events arrived", got);
                ck_assert_int_ge(poll(&pfd, 1, (int)left), 0);
                len = read(fd, buf, sizeof(buf));
                if (len < 0 && errno == EAGAIN)
                        continue;
                ck_assert_int_gt(len, 0);
                while ((r = inotify_next(buf, (size_t)len, &offset, &rec)) > 0) {
                        ck_assert_uint_lt(got, sizeof(expect) / sizeof(expect[0]));
                        ck_assert_int_eq(rec.wd, wd);
                        ck_assert_msg(inotify_classify(rec.mask) == expect[got].kind,
                                      "event %zu (%s): %s, expected %s", got, rec.name,
                                      watch_event_kind_to_string(inotify_classify(rec.mask)),
                                      watch_event_kind_to_string(expect[got].kind));
                        ck_assert_str_eq(rec.name, expect[got].name);
                        /* The kernel pads names (inotify(7)); we report the length. */
                        ck_assert_uint_eq(rec.name_len, strlen(expect[got].name));
                        if (got == 4)
                                ck_assert(rec.mask & IN_ISDIR);
                        if (got == 5) {
                                ck_assert(rec.mask & IN_MOVED_FROM);
                                move_cookie = rec.cookie;
                                ck_assert_uint_ne(move_cookie, 0);
                        }
                        if (got == 6)
                                ck_assert_uint_eq(rec.cookie, move_cookie);
                        got++;
                }
                ck_assert_int_eq(r, 0);
        }
        close(fd);
}
END_TEST

/* ---- daemon/watch.c ---- */

START_TEST(test_watcher_not_linked)
{
        ck_abort_msg("daemon/watch.o is not linked into check_unit: the Makefile rule needs "
                     "\"$(B)/check_unit: $(UNIT_OBJ) $(B)/daemon/watch.o $(B)/libckptd.a\"");
}
END_TEST

/* Read from the watcher until `want` callbacks were recorded, or fail at a
 * deadline. */
static void read_until(struct watcher *w, struct recorder *rc, size_t want)
{
        int64_t deadline = now_msec() + 5000;

        while (rc->n < want) {
                struct pollfd pfd = { .fd = watcher_fd(w), .events = POLLIN };
                int64_t left = deadline - now_msec();

                ck_assert_msg(left > 0, "%zu of %zu events arrived", rc->n, want);
                ck_assert_int_ge(poll(&pfd, 1, (int)left), 0);
                ck_assert_int_ge(watcher_read(w, record, rc), 0);
        }
        /* Nothing more than expected. */
        ck_assert_int_eq(watcher_read(w, record, rc), 0);
        ck_assert_uint_eq(rc->n, want);
}

/* Whether /proc/self/fdinfo of the inotify fd shows wd on inode ino
 * (proc(5): "inotify wd:%x ino:%lx sdev:%x ..."). */
static bool fdinfo_has(int ifd, int wd, ino_t ino)
{
        char path[64], line[512];
        bool found = false;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ifd);
        f = fopen(path, "re");
        ck_assert_ptr_nonnull(f);
        while (fgets(line, sizeof(line), f)) {
                int w;
                unsigned long i;

                if (sscanf(line, "inotify wd:%x ino:%lx", &w, &i) == 2 && w == wd && (ino_t)i == ino)
                        found = true;
        }
        fclose(f);
        return found;
}

static int open_path(const char *path)
{
        int fd = open(path, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

        ck_assert_int_ge(fd, 0);
        return fd;
}

START_TEST(test_watcher_tree)
{
        struct recorder rc = { .remove_wd_root_wd = 0 };
        const struct watch_dir *d;
        struct watcher *w;
        char p[PATH_MAX];
        int root_fd, wd_root, wd_run;

        ck_assert_int_eq(mkdir(tmp_path(p, "root"), 0755), 0);
        root_fd = open_path(p);
        ck_assert_int_eq(watcher_new(&w), 0);
        rc.w = w;
        wd_root = watcher_add(w, root_fd, ".", 0, WATCH_ROOT, &d);
        ck_assert_int_ge(wd_root, 1);
        ck_assert_str_eq(d->path, ".");

        /* A new run appears; the manager adds it, then scans it. */
        ck_assert_int_eq(mkdir(tmp_path(p, "root/run1"), 0755), 0);
        read_until(w, &rc, 1);
        ck_assert_int_eq(rc.ev[0].kind, WATCH_EVENT_DIR_CREATED);
        ck_assert_str_eq(rc.ev[0].path, ".");
        ck_assert_str_eq(rc.ev[0].name, "run1");

        wd_run = watcher_add_beneath(w, root_fd, "run1", 0, WATCH_RUN, NULL);
        ck_assert_int_gt(wd_run, wd_root);
        ck_assert_uint_eq(watcher_count(w), 2);
        ck_assert_str_eq(watcher_lookup(w, wd_run)->path, "run1");

        rc.n = 0;
        write_file(tmp_path(p, "root/run1/epoch=1.ckpt"), "w");
        read_until(w, &rc, 3);
        ck_assert_int_eq(rc.ev[0].kind, WATCH_EVENT_CREATED);
        ck_assert_int_eq(rc.ev[1].kind, WATCH_EVENT_MODIFIED);
        ck_assert_int_eq(rc.ev[2].kind, WATCH_EVENT_WRITE_DONE);
        ck_assert_str_eq(rc.ev[2].path, "run1");
        ck_assert_str_eq(rc.ev[2].name, "epoch=1.ckpt");
        ck_assert_int_eq(rc.ev[2].dir_kind, WATCH_RUN);

        /* The run goes away: the kernel drops its watch (IN_IGNORED). */
        rc.n = 0;
        ck_assert_int_eq(unlink(tmp_path(p, "root/run1/epoch=1.ckpt")), 0);
        ck_assert_int_eq(rmdir(tmp_path(p, "root/run1")), 0);
        read_until(w, &rc, 4);
        ck_assert_int_eq(rc.ev[0].kind, WATCH_EVENT_GONE);
        ck_assert_str_eq(rc.ev[0].path, "run1");
        /* The order of the parent's IN_DELETE and the run's own events is the
         * kernel's business; find each. */
        bool gone_in_root = false, self_gone = false, ignored = false;

        for (size_t i = 1; i < 4; i++) {
                if (rc.ev[i].kind == WATCH_EVENT_GONE && rc.ev[i].wd == wd_root) {
                        ck_assert_str_eq(rc.ev[i].name, "run1");
                        ck_assert(rc.ev[i].is_dir);
                        gone_in_root = true;
                } else if (rc.ev[i].kind == WATCH_EVENT_SELF_GONE && rc.ev[i].wd == wd_run)
                        self_gone = true;
                else if (rc.ev[i].kind == WATCH_EVENT_IGNORED && rc.ev[i].wd == wd_run) {
                        ck_assert(self_gone);
                        ck_assert(!rc.ev[i].wd_still_in_table);
                        ignored = true;
                }
        }
        ck_assert(gone_in_root && self_gone && ignored);
        ck_assert_ptr_null(watcher_lookup(w, wd_run));
        ck_assert_uint_eq(watcher_count(w), 1);

        close(root_fd);
        ck_assert_ptr_null(watcher_free(w));
        ck_assert_ptr_null(watcher_free(NULL));
}
END_TEST

START_TEST(test_watcher_refuses)
{
        struct watcher *w;
        char p[PATH_MAX], q[PATH_MAX];
        int root_fd, file_fd;

        ck_assert_int_eq(mkdir(tmp_path(p, "root"), 0755), 0);
        ck_assert_int_eq(mkdir(tmp_path(p, "elsewhere"), 0755), 0);
        ck_assert_int_eq(symlink(tmp_path(p, "elsewhere"), tmp_path(q, "root/link")), 0);
        write_file(tmp_path(p, "root/file"), "x");
        root_fd = open_path(tmp_path(p, "root"));
        ck_assert_int_eq(watcher_new(&w), 0);

        ck_assert_int_eq(watcher_add_beneath(w, root_fd, "link", 0, WATCH_RUN, NULL), -ELOOP);
        ck_assert_int_eq(watcher_add_beneath(w, root_fd, "../elsewhere", 0, WATCH_RUN, NULL), -EXDEV);
        ck_assert_int_eq(watcher_add_beneath(w, root_fd, "file", 0, WATCH_RUN, NULL), -ENOTDIR);
        ck_assert_int_eq(watcher_add_beneath(w, root_fd, "missing", 0, WATCH_RUN, NULL), -ENOENT);
        file_fd = open(tmp_path(p, "root/file"), O_PATH | O_CLOEXEC);
        ck_assert_int_eq(watcher_add(w, file_fd, "file", 0, WATCH_RUN, NULL), -ENOTDIR);
        ck_assert_int_eq(watcher_add(w, -1, "x", 0, WATCH_RUN, NULL), -EINVAL);
        ck_assert_uint_eq(watcher_count(w), 0);
        ck_assert_int_eq(watcher_remove(w, 1, 0), -ENOENT);
        ck_assert_int_eq(watcher_remove_wd(w, 1), -ENOENT);
        close(file_fd);
        close(root_fd);
        watcher_free(w);
}
END_TEST

/* The watch lands on the directory the fd refers to, even after its path was
 * swapped for a symlink, and not on the /proc magic link (IN_DONT_FOLLOW). */
START_TEST(test_watcher_fd_target)
{
        struct recorder rc = { .remove_wd_root_wd = 0 };
        const struct watch_dir *d;
        struct watcher *w;
        char p[PATH_MAX], q[PATH_MAX];
        struct stat st;
        int run_fd, wd;

        ck_assert_int_eq(mkdir(tmp_path(p, "run"), 0755), 0);
        ck_assert_int_eq(mkdir(tmp_path(p, "decoy"), 0755), 0);
        run_fd = open_path(tmp_path(p, "run"));
        ck_assert_int_eq(fstat(run_fd, &st), 0);

        /* Between open and watch, the run is renamed and its name becomes a
         * symlink to another directory. */
        ck_assert_int_eq(rename(tmp_path(p, "run"), tmp_path(q, "run.old")), 0);
        ck_assert_int_eq(symlink(tmp_path(p, "decoy"), tmp_path(q, "run")), 0);

        ck_assert_int_eq(watcher_new(&w), 0);
        rc.w = w;
        wd = watcher_add(w, run_fd, "run", 0, WATCH_RUN, &d);
        ck_assert_int_ge(wd, 1);
        ck_assert_uint_eq(d->ino, st.st_ino);
        ck_assert_uint_eq(d->dev, st.st_dev);
        ck_assert(fdinfo_has(watcher_fd(w), wd, st.st_ino));

        write_file(tmp_path(p, "decoy/x"), "x");
        write_file(tmp_path(p, "run.old/y"), "y");
        read_until(w, &rc, 3);
        for (size_t i = 0; i < rc.n; i++)
                ck_assert_str_eq(rc.ev[i].name, "y");
        close(run_fd);
        watcher_free(w);
}
END_TEST

/* One directory, two roots: one kernel watch, two entries, both hear events;
 * the kernel watch lives until its last owner goes. */
START_TEST(test_watcher_shared)
{
        struct recorder rc = { .remove_wd_root_wd = 0 };
        const struct watch_dir **list;
        struct watcher *w;
        char p[PATH_MAX];
        struct stat st;
        size_t n;
        int outer_fd, inner_fd, wd_outer, wd_a, wd_b;

        ck_assert_int_eq(mkdir(tmp_path(p, "outer"), 0755), 0);
        ck_assert_int_eq(mkdir(tmp_path(p, "outer/inner"), 0755), 0);
        ck_assert_int_eq(mkdir(tmp_path(p, "outer/inner/sub"), 0755), 0);
        outer_fd = open_path(tmp_path(p, "outer"));
        inner_fd = open_path(tmp_path(p, "outer/inner"));
        ck_assert_int_eq(fstat(inner_fd, &st), 0);

        ck_assert_int_eq(watcher_new(&w), 0);
        rc.w = w;
        wd_outer = watcher_add(w, outer_fd, ".", 0, WATCH_ROOT, NULL);
        wd_a = watcher_add_beneath(w, outer_fd, "inner", 0, WATCH_RUN, NULL);
        ck_assert_int_gt(watcher_add_beneath(w, outer_fd, "inner/sub", 0, WATCH_RUN, NULL), 0);
        wd_b = watcher_add(w, inner_fd, ".", 1, WATCH_ROOT, NULL);
        ck_assert_int_eq(wd_a, wd_b);
        ck_assert_uint_eq(watcher_count(w), 4);
        /* Adding the same again changes nothing. */
        ck_assert_int_eq(watcher_add(w, inner_fd, ".", 1, WATCH_ROOT, NULL), wd_b);
        ck_assert_uint_eq(watcher_count(w), 4);

        write_file(tmp_path(p, "outer/inner/z"), "z");
        read_until(w, &rc, 6);
        ck_assert_uint_eq(rc.ev[0].root, 0);
        ck_assert_str_eq(rc.ev[0].path, "inner");
        ck_assert_uint_eq(rc.ev[1].root, 1);
        ck_assert_str_eq(rc.ev[1].path, ".");

        ck_assert_int_eq(watcher_list_root(w, 0, &list, &n), 0);
        ck_assert_uint_eq(n, 3);
        free(list);

        /* Root 0 removed (reload): root 1 keeps the kernel watch. */
        ck_assert_int_eq(watcher_remove_root(w, 0), 3);
        ck_assert_uint_eq(watcher_count(w), 1);
        ck_assert_ptr_null(watcher_lookup(w, wd_outer));
        ck_assert(fdinfo_has(watcher_fd(w), wd_b, st.st_ino));
        rc.n = 0;
        ck_assert_int_eq(unlink(tmp_path(p, "outer/inner/z")), 0);
        write_file(tmp_path(p, "outer/new"), "n");  /* no longer watched */
        read_until(w, &rc, 1);
        ck_assert_int_eq(rc.ev[0].kind, WATCH_EVENT_GONE);
        ck_assert_uint_eq(rc.ev[0].root, 1);

        /* The last owner goes: so does the kernel watch. */
        ck_assert_int_eq(watcher_remove(w, wd_b, 1), 0);
        ck_assert(!fdinfo_has(watcher_fd(w), wd_b, st.st_ino));
        ck_assert_uint_eq(watcher_count(w), 0);
        close(outer_fd);
        close(inner_fd);
        watcher_free(w);
}
END_TEST

START_TEST(test_watcher_remove_below)
{
        static const char *const dirs[] = { "a", "a/b", "a/b/c", "ab", "x" };
        const struct watch_dir **list;
        struct watcher *w;
        char p[PATH_MAX], parent[PATH_MAX];
        size_t n;
        int root_fd, parent_fd;

        ck_assert_int_eq(mkdir(tmp_path(p, "root"), 0755), 0);
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
                char rel[PATH_MAX];

                snprintf(rel, sizeof(rel), "root/%s", dirs[i]);
                ck_assert_int_eq(mkdir(tmp_path(p, rel), 0755), 0);
        }
        root_fd = open_path(tmp_path(p, "root"));
        parent_fd = open_path(tmp_root);
        ck_assert_int_eq(watcher_new(&w), 0);
        ck_assert_int_gt(watcher_add(w, root_fd, ".", 0, WATCH_ROOT, NULL), 0);
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
                ck_assert_int_gt(watcher_add_beneath(w, root_fd, dirs[i], 0, WATCH_RUN, NULL), 0);
        snprintf(parent, sizeof(parent), "%s", tmp_root);
        ck_assert_int_gt(watcher_add(w, parent_fd, parent, 0, WATCH_PARENT, NULL), 0);
        ck_assert_uint_eq(watcher_count(w), 7);

        /* "a" and below, not "ab". */
        ck_assert_int_eq(watcher_remove_below(w, 0, "a"), 3);
        ck_assert_int_eq(watcher_list_root(w, 0, &list, &n), 0);
        ck_assert_uint_eq(n, 4);
        for (size_t i = 0; i < n; i++)
                ck_assert(strcmp(list[i]->path, "a") != 0 && strncmp(list[i]->path, "a/", 2) != 0);
        free(list);
        ck_assert_int_eq(watcher_remove_below(w, 1, "."), 0);
        /* "." is the whole root but not the parent watch. */
        ck_assert_int_eq(watcher_remove_below(w, 0, "."), 3);
        ck_assert_uint_eq(watcher_count(w), 1);
        close(root_fd);
        close(parent_fd);
        watcher_free(w);
}
END_TEST

static int read_proc_int(const char *path)
{
        FILE *f = fopen(path, "re");
        int v = -1;

        if (!f)
                return -1;
        if (fscanf(f, "%d", &v) != 1)
                v = -1;
        fclose(f);
        return v;
}

struct counter {
        size_t overflow, other;
};

static void count(void *userdata, const struct watch_event *ev)
{
        struct counter *c = userdata;

        if (ev->kind == WATCH_EVENT_OVERFLOW) {
                ck_assert_ptr_null(ev->dir);
                c->overflow++;
        } else
                c->other++;
}

/* Fill the kernel queue past max_queued_events: one OVERFLOW per read. */
START_TEST(test_watcher_overflow)
{
        int max = read_proc_int("/proc/sys/fs/inotify/max_queued_events");
        struct counter c = { 0, 0 };
        struct watcher *w;
        int dir_fd, r;

        if (max <= 0 || max > 200000) {
                fprintf(stderr, "check_watch: max_queued_events=%d, overflow test skipped\n", max);
                return;
        }
        ck_assert_int_eq(watcher_new(&w), 0);
        dir_fd = open_path(tmp_root);
        ck_assert_int_gt(watcher_add(w, dir_fd, ".", 0, WATCH_ROOT, NULL), 0);
        /* mkdir queues one event each, with distinct names so that the
         * kernel cannot merge them. */
        for (int i = 0; i < max + 100; i++) {
                char name[32];

                snprintf(name, sizeof(name), "d%d", i);
                ck_assert_int_eq(mkdirat(dir_fd, name, 0755), 0);
        }
        /* watcher_read() stops after a bounded number of reads; drain. */
        while ((r = watcher_read(w, count, &c)) > 0)
                ;
        ck_assert_int_eq(r, 0);
        ck_assert_uint_eq(c.overflow, 1);
        ck_assert_uint_eq(c.other, (size_t)max);
        close(dir_fd);
        watcher_free(w);
}
END_TEST

static void reenter(void *userdata, const struct watch_event *ev)
{
        struct recorder *rc = userdata;

        (void)ev;
        ck_assert_int_eq(watcher_read(rc->w, reenter, rc), -EBUSY);
        rc->n++;
}

START_TEST(test_watcher_read_busy)
{
        struct recorder rc = { .remove_wd_root_wd = 0 };
        struct watcher *w;
        char p[PATH_MAX];
        int dir_fd;

        ck_assert_int_eq(watcher_new(&w), 0);
        rc.w = w;
        dir_fd = open_path(tmp_root);
        ck_assert_int_gt(watcher_add(w, dir_fd, ".", 0, WATCH_ROOT, NULL), 0);
        ck_assert_int_eq(watcher_read(w, reenter, &rc), 0);
        ck_assert_int_eq(mkdir(tmp_path(p, "d"), 0755), 0);
        ck_assert_int_eq(watcher_read(w, reenter, &rc), 1);
        ck_assert_uint_eq(rc.n, 1);
        close(dir_fd);
        watcher_free(w);
}
END_TEST

Suite *watch_suite(void)
{
        Suite *s = suite_create("watch");
        TCase *tc;

        tc = tcase_create("decode");
        tcase_add_test(tc, test_decode_empty);
        tcase_add_test(tc, test_decode_multiple);
        tcase_add_test(tc, test_decode_unaligned);
        tcase_add_test(tc, test_decode_truncated_header);
        tcase_add_test(tc, test_decode_truncated_name);
        tcase_add_test(tc, test_decode_huge_len);
        tcase_add_test(tc, test_decode_name_without_nul);
        tcase_add_test(tc, test_decode_zero_length_names);
        tcase_add_test(tc, test_decode_overflow);
        tcase_add_test(tc, test_decode_bad_offset);
        tcase_add_test(tc, test_classify);
        suite_add_tcase(s, tc);

        tc = tcase_create("watchtab");
        tcase_add_test(tc, test_tab_basic);
        tcase_add_test(tc, test_tab_owners);
        tcase_add_test(tc, test_tab_many);
        tcase_add_test(tc, test_tab_iter_chains);
        tcase_add_test(tc, test_dispatch_events);
        tcase_add_test(tc, test_dispatch_ignored);
        tcase_add_test(tc, test_dispatch_overflow_once);
        tcase_add_test(tc, test_dispatch_owners_change);
        tcase_add_test(tc, test_dispatch_bad_buffer);
        suite_add_tcase(s, tc);

        tc = tcase_create("inotify");
        tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
        tcase_add_test(tc, test_real_decode_sequence);
        suite_add_tcase(s, tc);

        tc = tcase_create("watcher");
        tcase_set_timeout(tc, 120); /* the overflow case makes 16k directories: slow on a loaded disk */
        if (watcher_new) {
                tcase_add_checked_fixture(tc, tmp_setup, tmp_teardown);
                tcase_add_test(tc, test_watcher_tree);
                tcase_add_test(tc, test_watcher_refuses);
                tcase_add_test(tc, test_watcher_fd_target);
                tcase_add_test(tc, test_watcher_shared);
                tcase_add_test(tc, test_watcher_remove_below);
                tcase_add_test(tc, test_watcher_overflow);
                tcase_add_test(tc, test_watcher_read_busy);
        } else
                tcase_add_test(tc, test_watcher_not_linked);
        suite_add_tcase(s, tc);
        return s;
}
