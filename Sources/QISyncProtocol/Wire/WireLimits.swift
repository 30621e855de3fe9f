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
    /// The zlib level of the payload stream: 9, the smallest output (on 100,000 initiatives
    /// 6.5% smaller than level 6, for about half as much again of the sender's time).
    public static let compressionLevel: Int32 = 9
}
