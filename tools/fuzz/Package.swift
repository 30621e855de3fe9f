// swift-tools-version:6.1
// The libFuzzer target for qisync's frame decoder, payload stream and sync session.
// Its own package, so the main build never links a binary without `main`. See README.md here.
import PackageDescription

let package = Package(
    name: "qisync-fuzz",
    dependencies: [.package(name: "qisync", path: "../..")],
    targets: [
        .executableTarget(
            name: "qisync-fuzz",
            dependencies: [.product(name: "QISyncFuzzHarness", package: "qisync")],
            swiftSettings: [.unsafeFlags(["-parse-as-library"])]
        ),
    ]
)
