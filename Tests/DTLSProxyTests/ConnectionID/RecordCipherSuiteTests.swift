import Testing

@testable import DTLSProxy

@Suite("AEAD suites for CID records")
struct RecordCipherSuiteTests {
    @Test func describesEachAEAD() {
        #expect(RecordCipherSuite.aes128GCM.keyLength == 16 && RecordCipherSuite.aes128GCM.fixedIVLength == 4)
        #expect(RecordCipherSuite.aes128GCM.explicitNonceLength == 8 && RecordCipherSuite.aes128GCM.tagLength == 16)
        #expect(RecordCipherSuite.aes256GCM.keyLength == 32 && RecordCipherSuite.aes256GCM.prfDigestName == "SHA384")
        #expect(RecordCipherSuite.chacha20Poly1305.fixedIVLength == 12)
        #expect(RecordCipherSuite.chacha20Poly1305.explicitNonceLength == 0)
        #expect(RecordCipherSuite.aes128CCM.tagLength == 16 && RecordCipherSuite.aes128CCM8.tagLength == 8)
        #expect(RecordCipherSuite.aes128CCM8.prfDigestName == "SHA256")
        #expect(RecordCipherSuite.aes128CCM8.keyBlockLength == 40 && RecordCipherSuite.aes256GCM.keyBlockLength == 72)
        #expect(RecordCipherSuite.chacha20Poly1305.keyBlockLength == 88)
    }

    @Test(arguments: [
        ("ECDHE-ECDSA-AES128-GCM-SHA256", RecordCipherSuite.aes128GCM),
        ("ECDHE-RSA-AES256-GCM-SHA384", .aes256GCM),
        ("ECDHE-RSA-CHACHA20-POLY1305", .chacha20Poly1305),
        ("ECDHE-ECDSA-AES128-CCM", .aes128CCM),
        ("ECDHE-ECDSA-AES128-CCM8", .aes128CCM8),
        ("PSK-AES128-CCM8", .aes128CCM8),
        ("DHE-PSK-AES128-GCM-SHA256", .aes128GCM),
    ])
    func findsAEADSuitesByOpenSSLName(_ name: String, _ suite: RecordCipherSuite) {
        #expect(RecordCipherSuite(openSSLName: name) == suite)
    }

    /// CBC suites, AES-256-CCM, TLS 1.3 suites and names OpenSSL does not know: no CID with them.
    @Test(arguments: [
        "ECDHE-ECDSA-AES128-SHA256", "PSK-AES128-CBC-SHA", "ECDHE-ECDSA-AES256-CCM8", "ECDHE-ECDSA-AES256-CCM",
        "TLS_AES_128_GCM_SHA256", "NO-SUCH-SUITE", "",
    ])
    func refusesOtherSuites(_ name: String) {
        #expect(RecordCipherSuite(openSSLName: name) == nil)
    }
}
