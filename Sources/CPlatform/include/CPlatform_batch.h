/*
 * Batched datagram I/O for the data path (Sessions/DatagramBatch.swift):
 * recvmmsg and sendmmsg, which Swift's Glibc module does not export
 * (struct mmsghdr needs _GNU_SOURCE). One call moves up to DP_BATCH_MAX
 * datagrams; the mmsghdr arrays live on the C stack, so a caller keeps only
 * its buffers.
 */
#ifndef DTLS_PROXYD_CBATCH_H
#define DTLS_PROXYD_CBATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

/* The most datagrams one call moves. */
#define DP_BATCH_MAX 64

/* One received datagram's length: what was copied into its slot (a datagram
 * longer than the slot is cut to it, as one read of that size cuts it). */
typedef struct {
    uint32_t length;
} dp_received;

/* recvmmsg(MSG_DONTWAIT) of up to `count` datagrams (at most DP_BATCH_MAX)
 * into `count` slots of `slot_size` bytes laid out one after the other in
 * `arena`. `sources`, when not NULL, receives each datagram's source address.
 * Returns how many were received (their lengths in `received`), or -errno:
 * -EAGAIN when none was waiting. */
int dp_recv_batch(int fd, void *arena, size_t slot_size, unsigned count, dp_received *received,
                  struct sockaddr_storage *sources);

/* sendmmsg(MSG_DONTWAIT) of `count` datagrams (at most DP_BATCH_MAX), one
 * iovec each. `destinations` (with `destination_lengths`) is NULL on a
 * connected socket. Returns how many the kernel took, from the first on, or
 * -errno when it took none (the first datagram's error). */
int dp_send_batch(int fd, const struct iovec *datagrams, const struct sockaddr_storage *destinations,
                  const socklen_t *destination_lengths, unsigned count);

#endif
