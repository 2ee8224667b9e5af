#!/usr/bin/env bash
# Installs what production runs, and nothing else, at the versions of the lock, into a virtualenv:
#
#     ops/install-production.sh [VENV]    # VENV: $RENFORT_VENV, else /opt/renfort/venv
#
# Then `RENFORT_VENV=VENV ops/start.sh web|worker|release`. The app runs from this source tree, so the project
# itself is not installed. The Dockerfile runs this script; a PaaS buildpack installs the same requirements.txt.
# Wheels only: a package that would need a compiler fails here, never halfway through a build.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

venv="${1:-${RENFORT_VENV:-/opt/renfort/venv}}"
python="${PYTHON:-python3}"
locked_python=3.11

die() {
    echo "error: $*" >&2
    exit 1
}

command -v "$python" >/dev/null || die "$python is missing: install Python $locked_python (with venv and pip)"
found="$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
if [[ "$found" != "$locked_python" ]]; then
    echo "warning: Python $found; the lock (constraints.txt) was resolved for Python $locked_python" >&2
fi
if [[ ! -x "$venv/bin/python" ]]; then
    "$python" -m venv "$venv" || die "python -m venv failed (on Debian: apt-get install python3-venv)"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --only-binary=:all: \
    -c constraints.txt -r requirements.txt
"$venv/bin/python" -m pip check --disable-pip-version-check
echo "production dependencies installed in $venv"
