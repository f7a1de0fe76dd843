import COpenSSL

/// The `connection_id` extension (RFC 9146 §3) through OpenSSL's custom-extension
/// API, which OpenSSL 3.0 offers for DTLS 1.2 as for TLS (it has no CID of its own).
///
/// Registered with `SSL_CTX_add_custom_ext` for `SSL_EXT_CLIENT_HELLO |
/// SSL_EXT_TLS1_2_SERVER_HELLO` only on contexts whose ``ConnectionIDPolicy``
/// is on; a context without it treats the extension as any unknown one and
/// ignores it. The callbacks find their ``DTLSEndpoint`` through the `SSL`
/// app data, as every other callback does.
///
/// - Client: the ClientHello carries the CID we want to receive (issued once per
///   connection, so the ClientHello repeated after a HelloVerifyRequest carries
///   the same); the ServerHello's extension gives the CID to send.
/// - Server: the ClientHello's extension is remembered (OpenSSL may parse a
///   ClientHello more than once in the cookie exchange; each parse replaces the
///   last); OpenSSL calls the ServerHello callback only when the client sent the
///   extension, and we answer only for an AEAD suite (`SSL_get_pending_cipher`
///   is chosen by then), with a CID from the policy's generator.
///
/// Every handshake, a resumption from a ticket included, runs these callbacks
/// on a fresh `SSL` object, so a resumed session negotiates its CID anew.
enum ConnectionIDNegotiation {
    /// Installs the callbacks on `ctx`; false (error queue drained) when OpenSSL refuses.
    static func register(on ctx: OpaquePointer) -> Bool {
        let context = UInt32(SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_2_SERVER_HELLO)
        let added = SSL_CTX_add_custom_ext(
            ctx, UInt32(ConnectionIDExtension.extensionType), context, connectionIDAdd, connectionIDFree, nil,
            connectionIDParse, nil)
        guard added == 1 else {
            OpenSSLError.drain()
            return false
        }
        return true
    }

    /// Whether `ssl`'s suite (the pending one during the handshake) protects
    /// records in a way ``RecordSealer`` and ``RecordOpener`` implement.
    static func suiteSupportsConnectionID(_ ssl: OpaquePointer) -> Bool {
        guard let cipher = SSL_get_pending_cipher(ssl) ?? SSL_get_current_cipher(ssl) else { return false }
        return RecordCipherSuite(cipher: cipher) != nil
    }
}

/// Writes our extension body: the CID this side wants to receive. Returns 1
/// (added), 0 (not added) or -1 with `alert` set (the handshake fails).
private func connectionIDAdd(
    _ ssl: OpaquePointer?, _ type: UInt32, _ context: UInt32, _ out: UnsafeMutablePointer<UnsafePointer<UInt8>?>?,
    _ outLength: UnsafeMutablePointer<Int>?, _ certificate: OpaquePointer?, _ chainIndex: Int,
    _ alert: UnsafeMutablePointer<Int32>?, _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let ssl, let out, let outLength, let endpoint = DTLSEndpoint.endpoint(of: ssl),
        endpoint.connectionIDPolicy.isEnabled
    else { return 0 }
    let ownConnectionID: [UInt8]
    if context & UInt32(SSL_EXT_CLIENT_HELLO) != 0 {
        guard let offered = endpoint.pendingConnectionID ?? endpoint.connectionIDPolicy.issue() else {
            alert?.pointee = SSL_AD_INTERNAL_ERROR
            return -1
        }
        endpoint.pendingConnectionID = offered
        ownConnectionID = offered
    } else {
        // The client's CID, or nil: it sent no (valid) extension.
        guard let requested = endpoint.pendingConnectionID, ConnectionIDNegotiation.suiteSupportsConnectionID(ssl)
        else { return 0 }
        guard let issued = endpoint.connectionIDPolicy.issue() else {
            alert?.pointee = SSL_AD_INTERNAL_ERROR
            return -1
        }
        guard endpoint.activateConnectionID(own: issued, peer: requested) else {
            alert?.pointee = SSL_AD_INTERNAL_ERROR
            return -1
        }
        ownConnectionID = issued
    }
    let body = [UInt8(ownConnectionID.count)] + ownConnectionID
    let copy = UnsafeMutablePointer<UInt8>.allocate(capacity: body.count)
    copy.initialize(from: body, count: body.count)
    out.pointee = UnsafePointer(copy)
    outLength.pointee = body.count
    return 1
}

/// Frees what ``connectionIDAdd`` handed OpenSSL, once OpenSSL has written it.
private func connectionIDFree(
    _ ssl: OpaquePointer?, _ type: UInt32, _ context: UInt32, _ out: UnsafePointer<UInt8>?,
    _ argument: UnsafeMutableRawPointer?
) {
    guard let out else { return }
    UnsafeMutablePointer(mutating: out).deallocate()
}

/// Reads the peer's extension body. Returns 1, or 0 with `alert` set (fatal).
private func connectionIDParse(
    _ ssl: OpaquePointer?, _ type: UInt32, _ context: UInt32, _ input: UnsafePointer<UInt8>?, _ inputLength: Int,
    _ certificate: OpaquePointer?, _ chainIndex: Int, _ alert: UnsafeMutablePointer<Int32>?,
    _ argument: UnsafeMutableRawPointer?
) -> Int32 {
    guard let ssl, let endpoint = DTLSEndpoint.endpoint(of: ssl), endpoint.connectionIDPolicy.isEnabled else {
        return 1
    }
    let body =
        input.map { UnsafeBufferPointer(start: $0, count: inputLength) } ?? UnsafeBufferPointer(start: nil, count: 0)
    guard let peerExtension = try? ConnectionIDExtension(parsing: body) else {
        alert?.pointee = SSL_AD_DECODE_ERROR
        return 0
    }
    if context & UInt32(SSL_EXT_CLIENT_HELLO) != 0 {
        endpoint.pendingConnectionID = peerExtension.connectionID
        return 1
    }
    // A ServerHello's: OpenSSL refuses one we did not solicit before calling us.
    guard let offered = endpoint.pendingConnectionID else {
        alert?.pointee = SSL_AD_UNSUPPORTED_EXTENSION
        return 0
    }
    // A CID with a suite we cannot protect records of would leave no way to talk.
    guard ConnectionIDNegotiation.suiteSupportsConnectionID(ssl) else {
        alert?.pointee = SSL_AD_HANDSHAKE_FAILURE
        return 0
    }
    guard endpoint.activateConnectionID(own: offered, peer: peerExtension.connectionID) else {
        alert?.pointee = SSL_AD_INTERNAL_ERROR
        return 0
    }
    return 1
}
