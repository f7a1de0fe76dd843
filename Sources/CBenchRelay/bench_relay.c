#define _GNU_SOURCE
#include "bench_relay.h"

#include <signal.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

enum { BATCH = 32, SLOT = 2048, TABLE = 65536 };

/* One peer: its address and the socket connected to the backend for it. */
struct peer {
    struct sockaddr_in address;
    int backend_fd;
    int used;
};

static struct peer peers[TABLE];          /* open addressing by address+port */
static struct peer *by_fd[TABLE * 2];     /* backend socket -> peer */
static char storage[BATCH][SLOT];
static struct iovec iovecs[BATCH];
static struct sockaddr_in names[BATCH];
static struct mmsghdr headers[BATCH];

static int make_socket(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int size = 4 << 20;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    }
    return fd;
}

static struct sockaddr_in loopback(uint16_t port) {
    struct sockaddr_in address;
    memset(&address, 0, sizeof address);
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return address;
}

static struct peer *peer_for(const struct sockaddr_in *address, int epoll_fd, const struct sockaddr_in *backend) {
    uint32_t hash = (address->sin_addr.s_addr * 2654435761u) ^ address->sin_port;
    for (uint32_t probe = 0; probe < TABLE; probe++) {
        struct peer *entry = &peers[(hash + probe) % TABLE];
        if (entry->used && entry->address.sin_addr.s_addr == address->sin_addr.s_addr
            && entry->address.sin_port == address->sin_port) {
            return entry;
        }
        if (!entry->used) {
            int fd = make_socket();
            if (fd < 0 || fd >= TABLE * 2 || connect(fd, (const struct sockaddr *)backend, sizeof *backend) != 0) {
                if (fd >= 0) close(fd);
                return NULL;
            }
            struct epoll_event event = { .events = EPOLLIN, .data.fd = fd };
            epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
            entry->used = 1;
            entry->address = *address;
            entry->backend_fd = fd;
            by_fd[fd] = entry;
            return entry;
        }
    }
    return NULL;
}

static void prepare(int index, size_t length) {
    iovecs[index].iov_base = storage[index];
    iovecs[index].iov_len = length;
    memset(&headers[index], 0, sizeof headers[index]);
    headers[index].msg_hdr.msg_iov = &iovecs[index];
    headers[index].msg_hdr.msg_iovlen = 1;
    headers[index].msg_hdr.msg_name = &names[index];
    headers[index].msg_hdr.msg_namelen = sizeof names[index];
}

static void send_all(int fd, int count) {
    int sent = 0;
    while (sent < count) {
        int result = sendmmsg(fd, headers + sent, (unsigned)(count - sent), 0);
        if (result <= 0) return;
        sent += result;
    }
}

/* Set by SIGUSR1 when the relay was given a second backend: see bench_relay_run_switching. */
static volatile sig_atomic_t switch_requested = 0;
static void request_switch(int signal_number) {
    (void)signal_number;
    switch_requested = 1;
}

/* Every peer gets a new socket (a new source port) connected to `backend`: to
 * the far side it looks like a NAT rebinding every flow, as a balancer that
 * hashed the new 5-tuples elsewhere would see it. */
static void switch_peers(int epoll_fd, const struct sockaddr_in *backend) {
    for (uint32_t index = 0; index < TABLE; index++) {
        struct peer *entry = &peers[index];
        if (!entry->used) continue;
        int fd = make_socket();
        if (fd < 0 || fd >= TABLE * 2 || connect(fd, (const struct sockaddr *)backend, sizeof *backend) != 0) {
            if (fd >= 0) close(fd);
            continue;
        }
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, entry->backend_fd, NULL);
        by_fd[entry->backend_fd] = NULL;
        close(entry->backend_fd);
        struct epoll_event event = { .events = EPOLLIN, .data.fd = fd };
        epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
        entry->backend_fd = fd;
        by_fd[fd] = entry;
    }
}

int bench_relay_run(uint16_t listen_port, uint16_t backend_port) {
    return bench_relay_run_switching(listen_port, backend_port, 0);
}

int bench_relay_run_switching(uint16_t listen_port, uint16_t backend_port, uint16_t second_backend_port) {
    struct sockaddr_in listen_address = loopback(listen_port);
    struct sockaddr_in backend = loopback(backend_port);
    if (second_backend_port != 0) signal(SIGUSR1, request_switch);
    int listener = make_socket();
    if (listener < 0 || bind(listener, (struct sockaddr *)&listen_address, sizeof listen_address) != 0) return -1;
    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd < 0) return -1;
    struct epoll_event event = { .events = EPOLLIN, .data.fd = listener };
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &event);
    struct epoll_event ready[256];
    for (;;) {
        int count = epoll_wait(epoll_fd, ready, 256, -1);
        if (switch_requested) {
            switch_requested = 0;
            backend = loopback(second_backend_port);
            switch_peers(epoll_fd, &backend);
            continue;
        }
        int pending = 0;
        for (int i = 0; i < count; i++) {
            int fd = ready[i].data.fd;
            if (fd == listener) {
                /* The listener's batch reuses the slots: send what replies are waiting first. */
                if (pending > 0) {
                    send_all(listener, pending);
                    pending = 0;
                }
                /* Client -> backend: a batch at a time, each on its peer's connected socket. */
                for (;;) {
                    for (int k = 0; k < BATCH; k++) prepare(k, SLOT);
                    int got = recvmmsg(listener, headers, BATCH, MSG_DONTWAIT, NULL);
                    if (got <= 0) break;
                    for (int k = 0; k < got; k++) {
                        struct peer *peer = peer_for(&names[k], epoll_fd, &backend);
                        if (peer) send(peer->backend_fd, storage[k], headers[k].msg_len, 0);
                    }
                    if (got < BATCH) break;
                }
                continue;
            }
            /* Backend -> client: drain the socket; replies leave in sendmmsg batches. */
            struct peer *peer = by_fd[fd];
            if (!peer) continue;
            for (;;) {
                if (pending == BATCH) {
                    send_all(listener, pending);
                    pending = 0;
                }
                ssize_t got = recv(fd, storage[pending], SLOT, MSG_DONTWAIT);
                if (got < 0) break;
                prepare(pending, (size_t)got);
                names[pending] = peer->address;
                pending++;
            }
        }
        if (pending > 0) send_all(listener, pending);
    }
}
