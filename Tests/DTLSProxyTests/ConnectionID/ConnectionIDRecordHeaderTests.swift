import Testing

@testable import DTLSProxy

@Suite("Record headers with and without a CID")
struct ConnectionIDRecordHeaderTests {
    private func parse(_ bytes: [UInt8], cidLength: Int) -> Result<ConnectionIDRecordHeader, RecordHeaderError> {
        bytes.withUnsafeBytes { raw in
            Result { () throws(RecordHeaderError) in
                try ConnectionIDRecordHeader(parsing: raw, connectionIDLength: cidLength)
            }
        }
    }

    @Test func readsATLS12CIDHeader() throws {
        let bytes: [UInt8] = [25, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 1, 2, 0xAA, 0xBB, 0x00, 0x02, 9, 9]
        let header = try parse(bytes, cidLength: 2).get()
        #expect(header.contentType == 25 && header.isConnectionIDRecord)
        #expect(header.version == 0xFEFD && header.epoch == 1 && header.sequenceNumber == 0x0102)
        #expect(header.connectionIDLength == 2 && header.connectionIDRange == 11..<13)
        #expect(header.fragmentLength == 2 && header.headerLength == 15 && header.recordLength == 17)
        #expect(header.fragmentRange == 15..<17)
    }

    @Test func readsAnOrdinaryHeaderAsDTLSRecordHeaderDoes() throws {
        let bytes: [UInt8] = [23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 3, 0, 1, 7]
        let header = try parse(bytes, cidLength: 8).get()
        let plain = try #require(bytes.withUnsafeBytes { DTLSRecordHeader($0) })
        #expect(header == ConnectionIDRecordHeader(plain))
        #expect(!header.isConnectionIDRecord && header.connectionIDLength == 0 && header.recordLength == 14)
        #expect(header.sequenceNumber == 3)
    }

    @Test func refusesBadHeaders() {
        let cid: [UInt8] = [25, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 1, 0xAA, 0xBB, 0x00, 0x02, 9, 9]
        #expect(parse(cid, cidLength: 0) == .failure(.unexpectedConnectionID))
        #expect(parse(Array(cid.prefix(14)), cidLength: 2) == .failure(.truncated(14)))
        #expect(parse(Array(cid.dropLast()), cidLength: 2) == .failure(.fragmentPastEnd(declared: 2, available: 1)))
        #expect(parse(Array(cid.prefix(12)), cidLength: 2) == .failure(.truncated(12)))
        #expect(parse([25, 0x03] + cid.dropFirst(2), cidLength: 2) == .failure(.notDTLS))
        #expect(parse([26] + cid.dropFirst(), cidLength: 2) == .failure(.unknownContentType(26)))
        let ordinary: [UInt8] = [23, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 3, 0, 5, 7]
        #expect(parse(ordinary, cidLength: 0) == .failure(.fragmentPastEnd(declared: 5, available: 1)))
    }

    @Test func splitsADatagramAndStopsAtGarbage() {
        let first: [UInt8] = [22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 3, 0, 1, 0x14]
        let second: [UInt8] = [25, 0xFE, 0xFD, 0, 1, 0, 0, 0, 0, 0, 0, 0xAA, 0xBB, 0x00, 0x01, 9]
        let datagram = first + second + [0x17, 0xFE]
        let parsed = datagram.withUnsafeBytes { DatagramRecords(parsing: $0, connectionIDLength: 2) }
        #expect(parsed.records.map(\.range) == [0..<14, 14..<30])
        #expect(parsed.records.map(\.header.isConnectionIDRecord) == [false, true])
        #expect(parsed.failure == .truncated(2))
        let empty = [UInt8]().withUnsafeBytes { DatagramRecords(parsing: $0, connectionIDLength: 2) }
        #expect(empty.records.isEmpty && empty.failure == nil)
    }
}
