"""Run the platform locally: `./ops/run` (start everything) or `./ops/run stop` (stop the local servers).

PostgreSQL and Redis are started in `.local/` unless DATABASE_URL / REDIS_URL are set, and stay up between runs
so the next start is instant; a mail sink stores outgoing mail in `.local/mail` unless SMTP_URL is set.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from ops.processes import port_accepts
from ops.services import MAIL_PORT, ServiceError, local_folder, local_port, process_environment, stop_local_services
from ops.supervisor import Supervisor, read_procfile, run_once

ROOT = Path(__file__).resolve().parent.parent
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
    return env


def run_platform(env: dict[str, str]) -> int:
    procfile = read_procfile(ROOT / "Procfile")
    for name, command in (("release", procfile["release"]), ("demo", "python -m app.demo")):
        code = run_once(name, command, env, ROOT)
        if code != 0:
            print(f"`{command}` failed with exit code {code}; the platform was not started.", file=sys.stderr)
            return code
    supervisor = Supervisor(env=env, cwd=ROOT)
    if "SMTP_URL" not in os.environ:
        start_mail_sink(supervisor)
    for name, command in procfile.items():
        if name != "release":
            supervisor.start(name, command)
    url = f"http://127.0.0.1:{env['PORT']}/inscription"
    announced = False

    def announce_when_listening() -> None:
        nonlocal announced
        if not announced and port_accepts(int(env["PORT"])):
            announced = True
            print(
                f"\n  Renfort is running: {url}\n  Ctrl-C stops it; `./ops/run stop` then stops PostgreSQL and Redis.\n"
            )

    try:
        who, code = supervisor.wait(on_tick=announce_when_listening)
    finally:
        supervisor.stop_all()
    if who == "signal":
        return 0
    print(f"{who} exited with code {code}; the other processes were stopped.", file=sys.stderr)
    return code or 1


def start_mail_sink(supervisor: Supervisor) -> None:
    port = local_port(ROOT, "mail", MAIL_PORT)
    if port_accepts(port):
        print(f"Port {port} is taken: assuming this checkout's SMTP sink already listens there.")
        return
    mail_dir = local_folder(ROOT) / "mail"
    supervisor.start("mail", f"python -m ops.mailsink --port {port} --dir {shlex.quote(str(mail_dir))}")
    print(f"Outgoing mail is stored as .eml files in {mail_dir}.")


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        sys.exit(130)  # Ctrl-C during release or demo data: they got it too, nothing else to stop
