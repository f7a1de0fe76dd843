/// A listener's connection ID policy: off with `connection_id = false`, else
/// CIDs of `connection_id_length` bytes from the instance's
/// ``ConnectionIDDirectory``, `node_id` first, so the router finds each one's
/// session on whichever event loop it lives.
extension ConnectionIDPolicy {
    static func listener(_ listener: ListenerConfiguration, nodeID: Int) throws -> ConnectionIDPolicy {
        guard listener.connectionID else { return .off }
        let length = listener.connectionIDLength
        let node = UInt8(clamping: nodeID)
        return try .on(length: length) { ConnectionIDDirectory.shared.issue(length: length, nodeID: node) }
    }
}
