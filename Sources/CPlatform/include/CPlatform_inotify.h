/*
 * inotify for reload_on_change (Daemon/ConfigFileWatcher.swift). Swift's Glibc
 * module does not export <sys/inotify.h> or <sys/eventfd.h>, and struct
 * inotify_event ends in a flexible array, so the watcher reaches both through
 * these few calls. The DP_IN_* values are the kernel's IN_* bits (inotify.c
 * checks that they agree).
 */
#ifndef DTLS_PROXYD_CINOTIFY_H
#define DTLS_PROXYD_CINOTIFY_H

#include <stddef.h>
#include <stdint.h>

#define DP_IN_ATTRIB      0x00000004u
#define DP_IN_CLOSE_WRITE 0x00000008u
#define DP_IN_MOVED_FROM  0x00000040u
#define DP_IN_MOVED_TO    0x00000080u
#define DP_IN_CREATE      0x00000100u
#define DP_IN_DELETE      0x00000200u
#define DP_IN_DELETE_SELF 0x00000400u
#define DP_IN_MOVE_SELF   0x00000800u
#define DP_IN_UNMOUNT     0x00002000u
#define DP_IN_Q_OVERFLOW  0x00004000u
#define DP_IN_IGNORED     0x00008000u
#define DP_IN_ISDIR       0x40000000u

/* inotify_init1(IN_NONBLOCK | IN_CLOEXEC): an instance, or -1 with errno set. */
int dp_inotify_open(void);

/* Watches the directory `path` (IN_ONLYDIR: ENOTDIR when it is not one) for
 * what replaces or changes a file in it:
 * IN_CREATE, IN_MOVED_TO, IN_MOVED_FROM, IN_CLOSE_WRITE, IN_DELETE, IN_ATTRIB,
 * and for its own removal (IN_DELETE_SELF, IN_MOVE_SELF). A watch
 * descriptor, or -1 with errno set (ENOSPC: fs.inotify.max_user_watches). */
int dp_inotify_watch_directory(int fd, const char *path);

/* inotify_rm_watch. 0, or -1 with errno set. */
int dp_inotify_unwatch(int fd, int wd);

/* One event of a buffer read from an inotify descriptor. `name` points into
 * that buffer (NUL-terminated; "" for an event about the directory itself). */
typedef struct {
    int wd;
    uint32_t mask;
    const char *name;
} dp_inotify_event;

/* Decodes the event at `offset` of the `length` bytes in `buffer` into
 * `event`; returns the offset of the next one, or 0 when none is left (or the
 * rest is truncated). */
size_t dp_inotify_next(const char *buffer, size_t length, size_t offset, dp_inotify_event *event);

/* eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), to wake the watcher's thread. */
int dp_wake_open(void);

/* Adds 1 to the eventfd `fd`. */
void dp_wake_signal(int fd);

/* Empties the eventfd `fd`. */
void dp_wake_drain(int fd);

/* poll() on `fd` and `wake_fd` for up to `timeout_ms` (-1: forever):
 * bit 1 when `fd` is readable (or in error), bit 2 when `wake_fd` is;
 * 0 on timeout or EINTR; -1 with errno set on another error. */
int dp_inotify_wait(int fd, int wake_fd, int timeout_ms);

#endif
