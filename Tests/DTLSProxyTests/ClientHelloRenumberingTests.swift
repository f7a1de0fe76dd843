import Testing

@testable import DTLSProxy

private func summary(_ bytes: [UInt8]) throws -> ClientHelloSummary {
    try bytes.withUnsafeBytes { ClientHelloParser.parse($0) }.get()
}

@Suite("ClientHello renumbering")
struct ClientHelloRenumberingTests {
    let cookie = Array(repeating: UInt8(0x42), count: 32)
    let random = (0..<32).map { UInt8($0) }

    @Test func copiesAreTheSameHelloWithoutCookieNumberedBeforeIt() throws {
        let real = makeClientHello(cookie: cookie, random: random, messageSequence: 3, recordSequence: 9)
        let copies = try #require(ClientHelloRenumbering.precedingCopies(of: real))
        #expect(copies.count == 3)
        for (index, copy) in copies.enumerated() {
            let parsed = try summary(copy)
            #expect(parsed.cookie.isEmpty)
            #expect(parsed.random == random)
            #expect(parsed.messageSequence == UInt16(index))
            #expect(parsed.recordSequenceNumber == UInt64(6 + index))
            #expect(copy.count == real.count - cookie.count)
            // Everything after the cookie is unchanged (cipher suites, compression, extensions).
            #expect(Array(copy.suffix(6)) == Array(real.suffix(6)))
        }
    }

    @Test(arguments: [UInt16(0), 1])
    func hellosThatDTLSv1ListenServesAreLeftAlone(sequence: UInt16) {
        #expect(
            ClientHelloRenumbering.precedingCopies(of: makeClientHello(cookie: cookie, messageSequence: sequence))
                == nil)
    }

    @Test func boundsTheWorkOneHelloCauses() {
        let tooFar = makeClientHello(
            cookie: cookie, messageSequence: ClientHelloRenumbering.maximumMessageSequence + 1,
            recordSequence: 100)
        #expect(ClientHelloRenumbering.precedingCopies(of: tooFar) == nil)
        let noRoomBelow = makeClientHello(cookie: cookie, messageSequence: 2, recordSequence: 1)
        #expect(ClientHelloRenumbering.precedingCopies(of: noRoomBelow) == nil)
    }

    @Test func refusesFragmentsAndTruncatedRecords() {
        let fragment = makeClientHello(cookie: cookie, messageSequence: 2, fragmentOffset: 0, truncateFragment: true)
        #expect(ClientHelloRenumbering.precedingCopies(of: fragment) == nil)
        let whole = makeClientHello(cookie: cookie, messageSequence: 2)
        #expect(ClientHelloRenumbering.precedingCopies(of: Array(whole.dropLast(3))) == nil)
    }
}
