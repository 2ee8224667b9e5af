#!/usr/bin/env bash
# Restores a backup made by ops/backup.sh into the PostgreSQL database and Redis database of DATABASE_URL and
# REDIS_URL, then runs release so the schema is current.
#
#   ops/restore.sh [--force] BACKUP_FOLDER
#
# Stop the web and the workers first (systemctl stop renfort.target). The targets must be empty: a database
# without tables, a Redis database without keys (create the database first: createdb -O renfort renfort). Anything
# else is refused unless --force, which first DROPS the target's `public` schema and FLUSHES its Redis database.
# The environment must carry the SECRET_KEY of the backed-up platform: Redis key names are digests keyed with it.
#
# The Redis part loads the snapshot into a throwaway server on loopback, then copies every key of the backed-up
# database, with its remaining time to live, into REDIS_URL's database (DUMP/RESTORE): the target may be remote,
# managed, or another database number. Queued sign-ups and applications come back queued; the workers drain them
# once started (a sign-up already in PostgreSQL drains again to the same row).

set -euo pipefail

# shellcheck source=ops/backup.sh
source "$(dirname "${BASH_SOURCE[0]}")/backup.sh"

fail() {
    echo "restore: $*" >&2
    exit 1
}

manifest_value() {
    sed -n "s/^$1=//p" "$BACKUP/manifest.txt"
}

postgres_tables() {
    psql_value "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
                  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
                  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'"
}

redis_keys() {
    redis_cli -n "$REDIS_DB" DBSIZE
}

restore_postgres() {
    if ((FORCE)); then
        psql_value 'DROP SCHEMA public CASCADE; CREATE SCHEMA public' >/dev/null
    fi
    # No owner and no grants from the old server: the objects belong to the role restoring them (the owner role of
    # DATABASE_URL); the web's and workers' grants come from ops/production/roles.sql, run again afterwards.
    "$PG_BIN_DIR/pg_restore" --no-password --no-owner --no-privileges --single-transaction --exit-on-error \
        --dbname "$PG_URL" "$BACKUP/postgresql.dump" || fail "pg_restore a échoué (rien n'a été écrit)"
}

restore_redis() {
    local source_db folder port server
    source_db=$(manifest_value redis_db)
    folder=$(mktemp -d)
    port=$(cd "$ROOT" && "$PYTHON" -c 'from ops.processes import free_port; print(free_port())')
    cp "$BACKUP/redis.rdb" "$folder/dump.rdb"
    # Loopback only, no persistence: it lives for the copy and goes with its folder.
    "$VALKEY_SERVER" --port "$port" --bind 127.0.0.1 --dir "$folder" --dbfilename dump.rdb --appendonly no \
        --save "" --daemonize no --logfile "$folder/valkey.log" &
    server=$!
    # shellcheck disable=SC2064  # the values are fixed now
    trap "kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf -- '$folder'" EXIT
    local tries=0
    until [[ $("$VALKEY_CLI" -p "$port" PING 2>/dev/null) == PONG ]]; do
        kill -0 "$server" 2>/dev/null || fail "le serveur Redis temporaire n'a pas chargé la sauvegarde : $(tail -n 3 "$folder/valkey.log")"
        ((++tries < 600)) || fail "le serveur Redis temporaire ne répond pas"
        sleep 0.1
    done
    if ((FORCE)); then
        redis_cli -n "$REDIS_DB" FLUSHDB >/dev/null
    fi
    SOURCE_PORT=$port SOURCE_DB=$source_db "$PYTHON" - <<'PY' || fail "la copie des clés Redis a échoué"
import os
from itertools import islice

from redis import Redis

source = Redis(host="127.0.0.1", port=int(os.environ["SOURCE_PORT"]), db=int(os.environ["SOURCE_DB"]))
# The target from REDIS_URL itself: its password, TLS, user and database number.
target = Redis.from_url(os.environ["REDIS_URL"])
keys = source.scan_iter(count=1000)
copied = 0
while batch := list(islice(keys, 500)):
    with source.pipeline(transaction=False) as read:
        for key in batch:
            read.pttl(key)
            read.dump(key)
        answers = read.execute()
    with target.pipeline(transaction=False) as write:
        for key, ttl, payload in zip(batch, answers[::2], answers[1::2], strict=True):
            if payload is None or ttl == -2:
                continue  # expired since the snapshot
            write.restore(key, max(ttl, 0), payload)  # -1 (no expiry) is 0 for RESTORE
            copied += 1
        write.execute()
print(f"{copied} clés Redis restaurées")
PY
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf -- "$folder"
    trap - EXIT
}

restore_main() {
    FORCE=0
    BACKUP=""
    while (($#)); do
        case $1 in
            --force) FORCE=1; shift ;;
            -h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
            -*) fail "option inconnue : $1 (ops/restore.sh [--force] DOSSIER)" ;;
            *) [[ -z $BACKUP ]] || fail "un seul dossier de sauvegarde"; BACKUP=$1; shift ;;
        esac
    done
    [[ -n $BACKUP ]] || fail "usage : ops/restore.sh [--force] DOSSIER"
    [[ -f $BACKUP/SHA256SUMS ]] || fail "$BACKUP n'est pas une sauvegarde complète (pas de SHA256SUMS)"
    (cd "$BACKUP" && sha256sum --check --quiet --strict SHA256SUMS) || fail "sommes de contrôle fausses dans $BACKUP"
    parse_urls
    find_binaries
    check_rdb "$BACKUP/redis.rdb"

    # Both targets are checked before either is touched.
    local tables keys
    tables=$(postgres_tables) || fail "PostgreSQL injoignable"
    keys=$(redis_keys) || fail "Redis injoignable ($REDIS_HOST:$REDIS_PORT)"
    # valkey-cli exits 0 on an error reply (NOAUTH, LOADING, a command disabled): anything but a count is a refusal.
    [[ $tables =~ ^[0-9]+$ ]] || fail "PostgreSQL n'a pas donné son nombre de tables : $tables"
    [[ $keys =~ ^[0-9]+$ ]] || fail "Redis n'a pas donné son nombre de clés (base $REDIS_DB) : $keys"
    if ((!FORCE)) && ((tables > 0 || keys > 0)); then
        fail "cible non vide ($tables tables dans PostgreSQL, $keys clés dans la base Redis $REDIS_DB) : \
restauration refusée. Videz-la, ou relancez avec --force pour l'écraser."
    fi

    restore_postgres
    echo "PostgreSQL restauré depuis $BACKUP (sauvegarde du $(manifest_value postgres_dump_at))"
    restore_redis
    # The code may be newer than the backup: migrations bring the schema up to date, then the reference data.
    # The Procfile's release line, through ops/start.sh, with this Python first on PATH.
    PATH="$(dirname "$PYTHON"):$PATH" "$ROOT/ops/start.sh" release || fail "release a échoué après la restauration"
    echo "Restauration terminée. Si les rôles renfort_web et renfort_worker servent : psql -f ops/production/roles.sql."
    echo "Puis démarrez les workers : les inscriptions encore en file seront écrites dans PostgreSQL."
}

restore_main "$@"
