/* The daemon's inotify layer: one inotify fd and the table of what each
 * watch descriptor stands for. Free of sd-event and of policy: the manager
 * adds watcher_fd() to its loop and decides what events mean. */
#pragma once

#include <stddef.h>

#include "watchtab.h"

/* Events a root or run watch asks for. inotify(7) adds IN_IGNORED,
 * IN_Q_OVERFLOW and IN_UNMOUNT by itself. No IN_DONT_FOLLOW: see
 * watcher_add() in watch.c. IN_ATTRIB: a chown(2) or utimensat(2) of a
 * checkpoint changes its owner or mtime, which the decision reads, and
 * raises nothing else. */
#define WATCH_MASK                                                                                                     \
        (IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF |        \
         IN_MODIFY | IN_ATTRIB | IN_ONLYDIR | IN_EXCL_UNLINK)
/* A root's parent is watched for the root's name coming and going only: not
 * for writes to its other files (a training log, TensorBoard's events file
 * beside a checkpoints directory), each of which would wake the daemon.
 * Masks are only ever added to (IN_MASK_ADD): a parent that was also a root
 * or run of another watch keeps that one's events until its watch goes. */
#define WATCH_PARENT_MASK                                                                                              \
        (IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct watcher;

/* Create the inotify fd (IN_NONBLOCK|IN_CLOEXEC) and an empty table.
 * -EMFILE when max_user_instances is reached. */
int watcher_new(struct watcher **ret);
/* Close the fd (the kernel drops every watch) and free the table; takes NULL,
 * returns NULL. */
struct watcher *watcher_free(struct watcher *w);
/* The inotify fd, for the event loop (EPOLLIN, level-triggered). */
int watcher_fd(const struct watcher *w);
/* Whether events wait to be read (false when that cannot be told, and
 * without a watcher: a manager driven by a unit test). */
bool watcher_readable(const struct watcher *w);

/* Watch the directory open at dir_fd (O_PATH is enough) as `path` of `root`
 * (see struct watch_dir for what path holds per kind). Re-adding the same
 * (inode, root) updates the path. Returns the wd (> 0); -ENOSPC at the
 * max_user_watches limit (poll instead); -ENOTDIR; -errno. *ret may be NULL. */
int watcher_add(struct watcher *w, int dir_fd, const char *path, unsigned root, enum watch_kind kind,
                const struct watch_dir **ret);
/* Open rel_path beneath root_fd with openat_beneath() (lib/scan.h: -ELOOP for
 * a symlink, -EXDEV across a mount or out of the root) and watcher_add() it
 * with path rel_path. */
int watcher_add_beneath(struct watcher *w, int root_fd, const char *rel_path, unsigned root, enum watch_kind kind,
                        const struct watch_dir **ret);

/* The first owner of wd (->next: the others), or NULL. */
const struct watch_dir *watcher_lookup(const struct watcher *w, int wd);
/* Stop watching wd for root; the kernel watch goes when no root is left.
 * -ENOENT when not watched. */
int watcher_remove(struct watcher *w, int wd, unsigned root);
/* Stop watching wd for every root. -ENOENT when not watched. */
int watcher_remove_wd(struct watcher *w, int wd);
/* Remove every watch of root (reload). Returns how many, or -ENOMEM. */
int watcher_remove_root(struct watcher *w, unsigned root);
/* Remove the RUN/CKPT watches of root at rel_path and below it: a directory
 * moved away keeps its watches, which would report its new place under its
 * old path. Returns how many, or -ENOMEM. */
int watcher_remove_below(struct watcher *w, unsigned root, const char *rel_path);
/* The entries of root in *ret (malloc'd array, free() it; entries stay owned
 * by the watcher) and their number in *ret_n. */
int watcher_list_root(const struct watcher *w, unsigned root, const struct watch_dir ***ret, size_t *ret_n);
/* Watched (wd, root) pairs. */
size_t watcher_count(const struct watcher *w);

/* Read everything queued (until a read leaves the queue empty, or a bounded
 * number of reads so that a flood of events cannot starve the loop; the fd
 * then stays readable) and
 * call cb for each event. OVERFLOW comes at most once per call. cb must not
 * call watcher_read (-EBUSY). Returns the number of callbacks, -EBADMSG on
 * an undecodable buffer (treat as overflow: rescan), or -errno. */
int watcher_read(struct watcher *w, watch_event_fn *cb, void *userdata);
