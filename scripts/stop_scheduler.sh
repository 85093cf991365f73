#!/usr/bin/env bash
# Stops the dwsched service started by start_scheduler.sh: SIGTERM lets running runs
# finish (up to SCHEDULER_SHUTDOWN_TIMEOUT); --now sends a second signal that stops
# them at once (their requests go back to the queue).
#   PID_FILE   default: ./dwsched.pid
#   WAIT       seconds to wait for the exit (default: 330)
set -euo pipefail
pid_file=${PID_FILE:-./dwsched.pid}
wait_for=${WAIT:-330}
if [ ! -f "$pid_file" ]; then
  echo "no pid file at $pid_file; is dwsched running?" >&2
  exit 1
fi
pid=$(cat "$pid_file")
if ! kill -0 "$pid" 2>/dev/null; then
  echo "dwsched (pid $pid) is not running; removing the stale pid file" >&2
  rm -f "$pid_file"
  exit 0
fi
kill -TERM "$pid"
if [ "${1:-}" = "--now" ]; then
  sleep 0.5
  kill -TERM "$pid" 2>/dev/null || true
fi
for _ in $(seq 1 $((wait_for * 10))); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "dwsched (pid $pid) stopped"
    exit 0
  fi
  sleep 0.1
done
echo "dwsched (pid $pid) is still running after ${wait_for} s" >&2
exit 1
