#include "CPlatform_inotify.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

_Static_assert(DP_IN_ATTRIB == IN_ATTRIB, "IN_ATTRIB");
_Static_assert(DP_IN_CLOSE_WRITE == IN_CLOSE_WRITE, "IN_CLOSE_WRITE");
_Static_assert(DP_IN_MOVED_FROM == IN_MOVED_FROM, "IN_MOVED_FROM");
_Static_assert(DP_IN_MOVED_TO == IN_MOVED_TO, "IN_MOVED_TO");
_Static_assert(DP_IN_CREATE == IN_CREATE, "IN_CREATE");
_Static_assert(DP_IN_DELETE == IN_DELETE, "IN_DELETE");
_Static_assert(DP_IN_DELETE_SELF == IN_DELETE_SELF, "IN_DELETE_SELF");
_Static_assert(DP_IN_MOVE_SELF == IN_MOVE_SELF, "IN_MOVE_SELF");
_Static_assert(DP_IN_UNMOUNT == IN_UNMOUNT, "IN_UNMOUNT");
_Static_assert(DP_IN_Q_OVERFLOW == IN_Q_OVERFLOW, "IN_Q_OVERFLOW");
_Static_assert(DP_IN_IGNORED == IN_IGNORED, "IN_IGNORED");
_Static_assert(DP_IN_ISDIR == IN_ISDIR, "IN_ISDIR");

int dp_inotify_open(void) {
    return inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
}

int dp_inotify_watch_directory(int fd, const char *path) {
    uint32_t mask = IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_DELETE | IN_ATTRIB
        | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
    return inotify_add_watch(fd, path, mask);
}

int dp_inotify_unwatch(int fd, int wd) {
    return inotify_rm_watch(fd, wd);
}

size_t dp_inotify_next(const char *buffer, size_t length, size_t offset, dp_inotify_event *event) {
    size_t header = sizeof(struct inotify_event);
    if (offset >= length || length - offset < header) return 0;
    struct inotify_event raw;
    memcpy(&raw, buffer + offset, header);
    if (length - offset - header < raw.len) return 0;
    event->wd = raw.wd;
    event->mask = raw.mask;
    /* The kernel pads the name with NULs to the record's length. */
    event->name = raw.len > 0 ? buffer + offset + header : "";
    return offset + header + raw.len;
}

int dp_wake_open(void) {
    return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

void dp_wake_signal(int fd) {
    uint64_t one = 1;
    ssize_t written = write(fd, &one, sizeof one);
    (void)written; /* EAGAIN: the counter is already non-zero, which is all a wake-up needs */
}

void dp_wake_drain(int fd) {
    uint64_t count;
    ssize_t got = read(fd, &count, sizeof count);
    (void)got; /* EAGAIN: already empty */
}

int dp_inotify_wait(int fd, int wake_fd, int timeout_ms) {
    struct pollfd fds[2] = {
        { .fd = fd, .events = POLLIN },
        { .fd = wake_fd, .events = POLLIN },
    };
    int count = poll(fds, 2, timeout_ms);
    if (count < 0) return errno == EINTR ? 0 : -1;
    int result = 0;
    if (fds[0].revents) result |= 1;
    if (fds[1].revents) result |= 2;
    return result;
}
