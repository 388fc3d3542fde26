/* Decoding of inotify read(2) buffers; see inotify(7), "Reading events from
 * an inotify file descriptor". Everything here is pure so that it can be
 * fuzzed: the buffer is untrusted bytes of any length and alignment. */
#include <errno.h>
#include <string.h>

#include "inotify_decode.h"
#include "macro.h"

int inotify_next(const uint8_t *buf, size_t len, size_t *offset, struct inotify_rec *ret)
{
        struct inotify_event ev;
        size_t off = *offset, left;
        const char *name;
        size_t name_len;

        if (off > len)
                return -EINVAL;
        if (off == len)
                return 0;

        /* The kernel only ever returns whole events (a read(2) too small for
         * the next one fails with EINVAL), so a partial header is garbage. */
        left = len - off;
        if (left < sizeof(ev))
                return -EBADMSG;

        /* inotify(7) pads names so that records after the first are aligned
         * when the buffer is, but a fuzzer's buffer is not: copy the header
         * instead of casting. */
        memcpy(&ev, buf + off, sizeof(ev));
        left -= sizeof(ev);
        if (ev.len > left)
                return -EBADMSG;

        if (ev.len == 0) {
                name = "";
                name_len = 0;
        } else {
                /* inotify(7): "len counts all of the bytes in name, including
                 * the null bytes", i.e. the name is NUL-terminated and padded
                 * with NULs. Without a NUL the record is not the kernel's;
                 * refusing it lets callers use name as a C string. */
                name = (const char *)buf + off + sizeof(ev);
                name_len = strnlen(name, ev.len);
                if (name_len == ev.len)
                        return -EBADMSG;
        }

        *ret = (struct inotify_rec){
                .wd = ev.wd,
                .mask = ev.mask,
                .cookie = ev.cookie,
                .name = name,
                .name_len = name_len,
        };
        *offset = off + sizeof(ev) + ev.len;
        return 1;
}

enum watch_event_kind inotify_classify(uint32_t mask)
{
        /* IN_Q_OVERFLOW comes with wd -1 and no other bit; IN_IGNORED follows
         * IN_DELETE_SELF and IN_UNMOUNT, or an inotify_rm_watch(2) (inotify(7)).
         * They are tested first so that no odd combination hides them. */
        if (mask & IN_Q_OVERFLOW)
                return WATCH_EVENT_OVERFLOW;
        if (mask & IN_IGNORED)
                return WATCH_EVENT_IGNORED;
        if (mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_UNMOUNT))
                return WATCH_EVENT_SELF_GONE;
        if ((mask & IN_ISDIR) && (mask & (IN_CREATE | IN_MOVED_TO)))
                return WATCH_EVENT_DIR_CREATED;
        if (mask & IN_CLOSE_WRITE)
                return WATCH_EVENT_WRITE_DONE;
        if (mask & IN_MOVED_TO)
                return WATCH_EVENT_MOVED_IN;
        if (mask & IN_CREATE)
                return WATCH_EVENT_CREATED;
        if (mask & IN_MODIFY)
                return WATCH_EVENT_MODIFIED;
        if (mask & (IN_DELETE | IN_MOVED_FROM))
                return WATCH_EVENT_GONE;
        return WATCH_EVENT_OTHER;
}

static const char *const watch_event_kind_table[_WATCH_EVENT_KIND_MAX] = {
        [WATCH_EVENT_OVERFLOW] = "overflow",
        [WATCH_EVENT_IGNORED] = "ignored",
        [WATCH_EVENT_SELF_GONE] = "self-gone",
        [WATCH_EVENT_DIR_CREATED] = "dir-created",
        [WATCH_EVENT_WRITE_DONE] = "write-done",
        [WATCH_EVENT_MOVED_IN] = "moved-in",
        [WATCH_EVENT_CREATED] = "created",
        [WATCH_EVENT_MODIFIED] = "modified",
        [WATCH_EVENT_GONE] = "gone",
        [WATCH_EVENT_OTHER] = "other",
};

const char *watch_event_kind_to_string(enum watch_event_kind k)
{
        if ((unsigned)k >= ELEMENTSOF(watch_event_kind_table))
                return NULL;
        return watch_event_kind_table[k];
}
