#!/usr/bin/env bash
# System packages the tests need: Java >= 17 (imx500-converter), Debian chromium (browser test).
# Installs only what is missing; needs root (as on the CI machines) or skips with a note.
set -euo pipefail
need=()
if ! command -v java >/dev/null 2>&1; then need+=(openjdk-17-jre-headless); fi
if ! [ -x /usr/bin/chromium ]; then need+=(chromium); fi
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "note: missing system packages ${need[*]} (run as root to install); their tests will be skipped" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
