import Testing

@testable import DTLSProxy

@Suite("Allow-lists: allow_cn, allow_dns, allow_uri")
struct ClientIdentityPolicyTests {
    let dev1 = CertificateIdentity(commonName: "dev1")
    let sensor = CertificateIdentity(
        commonName: "sensor 7", dnsNames: ["s7.Example.org"], uris: ["spiffe://example.org/sensor/7"])

    @Test func emptyListsAdmitEveryVerifiedClient() {
        let policy = ClientIdentityPolicy()
        #expect(policy.admitsEveryVerifiedClient)
        #expect(policy.evaluate(dev1) == .admitted(rule: nil))
        #expect(policy.evaluate(CertificateIdentity()) == .admitted(rule: nil))
    }

    @Test func commonNameIsExactAndCaseSensitive() {
        let policy = ClientIdentityPolicy(allowCN: ["dev1", "dev2"])
        #expect(policy.evaluate(dev1) == .admitted(rule: "allow_cn \"dev1\""))
        #expect(policy.evaluate(CertificateIdentity(commonName: "DEV1")) == .refused(rules: ["allow_cn"]))
        #expect(policy.evaluate(CertificateIdentity(commonName: "dev10")) == .refused(rules: ["allow_cn"]))
        #expect(policy.evaluate(CertificateIdentity()) == .refused(rules: ["allow_cn"]))
    }

    @Test func dnsNamesIgnoreCaseAndWildcardsCoverOneLabel() {
        let policy = ClientIdentityPolicy(allowDNS: ["*.example.org"])
        #expect(policy.evaluate(sensor) == .admitted(rule: "allow_dns \"*.example.org\""))
        #expect(!ClientIdentityPolicy.dnsEntry("*.example.org", matches: "a.b.example.org"))
        #expect(!ClientIdentityPolicy.dnsEntry("*.example.org", matches: "example.org"))
        #expect(!ClientIdentityPolicy.dnsEntry("*.example.org", matches: ".example.org"))
        #expect(!ClientIdentityPolicy.dnsEntry("*.example.org", matches: "*.example.org.evil"))
        #expect(ClientIdentityPolicy.dnsEntry("*.example.org", matches: "*.example.org"))
        #expect(ClientIdentityPolicy.dnsEntry("S7.example.ORG", matches: "s7.example.org"))
        #expect(!ClientIdentityPolicy.dnsEntry("s7.example.org", matches: "x.s7.example.org"))
        // The CN is never read as a DNS name.
        #expect(policy.evaluate(CertificateIdentity(commonName: "a.example.org")) == .refused(rules: ["allow_dns"]))
    }

    @Test func urisMatchExactlyOrUnderAPath() {
        #expect(
            ClientIdentityPolicy.uriEntry("spiffe://example.org/sensor/7", matches: "spiffe://example.org/sensor/7"))
        #expect(
            !ClientIdentityPolicy.uriEntry("spiffe://example.org/sensor/7", matches: "spiffe://example.org/sensor/70"))
        #expect(
            ClientIdentityPolicy.uriEntry("spiffe://example.org/sensor/*", matches: "spiffe://example.org/sensor/7"))
        #expect(
            ClientIdentityPolicy.uriEntry("spiffe://example.org/sensor/*", matches: "spiffe://example.org/sensor/a/b"))
        #expect(
            !ClientIdentityPolicy.uriEntry("spiffe://example.org/sensor/*", matches: "spiffe://example.org/sensor/"))
        #expect(
            !ClientIdentityPolicy.uriEntry("spiffe://example.org/sensor/*", matches: "spiffe://example.org/sensors/1"))
    }

    @Test func anyListMayAdmitAndARefusalNamesEveryList() {
        let policy = ClientIdentityPolicy(allowCN: ["dev1"], allowURI: ["spiffe://example.org/sensor/7"])
        #expect(policy.activeRules == ["allow_cn", "allow_uri"])
        #expect(policy.evaluate(dev1) == .admitted(rule: "allow_cn \"dev1\""))
        #expect(policy.evaluate(sensor) == .admitted(rule: "allow_uri \"spiffe://example.org/sensor/7\""))
        #expect(
            policy.evaluate(CertificateIdentity(commonName: "dev9", uris: ["spiffe://example.org/other"]))
                == .refused(rules: ["allow_cn", "allow_uri"]))
    }

    @Test func entriesAreValidated() {
        #expect(ClientIdentityPolicy.problem(cn: "dev 1") == nil)
        #expect(ClientIdentityPolicy.problem(cn: "") == "empty entry")
        #expect(ClientIdentityPolicy.problem(cn: "a\nb")?.contains("control character") == true)
        #expect(ClientIdentityPolicy.problem(dns: "s7.example.org") == nil)
        #expect(ClientIdentityPolicy.problem(dns: "*.example.org") == nil)
        #expect(ClientIdentityPolicy.problem(dns: "a.*.example.org")?.contains("not a DNS name") == true)
        #expect(ClientIdentityPolicy.problem(dns: "a..b")?.contains("not a DNS name") == true)
        #expect(ClientIdentityPolicy.problem(dns: "-a.b")?.contains("not a DNS name") == true)
        #expect(ClientIdentityPolicy.problem(dns: "a b")?.contains("not a DNS name") == true)
        #expect(ClientIdentityPolicy.problem(uri: "spiffe://example.org/x") == nil)
        #expect(ClientIdentityPolicy.problem(uri: "spiffe://example.org/x/*") == nil)
        #expect(ClientIdentityPolicy.problem(uri: "urn:dev:7") == nil)
        #expect(ClientIdentityPolicy.problem(uri: "example.org/x")?.contains("not an absolute URI") == true)
        #expect(ClientIdentityPolicy.problem(uri: "1a:x")?.contains("not an absolute URI") == true)
        #expect(ClientIdentityPolicy.problem(uri: "spiffe://a/b c")?.contains("space") == true)
        #expect(ClientIdentityPolicy.problem(uri: "spiffe://a/*/b")?.contains("final \"/*\"") == true)
    }

    @Test func displayNamePrefersTheURIThenTheCN() {
        #expect(sensor.displayName == "spiffe://example.org/sensor/7")
        #expect(dev1.displayName == "dev1")
        #expect(CertificateIdentity(dnsNames: ["a.b"]).displayName == "a.b")
        #expect(CertificateIdentity().displayName == nil)
        #expect(sensor.summary == "cn=\"sensor 7\" dns=[s7.Example.org] uri=[spiffe://example.org/sensor/7]")
    }

    @Test func peerTextIsQuotedInLogLines() {
        #expect(LogValue.quote("dev1") == "dev1")
        #expect(LogValue.quote("a b") == "\"a b\"")
        #expect(LogValue.quote("x reason=idle") == "\"x reason=idle\"")
        #expect(LogValue.quote("q\"\\") == "\"q\\\"\\\\\"")
        #expect(LogValue.quote("line\nbreak") == "\"line\\x0abreak\"")
        #expect(LogValue.quote("") == "\"\"")
        #expect(LogValue.quoted("peer did not return a certificate") == "\"peer did not return a certificate\"")
        #expect(LogValue.quoted("cn=\"a b\"") == "\"cn=\\\"a b\\\"\"")
    }
}
