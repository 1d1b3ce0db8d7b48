#!/usr/bin/env bash
# Installs `kubernetes-validate` (PyPI), which checks deploy/kubernetes
# against the OpenAPI schemas of a named Kubernetes version, into a folder
# of its own. Idempotent: does nothing when that version is already there.
#
#   scripts/install-kubernetes-validate.sh [DIR]   (default: <repo>/target/tools/kubernetes-validate)
#
# Prints the folder; run the tool as `PYTHONPATH=DIR python3 -m kubernetes_validate`.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
exec "$repo_root/scripts/pip-install-target.sh" kubernetes-validate 1.37.0 \
    "${1:-$repo_root/target/tools/kubernetes-validate}"
