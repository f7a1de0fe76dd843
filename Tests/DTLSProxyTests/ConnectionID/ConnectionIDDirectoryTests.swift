import Testing

@testable import DTLSProxy

@Suite("Connection ID directory")
struct ConnectionIDDirectoryTests {
    @Test(arguments: [4, 8, 16])
    func issuedIDsStartWithTheNodeAndAreUniqueUntilReleased(length: Int) {
        let directory = ConnectionIDDirectory()
        var seen = Set<[UInt8]>()
        for _ in 0..<2000 {
            let cid = directory.issue(length: length, nodeID: 0xA7)
            #expect(cid.count == length)
            #expect(cid[0] == 0xA7)
            #expect(seen.insert(cid).inserted)
        }
        #expect(directory.count == 2000)
        // Reserved but not bound: nothing to route to yet.
        #expect(directory.owner(of: seen.first!) == nil)
        for cid in seen { directory.release(cid) }
        #expect(directory.count == 0)
    }

    @Test func theRandomPartVaries() {
        let directory = ConnectionIDDirectory()
        let ids = (0..<64).map { _ in directory.issue(length: 8, nodeID: 0) }
        // 56 random bits per ID: every byte position after the first takes many values.
        for position in 1..<8 {
            #expect(Set(ids.map { $0[position] }).count > 16)
        }
    }
}
