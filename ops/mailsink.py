"""A local SMTP server that stores every message it receives as an .eml file, so no mail leaves a dev machine.

Run it with `python -m ops.mailsink --port 1025 --dir .local/mail`; read what arrived with `read_messages()`.
Each message stored is also announced in one line, its recipient masked, with the link it carries to the platform
(a sign-in link, a confirmation, an invitation), decoded and whole so that a terminal makes it clickable:
`→ c***@example.org : Votre lien de connexion à Renfort  http://127.0.0.1:8000/connexion/lien?jeton=…`.
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import logging
import os
import re
import signal
import threading
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from ops.console import mask_email
from ops.processes import LOOPBACK

logger = logging.getLogger("ops.mailsink")
LINK = re.compile(r"https?://[^\s<>\"'«»]+")


def store_message(directory: Path, mail_from: str, recipients: list[str], content: bytes) -> Path:
    """Write one message atomically (readers never see half a file); names sort in arrival order."""
    directory.mkdir(parents=True, exist_ok=True)
    envelope = f"X-Envelope-From: {mail_from}\r\nX-Envelope-To: {', '.join(recipients)}\r\n".encode()
    path = directory / f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
    partial = path.with_suffix(".part")
    partial.write_bytes(envelope + content)
    os.replace(partial, path)
    return path


def read_messages(directory: Path) -> list[EmailMessage]:
    """Every stored message, oldest first; the envelope is in the X-Envelope-From / X-Envelope-To headers."""
    messages = []
    for path in sorted(Path(directory).glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        messages.append(message)
    return messages


def announcement(content: bytes, recipients: list[str], base_url: str | None = None) -> str:
    """One console line for a message: masked recipients, subject, and its link to the platform if it has one."""
    to = ", ".join(mask_email(address) for address in recipients) or "***"
    try:
        message = email.message_from_bytes(content, policy=email.policy.default)
        subject = " ".join(str(message.get("Subject", "")).split()) or "(sans objet)"
        link = platform_link(message, base_url)
    except Exception as error:  # an odd message is still stored; only its line is short
        return f"→ {to} : (message illisible : {type(error).__name__})"
    return f"→ {to} : {subject}" + (f"  {link}" if link else "")


def platform_link(message: email.message.Message, base_url: str | None) -> str | None:
    """The link a person would click: the first to the platform carrying a token (a query), else the first one."""
    body = message.get_body(preferencelist=("plain", "html")) if isinstance(message, EmailMessage) else None
    text = body.get_content() if body is not None else ""  # quoted-printable and base64 decoded here
    links = [link.rstrip(".,;:!?)]") for link in LINK.findall(text if isinstance(text, str) else "")]
    if base_url:
        root = base_url.rstrip("/")
        links = [link for link in links if link == root or link.startswith(root + "/")]
    return next((link for link in links if "?" in link), links[0] if links else None)


def clear_messages(directory: Path) -> None:
    for path in Path(directory).glob("*.eml"):
        path.unlink(missing_ok=True)


class _StoreHandler:
    def __init__(self, directory: Path, refusals: dict[str, str], hang_ups: set[str], base_url: str | None) -> None:
        self.directory, self.refusals, self.hang_ups = directory, refusals, hang_ups
        self.base_url = base_url

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        refusal = self.refusals.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        hung_up = self.hang_ups.intersection(address.lower() for address in envelope.rcpt_tos)
        if hung_up:
            # As a server that crashes mid-transaction: the message is not kept and the client gets no answer.
            self.hang_ups.difference_update(hung_up)
            server.transport.close()
            return "421 4.3.2 Closing connection"
        content = envelope.original_content or envelope.content
        recipients = list(envelope.rcpt_tos)
        await asyncio.to_thread(store_message, self.directory, envelope.mail_from, recipients, content)
        # Recipients masked: the line goes to a terminal. Subjects name missions and organisations, never people.
        logger.info("%s", await asyncio.to_thread(announcement, content, recipients, self.base_url))
        return "250 Message accepted for delivery"


class MailSink:
    """The SMTP server in a background thread; `start()` returns once it accepts connections."""

    def __init__(self, directory: Path, port: int = 1025, host: str = LOOPBACK, base_url: str | None = None) -> None:
        self.directory = Path(directory).absolute()
        self.host = host
        self.port = port
        self.base_url = base_url  # links to it are the ones announced
        # Tests shape the sink's behaviour per recipient (lower-case address), while it runs:
        # `refusals[address] = "550 5.1.1 …"` refuses it at RCPT with that reply, every time;
        # `hang_ups.add(address)` drops the connection once, at the end of the DATA of a message to it.
        self.refusals: dict[str, str] = {}
        self.hang_ups: set[str] = set()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        handler = _StoreHandler(self.directory, self.refusals, self.hang_ups, self.base_url)
        controller = Controller(handler, hostname=self.host, port=self.port, enable_SMTPUTF8=True)
        controller.start()
        self._controller = controller

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def messages(self) -> list[EmailMessage]:
        return read_messages(self.directory)

    def __enter__(self) -> MailSink:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Store every SMTP message received as an .eml file.")
    parser.add_argument("--host", default=LOOPBACK)
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path(".local/mail"))
    parser.add_argument("--base-url", default=os.environ.get("BASE_URL"),
                        help="the platform's public URL: the links to it are announced (default: $BASE_URL)")
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # aiosmtpd logs every connection with the peer's address; our one line per message is enough.
    logging.getLogger("mail.log").setLevel(logging.WARNING)

    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    with MailSink(options.dir, options.port, options.host, options.base_url) as sink:
        logger.info("mail sink: listening on %s, storing messages in %s", sink.url, sink.directory)
        stopping.wait()


if __name__ == "__main__":
    main()
