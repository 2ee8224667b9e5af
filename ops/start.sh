#!/usr/bin/env bash
# Starts one Renfort process exactly as the Procfile says, so Docker, compose, a server and a PaaS run the same
# command lines (the Procfile is their one source):
#
#     ops/start.sh web|worker|release [extra arguments]    # e.g. ops/start.sh worker --burst
#
# RENFORT_VENV (optional): the virtualenv made by ops/install-production.sh; otherwise python and granian are
# whatever PATH finds. The process replaces this shell, so it gets the platform's signals (SIGTERM: warm shutdown).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

kind="${1:-}"
case "$kind" in
    web | worker | release) shift ;;
    *)
        echo "usage: ops/start.sh web|worker|release [arguments]" >&2
        exit 2
        ;;
esac
if [[ -n "${RENFORT_VENV:-}" ]]; then
    export PATH="$RENFORT_VENV/bin:$PATH"
fi
command_line="$(sed -n "s/^${kind}:[[:space:]]*//p" Procfile)"
if [[ -z "$command_line" ]]; then
    echo "error: the Procfile has no '$kind:' line" >&2
    exit 1
fi
# The Procfile line is shell (it expands ${PORT:-8000} and the like), as a PaaS runs it.
eval "exec $command_line \"\$@\""
