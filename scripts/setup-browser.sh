#!/usr/bin/env bash
# Installs what the browser tests (Tests/browser/*.py) need, when it is missing:
# Debian's chromium and chromium-driver, and the Python packages selenium and
# prometheus-client. Idempotent and quiet: prints nothing when all is there,
# and the installer's output only when an install fails.
set -euo pipefail

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
else
    SUDO=(sudo)
fi
PYTHON="${PYTHON:-python3}"
LOG="$(mktemp)"
trap 'rm -f "$LOG"' EXIT

quietly() {
    if ! "$@" >"$LOG" 2>&1; then
        cat "$LOG" >&2
        echo "setup-browser: failed: $*" >&2
        exit 1
    fi
}

missing_debs=()
[ -x /usr/bin/chromium ] || missing_debs+=(chromium)
[ -x /usr/bin/chromedriver ] || missing_debs+=(chromium-driver)

if [ "${#missing_debs[@]}" -gt 0 ]; then
    apt=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
    # The package lists are updated only when apt does not know the packages yet.
    if ! apt-cache show "${missing_debs[@]}" >/dev/null 2>&1; then
        quietly "${apt[@]}" update -qq
    fi
    quietly "${apt[@]}" install -y -qq "${missing_debs[@]}"
fi

if ! "$PYTHON" -c 'import selenium, prometheus_client' >/dev/null 2>&1; then
    quietly "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        selenium prometheus-client
fi
