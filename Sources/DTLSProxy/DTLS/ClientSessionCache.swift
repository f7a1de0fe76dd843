import COpenSSL
import NIOConcurrencyHelpers

/// The last resumable session a connector's server gave it, so that the
/// next local peer's session resumes it (RFC 5077 ticket): an abbreviated
/// handshake with no certificate chain and no key exchange, for the
/// connector and for the server.
///
/// One per connector runtime: a reload (perhaps a new `server_ca` or
/// `server_name`) starts with an empty cache, so a session verified under the
/// old settings is never resumed under the new ones. A server that refuses
/// the ticket simply runs a full handshake, which replaces the entry.
final class ClientSessionCache: @unchecked Sendable {
    // @unchecked: `session` is an SSL_SESSION pointer, only touched under `lock`.
    private let lock = NIOLock()
    private var session: OpaquePointer?

    /// Offers the cached session to a new connection (`SSL_set_session` takes its own reference).
    func offer(to ssl: OpaquePointer) {
        lock.withLock {
            guard let session else { return }
            if SSL_set_session(ssl, session) != 1 { OpenSSLError.drain() }
        }
    }

    /// Keeps the session of a completed handshake when the server made it resumable.
    func keep(from ssl: OpaquePointer) {
        guard let fresh = SSL_get1_session(ssl) else { return }
        guard SSL_SESSION_is_resumable(fresh) == 1 else {
            SSL_SESSION_free(fresh)
            return
        }
        let old = lock.withLock { () -> OpaquePointer? in
            defer { session = fresh }
            return session
        }
        if let old { SSL_SESSION_free(old) }
    }

    deinit {
        if let session { SSL_SESSION_free(session) }
    }
}
