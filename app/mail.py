"""E-mail: French templates rendered with Jinja, sent through SMTP (`SMTP_URL`); only workers send."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "emails"
_environment = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False)  # noqa: S701 (plain text)


def render(kind: str, **context: object) -> tuple[str, str]:
    """Returns (subject, body); a template's first line is `Objet : …`."""
    text = _environment.get_template(f"{kind}.txt").render(**context)
    first, _, body = text.partition("\n")
    return first.removeprefix("Objet :").strip(), body.lstrip("\n")


def build(sender: str, recipient: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="renfort.local")
    message.set_content(body)
    return message


@contextmanager
def smtp_connection(smtp_url: str, timeout: float = 30) -> Iterator[smtplib.SMTP]:
    """smtp://[user:password@]host:port[?starttls=1] or smtps://…"""
    url = urlsplit(smtp_url)
    host, port = url.hostname or "127.0.0.1", url.port
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port or 465, timeout=timeout)
    else:
        client = smtplib.SMTP(host, port or 25, timeout=timeout)
        if parse_qs(url.query).get("starttls") == ["1"]:
            client.starttls()
    try:
        if url.username:
            client.login(unquote(url.username), unquote(url.password or ""))
        yield client
    finally:
        try:
            client.quit()
        except smtplib.SMTPException:
            client.close()
