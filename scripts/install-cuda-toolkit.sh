#!/usr/bin/env bash
# Installs NVIDIA's CUDA compiler (nvcc), which the inference engine's `cuda`
# feature needs at build time (cudarc's build script asks it for the CUDA
# version, candle-kernels compiles its kernels to PTX with it), though not a GPU.
#
# On Debian the compiler comes from `nvidia-cuda-toolkit` in the non-free
# component (about 1.6 GB to download, 5.5 GB installed). This script enables
# non-free in a sources file of its own, so the system's files stay untouched,
# and installs the package. `cargo xtask cuda` calls it before building; it is
# safe to run by hand and does nothing when nvcc is already there.
set -euo pipefail

package=nvidia-cuda-toolkit
sources_file=/etc/apt/sources.list.d/cloister-cuda-nonfree.sources

if command -v nvcc >/dev/null; then
    exit 0
fi

# Only Debian is known to ship the toolkit under this name and component.
codename=""
if [[ -r /etc/os-release ]]; then
    # shellcheck source=/dev/null
    . /etc/os-release
    if [[ "${ID:-}" == debian ]]; then
        codename="${VERSION_CODENAME:-}"
    fi
fi
if [[ -z "$codename" ]]; then
    echo "nvcc is missing and this is not Debian: install the CUDA toolkit (nvcc) yourself" >&2
    exit 1
fi

cat >&2 <<MESSAGE
nvcc is missing. About to:
  1. write $sources_file enabling Debian's contrib and non-free components for $codename
  2. apt-get update
  3. apt-get install $package (about 1.6 GB download, 5.5 GB on disk)
MESSAGE
if [[ "$(id -u)" -ne 0 ]]; then
    echo "installing $package needs root: run this as root, or install it yourself" >&2
    exit 1
fi

sources="# Written by scripts/install-cuda-toolkit.sh for $package (non-free).
Types: deb
URIs: http://deb.debian.org/debian
Suites: $codename
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
# Rewritten only when it differs, so a rerun leaves the file as it is.
if [[ ! -f "$sources_file" ]] || [[ "$(cat "$sources_file")" != "$sources" ]]; then
    printf '%s\n' "$sources" >"$sources_file"
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package"
