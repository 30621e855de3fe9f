import Foundation
import QISyncCore
import QISyncIdentity
import QISyncStore

extension QIRecords {
    /// The text fields of a record that `redact` would clear, with every value each has held.
    public func redactionPreview(_ reference: String, fields names: [String]) throws -> (RecordView, [(field: String, values: [String])]) {
        try requireTrustKeyToRedact()
        let (kind, id) = try locate(reference)
        let view = try record(kind, id)
        let fields = try redactableFields(kind, names)
        let history = try replica.history(table: kind.table.id, key: id.bytes)
        let values = fields.map { field in
            (field.name, Array(Set(history.flatMap { change in change.cells.filter { $0.column == field.column }.compactMap { cell -> String? in
                if case .text(let text) = cell.value, text != Redaction.marker { return text }
                return nil
            } })).sorted())
        }
        return (view, values)
    }

    /// On the hub, for the trust's IG lead: replaces every value the named text fields of a
    /// record have held (its current text and its history) with "[redacted]", on this replica
    /// and, as the signed redaction spreads with syncs and bundles, on every replica. The logs
    /// stay verifiable. Returns the record as it now reads and how many entries were redacted.
    @discardableResult
    public func redact(_ reference: String, fields names: [String], reason: String) throws -> (RecordView, Int) {
        try requireTrustKeyToRedact()
        let (kind, id) = try locate(reference)
        let current = try record(kind, id)
        try requireOwned(current)
        let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard Value.length(of: trimmed) >= 10, Value.length(of: trimmed) <= 500 else {
            throw DomainError("a redaction needs a reason of 10 to 500 characters (--reason \"…\"); it is recorded for audit on every replica")
        }
        try TextCheck.validate(trimmed, field: "the reason")
        let fields = try redactableFields(kind, names)
        let made: [Redaction]
        do {
            made = try replica.redact(table: kind.table.id, key: id.bytes, columns: Set(fields.map(\.column)), reason: trimmed)
        } catch let error as StoreError {
            throw DomainError(error.message)
        }
        return (try record(kind, id), made.count)
    }

    private func requireTrustKeyToRedact() throws {
        guard try replica.trustKey() != nil else {
            throw DomainError("only the trust's hub, which holds the trust key, can redact (the IG lead's decision); ask there")
        }
    }

    private func redactableFields(_ kind: RecordKind, _ names: [String]) throws -> [Field] {
        guard !names.isEmpty else { throw DomainError("name the fields to redact, e.g. 'redact ID text' (text fields: \(textFields(kind)))") }
        return try names.map { name in
            guard let field = kind.field(named: name), case .text = field.kind else {
                throw DomainError("\(kind.rawValue) has no text field '\(name)' to redact; its text fields are: \(textFields(kind))")
            }
            return field
        }
    }

    private func textFields(_ kind: RecordKind) -> String {
        kind.fields.filter { if case .text = $0.kind { true } else { false } }.map(\.name).joined(separator: ", ")
    }
}
