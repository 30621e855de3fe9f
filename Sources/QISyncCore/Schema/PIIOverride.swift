/// An IG lead's override of the PII guard: why a record may be shared although the guard
/// objected, signed by the owner trust's key (which only the trust's hub holds).
///
/// The text goes in one column and the signature in another, written together. Because the
/// signature is checked against the trust key (known from any of the trust's enrolments), every
/// replica decides whether an override stands the same way, whatever order entries and
/// enrolments arrive in (protocol/SPEC.md section 14).
public enum PIIOverride {
    /// Where a table keeps an override.
    public struct Columns: Sendable, Equatable {
        /// The reason, as text.
        public let text: UInt16
        /// The trust key's Ed25519 signature of ``PIIOverride/message(table:record:text:)``.
        public let signature: UInt16

        /// Creates the pair.
        public init(text: UInt16, signature: UInt16) {
            self.text = text
            self.signature = signature
        }
    }

    /// The columns every QI record table uses: 63 for the text, 62 for the signature.
    public static let standardColumns = Columns(text: 63, signature: 62)

    /// What the trust key signs: `"qisync-pii-override-1" ‖ table:varint ‖ record id:bytes ‖ text:string`.
    public static func message(table: UInt16, record: [UInt8], text: String) -> [UInt8] {
        var writer = ByteWriter()
        writer.write(raw: Array("qisync-pii-override-1".utf8))
        writer.write(varint: UInt64(table))
        writer.write(lengthPrefixed: record)
        writer.write(string: text)
        return writer.bytes
    }

    /// What is wrong with a row write's override, or nil when it has none or it is signed:
    /// override text must come with a valid signature by the trust key in the same row write,
    /// and a signature never comes without its text.
    static func problem(with row: RowWrite, columns: Columns, trustKey: [UInt8]?) -> String? {
        let text = row.cells.first { $0.column == columns.text }?.value
        let signature = row.cells.first { $0.column == columns.signature }?.value
        switch (text, signature) {
        case (nil, nil), (.null?, nil), (.null?, .null?), (nil, .null?):
            return nil
        case (.text(let reason)?, .blob(let bytes)?):
            guard let trustKey else { return "an IG-lead override whose trust key is not known here" }
            guard SignatureCheck.isValid(bytes, of: message(table: row.table, record: row.key, text: reason), byKey: trustKey) else {
                return "an IG-lead override not signed by the owner trust's key (only its hub may override the PII guard)"
            }
            return nil
        default:
            return "an IG-lead override without its trust-key signature, or a signature without its text"
        }
    }
}
