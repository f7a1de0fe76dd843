import COpenSSL
import NIOCore

/// One DTLS server connection: an `SSL` object over a `DatagramBIOBuffers`.
///
/// Lives on one event loop and is driven from there: the session hands it a
/// datagram, calls one step (`listen`, `handshake`, `read`, `write`,
/// `shutdown`, `handleTimeout`), then sends whatever it wrote. Every failing
/// OpenSSL call drains the error queue before returning, so no reason leaks
/// into another session's failure.
public final class DTLSConnection {
    let ssl: OpaquePointer
    private let buffers: DatagramBIOBuffers
    let cookies: CookieVerifier
    let peerMaterial: [UInt8]
    /// OpenSSL's record buffers are freed (``releaseBuffers()``).
    private var buffersReleased = false
    /// The last alert the peer sent, as OpenSSL's long description.
    public private(set) var receivedAlert: String?
    public private(set) var receivedFatalAlert = false
    /// The verified certificate names, once the handshake completed with one.
    public private(set) var certificateIdentity: CertificateIdentity?
    /// The PSK identity, once a PSK handshake completed.
    public private(set) var pskIdentity: String?
    /// The SNI host name (lower-cased) of the handshake that created the session, once complete.
    public private(set) var serverName: String?

    /// The outcome of a handshake step.
    public enum HandshakeProgress: Equatable {
        case inProgress
        case complete
        case failed(String)
        /// The certificate verified but no allow-list admits it; an access_denied
        /// alert is queued in place of the server's last flight. `rules` are the
        /// lists that refused, `detail` what the certificate carried.
        case refused(rules: [String], detail: String)
    }

    /// The outcome of reading one record.
    public enum ReadResult: Equatable {
        /// A plaintext datagram was appended to the destination.
        case data
        /// Nothing more to read until the next datagram.
        case wantRead
        /// The peer sent close_notify.
        case closeNotify
        /// A fatal error or alert; the session must close.
        case failed(String)
    }

    public init(context: DTLSServerContext, cookies: CookieVerifier, peerMaterial: [UInt8], ipv6: Bool, allocator: ByteBufferAllocator) throws {
        guard let ssl = SSL_new(context.raw) else { throw OpenSSLError.fromQueue("SSL_new") }
        self.ssl = ssl
        self.cookies = cookies
        self.peerMaterial = peerMaterial
        buffers = DatagramBIOBuffers(mtu: context.mtu, overhead: ipv6 ? 48 : 28, allocator: allocator)
        guard let bio = DatagramBIO.make(buffers: buffers) else {
            SSL_free(ssl)
            throw OpenSSLError.fromQueue("BIO_new")
        }
        SSL_set_bio(ssl, bio, bio)
        _ = dp_SSL_set_app_data(ssl, Unmanaged.passUnretained(self).toOpaque())
        SSL_set_accept_state(ssl)
        // With SSL_OP_NO_QUERY_MTU, OpenSSL uses this as the largest record datagram.
        if dp_SSL_set_mtu(ssl, context.mtu) != 1 {
            OpenSSLError.drain()
        }
    }

    deinit {
        _ = dp_SSL_set_app_data(ssl, nil)
        SSL_free(ssl)
    }

    static func from(_ ssl: OpaquePointer?) -> DTLSConnection? {
        guard let ssl, let pointer = dp_SSL_get_app_data(ssl) else { return nil }
        return Unmanaged<DTLSConnection>.fromOpaque(pointer).takeUnretainedValue()
    }

    func noteReceivedAlert(_ value: Int32) {
        receivedAlert = String(cString: SSL_alert_desc_string_long(value))
        if value >> 8 == SSL3_AL_FATAL { receivedFatalAlert = true }
    }

    /// Runs `DTLSv1_listen` on the ClientHello that carried a valid cookie.
    ///
    /// The router already checked the cookie; this lets OpenSSL check it again
    /// and, above all, set the handshake and record sequence numbers a server
    /// continues with after a HelloVerifyRequest, which a fresh `SSL` object
    /// fed a ClientHello with message_seq 1 would not do.
    public func listen(clientHello: ByteBuffer) -> Bool {
        buffers.inbound = clientHello
        guard let address = BIO_ADDR_new() else { return false }
        defer { BIO_ADDR_free(address) }
        let result = DTLSv1_listen(ssl, address)
        buffers.inbound = nil
        if result != 1 { OpenSSLError.drain() }
        return result == 1
    }

    /// Queues one datagram from the peer for the next step to read.
    public func receive(_ datagram: ByteBuffer) {
        buffers.inbound = datagram
    }

    /// Advances the handshake with whatever was received.
    public func handshake() -> HandshakeProgress {
        guard restoreBuffers() else { return .failed("cannot allocate record buffers") }
        let result = SSL_do_handshake(ssl)
        if result == 1 { return admit() }
        let error = SSL_get_error(ssl, result)
        switch error {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            buffers.inbound = nil
            return .inProgress
        default:
            return .failed(failureReason(error))
        }
    }

    /// Decrypts the queued datagram's next record, appending plaintext to `destination`.
    public func read(into destination: inout ByteBuffer, maximum: Int) -> ReadResult {
        guard restoreBuffers() else { return .failed("cannot allocate record buffers") }
        destination.reserveCapacity(minimumWritableBytes: maximum)
        let result = destination.writeWithUnsafeMutableBytes(minimumWritableBytes: maximum) { pointer in
            Int(max(0, SSL_read(ssl, pointer.baseAddress, Int32(min(pointer.count, Int(Int32.max))))))
        }
        if result > 0 { return .data }
        let error = SSL_get_error(ssl, Int32(result))
        switch error {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            buffers.inbound = nil
            return .wantRead
        case SSL_ERROR_ZERO_RETURN:
            return .closeNotify
        default:
            return .failed(failureReason(error))
        }
    }

    /// Encrypts one plaintext datagram as one record. False when OpenSSL refused it.
    public func write(_ plaintext: ByteBuffer) -> Bool {
        guard restoreBuffers() else { return false }
        let written = plaintext.withUnsafeReadableBytes { bytes in
            SSL_write(ssl, bytes.baseAddress, Int32(bytes.count))
        }
        if written <= 0 {
            OpenSSLError.drain()
            return false
        }
        return true
    }

    /// Queues our close_notify. Sessions are torn down right after; no reply is awaited.
    public func shutdown() {
        guard restoreBuffers() else { return }
        if SSL_shutdown(ssl) < 0 { OpenSSLError.drain() }
    }

    /// How long until OpenSSL wants `handleTimeout`, or nil when no timer runs.
    public func nextTimeout() -> TimeAmount? {
        var value = timeval()
        guard dp_DTLSv1_get_timeout(ssl, &value) == 1 else { return nil }
        return .seconds(Int64(value.tv_sec)) + .microseconds(Int64(value.tv_usec))
    }

    /// Retransmits the last flight if its timer expired. False when OpenSSL gave up.
    public func handleTimeout() -> Bool {
        guard restoreBuffers() else { return false }
        let result = dp_DTLSv1_handle_timeout(ssl)
        if result < 0 {
            OpenSSLError.drain()
            return false
        }
        return true
    }

    /// Hands each datagram OpenSSL wrote since the last call to `body`, oldest
    /// first, and empties the queue in place; false when there was none.
    ///
    /// Records written in one step are packed into as few datagrams as the MTU
    /// allows (RFC 6347 §4.1.1 lets a datagram carry several records). OpenSSL
    /// writes a retransmitted flight record by record (ChangeCipherSpec and
    /// Finished apart); sent apart, each is one more datagram that loss can take,
    /// and a lossy path then needs many more rounds to finish a handshake. The
    /// common case, one datagram, allocates nothing.
    @discardableResult
    public func drainOutbound(_ body: (ByteBuffer) -> Void) -> Bool {
        guard !buffers.outbound.isEmpty else { return false }
        defer { buffers.outbound.removeAll(keepingCapacity: true) }
        if buffers.outbound.count == 1 {
            body(buffers.outbound[0])
        } else {
            for datagram in DatagramPacker.pack(buffers.outbound, mtu: buffers.mtu) { body(datagram) }
        }
        return true
    }

    /// Frees OpenSSL's record buffers (about 18 KiB per session) while the
    /// session is idle. False when OpenSSL still holds unread data and kept them.
    ///
    /// OpenSSL 3.0's DTLS write path does not allocate a released write buffer
    /// again (an alert, close_notify or retransmitted flight written after
    /// `SSL_free_buffers` dereferences NULL), so every call below that may
    /// write first restores them (``restoreBuffers()``).
    @discardableResult
    public func releaseBuffers() -> Bool {
        guard !buffersReleased else { return true }
        buffersReleased = SSL_free_buffers(ssl) == 1
        return buffersReleased
    }

    /// Allocates the record buffers again after ``releaseBuffers()``; false when OpenSSL could not.
    private func restoreBuffers() -> Bool {
        guard buffersReleased else { return true }
        guard SSL_alloc_buffers(ssl) == 1 else {
            OpenSSLError.drain()
            return false
        }
        buffersReleased = false
        return true
    }

    /// The largest plaintext one record can carry at the configured MTU.
    public var maximumPlaintext: Int {
        Int(DTLS_get_data_mtu(ssl))
    }

    public var cipherName: String {
        guard let cipher = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(cipher) else { return "none" }
        return String(cString: name)
    }

    public var protocolVersion: String {
        String(cString: SSL_get_version(ssl))
    }

    /// Records who the peer is and applies the listener's allow-lists.
    private func admit() -> HandshakeProgress {
        pskIdentity = PeerIdentity.pskIdentity(of: ssl)
        certificateIdentity = PeerIdentity.certificate(of: ssl)
        serverName = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0).lowercased() }
        guard let identity = certificateIdentity, let context = DTLSServerContext.from(ssl),
              case .refused(let rules) = context.identityPolicy.evaluate(identity) else { return .complete }
        return refuse(rules: rules, detail: "certificate \(identity.summary) matches no entry of \(rules.joined(separator: " or "))")
    }

    /// Refuses a handshake that just completed on our side (``handshake()``
    /// returned `.complete`, nothing sent yet): the server's final flight is
    /// replaced by an access_denied alert (``AccessDeniedAlert``).
    public func refuse(rules: [String], detail: String) -> HandshakeProgress {
        let flight = buffers.outbound.map { Array($0.readableBytesView) }
        buffers.outbound.removeAll()
        if let alert = AccessDeniedAlert.replacing(flight: flight) {
            buffers.outbound.append(ByteBuffer(bytes: alert))
        } else {
            // An abbreviated handshake: the client already holds our Finished, so
            // the only alert we can still send under the session's keys is close_notify.
            shutdown()
        }
        return .refused(rules: rules, detail: detail)
    }

    /// Whether this handshake resumed a session from a ticket.
    public var isResumed: Bool { SSL_session_reused(ssl) == 1 }

    /// ` server_name=NAME`, ` identity=NAME` and/or ` psk_identity=ID` for the session's log lines.
    public var identityLogFields: String {
        var fields = serverName.map { " server_name=\(LogValue.quote($0))" } ?? ""
        if let name = certificateIdentity?.displayName { fields += " identity=\(LogValue.quote(name))" }
        if let pskIdentity { fields += " psk_identity=\(LogValue.quote(pskIdentity))" }
        return fields
    }

    /// ` resumed=yes` when the handshake resumed a session from a ticket; empty otherwise.
    public var resumptionLogField: String {
        isResumed ? " resumed=yes" : ""
    }

    private func failureReason(_ error: Int32) -> String {
        let queued = OpenSSLError.drain()
        if receivedFatalAlert, let alert = receivedAlert { return "peer sent fatal alert: \(alert)" }
        if !queued.isEmpty { return queued.joined(separator: "; ") }
        switch error {
        case SSL_ERROR_SYSCALL: return "unexpected end of stream"
        case SSL_ERROR_SSL: return "protocol error"
        default: return "SSL error \(error)"
        }
    }
}
