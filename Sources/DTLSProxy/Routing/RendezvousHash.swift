/// Rendezvous (highest random weight) hashing: every member gets a score for
/// a key, and the key belongs to the member with the highest score.
///
/// Unlike `key mod n`, removing a member moves only the keys it held (each
/// to its own second choice) and adding one takes keys only for itself. The
/// hash is FNV-1a with a 64-bit finaliser, fixed rather than Swift's seeded
/// `Hasher`, so that every process and every restart places a client on the
/// same backend.
public enum RendezvousHash {
    /// The score of `member` for `key`.
    public static func score(key: [UInt8], member: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in member { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        hash = (hash ^ 0xFF) &* 0x0000_0100_0000_01b3  // separates member from key
        for byte in key { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3 }
        // FNV-1a alone mixes the last bytes poorly; the splitmix64 finaliser spreads them over all bits.
        hash ^= hash >> 30
        hash = hash &* 0xbf58_476d_1ce4_e5b9
        hash ^= hash >> 27
        hash = hash &* 0x94d0_49bb_1331_11eb
        hash ^= hash >> 31
        return hash
    }

    /// Member indices from the best to the worst choice for `key`.
    public static func ranking(key: [UInt8], members: [[UInt8]]) -> [Int] {
        let scores = members.map { score(key: key, member: $0) }
        return members.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
    }
}
