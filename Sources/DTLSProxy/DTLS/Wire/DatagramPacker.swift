import NIOCore

/// Packs consecutive DTLS records into datagrams no larger than the MTU.
///
/// Each input buffer holds whole records (one OpenSSL write). Order is kept;
/// an input is never split, so one that alone exceeds the MTU stays alone.
enum DatagramPacker {
    static func pack(_ writes: [ByteBuffer], mtu: Int) -> [ByteBuffer] {
        var datagrams: [ByteBuffer] = []
        datagrams.reserveCapacity(writes.count)
        var current: ByteBuffer?
        for write in writes {
            if var open = current, open.readableBytes + write.readableBytes <= mtu {
                var write = write
                open.writeBuffer(&write)
                current = open
            } else {
                if let open = current { datagrams.append(open) }
                current = write
            }
        }
        if let open = current { datagrams.append(open) }
        return datagrams
    }
}
