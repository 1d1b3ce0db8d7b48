#!/usr/bin/env bash
# Installs the named Debian packages that are not yet fully installed, and
# does nothing when all of them are (so CI and `cargo xtask` may call it on
# every run). Usage: apt-install-missing.sh WHY PACKAGE...
set -euo pipefail

why=$1
shift

# dpkg's own record is the source of truth: a package counts as present only
# when it is fully installed, not merely unpacked or half-configured.
missing=()
for package in "$@"; do
    status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$package")
    fi
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    echo "$why needs the Debian packages $*; install them (no apt-get here)" >&2
    exit 1
fi
echo "installing $why: ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
