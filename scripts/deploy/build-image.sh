#!/usr/bin/env bash
# Builds the services' image from the Dockerfile: with docker when an engine answers, else with
# buildah, which needs no daemon (Debian's `buildah` package; vfs storage and chroot isolation
# work inside an unprivileged container or a VM without overlayfs).
#   scripts/deploy/build-image.sh [tag]            default tag: saga-shop:local
# PYTHON_IMAGE=<image> replaces the base image (a mirrored or hardened Python 3.11+).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

tag="${1:-saga-shop:local}"
args=(-t "$tag")
[[ -n "${PYTHON_IMAGE:-}" ]] && args+=(--build-arg "PYTHON_IMAGE=$PYTHON_IMAGE")

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  exec docker build "${args[@]}" .
elif command -v buildah >/dev/null; then
  exec buildah bud --storage-driver vfs --isolation chroot --network host --layers "${args[@]}" .
else
  echo "ERROR: no Docker engine and no buildah: start Docker, or apt-get install buildah" >&2
  exit 1
fi
