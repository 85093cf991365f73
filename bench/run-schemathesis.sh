#!/usr/bin/env bash
# Runs schemathesis (PyPI) against a real node's /api/openapi.json: every endpoint with
# generated inputs, good and bad, with and without the token. The node must never
# answer 5xx, and its answers must match the document. Needs python3 with pip; installs
# schemathesis into a throwaway virtualenv under target/. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet -p dwsched
work=$(mktemp -d)
trap 'kill $node 2>/dev/null || true; rm -rf "$work"' EXIT
venv=target/schemathesis-venv
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet schemathesis
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
bin=$PWD/target/debug/dwsched
token=fuzz-token
(
  cd "$work"
  "$bin" init >/dev/null
  "$bin" job put DEMO --flow "$OLDPWD/examples/flows/demo.toml" >/dev/null
  "$bin" schedule add DEMO --frqcd DL --frqhh 6 --frqmi 0 >/dev/null
  "$bin" calendar put ENGLAND --descr "England and Wales" >/dev/null 2>&1
  "$bin" calendar holiday add ENGLAND 2026-12-25 --descr "Christmas Day" >/dev/null 2>&1
  "$bin" schedule add DEMO --frqcd BD --frqdd -1 --frqhh 18 --calendar ENGLAND >/dev/null
)
( cd "$work" && DWSCHED_API_TOKEN=$token exec "$bin" run --http "127.0.0.1:$port" --node-id fuzz ) \
  >"$work/node.log" 2>&1 &
node=$!
for _ in $(seq 1 50); do
  curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.2
done
# Every check but "schema-valid input is accepted": validity that JSON Schema cannot say
# (an end date before its start date, an unknown zone name, a cron expression that does
# not parse, a job that does not exist) is refused with a 4xx by design.
"$venv/bin/schemathesis" run "http://127.0.0.1:$port/api/openapi.json" \
  --checks all \
  --exclude-checks positive_data_acceptance \
  --header "Authorization: Bearer $token" \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-100}" \
  --max-failures 20
status=$?
if grep -q "panicked" "$work/node.log"; then
  echo "the node panicked:" >&2
  grep -A5 panicked "$work/node.log" >&2
  exit 1
fi
exit $status
