import Testing

@testable import DTLSProxy

/// Splits a whole ClientHello datagram into fragment records of at most `size` body bytes.
private func fragments(of whole: [UInt8], firstSize: Int = 70, size: Int) -> [[UInt8]] {
    let body = Array(whole[25...])
    let length = body.count
    var records: [[UInt8]] = []
    var offset = 0
    var sequence: UInt8 = 0
    while offset < length {
        let part = Array(body[offset..<min(length, offset + (offset == 0 ? firstSize : size))])
        var handshake: [UInt8] = [
            1, UInt8(length >> 16), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF), whole[17], whole[18],
        ]
        handshake += [UInt8(offset >> 16), UInt8((offset >> 8) & 0xFF), UInt8(offset & 0xFF)]
        handshake += [UInt8(part.count >> 16), UInt8((part.count >> 8) & 0xFF), UInt8(part.count & 0xFF)]
        handshake += part
        var record: [UInt8] = [22, 0xFE, 0xFF, 0, 0, 0, 0, 0, 0, 0, sequence]
        record += [UInt8(handshake.count >> 8), UInt8(handshake.count & 0xFF)]
        records.append(record + handshake)
        offset += part.count
        sequence += 1
    }
    return records
}

private func fragment(_ bytes: [UInt8]) throws -> ClientHelloFragment {
    try bytes.withUnsafeBytes { ClientHelloParser.fragment($0) }.get()
}

@Suite("ClientHello fragments")
struct ClientHelloReassemblyTests {
    @Test func firstFragmentWithoutTheWholeCookieIsRefused() throws {
        let parts = fragments(of: makeClientHello(cookie: Array(repeating: 1, count: 32)), firstSize: 50, size: 40)
        #expect(ClientHelloParser.summary(of: try fragment(parts[0])) == .failure(.truncated))
    }

    let cookie = Array(repeating: UInt8(0x42), count: 32)

    @Test func reassembledHelloEqualsTheUnfragmentedOne() throws {
        let whole = makeClientHello(cookie: cookie, messageSequence: 1, recordSequence: 0)
        let parts = fragments(of: whole, size: 3)
        #expect(parts.count > 2)
        let first = try fragment(parts[0])
        #expect(!first.isWholeMessage)
        let summary = try ClientHelloParser.summary(of: first).get()
        #expect(summary.cookie == cookie, "the cookie is read from the first fragment alone")
        var reassembly = ClientHelloReassembly(first: first, summary: summary)
        // Out of order and with a duplicate: still one message.
        for part in parts.dropFirst().reversed() {
            #expect(!reassembly.isComplete)
            #expect(reassembly.add(try fragment(part)))
        }
        #expect(reassembly.isComplete)
        #expect(reassembly.add(try fragment(parts[1])), "a retransmitted fragment is harmless")
        #expect(reassembly.record() == whole)
    }

    @Test func anOverlappingFragmentCannotRewriteTheCheckedCookie() throws {
        let whole = makeClientHello(cookie: cookie, messageSequence: 1, recordSequence: 0)
        let parts = fragments(of: whole, size: 3)
        let first = try fragment(parts[0])
        var reassembly = ClientHelloReassembly(first: first, summary: try ClientHelloParser.summary(of: first).get())
        // A forged fragment at offset 0 carrying another cookie, then the real rest.
        let forged = fragments(
            of: makeClientHello(cookie: Array(repeating: 0x66, count: 32), messageSequence: 1), size: 3)[0]
        #expect(reassembly.add(try fragment(forged)))
        for part in parts.dropFirst() { #expect(reassembly.add(try fragment(part))) }
        #expect(reassembly.isComplete)
        #expect(reassembly.record() == whole, "the bytes of the first fragment stand")
    }

    @Test func fragmentsOfAnotherMessageAreRefused() throws {
        let whole = makeClientHello(cookie: cookie, messageSequence: 1)
        let parts = fragments(of: whole, size: 3)
        let first = try fragment(parts[0])
        var reassembly = ClientHelloReassembly(first: first, summary: try ClientHelloParser.summary(of: first).get())
        let other = fragments(of: makeClientHello(cookie: cookie, messageSequence: 2), size: 3)
        #expect(!reassembly.add(try fragment(other[1])))
        #expect(!reassembly.isComplete)
    }

    @Test func parseRefusesFragmentsAndOversizedMessages() throws {
        let parts = fragments(of: makeClientHello(), firstSize: 40, size: 40)
        #expect(parts[0].withUnsafeBytes { ClientHelloParser.parse($0) } == .failure(.fragmented))
        var huge = parts[1]
        huge[14] = 0x01  // message length 65 536 + …: beyond what is reassembled
        #expect(huge.withUnsafeBytes { ClientHelloParser.fragment($0) } == .failure(.fragmented))
        #expect(ClientHelloParser.summary(of: try fragment(parts[1])) == .failure(.fragmented))
    }
}
