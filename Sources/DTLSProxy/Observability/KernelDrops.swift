import Glibc
import NIOCore

/// The kernel's count of datagrams it dropped on one of the daemon's sockets
/// before the daemon could read them: a receive queue full to its SO_RCVBUF
/// limit, no memory for the datagram, a failed checksum.
///
/// The kernel keeps that count per socket (`sk_drops`). It is read with the
/// SO_MEMINFO socket option, whose `SK_MEMINFO_DROPS` entry is that counter:
/// one getsockopt, on demand, whether NIO reads the socket, the socket is
/// parked, or it has gone quiet since the drops.
///
/// SO_RXQ_OVFL reports the same `sk_drops` as a control message on each
/// datagram received, and so is not used: SwiftNIO's datagram channel
/// gives the kernel no room for control messages unless ECN or packet-info
/// reporting is on, and never parses this one; and drops followed by
/// silence would only show with the next datagram. `/proc/net/udp` also
/// shows `sk_drops`, but would mean parsing every UDP socket of the host.
enum KernelDrops {
    /// `SO_MEMINFO` (linux/asm-generic/socket.h), which Glibc's module does not export.
    private static let memoryInfoOption: CInt = 55
    /// `SK_MEMINFO_DROPS` (linux/sock_diag.h): the index of the drop count.
    private static let dropsIndex = 8

    /// The `SK_MEMINFO_*` array SO_MEMINFO fills (`SK_MEMINFO_VARS` = 9 entries of `u32`).
    struct MemoryInfo: Sendable {
        var entries: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (
            0, 0, 0, 0, 0, 0, 0, 0, 0
        )

        var drops: UInt32 { entries.8 }
    }

    /// The drop count of the socket `descriptor` since it was created; nil if
    /// the kernel is too old to report it or `descriptor` is no socket.
    static func count(descriptor: CInt) -> UInt32? {
        var info = MemoryInfo()
        var length = socklen_t(MemoryLayout<MemoryInfo>.size)
        let result = withUnsafeMutablePointer(to: &info) {
            getsockopt(descriptor, SOL_SOCKET, memoryInfoOption, $0, &length)
        }
        guard result == 0, Int(length) > dropsIndex * MemoryLayout<UInt32>.size else { return nil }
        return info.drops
    }

    /// The drop count of the socket under a NIO channel; call on its event loop,
    /// where the answer comes at once (nil when it cannot be read).
    static func count(channel: Channel, _ body: @escaping (UInt32?) -> Void) {
        guard let provider = channel as? SocketOptionProvider else {
            body(nil)
            return
        }
        let info: EventLoopFuture<MemoryInfo> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(memoryInfoOption))
        info.assumeIsolated().whenComplete { result in
            body(try? result.get().drops)
        }
    }
}

/// What one socket's kernel drop count was when last collected, so that each
/// collection adds only the drops since the one before.
///
/// The kernel's count is 32 bits and wraps; subtracting with wrap-around
/// keeps every delta right as long as fewer than 2^32 datagrams are dropped
/// between two collections.
struct KernelDropCursor {
    private var collected: UInt32 = 0

    /// The drops since the last call, given the socket's count now.
    mutating func advance(to count: UInt32?) -> Int {
        guard let count else { return 0 }
        defer { collected = count }
        return Int(count &- collected)
    }
}
