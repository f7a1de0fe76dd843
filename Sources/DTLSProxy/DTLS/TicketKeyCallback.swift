import COpenSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// OpenSSL's session-ticket key callback (`SSL_CTX_set_tlsext_ticket_key_evp_cb`),
/// backed by the listener's ``TicketKeySchedule``.
///
/// It runs on whichever event loop handles the handshake; the schedule is an
/// immutable value and keys are derived on demand, so no state is shared.
/// Return values are OpenSSL's: when issuing, 1 = ticket protected; when
/// reading, 0 = unknown or expired key (full handshake), 1 = accepted,
/// 2 = accepted but issue a fresh ticket under the current key; -1 = error.
func ticketKeyCallback(
    _ ssl: OpaquePointer?, _ keyName: UnsafeMutablePointer<UInt8>?, _ iv: UnsafeMutablePointer<UInt8>?,
    _ cipherContext: OpaquePointer?, _ macContext: OpaquePointer?, _ encrypt: Int32
) -> Int32 {
    guard let keyName, let iv, let cipherContext, let macContext,
        let schedule = DTLSServerContext.from(ssl)?.ticketKeys
    else { return -1 }
    let now = UInt64(max(0, time(nil)))
    let nameLength = Int(dp_TLSEXT_KEYNAME_LENGTH)
    let ivLength = Int(EVP_CIPHER_get_iv_length(EVP_aes_256_cbc()))
    if encrypt == 1 {
        let key = schedule.encryptionKey(at: now)
        guard RAND_bytes(iv, Int32(ivLength)) == 1 else {
            OpenSSLError.drain()
            return -1
        }
        keyName.update(from: key.name, count: min(nameLength, key.name.count))
        guard install(key, iv: iv, cipher: cipherContext, mac: macContext, encrypt: true) else { return -1 }
        return 1
    }
    let presented = Array(UnsafeBufferPointer(start: keyName, count: nameLength))
    guard let (key, current) = schedule.decryptionKey(named: presented, at: now) else { return 0 }
    guard install(key, iv: iv, cipher: cipherContext, mac: macContext, encrypt: false) else { return -1 }
    return current ? 1 : 2
}

private func install(
    _ key: TicketKeySchedule.Key, iv: UnsafeMutablePointer<UInt8>, cipher: OpaquePointer, mac: OpaquePointer,
    encrypt: Bool
) -> Bool {
    var macKey = key.macKey
    let macOK = macKey.withUnsafeMutableBufferPointer {
        dp_EVP_MAC_CTX_set_hmac_sha256_key(mac, $0.baseAddress, $0.count) == 1
    }
    let cipherOK = key.cipherKey.withUnsafeBufferPointer { aesKey in
        encrypt
            ? EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nil, aesKey.baseAddress, iv) == 1
            : EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nil, aesKey.baseAddress, iv) == 1
    }
    if !(macOK && cipherOK) { OpenSSLError.drain() }
    return macOK && cipherOK
}
