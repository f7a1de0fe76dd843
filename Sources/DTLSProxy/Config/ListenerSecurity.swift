/// Who may connect to a listener and with what: client-certificate checks,
/// PSK details, protocol policy and session resumption.
///
/// The listener keys `client_ca`, `psk_file` and `min_version` live on
/// ``ListenerConfiguration`` itself; everything issue-specific beyond them is
/// gathered here so that the loader fills it in one place
/// (`ConfigurationLoader+ListenerSecurity.swift`).
public struct ListenerSecurity: Sendable, Equatable {
    /// `client_auth`: whether a client certificate is asked for and required.
    /// The loader resolves the default: `require` when `client_ca` is set, `none` otherwise.
    public var clientAuth: ClientAuthMode = .none
    /// `verify_depth`: the most intermediate CA certificates between a client
    /// certificate and a CA of `client_ca` (OpenSSL's `SSL_CTX_set_verify_depth`).
    public var verifyDepth: Int = 4
    /// `allow_cn`, `allow_dns`, `allow_uri`: which verified clients are admitted.
    public var identityPolicy = ClientIdentityPolicy()
    /// `psk_identity_hint`: sent to PSK clients in the ServerKeyExchange; nil sends none.
    public var pskIdentityHint: String? = nil
    /// `max_version`: the highest DTLS version offered.
    public var maxVersion: DTLSVersionSetting = .dtls1_2
    /// `ciphers`: an OpenSSL cipher string; nil uses the built-in AEAD list.
    public var ciphers: String? = nil
    /// `groups`: key-exchange groups, e.g. `X25519:P-256`; nil uses the built-in list.
    public var groups: String? = nil
    /// `session_tickets`: whether returning clients may resume (RFC 5077 tickets).
    public var sessionTickets = true
    /// `ticket_key_file`: absolute path of the shared ticket secret; nil means a random secret per start.
    public var ticketKeyFile: String? = nil
    /// The bytes of `ticket_key_file`, read and checked by the loader; nil without the file.
    public var ticketSecret: [UInt8]? = nil
    /// `ticket_key_rotation`: how long one ticket key issues tickets; tickets stay
    /// valid for up to twice this (the previous key still decrypts).
    public var ticketKeyRotation: ConfigDuration = .hours(1)
    /// `allow_world_readable_keys`: accept key files that group or others may read.
    public var allowWorldReadableKeys = false

    public init() {}
}

/// The values `client_auth` accepts.
public enum ClientAuthMode: String, Sendable, Equatable, CaseIterable {
    /// A certificate issued by `client_ca` is required; clients without one are refused.
    case require
    /// A certificate is asked for; a client may send none, but one it sends must verify.
    case optional
    /// No certificate is asked for.
    case none
}

extension ListenerSecurity {
    /// `FILE` is readable by group or others: the cause the loader reports, with the remedy.
    static func looseKeyCause(path: String, mode: UInt32) -> String {
        let octal = String(mode & 0o7777, radix: 8)
        return "\(path) is readable by group or others (mode 0\(octal)); "
            + "run `chmod 600 \(path)` or set allow_world_readable_keys = true"
    }
}
