#!/usr/bin/env bash
# Make sure a Chromium answers for the UI tests (Playwright drives it; Playwright's own
# browser download is never used). Idempotent.
#
#  - `chromium` (or `chromium-browser`) already on PATH: left alone.
#  - Otherwise, as root with apt-get (Debian/Ubuntu): install the distribution's
#    `chromium` package.
#  - Otherwise: say what to install and exit 1 (the UI tests then skip, saying why).
#    Never uses sudo.
set -euo pipefail

log() { printf '[install-chromium] %s\n' "$*" >&2; }

found() { command -v chromium || command -v chromium-browser; }

if browser=$(found); then
  log "a Chromium is installed: $browser ($("$browser" --version 2>/dev/null || echo '?'))"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "no Chromium on PATH, and this script installs one only as root with apt-get:"
  log "install your distribution's chromium package (Debian: apt-get install chromium)."
  exit 1
fi
log "installing Debian's chromium (apt-get)..."
export DEBIAN_FRONTEND=noninteractive
# Other apt users on the machine: wait for their lock rather than fail.
apt_get() { apt-get -q -o DPkg::Lock::Timeout=600 "$@"; }
apt_get update
apt_get install -y --no-install-recommends chromium fonts-liberation
browser=$(found) || { log "ERROR: chromium installed but not on PATH"; exit 1; }
log "installed: $browser ($("$browser" --version 2>/dev/null || echo '?'))"
