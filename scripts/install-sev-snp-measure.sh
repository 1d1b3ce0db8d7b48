#!/usr/bin/env bash
# Installs `sev-snp-measure` (PyPI), which computes the SEV-SNP launch
# measurement of a guest from its OVMF, kernel, initrd and command line, into
# a folder of its own. Idempotent. It needs Python's `cryptography`, which pip
# installs beside it when the system's Python has none.
#
#   scripts/install-sev-snp-measure.sh [DIR]   (default: <repo>/target/tools/sev-snp-measure)
#
# Prints the folder; run the tool as `PYTHONPATH=DIR python3 -m sevsnpmeasure.cli`.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$repo_root/scripts/pip-install-target.sh" sev-snp-measure 0.0.13 \
    "${1:-$repo_root/target/tools/sev-snp-measure}"
