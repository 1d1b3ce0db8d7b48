#!/usr/bin/env bash
# Installs Debian's wasm-capable Rust toolchain, for machines whose rustup
# cannot download the wasm32-unknown-unknown target.
#
# `rustc-web` ships a rustc whose std can be built for wasm from the source in
# `rust-web-src` (cargo's -Zbuild-std, driven by `cargo xtask build-plugins`),
# and `lld-16` provides the `wasm-ld` linker. `cargo xtask build-plugins` calls
# this script only when no rustup toolchain has the target; it is safe to run
# by hand and does nothing when the packages are already installed.
set -euo pipefail

packages=(rustc-web cargo-web rust-web-src lld-16)

# dpkg's own record is the source of truth: a package counts as present only
# when it is fully installed, not merely unpacked or half-configured.
missing=()
for package in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$package")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    echo "no wasm32 toolchain: install the wasm32-unknown-unknown rustup target, or the Debian packages ${packages[*]}" >&2
    exit 1
fi
echo "installing Debian's wasm-capable toolchain: ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
