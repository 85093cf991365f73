#!/usr/bin/env bash
# Builds dwsched and the upload benchmark in release mode and runs it against the local
# PostgreSQL (or DWSCHED_BENCH_POSTGRES_URL), beside psql's \copy. Prints the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p dwsched --bin dwsched
cargo build --release -p dwsched-bench --bin upload-bench
target/release/upload-bench
