import COpenSSL

/// The parts of building a listener's `SSL_CTX` that concern who may connect:
/// client certificates, the usable suites, the session context (the rest is
/// ``DTLSContextSetup``, shared with connectors).
extension DTLSServerContext {
    typealias Failure = (_ key: String, _ cause: String) -> ConfigurationError

    /// Loads `client_ca` (always, so that `--check-config` judges it even with
    /// `client_auth = "none"`) and sets the verification mode and depth.
    static func configureClientCertificates(
        _ ctx: OpaquePointer, listener: ListenerConfiguration, fail: Failure
    ) throws(ConfigurationError) {
        guard let clientCA = listener.clientCA else { return }
        guard SSL_CTX_load_verify_locations(ctx, clientCA, nil) == 1 else {
            throw fail(
                "client_ca",
                "cannot load CA bundle \(clientCA): \(OpenSSLError.fromQueue("SSL_CTX_load_verify_locations").reasonText)"
            )
        }
        guard let names = SSL_load_client_CA_file(clientCA) else {
            throw fail(
                "client_ca",
                "no CA certificate in \(clientCA): \(OpenSSLError.fromQueue("SSL_load_client_CA_file").reasonText)")
        }
        let security = listener.security
        switch security.clientAuth {
        case .require:
            SSL_CTX_set_client_CA_list(ctx, names)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
        case .optional:
            SSL_CTX_set_client_CA_list(ctx, names)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        case .none:
            dp_sk_X509_NAME_pop_free(names)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nil)
        }
        SSL_CTX_set_verify_depth(ctx, Int32(security.verifyDepth))
    }

    /// Refuses a cipher string that, though OpenSSL parses it, leaves no suite
    /// this listener could ever complete a handshake with: e.g. only PSK suites
    /// on a certificate-only listener, or only AEAD suites at `max_version = "1.0"`.
    static func checkUsableCiphers(
        _ ctx: OpaquePointer, listener: ListenerConfiguration, cipherList: String, fail: Failure
    ) throws(ConfigurationError) {
        var certificateAuth: Set<Int32> = []
        if listener.certificate != nil, let key = SSL_CTX_get0_privatekey(ctx) {
            switch EVP_PKEY_get_base_id(key) {
            case EVP_PKEY_RSA, EVP_PKEY_RSA_PSS: certificateAuth = [NID_auth_rsa]
            default: certificateAuth = [NID_auth_ecdsa]
            }
        }
        var names: [String] = []
        var usable = false
        let onlyDTLS10 = listener.security.maxVersion == .dtls1_0
        if let ciphers = SSL_CTX_get_ciphers(ctx) {
            for index in 0..<dp_sk_SSL_CIPHER_num(ciphers) {
                guard let cipher = dp_sk_SSL_CIPHER_value(ciphers, index) else { continue }
                let auth = SSL_CIPHER_get_auth_nid(cipher)
                // TLS 1.3 suites (auth "any") are listed too; DTLS 1.2 cannot use them.
                guard auth != NID_auth_any else { continue }
                names.append(String(cString: SSL_CIPHER_get_name(cipher)))
                // "TLSv1.2" marks suites (AEAD, SHA-256 MACs) that need DTLS 1.2.
                if onlyDTLS10, String(cString: SSL_CIPHER_get_version(cipher)) == "TLSv1.2" { continue }
                if certificateAuth.contains(auth) || (auth == NID_auth_psk && listener.pskTable != nil) {
                    usable = true
                }
            }
        }
        OpenSSLError.drain()
        guard usable else {
            var credentials: [String] = []
            if listener.certificate != nil {
                credentials.append(certificateAuth.contains(NID_auth_rsa) ? "an RSA certificate" : "an EC certificate")
            }
            if listener.pskTable != nil { credentials.append("psk_file") }
            let (low, high) = (listener.minVersion.rawValue, listener.security.maxVersion.rawValue)
            let versions = low == high ? "DTLS \(low)" : "DTLS \(low) to \(high)"
            let expanded = names.isEmpty ? "nothing" : names.joined(separator: ":")
            throw fail(
                "ciphers",
                "no suite in \"\(cipherList)\" works with \(credentials.joined(separator: " and ")) at \(versions) (OpenSSL expands it to \(expanded))"
            )
        }
    }

    /// The session id context: a digest of everything that decides who may
    /// connect. OpenSSL resumes a session (ticket) only under the context it
    /// was created in, so a change of CA, allow-lists or PSK keys makes old
    /// tickets fall back to a full handshake instead of bypassing the new
    /// rules. Instances with identical policies share the context, which is
    /// what lets them resume each other's tickets.
    static func setSessionContext(_ ctx: OpaquePointer, listener: ListenerConfiguration) {
        var material = Array("dtls-proxyd session context v1".utf8)
        func add(_ label: String, _ bytes: [UInt8]) {
            material += Array(label.utf8) + [0]
            withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { material += $0 }
            material += bytes
        }
        let security = listener.security
        add("client_auth", Array(security.clientAuth.rawValue.utf8))
        add("verify_depth", Array(String(security.verifyDepth).utf8))
        if let clientCA = listener.clientCA, case .success(let bytes) = ConfigFileAccess.read(clientCA) {
            add("client_ca", bytes)
        }
        for (label, list) in [
            ("allow_cn", security.identityPolicy.allowCN), ("allow_dns", security.identityPolicy.allowDNS),
            ("allow_uri", security.identityPolicy.allowURI),
        ] {
            for entry in list { add(label, Array(entry.utf8)) }
        }
        if let table = listener.pskTable {
            for identity in table.identities { add("psk:" + identity, table[identity] ?? []) }
        }
        let digest = CookieVerifier.hmac(key: Array("dtls-proxyd".utf8), data: material)
        let length = min(digest.count, Int(SSL_MAX_SID_CTX_LENGTH))
        if SSL_CTX_set_session_id_context(ctx, digest, UInt32(length)) != 1 { OpenSSLError.drain() }
    }
}
