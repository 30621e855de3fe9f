import NIOCore

/// Where a peer listens: a host (name, IPv4, or IPv6 in brackets) and a port.
public struct PeerAddress: Sendable, Equatable, CustomStringConvertible {
    /// The host name or address, without brackets.
    public let host: String
    /// The TCP port.
    public let port: Int

    /// The port `qisync serve` listens on unless told otherwise.
    public static let defaultPort = 7744

    /// Parses `HOST:PORT`, `[IPV6]:PORT`, or a bare host (the default port).
    public init(parsing text: String) throws(AddressError) {
        var host = Substring(text)
        var port = Self.defaultPort
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { throw AddressError(text, "an IPv6 address needs its closing ']'") }
            host = text[text.index(after: text.startIndex)..<close]
            let rest = text[text.index(after: close)...]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let value = Int(rest.dropFirst()) else { throw AddressError(text, "expected ':PORT' after ']'") }
                port = value
            }
        } else if let colon = text.lastIndex(of: ":") {
            guard text.firstIndex(of: ":") == colon else { throw AddressError(text, "write an IPv6 address in brackets, e.g. [::1]:7744") }
            host = text[..<colon]
            guard let value = Int(text[text.index(after: colon)...]) else { throw AddressError(text, "the port must be a number") }
            port = value
        }
        guard !host.isEmpty, host.allSatisfy({ $0.isLetter || $0.isNumber || ".-:_%".contains($0) }) else {
            throw AddressError(text, "the host is empty or has characters a host name cannot have")
        }
        guard (0...65535).contains(port) else { throw AddressError(text, "the port must be 0 to 65535 (0 picks a free one when listening)") }
        self.host = String(host)
        self.port = port
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// A socket address as `HOST:PORT`.
    public static func describe(_ address: SocketAddress) -> String {
        let host = address.ipAddress ?? "?"
        return host.contains(":") ? "[\(host)]:\(address.port ?? 0)" : "\(host):\(address.port ?? 0)"
    }
}

/// A peer address that could not be parsed.
public struct AddressError: Error, Sendable, CustomStringConvertible {
    public let description: String

    init(_ text: String, _ reason: String) { description = "'\(text)' is not HOST:PORT: \(reason)" }
}
