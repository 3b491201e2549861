#!/usr/bin/env bash
# Builds the @vibetrees/native addon and runs the Node tests (node --test).
#
# Installs: the npm devDependencies of bindings-node (@napi-rs/cli, pinned by package-lock.json),
# the example server's dependencies (express, ws: bindings-node/examples/server/package-lock.json),
# with `npm ci`. Needs node >= 18, npm, cargo and git on PATH.
# Env: VIBETREES_NODE_PROFILE=release builds the addon in release mode (default: debug, which
# reuses the workspace's debug build of the core and keeps CI short).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
pkg="$root/bindings-node"

for tool in node npm cargo git; do
  command -v "$tool" >/dev/null || { echo "tests/node/run.sh: '$tool' is required" >&2; exit 1; }
done

cd "$pkg"
if [ ! -x node_modules/.bin/napi ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

build_flags=(--platform --strip --js binding.js --dts binding.d.ts)
if [ "${VIBETREES_NODE_PROFILE:-debug}" = release ]; then
  build_flags+=(--release)
fi
node_modules/.bin/napi build "${build_flags[@]}"

# The example server's own dependencies (express, ws; the package itself is file:../..).
example="$pkg/examples/server"
if [ ! -d "$example/node_modules/express" ] || [ "$example/package-lock.json" -nt "$example/node_modules/.package-lock.json" ]; then
  (cd "$example" && npm ci --no-audit --no-fund --loglevel=error)
fi

# The registry tests run the vibetrees CLI as another writer of ports.json.
(cd "$root" && cargo build -q -p vibetrees-core --features cli --bin vibetrees)

# The tests import the package by name, as a user would: link it into tests/node/node_modules.
mkdir -p "$here/node_modules/@vibetrees"
ln -sfn ../../../../bindings-node "$here/node_modules/@vibetrees/native"

cd "$root"
node --test --test-concurrency=1 tests/node/
