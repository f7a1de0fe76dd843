import CSystemd
import Foundation

/// One datagram socket systemd passed to the daemon (socket activation).
public struct PassedSocket: Sendable, Equatable {
    /// Its `FileDescriptorName=`, which names the listener that serves it.
    public var name: String
    /// The descriptor as passed; it stays open for the life of the process.
    public var descriptor: CInt
}

/// The sockets systemd passed with `LISTEN_FDS`, `LISTEN_PID` and `LISTEN_FDNAMES`.
///
/// A listener whose `name` equals a passed socket's name serves that socket
/// (all of them, if several share the name, e.g. an IPv4 and an IPv6 one)
/// instead of binding its own. Each passed socket is served on one event
/// loop: a socket systemd bound is not in a `SO_REUSEPORT` group we could join
/// (the kernel requires the same user, and binding a privileged port again
/// would need the capability socket activation spares us), and handing one
/// descriptor to several loops would let any loop read any peer's datagram,
/// breaking "a peer always lands on the same loop". Passed sockets of several
/// listeners are spread over the loops.
///
/// The daemon keeps the passed descriptors open and gives the event loops
/// duplicates, so that a reload that removes a listener and adds it back can
/// serve the same socket again.
public struct SocketActivation: Sendable {
    public let sockets: [PassedSocket]

    public init(sockets: [PassedSocket]) {
        self.sockets = sockets
    }

    /// No sockets passed.
    public static let none = SocketActivation(sockets: [])

    /// Takes the sockets passed to this process, and unsets the variables so
    /// that no child inherits them. Each must be an IPv4 or IPv6 datagram socket.
    public static func fromEnvironment(configFile: String) throws(ConfigurationError) -> SocketActivation {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        defer {
            if let names {
                for index in 0..<max(0, Int(count)) { free(names[index]) }
                free(names)
            }
        }
        guard count >= 0 else {
            throw ConfigurationError(
                file: configFile, key: "LISTEN_FDS",
                cause: "cannot take the sockets systemd passed: \(String(cString: strerror(-count)))")
        }
        var sockets: [PassedSocket] = []
        for index in 0..<Int(count) {
            let descriptor = SD_LISTEN_FDS_START + CInt(index)
            let name = names?[index].map { String(cString: $0) } ?? "unknown"
            let datagram =
                sd_is_socket(descriptor, AF_INET, CInt(SOCK_DGRAM.rawValue), -1) > 0
                || sd_is_socket(descriptor, AF_INET6, CInt(SOCK_DGRAM.rawValue), -1) > 0
            guard datagram else {
                throw ConfigurationError(
                    file: configFile, key: "socket \"\(name)\"",
                    cause:
                        "the socket systemd passed (fd \(descriptor)) is not a UDP socket; use ListenDatagram= in the .socket unit"
                )
            }
            sockets.append(PassedSocket(name: name, descriptor: descriptor))
        }
        return SocketActivation(sockets: sockets)
    }

    /// The passed sockets named `name`, in the order systemd passed them.
    public func sockets(named name: String) -> [PassedSocket] {
        sockets.filter { $0.name == name }
    }

    /// Every passed socket must belong to a listener: one that matches none
    /// would receive datagrams nobody reads.
    public func checkNames(against listeners: [ListenerConfiguration], configFile: String) throws(ConfigurationError) {
        let listenerNames = Set(listeners.map(\.name))
        for socket in sockets where !listenerNames.contains(socket.name) {
            let known = listeners.map { "\"\($0.name)\"" }.joined(separator: ", ")
            throw ConfigurationError(
                file: configFile, key: "socket \"\(socket.name)\"",
                cause:
                    "systemd passed a socket named \"\(socket.name)\" (FileDescriptorName=) that matches no [[listener]] name (listeners: \(known))"
            )
        }
    }

    /// A close-on-exec duplicate of `socket` for an event loop to own and close.
    static func duplicate(_ socket: PassedSocket) throws -> CInt {
        let copy = fcntl(socket.descriptor, F_DUPFD_CLOEXEC, 3)
        guard copy >= 0 else {
            throw StartupError(
                description:
                    "socket \"\(socket.name)\": cannot duplicate fd \(socket.descriptor): \(String(cString: strerror(errno)))"
            )
        }
        return copy
    }
}
