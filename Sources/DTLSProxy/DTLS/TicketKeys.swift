/// The session-ticket keys of one listener (RFC 5077), derived from a secret
/// and the wall clock so that they rotate without any coordination.
///
/// Time is cut into periods of `ticket_key_rotation`; period `n` starts at
/// Unix time `n × rotation`. The key of period `n` is derived from the secret
/// with HMAC-SHA256 over a label and `n`, so every process that holds the same
/// secret (`ticket_key_file`) and the same rotation computes the same keys at
/// the same time, and a ticket one instance issued resumes on any other.
/// Tickets are always issued under the current period's key; the previous
/// period's key still decrypts (a ticket is valid for up to two periods, and
/// is reissued under the current key when used), and so does the next one,
/// so instances whose clocks differ by less than a period still agree.
public struct TicketKeySchedule: Sendable, Equatable {
    /// The fewest bytes a `ticket_key_file` must hold.
    public static let minimumSecretLength = 32
    /// The most bytes read from a `ticket_key_file`.
    public static let maximumSecretLength = 4096

    /// One period's key: the name a ticket carries in clear and the two keys that protect it.
    public struct Key: Equatable, Sendable {
        /// 16 bytes: tells the decrypting side which key to use.
        public var name: [UInt8]
        /// 32 bytes: AES-256-CBC encryption of the ticket.
        public var cipherKey: [UInt8]
        /// 32 bytes: HMAC-SHA256 over the encrypted ticket.
        public var macKey: [UInt8]
    }

    let secret: [UInt8]
    /// The rotation period in whole seconds (at least 1).
    public let periodSeconds: UInt64

    public init(secret: [UInt8], rotation: ConfigDuration) {
        self.secret = secret
        self.periodSeconds = UInt64(max(1, rotation.nanoseconds / 1_000_000_000))
    }

    /// Checks the contents of a `ticket_key_file`: every byte is secret, and
    /// there must be enough of them. Returns the cause for the loader, or nil.
    public static func problem(withFileContents bytes: [UInt8], path: String) -> String? {
        if bytes.count < minimumSecretLength {
            return
                "\(path) holds \(bytes.count) bytes; a ticket key secret needs at least \(minimumSecretLength) (create one with `openssl rand 48 > \(path)`)"
        }
        if bytes.count > maximumSecretLength {
            return "\(path) is larger than \(maximumSecretLength) bytes; it should hold only a random secret"
        }
        return nil
    }

    /// The period that Unix time `now` falls in.
    public func period(at now: UInt64) -> UInt64 { now / periodSeconds }

    /// The key of period `period`.
    public func key(for period: UInt64) -> Key {
        var counter: [UInt8] = []
        withUnsafeBytes(of: period.bigEndian) { counter.append(contentsOf: $0) }
        func derive(_ label: String) -> [UInt8] {
            CookieVerifier.hmac(key: secret, data: Array("dtls-proxyd ticket \(label)".utf8) + counter)
        }
        return Key(name: Array(derive("name").prefix(16)), cipherKey: derive("aes"), macKey: derive("hmac"))
    }

    /// The key new tickets are issued under at `now`.
    public func encryptionKey(at now: UInt64) -> Key {
        key(for: period(at: now))
    }

    /// The key whose name a presented ticket carries, if it is still valid at `now`;
    /// `current` is false when the ticket should be reissued under the current key.
    public func decryptionKey(named name: [UInt8], at now: UInt64) -> (key: Key, current: Bool)? {
        let current = period(at: now)
        let candidates = [current, current &- 1, current &+ 1].filter { $0 <= current + 1 }
        for period in candidates {
            let key = key(for: period)
            if CookieVerifier.constantTimeEqual(key.name, name) {
                return (key, period == current)
            }
        }
        return nil
    }

    /// How long OpenSSL should consider a session valid: two periods.
    public var sessionLifetimeSeconds: Int {
        Int(min(periodSeconds * 2, UInt64(Int32.max)))
    }
}
