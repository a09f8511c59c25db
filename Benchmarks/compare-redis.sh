#!/usr/bin/env bash
# Side by side with Redis Streams on this machine, in one run: installs redis-server if missing,
# builds the release tools, runs each workload against exar-db and redis, prints both and the ratio,
# then the durable publish shapes (--durable: both sides sync before answering).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-peers.sh   # redis-server and nats-server, when missing
scripts/setup.sh
swift build -c release --product exar-db
swift build -c release --product exar-bench
bench=.build/release/exar-bench
$bench publish -c 50 -p 16 -n 1000000 --peer redis
$bench publish -c 1 -p 16 -n 200000 --peer redis
$bench publish -c 50 -p 1 -n 200000 --peer redis
$bench catchup -n 1000000 --peer redis
$bench fanout -k 16 -r 50000 -n 200000 --peer redis
# Durable: both sides sync before they answer (exar-db sync = always, redis appendfsync always).
$bench publish -c 50 -p 1 -n 100000 --peer redis --durable
$bench publish -c 50 -p 16 -n 500000 --peer redis --durable
$bench publish -c 1 -p 1 -n 5000 --peer redis --durable
