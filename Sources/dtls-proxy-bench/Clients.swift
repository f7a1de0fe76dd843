import COpenSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One load-generator session: a connected non-blocking UDP socket, plain or
/// under a DTLS 1.2 client. Driven from a single thread.
protocol EchoClient: AnyObject {
    var fd: Int32 { get }
    /// Sends one datagram of application data; false when the socket or OpenSSL refused it.
    func send(_ payload: UnsafeRawBufferPointer) -> Bool
    /// Reads one datagram of application data into `buffer`; nil when nothing is waiting.
    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int?
    /// Closes the session (close_notify for DTLS) and the socket.
    func close()
}

/// Direct UDP: what the backend costs without any relay in front of it.
final class PlainClient: EchoClient {
    let fd: Int32

    init(target: Endpoint) throws {
        fd = try UDP.connected(to: target)
    }

    func send(_ payload: UnsafeRawBufferPointer) -> Bool {
        Glibc.send(fd, payload.baseAddress, payload.count, 0) == payload.count
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        let count = recv(fd, buffer.baseAddress, buffer.count, 0)
        return count >= 0 ? count : nil
    }

    func close() {
        _ = Glibc.close(fd)
    }
}

/// The OpenSSL client context every DTLS session of a run shares: DTLS 1.2,
/// no certificate verification (loopback benchmark against a self-signed key).
///
/// `@unchecked Sendable`: it is configured once in `init` and never changed;
/// OpenSSL lets several threads create `SSL` objects from one `SSL_CTX`.
final class ClientContext: @unchecked Sendable {
    let raw: OpaquePointer

    init() throws {
        guard let ctx = SSL_CTX_new(DTLS_client_method()) else { throw BenchError("SSL_CTX_new failed") }
        raw = ctx
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        _ = dp_SSL_CTX_set_min_proto_version(ctx, DTLS1_2_VERSION)
        _ = dp_SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION)
        _ = dp_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
    }

    deinit {
        SSL_CTX_free(raw)
    }
}

/// A DTLS 1.2 client over a connected, non-blocking UDP socket and OpenSSL's datagram BIO.
final class DTLSClient: EchoClient {
    let fd: Int32
    let ssl: OpaquePointer
    private var closed = false
    /// When the handshake began (monotonic ns), for per-handshake timeouts.
    let started = monotonicNanoseconds()

    /// With `resuming`, the handshake offers that session (`SSL_set_session`).
    init(context: ClientContext, target: Endpoint, resuming: ResumableSession? = nil) throws {
        fd = try UDP.connected(to: target, buffer: 256 << 10)
        guard let ssl = SSL_new(context.raw) else {
            _ = Glibc.close(fd)
            throw BenchError("SSL_new failed")
        }
        self.ssl = ssl
        guard let bio = BIO_new_dgram(fd, BIO_NOCLOSE) else {
            SSL_free(ssl)
            _ = Glibc.close(fd)
            throw BenchError("BIO_new_dgram failed")
        }
        var address = target.address
        let peer = BIO_ADDR_new()
        withUnsafePointer(to: &address.sin_addr) { host in
            _ = BIO_ADDR_rawmake(peer, AF_INET, host, 4, address.sin_port)
        }
        _ = BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, UnsafeMutableRawPointer(peer))
        BIO_ADDR_free(peer)
        SSL_set_bio(ssl, bio, bio)
        if let resuming { _ = SSL_set_session(ssl, resuming.raw) }
        SSL_set_connect_state(ssl)
    }

    deinit {
        close()
    }

    /// The outcome of one handshake step.
    enum Step { case done, pending, failed }

    /// Advances the handshake; `.pending` means wait for the socket or the timer.
    func handshake() -> Step {
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .done }
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .pending
        default:
            ERR_clear_error()
            return .failed
        }
    }

    /// Retransmits the last flight when OpenSSL's timer expired.
    func handleTimeoutIfDue() {
        var remaining = timeval()
        if dp_DTLSv1_get_timeout(ssl, &remaining) == 1, remaining.tv_sec == 0, remaining.tv_usec == 0 {
            if dp_DTLSv1_handle_timeout(ssl) < 0 { ERR_clear_error() }
        }
    }

    /// Whether the finished handshake resumed the offered session (`SSL_session_reused`).
    var resumed: Bool { SSL_session_reused(ssl) == 1 }

    var cipherName: String {
        guard let cipher = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(cipher) else { return "none" }
        return String(cString: name)
    }

    func send(_ payload: UnsafeRawBufferPointer) -> Bool {
        let written = SSL_write(ssl, payload.baseAddress, Int32(payload.count))
        if written <= 0 {
            ERR_clear_error()
            return false
        }
        return true
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        let count = SSL_read(ssl, buffer.baseAddress, Int32(buffer.count))
        if count > 0 { return Int(count) }
        ERR_clear_error()
        return nil
    }

    /// Sends close_notify (unless `quietly`) and releases the `SSL` object and the socket.
    func close(quietly: Bool) {
        guard !closed else { return }
        closed = true
        if !quietly, SSL_is_init_finished(ssl) == 1 { _ = SSL_shutdown(ssl) }
        ERR_clear_error()
        SSL_free(ssl)
        _ = Glibc.close(fd)
    }

    func close() {
        close(quietly: false)
    }

    /// Sends one small datagram and waits up to 500 ms for its echo.
    func echoOnce() {
        let message = [UInt8](repeating: 0x2A, count: 32)
        var reply = [UInt8](repeating: 0, count: 2048)
        guard message.withUnsafeBytes({ send($0) }) else { return }
        let end = monotonicNanoseconds() + 500_000_000
        while monotonicNanoseconds() < end, UDP.waitReadable(fd, milliseconds: 100) {
            if reply.withUnsafeMutableBytes({ receive(into: $0) }) != nil { return }
        }
    }

    /// Frees the `SSL` object without a word to the server and hands back the
    /// socket, still open: the server's session stays established and idle,
    /// and the source port stays taken so no later client reuses it.
    func detachSocket() -> Int32 {
        closed = true
        ERR_clear_error()
        SSL_free(ssl)
        return fd
    }
}
