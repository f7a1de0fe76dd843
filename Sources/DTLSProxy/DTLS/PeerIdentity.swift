import COpenSSL

/// Who the peer of an established (or just completed) handshake is, as far
/// as OpenSSL verified it: the names of its certificate, or its PSK identity.
///
/// Read from the `SSL_SESSION`, so a resumed session reports the identity of
/// the handshake that created it.
enum PeerIdentity {
    /// The names of the peer's verified certificate; nil when it sent none.
    static func certificate(of ssl: OpaquePointer) -> CertificateIdentity? {
        guard let certificate = SSL_get0_peer_certificate(ssl) else { return nil }
        var identity = CertificateIdentity(commonName: commonName(of: certificate))
        if let raw = X509_get_ext_d2i(certificate, NID_subject_alt_name, nil, nil) {
            let names = OpaquePointer(raw)
            defer { GENERAL_NAMES_free(names) }
            for index in 0..<dp_sk_GENERAL_NAME_num(names) {
                guard let name = dp_sk_GENERAL_NAME_value(names, index) else { continue }
                switch name.pointee.type {
                case GEN_DNS:
                    if let text = string(name.pointee.d.dNSName) { identity.dnsNames.append(text) }
                case GEN_URI:
                    if let text = string(name.pointee.d.uniformResourceIdentifier) { identity.uris.append(text) }
                default:
                    break
                }
            }
        }
        OpenSSLError.drain()
        return identity
    }

    /// The PSK identity the client authenticated with; nil for certificate sessions.
    static func pskIdentity(of ssl: OpaquePointer) -> String? {
        guard let identity = SSL_get_psk_identity(ssl) else { return nil }
        return String(cString: identity)
    }

    /// The subject's last CN as UTF-8.
    private static func commonName(of certificate: OpaquePointer) -> String? {
        guard let subject = X509_get_subject_name(certificate) else { return nil }
        var last: Int32 = -1
        while true {
            let next = X509_NAME_get_index_by_NID(subject, NID_commonName, last)
            if next < 0 { break }
            last = next
        }
        guard last >= 0, let entry = X509_NAME_get_entry(subject, last),
            let data = X509_NAME_ENTRY_get_data(entry)
        else { return nil }
        var utf8: UnsafeMutablePointer<UInt8>?
        let length = ASN1_STRING_to_UTF8(&utf8, data)
        guard length >= 0, let utf8 else {
            OpenSSLError.drain()
            return nil
        }
        defer { dp_OPENSSL_free(utf8) }
        return text(UnsafeBufferPointer(start: utf8, count: Int(length)))
    }

    /// An IA5String SAN entry; nil when it is missing or carries an embedded NUL
    /// (a classic trick to make `a.example\0.evil` look like `a.example`).
    private static func string(_ value: UnsafeMutablePointer<ASN1_STRING>?) -> String? {
        guard let value, let bytes = ASN1_STRING_get0_data(value) else { return nil }
        return text(UnsafeBufferPointer(start: bytes, count: Int(ASN1_STRING_length(value))))
    }

    private static func text(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard !bytes.contains(0) else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}
