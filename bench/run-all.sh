#!/usr/bin/env bash
# Runs every benchmark of dwsched beside its peers on this machine and writes
# bench/RESULTS.md. Needs the local PostgreSQL (DWSCHED_BENCH_POSTGRES_SERVER, default
# postgres://postgres@127.0.0.1:5432, a superuser: it creates and drops databases
# named dwbench_*), pgbench, python3 and node. Peers are installed from PyPI and npm
# into a throwaway directory, removed at the end. Never run by CI; never fails on a
# number. Takes about 25 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)

peers=$(mktemp -d -t dwsched-peers.XXXXXX)
trap 'rm -rf "$peers"' EXIT

echo "== building dwsched and the harness (release)"
cargo build --release -p dwsched -p dwsched-bench --bins

echo "== installing the peers into $peers"
bash bench/peers/setup.sh "$peers" > "$peers/versions.txt"
cat "$peers/versions.txt"

echo "== running the workloads"
DWSCHED_BIN=target/release/dwsched target/release/compare "$peers" bench/RESULTS.md
echo "== the DWTOOL mapping job beside hand-written SQL"
target/release/mapping-bench | grep -v '^NOTICE' > "$peers/mapping.txt"
cat "$peers/mapping.txt"
{ echo; echo '## DWTOOL mapping job (mapping-bench)'; echo; echo '```'; cat "$peers/mapping.txt"; echo '```'; } >> bench/RESULTS.md
echo "== done in $(( ($(date +%s) - started) / 60 )) min; see bench/RESULTS.md"
