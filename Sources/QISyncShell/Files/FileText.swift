import Foundation
import QISyncDomain

/// Reading and writing the files people name on the command line (bundles, receipts,
/// enrolments, cards, CSV, reports), with errors that say why: missing, a folder, not allowed.
enum FileText {
    /// The whole file as bytes.
    static func readBytes(_ path: String) throws -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DomainError("cannot read \(path): there is no such file")
        }
        guard !isDirectory.boolValue else { throw DomainError("cannot read \(path): it is a folder, not a file") }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DomainError("cannot read \(path): \(reason(errno, fallback: "permission denied"))")
        }
        return Array(data)
    }

    /// The whole file as UTF-8 text.
    static func read(_ path: String) throws -> String {
        guard let text = String(validating: try readBytes(path), as: UTF8.self) else {
            throw DomainError("cannot read \(path): it is not UTF-8 text")
        }
        return text
    }

    /// Writes (or replaces) a file.
    static func write(bytes: [UInt8], to path: String) throws {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw DomainError("cannot write \(path): it is a folder; give a file name")
        }
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty, !FileManager.default.fileExists(atPath: folder) {
            throw DomainError("cannot write \(path): the folder \(folder) does not exist")
        }
        do { try Data(bytes).write(to: URL(fileURLWithPath: path)) } catch {
            throw DomainError("cannot write \(path): \(describe(error))")
        }
    }

    /// Writes (or replaces) a text file.
    static func write(_ text: String, to path: String) throws { try write(bytes: Array(text.utf8), to: path) }

    static func describe(_ error: Error) -> String {
        let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
        if let code = underlying?.code, underlying?.domain == NSPOSIXErrorDomain { return reason(Int32(code), fallback: "\(error)") }
        switch (error as NSError).code {
        case NSFileWriteNoPermissionError, NSFileReadNoPermissionError: return "permission denied"
        case NSFileWriteOutOfSpaceError: return "the disk is full"
        case NSFileWriteVolumeReadOnlyError: return "the disk is read-only"
        default: return error.localizedDescription
        }
    }

    static func reason(_ code: Int32, fallback: String) -> String {
        switch code {
        case EACCES, EPERM: "permission denied"
        case ENOSPC: "the disk is full"
        case EROFS: "the disk is read-only"
        case ENOENT: "there is no such file"
        case EISDIR: "it is a folder"
        case 0: fallback
        default: String(cString: strerror(code))
        }
    }
}
