#!/usr/bin/env bash
# Installs the peers the exar-bench tests run side by side with (Debian's redis-server and
# nats-server) when missing. Best effort: without them those tests are skipped, not failed.
set -uo pipefail
missing=()
command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || missing+=(redis-server)
[ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null || missing+=(nats-server)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "setup: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
{ $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; } \
    || echo "setup: ${missing[*]} not installed: the side-by-side tests are skipped" >&2
exit 0
