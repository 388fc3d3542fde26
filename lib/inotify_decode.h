/* Pure decoding of what read(2) returns from an inotify fd, and a classifier
 * of event masks. No syscalls: the fuzzer (tests/fuzz/fuzz_inotify.c) feeds
 * it arbitrary bytes. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/inotify.h>

/* One event record; name points into the caller's buffer. */
struct inotify_rec {
        int wd; /* -1 for IN_Q_OVERFLOW */
        uint32_t mask;
        uint32_t cookie;  /* pairs IN_MOVED_FROM with IN_MOVED_TO */
        const char *name; /* NUL-terminated; "" when the event has no name */
        size_t name_len;  /* strlen(name), without the padding */
};

/* Decode the record at *offset of buf[0..len). Returns 1 and advances
 * *offset past it, 0 at the end of the buffer, -EBADMSG when a header or a
 * name runs past the end or a name has no NUL, -EINVAL when *offset > len.
 * On error *offset and *ret are left alone. */
int inotify_next(const uint8_t *buf, size_t len, size_t *offset, struct inotify_rec *ret);

/* What an event means to the daemon, from the most to the least urgent. */
enum watch_event_kind {
        WATCH_EVENT_OVERFLOW,    /* IN_Q_OVERFLOW: events were lost, rescan */
        WATCH_EVENT_IGNORED,     /* IN_IGNORED: the kernel dropped the watch */
        WATCH_EVENT_SELF_GONE,   /* the watched directory was deleted, moved or unmounted */
        WATCH_EVENT_DIR_CREATED, /* a subdirectory was created or moved in */
        WATCH_EVENT_WRITE_DONE,  /* IN_CLOSE_WRITE of a file */
        WATCH_EVENT_MOVED_IN,    /* a file was renamed into the directory */
        WATCH_EVENT_CREATED,     /* a file was created: a checkpoint starts being written */
        WATCH_EVENT_MODIFIED,    /* a file was written to */
        WATCH_EVENT_GONE,        /* an entry was deleted or moved away */
        WATCH_EVENT_OTHER,
        _WATCH_EVENT_KIND_MAX,
};

/* Classify an event mask; the first matching kind in enum order wins. */
enum watch_event_kind inotify_classify(uint32_t mask);
/* "overflow", "ignored", ...; NULL when out of range. */
const char *watch_event_kind_to_string(enum watch_event_kind k);
