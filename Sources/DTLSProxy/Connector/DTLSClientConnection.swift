import COpenSSL
import NIOCore

/// One DTLS client connection: an `SSL` object in connect state over a
/// ``DatagramBIOBuffers``, with SNI and the server-name check set.
///
/// The client-side twin of `DTLSConnection`: the read, write, timeout and
/// drain wrappers are the same steps (kept apart for now so that the server
/// side can change without touching client mode). Lives on one event loop;
/// every failing OpenSSL call drains the error queue before returning.
final class DTLSClientConnection {
    let ssl: OpaquePointer
    private let buffers: DatagramBIOBuffers
    /// The last alert the server sent, as OpenSSL's long description.
    private(set) var receivedAlert: String?
    private(set) var receivedFatalAlert = false

    enum HandshakeProgress: Equatable {
        case inProgress
        case complete
        /// `verification` is set when the server's certificate failed verification.
        case failed(String, verification: Bool)
    }

    enum ReadResult: Equatable {
        case data
        case wantRead
        case closeNotify
        case failed(String)
    }

    init(context: DTLSClientContext, ipv6: Bool, allocator: ByteBufferAllocator) throws {
        guard let ssl = SSL_new(context.raw) else { throw OpenSSLError.fromQueue("SSL_new") }
        self.ssl = ssl
        buffers = DatagramBIOBuffers(mtu: context.mtu, overhead: ipv6 ? 48 : 28, allocator: allocator)
        guard let bio = DatagramBIO.make(buffers: buffers) else {
            SSL_free(ssl)
            throw OpenSSLError.fromQueue("BIO_new")
        }
        SSL_set_bio(ssl, bio, bio)
        _ = dp_SSL_set_app_data(ssl, Unmanaged.passUnretained(self).toOpaque())
        SSL_set_connect_state(ssl)
        if dp_SSL_set_mtu(ssl, context.mtu) != 1 { OpenSSLError.drain() }
        do {
            try configureServerName(context)
        } catch {
            _ = dp_SSL_set_app_data(ssl, nil)
            SSL_free(ssl)
            throw error
        }
    }

    deinit {
        _ = dp_SSL_set_app_data(ssl, nil)
        SSL_free(ssl)
    }

    /// SNI for a name; the certificate check for the name, or for the IP when
    /// the server is known by address only (OpenSSL's X509_check_host / _ip).
    private func configureServerName(_ context: DTLSClientContext) throws {
        if let name = context.serverName {
            guard dp_SSL_set_tlsext_host_name(ssl, name) == 1 else { throw OpenSSLError.fromQueue("SSL_set_tlsext_host_name") }
        }
        guard context.verifiesCertificate else { return }
        if let name = context.serverName {
            // A wildcard matches exactly one label, as the listener's allow_dns does.
            SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            guard SSL_set1_host(ssl, name) == 1 else { throw OpenSSLError.fromQueue("SSL_set1_host") }
        } else if let ip = context.serverIP {
            guard let parameters = SSL_get0_param(ssl), X509_VERIFY_PARAM_set1_ip_asc(parameters, ip) == 1 else {
                throw OpenSSLError.fromQueue("X509_VERIFY_PARAM_set1_ip_asc")
            }
        }
    }

    static func from(_ ssl: OpaquePointer?) -> DTLSClientConnection? {
        guard let ssl, let pointer = dp_SSL_get_app_data(ssl) else { return nil }
        return Unmanaged<DTLSClientConnection>.fromOpaque(pointer).takeUnretainedValue()
    }

    func noteReceivedAlert(_ value: Int32) {
        receivedAlert = String(cString: SSL_alert_desc_string_long(value))
        if value >> 8 == SSL3_AL_FATAL { receivedFatalAlert = true }
    }

    /// Queues one datagram from the server for the next step to read.
    func receive(_ datagram: ByteBuffer) {
        buffers.inbound = datagram
    }

    /// Starts or advances the handshake (the first call writes the ClientHello).
    func handshake() -> HandshakeProgress {
        let result = SSL_do_handshake(ssl)
        if result == 1 { return .complete }
        let error = SSL_get_error(ssl, result)
        switch error {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            buffers.inbound = nil
            return .inProgress
        default:
            let verify = SSL_get_verify_result(ssl)
            if verify != X509_V_OK {
                OpenSSLError.drain()
                return .failed("certificate verify failed: \(String(cString: X509_verify_cert_error_string(verify)))", verification: true)
            }
            return .failed(failureReason(error), verification: false)
        }
    }

    /// Decrypts the queued datagram's next record, appending plaintext to `destination`.
    func read(into destination: inout ByteBuffer, maximum: Int) -> ReadResult {
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
    func write(_ plaintext: ByteBuffer) -> Bool {
        let written = plaintext.withUnsafeReadableBytes { bytes in
            SSL_write(ssl, bytes.baseAddress, Int32(bytes.count))
        }
        if written <= 0 {
            OpenSSLError.drain()
            return false
        }
        return true
    }

    /// Queues our close_notify; no reply is awaited.
    func shutdown() {
        if SSL_shutdown(ssl) < 0 { OpenSSLError.drain() }
    }

    /// How long until OpenSSL wants ``handleTimeout()``, or nil when no timer runs.
    func nextTimeout() -> TimeAmount? {
        var value = timeval()
        guard dp_DTLSv1_get_timeout(ssl, &value) == 1 else { return nil }
        return .seconds(Int64(value.tv_sec)) + .microseconds(Int64(value.tv_usec))
    }

    /// Retransmits the last flight if its timer expired. False when OpenSSL gave up.
    func handleTimeout() -> Bool {
        if dp_DTLSv1_handle_timeout(ssl) < 0 {
            OpenSSLError.drain()
            return false
        }
        return true
    }

    /// Hands each datagram OpenSSL wrote since the last call to `body`, records
    /// of one step packed up to the MTU (as the server side does); false when there was none.
    @discardableResult
    func drainOutbound(_ body: (ByteBuffer) -> Void) -> Bool {
        guard !buffers.outbound.isEmpty else { return false }
        defer { buffers.outbound.removeAll(keepingCapacity: true) }
        if buffers.outbound.count == 1 {
            body(buffers.outbound[0])
        } else {
            for datagram in DatagramPacker.pack(buffers.outbound, mtu: buffers.mtu) { body(datagram) }
        }
        return true
    }

    /// The largest plaintext one record can carry at the configured MTU.
    var maximumPlaintext: Int { Int(DTLS_get_data_mtu(ssl)) }

    var cipherName: String {
        guard let cipher = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(cipher) else { return "none" }
        return String(cString: name)
    }

    var protocolVersion: String { String(cString: SSL_get_version(ssl)) }

    /// ` server_identity=NAME` (the verified certificate's first SAN URI, else CN,
    /// else dNSName) and/or ` psk_identity=ID` for the session's log lines.
    var identityLogFields: String {
        var fields = ""
        if let name = PeerIdentity.certificate(of: ssl)?.displayName { fields += " server_identity=\(LogValue.quote(name))" }
        if let identity = PeerIdentity.pskIdentity(of: ssl) { fields += " psk_identity=\(LogValue.quote(identity))" }
        return fields
    }

    private func failureReason(_ error: Int32) -> String {
        let queued = OpenSSLError.drain()
        if receivedFatalAlert, let alert = receivedAlert { return "server sent fatal alert: \(alert)" }
        if !queued.isEmpty { return queued.joined(separator: "; ") }
        switch error {
        case SSL_ERROR_SYSCALL: return "unexpected end of stream"
        case SSL_ERROR_SSL: return "protocol error"
        default: return "SSL error \(error)"
        }
    }
}
