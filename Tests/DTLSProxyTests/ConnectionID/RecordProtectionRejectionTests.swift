import COpenSSL
import Testing

@testable import DTLSProxy

/// Damaged, misdirected and made-up records are refused, each with its own
/// error, and leave nothing on OpenSSL's error queue.
@Suite("Record protection refuses bad records")
struct RecordProtectionRejectionTests {
    /// The client's application-data record with sequence number 1 (a `tls12_cid`
    /// record in every fixture), with an opener and a sealer for it.
    struct Fixture {
        let suite: RecordCipherSuite
        let keys: TrafficKeys
        let cid: [UInt8]
        let record: [UInt8]
        let opener: RecordOpener

        init(_ name: String) throws {
            let vector = try RFC9146Vector.load(name)
            let (suite, block) = try vector.keys()
            self.suite = suite
            keys = block.writeKeys(of: .client)
            cid = vector.receiverCID("c2s")
            record = try vector.wireRecord("c2s", seq: 1)
            opener = try RecordOpener(suite: suite, keys: keys, connectionID: cid)
        }

        var headerLength: Int { 13 + cid.count }

        func flipping(_ index: Int) -> [UInt8] {
            var damaged = record
            damaged[index] ^= 0x01
            return damaged
        }

        /// `record` with its length field set to `fragmentLength` and the fragment cut to it.
        func withFragment(ofLength fragmentLength: Int) -> [UInt8] {
            var cut = Array(record.prefix(headerLength + fragmentLength))
            cut[headerLength - 2] = UInt8(fragmentLength >> 8)
            cut[headerLength - 1] = UInt8(fragmentLength & 0xFF)
            return cut
        }
    }

    private func expectRefused(
        _ bytes: [UInt8], by opener: RecordOpener, with error: RecordProtectionError,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(throws: error, sourceLocation: sourceLocation) { try opener.open(bytes) }
        #expect(ERR_peek_error() == 0, "OpenSSL error queue left non-empty", sourceLocation: sourceLocation)
    }

    @Test(arguments: RFC9146Vector.fileNames)
    func theUntouchedRecordOpens(_ name: String) throws {
        let fixture = try Fixture(name)
        #expect(try fixture.opener.open(fixture.record).contentType == 23)
    }

    @Test(arguments: RFC9146Vector.fileNames)
    func aFlippedTagOrCiphertextByteFailsAuthentication(_ name: String) throws {
        let fixture = try Fixture(name)
        let last = fixture.record.count - 1
        expectRefused(fixture.flipping(last), by: fixture.opener, with: .authenticationFailed)
        expectRefused(
            fixture.flipping(last - fixture.suite.tagLength + 1), by: fixture.opener, with: .authenticationFailed)
        let firstCiphertextByte = fixture.headerLength + fixture.suite.explicitNonceLength
        expectRefused(fixture.flipping(firstCiphertextByte), by: fixture.opener, with: .authenticationFailed)
        if fixture.suite.explicitNonceLength > 0 {
            expectRefused(fixture.flipping(fixture.headerLength + 7), by: fixture.opener, with: .authenticationFailed)
        }
    }

    @Test(arguments: RFC9146Vector.fileNames)
    func aFlippedHeaderByteFailsAuthentication(_ name: String) throws {
        let fixture = try Fixture(name)
        expectRefused(fixture.flipping(2), by: fixture.opener, with: .authenticationFailed)  // version
        expectRefused(fixture.flipping(10), by: fixture.opener, with: .authenticationFailed)  // sequence number
        expectRefused(fixture.flipping(5), by: fixture.opener, with: .authenticationFailed)  // sequence number, top
        expectRefused(fixture.flipping(4), by: fixture.opener, with: .wrongEpoch(0))
    }

    @Test(arguments: RFC9146Vector.fileNames)
    func aWrongConnectionIDIsRefused(_ name: String) throws {
        let fixture = try Fixture(name)
        let cidByte = ConnectionIDRecordHeader.connectionIDOffset + fixture.cid.count - 1
        let otherCID = fixture.flipping(cidByte)
        expectRefused(otherCID, by: fixture.opener, with: .connectionIDMismatch)
        // To a side that did issue the other CID the record fails authentication: the CID is in the additional data.
        let otherOpener = try RecordOpener(
            suite: fixture.suite, keys: fixture.keys, connectionID: Array(otherCID[11..<11 + fixture.cid.count]))
        expectRefused(otherCID, by: otherOpener, with: .authenticationFailed)
        // A side that issued a shorter CID reads the header differently and never authenticates it.
        let shortOpener = try RecordOpener(
            suite: fixture.suite, keys: fixture.keys, connectionID: Array(fixture.cid.prefix(4)))
        let declared = Int(fixture.record[15]) << 8 | Int(fixture.record[16])
        let available = fixture.record.count - 17
        let expected: RecordProtectionError =
            declared > available
            ? .malformedHeader(.fragmentPastEnd(declared: declared, available: available))
            : .trailingBytes(available - declared)
        expectRefused(fixture.record, by: shortOpener, with: expected)
        // A side that asked for no CID takes no tls12_cid record.
        let noCID = try RecordOpener(suite: fixture.suite, keys: fixture.keys, connectionID: [])
        expectRefused(fixture.record, by: noCID, with: .unexpectedConnectionID)
    }

    @Test(arguments: RFC9146Vector.fileNames)
    func anOrdinaryRecordIsRefusedWhereACIDWasIssued(_ name: String) throws {
        let fixture = try Fixture(name)
        let ordinary = try RecordSealer(suite: fixture.suite, keys: fixture.keys, connectionID: [])
        let record = try ordinary.seal(contentType: 23, sequenceNumber: 9, plaintext: Array("hello".utf8))
        expectRefused(record, by: fixture.opener, with: .connectionIDMissing)
        let plainOpener = try RecordOpener(suite: fixture.suite, keys: fixture.keys, connectionID: [])
        #expect(try plainOpener.open(record).plaintext == Array("hello".utf8))
    }

    @Test(arguments: RFC9146Vector.fileNames)
    func truncatedRecordsAreRefused(_ name: String) throws {
        let fixture = try Fixture(name)
        let fragmentLength = fixture.record.count - fixture.headerLength
        expectRefused(
            Array(fixture.record.dropLast()), by: fixture.opener,
            with: .malformedHeader(.fragmentPastEnd(declared: fragmentLength, available: fragmentLength - 1)))
        expectRefused(fixture.record + [0], by: fixture.opener, with: .trailingBytes(1))
        expectRefused(Array(fixture.record.prefix(12)), by: fixture.opener, with: .malformedHeader(.truncated(12)))
        expectRefused(Array(fixture.record.prefix(14)), by: fixture.opener, with: .malformedHeader(.truncated(14)))
        // Explicit nonce and tag but not one byte of DTLSInnerPlaintext.
        let overhead = fixture.suite.recordOverhead
        expectRefused(fixture.withFragment(ofLength: overhead), by: fixture.opener, with: .tooShort(overhead))
        expectRefused(fixture.withFragment(ofLength: 0), by: fixture.opener, with: .tooShort(0))
        // One byte more than that: well-formed, so it comes down to the tag.
        expectRefused(fixture.withFragment(ofLength: overhead + 1), by: fixture.opener, with: .authenticationFailed)
    }

    @Test(arguments: RFC9146Vector.fileNames)
    func anAllZeroInnerPlaintextHasNoContentType(_ name: String) throws {
        let fixture = try Fixture(name)
        let sealer = try RecordSealer(suite: fixture.suite, keys: fixture.keys, connectionID: fixture.cid)
        // Content type 0 after zero content and zero padding: a DTLSInnerPlaintext of zeros only.
        let zeros = try sealer.seal(contentType: 0, sequenceNumber: 5, plaintext: [0, 0, 0], padding: 4)
        expectRefused(zeros, by: fixture.opener, with: .noContentType)
        // Zero content is fine as long as a content type follows it.
        let opened = try fixture.opener.open(
            sealer.seal(contentType: 23, sequenceNumber: 6, plaintext: [0, 0, 0], padding: 4))
        #expect(opened.plaintext == [0, 0, 0] && opened.contentType == 23 && opened.paddingLength == 4)
    }

    @Test(arguments: RFC9146Vector.fileNames)
    func garbageNeverOpens(_ name: String) throws {
        let fixture = try Fixture(name)
        var random = SplitMix64(seed: 0x9146)
        for round in 0..<2000 {
            var bytes = (0..<Int(random.next() % 160)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            if round % 2 == 1, bytes.count >= fixture.headerLength {
                // A well-formed header with the right CID and epoch: only the tag can decide.
                bytes.replaceSubrange(0..<fixture.headerLength, with: fixture.record.prefix(fixture.headerLength))
                let fragmentLength = bytes.count - fixture.headerLength
                bytes[fixture.headerLength - 2] = UInt8(fragmentLength >> 8)
                bytes[fixture.headerLength - 1] = UInt8(fragmentLength & 0xFF)
                let expected: RecordProtectionError =
                    fragmentLength < fixture.suite.recordOverhead + 1
                    ? .tooShort(fragmentLength) : .authenticationFailed
                expectRefused(bytes, by: fixture.opener, with: expected)
            } else {
                #expect(throws: RecordProtectionError.self) { try fixture.opener.open(bytes) }
            }
        }
        #expect(ERR_peek_error() == 0)
    }
}

/// A small deterministic generator, so a failing garbage input can be reproduced.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var value = state
        value = (value ^ (value >> 30)) &* 0xBF58_476D_1CE4_E5B9
        value = (value ^ (value >> 27)) &* 0x94D0_49BB_1331_11EB
        return value ^ (value >> 31)
    }
}
