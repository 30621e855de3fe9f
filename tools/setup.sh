#!/usr/bin/env bash
# Installs the system packages qisync builds against, only those that are missing.
set -euo pipefail

packages=(libsqlite3-dev libedit-dev pkg-config openssl faketime)
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
