import Foundation
import GRDB
import QISyncCore

/// Work on a second connection, on a thread of its own, in the same snapshot as a read
/// transaction of this one.
///
/// This SQLite has no `SQLITE_ENABLE_SNAPSHOT`, so a snapshot cannot be handed from one
/// connection to another; but two read transactions that both begin while no write can commit
/// see the same one. So a third connection takes the write lock (`BEGIN IMMEDIATE`), this
/// connection makes its first read and the twin its own, and the lock is let go: writers wait
/// those few milliseconds, never the work. When the lock cannot be had within `lockTimeout`
/// (a long write elsewhere) or the file cannot be opened for writing, there is no twin and the
/// caller does the work itself.
enum SnapshotTwin {
    /// Starts `work` on a twin of `db`'s read transaction, which must have read nothing yet
    /// (its snapshot is taken here). Nil when no twin could be begun.
    static func begin<Value>(
        path: String, alongside db: Database, lockTimeout: TimeInterval = 2,
        _ work: @escaping @Sendable (Database) throws -> Value
    ) throws -> BackgroundWork<Value>? {
        // A plain connection: it changes nothing in the file (not even its journal mode, as a
        // replica's connection would in a backup being checked), and one opened on a file it
        // may not write takes no lock, so there is no twin.
        var configuration = Configuration()
        configuration.busyMode = .timeout(lockTimeout)
        configuration.allowsUnsafeTransactions = true  // the lock outlives one access
        guard let lockHolder = try? DatabaseQueue(path: path, configuration: configuration),
              (try? lockHolder.inDatabase({ try $0.execute(sql: "BEGIN IMMEDIATE") })) != nil
        else { return nil }
        defer { try? lockHolder.inDatabase { try $0.execute(sql: "ROLLBACK") } }
        // No write can commit now: this connection's first read takes the snapshot, and the
        // twin's takes the same one.
        try db.execute(sql: "SELECT 1 FROM sqlite_schema LIMIT 1")
        let begun = DispatchSemaphore(value: 0)
        let twin = BackgroundWork {
            var signalled = false
            defer { if !signalled { begun.signal() } }
            let connection = try DatabaseQueue(path: path, configuration: Replica.configuration(readonly: true))
            return try connection.read { twinDB in
                try twinDB.execute(sql: "SELECT 1 FROM sqlite_schema LIMIT 1")
                signalled = true
                begun.signal()
                return try work(twinDB)
            }
        }
        begun.wait()
        return twin
    }
}
