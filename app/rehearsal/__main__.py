"""`python -m app.rehearsal purge [--run RUN]` erases every trace of rehearsal traffic (of one run, or of all);
`python -m app.rehearsal seed --run RUN [--missions 3] [--places 5] [--commune 69123] [--emergency]` creates the
missions a rehearsal applies to. Both print one JSON line, with the same environment as the web process.

They run inside the application's own lifespan (create_app), so they use the very clients, stores and services a
request uses."""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from app.db.base import unit_of_work
from app.main import create_app
from app.rehearsal import purge, service
from app.settings import SettingsError, get_settings

MAX_ROUNDS = 10_000


async def _purge(run: str | None) -> purge.Purged:
    app = create_app(get_settings())
    async with app.lifespan():
        web, store = app.state.web, app.stores.get("sessions")
        total = purge.Purged()
        for _ in range(MAX_ROUNDS):
            outcome = await purge.purge(web, store, run=run)
            total.add(outcome)
            if outcome.remaining == 0 or not outcome.people:
                break
            print(f"{outcome.remaining} rehearsal people left", file=sys.stderr)
        return total


async def _seed(args: argparse.Namespace) -> service.Seeded:
    app = create_app(get_settings())
    async with app.lifespan():
        web = app.state.web
        async with unit_of_work(web.engine, web.clients) as session:
            return await service.seed(session, run=args.run, missions=args.missions, places=args.places,
                                      commune_code=args.commune, emergency=args.emergency)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.rehearsal", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    erase = commands.add_parser("purge", help="erase rehearsal traffic")
    erase.add_argument("--run", help="only this run's (its name, as rehearse printed it)")
    create = commands.add_parser("seed", help="create a rehearsal's organisation and missions")
    create.add_argument("--run", required=True)
    create.add_argument("--missions", type=int, default=3)
    create.add_argument("--places", type=int, default=5)
    create.add_argument("--commune", default="69123", help="INSEE code of the missions' commune")
    create.add_argument("--emergency", action="store_true", help="also a live emergency of the missions")
    args = parser.parse_args(argv)
    try:
        if args.command == "purge":
            result: object = asyncio.run(_purge(service.check_run(args.run) if args.run else None))
        else:
            result = asyncio.run(_seed(args))
    except service.RehearsalRefused as refused:
        print("; ".join(refused.errors.values()), file=sys.stderr)
        return 2
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    print(msgspec.json.encode(result).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
