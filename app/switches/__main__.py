"""`python -m app.switches list|on NAME|off NAME [--reason …]`: the runtime switches from a shell.

  python -m app.switches list
  python -m app.switches on maintenance --reason "migration de la base"
  python -m app.switches off maintenance

A change needs Redis only (it works while PostgreSQL is down) and is effective on every web process within seconds;
its journal entry is copied into PostgreSQL now, or by the next change or page view when PostgreSQL is away. Exit
status 0 when done (a switch already in that state included), 1 when refused or Redis is unreachable, 2 for a
malformed command line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from redis import Redis as SyncRedis
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError

from app.db.after_commit import Clients
from app.db.base import make_engine, unit_of_work
from app.observability import configure_logging
from app.settings import SettingsError, get_settings
from app.switches import service
from app.switches.schemas import COMMAND, LABELS, Switch
from app.switches.service import SwitchRefused
from app.switches.store import SwitchStore


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.switches", description="Interrupteurs d'exploitation.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="l'état de chaque interrupteur")
    for name, help_text in (("on", "activer un interrupteur"), ("off", "désactiver un interrupteur")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("name", choices=[switch.value for switch in Switch])
        command.add_argument("--reason", default="", help="le motif, gardé dans le journal")
    return parser


async def _copy_journal(redis: Redis, database_url: str, redis_url: str) -> str:
    engine = make_engine(database_url, pool_size=0)
    rq_connection = SyncRedis.from_url(redis_url)
    try:
        async with unit_of_work(engine, Clients(redis, rq_connection)) as session:
            await service.copy_journal(session, SwitchStore(redis))
    except (DBAPIError, OSError) as error:
        return (f"PostgreSQL injoignable ({type(error).__name__}) : le changement vaut déjà, son entrée de journal "
                "attend dans Redis et sera écrite au prochain changement ou à la prochaine visite de la page.")
    finally:
        rq_connection.close()
        await engine.dispose()
    return ""


async def _run(arguments: argparse.Namespace) -> tuple[str, str]:
    """What to print on stdout, and on stderr."""
    settings = get_settings()
    configure_logging(settings.log_level)
    redis = Redis.from_url(settings.redis_url, socket_timeout=5, socket_connect_timeout=5)
    try:
        store = SwitchStore(redis)
        if arguments.command == "list":
            on = await store.read()
            waiting = len(await store.unjournaled())
            lines = [f"{switch.value}\t{'on' if switch in on else 'off'}\t{LABELS[switch]}" for switch in Switch]
            if held := await store.held_jobs():
                lines.append(f"({held} tâche(s) de fond mise(s) de côté, relancée(s) quand pause_jobs sera off)")
            if waiting:
                lines.append(f"({waiting} changement(s) en attente d'écriture dans le journal PostgreSQL)")
            return "\n".join(lines), ""
        switch = service.parse_switch(arguments.name)
        on = arguments.command == "on"
        change = await store.turn(switch, on, actor=COMMAND, reason=service.parse_reason(arguments.reason))
        state = "activé" if on else "désactivé"
        done = (f"Rien à changer : {switch.value} était déjà {state}." if change is None
                else f"{switch.value} {state} ({LABELS[switch]}) : effectif sur chaque serveur web d'ici quelques "
                     "secondes.")
        return done, await _copy_journal(redis, settings.database_url, settings.redis_url)
    finally:
        await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        out, err = asyncio.run(_run(arguments))
    except SwitchRefused as refused:
        print(f"Refusé : {refused.message}", file=sys.stderr)
        return 1
    except SettingsError as error:
        print(f"Configuration : {error}", file=sys.stderr)
        return 1
    except (RedisError, OSError) as error:
        print(f"Redis injoignable ({type(error).__name__}) : le changement n'est pas confirmé ; vérifiez avec "
              "`python -m app.switches list`.", file=sys.stderr)
        return 1
    print(out)
    if err:
        print(err, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
