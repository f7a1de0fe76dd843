import COpenSSL
import NIOCore

/// One DTLS client connection: a connector's side of a session to its server.
///
/// Adds to ``DTLSEndpoint`` the client's handshake, with SNI and the check of
/// the server's name (or IP) against its certificate.
final class DTLSClientConnection: DTLSEndpoint {
    init(context: DTLSClientContext, ipv6: Bool, allocator: ByteBufferAllocator) throws {
        try super.init(
            context: context.raw, mtu: context.mtu, ipv6: ipv6, allocator: allocator,
            connectionID: context.connectionIDPolicy)
        SSL_set_connect_state(ssl)
        try configureServerName(context)
    }

    override var peerRole: String { "server" }

    /// SNI for a name; the certificate check for the name, or for the IP when
    /// the server is known by address only (OpenSSL's X509_check_host / _ip).
    private func configureServerName(_ context: DTLSClientContext) throws {
        if let name = context.serverName {
            guard dp_SSL_set_tlsext_host_name(ssl, name) == 1 else {
                throw OpenSSLError.fromQueue("SSL_set_tlsext_host_name")
            }
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

    /// Starts or advances the handshake (the first call writes the ClientHello).
    override func handshake() -> HandshakeProgress {
        switch super.handshake() {
        case .failed(let failure):
            let verify = SSL_get_verify_result(ssl)
            if verify != X509_V_OK {
                OpenSSLError.drain()
                return .failed(
                    DTLSFailure(
                        "certificate verify failed: \(String(cString: X509_verify_cert_error_string(verify)))",
                        verification: true))
            }
            return .failed(failure)
        case let progress: return progress
        }
    }

    /// ` server_identity=NAME` (the verified certificate's first SAN URI, else CN,
    /// else dNSName) and/or ` psk_identity=ID` for the session's log lines.
    override var identityLogFields: String {
        var fields = ""
        if let name = PeerIdentity.certificate(of: ssl)?.displayName {
            fields += " server_identity=\(LogValue.quote(name))"
        }
        if let identity = PeerIdentity.pskIdentity(of: ssl) { fields += " psk_identity=\(LogValue.quote(identity))" }
        return fields
    }
}
