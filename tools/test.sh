#!/usr/bin/env bash
# Builds qisync and runs every test (one debug build shared by the tests and the executable they drive).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh test
swift build --build-tests
swift test --skip-build
