/// Why an OpenSSL step failed: the peer's fatal alert or OpenSSL's queued
/// reason strings, drained from the error queue when the step failed.
public struct DTLSFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// What a session's close line reports as `detail`.
    public let reason: String
    /// The peer's certificate failed verification (a connector's server, against `server_ca`).
    public let verification: Bool

    public init(_ reason: String, verification: Bool = false) {
        self.reason = reason
        self.verification = verification
    }

    public var description: String { reason }
}

/// The outcome of one handshake step, the same for a listener's server side and a connector's client side.
public enum HandshakeProgress: Equatable, Sendable {
    /// Waiting for the peer's next flight (or a retransmission timer).
    case inProgress
    case complete
    case failed(DTLSFailure)
    /// The client authenticated but no allow-list admits it, or no route
    /// takes it; an access_denied alert is queued in place of the server's
    /// last flight. `rules` are what refused, `detail` what the client presented.
    case refused(rules: [String], detail: String)
}

/// The outcome of an OpenSSL step that yields nothing but success (a write, a retransmission, starting a handshake).
public typealias DTLSStepResult = Result<Void, DTLSFailure>

extension Result where Success == Void, Failure == DTLSFailure {
    /// The step succeeded.
    static var done: DTLSStepResult { .success(()) }

    /// Whether the step succeeded.
    var succeeded: Bool { failure == nil }

    /// The failure, or nil when the step succeeded.
    var failure: DTLSFailure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
