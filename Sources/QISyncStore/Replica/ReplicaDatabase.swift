import Foundation
import GRDB

/// The replica's one SQLite connection, with write windows.
///
/// Outside a window every write is a transaction of its own, as GRDB's queue makes it.
/// Inside a window (``Replica/writeWindow(_:)``, used by scripts) one transaction spans many
/// writes: each write is a savepoint in it, so a write that fails leaves nothing and the
/// writes before it stand, and the window commits at its end. While a window is open it is
/// the only user of the connection: a sync session or server on another thread waits for it
/// to commit (windows are kept short), so nothing uncommitted is ever read, sent or
/// acknowledged.
final class ReplicaDatabase: @unchecked Sendable {
    let queue: DatabaseQueue
    /// Held by a window for its whole length, and by every access for its own (reentrant, so
    /// the window's own thread passes).
    private let gate = NSRecursiveLock()
    /// Whether a window is open; read and written only with `gate` held.
    private var windowOpen = false
    /// Why the open window could not commit part-way (its writes so far are lost), if it could not.
    private var failedCommit: Error?
    /// Runs inside a window's transaction just before it commits (the replica signs the last
    /// entry of each log the window wrote). Set once, before any window opens.
    var beforeWindowCommit: ((Database) throws -> Void)?
    /// Moves on at the start and at the end of every write through this connection that may
    /// change the log or the version vector (all but those that say they keep the log, such as
    /// what a peer holds); read and written only with `gate` held. With SQLite's `data_version`, which
    /// moves when another connection commits, it tells a reader whether the content can have
    /// changed since a value was worked out from it.
    private var generation: UInt64 = 0
    /// While a read runs in a transaction of its own (committed content, no write of this
    /// connection under way), the generation it reads at; nil otherwise (a read inside a
    /// write or an open window sees changes that may yet be rolled back).
    private(set) var cleanReadGeneration: UInt64?

    init(_ queue: DatabaseQueue) { self.queue = queue }

    /// Whether a write now would be part of an open window (asked from inside a write).
    var isWindowOpen: Bool { gated { windowOpen } }

    private func gated<T>(_ body: () throws -> T) rethrows -> T {
        gate.lock()
        defer { gate.unlock() }
        return try body()
    }

    /// `gated`, for work that may change the content: the generation moves before and after.
    private func changing<T>(_ body: () throws -> T) rethrows -> T {
        try gated {
            generation &+= 1
            defer { generation &+= 1 }
            return try body()
        }
    }

    /// A read, in a transaction of its own (one snapshot) or in the open window.
    ///
    /// Not GRDB's `read`: on a queue it switches `PRAGMA query_only` on and off around each
    /// read, and SQLite expires every prepared statement when a flag pragma changes, so every
    /// cached statement was compiled again after each read (a fifth of a script line's time).
    /// Reads here are the replica's own code; people's SQL (`sql`) runs on a read-only connection of its own.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try gated {
            try queue.inDatabase { db in
                if db.isInsideTransaction { return try body(db) }
                var result: T?
                let outer = cleanReadGeneration
                cleanReadGeneration = generation
                defer { cleanReadGeneration = outer }
                try db.inTransaction(.deferred) {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        }
    }

    /// One write: a transaction, or a savepoint inside an open window. `keepsLog`: the write
    /// touches neither the log nor the vector (a peer's vector, a bundle's expectation), so
    /// what was read of them stays good.
    func write<T>(keepsLog: Bool = false, _ body: (Database) throws -> T) throws -> T {
        try (keepsLog ? gated : changing) {
            guard windowOpen else { return try queue.write(body) }
            return try queue.writeWithoutTransaction { db in
                var result: T?
                try db.inSavepoint {
                    result = try body(db)
                    return .commit
                }
                return result!
            }
        }
    }

    /// A write that decides itself whether to commit: a transaction, or a savepoint inside a window.
    func inTransaction(_ body: (Database) throws -> Database.TransactionCompletion) throws {
        try changing {
            guard windowOpen else { return try queue.inTransaction(nil, body) }
            try queue.writeWithoutTransaction { db in try db.inSavepoint { try body(db) } }
        }
    }

    /// Runs a statement that sets the connection up (a pragma such as `cache_size`), as it
    /// stands: inside an open window or not, changing no content.
    func configure(_ sql: String) throws {
        try gated { try queue.inDatabase { db in try db.execute(sql: sql) } }
    }

    func writeWithoutTransaction<T>(_ body: (Database) throws -> T) throws -> T {
        try changing {
            // A checkpoint or other statement outside a transaction first commits an open window.
            if windowOpen { try commitWindow(reopen: true) }
            return try queue.writeWithoutTransaction(body)
        }
    }

    func backup(to copy: DatabaseQueue) throws {
        try gated {
            if windowOpen { try commitWindow(reopen: true) }
            try queue.backup(to: copy)
        }
    }

    /// Replaces the content with a copy of `source`'s (SQLite's backup, in the other direction).
    func restore(from source: DatabaseQueue) throws {
        try changing {
            if windowOpen { try commitWindow(reopen: false) }
            try source.backup(to: queue)
        }
    }

    /// Runs `body` with one transaction around all its writes, committed when it returns or
    /// throws (what each write left stands; a failed write left nothing). A window inside a
    /// window joins it. If the commit fails, nothing of the window is kept and the error is thrown.
    func window<T>(_ body: () throws -> T) throws -> T {
        gate.lock()
        defer { gate.unlock() }
        if windowOpen { return try body() }
        do {
            try queue.writeWithoutTransaction { db in try db.beginTransaction(.immediate) }
        } catch let error as DatabaseError where error.resultCode == .SQLITE_READONLY {
            // A read-only replica: reads go on, and each write fails as it would anyway.
            return try body()
        }
        windowOpen = true
        failedCommit = nil
        let result: Result<T, Error> = Result { try body() }
        if windowOpen { try commitWindow(reopen: false) }
        if let failedCommit { throw failedCommit }
        return try result.get()
    }

    /// Commits the open window; with `reopen`, starts a new transaction for the rest of it.
    private func commitWindow(reopen: Bool) throws {
        generation &+= 1
        defer { generation &+= 1 }
        do {
            try queue.writeWithoutTransaction { db in
                if db.isInsideTransaction {
                    try beforeWindowCommit?(db)
                    try db.commit()
                }
                if reopen { try db.beginTransaction(.immediate) }
            }
            windowOpen = reopen
        } catch {
            windowOpen = false
            failedCommit = error
            try? queue.writeWithoutTransaction { db in if db.isInsideTransaction { try db.rollback() } }
            throw error
        }
    }
}
