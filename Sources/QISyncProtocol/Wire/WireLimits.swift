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
    /// The zlib level of the payload stream: 7. On 100,000 initiatives' bundle stream (18.6 MB
    /// of messages) level 6 gives 3.21 MB, level 7 3.05 MB, levels 8 and 9 3.02 MB for nearly
    /// twice level 7's time (0.42 s against 0.23 s), which a sync's sender spends on the
    /// machine's cores that the receiver's apply needs.
    public static let compressionLevel: Int32 = 7
}
