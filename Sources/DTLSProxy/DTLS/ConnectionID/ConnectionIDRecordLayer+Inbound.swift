import NIOCore

/// The inbound half of ``ConnectionIDRecordLayer``: what the datagram BIO hands
/// OpenSSL when it reads.
extension ConnectionIDRecordLayer {
    /// The next records of `datagram` for OpenSSL, as one datagram of ordinary
    /// records, all of one epoch; what is left stays in `datagram` for the next
    /// read. Nil when nothing is left that OpenSSL may read (the BIO then says
    /// "retry", as for an empty queue).
    ///
    /// One epoch per read, so that OpenSSL processes the epoch-0 ClientKeyExchange
    /// and ChangeCipherSpec (server) or ServerHello and ChangeCipherSpec (client,
    /// resuming) before the epoch-1 Finished behind them needs the keys they bring.
    func nextInbound(from datagram: inout ByteBuffer?) -> [UInt8]? {
        while let buffer = datagram, buffer.readableBytes > 0 {
            var run: [UInt8] = []
            let consumed = buffer.withUnsafeReadableBytes { bytes in
                collectRun(from: bytes, into: &run)
            }
            var rest = buffer
            rest.moveReaderIndex(forwardBy: consumed)
            datagram = rest.readableBytes > 0 ? rest : nil
            if !run.isEmpty { return run }
        }
        datagram = nil
        return nil
    }

    /// Converts records from the front of `bytes` into `run` until the epoch
    /// changes; returns how many bytes were used up (dropped records included).
    private func collectRun(from bytes: UnsafeRawBufferPointer, into run: inout [UInt8]) -> Int {
        var offset = 0
        var runEpoch: UInt16?
        while offset < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            guard
                let header = try? ConnectionIDRecordHeader(parsing: rest, connectionIDLength: ownConnectionID.count)
            else {
                // What follows a bad header cannot be delimited: the rest of the datagram goes.
                stats.malformed += 1
                return bytes.count
            }
            if let runEpoch, header.epoch != runEpoch { break }
            offset += header.recordLength
            if convert(UnsafeRawBufferPointer(rebasing: rest[..<header.recordLength]), header: header, into: &run) {
                runEpoch = header.epoch
            }
        }
        return offset
    }

    /// Appends `record` as OpenSSL must see it to `run`; false (and counted) when it is dropped.
    private func convert(
        _ record: UnsafeRawBufferPointer, header: ConnectionIDRecordHeader, into run: inout [UInt8]
    ) -> Bool {
        switch (header.epoch, header.isConnectionIDRecord) {
        case (0, false):
            run.append(contentsOf: record)
            return true
        case (1, false):
            stats.missingConnectionID += 1
            return false
        case (1, true):
            return open(record, header: header, into: &run)
        default:
            stats.unexpectedEpoch += 1
            return false
        }
    }

    /// Authenticates a `tls12_cid` record of epoch 1 and appends it re-sealed as an ordinary one.
    private func open(
        _ record: UnsafeRawBufferPointer, header: ConnectionIDRecordHeader, into run: inout [UInt8]
    ) -> Bool {
        guard record[header.connectionIDRange].elementsEqual(ownConnectionID) else {
            stats.unknownConnectionID += 1
            return false
        }
        // Cheap first: a replay is dropped before any decryption.
        guard replayWindow.check(header.sequenceNumber).isAcceptable else {
            stats.replayed += 1
            return false
        }
        guard let protection = epochOneProtection() else {
            stats.keysUnavailable += 1
            return false
        }
        let opened: OpenedRecord
        do {
            opened = try protection.inboundOpener.open(record)
        } catch .authenticationFailed {
            stats.authenticationFailed += 1
            return false
        } catch {
            stats.malformed += 1
            return false
        }
        let resealed = opened.plaintext.withUnsafeBytes { plaintext in
            (try? protection.inboundResealer.seal(
                contentType: opened.contentType, sequenceNumber: header.sequenceNumber, plaintext: plaintext,
                appendingTo: &run)) != nil
        }
        guard resealed else {
            stats.malformed += 1
            return false
        }
        let verdict = replayWindow.accept(header.sequenceNumber)
        lastAccepted = AcceptedRecord(
            epoch: header.epoch, sequenceNumber: header.sequenceNumber, isNewest: verdict == .newest)
        if verdict == .newest { datagramHadNewestRecord = true }
        return true
    }
}
