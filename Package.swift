// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "qisync",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "qisync", targets: ["qisync"]),
        .library(name: "QISyncCore", targets: ["QISyncCore"]),
        .library(name: "QISyncStore", targets: ["QISyncStore"]),
        .library(name: "QISyncFuzzHarness", targets: ["QISyncFuzzHarness"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
        .package(url: "https://github.com/adam-fowler/compress-nio", exact: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", exact: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", exact: "1.7.4"),
        .package(url: "https://github.com/x-sheep/swift-property-based", exact: "2.0.1"),
    ],
    targets: [
        // The system's zlib, for the tuning of the wire's deflate that compress-nio does not expose.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        // Pure logic: identities, clocks, change and log-entry encoding, merge rules. No I/O.
        .target(
            name: "QISyncCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        // Trusts and sites: trust keys, enrolment certificates, revocations, fingerprints, and
        // the pure decisions about whom to accept. No I/O beyond reading and writing key files.
        .target(
            name: "QISyncIdentity",
            dependencies: [
                "QISyncCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        // The one SQLite setting Swift cannot reach (sqlite3_config is variadic).
        .target(
            name: "CSQLiteSettings",
            dependencies: [.product(name: "GRDBSQLite", package: "GRDB.swift")]
        ),
        // The SQLite replica: origin logs (their bodies packed by the block), version vectors, materialisation, verification.
        .target(
            name: "QISyncStore",
            dependencies: [
                "QISyncCore", "QISyncIdentity", "CSQLiteSettings",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ]
        ),
        // Measures' statistics and charts: XmR, run, p and u charts, their rules and verdicts,
        // drawn for a terminal or as SVG. Numbers in, numbers and text out: no I/O.
        .target(name: "QISyncCharts"),
        // The sync protocol: messages, framing, the compressed payload stream and the session
        // state machine. Values in, actions out: no sockets, no files, no database.
        .target(
            name: "QISyncProtocol",
            dependencies: [
                "QISyncCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                "CZlib",
            ]
        ),
        // What the libFuzzer target (tools/fuzz) and its regression tests feed hostile bytes to.
        .target(
            name: "QISyncFuzzHarness",
            dependencies: ["QISyncCore", "QISyncProtocol", "QISyncIdentity", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // TCP transport (SwiftNIO): carries the protocol's bytes between a replica and its peers.
        .target(
            name: "QISyncTransport",
            dependencies: [
                "QISyncCore", "QISyncStore", "QISyncProtocol",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                "QISyncIdentity",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The QI domain: initiatives, PDSA cycles, learning log, adaptations, and their validation.
        .target(
            name: "QISyncDomain",
            dependencies: [
                "QISyncCore", "QISyncStore", "QISyncIdentity", "QISyncCharts",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // libedit, for line editing and history on a terminal.
        .systemLibrary(
            name: "CEditLine",
            pkgConfig: "libedit",
            providers: [.apt(["libedit-dev"])]
        ),
        // Ctrl-C and the line reader the shell gives libedit (C: one signal flag for the process).
        .target(name: "CTerminal", dependencies: ["CEditLine"]),
        // The command tree shared by the CLI and the shell, and the REPL itself.
        .target(
            name: "QISyncShell",
            dependencies: [
                "QISyncCore", "QISyncStore", "QISyncDomain", "QISyncProtocol", "QISyncTransport", "QISyncIdentity", "QISyncCharts", "CEditLine", "CTerminal",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .executableTarget(name: "qisync", dependencies: ["QISyncShell"]),
        // Model-based checking: worlds of trusts, random histories, the in-process carrier, and a
        // reference model of the merge and authorisation rules to check replicas against.
        .target(
            name: "QISyncModelCheck",
            dependencies: [
                "QISyncCore", "QISyncStore", "QISyncDomain", "QISyncIdentity", "QISyncProtocol", "QISyncTransport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Faults injected into real qisync processes (kills, a faulty network, a full disk, clocks,
        // many writers, hostile input), with a table of what held. The test suite runs --short.
        .executableTarget(
            name: "qisync-chaos",
            dependencies: [
                "QISyncCore", "QISyncStore", "QISyncDomain",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            path: "tools/chaos",
            exclude: ["run.sh"]
        ),
        // Runs many histories (100,000 with one command) and reports divergences. Not a test.
        .executableTarget(
            name: "qisync-modelcheck",
            dependencies: ["QISyncModelCheck", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "tools/modelcheck"
        ),
        // Benchmark: synthetic trust, apply vs plain insert, file sizes. Not a test.
        .executableTarget(
            name: "qisync-bench",
            dependencies: [
                "QISyncCore", "QISyncStore", "QISyncDomain", "QISyncTransport", "QISyncIdentity", "QISyncCharts", "QISyncShell",
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "tools/bench",
            exclude: ["compare.py", "compare.sh"]
        ),
        .executableTarget(
            name: "qisync-sim",
            dependencies: [
                "QISyncCore", "QISyncStore", "QISyncDomain", "QISyncTransport", "QISyncIdentity", "QISyncProtocol",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "tools/sim"
        ),
        .testTarget(name: "QISyncCoreTests", dependencies: ["QISyncCore"]),
        .testTarget(
            name: "QISyncModelTests",
            dependencies: ["QISyncModelCheck", "QISyncCore", .product(name: "PropertyBased", package: "swift-property-based")]
        ),
        .testTarget(name: "QISyncIdentityTests", dependencies: ["QISyncCore", "QISyncIdentity"]),
        .testTarget(
            name: "QISyncStoreTests",
            dependencies: ["QISyncCore", "QISyncStore", "QISyncDomain", "QISyncIdentity", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(name: "QISyncChartsTests", dependencies: ["QISyncCharts"]),
        .testTarget(name: "QISyncShellTests", dependencies: [
            "QISyncShell", "QISyncDomain", "QISyncStore", "QISyncIdentity", "QISyncTransport",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),
        .testTarget(
            name: "QISyncProtocolTests",
            dependencies: [
                "QISyncCore", "QISyncProtocol", "QISyncFuzzHarness", "QISyncIdentity",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "QISyncTransportTests",
            dependencies: [
                "QISyncCore", "QISyncStore", "QISyncDomain", "QISyncProtocol", "QISyncTransport", "QISyncIdentity",
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"), .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
    ]
)
