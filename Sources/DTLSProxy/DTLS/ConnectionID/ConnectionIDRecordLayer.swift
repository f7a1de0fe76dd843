import COpenSSL
import NIOCore

/// The records of one session with a negotiated CID, converted between the
/// wire (RFC 9146 `tls12_cid`) and OpenSSL 3.0, which knows only ordinary records.
///
/// OpenSSL keeps the whole DTLS state machine: handshake, its own replay
/// window, sequence numbers, alerts. This layer sits in the datagram BIO:
/// - Inbound (when we issued a non-empty CID): a `tls12_cid` record carrying our
///   CID is authenticated and opened with the peer's epoch-1 keys, checked
///   against the replay window, then sealed again as the ordinary epoch-1 record
///   with the same epoch and sequence number that OpenSSL then reads. Epoch-0
///   records pass unchanged. Everything else is dropped and counted (``stats``).
/// - Outbound (when the peer asked for a non-empty CID): every epoch-1 record
///   OpenSSL wrote is opened with our own keys and sealed as a `tls12_cid`
///   record carrying the peer's CID, with OpenSSL's epoch and sequence number.
///
/// Why this costs no nonce reuse on the wire: a record re-sealed here uses the
/// same key and nonce (epoch and sequence number) as the record it replaces,
/// and that replaced record never leaves the process; OpenSSL numbers every
/// record it writes afresh (retransmissions included), so each epoch+sequence
/// is sealed for the wire once. An outbound record that cannot be converted is
/// dropped, never sent in its ordinary form.
///
/// The epoch-1 keys exist only once OpenSSL has processed the peer's key
/// exchange (server) or built its own (client); they are derived on first need
/// from the session's master secret and randoms and kept. For that, one BIO read
/// hands OpenSSL records of one epoch only: the ClientKeyExchange and
/// ChangeCipherSpec at the front of a datagram are read and processed before
/// the `tls12_cid` Finished behind them is converted.
public final class ConnectionIDRecordLayer {
    /// Which end of the session we are.
    public let end: ConnectionEnd
    /// The CID we issued: expected on every epoch-1 record we receive (empty: ordinary records).
    public let ownConnectionID: [UInt8]
    /// The CID the peer issued: put on every epoch-1 record we send (empty: ordinary records).
    public let peerConnectionID: [UInt8]
    /// What was dropped so far, by reason.
    public internal(set) var stats = ConnectionIDRecordStats()
    /// The last record accepted from the peer in the datagram last received; nil when none (yet).
    public internal(set) var lastAccepted: AcceptedRecord?
    /// Whether the datagram last received carried a record newer than every one accepted before it.
    public internal(set) var datagramHadNewestRecord = false

    let ssl: OpaquePointer
    var replayWindow = ReplayWindow()
    private var protection: Protection?

    /// The four record transforms of epoch 1, all from one key block.
    struct Protection {
        /// Opens the peer's `tls12_cid` records, and seals them again as ordinary ones.
        let inboundOpener: RecordOpener
        let inboundResealer: RecordSealer
        /// Opens OpenSSL's ordinary records, and seals them again as `tls12_cid` ones.
        let outboundOpener: RecordOpener
        let outboundSealer: RecordSealer
    }

    init(ssl: OpaquePointer, end: ConnectionEnd, ownConnectionID: [UInt8], peerConnectionID: [UInt8]) {
        self.ssl = ssl
        self.end = end
        self.ownConnectionID = ownConnectionID
        self.peerConnectionID = peerConnectionID
    }

    /// Whether records from the peer need converting (we asked for a non-empty CID).
    public var convertsInbound: Bool { !ownConnectionID.isEmpty }
    /// Whether records to the peer need converting (it asked for a non-empty CID).
    public var convertsOutbound: Bool { !peerConnectionID.isEmpty }

    /// The CID of the first record of `datagram` when it is a `tls12_cid` record
    /// long enough to hold one of `length` bytes; nil otherwise. Nothing is
    /// decrypted: this is for routing a datagram to its session, which then
    /// authenticates it.
    public static func connectionID(in datagram: UnsafeRawBufferPointer, length: Int) -> [UInt8]? {
        let start = ConnectionIDRecordHeader.connectionIDOffset
        guard length > 0, datagram.count >= start + length + 2,
            datagram[0] == ConnectionIDRecordHeader.tls12CIDContentType, datagram[1] == 0xFE
        else { return nil }
        return Array(datagram[start..<start + length])
    }

    /// ``connectionID(in:length:)`` of a datagram as SwiftNIO hands it over.
    public static func connectionID(in datagram: ByteBuffer, length: Int) -> [UInt8]? {
        datagram.withUnsafeReadableBytes { connectionID(in: $0, length: length) }
    }

    /// How many bytes at the start of `datagram` are whole ordinary epoch-0 records:
    /// what may be read before a CID is known.
    static func epochZeroPrefixLength(_ datagram: UnsafeRawBufferPointer) -> Int {
        var offset = 0
        while let header = DTLSRecordHeader(UnsafeRawBufferPointer(rebasing: datagram[offset...])), header.epoch == 0 {
            offset += DTLSRecordHeader.length + header.fragmentLength
        }
        return offset
    }

    /// Forgets the last datagram's accepted record, before the next datagram is read.
    func startDatagram() {
        lastAccepted = nil
        datagramHadNewestRecord = false
    }

    /// The epoch-1 transforms, derived the first time OpenSSL's state has what they
    /// need: the suite, both randoms and the master secret; nil until then.
    ///
    /// The pending cipher (`SSL_get_pending_cipher`) is the one the keys are for
    /// during the handshake. Before the key exchange the session's master key has
    /// length 0, so nothing is derived (and nothing wrong is kept) too early. On a
    /// resumption the session from the ticket already holds its master secret.
    func epochOneProtection() -> Protection? {
        if let protection { return protection }
        guard let cipher = SSL_get_pending_cipher(ssl) ?? SSL_get_current_cipher(ssl),
            let session = SSL_get_session(ssl)
        else { return nil }
        var masterSecret = [UInt8](repeating: 0, count: 48)
        var clientRandom = [UInt8](repeating: 0, count: 32)
        var serverRandom = [UInt8](repeating: 0, count: 32)
        defer { masterSecret.withUnsafeMutableBytes { OPENSSL_cleanse($0.baseAddress, $0.count) } }
        guard SSL_SESSION_get_master_key(session, &masterSecret, masterSecret.count) == 48,
            SSL_get_client_random(ssl, &clientRandom, clientRandom.count) == 32,
            SSL_get_server_random(ssl, &serverRandom, serverRandom.count) == 32
        else { return nil }
        do {
            let keys = try SessionRecordKeys(
                cipher: cipher, masterSecret: masterSecret, clientRandom: clientRandom, serverRandom: serverRandom)
            let made = Protection(
                inboundOpener: try keys.opener(for: end, ownConnectionID: ownConnectionID),
                inboundResealer: try keys.sealer(for: end.peer, peerConnectionID: []),
                outboundOpener: try keys.opener(for: end.peer, ownConnectionID: []),
                outboundSealer: try keys.sealer(for: end, peerConnectionID: peerConnectionID))
            protection = made
            return made
        } catch {
            OpenSSLError.drain()
            return nil
        }
    }

    /// The datagram OpenSSL wrote, with its epoch-1 records as `tls12_cid`
    /// records; nil when nothing of it is left to send.
    func convertOutbound(_ datagram: ByteBuffer) -> ByteBuffer? {
        guard convertsOutbound else { return datagram }
        var output: [UInt8] = []
        output.reserveCapacity(datagram.readableBytes + 8 * (peerConnectionID.count + 1))
        datagram.withUnsafeReadableBytes { bytes in
            let parsed = DatagramRecords(parsing: bytes, connectionIDLength: 0)
            if parsed.failure != nil { stats.outboundFailed += 1 }
            for record in parsed.records {
                let recordBytes = UnsafeRawBufferPointer(rebasing: bytes[record.range])
                guard record.header.epoch != 0 else {
                    output.append(contentsOf: recordBytes)
                    continue
                }
                guard let protection = epochOneProtection(), record.header.epoch == 1,
                    let opened = try? protection.outboundOpener.open(recordBytes)
                else {
                    stats.outboundFailed += 1
                    continue
                }
                let sealed = opened.plaintext.withUnsafeBytes { plaintext in
                    (try? protection.outboundSealer.seal(
                        contentType: opened.contentType, sequenceNumber: record.header.sequenceNumber,
                        plaintext: plaintext, appendingTo: &output)) != nil
                }
                if !sealed { stats.outboundFailed += 1 }
            }
        }
        return output.isEmpty ? nil : ByteBuffer(bytes: output)
    }
}
