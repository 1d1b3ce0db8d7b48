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

exec "$(dirname "$0")/apt-install-missing.sh" "Debian's wasm-capable toolchain" \
    rustc-web cargo-web rust-web-src lld-16
