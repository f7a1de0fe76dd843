extension ProxyConfiguration {
    /// Every file this configuration was read from or names, as absolute paths,
    /// without duplicates, in a stable order: the configuration file, the cookie
    /// secret, then each listener's certificate, key, CA bundle, PSK file and
    /// ticket key and its routes' certificates and keys, then each connector's
    /// CA bundle, certificate, key and PSK file.
    ///
    /// `reload_on_change` watches exactly these; a key that names a file must
    /// be added here, or a change of that file goes unnoticed (a unit test sets
    /// every such key and checks that each path is listed).
    public var namedFiles: [String] {
        var paths: [String?] = [sourcePath, daemon.cookieSecretFile]
        for listener in listeners {
            paths += [
                listener.certificate, listener.privateKey, listener.clientCA, listener.pskFile,
                listener.security.ticketKeyFile,
            ]
            for route in listener.routes {
                paths += [route.certificate, route.privateKey]
            }
        }
        for connector in connectors {
            paths += [connector.serverCA, connector.certificate, connector.privateKey, connector.pskFile]
        }
        paths += [cluster?.secretFile, cluster?.peersFile]
        var seen = Set<String>()
        return paths.compactMap { $0 }.filter { seen.insert($0).inserted }
    }
}
