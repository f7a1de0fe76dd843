import Foundation
import NIOCore

/// Sizes a listener socket's kernel buffers (`socket_receive_buffer`, `socket_send_buffer`).
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

    private static func set(_ size: Int, forced: Int32, plain: Int32, on channel: Channel) async throws {
        let level = SocketOptionLevel(SOL_SOCKET)
        let value = SocketOptionValue(min(size, Int(Int32.max)))
        do {
            try await channel.setOption(ChannelOptions.Types.SocketOption(level: level, name: SocketOptionName(forced)), value: value).get()
        } catch {
            try await channel.setOption(ChannelOptions.Types.SocketOption(level: level, name: SocketOptionName(plain)), value: value).get()
        }
    }
}
