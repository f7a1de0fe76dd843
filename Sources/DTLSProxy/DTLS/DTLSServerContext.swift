import COpenSSL
import Foundation

/// One listener's `SSL_CTX`: credentials, protocol policy and the callbacks
/// every session of that listener shares.
///
/// Built once from a validated `ListenerConfiguration` and never changed
/// afterwards, so it is safe to create `SSL` objects from it on any event
/// loop at once (OpenSSL 1.1.0+ needs no locking for that).
public final class DTLSServerContext: @unchecked Sendable {
    let raw: OpaquePointer
    /// The largest datagram sessions of this context send.
    public let mtu: Int

    /// AEAD suites with forward secrecy; DTLS 1.2 only.
    static let aeadCiphers = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ]
    /// DTLS 1.0 has no AEAD suites; these are offered only with `min_version = "1.0"`.
    static let legacyCiphers = [
        "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA",
        "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
    ]
    /// Pre-shared-key AEAD suites, with and without ECDHE; CCM and CCM8 for CoAP devices (RFC 7252 §9.1.3.1).
    static let pskCiphers = [
        "ECDHE-PSK-CHACHA20-POLY1305", "PSK-AES128-GCM-SHA256", "PSK-AES256-GCM-SHA384",
        "PSK-CHACHA20-POLY1305", "PSK-AES128-CCM", "PSK-AES128-CCM8",
    ]
    /// DTLS 1.0 PSK suites (CBC with SHA-1), offered only with `min_version = "1.0"`.
    static let legacyPSKCiphers = ["ECDHE-PSK-AES128-CBC-SHA", "PSK-AES128-CBC-SHA"]
    /// The built-in `groups`, most preferred first.
    static let groups = "X25519:P-256:P-384"
    /// The identities and keys of `psk_file`; nil when the listener has none.
    let pskTable: PSKTable?
    /// `allow_cn`, `allow_dns`, `allow_uri`: checked when a handshake completes.
    let identityPolicy: ClientIdentityPolicy
    /// The ticket keys; nil when `session_tickets = false`. Route contexts share their listener's.
    let ticketKeys: TicketKeySchedule?
    /// Routes with their own certificate, in file order: the SNI callback
    /// switches a handshake to the first whose `server_name` matches.
    let serverNameContexts: [(serverNames: [String], context: DTLSServerContext)]
    /// Whether sessions negotiate an RFC 9146 CID, and how they issue it; off unless asked for.
    let connectionIDPolicy: ConnectionIDPolicy

    /// Builds the context, loading and cross-checking every credential file.
    ///
    /// Every failure is a `ConfigurationError` naming the key whose file is at
    /// fault, with OpenSSL's reason, so `--check-config` and startup report the same.
    ///
    /// With a `connectionID` policy that is on, sessions answer a client's
    /// `connection_id` extension (RFC 9146) with a CID of the policy's
    /// (4 to 16 bytes, ``ConnectionIDPolicy/serverLengths``) when the suite is AEAD.
    public convenience init(
        listener: ListenerConfiguration, configFile: String, connectionID: ConnectionIDPolicy = .off
    ) throws(ConfigurationError) {
        try self.init(
            listener: listener, configFile: configFile, route: nil, sharedTicketKeys: nil, connectionID: connectionID)
    }

    /// With `route`, the context of a route with its own certificate: the
    /// listener's settings with the route's credentials, sharing the listener's
    /// ticket keys so that a ticket resumes whichever certificate served it.
    private init(
        listener: ListenerConfiguration, configFile: String, route: RouteConfiguration?,
        sharedTicketKeys: TicketKeySchedule?, connectionID: ConnectionIDPolicy
    ) throws(ConfigurationError) {
        OpenSSLError.drain()
        var listener = listener
        if let route {
            listener.certificate = route.certificate
            listener.privateKey = route.privateKey
        }
        func fail(_ key: String, _ cause: String) -> ConfigurationError {
            let path =
                route.map { route in
                    ["certificate", "private_key"].contains(key) ? route.keyPath(listener: listener.index, key) : nil
                } ?? nil
            return ConfigurationError(file: configFile, key: path ?? listener.keyPath(key), cause: cause)
        }
        let ctx = try DTLSContextSetup.newContext(DTLS_server_method(), fail: fail)
        raw = ctx
        mtu = listener.mtu
        connectionIDPolicy = connectionID
        pskTable = listener.pskTable
        let security = listener.security
        identityPolicy = security.identityPolicy
        ticketKeys =
            route != nil
            ? sharedTicketKeys
            : security.sessionTickets
                ? TicketKeySchedule(
                    secret: security.ticketSecret ?? CookieVerifier.randomSecret(), rotation: security.ticketKeyRotation
                )
                : nil

        let cipherList = try DTLSContextSetup.apply(
            DTLSContextSetup.Policy(
                minVersion: listener.minVersion, maxVersion: security.maxVersion,
                extraOptions: dp_SSL_OP_CIPHER_SERVER_PREFERENCE, sessionTickets: security.sessionTickets,
                mtu: listener.mtu, ciphers: security.ciphers, groups: security.groups,
                certificates: listener.certificate != nil, psk: listener.pskTable != nil), to: ctx, fail: fail)

        if let certificate = listener.certificate, let privateKey = listener.privateKey {
            try DTLSContextSetup.loadCertificate(ctx, certificate: certificate, privateKey: privateKey, fail: fail)
        }
        try Self.configureClientCertificates(ctx, listener: listener, fail: fail)
        if listener.pskTable != nil {
            SSL_CTX_set_psk_server_callback(ctx, pskServerCallback)
            if let hint = security.pskIdentityHint, SSL_CTX_use_psk_identity_hint(ctx, hint) != 1 {
                throw fail(
                    "psk_identity_hint",
                    "OpenSSL refuses the hint: \(OpenSSLError.fromQueue("SSL_CTX_use_psk_identity_hint").reasonText)")
            }
        }
        try Self.checkUsableCiphers(ctx, listener: listener, cipherList: cipherList, fail: fail)
        Self.setSessionContext(ctx, listener: listener)
        if let ticketKeys {
            _ = dp_SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticketKeyCallback)
            _ = dp_SSL_CTX_set_timeout(ctx, ticketKeys.sessionLifetimeSeconds)
        }

        SSL_CTX_set_cookie_generate_cb(ctx, generateCookieCallback)
        SSL_CTX_set_cookie_verify_cb(ctx, verifyCookieCallback)
        SSL_CTX_set_info_callback(ctx, endpointInfoCallback)
        if connectionID.isEnabled {
            // Route contexts too: SSL_set_SSL_CTX takes the new context's custom extensions.
            guard ConnectionIDPolicy.serverLengths.contains(connectionID.length) else {
                throw fail("connection_id", "a listener issues CIDs of 4 to 16 bytes, not \(connectionID.length)")
            }
            guard ConnectionIDNegotiation.register(on: ctx) else {
                throw fail("connection_id", "OpenSSL refuses the connection_id extension (SSL_CTX_add_custom_ext)")
            }
        }

        var serverNameContexts: [(serverNames: [String], context: DTLSServerContext)] = []
        if route == nil {
            for route in listener.routes where route.certificate != nil {
                let context = try DTLSServerContext(
                    listener: listener, configFile: configFile, route: route, sharedTicketKeys: ticketKeys,
                    connectionID: connectionID)
                serverNameContexts.append((route.serverNames, context))
            }
            // Always installed, even with no route certificate: OpenSSL 3.0 keeps the
            // SNI in the SSL_SESSION (and so in its ticket) only when a servername
            // callback accepted it, and on a TLS 1.2 resumption SSL_get_servername()
            // returns that stored name. Without it a resumed client has no name and
            // is routed, logged and reported as if it had sent none.
            _ = dp_SSL_CTX_set_tlsext_servername_callback(ctx, serverNameCallback)
        }
        self.serverNameContexts = serverNameContexts
        registerAsAppData()
    }

    deinit {
        SSL_CTX_free(raw)
    }

    /// Everything after `init` reads the context only; callbacks find it again through the app data.
    private func registerAsAppData() {
        _ = dp_SSL_CTX_set_app_data(raw, Unmanaged.passUnretained(self).toOpaque())
    }

    static func from(_ ssl: OpaquePointer?) -> DTLSServerContext? {
        guard let ssl, let ctx = SSL_get_SSL_CTX(ssl), let pointer = dp_SSL_CTX_get_app_data(ctx) else { return nil }
        return Unmanaged<DTLSServerContext>.fromOpaque(pointer).takeUnretainedValue()
    }
}

/// Looks the client's PSK identity up in the listener's table; 0 refuses the handshake.
private func pskServerCallback(
    _ ssl: OpaquePointer?, _ identity: UnsafePointer<CChar>?, _ psk: UnsafeMutablePointer<UInt8>?,
    _ maximumLength: UInt32
) -> UInt32 {
    guard let identity, let psk, let context = DTLSServerContext.from(ssl),
        let key = context.pskTable?[String(cString: identity)], key.count <= Int(maximumLength)
    else { return 0 }
    key.withUnsafeBufferPointer { psk.update(from: $0.baseAddress!, count: key.count) }
    return UInt32(key.count)
}

/// Called by `DTLSv1_listen` only when a cookie fails verification; the router
/// verified it before creating the `SSL` object, so this rarely runs.
private func generateCookieCallback(
    _ ssl: OpaquePointer?, _ cookie: UnsafeMutablePointer<UInt8>?, _ length: UnsafeMutablePointer<UInt32>?
) -> Int32 {
    guard let connection = DTLSServerConnection.from(ssl), let cookie, let length else { return 0 }
    let value = connection.cookies.cookie(for: connection.peerMaterial)
    value.withUnsafeBufferPointer { cookie.update(from: $0.baseAddress!, count: value.count) }
    length.pointee = UInt32(value.count)
    return 1
}

private func verifyCookieCallback(_ ssl: OpaquePointer?, _ cookie: UnsafePointer<UInt8>?, _ length: UInt32) -> Int32 {
    guard let connection = DTLSServerConnection.from(ssl), let cookie else { return 0 }
    let value = Array(UnsafeBufferPointer(start: cookie, count: Int(length)))
    return connection.cookies.verify(value, for: connection.peerMaterial) ? 1 : 0
}

/// Accepts the client's SNI (`SSL_TLSEXT_ERR_OK`, so that OpenSSL stores it in
/// the session and a resumption routes by the same name) and serves the
/// certificate of the first route whose `server_name` matches it by moving the
/// handshake to that route's `SSL_CTX` (`SSL_set_SSL_CTX` takes its certificate
/// and key). A name no route claims keeps the listener's certificate; which
/// backend the client gets is decided when the handshake completes.
///
/// On a resumption `SSL_get_servername` already returns the name stored in the
/// session, so the resumed handshake is served the certificate context of the
/// name it first used, whatever it sends now.
private func serverNameCallback(
    _ ssl: OpaquePointer?, _ alert: UnsafeMutablePointer<Int32>?, _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let ssl, let context = DTLSServerContext.from(ssl),
        let raw = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)
    else { return SSL_TLSEXT_ERR_OK }
    let name = String(cString: raw).lowercased()
    guard
        let match = context.serverNameContexts.first(where: { entry in
            entry.serverNames.contains { ClientIdentityPolicy.dnsEntry($0, matches: name) }
        })
    else { return SSL_TLSEXT_ERR_OK }
    guard SSL_set_SSL_CTX(ssl, match.context.raw) != nil else {
        OpenSSLError.drain()
        alert?.pointee = SSL_AD_INTERNAL_ERROR
        return SSL_TLSEXT_ERR_ALERT_FATAL
    }
    return SSL_TLSEXT_ERR_OK
}
