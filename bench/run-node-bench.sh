#!/usr/bin/env bash
# Builds dwsched in release mode and runs the node benchmark against the local
# PostgreSQL (or DWSCHED_BENCH_POSTGRES_URL). Prints the figures; fails on no number.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p dwsched -p dwsched-bench
DWSCHED_BIN=target/release/dwsched target/release/node-bench
