#!/usr/bin/env bash
# Installs what the browser tests (Tests/browser/*.py) need, when it is missing:
# Debian's chromium and chromium-driver, and the Python packages selenium and
# prometheus-client. Idempotent and quiet: a second run does nothing.
set -euo pipefail

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
else
    SUDO=(sudo)
fi
PYTHON="${PYTHON:-python3}"

missing_debs=()
[ -x /usr/bin/chromium ] || missing_debs+=(chromium)
[ -x /usr/bin/chromedriver ] || missing_debs+=(chromium-driver)

if [ "${#missing_debs[@]}" -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    # Update the lists only when apt cannot find the packages as it is.
    if ! apt-cache show "${missing_debs[@]}" >/dev/null 2>&1; then
        "${SUDO[@]}" apt-get update -qq
    fi
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing_debs[@]}" >/dev/null
fi

if ! "$PYTHON" -c 'import selenium, prometheus_client' >/dev/null 2>&1; then
    "$PYTHON" -m pip install --quiet --disable-pip-version-check selenium prometheus-client
fi
