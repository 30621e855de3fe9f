import Dispatch
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import QISyncCore
import QISyncIdentity
import QISyncStore

/// How a sync connection is secured.
public enum TransportSecurity: Sendable, Equatable {
    /// Mutual TLS 1.3 with the sites' own certificates; each side accepts only an enrolled,
    /// unrevoked site of a trust it pins, checked during the handshake (no certificate authority).
    case mutualTLS
    /// No TLS, and the peer's HELLO taken at its word: for tests on loopback addresses only.
    case plaintextLoopbackForTests
}

/// What one connection's TLS handshake concluded about the peer, written by the
/// verification callback and read by the connection's handler.
final class PeerVerification: Sendable {
    private let box = NIOLockedValueBox<Result<PeerIdentity, IdentityError>?>(nil)
    var result: Result<PeerIdentity, IdentityError>? { box.withLockedValue { $0 } }
    func set(_ result: Result<PeerIdentity, IdentityError>) { box.withLockedValue { $0 = result } }
}

enum TLSSetup {
    /// A TLS 1.3 context presenting this site's certificate chain, for either side.
    static func context(replica: Replica, isServer: Bool) throws -> NIOSSLContext {
        let credentials = try replica.credentials()
        let chain = try credentials.chain.map { NIOSSLCertificateSource.certificate(try NIOSSLCertificate(bytes: $0, format: .der)) }
        let key = NIOSSLPrivateKeySource.privateKey(try NIOSSLPrivateKey(bytes: Array(credentials.privateKeyPEM.utf8), format: .pem))
        var configuration = isServer
            ? TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
            : TLSConfiguration.makeClientConfiguration()
        configuration.certificateChain = chain
        configuration.privateKey = key
        configuration.minimumTLSVersion = .tlsv13
        configuration.maximumTLSVersion = .tlsv13
        // Hostnames mean nothing here: the peer is checked by key, in the callback below.
        configuration.certificateVerification = .noHostnameVerification
        // No certificate authority vouches for a site, so the system's roots would only be read
        // (a 200 KB bundle parsed for every client and every change of the server's context).
        configuration.trustRoots = .certificates([])
        configuration.verifySignatureAlgorithms = [.ed25519]
        configuration.signingSignatureAlgorithms = [.ed25519]
        return try NIOSSLContext(configuration: configuration)
    }

    /// The handshake's check of the peer's certificates, against the replica's directory as it is now.
    ///
    /// It runs on threads of its own, neither the replica's thread pool (a handshake must not
    /// wait behind other sessions' long batches) nor a global dispatch queue (whose few threads
    /// Swift concurrency shares, so a process busy with blocking work would stall handshakes
    /// until the peer gives up). Reading the directory is a short read (WAL readers do not wait
    /// for writers) and usually served from memory.
    static func verificationCallback(replica: Replica, verification: PeerVerification) -> NIOSSLCustomVerificationCallback {
        { certificates, promise in
            let chain = certificates.compactMap { try? $0.toDERBytes() }
            handshakeChecks.submit { _ in
                let result: Result<PeerIdentity, IdentityError>
                do { result = try replica.directory().verifyPeer(chain: chain) } catch {
                    result = .failure(IdentityError("could not read this replica's directory: \(error)"))
                }
                verification.set(result)
                if case .success = result { promise.succeed(.certificateVerified) } else { promise.succeed(.failed) }
            }
        }
    }

    /// The threads that check peers' certificates during handshakes. A check reads the replica's
    /// directory, so it waits while that replica's database is busy (a large apply); with two
    /// threads, two such waits could hold up every other handshake in the process (one test's
    /// handshake once timed out under the full suite's load). As many as the sync workers.
    static let handshakeChecks: NIOThreadPool = {
        let pool = NIOThreadPool(numberOfThreads: max(8, 2 * System.coreCount))
        pool.start()
        return pool
    }()

    /// Whether a host is a loopback address, where the plaintext test mode may run.
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
