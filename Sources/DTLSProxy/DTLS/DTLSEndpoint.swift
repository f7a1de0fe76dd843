import COpenSSL
import NIOCore

/// One end of a DTLS association: an `SSL` object over a ``DatagramBIOBuffers``,
/// and the steps both roles take on it.
///
/// ``DTLSServerConnection`` (a listener's server side) and `DTLSClientConnection`
/// (a connector's client side) add their handshake. Lives on one event loop
/// and is driven from there: the owner hands it a datagram, calls one step,
/// then sends whatever it wrote. Every failing OpenSSL call drains the error
/// queue before returning, so no reason leaks into another session's failure.
public class DTLSEndpoint {
    let ssl: OpaquePointer
    let buffers: DatagramBIOBuffers
    /// OpenSSL's record buffers are freed (``releaseBuffers()``) until the next step needs them.
    public private(set) var buffersReleased = false
    /// The last alert the peer sent, as OpenSSL's long description.
    public private(set) var receivedAlert: String?
    public private(set) var receivedFatalAlert = false
    /// Whether and how this endpoint negotiates an RFC 9146 CID (its context's policy).
    let connectionIDPolicy: ConnectionIDPolicy
    /// During the handshake: the CID a client offered to receive (client side: the
    /// one we offered; server side: the client's), from the ClientHello extension.
    var pendingConnectionID: [UInt8]?
    /// The CID we put on the records we send, once negotiated (may be empty:
    /// ordinary records); nil when the handshake negotiated none.
    public internal(set) var peerConnectionID: [UInt8]?
    /// The CID we expect on the records we receive, once negotiated (may be
    /// empty: ordinary records); nil when the handshake negotiated none.
    public internal(set) var ownConnectionID: [UInt8]?

    /// The outcome of reading one record.
    public enum ReadResult: Equatable {
        /// A plaintext datagram was appended to the destination.
        case data
        /// Nothing more to read until the next datagram.
        case wantRead
        /// The peer sent close_notify.
        case closeNotify
        /// A fatal error or alert; the session must close.
        case failed(DTLSFailure)
    }

    /// Creates the `SSL` object of `context` over a fresh datagram BIO; the
    /// subclass puts it in accept or connect state.
    init(
        context: OpaquePointer, mtu: Int, ipv6: Bool, allocator: ByteBufferAllocator,
        connectionID: ConnectionIDPolicy = .off
    ) throws {
        guard let ssl = SSL_new(context) else { throw OpenSSLError.fromQueue("SSL_new") }
        self.ssl = ssl
        connectionIDPolicy = connectionID
        buffers = DatagramBIOBuffers(mtu: mtu, overhead: ipv6 ? 48 : 28, allocator: allocator)
        guard let bio = DatagramBIO.make(buffers: buffers) else {
            SSL_free(ssl)
            throw OpenSSLError.fromQueue("BIO_new")
        }
        SSL_set_bio(ssl, bio, bio)
        buffers.stopsBeforeProtectedRecords = connectionID.isEnabled
        _ = dp_SSL_set_app_data(ssl, Unmanaged.passUnretained(self).toOpaque())
        // With SSL_OP_NO_QUERY_MTU, OpenSSL uses this as the largest record datagram.
        if dp_SSL_set_mtu(ssl, mtu) != 1 {
            OpenSSLError.drain()
        }
    }

    deinit {
        _ = dp_SSL_set_app_data(ssl, nil)
        SSL_free(ssl)
    }

    /// The endpoint whose `SSL` object OpenSSL hands a callback.
    static func endpoint(of ssl: OpaquePointer?) -> DTLSEndpoint? {
        guard let ssl, let pointer = dp_SSL_get_app_data(ssl) else { return nil }
        return Unmanaged<DTLSEndpoint>.fromOpaque(pointer).takeUnretainedValue()
    }

    final func noteReceivedAlert(_ value: Int32) {
        receivedAlert = String(cString: SSL_alert_desc_string_long(value))
        if value >> 8 == SSL3_AL_FATAL { receivedFatalAlert = true }
    }

    /// Queues one datagram from the peer for the next step to read.
    public final func receive(_ datagram: ByteBuffer) {
        buffers.inbound = datagram
        buffers.recordLayer?.startDatagram()
    }

    /// One `SSL_do_handshake` step, before each role reads its outcome.
    enum HandshakeStep {
        case complete
        /// Waiting for the peer's next flight (or a retransmission timer).
        case inProgress
        /// `SSL_get_error`'s code; the error queue is still to be drained.
        case failed(Int32)
    }

    final func stepHandshake() -> HandshakeStep {
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .complete }
        let error = SSL_get_error(ssl, result)
        guard error != SSL_ERROR_WANT_READ, error != SSL_ERROR_WANT_WRITE else {
            buffers.inbound = nil
            return .inProgress
        }
        return .failed(error)
    }

    /// Advances the handshake with whatever was received: what both roles do;
    /// each adds what its side checks once the handshake completes.
    public func handshake() -> HandshakeProgress {
        if case .failure(let failure) = restoreBuffers() { return .failed(failure) }
        switch stepHandshake() {
        case .complete: return .complete
        case .inProgress: return .inProgress
        case .failed(let error): return .failed(failure(error))
        }
    }

    /// Who the peer turned out to be, as ` key=value` fields for the session's log lines.
    public var identityLogFields: String { "" }

    /// Decrypts the queued datagram's next record, appending plaintext to `destination`.
    public final func read(into destination: inout ByteBuffer, maximum: Int) -> ReadResult {
        if let failure = restoreBuffers().failure { return .failed(failure) }
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
            return .failed(failure(error))
        }
    }

    /// Encrypts one plaintext datagram as one record.
    public final func write(_ plaintext: ByteBuffer) -> DTLSStepResult {
        plaintext.withUnsafeReadableBytes { write(bytes: $0) }
    }

    /// ``write(_:)`` of bytes borrowed for the call: OpenSSL copies them into its record.
    public final func write(bytes: UnsafeRawBufferPointer) -> DTLSStepResult {
        if case .failure(let failure) = restoreBuffers() { return .failure(failure) }
        let written = SSL_write(ssl, bytes.baseAddress, Int32(bytes.count))
        guard written > 0 else { return .failure(failure(SSL_get_error(ssl, written), step: "SSL_write")) }
        return .done
    }

    /// Queues our close_notify. Sessions are torn down right after; no reply is awaited.
    public final func shutdown() {
        guard case .success = restoreBuffers() else { return }
        if SSL_shutdown(ssl) < 0 { OpenSSLError.drain() }
    }

    /// How long until OpenSSL wants ``handleTimeout()``, or nil when no timer runs.
    public final func nextTimeout() -> TimeAmount? {
        var value = timeval()
        guard dp_DTLSv1_get_timeout(ssl, &value) == 1 else { return nil }
        return .seconds(Int64(value.tv_sec)) + .microseconds(Int64(value.tv_usec))
    }

    /// Retransmits the last flight if its timer expired; fails when OpenSSL gave up.
    public final func handleTimeout() -> DTLSStepResult {
        if case .failure(let failure) = restoreBuffers() { return .failure(failure) }
        guard dp_DTLSv1_handle_timeout(ssl) >= 0 else {
            return .failure(failure(SSL_ERROR_SSL, step: "DTLSv1_handle_timeout"))
        }
        return .done
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
    public final func drainOutbound(_ body: (ByteBuffer) -> Void) -> Bool {
        if let layer = buffers.recordLayer, layer.convertsOutbound {
            buffers.outbound = buffers.outbound.compactMap { layer.convertOutbound($0) }
        }
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
    /// `SSL_free_buffers` dereferences NULL), so every call that may write
    /// first restores them (``restoreBuffers()``).
    @discardableResult
    public final func releaseBuffers() -> Bool {
        guard !buffersReleased else { return true }
        buffersReleased = SSL_free_buffers(ssl) == 1
        return buffersReleased
    }

    /// Allocates the record buffers again after ``releaseBuffers()``.
    final func restoreBuffers() -> DTLSStepResult {
        guard buffersReleased else { return .done }
        guard SSL_alloc_buffers(ssl) == 1 else {
            let queued = OpenSSLError.drain()
            return .failure(
                DTLSFailure(queued.isEmpty ? "cannot allocate record buffers" : queued.joined(separator: "; ")))
        }
        buffersReleased = false
        return .done
    }

    /// The largest plaintext one record can carry at the configured MTU.
    public final var maximumPlaintext: Int {
        Int(DTLS_get_data_mtu(ssl))
    }

    public final var cipherName: String {
        guard let cipher = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(cipher) else { return "none" }
        return String(cString: name)
    }

    public final var protocolVersion: String {
        String(cString: SSL_get_version(ssl))
    }

    /// Whether this handshake resumed a session from a ticket.
    public final var isResumed: Bool { SSL_session_reused(ssl) == 1 }

    /// ` resumed=yes` when the handshake resumed a session from a ticket; empty otherwise.
    public final var resumptionLogField: String {
        isResumed ? " resumed=yes" : ""
    }

    /// Who the peer is in failure texts: `peer` for a server's client, `server` for a connector's.
    var peerRole: String { "peer" }

    /// Why a step failed: the peer's fatal alert, else OpenSSL's queued
    /// reasons (the queue is drained), else what `SSL_get_error` said.
    final func failure(_ error: Int32, step: String? = nil, verification: Bool = false) -> DTLSFailure {
        let queued = OpenSSLError.drain()
        if receivedFatalAlert, let alert = receivedAlert {
            return DTLSFailure("\(peerRole) sent fatal alert: \(alert)", verification: verification)
        }
        let prefix = step.map { "\($0): " } ?? ""
        if !queued.isEmpty { return DTLSFailure(prefix + queued.joined(separator: "; "), verification: verification) }
        let text: String
        switch error {
        case SSL_ERROR_SYSCALL: text = "unexpected end of stream"
        case SSL_ERROR_SSL: text = "protocol error"
        default: text = "SSL error \(error)"
        }
        return DTLSFailure(prefix + text, verification: verification)
    }
}

/// The info callback both roles' contexts install: remembers the alerts a
/// peer sends, so that a session's close line can say why it ended.
func endpointInfoCallback(_ ssl: OpaquePointer?, _ type: Int32, _ value: Int32) {
    guard type & SSL_CB_READ_ALERT == SSL_CB_READ_ALERT, let endpoint = DTLSEndpoint.endpoint(of: ssl) else { return }
    endpoint.noteReceivedAlert(value)
}
