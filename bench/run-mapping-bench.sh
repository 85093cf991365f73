#!/usr/bin/env bash
# Builds the mapping benchmark in release mode and runs it against the local PostgreSQL
# (or DWSCHED_BENCH_POSTGRES_URL), beside the same SCD load written by hand in psql.
# Prints the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p dwsched-bench --bin mapping-bench
target/release/mapping-bench
