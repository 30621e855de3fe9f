import Foundation
import GRDB
import QISyncCore
import QISyncIdentity

extension Replica {
    /// Makes every revocation in force hold for entries already here: a revoked site's entries
    /// past the cut-off its trust recorded (or its whole log, when the entry at the cut-off
    /// differs from the one recorded) leave the log, back to the last signed entry at or before
    /// the cut-off, and the rows they wrote are materialised again from what remains. So a
    /// replica that took such entries before the revocation reached it ends exactly where one
    /// that refused them did. This site's own logs are left alone.
    func enforceRevocations(_ db: Database) throws {
        let directory = try directory(db)
        var removed = Set<Int64>()
        var touched = Set<RowName>()
        for (site, revocation) in directory.revocations where site != identity.origin {
            for scope in Scope.allCases {
                let log = LogID(origin: site, scope: scope)
                guard let held = try logPosition(db, log) else { continue }
                var keep: UInt64
                if let cut = revocation.lastAccepted[scope] {
                    if held.seq < cut.seq { continue }
                    let hashAtCut = try Data.fetchOne(db, sql: """
                        SELECT log.hash FROM log JOIN origin ON origin.id = log.origin WHERE origin.key = ? AND log.scope = ? AND log.seq = ?
                        """, arguments: [Data(site.bytes), Int64(scope.rawValue), Int64(bitPattern: cut.seq)])
                    if hashAtCut.map(Array.init) == cut.hash {
                        if held.seq == cut.seq { continue }
                        keep = cut.seq
                    } else {
                        keep = 0
                    }
                } else {
                    keep = 0
                }
                // A log held here always ends on a signed entry.
                if keep > 0 {
                    keep = UInt64(bitPattern: try Int64.fetchOne(db, sql: """
                        SELECT max(log.seq) FROM log JOIN origin ON origin.id = log.origin
                        WHERE origin.key = ? AND log.scope = ? AND log.seq <= ? AND log.sig IS NOT NULL
                        """, arguments: [Data(site.bytes), Int64(scope.rawValue), Int64(bitPattern: keep)]) ?? 0)
                }
                try truncate(db, log, keepingThrough: keep, removed: &removed, touched: &touched)
            }
            try db.execute(sql: "DELETE FROM pending_entry WHERE origin = ?", arguments: [Data(site.bytes)])
        }
        guard !removed.isEmpty else { return }
        let materializer = try Materializer(db: db, schema: schema)
        try materializer.rebuild(touched, removed: removed)
    }

    /// Removes a log's entries after `keep` and moves its vector back.
    private func truncate(_ db: Database, _ log: LogID, keepingThrough keep: UInt64, removed: inout Set<Int64>, touched: inout Set<RowName>) throws {
        guard let origin = try Int64.fetchOne(db, sql: "SELECT id FROM origin WHERE key = ?", arguments: [Data(log.origin.bytes)]) else { return }
        let rows = try Row.fetchAll(db, sql: "SELECT id, seq, body, packed FROM log WHERE origin = ? AND scope = ? AND seq > ?",
                                    arguments: [origin, Int64(log.scope.rawValue), Int64(bitPattern: keep)])
        guard !rows.isEmpty else { return }
        let bodies = LogBodies()
        for row in rows {
            removed.insert(row[0])
            let body = try bodies.body(db, origin: origin, scope: Int64(log.scope.rawValue), seq: UInt64(bitPattern: row[1]), stored: row[2], packed: row[3])
            if let change = try? Change(decodingBody: body) {
                for write in change.rows { touched.insert(RowName(table: write.table, key: write.key)) }
            }
            try recordRefusal(db, entry: LogEntry(origin: log.origin, scope: log.scope, seq: UInt64(bitPattern: row[1]), previousHash: [],
                                                  hlc: HLC(rawValue: 0), body: [], signature: nil),
                              stored: false, reason: "removed: site \(log.origin.short) was revoked, and this entry comes after the cut-off its trust recorded", source: "revocation")
        }
        // Blocks holding entries that leave go; the entries of such a block that stay take their bodies back.
        try LogBlocks.unpack(db, origin: origin, scope: Int64(log.scope.rawValue), after: keep)
        try db.execute(sql: "DELETE FROM log WHERE origin = ? AND scope = ? AND seq > ?", arguments: [origin, Int64(log.scope.rawValue), Int64(bitPattern: keep)])
        if keep == 0 {
            try db.execute(sql: "DELETE FROM vector WHERE origin = ? AND scope = ?", arguments: [origin, Int64(log.scope.rawValue)])
        } else {
            try db.execute(sql: "UPDATE vector SET seq = ?, hash = (SELECT hash FROM log WHERE origin = ? AND scope = ? AND seq = ?) WHERE origin = ? AND scope = ?",
                           arguments: [Int64(bitPattern: keep), origin, Int64(log.scope.rawValue), Int64(bitPattern: keep), origin, Int64(log.scope.rawValue)])
        }
    }
}
