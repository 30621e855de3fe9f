import Foundation
import GRDB
import QISyncDomain

/// What a failure means to the person at the keyboard: SQLite's codes turned into what happened
/// and what to do. Every such failure leaves the replica as it was (each write is one
/// transaction); the message says so.
enum FailureMessages {
    /// The error as the user should see it: a database failure explained, anything else as it is.
    static func explain(_ error: Error) -> Error {
        guard let database = error as? DatabaseError else { return error }
        let unchanged = "nothing was changed"
        switch database.resultCode {
        case .SQLITE_FULL:
            return DomainError("the disk is full (or a file-size limit was reached): \(unchanged); free some space and try again")
        case .SQLITE_READONLY:
            return DomainError("the replica cannot be written (its file or folder is read-only, or the disk is): \(unchanged); check its permissions")
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return DomainError("the replica is busy with another qisync process for too long: \(unchanged); try again")
        case .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return DomainError("the replica's database file is damaged (\(database.message ?? "corrupt")); run 'qisync verify', and restore it from a backup if that fails")
        case .SQLITE_IOERR:
            // EFBIG (a file-size limit) and ENOSPC surface as I/O errors on some writes.
            if database.extendedResultCode == .SQLITE_IOERR_WRITE || database.extendedResultCode == .SQLITE_IOERR_FSYNC
                || database.extendedResultCode == .SQLITE_IOERR_TRUNCATE {
                return DomainError("the replica could not be written to disk (full, or over a file-size limit): \(unchanged); free some space and try again")
            }
            return DomainError("the replica's disk reported an error (\(database.message ?? "I/O error")): \(unchanged); check the disk")
        case .SQLITE_CANTOPEN:
            return DomainError("the replica's database file cannot be opened (\(database.message ?? "cannot open")); check the folder and its permissions")
        default:
            return error
        }
    }
}
