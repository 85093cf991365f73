#!/usr/bin/env bash
# Builds the load benchmark in release mode and runs it against the local PostgreSQL
# (or DWSCHED_BENCH_POSTGRES_URL), beside the psql \copy pipe. Prints the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p dwsched-bench --bin load-bench
target/release/load-bench
