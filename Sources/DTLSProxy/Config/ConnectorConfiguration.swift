/// One `[[connector]]` block: client mode. Plaintext UDP arrives on a local
/// address; each local peer gets its own DTLS client session to `server`.
///
/// Two daemons, one with a connector and one with a listener, form a DTLS
/// tunnel for a UDP service whose clients speak no DTLS. Like
/// ``ListenerConfiguration``, every value here has passed validation: paths are
/// absolute and readable, the PSK file is parsed and holds `psk_identity`.
public struct ConnectorConfiguration: Sendable, Equatable {
    /// Position in the file, for error messages (`connector[0]`).
    public var index: Int
    /// `name`: unique among connectors; defaults to `connector<index>`.
    public var name: String
    /// `listen`: the local plaintext UDP address.
    public var listen: EndpointAddress
    /// `server`: the DTLS server, `host:port`; the host is resolved when the connector starts.
    public var server: EndpointAddress
    /// `server_ca`: absolute path of the PEM bundle that verifies the server's certificate.
    public var serverCA: String? = nil
    /// The name sent as SNI and checked against the certificate's names: `server_name`,
    /// or the host of `server` when that is a name. Nil when the server is addressed by IP.
    public var serverName: String? = nil
    /// The IP address the certificate must carry (an iPAddress SAN) when `server`
    /// is an IP literal and `server_name` is not given, or `server_name` is an IP literal.
    public var serverIP: String? = nil
    /// `verify_depth`: most intermediate CA certificates between the server's and a CA of `server_ca`.
    public var verifyDepth: Int = 4
    /// `certificate` and `private_key`: absolute paths of the client certificate
    /// chain presented to the server, and of its key.
    public var certificate: String? = nil
    public var privateKey: String? = nil
    /// `psk_identity`: the identity this connector sends; its key comes from
    /// `psk_file` (absolute path of a file of `identity:hexkey` lines, the
    /// listener's format), read into `pskTable`, of which only the entry of
    /// `psk_identity` is used.
    public var pskIdentity: String? = nil
    public var pskFile: String? = nil
    public var pskTable: PSKTable? = nil
    /// The key of `psk_identity`, when the connector uses a PSK.
    var pskKey: [UInt8]? {
        guard let pskIdentity else { return nil }
        return pskTable?[pskIdentity]
    }
    /// `connection_id`: offer the `connection_id` extension (RFC 9146) with a
    /// zero-length CID, so the tunnel survives a change of the connector's address.
    public var connectionID = false
    /// `min_version` / `max_version`.
    public var minVersion: DTLSVersionSetting = .dtls1_2
    public var maxVersion: DTLSVersionSetting = .dtls1_2
    /// `ciphers`: an OpenSSL cipher string; nil uses the built-in list for the credentials given.
    public var ciphers: String? = nil
    /// `groups`: key-exchange groups; nil uses the built-in list.
    public var groups: String? = nil
    /// `idle_timeout`: a session with no datagram either way for this long is closed (close_notify sent).
    public var idleTimeout: ConfigDuration = .seconds(120)
    /// `handshake_timeout`: a handshake not finished by then is abandoned.
    public var handshakeTimeout: ConfigDuration = .seconds(15)
    /// `mtu`: the largest datagram the daemon sends to the server.
    public var mtu: Int = 1400
    /// `max_sessions`: local peers (sessions) the connector serves at once.
    public var maxSessions: Int = 100_000
    /// `allow_world_readable_keys`: accept `private_key` and `psk_file` that group or others may read.
    public var allowWorldReadableKeys = false
    /// `session_tickets`: resume the server's last session (RFC 5077 ticket) for new local peers.
    public var sessionTickets = true

    /// Local datagrams a session holds while its handshake runs; more are dropped and counted.
    public static let pendingLimit = 64

    /// The key path used in error messages, e.g. `connector[0].server_ca`.
    public func keyPath(_ key: String) -> String { "connector[\(index)].\(key)" }

    public init(index: Int, name: String, listen: EndpointAddress, server: EndpointAddress) {
        self.index = index
        self.name = name
        self.listen = listen
        self.server = server
    }
}
