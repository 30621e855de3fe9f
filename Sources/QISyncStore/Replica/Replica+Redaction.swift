import Crypto
import Foundation
import GRDB
import QISyncCore
import QISyncIdentity

extension Replica {
    /// On the hub: redacts every value this replica holds of `columns` of one row (its current
    /// value and every earlier one in its history), in every entry of this trust's sites that
    /// wrote them. Each entry gets a redaction record signed by the trust key; the records spread
    /// like revocations, and every replica that holds the entries replaces their bodies and
    /// rebuilds the rows. Returns the redactions made.
    public func redact(table: UInt16, key: [UInt8], columns: Set<UInt16>, reason: String) throws -> [Redaction] {
        guard let trustKey = try trustKey() else { throw StoreError("only the hub, which holds the trust key, can redact") }
        return try database.write { db in
            let directory = try directory(db)
            let materializer = try Materializer(db: db, schema: schema)
            guard let rid = try materializer.rowID(table: table, key: key) else { throw StoreError("nothing of that record is held here") }
            var issued: [Redaction] = []
            for change in try materializer.versions(table: table, row: rid).versions.keys.sorted() {
                guard let row = try materializer.change(change).rows.first(where: { $0.table == table && $0.key == key }) else { continue }
                let cells = row.cells.filter { cell in
                    guard columns.contains(cell.column), case .text(let text) = cell.value else { return false }
                    return text != Redaction.marker
                }
                guard !cells.isEmpty else { continue }
                let ref = try materializer.ref(of: change)
                let trust = ref.origin == identity.origin ? identity.trustCode : directory.heldTrust(of: ref.origin)
                guard trust == identity.trustCode, let entry = try storedEntry(db, id: change) else { continue }
                let named = Set(cells.map { Redaction.Cell(table: table, key: key, column: $0.column) })
                do {
                    issued.append(try Redaction.issue(entry: entry, cells: named, reason: reason, at: now(), by: trustKey).0)
                } catch let error as IdentityError {
                    throw StoreError(error.message)
                }
            }
            guard !issued.isEmpty else { throw StoreError("nothing to redact: no text of those fields written by this trust's sites is held here") }
            _ = try importDirectory(db, issued.map(\.record))
            return issued
        }
    }

    /// An entry as stored, rebuilt with its previous hash.
    func storedEntry(_ db: Database, id: Int64) throws -> LogEntry? {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT origin.key, log.scope, log.seq, log.hlc, log.body, log.sig, log.origin, log.packed FROM log JOIN origin ON origin.id = log.origin WHERE log.id = ?
            """, arguments: [id]), let scope = Scope(rawValue: UInt8(row[1] as Int64)) else { return nil }
        let seq = UInt64(bitPattern: row[2])
        let previous = seq == 1 ? LogEntry.genesisHash : try Data.fetchOne(db, sql: "SELECT hash FROM log WHERE origin = ? AND scope = ? AND seq = ?",
                                                                             arguments: [row[6] as Int64, row[1] as Int64, Int64(bitPattern: seq - 1)]).map(Array.init) ?? LogEntry.genesisHash
        let body = try LogBodies().body(db, origin: row[6], scope: row[1], seq: seq, stored: row[4], packed: row[7])
        return LogEntry(origin: try OriginID(bytes: Array(row[0] as Data)), scope: scope, seq: seq, previousHash: previous,
                        hlc: HLC(rawValue: UInt64(bitPattern: row[3])), body: body, signature: (row[5] as Data?).map(Array.init))
    }

    /// Makes every redaction in force hold for the entries held here: an entry whose body is
    /// not yet the redacted one takes it (its hash and signature stay), and the rows it wrote
    /// are materialised again, so the text leaves the tables and `history`. A redaction that
    /// does not fit the entry held (it would change more than its cells) is left unapplied.
    func enforceRedactions(_ db: Database) throws {
        let directory = try directory(db)
        guard !directory.redactions.isEmpty else { return }
        var touched = Set<RowName>()
        let bodies = LogBodies()
        for (ref, list) in directory.redactions {
            guard let redaction = list.first,
                  let row = try Row.fetchOne(db, sql: """
                    SELECT log.id, log.body, log.packed, log.origin FROM log JOIN origin ON origin.id = log.origin WHERE origin.key = ? AND log.scope = ? AND log.seq = ?
                    """, arguments: [Data(ref.origin.bytes), Int64(ref.scope.rawValue), Int64(bitPattern: ref.seq)]) else { continue }
            let body = try bodies.body(db, origin: row[3], scope: Int64(ref.scope.rawValue), seq: ref.seq, stored: row[1], packed: row[2])
            guard Array(SHA256.hash(data: body)) != redaction.bodyDigest else { continue }
            guard let held = try storedEntry(db, id: row[0]), let redacted = redaction.redact(held) else {
                try recordAdminEvent(db, kind: "redaction not applied", subject: "\(ref)",
                                     detail: "the redaction of \(ref) does not fit the entry held here")
                continue
            }
            if (row[2] as Int64?) != nil {
                try LogBlocks.replace(db, origin: row[3], scope: Int64(ref.scope.rawValue), seq: ref.seq, with: redacted.body)
            } else {
                try db.execute(sql: "UPDATE log SET body = ? WHERE id = ?", arguments: [Data(redacted.body), row[0] as Int64])
            }
            try db.execute(sql: "UPDATE pending_entry SET entry = ? WHERE origin = ? AND scope = ? AND seq = ?",
                           arguments: [Data(redacted.encoded()), Data(ref.origin.bytes), Int64(ref.scope.rawValue), Int64(bitPattern: ref.seq)])
            for write in try redacted.change().rows { touched.insert(RowName(table: write.table, key: write.key)) }
            try recordAdminEvent(db, kind: "redaction", subject: "\(ref)", detail: "\(redaction.cells.count) values replaced: \(redaction.reason)")
        }
        guard !touched.isEmpty else { return }
        try Materializer(db: db, schema: schema).rebuild(touched, removed: [])
    }

    /// Every redaction in force held here, newest first.
    public func redactions() throws -> [Redaction] {
        try directory().redactions.values.compactMap(\.first).sorted { $0.redactedMilliseconds > $1.redactedMilliseconds }
    }
}
