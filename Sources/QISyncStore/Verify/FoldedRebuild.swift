import Crypto
import Foundation
import QISyncCore

/// `verify`'s rebuild of the tables from the logs without a database: the digests
/// (``DigestSum``) of the rows, heads and conflicts that applying the steps handed to it, in
/// their order, to empty tables gives — what ``ScratchRebuild`` builds through the
/// ``Materializer`` and then reads back, worked out instead a row at a time.
///
/// A row's state depends only on the writes to that row (its cells' heads, values and
/// conflicts, the supersessions waiting for a change not yet applied), and on whether a
/// change a write supersedes was handed on before it, which the order of the logs and of
/// their entries tells. So each row write is put, as it comes, into one of a number of
/// partition files by its row's key (appending: a few hundred bytes a write); a write that
/// supersedes nothing carries the digests its row and head would have were it the row's only
/// write, worked out from the change at hand. Each partition is then read back whole (two at a
/// time, on two threads), its writes grouped by row in the order they came without decoding
/// them: a row written once takes those digests, and every other row is decoded and folded by
/// the materializer's rules (``MultiValueRegister``). Memory is two partitions' writes (those
/// of about 8,000 entries each), however large the replica; the partitions go beside the
/// replica, as the scratch database does, each removed once read.
///
/// What the materializer would do with a write this does not model (a table or column the
/// schema does not know, a log handed on twice) makes it give no digests: `verify` then
/// rebuilds in the scratch database, whose answer stands. So does any difference from the
/// replica's tables: the scratch rebuild names the rows that differ.
enum FoldedRebuild {
    /// How it partitions the row writes.
    struct Tuning: Sendable {
        /// About how many entries' row writes a partition holds (the synthetic trust's entries
        /// write 2.6 rows each: some 21,000 row writes a partition).
        var entriesPerPartition = 8_192
        /// At most this many partition files (open at once).
        var maximumPartitions = 256
        /// Bytes of a partition's writes kept in memory before they are appended to its file.
        var bufferBytes = 32 << 10
        /// Whether it folds at all: without, it gives no digests and the scratch rebuild
        /// always answers (tests of the scratch rebuild).
        var folds = true
    }

    /// A pipeline folding the steps handed to it; its digests are empty when it could not
    /// fold them (see above), or could not write or read its partitions (it never fails:
    /// the scratch rebuild answers instead). `entries` is about how many steps will come.
    static func pipeline(schema: ReplicatedSchema, directory: URL, entries: Int, tuning: Tuning = Tuning()) -> RebuildPipeline {
        let partitions = max(1, min(tuning.maximumPartitions, entries / max(1, tuning.entriesPerPartition)))
        return RebuildPipeline { next in
            var spill = Spill(directory: directory, count: partitions, bufferBytes: tuning.bufferBytes)
            defer { spill.remove() }
            var logs = HandedLogs()
            let rows = RowDigests(schema: schema)
            var scratch = DigestSum()
            var foldable = tuning.folds
            while let chunk = next() {
                // Once it cannot fold, it takes the rest of the steps without looking at them.
                guard foldable else { continue }
                do {
                    steps: for step in chunk {
                        guard let position = logs.hand(step.entry) else { foldable = false; break }
                        guard step.materialises else { continue }
                        let writes = step.change.rows
                        for row in writes {
                            guard let table = schema.table(id: row.table) else { foldable = false; break steps }
                            let keys = StoreSchema.keyValues(row.key, of: table)
                            let key = Self.rowKey(table: row.table, keys: keys), hash = Self.hash(key)
                            var record = ByteWriter(capacity: 160 + (writes.count == 1 ? step.entry.body.count : 256))
                            record.write(varint: UInt64(position.log))
                            record.write(varint: position.seq)
                            record.write(zigzag: step.id)
                            record.write(uint64: step.entry.hlc.rawValue)
                            record.write(uint64: hash)
                            record.write(lengthPrefixed: key)
                            // Most rows are written once, superseding nothing: their digests, worked
                            // out now from the change at hand, are all the fold needs of them.
                            if row.cells.allSatisfy({ $0.supersedes.isEmpty }) {
                                record.write(byte: 1)
                                let (table, heads) = rows.single(row, keys: keys, of: table, change: step.id, hlc: step.entry.hlc, scratch: &scratch)
                                table.withUnsafeBytes { record.write(raw: $0) }
                                heads.withUnsafeBytes { record.write(raw: $0) }
                            } else {
                                record.write(byte: 0)
                            }
                            // A change of one row is its own body (redacted or not); others are cut into rows.
                            record.write(lengthPrefixed: writes.count == 1 ? step.entry.body : Change(rows: [row]).encoded())
                            try spill.append(record.bytes, to: Int(hash % UInt64(partitions)))
                        }
                    }
                } catch {
                    foldable = false
                }
            }
            guard foldable, let sources = try? spill.finish() else { return [:] }
            // The partitions are folded on two threads (this one and another), each its own
            // share, and their sums added.
            let logsHanded = logs
            let shares = [0, 1].map { share in
                { @Sendable () -> [String: [UInt64]]? in
                    var folding = Folding(schema: schema, logs: logsHanded)
                    for partition in stride(from: share, to: sources.count, by: 2) {
                        guard let bytes = try? sources[partition].read(), (try? folding.fold(bytes)) == true else { return nil }
                    }
                    return folding.digests
                }
            }
            let other = BackgroundWork(shares[1])
            let mine = shares[0]()
            // Joined either way: its partitions' files go when this returns.
            let theirs = other.result()
            guard let mine, case .success(let theirs?) = theirs else { return [:] }
            return mine.merging(theirs) { DigestSum.adding($0, $1) }
        }
    }

    /// The bytes that name a row as the tables do: its table, then its key columns' values
    /// (``StoreSchema/keyValues(_:of:)``: a set member's value is its text as SQLite keeps it).
    static func rowKey(table: UInt16, keys: [Value]) -> [UInt8] {
        var bytes = withUnsafeBytes(of: table.littleEndian, Array.init)
        for key in keys {
            switch key {
            case .blob(let blob): bytes += blob
            case .text(let text): bytes += text.utf8
            default: break
            }
        }
        return bytes
    }

    /// FNV-1a: a row key's partition, the same in every run.
    static func hash(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x0100_0000_01b3 }
        return hash
    }

    /// The logs handed on, in the order they came, and which of their entries: a supersession
    /// names a change that was applied when its entry came at or before the write's.
    struct HandedLogs {
        struct Log {
            let id: LogID
            var last: UInt64 = 0
            /// Numbers below `last` whose entries were not handed on (missing, or unreadable).
            var gaps: [ClosedRange<UInt64>] = []
        }
        private(set) var logs: [Log] = []
        private var index: [LogID: Int] = [:]

        /// Notes an entry handed on: where it stands (its log's place, its number); nil when it
        /// does not come after the entries before it (a log handed on twice, out of order).
        mutating func hand(_ entry: LogEntry) -> (log: Int, seq: UInt64)? {
            let id = LogID(origin: entry.origin, scope: entry.scope)
            if logs.last?.id != id {
                guard index[id] == nil else { return nil }
                index[id] = logs.count
                logs.append(Log(id: id))
            }
            let place = logs.count - 1
            guard entry.seq > logs[place].last else { return nil }
            if entry.seq > logs[place].last + 1 { logs[place].gaps.append((logs[place].last + 1)...(entry.seq - 1)) }
            logs[place].last = entry.seq
            return (place, entry.seq)
        }

        /// Whether `ref`'s entry was handed on at or before the entry at `position`.
        func isApplied(_ ref: VersionRef, at position: (log: Int, seq: UInt64)) -> Bool {
            guard let place = index[LogID(origin: ref.origin, scope: ref.scope)] else { return false }
            let log = logs[place]
            guard ref.seq >= 1, ref.seq <= log.last, !log.gaps.contains(where: { $0.contains(ref.seq) }) else { return false }
            return (place, ref.seq) <= position
        }
    }

    /// The partitions' files, each written through a buffer of its own.
    private struct Spill {
        let directory: URL
        let bufferBytes: Int
        var buffers: [[UInt8]]
        var files: [FileHandle?]

        init(directory: URL, count: Int, bufferBytes: Int) {
            self.directory = directory
            self.bufferBytes = bufferBytes
            buffers = Array(repeating: [], count: count)
            files = Array(repeating: nil, count: count)
        }

        private func url(_ partition: Int) -> URL { directory.appendingPathComponent("\(partition)") }

        mutating func append(_ record: [UInt8], to partition: Int) throws {
            buffers[partition] += record
            if buffers[partition].count >= bufferBytes { try flush(partition) }
        }

        private mutating func flush(_ partition: Int) throws {
            if files[partition] == nil {
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                guard FileManager.default.createFile(atPath: url(partition).path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
                    throw StoreError("cannot write verify's scratch file \(url(partition).path)")
                }
                files[partition] = try FileHandle(forWritingTo: url(partition))
            }
            try files[partition]!.write(contentsOf: buffers[partition])
            buffers[partition].removeAll(keepingCapacity: true)
        }

        /// Every partition's records, once all are appended: in memory, or in its file.
        mutating func finish() throws -> [Source] {
            var sources: [Source] = []
            for partition in buffers.indices {
                if files[partition] == nil {
                    sources.append(Source(bytes: buffers[partition], file: nil))
                } else {
                    try flush(partition)
                    try files[partition]!.close()
                    files[partition] = nil
                    sources.append(Source(bytes: [], file: url(partition)))
                }
                buffers[partition] = []
            }
            return sources
        }

        /// A partition's records, in the order they were appended.
        struct Source: Sendable {
            let bytes: [UInt8]
            let file: URL?

            /// The records; a partition's file is removed once read.
            func read() throws -> [UInt8] {
                guard let file else { return bytes }
                defer { try? FileManager.default.removeItem(at: file) }
                return [UInt8](try Data(contentsOf: file))
            }
        }

        func remove() {
            for file in files { try? file?.close() }
            try? FileManager.default.removeItem(at: directory)
        }
    }

    /// One row write read back from a partition.
    private struct Write {
        let log: Int
        let seq: UInt64
        let id: Int64
        let hlc: UInt64
        let row: RowWrite
    }

    /// A row's name in a partition, read where it lies: its key's bytes and their hash.
    private struct GroupKey: Hashable {
        let hash: UInt64
        let key: ArraySlice<UInt8>

        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
        static func == (a: GroupKey, b: GroupKey) -> Bool { a.hash == b.hash && a.key.elementsEqual(b.key) }
    }

    /// A row write as it lies in a partition.
    private struct Record {
        let log: Int
        let seq: UInt64
        let id: Int64
        let hlc: UInt64
        let key: Range<Int>
        /// Where its two digests are, when it supersedes nothing (else nil).
        let digests: Int?
        let body: Range<Int>
    }

    /// How rows, their heads and their conflicts are written into the digests, as the
    /// digests of the tables read them (``CanonicalState/digestQueries(schema:)``).
    struct RowDigests {
        let schema: ReplicatedSchema
        /// Each table's place among the sums, its name's bytes, its columns' places.
        private(set) var slots: [UInt16: Int] = [:]
        private var tags: [UInt16: [UInt8]] = [:]
        private(set) var columnIndexes: [UInt16: [UInt16: Int]] = [:]

        init(schema: ReplicatedSchema) {
            self.schema = schema
            for (slot, table) in schema.tables.enumerated() {
                slots[table.id] = slot
                tags[table.id] = Array(table.name.utf8)
                columnIndexes[table.id] = Dictionary(uniqueKeysWithValues: table.columns.enumerated().map { ($1.id, $0) })
            }
        }

        /// A new row written once: every cell written has that write as its only head.
        func newRow(_ cells: [CellWrite], of table: TableSpec) -> (live: Value, values: [Value], mask: Int64) {
            let columnIndex = columnIndexes[table.id]!
            var live: Value = .integer(0)
            var values = [Value](repeating: .null, count: table.columns.count)
            var mask: Int64 = 0
            for cell in cells {
                mask |= 1 << Int64(cell.column)
                if cell.column == 0 {
                    live = .integer(cell.value.integer ?? 0)
                } else if let index = columnIndex[cell.column] {
                    values[index] = cell.value
                }
            }
            return (live, values, mask)
        }

        /// The digests of a row written once by `change`, superseding nothing: its table row's
        /// and its head's (`keys`, its key columns' values; `scratch` is where the rows are put together).
        func single(_ row: RowWrite, keys: [Value], of table: TableSpec, change: Int64, hlc: HLC, scratch: inout DigestSum) -> (table: SHA256Digest, head: SHA256Digest) {
            let new = newRow(row.cells, of: table)
            appendRow(to: &scratch, table: table, keys: keys, live: new.live, updated: Int64(bitPattern: hlc.rawValue), values: new.values)
            let tableDigest = scratch.rowDigest()
            appendHead(to: &scratch, table: table, keys: keys, change: change, mask: new.mask)
            return (tableDigest, scratch.rowDigest())
        }

        private func start(_ sum: inout DigestSum, _ table: TableSpec, _ keys: [Value]) {
            sum.startRow(tags[table.id]!)
            for key in keys { sum.append(key) }
        }

        func appendRow(to sum: inout DigestSum, table: TableSpec, keys: [Value], live: Value, updated: Int64, values: [Value]) {
            start(&sum, table, keys)
            sum.append(Self.stored(live, as: .integer))
            sum.append(integer: updated)
            for (column, value) in zip(table.columns, values) { sum.append(Self.stored(value, as: column.type)) }
        }

        func appendHead(to sum: inout DigestSum, table: TableSpec, keys: [Value], change: Int64, mask: Int64) {
            start(&sum, table, keys)
            sum.append(integer: change)
            sum.append(integer: mask)
        }

        func appendConflict(to sum: inout DigestSum, table: TableSpec, keys: [Value], column: UInt16) {
            start(&sum, table, keys)
            sum.append(integer: Int64(column))
        }

        /// A value as SQLite keeps it in a column of this type: an integer in a REAL column
        /// becomes real. (Values of other types than their column's are refused before they
        /// are stored; were one held, the digests would differ and the scratch rebuild, which
        /// stores them as SQLite does, would answer.)
        static func stored(_ value: Value, as type: ColumnType) -> Value {
            if case .integer(let i) = value, case .real = type { return .real(Double(i)) }
            return value
        }
    }

    /// The digests of the rows folded so far.
    private struct Folding {
        let schema: ReplicatedSchema
        let logs: HandedLogs
        private let rows: RowDigests
        /// Each table's sum, then the heads' and the conflicts'.
        private var sums: [DigestSum]
        private var names: [String]
        private let heads: Int
        private let conflicts: Int

        init(schema: ReplicatedSchema, logs: HandedLogs) {
            self.schema = schema
            self.logs = logs
            rows = RowDigests(schema: schema)
            names = schema.tables.map(\.name) + ["heads", "conflicts"]
            sums = Array(repeating: DigestSum(), count: names.count)
            heads = schema.tables.count
            conflicts = heads + 1
        }

        var digests: [String: [UInt64]] { Dictionary(uniqueKeysWithValues: zip(names, sums.map(\.value))) }

        /// Folds one partition's rows into the digests; false when a write cannot be folded.
        mutating func fold(_ bytes: [UInt8]) throws -> Bool {
            var reader = ByteReader(bytes)
            var records: [Record] = []
            var groups: [[Int]] = []
            var groupOf: [GroupKey: Int] = [:]
            // A record is some two hundred bytes: room for them all at once.
            records.reserveCapacity(bytes.count / 192)
            groups.reserveCapacity(bytes.count / 192)
            groupOf.reserveCapacity(bytes.count / 192)
            while !reader.isAtEnd {
                let log = Int(try reader.readVarint()), seq = try reader.readVarint()
                let id = try reader.readZigzag(), hlc = try reader.readUInt64()
                let hash = try reader.readUInt64()
                let keyLength = try reader.readVarint(limit: 2048, "a row key")
                let keyRange = reader.offset..<reader.offset + keyLength
                try reader.skip(keyLength)
                let key = GroupKey(hash: hash, key: bytes[keyRange])
                var digests: Int?
                if try reader.readByte() == 1 {
                    digests = reader.offset
                    try reader.skip(64)
                }
                let bodyLength = try reader.readVarint(limit: UInt64(Change.maximumBodyBytes) << 1, "a row write")
                let body = reader.offset..<reader.offset + bodyLength
                try reader.skip(bodyLength)
                if let group = groupOf[key] {
                    groups[group].append(records.count)
                } else {
                    groupOf[key] = groups.count
                    groups.append([records.count])
                }
                records.append(Record(log: log, seq: seq, id: id, hlc: hlc, key: keyRange, digests: digests, body: body))
            }
            for group in groups {
                let first = records[group[0]]
                if group.count == 1, let digests = first.digests, first.key.count >= 2 {
                    // Written once, superseding nothing: the digests worked out as it came.
                    let table = UInt16(bytes[first.key.lowerBound]) | UInt16(bytes[first.key.lowerBound + 1]) << 8
                    guard let slot = rows.slots[table] else { return false }
                    sums[slot].add(digest: bytes[digests..<digests + 32])
                    sums[heads].add(digest: bytes[digests + 32..<digests + 64])
                    continue
                }
                var writes: [Write] = []
                for index in group {
                    let record = records[index]
                    guard let row = try Change(decodingBody: Array(bytes[record.body])).rows.first else { return false }
                    writes.append(Write(log: record.log, seq: record.seq, id: record.id, hlc: record.hlc, row: row))
                }
                guard try fold(writes) else { return false }
            }
            return true
        }

        /// A supersession waiting for its change, as `pending_supersede` keeps it.
        private struct Pending: Hashable {
            let ref: VersionRef
            let key: [UInt8]
            let column: UInt16
        }

        /// Folds the writes to one row, in the order they came, as the materializer applies
        /// them (``Materializer/materialise(_:change:entry:)``), and adds its row, heads and
        /// conflicts to the digests.
        private mutating func fold(_ writes: [Write]) throws -> Bool {
            guard let first = writes.first, let table = schema.table(id: first.row.table),
                  let columnIndex = rows.columnIndexes[table.id] else { return false }
            var live: Value = .integer(0)
            var values = [Value](repeating: .null, count: table.columns.count)
            var updated: Int64 = 0
            var versions: [Int64: Int64] = [:]
            var conflicts: Set<UInt16> = []
            var pending: Set<Pending> = []
            var stamps: [Int64: Stamp] = [:]
            var written: [Int64: [RowWrite]] = [:]
            var applied: [VersionRef: Int64] = [:]

            func value(writtenBy change: Int64, key: [UInt8], column: UInt16) -> Value {
                for row in written[change] ?? [] where row.key == key {
                    if let cell = row.cells.first(where: { $0.column == column }) { return cell.value }
                }
                return .null
            }
            func winner(_ heads: Set<Int64>) -> Int64? {
                var best: (Int64, Stamp)?
                for head in heads {
                    let stamp = stamps[head]!
                    if best == nil || best!.1 < stamp { best = (head, stamp) }
                }
                return best?.0
            }

            for write in writes {
                let log = logs.logs[write.log].id
                let ref = VersionRef(origin: log.origin, scope: log.scope, seq: write.seq)
                let hlc = Int64(bitPattern: write.hlc)
                applied[ref] = write.id
                written[write.id, default: []].append(write.row)
                stamps[write.id] = Stamp(hlc: HLC(rawValue: write.hlc), origin: log.origin)
                let cells = write.row.cells
                // A row exists once a write has touched it (it then has a version).
                if versions.isEmpty, cells.allSatisfy({ $0.supersedes.isEmpty }) {
                    // A new row whose write supersedes nothing: every cell written has it as its only head.
                    let row = rows.newRow(cells, of: table)
                    (live, values) = (row.live, row.values)
                    versions[write.id] = row.mask
                    updated = hlc
                    continue
                }
                if versions[write.id] != nil { continue }
                var next = versions
                var own: Int64 = 0
                for cell in cells {
                    let bit: Int64 = 1 << Int64(cell.column)
                    let before = Set(next.compactMap { $0.value & bit != 0 ? $0.key : nil })
                    let previous = winner(before)
                    let isSuperseded = pending.remove(Pending(ref: ref, key: write.row.key, column: cell.column)) != nil
                    var superseded = Set<Int64>()
                    for named in cell.supersedes {
                        if logs.isApplied(named, at: (write.log, write.seq)) {
                            // Applied: a head only if it wrote this row (then it is in `applied`).
                            superseded.insert(applied[named] ?? -1)
                        } else {
                            pending.insert(Pending(ref: named, key: write.row.key, column: cell.column))
                        }
                    }
                    let after = MultiValueRegister.apply(heads: before, write: write.id, supersedes: superseded, isSuperseded: isSuperseded)
                    for version in before.subtracting(after) { next[version]! &= ~bit }
                    if after.contains(write.id) { own |= bit }
                    let now = winner(after)
                    if now != previous || now == write.id {
                        let shown: Value = switch now {
                        case nil: cell.column == 0 ? .integer(0) : .null
                        case write.id: cell.value
                        case let other?: value(writtenBy: other, key: write.row.key, column: cell.column)
                        }
                        if cell.column == 0 {
                            live = shown
                        } else if let index = columnIndex[cell.column] {
                            values[index] = shown
                        } else {
                            return false
                        }
                    }
                    if after.count > 1, MultiValueRegister.isConflict(after.map { head in
                        head == write.id ? cell.value : value(writtenBy: head, key: write.row.key, column: cell.column)
                    }) {
                        conflicts.insert(cell.column)
                    } else if before.count > 1 {
                        conflicts.remove(cell.column)
                    }
                }
                next[write.id] = own
                versions = next
                updated = max(updated, hlc)
            }

            let keys = StoreSchema.keyValues(first.row.key, of: table)
            rows.appendRow(to: &sums[rows.slots[table.id]!], table: table, keys: keys, live: live, updated: updated, values: values)
            sums[rows.slots[table.id]!].endRow()
            for (change, mask) in versions {
                rows.appendHead(to: &sums[heads], table: table, keys: keys, change: change, mask: mask)
                sums[heads].endRow()
            }
            for column in conflicts {
                rows.appendConflict(to: &sums[self.conflicts], table: table, keys: keys, column: column)
                sums[self.conflicts].endRow()
            }
            return true
        }
    }
}
