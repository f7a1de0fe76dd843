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

    public init(
        context: DTLSServerContext, cookies: CookieVerifier, peerMaterial: [UInt8], ipv6: Bool,
        allocator: ByteBufferAllocator
    ) throws {
        self.cookies = cookies
        self.peerMaterial = peerMaterial
        try super.init(
            context: context.raw, mtu: context.mtu, ipv6: ipv6, allocator: allocator,
            connectionID: context.connectionIDPolicy)
        SSL_set_accept_state(ssl)
    }

    static func from(_ ssl: OpaquePointer?) -> DTLSServerConnection? {
        endpoint(of: ssl) as? DTLSServerConnection
    }

    /// Takes the ClientHello that carried a valid cookie; the next
    /// ``handshake()`` answers it; fails when OpenSSL refused it.
    ///
    /// A ClientHello numbered 2 or more (the client was sent a second
    /// HelloVerifyRequest) goes through OpenSSL's stateful cookie exchange,
    /// brought to the client's numbering first (``ClientHelloRenumbering``);
    /// every other one through `DTLSv1_listen`.
    public func start(clientHello: ByteBuffer) -> DTLSStepResult {
        guard let copies = ClientHelloRenumbering.precedingCopies(of: Array(clientHello.readableBytesView)) else {
            return listen(clientHello: clientHello)
        }
        _ = SSL_set_options(ssl, UInt64(dp_SSL_OP_COOKIE_EXCHANGE))
        for copy in copies {
            buffers.inbound = ByteBuffer(bytes: copy)
            if case .failed(let error) = stepHandshake() {
                return .failure(failure(error, step: "a renumbered ClientHello"))
            }
            // The HelloVerifyRequest answers a copy, not the client, which already has its cookie.
            buffers.outbound.removeAll()
        }
        buffers.inbound = clientHello
        return .done
    }

    /// Runs `DTLSv1_listen` on the ClientHello that carried a valid cookie.
    ///
    /// The router already checked the cookie; this lets OpenSSL check it again
    /// and, above all, set the handshake and record sequence numbers a server
    /// continues with after a HelloVerifyRequest, which a fresh `SSL` object
    /// fed a ClientHello with message_seq 1 would not do.
    private func listen(clientHello: ByteBuffer) -> DTLSStepResult {
        buffers.inbound = clientHello
        guard let address = BIO_ADDR_new() else { return .failure(failure(SSL_ERROR_SSL, step: "BIO_ADDR_new")) }
        defer { BIO_ADDR_free(address) }
        let result = DTLSv1_listen(ssl, address)
        buffers.inbound = nil
        guard result == 1 else { return .failure(failure(SSL_ERROR_SSL, step: "DTLSv1_listen")) }
        return .done
    }

    /// Advances the handshake with whatever was received.
    public override func handshake() -> HandshakeProgress {
        let progress = super.handshake()
        return progress == .complete ? admit() : progress
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
    public override var identityLogFields: String {
        var fields = serverName.map { " server_name=\(LogValue.quote($0))" } ?? ""
        if let name = certificateIdentity?.displayName { fields += " identity=\(LogValue.quote(name))" }
        if let pskIdentity { fields += " psk_identity=\(LogValue.quote(pskIdentity))" }
        return fields
    }
}
