// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "qisync",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "qisync", targets: ["qisync"]),
        .library(name: "QISyncCore", targets: ["QISyncCore"]),
        .library(name: "QISyncStore", targets: ["QISyncStore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", exact: "3.12.3"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
    ],
    targets: [
        // Pure logic: identities, clocks, change and log-entry encoding, merge rules. No I/O.
        .target(
            name: "QISyncCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        // The SQLite replica: origin logs, version vectors, materialisation, verification.
        .target(
            name: "QISyncStore",
            dependencies: [
                "QISyncCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The QI domain: initiatives, PDSA cycles, learning log, adaptations, and their validation.
        .target(
            name: "QISyncDomain",
            dependencies: [
                "QISyncCore", "QISyncStore",
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
        // The command tree shared by the CLI and the shell, and the REPL itself.
        .target(
            name: "QISyncShell",
            dependencies: [
                "QISyncCore", "QISyncStore", "QISyncDomain", "CEditLine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .executableTarget(name: "qisync", dependencies: ["QISyncShell"]),
        // Benchmark: synthetic trust, apply vs plain insert, file sizes. Not a test.
        .executableTarget(
            name: "qisync-bench",
            dependencies: [
                "QISyncCore", "QISyncStore", "QISyncDomain",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "tools/bench"
        ),
        .testTarget(name: "QISyncCoreTests", dependencies: ["QISyncCore"]),
        .testTarget(
            name: "QISyncStoreTests",
            dependencies: ["QISyncCore", "QISyncStore", "QISyncDomain", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .testTarget(name: "QISyncShellTests", dependencies: ["QISyncShell", "QISyncDomain", "QISyncStore"]),
    ]
)
