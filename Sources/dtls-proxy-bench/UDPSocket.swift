#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An IPv4 loopback endpoint: the benchmark only ever talks to 127.0.0.1.
struct Endpoint: CustomStringConvertible, Sendable {
    var port: UInt16
    var description: String { "127.0.0.1:\(port)" }

    var address: sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        return address
    }

    /// A UDP port nothing is bound to right now (bind to port 0, read it back, close).
    static func freePort() -> UInt16 {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(fd) }
        var address = Endpoint(port: 0).address
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                _ = bind(fd, raw, length)
                _ = getsockname(fd, raw, &length)
            }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    /// "127.0.0.1:PORT" or "HOST:PORT" → port; the host must be loopback IPv4.
    static func parse(_ text: String) -> Endpoint? {
        guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
            return nil
        }
        let host = text[..<colon]
        guard host == "127.0.0.1" || host == "localhost" else { return nil }
        return Endpoint(port: port)
    }
}

/// Thin wrappers over the socket calls the load generator and the relay make.
enum UDP {
    /// A non-blocking UDP socket connected to `endpoint` (so `send`/`recv` need no address).
    static func connected(to endpoint: Endpoint, buffer: Int32 = 1 << 20) throws -> Int32 {
        try makeSocket(at: endpoint, buffer: buffer, verb: "connect") { fd, address, length in
            connect(fd, address, length)
        }
    }

    /// A non-blocking UDP socket bound to `endpoint`.
    static func bound(to endpoint: Endpoint, buffer: Int32 = 4 << 20) throws -> Int32 {
        try makeSocket(at: endpoint, buffer: buffer, verb: "bind") { fd, address, length in bind(fd, address, length) }
    }

    /// A non-blocking IPv4 UDP socket on which `attach` (connect or bind) was called with `endpoint`.
    private static func makeSocket(
        at endpoint: Endpoint, buffer: Int32, verb: String,
        attach: (Int32, UnsafePointer<sockaddr>, socklen_t) -> Int32
    ) throws -> Int32 {
        let fd = socket(
            AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BenchError("socket: \(errnoText())") }
        setBuffers(fd, size: buffer)
        var address = endpoint.address
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                attach(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard result == 0 else {
            close(fd)
            throw BenchError("\(verb) \(endpoint): \(errnoText())")
        }
        return fd
    }

    static func setBuffers(_ fd: Int32, size: Int32) {
        var value = size
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, socklen_t(MemoryLayout<Int32>.size))
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &value, socklen_t(MemoryLayout<Int32>.size))
    }

    /// Waits until `fd` is readable or `milliseconds` pass; true when readable.
    static func waitReadable(_ fd: Int32, milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, milliseconds) > 0
    }
}

/// Monotonic nanoseconds.
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

func errnoText() -> String {
    String(cString: strerror(errno))
}

/// A benchmark failure with a message for the operator.
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
