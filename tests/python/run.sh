#!/usr/bin/env bash
# The Python suite of vibetrees-native: builds and installs the `vibetrees` package exactly as a user
# does (`pip install ./bindings-python`, maturin's PEP 517 backend), then runs pytest, which also
# checks the .pyi stubs against the built module with mypy's stubtest.
#
# Installs into a virtualenv (default: target/python-venv, ignored by git; VIBETREES_PY_VENV to
# change): maturin, pytest, mypy, and the package. Needs python3 (3.9+) with venv, a Rust toolchain,
# git and npm. Exits non-zero when anything fails.
#
# The extension is built with cargo's dev profile here (it shares target/ with `cargo test`, so the
# core is not compiled twice); VIBETREES_PY_PROFILE=release builds it as a user's install does.
# Extra arguments go to pytest, e.g. `tests/python/run.sh -k optimizer -x`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"

python=${PYTHON:-python3}
venv=${VIBETREES_PY_VENV:-$root/target/python-venv}
profile=${VIBETREES_PY_PROFILE:-dev}

if [ ! -x "$venv/bin/python" ]; then
  echo "python: creating virtualenv $venv"
  "$python" -m venv "$venv"
fi
vpy="$venv/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
"$vpy" -m pip install -q "maturin>=1.9,<2" "pytest>=7" "pytest-timeout>=2" "mypy>=1.10"

echo "python: pip install ./bindings-python (cargo profile: $profile)"
t0=$SECONDS
MATURIN_PEP517_ARGS="--profile $profile" "$vpy" -m pip install -q --force-reinstall --no-deps ./bindings-python
echo "python: built and installed in $((SECONDS - t0)) s"

# Tests run from the tests folder against the installed package, never the source tree's copy.
cd "$root/tests/python"
exec "$vpy" -m pytest -p no:cacheprovider --timeout=300 "$@"
