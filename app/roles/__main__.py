"""`python -m app.roles grant|revoke|list`: roles administered from a shell (the first admin is named this way).

  python -m app.roles grant --email x@y.fr --role referent --departments 01,69
  python -m app.roles grant --email x@y.fr --role referent --region 84
  python -m app.roles revoke --email x@y.fr --role coordinator --national
  python -m app.roles grant --email x@y.fr --role admin
  python -m app.roles list [--role referent]

An admin's tool: it prints the addresses it lists on stdout, and logs none. Exit status 0 when done (a grant of
what the person already held included), 1 when the change is refused, 2 for a malformed command line.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy.exc import DBAPIError

from app.db.base import make_engine, unit_of_work
from app.observability import configure_logging
from app.roles import service
from app.roles.schemas import COMMAND_LINE_ACTOR, ROLE_LABELS, Holding, Role, Scope
from app.roles.scopes import RoleRefused, parse_role, requested_scope
from app.settings import SettingsError, get_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.roles", description="Attribue, retire et liste les rôles.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("grant", "attribuer un rôle"), ("revoke", "retirer un rôle")):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("--email", required=True, help="l'adresse de la personne")
        command.add_argument("--role", required=True, choices=[role.value for role in Role])
        where = command.add_mutually_exclusive_group()
        where.add_argument("--national", action="store_true", help="toute la France (par défaut pour admin)")
        where.add_argument("--departments", metavar="CODES", help="des départements, par exemple 01,69")
        where.add_argument("--region", metavar="CODE", help="une région (référent·e seulement), par exemple 84")
    listing = commands.add_parser("list", help="lister qui détient quel rôle")
    listing.add_argument("--role", choices=[role.value for role in Role])
    return parser


def _scope(arguments: argparse.Namespace, role: Role) -> Scope:
    if arguments.departments is not None:
        return requested_scope("departements", departments=arguments.departments)
    if arguments.region is not None:
        return requested_scope("region", region=arguments.region)
    if not arguments.national and role is not Role.ADMIN:
        raise RoleRefused("Indiquez la portée : --national, --departments CODES ou --region CODE.")
    return requested_scope("national")


def _lines(holding: Holding) -> list[str]:
    """One line per kind of scope, each in the spelling `revoke` accepts back."""
    departments = tuple(code for scope in holding.scopes for code in scope.departments)
    scopes = [scope for scope in holding.scopes if not scope.departments]
    if departments:
        scopes.append(Scope(departments=departments))
    return [f"{holding.role.value}\t{holding.email}\t{scope.text}" for scope in scopes]


async def _run(arguments: argparse.Namespace) -> str:
    settings = get_settings()
    configure_logging(settings.log_level)
    engine = make_engine(settings.database_url, pool_size=0)
    try:
        async with unit_of_work(engine) as session:
            if arguments.command == "list":
                role = Role(arguments.role) if arguments.role else None
                holdings = await service.holders(session, role)
                return "\n".join(line for holding in holdings for line in _lines(holding)) or "Aucun rôle attribué."
            role = parse_role(arguments.role)
            scope = _scope(arguments, role)
            label = f"{ROLE_LABELS[role]} ({scope.text})"
            if arguments.command == "grant":
                change = await service.grant(session, actor=COMMAND_LINE_ACTOR, email=arguments.email, role=role,
                                             scope=scope)
                if change is None:
                    return f"Rien à changer : {arguments.email} a déjà le rôle {label}."
                return f"Rôle attribué à {arguments.email} : {ROLE_LABELS[role]} ({change.scope.text})."
            await service.revoke(session, actor=COMMAND_LINE_ACTOR, email=arguments.email, role=role, scope=scope)
            return f"Rôle retiré à {arguments.email} : {label}."
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        print(asyncio.run(_run(arguments)))
    except RoleRefused as refused:
        print(f"Refusé : {refused.message}", file=sys.stderr)
        return 1
    except SettingsError as error:
        print(f"Configuration : {error}", file=sys.stderr)
        return 1
    except (DBAPIError, OSError) as error:
        print(f"Base de données injoignable ou en erreur ({type(error).__name__}) : rien n'a changé.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
