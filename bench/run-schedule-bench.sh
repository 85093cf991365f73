#!/usr/bin/env bash
# Builds and runs the schedule engine benchmark (next_fire rate, 100,000-row syncs on
# SQLite). Prints the figures; fails on no number.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p dwsched-bench --bin schedule-bench
target/release/schedule-bench
