// The system's zlib, for what compress-nio does not expose (deflateTune, for the wire's
// payload stream: Sources/QISyncProtocol/Wire/WireDeflater.swift).
#include <zlib.h>
