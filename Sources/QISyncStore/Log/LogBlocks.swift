import CompressNIO
import Foundation
import GRDB
import NIOCore
import QISyncCore

/// Log bodies packed by the block, to keep the replica file small.
///
/// The bodies of 128 consecutive entries of one log (entries 1–128, 129–256, …) are deflated
/// together into one row of `log_block` once all of them are held and their rows are
/// consecutive in `log` (appended one after another: a script, a sync's or a bundle's run).
/// A packed entry keeps its row in `log` — number, clock, hash, signature — with an empty
/// `body` and the body's length in `packed`; readers take the body from its block
/// (``LogBodies``). One body hardly compresses; 128 of a log deflate to about a fifth, and the
/// bodies were half the file.
///
/// A batch being applied that holds a whole block has it deflated beforehand, on the thread
/// that checks the batch (``prepare(_:)``), and its entries are written packed. Otherwise a
/// block is packed as its last entry is appended, in the same transaction: its 128 rows,
/// consecutive in `log`, are deleted and written again without their bodies, so the pages they
/// filled are freed and used again (rows shrunk in place would leave their pages mostly empty).
/// A block whose rows are not consecutive (its log's entries arrived between others') stays as
/// it is, and so does one whose bodies come to more than ``maximumBytes``.
///
/// `data` is the bodies' total length encoded (varint), then a zlib stream of each body with
/// its length (varint) before it, in order.
enum LogBlocks {
    /// Entries in a block.
    static let entries: UInt64 = 128
    /// The most body bytes a block holds: a larger one stays unpacked, so reading one body never
    /// means inflating more than this.
    static let maximumBytes = 1 << 20

    /// What to do about a damaged block: the logs are the record, so `repair` cannot mend one.
    static let remedy = "restore a backup ('restore FILE') or make a new replica and sync it from a peer"

    /// The first entry of the block that holds entry `seq`.
    static func first(ofBlockHolding seq: UInt64) -> UInt64 { (seq - 1) / entries * entries + 1 }

    /// The whole blocks among consecutive entries of one log (a run), deflated, by first entry:
    /// made ready on the thread that checks a batch, so the one that applies it only writes them.
    static func prepare(_ run: [LogEntry]) throws -> [UInt64: [UInt8]] {
        guard let start = run.first?.seq, let end = run.last?.seq, end - start + 1 >= entries else { return [:] }
        var first = first(ofBlockHolding: start)
        if first < start { first += entries }
        var blocks: [UInt64: [UInt8]] = [:]
        var compressor: ZlibCompressor?
        while first + entries - 1 <= end {
            let bodies = run[Int(first - start)..<Int(first - start + entries)].map(\.body)
            if bodies.reduce(0, { $0 + $1.count }) <= maximumBytes {
                if compressor == nil { compressor = try ZlibCompressor(algorithm: .zlib, configuration: ZlibConfiguration(compressionLevel: 1)) }
                blocks[first] = try encode(bodies, compressor: compressor!)
            }
            first += entries
        }
        return blocks
    }

    /// Packs the block ending at entry `last` of a log (`last` a multiple of ``entries``) when
    /// its 128 entries are held unpacked in consecutive rows. Returns the bytes of the bodies
    /// packed — the log's running byte count is lowered by them as the rows are deleted, and
    /// the caller counts them again — or nil when the block was left as it is.
    static func pack(_ db: Database, origin: Int64, scope: Int64, last: UInt64, compressor: ZlibCompressor) throws -> Int64? {
        let first = last - entries + 1
        guard let span = try Row.fetchOne(db.cachedStatement(sql: """
            SELECT min(id), max(id), count(*), count(packed), sum(length(body)) FROM log WHERE origin = ? AND scope = ? AND seq BETWEEN ? AND ?
            """), arguments: [origin, scope, Int64(bitPattern: first), Int64(bitPattern: last)]),
              let low = span[0] as Int64?, let high = span[1] as Int64?, high - low == Int64(entries) - 1,
              span[2] as Int64 == Int64(entries), span[3] as Int64 == 0, let bytes = span[4] as Int64?, bytes <= maximumBytes else { return nil }
        // The rows are consecutive and hold only this block: in order of number, their entries'.
        let bodies = try Data.fetchAll(db.cachedStatement(sql: "SELECT body FROM log WHERE id BETWEEN ? AND ? ORDER BY id"), arguments: [low, high])
            .map { Array($0) }
        let data = try encode(bodies, compressor: compressor)
        // The rows are written again without their bodies: copied aside (`log_packing`, empty
        // otherwise), deleted, copied back.
        try db.cachedStatement(sql: """
            INSERT INTO log_packing SELECT id, origin, scope, seq, hlc, hash, sig, length(body) FROM log WHERE id BETWEEN ? AND ?
            """).execute(arguments: [low, high])
        try db.cachedStatement(sql: "DELETE FROM log WHERE id BETWEEN ? AND ?").execute(arguments: [low, high])
        try db.cachedStatement(sql: """
            INSERT INTO log (id, origin, scope, seq, hlc, hash, body, sig, packed)
            SELECT id, origin, scope, seq, hlc, hash, X'', sig, packed FROM log_packing ORDER BY id
            """).execute()
        try db.cachedStatement(sql: "DELETE FROM log_packing").execute()
        try db.cachedStatement(sql: "INSERT INTO log_block (origin, scope, first, data) VALUES (?, ?, ?, ?)")
            .execute(arguments: [origin, scope, Int64(bitPattern: first), Data(data)])
        return bytes
    }

    /// Puts the bodies of a log's entries after `keep` that sit in blocks back where they
    /// were not packed, before those entries are removed: each block holding an entry after
    /// `keep` is removed, and its entries at or before `keep` take their bodies back into
    /// their rows.
    static func unpack(_ db: Database, origin: Int64, scope: Int64, after keep: UInt64) throws {
        let blocks = try Row.fetchAll(db.cachedStatement(sql: """
            SELECT first, data FROM log_block WHERE origin = ? AND scope = ? AND first + ? > ?
            """), arguments: [origin, scope, Int64(entries), Int64(bitPattern: keep)])
        let restore = try db.cachedStatement(sql: "UPDATE log SET body = ?, packed = NULL WHERE origin = ? AND scope = ? AND seq = ?")
        for block in blocks {
            let first = UInt64(bitPattern: block[0] as Int64)
            if first <= keep {
                for (index, body) in try decode(Array(block[1] as Data)).enumerated() where first + UInt64(index) <= keep {
                    try restore.execute(arguments: [Data(body), origin, scope, Int64(bitPattern: first + UInt64(index))])
                }
            }
            try db.cachedStatement(sql: "DELETE FROM log_block WHERE origin = ? AND scope = ? AND first = ?")
                .execute(arguments: [origin, scope, block[0] as Int64])
        }
    }

    /// Replaces the body of one packed entry (a redaction): the block is written again with it.
    static func replace(_ db: Database, origin: Int64, scope: Int64, seq: UInt64, with body: [UInt8]) throws {
        let first = first(ofBlockHolding: seq)
        guard let data = try Data.fetchOne(db.cachedStatement(sql: "SELECT data FROM log_block WHERE origin = ? AND scope = ? AND first = ?"),
                                           arguments: [origin, scope, Int64(bitPattern: first)]) else {
            throw StoreError("the log block holding entry \(seq) is missing: the replica is damaged; \(LogBlocks.remedy)")
        }
        var bodies = try decode(Array(data))
        bodies[Int(seq - first)] = body
        let compressor = try ZlibCompressor(algorithm: .zlib, configuration: ZlibConfiguration(compressionLevel: 1))
        try db.cachedStatement(sql: "UPDATE log_block SET data = ? WHERE origin = ? AND scope = ? AND first = ?")
            .execute(arguments: [Data(try encode(bodies, compressor: compressor)), origin, scope, Int64(bitPattern: first)])
        try db.cachedStatement(sql: "UPDATE log SET packed = ? WHERE origin = ? AND scope = ? AND seq = ?")
            .execute(arguments: [body.count, origin, scope, Int64(bitPattern: seq)])
    }

    static func encode(_ bodies: [[UInt8]], compressor: ZlibCompressor) throws -> [UInt8] {
        var raw = ByteWriter()
        for body in bodies {
            raw.write(varint: UInt64(body.count))
            raw.write(raw: body)
        }
        var header = ByteWriter()
        header.write(varint: UInt64(raw.bytes.count))
        try compressor.reset()
        var input = ByteBuffer(bytes: raw.bytes)
        var output = ByteBuffer()
        output.reserveCapacity(compressor.maxSize(from: input))
        try compressor.deflate(from: &input, to: &output, flush: .finish)
        return header.bytes + output.readableBytesView
    }

    static func decode(_ data: [UInt8], decompressor: ZlibDecompressor? = nil) throws -> [[UInt8]] {
        do {
            var reader = ByteReader(data)
            let size = try reader.readVarint(limit: UInt64(maximumBytes) + 10 * entries, "block size")
            let inflater = try decompressor ?? ZlibDecompressor(algorithm: .zlib)
            try inflater.reset()
            var input = ByteBuffer(bytes: data[reader.offset...])
            var output = ByteBuffer()
            output.reserveCapacity(size)
            try inflater.inflate(from: &input, to: &output)
            guard output.readableBytes == size else { throw DecodingError("it inflates to \(output.readableBytes) bytes, not \(size)") }
            var bodies = ByteReader(Array(output.readableBytesView))
            var result: [[UInt8]] = []
            result.reserveCapacity(Int(entries))
            for _ in 0..<entries { result.append(try bodies.readLengthPrefixed(limit: maximumBytes, "body")) }
            guard bodies.isAtEnd else { throw DecodingError("trailing bytes") }
            return result
        } catch {
            throw StoreError("a log block cannot be read (\(error)): the replica is damaged; \(remedy)")
        }
    }
}

/// Reads entries' bodies wherever they are kept: in their row, or packed in their block
/// (``LogBlocks``), keeping the last few blocks read decoded, so a log read in order inflates
/// each block once. One per reading (not shared between threads).
final class LogBodies {
    private struct BlockKey: Equatable {
        let origin: Int64
        let scope: Int64
        let first: UInt64
    }
    private var decoded: [(key: BlockKey, bodies: [[UInt8]], stored: [UInt8])] = []
    private var decompressor: ZlibDecompressor?

    /// The body of entry `seq` of a log, given what its row holds: `body`, and `packed` (the
    /// body's length when it is in its block, nil when in the row).
    func body(_ db: Database, origin: Int64, scope: Int64, seq: UInt64, stored body: Data, packed: Int64?) throws -> [UInt8] {
        try bodyAndBlock(db, origin: origin, scope: scope, seq: seq, stored: body, packed: packed).body
    }

    /// The body of entry `seq`, and when it is packed, its block as stored (deflated), which
    /// a copy of the log can keep as it is.
    func bodyAndBlock(_ db: Database, origin: Int64, scope: Int64, seq: UInt64, stored body: Data, packed: Int64?) throws -> (body: [UInt8], block: [UInt8]?) {
        guard let packed else { return (Array(body), nil) }
        let key = BlockKey(origin: origin, scope: scope, first: LogBlocks.first(ofBlockHolding: seq))
        let bodies: [[UInt8]], stored: [UInt8]
        if let known = decoded.first(where: { $0.key == key }) {
            (bodies, stored) = (known.bodies, known.stored)
        } else {
            guard let data = try Data.fetchOne(db.cachedStatement(sql: "SELECT data FROM log_block WHERE origin = ? AND scope = ? AND first = ?"),
                                               arguments: [origin, scope, Int64(bitPattern: key.first)]) else {
                throw StoreError("the log block holding entry \(seq) is missing: the replica is damaged; \(LogBlocks.remedy)")
            }
            if decompressor == nil { decompressor = try ZlibDecompressor(algorithm: .zlib) }
            stored = Array(data)
            bodies = try LogBlocks.decode(stored, decompressor: decompressor)
            if decoded.count == 4 { decoded.removeFirst() }
            decoded.append((key, bodies, stored))
        }
        let found = bodies[Int(seq - key.first)]
        guard found.count == packed else {
            throw StoreError("entry \(seq)'s body in its log block is not the length its row records: the replica is damaged; \(LogBlocks.remedy)")
        }
        return (found, stored)
    }
}
