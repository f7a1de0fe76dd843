import COpenSSL
import NIOCore

/// The buffers behind one session's BIO: one inbound datagram at a time, and
/// the datagrams OpenSSL wrote since the last drain.
///
/// OpenSSL's memory BIO merges the records of a flight into one oversized
/// write and splits nothing on read, which breaks DTLS. Here every
/// `BIO_write` is exactly one outgoing datagram and every `BIO_read` returns
/// exactly one queued incoming datagram, so datagram boundaries survive.
/// The BIO holds an unretained pointer to this object; the owning
/// `DTLSServerConnection` keeps it alive for as long as the `SSL` object exists.
final class DatagramBIOBuffers {
    /// The datagram OpenSSL reads next; nil once read.
    var inbound: ByteBuffer?
    /// Datagrams OpenSSL wrote, oldest first; the session sends and clears them.
    var outbound: [ByteBuffer] = []
    /// Converts `tls12_cid` records for OpenSSL once a CID was negotiated (RFC 9146); nil before.
    var recordLayer: ConnectionIDRecordLayer?
    /// Set while a CID may still be negotiated: each read then stops before the
    /// first protected record of a datagram, so that a client reads the ServerHello
    /// (whose extension creates ``recordLayer``) before the `tls12_cid` Finished
    /// that follows it in a resumption's flight.
    var stopsBeforeProtectedRecords = false
    /// The largest datagram we send, as configured (`mtu`).
    let mtu: Int
    /// IP and UDP header bytes for the peer's address family (28 for IPv4, 48 for IPv6).
    let overhead: Int
    private let allocator: ByteBufferAllocator

    init(mtu: Int, overhead: Int, allocator: ByteBufferAllocator) {
        self.mtu = mtu
        self.overhead = overhead
        self.allocator = allocator
        self.outbound.reserveCapacity(4)
    }

    fileprivate func read(into destination: UnsafeMutableRawBufferPointer) -> Int? {
        if let recordLayer, recordLayer.convertsInbound {
            guard let records = recordLayer.nextInbound(from: &inbound) else { return nil }
            let count = min(records.count, destination.count)
            records.withUnsafeBytes { destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0.prefix(count))) }
            return count
        }
        guard var datagram = inbound else { return nil }
        inbound = nil
        if stopsBeforeProtectedRecords {
            let prefix = datagram.withUnsafeReadableBytes { ConnectionIDRecordLayer.epochZeroPrefixLength($0) }
            if prefix > 0, prefix < datagram.readableBytes {
                inbound = datagram.getSlice(at: datagram.readerIndex + prefix, length: datagram.readableBytes - prefix)
                datagram = datagram.getSlice(at: datagram.readerIndex, length: prefix)!
            }
        }
        // A datagram larger than OpenSSL's buffer is truncated, as recvfrom would do.
        let count = min(datagram.readableBytes, destination.count)
        datagram.withUnsafeReadableBytes { source in
            destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source.prefix(count)))
        }
        datagram.moveReaderIndex(forwardBy: count)
        return count
    }

    fileprivate func write(_ source: UnsafeRawBufferPointer) {
        var buffer = allocator.buffer(capacity: source.count)
        buffer.writeBytes(source)
        outbound.append(buffer)
    }
}

/// The `BIO_METHOD` shared by every session's BIO; created once, never freed.
enum DatagramBIO {
    nonisolated(unsafe) static let method: OpaquePointer = {
        // A type index of our own (BIO_get_new_index), so that no BIO_find_type
        // or type check in OpenSSL takes this BIO for one of its own kinds.
        let index = BIO_get_new_index()
        guard index > 0, let method = BIO_meth_new(index | dp_BIO_TYPE_SOURCE_SINK, "dtls-proxyd datagram") else {
            fatalError("BIO_meth_new failed: \(OpenSSLError.fromQueue("BIO_meth_new"))")
        }
        BIO_meth_set_write(method, datagramBIOWrite)
        BIO_meth_set_read(method, datagramBIORead)
        BIO_meth_set_ctrl(method, datagramBIOCtrl)
        BIO_meth_set_create(method, datagramBIOCreate)
        BIO_meth_set_destroy(method, datagramBIODestroy)
        return method
    }()

    /// A new BIO over `buffers`. The caller hands it to `SSL_set_bio`, which takes ownership.
    static func make(buffers: DatagramBIOBuffers) -> OpaquePointer? {
        guard let bio = BIO_new(method) else { return nil }
        BIO_set_data(bio, Unmanaged.passUnretained(buffers).toOpaque())
        dp_BIO_set_init(bio, 1)
        return bio
    }
}

private func buffers(of bio: OpaquePointer?) -> DatagramBIOBuffers? {
    guard let bio, let pointer = BIO_get_data(bio) else { return nil }
    return Unmanaged<DatagramBIOBuffers>.fromOpaque(pointer).takeUnretainedValue()
}

private func datagramBIOWrite(_ bio: OpaquePointer?, _ data: UnsafePointer<CChar>?, _ length: Int32) -> Int32 {
    guard let bio, let data, length >= 0, let buffers = buffers(of: bio) else { return -1 }
    dp_BIO_clear_retry_flags(bio)
    buffers.write(UnsafeRawBufferPointer(start: data, count: Int(length)))
    return length
}

private func datagramBIORead(_ bio: OpaquePointer?, _ data: UnsafeMutablePointer<CChar>?, _ length: Int32) -> Int32 {
    guard let bio, let data, length >= 0, let buffers = buffers(of: bio) else { return -1 }
    dp_BIO_clear_retry_flags(bio)
    guard let count = buffers.read(into: UnsafeMutableRawBufferPointer(start: data, count: Int(length))) else {
        dp_BIO_set_retry_read(bio)
        return -1
    }
    return Int32(count)
}

/// Answers the ctrl calls OpenSSL's DTLS code makes; see docs/openssl-dtls.md.
private func datagramBIOCtrl(
    _ bio: OpaquePointer?, _ command: Int32, _ larg: Int, _ parg: UnsafeMutableRawPointer?
) -> Int {
    guard let buffers = buffers(of: bio) else { return 0 }
    switch command {
    case BIO_CTRL_FLUSH:
        // Writes are already whole datagrams; without 1 here the handshake loops on WANT_WRITE.
        return 1
    case BIO_CTRL_PENDING:
        return buffers.inbound?.readableBytes ?? 0
    case BIO_CTRL_WPENDING:
        return 0
    case BIO_CTRL_DGRAM_QUERY_MTU, BIO_CTRL_DGRAM_GET_MTU, BIO_CTRL_DGRAM_GET_FALLBACK_MTU:
        return buffers.mtu
    case BIO_CTRL_DGRAM_GET_MTU_OVERHEAD:
        return buffers.overhead
    case BIO_CTRL_DGRAM_SET_MTU:
        return buffers.mtu
    case BIO_CTRL_DGRAM_MTU_EXCEEDED:
        return 0
    case BIO_CTRL_DGRAM_SET_NEXT_TIMEOUT:
        // The session polls DTLSv1_get_timeout after every call instead.
        return 0
    case BIO_CTRL_DGRAM_SET_CONNECTED, BIO_CTRL_DGRAM_SET_PEER:
        return 1
    case BIO_CTRL_DGRAM_GET_PEER:
        // The router knows the peer; DTLSv1_listen copes with a BIO that does not.
        return 0
    default:
        return 0
    }
}

private func datagramBIOCreate(_ bio: OpaquePointer?) -> Int32 {
    1
}

private func datagramBIODestroy(_ bio: OpaquePointer?) -> Int32 {
    guard let bio else { return 0 }
    BIO_set_data(bio, nil)
    dp_BIO_set_init(bio, 0)
    return 1
}
