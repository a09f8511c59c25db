#!/usr/bin/env bash
# Side by side with NATS JetStream (Debian's nats-server, file storage, one stream) on this
# machine, in one run: installs nats-server if missing, builds the release tools, runs each
# publish shape (JetStream publishes with acks, P in flight per connection) and the catch-up
# (a push consumer) against exar-db and nats, and prints both, the ratio and each side's durability.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-peers.sh   # redis-server and nats-server, when missing
scripts/setup.sh
swift build -c release --product exar-db
swift build -c release --product exar-bench
bench=.build/release/exar-bench
$bench publish -c 50 -p 16 -n 1000000 --peer nats
$bench publish -c 1 -p 16 -n 200000 --peer nats
$bench publish -c 50 -p 1 -n 200000 --peer nats
$bench catchup -n 1000000 --peer nats
