import NIOCore

/// RFC 9146 §6: when a peer's record arrives from a new address, the session
/// may move there only for a record that authenticates and is newer than
/// every record accepted so far in its epoch. This asks that of a datagram
/// without changing anything, before the datagram is read at all: an older
/// record, a replay or a forgery from a new address is dropped whole.
extension ConnectionIDRecordLayer {
    /// Whether `datagram` holds a `tls12_cid` record carrying our CID that
    /// authenticates under the peer's keys and is newer than every record
    /// accepted so far. The replay window and the counters stay as they were.
    public func carriesNewestRecord(_ datagram: ByteBuffer) -> Bool {
        guard convertsInbound, let protection = epochOneProtection() else { return false }
        return datagram.withUnsafeReadableBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
                guard
                    let header = try? ConnectionIDRecordHeader(
                        parsing: rest, connectionIDLength: ownConnectionID.count)
                else { return false }
                let record = UnsafeRawBufferPointer(rebasing: rest[..<header.recordLength])
                offset += header.recordLength
                guard header.isConnectionIDRecord, header.epoch == 1,
                    record[header.connectionIDRange].elementsEqual(ownConnectionID),
                    replayWindow.check(header.sequenceNumber) == .newest
                else { continue }
                if (try? protection.inboundOpener.open(record)) != nil { return true }
            }
            return false
        }
    }
}
