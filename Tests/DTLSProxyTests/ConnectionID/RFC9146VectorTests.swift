import COpenSSL
import Testing

@testable import DTLSProxy

/// The record layer against sessions recorded between two Mbed TLS programs:
/// keys, record parsing, opening and re-sealing every epoch-1 record.
@Suite("RFC 9146 records against Mbed TLS sessions")
struct RFC9146VectorTests {
    /// A record found in a datagram, with what the fixture says about it.
    struct FoundRecord {
        let expected: RFC9146Vector.EpochOneRecord
        let bytes: [UInt8]
        let header: ConnectionIDRecordHeader
    }

    private func keyBlock(_ vector: RFC9146Vector, _ suite: RecordCipherSuite) throws -> KeyBlock {
        try KeyBlock(
            masterSecret: hexBytes(vector.masterSecret), clientRandom: hexBytes(vector.clientRandom),
            serverRandom: hexBytes(vector.serverRandom), suite: suite)
    }

    /// Every record of every datagram, each datagram read with its receiver's CID length.
    private func records(
        _ vector: RFC9146Vector
    ) -> [(direction: String, bytes: [UInt8], header: ConnectionIDRecordHeader)] {
        var found: [(String, [UInt8], ConnectionIDRecordHeader)] = []
        for datagram in vector.datagrams {
            let bytes = hexBytes(datagram.hex)
            let parsed = bytes.withUnsafeBytes {
                DatagramRecords(parsing: $0, connectionIDLength: vector.receiverCID(datagram.direction).count)
            }
            for record in parsed.records {
                found.append((datagram.direction, Array(bytes[record.range]), record.header))
            }
        }
        return found
    }

    /// The datagram record of each `epoch1_records` entry, by direction, epoch and sequence number.
    private func epochOneRecords(_ vector: RFC9146Vector) throws -> [FoundRecord] {
        let all = records(vector)
        return try vector.epoch1Records.map { expected in
            let matches = all.filter {
                $0.direction == expected.direction && $0.header.epoch == expected.epoch
                    && $0.header.sequenceNumber == expected.seq
            }
            #expect(matches.count == 1, "\(expected.direction) epoch \(expected.epoch) seq \(expected.seq)")
            let match = try #require(matches.first)
            return FoundRecord(expected: expected, bytes: match.bytes, header: match.header)
        }
    }

    @Test(arguments: RFC9146Vector.fileNames)
    func suiteIsRecognisedByItsOpenSSLName(_ name: String) throws {
        let vector = try RFC9146Vector.load(name)
        let suite = try #require(RecordCipherSuite(openSSLName: vector.suiteOpenSSLName))
        #expect(suite == RFC9146Vector.files[name])
        #expect(suite.keyBlockLength * 2 == vector.keyBlock.utf8.count)
    }

    @Test(arguments: RFC9146Vector.fileNames)
    func keyBlockIsThePRFOfTheMasterSecret(_ name: String) throws {
        let vector = try RFC9146Vector.load(name)
        let suite = try #require(RFC9146Vector.files[name])
        let expected = hexBytes(vector.keyBlock)
        let derived = try KeyBlock.expand(
            masterSecret: hexBytes(vector.masterSecret), clientRandom: hexBytes(vector.clientRandom),
            serverRandom: hexBytes(vector.serverRandom), suite: suite)
        #expect(derived == expected)
        let split = try keyBlock(vector, suite)
        #expect(split == KeyBlock(splitting: expected, suite: suite))
        #expect(split.clientWriteKey + split.serverWriteKey + split.clientWriteIV + split.serverWriteIV == expected)
        #expect(split.clientWriteIV.count == suite.fixedIVLength && split.serverWriteKey.count == suite.keyLength)
    }

    @Test(arguments: RFC9146Vector.fileNames)
    func everyDatagramIsReadRecordByRecord(_ name: String) throws {
        let vector = try RFC9146Vector.load(name)
        var recordCount = 0
        var sawSeveral = false
        for datagram in vector.datagrams {
            let bytes = hexBytes(datagram.hex)
            let cid = vector.receiverCID(datagram.direction)
            let parsed = bytes.withUnsafeBytes { DatagramRecords(parsing: $0, connectionIDLength: cid.count) }
            #expect(parsed.failure == nil)
            #expect(parsed.records.first?.range.lowerBound == 0)
            #expect(parsed.records.last?.range.upperBound == bytes.count)
            for (earlier, later) in zip(parsed.records, parsed.records.dropFirst()) {
                #expect(earlier.range.upperBound == later.range.lowerBound)
            }
            for record in parsed.records {
                #expect(record.header.version == 0xFEFD)
                #expect(record.header.recordLength == record.range.count)
                if record.header.isConnectionIDRecord {
                    let start = record.range.lowerBound + ConnectionIDRecordHeader.connectionIDOffset
                    #expect(Array(bytes[start..<start + cid.count]) == cid)
                }
            }
            recordCount += parsed.records.count
            sawSeveral = sawSeveral || parsed.records.count > 1
        }
        #expect(sawSeveral, "no datagram of the session holds several records")
        // Each epoch-1 record of the fixture is found exactly once, and no other epoch-1 record exists.
        let epochOne = records(vector).filter { $0.header.epoch == 1 }
        #expect(epochOne.count == vector.epoch1Records.count)
        let found = try epochOneRecords(vector)
        for record in found {
            #expect(record.header.contentType == record.expected.recordType)
            #expect(record.header.isConnectionIDRecord == !record.expected.cid.isEmpty)
            #expect(Array(record.bytes[record.header.connectionIDRange]) == hexBytes(record.expected.cid))
        }
        #expect(recordCount > found.count)
    }

    @Test(arguments: RFC9146Vector.fileNames)
    func everyEpochOneRecordOpensAndReseals(_ name: String) throws {
        let vector = try RFC9146Vector.load(name)
        let suite = try #require(RFC9146Vector.files[name])
        let keys = try keyBlock(vector, suite)
        var formats: Set<Bool> = []
        for record in try epochOneRecords(vector) {
            let expected = record.expected
            let sender = RFC9146Vector.sender(expected.direction)
            let cid = vector.receiverCID(expected.direction)
            let opener = try RecordOpener(suite: suite, keys: keys.writeKeys(of: sender), connectionID: cid)
            let opened = try opener.open(record.bytes)
            #expect(opened.contentType == expected.innerType)
            #expect(opened.paddingLength == expected.padding)
            #expect(opened.plaintext == hexBytes(expected.plaintext))
            #expect(opened.header == record.header)
            formats.insert(opened.header.isConnectionIDRecord)

            let sealer = try RecordSealer(suite: suite, keys: keys.writeKeys(of: sender), connectionID: cid)
            let resealed = try sealer.seal(
                contentType: expected.innerType, sequenceNumber: expected.seq, plaintext: hexBytes(expected.plaintext),
                padding: expected.padding)
            #expect(resealed == record.bytes, "\(expected.direction) seq \(expected.seq)")
            #expect(
                sealer.recordLength(plaintextLength: opened.plaintext.count, padding: expected.padding)
                    == resealed.count)

            // The other end's keys must not open it.
            let wrongKeys = try RecordOpener(suite: suite, keys: keys.writeKeys(of: sender.peer), connectionID: cid)
            #expect(throws: RecordProtectionError.authenticationFailed) { try wrongKeys.open(record.bytes) }
            #expect(ERR_peek_error() == 0, "OpenSSL error queue left non-empty")
        }
        // Every session has tls12_cid records; those with an empty client CID also have ordinary ones.
        #expect(formats.contains(true))
        #expect(formats.contains(false) == vector.clientCID.isEmpty)
    }
}
