#!/usr/bin/env bash
# Installs the programs that the test suite runs beside Cloister's own:
# `promtool` (Debian's `prometheus`), which evaluates the alert rules of
# deploy/monitoring against the parties' metrics, and `redis-server`, which
# the shared-state tests start (each its own, on a free port). `cargo xtask
# test` calls it; it does nothing when they are installed.
set -euo pipefail

exec "$(dirname "$0")/apt-install-missing.sh" "the test suite's tools" prometheus redis-server
