import Foundation
import Testing

@testable import DTLSProxy

/// One session of `Tests/DTLSProxyTests/Fixtures/rfc9146/` (see the README there).
struct RFC9146Vector: Decodable, Sendable {
    struct Datagram: Decodable, Sendable {
        let direction: String
        let hex: String
    }

    struct EpochOneRecord: Decodable, Sendable {
        let direction: String
        let recordType: UInt8
        let cid: String
        let epoch: UInt16
        let seq: UInt64
        let innerType: UInt8
        let padding: Int
        let plaintext: String

        enum CodingKeys: String, CodingKey {
            case direction, cid, epoch, seq, padding, plaintext
            case recordType = "record_type"
            case innerType = "inner_type"
        }
    }

    let suiteIANAName: String
    let suiteOpenSSLName: String
    let clientCID: String
    let serverCID: String
    let clientRandom: String
    let serverRandom: String
    let masterSecret: String
    let keyBlock: String
    let datagrams: [Datagram]
    let epoch1Records: [EpochOneRecord]

    enum CodingKeys: String, CodingKey {
        case datagrams
        case suiteIANAName = "suite_iana_name"
        case suiteOpenSSLName = "suite_openssl_name"
        case clientCID = "client_cid"
        case serverCID = "server_cid"
        case clientRandom = "client_random"
        case serverRandom = "server_random"
        case masterSecret = "master_secret"
        case keyBlock = "key_block"
        case epoch1Records = "epoch1_records"
    }

    /// The fixture files, and the suite each one negotiated.
    static let files: [String: RecordCipherSuite] = [
        "ecdsa-aes128gcm": .aes128GCM,
        "ecdsa-aes256gcm": .aes256GCM,
        "ecdsa-chacha20": .chacha20Poly1305,
        "ecdsa-aes128ccm8": .aes128CCM8,
        "psk-aes128ccm8": .aes128CCM8,
        "psk-aes128ccm": .aes128CCM,
        "psk-aes128gcm": .aes128GCM,
        "ecdhepsk-chacha20": .chacha20Poly1305,
    ]

    static let fileNames = files.keys.sorted()

    private static let folder = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/rfc9146")

    static func load(_ name: String) throws -> RFC9146Vector {
        let data = try Data(contentsOf: folder.appendingPathComponent(name + ".json"))
        return try JSONDecoder().decode(RFC9146Vector.self, from: data)
    }

    /// The end that sent records in `direction` (`c2s` or `s2c`).
    static func sender(_ direction: String) -> ConnectionEnd {
        direction == "c2s" ? .client : .server
    }

    /// The keys of the session, derived from its master secret and randoms.
    func keys() throws -> (suite: RecordCipherSuite, block: KeyBlock) {
        let suite = try #require(RecordCipherSuite(openSSLName: suiteOpenSSLName))
        let block = try KeyBlock(
            masterSecret: hexBytes(masterSecret), clientRandom: hexBytes(clientRandom),
            serverRandom: hexBytes(serverRandom), suite: suite)
        return (suite, block)
    }

    /// The bytes of the epoch-1 record sent in `direction` with sequence number `seq`.
    func wireRecord(_ direction: String, seq: UInt64) throws -> [UInt8] {
        for datagram in datagrams where datagram.direction == direction {
            let bytes = hexBytes(datagram.hex)
            let parsed = bytes.withUnsafeBytes {
                DatagramRecords(parsing: $0, connectionIDLength: receiverCID(direction).count)
            }
            for record in parsed.records where record.header.epoch == 1 && record.header.sequenceNumber == seq {
                return Array(bytes[record.range])
            }
        }
        throw VectorError.noSuchRecord(direction, seq)
    }

    enum VectorError: Error {
        case noSuchRecord(String, UInt64)
    }

    /// The CID records in `direction` carry: the one their receiver asked for.
    func receiverCID(_ direction: String) -> [UInt8] {
        hexBytes(direction == "c2s" ? serverCID : clientCID)
    }
}

/// The bytes of a hex string (two digits a byte; the fixtures hold nothing else).
func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.utf8)
    precondition(digits.count % 2 == 0, "odd hex length")
    func value(_ digit: UInt8) -> UInt8 {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
        default: preconditionFailure("not a hex digit: \(digit)")
        }
    }
    return stride(from: 0, to: digits.count, by: 2).map { value(digits[$0]) << 4 | value(digits[$0 + 1]) }
}
