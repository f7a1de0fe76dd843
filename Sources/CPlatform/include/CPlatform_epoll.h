/*
 * epoll for the parked-socket watcher (Sessions/ParkedSocketWatcher.swift).
 * Swift's Glibc module does not export <sys/epoll.h>, and struct epoll_event
 * is packed on x86-64, so the daemon reaches epoll through these few calls.
 */
#ifndef DTLS_PROXYD_CEPOLL_H
#define DTLS_PROXYD_CEPOLL_H

/* epoll_create1(EPOLL_CLOEXEC): an epoll instance, or -1 with errno set. */
int dp_epoll_create(void);

/* Watches `fd` for one readiness report (EPOLLIN, errors included) with
 * EPOLLONESHOT: after it fires, `fd` stays in the set, disabled, until
 * dp_epoll_forget. 0, or -1 with errno set. */
int dp_epoll_watch_once(int epfd, int fd);

/* Removes `fd` from the set. 0, or -1 with errno set (ENOENT if absent). */
int dp_epoll_forget(int epfd, int fd);

/* Waits up to `timeout_ms` (-1: forever) and stores the descriptors that
 * became ready in `fds`, at most `max`. Their count, or -1 with errno set. */
int dp_epoll_wait_fds(int epfd, int *fds, int max, int timeout_ms);

#endif
