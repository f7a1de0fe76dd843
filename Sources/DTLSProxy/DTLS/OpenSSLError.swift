import COpenSSL

/// A failed OpenSSL call together with every reason string OpenSSL queued for it.
///
/// OpenSSL reports errors through a per-thread queue. Anything left on that
/// queue is blamed on the next call that fails, which on an event loop is
/// often another peer's session. So every failing call is followed by
/// `OpenSSLError.drain()`, which empties the queue and keeps the reasons.
public struct OpenSSLError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The OpenSSL function or step that failed, e.g. `SSL_CTX_use_PrivateKey_file`.
    public var operation: String
    /// The reason strings taken off the error queue, oldest first.
    public var reasons: [String]

    public init(operation: String, reasons: [String]) {
        self.operation = operation
        self.reasons = reasons
    }

    /// Builds an error for `operation` from whatever is on the queue now, emptying it.
    public static func fromQueue(_ operation: String) -> OpenSSLError {
        OpenSSLError(operation: operation, reasons: drain())
    }

    /// Empties this thread's OpenSSL error queue and returns its entries as readable strings.
    @discardableResult
    public static func drain() -> [String] {
        var reasons: [String] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            if let reason = ERR_reason_error_string(code) {
                reasons.append(String(cString: reason))
            } else {
                var buffer = [CChar](repeating: 0, count: 256)
                ERR_error_string_n(code, &buffer, buffer.count)
                reasons.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
            }
        }
        return reasons
    }

    /// The reasons joined for a log line, or `unknown error` when OpenSSL queued none.
    public var reasonText: String {
        reasons.isEmpty ? "unknown error" : reasons.joined(separator: "; ")
    }

    public var description: String { "\(operation): \(reasonText)" }
}
