import COpenSSL

/// Whether a context negotiates RFC 9146 Connection IDs, and which CID its
/// sessions ask to receive.
///
/// Off by default: a context built without a policy sends no `connection_id`
/// extension and ignores the one a client sends, exactly as before CIDs existed.
///
/// On a listener the CID is the one the server wants on every record from the
/// client: the router finds the session by it, so the generator (supplied by
/// the caller) decides its layout and keeps it unique, e.g. a node id first.
/// On a connector it is what the client asks the server to put on its records;
/// zero-length by default (the server then sends ordinary records, while the
/// client still puts the server's CID on its own).
public struct ConnectionIDPolicy: Sendable {
    /// The CID lengths a policy may use; listeners need at least 4 (``serverLengths``).
    public static let allowedLengths = 0...16
    /// The CID lengths a listener may issue: short enough to cost little on
    /// every record, long enough to tell sessions apart.
    public static let serverLengths = 4...16

    /// Whether the extension is offered (connector) or answered (listener).
    public let isEnabled: Bool
    /// The length of every CID this side issues.
    public let length: Int
    private let generator: @Sendable () -> [UInt8]

    /// No CID: the extension is neither sent nor answered.
    public static let off = ConnectionIDPolicy(isEnabled: false, length: 0, generator: { [] })

    /// CIDs of `length` bytes from `generator`, which must return exactly that
    /// many bytes each time (a handshake whose CID has another length fails);
    /// by default random bytes (`RAND_bytes`).
    public static func on(
        length: Int = 0, generator: (@Sendable () -> [UInt8])? = nil
    ) throws(ConnectionIDPolicyError) -> ConnectionIDPolicy {
        guard allowedLengths.contains(length) else { throw .length(length) }
        return ConnectionIDPolicy(isEnabled: true, length: length, generator: generator ?? { randomBytes(length) })
    }

    private init(isEnabled: Bool, length: Int, generator: @escaping @Sendable () -> [UInt8]) {
        self.isEnabled = isEnabled
        self.length = length
        self.generator = generator
    }

    /// A fresh CID, or nil when the generator returned one of the wrong length.
    func issue() -> [UInt8]? {
        let value = generator()
        return value.count == length ? value : nil
    }

    private static func randomBytes(_ count: Int) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        guard count > 0 else { return bytes }
        // A failure leaves an empty array, which issue() refuses (wrong length).
        guard RAND_bytes(&bytes, Int32(count)) == 1 else {
            OpenSSLError.drain()
            return []
        }
        return bytes
    }
}

/// Why a ``ConnectionIDPolicy`` was refused.
public enum ConnectionIDPolicyError: Error, Equatable, Sendable {
    /// A CID length outside ``ConnectionIDPolicy/allowedLengths`` (or, for a listener, ``ConnectionIDPolicy/serverLengths``).
    case length(Int)
}
