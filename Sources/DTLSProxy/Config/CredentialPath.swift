import Foundation

/// Paths that point into systemd's credentials directory.
///
/// With `LoadCredential=server.key:/etc/dtls-proxy/server.key` systemd copies
/// the key into a private directory, readable by the service's dynamic user
/// only, and names it in `$CREDENTIALS_DIRECTORY`. The key file itself can then
/// stay `root:root 0600`. A configuration names such a file as
/// `credential:server.key` or `$CREDENTIALS_DIRECTORY/server.key`
/// (`${CREDENTIALS_DIRECTORY}/server.key` too).
public enum CredentialPath {
    static let prefix = "credential:"
    static let variables = ["$CREDENTIALS_DIRECTORY", "${CREDENTIALS_DIRECTORY}"]

    /// Whether `text` is written in one of the credential forms.
    public static func isCredential(_ text: String) -> Bool {
        text.hasPrefix(prefix) || variables.contains { text == $0 || text.hasPrefix($0 + "/") }
    }

    /// The absolute path for `text` as written in the configuration: credential
    /// forms resolve in `credentialsDirectory`, other relative paths against `folder`.
    ///
    /// - Returns: the path, or the cause of the failure (for a ``ConfigurationError``).
    public static func resolve(
        _ text: String, relativeTo folder: String,
        credentialsDirectory: String? = ProcessInfo.processInfo.environment["CREDENTIALS_DIRECTORY"]
    ) -> Result<String, CredentialPathError> {
        var name: Substring?
        if text.hasPrefix(prefix) {
            name = text.dropFirst(prefix.count)
        } else if let variable = variables.first(where: { text == $0 || text.hasPrefix($0 + "/") }) {
            name = text.dropFirst(variable.count).drop { $0 == "/" }
        }
        guard let name else {
            return .success(ConfigFileAccess.absolute(text, relativeTo: folder))
        }
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            return .failure(
                CredentialPathError(
                    description:
                        "\"\(text)\" does not name a credential (write credential:NAME, as in LoadCredential=NAME:/path)"
                ))
        }
        guard let directory = credentialsDirectory, !directory.isEmpty else {
            return .failure(
                CredentialPathError(
                    description:
                        "\"\(text)\" names a systemd credential but CREDENTIALS_DIRECTORY is not set (add LoadCredential=\(name):/path to the unit)"
                ))
        }
        return .success(ConfigFileAccess.absolute(String(name), relativeTo: directory))
    }
}

/// Why a credential path could not be resolved.
public struct CredentialPathError: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
}
