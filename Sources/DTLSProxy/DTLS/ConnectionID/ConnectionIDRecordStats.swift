/// What a session's ``ConnectionIDRecordLayer`` dropped, by reason, and the
/// last record it accepted from the peer.
///
/// Every count is of records (not datagrams) that never reached OpenSSL, or,
/// for ``outboundFailed``, that OpenSSL wrote but were not sent. A session
/// counts the growth of ``total`` after each datagram; nothing here ends a session.
public struct ConnectionIDRecordStats: Equatable, Sendable {
    /// Bytes that do not parse as records (with our CID's length), or a record the
    /// conversion could not rebuild; the rest of such a datagram is dropped with it.
    public internal(set) var malformed = 0
    /// A `tls12_cid` record whose CID is not the one we issued.
    public internal(set) var unknownConnectionID = 0
    /// An ordinary epoch-1 record although we issued a non-empty CID (RFC 9146 §3).
    public internal(set) var missingConnectionID = 0
    /// A `tls12_cid` record whose tag did not verify.
    public internal(set) var authenticationFailed = 0
    /// A record the replay window had seen, or too old for it (RFC 6347 §4.1.2.6).
    public internal(set) var replayed = 0
    /// A record of an epoch that cannot carry it: `tls12_cid` in epoch 0, or any epoch past 1
    /// (renegotiation is refused, so there is none).
    public internal(set) var unexpectedEpoch = 0
    /// A `tls12_cid` record before the handshake had the keys to open it
    /// (e.g. a Finished that overtook its ClientKeyExchange).
    public internal(set) var keysUnavailable = 0
    /// An epoch-1 record OpenSSL wrote that could not be converted, and so was not sent.
    public internal(set) var outboundFailed = 0

    /// Every record dropped, whatever the reason.
    public var total: Int {
        malformed + unknownConnectionID + missingConnectionID + authenticationFailed + replayed + unexpectedEpoch
            + keysUnavailable + outboundFailed
    }
}
