import COpenSSL

/// The epoch-1 keys of a live OpenSSL session, for records the project seals and opens itself.
public struct SessionRecordKeys: Equatable, Sendable {
    /// The negotiated suite's record protection.
    public let suite: RecordCipherSuite
    /// The key block derived from the session's master secret and hello randoms.
    public let keyBlock: KeyBlock

    /// The keys of a session whose handshake has finished.
    ///
    /// Reads `SSL_get_current_cipher`, `SSL_get_client_random`, `SSL_get_server_random`
    /// and `SSL_SESSION_get_master_key`, then derives as `KeyBlock(masterSecret:...)`.
    /// Throws `.unsupportedCipher` for a suite without a `RecordCipherSuite` case:
    /// such a session must not use a CID.
    public init(ssl: OpaquePointer) throws(KeyDerivationError) {
        guard let cipher = SSL_get_current_cipher(ssl) else { throw .unsupportedCipher("none") }
        guard let suite = RecordCipherSuite(cipher: cipher) else {
            throw .unsupportedCipher(SSL_CIPHER_get_name(cipher).map { String(cString: $0) } ?? "unknown")
        }
        guard let session = SSL_get_session(ssl) else { throw .openSSL(OpenSSLError.fromQueue("SSL_get_session")) }
        var masterSecret = [UInt8](repeating: 0, count: 48)
        var clientRandom = [UInt8](repeating: 0, count: 32)
        var serverRandom = [UInt8](repeating: 0, count: 32)
        let secretLength = SSL_SESSION_get_master_key(session, &masterSecret, masterSecret.count)
        let clientLength = SSL_get_client_random(ssl, &clientRandom, clientRandom.count)
        let serverLength = SSL_get_server_random(ssl, &serverRandom, serverRandom.count)
        defer { masterSecret.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        guard secretLength == 48 else { throw .badLength("master secret", secretLength) }
        guard clientLength == 32, serverLength == 32 else {
            throw .badLength("hello random", min(clientLength, serverLength))
        }
        self.suite = suite
        self.keyBlock = try KeyBlock(
            masterSecret: masterSecret, clientRandom: clientRandom, serverRandom: serverRandom, suite: suite)
    }

    /// The keys of an OpenSSL cipher (`SSL_CIPHER*`) and the secrets a session was made of.
    public init(
        cipher: OpaquePointer, masterSecret: [UInt8], clientRandom: [UInt8], serverRandom: [UInt8]
    ) throws(KeyDerivationError) {
        guard let suite = RecordCipherSuite(cipher: cipher) else {
            throw .unsupportedCipher(SSL_CIPHER_get_name(cipher).map { String(cString: $0) } ?? "unknown")
        }
        self.suite = suite
        self.keyBlock = try KeyBlock(
            masterSecret: masterSecret, clientRandom: clientRandom, serverRandom: serverRandom, suite: suite)
    }

    /// A sealer for the records `end` sends; `peerConnectionID` is the CID the other end asked to receive.
    public func sealer(for end: ConnectionEnd, peerConnectionID: [UInt8]) throws(RecordProtectionError) -> RecordSealer
    {
        try RecordSealer(suite: suite, keys: keyBlock.writeKeys(of: end), connectionID: peerConnectionID)
    }

    /// An opener for the records `end` receives; `ownConnectionID` is the CID `end` issued.
    public func opener(for end: ConnectionEnd, ownConnectionID: [UInt8]) throws(RecordProtectionError) -> RecordOpener {
        try RecordOpener(suite: suite, keys: keyBlock.writeKeys(of: end.peer), connectionID: ownConnectionID)
    }
}
