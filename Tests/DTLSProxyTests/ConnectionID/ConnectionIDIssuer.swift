import Foundation

@testable import DTLSProxy

/// A CID generator as a daemon would supply one: a node id byte, then a counter, so every CID is unique.
final class ConnectionIDIssuer: @unchecked Sendable {
    // @unchecked: `next` is only touched under `lock`.
    private let lock = NSLock()
    private var next: UInt32 = 1
    let nodeID: UInt8
    let length: Int

    init(nodeID: UInt8 = 0xA7, length: Int = 6) {
        self.nodeID = nodeID
        self.length = length
    }

    func issue() -> [UInt8] {
        let value = lock.withLock {
            defer { next += 1 }
            return next
        }
        let counter = (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * (3 - $0))) }
        return [nodeID] + [UInt8](repeating: 0, count: length - 5) + counter
    }

    /// A listener's policy issuing from this generator.
    var policy: ConnectionIDPolicy {
        get throws { try .on(length: length, generator: { [self] in issue() }) }
    }
}
