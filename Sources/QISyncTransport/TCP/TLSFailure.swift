import NIOSSL
import QISyncProtocol

/// What a TLS failure means, in words an administrator can act on: the peer refused this
/// site's certificate; something other than qisync answered; the bytes were damaged in transit;
/// the connection simply dropped. BoringSSL's own names are kept at the end, for the record.
enum TLSFailure {
    /// The reasons BoringSSL gave, without its file paths: `alert bad certificate`, `wrong version number`…
    static func reasons(_ error: Error) -> [String] {
        let text = "\(error)"
        var found: [String] = []
        for match in text.matches(of: #/(?:SSLV3_ALERT_|TLSV1_ALERT_)?[A-Z][A-Z0-9_]{6,}/#) {
            var name = String(match.output)
            guard !name.hasPrefix("OPENSSL"), name != "SSL_ERROR_SSL" else { continue }
            let alert = name.hasPrefix("SSLV3_ALERT_") || name.hasPrefix("TLSV1_ALERT_")
            name = name.replacingOccurrences(of: "SSLV3_ALERT_", with: "").replacingOccurrences(of: "TLSV1_ALERT_", with: "")
            let words = (alert ? "alert " : "") + name.lowercased().replacingOccurrences(of: "_", with: " ")
            if !found.contains(words) { found.append(words) }
        }
        if found.isEmpty, case NIOSSLError.uncleanShutdown? = error as? NIOSSLError { found.append("the connection closed without a TLS goodbye") }
        return found.isEmpty ? [text] : found
    }

    /// The error a failed TLS connection ends the session with. `handshakeDone` says whether
    /// the session had started (a failure then is the connection's, not the handshake's).
    static func explain(_ error: Error, handshakeDone: Bool) -> SyncError {
        let reasons = Self.reasons(error)
        let all = reasons.joined(separator: "; ")
        func has(_ words: String...) -> Bool { reasons.contains { reason in words.contains { reason.lowercased().contains($0) } } }
        if has("bad decrypt", "decryption failed or bad record mac", "bad record mac", "decode error") {
            return SyncError(.connectionLost, "the connection was damaged in transit (a TLS record failed its integrity check, \(all)); nothing damaged was kept. Run sync again; if it keeps happening, something on the network is altering traffic")
        }
        if has("wrong version number", "packet length too long", "http request", "https proxy request", "unknown protocol", "record too large") {
            return SyncError(.connectionLost, "something other than a qisync server answered at that address (it does not speak TLS 1.3 as qisync does: \(all)); check the address and port ('peer list')")
        }
        if !handshakeDone, has("alert bad certificate", "alert certificate required", "alert unknown ca", "alert certificate unknown",
                               "alert access denied", "alert handshake failure", "alert certificate revoked", "alert unsupported certificate") {
            // In TLS 1.3 the server checks the client's certificate after the client has
            // finished its side of the handshake, so a refusal can arrive just after it.
            return SyncError(.notAuthorised, "the peer refused this site's certificate during the TLS handshake (\(all)). This site may not be enrolled in a trust the peer pins, or may have been revoked; the peer's administrator can check with 'qisync trust list' and 'qisync audit'")
        }
        if has("the connection closed without a tls goodbye") {
            return SyncError(.connectionLost, handshakeDone
                ? "the connection dropped (the peer stopped, or the network failed); what was acknowledged is kept"
                : "the connection closed during the TLS handshake: the peer may have refused this site, or is not a qisync server")
        }
        return SyncError(.connectionLost, "TLS failed: \(all)")
    }
}
