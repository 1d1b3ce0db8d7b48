#!/usr/bin/env bash
# Installs Debian's redis-server, which the shared-state tests start on
# their own (a throwaway server per test, never a system service). `cargo
# xtask test` calls this; it does nothing when redis-server is on PATH.
set -euo pipefail

if command -v redis-server >/dev/null; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "no redis-server: the shared-state tests need it; install Redis (Debian: redis-server)" >&2
    exit 1
fi
echo "installing Debian's redis-server for the shared-state tests" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server
