/// The numbers the wire protocol is built on (protocol/SPEC.md, "Sync protocol").
public enum WireLimits {
    /// The protocol versions this build speaks: 1, and 2, which exchanges directory records
    /// by trust, sending only those the peer keeps and lacks (SUMMARY, HAVE).
    public static let versions: ClosedRange<UInt64> = 1...2
    /// The largest frame payload accepted, in bytes (16 MiB).
    public static let maximumFrame = 16 << 20
    /// The largest inflated message accepted, in bytes (32 MiB).
    public static let maximumMessage = 32 << 20
    /// The most inflated bytes accepted from a peer in one session (8 GiB).
    public static let maximumSessionInflated: UInt64 = 8 << 30
    /// Entries per batch, at most.
    public static let batchEntries = 512
    /// Raw bytes of entries per batch, at most (a single larger entry travels alone).
    public static let batchBytes = 1 << 20
    /// Batches sent before waiting for an acknowledgement.
    public static let window = 4
    /// Directory records in one DIRECTORY message, at most.
    public static let directoryRecords = 100_000
    /// The zlib level of the payload stream: 7 (named in its header), with its search tuned
    /// (``deflateTuning``).
    public static let compressionLevel: Int32 = 7
    /// How hard the payload stream's deflate searches for matches (zlib's `deflateTune`):
    /// lazy matching up to 64, chains of at most 48, cut to a quarter once a match of 32 is
    /// found. On 100,000 initiatives' bundle stream (18.7 MB of messages, 41 messages) it
    /// gives 3.087 MB in 0.144 s of CPU, where level 7 gives 3.096 MB in 0.230 s and level 6
    /// 3.248 MB in 0.162 s (more bytes than the target allows): a sync's sender spends that
    /// time on the cores the receiver's applying needs.
    public static let deflateTuning = DeflateTuning(goodLength: 32, lazyMatch: 64, niceLength: 128, maxChain: 48)

    /// zlib's `deflateTune` parameters.
    public struct DeflateTuning: Sendable {
        public let goodLength: Int32
        public let lazyMatch: Int32
        public let niceLength: Int32
        public let maxChain: Int32
    }
}
