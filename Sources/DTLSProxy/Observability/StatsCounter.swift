/// Every counter a listener or a connector keeps, named as its stats line
/// and its Prometheus series say it. Each role keeps the ones it can move,
/// in the order of its stats line (``ListenerStats/names``, ``ConnectorStats/names``).
public enum StatsCounter: String, CaseIterable, Sendable {
    case sessionsCreated = "sessions_created"
    case handshakesCompleted = "handshakes_completed"
    case handshakesFailed = "handshakes_failed"
    /// A listener answered a ClientHello with a HelloVerifyRequest.
    case helloVerifySent = "hello_verify_sent"
    case droppedMalformed = "dropped_malformed"
    case droppedNoSession = "dropped_no_session"
    case droppedBadCookie = "dropped_bad_cookie"
    case droppedSessionLimit = "dropped_session_limit"
    case droppedHandshakeLimit = "dropped_handshake_limit"
    case droppedRateLimited = "dropped_rate_limited"
    /// The source address or its prefix already holds its share of the handshakes in progress.
    case droppedHandshakeShare = "dropped_handshake_share"
    /// A connector's local datagrams beyond what may wait for the handshake.
    case droppedQueueFull = "dropped_queue_full"
    /// A plaintext datagram larger than one record can carry at the MTU.
    case droppedOversize = "dropped_oversize"
    /// Empty plaintext datagrams: DTLS cannot carry them as a record of their own
    /// (SSL_write refuses zero bytes, and OpenSSL 3.0's SSL_read mishandles empty records).
    case droppedEmpty = "dropped_empty"
    /// Datagrams from the DTLS peer that yielded neither plaintext nor a reply (RFC 6347 §4.1.2.7).
    case droppedUndecryptable = "dropped_undecryptable"
    /// Datagrams that arrived while a listener was shutting down.
    case droppedStopping = "dropped_stopping"
    /// Local datagrams that would have started a session while the server's
    /// refusals paused new handshakes (``HandshakeBackoff``).
    case droppedBackoff = "dropped_backoff"
    /// Datagrams the kernel dropped on a router's socket (a listener socket, a
    /// connector's local socket), its receive queue full (``KernelDrops``);
    /// collected once a second and before every scrape and stats line.
    case droppedKernelListener = "dropped_kernel_listener"
    case droppedKernelLocal = "dropped_kernel_local"
    /// Datagrams the kernel dropped on a session's own socket (to a backend, to
    /// a server), its receive queue full; collected before every scrape and
    /// stats line, and when the socket closes.
    case droppedKernelBackend = "dropped_kernel_backend"
    case droppedKernelServer = "dropped_kernel_server"
    case backendErrors = "backend_errors"
    /// A backend of a pool drew ICMP port unreachable and was marked down.
    case backendsMarkedDown = "backends_marked_down"
    /// A session moved: to another backend of its pool because its own was
    /// down, or to its client's new address (RFC 9146: a connection ID record
    /// newer than every one before it came from there). Its log line tells which.
    case sessionsMoved = "sessions_moved"
    /// A `tls12_cid` record whose connection ID no session of this instance holds,
    /// or one for a listener that issues none.
    case droppedUnknownConnectionID = "dropped_unknown_cid"
    /// Records of a session with a connection ID that its record layer refused:
    /// a failed tag, a replay, a foreign CID, an ordinary record where a CID was due.
    case droppedConnectionIDRecord = "dropped_cid_record"
    /// A datagram from a new address without a record newer than every one the
    /// session accepted (an old record, a replay, a forgery): it moves nothing.
    case droppedUnverifiedAddress = "dropped_unverified_address"
    /// Bytes for a client's new address beyond three times what came from it,
    /// before it sent a second authenticated record (RFC 9146 §6).
    case droppedAmplification = "dropped_amplification"
    /// Errors on a connector session's server socket, chiefly ICMP port unreachable.
    case serverErrors = "server_errors"
}
