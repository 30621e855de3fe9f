import GRDB
import GRDBSQLite
import QISyncCore

/// A GRDB prepared statement driven through SQLite's C API on the apply hot path.
///
/// Binding ``Value``s straight to `sqlite3_bind_*` skips GRDB's argument boxing, which
/// cost about a tenth of apply time (see README, "Benchmarks"). Statements come from
/// GRDB's cache and are reset after each use, so GRDB can keep using them. Public so the
/// benchmark's plain-insert floor binds values the same way.
public struct FastStatement {
    private let statement: Statement
    private let db: Database

    /// Prepares (or takes from GRDB's cache) a statement.
    public init(_ db: Database, sql: String) throws {
        self.db = db
        statement = try db.cachedStatement(sql: sql)
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private func bind(_ values: [Value]) {
        let handle = statement.sqliteStatement
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            switch value {
            case .null: sqlite3_bind_null(handle, index)
            case .integer(let i): sqlite3_bind_int64(handle, index, i)
            case .real(let d): sqlite3_bind_double(handle, index, d)
            case .text(let s):
                s.withCString { pointer in
                    _ = sqlite3_bind_text(handle, index, pointer, Int32(s.utf8.count), Self.transient)
                }
            case .blob(let bytes):
                bytes.withUnsafeBytes { buffer in
                    _ = sqlite3_bind_blob(handle, index, buffer.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(buffer.count), Self.transient)
                }
            }
        }
    }

    private func fail(_ code: Int32) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage, sql: statement.sql)
    }

    /// Runs the statement to completion with these arguments.
    public func execute(_ values: [Value]) throws {
        let handle = statement.sqliteStatement
        defer { sqlite3_reset(handle) }
        bind(values)
        let code = sqlite3_step(handle)
        guard code == SQLITE_DONE || code == SQLITE_ROW else { throw fail(code) }
    }

    /// The first row's columns, or nil when there is no row.
    public func fetchRow(_ values: [Value]) throws -> [Value]? {
        let handle = statement.sqliteStatement
        defer { sqlite3_reset(handle) }
        bind(values)
        switch sqlite3_step(handle) {
        case SQLITE_ROW:
            return (0..<sqlite3_column_count(handle)).map { column in
                switch sqlite3_column_type(handle, column) {
                case SQLITE_INTEGER: .integer(sqlite3_column_int64(handle, column))
                case SQLITE_FLOAT: .real(sqlite3_column_double(handle, column))
                case SQLITE_TEXT: .text(String(cString: sqlite3_column_text(handle, column)))
                case SQLITE_BLOB:
                    .blob(Array(UnsafeRawBufferPointer(start: sqlite3_column_blob(handle, column), count: Int(sqlite3_column_bytes(handle, column)))))
                default: .null
                }
            }
        case SQLITE_DONE: return nil
        case let code: throw fail(code)
        }
    }

    /// The first column of the first row as an integer, or nil when there is no row.
    public func fetchInt64(_ values: [Value]) throws -> Int64? {
        let handle = statement.sqliteStatement
        defer { sqlite3_reset(handle) }
        bind(values)
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return sqlite3_column_type(handle, 0) == SQLITE_NULL ? nil : sqlite3_column_int64(handle, 0)
        case SQLITE_DONE: return nil
        case let code: throw fail(code)
        }
    }
}
