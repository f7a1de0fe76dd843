import TOMLKit

/// What `[[listener]]` and `[[connector]]` entries have in common: a name and
/// an address to listen on, each unique among the entries of its kind.
protocol ConfiguredSection {
    var index: Int { get }
    var name: String { get }
    var listen: EndpointAddress { get }
    func keyPath(_ key: String) -> String
}

/// The session keys a listener and a connector both have, with the same
/// meaning, limits and defaults.
protocol SessionKeys {
    var idleTimeout: ConfigDuration { get set }
    var handshakeTimeout: ConfigDuration { get set }
    var mtu: Int { get set }
    var maxSessions: Int { get set }
}

extension ListenerConfiguration: ConfiguredSection, SessionKeys {}
extension ConnectorConfiguration: ConfiguredSection, SessionKeys {}

extension ConfigurationLoader {
    /// Parses every table of an array of tables (`[[listener]]`, `[[connector]]`)
    /// with `parse`, refusing an element that is not a table, and a name or a
    /// `listen` address that an earlier entry of the same kind already has.
    static func parseSections<Section: ConfiguredSection>(
        _ elements: [TOMLValueConvertible], named kind: String, context: Context,
        parse: (Table, Int) throws(ConfigurationError) -> Section
    ) throws(ConfigurationError) -> [Section] {
        var sections: [Section] = []
        for (index, element) in elements.enumerated() {
            guard let table = element.table else {
                throw context.error("\(kind)[\(index)]", "expected a table, found \(found(element))")
            }
            let section = try parse(Table(table, prefix: "\(kind)[\(index)].", context: context), index)
            if let other = sections.first(where: { $0.name == section.name }) {
                throw context.error(
                    section.keyPath("name"), "duplicate name \"\(section.name)\" (also \(kind)[\(other.index)])")
            }
            if let other = sections.first(where: { $0.listen == section.listen }) {
                throw context.error(
                    section.keyPath("listen"), "\(section.listen) is also the address of \(kind)[\(other.index)]")
            }
            sections.append(section)
        }
        return sections
    }

    /// `idle_timeout`, `handshake_timeout`, `mtu` and `max_sessions`, where given.
    static func parseSessionKeys(_ table: Table, into section: inout some SessionKeys) throws(ConfigurationError) {
        section.idleTimeout = try table.duration("idle_timeout", allowZero: false) ?? section.idleTimeout
        section.handshakeTimeout =
            try table.duration("handshake_timeout", allowZero: false) ?? section.handshakeTimeout
        section.mtu = try table.int("mtu", in: 256...65507) ?? section.mtu
        section.maxSessions = try table.int("max_sessions", in: 1...10_000_000) ?? section.maxSessions
    }
}
