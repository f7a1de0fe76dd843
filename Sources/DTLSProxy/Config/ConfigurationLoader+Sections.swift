import TOMLKit

/// What `[[listener]]` and `[[connector]]` entries have in common: a name and
/// an address to listen on, each unique among the entries of its kind.
protocol ConfiguredSection {
    var index: Int { get }
    var name: String { get }
    var listen: EndpointAddress { get }
    func keyPath(_ key: String) -> String
}

extension ListenerConfiguration: ConfiguredSection {}
extension ConnectorConfiguration: ConfiguredSection {}

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
}
