import COpenSSL

/// What the configuration checks need to know of the OpenSSL the daemon links.
enum OpenSSLLibrary {
    /// Whether it implements DTLS 1.3.
    static var supportsDTLS13: Bool { dp_DTLS1_3_VERSION != 0 }

    /// Its version text, for error messages.
    static var versionText: String { String(cString: OpenSSL_version(OPENSSL_VERSION)) }
}
