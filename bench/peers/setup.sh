#!/usr/bin/env bash
# Installs the peers dwsched is compared with, from their registries, into a
# throwaway directory given as $1 (their versions on stdout, the installers' output
# on stderr): a Python virtual environment with pgqueuer,
# procrastinate and APScheduler 3.11, and graphile-worker 0.17 (the newest release
# that runs on Node 20; 0.18 needs Node 22).
set -euo pipefail
dir="$1"
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$dir"
python3 -m venv "$dir/venv"
"$dir/venv/bin/pip" install --quiet --disable-pip-version-check \
    'pgqueuer==1.*' 'procrastinate==3.*' 'apscheduler==3.11.*' 'psycopg[binary]==3.*' 'asyncpg==0.*' >&2
mkdir -p "$dir/node"
cp "$here"/*.js "$dir/node/"
(cd "$dir/node" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund graphile-worker@0.17.3 pg@8 >&2)
"$dir/venv/bin/python" - <<'PY'
import importlib.metadata as m
for name in ("pgqueuer", "procrastinate", "apscheduler"):
    print(f"{name} {m.version(name)}")
PY
echo "graphile-worker $(node -p "require('$dir/node/node_modules/graphile-worker/package.json').version")"
