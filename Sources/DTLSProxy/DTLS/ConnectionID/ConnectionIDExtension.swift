/// The body of the `connection_id` extension (RFC 9146 §3), extension type 54.
///
/// In a ClientHello or ServerHello each side names the CID it wants to
/// *receive*: `opaque cid<0..2^8-1>`, one length byte followed by that many
/// bytes. An empty CID means "send me ordinary records"; the peer still sends
/// its own CID, and records toward it then use the `tls12_cid` format.
public struct ConnectionIDExtension: Equatable, Sendable {
    /// The extension type registered for `connection_id` by RFC 9146.
    public static let extensionType: UInt16 = 54
    /// The longest CID the one-byte length can describe.
    public static let maximumLength = 255

    /// The CID the sender of the extension asks to receive (may be empty).
    public let connectionID: [UInt8]

    /// A body carrying `connectionID`; throws `.tooLong` past 255 bytes.
    public init(connectionID: [UInt8]) throws(ConnectionIDExtensionError) {
        guard connectionID.count <= Self.maximumLength else {
            throw .tooLong(connectionID.count)
        }
        self.connectionID = connectionID
    }

    /// Parses an extension body exactly: the length byte, the CID, and nothing after it.
    public init(parsing body: some Collection<UInt8>) throws(ConnectionIDExtensionError) {
        guard let lengthByte = body.first else { throw .empty }
        let declared = Int(lengthByte)
        let available = body.count - 1
        guard declared <= available else { throw .truncated(declared: declared, available: available) }
        guard declared == available else { throw .trailingBytes(available - declared) }
        connectionID = Array(body.dropFirst())
    }

    /// The extension body: the length byte followed by the CID.
    public func encoded() -> [UInt8] {
        [UInt8(connectionID.count)] + connectionID
    }
}

/// Why a `connection_id` extension body was refused.
public enum ConnectionIDExtensionError: Error, Equatable, Sendable {
    /// The body has no length byte at all.
    case empty
    /// The length byte promises more CID bytes than the body holds.
    case truncated(declared: Int, available: Int)
    /// Bytes follow the CID; the body must end with it.
    case trailingBytes(Int)
    /// A CID of this many bytes does not fit the one-byte length.
    case tooLong(Int)
}
