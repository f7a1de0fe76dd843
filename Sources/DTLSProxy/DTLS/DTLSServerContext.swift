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
    static let groups = "X25519:P-256:P-384"
    /// The identities and keys of `psk_file`; nil when the listener has none.
    let pskTable: PSKTable?

    /// Builds the context, loading and cross-checking every credential file.
    ///
    /// Every failure is a `ConfigurationError` naming the key whose file is at
    /// fault, with OpenSSL's reason, so `--check-config` and startup report the same.
    public init(listener: ListenerConfiguration, configFile: String) throws(ConfigurationError) {
        OpenSSLError.drain()
        func fail(_ key: String, _ cause: String) -> ConfigurationError {
            ConfigurationError(file: configFile, key: listener.keyPath(key), cause: cause)
        }
        guard let ctx = SSL_CTX_new(DTLS_server_method()) else {
            throw fail("", "cannot create DTLS context: \(OpenSSLError.fromQueue("SSL_CTX_new").reasonText)")
        }
        raw = ctx
        mtu = listener.mtu
        pskTable = listener.pskTable

        let minimum = listener.minVersion == .dtls1_0 ? DTLS1_VERSION : DTLS1_2_VERSION
        _ = dp_SSL_CTX_set_min_proto_version(ctx, minimum)
        _ = dp_SSL_CTX_set_max_proto_version(ctx, DTLS1_2_VERSION)
        SSL_CTX_set_options(ctx, UInt64(dp_SSL_OP_NO_RENEGOTIATION | dp_SSL_OP_NO_COMPRESSION
            | dp_SSL_OP_CIPHER_SERVER_PREFERENCE | dp_SSL_OP_NO_QUERY_MTU))
        _ = dp_SSL_CTX_set_mode(ctx, dp_SSL_MODE_RELEASE_BUFFERS)
        _ = dp_SSL_CTX_set_read_ahead(ctx, 1)
        // The send buffer need not hold more than one datagram's worth of record.
        _ = dp_SSL_CTX_set_max_send_fragment(ctx, max(512, min(16384, listener.mtu)))
        // Resumption is by tickets only; a server-side cache would grow with every client.
        _ = dp_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        // Never prompt on a terminal for an encrypted key's passphrase.
        SSL_CTX_set_default_passwd_cb(ctx, refusePassphrase)

        var ciphers: [String] = []
        if listener.certificate != nil {
            ciphers += Self.aeadCiphers
            if listener.minVersion == .dtls1_0 { ciphers += Self.legacyCiphers }
        }
        if listener.pskTable != nil { ciphers += Self.pskCiphers }
        if SSL_CTX_set_cipher_list(ctx, ciphers.joined(separator: ":")) != 1 {
            throw fail("ciphers", "OpenSSL accepts none of the ciphers: \(OpenSSLError.fromQueue("SSL_CTX_set_cipher_list").reasonText)")
        }
        if dp_SSL_CTX_set1_groups_list(ctx, Self.groups) != 1 {
            throw fail("groups", "OpenSSL refuses groups \(Self.groups): \(OpenSSLError.fromQueue("SSL_CTX_set1_groups_list").reasonText)")
        }

        if let certificate = listener.certificate {
            guard SSL_CTX_use_certificate_chain_file(ctx, certificate) == 1 else {
                throw fail("certificate", "cannot load certificate chain \(certificate): \(OpenSSLError.fromQueue("SSL_CTX_use_certificate_chain_file").reasonText)")
            }
        }
        if let privateKey = listener.privateKey {
            guard SSL_CTX_use_PrivateKey_file(ctx, privateKey, SSL_FILETYPE_PEM) == 1 else {
                let error = OpenSSLError.fromQueue("SSL_CTX_use_PrivateKey_file")
                // OpenSSL checks the key against an already loaded certificate here and says "key values mismatch".
                if error.reasons.contains(where: { $0.contains("mismatch") }) {
                    throw fail("private_key", "\(privateKey) does not match the certificate \(listener.certificate ?? "")")
                }
                throw fail("private_key", "cannot load private key \(privateKey): \(error.reasonText)")
            }
            guard SSL_CTX_check_private_key(ctx) == 1 else {
                OpenSSLError.drain()
                throw fail("private_key", "\(privateKey) does not match the certificate \(listener.certificate ?? "")")
            }
        }
        if let clientCA = listener.clientCA {
            guard SSL_CTX_load_verify_locations(ctx, clientCA, nil) == 1,
                  let names = SSL_load_client_CA_file(clientCA) else {
                throw fail("client_ca", "cannot load CA bundle \(clientCA): \(OpenSSLError.fromQueue("SSL_CTX_load_verify_locations").reasonText)")
            }
            SSL_CTX_set_client_CA_list(ctx, names)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        }

        if listener.pskTable != nil {
            SSL_CTX_set_psk_server_callback(ctx, pskServerCallback)
        }

        SSL_CTX_set_cookie_generate_cb(ctx, generateCookieCallback)
        SSL_CTX_set_cookie_verify_cb(ctx, verifyCookieCallback)
        SSL_CTX_set_info_callback(ctx, infoCallback)
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
private func pskServerCallback(_ ssl: OpaquePointer?, _ identity: UnsafePointer<CChar>?, _ psk: UnsafeMutablePointer<UInt8>?, _ maximumLength: UInt32) -> UInt32 {
    guard let identity, let psk, let context = DTLSServerContext.from(ssl),
          let key = context.pskTable?[String(cString: identity)], key.count <= Int(maximumLength) else { return 0 }
    key.withUnsafeBufferPointer { psk.update(from: $0.baseAddress!, count: key.count) }
    return UInt32(key.count)
}

private func refusePassphrase(_ buffer: UnsafeMutablePointer<CChar>?, _ size: Int32, _ rwflag: Int32, _ userdata: UnsafeMutableRawPointer?) -> Int32 {
    0
}

/// Called by `DTLSv1_listen` only when a cookie fails verification; the router
/// verified it before creating the `SSL` object, so this rarely runs.
private func generateCookieCallback(_ ssl: OpaquePointer?, _ cookie: UnsafeMutablePointer<UInt8>?, _ length: UnsafeMutablePointer<UInt32>?) -> Int32 {
    guard let connection = DTLSConnection.from(ssl), let cookie, let length else { return 0 }
    let value = connection.cookies.cookie(for: connection.peerMaterial)
    value.withUnsafeBufferPointer { cookie.update(from: $0.baseAddress!, count: value.count) }
    length.pointee = UInt32(value.count)
    return 1
}

private func verifyCookieCallback(_ ssl: OpaquePointer?, _ cookie: UnsafePointer<UInt8>?, _ length: UInt32) -> Int32 {
    guard let connection = DTLSConnection.from(ssl), let cookie else { return 0 }
    let value = Array(UnsafeBufferPointer(start: cookie, count: Int(length)))
    return connection.cookies.verify(value, for: connection.peerMaterial) ? 1 : 0
}

/// Remembers the alerts a peer sends, so a session's close line can say why it ended.
private func infoCallback(_ ssl: OpaquePointer?, _ type: Int32, _ value: Int32) {
    guard type & SSL_CB_READ_ALERT == SSL_CB_READ_ALERT, let connection = DTLSConnection.from(ssl) else { return }
    connection.noteReceivedAlert(value)
}
