# Sourced by ./ops/run and ./ops/test: bring a fresh clone to a runnable state, and do nothing when it is.
# Needs only python3 (3.11+, with venv and pip); everything else comes from PyPI.

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    echo "error: $*" >&2
    exit 1
}

# The stamp records which pyproject.toml and lock (constraints.txt, see ops/lock) the virtualenv was installed
# from, so unchanged ones cost nothing.
ensure_virtualenv() {
    local stamp=.venv/.installed-pyproject.sha256
    local wanted
    if [[ ! -x .venv/bin/python ]]; then
        command -v python3 >/dev/null || die "python3 is missing: install Python 3.11 or newer (apt-get install python3 python3-venv)"
        python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11 or newer is required, found $(python3 --version)"
        echo "Creating the virtualenv in .venv"
        if ! python3 -m venv .venv; then
            rm -rf .venv
            # Debian ships venv apart from python3; as root we can add it ourselves.
            [[ "$(id -u)" == 0 ]] || die "python3 -m venv failed: on Debian, apt-get install python3-venv"
            DEBIAN_FRONTEND=noninteractive apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
            python3 -m venv .venv || die "python3 -m venv failed even after installing python3-venv"
        fi
    fi
    wanted="$(sha256sum pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
        echo "Installing Python dependencies (pyproject.toml or constraints.txt changed since the last install)"
        .venv/bin/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
        echo "$wanted" >"$stamp"
    fi
}

ensure_virtualenv
