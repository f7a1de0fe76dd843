import COpenSSL

/// RFC 9146 Connection IDs on an endpoint: what negotiation decided, and the
/// record layer that carries it out (``ConnectionIDRecordLayer``).
extension DTLSEndpoint {
    /// The conversion between `tls12_cid` records and OpenSSL's, once a CID was
    /// negotiated: its drop counts, the last record accepted from the peer (for
    /// an address update, RFC 9146 §6); nil without a CID.
    public var connectionIDRecords: ConnectionIDRecordLayer? { buffers.recordLayer }

    /// Which end of the session this endpoint is.
    var connectionEnd: ConnectionEnd { SSL_is_server(ssl) == 1 ? .server : .client }

    /// Puts a negotiated CID in force: called from the extension callbacks when
    /// the ServerHello is written (server) or read (client), before any epoch-1 record.
    ///
    /// A `tls12_cid` record is one byte (the inner content type) plus the CID
    /// longer than the record OpenSSL wrote, so OpenSSL's MTU shrinks by that
    /// much and the converted records still fit the datagrams we send.
    func activateConnectionID(own: [UInt8], peer: [UInt8]) -> Bool {
        if !peer.isEmpty {
            // SSL_set_mtu returns the MTU it set, 0 when it is below DTLS's minimum.
            guard dp_SSL_set_mtu(ssl, buffers.mtu - peer.count - 1) > 0 else {
                OpenSSLError.drain()
                return false
            }
        }
        ownConnectionID = own
        peerConnectionID = peer
        buffers.stopsBeforeProtectedRecords = false
        buffers.recordLayer = ConnectionIDRecordLayer(
            ssl: ssl, end: connectionEnd, ownConnectionID: own, peerConnectionID: peer)
        return true
    }
}
