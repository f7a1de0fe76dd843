import Testing

@testable import DTLSProxy

/// Builds a DTLS 1.2 ClientHello datagram the way a client library lays it out.
func makeClientHello(
    cookie: [UInt8] = [], random: [UInt8] = Array(repeating: 0xAB, count: 32),
    messageSequence: UInt16 = 0, recordSequence: UInt64 = 7,
    fragmentOffset: Int = 0, truncateFragment: Bool = false
) -> [UInt8] {
    var body: [UInt8] = [0xFE, 0xFD] + random
    body += [0]  // session_id
    body += [UInt8(cookie.count)] + cookie
    body += [0x00, 0x02, 0xC0, 0x2B]  // one cipher suite
    body += [0x01, 0x00]  // null compression
    let length = body.count
    var handshake: [UInt8] = [1, UInt8(length >> 16), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)]
    handshake += [UInt8(messageSequence >> 8), UInt8(messageSequence & 0xFF)]
    handshake += [UInt8(fragmentOffset >> 16), UInt8((fragmentOffset >> 8) & 0xFF), UInt8(fragmentOffset & 0xFF)]
    let fragmentLength = truncateFragment ? length - 1 : length
    handshake += [UInt8(fragmentLength >> 16), UInt8((fragmentLength >> 8) & 0xFF), UInt8(fragmentLength & 0xFF)]
    handshake += truncateFragment ? Array(body.dropLast()) : body
    var record: [UInt8] = [22, 0xFE, 0xFF, 0, 0]
    for shift in stride(from: 40, through: 0, by: -8) { record.append(UInt8((recordSequence >> UInt64(shift)) & 0xFF)) }
    record += [UInt8(handshake.count >> 8), UInt8(handshake.count & 0xFF)]
    return record + handshake
}

private func parse(_ bytes: [UInt8]) -> Result<ClientHelloSummary, ClientHelloParseFailure> {
    bytes.withUnsafeBytes { ClientHelloParser.parse($0) }
}

@Suite("DTLS record parsing")
struct DTLSRecordTests {
    @Test func parsesRecordHeader() throws {
        let bytes: [UInt8] = [23, 0xFE, 0xFD, 0x00, 0x01, 0, 0, 0, 0, 0x01, 0x02, 0x00, 0x03, 9, 9, 9]
        let header = try #require(bytes.withUnsafeBytes { DTLSRecordHeader($0) })
        #expect(header.contentType == 23)
        #expect(header.version == 0xFEFD)
        #expect(header.epoch == 1)
        #expect(header.sequenceNumber == 0x0102)
        #expect(header.fragmentLength == 3)
    }

    @Test(arguments: [
        [UInt8](),  // empty
        [22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0],  // 12 bytes: short header
        [99, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  // unknown content type
        [22, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],  // TLS, not DTLS
        [22, 0xFE, 0xFD, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 1, 2],  // fragment longer than datagram
    ])
    func rejectsMalformedHeaders(_ bytes: [UInt8]) {
        #expect(bytes.withUnsafeBytes { DTLSRecordHeader($0) } == nil)
    }

    @Test func parsesClientHelloWithoutCookie() throws {
        let summary = try parse(makeClientHello()).get()
        #expect(summary.cookie.isEmpty)
        #expect(summary.messageSequence == 0)
        #expect(summary.recordSequenceNumber == 7)
        #expect(summary.clientVersion == 0xFEFD)
        #expect(summary.random == Array(repeating: 0xAB, count: 32))
    }

    @Test func parsesClientHelloCookie() throws {
        let cookie = Array(UInt8(0)..<UInt8(32))
        let summary = try parse(makeClientHello(cookie: cookie, messageSequence: 1)).get()
        #expect(summary.cookie == cookie)
        #expect(summary.messageSequence == 1)
    }

    @Test func refusesFragmentedClientHello() {
        #expect(parse(makeClientHello(fragmentOffset: 10)) == .failure(.fragmented))
        #expect(parse(makeClientHello(truncateFragment: true)) == .failure(.fragmented))
    }

    @Test func refusesOtherRecords() {
        var alert = makeClientHello()
        alert[0] = 21
        #expect(parse(alert) == .failure(.notHandshakeRecord))
        var epochOne = makeClientHello()
        epochOne[4] = 1
        #expect(parse(epochOne) == .failure(.notEpochZero))
        var serverHello = makeClientHello()
        serverHello[13] = 2
        #expect(parse(serverHello) == .failure(.notClientHello))
    }

    @Test func refusesTruncatedBodies() {
        let hello = makeClientHello()
        // Cut the datagram and fix up the record length so only the body is short.
        for cut in [14, 20, 40, 60] where cut < hello.count {
            var short = Array(hello.prefix(cut))
            let fragment = short.count - 13
            short[11] = UInt8(fragment >> 8)
            short[12] = UInt8(fragment & 0xFF)
            #expect(parse(short) != .success(try! parse(hello).get()), "cut at \(cut)")
            if case .success = parse(short) { Issue.record("truncated hello at \(cut) parsed") }
        }
    }

    @Test func helloVerifyRequestEchoesSequenceAndCarriesCookie() throws {
        let cookie = Array(repeating: UInt8(0x5A), count: 32)
        let datagram = HelloVerifyRequest.datagram(
            cookie: cookie, recordSequenceNumber: 0x0000_0102_0304, messageSequence: 0)
        let header = try #require(datagram.withUnsafeBytes { DTLSRecordHeader($0) })
        #expect(header.contentType == 22)
        #expect(header.epoch == 0)
        #expect(header.version == 0xFEFF)
        #expect(header.sequenceNumber == 0x0102_0304)
        #expect(header.fragmentLength == datagram.count - 13)
        #expect(datagram[13] == 3)  // hello_verify_request
        #expect(Array(datagram[17..<19]) == [0, 0])  // message_seq 0
        #expect(Array(datagram[25..<27]) == [0xFE, 0xFF])  // server_version
        #expect(Int(datagram[27]) == cookie.count)
        #expect(Array(datagram[28...]) == cookie)
    }

    /// A ClientHello that already carried a (refused) cookie has message_seq 1;
    /// the HelloVerifyRequest answering it must be numbered 1 too, or an
    /// OpenSSL client discards it as a retransmission of the first one.
    @Test func helloVerifyRequestEchoesTheClientHellosMessageSequence() throws {
        let datagram = HelloVerifyRequest.datagram(cookie: [1, 2, 3], recordSequenceNumber: 1, messageSequence: 1)
        #expect(Array(datagram[17..<19]) == [0, 1])
        let third = HelloVerifyRequest.datagram(cookie: [1, 2, 3], recordSequenceNumber: 7, messageSequence: 0x0102)
        #expect(Array(datagram[5..<11]) == [0, 0, 0, 0, 0, 1])
        #expect(Array(third[17..<19]) == [0x01, 0x02])
        #expect(Array(third[5..<11]) == [0, 0, 0, 0, 0, 7])
    }
}
