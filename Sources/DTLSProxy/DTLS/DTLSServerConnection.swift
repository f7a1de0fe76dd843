import COpenSSL
import NIOCore

/// One DTLS server connection: a listener's side of a client's session.
///
/// Adds to ``DTLSEndpoint`` the server's handshake: `DTLSv1_listen` on the
/// cookie-verified ClientHello, the allow-lists and route refusals when the
/// handshake completes, and who the client turned out to be.
public final class DTLSServerConnection: DTLSEndpoint {
    let cookies: CookieVerifier
    let peerMaterial: [UInt8]
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
        /// The client authenticated but no allow-list admits it, or no route
        /// takes it; an access_denied alert is queued in place of the server's
        /// last flight. `rules` are what refused, `detail` what the client presented.
        case refused(rules: [String], detail: String)
    }

    public init(
        context: DTLSServerContext, cookies: CookieVerifier, peerMaterial: [UInt8], ipv6: Bool,
        allocator: ByteBufferAllocator
    ) throws {
        self.cookies = cookies
        self.peerMaterial = peerMaterial
        try super.init(context: context.raw, mtu: context.mtu, ipv6: ipv6, allocator: allocator)
        SSL_set_accept_state(ssl)
    }

    static func from(_ ssl: OpaquePointer?) -> DTLSServerConnection? {
        endpoint(of: ssl) as? DTLSServerConnection
    }

    /// Takes the ClientHello that carried a valid cookie; the next
    /// ``handshake()`` answers it. False when OpenSSL refused it.
    ///
    /// A ClientHello numbered 2 or more (the client was sent a second
    /// HelloVerifyRequest) goes through OpenSSL's stateful cookie exchange,
    /// brought to the client's numbering first (``ClientHelloRenumbering``);
    /// every other one through `DTLSv1_listen`.
    public func start(clientHello: ByteBuffer) -> Bool {
        guard let copies = ClientHelloRenumbering.precedingCopies(of: Array(clientHello.readableBytesView)) else {
            return listen(clientHello: clientHello)
        }
        _ = SSL_set_options(ssl, UInt64(dp_SSL_OP_COOKIE_EXCHANGE))
        for copy in copies {
            buffers.inbound = ByteBuffer(bytes: copy)
            guard case .inProgress = stepHandshake() else {
                OpenSSLError.drain()
                return false
            }
            // The HelloVerifyRequest answers a copy, not the client, which already has its cookie.
            buffers.outbound.removeAll()
        }
        buffers.inbound = clientHello
        return true
    }

    /// Runs `DTLSv1_listen` on the ClientHello that carried a valid cookie.
    ///
    /// The router already checked the cookie; this lets OpenSSL check it again
    /// and, above all, set the handshake and record sequence numbers a server
    /// continues with after a HelloVerifyRequest, which a fresh `SSL` object
    /// fed a ClientHello with message_seq 1 would not do.
    private func listen(clientHello: ByteBuffer) -> Bool {
        buffers.inbound = clientHello
        guard let address = BIO_ADDR_new() else { return false }
        defer { BIO_ADDR_free(address) }
        let result = DTLSv1_listen(ssl, address)
        buffers.inbound = nil
        if result != 1 { OpenSSLError.drain() }
        return result == 1
    }

    /// Advances the handshake with whatever was received.
    public func handshake() -> HandshakeProgress {
        guard restoreBuffers() else { return .failed("cannot allocate record buffers") }
        switch stepHandshake() {
        case .complete: return admit()
        case .inProgress: return .inProgress
        case .failed(let error): return .failed(failureReason(error))
        }
    }

    /// Records who the peer is and applies the listener's allow-lists.
    private func admit() -> HandshakeProgress {
        pskIdentity = PeerIdentity.pskIdentity(of: ssl)
        certificateIdentity = PeerIdentity.certificate(of: ssl)
        serverName = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name).map { String(cString: $0).lowercased() }
        guard let identity = certificateIdentity, let context = DTLSServerContext.from(ssl),
            case .refused(let rules) = context.identityPolicy.evaluate(identity)
        else { return .complete }
        return refuse(
            rules: rules,
            detail: "certificate \(identity.summary) matches no entry of \(rules.joined(separator: " or "))")
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

    /// ` server_name=NAME`, ` identity=NAME` and/or ` psk_identity=ID` for the session's log lines.
    public var identityLogFields: String {
        var fields = serverName.map { " server_name=\(LogValue.quote($0))" } ?? ""
        if let name = certificateIdentity?.displayName { fields += " identity=\(LogValue.quote(name))" }
        if let pskIdentity { fields += " psk_identity=\(LogValue.quote(pskIdentity))" }
        return fields
    }
}
