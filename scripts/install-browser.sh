#!/usr/bin/env bash
# Install Debian's headless Chromium and its WebDriver (chromium, chromium-driver) for the
# console's browser tests, if missing. Idempotent: nothing happens when both are on PATH.
# CI starts from a clean machine: `make test` runs this before pytest.
set -euo pipefail

LOG_TAG=browser
# shellcheck source-path=SCRIPTDIR source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/infra/lib.sh"

if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
need_cmd apt-get "install chromium and chromium-driver with your package manager"
((EUID == 0)) || die "installing chromium needs root: sudo apt-get install --no-install-recommends chromium chromium-driver"
mkdir -p "$LOG_DIR"
logfile="$LOG_DIR/browser-install.log"
log "apt-get update (output: $logfile)"
apt-get -o DPkg::Lock::Timeout=300 update -qq >>"$logfile" 2>&1 || die "apt-get update failed (see $logfile)"
log "apt-get install chromium chromium-driver"
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends \
  chromium chromium-driver fonts-dejavu-core >>"$logfile" 2>&1 ||
  die "apt-get install chromium chromium-driver failed (see $logfile)"
command -v chromedriver >/dev/null 2>&1 || die "chromedriver not on PATH after the install"
log "chromium $(chromium --version 2>/dev/null | awk '{print $2}') and its driver installed"
