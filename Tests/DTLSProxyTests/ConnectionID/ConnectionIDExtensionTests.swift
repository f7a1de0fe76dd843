import Testing

@testable import DTLSProxy

@Suite("connection_id extension body (RFC 9146 §3)")
struct ConnectionIDExtensionTests {
    @Test(arguments: [[], [0xC1], [0x00, 0x11, 0x22, 0x33, 0xAA, 0xBB, 0xCC, 0xDD], [UInt8](repeating: 7, count: 255)])
    func roundTrips(_ cid: [UInt8]) throws {
        let body = try ConnectionIDExtension(connectionID: cid).encoded()
        #expect(body.count == cid.count + 1)
        #expect(body.first == UInt8(cid.count))
        #expect(try ConnectionIDExtension(parsing: body).connectionID == cid)
    }

    /// The bodies in the fixtures' hellos: the client's (empty or `c1c1`) and the server's eight bytes.
    @Test func parsesTheBodiesMbedTLSSent() throws {
        #expect(try ConnectionIDExtension(parsing: [0x00]).connectionID == [])
        #expect(try ConnectionIDExtension(parsing: [0x02, 0xC1, 0xC1]).connectionID == [0xC1, 0xC1])
        let server = hexBytes("080102030405060708")
        #expect(try ConnectionIDExtension(parsing: server).connectionID == Array(1...8))
        #expect(ConnectionIDExtension.extensionType == 54)
    }

    @Test func parsesASlice() throws {
        let hello: [UInt8] = [0x00, 0x36, 0x00, 0x03, 0x02, 0xD0, 0x0D]
        #expect(try ConnectionIDExtension(parsing: hello[4...]).connectionID == [0xD0, 0x0D])
    }

    @Test func refusesMalformedBodies() {
        #expect(throws: ConnectionIDExtensionError.empty) { try ConnectionIDExtension(parsing: []) }
        #expect(throws: ConnectionIDExtensionError.truncated(declared: 3, available: 2)) {
            try ConnectionIDExtension(parsing: [3, 1, 2])
        }
        #expect(throws: ConnectionIDExtensionError.truncated(declared: 255, available: 0)) {
            try ConnectionIDExtension(parsing: [255])
        }
        #expect(throws: ConnectionIDExtensionError.trailingBytes(1)) { try ConnectionIDExtension(parsing: [1, 1, 2]) }
        #expect(throws: ConnectionIDExtensionError.trailingBytes(2)) { try ConnectionIDExtension(parsing: [0, 0, 0]) }
        #expect(throws: ConnectionIDExtensionError.tooLong(256)) {
            try ConnectionIDExtension(connectionID: [UInt8](repeating: 0, count: 256))
        }
    }
}
