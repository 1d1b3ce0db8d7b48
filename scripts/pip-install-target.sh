#!/usr/bin/env bash
# Installs one pinned PyPI package into a folder of its own (pip --target:
# no virtualenv, nothing in the system's Python). Idempotent: does nothing
# when that version is already there. Prints the folder; run the tool with
# `PYTHONPATH=DIR python3 -m MODULE`.
#
#   scripts/pip-install-target.sh PACKAGE VERSION DIR
set -euo pipefail

package=$1
version=$2
dir=$3
python="${PYTHON:-python3}"
# pip names the metadata folder with underscores for dashes.
if [[ -d "$dir/${package//-/_}-$version.dist-info" ]]; then
    echo "$dir"
    exit 0
fi

echo "installing $package $version into $dir" >&2
rm -rf "$dir"
mkdir -p "$dir"
"$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target "$dir" \
    "$package==$version" >&2
echo "$dir"
