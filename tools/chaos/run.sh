#!/usr/bin/env bash
# The long fault suite: installs what it needs (tools/setup.sh, faketime among it), builds qisync
# and qisync-chaos, and runs every kind of trial; arguments go to qisync-chaos (e.g. --trials 300).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/setup.sh
swift build -c release --product qisync >&2
swift build -c release --product qisync-chaos >&2
exec .build/release/qisync-chaos "$@"
