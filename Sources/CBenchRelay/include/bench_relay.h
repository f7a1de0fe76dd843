/*
 * The benchmark's floor: a lean plaintext UDP relay with the daemon's shape
 * (one listener socket, one socket connected to the backend per peer) and
 * none of its work. epoll, recvmmsg on the listener, sendmmsg for replies,
 * one thread. Used only by dtls-proxy-bench; never part of the daemon.
 */
#ifndef DTLS_PROXYD_BENCH_RELAY_H
#define DTLS_PROXYD_BENCH_RELAY_H

#include <stdint.h>

/* Binds 127.0.0.1:listen_port and relays to 127.0.0.1:backend_port until the
 * process is killed. Returns -1 (errno set) only when it cannot start. */
int bench_relay_run(uint16_t listen_port, uint16_t backend_port);

/* The same; with `second_backend_port` (not 0), SIGUSR1 moves every peer to a
 * new socket connected to 127.0.0.1:second_backend_port. */
int bench_relay_run_switching(uint16_t listen_port, uint16_t backend_port, uint16_t second_backend_port);

#endif
