import Testing

@testable import DTLSProxy

@Suite("Credential paths")
struct CredentialPathTests {
    @Test(
        "credential forms resolve in CREDENTIALS_DIRECTORY",
        arguments: [
            "credential:server.key", "$CREDENTIALS_DIRECTORY/server.key", "${CREDENTIALS_DIRECTORY}/server.key",
        ])
    func credentialForms(text: String) throws {
        let path = try CredentialPath.resolve(
            text, relativeTo: "/etc/dtls-proxy", credentialsDirectory: "/run/credentials/dtls-proxyd.service"
        ).get()
        #expect(path == "/run/credentials/dtls-proxyd.service/server.key")
        #expect(CredentialPath.isCredential(text))
    }

    @Test("other paths are relative to the configuration's folder")
    func plainPaths() throws {
        #expect(
            try CredentialPath.resolve("server.key", relativeTo: "/etc/dtls-proxy", credentialsDirectory: "/run/c")
                .get() == "/etc/dtls-proxy/server.key")
        #expect(
            try CredentialPath.resolve("/k/server.key", relativeTo: "/etc/dtls-proxy", credentialsDirectory: nil).get()
                == "/k/server.key")
        #expect(!CredentialPath.isCredential("server.key"))
    }

    @Test("a credential without CREDENTIALS_DIRECTORY, or a bad name, is an error that says why")
    func failures() {
        guard
            case .failure(let unset) = CredentialPath.resolve(
                "credential:server.key", relativeTo: "/etc", credentialsDirectory: nil)
        else {
            Issue.record("resolved without CREDENTIALS_DIRECTORY")
            return
        }
        #expect(unset.description.contains("CREDENTIALS_DIRECTORY is not set"))
        #expect(unset.description.contains("LoadCredential=server.key:"))
        for bad in ["credential:", "credential:a/b", "credential:..", "$CREDENTIALS_DIRECTORY/"] {
            guard
                case .failure(let error) = CredentialPath.resolve(
                    bad, relativeTo: "/etc", credentialsDirectory: "/run/c")
            else {
                Issue.record("\(bad) resolved")
                continue
            }
            #expect(error.description.contains("does not name a credential"), "\(bad): \(error)")
        }
    }
}
