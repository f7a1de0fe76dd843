import Foundation
import NIOCore

/// Sizes the kernel buffers of a listener socket (`socket_receive_buffer`,
/// `socket_send_buffer`) and of a session's backend socket (`backend_receive_buffer`).
///
/// SO_RCVBUF and SO_SNDBUF are capped by net.core.rmem_max / wmem_max; a
/// process with CAP_NET_ADMIN may go past the cap with SO_RCVBUFFORCE /
/// SO_SNDBUFFORCE. Both are tried, the forced one first, so the daemon gets
/// the size asked for where it may and the system's cap elsewhere.
enum SocketBuffers {
    static func apply(receive: Int, send: Int, to channel: Channel) async throws {
        if receive > 0 {
            try await set(receive, forced: SO_RCVBUFFORCE, plain: SO_RCVBUF, on: channel)
        }
        if send > 0 {
            try await set(send, forced: SO_SNDBUFFORCE, plain: SO_SNDBUF, on: channel)
        }
    }

    /// Sets SO_RCVBUF of a socket NIO does not hold (yet): a backend socket
    /// just created. Set on the socket itself, the size stays through parking
    /// and waking. Nil on success, else why it failed.
    static func applyReceive(_ size: Int, toDescriptor descriptor: CInt) -> String? {
        guard size > 0 else { return nil }
        var value = CInt(min(size, Int(Int32.max)))
        let length = socklen_t(MemoryLayout<CInt>.size)
        if setsockopt(descriptor, SOL_SOCKET, SO_RCVBUFFORCE, &value, length) == 0 { return nil }
        if setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &value, length) == 0 { return nil }
        return "setsockopt(SO_RCVBUF, \(size)): \(String(cString: strerror(errno)))"
    }

    private static func set(_ size: Int, forced: Int32, plain: Int32, on channel: Channel) async throws {
        let level = SocketOptionLevel(SOL_SOCKET)
        let value = SocketOptionValue(min(size, Int(Int32.max)))
        do {
            try await channel.setOption(
                ChannelOptions.Types.SocketOption(level: level, name: SocketOptionName(forced)), value: value
            ).get()
        } catch {
            try await channel.setOption(
                ChannelOptions.Types.SocketOption(level: level, name: SocketOptionName(plain)), value: value
            ).get()
        }
    }
}
