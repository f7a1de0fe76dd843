import Testing

@testable import DTLSProxy

@Suite("PSK file")
struct PSKFileTests {
    let path = "/etc/dtls-proxy/psk.txt"

    func reason(_ contents: String) -> String? {
        do {
            _ = try PSKTable.parse(contents: contents, path: path)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func parsesIdentitiesCommentsAndBlankLines() throws {
        let table = try PSKTable.parse(
            contents: """
                # lab sensors

                dev1:00112233445566778899aabbccddeeff
                  dev2 : ABCDEF01\t
                urn:dev:3:0a
                """, path: path)
        #expect(table.count == 3)
        #expect(
            table["dev1"] == [
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff,
            ])
        #expect(table["dev2"] == [0xab, 0xcd, 0xef, 0x01])
        #expect(table["urn:dev:3"] == [0x0a])
        #expect(table["nobody"] == nil)
        #expect(table.identities == ["dev1", "dev2", "urn:dev:3"])
    }

    @Test func acceptsWindowsLineEndings() throws {
        let table = try PSKTable.parse(contents: "# c\r\na:01\r\n\r\nb:0203\r\n", path: path)
        #expect(table.entries == ["a": [1], "b": [2, 3]])
        #expect(reason("a:01\r\na:02\r\n") == "\(path) line 2: duplicate identity \"a\"")
    }

    @Test func duplicateIdentityNamesItsLine() {
        #expect(reason("dev1:00\n# again\ndev1:01\n") == "\(path) line 3: duplicate identity \"dev1\"")
    }

    @Test(
        "bad lines name their line number",
        arguments: [
            ("a:01\nno colon here\n", "line 2: expected identity:hexkey"),
            (":0102\n", "line 1: empty identity"),
            ("   :0102\n", "line 1: empty identity"),
            ("a:\n", "line 1: empty key (a key is at least 1 byte)"),
            ("a:0g\n", "line 1: invalid hex digit \"g\" in key"),
            ("a:0x01\n", "line 1: invalid hex digit \"x\" in key"),
            ("a:01 # note\n", "line 1: invalid hex digit \" \" in key"),
            ("\n\na:012\n", "line 3: odd number of hex digits in key (3)"),
            ("a\u{1}b:01\n", "line 1: identity contains a control character"),
        ])
    func badLine(contents: String, expected: String) {
        #expect(reason(contents) == "\(path) \(expected)")
    }

    @Test func keyLengthLimits() throws {
        let longest = String(repeating: "ab", count: 256)
        #expect(try PSKTable.parse(contents: "a:\(longest)", path: path)["a"]?.count == 256)
        #expect(reason("a:\(longest)ab") == "\(path) line 1: key is 257 bytes; the most is 256")
        let identity = String(repeating: "i", count: 257)
        #expect(reason("\(identity):01") == "\(path) line 1: identity longer than 256 bytes")
    }

    @Test func fileWithoutIdentitiesIsAnError() {
        #expect(reason("") == "\(path): no identities (expected lines \"identity:hexkey\")")
        #expect(reason("# only a comment\n\n") == "\(path): no identities (expected lines \"identity:hexkey\")")
    }

    @Test func descriptionNeverShowsKeys() throws {
        let table = try PSKTable.parse(contents: "dev1:deadbeef\ndev2:cafe", path: path)
        #expect(table.description == "PSKTable(2 identities)")
        #expect(!String(reflecting: table).contains("222"))
        #expect(PSKTable(entries: ["x": [1]]).description == "PSKTable(1 identity)")
    }

    @Test func loadReportsMissingFilesAndBadEncoding() throws {
        let folder = try ConfigTestFolder()
        let missing = folder.path + "/absent.txt"
        #expect(throws: PSKFileError(cause: "file not found: \(missing)")) { try PSKTable.load(path: missing) }
        #expect(throws: PSKFileError(cause: "cannot read \(folder.path): Is a directory")) {
            try PSKTable.load(path: folder.path)
        }
        let latin1 = try folder.write("latin1.txt", bytes: Array("caf".utf8) + [0xE9] + Array(":01\n".utf8))
        #expect(throws: PSKFileError(path: latin1, line: nil, reason: "not valid UTF-8 text")) {
            try PSKTable.load(path: latin1)
        }
        let good = try folder.write("psk.txt", "dev1:0102\n")
        #expect(try PSKTable.load(path: good) == PSKTable(entries: ["dev1": [1, 2]]))
    }
}
