"""Run the platform locally: `./ops/run` (start everything) or `./ops/run stop` (stop the local servers).

PostgreSQL and Redis are started in `.local/` unless DATABASE_URL / REDIS_URL are set, and stay up between runs
so the next start is instant; a mail sink stores outgoing mail in `.local/mail` unless SMTP_URL is set, and prints
each link it receives. The terminal shows one short line per request or event (`ops.console`); each process's
full output is in `.local/logs/<name>.log`. Once the web answers, the URLs and the demo accounts are printed.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from ops.processes import port_accepts
from ops.services import (
    MAIL_PORT,
    ServiceError,
    local_folder,
    local_port,
    ops_token_file,
    process_environment,
    stop_local_services,
)
from ops.supervisor import Supervisor, read_procfile, run_once

ROOT = Path(__file__).resolve().parent.parent
# Procfile lines run once per deploy, not kept running: `release` (Heroku-style platforms) and `postdeploy` (Scalingo).
ONE_OFF = frozenset({"release", "postdeploy"})
USAGE = "usage: ./ops/run [stop]"


def main(argv: list[str]) -> int:
    if argv == ["stop"]:
        stop_local_services(ROOT)
        print("Local PostgreSQL and Redis stopped.")
        return 0
    if argv:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        env = platform_environment()
    except ServiceError as error:
        print(f"Could not start the local services: {error}", file=sys.stderr)
        return 1
    return run_platform(env)


def platform_environment() -> dict[str, str]:
    env = process_environment(ROOT)
    port = env.setdefault("PORT", "8000")
    # On this machine only, unless told otherwise (WEB_HOST=0.0.0.0 to be reached from the network); a PaaS, which sets
    # no WEB_HOST, gets the Procfile's 0.0.0.0.
    env.setdefault("WEB_HOST", "127.0.0.1")
    env.setdefault("BASE_URL", f"http://127.0.0.1:{port}")
    env.setdefault("PYTHONUNBUFFERED", "1")  # children write through a pipe; keep their lines in real time
    # The demo data refuses to load unless told it is on a development machine; a caller's own value wins, so
    # ENVIRONMENT=production in the shell still stops it.
    env.setdefault("ENVIRONMENT", "development")
    return env


def run_platform(env: dict[str, str]) -> int:
    procfile = read_procfile(ROOT / "Procfile")
    logs = local_folder(ROOT) / "logs"
    for name, command in (("release", procfile["release"]), ("demo", "python -m app.demo")):
        code = run_once(name, command, env, ROOT, logs)
        if code != 0:
            print(f"`{command}` failed with exit code {code}; the platform was not started.", file=sys.stderr)
            return code
    accounts = demo_accounts(env)
    # web and worker are started again when they exit (a crashed worker, a killed web), as a PaaS does; the state file
    # lets `python -m loadtests.bench_faults --host … --state .local/run.json` find and kill them.
    supervisor = Supervisor(env=env, cwd=ROOT, log_dir=logs, restart=frozenset({"web", "worker"}),
                            state_file=local_folder(ROOT) / "run.json")
    mail_dir = start_mail_sink(supervisor, env) if "SMTP_URL" not in os.environ else None
    for name, command in procfile.items():
        if name not in ONE_OFF:
            supervisor.start(name, command)
    announced = False

    def announce_when_listening() -> None:
        nonlocal announced
        if not announced and port_accepts(int(env["PORT"])):
            announced = True
            print(banner(env, accounts, mail_dir, logs), flush=True)

    try:
        who, code = supervisor.wait(on_tick=announce_when_listening)
    finally:
        supervisor.stop_all()
    if who == "signal":
        return 0
    print(f"{who} exited with code {code}; the other processes were stopped.", file=sys.stderr)
    return code or 1


def start_mail_sink(supervisor: Supervisor, env: dict[str, str]) -> Path | None:
    """The folder the sink stores mail in, or None when another process already holds its port."""
    port = local_port(ROOT, "mail", MAIL_PORT)
    if port_accepts(port):
        print(f"Port {port} is taken: assuming this checkout's SMTP sink already listens there.")
        return None
    mail_dir = local_folder(ROOT) / "mail"
    supervisor.start(
        "mail",
        f"python -m ops.mailsink --port {port} --dir {shlex.quote(str(mail_dir))}"
        f" --base-url {shlex.quote(env['BASE_URL'])}",
    )
    return mail_dir


def demo_accounts(env: dict[str, str]) -> list[dict[str, str]]:
    """The demo module's own list (ops never imports the app: it runs its commands, as for the Procfile)."""
    completed = subprocess.run(
        [sys.executable, "-m", "app.demo", "--accounts"], env=env, cwd=ROOT, capture_output=True, text=True,
        check=False,
    )
    try:
        accounts = json.loads(completed.stdout)
    except ValueError:
        return []
    return [account for account in accounts if isinstance(account, dict)] if isinstance(accounts, list) else []


def banner(env: dict[str, str], accounts: list[dict[str, str]], mail_dir: Path | None, logs: Path) -> str:
    """What to open and who to be: the URLs, where the ops token is (never the token), the demo accounts."""
    base = f"http://127.0.0.1:{env['PORT']}"
    where = "the OPS_TOKEN you set" if "OPS_TOKEN" in os.environ else f"the token in {_shown(ops_token_file(ROOT))}"
    host = env.get("WEB_HOST", "")
    reach = "this machine only" if host in ("127.0.0.1", "localhost", "::1") else f"{host}: reachable from the network"
    if mail_dir is not None:
        links = f"printed here as they are sent and kept in {_shown(mail_dir)}/"
    elif "SMTP_URL" in os.environ:
        links = "sent through your SMTP_URL"
    else:
        links = "in the mail sink already listening on its port"
    lines = [
        "",
        f"  Renfort is running ({reach}):",
        f"    sign-up      {base}/inscription",
        f"    sign-in      {base}/connexion  (e-mailed links, {links})",
        f"    admin        {base}/administration/roles",
        f"    ops console  {base}/ops/dead-letters  (any user name; password: {where})",
        f"    metrics      {base}/metrics  (Authorization: Bearer with {where})",
    ]
    if accounts:
        email_width = max(len(account.get("email", "")) for account in accounts)
        role_width = max(len(account.get("role", "")) for account in accounts)
        lines += ["", "  Demo accounts (sign in at /connexion):"]
        lines += [
            f"    {account.get('email', ''):<{email_width}}  {account.get('role', ''):<{role_width}}  "
            f"{account.get('try', '')}"
            for account in accounts
        ]
    lines += [
        "",
        f"  Full logs: {_shown(logs)}/<process>.log.",
        "  Ctrl-C stops it; `./ops/run stop` then stops PostgreSQL and Redis.",
        "",
    ]
    return "\n".join(lines)


def _shown(path: Path) -> str:
    """A path as short as it can be: relative to the checkout when inside it."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C during release or demo data: they got it too, nothing else to stop
