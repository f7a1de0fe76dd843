/// The daemon's whole configuration, decoded from TOML and validated.
///
/// Every value here has already passed validation: paths are absolute
/// (relative ones were resolved against the configuration file's folder),
/// durations are positive, ranges hold. ``ConfigurationLoader`` has checked
/// that every file named here exists and is readable, parsed each PSK file
/// (``ListenerConfiguration/pskTable``) and checked the cookie secret's
/// length; the contents of certificates and keys are checked when the DTLS
/// context for a listener is built (`--check-config` does both).
public struct ProxyConfiguration: Sendable, Equatable {
    /// The absolute path of the file this configuration came from; errors name it.
    public var sourcePath: String
    public var daemon: DaemonConfiguration
    public var listeners: [ListenerConfiguration]
    /// The `[[connector]]` blocks (client mode); see `Connector/ConnectorConfiguration.swift`.
    public var connectors: [ConnectorConfiguration]
    /// The `[cluster]` table, when this instance shares connection IDs with others.
    public var cluster: ClusterConfiguration? = nil

    public init(
        sourcePath: String, daemon: DaemonConfiguration, listeners: [ListenerConfiguration],
        connectors: [ConnectorConfiguration] = []
    ) {
        self.sourcePath = sourcePath
        self.daemon = daemon
        self.listeners = listeners
        self.connectors = connectors
    }
}

/// The `[daemon]` table: process-wide settings.
public struct DaemonConfiguration: Sendable, Equatable {
    /// `log_level`: trace | debug | info | notice | warning | error.
    public var logLevel: LogLevelSetting = .info
    /// `workers`: number of event loops; 0 means one per core.
    public var workers: Int = 0
    /// `node_id`: the first byte of every connection ID this instance issues (0 to 255),
    /// so that instances behind one balancer never issue the same CID.
    public var nodeID = 0
    /// `cookie_secret_file`: absolute path, or nil for a random secret per start.
    public var cookieSecretFile: String? = nil
    /// What the loader read from `cookie_secret_file` (read and checked once, there).
    public var cookieSecret: [UInt8]? = nil
    /// `metrics_listen`: optional Prometheus endpoint.
    public var metricsListen: EndpointAddress? = nil
    /// `health_listen`: optional address of the health endpoints (`/healthz`, `/readyz`)
    /// on their own; the metrics endpoint answers them too (``HTTPEndpointPlan``).
    public var healthListen: EndpointAddress? = nil
    /// `shutdown_timeout`: how long a graceful stop may wait for peers.
    public var shutdownTimeout: ConfigDuration = .seconds(5)
    /// `reload_on_change`: reload, as SIGHUP does, when a file the configuration
    /// names (or the configuration file itself) changes (`Daemon/ConfigFileWatcher.swift`).
    public var reloadOnChange = false
    /// `drain_timeout`: after SIGTERM, how long `/readyz` answers 503 while sessions and
    /// new handshakes are still served, before the graceful stop; zero: stop at once.
    public var drainTimeout: ConfigDuration = .zero
    /// `busy_poll`: how long an event loop spins, watching for the answers to
    /// what it just sent, before it sleeps; zero (the default): never. Trades
    /// CPU for latency where wake-ups are slow (`Sessions/BusyPoll.swift`).
    public var busyPoll: ConfigDuration = .zero

    /// The longest `busy_poll` accepted: beyond it a loop would hold back its other sockets and timers too long.
    public static let busyPollLimit = ConfigDuration.milliseconds(10)

    public init() {}
}

/// The levels `log_level` accepts, in increasing severity.
public enum LogLevelSetting: String, Sendable, Equatable, CaseIterable {
    case trace, debug, info, notice, warning, error
}

/// A DTLS version as `min_version` and `max_version` write it.
public enum DTLSVersionSetting: String, Sendable, Equatable, Comparable, CaseIterable {
    case dtls1_0 = "1.0"
    case dtls1_2 = "1.2"
    /// Accepted only when the linked OpenSSL implements DTLS 1.3 (3.0 does not).
    case dtls1_3 = "1.3"

    public static func < (lhs: Self, rhs: Self) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// One `[[listener]]` block: a public DTLS port in front of plaintext backends.
public struct ListenerConfiguration: Sendable, Equatable {
    /// Position in the file, for error messages (`listener[0]`).
    public var index: Int
    /// `name`: unique; also the systemd FileDescriptorName. Defaults to `listener<index>`.
    public var name: String
    /// `listen`: where the listener binds.
    public var listen: EndpointAddress
    /// `backend` or `backends` (with `balance` and `proxy_protocol`): the
    /// default route, taken by clients no `[[listener.route]]` matches; nil
    /// when the listener has routes only, and such clients are refused.
    public var defaultTarget: BackendTarget?
    /// `[[listener.route]]`: routes by SNI, PSK identity or client certificate, in file order.
    public var routes: [RouteConfiguration] = []
    /// `backend_backoff`: how long a backend that answered with ICMP port
    /// unreachable gets no new sessions (and loses its sessions to the rest of its pool).
    public var backendBackoff: ConfigDuration = .seconds(10)
    /// `proxy_protocol_tlvs`: PROXY v2 headers carry the SNI, the verified
    /// client identity, the PSK identity and the DTLS version and cipher as TLVs.
    public var proxyProtocolTLVs = true
    /// `certificate`: absolute path to a PEM chain, leaf first.
    public var certificate: String? = nil
    /// `private_key`: absolute path to a PEM private key.
    public var privateKey: String? = nil
    /// `client_ca`: absolute path to a PEM CA bundle; when set, clients must present a certificate it issued.
    public var clientCA: String? = nil
    /// `psk_file`: absolute path to a file of `identity:hexkey` lines.
    public var pskFile: String? = nil
    /// The keys read from `psk_file` by the loader; nil when there is no `psk_file`.
    public var pskTable: PSKTable? = nil
    /// `min_version`.
    public var minVersion: DTLSVersionSetting = .dtls1_2
    /// `idle_timeout`: a session is closed after this long without a datagram either way.
    public var idleTimeout: ConfigDuration = .seconds(120)
    /// `handshake_timeout`: a handshake not finished by then is abandoned.
    public var handshakeTimeout: ConfigDuration = .seconds(15)
    /// `mtu`: the largest datagram (UDP payload) the daemon sends to a client.
    public var mtu: Int = 1400
    /// `max_sessions`: sessions (handshaking or established) this listener holds at once.
    public var maxSessions: Int = 100_000
    /// `max_handshakes_in_progress`: sessions still handshaking at once; past it ClientHellos are dropped.
    public var maxHandshakesInProgress: Int = 10_000
    /// `handshake_rate_per_source`: cookie-verified handshakes a second one source address may start
    /// (token bucket, burst of the same size, kept per event loop); 0 = unlimited.
    public var handshakeRatePerSource: Int = 50
    /// `max_handshakes_per_source`: handshakes in progress one source address may hold at once (per event loop),
    /// so that one host stalling half-open handshakes cannot take the whole `max_handshakes_in_progress`.
    public var maxHandshakesPerSource: Int = 64
    /// `max_handshakes_per_prefix`: the same for all addresses of one network prefix (see `source_prefix_ipv4`).
    public var maxHandshakesPerPrefix: Int = 256
    /// `source_prefix_ipv4`: the IPv4 prefix length that `max_handshakes_per_prefix` groups sources by.
    public var sourcePrefixIPv4: Int = 24
    /// `source_prefix_ipv6`: the IPv6 prefix length that `max_handshakes_per_prefix` groups sources by.
    public var sourcePrefixIPv6: Int = 56
    /// `socket_receive_buffer`: SO_RCVBUF of the listener sockets in bytes; 0 = the system default.
    /// A deep queue absorbs bursts and floods instead of dropping real clients' datagrams.
    public var socketReceiveBuffer: Int = 4 << 20
    /// `socket_send_buffer`: SO_SNDBUF of the listener sockets in bytes; 0 = the system default.
    public var socketSendBuffer: Int = 1 << 20
    /// `backend_receive_buffer`: SO_RCVBUF of each session's backend socket in bytes;
    /// 0 = the system default (net.core.rmem_default). It bounds how large a burst of
    /// replies one session's socket holds while the loop is busy; the kernel drops the
    /// rest (counted as `dropped_kernel_backend`). A limit, not an allocation: memory
    /// is taken only while datagrams wait, so it may be large even with many sessions.
    public var backendReceiveBuffer: Int = 0
    /// `max_undecryptable_datagrams`: close a session after this many datagrams in a row
    /// that OpenSSL discarded (failed authentication or replays); 0 = never. Off by default:
    /// anyone who can spoof the client's address could otherwise end its session.
    public var maxUndecryptableDatagrams: Int = 0
    /// `connection_id`: answer a client that offers the `connection_id` extension
    /// (RFC 9146) with a CID, so its session survives a change of its address.
    /// Clients that do not offer it are served as without.
    public var connectionID = true
    /// `connection_id_length`: bytes of every CID the listener issues (4 to 16):
    /// `[daemon] node_id`, then random bytes.
    public var connectionIDLength = 8
    /// Client-certificate checks, PSK hint, protocol policy, resumption (`ListenerSecurity.swift`).
    public var security = ListenerSecurity()

    /// The key path used in error messages, e.g. `listener[0].private_key`.
    public func keyPath(_ key: String) -> String { "listener[\(index)].\(key)" }

    public init(index: Int, name: String, listen: EndpointAddress, backend: EndpointAddress?) {
        self.index = index
        self.name = name
        self.listen = listen
        self.defaultTarget = backend.map { BackendTarget(backends: [$0]) }
    }
}

/// A `host:port` pair as written in the file: `127.0.0.1:5683`, `[::1]:5684`, `localhost:5683`.
///
/// The host is kept as written; it is resolved when the daemon binds or connects,
/// so that `--check-config` does not depend on the resolver.
public struct EndpointAddress: Sendable, Equatable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// `host:port`, with IPv6 literals in brackets.
    public var description: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}
