# Sourced by ./ops/run and ./ops/test: bring a fresh clone to a runnable state, and do nothing when it is.
# Needs only python3 (3.11+, with venv and pip) and npm; everything else comes from PyPI and npm.

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

# The DSFR package refuses to install until its terms of use are accepted (a .dsfr.yml written by
# `npm create @gouvfr/dsfr@latest`, or DSFR_ACCEPT_LICENSE=1). Accepting them is the project's decision, never
# this script's: without it the pages run unstyled and we say why.
dsfr_terms_accepted() {
    [[ -f .dsfr.yml || "${DSFR_ACCEPT_LICENSE:-}" == 1 ]]
}

# node_modules is refreshed when package-lock.json changes, exactly as `npm ci` would install it.
ensure_node_modules() {
    local stamp=node_modules/.installed-lock.sha256
    local wanted
    if ! dsfr_terms_accepted; then
        echo "warning: front-end assets not installed. @gouvfr/dsfr asks each project to accept its terms of use" >&2
        echo "         (which reserve it to State services' sites). Once the project has decided, run" >&2
        echo "         \`npm create @gouvfr/dsfr@latest\` (writes .dsfr.yml) or set DSFR_ACCEPT_LICENSE=1." >&2
        echo "         Until then pages use Renfort's own neutral stylesheet (templates/static/renfort.css)." >&2
        return 0
    fi
    if ! command -v npm >/dev/null; then
        echo "warning: npm is missing, so the DSFR assets cannot be installed (apt-get install npm);" >&2
        echo "         pages use Renfort's own neutral stylesheet meanwhile." >&2
        return 0
    fi
    if [[ ! -f package-lock.json ]]; then
        npm install --no-audit --no-fund
    fi
    wanted="$(sha256sum package.json package-lock.json | sha256sum | cut -d' ' -f1)"
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]]; then
        echo "Installing front-end assets (npm ci)"
        npm ci --no-audit --no-fund --loglevel=error
        echo "$wanted" >"$stamp"
    fi
}

ensure_virtualenv
ensure_node_modules
