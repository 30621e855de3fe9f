#!/usr/bin/env bash
# qisync against the SQLite session extension and Yrs on the same values (tools/bench/compare.py).
#   bash tools/bench/compare.sh [--sizes 10000,100000] [--runs 3]
# Installs what it needs: the system packages (tools/setup.sh), apsw and pycrdt into a virtual
# environment under .build/bench-venv, and a release build of qisync.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tools/setup.sh
# GNU time measures each path's peak memory.
if ! dpkg -s time >/dev/null 2>&1; then
    sudo_cmd=(); [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq time >/dev/null
fi
venv=.build/bench-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import apsw, pycrdt" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q apsw pycrdt
fi
swift build -c release --product qisync
exec "$venv/bin/python" tools/bench/compare.py "$@"
