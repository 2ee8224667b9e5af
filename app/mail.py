"""E-mail: French templates rendered with Jinja, sent through SMTP (`SMTP_URL`); only workers send."""

from __future__ import annotations

import smtplib
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import make_msgid, parseaddr
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qs, unquote, urlsplit

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "emails"
_environment = Environment(loader=FileSystemLoader(TEMPLATES), undefined=StrictUndefined, autoescape=False)  # noqa: S701 (plain text)


# Python folds a long header made of encoded words and drops the space between two of them ("Restos du" read back
# as "Restosdu"): a subject, one line of at most a few hundred characters, stays whole within RFC 5322's 998.
UNFOLDED = policy.default.clone(max_line_length=998)


class MailServerUnavailable(Exception):
    """The SMTP server cannot be reached (or refuses us): nothing can leave, for anyone in the batch."""


def render(kind: str, **context: object) -> tuple[str, str]:
    """Returns (subject, body); a template's first line is `Objet : …`."""
    text = _environment.get_template(f"{kind}.txt").render(**context)
    first, _, body = text.partition("\n")
    return first.removeprefix("Objet :").strip(), body.lstrip("\n")


def sender_address(mail_from: str) -> Address:
    name, address = parseaddr(mail_from)
    return Address(display_name=name, addr_spec=address)


def build(sender: str, recipient: str, subject: str, body: str, *, reply_to: str | None = None) -> EmailMessage:
    """Headers go through the `email` package: a CR or LF in a value raises ValueError instead of starting a header,
    and an address must be one whole address (`a@b.fr, c@d.fr` is refused). `reply_to`: where an answer goes (a
    manager writing to applicants), when not to the platform's sender."""
    message = EmailMessage()
    message["From"] = sender_address(sender)
    message["To"] = Address(addr_spec=recipient)
    if reply_to:
        message["Reply-To"] = Address(addr_spec=reply_to)
    message["Subject"] = " ".join(subject.split())  # one line, whatever a mission title held
    message["Message-ID"] = make_msgid(domain="renfort.local")
    message.set_content(body)  # encoded under the default policy: quoted-printable lines of 76 characters
    message.policy = UNFOLDED  # then serialised without folding the headers
    return message


def _connect(smtp_url: str, timeout: float) -> smtplib.SMTP:
    """smtp://[user:password@]host:port[?starttls=1] or smtps://…"""
    url = urlsplit(smtp_url)
    host, port = url.hostname or "127.0.0.1", url.port
    if url.scheme == "smtps":
        client: smtplib.SMTP = smtplib.SMTP_SSL(host, port or 465, timeout=timeout)
    else:
        client = smtplib.SMTP(host, port or 25, timeout=timeout)
        if parse_qs(url.query).get("starttls") == ["1"]:
            client.starttls()
    if url.username:
        client.login(unquote(url.username), unquote(url.password or ""))
    return client


class SmtpSession:
    """One SMTP connection for a batch: opened at the first message, opened again when the server hangs up.

    `send` raises `SMTPRecipientsRefused` / `SMTPDataError` for that one message (the connection stays usable),
    `SMTPServerDisconnected` when the server hung up twice on it, and `MailServerUnavailable` when no connection
    can be made at all."""

    def __init__(self, smtp_url: str, timeout: float = 30) -> None:
        self.smtp_url, self.timeout = smtp_url, timeout
        self._client: smtplib.SMTP | None = None

    def send(self, message: EmailMessage, sender: str, recipient: str) -> None:
        # A restart or an idle time-out on the server's side: one new connection, one more try for this message.
        for _ in range(2):
            try:
                self._connected().send_message(message, from_addr=sender, to_addrs=[recipient])
                return
            except smtplib.SMTPServerDisconnected:
                pass
            except smtplib.SMTPException:
                raise
            except OSError:  # reset, broken pipe, time-out: the connection is in an unknown state
                pass
            self._drop()
        raise smtplib.SMTPServerDisconnected("the server hung up on this message twice")

    def _connected(self) -> smtplib.SMTP:
        if self._client is None:
            try:
                self._client = _connect(self.smtp_url, self.timeout)
            except (OSError, smtplib.SMTPException) as error:
                raise MailServerUnavailable(type(error).__name__) from error
        return self._client

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None

    def close(self) -> None:
        if self._client is None:
            return
        try:
            self._client.quit()
        except (OSError, smtplib.SMTPException):
            self._client.close()
        self._client = None

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
                 ) -> None:
        self.close()
