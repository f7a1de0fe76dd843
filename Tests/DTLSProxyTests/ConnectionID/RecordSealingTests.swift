import COpenSSL
import Testing

@testable import DTLSProxy

/// Sealing and opening between our own sealer and opener, for what the
/// fixtures do not hold: empty plaintexts, long ones, every suite, bad arguments.
@Suite("Record sealing")
struct RecordSealingTests {
    private func keys(_ suite: RecordCipherSuite, _ byte: UInt8) -> TrafficKeys {
        TrafficKeys(
            key: [UInt8](repeating: byte, count: suite.keyLength),
            iv: [UInt8](repeating: byte &+ 1, count: suite.fixedIVLength))
    }

    @Test(arguments: RecordCipherSuite.allCases, [[UInt8](), [0xC1, 0xC2, 0xC3, 0xC4]])
    func roundTripsEveryLength(_ suite: RecordCipherSuite, _ cid: [UInt8]) throws {
        let sealer = try RecordSealer(suite: suite, keys: keys(suite, 3), epoch: 2, connectionID: cid)
        let opener = try RecordOpener(suite: suite, keys: keys(suite, 3), epoch: 2, connectionID: cid)
        for (sequence, length) in [0, 1, 15, 16, 17, 1000, 1 << 14].enumerated() {
            let plaintext = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) }
            let padding = cid.isEmpty ? 0 : sequence * 3
            let record = try sealer.seal(
                contentType: 23, sequenceNumber: UInt64(sequence), plaintext: plaintext, padding: padding)
            #expect(record.count == sealer.recordLength(plaintextLength: length, padding: padding))
            let opened = try opener.open(record)
            #expect(opened.plaintext == plaintext && opened.contentType == 23 && opened.paddingLength == padding)
            #expect(opened.header.epoch == 2 && opened.header.sequenceNumber == UInt64(sequence))
            // Even an empty record is authenticated: one flipped tag bit and it fails.
            var damaged = record
            damaged[damaged.count - 1] ^= 0x80
            #expect(throws: RecordProtectionError.authenticationFailed) { try opener.open(damaged) }
        }
        #expect(ERR_peek_error() == 0)
    }

    @Test(arguments: RecordCipherSuite.allCases)
    func appendsRecordsToOneDatagram(_ suite: RecordCipherSuite) throws {
        let cid: [UInt8] = [9, 8, 7]
        let sealer = try RecordSealer(suite: suite, keys: keys(suite, 5), connectionID: cid)
        let opener = try RecordOpener(suite: suite, keys: keys(suite, 5), connectionID: cid)
        var datagram: [UInt8] = []
        for sequence in 0..<3 {
            let text = Array("record \(sequence)".utf8)
            try text.withUnsafeBytes {
                try sealer.seal(
                    contentType: 23, sequenceNumber: UInt64(sequence), plaintext: $0, padding: sequence,
                    appendingTo: &datagram)
            }
        }
        let parsed = datagram.withUnsafeBytes { DatagramRecords(parsing: $0, connectionIDLength: cid.count) }
        #expect(parsed.failure == nil && parsed.records.count == 3)
        for (index, record) in parsed.records.enumerated() {
            let opened = try opener.open(Array(datagram[record.range]))
            #expect(opened.plaintext == Array("record \(index)".utf8) && opened.paddingLength == index)
        }
    }

    @Test func refusesBadArguments() throws {
        let suite = RecordCipherSuite.aes128GCM
        let ordinary = try RecordSealer(suite: suite, keys: keys(suite, 1), connectionID: [])
        let withCID = try RecordSealer(suite: suite, keys: keys(suite, 1), connectionID: [1])
        #expect(throws: RecordProtectionError.invalidPadding(1)) {
            try ordinary.seal(contentType: 23, sequenceNumber: 0, plaintext: [1], padding: 1)
        }
        #expect(throws: RecordProtectionError.invalidPadding(-1)) {
            try withCID.seal(contentType: 23, sequenceNumber: 0, plaintext: [1], padding: -1)
        }
        #expect(throws: RecordProtectionError.sequenceNumberOverflow) {
            try withCID.seal(contentType: 23, sequenceNumber: 1 << 48, plaintext: [1])
        }
        #expect(throws: RecordProtectionError.plaintextTooLong((1 << 14) + 1)) {
            try withCID.seal(contentType: 23, sequenceNumber: 0, plaintext: [UInt8](repeating: 1, count: (1 << 14) + 1))
        }
        #expect(throws: RecordProtectionError.plaintextTooLong((1 << 14) + 3000)) {
            try withCID.seal(
                contentType: 23, sequenceNumber: 0, plaintext: [UInt8](repeating: 1, count: 1 << 14), padding: 3000)
        }
        var output: [UInt8] = [1, 2, 3]
        #expect(throws: RecordProtectionError.invalidPadding(4)) {
            try [UInt8]([1]).withUnsafeBytes {
                try ordinary.seal(contentType: 23, sequenceNumber: 0, plaintext: $0, padding: 4, appendingTo: &output)
            }
        }
        #expect(output == [1, 2, 3])
        #expect(throws: RecordProtectionError.self) {
            try RecordSealer(suite: suite, keys: TrafficKeys(key: [1, 2], iv: [0, 0, 0, 0]), connectionID: [])
        }
        #expect(throws: RecordProtectionError.self) {
            try RecordOpener(
                suite: suite, keys: TrafficKeys(key: [UInt8](repeating: 0, count: 16), iv: [0]), connectionID: [])
        }
        #expect(throws: RecordProtectionError.self) {
            try RecordOpener(suite: suite, keys: keys(suite, 1), connectionID: [UInt8](repeating: 0, count: 256))
        }
    }

    @Test func refusesAnotherEpochAndAnOversizedFragment() throws {
        let suite = RecordCipherSuite.chacha20Poly1305
        let sealer = try RecordSealer(suite: suite, keys: keys(suite, 2), epoch: 1, connectionID: [])
        let opener = try RecordOpener(suite: suite, keys: keys(suite, 2), epoch: 2, connectionID: [])
        let record = try sealer.seal(contentType: 23, sequenceNumber: 1, plaintext: [1, 2, 3])
        #expect(throws: RecordProtectionError.wrongEpoch(1)) { try opener.open(record) }
        let length = RecordFormat.maximumFragmentLength + 1
        let oversized: [UInt8] = [23, 0xFE, 0xFD, 0, 2, 0, 0, 0, 0, 0, 0, UInt8(length >> 8), UInt8(length & 0xFF)]
        #expect(throws: RecordProtectionError.tooLong(length)) {
            try opener.open(oversized + [UInt8](repeating: 0, count: length))
        }
    }
}
