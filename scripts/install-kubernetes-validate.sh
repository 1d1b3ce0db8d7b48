#!/usr/bin/env bash
# Installs `kubernetes-validate` (PyPI), which checks deploy/kubernetes
# against the OpenAPI schemas of a named Kubernetes version, into a folder
# of its own (pip --target: no virtualenv, nothing in the system's Python).
# Idempotent: does nothing when that version is already there.
#
#   scripts/install-kubernetes-validate.sh [DIR]   (default: <repo>/target/tools/kubernetes-validate)
#
# Prints the folder; run the tool as `PYTHONPATH=DIR python3 -m kubernetes_validate`.
set -euo pipefail

VERSION="1.37.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$repo_root/target/tools/kubernetes-validate}"
python="${PYTHON:-python3}"

if [[ -d "$dir/kubernetes_validate-$VERSION.dist-info" ]]; then
    echo "$dir"
    exit 0
fi

echo "installing kubernetes-validate $VERSION into $dir" >&2
rm -rf "$dir"
mkdir -p "$dir"
"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$dir" \
    "kubernetes-validate==$VERSION" >&2
echo "$dir"
