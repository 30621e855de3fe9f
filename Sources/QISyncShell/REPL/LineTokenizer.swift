/// Splits a shell line into words: spaces separate, '…' and "…" quote, \ escapes the next
/// character; outside single quotes `\n` is a new line and `\t` a tab (so learning text can
/// hold paragraphs). Within single quotes every character stands for itself.
public enum LineTokenizer {
    /// An unclosed quote or a trailing backslash.
    public struct Error: Swift.Error, CustomStringConvertible {
        public let description: String
    }

    /// The words of `line`.
    public static func words(_ line: String) throws(Error) -> [String] {
        var words: [String] = []
        var current = ""
        var inWord = false
        var quote: Character?
        var escaped = false
        for char in line {
            if escaped {
                current.append(char == "n" ? "\n" : char == "t" ? "\t" : char)
                escaped = false
                continue
            }
            if char == "\\" && quote != "'" {
                escaped = true
                inWord = true
                continue
            }
            if let open = quote {
                if char == open { quote = nil } else { current.append(char) }
                continue
            }
            if char == "\"" || char == "'" {
                quote = char
                inWord = true
            } else if char == " " || char == "\t" {
                if inWord { words.append(current) }
                current = ""
                inWord = false
            } else {
                current.append(char)
                inWord = true
            }
        }
        if escaped { throw Error(description: "the line ends with a lone backslash") }
        if let quote { throw Error(description: "a \(quote) quote is not closed") }
        if inWord { words.append(current) }
        return words
    }
}
