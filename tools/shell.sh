#!/usr/bin/env bash
# Builds qisync and opens its shell on the local replica, creating one the first time.
#
#   bash tools/shell.sh            # replica in $QISYNC_HOME, default ~/.qisync
#
# The first replica is made with QISYNC_TRUST (default LOCAL), QISYNC_TRUST_NAME and
# QISYNC_SITE (default this machine's name), founding that trust (this site is its hub and holds
# its trust key); run 'qisync init --join' yourself to join an existing trust instead.
# To type 'qisync …' anywhere (as the README's tour does), run 'bash tools/install.sh' once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
swift build -c release --product qisync >&2
qisync=.build/release/qisync
home="${QISYNC_HOME:-$HOME/.qisync}"
if [ ! -f "$home/replica.sqlite" ]; then
    "$qisync" init --home "$home" --trust "${QISYNC_TRUST:-LOCAL}" --trust-name "${QISYNC_TRUST_NAME:-Local trust}" \
        --site "${QISYNC_SITE:-$(hostname -s 2>/dev/null || echo hub)}"
fi
command -v qisync >/dev/null 2>&1 || echo "(to use 'qisync' from any terminal: bash tools/install.sh)" >&2
exec "$qisync" shell --home "$home" "$@"
