#!/usr/bin/env bash
# Builds qisync (release) and puts it on the PATH: a link in ~/.local/bin, or in $PREFIX/bin.
#
#   bash tools/install.sh                 # ~/.local/bin/qisync
#   PREFIX=/usr/local sudo -E bash tools/install.sh
#
# Installs the system packages it needs (via tools/setup.sh) when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
swift build -c release --product qisync >&2
bin="${PREFIX:-$HOME/.local}/bin"
mkdir -p "$bin"
ln -sf "$PWD/.build/release/qisync" "$bin/qisync"
echo "installed: $bin/qisync -> $PWD/.build/release/qisync"
case ":$PATH:" in
    *":$bin:"*) echo "qisync is on your PATH: try 'qisync --version'" ;;
    *) echo "add it to your PATH:  export PATH=\"$bin:\$PATH\"   (e.g. in ~/.bashrc)" ;;
esac
