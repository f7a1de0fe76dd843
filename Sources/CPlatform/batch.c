#define _GNU_SOURCE
#include "CPlatform_batch.h"

#include <errno.h>
#include <string.h>

int dp_recv_batch(int fd, void *arena, size_t slot_size, unsigned count, dp_received *received,
                  struct sockaddr_storage *sources) {
    if (count > DP_BATCH_MAX) count = DP_BATCH_MAX;
    struct mmsghdr messages[DP_BATCH_MAX];
    struct iovec slots[DP_BATCH_MAX];
    memset(messages, 0, sizeof(struct mmsghdr) * count);
    for (unsigned i = 0; i < count; i++) {
        slots[i].iov_base = (char *)arena + (size_t)i * slot_size;
        slots[i].iov_len = slot_size;
        messages[i].msg_hdr.msg_iov = &slots[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        if (sources) {
            messages[i].msg_hdr.msg_name = &sources[i];
            messages[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
        }
    }
    int got = recvmmsg(fd, messages, count, MSG_DONTWAIT, NULL);
    if (got < 0) return -errno;
    for (int i = 0; i < got; i++) {
        received[i].length = messages[i].msg_len;
    }
    return got;
}

int dp_send_batch(int fd, const struct iovec *datagrams, const struct sockaddr_storage *destinations,
                  const socklen_t *destination_lengths, unsigned count) {
    if (count > DP_BATCH_MAX) count = DP_BATCH_MAX;
    struct mmsghdr messages[DP_BATCH_MAX];
    memset(messages, 0, sizeof(struct mmsghdr) * count);
    for (unsigned i = 0; i < count; i++) {
        messages[i].msg_hdr.msg_iov = (struct iovec *)&datagrams[i];
        messages[i].msg_hdr.msg_iovlen = 1;
        if (destinations) {
            messages[i].msg_hdr.msg_name = (void *)&destinations[i];
            messages[i].msg_hdr.msg_namelen = destination_lengths[i];
        }
    }
    int sent = sendmmsg(fd, messages, count, MSG_DONTWAIT);
    return sent < 0 ? -errno : sent;
}
