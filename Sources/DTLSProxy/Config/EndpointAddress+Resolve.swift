import NIOCore

extension EndpointAddress {
    /// The socket address, a name resolved through the system resolver;
    /// `owner` (`listener "coaps"`) and `key` name it when that fails.
    func resolved(for owner: String, key: String) throws -> SocketAddress {
        do {
            return try SocketAddress.makeAddressResolvingHost(host, port: port)
        } catch {
            throw StartupError(description: "\(owner): cannot resolve \(key) \(self): \(error)")
        }
    }
}
