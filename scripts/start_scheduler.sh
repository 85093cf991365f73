#!/usr/bin/env bash
# Starts the dwsched service in the background, with its pid in a file and its log in
# another. Configuration comes from the environment or ./.env (see README.md).
#   DWSCHED_BIN   the binary (default: dwsched on PATH)
#   PID_FILE      default: ./dwsched.pid
#   LOG_FILE      default: ./dwsched.log
set -euo pipefail
bin=${DWSCHED_BIN:-dwsched}
pid_file=${PID_FILE:-./dwsched.pid}
log_file=${LOG_FILE:-./dwsched.log}

if [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
  echo "dwsched is already running (pid $(cat "$pid_file"))" >&2
  exit 1
fi
nohup "$bin" run --pid-file "$pid_file" "$@" >>"$log_file" 2>&1 &
started=$!
# The service writes the pid file once its configuration is accepted.
for _ in $(seq 1 50); do
  if [ -f "$pid_file" ]; then
    echo "dwsched started (pid $(cat "$pid_file")), logging to $log_file"
    exit 0
  fi
  if ! kill -0 "$started" 2>/dev/null; then
    echo "dwsched did not start; the end of $log_file:" >&2
    tail -n 5 "$log_file" >&2
    exit 1
  fi
  sleep 0.1
done
echo "dwsched is starting (pid $started), logging to $log_file"
