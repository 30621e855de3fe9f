import Foundation

/// Private key files: created readable and writable by their owner only from the first byte
/// (never through a temporary file that others could read), never overwritten, and checked,
/// as ssh does, for being readable by others when read.
///
/// A key file holds the 32 raw bytes of an Ed25519 private key (its seed), nothing else.
public enum SecretFile {
    /// Creates `url` with mode 0600 holding `bytes`; refuses when it exists.
    public static func create(_ url: URL, bytes: [UInt8]) throws(IdentityError) {
        let descriptor = open(url.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let reason = errno == EEXIST ? "it already exists; a key file is never overwritten" : String(cString: strerror(errno))
            throw IdentityError("could not create the key file \(url.path): \(reason)")
        }
        defer { close(descriptor) }
        // The mode given to open is masked by the umask; make sure it is exactly 0600.
        fchmod(descriptor, 0o600)
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard result > 0 else {
                let reason = String(cString: strerror(errno))
                unlink(url.path)
                throw IdentityError("could not write the key file \(url.path): \(reason)")
            }
            written += result
        }
        guard fsync(descriptor) == 0 else {
            unlink(url.path)
            throw IdentityError("could not write the key file \(url.path) to disk: \(String(cString: strerror(errno)))")
        }
    }

    /// Reads a key file, with a warning when others than its owner may read or write it.
    public static func read(_ url: URL) throws(IdentityError) -> (bytes: [UInt8], warning: String?) {
        var status = stat()
        guard stat(url.path, &status) == 0 else { throw IdentityError("the key file \(url.path) is missing or unreadable") }
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw IdentityError("the key file \(url.path) is unreadable (\(String(cString: strerror(errno))))")
        }
        let mode = status.st_mode & 0o777
        let warning = mode & 0o077 != 0
            ? "warning: the key file \(url.path) can be read by others (mode \(String(mode, radix: 8))); make it private with 'chmod 600 \(url.path)'"
            : nil
        return (Array(data), warning)
    }
}
