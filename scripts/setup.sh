#!/usr/bin/env bash
# Installs what building Exar DB needs on Debian/Ubuntu (liblz4-dev, pkg-config) when it is missing.
set -euo pipefail
if pkg-config --exists liblz4 2>/dev/null; then
    exit 0
fi
echo "setup: installing liblz4-dev and pkg-config" >&2
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq liblz4-dev pkg-config >/dev/null
