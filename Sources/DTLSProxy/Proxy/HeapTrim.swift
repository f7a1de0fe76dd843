import COpenSSL

/// Returns free heap pages to the system after idle sessions released their buffers.
///
/// OpenSSL's record buffers (about 18 KiB a session) come from the C heap.
/// glibc keeps pages freed in the middle of the heap resident until
/// `malloc_trim` gives them back, so without it the memory idle sessions
/// release stays in the daemon's RSS as holes that only new sessions reuse.
/// Trimming walks the heap, so it runs only after a sweep that released at
/// least ``threshold`` buffers (or parked as many backend sockets, whose
/// channels free a few KiB each): never on the per-datagram path, rarely in a
/// steady state, and once after a burst of sessions went quiet.
enum HeapTrim {
    /// Buffers one sweep must release before a trim is worth its cost (≈ 1 MiB).
    static let threshold = 64

    static func afterReleasing(buffers: Int) {
        guard buffers >= threshold else { return }
        _ = dp_malloc_trim()
    }
}
