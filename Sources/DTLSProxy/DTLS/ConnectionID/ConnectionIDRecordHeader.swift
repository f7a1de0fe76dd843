/// The header of a DTLS 1.2 record on a session that negotiated a CID (RFC 9146 §4).
///
/// Two layouts share the wire:
/// - ordinary (RFC 6347 §4.1): type(1) version(2) epoch(2) seq(6) length(2);
/// - `tls12_cid`, content type 25: type(1) version(2) epoch(2) seq(6) cid length(2).
///
/// The CID's length is not on the wire: it is the length of the CID the
/// receiving side issued, which the caller passes in. Ordinary records are
/// read by `DTLSRecordHeader`; this type adds the `tls12_cid` layout beside it.
public struct ConnectionIDRecordHeader: Equatable, Sendable {
    /// The content type of a `tls12_cid` record.
    public static let tls12CIDContentType: UInt8 = 25
    /// Where the CID starts in a `tls12_cid` record: after type, version, epoch and sequence number.
    public static let connectionIDOffset = 11

    /// The content type on the wire: 25 for `tls12_cid`, else the record's own type.
    public let contentType: UInt8
    public let version: UInt16
    public let epoch: UInt16
    /// The 48-bit record sequence number.
    public let sequenceNumber: UInt64
    /// The length of the CID in the header; 0 for an ordinary record.
    public let connectionIDLength: Int
    /// The length of the fragment (for a protected record: explicit nonce, ciphertext, tag).
    public let fragmentLength: Int

    /// Whether the record uses the `tls12_cid` layout.
    public var isConnectionIDRecord: Bool { contentType == Self.tls12CIDContentType }
    /// Header bytes before the fragment: 13, plus the CID for a `tls12_cid` record.
    public var headerLength: Int { DTLSRecordHeader.length + connectionIDLength }
    /// Header plus fragment.
    public var recordLength: Int { headerLength + fragmentLength }
    /// Where the CID lies, counted from the start of the record (empty for an ordinary record).
    public var connectionIDRange: Range<Int> { Self.connectionIDOffset..<Self.connectionIDOffset + connectionIDLength }
    /// Where the fragment lies, counted from the start of the record.
    public var fragmentRange: Range<Int> { headerLength..<recordLength }
}

extension ConnectionIDRecordHeader {
    /// Parses the record header at the start of `bytes`; the fragment must fit in them.
    ///
    /// - Parameter connectionIDLength: the length of the CID this side issued
    ///   (0 when it asked for none, in which case a `tls12_cid` record is refused).
    public init(parsing bytes: UnsafeRawBufferPointer, connectionIDLength: Int) throws(RecordHeaderError) {
        guard bytes.count >= DTLSRecordHeader.length else { throw .truncated(bytes.count) }
        guard bytes[1] == 0xFE else { throw .notDTLS }
        let type = bytes[0]
        guard type == Self.tls12CIDContentType else {
            guard DTLSRecordHeader.ContentType(rawValue: type) != nil else { throw .unknownContentType(type) }
            guard let plain = DTLSRecordHeader(bytes) else {
                throw .fragmentPastEnd(declared: Int(bytes[11]) << 8 | Int(bytes[12]), available: bytes.count - 13)
            }
            self.init(plain)
            return
        }
        guard connectionIDLength > 0 else { throw .unexpectedConnectionID }
        let lengthOffset = Self.connectionIDOffset + connectionIDLength
        guard bytes.count >= lengthOffset + 2 else { throw .truncated(bytes.count) }
        let declared = Int(bytes[lengthOffset]) << 8 | Int(bytes[lengthOffset + 1])
        let available = bytes.count - lengthOffset - 2
        guard declared <= available else { throw .fragmentPastEnd(declared: declared, available: available) }
        self.init(
            contentType: type, version: UInt16(bytes[1]) << 8 | UInt16(bytes[2]),
            epoch: UInt16(bytes[3]) << 8 | UInt16(bytes[4]),
            sequenceNumber: (5..<11).reduce(0) { $0 << 8 | UInt64(bytes[$1]) },
            connectionIDLength: connectionIDLength, fragmentLength: declared)
    }

    /// The header of an ordinary record as `DTLSRecordHeader` read it.
    public init(_ plain: DTLSRecordHeader) {
        self.init(
            contentType: plain.contentType, version: plain.version, epoch: plain.epoch,
            sequenceNumber: plain.sequenceNumber, connectionIDLength: 0, fragmentLength: plain.fragmentLength)
    }
}

/// Why a record header was refused.
public enum RecordHeaderError: Error, Equatable, Sendable {
    /// Fewer bytes than a header of this layout needs (the count available).
    case truncated(Int)
    /// The version's major byte is not 0xFE.
    case notDTLS
    /// A content type neither DTLS 1.2 nor RFC 9146 defines.
    case unknownContentType(UInt8)
    /// A `tls12_cid` record on a side that issued a zero-length CID.
    case unexpectedConnectionID
    /// The length field promises more fragment bytes than follow.
    case fragmentPastEnd(declared: Int, available: Int)
}

/// The records of one datagram, which may hold several back to back (RFC 6347 §4.1.1).
public struct DatagramRecords: Sendable {
    /// One record: its header and where it lies in the datagram.
    public struct Record: Equatable, Sendable {
        public let header: ConnectionIDRecordHeader
        /// The record's bytes in the datagram, header included.
        public let range: Range<Int>
    }

    /// The records read before the end of the datagram or the first bad header.
    public let records: [Record]
    /// Why reading stopped before the end, if it did; the bytes from there on are not records.
    public let failure: RecordHeaderError?

    /// Reads `datagram` record by record; `connectionIDLength` as for `ConnectionIDRecordHeader`.
    public init(parsing datagram: UnsafeRawBufferPointer, connectionIDLength: Int) {
        var records: [Record] = []
        var offset = 0
        var failure: RecordHeaderError?
        while offset < datagram.count {
            do {
                let header = try ConnectionIDRecordHeader(
                    parsing: UnsafeRawBufferPointer(rebasing: datagram[offset...]),
                    connectionIDLength: connectionIDLength)
                records.append(Record(header: header, range: offset..<offset + header.recordLength))
                offset += header.recordLength
            } catch {
                failure = error
                break
            }
        }
        self.records = records
        self.failure = failure
    }
}
