#!/usr/bin/env bash
# Installs the system packages qisync builds against, only those that are missing.
#   bash tools/setup.sh         what building and running qisync needs
#   bash tools/setup.sh test    and what the tests need too: headless Chromium and poppler-utils
#                               (reports are rendered in a real browser, to PDF and images)
set -euo pipefail

packages=(libsqlite3-dev libedit-dev zlib1g-dev pkg-config openssl faketime)
if [ "${1:-}" = "test" ]; then
    packages+=(chromium poppler-utils)
fi
missing=()
for package in "${packages[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "qisync setup: installing ${missing[*]}" >&2
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v swift >/dev/null 2>&1; then
    echo "qisync setup: the Swift toolchain (swift 6.1 or later) is not on PATH" >&2
    exit 1
fi
