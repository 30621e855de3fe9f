import Foundation
import GRDBSQLite
import QISyncCore

/// The result of a read-only query: column names and rows of values.
public struct QueryResult: Sendable {
    /// Column names.
    public let columns: [String]
    /// Rows, each value as SQLite returned it.
    public let rows: [[Value]]
    /// Whether rows were left out because there were more than the limit.
    public let truncated: Bool
}

/// Why a read-only query was refused or stopped.
public struct QueryError: Error, Sendable, CustomStringConvertible {
    /// What went wrong and what to do.
    public let message: String
    public var description: String { message }
}

/// Runs one SQL statement on its own read-only connection to the replica file, so nothing it
/// does can change the replica or the connections the rest of qisync uses: SQLite opens the
/// file read-only, an authorizer allows only reading (SELECT, reading tables, functions,
/// recursive queries, and a few schema-describing pragmas), and a progress handler stops a
/// query that runs past its time limit. ATTACH, other pragmas, transactions and anything that
/// writes are refused when the statement is prepared, before it runs.
enum ReadOnlyQuery {
    /// Pragmas that only describe the schema, allowed without a value.
    static let describingPragmas: Set<String> = [
        "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list", "collation_list",
    ]

    /// What the C callbacks see: the deadline, and what the authorizer refused.
    final class Guard {
        let deadline: Date
        var refused: String?
        init(deadline: Date) { self.deadline = deadline }
    }

    static func run(path: String, sql: String, timeLimit: Double, rowLimit: Int) throws(QueryError) -> QueryResult {
        var connection: OpaquePointer?
        guard sqlite3_open_v2(path, &connection, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK, let db = connection else {
            defer { sqlite3_close_v2(connection) }
            throw QueryError(message: "could not open the replica for reading: \(String(cString: sqlite3_errmsg(connection)))")
        }
        defer { sqlite3_close_v2(db) }
        sqlite3_busy_timeout(db, 5000)
        sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0)
        let state = Guard(deadline: Date().addingTimeInterval(timeLimit))
        let context = Unmanaged.passUnretained(state).toOpaque()
        sqlite3_set_authorizer(db, { context, action, first, _, _, _ in
            let state = Unmanaged<ReadOnlyQuery.Guard>.fromOpaque(context!).takeUnretainedValue()
            switch action {
            case SQLITE_SELECT, SQLITE_READ, SQLITE_FUNCTION, SQLITE_RECURSIVE:
                return SQLITE_OK
            case SQLITE_PRAGMA:
                let name = first.map { String(cString: $0).lowercased() } ?? ""
                if ReadOnlyQuery.describingPragmas.contains(name) { return SQLITE_OK }
                state.refused = "PRAGMA \(name)"
            case SQLITE_ATTACH, SQLITE_DETACH: state.refused = "ATTACH and DETACH"
            case SQLITE_TRANSACTION, SQLITE_SAVEPOINT: state.refused = "transactions (BEGIN, COMMIT, SAVEPOINT…)"
            default: state.refused = "statements that change the database"
            }
            return SQLITE_DENY
        }, context)
        sqlite3_progress_handler(db, 10_000, { context in
            Date() > Unmanaged<ReadOnlyQuery.Guard>.fromOpaque(context!).takeUnretainedValue().deadline ? 1 : 0
        }, context)

        var statement: OpaquePointer?
        var rest = ""
        let prepared = sql.withCString { text in
            var tail: UnsafePointer<CChar>?
            let code = sqlite3_prepare_v2(db, text, -1, &statement, &tail)
            rest = tail.map { String(cString: $0) } ?? ""
            return code
        }
        defer { sqlite3_finalize(statement) }
        let readOnly = "only SELECT (and WITH … SELECT) runs; change records with the shell's commands"
        guard prepared == SQLITE_OK, let statement else {
            if let refused = state.refused { throw QueryError(message: "sql is read-only: \(refused) are not allowed; \(readOnly)") }
            if prepared == SQLITE_AUTH { throw QueryError(message: "sql is read-only: \(readOnly)") }
            throw QueryError(message: "SQL error: \(String(cString: sqlite3_errmsg(db)))")
        }
        if !rest.trimmingCharacters(in: CharacterSet(charactersIn: " \t\r\n;")).isEmpty {
            throw QueryError(message: "give one statement at a time (there is more after the first ';')")
        }
        guard sqlite3_stmt_readonly(statement) != 0 else { throw QueryError(message: "sql is read-only: \(readOnly)") }
        let count = sqlite3_column_count(statement)
        let columns = (0..<count).map { String(cString: sqlite3_column_name(statement, $0)) }
        var rows: [[Value]] = []
        var truncated = false
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE { break }
            guard code == SQLITE_ROW else {
                if code == SQLITE_AUTH || code == SQLITE_READONLY { throw QueryError(message: "sql is read-only: \(readOnly)") }
                if code == SQLITE_INTERRUPT {
                    throw QueryError(message: "the query ran longer than \(String(format: "%g", timeLimit)) s and was stopped; narrow it, or give --timeout SECONDS")
                }
                throw QueryError(message: "SQL error: \(String(cString: sqlite3_errmsg(db)))")
            }
            guard rows.count < rowLimit else {
                truncated = true
                break
            }
            rows.append((0..<count).map { column in
                switch sqlite3_column_type(statement, column) {
                case SQLITE_INTEGER: .integer(sqlite3_column_int64(statement, column))
                case SQLITE_FLOAT: .real(sqlite3_column_double(statement, column))
                case SQLITE_TEXT:
                    .text(String(decoding: UnsafeBufferPointer(start: sqlite3_column_text(statement, column), count: Int(sqlite3_column_bytes(statement, column))), as: UTF8.self))
                case SQLITE_BLOB:
                    .blob(Array(UnsafeRawBufferPointer(start: sqlite3_column_blob(statement, column), count: Int(sqlite3_column_bytes(statement, column)))))
                default: .null
                }
            })
        }
        return QueryResult(columns: columns, rows: rows, truncated: truncated)
    }
}

extension Replica {
    /// Runs one read-only SQL statement on its own connection (``ReadOnlyQuery``): anything that
    /// would write, attach, change a setting or run past `timeLimit` seconds is refused.
    public func readOnlyQuery(_ sql: String, timeLimit: Double = 10, rowLimit: Int = 10_000) throws(QueryError) -> QueryResult {
        try ReadOnlyQuery.run(path: databasePath, sql: sql, timeLimit: timeLimit, rowLimit: rowLimit)
    }
}
