import COpenSSL

/// What a listener's and a connector's `SSL_CTX` set alike: versions, the
/// options every session wants, record sizes, cipher string, groups, and the
/// certificate with its key.
///
/// Each step that can fail throws through `fail`, which names the key of the
/// listener or connector at fault, so `--check-config` and startup report the same.
enum DTLSContextSetup {
    /// A new `SSL_CTX` of `method`, or the configuration error `fail` makes of OpenSSL's reason.
    static func newContext(
        _ method: OpaquePointer?, fail: (String, String) -> ConfigurationError
    ) throws(ConfigurationError) -> OpaquePointer {
        guard let ctx = SSL_CTX_new(method) else {
            throw fail("", "cannot create DTLS context: \(OpenSSLError.fromQueue("SSL_CTX_new").reasonText)")
        }
        return ctx
    }

    typealias Failure = (_ key: String, _ cause: String) -> ConfigurationError

    /// The protocol policy of one context, as its configuration gives it.
    struct Policy {
        var minVersion: DTLSVersionSetting
        var maxVersion: DTLSVersionSetting
        /// Options beyond the ones every context sets (e.g. server cipher preference).
        var extraOptions: Int
        var sessionTickets: Bool
        var mtu: Int
        /// The `ciphers` key, or nil for the built-in list.
        var ciphers: String?
        /// The `groups` key, or nil for the built-in list.
        var groups: String?
        /// Which credentials the built-in cipher list must serve.
        var certificates: Bool
        var psk: Bool
    }

    static func protocolVersion(_ setting: DTLSVersionSetting) -> Int32 {
        switch setting {
        case .dtls1_0: DTLS1_VERSION
        case .dtls1_2: DTLS1_2_VERSION
        case .dtls1_3: dp_DTLS1_3_VERSION
        }
    }

    /// The built-in cipher string: ECDHE AEAD suites for certificates, PSK
    /// suites for a PSK, and CBC suites only when DTLS 1.0 is allowed.
    static func defaultCipherList(certificates: Bool, psk: Bool, legacy: Bool) -> String {
        var ciphers: [String] = []
        if certificates {
            ciphers += DTLSServerContext.aeadCiphers
            if legacy { ciphers += DTLSServerContext.legacyCiphers }
        }
        if psk {
            ciphers += DTLSServerContext.pskCiphers
            if legacy { ciphers += DTLSServerContext.legacyPSKCiphers }
        }
        return ciphers.joined(separator: ":")
    }

    /// Applies `policy` to `ctx`; returns the cipher string in force.
    @discardableResult
    static func apply(_ policy: Policy, to ctx: OpaquePointer, fail: Failure) throws(ConfigurationError) -> String {
        for (key, setting, isMinimum) in [
            ("min_version", policy.minVersion, true), ("max_version", policy.maxVersion, false),
        ] {
            let version = protocolVersion(setting)
            let ok =
                isMinimum
                ? dp_SSL_CTX_set_min_proto_version(ctx, version) : dp_SSL_CTX_set_max_proto_version(ctx, version)
            guard ok == 1 else {
                throw fail(
                    key,
                    "OpenSSL refuses DTLS \(setting.rawValue): \(OpenSSLError.fromQueue("SSL_CTX_set_proto_version").reasonText)"
                )
            }
        }
        var options =
            dp_SSL_OP_NO_RENEGOTIATION | dp_SSL_OP_NO_COMPRESSION | dp_SSL_OP_NO_QUERY_MTU | policy.extraOptions
        if !policy.sessionTickets { options |= dp_SSL_OP_NO_TICKET }
        SSL_CTX_set_options(ctx, UInt64(options))
        _ = dp_SSL_CTX_set_mode(ctx, dp_SSL_MODE_RELEASE_BUFFERS)
        _ = dp_SSL_CTX_set_read_ahead(ctx, 1)
        // The send buffer need not hold more than one datagram's worth of record.
        _ = dp_SSL_CTX_set_max_send_fragment(ctx, max(512, min(16384, policy.mtu)))
        // Resumption is by tickets only: OpenSSL's own cache would grow with every peer.
        _ = dp_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_OFF))
        // Never prompt on a terminal for an encrypted key's passphrase.
        SSL_CTX_set_default_passwd_cb(ctx, refusePassphrase)

        let cipherList =
            policy.ciphers
            ?? defaultCipherList(
                certificates: policy.certificates, psk: policy.psk, legacy: policy.minVersion == .dtls1_0)
        if SSL_CTX_set_cipher_list(ctx, cipherList) != 1 {
            throw fail(
                "ciphers",
                "OpenSSL accepts none of the ciphers in \"\(cipherList)\": \(OpenSSLError.fromQueue("SSL_CTX_set_cipher_list").reasonText)"
            )
        }
        if policy.minVersion == .dtls1_0 {
            // OpenSSL 3.0 refuses the MD5+SHA-1 handshake signatures of DTLS 1.0
            // at security level 1 and above; level 0 is the only way to speak it.
            SSL_CTX_set_security_level(ctx, 0)
        }
        let groups = policy.groups ?? DTLSServerContext.groups
        if dp_SSL_CTX_set1_groups_list(ctx, groups) != 1 {
            throw fail(
                "groups",
                "OpenSSL refuses groups \"\(groups)\": \(OpenSSLError.fromQueue("SSL_CTX_set1_groups_list").reasonText)"
            )
        }
        return cipherList
    }

    /// Loads a certificate chain (leaf first) and its private key, and checks that they match.
    static func loadCertificate(
        _ ctx: OpaquePointer, certificate: String, privateKey: String, fail: Failure
    ) throws(ConfigurationError) {
        guard SSL_CTX_use_certificate_chain_file(ctx, certificate) == 1 else {
            throw fail(
                "certificate",
                "cannot load certificate chain \(certificate): \(OpenSSLError.fromQueue("SSL_CTX_use_certificate_chain_file").reasonText)"
            )
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, privateKey, SSL_FILETYPE_PEM) == 1 else {
            let error = OpenSSLError.fromQueue("SSL_CTX_use_PrivateKey_file")
            // OpenSSL checks the key against the loaded certificate here and says "key values mismatch".
            if error.reasons.contains(where: { $0.contains("mismatch") }) {
                throw fail("private_key", "\(privateKey) does not match the certificate \(certificate)")
            }
            throw fail("private_key", "cannot load private key \(privateKey): \(error.reasonText)")
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            OpenSSLError.drain()
            throw fail("private_key", "\(privateKey) does not match the certificate \(certificate)")
        }
    }
}

private func refusePassphrase(
    _ buffer: UnsafeMutablePointer<CChar>?, _ size: Int32, _ rwflag: Int32, _ userdata: UnsafeMutableRawPointer?
) -> Int32 {
    0
}
