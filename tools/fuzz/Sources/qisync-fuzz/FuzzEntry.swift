import QISyncFuzzHarness

/// libFuzzer's entry point: one input per call.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    ProtocolFuzzHarness.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}
