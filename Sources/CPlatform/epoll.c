#include "CPlatform_epoll.h"

#include <sys/epoll.h>

int dp_epoll_create(void) {
    return epoll_create1(EPOLL_CLOEXEC);
}

int dp_epoll_watch_once(int epfd, int fd) {
    struct epoll_event event = { .events = EPOLLIN | EPOLLONESHOT, .data = { .fd = fd } };
    return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event);
}

int dp_epoll_forget(int epfd, int fd) {
    struct epoll_event unused = { 0 };
    return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, &unused);
}

int dp_epoll_wait_fds(int epfd, int *fds, int max, int timeout_ms) {
    struct epoll_event events[64];
    if (max > 64) max = 64;
    int count = epoll_wait(epfd, events, max, timeout_ms);
    for (int i = 0; i < count; i++) fds[i] = events[i].data.fd;
    return count;
}
