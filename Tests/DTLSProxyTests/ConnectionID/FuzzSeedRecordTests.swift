import Foundation
import Testing

@testable import DTLSProxy

/// The RFC 9146 seeds of the fuzz target (Fuzz/make-cid-seeds.py seals them with
/// an AEAD implementation other than OpenSSL) open with the target's fixed keys and seal
/// back to the same bytes: a second outside check of the record format, and a
/// guard that the fuzzer starts from records that reach the success path.
@Suite("Fuzz seeds for CID records")
struct FuzzSeedRecordTests {
    private static let seeds = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fuzz/corpus/records")

    /// As in Fuzz/FuzzRecords/FuzzRecords.swift.
    private static let connectionID = Array("fuzz-cid".utf8)

    private static let suites: [String: RecordCipherSuite] = [
        "aes128gcm": .aes128GCM, "aes256gcm": .aes256GCM, "chacha20": .chacha20Poly1305, "aes128ccm": .aes128CCM,
        "aes128ccm8": .aes128CCM8,
    ]

    @Test(arguments: suites.keys.sorted(), [true, false])
    func seedsOpenAndReseal(_ name: String, _ withCID: Bool) throws {
        let suite = try #require(Self.suites[name])
        let keys = TrafficKeys(
            key: [UInt8](repeating: 0x42, count: suite.keyLength),
            iv: [UInt8](repeating: 0x24, count: suite.fixedIVLength))
        let cid = withCID ? Self.connectionID : []
        let file = Self.seeds.appendingPathComponent(withCID ? "cid-\(name).bin" : "cid-ordinary-\(name).bin")
        let datagram = [UInt8](try Data(contentsOf: file))
        let parsed = datagram.withUnsafeBytes { DatagramRecords(parsing: $0, connectionIDLength: cid.count) }
        #expect(parsed.failure == nil && parsed.records.count == 2)
        let opener = try RecordOpener(suite: suite, keys: keys, connectionID: cid)
        let sealer = try RecordSealer(suite: suite, keys: keys, connectionID: cid)
        let expected: [(UInt8, [UInt8], Int)] =
            withCID
            ? [(23, Array("GET /fuzz\r\n".utf8), 3), (21, [1, 0], 0)]
            : [(23, Array("GET /fuzz\r\n".utf8), 0), (23, [], 0)]
        for (record, (type, plaintext, padding)) in zip(parsed.records, expected) {
            let bytes = Array(datagram[record.range])
            let opened = try opener.open(bytes)
            #expect(opened.contentType == type && opened.plaintext == plaintext && opened.paddingLength == padding)
            #expect(opened.header.isConnectionIDRecord == withCID)
            let resealed = try sealer.seal(
                contentType: type, sequenceNumber: opened.header.sequenceNumber, plaintext: plaintext, padding: padding)
            #expect(resealed == bytes)
        }
    }
}
