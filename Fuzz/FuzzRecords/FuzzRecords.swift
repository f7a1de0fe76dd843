// libFuzzer target for the code that reads datagrams before any OpenSSL object
// exists: DTLSRecordHeader, ClientHelloParser (fragment, summary, parse),
// ClientHelloReassembly and HelloVerifyRequest; and for the RFC 9146 record
// layer: DatagramRecords and RecordOpener (tls12_cid and ordinary records)
// with fixed keys, every suite.
//
// The input is read as the datagrams a client sends: back-to-back DTLS records,
// each one a datagram of its own (so a capture of a fragmented ClientHello,
// records concatenated, is a valid input). The whole input is also parsed as a
// single datagram, as the router does with every datagram it receives.
//
// Besides "no trap", it checks invariants that a caller relies on; a broken one
// ends the run with a message, which libFuzzer reports as a crash.

import DTLSProxy

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecords(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: data == nil ? 0 : size)
    checkDatagram(input)
    checkReassembly(of: input)
    checkConnectionIDRecords(input)
    return 0
}

/// Stops the run with `message` when `condition` is false, in every build configuration.
private func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant broken: \(message())") }
}

// MARK: - One datagram

/// Parses `datagram` the way the router does, checking what each step promises.
private func checkDatagram(_ datagram: UnsafeRawBufferPointer) {
    if let header = DTLSRecordHeader(datagram) {
        require(
            DTLSRecordHeader.ContentType(rawValue: header.contentType) != nil,
            "unknown content type \(header.contentType) accepted")
        require(header.version >> 8 == 0xFE, "non-DTLS version \(header.version) accepted")
        require(header.sequenceNumber < 1 << 48, "sequence number wider than 48 bits")
        require(
            header.fragmentLength >= 0 && DTLSRecordHeader.length + header.fragmentLength <= datagram.count,
            "fragment length \(header.fragmentLength) past a \(datagram.count)-byte datagram")
    } else if datagram.count >= DTLSRecordHeader.length, datagram[1] == 0xFE,
        DTLSRecordHeader.ContentType(rawValue: datagram[0]) != nil
    {
        let claimed = Int(datagram[11]) << 8 | Int(datagram[12])
        require(claimed > datagram.count - DTLSRecordHeader.length, "a plausible header was refused")
    }

    let fragment: ClientHelloFragment
    switch ClientHelloParser.fragment(datagram) {
    case .failure:
        if case .success = ClientHelloParser.parse(datagram) { require(false, "parse succeeded where fragment failed") }
        return
    case .success(let parsed):
        fragment = parsed
    }
    require(
        fragment.messageLength <= ClientHelloParser.maximumMessageLength,
        "message length \(fragment.messageLength) over the maximum")
    require(
        fragment.fragmentOffset >= 0 && fragment.fragmentOffset + fragment.bytes.count <= fragment.messageLength,
        "fragment \(fragment.fragmentOffset)+\(fragment.bytes.count) outside a \(fragment.messageLength)-byte message")
    require(DTLSRecordHeader.length + 12 + fragment.bytes.count <= datagram.count, "fragment longer than the datagram")

    let summary = ClientHelloParser.summary(of: fragment)
    let whole = ClientHelloParser.parse(datagram)
    if fragment.isWholeMessage {
        require(whole == summary, "parse and summary disagree on a whole ClientHello")
    } else {
        require(whole == .failure(.fragmented), "a fragment was parsed as a whole ClientHello: \(whole)")
    }
    guard case .success(let hello) = summary else { return }
    require(fragment.fragmentOffset == 0, "summary of a fragment that does not start the message")
    require(hello.random.count == 32, "random of \(hello.random.count) bytes")
    require(hello.cookie.count <= 255, "cookie of \(hello.cookie.count) bytes")
    require(hello.recordSequenceNumber == fragment.recordSequenceNumber, "summary lost the record sequence number")
    require(hello.messageSequence == fragment.messageSequence, "summary lost the message sequence")
    checkHelloVerifyRequest(answering: hello)
}

/// The HelloVerifyRequest for `hello`, built with its cookie, is one well-formed record that echoes it.
private func checkHelloVerifyRequest(answering hello: ClientHelloSummary) {
    let reply = HelloVerifyRequest.datagram(
        cookie: hello.cookie, recordSequenceNumber: hello.recordSequenceNumber, messageSequence: hello.messageSequence)
    reply.withUnsafeBytes { bytes in
        guard let header = DTLSRecordHeader(bytes) else {
            return require(false, "HelloVerifyRequest header does not parse")
        }
        require(
            header.contentType == DTLSRecordHeader.ContentType.handshake.rawValue && header.epoch == 0,
            "HelloVerifyRequest is not an epoch-0 handshake record")
        require(header.version == HelloVerifyRequest.version, "HelloVerifyRequest record version \(header.version)")
        require(
            header.sequenceNumber == hello.recordSequenceNumber,
            "HelloVerifyRequest does not echo the record sequence number")
        require(
            DTLSRecordHeader.length + header.fragmentLength == bytes.count,
            "HelloVerifyRequest is not exactly one record")
        require(
            ClientHelloParser.fragment(bytes) == .failure(.notClientHello), "HelloVerifyRequest taken for a ClientHello"
        )
    }
    let body = Array(reply.dropFirst(DTLSRecordHeader.length + 12))
    require(
        body.count == 3 + hello.cookie.count && Int(body[2]) == hello.cookie.count
            && Array(body.dropFirst(3)) == hello.cookie,
        "HelloVerifyRequest does not carry the cookie")
}

// MARK: - Reassembly

/// Feeds each record of `input` to a reassembly, as the router does for one peer,
/// and checks the result against a plain model: the message is every byte written
/// by an accepted fragment, later fragments winning.
private func checkReassembly(of input: UnsafeRawBufferPointer) {
    var reassembly: ClientHelloReassembly?
    var first: ClientHelloFragment?
    var model: [UInt8?] = []
    var offset = 0
    while offset < input.count {
        let rest = UnsafeRawBufferPointer(rebasing: input[offset...])
        guard let header = DTLSRecordHeader(rest) else { return }
        let recordLength = DTLSRecordHeader.length + header.fragmentLength
        defer { offset += recordLength }
        guard
            case .success(let fragment) = ClientHelloParser.fragment(
                UnsafeRawBufferPointer(rebasing: rest[..<recordLength]))
        else {
            continue
        }
        if fragment.fragmentOffset == 0 {
            // A first fragment (re)starts the hello, as a client that restarted would.
            guard case .success(let hello) = ClientHelloParser.summary(of: fragment) else { continue }
            if fragment.isWholeMessage {
                reassembly = nil
                continue
            }
            reassembly = ClientHelloReassembly(first: fragment, summary: hello)
            first = fragment
            model = [UInt8?](repeating: nil, count: fragment.messageLength)
            write(fragment, into: &model)
            require(reassembly!.summary == hello, "reassembly lost its summary")
            require(!reassembly!.isComplete, "a partial first fragment completed the message")
            continue
        }
        guard var pending = reassembly, let start = first else { continue }
        let belongs = fragment.messageSequence == start.messageSequence && fragment.messageLength == start.messageLength
        require(pending.add(fragment) == belongs, "add() accepted or refused the wrong fragment")
        guard belongs else { continue }
        write(fragment, into: &model)
        let complete = !model.contains(nil)
        require(
            pending.isComplete == complete,
            "isComplete is \(pending.isComplete) with \(model.filter { $0 == nil }.count) bytes missing")
        guard complete else {
            reassembly = pending
            continue
        }
        checkReassembled(pending.record(), first: start, message: model.map { $0! }, summary: pending.summary)
        reassembly = nil
        first = nil
    }
}

private func write(_ fragment: ClientHelloFragment, into model: inout [UInt8?]) {
    for (index, byte) in fragment.bytes.enumerated() { model[fragment.fragmentOffset + index] = byte }
}

/// A reassembled record is one epoch-0 record holding the whole message, and re-parses as such.
private func checkReassembled(
    _ record: [UInt8], first: ClientHelloFragment, message: [UInt8], summary: ClientHelloSummary
) {
    require(record.count == DTLSRecordHeader.length + 12 + message.count, "reassembled record of \(record.count) bytes")
    require(Array(record.suffix(message.count)) == message, "reassembled message differs from its fragments")
    record.withUnsafeBytes { bytes in
        guard let header = DTLSRecordHeader(bytes) else {
            return require(false, "reassembled record header does not parse")
        }
        require(
            header.version == first.recordVersion && header.sequenceNumber == first.recordSequenceNumber
                && header.epoch == 0,
            "reassembled record header does not match the first fragment's")
        guard case .success(let whole) = ClientHelloParser.fragment(bytes) else {
            return require(false, "reassembled record does not parse as a ClientHello")
        }
        require(
            whole.isWholeMessage && whole.messageLength == first.messageLength
                && whole.messageSequence == first.messageSequence,
            "reassembled record is not the whole message")
        // The summary was read from the first fragment; when no later fragment
        // rewrote those bytes, the reassembled hello must read the same.
        if Array(message.prefix(first.bytes.count)) == first.bytes {
            require(
                ClientHelloParser.parse(bytes) == .success(summary),
                "reassembled ClientHello reads differently from its first fragment")
        }
    }
}

// MARK: - Connection ID records

/// The CID the fuzzed side issued; Fuzz/make-cid-seeds.py seals its seeds with it.
private let fuzzConnectionID = Array("fuzz-cid".utf8)

/// The fixed keys of each suite: the key all 0x42, the IV all 0x24 (as in Fuzz/make-cid-seeds.py).
private func fuzzKeys(_ suite: RecordCipherSuite) -> TrafficKeys {
    TrafficKeys(
        key: [UInt8](repeating: 0x42, count: suite.keyLength), iv: [UInt8](repeating: 0x24, count: suite.fixedIVLength))
}

/// An opener and a sealer per suite, for a side with the fuzz CID and for one with none.
/// libFuzzer calls the entry point from one thread only, hence `nonisolated(unsafe)`.
nonisolated(unsafe) private let fuzzCodecs: [(opener: RecordOpener, sealer: RecordSealer)] =
    [fuzzConnectionID, []].flatMap { cid in
        RecordCipherSuite.allCases.map { suite in
            (
                try! RecordOpener(suite: suite, keys: fuzzKeys(suite), connectionID: cid),
                try! RecordSealer(suite: suite, keys: fuzzKeys(suite), connectionID: cid)
            )
        }
    }

/// Splits `datagram` as a side with a CID and as one without, and opens every
/// record with every suite: no trap, records tile the datagram, and a record
/// that opens seals back to the same bytes when its explicit nonce is the
/// epoch and sequence number.
private func checkConnectionIDRecords(_ datagram: UnsafeRawBufferPointer) {
    for cidLength in [fuzzConnectionID.count, 0] {
        let parsed = DatagramRecords(parsing: datagram, connectionIDLength: cidLength)
        var end = 0
        for record in parsed.records {
            require(record.range.lowerBound == end, "records do not tile the datagram")
            require(record.header.recordLength == record.range.count, "record range and header disagree")
            require(
                record.header.connectionIDLength == (record.header.isConnectionIDRecord ? cidLength : 0), "CID length")
            end = record.range.upperBound
        }
        require(end <= datagram.count, "records past the end of the datagram")
        require((parsed.failure == nil) == (end == datagram.count), "failure reported iff bytes were left")
        for record in parsed.records {
            let bytes = UnsafeRawBufferPointer(rebasing: datagram[record.range])
            for codec in fuzzCodecs where codec.opener.connectionID.count == cidLength {
                checkOpen(bytes, header: record.header, codec)
            }
        }
    }
}

private func checkOpen(
    _ bytes: UnsafeRawBufferPointer, header: ConnectionIDRecordHeader,
    _ codec: (opener: RecordOpener, sealer: RecordSealer)
) {
    let opened: OpenedRecord
    do {
        opened = try codec.opener.open(bytes)
    } catch {
        return
    }
    require(opened.header == header, "opened header differs from the parsed one")
    require(opened.header.epoch == codec.opener.epoch, "record of another epoch opened")
    require(header.isConnectionIDRecord == !codec.opener.connectionID.isEmpty, "record format and CID disagree")
    let suite = codec.opener.suite
    if suite.explicitNonceLength > 0 {
        var nonce: UInt64 = 0
        for index in 0..<8 { nonce = nonce << 8 | UInt64(bytes[header.headerLength + index]) }
        guard nonce == UInt64(header.epoch) << 48 | header.sequenceNumber else { return }
    }
    guard
        let resealed = try? codec.sealer.seal(
            contentType: opened.contentType, sequenceNumber: header.sequenceNumber, plaintext: opened.plaintext,
            padding: opened.paddingLength)
    else {
        return require(false, "an opened record does not seal again")
    }
    require(resealed.elementsEqual(bytes), "an opened record seals to other bytes")
}
