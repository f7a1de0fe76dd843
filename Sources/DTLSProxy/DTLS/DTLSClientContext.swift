import COpenSSL

/// One connector's `SSL_CTX` in client mode: the CAs that verify the server,
/// the client certificate, the PSK, and protocol policy.
///
/// Built once from a validated ``ConnectorConfiguration`` and only read
/// afterwards, so sessions on any event loop may create `SSL` objects from it.
/// The server's name is checked per connection (``DTLSClientConnection``).
public final class DTLSClientContext: @unchecked Sendable {
    let raw: OpaquePointer
    /// The largest datagram sessions of this context send.
    public let mtu: Int
    /// `psk_identity` and its key; nil without a PSK.
    let psk: (identity: [UInt8], key: [UInt8])?
    /// The SNI / hostname-check name and the IP to check, from the configuration.
    let serverName: String?
    let serverIP: String?
    let verifiesCertificate: Bool
    /// Whether sessions offer an RFC 9146 CID, and which; off unless asked for.
    let connectionIDPolicy: ConnectionIDPolicy

    /// Builds the context, loading every credential file; failures name the connector key at fault.
    ///
    /// With a `connectionID` policy that is on, every ClientHello offers the
    /// `connection_id` extension (RFC 9146) with a CID of the policy's
    /// (zero-length by default: the server then sends ordinary records).
    public init(
        connector: ConnectorConfiguration, configFile: String, connectionID: ConnectionIDPolicy = .off
    ) throws(ConfigurationError) {
        OpenSSLError.drain()
        func fail(_ key: String, _ cause: String) -> ConfigurationError {
            ConfigurationError(file: configFile, key: connector.keyPath(key), cause: cause)
        }
        let ctx = try DTLSContextSetup.newContext(DTLS_client_method(), fail: fail)
        raw = ctx
        mtu = connector.mtu
        connectionIDPolicy = connectionID
        serverName = connector.serverName
        serverIP = connector.serverIP
        verifiesCertificate = connector.serverCA != nil
        if let identity = connector.pskIdentity, let key = connector.pskKey {
            psk = (Array(identity.utf8), key)
        } else {
            psk = nil
        }

        // Tickets are asked for unless session_tickets = false; the runtime's
        // ClientSessionCache keeps the last session.
        let cipherList = try DTLSContextSetup.apply(
            DTLSContextSetup.Policy(
                minVersion: connector.minVersion, maxVersion: connector.maxVersion,
                extraOptions: 0, sessionTickets: connector.sessionTickets,
                mtu: connector.mtu, ciphers: connector.ciphers, groups: connector.groups,
                certificates: connector.serverCA != nil, psk: connector.pskFile != nil), to: ctx, fail: fail)
        if let serverCA = connector.serverCA {
            guard SSL_CTX_load_verify_locations(ctx, serverCA, nil) == 1 else {
                throw fail(
                    "server_ca",
                    "cannot load CA bundle \(serverCA): \(OpenSSLError.fromQueue("SSL_CTX_load_verify_locations").reasonText)"
                )
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
            SSL_CTX_set_verify_depth(ctx, Int32(connector.verifyDepth))
        } else {
            // PSK only: the key authenticates the server; no certificate suite is offered.
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
        if let certificate = connector.certificate, let privateKey = connector.privateKey {
            try DTLSContextSetup.loadCertificate(ctx, certificate: certificate, privateKey: privateKey, fail: fail)
        }
        if psk != nil {
            SSL_CTX_set_psk_client_callback(ctx, pskClientCallback)
        }
        try Self.checkUsableCiphers(ctx, connector: connector, cipherList: cipherList, fail: fail)
        SSL_CTX_set_info_callback(ctx, endpointInfoCallback)
        if connectionID.isEnabled, !ConnectionIDNegotiation.register(on: ctx) {
            throw fail("connection_id", "OpenSSL refuses the connection_id extension (SSL_CTX_add_custom_ext)")
        }
        _ = dp_SSL_CTX_set_app_data(ctx, Unmanaged.passUnretained(self).toOpaque())
    }

    deinit {
        SSL_CTX_free(raw)
    }

    static func from(_ ssl: OpaquePointer?) -> DTLSClientContext? {
        guard let ssl, let ctx = SSL_get_SSL_CTX(ssl), let pointer = dp_SSL_CTX_get_app_data(ctx) else { return nil }
        return Unmanaged<DTLSClientContext>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Certificate suites only with `server_ca` (nothing could verify the server
    /// otherwise), PSK suites only with a PSK, CBC suites only with DTLS 1.0.
    static func defaultCipherList(_ connector: ConnectorConfiguration) -> String {
        DTLSContextSetup.defaultCipherList(
            certificates: connector.serverCA != nil, psk: connector.pskFile != nil,
            legacy: connector.minVersion == .dtls1_0)
    }

    /// Refuses a cipher string OpenSSL parses but that leaves no suite this
    /// connector's credentials could complete a handshake with.
    private static func checkUsableCiphers(
        _ ctx: OpaquePointer, connector: ConnectorConfiguration, cipherList: String,
        fail: (String, String) -> ConfigurationError
    ) throws(ConfigurationError) {
        var usable = false
        if let ciphers = SSL_CTX_get_ciphers(ctx) {
            for index in 0..<dp_sk_SSL_CIPHER_num(ciphers) {
                guard let cipher = dp_sk_SSL_CIPHER_value(ciphers, index) else { continue }
                let auth = SSL_CIPHER_get_auth_nid(cipher)
                if auth == NID_auth_psk || auth == NID_auth_any {
                    if auth == NID_auth_psk, connector.pskFile != nil { usable = true }
                } else if connector.serverCA != nil {
                    usable = true
                }
            }
        }
        OpenSSLError.drain()
        guard usable else {
            let credentials = [
                connector.serverCA != nil ? "server_ca" : nil, connector.pskFile != nil ? "psk_file" : nil,
            ].compactMap { $0 }
            throw fail(
                "ciphers",
                "\"\(cipherList)\" has no suite usable with \(credentials.joined(separator: " and ")) (certificate suites need server_ca, PSK suites psk_file)"
            )
        }
    }
}

/// Hands OpenSSL `psk_identity` and its key; the server's hint is not needed to choose.
private func pskClientCallback(
    _ ssl: OpaquePointer?, _ hint: UnsafePointer<CChar>?, _ identity: UnsafeMutablePointer<CChar>?,
    _ maximumIdentityLength: UInt32,
    _ psk: UnsafeMutablePointer<UInt8>?, _ maximumKeyLength: UInt32
) -> UInt32 {
    guard let identity, let psk, let context = DTLSClientContext.from(ssl), let entry = context.psk,
        entry.identity.count < Int(maximumIdentityLength), entry.key.count <= Int(maximumKeyLength)
    else { return 0 }
    entry.identity.withUnsafeBufferPointer { bytes in
        UnsafeMutableRawPointer(identity).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count)
    }
    identity[entry.identity.count] = 0
    entry.key.withUnsafeBufferPointer { psk.update(from: $0.baseAddress!, count: entry.key.count) }
    return UInt32(entry.key.count)
}
