import CPlatform
import Foundation

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

    /// Trims when `buffers` (record buffers released, sockets parked and
    /// sessions closed since the last sweep, each of which freed at least a
    /// buffer's worth) reach ``threshold``.
    static func afterReleasing(buffers: Int) {
        guard buffers >= threshold else { return }
        _ = dp_malloc_trim()
    }

    /// Bytes of heap in use (glibc's `mallinfo2`; 0 elsewhere), for leak tests.
    static var bytesInUse: Int { Int(dp_heap_in_use()) }

    /// After a reload: the old configuration's contexts, route tables and the
    /// parsed document were freed in pieces scattered over the heap. A reload is
    /// rare and off the data path, so the walk costs nothing that matters.
    static func afterReload() {
        _ = dp_malloc_trim()
    }

    /// Blocks of this size or more get a mapping of their own (glibc's `M_MMAP_THRESHOLD`).
    static let mappedBlockThreshold = 16 * 1024
    /// At most this many such mappings at a time (`M_MMAP_MAX`); later blocks
    /// come from the heap. Each mapping can be a kernel memory area of its
    /// own, and the kernel allows a process 65 530 by default
    /// (`vm.max_map_count`): with one `init_buf` per session and no bound,
    /// some 60 000 sessions would leave no room for the mappings glibc's
    /// per-thread heaps and everything else need.
    static let mappedBlockLimit = 32 * 1024

    /// Has glibc give every block of ``mappedBlockThreshold`` or more its own
    /// mapping (up to ``mappedBlockLimit`` of them), unless the operator set
    /// `MALLOC_MMAP_THRESHOLD_` (glibc reads it at start).
    ///
    /// The blocks this catches are OpenSSL's per-connection ones: the
    /// handshake buffer `init_buf` (21 848 bytes, kept for the session's life
    /// in DTLS) and the 16 KiB read buffer. Mapped, a freed read buffer goes
    /// back to the system at once instead of leaving a hole in the heap, and
    /// the untouched tail of `init_buf` is never resident. Measured with
    /// `dtls-proxy-bench idle` (release, workers = 2): RSS per idle session
    /// 47.4 → 43.9 KiB at 1 000 sessions, 39.6 → 37.8 KiB at 10 000. The cost
    /// is a `mmap` and `munmap` per such block: a few per handshake, one pair
    /// when an idle session becomes busy again; none per datagram.
    static func mapLargeBlocksSeparately() {
        guard ProcessInfo.processInfo.environment["MALLOC_MMAP_THRESHOLD_"] == nil else { return }
        _ = dp_malloc_set_mmap_threshold(Int32(mappedBlockThreshold), Int32(mappedBlockLimit))
    }
}
