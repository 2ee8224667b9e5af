"""What a database error is, decided in one place by PostgreSQL's SQLSTATE (or, without one, the exception's type).

- `REFUSED`: PostgreSQL refused the record for its content (classes 22 data exception, 23 integrity constraint),
  or the record could not be decoded: retrying cannot help; the record is isolated and reported.
- `UNAVAILABLE`: the server cannot be reached or is not serving now (connection lost, shutdown, too many
  connections, out of resources, lock or serialization conflicts, a cancelled statement): wait and retry.
- `BUG`: anything else (an undefined column after a bad deploy, a programming error): retrying the same code will
  not help either, but the records are not at fault, so they are kept and retried while someone is alerted.
"""

from __future__ import annotations

import enum
import socket

import msgspec
from sqlalchemy.exc import DBAPIError, InterfaceError

REFUSED_CLASSES = ("22", "23")
UNAVAILABLE_CLASSES = ("08", "40", "53", "57", "58", "XX")
UNAVAILABLE_STATES = ("55P03", "55006")  # lock not available, object in use


class Failure(enum.Enum):
    REFUSED = "refused"
    UNAVAILABLE = "unavailable"
    BUG = "bug"


def sqlstate(error: BaseException) -> str:
    """The SQLSTATE of a database error, through SQLAlchemy's wrapper and the driver's adapter, or ''."""
    for candidate in (error, getattr(error, "orig", None), getattr(getattr(error, "orig", None), "__cause__", None),
                      error.__cause__):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str) and len(state) == 5:
            return state
    return ""


def classify(error: BaseException) -> Failure:
    if isinstance(error, msgspec.DecodeError | msgspec.ValidationError | UnicodeError):
        return Failure.REFUSED
    state = sqlstate(error)
    if state:
        if state[:2] in REFUSED_CLASSES:
            return Failure.REFUSED
        if state[:2] in UNAVAILABLE_CLASSES or state in UNAVAILABLE_STATES:
            return Failure.UNAVAILABLE
        return Failure.BUG
    if isinstance(error, ConnectionError | TimeoutError | socket.gaierror | InterfaceError):
        return Failure.UNAVAILABLE
    if isinstance(error, DBAPIError) and (error.connection_invalidated or _driver_lost_connection(error)):
        return Failure.UNAVAILABLE
    return Failure.BUG


def _driver_lost_connection(error: DBAPIError) -> bool:
    cause = getattr(error.orig, "__cause__", None)
    name = type(cause).__name__ if cause is not None else ""
    lost = {"ConnectionDoesNotExistError", "InterfaceError", "InternalClientError", "ConnectionFailureError",
            "CannotConnectNowError", "TooManyConnectionsError"}
    return name in lost or isinstance(cause, ConnectionError | TimeoutError)


def reason(error: BaseException) -> str:
    """Why a record was refused, for ops: the exception's type, SQLSTATE and constraint name only — PostgreSQL's
    message may quote the offending (personal) values."""
    orig = getattr(error, "orig", None)
    driver_error = getattr(orig, "__cause__", None)
    constraint = getattr(driver_error, "constraint_name", None) or getattr(error, "constraint_name", None) or ""
    kind = type(driver_error).__name__ if driver_error is not None else type(error).__name__
    return " ".join(part for part in (kind, sqlstate(error), constraint) if part)
