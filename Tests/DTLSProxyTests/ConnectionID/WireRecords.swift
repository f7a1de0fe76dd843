import Testing

@testable import DTLSProxy

/// What the tests check on the wire: every record of every datagram one end
/// received, parsed with the CID length that end issued.
struct WireRecords {
    struct Record {
        let header: ConnectionIDRecordHeader
        let connectionID: [UInt8]
    }

    let records: [Record]
    /// Bytes left over that did not parse as records, over all datagrams.
    let unparsed: Int

    init(_ datagrams: [[UInt8]], connectionIDLength: Int) {
        var records: [Record] = []
        var unparsed = 0
        for datagram in datagrams {
            datagram.withUnsafeBytes { bytes in
                let parsed = DatagramRecords(parsing: bytes, connectionIDLength: connectionIDLength)
                for record in parsed.records {
                    let start = record.range.lowerBound
                    let cid = record.header.connectionIDRange.map { datagram[start + $0] }
                    records.append(Record(header: record.header, connectionID: cid))
                }
                unparsed += bytes.count - (parsed.records.last?.range.upperBound ?? 0)
            }
        }
        self.records = records
        self.unparsed = unparsed
    }

    /// The protected records (epoch 1 and later).
    var protected: [Record] { records.filter { $0.header.epoch > 0 } }

    /// Whether some epoch and sequence number appears on two records.
    var hasRepeatedSequenceNumbers: Bool {
        let keys = records.map { UInt64($0.header.epoch) << 48 | $0.header.sequenceNumber }
        return Set(keys).count != keys.count
    }

    /// Checks one direction: protected records are all `tls12_cid` with `connectionID`
    /// when it is non-empty, all ordinary otherwise, and no epoch+sequence repeats.
    func expectProtected(with connectionID: [UInt8], minimum: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(unparsed == 0, sourceLocation: sourceLocation)
        #expect(protected.count >= minimum, sourceLocation: sourceLocation)
        #expect(!hasRepeatedSequenceNumbers, sourceLocation: sourceLocation)
        for record in protected {
            #expect(record.header.epoch == 1, sourceLocation: sourceLocation)
            #expect(record.header.isConnectionIDRecord == !connectionID.isEmpty, sourceLocation: sourceLocation)
            #expect(record.connectionID == connectionID, sourceLocation: sourceLocation)
        }
        // No record of another kind hides a CID record: only the handshake's epoch-0 ones are ordinary.
        #expect(records.filter { $0.header.epoch == 0 }.allSatisfy { !$0.header.isConnectionIDRecord })
    }
}
