import GRDB
import GRDBSQLite

/// Rows read through SQLite's C API, their values in place: `verify`'s digests and its index
/// check read millions of rows and keep none of them, so nothing is copied out or boxed.
enum RawRows {
    /// Steps a query to its end (or until `row` returns false), calling `row` on each row.
    static func forEach(_ db: Database, sql: String, _ row: (OpaquePointer) -> Bool) throws {
        let statement = try db.makeStatement(sql: sql)
        let handle = statement.sqliteStatement
        defer { sqlite3_reset(handle) }
        while true {
            let code = sqlite3_step(handle)
            if code == SQLITE_DONE { return }
            guard code == SQLITE_ROW else { throw DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage, sql: sql) }
            if !row(handle) { return }
        }
    }
}

/// One value of the row a statement stands on, as SQLite holds it. Text and blobs point into
/// SQLite's own buffer, valid until the statement moves on.
enum RawColumn {
    case null
    case integer(Int64)
    case real(Double)
    case text(UnsafeRawBufferPointer)
    case blob(UnsafeRawBufferPointer)

    @inline(__always)
    init(_ handle: OpaquePointer, _ column: Int32) {
        switch sqlite3_column_type(handle, column) {
        case SQLITE_INTEGER: self = .integer(sqlite3_column_int64(handle, column))
        case SQLITE_FLOAT: self = .real(sqlite3_column_double(handle, column))
        case SQLITE_TEXT:
            let start = UnsafeRawPointer(sqlite3_column_text(handle, column))
            self = .text(UnsafeRawBufferPointer(start: start, count: Int(sqlite3_column_bytes(handle, column))))
        case SQLITE_BLOB:
            let start = sqlite3_column_blob(handle, column)
            self = .blob(UnsafeRawBufferPointer(start: start, count: Int(sqlite3_column_bytes(handle, column))))
        default: self = .null
        }
    }
}
