import Foundation
import GRDB
import QISyncCore
import QISyncStore

extension QIRecords {
    /// Publishes a record: appends its whole current state (fields and tags) to this site's
    /// shared log; later edits follow it there. With `withRelated`, an initiative's PDSA cycles,
    /// learning entries and adaptations not yet shared go with it, in the same change.
    ///
    /// The PII guard scans every text field first and refuses, naming the record and field, when
    /// one looks patient-identifiable or names a member of staff; then nothing is shared. The
    /// trust's IG lead may override it, on the hub, with a reason (`overrideReason`), which is
    /// recorded with the shared record(s), signed by the trust key; every replica refuses an
    /// override without that signature.
    @discardableResult
    public func share(_ reference: String, overrideReason: String? = nil, withRelated: Bool = false) throws -> RecordView {
        let (kind, id) = try locate(reference)
        let current = try record(kind, id)
        try requireOwned(current)
        guard !withRelated || kind == .initiative || kind == .measure else {
            throw DomainError("--with-related shares an initiative's PDSA cycles, learning, adaptations and measures, or a measure's data; \(id.short) is a \(kind.noun)")
        }
        guard current.scope == .trust || withRelated else { throw DomainError("\(kind.rawValue) \(id.short) is already shared") }
        guard current.live else { throw DomainError("\(kind.rawValue) \(id.short) is deleted; restore it before sharing") }
        let records = (current.scope == .trust ? [current] : []) + (withRelated ? try unsharedRelated(of: id, kind: kind) : [])
        guard !records.isEmpty else { throw DomainError("initiative \(id.short) and everything related to it are already shared") }
        var overrides: [RecordID: (text: String, signature: [UInt8])] = [:]
        if let reason = overrideReason {
            guard replica.identity.kind == .hub, let trustKey = try replica.trustKey() else {
                throw DomainError("only the trust's IG lead may override the PII guard, from the hub that holds the trust key; ask them, or remove what the guard found")
            }
            let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
            guard Value.length(of: trimmed) >= 10, Value.length(of: trimmed) <= 500 else {
                throw DomainError("an IG-lead override needs a reason of 10 to 500 characters (--reason \"…\")")
            }
            try TextCheck.validate(trimmed, field: "the reason")
            let text = "\(trimmed) — \(replica.identity.trustCode)/\(replica.identity.siteName), \(DateText.timestamp(milliseconds: UInt64(now().timeIntervalSince1970 * 1000))) UTC"
            for view in records where !piiFindings(view).isEmpty {
                overrides[view.id] = (text, trustKey.signOverride(table: view.kind.table.id, record: view.id.bytes, text: text))
            }
        } else {
            for view in records {
                guard let (field, found) = piiFindings(view).first else { continue }
                throw DomainError("""
                    refused to share \(view.kind.rawValue) \(view.id.short): its \(field.name) holds what looks like \(found.map(\.description).joined(separator: ", ")); \
                    patient-identifiable data must not leave the trust. Remove it with '\(view.kind.commandName) set', \
                    or an IG lead may override: 'share \(id.short) --override-pii --reason "why it is safe"'. Nothing was shared
                    """)
            }
        }
        for view in records where view.conflictedFields.contains("exists") {
            throw DomainError("\(view.kind.rawValue) \(view.id.short) was deleted at one site while edited at another; settle that first ('resolve \(view.id.short) exists --keep' or '--delete'), then share it")
        }
        try replica.write { db -> (Scope, [RowEdit])? in
            var edits: [RowEdit] = []
            for view in records {
                guard let row = try Row.fetchOne(db, sql: "SELECT * FROM \(view.kind.rawValue) WHERE id = ?", arguments: [Data(view.id.bytes)]) else { continue }
                var edit = RowEdit(table: view.kind.table.id, key: view.id.bytes, values: [(0, .integer(row["live"]))])
                for field in view.kind.allFields {
                    let value: Value = switch field.name {
                    case "scope": .text(Scope.shared.description)
                    case "pii-override": overrides[view.id].map { Value.text($0.text) } ?? Value(row[field.columnName] as DatabaseValue)
                    case "pii-override-signature": overrides[view.id].map { Value.blob($0.signature) } ?? Value(row[field.columnName] as DatabaseValue)
                    default: Value(row[field.columnName] as DatabaseValue)
                    }
                    edit.values.append((field.column, value))
                }
                edits.append(edit)
                for set in view.kind.tagSets {
                    for tag in try Row.fetchAll(db, sql: "SELECT value, live FROM \(set.table.name) WHERE parent = ?", arguments: [Data(view.id.bytes)]) {
                        edits.append(RowEdit(table: set.table.id, key: set.key(parent: view.id, tag: tag[0]), values: [(0, .integer(tag[1]))]))
                    }
                }
            }
            return (.shared, edits)
        }
        return try record(kind, id)
    }

    /// An initiative's live PDSA cycles, learning entries and adaptations not yet shared.
    public func unsharedRelated(of parent: RecordID, kind: RecordKind = .initiative) throws -> [RecordView] {
        var filter = ListFilter()
        filter.limit = 1_000_000
        if kind == .measure {
            filter.measure = parent.hex
            return try (list(.datapoint, filter: filter) + list(.chartEvent, filter: filter)).filter { $0.scope == .trust && $0.ownerTrust == trust }
        }
        filter.initiative = parent.hex
        let measures = try list(.measure, filter: filter)
        // A measure travels with its data and chart events, so its charts can be drawn elsewhere.
        let measured = try measures.flatMap { measure -> [RecordView] in
            var byMeasure = ListFilter()
            byMeasure.measure = measure.id.hex
            byMeasure.limit = 1_000_000
            return try list(.datapoint, filter: byMeasure) + list(.chartEvent, filter: byMeasure)
        }
        return try ([RecordKind.pdsa, .learning, .adaptation].flatMap { try list($0, filter: filter) } + measures + measured)
            .filter { $0.scope == .trust && $0.ownerTrust == trust }
    }

    /// What the PII guard finds in a record's text fields.
    func piiFindings(_ view: RecordView) -> [(Field, [PIIGuard.Finding])] {
        view.kind.fields.compactMap { field -> (Field, [PIIGuard.Finding])? in
            guard case .text = field.kind, let text = view.values[field.name]?.text else { return nil }
            let found = PIIGuard.scan(text)
            return found.isEmpty ? nil : (field, found)
        }
    }

    /// Stops publishing a record: later edits stay in the trust log. What was sent is not recalled.
    @discardableResult
    public func unshare(_ reference: String) throws -> RecordView {
        let (kind, id) = try locate(reference)
        let current = try record(kind, id)
        try requireOwned(current)
        guard current.scope == .shared else { throw DomainError("\(kind.rawValue) \(id.short) is not shared") }
        let scope = kind.field(named: "scope")!
        try replica.write(scope: .shared, edits: [RowEdit(table: kind.table.id, key: id.bytes, values: [(scope.column, .text(Scope.trust.description))])])
        return try record(kind, id)
    }
}

extension QIRecords {
    /// The PII guard over entries about to leave the trust (a bundle for another trust): every
    /// text value they write to a record is scanned, and the first finding refuses them, naming
    /// the record and field, unless the record carries an IG-lead override.
    public func checkLeavingTrust(_ entries: [LogEntry]) throws {
        for entry in entries {
            for row in try entry.change().rows {
                guard let kind = RecordKind.allCases.first(where: { $0.table.id == row.table }), let id = try? RecordID(bytes: row.key) else { continue }
                for cell in row.cells {
                    guard case .text(let text) = cell.value, let field = kind.allFields.first(where: { $0.column == cell.column }),
                          field.name != "pii-override", let finding = PIIGuard.scan(text).first else { continue }
                    if let current = try? record(kind, id), !current.text("pii-override").isEmpty { continue }
                    throw DomainError("""
                        refused: \(kind.rawValue) \(id.short) would leave the trust with \(finding) in its \(field.name) \
                        (\(entry.ref)); patient-identifiable data and staff names must not leave the trust. Correct the record \
                        and share it again, or the IG lead may override on the hub ('share … --override-pii --reason …')
                        """)
                }
            }
        }
    }
}
