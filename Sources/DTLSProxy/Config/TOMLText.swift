import CTOML
import Foundation
import TOMLKit

/// Reads a TOML string value without TOMLKit's `string` accessor, which copies
/// the text with `strdup` and never frees the copy: every string key read on
/// every reload would stay on the heap (about a hundred bytes a route).
///
/// The node is reached through the value's stored pointer, which TOMLKit keeps
/// internal; `Mirror` reads it without depending on the type's layout. Should
/// a later TOMLKit rename it, the accessor it offers is used instead, so the
/// loader stays correct and only the leak comes back.
enum TOMLText {
    static func string(_ value: TOMLValueConvertible) -> String? {
        guard value.type == .string else { return nil }
        guard let node = nodePointer(of: value) else { return value.string }
        guard let copy = nodeAsString(node) else { return nil }
        defer { free(UnsafeMutableRawPointer(mutating: copy)) }
        return String(cString: copy)
    }

    private static func nodePointer(of value: TOMLValueConvertible) -> OpaquePointer? {
        Mirror(reflecting: value.tomlValue).children.first { $0.label == "tomlValuePointer" }?.value as? OpaquePointer
    }
}
